"""The ``dds`` transport: the node on Cyclone DDS speaking the ROS 2 wire protocol, no ROS install needed.

ROS topic ``/a/b`` is DDS topic ``rt/a/b``; types are the ``pkg::msg::dds_::Type_`` structs of
``transport/msgs`` (final, XCDR1, keyless) with the REP-2011 type hash in USER_DATA, so ``ros2 topic echo``
and rclpy subscribers on rmw_cyclonedds_cpp / rmw_fastrtps_cpp see ordinary ROS topics.

Input topics are named as image_transport names them (``endpoints.input_topic``): ``<image>/compressed`` for
compressed images, camera info on the image's sibling ``camera_info`` unless ``topics.camera_info`` names one.

QoS as ROS does it (REP-2003): the image (and depth) subscription is SensorDataQoS by default (best effort,
keep last ``qos.image_depth`` = 5), or reliable (``qos.image_reliability``); camera info and object queries
are reliable keep-last 10; outputs are reliable keep-last 10; the mesh topology is latched (reliable,
transient local, keep last 1, one writer per mesh, so late joiners get every mesh); ``/tf`` (the ``body_<id>``
frames of a reconstructed frame) is reliable keep-last 100, volatile, like tf2's TransformBroadcaster.

Receiving never trusts the bytes: samples are taken as serialized CDR (:func:`take_serialized`) and each one
is decoded by the node inside its own error boundary (``ContactNode.on_serialized``), so a sample with invalid
UTF-8, a truncated or random payload costs that sample only (cyclonedds-python's ``take`` decodes a whole batch
and raises on the first bad one, losing the good samples taken with it). The receive loop runs under the
node's supervisor, and the readers' sample-lost counts are reported as ``transport_lost`` drops.

Lazy mode: the node asks :meth:`DdsTransport.subscriber_count`, the sum of the publication-matched counts of
the per-frame output writers (contacts, markers, clouds), so no inference runs while nobody listens.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

from cyclonedds._clayer import ddspy_take, ddspy_write
from cyclonedds.core import DDSException, GuardCondition, InstanceState, ReadCondition, SampleState, ViewState, WaitSet
from cyclonedds.domain import DomainParticipant
from cyclonedds.pub import DataWriter
from cyclonedds.qos import Policy, Qos
from cyclonedds.sub import DataReader
from cyclonedds.topic import Topic
from cyclonedds.util import duration

from interactvlm_ros.node.inputs import InputCodec
from interactvlm_ros.node.outputs import DiagnosticsReport, FrameOutputs
from interactvlm_ros.pipeline.result import MeshTopology
from interactvlm_ros.transport import endpoints
from interactvlm_ros.transport import node_messages as messages
from interactvlm_ros.transport.dds_config import domain_id_from_env, ros_topic
from interactvlm_ros.transport.endpoints import QosSpec
from interactvlm_ros.transport.msgs import MESSAGE_TYPES
from interactvlm_ros.transport.msgs.interactvlm import MeshTopology as MeshTopologyMsg
from interactvlm_ros.transport.node_inputs import wire_codecs
from interactvlm_ros.transport.typehash import typehash_policy

LOG = logging.getLogger("interactvlm.dds")
RECEIVE_THREAD = "interactvlm-dds-receive"

class TopicNameError(ValueError):
    """A topic name is not a valid ROS 2 name."""


def resolve_topic(name: str, node_name: str, namespace: str = "") -> str:
    """ROS 2 name resolution: ``~/x`` -> ``/<ns>/<node>/x``, ``x`` -> ``/<ns>/x``, ``/x`` stays.

    >>> resolve_topic("~/objects", "interactvlm")
    '/interactvlm/objects'
    >>> resolve_topic("image", "interactvlm", "/robot")
    '/robot/image'
    """
    if not name:
        raise TopicNameError("empty topic name")
    ns = "/" + namespace.strip("/") if namespace.strip("/") else ""
    if name == "~" or name.startswith("~/"):
        full = f"{ns}/{node_name}{name[1:]}"
    elif name.startswith("/"):
        full = name
    else:
        full = f"{ns}/{name}"
    full = full.rstrip("/") or "/"
    for token in full.strip("/").split("/"):
        if not token or not (token[0].isalpha() or token[0] == "_") or not all(
                ch.isalnum() or ch == "_" for ch in token):
            raise TopicNameError(f"invalid ROS topic name {name!r} (resolved to {full!r})")
    return full


def domain_id(cfg: Mapping[str, Any]) -> int:
    """``dds.domain_id``, or ``$ROS_DOMAIN_ID`` when it is -1 (default 0)."""
    return domain_id_from_env(int(cfg.dds.domain_id))


def dds_qos(spec: QosSpec) -> Qos:
    """The cyclonedds ``Qos`` of a :class:`~interactvlm_ros.transport.endpoints.QosSpec` (``system_default``
    is reliable, Cyclone's default for writers)."""
    rel = Policy.Reliability.BestEffort if spec.reliability == "best_effort" else Policy.Reliability.Reliable(
        max_blocking_time=duration(milliseconds=100))
    durability = Policy.Durability.TransientLocal if spec.latched else Policy.Durability.Volatile
    return Qos(rel, Policy.History.KeepLast(spec.depth), durability)


def image_qos(reliability: str, depth: int) -> Qos:
    """An image/depth profile: ``reliability`` (best_effort = SensorDataQoS), keep last ``depth``, volatile."""
    return dds_qos(QosSpec(reliability, depth))


RELIABLE_QOS = dds_qos(endpoints.DEFAULT)
"""ROS default QoS (``rclcpp::QoS(10)``): outputs, camera info, object queries."""
LATCHED_QOS = dds_qos(endpoints.LATCHED)
"""Latched: a late subscriber still gets the last message (``TRANSIENT_LOCAL``, depth 1)."""
TF_QOS = dds_qos(endpoints.TF)
"""``/tf``: tf2_ros ``DynamicBroadcasterQoS`` (reliable, keep last 100, volatile)."""
INPUT_TYPES = {key: MESSAGE_TYPES[ros_type] for key, ros_type in endpoints.INPUT_TYPES.items()}
"""Input key -> message class of the node's subscriptions."""


class DdsParticipant:
    """A domain participant that creates ROS-compatible readers and writers (``rt/`` names, type hash)."""

    def __init__(self, domain: int) -> None:
        self.domain = domain
        self.dp = DomainParticipant(domain)
        self._topics: dict[str, Topic] = {}

    def topic(self, msg_type, ros_name: str) -> Topic:
        key = ros_topic(ros_name)
        if key not in self._topics:
            self._topics[key] = Topic(self.dp, key, msg_type)
        return self._topics[key]

    def writer(self, msg_type, ros_name: str, qos: Qos) -> DataWriter:
        return DataWriter(self.dp, self.topic(msg_type, ros_name), qos=_with_type_hash(qos, msg_type))

    def reader(self, msg_type, ros_name: str, qos: Qos) -> DataReader:
        return DataReader(self.dp, self.topic(msg_type, ros_name), qos=_with_type_hash(qos, msg_type))

    def close(self) -> None:
        self._topics.clear()
        self.dp = None


def _with_type_hash(qos: Qos, msg_type) -> Qos:
    return Qos(*qos, typehash_policy(msg_type))


def matched_count(writer: DataWriter) -> int:
    """How many readers currently match ``writer`` (publication-matched status)."""
    return int(writer.get_publication_matched_status().current_count)


class DdsTransport:
    """Runs a :class:`~interactvlm_ros.node.core.ContactNode` on DDS: readers feed it, writers publish for it.

    ``open()`` creates the writers (the node's :class:`OutputSink`), ``attach(node)`` creates the readers and
    starts the receive thread; ``close()`` stops it and deletes every entity.
    """

    def __init__(self, cfg: Mapping[str, Any], participant: DdsParticipant | None = None) -> None:
        self.cfg = cfg
        self.node_name = str(cfg.node.name)
        self.namespace = str(cfg.node.namespace)
        self.participant = participant or DdsParticipant(domain_id(cfg))
        self._owns_participant = participant is None
        keys = [e.key for e in (*endpoints.OUTPUTS, endpoints.TOPOLOGY, *endpoints.inputs(cfg))]
        resolve = self.resolve
        self.names = {key: resolve(endpoints.topic_name(cfg, key, resolve)) for key in keys}
        self._writers: dict[str, DataWriter] = {}
        self._readers: dict[str, DataReader] = {}
        self._codecs: dict[str, InputCodec] = {}
        self._stop = threading.Event()
        self._guard: GuardCondition | None = None
        self._write_lock = threading.Lock()
        self.node = None

    def resolve(self, name: str) -> str:
        """ROS name resolution in this node's name and namespace (:func:`resolve_topic`)."""
        return resolve_topic(name, self.node_name, self.namespace)

    # --- OutputSink ----------------------------------------------------------------------------------------
    def open(self) -> DdsTransport:
        p = self.participant
        self._writers = {e.key: p.writer(MESSAGE_TYPES[e.ros_type], self.names[e.key], dds_qos(e.qos))
                         for e in endpoints.OUTPUTS}
        return self

    def subscriber_count(self) -> int:
        return sum(matched_count(self._writers[k]) for k in endpoints.FRAME_OUTPUTS)

    def publish_frame(self, outputs: FrameOutputs) -> None:
        for kind, msg in messages.frame_messages(outputs).items():
            self._write(kind, msg)

    def publish_diagnostics(self, report: DiagnosticsReport) -> None:
        self._write("diagnostics", messages.diagnostics_message(report))

    def publish_topology(self, topology: MeshTopology) -> None:
        """Latched: one transient-local depth-1 writer per mesh, so a late subscriber gets every mesh."""
        kind = f"topology:{topology.mesh_id}"
        if kind not in self._writers:
            self._writers[kind] = self.participant.writer(MeshTopologyMsg, self.names["topology"],
                                                          dds_qos(endpoints.TOPOLOGY.qos))
        self._write(kind, messages.topology_message(topology))

    def _write(self, kind: str, msg) -> None:
        writer = self._writers.get(kind)
        if writer is None:
            raise RuntimeError(f"dds transport: no writer for {kind!r} (open() first, or already closed)")
        with self._write_lock:
            writer.write(msg)

    # --- inputs --------------------------------------------------------------------------------------------
    def attach(self, node) -> None:
        """Create the readers for ``node`` and start the receive thread."""
        self.node = node
        p = self.participant
        self._readers = {e.key: p.reader(MESSAGE_TYPES[e.ros_type], self.names[e.key], dds_qos(e.qos))
                         for e in endpoints.inputs(self.cfg)}
        self._codecs = wire_codecs(self.cfg)
        self._stop = threading.Event()
        self._guard = GuardCondition(self.participant.dp)
        node.supervisor.start(RECEIVE_THREAD, self._receive, self._stop)

    def _receive(self, stop: threading.Event) -> None:
        """Wait on every reader; hand each sample's bytes to the node; poll the synchroniser between messages;
        report the readers' lost-sample counts once a second."""
        ws = WaitSet(self.participant.dp)
        ws.attach(self._guard)
        mask = SampleState.NotRead | ViewState.Any | InstanceState.Any
        conditions = []
        for reader in self._readers.values():
            cond = ReadCondition(reader, mask)
            conditions.append(cond)
            ws.attach(cond)
        next_status = 0.0
        try:
            while not stop.is_set():
                ws.wait(duration(milliseconds=50))
                for kind, reader in self._readers.items():
                    for payload in take_serialized(reader):
                        if stop.is_set():
                            break
                        self.node.on_serialized(kind, payload, self._codecs[kind])
                self.node.poll()
                if time.monotonic() >= next_status:
                    next_status = time.monotonic() + 1.0
                    for kind, reader in self._readers.items():
                        self.node.on_transport_lost(kind, int(reader.get_sample_lost_status().total_count))
        finally:
            for cond in conditions:
                ws.detach(cond)
            ws.detach(self._guard)

    # --- shutdown ------------------------------------------------------------------------------------------
    def detach(self) -> None:
        """Stop receiving (the readers are deleted); the writers stay."""
        self._stop.set()
        if self._guard is not None:
            self._guard.set(True)
        if self.node is not None:
            self.node.supervisor.join(RECEIVE_THREAD, 5.0)
        self._readers = {}
        self._guard = None

    def close(self) -> None:
        """Stop receiving and delete every reader and writer (and the participant when we created it)."""
        self.detach()
        with self._write_lock:
            self._writers = {}
        if self._owns_participant:
            self.participant.close()


def take_serialized(reader: DataReader, batch: int = 16) -> Iterator[bytes]:
    """The serialized CDR bytes (encapsulation header included) of every available sample with valid data,
    not decoded: ``reader.topic.data_type.deserialize(payload)`` decodes one. Uses the binding's C-layer take,
    which is what ``DataReader.take`` calls before it decodes."""
    mask = SampleState.Any | ViewState.Any | InstanceState.Any
    while True:
        taken = ddspy_take(reader._ref, mask, batch)
        if isinstance(taken, int):
            raise DDSException(taken, f"Occurred while taking data in {reader!r}")
        for payload, info in taken:
            if info.valid_data:
                yield payload
        if len(taken) < batch:
            return


def write_serialized(writer: DataWriter, payload: bytes) -> None:
    """Publish ``payload`` as it is (CDR bytes with the encapsulation header), without encoding a sample: how
    another process on the domain can send anything at all (the fuzz benchmark and tests use it)."""
    ret = ddspy_write(writer._ref, bytes(payload))
    if isinstance(ret, int) and ret < 0:
        raise DDSException(ret, f"Occurred while writing serialized data in {writer!r}")
