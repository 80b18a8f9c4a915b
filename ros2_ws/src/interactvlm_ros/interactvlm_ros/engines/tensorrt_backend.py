"""TensorRT 10: build a serialized plan from an exported ONNX stage, and run it on CUDA torch tensors.

Build (``build_plan``): ``trt.Builder`` -> network (strongly typed when the ONNX graph is already fp16/bf16,
else weakly typed with ``BuilderFlag.FP16``/``BF16`` for reduced precision) -> ``trt.OnnxParser.parse_from_file``
(follows external data) -> builder config with a workspace limit, a persistent timing cache
(``create_timing_cache`` / ``set_timing_cache``, serialized back after the build) and one optimization profile
covering the stage's dynamic axes -> ``build_serialized_network``.

Run (``TensorRTRunner``): ``Runtime.deserialize_cuda_engine`` -> ``create_execution_context``; per call
``set_input_shape`` for every input, ``set_tensor_address(name, tensor.data_ptr())`` for inputs and for outputs
allocated as torch CUDA tensors of the shapes the context reports, ``execute_async_v3`` on torch's current CUDA
stream. No host copies.

INT8/FP8 are not offered: TensorRT 10 needs explicitly quantized (Q/DQ) graphs for them, which require a
calibration set and a quantization toolkit this project does not ship; FP16 is where it pays here.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from interactvlm_ros.files.atomic import atomic_write_bytes

LOG = logging.getLogger("interactvlm.engines")
PLAN_FILE = "model.plan"
DEFAULT_WORKSPACE = 4 << 30


def import_tensorrt():
    """``import tensorrt`` with a clear error (TensorRT is installed separately on NVIDIA machines)."""
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise RuntimeError("inference.backend=tensorrt needs the TensorRT 10 Python package (pip install "
                           "'tensorrt-cu12>=10,<11' --extra-index-url https://pypi.nvidia.com, or the GPU Docker "
                           f"image): {exc}") from exc
    if int(trt.__version__.split(".")[0]) < 10:
        raise RuntimeError(f"TensorRT {trt.__version__} found; the tensorrt backend needs TensorRT 10")
    return trt


def runtime_tag() -> str:
    return f"trt{import_tensorrt().__version__}"


def gpu_arch(device: torch.device | str | None = None) -> str:
    """Compute capability of the CUDA device as ``sm<major><minor>`` (engines are not portable across these)."""
    if not torch.cuda.is_available():
        raise RuntimeError("the tensorrt backend needs a CUDA device visible to torch")
    major, minor = torch.cuda.get_device_capability(device)
    return f"sm{major}{minor}"


def _torch_dtype(trt, dtype) -> torch.dtype:
    table = {trt.float32: torch.float32, trt.float16: torch.float16, trt.int32: torch.int32,
             trt.int64: torch.int64, trt.bool: torch.bool, trt.int8: torch.int8}
    if hasattr(trt, "bfloat16"):
        table[trt.bfloat16] = torch.bfloat16
    if dtype not in table:
        raise TypeError(f"unsupported TensorRT tensor type {dtype}")
    return table[dtype]


def _read(path: Path) -> bytes:
    return path.read_bytes() if path.is_file() else b""


def build_plan(onnx_path: str | Path, out_path: str | Path, profile: dict[str, tuple[tuple, tuple, tuple]],
               precision: str = "fp16", timing_cache: str | Path | None = None,
               workspace_bytes: int = DEFAULT_WORKSPACE) -> Path:
    """Build ``onnx_path`` into a serialized plan at ``out_path``.

    ``profile``: input name -> (min, opt, max) shapes for the dynamic inputs; ``precision``: ``fp32`` (TF32
    allowed), ``fp16`` or ``bf16``; ``timing_cache``: file read before and written (atomically) after the build.
    """
    trt = import_tensorrt()
    import onnx

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    graph_types = {i.type.tensor_type.elem_type for i in graph.input}
    reduced_graph = bool(graph_types & {onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16})
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if reduced_graph else 0
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT could not parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_bytes))
    if not reduced_graph:
        if precision == "fp16":
            config.set_flag(trt.BuilderFlag.FP16)
        elif precision == "bf16":
            config.set_flag(trt.BuilderFlag.BF16)
        elif precision != "fp32":
            raise ValueError(f"unsupported TensorRT precision {precision!r} (fp32, fp16, bf16)")
    cache_path = Path(timing_cache) if timing_cache else None
    cache = config.create_timing_cache(_read(cache_path) if cache_path else b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
    if profile:
        opt = builder.create_optimization_profile()
        for name, (lo, mid, hi) in profile.items():
            opt.set_shape(name, tuple(lo), tuple(mid), tuple(hi))
        config.add_optimization_profile(opt)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"TensorRT failed to build an engine from {onnx_path} (see the log above)")
    out_path = Path(out_path)
    atomic_write_bytes(out_path, bytes(serialized))
    if cache_path is not None:
        atomic_write_bytes(cache_path, bytes(config.get_timing_cache().serialize()))
    return out_path


class TensorRTRunner:
    """A deserialized plan behind the runner interface: CUDA torch tensors in, CUDA torch tensors out."""

    def __init__(self, plan_path: str | Path, device: torch.device | str = "cuda") -> None:
        trt = import_tensorrt()
        self.trt = trt
        self.device = torch.device(device)
        self.logger = trt.Logger(trt.Logger.WARNING)  # referenced for the runtime's lifetime
        self.runtime = trt.Runtime(self.logger)
        self.engine = self.runtime.deserialize_cuda_engine(Path(plan_path).read_bytes())
        if self.engine is None:
            raise RuntimeError(f"{plan_path} is not a TensorRT plan this TensorRT/GPU can deserialize")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        self.dtypes = {n: _torch_dtype(trt, self.engine.get_tensor_dtype(n)) for n in names}

    def __call__(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if len(tensors) != len(self.inputs):
            raise ValueError(f"expected {len(self.inputs)} inputs ({', '.join(self.inputs)}); got {len(tensors)}")
        bound = []  # converted inputs stay referenced until enqueued (else outputs could reuse their memory)
        for name, t in zip(self.inputs, tensors, strict=True):
            t = t.to(self.device, self.dtypes[name]).contiguous()
            if not self.context.set_input_shape(name, tuple(t.shape)):
                raise ValueError(f"input {name} shape {tuple(t.shape)} is outside the engine's optimization profile")
            # an empty tensor (the LLM's past at the first prefill) still gets a valid address
            buf = t if t.numel() else torch.empty(1, dtype=t.dtype, device=self.device)
            bound.append(buf)
            self.context.set_tensor_address(name, buf.data_ptr())
        outs = []
        for name in self.outputs:
            shape = tuple(self.context.get_tensor_shape(name))
            out = torch.empty(shape, dtype=self.dtypes[name], device=self.device)
            self.context.set_tensor_address(name, out.data_ptr())
            outs.append(out)
        stream = torch.cuda.current_stream(self.device)
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise RuntimeError("TensorRT execute_async_v3 failed")
        del bound  # freed after the enqueue: torch's allocator reuses memory in stream order
        return tuple(outs)  # ordered on the current stream: torch ops that read them wait for TensorRT
