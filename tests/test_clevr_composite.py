"""CLEVR's spy composite, change area and lamp geometry on synthetic data and scene graphs (no bpy)."""

from __future__ import annotations

import math
from dataclasses import replace

import cv2
import numpy as np
import pytest

from clevr_scenes.camera import Camera
from clevr_scenes.composite import CLEAR_CHANGE, FEATHER, VISIBLE_CHANGE, compose
from clevr_scenes.lamps import LAMP_SIZE, blocked_share, lamp_corners, occludes
from clevr_scenes.region import MIN_SHADOW_SHARE, Owner, change_area
from clevr_scenes.scene import LIGHT_ENERGY_W, Lights, Scene, SceneObject

H, W = 60, 80
CHANGED = Owner(mirror=False, object_id=1)


def _disc(cx: float, cy: float, radius: float) -> np.ndarray:
    ys, xs = np.mgrid[:H, :W]
    return (xs - cx) ** 2 + (ys - cy) ** 2 <= radius**2


def _frames() -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """A textured civilian image and a spy frame with a silhouette change, a shadow ramp, faint render-like
    differences everywhere, a faint speck and a clear speck; and the ground truth of each."""
    rng = np.random.default_rng(7)
    civilian = rng.integers(40, 200, size=(H, W, 3)).astype(np.uint8)
    frame = civilian.astype(np.int16)
    parts = {"silhouette": _disc(20, 30, 6), "faint speck": _disc(60, 10, 1), "clear speck": _disc(70, 50, 1)}
    frame[parts["silhouette"]] += 60
    # A soft shadow beside the object: 12 levels darker at its centre, fading to nothing 10 pixels out.
    ys, xs = np.mgrid[:H, :W]
    depth = np.clip(12.0 * (1.0 - np.hypot(xs - 34, ys - 30) / 10.0), 0.0, None)
    frame -= np.rint(depth).astype(np.int16)[..., None]
    parts["shadow"] = depth >= VISIBLE_CHANGE
    # What a denoiser leaves after a few indirect samples met the object: one or two levels, all over.
    frame += rng.integers(-2, 3, size=(H, W, 1)).astype(np.int16)
    frame[parts["faint speck"]] += VISIBLE_CHANGE + 1
    frame[parts["clear speck"]] += CLEAR_CHANGE + 10
    return civilian, np.clip(frame, 0, 255).astype(np.uint8), parts


