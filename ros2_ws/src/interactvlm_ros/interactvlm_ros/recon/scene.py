"""The reconstructed scene in the camera frame: posed bodies (stable ids, REP-155 body frames), posed objects
and contact points on both — plus the :class:`Reconstructor` that produces it from an image and contacts.

All coordinates are in the camera's ROS optical frame (x right, y down, z forward; metres).
Several people: everyone detected is fitted; the model's contact (one prediction per image and object) goes to
the *primary* person — the one with the largest keypoint box — whose body carries ``contact_probs``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from interactvlm_ros.pipeline.result import ContactResult
from interactvlm_ros.recon.body_fit import KP_NAMES, BodyFit, BodyFitter, transform_camera_body
from interactvlm_ros.recon.camera import Intrinsics, depth_to_metres
from interactvlm_ros.recon.keypoints import PersonKeypoints
from interactvlm_ros.recon.object_fit import ObjectFit, ObjectFitter
from interactvlm_ros.recon.tracking import PersonTracker

_HIPS = [KP_NAMES.index("left_hip"), KP_NAMES.index("right_hip")]


@dataclass
class BodyPose:
    """One person. ``vertices [N,3]``, ``faces [F,3]``, ``joints [J,3]``, ``keypoints [K,3]`` in the camera
    frame; ``transform_camera_body [4,4]`` = the REP-155 ``body_<id>`` frame (origin mid-hips, x forward,
    z up) in the camera frame; ``contact_probs [N]`` (max over objects) on the primary person, else None."""

    id: int
    vertices: np.ndarray
    faces: np.ndarray
    joints: np.ndarray
    keypoints: np.ndarray
    transform_camera_body: np.ndarray
    fit: BodyFit
    contact_probs: np.ndarray | None = None
    keypoints_2d: np.ndarray | None = None

    @property
    def frame_id(self) -> str:
        return f"body_{self.id}"


@dataclass
class ObjectPose:
    """One object: library ``label``, ``mesh_id``, posed ``vertices [No,3]``, ``faces``, ``transform [4,4]``
    (camera from object mesh frame), ``contact_probs [No]`` or None, ``person_id`` it was fitted against."""

    label: str
    mesh_id: str
    vertices: np.ndarray
    faces: np.ndarray
    transform: np.ndarray
    person_id: int
    contact_probs: np.ndarray | None = None
    fit: ObjectFit | None = None
    query: str = ""


@dataclass
class ContactPoints:
    """Contact points of one queried object (camera frame): on the person's body and on the object mesh.
    ``*_points [M,3]``, ``*_probs [M]``, ``*_vertex_ids [M]`` (indices into the posed meshes)."""

    label: str
    person_id: int
    human_points: np.ndarray
    human_probs: np.ndarray
    human_vertex_ids: np.ndarray
    object_points: np.ndarray
    object_probs: np.ndarray
    object_vertex_ids: np.ndarray


@dataclass
class Reconstruction:
    """Everything reconstructed from one image (camera frame)."""

    intrinsics: Intrinsics
    bodies: list[BodyPose] = field(default_factory=list)
    objects: list[ObjectPose] = field(default_factory=list)
    contacts: list[ContactPoints] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def human_contact_points(self) -> np.ndarray:
        """``[M,3]`` every human contact point (all objects)."""
        return _cat([c.human_points for c in self.contacts])

    @property
    def object_contact_points(self) -> np.ndarray:
        """``[M,3]`` every object contact point (all objects)."""
        return _cat([c.object_points for c in self.contacts])

    def tf_transforms(self) -> list[tuple[str, np.ndarray]]:
        """``(child frame id, [4,4] camera-from-child)`` for each body (parent = the image's frame); see
        :func:`transform_to_tf` for translation + quaternion."""
        return [(b.frame_id, b.transform_camera_body) for b in self.bodies]


def transform_to_tf(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``[4,4]`` rigid transform → (translation ``[3]``, quaternion ``[4]`` as x, y, z, w — geometry_msgs order)."""
    from scipy.spatial.transform import Rotation

    t = np.asarray(t, dtype=np.float64)
    return t[:3, 3].copy(), Rotation.from_matrix(t[:3, :3]).as_quat()


def _cat(parts: list[np.ndarray]) -> np.ndarray:
    parts = [p for p in parts if len(p)]
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros((0, 3), np.float32)


class Reconstructor:
    """Image (+ contacts, intrinsics, depth, object masks) → :class:`Reconstruction`. Reuse it across frames:
    it keeps the keypoint worker, the body model and the person tracks (warm starts, stable ids)."""

    def __init__(self, cfg: Mapping, body=None, detector=None, library=None):
        self.cfg = cfg
        if body is None:
            from interactvlm_ros.body import load_body_model

            body = load_body_model(cfg)
        self.body = body
        self.fitter = BodyFitter(body, iterations=cfg.recon.iterations,
                                 pose_prior_weight=cfg.recon.pose_prior_weight,
                                 min_visibility=cfg.recon.min_visibility)
        self.object_fitter = ObjectFitter(iterations=cfg.recon.object_iterations,
                                          penetration_weight=cfg.recon.penetration_weight)
        self.tracker = PersonTracker(max_distance_m=cfg.recon.track_max_distance_m)
        self._detector = detector
        if library is None:
            from interactvlm_ros.objects import ObjectLibrary

            library = ObjectLibrary.from_config(cfg)
        self.library = library
        self.threshold = float(cfg.contact.threshold)

    @property
    def detector(self):
        if self._detector is None:
            from interactvlm_ros.recon.keypoints import KeypointDetector

            self._detector = KeypointDetector.from_config(self.cfg)
        return self._detector

    def close(self) -> None:
        if self._detector is not None:
            self._detector.close()

    def intrinsics_for(self, width: int, height: int, k=None) -> Intrinsics:
        """From a CameraInfo ``k`` (9 numbers) when given, else the default field of view."""
        if k is not None:
            return Intrinsics.from_k(k, width, height)
        return Intrinsics.from_fov(width, height, self.cfg.camera.default_fov_deg)

    def reconstruct(self, image_rgb: np.ndarray, contacts: ContactResult | None = None,
                    intrinsics: Intrinsics | None = None, depth: np.ndarray | None = None,
                    object_masks: Mapping[str, np.ndarray] | None = None,
                    people: list[PersonKeypoints] | None = None, track: bool = True) -> Reconstruction:
        """Reconstruct one frame. ``depth``: uint16 mm or float m, aligned with the image. ``object_masks``:
        label → bool ``[H,W]``. ``people``: keypoints when already detected (else MediaPipe runs).
        ``track=False`` treats the frame as independent (no warm start, fresh ids)."""
        image = np.asarray(image_rgb)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"image must be uint8 [H,W,3] RGB, got {image.dtype} {image.shape}")
        h, w = image.shape[:2]
        intr = intrinsics or self.intrinsics_for(w, h)
        if (intr.width, intr.height) != (w, h):
            raise ValueError(f"intrinsics are for {intr.width}x{intr.height}, image is {w}x{h}")
        depth_m = None
        if depth is not None:
            depth_m = depth_to_metres(depth)
            if depth_m.shape != (h, w):
                raise ValueError(f"depth image is {depth_m.shape[1]}x{depth_m.shape[0]}, image is {w}x{h}")
        timings: dict[str, float] = {}
        rec = Reconstruction(intrinsics=intr, timings_ms=timings)
        t0 = time.perf_counter()
        if people is None:
            people = self.detector.detect(image)
            timings["keypoints"] = (time.perf_counter() - t0) * 1000.0
        if not track:
            self.tracker.reset()
        matches = self.tracker.assign(people)
        t1 = time.perf_counter()
        fits, kept, pelvises = [], [], []
        for person, match in zip(people, matches, strict=True):
            try:
                fit = self.fitter.fit(person, intr, depth=depth_m, init=match.fit if match is not None else None)
            except ValueError as exc:
                rec.notes.append(f"person skipped: {exc}")
                continue
            fits.append(fit)
            kept.append((person, match))
            pelvises.append(fit.keypoints_cam[_HIPS].mean(0))
        ids = self.tracker.update([p for p, _ in kept], fits, pelvises, [m for _, m in kept])
        for (person, _), fit, pid in zip(kept, fits, ids, strict=True):
            verts, joints = fit.body_output(self.body)
            hips_body = fit.rotation.T @ (fit.keypoints_cam[_HIPS].mean(0) - fit.translation)
            rec.bodies.append(BodyPose(id=pid, vertices=verts, faces=self.body.faces, joints=joints,
                                       keypoints=fit.keypoints_cam, keypoints_2d=person.keypoints,
                                       transform_camera_body=transform_camera_body(fit.rotation, fit.translation,
                                                                                   hips_body), fit=fit))
        timings["body_fit"] = (time.perf_counter() - t1) * 1000.0
        if contacts is not None and rec.bodies:
            t2 = time.perf_counter()
            areas = [float(np.prod(np.ptp(p.keypoints, axis=0))) for p, _ in kept]
            self._place_objects(rec, contacts, rec.bodies[int(np.argmax(areas))], intr, depth_m, object_masks or {})
            timings["object_fit"] = (time.perf_counter() - t2) * 1000.0
        elif contacts is not None:
            rec.notes.append("no person found: objects not placed")
        return rec

    def _place_objects(self, rec: Reconstruction, contacts: ContactResult, body: BodyPose, intr: Intrinsics,
                       depth_m, masks: Mapping[str, np.ndarray]) -> None:
        n_body = len(body.vertices)
        if contacts.num_body_vertices != n_body:
            rec.notes.append(f"contact is on {contacts.body_model} ({contacts.num_body_vertices} vertices) but the "
                             f"fitted body has {n_body}: human contact not transferred")
        body_probs = np.zeros(n_body, np.float32)
        for oc in contacts.contacts:
            if not oc.found:
                continue
            hp = oc.human_probs if oc.human_probs is not None and len(oc.human_probs) == n_body else None
            if hp is not None:
                body_probs = np.maximum(body_probs, hp)
            label = self.library.lookup(oc.label)
            if label is None:
                rec.notes.append(f"{oc.label!r}: no mesh in objects.library; contact kept on the body only")
                rec.contacts.append(self._contact_points(oc.label, body, hp, None, None))
                continue
            mesh = self.library.mesh(label)
            ov = np.asarray(mesh.vertices, dtype=np.float64)
            of = np.asarray(mesh.faces, dtype=np.int64)
            op = oc.object_probs if oc.object_probs is not None and len(oc.object_probs) == len(ov) else None
            if oc.object_probs is not None and op is None:
                rec.notes.append(f"{oc.label!r}: object contact is on mesh {oc.object_mesh_id!r}, not on "
                                 f"{self.library.mesh_id(label)}; pose fitted without it")
            mask = masks.get(oc.label, masks.get(label))
            fit = self.object_fitter.fit(ov, of, op, body.vertices, body.faces, hp, intr, mask=mask, depth=depth_m)
            obj = ObjectPose(label=label, mesh_id=self.library.mesh_id(label), vertices=fit.vertices_cam, faces=of,
                             transform=fit.transform, person_id=body.id, contact_probs=op, fit=fit, query=oc.label)
            rec.objects.append(obj)
            rec.contacts.append(self._contact_points(oc.label, body, hp, obj, op))
        body.contact_probs = body_probs

    def _contact_points(self, label, body: BodyPose, hp, obj: ObjectPose | None, op) -> ContactPoints:
        empty3, empty1 = np.zeros((0, 3), np.float32), np.zeros(0, np.float32)
        hid = np.nonzero(hp >= self.threshold)[0] if hp is not None else np.zeros(0, np.int64)
        oid = np.nonzero(op >= self.threshold)[0] if (op is not None and obj is not None) else np.zeros(0, np.int64)
        return ContactPoints(
            label=label, person_id=body.id,
            human_points=body.vertices[hid] if len(hid) else empty3,
            human_probs=hp[hid].astype(np.float32) if len(hid) else empty1, human_vertex_ids=hid,
            object_points=obj.vertices[oid] if len(oid) else empty3,
            object_probs=op[oid].astype(np.float32) if len(oid) else empty1, object_vertex_ids=oid)
