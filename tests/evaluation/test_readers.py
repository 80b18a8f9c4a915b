"""DAMON ``hot_dca_*.npz`` and PIAD ``Point_*.txt`` readers on small files written in those formats here."""

import numpy as np
import pytest

from interactvlm_ros.evaluation.readers import (
    PIAD_AFFORDANCES,
    piad_image_info,
    read_damon_npz,
    read_piad_points,
)


def _write_damon(path, n_vertices=6890):
    contact = np.zeros((3, n_vertices))
    contact[0, [10, 11, 12]] = 1
    contact[2, [5]] = 1
    objectwise = np.empty(3, dtype=object)
    objectwise[0] = {"bottle": [10, 11], "supporting": [12]}
    objectwise[1] = {}
    objectwise[2] = {"chair": np.array([5])}
    contact_rows = np.empty(3, dtype=object)
    contact_rows[0], contact_rows[1], contact_rows[2] = contact[0], [], contact[2]
    np.savez(path, imgname=np.array(["a.jpg", "b.jpg", "c.jpg"]), contact_label=contact_rows,
             contact_label_objectwise=objectwise, pose=np.zeros((3, 72)), shape=np.zeros((3, 10)))


def test_read_damon_npz(tmp_path):
    path = tmp_path / "hot_dca_test.npz"
    _write_damon(path)
    split = read_damon_npz(path)
    assert len(split) == 3 and split.imgnames[1] == "b.jpg"
    assert split.contact.shape == (3, 6890)
    assert split.has_contact.tolist() == [True, False, True]
    assert np.flatnonzero(split.contact[0]).tolist() == [10, 11, 12]
    assert split.semantic_pairs() == [(0, "bottle"), (2, "chair")]
    assert np.flatnonzero(split.object_contact(0, "bottle")).tolist() == [10, 11]
    assert split.object_contact(1, "bottle").sum() == 0
    assert split.extras["pose"].shape == (3, 72)


def test_read_damon_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_damon_npz(tmp_path / "missing.npz")
    np.savez(tmp_path / "bad.npz", foo=np.zeros(3))
    with pytest.raises(ValueError, match="imgname"):
        read_damon_npz(tmp_path / "bad.npz")
    obj = np.empty(1, dtype=object)
    obj[0] = {"cup": [7000]}
    np.savez(tmp_path / "ids.npz", imgname=np.array(["a"]), contact_label=np.zeros((1, 6890)),
             contact_label_objectwise=obj)
    with pytest.raises(ValueError, match="outside"):
        read_damon_npz(tmp_path / "ids.npz")


def test_read_piad_points(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "Point_Test_Mug_1.txt"
    pts = rng.normal(size=(2048, 3))
    aff = rng.random((2048, len(PIAD_AFFORDANCES)))
    with open(path, "w") as f:
        for p, a in zip(pts, aff, strict=True):
            f.write("17 Mug " + " ".join(f"{v:.6f}" for v in (*p, *a)) + "\n")
    cloud = read_piad_points(path)
    assert cloud.object_class == "Mug" and cloud.shape_id == "17"
    assert cloud.points.shape == (2048, 3)
    np.testing.assert_allclose(cloud.affordance("wrapgrasp"), aff[:, 7], atol=1e-6)
    with pytest.raises(ValueError, match="unknown PIAD affordance"):
        cloud.affordance("fly")
    bad = tmp_path / "Point_Test_Mug_2.txt"
    bad.write_text("17 Mug 0 0 0 0.5\n")
    with pytest.raises(ValueError, match="expected 22 fields"):
        read_piad_points(bad)
    assert piad_image_info("Img_Test_Bag_lift_1.jpg") == ("Bag", "lift")
