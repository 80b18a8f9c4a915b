"""Run the contact node over a rosbag2 bag: every image of the chosen topics (sensor_msgs/Image, or CompressedImage
as image_transport's ``compressed`` records it, decoded as the live node does) is processed (none dropped), the
input messages and every output topic go into an MCAP bag.

The node logic is the live node's (:class:`~interactvlm_ros.node.core.ContactNode`): a :class:`BagSink` takes the
place of the transport's publishers, and images are fed one at a time, each waited for. Output messages are
logged at the log time of the image they came from (their headers carry the image header, as live).

Crash safety: the bag is written in the unfinished-run folder of the output
(:class:`~interactvlm_ros.bag.unfinished.UnfinishedRun`), one MCAP chunk per frame, each handed to the OS as
soon as its frame is done (a killed process loses only the frame in flight) and fsynced every
:class:`FlushPolicy` interval (a power cut loses at most that). A stale unfinished run is never used nor deleted
silently: ``resume=True`` continues it (input messages it holds are skipped), ``restart=True`` discards it, and
otherwise :class:`~interactvlm_ros.bag.writer.BagWriteError` says what was found.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from interactvlm_ros.bag.qos import bag_qos
from interactvlm_ros.bag.reader import IMAGE_TYPES, InputBag
from interactvlm_ros.bag.resume import ResumeState
from interactvlm_ros.bag.unfinished import UnfinishedRun, claim_unfinished_run
from interactvlm_ros.bag.writer import AtomicBagWriter, BagTopic, BagWriteError
from interactvlm_ros.node.components import NodeComponents
from interactvlm_ros.transport import endpoints
from interactvlm_ros.transport.dds import resolve_topic
from interactvlm_ros.transport.diagnostics import diagnostic_array
from interactvlm_ros.transport.node_inputs import wire_image_codec
from interactvlm_ros.transport.node_messages import frame_messages
from interactvlm_ros.transport.topology import topology_of

# output key -> (ROS type, QoS) as the live node offers them; names come from the topics.* parameters
OUTPUTS = {e.key: (e.ros_type, bag_qos(e.qos)) for e in (*endpoints.OUTPUTS, endpoints.TOPOLOGY)}


@dataclass
class BagReport:
    """What a run did. ``out`` is None when nothing was written (interrupted before the first frame).
    ``processed``/``failed`` count this run's frames, ``resumed`` the frames taken over from an unfinished run;
    ``input_problems`` are the one-line warnings about a damaged input."""

    out: Path | None
    images: int
    processed: int
    failed: int
    messages: int
    interrupted: bool
    seconds: float
    resumed: int = 0
    input_problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class FlushPolicy:
    """How often the bag is fsynced (after the frame that reaches either limit; 0 = no such limit)."""

    every_frames: int = 10
    every_seconds: float = 30.0

    def due(self, frames: int, seconds: float) -> bool:
        return (self.every_frames > 0 and frames >= self.every_frames) or (
            self.every_seconds > 0 and seconds >= self.every_seconds)


def output_topics(cfg: Mapping[str, Any]) -> dict[str, str]:
    """Resolved output topic names (``~/contacts`` -> ``/interactvlm/contacts``), as the live node uses."""
    return {key: resolve_topic(str(cfg[f"topics.{key}"]), str(cfg["node.name"]), str(cfg["node.namespace"]))
            for key in OUTPUTS}


class BagSink:
    """The node's :class:`OutputSink` writing into a bag at the current input log time. Topologies of meshes in
    ``skip_meshes`` (already in a resumed bag) are not written again."""

    def __init__(self, writer: AtomicBagWriter, topics: Mapping[str, str], skip_meshes: set[str] = frozenset()
                 ) -> None:
        self.writer = writer
        self.log_time_ns = 0
        self.skip_meshes = set(skip_meshes)
        self._conn = {key: writer.add_topic(topics[key], msgtype, [profile])
                      for key, (msgtype, profile) in OUTPUTS.items()}

    def subscriber_count(self) -> int:
        return 1  # a bag records everything

    def _write(self, key: str, msg: Any) -> None:
        self.writer.write(self._conn[key], self.log_time_ns, msg.serialize())

    def publish_frame(self, outputs) -> None:
        for key, msg in frame_messages(outputs).items():
            self._write(key, msg)

    def publish_diagnostics(self, report) -> None:
        self._write("diagnostics", diagnostic_array([report], stamp_ns=self.log_time_ns))

    def publish_topology(self, topology) -> None:
        if topology.mesh_id in self.skip_meshes:
            return
        self._write("topology", topology_of(topology, stamp_ns=self.log_time_ns))


def bag_config(cfg):
    """The node parameters for offline processing: always run, markers for every frame, no pairing wait."""
    return cfg.replace(node__always_run=True, node__marker_rate_hz=0.0, topics__camera_info="", topics__depth="")


def process_bag(cfg, bag_in: str | Path, out: str | Path, image_topics: Sequence[str] = (),
                objects: Sequence[str] = (), overwrite: bool = False, components=None,
                stop: threading.Event | None = None, on_frame: Callable[[int, int], None] | None = None,
                on_start: Callable[[int, int], None] | None = None, *, resume: bool = False, restart: bool = False,
                flush: FlushPolicy = FlushPolicy(), on_note: Callable[[str], None] | None = None) -> BagReport:
    """Process ``bag_in`` into ``out`` (see module doc). ``stop`` set = finish the current frame, write the bag of
    the frames done so far (nothing when none) and return; ``on_start(n_images, n_already_done)`` /
    ``on_frame(done, failed)`` report progress, ``on_note(line)`` what was found and done (unfinished run, damaged
    input); ``components`` = preloaded :class:`~interactvlm_ros.node.components.NodeComponents`.

    After an error the unfinished run is kept (closed after the last complete frame) for ``resume``; after a
    KeyboardInterrupt (abandon) what this run wrote is deleted (a resumed run is kept)."""
    t0 = time.monotonic()
    stop = stop or threading.Event()
    note = on_note or (lambda line: None)
    cfg = bag_config(cfg)
    out = Path(out).absolute()
    if out.exists() and not overwrite:
        raise BagWriteError(f"{out} exists (pass --overwrite to replace it)")
    with InputBag(bag_in) as bag:
        topics = bag.select_image_topics(image_topics)
        problems = bag.problems(topics)
        for line in problems:
            note(f"warning: {line}")
        total = bag.count(topics)
        names = output_topics(cfg)
        manifest = {"input": str(Path(bag_in).resolve()), "image_topics": topics, "objects": list(objects),
                    "parameters": _jsonable({key: cfg[key] for key in cfg})}
        run, existing = claim_unfinished_run(out, manifest, resume, restart, note)
        writer = node = None
        state = ResumeState({(names[k], msgtype) for k, (msgtype, _q) in OUTPUTS.items()}, set(topics),
                            names["topology"])
        processed = failed = 0
        try:
            if components is None:
                components = NodeComponents.from_config(cfg)
            writer = _open_writer(run, existing, out, overwrite, state, note)
            copies: dict[int, BagTopic] = {}
            for conn in bag.connections:
                copies[conn.id] = writer.add_topic(conn.topic, conn.msgtype, bag.qos_of(conn),
                                                   conn.msgdef.data or None, conn.digest or None)
            sink = BagSink(writer, names, state.meshes)
            sink.log_time_ns = bag.start_time
            node = components.build_node(cfg, sink)
            codecs = {msgtype: wire_image_codec(cfg, msgtype) for msgtype in IMAGE_TYPES}  # by each topic's type
            if objects:
                node.dispatch("objects", ",".join(objects))
            node.start()
            if on_start:
                on_start(total, state.frames)
            since_flush, last_flush = 0, time.monotonic()
            for conn, log_time, raw in bag.messages():
                if stop.is_set():
                    break
                if state.take(conn.topic, log_time, raw):
                    continue  # already in the resumed bag
                writer.write(copies[conn.id], log_time, raw)
                if conn.topic not in topics or conn.msgtype not in IMAGE_TYPES:
                    continue
                sink.log_time_ns = log_time
                ok = _feed(node, raw, codecs[conn.msgtype])
                processed += ok
                failed += not ok
                since_flush += 1
                if flush.due(since_flush, time.monotonic() - last_flush):
                    writer.flush()
                    since_flush, last_flush = 0, time.monotonic()
                else:
                    writer.end_chunk()  # the frame is complete: a killed process keeps it
                if on_frame:
                    on_frame(processed, failed)
            node.stop()
            sink.publish_diagnostics(node.diagnostics())
            node = None
            if bag.read_error:
                problems.append(bag.read_error)
                note(f"warning: {bag.read_error}")
            if state.unmatched and not stop.is_set():
                note(f"warning: {state.unmatched} input messages of the resumed run were not found in {bag_in}")
            if stop.is_set() and processed + failed + state.frames == 0:
                writer.abort()
                run.release()
                return BagReport(None, total, 0, 0, 0, True, time.monotonic() - t0, 0, problems)
            path = writer.commit()
            run.release()
            return BagReport(path, total, processed, failed, writer.messages, stop.is_set(), time.monotonic() - t0,
                             state.frames, problems)
        except BaseException as exc:
            if node is not None:
                node.stop()
            if not existing and (writer is None or isinstance(exc, KeyboardInterrupt)):
                if writer is not None:  # abandoned (second Ctrl-C): drop what this run wrote
                    writer.abort()
                run.discard()  # (or nothing was written yet)
                raise
            if writer is not None:
                writer.close_unfinished()
            run.release()
            note(f"the unfinished run is kept in {run.path}: continue it with --resume, or keep what it holds "
                 f"with `interactvlm bag --recover {out}`")
            raise


def _open_writer(run: UnfinishedRun, existing: bool, out: Path, overwrite: bool, state: ResumeState,
                 note: Callable[[str], None]) -> AtomicBagWriter:
    if not existing or run.mcap_path is None:
        return AtomicBagWriter(out, overwrite, workdir=run.path, chunk_bytes=None)
    writer = AtomicBagWriter.reopen(out, run.mcap_path, run.path, overwrite, chunk_bytes=None, on_message=state.add)
    dropped = (f"; {writer.dropped_bytes} bytes after the last complete frame dropped" if writer.dropped_bytes
               else "")
    note(f"resuming the unfinished run {run.path}: {state.frames} frames ({state.messages} messages) kept"
         f"{dropped}; their input messages are skipped")
    return writer


def _jsonable(values: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(dict(values), default=str))


def _feed(node, raw: bytes, codec) -> bool:
    """Give one image's CDR bytes to the node and wait until it is published (True) or failed/dropped (False)."""
    stats = node.stats
    done_before = stats.processed + stats.errors + stats.idle_skipped
    bad_before = stats.bad_messages
    node.on_serialized("image", raw, codec)
    if stats.bad_messages > bad_before:
        return False
    processed_before = stats.processed
    while stats.processed + stats.errors + stats.idle_skipped == done_before:
        if not node.running:
            raise RuntimeError("the node's worker stopped while processing the bag")
        time.sleep(0.002)
    return stats.processed > processed_before
