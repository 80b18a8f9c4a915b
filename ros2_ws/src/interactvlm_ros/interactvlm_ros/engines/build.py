"""Build (or find in the cache) every artifact a backend needs and assemble :class:`InferenceStages`.

Per stage: the ONNX export (backend-independent, key ``...-onnx-<precision>-any-torch<ver>-opset17``), then
for ``onnxruntime`` an ORT-optimised graph saved for this execution provider and ORT version (key
``...-onnxruntime-<precision>-cpu|sm<cc>-ort<ver>``), for ``tensorrt`` a serialized plan (key
``...-tensorrt-<precision>-sm<cc>-trt<ver>``, plus a shared timing cache). Missing, stale or damaged artifacts
are built, with a progress bar, at start-up (``ContactPredictor.from_config``) or ahead of time
(``interactvlm engines build``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from tqdm import tqdm

from interactvlm_ros.engines.fingerprint import module_weights_hash

from .backends import BACKENDS, InferenceStages, OrtRunner
from .cache import ArtifactKey, EngineCache
from .export import ONNX_FILE, export_stage, exporter_tag
from .stages import STAGES, optimization_profile, stage_module, stage_spec

LOG = logging.getLogger("interactvlm.engines")
ENGINE_FORMAT = "2"  # bump when a stage's graph changes for the same weights (2: MV-Loc over N render sets)
TIMING_CACHE = "tensorrt-timing-cache-{arch}-{runtime}.bin"
_PRECISION = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}


def precision_of(dtype: torch.dtype) -> str:
    return _PRECISION[dtype]


def stage_hash(model, stage: str, mask_size: int | None = None) -> str:
    """Hash of what determines ``stage``'s graph: its weights, static sizes, I/O spec and the stage code version."""
    import hashlib

    module = stage_module(model, stage, mask_size)
    h = hashlib.blake2b(digest_size=16)
    spec = stage_spec(stage)
    cfg = model.config  # sizes and constants baked into the graph (e.g. rope_theta, eps, resolutions)
    sizes = (cfg.vision, cfg.text, cfg.sam, cfg.num_views, model.sam.image_size, mask_size if stage == "mvloc" else 0)
    h.update(f"{ENGINE_FORMAT}|{stage}|{spec}|{sizes}|{module_weights_hash(module)}".encode())
    return h.hexdigest()


