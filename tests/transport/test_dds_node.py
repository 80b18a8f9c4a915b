"""The node over real DDS between two processes on loopback, with the real tiny model (no mocks).

A module-scoped ``interactvlm node --transport dds`` process serves; this process publishes images, camera
info and object queries as a ROS 2 peer would (``rt/`` topics, ROS types, type hashes) and checks the outputs:
headers, contents, bad-input handling (throttled warnings + diagnostics, the node keeps serving), lazy mode
and that the node's memory does not grow.
"""

import os
import subprocess
import sys
import time

import numpy as np
import pytest
from cyclonedds.qos import Policy, Qos

from interactvlm_ros.transport.clouds import cloud_arrays
from interactvlm_ros.transport.contacts import validate_contact
from interactvlm_ros.transport.dds import RELIABLE_QOS, DdsParticipant, image_qos, resolve_topic
from interactvlm_ros.transport.dds_config import loopback_domain, loopback_env
from interactvlm_ros.transport.headers import make_header, stamp_ns
from interactvlm_ros.transport.image_codec import encode_image
from interactvlm_ros.transport.msgs import (
    CameraInfo,
    ContactArray,
    DiagnosticArray,
    Image,
    MarkerArray,
    MeshTopology,
    PointCloud2,
    String,
)

DOMAIN = 100 + os.getpid() % 100
# a late joiner's view of the latched topology topic: one sample per mesh (each mesh has its own writer)
TOPOLOGY_QOS = Qos(Policy.Reliability.Reliable(max_blocking_time=10**8), Policy.History.KeepLast(16),
                   Policy.Durability.TransientLocal)
FRAME = "test_camera_optical_frame"
START_TIMEOUT = 300.0
FRAME_TIMEOUT = 60.0
OUTPUTS = {"contacts": ContactArray, "markers": MarkerArray, "human_cloud": PointCloud2,
           "object_cloud": PointCloud2}
NODE_SETTINGS = [
    "model.device=cpu", "objects=[cup, bottle]", "node.marker_rate_hz=0", "node.diagnostics_period_s=0.2",
    "node.warn_throttle_s=60", f"dds.domain_id={DOMAIN}", "topics.camera_info=camera_info",
    "contact.person_gate=disabled",  # random-noise images hold no person (the gate: tests/test_person_gate.py)
]


def header_of(msg):
    """A message's header (a MarkerArray's is its last marker's: the first one is DELETEALL)."""
    return msg.markers[-1].header if isinstance(msg, MarkerArray) else msg.header


def diag_values(msg: DiagnosticArray) -> dict:
    return {kv.key: kv.value for kv in msg.status[0].values}


