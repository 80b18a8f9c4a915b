"""Run the contact node over a rosbag2 bag: every image of the chosen topics is processed (none dropped), the
input messages and every output topic go into an MCAP bag.

The node logic is the live node's (:class:`~interactvlm_ros.node.core.ContactNode`): a :class:`BagSink` takes the
place of the transport's publishers, and images are fed one at a time, each waited for. Output messages are
logged at the log time of the image they came from (their headers carry the image header, as live).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interactvlm_ros.bag import qos
from interactvlm_ros.bag.reader import IMAGE_TYPE, InputBag
from interactvlm_ros.bag.writer import AtomicBagWriter

# output key -> (ROS type, QoS); names come from the topics.* parameters
OUTPUTS = {
    "contacts": ("interactvlm_msgs/msg/ContactArray", qos.RELIABLE),
    "markers": ("visualization_msgs/msg/MarkerArray", qos.RELIABLE),
    "human_cloud": ("sensor_msgs/msg/PointCloud2", qos.RELIABLE),
    "object_cloud": ("sensor_msgs/msg/PointCloud2", qos.RELIABLE),
    "topology": ("interactvlm_msgs/msg/MeshTopology", qos.LATCHED),
    "diagnostics": ("diagnostic_msgs/msg/DiagnosticArray", qos.RELIABLE),
    "tf": ("tf2_msgs/msg/TFMessage", qos.TF),
}


@dataclass
class BagReport:
    """What a run did. ``out`` is None when nothing was written (interrupted before the first frame)."""

    out: Path | None
    images: int
    processed: int
    failed: int
    messages: int
    interrupted: bool
    seconds: float


def output_topics(cfg: Mapping[str, Any]) -> dict[str, str]:
    """Resolved output topic names (``~/contacts`` -> ``/interactvlm/contacts``), as the live node uses."""
    from interactvlm_ros.transport.dds import resolve_topic

    return {key: resolve_topic(str(cfg[f"topics.{key}"]), str(cfg["node.name"]), str(cfg["node.namespace"]))
            for key in OUTPUTS}


class BagSink:
    """The node's :class:`OutputSink` writing into a bag at the current input log time."""

    def __init__(self, writer: AtomicBagWriter, topics: Mapping[str, str]) -> None:
        self.writer = writer
        self.log_time_ns = 0
        self._conn = {key: writer.add_topic(topics[key], msgtype, [profile])
                      for key, (msgtype, profile) in OUTPUTS.items()}

    def subscriber_count(self) -> int:
        return 1  # a bag records everything

    def _write(self, key: str, msg: Any) -> None:
        self.writer.write(self._conn[key], self.log_time_ns, msg.serialize())

    def publish_frame(self, outputs) -> None:
        from interactvlm_ros.transport.node_messages import frame_messages

        for key, msg in frame_messages(outputs).items():
            self._write(key, msg)

    def publish_diagnostics(self, report) -> None:
        from interactvlm_ros.transport.diagnostics import diagnostic_array

        self._write("diagnostics", diagnostic_array([report], stamp_ns=self.log_time_ns))

    def publish_topology(self, topology) -> None:
        from interactvlm_ros.transport.topology import topology_of

        self._write("topology", topology_of(topology, stamp_ns=self.log_time_ns))


def bag_config(cfg):
    """The node parameters for offline processing: always run, markers for every frame, no pairing wait."""
    return cfg.replace(node__always_run=True, node__marker_rate_hz=0.0, topics__camera_info="", topics__depth="")


def process_bag(cfg, bag_in: str | Path, out: str | Path, image_topics: Sequence[str] = (),
                objects: Sequence[str] = (), overwrite: bool = False, components=None,
                stop: threading.Event | None = None, on_frame: Callable[[int, int], None] | None = None,
                on_start: Callable[[int], None] | None = None) -> BagReport:
    """Process ``bag_in`` into ``out`` (see module doc). ``stop`` set = finish the current frame, write the bag of
    the frames done so far (nothing when none) and return; ``on_start(n_images)`` / ``on_frame(done, failed)``
    report progress; ``components`` = preloaded :class:`~interactvlm_ros.node.components.NodeComponents`."""
    from interactvlm_ros.node.core import ContactNode
    from interactvlm_ros.transport.msgs import Image, String
    from interactvlm_ros.transport.node_messages import wire_decoders

    t0 = time.monotonic()
    stop = stop or threading.Event()
    cfg = bag_config(cfg)
    with InputBag(bag_in) as bag:
        topics = set(bag.select_image_topics(image_topics))
        total = bag.count(sorted(topics))
        if components is None:
            from interactvlm_ros.node.components import NodeComponents

            components = NodeComponents.from_config(cfg)
        writer = AtomicBagWriter(out, overwrite=overwrite)
        node = None
        processed = failed = 0
        try:
            copies = {}
            for conn in bag.connections:
                known = conn.msgdef.data and conn.digest
                copies[conn.id] = writer.add_topic(conn.topic, conn.msgtype, bag.qos_of(conn),
                                                   conn.msgdef.data if known else None,
                                                   conn.digest if known else None)
            sink = BagSink(writer, output_topics(cfg))
            sink.log_time_ns = bag.reader.start_time
            node = ContactNode(cfg, components.predictor, components.body, sink, wire_decoders(cfg),
                               components.library, backend=components.backend)
            if objects:
                node.on_objects(String(data=",".join(objects)))
            node.start()
            if on_start:
                on_start(total)
            for conn, log_time, raw in bag.messages():
                if stop.is_set():
                    break
                writer.write(copies[conn.id], log_time, raw)
                if conn.topic not in topics or conn.msgtype != IMAGE_TYPE:
                    continue
                sink.log_time_ns = log_time
                ok = _feed(node, Image.deserialize(raw))
                processed += ok
                failed += not ok
                if on_frame:
                    on_frame(processed, failed)
            node.stop()
            sink.publish_diagnostics(node.diagnostics())
            node = None
            if stop.is_set() and processed + failed == 0:
                writer.abort()
                return BagReport(None, total, 0, 0, 0, True, time.monotonic() - t0)
            path = writer.commit()
            return BagReport(path, total, processed, failed, writer.messages, stop.is_set(), time.monotonic() - t0)
        except BaseException:
            if node is not None:
                node.stop()
            writer.abort()
            raise


def _feed(node, msg) -> bool:
    """Give one image to the node and wait until it is published (True) or failed/dropped (False)."""
    stats = node.stats
    done_before = stats.processed + stats.errors + stats.idle_skipped
    bad_before = stats.bad_messages
    node.on_image(msg)
    if stats.bad_messages > bad_before:
        return False
    processed_before = stats.processed
    while stats.processed + stats.errors + stats.idle_skipped == done_before:
        if not node.running:
            raise RuntimeError("the node's worker stopped while processing the bag")
        time.sleep(0.002)
    return stats.processed > processed_before
