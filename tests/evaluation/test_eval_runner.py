"""The eval runner: a model on a synthetic split with the prior baseline, and DECO scoring of a DAMON
predictions file."""

import json
import subprocess
import sys

import numpy as np
import pytest

from interactvlm_ros.evaluation import MeshGeodesic, contact_scores
from interactvlm_ros.evaluation.readers import read_damon_npz
from interactvlm_ros.evaluation.runner import score_damon_predictions

KEYS = ("human_f1", "human_precision", "human_recall", "human_geodesic_fp_cm", "semantic_f1", "object_f1",
        "prior_baseline_human_f1", "num_samples")


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory, write_synthetic_dataset):
    return write_synthetic_dataset(tmp_path_factory.mktemp("evalds"), num=10, seed=2)


def test_eval_cli_on_synthetic_split(small_dataset):
    proc = subprocess.run([sys.executable, "-m", "interactvlm_ros", "eval", "--data", str(small_dataset / "ds"),
                           "--split", "train", "--model", "tiny", "--json", "--no-progress", "--threads", "1",
                           "--set", f"cache.dir={small_dataset / 'cache'}"],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    for key in KEYS:
        assert key in result, key
    assert result["num_samples"] > 0
    # the prior baseline scored on its own training split: recompute it by hand
    from interactvlm_ros.data import SyntheticDataset

    ds = SyntheticDataset(small_dataset / "ds", "train")
    means = ds.class_mean_contact()
    preds = np.stack([means[ds.rows[i]["object"]] for i in range(len(ds))])
    gts = np.stack([ds[i]["human_contact"] for i in range(len(ds))])
    assert result["prior_baseline_human_f1"] == pytest.approx(contact_scores(preds, gts).f1.mean())
    by_interaction = ds.class_mean_contact(by="interaction")
    oracle = np.stack([by_interaction[f"{r['object']}/{r['interaction']}"] for r in ds.rows])
    assert result["interaction_oracle_human_f1"] == pytest.approx(contact_scores(oracle, gts).f1.mean())
    assert 0.0 <= result["human_f1"] <= 1.0 and result["human_geodesic_fp_cm"] >= 0.0
    f1_keys = [k for k in result if k.endswith("_f1")]
    assert len(f1_keys) >= 7
    for key in f1_keys:  # every F1 with its bootstrap interval around it
        low, high = result[f"{key}_ci"]
        assert low <= result[key] + 1e-4 and result[key] - 1e-4 <= high, key
    assert result["intervals"] == {"method": "percentile bootstrap", "level": 0.95, "resamples": 1000, "seed": 0,
                                   "unit": "image"}


def test_score_damon_predictions(tmp_path):
    n = 6890
    contact = np.zeros((2, n))
    contact[0, :10] = 1
    contact[1, 5:20] = 1
    np.savez(tmp_path / "hot_dca_test.npz", imgname=np.array(["a.jpg", "b.jpg"]), contact_label=contact)
    split = read_damon_npz(tmp_path / "hot_dca_test.npz")
    pred = np.zeros((2, n))
    pred[0, :10] = 0.9  # perfect
    pred[1, 15:25] = 0.7  # 5 of 10 right, 5 of 15 recalled
    out = score_damon_predictions(split, pred)
    f1_b = 2 * 0.5 * (1 / 3) / (0.5 + 1 / 3)
    assert out["human_f1"] == pytest.approx((1.0 + f1_b) / 2)
    assert out["human_precision"] == pytest.approx(0.75)
    # a chain "mesh" along x with 1 cm spacing: edge-graph distance = |i - j| cm
    verts = np.zeros((n, 3))
    verts[:, 0] = np.arange(n) * 0.01
    faces = np.stack([np.arange(n - 2), np.arange(1, n - 1), np.arange(2, n)], axis=1)
    geo = MeshGeodesic(verts, faces)
    out = score_damon_predictions(split, pred, geo)
    assert out["human_geodesic_fp_cm"] == pytest.approx((0.0 + np.mean([0] * 5 + [1, 2, 3, 4, 5])) / 2)
    assert out["human_f1_ci"][0] <= out["human_f1"] <= out["human_f1_ci"][1]
    assert out["intervals"]["resamples"] == 1000 and out["intervals"]["unit"] == "image"
    with pytest.raises(ValueError, match="do not match"):
        score_damon_predictions(split, pred[:1])


def _write_piad(root, n_points=96):
    """A tiny PIAD layout: 2 mug clouds, 1 bag cloud, 3 images (64 px)."""
    from PIL import Image

    from interactvlm_ros.evaluation.readers import PIAD_AFFORDANCES

    rng = np.random.default_rng(0)
    (root / "points").mkdir()
    (root / "images").mkdir()
    for name, cls in (("Point_Test_Mug_1.txt", "Mug"), ("Point_Test_Mug_2.txt", "Mug"),
                      ("Point_Test_Bag_1.txt", "Bag")):
        pts = rng.normal(size=(n_points, 3))
        aff = (rng.random((n_points, len(PIAD_AFFORDANCES))) > 0.7).astype(float) * rng.random((n_points, 17))
        with open(root / "points" / name, "w") as f:
            for p, a in zip(pts, aff, strict=True):
                f.write(f"7 {cls} " + " ".join(f"{v:.5f}" for v in (*p, *a)) + "\n")
    for name in ("Img_Test_Mug_grasp_1.jpg", "Img_Test_Mug_contain_2.jpg", "Img_Test_Bag_lift_1.jpg"):
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(root / "images" / name)


def test_piad_pairs_and_scores(tmp_path):
    from interactvlm_ros.evaluation.readers import read_piad_pairs
    from interactvlm_ros.evaluation.runner import score_piad_predictions

    _write_piad(tmp_path)
    pairs = read_piad_pairs(tmp_path / "images", tmp_path / "points")
    assert [(p.image.name, p.points.path.name) for p in pairs] == [
        ("Img_Test_Bag_lift_1.jpg", "Point_Test_Bag_1.txt"),
        ("Img_Test_Mug_contain_2.jpg", "Point_Test_Mug_1.txt"),
        ("Img_Test_Mug_grasp_1.jpg", "Point_Test_Mug_2.txt")]
    assert pairs[2].affordance == "grasp" and pairs[2].target.shape == (96,)
    perfect = score_piad_predictions(pairs, [p.target for p in pairs])
    assert perfect["piad_sim"] == pytest.approx(1.0) and perfect["piad_mae"] == pytest.approx(0.0)
    assert perfect["piad_auc"] == pytest.approx(1.0)
    assert set(perfect["per_object"]) == {"Bag", "Mug"} and set(perfect["per_affordance"]) == {"lift", "contain",
                                                                                                "grasp"}
    inverted = score_piad_predictions(pairs, [1.0 - p.target for p in pairs])
    assert inverted["piad_auc"] < 0.5 and inverted["piad_sim"] < perfect["piad_sim"]
    (tmp_path / "pairs.txt").write_text("Img_Test_Mug_grasp_1.jpg Point_Test_Mug_1.txt\n")
    one = read_piad_pairs(tmp_path / "images", tmp_path / "points", tmp_path / "pairs.txt")
    assert len(one) == 1 and one[0].points.path.name == "Point_Test_Mug_1.txt"
    (tmp_path / "bad.txt").write_text("Img_Test_Mug_grasp_1.jpg Point_Test_Bag_1.txt\n")
    with pytest.raises(ValueError, match="shows a Mug"):
        read_piad_pairs(tmp_path / "images", tmp_path / "points", tmp_path / "bad.txt")
    with pytest.raises(ValueError, match="predictions are"):
        score_piad_predictions(pairs, [np.zeros(5)] * 3)


def test_eval_cli_piad_with_the_model_and_with_predictions(tmp_path):
    _write_piad(tmp_path)
    base = [sys.executable, "-m", "interactvlm_ros", "eval", "--piad-images", str(tmp_path / "images"),
            "--piad-points", str(tmp_path / "points"), "--json", "--no-progress", "--threads", "1",
            "--set", f"cache.dir={tmp_path / 'cache'}"]
    proc = subprocess.run(base + ["--model", "tiny"], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert result["num_samples"] == 3 and 0.0 <= result["piad_sim"] <= 1.0 and result["piad_mae"] >= 0.0
    np.save(tmp_path / "p.npy", np.zeros((3, 96), np.float32))
    proc = subprocess.run(base + ["--predictions", str(tmp_path / "p.npy")], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["piad_mae"] > 0.0
    proc = subprocess.run(base[:6] + ["--json"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "needs both --piad-images DIR and --piad-points DIR" in proc.stderr


def test_eval_on_two_object_scenes_scores_each_object_query(tmp_path):
    """Two objects per image, the trained default model: semantic rows are (image, object) queries against each
    object's own contacts, binary rows the images' unions, so the two F1s differ."""
    import torch

    from interactvlm_ros.body import load_body_model
    from interactvlm_ros.data import SynthConfig, SyntheticDataset, SyntheticGenerator
    from interactvlm_ros.objects import ObjectLibrary

    torch.set_num_threads(1)
    gen = SyntheticGenerator(load_body_model("anny"), ObjectLibrary.shipped(),
                             SynthConfig(num=8, seed=3, image_size=128, mask_size=128, scenes="pairs"),
                             cache_dir=tmp_path / "renders")
    gen.write(tmp_path / "ds", progress=False)
    proc = subprocess.run([sys.executable, "-m", "interactvlm_ros", "eval", "--data", str(tmp_path / "ds"),
                           "--split", "train", "--json", "--no-progress", "--threads", "1",
                           "--set", f"cache.dir={tmp_path / 'cache'}"],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    ds = SyntheticDataset(tmp_path / "ds", "train")
    assert result["scenes"] == "pairs" and result["num_samples"] == len(ds)
    assert result["num_queries"] == 2 * len(ds)
    assert set(result["semantic_per_class"]) == {o["object"] for r in ds.rows for o in r["objects"]}
    assert abs(result["semantic_f1"] - result["human_f1"]) > 1e-3
    # the prior baseline, recomputed by hand: binary = union of the objects' thresholded class means
    means = ds.class_mean_contact()
    sem_prior = [means[o["object"]] for r in ds.rows for o in r["objects"]]
    sem_gt = [o["human_contact"] for i in range(len(ds)) for o in ds[i]["objects"]]
    assert result["prior_baseline_semantic_f1"] == pytest.approx(contact_scores(np.stack(sem_prior),
                                                                                np.stack(sem_gt)).f1.mean())
    union = np.stack([(np.stack([means[o["object"]] for o in r["objects"]]) >= 0.5).any(0) for r in ds.rows])
    gts = np.stack([ds[i]["human_contact"] for i in range(len(ds))])
    assert result["prior_baseline_human_f1"] == pytest.approx(contact_scores(union.astype(float), gts).f1.mean())
    low, high = result["semantic_f1_ci"]
    assert low <= result["semantic_f1"] <= high and result["intervals"]["unit"] == "image"


def test_transfer_map_carries_values_to_another_shape_of_the_class():
    from interactvlm_ros.evaluation.runner import transfer_map

    rng = np.random.default_rng(0)
    source = rng.normal(size=(50, 3))
    values = rng.random(50)
    np.testing.assert_array_equal(transfer_map(values, source, source), values)
    # the same shape stretched: every vertex keeps its value
    np.testing.assert_array_equal(transfer_map(values, source, source * [2.0, 0.5, 1.3] + 4.0), values)
    # another vertex set of the same box: each target vertex takes its nearest source vertex's value
    target = np.concatenate([source.min(0)[None], source.max(0)[None], source[:10] + 1e-4])
    out = transfer_map(values, source, target)
    assert out[2:].tolist() == values[:10].tolist()
    assert out[0] == values[np.argmin(np.linalg.norm(source - source.min(0), axis=1))]


def test_eval_reports_each_generalisation_split(tmp_path):
    import torch

    from interactvlm_ros.body import load_body_model
    from interactvlm_ros.data import SynthConfig, SyntheticDataset, SyntheticGenerator
    from interactvlm_ros.objects import ObjectLibrary

    torch.set_num_threads(1)
    gen = SyntheticGenerator(load_body_model("anny"), ObjectLibrary.shipped(),
                             SynthConfig(num=12, seed=4, image_size=128, mask_size=128, hold_out=("board/stand",),
                                         unseen_shapes=3), cache_dir=tmp_path / "renders")
    manifest = json.loads(gen.write(tmp_path / "ds", progress=False).read_text())
    assert manifest["splits"]["heldout_pairs"], "seed 4 shows board/stand among its first 12 samples"
    proc = subprocess.run([sys.executable, "-m", "interactvlm_ros", "eval", "--data", str(tmp_path / "ds"),
                           "--split", "all", "--json", "--no-progress", "--threads", "1",
                           "--set", f"cache.dir={tmp_path / 'cache'}"],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    names = [s for s in manifest["splits"] if s != "train"]
    assert result["split"] == ",".join(names) and set(result["splits"]) == set(names)
    for name in names:
        scores = result["splits"][name]
        assert scores["num_samples"] == len(SyntheticDataset(tmp_path / "ds", name)), name
        low, high = scores["object_f1_ci"]
        assert low <= scores["object_f1"] + 1e-4 and scores["object_f1"] <= high + 1e-4, name
    # the class prior never saw board/stand: its map for the board is the carried board's
    assert result["splits"]["heldout_pairs"]["prior_baseline_human_f1"] < 0.2
