"""Person evidence (``contact.person_gate``): is there a person in the frame at all? Human contact on an image
with no person in it is the model's class prior, not an answer, so the pipeline withholds it.

Evidence comes from MediaPipe in the keypoint worker (:mod:`interactvlm_ros.recon.keypoints`), one request per
frame: the Pose detector (BlazePose finds a person through the face and upper body) and the Hands detector (palm
detector + hand landmarks), so a person whose face is hidden behind what they hold still counts when a hand is
visible. With ``recon.enabled`` the same request's people feed the reconstruction: MediaPipe runs once per frame.

The request is sent before the model runs and read after it (:meth:`PersonGate.begin`, then
:meth:`PendingEvidence.result`): the worker is its own process, so the detection overlaps the model's forward
pass as far as free cores allow.

Modes (not on/off: YAML reads those as booleans): ``disabled`` (no gate); ``required`` (a frame without evidence,
or whose evidence cannot be computed, gets no contact); ``auto``, the default (the gate where the MediaPipe
environment runs; where it cannot start, contacts are published unchecked, with ``reason`` and the diagnostics
saying so). See :func:`apply_person_evidence`.

A person seen only by their hands (no pose: the face and body hidden behind what they hold, or outside the frame)
is evidence for the hands alone: human contact elsewhere on the body is dropped, and a contact the model put only
on unseen parts is reported not found, with the reason.

A calibration board held up to the camera hides the face, and the hand holding it is a fist the palm detector
misses. For a board query the worker also looks for a chessboard (:mod:`interactvlm_ros.recon.board_hands`) and
for the hands holding it: the Pose people's own hands at its rim, else hands along its outline. A hand found there
holds the board: the ``board`` contact is put on that hand, whatever the model's map says, because the
model has never seen a board held this way (its synthetic boards are stood on or carried against the body); its
object map is where the hand grips the board (:func:`board_grip_map`, applied by the pipeline once the board's
mesh is known). A board in view that no hand is found holding gets no contact.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

LOG = logging.getLogger("interactvlm.pipeline")

MODES = ("auto", "required", "disabled")
RETRY_S = 10.0
"""Seconds between attempts to (re)start a MediaPipe worker that failed (starting one costs about a second)."""
CONTACT_LEVEL = 0.5
"""The method's contact level: with hands-only evidence a contact is kept when a hand vertex reaches it."""
HAND_PARTS = ("left hand", "right hand")
BOARD_LABEL = "board"
"""The object name (after ``model.object_names``) whose contact hands found at a chessboard's outline give."""
GRIP_RADIUS_M = 0.08
"""Object contact around a board grip: the board's vertices within this distance (about half a hand's width,
in the board's plane) of the point where the hand holds its rim."""


@dataclass(frozen=True)
class BoardHand:
    """A hand found holding a calibration board: ``part`` (``"left hand"`` / ``"right hand"``, the body model's
    part name, the person's own side), hand ``presence`` in [0, 1], and ``grip``: ``(u, v)`` where on the board's
    rim it holds it (u along the board's grid columns, v along its rows, 0..1)."""

    part: str
    presence: float
    grip: tuple[float, float]


@dataclass
class PersonEvidence:
    """Whether a person is in one frame.

    Attributes:
        present: a person (pose), at least one hand, or a hand holding a board was detected.
        confidence: in [0, 1]; the strongest evidence: a pose's landmark visibility (mean of its more visible
            half: a person cut by the image border is not penalised for the cut part) or a hand's score. 0 when
            absent or unavailable.
        reason: what the detectors saw, e.g. ``pose: 1 person (0.93); hands: 2 (0.97)``, or why no evidence.
        people: people found by the pose detector.
        hands: hands found by the hand detector.
        available: False when the detectors could not run (then ``present`` is False and ``reason`` says why).
        ms: wall time of the detection request (it overlaps the model when run through :class:`PersonGate`).
        board_hands: each hand found at a calibration board's outline (:class:`BoardHand`).
        board_seen: a calibration board (chessboard) was found in the frame (looked for on board queries only).
    """

    present: bool
    confidence: float
    reason: str
    people: int = 0
    hands: int = 0
    available: bool = True
    ms: float = 0.0
    board_hands: tuple[BoardHand, ...] = ()
    board_seen: bool = False

    @property
    def hands_only(self) -> bool:
        """Seen only by hands: no pose, at least one hand (found by the palm detector or at a board)."""
        return self.available and self.present and self.people == 0 and (self.hands > 0 or bool(self.board_hands))

    def describe(self) -> str:
        """One line for diagnostics, e.g. ``person: pose: 1 person (0.93); hands: none``."""
        if not self.available:
            return f"unavailable: {self.reason}"
        return ("person: " if self.present else "no person: ") + self.reason


