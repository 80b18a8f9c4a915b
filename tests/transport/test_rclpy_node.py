"""The rclpy transport against a real ROS 2 install: CDR bytes vs rclpy messages, declared parameters, the
lifecycle node end to end with the tiny model, and a ROS 2 subscriber receiving the dds transport's outputs.

Skipped (with the reason) where rclpy or the built interactvlm_msgs are not importable, e.g. in CI; run them
after sourcing a ROS 2 Jazzy install and ``colcon build``-ing ros2_ws/src (see README "Running the node").
"""

import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy is not importable: no sourced ROS 2 install here")
ivm_msgs = pytest.importorskip("interactvlm_msgs.msg",
                               reason="interactvlm_msgs is not built/sourced (colcon build ros2_ws/src)")

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.executors import MultiThreadedExecutor  # noqa: E402
from rclpy.lifecycle import TransitionCallbackReturn  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from rclpy.serialization import deserialize_message, serialize_message  # noqa: E402
from sensor_msgs.msg import Image as RosImage  # noqa: E402
from sensor_msgs.msg import PointCloud2 as RosPointCloud2  # noqa: E402
from std_msgs.msg import String as RosString  # noqa: E402
from visualization_msgs.msg import MarkerArray as RosMarkerArray  # noqa: E402

from interactvlm_ros.config import PARAMETERS, ConfigError  # noqa: E402
from interactvlm_ros.pipeline.result import ContactResult, ObjectContact  # noqa: E402
from interactvlm_ros.transport import msgs as wire  # noqa: E402
from interactvlm_ros.transport.clouds import contact_cloud  # noqa: E402
from interactvlm_ros.transport.contacts import contact_array  # noqa: E402
from interactvlm_ros.transport.dds_config import loopback_env  # noqa: E402
from interactvlm_ros.transport.headers import make_header  # noqa: E402
from interactvlm_ros.transport.rclpy_node import OUTPUT_QOS, InteractVLMNode  # noqa: E402

SHIPPED = os.path.join(os.path.dirname(__file__), "..", "..", "config", "interactvlm.yaml")
DOMAIN = 60 + os.getpid() % 40
FRAME = "rclpy_test_optical_frame"


def ros_image(stamp_ns: int, h=48, w=64) -> RosImage:
    msg = RosImage()
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 10**9)
    msg.header.frame_id = FRAME
    msg.height, msg.width, msg.encoding, msg.step = h, w, "rgb8", w * 3
    msg.data = np.random.default_rng(stamp_ns % 2**32).integers(0, 255, h * w * 3, dtype=np.uint8).tobytes()
    return msg


def stamp_of(msg) -> int:
    return msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec


# --- wire bytes <-> rclpy ----------------------------------------------------------------------------------
def test_wire_bytes_are_rclpy_messages():
    probs = np.linspace(0, 1, 50, dtype=np.float32)
    result = ContactResult("anny", 50, [ObjectContact("cup", human_probs=probs)])
    ours = contact_array(result, make_header(1_234_567_890_123, FRAME), 0.5, body_mesh_id="anny:x")
    theirs = deserialize_message(ours.serialize(), ivm_msgs.ContactArray)
    assert stamp_of(theirs) == 1_234_567_890_123 and theirs.header.frame_id == FRAME
    c = theirs.contacts[0]
    assert c.object_label == "cup" and c.body_mesh_id == "anny:x" and c.num_body_vertices == 50
    np.testing.assert_array_equal(np.asarray(c.human_vertex_indices), np.nonzero(probs >= 0.5)[0])
    np.testing.assert_allclose(np.asarray(c.human_probabilities), probs[probs >= 0.5])
    cloud = deserialize_message(contact_cloud(make_header(5, FRAME), np.ones((3, 3)), [0.1, 0.5, 0.9]).serialize(),
                                RosPointCloud2)
    assert [f.name for f in cloud.fields] == ["x", "y", "z", "probability"] and cloud.width == 3
    # and the other way: rclpy's bytes are our wire type
    img = ros_image(42)
    back = wire.Image.deserialize(serialize_message(img))
    assert back.height == 48 and back.encoding == "rgb8" and bytes(back.data) == bytes(img.data)


