"""DECO contact metrics (edge cases included), geodesic errors, semantic weighting and the PIAD metrics."""

import itertools

import numpy as np
import pytest
import trimesh

from interactvlm_ros.evaluation import (
    MeshGeodesic,
    affordance_metrics,
    aiou,
    binary_contact_metrics,
    contact_scores,
    mae,
    roc_auc,
    semantic_contact_metrics,
    sim,
)


def test_contact_scores_values_and_deco_edge_cases():
    gt = np.array([[1, 1, 0, 0, 0],     # regular: 1 TP, 2 pred, 2 GT
                   [1, 0, 0, 0, 0],     # no prediction
                   [0, 0, 0, 0, 0],     # no GT, some prediction
                   [0, 0, 0, 0, 0],     # neither: DECO's first branch (no prediction) wins
                   [1, 0, 0, 0, 0]])    # prediction disjoint from GT: P+R = 0
    pred = np.array([[0.9, 0.2, 0.7, 0.0, 0.0],
                     [0.49, 0.1, 0.0, 0.0, 0.0],
                     [0.0, 0.5, 0.0, 0.0, 0.0],
                     [0.0, 0.0, 0.0, 0.0, 0.0],
                     [0.0, 0.0, 0.0, 0.8, 0.0]])
    s = contact_scores(pred, gt)
    np.testing.assert_allclose(s.precision, [0.5, 1.0, 0.0, 1.0, 0.0])
    np.testing.assert_allclose(s.recall, [0.5, 0.0, 1.0, 0.0, 0.0])
    np.testing.assert_allclose(s.f1, [0.5, 0.0, 0.0, 0.0, 0.0])
    assert s.means()["f1"] == pytest.approx(0.1)
    # threshold is inclusive (p >= 0.5): the 0.5 in row 2 counts as a prediction
    assert s.num_predicted[2] == 1


def test_contact_scores_rejects_shape_mismatch_and_nan():
    with pytest.raises(ValueError, match="differ in shape"):
        contact_scores(np.zeros((2, 4)), np.zeros((2, 5)))
    with pytest.raises(ValueError, match="NaN"):
        contact_scores(np.array([np.nan, 0.0]), np.array([1, 0]))


def test_semantic_weighting_by_count():
    gt = np.array([[1, 0], [1, 0], [0, 1]])
    pred = np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]])
    out = semantic_contact_metrics(pred, gt, ["bottle", "bottle", "chair"],
                                   categories={"bottle": "everyday objects", "chair": "furniture"})
    assert out["per_class"]["bottle"] == {"count": 2, "f1": 0.5, "precision": 1.0, "recall": 0.5}
    assert out["per_class"]["chair"]["f1"] == 1.0
    assert out["f1"] == pytest.approx((2 * 0.5 + 1 * 1.0) / 3)
    assert out["per_category"]["furniture"]["count"] == 1


def _brute_geodesic(mesh, pred, gt):
    """DECO's det_error_metric with a dense all-pairs edge-graph matrix."""
    from scipy.sparse.csgraph import dijkstra
    geo = MeshGeodesic(mesh.vertices, mesh.faces)
    d = dijkstra(geo._graph, directed=False)
    cols = d[:, gt] if gt.any() else d
    err = cols[pred] if pred.any() else cols
    return err.min(axis=1).mean(), err.min(axis=0).mean()


def test_geodesic_errors_match_dense_definition_and_direction():
    mesh = trimesh.creation.icosphere(subdivisions=2, radius=0.5)  # metres
    rng = np.random.default_rng(0)
    n = len(mesh.vertices)
    geo = MeshGeodesic(mesh.vertices, mesh.faces)
    cases = [(rng.random(n) < 0.05, rng.random(n) < 0.1) for _ in range(3)]
    cases += [(np.zeros(n, bool), rng.random(n) < 0.1), (rng.random(n) < 0.1, np.zeros(n, bool))]
    for pred, gt in cases:
        fp, fn = geo.errors(pred, gt)
        bfp, bfn = _brute_geodesic(mesh, pred, gt)
        assert fp[0] == pytest.approx(bfp, rel=1e-9, abs=1e-9)
        assert fn[0] == pytest.approx(bfn, rel=1e-9, abs=1e-9)
    # direction: a prediction that is a subset of GT has zero FP error but positive FN error
    gt = np.zeros(n, bool)
    gt[np.argsort(mesh.vertices[:, 1])[-40:]] = True
    pred = np.zeros(n, bool)
    pred[np.flatnonzero(gt)[:3]] = True
    fp, fn = geo.errors(pred, gt)
    assert fp[0] == 0.0 and fn[0] > 1.0  # cm


def test_binary_metrics_with_geodesic_in_cm():
    mesh = trimesh.creation.icosphere(subdivisions=1, radius=1.0)
    n = len(mesh.vertices)
    gt = np.zeros((1, n))
    gt[0, 0] = 1
    pred = np.zeros((1, n))
    nb = mesh.vertex_neighbors[0][0]
    pred[0, nb] = 0.9
    out = binary_contact_metrics(pred, gt, geodesic=MeshGeodesic.cached(mesh.vertices, mesh.faces))
    edge = np.linalg.norm(mesh.vertices[0] - mesh.vertices[nb]) * 100
    assert out["geodesic_fp_cm"] == pytest.approx(edge)
    assert out["f1"] == 0.0 and out["num_samples"] == 1


def _brute_auc(y, s):
    """P(score_pos > score_neg) + 0.5 P(tie), over all positive/negative pairs."""
    pos, neg = s[y], s[~y]
    total = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in itertools.product(pos, neg))
    return total / (len(pos) * len(neg))


