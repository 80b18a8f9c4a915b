"""Our DDS wire types against rosbags' independent ROS 2 CDR implementation (our .msg files + ROS2_JAZZY)."""

import numpy as np
import pytest
from rosbags.interfaces import Nodetype

from interactvlm_ros.pipeline.result import ContactResult, ObjectContact
from interactvlm_ros.transport import msgs as wire
from interactvlm_ros.transport.clouds import contact_cloud
from interactvlm_ros.transport.contacts import contact_array
from interactvlm_ros.transport.diagnostics import diagnostic_status
from interactvlm_ros.transport.headers import make_header
from interactvlm_ros.transport.image_codec import encode_image
from interactvlm_ros.transport.markers import contact_markers
from interactvlm_ros.transport.tf import body_transforms
from interactvlm_ros.transport.topology import topology_message
from interactvlm_ros.transport.typestore import typestore

RNG = np.random.default_rng(7)
FRAME = "kamera_ø_光学"  # non-ASCII frame id on purpose


class _Mesh:
    def __init__(self, label, n):
        self.label = label
        self.points = RNG.normal(size=(n, 3)).astype(np.float32)
        self.faces = np.array([[0, 1, 2], [1, 2, 3], [0, 2, 3]])
        self.probs = RNG.random(n).astype(np.float32)


def _result():
    nb = 40
    human = RNG.random(nb).astype(np.float32)
    return ContactResult("anny", nb, [
        ObjectContact("bottle", "It is [SEG].", True, human, RNG.random(12).astype(np.float32), "object:bottle:1"),
        ObjectContact("mug ☕", "no", False, None, None, "", reason="no contact token in the answer"),
    ])


def _messages():
    hdr = make_header(1_700_000_000_123_456_789, FRAME)
    res = _result()
    out = {
        "sensor_msgs/msg/Image": encode_image(RNG.integers(0, 255, (6, 5, 3), dtype=np.uint8), "rgb8", hdr,
                                              row_padding=3),
        "sensor_msgs/msg/CameraInfo": wire.CameraInfo(
            header=hdr, height=480, width=640, distortion_model="plumb_bob", d=[0.1, -0.2, 0.001, 0.0, 0.05],
            k=[500.0, 0, 320, 0, 501.5, 240, 0, 0, 1], r=[1.0, 0, 0, 0, 1, 0, 0, 0, 1],
            p=[500.0, 0, 320, 0, 0, 501.5, 240, 0, 0, 0, 1, 0], binning_x=1, binning_y=2,
            roi=wire.RegionOfInterest(x_offset=3, y_offset=4, height=5, width=6, do_rectify=True)),
        "sensor_msgs/msg/CompressedImage": wire.CompressedImage(header=hdr, format="jpeg", data=b"\xff\xd8\x00\x01"),
        "sensor_msgs/msg/PointCloud2": contact_cloud(hdr, RNG.normal(size=(7, 3)), RNG.random(7)),
        "std_msgs/msg/String": wire.String(data="bottle, mug ☕, Flasche"),
        "visualization_msgs/msg/MarkerArray": contact_markers(hdr, _Mesh("anny", 4), [_Mesh("bottle", 5)]),
        "diagnostic_msgs/msg/DiagnosticArray": wire.DiagnosticArray(header=hdr, status=[
            diagnostic_status("interactvlm: contact node", 1, "slow ⏱", "cpu", {"fps": 2.5, "dropped": 3}),
            diagnostic_status("empty", 0, "", "", {})]),
        "tf2_msgs/msg/TFMessage": body_transforms(hdr, [("1", [0.1, 0.2, 2.0], [0, 0, 0, 1]),
                                                        ("b2", [-1, 0, 3], [0.1, 0.2, 0.3, 0.9])]),
        "interactvlm_msgs/msg/ContactArray": contact_array(res, hdr, 0.5, "anny:abc", "1",
                                                           body_vertices=RNG.normal(size=(40, 3)),
                                                           object_vertices={"bottle": RNG.normal(size=(12, 3))}),
        "interactvlm_msgs/msg/MeshTopology": topology_message("anny:abc", "body", "anny",
                                                              RNG.normal(size=(4, 3)), [[0, 1, 2], [0, 2, 3]]),
    }
    # A marker using the Jazzy-only fields too.
    extra = wire.Marker(header=hdr, ns="text", id=5, type=wire.Marker.TEXT_VIEW_FACING, text="Hände",
                        texture_resource="embedded://t", texture=wire.CompressedImage(format="png", data=b"\x89P"),
                        uv_coordinates=np.array([[0.1, 0.2], [0.3, 0.4]], np.float32),
                        mesh_file=wire.MeshFile(filename="a.stl", data=b"solid"))
    out["visualization_msgs/msg/MarkerArray"].markers.append(extra)
    return out


MESSAGES = _messages()
EMPTY = {name: wire.MESSAGE_TYPES[name]() for name in MESSAGES}


