"""Mesh topology (canonical vertices + triangles) <-> ``interactvlm_msgs/MeshTopology`` (latched topic)."""

from __future__ import annotations

from typing import Any

import numpy as np

from interactvlm_ros.transport.errors import MessageError
from interactvlm_ros.transport.headers import make_header
from interactvlm_ros.transport.msgs import MeshTopology

TOPOLOGY = "interactvlm_msgs/MeshTopology"


def check_mesh(vertices: Any, faces: Any, msg_type: str = TOPOLOGY) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``[N, 3]`` finite vertices and ``[F, 3]`` faces indexing them; returns float32 / uint32 copies."""
    v = np.asarray(vertices, dtype=np.float32)
    f = np.asarray(faces)
    if v.ndim != 2 or v.shape[1] != 3 or v.shape[0] == 0:
        raise MessageError(msg_type, "vertices", f"must be a non-empty [N, 3] array, got shape {v.shape}")
    if not np.all(np.isfinite(v)):
        raise MessageError(msg_type, "vertices", "contain NaN or infinite values")
    if f.ndim != 2 or f.shape[1] != 3 or f.shape[0] == 0:
        raise MessageError(msg_type, "triangles", f"must be a non-empty [F, 3] array, got shape {f.shape}")
    if f.min() < 0 or f.max() >= v.shape[0]:
        raise MessageError(msg_type, "triangles", f"indices must be in [0, {v.shape[0]}), got "
                           f"{int(f.min())}..{int(f.max())}")
    return v, f.astype(np.uint32)


def topology_message(mesh_id: str, kind: str, name: str, vertices: Any, faces: Any, stamp_ns: int = 0
                     ) -> MeshTopology:
    """Build the latched MeshTopology message (frame_id "": vertices are in the mesh's canonical frame)."""
    if not mesh_id:
        raise MessageError(TOPOLOGY, "mesh_id", "must not be empty")
    if kind not in ("body", "object"):
        raise MessageError(TOPOLOGY, "kind", f"must be 'body' or 'object', got {kind!r}")
    v, f = check_mesh(vertices, faces)
    return MeshTopology(header=make_header(stamp_ns, ""), mesh_id=mesh_id, kind=kind, name=name,
                        num_vertices=v.shape[0], vertices=v.reshape(-1), triangles=f.reshape(-1))


def topology_of(mesh: Any, stamp_ns: int = 0) -> MeshTopology:
    """From any object with ``mesh_id``, ``kind``, ``name``, ``vertices``, ``faces`` (``node.outputs.MeshTopology``)."""
    return topology_message(mesh.mesh_id, mesh.kind, mesh.name, mesh.vertices, mesh.faces, stamp_ns)


def mesh_from_message(msg: Any) -> tuple[np.ndarray, np.ndarray]:
    """Received MeshTopology -> (vertices ``float32 [N, 3]``, faces ``int64 [F, 3]``), validated."""
    v = np.asarray(msg.vertices, dtype=np.float32)
    f = np.asarray(msg.triangles, dtype=np.int64)
    n = int(msg.num_vertices)
    if v.size != 3 * n:
        raise MessageError(TOPOLOGY, "vertices", f"{v.size} values, expected 3 * num_vertices = {3 * n}")
    if f.size % 3:
        raise MessageError(TOPOLOGY, "triangles", f"{f.size} values is not a multiple of 3")
    v, f32 = check_mesh(v.reshape(n, 3), f.reshape(-1, 3))
    return v, f32.astype(np.int64)
