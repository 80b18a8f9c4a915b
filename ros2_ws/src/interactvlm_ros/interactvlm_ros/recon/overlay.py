"""Draw the reconstructed meshes over the image with the real intrinsics, and write meshes/overlay files.

Rendering is exact pinhole ray casting (open3d) in the camera frame: bodies light grey-blue, objects
green, contact probability blended in red on both; Lambert-like shading from the ray direction.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from interactvlm_ros.files.atomic import atomic_write_bytes
from interactvlm_ros.recon.icp import MeshRaycaster
from interactvlm_ros.recon.scene import Reconstruction

BODY_RGB = np.array([170, 185, 215], np.float32)
OBJECT_RGB = np.array([120, 200, 120], np.float32)
CONTACT_RGB = np.array([230, 40, 40], np.float32)


def _meshes(rec: Reconstruction):
    for b in rec.bodies:
        yield b.vertices, b.faces, BODY_RGB, b.contact_probs
    for o in rec.objects:
        yield o.vertices, o.faces, OBJECT_RGB, o.contact_probs


def cast_scene(rec: Reconstruction) -> dict[str, np.ndarray]:
    """Ray-cast every mesh of ``rec``: ``geometry [H,W]`` (index into bodies then objects, -1 none), ``face``,
    ``depth``, ``normal``."""
    caster = MeshRaycaster()
    for v, f, _, _ in _meshes(rec):
        caster.add(v, f)
    return caster.cast(rec.intrinsics)


def silhouette(rec: Reconstruction, which: str = "bodies") -> np.ndarray:
    """Bool ``[H,W]`` mask of the bodies (or ``"objects"``, or ``"all"``) as seen by the camera."""
    geom = cast_scene(rec)["geometry"]
    nb = len(rec.bodies)
    if which == "bodies":
        return (geom >= 0) & (geom < nb)
    if which == "objects":
        return geom >= nb
    return geom >= 0


def render_overlay(image_rgb: np.ndarray, rec: Reconstruction, alpha: float = 0.7) -> np.ndarray:
    """uint8 ``[H,W,3]``: the image with the shaded meshes blended over it."""
    out = np.asarray(image_rgb, dtype=np.float32).copy()
    if not rec.bodies and not rec.objects:
        return out.astype(np.uint8)
    hit = cast_scene(rec)
    geom, face, normal = hit["geometry"], hit["face"], hit["normal"]
    intr = rec.intrinsics
    ys, xs = np.mgrid[0:intr.height, 0:intr.width]
    rays = np.stack([(xs + 0.5 - intr.cx) / intr.fx, (ys + 0.5 - intr.cy) / intr.fy, np.ones_like(xs, float)], -1)
    rays /= np.linalg.norm(rays, axis=-1, keepdims=True)
    shade = 0.35 + 0.65 * np.abs((rays * normal).sum(-1))
    for g, (_, faces, rgb, probs) in enumerate(_meshes(rec)):
        sel = geom == g
        if not sel.any():
            continue
        col = np.broadcast_to(rgb, (int(sel.sum()), 3)).copy()
        if probs is not None:
            p = np.asarray(probs, np.float32)[faces[face[sel]]].mean(1)[:, None]
            col = (1 - p) * col + p * CONTACT_RGB
        col *= shade[sel][:, None]
        out[sel] = (1 - alpha) * out[sel] + alpha * col
    return np.clip(out, 0, 255).astype(np.uint8)


def _colored_ply(vertices, faces, rgb, probs) -> bytes:
    import trimesh

    col = np.broadcast_to(rgb, (len(vertices), 3)).astype(np.float32)
    if probs is not None:
        p = np.asarray(probs, np.float32)[:, None]
        col = (1 - p) * col + p * CONTACT_RGB
    rgba = np.concatenate([col, np.full((len(vertices), 1), 255, np.float32)], 1).astype(np.uint8)
    mesh = trimesh.Trimesh(vertices=vertices, faces=faces, vertex_colors=rgba, process=False)
    return trimesh.exchange.ply.export_ply(mesh, encoding="binary")


def write_outputs(out_dir: str | os.PathLike, stem: str, image_rgb: np.ndarray, rec: Reconstruction) -> list[Path]:
    """Write ``<stem>_body_<id>.ply``, ``<stem>_object_<label>.ply`` (camera frame, contact in red) and
    ``<stem>_recon.png`` (the overlay). Returns the paths written."""
    from PIL import Image

    out = Path(out_dir)
    paths: list[Path] = []
    for b in rec.bodies:
        p = out / f"{stem}_body_{b.id}.ply"
        atomic_write_bytes(p, _colored_ply(b.vertices, b.faces, BODY_RGB, b.contact_probs))
        paths.append(p)
    for i, o in enumerate(rec.objects):
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in o.label)
        p = out / f"{stem}_object_{i}_{safe}.ply"
        atomic_write_bytes(p, _colored_ply(o.vertices, o.faces, OBJECT_RGB, o.contact_probs))
        paths.append(p)
    import io

    buf = io.BytesIO()
    Image.fromarray(render_overlay(image_rgb, rec)).save(buf, format="PNG")
    p = out / f"{stem}_recon.png"
    atomic_write_bytes(p, buf.getvalue())
    paths.append(p)
    return paths
