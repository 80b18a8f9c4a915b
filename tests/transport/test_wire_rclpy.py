"""With a ROS 2 install (rclpy and the generated message packages importable): rclpy's own type support
decodes our CDR bytes for every message type and re-encodes them to the same bytes. Skips without ROS."""

import importlib

import pytest

rclpy_serialization = pytest.importorskip("rclpy.serialization", reason="rclpy (a ROS 2 install) is not importable")


def _ros_class(name: str):
    pkg, _, typ = name.split("/")
    try:
        return getattr(importlib.import_module(f"{pkg}.msg"), typ)
    except ImportError:
        pytest.skip(f"{pkg} is not built in this ROS 2 install")


@pytest.mark.parametrize("content", ["full", "empty"])
def test_rclpy_type_support_reads_and_writes_our_bytes(content):
    from test_msgs_wire import EMPTY, MESSAGES

    for name, msg in (MESSAGES if content == "full" else EMPTY).items():
        data = msg.serialize()
        ros_msg = rclpy_serialization.deserialize_message(data, _ros_class(name))
        assert rclpy_serialization.serialize_message(ros_msg) == data, name


def test_rclpy_decoded_values():
    from test_msgs_wire import FRAME, MESSAGES

    arr = rclpy_serialization.deserialize_message(MESSAGES["interactvlm_msgs/msg/ContactArray"].serialize(),
                                                  _ros_class("interactvlm_msgs/msg/ContactArray"))
    ours = MESSAGES["interactvlm_msgs/msg/ContactArray"]
    assert arr.header.frame_id == FRAME
    c = arr.contacts[0]
    assert list(c.human_vertex_indices) == ours.contacts[0].human_vertex_indices.tolist()
    expected = [tuple(r) for r in ours.contacts[0].human_contact_points]
    assert [(p.x, p.y, p.z) for p in c.human_contact_points] == expected
    assert arr.contacts[1].reason == "no contact token in the answer"
