"""``interactvlm bag``: rosbag2 (MCAP and sqlite3) in, MCAP bag with inputs and every output topic out, read back
by rosbags and by the mcap reader (mcap-ros2-support decoder); Ctrl-C leaves a valid bag or nothing."""

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from rosbags.highlevel import AnyReader
from rosbags.interfaces import QosDurability
from rosbags.rosbag2 import StoragePlugin, Writer

from interactvlm_ros.bag.process import output_topics, process_bag
from interactvlm_ros.bag.reader import BagReadError, InputBag
from interactvlm_ros.bag.writer import AtomicBagWriter, BagWriteError
from interactvlm_ros.config import load_config
from interactvlm_ros.transport import msgs as wire
from interactvlm_ros.transport.headers import make_header
from interactvlm_ros.transport.image_codec import encode_image
from interactvlm_ros.transport.typestore import typestore

T0 = 1_700_000_000_000_000_000
IMAGE_TOPIC = "/camera/color/image_raw"


def make_input_bag(path: Path, frames: int, storage: StoragePlugin, size=(48, 64)) -> None:
    """A bag like a camera driver records: colour images, camera info and a depth image topic."""
    store = typestore()
    rng = np.random.default_rng(0)
    with Writer(path, version=9, storage_plugin=storage) as w:
        img = w.add_connection(IMAGE_TOPIC, "sensor_msgs/msg/Image", typestore=store)
        info = w.add_connection("/camera/color/camera_info", "sensor_msgs/msg/CameraInfo", typestore=store)
        depth = w.add_connection("/camera/depth/image_raw", "sensor_msgs/msg/Image", typestore=store)
        for i in range(frames):
            t = T0 + i * 100_000_000
            hdr = make_header(t, "camera_color_optical_frame")
            w.write(img, t, encode_image(rng.integers(0, 256, (*size, 3), dtype=np.uint8), "rgb8", hdr).serialize())
            w.write(info, t, wire.CameraInfo(header=hdr, height=size[0], width=size[1],
                                             k=[50.0, 0, 32, 0, 50, 24, 0, 0, 1]).serialize())
            w.write(depth, t, encode_image(np.full(size, 1500, np.uint16), "16UC1", hdr).serialize())


@pytest.fixture(scope="module")
def cfg():
    return load_config(None)


@pytest.fixture(scope="module")
def components(cfg):
    from interactvlm_ros.node.components import NodeComponents

    return NodeComponents.from_config(cfg)


def _read_rosbags(path: Path):
    out = {}
    with AnyReader([path]) as reader:
        conns = {c.topic: c for c in reader.connections}
        for conn, t, raw in reader.messages():
            out.setdefault(conn.topic, []).append((t, reader.deserialize(raw, conn.msgtype)))
    return conns, out


@pytest.mark.slow
@pytest.mark.parametrize("storage,out_name", [(StoragePlugin.MCAP, "out.mcap"), (StoragePlugin.SQLITE3, "outbag")])
def test_bag_round_trip(tmp_path, cfg, components, storage, out_name):
    src = tmp_path / "in"
    make_input_bag(src, 3, storage)
    frames = []
    report = process_bag(cfg, src, tmp_path / out_name, objects=["bottle", "chair"], components=components,
                         on_frame=lambda done, failed: frames.append((done, failed)))
    assert (report.images, report.processed, report.failed, report.interrupted) == (3, 3, 0, False)
    assert frames == [(1, 0), (2, 0), (3, 0)]
    out = tmp_path / out_name
    assert out.is_file() == out_name.endswith(".mcap")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left behind
    names = output_topics(cfg)

    conns, msgs = _read_rosbags(out)
    assert len(msgs[IMAGE_TOPIC]) == 3 and len(msgs["/camera/depth/image_raw"]) == 3  # inputs copied
    contacts = msgs[names["contacts"]]
    assert len(contacts) == 3
    for (t, arr), (t_img, img) in zip(contacts, msgs[IMAGE_TOPIC], strict=True):
        assert t == t_img and arr.header == img.header  # outputs carry the image header, logged at its time
        assert [c.object_label for c in arr.contacts] == ["bottle", "chair"]
        for c in arr.contacts:
            assert c.body_model == components.body.name and c.num_body_vertices == components.body.num_vertices
            assert c.body_mesh_id == components.body.mesh_id
            assert np.all(c.human_vertex_indices < c.num_body_vertices)
    topo = {m.mesh_id: m for _t, m in msgs[names["topology"]]}
    assert len(topo) == len(msgs[names["topology"]])  # each mesh once (latched)
    body = topo[components.body.mesh_id]
    assert body.kind == "body" and body.num_vertices == components.body.num_vertices
    for c in (c for _t, arr in contacts for c in arr.contacts if c.object_mesh_id):
        assert topo[c.object_mesh_id].kind == "object"  # object meshes are published before use
    assert conns[names["topology"]].ext.offered_qos_profiles[0].durability == QosDurability.TRANSIENT_LOCAL
    assert conns[names["contacts"]].ext.offered_qos_profiles[0].durability == QosDurability.VOLATILE
    for key in ("markers", "human_cloud", "object_cloud"):
        assert len(msgs[names[key]]) == 3
    assert msgs[names["diagnostics"]]
    marker = msgs[names["markers"]][0][1].markers[1]
    assert marker.type == 11 and len(marker.points) == 3 * len(components.body.faces)

    # the mcap library with mcap-ros2-support decodes every message from the schemas in the file
    mcap_file = out if out.is_file() else next(out.glob("*.mcap"))
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    with open(mcap_file, "rb") as f:
        reader = make_reader(f, decoder_factories=[DecoderFactory()])
        decoded = {}
        for _schema, channel, _msg, dec in reader.iter_decoded_messages():
            decoded.setdefault(channel.topic, []).append(dec)
        summary = reader.get_summary()
    assert {k: len(v) for k, v in decoded.items()} == {k: len(v) for k, v in msgs.items()}
    assert decoded[names["contacts"]][0].contacts[0].object_label == "bottle"
    np.testing.assert_array_equal(decoded[names["contacts"]][1].contacts[1].human_vertex_indices,
                                  msgs[names["contacts"]][1][1].contacts[1].human_vertex_indices)
    assert {s.name for s in summary.schemas.values()} >= {"interactvlm_msgs/msg/ContactArray",
                                                          "interactvlm_msgs/msg/MeshTopology"}
    if not out.is_file():
        assert (out / "metadata.yaml").is_file()


