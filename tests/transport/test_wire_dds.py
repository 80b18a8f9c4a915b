"""Real DDS on loopback: an Image published by another process arrives byte-exact, with the ROS type hash in the
writer's USER_DATA. Cyclone is pinned to ``lo`` (no multicast, peer 127.0.0.1) via ``dds_config``."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from interactvlm_ros.transport.dds_config import (
    domain_id_from_env,
    loopback_domain,
    loopback_env,
    loopback_uri,
    ros_topic,
)

PUBLISHER = textwrap.dedent("""
    import sys, time
    import numpy as np
    from cyclonedds.domain import DomainParticipant
    from cyclonedds.pub import DataWriter
    from cyclonedds.qos import Policy, Qos
    from cyclonedds.topic import Topic
    from cyclonedds.util import duration
    from interactvlm_ros.transport.dds_config import domain_id_from_env
    from interactvlm_ros.transport.image_codec import encode_image
    from interactvlm_ros.transport.headers import make_header
    from interactvlm_ros.transport.msgs import Image
    from interactvlm_ros.transport.typehash import typehash_policy

    dp = DomainParticipant(domain_id_from_env())
    qos = Qos(Policy.Reliability.Reliable(duration(milliseconds=100)), Policy.History.KeepLast(10),
              typehash_policy(Image))
    writer = DataWriter(dp, Topic(dp, "rt/interactvlm_test/image", Image), qos=qos)
    pixels = (np.arange(480 * 640 * 3) % 251).astype(np.uint8).reshape(480, 640, 3)
    deadline = time.monotonic() + float(sys.argv[1])
    i = 0
    while time.monotonic() < deadline:
        writer.write(encode_image(pixels, "rgb8", make_header(1_000_000_000 + i, "camera_optical_frame")))
        i += 1
        time.sleep(0.05)
""")


def test_loopback_config_pins_lo():
    uri = loopback_uri()
    assert '<NetworkInterface name="lo" multicast="false"/>' in uri
    assert "<AllowMulticast>false</AllowMulticast>" in uri
    assert '<Peer address="127.0.0.1"/>' in uri and "<ParticipantIndex>auto</ParticipantIndex>" in uri
    env = loopback_env({"PATH": "/bin"}, domain_id=42)
    assert env["CYCLONEDDS_URI"] == uri and env["ROS_DOMAIN_ID"] == "42" and env["PATH"] == "/bin"
    assert ros_topic("/camera/image") == "rt/camera/image"
    with pytest.raises(ValueError, match="not absolute"):
        ros_topic("~/contacts")
    assert domain_id_from_env(5) == 5


def test_image_between_two_processes():
    from cyclonedds.builtin import BuiltinDataReader, BuiltinTopicDcpsPublication
    from cyclonedds.domain import DomainParticipant
    from cyclonedds.qos import Policy, Qos
    from cyclonedds.sub import DataReader
    from cyclonedds.topic import Topic
    from cyclonedds.util import duration

    from interactvlm_ros.transport.image_codec import decode_image
    from interactvlm_ros.transport.msgs import Image
    from interactvlm_ros.transport.typehash import parse_user_data, type_hash, typehash_policy

    domain = 150 + os.getpid() % 80  # private domain: parallel test runs do not see each other
    keep = loopback_domain(domain)
    dp = DomainParticipant(domain)
    qos = Qos(Policy.Reliability.Reliable(duration(milliseconds=100)), Policy.History.KeepLast(10),
              typehash_policy(Image))
    reader = DataReader(dp, Topic(dp, "rt/interactvlm_test/image", Image), qos=qos)
    pub = subprocess.Popen([sys.executable, "-c", PUBLISHER, "20"], env=loopback_env(domain_id=domain),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        sample = next(iter(reader.take_iter(timeout=duration(seconds=20))), None)
        assert sample is not None, "no Image received over loopback DDS within 20 s"
        assert sample.header.frame_id == "camera_optical_frame" and sample.header.stamp.sec == 1
        assert (sample.height, sample.width, sample.encoding, sample.step) == (480, 640, "rgb8", 1920)
        expected = (np.arange(480 * 640 * 3) % 251).astype(np.uint8)
        np.testing.assert_array_equal(sample.data, expected)
        np.testing.assert_array_equal(decode_image(sample).reshape(-1), expected)
        pubs = [p for p in BuiltinDataReader(dp, BuiltinTopicDcpsPublication).take(N=64)
                if p.topic_name == "rt/interactvlm_test/image"]
        assert pubs and pubs[0].type_name == "sensor_msgs::msg::dds_::Image_"
        assert parse_user_data(pubs[0].qos[Policy.Userdata].data) == type_hash("sensor_msgs/msg/Image")
    finally:
        pub.kill()
        pub.wait(10)
        del reader, dp, keep
