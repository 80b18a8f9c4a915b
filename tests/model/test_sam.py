"""SAM (segment-anything layout): official key layout, pre/post-processing, decoder batching semantics."""

from pathlib import Path

import numpy as np
import pytest
import torch

from interactvlm_ros.model.checkpoint import read_manifest
from interactvlm_ros.model.sam import PIXEL_MEAN, PIXEL_STD, Sam, SamConfig, postprocess_masks, preprocess_shape

pytestmark = pytest.mark.usefixtures("one_torch_thread")

MANIFESTS = Path(__file__).resolve().parents[1] / "data" / "official_checkpoint_keys"
PREFIX = "model.visual_model."


def official_keys(name: str, prefix: str) -> dict[str, tuple[int, ...]]:
    """The manifest's tensors under ``prefix``, with the prefix removed."""
    return {k[len(prefix):]: v for k, v in read_manifest(MANIFESTS / name).items() if k.startswith(prefix)}


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return Sam.from_config("tiny").eval()


def test_vit_h_state_dict_equals_official_visual_model_keys():
    expected = official_keys("official_13b_keys.tsv", PREFIX)
    assert len(expected) == 594
    with torch.device("meta"):
        sam = Sam.from_config("vit_h")
    got = {k: tuple(v.shape) for k, v in sam.state_dict().items()}
    assert sorted(set(expected) - set(got)) == []
    assert sorted(set(got) - set(expected)) == []
    assert {k: s for k, s in got.items() if expected[k] != s} == {}
    assert "pixel_mean" not in got and "pixel_std" not in got
    assert "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix" in dict(sam.named_buffers())
    assert sum(v.numel() for v in sam.state_dict().values()) == 641_090_864
    assert sum(p.numel() for p in sam.image_encoder.parameters()) == 637_026_048
    assert sum(p.numel() for p in sam.mask_decoder.parameters()) == 4_058_340


def test_vit_h_global_blocks_have_full_grid_relative_positions():
    with torch.device("meta"):
        sam = Sam.from_config("vit_h")
    sizes = {i: tuple(b.attn.rel_pos_h.shape) for i, b in enumerate(sam.image_encoder.blocks)}
    assert {i for i, s in sizes.items() if s == (127, 80)} == {7, 15, 23, 31}
    assert all(s == (27, 80) for i, s in sizes.items() if i not in (7, 15, 23, 31))


def test_config_presets_and_validation():
    assert SamConfig.vit_h().embedding_size == 64 and SamConfig.vit_h().low_res_mask_size == 256
    tiny = SamConfig.tiny()
    assert SamConfig.from_dict(tiny.to_dict()) == tiny
    with pytest.raises(ValueError, match="unknown SAM preset"):
        SamConfig.preset("vit_x")
    with pytest.raises(ValueError, match="unknown SamConfig keys"):
        SamConfig.from_dict({"image_sise": 10})
    with pytest.raises(ValueError, match="multiple of patch_size"):
        SamConfig(image_size=100, patch_size=16)


def test_image_encoder_shapes_and_determinism(tiny):
    x, _ = tiny.preprocess(np.random.default_rng(0).integers(0, 255, (2, 256, 256, 3), dtype=np.uint8))
    with torch.no_grad():
        a = tiny.image_encoder(x)
        b = tiny.image_encoder(x)
        single = tiny.image_encoder(x[1:])
    assert a.shape == (2, 256, 16, 16)
    assert torch.equal(a, b)
    torch.testing.assert_close(a[1:], single, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match=r"\[B, 3, 256, 256\]"):
        tiny.image_encoder(torch.zeros(1, 3, 128, 128))


def test_windowed_attention_pads_grids_not_divisible_by_the_window():
    cfg = SamConfig(image_size=96, patch_size=16, encoder_embed_dim=32, encoder_depth=2, encoder_num_heads=2,
                    encoder_global_attn_indexes=(1,), window_size=4, prompt_embed_dim=64, decoder_num_heads=4,
                    decoder_mlp_dim=64)
    sam = Sam.from_config(cfg).eval()
    with torch.no_grad():
        out = sam.image_encoder(torch.randn(1, 3, 96, 96))  # 6x6 grid, 4x4 windows -> padded to 8x8
    assert out.shape == (1, 64, 6, 6) and torch.isfinite(out).all()