def make_compressed_bag(path: Path, frames: int, size=(48, 64), corrupt=()) -> list[np.ndarray]:
    """A bag as robots record it: JPEG colour images (image_transport ``compressed``), camera info and
    ``compressedDepth`` depth; frame indices in ``corrupt`` get a truncated JPEG. Returns the RGB images."""
    from interactvlm_ros.transport.image_codec import encode_compressed_depth, encode_compressed_image

    store = typestore()
    rng = np.random.default_rng(1)
    images = []
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as w:
        img = w.add_connection(IMAGE_TOPIC + "/compressed", "sensor_msgs/msg/CompressedImage", typestore=store)
        info = w.add_connection("/camera/color/camera_info", "sensor_msgs/msg/CameraInfo", typestore=store)
        depth = w.add_connection("/camera/depth/image_raw/compressedDepth", "sensor_msgs/msg/CompressedImage",
                                 typestore=store)
        for i in range(frames):
            t = T0 + i * 100_000_000
            hdr = make_header(t, "camera_color_optical_frame")
            rgb = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
            images.append(rgb)
            msg = encode_compressed_image(rgb, "jpeg", "rgb8", hdr)
            if i in corrupt:
                msg.data = bytes(msg.data)[:200]
            w.write(img, t, msg.serialize())
            w.write(info, t, wire.CameraInfo(header=hdr, height=size[0], width=size[1],
                                             k=[50.0, 0, 32, 0, 50, 24, 0, 0, 1]).serialize())
            w.write(depth, t, encode_compressed_depth(np.full(size, 1500, np.uint16), hdr).serialize())
    return images


@pytest.mark.slow
def test_bag_with_compressed_images_is_processed(tmp_path, cfg, components):
    src = tmp_path / "in"
    make_compressed_bag(src, 3, corrupt=(1,))
    topic = IMAGE_TOPIC + "/compressed"
    with InputBag(src) as bag:  # compressedDepth has "depth" in its name: not a colour topic
        assert bag.image_topics() == [topic, "/camera/depth/image_raw/compressedDepth"]
        assert bag.select_image_topics() == [topic]
    report = process_bag(cfg, src, tmp_path / "out.mcap", objects=["bottle"], components=components)
    assert (report.images, report.processed, report.failed) == (3, 2, 1)  # the truncated JPEG is dropped
    names = output_topics(cfg)
    _conns, msgs = _read_rosbags(tmp_path / "out.mcap")
    assert len(msgs[topic]) == 3 and len(msgs["/camera/depth/image_raw/compressedDepth"]) == 3  # inputs copied
    contacts = msgs[names["contacts"]]
    images = [m for _t, m in msgs[topic]]
    assert [(t, arr.header) for t, arr in contacts] == [(T0, images[0].header), (T0 + 200_000_000, images[2].header)]
    assert [c.object_label for _t, arr in contacts for c in arr.contacts] == ["bottle", "bottle"]
    diag = {kv.key: kv.value for kv in msgs[names["diagnostics"]][-1][1].status[0].values}
    assert diag["image_dropped_invalid"] == "1"
    assert "sensor_msgs/CompressedImage.data" in diag["image_last_drop"] and "JPEG" in diag["image_last_drop"]


