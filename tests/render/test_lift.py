"""The sparse lift against a straightforward per-pixel loop, its gradient, batching, modes and bad input."""

import numpy as np
import pytest
import torch
import trimesh

from interactvlm_ros.render import HUMAN_VIEWS, Lifter, render_views
from interactvlm_ros.render.lift import THRESHOLD_LOGIT, THRESHOLD_VALUE


def loop_soft(face_ids, bary, faces, n, logits):
    """The method's soft lift written pixel by pixel (reference for the sparse operator)."""
    total = np.zeros(n)
    views = np.zeros(n)
    for v in range(face_ids.shape[0]):
        num, den = np.zeros(n), np.zeros(n)
        for r, c in zip(*np.nonzero(face_ids[v] >= 0), strict=True):
            p = 1.0 / (1.0 + np.exp(-np.clip(logits[v, r, c], -20, 20)))
            for k, vid in enumerate(faces[face_ids[v, r, c]]):
                num[vid] += bary[v, r, c, k] * p
                den[vid] += bary[v, r, c, k]
        seen = den > 0
        total[seen] += num[seen] / den[seen]
        views += seen
    out = np.where(views > 0, total / np.maximum(views, 1), 0.0)
    return np.clip(out, 0, 1)


def loop_threshold(face_ids, bary, faces, n, logits):
    num, cnt = np.zeros(n), np.zeros(n)
    for v in range(face_ids.shape[0]):
        for r, c in zip(*np.nonzero((face_ids[v] >= 0) & (logits[v] > THRESHOLD_LOGIT)), strict=True):
            for k, vid in enumerate(faces[face_ids[v, r, c]]):
                num[vid] += bary[v, r, c, k]
                cnt[vid] += 1
    value = np.where(cnt > 0, num / np.maximum(cnt, 1), 0.0)
    return (value > THRESHOLD_VALUE).astype(np.float32)


@pytest.fixture(scope="module")
def small():
    mesh = trimesh.creation.icosphere(subdivisions=2, radius=0.5)
    mesh.vertices[:, 1] *= 1.5
    r = render_views(mesh.vertices, mesh.faces, HUMAN_VIEWS, 48)
    return mesh, r


def test_soft_lift_matches_loop(small):
    mesh, r = small
    lifter = Lifter(r.face_ids, r.bary, mesh.faces, len(mesh.vertices))
    logits = np.random.default_rng(0).normal(0, 3, size=r.face_ids.shape).astype(np.float32)
    got = lifter(torch.from_numpy(logits)).numpy()
    want = loop_soft(r.face_ids, r.bary, mesh.faces, len(mesh.vertices), logits)
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert lifter.covered.numpy()[want > 0].all()


def test_threshold_lift_matches_loop(small):
    mesh, r = small
    lifter = Lifter(r.face_ids, r.bary, mesh.faces, len(mesh.vertices), mode="threshold")
    logits = np.random.default_rng(1).normal(0, 1, size=r.face_ids.shape).astype(np.float32)
    got = lifter(torch.from_numpy(logits)).numpy()
    want = loop_threshold(r.face_ids, r.bary, mesh.faces, len(mesh.vertices), logits)
    np.testing.assert_array_equal(got, want)
    assert 0 < want.sum() < len(want)


def test_soft_lift_is_differentiable_and_batched(small):
    mesh, r = small
    lifter = Lifter(r.face_ids, r.bary, mesh.faces, len(mesh.vertices))
    logits = torch.randn(2, *r.face_ids.shape, requires_grad=True)
    out = lifter(logits)
    assert out.shape == (2, len(mesh.vertices))
    target = torch.zeros_like(out)
    torch.nn.functional.binary_cross_entropy(out.clamp(1e-6, 1 - 1e-6), target).backward()
    g = logits.grad
    assert torch.isfinite(g).all()
    fg = torch.from_numpy(r.valid)
    assert (g[:, fg] != 0).float().mean() > 0.9  # every foreground pixel influences some vertex
    assert (g[:, ~fg] == 0).all()  # background pixels do not
    np.testing.assert_allclose(out[1].detach().numpy(), lifter(logits[1].detach()).numpy(), atol=1e-6)
    # gradient against finite differences at one pixel
    idx = tuple(int(i) for i in np.argwhere(r.valid)[5])
    x = logits[0].detach().clone()
    def f(t):
        return lifter(t).sum().item()
    eps = 1e-2
    xp, xm = x.clone(), x.clone()
    xp[idx] += eps
    xm[idx] -= eps
    x.requires_grad_(True)
    lifter(x).sum().backward()
    assert abs((f(xp) - f(xm)) / (2 * eps) - x.grad[idx].item()) < 1e-3


