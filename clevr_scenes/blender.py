"""The Blender session: CLEVR's assets built in code, Cycles renders of a whole frame or a region, as arrays.

The only module that imports `bpy` (lazily, when a `BlenderRenderer` is built). One renderer lives for the
whole life of a worker process: importing bpy and building the assets costs ~1 s, re-posing a scene ~1 ms.
Blender objects are named after the scene's object ids and carry them as `pass_index`, so the Object Index
pass maps every pixel back to the scene graph exactly.

A render returns Cycles' raw, noisy passes (linear colour, the denoiser's albedo and normal, the object index),
not a finished image: `film.py` denoises and develops them. Raw passes are what make a spy cheap and exact:
Cycles draws each pixel's samples from a sequence fixed by the pixel and the seed, so a region render holds
exactly the pixels of a whole-frame render of the same scene, and pixels whose light paths never meet a changed
object are bit for bit the civilian's. They are also bit for bit the same in any process, once the round
meshes carry exact normals (Blender's own smooth normals differ in the last bit between processes).
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import sys
import tempfile
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from clevr_scenes.camera import Camera
from clevr_scenes.lamps import LAMP_SIZE
from clevr_scenes.region import Region
from clevr_scenes.scene import LIGHT_ENERGY_W, Lights, Scene, SceneObject
from clevr_scenes.vocabulary import COLORS, MATERIALS, linear_color
from datagen.errors import ConfigError

DEVICES = ("cpu", "cuda", "optix")
CYCLES_SEED = 0
"""Cycles' sampling seed: fixed, so the same scene renders to the same pixels."""
GROUND_COLOR = (0.45, 0.45, 0.45, 1.0)
WORLD_COLOR = (0.05, 0.05, 0.05, 1.0)
"""A dim uniform sky so that faces turned away from every lamp are not black."""
LIGHT_COLORS: dict[str, tuple[float, float, float]] = {
    "key": (1.0, 0.93, 0.84),
    "fill": (0.85, 0.92, 1.0),
    "back": (1.0, 1.0, 1.0),
}
"""CLEVR's warm key, cool fill and neutral back lamps."""
CUBE_BEVEL = 0.08
"""Bevel of the unit cube (half-extent 1), as CLEVR's SmoothCube has."""
MESH_SEGMENTS = 48
SCRATCH_PARENT = Path("/dev/shm")
PASS_FILE_STEM = "pass-"
PASSES: dict[str, tuple[str, str]] = {
    "color": ("Image", "RGBA"),
    "albedo": ("Denoising Albedo", "RGBA"),
    "normal": ("Denoising Normal", "RGBA"),
    "index": ("Object Index", "FLOAT"),
}
"""File Output item -> (Render Layers socket, item type): the passes a render returns."""


@dataclass(frozen=True)
class Layers:
    """The raw passes of one render, keyed like Kubric's layers (rows top-down).

    Attributes:
        color: `[h, w, 3]` float32, linear scene radiance, noisy (Cycles' own denoiser is off).
        albedo: `[h, w, 3]` float32, the denoiser's albedo feature pass.
        normal: `[h, w, 3]` float32, the denoiser's normal feature pass.
        index: `[h, w]` int32, the `id` of the object seen at each pixel, 0 for the ground.
    """

    color: np.ndarray
    albedo: np.ndarray
    normal: np.ndarray
    index: np.ndarray

    def spliced(self, region: Region, inner: Layers) -> Layers:
        """These layers with `inner` (a render of `region` only) in place of their pixels there."""
        parts = {}
        for name in ("color", "albedo", "normal", "index"):
            whole = getattr(self, name).copy()
            whole[region.slices] = getattr(inner, name)
            parts[name] = whole
        return Layers(**parts)


@dataclass(frozen=True)
class RenderSettings:
    """What stays fixed for a renderer's whole life (the frame, sampling, device, colour convention)."""

    width: int = 320
    height: int = 240
    samples: int = 8
    device: str = "cpu"
    color_mode: str = "srgb"
    """How CLEVR's 8-bit colours become linear albedo, see `vocabulary.COLOR_MODES`."""


