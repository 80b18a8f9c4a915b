"""Every ROS 2 message type the node publishes or subscribes, as cyclonedds ``IdlStruct`` classes that speak the
ROS 2 DDS wire format (type names ``pkg::msg::dds_::Type_``, ``final`` = XCDR1, keyless).

``MESSAGE_TYPES`` maps ROS type names (``sensor_msgs/msg/Image``) to the classes. Large arrays are numpy arrays
(see :mod:`interactvlm_ros.transport.msgs.packed`).
"""

from interactvlm_ros.transport.msgs.diagnostics import DiagnosticArray, DiagnosticStatus, KeyValue
from interactvlm_ros.transport.msgs.geometry import Point, Pose, Quaternion, Transform, TransformStamped, Vector3
from interactvlm_ros.transport.msgs.interactvlm import Contact, ContactArray, MeshTopology
from interactvlm_ros.transport.msgs.sensor import (
    CameraInfo,
    CompressedImage,
    Image,
    PointCloud2,
    PointField,
    RegionOfInterest,
)
from interactvlm_ros.transport.msgs.std import ColorRGBA, Duration, Header, String, Time
from interactvlm_ros.transport.msgs.tf import TFMessage
from interactvlm_ros.transport.msgs.visualization import Marker, MarkerArray, MeshFile, UVCoordinate


def ros_type_name(cls) -> str:
    """``sensor_msgs::msg::dds_::Image_`` -> ``sensor_msgs/msg/Image``."""
    pkg, kind, _dds, name = cls.__idl_typename__.replace(".", "::").split("::")
    return f"{pkg}/{kind}/{name[:-1]}"


MESSAGE_TYPES = {ros_type_name(c): c for c in (
    Time, Duration, Header, String, ColorRGBA,
    Point, Vector3, Quaternion, Pose, Transform, TransformStamped,
    Image, CompressedImage, RegionOfInterest, CameraInfo, PointField, PointCloud2,
    UVCoordinate, MeshFile, Marker, MarkerArray,
    KeyValue, DiagnosticStatus, DiagnosticArray, TFMessage,
    Contact, ContactArray, MeshTopology,
)}

__all__ = [
    "MESSAGE_TYPES", "CameraInfo", "ColorRGBA", "CompressedImage", "Contact", "ContactArray", "DiagnosticArray",
    "DiagnosticStatus", "Duration", "Header", "Image", "KeyValue", "Marker", "MarkerArray", "MeshFile",
    "MeshTopology", "Point", "PointCloud2", "PointField", "Pose", "Quaternion", "RegionOfInterest", "String",
    "TFMessage", "Time", "Transform", "TransformStamped", "UVCoordinate", "Vector3", "ros_type_name",
]
