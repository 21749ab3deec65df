"""Edits of a scene graph that turn the civilian scene into the spy scene, with an exact change log.

An edit kind is one of EDIT_KINDS, or several per-object kinds joined by "+" (e.g. "color+shape"), which all
apply to the same object. `changes` = K means K edits, each on objects no earlier edit of the pair touched,
each drawn uniformly from the kinds given (falling back to another kind when the drawn one cannot apply).
The paper's CLEVR data ("2 objects change colour and shape") is the default: kinds ("color+shape",), K = 2,
i.e. two distinct objects each get a new colour and a new shape.

Every edit leaves the scene valid (`placement_violations` is empty): a resized object that would crowd a
neighbour is not chosen; a moved or added object is placed by CLEVR's rules; an added object or a moved one
also keeps clear of where removed and moved objects stood, so that no two changes overlap on the ground.
The change log has one `Change` per edit (per changed object, or per pair for a swap); `Change.edits()` gives
the record's `edits` entries, one per changed attribute.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from clevr_scenes.placement import draw_position, placement_violations, random_object
from clevr_scenes.scene import MAX_OBJECTS, Scene, SceneConfig, SceneObject
from clevr_scenes.vocabulary import COLORS, MATERIALS, SHAPES, SIZES
from datagen.errors import ConfigError, QualityRejected
from datagen.record import Edit

EDIT_KINDS: tuple[str, ...] = ("color", "shape", "material", "size", "add", "remove", "move", "swap")
OBJECT_KINDS: tuple[str, ...] = ("color", "shape", "material", "size", "move")
"""Kinds that change one existing object; only these combine with "+"."""
ATTRIBUTE_KINDS: tuple[str, ...] = ("color", "shape", "material", "size")
DEFAULT_EDIT_KINDS: tuple[str, ...] = ("color+shape",)
DEFAULT_CHANGES = 2
EDIT_OP: dict[str, str] = {
    "color": "recolor",
    "shape": "reshape",
    "material": "rematerial",
    "size": "resize",
    "add": "add",
    "remove": "remove",
    "move": "move",
    "swap": "swap",
}
"""The record's `Edit.op` for each kind."""
EDIT_SUBTLETY: dict[str, float] = {
    "color": 0.3,
    "shape": 0.4,
    "material": 0.7,
    "size": 0.5,
    "add": 0.2,
    "remove": 0.2,
    "move": 0.5,
    "swap": 0.6,
}
"""0 obvious .. 1 subtle, per kind: a judgement for the pair's difficulty (a combined kind: the least subtle)."""
EDIT_DRAWS = 2000
"""Position draws for an added or moved object. A sampled scene that finds no place for its next object is
placed again from scratch; an edit cannot redo the civilian, so it draws longer (still uniform over the valid
places; a draw costs microseconds)."""
MIN_TRAVEL = 1.0
"""A moved object's centre travels at least this far, so that a move shows as more than a nudge."""


@dataclass(frozen=True)
class Change:
    """One applied edit.

    Attributes:
        kind: the edit kind, canonical (atoms in EDIT_KINDS order), e.g. "color+shape", "add", "swap".
        object_id: the object edited, added or removed; for a swap the first of the two.
        before: the changed attributes before the edit ("3d_coords" for a move); {} for an add; for a remove
            every attribute of the object. A swap holds "3d_coords" and "other_3d_coords".
        after: the same keys after the edit; every attribute of an added object; {} for a remove.
        other_id: a swap's second object; None otherwise.
    """

    kind: str
    object_id: int
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    other_id: int | None = None

    @property
    def atoms(self) -> tuple[str, ...]:
        return tuple(self.kind.split("+"))

    @property
    def object_ids(self) -> tuple[int, ...]:
        """The ids of every object this edit touched (in the civilian scene, the spy scene, or both)."""
        return (self.object_id,) if self.other_id is None else (self.object_id, self.other_id)

    @property
    def subtlety(self) -> float:
        """0 obvious .. 1 subtle; several atoms on one object are as obvious as the most obvious of them."""
        return min(EDIT_SUBTLETY[atom] for atom in self.atoms)

    def edits(self) -> list[Edit]:
        """The record's `edits` entries: one per changed attribute, in EDIT_KINDS order."""
        target = f"object {self.object_id}"
        if self.kind == "add":
            return [Edit("add", target, "", _object_text(self.after))]
        if self.kind == "remove":
            return [Edit("remove", target, _object_text(self.before), "")]
        if self.kind == "swap":
            a, b = self.object_id, self.other_id
            return [Edit("swap", f"objects {a} and {b}", _places(a, b, self.before), _places(a, b, self.after))]
        return [
            Edit("move", target, _xy(self.before["3d_coords"]), _xy(self.after["3d_coords"]))
            if atom == "move"
            else Edit(EDIT_OP[atom], target, str(self.before[atom]), str(self.after[atom]))
            for atom in self.atoms
        ]

    def to_json(self) -> dict[str, Any]:
        """The change as plain JSON values, for the record's `meta`."""
        return {
            "kind": self.kind,
            "object_id": self.object_id,
            "other_id": self.other_id,
            "before": self.before,
            "after": self.after,
        }