class BlenderRenderer:
    """A Blender session holding CLEVR's assets; `render` poses a scene and returns its layers."""

    def __init__(self, settings: RenderSettings) -> None:
        with quiet_output(stderr=True):
            import bpy  # deferred: ~0.5 s and ~800 MB, needed only by the processes that render

            bpy.ops.wm.read_factory_settings(use_empty=True)
            # Probing GPU libraries logs harmless failures on machines without them; probe here, silently.
            bpy.context.preferences.addons["cycles"].preferences.get_devices()
        self.settings = settings
        self._bpy = bpy
        self._scratch = Path(tempfile.mkdtemp(prefix="vzero-clevr-", dir=_scratch_parent()))
        # Worker processes never call close(); the folder still goes when the process exits normally.
        self._cleanup = weakref.finalize(self, shutil.rmtree, self._scratch, True)
        self._scene = bpy.context.scene
        self._configure_cycles()
        self._build_world()
        self._camera = self._build_camera()
        self._lights: dict[str, Any] = {}
        self._meshes = {"cube": _cube_mesh(bpy), "sphere": _sphere_mesh(bpy), "cylinder": _cylinder_mesh(bpy)}
        self._materials = {
            (material, color): _object_material(bpy, material, linear_color(color, settings.color_mode))
            for material in MATERIALS
            for color in COLORS
        }
        self._objects: list[Any] = []
        self._posed: Scene | None = None
        self._build_compositor()

    def close(self) -> None:
        """Remove the scratch folder; the Blender session ends with the process."""
        self._cleanup()

    def render(self, scene: Scene, region: Region | None = None, *, samples: int | None = None) -> Layers:
        """Render `scene` whole, or only `region` (Cycles' render border, cropped to it): its raw passes.

        `samples` overrides the settings' samples per pixel for this render (a reference image, say).

        Raises:
            RuntimeError: Blender failed to render, or wrote passes of an unexpected size.
            FileNotFoundError: Blender rendered but wrote no passes.
        """
        self._pose(scene)
        self._scene.cycles.samples = self.settings.samples if samples is None else samples
        render = self._scene.render
        render.use_border = region is not None
        render.use_crop_to_border = region is not None
        width, height = self.settings.width, self.settings.height
        if region is not None:
            # Blender's border is in fractions of the frame from the bottom-left; a quarter pixel inside
            # each edge makes the rounding land on the intended pixel whichever way Blender rounds.
            render.border_min_x = (region.x0 + 0.25) / width
            render.border_max_x = (region.x1 + 0.25) / width
            render.border_min_y = (height - region.y1 + 0.25) / height
            render.border_max_y = (height - region.y0 + 0.25) / height
        for path in self._scratch.iterdir():
            path.unlink()
        with quiet_output():
            self._bpy.ops.render.render()
        layers = Layers(
            color=self._read_exr("color")[..., :3],
            albedo=self._read_exr("albedo")[..., :3],
            normal=self._read_exr("normal")[..., :3],
            index=np.rint(self._read_exr("index")[..., 0]).astype(np.int32),
        )
        expected = (height, width) if region is None else (region.y1 - region.y0, region.x1 - region.x0)
        if layers.color.shape[:2] != expected or layers.index.shape != expected:
            raise RuntimeError(f"Blender rendered {layers.color.shape[:2]} pixels, expected {expected}")
        return layers

    def _configure_cycles(self) -> None:
        scene, settings = self._scene, self.settings
        scene.render.engine = "CYCLES"
        scene.cycles.device = "CPU" if settings.device == "cpu" else "GPU"
        if settings.device != "cpu":
            _enable_gpu(self._bpy, settings.device)
        scene.cycles.seed = CYCLES_SEED
        scene.cycles.use_animated_seed = False
        scene.cycles.use_adaptive_sampling = False
        # Denoised in `film.py` instead: Blender's denoiser gives different bytes in different processes
        # (its input differs in the last bits) and cannot see past a render border.
        scene.cycles.use_denoising = False
        scene.cycles.use_light_tree = False
        scene.render.resolution_x = settings.width
        scene.render.resolution_y = settings.height
        scene.render.resolution_percentage = 100
        scene.render.film_transparent = False
        view_layer = scene.view_layers[0]
        view_layer.use_pass_object_index = True
        view_layer.cycles.denoising_store_passes = True

    def _build_world(self) -> None:
        bpy = self._bpy
        world = bpy.data.worlds.new("world")
        world.node_tree.nodes["Background"].inputs["Color"].default_value = WORLD_COLOR
        self._scene.world = world
        mesh = bpy.data.meshes.new("ground")
        extent = 200.0
        mesh.from_pydata([(-extent, -extent, 0), (extent, -extent, 0), (extent, extent, 0), (-extent, extent, 0)], [],
                         [(0, 1, 2, 3)])  # fmt: skip
        mesh.materials.append(_matte(bpy, "ground", GROUND_COLOR))
        ground = bpy.data.objects.new("ground", mesh)
        ground.pass_index = 0
        self._scene.collection.objects.link(ground)

    def _build_camera(self) -> Any:
        data = self._bpy.data.cameras.new("camera")
        camera = self._bpy.data.objects.new("camera", data)
        self._scene.collection.objects.link(camera)
        self._scene.camera = camera
        return camera

    def _build_compositor(self) -> None:
        """Render Layers -> a File Output writing each of PASSES as a 32-bit float EXR, uncompressed.

        Background Blender has no readable Render Result or Viewer image, so the passes go through files
        in a scratch folder in memory (/dev/shm), read back in a few milliseconds.
        """
        bpy = self._bpy
        tree = bpy.data.node_groups.new("compositor", "CompositorNodeTree")
        self._scene.compositing_node_group = tree
        layers = tree.nodes.new("CompositorNodeRLayers")
        file_output = tree.nodes.new("CompositorNodeOutputFile")
        file_output.directory = str(self._scratch)
        file_output.file_name = PASS_FILE_STEM
        file_output.format.media_type = "IMAGE"
        file_output.format.file_format = "OPEN_EXR"
        file_output.format.color_depth = "32"
        file_output.format.exr_codec = "NONE"
        for item, (socket, kind) in PASSES.items():
            file_output.file_output_items.new(kind, item).save_as_render = False
            tree.links.new(layers.outputs[socket], file_output.inputs[item])

    def _pose(self, scene: Scene) -> None:
        """Put the camera, lamps and objects of `scene` in place, replacing the previous scene's objects.

        Nothing is touched when `scene` is the one posed last: Cycles then keeps its scene data between the
        region renders of one spy (measured: 5 ms less per region render, 20 ms less per whole frame).
        """
        if scene == self._posed:
            return
        bpy = self._bpy
        self._place_camera(scene.camera)
        self._place_lights(scene.lights)
        for obj in self._objects:
            bpy.data.objects.remove(obj, do_unlink=True)
        self._objects = [self._add_object(spec) for spec in scene.objects]
        # matrix_world is stale until the depsgraph updates (blender.md, pitfall 1).
        bpy.context.view_layer.update()
        self._posed = scene

    def _place_camera(self, camera: Camera) -> None:
        self._camera.data.lens = camera.lens_mm
        self._camera.data.sensor_width = camera.sensor_width_mm
        self._camera.data.sensor_fit = "AUTO"
        self._camera.location = camera.location
        self._camera.rotation_euler = camera.rotation_euler()

    def _place_lights(self, lights: Lights) -> None:
        from mathutils import Vector

        bpy = self._bpy
        for name, location in lights.to_json().items():
            light = self._lights.get(name)
            if light is None:
                data = bpy.data.lights.new(name, "AREA")
                data.size = LAMP_SIZE
                data.energy = LIGHT_ENERGY_W[name]
                data.color = LIGHT_COLORS[name]
                light = bpy.data.objects.new(name, data)
                self._scene.collection.objects.link(light)
                self._lights[name] = light
            light.location = location
            light.rotation_euler = (-Vector(location)).to_track_quat("-Z", "Y").to_euler()

    def _add_object(self, spec: SceneObject) -> Any:
        obj = self._bpy.data.objects.new(f"object-{spec.id}", self._meshes[spec.shape])
        # The meshes are shared; each object links its own material to its one slot.
        obj.material_slots[0].link = "OBJECT"
        obj.material_slots[0].material = self._materials[(spec.material, spec.color)]
        obj.scale = (spec.scale, spec.scale, spec.scale)
        obj.location = spec.location
        obj.rotation_euler = (0.0, 0.0, math.radians(spec.rotation))
        obj.pass_index = spec.id
        self._scene.collection.objects.link(obj)
        return obj

    def _read_exr(self, item: str) -> np.ndarray:
        """`[h, w, C]` float32 pixels of one File Output item, rows top-down (EXR stores them bottom-up)."""
        path = self._scratch / f"{PASS_FILE_STEM}{item}.exr"
        image = self._bpy.data.images.load(str(path), check_existing=False)
        try:
            width, height = image.size
            buffer = np.empty(width * height * image.channels, np.float32)
            image.pixels.foreach_get(buffer)
        finally:
            self._bpy.data.images.remove(image)
        return np.ascontiguousarray(buffer.reshape(height, width, -1)[::-1])


