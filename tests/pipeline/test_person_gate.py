"""The person gate (``contact.person_gate``): real MediaPipe (pose + hands in the keypoint worker) on
scikit-image's photos, with the shipped default model, through the one ``ContactPipeline`` and the in-process node.

Checks: no person (the coffee cup) → every contact ``found=False`` with the "no person in the image" reason and no
maps; a person (the astronaut) → the model's contact, carrying the evidence in ``Contact.confidence``; gate disabled →
exactly the model's answer; a worker that cannot start → an honest "person gate unavailable" (``auto``: contacts
unchecked, ``required``: withheld), never an exception, and the node keeps publishing; the worker's protocol without
``hands`` is unchanged; ``recon.person_tiles`` finds a person too small for the whole-frame detector.
"""

import sys

import numpy as np
import pytest
from PIL import Image

from interactvlm_ros.config import load_config
from interactvlm_ros.pipeline.person_gate import PersonEvidence, PersonGate, apply_person_evidence, evidence_from
from interactvlm_ros.pipeline.result import ContactResult, ObjectContact

SETTINGS = ["model.device=cpu", "objects=[cup]"]


def mediapipe_or_skip():
    from interactvlm_ros.recon.keypoints import KeypointError, mediapipe_python

    try:
        return mediapipe_python("")
    except KeypointError as exc:
        pytest.skip(f"MediaPipe environment missing: {exc}")


@pytest.fixture(scope="module")
def photos():
    import skimage.data

    # small sizes keep MediaPipe and the model quick; both are still found / not found at these sizes
    return {"astronaut": np.ascontiguousarray(skimage.data.astronaut()[::2, ::2]),
            "coffee": np.ascontiguousarray(skimage.data.coffee()[::2, ::2])}


@pytest.fixture(scope="module")
def predictor():
    from interactvlm_ros.model import ContactPredictor

    return ContactPredictor.from_config(load_config(None, SETTINGS))


@pytest.fixture(scope="module")
def gated(predictor):
    from interactvlm_ros.pipeline.contact_pipeline import ContactPipeline

    mediapipe_or_skip()
    pipe = ContactPipeline.from_config(load_config(None, [*SETTINGS, "contact.person_gate=required"]), predictor)
    yield pipe
    pipe.close()


def result_with(*contacts) -> ContactResult:
    return ContactResult("anny", 4, list(contacts))


# --- the rule, without MediaPipe -----------------------------------------------------------------------------
def test_no_person_withholds_every_found_contact():
    found = ObjectContact("cup", human_probs=np.array([0.9, 0.1, 0.7, 0.0], np.float32),
                          object_probs=np.ones(3, np.float32), object_mesh_id="cup@1")
    unknown = ObjectContact("couch", found=False, reason="'couch' is not an object this model was trained on")
    res = result_with(found, unknown)
    apply_person_evidence(res, PersonEvidence(False, 0.0, "pose: no person; hands: none"), strict=False)
    assert not found.found and found.reason == "no person in the image (pose: no person; hands: none)"
    assert found.human_probs is None and found.object_probs is None and found.object_mesh_id == ""
    assert unknown.reason.startswith("'couch' is not")  # its own reason stays


def test_person_confidence_scales_the_published_confidence():
    from interactvlm_ros.transport.contacts import contact_array
    from interactvlm_ros.transport.headers import make_header

    c = ObjectContact("cup", human_probs=np.array([0.9, 0.1, 0.7, 0.0], np.float32))
    res = result_with(c)
    assert contact_array(res, make_header(1, "f"), 0.5).contacts[0].confidence == pytest.approx(0.9)
    apply_person_evidence(res, PersonEvidence(True, 0.5, "pose: 1 person (0.50)", people=1), strict=True)
    assert c.found and c.person_confidence == 0.5
    assert contact_array(res, make_header(1, "f"), 0.5).contacts[0].confidence == pytest.approx(0.45)


