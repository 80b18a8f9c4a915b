"""ONNX export of one stage (legacy TorchScript exporter, opset 17) followed by ``onnx.checker``.

Graphs are exported in the model's own dtype (fp32 on CPU; fp16/bf16 for models loaded that way on a GPU, which
TensorRT then builds as strongly typed networks). Models over 2 GB are written with external data next to
``model.onnx`` (the exporter does this by itself); the checker is given the path so it follows the external
data.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from .stages import example_inputs, stage_module, stage_spec

OPSET = 17
ONNX_FILE = "model.onnx"


def exporter_tag() -> str:
    """The ``runtime`` part of an ONNX artifact key: what produced the graph."""
    return f"torch{torch.__version__.split('+')[0]}-opset{OPSET}"


@torch.no_grad()
def export_stage(model, stage: str, folder: str | Path, mask_size: int | None = None) -> Path:
    """Export ``stage`` of ``model`` to ``folder/model.onnx``, check it, return the path."""
    import onnx

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    module = stage_module(model, stage, mask_size)
    spec = stage_spec(stage)
    inputs = example_inputs(model, stage, mask_size)
    path = folder / ONNX_FILE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter is deprecated in favour of dynamo=True
        torch.onnx.export(module, tuple(inputs[n] for n in spec.inputs), str(path), dynamo=False,
                          opset_version=OPSET, input_names=list(spec.inputs), output_names=list(spec.outputs),
                          dynamic_axes=spec.dynamic or None, do_constant_folding=True)
    onnx.checker.check_model(str(path))
    return path
