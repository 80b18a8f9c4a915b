"""``std_msgs/Header`` from a stamp in nanoseconds + frame id, and back."""

from __future__ import annotations

from typing import Any

from interactvlm_ros.transport.msgs import Header, Time


def make_header(stamp_ns: int, frame_id: str) -> Header:
    """Header with ``stamp`` = ``stamp_ns`` nanoseconds since the epoch."""
    return Header(stamp=Time.from_ns(int(stamp_ns)), frame_id=str(frame_id))


def as_header(header: Any) -> Header:
    """Accept a wire ``Header``, any ROS-shaped header (``stamp.sec``/``stamp.nanosec``/``frame_id``) or an object
    with ``stamp_ns`` and ``frame_id`` (``node.outputs.FrameHeader``)."""
    if isinstance(header, Header):
        return header
    if hasattr(header, "stamp_ns"):
        return make_header(header.stamp_ns, header.frame_id)
    return Header(stamp=Time(sec=int(header.stamp.sec), nanosec=int(header.stamp.nanosec)),
                  frame_id=str(header.frame_id))


def stamp_ns(header: Any) -> int:
    """Nanoseconds since the epoch of a ROS-shaped header."""
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)
