"""Human–object interactions of the synthetic data: a posed Anny body touching an object-library mesh.

Every object class has several interactions that touch *different* body parts (bottle/mug in the left or the
right hand; box carried, sat on or stood on; ball kicked with either foot or held; chair sat on or leaned on;
table leaned on with both hands or one; board stood on or carried), so a per-class mean contact map cannot
score well: the image has to be read.

Placement: the body is posed first (two-bone IK to hand targets, leg directions, a power grasp for held bottles and
mugs: palm turned inwards, fingers flexed around the object's body); the object is then moved along an approach
direction ``u`` (for a held object: the palm normal) until its extreme point along ``-u`` meets the extreme point of
the contacting body region along ``u`` (support-function contact): the two touch without interpenetration along
``u``. Every connected part of the object (a chair's seat, legs, backrest; a mug's body and handle) is then
checked against the posed body with its convex hull, and a placement whose penetration exceeds
:data:`MAX_PENETRATION` is rejected. Two-hand carries scale the object along the hand-to-hand axis (within
±30 %) so both palms touch it; labels stay on the library mesh's vertex ids.
A turn about the object's vertical axis that maps its mesh onto itself (a table by 180°, a revolved bottle by
one segment) is invisible in the image, so placements drop it (:meth:`Placement.without_symmetric_yaw`): the
object labels of two identical-looking scenes are the same vertices.

Two-object scenes (:func:`build_combinations`) pose the body once for both interactions and place each object
with its own interaction's placement; each object's contacts are labelled separately (semantic contact).

Ground truth: a body vertex is in contact when it lies within :data:`CONTACT_DISTANCE` of the object's surface
(a hand closed around a bottle is within it all over, so the whole hand is labelled); an object vertex when it
lies within that distance of the body's surface or belongs to a face that has a surface point within that
distance (object meshes are coarse, so a touched face marks its vertices).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import trimesh
from scipy.spatial import ConvexHull, cKDTree

from interactvlm_ros.body.rotations import rotation_between
from interactvlm_ros.data.posing import GRIP_ALONG, PoseBuilder, axis_rotation, palm_frame

CONTACT_DISTANCE = 0.03  # m
MAX_PENETRATION = 0.02  # m
BOTTLE_RADIUS, MUG_RADIUS = 0.035, 0.042  # m, the shipped meshes' bodies (objects/generate.py), what hands grip
X, Y, Z = np.eye(3)


@dataclass
class Interaction:
    """One interaction type: its object class, a name, and the body regions it is expected to touch."""

    label: str
    name: str
    description: str
    pose: Callable[[PoseBuilder, np.random.Generator], None]
    place: Callable[[SceneContext, np.random.Generator], Placement]

    @property
    def key(self) -> str:
        return f"{self.label}/{self.name}"


@dataclass
class Placement:
    """Object pose in the body frame: ``world = scale ⊙ (R @ v) + t`` (scale per axis, applied after R);
    ``nominal`` is the rotation the placement's random turn is drawn around."""

    rotation: np.ndarray
    translation: np.ndarray
    scale: np.ndarray = field(default_factory=lambda: np.ones(3))
    nominal: np.ndarray = field(default_factory=lambda: np.eye(3))

    def apply(self, vertices: np.ndarray) -> np.ndarray:
        return (vertices @ self.rotation.T) * self.scale + self.translation

    def without_symmetric_yaw(self, order: int) -> Placement:
        """The same placed geometry with the rotation closest to ``nominal`` among ``R·S_k``, where
        ``S_k = yaw(360°·k/order)`` are the mesh's own symmetries about its Y axis (``order`` from
        :func:`yaw_symmetry_order`). A table turned by 180° or a bottle turned about its axis looks the same
        in the image, so their contact labels must not depend on the turn: this keeps them on one side of the
        library mesh."""
        if order <= 1:
            return self
        turns = [self.rotation @ axis_rotation(Y, 360.0 * k / order) for k in range(order)]
        best = max(range(order), key=lambda k: float(np.trace(self.nominal.T @ turns[k])))
        return Placement(turns[best], self.translation, self.scale, self.nominal)


@dataclass
class SceneContext:
    """What placement functions see: posed body vertices ``[N,3]``, part vertex ids, the object mesh with its
    connected parts' vertex ids (:func:`mesh_components`), joints."""

    vertices: np.ndarray
    parts: dict[str, np.ndarray]
    mesh: trimesh.Trimesh
    components: list[np.ndarray]
    joints: dict[str, np.ndarray]

    def region(self, *names: str) -> np.ndarray:
        return self.vertices[np.concatenate([self.parts[n] for n in names])]


