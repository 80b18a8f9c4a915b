"""2D/3D body keypoints from MediaPipe Pose, run in its own numpy<2 environment behind a pipe.

MediaPipe 0.10.21 (the last release whose wheel carries the Pose models) needs numpy < 2, while the main
environment runs numpy 2. :class:`KeypointDetector` therefore starts ``mediapipe_worker.py`` once with the
Python of ``.venv-mediapipe`` (``make setup`` creates it) and exchanges length-prefixed numpy buffers with it
over stdin/stdout. The README's "Reconstruction" section explains the choice.
"""

from __future__ import annotations

import os
import struct
import subprocess
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from interactvlm_ros.config.paths import repo_root
from interactvlm_ros.recon.mediapipe_worker import read_message, write_message  # one protocol, both ends

# MediaPipe Pose's 33 landmarks, in order.
MEDIAPIPE_NAMES: tuple[str, ...] = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_pinky", "right_pinky", "left_index", "right_index",
    "left_thumb", "right_thumb", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)

# The keypoints the body fit uses (COCO 17 + feet), named as in Anny's/SMPL-X's keypoint sets, with the
# MediaPipe landmark each one is read from. foot_index (the tip of the foot) plays the big toe.
FIT_KEYPOINTS: dict[str, str] = {
    "nose": "nose", "left_eye": "left_eye", "right_eye": "right_eye", "left_ear": "left_ear",
    "right_ear": "right_ear", "left_shoulder": "left_shoulder", "right_shoulder": "right_shoulder",
    "left_elbow": "left_elbow", "right_elbow": "right_elbow", "left_wrist": "left_wrist",
    "right_wrist": "right_wrist", "left_hip": "left_hip", "right_hip": "right_hip", "left_knee": "left_knee",
    "right_knee": "right_knee", "left_ankle": "left_ankle", "right_ankle": "right_ankle",
    "left_heel": "left_heel", "right_heel": "right_heel", "left_big_toe": "left_foot_index",
    "right_big_toe": "right_foot_index",
}


class KeypointError(RuntimeError):
    """The MediaPipe environment is missing or the worker failed; the message says what to do."""


@dataclass
class PersonKeypoints:
    """One detected person.

    Attributes:
        keypoints: float32 ``[K,2]`` pixel coordinates of :data:`FIT_KEYPOINTS` (in that order).
        confidence: float32 ``[K]`` visibility in [0, 1] (0 = not observed).
        landmarks: float32 ``[33,4]`` MediaPipe's raw landmarks (x px, y px, relative z, visibility).
        world: float32 ``[33,3]`` MediaPipe's metric hip-centred 3D landmarks (x right, y down).
        mask: float32 ``[H,W]`` person segmentation probability, or None.
        keypoints3d: float32 ``[K,3]`` metric 3D keypoints relative to the mid-hip point, in camera-aligned
            axes (x right, y down, z away from the camera) — MediaPipe's world landmarks — or None.
    """

    keypoints: np.ndarray
    confidence: np.ndarray
    keypoints3d: np.ndarray | None = None
    landmarks: np.ndarray | None = None
    world: np.ndarray | None = None
    mask: np.ndarray | None = None

    @property
    def names(self) -> list[str]:
        return list(FIT_KEYPOINTS)

    def bbox(self, min_conf: float = 0.3) -> np.ndarray:
        """``[4]`` x0, y0, x1, y1 of the keypoints with confidence ≥ ``min_conf``."""
        pts = self.keypoints[self.confidence >= min_conf]
        if len(pts) == 0:
            pts = self.keypoints
        return np.concatenate([pts.min(axis=0), pts.max(axis=0)]).astype(np.float32)

    @classmethod
    def from_mediapipe(cls, landmarks: np.ndarray, world=None, mask=None) -> PersonKeypoints:
        idx = [MEDIAPIPE_NAMES.index(src) for src in FIT_KEYPOINTS.values()]
        lm = np.asarray(landmarks, dtype=np.float32)
        kp3 = None
        if world is not None:
            world = np.asarray(world, np.float32)
            hips = world[[MEDIAPIPE_NAMES.index("left_hip"), MEDIAPIPE_NAMES.index("right_hip")]].mean(0)
            kp3 = (world[idx] - hips).astype(np.float32)
        return cls(keypoints=lm[idx, :2].copy(), confidence=np.clip(lm[idx, 3], 0.0, 1.0).copy(), keypoints3d=kp3,
                   landmarks=lm, world=world, mask=mask)


