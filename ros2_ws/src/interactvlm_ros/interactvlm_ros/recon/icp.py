"""Point clouds and rigid ICP with open3d (``open3d-cpu`` on CPU machines)."""

from __future__ import annotations

import numpy as np

from interactvlm_ros.recon.camera import Intrinsics


def _o3d():
    try:
        import open3d as o3d
    except ImportError as exc:  # pragma: no cover - open3d is a dependency on x86_64
        raise ImportError(f"open3d is needed for ICP and depth clouds ({exc}); pip install open3d-cpu "
                          "(Debian also needs: apt-get install libusb-1.0-0)") from None
    return o3d


def rigid_icp(source: np.ndarray, target: np.ndarray, init: np.ndarray | None = None,
              max_distance: float = 0.3, iterations: int = 10) -> tuple[np.ndarray, float]:
    """Point-to-point ICP without scale (the method's 10 iterations): ``[4,4]`` transform moving ``source``
    ``[Ns,3]`` onto ``target`` ``[Nt,3]``, and the inlier RMSE (m). ``init`` is applied first."""
    o3d = _o3d()
    src = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(source, dtype=np.float64)))
    dst = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(target, dtype=np.float64)))
    init = np.eye(4) if init is None else np.asarray(init, dtype=np.float64)
    result = o3d.pipelines.registration.registration_icp(
        src, dst, max_distance, init,
        o3d.pipelines.registration.TransformationEstimationPointToPoint(with_scaling=False),
        o3d.pipelines.registration.ICPConvergenceCriteria(max_iteration=int(iterations)))
    return np.asarray(result.transformation), float(result.inlier_rmse)


def depth_point_cloud(depth_m: np.ndarray, intr: Intrinsics, mask: np.ndarray | None = None,
                      stride: int = 1, max_depth: float = 10.0) -> np.ndarray:
    """Camera-frame points ``[M,3]`` (ROS optical frame) of a metric depth image, optionally under ``mask``."""
    o3d = _o3d()
    depth = np.asarray(depth_m, dtype=np.float32).copy()
    if mask is not None:
        depth[~np.asarray(mask, dtype=bool)] = 0.0
    intrinsic = o3d.camera.PinholeCameraIntrinsic(depth.shape[1], depth.shape[0], intr.fx, intr.fy, intr.cx,
                                                  intr.cy)
    cloud = o3d.geometry.PointCloud.create_from_depth_image(
        o3d.geometry.Image(depth), intrinsic, np.eye(4), depth_scale=1.0, depth_trunc=max_depth, stride=stride)
    return np.asarray(cloud.points, dtype=np.float32)


class MeshRaycaster:
    """Exact pinhole ray casting of triangle meshes in the camera frame (open3d ``RaycastingScene``).

    ``add(vertices, faces) -> geometry id``; :meth:`cast` returns per-pixel geometry id (-1 = none), face id,
    depth (m along z) and the unit normal.
    """

    def __init__(self):
        o3d = _o3d()
        self._o3d = o3d
        self.scene = o3d.t.geometry.RaycastingScene()

    def add(self, vertices: np.ndarray, faces: np.ndarray) -> int:
        o3d = self._o3d
        v = o3d.core.Tensor(np.ascontiguousarray(vertices, dtype=np.float32))
        f = o3d.core.Tensor(np.ascontiguousarray(faces, dtype=np.uint32))
        return int(self.scene.add_triangles(v, f))

    def cast(self, intr: Intrinsics) -> dict[str, np.ndarray]:
        o3d = self._o3d
        rays = o3d.t.geometry.RaycastingScene.create_rays_pinhole(
            intrinsic_matrix=o3d.core.Tensor(intr.matrix), extrinsic_matrix=o3d.core.Tensor(np.eye(4)),
            width_px=intr.width, height_px=intr.height)
        ans = self.scene.cast_rays(rays)
        t_hit = ans["t_hit"].numpy()
        geom = ans["geometry_ids"].numpy().astype(np.int64)
        hit = np.isfinite(t_hit)
        geom[~hit] = -1
        dirs = rays.numpy()[..., 3:6]
        depth = np.where(hit, t_hit * dirs[..., 2], 0.0).astype(np.float32)
        face = ans["primitive_ids"].numpy().astype(np.int64)
        face[~hit] = -1
        return {"geometry": geom, "face": face, "depth": depth, "normal": ans["primitive_normals"].numpy()}

    def signed_distance(self, points: np.ndarray) -> np.ndarray:
        """Signed distance ``[M]`` of points to the (closed) meshes; negative inside."""
        o3d = self._o3d
        q = o3d.core.Tensor(np.ascontiguousarray(points, dtype=np.float32))
        return self.scene.compute_signed_distance(q).numpy()
