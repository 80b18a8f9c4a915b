"""The InteractVLM model: VLM (CLIP → projector → LLaMA), Γ, FeatLift, SAM MV-Loc, checkpoints, predictor.

Heavy imports are lazy: ``from interactvlm_ros.model import ContactPredictor`` loads torch/transformers only
when that name is used.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "ContactPredictor": "interactvlm_ros.model.predictor",
    "InteractVLMConfig": "interactvlm_ros.model.configuration",
    "InteractVLMForCausalLM": "interactvlm_ros.model.interactvlm",
    "load_model": "interactvlm_ros.model.checkpoint",
    "load_preset": "interactvlm_ros.model.configuration",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'interactvlm_ros.model' has no attribute {name!r}")
