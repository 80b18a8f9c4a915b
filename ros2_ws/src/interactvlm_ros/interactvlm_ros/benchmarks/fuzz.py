"""Hostile payloads for the node's input topics: what any process on the ROS domain can publish.

Each payload is the serialized CDR bytes (with the 4-byte encapsulation header) a raw DDS writer puts on the
wire (:func:`~interactvlm_ros.transport.dds.write_serialized`). Kinds:

- ``random``: random bytes behind a valid CDR encapsulation header (big or little endian; a writer refuses
  anything else, and so does a reader's middleware before the node sees it);
- ``truncated``: a valid message cut short;
- ``mutated``: a valid message with 1–8 random bytes replaced;
- ``length``: a valid message with one aligned uint32 (often a string or sequence length) set huge;
- ``bad_utf8``: a valid message whose string field holds invalid UTF-8 (a C++ ``std::string`` is never
  checked, so a ROS 2 C++ node can publish this).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from interactvlm_ros.transport.headers import make_header
from interactvlm_ros.transport.image_codec import encode_image
from interactvlm_ros.transport.msgs import CameraInfo, String

KINDS = ("random", "truncated", "mutated", "length", "bad_utf8")
CDR_HEADERS = (b"\x00\x01\x00\x00", b"\x00\x00\x00\x00")  # XCDR1 little / big endian
MARKER = "QZXJ"  # a string field written as this is then overwritten with invalid UTF-8 of the same length
BAD_UTF8 = b"\xff\xfe\xc3\x28"


def good_messages(width: int = 64, height: int = 48, stamp_ns: int = 1, frame: str = "camera") -> dict:
    """One valid message per input topic (``image``, ``camera_info``, ``depth``, ``objects``) for a
    ``width``×``height`` camera; string fields that ``bad_utf8`` corrupts are :data:`MARKER`-prefixed."""
    rgb = np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)
    header = make_header(stamp_ns, frame)
    depth = np.full((height, width), 1500, np.uint16)
    K = [width / 2.0, 0.0, width / 2.0, 0.0, width / 2.0, height / 2.0, 0.0, 0.0, 1.0]
    return {
        "image": encode_image(rgb, "rgb8", header),
        "camera_info": CameraInfo(header=header, height=height, width=width, distortion_model="plumb_bob",
                                  d=[0.0] * 5, k=K, r=[1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0],
                                  p=[*K[:3], 0.0, *K[3:6], 0.0, *K[6:], 0.0]),
        "depth": encode_image(depth, "16UC1", header),
        "objects": String(data="cup"),
    }


def _with_marker(topic: str, msg):
    """``msg`` with one string field set to the marker (the field bad_utf8 corrupts)."""
    if topic == "objects":
        return String(data=MARKER + " cup")
    msg.header.frame_id = MARKER
    return msg


def fuzz_payloads(topic: str, count: int, seed: int = 0, messages: dict | None = None) -> Iterator[tuple[str, bytes]]:
    """``count`` ``(kind, payload)`` pairs for ``topic``, the kinds in turn; every payload is ≥ 4 bytes (a DDS
    writer refuses shorter ones)."""
    rng = np.random.default_rng(seed)
    messages = messages or good_messages()
    valid = messages[topic].serialize()
    marked = _with_marker(topic, good_messages()[topic]).serialize()
    at = marked.index(MARKER.encode())
    corrupted = marked[:at] + BAD_UTF8 + marked[at + len(BAD_UTF8):]

    makers: dict[str, Callable[[], bytes]] = {
        "random": lambda: CDR_HEADERS[int(rng.integers(0, 2))] + rng.bytes(int(rng.integers(0, 600))),
        "truncated": lambda: valid[:int(rng.integers(4, len(valid)))],
        "mutated": lambda: _mutate(valid, rng),
        "length": lambda: _huge_length(valid, rng),
        "bad_utf8": lambda: corrupted,
    }
    for i in range(count):
        kind = KINDS[i % len(KINDS)]
        yield kind, makers[kind]()


def _mutate(valid: bytes, rng: np.random.Generator) -> bytes:
    data = bytearray(valid)
    for _ in range(int(rng.integers(1, 9))):
        data[int(rng.integers(4, len(data)))] = int(rng.integers(0, 256))
    return bytes(data)


def _huge_length(valid: bytes, rng: np.random.Generator) -> bytes:
    data = bytearray(valid)
    slot = 4 + 4 * int(rng.integers(0, (len(data) - 4) // 4))
    data[slot:slot + 4] = int(rng.choice([0xFFFFFFFF, 0x7FFFFFFF, 0x10000000, len(data) + 1])).to_bytes(4, "little")
    return bytes(data)
