"""Colours fed to the model and the Phong shading of PyTorch3D's ``HardPhongShader``.

- bodies: per-vertex colour ``(normal + 1) / 2`` (world-space, area-weighted vertex normals);
- objects: bounding-box-normalised xyz mapped to ``0.8·c + 0.1`` (NOCS-like positional colour);
- lighting: one point light (ambient 0.5, diffuse 0.3, specular 0.2), material defaults (colours 1,
  shininess 64); ``colour = texel·(ambient + diffuse) + specular`` with interpolated normals, as PyTorch3D does.
"""

from __future__ import annotations

import torch

AMBIENT = 0.5
DIFFUSE = 0.3
SPECULAR = 0.2
SHININESS = 64.0


def vertex_normals(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Area-weighted unit vertex normals ``[N,3]`` (zero for vertices in no face)."""
    tri = vertices[faces]
    fn = torch.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], dim=1)
    n = torch.zeros_like(vertices)
    for k in range(3):
        n.index_add_(0, faces[:, k], fn)
    return torch.nn.functional.normalize(n, dim=1, eps=1e-12)


def normal_colors(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Body texture of the method: ``(normal + 1) / 2`` per vertex, ``[N,3]`` in [0,1]."""
    return (vertex_normals(vertices, faces) + 1.0) / 2.0


def xyz_colors(vertices: torch.Tensor) -> torch.Tensor:
    """Object texture of the method: bbox-normalised xyz mapped to ``[0.1, 0.9]``, ``[N,3]``."""
    lo = vertices.min(dim=0).values
    ext = (vertices.max(dim=0).values - lo).clamp_min(1e-12)
    return 0.8 * (vertices - lo) / ext + 0.1


def phong(texel: torch.Tensor, normal: torch.Tensor, point: torch.Tensor, light: torch.Tensor,
          eye: torch.Tensor) -> torch.Tensor:
    """Phong-lit colours ``[P,3]`` for texels, unit-normalised normals and world points ``[P,3]``."""
    normal = torch.nn.functional.normalize(normal, dim=1, eps=1e-12)
    to_light = torch.nn.functional.normalize(light[None] - point, dim=1, eps=1e-12)
    to_eye = torch.nn.functional.normalize(eye[None] - point, dim=1, eps=1e-12)
    cos_l = (normal * to_light).sum(dim=1, keepdim=True)
    diffuse = DIFFUSE * cos_l.clamp_min(0.0)
    reflect = -to_light + 2.0 * cos_l * normal
    cos_r = (to_eye * reflect).sum(dim=1, keepdim=True).clamp_min(0.0) * (cos_l > 0)
    specular = SPECULAR * cos_r.pow(SHININESS)
    return texel * (AMBIENT + diffuse) + specular