class Peer:
    """The test's side: writers of the node's inputs, readers of its outputs."""

    def __init__(self):
        self.domain = loopback_domain(DOMAIN)
        self.p = DdsParticipant(DOMAIN)
        self.image = self.p.writer(Image, "/image", image_qos("best_effort", 5))
        self.info = self.p.writer(CameraInfo, "/camera_info", RELIABLE_QOS)
        self.objects = self.p.writer(String, resolve_topic("~/objects", "interactvlm"), RELIABLE_QOS)
        self.diagnostics = self.p.reader(DiagnosticArray, "/diagnostics", RELIABLE_QOS)
        self.topology = self.p.reader(MeshTopology, "/interactvlm/contacts/topology", TOPOLOGY_QOS)
        self.outputs = {}
        self.subscribe_outputs()
        self.stamp = 1_700_000_000 * 10**9

    def subscribe_outputs(self):
        topics = {"contacts": "~/contacts", "markers": "~/contacts/markers",
                  "human_cloud": "~/contacts/human_cloud", "object_cloud": "~/contacts/object_cloud"}
        self.outputs = {k: self.p.reader(t, resolve_topic(topics[k], "interactvlm"), RELIABLE_QOS)
                        for k, t in OUTPUTS.items()}

    def unsubscribe_outputs(self):
        for r in self.outputs.values():
            r.__del__()  # delete the DDS reader now (not at garbage collection)
        self.outputs = {}

    def next_stamp(self) -> int:
        self.stamp += 100_000_000 + 7
        return self.stamp

    def send_image(self, stamp=None, size=(48, 64)) -> int:
        stamp = self.next_stamp() if stamp is None else stamp
        rgb = np.random.default_rng(stamp % 2**32).integers(0, 255, (*size, 3), dtype=np.uint8)
        self.image.write(encode_image(rgb, "rgb8", make_header(stamp, FRAME)))
        return stamp

    def wait(self, reader, predicate, timeout=FRAME_TIMEOUT):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for msg in reader.take(N=64):
                if predicate(msg):
                    return msg
            time.sleep(0.01)
        raise AssertionError(f"no matching message on {reader.topic.name} within {timeout} s")

    def wait_stamp(self, kind, stamp, timeout=FRAME_TIMEOUT):
        return self.wait(self.outputs[kind], lambda m: stamp_ns(header_of(m)) == stamp, timeout)

    def latest_diagnostics(self, predicate=lambda v: True, timeout=20.0) -> dict:
        return diag_values(self.wait(self.diagnostics, lambda m: predicate(diag_values(m)), timeout))


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    log_path = tmp_path_factory.mktemp("node") / "node.log"
    env = loopback_env(domain_id=DOMAIN)
    cmd = [sys.executable, "-m", "interactvlm_ros", "node", "--transport", "dds"]
    for s in NODE_SETTINGS:
        cmd += ["--set", s]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    peer = Peer()
    try:
        try:  # the latched topology arrives once the model is loaded and the node started
            peer.wait(peer.topology, lambda m: m.kind == "body", timeout=START_TIMEOUT)
        except AssertionError:
            proc.kill()
            raise AssertionError("node did not start:\n" + log_path.read_text()[-3000:]) from None
        matched = lambda w: w.get_publication_matched_status().current_count > 0  # noqa: E731
        end = time.monotonic() + 30
        while not all(matched(w) for w in (peer.image, peer.info, peer.objects)) and time.monotonic() < end:
            time.sleep(0.02)
        yield proc, peer, log_path
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_topology_is_latched_body_mesh(node):
    _, peer, _ = node
    late = peer.p.reader(MeshTopology, "/interactvlm/contacts/topology", TOPOLOGY_QOS)  # a late joiner
    topo = peer.wait(late, lambda m: m.kind == "body", timeout=10)
    assert topo.mesh_id.startswith("anny:") and topo.num_vertices == len(topo.vertices) // 3 > 1000
    assert len(topo.triangles) % 3 == 0 and int(np.max(topo.triangles)) < topo.num_vertices


def late_topologies(peer, count: int) -> dict:
    """The latched MeshTopology samples a late joiner receives, by mesh id (waits for ``count`` of them)."""
    topologies = {}
    reader = peer.p.reader(MeshTopology, "/interactvlm/contacts/topology", TOPOLOGY_QOS)

    def collect(m):
        topologies[m.mesh_id] = m
        return len(topologies) >= count

    peer.wait(reader, collect, 10)
    return topologies


def test_contacts_carry_the_image_header_and_the_asked_labels(node):
    _, peer, _ = node
    stamp = peer.send_image()
    contacts = peer.wait_stamp("contacts", stamp)
    assert contacts.header.frame_id == FRAME
    assert [c.object_label for c in contacts.contacts] == ["cup", "bottle"]
    for c in contacts.contacts:
        validate_contact(c)
        assert c.body_model == "anny" and c.num_body_vertices > 1000 and c.body_mesh_id.startswith("anny:")


