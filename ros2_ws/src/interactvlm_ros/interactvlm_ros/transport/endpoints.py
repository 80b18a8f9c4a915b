"""The node's topics in one table: what each is, its ROS type and its QoS. Both transports build their readers
and writers from it (``transport/dds.py`` as cyclonedds ``Qos``, ``transport/rclpy_node.py`` as rclpy
``QoSProfile``), so the two cannot drift apart.

QoS follows ROS 2 conventions: outputs, camera info and object queries use the default profile
(``rclcpp::QoS(10)``: reliable, keep last 10, volatile); images and depth use SensorDataQoS (best effort, keep
last ``qos.image_depth``) unless ``qos.image_reliability`` says otherwise; ``/tf`` uses tf2_ros's
``DynamicBroadcasterQoS`` (reliable, keep last 100); the mesh topology is latched (transient local, depth 1).
"""

from __future__ import annotations

from collections.abc import Mapping
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
"""Input key -> ROS type; camera info and depth are optional (used when their topic parameter is set)."""


def inputs(cfg: Mapping[str, Any]) -> tuple[Endpoint, ...]:
    """The input topics this configuration subscribes: image and object queries, and camera info and depth when
    their topic parameters are set."""
    qos = {"image": image_qos(cfg), "depth": image_qos(cfg), "objects": DEFAULT, "camera_info": DEFAULT}
    optional = ("camera_info", "depth")
    return tuple(Endpoint(key, ros_type, qos[key], key in optional) for key, ros_type in INPUT_TYPES.items()
                 if key not in optional or cfg[f"topics.{key}"])