def _assert_same(ours, theirs, typename, store, path=""):
    """Field-by-field comparison of one of our messages with rosbags' decoding, walking rosbags' definitions."""
    for name, (kind, rest) in store.fielddefs[typename][1]:
        a, b, where = getattr(ours, name), getattr(theirs, name), f"{path}.{name}"
        if kind == Nodetype.NAME:
            _assert_same(a, b, rest, store, where)
        elif kind == Nodetype.BASE:
            if rest[0] == "float32":
                assert np.float32(a) == np.float32(b), where
            else:
                assert a == b, where
        else:
            (subkind, subname), _count = rest
            if subkind == Nodetype.BASE:
                if subname[0] == "string":
                    assert list(a) == list(b), where
                else:
                    if isinstance(a, (bytes, bytearray)):
                        a = np.frombuffer(a, np.uint8)
                    np.testing.assert_array_equal(np.asarray(a, dtype=np.asarray(b).dtype), np.asarray(b), where)
            elif isinstance(a, np.ndarray):  # packed sequence of an all-primitive struct: rows = elements
                sub_fields = [f for f, _ in store.fielddefs[subname][1]]
                assert a.shape[0] == len(b), where
                for row, elem in zip(a, b, strict=True):
                    np.testing.assert_array_equal(row, [getattr(elem, f) for f in sub_fields], where)
            else:
                assert len(a) == len(b), where
                for i, (x, y) in enumerate(zip(a, b, strict=True)):
                    _assert_same(x, y, subname, store, f"{where}[{i}]")


@pytest.fixture(scope="module")
def store():
    return typestore()


@pytest.mark.parametrize("typename", sorted(MESSAGES))
@pytest.mark.parametrize("content", ["full", "empty"])
def test_ours_decoded_by_rosbags(store, typename, content):
    msg = (MESSAGES if content == "full" else EMPTY)[typename]
    data = msg.serialize()
    decoded = store.deserialize_cdr(data, typename)
    _assert_same(msg, decoded, typename, store)
    # rosbags re-serializes its decoding to the very same bytes
    assert bytes(store.serialize_cdr(decoded, typename)) == data


@pytest.mark.parametrize("typename", sorted(MESSAGES))
def test_rosbags_decoded_by_ours(store, typename):
    theirs = store.deserialize_cdr(MESSAGES[typename].serialize(), typename)
    data = bytes(store.serialize_cdr(theirs, typename))
    ours = wire.MESSAGE_TYPES[typename].deserialize(data)
    _assert_same(ours, theirs, typename, store)
    assert ours.serialize() == data


def test_hand_built_rosbags_image_and_contacts(store):
    T = store.types
    img = T["sensor_msgs/msg/Image"](
        header=T["std_msgs/msg/Header"](stamp=T["builtin_interfaces/msg/Time"](sec=3, nanosec=4), frame_id="c"),
        height=2, width=3, encoding="mono16", is_bigendian=1, step=6,
        data=np.arange(12, dtype=np.uint8))
    ours = wire.Image.deserialize(bytes(store.serialize_cdr(img, "sensor_msgs/msg/Image")))
    assert (ours.height, ours.width, ours.encoding, ours.is_bigendian, ours.step) == (2, 3, "mono16", 1, 6)
    np.testing.assert_array_equal(ours.data, np.arange(12))
    contact = T["interactvlm_msgs/msg/Contact"](
        body_id="7", object_label="Stuhl [SEG]", object_prompt_name="Stuhl SEG", found=True, reason="",
        body_model="smplx", num_body_vertices=10475,
        body_mesh_id="smplx:1", human_vertex_indices=np.array([3, 9000], np.uint32),
        human_probabilities=np.array([0.5, 0.75], np.float32), object_mesh_id="", num_object_vertices=0,
        object_vertex_indices=np.zeros(0, np.uint32), object_probabilities=np.zeros(0, np.float32), threshold=0.5,
        human_contact_points=[T["geometry_msgs/msg/Point"](x=1.0, y=2.0, z=3.0),
                              T["geometry_msgs/msg/Point"](x=-1.0, y=0.5, z=2.5)],
        object_contact_points=[], confidence=0.75)
    arr = T["interactvlm_msgs/msg/ContactArray"](header=img.header, contacts=[contact])
    ours = wire.ContactArray.deserialize(bytes(store.serialize_cdr(arr, "interactvlm_msgs/msg/ContactArray")))
    c = ours.contacts[0]
    assert c.object_label == "Stuhl [SEG]" and c.object_prompt_name == "Stuhl SEG" and c.num_body_vertices == 10475
    np.testing.assert_array_equal(c.human_vertex_indices, [3, 9000])
    np.testing.assert_array_equal(c.human_contact_points, [[1, 2, 3], [-1, 0.5, 2.5]])
    assert c.object_contact_points.shape == (0, 3)


def test_packed_sequences_accept_lists_of_structs():
    pts = [wire.Point(x=1.0, y=2.0, z=3.0), wire.Point(x=4.0, y=5.0, z=6.0)]
    a = wire.Marker(points=pts).serialize()
    b = wire.Marker(points=np.array([[1, 2, 3], [4, 5, 6]], float)).serialize()
    assert a == b


def test_packed_sequence_shape_error():
    with pytest.raises(Exception, match="points"):
        wire.Marker(points=np.zeros((4, 2))).serialize()


def test_wire_type_names_are_ros_dds_names():
    for name, cls in wire.MESSAGE_TYPES.items():
        pkg, _, typ = name.split("/")
        assert cls.__idl_typename__ == f"{pkg}::msg::dds_::{typ}_"
        assert cls.__idl_annotations__.get("extensibility", "final") == "final"
        cls.__idl__.populate()
        assert cls.__idl__.keyless, name  # ROS topics are keyless