def pose_confidence(person) -> float:
    """A detected person's confidence: the mean visibility of the more visible half of MediaPipe's 33 landmarks."""
    lm = getattr(person, "landmarks", None)
    vis = np.asarray(lm[:, 3] if lm is not None else person.confidence, dtype=np.float32)
    top = np.sort(np.clip(vis, 0.0, 1.0))[::-1][:max(1, len(vis) // 2)]
    return float(top.mean()) if top.size else 0.0


def evidence_from(detections, size: tuple[int, int], ms: float = 0.0) -> PersonEvidence:
    """:class:`PersonEvidence` from one frame's :class:`~interactvlm_ros.recon.keypoints.Detections`;
    ``size`` = (width, height) for the reason."""
    pose = [pose_confidence(p) for p in detections.people]
    hands = [float(s) for s in np.asarray(detections.hand_scores).reshape(-1)]
    tiled = " in half-size tiles (small in the frame)" if getattr(detections, "tiled", 0) else ""
    parts = [f"pose: {len(pose)} person{'s' if len(pose) != 1 else ''} ({max(pose):.2f}){tiled}" if pose
             else "pose: no person",
             (f"hands: {len(hands)} ({max(hands):.2f})" if hands else "hands: none")
             if getattr(detections, "hands_checked", True) else "hands: not needed"]
    held: tuple[BoardHand, ...] = ()
    outline = getattr(detections, "board_outline", None)
    if outline is not None:
        held = tuple(BoardHand(part, float(p), (float(g[0]), float(g[1])))
                     for part, p, g in zip(detections.board_hand_parts, detections.board_hand_scores,
                                           detections.board_hand_grips, strict=True))
        parts.append("board: " + (", ".join(f"{b.part} at its edge ({b.presence:.2f})" for b in held) if held
                                  else "no hand found at its edge"))
    parts.append(f"MediaPipe on {size[0]}x{size[1]}")
    conf = max(pose + hands + [b.presence for b in held], default=0.0)
    return PersonEvidence(bool(pose or hands or held), float(np.clip(conf, 0.0, 1.0)), "; ".join(parts),
                          len(pose), len(hands), True, ms, held, outline is not None)


class PendingEvidence:
    """A detection request in flight; :meth:`result` waits for it: ``(PersonEvidence, people or None)``. The
    people (keypoints) are None when the detectors could not run."""

    def __init__(self, future: Future | None = None, ready: tuple[PersonEvidence, list | None] | None = None):
        self._future, self._ready = future, ready

    def result(self) -> tuple[PersonEvidence, list | None]:
        if self._ready is None:
            self._ready = self._future.result()
        return self._ready


class PersonGate:
    """MediaPipe person evidence for the pipeline; never raises for a frame (a failure is evidence that is not
    ``available``, with the reason). Thread-safe; one request at a time.

    Args:
        mode: ``auto``, ``required`` or ``disabled`` (``contact.person_gate``).
        detector: a :class:`~interactvlm_ros.recon.keypoints.KeypointDetector`-like object with
            ``detect_with_hands(rgb, max_people, max_hands)`` and ``close()``, or a callable returning one (built on
            first use, so a missing MediaPipe environment is a frame's reason, not a start-up crash). Share the
            reconstruction's detector to run MediaPipe once per frame.
        max_people: people the pose detector looks for (1 suffices for the gate; the reconstruction wants more).
        owns_detector: :meth:`close` stops the detector's worker (False when the reconstruction owns it).
        segmentation: ask for person masks (the reconstruction's silhouette term needs them; the gate does not).
        hand_vertices: ``[Nh]`` int64 indices of the body topology's hand vertices (both hands), for hands-only
            evidence (see :func:`apply_person_evidence`); None: hands-only evidence counts for the whole body.
        hand_parts: ``{"left hand": [Nl], "right hand": [Nr]}`` int64 vertex indices of each hand, for hands
            found holding a board (taken from the predictor's body model by :meth:`use_body` when not given).

    The hand detector runs only when the pose detector found nobody: one person is enough evidence, and it saves
    the hand model's time on most frames with people. For a board query a person found by Pose is first checked
    for a board held in their own (Pose) hands; the crop search along the board runs when none holds it.
    """

    def __init__(self, mode: str = "auto", detector: Any = None, max_people: int = 1, max_hands: int = 4,
                 owns_detector: bool = True, segmentation: bool = False,
                 hand_vertices: np.ndarray | None = None,
                 hand_parts: Mapping[str, np.ndarray] | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"person gate mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.mode = mode
        self._detector = detector
        self.max_people = int(max_people)
        self.max_hands = int(max_hands)
        self.owns_detector = bool(owns_detector)
        self.segmentation = bool(segmentation)
        self.hand_vertices = None if hand_vertices is None else np.asarray(hand_vertices, dtype=np.int64)
        self.hand_parts = None if hand_parts is None else {k: np.asarray(v, np.int64) for k, v in hand_parts.items()}
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._retry_after = 0.0
        self._retry_reason = ""
        self.last: PersonEvidence | None = None

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], reconstruction: Any = None) -> PersonGate | None:
        """The gate ``contact.person_gate`` asks for (None when ``disabled``). With a ``reconstruction`` (a
        :class:`~interactvlm_ros.pipeline.reconstruction.ReconStage`) the gate shares its keypoint worker and
        detects up to ``recon.max_people`` people for it; else it starts its own worker (``recon.keypoint_python``)
        on the first frame and looks for one person."""
        mode = str(cfg.contact.person_gate)
        if mode == "disabled":
            return None
        if reconstruction is not None:
            return cls(mode, lambda: reconstruction.detector, max_people=cfg.recon.max_people, owns_detector=False,
                       segmentation=True)

        def detector():
            from interactvlm_ros.recon.keypoints import KeypointDetector, mediapipe_python

            return KeypointDetector(mediapipe_python(cfg.recon.keypoint_python), max_people=1,
                                    min_score=cfg.recon.min_visibility, tiles=cfg.recon.person_tiles)

        return cls(mode, detector, max_people=1)

    def use_body(self, body_model) -> None:
        """Take the hand vertices for hands-only evidence from ``body_model`` (the predictor's) unless given."""
        if self.hand_vertices is None:
            self.hand_vertices = hand_vertex_ids(body_model)
        if self.hand_parts is None:
            self.hand_parts = hand_part_ids(body_model)

    @property
    def strict(self) -> bool:
        """``required``: contacts need evidence; unavailable evidence withholds them too."""
        return self.mode == "required"

    def _get_detector(self):
        if callable(self._detector) and not hasattr(self._detector, "detect_with_hands"):
            self._detector = self._detector()
        return self._detector

    def check(self, rgb: np.ndarray, max_people: int | None = None,
              boards: bool = True) -> tuple[PersonEvidence, list | None]:
        """Evidence for one uint8 ``[H,W,3]`` frame (blocking): ``(evidence, people or None)``. ``boards``: also
        look for hands holding a calibration board (about 1 s on a frame with a board that no Pose hand holds;
        the pipeline asks only when a query is a board)."""
        now = time.monotonic()
        if now < self._retry_after:
            ev = PersonEvidence(False, 0.0, self._retry_reason, available=False)
            self.last = ev
            return ev, None
        t0 = time.perf_counter()
        h, w = rgb.shape[:2]
        try:
            det = self._get_detector().detect_with_hands(rgb, max_people or self.max_people, self.max_hands,
                                                         hands_without_people_only=True,
                                                         segmentation=self.segmentation, board_hands=boards)
        except Exception as exc:  # noqa: BLE001 - a missing/broken MediaPipe is reported, never raised
            from interactvlm_ros.recon.keypoints import KeypointError

            lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()] or [type(exc).__name__]
            detail = lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"
            if isinstance(exc, KeypointError):
                self._retry_after = now + RETRY_S
                detail = f"{detail} (retrying every {RETRY_S:.0f} s)"
            else:
                detail = f"{type(exc).__name__}: {detail}"
            self._retry_reason = detail
            ev = PersonEvidence(False, 0.0, detail, available=False, ms=(time.perf_counter() - t0) * 1000.0)
            self.last = ev
            return ev, None
        ev = evidence_from(det, (w, h), (time.perf_counter() - t0) * 1000.0)
        self.last = ev
        return ev, det.people

    def apply(self, result, evidence: PersonEvidence) -> None:
        """:func:`apply_person_evidence` with this gate's mode and hand vertices."""
        apply_person_evidence(result, evidence, self.strict, self.hand_vertices, self.hand_parts)

    def begin(self, rgb: np.ndarray, max_people: int | None = None, boards: bool = True) -> PendingEvidence:
        """Start :meth:`check` on a helper thread (it waits on the worker process, which computes in parallel with
        the caller's model pass); read it with ``.result()``."""
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="person-gate")
            return PendingEvidence(self._pool.submit(self.check, np.ascontiguousarray(rgb), max_people, boards))

    def close(self) -> None:
        """Stop the helper thread and (when owned) the MediaPipe worker; both restart on the next frame."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
        det = self._detector
        if self.owns_detector and det is not None and hasattr(det, "close"):
            try:
                det.close()
            except Exception as exc:  # noqa: BLE001 - shutdown is best effort
                LOG.warning("closing the person gate's keypoint worker failed: %s: %s", type(exc).__name__, exc)


def hand_part_ids(body_model) -> dict[str, np.ndarray] | None:
    """``{"left hand": [Nl], "right hand": [Nr]}`` int64 vertex indices of ``body_model`` (its
    ``part_vertex_ids``), or None."""
    if body_model is None or not hasattr(body_model, "part_vertex_ids"):
        return None
    parts = body_model.part_vertex_ids()
    if not all(name in parts for name in HAND_PARTS):
        return None
    return {name: np.asarray(parts[name], dtype=np.int64) for name in HAND_PARTS}


def hand_vertex_ids(body_model) -> np.ndarray | None:
    """``[Nh]`` int64 indices of both hands' vertices of ``body_model`` (its ``part_vertex_ids``), or None."""
    parts = hand_part_ids(body_model)
    return None if parts is None else np.unique(np.concatenate(list(parts.values())))


