"""``interactvlm infer … --reconstruct``: place the people and the queried objects in the camera frame and write
posed meshes (PLY, camera frame, contact in red) and ``scene_recon.png`` (meshes drawn over the image).

The contacts and the reconstruction come from the one pipeline
(:class:`~interactvlm_ros.pipeline.contact_pipeline.ContactPipeline`): for each found object that has a mesh in
``objects.library``, object contact is predicted on that mesh so the pose fit can use both sides of the contact.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # the heavy modules load only when --reconstruct is used
    from interactvlm_ros.pipeline.reconstruction import ReconAttempt


def add_arguments(parser) -> None:
    """The options ``interactvlm infer`` gains for reconstruction."""
    parser.add_argument("--reconstruct", action="store_true",
                        help="also fit the people (MediaPipe keypoints) and objects in the camera frame; writes "
                             "scene_body_<id>.ply, scene_object_<i>_<label>.ply and scene_recon.png")
    parser.add_argument("--intrinsics", default=None, metavar="FX,FY,CX,CY",
                        help="camera intrinsics in pixels for --reconstruct (default: camera.default_fov_deg)")
    parser.add_argument("--depth", default=None, metavar="FILE",
                        help="aligned depth image for --reconstruct: 16-bit PNG in mm or .npy in metres")


def parse_intrinsics(text: str | None) -> np.ndarray | None:
    """``--intrinsics FX,FY,CX,CY`` -> ``K [3,3]``; None (no option): ``camera.default_fov_deg``."""
    if not text:
        return None
    try:
        fx, fy, cx, cy = (float(x) for x in text.split(","))
    except ValueError:
        raise ValueError(f"--intrinsics expects FX,FY,CX,CY (4 numbers), got {text!r}") from None
    if fx <= 0 or fy <= 0:
        raise ValueError(f"--intrinsics: focal lengths must be positive, got fx={fx}, fy={fy}")
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


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


def write_reconstruction(out: Path, image_rgb: np.ndarray, attempt: ReconAttempt) -> int:
    """Write the reconstruction's files into ``out`` and print what was placed; 1 when it was skipped."""
    from interactvlm_ros.recon.overlay import write_outputs

    rec = attempt.reconstruction
    if rec is None:
        print(f"interactvlm infer: reconstruction skipped: {attempt.reason}")
        return 1
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
    return 0
