"""Our SAM against an independent implementation: transformers' ``SamModel`` with the same (tiny) weights.

The weights are renamed from segment-anything's layout to transformers' by an explicit table written here;
image embeddings, the dense positional encoding and the point/box-prompted masks and IoU scores must agree.
Both run in float64 so that the comparison is exact up to rounding (float32 differs by summation order only).
"""

import re

import pytest
import torch

from interactvlm_ros.model.sam import Sam

transformers = pytest.importorskip("transformers", reason="transformers is not installed")
hf_sam = pytest.importorskip("transformers.models.sam.modeling_sam", reason="transformers has no SAM model")
pytestmark = pytest.mark.usefixtures("one_torch_thread")

RENAMES = [  # (our key regex, transformers' key)
    (r"^image_encoder\.patch_embed\.proj\.", "vision_encoder.patch_embed.projection."),
    (r"^image_encoder\.pos_embed$", "vision_encoder.pos_embed"),
    (r"^image_encoder\.blocks\.(\d+)\.norm(\d)\.", r"vision_encoder.layers.\1.layer_norm\2."),
    (r"^image_encoder\.blocks\.", "vision_encoder.layers."),
    (r"^image_encoder\.neck\.0\.", "vision_encoder.neck.conv1."),
    (r"^image_encoder\.neck\.1\.", "vision_encoder.neck.layer_norm1."),
    (r"^image_encoder\.neck\.2\.", "vision_encoder.neck.conv2."),
    (r"^image_encoder\.neck\.3\.", "vision_encoder.neck.layer_norm2."),
    (r"^prompt_encoder\.pe_layer\.positional_encoding_gaussian_matrix$",
     "prompt_encoder.shared_embedding.positional_embedding"),
    (r"^prompt_encoder\.point_embeddings\.", "prompt_encoder.point_embed."),
    (r"^prompt_encoder\.mask_downscaling\.0\.", "prompt_encoder.mask_embed.conv1."),
    (r"^prompt_encoder\.mask_downscaling\.1\.", "prompt_encoder.mask_embed.layer_norm1."),
    (r"^prompt_encoder\.mask_downscaling\.3\.", "prompt_encoder.mask_embed.conv2."),
    (r"^prompt_encoder\.mask_downscaling\.4\.", "prompt_encoder.mask_embed.layer_norm2."),
    (r"^prompt_encoder\.mask_downscaling\.6\.", "prompt_encoder.mask_embed.conv3."),
    (r"^mask_decoder\.transformer\.layers\.(\d+)\.norm(\d)\.", r"mask_decoder.transformer.layers.\1.layer_norm\2."),
    (r"^mask_decoder\.transformer\.norm_final_attn\.", "mask_decoder.transformer.layer_norm_final_attn."),
    (r"^mask_decoder\.output_upscaling\.0\.", "mask_decoder.upscale_conv1."),
    (r"^mask_decoder\.output_upscaling\.1\.", "mask_decoder.upscale_layer_norm."),
    (r"^mask_decoder\.output_upscaling\.3\.", "mask_decoder.upscale_conv2."),
    (r"^(mask_decoder\.(?:output_hypernetworks_mlps\.\d+|iou_prediction_head))\.layers\.0\.", r"\1.proj_in."),
    (r"^(mask_decoder\.(?:output_hypernetworks_mlps\.\d+|iou_prediction_head))\.layers\.1\.", r"\1.layers.0."),
    (r"^(mask_decoder\.(?:output_hypernetworks_mlps\.\d+|iou_prediction_head))\.layers\.2\.", r"\1.proj_out."),
]


