"""The node with ``recon.enabled``: the real tiny model and the real reconstruction (MediaPipe worker, Anny fit)
on ``skimage.data.astronaut()`` with a CameraInfo, through the in-process node API and the real message builders.

Checks: contact points in metres in front of the camera, body id, a ``body_<id>`` transform parented to the image
frame, posed (not fixed-placement) meshes in the markers; and that with MediaPipe unavailable the contacts are
still published (fixed placement) with a diagnostic saying why the reconstruction was skipped.
"""

import sys

import numpy as np
import pytest
from node_sink import CollectingSink

from interactvlm_ros.config import load_config
from interactvlm_ros.node.placement import FixedPlacement

pytest.importorskip("cyclonedds", reason="the message types need cyclonedds")

FRAME = "test_camera_optical_frame"
STAMP = 1_700_000_123 * 10**9 + 456
NODE_SETTINGS = ["model.name=tiny", "model.device=cpu", "objects=[bottle]", "node.always_run=true",
                 "node.marker_rate_hz=0", "node.diagnostics_period_s=0.1", "node.warn_throttle_s=60",
                 "recon.enabled=true", "recon.iterations=30", "recon.object_iterations=20", "contact.threshold=0.3"]


@pytest.fixture(scope="module")
def components():
    from interactvlm_ros.node.components import NodeComponents

    return NodeComponents.from_config(load_config(None, ["model.name=tiny", "model.device=cpu"]))


@pytest.fixture(scope="module")
def astronaut():
    import skimage.data

    return np.ascontiguousarray(skimage.data.astronaut())


def xyz(points) -> np.ndarray:
    """A message's point list (an ``[N,3]`` array on our wire types) as ``float64 [N,3]``."""
    return np.asarray(points, dtype=np.float64).reshape(-1, 3)


def camera_info(w, h, stamp):
    from interactvlm_ros.transport.headers import make_header
    from interactvlm_ros.transport.msgs import CameraInfo

    f = 1.2 * w
    return CameraInfo(header=make_header(stamp, FRAME), height=h, width=w,
                      k=[f, 0.0, w / 2, 0.0, f, h / 2, 0.0, 0.0, 1.0])


def run_node(cfg, components, image, stamp=STAMP, frames=1, until=None):
    """Start a node, send camera info + image, wait for ``frames`` frames (and ``until(sink)``), stop it."""
    from interactvlm_ros.transport.headers import make_header
    from interactvlm_ros.transport.image_codec import encode_image
    from interactvlm_ros.transport.node_inputs import wire_codecs

    sink = CollectingSink()
    node = components.build_node(cfg, sink)
    codecs = wire_codecs(cfg)
    node.start()
    try:
        h, w = image.shape[:2]
        for i in range(frames):
            s = stamp + i * 100_000_000
            node.on_message("camera_info", camera_info(w, h, s), codecs["camera_info"])
            node.on_message("image", encode_image(image, "rgb8", make_header(s, FRAME)), codecs["image"])
            sink.wait(lambda n=i + 1: len(sink.frames) >= n)
        if until is not None:
            sink.wait(lambda: until(sink))
    finally:
        node.stop()
    return node, sink


@pytest.fixture(scope="module")
def recon_run(components, astronaut):
    from interactvlm_ros.recon.keypoints import KeypointError, mediapipe_python

    try:
        mediapipe_python("")
    except KeypointError as exc:
        pytest.skip(f"MediaPipe environment missing: {exc}")
    cfg = load_config(None, NODE_SETTINGS)
    return run_node(cfg, components, astronaut, frames=2)


def test_contacts_carry_metric_points_and_body_id(recon_run):
    from interactvlm_ros.transport.contacts import validate_contact

    node, sink = recon_run
    outputs, msgs = sink.frames[0]
    assert outputs.placement == "reconstructed", node.recon.last_reason
    arr = msgs["contacts"]
    assert arr.header.frame_id == FRAME and arr.header.stamp.sec * 10**9 + arr.header.stamp.nanosec == STAMP
    (c,) = arr.contacts
    validate_contact(c)
    assert c.found and len(c.human_vertex_indices) > 0
    pts = xyz(c.human_contact_points)
    assert pts.shape == (len(c.human_vertex_indices), 3)
    assert np.all(pts[:, 2] > 0.3) and np.all(pts[:, 2] < 20.0)  # metres in front of the camera
    assert np.ptp(pts, axis=0).max() < 2.5  # on one person
    # the points are the posed body's vertices, by index
    idx = np.asarray(c.human_vertex_indices)
    np.testing.assert_allclose(pts, outputs.body_points[idx], atol=1e-5)
    assert c.body_id and c.body_id == outputs.body_id
    if len(c.object_vertex_indices):
        opts = xyz(c.object_contact_points)
        assert opts.shape == (len(c.object_vertex_indices), 3) and np.all(opts[:, 2] > 0.3)
    # stable id across frames (tracking, warm start)
    assert sink.frames[1][1]["contacts"].contacts[0].body_id == c.body_id


