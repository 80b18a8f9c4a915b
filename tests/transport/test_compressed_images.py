"""Camera topics as image_transport does them: CompressedImage (``compressed``: JPEG and PNG; ``compressedDepth``:
16-bit PNG after the plugin's 12-byte header) decodes to the values the raw image gives, bad or oversized
compressed data is refused with a reason (before decompressing), topic names follow image_transport (camera info
on the image's sibling, ``<image>/compressed``), and the node takes compressed frames and keeps answering after
bad ones.

Real codecs (Pillow's JPEG/PNG), real messages (our wire types, round-tripped through CDR and through rosbags'
independent CDR), the real tiny model in an in-process node.
"""

import io
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image as PILImage

from interactvlm_ros.config import load_config
from interactvlm_ros.transport import endpoints
from interactvlm_ros.transport.dds import resolve_topic
from interactvlm_ros.transport.errors import MessageError
from interactvlm_ros.transport.headers import make_header
from interactvlm_ros.transport.image_codec import (
    COMPRESSED_DEPTH_HEADER,
    decode_compressed_depth,
    decode_compressed_image,
    decode_depth,
    decode_image,
    encode_compressed_depth,
    encode_compressed_image,
    encode_image,
)

pytest.importorskip("cyclonedds", reason="the message types need cyclonedds")
from interactvlm_ros.transport import msgs as wire

STAMP = 1_700_000_000 * 10**9


