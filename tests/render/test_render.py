"""Cameras, the rasterizer (against open3d ray casting), shading, objects, point clouds, the render cache and bad
input."""

import math

import numpy as np
import pytest
import torch
import trimesh

from interactvlm_ros.render import (
    HUMAN_VIEWS,
    OBJECT_VIEWS,
    MeshError,
    View,
    cam_params,
    canonical_body_views,
    normalize_mesh,
    object_views,
    point_cloud_views,
    render_points,
    render_views,
)
from interactvlm_ros.render.cameras import look_at
from interactvlm_ros.render.mesh_input import check_mesh
from interactvlm_ros.render.raycast import face_id_agreement, raycast_views
from interactvlm_ros.render.shading import phong


def _needs_open3d():
    pytest.importorskip("open3d", reason="open3d is needed for the ray-cast reference")


def test_cam_params_are_normalised_as_the_method():
    cp = cam_params(HUMAN_VIEWS)
    np.testing.assert_allclose(cp[0], [0.2, 45 / 360, 315 / 360, 0.5, 0.5], atol=1e-7)
    np.testing.assert_allclose(cp[1], [0.2, 315 / 360, 315 / 360, 0.5, 0.65], atol=1e-7)
    assert [v.name for v in HUMAN_VIEWS] == ["topfront", "bottomfront", "topback", "bottomback"]
    assert [v.name for v in OBJECT_VIEWS] == ["frontleft", "frontright", "backleft", "backright"]
    np.testing.assert_allclose(cam_params(OBJECT_VIEWS, dist_override=2.0)[:, 0], 0.2)


def test_look_at_matches_pytorch3d_convention():
    m, t = look_at(View("front", 2.0, 0.0, 0.0))
    np.testing.assert_allclose(m, [[-1, 0, 0], [0, 1, 0], [0, 0, -1]], atol=1e-12)
    np.testing.assert_allclose(t, [0, 0, 2], atol=1e-12)
    m, t = look_at(View("shifted", 2.0, 0.0, 90.0, x=0.1, y=0.3))
    np.testing.assert_allclose(m, [[0, 0, 1], [0, 1, 0], [-1, 0, 0]], atol=1e-12)  # camera at +x
    np.testing.assert_allclose(t, [0.1, 0.3, 2], atol=1e-12)
    m, _ = look_at(HUMAN_VIEWS[0])  # topfront: camera above and in front-right, looking down at the origin
    c = -m.T @ look_at(View("c", 2, 45, 315))[1]
    np.testing.assert_allclose(c, [-1, math.sqrt(2), 1], atol=1e-9)


def test_face_ids_agree_with_ray_cast_on_anny(anny_body):
    _needs_open3d()
    v, f = anny_body.canonical_vertices(), anny_body.faces
    r = render_views(v, f, HUMAN_VIEWS, 192)
    ref_ids, ref_depth = raycast_views(v, f, HUMAN_VIEWS, 192)
    assert face_id_agreement(r.face_ids, ref_ids) >= 0.995
    both = (r.face_ids >= 0) & (ref_ids >= 0)
    assert np.median(np.abs(r.depth[both] - ref_depth[both])) < 1e-4
    assert r.images.dtype == np.uint8 and r.images.shape == (4, 192, 192, 3)
    assert (r.images[~r.valid] == 255).all()  # white background
    assert r.valid.mean() > 0.05


def test_face_ids_agree_with_ray_cast_on_object():
    _needs_open3d()
    mesh = trimesh.creation.annulus(r_min=0.2, r_max=0.5, height=0.4, sections=48)
    ov = object_views(mesh.vertices, mesh.faces, 96)
    ref_ids, _ = raycast_views(ov.vertices, ov.faces, OBJECT_VIEWS, 96)
    assert face_id_agreement(ov.render.face_ids, ref_ids) >= 0.995


def test_normal_shading_and_lighting():
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=0.4)
    r = render_views(sphere.vertices, sphere.faces, (View("front", 2.0, 0.0, 0.0, light=(0, 0, 3)),), 64,
                     lit=False)
    centre = r.images[0, 32, 32].astype(float) / 255.0
    np.testing.assert_allclose(centre, [0.5, 0.5, 1.0], atol=0.03)  # normal (0,0,1) -> (0.5,0.5,1)
    # PyTorch3D Phong: texel·(ambient 0.5 + diffuse 0.3·cos) + specular 0.2·cos_r^64
    texel = torch.tensor([[0.5, 0.5, 1.0]])
    n = torch.tensor([[0.0, 0.0, 1.0]])
    head_on = phong(texel, n, torch.zeros(1, 3), torch.tensor([0.0, 0.0, 3.0]), torch.tensor([0.0, 0.0, 2.0]))
    np.testing.assert_allclose(head_on.numpy(), [[0.6, 0.6, 1.0]], atol=1e-6)
    behind = phong(texel, n, torch.zeros(1, 3), torch.tensor([0.0, 0.0, -3.0]), torch.tensor([0.0, 0.0, 2.0]))
    np.testing.assert_allclose(behind.numpy(), 0.5 * texel.numpy(), atol=1e-6)  # ambient only