def parse_edit_kind(kind: str) -> tuple[str, ...]:
    """The atoms of `kind` in EDIT_KINDS order, e.g. "shape+color" -> ("color", "shape").

    Raises:
        ConfigError: an unknown atom, a repeated atom, or add/remove/swap joined with another kind.
    """
    atoms = tuple(part.strip() for part in kind.split("+"))
    for atom in atoms:
        if atom not in EDIT_KINDS:
            raise ConfigError(f"unknown edit kind {atom!r} in {kind!r}; choose from {', '.join(EDIT_KINDS)}")
    if len(set(atoms)) != len(atoms):
        raise ConfigError(f"edit kind {kind!r} names a kind twice")
    if len(atoms) > 1 and any(atom not in OBJECT_KINDS for atom in atoms):
        raise ConfigError(
            f"edit kind {kind!r}: only {', '.join(OBJECT_KINDS)} combine with '+'; add, remove and swap stand alone"
        )
    return tuple(sorted(atoms, key=EDIT_KINDS.index))


def validate_edit_options(kinds: Sequence[str], changes: int, config: SceneConfig) -> tuple[str, ...]:
    """The canonical kinds, after checking that every scene `config` samples can take `changes` of them.

    Raises:
        ConfigError: naming the bad value: no kinds, an unknown kind, `changes` not an integer from 1 to
            `config.min_objects` (each edit needs its own object), or kinds that could never apply K times.
    """
    if isinstance(kinds, str) or not kinds:
        raise ConfigError(f"edit kinds must be a non-empty list of kinds from {', '.join(EDIT_KINDS)}, got {kinds!r}")
    canonical = tuple(dict.fromkeys("+".join(parse_edit_kind(kind)) for kind in kinds))
    if not isinstance(changes, int) or isinstance(changes, bool) or not 1 <= changes <= config.min_objects:
        raise ConfigError(
            f"changes must be an integer from 1 to min_objects ({config.min_objects}): each edit changes its own "
            f"object; got {changes!r}"
        )
    if canonical == ("swap",) and 2 * changes > config.min_objects:
        raise ConfigError(f"changes={changes} swaps need {2 * changes} objects, min_objects is {config.min_objects}")
    if canonical == ("add",) and config.max_objects + changes > MAX_OBJECTS:
        raise ConfigError(
            f"changes={changes} adds to a scene of up to max_objects={config.max_objects} would exceed "
            f"{MAX_OBJECTS} objects"
        )
    if canonical == ("remove",) and changes >= config.min_objects:
        raise ConfigError(f"changes={changes} removals would empty a scene of min_objects={config.min_objects}")
    return canonical


def edit_scene(
    scene: Scene,
    rng: np.random.Generator,
    *,
    kinds: Sequence[str] = DEFAULT_EDIT_KINDS,
    changes: int = DEFAULT_CHANGES,
    config: SceneConfig | None = None,
) -> tuple[Scene, list[Change]]:
    """The spy scene: `changes` edits of `scene`, each on untouched objects, and the log of them in order.

    `config` gives the placement rules the edited scene keeps (default: CLEVR's); use the civilian's own.

    Raises:
        ConfigError: bad `kinds` or `changes` (see `validate_edit_options`).
        QualityRejected: this scene cannot take that many valid edits (e.g. too crowded to move or enlarge).
    """
    config = config or SceneConfig()
    canonical = validate_edit_options(kinds, changes, config)
    state = _EditState(current=scene, next_id=scene.next_id(), config=config)
    log: list[Change] = []
    for _ in range(changes):
        for index in rng.permutation(len(canonical)):
            change = _apply(canonical[int(index)], state, rng)
            if change is not None:
                break
        else:
            raise QualityRejected(
                f"only {len(log)} of {changes} edits of kinds {', '.join(canonical)} fit this "
                f"{len(scene.objects)}-object scene"
            )
        log.append(change)
    return state.current, log


