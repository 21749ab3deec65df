"""CLEVR scenes as data: vocabulary, camera, placement rules, the scene graph JSON and edits (no bpy)."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest

from clevr_scenes.camera import BASE_LOCATION, Camera, sample_camera
from clevr_scenes.edits import (
    EDIT_KINDS,
    MIN_TRAVEL,
    Change,
    changed_ids,
    describe,
    edit_scene,
    parse_edit_kind,
    validate_edit_options,
)
from clevr_scenes.placement import placement_violations, sample_scene
from clevr_scenes.relations import relationships
from clevr_scenes.scene import Lights, Scene, SceneConfig, SceneObject
from clevr_scenes.vocabulary import COLORS, SIZES, clevr_linear, linear_color, shape_scale, srgb_to_linear
from datagen.errors import ConfigError, QualityRejected

CONFIG = SceneConfig()
W, H = 320, 240


def _scene(seed: int, config: SceneConfig = CONFIG) -> Scene:
    return sample_scene(np.random.default_rng(seed), config)


def _obj(object_id: int, x: float, y: float, **attributes: str) -> SceneObject:
    values = {"shape": "sphere", "size": "small", "material": "rubber", "color": "red", **attributes}
    return SceneObject(id=object_id, x=x, y=y, rotation=0.0, **values)


# --- vocabulary ---------------------------------------------------------------------------------------------


def test_vocabulary_numbers_are_clevrs() -> None:
    assert SIZES == {"large": 0.7, "small": 0.35}
    assert len(COLORS) == 8 and COLORS["blue"] == (42, 75, 215)
    assert shape_scale("cube", "large") == pytest.approx(0.7 / math.sqrt(2))
    assert shape_scale("sphere", "small") == 0.35
    assert clevr_linear((255, 0, 51)) == (1.0, 0.0, 0.2)
    assert srgb_to_linear((0, 10, 128, 255)) == pytest.approx((0.0, 10 / 255 / 12.92, 0.2158605, 1.0), abs=1e-6)
    assert linear_color("red", "srgb")[0] < linear_color("red", "clevr")[0]
    with pytest.raises(ValueError, match="colour mode"):
        linear_color("red", "hsv")


# --- camera ----------------------------------------------------------------------------------------------


def test_camera_pose_is_a_rotation_aimed_at_the_origin() -> None:
    camera = sample_camera(np.random.default_rng(3), 0.5)
    assert np.abs(np.subtract(camera.location, BASE_LOCATION)).max() <= 0.5
    rotation = camera.rotation_matrix()
    np.testing.assert_allclose(rotation.T @ rotation, np.eye(3), atol=1e-12)
    assert np.linalg.det(rotation) == pytest.approx(1.0)
    view = -rotation[:, 2]
    np.testing.assert_allclose(view, -np.asarray(camera.location) / np.linalg.norm(camera.location), atol=1e-12)
    rx, ry, rz = camera.rotation_euler()
    cx, sx, cy, sy, cz, sz = math.cos(rx), math.sin(rx), math.cos(ry), math.sin(ry), math.cos(rz), math.sin(rz)
    euler = (
        np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
        @ np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
        @ np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    )
    np.testing.assert_allclose(euler, rotation, atol=1e-12)


@pytest.mark.parametrize(("width", "height"), [(320, 240), (240, 320)])
def test_projection_follows_blenders_conventions(width: int, height: int) -> None:
    camera = Camera()
    rotation = camera.rotation_matrix()
    centre = camera.project(np.zeros(3), width, height)[0]
    np.testing.assert_allclose(centre[:2], (width / 2, height / 2), atol=1e-9)
    assert centre[2] == pytest.approx(np.linalg.norm(camera.location))
    right, up = camera.project(np.stack([rotation[:, 0], rotation[:, 1]]), width, height)
    assert right[0] > width / 2 and right[1] == pytest.approx(height / 2)
    assert up[1] < height / 2 and up[0] == pytest.approx(width / 2)
    # Sensor fit AUTO: the 32 mm sensor spans the larger side, so a point at the frame's edge on that side
    # lies at 16 / 35 of its depth sideways.
    depth = 10.0
    ahead = np.asarray(camera.location) - depth * rotation[:, 2]
    offset = depth * 16.0 / 35.0
    along = rotation[:, 0] if width >= height else rotation[:, 1]
    edge = camera.project(ahead + offset * along, width, height)[0]
    np.testing.assert_allclose(edge[:2], (width, height / 2) if width >= height else (width / 2, 0.0), atol=1e-9)
    ndc = camera.project_ndc(ahead + offset * along, width, height)[0]
    np.testing.assert_allclose(ndc, (1.0, 0.5, depth) if width >= height else (0.5, 1.0, depth), atol=1e-9)


def test_ground_directions_match_the_image() -> None:
    camera = sample_camera(np.random.default_rng(8), 0.5)
    directions = camera.ground_directions()
    for name, opposite in (("left", "right"), ("front", "behind"), ("above", "below")):
        np.testing.assert_allclose(directions[name], -np.asarray(directions[opposite]))
    assert directions["left"][2] == 0.0 and np.dot(directions["left"], directions["behind"]) == pytest.approx(0.0)
    origin, left, behind = camera.project(np.array([(0, 0, 0), directions["left"], directions["behind"]]), W, H)
    assert left[0] < origin[0] - 10
    assert behind[2] > origin[2] and behind[1] < origin[1]


# --- placement --------------------------------------------------------------------------------------------


def _obeys_clevr_rules(scene: Scene, config: SceneConfig) -> bool:
    """The rules, computed here from scratch: gaps between footprints, offsets along left and behind, bounds."""
    xy = np.array([(obj.x, obj.y) for obj in scene.objects])  # [N, 2]
    radii = np.array([SIZES[obj.size] for obj in scene.objects])  # [N]
    delta = xy[:, None, :] - xy[None, :, :]  # [N, N, 2]
    gaps = np.linalg.norm(delta, axis=-1) - radii[:, None] - radii[None, :]
    directions = scene.camera.ground_directions()
    apart = ~np.eye(len(xy), dtype=bool)
    offsets = [np.abs(delta @ np.asarray(directions[name][:2])) for name in ("left", "behind")]
    return bool(
        np.all(np.abs(xy) <= 3.0)
        and np.all(gaps[apart] >= config.min_dist)
        and all(np.all(offset[apart] >= config.margin) for offset in offsets)
    )


def test_placement_rules_hold_for_1000_sampled_scenes() -> None:
    counts = set()
    for seed in range(1000):
        scene = _scene(seed)
        assert _obeys_clevr_rules(scene, CONFIG) and placement_violations(scene, CONFIG) == [], seed
        assert scene.ids() == tuple(range(1, len(scene.objects) + 1))
        counts.add(len(scene.objects))
    assert counts == {4, 5, 6}


def test_crowded_scenes_still_obey_the_rules() -> None:
    config = SceneConfig(min_objects=10, max_objects=10)
    for seed in range(60):
        scene = _scene(seed, config)
        assert len(scene.objects) == 10 and _obeys_clevr_rules(scene, config)


def test_violations_name_each_broken_rule() -> None:
    camera = Camera()
    left = np.asarray(camera.ground_directions()["left"][:2])
    behind = np.asarray(camera.ground_directions()["behind"][:2])
    far = 2.0 * (left + behind)
    touching = Scene((_obj(1, 0.0, 0.0), _obj(2, *(0.5 * (left + behind)))), camera)
    assert any("min_dist" in p and "objects 1 and 2" in p for p in placement_violations(touching, CONFIG))
    in_line = Scene((_obj(1, 0.0, 0.0), _obj(2, *(2.0 * behind + 0.1 * left))), camera)
    assert any("along left" in p for p in placement_violations(in_line, CONFIG))
    outside = Scene((_obj(1, 3.2, 0.0), _obj(2, *(far - (3.2, 0.0)))), camera)
    assert any("object 1: centre" in p for p in placement_violations(outside, CONFIG))
    assert placement_violations(Scene((_obj(1, 0.0, 0.0), _obj(2, *far)), camera), CONFIG) == []


def test_config_values_are_checked() -> None:
    for bad, named in (
        ({"min_objects": 2}, "min_objects"),
        ({"max_objects": 11}, "max_objects"),
        ({"min_objects": 6, "max_objects": 5}, "min_objects"),
        ({"camera_jitter": -1.0}, "camera_jitter"),
        ({"margin": 1.5}, "margin"),
        ({"max_retries": 0}, "max_retries"),
    ):
        with pytest.raises(ConfigError, match=named):
            SceneConfig(**bad)


# --- scene graph ------------------------------------------------------------------------------------------


def test_same_seed_same_scene_graph() -> None:
    first, again, other = (json.dumps(_scene(seed).to_json(W, H)) for seed in (11, 11, 12))
    assert first == again
    assert first != other


def test_scene_graph_json_is_clevrs_and_round_trips() -> None:
    scene = _scene(5)
    graph = json.loads(json.dumps(scene.to_json(W, H)))
    assert Scene.from_json(graph) == scene
    for obj, entry in zip(scene.objects, graph["objects"]):
        assert set(entry) >= {"shape", "size", "material", "color", "3d_coords", "rotation", "pixel_coords", "id"}
        assert entry["3d_coords"] == [obj.x, obj.y, obj.z] and obj.z == obj.scale
        x, y, depth = scene.camera.project(np.asarray(obj.location), W, H)[0]
        assert entry["pixel_coords"] == [round(x), round(y), depth]
    assert set(graph["directions"]) == {"left", "right", "front", "behind", "above", "below"}
    # With margin 0.4 > eps 0.2, every other object is exactly one of left/right and one of front/behind.
    relations = graph["relationships"]
    for i in range(len(scene.objects)):
        others = set(range(len(scene.objects))) - {i}
        for a, b in (("left", "right"), ("front", "behind")):
            assert set(relations[a][i]) | set(relations[b][i]) == others
            assert not set(relations[a][i]) & set(relations[b][i])


def test_relationships_use_clevrs_eps() -> None:
    directions = {"left": (1, 0, 0), "right": (-1, 0, 0), "front": (0, -1, 0), "behind": (0, 1, 0)}
    result = relationships([(0, 0, 0), (0.5, 0.1, 0), (0.15, -1.0, 0)], directions, eps=0.2)
    assert result["left"] == [[1], [], [1]]
    assert result["right"] == [[], [0, 2], []]
    assert result["front"] == [[2], [2], []]
    assert result["behind"] == [[], [], [0, 1]]


def test_lights_are_jittered_within_bounds() -> None:
    scene = _scene(21)
    for name in ("key", "fill", "back"):
        offset = np.subtract(getattr(scene.lights, name), getattr(Lights(), name))
        assert 0 < np.abs(offset).max() <= 1.0


# --- edits ------------------------------------------------------------------------------------------------


def _replay(civilian: Scene, log: list[Change]) -> dict[int, SceneObject]:
    """The spy's objects rebuilt from the civilian and the change log alone, checking every `before`."""
    objects = {obj.id: obj for obj in civilian.objects}
    for change in log:
        if change.kind == "add":
            assert change.object_id not in objects and change.before == {}
            a = change.after
            attrs = {key: a[key] for key in ("shape", "size", "material", "color")}
            x, y = a["3d_coords"][:2]
            objects[change.object_id] = SceneObject(change.object_id, **attrs, x=x, y=y, rotation=a["rotation"])
            assert list(objects[change.object_id].location) == a["3d_coords"]
        elif change.kind == "remove":
            obj = objects.pop(change.object_id)
            assert change.after == {} and change.before["3d_coords"] == list(obj.location)
            assert {key: change.before[key] for key in obj.attributes} == obj.attributes
        elif change.kind == "swap":
            a, b = objects[change.object_id], objects[change.other_id]
            assert change.before == {"3d_coords": list(a.location), "other_3d_coords": list(b.location)}
            a, b = (
                replace(a, x=change.after["3d_coords"][0], y=change.after["3d_coords"][1]),
                replace(b, x=change.after["other_3d_coords"][0], y=change.after["other_3d_coords"][1]),
            )
            objects[a.id], objects[b.id] = a, b
        else:
            obj = objects[change.object_id]
            for atom in change.atoms:
                if atom == "move":
                    assert change.before["3d_coords"] == list(obj.location)
                else:
                    assert change.before[atom] == getattr(obj, atom) != change.after[atom]
            values = {atom: change.after[atom] for atom in change.atoms if atom != "move"}
            obj = replace(obj, **values)
            if "move" in change.atoms:
                obj = replace(obj, x=change.after["3d_coords"][0], y=change.after["3d_coords"][1])
                assert change.after["3d_coords"] == list(obj.location)
            objects[obj.id] = obj
    return objects


