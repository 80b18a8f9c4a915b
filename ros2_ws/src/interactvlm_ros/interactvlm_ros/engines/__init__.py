"""Inference backends and engines: the per-frame stages exported to ONNX, run by torch, ONNX Runtime or
TensorRT behind one interface, with a cache of built artifacts (``engines/`` at the repository root)."""

from .backends import BACKENDS, InferenceStages, OrtRunner
from .build import EngineBuilder, load_stages
from .cache import ArtifactKey, EngineCache
from .stages import STAGES

__all__ = ["BACKENDS", "STAGES", "ArtifactKey", "EngineBuilder", "EngineCache", "InferenceStages", "OrtRunner",
           "load_stages"]
