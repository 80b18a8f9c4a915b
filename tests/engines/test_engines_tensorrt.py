"""TensorRT backend: the same parity and cache tests as ONNX Runtime, on a CUDA device with TensorRT 10.

Skipped (with the reason) where ``import tensorrt`` fails or no CUDA device is visible — i.e. on the CPU CI.
Tolerances against CUDA torch fp32 on the tiny preset: per-vertex probabilities 5e-3 for fp32 plans (TensorRT
uses TF32 for fp32 matmuls on Ampere and newer) and 2e-2 for fp16 plans; LLM hidden states 1e-2 / 5e-2 relative
to their scale.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

trt = pytest.importorskip("tensorrt", reason="TensorRT is not installed (GPU machines: pip install "
                          "'tensorrt-cu12>=10,<11' --extra-index-url https://pypi.nvidia.com)")
if not torch.cuda.is_available():
    pytest.skip("no CUDA device visible to torch", allow_module_level=True)

from interactvlm_ros.engines.backends import InferenceStages  # noqa: E402
from interactvlm_ros.engines.build import EngineBuilder  # noqa: E402
from interactvlm_ros.engines.stages import STAGES, LanguageStage  # noqa: E402
from interactvlm_ros.engines.tensorrt_backend import PLAN_FILE, TensorRTRunner  # noqa: E402
from interactvlm_ros.model.checkpoint import load_model  # noqa: E402
from interactvlm_ros.model.predictor import ContactPredictor  # noqa: E402

TOL = {"fp32": {"probs": 5e-3, "hidden": 1e-2}, "fp16": {"probs": 2e-2, "hidden": 5e-2}}


@pytest.fixture(scope="module")
def cuda_loaded():
    loaded = load_model("tiny", device="cpu", precision="fp32")
    loaded.model = copy.deepcopy(loaded.model).to("cuda").eval()
    return loaded


@pytest.fixture(scope="module")
def engine_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("trt_engines")


@pytest.fixture(scope="module", params=["fp32", "fp16"])
def trt_case(request, cuda_loaded, engine_dir):
    builder = EngineBuilder(cuda_loaded.model, engine_dir, "tensorrt", tensorrt_precision=request.param)
    return request.param, builder, builder.build()


def test_every_stage_builds_a_plan_keyed_by_gpu_and_tensorrt_version(trt_case):
    precision, builder, stages = trt_case
    assert set(stages.runners) == set(STAGES)
    key = builder.backend_key("mvloc")
    major, minor = torch.cuda.get_device_capability()
    assert key.arch == f"sm{major}{minor}" and key.runtime == f"trt{trt.__version__}" and key.precision == precision
    assert (builder.cache.path(key) / PLAN_FILE).is_file()
    assert any(p.name.startswith("tensorrt-timing-cache-") for p in builder.cache.root.iterdir())


def test_llm_plan_matches_torch_on_cuda_tensors(trt_case, cuda_loaded):
    precision, _, stages = trt_case
    m = cuda_loaded.model
    runner = stages.runners["llm"]
    assert isinstance(runner, TensorRTRunner)
    x = torch.randn(2, 7, 128, device="cuda")
    mask = torch.ones(2, 7, dtype=torch.long, device="cuda")
    pos = torch.arange(7, device="cuda").repeat(2, 1)
    with torch.no_grad():
        ref = m.decoder(x, mask, pos, None)
    hidden, present = runner(x, mask, pos, torch.zeros(LanguageStage(m).kv_shape(2, 0), device="cuda"))
    assert hidden.is_cuda and present.shape == (2, 2, 2, 4, 7, 32)  # outputs stay on the GPU
    scale = ref.abs().max().item()
    assert (hidden.float() - ref).abs().max().item() <= TOL[precision]["hidden"] * scale


def test_predictor_on_tensorrt_matches_cuda_torch_per_vertex(trt_case, cuda_loaded, tmp_path):
    from interactvlm_ros.body import load_body_model

    precision, _, stages = trt_case
    body = load_body_model("anny")
    image = np.random.default_rng(3).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    ref = ContactPredictor.from_loaded(cuda_loaded, body_model=body, cache_dir=str(tmp_path / "torch"))
    ours = ContactPredictor.from_loaded(cuda_loaded, body_model=body, cache_dir=str(tmp_path / "trt"))
    ours.stages = stages
    ours.embedding_cache.encoder = stages.embed_images
    a, b = ref.predict(image, ["chair", "cup", "skateboard"]), ours.predict(image, ["chair", "cup", "skateboard"])
    for ca, cb in zip(a.contacts, b.contacts, strict=True):
        assert ca.found and cb.found
        assert np.abs(ca.human_probs - cb.human_probs).max() <= TOL[precision]["probs"]


def test_a_corrupt_plan_is_rebuilt(trt_case, cuda_loaded, engine_dir):
    precision, builder, _ = trt_case
    plan = builder.cache.path(builder.backend_key("vision")) / PLAN_FILE
    data = plan.read_bytes()
    plan.write_bytes(data[: len(data) // 2])
    fresh = EngineBuilder(cuda_loaded.model, engine_dir, "tensorrt", tensorrt_precision=precision)
    runner = fresh.runner("vision")
    assert fresh.cache.check(plan.parent) == ""
    pixels = torch.randn(1, 3, 112, 112, device="cuda")
    with torch.no_grad():
        ref = InferenceStages(cuda_loaded.model).encode_image(pixels)
    out = runner(pixels)[0].float()
    assert (out - ref).abs().max().item() <= TOL[precision]["hidden"] * ref.abs().max().item()
