"""The node's topics in one table: what each is, its ROS type and its QoS. Both transports build their readers
and writers from it (``transport/dds.py`` as cyclonedds ``Qos``, ``transport/rclpy_node.py`` as rclpy
``QoSProfile``), so the two cannot drift apart.

QoS follows ROS 2 conventions: outputs, camera info and object queries use the default profile
(``rclcpp::QoS(10)``: reliable, keep last 10, volatile); images and depth use SensorDataQoS (best effort, keep
last ``qos.image_depth``) unless ``qos.image_reliability`` says otherwise; ``/tf`` uses tf2_ros's
``DynamicBroadcasterQoS`` (reliable, keep last 100); the mesh topology is latched (transient local, depth 1).

Input topic names follow image_transport (:func:`input_topic`): the image is ``topics.image`` (``raw``) or
``<topics.image>/compressed`` as ``sensor_msgs/CompressedImage`` (``topics.image_transport: compressed``), depth
likewise with ``compressedDepth``, and camera info defaults to the image's sibling ``camera_info``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

RELIABILITIES = ("reliable", "best_effort", "system_default")


@dataclass(frozen=True)
class QosSpec:
    """A QoS profile: ``reliability`` (one of :data:`RELIABILITIES`), keep-last ``depth``, ``latched``
    (transient local durability) or volatile."""

    reliability: str = "reliable"
    depth: int = 10
    latched: bool = False


DEFAULT = QosSpec()
LATCHED = QosSpec(depth=1, latched=True)
TF = QosSpec(depth=100)


@dataclass(frozen=True)
class Endpoint:
    """One topic of the node: ``key`` (the ``topics.<key>`` parameter), its ROS type and QoS; ``optional``
    inputs are used only when their topic parameter is set."""

    key: str
    ros_type: str
    qos: QosSpec
    optional: bool = False


OUTPUTS = (
    Endpoint("contacts", "interactvlm_msgs/msg/ContactArray", DEFAULT),
    Endpoint("markers", "visualization_msgs/msg/MarkerArray", DEFAULT),
    Endpoint("human_cloud", "sensor_msgs/msg/PointCloud2", DEFAULT),
    Endpoint("object_cloud", "sensor_msgs/msg/PointCloud2", DEFAULT),
    Endpoint("diagnostics", "diagnostic_msgs/msg/DiagnosticArray", DEFAULT),
    Endpoint("tf", "tf2_msgs/msg/TFMessage", TF),
)
"""Per-frame outputs and diagnostics (the topology topic has one latched writer per mesh: :data:`TOPOLOGY`)."""

TOPOLOGY = Endpoint("topology", "interactvlm_msgs/msg/MeshTopology", LATCHED)

FRAME_OUTPUTS = ("contacts", "markers", "human_cloud", "object_cloud")
"""The outputs whose subscribers make the node run inference (lazy mode)."""


def image_qos(cfg: Mapping[str, Any]) -> QosSpec:
    """Images and depth: ``qos.image_reliability`` (SensorDataQoS = best effort by default), keep last
    ``qos.image_depth``."""
    reliability = str(cfg.qos.image_reliability)
    if reliability not in RELIABILITIES:
        raise ValueError(f"qos.image_reliability must be one of {', '.join(RELIABILITIES)}; got {reliability!r}")
    return QosSpec(reliability, int(cfg.qos.image_depth))


INPUT_TYPES = {"image": "sensor_msgs/msg/Image", "objects": "std_msgs/msg/String",
               "camera_info": "sensor_msgs/msg/CameraInfo", "depth": "sensor_msgs/msg/Image"}
"""Input key -> ROS type with raw image transports; camera info and depth are optional (used when their topic
parameter is set). :func:`input_types` gives the types of a configuration."""

COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
TRANSPORTS = {"image": {"raw": ("sensor_msgs/msg/Image", ""), "compressed": (COMPRESSED_IMAGE, "compressed")},
              "depth": {"raw": ("sensor_msgs/msg/Image", ""),
                        "compressedDepth": (COMPRESSED_IMAGE, "compressedDepth")}}
"""image_transport transports: input key -> ``topics.<key>_transport`` value -> (ROS type, topic suffix). The
suffix is image_transport's: the transport's topic is ``<base topic>/<suffix>``."""

CAMERA_INFO_SIBLING = "auto"
"""``topics.camera_info`` value meaning "the image topic's sibling", as image_transport's CameraSubscriber."""


