"""Reading the complete part of MCAP bag files that rosbags refuses (cut short by a killed recorder, a full disk,
an interrupted copy; or a bag folder without ``metadata.yaml``).

:class:`McapSalvageReader` offers what :class:`~interactvlm_ros.bag.reader.InputBag` uses of rosbags' reader
(``connections``, ``start_time``, ``messages()``), built on :class:`~interactvlm_ros.bag.mcap_scan.McapScan`: it
reads each file front to back and stops at its first damage. Messages come in file order (chunk by chunk, each
chunk's messages sorted by log time), not merged across chunks by time as an indexed reader would.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mcap.records import Channel, Message, Schema
from rosbags.interfaces import Connection, ConnectionExtRosbag2, MessageDefinition, MessageDefinitionFormat

from interactvlm_ros.bag.mcap_scan import ChunkUnit, Damage, McapScan
from interactvlm_ros.bag.rosbag2_metadata import TYPE_HASH_KEY, channel_qos

_FORMATS = {"ros2msg": MessageDefinitionFormat.MSG, "ros2idl": MessageDefinitionFormat.IDL}


@dataclass
class FileReport:
    """What was read of one file: its messages per topic, and where it is damaged (None: complete)."""

    path: Path
    damage: Damage | None
    topic_counts: Counter = field(default_factory=Counter)

    @property
    def messages(self) -> int:
        return sum(self.topic_counts.values())


class McapSalvageReader:
    """The complete part of the MCAP files ``files`` (one bag, in order), see module doc. ``connections`` merge
    identical channels (topic, type, QoS, type hash) across files; ``reports`` say what each file gave."""

    def __init__(self, files: Sequence[Path]) -> None:
        self.files = [Path(f) for f in files]
        self.reports: list[FileReport] = []
        self._conn_of: dict[tuple[int, int], Connection] = {}
        self._by_key: dict[tuple, Connection] = {}
        self.start_time = 2**63 - 1
        counts: Counter = Counter()
        for i, path in enumerate(self.files):
            scan = McapScan(path)  # McapScanError (not an MCAP file at all) propagates
            report = FileReport(path, None)
            for conn, log_time, _data in self._file_messages(i, scan):
                counts[conn.id] += 1
                report.topic_counts[conn.topic] += 1
                self.start_time = min(self.start_time, log_time)
            report.damage = scan.damage
            self.reports.append(report)
        counted = {c.id: c._replace(msgcount=counts[c.id]) for c in self._by_key.values()}
        self._by_key = {key: counted[c.id] for key, c in self._by_key.items()}
        self.connections = list(self._by_key.values())
        if self.start_time == 2**63 - 1:
            self.start_time = 0

    def _file_messages(self, index: int, scan: McapScan) -> Iterator[tuple[Connection, int, bytes]]:
        schemas: dict[int, Schema] = {}
        for unit in scan.units():
            records = unit.records if isinstance(unit, ChunkUnit) else [unit.record]
            messages = []
            for record in records:
                if isinstance(record, Schema):
                    schemas[record.id] = record
                elif isinstance(record, Channel):
                    self._add_channel(index, record, schemas.get(record.schema_id))
                elif isinstance(record, Message) and (index, record.channel_id) in self._conn_of:
                    messages.append(record)
            for msg in sorted(messages, key=lambda m: m.log_time):
                yield self._conn_of[index, msg.channel_id], msg.log_time, msg.data

    def _add_channel(self, index: int, channel: Channel, schema: Schema | None) -> None:
        msgtype = schema.name if schema is not None else ""
        qos = channel_qos(channel.metadata)
        digest = channel.metadata.get(TYPE_HASH_KEY, "")
        key = (channel.topic, msgtype, channel.message_encoding, repr(qos), digest)
        conn = self._by_key.get(key)
        if conn is None:
            msgdef = MessageDefinition(_FORMATS.get(schema.encoding if schema else "", MessageDefinitionFormat.NONE),
                                       schema.data.decode() if schema is not None else "")
            conn = Connection(len(self._by_key) + 1, channel.topic, msgtype, msgdef, digest, 0,
                              ConnectionExtRosbag2(channel.message_encoding, qos), self)
            self._by_key[key] = conn
        self._conn_of[index, channel.id] = conn

    def messages(self) -> Iterator[tuple[Connection, int, bytes]]:
        """``(connection, log_time_ns, raw CDR)`` of every complete message, file after file."""
        for i, path in enumerate(self.files):
            yield from self._file_messages(i, McapScan(path))

    def close(self) -> None:
        """Nothing stays open between passes."""
