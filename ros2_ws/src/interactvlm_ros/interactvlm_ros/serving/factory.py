"""The one switch between a local model and a Triton server (``inference.backend``)."""

from __future__ import annotations


def load_predictor(cfg):
    """``inference.backend: triton`` -> a :class:`~interactvlm_ros.serving.client.TritonContactPredictor` on
    ``inference.triton_url`` (nothing is loaded locally and the server need not be up yet); any other backend ->
    ``ContactPredictor.from_config(cfg)``."""
    if cfg.inference.backend == "triton":
        from interactvlm_ros.serving.client import TritonContactPredictor

        return TritonContactPredictor.from_config(cfg)
    from interactvlm_ros.model import ContactPredictor

    return ContactPredictor.from_config(cfg)
