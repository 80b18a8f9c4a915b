"""sensor_msgs/Image and CameraInfo <-> numpy, with strict validation (no cv_bridge needed).

Colour images decode to RGB ``uint8 [H, W, 3]``; depth images to ``float32 [H, W]`` metres (16UC1 millimetres are
divided by 1000; 0 and non-positive values become NaN = no measurement). ``step`` (row stride, may include
padding) and ``is_bigendian`` are respected. Every problem raises :class:`MessageError` naming the field.
Works on any ROS-shaped message: our wire types (``data`` numpy), rclpy (``array.array``) or rosbags (numpy).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from interactvlm_ros.transport.errors import MessageError
from interactvlm_ros.transport.headers import as_header
from interactvlm_ros.transport.msgs import Image

IMAGE = "sensor_msgs/Image"
CAMERA_INFO = "sensor_msgs/CameraInfo"

# encoding -> (channels, numpy element type); the element type's byte order comes from is_bigendian.
ENCODINGS: dict[str, tuple[int, str]] = {
    "rgb8": (3, "u1"), "bgr8": (3, "u1"), "rgba8": (4, "u1"), "bgra8": (4, "u1"),
    "mono8": (1, "u1"), "mono16": (1, "u2"), "16UC1": (1, "u2"), "32FC1": (1, "f4"),
}
COLOR_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8", "mono16")
DEPTH_ENCODINGS = ("16UC1", "mono16", "32FC1")
DEFAULT_MAX_PIXELS = 16_777_216


def _as_bytes(data: Any) -> np.ndarray:
    if isinstance(data, np.ndarray):
        return np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    try:
        return np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)
    except TypeError:
        return np.asarray(data, dtype=np.uint8)


def image_pixels(msg: Any, max_pixels: int = DEFAULT_MAX_PIXELS, allowed: tuple[str, ...] | None = None
                 ) -> np.ndarray:
    """The pixels of an Image as ``[H, W, C]`` in the encoding's own channel order and native byte order."""
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    encoding = str(msg.encoding)
    if encoding not in ENCODINGS:
        raise MessageError(IMAGE, "encoding", f"unsupported encoding {encoding!r} "
                           f"(supported: {', '.join(ENCODINGS)})")
    if allowed is not None and encoding not in allowed:
        raise MessageError(IMAGE, "encoding", f"{encoding!r} is not usable here (expected one of "
                           f"{', '.join(allowed)})")
    if height <= 0 or width <= 0:
        raise MessageError(IMAGE, "height/width", f"zero-size image ({width}x{height})")
    if height * width > max_pixels:
        raise MessageError(IMAGE, "height/width", f"{width}x{height} = {width * height} pixels exceeds the "
                           f"limit of {max_pixels}")
    channels, elem = ENCODINGS[encoding]
    itemsize = np.dtype(elem).itemsize
    row_bytes = width * channels * itemsize
    if step < row_bytes:
        raise MessageError(IMAGE, "step", f"{step} is smaller than width * {channels * itemsize} bytes "
                           f"({row_bytes}) for {encoding}")
    big = int(msg.is_bigendian)
    if big not in (0, 1):
        raise MessageError(IMAGE, "is_bigendian", f"must be 0 or 1, got {big}")
    raw = _as_bytes(msg.data)
    if raw.size < step * height:
        raise MessageError(IMAGE, "data", f"{raw.size} bytes, fewer than step * height = {step * height}")
    rows = raw[: step * height].reshape(height, step)[:, :row_bytes]
    dtype = np.dtype((">" if big else "<") + elem) if itemsize > 1 else np.dtype(elem)
    pixels = np.ascontiguousarray(rows).view(dtype).reshape(height, width, channels)
    if not dtype.isnative:
        pixels = pixels.astype(dtype.newbyteorder("="))
    return pixels


