"""REP-155 body frames: ``body_<id>`` transforms (children of the camera frame) as ``tf2_msgs/TFMessage``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from interactvlm_ros.transport.errors import MessageError
from interactvlm_ros.transport.headers import as_header
from interactvlm_ros.transport.msgs import Quaternion, TFMessage, Transform, TransformStamped, Vector3

TF = "tf2_msgs/TFMessage"


def body_frame(body_id: str) -> str:
    """REP-155 frame name of a body: ``body_<id>``."""
    if not body_id or any(c in body_id for c in " /"):
        raise MessageError(TF, "transforms.child_frame_id", f"bad body id {body_id!r} (non-empty, no '/' or spaces)")
    return f"body_{body_id}"


def body_transforms(header: Any, bodies: Sequence[tuple[str, Any, Any]]) -> TFMessage:
    """``bodies`` = ``(body_id, translation [3] metres, rotation quaternion [x, y, z, w])`` in the header frame
    -> TFMessage with parent = header frame, child = ``body_<id>`` (quaternions are normalised)."""
    hdr = as_header(header)
    if not hdr.frame_id:
        raise MessageError(TF, "transforms.header.frame_id", "the parent (camera) frame must not be empty")
    out = []
    for body_id, translation, rotation in bodies:
        t = np.asarray(translation, dtype=np.float64).reshape(-1)
        q = np.asarray(rotation, dtype=np.float64).reshape(-1)
        if t.size != 3 or not np.all(np.isfinite(t)):
            raise MessageError(TF, "transforms.transform.translation", f"body {body_id}: needs 3 finite values")
        norm = float(np.linalg.norm(q)) if q.size == 4 and np.all(np.isfinite(q)) else 0.0
        if norm < 1e-9:
            raise MessageError(TF, "transforms.transform.rotation", f"body {body_id}: needs a non-zero finite "
                               "quaternion [x, y, z, w]")
        q = q / norm
        out.append(TransformStamped(header=hdr, child_frame_id=body_frame(body_id), transform=Transform(
            translation=Vector3(x=t[0], y=t[1], z=t[2]), rotation=Quaternion(x=q[0], y=q[1], z=q[2], w=q[3]))))
    return TFMessage(transforms=out)
