"""Reading rosbag2 bags (MCAP or sqlite3 folders, or a single .mcap file) with rosbags' AnyReader — and, for MCAP
files it refuses because they are cut short or damaged (or a folder lacks ``metadata.yaml``), their complete part
with :class:`~interactvlm_ros.bag.mcap_salvage.McapSalvageReader`, reporting what was lost."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from rosbags.highlevel import AnyReader
from rosbags.interfaces import Connection, ConnectionExtRosbag2

from interactvlm_ros.transport.typestore import typestore

IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE_TYPE = "sensor_msgs/msg/CompressedImage"
IMAGE_TYPES = (IMAGE_TYPE, COMPRESSED_IMAGE_TYPE)
"""Topics of these types are image topics: raw, or image_transport's ``compressed`` (JPEG/PNG) as robot bags
usually hold them."""


class BagReadError(ValueError):
    """The input bag cannot be used (missing, not rosbag2, no image topic...)."""


class InputBag:
    """An open rosbag2 bag. ``image_topics()`` lists image topics (Image or CompressedImage); ``messages()``
    yields them in log-time order (file order for a salvaged bag). ``salvaged`` is True when the bag was read by
    the salvage reader; :meth:`problems` then says what was wrong and what was read."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.salvaged = False
        self.read_error: str | None = None
        if not self.path.exists():
            raise BagReadError(f"input bag {self.path} does not exist")
        try:
            self.reader = AnyReader([self.path], default_typestore=typestore())
            self.reader.open()
        except Exception as exc:  # noqa: BLE001 - rosbags raises several error types; salvage or BagReadError
            self.reader = _salvage_reader(self.path, exc)
            self.salvaged = True
        if getattr(self.reader, "is2", True) is False:
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

    @property
    def start_time(self) -> int:
        """Log time of the first message (ns)."""
        return int(self.reader.start_time)

    def image_topics(self) -> list[str]:
        """Topics of sensor_msgs/msg/Image or CompressedImage (a topic recorded with both types is left out: its
        messages could not be told apart by topic)."""
        types: dict[str, set[str]] = {}
        for c in self.reader.connections:
            types.setdefault(c.topic, set()).add(c.msgtype)
        return sorted(t for t, kinds in types.items() if len(kinds) == 1 and kinds <= set(IMAGE_TYPES))

    def image_type(self, topic: str) -> str:
        """The message type of image topic ``topic``."""
        return next(c.msgtype for c in self.reader.connections if c.topic == topic)

    def select_image_topics(self, requested: Sequence[str] = ()) -> list[str]:
        """``requested`` (checked), else every image topic without "depth" in its name, leaving out a
        ``<topic>/compressed`` whose raw ``<topic>`` is in the bag too (the same camera twice)."""
        available = self.image_topics()
        if requested:
            missing = [t for t in requested if t not in available]
            if missing:
                raise BagReadError(f"no image topic (sensor_msgs/msg/Image or CompressedImage) {', '.join(missing)} "
                                   f"in {self.path} (image topics: {', '.join(available) or 'none'})")
            return list(requested)
        chosen = [t for t in available if "depth" not in t.lower()]
        chosen = [t for t in chosen if not (self.image_type(t) == COMPRESSED_IMAGE_TYPE and t.endswith("/compressed")
                                            and t[: -len("/compressed")] in chosen)]
        if not chosen:
            raise BagReadError(f"{self.path} has no colour image topic (sensor_msgs/msg/Image or CompressedImage; "
                               f"image topics: {', '.join(available) or 'none'})")
        return chosen

    def count(self, topics: Sequence[str]) -> int:
        return sum(c.msgcount for c in self.reader.connections if c.topic in topics)

    def problems(self, image_topics: Sequence[str] = ()) -> list[str]:
        """One line per problem of a salvaged bag: the file, where and what, and how much of it is read."""
        if not self.salvaged:
            return []
        lines = []
        for report in self.reader.reports:
            if report.damage is None:
                continue
            images = sum(report.topic_counts[t] for t in image_topics)
            lines.append(f"{report.path} is damaged {report.damage}; reading the {report.messages} complete "
                         f"messages before it ({images} images)")
        if self.path.is_dir() and not (self.path / "metadata.yaml").is_file():
            lines.append(f"{self.path} has no metadata.yaml (a recording that did not finish?): read its MCAP files "
                         f"directly")
        return lines

    def messages(self) -> Iterator[tuple[Connection, int, bytes]]:
        """``(connection, log_time_ns, raw CDR)`` for every message of every topic. A read error part-way (rosbags
        found a damaged chunk) ends the messages: :attr:`read_error` says where."""
        try:
            yield from self.reader.messages()
        except Exception as exc:  # noqa: BLE001 - rosbags raises several error types; what was read stays valid
            self.read_error = f"{self.path}: reading stopped part-way: {type(exc).__name__}: {exc}"

    @staticmethod
    def qos_of(connection: Connection) -> list:
        ext = connection.ext
        return list(ext.offered_qos_profiles) if isinstance(ext, ConnectionExtRosbag2) else []


def _salvage_reader(path: Path, error: Exception):
    """The salvage reader for an MCAP bag rosbags refused with ``error``; BagReadError when salvage does not apply
    (not MCAP storage, or nothing wrong that salvage would fix)."""
    from interactvlm_ros.bag.mcap_salvage import McapSalvageReader
    from interactvlm_ros.bag.mcap_scan import McapScanError

    refused = BagReadError(f"cannot open {path} as a rosbag2 bag: {error}")
    files = mcap_files(path)
    if not files:
        raise refused from error
    try:
        reader = McapSalvageReader(files)
    except (McapScanError, OSError) as exc:
        raise BagReadError(f"cannot open {path} as a rosbag2 bag: {exc}") from error
    missing_metadata = path.is_dir() and not (path / "metadata.yaml").is_file()
    if not missing_metadata and all(r.damage is None for r in reader.reports):
        raise refused from error
    return reader


def mcap_files(path: Path) -> list[Path]:
    """The MCAP files of a bag: the file itself, or a folder's, in split order (``_0``, ``_1``, ... ``_10``)."""
    if path.is_file():
        return [path] if path.suffix == ".mcap" else []
    def natural(p: Path):
        return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)]

    return sorted(path.glob("*.mcap"), key=natural)
