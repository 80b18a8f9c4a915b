"""MV-Loc: Γ and FeatLift key layouts, FeatLift gating, the method's broadcast semantics, batching, bad input."""

from pathlib import Path

import pytest
import torch
from torch import nn

from interactvlm_ros.model.checkpoint import read_manifest
from interactvlm_ros.model.mvloc import ContactProjection, FeatLift, MVLoc
from interactvlm_ros.model.sam import Sam

pytestmark = pytest.mark.usefixtures("one_torch_thread")

MANIFESTS = Path(__file__).resolve().parents[1] / "data" / "official_checkpoint_keys"


def manifest(name: str, prefixes: tuple[str, ...]) -> dict[str, tuple[int, ...]]:
    return {k: v for k, v in read_manifest(MANIFESTS / name).items() if k.startswith(prefixes)}


@pytest.mark.parametrize(("name", "hidden"), [("official_13b_keys.tsv", 5120), ("official_7b_keys.tsv", 4096)])
def test_feat_lift_and_projection_match_official_keys(name, hidden):
    expected = manifest(name, ("cam_pose_encoder.", "model.text_hidden_fcs."))
    with torch.device("meta"):
        top = nn.Module()
        top.model = nn.Module()
        top.model.text_hidden_fcs = ContactProjection(hidden, 256)
        top.cam_pose_encoder = FeatLift(num_views=4, out_dim=256)
    got = {k: tuple(v.shape) for k, v in top.state_dict().items()}
    assert got == expected
    assert len([k for k in got if k.startswith("cam_pose_encoder.")]) == 12
    assert sum(p.numel() for p in top.cam_pose_encoder.parameters()) == 149_376


@pytest.fixture(scope="module")
def parts():
    torch.manual_seed(0)
    sam = Sam.from_config("tiny").eval()
    feat_lift = FeatLift().eval()
    with torch.no_grad():  # make the gates vary visibly with the cameras
        for lin in feat_lift.view_transforms:
            lin.weight.mul_(8.0)
        for lin in (feat_lift.spatial_encoder[0], feat_lift.spatial_encoder[2]):
            lin.weight.mul_(3.0)
    mvloc = MVLoc.from_sam(sam, feat_lift).eval()
    images = torch.randn(4, 256, 16, 16)
    cams = torch.tensor([[0.2, 45 / 360, 315 / 360, 0.5, 0.5], [0.2, 315 / 360, 315 / 360, 0.5, 0.65],
                         [0.2, 45 / 360, 135 / 360, 0.5, 0.5], [0.2, 315 / 360, 135 / 360, 0.5, 0.65]])
    return sam, feat_lift, mvloc, images, cams


def test_contact_projection_shapes_and_errors():
    proj = ContactProjection(64, 256)
    assert proj(torch.randn(3, 64)).shape == (3, 256)
    assert proj(torch.randn(2, 5, 64)).shape == (2, 5, 256)
    with pytest.raises(ValueError, match=r"\[\.\.\., 64\]"):
        proj(torch.randn(3, 32))


def test_feat_lift_gates_are_in_unit_interval_and_multiplicative(parts):
    _, feat_lift, _, _, cams = parts
    with torch.no_grad():
        gates = feat_lift.gates(cams)
        assert gates.shape == (4, 256)
        assert (gates > 0).all() and (gates < 1).all()
        e = torch.randn(3, 256)
        tokens = feat_lift(e, cams)
        assert tokens.shape == (3, 4, 256)
        torch.testing.assert_close(tokens, e[:, None, :] * gates[None])
        torch.testing.assert_close(feat_lift(2 * e, cams), 2 * tokens)  # linear in E: a pure gate
        # gate of view v = sigmoid(W_v mlp(cam_v) + b_v): view 0's gate ignores view 1's camera
        cams2 = cams.clone()
        cams2[1, 1] += 0.3
        g2 = feat_lift.gates(cams2)
        torch.testing.assert_close(g2[0], gates[0])
        assert not torch.allclose(g2[1], gates[1])
        manual = torch.sigmoid(feat_lift.view_transforms[2](feat_lift.spatial_encoder(cams[2])))
        torch.testing.assert_close(gates[2], manual)


@pytest.mark.parametrize("k", [0, 1, 2, 5])
def test_mvloc_shapes_for_any_k(parts, k):
    sam, _, mvloc, images, cams = parts
    with torch.no_grad():
        out = mvloc(torch.randn(k, 256), images, cams)
        low = mvloc.low_res_logits(torch.randn(k, 256), images, cams)
    assert out.shape == (k, 4, 256, 256) and low.shape == (k, 4, 64, 64)
    assert torch.isfinite(out).all()


def test_mvloc_mask_size_follows_postprocess(parts):
    sam, feat_lift, mvloc, images, cams = parts
    small = MVLoc.from_sam(sam, feat_lift, mask_size=128)
    e = torch.randn(2, 256)
    with torch.no_grad():
        out = small(e, images, cams)
        ref = sam.postprocess_masks(mvloc.low_res_logits(e, images, cams), (256, 256), (128, 128))
    assert out.shape == (2, 4, 128, 128)
    torch.testing.assert_close(out, ref)