# --- parameters --------------------------------------------------------------------------------------------
@pytest.fixture
def context():
    ctx = rclpy.Context()
    yield ctx
    rclpy.try_shutdown(context=ctx)


def test_every_parameter_is_declared_with_type_and_doc(context):
    rclpy.init(context=context, args=["test", "--ros-args", "--params-file", SHIPPED, "-p",
                                      "contact.threshold:=0.25", "-p", "objects:=[cup, mug]"],
               domain_id=DOMAIN)
    node = InteractVLMNode(context=context)
    try:
        for p in PARAMETERS:
            d = node.describe_parameter(p.name)
            assert d.description == p.doc, p.name
        d = node.describe_parameter("contact.threshold")
        assert d.floating_point_range[0].from_value == 0.0 and d.floating_point_range[0].to_value == 1.0
        assert "best_effort" in node.describe_parameter("qos.image_reliability").additional_constraints
        cfg = node.read_config()
        assert cfg["contact.threshold"] == 0.25 and cfg["objects"] == ["cup", "mug"]
        assert cfg["qos.image_depth"] == 5
    finally:
        node.destroy_node()


def test_unknown_key_in_parameter_file_fails_configure(context, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("/**:\n  ros__parameters:\n    contact.treshold: 0.3\n")
    rclpy.init(context=context, args=["test", "--ros-args", "--params-file", str(bad)], domain_id=DOMAIN)
    node = InteractVLMNode(context=context)
    try:
        with pytest.raises(ConfigError, match="contact.treshold"):
            node.read_config()
        assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
    finally:
        node.destroy_node()


# --- the lifecycle node end to end -------------------------------------------------------------------------
class Spinner:
    def __init__(self, context, *nodes):
        self.executor = MultiThreadedExecutor(num_threads=4, context=context)
        for n in nodes:
            self.executor.add_node(n)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def stop(self):
        self.executor.shutdown(timeout_sec=5)
        self.thread.join(5)


def wait_for(predicate, timeout=60.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_lifecycle_node_end_to_end(context):
    os.environ["CYCLONEDDS_URI"] = loopback_env()["CYCLONEDDS_URI"]
    rclpy.init(context=context, args=["test", "--ros-args", "--params-file", SHIPPED,
                                      "-p", "model.device:=cpu", "-p", "objects:=[cup, bottle]",
                                      "-p", "node.marker_rate_hz:=0.0", "-p", "node.diagnostics_period_s:=0.2"],
               domain_id=DOMAIN)
    node = InteractVLMNode(context=context)
    peer = rclpy.create_node("rclpy_test_peer", context=context)
    got = {"contacts": [], "cloud": [], "markers": [], "diag": []}
    peer.create_subscription(ivm_msgs.ContactArray, "/interactvlm/contacts", got["contacts"].append, OUTPUT_QOS)
    peer.create_subscription(RosPointCloud2, "/interactvlm/contacts/human_cloud", got["cloud"].append, OUTPUT_QOS)
    peer.create_subscription(RosMarkerArray, "/interactvlm/contacts/markers", got["markers"].append, OUTPUT_QOS)
    peer.create_subscription(DiagnosticArray, "/diagnostics", got["diag"].append, OUTPUT_QOS)
    image_pub = peer.create_publisher(RosImage, "/image", qos_profile_sensor_data)
    objects_pub = peer.create_publisher(RosString, "/interactvlm/objects", OUTPUT_QOS)
    spinner = Spinner(context, node, peer)
    try:
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        assert wait_for(lambda: peer.count_subscribers("/image") >= 1, 20)
        stamp = 1_700_000_000_000_000_123
        image_pub.publish(ros_image(stamp))
        assert wait_for(lambda: any(stamp_of(m) == stamp for m in got["contacts"]), 120), "no ContactArray"
        msg = next(m for m in got["contacts"] if stamp_of(m) == stamp)
        assert msg.header.frame_id == FRAME and [c.object_label for c in msg.contacts] == ["cup", "bottle"]
        assert wait_for(lambda: any(stamp_of(m) == stamp for m in got["cloud"]), 20)
        assert wait_for(lambda: any(m.markers and stamp_of(m.markers[-1]) == stamp for m in got["markers"]), 20)
        # a bad query is refused with a diagnostic; the node keeps serving
        objects_pub.publish(RosString(data="cup\x07"))
        assert wait_for(lambda: any("ignored object query" in s.message for d in got["diag"] for s in d.status), 20)
        bad = ros_image(7)
        bad.step = 10
        image_pub.publish(bad)
        assert wait_for(lambda: any("Image.step" in s.message for d in got["diag"] for s in d.status), 20)
        # invalid UTF-8 in a string (a C++ publisher can send it): rclpy decodes it to U+FFFD; the query and the
        # image (its frame id) are refused as invalid and counted
        from interactvlm_ros.benchmarks.fuzz import fuzz_payloads

        for topic, pub in (("objects", objects_pub), ("image", image_pub)):
            pub.publish(next(p for kind, p in fuzz_payloads(topic, 5) if kind == "bad_utf8"))

        def diag_has(text):
            return any(text in s.message or any(text in kv.value for kv in s.values)
                       for d in got["diag"] for s in d.status)

        assert wait_for(lambda: diag_has("object query contains U+FFFD") and diag_has("frame_id: has U+FFFD"), 20)
        stamp2 = stamp + 10**8
        image_pub.publish(ros_image(stamp2))
        assert wait_for(lambda: any(stamp_of(m) == stamp2 for m in got["contacts"]), 120)
        # deactivate unsubscribes; cleanup frees
        assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
        assert wait_for(lambda: peer.count_subscribers("/image") == 0, 20)
        assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
        assert node.core is None and node.parts is None
    finally:
        spinner.stop()
        peer.destroy_node()
        node.destroy_node()


def test_ros2_param_set_changes_threshold_and_objects_live_and_refuses_reload_parameters(context):
    """``set_parameters`` (what ``ros2 param set`` calls) on the active lifecycle node: live parameters show in
    the next ContactArray; a parameter read at configure is refused with a reason to reconfigure; a bad value is
    refused with the schema's message."""
    from rclpy.parameter import Parameter

    os.environ["CYCLONEDDS_URI"] = loopback_env()["CYCLONEDDS_URI"]
    rclpy.init(context=context, args=["test", "--ros-args", "--params-file", SHIPPED, "-r", "__node:=live_params",
                                      "-p", "model.device:=cpu", "-p", "objects:=[cup]",
                                      "-p", "node.marker_rate_hz:=0.0"], domain_id=DOMAIN + 20)
    node = InteractVLMNode(context=context)
    peer = rclpy.create_node("rclpy_live_peer", context=context)
    contacts = []
    peer.create_subscription(ivm_msgs.ContactArray, "/live_params/contacts", contacts.append, OUTPUT_QOS)
    image_pub = peer.create_publisher(RosImage, "/image", qos_profile_sensor_data)
    spinner = Spinner(context, node, peer)

    def answer(stamp):
        image_pub.publish(ros_image(stamp))
        assert wait_for(lambda: any(stamp_of(m) == stamp for m in contacts), 120), "no ContactArray"
        return next(m for m in contacts if stamp_of(m) == stamp)

    try:
        # unconfigured: anything valid may be set (configure reads it)
        assert node.set_parameters([Parameter("model.precision", value="fp32")])[0].successful
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        assert wait_for(lambda: peer.count_subscribers("/image") >= 1, 20)
        msg = answer(1_700_000_000_000_000_001)
        assert [c.object_label for c in msg.contacts] == ["cup"] and msg.contacts[0].threshold == pytest.approx(0.5)
        results = node.set_parameters_atomically([Parameter("contact.threshold", value=0.9),
                                                  Parameter("objects", value=["bottle", "cup"])])
        assert results.successful, results.reason
        msg = answer(1_700_000_000_000_000_002)
        assert [c.object_label for c in msg.contacts] == ["bottle", "cup"]
        assert all(c.threshold == pytest.approx(0.9) for c in msg.contacts)
        assert all(min(c.human_probabilities, default=1.0) >= 0.9 for c in msg.contacts)
        # read at configure: refused while configured, with the way to change it
        refused = node.set_parameters([Parameter("model.device", value="cuda")])[0]
        assert not refused.successful and "'model.device'" in refused.reason and "cleanup" in refused.reason
        assert node.get_parameter("model.device").value == "cpu"
        bad = node.set_parameters([Parameter("model.device", value="gpu")])[0]
        assert not bad.successful and "expects one of 'auto', 'cpu', 'cuda', got 'gpu'" in bad.reason
        too_many = node.set_parameters([Parameter("objects", value=[f"o{i}" for i in range(9)])])[0]
        assert not too_many.successful and "node.max_objects" in too_many.reason
        assert node.cfg.objects.names == ("bottle", "cup")
        # after cleanup the refused parameter may be set, and configure uses it
        assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
        assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
        assert node.set_parameters([Parameter("model.answer", value="Sure, [SEG].")])[0].successful
        assert node.read_config().model.answer == "Sure, [SEG]." and node.read_config().contact.threshold == 0.9
    finally:
        spinner.stop()
        peer.destroy_node()
        node.destroy_node()


# --- the dds transport seen from ROS 2 ---------------------------------------------------------------------
def test_ros2_subscriber_receives_dds_transport_outputs(context, tmp_path):
    domain = DOMAIN + 50
    env = loopback_env(domain_id=domain)
    os.environ["CYCLONEDDS_URI"] = env["CYCLONEDDS_URI"]
    log = tmp_path / "node.log"
    cmd = [sys.executable, "-m", "interactvlm_ros", "node", "--transport", "dds", "--set", "model.device=cpu",
           "--set", "objects=[cup, bottle]", "--set", f"dds.domain_id={domain}"]
    proc = subprocess.Popen(cmd, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    rclpy.init(context=context, args=["test"], domain_id=domain)
    peer = rclpy.create_node("ros2_peer_of_dds_node", context=context)
    got = {"contacts": [], "cloud": [], "topology": []}
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

    latched = QoSProfile(depth=16, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)
    peer.create_subscription(ivm_msgs.ContactArray, "/interactvlm/contacts", got["contacts"].append, OUTPUT_QOS)
    peer.create_subscription(RosPointCloud2, "/interactvlm/contacts/human_cloud", got["cloud"].append, OUTPUT_QOS)
    peer.create_subscription(ivm_msgs.MeshTopology, "/interactvlm/contacts/topology", got["topology"].append,
                             latched)
    image_pub = peer.create_publisher(RosImage, "/image", qos_profile_sensor_data)
    spinner = Spinner(context, peer)
    try:
        assert wait_for(lambda: got["topology"], 300), log.read_text()[-2000:]
        assert any(t.kind == "body" and t.mesh_id.startswith("anny:") for t in got["topology"])
        assert wait_for(lambda: peer.count_subscribers("/image") >= 1, 20)
        types = dict(peer.get_topic_names_and_types())
        assert types["/interactvlm/contacts"] == ["interactvlm_msgs/msg/ContactArray"]
        info = peer.get_publishers_info_by_topic("/interactvlm/contacts")
        assert info and str(info[0].topic_type_hash).startswith("RIHS01_") and "0000000000" not in str(
            info[0].topic_type_hash)
        stamp = 1_700_000_000_500_000_000
        image_pub.publish(ros_image(stamp))
        assert wait_for(lambda: any(stamp_of(m) == stamp for m in got["contacts"]), 120), log.read_text()[-2000:]
        assert wait_for(lambda: any(stamp_of(m) == stamp for m in got["cloud"]), 20)
        assert next(m for m in got["contacts"] if stamp_of(m) == stamp).header.frame_id == FRAME
    finally:
        spinner.stop()
        peer.destroy_node()
        proc.terminate()
        proc.wait(30)