def test_project_then_lift_round_trip(small):
    mesh, r = small
    lifter = Lifter(r.face_ids, r.bary, mesh.faces, len(mesh.vertices))
    contact = torch.from_numpy((mesh.vertices[:, 0] > 0.15).astype(np.float32))
    masks = lifter.project(contact)
    assert masks.shape == r.face_ids.shape
    back = lifter(torch.where(masks > 0.5, 20.0, -20.0)) > 0.5
    cov = lifter.covered
    gt = contact > 0.5
    iou = (back & gt)[cov].sum() / (back | gt)[cov].sum()
    assert iou > 0.8


def test_wrong_mask_shape_is_an_error(small):
    mesh, r = small
    lifter = Lifter(r.face_ids, r.bary, mesh.faces, len(mesh.vertices))
    with pytest.raises(ValueError, match="V,H,W"):
        lifter(torch.zeros(4, 32, 32))
    with pytest.raises(ValueError, match="V,H,W"):
        lifter(torch.zeros(3, 48, 48))
    with pytest.raises(TypeError):
        lifter(np.zeros((4, 48, 48)))
    with pytest.raises(ValueError, match="vertex_values"):
        lifter.project(torch.zeros(7))


@pytest.mark.parametrize("mode", ["soft", "threshold"])
def test_nan_logits_are_refused(small, mode):
    mesh, r = small
    lifter = Lifter(r.face_ids, r.bary, mesh.faces, len(mesh.vertices), mode=mode)
    logits = torch.zeros(r.face_ids.shape)
    logits[tuple(np.argwhere(r.valid)[0])] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        lifter(logits)
    logits = torch.zeros(r.face_ids.shape)
    logits[~torch.from_numpy(r.valid)] = float("nan")  # background pixels are never read
    assert torch.isfinite(lifter(logits)).all()
    inf = torch.full(r.face_ids.shape, float("inf"))
    assert torch.isfinite(lifter(inf)).all()


def test_bad_maps_are_errors(small):
    mesh, r = small
    with pytest.raises(ValueError, match="mode"):
        Lifter(r.face_ids, r.bary, mesh.faces, len(mesh.vertices), mode="hard")
    with pytest.raises(ValueError, match="bary"):
        Lifter(r.face_ids, r.bary[..., :2], mesh.faces, len(mesh.vertices))
    with pytest.raises(ValueError, match="vertex ids"):
        Lifter(r.face_ids, r.bary, mesh.faces, 10)
    with pytest.raises(ValueError, match="reference face"):
        Lifter(r.face_ids, r.bary, mesh.faces[:5], len(mesh.vertices))
    with pytest.raises(ValueError, match="non-finite"):
        Lifter(r.face_ids, np.full_like(r.bary, np.nan), mesh.faces, len(mesh.vertices))
    with pytest.raises(ValueError, match="\\[V,H,W\\]"):
        Lifter(r.face_ids[0], r.bary[0], mesh.faces, len(mesh.vertices))


def test_lifter_moves_between_devices(small):
    mesh, r = small
    lifter = Lifter(r.face_ids, r.bary, mesh.faces, len(mesh.vertices))
    logits = torch.randn(*r.face_ids.shape)
    ref = lifter(logits)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    lifter.to(device)
    np.testing.assert_allclose(lifter(logits.to(device)).cpu().numpy(), ref.numpy(), atol=1e-5)


def test_point_lifter_is_mean_over_pixels_then_views():
    pid = np.full((2, 4, 4), -1)
    pid[0, 0, :2] = 0  # point 0: two pixels in view 0
    pid[1, 3, 3] = 0  # and one pixel in view 1
    pid[1, 0, 0] = 2  # point 2: one pixel in view 1; point 1 never visible
    lifter = Lifter.for_points(pid, 3)
    logits = torch.full((2, 4, 4), -20.0)
    logits[0, 0, 0] = 20.0  # p = 1 ; other pixel p ≈ 0 -> view-0 mean 0.5
    logits[1, 3, 3] = 20.0  # view-1 mean 1
    out = lifter(logits).numpy()
    np.testing.assert_allclose(out, [0.75, 0.0, 0.0], atol=1e-6)
    assert lifter.covered.tolist() == [True, False, True]