def test_object_normalisation_and_xyz_colours():
    box = trimesh.creation.box((2.0, 1.0, 0.5))
    box.vertices += [3.0, -1.0, 2.0]
    v, center, scale = normalize_mesh(box.vertices)
    np.testing.assert_allclose(v.mean(0), 0, atol=1e-6)
    assert abs(np.ptp(v, axis=0).max() - 1.0) < 1e-6 and abs(scale - 2.0) < 1e-6
    np.testing.assert_allclose(v * scale + center, box.vertices, atol=1e-5)
    ov = object_views(box.vertices, box.faces, 96)
    assert ov.cam_params.shape == (4, 5) and ov.images.shape == (4, 96, 96, 3)
    unlit = render_views(v, box.faces, OBJECT_VIEWS, 96, colors="xyz", lit=False)
    px = unlit.images[unlit.valid].astype(float) / 255.0
    assert px.min() >= 0.1 - 0.01 and px.max() <= 0.9 + 0.01


def test_point_cloud_splats_are_discs_and_lift_onto_points():
    r = render_points(np.zeros((1, 3)), (View("front", 2.0, 0.0, 0.0),), 200, radius=0.05)
    area = r.valid.sum()
    assert abs(area - math.pi * (0.05 * 100) ** 2) < 12
    pts = np.random.default_rng(0).normal(size=(2048, 3))
    pv = point_cloud_views(pts, 128)
    assert np.linalg.norm(pv.vertices, axis=1).max() == pytest.approx(1.0, abs=1e-5)
    assert pv.render.face_ids.max() < 2048 and 0.2 < pv.lifter.covered.float().mean() < 1.0
    # nearest point wins: every hit pixel's point is the nearest among the points covering it
    view = pv.views[0]
    m, t = look_at(view)
    z = pv.vertices @ m.T + t
    ids = pv.render.face_ids[0]
    hit = ids[ids >= 0]
    assert np.allclose(pv.render.depth[0][ids >= 0], z[hit, 2], atol=1e-5)
    probs = pv.lifter(torch.full((4, 128, 128), 20.0))
    assert torch.allclose(probs[pv.lifter.covered], torch.ones(()))


def test_canonical_body_views_are_cached(anny_body, tmp_path):
    cv = canonical_body_views(anny_body, 64, cache_dir=tmp_path)
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].suffix == ".npz" and files[0].name.startswith("anny_64_")
    again = canonical_body_views(anny_body, 64, cache_dir=tmp_path)
    np.testing.assert_array_equal(cv.render.face_ids, again.render.face_ids)
    np.testing.assert_array_equal(cv.images, again.images)
    assert cv.cam_params.shape == (4, 5) and cv.lifter.num_vertices == anny_body.num_vertices
    canonical_body_views(anny_body, 48, cache_dir=tmp_path)
    assert len([p for p in tmp_path.iterdir() if p.suffix == ".npz"]) == 2
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    files[0].write_bytes(b"corrupt")  # a damaged entry is re-rendered, not trusted
    np.testing.assert_array_equal(canonical_body_views(anny_body, 64, cache_dir=tmp_path).render.face_ids,
                                  cv.render.face_ids)


@pytest.mark.parametrize("vertices, faces, match", [
    (np.zeros((0, 3)), np.zeros((0, 3), int), "empty"),
    (np.array([[0, 0, 0], [1, 0, 0], [np.nan, 1, 0]]), np.array([[0, 1, 2]]), "non-finite"),
    (np.array([[0, 0, 0], [1, 0, 0], [np.inf, 1, 0]]), np.array([[0, 1, 2]]), "non-finite"),
    (np.eye(3), np.array([[0, 1, 3]]), "face indices"),
    (np.eye(3), np.array([[0, -1, 2]]), "face indices"),
    (np.eye(3), np.array([[0, 1]]), "\\[F,3\\]"),
    (np.eye(3), np.zeros((0, 3), int), "no faces"),
    (np.eye(3)[:, :2], np.array([[0, 1, 2]]), "\\[N,3\\]"),
    (np.eye(3), np.array([[0, 0, 1]]), "degenerate"),
])
def test_bad_meshes_are_clear_errors(vertices, faces, match):
    with pytest.raises(MeshError, match=match):
        render_views(vertices, faces, HUMAN_VIEWS[:1], 32)


