"""ContactPredictor end to end with the tiny model and the real Anny body: human, semantic (batched), object,
2D modes, the reference-style path, and the no-contact-token case."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from interactvlm_ros.model.predictor import ContactPredictor

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def cache():
    return None  # the user cache (like Anny's): canonical renders and their SAM embeddings persist across runs


@pytest.fixture(scope="module")
def predictor(tiny_model, anny_body, cache):
    return ContactPredictor.from_loaded(tiny_model, body_model=anny_body, cache_dir=cache)


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(7).integers(0, 256, (240, 320, 3), dtype=np.uint8)


def _generating(p: ContactPredictor, max_new_tokens: int, force_at: int | None) -> ContactPredictor:
    """The same predictor decoding greedily instead of teacher-forcing the tiny preset's template."""
    p.cfg = replace(p.cfg, prompts=replace(p.cfg.prompts, answer_template=None))
    p.max_new_tokens = max_new_tokens
    p.force_contact_at = force_at
    return p


def test_human_contact_result(predictor, anny_body, image):
    res = predictor.predict(image, ["chair", "cup"])
    assert res.body_model == anny_body.name and res.num_body_vertices == anny_body.num_vertices
    assert [c.label for c in res.contacts] == ["chair", "cup"]
    for c in res.contacts:
        assert c.found and c.reason == "" and c.text.startswith("Sure,") and "[SEG]" in c.text
        assert c.human_probs.shape == (anny_body.num_vertices,) and c.human_probs.dtype == np.float32
        assert 0.0 <= c.human_probs.min() and c.human_probs.max() <= 1.0 and c.human_probs.max() > 0
        r = predictor.cfg.render_resolution
        assert c.view_masks.shape == (4, r, r) and c.object_probs is None
    assert {"vision", "llm", "mvloc", "lift", "render_embed"} <= set(res.timings_ms)
    assert res.contacts[0].human_probs.tolist() != res.contacts[1].human_probs.tolist()


def test_semantic_batch_equals_one_at_a_time(tiny_model, anny_body, cache, predictor, image):
    names = ["chair", "tennis racket", "hot dog"]
    batched = predictor.predict(image, names)
    chunked = ContactPredictor.from_loaded(tiny_model, body_model=anny_body, cache_dir=cache)
    chunked.max_batch = 2  # the LLM stage in batches of 2 + 1
    for a, b in zip(chunked.predict(image, names).contacts, batched.contacts, strict=True):
        np.testing.assert_allclose(a.human_probs, b.human_probs, atol=2e-5)
    for name, c in zip(names, batched.contacts, strict=True):
        single = predictor.predict(image, [name]).contacts[0]
        assert single.text == c.text
        np.testing.assert_allclose(single.human_probs, c.human_probs, atol=2e-5)
        np.testing.assert_allclose(single.view_masks, c.view_masks, atol=2e-5)


def test_reference_path_gives_the_same_contacts(tiny_model, anny_body, cache, image):
    ours = _generating(ContactPredictor.from_loaded(tiny_model, body_model=anny_body, cache_dir=cache), 12, 7)
    ref = _generating(ContactPredictor.from_loaded(tiny_model, body_model=anny_body, cache_dir=cache,
                                                   use_kv_cache=False, use_embedding_cache=False), 12, 7)
    a = ours.predict(image, ["bench", "cup"])
    for i, name in enumerate(["bench", "cup"]):
        b = ref.predict(image, [name]).contacts[0]
        assert b.found and a.contacts[i].found and a.contacts[i].text == b.text
        np.testing.assert_allclose(a.contacts[i].human_probs, b.human_probs, atol=5e-5)