def test_mvloc_batched_k_equals_one_at_a_time_and_is_deterministic(parts):
    _, _, mvloc, images, cams = parts
    e = torch.randn(4, 256)
    with torch.no_grad():
        batched = mvloc(e, images, cams)
        single = torch.cat([mvloc(e[i:i + 1], images, cams) for i in range(4)])
        again = mvloc(e, images, cams)
    torch.testing.assert_close(batched, single, atol=1e-5, rtol=1e-5)
    assert torch.equal(batched, again)


def test_mvloc_equals_the_methods_decoder_call(parts):
    """InteractVLM: sparse = [1, V, C] gated tokens, images [V, C, h, w], dense = no_mask_embed; one decoder call."""
    sam, feat_lift, mvloc, images, cams = parts
    e = torch.randn(1, 256)
    with torch.no_grad():
        tokens = e[:, None, :] * feat_lift.gates(cams)[None]  # [1, V, C]
        sparse, dense = sam.prompt_encoder(text_embeds=tokens)
        masks, _ = sam.mask_decoder(images, sam.prompt_encoder.get_dense_pe(), sparse, dense, multimask_output=False)
        ref = sam.postprocess_masks(masks[:, 0], (256, 256), (256, 256))  # [V, H, W]
        torch.testing.assert_close(mvloc(e, images, cams)[0], ref, atol=1e-5, rtol=1e-5)
        # ... which is each view's pass over ALL V gated tokens
        for v in range(4):
            m_v, _ = sam.mask_decoder(images[v:v + 1], sam.prompt_encoder.get_dense_pe(), sparse, dense[:1], False)
            torch.testing.assert_close(m_v[0, 0], masks[v, 0], atol=1e-5, rtol=1e-5)


def test_changing_one_camera_changes_every_view(parts):
    _, _, mvloc, images, cams = parts
    e = torch.randn(2, 256)
    cams2 = cams.clone()
    cams2[2] = torch.tensor([0.15, 0.1, 0.6, 0.3, 0.2])
    with torch.no_grad():
        a = mvloc.low_res_logits(e, images, cams)
        b = mvloc.low_res_logits(e, images, cams2)
    per_view = (a - b).abs().amax(dim=(0, 2, 3))
    assert (per_view > 1e-4).all(), per_view  # all 4 gated tokens go to every view's pass


def test_views_differ_through_their_image_embeddings(parts):
    _, _, mvloc, images, cams = parts
    e = torch.randn(1, 256)
    same = images[:1].expand(4, -1, -1, -1)
    with torch.no_grad():
        out_same = mvloc.low_res_logits(e, same, cams)
        out = mvloc.low_res_logits(e, images, cams)
    torch.testing.assert_close(out_same[0, 1], out_same[0, 0])  # same image -> same mask whatever the view
    assert not torch.allclose(out[0, 1], out[0, 0])


def test_per_token_render_sets(parts):
    _, _, mvloc, images, cams = parts
    e = torch.randn(2, 256)
    other = torch.randn_like(images)
    with torch.no_grad():
        both = mvloc(e, torch.stack([images, other]), torch.stack([cams, cams.flip(0)]))
        first = mvloc(e[:1], images, cams)
        second = mvloc(e[1:], other, cams.flip(0))
    torch.testing.assert_close(both, torch.cat([first, second]), atol=1e-5, rtol=1e-5)


def test_mvloc_gradients_reach_decoder_and_feat_lift(parts):
    sam, feat_lift, _, images, cams = parts
    mvloc = MVLoc.from_sam(sam, feat_lift)
    e = torch.randn(2, 256, requires_grad=True)
    mvloc.low_res_logits(e, images, cams).sigmoid().mean().backward()
    assert e.grad is not None and e.grad.abs().sum() > 0
    assert feat_lift.view_transforms[3].weight.grad.abs().sum() > 0
    assert sam.mask_decoder.output_hypernetworks_mlps[0].layers[0].weight.grad.abs().sum() > 0
    sam.zero_grad(set_to_none=True)
    feat_lift.zero_grad(set_to_none=True)


def test_mvloc_bad_input_names_expected_shape(parts):
    _, _, mvloc, images, cams = parts
    e = torch.randn(2, 256)
    with pytest.raises(ValueError, match=r"contact_embeds must be \[K, 256\]"):
        mvloc(torch.randn(2, 128), images, cams)
    with pytest.raises(ValueError, match=r"contact_embeds must be \[K, 256\]"):
        mvloc(torch.randn(256), images, cams)
    with pytest.raises(ValueError, match=r"image_embeddings must be \[4, 256, 16, 16\]"):
        mvloc(e, images[:3], cams)
    with pytest.raises(ValueError, match=r"image_embeddings must be \[4, 256, 16, 16\]"):
        mvloc(e, torch.randn(4, 256, 64, 64), cams)
    with pytest.raises(ValueError, match=r"cam_params must be \[4, 5\]"):
        mvloc(e, images, cams[:, :4])
    with pytest.raises(ValueError, match=r"cam_params must be \[4, 5\]"):
        mvloc(e, images, cams[:2])
    with pytest.raises(ValueError, match="FeatLift out_dim"):
        MVLoc(mvloc.prompt_encoder, mvloc.mask_decoder, FeatLift(out_dim=128), 256)
