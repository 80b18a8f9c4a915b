"""``sensor_msgs/PointCloud2`` with fields x, y, z, probability (float32, 16-byte points, little endian).

In RViz: PointCloud2 display, Color Transformer "Intensity", Channel Name ``probability``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from interactvlm_ros.transport.errors import MessageError
from interactvlm_ros.transport.headers import as_header
from interactvlm_ros.transport.msgs import PointCloud2, PointField

CLOUD = "sensor_msgs/PointCloud2"
FLOAT32 = 7  # PointField.FLOAT32
FIELD_NAMES = ("x", "y", "z", "probability")
_DTYPE = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("probability", "<f4")])


def contact_cloud(header: Any, points: Any, probs: Any) -> PointCloud2:
    """``points [N, 3]`` metres in the header frame + ``probs [N]`` -> unorganised cloud (height 1)."""
    p = np.asarray(points, dtype=np.float32)
    if p.size == 0:
        p = p.reshape(0, 3)
    if p.ndim != 2 or p.shape[1] != 3:
        raise MessageError(CLOUD, "data", f"points must be [N, 3], got shape {p.shape}")
    q = np.asarray(probs, dtype=np.float32).reshape(-1)
    if q.shape[0] != p.shape[0]:
        raise MessageError(CLOUD, "data", f"{q.shape[0]} probabilities for {p.shape[0]} points")
    rec = np.empty(p.shape[0], _DTYPE)
    rec["x"], rec["y"], rec["z"], rec["probability"] = p[:, 0], p[:, 1], p[:, 2], q
    fields = [PointField(name=n, offset=4 * i, datatype=FLOAT32, count=1) for i, n in enumerate(FIELD_NAMES)]
    return PointCloud2(header=as_header(header), height=1, width=p.shape[0], fields=fields, is_bigendian=False,
                       point_step=_DTYPE.itemsize, row_step=_DTYPE.itemsize * p.shape[0],
                       data=rec.view(np.uint8).reshape(-1),
                       is_dense=bool(np.all(np.isfinite(p)) and np.all(np.isfinite(q))))


def cloud_arrays(msg: Any) -> tuple[np.ndarray, np.ndarray]:
    """Received contact cloud -> (points ``float32 [N, 3]``, probabilities ``float32 [N]``), validated."""
    offsets = {}
    for f in msg.fields:
        if int(f.datatype) != FLOAT32 or int(f.count) != 1:
            continue
        offsets[str(f.name)] = int(f.offset)
    missing = [n for n in FIELD_NAMES if n not in offsets]
    if missing:
        raise MessageError(CLOUD, "fields", f"missing float32 field(s) {', '.join(missing)}")
    n = int(msg.width) * int(msg.height)
    step = int(msg.point_step)
    raw = np.frombuffer(memoryview(np.ascontiguousarray(np.asarray(msg.data, dtype=np.uint8))), np.uint8)
    if step < 4 or raw.size < n * step:
        raise MessageError(CLOUD, "data", f"{raw.size} bytes for {n} points of {step} bytes")
    order = ">" if bool(msg.is_bigendian) else "<"
    dt = np.dtype({"names": list(FIELD_NAMES), "formats": [order + "f4"] * 4,
                   "offsets": [offsets[k] for k in FIELD_NAMES], "itemsize": step})
    rec = raw[: n * step].view(dt)
    pts = np.stack([rec["x"], rec["y"], rec["z"]], axis=1).astype(np.float32)
    return pts, rec["probability"].astype(np.float32)
