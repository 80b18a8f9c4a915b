"""Object names as people type them: synonyms and DAMON's names map onto what a model knows, unknown names are
refused with a reason that lists what it knows, and the predictor asks (and reports) the mapped name."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from interactvlm_ros.model.configuration import ModelConfigError, load_preset
from interactvlm_ros.model.object_names import (
    DAMON_OBJECTS,
    SYNONYMS,
    ObjectVocabulary,
    normalise_name,
    singular_forms,
)
from interactvlm_ros.model.predictor import ContactPredictor

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SYNTH = ["box", "bottle", "mug", "chair", "ball", "table", "board"]  # the default model's classes


def test_the_default_recipe_declares_the_generator_classes():
    from interactvlm_ros.data.interactions import build_catalogue
    from interactvlm_ros.model.checkpoint import load_model

    classes = {i.label for i in build_catalogue()}
    assert set(load_preset("tiny-synth").object_classes) == classes == set(SYNTH)
    assert set(load_model("default", device="cpu", precision="fp32").model.config.object_classes) == classes
    assert load_preset("tiny").object_classes is None  # the official structure: open vocabulary


@pytest.mark.parametrize(("typed", "known", "how"), [
    ("ball", "ball", "known"), ("Balls", "ball", "known"), ("the Mug", "mug", "known"), ("boxes", "box", "known"),
    ("sports ball", "ball", "synonym"), ("basketball", "ball", "synonym"), ("tennis_ball", "ball", "synonym"),
    ("coffee mug", "mug", "synonym"), ("cup", "mug", "synonym"), ("Coffee-Cups", "mug", "synonym"),
    ("dining table", "table", "synonym"), ("desk", "table", "synonym"), ("chessboard", "board", "synonym"),
    ("water bottle", "bottle", "synonym"), ("carton", "box", "synonym"),
    ("red coffee mug", "mug", "head noun"), ("cup of tea", "mug", "head noun"), ("pizza box", "box", "head noun"),
])
def test_everyday_names_map_onto_the_classes_a_closed_model_knows(typed, known, how):
    match = ObjectVocabulary(SYNTH).resolve(typed)
    assert (match.found, match.prompt_name, match.how, match.reason) == (True, known, how, "")
    assert match.describe() == f"{typed} -> {known} ({how})" or typed == known


@pytest.mark.parametrize("typed", ["couch", "suitcase", "wine glass", "baseball bat", "table tennis", "snowboard",
                                   "object", "tennis racket", "teddy bear", "bench"])
def test_a_name_the_model_never_saw_is_not_found_and_the_reason_lists_what_it_knows(typed):
    match = ObjectVocabulary(SYNTH).resolve(typed)
    assert not match.found and match.prompt_name == "" and match.how == "unknown"
    assert repr(typed) in match.reason and "ball, board, bottle, box, chair, mug, table" in match.reason
    assert match.describe() == f"{typed} -> not known"


def test_each_damon_name_maps_to_its_own_object_or_is_refused():
    closed = ObjectVocabulary(SYNTH)
    mapped = {name: closed.resolve(name).prompt_name for name in DAMON_OBJECTS}
    assert {n: m for n, m in mapped.items() if m} == {"chair": "chair", "dining table": "table", "bottle": "bottle",
                                                      "sports ball": "ball", "cup": "mug"}
    assert len(DAMON_OBJECTS) == len(set(DAMON_OBJECTS)) == 70
    damon = ObjectVocabulary(DAMON_OBJECTS)  # a model trained on DAMON's names knows each as itself
    assert all(damon.resolve(n).prompt_name == n and damon.resolve(n).how == "known" for n in DAMON_OBJECTS)
    expected = {"mug": "cup", "basketball": "sports ball", "table": "dining table", "sofa": "couch",
                "smartphone": "cell phone", "hair dryer": "hair drier", "doughnuts": "donut", "fridge": "refrigerator",
                "bike": "bicycle", "telly": "tv", "Tennis_Racquet": "tennis racket"}
    assert {typed: damon.resolve(typed).prompt_name for typed in expected} == expected


def test_synonym_groups_are_disjoint_and_cover_damon():
    names = [normalise_name(n) for group in SYNONYMS for n in group]
    assert len(names) == len(set(names))
    assert set(DAMON_OBJECTS) <= set(names)
    assert ObjectVocabulary(SYNTH).known_names()["basketball"] == "ball"


def test_an_open_vocabulary_asks_every_name_as_typed():
    match = ObjectVocabulary(None).resolve("my grandmother's teapot")
    assert (match.found, match.prompt_name, match.how) == (True, "my grandmother's teapot", "open vocabulary")


def test_plural_forms():
    assert singular_forms("boxes") == ["boxe", "box"] and "vase" in singular_forms("vases")
    assert singular_forms("glass") == [] and singular_forms("bus") == [] and singular_forms("red cherries")[0] == \
        "red cherry"


def test_object_classes_in_a_config_must_be_names():
    cfg = load_preset("tiny").to_dict()
    for bad in ([], "ball", [""], [3]):
        with pytest.raises(ModelConfigError, match="object_classes must be null or a list of object names"):
            type(load_preset("tiny")).from_dict({**cfg, "object_classes": bad})


@pytest.fixture(scope="module")
def closed(tiny_model, anny_body):
    """The tiny model told it was trained on the synthetic classes (a closed vocabulary, like the default)."""
    p = ContactPredictor.from_loaded(tiny_model, body_model=anny_body)
    p.cfg = replace(p.cfg, object_classes=SYNTH)
    return p


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(5).integers(0, 256, (120, 160, 3), dtype=np.uint8)


def test_the_predictor_asks_the_known_name_and_reports_the_mapping(closed, tiny_model, anny_body, image):
    res = closed.predict(image, ["basketball", "couch", "coffee mug"])
    got = [(c.query, c.label, c.found, c.name_match) for c in res.contacts]
    assert got == [("basketball", "ball", True, "synonym"), ("couch", "couch", False, "unknown"),
                   ("coffee mug", "mug", True, "synonym")]
    assert "it knows: ball, board, bottle, box, chair, mug, table" in res.contacts[1].reason
    assert res.contacts[1].human_probs is None and res.contacts[1].view_masks is None
    open_vocab = ContactPredictor.from_loaded(tiny_model, body_model=anny_body)
    direct = open_vocab.predict(image, ["ball", "mug"])  # the same prompts asked directly
    for mapped, asked in zip((res.contacts[0], res.contacts[2]), direct.contacts, strict=True):
        np.testing.assert_allclose(mapped.human_probs, asked.human_probs, atol=1e-6, rtol=0)
    assert [c.name_match for c in direct.contacts] == ["open vocabulary"] * 2


def test_only_unknown_names_run_no_model(closed, tiny_model, image):
    calls = []
    handle = tiny_model.model.model.vision_tower.register_forward_hook(lambda *a: calls.append(1))
    try:
        res = closed.predict(image, ["couch", "teddy bear"])
        obj = closed.predict_object(image, np.eye(3, dtype=np.float32), np.array([[0, 1, 2]]), "sofa")
        flat = closed.predict_2d(image, ["kite"])
    finally:
        handle.remove()
    assert calls == [] and not any(c.found for r in (res, obj, flat) for c in r.contacts)
    assert obj.contacts[0].reason.startswith("'sofa' is not an object this model was trained on")


def test_object_and_2d_queries_use_the_mapping_too(closed, image):
    from interactvlm_ros.objects import ObjectLibrary

    mesh = ObjectLibrary.shipped().mesh("mug")
    c = closed.predict_object(image, mesh.vertices, mesh.faces, "teacup").contacts[0]
    assert (c.query, c.label, c.found, c.name_match) == ("teacup", "mug", True, "synonym")
    assert c.object_probs.shape == (len(mesh.vertices),)
    flat = closed.predict_2d(image, ["sports ball"]).contacts[0]
    assert (flat.label, flat.found) == ("ball", True) and flat.view_masks.shape == (1, 120, 160)
    assert [m.describe() for m in closed.resolve_names(["sports ball", "couch"])] == [
        "sports ball -> ball (synonym)", "couch -> not known"]



def test_the_mapping_in_one_line_for_diagnostics(closed, tiny_model, anny_body):
    line = closed.describe_names(["basketball", "couch", "mug", "<[]>"])
    assert line.startswith("basketball -> ball (synonym); couch -> not known; mug (known); <[]> -> not usable (")
    open_vocab = ContactPredictor.from_loaded(tiny_model, body_model=anny_body)
    assert open_vocab.describe_names(["basketball"]) == "basketball (open vocabulary)"
    assert closed.describe_names([]) == ""


def test_the_node_reports_the_mapping_in_its_diagnostics():
    """The default model (closed vocabulary) in an in-process node: its diagnostics say how each queried name maps."""
    pytest.importorskip("cyclonedds", reason="the node's message types need cyclonedds")
    from node_sink import CollectingSink

    from interactvlm_ros.config import load_config
    from interactvlm_ros.node.components import NodeComponents

    cfg = load_config(None, ["model.device=cpu", "objects=[basketball, couch]", "node.diagnostics_period_s=0.1"])
    sink = CollectingSink()
    node = NodeComponents.from_config(cfg).build_node(cfg, sink)
    node.start()
    try:
        sink.wait(lambda: any("object_names" in r.values for r in sink.diagnostics), timeout=60)
    finally:
        node.stop()
    report = next(r for r in sink.diagnostics if "object_names" in r.values)
    assert report.values["object_names"] == "basketball -> ball (synonym); couch -> not known"
