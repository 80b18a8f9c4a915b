"""``interactvlm bench soak --json``: hostile input on every topic, then steady camera streams, against a real
``interactvlm node --transport dds`` process on loopback (a private domain id).

Phases:
1. fuzz: per input topic (image, camera_info, depth, objects), ``payloads`` hostile payloads of every kind
   (:mod:`.fuzz`) through a raw DDS writer, paced so that the node's reader queue does not overwrite them;
   then good frames until one is answered (``answered_after_fuzz``);
2. steady 5 Hz: 640×480 rgb8 images with matching CameraInfo for ``seconds``; every ContactArray is matched to
   its image by stamp (``answered_ratio``); the node's per-stage counters say where the rest went;
3. steady at the node's capacity: the same at the rate the node's own pipeline + overhead time allows.

Keys (a contract): ``thread_deaths`` (must be 0), ``node_alive``, ``answered_after_fuzz`` {topic: bool},
``decode_errors_counted`` {topic: undecodable + invalid}, ``payloads_sent`` and ``payloads_refused_by_writer``
{topic: {kind: n}} (Cyclone's writer refuses structurally invalid CDR: those never reach the wire),
``node_received`` {topic: n} (what the node counted, fuzz and recovery frames), ``drops_by_kind``
{topic: {kind: n}}, ``rss_mb_before`` / ``rss_mb_after`` (node process, before and after the fuzz),
``steady_5hz`` and ``steady_max``: {``rate_hz``, ``sent``, ``answered``, ``answered_ratio``, ``lost`` {stage:
n}} where the stages are ``transport`` (never reached the node), ``input``, ``queue`` (replaced by a newer
frame), ``idle``, ``pipeline`` (failed), ``unanswered`` (published but not received).
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from cyclonedds.core import DDSException
from cyclonedds.qos import Policy, Qos
from cyclonedds.util import duration
from tqdm import tqdm

from interactvlm_ros.benchmarks.fuzz import KINDS, fuzz_payloads
from interactvlm_ros.demo.node_process import NodeProcess
from interactvlm_ros.files.atomic import atomic_write_bytes
from interactvlm_ros.transport.dds import RELIABLE_QOS, DdsParticipant, image_qos, resolve_topic, write_serialized
from interactvlm_ros.transport.dds_config import loopback_domain
from interactvlm_ros.transport.headers import make_header, stamp_ns
from interactvlm_ros.transport.image_codec import encode_image
from interactvlm_ros.transport.msgs import CameraInfo, ContactArray, DiagnosticArray, Image, String

TOPICS = ("image", "camera_info", "depth", "objects")
FRAME = "soak_camera"
WIDTH, HEIGHT = 640, 480
STAMP0 = 1_700_000_000 * 10**9  # each phase stamps from its own offset (int32 seconds stay in range)
PACE_PER_S = 2000.0  # fuzz payloads per second per topic: the node's reader keeps the last 5 images
CONTACTS_QOS = Qos(Policy.Reliability.Reliable(max_blocking_time=duration(milliseconds=100)),
                   Policy.History.KeepLast(1000), Policy.Durability.Volatile)


class SoakPeer:
    """Writers of every input topic (raw and typed) and readers of contacts and diagnostics."""

    def __init__(self, cfg, domain: int) -> None:
        self._domain = loopback_domain(domain)
        self.p = DdsParticipant(domain)
        node, ns = str(cfg.node.name), str(cfg.node.namespace)
        name = lambda key: resolve_topic(str(cfg[f"topics.{key}"]), node, ns)  # noqa: E731
        sensor = image_qos(str(cfg.qos.image_reliability), int(cfg.qos.image_depth))
        self.writers = {"image": self.p.writer(Image, name("image"), sensor),
                        "camera_info": self.p.writer(CameraInfo, name("camera_info"), RELIABLE_QOS),
                        "depth": self.p.writer(Image, name("depth"), sensor),
                        "objects": self.p.writer(String, name("objects"), RELIABLE_QOS)}
        self.contacts = self.p.reader(ContactArray, name("contacts"), CONTACTS_QOS)
        self.diagnostics = self.p.reader(DiagnosticArray, name("diagnostics"), RELIABLE_QOS)
        self.answered: set[int] = set()
        self.diag: dict[str, str] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, name="soak-peer", daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._stop.is_set():
            got = 0
            for msg in self.contacts.take(N=256):
                with self._lock:
                    self.answered.add(stamp_ns(msg.header))
                got += 1
            for msg in self.diagnostics.take(N=64):
                if msg.status:
                    with self._lock:
                        self.diag = {kv.key: kv.value for kv in msg.status[0].values}
                        self.diag["_level"] = str(int(msg.status[0].level))
                        self.diag["_message"] = msg.status[0].message
                got += 1
            if not got:
                time.sleep(0.005)

    def wait_matched(self, timeout: float) -> None:
        end = time.monotonic() + timeout
        for key, w in self.writers.items():
            while w.get_publication_matched_status().current_count == 0:
                if time.monotonic() > end:
                    raise RuntimeError(f"the node did not subscribe to {key} within {timeout:.0f} s")
                time.sleep(0.02)

    def diagnostics_now(self, timeout: float = 5.0) -> dict[str, str]:
        """The node's next diagnostics message (its values)."""
        with self._lock:
            before = id(self.diag)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self._lock:
                if id(self.diag) != before and self.diag:
                    return dict(self.diag)
            time.sleep(0.02)
        with self._lock:
            return dict(self.diag)

    def send_frame(self, rgb: np.ndarray, stamp: int, K: np.ndarray) -> None:
        """CameraInfo then the rgb8 image, same header."""
        h, w = rgb.shape[:2]
        header = make_header(stamp, FRAME)
        k = [float(x) for x in K.reshape(-1)]
        self.writers["camera_info"].write(CameraInfo(header=header, height=h, width=w, distortion_model="plumb_bob",
                                                     d=[0.0] * 5, k=k, r=[1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0],
                                                     p=[*k[:3], 0.0, *k[3:6], 0.0, *k[6:], 0.0]))
        self.writers["image"].write(encode_image(rgb, "rgb8", header))

    def is_answered(self, stamp: int) -> bool:
        with self._lock:
            return stamp in self.answered

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5.0)
        self.p.close()


