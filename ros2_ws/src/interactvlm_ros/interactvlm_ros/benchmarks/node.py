"""``interactvlm bench node --json``: the node over DDS between processes, on loopback.

Keys (a contract):
- ``dds_msgs_per_s``: 640×480 rgb8 ``sensor_msgs/Image`` messages per second received by a second process
  (reliable, keep last 16; measured at the receiver; target ≥ 300), with the project's loopback Cyclone
  configuration (:func:`~interactvlm_ros.transport.dds_config.loopback_uri`, 64 KB messages/fragments).
- ``latency_ms_p50`` / ``latency_ms_p99``: image publish → ContactArray receipt, one frame in flight at a time,
  with the configured model (``tiny`` on CPU by default).
- ``fps``: ContactArrays per second while images arrive at 30 Hz (latest-frame-wins drops the rest).
- ``node_overhead_ms_p50``: the node's own time per frame (receipt → outputs published, minus the model's
  ``predict``), from the one-at-a-time phase; target ≤ 2 ms.
- ``dropped_frames``: frames the node replaced unprocessed during the 30 Hz phase.
- ``ms_per_frame_1_object`` / ``ms_per_frame_3_objects``: latency p50 (as above) once ``~/objects`` asks for
  ``mug`` and then for ``mug, ball, box`` (names the object library knows, so each also gets object contact on
  its mesh); ``objects_3_to_1_ratio`` is their ratio (target ≤ 1.5: the image is encoded once per frame).
- With the person gate on (``contact.person_gate``, ``auto`` by default) the same three object keys again from a
  second node with the gate ``disabled`` (suffix ``_gate_disabled``): the model's own per-object cost, without
  the per-frame person detection.
- ``person_present``: the node's diagnostics after the latency phase (``true``: the gate found the person, so every
  frame ran the whole pipeline, object contact included).
Also: ``pipeline_ms_p50``, ``queue_ms_p50``, ``publish_ms_p50``, ``frames``, ``device``, ``model``.

The frame is a camera-sized photo of a person (scikit-image's astronaut, 480 px tall in a 640×480 frame): on a
frame without a person the gate withholds contacts and the object steps never run, so noise would time the
no-person short cut rather than the pipeline.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

WIDTH, HEIGHT = 640, 480


def _peer(domain: int):
    from cyclonedds.domain import Domain

    from interactvlm_ros.transport.dds import DdsParticipant
    from interactvlm_ros.transport.dds_config import loopback_uri

    keep = Domain(domain, loopback_uri())
    return keep, DdsParticipant(domain)


def _wait_matched(writer, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while writer.get_publication_matched_status().current_count == 0:
        if time.monotonic() > end:
            raise RuntimeError(f"no subscriber matched {writer.topic.name} within {timeout} s")
        time.sleep(0.01)


def receiver(domain: int, count: int, timeout: float) -> dict:
    """Second process of the throughput test: take images until ``count`` arrived or ``timeout``."""
    from cyclonedds.core import InstanceState, ReadCondition, SampleState, ViewState, WaitSet
    from cyclonedds.util import duration

    from interactvlm_ros.transport.dds import image_qos
    from interactvlm_ros.transport.msgs import Image

    _keep, p = _peer(domain)
    reader = p.reader(Image, "/bench/image", image_qos("reliable", 16))
    ws = WaitSet(p.dp)
    ws.attach(ReadCondition(reader, SampleState.NotRead | ViewState.Any | InstanceState.Any))
    print("ready", flush=True)
    got, first, last, nbytes = 0, None, None, 0
    end = time.monotonic() + timeout
    while got < count and time.monotonic() < end:
        ws.wait(duration(milliseconds=100))
        for msg in reader.take(N=64):
            now = time.monotonic()
            first = now if first is None else first
            last = now
            got += 1
            nbytes += len(msg.data)
    return {"received": got, "seconds": (last - first) if got > 1 else 0.0, "bytes": nbytes}


def dds_throughput(domain: int, count: int) -> float:
    """Publish ``count`` 640×480 rgb8 images to a receiver process; messages/s measured by the receiver."""
    from interactvlm_ros.transport.dds import image_qos
    from interactvlm_ros.transport.dds_config import loopback_env
    from interactvlm_ros.transport.headers import make_header
    from interactvlm_ros.transport.image_codec import encode_image

    cmd = [sys.executable, "-m", "interactvlm_ros.benchmarks.node", "receiver", "--domain", str(domain), "--count",
           str(count)]
    proc = subprocess.Popen(cmd, env=loopback_env(domain_id=domain), stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        _keep, p = _peer(domain)
        writer = p.writer(type(encode_image(np.zeros((1, 1, 3), np.uint8), "rgb8")), "/bench/image",
                          image_qos("reliable", 16))
        _wait_matched(writer)
        rgb = np.random.default_rng(0).integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8)
        msg = encode_image(rgb, "rgb8", make_header(0, "bench"))
        for i in tqdm(range(count), desc="dds 640x480 rgb8", leave=False):
            msg.header = make_header(i, "bench")
            writer.write(msg)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    result = json.loads(out.strip().splitlines()[-1])
    return (result["received"] - 1) / result["seconds"] if result["seconds"] > 0 else 0.0


class NodeUnderTest:
    """``interactvlm node --transport dds`` in a subprocess + this process as its ROS peer."""

    def __init__(self, cfg, domain: int) -> None:
        from cyclonedds.core import InstanceState, ReadCondition, SampleState, ViewState, WaitSet

        from interactvlm_ros.transport.dds import LATCHED_QOS, RELIABLE_QOS, image_qos, resolve_topic
        from interactvlm_ros.transport.dds_config import loopback_env
        from interactvlm_ros.transport.msgs import ContactArray, DiagnosticArray, Image, MeshTopology
        from interactvlm_ros.transport.msgs.std import String

        self.tmp = tempfile.TemporaryDirectory()
        params = Path(self.tmp.name) / "params.yaml"
        params.write_text(cfg.replace(dds__domain_id=domain, node__diagnostics_period_s=0.2).to_yaml())
        self.log = open(Path(self.tmp.name) / "node.log", "wb")  # closed in close()
        self.proc = subprocess.Popen([sys.executable, "-m", "interactvlm_ros", "node", "--transport", "dds",
                                      "--config", str(params)], env=loopback_env(domain_id=domain),
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self._keep, p = _peer(domain)
        name, ns = cfg.node.name, cfg.node.namespace
        self.image = p.writer(Image, resolve_topic(cfg.topics.image, name, ns),
                              image_qos(cfg.qos.image_reliability, cfg.qos.image_depth))
        self.contacts = p.reader(ContactArray, resolve_topic(cfg.topics.contacts, name, ns), RELIABLE_QOS)
        self.waitset = WaitSet(p.dp)  # block (not poll) while waiting: the bench must not eat the node's CPU
        self.waitset.attach(ReadCondition(self.contacts, SampleState.NotRead | ViewState.Any | InstanceState.Any))
        self.objects = p.writer(String, resolve_topic(cfg.topics.objects, name, ns), RELIABLE_QOS)
        self.diagnostics = p.reader(DiagnosticArray, resolve_topic(cfg.topics.diagnostics, name, ns),
                                    RELIABLE_QOS)
        topology = p.reader(MeshTopology, resolve_topic(cfg.topics.topology, name, ns), LATCHED_QOS)
        end = time.monotonic() + 600
        while not topology.take(N=4):
            if self.proc.poll() is not None or time.monotonic() > end:
                raise RuntimeError("node did not start: " + self.log_text()[-2000:])
            time.sleep(0.05)
        _wait_matched(self.image)
        _wait_matched(self.objects)
        self.rgb = camera_frame()
        self.stamp = 1

    def ask(self, names: list[str], timeout: float = 30.0) -> None:
        """Publish ``names`` on ``~/objects`` and wait until the node's diagnostics report them as its query."""
        from interactvlm_ros.transport.msgs.std import String

        want = ", ".join(names)
        self.objects.write(String(data=want))
        end = time.monotonic() + timeout
        while self.diag().get("objects") != want:
            if time.monotonic() > end:
                raise RuntimeError(f"the node did not take the object query {want!r} within {timeout} s")

    def log_text(self) -> str:
        self.log.flush()
        return (Path(self.tmp.name) / "node.log").read_text(errors="replace")

    def send(self) -> int:
        from interactvlm_ros.transport.headers import make_header
        from interactvlm_ros.transport.image_codec import encode_image

        self.stamp += 1
        self.image.write(encode_image(self.rgb, "rgb8", make_header(self.stamp, "bench_optical_frame")))
        return self.stamp

    def wait_contacts(self, timeout: float) -> list[int]:
        """Stamps of the ContactArrays that arrive within ``timeout`` seconds (at least one, or none on timeout)."""
        from cyclonedds.util import duration

        self.waitset.wait(duration(seconds=timeout))
        return self.received()

    def received(self) -> list[int]:
        return [m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for m in self.contacts.take(N=64)]

    def diag(self) -> dict:
        msgs = self.diagnostics.take(N=256)
        end = time.monotonic() + 5
        while not msgs and time.monotonic() < end:
            time.sleep(0.05)
            msgs = self.diagnostics.take(N=256)
        return {kv.key: kv.value for kv in msgs[-1].status[0].values} if msgs else {}

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        self.tmp.cleanup()


