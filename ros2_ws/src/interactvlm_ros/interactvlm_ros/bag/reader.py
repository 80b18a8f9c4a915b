"""Reading rosbag2 bags (MCAP or sqlite3 folders, or a single .mcap file) with rosbags' AnyReader."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from rosbags.highlevel import AnyReader
from rosbags.interfaces import Connection, ConnectionExtRosbag2

from interactvlm_ros.transport.typestore import typestore

IMAGE_TYPE = "sensor_msgs/msg/Image"


class BagReadError(ValueError):
    """The input bag cannot be used (missing, not rosbag2, no image topic...)."""


class InputBag:
    """An open rosbag2 bag. ``image_topics()`` lists Image topics; ``messages()`` yields in log-time order."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise BagReadError(f"input bag {self.path} does not exist")
        try:
            self.reader = AnyReader([self.path], default_typestore=typestore())
            self.reader.open()
        except Exception as exc:  # rosbags raises several error types: report them uniformly
            raise BagReadError(f"cannot open {self.path} as a rosbag2 bag: {exc}") from exc
        if self.reader.is2 is False:
            raise BagReadError(f"{self.path} is a ROS 1 bag; convert it with `rosbags-convert` first")

    def close(self) -> None:
        self.reader.close()

    def __enter__(self) -> InputBag:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def connections(self) -> list[Connection]:
        return list(self.reader.connections)

    def image_topics(self) -> list[str]:
        return sorted({c.topic for c in self.reader.connections if c.msgtype == IMAGE_TYPE})

    def select_image_topics(self, requested: Sequence[str] = ()) -> list[str]:
        """``requested`` (checked), else every Image topic without "depth" in its name."""
        available = self.image_topics()
        if requested:
            missing = [t for t in requested if t not in available]
            if missing:
                raise BagReadError(f"no sensor_msgs/msg/Image topic {', '.join(missing)} in {self.path} "
                                   f"(Image topics: {', '.join(available) or 'none'})")
            return list(requested)
        chosen = [t for t in available if "depth" not in t.lower()]
        if not chosen:
            raise BagReadError(f"{self.path} has no colour sensor_msgs/msg/Image topic "
                               f"(Image topics: {', '.join(available) or 'none'})")
        return chosen

    def count(self, topics: Sequence[str]) -> int:
        return sum(c.msgcount for c in self.reader.connections if c.topic in topics)

    def messages(self) -> Iterator[tuple[Connection, int, bytes]]:
        """``(connection, log_time_ns, raw CDR)`` for every message of every topic."""
        yield from self.reader.messages()

    def deserialize(self, raw: bytes, msgtype: str):
        return self.reader.deserialize(raw, msgtype)

    @staticmethod
    def qos_of(connection: Connection) -> list:
        ext = connection.ext
        return list(ext.offered_qos_profiles) if isinstance(ext, ConnectionExtRosbag2) else []
