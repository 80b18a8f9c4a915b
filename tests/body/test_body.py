"""Body models: Anny (bundled) and SMPL-X through a synthetic SMPL-X-format file; topology transfer."""

import math
import pickle

import numpy as np
import pytest
import torch
from synthetic_smplx import NUM_FACES, NUM_VERTICES, write_synthetic_smpl, write_synthetic_smplx

from interactvlm_ros.body import load_body_model
from interactvlm_ros.body.anny_body import anny_cache_dir
from interactvlm_ros.body.smpl_family import find_model_file
from interactvlm_ros.body.transfer import MatrixTransfer, SurfaceCorrespondence, round_trip_accuracy
from interactvlm_ros.config import load_config


@pytest.fixture(scope="module")
def smplx_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("bodymodels")
    write_synthetic_smplx(root)
    return root


@pytest.fixture(scope="module")
def smplx_body(smplx_dir):
    pytest.importorskip("smplx", reason="the optional smplx extra is not installed")
    return load_body_model("smplx", model_dir=str(smplx_dir))


def _star_checks(body):
    v = body.canonical_vertices()
    j = body(**body.star_pose_params()).joints[0].detach().numpy()
    parts = body.part_vertex_ids()
    assert v.dtype == np.float32 and v.shape == (body.num_vertices, 3)
    lh, rh = v[parts["left hand"]].mean(0), v[parts["right hand"]].mean(0)
    lf, rf = v[parts["left foot"]].mean(0), v[parts["right foot"]].mean(0)
    head = v[parts["head"]].mean(0)
    assert lh[0] > 0.5 and rh[0] < -0.5  # left at +x, arms out
    torso_y = v[parts["torso"]][:, 1]
    assert torso_y.min() - 0.1 < lh[1] < torso_y.max() + 0.1  # hands at shoulder height (T-pose)
    assert abs(lh[1] - rh[1]) < 0.03 and abs(lf[1] - rf[1]) < 0.03  # symmetric
    assert head[1] > lh[1] > lf[1]  # y up
    names = body.joint_names
    return v, j, names, lf, rf


def test_anny_topology_and_interface(anny_body):
    b = anny_body
    assert b.name == "anny" and b.num_vertices == 13718
    assert b.faces.shape == (27420, 3) and b.faces.dtype == np.int64
    assert b.faces_tensor.dtype == torch.int64
    assert len(b.joint_names) == 104 and b.pose_dim == 3 * 103 and b.shape_dim == 6
    assert len(b.topology_hash) == 16 and b.topology_hash == b.topology_hash


def test_anny_star_pose_legs_spread_30_degrees(anny_body):
    v, j, names, lf, rf = _star_checks(anny_body)
    hip, foot = j[names.index("upperleg01.L")], j[names.index("foot.L")]
    angle = math.degrees(math.atan2(foot[0] - hip[0], hip[1] - foot[1]))
    assert abs(angle - 30.0) < 1.0
    assert abs(v[:, 2].mean()) < 0.1  # no global rotation: body stays in the x-y plane


def test_anny_batched_and_differentiable(anny_body):
    b = anny_body
    params = b.zero_params(2)
    params["pose"] = (0.1 * torch.randn(2, b.pose_dim)).requires_grad_(True)
    params["shape"] = torch.tensor([[0.0] * 6, [0.3, 0, 0, 0, 0.2, 0]], requires_grad=True)
    params["transl"] = torch.tensor([[0.0, 0, 0], [1.0, 2.0, 3.0]])
    out = b(**params)
    assert out.vertices.shape == (2, 13718, 3) and out.joints.shape == (2, 104, 3)
    out.vertices.square().sum().backward()
    assert params["pose"].grad.abs().sum() > 0 and params["shape"].grad.abs().sum() > 0
    # translation and global rotation act as a rigid transform
    rot = b(global_orient=torch.tensor([[0.0, math.pi / 2, 0.0]])).vertices[0]
    rest = b().vertices[0]
    assert torch.allclose(rot[:, 0], rest[:, 2], atol=1e-4) and torch.allclose(rot[:, 2], -rest[:, 0], atol=1e-4)
    with pytest.raises(ValueError, match="pose must be"):
        b(pose=torch.zeros(1, 5))


def test_anny_parts(anny_body):
    parts = anny_body.part_vertex_ids()
    for name in ("head", "torso", "hips", "left hand", "right hand", "left foot", "right foot", "left arm",
                 "right leg"):
        assert len(parts[name]) > 0, name
    assert set(parts["left hand"]) <= set(parts["left arm"])


def test_anny_cache_dir_follows_env_and_config(monkeypatch, tmp_path):
    monkeypatch.setenv("ANNY_CACHE_DIR", str(tmp_path / "a"))
    assert anny_cache_dir() == tmp_path / "a"
    monkeypatch.delenv("ANNY_CACHE_DIR")
    assert anny_cache_dir(str(tmp_path)) == tmp_path / "anny"


def test_smplx_synthetic_file_loads(smplx_body):
    b = smplx_body
    assert b.name == "smplx" and b.num_vertices == NUM_VERTICES and b.faces.shape == (NUM_FACES, 3)
    assert len(b.joint_names) == 55 and b.pose_dim == 63 + 90 and b.shape_dim == 10
    v, j, names, lf, rf = _star_checks(b)
    knee, ankle = j[names.index("left_knee")], j[names.index("left_ankle")]
    hip = j[names.index("left_hip")]
    angle = math.degrees(math.atan2(ankle[0] - hip[0], hip[1] - ankle[1]))
    assert 25.0 < angle < 35.0  # template legs ~1.4° out, plus the 30° hip rotation
    assert knee[0] > hip[0]
    out = b(**b.zero_params(3))
    assert out.vertices.shape == (3, NUM_VERTICES, 3)


