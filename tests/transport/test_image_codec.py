"""sensor_msgs/Image and CameraInfo decoding: every supported encoding, step/endianness, strict errors."""

import numpy as np
import pytest

from interactvlm_ros.transport import msgs as wire
from interactvlm_ros.transport.errors import MessageError
from interactvlm_ros.transport.image_codec import decode_camera_info, decode_depth, decode_image, encode_image
from interactvlm_ros.transport.typestore import typestore

RNG = np.random.default_rng(3)
RGB = RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8)


def _wire_roundtrip(msg):
    return wire.Image.deserialize(msg.serialize())


@pytest.mark.parametrize("padding", [0, 5])
@pytest.mark.parametrize("encoding,pixels", [
    ("rgb8", RGB), ("bgr8", RGB[..., ::-1]),
    ("rgba8", np.concatenate([RGB, np.full((5, 7, 1), 9, np.uint8)], axis=2)),
    ("bgra8", np.concatenate([RGB[..., ::-1], np.full((5, 7, 1), 9, np.uint8)], axis=2)),
])
def test_colour_encodings_decode_to_rgb(encoding, pixels, padding):
    msg = _wire_roundtrip(encode_image(pixels, encoding, row_padding=padding))
    assert msg.step == 7 * pixels.shape[2] + padding
    out = decode_image(msg)
    assert out.dtype == np.uint8 and out.shape == (5, 7, 3)
    np.testing.assert_array_equal(out, RGB)


def test_mono_encodings():
    grey = RNG.integers(0, 256, (4, 6), dtype=np.uint8)
    np.testing.assert_array_equal(decode_image(encode_image(grey, "mono8")), np.repeat(grey[..., None], 3, 2))
    grey16 = grey.astype(np.uint16) * 256 + 17
    for big in (False, True):
        out = decode_image(_wire_roundtrip(encode_image(grey16, "mono16", big_endian=big)))
        np.testing.assert_array_equal(out[..., 1], grey)


@pytest.mark.parametrize("big", [False, True])
def test_depth_16uc1_millimetres_and_32fc1_metres(big):
    mm = np.array([[0, 1000, 2500], [65535, 1, 300]], np.uint16)
    d = decode_depth(_wire_roundtrip(encode_image(mm, "16UC1", big_endian=big, row_padding=2)))
    assert d.dtype == np.float32
    assert np.isnan(d[0, 0])
    np.testing.assert_allclose(d[0, 1:], [1.0, 2.5])
    np.testing.assert_allclose(d[1], [65.535, 0.001, 0.3], rtol=1e-6)
    m = np.array([[1.5, np.nan, -1.0], [0.25, np.inf, 3.0]], np.float32)
    d = decode_depth(_wire_roundtrip(encode_image(m, "32FC1", big_endian=big)))
    np.testing.assert_array_equal(d[~np.isnan(d)], [1.5, 0.25, np.inf, 3.0])
    assert np.isnan(d[0, 1]) and np.isnan(d[0, 2])


def test_rosbags_and_rclpy_shaped_messages():
    store = typestore()
    msg = encode_image(RGB, "bgr8")
    theirs = store.deserialize_cdr(msg.serialize(), "sensor_msgs/msg/Image")  # numpy data (rosbags)
    np.testing.assert_array_equal(decode_image(theirs), RGB[..., ::-1])
    import array

    theirs.data = array.array("B", bytes(msg.data))  # rclpy's representation of uint8[]
    np.testing.assert_array_equal(decode_image(theirs), RGB[..., ::-1])


def _bad(**changes):
    msg = encode_image(RGB, "rgb8")
    for k, v in changes.items():
        setattr(msg, k, v)
    return msg


@pytest.mark.parametrize("changes,pattern", [
    ({"encoding": "yuv422"}, r"Image\.encoding: unsupported encoding 'yuv422'"),
    ({"encoding": "32FC1"}, r"Image\.encoding: '32FC1' is a depth encoding"),
    ({"step": 20}, r"Image\.step: 20 is smaller than width \* 3 bytes \(21\)"),
    ({"data": np.zeros(50, np.uint8)}, r"Image\.data: 50 bytes, fewer than step \* height = 105"),
    ({"height": 0}, r"Image\.height/width: zero-size image"),
    ({"width": 0}, r"zero-size image"),
    ({"is_bigendian": 2}, r"is_bigendian: must be 0 or 1"),
])
def test_bad_images_raise_message_error(changes, pattern):
    with pytest.raises(MessageError, match=pattern) as info:
        decode_image(_bad(**changes))
    assert isinstance(info.value, ValueError)


def test_size_limit_and_depth_encoding_check():
    with pytest.raises(MessageError, match="35 pixels exceeds the limit of 20"):
        decode_image(encode_image(RGB, "rgb8"), max_pixels=20)
    with pytest.raises(MessageError, match="'rgb8' is not usable here"):
        decode_depth(encode_image(RGB, "rgb8"))
    with pytest.raises(MessageError, match=r"rgb8 needs \[H, W, 3\]"):
        encode_image(np.zeros((2, 2, 4), np.uint8), "rgb8")


def _info(k, h=480, w=640):
    return wire.CameraInfo(height=h, width=w, k=k)


def test_camera_info():
    K = decode_camera_info(_info([500.0, 0, 320, 0, 510, 240, 0, 0, 1]), image_size=(480, 640))
    np.testing.assert_array_equal(K, [[500, 0, 320], [0, 510, 240], [0, 0, 1]])
    decode_camera_info(_info([500.0, 0, 320, 0, 510, 240, 0, 0, 1], 0, 0), image_size=(10, 10))  # size unknown
    for k, pattern in [([0.0] * 9, "focal lengths must be positive.*uncalibrated"),
                       ([500.0, 0, 320, 0, float("nan"), 240, 0, 0, 1], "contains NaN or infinite"),
                       ([500.0, 0, 320, 0, 510, 240, 0, 0, 0], r"last row must be \[0, 0, 1\]"),
                       ([500.0, 0, -3, 0, 510, 240, 0, 0, 1], "principal point")]:
        with pytest.raises(MessageError, match=r"CameraInfo\.k: " + pattern):
            decode_camera_info(_info(k))
    with pytest.raises(MessageError, match=r"height/width: calibration is for 640x480 but the image is 320x240"):
        decode_camera_info(_info([500.0, 0, 320, 0, 510, 240, 0, 0, 1]), image_size=(240, 320))