def touch(object_vertices: np.ndarray, region: np.ndarray, u: np.ndarray, anchor: np.ndarray) -> np.ndarray:
    """Translation that puts the object on the ``+u`` side of ``region``, touching it, with its centre's
    components perpendicular to ``u`` at ``anchor``'s."""
    u = u / np.linalg.norm(u)
    along = float(np.max(region @ u) - np.min(object_vertices @ u))
    perp = anchor - np.dot(anchor, u) * u
    centre = object_vertices.mean(axis=0)
    return perp - (centre - np.dot(centre, u) * u) + along * u


# --- poses -------------------------------------------------------------------------------------------------


def _sides():
    return (("L", 1.0), ("R", -1.0))


def _relaxed_arm(pb: PoseBuilder, side: str, sign: float, rng) -> None:
    s = pb.joint(f"upperarm01.{side}")
    target = s + np.array([sign * rng.uniform(0.06, 0.16), -rng.uniform(0.50, 0.56), rng.uniform(-0.04, 0.10)])
    pb.reach(side, target, pole=np.array([sign * 0.3, -0.2, -1.0]))


def _hold_arm(pb: PoseBuilder, side: str, sign: float, rng) -> None:
    s = pb.joint(f"upperarm01.{side}")
    target = s + np.array([sign * rng.uniform(-0.06, 0.06), -rng.uniform(0.22, 0.40), rng.uniform(0.22, 0.36)])
    pb.reach(side, target, pole=np.array([sign * 0.5, -1.0, -0.2]))


def _standing_legs(pb: PoseBuilder, rng) -> None:
    for side, sign in _sides():
        spread = rng.uniform(0.0, 0.12)
        pb.aim(side, [sign * spread, -1.0, rng.uniform(-0.05, 0.05)], [sign * spread * 0.5, -1.0, 0.0])
        pb.keep_level(f"foot.{side}")


def _sitting_legs(pb: PoseBuilder, rng) -> None:
    for side, sign in _sides():
        pb.aim(side, [sign * rng.uniform(0.05, 0.2), rng.uniform(-0.12, 0.05), 1.0],
               [sign * rng.uniform(0.0, 0.1), -1.0, rng.uniform(-0.3, 0.2)])
        pb.keep_level(f"foot.{side}")


def _hands_forward(pb: PoseBuilder, rng, half_gap: float, drop: tuple[float, float],
                   reach: tuple[float, float]) -> None:
    y, z = -rng.uniform(*drop), rng.uniform(*reach)
    for side, sign in _sides():
        s = pb.joint(f"upperarm01.{side}")
        target = np.array([sign * (half_gap + 0.03), s[1] + y, s[2] + z])
        pb.reach(side, target, pole=np.array([sign * 0.6, -1.0, -0.3]))


def _hands_down_forward(pb: PoseBuilder, rng, sides: tuple[str, ...], height: float, reach: float) -> None:
    for side, sign in _sides():
        s = pb.joint(f"upperarm01.{side}")
        if side in sides:
            target = np.array([sign * rng.uniform(0.14, 0.26), height, s[2] + reach])
            pb.reach(side, target, pole=np.array([sign * 1.0, 0.0, -0.5]))
        else:
            _relaxed_arm(pb, side, sign, rng)


def _grip_upright(pb: PoseBuilder, side: str, radius: float, rng) -> None:
    """Hand ``side`` grips an upright cylinder of ``radius``: palm turned inwards, fingers pointing forward
    (tilted down by up to ~20°)."""
    sign = 1.0 if side == "L" else -1.0
    turn = _yaw(rng, 20.0)
    pb.grip(side, palm=turn @ (-sign * X), finger=turn @ np.array([0.0, -rng.uniform(0.0, 0.35), 1.0]),
            radius=radius)


def pose_hold(side: str, radius: float) -> Callable:
    """Standing, one forearm forward, that hand gripping an upright cylinder of ``radius`` (the object's body)
    with the palm turned inwards and the fingers pointing forward (tilted down by up to ~20°)."""

    def pose(pb: PoseBuilder, rng) -> None:
        _standing_legs(pb, rng)
        for s, sgn in _sides():
            (_hold_arm if s == side else _relaxed_arm)(pb, s, sgn, rng)
        _grip_upright(pb, side, radius, rng)
    return pose


