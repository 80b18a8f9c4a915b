"""One image, many queries: ``ContactPredictor.encode`` runs the vision tower and the image's LLM prefill once, and
every query given the ``EncodedImage`` gets what it gets from the array (tiny model, real Anny body)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from interactvlm_ros.model.generation import DecodeSettings, generate_cached, prefill_prefix
from interactvlm_ros.model.predictor import ContactPredictor
from interactvlm_ros.objects import ObjectLibrary

pytestmark = pytest.mark.usefixtures("one_torch_thread")
NAMES = ["chair", "cup", "ball"]


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(11).integers(0, 256, (180, 240, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def meshes():
    lib = ObjectLibrary.shipped()
    return {name: lib.mesh(name) for name in ("mug", "box")}


def _predictor(tiny_model, anny_body, generate: bool) -> ContactPredictor:
    p = ContactPredictor.from_loaded(tiny_model, body_model=anny_body)
    if generate:  # greedy decoding with the KV cache instead of the tiny preset's teacher-forced answer
        p.cfg = replace(p.cfg, prompts=replace(p.cfg.prompts, answer_template=None))
        p.max_new_tokens, p.force_contact_at = 5, 3
    return p


def _frame(p: ContactPredictor, image, meshes) -> list:
    """A node frame: human contact for NAMES, object contact on each mesh, a point cloud, a 2D mask."""
    results = [p.predict(image, NAMES)]
    results += [p.predict_object(image, m.vertices, m.faces, name) for name, m in meshes.items()]
    results.append(p.predict_points(image, meshes["mug"].vertices[:300], "mug"))
    results.append(p.predict_2d(image, ["cup"]))
    return results


class _Calls:
    """Counts forward calls of a module; ``from_start`` counts the LLM calls that prefill a prompt from its first
    position (the others continue a KV cache)."""

    def __init__(self, module):
        self.calls = 0
        self.from_start = 0
        self.handle = module.register_forward_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs, output):
        self.calls += 1
        positions = kwargs.get("position_ids")
        self.from_start += int(positions is not None and int(positions.min()) == 0)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.remove()


@pytest.mark.parametrize("generate", [False, True], ids=["teacher-forced", "generated"])
def test_a_frame_encodes_the_image_once_and_gets_the_same_contacts(tiny_model, anny_body, image, meshes, generate):
    p = _predictor(tiny_model, anny_body, generate)
    model = tiny_model.model
    with _Calls(model.model.vision_tower) as vision, _Calls(model.model) as llm:
        separate = _frame(p, image, meshes)
    assert (vision.calls, llm.from_start) == (5, 5)  # each call encodes an array again
    with _Calls(model.model.vision_tower) as vision, _Calls(model.model) as llm:
        shared = _frame(p, p.encode(image), meshes)
    # one vision pass; the LLM reads the system text + image once, then every call prefills only its questions
    assert (vision.calls, llm.from_start) == (1, 1)
    assert llm.calls > 1
    for a, b in zip(separate, shared, strict=True):
        for ca, cb in zip(a.contacts, b.contacts, strict=True):
            assert (ca.label, ca.found, ca.text, ca.object_mesh_id) == (cb.label, cb.found, cb.text, cb.object_mesh_id)
            for field in ("human_probs", "object_probs", "view_masks"):
                x, y = getattr(ca, field), getattr(cb, field)
                assert (x is None) == (y is None), field
                if x is not None:
                    np.testing.assert_allclose(x, y, atol=2e-5, rtol=0, err_msg=field)


def test_the_encoding_time_is_reported_once_per_frame(tiny_model, anny_body, image, meshes):
    p = _predictor(tiny_model, anny_body, generate=False)
    encoded = p.encode(image)
    first, *rest = _frame(p, encoded, meshes)
    assert {"preprocess", "vision", "llm", "mvloc"} <= set(first.timings_ms)
    assert all("vision" not in r.timings_ms and "llm" in r.timings_ms for r in rest)
    assert "vision" in p.predict(image, ["cup"]).timings_ms  # an array is encoded by the call itself


def test_an_image_encoded_by_another_model_is_refused(tiny_model, anny_body, image):
    from interactvlm_ros.model.checkpoint import load_model

    other = ContactPredictor.from_loaded(load_model("tiny", device="cpu", precision="fp32"), body_model=anny_body)
    encoded = other.encode(image)
    with pytest.raises(ValueError, match="another model"):
        _predictor(tiny_model, anny_body, generate=False).predict(encoded, ["cup"])


def test_generation_after_a_prefilled_start_equals_one_prefill(tiny_model):
    model = tiny_model.model
    torch.manual_seed(4)
    prompt = torch.randn(30, model.config.text.hidden_size)
    suffixes = [torch.randn(n, model.config.text.hidden_size) for n in (4, 7, 2)]
    settings = DecodeSettings(8, eos_id=2, contact_ids=model.config.contact_token_ids, force_contact_at=5)
    whole = generate_cached(model, prompt, suffixes, settings)
    past = prefill_prefix(model, prompt[:18])
    kept = [layer.keys.clone() for layer in past.cache.layers]
    for _ in range(2):  # the prefilled start serves more than one call: it is copied, never extended
        split = generate_cached(model, prompt[18:], suffixes, settings, past=past)
        assert split.tokens == whole.tokens and split.found.all()
        np.testing.assert_allclose(split.contact_states.numpy(), whole.contact_states.numpy(), atol=1e-5, rtol=0)
    assert all(torch.equal(a, layer.keys) for a, layer in zip(kept, past.cache.layers, strict=True))
