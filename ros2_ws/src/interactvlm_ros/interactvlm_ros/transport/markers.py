"""RViz markers: body and object meshes as ``TRIANGLE_LIST`` markers coloured per vertex by contact probability.

RViz (rviz_default_plugins triangle_list_marker.cpp) uses per-vertex colours when ``colors`` has one entry per
point, disables lighting then, and switches to a transparent, depth-unsorted pass when any alpha < 1 — so alpha
is always 1 and the probability lives in the colour. Namespaces and ids are stable across frames (body:
``interactvlm/body`` id 0; objects: ``interactvlm/objects`` with an id derived from the label), and every
MarkerArray starts with a ``DELETEALL`` so meshes that disappear are cleared in the same update.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from interactvlm_ros.transport.errors import MessageError
from interactvlm_ros.transport.headers import as_header
from interactvlm_ros.transport.msgs import ColorRGBA, Marker, MarkerArray, Vector3
from interactvlm_ros.transport.topology import check_mesh

MARKER = "visualization_msgs/Marker"
BODY_NS = "interactvlm/body"
OBJECT_NS = "interactvlm/objects"

# Colour map stops (probability -> RGB): cool grey (no contact) -> amber -> red (contact).
_STOPS = np.array([0.0, 0.5, 1.0], np.float32)
_COLORS = np.array([[0.62, 0.66, 0.74], [1.00, 0.72, 0.15], [0.86, 0.08, 0.10]], np.float32)


def probability_colors(probs: Any) -> np.ndarray:
    """``[N]`` probabilities in [0, 1] -> ``float32 [N, 4]`` RGBA (alpha 1). NaN counts as 0."""
    p = np.nan_to_num(np.asarray(probs, dtype=np.float32).reshape(-1), nan=0.0)
    p = np.clip(p, 0.0, 1.0)
    rgb = np.stack([np.interp(p, _STOPS, _COLORS[:, c]) for c in range(3)], axis=1)
    return np.concatenate([rgb, np.ones((p.size, 1))], axis=1).astype(np.float32)


def object_marker_id(label: str) -> int:
    """Stable, non-negative int32 marker id of an object label."""
    return zlib.crc32(label.encode("utf-8")) & 0x7FFFFFFF


def mesh_marker(header: Any, ns: str, marker_id: int, points: Any, faces: Any, probs: Any) -> Marker:
    """One ``TRIANGLE_LIST`` marker: ``points [N, 3]`` metres in the header frame, ``faces [F, 3]``,
    ``probs [N]`` -> 3F points with per-vertex colours."""
    v, f = check_mesh(points, faces, MARKER)
    p = np.asarray(probs, dtype=np.float32).reshape(-1)
    if p.shape[0] != v.shape[0]:
        raise MessageError(MARKER, "colors", f"{p.shape[0]} probabilities for {v.shape[0]} vertices")
    tri = f.reshape(-1).astype(np.int64)
    return Marker(header=as_header(header), ns=ns, id=int(marker_id), type=Marker.TRIANGLE_LIST, action=Marker.ADD,
                  scale=Vector3(x=1.0, y=1.0, z=1.0), color=ColorRGBA(r=1.0, g=1.0, b=1.0, a=1.0),
                  points=v[tri].astype(np.float64), colors=probability_colors(p)[tri])


def delete_all(header: Any) -> Marker:
    """A ``DELETEALL`` marker (empty namespace: clears every marker of the display)."""
    return Marker(header=as_header(header), ns="", id=0, action=Marker.DELETEALL)


def contact_markers(header: Any, body: Any | None = None, objects: Sequence[Any] = ()) -> MarkerArray:
    """MarkerArray of one frame: ``DELETEALL`` + the body mesh + one mesh per object.

    ``body`` / ``objects`` are objects with ``points [N,3]``, ``faces [F,3]``, ``probs [N]`` (and ``label`` for
    objects), e.g. ``node.outputs.PlacedMesh``.
    """
    markers = [delete_all(header)]
    if body is not None:
        markers.append(mesh_marker(header, BODY_NS, 0, body.points, body.faces, body.probs))
    for obj in objects:
        markers.append(mesh_marker(header, OBJECT_NS, object_marker_id(obj.label), obj.points, obj.faces,
                                   obj.probs))
    return MarkerArray(markers=markers)