def camera_frame() -> np.ndarray:
    """uint8 ``[HEIGHT, WIDTH, 3]``: scikit-image's astronaut (a person holding a helmet) scaled to the frame's
    height and centred, the sides filled with the photo's mean colour."""
    from PIL import Image as PILImage
    from skimage.data import astronaut

    photo = astronaut()
    scaled = np.asarray(PILImage.fromarray(photo).resize((HEIGHT, HEIGHT), PILImage.BILINEAR))
    frame = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    frame[:] = photo.reshape(-1, 3).mean(axis=0).astype(np.uint8)
    x0 = (WIDTH - HEIGHT) // 2
    frame[:, x0:x0 + HEIGHT] = scaled
    return frame


def object_phases(node: NodeUnderTest, n: int, suffix: str = "") -> dict:
    """Latency p50 with 1 and with 3 object names asked (after two warm-up frames each) and their ratio."""
    out = {}
    for key, names in (("ms_per_frame_1_object", ["mug"]), ("ms_per_frame_3_objects", ["mug", "ball", "box"])):
        node.ask(names)
        for _ in range(2):  # warm-up: the objects' renders and their SAM embeddings
            _one_frame(node, 600.0)
        out[key + suffix] = float(np.median([_one_frame(node, 120.0)
                                             for _ in tqdm(range(n), desc=key + suffix, leave=False)]))
    one, three = out["ms_per_frame_1_object" + suffix], out["ms_per_frame_3_objects" + suffix]
    out["objects_3_to_1_ratio" + suffix] = three / one
    return out


