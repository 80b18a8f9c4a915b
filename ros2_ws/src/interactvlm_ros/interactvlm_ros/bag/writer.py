"""An MCAP rosbag2 writer that never leaves a half-written bag at the destination.

The bag is written under a hidden temporary folder in the destination's folder (same file system); ``commit()``
finalises it (MCAP summary, metadata.yaml) and moves it into place with ``os.replace``; ``abort()`` deletes it.
A destination ending in ``.mcap`` gets the single self-contained MCAP file (rosbag2 metadata and per-topic QoS
are inside it); any other name gets a rosbag2 folder (``metadata.yaml`` + ``<name>.mcap``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

from rosbags.interfaces import Connection, Qos
from rosbags.rosbag2 import StoragePlugin, Writer

from interactvlm_ros.transport.typehash import TypeHashError, default_library
from interactvlm_ros.transport.typestore import typestore


class BagWriteError(RuntimeError):
    """The output bag cannot be created (exists, bad path...)."""


class AtomicBagWriter:
    """Write a rosbag2 MCAP bag to ``out`` atomically. Use as a context manager or call commit()/abort()."""

    def __init__(self, out: str | os.PathLike, overwrite: bool = False) -> None:
        self.out = Path(out).absolute()
        self.single_file = self.out.suffix == ".mcap"
        if self.out.exists() and not overwrite:
            raise BagWriteError(f"{self.out} exists (pass --overwrite to replace it)")
        if not self.out.parent.is_dir():
            raise BagWriteError(f"output folder {self.out.parent} does not exist")
        self._tmp_root = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.partial-", dir=self.out.parent))
        self._bag_dir = self._tmp_root / (self.out.stem if self.single_file else self.out.name)
        self._writer: Writer | None = Writer(self._bag_dir, version=9, storage_plugin=StoragePlugin.MCAP)
        self._writer.open()
        self._store = typestore()
        self.messages = 0
        self._lock = threading.Lock()

    def add_topic(self, topic: str, msgtype: str, qos: Sequence[Qos] = (), msgdef: str | None = None,
                  rihs01: str | None = None) -> Connection:
        """Add a topic. Without ``msgdef``/``rihs01`` they come from our typestore (message definitions of every
        type, hash from :mod:`interactvlm_ros.transport.typehash`)."""
        assert self._writer is not None
        if not msgdef or not rihs01:
            try:
                rihs01 = default_library().type_hash(msgtype)
            except TypeHashError:
                rihs01 = self._store.hash_rihs01(msgtype)
            msgdef = self._store.generate_msgdef(msgtype, ros_version=2)[0]
        return self._writer.add_connection(topic, msgtype, msgdef=msgdef, rihs01=rihs01,
                                           offered_qos_profiles=list(qos))

    def write(self, connection: Connection, log_time_ns: int, data: bytes) -> None:
        """One serialized (CDR) message received at ``log_time_ns`` (thread-safe)."""
        with self._lock:
            if self._writer is None:
                raise BagWriteError("the bag is already finalised or aborted")
            self._writer.write(connection, int(log_time_ns), data)
            self.messages += 1

    def commit(self) -> Path:
        """Finalise the bag and move it to ``out`` (replacing an existing one only if ``overwrite``)."""
        with self._lock:
            writer, self._writer = self._writer, None
        if writer is None:
            raise BagWriteError("the bag is already finalised or aborted")
        writer.close()
        src = self._bag_dir / f"{self._bag_dir.name}.mcap" if self.single_file else self._bag_dir
        if self.out.is_dir() and not self.single_file:
            shutil.rmtree(self.out)
        os.replace(src, self.out)
        shutil.rmtree(self._tmp_root, ignore_errors=True)
        return self.out

    def abort(self) -> None:
        """Drop everything written; the destination is untouched."""
        with self._lock:
            writer, self._writer = self._writer, None
        if writer is not None:
            writer.abort()
        shutil.rmtree(self._tmp_root, ignore_errors=True)

    def __enter__(self) -> AtomicBagWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._writer is None:
            return
        if exc_type is None:
            self.commit()
        else:
            self.abort()
