"""Canonical multi-view inputs: the fixed body renders (cached on disk) and per-sample object renders.

``canonical_body_views(body, resolution)`` renders the body's star pose from ``HUMAN_VIEWS`` with the
normal-shaded texture once and caches images + maps under ``<cache.dir>/renders/`` keyed by the body's topology
hash, the views and the resolution (atomic writes). ``object_views(vertices, faces, resolution)`` normalises a
mesh (centred at its vertex mean, largest bounding-box extent 1), renders it with xyz colouring from
``OBJECT_VIEWS``; ``point_cloud_views(points, resolution)`` does the same for a PIAD-style point cloud splatted
as discs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from interactvlm_ros.config.paths import cache_dir as default_cache_root
from interactvlm_ros.files.atomic import atomic_path
from interactvlm_ros.render.cameras import HUMAN_VIEWS, OBJECT_VIEWS, View, cam_params
from interactvlm_ros.render.lift import Lifter
from interactvlm_ros.render.mesh_input import check_vertices
from interactvlm_ros.render.render import PIAD_POINT_RADIUS, MultiViewRender, render_points, render_views

# Bump when the renderer's output changes (3: scanline rasterizer; 4: truncated uint8; 5: float64 geometry).
RENDER_CACHE_VERSION = "5"


@dataclass
class CanonicalViews:
    """Everything the model needs about one canonical mesh: the render, ``cam_params [V,5]``, the ``lifter``
    (pixel→vertex operator), and the rendered ``vertices [N,3]`` / ``faces [F,3]`` (normalised for objects;
    ``center``/``scale`` undo it: original = vertices·scale + center)."""

    render: MultiViewRender
    cam_params: np.ndarray
    lifter: Lifter
    vertices: np.ndarray
    faces: np.ndarray
    center: np.ndarray
    scale: float

    @property
    def images(self) -> np.ndarray:
        """uint8 ``[V,H,W,3]`` SAM inputs."""
        return self.render.images

    @property
    def views(self) -> tuple[View, ...]:
        return self.render.views


def render_cache_key(topology_hash: str, views: tuple[View, ...], resolution: int, extra: str = "") -> str:
    text = "|".join([RENDER_CACHE_VERSION, topology_hash, str(int(resolution)), extra] + [v.key() for v in views])
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _save_atomic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)


def _load(path: Path) -> dict[str, np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, KeyError, EOFError):
        return None  # unreadable cache entry: re-render and overwrite


def canonical_body_views(body_model, resolution: int = 1024, cache_dir: str | Path | None = None,
                         views: tuple[View, ...] = HUMAN_VIEWS, lift_mode: str = "soft",
                         use_cache: bool = True, fill_unseen: bool = False) -> CanonicalViews:
    """The body's star pose rendered from ``views`` (method order), with its lifter; cached on disk.

    ``cache_dir``: the render cache folder (default ``<cache.dir>/renders``); ``fill_unseen``: see ``Lifter``.
    """
    vertices = body_model.canonical_vertices()
    faces = np.asarray(body_model.faces, dtype=np.int64)
    folder = Path(cache_dir) if cache_dir is not None else default_cache_root() / "renders"
    key = render_cache_key(body_model.topology_hash, tuple(views), resolution, extra="normals")
    path = folder / f"{body_model.name}_{resolution}_{key}.npz"
    data = _load(path) if use_cache and path.is_file() else None
    if data is not None and data["face_ids"].shape == (len(views), resolution, resolution):
        render = MultiViewRender(images=data["images"], face_ids=data["face_ids"], bary=data["bary"],
                                 depth=data["depth"], valid=data["face_ids"] >= 0, views=tuple(views),
                                 resolution=int(resolution), dropped_faces=int(data["dropped_faces"]))
    else:
        render = render_views(vertices, faces, views, resolution, colors="normals")
        if use_cache:
            _save_atomic(path, {"images": render.images, "face_ids": render.face_ids, "bary": render.bary,
                                "depth": render.depth, "dropped_faces": np.array(render.dropped_faces)})
    lifter = Lifter(render.face_ids, render.bary, faces, len(vertices), mode=lift_mode, fill_unseen=fill_unseen,
                    vertices=vertices)
    return CanonicalViews(render, cam_params(views), lifter, vertices, faces, np.zeros(3, np.float32), 1.0)


def normalize_mesh(vertices) -> tuple[np.ndarray, np.ndarray, float]:
    """Centre at the vertex mean and scale so the largest bounding-box extent is 1.

    Returns ``(normalised [N,3] float32, center [3], scale)`` with original = normalised·scale + center.
    """
    v = check_vertices(vertices).numpy().astype(np.float64)
    center = v.mean(axis=0)
    v = v - center
    scale = float((v.max(axis=0) - v.min(axis=0)).max())
    if scale <= 0.0:
        raise ValueError("mesh has zero extent (all vertices coincide)")
    return (v / scale).astype(np.float32), center.astype(np.float32), scale


def object_views(vertices, faces, resolution: int = 1024, views: tuple[View, ...] = OBJECT_VIEWS,
                 lift_mode: str = "soft", device: str | torch.device = "cpu", fill_unseen: bool = False
                 ) -> CanonicalViews:
    """An object mesh normalised and rendered with xyz colouring from the 4 object views, with its lifter
    (``fill_unseen``: see ``Lifter``)."""
    v, center, scale = normalize_mesh(vertices)
    f = np.asarray(faces)
    render = render_views(v, f, views, resolution, colors="xyz", device=device)
    lifter = Lifter(render.face_ids, render.bary, f, len(v), mode=lift_mode, fill_unseen=fill_unseen, vertices=v)
    return CanonicalViews(render, cam_params(views), lifter, v, f.astype(np.int64), center, scale)


def normalize_point_cloud(points) -> tuple[np.ndarray, np.ndarray, float]:
    """PIAD convention: centre at the mean and scale into the unit sphere (max radius 1)."""
    p = check_vertices(points, "points").numpy().astype(np.float64)
    center = p.mean(axis=0)
    p = p - center
    scale = float(np.linalg.norm(p, axis=1).max())
    if scale <= 0.0:
        raise ValueError("point cloud has zero extent (all points coincide)")
    return (p / scale).astype(np.float32), center.astype(np.float32), scale


def point_cloud_views(points, resolution: int = 1024, radius: float = PIAD_POINT_RADIUS, dist: float = 2.0,
                      normalize: bool = True, device: str | torch.device = "cpu") -> CanonicalViews:
    """A point cloud (PIAD: 2048 points, unit sphere) splatted as discs of NDC ``radius`` from the 4 object
    views at distance ``dist`` (2.0 for PIAD/LEMON training renders), with a lifter onto the points."""
    if normalize:
        p, center, scale = normalize_point_cloud(points)
    else:
        p = check_vertices(points, "points").numpy()
        center, scale = np.zeros(3, np.float32), 1.0
    views = tuple(View(v.name, dist, v.elev, v.azim, v.x, v.y, v.light) for v in OBJECT_VIEWS)
    render = render_points(p, views, resolution, radius=radius, colors="xyz", device=device)
    lifter = Lifter.for_points(render.face_ids, len(p))
    faces = np.zeros((0, 3), np.int64)
    return CanonicalViews(render, cam_params(views), lifter, p, faces, center, scale)
