"""The demo's robot side on DDS: publishes camera images, camera info and object queries to the node, subscribes
to every output, records every message (sent and received) into an MCAP bag, and waits for a frame's outputs by
the image's header stamp.

Nothing here knows the node's internals: it talks to the node over Cyclone DDS (ROS 2 wire format: ``rt/``
topics, ROS types, type hashes) exactly as a ROS 2 robot would.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from cyclonedds.internal import InvalidSample
from cyclonedds.qos import Policy, Qos
from cyclonedds.util import duration

from interactvlm_ros.bag.qos import bag_qos
from interactvlm_ros.bag.writer import AtomicBagWriter
from interactvlm_ros.transport import endpoints
from interactvlm_ros.transport.dds import RELIABLE_QOS, TF_QOS, DdsParticipant, dds_qos, resolve_topic
from interactvlm_ros.transport.dds_config import loopback_domain
from interactvlm_ros.transport.headers import make_header, stamp_ns
from interactvlm_ros.transport.image_codec import encode_image
from interactvlm_ros.transport.msgs import (
    MESSAGE_TYPES,
    CameraInfo,
    DiagnosticArray,
    MarkerArray,
    MeshTopology,
    String,
    TFMessage,
)

OUTPUTS = (*endpoints.OUTPUTS, endpoints.TOPOLOGY)
"""Every output the peer reads and records (``tf``: the body_<id> frames when recon.enabled)."""
PER_FRAME = endpoints.FRAME_OUTPUTS
# a late joiner's view of the latched topology topic: one writer (and so one sample) per mesh
TOPOLOGY_QOS = Qos(Policy.Reliability.Reliable(max_blocking_time=duration(milliseconds=100)),
                   Policy.History.KeepLast(16), Policy.Durability.TransientLocal)

READER_QOS = {"topology": TOPOLOGY_QOS, "tf": TF_QOS}


class DemoTimeout(RuntimeError):
    """An expected message did not arrive in time (the message says which and what to check)."""


def header_of(msg: Any):
    """A per-frame output's header (a MarkerArray's is its last marker's; the first one is DELETEALL)."""
    if isinstance(msg, MarkerArray):
        return msg.markers[-1].header if msg.markers else None
    if isinstance(msg, TFMessage):
        return msg.transforms[0].header if msg.transforms else None
    return msg.header


def diagnostic_values(msg: DiagnosticArray) -> dict[str, str]:
    return {kv.key: kv.value for st in msg.status for kv in st.values}


@dataclass
class FrameMessages:
    """What came back for one image: ``outputs`` key -> message, receipt times (monotonic seconds)."""

    stamp_ns: int
    sent: float
    outputs: dict[str, Any] = field(default_factory=dict)
    received: dict[str, float] = field(default_factory=dict)

    def latency_ms(self, key: str = "contacts") -> float:
        return (self.received[key] - self.sent) * 1000.0 if key in self.received else float("nan")


