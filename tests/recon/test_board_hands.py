"""Hands holding a calibration board (``interactvlm_ros.recon.board_hands``), for the person gate.

The crop geometry is checked here in numpy; the search itself runs in the real MediaPipe worker (OpenCV's
chessboard detectors and MediaPipe's hand-landmark network on ai-edge-litert) on a frame of OpenCV's stereo
calibration set, fetched from Debian's opencv-doc package like the real-photo evaluation's images (skips when the
MediaPipe environment or the package is missing), and on scikit-image's coffee cup (no board, no hand).
"""

import numpy as np
import pytest

from interactvlm_ros.pipeline.person_gate import (
    BoardHand,
    PersonEvidence,
    apply_person_evidence,
    board_grip_map,
    evidence_from,
)
from interactvlm_ros.pipeline.result import ContactResult, ObjectContact
from interactvlm_ros.recon.board_hands import (
    CROP,
    CROP_SIZES,
    EDGE_PLACES,
    TURNS_DEG,
    _crop_map,
    held_hand_part,
    outline_crops,
    rim_distance,
)


def apply(m: np.ndarray, p) -> np.ndarray:
    return m[:, :2] @ np.asarray(p, np.float64) + m[:, 2]


def test_crop_map_centres_scales_and_points_up_into_the_board():
    m = _crop_map(np.array([300.0, 200.0]), 112.0, np.array([-1.0, 0.0]), 0.0)  # up = image left
    np.testing.assert_allclose(apply(m, [300, 200]), [CROP / 2, CROP / 2], atol=1e-4)
    np.testing.assert_allclose(apply(m, [244, 200]), [CROP / 2, 0.0], atol=1e-4)  # 56 px left -> crop top
    np.testing.assert_allclose(apply(m, [300, 144]), [CROP, CROP / 2], atol=1e-4)  # 56 px up -> crop right
    assert np.linalg.det(m[:, :2]) > 0  # a turn, never a mirror (a left hand stays a left hand)


