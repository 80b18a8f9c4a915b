"""``interactvlm bench wire``: CDR serialization cost of the messages the node moves, packed vs element-wise.

Keys: ``image_640x480_rgb8_packed_ms`` / ``..._sequence_ms`` (serialize one 640x480 rgb8 Image with the packed
machine vs cyclonedds' element-wise ``sequence[uint8]``), ``image_speedup``, ``image_deserialize_packed_ms``,
``body_marker_packed_ms`` (TRIANGLE_LIST of a 13,718-vertex / 27,420-face body with per-vertex colours) and
``bytes_identical`` (both paths give the same CDR bytes).
"""

# no `from __future__ import annotations`: cyclonedds evaluates the IdlStruct annotations below

import time
from dataclasses import dataclass, field

import numpy as np
from cyclonedds.idl import IdlStruct
from cyclonedds.idl.types import sequence, uint8, uint32

from interactvlm_ros.transport.headers import make_header
from interactvlm_ros.transport.markers import mesh_marker
from interactvlm_ros.transport.msgs import Header, Image, MarkerArray


@dataclass
class _ElementwiseImage(IdlStruct, typename="sensor_msgs::msg::dds_::Image_"):
    """The same wire type without :func:`pack_sequences` (cyclonedds' own machines) — the baseline."""

    header: Header = field(default_factory=Header)
    height: uint32 = 0
    width: uint32 = 0
    encoding: str = ""
    is_bigendian: uint8 = 0
    step: uint32 = 0
    data: sequence[uint8] = field(default_factory=list)


def _median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times))


def run(cfg, args) -> dict:
    quick = bool(getattr(args, "quick", False))
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    hdr = make_header(1, "camera_optical_frame")
    packed = Image(header=hdr, height=480, width=640, encoding="rgb8", step=1920, data=pixels.reshape(-1))
    plain = _ElementwiseImage(header=hdr, height=480, width=640, encoding="rgb8", step=1920,
                              data=pixels.reshape(-1).tolist())
    packed_bytes = packed.serialize()
    t_packed = _median_ms(packed.serialize, 5 if quick else 50)
    t_plain = _median_ms(plain.serialize, 1 if quick else 5)
    t_deser = _median_ms(lambda: Image.deserialize(packed_bytes), 5 if quick else 50)
    n_vertices, n_faces = 13_718, 27_420
    verts = rng.normal(size=(n_vertices, 3)).astype(np.float32)
    faces = rng.integers(0, n_vertices, (n_faces, 3))
    probs = rng.random(n_vertices).astype(np.float32)

    def body_marker():
        MarkerArray(markers=[mesh_marker(hdr, "interactvlm/body", 0, verts, faces, probs)]).serialize()

    return {
        "image_640x480_rgb8_packed_ms": round(t_packed, 4),
        "image_640x480_rgb8_sequence_ms": round(t_plain, 3),
        "image_speedup": round(t_plain / t_packed, 1),
        "image_deserialize_packed_ms": round(t_deser, 4),
        "body_marker_packed_ms": round(_median_ms(body_marker, 3 if quick else 10), 3),
        "bytes_identical": plain.serialize() == packed_bytes,
    }