@dataclass
class Detections:
    """One image's people and hands (:meth:`KeypointDetector.detect_with_hands`).

    Attributes:
        people: the detected people, as :meth:`KeypointDetector.detect` returns them.
        hands: float32 ``[n,21,3]`` hand landmarks (x, y pixels, relative z) of MediaPipe Hands.
        hand_scores: float32 ``[n]`` handedness score of each hand (MediaPipe's solution API keeps the palm
            detector's own score internal; a hand is only reported once it passed detection and landmarks).
        hands_checked: False when the hand detector was skipped (a person was found and hands were asked for
            only without people).
        tiled: how many of ``people`` were found in half-size tiles (small in the frame; ``tiles=True``).
        board_outline: float32 ``[4,2]`` pixels of a calibration chessboard (asked with ``board_hands=True``),
            else None.
        board_hands: float32 ``[m,k,3]`` points of the hands holding the board (x, y pixels, relative z): Pose's
            own wrist, pinky, index and thumb (k = 4) of hands at its rim, or, when Pose has none there, the
            hand-landmark network's 21 landmarks of hands along the board's outline.
        board_hand_parts: ``"left hand"`` / ``"right hand"`` of each (the person's own side).
        board_hand_scores: float32 ``[m]`` their hand presence (Pose: the points' mean visibility).
        board_hand_grips: float32 ``[m,2]`` where on the board each holds it (u along the grid's columns, v along its
            rows, 0..1 over the outline; on its rim).
    """

    people: list[PersonKeypoints]
    hands: np.ndarray
    hand_scores: np.ndarray
    hands_checked: bool = True
    tiled: int = 0
    board_outline: np.ndarray | None = None
    board_hands: np.ndarray = field(default_factory=lambda: np.zeros((0, 21, 3), np.float32))
    board_hand_scores: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    board_hand_grips: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))
    board_hand_parts: tuple[str, ...] = ()


def mediapipe_python(configured: str = "") -> Path:
    """The interpreter of the MediaPipe environment: parameter, ``$INTERACTVLM_MEDIAPIPE_PYTHON``, or
    ``<repo>/.venv-mediapipe/bin/python``. Raises :class:`KeypointError` with the fix when none exists."""
    candidates = []
    if configured:
        candidates.append(Path(configured).expanduser())
    env = os.environ.get("INTERACTVLM_MEDIAPIPE_PYTHON")
    if env:
        candidates.append(Path(env).expanduser())
    root = repo_root()
    if root is not None:
        candidates.append(root / ".venv-mediapipe" / "bin" / "python")
    for cand in candidates:
        if cand.is_file() and os.access(cand, os.X_OK):
            return cand
    tried = ", ".join(str(c) for c in candidates) or "nothing"
    raise KeypointError("MediaPipe environment not found (tried " + tried + "): run `make setup` (it creates "
                        ".venv-mediapipe with mediapipe==0.10.21 and numpy<2) or set recon.keypoint_python / "
                        "$INTERACTVLM_MEDIAPIPE_PYTHON to a Python that has them.")


