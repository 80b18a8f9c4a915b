"""``interactvlm infer`` and ``interactvlm model check`` as a user runs them (tiny model, Anny)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from interactvlm_ros.cli.main import main

MANIFESTS = Path(__file__).resolve().parents[1] / "data" / "official_checkpoint_keys"
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def image_file(tmp_path_factory):
    """A 16-bit grayscale PNG (the reader and the predictor must cope with it)."""
    path = tmp_path_factory.mktemp("img") / "person__chair.png"
    y, x = np.mgrid[0:120, 0:160]
    Image.fromarray(((x * 400 + y * 100) % 65535).astype(np.uint16)).save(path)
    return path


def test_infer_human_writes_every_output(image_file, tmp_path, capsys):
    out = tmp_path / "out"
    # a gradient has no person in it: the person gate (tests/test_person_gate.py) would withhold every contact
    rc = main(["infer", str(image_file), "--object", "chair", "--object", "basketball", "--object", "couch",
               "--out", str(out), "--set", "contact.person_gate=disabled"])
    assert rc == 0
    printed = capsys.readouterr().out
    # the default model knows 7 objects: basketball is asked as ball, a couch is not asked at all
    assert "chair:" in printed and "basketball -> ball (synonym):" in printed
    assert "couch: '' -> not found ('couch' is not an object this model was trained on; it knows: ball, board, " \
           "bottle, box, chair, mug, table" in printed
    files = sorted(p.name for p in out.iterdir())
    assert files == ["body_basketball.ply", "body_chair.ply", "contacts.json", "contacts.npz", "contacts.png"]
    with np.load(out / "contacts.npz") as z:
        assert list(z["labels"]) == ["chair", "ball", "couch"] and z["found"].tolist() == [True, True, False]
        probs, masks = z["human_probs"], z["view_masks"]
    record = json.loads((out / "contacts.json").read_text())
    assert [(c["query"], c["label"], c["name_match"]) for c in record["contacts"]] == [
        ("chair", "chair", "known"), ("basketball", "ball", "synonym"), ("couch", "couch", "unknown")]
    assert "it knows: ball, board" in record["contacts"][2]["reason"] and "human_probs" not in record["contacts"][2]
    assert record["body_model"] == "anny" and probs.shape == (3, record["num_body_vertices"])
    assert masks.shape[:2] == (2, 4) and ((0 <= probs[:2]) & (probs[:2] <= 1)).all() and np.isnan(probs[2]).all()
    np.testing.assert_allclose(record["contacts"][1]["human_probs"], probs[1], atol=1e-5)
    import trimesh

    ply = trimesh.load(out / "body_chair.ply", process=False)
    assert len(ply.vertices) == probs.shape[1] and ply.visual.vertex_colors.shape[0] == probs.shape[1]
    png = Image.open(out / "contacts.png")
    assert png.width >= 7 * 200 and png.height >= 2 * 200  # one row per object, 7 tiles
    assert not list(out.glob(".*.tmp"))


def test_infer_object_mode_uses_the_library_mesh_or_a_file(image_file, tmp_path):
    out = tmp_path / "obj"
    assert main(["infer", str(image_file), "--object", "coffee mug", "--mode", "object", "--out", str(out)]) == 0
    record = json.loads((out / "contacts.json").read_text())
    c = record["contacts"][0]
    assert c["found"] and c["object_mesh_id"].startswith("mug@") and len(c["object_probs"]) > 0
    assert (out / "object_coffee_mug.ply").is_file() and (out / "contacts.png").is_file()
    import trimesh

    mesh_path = tmp_path / "thing.obj"
    trimesh.creation.icosphere(subdivisions=1).export(mesh_path)
    out2 = tmp_path / "obj2"
    assert main(["infer", str(image_file), "--object", "ball", "--mode", "object", "--mesh", str(mesh_path),
                 "--out", str(out2)]) == 0
    c2 = json.loads((out2 / "contacts.json").read_text())["contacts"][0]
    assert c2["object_mesh_id"] == "thing.obj" and len(c2["object_probs"]) == 42


def test_infer_2d_mode_and_bad_input(image_file, tmp_path, capsys):
    out = tmp_path / "2d"
    assert main(["infer", str(image_file), "--object", "cup", "--mode", "2d", "--out", str(out)]) == 0
    with np.load(out / "contacts.npz") as z:
        assert z["view_masks"].shape == (1, 1, 120, 160)
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image")
    assert main(["infer", str(bad), "--object", "cup", "--out", str(tmp_path / "x")]) == 2
    assert "cannot read image" in capsys.readouterr().out


@pytest.mark.parametrize("preset,manifest", [("official-13b", "official_13b_keys.tsv"),
                                             ("official-7b", "official_7b_keys.tsv")])
def test_model_check_matches_official_manifests(preset, manifest, capsys):
    assert main(["model", "check", "--preset", preset, "--manifest", str(MANIFESTS / manifest), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["missing"] == report["unexpected"] == report["shape_mismatch"] == 0
    assert report["matched"] == {"official-13b": 975, "official-7b": 903}[preset]


def test_model_check_fails_on_a_wrong_manifest(tmp_path, capsys):
    lines = (MANIFESTS / "official_13b_keys.tsv").read_text().splitlines()
    wrong = [ln.replace("32003,5120", "32005,5120") for ln in lines if not ln.startswith("model.norm.")]
    (tmp_path / "m.tsv").write_text("\n".join(wrong + ["attention_splitter.key.bias\t128"]) + "\n")
    assert main(["model", "check", "--preset", "official-13b", "--manifest", str(tmp_path / "m.tsv"), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert (report["missing"], report["unexpected"], report["shape_mismatch"]) == (1, 1, 2)
    assert report["missing_keys"] == ["model.norm.weight"]


def test_infer_with_a_saved_model_directory(image_file, tmp_path):
    from interactvlm_ros.model.checkpoint import load_model

    loaded = load_model("tiny")
    loaded.model.save_pretrained(tmp_path / "mymodel", loaded.tokenizer)
    out = tmp_path / "out"
    assert main(["infer", str(image_file), "--object", "cup", "--model", str(tmp_path / "mymodel"), "--mode", "2d",
                 "--out", str(out)]) == 0
    record = json.loads((out / "contacts.json").read_text())
    assert record["model"] == str(tmp_path / "mymodel") and record["contacts"][0]["found"]


def test_model_check_a_checkpoint_directory(tmp_path, capsys):
    from interactvlm_ros.model.checkpoint import load_model

    loaded = load_model("tiny")
    d = loaded.model.save_pretrained(tmp_path / "m", loaded.tokenizer)
    assert main(["model", "check", "--checkpoint", str(d), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["matched"] == len(loaded.model.state_dict()) and report["missing"] == 0
    assert main(["model", "check", "--manifest", str(MANIFESTS / "official_7b_keys.tsv")]) == 2
