"""Hands holding a calibration board, found where MediaPipe's own detectors miss them.

A person who holds a board up to the camera hides their face behind it, so MediaPipe Pose (which finds people
through the face) sees no one, and the hand at the board's edge is a fist that the palm detector misses. The board
itself is easy to find, and a hand that holds it must be at its outline. So:

1. :func:`board_outline` finds a chessboard (OpenCV's detectors, the common calibration grids) and returns the
   board's outline: the inner-corner grid grown by the outer squares and half a square of margin, ``[4,2]``
   pixels.
2. :class:`HandLandmarkNet` runs MediaPipe's hand-landmark network (``hand_landmark_full.tflite``, the second
   stage of MediaPipe Hands; it scores *hand presence* on a crop and places 21 landmarks) on square crops along
   that outline (:func:`outline_crops`: 4 edges x 3 places x 2 sizes x 2 ups x 3 turns: the crop's up is the
   image's up (a fist on a side edge, forearm from below) or points into the board (fingers over the top or bottom
   edge), each turned by -45, 0 and 45 degrees).
3. :func:`hands_along_outline` keeps crops whose presence reaches ``min_presence`` (a hand whose landmarks centre
   outside the image, in a crop padded beyond the border, is dropped) and merges those that show the same hand:
   ``(parts, landmarks [n,21,3] image pixels, presence [n], grip [n,2])``, ``grip`` being where on the board's
   rim each hand holds it (:func:`grip_on_board`).

A person Pose does find (the board held beside the face, or low) is asked first: Pose's own hand landmarks say
where the hands are and which is which, and :func:`pose_hands_at_board` keeps those at the board's rim. When none
is there (Pose may find the person, in tiles, while guessing the hidden hands), the crops above are searched too.

Measured on OpenCV's 26 stereo-calibration frames (a seated person holding the board up, face behind it): the
board is found in 26 of 26, in none of the 10 other real photos (45 ms when there is none); the holding hand is
found in 7 of the 26, nothing else is (see ``MIN_PRESENCE``); ~1 s a frame with a board on 2 cores for the 144
crops. A hand hidden behind the board, or seen only as a wrist, cannot be found this way.

This module runs inside the MediaPipe worker process (``.venv-mediapipe``: numpy < 2, OpenCV, ai-edge-litert) and
never imports ``interactvlm_ros``.
"""

from __future__ import annotations

import os

import numpy as np

CROP = 224  # the hand-landmark network's input size
MIN_GRID = (5, 4)  # the smallest chessboard (inner corners) looked for
DETECT_SIDE = 640  # long side of the image the chessboard detectors look at (larger frames are shrunk)
COMMON_GRIDS = ((9, 6), (8, 6), (7, 6), (9, 7), (7, 5), (8, 5), (10, 7), (11, 8), (6, 4), (5, 4))
"""Inner-corner grids of common calibration boards (OpenCV's samples, Kalibr/ROS camera_calibration defaults)."""
MARGIN_SQUARES = 0.5  # board margin beyond the outer squares, in squares
EDGE_PLACES = (0.25, 0.5, 0.75)  # where along each outline edge a crop is centred
CROP_SIZES = (0.5, 0.7)  # crop side as a fraction of the board's longer side
TURNS_DEG = (-45.0, 0.0, 45.0)  # crop turns about each of its two ups (the image's, into the board)
MIN_PRESENCE = 0.7
"""Hand presence that counts: the 7 holding hands found on the calibration frames score 0.85-0.98; the highest crops
elsewhere on them were 0.66 (an arm beyond the image border), 0.63 (a neck) and 0.56 (the board's edge)."""