def test_roc_auc_matches_pairwise_definition_with_ties():
    rng = np.random.default_rng(1)
    for _ in range(20):
        n = int(rng.integers(5, 40))
        y = rng.random(n) < 0.4
        y[0], y[1] = True, False
        s = np.round(rng.random(n), 1)  # many ties
        assert roc_auc(y, s) == pytest.approx(_brute_auc(y, s), abs=1e-12)
    assert roc_auc([0, 1], [0.1, 0.9]) == 1.0
    assert roc_auc([0, 1], [0.9, 0.1]) == 0.0
    with pytest.raises(ValueError, match="one class"):
        roc_auc([1, 1], [0.2, 0.3])


def test_piad_sim_mae_aiou_by_hand():
    p = np.array([0.0, 0.5, 1.0, 0.5])
    g = np.array([0.0, 1.0, 1.0, 0.0])
    assert sim(p, g) == pytest.approx(0.25 + 0.5)            # min([0,.25,.5,.25],[0,.5,.5,0])
    assert mae(p, g) == pytest.approx((0 + 0.5 + 0 + 0.5) / 4)
    gb = g >= 0.5
    ts = np.linspace(0, 1, 20)
    ious = [np.sum((p >= t) & gb) / np.sum((p >= t) | gb) for t in ts]
    assert aiou(p, gb) == pytest.approx(np.mean(ious))
    assert aiou(p, gb) == pytest.approx((2 / 4 + 9 * 2 / 3 + 10 * 1 / 2) / 20)


def test_affordance_metrics_exclude_single_class_samples():
    pred = np.array([[0.9, 0.1, 0.8], [0.2, 0.3, 0.1]])
    gt = np.array([[1.0, 0.0, 0.6], [0.0, 0.0, 0.2]])  # second: all-negative after binarising
    out = affordance_metrics(pred, gt, labels=["Mug", "Bag"])
    assert out["count_auc"] == 1 and out["auc"] == 1.0
    assert out["sim"] == pytest.approx((sim(pred[0], gt[0]) + sim(pred[1], gt[1])) / 2)
    assert np.isnan(out["per_class"]["Bag"]["auc"])


def _chain(n: int, spacing_m: float):
    """A strip of triangles along x (``n`` vertices, ``spacing_m`` apart): edge-graph distance = |i - j| × spacing."""
    verts = np.zeros((n, 3))
    verts[:, 0] = np.arange(n) * spacing_m
    faces = np.stack([np.arange(n - 2), np.arange(1, n - 1), np.arange(2, n)], axis=1)
    return verts, faces


def test_geodesic_matrix_units_give_the_same_cm():
    n = 181  # 1 cm apart: the longest distance is 1.8 m, a body's size
    verts, faces = _chain(n, 0.01)
    metres = np.abs(np.arange(n)[:, None] - np.arange(n)[None, :]) * 0.01
    rng = np.random.default_rng(1)
    pred, gt = rng.random((4, n)) < 0.1, rng.random((4, n)) < 0.1
    expected = MeshGeodesic(verts, faces).errors(pred, gt)
    for matrix, units in ((metres, "m"), (metres * 100.0, "cm")):
        got = MeshGeodesic.from_matrix_units(matrix, units).errors(pred, gt)
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9)


def test_geodesic_matrix_in_the_wrong_unit_is_refused_with_a_hint():
    metres = np.abs(np.arange(181)[:, None] - np.arange(181)[None, :]) * 0.01
    hint = r"largest distance 1.8 cm is not a body's size \(50-500 cm\); is it in m \(--geodesic-units m\)"
    with pytest.raises(ValueError, match=hint):
        MeshGeodesic.from_matrix_units(metres, "cm")
    with pytest.raises(ValueError, match=r"largest distance 180 m .*--geodesic-units cm"):
        MeshGeodesic.from_matrix_units(metres * 100.0, "m")
    with pytest.raises(ValueError, match="units must be one of"):
        MeshGeodesic.from_matrix_units(metres, "mm")


def test_bootstrap_interval_is_reproducible_and_brackets_the_mean():
    from interactvlm_ros.evaluation.intervals import bootstrap_mean_ci

    rng = np.random.default_rng(3)
    values = (rng.random(400) < 0.3).astype(float)
    low, high = bootstrap_mean_ci(values)
    assert (low, high) == bootstrap_mean_ci(values)  # fixed seed
    assert low < values.mean() < high
    # a Bernoulli mean: the normal approximation's half-width 1.96·sqrt(p(1-p)/n)
    half = 1.96 * np.sqrt(values.mean() * (1 - values.mean()) / len(values))
    assert (high - low) / 2 == pytest.approx(half, rel=0.15)
    assert bootstrap_mean_ci(np.full(10, 0.7)) == pytest.approx((0.7, 0.7))
    assert bootstrap_mean_ci(values, seed=1) != (low, high)


def test_bootstrap_groups_resample_rows_together():
    from interactvlm_ros.evaluation.intervals import bootstrap_mean_ci

    values = np.random.default_rng(4).random(50)
    # every value twice, as the two object queries of one image: drawing images = drawing the 50 values
    twice = np.repeat(values, 2)
    assert bootstrap_mean_ci(twice, groups=np.repeat(np.arange(50), 2)) == pytest.approx(bootstrap_mean_ci(values))
    # counted as 100 independent rows the interval would be too narrow
    lo, hi = bootstrap_mean_ci(twice)
    lo_g, hi_g = bootstrap_mean_ci(values)
    assert hi - lo < 0.85 * (hi_g - lo_g)
    with pytest.raises(ValueError, match="3 group labels for 100 values"):
        bootstrap_mean_ci(twice, groups=[0, 1, 2])
    with pytest.raises(ValueError, match="at least one value"):
        bootstrap_mean_ci([])