def test_markers_draw_the_body_and_one_mesh_per_object(node):
    _, peer, _ = node
    stamp = peer.send_image()
    markers = peer.wait_stamp("markers", stamp)
    # DELETEALL, the body mesh, one mesh per object
    assert [m.ns for m in markers.markers] == ["", "interactvlm/body", "interactvlm/objects", "interactvlm/objects"]
    assert all(m.header.frame_id == FRAME for m in markers.markers)
    body = next(t for t in late_topologies(peer, 3).values() if t.kind == "body")
    assert len(markers.markers[1].points) == len(markers.markers[1].colors) == 3 * (len(body.triangles) // 3)


def test_object_contact_is_on_library_meshes_published_latched(node):
    _, peer, _ = node
    contacts = peer.wait_stamp("contacts", peer.send_image())
    # the queried objects are in the library: object contact on their meshes (node.object_contact)
    for c in contacts.contacts:
        assert "@" in c.object_mesh_id and c.num_object_vertices > 0, c.object_mesh_id
    topologies = late_topologies(peer, 3)  # the body + the two object meshes
    assert {c.object_mesh_id for c in contacts.contacts} <= set(topologies)


def test_clouds_hold_the_body_in_front_of_the_camera_and_the_objects_beside_it(node):
    _, peer, _ = node
    stamp = peer.send_image()
    contacts = peer.wait_stamp("contacts", stamp)
    clouds = {kind: peer.wait_stamp(kind, stamp) for kind in ("human_cloud", "object_cloud")}
    assert all(c.header.frame_id == FRAME for c in clouds.values())
    n_body = contacts.contacts[0].num_body_vertices
    points, probs = cloud_arrays(clouds["human_cloud"])
    assert points.shape == (n_body, 3) and probs.shape == (n_body,)
    assert np.all((probs >= 0) & (probs <= 1))
    assert 1.0 < np.median(points[:, 2]) < 5.0  # the documented fixed pose in front of the camera
    topologies = late_topologies(peer, 3)
    obj_points, obj_probs = cloud_arrays(clouds["object_cloud"])
    assert len(obj_points) == sum(topologies[c.object_mesh_id].num_vertices for c in contacts.contacts)
    assert obj_points[:, 0].min() > points[:, 0].max()  # objects stand beside the body
    assert np.all((obj_probs >= 0) & (obj_probs <= 1))


def test_object_query_topic_changes_the_objects(node):
    _, peer, _ = node
    peer.objects.write(String(data=" mug ,chair"))
    peer.latest_diagnostics(lambda v: v["objects"] == "mug, chair")
    stamp = peer.send_image()
    labels = [c.object_label for c in peer.wait_stamp("contacts", stamp).contacts]
    assert labels == ["mug", "chair"]
    peer.objects.write(String(data="cup,bottle"))
    peer.latest_diagnostics(lambda v: v["objects"] == "cup, bottle")


def bad_images(stamp):
    h = make_header(stamp, FRAME)
    good = encode_image(np.zeros((8, 8, 3), np.uint8), "rgb8", h)
    return {
        "step": Image(header=h, height=8, width=8, encoding="rgb8", step=8, data=bytes(64)),
        "data": Image(header=h, height=8, width=8, encoding="rgb8", step=24, data=bytes(24 * 8 - 1)),
        "encoding": Image(header=h, height=8, width=8, encoding="yuv422", step=16, data=bytes(128)),
        "zero-size": Image(header=h, height=0, width=0, encoding="rgb8", step=0, data=b""),
        "10000x10000": Image(header=h, height=10000, width=10000, encoding="rgb8", step=30000,
                             data=bytes(good.data)),
    }


def test_bad_inputs_warn_with_diagnostics_and_node_keeps_serving(node):
    _, peer, log_path = node
    before = int(peer.latest_diagnostics()["bad_messages"])
    sent = 0
    expected = {"step": "Image.step", "data": "Image.data", "encoding": "unsupported encoding",
                "zero-size": "zero-size", "10000x10000": "exceeds the limit"}
    for name, msg in bad_images(peer.next_stamp()).items():
        peer.image.write(msg)
        sent += 1
        v = peer.latest_diagnostics(lambda v, n=before + sent: int(v["bad_messages"]) >= n)
        assert expected[name] in v["last_error"], (name, v["last_error"])
    assert peer.wait_stamp("contacts", peer.send_image())  # still serving
    h = make_header(peer.next_stamp(), FRAME)
    for name, k in (("zero K", [0.0] * 9), ("NaN K", [float("nan")] + [0.0] * 8)):
        peer.info.write(CameraInfo(header=h, height=48, width=64, k=k))
        sent += 1
        v = peer.latest_diagnostics(lambda v, n=before + sent: int(v["bad_messages"]) >= n)
        assert "CameraInfo.k" in v["last_error"], (name, v["last_error"])
    for name, text in (("empty", ""), ("10 kB", "x" * (10 * 1024 + 1)), ("control", "cup\x07")):
        peer.objects.write(String(data=text))
        sent += 1
        v = peer.latest_diagnostics(lambda v, n=before + sent: int(v["bad_messages"]) >= n)
        assert "ignored object query" in v["last_error"] and v["objects"] == "cup, bottle", (name, v)
    assert int(v["rejected_object_queries"]) >= 3
    stamp = peer.send_image()
    assert [c.object_label for c in peer.wait_stamp("contacts", stamp).contacts] == ["cup", "bottle"]
    # warnings are throttled per kind of problem (period 60 s): one line per bad Image field; the 10000x10000
    # image is the same problem (height/width) as the zero-size one, so it is not logged again
    log = log_path.read_text()
    dropped = [ln.split("dropped image: ")[1].split(":")[0] for ln in log.splitlines() if "dropped image" in ln]
    assert sorted(dropped) == sorted(["sensor_msgs/Image.step", "sensor_msgs/Image.data",
                                      "sensor_msgs/Image.encoding", "sensor_msgs/Image.height/width"]), log[-2000:]
    queries = [ln for ln in log.splitlines() if "ignored object query" in ln]
    assert 1 <= len(queries) <= 3 and len(set(queries)) == len(queries)  # at most once per kind of bad query


def test_undecodable_samples_are_counted_per_topic_and_the_node_keeps_serving(node):
    from interactvlm_ros.benchmarks.fuzz import fuzz_payloads
    from interactvlm_ros.transport.dds import write_serialized

    _, peer, _ = node
    before = peer.latest_diagnostics()
    # CDR that a C++ publisher can send: a string field holding invalid UTF-8 (Python's decoder refuses it)
    for topic, writer in (("objects", peer.objects), ("image", peer.image)):
        write_serialized(writer, next(p for kind, p in fuzz_payloads(topic, 5) if kind == "bad_utf8"))
    counted = lambda v, t: int(v[f"{t}_dropped_undecodable"]) > int(before[f"{t}_dropped_undecodable"])  # noqa: E731
    v = peer.latest_diagnostics(lambda v: counted(v, "objects") and counted(v, "image"))
    assert "UnicodeDecodeError" in v["objects_last_drop"] and "UnicodeDecodeError" in v["image_last_drop"]
    assert v["thread_deaths"] == "0" and v["objects"] == "cup, bottle"
    assert peer.wait_stamp("contacts", peer.send_image())


def test_camera_info_in_sync_is_accepted(node):
    _, peer, _ = node
    stamp = peer.next_stamp()
    h = make_header(stamp, FRAME)
    peer.info.write(CameraInfo(header=h, height=48, width=64, k=[60.0, 0, 32, 0, 60.0, 24, 0, 0, 1]))
    before = int(peer.latest_diagnostics()["bad_messages"])
    peer.send_image(stamp)
    assert peer.wait_stamp("contacts", stamp).header.frame_id == FRAME
    assert int(peer.latest_diagnostics()["bad_messages"]) == before


def test_lazy_mode_runs_no_inference_without_subscribers(node):
    _, peer, _ = node
    peer.unsubscribe_outputs()
    try:
        v = peer.latest_diagnostics(lambda v: v["active"] == "false")
        processed, idle = int(v["frames_processed"]), int(v["idle_skipped"])
        for _ in range(3):
            peer.send_image()
            time.sleep(0.2)
        v = peer.latest_diagnostics(lambda v: int(v["idle_skipped"]) > idle)
        assert int(v["frames_processed"]) == processed
    finally:
        peer.subscribe_outputs()
    peer.latest_diagnostics(lambda v: v["active"] == "true")
    assert peer.wait_stamp("contacts", peer.send_image())


def rss_kib(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/<pid>/status")
def test_memory_does_not_grow_over_many_bad_and_good_messages(node):
    proc, peer, _ = node
    for _ in range(2):
        peer.wait_stamp("contacts", peer.send_image(size=(480, 640)))
    start = rss_kib(proc.pid)
    before = int(peer.latest_diagnostics()["bad_messages"])
    big_bad = Image(header=make_header(1, FRAME), height=480, width=640, encoding="rgb8", step=640 * 3,
                    data=bytes(640 * 3 * 479))  # 0.9 MB, one row short
    sent = 0
    for _round in range(4):
        for i in range(50):
            msg = big_bad if i % 2 else bad_images(peer.next_stamp())["step"]
            peer.image.write(msg)
            peer.objects.write(String(data="\x1b" * (i + 1)))
            sent += 2
            time.sleep(0.005)
        peer.wait_stamp("contacts", peer.send_image(size=(480, 640)))
    peer.latest_diagnostics(lambda v: int(v["bad_messages"]) >= before + sent * 0.9)
    grown_mib = (rss_kib(proc.pid) - start) / 1024
    # 100 leaked 0.9 MB images alone would be ~90 MiB
    assert grown_mib < 40, f"node RSS grew by {grown_mib:.1f} MiB over {sent} bad + 4 good messages"
