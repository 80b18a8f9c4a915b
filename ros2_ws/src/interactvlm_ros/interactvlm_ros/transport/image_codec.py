"""sensor_msgs/Image, CompressedImage and CameraInfo <-> numpy, with strict validation (no cv_bridge needed).

Colour images decode to RGB ``uint8 [H, W, 3]``; depth images to ``float32 [H, W]`` metres (16UC1 millimetres are
divided by 1000; 0 and non-positive values become NaN = no measurement). ``step`` (row stride, may include
padding) and ``is_bigendian`` are respected. Every problem raises :class:`MessageError` naming the field.
Works on any ROS-shaped message: our wire types (``data`` numpy), rclpy (``array.array``) or rosbags (numpy).

Compressed images are read as ``image_transport_plugins`` (ros-perception, jazzy) write them:

- ``compressed`` (compressed_image_transport): a JPEG or PNG file in ``data``; ``format`` is
  ``"<encoding>; jpeg compressed bgr8"`` / ``"<encoding>; png compressed bgr8"`` (``mono8``/``mono16`` for grey,
  nothing after ``compressed`` for a grey PNG), or just ``"jpeg"``/``"png"`` from older or other publishers.
  A colour file without ``compressed bgr`` in the format holds the channels swapped (how releases before the
  ``bgr`` target wrote an ``rgb8`` image), exactly as the plugin's subscriber undoes it.
- ``compressedDepth`` (compressed_depth_image_transport): ``format`` ``"16UC1; compressedDepth png"`` (or
  ``"32FC1; compressedDepth png"``), ``data`` = the 12-byte ``ConfigHeader`` (int32 format, float32
  ``depthParam[2]``, little-endian) then a 16-bit grey PNG: millimetres for 16UC1, quantised inverse depth
  ``depth = depthParam[0] / (v - depthParam[1])`` (0 = no measurement) for 32FC1. RVL is not supported.

The pixel count of a compressed image is read from the file header (PNG ``IHDR``, JPEG ``SOF``) and checked
against ``max_pixels`` before anything is decompressed, so a small message that would decompress to a huge image
(a decompression bomb) is refused without allocating it.
"""

from __future__ import annotations

import io
import struct
from typing import Any

import numpy as np

from interactvlm_ros.transport.errors import MessageError
from interactvlm_ros.transport.headers import as_header
from interactvlm_ros.transport.msgs import CompressedImage, Image

IMAGE = "sensor_msgs/Image"
COMPRESSED_IMAGE = "sensor_msgs/CompressedImage"
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


# --- sensor_msgs/CompressedImage (image_transport "compressed" and "compressedDepth") ---------------------------

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
ROS_COLOR_ENCODINGS = ("rgb8", "rgba8", "rgb16", "rgba16", "bgr8", "bgra8", "bgr16", "bgra16")
"""What ``sensor_msgs::image_encodings::isColor`` calls colour (the plugins swap channels only for these)."""
COMPRESSED_DEPTH_HEADER = struct.Struct("<iff")
"""compressed_depth_image_transport's ``ConfigHeader``: ``compressionFormat format`` (0 = INV_DEPTH),
``float depthParam[2]`` (the 32FC1 quantisation; unused for 16UC1), 12 bytes before the PNG."""


def _open_compressed(data: Any, max_pixels: int, field: str = "data"):
    """The JPEG or PNG in ``data`` opened lazily (header read, nothing decompressed), its size checked against
    ``max_pixels``. PIL's own decompression-bomb check is bypassed (the plugin class is opened directly), so the
    limit that applies is ``max_pixels``, and its error says so."""
    from PIL import JpegImagePlugin, PngImagePlugin

    raw = _as_bytes(data).tobytes()
    if not raw:
        raise MessageError(COMPRESSED_IMAGE, field, "empty")
    if raw.startswith(PNG_MAGIC):
        kind, opener = "PNG", PngImagePlugin.PngImageFile
    elif raw.startswith(JPEG_MAGIC):
        kind, opener = "JPEG", JpegImagePlugin.JpegImageFile
    else:
        raise MessageError(COMPRESSED_IMAGE, field, f"neither a JPEG nor a PNG file (starts with {raw[:8].hex()}; "
                           "only image_transport's jpeg and png formats are read)")
    try:
        im = opener(io.BytesIO(raw))
    except Exception as exc:  # noqa: BLE001 - PIL raises many kinds (SyntaxError, OSError, struct.error...)
        raise MessageError(COMPRESSED_IMAGE, field, f"unreadable {kind} header: {type(exc).__name__}: {exc}"
                           ) from None
    width, height = im.size
    if width <= 0 or height <= 0:
        raise MessageError(COMPRESSED_IMAGE, field, f"zero-size {kind} ({width}x{height})")
    if width * height > max_pixels:
        raise MessageError(COMPRESSED_IMAGE, field, f"{kind} header declares {width}x{height} = {width * height} "
                           f"pixels, over the limit of {max_pixels} (node.max_image_pixels): not decompressed "
                           f"({len(raw)} bytes compressed)")
    return kind, im


