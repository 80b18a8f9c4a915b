"""An MCAP writer (``ros2`` profile) whose chunks end where its caller says, and which can continue a file that
was left unfinished.

Messages collect in an open chunk in memory. :meth:`ChunkedMcapWriter.end_chunk` writes it out (uncompressed,
with the CRC of its content, followed by its message index records) and hands it to the OS, so that it survives
the death of the process; :meth:`~ChunkedMcapWriter.sync` also ``fsync``\\ s it, so that it survives a power cut.
With ``chunk_bytes`` set, :meth:`~ChunkedMcapWriter.write` also ends a chunk once it is that large; without it,
chunks end only where the caller ends them — a caller that ends them after whole frames gets a file whose every
complete chunk holds whole frames.

A file whose writer died is the header, complete chunks and possibly the start of one more.
:meth:`ChunkedMcapWriter.reopen` reads it with :class:`~interactvlm_ros.bag.mcap_scan.McapScan`, cuts it after the
last complete chunk and continues from there; :meth:`~ChunkedMcapWriter.finish` writes the summary (schemas,
channels, statistics, chunk and metadata indexes) and the footer, making the file a complete, indexed MCAP file.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections import defaultdict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import BinaryIO

from mcap.data_stream import RecordBuilder
from mcap.opcode import Opcode
from mcap.records import (
    Channel,
    Chunk,
    ChunkIndex,
    DataEnd,
    Footer,
    Header,
    Message,
    MessageIndex,
    Metadata,
    MetadataIndex,
    Schema,
    Statistics,
    SummaryOffset,
)

from interactvlm_ros.bag.mcap_scan import MAGIC, ChunkUnit, McapScan, McapScanError, RecordUnit

LIBRARY = "interactvlm_ros"


class ChunkedMcapWriter:
    """Write the MCAP file ``path`` (see module doc). Create with :meth:`create` or :meth:`reopen`; not
    thread-safe (the caller serialises calls)."""

    def __init__(self, f: BinaryIO, path: Path, chunk_bytes: int | None) -> None:
        self._f = f
        self.path = path
        self.chunk_bytes = chunk_bytes
        self.schemas: dict[int, Schema] = {}
        self.channels: dict[int, Channel] = {}
        self.channel_counts: dict[int, int] = defaultdict(int)
        self.chunk_indexes: list[ChunkIndex] = []
        self.message_start_time: int | None = None
        self.message_end_time = 0
        self.dropped_bytes = 0
        self._chunk = RecordBuilder()
        self._chunk_index: dict[int, list[tuple[int, int]]] = defaultdict(list)
        self._chunk_times: tuple[int, int] | None = None

    @classmethod
    def create(cls, path: str | os.PathLike, chunk_bytes: int | None = None) -> ChunkedMcapWriter:
        """A new file at ``path`` (which must not exist), with its magic and header written."""
        path = Path(path)
        writer = cls(open(path, "xb"), path, chunk_bytes)
        writer._write_start()
        return writer

    def _write_start(self) -> None:
        header = RecordBuilder()
        Header(profile="ros2", library=LIBRARY).write(header)
        self._f.write(MAGIC + header.end())

    @classmethod
    def reopen(cls, path: str | os.PathLike, chunk_bytes: int | None = None,
               on_message: Callable[[Channel, Schema | None, Message], None] | None = None) -> ChunkedMcapWriter:
        """Continue the unfinished MCAP file ``path``: keep its complete chunks (``on_message(channel, schema,
        message)`` sees each of their messages), cut off what follows them (:attr:`dropped_bytes` says how much)
        and append from there.

        A complete chunk is one whose record is whole, whose CRC matches and whose message index records follow
        it; the first unit that is not such a chunk (or a schema or channel record) ends what is kept. A file that
        does not even hold a complete MCAP header is started again, empty."""
        path = Path(path)
        scan = McapScan(path)
        writer = cls(None, path, chunk_bytes)  # type: ignore[arg-type] - the file is opened once the scan is done
        keep_end = 0
        try:
            for unit in scan.units():
                if isinstance(unit, ChunkUnit) and unit.indexed:
                    writer._keep_chunk(unit, on_message)
                elif isinstance(unit, RecordUnit) and isinstance(unit.record, (Schema, Channel)):
                    writer._keep_definition(unit.record)
                else:
                    break
                keep_end = unit.end
            keep_end = keep_end or scan.data_start
        except McapScanError:
            keep_end = 0
        writer.dropped_bytes = scan.size - keep_end
        writer._f = open(path, "r+b")
        writer._f.truncate(keep_end)
        writer._f.seek(keep_end)
        if keep_end == 0:
            writer._write_start()
        return writer

    def _keep_chunk(self, unit: ChunkUnit, on_message) -> None:
        for record in unit.records:
            if isinstance(record, Message):
                self._count(record.channel_id, record.log_time)
                channel = self.channels.get(record.channel_id)
                if on_message is not None and channel is not None:
                    on_message(channel, self.schemas.get(channel.schema_id), record)
            else:
                self._keep_definition(record)
        chunk = unit.chunk
        self.chunk_indexes.append(ChunkIndex(
            message_start_time=chunk.message_start_time, message_end_time=chunk.message_end_time,
            chunk_start_offset=unit.offset, chunk_length=unit.chunk_end - unit.offset,
            message_index_offsets=dict(unit.index_offsets), message_index_length=unit.end - unit.chunk_end,
            compression=chunk.compression, compressed_size=len(chunk.data), uncompressed_size=chunk.uncompressed_size))

    def _keep_definition(self, record) -> None:
        if isinstance(record, Schema):
            self.schemas[record.id] = record
        elif isinstance(record, Channel):
            self.channels[record.id] = record

    # --- writing -----------------------------------------------------------------------------------------------
    def add_schema(self, name: str, encoding: str, data: bytes) -> int:
        """A new schema (``encoding`` ``ros2msg`` or ``ros2idl``); returns its id."""
        schema = Schema(id=max(self.schemas, default=0) + 1, name=name, encoding=encoding, data=data)
        self.schemas[schema.id] = schema
        schema.write(self._chunk)
        return schema.id

    def add_channel(self, topic: str, schema_id: int, metadata: Mapping[str, str],
                    message_encoding: str = "cdr") -> int:
        """A new channel; returns its id."""
        channel = Channel(id=max(self.channels, default=0) + 1, topic=topic, message_encoding=message_encoding,
                          metadata=dict(metadata), schema_id=schema_id)
        self.channels[channel.id] = channel
        channel.write(self._chunk)
        return channel.id

    def write(self, channel_id: int, log_time: int, data: bytes) -> None:
        """One message into the open chunk (ends the chunk once it holds ``chunk_bytes``, if set)."""
        self._chunk_index[channel_id].append((log_time, self._chunk.count))
        Message(channel_id=channel_id, log_time=log_time, data=data, publish_time=log_time, sequence=0).write(
            self._chunk)
        self._count(channel_id, log_time)
        start, end = self._chunk_times or (log_time, log_time)
        self._chunk_times = (min(start, log_time), max(end, log_time))
        if self.chunk_bytes is not None and self._chunk.count >= self.chunk_bytes:
            self.end_chunk()

    def _count(self, channel_id: int, log_time: int) -> None:
        self.channel_counts[channel_id] += 1
        self.message_start_time = log_time if self.message_start_time is None else min(self.message_start_time,
                                                                                      log_time)
        self.message_end_time = max(self.message_end_time, log_time)

    @property
    def open_chunk_bytes(self) -> int:
        return self._chunk.count

    def end_chunk(self) -> None:
        """Write the open chunk (if it holds anything) and its message indexes, and hand them to the OS."""
        if self._chunk.count:
            data = self._chunk.end()
            start, end = self._chunk_times or (0, 0)
            offset = self._f.tell()
            out = RecordBuilder()
            Chunk(compression="", data=data, message_start_time=start, message_end_time=end,
                  uncompressed_crc=zlib.crc32(data), uncompressed_size=len(data)).write(out)
            chunk_length = out.count
            index_offsets = {}
            for channel_id, records in self._chunk_index.items():
                index_offsets[channel_id] = offset + out.count
                MessageIndex(channel_id=channel_id, records=records).write(out)
            self._f.write(out.end())
            self.chunk_indexes.append(ChunkIndex(
                message_start_time=start, message_end_time=end, chunk_start_offset=offset, chunk_length=chunk_length,
                message_index_offsets=index_offsets, message_index_length=self._f.tell() - offset - chunk_length,
                compression="", compressed_size=len(data), uncompressed_size=len(data)))
            self._chunk_index = defaultdict(list)
            self._chunk_times = None
        self._f.flush()

    def sync(self) -> None:
        """:meth:`end_chunk`, then ``fsync`` the file: what was written survives a power cut."""
        self.end_chunk()
        os.fsync(self._f.fileno())

    def finish(self, metadata: Mapping[str, Mapping[str, str]] | None = None) -> None:
        """End the open chunk, write ``metadata`` records (name -> string map), the data end, the summary and the
        footer; fsync and close the file."""
        self.end_chunk()
        metadata = metadata or {}
        data = RecordBuilder()
        metadata_indexes = []
        for name, values in metadata.items():
            offset = self._f.tell() + data.count
            Metadata(name=name, metadata=dict(values)).write(data)
            metadata_indexes.append(MetadataIndex(offset=offset, length=self._f.tell() + data.count - offset,
                                                  name=name))
        DataEnd(data_section_crc=0).write(data)
        self._f.write(data.end())

        summary_start = self._f.tell()
        summary = RecordBuilder()
        offsets = []

        def group(opcode: Opcode, records) -> None:
            start = summary.count
            for record in records:
                record.write(summary)
            if summary.count > start:
                offsets.append(SummaryOffset(group_opcode=opcode, group_start=summary_start + start,
                                             group_length=summary.count - start))

        group(Opcode.SCHEMA, self.schemas.values())
        group(Opcode.CHANNEL, self.channels.values())
        group(Opcode.STATISTICS, [self.statistics(metadata_count=len(metadata_indexes))])
        group(Opcode.CHUNK_INDEX, self.chunk_indexes)
        group(Opcode.METADATA_INDEX, metadata_indexes)
        summary_offset_start = summary_start + summary.count
        for offset in offsets:
            offset.write(summary)
        body = summary.end()
        crc = zlib.crc32(struct.pack("<BQQQ", Opcode.FOOTER, 20, summary_start, summary_offset_start),
                         zlib.crc32(body))
        footer = RecordBuilder()
        Footer(summary_start=summary_start, summary_offset_start=summary_offset_start, summary_crc=crc).write(footer)
        self._f.write(body + footer.end() + MAGIC)
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()

    def statistics(self, metadata_count: int = 0) -> Statistics:
        """Counts and times of everything written so far (open chunk included)."""
        return Statistics(
            message_count=sum(self.channel_counts.values()), schema_count=len(self.schemas),
            channel_count=len(self.channels), attachment_count=0, metadata_count=metadata_count,
            chunk_count=len(self.chunk_indexes), message_start_time=self.message_start_time or 0,
            message_end_time=self.message_end_time,
            channel_message_counts={cid: self.channel_counts.get(cid, 0) for cid in self.channels})

    def close(self) -> None:
        """Close the file as it is (unfinished: the open chunk is dropped; :meth:`reopen` can continue it)."""
        self._f.close()