def apply_person_evidence(result, evidence: PersonEvidence, strict: bool,
                          hand_vertices: np.ndarray | None = None,
                          hand_parts: Mapping[str, np.ndarray] | None = None) -> None:
    """Gate one frame's ``ContactResult`` in place by ``evidence``.

    * person present: every found contact gets ``person_confidence`` (the published ``Contact.confidence`` is the
      highest human contact probability times it);
    * seen only by hands (``evidence.hands_only``, with ``hand_vertices`` ``[Nh]`` given): the human map keeps its
      hand vertices and is 0 elsewhere (the rest of the body was not seen), ``reason`` says so; a contact with no
      hand vertex at ``CONTACT_LEVEL`` becomes ``found=False`` ("only hands are seen ... the model's contact is
      elsewhere") and its maps are dropped;
    * hands found holding a calibration board (``evidence.board_hands``, with ``hand_parts`` given): a found
      ``board`` contact is put on those hands (each hand's vertices at its presence, 0 elsewhere), see
      :func:`_board_contact` (its object map, once the pipeline knows the board's mesh: :func:`board_grip_map`);
    * a calibration board seen with no hand at its edge (``evidence.board_seen``, no ``board_hands``): a found
      ``board`` contact becomes ``found=False`` ("a calibration board is in view and no hand was found holding
      it"): the model's board map (torso and thighs) would be the class prior, and a board nobody is seen
      holding is either held out of sight or not touched;
    * no person: every found contact becomes ``found=False`` with ``reason`` "no person in the image (<what the
      detectors saw>)", and its maps are dropped (the model's human map is not an answer on an absent person);
      contacts that were already not found keep their own reason;
    * evidence unavailable: with ``strict`` (``required``) the same as no person, reason "person gate unavailable:
      ..."; otherwise (``auto``) found contacts stay as the model answered, unchecked, and their ``reason`` says
      "person gate unavailable: ... (not checked for a person)".
    """
    if evidence.available and evidence.present:
        for c in result.contacts:
            if c.found:
                c.person_confidence = float(evidence.confidence)
        held = _board_contact(result, evidence, hand_parts) if evidence.board_hands and hand_parts else set()
        if evidence.board_seen and not evidence.board_hands:
            for c in result.contacts:
                if c.found and c.label == BOARD_LABEL:
                    _withhold(c, f"a calibration board is in view and no hand was found holding it ({evidence.reason})")
        if evidence.hands_only and hand_vertices is not None:
            _keep_hands(result, evidence, hand_vertices, skip=held)
        return
    if evidence.available:
        why = f"no person in the image ({evidence.reason})"
    elif strict:
        why = f"person gate unavailable: {evidence.reason}"
    else:
        for c in result.contacts:
            if c.found:
                c.reason = f"person gate unavailable: {evidence.reason} (not checked for a person)"
        return
    for c in result.contacts:
        if c.found:
            _withhold(c, why)