def _check_pair(civilian: Scene, spy: Scene, log: list[Change], config: SceneConfig = CONFIG) -> None:
    assert _obeys_clevr_rules(spy, config) and placement_violations(spy, config) == []
    assert {obj.id: obj for obj in spy.objects} == _replay(civilian, log)
    touched = [object_id for change in log for object_id in change.object_ids]
    assert len(touched) == len(set(touched)), "each edit must touch its own objects"
    before, after = {o.id: o for o in civilian.objects}, {o.id: o for o in spy.objects}
    differing = {i for i in before.keys() | after.keys() if before.get(i) != after.get(i)}
    assert differing == changed_ids(log)
    assert spy.camera == civilian.camera and spy.lights == civilian.lights
    sentence = describe(log, civilian, spy)
    assert sentence[0].isupper() and sentence.endswith(".") and sentence.count(";") == len(log) - 1
    for change in log:
        assert len(change.edits()) == (1 if change.kind in ("add", "remove", "swap") else len(change.atoms))
        json.dumps(change.to_json())


@pytest.mark.parametrize("kind", EDIT_KINDS)
def test_every_edit_kind_gives_a_valid_scene_and_an_exact_log(kind: str) -> None:
    changes, rejected = 2, 0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        civilian = sample_scene(rng, CONFIG)
        try:
            spy, log = edit_scene(civilian, rng, kinds=[kind], changes=changes, config=CONFIG)
        except QualityRejected:  # a scene with no room left for a second add, or no two objects to swap
            rejected += 1
            continue
        assert [change.kind for change in log] == [kind] * changes
        _check_pair(civilian, spy, log)
        if kind == "move":
            for change in log:
                old, new = change.before["3d_coords"], change.after["3d_coords"]
                assert math.dist(old[:2], new[:2]) >= MIN_TRAVEL
        if kind == "swap":
            for change in log:
                assert civilian.object(change.object_id).attributes != civilian.object(change.other_id).attributes
        if kind == "add":
            assert {change.object_id for change in log} == {civilian.next_id(), civilian.next_id() + 1}
    assert rejected <= 2


