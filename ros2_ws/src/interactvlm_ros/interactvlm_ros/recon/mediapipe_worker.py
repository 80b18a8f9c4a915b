"""MediaPipe Pose keypoint worker: runs in the separate numpy<2 environment (``.venv-mediapipe``).

Started once by :class:`interactvlm_ros.recon.keypoints.KeypointDetector` and reused. It imports only
mediapipe, numpy and, for ``board_hands``, its sibling script ``board_hands.py`` (OpenCV, ai-edge-litert; never
``interactvlm_ros``) and speaks a length-prefixed protocol on stdin/stdout:

    message = <u32 little-endian header length> <JSON header> <array bytes ...>

The header lists the arrays that follow (``{"arrays": [{"name", "dtype", "shape"}, ...]}``) plus fields.
Requests: ``{"op": "detect", "max_people": int, "min_score": float}`` with one array ``image`` (uint8
``[H,W,3]`` RGB); ``{"op": "ping"}``; ``{"op": "quit"}``. A detect reply holds per person ``i`` the arrays
``landmarks_i`` (float32 ``[33,4]``: x, y in pixels, z relative depth in pixels (MediaPipe's scale), visibility),
``world_i`` (float32 ``[33,3]`` metres, hip-centred, MediaPipe's axes: x right, y down, z towards the camera
being negative) and ``mask_i`` (float32 ``[H,W]`` person segmentation probability).

Optional detect fields (for the person gate; without them request and reply are the pose-only ones above):
``"hands": N > 0`` also runs MediaPipe Hands (palm detector + hand landmarks, ``model_complexity=1``, up to N
hands) on the original image, and the reply has ``"hands": n`` and the arrays ``hand_i`` (float32 ``[21,3]``: x, y
in pixels, relative z) and ``hand_scores`` (float32 ``[n]``, the handedness classifier's score of each hand);
``"hands_without_people_only": true`` skips the hands (no ``"hands"`` in the reply) when a person was found;
``"segmentation": false`` runs Pose without its segmentation (faster; ``mask_i`` is then empty, ``[0,0]``).
``"board_hands": true``: look for hands holding a calibration board (a chessboard, :mod:`board_hands`): the Pose
people's own hands at the board's rim; when there are none, MediaPipe's hand-landmark network on crops along the
board's outline. The reply has ``"board": true/false``, ``"board_hands": n``,
``"board_hand_parts"`` (``"left hand"`` / ``"right hand"`` each, the person's own side) and the arrays
``board_outline`` (float32 ``[4,2]`` pixels, when a board was found), ``board_hand_i`` (float32 ``[k,3]`` x, y
pixels, relative z: the network's 21 landmarks, or Pose's wrist, pinky, index and thumb), ``board_hand_scores``
(float32 ``[n]``, hand presence, or the Pose points' visibility) and ``board_hand_grips`` (float32 ``[n,2]``, where
on the board each holds it: u along the grid's columns, v along its rows, 0..1 over the outline).
``"tiles": true`` (small, distant people): when the whole frame shows nobody, Pose also looks in a 3x3 grid of
overlapping half-size tiles (a person a quarter of the frame tall fills half a tile); a tile's person counts when
its confidence (mean visibility of its more visible half of the landmarks) is at least ``"tile_min_confidence"``
(default 0.75), duplicates across tiles are merged, and the reply's ``"tiled"`` says how many people were found so.

Several people: MediaPipe Pose finds one person per call, so the worker detects repeatedly, each time
painting the people already found (their segmentation mask dilated, plus their landmark box) with the
image mean colour, until nobody is found, the new detection overlaps an earlier one, or ``max_people``.
"""

from __future__ import annotations

import json
import struct
import sys

import numpy as np


def read_message(stream) -> tuple[dict, dict[str, np.ndarray]] | None:
    raw = stream.read(4)
    if len(raw) < 4:
        return None
    (n,) = struct.unpack("<I", raw)
    header = json.loads(stream.read(n).decode("utf-8"))
    arrays = {}
    for spec in header.get("arrays", []):
        dtype = np.dtype(spec["dtype"])
        count = int(np.prod(spec["shape"])) if spec["shape"] else 1
        buf = stream.read(count * dtype.itemsize)
        arrays[spec["name"]] = np.frombuffer(buf, dtype=dtype).reshape(spec["shape"])
    return header, arrays


def write_message(stream, header: dict, arrays: dict[str, np.ndarray] | None = None) -> None:
    arrays = arrays or {}
    header = dict(header)
    header["arrays"] = [{"name": k, "dtype": str(v.dtype), "shape": list(v.shape)} for k, v in arrays.items()]
    blob = json.dumps(header).encode("utf-8")
    stream.write(struct.pack("<I", len(blob)))
    stream.write(blob)
    for v in arrays.values():
        stream.write(np.ascontiguousarray(v).tobytes())
    stream.flush()