def _keep_hands(result, evidence: PersonEvidence, hand_vertices: np.ndarray, skip: set[int] = frozenset()) -> None:
    """Hands-only evidence: human contact only on the hand vertices (see :func:`apply_person_evidence`); contacts
    whose ``id`` is in ``skip`` are left as they are."""
    for c in result.contacts:
        if not c.found or c.human_probs is None or id(c) in skip:
            continue
        on_hands = c.human_probs[hand_vertices]
        if not (on_hands >= CONTACT_LEVEL).any():
            _withhold(c, f"only hands are seen ({evidence.reason}); the model's contact is on parts not seen")
            continue
        kept = np.zeros_like(c.human_probs)
        kept[hand_vertices] = on_hands
        c.human_probs = kept
        c.reason = f"only hands are seen ({evidence.reason}): contact kept on the hands"


def _board_contact(result, evidence: PersonEvidence, hand_parts: Mapping[str, np.ndarray]) -> set[int]:
    """Hands found at a calibration board's edge hold it: each found ``board`` contact's human map becomes those
    hands (every vertex of a hand at the hand's presence), 0 elsewhere, and its view masks (the model's map on the
    renders) are dropped. Returns the ``id`` of each contact set."""
    done = set()
    for c in result.contacts:
        if not c.found or c.label != BOARD_LABEL or c.human_probs is None:
            continue
        held = np.zeros_like(c.human_probs)
        for hand in evidence.board_hands:
            ids = hand_parts[hand.part]
            held[ids] = np.maximum(held[ids], hand.presence)
        c.human_probs = held
        c.view_masks = None  # the decoder's masks show the model's own map, not these hands
        c.reason = (f"contact from the hands found holding the board ({evidence.reason}); "
                    "the model's own map for the board is not used")
        done.add(id(c))
    return done


