"""Render-Localize-Lift geometry: cameras, a CPU/GPU torch rasterizer, normal/xyz shading, the sparse lift and
the canonical (cached) body and object views."""

from interactvlm_ros.render.cameras import HUMAN_VIEWS, OBJECT_VIEWS, View, cam_params
from interactvlm_ros.render.canonical import (
    CanonicalViews,
    canonical_body_views,
    normalize_mesh,
    object_views,
    point_cloud_views,
)
from interactvlm_ros.render.lift import Lifter
from interactvlm_ros.render.mesh_input import MeshError
from interactvlm_ros.render.render import MultiViewRender, render_points, render_views

__all__ = [
    "HUMAN_VIEWS", "OBJECT_VIEWS", "CanonicalViews", "Lifter", "MeshError", "MultiViewRender", "View",
    "cam_params", "canonical_body_views", "normalize_mesh", "object_views", "point_cloud_views", "render_points",
    "render_views",
]
