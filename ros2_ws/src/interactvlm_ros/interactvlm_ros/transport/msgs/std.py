"""builtin_interfaces and std_msgs types on the DDS wire (``pkg::msg::dds_::Type_``, final, keyless).

No ``from __future__ import annotations`` here: cyclonedds evaluates the annotations of ``IdlStruct`` classes.
"""

from dataclasses import dataclass, field

from cyclonedds.idl import IdlStruct
from cyclonedds.idl.types import float32, int32, uint32


@dataclass
class Time(IdlStruct, typename="builtin_interfaces::msg::dds_::Time_"):
    """ROS time: ``sec`` (int32) + ``nanosec`` (uint32, in [0, 1e9))."""

    sec: int32 = 0
    nanosec: uint32 = 0

    @classmethod
    def from_ns(cls, ns: int) -> "Time":
        return cls(sec=int(ns // 1_000_000_000), nanosec=int(ns % 1_000_000_000))

    def to_ns(self) -> int:
        return int(self.sec) * 1_000_000_000 + int(self.nanosec)


@dataclass
class Duration(IdlStruct, typename="builtin_interfaces::msg::dds_::Duration_"):
    sec: int32 = 0
    nanosec: uint32 = 0


@dataclass
class Header(IdlStruct, typename="std_msgs::msg::dds_::Header_"):
    """Acquisition ``stamp`` and the ``frame_id`` the data is expressed in."""

    stamp: Time = field(default_factory=Time)
    frame_id: str = ""


@dataclass
class String(IdlStruct, typename="std_msgs::msg::dds_::String_"):
    data: str = ""


@dataclass
class ColorRGBA(IdlStruct, typename="std_msgs::msg::dds_::ColorRGBA_"):
    r: float32 = 0.0
    g: float32 = 0.0
    b: float32 = 0.0
    a: float32 = 0.0