def test_bench_baselines_compute_the_same_lift(small):
    """The bench's speed baselines must be the same function as the sparse lift, or the ratio is meaningless."""
    from interactvlm_ros.benchmarks.geometry import index_add_lift, loop_lift

    mesh, r = small
    lifter = Lifter(r.face_ids, r.bary, mesh.faces, len(mesh.vertices))
    logits = torch.randn(*r.face_ids.shape) * 3
    ref = lifter(logits).numpy()
    pixels = np.argwhere(r.face_ids >= 0)
    np.testing.assert_allclose(loop_lift(r.face_ids, r.bary, mesh.faces, len(mesh.vertices), logits.numpy(), pixels),
                               ref, atol=1e-5)
    got = index_add_lift(torch.from_numpy(r.face_ids), torch.from_numpy(r.bary), torch.from_numpy(mesh.faces),
                         len(mesh.vertices), logits)
    np.testing.assert_allclose(got.numpy(), ref, atol=1e-5)


def test_fill_unseen_copies_the_nearest_seen_vertex(small):
    mesh, r = small
    plain = Lifter(r.face_ids, r.bary, mesh.faces, len(mesh.vertices))
    filled = Lifter(r.face_ids, r.bary, mesh.faces, len(mesh.vertices), fill_unseen=True, vertices=mesh.vertices)
    seen = plain.covered.numpy()
    assert 0 < seen.sum() < len(seen)  # the fixture has vertices no view sees
    logits = torch.from_numpy(np.random.default_rng(1).normal(0, 3, size=r.face_ids.shape).astype(np.float32))
    a, b = plain(logits).numpy(), filled(logits).numpy()
    np.testing.assert_allclose(b[seen], a[seen], atol=1e-6)
    src = filled.source.numpy()
    assert seen[src].all() and (src[seen] == np.nonzero(seen)[0]).all()
    np.testing.assert_allclose(b[~seen], a[src[~seen]], atol=1e-6)
    # nearest along edges: no seen vertex is closer (Dijkstra over edge lengths) than the chosen one
    import scipy.sparse as sp
    from scipy.sparse.csgraph import dijkstra
    e = mesh.edges_unique
    w = np.linalg.norm(mesh.vertices[e[:, 0]] - mesh.vertices[e[:, 1]], axis=1)
    d = dijkstra(sp.coo_matrix((w, (e[:, 0], e[:, 1])), shape=(len(seen),) * 2), directed=False,
                 indices=np.nonzero(~seen)[0])
    chosen = d[np.arange(len(d)), src[~seen]]
    np.testing.assert_allclose(chosen, d[:, seen].min(1), rtol=1e-6)
    # the backward is the transpose of the filled operator
    x = logits.clone().requires_grad_()
    filled(x).sum().backward()
    p = torch.sigmoid(logits.reshape(-1)[filled.pixel_index])
    dense = filled.a.to_dense()
    want = torch.zeros(logits.numel())
    want[filled.pixel_index] = dense.sum(0) * p * (1 - p)
    torch.testing.assert_close(x.grad.reshape(-1), want, rtol=1e-4, atol=1e-6)


def test_fill_unseen_in_threshold_mode(small):
    mesh, r = small
    plain = Lifter(r.face_ids, r.bary, mesh.faces, len(mesh.vertices), mode="threshold")
    filled = Lifter(r.face_ids, r.bary, mesh.faces, len(mesh.vertices), mode="threshold", fill_unseen=True)
    logits = torch.from_numpy(np.random.default_rng(2).normal(0, 3, size=r.face_ids.shape).astype(np.float32))
    a, b = plain(logits).numpy(), filled(logits).numpy()
    seen, src = plain.covered.numpy(), filled.source.numpy()
    np.testing.assert_array_equal(b[seen], a[seen])
    np.testing.assert_array_equal(b[~seen], a[src[~seen]])
    assert b[~seen].any()  # unseen vertices are no longer all 0