def rss_mb(pid: int) -> float:
    """Resident set size of process ``pid`` in MB (Linux ``/proc``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def soak_config(cfg, domain: int):
    """The node's parameters: every optional input enabled, always running, fast diagnostics."""
    return cfg.replace(transport="dds", dds__domain_id=int(domain), topics__camera_info="camera_info",
                       topics__depth="depth", node__always_run=True, node__diagnostics_period_s=0.5,
                       objects=["cup"])


def _counter(diag: dict[str, str], key: str) -> int:
    try:
        return int(diag.get(key, "0"))
    except ValueError:
        return 0


def fuzz_topic(peer: SoakPeer, topic: str, count: int, seed: int) -> tuple[dict[str, int], dict[str, int]]:
    """Send ``count`` hostile payloads on ``topic``, paced; returns ``(sent, refused)`` counts per payload kind.
    Our own DDS writer refuses structurally invalid CDR (it never reaches the wire): those are ``refused``."""
    sent = dict.fromkeys(KINDS, 0)
    refused = dict.fromkeys(KINDS, 0)
    t0 = time.monotonic()
    for i, (kind, payload) in enumerate(fuzz_payloads(topic, count, seed)):
        try:
            write_serialized(peer.writers[topic], payload)
            sent[kind] += 1
        except DDSException:
            refused[kind] += 1
        ahead = (i + 1) / PACE_PER_S - (time.monotonic() - t0)
        if ahead > 0:
            time.sleep(ahead)
    return sent, refused


def answered_after(peer: SoakPeer, stamp: int, timeout: float = 60.0) -> bool:
    """Restore a good object query, then send good frames every 0.3 s until one is answered."""
    peer.writers["objects"].write(String(data="cup"))
    time.sleep(0.3)
    rgb = np.random.default_rng(stamp % 2**32).integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    K = np.array([[500.0, 0, WIDTH / 2], [0, 500.0, HEIGHT / 2], [0, 0, 1]])
    sent: list[int] = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        sent.append(stamp + len(sent))
        peer.send_frame(rgb, sent[-1], K)
        deadline = time.monotonic() + 0.3
        while time.monotonic() < deadline:
            if any(peer.is_answered(s) for s in sent):
                return True
            time.sleep(0.01)
    return False