@pytest.mark.parametrize("strict", [False, True])
def test_unavailable_evidence_is_said_and_strict_withholds(strict):
    c = ObjectContact("cup", human_probs=np.array([0.9, 0.1, 0.7, 0.0], np.float32))
    apply_person_evidence(result_with(c), PersonEvidence(False, 0.0, "MediaPipe environment not found",
                                                         available=False), strict=strict)
    assert c.found is not strict and c.reason.startswith("person gate unavailable: MediaPipe environment not found")
    assert (c.human_probs is None) is strict and c.person_confidence in (None, 0.0)


HANDS = np.array([1, 2], np.int64)  # the test topology's hand vertices (of 4)
ONLY_HANDS = PersonEvidence(True, 0.97, "pose: no person; hands: 1 (0.97)", people=0, hands=1)


def test_hands_only_keeps_contact_on_the_hands_and_drops_the_unseen_body():
    c = ObjectContact("board", human_probs=np.array([0.9, 0.6, 0.2, 0.8], np.float32),
                      object_probs=np.ones(3, np.float32), object_mesh_id="board@1")
    apply_person_evidence(result_with(c), ONLY_HANDS, strict=False, hand_vertices=HANDS)
    assert c.found and c.person_confidence == pytest.approx(0.97)
    np.testing.assert_array_equal(c.human_probs, np.array([0.0, 0.6, 0.2, 0.0], np.float32))
    assert c.object_probs is not None and c.reason.startswith("only hands are seen (pose: no person; hands: 1")


def test_hands_only_with_contact_only_on_unseen_parts_is_not_found():
    c = ObjectContact("board", human_probs=np.array([0.9, 0.4, 0.1, 0.8], np.float32))
    apply_person_evidence(result_with(c), ONLY_HANDS, strict=False, hand_vertices=HANDS)
    assert not c.found and c.human_probs is None and "contact is on parts not seen" in c.reason


def test_a_pose_or_no_hand_vertices_leaves_the_map_whole():
    probs = np.array([0.9, 0.6, 0.2, 0.8], np.float32)
    pose = PersonEvidence(True, 0.9, "pose: 1 person (0.90)", people=1, hands=0)
    for ev, hands in ((pose, HANDS), (ONLY_HANDS, None)):
        c = ObjectContact("board", human_probs=probs.copy())
        apply_person_evidence(result_with(c), ev, strict=False, hand_vertices=hands)
        assert c.found and c.reason == "" and np.array_equal(c.human_probs, probs)


def test_gate_takes_both_hands_from_the_body_model(predictor):
    from interactvlm_ros.pipeline.contact_pipeline import ContactPipeline

    gate = PersonGate("auto", detector=None)
    ContactPipeline(predictor, person_gate=gate)
    parts = predictor.body_model.part_vertex_ids()
    want = np.union1d(parts["left hand"], parts["right hand"])
    np.testing.assert_array_equal(gate.hand_vertices, want)


def test_mode_is_checked_and_disabled_builds_no_gate():
    assert PersonGate.from_config(load_config(None, ["contact.person_gate=disabled"])) is None
    assert PersonGate.from_config(load_config(None, [])).mode == "auto"  # the default
    with pytest.raises(ValueError, match="one of auto, required, disabled"):
        PersonGate("maybe")


# --- real MediaPipe --------------------------------------------------------------------------------------------
def test_coffee_cup_has_no_person(gated, photos):
    run = gated.run(photos["coffee"], ["cup"])
    assert run.person is not None and run.person.available and not run.person.present
    assert (run.person.people, run.person.hands) == (0, 0)
    (c,) = run.contacts.contacts
    assert not c.found and c.reason.startswith("no person in the image (pose: no person; hands: none")
    assert c.human_probs is None and c.view_masks is None
    assert "person_gate_wait" in run.contacts.timings_ms


