"""Body models (Anny by default; SMPL-X / SMPL-H / SMPL from user files) and topology transfer.

``load_body_model(cfg_or_name, **kw) -> BodyModel``; see ``base.BodyModel`` for the interface.
"""

from __future__ import annotations

from interactvlm_ros.body.base import BodyModel, BodyOutput

BODY_MODELS = ("anny", "smplx", "smplh", "smpl")


def load_body_model(cfg_or_name="anny", **kw) -> BodyModel:
    """Build the configured body model.

    ``cfg_or_name`` is a Config (reads ``body.model``, ``body.model_dir``, ``cache.dir``) or a model name.
    Keyword arguments: ``model_dir`` (SMPL family), ``cache`` (Anny cache dir), ``progress`` (bool).
    """
    if isinstance(cfg_or_name, str):
        name, model_dir, cache_root = cfg_or_name, kw.pop("model_dir", ""), kw.pop("cache_root", "")
    else:
        cfg = cfg_or_name
        name, model_dir, cache_root = cfg.body.model, kw.pop("model_dir", cfg.body.model_dir), cfg.cache.dir
    if name not in BODY_MODELS:
        raise ValueError(f"unknown body model {name!r}; choose one of {', '.join(BODY_MODELS)}")
    if name == "anny":
        from interactvlm_ros.body.anny_body import AnnyBody, anny_cache_dir

        cache = kw.pop("cache", None) or anny_cache_dir(cache_root)
        return AnnyBody(cache=cache, **kw)
    from interactvlm_ros.body.smpl_family import SmplFamilyBody

    return SmplFamilyBody(name, model_dir, **kw)


__all__ = ["BODY_MODELS", "BodyModel", "BodyOutput", "load_body_model"]
