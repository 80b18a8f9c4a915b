"""SMPL-X / SMPL-H / SMPL from the user's own (licensed) model files through the ``smplx`` package.

Files are looked up as ``<body.model_dir>/<type>/<STEM>.npz`` or ``.pkl`` (``smplx/SMPLX_NEUTRAL``,
``smplh/SMPLH_NEUTRAL``, ``smpl/SMPL_NEUTRAL``); a missing file is an error naming the exact expected paths.
``smplx`` is an optional extra (its code is under the MPI non-commercial licence):
``pip install -e 'ros2_ws/src/interactvlm_ros[smplx]'``.

Parameters: ``pose`` = body pose axis-angles (21 joints for SMPL-X/SMPL-H, 23 for SMPL) followed, for SMPL-X /
SMPL-H, by the left and right hand poses (15 joints each, full axis-angle, flat-hand mean); ``shape`` = 10
betas; ``global_orient`` and ``transl`` as in smplx. Jaw, eyes and expression stay zero.
"""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np
import torch

from interactvlm_ros.body.base import STAR_HIP_DEG, BodyModel, BodyOutput, body_part_groups

STEMS = {"smplx": "SMPLX_NEUTRAL", "smplh": "SMPLH_NEUTRAL", "smpl": "SMPL_NEUTRAL"}
NUM_JOINTS = {"smplx": 55, "smplh": 52, "smpl": 24}
NUM_BODY_JOINTS = {"smplx": 21, "smplh": 21, "smpl": 23}
NUM_BETAS = 10


def expected_paths(name: str, model_dir: str | Path) -> list[Path]:
    """Where the model file of ``name`` is looked for, in order."""
    root = Path(model_dir).expanduser()
    return [root / name / f"{STEMS[name]}{ext}" for ext in (".npz", ".pkl")]


def find_model_file(name: str, model_dir: str | Path) -> Path:
    """The model file, or FileNotFoundError naming the exact expected paths and how to get them."""
    if name not in STEMS:
        raise ValueError(f"unknown SMPL-family model {name!r}; choose one of {', '.join(STEMS)}")
    if not model_dir:
        raise FileNotFoundError(
            f"body.model={name} needs the licensed model file: set body.model_dir to a folder containing "
            f"{name}/{STEMS[name]}.npz (or .pkl); download it after registering at the {name.upper()} website")
    paths = expected_paths(name, model_dir)
    for p in paths:
        if p.is_file():
            return p
    raise FileNotFoundError(
        f"{name} model file not found: expected {paths[0]} or {paths[1]} (body.model_dir={model_dir}); download "
        f"{STEMS[name]} after registering at the {name.upper()} website and place it there")


def _joint_names(name: str) -> list[str]:
    from smplx.joint_names import JOINT_NAMES, SMPLH_JOINT_NAMES

    if name == "smplx":
        return list(JOINT_NAMES[:55])
    if name == "smplh":
        return list(SMPLH_JOINT_NAMES[:52])
    return list(JOINT_NAMES[:22]) + ["left_hand", "right_hand"]


def _joint_parts() -> dict[str, str]:
    parts = {"pelvis": "hips", "spine1": "torso", "spine2": "torso", "spine3": "torso", "neck": "neck",
             "head": "head", "jaw": "head", "left_eye_smplhf": "head", "right_eye_smplhf": "head"}
    for side in ("left", "right"):
        parts.update({f"{side}_hip": f"{side} thigh", f"{side}_knee": f"{side} lower leg",
                      f"{side}_ankle": f"{side} foot", f"{side}_foot": f"{side} foot", f"{side}_collar": "torso",
                      f"{side}_shoulder": f"{side} upper arm", f"{side}_elbow": f"{side} forearm",
                      f"{side}_wrist": f"{side} hand", f"{side}_hand": f"{side} hand"})
        for finger in ("index", "middle", "pinky", "ring", "thumb"):
            for k in (1, 2, 3):
                parts[f"{side}_{finger}{k}"] = f"{side} hand"
    return parts


