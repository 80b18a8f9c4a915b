"""Conversions from transport-neutral data to messages: contacts, topology, markers, clouds, diagnostics, TF."""

import numpy as np
import pytest

from interactvlm_ros.pipeline.result import ContactResult, ObjectContact
from interactvlm_ros.transport import msgs as wire
from interactvlm_ros.transport.clouds import cloud_arrays, contact_cloud
from interactvlm_ros.transport.contacts import contact_array, dense_probabilities, validate_contact
from interactvlm_ros.transport.diagnostics import diagnostic_array
from interactvlm_ros.transport.errors import MessageError
from interactvlm_ros.transport.headers import make_header
from interactvlm_ros.transport.markers import (
    BODY_NS,
    OBJECT_NS,
    contact_markers,
    object_marker_id,
    probability_colors,
)
from interactvlm_ros.transport.tf import body_transforms
from interactvlm_ros.transport.topology import mesh_from_message, topology_message

RNG = np.random.default_rng(11)
HDR = make_header(12_000_000_001, "cam_optical")


class _FrameHeader:  # node.outputs.FrameHeader shape
    stamp_ns = 12_000_000_001
    frame_id = "cam_optical"


def _result(nb=30, no=9):
    human = RNG.random(nb).astype(np.float32)
    obj = RNG.random(no).astype(np.float32)
    return ContactResult("anny", nb, [ObjectContact("bottle", "[SEG]", True, human, obj, "object:bottle:x"),
                                      ObjectContact("chair", "", False, reason="nothing")])


def test_contact_array_sparse_dense_roundtrip_with_points():
    res = _result()
    body = RNG.normal(size=(30, 3))
    obj = RNG.normal(size=(9, 3))
    msg = wire.ContactArray.deserialize(contact_array(res, _FrameHeader(), 0.4, "anny:t", "3", body,
                                                      {"bottle": obj}).serialize())
    assert msg.header.stamp.sec == 12 and msg.header.stamp.nanosec == 1 and msg.header.frame_id == "cam_optical"
    c, missing = msg.contacts
    validate_contact(c)
    human = res.contacts[0].human_probs
    idx = np.flatnonzero(human >= 0.4)
    np.testing.assert_array_equal(c.human_vertex_indices, idx)
    np.testing.assert_allclose(dense_probabilities(c), np.where(human >= 0.4, human, 0))
    np.testing.assert_allclose(c.human_contact_points, body[idx])
    np.testing.assert_allclose(c.object_contact_points, obj[c.object_vertex_indices])
    assert c.num_object_vertices == 9 and c.object_mesh_id == "object:bottle:x"
    assert c.confidence == pytest.approx(float(human.max()))
    assert (c.body_id, c.body_model, c.num_body_vertices, c.body_mesh_id) == ("3", "anny", 30, "anny:t")
    assert not missing.found and missing.reason == "nothing" and missing.human_vertex_indices.size == 0
    assert missing.confidence == 0


def test_contact_array_without_reconstruction_has_no_points():
    c = contact_array(_result(), HDR, 0.5).contacts[0]
    assert c.human_contact_points.shape == (0, 3) and c.object_contact_points.shape == (0, 3)


def test_contact_errors():
    res = _result()
    res.contacts[0].human_probs = res.contacts[0].human_probs[:5]
    with pytest.raises(MessageError, match=r"Contact\.human_probabilities: 5 values for a mesh of 30 vertices"):
        contact_array(res, HDR, 0.5)
    res = _result()
    res.contacts[0].human_probs[0] = np.nan
    with pytest.raises(MessageError, match="NaN"):
        contact_array(res, HDR, 0.5)
    with pytest.raises(MessageError, match="threshold"):
        contact_array(_result(), HDR, 1.5)
    c = contact_array(_result(), HDR, 0.1).contacts[0]
    c.human_vertex_indices = c.human_vertex_indices[::-1]
    with pytest.raises(MessageError, match="strictly increasing"):
        validate_contact(c)


def test_topology_roundtrip_and_errors():
    v = RNG.normal(size=(5, 3)).astype(np.float32)
    f = np.array([[0, 1, 2], [2, 3, 4]])
    msg = wire.MeshTopology.deserialize(topology_message("anny:1", "body", "anny", v, f).serialize())
    v2, f2 = mesh_from_message(msg)
    np.testing.assert_array_equal(v2, v)
    np.testing.assert_array_equal(f2, f)
    with pytest.raises(MessageError, match=r"triangles: indices must be in \[0, 5\)"):
        topology_message("x", "body", "anny", v, [[0, 1, 5]])
    with pytest.raises(MessageError, match="kind"):
        topology_message("x", "person", "anny", v, f)
    msg.num_vertices = 4
    with pytest.raises(MessageError, match="expected 3 \\* num_vertices"):
        mesh_from_message(msg)


