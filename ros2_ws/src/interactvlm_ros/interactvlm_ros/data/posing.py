"""Building body poses from targets: two-bone IK for arms, segment directions for legs (Anny bone names).

The body wrapper's ``pose`` holds one axis-angle per non-root bone in "local-ref" form (world-aligned axes of the
y-up frame), composed down the chain like SMPL: a bone's global rotation is ``G_child = G_parent · D_child``.
:class:`PoseBuilder` collects wanted *global* rotations of a few bones (bones left alone inherit their parent's)
and converts them into those deltas, ``D_c = G_parent^T · G_c``.
"""

from __future__ import annotations

import numpy as np

from interactvlm_ros.body.rotations import matrix_to_axis_angle, rotation_between

ARM_BONES = ("upperarm01", "lowerarm01", "wrist")
LEG_BONES = ("upperleg01", "lowerleg01", "foot")


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def axis_rotation(axis, degrees: float) -> np.ndarray:
    """Rotation matrix ``[3,3]`` about ``axis`` by ``degrees``."""
    a = _unit(axis)
    t = np.radians(degrees)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(t) * k + (1 - np.cos(t)) * k @ k


class PoseBuilder:
    """Global bone rotations → the body model's ``pose`` vector ``[3·(J-1)]``.

    Args:
        joint_names: the body's bone names (Anny's, parents before children).
        parents: parent index per bone (-1 for the root).
        rest_joints: ``[J,3]`` bone heads in the rest pose (y up), used for segment directions and lengths.
    """

    def __init__(self, joint_names: list[str], parents, rest_joints: np.ndarray):
        self.names = list(joint_names)
        self.index = {n: i for i, n in enumerate(self.names)}
        self.parents = [int(p) for p in parents]
        self.rest = np.asarray(rest_joints, dtype=np.float64)
        self.global_rot: dict[int, np.ndarray] = {}
        for name in ("upperarm01.L", "wrist.R", "upperleg01.L", "foot.R"):
            if name not in self.index:
                raise ValueError(f"the pose builder needs Anny's bone names; {name!r} is missing")

    def joint(self, name: str) -> np.ndarray:
        return self.rest[self.index[name]]

    def set_global(self, name: str, rot: np.ndarray) -> None:
        self.global_rot[self.index[name]] = np.asarray(rot, dtype=np.float64)

    def _chain(self, side: str, bones: tuple[str, str, str], mid: np.ndarray, end: np.ndarray) -> None:
        upper, lower, last = (f"{b}.{side}" for b in bones)
        u, lo, e = self.joint(upper), self.joint(lower), self.joint(last)
        g_upper = rotation_between(lo - u, mid - u)
        g_lower = rotation_between(g_upper @ (e - lo), end - mid) @ g_upper
        self.set_global(upper, g_upper)
        self.set_global(lower, g_lower)

    def limb_lengths(self, side: str, bones: tuple[str, str, str]) -> tuple[float, float]:
        upper, lower, last = (self.joint(f"{b}.{side}") for b in bones)
        return float(np.linalg.norm(lower - upper)), float(np.linalg.norm(last - lower))

    def reach(self, side: str, target: np.ndarray, pole: np.ndarray, bones: tuple[str, str, str] = ARM_BONES) -> None:
        """Two-bone IK: put the chain's end joint (wrist / ankle) at ``target`` with the middle joint (elbow /
        knee) bent towards ``pole``. Out-of-reach targets are clamped to the reachable shell."""
        root = self.joint(f"{bones[0]}.{side}")
        l1, l2 = self.limb_lengths(side, bones)
        to = np.asarray(target, dtype=np.float64) - root
        d = float(np.clip(np.linalg.norm(to), abs(l1 - l2) + 1e-3, l1 + l2 - 1e-3))
        n = _unit(to)
        end = root + n * d
        cos_a = np.clip((l1 * l1 + d * d - l2 * l2) / (2 * l1 * d), -1.0, 1.0)
        p = np.asarray(pole, dtype=np.float64) - np.dot(pole, n) * n
        if np.linalg.norm(p) < 1e-6:
            p = np.cross(n, [1.0, 0.0, 0.0])
        p = _unit(p)
        mid = root + l1 * (cos_a * n + np.sqrt(1 - cos_a * cos_a) * p)
        self._chain(side, bones, mid, end)

    def aim(self, side: str, upper_dir, lower_dir, bones: tuple[str, str, str] = LEG_BONES) -> None:
        """Point the upper and lower segments of a limb along world directions."""
        l1, l2 = self.limb_lengths(side, bones)
        root = self.joint(f"{bones[0]}.{side}")
        mid = root + l1 * _unit(upper_dir)
        self._chain(side, bones, mid, mid + l2 * _unit(lower_dir))

    def keep_level(self, name: str) -> None:
        """Give a bone (e.g. a foot) the identity global rotation: it keeps its rest orientation in the world."""
        self.set_global(name, np.eye(3))

    def pose_vector(self) -> np.ndarray:
        """``[3·(J-1)]`` float32 axis-angles for the body model's ``pose``."""
        g = [np.eye(3)] * len(self.names)
        deltas = np.zeros((len(self.names), 3))
        for i in range(len(self.names)):
            p = self.parents[i]
            parent_g = g[p] if p >= 0 else np.eye(3)
            if i in self.global_rot:
                g[i] = self.global_rot[i]
                deltas[i] = matrix_to_axis_angle(parent_g.T @ g[i])
            else:
                g[i] = parent_g
        return deltas[1:].reshape(-1).astype(np.float32)