def test_body_tf_is_child_of_the_image_frame(recon_run):
    _, sink = recon_run
    outputs, msgs = sink.frames[0]
    tf = msgs["tf"]
    (t,) = tf.transforms
    assert t.header.frame_id == FRAME and t.child_frame_id == f"body_{outputs.body_id}"
    assert t.header.stamp.sec * 10**9 + t.header.stamp.nanosec == STAMP
    tr = t.transform.translation
    assert tr.z > 0.3
    # the frame's origin is mid-hips: inside the posed body's bounding box
    lo, hi = outputs.body_points.min(0), outputs.body_points.max(0)
    assert np.all(np.array([tr.x, tr.y, tr.z]) > lo - 0.05) and np.all(np.array([tr.x, tr.y, tr.z]) < hi + 0.05)
    q = t.transform.rotation
    assert abs(np.linalg.norm([q.x, q.y, q.z, q.w]) - 1.0) < 1e-6


def test_markers_and_cloud_show_the_posed_body(recon_run, components, astronaut):
    from interactvlm_ros.transport.clouds import cloud_arrays

    _, sink = recon_run
    outputs, msgs = sink.frames[0]
    body_marker = next(m for m in msgs["markers"].markers if m.ns == "interactvlm/body")
    pts = xyz(body_marker.points)
    fixed = FixedPlacement(distance_m=2.5).place(components.body.vertices)
    faces = components.body.faces.reshape(-1)
    assert pts.shape == (len(faces), 3)
    assert np.abs(pts - fixed[faces]).max() > 0.1  # not the fixed stand-in pose
    # the posed body projects into the image (the CameraInfo's pinhole)
    h, w = astronaut.shape[:2]
    f = 1.2 * w
    u, v = f * pts[:, 0] / pts[:, 2] + w / 2, f * pts[:, 1] / pts[:, 2] + h / 2
    assert np.all(pts[:, 2] > 0)
    inside = (u >= 0) & (u < w) & (v >= 0) & (v < h)
    assert inside.mean() > 0.6  # the photo crops the legs: the rest of the body is in view
    assert 0 <= np.median(u) < w and 0 <= np.median(v) < h
    cloud, _ = cloud_arrays(msgs["human_cloud"])
    np.testing.assert_allclose(cloud, outputs.body_points, atol=1e-6)


def test_diagnostics_report_reconstruction(recon_run):
    _, sink = recon_run
    values = sink.diagnostics[-1].values
    assert values["placement"] == "reconstructed"
    assert int(values["recon_frames"]) >= 2 and values["recon_skipped"] == "0"


def test_without_mediapipe_contacts_still_published(components, astronaut):
    # a Python without MediaPipe (this one): the worker cannot start -> KeypointError
    cfg = load_config(None, NODE_SETTINGS + [f"recon.keypoint_python={sys.executable}"])
    small = np.ascontiguousarray(astronaut[::4, ::4])

    def warned(sink):
        return any(r.level == 1 and "reconstruction skipped" in r.message for r in sink.diagnostics)

    node, sink = run_node(cfg, components, small, until=warned)
    outputs, msgs = sink.frames[0]
    assert outputs.placement == "fixed"
    (c,) = msgs["contacts"].contacts
    assert c.body_id == "" and len(c.human_contact_points) == 0
    assert "tf" not in msgs
    body_marker = next(m for m in msgs["markers"].markers if m.ns == "interactvlm/body")
    fixed = FixedPlacement(distance_m=2.5).place(components.body.vertices)[components.body.faces.reshape(-1)]
    np.testing.assert_allclose(xyz(body_marker.points), fixed, atol=1e-5)
    report = next(r for r in sink.diagnostics if "reconstruction skipped" in r.message)
    assert "keypoints unavailable" in report.message and "MediaPipe" in report.message
    assert report.values["placement"] == "fixed (reconstruction skipped)"
    assert node.recon.skipped == 1 and node.recon.reconstructed == 0


def test_bag_records_body_tf(components, astronaut, tmp_path, recon_run):
    """``interactvlm bag`` runs the same node: a reconstructed frame's ``body_<id>`` transform goes to /tf."""
    from rosbags.highlevel import AnyReader
    from rosbags.rosbag2 import StoragePlugin, Writer

    from interactvlm_ros.bag.process import process_bag
    from interactvlm_ros.transport.headers import make_header
    from interactvlm_ros.transport.image_codec import encode_image
    from interactvlm_ros.transport.typestore import typestore

    src = tmp_path / "in"
    with Writer(src, version=9, storage_plugin=StoragePlugin.MCAP) as w:
        conn = w.add_connection("/camera/image_raw", "sensor_msgs/msg/Image", typestore=typestore())
        w.write(conn, STAMP, encode_image(astronaut, "rgb8", make_header(STAMP, FRAME)).serialize())
    report = process_bag(load_config(None, NODE_SETTINGS), src, tmp_path / "out.mcap", components=components)
    assert report.processed == 1
    with AnyReader([report.out]) as reader:
        tf_conns = [c for c in reader.connections if c.topic == "/tf"]
        assert tf_conns and tf_conns[0].msgtype == "tf2_msgs/msg/TFMessage"
        msgs = [reader.deserialize(raw, c.msgtype) for c, _, raw in reader.messages(connections=tf_conns)]
    (tf,) = msgs
    (t,) = tf.transforms
    assert t.header.frame_id == FRAME and t.child_frame_id.startswith("body_") and t.transform.translation.z > 0.3
