"""Engines: ONNX export of the per-frame stages, ONNX Runtime vs torch parity, the engine cache (keys, corrupt
artifacts rebuilt, atomic writes, concurrent builders), the predictor on the onnxruntime backend and the CLI.

Everything runs the tiny preset; the stages are exported once per module into a temporary engine cache.
"""

from __future__ import annotations

import importlib.util
import json
import threading
import time
from dataclasses import replace

import numpy as np
import onnx
import pytest
import torch

from interactvlm_ros.engines.backends import EngineLanguageModel, InferenceStages
from interactvlm_ros.engines.build import EngineBuilder, resolve_backend
from interactvlm_ros.engines.cache import ArtifactKey, CorruptArtifact, EngineCache
from interactvlm_ros.engines.export import ONNX_FILE
from interactvlm_ros.engines.stages import STAGES, LanguageStage
from interactvlm_ros.model.generation import DecodeSettings, generate_cached, generate_recompute, prefill_prefix
from interactvlm_ros.model.predictor import ContactPredictor

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
OBJECTS = ["chair", "cup", "skateboard"]
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def engine_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("engines")


@pytest.fixture(scope="module")
def builder(tiny_model, engine_dir):
    return EngineBuilder(tiny_model.model, engine_dir, "onnxruntime", threads=1)


@pytest.fixture(scope="module")
def ort_stages(builder) -> InferenceStages:
    return builder.build()


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(3).integers(0, 256, (240, 320, 3), dtype=np.uint8)


# ---------------------------------------------------------------------------------------------- export
def _dims(value_info) -> list:
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def test_every_stage_exports_a_checked_graph_with_only_the_needed_dynamic_axes(builder, ort_stages):
    assert set(ort_stages.runners) == set(STAGES)
    expected = {"vision": {}, "sam_encoder": {},
                "mvloc": {"contact_states": ["queries", 128], "image_embeddings": ["render_sets", 4, 256, 16, 16],
                          "cam_params": ["render_sets", 4, 5], "render_index": ["queries"]},
                "llm": {"inputs_embeds": ["batch", "new", 128], "attention_mask": ["batch", "total"],
                        "position_ids": ["batch", "new"], "past_key_values": [2, 2, "batch", 4, "past", 32]}}
    for stage in STAGES:
        path = builder.onnx(stage)
        onnx.checker.check_model(str(path))
        proto = onnx.load(str(path))
        graph = proto.graph
        assert {o.domain: o.version for o in proto.opset_import}[""] == 17
        dynamic = {i.name: _dims(i) for i in graph.input if any(isinstance(d, str) for d in _dims(i))}
        assert dynamic == expected[stage], stage


def test_llm_graph_equals_the_transformers_decoder_for_prefill_and_cached_decode(tiny_model, ort_stages):
    m = tiny_model.model
    runner = ort_stages.runners["llm"]
    torch.manual_seed(0)
    for b, t in ((1, 9), (3, 5)):
        x = torch.randn(b, t, 128)
        mask = torch.ones(b, t, dtype=torch.long)
        mask[-1, :2] = 0  # a left-padded row
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = m.new_cache()
        with torch.no_grad():
            ref = m.decoder(x, mask, pos, cache)
        hidden, present = runner(x, mask, pos, torch.zeros(LanguageStage(m).kv_shape(b, 0)))
        assert present.shape == (2, 2, b, 4, t, 32)
        np.testing.assert_allclose(hidden[mask > 0].numpy(), ref[mask > 0].numpy(), atol=1e-5, rtol=0)
        step = torch.randn(b, 1, 128)
        mask2 = torch.cat([mask, torch.ones(b, 1, dtype=torch.long)], 1)
        pos2 = pos[:, -1:] + 1
        with torch.no_grad():
            ref2 = m.decoder(step, mask2, pos2, cache)
        hidden2, present2 = runner(step, mask2, pos2, present)
        assert present2.shape[4] == t + 1
        np.testing.assert_allclose(hidden2.numpy(), ref2.numpy(), atol=1e-5, rtol=0)


