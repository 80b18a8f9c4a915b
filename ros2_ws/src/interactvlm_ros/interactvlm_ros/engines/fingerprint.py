"""Content fingerprints of model weights: the key of built engines (``engines/build.py``) and of cached SAM
embeddings (``model/embedding_cache.py``); any change to a weight changes the fingerprint."""

from __future__ import annotations

import hashlib

import torch
from torch import nn


def _tensor_bytes(t: torch.Tensor) -> memoryview:
    t = t.detach().to("cpu").contiguous()
    if t.dtype in (torch.bfloat16, torch.float16):
        t = t.view(torch.int16)
    return memoryview(t.numpy()).cast("B")


def module_weights_hash(module: nn.Module) -> str:
    """blake2b of every parameter and persistent buffer (names, dtypes, shapes, bytes) of ``module``."""
    h = hashlib.blake2b(digest_size=16)
    for name, t in module.state_dict().items():
        if t.is_meta:
            raise ValueError(f"cannot hash weights on the meta device ({name}); load the weights first")
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(_tensor_bytes(t))
    return h.hexdigest()
