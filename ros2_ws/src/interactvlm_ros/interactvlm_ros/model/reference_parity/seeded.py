"""Weights that both implementations can re-create: every tensor drawn from a seed derived from its name.

numpy only (no torch, no package imports): the reference-side script loads this file by path.
``seeded_array(name, shape)`` -> float32: a standard normal of a generator seeded by
``sha256(f"{seed}/{name}")`` (numpy's PCG64, float64 draws), scaled like a trained network: matrices (and conv
kernels) by ``1/sqrt(fan_in)``, 1-D ``*weight`` tensors (norm scales) ``1 + 0.1·z``, other vectors ``0.1·z``.
Buffers that are not weights (``rotary_emb.inv_freq``, CLIP's integer ``position_ids``) are never drawn.
"""

from __future__ import annotations

import hashlib

import numpy as np

NOT_DRAWN_SUFFIXES = ("rotary_emb.inv_freq", "position_ids")


def is_drawn(name: str) -> bool:
    """Whether ``name`` is a weight drawn by :func:`seeded_array` (not a derived buffer)."""
    return not name.endswith(NOT_DRAWN_SUFFIXES)


def name_seed(name: str, seed: int = 0) -> int:
    """The 64-bit generator seed of tensor ``name``."""
    return int.from_bytes(hashlib.sha256(f"{seed}/{name}".encode()).digest()[:8], "little")


def seeded_array(name: str, shape: tuple[int, ...] | list[int], seed: int = 0) -> np.ndarray:
    """The value of tensor ``name`` of ``shape`` (float32)."""
    shape = tuple(int(s) for s in shape)
    z = np.random.Generator(np.random.PCG64(name_seed(name, seed))).standard_normal(shape)
    if len(shape) >= 2:
        z = z / np.sqrt(max(1, int(np.prod(shape[1:]))))
    elif name.endswith("weight"):
        z = 1.0 + 0.1 * z
    else:
        z = 0.1 * z
    return z.astype(np.float32)
