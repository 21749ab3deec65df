"""Developing raw Cycles passes into the 8-bit image: OpenImageDenoise, then the film's exposure and sRGB curve.

Blender's built-in denoising is off (`blender.py`); this module calls the same library, OpenImageDenoise 2 as
shipped inside the bpy wheel, directly through its C API. That gives what the built-in path cannot: the same
bytes in every process (OIDN is deterministic for a given input; Cycles' own input to it was not), a fixed HDR
scale instead of an auto-exposure that would differ between a civilian and a spy frame, and a whole-frame
denoise of a spy assembled from region renders, so that its unchanged pixels develop exactly like the
civilian's. The film is Blender's `Standard` view: linear radiance times 2**EXPOSURE_STOPS, clipped, through
the sRGB transfer curve, rounded to 8 bits (no dither).
"""

from __future__ import annotations

import ctypes
import importlib.util
import math
import weakref
from pathlib import Path

import numpy as np

from clevr_scenes.blender import Layers

EXPOSURE_STOPS = math.log2(5.0)
"""CLEVR's lamp powers are kept as they are (their ratios set the look); the film is exposed to match."""
HDR_SCALE = 2.0**EXPOSURE_STOPS
"""OIDN's `hdrScale`: radiance times this is 1 at the film's white, fixed so every frame is denoised alike
(measured: 44.4 dB against a 512-spp reference, as with OIDN's auto-exposure)."""
OIDN_LIBRARY = "libOpenImageDenoise.so.2"
OIDN_DEVICE_CPU = 1
OIDN_FORMAT_FLOAT3 = 3
OIDN_QUALITY_FAST = 4
"""OIDN's fast network: 0.06 CPU-s per 320x240 frame instead of 0.12 for `balanced`, 44.4 dB instead of
45.3 dB at 8 spp (10 default scenes), as Blender's own fast setting."""


class Denoiser:
    """An OpenImageDenoise CPU device and its `RT` filter settings; one per process, reused for every frame."""

    def __init__(self) -> None:
        self._lib = _load_library()
        self._device = self._lib.oidnNewDevice(OIDN_DEVICE_CPU)
        if not self._device:
            raise RuntimeError(f"OpenImageDenoise has no CPU device here: {self._error(None)}")
        # Workers pin nothing; OIDN binding its threads to cores would fight the other workers (Cycles does the same).
        self._lib.oidnSetDeviceBool(self._device, b"setAffinity", False)
        self._lib.oidnCommitDevice(self._device)
        self._raise_on_error()
        self._release = weakref.finalize(self, self._lib.oidnReleaseDevice, self._device)

    def __call__(self, layers: Layers) -> np.ndarray:
        """`[h, w, 3]` float32: the denoised linear radiance of `layers`.

        Raises:
            RuntimeError: OpenImageDenoise reported an error.
        """
        height, width = layers.index.shape
        images = {
            b"color": np.ascontiguousarray(layers.color, np.float32),
            b"albedo": np.ascontiguousarray(layers.albedo, np.float32),
            b"normal": np.ascontiguousarray(layers.normal, np.float32),
            b"output": np.empty((height, width, 3), np.float32),
        }
        lib = self._lib
        denoise = lib.oidnNewFilter(self._device, b"RT")
        try:
            for name, pixels in images.items():
                # Tightly packed float3 pixels: strides 0 let OIDN compute them.
                lib.oidnSetSharedFilterImage(
                    denoise, name, pixels.ctypes.data, OIDN_FORMAT_FLOAT3, width, height, 0, 0, 0
                )
            lib.oidnSetFilterBool(denoise, b"hdr", True)
            lib.oidnSetFilterFloat(denoise, b"hdrScale", HDR_SCALE)
            lib.oidnSetFilterInt(denoise, b"quality", OIDN_QUALITY_FAST)
            # The albedo and normal passes are noisy too; OIDN's models for noisy features expect cleanAux off.
            lib.oidnSetFilterBool(denoise, b"cleanAux", False)
            lib.oidnCommitFilter(denoise)
            lib.oidnExecuteFilter(denoise)
            self._raise_on_error()
        finally:
            lib.oidnReleaseFilter(denoise)
        return images[b"output"]

    def _raise_on_error(self) -> None:
        message = self._error(self._device)
        if message is not None:
            raise RuntimeError(f"OpenImageDenoise failed: {message}")

    def _error(self, device: int | None) -> str | None:
        text = ctypes.c_char_p()
        code = self._lib.oidnGetDeviceError(device, ctypes.byref(text))
        return None if code == 0 else f"error {code}: {(text.value or b'').decode(errors='replace')}"


def develop(layers: Layers, denoiser: Denoiser) -> np.ndarray:
    """`[h, w, 3]` uint8: `layers` denoised and exposed as Blender's Standard view would show them."""
    return to_srgb8(denoiser(layers))


def to_srgb8(radiance: np.ndarray) -> np.ndarray:
    """`[..., 3]` linear radiance -> uint8 sRGB after the film's exposure (IEC 61966-2-1 curve, rounded)."""
    value = np.clip(radiance * np.float32(HDR_SCALE), 0.0, 1.0)
    encoded = np.where(value <= 0.0031308, value * 12.92, 1.055 * np.power(value, 1.0 / 2.4) - 0.055)
    return np.rint(encoded * 255.0).astype(np.uint8)


def _load_library() -> ctypes.CDLL:
    """OpenImageDenoise from the bpy wheel (the copy Cycles links), with the signatures this module calls.

    Raises:
        RuntimeError: bpy is not installed, or its wheel has no OpenImageDenoise library.
    """
    spec = importlib.util.find_spec("bpy")
    if spec is None or spec.origin is None:
        raise RuntimeError("CLEVR rendering needs the `clevr` extra (bpy); install it with pip install -e '.[clevr]'")
    path = Path(spec.origin).parent / "lib" / OIDN_LIBRARY
    if not path.is_file():
        raise RuntimeError(f"the bpy wheel has no {OIDN_LIBRARY} (looked in {path.parent})")
    lib = ctypes.CDLL(str(path))
    handle, name, size, integer = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int
    signatures: dict[str, tuple[list, object]] = {
        "oidnNewDevice": ([integer], handle),
        "oidnSetDeviceBool": ([handle, name, ctypes.c_bool], None),
        "oidnCommitDevice": ([handle], None),
        "oidnReleaseDevice": ([handle], None),
        "oidnGetDeviceError": ([handle, ctypes.POINTER(ctypes.c_char_p)], integer),
        "oidnNewFilter": ([handle, name], handle),
        "oidnSetSharedFilterImage": ([handle, name, handle, integer, size, size, size, size, size], None),
        "oidnSetFilterBool": ([handle, name, ctypes.c_bool], None),
        "oidnSetFilterInt": ([handle, name, integer], None),
        "oidnSetFilterFloat": ([handle, name, ctypes.c_float], None),
        "oidnCommitFilter": ([handle], None),
        "oidnExecuteFilter": ([handle], None),
        "oidnReleaseFilter": ([handle], None),
    }
    for function, (arguments, result) in signatures.items():
        getattr(lib, function).argtypes = arguments
        getattr(lib, function).restype = result
    return lib