def test_default_edit_is_the_papers_two_objects_new_colour_and_shape() -> None:
    rng = np.random.default_rng(4)
    civilian = sample_scene(rng, CONFIG)
    spy, log = edit_scene(civilian, rng)
    assert [change.kind for change in log] == ["color+shape", "color+shape"]
    _check_pair(civilian, spy, log)
    for change in log:
        old, new = civilian.object(change.object_id), spy.object(change.object_id)
        assert old.color != new.color and old.shape != new.shape
        assert (old.size, old.material, old.x, old.y) == (new.size, new.material, new.x, new.y)
        ops = [(e.op, e.target, e.before, e.after) for e in change.edits()]
        assert ops == [
            ("recolor", f"object {old.id}", old.color, new.color),
            ("reshape", f"object {old.id}", old.shape, new.shape),
        ]
    assert describe(log, civilian, spy).startswith(f"The {civilian.object(log[0].object_id).phrase()}")


def test_mixed_and_combined_kinds_on_crowded_scenes() -> None:
    config = SceneConfig(min_objects=8, max_objects=10)
    kinds = ["size+move", "material", "remove", "add", "swap", "color+shape+size"]
    seen = set()
    for seed in range(30):
        rng = np.random.default_rng(seed)
        civilian = sample_scene(rng, config)
        spy, log = edit_scene(civilian, rng, kinds=kinds, changes=3, config=config)
        _check_pair(civilian, spy, log, config)
        seen.update(change.kind for change in log)
    assert seen == set(kinds)


