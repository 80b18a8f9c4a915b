"""visualization_msgs (Jazzy) on the DDS wire. ``Marker.points`` is an ``[N, 3]`` float64 array and
``Marker.colors`` an ``[N, 4]`` float32 array (r, g, b, a) on both write and read (packed machines)."""

from dataclasses import dataclass, field

from cyclonedds.idl import IdlStruct
from cyclonedds.idl.types import float32, int32, sequence, uint8

from interactvlm_ros.transport.msgs.geometry import Point, Pose, Vector3
from interactvlm_ros.transport.msgs.packed import pack_sequences
from interactvlm_ros.transport.msgs.sensor import CompressedImage
from interactvlm_ros.transport.msgs.std import ColorRGBA, Duration, Header


@dataclass
class UVCoordinate(IdlStruct, typename="visualization_msgs::msg::dds_::UVCoordinate_"):
    u: float32 = 0.0
    v: float32 = 0.0


@pack_sequences
@dataclass
class MeshFile(IdlStruct, typename="visualization_msgs::msg::dds_::MeshFile_"):
    filename: str = ""
    data: sequence[uint8] = field(default_factory=bytes)


@pack_sequences
@dataclass
class Marker(IdlStruct, typename="visualization_msgs::msg::dds_::Marker_"):
    """One RViz marker. Type and action constants are class attributes (``Marker.TRIANGLE_LIST``...)."""

    header: Header = field(default_factory=Header)
    ns: str = ""
    id: int32 = 0
    type: int32 = 0
    action: int32 = 0
    pose: Pose = field(default_factory=Pose)
    scale: Vector3 = field(default_factory=Vector3)
    color: ColorRGBA = field(default_factory=ColorRGBA)
    lifetime: Duration = field(default_factory=Duration)
    frame_locked: bool = False
    points: sequence[Point] = field(default_factory=list)
    colors: sequence[ColorRGBA] = field(default_factory=list)
    texture_resource: str = ""
    texture: CompressedImage = field(default_factory=CompressedImage)
    uv_coordinates: sequence[UVCoordinate] = field(default_factory=list)
    text: str = ""
    mesh_resource: str = ""
    mesh_file: MeshFile = field(default_factory=MeshFile)
    mesh_use_embedded_materials: bool = False


# Marker.msg constants (not part of the wire type).
for _name, _value in (("ARROW", 0), ("CUBE", 1), ("SPHERE", 2), ("CYLINDER", 3), ("LINE_STRIP", 4),
                      ("LINE_LIST", 5), ("CUBE_LIST", 6), ("SPHERE_LIST", 7), ("POINTS", 8),
                      ("TEXT_VIEW_FACING", 9), ("MESH_RESOURCE", 10), ("TRIANGLE_LIST", 11), ("ARROW_STRIP", 12),
                      ("ADD", 0), ("MODIFY", 0), ("DELETE", 2), ("DELETEALL", 3)):
    setattr(Marker, _name, _value)


@dataclass
class MarkerArray(IdlStruct, typename="visualization_msgs::msg::dds_::MarkerArray_"):
    markers: sequence[Marker] = field(default_factory=list)
