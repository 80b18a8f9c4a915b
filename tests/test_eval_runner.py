"""The eval runner: a model on a synthetic split with the prior baseline, and DECO scoring of a DAMON
predictions file."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from interactvlm_ros.evaluation import MeshGeodesic, contact_scores
from interactvlm_ros.evaluation.readers import read_damon_npz
from interactvlm_ros.evaluation.runner import score_damon_predictions

KEYS = ("human_f1", "human_precision", "human_recall", "human_geodesic_fp_cm", "semantic_f1", "object_f1",
        "prior_baseline_human_f1", "num_samples")


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    from interactvlm_ros.body import load_body_model
    from interactvlm_ros.data import SynthConfig, SyntheticGenerator
    from interactvlm_ros.objects import ObjectLibrary

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("evalds")
    gen = SyntheticGenerator(load_body_model("anny"), ObjectLibrary.shipped(),
                             SynthConfig(num=10, seed=2, image_size=64, mask_size=64), cache_dir=root / "renders")
    gen.write(root / "ds", progress=False)
    return root


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
    assert 0.0 <= result["human_f1"] <= 1.0 and result["human_geodesic_fp_cm"] >= 0.0


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
    with pytest.raises(ValueError, match="do not match"):
        score_damon_predictions(split, pred[:1])