def test_huge_mesh_is_refused_before_rendering():
    faces = np.zeros((1_000_001, 3), np.int64)
    faces[:, 1], faces[:, 2] = 1, 2
    with pytest.raises(MeshError, match="at most 1000000"):
        render_views(np.eye(3), faces, HUMAN_VIEWS[:1], 32)


def test_degenerate_faces_are_dropped_and_counted():
    sphere = trimesh.creation.icosphere(subdivisions=2, radius=0.5)
    n = len(sphere.vertices)
    extra = np.array([[0, 0, 1], [5, 5, 5], [1, 2, 3]])  # repeated index; zero-area collinear triangle below
    verts = np.vstack([sphere.vertices, [[0, 0, 0], [0.1, 0, 0], [0.2, 0, 0]]])
    faces = np.vstack([sphere.faces, extra, [[n, n + 1, n + 2]]])
    info = check_mesh(verts, faces)
    assert info.dropped_faces == 3
    r = render_views(verts, faces, HUMAN_VIEWS[:2], 64)
    assert r.dropped_faces == 3
    assert r.face_ids.max() < len(sphere.faces)  # dropped faces never appear in the maps


def test_bad_render_arguments():
    sphere = trimesh.creation.icosphere(subdivisions=1)
    with pytest.raises(ValueError, match="resolution"):
        render_views(sphere.vertices, sphere.faces, HUMAN_VIEWS, 3)
    with pytest.raises(ValueError, match="colors"):
        render_views(sphere.vertices, sphere.faces, HUMAN_VIEWS, 32, colors="rainbow")
    with pytest.raises(ValueError, match="colors must have shape"):
        render_views(sphere.vertices, sphere.faces, HUMAN_VIEWS, 32, colors=np.zeros((2, 3)))
    with pytest.raises(ValueError, match="views"):
        render_views(sphere.vertices, sphere.faces, (), 32)
    with pytest.raises(ValueError, match="radius"):
        render_points(sphere.vertices, HUMAN_VIEWS, 32, radius=2.0)
    with pytest.raises(MeshError, match="non-finite"):
        point_cloud_views(np.full((4, 3), np.nan), 32)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_render_on_gpu_matches_cpu():
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=0.5)
    a = render_views(sphere.vertices, sphere.faces, HUMAN_VIEWS, 96)
    b = render_views(sphere.vertices, sphere.faces, HUMAN_VIEWS, 96, device="cuda")
    assert face_id_agreement(b.face_ids, a.face_ids) > 0.999


def test_geometry_bench_is_registered():
    import importlib

    from interactvlm_ros.benchmarks import BENCHES

    module, func = BENCHES["geometry"].split(":")
    assert callable(getattr(importlib.import_module(module), func))


def test_coverage_is_decided_in_float64_at_pixel_centres(anny_body):
    """A pixel centre a hair outside a face (Anny's bottomfront at 1024 px has one 1.5e-5 px outside both faces of a
    fold seen edge-on; float32 pixel coordinates there are 3e-5 px apart) is background, as exact arithmetic and
    PyTorch3D have it: every covered pixel's centre is inside its face by float64 barycentrics."""
    from interactvlm_ros.render.rasterize import rasterize_mesh, to_pixels, to_view

    v = torch.as_tensor(anny_body.canonical_vertices(), dtype=torch.float32)
    f = torch.as_tensor(np.asarray(anny_body.faces, np.int64))
    view = HUMAN_VIEWS[1]  # bottomfront
    frag = rasterize_mesh(v, f, view, 1024)
    rows, cols = torch.nonzero(frag.face_ids >= 0, as_tuple=True)
    tri = to_pixels(to_view(v.double(), view), 1024)[f[frag.face_ids[rows, cols]]]  # [P,3,2] float64
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    d = torch.stack([cols, rows], 1).double() - tri[:, 0]
    area = e1[:, 0] * e2[:, 1] - e2[:, 0] * e1[:, 1]
    w1 = (d[:, 0] * e2[:, 1] - e2[:, 0] * d[:, 1]) / area
    w2 = (e1[:, 0] * d[:, 1] - d[:, 0] * e1[:, 1]) / area
    assert rows.numel() > 300_000 // 4
    assert float(torch.stack([1 - w1 - w2, w1, w2]).min()) > -1e-9