def _indices(silhouette: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    before = np.zeros((H, W), np.int32)
    after = before.copy()
    after[silhouette] = 1
    return before, after


def test_the_spy_is_the_civilian_outside_the_mask_the_frame_where_it_changed_and_a_blend_between() -> None:
    civilian, frame, parts = _frames()
    image = compose(civilian, frame, _indices(parts["silhouette"]), {CHANGED: np.ones((H, W), bool)})
    outside = ~image.mask
    assert np.array_equal(image.rgb[outside], civilian[outside])
    delta = np.abs(frame.astype(int) - civilian).max(axis=2)
    changed = parts["silhouette"] | (parts["shadow"] & (delta >= VISIBLE_CHANGE))
    assert np.array_equal(image.rgb[changed], frame[changed])
    low, high = np.minimum(civilian, frame), np.maximum(civilian, frame)
    assert ((image.rgb >= low) & (image.rgb <= high)).all()
    blended = image.mask & (image.rgb != frame).any(axis=2) & (image.rgb != civilian).any(axis=2)
    assert blended.any(), "the mask's edge fades the frame in over FEATHER pixels"


def test_faint_specks_and_render_level_differences_stay_out_of_the_mask_clear_ones_stay_in() -> None:
    civilian, frame, parts = _frames()
    image = compose(civilian, frame, _indices(parts["silhouette"]), {CHANGED: np.ones((H, W), bool)})
    grown_truth = cv2.dilate((parts["silhouette"] | parts["shadow"]).astype(np.uint8), np.ones((9, 9), np.uint8))
    assert not image.mask[parts["faint speck"]].any()
    assert image.mask[parts["clear speck"]].all()
    noise_field = image.mask & ~grown_truth.astype(bool) & ~_grown(parts["clear speck"], 4)
    assert not noise_field.any(), f"{int(noise_field.sum())} mask pixels in a field of 1-2 level differences"


def test_the_mask_stays_inside_the_footprints_and_every_clear_difference_is_in_a_box() -> None:
    civilian, frame, parts = _frames()
    footprint = _grown(parts["silhouette"] | parts["shadow"], 3)
    mirror = Owner(mirror=True, object_id=2)
    image = compose(civilian, frame, _indices(parts["silhouette"]), {CHANGED: footprint, mirror: _disc(70, 50, 3)})
    assert not (image.mask & ~_grown(footprint | _disc(70, 50, 3), FEATHER)).any()
    assert list(image.boxes) == [CHANGED, mirror]
    boxed = np.zeros((H, W), bool)
    for x0, y0, x1, y1 in image.boxes.values():
        boxed[y0:y1, x0:x1] = True
    differs = np.abs(image.rgb.astype(int) - civilian).max(axis=2) > CLEAR_CHANGE
    assert differs.any() and not (differs & ~boxed).any()
    # The clear speck covers x 69..71, y 49..51; its box holds it and the FEATHER pixels it fades over.
    assert image.boxes[mirror] == [69 - FEATHER, 49 - FEATHER, 72 + FEATHER, 52 + FEATHER]


def _grown(mask: np.ndarray, pixels: int) -> np.ndarray:
    return cv2.dilate(mask.astype(np.uint8), np.ones((2 * pixels + 1,) * 2, np.uint8)).astype(bool)


# --- lamps and the change area ------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["sphere", "cube", "cylinder"])
def test_occludes_agrees_with_points_marched_along_each_segment(shape: str) -> None:
    obj = SceneObject(1, shape, "large", "rubber", "red", 0.4, -0.3, 37.0)
    rng = np.random.default_rng(3)
    starts = np.column_stack([rng.uniform(-3, 3, (200, 2)), np.zeros(200)])
    ends = rng.uniform((-4, -4, 2), (4, 4, 6), (30, 3))
    steps = np.linspace(0.0, 1.0, 401)
    marched = starts[:, None, None] + steps[None, None, :, None] * (ends[None, :, None] - starts[:, None, None])
    inside = _inside(obj, marched.reshape(-1, 3)).reshape(200, 30, len(steps)).any(axis=2)
    found = occludes(obj, starts, ends)
    # Marching can step over a grazing chord; it never finds a hit that is not there.
    assert not (inside & ~found).any()
    assert (found & ~inside).mean() < 0.01


def _inside(obj: SceneObject, points: np.ndarray) -> np.ndarray:
    """Whether `points` lie inside `obj`'s exact shape (centre at z = scale), written out per shape."""
    s = obj.scale
    local = points - np.array([obj.x, obj.y, s])
    if obj.shape == "sphere":
        return (local**2).sum(axis=1) < s * s
    if obj.shape == "cylinder":
        return (local[:, 0] ** 2 + local[:, 1] ** 2 < s * s) & (np.abs(local[:, 2]) < s)
    angle = math.radians(obj.rotation)
    x = math.cos(angle) * local[:, 0] + math.sin(angle) * local[:, 1]
    y = -math.sin(angle) * local[:, 0] + math.cos(angle) * local[:, 1]
    return (np.abs(x) < s) & (np.abs(y) < s) & (np.abs(local[:, 2]) < s)


def test_lamp_corners_are_a_square_facing_the_origin() -> None:
    position = np.array([6.0, -2.0, 4.0])
    corners = lamp_corners(position)
    assert np.allclose(corners.mean(axis=0), position)
    edges = sorted(np.linalg.norm(corners[i] - corners[j]) for i in range(4) for j in range(i + 1, 4))
    assert np.allclose(edges[:4], LAMP_SIZE) and np.allclose(edges[4:], LAMP_SIZE * math.sqrt(2))
    normal = np.cross(corners[1] - corners[0], corners[2] - corners[0])
    assert abs(abs(normal @ position) / (np.linalg.norm(normal) * np.linalg.norm(position)) - 1.0) < 1e-9


def test_a_shadow_takes_all_of_a_lamps_light_behind_the_object_and_none_beside_it() -> None:
    lights = Lights().to_json()
    obj = SceneObject(1, "cube", "large", "rubber", "red", 0.0, 0.0, 0.0)
    key = np.array(lights["key"])
    away = -key[:2] / np.linalg.norm(key[:2])
    behind = np.array([*(0.8 * away), 0.0])
    beside = np.array([*(3.0 * np.array([-away[1], away[0]])), 0.0])
    share = blocked_share(obj, "key", lights, np.stack([behind, beside]))
    # Just behind the cube the key lamp is hidden whole: the share is the key's part of the light there,
    # here from each lamp's centre as a point source.
    light = {}
    for name, position in lights.items():
        ray = np.asarray(position) - behind
        facing = -np.asarray(position) / np.linalg.norm(position)
        light[name] = LIGHT_ENERGY_W[name] * ray[2] * -(ray @ facing) / np.linalg.norm(ray) ** 4
    assert share[0] == pytest.approx(light["key"] / sum(light.values()), rel=0.05)
    assert share[1] == 0.0


def _pair(change: dict, **lights: tuple[float, float, float]) -> tuple[Scene, Scene]:
    obj = SceneObject(1, "cube", "large", "rubber", "red", 0.0, 0.0, 0.0)
    neighbour = SceneObject(2, "sphere", "small", "rubber", "blue", -2.5, 2.5, 0.0)
    civilian = Scene(objects=(obj, neighbour), camera=Camera(), lights=replace(Lights(), **lights))
    return civilian, civilian.with_object(replace(obj, **change))


def test_a_recolour_needs_no_shadow_but_a_reshape_does() -> None:
    recoloured = change_area(*_pair({"color": "blue"}), 320, 240)
    reshaped = change_area(*_pair({"shape": "cylinder"}), 320, 240)
    civilian, _ = _pair({})
    centre = civilian.camera.project(np.array([civilian.objects[0].location]), 320, 240)[0]
    assert len(recoloured.regions) == 1
    region = recoloured.regions[0]
    assert region.x0 < centre[0] < region.x1 and region.y0 < centre[1] < region.y1
    area = sum(region.area for region in recoloured.regions)
    assert area < sum(region.area for region in reshaped.regions) <= 320 * 240
    assert list(reshaped.footprints) == [CHANGED]
    assert change_area(civilian, civilian, 320, 240).regions == []


def test_regions_hold_every_footprint_pixel() -> None:
    area = change_area(*_pair({"shape": "sphere", "x": 1.5}), 320, 240)
    rendered = np.zeros((240, 320), bool)
    for region in area.regions:
        rendered[region.slices] = True
    assert not (np.logical_or.reduce(list(area.footprints.values())) & ~rendered).any()


def test_a_low_lamps_long_shadow_is_cut_where_it_stops_taking_light() -> None:
    # A large cylinder at the front left, lit by a low fill lamp: its geometric penumbra runs ~11 units across
    # the frame; the area keeps the part where the shadow takes at least MIN_SHADOW_SHARE of the light.
    obj = SceneObject(1, "cube", "large", "rubber", "red", -3.0, -3.0, 0.0)
    civilian = Scene(objects=(obj,), camera=Camera(), lights=replace(Lights(), fill=(-5.2, -4.7, 2.2)))
    spy = civilian.with_object(replace(obj, shape="cylinder"))
    footprint = change_area(civilian, spy, 320, 240).footprints[CHANGED]
    lights = civilian.lights.to_json()
    away = np.array([obj.x, obj.y]) - lights["fill"][:2]
    distances = np.arange(0.0, 12.0, 0.05)
    probes = np.column_stack([(obj.x, obj.y) + np.outer(distances, away / np.linalg.norm(away)), 0 * distances])
    share = np.maximum(*(blocked_share(scene.objects[0], "fill", lights, probes) for scene in (civilian, spy)))
    screen = np.floor(civilian.camera.project(probes, 320, 240)[:, :2]).astype(int)
    on_screen = (screen[:, 0] >= 0) & (screen[:, 0] < 320) & (screen[:, 1] >= 0) & (screen[:, 1] < 240)
    kept = np.zeros(len(probes), bool)
    kept[on_screen] = footprint[screen[on_screen, 1], screen[on_screen, 0]]
    deep = (share >= MIN_SHADOW_SHARE) & on_screen
    faded = (distances > distances[share >= MIN_SHADOW_SHARE].max() + 1.0) & on_screen
    assert deep.sum() > 20 and faded.sum() > 20
    assert kept[deep].all() and not kept[faded].any()


def test_a_shadow_cast_towards_the_camera_is_cut_in_front_of_it_not_made_the_whole_frame(monkeypatch) -> None:
    # A low lamp behind the scene: the geometric shadow of a large object runs ~20 units, past the camera
    # (kept whole here, however faint its far end).
    monkeypatch.setattr("clevr_scenes.region.MIN_SHADOW_SHARE", 0.0)
    civilian, spy = _pair({"shape": "cylinder", "size": "large"}, back=(-3.0, 6.0, 2.3))
    area = change_area(civilian, spy, 320, 240)
    assert sum(region.area for region in area.regions) < 320 * 240
