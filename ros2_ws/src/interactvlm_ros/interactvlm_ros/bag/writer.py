"""An MCAP rosbag2 writer that never leaves a half-written bag at the destination, and whose unfinished bag can be
continued or salvaged after its process died.

The bag is written inside a work folder next to the destination (same file system; by default a new hidden
temporary folder). ``commit()`` finalises it (MCAP summary; ``metadata.yaml`` for a bag folder) and moves it into
place with ``os.replace``; ``abort()`` deletes the work folder; ``close_unfinished()`` leaves it as it is.

A destination ending in ``.mcap`` gets the single self-contained MCAP file (rosbag2 metadata and per-topic QoS
are inside it); any other name gets a rosbag2 folder (``metadata.yaml`` + ``<name>.mcap``).

Messages are written in chunks (:mod:`~interactvlm_ros.bag.mcap_writer`). With ``chunk_bytes`` set, a chunk ends
once it is that large; with ``chunk_bytes=None`` chunks end only at :meth:`AtomicBagWriter.end_chunk` and
:meth:`AtomicBagWriter.flush`, so a caller that calls them between frames gets chunks of whole frames: after a
kill, :meth:`AtomicBagWriter.reopen` continues the work folder's bag from its last complete chunk.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mcap.records import Channel, Message, Schema
from rosbags.interfaces import Qos

from interactvlm_ros.bag.mcap_writer import ChunkedMcapWriter
from interactvlm_ros.bag.rosbag2_metadata import (
    QOS_KEY,
    TYPE_HASH_KEY,
    bag_information,
    mcap_metadata_record,
    metadata_yaml,
    qos_metadata,
)
from interactvlm_ros.files.atomic import atomic_write_text
from interactvlm_ros.transport.typehash import TypeHashError, default_library
from interactvlm_ros.transport.typestore import typestore

CHUNK_BYTES = 1 << 20
"""Default chunk size of writers that end chunks by size (like rosbag2's MCAP default, 768 KiB, rounded up)."""


class BagWriteError(RuntimeError):
    """The output bag cannot be created (exists, bad path...)."""


@dataclass(frozen=True)
class BagTopic:
    """A topic of the bag being written (an MCAP channel), as :meth:`AtomicBagWriter.add_topic` returns it."""

    id: int
    topic: str
    msgtype: str


class AtomicBagWriter:
    """Write a rosbag2 MCAP bag to ``out`` atomically (see module doc). Use as a context manager or call
    commit()/abort(). ``workdir`` (created if missing, must not hold a bag yet) replaces the temporary folder."""

    def __init__(self, out: str | os.PathLike, overwrite: bool = False, workdir: str | os.PathLike | None = None,
                 chunk_bytes: int | None = CHUNK_BYTES) -> None:
        self._setup(out, overwrite, workdir)
        self.mcap_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._mcap = ChunkedMcapWriter.create(self.mcap_path, chunk_bytes)
        except FileExistsError:
            raise BagWriteError(f"{self.mcap_path} exists already") from None
        self.messages = 0

    @classmethod
    def reopen(cls, out: str | os.PathLike, mcap_path: str | os.PathLike, workdir: str | os.PathLike,
               overwrite: bool = False, chunk_bytes: int | None = CHUNK_BYTES,
               on_message: Callable[[BagTopic, int, bytes], None] | None = None) -> AtomicBagWriter:
        """Continue the unfinished bag ``mcap_path`` (inside the work folder ``workdir``; for a bag folder
        destination, the folder holding it becomes the bag folder) from its last complete chunk: ``on_message(topic,
        log_time, data)`` sees every message kept; :attr:`dropped_bytes` is what was cut after them."""
        self = cls.__new__(cls)
        self._setup(out, overwrite, workdir, Path(mcap_path).absolute())

        def keep(channel: Channel, schema: Schema | None, message: Message) -> None:
            if on_message is not None:
                on_message(BagTopic(channel.id, channel.topic, schema.name if schema else ""), message.log_time,
                           message.data)

        self._mcap = ChunkedMcapWriter.reopen(self.mcap_path, chunk_bytes, keep)
        self.messages = self._mcap.statistics().message_count
        return self

    def _setup(self, out, overwrite: bool, workdir, mcap_path: Path | None = None) -> None:
        self.out = Path(out).absolute()
        self.single_file = self.out.suffix == ".mcap"
        if self.out.exists() and not overwrite:
            raise BagWriteError(f"{self.out} exists (pass --overwrite to replace it)")
        if not self.out.parent.is_dir():
            raise BagWriteError(f"output folder {self.out.parent} does not exist")
        if workdir is None:
            workdir = tempfile.mkdtemp(prefix=f".{self.out.name}.partial-", dir=self.out.parent)
        self.workdir = Path(workdir).absolute()
        if mcap_path is None:
            name = self.out.name
            mcap_path = self.workdir / name if self.single_file else self.workdir / name / f"{name}.mcap"
        self.mcap_path = mcap_path
        self._store = None
        self._lock = threading.Lock()
        self._closed = False

    @property
    def dropped_bytes(self) -> int:
        """Bytes of an unfinished bag cut off by :meth:`reopen` (0 for a new bag)."""
        return self._mcap.dropped_bytes

    def topics(self) -> list[BagTopic]:
        """The bag's topics so far (those of a reopened bag included)."""
        mcap = self._mcap
        return [BagTopic(c.id, c.topic, mcap.schemas[c.schema_id].name if c.schema_id in mcap.schemas else "")
                for c in mcap.channels.values()]

    def add_topic(self, topic: str, msgtype: str, qos: Sequence[Qos] = (), msgdef: str | None = None,
                  rihs01: str | None = None) -> BagTopic:
        """Add a topic (or return the identical one a reopened bag already has). Without ``msgdef`` it comes from
        our typestore (every ROS 2 Jazzy and interactvlm_msgs type); without ``rihs01`` the type hash comes from
        :mod:`interactvlm_ros.transport.typehash`, or the typestore, or is left empty for a type neither knows."""
        with self._lock:
            self._check_open()
            if not msgdef:
                msgdef = self._typestore().generate_msgdef(msgtype, ros_version=2)[0]
            if not rihs01:
                rihs01 = self._type_hash(msgtype)
            metadata = {QOS_KEY: qos_metadata(list(qos)), TYPE_HASH_KEY: rihs01}
            mcap = self._mcap
            for channel in mcap.channels.values():
                schema = mcap.schemas.get(channel.schema_id)
                if (channel.topic == topic and schema is not None and schema.name == msgtype
                        and channel.metadata.get(QOS_KEY) == metadata[QOS_KEY]):
                    return BagTopic(channel.id, topic, msgtype)
            data = msgdef.encode()
            schema_id = next((s.id for s in mcap.schemas.values() if s.name == msgtype and s.data == data), None)
            if schema_id is None:
                encoding = "ros2idl" if msgdef.startswith("=" * 80 + "\nIDL: ") else "ros2msg"
                schema_id = mcap.add_schema(msgtype, encoding, data)
            return BagTopic(mcap.add_channel(topic, schema_id, metadata), topic, msgtype)

    def _typestore(self):
        if self._store is None:
            self._store = typestore()
        return self._store

    def _type_hash(self, msgtype: str) -> str:
        try:
            return default_library().type_hash(msgtype)
        except TypeHashError:
            try:
                return self._typestore().hash_rihs01(msgtype)
            except Exception:  # noqa: BLE001 - a type unknown to our stores: rosbag2 accepts an empty hash
                return ""

    def write(self, topic: BagTopic, log_time_ns: int, data: bytes) -> None:
        """One serialized (CDR) message received at ``log_time_ns`` (thread-safe)."""
        with self._lock:
            self._check_open()
            self._mcap.write(topic.id, int(log_time_ns), data)
            self.messages += 1

    def end_chunk(self) -> None:
        """Write the open chunk out: it survives the death of this process (thread-safe)."""
        with self._lock:
            self._check_open()
            self._mcap.end_chunk()

    def flush(self) -> None:
        """Write the open chunk out and fsync the bag: it survives a power cut (thread-safe)."""
        with self._lock:
            self._check_open()
            self._mcap.sync()

    def _check_open(self) -> None:
        if self._closed:
            raise BagWriteError("the bag is already finalised or closed")

    def commit(self) -> Path:
        """Finalise the bag and move it to ``out`` (replacing an existing one only if ``overwrite``); the work
        folder is deleted."""
        with self._lock:
            self._check_open()
            self._closed = True
        information = bag_information(self._mcap, self.mcap_path.name)
        self._mcap.finish(mcap_metadata_record(information))
        if self.single_file:
            src = self.mcap_path
        else:
            src = self.mcap_path.parent
            atomic_write_text(src / "metadata.yaml", metadata_yaml(information))
        if self.out.is_dir() and not self.single_file:
            shutil.rmtree(self.out)
        os.replace(src, self.out)
        _fsync_folder(self.out.parent)
        shutil.rmtree(self.workdir, ignore_errors=True)
        return self.out

    def abort(self) -> None:
        """Drop everything written; the destination is untouched and the work folder deleted."""
        self.close_unfinished()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def close_unfinished(self) -> None:
        """Close the bag as it is (its open chunk dropped), leaving the work folder for :meth:`reopen`."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._mcap.close()

    def __enter__(self) -> AtomicBagWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._closed:
            return
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def _fsync_folder(path: Path) -> None:
    """Make a rename inside ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