@contextlib.contextmanager
def quiet_output(*, stderr: bool = False) -> Iterator[None]:
    """Send file descriptor 1 (and 2 if `stderr`) to /dev/null: Blender's C code logs every saved file there.

    Blender's errors still arrive as Python exceptions.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    descriptors = (1, 2) if stderr else (1,)
    saved = [os.dup(fd) for fd in descriptors]
    try:
        with open(os.devnull, "wb") as devnull:
            for fd in descriptors:
                os.dup2(devnull.fileno(), fd)
        yield
    finally:
        for fd, copy in zip(descriptors, saved):
            os.dup2(copy, fd)
            os.close(copy)


def _scratch_parent() -> str | None:
    return str(SCRATCH_PARENT) if SCRATCH_PARENT.is_dir() else None


def check_device(device: str) -> None:
    """Fail before any work when `device` is a GPU kind Cycles cannot find here (imports bpy for a GPU only).

    Raises:
        ConfigError: no such GPU.
    """
    if device == "cpu":
        return
    with quiet_output(stderr=True):
        import bpy

        _enable_gpu(bpy, device)


def _enable_gpu(bpy: Any, device: str) -> None:
    """Use every `device` (CUDA or OptiX) GPU Cycles finds, or fail naming what it found."""
    preferences = bpy.context.preferences.addons["cycles"].preferences
    preferences.compute_device_type = device.upper()
    preferences.get_devices()
    gpus = [candidate for candidate in preferences.devices if candidate.type == device.upper()]
    if not gpus:
        found = ", ".join(f"{candidate.name} ({candidate.type})" for candidate in preferences.devices) or "none"
        raise ConfigError(f"--device {device}: Cycles finds no {device.upper()} GPU here (devices: {found})")
    for candidate in preferences.devices:
        candidate.use = candidate.type == device.upper()


def _principled(bpy: Any, name: str, color: tuple[float, ...], *, metallic: float, roughness: float) -> Any:
    material = bpy.data.materials.new(name)
    shader = material.node_tree.nodes["Principled BSDF"]
    shader.inputs["Base Color"].default_value = color
    shader.inputs["Metallic"].default_value = metallic
    shader.inputs["Roughness"].default_value = roughness
    return material


def _matte(bpy: Any, name: str, color: tuple[float, ...]) -> Any:
    """A Lambertian (Diffuse BSDF) material. The ground is one: it fills most of the frame, and the Principled
    BSDF's faint specular at roughness 0.9 cost a fifth of each render and changed no pixel by more than 8 levels
    (mean 2, measured at 64 spp)."""
    material = bpy.data.materials.new(name)
    nodes = material.node_tree.nodes
    nodes.remove(nodes["Principled BSDF"])
    shader = nodes.new("ShaderNodeBsdfDiffuse")
    shader.inputs["Color"].default_value = color
    material.node_tree.links.new(shader.outputs["BSDF"], nodes["Material Output"].inputs["Surface"])
    return material


def _object_material(bpy: Any, material: str, color: tuple[float, ...]) -> Any:
    """CLEVR's two materials: matte rubber and a polished metal."""
    if material == "metal":
        return _principled(bpy, f"metal-{color}", color, metallic=1.0, roughness=0.25)
    return _principled(bpy, f"rubber-{color}", color, metallic=0.0, roughness=0.75)