def decode_image(msg: Any, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Colour (or grey) Image -> RGB ``uint8 [H, W, 3]`` (a new array)."""
    encoding = str(msg.encoding)
    if encoding in DEPTH_ENCODINGS and encoding not in COLOR_ENCODINGS:
        raise MessageError(IMAGE, "encoding", f"{encoding!r} is a depth encoding, not a colour image")
    px = image_pixels(msg, max_pixels, COLOR_ENCODINGS)
    if encoding == "rgb8":
        return px.copy()
    if encoding == "bgr8":
        return np.ascontiguousarray(px[..., ::-1])
    if encoding == "rgba8":
        return np.ascontiguousarray(px[..., :3])
    if encoding == "bgra8":
        return np.ascontiguousarray(px[..., 2::-1])
    if encoding == "mono16":
        px = (px >> 8).astype(np.uint8)
    return np.repeat(px, 3, axis=2)


def decode_depth(msg: Any, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Depth Image (16UC1 / mono16 millimetres, 32FC1 metres) -> ``float32 [H, W]`` metres, NaN = invalid."""
    px = image_pixels(msg, max_pixels, DEPTH_ENCODINGS)[..., 0]
    if px.dtype == np.uint16:
        depth = px.astype(np.float32) * np.float32(0.001)
    else:
        depth = px.astype(np.float32, copy=True)
    depth[~(depth > 0)] = np.nan
    return depth


def encode_image(pixels: np.ndarray, encoding: str, header: Any = None, big_endian: bool = False,
                 row_padding: int = 0) -> Image:
    """``[H, W, C]`` or ``[H, W]`` array already in ``encoding``'s channel order -> Image (``row_padding`` extra
    bytes per row, to exercise ``step``)."""
    if encoding not in ENCODINGS:
        raise MessageError(IMAGE, "encoding", f"unsupported encoding {encoding!r}")
    channels, elem = ENCODINGS[encoding]
    arr = np.asarray(pixels)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[2] != channels:
        raise MessageError(IMAGE, "data", f"{encoding} needs [H, W, {channels}] pixels, got shape "
                           f"{np.asarray(pixels).shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise MessageError(IMAGE, "height/width", "zero-size image")
    dtype = np.dtype((">" if big_endian else "<") + elem) if np.dtype(elem).itemsize > 1 else np.dtype(elem)
    rows = np.ascontiguousarray(arr, dtype=dtype).reshape(arr.shape[0], -1).view(np.uint8)
    if row_padding:
        rows = np.concatenate([rows, np.zeros((rows.shape[0], row_padding), np.uint8)], axis=1)
    msg = Image(height=arr.shape[0], width=arr.shape[1], encoding=encoding, is_bigendian=int(bool(big_endian)),
                step=rows.shape[1], data=rows.reshape(-1))
    if header is not None:
        msg.header = as_header(header)
    return msg


def decode_camera_info(msg: Any, image_size: tuple[int, int] | None = None) -> np.ndarray:
    """CameraInfo -> intrinsics ``K`` float64 ``[3, 3]``; zero, negative or non-finite focal lengths / centres are
    errors. ``image_size`` = (height, width) of the paired image: a CameraInfo with non-zero, different
    height/width is an error (the calibration is for another resolution)."""
    k = np.asarray(list(msg.k), dtype=np.float64)
    if k.size != 9:
        raise MessageError(CAMERA_INFO, "k", f"needs 9 values, got {k.size}")
    K = k.reshape(3, 3)
    if not np.all(np.isfinite(K)):
        raise MessageError(CAMERA_INFO, "k", "contains NaN or infinite values")
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    if fx <= 0 or fy <= 0:
        raise MessageError(CAMERA_INFO, "k", f"focal lengths must be positive (fx={fx:g}, fy={fy:g}); "
                           "an all-zero K means the camera is uncalibrated")
    if abs(K[2, 2] - 1.0) > 1e-6 or K[2, 0] != 0 or K[2, 1] != 0:
        raise MessageError(CAMERA_INFO, "k", f"last row must be [0, 0, 1], got {K[2].tolist()}")
    if cx < 0 or cy < 0:
        raise MessageError(CAMERA_INFO, "k", f"principal point must be non-negative (cx={cx:g}, cy={cy:g})")
    if image_size is not None and int(msg.height) and int(msg.width):
        if (int(msg.height), int(msg.width)) != (int(image_size[0]), int(image_size[1])):
            raise MessageError(CAMERA_INFO, "height/width", f"calibration is for {int(msg.width)}x{int(msg.height)} "
                               f"but the image is {image_size[1]}x{image_size[0]}")
    return K
