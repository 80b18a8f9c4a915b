"""``interactvlm bench recon``: accuracy and speed of the reconstruction on synthetic scenes with known ground
truth, and on the real photo ``skimage.data.astronaut()``.

Keys (contract): ``fit_ms_cold``, ``fit_ms_warm`` (body fit of one person, exact keypoints; warm = the next
video frame started from the previous fit), ``joint_err_cm_exact_kp`` (mean 3D keypoint error in the camera
frame, keypoints projected from the ground-truth body plus their exact hip-relative 3D, as MediaPipe's 2D+3D
output provides), ``joint_err_cm_detected_kp`` (MediaPipe run on the rendered synthetic image; null when it
finds nobody), ``object_trans_err_cm`` (object centre error; body fitted from exact keypoints, contact = the
ground-truth contact, object mask given), ``astronaut_silhouette_iou`` (projected fitted body vs MediaPipe's
person mask), ``penetration_mm_with_term`` / ``penetration_mm_without_term`` (deepest object vertex inside
the fitted body, mm, mean over scenes). Extra keys give the root-relative error, the 2D-only error, RGB-D
object error and the MediaPipe detection rate.
"""

from __future__ import annotations

import numpy as np
from tqdm import tqdm

from interactvlm_ros.recon.body_fit import KP_NAMES, BodyFitter
from interactvlm_ros.recon.icp import MeshRaycaster
from interactvlm_ros.recon.keypoints import KeypointError, PersonKeypoints
from interactvlm_ros.recon.object_fit import ObjectFitter
from interactvlm_ros.recon.synthetic import make_scene

_HIPS = [KP_NAMES.index("left_hip"), KP_NAMES.index("right_hip")]
SCENE_OBJECTS = ("box", "ball", "bottle", "mug", "board", "chair")


def joint_error_cm(pred: np.ndarray, gt: np.ndarray, root_relative: bool = False, mask=None) -> float:
    if root_relative:
        pred, gt = pred - pred[_HIPS].mean(0), gt - gt[_HIPS].mean(0)
    err = np.linalg.norm(pred - gt, axis=1)
    if mask is not None:
        err = err[mask]
    return float(err.mean() * 100.0)


def max_penetration_mm(object_vertices: np.ndarray, body_vertices: np.ndarray, body_faces: np.ndarray) -> float:
    caster = MeshRaycaster()
    caster.add(body_vertices, body_faces)
    sd = caster.signed_distance(object_vertices)
    return float(max(0.0, -sd.min()) * 1000.0)