def _mesh_from_bmesh(bpy: Any, name: str, bm: Any) -> Any:
    """The mesh `name` made from (and freeing) `bm`, with one empty material slot for the objects' materials."""
    mesh = bpy.data.meshes.new(name)
    bm.to_mesh(mesh)
    bm.free()
    mesh.materials.append(None)
    return mesh


def _cube_mesh(bpy: Any) -> Any:
    """Side 2 with bevelled edges (flat-shaded: smooth shading would tint the big faces near the bevels)."""
    import bmesh

    bm = bmesh.new()
    bmesh.ops.create_cube(bm, size=2.0)
    bmesh.ops.bevel(bm, geom=list(bm.edges) + list(bm.verts), offset=CUBE_BEVEL, segments=3, affect="EDGES",
                    profile=0.5, clamp_overlap=True)  # fmt: skip
    for face in bm.faces:
        face.smooth = False
    return _mesh_from_bmesh(bpy, "cube", bm)


def _sphere_mesh(bpy: Any) -> Any:
    """Radius 1, smooth, with each vertex's exact normal (its position) as a free custom normal."""
    import bmesh

    bm = bmesh.new()
    bmesh.ops.create_uvsphere(bm, u_segments=MESH_SEGMENTS, v_segments=MESH_SEGMENTS // 2, radius=1.0)
    for face in bm.faces:
        face.smooth = True
    mesh = _mesh_from_bmesh(bpy, "sphere", bm)
    points = _positions(mesh)
    _set_free_normals(mesh, points / np.linalg.norm(points, axis=1, keepdims=True))
    return mesh


def _cylinder_mesh(bpy: Any) -> Any:
    """Radius 1, height 2: smooth sides, flat caps (the rim edges are split so normals do not blend), each vertex
    with its exact normal (radial on the side, straight up or down on a cap) as a free custom normal."""
    import bmesh

    bm = bmesh.new()
    bmesh.ops.create_cone(bm, cap_ends=True, cap_tris=False, segments=MESH_SEGMENTS, radius1=1.0, radius2=1.0,
                          depth=2.0)  # fmt: skip
    rims = [edge for edge in bm.edges if abs(edge.verts[0].co.z - edge.verts[1].co.z) < 1e-6]
    bmesh.ops.split_edges(bm, edges=rims)
    on_cap = np.zeros(len(bm.verts), bool)
    bm.verts.index_update()
    for face in bm.faces:
        face.smooth = abs(face.normal.z) < 0.5
        if not face.smooth:
            on_cap[[vert.index for vert in face.verts]] = True
    mesh = _mesh_from_bmesh(bpy, "cylinder", bm)
    points = _positions(mesh)
    radial = points * np.array([1.0, 1.0, 0.0])
    radial /= np.linalg.norm(radial, axis=1, keepdims=True)
    vertical = np.zeros_like(points)
    vertical[:, 2] = np.sign(points[:, 2])
    _set_free_normals(mesh, np.where(on_cap[:, None], vertical, radial))
    return mesh


def _positions(mesh: Any) -> np.ndarray:
    """`[vertices, 3]` float64 vertex positions of `mesh`."""
    points = np.empty(len(mesh.vertices) * 3, np.float32)
    mesh.vertices.foreach_get("co", points)
    return points.reshape(-1, 3).astype(np.float64)


def _set_free_normals(mesh: Any, normals: np.ndarray) -> None:
    """Store `normals` (`[vertices, 3]`) as the mesh's free custom normals.

    Blender computes smooth normals by summing face normals in an order that varies between processes, so the
    last bit of a normal, and with it a few render pixels, would differ from run to run; exact normals do not.
    """
    attribute = mesh.attributes.new("custom_normal", "FLOAT_VECTOR", "POINT")
    attribute.data.foreach_set("vector", normals.astype(np.float32).ravel())