def ort_providers(device: torch.device) -> list[str]:
    """CUDA execution provider first where the model runs on CUDA and ORT has it; CPU always."""
    import onnxruntime as ort

    if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class EngineBuilder:
    """Builds/loads the artifacts of one model for one backend in ``cache_dir``.

    Args:
        model: an ``InteractVLMForCausalLM`` (its device and dtype decide the graph precision).
        backend: ``onnxruntime`` or ``tensorrt`` (``torch`` needs no artifacts).
        force_rebuild: rebuild every artifact once, even when a valid cached one exists.
        mask_size: MV-Loc output resolution (default: the model's ``render_resolution``).
        max_objects: TensorRT profile bound on objects per frame (LLM batch, contact tokens).
        max_tokens: TensorRT profile bound on the LLM sequence (default: min(1024, context length); TensorRT
            sizes activation memory for the profile's maximum, ``[B,heads,T,T]`` attention scores included).
        threads: ONNX Runtime intra-op threads (default: torch's setting).
        tensorrt_precision: ``fp16``/``bf16``/``fp32`` for TensorRT plans built from fp32 graphs (default: the
            model's dtype; graphs exported in fp16/bf16 always build strongly typed in their own precision).
    """

    def __init__(self, model, cache_dir: str | Path, backend: str, force_rebuild: bool = False,
                 progress: bool = False, mask_size: int | None = None, max_objects: int = 16,
                 threads: int | None = None, tensorrt_precision: str | None = None,
                 max_tokens: int | None = None) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown inference backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        self.model = model
        self.cache = EngineCache(cache_dir)
        self.backend = backend
        self.force = force_rebuild
        self.progress = progress
        self.mask_size = int(mask_size or model.config.render_resolution)
        self.max_objects = max_objects
        self.max_tokens = int(max_tokens or min(1024, model.config.text.max_position_embeddings))
        self.threads = threads
        self.precision = precision_of(model.dtype)
        self.tensorrt_precision = tensorrt_precision if self.precision == "fp32" and tensorrt_precision else None
        self._hashes: dict[str, str] = {}
        self._forced: set[str] = set()

    # ------------------------------------------------------------------------------------ keys
    def model_hash(self, stage: str) -> str:
        if stage not in self._hashes:
            self._hashes[stage] = stage_hash(self.model, stage, self.mask_size)
        return self._hashes[stage]

    def onnx_key(self, stage: str) -> ArtifactKey:
        return ArtifactKey(stage, self.model_hash(stage), "onnx", self.precision, "any", exporter_tag())

    def backend_key(self, stage: str) -> ArtifactKey:
        if self.backend == "onnxruntime":
            import onnxruntime as ort

            cuda = ort_providers(self.model.device)[0] == "CUDAExecutionProvider"
            arch = _cuda_arch(self.model.device) if cuda else "cpu"
            return ArtifactKey(stage, self.model_hash(stage), "onnxruntime", self.precision, arch,
                               f"ort{ort.__version__}")
        if self.backend == "tensorrt":
            import hashlib

            from .tensorrt_backend import gpu_arch, runtime_tag

            precision = self.tensorrt_precision or self.precision
            # the optimization profile is part of the plan: other bounds, other plan
            profile = optimization_profile(self.model, stage, self.max_objects, self.max_tokens)
            h = hashlib.blake2b(f"{self.model_hash(stage)}|{sorted(profile.items())}".encode(), digest_size=16)
            return ArtifactKey(stage, h.hexdigest(), "tensorrt", precision, gpu_arch(self.model.device),
                               runtime_tag())
        raise ValueError(f"backend {self.backend!r} has no built artifacts")

    def _force(self, key: ArtifactKey) -> bool:
        """``force_rebuild`` applies once per artifact and builder."""
        if self.force and key.name not in self._forced:
            self._forced.add(key.name)
            return True
        return False

    # ------------------------------------------------------------------------------------ artifacts
    def onnx(self, stage: str) -> Path:
        """The checked ONNX export of ``stage`` (exported now when missing or damaged)."""
        import onnx

        def load(folder: Path) -> Path:
            onnx.checker.check_model(str(folder / ONNX_FILE))  # raises on a garbled graph
            return folder / ONNX_FILE

        key = self.onnx_key(stage)
        return self.cache.get_or_build(key, lambda tmp: export_stage(self.model, stage, tmp, self.mask_size),
                                       load, force=self._force(key))

    def _ort_runner(self, stage: str) -> OrtRunner:
        import onnxruntime as ort

        src = self.onnx(stage)
        providers = ort_providers(self.model.device)
        large = sum(p.stat().st_size for p in src.parent.iterdir()) > (1 << 30)

        def build(tmp: Path) -> None:
            opts = ort.SessionOptions()
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
            opts.optimized_model_filepath = str(tmp / ONNX_FILE)
            if large:  # > 2 GB protobuf limit: initializers to one external file
                opts.add_session_config_entry("session.optimized_model_external_initializers_file_name",
                                              f"{ONNX_FILE}.data")
                opts.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes",
                                              "1024")
            ort.InferenceSession(str(src), sess_options=opts, providers=providers)

        def load(folder: Path) -> OrtRunner:
            return OrtRunner(folder / ONNX_FILE, providers, self.threads, optimized=True, device=self.model.device)

        key = self.backend_key(stage)
        return self.cache.get_or_build(key, build, load, force=self._force(key))

    def _tensorrt_runner(self, stage: str):
        from .tensorrt_backend import PLAN_FILE, TensorRTRunner, build_plan

        src = self.onnx(stage)
        key = self.backend_key(stage)
        timing = self.cache.root / TIMING_CACHE.format(arch=key.arch, runtime=key.runtime)
        profile = optimization_profile(self.model, stage, self.max_objects, self.max_tokens)

        def build(tmp: Path) -> None:
            build_plan(src, tmp / PLAN_FILE, profile, key.precision, timing_cache=timing)

        def load(folder: Path) -> TensorRTRunner:
            return TensorRTRunner(folder / PLAN_FILE, self.model.device)

        return self.cache.get_or_build(key, build, load, force=self._force(key))

    def runner(self, stage: str):
        if self.backend == "onnxruntime":
            return self._ort_runner(stage)
        if self.backend == "tensorrt":
            return self._tensorrt_runner(stage)
        raise ValueError(f"backend {self.backend!r} has no runners")

    def build(self, stages: tuple[str, ...] = STAGES) -> InferenceStages:
        """Every stage's runner (built when needed, with a progress bar) as :class:`InferenceStages`."""
        if self.backend == "torch":
            return InferenceStages(self.model, "torch")
        if "vision" in stages and not self.model.has_vision_tower():
            stages = tuple(s for s in stages if s != "vision")
            LOG.warning("the model has no vision tower loaded: the vision stage stays unbuilt")
        runners = {}
        bar = tqdm(stages, desc=f"{self.backend} engines", unit="stage", disable=not self.progress)
        for stage in bar:
            bar.set_postfix_str(stage)
            runners[stage] = self.runner(stage)
        return InferenceStages(self.model, self.backend, runners, mask_size=self.mask_size)


def _cuda_arch(device: torch.device) -> str:
    major, minor = torch.cuda.get_device_capability(device)
    return f"sm{major}{minor}"


def resolve_backend(backend: str, device: torch.device | str) -> str:
    """The backend to run: ``onnxruntime`` for a CUDA model falls back to ``torch`` (with a warning) when ORT has
    no CUDA execution provider (host-side ORT for a GPU model would be slower than torch on the GPU)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown inference backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "onnxruntime" and torch.device(device).type == "cuda":
        if ort_providers(torch.device(device))[0] != "CUDAExecutionProvider":
            LOG.warning("inference.backend=onnxruntime but this ONNX Runtime has no CUDA provider "
                        "(onnxruntime-gpu); running the CUDA model with torch (or use inference.backend=tensorrt)")
            return "torch"
    return backend


def load_stages(model, backend: str, cache_dir: str | Path | None = None, force_rebuild: bool = False,
                progress: bool = False, **kw) -> InferenceStages:
    """:class:`InferenceStages` of ``model`` on ``backend`` (artifacts in ``cache_dir``, default
    ``config.paths.engines_dir()``)."""
    if backend == "torch":
        return InferenceStages(model, "torch")
    from interactvlm_ros.config.paths import engines_dir

    builder = EngineBuilder(model, cache_dir or engines_dir(), backend, force_rebuild, progress, **kw)
    return builder.build()