def test_generation_through_onnxruntime_gives_the_same_tokens_and_contact_embeddings(tiny_model, ort_stages):
    m = tiny_model.model
    torch.manual_seed(1)
    prefix = torch.randn(20, 128)
    suffixes = [torch.randn(n, 128) for n in (3, 5)]
    settings = DecodeSettings(10, eos_id=2, contact_ids=[tiny_model.model.config.contact_token_ids[0]],
                              force_contact_at=6)
    engine_lm = ort_stages.language_model
    assert isinstance(engine_lm, EngineLanguageModel)
    ref = generate_cached(m, prefix, suffixes, settings)
    out = generate_cached(engine_lm, prefix, suffixes, settings)
    assert out.tokens == ref.tokens and ref.found.all() and out.found.all()
    np.testing.assert_allclose(out.contact_states.numpy(), ref.contact_states.numpy(), atol=1e-4, rtol=0)
    with torch.no_grad():
        np.testing.assert_allclose(m.contact_embeddings(out.contact_states).numpy(),
                                   m.contact_embeddings(ref.contact_states).numpy(), atol=1e-4, rtol=0)
    rec = generate_recompute(engine_lm, torch.cat([prefix, suffixes[0]]), settings)  # no cache: past of length 0
    assert rec.tokens[0] == ref.tokens[0]
    np.testing.assert_allclose(rec.contact_states[0].numpy(), ref.contact_states[0].numpy(), atol=1e-4, rtol=0)


def test_generation_after_a_prefilled_start_through_onnxruntime(tiny_model, ort_stages):
    """A frame's system text + image prefilled once by the engine serves several calls (its KV cache is copied)."""
    m, engine_lm = tiny_model.model, ort_stages.language_model
    torch.manual_seed(2)
    prompt = torch.randn(24, 128)
    suffixes = [torch.randn(n, 128) for n in (4, 2)]
    settings = DecodeSettings(8, eos_id=2, contact_ids=[m.config.contact_token_ids[0]], force_contact_at=5)
    ref = generate_cached(m, prompt, suffixes, settings)
    past = prefill_prefix(engine_lm, prompt[:15])
    kept = past.cache.kv.clone()
    for _ in range(2):
        out = generate_cached(engine_lm, prompt[15:], suffixes, settings, past=past)
        assert out.tokens == ref.tokens and out.found.all()
        np.testing.assert_allclose(out.contact_states.numpy(), ref.contact_states.numpy(), atol=1e-4, rtol=0)
    assert torch.equal(past.cache.kv, kept)


@pytest.mark.parametrize("k", [1, 5])
def test_mvloc_graph_has_a_dynamic_number_of_objects(tiny_model, ort_stages, k):
    torch_stages = InferenceStages(tiny_model.model)
    states = torch.randn(k, 128)
    renders = torch.randn(4, 256, 16, 16)
    cams = torch.rand(4, 5)
    with torch.no_grad():
        ref = torch_stages.mvloc(states, renders, cams, 256)
    out = ort_stages.mvloc(states, renders, cams, 256)
    assert out.shape == (k, 4, 256, 256)
    np.testing.assert_allclose(out.numpy(), ref.numpy(), atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="built for 256px masks"):
        ort_stages.mvloc(states, renders, cams, 128)


def test_mvloc_graph_localises_every_query_on_its_own_render_set_in_one_run(tiny_model, ort_stages):
    """K queries over N render sets (two queries share a set, one set is unused) in one engine run equal torch's
    MV-Loc on each query's set; the export module alone (the decoder written out with shared per-set work and the
    single-mask tail) equals it too."""
    from interactvlm_ros.engines.stages import MVLocStage

    m = tiny_model.model
    torch.manual_seed(4)
    states = torch.randn(5, 128)
    renders, cams = torch.randn(4, 4, 256, 16, 16), torch.rand(4, 4, 5)
    index = torch.tensor([2, 0, 2, 1, 0])
    with torch.no_grad():
        ref = m.mvloc(mask_size=256)(m.contact_embeddings(states), renders[index], cams[index])
        module = MVLocStage(m, 256).eval()(states, renders, cams, index)
        torch_call = InferenceStages(m).mvloc(states, renders, cams, 256, render_index=index)
    np.testing.assert_allclose(module.numpy(), ref.numpy(), atol=1e-4, rtol=0)
    np.testing.assert_allclose(torch_call.numpy(), ref.numpy(), atol=0, rtol=0)
    runner = ort_stages.runners["mvloc"]
    runs = []
    counted = InferenceStages(m, "onnxruntime", {"mvloc": lambda *t: runs.append(t) or runner(*t)}, mask_size=256)
    out = counted.mvloc(states, renders, cams, 256, render_index=index)
    assert out.shape == (5, 4, 256, 256) and len(runs) == 1
    np.testing.assert_allclose(out.numpy(), ref.numpy(), atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="render_index"):
        counted.mvloc(states, renders, cams, 256, render_index=torch.tensor([0, 1, 2, 3, 4]))
    with pytest.raises(ValueError, match="need a render_index"):
        counted.mvloc(states, renders, cams, 256)