def smooth_rgb(h=48, w=64, seed=0):
    """A photo-like image (smooth gradients and blobs), where JPEG error is small."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    rng = np.random.default_rng(seed)
    chans = [127 + 100 * np.sin(x / w * np.pi * rng.uniform(1, 3) + rng.uniform(0, 6)) *
             np.cos(y / h * np.pi * rng.uniform(1, 3)) for _ in range(3)]
    return np.clip(np.stack(chans, axis=2), 0, 255).astype(np.uint8)


def cdr(msg):
    """What a subscriber receives: our CDR bytes decoded by our wire type and, independently, by rosbags."""
    from interactvlm_ros.transport.typestore import typestore

    raw = msg.serialize()
    theirs = typestore().deserialize_cdr(raw, "sensor_msgs/msg/CompressedImage")
    assert theirs.format == msg.format and bytes(theirs.data) == bytes(msg.data)
    return type(msg).deserialize(raw), theirs


def png_bytes(array, **kw):
    buf = io.BytesIO()
    PILImage.fromarray(array).save(buf, format="PNG", **kw)
    return buf.getvalue()


# --- compressed (JPEG / PNG) ---------------------------------------------------------------------------------

def test_jpeg_round_trip_is_the_rgb_within_jpeg_tolerance():
    rgb = smooth_rgb()
    msg = encode_compressed_image(rgb, "jpeg", "rgb8", make_header(STAMP, "cam"), quality=95)
    assert msg.format == "rgb8; jpeg compressed bgr8"  # as compressed_image_transport writes an rgb8 image
    assert bytes(msg.data)[:3] == b"\xff\xd8\xff"
    for received in cdr(msg):
        out = decode_compressed_image(received)
        assert out.dtype == np.uint8 and out.shape == rgb.shape
        err = np.abs(out.astype(int) - rgb.astype(int))
        assert err.mean() < 2.0 and err.max() <= 24, (err.mean(), err.max())


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8"])
def test_png_round_trip_is_exact_and_equals_the_raw_decode(encoding):
    rgb = smooth_rgb(seed=1)
    raw_pixels = {"rgb8": rgb, "bgr8": rgb[..., ::-1],
                  "rgba8": np.concatenate([rgb, np.full((*rgb.shape[:2], 1), 255, np.uint8)], axis=2)}[encoding]
    raw = encode_image(raw_pixels, encoding)
    msg = encode_compressed_image(rgb, "png", encoding)
    assert msg.format == f"{encoding}; png compressed bgr8"
    for received in cdr(msg):
        assert np.array_equal(decode_compressed_image(received), decode_image(raw))


def test_grey_and_16_bit_png_and_older_formats():
    grey = smooth_rgb(seed=2)[..., 0]
    msg = encode_compressed_image(grey, "png", "mono8")
    assert msg.format == "mono8; png compressed "  # the plugin adds no target for grey PNG
    assert np.array_equal(decode_compressed_image(msg), np.repeat(grey[..., None], 3, axis=2))
    jpeg_grey = decode_compressed_image(encode_compressed_image(grey, "jpeg", "mono8"))
    assert np.abs(jpeg_grey[..., 0].astype(int) - grey).mean() < 2 and np.array_equal(jpeg_grey[..., 0],
                                                                                      jpeg_grey[..., 2])
    mono16 = (grey.astype(np.uint16) * 257 + 7).astype(np.uint16)  # 16-bit grey PNG: mono16 as the plugin sends it
    msg16 = wire.CompressedImage(format="mono16; png compressed ", data=png_bytes(mono16))
    assert np.array_equal(decode_compressed_image(msg16), decode_image(encode_image(mono16, "mono16")))
    rgb = smooth_rgb(seed=3)
    # older publishers / other tools: just "png" (natural colours)
    assert np.array_equal(decode_compressed_image(wire.CompressedImage(format="png", data=png_bytes(rgb))), rgb)
    # releases before the bgr8 target wrote an rgb8 array as if it were bgr: the plugin's subscriber swaps back
    swapped = wire.CompressedImage(format="rgb8; png compressed rgb8",
                                   data=png_bytes(np.ascontiguousarray(rgb[..., ::-1])))
    assert np.array_equal(decode_compressed_image(swapped), rgb)


@pytest.mark.parametrize("data,fmt,pattern", [
    (b"", "jpeg", "empty"),
    (b"GIF89a" + bytes(40), "png", "neither a JPEG nor a PNG"),
    (b"\x89PNG\r\n\x1a\n" + bytes(30), "png", "unreadable PNG header"),
    (None, "rgb8; jpeg compressed bgr8", "corrupt JPEG data"),  # a JPEG cut in half
    (None, "16UC1; compressedDepth png", "compressedDepth depth image, not a colour image"),
    (None, "rgb8; tiff compressed bgr8", "tiff is not supported"),
    (None, "16UC1; jpeg compressed mono8", "depth encoding"),
])
def test_bad_compressed_images_raise_message_error(data, fmt, pattern):
    if data is None:
        full = bytes(encode_compressed_image(smooth_rgb(), "jpeg").data)
        data = full[: len(full) // 2]
    with pytest.raises(MessageError, match=pattern) as err:
        decode_compressed_image(wire.CompressedImage(format=fmt, data=data))
    assert isinstance(err.value, ValueError) and str(err.value).startswith("sensor_msgs/CompressedImage.")


def png_bomb(width, height):
    """A valid grey PNG of ``width x height`` zeros: a few hundred kB that decompress to ``width * height`` bytes."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    z = zlib.compressobj(9)
    row = bytes(width + 1)  # filter byte + pixels
    idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def test_decompression_bomb_is_refused_from_the_header_before_decompressing():
    bomb = png_bomb(5000, 5000)  # 25 M pixels in ~25 kB
    assert len(bomb) < 100_000
    msg = wire.CompressedImage(format="mono8; png compressed ", data=bomb)
    with pytest.raises(MessageError, match=r"PNG header declares 5000x5000 = 25000000 pixels, over the limit of "
                                           r"16777216 \(node.max_image_pixels\): not decompressed"):
        decode_compressed_image(msg, max_pixels=16_777_216)
    # the same file under a limit that allows it really is that large (it is a bomb, not a broken file)
    assert decode_compressed_image(msg, max_pixels=25_000_000).shape == (5000, 5000, 3)
    # a JPEG whose frame header claims 60000x60000 is refused the same way
    jpeg = bytearray(bytes(encode_compressed_image(smooth_rgb(), "jpeg").data))
    sof = jpeg.index(b"\xff\xc0")
    jpeg[sof + 5: sof + 9] = struct.pack(">HH", 60000, 60000)
    with pytest.raises(MessageError, match="JPEG header declares 60000x60000 = 3600000000 pixels"):
        decode_compressed_image(wire.CompressedImage(format="rgb8; jpeg compressed bgr8", data=bytes(jpeg)))
    # compressedDepth: the PNG after the 12-byte header is checked the same way
    depth_bomb = COMPRESSED_DEPTH_HEADER.pack(0, 0.0, 0.0) + png_bomb(5000, 5000)
    with pytest.raises(MessageError, match="over the limit of 1000000"):
        decode_compressed_depth(wire.CompressedImage(format="16UC1; compressedDepth png", data=depth_bomb),
                                max_pixels=1_000_000)


# --- compressedDepth -------------------------------------------------------------------------------------------

def test_compressed_depth_16uc1_png_is_millimetres_to_metres_like_the_raw_image():
    mm = np.random.default_rng(0).integers(300, 9000, (48, 64)).astype(np.uint16)
    mm[:5, :5] = 0  # no measurement
    msg = encode_compressed_depth(mm, make_header(STAMP, "depth"))
    assert msg.format == "16UC1; compressedDepth png"
    data = bytes(msg.data)
    assert struct.unpack("<i", data[:4]) == (0,) and data[12:20] == b"\x89PNG\r\n\x1a\n"  # ConfigHeader, then PNG
    for received in cdr(msg):
        depth = decode_compressed_depth(received)
        expected = decode_depth(encode_image(mm, "16UC1"))
        assert depth.dtype == np.float32 and depth.shape == (48, 64)
        np.testing.assert_array_equal(np.isnan(depth), np.isnan(expected))
        np.testing.assert_allclose(depth[~np.isnan(depth)], expected[~np.isnan(expected)], rtol=1e-6)
    assert np.all(np.isnan(decode_compressed_depth(msg)[:5, :5]))


