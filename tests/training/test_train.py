"""Training: the method's losses, LoRA, the warm-up/decay schedule, a few real steps of the tiny model on a tiny
synthetic dataset, exact resume, export + reload, and training forward == inference."""

import math

import numpy as np
import pytest
import torch

from interactvlm_ros.training.lora import LoRALinear, apply_lora, lora_parameters, merge_lora
from interactvlm_ros.training.losses import (
    LossWeights,
    dice_3d_loss,
    dice_loss_per_view,
    focal_bce_with_logits,
    focal_on_probs,
)
from interactvlm_ros.training.trainer import TrainConfig, Trainer, warmup_decay


def test_focal_losses_match_their_formulas():
    logits = torch.tensor([2.0, -1.0, 0.5, -3.0])
    target = torch.tensor([1.0, 0.0, 0.0, 1.0])
    valid = torch.tensor([1.0, 1.0, 0.0, 1.0])
    p = torch.sigmoid(logits)
    manual = []
    for pi, yi, vi in zip(p, target, valid, strict=True):
        pt = pi if yi == 1 else 1 - pi
        at = 0.5
        if vi:
            manual.append(-at * (1 - pt) ** 2 * math.log(pt))
    assert float(focal_bce_with_logits(logits, target, valid, 0.5, 2.0)) == pytest.approx(np.mean(manual), rel=1e-5)
    probs = torch.tensor([0.9, 0.2])
    y = torch.tensor([1.0, 0.0])
    want = (-0.25 * 0.1 ** 2 * math.log(0.9) - 0.75 * 0.2 ** 2 * math.log(0.8)) / 2
    assert float(focal_on_probs(probs, y)) == pytest.approx(want, rel=1e-5)


def test_dice_ignores_views_without_positive_pixels():
    logits = torch.full((1, 2, 2, 2), 10.0)
    target = torch.zeros(1, 2, 2, 2)
    target[0, 0] = 1.0  # view 0 all positive, view 1 empty
    valid = torch.ones(1, 2, 2, 2)
    assert float(dice_loss_per_view(logits, target, valid)) == pytest.approx(0.0, abs=1e-3)
    assert float(dice_loss_per_view(logits, torch.zeros_like(target), valid)) == 0.0


def test_dice_3d_is_per_sample_soft_dice_and_favours_the_f1_optimum():
    probs = torch.tensor([[0.8, 0.6, 0.1, 0.0], [0.2, 0.0, 0.0, 0.0]])
    gt = torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    first = 1 - (2 * 0.9 + 1) / (1.5 + 2 + 1)
    second = 1 - 1 / (0.2 + 1)  # no contact: only predicting none scores 0
    assert float(dice_3d_loss(probs, gt)) == pytest.approx((first + second) / 2, rel=1e-6)
    assert float(dice_3d_loss(gt[0], gt[0])) == 0.0 and float(dice_3d_loss(gt[1], gt[1])) == 0.0
    p = probs.clone().requires_grad_(True)
    dice_3d_loss(p, gt).backward()
    assert (p.grad[gt == 1] < 0).all() and (p.grad[gt == 0] > 0).all()  # raise contacts, lower the rest


def test_warmup_then_linear_decay():
    assert warmup_decay(0, 10, 110) == pytest.approx(0.1)
    assert warmup_decay(9, 10, 110) == pytest.approx(1.0)
    assert warmup_decay(60, 10, 110) == pytest.approx(0.5)
    assert warmup_decay(110, 10, 110) == 0.0


def test_lora_is_identity_at_init_and_merges_exactly():
    torch.manual_seed(0)
    net = torch.nn.Sequential()
    net.add_module("q_proj", torch.nn.Linear(6, 5))
    net.add_module("k_proj", torch.nn.Linear(6, 5))
    x = torch.randn(3, 6)
    before = net.q_proj(x).detach().clone()
    assert apply_lora(net, r=2, alpha=4.0, dropout=0.0) == ["q_proj"]
    assert isinstance(net.q_proj, LoRALinear) and not isinstance(net.k_proj, LoRALinear)
    torch.testing.assert_close(net.q_proj(x), before)
    with torch.no_grad():
        net.q_proj.lora_B.normal_()
    adapted = net.q_proj(x).detach().clone()
    assert not torch.allclose(adapted, before)
    assert net.q_proj.scaling == 2.0 and len(lora_parameters(net)) == 2
    assert merge_lora(net) == 1
    assert isinstance(net.q_proj, torch.nn.Linear)
    torch.testing.assert_close(net.q_proj(x), adapted, rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, write_synthetic_dataset):
    return write_synthetic_dataset(tmp_path_factory.mktemp("train"), num=8, seed=1)