def test_outline_crops_look_upright_and_into_the_board_from_every_edge():
    outline = np.array([[100, 100], [400, 100], [400, 300], [100, 300]], np.float32)
    maps = outline_crops(outline)
    turns, ups = len(TURNS_DEG), 2
    assert len(maps) == 4 * len(EDGE_PLACES) * len(CROP_SIZES) * ups * turns
    centre = outline.mean(axis=0)
    for i, m in enumerate(maps):
        if i % turns != TURNS_DEG.index(0.0):
            continue
        place = EDGE_PLACES[(i // (turns * ups * len(CROP_SIZES))) % len(EDGE_PLACES)]
        if (i // turns) % ups == 0:  # the image's up
            assert apply(m, [0.0, -1000.0])[1] < 0 and abs(m[0, 1]) < 1e-6
            continue
        x, y = apply(m, centre)
        assert y < CROP / 2  # looks into the board
        if place == 0.5:
            assert abs(x - CROP / 2) < 1e-3  # from an edge's middle, straight at the board's centre


def test_the_hand_right_of_the_board_is_the_holders_left():
    outline = np.array([[100, 100], [400, 100], [400, 300], [100, 300]], np.float32)
    hand = np.zeros((21, 3), np.float32)
    hand[:, 0], hand[:, 1] = 420.0, 200.0
    assert held_hand_part(hand, outline) == "left hand"
    hand[:, 0] = 80.0
    assert held_hand_part(hand, outline) == "right hand"


def test_rim_distance_is_to_the_nearest_edge_inside_and_out():
    outline = np.array([[100, 100], [400, 100], [400, 300], [100, 300]], np.float32)
    assert rim_distance(np.array([110.0, 200.0]), outline) == pytest.approx(10.0)  # inside, by the left edge
    assert rim_distance(np.array([250.0, 200.0]), outline) == pytest.approx(100.0)  # the middle
    assert rim_distance(np.array([90.0, 200.0]), outline) == pytest.approx(10.0)  # outside the left edge
    assert rim_distance(np.array([403.0, 304.0]), outline) == pytest.approx(5.0)  # beyond a corner


def test_board_contact_goes_on_the_holding_hand_and_other_objects_keep_hands_only():
    parts = {"left hand": np.array([0, 1]), "right hand": np.array([2, 3])}
    torso = np.array([0.0, 0.0, 0.0, 0.0, 0.9, 0.9], np.float32)  # the model's board map: on the body
    board = ObjectContact("board", human_probs=torso.copy(), view_masks=np.ones((4, 8, 8), np.float32))
    cup = ObjectContact("cup", human_probs=np.array([0.0, 0.0, 0.8, 0.8, 0.0, 0.0], np.float32))
    ev = PersonEvidence(True, 0.9, "pose: no person; hands: none; board: left hand at its edge (0.90)",
                        people=0, hands=0, board_hands=(BoardHand("left hand", 0.9, (1.0, 0.5)),))
    assert ev.hands_only
    res = ContactResult("anny", 6, [board, cup])
    apply_person_evidence(res, ev, strict=False, hand_vertices=np.arange(4), hand_parts=parts)
    np.testing.assert_allclose(board.human_probs, [0.9, 0.9, 0, 0, 0, 0])
    assert board.found and "hands found holding the board" in board.reason and board.view_masks is None
    assert cup.found and "only hands are seen" in cup.reason  # the cup's map is on the hands: kept there
    np.testing.assert_allclose(cup.human_probs, [0, 0, 0.8, 0.8, 0, 0])


def test_board_grip_map_marks_the_rim_where_the_hand_holds_it():
    # a 60 x 2 x 40 cm board (thin along y), vertices on a 2 cm grid on both faces
    x, z = np.meshgrid(np.linspace(-0.3, 0.3, 31), np.linspace(-0.2, 0.2, 21))
    face = np.stack([x.ravel(), np.zeros(x.size), z.ravel()], axis=1)
    verts = np.concatenate([face + [0, 0.01, 0], face - [0, 0.01, 0]])
    probs = board_grip_map(verts, (BoardHand("left hand", 0.9, (1.0, 0.5)),))  # the middle of the +x rim
    near = np.hypot(verts[:, 0] - 0.3, verts[:, 2]) <= 0.08
    np.testing.assert_allclose(probs[near], 0.9)
    assert (probs[~near] == 0).all() and near.sum() > 20
    both = board_grip_map(verts, (BoardHand("left hand", 0.9, (1.0, 0.5)), BoardHand("right hand", 0.8, (0.0, 0.5))))
    left_mid = np.argmin(np.hypot(verts[:, 0] + 0.3, verts[:, 2]))
    right_mid = np.argmin(np.hypot(verts[:, 0] - 0.3, verts[:, 2]))
    assert np.isclose(both[left_mid], 0.8) and np.isclose(both[right_mid], 0.9)


@pytest.fixture(scope="module")
def board_frame():
    from PIL import Image

    from interactvlm_ros.evaluation.photo_sources import labelled_photo_files

    files, missing = labelled_photo_files(["board_left01"])  # eval --real's cache, checked by sha256
    if missing:
        pytest.skip(f"OpenCV's calibration frames are not available here: {missing}")
    return np.asarray(Image.open(files["board_left01"]).convert("RGB"))


@pytest.fixture(scope="module")
def detector():
    from interactvlm_ros.recon.keypoints import KeypointDetector, KeypointError, mediapipe_python

    try:
        python = mediapipe_python("")
    except KeypointError as exc:
        pytest.skip(f"MediaPipe environment missing: {exc}")
    with KeypointDetector(python, max_people=1) as det:
        yield det


def test_worker_finds_the_hand_holding_a_calibration_board(detector, board_frame):
    det = detector.detect_with_hands(board_frame, 1, hands_without_people_only=True, segmentation=False,
                                     board_hands=True)
    assert not det.people  # the face is behind the board: Pose sees nobody
    assert det.board_outline is not None and det.board_outline.shape == (4, 2)
    assert len(det.board_hands) == 1 and det.board_hand_scores[0] >= 0.7
    grip = det.board_hand_grips[0]
    assert min(grip.min(), 1 - grip.max()) == 0.0 and (0 <= grip).all() and (grip <= 1).all()  # on the rim
    ev = evidence_from(det, (640, 480))
    assert ev.present and ev.hands_only and ev.board_hands[0].part == "left hand"
    assert "board: left hand at its edge" in ev.reason


def test_a_person_found_in_tiles_without_hands_at_the_board_still_gets_the_crop_search(board_frame):
    """With ``recon.person_tiles`` Pose finds the seated person of left01 in a tile while guessing his hidden hands
    (none at the board's rim): the crops along the outline still find the left hand holding the board."""
    from interactvlm_ros.recon.keypoints import KeypointDetector, KeypointError, mediapipe_python

    try:
        python = mediapipe_python("")
    except KeypointError as exc:
        pytest.skip(f"MediaPipe environment missing: {exc}")
    with KeypointDetector(python, max_people=1, tiles=True) as tiled:
        det = tiled.detect_with_hands(board_frame, 1, hands_without_people_only=True, segmentation=False,
                                      board_hands=True)
    assert det.tiled == 1 and det.board_hands.shape == (1, 21, 3) and det.board_hand_parts == ("left hand",)
    ev = evidence_from(det, (640, 480))
    assert ev.people == 1 and not ev.hands_only and "board: left hand at its edge" in ev.reason


def test_a_large_frame_is_searched_shrunk_and_answered_in_its_own_pixels(detector, board_frame):
    big = np.ascontiguousarray(np.repeat(np.repeat(board_frame, 3, axis=0), 3, axis=1))  # 1920x1440
    small = detector.detect_with_hands(board_frame, 1, hands_without_people_only=True, segmentation=False,
                                       board_hands=True)
    det = detector.detect_with_hands(big, 1, hands_without_people_only=True, segmentation=False, board_hands=True)
    np.testing.assert_allclose(det.board_outline, 3 * small.board_outline, atol=6.0)
    assert len(det.board_hands) == 1
    assert abs(det.board_hands[0, :, 0].mean() - 3 * small.board_hands[0, :, 0].mean()) < 30


def test_no_board_no_board_hands(detector):
    import skimage.data

    det = detector.detect_with_hands(np.ascontiguousarray(skimage.data.coffee()), 1, hands_without_people_only=True,
                                     segmentation=False, board_hands=True)
    assert det.board_outline is None and len(det.board_hands) == 0
    assert not evidence_from(det, (600, 400)).present


def test_pipeline_asks_for_board_hands_only_when_a_query_is_a_board():
    from interactvlm_ros.config import load_config
    from interactvlm_ros.model import ContactPredictor
    from interactvlm_ros.pipeline.contact_pipeline import ContactPipeline, ObjectQuery

    pipe = ContactPipeline(ContactPredictor.from_config(load_config(None, ["model.device=cpu"])))
    assert pipe._asks_for_board([ObjectQuery("calibration board")])  # a synonym of the default model's board
    assert pipe._asks_for_board([ObjectQuery("cup"), ObjectQuery("board")])
    assert not pipe._asks_for_board([ObjectQuery("cup"), ObjectQuery("ball")])


def chessboard(cols: int = 10, rows: int = 7, square: int = 16) -> np.ndarray:
    """A printed calibration board, uint8 ``[H,W]``: cols x rows squares ((cols-1) x (rows-1) inner corners, a
    common grid) on white with a half-square margin."""
    m = square // 2
    board = np.full((rows * square + 2 * m, cols * square + 2 * m), 255, np.uint8)
    for r in range(rows):
        for c in range(cols):
            if (r + c) % 2 == 0:
                board[m + r * square:m + (r + 1) * square, m + c * square:m + (c + 1) * square] = 0
    return board


@pytest.fixture(scope="module")
def thrower():
    """OpenCV's basketball frame: the man on the left, face to the camera, has both hands up at about (130-155,
    150-165) px; Pose finds him."""
    from PIL import Image

    from interactvlm_ros.evaluation.photo_sources import labelled_photo_files

    files, missing = labelled_photo_files(["basketball1"])
    if missing:
        pytest.skip(f"OpenCV's basketball frame is not available here: {missing}")
    return np.asarray(Image.open(files["basketball1"]).convert("RGB"))


def with_board(image: np.ndarray, x: int, y: int) -> np.ndarray:
    out = image.copy()
    board = chessboard()
    out[y:y + board.shape[0], x:x + board.shape[1]] = board[..., None]
    return out


def test_a_person_pose_finds_holds_the_board_with_the_hands_at_its_rim(detector, thrower):
    """The board pasted with its left edge at the thrower's hands (held beside his face, which Pose still sees):
    both of Pose's own hands hold it at that edge, and the board contact goes on them, with the rest of the body
    kept (a person, not hands only)."""
    det = detector.detect_with_hands(with_board(thrower, 145, 40), 1, hands_without_people_only=True,
                                     segmentation=False, board_hands=True)
    assert len(det.people) == 1 and det.board_outline is not None
    assert sorted(det.board_hand_parts) == ["left hand", "right hand"] and det.board_hands.shape == (2, 4, 3)
    assert (det.board_hand_scores >= 0.5).all()
    np.testing.assert_allclose(det.board_hand_grips[:, 0], 0.0)  # the board's left edge (u = 0)
    ev = evidence_from(det, (640, 480))
    assert ev.present and not ev.hands_only and {b.part for b in ev.board_hands} == {"left hand", "right hand"}
    parts = {"left hand": np.array([0, 1]), "right hand": np.array([2, 3])}
    board = ObjectContact("board", human_probs=np.array([0, 0, 0, 0, 0.9, 0.9], np.float32))  # the model's: body
    apply_person_evidence(ContactResult("anny", 6, [board]), ev, strict=False, hand_vertices=np.arange(4),
                          hand_parts=parts)
    assert board.found and (board.human_probs[:4] >= 0.5).all() and (board.human_probs[4:] == 0).all()


def test_a_board_away_from_the_hands_is_not_held(detector, thrower):
    det = detector.detect_with_hands(with_board(thrower, 300, 220), 1, hands_without_people_only=True,
                                     segmentation=False, board_hands=True)
    assert len(det.people) == 1 and det.board_outline is not None and len(det.board_hands) == 0
    ev = evidence_from(det, (640, 480))
    assert ev.present and ev.board_seen and "board: no hand found at its edge" in ev.reason
    board = ObjectContact("board", human_probs=np.array([0, 0, 0.9, 0.9], np.float32))  # the model's: on the body
    ball = ObjectContact("ball", human_probs=np.array([0.9, 0.9, 0, 0], np.float32))
    apply_person_evidence(ContactResult("anny", 4, [board, ball]), ev, strict=False, hand_vertices=np.arange(2),
                          hand_parts={"left hand": np.array([0]), "right hand": np.array([1])})
    assert not board.found and board.human_probs is None and "no hand was found holding it" in board.reason
    assert ball.found  # other objects keep the model's answer