def test_compressed_depth_32fc1_inverse_depth_quantisation():
    metres = np.random.default_rng(1).uniform(0.4, 6.0, (48, 64)).astype(np.float32)
    metres[0, :4] = np.nan
    metres[1, :4] = 12.0  # beyond the plugin's depth_max (10 m): no measurement
    depth = decode_compressed_depth(encode_compressed_depth(metres))
    valid = np.isfinite(metres) & (metres < 10)
    assert np.all(np.isnan(depth[~valid])) and np.all(np.isfinite(depth[valid]))
    # quantisation step of inverse depth with depth_quantization 100: about d^2 / 10100 m
    assert np.all(np.abs(depth[valid] - metres[valid]) <= metres[valid] ** 2 / 10100 + 1e-4)


@pytest.mark.parametrize("data,fmt,pattern", [
    (bytes(12), "16UC1; compressedDepth png", "no PNG after the 12-byte compressedDepth header"),
    (bytes(12) + b"\x89PNG\r\n\x1a\n" + bytes(20), "16UC1; compressedDepth png", "unreadable PNG header"),
    (bytes(12) + b"x" * 40, "16UC1; compressedDepth rvl", "RVL is not supported"),
    (bytes(12) + b"x" * 40, "rgb8; jpeg compressed bgr8", "not a compressedDepth image"),
    (bytes(12) + b"x" * 40, "bgr8; compressedDepth png", "depth encoding 'bgr8' is not supported"),
    (None, "16UC1; compressedDepth png", "needs a 16-bit grey PNG"),
])
def test_bad_compressed_depth_raises_message_error(data, fmt, pattern):
    if data is None:
        data = bytes(12) + png_bytes(np.zeros((4, 4), np.uint8))
    with pytest.raises(MessageError, match=pattern):
        decode_compressed_depth(wire.CompressedImage(format=fmt, data=data))


# --- topic names as image_transport --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dds_participant():
    import os

    from interactvlm_ros.transport.dds import DdsParticipant
    from interactvlm_ros.transport.dds_config import loopback_domain

    domain_id = 100 + (os.getpid() + 37) % 100
    domain = loopback_domain(domain_id)  # noqa: F841 - kept alive while the participant exists
    participant = DdsParticipant(domain_id)
    yield participant
    participant.close()


@pytest.mark.parametrize("settings,namespace,expected", [
    ([], "", {"image": "/image", "camera_info": "/camera_info"}),
    (["topics.image=/camera/color/image_raw"], "",
     {"image": "/camera/color/image_raw", "camera_info": "/camera/color/camera_info"}),
    (["topics.image=/camera/color/image_raw", "topics.image_transport=compressed"], "",
     {"image": "/camera/color/image_raw/compressed", "camera_info": "/camera/color/camera_info"}),
    (["topics.image=color/image_raw"], "/robot/front",
     {"image": "/robot/front/color/image_raw", "camera_info": "/robot/front/color/camera_info"}),
    (["topics.image=~/image", "topics.image_transport=compressed"], "/robot",
     {"image": "/robot/interactvlm/image/compressed", "camera_info": "/robot/interactvlm/camera_info"}),
    (["topics.image=/camera/color/image_raw", "topics.camera_info=/calib/info"], "",
     {"image": "/camera/color/image_raw", "camera_info": "/calib/info"}),
    (["topics.image=/camera/color/image_raw", "topics.camera_info=''"], "", {"image": "/camera/color/image_raw"}),
    (["topics.depth=/camera/depth/image_raw", "topics.depth_transport=compressedDepth"], "",
     {"image": "/image", "camera_info": "/camera_info", "depth": "/camera/depth/image_raw/compressedDepth"}),
])
def test_input_topics_follow_image_transport(dds_participant, settings, namespace, expected):
    from interactvlm_ros.transport.dds import DdsTransport

    cfg = load_config(None, [*settings, f"node.namespace='{namespace}'"])
    transport = DdsTransport(cfg, dds_participant)  # the real transport's names (no reader or writer yet)
    names = {e.key: transport.names[e.key] for e in endpoints.inputs(cfg) if e.key != "objects"}
    assert names == expected
    types = {e.key: e.ros_type for e in endpoints.inputs(cfg)}
    assert types["image"] == ("sensor_msgs/msg/CompressedImage" if "compressed" in expected["image"]
                              else "sensor_msgs/msg/Image")
    if "depth" in expected:
        assert types["depth"] == "sensor_msgs/msg/CompressedImage"


