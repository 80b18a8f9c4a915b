"""Multi-view rendering of a mesh or a point cloud: the images fed to the model and the pixel→surface maps."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from interactvlm_ros.render.cameras import View, eye_position
from interactvlm_ros.render.mesh_input import MAX_POINTS, check_mesh, check_vertices
from interactvlm_ros.render.rasterize import rasterize_mesh, rasterize_points
from interactvlm_ros.render.shading import normal_colors, phong, vertex_normals, xyz_colors

PIAD_POINT_RADIUS = 0.05


def to_uint8(colors: torch.Tensor) -> torch.Tensor:
    """Colours in [0, 1] → uint8 as the authors store their PyTorch3D renders: ``(rgb * 255).astype(np.uint8)``,
    i.e. truncated, not rounded (rounding shifts ~20 % of the body's pixels by one grey level, which moves a
    ViT-H SAM embedding by ~3e-3 relative; docs/model-and-checkpoints.md)."""
    return (colors.clamp(0, 1) * 255.0).to(torch.uint8)


@dataclass
class MultiViewRender:
    """Renders of one mesh (or point cloud) from V cameras.

    images uint8 ``[V,H,W,3]`` (white background); face_ids int32 ``[V,H,W]`` (-1 background; point ids for
    point clouds); bary float32 ``[V,H,W,3]``; depth float32 ``[V,H,W]`` (view-space z, 0 background);
    valid bool ``[V,H,W]``.
    """

    images: np.ndarray
    face_ids: np.ndarray
    bary: np.ndarray
    depth: np.ndarray
    valid: np.ndarray
    views: tuple[View, ...]
    resolution: int
    dropped_faces: int = 0
    meta: dict = field(default_factory=dict)


def _resolve_colors(colors, vertices: torch.Tensor, faces: torch.Tensor | None) -> torch.Tensor:
    if isinstance(colors, str):
        if colors == "normals":
            if faces is None:
                raise ValueError("colors='normals' needs a mesh (faces)")
            return normal_colors(vertices, faces)
        if colors == "xyz":
            return xyz_colors(vertices)
        raise ValueError(f"colors must be 'normals', 'xyz' or an [N,3] array, got {colors!r}")
    c = torch.as_tensor(np.asarray(colors), dtype=torch.float32, device=vertices.device)
    if c.shape != vertices.shape:
        raise ValueError(f"colors must have shape {tuple(vertices.shape)} (one RGB in [0,1] per vertex), "
                         f"got {tuple(c.shape)}")
    return c


def _check_views(views) -> tuple[View, ...]:
    views = tuple(views)
    if not views or not all(isinstance(v, View) for v in views):
        raise ValueError(f"views must be a non-empty sequence of View (e.g. HUMAN_VIEWS), got {views!r}")
    return views


def _check_resolution(resolution: int) -> int:
    if int(resolution) != resolution or not 8 <= int(resolution) <= 4096:
        raise ValueError(f"resolution must be an integer in [8, 4096], got {resolution!r}")
    return int(resolution)


def render_views(vertices, faces, views: tuple[View, ...] | list[View], resolution: int,
                 colors="normals", lit: bool = True, device: str | torch.device = "cpu") -> MultiViewRender:
    """Render a triangle mesh from each view.

    Args:
        vertices: ``[N,3]`` world coordinates (y up). faces: ``[F,3]`` vertex indices.
        views: cameras (``HUMAN_VIEWS`` / ``OBJECT_VIEWS``). resolution: square image size.
        colors: ``"normals"`` (bodies), ``"xyz"`` (objects) or per-vertex RGB ``[N,3]`` in [0,1].
        lit: Phong lighting as the method (``False``: raw texel colours).
    """
    resolution = _check_resolution(resolution)
    views = _check_views(views)
    mesh = check_mesh(vertices, faces)
    v = mesh.vertices.to(device)
    f = mesh.faces.to(device)
    keep = mesh.keep.to(device)
    tex = _resolve_colors(colors, v, f[keep])
    normals = vertex_normals(v, f[keep])
    table = torch.cat([tex, v, normals], dim=1)  # [N,9]: what is interpolated per pixel
    out = _Output(len(views), resolution)
    for i, view in enumerate(views):
        frag = rasterize_mesh(v, f, view, resolution, keep=keep)
        flat_ids = frag.face_ids.reshape(-1)
        idx = torch.nonzero(flat_ids >= 0).squeeze(1)
        img = torch.full((resolution * resolution, 3), 255, dtype=torch.uint8, device=device)
        if idx.numel():
            b = frag.bary.reshape(-1, 3).index_select(0, idx)[:, None, :]  # [P,1,3]
            vid = f.index_select(0, flat_ids.index_select(0, idx)).reshape(-1)  # [3P]
            corners = table.index_select(0, vid).view(-1, 3, table.shape[1])  # [P,3,9]
            texel, point, normal = torch.bmm(b, corners)[:, 0].split(3, dim=1)
            if lit:
                light = torch.tensor(view.light, dtype=v.dtype, device=device)
                eye = torch.as_tensor(eye_position(view), dtype=v.dtype, device=device)
                texel = phong(texel, normal, point, light, eye)
            img.index_copy_(0, idx, to_uint8(texel))
        out.put(i, img.view(resolution, resolution, 3), frag)
    return out.result(tuple(views), resolution, mesh.dropped_faces)


class _Output:
    """Preallocated numpy outputs filled view by view (no stacking copies)."""

    def __init__(self, n_views: int, resolution: int):
        shape = (n_views, resolution, resolution)
        self.images = np.empty((*shape, 3), np.uint8)
        self.face_ids = np.empty(shape, np.int32)
        self.bary = np.empty((*shape, 3), np.float32)
        self.depth = np.empty(shape, np.float32)

    def put(self, i: int, image: torch.Tensor, frag) -> None:
        self.images[i] = image.cpu().numpy()
        self.face_ids[i] = frag.face_ids.to(torch.int32).cpu().numpy()
        self.bary[i] = frag.bary.cpu().numpy()
        self.depth[i] = frag.depth.cpu().numpy()

    def result(self, views, resolution: int, dropped_faces: int = 0, meta: dict | None = None) -> MultiViewRender:
        return MultiViewRender(images=self.images, face_ids=self.face_ids, bary=self.bary, depth=self.depth,
                               valid=self.face_ids >= 0, views=views, resolution=resolution,
                               dropped_faces=dropped_faces, meta=meta or {})


def render_points(points, views: tuple[View, ...] | list[View], resolution: int, radius: float = PIAD_POINT_RADIUS,
                  colors="xyz", device: str | torch.device = "cpu") -> MultiViewRender:
    """Render a point cloud ``[M,3]`` as discs of NDC radius ``radius`` (PIAD: 0.05), unlit, nearest point per
    pixel; ``face_ids`` hold point ids. (PyTorch3D alpha-composites up to 10 points per pixel for the image; here
    the image shows the nearest point's colour, and the point-id map is the same nearest-point map.)"""
    resolution = _check_resolution(resolution)
    views = _check_views(views)
    if not 0.0 < float(radius) < 1.0:
        raise ValueError(f"point radius (NDC units) must be in (0, 1), got {radius!r}")
    p = check_vertices(points, "points", limit=MAX_POINTS).to(device)
    tex = _resolve_colors(colors, p, None)
    out = _Output(len(views), resolution)
    for i, view in enumerate(views):
        frag = rasterize_points(p, view, resolution, float(radius))
        valid = frag.face_ids >= 0
        img = torch.full((resolution, resolution, 3), 255, dtype=torch.uint8, device=device)
        img[valid] = to_uint8(tex[frag.face_ids[valid]])
        out.put(i, img, frag)
    return out.result(tuple(views), resolution, meta={"points": True, "radius": radius})
