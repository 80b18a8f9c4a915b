"""SAM embedding cache: computed once, reused from memory and disk, keyed by weights and render content."""

import numpy as np
import pytest
import torch

from interactvlm_ros.engines.fingerprint import module_weights_hash
from interactvlm_ros.model.embedding_cache import SamEmbeddingCache, images_hash
from interactvlm_ros.model.sam import Sam

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture()
def sam():
    torch.manual_seed(0)
    return Sam.from_config("tiny").eval()


@pytest.fixture(scope="module")
def renders():
    return np.random.default_rng(0).integers(0, 255, (4, 256, 256, 3), dtype=np.uint8)


def test_computed_once_then_memory_then_disk(sam, renders, tmp_path):
    cache = SamEmbeddingCache(sam, tmp_path, progress=False)
    emb = cache.get(renders)
    assert emb.shape == (4, 256, 16, 16)
    torch.testing.assert_close(emb, sam.embed_images(renders))
    files = list(tmp_path.glob("*.pt"))
    assert len(files) == 1 and not list(tmp_path.glob("*.tmp"))
    assert cache.get(renders) is emb and cache.hits == {"memory": 1, "disk": 0, "computed": 1}
    fresh = SamEmbeddingCache(sam, tmp_path, progress=False)  # a new process: read from disk
    torch.testing.assert_close(fresh.get(renders), emb)
    assert fresh.hits == {"memory": 0, "disk": 1, "computed": 0}


def test_key_changes_with_content_and_weights(sam, renders, tmp_path):
    cache = SamEmbeddingCache(sam, tmp_path, progress=False)
    k1 = cache.key(renders)
    other = renders.copy()
    other[0, 0, 0, 0] ^= 1
    assert cache.key(other) != k1
    assert cache.key(renders, content_key="anny-abc-views-256") != k1
    emb = cache.get(renders)
    with torch.no_grad():
        sam.image_encoder.neck[0].weight.mul_(1.5)  # in-place change: version counter moves
    k2 = cache.key(renders)
    assert k2 != k1
    emb2 = cache.get(renders)
    assert cache.hits["computed"] == 2
    assert not torch.allclose(emb, emb2)
    torch.testing.assert_close(emb2, sam.embed_images(renders))
    # weights replaced wholesale (load_state_dict of other weights) also invalidates
    torch.manual_seed(5)
    sam.load_state_dict(Sam.from_config("tiny").state_dict())
    assert cache.key(renders) not in (k1, k2)


def test_content_key_skips_image_hashing_and_corrupt_files_are_recomputed(sam, renders, tmp_path):
    cache = SamEmbeddingCache(sam, tmp_path, progress=False)
    emb = cache.get(renders, content_key="body-topo-123")
    path = cache.path(cache.key(renders, content_key="body-topo-123"))
    path.write_bytes(b"truncated")
    fresh = SamEmbeddingCache(sam, tmp_path, progress=False)
    torch.testing.assert_close(fresh.get(renders, content_key="body-topo-123"), emb)
    assert fresh.hits["computed"] == 1
    assert torch.load(path, weights_only=True)["embeddings"].shape == (4, 256, 16, 16)  # rewritten, whole


def test_hashes_and_bad_input(sam, renders, tmp_path):
    assert images_hash(renders) == images_hash(renders.copy())
    assert images_hash(renders) != images_hash(renders[:3])
    h = module_weights_hash(sam.image_encoder)
    assert h == module_weights_hash(sam.image_encoder) and len(h) == 32
    assert module_weights_hash(sam.image_encoder.to(torch.bfloat16)) != h
    with torch.device("meta"):
        meta = Sam.from_config("tiny")
    with pytest.raises(ValueError, match="meta device"):
        module_weights_hash(meta.image_encoder)
    cache = SamEmbeddingCache(sam, tmp_path, progress=False)
    with pytest.raises(ValueError, match=r"\[V, H, W, 3\]"):
        cache.get(renders[0])
    with pytest.raises(ValueError, match=r"\[V, H, W, 3\]"):
        cache.get(torch.zeros(4, 8, 8, 3))
