"""``ContactPredictor.predict_objects``: object contact on all of a frame's meshes in one call (one LLM batch for
the object questions, one MV-Loc call over every mesh's renders, one lift per mesh) gives, mesh by mesh, what
``predict_object`` gives (tiny model, real Anny body, shipped library meshes; torch and onnxruntime backends), and
the pipeline's object contact goes through it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from interactvlm_ros.model.predictor import ContactPredictor
from interactvlm_ros.objects import ObjectLibrary
from interactvlm_ros.pipeline.contact_pipeline import ContactPipeline

pytestmark = pytest.mark.usefixtures("one_torch_thread")
# a mesh asked twice (two names on one library mesh), and a name a closed vocabulary does not know
ASKED = [("mug", "mug"), ("ball", "ball"), ("box", "box"), ("cup", "mug"), ("sofa", "box")]
ATOL = 1e-5


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(5).integers(0, 256, (180, 240, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def library():
    return ObjectLibrary.shipped()


def _predictor(tiny_model, anny_body, generate: bool, tmp_path) -> ContactPredictor:
    p = ContactPredictor.from_loaded(tiny_model, body_model=anny_body, cache_dir=str(tmp_path))
    p.cfg = replace(p.cfg, object_classes=("mug", "ball", "box", "cup"))  # closed: "sofa" is not found, not run
    if generate:  # greedy decoding with the KV cache instead of the tiny preset's teacher-forced answer
        p.cfg = replace(p.cfg, prompts=replace(p.cfg.prompts, answer_template=None))
        p.max_new_tokens, p.force_contact_at = 5, 3
    return p


def _assert_same(batched, single) -> None:
    assert len(batched) == len(single)
    for b, s in zip(batched, single, strict=True):
        assert (b.label, b.query, b.name_match, b.found, b.text, b.reason, b.object_mesh_id) == \
               (s.label, s.query, s.name_match, s.found, s.text, s.reason, s.object_mesh_id)
        assert b.human_probs is None and s.human_probs is None
        if s.found:
            assert b.object_probs.shape == s.object_probs.shape and b.view_masks.shape == s.view_masks.shape
            np.testing.assert_allclose(b.object_probs, s.object_probs, atol=ATOL, rtol=0)
            np.testing.assert_allclose(b.view_masks, s.view_masks, atol=ATOL, rtol=0)
        else:
            assert b.object_probs is None and b.view_masks is None


def _both_paths(p: ContactPredictor, image, library):
    encoded = p.encode(image)
    meshes = [library.mesh(mesh) for _, mesh in ASKED]
    ids = [f"{mesh}@test" for _, mesh in ASKED]
    single = [p.predict_object(encoded, m.vertices, m.faces, name, mesh_id=i).contacts[0]
              for (name, _), m, i in zip(ASKED, meshes, ids, strict=True)]
    batched = p.predict_objects(encoded, [(m.vertices, m.faces) for m in meshes], [n for n, _ in ASKED], ids)
    return batched, single


@pytest.mark.parametrize("generate", [False, True], ids=["teacher-forced", "generated"])
def test_batched_object_contact_equals_one_call_per_mesh(tiny_model, anny_body, image, library, generate, tmp_path):
    p = _predictor(tiny_model, anny_body, generate, tmp_path)
    batched, single = _both_paths(p, image, library)
    _assert_same(batched.contacts, single)
    assert [c.found for c in batched.contacts] == [True, True, True, True, False]
    assert {"llm", "mvloc", "lift"} <= set(batched.timings_ms)


def test_batched_object_contact_on_onnxruntime_equals_one_call_per_mesh(tiny_model, anny_body, image, library,
                                                                          tmp_path):
    """The exported MV-Loc graph takes every mesh's render set: one engine run for the frame's meshes (the mesh
    asked twice embedded once), same answers as one call per mesh."""
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    from interactvlm_ros.engines.build import EngineBuilder

    p = _predictor(tiny_model, anny_body, False, tmp_path)
    stages = EngineBuilder(tiny_model.model, tmp_path / "engines", "onnxruntime", threads=1).build()
    p.stages, p.embedding_cache.encoder = stages, stages.embed_images
    runner, runs = stages.runners["mvloc"], []
    stages.runners["mvloc"] = lambda *t: runs.append(t) or runner(*t)
    batched = p.predict_objects(p.encode(image), [(library.mesh(m).vertices, library.mesh(m).faces) for _, m in ASKED],
                                [n for n, _ in ASKED])
    states, renders, _, index = runs[0]
    assert len(runs) == 1 and states.shape[0] == 4 and renders.shape[0] == 3 and index.tolist() == [0, 1, 2, 0]
    single = _both_paths(p, image, library)[1]
    _assert_same([replace(c, object_mesh_id=s.object_mesh_id) for c, s in zip(batched.contacts, single, strict=True)],
                 single)


def test_mesh_ids_default_to_the_mesh_content_and_bad_arguments_are_refused(tiny_model, anny_body, image, library,
                                                                           tmp_path):
    p = _predictor(tiny_model, anny_body, False, tmp_path)
    mug = library.mesh("mug")
    c = p.predict_objects(image, [(mug.vertices, mug.faces)], ["mug"]).contacts[0]
    assert c.found and c.object_mesh_id == p.predict_object(image, mug.vertices, mug.faces, "mug").contacts[0] \
        .object_mesh_id != ""
    assert p.predict_objects(image, [], []).contacts == []
    with pytest.raises(ValueError, match="one label and mesh id per mesh"):
        p.predict_objects(image, [(mug.vertices, mug.faces)], ["mug", "box"])


def test_the_pipeline_asks_all_object_meshes_of_a_frame_at_once(tiny_model, anny_body, image, library, tmp_path):
    p = _predictor(tiny_model, anny_body, False, tmp_path)
    calls = []
    batched_call = p.predict_objects

    def counting(*args, **kw):
        calls.append(len(args[2]))  # the labels
        return batched_call(*args, **kw)

    p.predict_objects = counting  # counts the calls; the real method runs
    pipeline = ContactPipeline(p, library)
    names = ["mug", "ball", "sofa", "box"]
    result = pipeline.run(image, names).contacts.contacts
    assert calls == [3]  # one call for the three found names that have a library mesh
    encoded = p.encode(image)
    for c in result:
        if c.label == "sofa":
            assert not c.found and c.object_probs is None
            continue
        mesh = library.mesh(library.lookup(c.label))
        alone = p.predict_object(encoded, mesh.vertices, mesh.faces, c.label).contacts[0]
        assert c.object_mesh_id == library.mesh_id(library.lookup(c.label))
        np.testing.assert_allclose(c.object_probs, alone.object_probs, atol=ATOL, rtol=0)


def test_an_object_query_carrying_a_mesh_is_localised_on_that_mesh(tiny_model, anny_body, image, library, tmp_path):
    """Evaluation's way in: ``ObjectQuery(name, mesh)`` puts the object contact on the given mesh (here the box's
    mesh asked as 'mug', which the library would map to the mug), with no library at all and next to a name the
    library resolves; the mesh is known by its id until the next frame."""
    from interactvlm_ros.pipeline.contact_pipeline import ObjectQuery
    from interactvlm_ros.pipeline.result import MeshTopology

    p = _predictor(tiny_model, anny_body, False, tmp_path)
    box = library.mesh("box")
    given = MeshTopology("own-box@1", "object", "mug", np.asarray(box.vertices, np.float32),
                         np.asarray(box.faces, np.int64))
    encoded = p.encode(image)
    alone = p.predict_object(encoded, box.vertices, box.faces, "mug").contacts[0]
    for lib in (None, library):
        pipeline = ContactPipeline(p, lib)
        result = pipeline.run(image, [ObjectQuery("mug", given), "ball"]).contacts.contacts
        c = result[0]
        assert c.found and c.object_mesh_id == "own-box@1" and c.object_probs.shape == (len(box.vertices),)
        np.testing.assert_allclose(c.object_probs, alone.object_probs, atol=ATOL, rtol=0)
        assert pipeline.object_mesh("own-box@1") is given
        if lib is None:
            assert result[1].found and result[1].object_probs is None  # a name needs the library for its mesh
        else:
            assert result[1].object_mesh_id == library.mesh_id("ball")
        pipeline.run(image, ["ball"])
        assert pipeline.object_mesh("own-box@1") is None  # only the last frame's meshes