def pose_carry(half_gap: float) -> Callable:
    def pose(pb: PoseBuilder, rng) -> None:
        _standing_legs(pb, rng)
        _hands_forward(pb, rng, half_gap, drop=(0.25, 0.40), reach=(0.28, 0.40))
    return pose


def _lap_arm(pb: PoseBuilder, side: str, sign: float, rng) -> None:
    s = pb.joint(f"upperarm01.{side}")
    pb.reach(side, s + np.array([sign * rng.uniform(-0.02, 0.08), -rng.uniform(0.30, 0.40),
                                 rng.uniform(0.22, 0.34)]), pole=np.array([sign * 0.5, -1.0, -0.3]))


def pose_sit(pb: PoseBuilder, rng) -> None:
    _sitting_legs(pb, rng)
    for side, sign in _sides():
        _lap_arm(pb, side, sign, rng)


def pose_sit_hold(side: str, radius: float) -> Callable:
    """Sitting, one hand gripping an upright cylinder of ``radius`` in front of the chest, the other on the lap."""

    def pose(pb: PoseBuilder, rng) -> None:
        _sitting_legs(pb, rng)
        for s, sgn in _sides():
            (_hold_arm if s == side else _lap_arm)(pb, s, sgn, rng)
        _grip_upright(pb, side, radius, rng)
    return pose


def pose_stand(pb: PoseBuilder, rng) -> None:
    _standing_legs(pb, rng)
    for side, sign in _sides():
        _relaxed_arm(pb, side, sign, rng)


def pose_kick(side: str) -> Callable:
    def pose(pb: PoseBuilder, rng) -> None:
        for s, sign in _sides():
            if s == side:
                a = np.radians(rng.uniform(25.0, 55.0))
                b = a + np.radians(rng.uniform(-25.0, 5.0))
                pb.aim(s, [sign * 0.05, -np.cos(a), np.sin(a)], [0.0, -np.cos(b), np.sin(b)])
            else:
                pb.aim(s, [sign * 0.05, -1.0, -0.05], [0.0, -1.0, 0.0])
                pb.keep_level(f"foot.{s}")
            _relaxed_arm(pb, s, sign, rng)
    return pose


def pose_lean(sides: tuple[str, ...], height_below_shoulder: tuple[float, float]) -> Callable:
    def pose(pb: PoseBuilder, rng) -> None:
        _standing_legs(pb, rng)
        s = pb.joint("upperarm01.L")
        _hands_down_forward(pb, rng, sides, s[1] - rng.uniform(*height_below_shoulder), rng.uniform(0.30, 0.42))
    return pose


# --- placements --------------------------------------------------------------------------------------------


def _yaw(rng, degrees: float) -> np.ndarray:
    return axis_rotation(Y, rng.uniform(-degrees, degrees))


def place_in_hand(side: str) -> Callable:
    """The object upright in the gripping hand (see :func:`pose_hold`): its up axis along the grip's axis, its
    body (largest connected part) against the palm where the grip expects it, turned at random about that axis —
    within ±60° of pointing a side part (a mug's handle) away from the palm, so the fingers close on the body."""

    def place(ctx: SceneContext, rng) -> Placement:
        centre, normal, finger, across = palm_frame(ctx.joints.__getitem__, side)
        hand = ctx.region(f"{'left' if side == 'L' else 'right'} hand")
        rel = hand - centre
        palm = hand[(np.abs(rel @ across) < 0.035) & (rel @ finger > -0.035) & (rel @ finger < 0.03)]
        nominal = rotation_between(Y, across)
        body_ids = max(ctx.components, key=len)
        offset = ctx.mesh.vertices.mean(axis=0) - ctx.mesh.vertices[body_ids].mean(axis=0)  # towards a side part
        if np.hypot(offset[0], offset[2]) > 1e-3:
            away = nominal.T @ normal  # the palm normal in the object's frame (perpendicular to its Y axis)
            turn = np.degrees(np.arctan2(-away[2], away[0]) - np.arctan2(-offset[2], offset[0]))
            rot = nominal @ axis_rotation(Y, turn + rng.uniform(-60.0, 60.0))
        else:
            rot = nominal @ _yaw(rng, 180.0)
        v = ctx.mesh.vertices @ rot.T
        body = v[body_ids]
        anchor = centre + GRIP_ALONG * finger + rng.uniform(-0.01, 0.01) * across
        t = touch(body, palm, normal, anchor)
        t += normal * (float(np.max(palm @ normal)) - float(np.min((v + t) @ normal)))  # the whole object touches
        return Placement(rot, t, nominal=nominal)
    return place