@pytest.mark.parametrize("kind, ext, pose_dim, joints", [("smpl", "pkl", 69, 24), ("smplh", "npz", 153, 52)])
def test_smpl_and_smplh_synthetic_files_load(tmp_path, kind, ext, pose_dim, joints):
    pytest.importorskip("smplx", reason="the optional smplx extra is not installed")
    write_synthetic_smpl(tmp_path, kind, ext)
    b = load_body_model(kind, model_dir=str(tmp_path))
    assert (b.name, b.num_vertices, b.faces.shape, b.pose_dim, len(b.joint_names)) == (
        kind, 6890, (13776, 3), pose_dim, joints)
    rest = b().vertices[0].detach().numpy()
    star = b.canonical_vertices()
    thigh = b.part_vertex_ids()["left thigh"]
    assert len(thigh) > 0
    moved = np.linalg.norm(star - rest, axis=1)
    assert moved[thigh].mean() > 0.01  # the hips rotate in the star pose
    assert star[thigh, 0].mean() > rest[thigh, 0].mean()  # the left leg swings out to +x
    out = b(pose=0.1 * torch.randn(2, pose_dim), shape=torch.zeros(2, 10))
    assert out.vertices.shape == (2, 6890, 3) and out.joints.shape == (2, joints, 3)


def test_smplx_from_config(smplx_dir):
    pytest.importorskip("smplx")
    cfg = load_config(None, [f"body.model_dir={smplx_dir}", "body.model=smplx"])
    assert load_body_model(cfg).num_vertices == NUM_VERTICES


def test_missing_model_file_names_exact_path(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        find_model_file("smplh", tmp_path)
    assert str(tmp_path / "smplh" / "SMPLH_NEUTRAL.npz") in str(err.value)
    with pytest.raises(FileNotFoundError, match="body.model_dir"):
        load_body_model("smplx", model_dir="")
    with pytest.raises(ValueError, match="unknown body model"):
        load_body_model("mano")


def test_matrix_transfer_smpl_to_smplx(tmp_path):
    import scipy.sparse

    rng = np.random.default_rng(0)
    cols = rng.integers(0, 6890, size=10475)
    m = scipy.sparse.csr_matrix((np.ones(10475, np.float32), (np.arange(10475), cols)), shape=(10475, 6890))
    dense = MatrixTransfer(np.array([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]]))  # a dense matrix works the same way
    np.testing.assert_allclose(dense(torch.tensor([1.0, 3.0, 5.0])).numpy(), [2.0, 5.0])
    path = tmp_path / "smpl_to_smplx.pkl"
    with open(path, "wb") as fh:
        pickle.dump({"matrix": m}, fh)
    t = MatrixTransfer.smpl_to_smplx(path)
    c = torch.rand(2, 6890)
    np.testing.assert_allclose(t(c).numpy(), c.numpy()[:, cols], atol=1e-6)
    with pytest.raises(ValueError, match="source vertex count"):
        t(torch.zeros(10))
    with pytest.raises(FileNotFoundError, match="body.smpl_to_smplx"):
        MatrixTransfer.smpl_to_smplx(tmp_path / "nope.pkl")
    with open(path, "wb") as fh:
        pickle.dump({"matrix": m[:100]}, fh)
    with pytest.raises(ValueError, match="expected \\(10475, 6890\\)"):
        MatrixTransfer.smpl_to_smplx(path)


def test_surface_correspondence_on_same_mesh_is_identity(smplx_body):
    v, f = smplx_body.canonical_vertices(), smplx_body.faces
    used = np.unique(f)
    x = torch.rand(len(v))
    for corr in (SurfaceCorrespondence(v, f, v), SurfaceCorrespondence(v, f, v, dst_faces=f)):
        np.testing.assert_allclose(corr(x).numpy()[used], x.numpy()[used], atol=1e-4)
    assert SurfaceCorrespondence.between(smplx_body, smplx_body)(torch.ones(2, len(v))).shape == (2, len(v))


def test_anny_smplx_round_trip_accuracy(anny_body, smplx_body):
    """Anny -> synthetic SMPL-X -> Anny (a crude capsule body: a pessimistic case; numbers in transfer.py)."""
    a_v, a_f, b_v, b_f = (anny_body.canonical_vertices(), anny_body.faces, smplx_body.canonical_vertices(),
                          smplx_body.faces)
    pull = round_trip_accuracy(a_v, a_f, b_v, b_f, num_patches=12, symmetric=False)
    both = round_trip_accuracy(a_v, a_f, b_v, b_f, num_patches=12)
    assert both["smooth_mae"] < 0.01 and pull["smooth_mae"] < 0.02
    assert both["patch_iou"] > 0.85 and both["patch_iou"] > pull["patch_iou"]
    to_smplx = SurfaceCorrespondence.between(anny_body, smplx_body)
    hand = np.zeros(anny_body.num_vertices, np.float32)
    hand[anny_body.part_vertex_ids()["left hand"]] = 1.0
    moved = to_smplx(torch.from_numpy(hand)).numpy() > 0.5
    assert moved.any() and (b_v[moved, 0] > 0.5).all()  # the left hand lands on the left hand


def test_anny_never_calls_the_noncommercial_download(monkeypatch):
    import anny.paths

    def forbidden(*args, **kwargs):
        raise AssertionError("anny's non-commercial download helper was called")

    monkeypatch.setattr(anny.paths, "download_noncommercial_data", forbidden)
    body = load_body_model("anny", progress=False)
    assert body.canonical_vertices().shape == (13718, 3) and body.part_vertex_ids()["head"].size