def test_edits_are_deterministic() -> None:
    def run() -> tuple[dict, list]:
        rng = np.random.default_rng(99)
        civilian = sample_scene(rng, CONFIG)
        spy, log = edit_scene(civilian, rng, kinds=list(EDIT_KINDS), changes=3, config=CONFIG)
        return spy.to_json(W, H), [change.to_json() for change in log]

    assert run() == run()


def test_describe_names_moves_and_look_alikes() -> None:
    camera = Camera()
    left, behind = (np.asarray(camera.ground_directions()[name][:2]) for name in ("left", "behind"))
    twin_a, twin_b = _obj(1, *(1.5 * left), color="blue"), _obj(2, *(-1.5 * left + 0.5 * behind), color="blue")
    civilian = Scene((twin_a, twin_b, _obj(3, *(-2.0 * behind), shape="cube")), camera)
    moved = replace(twin_a, x=float(twin_a.x + 1.5 * behind[0]), y=float(twin_a.y + 1.5 * behind[1]))
    spy = civilian.with_object(moved)
    log = [Change("move", 1, {"3d_coords": list(twin_a.location)}, {"3d_coords": list(moved.location)})]
    assert describe(log, civilian, spy) == "The small blue rubber sphere on the left moved toward the back."
    added = _obj(4, 2.0, 2.0, size="large", material="metal")
    log = [Change("add", 4, {}, {})]
    assert describe(log, civilian, civilian.with_object(added)) == "A large red metal sphere appeared."


