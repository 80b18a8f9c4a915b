"""Object pose in the camera frame from contacts (the method's optimisation, plus penetration and depth).

Initialisation as the released code: translation z = mean z of the human contact vertices (p > 0.5); x, y =
the object-mask centroid back-projected at that depth (the human contact centroid without a mask);
rotation = "identity" — here the upright object (its y up → camera -y, facing the camera); then rigid ICP
(10 iterations, no scale) between object contact vertices (p > 0.3) and human contact vertices (p > 0.5).
With a depth image and a mask (RGB-D), an ICP of the depth points under the mask onto the object follows.

Then Adam over a 6D rotation (lr 5e-2) and the translation (lr 5e-3: 1e-2 let the fit jitter between basins) on
    10·L_contact + 5·L_mask + 1e-4·L_centroid + w_pen·L_penetration + w_depth·L_depth
* ``L_contact = Σ_ij pO_i pH_j ‖VO_i − VH_j‖ / Σ_ij pO_i pH_j`` (probability-weighted human/object distances);
* ``L_mask = 1 − Σ S·M / Σ (S + M − S·M)`` (soft IoU; the released code divides by Σ(S+M)), ``S`` a soft
  silhouette of the object: surface samples splatted bilinearly, blurred by a Gaussian, ``1 − exp(−density)``;
* ``L_centroid = ‖centroid(S) − bbox centre(M)‖²`` in pixels;
* ``L_penetration`` = summed depth (m) of object surface samples inside the body: signed distance along the
  normals of the nearest body vertices, softly weighted by distance (:func:`penetration_depth`), negative = inside;
* ``L_depth`` = robust |z − D(u,v)| of camera-facing object points against the depth image.
The released code has no penetration or depth term; they are ours (weights are parameters).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from interactvlm_ros.recon.body_fit import _single_thread
from interactvlm_ros.recon.camera import Intrinsics, matrix_to_rotation_6d, rotation_6d_to_matrix
from interactvlm_ros.recon.icp import rigid_icp

UPRIGHT = np.diag([1.0, -1.0, -1.0])  # object y up → camera y down; object +z (front) towards the camera


@dataclass
class ObjectFit:
    """``rotation [3,3]``, ``translation [3]`` camera-from-object; ``vertices_cam [No,3]``; per-term final
    losses; ``ms``; ``init_translation`` (after the initialisation and ICP)."""

    rotation: np.ndarray
    translation: np.ndarray
    vertices_cam: np.ndarray
    losses: dict[str, float] = field(default_factory=dict)
    init_translation: np.ndarray | None = None
    ms: float = 0.0

    @property
    def transform(self) -> np.ndarray:
        t = np.eye(4)
        t[:3, :3] = self.rotation
        t[:3, 3] = self.translation
        return t


def vertex_normals(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Area-weighted unit vertex normals ``[N,3]``."""
    tri = vertices[faces]
    fn = torch.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], dim=-1)
    vn = torch.zeros_like(vertices).index_add_(0, faces.reshape(-1), fn.repeat_interleave(3, dim=0))
    return torch.nn.functional.normalize(vn, dim=-1, eps=1e-12)


def surface_samples(vertices: np.ndarray, faces: np.ndarray, count: int = 1500, seed: int = 0):
    """Fixed barycentric samples on the mesh (area-weighted): ``(face ids [M], bary [M,3])``."""
    tri = vertices[faces]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    rng = np.random.default_rng(seed)
    fid = rng.choice(len(faces), size=count, p=area / area.sum())
    r1, r2 = rng.random(count), rng.random(count)
    s = np.sqrt(r1)
    bary = np.stack([1 - s, s * (1 - r2), s * r2], axis=1)
    return fid, bary.astype(np.float32)


def contact_distance(obj_v: torch.Tensor, p_obj: torch.Tensor, hum_v: torch.Tensor,
                     p_hum: torch.Tensor) -> torch.Tensor:
    """``Σ_ij pO_i pH_j ‖VO_i − VH_j‖ / Σ_ij pO_i pH_j``."""
    d = torch.cdist(obj_v, hum_v)
    w = p_obj[:, None] * p_hum[None, :]
    return (w * d).sum() / w.sum().clamp(min=1e-12)


