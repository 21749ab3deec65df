"""The CLEVR domain: its config, the pair generator (scene, edits, renders, composite), its registration.

A pair costs one full Cycles render of the civilian scene plus, per region the edits can affect
(`region.py`), one render of each scene with the same render border. Two renders with the same border
share the denoiser's context (OpenImageDenoise sees only the border, so a border render differs from the
full render by a few levels everywhere); their difference is exactly the edit's effect. The spy image is
the civilian image plus that difference where it is visible: so outside `diff_mask` the two images are
identical by construction, and there is no seam where a region meets the rest of the frame.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from clevr_scenes.blender import DEVICES, BlenderRenderer, Layers, RenderSettings, check_device
from clevr_scenes.edits import DEFAULT_CHANGES, DEFAULT_EDIT_KINDS, Change, describe, edit_scene, validate_edit_options
from clevr_scenes.placement import sample_scene
from clevr_scenes.region import Region, changed_ids, spy_regions
from clevr_scenes.scene import Scene, SceneConfig
from clevr_scenes.vocabulary import COLOR_MODES
from datagen.errors import ConfigError, QualityRejected
from datagen.masks import channel_max, dilate
from datagen.quality import QualityGate
from datagen.record import Pair
from datagen.registry import Domain, register_domain
from datagen.seeding import item_rng

MIN_SIZE, MAX_SIZE = 32, 4096
MAX_SAMPLES = 4096
CLEVR_PIXELS = 320 * 240
MIN_VISIBLE_PIXELS = 200
"""CLEVR's rule: every object shows at least this many pixels at 320x240 (scaled by pixel count)."""
VISIBLE_CHANGE = 3
"""Per-channel difference (of 255) from which a rendered change counts as visible and joins `diff_mask`.

Two renders of one region differ below this where the edit only shifts path-tracing noise or adds faint
indirect light; those pixels keep the civilian's values, which is what makes the outside exactly equal."""
CONTEXT_PIXELS = 8
"""Margin rendered around each region and then dropped (edge effects of the denoiser; measured: lines of
differences above VISIBLE_CHANGE along region edges without it, none with it)."""
# Outside the mask the images are equal by construction (tolerance 0). A small object at tiny test sizes
# shows only a few dozen pixels, hence the low minimum of clearly changed pixels.
QUALITY = QualityGate(tolerance=0, mask_dilation=0, changed_threshold=24, min_changed_pixels=12, max_area_fraction=0.5)


@dataclass(frozen=True)
class ClevrConfig:
    """Options of `vzero clevr`; `asdict` of it is saved in the run manifest."""

    width: int = 320
    """Image width in pixels (CLEVR: 320)."""
    height: int = 240
    """Image height in pixels (CLEVR: 240)."""
    samples: int = 8
    """Cycles samples per pixel; OpenImageDenoise (fast prefilter) cleans them."""
    min_objects: int = 4
    """Fewest objects in a civilian scene (the paper: 4)."""
    max_objects: int = 6
    """Most objects in a civilian scene (the paper: 6)."""
    changes: int = DEFAULT_CHANGES
    """Edits per pair, each on its own object."""
    edit_kinds: tuple[str, ...] = DEFAULT_EDIT_KINDS
    """Edit kinds drawn from; per-object kinds join with '+' to apply together (the paper: color+shape)."""
    color_mode: str = "srgb"
    """'srgb' decodes CLEVR's 8-bit colours properly; 'clevr' feeds them in as linear (CLEVR's washed-out look)."""
    device: str = "cpu"
    """Cycles device: cpu, or cuda / optix for a GPU."""

    @property
    def scene_config(self) -> SceneConfig:
        return SceneConfig(min_objects=self.min_objects, max_objects=self.max_objects)

    @property
    def min_visible_pixels(self) -> int:
        return max(1, round(MIN_VISIBLE_PIXELS * self.width * self.height / CLEVR_PIXELS))


