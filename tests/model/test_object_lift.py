"""Object lift of the official checkpoints: InteractVLM's ``ObjectMeshContact3DPredictor`` (pixels with
probability > 0.3 only), checked against a line-by-line port of its per-view scatter loop on maps in the
reference's ``lift2d_dict`` layout (pixel -> 3 vertex ids, -1 background; barycentric weights)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from interactvlm_ros.model.configuration import config_from_official, load_preset
from interactvlm_ros.model.predictor import ContactPredictor
from interactvlm_ros.render.lift import Lifter

MANIFESTS = Path(__file__).resolve().parents[1] / "data" / "official_checkpoint_keys"


def reference_object_lift(seg_maps: torch.Tensor, p2v: np.ndarray, bary: np.ndarray, num_vertices: int,
                          threshold: float = 0.3) -> torch.Tensor:
    """``ObjectMeshContact3DPredictor.forward_inference`` + ``_process_view`` (InteractVLM 79b4bf2,
    model/components.py), batch 1, written out as the reference does it."""
    pred = torch.zeros((1, num_vertices))
    view_count = torch.zeros((1, num_vertices))
    for view_idx in range(seg_maps.shape[0]):
        probs = torch.sigmoid(seg_maps[view_idx])
        binary = probs > threshold
        mask_np = binary.numpy()
        vertices = torch.tensor(p2v[view_idx][mask_np], dtype=torch.long).reshape(-1, 3)
        weights = torch.tensor(bary[view_idx][mask_np], dtype=torch.float32).reshape(-1, 3)
        values = probs[binary].reshape(-1, 1)
        valid = ((vertices >= 0) & (vertices < num_vertices)).all(dim=1)
        vertices, weights, values = vertices[valid], weights[valid], values[valid]
        if vertices.numel() == 0:
            continue
        votes = torch.zeros_like(pred[0])
        counts = torch.zeros_like(view_count[0])
        for i in range(3):
            votes.scatter_add_(0, vertices[:, i], weights[:, i] * values.squeeze())
            counts.scatter_add_(0, vertices[:, i], weights[:, i])
        ok = counts > 0
        votes[ok] /= counts[ok]
        pred[0] += votes
        view_count[0] += (counts > 0).float()
    ok = view_count > 0
    pred[ok] /= view_count[ok]
    return pred[0]


def _maps(seed: int = 0, views: int = 4, size: int = 24, num_vertices: int = 40, num_faces: int = 60):
    rng = np.random.default_rng(seed)
    faces = np.stack([rng.choice(num_vertices, 3, replace=False) for _ in range(num_faces)])
    face_ids = rng.integers(-1, num_faces, (views, size, size))
    face_ids[:, :4] = -1  # some background rows
    bary = rng.random((views, size, size, 3)).astype(np.float32)
    bary[rng.random((views, size, size)) < 0.1, 2] = 0.0  # pixels on an edge
    bary /= bary.sum(-1, keepdims=True)
    p2v = np.where(face_ids[..., None] >= 0, faces[np.maximum(face_ids, 0)], -1)
    return faces, face_ids, bary, p2v


@pytest.mark.parametrize("shift", [0.0, -2.0, -4.0, 3.0])
def test_lift_above_equals_the_reference_object_predictor(shift):
    faces, face_ids, bary, p2v = _maps()
    n = 40 + 3  # 3 vertices no face uses: never voted, stay 0
    logits = torch.from_numpy(np.random.default_rng(1).normal(shift, 2.0, face_ids.shape).astype(np.float32))
    lifter = Lifter(face_ids, bary, faces, n)
    got = lifter.lift_above(logits)
    want = reference_object_lift(logits, p2v, bary, n)
    assert got.shape == (n,) and torch.allclose(got, want, atol=1e-6, rtol=0), (got - want).abs().max()
    assert torch.all(got[-3:] == 0)
    batched = lifter.lift_above(torch.stack([logits, logits - 1.0]))
    assert torch.allclose(batched[0], got) and torch.allclose(batched[1], reference_object_lift(logits - 1.0, p2v,
                                                                                               bary, n), atol=1e-6)
    if shift in (0.0, -2.0):  # the two lifts really differ on the same logits
        assert (lifter(logits) - want).abs().max() > 0.1
    # nothing above 0.3: the reference gives 0 everywhere, the soft lift sigmoid(-4) = 0.018 on every seen vertex
    flat = torch.full_like(logits, -4.0)
    assert float(lifter.lift_above(flat).abs().max()) == 0.0 == float(reference_object_lift(flat, p2v, bary, n).max())
    assert float(lifter(flat).max()) == pytest.approx(float(torch.sigmoid(torch.tensor(-4.0))), rel=1e-5)


def test_official_checkpoints_lift_objects_like_the_reference_and_ours_keep_the_soft_lift():
    data = json.loads((MANIFESTS / "official_13b_keys.config.json").read_text())
    assert config_from_official(data).object_lift == "reference"
    assert load_preset("tiny").object_lift == "soft"
    faces, face_ids, bary, _ = _maps(2)
    lifter = Lifter(face_ids, bary, faces, 40)
    logits = torch.from_numpy(np.random.default_rng(3).normal(-1.0, 2.0, face_ids.shape).astype(np.float32))
    predictor = ContactPredictor.__new__(ContactPredictor)  # only the lift dispatch is used here
    for lift, human, want in (("reference", False, lifter.lift_above(logits)), ("soft", False, lifter(logits)),
                              ("reference", True, lifter(logits))):
        predictor.cfg = load_preset("tiny")
        predictor.cfg.object_lift = lift
        assert torch.equal(predictor._lift_fn(human)(lifter, logits), want), (lift, human)