def test_no_contact_token_gives_a_reason_not_an_exception(tiny_model, anny_body, cache, image):
    p = _generating(ContactPredictor.from_loaded(tiny_model, body_model=anny_body, cache_dir=cache), 3, None)
    out, texts = p.contact_states(image, ["chair"], "human")
    assert p.cfg.tokens.seg not in out.tokens[0]  # random tiny weights do not say [SEG] within 3 tokens
    res = p.predict(image, ["chair"])
    c = res.contacts[0]
    assert not c.found and c.human_probs is None and c.view_masks is None
    assert "contact token" in c.reason and "3 generated tokens" in c.reason
    assert "mvloc" not in res.timings_ms


@pytest.mark.parametrize("name", ["[SEG] chair", "<image><im_start>", "cup</s>"])
def test_special_tokens_in_object_names_are_inert(predictor, image, name):
    c = predictor.predict(image, [name]).contacts[0]
    assert c.found and not any(ch in c.label for ch in "[]<>")
    ids = predictor._prompt_ids("human", c.label)
    seg = predictor.cfg.tokens
    assert seg.seg not in ids and ids.count(seg.im_start) == 1 and ids.count(seg.im_end) == 1


def test_any_image_layout_runs(predictor):
    rng = np.random.default_rng(3)
    for img in (rng.integers(0, 256, (90, 60), dtype=np.uint8),
                rng.integers(0, 256, (90, 60, 4), dtype=np.uint8),
                rng.integers(0, 65536, (90, 60, 3)).astype(np.uint16),
                np.full((3000, 4000, 3), 128, np.uint8)):
        assert predictor.predict(img, ["cup"]).contacts[0].found
    with pytest.raises(ValueError, match="at least one object"):
        predictor.predict(np.zeros((9, 9, 3), np.uint8), [])


def test_object_contact_on_a_mesh(predictor, image):
    import trimesh

    mesh = trimesh.creation.box(extents=(0.4, 0.1, 0.2)).subdivide()
    res = predictor.predict_object(image, mesh.vertices, mesh.faces, "box", mesh_id="box@test")
    c = res.contacts[0]
    assert c.found and c.object_mesh_id == "box@test" and c.human_probs is None
    assert c.object_probs.shape == (len(mesh.vertices),)
    assert 0 <= c.object_probs.min() and c.object_probs.max() <= 1 and c.object_probs.max() > 0
    again = predictor.predict_object(image, mesh.vertices, mesh.faces, "box", mesh_id="box@test").contacts[0]
    np.testing.assert_array_equal(again.object_probs, c.object_probs)


def test_2d_contact_mask_on_the_image(predictor, image):
    res = predictor.predict_2d(image, ["skateboard", "cup"])
    for c in res.contacts:
        assert c.found and c.view_masks.shape == (1, *image.shape[:2])
        assert np.isfinite(c.view_masks).all() and 0 <= c.view_masks.min() and c.view_masks.max() <= 1


def test_embedding_cache_serves_the_renders(predictor, image):
    assert set(predictor.warmup()) == {"render", "render_embed"}
    predictor.predict(image, ["cup"])
    hits = dict(predictor.embedding_cache.hits)
    predictor.predict(image, ["cup"])
    assert predictor.embedding_cache.hits["memory"] == hits["memory"] + 1
    assert predictor.embedding_cache.hits["computed"] == hits["computed"]
    emb = predictor.render_embeddings(predictor.body_views())
    with torch.no_grad():
        fresh = predictor.model.sam.embed_images(predictor.body_views().images)
    torch.testing.assert_close(emb, fresh)


def test_answer_setting(tiny_model, anny_body, cache, image):
    p = ContactPredictor.from_loaded(tiny_model, body_model=anny_body, cache_dir=cache)
    p.set_answer("It is [SEG].")
    assert p.predict(image, ["cup"]).contacts[0].text.startswith("It is [SEG]")
    p.set_answer("generate", max_new_tokens=3)
    assert p.cfg.prompts.answer_template is None and p.max_new_tokens == 3
    assert not p.predict(image, ["cup"]).contacts[0].found
    with pytest.raises(ValueError, match="model.answer"):
        p.set_answer("no token here")