def test_astronaut_has_a_person_and_keeps_the_models_contact(gated, predictor, photos):
    plain = predictor.predict(photos["astronaut"], ["cup"]).contacts[0]
    assert plain.found  # the default model answers with a contact on this photo
    run = gated.run(photos["astronaut"], ["cup"])
    assert run.person.present and run.person.people == 1 and 0.5 < run.person.confidence <= 1.0
    (c,) = run.contacts.contacts
    assert c.found and c.reason == "" and c.person_confidence == run.person.confidence
    np.testing.assert_allclose(c.human_probs, plain.human_probs, atol=1e-5)
    assert gated.last_person is run.person


def test_a_grey_photo_is_gated_like_its_rgb(gated, photos):
    """``interactvlm infer`` hands the pipeline a grey JPEG as ``[H,W]``: the gate sees it (the person is found),
    it is not "unavailable" because MediaPipe wants 3 channels."""
    grey = np.ascontiguousarray(photos["astronaut"].mean(axis=2).astype(np.uint8))
    run = gated.run(grey, ["cup"])
    assert run.person.available and run.person.people == 1
    assert gated.run(np.repeat(grey[..., None], 3, axis=2), ["cup"]).person.reason == run.person.reason


def test_gate_disabled_is_the_models_answer(predictor, photos):
    from interactvlm_ros.pipeline.contact_pipeline import ContactPipeline

    pipe = ContactPipeline.from_config(load_config(None, [*SETTINGS, "contact.person_gate=disabled"]), predictor)
    assert pipe.person_gate is None
    run = pipe.run(photos["coffee"], ["cup"])
    plain = predictor.predict(photos["coffee"], ["cup"]).contacts[0]
    (c,) = run.contacts.contacts
    assert run.person is None and c.person_confidence is None and "person_gate_wait" not in run.contacts.timings_ms
    assert (c.found, c.reason) == (plain.found, plain.reason)
    if plain.found:
        np.testing.assert_allclose(c.human_probs, plain.human_probs, atol=1e-5)


def test_tiles_find_a_small_person_the_whole_frame_misses(photos):
    """A 128 px astronaut in a 960x720 grey frame is too small for the whole-frame detector; the 3x3 half-size
    tiles find her where she is; a photo with nobody stays empty with tiles too, and the reason says how."""
    from interactvlm_ros.recon.keypoints import KeypointDetector

    frame = np.full((720, 960, 3), 128, np.uint8)
    frame[500:628, 700:828] = np.asarray(Image.fromarray(photos["astronaut"]).resize((128, 128)))
    with KeypointDetector(mediapipe_or_skip(), max_people=1) as det:
        whole = det.detect_with_hands(frame, max_people=1, segmentation=False)
    with KeypointDetector(mediapipe_or_skip(), max_people=1, tiles=True) as det:
        tiled = det.detect_with_hands(frame, max_people=1, segmentation=False)
        nobody = det.detect_with_hands(photos["coffee"], max_people=1, segmentation=False)
        big = det.detect_with_hands(photos["astronaut"], max_people=1, segmentation=False)
    assert whole.people == [] and whole.tiled == 0
    assert len(tiled.people) == tiled.tiled == 1
    x, y = tiled.people[0].landmarks[0, :2]  # the nose, in the full frame's pixels
    assert 700 <= x <= 828 and 500 <= y <= 628
    assert nobody.people == [] and nobody.tiled == 0
    assert len(big.people) == 1 and big.tiled == 0  # found in the whole frame: the tiles are not searched
    assert "in half-size tiles" in evidence_from(tiled, (960, 720)).reason


def test_worker_reports_hands_and_keeps_the_pose_only_protocol(photos):
    from interactvlm_ros.recon.keypoints import KeypointDetector

    with KeypointDetector(mediapipe_or_skip(), max_people=1) as det:
        people = det.detect(photos["astronaut"])  # the reconstruction's request, unchanged
        both = det.detect_with_hands(photos["astronaut"], max_people=1)
        none = det.detect_with_hands(photos["coffee"], max_people=1)
    assert len(people) == len(both.people) == 1
    np.testing.assert_allclose(both.people[0].keypoints, people[0].keypoints, atol=1e-3)
    assert both.hands.shape[1:] == (21, 3) and both.hand_scores.shape == (len(both.hands),)
    assert none.people == [] and none.hands.shape == (0, 21, 3)


