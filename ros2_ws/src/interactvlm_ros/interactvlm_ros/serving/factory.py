"""The one switch between a local model and a Triton server (``inference.backend``)."""

from __future__ import annotations


def load_predictor(cfg):
    """``inference.backend: triton`` -> a :class:`~interactvlm_ros.serving.client.TritonContactPredictor` on
    ``inference.triton_url`` (nothing is loaded locally and the server need not be up yet), wrapped in a
    :class:`~interactvlm_ros.serving.fallback.FallbackPredictor` when ``inference.fallback`` is ``local``; any
    other backend -> ``ContactPredictor.from_config(cfg)``. The node, ``infer``, ``bag`` and ``eval`` load their
    predictor here."""
    if cfg.inference.backend == "triton":
        from interactvlm_ros.serving.client import TritonContactPredictor

        client = TritonContactPredictor.from_config(cfg)
        if cfg.inference.fallback == "local":
            from interactvlm_ros.serving.fallback import FallbackPredictor

            return FallbackPredictor.from_config(cfg, client)
        return client
    from interactvlm_ros.model import ContactPredictor

    return ContactPredictor.from_config(cfg)
