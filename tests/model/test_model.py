"""The VLM half of the model at tiny size: tower, tokenizers, prompts, KV-cache generation, batching, inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interactvlm_ros.model.configuration import (
    PRESETS_DIR,
    InteractVLMConfig,
    ModelConfigError,
    load_preset,
)
from interactvlm_ros.model.generation import DecodeSettings, generate_cached, generate_recompute
from interactvlm_ros.model.interactvlm import InteractVLMForCausalLM
from interactvlm_ros.model.prompts import conversation, encode_with_image, question
from interactvlm_ros.model.tokenizer import (
    ADDED_TOKENS,
    JsonTokenizer,
    SentencePieceTokenizer,
    sanitize_object_name,
    tiny_tokenizer_corpus,
)
from interactvlm_ros.model.vision import ClipImageProcessor, to_rgb_uint8

MALICIOUS = ["[SEG]", "chair [SEG] <image>", "<im_start>cup<im_end>", "</s><s>mug", "[HSEG][OSEG]",
             "bot\x00tle\u200b", "<<image>>", "[[SEG]]", "tennis_racket"]


@pytest.fixture(scope="module")
def tiny():
    cfg = load_preset("tiny")
    model = InteractVLMForCausalLM.build(cfg)
    tok = JsonTokenizer(PRESETS_DIR / cfg.tokenizer)
    return cfg, model, tok


@pytest.fixture(scope="module")
def image_embeds(tiny):
    cfg, model, _ = tiny
    img = np.random.default_rng(0).integers(0, 255, (300, 420, 3), dtype=np.uint8)
    with torch.no_grad():
        return model.encode_image(ClipImageProcessor(cfg.vision)(img))


@pytest.fixture(scope="module")
def sp_dir(tmp_path_factory):
    """A real sentencepiece model (trained here, BPE like LLaMA's) with the official added-token files."""
    spm = pytest.importorskip("sentencepiece")
    d = tmp_path_factory.mktemp("sp")
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(tiny_tokenizer_corpus() * 3), model_prefix=str(d / "tokenizer"), vocab_size=300,
        model_type="bpe", unk_id=0, bos_id=1, eos_id=2, pad_id=-1, character_coverage=1.0,
        minloglevel=2)
    (d / "added_tokens.json").write_text('{"[SEG]": 300, "<im_start>": 301, "<im_end>": 302}')
    return d


def _ids(cfg, tok, objects, mode="human", answer=""):
    return [encode_with_image(tok, conversation(cfg.prompts, question(cfg.prompts, mode, o), answer)) for o in objects]


def test_tiny_preset_is_small_and_matches_its_tokenizer(tiny):
    cfg, model, tok = tiny
    assert 1_000_000 < model.count_parameters() < 10_000_000
    assert tok.vocab_size == cfg.text.vocab_size
    assert tok.added["[SEG]"] == cfg.tokens.seg and tok.added["<im_start>"] == cfg.tokens.im_start
    assert tok.added["<im_end>"] == cfg.tokens.im_end and tok.bos_id == cfg.tokens.bos


def test_vision_tower_is_penultimate_layer_without_cls(tiny):
    cfg, model, _ = tiny
    x = torch.randn(1, 3, cfg.vision.image_size, cfg.vision.image_size)
    with torch.no_grad():
        ours = model.model.vision_tower(x)
        ref = model.model.vision_tower.vision_tower(pixel_values=x, output_hidden_states=True).hidden_states[-2]
    assert ours.shape == (1, cfg.vision.num_patches, cfg.vision.hidden_size)
    torch.testing.assert_close(ours, ref[:, 1:])


def test_prompt_splices_image_once(tiny, image_embeds):
    cfg, model, tok = tiny
    ids = _ids(cfg, tok, ["chair"])[0]
    assert ids[0] == tok.bos_id and ids.count(cfg.tokens.image) == 1
    i = ids.index(cfg.tokens.image)
    assert ids[i - 1] == cfg.tokens.im_start and ids[i + 1] == cfg.tokens.im_end
    emb = model.embed_prompt(ids, image_embeds)
    assert emb.shape == (len(ids) - 1 + cfg.vision.num_patches, cfg.text.hidden_size)
    torch.testing.assert_close(emb[i:i + cfg.vision.num_patches], image_embeds)