def steady(peer: SoakPeer, rate_hz: float, seconds: float, stamp0: int, desc: str) -> dict:
    """Images + CameraInfo at ``rate_hz`` for ``seconds``; answered ratio and the node's drops by stage."""
    before = peer.diagnostics_now()
    rng = np.random.default_rng(stamp0 % 2**32)
    frames = [rng.integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8) for _ in range(4)]
    K = np.array([[500.0, 0, WIDTH / 2], [0, 500.0, HEIGHT / 2], [0, 0, 1]])
    n = max(1, int(round(rate_hz * seconds)))
    stamps = [stamp0 + i * int(1e9 / rate_hz) for i in range(n)]
    t0 = time.monotonic()
    for i, stamp in enumerate(tqdm(stamps, desc=desc, unit="frame", leave=False)):
        wait = t0 + i / rate_hz - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        peer.send_frame(frames[i % len(frames)], stamp, K)
    time.sleep(3.0)  # the last frames' answers
    after = peer.diagnostics_now()
    answered = sum(peer.is_answered(s) for s in stamps)
    delta = {k: _counter(after, k) - _counter(before, k) for k in (
        "images_received", "images_dropped_transport", "images_dropped_input", "images_dropped_queue",
        "images_skipped_idle", "images_failed_pipeline", "images_published")}
    lost = {"transport": n - delta["images_received"], "input": delta["images_dropped_input"],
            "queue": delta["images_dropped_queue"], "idle": delta["images_skipped_idle"],
            "pipeline": delta["images_failed_pipeline"], "unanswered": delta["images_published"] - answered}
    return {"rate_hz": round(rate_hz, 2), "sent": n, "answered": answered, "answered_ratio": round(answered / n, 4),
            "lost": lost, "node_reported_transport_lost": delta["images_dropped_transport"],
            "pipeline_ms_p50": after.get("pipeline_ms_p50", "nan"), "latency_ms_p50": after.get("latency_ms_p50")}


def run(cfg, args) -> dict:
    quick = bool(getattr(args, "quick", False))
    payloads = 1000 if quick else 10_000
    seconds = 20.0 if quick else 120.0
    domain = 150 + os.getpid() % 40
    work = Path(tempfile.mkdtemp(prefix="interactvlm-soak-"))
    ncfg = soak_config(cfg, domain)
    params = atomic_write_bytes(work / "node_params.yaml", ncfg.to_yaml().encode())
    node = NodeProcess(params, work / "node.log", domain).start()
    peer = None
    try:
        peer = SoakPeer(ncfg, domain)
        peer.wait_matched(300.0)
        if not answered_after(peer, STAMP0, timeout=300.0):  # warm-up: model loaded, first frame answered
            raise RuntimeError(f"the node answered no frame; its log ends with:\n{node.log_tail()}")
        rss_before = rss_mb(node.proc.pid)
        received_before = {t: _counter(peer.diagnostics_now(), f"{t}_received") for t in TOPICS}
        result: dict = {"payloads_per_topic": payloads, "payloads_sent": {}, "payloads_refused_by_writer": {},
                        "node_received": {}, "answered_after_fuzz": {}, "decode_errors_counted": {},
                        "drops_by_kind": {}, "payload_kinds": list(KINDS)}
        for i, topic in enumerate(tqdm(TOPICS, desc="fuzz", unit="topic")):
            sent, refused = fuzz_topic(peer, topic, payloads, seed=i)
            result["payloads_sent"][topic] = sent
            result["payloads_refused_by_writer"][topic] = refused
            result["answered_after_fuzz"][topic] = node.alive() and answered_after(peer, STAMP0 + (i + 1) * 10**16)
        diag = peer.diagnostics_now()
        for topic in TOPICS:
            kinds = {k[len(topic) + 9:]: _counter(diag, k) for k in diag if k.startswith(f"{topic}_dropped_")}
            result["drops_by_kind"][topic] = kinds
            result["node_received"][topic] = _counter(diag, f"{topic}_received") - received_before[topic]
            result["decode_errors_counted"][topic] = kinds.get("undecodable", 0) + kinds.get("invalid", 0)
        result["rss_mb_before"] = round(rss_before, 1)
        result["rss_mb_after"] = round(rss_mb(node.proc.pid), 1)
        result["steady_5hz"] = steady(peer, 5.0, seconds, STAMP0 + 5 * 10**16, "steady 5 Hz")
        diag = peer.diagnostics_now()
        per_frame_ms = float(diag.get("pipeline_ms_p50", "nan")) + float(diag.get("node_overhead_ms_p50", "nan"))
        capacity = 1000.0 / per_frame_ms if per_frame_ms == per_frame_ms and per_frame_ms > 0 else 5.0
        result["steady_max"] = steady(peer, capacity, seconds / 4, STAMP0 + 6 * 10**16, "steady at capacity")
        diag = peer.diagnostics_now()
        result["thread_deaths"] = _counter(diag, "thread_deaths")
        result["node_alive"] = node.alive()
        result["diagnostics_level_after"] = int(diag.get("_level", "-1"))
        result["seconds_per_phase"] = seconds
        return result
    finally:
        if peer is not None:
            peer.close()
        node.stop()