@pytest.mark.parametrize("mode", ["auto", "required"])
def test_worker_that_cannot_start_is_reported_not_raised(predictor, photos, mode):
    from interactvlm_ros.pipeline.contact_pipeline import ContactPipeline

    # a Python without MediaPipe (this one): the worker starts and dies on import -> KeypointError
    cfg = load_config(None, [*SETTINGS, f"contact.person_gate={mode}", f"recon.keypoint_python={sys.executable}"])
    pipe = ContactPipeline.from_config(cfg, predictor)
    try:
        runs = [pipe.run(photos["astronaut"], ["cup"]) for _ in range(2)]
    finally:
        pipe.close()
    for run in runs:
        assert not run.person.available and "MediaPipe" in run.person.reason and "retrying every" in run.person.reason
        (c,) = run.contacts.contacts
        assert c.reason.startswith("person gate unavailable: ")
        assert c.found is (mode == "auto") and (c.human_probs is None) is (mode == "required")
    assert runs[1].person.ms < 50  # the second frame does not wait for another failed start


# --- the node ---------------------------------------------------------------------------------------------------
def run_node(cfg, image, until):
    pytest.importorskip("cyclonedds", reason="the message types need cyclonedds")
    from node_sink import CollectingSink

    from interactvlm_ros.node.components import NodeComponents
    from interactvlm_ros.transport.headers import make_header
    from interactvlm_ros.transport.image_codec import encode_image
    from interactvlm_ros.transport.node_inputs import wire_codecs

    sink = CollectingSink()
    node = NodeComponents.from_config(cfg).build_node(cfg, sink)
    node.start()
    try:
        node.on_message("image", encode_image(image, "rgb8", make_header(5, "cam")), wire_codecs(cfg)["image"])
        sink.wait(lambda: len(sink.frames) >= 1 and until(sink))
    finally:
        node.stop()
    return node, sink


def test_node_publishes_no_contact_without_a_person_and_says_why(photos):
    mediapipe_or_skip()
    cfg = load_config(None, [*SETTINGS, "node.always_run=true", "node.diagnostics_period_s=0.1"])
    _, sink = run_node(cfg, photos["coffee"], lambda s: any("person_present" in r.values and
                                                            r.values["person_present"] != "unknown"
                                                            for r in s.diagnostics))
    (c,) = sink.frames[0][1]["contacts"].contacts
    assert not c.found and c.reason.startswith("no person in the image") and len(c.human_vertex_indices) == 0
    assert c.confidence == 0.0
    values = next(r.values for r in reversed(sink.diagnostics) if r.values.get("person_present", "unknown")
                  != "unknown")
    assert values["person_present"] == "false" and values["person_gate"].startswith("auto: no person: pose:")


def test_node_keeps_running_when_the_gate_is_unavailable(photos):
    cfg = load_config(None, [*SETTINGS, "node.always_run=true", "node.diagnostics_period_s=0.1",
                             "node.warn_throttle_s=60", f"recon.keypoint_python={sys.executable}"])

    def warned(sink):
        return any(r.level == 1 and "person gate unavailable" in r.message for r in sink.diagnostics)

    node, sink = run_node(cfg, photos["astronaut"], warned)
    (c,) = sink.frames[0][1]["contacts"].contacts
    assert c.reason.startswith("person gate unavailable: ")  # auto: published unchecked, and it says so
    report = next(r for r in sink.diagnostics if "person gate unavailable" in r.message)
    assert report.values["person_present"] == "unknown" and report.values["person_gate"].startswith("auto: unavailable")
    assert node.frames_published >= 1
