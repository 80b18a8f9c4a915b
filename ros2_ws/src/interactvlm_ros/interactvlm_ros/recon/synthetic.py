"""Synthetic human–object scenes with known ground truth, for tests and ``interactvlm bench recon``.

A body (random moderate pose on the fitted joints, small random shape, yaw ±30°) stands ~3 m in front of a
pinhole camera; an object from the library touches its right hand. Ground-truth contact: body vertices within
``contact_radius`` of the object surface and object vertices within it of the body. The image is ray cast
(shaded body and object on a grey background), with the object's visible mask and a metric depth image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from interactvlm_ros.recon.body_fit import FACING_CAMERA, KP_NAMES, BodyFitter
from interactvlm_ros.recon.camera import Intrinsics
from interactvlm_ros.recon.icp import MeshRaycaster
from interactvlm_ros.recon.keypoints import PersonKeypoints
from interactvlm_ros.recon.object_fit import UPRIGHT

_HIPS = [KP_NAMES.index("left_hip"), KP_NAMES.index("right_hip")]


@dataclass
class SyntheticScene:
    image: np.ndarray  # uint8 [H,W,3]
    depth: np.ndarray  # float32 [H,W] metres (0 = background)
    object_mask: np.ndarray  # bool [H,W]
    intrinsics: Intrinsics
    pose: torch.Tensor
    shape: torch.Tensor
    body_rotation: np.ndarray
    body_translation: np.ndarray
    body_vertices: np.ndarray  # [N,3] camera frame
    keypoints_cam: np.ndarray  # [K,3] camera frame
    label: str
    object_vertices_local: np.ndarray
    object_faces: np.ndarray
    object_rotation: np.ndarray
    object_translation: np.ndarray
    human_probs: np.ndarray  # [N]
    object_probs: np.ndarray  # [No]

    def exact_keypoints(self) -> PersonKeypoints:
        """The posed body's keypoints projected with the known camera (+ their exact hip-relative 3D)."""
        kp2 = self.intrinsics.project(self.keypoints_cam).astype(np.float32)
        rel = (self.keypoints_cam - self.keypoints_cam[_HIPS].mean(0)).astype(np.float32)
        return PersonKeypoints(kp2, np.ones(len(kp2), np.float32), keypoints3d=rel)

    @property
    def object_centre(self) -> np.ndarray:
        return self.object_rotation @ self.object_vertices_local.mean(0) + self.object_translation


def make_scene(fitter: BodyFitter, mesh, label: str = "box", seed: int = 0, width: int = 320, height: int = 240,
               fov_deg: float = 60.0, distance: float = 3.0, contact_radius: float = 0.03) -> SyntheticScene:
    """One scene (see the module docstring). ``mesh``: the object's trimesh in metres (object frame)."""
    body = fitter.body
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    pose = 0.2 * torch.randn(1, body.pose_dim, generator=gen) * fitter.pose_mask
    shape = torch.tensor(rng.uniform(-0.1, 0.1, (1, body.shape_dim)), dtype=torch.float32)
    yaw = math.radians(rng.uniform(-30, 30))
    ry = np.array([[math.cos(yaw), 0, math.sin(yaw)], [0, 1, 0], [-math.sin(yaw), 0, math.cos(yaw)]])
    rot = FACING_CAMERA @ ry
    trans = np.array([rng.uniform(-0.2, 0.2), 0.1, distance])
    with torch.no_grad():
        out = body(pose=pose, shape=shape)
        kp = fitter.head(pose, shape)[0].numpy().astype(np.float64)
    verts = out.vertices[0].numpy().astype(np.float64) @ rot.T + trans
    kp_cam = kp @ rot.T + trans
    # Object: its nearest surface point 5 mm from the right wrist, on the side away from the body's centre.
    ov = np.asarray(mesh.vertices, dtype=np.float64)
    of = np.asarray(mesh.faces, dtype=np.int64)
    oyaw = math.radians(rng.uniform(-30, 30))
    orot = UPRIGHT @ np.array([[math.cos(oyaw), 0, math.sin(oyaw)], [0, 1, 0], [-math.sin(oyaw), 0, math.cos(oyaw)]])
    wrist = kp_cam[KP_NAMES.index("right_wrist")]
    away = wrist - verts.mean(0)
    away[1] = 0.0
    away /= max(np.linalg.norm(away), 1e-6)
    local = ov - ov.mean(0)
    caster = MeshRaycaster()
    caster.add(local @ orot.T, of)
    # Distance along `away` from the centre to the surface: push the centre out until the gap is 5 mm.
    centre = wrist.copy()
    for _ in range(40):
        sd = float(caster.signed_distance((wrist - centre)[None])[0])
        if sd > 0.005:
            break
        centre = centre + away * max(0.005 - sd, 0.002)
    otrans = centre - orot @ ov.mean(0)
    obj_cam = ov @ orot.T + otrans
    # Ground-truth contact.
    body_caster = MeshRaycaster()
    body_caster.add(verts, body.faces)
    obj_sd = caster.signed_distance(verts - centre)
    radius = contact_radius
    while (obj_sd < radius).sum() < 10 and radius < 0.1:
        radius *= 1.5
    human = (obj_sd < radius).astype(np.float32)
    object_probs = (body_caster.signed_distance(obj_cam) < radius).astype(np.float32)
    intr = Intrinsics.from_fov(width, height, fov_deg)
    image, depth, mask = render_scene(intr, [(verts, body.faces), (obj_cam, of)])
    return SyntheticScene(image=image, depth=depth, object_mask=mask == 1, intrinsics=intr, pose=pose, shape=shape,
                          body_rotation=rot, body_translation=trans, body_vertices=verts.astype(np.float32),
                          keypoints_cam=kp_cam.astype(np.float32), label=label, object_vertices_local=ov,
                          object_faces=of, object_rotation=orot, object_translation=otrans, human_probs=human,
                          object_probs=object_probs)


def render_scene(intr: Intrinsics, meshes: list[tuple[np.ndarray, np.ndarray]]):
    """Ray-cast shaded image (uint8), depth (m) and geometry-id map (-1 background) of camera-frame meshes."""
    caster = MeshRaycaster()
    for v, f in meshes:
        caster.add(v, f)
    hit = caster.cast(intr)
    geom, normal = hit["geometry"], hit["normal"]
    colours = np.array([[205, 170, 150], [70, 110, 200], [90, 170, 90]], np.float32)
    ys, xs = np.mgrid[0:intr.height, 0:intr.width]
    bg = (150 + 40 * ys / max(intr.height - 1, 1))[..., None].repeat(3, -1).astype(np.float32)
    rays = np.stack([(xs + 0.5 - intr.cx) / intr.fx, (ys + 0.5 - intr.cy) / intr.fy, np.ones_like(xs, float)], -1)
    rays /= np.linalg.norm(rays, axis=-1, keepdims=True)
    shade = 0.3 + 0.7 * np.abs((rays * normal).sum(-1))
    img = bg
    for g in range(len(meshes)):
        sel = geom == g
        img[sel] = colours[g % len(colours)] * shade[sel][:, None]
    return np.clip(img, 0, 255).astype(np.uint8), hit["depth"], geom