def _box(points: np.ndarray, shape) -> tuple[int, int, int, int]:
    h, w = shape[:2]
    x0, y0 = np.clip(points.min(axis=0), 0, [w - 1, h - 1]).astype(int)
    x1, y1 = np.clip(points.max(axis=0), 0, [w - 1, h - 1]).astype(int)
    return int(x0), int(y0), int(x1), int(y1)


def _iou(a, b) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


class PoseWorker:
    def __init__(self) -> None:
        import mediapipe as mp

        self._mp = mp
        # model_complexity=1 is the only Pose model bundled in the 0.10.21 wheel (0 and 2 would download).
        self.pose = mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1, enable_segmentation=True,
                                           min_detection_confidence=0.5)
        self._hands = None  # built on the first request that asks for hands
        self._pose_noseg = None  # Pose without segmentation, built on the first request that asks for it
        self._hand_net = None  # the hand-landmark network alone, built on the first board_hands request

    def board_hands(self, image: np.ndarray,
                    people: list[np.ndarray]) -> tuple[bool, list[str], dict[str, np.ndarray]]:
        """Hands holding a chessboard in ``image``: ``(board found, part of each hand, arrays)``. ``people`` (Pose
        landmarks ``[33,4]`` each): their own hands at the board's rim (:func:`board_hands.pose_hands_at_board`);
        when there are none, the hand-landmark network on crops along its outline
        (:func:`board_hands.hands_along_outline`)."""
        import cv2
        from board_hands import (  # a sibling of this script (never interactvlm_ros)
            HandLandmarkNet,
            board_outline,
            hands_along_outline,
            no_hands,
            pose_hands_at_board,
        )

        outline = board_outline(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))
        parts, hands, scores, grips = no_hands(21)
        if outline is not None and people:
            parts, hands, scores, grips = pose_hands_at_board(people, outline)
        if outline is not None and not parts:
            if self._hand_net is None:
                self._hand_net = HandLandmarkNet()
            parts, hands, scores, grips = hands_along_outline(image, outline, self._hand_net)
        out = {f"board_hand_{i}": h for i, h in enumerate(hands)}
        out["board_hand_scores"], out["board_hand_grips"] = scores, grips
        if outline is not None:
            out["board_outline"] = outline.astype(np.float32)
        return outline is not None, parts, out

    def hands(self, image: np.ndarray, max_hands: int) -> dict[str, np.ndarray]:
        """MediaPipe Hands on ``image``: ``hand_i [21,3]`` (x, y px, relative z) and ``hand_scores [n]``."""
        if self._hands is None:
            # static images; the full palm detector and landmark model, both bundled in the 0.10.21 wheel
            self._hands = self._mp.solutions.hands.Hands(static_image_mode=True, max_num_hands=4, model_complexity=1,
                                                         min_detection_confidence=0.5)
        h, w = image.shape[:2]
        res = self._hands.process(image)
        out: dict[str, np.ndarray] = {}
        scores = []
        found = zip(res.multi_hand_landmarks or [], res.multi_handedness or [], strict=False)
        for i, (lms, handed) in enumerate(found):
            if i >= max_hands:
                break
            out[f"hand_{i}"] = np.array([[p.x * w, p.y * h, p.z * w] for p in lms.landmark], dtype=np.float32)
            scores.append(handed.classification[0].score)
        out["hand_scores"] = np.asarray(scores, dtype=np.float32)
        return out

    def _pose(self, segmentation: bool):
        if segmentation:
            return self.pose
        if self._pose_noseg is None:
            self._pose_noseg = self._mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1,
                                                            enable_segmentation=False, min_detection_confidence=0.5)
        return self._pose_noseg

    def detect_in_tiles(self, image: np.ndarray, max_people: int, min_score: float, segmentation: bool,
                        min_confidence: float) -> dict[str, np.ndarray]:
        """Pose in a 3x3 grid of overlapping half-size tiles of ``image`` (people too small for the whole-frame
        detector); landmarks and masks in full-image pixels, the most confident people first, one per place."""
        pose = self._pose(segmentation)
        h, w = image.shape[:2]
        th, tw = h // 2, w // 2
        found = []
        for y0 in np.linspace(0, h - th, 3).astype(int):
            for x0 in np.linspace(0, w - tw, 3).astype(int):
                res = pose.process(np.ascontiguousarray(image[y0:y0 + th, x0:x0 + tw]))
                if res.pose_landmarks is None:
                    continue
                lm = np.array([[p.x * tw + x0, p.y * th + y0, p.z * tw, p.visibility]
                               for p in res.pose_landmarks.landmark], dtype=np.float32)
                vis = np.sort(lm[:, 3])[::-1]
                confidence = float(vis[:len(vis) // 2].mean())
                visible = lm[:, 3] >= min_score
                if confidence < min_confidence or visible.sum() < 6:
                    continue
                mask = np.zeros((h, w) if segmentation else (0, 0), np.float32)
                if segmentation and res.segmentation_mask is not None:
                    mask[y0:y0 + th, x0:x0 + tw] = res.segmentation_mask
                world = np.array([[p.x, p.y, p.z] for p in res.pose_world_landmarks.landmark], dtype=np.float32)
                found.append((confidence, _box(lm[visible, :2], image.shape), lm, world, mask))
        out: dict[str, np.ndarray] = {}
        boxes: list[tuple[int, int, int, int]] = []
        for _, box, lm, world, mask in sorted(found, key=lambda f: -f[0]):
            if len(boxes) >= max_people or any(_iou(box, b) > 0.3 for b in boxes):
                continue
            i = len(boxes)
            out[f"landmarks_{i}"], out[f"world_{i}"], out[f"mask_{i}"] = lm, world, mask
            boxes.append(box)
        return out

    def detect(self, image: np.ndarray, max_people: int, min_score: float,
               segmentation: bool = True) -> dict[str, np.ndarray]:
        import cv2

        pose = self._pose(segmentation)

        h, w = image.shape[:2]
        work = image.copy()
        fill = image.reshape(-1, 3).mean(axis=0).astype(np.uint8)
        out: dict[str, np.ndarray] = {}
        boxes: list[tuple[int, int, int, int]] = []
        for i in range(max_people):
            res = pose.process(work)
            if res.pose_landmarks is None:
                break
            lm = np.array([[p.x * w, p.y * h, p.z * w, p.visibility] for p in res.pose_landmarks.landmark],
                          dtype=np.float32)
            visible = lm[:, 3] >= min_score
            if visible.sum() < 6:
                break
            box = _box(lm[visible, :2], image.shape)
            if any(_iou(box, b) > 0.5 for b in boxes):
                break
            world = np.array([[p.x, p.y, p.z] for p in res.pose_world_landmarks.landmark], dtype=np.float32)
            mask = (res.segmentation_mask.astype(np.float32) if res.segmentation_mask is not None
                    else np.zeros((h, w) if segmentation else (0, 0), np.float32))
            out[f"landmarks_{i}"], out[f"world_{i}"], out[f"mask_{i}"] = lm, world, mask
            boxes.append(box)
            # Hide this person for the next pass: dilated mask and the landmark box.
            hide = (cv2.dilate((mask > 0.3).astype(np.uint8), np.ones((15, 15), np.uint8)) > 0 if mask.size
                    else np.zeros((h, w), bool))
            x0, y0, x1, y1 = box
            pad = int(0.05 * max(x1 - x0, y1 - y0))
            hide[max(0, y0 - pad):y1 + pad, max(0, x0 - pad):x1 + pad] = True
            work[hide] = fill
        return out


def main() -> int:
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    # Anything mediapipe prints must not corrupt the protocol stream.
    sys.stdout = sys.stderr
    worker = None
    while True:
        msg = read_message(stdin)
        if msg is None:
            return 0
        header, arrays = msg
        op = header.get("op")
        try:
            if op == "quit":
                write_message(stdout, {"ok": True})
                return 0
            if worker is None:
                worker = PoseWorker()
            if op == "ping":
                import mediapipe

                write_message(stdout, {"ok": True, "mediapipe": mediapipe.__version__, "numpy": np.__version__})
            elif op == "detect":
                image = arrays["image"]
                if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
                    raise ValueError(f"image must be uint8 [H,W,3], got {image.dtype} {list(image.shape)}")
                image = np.ascontiguousarray(image)
                max_people, min_score = int(header.get("max_people", 1)), float(header.get("min_score", 0.5))
                segmentation = bool(header.get("segmentation", True))
                found = worker.detect(image, max_people, min_score, segmentation)
                reply = {"ok": True, "people": len(found) // 3}
                if not found and header.get("tiles"):
                    found = worker.detect_in_tiles(image, max_people, min_score, segmentation,
                                                   float(header.get("tile_min_confidence", 0.75)))
                    reply.update(people=len(found) // 3, tiled=len(found) // 3)
                if int(header.get("hands", 0)) > 0 and not (header.get("hands_without_people_only")
                                                             and reply["people"]):
                    hands = worker.hands(image, int(header["hands"]))
                    reply["hands"] = len(hands["hand_scores"])
                    found.update(hands)
                if header.get("board_hands"):
                    people = [found[f"landmarks_{i}"] for i in range(reply["people"])]
                    reply["board"], reply["board_hand_parts"], held = worker.board_hands(image, people)
                    reply["board_hands"] = len(held["board_hand_scores"])
                    found.update(held)
                write_message(stdout, reply, found)
            else:
                raise ValueError(f"unknown op {op!r}")
        except Exception as exc:  # noqa: BLE001 - reported to the client, which raises it
            write_message(stdout, {"ok": False, "error": f"{type(exc).__name__}: {exc}"})


if __name__ == "__main__":
    raise SystemExit(main())