def place_between_hands(axis_rot: np.ndarray | None = None, uniform: bool = False) -> Callable:
    def place(ctx: SceneContext, rng) -> Placement:
        nominal = axis_rot if axis_rot is not None else np.eye(3)
        rot = _yaw(rng, 8.0) @ nominal
        v = ctx.mesh.vertices @ rot.T
        left, right = ctx.region("left hand"), ctx.region("right hand")
        gap = float(np.min(left[:, 0]) - np.max(right[:, 0]))
        width = float(np.ptp(v[:, 0]))
        f = float(np.clip(gap / width, 0.7, 1.3))
        scale = np.full(3, f) if uniform else np.array([f, 1.0, 1.0])
        v = v * scale
        centre = (left.mean(axis=0) + right.mean(axis=0)) / 2.0
        centre[0] = (np.min(left[:, 0]) + np.max(right[:, 0])) / 2.0
        t = centre - (v.min(axis=0) + v.max(axis=0)) / 2.0
        return Placement(rot, t, scale, nominal)
    return place


def place_under(region_names: tuple[str, ...], keep_below: str | None = None) -> Callable:
    """Object below a body region (seat under the buttocks, box/board under the feet), top touching it."""
    def place(ctx: SceneContext, rng) -> Placement:
        region = ctx.region(*region_names)
        if keep_below is not None:  # sitting: only the back half of the thighs and the buttocks
            region = region[region[:, 2] < ctx.joints[keep_below][2] - 0.12]
        rot = _yaw(rng, 10.0) if ctx.mesh.extents[0] > ctx.mesh.extents[2] * 1.1 else _yaw(rng, 45.0)
        v = ctx.mesh.vertices @ rot.T
        anchor = region.mean(axis=0) + np.array([rng.uniform(-0.02, 0.02), 0.0, rng.uniform(-0.02, 0.06)])
        return Placement(rot, touch(v, region, -Y, anchor))
    return place


def place_chair_seat(ctx: SceneContext, rng) -> Placement:
    """Chair under the buttocks, backrest touching the back (the chair's backrest is on its -z side)."""
    v = ctx.mesh.vertices
    seat = v[v[:, 2] > v[:, 2].min() + 0.06]
    seat_top = float(seat[:, 1].max())
    back_front = float(v[v[:, 1] > seat_top + 0.05][:, 2].max())
    sit = ctx.region("left thigh", "right thigh", "hips")
    sit = sit[sit[:, 2] < ctx.joints["lowerleg01.L"][2] - 0.12]
    torso = ctx.region("torso", "hips")
    t = np.array([rng.uniform(-0.02, 0.02), float(sit[:, 1].min()) - seat_top,
                  float(torso[:, 2].min()) - back_front + 0.005])
    return Placement(np.eye(3), t)


def place_chair_back(ctx: SceneContext, rng) -> Placement:
    """Chair in front, backrest towards the person, both hands on its top edge."""
    v = ctx.mesh.vertices
    top = float(v[:, 1].max())
    back_z = float(v[v[:, 1] > top - 0.05][:, 2].mean())
    hands = ctx.region("left hand", "right hand")
    t = np.array([0.0, float(hands[:, 1].min()) - top, float(hands[:, 2].mean()) - back_z])
    return Placement(np.eye(3), t)


def place_table(sides: tuple[str, ...]) -> Callable:
    def place(ctx: SceneContext, rng) -> Placement:
        names = [f"{'left' if s == 'L' else 'right'} hand" for s in sides]
        hands = ctx.region(*names)
        v = ctx.mesh.vertices
        rot = np.eye(3) if rng.random() < 0.5 else axis_rotation(Y, 180.0)
        v = v @ rot.T
        top = float(hands[:, 1].min())
        # the near edge stays in front of every other body vertex near the table top's height
        others = np.ones(len(ctx.vertices), dtype=bool)
        others[np.concatenate([ctx.parts[n] for n in names])] = False
        band = ctx.vertices[others & (ctx.vertices[:, 1] > top - 0.35)]
        edge = max(float(hands[:, 2].min()) - rng.uniform(0.04, 0.10), float(band[:, 2].max()) + 0.03)
        t = np.array([rng.uniform(-0.1, 0.1), top - float(v[:, 1].max()), edge - float(v[:, 2].min())])
        return Placement(rot, t)
    return place