def run(cfg, args) -> dict:
    quick = bool(getattr(args, "quick", False))
    domain = 150 + os.getpid() % 80  # this, +1 (the node) and +2 (the gate-disabled node): all <= 231
    count = 300 if quick else 1500
    n = 5 if quick else 30
    out = {"dds_msgs_per_s": dds_throughput(domain, count)}
    node = NodeUnderTest(cfg, domain + 1)
    try:
        for _ in range(2):  # warm-up (first frame builds renders / caches)
            _one_frame(node, 600.0)
        lat = [_one_frame(node, 120.0) for _ in tqdm(range(n), desc="node latency", leave=False)]
        time.sleep(0.5)
        d = node.diag()
        out["latency_ms_p50"] = float(np.percentile(lat, 50))
        out["latency_ms_p99"] = float(np.percentile(lat, 99))
        out["node_overhead_ms_p50"] = float(d.get("node_overhead_ms_p50", "nan"))
        out["pipeline_ms_p50"] = float(d.get("pipeline_ms_p50", "nan"))
        out["queue_ms_p50"] = float(d.get("queue_ms_p50", "nan"))
        out["publish_ms_p50"] = float(d.get("publish_ms_p50", "nan"))
        out["person_present"] = d.get("person_present", "unknown")
        out["frames"] = n
        dropped0 = int(d.get("dropped_frames", 0))
        seconds = 5.0 if quick else 20.0
        got, t0 = 0, time.monotonic()
        while time.monotonic() - t0 < seconds:
            node.send()
            got += len(node.received())
            time.sleep(1 / 30)
        elapsed = time.monotonic() - t0
        out["fps"] = got / elapsed
        out["dropped_frames"] = int(node.diag().get("dropped_frames", dropped0)) - dropped0
        out.update(object_phases(node, n))
    finally:
        node.close()
    if str(cfg.contact.person_gate) != "disabled":
        node = NodeUnderTest(cfg.replace(contact__person_gate="disabled"), domain + 2)
        try:
            out.update(object_phases(node, n, "_gate_disabled"))
        finally:
            node.close()
    out["model"] = cfg.model.name
    out["device"] = cfg.model.device
    return out


def _one_frame(node: NodeUnderTest, timeout: float) -> float:
    t0 = time.monotonic()
    stamp = node.send()
    while time.monotonic() - t0 < timeout:
        if stamp in node.wait_contacts(timeout - (time.monotonic() - t0)):
            return (time.monotonic() - t0) * 1000.0
    raise RuntimeError(f"no ContactArray within {timeout} s; node log:\n{node.log_text()[-2000:]}")


def _main() -> int:
    parser = argparse.ArgumentParser(description="helper process of `interactvlm bench node`")
    sub = parser.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("receiver")
    r.add_argument("--domain", type=int, required=True)
    r.add_argument("--count", type=int, required=True)
    r.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    print(json.dumps(receiver(args.domain, args.count, args.timeout)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_main())