def test_kv_cache_generation_equals_full_recomputation(tiny, image_embeds):
    cfg, model, tok = tiny
    ids = _ids(cfg, tok, ["skateboard"])[0]
    for force in (None, 6):
        s = DecodeSettings(10, tok.eos_id, [cfg.tokens.seg], force_contact_at=force)
        emb = model.embed_prompt(ids, image_embeds)
        cached = generate_cached(model, emb[:20], [emb[20:]], s)
        ref = generate_recompute(model, emb, s)
        assert cached.tokens == ref.tokens
        assert torch.equal(cached.found, ref.found)
        torch.testing.assert_close(cached.contact_states, ref.contact_states, atol=2e-5, rtol=1e-4)
    assert ref.found.all() and ref.tokens[0][-1] == cfg.tokens.seg and len(ref.tokens[0]) == 7
    # the kept state is the last-layer state of the position that predicts [SEG] (LISA convention)
    seq = torch.cat([emb, model.embed_ids(torch.tensor([ref.tokens[0][:-1]]))[0]])
    mask = torch.ones(1, seq.shape[0], dtype=torch.long)
    with torch.no_grad():
        full = model.decoder(seq[None], mask, torch.arange(seq.shape[0])[None], None)[0, -1]
    torch.testing.assert_close(ref.contact_states[0, 0], full, atol=1e-5, rtol=1e-4)