class KeypointDetector:
    """MediaPipe Pose in a persistent worker process; ``detect(image)`` -> list of :class:`PersonKeypoints`.

    Thread-safe (one request at a time); the worker starts on first use and stops with :meth:`close`.
    ``tiles``: when the whole frame shows nobody, also look in half-size tiles (small, distant people; see
    ``recon.person_tiles``).
    """

    def __init__(self, python: str | os.PathLike | None = None, max_people: int = 4, min_score: float = 0.5,
                 timeout_s: float = 60.0, tiles: bool = False):
        self.python = Path(python) if python else mediapipe_python()
        self.max_people = int(max_people)
        self.min_score = float(min_score)
        self.tiles = bool(tiles)
        self.timeout_s = timeout_s
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self.version: dict = {}

    @classmethod
    def from_config(cls, cfg: Mapping) -> KeypointDetector:
        return cls(mediapipe_python(cfg.recon.keypoint_python), max_people=cfg.recon.max_people,
                   min_score=cfg.recon.min_visibility, tiles=cfg.recon.person_tiles)

    # --- process ------------------------------------------------------------------------------------------
    def start(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        worker = Path(__file__).with_name("mediapipe_worker.py")
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        env.setdefault("GLOG_minloglevel", "2")
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        self._proc = subprocess.Popen([str(self.python), "-u", str(worker)], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        self._stderr: list[str] = []
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        self.version = self._request({"op": "ping"})[0]

    def _drain_stderr(self) -> None:
        proc = self._proc
        for line in iter(proc.stderr.readline, b""):
            self._stderr.append(line.decode("utf-8", "replace").rstrip())
            del self._stderr[:-50]

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.poll() is None:
                write_message(proc.stdin, {"op": "quit"})
                proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired, ValueError):
            proc.kill()
            proc.wait()

    def __enter__(self) -> KeypointDetector:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - best effort at interpreter exit
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass

    # --- requests -----------------------------------------------------------------------------------------
    def detect(self, image_rgb: np.ndarray, max_people: int | None = None) -> list[PersonKeypoints]:
        """People in ``image_rgb`` (uint8 ``[H,W,3]``), largest-first as MediaPipe finds them."""
        image = np.asarray(image_rgb)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"image must be uint8 [H,W,3] RGB, got {image.dtype} {image.shape}")
        self.start()
        header, arrays = self._request({"op": "detect", "max_people": max_people or self.max_people,
                                        "min_score": self.min_score, "tiles": self.tiles}, {"image": image})
        return [PersonKeypoints.from_mediapipe(arrays[f"landmarks_{i}"], arrays[f"world_{i}"],
                                               arrays[f"mask_{i}"]) for i in range(header["people"])]

    def detect_with_hands(self, image_rgb: np.ndarray, max_people: int | None = None, max_hands: int = 4,
                          hands_without_people_only: bool = False, segmentation: bool = True,
                          board_hands: bool = False) -> Detections:
        """People (as :meth:`detect`) and hands (MediaPipe Hands) in ``image_rgb`` in one worker request.
        ``hands_without_people_only``: look for hands only when the pose detector found nobody (then
        ``Detections.hands_checked`` is False when it found someone); ``segmentation=False``: no person masks
        (``PersonKeypoints.mask`` None), faster; ``board_hands``: also look for hands holding a calibration chessboard
        (:mod:`interactvlm_ros.recon.board_hands`: Pose's own hands at its rim, else hands along its outline)."""
        image = np.asarray(image_rgb)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"image must be uint8 [H,W,3] RGB, got {image.dtype} {image.shape}")
        self.start()
        header, arrays = self._request({"op": "detect", "max_people": max_people or self.max_people,
                                        "min_score": self.min_score, "hands": int(max_hands),
                                        "hands_without_people_only": bool(hands_without_people_only),
                                        "segmentation": bool(segmentation), "tiles": self.tiles,
                                        "board_hands": bool(board_hands)},
                                       {"image": image})
        people = []
        for i in range(header["people"]):
            mask = arrays[f"mask_{i}"]
            people.append(PersonKeypoints.from_mediapipe(arrays[f"landmarks_{i}"], arrays[f"world_{i}"],
                                                         mask if mask.size else None))
        n = int(header.get("hands", 0))
        hands = (np.stack([arrays[f"hand_{i}"] for i in range(n)]) if n else np.zeros((0, 21, 3), np.float32))
        scores = arrays.get("hand_scores", np.zeros(0, np.float32))
        m = int(header.get("board_hands", 0))
        held = (np.stack([arrays[f"board_hand_{i}"] for i in range(m)]) if m else np.zeros((0, 21, 3), np.float32))
        return Detections(people, hands.astype(np.float32), np.asarray(scores, np.float32).reshape(-1),
                          "hands" in header, int(header.get("tiled", 0)), arrays.get("board_outline"),
                          held.astype(np.float32),
                          np.asarray(arrays.get("board_hand_scores", np.zeros(0)), np.float32).reshape(-1),
                          np.asarray(arrays.get("board_hand_grips", np.zeros((0, 2))), np.float32).reshape(-1, 2),
                          tuple(header.get("board_hand_parts", ())))

    def _request(self, header: dict, arrays: dict[str, np.ndarray] | None = None):
        with self._lock:
            proc = self._proc
            if proc is None or proc.poll() is not None:
                raise KeypointError(self._died("not running"))
            try:
                write_message(proc.stdin, header, arrays)
                reply = read_message(proc.stdout)
            except (OSError, ValueError, struct.error) as exc:
                raise KeypointError(self._died(f"pipe error {exc}")) from None
            if reply is None:
                raise KeypointError(self._died("closed its output"))
            if not reply[0].get("ok"):
                raise KeypointError(f"MediaPipe worker: {reply[0].get('error')}")
            return reply

    def _died(self, what: str) -> str:
        tail = "\n".join(getattr(self, "_stderr", [])[-10:])
        return f"MediaPipe worker ({self.python}) {what}; its last messages:\n{tail}"


def probe_mediapipe(configured: str = "", timeout_s: float = 60.0) -> tuple[bool, str]:
    """Whether the MediaPipe environment imports (a real subprocess import); ``(ok, detail)``."""
    try:
        python = mediapipe_python(configured)
    except KeypointError as exc:
        return False, str(exc).split(":")[0]
    code = "import numpy, mediapipe; from mediapipe.python.solutions import pose; " \
           "print(mediapipe.__version__, numpy.__version__)"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    try:
        res = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=timeout_s, env=env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"{python}: {exc}"
    if res.returncode != 0:
        last = (res.stderr.strip().splitlines() or ["no output"])[-1]
        return False, f"{python}: {last}"
    mp_version, np_version = res.stdout.split()[:2]
    return True, f"mediapipe {mp_version} (numpy {np_version}) in {python}"
