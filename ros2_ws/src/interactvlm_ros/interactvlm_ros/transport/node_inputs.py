"""ROS messages → the node's domain values (:mod:`interactvlm_ros.node.inputs`): header, RGB image, intrinsics,
depth, object query text. The only place that reads input message fields; both transports and bag processing
build their :class:`~interactvlm_ros.node.inputs.InputCodec` here.

Images and depth arrive raw (``sensor_msgs/Image``) or compressed (``sensor_msgs/CompressedImage``:
``topics.image_transport: compressed``, ``topics.depth_transport: compressedDepth``) and decode to the same values.
Checks (each a ``ValueError`` naming the field): an image's encoding, size, ``step``, data length and
``node.max_image_pixels`` (for a compressed image from the file header, before decompressing); corrupt compressed
data; CameraInfo intrinsics; a ``header.frame_id`` the outputs and TF cannot carry
(control characters, U+FFFD — invalid UTF-8 as rclpy decodes it — or over 256 characters).
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any

from interactvlm_ros.node.inputs import Calibration, InputCodec, Stamped
from interactvlm_ros.node.outputs import FrameHeader
from interactvlm_ros.node.queries import REPLACEMENT_CHARACTER
from interactvlm_ros.transport import endpoints
from interactvlm_ros.transport.errors import MessageError
from interactvlm_ros.transport.image_codec import (
    decode_camera_info,
    decode_compressed_depth,
    decode_compressed_image,
    decode_depth,
    decode_image,
)
from interactvlm_ros.transport.msgs import MESSAGE_TYPES

MAX_FRAME_ID_CHARS = 256
HEADER = "std_msgs/Header"


def frame_header(msg: Any, default_frame: str = "") -> FrameHeader:
    """The :class:`FrameHeader` of a message with a ``std_msgs/Header`` (an empty frame id becomes
    ``default_frame``)."""
    stamp = msg.header.stamp
    frame_id = str(msg.header.frame_id)
    if len(frame_id) > MAX_FRAME_ID_CHARS:
        raise MessageError(HEADER, "frame_id", f"{len(frame_id)} characters; the limit is {MAX_FRAME_ID_CHARS}")
    for i, ch in enumerate(frame_id):
        if ch == REPLACEMENT_CHARACTER or unicodedata.category(ch) == "Cc":
            raise MessageError(HEADER, "frame_id", f"has U+{ord(ch):04X} at position {i} (invalid UTF-8 or a "
                               "control character)")
    return FrameHeader(int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec), frame_id or default_frame)


def calibration(msg: Any) -> Calibration:
    """CameraInfo -> :class:`Calibration` (``K [3,3]`` checked; the calibrated ``(height, width)``, None when the
    message leaves them 0)."""
    height, width = int(msg.height), int(msg.width)
    return Calibration(decode_camera_info(msg), (height, width) if height and width else None)


def _stamped(decode: Callable[[Any], Any], default_frame: str, msg: Any) -> Stamped:
    return Stamped(frame_header(msg, default_frame), decode(msg))


def _query_text(msg: Any) -> str:
    text = msg.data
    if not isinstance(text, str):
        raise MessageError("std_msgs/String", "data", f"is {type(text).__name__}, not text")
    return text


def input_codecs(cfg: Mapping[str, Any], deserializers: Mapping[str, Callable[[bytes], Any]],
                 image: Callable[[Any], Any] | None = None) -> dict[str, InputCodec]:
    """The codec of each input topic in ``deserializers`` (``image``, ``objects``, ``camera_info``, ``depth``):
    bytes -> message with the transport's deserializer, message -> value with the strict numpy decoders bounded
    by ``node.max_image_pixels`` (``image`` replaces the raw image decoder, e.g. cv_bridge's; compressed images
    always use :func:`decode_compressed_image`). The deserializers must produce the types of
    :func:`endpoints.input_types`. Images without a frame id get ``node.camera_frame``."""
    limit = int(cfg.node.max_image_pixels)
    camera_frame = str(cfg.node.camera_frame)
    if endpoints.transport(cfg, "image") == "compressed":
        image = functools.partial(decode_compressed_image, max_pixels=limit)
    depth = decode_compressed_depth if endpoints.transport(cfg, "depth") == "compressedDepth" else decode_depth
    convert = {
        "image": functools.partial(_stamped, image or functools.partial(decode_image, max_pixels=limit),
                                   camera_frame),
        "camera_info": functools.partial(_stamped, calibration, ""),
        "depth": functools.partial(_stamped, functools.partial(depth, max_pixels=limit), ""),
        "objects": _query_text,
    }
    return {topic: InputCodec(deserialize, convert[topic]) for topic, deserialize in deserializers.items()}


def wire_codecs(cfg: Mapping[str, Any]) -> dict[str, InputCodec]:
    """The codecs over this package's wire types (``transport/msgs``): the dds transport, bags and tests."""
    return input_codecs(cfg, {topic: MESSAGE_TYPES[ros_type].deserialize
                              for topic, ros_type in endpoints.input_types(cfg).items()})


def wire_image_codec(cfg: Mapping[str, Any], ros_type: str) -> InputCodec:
    """The image codec for a topic of ``ros_type`` (``sensor_msgs/msg/Image`` or ``CompressedImage``), whatever
    ``topics.image_transport`` says: bags name each topic's type."""
    kind = {endpoints.INPUT_TYPES["image"]: "raw", endpoints.COMPRESSED_IMAGE: "compressed"}.get(ros_type)
    if kind is None:
        raise ValueError(f"{ros_type} is not an image type (sensor_msgs/msg/Image or CompressedImage)")
    return wire_codecs(cfg.replace(topics__image_transport=kind))["image"]
