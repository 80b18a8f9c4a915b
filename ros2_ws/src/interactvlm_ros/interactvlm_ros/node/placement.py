"""Where the node draws meshes until reconstruction supplies camera-frame ones: a fixed, documented pose.

Canonical body and object meshes are metric, y up, facing +z (the body/object model convention). They are
published in the image's optical frame (REP-103: x right, y down, z forward) after a 180° rotation about x
(so "up" becomes −y and the front faces the camera), centred on their bounding box, at ``distance_m`` in front
of the camera; the object stands to the body's left in the image (+x), ``gap_m`` apart. The contact
message says so (``placement = "fixed"``); the reconstruction will replace these with estimated poses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

OPTICAL_FROM_MODEL = np.diag([1.0, -1.0, -1.0]).astype(np.float32)
"""Rotation model (y up, z toward the viewer) -> optical (y down, z forward): 180° about x."""


@dataclass(frozen=True)
class FixedPlacement:
    """The documented stand-in pose: body centred on the optical axis at ``distance_m``, object beside it."""

    distance_m: float = 2.5
    gap_m: float = 0.15

    def place(self, vertices: np.ndarray, lateral_m: float = 0.0) -> np.ndarray:
        """``[N,3]`` model-frame vertices -> ``[N,3]`` float32 optical-frame points, bbox-centred at
        ``(lateral_m, 0, distance_m)``."""
        v = np.asarray(vertices, dtype=np.float32).reshape(-1, 3)
        if len(v) == 0:
            return v.copy()
        centre = (v.min(axis=0) + v.max(axis=0)) / 2
        out = (v - centre) @ OPTICAL_FROM_MODEL.T
        out += np.array([lateral_m, 0.0, self.distance_m], dtype=np.float32)
        return out

    def place_pair(self, body: np.ndarray, obj: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
        """Body at the centre and the object beside it, so the two never overlap."""
        placed_body = self.place(body)
        if obj is None:
            return placed_body, None
        obj = np.asarray(obj, dtype=np.float32).reshape(-1, 3)
        body_half = (placed_body[:, 0].max() - placed_body[:, 0].min()) / 2 if len(placed_body) else 0.0
        obj_half = (obj[:, 0].max() - obj[:, 0].min()) / 2 if len(obj) else 0.0
        return placed_body, self.place(obj, lateral_m=float(body_half + self.gap_m + obj_half))
