"""The method's fixed cameras: PyTorch3D-convention look-at cameras with a 60° field of view.

Conventions (PyTorch3D, reproduced exactly): world y is up; a camera at ``(dist, elev°, azim°)`` sits at
``dist·(cos e·sin a, sin e, cos e·cos a)`` and looks at the origin; view space is right-handed with +x to the
image's left, +y up and +z into the screen; points are mapped ``x_view = R^T x_world + T`` and the method then
shifts ``T += (x_trans, y_trans, 0)``. ``FoVPerspectiveCameras`` defaults: fov 60°, aspect 1, znear 1, zfar 100.
NDC (+1, +1) is the top-left image corner; pixel ``(row j, col i)`` has its centre at
``x_ndc = 1 - (2i+1)/W``, ``y_ndc = 1 - (2j+1)/H``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

FOV_DEG = 60.0
ZNEAR = 1.0
ZFAR = 100.0


@dataclass(frozen=True)
class View:
    """One camera of the method: distance (m), elevation and azimuth (degrees), view-space shifts x, y."""

    name: str
    dist: float
    elev: float
    azim: float
    x: float = 0.0
    y: float = 0.0
    light: tuple[float, float, float] = (0.0, 0.0, 3.0)  # point-light location in world space

    def key(self) -> str:
        """Stable text identifying the camera (used in cache keys)."""
        return f"{self.name}:{self.dist:g},{self.elev:g},{self.azim:g},{self.x:g},{self.y:g}"


# Model order of the human views (method's HUMAN_VIEW_DICT['4MV-Z_Vitru']); lights as in the reference repo.
HUMAN_VIEWS: tuple[View, ...] = (
    View("topfront", 2.0, 45.0, 315.0, 0.0, 0.0, (0.0, 0.0, 3.0)),
    View("bottomfront", 2.0, 315.0, 315.0, 0.0, 0.3, (0.0, 0.0, -3.0)),
    View("topback", 2.0, 45.0, 135.0, 0.0, 0.0, (0.0, 0.0, -3.0)),
    View("bottomback", 2.0, 315.0, 135.0, 0.0, 0.3, (0.0, 0.0, 3.0)),
)

# Object views of the demo (meshes rendered at 1.5 m).
OBJECT_VIEWS: tuple[View, ...] = (
    View("frontleft", 1.5, 45.0, 315.0, 0.0, 0.0, (0.0, 0.0, 3.0)),
    View("frontright", 1.5, 45.0, 45.0, 0.0, 0.0, (0.0, 0.0, 3.0)),
    View("backleft", 1.5, 330.0, 135.0, 0.0, 0.0, (0.0, 0.0, -3.0)),
    View("backright", 1.5, 330.0, 225.0, 0.0, 0.0, (0.0, 0.0, -3.0)),
)


def cam_params(views: tuple[View, ...] | list[View], dist_override: float | None = None) -> np.ndarray:
    """Camera conditioning of the model, ``[V,5]`` float32: ``[d/10, elev/360, azim/360, (x+1)/2, (y+1)/2]``.

    ``dist_override`` reproduces the reference's object quirk (conditioning says 2.0 while meshes render at 1.5).
    """
    rows = [[(dist_override if dist_override is not None else v.dist) / 10.0, v.elev / 360.0, v.azim / 360.0,
             (v.x + 1.0) / 2.0, (v.y + 1.0) / 2.0] for v in views]
    return np.asarray(rows, dtype=np.float32).reshape(len(rows), 5)


def camera_position(view: View) -> np.ndarray:
    """World position of the camera centre before the view-space shift, ``[3]`` float64."""
    e, a = math.radians(view.elev), math.radians(view.azim)
    return view.dist * np.array([math.cos(e) * math.sin(a), math.sin(e), math.cos(e) * math.cos(a)])


def look_at(view: View) -> tuple[np.ndarray, np.ndarray]:
    """World→view transform ``x_view = M @ x_world + t`` (``M`` = PyTorch3D ``R^T``, ``t`` = its ``T`` shifted).

    Returns ``M [3,3]`` (rows = camera x, y, z axes in world space) and ``t [3]``, float64.
    """
    c = camera_position(view)
    z = -c / np.linalg.norm(c)
    up = np.array([0.0, 1.0, 0.0])
    x = np.cross(up, z)
    if np.linalg.norm(x) < 1e-9:  # looking straight up/down: PyTorch3D falls back to the world x axis
        x = np.array([1.0, 0.0, 0.0])
    x = x / np.linalg.norm(x)
    y = np.cross(z, x)
    y = y / np.linalg.norm(y)
    m = np.stack([x, y, z])
    t = -m @ c
    t = t + np.array([view.x, view.y, 0.0])
    return m, t


def eye_position(view: View) -> np.ndarray:
    """World position of the (shifted) camera centre, ``[3]`` — the point every ray leaves from."""
    m, t = look_at(view)
    return -m.T @ t


def focal_ndc() -> float:
    """NDC scale ``1/tan(fov/2)`` of the 60° FoV camera (aspect 1)."""
    return 1.0 / math.tan(math.radians(FOV_DEG) / 2.0)


def pixel_rays(view: View, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """World-space rays through every pixel centre: origins ``[H,W,3]`` and unit directions ``[H,W,3]``."""
    m, _ = look_at(view)
    s = focal_ndc()
    idx = np.arange(resolution)
    ndc = 1.0 - (2.0 * idx + 1.0) / resolution
    yy, xx = np.meshgrid(ndc, ndc, indexing="ij")
    d_view = np.stack([xx / s, yy / s, np.ones_like(xx)], axis=-1)
    d_world = d_view @ m  # (M^T d) row-wise
    d_world /= np.linalg.norm(d_world, axis=-1, keepdims=True)
    origin = np.broadcast_to(eye_position(view), d_world.shape)
    return np.ascontiguousarray(origin), d_world
