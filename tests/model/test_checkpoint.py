"""Checkpoints: the official manifests (13B/7B on the meta device), our save/load round trip, and loading a
directory in the official release layout (sharded .bin + index, inv_freq buffers, sentencepiece tokenizer with
added tokens, separate CLIP directory) at tiny size."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from interactvlm_ros.model.checkpoint import (
    CheckpointError,
    checkpoint_report,
    compare_keys,
    load_model,
    meta_model,
    model_shapes,
    read_manifest,
    save_pretrained,
)
from interactvlm_ros.model.configuration import PRESETS_DIR, load_preset
from interactvlm_ros.model.generation import DecodeSettings, generate_cached
from interactvlm_ros.model.interactvlm import InteractVLMForCausalLM
from interactvlm_ros.model.prompts import conversation, encode_with_image, question
from interactvlm_ros.model.tokenizer import JsonTokenizer, tiny_tokenizer_corpus
from interactvlm_ros.model.vision import ClipImageProcessor

# Copies of reference/official_checkpoint_keys (tensor names and shapes of the released models; no weights).
MANIFESTS = Path(__file__).resolve().parents[1] / "data" / "official_checkpoint_keys"


@pytest.fixture(autouse=True)
def digests_cache(tmp_path, monkeypatch):
    """Digests recorded on the first load of an official directory go to this test's cache, not ~/.cache."""
    monkeypatch.setenv("INTERACTVLM_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"



@pytest.mark.parametrize("preset,manifest,n_keys", [("official-13b", "official_13b_keys.tsv", 1015),
                                                    ("official-7b", "official_7b_keys.tsv", 935)])
def test_official_architecture_matches_manifest_key_for_key(preset, manifest, n_keys):
    expected = read_manifest(MANIFESTS / manifest)
    assert len(expected) == n_keys
    model = meta_model(preset)
    report = compare_keys(model_shapes(model), expected)
    assert report.ok, report.message(preset)
    inv_freq = [k for k in expected if k.endswith("rotary_emb.inv_freq")]
    assert len(report.matched) == n_keys - len(inv_freq)
    # the loader's check catches a wrong shape, a missing and an unexpected tensor in one message
    broken = dict(expected)
    broken.pop("model.norm.weight")
    broken["lm_head.weight"] = (32005, broken["lm_head.weight"][1])
    broken["attention_splitter.key.weight"] = (128, 128)
    report = compare_keys(model_shapes(model), broken)
    msg = report.message("ckpt")
    assert report.counts()["missing"] == 1 and report.counts()["unexpected"] == 1
    assert "model.norm.weight" in msg and "attention_splitter.key.weight" in msg and "32005" in msg


@pytest.fixture(scope="module")
def tiny():
    cfg = load_preset("tiny")
    return cfg, InteractVLMForCausalLM.build(cfg, seed=3), JsonTokenizer(PRESETS_DIR / cfg.tokenizer)


def _contact_state(model, tok, cfg):
    img = np.random.default_rng(5).integers(0, 255, (64, 80, 3), dtype=np.uint8)
    ids = encode_with_image(tok, conversation(cfg.prompts, question(cfg.prompts, "human", "bench")))
    with torch.no_grad():
        emb = model.embed_prompt(ids, model.encode_image(ClipImageProcessor(cfg.vision)(img)))
    s = DecodeSettings(6, tok.eos_id, cfg.contact_token_ids, force_contact_at=4)
    return generate_cached(model, emb[:10], [emb[10:]], s)


def test_save_load_round_trip_is_exact(tiny, tmp_path):
    cfg, model, tok = tiny
    out = save_pretrained(model, tok, tmp_path / "m")
    written = ["config.json", "digests.json", "model.safetensors", "tiny_tokenizer.json"]
    assert sorted(p.name for p in out.iterdir()) == written
    loaded = load_model(str(out), device="cpu", precision="fp32")
    a, b = model.state_dict(), loaded.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert loaded.model.config.to_dict() == cfg.to_dict()
    r1, r2 = _contact_state(model, tok, cfg), _contact_state(loaded.model, loaded.tokenizer, cfg)
    assert r1.tokens == r2.tokens and torch.equal(r1.contact_states, r2.contact_states)
    # the method form writes the same files, replacing the previous ones atomically
    model.save_pretrained(out, tok)
    assert sorted(p.name for p in out.iterdir()) == written


def test_load_errors_are_readable(tiny, tmp_path):
    cfg, model, tok = tiny
    with pytest.raises(CheckpointError, match="neither a preset"):
        load_model(str(tmp_path / "nope"))
    with pytest.raises(CheckpointError, match="architecture only"):
        load_model("official-13b")
    d = save_pretrained(model, tok, tmp_path / "m")
    from safetensors.torch import load_file, save_file

    sd = load_file(str(d / "model.safetensors"))
    sd.pop("model.norm.weight")
    sd["extra.weight"] = torch.zeros(2)
    sd["lm_head.weight"] = sd["lm_head.weight"][:10]
    save_file(sd, str(d / "model.safetensors"))
    (d / "digests.json").unlink()  # the key check is under test here, not the digest check (test_integrity.py)
    with pytest.raises(CheckpointError) as err:
        load_model(str(d))
    msg = str(err.value)
    assert "missing 1: model.norm.weight" in msg and "unexpected 1: extra.weight" in msg
    assert "lm_head.weight is [10, 128]" in msg


@pytest.fixture(scope="module")
def official_layout(tmp_path_factory, tiny):
    """A tiny model written exactly like a release: config.json (model_type llava), 2 .bin shards + index with
    rotary inv_freq buffers, tokenizer.model + added_tokens.json; CLIP in its own CLIPModel directory."""
    spm = pytest.importorskip("sentencepiece")
    from transformers import CLIPConfig, CLIPModel

    cfg, _, _ = tiny
    root = tmp_path_factory.mktemp("official")
    ckpt, clip_dir = root / "interactvlm-3d-hcontact-tiny", root / "clip"
    ckpt.mkdir()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(tiny_tokenizer_corpus() * 3), model_prefix=str(ckpt / "tokenizer"), vocab_size=300,
        model_type="bpe", unk_id=0, bos_id=1, eos_id=2, pad_id=-1, minloglevel=2)
    (ckpt / "added_tokens.json").write_text(json.dumps({"[SEG]": 300, "<im_start>": 301, "<im_end>": 302}))
    t = cfg.text
    config = json.loads((MANIFESTS / "official_13b_keys.config.json").read_text())
    config.update(hidden_size=t.hidden_size, intermediate_size=t.intermediate_size,
                  num_hidden_layers=t.num_hidden_layers, num_attention_heads=t.num_attention_heads,
                  num_key_value_heads=t.num_key_value_heads, vocab_size=303, seg_token_idx=300,
                  mm_hidden_size=cfg.vision.hidden_size, rms_norm_eps=1e-6, max_position_embeddings=1024,
                  sam={"preset": "tiny"}, render_resolution=256)
    (ckpt / "config.json").write_text(json.dumps(config))
    clip = CLIPModel(CLIPConfig(
        vision_config=dict(hidden_size=cfg.vision.hidden_size, intermediate_size=cfg.vision.intermediate_size,
                           num_hidden_layers=cfg.vision.num_hidden_layers,
                           num_attention_heads=cfg.vision.num_attention_heads, image_size=cfg.vision.image_size,
                           patch_size=cfg.vision.patch_size),
        text_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                         vocab_size=99), projection_dim=16))
    clip.save_pretrained(str(clip_dir))
    # the checkpoint's weights: a tiny model with vocab 303, vision tower excluded, inv_freq buffers added
    from dataclasses import replace

    ocfg = replace(cfg, text=replace(cfg.text, vocab_size=303, rms_norm_eps=1e-6),
                   tokens=replace(cfg.tokens, seg=300, im_start=301, im_end=302, hseg=None, oseg=None),
                   tokenizer="sentencepiece")
    src = InteractVLMForCausalLM.build(ocfg, seed=11, vision_tower=False)
    state = src.checkpoint_state_dict()
    head = t.hidden_size // t.num_attention_heads
    for i in range(t.num_hidden_layers):
        state[f"model.layers.{i}.self_attn.rotary_emb.inv_freq"] = torch.ones(head // 2)
    keys = sorted(state)
    shards = {"pytorch_model-00001-of-00002.bin": keys[: len(keys) // 2],
              "pytorch_model-00002-of-00002.bin": keys[len(keys) // 2:]}
    weight_map = {}
    for name, ks in shards.items():
        torch.save({k: state[k].to(torch.bfloat16 if not k.startswith("model.visual_model") else torch.float32)
                    for k in ks}, ckpt / name)
        weight_map.update({k: name for k in ks})
    (ckpt / "pytorch_model.bin.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return ckpt, clip_dir, src, clip


def test_official_layout_loads_with_local_clip(official_layout):
    ckpt, clip_dir, src, clip = official_layout
    assert checkpoint_report(ckpt).ok  # names/shapes only, no CLIP needed
    with pytest.raises(CheckpointError, match="clip_dir"):
        load_model(str(ckpt))
    loaded = load_model(str(ckpt), clip_dir=str(clip_dir), precision="fp32")
    assert loaded.official and loaded.model.config.tokens.seg == 300
    got = loaded.model.state_dict()
    for k, v in src.checkpoint_state_dict().items():
        want = v if k.startswith("model.visual_model") else v.to(torch.bfloat16).float()
        assert torch.equal(got[k], want), k
    clip_sd = clip.state_dict()
    for k, v in loaded.model.model.vision_tower.vision_tower.state_dict().items():
        assert torch.equal(v, clip_sd[f"vision_model.{k}"]), k
    ids = encode_with_image(loaded.tokenizer, conversation(loaded.model.config.prompts, "Which? [SEG]"))
    assert 300 in ids and 301 in ids and 302 in ids


def test_official_layout_rejects_mismatched_tokenizer(official_layout, tmp_path):
    import shutil

    ckpt, clip_dir, _, _ = official_layout
    bad = tmp_path / "bad"
    shutil.copytree(ckpt, bad)
    (bad / "added_tokens.json").write_text(json.dumps({"[SEG]": 301, "<im_start>": 300, "<im_end>": 302}))
    with pytest.raises(CheckpointError, match="disagree on added token ids"):
        load_model(str(bad), clip_dir=str(clip_dir))


def test_official_config_json_builds_the_release_architecture():
    from interactvlm_ros.model.configuration import config_from_official

    data = json.loads((MANIFESTS / "official_13b_keys.config.json").read_text())
    cfg = config_from_official(data, added_tokens={"[SEG]": 32000, "<im_start>": 32001, "<im_end>": 32002})
    assert (cfg.tokens.seg, cfg.tokens.im_start, cfg.tokens.im_end, cfg.text.vocab_size) == (32000, 32001, 32002, 32003)
    assert cfg.prompts.answer_template is None and cfg.vision.select_layer == -2 and cfg.num_views == 4
    model = InteractVLMForCausalLM.build(cfg, device="meta", vision_tower=False)
    assert compare_keys(model_shapes(model), read_manifest(MANIFESTS / "official_13b_keys.tsv")).ok


def test_model_without_camera_conditioning_has_no_featlift():
    cfg = load_preset("tiny")
    cfg.cam_conditioning = False
    model = InteractVLMForCausalLM.build(cfg)
    assert not any(k.startswith("cam_pose_encoder.") for k in model.state_dict())
    with pytest.raises(RuntimeError, match="2D mode"):
        model.mvloc()


def test_official_layout_with_sharded_safetensors(official_layout, tmp_path):
    import shutil

    from safetensors.torch import save_file

    ckpt, clip_dir, src, _ = official_layout
    d = tmp_path / "st"
    shutil.copytree(ckpt, d, ignore=shutil.ignore_patterns("pytorch_model*"))
    index = json.loads((ckpt / "pytorch_model.bin.index.json").read_text())
    weight_map = {}
    for i, shard in enumerate(sorted(set(index["weight_map"].values())), 1):
        tensors = torch.load(ckpt / shard, weights_only=True)
        name = f"model-{i:05d}-of-00002.safetensors"
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(d / name))
        weight_map.update({k: name for k in tensors})
    (d / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    loaded = load_model(str(d), clip_dir=str(clip_dir), precision="fp32")
    got = loaded.model.state_dict()
    for k, v in src.checkpoint_state_dict().items():
        want = v if k.startswith("model.visual_model") else v.to(torch.bfloat16).float()
        assert torch.equal(got[k], want), k


def test_official_layout_digests_are_recorded_on_first_load_then_checked(official_layout, tmp_path, digests_cache):
    import shutil

    from interactvlm_ros.model.integrity import recorded_digests_path

    ckpt, clip_dir, _, _ = official_layout
    d = tmp_path / "release"
    shutil.copytree(ckpt, d)
    load_model(str(d), clip_dir=str(clip_dir), precision="fp32")
    record = json.loads(recorded_digests_path(d).read_text())
    assert record["directory"] == str(d.resolve()) and str(recorded_digests_path(d)).startswith(str(digests_cache))
    assert sorted(record["files"]) == ["added_tokens.json", "config.json", "pytorch_model-00001-of-00002.bin",
                                       "pytorch_model-00002-of-00002.bin", "pytorch_model.bin.index.json",
                                       "tokenizer.model"]
    assert recorded_digests_path(clip_dir).is_file()  # the CLIP directory is a release too
    assert not (d / "digests.json").exists()  # nothing is written into the release
    shard = d / "pytorch_model-00002-of-00002.bin"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"pytorch_model-00002-of-00002\.bin does not match its sha256 in "
                                              r"the digests recorded in .*re-download the release"):
        load_model(str(d), clip_dir=str(clip_dir))