def place_kick(side: str) -> Callable:
    def place(ctx: SceneContext, rng) -> Placement:
        foot = ctx.region(f"{'left' if side == 'L' else 'right'} foot")
        u = np.array([rng.uniform(-0.2, 0.2), -rng.uniform(0.1, 0.4), 1.0])
        u /= np.linalg.norm(u)
        front = foot[foot @ u > np.max(foot @ u) - 0.05]
        return Placement(np.eye(3), touch(ctx.mesh.vertices, foot, u, front.mean(axis=0)))
    return place


# --- the catalogue -----------------------------------------------------------------------------------------

_VERTICAL = axis_rotation(X, 90.0)  # a flat board stood up between the hands
_QUARTER = axis_rotation(Y, 90.0)


def build_catalogue() -> list[Interaction]:
    """Every interaction, grouped by object class (order fixed: it is part of the generator's determinism)."""
    return [
        Interaction("bottle", "hold_left", "holding the bottle in the left hand", pose_hold("L", BOTTLE_RADIUS),
                    place_in_hand("L")),
        Interaction("bottle", "hold_right", "holding the bottle in the right hand", pose_hold("R", BOTTLE_RADIUS),
                    place_in_hand("R")),
        Interaction("mug", "hold_left", "holding the mug in the left hand", pose_hold("L", MUG_RADIUS),
                    place_in_hand("L")),
        Interaction("mug", "hold_right", "holding the mug in the right hand", pose_hold("R", MUG_RADIUS),
                    place_in_hand("R")),
        Interaction("box", "carry", "carrying the box with both hands", pose_carry(0.16),
                    place_between_hands(_QUARTER)),
        Interaction("box", "sit", "sitting on the box", pose_sit,
                    place_under(("left thigh", "right thigh", "hips"), keep_below="lowerleg01.L")),
        Interaction("box", "stand", "standing on the box", pose_stand, place_under(("left foot", "right foot"))),
        Interaction("chair", "sit", "sitting on the chair", pose_sit, place_chair_seat),
        Interaction("chair", "lean", "leaning with both hands on the chair's backrest",
                    pose_lean(("L", "R"), (0.30, 0.40)), place_chair_back),
        Interaction("ball", "kick_left", "kicking the ball with the left foot", pose_kick("L"), place_kick("L")),
        Interaction("ball", "kick_right", "kicking the ball with the right foot", pose_kick("R"), place_kick("R")),
        Interaction("ball", "hold", "holding the ball with both hands", pose_carry(0.11),
                    place_between_hands(uniform=True)),
        Interaction("table", "lean_both", "leaning with both hands on the table",
                    pose_lean(("L", "R"), (0.42, 0.55)), place_table(("L", "R"))),
        Interaction("table", "lean_left", "leaning with the left hand on the table",
                    pose_lean(("L",), (0.42, 0.55)), place_table(("L",))),
        Interaction("table", "lean_right", "leaning with the right hand on the table",
                    pose_lean(("R",), (0.42, 0.55)), place_table(("R",))),
        Interaction("board", "stand", "standing on the board", pose_stand, place_under(("left foot", "right foot"))),
        Interaction("board", "carry", "carrying the board upright with both hands", pose_carry(0.30),
                    place_between_hands(_VERTICAL)),
    ]



@dataclass
class Combination:
    """Several interactions in one scene (sitting on the chair while holding the mug): one body ``pose`` that
    serves all of them, each object placed by its own interaction's placement and labelled on its own."""

    parts: tuple[Interaction, ...]
    pose: Callable[[PoseBuilder, np.random.Generator], None]

    @property
    def key(self) -> str:
        return "+".join(i.key for i in self.parts)

    @property
    def description(self) -> str:
        return " while ".join(i.description for i in self.parts)


def build_combinations() -> list[Combination]:
    """Two-object scenes whose objects touch different body parts: sitting on the chair while holding a mug or a
    bottle (either hand), standing on the board while holding a bottle (either hand) or carrying the box (order
    fixed: it is part of the generator's determinism)."""
    by_key = {i.key: i for i in build_catalogue()}
    combos = []
    for side, hand in (("L", "left"), ("R", "right")):
        for held, radius in (("mug", MUG_RADIUS), ("bottle", BOTTLE_RADIUS)):
            combos.append(Combination((by_key["chair/sit"], by_key[f"{held}/hold_{hand}"]),
                                      pose_sit_hold(side, radius)))
        combos.append(Combination((by_key["board/stand"], by_key[f"bottle/hold_{hand}"]),
                                  pose_hold(side, BOTTLE_RADIUS)))
    combos.append(Combination((by_key["board/stand"], by_key["box/carry"]), pose_carry(0.16)))
    return combos


