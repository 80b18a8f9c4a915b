"""MV-Loc and the SAM image encoder export to ONNX (opset 17) with dynamic K and match torch in ONNX Runtime."""

import warnings

import numpy as np
import pytest
import torch

from interactvlm_ros.model.mvloc import FeatLift, MVLoc
from interactvlm_ros.model.sam import Sam

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models on a small shared CPU: one intra-op thread avoids OpenMP spin-waiting (restored afterwards)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_sam():
    torch.manual_seed(0)
    sam = Sam.from_config("tiny").eval()
    with torch.no_grad():  # non-zero relative positions so the export covers them
        for block in sam.image_encoder.blocks:
            block.attn.rel_pos_h.normal_(std=0.5)
            block.attn.rel_pos_w.normal_(std=0.5)
    return sam


def _export(module, args, path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter is the deprecated one
        torch.onnx.export(module, args, str(path), dynamo=False, opset_version=17, **kw)
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_mvloc_exports_with_dynamic_k_and_matches_torch(tiny_sam, tmp_path):
    mvloc = MVLoc.from_sam(tiny_sam, FeatLift().eval()).eval()
    images = torch.randn(4, 256, 16, 16)
    cams = torch.rand(4, 5)
    sess = _export(mvloc, (torch.randn(2, 256), images, cams), tmp_path / "mvloc.onnx",
                   input_names=["contact_embeds", "image_embeddings", "cam_params"], output_names=["mask_logits"],
                   dynamic_axes={"contact_embeds": {0: "K"}, "mask_logits": {0: "K"}})
    for k in (1, 3, 6):
        e = torch.randn(k, 256)
        with torch.no_grad():
            ref = mvloc(e, images, cams).numpy()
        out = sess.run(None, {"contact_embeds": e.numpy(), "image_embeddings": images.numpy(),
                              "cam_params": cams.numpy()})[0]
        assert out.shape == (k, 4, 256, 256)
        np.testing.assert_allclose(out, ref, atol=1e-4, rtol=0)


def test_image_encoder_exports_and_matches_torch(tiny_sam, tmp_path):
    x = torch.randn(2, 3, 256, 256)
    sess = _export(tiny_sam.image_encoder, (x[:1],), tmp_path / "encoder.onnx", input_names=["images"],
                   output_names=["embeddings"], dynamic_axes={"images": {0: "B"}, "embeddings": {0: "B"}})
    with torch.no_grad():
        ref = tiny_sam.image_encoder(x).numpy()
    out = sess.run(None, {"images": x.numpy()})[0]
    assert out.shape == (2, 256, 16, 16)
    np.testing.assert_allclose(out, ref, atol=1e-4, rtol=0)