def test_preprocess_normalises_resizes_longest_side_and_pads(tiny):
    img = np.full((128, 64, 3), 200, dtype=np.uint8)  # portrait: longest side 128 -> 256, width 64 -> 128
    x, input_size = tiny.preprocess(img)
    assert x.shape == (1, 3, 256, 256) and input_size == (256, 128) == preprocess_shape(128, 64, 256)
    expected = (200 - torch.tensor(PIXEL_MEAN)) / torch.tensor(PIXEL_STD)
    torch.testing.assert_close(x[0, :, :256, :128].mean(dim=(1, 2)), expected, atol=1e-4, rtol=0)
    assert torch.count_nonzero(x[0, :, :, 128:]) == 0  # right padding is zero after normalisation
    # landscape, torch CHW layout: padding at the bottom
    x2, size2 = tiny.preprocess(torch.full((3, 50, 100), 10.0))
    assert size2 == (128, 256) and torch.count_nonzero(x2[0, :, 128:, :]) == 0
    assert torch.all(x2[0, :, :128, :] != 0)
    with pytest.raises(ValueError, match=r"\[H, W, 3\]"):
        tiny.preprocess(np.zeros((10, 10), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        tiny.preprocess(torch.zeros(1, 4, 10, 10))


def test_postprocess_upscales_crops_padding_and_resizes(tiny):
    low = torch.zeros(2, 3, 64, 64)
    low[..., :, 33:] = 5.0  # columns >= 132 of the padded square (padding for a (256, 128) input; bilinear
    # interpolation of column 32..33 only reaches upscaled column 130)
    out = tiny.postprocess_masks(low, input_size=(256, 128), original_size=(100, 50))
    assert out.shape == (2, 3, 100, 50)
    assert out.max() < 1e-6  # the padded area was cropped away before resizing
    same = postprocess_masks(torch.randn(5, 64, 64), 256, (256, 256), (256, 256))
    assert same.shape == (5, 256, 256)
    with pytest.raises(ValueError, match="input_size"):
        postprocess_masks(low, 256, (300, 10), (10, 10))


def test_decoder_standard_sam_batching_matches_one_prompt_at_a_time(tiny):
    torch.manual_seed(1)
    image = torch.randn(1, 256, 16, 16)
    pe = tiny.prompt_encoder.get_dense_pe()
    coords = torch.rand(3, 2, 2) * 256
    labels = torch.tensor([[1, 0], [1, 1], [0, 1]])
    with torch.no_grad():
        sparse, dense = tiny.prompt_encoder(points=(coords, labels))
        assert sparse.shape == (3, 3, 256) and dense.shape == (3, 256, 16, 16)  # 2 points + padding point
        masks, iou = tiny.mask_decoder(image, pe, sparse, dense, multimask_output=True)
        assert masks.shape == (3, 3, 64, 64) and iou.shape == (3, 3)
        for i in range(3):
            m_i, iou_i = tiny.mask_decoder(image, pe, sparse[i:i + 1], dense[i:i + 1], multimask_output=True)
            torch.testing.assert_close(m_i[0], masks[i], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(iou_i[0], iou[i], atol=1e-5, rtol=1e-5)
        # broadcasting the image equals an explicit copy per prompt set (SAM's repeat_interleave)
        shared, _ = tiny.mask_decoder(image, pe, sparse, dense, multimask_output=False)
        rep, _ = tiny.mask_decoder(image.expand(3, -1, -1, -1).clone(), pe, sparse, dense, multimask_output=False)
        torch.testing.assert_close(rep, shared, atol=1e-5, rtol=1e-5)
        assert rep.shape == (3, 1, 64, 64)


def test_prompt_encoder_boxes_masks_text_and_errors(tiny):
    pe = tiny.prompt_encoder
    with torch.no_grad():
        sparse, dense = pe(boxes=torch.tensor([[10.0, 20.0, 100.0, 200.0]]), masks=torch.randn(1, 1, 64, 64),
                           text_embeds=torch.randn(1, 4, 256))
        assert sparse.shape == (1, 6, 256) and dense.shape == (1, 256, 16, 16)
        empty, nomask = pe()
        assert empty.shape == (1, 0, 256)
        torch.testing.assert_close(nomask[0, :, 3, 5], pe.no_mask_embed.weight[0])
    with pytest.raises(ValueError, match=r"masks must be \[B, 1, 64, 64\]"):
        pe(masks=torch.zeros(1, 1, 32, 32))
    with pytest.raises(ValueError, match=r"text_embeds must be \[B, T, 256\]"):
        pe(text_embeds=torch.zeros(1, 4, 128))


def test_dense_positional_encoding_is_cached_and_invalidated():
    torch.manual_seed(0)
    sam = Sam.from_config("tiny")
    pe1 = sam.prompt_encoder.get_dense_pe()
    pe2 = sam.prompt_encoder.get_dense_pe()
    assert pe1.shape == (1, 256, 16, 16)
    assert pe1.data_ptr() == pe2.data_ptr()  # no recomputation
    vals = pe1[0, :128]  # sin half lies in [-1, 1] and varies over the grid
    assert vals.abs().max() <= 1 and vals.std() > 0.1
    with torch.no_grad():
        sam.prompt_encoder.pe_layer.positional_encoding_gaussian_matrix.mul_(2.0)
    pe3 = sam.prompt_encoder.get_dense_pe()
    assert not torch.allclose(pe3, pe1)
    torch.testing.assert_close(pe3, sam.prompt_encoder.pe_layer._compute_grid((16, 16))[None])


def test_embed_images_batches_equal_single(tiny):
    imgs = np.random.default_rng(3).integers(0, 255, (3, 256, 256, 3), dtype=np.uint8)
    a = tiny.embed_images(imgs, batch_size=2)
    b = torch.cat([tiny.embed_images(imgs[i]) for i in range(3)])
    assert a.shape == (3, 256, 16, 16)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