@dataclass
class _EditState:
    """What the edits of one pair have done so far."""

    current: Scene
    next_id: int
    config: SceneConfig
    touched: set[int] = field(default_factory=set)
    ghosts: list[SceneObject] = field(default_factory=list)
    """Removed objects and moved objects' old places: later adds and moves keep clear of them."""

    def untouched(self) -> list[SceneObject]:
        return [obj for obj in self.current.objects if obj.id not in self.touched]

    def commit(self, scene: Scene, change: Change) -> Change | None:
        """Accept `scene` if it is valid: it becomes current and the change's objects become touched."""
        if placement_violations(scene, self.config):
            return None
        self.current = scene
        self.touched.update(change.object_ids)
        return change


def _apply(kind: str, state: _EditState, rng: np.random.Generator) -> Change | None:
    """One edit of `kind` on the current scene, or None when it cannot apply to it."""
    if kind == "add":
        return _add(state, rng)
    if kind == "remove":
        return _remove(state, rng)
    if kind == "swap":
        return _swap(state, rng)
    return _edit_object(kind.split("+"), state, rng)


def _edit_object(atoms: Sequence[str], state: _EditState, rng: np.random.Generator) -> Change | None:
    """Change `atoms` of one untouched object, trying the objects in random order until the scene stays valid."""
    candidates = state.untouched()
    directions = state.current.camera.ground_directions()
    for index in rng.permutation(len(candidates)):
        old = candidates[int(index)]
        new = replace(old, **{atom: _other_value(atom, getattr(old, atom), rng) for atom in atoms if atom != "move"})
        if "move" in atoms:
            others = [o for o in state.current.objects if o.id != old.id] + state.ghosts
            position = draw_position(
                rng,
                new.radius,
                others,
                state.config,
                directions,
                away_from=(old.x, old.y),
                min_travel=MIN_TRAVEL,
                tries=EDIT_DRAWS,
            )
            if position is None:
                continue
            new = replace(new, x=position[0], y=position[1])
        before = {atom: getattr(old, atom) for atom in atoms if atom != "move"}
        after = {atom: getattr(new, atom) for atom in atoms if atom != "move"}
        if "move" in atoms:
            before["3d_coords"], after["3d_coords"] = list(old.location), list(new.location)
        change = state.commit(state.current.with_object(new), Change("+".join(atoms), old.id, before, after))
        if change is not None:
            if "move" in atoms:
                state.ghosts.append(old)
            return change
    return None


def _other_value(atom: str, value: str, rng: np.random.Generator) -> str:
    """A value of attribute `atom` other than `value`, uniformly."""
    choices = {"color": tuple(COLORS), "shape": SHAPES, "material": MATERIALS, "size": tuple(SIZES)}[atom]
    return str(rng.choice([choice for choice in choices if choice != value]))


def _add(state: _EditState, rng: np.random.Generator) -> Change | None:
    """A new object drawn and placed as `sample_scene` places one, if the scene has room for it."""
    if len(state.current.objects) >= MAX_OBJECTS:
        return None
    others = list(state.current.objects) + state.ghosts
    directions = state.current.camera.ground_directions()
    obj = random_object(rng, state.next_id, others, state.config, directions, tries=EDIT_DRAWS)
    if obj is None:
        return None
    change = state.commit(state.current.with_object(obj), Change("add", obj.id, {}, _object_json(obj)))
    if change is not None:
        state.next_id += 1
    return change


def _remove(state: _EditState, rng: np.random.Generator) -> Change | None:
    """One untouched object taken away, if another object stays in the scene."""
    candidates = state.untouched()
    if not candidates or len(state.current.objects) < 2:
        return None
    obj = candidates[int(rng.integers(len(candidates)))]
    change = state.commit(state.current.without(obj.id), Change("remove", obj.id, _object_json(obj), {}))
    if change is not None:
        state.ghosts.append(obj)
    return change


def _swap(state: _EditState, rng: np.random.Generator) -> Change | None:
    """Two untouched objects that look different trade places (each keeps its own rotation)."""
    candidates = state.untouched()
    pairs = [(a, b) for a, b in itertools.combinations(candidates, 2) if a.attributes != b.attributes]
    for index in rng.permutation(len(pairs)):
        a, b = pairs[int(index)]
        moved_a, moved_b = replace(a, x=b.x, y=b.y), replace(b, x=a.x, y=a.y)
        change = Change(
            "swap",
            a.id,
            {"3d_coords": list(a.location), "other_3d_coords": list(b.location)},
            {"3d_coords": list(moved_a.location), "other_3d_coords": list(moved_b.location)},
            other_id=b.id,
        )
        if state.commit(state.current.with_object(moved_a).with_object(moved_b), change) is not None:
            return change
    return None