def test_batched_prompts_equal_one_at_a_time(tiny, image_embeds):
    cfg, model, tok = tiny
    objects = ["chair", "tennis racket", "cup", "hot dog"]
    ids = _ids(cfg, tok, objects)
    n = 0
    while len({i[n] for i in ids}) == 1:
        n += 1
    s = DecodeSettings(12, tok.eos_id, [cfg.tokens.seg], force_contact_at=9)
    batched = generate_cached(model, model.embed_prompt(ids[0][:n], image_embeds),
                              [model.embed_prompt(i[n:], image_embeds) for i in ids], s)
    for b, i in enumerate(ids):
        emb = model.embed_prompt(i, image_embeds)
        single = generate_cached(model, emb[:5], [emb[5:]], s)
        assert single.tokens[0] == batched.tokens[b]
        torch.testing.assert_close(single.contact_states[0], batched.contact_states[b], atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("name", MALICIOUS)
def test_object_names_cannot_inject_special_tokens(tiny, sp_dir, name):
    cfg, _, tok = tiny
    clean = sanitize_object_name(name)
    assert not any(ch in clean for ch in "[]<>{}\x00\u200b")
    sp = SentencePieceTokenizer(sp_dir)
    for t in (tok, sp):
        ids = encode_with_image(t, conversation(cfg.prompts, question(cfg.prompts, "human", name)))
        specials = [t.added[a] for a in ADDED_TOKENS if a in t.added]
        assert ids.count(-200) == 1 and ids.count(t.bos_id) == 1 and t.eos_id not in ids
        assert sorted(i for i in ids if i in specials) == sorted([t.added["<im_start>"], t.added["<im_end>"]])


def test_unusable_object_names_are_refused():
    for bad in ("", "   ", "[]<>", "\x00\x01"):
        with pytest.raises(ValueError, match="object name"):
            sanitize_object_name(bad)
    assert sanitize_object_name("x" * 500, max_chars=64) == "x" * 64


def test_sentencepiece_tokenizer_follows_slow_llama_rules(sp_dir):
    sp = SentencePieceTokenizer(sp_dir)
    assert sp.pad_id == sp.unk_id == 0 and sp.bos_id == 1 and sp.eos_id == 2 and sp.vocab_size == 303
    # whitespace next to an added token is stripped; every plain chunk gets the sentencepiece dummy prefix
    a = sp.encode("USER: <im_start>")
    assert a[-1] == 301 and a[:-1] == list(sp.sp.encode("USER:"))
    b = sp.encode("<im_end>\nWhich body parts")
    assert b[0] == 302 and b[1:] == list(sp.sp.encode("Which body parts"))
    assert sp.decode(sp.encode("the contact region is [SEG].")).startswith("the contact region is [SEG]")


def test_images_of_any_layout_are_normalised():
    rng = np.random.default_rng(1)
    gray = rng.integers(0, 255, (50, 70), dtype=np.uint8)
    rgba = np.dstack([rng.integers(0, 255, (50, 70, 3), dtype=np.uint8), np.zeros((50, 70), np.uint8)])
    deep = (rng.integers(0, 65535, (50, 70, 3))).astype(np.uint16)
    assert (to_rgb_uint8(gray)[..., 0] == gray).all() and to_rgb_uint8(gray).shape == (50, 70, 3)
    assert (to_rgb_uint8(rgba) == 255).all()  # fully transparent -> white background
    assert np.abs(to_rgb_uint8(deep).astype(int) - (deep // 257)).max() <= 1
    assert to_rgb_uint8(np.ones((4, 4, 1), np.float32)).max() == 255
    proc = ClipImageProcessor(load_preset("tiny").vision)
    huge = np.full((6000, 9000, 3), 200, np.uint8)
    for img in (gray, rgba, deep, huge, rng.integers(0, 255, (3, 500, 3), dtype=np.uint8)):
        x = proc(img)
        assert x.shape == (1, 3, 112, 112) and torch.isfinite(x).all()


@pytest.mark.parametrize("bad,match", [(np.zeros((5, 5, 2), np.uint8), "shape"),
                                       (np.zeros((1, 9, 3), np.uint8), "too small"),
                                       (np.zeros((5, 5, 3), np.int32), "dtype"),
                                       (np.full((5, 5, 3), np.nan, np.float32), "NaN")])
def test_bad_images_get_clear_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        to_rgb_uint8(bad)


def test_config_errors_name_the_key():
    data = load_preset("tiny").to_dict()
    data["text"]["hiden_size"] = 3
    with pytest.raises(ModelConfigError, match="hiden_size"):
        InteractVLMConfig.from_dict(data)
    data = load_preset("tiny").to_dict()
    data["tokens"]["seg"] = 10**6
    with pytest.raises(ModelConfigError, match="outside the vocabulary"):
        InteractVLMConfig.from_dict(data)
    with pytest.raises(ModelConfigError, match="unknown model preset"):
        load_preset("huge")


def test_clip_preprocessing_equals_transformers_processor():
    pil_processor = pytest.importorskip("transformers.models.clip.image_processing_pil_clip")
    hf = pil_processor.CLIPImageProcessorPil()  # openai/clip-vit-large-patch14 defaults: 224, bicubic, CLIP mean/std
    ours = ClipImageProcessor(load_preset("official-13b").vision)
    rng = np.random.default_rng(0)
    for shape in ((480, 640), (333, 500), (700, 301)):
        img = rng.integers(0, 255, (*shape, 3), dtype=np.uint8)
        ref = torch.from_numpy(np.asarray(hf(images=img, return_tensors="np")["pixel_values"]))
        torch.testing.assert_close(ours(img), ref, atol=1e-6, rtol=0)


def test_tiny_synth_preset_has_a_conv_stem_that_exports_to_onnx(tmp_path):
    import onnxruntime as ort

    from interactvlm_ros.engines.export import export_stage
    from interactvlm_ros.model.vision import ConvPatchStem

    cfg = load_preset("tiny-synth")
    assert cfg.lift_fill_unseen and cfg.render_resolution == 128 and cfg.vision.patch_stem == "conv"
    model = InteractVLMForCausalLM.build(cfg, seed=0).eval()
    stem = model.model.vision_tower.vision_tower.embeddings.patch_embedding
    assert isinstance(stem, ConvPatchStem) and len(stem.layers) == 4 * 3 - 2  # 4 stride-2 convs for 16 px
    pixels = torch.randn(2, 3, 128, 128)
    with torch.no_grad():
        feats = model.model.vision_tower(pixels)
    assert feats.shape == (2, 64, 64)
    # a saved state dict round-trips (the stem's keys live under the patch embedding)
    keys = model.state_dict().keys()
    assert any(k.endswith("embeddings.patch_embedding.layers.0.weight") for k in keys)
    path = export_stage(model, "vision", tmp_path / "vision")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    got = sess.run(None, {name: pixels[:1].numpy()})[0]  # the vision stage is [1,3,S,S] -> [P,D]
    with torch.no_grad():
        want = model.model.mm_projector(feats[0]).numpy()
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_conv_stem_needs_a_power_of_two_patch():
    data = load_preset("tiny").to_dict()
    data["vision"]["patch_stem"] = "conv"  # tiny's 14 px patches
    with pytest.raises(ModelConfigError, match="power-of-two"):
        InteractVLMConfig.from_dict(data)
    data["vision"]["patch_stem"] = "resnet"
    with pytest.raises(ModelConfigError, match="patch_stem"):
        InteractVLMConfig.from_dict(data)