class ClevrPairGenerator:
    """Makes CLEVR pairs; its Blender session opens on the first pair, so only worker processes pay for it."""

    skipped_inputs: Sequence = ()
    input_digest = ""

    def __init__(self, config: ClevrConfig) -> None:
        self.config = config
        self._settings = RenderSettings(config.width, config.height, config.samples, config.device, config.color_mode)
        self._renderer: BlenderRenderer | None = None

    @property
    def renderer(self) -> BlenderRenderer:
        if self._renderer is None:
            self._renderer = BlenderRenderer(self._settings)
        return self._renderer

    def __call__(self, index: int, seed: int) -> Pair:
        """The pair of `seed`: sample and edit the scenes, render, composite the spy, measure what changed.

        Raises:
            QualityRejected: the edits do not fit the scene, or an object shows too few pixels in either image.
        """
        config = self.config
        rng = item_rng(seed)
        civilian = sample_scene(rng, config.scene_config)
        spy, changes = edit_scene(
            civilian, rng, kinds=config.edit_kinds, changes=config.changes, config=config.scene_config
        )
        regions = spy_regions(civilian, spy, config.width, config.height)
        if not regions:
            raise QualityRejected("the edits change no pixel of the frame")
        full = self.renderer.render(civilian)
        check_visible(civilian, full.index, config.min_visible_pixels, "civilian")
        composite = self.composite(civilian, spy, full, regions)
        check_visible(spy, composite.index, config.min_visible_pixels, "spy")
        return Pair(
            civilian=full.rgb,
            spy=composite.rgb,
            diff_mask=composite.mask,
            diff_boxes=object_boxes(changes, full.index, composite.index),
            edits=[edit for change in changes for edit in change.edits()],
            description=describe(changes, civilian, spy),
            difficulty=difficulty(composite.mask, changes),
            meta={
                "civilian": civilian.to_json(config.width, config.height),
                "spy": spy.to_json(config.width, config.height),
                "changes": [change.to_json() for change in changes],
                "render": {
                    "samples": config.samples,
                    "color_mode": config.color_mode,
                    "regions": [region.to_json() for region in regions],
                },
            },
        )

    def composite(self, civilian: Scene, spy: Scene, full: Layers, regions: Sequence[Region]) -> Composite:
        """The spy image, its object index and the diff mask, from renders of `regions` only (see module doc)."""
        changed = changed_ids(civilian, spy)
        composite = Composite(rgb=full.rgb.copy(), index=full.index.copy(), mask=np.zeros(full.index.shape, bool))
        for region in regions:
            # The denoiser treats the rows and columns at a border's edge differently, and differently for
            # different content: render a margin around the region and use only its inside.
            context = region.grown(CONTEXT_PIXELS, self.config.width, self.config.height)
            inner = region.within(context)
            before = self.renderer.render(civilian, context)
            after = self.renderer.render(spy, context)
            delta = after.rgb[inner].astype(np.int16) - before.rgb[inner].astype(np.int16)  # [h, w, 3]
            silhouettes = np.isin(before.index[inner], changed) | np.isin(after.index[inner], changed)
            visible = channel_max(np.abs(delta).astype(np.uint8)) >= VISIBLE_CHANGE
            local = dilate(_closed(visible | silhouettes), 1)
            # Regions may overlap: each one's renders hold every change on its pixels, so the last one wins whole.
            composite.mask[region.slices] = local
            patch = full.rgb[region.slices].copy()
            patch[local] = np.clip(patch[local].astype(np.int16) + delta[local], 0, 255).astype(np.uint8)
            composite.rgb[region.slices] = patch
            composite.index[region.slices] = after.index[inner]
        return composite


@dataclass(frozen=True)
class Composite:
    """The spy's layers assembled from the civilian's full render and the region renders.

    Attributes:
        rgb: `[H, W, 3]` uint8, the spy image.
        index: `[H, W]` int32, the spy's object ids (exact: occlusion changes stay inside the region).
        mask: `[H, W]` bool, the diff mask.
    """

    rgb: np.ndarray
    index: np.ndarray
    mask: np.ndarray


def _closed(mask: np.ndarray) -> np.ndarray:
    """Fill one-pixel gaps (a shadow's edge crossing the threshold on and off)."""
    return cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8)).astype(bool)


def check_visible(scene: Scene, index: np.ndarray, minimum: int, which: str) -> None:
    """Raise `QualityRejected` if an object of `scene` shows fewer than `minimum` pixels in `index`."""
    counts = np.bincount(index.ravel(), minlength=scene.next_id())
    for obj in scene.objects:
        if counts[obj.id] < minimum:
            raise QualityRejected(
                f"{which} image: object {obj.id} ({obj.phrase()}) shows {counts[obj.id]} pixels (minimum {minimum})"
            )


def object_boxes(changes: Sequence[Change], before: np.ndarray, after: np.ndarray) -> list[list[int]]:
    """One `[x0, y0, x1, y1]` box per changed object, around its pixels in either image (`[H, W]` object ids).

    Boxes locate the changed objects; their shadows and reflections are in `diff_mask`, not in the boxes.
    """
    boxes = []
    for object_id in sorted({i for change in changes for i in change.object_ids}):
        ys, xs = np.nonzero((before == object_id) | (after == object_id))
        if xs.size:
            boxes.append([int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1])
    return boxes


def difficulty(mask: np.ndarray, changes: Sequence[Change]) -> float:
    """0 easy .. 1 hard: half from how small the changed area is (log scale), half from the edit kinds' subtlety."""
    area = max(float(mask.mean()), 1e-6)
    smallness = 1.0 - min(1.0, max(0.0, math.log10(area / 1e-4) / math.log10(0.2 / 1e-4)))
    subtlety = float(np.mean([change.subtlety for change in changes]))
    return round(0.5 * smallness + 0.5 * subtlety, 4)


def make_generator(config: ClevrConfig) -> ClevrPairGenerator:
    """Validate `config` (before any work) and build the generator; Blender starts on its first pair.

    Raises:
        ConfigError: a value is out of range or unknown.
    """
    validate(config)
    return ClevrPairGenerator(config)


def validate(config: ClevrConfig) -> None:
    """Raise `ConfigError` naming the first bad value and what is allowed."""
    for name, size in (("width", config.width), ("height", config.height)):
        if not isinstance(size, int) or not MIN_SIZE <= size <= MAX_SIZE:
            raise ConfigError(
                f"image size: {name} must be an integer from {MIN_SIZE} to {MAX_SIZE} pixels, got {size!r}"
            )
    if not isinstance(config.samples, int) or not 1 <= config.samples <= MAX_SAMPLES:
        raise ConfigError(f"samples must be an integer from 1 to {MAX_SAMPLES}, got {config.samples!r}")
    if config.color_mode not in COLOR_MODES:
        raise ConfigError(f"unknown colour mode {config.color_mode!r}; choose from {', '.join(COLOR_MODES)}")
    if config.device not in DEVICES:
        raise ConfigError(f"unknown device {config.device!r}; choose from {', '.join(DEVICES)}")
    validate_edit_options(config.edit_kinds, config.changes, config.scene_config)
    check_device(config.device)


DOMAIN = register_domain(Domain(name="clevr", config_type=ClevrConfig, make_generator=make_generator, quality=QUALITY))