def test_bad_edit_options_are_named() -> None:
    for kinds, changes, named in (
        (["colour"], 1, "unknown edit kind 'colour'"),
        (["add+color"], 1, "stand alone"),
        (["color+color"], 1, "twice"),
        ([], 1, "non-empty"),
        (["color"], 5, "changes must be"),
        (["color"], 0, "changes must be"),
        (["swap"], 3, "swaps need 6 objects"),
        (["remove"], 4, "empty a scene"),
    ):
        with pytest.raises(ConfigError, match=named):
            validate_edit_options(kinds, changes, CONFIG)
    with pytest.raises(ConfigError, match="exceed 10"):
        validate_edit_options(["add"], 2, SceneConfig(min_objects=9, max_objects=9))
    assert parse_edit_kind("shape+color") == ("color", "shape")


def test_a_scene_that_cannot_take_the_edits_is_rejected() -> None:
    camera = Camera()
    diagonal = np.add(camera.ground_directions()["left"][:2], camera.ground_directions()["behind"][:2])
    civilian = Scene(
        (_obj(1, 0.0, 0.0), _obj(2, *(1.5 * diagonal), color="blue"), _obj(3, *(-1.5 * diagonal), color="green")),
        camera,
    )
    assert placement_violations(civilian, CONFIG) == []
    with pytest.raises(QualityRejected, match="only 2 of 3"):
        edit_scene(civilian, np.random.default_rng(0), kinds=["remove"], changes=3, config=CONFIG)
    look_alikes = Scene(tuple(replace(obj, color="red") for obj in civilian.objects))
    with pytest.raises(QualityRejected, match="only 0 of 1"):
        edit_scene(look_alikes, np.random.default_rng(0), kinds=["swap"], changes=1, config=CONFIG)
