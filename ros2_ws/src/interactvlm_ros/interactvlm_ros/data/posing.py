"""Building body poses from targets: two-bone IK for arms, segment directions for legs, a cylinder grasp for hands
(Anny bone names).

The body wrapper's ``pose`` holds one axis-angle per non-root bone in "local-ref" form (world-aligned axes of the
y-up frame), composed down the chain like SMPL: a bone's global rotation is ``G_child = G_parent · D_child``.
:class:`PoseBuilder` collects wanted *global* rotations of a few bones and *local* ones (``D``, e.g. finger
flexion) of others (bones left alone inherit their parent's) and converts them into those deltas,
``D_c = G_parent^T · G_c``.

The grasp (:meth:`PoseBuilder.grip`) turns the hand so that its palm faces a given direction with the fingers
pointing along another, and flexes each finger joint until the finger wraps a cylinder lying across the palm (a
power grasp of a bottle or a mug): the hold interactions touch the object with the palm and the inner faces of
the fingers, not with whichever point of an open hand happens to be nearest.
"""

from __future__ import annotations

import numpy as np

from interactvlm_ros.body.rotations import matrix_to_axis_angle, rotation_between

ARM_BONES = ("upperarm01", "lowerarm01", "wrist")
LEG_BONES = ("upperleg01", "lowerleg01", "foot")
FINGERS = (1, 2, 3, 4, 5)  # finger{f}-{1,2,3}: 1 = thumb … 5 = little finger
PALM_SURFACE = 0.02  # m from the hand's bone plane to the palm's skin, along the palm normal
FINGER_RADIUS = 0.009  # m, half a finger's thickness
MAX_FLEXION = np.radians((95.0, 100.0, 80.0))  # per finger joint: base, middle, tip
GRIP_ALONG = 0.015  # m from the palm centre towards the knuckles where a gripped cylinder touches the palm


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def palm_frame(joint, side: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The palm of hand ``side`` from joint positions (``joint(name) -> [3]``, rest or posed): its centre, the
    palm normal (out of the palm), the finger direction (wrist → knuckles) and the across direction (little →
    index finger).

    The centre lies on the bones' plane between the wrist and the knuckles; the normal is
    ``±finger × across`` (+ for the left hand, − for the mirrored right one).
    """
    wrist = joint(f"wrist.{side}")
    index, little = joint(f"finger2-1.{side}"), joint(f"finger5-1.{side}")
    knuckles = np.mean([joint(f"finger{f}-1.{side}") for f in FINGERS[1:]], axis=0)
    finger = _unit(knuckles - wrist)  # knuckles and wrist move with the hand, not with the fingers' flexion
    across = index - little
    across = _unit(across - np.dot(across, finger) * finger)
    normal = np.cross(finger, across) * (1.0 if side == "L" else -1.0)
    centre = 0.4 * wrist + 0.6 * (index + little) / 2.0
    return centre, normal, finger, across


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
        self.local_rot: dict[int, np.ndarray] = {}
        for name in ("upperarm01.L", "wrist.R", "upperleg01.L", "foot.R"):
            if name not in self.index:
                raise ValueError(f"the pose builder needs Anny's bone names; {name!r} is missing")

    def joint(self, name: str) -> np.ndarray:
        return self.rest[self.index[name]]

    def set_global(self, name: str, rot: np.ndarray) -> None:
        self.global_rot[self.index[name]] = np.asarray(rot, dtype=np.float64)

    def set_local(self, name: str, rot: np.ndarray) -> None:
        """Rotate a bone relative to its parent (``D``, in the rest pose's world-aligned axes)."""
        self.local_rot[self.index[name]] = np.asarray(rot, dtype=np.float64)

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

    def grip(self, side: str, palm: np.ndarray, finger: np.ndarray, radius: float,
             along: float = GRIP_ALONG) -> None:
        """Power grasp of a cylinder of ``radius`` with hand ``side``: the palm faces world direction ``palm``,
        the fingers point along ``finger`` (made perpendicular to it), and the cylinder lies across the palm,
        touching it ``along`` m from the palm centre towards the knuckles. Each finger joint flexes, base to
        tip, until the next joint reaches the cylinder's surface (at most :data:`MAX_FLEXION`)."""
        centre, n_r, f_r, a_r = palm_frame(self.joint, side)
        palm = _unit(palm)
        finger = _unit(np.asarray(finger, np.float64) - np.dot(finger, palm) * palm)
        sgn = 1.0 if side == "L" else -1.0
        across = np.cross(palm, finger) * sgn  # completes the frame with the rest frame's handedness
        rest = np.stack([n_r, f_r, a_r], axis=1)
        self.set_global(f"wrist.{side}", np.stack([palm, finger, across], axis=1) @ rest.T)
        axis_point = centre + n_r * (PALM_SURFACE + radius) + f_r * along  # cylinder axis (rest pose), along a_r
        reach = radius + FINGER_RADIUS
        for f in FINGERS:
            pts = [self.joint(f"finger{f}-{k}.{side}") for k in (1, 2, 3)]
            pts.append(pts[2] + 0.85 * (pts[2] - pts[1]))  # fingertip: the last bone's tail is not a joint
            pts = np.array(pts)
            bend = _unit(np.cross(pts[2] - pts[0], n_r))  # flexion: the finger turns towards the palm normal
            for k in range(3):
                angle = _flexion_to_reach(pts[k], pts[k + 1], bend, axis_point, a_r, reach, MAX_FLEXION[k])
                rot = axis_rotation(bend, np.degrees(angle))
                pts[k + 1:] = (pts[k + 1:] - pts[k]) @ rot.T + pts[k]
                self.set_local(f"finger{f}-{k + 1}.{side}", rot)

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
            elif i in self.local_rot:
                g[i] = parent_g @ self.local_rot[i]
                deltas[i] = matrix_to_axis_angle(self.local_rot[i])
            else:
                g[i] = parent_g
        return deltas[1:].reshape(-1).astype(np.float32)


def _flexion_to_reach(pivot: np.ndarray, end: np.ndarray, bend: np.ndarray, axis_point: np.ndarray,
                      axis_dir: np.ndarray, reach: float, max_angle: float, step: float = np.radians(1.0)) -> float:
    """The smallest flexion (radians, about ``bend`` through ``pivot``) that brings ``end`` within ``reach`` of
    the line ``axis_point + t·axis_dir``; ``max_angle`` when none does, 0 when ``end`` already is."""
    for angle in np.arange(0.0, max_angle + step / 2, step):
        p = (end - pivot) @ axis_rotation(bend, np.degrees(angle)).T + pivot
        d = p - axis_point
        if np.linalg.norm(d - np.dot(d, axis_dir) * axis_dir) <= reach:
            return float(angle)
    return float(max_angle)