def test_the_mvloc_engine_key_changed_with_its_graph(tiny_model, builder):
    """Engines cached before the MV-Loc graph took N render sets (format 1) are not reused: other key."""
    import hashlib

    from interactvlm_ros.engines import build
    from interactvlm_ros.engines.fingerprint import module_weights_hash
    from interactvlm_ros.engines.stages import StageSpec, stage_module

    m = tiny_model.model
    old_spec = StageSpec("mvloc", ("contact_states", "image_embeddings", "cam_params"), ("mask_logits",),
                         {"contact_states": {0: "objects"}, "mask_logits": {0: "objects"}})
    cfg = m.config
    sizes = (cfg.vision, cfg.text, cfg.sam, cfg.num_views, m.sam.image_size, builder.mask_size)
    weights = module_weights_hash(stage_module(m, "mvloc", builder.mask_size))
    old = hashlib.blake2b(f"1|mvloc|{old_spec}|{sizes}|{weights}".encode(), digest_size=16).hexdigest()
    assert build.ENGINE_FORMAT != "1" and builder.model_hash("mvloc") != old


# ---------------------------------------------------------------------------------------------- parity end to end
def test_predictor_on_onnxruntime_matches_torch_per_vertex(tiny_model, anny_body, ort_stages, image, tmp_path):
    """Per-vertex probabilities within 1e-4 (fp32); SAM embeddings of a new mesh computed by each backend."""
    import trimesh

    ref = ContactPredictor.from_loaded(tiny_model, body_model=anny_body, cache_dir=str(tmp_path / "torch"))
    ours = ContactPredictor.from_loaded(tiny_model, body_model=anny_body, cache_dir=str(tmp_path / "ort"))
    ours.stages = ort_stages
    ours.embedding_cache.encoder = ort_stages.embed_images
    assert ours.backend_name == "onnxruntime" and ref.backend_name == "torch"
    for objects in (OBJECTS, ["cup"]):
        a, b = ref.predict(image, objects), ours.predict(image, objects)
        for ca, cb in zip(a.contacts, b.contacts, strict=True):
            assert ca.found and cb.found and ca.text == cb.text
            assert np.abs(ca.human_probs - cb.human_probs).max() <= 1e-4
            assert np.abs(ca.view_masks - cb.view_masks).max() <= 1e-4
    mesh = trimesh.creation.box(extents=(0.4, 0.1, 0.2)).subdivide()
    a = ref.predict_object(image, mesh.vertices, mesh.faces, "box").contacts[0]
    b = ours.predict_object(image, mesh.vertices, mesh.faces, "box").contacts[0]
    assert ours.embedding_cache.hits["computed"] >= 1  # the ORT SAM encoder embedded the new mesh's renders
    assert np.abs(a.object_probs - b.object_probs).max() <= 1e-4


def test_predictor_from_config_builds_the_configured_backend(engine_dir, tmp_path, caplog):
    from interactvlm_ros.config import load_config

    cfg = load_config(None, [f"engines.cache_dir={engine_dir}", "inference.backend=onnxruntime",
                             f"cache.dir={tmp_path}"])
    p = ContactPredictor.from_config(cfg)
    assert p.backend_name == "onnxruntime" and set(p.stages.runners) == set(STAGES)
    cfg = load_config(None, ["inference.backend=torch", f"cache.dir={tmp_path}"])
    assert ContactPredictor.from_config(cfg).backend_name == "torch"
    if importlib.util.find_spec("tensorrt") is None:  # a backend that cannot be set up: logged, torch runs
        cfg = load_config(None, ["inference.backend=tensorrt", f"cache.dir={tmp_path}",
                                 f"engines.cache_dir={engine_dir}"])
        with caplog.at_level("ERROR", logger="interactvlm.engines"):
            assert ContactPredictor.from_config(cfg).backend_name == "torch"
        assert "inference.backend=tensorrt could not be set up" in caplog.text
    assert resolve_backend("onnxruntime", "cpu") == "onnxruntime"
    with pytest.raises(ValueError, match="unknown inference backend"):
        resolve_backend("tvm", "cpu")


# ---------------------------------------------------------------------------------------------- the cache
def _vision_artifacts(builder):
    return builder.cache.path(builder.onnx_key("vision")), builder.cache.path(builder.backend_key("vision"))


def test_keys_name_stage_hash_backend_precision_arch_and_runtime(builder):
    onnx_dir, ort_dir = _vision_artifacts(builder)
    h = builder.model_hash("vision")[:16]
    assert onnx_dir.name == f"vision-{h}-onnx-fp32-any-{builder.onnx_key('vision').runtime}"
    assert ort_dir.name == f"vision-{h}-onnxruntime-fp32-cpu-ort{ort.__version__}"
    assert builder.model_hash("vision") != builder.model_hash("llm")
    manifest = json.loads((ort_dir / "manifest.json").read_text())
    assert manifest["key"]["backend"] == "onnxruntime" and ONNX_FILE in manifest["files"]


