"""A synthetic SMPL-X-format model file for tests (no licensed data): the real key set and array shapes, a crude
capsule body (torso, head, two arms in T-pose, two legs) whose skinning follows the SMPL-X skeleton.

``write_synthetic_smplx(root)`` writes ``root/smplx/SMPLX_NEUTRAL.npz`` (what ``smplx.create(root)`` expects) and
returns its path. Counts: 10,475 vertices (6 closed ellipsoid parts of 10,466 vertices + 9 unreferenced "eye"
vertices), 20,908 faces, 55 joints.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

NUM_VERTICES = 10475
NUM_FACES = 20908
NUM_JOINTS = 55

# SMPL-X kinematic tree (parents of the 55 joints)
PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 15, 15, 15,
           20, 25, 26, 20, 28, 29, 20, 31, 32, 20, 34, 35, 20, 37, 38,
           21, 40, 41, 21, 43, 44, 21, 46, 47, 21, 49, 50, 21, 52, 53]


def _ellipsoid(a, b, radius, n_lat, n_lon):
    """Closed ellipsoid around segment a→b: ``n_lat·n_lon + 2`` vertices, ``2·n_lat·n_lon`` faces."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    axis = b - a
    half = np.linalg.norm(axis) / 2.0 + radius
    d = axis / np.linalg.norm(axis)
    u = np.cross(d, [0.0, 0.0, 1.0] if abs(d[2]) < 0.9 else [1.0, 0.0, 0.0])
    u /= np.linalg.norm(u)
    w = np.cross(d, u)
    c = (a + b) / 2.0
    theta = np.linspace(0, np.pi, n_lat + 2)[1:-1]
    phi = np.linspace(0, 2 * np.pi, n_lon, endpoint=False)
    t, p = np.meshgrid(theta, phi, indexing="ij")
    ring = (c + half * np.cos(t)[..., None] * d
            + radius * np.sin(t)[..., None] * (np.cos(p)[..., None] * u + np.sin(p)[..., None] * w))
    verts = np.concatenate([(c + half * d)[None], ring.reshape(-1, 3), (c - half * d)[None]])
    faces = []
    top, bottom = 0, n_lat * n_lon + 1
    idx = lambda i, j: 1 + i * n_lon + (j % n_lon)  # noqa: E731
    for j in range(n_lon):
        faces.append([top, idx(0, j + 1), idx(0, j)])
        faces.append([bottom, idx(n_lat - 1, j), idx(n_lat - 1, j + 1)])
    for i in range(n_lat - 1):
        for j in range(n_lon):
            faces.append([idx(i, j), idx(i, j + 1), idx(i + 1, j)])
            faces.append([idx(i, j + 1), idx(i + 1, j + 1), idx(i + 1, j)])
    faces = np.asarray(faces)
    tri = verts[faces] - c
    if np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() < 0:  # make normals point outwards
        faces = faces[:, ::-1].copy()
    return verts, faces