def camera_info_sibling(image_topic: str) -> str:
    """image_transport's ``getCameraInfoTopic``: the base image topic's last name token replaced by
    ``camera_info``.

    >>> camera_info_sibling("/camera/color/image_raw")
    '/camera/color/camera_info'
    >>> camera_info_sibling("image")
    'camera_info'
    """
    head, sep, _ = image_topic.rpartition("/")
    return f"{head}/camera_info" if sep else "camera_info"


def transport(cfg: Mapping[str, Any], key: str) -> str:
    """``topics.image_transport`` / ``topics.depth_transport`` (``raw`` for the other inputs)."""
    if key not in TRANSPORTS:
        return "raw"
    name = str(cfg[f"topics.{key}_transport"])
    if name not in TRANSPORTS[key]:
        raise ValueError(f"topics.{key}_transport must be one of {', '.join(TRANSPORTS[key])}; got {name!r}")
    return name


def input_types(cfg: Mapping[str, Any]) -> dict[str, str]:
    """Input key -> the ROS type this configuration subscribes (``CompressedImage`` for a compressed transport)."""
    return {key: TRANSPORTS[key][transport(cfg, key)][0] if key in TRANSPORTS else ros_type
            for key, ros_type in INPUT_TYPES.items()}


def input_topic(cfg: Mapping[str, Any], key: str, resolve: Callable[[str], str] | None = None) -> str:
    """The topic input ``key`` is subscribed on, named as image_transport names it:

    - ``image``: ``topics.image``, with ``/compressed`` appended for ``topics.image_transport: compressed``;
    - ``depth``: ``topics.depth``, with ``/compressedDepth`` appended for ``topics.depth_transport:
      compressedDepth``;
    - ``camera_info``: ``topics.camera_info``; ``auto`` = the sibling of the image's base topic
      (:func:`camera_info_sibling`: ``/camera/color/image_raw`` -> ``/camera/color/camera_info``, whatever the
      image transport); empty = not subscribed (returned as "");
    - ``objects``: ``topics.objects``.

    ``resolve`` (a transport's ROS name resolution, remappings included) is applied to the base topics first, as
    image_transport resolves the base topic before it appends the transport or takes the sibling; without it the
    names are returned unresolved (``image/compressed``, ``~/x``).
    """
    resolve = resolve or (lambda name: name)
    base = str(cfg[f"topics.{key}"])
    if key == "camera_info" and base == CAMERA_INFO_SIBLING:
        return camera_info_sibling(resolve(str(cfg.topics.image)))
    if not base:
        return ""
    suffix = TRANSPORTS[key][transport(cfg, key)][1] if key in TRANSPORTS else ""
    return f"{resolve(base).rstrip('/')}/{suffix}" if suffix else resolve(base)


def topic_name(cfg: Mapping[str, Any], key: str, resolve: Callable[[str], str] | None = None) -> str:
    """The topic of any endpoint ``key``: :func:`input_topic` for inputs, ``topics.<key>`` for outputs."""
    if key in INPUT_TYPES:
        return input_topic(cfg, key, resolve)
    name = str(cfg[f"topics.{key}"])
    return resolve(name) if resolve else name


def inputs(cfg: Mapping[str, Any]) -> tuple[Endpoint, ...]:
    """The input topics this configuration subscribes: image and object queries, and camera info and depth when
    their topic parameters are set; types as :func:`input_types` (their topics: :func:`input_topic`)."""
    qos = {"image": image_qos(cfg), "depth": image_qos(cfg), "objects": DEFAULT, "camera_info": DEFAULT}
    optional = ("camera_info", "depth")
    return tuple(Endpoint(key, ros_type, qos[key], key in optional) for key, ros_type in input_types(cfg).items()
                 if key not in optional or cfg[f"topics.{key}"])