def to_transformers(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in state.items():
        new = key
        for pattern, repl in RENAMES:
            new, n = re.subn(pattern, repl, new)
            if n:
                break
        out[new] = value
    out["shared_image_embedding.positional_embedding"] = out["prompt_encoder.shared_embedding.positional_embedding"]
    return out


@pytest.fixture(scope="module")
def pair():
    torch.manual_seed(0)
    ours = Sam.from_config("tiny").eval()
    with torch.no_grad():  # non-trivial values everywhere SAM initialises zeros
        for name, p in ours.named_parameters():
            if "rel_pos" in name or "embed" in name or "token" in name:
                p.normal_(std=0.5)
    cfg = ours.config
    config = transformers.SamConfig(
        vision_config=transformers.SamVisionConfig(
            hidden_size=cfg.encoder_embed_dim, num_hidden_layers=cfg.encoder_depth,
            num_attention_heads=cfg.encoder_num_heads, image_size=cfg.image_size, patch_size=cfg.patch_size,
            window_size=cfg.window_size, global_attn_indexes=list(cfg.encoder_global_attn_indexes),
            output_channels=cfg.prompt_embed_dim, mlp_ratio=cfg.mlp_ratio),
        prompt_encoder_config=transformers.SamPromptEncoderConfig(
            hidden_size=cfg.prompt_embed_dim, image_size=cfg.image_size, patch_size=cfg.patch_size,
            mask_input_channels=cfg.mask_in_chans),
        mask_decoder_config=transformers.SamMaskDecoderConfig(
            hidden_size=cfg.prompt_embed_dim, num_hidden_layers=cfg.decoder_depth,
            num_attention_heads=cfg.decoder_num_heads, mlp_dim=cfg.decoder_mlp_dim,
            iou_head_hidden_dim=cfg.iou_head_hidden_dim, num_multimask_outputs=cfg.num_multimask_outputs,
            layer_norm_eps=1e-5),  # segment-anything's two-way transformer uses nn.LayerNorm's default eps
    )
    theirs = hf_sam.SamModel(config).eval()
    missing, unexpected = theirs.load_state_dict(to_transformers(ours.state_dict()), strict=False)
    assert unexpected == [] and missing == [], (missing, unexpected)
    return ours.double(), theirs.double()


def test_image_embeddings_match(pair):
    ours, theirs = pair
    torch.manual_seed(1)
    x = torch.randn(2, 3, 256, 256, dtype=torch.float64)
    with torch.no_grad():
        a = ours.image_encoder(x)
        b = theirs.get_image_embeddings(x)
    torch.testing.assert_close(a, b, atol=1e-9, rtol=1e-7)


def test_dense_positional_encoding_matches(pair):
    ours, theirs = pair
    with torch.no_grad():
        torch.testing.assert_close(ours.prompt_encoder.get_dense_pe(), theirs.get_image_wide_positional_embeddings(),
                                   atol=1e-9, rtol=1e-7)


@pytest.mark.parametrize("multimask", [True, False])
def test_point_prompted_masks_and_iou_match(pair, multimask):
    ours, theirs = pair
    torch.manual_seed(2)
    emb = torch.randn(1, 256, 16, 16, dtype=torch.float64)
    coords = torch.rand(3, 2, 2, dtype=torch.float64) * 256  # 3 prompt sets of 2 points
    labels = torch.tensor([[1, 0], [1, 1], [0, 1]])
    with torch.no_grad():
        sparse, dense = ours.prompt_encoder(points=(coords, labels))
        masks, iou = ours.mask_decoder(emb, ours.prompt_encoder.get_dense_pe(), sparse, dense, multimask)
        ref = theirs(image_embeddings=emb, input_points=coords[None], input_labels=labels[None],
                     multimask_output=multimask)
    torch.testing.assert_close(masks, ref.pred_masks[0], atol=1e-9, rtol=1e-7)
    torch.testing.assert_close(iou, ref.iou_scores[0], atol=1e-9, rtol=1e-7)


def test_box_prompted_masks_match(pair):
    ours, theirs = pair
    emb = torch.randn(1, 256, 16, 16, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    boxes = torch.tensor([[10.0, 20.0, 120.0, 200.0], [50.0, 5.0, 250.0, 90.0]], dtype=torch.float64)
    with torch.no_grad():
        sparse, dense = ours.prompt_encoder(boxes=boxes)
        masks, iou = ours.mask_decoder(emb, ours.prompt_encoder.get_dense_pe(), sparse, dense, True)
        ref = theirs(image_embeddings=emb, input_boxes=boxes[None], multimask_output=True)
    torch.testing.assert_close(masks, ref.pred_masks[0], atol=1e-9, rtol=1e-7)
    torch.testing.assert_close(iou, ref.iou_scores[0], atol=1e-9, rtol=1e-7)


def test_mvloc_equals_reference_decoder_run_per_view(pair):
    """MV-Loc's view v = the reference mask decoder on render v with all V camera-gated tokens as the prompt."""
    from interactvlm_ros.model.mvloc import FeatLift, MVLoc

    ours, theirs = pair
    torch.manual_seed(4)
    feat_lift = FeatLift().double()
    mvloc = MVLoc.from_sam(ours, feat_lift)
    images = torch.randn(4, 256, 16, 16, dtype=torch.float64)
    cams = torch.rand(4, 5, dtype=torch.float64)
    e = torch.randn(2, 256, dtype=torch.float64)
    with torch.no_grad():
        low = mvloc.low_res_logits(e, images, cams)  # [K, V, 64, 64]
        tokens = feat_lift(e, cams)  # [K, V, C]
        pe = theirs.get_image_wide_positional_embeddings()
        dense = theirs.prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(1, -1, 16, 16)
        for k in range(2):
            for v in range(4):
                masks, _ = theirs.mask_decoder(images[v:v + 1], pe, tokens[k][None, None], dense, False)[:2]
                torch.testing.assert_close(low[k, v], masks[0, 0, 0], atol=1e-9, rtol=1e-7)