def test_camera_info_sibling_rule():
    assert endpoints.camera_info_sibling("/camera/color/image_raw") == "/camera/color/camera_info"
    assert endpoints.camera_info_sibling("image") == "camera_info"
    assert endpoints.camera_info_sibling("/image") == "/camera_info"
    assert endpoints.camera_info_sibling("~/image") == "~/camera_info"
    cfg = load_config(None, ["topics.image=/cam/image_raw"])
    assert cfg.topics.camera_info == endpoints.CAMERA_INFO_SIBLING == "auto"  # the default
    assert endpoints.input_topic(cfg, "camera_info") == "/cam/camera_info"
    # the sibling is taken from the resolved (remapped) image topic, as image_transport's CameraSubscriber does
    remapped = {"/cam/image_raw": "/robot/left/image_raw"}
    assert endpoints.input_topic(cfg, "camera_info", lambda n: remapped.get(n, resolve_topic(n, "x"))) == \
        "/robot/left/camera_info"


def test_shipped_defaults_are_raw_with_the_sibling_camera_info():
    cfg = load_config(None)
    assert (cfg.topics.image_transport, cfg.topics.depth_transport, cfg.topics.camera_info) == ("raw", "raw", "auto")
    with pytest.raises(Exception, match="topics.image_transport"):
        load_config(None, ["topics.image_transport=theora"])


# --- the node ----------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def components():
    from interactvlm_ros.node.components import NodeComponents

    return NodeComponents.from_config(load_config(None, ["model.name=tiny", "model.device=cpu"]))


def test_node_takes_compressed_frames_drops_bad_ones_with_a_reason_and_keeps_answering(components):
    from node_sink import CollectingSink
    from test_node_reliability import make_node

    from interactvlm_ros.benchmarks.fuzz import good_messages
    from interactvlm_ros.transport.node_inputs import wire_codecs

    sink = CollectingSink()
    node = make_node(components, sink, "topics.image_transport=compressed", "topics.depth=depth",
                     "topics.depth_transport=compressedDepth", "node.max_image_pixels=1000000")
    codecs = wire_codecs(node.cfg)
    assert set(codecs) == {"image", "objects", "camera_info", "depth"}

    def send(stamp, image_data=None, depth_data=None):
        hdr = make_header(stamp, "camera")
        info = good_messages(width=64, height=48, stamp_ns=stamp, frame="camera")["camera_info"]
        depth = encode_compressed_depth(np.full((48, 64), 1500, np.uint16), hdr)
        if depth_data is not None:
            depth.data = depth_data
        image = encode_compressed_image(smooth_rgb(), "jpeg", "rgb8", hdr)
        if image_data is not None:
            image.data = image_data
        for topic, msg in (("camera_info", info), ("depth", depth), ("image", image)):
            node.on_serialized(topic, msg.serialize(), codecs[topic])

    node.start()
    try:
        send(STAMP)
        sink.wait(lambda: any(o.header.stamp_ns == STAMP for o, _ in sink.frames), timeout=60)
        jpeg = bytes(encode_compressed_image(smooth_rgb(), "jpeg").data)
        send(STAMP + 10**8, image_data=jpeg[: len(jpeg) // 3])  # truncated JPEG
        send(STAMP + 2 * 10**8, image_data=png_bomb(2000, 2000))  # 4 M pixels > node.max_image_pixels
        send(STAMP + 3 * 10**8, depth_data=b"\x00" * 12 + b"garbage")  # bad depth: the image is still answered
        last = STAMP + 3 * 10**8
        end = time.monotonic() + 60
        while not any(o.header.stamp_ns == last for o, _ in sink.frames):  # its depth never comes: the wait ends
            assert time.monotonic() < end, "the frame whose depth was dropped was not answered"
            node.poll()  # as the transports do a few times per second
            time.sleep(0.05)
        sink.wait(lambda: sink.diagnostics and sink.diagnostics[-1].values["images_published"] == "2", timeout=10)
    finally:
        node.stop()
    published = [o.header.stamp_ns for o, _ in sink.frames]
    assert published == [STAMP, last]
    values = sink.diagnostics[-1].values
    assert values["image_dropped_invalid"] == "2" and values["depth_dropped_invalid"] == "1"
    assert values["image_dropped_undecodable"] == "0"
    assert "over the limit of 1000000 (node.max_image_pixels): not decompressed" in values["image_last_drop"]
    assert "compressedDepth data after the 12-byte header is not a PNG" in values["depth_last_drop"]
    assert values["images_received"] == "4" and values["images_dropped_input"] == "2"
