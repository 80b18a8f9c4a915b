"""Reading an MCAP file front to back, one record at a time, up to the first damage.

A writer killed mid-run (or a file cut short by a copy or a full disk) leaves an MCAP file without its summary and
footer, possibly ending inside a record. Indexed readers (rosbags, the mcap library's seeking reader) refuse such a
file whole. :class:`McapScan` instead walks the data section from the start and yields every complete unit —
a chunk with the message index records that follow it, or a top-level schema, channel or message record — and
stops at the first record that is cut short or inconsistent (a length past the end of the file, a chunk whose
CRC or compressed data is wrong, an invalid opcode), recording where and why in :attr:`McapScan.damage`.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from io import BytesIO
from pathlib import Path

from mcap.data_stream import ReadDataStream
from mcap.exceptions import McapError
from mcap.opcode import Opcode
from mcap.records import Channel, Chunk, Header, McapRecord, Message, MessageIndex, Metadata, Schema
from mcap.stream_reader import breakup_chunk

MAGIC = b"\x89MCAP0\r\n"
_RECORD_HEAD = struct.Struct("<BQ")  # opcode, length of the record body
_PARSE_ERRORS = (McapError, struct.error, UnicodeDecodeError, ValueError, RuntimeError, MemoryError)
_TOP_LEVEL = {Opcode.SCHEMA: Schema, Opcode.CHANNEL: Channel, Opcode.METADATA: Metadata}


class McapScanError(ValueError):
    """The file is not an MCAP file at all (no magic or no header record)."""


@dataclass(frozen=True)
class Damage:
    """Where the readable part of a file ends (``offset``, bytes from its start) and why."""

    offset: int
    problem: str

    def __str__(self) -> str:
        return f"at byte {self.offset}: {self.problem}"


@dataclass
class ChunkUnit:
    """A complete chunk record (``offset`` .. ``chunk_end``) and the message index records after it (.. ``end``).

    ``records``: the schema, channel and message records inside, in file order; ``index_offsets``: channel id ->
    file offset of that channel's message index record."""

    offset: int
    chunk_end: int
    end: int
    chunk: Chunk
    records: list[McapRecord]
    index_offsets: dict[int, int] = field(default_factory=dict)

    @property
    def messages(self) -> list[Message]:
        return [r for r in self.records if isinstance(r, Message)]

    @property
    def indexed(self) -> bool:
        """Whether every channel with messages in the chunk has its message index record after it."""
        return {m.channel_id for m in self.messages} <= self.index_offsets.keys()


@dataclass
class RecordUnit:
    """A top-level schema, channel, message or metadata record (``offset`` .. ``end``)."""

    offset: int
    end: int
    record: McapRecord


class McapScan:
    """One front-to-back pass over the MCAP file ``path`` (iterate :meth:`units`; each call starts a new pass).

    After a pass, :attr:`damage` is None when the data section ended properly (its data-end or footer record was
    reached), else where the pass stopped; :attr:`header` is the header record and :attr:`data_start` the offset
    just after it."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.size = self.path.stat().st_size
        self.header: Header | None = None
        self.data_start = 0
        self.damage: Damage | None = None

    def units(self) -> Iterator[ChunkUnit | RecordUnit]:
        """Every complete unit of the data section in file order, up to the end of the data section or the first
        damage (see module doc). Raises :class:`McapScanError` if the file does not start like an MCAP file."""
        self.damage = None
        with open(self.path, "rb") as f:
            self._read_start(f)
            pending: ChunkUnit | None = None
            while True:
                offset = f.tell()
                try:
                    opcode, body = self._read_record(f, offset)
                except _Damaged as exc:
                    self.damage = exc.damage
                    break
                if opcode == Opcode.MESSAGE_INDEX and pending is not None:
                    index = self._parse(MessageIndex.read, body, offset, "message index")
                    if index is None:
                        break
                    pending.index_offsets[index.channel_id] = offset
                    pending.end = f.tell()
                    continue
                if pending is not None:
                    yield pending
                    pending = None
                if opcode in (Opcode.DATA_END, Opcode.FOOTER):
                    break
                if opcode == Opcode.CHUNK:
                    pending = self._chunk_unit(body, offset, f.tell())
                    if pending is None:
                        break
                elif opcode == Opcode.MESSAGE:
                    record = self._parse(partial(Message.read, length=len(body)), body, offset, "message")
                    if record is None:
                        break
                    yield RecordUnit(offset, f.tell(), record)
                elif opcode in _TOP_LEVEL:
                    record = self._parse(_TOP_LEVEL[opcode].read, body, offset, Opcode(opcode).name.lower())
                    if record is None:
                        break
                    yield RecordUnit(offset, f.tell(), record)
                # other records (attachments, indexes, summary records) carry no messages: skipped
            if pending is not None:
                yield pending

    def _read_start(self, f) -> None:
        if f.read(len(MAGIC)) != MAGIC:
            raise McapScanError(f"{self.path} is not an MCAP file (no MCAP magic at its start)")
        try:
            opcode, body = self._read_record(f, len(MAGIC))
        except _Damaged as exc:
            raise McapScanError(f"{self.path} has no complete MCAP header ({exc.damage})") from None
        if opcode != Opcode.HEADER:
            raise McapScanError(f"{self.path} does not start with an MCAP header record")
        self.header = Header.read(ReadDataStream(BytesIO(body)))
        self.data_start = f.tell()

    def _read_record(self, f, offset: int) -> tuple[int, bytes]:
        head = f.read(_RECORD_HEAD.size)
        if not head:
            raise _Damaged(offset, "the file ends here, without its summary and footer (truncated)")
        if len(head) < _RECORD_HEAD.size:
            raise _Damaged(offset, "the file ends inside a record header (truncated)")
        opcode, length = _RECORD_HEAD.unpack(head)
        if opcode == 0:
            raise _Damaged(offset, "invalid record opcode 0x00 (zeros or garbage instead of a record)")
        remaining = self.size - offset - _RECORD_HEAD.size
        if length > remaining:
            name = Opcode(opcode).name.lower().replace("_", " ") if opcode in Opcode._value2member_map_ else \
                f"opcode 0x{opcode:02x}"
            raise _Damaged(offset, f"a {name} record of {length} bytes, but only {remaining} bytes follow "
                                   f"(truncated)")
        return opcode, f.read(length)

    def _parse(self, read, body: bytes, offset: int, what: str):
        try:
            return read(ReadDataStream(BytesIO(body)))
        except _PARSE_ERRORS as exc:
            self.damage = Damage(offset, f"malformed {what} record ({type(exc).__name__}: {exc})")
            return None

    def _chunk_unit(self, body: bytes, offset: int, end: int) -> ChunkUnit | None:
        chunk = self._parse(Chunk.read, body, offset, "chunk")
        if chunk is None:
            return None
        try:
            records = breakup_chunk(chunk, validate_crc=True)
        except Exception as exc:  # noqa: BLE001 - CRC, zstd, lz4 and parse errors all mean a damaged chunk
            self.damage = Damage(offset, f"unreadable chunk ({type(exc).__name__}: {exc})")
            return None
        return ChunkUnit(offset, end, end, chunk, records)


class _Damaged(Exception):
    def __init__(self, offset: int, problem: str) -> None:
        super().__init__(problem)
        self.damage = Damage(offset, problem)