def board_grip_map(vertices: np.ndarray, hands: tuple[BoardHand, ...], radius: float = GRIP_RADIUS_M) -> np.ndarray:
    """Object contact ``[No]`` float32 on a board mesh (``vertices [No,3]``, metres) where ``hands`` hold it: each
    vertex within ``radius`` of a grip, measured in the board's plane, at the hand's presence (the rim and both
    faces there: fingers wrap the edge). The board's longest axis is the grid's columns (u), its middle axis the
    rows (v), its thinnest the thickness; a board looks the same turned by half a turn about its normal, so of the
    two placements of the grip the one with u along +x is used."""
    v = np.asarray(vertices, dtype=np.float64)
    lo, hi = v.min(axis=0), v.max(axis=0)
    order = np.argsort(hi - lo)[::-1]  # longest, middle, thinnest
    long_axis, mid_axis = order[0], order[1]
    out = np.zeros(len(v), np.float32)
    for hand in hands:
        point = (lo[long_axis] + hand.grip[0] * (hi - lo)[long_axis], lo[mid_axis] + hand.grip[1] * (hi - lo)[mid_axis])
        d = np.hypot(v[:, long_axis] - point[0], v[:, mid_axis] - point[1])
        out[d <= radius] = np.maximum(out[d <= radius], hand.presence)
    return out


def _withhold(c, why: str) -> None:
    c.found, c.reason = False, why
    c.human_probs = c.object_probs = c.view_masks = None
    c.object_mesh_id = ""
    c.person_confidence = 0.0