PENETRATION_NEIGHBOURS = 8
PENETRATION_SOFTNESS_M = 0.005
"""The penetration test weighs each sample's ``PENETRATION_NEIGHBOURS`` nearest body vertices by
``softmax(−(d / PENETRATION_SOFTNESS_M)²)``. With the single nearest vertex, the test jumped as the nearest vertex
changed (fingers, the crotch: neighbours with opposite normals) and the fit followed the jumps: a 1 µm change of the
body moved the bench's bottle from 5 to 12 cm off. Chosen on 12 validation scenes (seeds 200-211), not the bench's
5; see docs/reconstruction.md."""


def penetration_depth(points: torch.Tensor, body_v: torch.Tensor, body_n: torch.Tensor) -> torch.Tensor:
    """Per-point depth inside the body ``[M]`` (0 outside) for ``points [M,3]``, body vertices ``body_v [N,3]``
    and their unit normals ``body_n [N,3]``: ``relu(−Σ_k w_k (p − b_k)·n_k)`` over the nearest body vertices
    ``b_k``, softly weighted by distance (continuous as the object moves; see ``PENETRATION_SOFTNESS_M``)."""
    with torch.no_grad():  # which vertices are nearest: no gradient (the [M,N] matrix would be kept for it)
        ids = torch.cdist(points, body_v).topk(min(PENETRATION_NEIGHBOURS, body_v.shape[0]), dim=1,
                                               largest=False).indices
    offset = points[:, None, :] - body_v[ids]  # [M,k,3]
    w = torch.softmax(-(offset.norm(dim=-1) / PENETRATION_SOFTNESS_M) ** 2, dim=1)
    signed = (w * (offset * body_n[ids]).sum(-1)).sum(1)
    return torch.relu(-signed)


