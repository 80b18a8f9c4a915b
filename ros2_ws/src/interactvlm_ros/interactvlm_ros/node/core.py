"""The node, written once for every transport: inputs → latest-frame slot → worker → pipeline → outputs.

A transport (rclpy, DDS, a bag) only moves bytes: it calls :meth:`ContactNode.on_serialized` with each received
sample and the topic's :class:`~interactvlm_ros.node.inputs.InputCodec` (``transport/node_inputs.py`` builds
them), so the node sees plain values — header, RGB array, intrinsics, depth, query text — and never a ROS
message field. It gives the node an :class:`OutputSink` that publishes :class:`FrameOutputs` /
:class:`DiagnosticsReport` / :class:`MeshTopology` and counts subscribers.

Threads: the transport's receive thread validates, decodes and time-syncs inputs and drops a frame into a
:class:`LatestSlot`; one worker thread runs the pipeline on the newest frame and publishes; a monitor thread
sends diagnostics every ``node.diagnostics_period_s`` (and at once after a problem), so a stuck worker is
still reported. All three run under a :class:`~interactvlm_ros.node.supervision.Supervisor`: a loop that raises
is restarted and reported at once as an ERROR.

Every received sample is decoded and handled inside its own error boundary (:meth:`ContactNode.on_serialized`):
a sample that cannot be decoded or used is dropped, counted per topic and kind (:mod:`.input_health`), logged
with a throttle and reported in diagnostics; the next sample is handled as if nothing happened. A liveness
watchdog (``node.watchdog_s``) turns diagnostics to ERROR when images arrive but nothing is published, and to
WARN when no image arrives at all.

The worker runs the one :class:`~interactvlm_ros.pipeline.contact_pipeline.ContactPipeline` (contacts on the
body and on the objects' library meshes). With ``recon.enabled`` it also reconstructs each frame in the camera
frame (:mod:`interactvlm_ros.pipeline.reconstruction`) and
the outputs carry the posed meshes, contact points, body id and ``body_<id>`` frames; a frame whose
reconstruction fails is published with the fixed placement (:mod:`.placement`) and a throttled warning.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from interactvlm_ros.node.input_health import InputHealth, problem_of
from interactvlm_ros.node.inputs import Calibration, InputCodec, Stamped
from interactvlm_ros.node.latest import LatestSlot
from interactvlm_ros.node.outputs import (
    BodyFrame,
    DiagnosticsReport,
    FrameHeader,
    FrameOutputs,
    PlacedMesh,
)
from interactvlm_ros.node.placement import FixedPlacement
from interactvlm_ros.node.queries import ObjectQueries, QueryError
from interactvlm_ros.node.stats import NodeStats
from interactvlm_ros.node.supervision import Supervisor, ThreadDeath
from interactvlm_ros.node.sync import ApproximateSync
from interactvlm_ros.node.throttle import ThrottledWarnings
from interactvlm_ros.pipeline.contact_pipeline import ContactPipeline
from interactvlm_ros.pipeline.result import MeshTopology

LOG = logging.getLogger("interactvlm.node")

DIAGNOSTIC_NAME = "interactvlm: contact node"
OK, WARN, ERROR = 0, 1, 2
WORKER, MONITOR = "interactvlm-worker", "interactvlm-diagnostics"


class InputError(ValueError):
    """A received message cannot be used (the message names the topic and the problem)."""


class OutputSink(Protocol):
    """What a transport provides to the node."""

    def subscriber_count(self) -> int:
        """Subscribers of the per-frame outputs (contacts, markers, clouds; not diagnostics)."""

    def publish_frame(self, outputs: FrameOutputs) -> None: ...

    def publish_diagnostics(self, report: DiagnosticsReport) -> None: ...

    def publish_topology(self, topology: MeshTopology) -> None: ...

    # ``publish_frame`` also carries the frame's ``body_<id>`` transforms (``FrameOutputs.body_frames``, /tf).


class Predictor(Protocol):
    def encode(self, image_rgb: np.ndarray): ...

    def predict(self, image, objects: list[str]): ...


@dataclass
class Frame:
    """One synchronised input: RGB image, optional intrinsics ``K [3,3]`` and depth ``[H,W]`` metres."""

    header: FrameHeader
    rgb: np.ndarray
    K: np.ndarray | None
    depth: np.ndarray | None
    received: float


class ContactNode:
    """ROS-agnostic node logic. ``start()`` the worker, feed messages, ``stop()``.

    Args:
        cfg: the validated parameters (``load_config``).
        predictor: object with ``predict(image_rgb, objects) -> ContactResult`` (the model).
        body: the body model's topology (canonical vertices, faces) for clouds, markers and the topology topic.
        sink: the transport's publisher side.
        objects_library: label -> mesh source for object clouds (``ObjectLibrary``), or None.
        warn: where throttled warnings go (default: the ``interactvlm.node`` logger).
    """

    def __init__(self, cfg: Mapping[str, Any], predictor: Predictor, body: MeshTopology, sink: OutputSink,
                 objects_library=None, warn: Callable[[str], None] | None = None,
                 backend: str | None = None) -> None:
        self.cfg = cfg
        self.predictor = predictor
        self.body = body
        self.sink = sink
        self.backend = backend or str(cfg.inference.backend)
        self.stats = NodeStats()
        self.warnings = ThrottledWarnings(warn or LOG.warning, cfg.node.warn_throttle_s)
        self.supervisor = Supervisor(on_death=self._on_thread_death)
        self.queries = ObjectQueries(list(cfg.objects.names), cfg.node.max_objects, log=LOG.warning)
        self.placement = FixedPlacement(distance_m=cfg.node.placement_distance_m)
        self._placed_body = self.placement.place(body.vertices)  # the stand-in pose is fixed: place once
        self._placed_objects: dict[tuple[str, float], tuple[np.ndarray, float]] = {}  # see _placed_object
        self.pipeline = ContactPipeline.from_config(cfg, predictor, objects_library, body.num_vertices)
        self.recon = self.pipeline.reconstruction
        self.slot: LatestSlot[Frame] = LatestSlot()
        streams = [s for s, key in (("camera_info", "topics.camera_info"), ("depth", "topics.depth")) if cfg[key]]
        self.sync = ApproximateSync(streams, cfg.node.sync_tolerance_s)
        self.inputs = InputHealth(["image", "objects", *streams])
        self._handlers = {"image": self.on_image, "objects": self.on_objects, "camera_info": self.on_camera_info,
                          "depth": self.on_depth}
        self._sync_lock = threading.Lock()
        self._published_topologies: set[str] = set()
        self._last_marker = -1e9
        self._last_diag = -1e9
        self._diag_due = threading.Event()
        self._stop = threading.Event()
        self._started: float | None = None
        self._busy_since: float | None = None
        self._last_published: float | None = None
        self.frames_published = 0

    # --- lifecycle ----------------------------------------------------------------------------------------
    def start(self) -> None:
        """Publish the latched topology and start the worker and diagnostics threads (supervised)."""
        self._stop = threading.Event()  # a fresh event: a previous run's threads keep theirs (set)
        if self.slot.closed:  # restarted after stop(): a fresh slot (frames received before start() are kept)
            self.slot = LatestSlot()
        self._started = time.monotonic()
        self.sink.publish_topology(self.body)
        self._published_topologies = {self.body.mesh_id}
        self.supervisor.start(WORKER, self._work, self._stop)
        self.supervisor.start(MONITOR, self._monitor, self._stop)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the worker (the frame in flight completes), publish a last diagnostics report with the final
        frame accounting, and forget pending inputs."""
        self._stop.set()
        self.slot.close()
        self._diag_due.set()
        self.supervisor.join(WORKER, timeout)
        self.supervisor.join(MONITOR, timeout)
        self._publish_diagnostics()
        self._started = None
        with self._sync_lock:
            self.sync.reset()
        self.pipeline.close()  # the keypoint worker process; it restarts with the next frame after start()

    @property
    def running(self) -> bool:
        return self.supervisor.alive(WORKER)

    def apply(self, cfg: Mapping[str, Any]) -> None:
        """Take new values of the live parameters (``config/schema.py`` ``LIVE_PARAMETERS``) while running: the
        worker and monitor read them from ``cfg`` from the next frame / report on; a changed ``objects``
        replaces the current object list (also one set by ``~/objects``). ``cfg`` must equal the current one in
        every other key (``node.live_parameters.update_parameters`` checks that)."""
        old, self.cfg = self.cfg, cfg
        self.warnings.period_s = float(cfg.node.warn_throttle_s)
        self.sync.tolerance_s = float(cfg.node.sync_tolerance_s)
        self.pipeline.object_contact = bool(cfg.node.object_contact)
        if tuple(cfg.objects.names) != tuple(old.objects.names) or cfg.node.max_objects != old.node.max_objects:
            names = list(cfg.objects.names) if cfg.objects.names != old.objects.names else None
            self.queries.replace(names, cfg.node.max_objects)
        if cfg.node.placement_distance_m != old.node.placement_distance_m:
            placement = FixedPlacement(distance_m=cfg.node.placement_distance_m)
            self._placed_body, self.placement = placement.place(self.body.vertices), placement
            self._placed_objects = {}
        self._diag_due.set()

    # --- inputs (transport threads) ----------------------------------------------------------------------
    def on_serialized(self, topic: str, payload: bytes, codec: InputCodec) -> None:
        """One received sample of ``topic`` as bytes: deserialize, convert and handle it, each step inside its
        own error boundary (a bad sample is dropped and counted as ``undecodable`` or ``invalid``; nothing it
        does can raise)."""
        try:
            msg = codec.deserialize(payload)
        except Exception as exc:  # noqa: BLE001 - any decoding failure of untrusted bytes is a dropped sample
            self._count_received(topic)
            self._drop(topic, "undecodable", f"dropped undecodable {topic} sample ({len(payload)} bytes): "
                                             f"{type(exc).__name__}: {exc}")
            return
        self.on_message(topic, msg, codec)

    def on_message(self, topic: str, msg: Any, codec: InputCodec) -> None:
        """A deserialized message of ``topic``: convert it with ``codec`` and handle the value."""
        self._count_received(topic)
        try:
            value = codec.convert(msg)
        except (ValueError, AttributeError, TypeError) as exc:
            self._drop(topic, "invalid", f"{_drop_verb(topic)}: {exc}", problem_of(exc))
            return
        self.dispatch(topic, value)

    def dispatch(self, topic: str, value: Any) -> None:
        """A decoded value of ``topic`` (``image``, ``camera_info``, ``depth`` or ``objects``, see
        :mod:`.inputs`); an unexpected error while handling it is counted as ``handler_error``, never raised."""
        try:
            self._handlers[topic](value)
        except (QueryError, InputError) as exc:
            self._drop(topic, "invalid", f"{_drop_verb(topic)}: {exc}", problem_of(exc))
        except Exception as exc:
            LOG.debug("handling a %s value failed", topic, exc_info=exc)
            self._drop(topic, "handler_error", f"dropped {topic} message: {type(exc).__name__}: {exc}")

    def _count_received(self, topic: str) -> None:
        self.inputs.received(topic)
        if topic == "image":
            self.stats.count_received()

    def on_image(self, image: Stamped) -> None:
        """An image (``value``: RGB ``uint8 [H,W,3]``): offer it to the synchroniser."""
        frame = Frame(image.header, image.value, None, None, time.monotonic())
        with self._sync_lock:
            ready = self.sync.add_image(image.header.stamp_s, frame)
        self._offer(ready)

    def on_camera_info(self, info: Stamped) -> None:
        self._on_stream("camera_info", info)

    def on_depth(self, depth: Stamped) -> None:
        self._on_stream("depth", depth)

    def _on_stream(self, stream: str, sample: Stamped) -> None:
        if stream not in self.sync.streams:
            raise InputError(f"topics.{stream} is not set")
        with self._sync_lock:
            ready = self.sync.add(stream, sample.header.stamp_s, sample.value)
        self._offer(ready)

    def on_objects(self, text: str) -> None:
        """An object query (``~/objects``, comma-separated names): replace the object list, or keep the old one
        (a :class:`QueryError` is counted as an invalid sample)."""
        names = self.queries.update(text)
        LOG.info("object query: %s", ", ".join(names))

    def on_transport_lost(self, topic: str, total: int) -> None:
        """The transport's running total of samples of ``topic`` lost before they reached the node."""
        if total > self.inputs.count(topic, "transport_lost"):
            self.warnings.warn(f"{topic}:transport_lost", f"the transport lost {total} {topic} samples so far "
                                                          "(reader queue overrun or network loss)")
        self.inputs.set_transport_lost(topic, total)

    def poll(self) -> None:
        """Release frames whose sync wait expired (the transport calls this a few times per second)."""
        with self._sync_lock:
            ready = self.sync.poll()
        self._offer(ready)

    def _offer(self, ready) -> None:
        for synced in ready:
            frame: Frame = synced.image
            h, w = frame.rgb.shape[:2]
            info: Calibration | None = synced.matched.get("camera_info")
            if info is not None and info.size is not None and info.size != (h, w):
                self._drop("camera_info", "size_mismatch", f"camera info for {info.size[1]}x{info.size[0]} not used "
                                                           f"with a {w}x{h} image (frame {frame.header.stamp_ns})")
                info = None
            depth = synced.matched.get("depth")
            if depth is not None and depth.shape[:2] != (h, w):
                self._drop("depth", "size_mismatch", f"{depth.shape[1]}x{depth.shape[0]} depth not used with a "
                                                     f"{w}x{h} image (frame {frame.header.stamp_ns})")
                depth = None
            frame.K = None if info is None else info.K
            frame.depth = depth
            self.slot.put(frame)

    def _drop(self, topic: str, kind: str, message: str, problem: str = "") -> None:
        """Count a dropped sample of ``topic``, warn (throttled per topic, kind and problem: an unknown encoding
        is still logged right after a short image) and report it soon."""
        self.inputs.dropped(topic, kind, message, problem)
        self.stats.record_bad(message)
        self.warnings.warn(f"{topic}:{kind}:{problem}", message)
        self._diag_due.set()

    # --- worker -------------------------------------------------------------------------------------------
    def active(self) -> bool:
        """Whether inference should run: someone subscribes to an output, or ``node.always_run``."""
        return bool(self.cfg.node.always_run) or self.sink.subscriber_count() > 0

    def _work(self, stop: threading.Event) -> None:
        """The worker loop: take the newest frame, run the pipeline, publish."""
        slot = self.slot
        while not stop.is_set():
            frame = slot.take(timeout=0.1)
            if frame is not None and not stop.is_set():
                self._busy_since = time.monotonic()
                try:
                    self._process(frame)
                finally:
                    self._busy_since = None

    def _monitor(self, stop: threading.Event) -> None:
        """The diagnostics loop: every ``node.diagnostics_period_s``, and within 0.1 s of a reported problem."""
        while not stop.is_set():
            period = float(self.cfg.node.diagnostics_period_s)  # live parameter: read every round
            self._diag_due.wait(max(0.0, period - (time.monotonic() - self._last_diag)))
            if stop.is_set():
                return
            if self._diag_due.is_set():
                stop.wait(max(0.0, 0.1 - (time.monotonic() - self._last_diag)))  # at most 10 reports/s
            self._publish_diagnostics()

    def _on_thread_death(self, death: ThreadDeath) -> None:
        """A supervised loop raised: report ERROR now (from the dying thread), before it is restarted."""
        self.stats.record_error(f"thread {death.name} died: {death.reason}", kind="thread")
        self._publish_diagnostics()

    def _process(self, frame: Frame) -> None:
        objects = self.queries.current()
        if not objects or not self.active():
            self.stats.count_idle()
            return
        try:
            t0 = time.monotonic()
            run = self.pipeline.run(frame.rgb, objects, frame.K, frame.depth)
            result, attempt = run.contacts, run.reconstruction
            t1 = time.monotonic()
            if attempt is not None and attempt.reconstruction is None:
                self.warnings.warn("recon", f"frame {frame.header.stamp_ns}: reconstruction skipped, contacts "
                                            f"published with the fixed placement: {attempt.reason}")
                self._diag_due.set()
            outputs = self._outputs(frame, result, attempt)
            self.sink.publish_frame(outputs)
        except Exception as exc:  # noqa: BLE001 - the node must keep serving; the error is reported
            message = f"frame {frame.header.stamp_ns} failed: {type(exc).__name__}: {exc}"
            self.stats.record_error(message)
            self.warnings.warn(f"pipeline:{type(exc).__name__}", message)
            self._diag_due.set()
            return
        t2 = time.monotonic()
        self._last_published = t2
        self.frames_published += 1
        self.stats.record_frame((t2 - frame.received) * 1000.0, (t1 - t0) * 1000.0,
                                queue_ms=(t0 - frame.received) * 1000.0, publish_ms=(t2 - t1) * 1000.0)

    def _outputs(self, frame: Frame, result, attempt=None) -> FrameOutputs:
        now = time.monotonic()
        rate = float(self.cfg.node.marker_rate_hz)
        with_markers = bool(self.cfg.node.publish_markers) and (rate == 0 or now - self._last_marker >= 1 / rate)
        if with_markers:
            self._last_marker = now
        human = None
        placed_objects: list[PlacedMesh] = []
        counts: dict[str, int] = {}
        need_geometry = with_markers or bool(self.cfg.node.publish_clouds)
        if result.num_body_vertices != self.body.num_vertices:
            raise InputError(f"model predicts on {result.num_body_vertices} body vertices but the body topology "
                             f"{self.body.mesh_id} has {self.body.num_vertices}")
        rec = attempt.reconstruction if attempt is not None else None
        posed = {o.query: o for o in rec.objects} if rec is not None else {}
        body_points = np.asarray(attempt.primary.vertices, dtype=np.float32) if rec is not None else None
        if need_geometry:
            probs = np.zeros(self.body.num_vertices, dtype=np.float32)
            for c in result.contacts:
                if c.found and c.human_probs is not None:
                    np.maximum(probs, np.asarray(c.human_probs, dtype=np.float32), out=probs)
            points = body_points if body_points is not None else self._placed_body
            human = PlacedMesh(self.body.name, self.body.mesh_id, points, self.body.faces, probs)
        lateral = float(self._placed_body[:, 0].max()) + self.placement.gap_m
        object_points: dict[str, np.ndarray] = {}
        for c in result.contacts:
            mesh = self._object_mesh(c)
            pose = posed.get(c.label)
            if pose is not None and (mesh is None or pose.mesh_id == mesh.mesh_id):
                # reconstructed: the object's library mesh posed in the camera frame
                obj_probs = _object_probs(c.object_probs, len(pose.vertices))
                if mesh is not None:
                    counts[mesh.mesh_id] = mesh.num_vertices
                    object_points[c.label] = np.asarray(pose.vertices, dtype=np.float32)
                if need_geometry:
                    placed_objects.append(PlacedMesh(c.label, pose.mesh_id, np.asarray(pose.vertices, np.float32),
                                                     np.asarray(pose.faces, np.int64), obj_probs))
                continue
            if mesh is None:
                continue
            counts[mesh.mesh_id] = mesh.num_vertices
            if not need_geometry or c.object_probs is None:
                continue
            obj_probs = np.asarray(c.object_probs, dtype=np.float32)
            if obj_probs.shape != (mesh.num_vertices,):
                raise InputError(f"object contact for {c.label!r} has {obj_probs.shape} probabilities but mesh "
                                 f"{mesh.mesh_id} has {mesh.num_vertices} vertices")
            points, half = self._placed_object(mesh, lateral)
            lateral += 2 * half + self.placement.gap_m
            placed_objects.append(PlacedMesh(c.label, mesh.mesh_id, points, mesh.faces, obj_probs))
        out = FrameOutputs(frame.header, result, float(self.cfg.contact.threshold), self.body.mesh_id, human,
                           placed_objects, counts, with_markers, bool(self.cfg.node.publish_clouds))
        if rec is not None:
            from interactvlm_ros.recon.scene import transform_to_tf

            out.placement = "reconstructed"
            out.body_id = str(attempt.primary.id)
            out.body_points = body_points
            out.object_points = object_points
            for b in rec.bodies:
                t, q = transform_to_tf(b.transform_camera_body)
                out.body_frames.append(BodyFrame(str(b.id), t, q))
        return out

    def _placed_object(self, mesh: MeshTopology, lateral: float) -> tuple[np.ndarray, float]:
        """``mesh`` in the fixed placement, beside the body from ``lateral`` metres on: its read-only points
        ``[N,3]`` and half its width. A camera asks about the same objects frame after frame, so each (mesh,
        place) is placed once."""
        key = (mesh.mesh_id, lateral)
        placed = self._placed_objects.get(key)
        if placed is None:
            if len(self._placed_objects) >= 64:
                self._placed_objects.clear()
            v = mesh.vertices
            half = float(v[:, 0].max() - v[:, 0].min()) / 2 if len(v) else 0.0
            points = self.placement.place(v, lateral_m=lateral + half)
            points.setflags(write=False)
            placed = self._placed_objects[key] = (points, half)
        return placed

    def _object_mesh(self, contact) -> MeshTopology | None:
        """The mesh a contact's ``object_mesh_id`` names (published latched the first time), or None."""
        topo = self.pipeline.object_mesh(contact.object_mesh_id)
        if topo is not None and topo.mesh_id not in self._published_topologies:
            self.sink.publish_topology(topo)
            self._published_topologies.add(topo.mesh_id)
        return topo

    # --- diagnostics --------------------------------------------------------------------------------------
    def diagnostics(self) -> DiagnosticsReport:
        """The current state as one diagnostic status. Level, worst first: ERROR when a supervised thread died
        recently or the watchdog sees images but no output; WARN for recent input/pipeline errors, no image at
        all for ``node.watchdog_s``, or skipped reconstructions; OK otherwise."""
        snap = self.stats.snapshot()
        now = time.monotonic()
        recent = max(5.0, 2 * float(self.cfg.node.diagnostics_period_s))
        active = self.active()
        problems: list[tuple[int, str]] = []
        death = self.supervisor.recent_death(recent)
        if death is not None:
            problems.append((ERROR, f"thread {death.name} died and was restarted: {death.reason}"))
        problems += self._watchdog(now, active)
        problems += [(WARN, message) for _, message in self.stats.recent_errors(recent)]  # newest first
        if self.recon is not None and self.recon.last_reason and self.recon.last_failure_time is not None and (
                now - self.recon.last_failure_time < recent):
            problems.append((WARN, f"reconstruction skipped (fixed placement): {self.recon.last_reason}"))
        person = getattr(self.pipeline, "last_person", None)
        if person is not None and not person.available:
            problems.append((WARN, f"person gate unavailable: {person.reason}"))
        if problems:
            level, message = max(problems, key=lambda p: p[0])
        elif not active:
            level, message = OK, "idle: no subscriber to any output (node.always_run=false)"
        else:
            level, message = OK, f"running at {snap['rate_hz']:.1f} Hz"

        def fmt(x) -> str:
            return "nan" if isinstance(x, float) and x != x else (f"{x:.3f}" if isinstance(x, float) else str(x))

        values = {
            "rate_hz": fmt(snap["rate_hz"]),
            "latency_ms_p50": fmt(snap["latency_ms_p50"]),
            "latency_ms_p99": fmt(snap["latency_ms_p99"]),
            "pipeline_ms_p50": fmt(snap["pipeline_ms_p50"]),
            "node_overhead_ms_p50": fmt(snap["overhead_ms_p50"]),
            "queue_ms_p50": fmt(snap["queue_ms_p50"]),
            "publish_ms_p50": fmt(snap["publish_ms_p50"]),
            "frames_received": str(snap["received"]),
            "frames_processed": str(snap["processed"]),
            "dropped_frames": str(self.slot.dropped),
            "bad_messages": str(snap["bad_messages"]),
            "pipeline_errors": str(snap["errors"]),
            "idle_skipped": str(snap["idle_skipped"]),
            "rejected_object_queries": str(self.queries.rejected),
            "object_names_rejected": str(self.queries.names_rejected),
            "object_names_cleaned": str(self.queries.names_cleaned),
            "objects": ", ".join(self.queries.current()),
            "objects_cleaned": "; ".join(f"{a} -> {b}" for a, b in self.queries.cleaned().items()),
            "object_names": self.predictor.describe_names(self.queries.current()),
            "backend": self.backend,
            "model": str(self.cfg.model.name),
            "body_model": self.body.name,
            "active": str(active).lower(),
            "placement": self._placement_state(),
            "last_error": snap["last_error"],
            **{key: snap[key] for key in ("last_input_error", "last_pipeline_error", "last_thread_error")},
            "worker": self._worker_state(now),
            "thread_deaths": str(self.supervisor.total_deaths()),
            **self.frame_accounting(),
            **self.inputs.snapshot(),
        }
        for stream in self.sync.streams:
            values[f"{stream}_sync"] = self.sync.waiting_for(stream)
        if self.recon is not None:
            values.update({"recon_frames": str(self.recon.reconstructed), "recon_skipped": str(self.recon.skipped),
                           "recon_ms_p50": fmt(self.recon.ms_p50), "recon_last_skip": self.recon.last_reason})
        # the last frame's person evidence (contact.person_gate): "true"/"false", "unknown" when off or unavailable
        values["person_present"] = ("unknown" if person is None or not person.available
                                    else str(person.present).lower())
        gate = str(self.cfg.contact.person_gate)
        if person is not None:
            gate = f"{gate}: {person.describe()}"
        elif getattr(self.pipeline, "person_gate", None) is not None:
            gate = f"{gate}: no frame yet"
        values["person_gate"] = gate
        # the predictor's own state (inference.backend triton: triton_state, answered_by, ...; serving/)
        values.update(getattr(self.predictor, "diagnostics", dict)())
        ns, name = str(self.cfg.node.namespace).strip("/"), str(self.cfg.node.name)
        return DiagnosticsReport(DIAGNOSTIC_NAME, level, message, f"/{ns}/{name}" if ns else name, values,
                                 time.time_ns())

    def frame_accounting(self) -> dict[str, str]:
        """Where the received images went, stage by stage (diagnostics keys ``images_*``): dropped by the
        transport or as bad input, replaced in the latest-frame queue, skipped while idle, failed in the
        pipeline, published; ``images_in_flight`` is the rest (pending in sync, the queue or the worker)."""
        snap = self.stats.snapshot()
        image = self.inputs.topics["image"]
        counts = {
            "images_received": image.received,
            "images_dropped_transport": image.dropped["transport_lost"],
            "images_dropped_input": image.dropped_total - image.dropped["transport_lost"],
            "images_dropped_queue": self.slot.dropped,
            "images_skipped_idle": snap["idle_skipped"],
            "images_failed_pipeline": snap["errors"],
            "images_published": self.frames_published,
        }
        counts["images_in_flight"] = max(0, counts["images_received"] - sum(
            v for k, v in counts.items() if k not in ("images_received", "images_dropped_transport")))
        return {k: str(v) for k, v in counts.items()}

    def _watchdog(self, now: float, active: bool) -> list[tuple[int, str]]:
        """Liveness (``node.watchdog_s``; 0 = off): ERROR when images keep arriving but nothing was published
        for that long while there is work to do; WARN when no image arrived for that long."""
        limit = float(self.cfg.node.watchdog_s)
        if limit <= 0 or self._started is None or now - self._started < limit:
            return []
        topic = str(self.cfg.topics.image)
        silent = self.inputs.silent_for("image")
        if silent >= limit:
            return [(WARN, f"no image received on {topic} for {silent:.1f} s")]
        since = now - (self._last_published if self._last_published is not None else self._started)
        if since >= limit and active and self.queries.current():
            return [(ERROR, f"stalled: images arrive on {topic} but no result was published for {since:.1f} s "
                            f"(worker {self._worker_state(now)})")]
        return []

    def _worker_state(self, now: float) -> str:
        if not self.supervisor.alive(WORKER):
            return "stopped"
        busy = self._busy_since
        return "waiting for a frame" if busy is None else f"processing a frame for {now - busy:.1f} s"

    def _placement_state(self) -> str:
        """``fixed`` (recon off), ``reconstructed`` or ``fixed (reconstruction skipped)`` for the last frame."""
        if self.recon is None:
            return "fixed"
        return "fixed (reconstruction skipped)" if self.recon.last_reason else "reconstructed"

    def _publish_diagnostics(self) -> None:
        self._last_diag = time.monotonic()
        self._diag_due.clear()
        try:
            self.sink.publish_diagnostics(self.diagnostics())
        except Exception as exc:  # noqa: BLE001 - diagnostics must never stop the worker
            self.warnings.warn("diagnostics", f"publishing diagnostics failed: {type(exc).__name__}: {exc}")


def _drop_verb(topic: str) -> str:
    return "ignored object query" if topic == "objects" else f"dropped {topic.replace('_', ' ')}"


def _object_probs(probs, num_vertices: int) -> np.ndarray:
    """The object's per-vertex contact ``[No]`` when it is on this mesh, else zeros (drawn without contact)."""
    if probs is not None and np.size(probs) == num_vertices:
        return np.asarray(probs, dtype=np.float32).reshape(-1)
    return np.zeros(num_vertices, np.float32)