class RobotPeer:
    """Writers of the node's inputs and readers of all its outputs on ``domain`` (Cyclone pinned to loopback),
    with every message recorded into ``bag`` (an :class:`AtomicBagWriter`).

    A receive thread takes samples continuously; :meth:`wait_frame` returns a frame's outputs by header stamp.
    """

    def __init__(self, cfg: Mapping[str, Any], domain: int, bag: AtomicBagWriter, frame_id: str) -> None:
        self.cfg = cfg
        self.frame_id = frame_id
        self._domain = loopback_domain(domain)  # before the first participant of this domain
        self.p = DdsParticipant(domain)
        node, ns = str(cfg.node.name), str(cfg.node.namespace)
        if not cfg.topics.camera_info:
            raise ValueError("the demo publishes CameraInfo: topics.camera_info must not be empty")
        if cfg.topics.image_transport != "raw":
            raise ValueError("the demo publishes raw sensor_msgs/Image: topics.image_transport must be raw")
        inputs = [e for e in endpoints.inputs(cfg) if e.key != "depth"]

        def resolve(name: str) -> str:
            return resolve_topic(name, node, ns)

        self.topics = {e.key: resolve(endpoints.topic_name(cfg, e.key, resolve)) for e in (*OUTPUTS, *inputs)}
        self.bag = bag
        self._conn = {e.key: bag.add_topic(self.topics[e.key], e.ros_type, [bag_qos(e.qos)])
                      for e in (*inputs, *OUTPUTS)}
        self.writers = {e.key: self.p.writer(MESSAGE_TYPES[e.ros_type], self.topics[e.key], dds_qos(e.qos))
                        for e in inputs}
        self.readers = {e.key: self.p.reader(MESSAGE_TYPES[e.ros_type], self.topics[e.key],
                                             READER_QOS.get(e.key, RELIABLE_QOS)) for e in OUTPUTS}
        self.topologies: dict[str, MeshTopology] = {}
        self.diagnostics: list[dict[str, str]] = []
        self._frames: dict[int, FrameMessages] = {}
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._receive, name="demo-peer-receive", daemon=True)
        self._thread.start()

    # --- receiving -------------------------------------------------------------------------------------------
    def _receive(self) -> None:
        try:
            while not self._stop.is_set():
                got = 0
                for key, reader in self.readers.items():
                    for msg in reader.take(N=32):
                        if msg is None or isinstance(msg, InvalidSample):
                            continue
                        got += 1
                        self._on_message(key, msg)
                if not got:
                    time.sleep(0.005)
        except BaseException as exc:  # noqa: BLE001 - reported to the waiting thread
            with self._cond:
                self._error = exc
                self._cond.notify_all()

    def _on_message(self, key: str, msg: Any) -> None:
        now = time.monotonic()
        self.bag.write(self._conn[key], time.time_ns(), msg.serialize())
        with self._cond:
            if key == "topology":
                self.topologies[msg.mesh_id] = msg
            elif key == "diagnostics":
                self.diagnostics.append(diagnostic_values(msg))
            else:
                header = header_of(msg)
                frame = self._frames.get(stamp_ns(header)) if header is not None else None
                if frame is not None and key not in frame.outputs:
                    frame.outputs[key] = msg
                    frame.received[key] = now
            self._cond.notify_all()

    def wait_for(self, predicate, timeout: float, what: str):
        """Wait until ``predicate()`` (called under the lock) is truthy; :class:`DemoTimeout` naming ``what``."""
        end = time.monotonic() + timeout
        with self._cond:
            while True:
                if self._error is not None:
                    raise RuntimeError(f"demo receive thread failed: {self._error!r}")
                value = predicate()
                if value:
                    return value
                left = end - time.monotonic()
                if left <= 0:
                    raise DemoTimeout(f"{what}: nothing within {timeout:.0f} s")
                self._cond.wait(min(left, 0.1))

    def wait_matched(self, timeout: float) -> None:
        """Wait until the node's readers matched our writers (else the first messages would go nowhere)."""
        end = time.monotonic() + timeout
        for key, w in self.writers.items():
            while w.get_publication_matched_status().current_count == 0:
                if time.monotonic() > end:
                    raise DemoTimeout(f"no subscriber on {self.topics[key]} within {timeout:.0f} s")
                time.sleep(0.01)

    def latest_diagnostics(self) -> dict[str, str]:
        with self._cond:
            return dict(self.diagnostics[-1]) if self.diagnostics else {}

    # --- sending ---------------------------------------------------------------------------------------------
    def set_objects(self, names: list[str], timeout: float) -> None:
        """Publish the object query on ``~/objects`` and wait until the node's diagnostics report it."""
        text = ", ".join(names)
        msg = String(data=text)
        n_before = len(self.diagnostics)
        self.writers["objects"].write(msg)
        self.bag.write(self._conn["objects"], time.time_ns(), msg.serialize())
        self.wait_for(lambda: any(d.get("objects") == text for d in self.diagnostics[n_before:]), timeout,
                      f"the node did not confirm the object query {text!r} in its diagnostics on "
                      f"{self.topics['diagnostics']}")

    def publish_frame(self, image: np.ndarray, K: np.ndarray) -> FrameMessages:
        """Publish CameraInfo then the rgb8 Image with the same header (stamp = now); returns the frame record."""
        stamp = time.time_ns()
        header = make_header(stamp, self.frame_id)
        h, w = image.shape[:2]
        P = np.zeros((3, 4))
        P[:, :3] = K
        info = CameraInfo(header=header, height=h, width=w, distortion_model="plumb_bob", d=[0.0] * 5,
                          k=[float(x) for x in np.asarray(K).reshape(-1)], r=[1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0],
                          p=[float(x) for x in P.reshape(-1)])
        msg = encode_image(np.ascontiguousarray(image, dtype=np.uint8), "rgb8", header)
        frame = FrameMessages(stamp, time.monotonic())
        with self._cond:
            self._frames[stamp] = frame
        self.writers["camera_info"].write(info)
        self.bag.write(self._conn["camera_info"], time.time_ns(), info.serialize())
        frame.sent = time.monotonic()
        self.writers["image"].write(msg)
        self.bag.write(self._conn["image"], time.time_ns(), msg.serialize())
        return frame

    def wait_frame(self, frame: FrameMessages, timeout: float, keys=PER_FRAME) -> FrameMessages:
        """Wait until every output in ``keys`` with the frame's stamp arrived."""
        missing = lambda: [k for k in keys if k not in frame.outputs]  # noqa: E731
        try:
            self.wait_for(lambda: not missing(), timeout, f"image stamp {frame.stamp_ns}")
        except DemoTimeout:
            names = ", ".join(self.topics[k] for k in missing())
            raise DemoTimeout(f"no output with the stamp of image {frame.stamp_ns} on {names} within {timeout:.0f} s "
                              "(see node.log next to the bag; the node's last diagnostics: "
                              f"{self.latest_diagnostics().get('last_error') or 'no error'})") from None
        return frame

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5.0)
        self.readers = {}
        self.writers = {}
        self.p.close()
