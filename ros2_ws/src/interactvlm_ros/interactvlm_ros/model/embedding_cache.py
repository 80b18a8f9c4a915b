"""SAM image embeddings of fixed renders, computed once and cached in memory and on disk.

The renders fed to MV-Loc are fixed (the canonical body) or fixed per object mesh, so their SAM image
embeddings (ViT-H: ``[4, 256, 64, 64]``, minutes on a CPU) are computed once. Entries are keyed by a hash of
the SAM image-encoder weights plus the render content (the images' bytes, or a caller-supplied content key
such as topology hash + views + resolution); changing the weights changes every key. Files live under
``<cache_dir>/sam_embeddings/<key>.pt`` and are written atomically (temp file + ``os.replace``).
"""

from __future__ import annotations

import hashlib
import pickle
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from interactvlm_ros.engines.fingerprint import module_weights_hash
from interactvlm_ros.files.atomic import atomic_path

from ..config.paths import cache_dir as default_cache_dir
from .sam import Sam

SUBDIR = "sam_embeddings"
FORMAT_VERSION = "1"


def images_hash(images: np.ndarray) -> str:
    """blake2b of a render stack (shape, dtype, bytes)."""
    a = np.ascontiguousarray(images)
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{a.dtype}|{a.shape}|".encode())
    h.update(memoryview(a).cast("B"))
    return h.hexdigest()


class SamEmbeddingCache:
    """Memory + disk cache of ``sam.embed_images(renders)`` (``[V, C, h, w]``, float32 on disk).

    ``get(images, content_key=None)`` returns the embeddings on ``sam``'s device and dtype; pass
    ``content_key`` (e.g. ``f"{topology_hash}-{views}-{resolution}"``) to skip hashing the images.
    The weight hash is recomputed when a parameter of the image encoder is replaced or modified in place.
    """

    def __init__(self, sam: Sam, cache_dir: str | Path | None = None, max_memory_entries: int = 16,
                 progress: bool = True) -> None:
        self.sam = sam
        self.dir = Path(cache_dir) if cache_dir is not None else default_cache_dir() / SUBDIR
        self.max_memory_entries = max_memory_entries
        self.progress = progress
        self._memory: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._weights_stamp: tuple | None = None
        self._weights_hash: str | None = None
        self.hits = {"memory": 0, "disk": 0, "computed": 0}
        # computes embeddings on a miss: ``encoder(images, progress=...)``; an inference backend may replace it
        self.encoder = sam.embed_images

    def _stamp(self) -> tuple:
        enc = self.sam.image_encoder
        return tuple((id(t), t._version, t.dtype, t.device) for t in enc.state_dict(keep_vars=True).values())

    def weights_hash(self) -> str:
        """Hash of the image encoder's weights (cached until a weight changes)."""
        stamp = self._stamp()
        if stamp != self._weights_stamp or self._weights_hash is None:
            self._weights_hash = module_weights_hash(self.sam.image_encoder)
            self._weights_stamp = stamp
        return self._weights_hash

    def key(self, images: np.ndarray, content_key: str | None = None) -> str:
        """Cache key: weights hash + render content (+ image size and format version)."""
        content = content_key if content_key is not None else images_hash(images)
        h = hashlib.blake2b(digest_size=20)
        h.update(f"v{FORMAT_VERSION}|{self.sam.image_size}|{self.weights_hash()}|{content}".encode())
        return h.hexdigest()

    def path(self, key: str) -> Path:
        return self.dir / f"{key}.pt"

    def _expected_shape(self, num_images: int) -> tuple[int, ...]:
        grid = self.sam.prompt_encoder.image_embedding_size
        return (num_images, self.sam.prompt_encoder.embed_dim, *grid)

    def _load(self, path: Path, expected: tuple[int, ...]) -> torch.Tensor | None:
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, EOFError, ValueError, IndexError, KeyError, TypeError, AttributeError,
                pickle.UnpicklingError):
            return None  # unreadable or truncated: recompute and overwrite
        emb = data.get("embeddings") if isinstance(data, dict) else None
        if not isinstance(emb, torch.Tensor) or tuple(emb.shape) != expected:
            return None
        return emb

    def _save(self, path: Path, emb: torch.Tensor, key: str) -> None:
        with atomic_path(path) as tmp:
            torch.save({"embeddings": emb.detach().to("cpu", torch.float32).contiguous(), "key": key}, tmp)

    def get(self, images: np.ndarray, content_key: str | None = None) -> torch.Tensor:
        """SAM embeddings ``[V, C, h, w]`` of ``images`` (uint8 ``[V, H, W, 3]``)."""
        if not isinstance(images, np.ndarray) or images.ndim != 4 or images.shape[-1] != 3:
            shape = getattr(images, "shape", type(images).__name__)
            raise ValueError(f"renders must be a numpy uint8 array [V, H, W, 3]; got {shape}")
        key = self.key(images, content_key)
        dtype = next(self.sam.image_encoder.parameters()).dtype
        emb = self._memory.get(key)
        if emb is not None:
            self._memory.move_to_end(key)
            self.hits["memory"] += 1
            return emb
        expected = self._expected_shape(images.shape[0])
        path = self.path(key)
        cpu = self._load(path, expected) if path.exists() else None
        if cpu is not None:
            self.hits["disk"] += 1
            emb = cpu.to(self.sam.device, dtype)
        else:
            self.hits["computed"] += 1
            emb = self.encoder(images, progress=self.progress)
            self._save(path, emb, key)
        self._memory[key] = emb
        while len(self._memory) > self.max_memory_entries:
            self._memory.popitem(last=False)
        return emb

    def clear_memory(self) -> None:
        self._memory.clear()