# --- contacts ----------------------------------------------------------------------------------------------


def surface_points(mesh: trimesh.Trimesh, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` points evenly spread on the surface (deterministic) and the face each lies on."""
    rng = np.random.default_rng(seed)
    areas = mesh.area_faces
    face = rng.choice(len(areas), size=count, p=areas / areas.sum())
    r = rng.random((count, 2))
    flip = r.sum(axis=1) > 1
    r[flip] = 1 - r[flip]
    tri = mesh.triangles[face]
    pts = tri[:, 0] + r[:, :1] * (tri[:, 1] - tri[:, 0]) + r[:, 1:] * (tri[:, 2] - tri[:, 0])
    return pts, face


def contacts(body_vertices: np.ndarray, body_faces: np.ndarray, object_vertices: np.ndarray,
             object_faces: np.ndarray, distance: float = CONTACT_DISTANCE,
             seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(human contact ``[Nb]`` bool, object contact ``[No]`` bool) by surface proximity of the two meshes."""
    obj = trimesh.Trimesh(object_vertices, object_faces, process=False)
    body = trimesh.Trimesh(body_vertices, body_faces, process=False)
    obj_samples, obj_face = surface_points(obj, 8000, seed)
    obj_pts = np.concatenate([obj_samples, object_vertices])
    body_pts = np.concatenate([surface_points(body, 12000, seed + 1)[0], body_vertices])
    d_h, _ = cKDTree(obj_pts).query(body_vertices, distance_upper_bound=distance)
    body_tree = cKDTree(body_pts)
    d_o, _ = body_tree.query(object_vertices, distance_upper_bound=distance)
    # object meshes are coarse (edges up to ~10 cm): a face touched anywhere marks its three vertices
    d_s, _ = body_tree.query(obj_samples, distance_upper_bound=distance)
    object_contact = np.isfinite(d_o)
    touched = np.unique(obj_face[np.isfinite(d_s)])
    object_contact[np.asarray(object_faces)[touched].ravel()] = True
    return np.isfinite(d_h), object_contact


def yaw_symmetry_order(vertices: np.ndarray, max_order: int = 128, tolerance: float = 1e-4) -> int:
    """The largest ``k <= max_order`` such that turning ``vertices [N,3]`` by 360°/k about the Y axis maps the
    vertex set onto itself (within ``tolerance`` × the largest extent): 2 for a box or table, the number of
    segments for a revolved bottle, 1 for a mug (its handle)."""
    v = np.asarray(vertices, dtype=np.float64)
    tree = cKDTree(v)
    tol = tolerance * float(np.ptp(v, axis=0).max())
    for k in range(max_order, 1, -1):
        d, _ = tree.query(v @ axis_rotation(Y, 360.0 / k).T, distance_upper_bound=2 * tol)
        if np.all(d <= tol):
            return k
    return 1


def mesh_components(mesh: trimesh.Trimesh) -> list[np.ndarray]:
    """Vertex ids of each connected part (a chair's seat, legs and backrest; a mug's body and handle)."""
    labels = trimesh.graph.connected_component_labels(mesh.face_adjacency, node_count=len(mesh.faces))
    return [np.unique(mesh.faces[labels == k]) for k in np.unique(labels)]


def penetration_depth(body_vertices: np.ndarray, object_vertices: np.ndarray,
                      components: list[np.ndarray] | None = None) -> float:
    """Deepest body vertex inside the convex hull of the object (or of each of its ``components``), in m."""
    if components is not None:
        return max(penetration_depth(body_vertices, object_vertices[c]) for c in components if len(c) >= 4)
    hull = ConvexHull(object_vertices)
    a, b = hull.equations[:, :3], hull.equations[:, 3]
    lo, hi = object_vertices.min(axis=0), object_vertices.max(axis=0)
    near = np.all((body_vertices >= lo) & (body_vertices <= hi), axis=1)
    if not near.any():
        return 0.0
    signed = body_vertices[near] @ a.T + b  # <= 0 inside every plane
    inside = np.all(signed <= 0, axis=1)
    if not inside.any():
        return 0.0
    return float(np.max(-signed[inside].max(axis=1)))
