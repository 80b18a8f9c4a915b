"""The joint human-object model (``Gen-Hu-Obj``: ``[HSEG]``/``[OSEG]``, ``attention_splitter``): architecture key
for key against the joint release manifests, the splitter against the reference's formula, and a random-weight
checkpoint written in the release layout loaded with the official loader."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from interactvlm_ros.model.checkpoint import CheckpointError, compare_keys, load_model, model_shapes, read_manifest
from interactvlm_ros.model.configuration import config_from_official, load_preset
from interactvlm_ros.model.interactvlm import InteractVLMForCausalLM
from interactvlm_ros.model.mvloc import AttentionSplitter

MANIFESTS = Path(__file__).resolve().parents[1] / "data" / "official_checkpoint_keys"
TOKENIZER = Path(__file__).resolve().parent / "fixtures" / "llama_tokenizer"


@pytest.mark.parametrize("name,n_keys", [("official_13b_joint_keys", 1027), ("official_7b_joint_keys", 947)])
def test_joint_release_architecture_matches_manifest_key_for_key(name, n_keys):
    cfg = config_from_official(json.loads((MANIFESTS / f"{name}.config.json").read_text()))
    assert cfg.token_type == "Gen-Hu-Obj" and cfg.contact_token_ids == [cfg.tokens.hseg, cfg.tokens.oseg]
    expected = read_manifest(MANIFESTS / f"{name}.tsv")
    assert len(expected) == n_keys
    model = InteractVLMForCausalLM.build(cfg, device="meta", vision_tower=False)
    report = compare_keys(model_shapes(model), expected)
    assert report.ok, report.message(name)
    assert len([k for k in report.matched if k.startswith("attention_splitter.")]) == 12
    assert len(report.matched) == n_keys - len([k for k in expected if k.endswith("rotary_emb.inv_freq")])


def reference_attention_splitter(s: AttentionSplitter, x: torch.Tensor):
    """InteractVLM 79b4bf2 model/components.py AttentionSplitter.forward, written out with the weights of ``s``."""
    x_proj = F.linear(x, s.input_proj.weight, s.input_proj.bias)
    k = F.linear(x_proj, s.key.weight, s.key.bias)
    v = F.linear(x_proj, s.value.weight, s.value.bias)
    q_human = F.linear(x_proj, s.query_human.weight, s.query_human.bias)
    q_object = F.linear(x_proj, s.query_object.weight, s.query_object.bias)
    human_attn = F.softmax(torch.matmul(q_human, k.transpose(-2, -1)) / (k.size(-1) ** 0.5), dim=-1)
    object_attn = F.softmax(torch.matmul(q_object, k.transpose(-2, -1)) / (k.size(-1) ** 0.5), dim=-1)
    human = F.linear(torch.matmul(human_attn, v), s.output_proj.weight, s.output_proj.bias)
    obj = F.linear(torch.matmul(object_attn, v), s.output_proj.weight, s.output_proj.bias)
    return human, obj


def test_splitter_equals_the_reference_formula():
    torch.manual_seed(0)
    s = AttentionSplitter()
    x = torch.randn(3, 4, 256)  # [n_seg, views, 256] gated tokens, as process_embeddings passes them
    h, o = s(x)
    rh, ro = reference_attention_splitter(s, x)
    assert torch.allclose(h, rh, atol=1e-6) and torch.allclose(o, ro, atol=1e-6)
    assert not torch.allclose(h, o)
    # rows are independent (one contact token's V tokens attend only to each other)
    assert torch.allclose(s(x[1:2])[0], h[1:2], atol=1e-6)


@pytest.fixture(scope="module")
def joint_release(tmp_path_factory):
    """A tiny joint model saved as the merge script saves a release: config.json (model_type llava, token_type
    Gen-Hu-Obj, hseg/oseg ids), 2 .bin shards + index (bf16 LLaMA/splitter, fp32 SAM/Γ, inv_freq buffers),
    tokenizer.model + added_tokens.json with [HSEG]/[OSEG]; CLIP in its own directory."""
    from transformers import CLIPConfig, CLIPModel

    tiny = load_preset("tiny")
    root = tmp_path_factory.mktemp("joint")
    ckpt, clip_dir = root / "interactvlm-3d-hcontact-ocontact", root / "clip"
    ckpt.mkdir()
    shutil.copy(TOKENIZER / "tokenizer.model", ckpt / "tokenizer.model")
    added = {"[SEG]": 420, "<im_start>": 421, "<im_end>": 422, "[HSEG]": 423, "[OSEG]": 424}
    (ckpt / "added_tokens.json").write_text(json.dumps(added))
    (ckpt / "tokenizer_config.json").write_text(json.dumps({"legacy": True, "tokenizer_class": "LlamaTokenizer"}))
    t = tiny.text
    config = json.loads((MANIFESTS / "official_13b_joint_keys.config.json").read_text())
    config.update(hidden_size=t.hidden_size, intermediate_size=t.intermediate_size,
                  num_hidden_layers=t.num_hidden_layers, num_attention_heads=t.num_attention_heads,
                  num_key_value_heads=t.num_key_value_heads, vocab_size=425, seg_token_idx=420, hseg_token_idx=423,
                  oseg_token_idx=424, mm_hidden_size=tiny.vision.hidden_size, rms_norm_eps=1e-6,
                  max_position_embeddings=1024, sam={"preset": "tiny"}, render_resolution=256)
    (ckpt / "config.json").write_text(json.dumps(config))
    v = tiny.vision
    CLIPModel(CLIPConfig(
        vision_config=dict(hidden_size=v.hidden_size, intermediate_size=v.intermediate_size,
                           num_hidden_layers=v.num_hidden_layers, num_attention_heads=v.num_attention_heads,
                           image_size=v.image_size, patch_size=v.patch_size),
        text_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                         vocab_size=99), projection_dim=16)).save_pretrained(str(clip_dir))
    cfg = replace(tiny, text=replace(t, vocab_size=425, rms_norm_eps=1e-6), token_type="Gen-Hu-Obj",
                  tokens=replace(tiny.tokens, seg=420, im_start=421, im_end=422, hseg=423, oseg=424),
                  tokenizer="sentencepiece")
    src = InteractVLMForCausalLM.build(cfg, seed=21, vision_tower=False)
    state = src.checkpoint_state_dict()
    for i in range(t.num_hidden_layers):
        state[f"model.layers.{i}.self_attn.rotary_emb.inv_freq"] = torch.ones(t.hidden_size // t.num_attention_heads
                                                                              // 2)
    fp32 = ("model.visual_model.", "model.text_hidden_fcs.")
    keys = sorted(state)
    weight_map = {}
    for n, ks in enumerate((keys[: len(keys) // 2], keys[len(keys) // 2:]), 1):
        name = f"pytorch_model-0000{n}-of-00002.bin"
        torch.save({k: state[k].to(torch.float32 if k.startswith(fp32) else torch.bfloat16) for k in ks},
                   ckpt / name)
        weight_map.update({k: name for k in ks})
    (ckpt / "pytorch_model.bin.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return ckpt, clip_dir, src


@pytest.fixture(autouse=True)
def digests_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("INTERACTVLM_CACHE_DIR", str(tmp_path / "cache"))


def test_joint_release_loads_key_for_key_and_runs_both_branches(joint_release):
    ckpt, clip_dir, src = joint_release
    loaded = load_model(str(ckpt), clip_dir=str(clip_dir), precision="fp32")
    model = loaded.model
    assert loaded.official and model.is_joint and model.config.object_lift == "reference"
    assert model.config.contact_token_ids == [423, 424]
    got = model.state_dict()
    for k, v in src.checkpoint_state_dict().items():
        want = v if k.startswith(("model.visual_model.", "model.text_hidden_fcs.")) else v.to(torch.bfloat16).float()
        assert torch.equal(got[k], want), k
    # MV-Loc per branch: FeatLift, then the splitter's human ([HSEG]) or object ([OSEG]) half
    torch.manual_seed(1)
    e = torch.randn(2, model.config.out_dim)
    sam = model.sam
    emb = torch.randn(4, sam.prompt_encoder.embed_dim, *sam.prompt_encoder.image_embedding_size)
    cams = torch.rand(4, 5)
    with torch.no_grad():
        human = model.branch_mvloc("human", mask_size=64)(e, emb, cams)
        obj = model.branch_mvloc("object", mask_size=64)(e, emb, cams)
        plain = model.mvloc(mask_size=64)(e, emb, cams)
        tokens = model.cam_pose_encoder(e, cams)
        h_tokens, _ = reference_attention_splitter(model.attention_splitter, tokens)
        sparse, _ = sam.prompt_encoder(text_embeds=h_tokens)
        dense = sam.prompt_encoder.no_mask_dense(1)
        low, _ = sam.mask_decoder(emb[None], sam.prompt_encoder.get_dense_pe(), sparse[:, None], dense,
                                  multimask_output=False)
    assert human.shape == (2, 4, 64, 64)
    assert torch.allclose(model.branch_mvloc("human", mask_size=64).low_res_logits(e, emb, cams), low[..., 0, :, :],
                          atol=1e-5)
    assert not torch.allclose(human, obj) and not torch.allclose(human, plain)
    with pytest.raises(ValueError, match="branch"):
        model.branch_mvloc("both")


def test_joint_release_without_its_splitter_is_refused(joint_release, tmp_path):
    ckpt, clip_dir, _ = joint_release
    bad = tmp_path / "bad"
    shutil.copytree(ckpt, bad)
    index = json.loads((bad / "pytorch_model.bin.index.json").read_text())
    for shard in sorted(set(index["weight_map"].values())):
        sd = torch.load(bad / shard, weights_only=True)
        torch.save({k: v for k, v in sd.items() if not k.startswith("attention_splitter.")}, bad / shard)
    with pytest.raises(CheckpointError, match="missing 12: attention_splitter"):
        load_model(str(bad), clip_dir=str(clip_dir))