@pytest.mark.parametrize("damage", ["truncate", "garble", "manifest"])
def test_a_corrupt_cached_file_is_reported_and_rebuilt(tiny_model, builder, damage, caplog):
    onnx_dir, ort_dir = _vision_artifacts(builder)
    for folder in (onnx_dir, ort_dir):
        path = folder / ONNX_FILE
        data = path.read_bytes()
        if damage == "truncate":
            path.write_bytes(data[: len(data) // 3])
        elif damage == "garble":
            path.write_bytes(data[:100] + bytes(255 - c for c in data[100:400]) + data[400:])
        else:
            (folder / "manifest.json").write_text("{not json")
    fresh = EngineBuilder(tiny_model.model, builder.cache.root, "onnxruntime", threads=1)
    with caplog.at_level("WARNING", logger="interactvlm.engines"):
        runner = fresh.runner("vision")
    assert "rebuilding" in caplog.text
    assert fresh.cache.check(onnx_dir) == "" and fresh.cache.check(ort_dir) == ""
    pixels = torch.randn(1, 3, 112, 112)
    with torch.no_grad():
        ref = tiny_model.model.encode_image(pixels)
    np.testing.assert_allclose(runner(pixels)[0].numpy(), ref.numpy(), atol=1e-5, rtol=0)


def test_a_plan_that_its_runtime_rejects_is_rebuilt(tmp_path):
    """Digest intact but the runtime refuses the file (e.g. copied from another GPU): rebuilt, not a crash."""
    cache = EngineCache(tmp_path)
    key = ArtifactKey("llm", "0" * 16, "tensorrt", "fp16", "sm89", "trt10.9.0")
    builds = []

    def build(folder):
        builds.append(1)
        (folder / "model.plan").write_bytes(b"good" if len(builds) > 1 else b"bad")

    def load(folder):
        data = (folder / "model.plan").read_bytes()
        if data != b"good":
            raise RuntimeError("deserialize_cuda_engine returned None")
        return data

    with pytest.raises(CorruptArtifact):
        cache.get_or_build(key, build, load)  # freshly built and still rejected: an error, named
    assert cache.get_or_build(key, build, load) == b"good" and len(builds) == 2
    assert cache.get_or_build(key, build, load) == b"good" and len(builds) == 2  # cached now


def test_force_rebuild_rebuilds_valid_artifacts_once(tiny_model, builder):
    onnx_dir, ort_dir = _vision_artifacts(builder)
    builder.runner("vision")
    before = (onnx_dir / "manifest.json").stat().st_mtime_ns, (ort_dir / "manifest.json").stat().st_mtime_ns
    forced = EngineBuilder(tiny_model.model, builder.cache.root, "onnxruntime", force_rebuild=True, threads=1)
    forced.runner("vision")
    after = (onnx_dir / "manifest.json").stat().st_mtime_ns, (ort_dir / "manifest.json").stat().st_mtime_ns
    assert after[0] != before[0] and after[1] != before[1]
    forced.runner("vision")  # once per builder: no second rebuild
    assert (ort_dir / "manifest.json").stat().st_mtime_ns == after[1]


def test_an_artifact_of_another_runtime_or_gpu_is_not_used(tiny_model, builder):
    key = builder.backend_key("vision")
    other = replace(key, runtime="ort0.0.1")
    assert builder.cache.path(other) != builder.cache.path(key)
    (builder.cache.root / other.name).mkdir()
    (builder.cache.root / other.name / "manifest.json").write_text(json.dumps({"key": other.__dict__, "files": {}}))
    # copied under the current key's name: the manifest still says which runtime built it
    src = builder.cache.root / other.name
    assert "built for" in builder.cache.check(src, key)


def test_concurrent_builders_build_once_and_failed_builds_leave_nothing(tmp_path):
    cache = EngineCache(tmp_path)
    key = ArtifactKey("mvloc", "1" * 16, "onnxruntime", "fp32", "cpu", "ort1.0")
    calls = []

    def build(folder):
        calls.append(threading.get_ident())
        time.sleep(0.3)
        (folder / "model.onnx").write_bytes(b"x" * 1000)

    results = []
    threads = [threading.Thread(target=lambda: results.append(
        cache.get_or_build(key, build, lambda f: (f / "model.onnx").read_bytes()))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and results == [b"x" * 1000] * 3

    bad = replace(key, stage="vision")

    def failing(folder):
        (folder / "model.onnx").write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        cache.get_or_build(bad, failing, lambda f: f)
    assert not cache.path(bad).exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp")] == []


# ---------------------------------------------------------------------------------------------- CLI + bench
def test_engines_cli_build_list_clean(tmp_path, capsys):
    from interactvlm_ros.cli.main import main

    common = ["--set", f"engines.cache_dir={tmp_path}", "--set", "model.name=tiny"]  # pinned: the default may change
    assert main(["engines", "build", "--stages", "vision", "mvloc", *common]) == 0
    assert "onnxruntime engines for tiny ready" in capsys.readouterr().out
    assert main(["engines", "list", "--json", *common]) == 0
    rows = json.loads(capsys.readouterr().out)["artifacts"]
    assert {(r["stage"], r["backend"]) for r in rows} == {
        ("vision", "onnx"), ("vision", "onnxruntime"), ("mvloc", "onnx"), ("mvloc", "onnxruntime")}
    assert all(r["ok"] for r in rows)
    stale = next(p for p in tmp_path.iterdir() if p.name.startswith("mvloc-") and "-onnxruntime-" in p.name)
    (stale / ONNX_FILE).write_bytes(b"garbage")
    (tmp_path / "tensorrt-timing-cache-sm89-trt0.0.1.bin").write_bytes(b"old")  # another TensorRT version
    assert main(["engines", "clean", "--stale", *common]) == 0
    assert "removed 1 artifact(s) and 1 TensorRT timing cache(s)" in capsys.readouterr().out
    assert not stale.exists()
    assert main(["engines", "clean", *common]) == 0
    assert "removed 3 artifact(s)" in capsys.readouterr().out
    assert main(["engines", "list", "--json", *common]) == 0
    assert json.loads(capsys.readouterr().out)["artifacts"] == []


def test_engines_bench_is_registered():
    from interactvlm_ros.benchmarks import BENCHES

    assert BENCHES["engines"] == "interactvlm_ros.benchmarks.engines:run"


def test_tensorrt_profiles_cover_the_dynamic_axes_consistently(tiny_model):
    """Checked without TensorRT: min <= opt <= max, one shape triple per dynamic input, KV/sequence axes agree."""
    from interactvlm_ros.engines.stages import optimization_profile, stage_spec

    m = tiny_model.model
    for stage in STAGES:
        prof = optimization_profile(m, stage, max_objects=8, max_tokens=256)
        dynamic_inputs = {n for n in stage_spec(stage).inputs if n in stage_spec(stage).dynamic}
        assert set(prof) == dynamic_inputs, stage
        for lo, opt, hi in prof.values():
            assert len(lo) == len(opt) == len(hi)
            assert all(a <= b <= c for a, b, c in zip(lo, opt, hi, strict=True))
    llm = optimization_profile(m, "llm", max_objects=8, max_tokens=256)
    assert llm["past_key_values"][0][4] == 0  # the first prefill has an empty past
    assert llm["inputs_embeds"][2][:2] == (8, 256) and llm["attention_mask"][2] == (8, 256)
    opt = {n: v[1] for n, v in llm.items()}
    assert opt["attention_mask"][1] == opt["past_key_values"][4] + opt["inputs_embeds"][1]
    mv = optimization_profile(m, "mvloc", max_objects=8)
    for i in range(3):  # queries agree with the index, render sets with their cameras
        assert mv["contact_states"][i][0] == mv["render_index"][i][0]
        assert mv["image_embeddings"][i][0] == mv["cam_params"][i][0]
    assert mv["image_embeddings"][2] == (8, 4, 256, 16, 16) and mv["render_index"][2] == (8,)


@pytest.mark.slow
def test_engines_bench_reports_the_contract_keys(tmp_path):
    from types import SimpleNamespace

    from interactvlm_ros.benchmarks.engines import run
    from interactvlm_ros.config import load_config

    cfg = load_config(None, [f"engines.cache_dir={tmp_path}"])
    out = run(cfg, SimpleNamespace(quick=True))
    assert set(out["stages"]) == {"vision", "llm_prefill", "llm_decode", "mvloc", "sam_encoder", "end_to_end"}
    for row in out["stages"].values():
        assert row["torch_ms"] > 0 and row["onnxruntime_ms"] > 0
    assert out["max_abs_diff_onnxruntime"] <= 1e-4
    assert all(row["max_abs_diff_onnxruntime"] <= 1e-4 for name, row in out["stages"].items() if name != "end_to_end")
    if not out["cuda"]["available"]:
        assert not any("tensorrt_ms" in row or "cuda_torch_ms" in row for row in out["stages"].values())