def run(cfg, args) -> dict:
    from interactvlm_ros.body import load_body_model
    from interactvlm_ros.objects import ObjectLibrary

    quick = bool(getattr(args, "quick", False))
    n_scenes = 2 if quick else 5
    body = load_body_model(cfg)
    fitter = BodyFitter(body, iterations=cfg.recon.iterations, pose_prior_weight=cfg.recon.pose_prior_weight,
                        min_visibility=cfg.recon.min_visibility)
    library = ObjectLibrary.from_config(cfg)
    labels = [lab for lab in SCENE_OBJECTS if lab in library] or library.labels()
    obj_iters = cfg.recon.object_iterations
    with_term = ObjectFitter(iterations=obj_iters, penetration_weight=max(cfg.recon.penetration_weight, 1e-6))
    without_term = ObjectFitter(iterations=obj_iters, penetration_weight=0.0)
    detector = None
    try:
        from interactvlm_ros.recon.keypoints import KeypointDetector

        detector = KeypointDetector.from_config(cfg)
        detector.start()
    except KeypointError as exc:
        print(f"bench recon: MediaPipe unavailable ({exc}); detected-keypoint numbers are null")
        detector = None

    cold, warm, err_abs, err_rel, err_2d, err_det, det_found = [], [], [], [], [], [], 0
    obj_err, obj_err_rgbd, pen_with, pen_without = [], [], [], []
    for i in tqdm(range(n_scenes), desc="bench recon scenes"):
        label = labels[i % len(labels)]
        sc = make_scene(fitter, library.mesh(label), label, seed=100 + i, width=320, height=240)
        exact = sc.exact_keypoints()
        fit = fitter.fit(exact, sc.intrinsics)
        cold.append(fit.ms)
        err_abs.append(joint_error_cm(fit.keypoints_cam, sc.keypoints_cam))
        err_rel.append(joint_error_cm(fit.keypoints_cam, sc.keypoints_cam, root_relative=True))
        # Next frame: keypoints moved 2 px, warm start.
        nxt = PersonKeypoints(exact.keypoints + 2.0, exact.confidence, exact.keypoints3d)
        warm.append(fitter.fit(nxt, sc.intrinsics, init=fit).ms)
        only2d = fitter.fit(PersonKeypoints(exact.keypoints, exact.confidence), sc.intrinsics)
        err_2d.append(joint_error_cm(only2d.keypoints_cam, sc.keypoints_cam))
        if detector is not None:
            found = detector.detect(sc.image, max_people=1)
            if found:
                det_found += 1
                dfit = fitter.fit(found[0], sc.intrinsics)
                err_det.append(joint_error_cm(dfit.keypoints_cam, sc.keypoints_cam))
        verts, _ = fit.body_output(body)
        common = (sc.object_vertices_local, sc.object_faces, sc.object_probs, verts, body.faces, sc.human_probs,
                  sc.intrinsics)
        a = with_term.fit(*common, mask=sc.object_mask)
        b = without_term.fit(*common, mask=sc.object_mask)
        c = with_term.fit(*common, mask=sc.object_mask, depth=sc.depth)
        centre = sc.object_vertices_local.mean(0)
        obj_err.append(float(np.linalg.norm(a.rotation @ centre + a.translation - sc.object_centre) * 100.0))
        obj_err_rgbd.append(float(np.linalg.norm(c.rotation @ centre + c.translation - sc.object_centre) * 100.0))
        pen_with.append(max_penetration_mm(a.vertices_cam, verts, body.faces))
        pen_without.append(max_penetration_mm(b.vertices_cam, verts, body.faces))

    iou = None
    if detector is not None:
        iou = astronaut_iou(cfg, body, detector)
        detector.close()

    def mean(x):
        return round(float(np.mean(x)), 3) if len(x) else None

    return {
        "fit_ms_cold": mean(cold),
        "fit_ms_warm": mean(warm),
        "joint_err_cm_exact_kp": mean(err_abs),
        "joint_err_cm_exact_kp_root_relative": mean(err_rel),
        "joint_err_cm_exact_kp_2d_only": mean(err_2d),
        "joint_err_cm_detected_kp": mean(err_det),
        "detected_kp_scenes_found": f"{det_found}/{n_scenes}" if detector is not None else None,
        "object_trans_err_cm": mean(obj_err),
        "object_trans_err_cm_rgbd": mean(obj_err_rgbd),
        "astronaut_silhouette_iou": None if iou is None else round(iou, 3),
        "penetration_mm_with_term": mean(pen_with),
        "penetration_mm_without_term": mean(pen_without),
        "scenes": n_scenes,
        "body_iterations": fitter.iterations,
        "object_iterations": obj_iters,
    }


def astronaut_iou(cfg, body, detector) -> float | None:
    """IoU between the projected fitted body and MediaPipe's person mask on ``skimage.data.astronaut()``."""
    import skimage.data

    from interactvlm_ros.recon.overlay import silhouette
    from interactvlm_ros.recon.scene import Reconstructor

    image = skimage.data.astronaut()
    people = detector.detect(image, max_people=1)
    if not people:
        return None
    rec = Reconstructor(cfg, body=body, detector=detector).reconstruct(image, people=people, track=False)
    if not rec.bodies:
        return None
    sil = silhouette(rec)
    mask = people[0].mask > 0.5
    return float((sil & mask).sum() / max((sil | mask).sum(), 1))