def _joints() -> np.ndarray:
    j = np.zeros((NUM_JOINTS, 3))
    for side, s in ((0, 1.0), (1, -1.0)):
        j[1 + side] = [s * 0.09, -0.05, 0]  # hips
        j[4 + side] = [s * 0.10, -0.47, 0]  # knees
        j[7 + side] = [s * 0.11, -0.88, 0]  # ankles
        j[10 + side] = [s * 0.11, -0.93, 0.08]  # feet
        j[13 + side] = [s * 0.08, 0.42, 0]  # collars
        j[16 + side] = [s * 0.20, 0.42, 0]  # shoulders
        j[18 + side] = [s * 0.46, 0.42, 0]  # elbows
        j[20 + side] = [s * 0.72, 0.42, 0]  # wrists
        j[23 + side] = [s * 0.03, 0.67, 0.09]  # eyes
        for f in range(15):  # fingers
            j[25 + 15 * side + f] = [s * (0.75 + 0.02 * (f % 3)), 0.42, 0.03 * (f // 3 - 2)]
    j[3], j[6], j[9] = [0, 0.10, 0], [0, 0.22, 0], [0, 0.32, 0]
    j[12], j[15], j[22] = [0, 0.50, 0], [0, 0.62, 0], [0, 0.58, 0.05]
    return j


def synthetic_smplx_arrays() -> dict[str, np.ndarray]:
    """All arrays of the synthetic SMPL-X file (float32 / int64)."""
    parts = [  # (name, a, b, radius, n_lat, n_lon)
        ("torso", [0, -0.05, 0], [0, 0.45, 0], 0.16, 80, 40),
        ("head", [0, 0.60, 0.01], [0, 0.70, 0.01], 0.10, 40, 32),
        ("larm", [0.20, 0.42, 0], [0.82, 0.42, 0], 0.045, 60, 24),
        ("rarm", [-0.20, 0.42, 0], [-0.82, 0.42, 0], 0.045, 60, 24),
        ("lleg", [0.09, -0.05, 0], [0.11, -0.90, 0], 0.07, 91, 17),
        ("rleg", [-0.09, -0.05, 0], [-0.11, -0.90, 0], 0.07, 91, 17),
    ]
    verts, faces, labels = [], [], []
    offset = 0
    for name, a, b, r, n_lat, n_lon in parts:
        v, f = _ellipsoid(a, b, r, n_lat, n_lon)
        verts.append(v)
        faces.append(f + offset)
        labels += [name] * len(v)
        offset += len(v)
    extra = NUM_VERTICES - offset  # unreferenced vertices (like SMPL-X's eyeball interiors)
    verts.append(np.array([[0.0, 0.66, 0.02]]) + 0.005 * np.arange(extra)[:, None])
    labels += ["head"] * extra
    v = np.concatenate(verts).astype(np.float32)
    f = np.concatenate(faces).astype(np.int64)
    labels = np.array(labels)
    assert v.shape == (NUM_VERTICES, 3) and f.shape == (NUM_FACES, 3), (v.shape, f.shape)

    joints = _joints()
    # one-hot skinning to the joint that moves each region
    dom = np.zeros(NUM_VERTICES, dtype=np.int64)
    x, y = v[:, 0], v[:, 1]
    torso = labels == "torso"
    dom[torso] = np.select([y[torso] < 0.10, y[torso] < 0.22, y[torso] < 0.32], [0, 3, 6], 9)
    dom[labels == "head"] = 15
    for name, side in (("larm", 0), ("rarm", 1)):
        m = labels == name
        dom[m] = np.select([np.abs(x[m]) < 0.46, np.abs(x[m]) < 0.72], [16 + side, 18 + side], 20 + side)
    for name, side in (("lleg", 0), ("rleg", 1)):
        m = labels == name
        dom[m] = np.select([y[m] > -0.47, y[m] > -0.88], [1 + side, 4 + side], 7 + side)
    weights = np.zeros((NUM_VERTICES, NUM_JOINTS), np.float32)
    weights[np.arange(NUM_VERTICES), dom] = 1.0
    # joint regressor: mean of the 4 template vertices nearest to each designed joint location
    regressor = np.zeros((NUM_JOINTS, NUM_VERTICES), np.float32)
    for j in range(NUM_JOINTS):
        near = np.argsort(np.linalg.norm(v - joints[j], axis=1))[:4]
        regressor[j, near] = 0.25
    shapedirs = np.zeros((NUM_VERTICES, 3, 400), np.float32)
    shapedirs[:, :, 0] = 0.05 * v  # beta 0: overall size
    shapedirs[:, 0, 1] = 0.05 * v[:, 0]  # beta 1: width
    return {
        "v_template": v, "f": f, "shapedirs": shapedirs,
        "posedirs": np.zeros((NUM_VERTICES, 3, 486), np.float32),
        "J_regressor": regressor, "weights": weights,
        "kintree_table": np.stack([np.array(PARENTS), np.arange(NUM_JOINTS)]).astype(np.int64),
        "hands_componentsl": np.eye(45, dtype=np.float32), "hands_componentsr": np.eye(45, dtype=np.float32),
        "hands_meanl": np.zeros(45, np.float32), "hands_meanr": np.zeros(45, np.float32),
        "lmk_faces_idx": np.arange(51, dtype=np.int64), "lmk_bary_coords": np.full((51, 3), 1 / 3, np.float32),
    }


def write_synthetic_smplx(root: str | Path) -> Path:
    """Write ``root/smplx/SMPLX_NEUTRAL.npz`` and return its path."""
    path = Path(root) / "smplx" / "SMPLX_NEUTRAL.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **synthetic_smplx_arrays())  # ~1 MB instead of ~115 MB (mostly zero blend shapes)
    return path


# --- SMPL / SMPL-H (6,890 vertices, 13,776 faces): an ellipsoidal blob with the real key set -----------------
SMPL_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]
SMPLH_PARENTS = SMPL_PARENTS[:22] + [20, 22, 23, 20, 25, 26, 20, 28, 29, 20, 31, 32, 20, 34, 35,
                                     21, 37, 38, 21, 40, 41, 21, 43, 44, 21, 46, 47, 21, 49, 50]


def synthetic_smpl_arrays(kind: str = "smpl") -> dict[str, np.ndarray]:
    """Arrays of a synthetic ``smpl`` (24 joints) or ``smplh`` (52 joints) file: a closed ellipsoid of exactly
    6,890 vertices and 13,776 faces (84 rings × 82 + 2 poles) skinned by height/side to the leg, spine and arm
    joints. Only the format is realistic, not the shape."""
    n_joints = 24 if kind == "smpl" else 52
    parents = SMPL_PARENTS if kind == "smpl" else SMPLH_PARENTS
    v, f = _ellipsoid([0, -0.8, 0], [0, 0.7, 0], 0.25, 84, 82)
    v = v.astype(np.float32)
    assert v.shape == (6890, 3) and f.shape == (13776, 3), (v.shape, f.shape)
    x, y = v[:, 0], v[:, 1]
    side = (x < 0).astype(np.int64)  # 0 = left (+x), 1 = right
    dom = np.select([y < -0.45, y < -0.05, (y > 0.3) & (np.abs(x) > 0.12), y > 0.55], [4 + side, 1 + side,
                    16 + side, 15], 3)
    weights = np.zeros((6890, n_joints), np.float32)
    weights[np.arange(6890), dom] = 1.0
    joints = _joints()[:22]
    regressor = np.zeros((n_joints, 6890), np.float32)
    for j in range(n_joints):
        target = joints[j] if j < 22 else joints[20 + (0 if j < 22 + (n_joints - 22) // 2 else 1)]
        regressor[j, np.argsort(np.linalg.norm(v - target, axis=1))[:4]] = 0.25
    data = {
        "v_template": v, "f": f.astype(np.int64), "J_regressor": regressor, "weights": weights,
        "shapedirs": np.zeros((6890, 3, 10 if kind == "smpl" else 16), np.float32),
        "posedirs": np.zeros((6890, 3, 9 * (n_joints - 1)), np.float32),
        "kintree_table": np.stack([np.array(parents), np.arange(n_joints)]).astype(np.int64),
    }
    data["shapedirs"][:, :, 0] = 0.05 * v
    if kind == "smplh":
        data.update(hands_componentsl=np.eye(45, dtype=np.float32), hands_componentsr=np.eye(45, dtype=np.float32),
                    hands_meanl=np.zeros(45, np.float32), hands_meanr=np.zeros(45, np.float32))
    return data


def write_synthetic_smpl(root: str | Path, kind: str = "smpl", ext: str = "pkl") -> Path:
    """Write ``root/<kind>/<KIND>_NEUTRAL.<ext>`` (pickle, like the official files, or npz) and return it."""
    import pickle

    path = Path(root) / kind / f"{kind.upper()}_NEUTRAL.{ext}"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = synthetic_smpl_arrays(kind)
    if ext == "npz":
        np.savez_compressed(path, **data)
    else:
        with open(path, "wb") as fh:
            pickle.dump(data, fh)
    return path