POSE_HAND_POINTS = {"left hand": (15, 17, 19, 21), "right hand": (16, 18, 20, 22)}
"""MediaPipe Pose's landmarks of each hand (wrist, pinky, index, thumb), named from the person's own side."""
POSE_MIN_VISIBILITY = 0.5
"""A Pose hand counts when its 4 landmarks' mean visibility reaches this. The visibility is the held hand's contact
probability, so a held hand is always at the method's contact level (0.5). Pose in tiles puts the seated person's
hidden hands at the board's rim at 0.06-0.48 on 3 calibration frames: those go to the crop search."""
RIM_REACH = 0.2
"""A Pose hand holds the board when its centre is within this fraction of the board's longer side of the rim (in
or out): a hand gripping an edge is at it, and Pose's hand points lie a few centimetres off the hand's middle."""


def board_outline(gray: np.ndarray) -> np.ndarray | None:
    """Outline ``[4,2]`` float32 (pixels, in the grid's order) of the chessboard in ``gray`` (uint8 ``[H,W]``), or
    None when there is none.

    OpenCV's sector-based detector first says whether any chessboard is there (cheap, ~45 ms at 640x480; it
    accepts any grid from 5x4 inner corners up but often reports only part of it); the classic detector then
    finds the whole grid at the first of ``COMMON_GRIDS`` that fits, and the outline is that grid grown by the
    outer squares and the margin. Both look at the image shrunk to ``DETECT_SIDE`` pixels on its long side."""
    import cv2

    scale = min(1.0, DETECT_SIDE / max(gray.shape))
    if scale < 1.0:  # the detectors' time grows with the pixels (2.4 s at 4K); a board is large in the frame
        gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    ok, _, _ = cv2.findChessboardCornersSBWithMeta(gray, MIN_GRID, cv2.CALIB_CB_LARGER)
    if not ok:
        return None
    for cols, rows in COMMON_GRIDS:
        found, corners = cv2.findChessboardCorners(gray, (cols, rows), cv2.CALIB_CB_ADAPTIVE_THRESH
                                                   | cv2.CALIB_CB_NORMALIZE_IMAGE | cv2.CALIB_CB_FAST_CHECK)
        if not found:
            continue
        grid = np.stack(np.meshgrid(np.arange(cols), np.arange(rows)), -1).reshape(-1, 2).astype(np.float32)
        H, _ = cv2.findHomography(grid, corners.reshape(-1, 2))
        if H is None:
            continue
        m = 1.0 + MARGIN_SQUARES  # the outer squares, then the margin
        quad = np.array([[-m, -m], [cols - 1 + m, -m], [cols - 1 + m, rows - 1 + m], [-m, rows - 1 + m]],
                        np.float32)
        return cv2.perspectiveTransform(quad[None], H)[0] / scale
    return None


def outline_crops(outline: np.ndarray) -> list[np.ndarray]:
    """Affine maps ``[2,3]`` (image -> 224 px crop) of the crops along ``outline`` ``[4,2]``: per edge, place,
    size, up (the image's, then into the board) and turn."""
    centre = outline.mean(axis=0)
    size = max(np.linalg.norm(outline[1] - outline[0]), np.linalg.norm(outline[3] - outline[0]))
    maps = []
    for e in range(4):
        a, b = outline[e], outline[(e + 1) % 4]
        d = b - a
        inward = np.array([-d[1], d[0]]) / max(np.linalg.norm(d), 1e-6)
        if np.dot(inward, centre - (a + 0.5 * d)) < 0:
            inward = -inward
        for t in EDGE_PLACES:
            p = a + t * d
            for frac in CROP_SIZES:
                for up in (np.array([0.0, -1.0]), inward):
                    for turn in TURNS_DEG:
                        maps.append(_crop_map(p, frac * size, up, np.deg2rad(turn)))
    return maps