def test_compressed_copy_of_a_raw_topic_is_not_processed_twice(tmp_path):
    src = tmp_path / "in"
    store = typestore()
    with Writer(src, version=9, storage_plugin=StoragePlugin.MCAP) as w:
        conns = [w.add_connection(IMAGE_TOPIC, "sensor_msgs/msg/Image", typestore=store),
                 w.add_connection(IMAGE_TOPIC + "/compressed", "sensor_msgs/msg/CompressedImage", typestore=store),
                 w.add_connection("/wrist/image/compressed", "sensor_msgs/msg/CompressedImage", typestore=store)]
        for c in conns:
            msg = (encode_image(np.zeros((4, 4, 3), np.uint8), "rgb8") if c.msgtype.endswith("/Image")
                   else wire.CompressedImage(format="jpeg", data=b"\xff\xd8\xff"))
            w.write(c, T0, msg.serialize())
    with InputBag(src) as bag:
        assert bag.select_image_topics() == [IMAGE_TOPIC, "/wrist/image/compressed"]
        assert bag.select_image_topics([IMAGE_TOPIC + "/compressed"]) == [IMAGE_TOPIC + "/compressed"]


@pytest.mark.slow
def test_stop_before_first_frame_writes_nothing(tmp_path, cfg, components):
    make_input_bag(tmp_path / "in", 2, StoragePlugin.MCAP)
    stop = threading.Event()
    stop.set()
    report = process_bag(cfg, tmp_path / "in", tmp_path / "out.mcap", components=components, stop=stop)
    assert report.out is None and report.interrupted
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


def test_reader_and_writer_errors(tmp_path):
    with pytest.raises(BagReadError, match="does not exist"):
        InputBag(tmp_path / "missing")
    make_input_bag(tmp_path / "in", 1, StoragePlugin.MCAP)
    with InputBag(tmp_path / "in") as bag:
        assert bag.image_topics() == ["/camera/color/image_raw", "/camera/depth/image_raw"]
        assert bag.select_image_topics() == [IMAGE_TOPIC]
        with pytest.raises(BagReadError, match=r"no image topic \(sensor_msgs/msg/Image or CompressedImage\) /nope"):
            bag.select_image_topics(["/nope"])
    (tmp_path / "exists.mcap").write_bytes(b"x")
    with pytest.raises(BagWriteError, match="exists"):
        AtomicBagWriter(tmp_path / "exists.mcap")
    with pytest.raises(BagWriteError, match="does not exist"):
        AtomicBagWriter(tmp_path / "no" / "such.mcap")
    w = AtomicBagWriter(tmp_path / "aborted.mcap")
    conn = w.add_topic("/x", "std_msgs/msg/String")
    w.write(conn, 1, wire.String(data="a").serialize())
    w.abort()
    assert not (tmp_path / "aborted.mcap").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.slow
def test_sigint_mid_run_leaves_a_valid_bag(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out.mcap"
    frames = 400  # far more than it can process before the interrupt, at any speed
    make_input_bag(src, frames, StoragePlugin.MCAP)
    proc = subprocess.Popen([sys.executable, "-m", "interactvlm_ros", "bag", str(src), "--out", str(out),
                             "--objects", "bottle,chair"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    seen = []

    def watch():  # tqdm writes "n/40" on stderr as frames complete
        buf = b""
        while True:
            chunk = proc.stderr.read1(4096) if hasattr(proc.stderr, "read1") else proc.stderr.read(1)
            if not chunk:
                return
            buf += chunk
            seen.append(buf)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        # tqdm redraws at most every 0.1 s, so "2/N" itself may never be printed: any count >= 2 will do
        done = [int(n) for n in re.findall(rb"(\d+)/%d" % frames, seen[-1])] if seen else []
        if done and max(done) >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"finished before it could be interrupted: {seen[-1] if seen else b''!r}"
    proc.send_signal(signal.SIGINT)
    rc = proc.wait(120)
    t.join(5)
    log = (seen[-1] if seen else b"").decode(errors="replace")[-2000:]
    assert rc == 130, log
    assert out.is_file(), log
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    names = output_topics(load_config(None))
    _conns, msgs = _read_rosbags(out)
    images, contacts = len(msgs[IMAGE_TOPIC]), len(msgs[names["contacts"]])
    assert 2 <= contacts < frames and contacts == images, (contacts, images, log)  # each image has outputs
    from mcap.reader import make_reader

    with open(out, "rb") as f:
        assert make_reader(f).get_summary().statistics.message_count > 0  # complete file: summary present
