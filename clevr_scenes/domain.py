"""The CLEVR domain: its config, the pair generator (scene, edits, renders, composite), its registration.

A pair costs one whole-frame Cycles render of the civilian scene, one render of the spy scene per region its
edits can reach (`region.py`), and two denoising passes (`film.py`). The spy's region renders are spliced into
the civilian's raw passes: Cycles gives a pixel the same samples in a region render as in a whole frame, so
the spliced frame is what a whole render of the spy would be, save light that leaves the regions only by
indirect bounces. Denoised whole like the civilian's, it is blended in only inside the diff mask
(`composite.py`), so outside the mask the spy is the civilian bit for bit. Every step is deterministic: the same
seed gives the same bytes in any process, whatever ran there before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from clevr_scenes.blender import DEVICES, BlenderRenderer, Layers, RenderSettings, check_device
from clevr_scenes.composite import CLEAR_CHANGE, FEATHER, VISIBLE_CHANGE, compose
from clevr_scenes.edits import DEFAULT_CHANGES, DEFAULT_EDIT_KINDS, Change, describe, edit_scene, validate_edit_options
from clevr_scenes.film import HDR_SCALE, Denoiser, develop
from clevr_scenes.placement import sample_scene
from clevr_scenes.region import Region, change_area
from clevr_scenes.scene import Scene, SceneConfig
from clevr_scenes.visibility import check_likely_visible, check_visible
from clevr_scenes.vocabulary import COLOR_MODES
from datagen.checks import check_choice, check_int
from datagen.difficulty import difficulty
from datagen.errors import QualityRejected
from datagen.quality import QualityGate
from datagen.record import CHANGED_OBJECTS, Pair
from datagen.registry import Domain, WorkerResources, register_domain
from datagen.seeding import item_rng

MIN_SIZE, MAX_SIZE = 32, 4096
MAX_SAMPLES = 4096
CLEVR_PIXELS = 320 * 240
HARD_AREA = 1e-4
"""A change this small a share of the frame is a needle in a haystack."""
MIN_VISIBLE_PIXELS = 200
"""CLEVR's rule: every object shows at least this many pixels at 320x240 (scaled by pixel count)."""
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
    """Cycles samples per pixel; OpenImageDenoise (fast network) cleans them."""
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
        self._denoiser: Denoiser | None = None

    @property
    def renderer(self) -> BlenderRenderer:
        if self._renderer is None:
            self._renderer = BlenderRenderer(self._settings)
        return self._renderer

    @property
    def denoiser(self) -> Denoiser:
        if self._denoiser is None:
            self._denoiser = Denoiser()
        return self._denoiser

    def __call__(self, index: int, seed: int) -> Pair:
        """The pair of `seed`: sample and edit the scenes, then `pair` them.

        Raises:
            QualityRejected: the edits do not fit the scene, or an object shows too few pixels in either image.
        """
        config = self.config
        rng = item_rng(seed)
        civilian = sample_scene(rng, config.scene_config)
        spy, changes = edit_scene(
            civilian, rng, kinds=config.edit_kinds, changes=config.changes, config=config.scene_config
        )
        return self.pair(civilian, spy, changes)

    def pair(self, civilian: Scene, spy: Scene, changes: Sequence[Change]) -> Pair:
        """The pair of two scenes `changes` lead from one to the other: render, develop, composite the spy.

        Raises:
            QualityRejected: the edits change no pixel, or an object shows too few pixels in either image.
        """
        config = self.config
        area = change_area(civilian, spy, config.width, config.height)
        regions = area.regions
        if not regions:
            raise QualityRejected("the edits change no pixel of the frame")
        for scene, which in ((civilian, "civilian"), (spy, "spy")):
            check_likely_visible(scene, config.width, config.height, config.min_visible_pixels, which)
        full = self.renderer.render(civilian)
        check_visible(civilian, full.index, config.min_visible_pixels, "civilian")
        spliced = self.spy_layers(spy, full, regions)
        check_visible(spy, spliced.index, config.min_visible_pixels, "spy")
        civilian_rgb = develop(full, self.denoiser)
        image = compose(civilian_rgb, develop(spliced, self.denoiser), (full.index, spliced.index), area.footprints)
        return Pair(
            civilian=civilian_rgb,
            spy=image.rgb,
            diff_mask=image.mask,
            diff_boxes=list(image.boxes.values()),
            edits=[edit for change in changes for edit in change.edits()],
            description=describe(changes, civilian, spy),
            difficulty=difficulty(image.mask, [change.subtlety for change in changes], hard_area=HARD_AREA),
            meta={
                "civilian": civilian.to_json(config.width, config.height),
                "spy": spy.to_json(config.width, config.height),
                "changes": [change.to_json() for change in changes],
                CHANGED_OBJECTS: list(dict.fromkeys(i for change in changes for i in change.object_ids)),
                "boxes": [owner.describe() for owner in image.boxes],
                "render": {
                    "samples": config.samples,
                    "color_mode": config.color_mode,
                    "denoiser": f"OpenImageDenoise RT, fast, hdrScale {HDR_SCALE:g}",
                    "regions": [region.to_json() for region in regions],
                    "mask": {"visible_change": VISIBLE_CHANGE, "clear_change": CLEAR_CHANGE, "feather": FEATHER},
                },
            },
        )

    def spy_layers(self, spy: Scene, civilian: Layers, regions: Sequence[Region]) -> Layers:
        """The civilian's raw passes with each region rendered for the spy scene in their place.

        Regions may overlap: each is a render of the whole spy scene with the same samples, so they agree there.
        """
        layers = civilian
        for region in regions:
            layers = layers.spliced(region, self.renderer.render(spy, region))
        return layers


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
        check_int(f"image size: {name}", size, MIN_SIZE, MAX_SIZE, unit="pixels")
    check_int("samples", config.samples, 1, MAX_SAMPLES)
    check_choice("color_mode", config.color_mode, COLOR_MODES, what="colour mode")
    check_choice("device", config.device, DEVICES)
    validate_edit_options(config.edit_kinds, config.changes, config.scene_config)
    check_device(config.device)


def worker_resources(config: ClevrConfig) -> WorkerResources:
    """One core per Blender worker, and a whole GPU when Cycles renders on one (it does not share a device well)."""
    return WorkerResources(cpus=1.0, gpus=0.0 if config.device == "cpu" else 1.0)


DOMAIN = register_domain(
    Domain(
        name="clevr",
        config_type=ClevrConfig,
        make_generator=make_generator,
        quality=QUALITY,
        summary="CLEVR-style 3D scenes rendered with Blender; objects recoloured, reshaped, moved, added...",
        prompt_hint="a few of the objects in the scene differ, for example in colour, shape, size or material",
        resources=worker_resources,
    )
)
