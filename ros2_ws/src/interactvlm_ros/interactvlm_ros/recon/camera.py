"""Pinhole intrinsics in the ROS optical frame (x right, y down, z forward; metres and pixels)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Intrinsics:
    """``fx, fy, cx, cy`` in pixels for an image of ``width × height``."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    @classmethod
    def from_fov(cls, width: int, height: int, fov_deg: float = 60.0) -> Intrinsics:
        """Horizontal field of view ``fov_deg``, square pixels, principal point at the image centre."""
        if not 0.0 < fov_deg < 180.0:
            raise ValueError(f"field of view must be in (0, 180) degrees, got {fov_deg}")
        f = 0.5 * width / math.tan(math.radians(fov_deg) / 2.0)
        return cls(f, f, width / 2.0, height / 2.0, int(width), int(height))

    @classmethod
    def from_k(cls, k: Sequence[float] | np.ndarray, width: int, height: int) -> Intrinsics:
        """From a row-major 3×3 ``K`` (sensor_msgs/CameraInfo ``k``: 9 numbers, or a 3×3 array)."""
        k = np.asarray(k, dtype=np.float64).reshape(-1)
        if k.size != 9:
            raise ValueError(f"camera matrix K must have 9 entries, got {k.size}")
        if k[0] <= 0 or k[4] <= 0:
            raise ValueError(f"camera matrix K has non-positive focal lengths fx={k[0]}, fy={k[4]}")
        return cls(float(k[0]), float(k[4]), float(k[2]), float(k[5]), int(width), int(height))

    @property
    def matrix(self) -> np.ndarray:
        """``[3,3]`` float64 K."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def scaled(self, sx: float, sy: float | None = None) -> Intrinsics:
        """Intrinsics of the image resized by ``sx`` (and ``sy``)."""
        sy = sx if sy is None else sy
        return Intrinsics(self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy,
                          round(self.width * sx), round(self.height * sy))

    def project(self, points: torch.Tensor | np.ndarray):
        """``[...,3]`` camera-frame points → ``[...,2]`` pixels (torch in, torch out; numpy likewise)."""
        if isinstance(points, np.ndarray):
            z = np.clip(points[..., 2:3], 1e-6, None)
            return np.concatenate([self.fx * points[..., 0:1] / z + self.cx,
                                   self.fy * points[..., 1:2] / z + self.cy], axis=-1)
        z = points[..., 2:3].clamp(min=1e-6)
        return torch.cat([self.fx * points[..., 0:1] / z + self.cx, self.fy * points[..., 1:2] / z + self.cy], -1)

    def backproject(self, uv: np.ndarray, depth: np.ndarray | float) -> np.ndarray:
        """Pixels ``[...,2]`` at depth ``z`` → camera-frame points ``[...,3]``."""
        uv = np.asarray(uv, dtype=np.float64)
        z = np.broadcast_to(np.asarray(depth, dtype=np.float64), uv.shape[:-1])
        return np.stack([(uv[..., 0] - self.cx) / self.fx * z, (uv[..., 1] - self.cy) / self.fy * z, z], axis=-1)


def depth_to_metres(depth: np.ndarray) -> np.ndarray:
    """A depth image as float32 metres: uint16 is millimetres (16UC1), float is metres (32FC1); 0/NaN invalid→0."""
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise ValueError(f"depth image must be [H,W], got shape {depth.shape}")
    if depth.dtype == np.uint16:
        out = depth.astype(np.float32) / 1000.0
    elif np.issubdtype(depth.dtype, np.floating):
        out = depth.astype(np.float32)
    else:
        raise ValueError(f"depth image must be uint16 (mm) or float (m), got {depth.dtype}")
    out[~np.isfinite(out)] = 0.0
    out[out < 0] = 0.0
    return out


def rotation_6d_to_matrix(d6: torch.Tensor) -> torch.Tensor:
    """Zhou et al. 6D rotation ``[...,6]`` (first two columns) → ``[...,3,3]`` (Gram–Schmidt)."""
    a1, a2 = d6[..., 0:3], d6[..., 3:6]
    b1 = torch.nn.functional.normalize(a1, dim=-1)
    b2 = torch.nn.functional.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1)


def matrix_to_rotation_6d(r: torch.Tensor) -> torch.Tensor:
    """``[...,3,3]`` → ``[...,6]`` (its first two columns)."""
    return torch.cat([r[..., :, 0], r[..., :, 1]], dim=-1)
