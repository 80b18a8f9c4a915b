"""MV-Loc and the SAM image encoder export to ONNX (opset 17) with dynamic K and match torch in ONNX Runtime.

Both exporters: the TorchScript one (``dynamo=False``, always available) and the torch.export one
(``dynamo=True``, needs onnxscript; skipped without it).
"""

import importlib.util
import warnings

import numpy as np
import pytest
import torch

from interactvlm_ros.model.mvloc import FeatLift, MVLoc
from interactvlm_ros.model.sam import Sam

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny_sam():
    torch.manual_seed(0)
    sam = Sam.from_config("tiny").eval()
    with torch.no_grad():  # non-zero relative positions so the export covers them
        for block in sam.image_encoder.blocks:
            block.attn.rel_pos_h.normal_(std=0.5)
            block.attn.rel_pos_w.normal_(std=0.5)
    return sam


EXPORTERS = [
    pytest.param("torchscript", id="torchscript"),
    pytest.param("dynamo", id="dynamo", marks=[pytest.mark.slow, pytest.mark.skipif(
        importlib.util.find_spec("onnxscript") is None, reason="onnxscript (torch.export-based exporter) missing")]),
]


def _export(exporter, module, args, path, input_names, output_names, dynamic):
    """Export with a dynamic leading axis for the inputs/outputs named in ``dynamic`` (name -> axis name)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter is the deprecated one
        if exporter == "torchscript":
            torch.onnx.export(module, args, str(path), dynamo=False, opset_version=17, input_names=input_names,
                              output_names=output_names,
                              dynamic_axes={n: {0: a} for n, a in dynamic.items()} or None)
        else:
            dims = {a: torch.export.Dim(a, min=1, max=64) for a in set(dynamic.values())}
            shapes = tuple({0: dims[dynamic[n]]} if n in dynamic else None for n in input_names)  # per positional arg
            shapes = shapes if dims else None
            torch.onnx.export(module, args, str(path), dynamo=True, opset_version=17, input_names=input_names,
                              output_names=output_names, dynamic_shapes=shapes, external_data=False)
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_mvloc_exports_with_dynamic_k_and_matches_torch(exporter, tiny_sam, tmp_path):
    mvloc = MVLoc.from_sam(tiny_sam, FeatLift().eval()).eval()
    images = torch.randn(4, 256, 16, 16)
    cams = torch.rand(4, 5)
    sess = _export(exporter, mvloc, (torch.randn(2, 256), images, cams), tmp_path / "mvloc.onnx",
                   ["contact_embeds", "image_embeddings", "cam_params"], ["mask_logits"],
                   {"contact_embeds": "K", "mask_logits": "K"})
    for k in (1, 3, 6):
        e = torch.randn(k, 256)
        with torch.no_grad():
            ref = mvloc(e, images, cams).numpy()
        out = sess.run(None, {"contact_embeds": e.numpy(), "image_embeddings": images.numpy(),
                              "cam_params": cams.numpy()})[0]
        assert out.shape == (k, 4, 256, 256)
        np.testing.assert_allclose(out, ref, atol=1e-4, rtol=0)


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_image_encoder_exports_and_matches_torch(exporter, tiny_sam, tmp_path):
    """The encoder runs on a fixed batch (the V renders): static shapes."""
    x = torch.randn(2, 3, 256, 256)
    sess = _export(exporter, tiny_sam.image_encoder, (x,), tmp_path / "encoder.onnx", ["images"], ["embeddings"], {})
    with torch.no_grad():
        ref = tiny_sam.image_encoder(x).numpy()
    out = sess.run(None, {"images": x.numpy()})[0]
    assert out.shape == (2, 256, 16, 16)
    np.testing.assert_allclose(out, ref, atol=1e-4, rtol=0)