def _crop_map(centre: np.ndarray, side: float, up: np.ndarray, turn: float) -> np.ndarray:
    """Affine ``[2,3]`` taking image pixels to a ``CROP`` px crop of ``side`` pixels centred at ``centre``, whose
    up (-y) is the image direction ``up`` turned by ``turn`` radians."""
    c, s = np.cos(turn), np.sin(turn)
    u = np.array([c * up[0] - s * up[1], s * up[0] + c * up[1]])  # crop up, in the image
    r = np.array([-u[1], u[0]])  # crop right: up turned a quarter clockwise (image y points down)
    k = CROP / side
    rot = np.stack([r, -u]) * k  # rows: image -> crop x, crop y
    return np.concatenate([rot, (CROP / 2 - rot @ centre)[:, None]], axis=1).astype(np.float32)


class HandLandmarkNet:
    """MediaPipe's hand-landmark network (``hand_landmark_full.tflite`` from the mediapipe wheel) on ai-edge-litert
    (the TFLite interpreter).

    ``__call__(crops)``: ``crops`` float32 ``[B,224,224,3]`` RGB in [0, 1] -> ``(landmarks [B,21,3]`` crop pixels
    (x, y, relative z), ``presence [B])``.
    """

    def __init__(self, threads: int = 2):
        import mediapipe
        from ai_edge_litert.interpreter import Interpreter

        path = os.path.join(os.path.dirname(mediapipe.__file__), "modules", "hand_landmark",
                            "hand_landmark_full.tflite")
        self._it = Interpreter(model_path=path, num_threads=threads)
        self._input = self._it.get_input_details()[0]["index"]
        outputs = {d["name"]: d["index"] for d in self._it.get_output_details()}
        self._landmarks, self._presence = outputs["Identity"], outputs["Identity_1"]
        self._batch_shape: tuple[int, ...] = ()

    def __call__(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if crops.shape != self._batch_shape:  # the crop count is the same every frame: allocate once
            self._it.resize_tensor_input(self._input, list(crops.shape))
            self._it.allocate_tensors()
            self._batch_shape = crops.shape
        self._it.set_tensor(self._input, np.ascontiguousarray(crops, dtype=np.float32))
        self._it.invoke()
        lm = self._it.get_tensor(self._landmarks).reshape(-1, 21, 3)
        return lm, self._it.get_tensor(self._presence).reshape(-1)


def hands_along_outline(image: np.ndarray, outline: np.ndarray, net: HandLandmarkNet,
                        min_presence: float = MIN_PRESENCE):
    """Hands at the board ``outline [4,2]`` in ``image`` (uint8 ``[H,W,3]`` RGB): ``(parts, landmarks [n,21,3]``
    image pixels (x, y, z scaled like x), ``presence [n], grip [n,2])``, most present first; crops that show the
    same hand (landmark centroids closer than half a hand) are merged into the most present one. ``parts`` names
    each hand (:func:`held_hand_part`); ``grip`` is where on the board each hand holds it (:func:`grip_on_board`)."""
    import cv2

    maps = outline_crops(outline)
    crops = np.stack([cv2.warpAffine(image, m, (CROP, CROP), flags=cv2.INTER_LINEAR) for m in maps])
    lm, presence = net(crops.astype(np.float32) / 255.0)
    hands, scores = [], []
    for i in np.argsort(-presence):
        if presence[i] < min_presence:
            break
        inv = cv2.invertAffineTransform(maps[i])
        xy = lm[i, :, :2] @ inv[:, :2].T + inv[:, 2]
        z = lm[i, :, 2:] * np.sqrt(abs(np.linalg.det(inv[:, :2])))
        span = np.ptp(xy, axis=0).max()
        cx, cy = xy.mean(axis=0)
        if not (0 <= cx < image.shape[1] and 0 <= cy < image.shape[0]):
            continue
        if any(np.linalg.norm(xy.mean(0) - h[:, :2].mean(0)) < 0.5 * span for h in hands):
            continue
        hands.append(np.concatenate([xy, z], axis=1).astype(np.float32))
        scores.append(float(presence[i]))
    if not hands:
        return no_hands(21)
    grips = np.stack([grip_on_board(h, outline) for h in hands])
    return [held_hand_part(h, outline) for h in hands], np.stack(hands), np.asarray(scores, np.float32), grips


def held_hand_part(hand: np.ndarray, outline: np.ndarray) -> str:
    """Which of the person's hands holds the board: ``hand [21,3]`` landmarks and the board's ``outline [4,2]``
    (pixels). The holder faces the camera from behind the board, so a hand right of the board's centre in the image
    is their left hand. (The landmark network's own handedness output is no help here: on these fists it flips
    between crops of the same hand.)"""
    return "left hand" if float(np.mean(hand[:, 0])) > float(np.mean(outline[:, 0])) else "right hand"


def pose_hands_at_board(people: list[np.ndarray], outline: np.ndarray):
    """The hands of people Pose found that hold the board of ``outline [4,2]``: ``people`` are MediaPipe Pose
    landmarks ``[33,4]`` (x, y pixels, z, visibility) each. A hand (:data:`POSE_HAND_POINTS`) holds it when its
    points' mean visibility reaches ``POSE_MIN_VISIBILITY`` and their centre is within ``RIM_REACH`` of the
    board's longer side of its rim. Returns ``(parts, points [m,4,3]`` (x, y pixels, z), ``presence [m]`` (the mean
    visibility), ``grip [m,2])``, like :func:`hands_along_outline`."""
    size = max(np.linalg.norm(outline[1] - outline[0]), np.linalg.norm(outline[3] - outline[0]))
    parts, points, presence = [], [], []
    for landmarks in people:
        for part, ids in POSE_HAND_POINTS.items():
            hand = np.asarray(landmarks, np.float32)[list(ids)]
            seen = float(hand[:, 3].mean())
            if seen >= POSE_MIN_VISIBILITY and rim_distance(hand[:, :2].mean(axis=0), outline) <= RIM_REACH * size:
                parts.append(part)
                points.append(hand[:, :3])
                presence.append(seen)
    if not parts:
        return no_hands(len(POSE_HAND_POINTS["left hand"]))
    grips = np.stack([grip_on_board(h, outline) for h in points])
    return parts, np.stack(points), np.asarray(presence, np.float32), grips


def no_hands(points: int):
    """The hand searches' answer when no hand holds the board: ``([], [0,points,3], [0], [0,2])``."""
    return [], np.zeros((0, points, 3), np.float32), np.zeros(0, np.float32), np.zeros((0, 2), np.float32)


def rim_distance(point: np.ndarray, outline: np.ndarray) -> float:
    """Pixels from ``point [2]`` to the nearest of the 4 edges of ``outline [4,2]`` (inside or outside)."""
    a = np.asarray(outline, np.float64)
    d = np.roll(a, -1, axis=0) - a
    t = np.clip(np.einsum("ij,ij->i", np.asarray(point, np.float64) - a, d) / np.maximum((d * d).sum(1), 1e-9), 0, 1)
    return float(np.linalg.norm(a + t[:, None] * d - point, axis=1).min())


def grip_on_board(hand: np.ndarray, outline: np.ndarray) -> np.ndarray:
    """Where a hand (landmarks ``[k,3]``, pixels) holds the board of ``outline`` ``[4,2]``: ``[2]`` float32 ``(u, v)``
    in the board's own coordinates (``u`` along its grid's columns, ``v`` along its rows, both 0..1 over the
    outline), the hand's centre taken into the board's plane and moved to the nearest edge (a grip is at the rim)."""
    import cv2

    square = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], np.float32)
    H = cv2.getPerspectiveTransform(outline.astype(np.float32), square)
    u, v = np.clip(cv2.perspectiveTransform(hand[None, :, :2].mean(axis=1, keepdims=True).astype(np.float32), H)
                   .reshape(2), 0.0, 1.0)
    gaps = (u, 1.0 - u, v, 1.0 - v)
    edge = int(np.argmin(gaps))
    return np.array([(0.0, 1.0, u, u)[edge], (v, v, 0.0, 1.0)[edge]], np.float32)