class _Mesh:
    def __init__(self, label, n=4):
        self.label = label
        self.points = RNG.normal(size=(n, 3)).astype(np.float32)
        self.faces = np.array([[0, 1, 2], [0, 2, 3]])
        self.probs = np.linspace(0, 1, n).astype(np.float32)


def test_markers_triangle_list_per_vertex_colours_stable_ids():
    body, objs = _Mesh("anny"), [_Mesh("bottle"), _Mesh("mug")]
    arr = wire.MarkerArray.deserialize(contact_markers(HDR, body, objs).serialize())
    first, m_body, m_bottle, m_mug = arr.markers
    assert first.action == wire.Marker.DELETEALL
    assert m_body.type == wire.Marker.TRIANGLE_LIST and m_body.ns == BODY_NS and m_body.id == 0
    assert m_body.header.frame_id == "cam_optical"
    assert m_body.points.shape == (6, 3) and m_body.colors.shape == (6, 4)
    np.testing.assert_allclose(m_body.points, body.points[body.faces.reshape(-1)], rtol=1e-6)
    np.testing.assert_array_equal(m_body.colors[:, 3], 1.0)  # alpha 1: no transparent pass in RViz
    np.testing.assert_allclose(m_body.colors, probability_colors(body.probs)[body.faces.reshape(-1)])
    assert (m_bottle.ns, m_bottle.id) == (OBJECT_NS, object_marker_id("bottle"))
    assert object_marker_id("bottle") == object_marker_id("bottle") != object_marker_id("mug")
    assert (m_body.scale.x, m_body.pose.orientation.w, m_body.color.a) == (1.0, 1.0, 1.0)
    cols = probability_colors([0.0, 1.0])
    assert cols[1, 0] > cols[0, 0] and cols[1, 2] < cols[0, 2]  # contact is red, no contact is blue-grey
    bad = _Mesh("x")
    bad.probs = bad.probs[:2]
    with pytest.raises(MessageError, match="2 probabilities for 4 vertices"):
        contact_markers(HDR, bad)


def test_cloud_fields_and_roundtrip():
    pts, probs = RNG.normal(size=(10, 3)), RNG.random(10)
    msg = wire.PointCloud2.deserialize(contact_cloud(HDR, pts, probs).serialize())
    assert [f.name for f in msg.fields] == ["x", "y", "z", "probability"]
    assert all(f.datatype == 7 and f.count == 1 for f in msg.fields)
    assert (msg.height, msg.width, msg.point_step, msg.row_step, msg.is_dense) == (1, 10, 16, 160, True)
    p2, q2 = cloud_arrays(msg)
    np.testing.assert_allclose(p2, pts, rtol=1e-6)
    np.testing.assert_allclose(q2, probs, rtol=1e-6)
    assert contact_cloud(HDR, np.zeros((0, 3)), []).width == 0
    with pytest.raises(MessageError, match="3 probabilities for 10 points"):
        contact_cloud(HDR, pts, probs[:3])
    msg.fields = msg.fields[:3]
    with pytest.raises(MessageError, match="missing float32 field"):
        cloud_arrays(msg)


class _Report:
    name, level, message, hardware_id, stamp_ns = "node", 2, "model failed", "cpu", 5_000_000_000
    values = {"frames": 3}


def test_diagnostics_and_tf():
    arr = diagnostic_array([_Report()])
    assert arr.header.stamp.sec == 5 and arr.status[0].level == 2
    assert (arr.status[0].values[0].key, arr.status[0].values[0].value) == ("frames", "3")
    bad = _Report()
    bad.level = 7
    with pytest.raises(MessageError, match="status.level"):
        diagnostic_array([bad])
    tf = body_transforms(HDR, [("1", [0, 0, 2], [0, 0, 0, 2])])
    t = tf.transforms[0]
    assert (t.header.frame_id, t.child_frame_id, t.transform.rotation.w) == ("cam_optical", "body_1", 1.0)
    with pytest.raises(MessageError, match="quaternion"):
        body_transforms(HDR, [("1", [0, 0, 2], [0, 0, 0, 0])])
    with pytest.raises(MessageError, match="bad body id"):
        body_transforms(HDR, [("a/b", [0, 0, 2], [0, 0, 0, 1])])
