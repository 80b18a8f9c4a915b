"""Checks on meshes and point clouds before they are rendered: bad input is an error that names the problem.

Degenerate faces (a repeated vertex index, or zero area) cover no pixel; they are dropped from rasterisation and
counted (``MeshInput.dropped_faces``); face ids in every map still refer to the caller's original face indices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

MAX_FACES = 1_000_000
MAX_POINTS = 1_000_000


class MeshError(ValueError):
    """A mesh or point cloud that cannot be rendered or lifted onto."""


@dataclass
class MeshInput:
    """A checked mesh: ``vertices`` float32 ``[N,3]``, ``faces`` int64 ``[F,3]`` (all original faces),
    ``keep`` bool ``[F]`` (faces that are rasterised), ``dropped_faces`` (count of degenerate faces)."""

    vertices: torch.Tensor
    faces: torch.Tensor
    keep: torch.Tensor
    dropped_faces: int


def _as_tensor(x, dtype) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu", dtype)
    return torch.as_tensor(np.asarray(x), dtype=dtype)


def check_vertices(vertices, what: str = "vertices", limit: int | None = None) -> torch.Tensor:
    """``[N,3]`` finite float32 tensor on the CPU, or a MeshError naming what is wrong."""
    v = _as_tensor(vertices, torch.float32)
    if v.ndim != 2 or v.shape[1] != 3:
        raise MeshError(f"{what} must have shape [N,3], got {tuple(v.shape)}")
    if v.shape[0] == 0:
        raise MeshError(f"{what} is empty (0 points)")
    if limit is not None and v.shape[0] > limit:
        raise MeshError(f"{what} has {v.shape[0]} points; at most {limit} are supported (decimate it first)")
    bad = ~torch.isfinite(v).all(dim=1)
    if bad.any():
        first = int(torch.nonzero(bad)[0])
        raise MeshError(f"{what} contains {int(bad.sum())} non-finite (NaN/inf) row(s), first at index {first}")
    return v


def check_mesh(vertices, faces, max_faces: int = MAX_FACES) -> MeshInput:
    """Validate a triangle mesh; see the module docstring for how degenerate faces are handled."""
    v = check_vertices(vertices)
    f = _as_tensor(faces, torch.int64)
    if f.ndim != 2 or f.shape[1] != 3:
        raise MeshError(f"faces must have shape [F,3] (triangles), got {tuple(f.shape)}")
    if f.shape[0] == 0:
        raise MeshError("mesh has no faces")
    if f.shape[0] > max_faces:
        raise MeshError(f"mesh has {f.shape[0]} faces; at most {max_faces} are supported on this path "
                        "(simplify it, e.g. trimesh's simplify_quadric_decimation)")
    lo, hi = int(f.min()), int(f.max())
    if lo < 0 or hi >= v.shape[0]:
        raise MeshError(f"face indices must lie in [0, {v.shape[0] - 1}] for {v.shape[0]} vertices, "
                        f"got range [{lo}, {hi}]")
    repeated = (f[:, 0] == f[:, 1]) | (f[:, 1] == f[:, 2]) | (f[:, 0] == f[:, 2])
    tri = v[f]
    area2 = torch.linalg.norm(torch.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], dim=1), dim=1)
    scale = float((v.max(0).values - v.min(0).values).max().clamp_min(1e-30))
    keep = ~repeated & (area2 > 1e-12 * scale * scale)
    if not keep.any():
        raise MeshError(f"all {f.shape[0]} faces are degenerate (repeated vertex or zero area)")
    return MeshInput(v, f, keep, int((~keep).sum()))
