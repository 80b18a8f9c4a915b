"""An independent reference for the rasterizer: open3d's ``RaycastingScene`` shooting one ray per pixel centre.

Used by the tests and ``interactvlm bench geometry`` to check face ids (needs ``open3d``; on Debian it also needs
``libusb-1.0-0``).
"""

from __future__ import annotations

import numpy as np

from interactvlm_ros.render.cameras import View, look_at, pixel_rays

_MISS = 4294967295


def raycast_views(vertices, faces, views: tuple[View, ...] | list[View], resolution: int):
    """Face ids int64 ``[V,H,W]`` (-1 = miss) and view-space depth float32 ``[V,H,W]`` (0 = miss)."""
    import open3d as o3d

    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(np.asarray(vertices, dtype=np.float32)),
                        o3d.core.Tensor(np.asarray(faces, dtype=np.uint32)))
    fids, depths = [], []
    for view in views:
        origin, direction = pixel_rays(view, resolution)
        rays = np.concatenate([origin, direction], axis=-1).astype(np.float32)
        ans = scene.cast_rays(o3d.core.Tensor(rays))
        fid = ans["primitive_ids"].numpy().astype(np.int64)
        fid[fid == _MISS] = -1
        t = ans["t_hit"].numpy()
        forward = look_at(view)[0][2]
        depth = np.where(fid >= 0, t * (direction @ forward), 0.0).astype(np.float32)
        fids.append(fid)
        depths.append(depth)
    return np.stack(fids), np.stack(depths)


def face_id_agreement(face_ids: np.ndarray, reference: np.ndarray) -> float:
    """Fraction of foreground pixels (foreground in either map) whose face ids are equal."""
    fg = (face_ids >= 0) | (reference >= 0)
    return float((face_ids[fg] == reference[fg]).mean()) if fg.any() else 1.0
