"""sensor_msgs types on the DDS wire. Large arrays use the packed machines (see ``packed.py``): ``data`` fields
take bytes or numpy arrays and deserialize to numpy ``uint8`` arrays."""

from dataclasses import dataclass, field

from cyclonedds.idl import IdlStruct
from cyclonedds.idl.types import array, float64, sequence, uint8, uint32

from interactvlm_ros.transport.msgs.packed import pack_sequences
from interactvlm_ros.transport.msgs.std import Header


@pack_sequences
@dataclass
class Image(IdlStruct, typename="sensor_msgs::msg::dds_::Image_"):
    """Uncompressed image: ``height`` rows of ``step`` bytes each in ``data`` (``encoding`` e.g. rgb8)."""

    header: Header = field(default_factory=Header)
    height: uint32 = 0
    width: uint32 = 0
    encoding: str = ""
    is_bigendian: uint8 = 0
    step: uint32 = 0
    data: sequence[uint8] = field(default_factory=bytes)


@pack_sequences
@dataclass
class CompressedImage(IdlStruct, typename="sensor_msgs::msg::dds_::CompressedImage_"):
    header: Header = field(default_factory=Header)
    format: str = ""
    data: sequence[uint8] = field(default_factory=bytes)


@dataclass
class RegionOfInterest(IdlStruct, typename="sensor_msgs::msg::dds_::RegionOfInterest_"):
    x_offset: uint32 = 0
    y_offset: uint32 = 0
    height: uint32 = 0
    width: uint32 = 0
    do_rectify: bool = False


def _zeros(n: int):
    return lambda: [0.0] * n


@pack_sequences
@dataclass
class CameraInfo(IdlStruct, typename="sensor_msgs::msg::dds_::CameraInfo_"):
    """Pinhole calibration: ``k`` = row-major 3x3 intrinsics, ``p`` = 3x4 projection, ``d`` = distortion."""

    header: Header = field(default_factory=Header)
    height: uint32 = 0
    width: uint32 = 0
    distortion_model: str = ""
    d: sequence[float64] = field(default_factory=list)
    k: array[float64, 9] = field(default_factory=_zeros(9))
    r: array[float64, 9] = field(default_factory=_zeros(9))
    p: array[float64, 12] = field(default_factory=_zeros(12))
    binning_x: uint32 = 0
    binning_y: uint32 = 0
    roi: RegionOfInterest = field(default_factory=RegionOfInterest)


@dataclass
class PointField(IdlStruct, typename="sensor_msgs::msg::dds_::PointField_"):
    """One field of a PointCloud2 point: byte ``offset``, ``datatype`` (7 = FLOAT32), ``count``."""

    name: str = ""
    offset: uint32 = 0
    datatype: uint8 = 0
    count: uint32 = 0


@pack_sequences
@dataclass
class PointCloud2(IdlStruct, typename="sensor_msgs::msg::dds_::PointCloud2_"):
    header: Header = field(default_factory=Header)
    height: uint32 = 0
    width: uint32 = 0
    fields: sequence[PointField] = field(default_factory=list)
    is_bigendian: bool = False
    point_step: uint32 = 0
    row_step: uint32 = 0
    data: sequence[uint8] = field(default_factory=bytes)
    is_dense: bool = False
