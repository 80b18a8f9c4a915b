"""``ContactResult`` (the model's output) -> ``interactvlm_msgs/ContactArray``, and back to dense arrays.

Per-vertex probabilities become sparse lists (vertices with ``p >= threshold``, ascending). When the posed meshes
in the camera frame are known (reconstruction), the contact vertices' positions go into the contact points.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from interactvlm_ros.transport.errors import MessageError
from interactvlm_ros.transport.headers import as_header
from interactvlm_ros.transport.msgs import Contact, ContactArray

CONTACT = "interactvlm_msgs/Contact"


def sparse_contact(probs: np.ndarray | None, threshold: float, num_vertices: int, what: str
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``[N]`` probabilities -> (uint32 indices with ``p >= threshold``, their float32 probabilities)."""
    if probs is None:
        return np.zeros(0, np.uint32), np.zeros(0, np.float32)
    p = np.asarray(probs, dtype=np.float32).reshape(-1)
    if num_vertices and p.shape[0] != num_vertices:
        raise MessageError(CONTACT, f"{what}_probabilities", f"{p.shape[0]} values for a mesh of "
                           f"{num_vertices} vertices")
    if not np.all(np.isfinite(p)):
        raise MessageError(CONTACT, f"{what}_probabilities", "contains NaN or infinite values")
    if p.size and (p.min() < -1e-6 or p.max() > 1 + 1e-6):
        raise MessageError(CONTACT, f"{what}_probabilities", f"values outside [0, 1] ({p.min():g}..{p.max():g})")
    idx = np.flatnonzero(p >= threshold).astype(np.uint32)
    return idx, np.clip(p[idx], 0.0, 1.0)


def _points(posed: np.ndarray | None, idx: np.ndarray, num_vertices: int, what: str) -> np.ndarray:
    if posed is None:
        return np.zeros((0, 3))
    v = np.asarray(posed, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] != 3 or (num_vertices and v.shape[0] != num_vertices):
        raise MessageError(CONTACT, f"{what}_contact_points", f"posed vertices must be [{num_vertices}, 3], got "
                           f"{v.shape}")
    return v[idx]


def contact_confidence(oc: Any) -> float:
    """``Contact.confidence``: the highest human contact probability, times the frame's person evidence when the
    person gate checked it (``person_confidence``: P(contact | person) · P(person)); 0 when not found."""
    if not oc.found or oc.human_probs is None or not np.size(oc.human_probs):
        return 0.0
    p = float(np.max(oc.human_probs))
    person = getattr(oc, "person_confidence", None)
    return float(np.clip(p * float(person), 0.0, 1.0)) if person is not None else p


def contact_array(result: Any, header: Any, threshold: float, body_mesh_id: str = "", body_id: str = "",
                  body_vertices: np.ndarray | None = None,
                  object_vertices: Mapping[str, np.ndarray] | None = None,
                  object_vertex_counts: Mapping[str, int] | None = None) -> ContactArray:
    """Build the ContactArray of one image.

    Args:
        result: ``pipeline.result.ContactResult``.
        header: the source image header (wire Header, ROS-shaped header or ``FrameHeader``).
        threshold: probability at which a vertex is listed.
        body_mesh_id: ``MeshTopology.mesh_id`` of the body topology.
        body_id: REP-155 body id ("" = untracked).
        body_vertices: ``[Nb, 3]`` posed body in the header frame (metres) or None (no contact points).
        object_vertices: label -> ``[No, 3]`` posed object mesh in the header frame, when reconstructed.
        object_vertex_counts: label -> vertex count of the object mesh (defaults to ``len(object_probs)``).
    """
    if not 0.0 <= float(threshold) <= 1.0:
        raise MessageError(CONTACT, "threshold", f"must be in [0, 1], got {threshold}")
    nb = int(result.num_body_vertices)
    contacts = []
    for oc in result.contacts:
        found = bool(oc.found)
        h_idx, h_p = sparse_contact(oc.human_probs if found else None, threshold, nb, "human")
        n_obj = int((object_vertex_counts or {}).get(oc.label, 0) or (
            0 if oc.object_probs is None else np.asarray(oc.object_probs).size))
        o_idx, o_p = sparse_contact(oc.object_probs if found else None, threshold, n_obj, "object")
        posed_obj = (object_vertices or {}).get(oc.label)
        contacts.append(Contact(
            body_id=body_id, object_label=str(oc.asked), object_prompt_name=str(oc.label), found=found,
            reason=str(oc.reason),
            body_model=str(result.body_model), num_body_vertices=nb, body_mesh_id=body_mesh_id,
            human_vertex_indices=h_idx, human_probabilities=h_p,
            object_mesh_id=str(oc.object_mesh_id), num_object_vertices=n_obj,
            object_vertex_indices=o_idx, object_probabilities=o_p, threshold=float(threshold),
            human_contact_points=_points(body_vertices, h_idx, nb, "human") if h_idx.size else np.zeros((0, 3)),
            object_contact_points=_points(posed_obj, o_idx, n_obj, "object") if o_idx.size else np.zeros((0, 3)),
            confidence=contact_confidence(oc),
        ))
    return ContactArray(header=as_header(header), contacts=contacts)


def validate_contact(contact: Any) -> None:
    """Check the invariants a planner relies on (index ranges, ascending, matching lengths, probabilities)."""
    for what, count in (("human", int(contact.num_body_vertices)), ("object", int(contact.num_object_vertices))):
        idx = np.asarray(getattr(contact, f"{what}_vertex_indices"), dtype=np.int64)
        p = np.asarray(getattr(contact, f"{what}_probabilities"), dtype=np.float64)
        pts = np.asarray(getattr(contact, f"{what}_contact_points"))
        if idx.shape != p.shape:
            raise MessageError(CONTACT, f"{what}_probabilities", f"{p.size} values for {idx.size} indices")
        if idx.size and (idx.max() >= count or np.any(np.diff(idx) <= 0)):
            raise MessageError(CONTACT, f"{what}_vertex_indices", f"must be strictly increasing and < {count}")
        if p.size and (not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1):
            raise MessageError(CONTACT, f"{what}_probabilities", "values must be finite and in [0, 1]")
        npts = len(pts) if not isinstance(pts, np.ndarray) else pts.shape[0]
        if npts not in (0, idx.size):
            raise MessageError(CONTACT, f"{what}_contact_points", f"{npts} points for {idx.size} indices")


def dense_probabilities(contact: Any, which: str = "human") -> np.ndarray:
    """Sparse contact of a received Contact -> dense ``float32 [N]`` (0 where not listed)."""
    validate_contact(contact)
    n = int(contact.num_body_vertices if which == "human" else contact.num_object_vertices)
    out = np.zeros(n, np.float32)
    idx = np.asarray(getattr(contact, f"{which}_vertex_indices"), dtype=np.int64)
    out[idx] = np.asarray(getattr(contact, f"{which}_probabilities"), dtype=np.float32)
    return out