class SoftSilhouette(torch.nn.Module):
    """Differentiable soft silhouette ``[h,w]`` of projected surface samples (bilinear splat + Gaussian blur)."""

    def __init__(self, height: int, width: int, sigma_px: float = 0.7, gain: float = 10.0):
        super().__init__()
        self.h, self.w, self.gain = height, width, gain
        r = max(1, int(math.ceil(3 * sigma_px)))
        x = torch.arange(-r, r + 1, dtype=torch.float32)
        g = torch.exp(-0.5 * (x / sigma_px) ** 2)
        self.register_buffer("kernel", (g / g.sum()), persistent=False)

    def forward(self, uv: torch.Tensor, density_per_point: float) -> torch.Tensor:
        """``uv [M,2]`` pixel coordinates at this silhouette's resolution."""
        h, w = self.h, self.w
        x, y = uv[:, 0] - 0.5, uv[:, 1] - 0.5
        x0, y0 = torch.floor(x).detach(), torch.floor(y).detach()
        fx, fy = x - x0, y - y0
        img = torch.zeros(h * w, dtype=uv.dtype)
        for dx, dy, wgt in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy),
                            (1, 1, fx * fy)):
            xi, yi = (x0 + dx).long(), (y0 + dy).long()
            ok = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
            img = img.index_add(0, (yi * w + xi)[ok], wgt[ok])
        img = img.reshape(1, 1, h, w)
        k = self.kernel
        img = torch.nn.functional.conv2d(img, k.reshape(1, 1, 1, -1), padding=(0, len(k) // 2))
        img = torch.nn.functional.conv2d(img, k.reshape(1, 1, -1, 1), padding=(len(k) // 2, 0))
        return 1.0 - torch.exp(-self.gain * img[0, 0] / density_per_point)


class ObjectFitter:
    """Object pose optimiser (see the module docstring). ``iterations=0`` keeps the initialisation + ICP."""

    def __init__(self, iterations: int = 120, contact_weight: float = 10.0, mask_weight: float = 5.0,
                 centroid_weight: float = 1e-4, penetration_weight: float = 10.0, depth_weight: float = 10.0,
                 lr_rotation: float = 5e-2, lr_translation: float = 5e-3, mask_max_side: int = 160):
        self.iterations = int(iterations)
        self.w = {"contact": contact_weight, "mask": mask_weight, "centroid": centroid_weight,
                  "penetration": penetration_weight, "depth": depth_weight}
        self.lr_rotation, self.lr_translation = lr_rotation, lr_translation
        self.mask_max_side = mask_max_side

    # --- initialisation -----------------------------------------------------------------------------------
    @staticmethod
    def contact_sets(probs: np.ndarray | None, threshold: float, n: int, fallback_top: int) -> np.ndarray:
        """Vertex ids with ``p > threshold``; else the ``fallback_top`` most likely; all when no probs."""
        if probs is None:
            return np.arange(n)
        ids = np.nonzero(probs > threshold)[0]
        if len(ids) == 0:
            ids = np.argsort(-probs)[:fallback_top]
        return ids

    def initialise(self, obj_v: np.ndarray, p_obj: np.ndarray | None, body_v: np.ndarray,
                   p_hum: np.ndarray | None, intr: Intrinsics, mask: np.ndarray | None):
        """(rotation, translation) after the method's initialisation and ICP."""
        hum_ids = self.contact_sets(p_hum, 0.5, len(body_v), 30)
        hum_c = body_v[hum_ids]
        z = float(hum_c[:, 2].mean())
        if mask is not None and mask.any():
            ys, xs = np.nonzero(mask)
            centre = intr.backproject(np.array([xs.mean() + 0.5, ys.mean() + 0.5]), z)
        else:
            centre = hum_c.mean(0)
        rot = UPRIGHT.copy()
        trans = centre - rot @ obj_v.mean(0)
        obj_ids = self.contact_sets(p_obj, 0.3, len(obj_v), max(10, len(obj_v) // 10))
        init = np.eye(4)
        init[:3, :3], init[:3, 3] = rot, trans
        size = float(np.ptp(obj_v, axis=0).max())
        icp, _ = rigid_icp(obj_v[obj_ids], hum_c, init=init, max_distance=max(0.1, size), iterations=10)
        return icp[:3, :3], icp[:3, 3]

    @staticmethod
    def align_to_depth(obj_v: np.ndarray, obj_f: np.ndarray, rot: np.ndarray, trans: np.ndarray, depth: np.ndarray,
                       mask: np.ndarray, intr: Intrinsics, max_distance: float = 0.1):
        """RGB-D refinement: ICP of the depth points under the (eroded) object mask onto the posed object's
        surface (observed points all have a true match on the model, not the other way round)."""
        from scipy.ndimage import binary_erosion

        from interactvlm_ros.recon.icp import depth_point_cloud

        inner = binary_erosion(np.asarray(mask, dtype=bool), iterations=1)
        cloud = depth_point_cloud(depth, intr, mask=inner)
        if len(cloud) < 20:
            return rot, trans
        fid, bary = surface_samples(obj_v, obj_f, count=3000, seed=1)
        model = np.einsum("mk,mkd->md", bary, obj_v[obj_f[fid]]) @ rot.T + trans
        t, _ = rigid_icp(cloud, model, max_distance=max_distance, iterations=30)
        inv = np.linalg.inv(t)  # moves the model onto the observed points
        centre = obj_v.mean(0)
        moved = np.linalg.norm((inv[:3, :3] @ (rot @ centre + trans) + inv[:3, 3]) - (rot @ centre + trans))
        if moved > max(max_distance, 0.5 * float(np.ptp(obj_v, axis=0).max())):
            return rot, trans  # ICP slid away (flat or symmetric surfaces): keep the contact initialisation
        return inv[:3, :3] @ rot, inv[:3, :3] @ trans + inv[:3, 3]

    # --- fit ----------------------------------------------------------------------------------------------
    def fit(self, obj_vertices: np.ndarray, obj_faces: np.ndarray, obj_probs: np.ndarray | None,
            body_vertices: np.ndarray, body_faces: np.ndarray, human_probs: np.ndarray | None, intr: Intrinsics,
            mask: np.ndarray | None = None, depth: np.ndarray | None = None,
            init: tuple[np.ndarray, np.ndarray] | None = None, iterations: int | None = None) -> ObjectFit:
        """Pose of one object mesh (object frame, metres) next to one posed body (camera frame)."""
        t_start = time.perf_counter()
        obj_v = np.asarray(obj_vertices, dtype=np.float64)
        body_v = np.asarray(body_vertices, dtype=np.float64)
        if obj_probs is not None and len(obj_probs) != len(obj_v):
            raise ValueError(f"object contact has {len(obj_probs)} probabilities for a mesh of {len(obj_v)} "
                             "vertices")
        if human_probs is not None and len(human_probs) != len(body_v):
            raise ValueError(f"human contact has {len(human_probs)} probabilities for a body of {len(body_v)} "
                             "vertices")
        if mask is not None:
            mask = np.asarray(mask) > 0.5 if mask.dtype != bool else mask
            if mask.shape != (intr.height, intr.width):
                raise ValueError(f"object mask is {mask.shape}, image is {(intr.height, intr.width)}")
        rot0, trans0 = init if init is not None else self.initialise(obj_v, obj_probs, body_v, human_probs, intr,
                                                                     mask)
        if init is None and depth is not None and mask is not None:
            rot0, trans0 = self.align_to_depth(obj_v, np.asarray(obj_faces), rot0, trans0, depth, mask, intr)
        iterations = self.iterations if iterations is None else int(iterations)
        rot, trans, losses = self._optimise(obj_v, np.asarray(obj_faces), obj_probs, body_v,
                                            np.asarray(body_faces), human_probs, intr, mask, depth, rot0, trans0,
                                            iterations)
        return ObjectFit(rotation=rot, translation=trans, vertices_cam=(obj_v @ rot.T + trans).astype(np.float32),
                         losses=losses, init_translation=np.asarray(trans0, dtype=np.float64),
                         ms=(time.perf_counter() - t_start) * 1000.0)

    def _optimise(self, obj_v, obj_f, p_obj, body_v, body_f, p_hum, intr, mask, depth, rot0, trans0, iterations):
        dt = torch.float32
        centre = obj_v.mean(0)
        local = torch.tensor(obj_v - centre, dtype=dt)  # rotate about the object centre
        r6 = matrix_to_rotation_6d(torch.tensor(rot0, dtype=dt)).clone().requires_grad_(True)
        # Parameterise the translation of the centre: better conditioned than the mesh origin.
        tc = torch.tensor(rot0 @ centre + trans0, dtype=dt).clone().requires_grad_(True)
        # Contact sets (probability-weighted; the few most likely vertices keep the pairwise matrix small).
        o_ids = _top(p_obj, len(obj_v), 400)
        h_ids = _top(p_hum, len(body_v), 400)
        po = torch.tensor(p_obj[o_ids] if p_obj is not None else np.ones(len(o_ids)), dtype=dt)
        ph = torch.tensor(p_hum[h_ids] if p_hum is not None else np.ones(len(h_ids)), dtype=dt)
        hum_c = torch.tensor(body_v[h_ids], dtype=dt)
        bv = torch.tensor(body_v, dtype=dt)
        bn = vertex_normals(bv, torch.as_tensor(body_f, dtype=torch.int64))
        # Body vertices near the object (penetration candidates), refreshed as the object moves.
        fid, bary = surface_samples(obj_v - centre, obj_f, count=1500)
        samples = torch.tensor(np.einsum("mk,mkd->md", bary, (obj_v - centre)[obj_f[fid]]), dtype=dt)
        tri = obj_v[obj_f[fid]]
        s_normals = torch.tensor(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), dtype=dt)
        s_normals = torch.nn.functional.normalize(s_normals, dim=-1)
        radius = float(np.linalg.norm(np.ptp(obj_v, axis=0))) / 2.0 + 0.05
        # Silhouette target at low resolution.
        sil = None
        if mask is not None and self.w["mask"] > 0:
            s = min(1.0, self.mask_max_side / max(intr.width, intr.height))
            small = intr.scaled(s)
            m = _resize_mask(mask, small.height, small.width)
            ys, xs = np.nonzero(m > 0.5)
            box_c = torch.tensor([(xs.min() + xs.max() + 1) / 2.0, (ys.min() + ys.max() + 1) / 2.0], dtype=dt) \
                if len(xs) else None
            sil = (SoftSilhouette(small.height, small.width), small, torch.tensor(m, dtype=dt), box_c)
        dz = None
        if depth is not None and self.w["depth"] > 0:
            dz = torch.tensor(np.asarray(depth, dtype=np.float32))
        opt = torch.optim.Adam([{"params": [r6], "lr": self.lr_rotation}, {"params": [tc], "lr": self.lr_translation}])
        near = None
        terms: dict[str, torch.Tensor] = {}
        n_samples = len(samples)
        with torch.enable_grad(), _single_thread():
            for it in range(iterations + 1):
                rot = rotation_6d_to_matrix(r6)
                pts = samples @ rot.T + tc
                if near is None or it % 10 == 0:
                    with torch.no_grad():
                        near = torch.nonzero((bv - tc).norm(dim=1) < radius + 0.1).squeeze(1)
                terms = {"contact": contact_distance(local[o_ids] @ rot.T + tc, po, hum_c, ph)}
                if len(near) and self.w["penetration"] > 0:
                    terms["penetration"] = penetration_depth(pts[::3], bv[near], bn[near]).sum()
                if sil is not None:
                    render, small, target, box_c = sil
                    uv = small.project(pts)
                    s_img = render(uv, density_per_point=max(1.0, n_samples / max(float(target.sum()), 1.0)))
                    inter = (s_img * target).sum()
                    terms["mask"] = 1.0 - inter / (s_img + target - s_img * target).sum().clamp(min=1e-6)
                    if box_c is not None:
                        terms["centroid"] = (uv.mean(0) - box_c).pow(2).sum()
                if dz is not None:
                    terms["depth"] = _depth_term(pts, s_normals @ rot.T, intr, dz)
                loss = sum(self.w[k] * v for k, v in terms.items())
                if it == iterations:
                    break
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        rot = rotation_6d_to_matrix(r6).detach().numpy().astype(np.float64)
        trans = tc.detach().numpy().astype(np.float64) - rot @ centre
        return rot, trans, {k: float(v.detach()) for k, v in terms.items()}


def _top(probs: np.ndarray | None, n: int, k: int) -> np.ndarray:
    if probs is None:
        return np.linspace(0, n - 1, min(n, k)).astype(np.int64)
    ids = np.nonzero(probs > 0.05)[0]
    if len(ids) == 0:
        ids = np.argsort(-probs)[:30]
    if len(ids) > k:
        ids = ids[np.argsort(-probs[ids])[:k]]
    return ids


def _resize_mask(mask: np.ndarray, h: int, w: int) -> np.ndarray:
    """Area-average downsampling of a boolean mask to ``[h,w]`` float32."""
    t = torch.tensor(mask, dtype=torch.float32)[None, None]
    return torch.nn.functional.interpolate(t, size=(h, w), mode="area")[0, 0].numpy()


def _depth_term(pts: torch.Tensor, normals: torch.Tensor, intr: Intrinsics, depth: torch.Tensor) -> torch.Tensor:
    """Robust |z − D(u,v)| over camera-facing samples that project inside the image onto valid depth."""
    uv = intr.project(pts).detach()
    u, v = uv[:, 0].long(), uv[:, 1].long()
    ok = (u >= 0) & (u < depth.shape[1]) & (v >= 0) & (v < depth.shape[0])
    if not ok.any():
        return pts.sum() * 0.0
    d = torch.zeros(len(pts))
    d[ok] = depth[v[ok], u[ok]]
    facing = (normals * pts).sum(-1).detach() < 0  # outward normal towards the camera (at the origin)
    ok = ok & (d > 0) & facing
    if not ok.any():
        return pts.sum() * 0.0
    r = (pts[ok, 2] - d[ok]).pow(2)
    return (r / (r + 0.05 ** 2)).mean()
