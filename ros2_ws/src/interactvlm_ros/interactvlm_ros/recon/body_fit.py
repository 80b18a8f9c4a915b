"""Fit the body model's pose, shape and camera placement to 2D keypoints (optionally depth).

Camera frame = ROS optical frame (x right, y down, z forward, metres). The body model's own frame is y up,
z forward, the body's left at +x, pelvis at the origin; a fit holds ``rotation`` ``[3,3]`` and ``translation``
``[3]`` with ``X_cam = rotation @ X_body + translation``.

Losses: robust (Geman–McClure) keypoint reprojection weighted by visibility, normalised by the person's box
size; a pose prior (squared axis-angles of the fitted joints, towards the rest pose); a shape prior; with a
depth image, the depth of the torso keypoints against the depth under them (+ half a torso thickness); with a
previous frame, a temporal term. Adam over a 6D rotation, the translation, the pose of the joints keypoints
constrain, and shape. The first quarter of the iterations moves only the rotation and translation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from interactvlm_ros.body.base import BodyModel
from interactvlm_ros.recon.camera import Intrinsics, matrix_to_rotation_6d, rotation_6d_to_matrix
from interactvlm_ros.recon.keypoints import FIT_KEYPOINTS, PersonKeypoints

KP_NAMES: tuple[str, ...] = tuple(FIT_KEYPOINTS)
_KP = {n: i for i, n in enumerate(KP_NAMES)}
# Limbs used for the initial depth (torso first: least foreshortened).
_TORSO_PAIRS = (("left_shoulder", "right_shoulder"), ("left_hip", "right_hip"), ("left_shoulder", "left_hip"),
                ("right_shoulder", "right_hip"))
# Anny bones the fit moves (the rest keep their rest pose: fingers, toes, eyes, twist bones).
ANNY_FIT_BONES = ("spine05", "spine04", "spine03", "spine02", "spine01", "neck01", "neck02", "head",
                  "clavicle.L", "clavicle.R", "upperarm01.L", "upperarm01.R", "lowerarm01.L", "lowerarm01.R",
                  "wrist.L", "wrist.R", "upperleg01.L", "upperleg01.R", "lowerleg01.L", "lowerleg01.R",
                  "foot.L", "foot.R")
# SMPL-family joints the fit moves.
SMPL_FIT_JOINTS = ("left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle",
                   "right_ankle", "spine3", "neck", "left_collar", "right_collar", "head", "left_shoulder",
                   "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist")
# Camera-from-body rotations of a person facing the camera / facing away (upright).
FACING_CAMERA = np.diag([1.0, -1.0, -1.0])
FACING_AWAY = np.diag([-1.0, -1.0, 1.0])


# --------------------------------------------------------------------------------------------------------------
# Keypoints of the body model
# --------------------------------------------------------------------------------------------------------------
class KeypointHead(torch.nn.Module):
    """Body-frame 3D keypoints ``[B,K,3]`` (K = :data:`KP_NAMES`) from ``pose [B,P]``, ``shape [B,S]``.

    ``available [K]`` bool says which keypoints the body model defines. :meth:`for_body` picks the fast Anny
    head (skins only the ~hundreds of vertices the keypoint regressor uses) or the joint-name head.
    """

    available: torch.Tensor

    @staticmethod
    def for_body(body: BodyModel) -> KeypointHead:
        if body.name == "anny":
            return AnnyKeypointHead(body)
        return JointKeypointHead(body)


# SMPL-family keypoints that are surface points: our name -> smplx.vertex_ids key (SMPL-X's extra joints).
_SMPL_VERTEX_KEYPOINTS = {"nose": "nose", "left_eye": "leye", "right_eye": "reye", "left_ear": "lear",
                          "right_ear": "rear", "left_big_toe": "LBigToe", "right_big_toe": "RBigToe",
                          "left_heel": "LHeel", "right_heel": "RHeel"}


class JointKeypointHead(KeypointHead):
    """Keypoints as named joints of the body model's forward (shoulders, elbows, wrists, hips, knees, ankles)
    plus, for the SMPL family, the surface vertices SMPL-X uses for nose, eyes, ears, big toes and heels.
    Runs the full forward."""

    def __init__(self, body: BodyModel):
        super().__init__()
        self.body = body
        names = list(body.joint_names)
        vids: dict[str, int] = {}
        try:
            from smplx.vertex_ids import vertex_ids

            table = vertex_ids.get("smplh" if body.name in ("smpl", "smplh") else body.name, {})
            vids = {k: table[v] for k, v in _SMPL_VERTEX_KEYPOINTS.items() if v in table}
        except ImportError:
            pass
        self.source = []  # ("joint"|"vertex"|"none", index)
        for n in KP_NAMES:
            if n in names:
                self.source.append(("joint", names.index(n)))
            elif n in vids and vids[n] < body.num_vertices:
                self.source.append(("vertex", vids[n]))
            else:
                self.source.append(("none", 0))
        self.register_buffer("available", torch.tensor([k != "none" for k, _ in self.source]), persistent=False)

    def rest_state(self, shape: torch.Tensor) -> None:
        return None

    def forward(self, pose: torch.Tensor, shape: torch.Tensor, rest=None) -> torch.Tensor:
        out = self.body(pose=pose, shape=shape)
        cols = [out.joints[:, i] if kind == "joint" else out.vertices[:, i] if kind == "vertex"
                else out.joints[:, 0] for kind, i in self.source]
        return torch.stack(cols, dim=1)


class AnnyKeypointHead(KeypointHead):
    """Anny's own COCO(+feet) keypoint regressor applied to only the vertices it weights.

    Reproduces Anny 0.6's forward (phenotype blendshapes → cached rest bones → forward kinematics → linear
    blend skinning) on a vertex subset; :func:`check_keypoint_head` compares it with the full forward.
    """

    TOP_WEIGHTS = 64

    def __init__(self, body: BodyModel):
        super().__init__()
        import anny

        self.body = body
        m = body.model
        if getattr(m, "bone_orientation", None) != "cached":
            raise ValueError(f"AnnyKeypointHead supports Anny's 'cached' bone orientation, not "
                             f"{getattr(m, 'bone_orientation', None)!r}")
        reg = anny.KeypointsRegressor.coco(m, labels=list(KP_NAMES))
        dense = reg.regression_weights.to(torch.float32)  # [K,N], up to 4105 vertices per keypoint
        # Keep each keypoint's 64 largest weights (renormalised): 1.3k vertices instead of 8.5k, < 1 mm off.
        top = dense.topk(min(self.TOP_WEIGHTS, dense.shape[1]), dim=1)
        weights = torch.zeros_like(dense).scatter_(1, top.indices, top.values)
        weights = weights / weights.sum(1, keepdim=True)
        idx = torch.nonzero(weights.abs().sum(0) > 0).squeeze(1)
        self.register_buffer("weights", weights[:, idx].contiguous(), persistent=False)  # [K,S]
        self.register_buffer("vidx", idx, persistent=False)
        self.register_buffer("available", torch.ones(len(KP_NAMES), dtype=torch.bool), persistent=False)

    def rest_bones(self, blend: torch.Tensor) -> torch.Tensor:
        """``[B,J,4,4]`` rest bone poses for blendshape coefficients ``[B,C]`` (Anny's cached method)."""
        import roma
        from anny.skinning.skinning import apply_linear_blendshape

        m = self.body.model
        heads = apply_linear_blendshape(m.template_bone_heads, m.bone_heads_blendshapes, blend)
        mat = m.bone_template_orientation_matrices[None] + torch.einsum("ba,akij->bkij", blend,
                                                                       m.bone_orientation_blendshapes)
        orient = roma.special_procrustes(mat)
        if m.rest_orientation_refiner is not None:
            orient = m.rest_orientation_refiner(orient, heads)
        poses = roma.Rigid(linear=orient, translation=heads).to_homogeneous()
        if m.root_identity_orientation:
            poses = poses.clone()
            poses[:, 0, :3, :3] = torch.eye(3, dtype=poses.dtype, device=poses.device)
        return poses

    def rest_state(self, shape: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Shape-dependent part: rest vertices of the subset ``[B,S,3]`` and rest bone poses ``[B,J,4,4]``."""
        m = self.body.model
        pheno = m._parse_parameter_kwargs(0.5 + shape, m.phenotype_labels, 0.5, "phenotype_kwargs")
        local = m._parse_parameter_kwargs(None, m.local_change_labels, 0.0, "local_changes_kwargs")
        facial = m._parse_parameter_kwargs(None, m.facial_action_labels, 0.0, "facial_actions")
        blend = m._get_phenotype_blendshape_coefficients(pheno, local, facial)
        rest_v = m.template_vertices[self.vidx][None] + torch.einsum("cpd,bc->bpd", m.blendshapes[:, self.vidx],
                                                                     blend)
        return rest_v, self.rest_bones(blend)

    def forward(self, pose: torch.Tensor, shape: torch.Tensor,
                rest: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """``rest`` (from :meth:`rest_state`) skips the shape path when the shape is held fixed."""
        body, m = self.body, self.body.model
        rest_v, rest_bones = rest if rest is not None else self.rest_state(shape)
        transforms, _ = m.get_bone_transforms(body._deltas(pose), rest_bones)  # [B,J,4,4]
        bw = m.vertex_bone_weights[self.vidx]  # [S,k]
        bi = m.vertex_bone_indices[self.vidx]  # [S,k]
        t = transforms[:, bi]  # [B,S,k,4,4]
        moved = (t[..., :3, :3] @ rest_v[:, :, None, :, None]).squeeze(-1) + t[..., :3, 3]  # [B,S,k,3]
        skinned = (bw[None, :, :, None] * moved).sum(2)  # [B,S,3]
        kp = torch.einsum("ks,bsd->bkd", self.weights, skinned)
        return kp @ body.to_yup.T


def regress_keypoints(body: BodyModel, vertices: torch.Tensor) -> torch.Tensor | None:
    """Keypoints ``[B,K,3]`` from full vertices ``[B,N,3]`` with Anny's regressor (None for other models)."""
    if body.name != "anny":
        return None
    import anny

    reg = anny.KeypointsRegressor.coco(body.model, labels=list(KP_NAMES))
    return torch.einsum("kn,bnd->bkd", reg.regression_weights.to(vertices.dtype), vertices)


# --------------------------------------------------------------------------------------------------------------
# The fit
# --------------------------------------------------------------------------------------------------------------
@dataclass
class BodyFit:
    """A fitted person. ``pose [1,P]``, ``shape [1,S]`` body parameters; ``rotation [3,3]``, ``translation [3]``
    camera-from-body; ``keypoints_cam [K,3]`` fitted 3D keypoints in the camera frame; ``reprojection_px``
    mean visible-keypoint error in pixels; ``ms`` wall time; ``iterations``."""

    pose: torch.Tensor
    shape: torch.Tensor
    rotation: np.ndarray
    translation: np.ndarray
    keypoints_cam: np.ndarray
    reprojection_px: float
    iterations: int
    ms: float

    def body_output(self, body: BodyModel):
        """Posed ``vertices [N,3]`` and ``joints [J,3]`` (numpy float32) in the camera frame."""
        with torch.no_grad():
            out = body(pose=self.pose, shape=self.shape)
        r = self.rotation.astype(np.float32)
        t = self.translation.astype(np.float32)
        v = out.vertices[0].cpu().numpy() @ r.T + t
        j = out.joints[0].cpu().numpy() @ r.T + t
        return v.astype(np.float32), j.astype(np.float32)


class _single_thread:
    """Run small-tensor optimisation loops on one intra-op thread (several times faster than 2+ threads for
    these tiny ops, especially on a busy machine); restores the previous setting."""

    def __enter__(self):
        self._n = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc):
        torch.set_num_threads(self._n)


def _gmof(sq: torch.Tensor, sigma: float) -> torch.Tensor:
    return sq / (sq + sigma * sigma)


class BodyFitter:
    """Fits one person at a time; reuse it across frames (it holds the keypoint head)."""

    def __init__(self, body: BodyModel, iterations: int = 80, pose_prior_weight: float = 1.0,
                 shape_prior_weight: float = 1.0, min_visibility: float = 0.5, lr: float = 0.03,
                 keypoint3d_weight: float = 4.0):
        self.body = body
        self.head = KeypointHead.for_body(body)
        self.iterations = int(iterations)
        self.pose_prior_weight = float(pose_prior_weight)
        self.shape_prior_weight = float(shape_prior_weight)
        self.min_visibility = float(min_visibility)
        self.lr = float(lr)
        self.keypoint3d_weight = float(keypoint3d_weight)
        mask = torch.zeros(body.pose_dim)
        names = list(body.joint_names)
        chosen = ANNY_FIT_BONES if body.name == "anny" else SMPL_FIT_JOINTS
        for n in chosen:
            if n in names:
                j = names.index(n) - 1  # the pose vector excludes joint 0 (Anny's root, SMPL's pelvis)
                if 0 <= j and 3 * j + 3 <= body.pose_dim:
                    mask[3 * j:3 * j + 3] = 1.0
        if mask.sum() == 0:  # unknown joint naming: fit every pose parameter
            mask[:] = 1.0
        self.pose_mask = mask
        with torch.no_grad():
            zero = body.zero_params(1)
            self.rest_keypoints = self.head(zero["pose"], zero["shape"])[0].numpy().astype(np.float64)

    # --- initialisation -----------------------------------------------------------------------------------
    def initial_placement(self, kp: np.ndarray, conf: np.ndarray, intr: Intrinsics,
                          depth: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Camera-from-body rotation (facing the camera unless the person's left shoulder/hip is on the image
        left) and translation (depth from torso size vs the rest body, or from the depth image)."""
        vis = conf >= self.min_visibility
        votes = 0.0
        for a, b in (("left_shoulder", "right_shoulder"), ("left_hip", "right_hip")):
            if vis[_KP[a]] and vis[_KP[b]]:
                votes += kp[_KP[a], 0] - kp[_KP[b], 0]
        rot = FACING_CAMERA if votes >= 0 else FACING_AWAY
        f = 0.5 * (intr.fx + intr.fy)
        l3 = l2 = 0.0
        for a, b in _TORSO_PAIRS:
            if vis[_KP[a]] and vis[_KP[b]]:
                l3 += np.linalg.norm(self.rest_keypoints[_KP[a]] - self.rest_keypoints[_KP[b]])
                l2 += np.linalg.norm(kp[_KP[a]] - kp[_KP[b]])
        if l2 < 1e-3:  # no torso: use the spread of all visible keypoints against the body's height
            pts = kp[vis] if vis.any() else kp
            l2 = max(float(np.ptp(pts[:, 1])), 1.0)
            l3 = float(np.ptp(self.rest_keypoints[:, 1]))
        z = f * l3 / l2
        torso = [_KP[n] for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip") if vis[_KP[n]]]
        if depth is not None and torso:
            h, w = depth.shape
            uv = np.round(kp[torso]).astype(int)
            ok = (uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (uv[:, 1] < h)
            d = depth[uv[ok, 1], uv[ok, 0]] if ok.any() else np.zeros(0)
            d = d[d > 0]
            if len(d):
                z = float(np.median(d)) + 0.1
        hips = [_KP["left_hip"], _KP["right_hip"]]
        if vis[hips].all():
            centre_2d, centre_3d = kp[hips].mean(0), self.rest_keypoints[hips].mean(0)
        else:
            centre_2d, centre_3d = (kp[vis] if vis.any() else kp).mean(0), self.rest_keypoints.mean(0)
        centre_cam = intr.backproject(centre_2d, z)
        return rot, centre_cam - rot @ centre_3d

    # --- fit ----------------------------------------------------------------------------------------------
    def fit(self, person: PersonKeypoints, intr: Intrinsics, depth: np.ndarray | None = None,
            init: BodyFit | None = None, iterations: int | None = None) -> BodyFit:
        """Fit to one person's keypoints; ``init`` (the same person's previous fit) warm-starts a video frame
        and halves the default iterations; ``depth`` is float metres ``[H,W]`` aligned with the image."""
        t0 = time.perf_counter()
        kp = np.asarray(person.keypoints, dtype=np.float64)
        conf = np.asarray(person.confidence, dtype=np.float64).copy()
        avail = self.head.available.numpy()
        conf[~avail] = 0.0
        conf[conf < self.min_visibility] = 0.0
        if (conf > 0).sum() < 4:
            raise ValueError(f"too few visible keypoints to fit a body ({int((conf > 0).sum())} < 4)")
        if iterations is None:
            iterations = self.iterations if init is None else max(1, self.iterations // 2)
        dtype = torch.float32
        if init is None:
            rot0, t0_ = self.initial_placement(kp, conf, intr, depth)
            pose0 = self.body.zero_params(1)["pose"]
            shape0 = self.body.zero_params(1)["shape"]
        else:
            rot0, t0_, pose0, shape0 = init.rotation, init.translation, init.pose, init.shape
        r6 = matrix_to_rotation_6d(torch.tensor(rot0, dtype=dtype)).clone().requires_grad_(True)
        trans = torch.tensor(t0_, dtype=dtype).clone().requires_grad_(True)
        pose = pose0.detach().clone().to(dtype).requires_grad_(True)
        shape = shape0.detach().clone().to(dtype).requires_grad_(True)
        prev_pose = pose0.detach().clone().to(dtype) if init is not None else None

        target = torch.tensor(kp, dtype=dtype)
        weight = torch.tensor(conf, dtype=dtype)
        vis = conf > 0
        box = np.ptp(kp[vis], axis=0)
        scale = float(max(np.hypot(*box), 20.0))
        mask = self.pose_mask.to(dtype)
        depth_terms = self._depth_targets(kp, conf, depth)
        rel3d = None
        if person.keypoints3d is not None and self.keypoint3d_weight > 0:
            rel3d = torch.tensor(np.asarray(person.keypoints3d, dtype=np.float64), dtype=dtype)

        opt = torch.optim.Adam([{"params": [r6], "lr": self.lr}, {"params": [trans], "lr": self.lr * 0.5},
                                {"params": [pose], "lr": self.lr}, {"params": [shape], "lr": self.lr * 0.5}])
        # Phases: rotation+translation only (cold start), + pose with the shape held (its rest skeleton
        # computed once: ~3x cheaper per step), + shape (the last quarter).
        warm = max(1, iterations // 4) if init is None else 0
        shape_from = iterations - iterations // 4 if iterations >= 8 else iterations
        with _single_thread():
            rest = None
            for it in range(iterations):
                opt.zero_grad(set_to_none=True)
                if it < shape_from and rest is None:
                    with torch.no_grad():
                        rest = self.head.rest_state(shape)
                full_shape = it >= shape_from
                p = pose * mask if it >= warm else pose.detach() * mask
                s = shape if full_shape else shape.detach()
                loss = self._loss(r6, trans, p, s, None if full_shape else rest, intr, target, weight, scale,
                                  depth_terms, prev_pose, rel3d)
                loss.backward()
                opt.step()
                with torch.no_grad():
                    shape.clamp_(-0.5, 0.5)
            with torch.no_grad():
                final_pose = pose * mask
                rot = rotation_6d_to_matrix(r6)
                x_cam = self.head(final_pose, shape)[0] @ rot.T + trans
                proj = intr.project(x_cam).numpy()
        err = np.linalg.norm(proj - kp, axis=1)
        return BodyFit(pose=final_pose.detach().clone(), shape=shape.detach().clone(),
                       rotation=rot.numpy().astype(np.float64), translation=trans.detach().numpy().astype(np.float64),
                       keypoints_cam=x_cam.numpy().astype(np.float32), reprojection_px=float(err[vis].mean()),
                       iterations=iterations, ms=(time.perf_counter() - t0) * 1000.0)

    def _depth_targets(self, kp, conf, depth):
        """``(keypoint ids, target z)`` for the torso keypoints with valid depth under them, or None."""
        if depth is None:
            return None
        h, w = depth.shape
        ids, zs = [], []
        for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip", "nose"):
            k = _KP[n]
            u, v = int(round(kp[k, 0])), int(round(kp[k, 1]))
            if conf[k] > 0 and 0 <= u < w and 0 <= v < h:
                patch = depth[max(0, v - 2):v + 3, max(0, u - 2):u + 3]
                patch = patch[patch > 0]
                if len(patch):
                    ids.append(k)
                    # A joint lies ~half a torso thickness behind the visible surface.
                    zs.append(float(np.median(patch)) + (0.05 if n == "nose" else 0.09))
        if not ids:
            return None
        return torch.tensor(ids), torch.tensor(zs, dtype=torch.float32)

    def _loss(self, r6, trans, pose, shape, rest, intr, target, weight, scale, depth_terms, prev_pose, rel3d):
        rot = rotation_6d_to_matrix(r6)
        x_cam = self.head(pose, shape, rest)[0] @ rot.T + trans
        proj = intr.project(x_cam)
        sq = ((proj - target) / scale).pow(2).sum(-1)
        loss = (weight * _gmof(sq, 0.1)).sum() / weight.sum().clamp(min=1e-6)
        loss = loss + 1e-3 * self.pose_prior_weight * pose.pow(2).sum() + 1e-1 * self.shape_prior_weight * \
            shape.pow(2).sum()
        # Keep the body in front of the camera.
        loss = loss + torch.relu(0.2 - x_cam[:, 2]).sum()
        if depth_terms is not None:
            ids, z = depth_terms
            loss = loss + (_gmof((x_cam[ids, 2] - z).pow(2), 0.2)).mean()
        if prev_pose is not None:
            loss = loss + 1e-2 * (pose - prev_pose).pow(2).sum()
        if rel3d is not None:
            hips = [_KP["left_hip"], _KP["right_hip"]]
            rel = x_cam - x_cam[hips].mean(0)
            sq3 = (rel - rel3d).pow(2).sum(-1)
            loss = loss + self.keypoint3d_weight * (weight * _gmof(sq3, 0.1)).sum() / weight.sum().clamp(min=1e-6)
        return loss


def check_keypoint_head(body: BodyModel, pose: torch.Tensor, shape: torch.Tensor) -> float:
    """Largest distance (m) between the fast keypoint head and the regressor on the full forward."""
    with torch.no_grad():
        fast = KeypointHead.for_body(body)(pose, shape)
        full = regress_keypoints(body, body(pose=pose, shape=shape).vertices)
    if full is None:
        return 0.0
    return float((fast - full).norm(dim=-1).max())


def transform_camera_body(fit_rotation: np.ndarray, fit_translation: np.ndarray,
                          hips_body: np.ndarray) -> np.ndarray:
    """REP-155 ``body`` frame in the camera frame, ``[4,4]``: origin mid-hips, x forward, y left, z up.

    ``hips_body`` is the mid-hip point in the body model's frame (y up, z forward, left at +x).
    """
    # Columns: the REP-155 axes written in the body model's frame.
    axes = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])  # x_rep=+z, y_rep=+x, z_rep=+y
    t = np.eye(4)
    t[:3, :3] = fit_rotation @ axes
    t[:3, 3] = fit_rotation @ hips_body + fit_translation
    return t