def _build(root, lora="off", init="tiny", resolution=64, **kw):
    from interactvlm_ros.cli.train import build_training
    from interactvlm_ros.config import load_config

    cfg = load_config(None, [f"cache.dir={root / 'cache'}"])
    return build_training(cfg, init, resolution, str(root / "ds"), "simple", lora, seed=0, **kw)


def _params(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def test_steps_reduce_nothing_to_nan_and_resume_is_exact(tiny_run):
    cfg = TrainConfig(steps=4, batch_size=2, warmup=1, log_every=1, checkpoint_every=2)
    model, tok, fwd, ds, _, _ = _build(tiny_run)
    straight = Trainer(fwd, ds, cfg, tiny_run / "a")
    rows = [straight.train_step() for _ in range(4)]
    assert all(np.isfinite(r["loss"]) for r in rows)
    frozen_ok = all(not p.requires_grad for p in model.sam.image_encoder.parameters())
    assert frozen_ok
    want = _params(model)

    model2, _, fwd2, ds2, _, _ = _build(tiny_run)
    first = Trainer(fwd2, ds2, cfg, tiny_run / "b")
    first.train(steps=2, progress=False)
    model3, _, fwd3, ds3, _, _ = _build(tiny_run)
    resumed = Trainer(fwd3, ds3, cfg, tiny_run / "b")
    assert resumed.load_checkpoint() == 2
    resumed.train(progress=False)
    got = _params(model3)
    for name, value in want.items():
        torch.testing.assert_close(got[name], value, rtol=0, atol=0, msg=name)
    log = (tiny_run / "b" / "metrics.jsonl").read_text().splitlines()
    assert len(log) == 4


def test_export_reload_and_inference_matches_training_forward(tiny_run):
    from interactvlm_ros.body import load_body_model
    from interactvlm_ros.model import ContactPredictor
    from interactvlm_ros.model.checkpoint import load_model

    model, tok, fwd, ds, _, _ = _build(tiny_run)
    trainer = Trainer(fwd, ds, TrainConfig(steps=1, batch_size=2, warmup=1), tiny_run / "c")
    trainer.train(progress=False)
    out_dir = trainer.export(tiny_run / "c" / "model", tok)
    loaded = load_model(str(out_dir))
    assert loaded.model.config.render_resolution == 64
    predictor = ContactPredictor.from_loaded(loaded, body_model=load_body_model("anny"),
                                             cache_dir=str(tiny_run / "cache"))
    item = ds[0]
    model.eval()
    with torch.no_grad():
        train_probs = fwd([item])["human_probs"][0].numpy()
    res = predictor.predict(item["image"], [item["object"]])
    np.testing.assert_allclose(res.contacts[0].human_probs, train_probs, atol=1e-4)


def test_a_trained_model_fine_tunes_at_a_higher_render_resolution(tiny_run):
    model, tok, fwd, ds, _, _ = _build(tiny_run)
    out_dir = Trainer(fwd, ds, TrainConfig(steps=1, batch_size=2, warmup=1), tiny_run / "r").export(
        tiny_run / "r" / "model", tok)
    big = model.with_render_resolution(128)
    assert big.config.render_resolution == 128 and big.sam.image_size == 128
    assert model.config.render_resolution == 64  # the original is untouched
    assert tuple(big.sam.prompt_encoder.image_embedding_size) == (8, 8)
    small, large = model.state_dict(), big.state_dict()
    resampled = {n for n in small if small[n].shape != large[n].shape}
    assert resampled == {"model.visual_model.image_encoder.pos_embed",
                         "model.visual_model.image_encoder.blocks.1.attn.rel_pos_h",
                         "model.visual_model.image_encoder.blocks.1.attn.rel_pos_w"}  # the global block only
    assert all(torch.equal(small[n], large[n]) for n in small.keys() - resampled)
    pos = large["model.visual_model.image_encoder.pos_embed"]
    assert pos.shape == (1, 8, 8, small["model.visual_model.image_encoder.pos_embed"].shape[-1])
    with pytest.raises(ValueError, match="multiple of patch_size"):
        model.with_render_resolution(100)

    model2, _, fwd2, ds2, _, _ = _build(tiny_run, init=str(out_dir), resolution=128)
    assert model2.config.render_resolution == 128 and fwd2.resolution == 128
    assert fwd2.human.lifter(torch.zeros(1, 4, 128, 128)).shape == (1, ds2.num_body_vertices)
    row = Trainer(fwd2, ds2, TrainConfig(steps=1, batch_size=2, warmup=1), tiny_run / "r128").train_step()
    assert np.isfinite(row["loss"])


def test_lora_mode_trains_only_adapters_and_heads(tiny_run):
    model, tok, fwd, ds, use_lora, _ = _build(tiny_run, lora="on")
    assert use_lora
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any(n.endswith("q_proj.lora_A") for n in trainable)
    assert not any("vision_tower" in n for n in trainable)
    assert not any(n.startswith("model.layers.0.self_attn.q_proj.base") for n in trainable)
    assert "lm_head.weight" in trainable
    before = _params(model)
    Trainer(fwd, ds, TrainConfig(steps=1, batch_size=2, warmup=1, mode="lora"), tiny_run / "d").train_step()
    after = _params(model)
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    assert changed and changed <= trainable


def test_vision_pretraining_and_interaction_head_train_resume_and_stay_out_of_the_export(tiny_run):
    """Also trains with the 3D Dice term on (logged as ``dice_3d``)."""
    from safetensors import safe_open

    from interactvlm_ros.training.vision_pretrain import pretrain_vision

    kw = {"weights": LossWeights(interaction=1.0, dice_3d=1.0), "lift_fill_unseen": "on", "augment": True}
    model, tok, fwd, ds, _, _ = _build(tiny_run, **kw)
    assert fwd.interaction_classes == ds.interaction_classes() and len(fwd.interaction_classes) == 17
    assert fwd.human.lifter.fill_unseen and model.config.lift_fill_unseen
    tower = {n: p.detach().clone() for n, p in model.model.vision_tower.named_parameters()}
    lm = {n: p.detach().clone() for n, p in model.model.layers.named_parameters()}
    res = pretrain_vision(fwd, ds, epochs=2, batch_size=4, log_path=tiny_run / "v.jsonl", progress=False)
    assert np.isfinite(res["loss"]) and 0.0 <= res["accuracy"] <= 1.0
    assert len((tiny_run / "v.jsonl").read_text().splitlines()) == 2
    assert any(not torch.equal(p, tower[n]) for n, p in model.model.vision_tower.named_parameters())
    assert all(torch.equal(p, lm[n]) for n, p in model.model.layers.named_parameters())  # vision only

    cfg = TrainConfig(steps=2, batch_size=2, warmup=1, checkpoint_every=1)
    trainer = Trainer(fwd, ds, cfg, tiny_run / "aux")
    row = trainer.train_step()
    assert np.isfinite(row["interaction"]) and 0.0 <= row["interaction_acc"] <= 1.0
    assert 0.0 < row["dice_3d"] <= 1.0
    trainer.save_checkpoint()
    head = {n: p.detach().clone() for n, p in fwd.interaction_head.named_parameters()}
    _, _, fwd2, ds2, _, _ = _build(tiny_run, **kw)
    again = Trainer(fwd2, ds2, cfg, tiny_run / "aux")
    assert again.load_checkpoint() == 1
    for n, p in fwd2.interaction_head.named_parameters():
        torch.testing.assert_close(p, head[n], rtol=0, atol=0)
    out = trainer.export(tiny_run / "aux" / "model", tok)
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        assert not any("interaction" in k for k in f.keys())
    assert '"lift_fill_unseen": true' in (out / "config.json").read_text()


def test_interaction_head_sees_where_features_are(tiny_run):
    """The head reads every patch feature in place: the same features in another spatial order (the bottle on
    the other side of the body) give other logits; a head on their mean could not tell them apart."""
    _, _, fwd, _, _, _ = _build(tiny_run, weights=LossWeights(interaction=1.0))
    vision = fwd.cfg.vision
    assert fwd.interaction_head.in_features == vision.num_patches * vision.hidden_size
    feats = torch.randn(2, vision.num_patches, vision.hidden_size)
    mirrored = feats.reshape(2, *(2 * [int(vision.num_patches ** 0.5)]), -1).flip(2).reshape(feats.shape)
    with torch.no_grad():
        a, b = fwd.interaction_logits(feats), fwd.interaction_logits(mirrored)
    assert a.shape == (2, len(fwd.interaction_classes)) and not torch.allclose(a, b)


def test_vision_pretraining_needs_the_head(tiny_run):
    from interactvlm_ros.training.vision_pretrain import pretrain_vision

    _, _, fwd, ds, _, _ = _build(tiny_run)
    with pytest.raises(ValueError, match="interaction head"):
        pretrain_vision(fwd, ds, epochs=1)


def test_augment_pixels_keeps_shape_and_changes_the_image():
    from interactvlm_ros.training.forward import augment_pixels

    x = torch.randn(3, 3, 32, 32)
    torch.manual_seed(0)
    a = augment_pixels(x)
    torch.manual_seed(0)
    b = augment_pixels(x)
    assert a.shape == x.shape and torch.equal(a, b)  # drawn from torch's seeded RNG
    assert not torch.allclose(a, x)
    same = augment_pixels(x, min_scale=1.0, colour=0.0)
    torch.testing.assert_close(same, x, rtol=1e-4, atol=1e-4)  # no zoom, no colour: the identity