def _object_json(obj: SceneObject) -> dict[str, Any]:
    return {**obj.attributes, "3d_coords": list(obj.location), "rotation": obj.rotation}


def _object_text(data: Mapping[str, Any]) -> str:
    return f"{data['size']} {data['color']} {data['material']} {data['shape']} at {_xy(data['3d_coords'])}"


def _places(a: int, b: int, coords: Mapping[str, Any]) -> str:
    return f"object {a} at {_xy(coords['3d_coords'])}; object {b} at {_xy(coords['other_3d_coords'])}"


def _xy(coords: Sequence[float]) -> str:
    return f"({coords[0]:.2f}, {coords[1]:.2f})"


def describe(changes: Sequence[Change], before: Scene, after: Scene) -> str:
    """One English sentence stating every change, e.g.

    "The small red rubber cube became a small blue rubber sphere; the large gray metal cylinder moved left."
    Objects are named by CLEVR's phrase in the scene they are seen in (`before` for what changed or went,
    `after` for what appeared), with a ground position added when the phrase alone is ambiguous there.
    """
    clauses = [_clause(change, before, after) for change in changes]
    text = "; ".join(clauses)
    return text[:1].upper() + text[1:] + "."


def _clause(change: Change, before: Scene, after: Scene) -> str:
    if change.kind == "add":
        return f"{_article(after.object(change.object_id))} appeared"
    if change.kind == "remove":
        return f"{_name(before.object(change.object_id), before)} disappeared"
    if change.kind == "swap":
        first, second = before.object(change.object_id), before.object(change.other_id or 0)
        return f"{_name(first, before)} and {_name(second, before)} swapped places"
    old, new = before.object(change.object_id), after.object(change.object_id)
    verbs = []
    if set(change.atoms) & set(ATTRIBUTE_KINDS):
        verbs.append(f"became {_article(new)}")
    if "move" in change.atoms:
        verbs.append(f"moved {_heading(old, new, before)}")
    return f"{_name(old, before)} {' and '.join(verbs)}"


def _article(obj: SceneObject) -> str:
    return f"a {obj.phrase()}"


def _name(obj: SceneObject, scene: Scene) -> str:
    """ "the <phrase>", plus where it stands when another object of `scene` shares the phrase."""
    twins = [other for other in scene.objects if other.phrase() == obj.phrase() and other.id != obj.id]
    if not twins:
        return f"the {obj.phrase()}"
    return f"the {obj.phrase()} {_standing(obj, twins, scene)}"


def _standing(obj: SceneObject, twins: Sequence[SceneObject], scene: Scene) -> str:
    """Where `obj` is relative to its look-alikes: the direction that separates it from them the most."""
    directions = scene.camera.ground_directions()
    best_name, best_margin = "", -math.inf
    for name in ("left", "right", "front", "behind"):
        along = np.asarray(directions[name][:2])
        margin = min(float(np.dot(np.subtract((obj.x, obj.y), (t.x, t.y)), along)) for t in twins)
        if margin > best_margin:
            best_name, best_margin = name, margin
    if len(twins) == 1:
        return {"left": "on the left", "right": "on the right", "front": "in front", "behind": "at the back"}[best_name]
    return {
        "left": "furthest left",
        "right": "furthest right",
        "front": "nearest the front",
        "behind": "furthest back",
    }[best_name]


def _heading(old: SceneObject, new: SceneObject, scene: Scene) -> str:
    """The move's direction in the camera's terms, e.g. "left and toward the back"."""
    directions = scene.camera.ground_directions()
    step = np.array([new.x - old.x, new.y - old.y])
    sideways = float(np.dot(step, directions["left"][:2]))
    depth = float(np.dot(step, directions["behind"][:2]))
    parts = []
    if abs(sideways) >= 0.5 * abs(depth):
        parts.append("left" if sideways > 0 else "right")
    if abs(depth) >= 0.5 * abs(sideways):
        parts.append("toward the back" if depth > 0 else "toward the front")
    return " and ".join(parts)


def changed_ids(changes: Sequence[Change]) -> set[int]:
    """Every object id the edits touched: the objects whose pixels may differ between the two renders."""
    return {object_id for change in changes for object_id in change.object_ids}