def load_model_data(path: Path) -> dict:
    """The arrays of an SMPL-family ``.npz`` / ``.pkl`` file (pickle: the official format; user-supplied)."""
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=True) as z:
            return {k: z[k] for k in z.files}
    with open(path, "rb") as fh:
        return dict(pickle.load(fh, encoding="latin1"))


class SmplFamilyBody(BodyModel):
    """SMPL-X (10,475 vertices), SMPL-H or SMPL (6,890 vertices) via ``smplx`` (see the module docstring)."""

    def __init__(self, name: str, model_dir: str | Path, dtype: torch.dtype = torch.float32):
        super().__init__()
        path = find_model_file(name, model_dir)
        try:
            import smplx
            from smplx.utils import Struct
        except ImportError as exc:
            raise ImportError(f"body.model={name} needs the optional 'smplx' package: pip install -e "
                              "'ros2_ws/src/interactvlm_ros[smplx]'") from exc
        self.name = name
        self.path = path
        common = {"gender": "neutral", "num_betas": NUM_BETAS, "dtype": dtype}
        if name == "smplx":
            self.model = smplx.SMPLX(str(path), ext=path.suffix[1:], use_pca=False, flat_hand_mean=True,
                                     use_face_contour=False, num_expression_coeffs=10, **common)
        elif name == "smplh":
            self.model = smplx.SMPLH(str(path), data_struct=Struct(**load_model_data(path)), ext=path.suffix[1:],
                                     use_pca=False, flat_hand_mean=True, **common)
        else:
            self.model = smplx.SMPL(str(path), data_struct=Struct(**load_model_data(path)), **common)
        self.model.eval()
        self.joint_names = _joint_names(name)
        self.num_body_joints = NUM_BODY_JOINTS[name]
        self.pose_dim = 3 * self.num_body_joints + (90 if name != "smpl" else 0)
        self.shape_dim = NUM_BETAS
        self._faces = np.asarray(self.model.faces, dtype=np.int64)
        self._dtype = dtype

    @property
    def faces(self) -> np.ndarray:
        return self._faces

    @property
    def num_vertices(self) -> int:
        return int(self.model.v_template.shape[0])

    @property
    def param_dtype(self) -> torch.dtype:
        return self._dtype

    def forward(self, pose=None, shape=None, global_orient=None, transl=None) -> BodyOutput:
        p = self._params(pose, shape, global_orient, transl)
        b = p["pose"].shape[0]
        nb = 3 * self.num_body_joints
        kw = {"betas": p["shape"], "body_pose": p["pose"][:, :nb], "global_orient": p["global_orient"],
              "transl": p["transl"], "return_verts": True}
        if self.name != "smpl":
            kw["left_hand_pose"] = p["pose"][:, nb:nb + 45]
            kw["right_hand_pose"] = p["pose"][:, nb + 45:nb + 90]
        if self.name == "smplx":
            z3 = p["transl"].new_zeros(b, 3)
            kw.update(jaw_pose=z3, leye_pose=z3, reye_pose=z3, expression=p["transl"].new_zeros(b, 10))
        out = self.model(**kw)
        return BodyOutput(vertices=out.vertices, joints=out.joints[:, :len(self.joint_names)])

    def star_pose_params(self) -> dict[str, torch.Tensor]:
        """The method's "vitruvian" pose: all body joints zero (T-pose arms) except the left hip +30° and the
        right hip -30° about z; flat hands; zero betas."""
        params = self.zero_params(1)
        angle = math.radians(STAR_HIP_DEG)
        params["pose"][0, 2] = angle  # body_pose[0] = left hip, about z
        params["pose"][0, 5] = -angle  # body_pose[1] = right hip
        return params

    def part_vertex_ids(self) -> dict[str, np.ndarray]:
        w = self.model.lbs_weights.detach().cpu().numpy()
        dominant = np.argmax(w, axis=1)
        return body_part_groups(_joint_parts(), dominant, self.joint_names)
