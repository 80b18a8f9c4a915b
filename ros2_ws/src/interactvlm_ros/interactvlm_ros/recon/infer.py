"""``interactvlm infer … --reconstruct``: place the people and the queried objects in the camera frame and write
posed meshes (PLY, camera frame, contact in red) and ``scene_recon.png`` (meshes drawn over the image).

For each found object that has a mesh in ``objects.library``, object contact is predicted on that mesh
(``predict_object``) so the pose fit can use both sides of the contact.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # the heavy modules load only when --reconstruct is used
    from interactvlm_ros.pipeline.result import ContactResult
    from interactvlm_ros.recon.camera import Intrinsics
    from interactvlm_ros.recon.scene import Reconstruction


def add_arguments(parser) -> None:
    """The options ``interactvlm infer`` gains for reconstruction."""
    parser.add_argument("--reconstruct", action="store_true",
                        help="also fit the people (MediaPipe keypoints) and objects in the camera frame; writes "
                             "scene_body_<id>.ply, scene_object_<i>_<label>.ply and scene_recon.png")
    parser.add_argument("--intrinsics", default=None, metavar="FX,FY,CX,CY",
                        help="camera intrinsics in pixels for --reconstruct (default: camera.default_fov_deg)")
    parser.add_argument("--depth", default=None, metavar="FILE",
                        help="aligned depth image for --reconstruct: 16-bit PNG in mm or .npy in metres")


def parse_intrinsics(text: str | None, width: int, height: int, fov_deg: float) -> Intrinsics:
    from interactvlm_ros.recon.camera import Intrinsics

    if not text:
        return Intrinsics.from_fov(width, height, fov_deg)
    try:
        fx, fy, cx, cy = (float(x) for x in text.split(","))
    except ValueError:
        raise ValueError(f"--intrinsics expects FX,FY,CX,CY (4 numbers), got {text!r}") from None
    return Intrinsics.from_k([fx, 0, cx, 0, fy, cy, 0, 0, 1], width, height)


def read_depth(path: str | None) -> np.ndarray | None:
    if not path:
        return None
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"depth file not found: {p}")
    if p.suffix == ".npy":
        return np.load(p)
    from PIL import Image

    return np.asarray(Image.open(p))


def add_object_contact(predictor, image_rgb: np.ndarray, result: ContactResult, library) -> None:
    """Fill ``object_probs`` of found contacts with the model's contact on the library mesh (in place); the
    image is encoded once for all of them."""
    image = predictor.encode(image_rgb)
    for oc in result.contacts:
        if not oc.found or oc.object_probs is not None:
            continue
        label = library.lookup(oc.label)
        if label is None:
            continue
        mesh = library.mesh(label)
        obj = predictor.predict_object(image, mesh.vertices, mesh.faces, oc.label, mesh_id=library.mesh_id(label))
        if obj.contacts and obj.contacts[0].found:
            oc.object_probs = obj.contacts[0].object_probs
            oc.object_mesh_id = library.mesh_id(label)


def reconstruct_and_write(args, cfg, predictor, image_rgb: np.ndarray, result: ContactResult | None,
                          out: Path) -> Reconstruction:
    """Run the reconstruction for ``interactvlm infer`` and write its files into ``out``."""
    from interactvlm_ros.recon.overlay import write_outputs
    from interactvlm_ros.recon.scene import Reconstructor

    h, w = image_rgb.shape[:2]
    intr = parse_intrinsics(getattr(args, "intrinsics", None), w, h, cfg["camera.default_fov_deg"])
    depth = read_depth(getattr(args, "depth", None))
    body = getattr(predictor, "body_model", None) if predictor is not None else None
    recon = Reconstructor(cfg, body=body)
    try:
        if result is not None and predictor is not None:
            add_object_contact(predictor, image_rgb, result, recon.library)
        rec = recon.reconstruct(image_rgb, contacts=result, intrinsics=intr, depth=depth, track=False)
    finally:
        recon.close()
    paths = write_outputs(out, "scene", image_rgb, rec)
    for b in rec.bodies:
        t = b.transform_camera_body[:3, 3]
        print(f"person {b.id}: body_{b.id} at ({t[0]:.2f}, {t[1]:.2f}, {t[2]:.2f}) m, reprojection "
              f"{b.fit.reprojection_px:.1f} px")
    for o in rec.objects:
        t = o.transform[:3, 3]
        print(f"object {o.label} ({o.query}): at ({t[0]:.2f}, {t[1]:.2f}, {t[2]:.2f}) m")
    for c in rec.contacts:
        print(f"contact {c.label}: {len(c.human_points)} body points, {len(c.object_points)} object points")
    for note in rec.notes:
        print(f"note: {note}")
    print("wrote " + ", ".join(p.name for p in paths) + " (" + ", ".join(
        f"{k} {v:.0f} ms" for k, v in rec.timings_ms.items()) + ")")
    return rec
