"""The pipeline, once for the node, ``interactvlm infer``, bags (through the node) and evaluation: one image and
the objects asked about → contacts on the body (and on each object's mesh) → optionally, the people and objects
reconstructed in the camera frame.

An object is asked by name (``"mug"``: its mesh, if any, is the object library's) or as an :class:`ObjectQuery`
that carries the mesh to use (evaluation scores each sample against the sample's own object mesh).

Steps of :meth:`ContactPipeline.run`:

1. the image is encoded once (vision tower, image features) and shared by every query of the frame;
2. human contact for every object name (``predictor.predict``): the VLM names a contact token, the decoder
   localizes it on 4 renders of the body, the masks are lifted to the body's vertices;
3. object contact (``object_contact``): for every found object with a mesh (its query's, else the library's),
   the same on that mesh (``predictor.predict_objects``: all of the frame's meshes in one call);
4. reconstruction (``reconstruction`` given): the posed body and objects in the camera frame; a frame that
   cannot be reconstructed keeps its contacts, with the reason (:mod:`.reconstruction`).

With a person gate (``contact.person_gate``, :mod:`.person_gate`) MediaPipe's pose and hand detectors run in
their worker process while steps 1–2 run; a frame without a person gets every contact ``found=False`` (step 3 is
skipped for it), and the gate's people are the reconstruction's keypoints (MediaPipe once per frame).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from interactvlm_ros.pipeline.person_gate import BOARD_LABEL, PersonEvidence, PersonGate, board_grip_map
from interactvlm_ros.pipeline.reconstruction import ReconAttempt, ReconStage
from interactvlm_ros.pipeline.result import ContactResult, MeshTopology


@dataclass(frozen=True)
class ObjectQuery:
    """One object asked about in a frame: ``name`` (as the user typed it) and the ``mesh`` its object contact is
    localised on (None: the object library's mesh for the name, if the library has one)."""

    name: str
    mesh: MeshTopology | None = None


@dataclass
class PipelineResult:
    """One frame through the pipeline: the contacts (``object_probs`` / ``object_mesh_id`` filled where the
    object's mesh is known), the reconstruction attempt (None when reconstruction is off) and the person
    evidence (None when the person gate is off)."""

    contacts: ContactResult
    reconstruction: ReconAttempt | None = None
    person: PersonEvidence | None = None


class ContactPipeline:
    """Predictor + object library + optional reconstruction.

    Args:
        predictor: ``encode(rgb) -> image``, ``predict(image, names) -> ContactResult``,
            ``predict_objects(image, meshes, names, mesh_ids) -> ContactResult`` (or ``predict_object`` per mesh).
        library: ``ObjectLibrary`` (name → mesh), or None (object contact only on meshes the queries carry).
        reconstruction: a :class:`ReconStage`, or None.
        object_contact: predict contact on the library mesh of each found object.
        person_gate: a :class:`PersonGate` (contacts need a person in the frame), or None.
    """

    def __init__(self, predictor, library=None, reconstruction: ReconStage | None = None,
                 object_contact: bool = True, person_gate: PersonGate | None = None) -> None:
        self.predictor = predictor
        self.library = library
        self.reconstruction = reconstruction
        self.object_contact = bool(object_contact)
        self.person_gate = person_gate
        if person_gate is not None:
            person_gate.use_body(getattr(predictor, "body_model", None))
        self.last_person: PersonEvidence | None = None
        self._meshes: dict[str, MeshTopology] = {}  # library meshes, by mesh id
        self._given: dict[str, MeshTopology] = {}  # the meshes the last frame's queries carried

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], predictor, library=None, num_body_vertices: int = 0,
                    track: bool = True) -> ContactPipeline:
        """The pipeline the parameters describe: ``node.object_contact``, ``recon.enabled`` for the
        reconstruction (``track``: keep person tracks across frames, as a camera stream does) and
        ``contact.person_gate`` (sharing the reconstruction's keypoint worker)."""
        recon = None
        if cfg.recon.enabled:
            recon = ReconStage(cfg, body_model=getattr(predictor, "body_model", None), library=library,
                               num_body_vertices=num_body_vertices, track=track)
        return cls(predictor, library, recon, bool(cfg.node.object_contact), PersonGate.from_config(cfg, recon))

    def run(self, rgb: np.ndarray, objects: Sequence[str | ObjectQuery], K: np.ndarray | None = None,
            depth: np.ndarray | None = None) -> PipelineResult:
        """Contacts for ``objects`` (names or :class:`ObjectQuery`, one contact each, in order) in ``rgb`` (uint8
        ``[H,W,3]``; grey, 16-bit, RGBA and float images are converted as the predictor would,
        :func:`~interactvlm_ros.model.vision.to_rgb_uint8`); ``K [3,3]`` and ``depth [H,W]`` (metres) are used by the
        reconstruction (None: ``camera.default_fov_deg``, no depth)."""
        from interactvlm_ros.model.vision import to_rgb_uint8

        rgb = to_rgb_uint8(rgb)  # the person gate and the reconstruction need 3 uint8 channels
        queries = [o if isinstance(o, ObjectQuery) else ObjectQuery(o) for o in objects]
        self._given = {q.mesh.mesh_id: q.mesh for q in queries if q.mesh is not None}
        pending = (self.person_gate.begin(rgb, boards=self._asks_for_board(queries))
                   if self.person_gate is not None else None)
        image = self.predictor.encode(rgb)
        result = self.predictor.predict(image, [q.name for q in queries])
        evidence = people = None
        if pending is not None:
            t0 = time.perf_counter()
            evidence, people = pending.result()
            result.timings_ms["person_gate_wait"] = (time.perf_counter() - t0) * 1000.0
            self.person_gate.apply(result, evidence)
            self.last_person = evidence
        if self.object_contact:
            self._add_object_contact(image, result, queries)
            if evidence is not None and evidence.board_hands:
                self._board_grips(result, evidence)
        attempt = (self.reconstruction.run(rgb, result, K, depth, people=people)
                   if self.reconstruction is not None else None)
        return PipelineResult(result, attempt, evidence)

    def _board_grips(self, result: ContactResult, evidence: PersonEvidence) -> None:
        """The object map of each found board contact where the hands found holding the board grip it
        (:func:`~interactvlm_ros.pipeline.person_gate.board_grip_map`), in place of the model's."""
        for c in result.contacts:
            mesh = self.object_mesh(c.object_mesh_id) if c.found and c.label == BOARD_LABEL else None
            if mesh is not None:
                c.object_probs = board_grip_map(mesh.vertices, evidence.board_hands)

    def _asks_for_board(self, queries: list[ObjectQuery]) -> bool:
        """Whether a query names a board (as the model knows it): only then does the person gate look for hands
        holding a calibration board (the search costs about 1 s on a frame with a board and nobody found)."""
        resolve = getattr(self.predictor, "resolve_names", None)
        if resolve is None:
            return True
        try:
            return any(m.prompt_name == BOARD_LABEL for m in resolve([q.name for q in queries]))
        except ValueError:  # a name with nothing printable: predict reports it
            return False

    def object_mesh(self, mesh_id: str) -> MeshTopology | None:
        """The mesh a contact's ``object_mesh_id`` names: a library mesh (``label@hash``) or one the last frame's
        queries carried; None when neither has it."""
        if mesh_id in self._given:
            return self._given[mesh_id]
        if mesh_id and mesh_id not in self._meshes and self.library is not None:
            label = mesh_id.split("@", 1)[0]
            if label in self.library:
                self._library_mesh(label)
        return self._meshes.get(mesh_id)

    def _library_mesh(self, label: str) -> MeshTopology:
        mesh_id = self.library.mesh_id(label)
        if mesh_id not in self._meshes:
            mesh = self.library.mesh(label)
            self._meshes[mesh_id] = MeshTopology(mesh_id, "object", label,
                                                 np.asarray(mesh.vertices, dtype=np.float32),
                                                 np.asarray(mesh.faces, dtype=np.int64))
        return self._meshes[mesh_id]

    def _add_object_contact(self, image, result: ContactResult, queries: list[ObjectQuery]) -> None:
        """Fill ``object_probs``/``object_mesh_id`` of each found contact that has a mesh (its query's, else the
        library's for the contact's name), all in one ``predictor.predict_objects`` call (one LLM batch, one MV-Loc
        call for the frame's meshes; a predictor without it is asked ``predict_object`` per mesh); the stage times
        are added to ``result.timings_ms`` as ``object_<stage>``."""
        todo = []  # (contact, its mesh)
        for c, q in zip(result.contacts, queries, strict=True):
            if not c.found or c.object_probs is not None:
                continue
            if q.mesh is not None:
                todo.append((c, q.mesh))
            elif self.library is not None and (label := self.library.lookup(c.label)) is not None:
                todo.append((c, self._library_mesh(label)))
        if not todo:
            return
        if hasattr(self.predictor, "predict_objects"):
            objs = [self.predictor.predict_objects(image, [(m.vertices, m.faces) for _, m in todo],
                                                   [c.label for c, _ in todo], [m.mesh_id for _, m in todo])]
            answers = objs[0].contacts
        else:
            objs = [self.predictor.predict_object(image, m.vertices, m.faces, c.label, mesh_id=m.mesh_id)
                    for c, m in todo]
            answers = [o.contacts[0] if o.contacts else None for o in objs]
        for obj in objs:
            for stage, ms in obj.timings_ms.items():
                result.timings_ms[f"object_{stage}"] = result.timings_ms.get(f"object_{stage}", 0.0) + ms
        for (c, mesh), oc in zip(todo, answers, strict=True):
            if oc is not None and oc.found and oc.object_probs is not None:
                c.object_probs, c.object_mesh_id = oc.object_probs, mesh.mesh_id

    def close(self) -> None:
        """Stop the person gate and the reconstruction's keypoint worker (they restart with the next frame)."""
        if self.person_gate is not None:
            self.person_gate.close()
        if self.reconstruction is not None:
            self.reconstruction.close()