def _decompress(kind: str, im, field: str = "data") -> np.ndarray:
    try:
        im.load()
        return np.asarray(im)
    except Exception as exc:  # noqa: BLE001 - truncated or corrupt data: OSError, SyntaxError, zlib errors...
        raise MessageError(COMPRESSED_IMAGE, field, f"corrupt {kind} data: {type(exc).__name__}: {exc}") from None


def _format_parts(msg: Any) -> tuple[str, str]:
    """``format`` -> (original encoding or "", what follows the ``;``), e.g. ``("rgb8", "jpeg compressed bgr8")``."""
    fmt = str(msg.format).strip()
    if ";" not in fmt:
        return "", fmt
    encoding, rest = fmt.split(";", 1)
    return encoding.strip(), rest.strip()


def decode_compressed_image(msg: Any, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """A CompressedImage of image_transport's ``compressed`` (JPEG or PNG) -> RGB ``uint8 [H, W, 3]``, the same
    value :func:`decode_image` gives for the raw image (up to JPEG's loss)."""
    encoding, rest = _format_parts(msg)
    if "compresseddepth" in rest.lower() or "compresseddepth" in encoding.lower():
        raise MessageError(COMPRESSED_IMAGE, "format", f"{str(msg.format)!r} is a compressedDepth depth image, not "
                           "a colour image (use topics.depth with topics.depth_transport: compressedDepth)")
    if encoding in DEPTH_ENCODINGS and encoding not in COLOR_ENCODINGS:
        raise MessageError(COMPRESSED_IMAGE, "format", f"{encoding!r} is a depth encoding, not a colour image")
    codec = rest.split()[0].lower() if rest else ""
    if codec and codec not in ("jpeg", "jpg", "png"):
        raise MessageError(COMPRESSED_IMAGE, "format", f"{str(msg.format)!r}: {codec} is not supported (jpeg, png)")
    kind, im = _open_compressed(msg.data, max_pixels)
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit grey PNG (mono16): the high byte, as decode_image
        px = (np.clip(_decompress(kind, im), 0, 65535).astype(np.uint16) >> 8).astype(np.uint8)
        return np.repeat(px[..., None], 3, axis=2)
    if im.mode == "L":
        return np.repeat(_decompress(kind, im)[..., None], 3, axis=2)
    if im.mode != "RGB":
        try:
            im = im.convert("RGB")
        except Exception as exc:  # noqa: BLE001 - convert loads the data: same errors as _decompress
            raise MessageError(COMPRESSED_IMAGE, "data", f"corrupt {kind} data: {type(exc).__name__}: {exc}"
                               ) from None
    rgb = _decompress(kind, im)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise MessageError(COMPRESSED_IMAGE, "data", f"{kind} decodes to shape {rgb.shape}, not [H, W, 3]")
    if encoding in ROS_COLOR_ENCODINGS and "compressed bgr" not in rest:
        rgb = rgb[..., ::-1]  # written from an rgb-ordered array as if it were bgr (pre-"bgr8 target" releases)
    return np.ascontiguousarray(rgb)


def decode_compressed_depth(msg: Any, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """A CompressedImage of image_transport's ``compressedDepth`` (PNG) -> ``float32 [H, W]`` metres, NaN =
    no measurement (the same value :func:`decode_depth` gives for the raw depth image)."""
    encoding, rest = _format_parts(msg)
    if "compressedDepth rvl" in rest:
        raise MessageError(COMPRESSED_IMAGE, "format", f"{str(msg.format)!r}: RVL is not supported; publish with "
                           "the compressedDepth format parameter png (the default)")
    if rest and "compressedDepth" not in rest:
        raise MessageError(COMPRESSED_IMAGE, "format", f"{str(msg.format)!r} is not a compressedDepth image "
                           "(expected e.g. '16UC1; compressedDepth png')")
    encoding = encoding or str(msg.format).strip()
    if encoding not in ("16UC1", "mono16", "32FC1"):
        raise MessageError(COMPRESSED_IMAGE, "format", f"depth encoding {encoding!r} is not supported "
                           "(16UC1, mono16 or 32FC1)")
    raw = _as_bytes(msg.data)
    if raw.size <= COMPRESSED_DEPTH_HEADER.size:
        raise MessageError(COMPRESSED_IMAGE, "data", f"{raw.size} bytes: no PNG after the "
                           f"{COMPRESSED_DEPTH_HEADER.size}-byte compressedDepth header")
    _format, quant_a, quant_b = COMPRESSED_DEPTH_HEADER.unpack(raw[:COMPRESSED_DEPTH_HEADER.size].tobytes())
    if raw[COMPRESSED_DEPTH_HEADER.size:COMPRESSED_DEPTH_HEADER.size + len(PNG_MAGIC)].tobytes() != PNG_MAGIC:
        raise MessageError(COMPRESSED_IMAGE, "data", f"compressedDepth data after the {COMPRESSED_DEPTH_HEADER.size}"
                           "-byte header is not a PNG")
    kind, im = _open_compressed(raw[COMPRESSED_DEPTH_HEADER.size:], max_pixels)
    if kind != "PNG" or im.mode not in ("I;16", "I;16B", "I;16L", "I"):
        raise MessageError(COMPRESSED_IMAGE, "data", f"compressedDepth needs a 16-bit grey PNG, got {kind} mode "
                           f"{im.mode}")
    values = np.clip(_decompress(kind, im), 0, 65535).astype(np.float32)
    if encoding == "32FC1":
        if not (np.isfinite(quant_a) and np.isfinite(quant_b)):
            raise MessageError(COMPRESSED_IMAGE, "data", f"compressedDepth header has non-finite quantisation "
                               f"({quant_a}, {quant_b})")
        with np.errstate(divide="ignore", invalid="ignore"):
            depth = np.float32(quant_a) / (values - np.float32(quant_b))
        depth[values == 0] = np.nan
    else:
        depth = values * np.float32(0.001)
    depth[~(depth > 0) | ~np.isfinite(depth)] = np.nan
    return depth.astype(np.float32, copy=False)


def encode_compressed_image(rgb: np.ndarray, fmt: str = "jpeg", encoding: str = "rgb8", header: Any = None,
                            quality: int = 95) -> CompressedImage:
    """RGB ``uint8 [H, W, 3]`` (or grey ``[H, W]``) -> CompressedImage as compressed_image_transport publishes a
    raw image of ``encoding``: ``format`` ``"rgb8; jpeg compressed bgr8"`` (grey: ``"mono8; png compressed "``),
    ``data`` the JPEG/PNG file (true colours). For tests, benchmarks and bag conversion."""
    from PIL import Image as PILImage

    if fmt not in ("jpeg", "png"):
        raise MessageError(COMPRESSED_IMAGE, "format", f"unsupported compression {fmt!r} (jpeg, png)")
    arr = np.asarray(rgb)
    grey = arr.ndim == 2
    buf = io.BytesIO()
    params = {"quality": int(quality)} if fmt == "jpeg" else {}
    PILImage.fromarray(np.ascontiguousarray(arr)).save(buf, format=fmt.upper(), **params)
    target = ("mono8" if fmt == "jpeg" else "") if grey else "bgr8"
    msg = CompressedImage(format=f"{encoding}; {fmt} compressed {target}", data=buf.getvalue())
    if header is not None:
        msg.header = as_header(header)
    return msg


def encode_compressed_depth(depth: np.ndarray, header: Any = None, depth_max: float = 10.0,
                            depth_quantization: float = 100.0) -> CompressedImage:
    """Depth -> CompressedImage as compressed_depth_image_transport publishes it (png): ``uint16`` millimetres
    (16UC1; values over ``depth_max`` become 0) or ``float32`` metres (32FC1, quantised inverse depth with the
    plugin's ``depth_max`` and ``depth_quantization`` parameters)."""
    from PIL import Image as PILImage

    arr = np.asarray(depth)
    if arr.dtype == np.uint16:
        encoding, quant_a, quant_b = "16UC1", 0.0, 0.0
        png = np.where(arr > np.uint16(depth_max * 1000.0), 0, arr).astype(np.uint16)
    elif arr.dtype == np.float32:
        encoding = "32FC1"
        quant_a = np.float32(depth_quantization) * (np.float32(depth_quantization) + np.float32(1.0))
        quant_b = np.float32(1.0) - quant_a / np.float32(depth_max)
        with np.errstate(divide="ignore", invalid="ignore"):
            inv = quant_a / arr + quant_b
        png = np.where((arr > 0) & (arr < depth_max), np.clip(inv, 0, 65535), 0).astype(np.uint16)  # NaN: 0
    else:
        raise MessageError(COMPRESSED_IMAGE, "data", f"depth must be uint16 mm or float32 m, got {arr.dtype}")
    buf = io.BytesIO()
    PILImage.fromarray(png).save(buf, format="PNG")
    data = COMPRESSED_DEPTH_HEADER.pack(0, float(quant_a), float(quant_b)) + buf.getvalue()
    msg = CompressedImage(format=f"{encoding}; compressedDepth png", data=data)
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
