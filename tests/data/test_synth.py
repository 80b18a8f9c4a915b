"""Synthetic interaction generator: determinism, plausible contacts, face-rule masks, dataset folder + reader."""

import json

import numpy as np
import pytest
import torch
import trimesh
from scipy.spatial import cKDTree

from interactvlm_ros.body import load_body_model
from interactvlm_ros.data import DatasetError, SynthConfig, SyntheticDataset, SyntheticGenerator
from interactvlm_ros.data.interactions import (
    Placement,
    build_catalogue,
    contacts,
    penetration_depth,
    yaw_symmetry_order,
)
from interactvlm_ros.data.posing import FINGERS, PoseBuilder, axis_rotation, palm_frame
from interactvlm_ros.data.synthesize import face_masks
from interactvlm_ros.objects import ObjectLibrary


@pytest.fixture(scope="module")
def generator(tmp_path_factory):
    torch.set_num_threads(1)
    body = load_body_model("anny")
    cache = tmp_path_factory.mktemp("renders")
    return SyntheticGenerator(body, ObjectLibrary.shipped(), SynthConfig(num=6, seed=5, image_size=64,
                                                                        mask_size=64), cache_dir=cache)


def test_catalogue_has_ambiguous_interactions_per_class():
    by_class = {}
    for it in build_catalogue():
        by_class.setdefault(it.label, []).append(it.name)
    for label in ("bottle", "mug", "box", "chair", "ball", "table", "board"):
        assert len(by_class[label]) >= 2, label
    assert {"hold_left", "hold_right"} <= set(by_class["bottle"])
    assert {"carry", "sit", "stand"} <= set(by_class["box"])
    assert {"kick_left", "kick_right", "hold"} <= set(by_class["ball"])


def test_sample_is_deterministic_and_touches_the_right_parts(generator):
    parts = generator.parts
    for i in range(6):
        s = generator.sample(i)
        it = s["interaction"]
        h = s["human_contact"]
        assert h.sum() >= 10 and s["object_contact"].sum() >= 3
        assert s["image"].shape == (64, 64, 3) and s["image"].dtype == np.uint8
        if it.name in ("hold_left", "kick_left", "lean_left"):
            side = "left hand" if "kick" not in it.name else "left foot"
            other = side.replace("left", "right")
            assert h[parts[side]].sum() > h[parts[other]].sum(), it.key
        # masks follow the face rule on the canonical renders
        np.testing.assert_array_equal(s["human_masks"], face_masks(h, generator.faces,
                                                                   generator.human_views.render.face_ids))
    again = generator.sample(3)
    np.testing.assert_array_equal(again["image"], generator.sample(3)["image"])
    np.testing.assert_array_equal(again["human_contact"], generator.sample(3)["human_contact"])


def _first_index(generator, key: str) -> int:
    """The first sample index that shows interaction ``key``."""
    return next(i for i in range(500) if generator.interaction_at(i).key == key)


def test_grip_turns_the_palm_and_flexes_the_fingers(generator):
    pb = PoseBuilder(generator.body.joint_names, generator.parents, generator.rest_joints)
    palm, finger = np.array([1.0, 0.0, 0.0]), np.array([0.0, -0.2, 1.0])  # right hand: palm inwards (+x)
    pb.grip("R", palm=palm, finger=finger, radius=0.035)
    with torch.no_grad():
        joints = generator.body.forward(pose=torch.from_numpy(pb.pose_vector())[None]).joints[0].numpy()
    index = {n: i for i, n in enumerate(generator.body.joint_names)}
    centre, normal, _, across = palm_frame(lambda n: joints[index[n]], "R")
    assert normal @ palm > 0.95  # the palm faces where asked
    # every finger curls towards the palm side: its tip joint ends up on the palm's side of the hand
    for f in FINGERS[1:]:
        tip = joints[index[f"finger{f}-3.R"]] - centre
        assert tip @ normal > 0.02, f
    _, rest_normal, _, _ = palm_frame(lambda n: generator.rest_joints[index[n]], "R")
    assert rest_normal @ palm < 0.9  # the rest hand did not already face that way


@pytest.mark.parametrize("key", ["bottle/hold_left", "mug/hold_right"])
def test_held_objects_sit_in_a_power_grasp(generator, key):
    """Palm and the inner faces of the fingers touch the object; the fingers wrap it without going through."""
    s = generator.sample(_first_index(generator, key))
    side = "left" if key.endswith("left") else "right"
    with torch.no_grad():
        out = generator.body.forward(pose=torch.from_numpy(s["pose"])[None],
                                     shape=torch.from_numpy(s["shape"])[None])
    verts, joints = out.vertices[0].numpy(), out.joints[0].numpy()
    index = {n: i for i, n in enumerate(generator.body.joint_names)}
    mesh = generator.meshes[key.split("/")[0]]
    obj = (np.asarray(mesh.vertices) @ s["object_rotation"].T) * s["object_scale"] + s["object_translation"]
    surface = cKDTree(trimesh.Trimesh(obj, mesh.faces, process=False).sample(4000, seed=0))
    centre, normal, finger, across = palm_frame(lambda n: joints[index[n]], side[0].upper())
    hand = generator.parts[f"{side} hand"]
    rel = verts[hand] - centre
    palm = verts[hand][(np.abs(rel @ across) < 0.03) & (np.abs(rel @ finger) < 0.03) & (rel @ normal > 0)]
    assert surface.query(palm)[0].min() < 0.02  # the palm rests on the object
    tips = [joints[index[f"finger{f}-3.{side[0].upper()}"]] for f in FINGERS[1:]]
    assert max(surface.query(tips)[0]) < 0.025  # all four fingers closed on it (last joints at its surface)
    h = s["human_contact"]
    assert h[hand].sum() >= 0.9 * h.sum() and h[hand].sum() > 150
    assert penetration_depth(verts, obj, generator.components[key.split("/")[0]]) <= 0.02


def test_face_mask_rule_needs_two_contact_vertices():
    faces = np.array([[0, 1, 2], [2, 3, 0]])
    face_ids = np.array([[[0, 1, -1]]])
    contact = np.array([1, 0, 1, 0])
    np.testing.assert_array_equal(face_masks(contact, faces, face_ids), [[[True, True, False]]])
    contact = np.array([1, 0, 0, 0])
    np.testing.assert_array_equal(face_masks(contact, faces, face_ids), [[[False, False, False]]])


def test_penetration_depth_of_a_point_inside_a_cube():
    cube = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], dtype=float)
    assert penetration_depth(np.array([[0.5, 0.5, 0.9]]), cube) == pytest.approx(0.1)
    assert penetration_depth(np.array([[2.0, 0.5, 0.5]]), cube) == 0.0


def test_yaw_symmetry_orders_of_the_shipped_meshes():
    lib = ObjectLibrary.shipped()
    orders = {label: yaw_symmetry_order(lib.mesh(label).vertices) for label in ("table", "box", "bottle", "mug")}
    assert orders["table"] == 2 and orders["box"] == 2
    assert orders["bottle"] >= 8  # a revolved profile: one symmetry per segment
    assert orders["mug"] == 1  # the handle breaks it
    assert yaw_symmetry_order(np.random.default_rng(0).normal(size=(50, 3))) == 1


def test_an_invisible_turn_does_not_move_the_object_labels():
    """A table turned by 180° is the same geometry: after ``without_symmetric_yaw`` its contact labels are the
    unturned table's; without it they land on the opposite edge's vertex ids."""
    table = ObjectLibrary.shipped().mesh("table")
    tv, tf = np.asarray(table.vertices, float), np.asarray(table.faces)
    order = yaw_symmetry_order(tv)
    top_edge = tv[np.argmax(tv[:, 1] + tv[:, 2])]  # a corner of the top's +z edge
    hand = trimesh_box(0.1, top_edge + [0.0, 0.05, 0.0])
    t = np.zeros(3)
    upright = Placement(np.eye(3), t)
    turned = Placement(axis_rotation([0, 1, 0], 180.0), t)
    reduced = turned.without_symmetric_yaw(order)
    np.testing.assert_allclose(reduced.rotation, np.eye(3), atol=1e-9)
    _, ref = contacts(hand.vertices, hand.faces, upright.apply(tv), tf)
    _, raw = contacts(hand.vertices, hand.faces, turned.apply(tv), tf)
    _, fixed = contacts(hand.vertices, hand.faces, reduced.apply(tv), tf)
    assert ref.sum() >= 3 and not np.array_equal(raw, ref)
    np.testing.assert_array_equal(fixed, ref)
    # a box carried across the hands is turned about a quarter turn, and stays so on either side of it
    for deg in (84.0, 97.0):
        carried = Placement(axis_rotation([0, 1, 0], deg), t, nominal=axis_rotation([0, 1, 0], 90.0))
        np.testing.assert_array_equal(carried.without_symmetric_yaw(2).rotation, carried.rotation)
    # a bottle keeps its turn modulo one segment, and the placed vertex set is unchanged
    bottle = np.asarray(ObjectLibrary.shipped().mesh("bottle").vertices, float)
    k = yaw_symmetry_order(bottle)
    for deg in (-170.0, -40.0, 95.0, 179.0):
        p = Placement(axis_rotation([0, 1, 0], deg), t).without_symmetric_yaw(k)
        angle = np.degrees(np.arctan2(p.rotation[0, 2], p.rotation[0, 0]))
        assert abs(angle) <= 180.0 / k + 1e-6
        d, _ = cKDTree(p.apply(bottle)).query(Placement(axis_rotation([0, 1, 0], deg), t).apply(bottle))
        assert d.max() < 1e-4


def trimesh_box(size: float, centre) -> trimesh.Trimesh:
    return trimesh.creation.box(extents=(size, size, size), transform=trimesh.transformations.translation_matrix(
        centre))


def test_dataset_folder_and_reader(generator, tmp_path):
    path = generator.write(tmp_path / "ds", progress=False)
    manifest = json.loads(path.read_text())
    assert manifest["num_samples"] == 6 and manifest["mask_size"] == 64
    assert sum(len(v) for v in manifest["splits"].values()) == 6
    ds = SyntheticDataset(tmp_path / "ds")
    item = ds[0]
    assert item["human_contact"].shape == (ds.num_body_vertices,)
    assert item["human_masks"].shape == (4, 64, 64)
    n_obj = manifest["objects"][item["object"]]["num_vertices"]
    assert item["object_contact"].shape == (n_obj,)
    means = ds.class_mean_contact()
    assert set(means) == {r["object"] for r in manifest["samples"]}
    with pytest.raises(DatasetError, match="no split"):
        SyntheticDataset(tmp_path / "ds", split="nope")
    with pytest.raises(DatasetError, match="not found"):
        SyntheticDataset(tmp_path / "missing")


def test_parallel_writer_matches_one_process_byte_for_byte(generator, tmp_path):
    from functools import partial

    from interactvlm_ros.cli.synth import build_generator
    from interactvlm_ros.config import load_config

    serial = generator.write(tmp_path / "one", progress=False).parent
    build = partial(build_generator, load_config(None, ["body.model=anny"]), generator.config, tmp_path / "renders")
    parallel = generator.write(tmp_path / "two", progress=False, workers=2, build=build).parent
    files = sorted(p.relative_to(serial) for p in serial.rglob("*") if p.is_file())
    assert len(files) == 2 * 6 + 1 + 1 + len(generator.object_views)
    assert files == sorted(p.relative_to(parallel) for p in parallel.rglob("*") if p.is_file())
    for f in files:
        assert (serial / f).read_bytes() == (parallel / f).read_bytes(), f
    with pytest.raises(ValueError, match="needs build"):
        generator.write(tmp_path / "three", progress=False, workers=2)


@pytest.fixture(scope="module")
def pair_generator(generator, tmp_path_factory):
    from dataclasses import replace

    return SyntheticGenerator(generator.body, ObjectLibrary.shipped(), replace(generator.config, scenes="pairs"),
                              cache_dir=tmp_path_factory.mktemp("pair_renders"))


# body parts each object of a two-object scene must touch more than the other object does
EXPECTED_PARTS = {"chair/sit": ("hips", "left thigh", "right thigh"), "board/stand": ("left foot", "right foot"),
                  "box/carry": ("left hand", "right hand")}


def test_pair_scenes_label_each_object_on_its_own_body_parts(pair_generator):
    parts = pair_generator.parts
    seen = set()
    for i in range(8):
        s = pair_generator.sample(i)
        scene = s["interaction"]
        seen.add(scene.key)
        assert len(s["objects"]) == 2 and "object_contact" not in s
        h = [o["human_contact"] for o in s["objects"]]
        np.testing.assert_array_equal(s["human_contact"], h[0] | h[1])
        for k, o in enumerate(s["objects"]):
            key = o["interaction"].key
            side = "left" if key.endswith("left") else "right"
            names = EXPECTED_PARTS.get(key, (f"{side} hand",))
            ids = np.concatenate([parts[n] for n in names])
            assert h[k][ids].sum() > 2 * h[1 - k][ids].sum() and h[k][ids].sum() >= 10, (scene.key, key)
            assert o["object_contact"].sum() >= 3
        # the two objects' body contacts are (nearly) disjoint: semantic labels differ from the union
        assert (h[0] & h[1]).sum() < 0.05 * min(h[0].sum(), h[1].sum())
    assert len(seen) >= 3
    np.testing.assert_array_equal(pair_generator.sample(2)["image"], pair_generator.sample(2)["image"])


def test_pair_dataset_reader_gives_each_object_and_training_refuses_it(pair_generator, tmp_path):
    import subprocess
    import sys
    from dataclasses import replace

    pair_generator.config = replace(pair_generator.config, num=4)
    path = pair_generator.write(tmp_path / "ds", progress=False)
    manifest = json.loads(path.read_text())
    assert manifest["scenes"] == "pairs" and len(manifest["combinations"]) == len(pair_generator.combinations)
    ds = SyntheticDataset(tmp_path / "ds")
    assert ds.scenes == "pairs"
    for i in range(len(ds)):
        item, row = ds[i], ds.rows[i]
        assert [o["object"] for o in item["objects"]] == [o["object"] for o in row["objects"]]
        assert item["object"] == "+".join(o["object"] for o in row["objects"])
        union = np.maximum(item["objects"][0]["human_contact"], item["objects"][1]["human_contact"])
        np.testing.assert_array_equal(item["human_contact"], union)
        for o in item["objects"]:
            assert o["object_contact"].shape == (manifest["objects"][o["object"]]["num_vertices"],)
    means = ds.class_mean_contact()
    assert set(means) == {o["object"] for r in ds.rows for o in r["objects"]}
    proc = subprocess.run([sys.executable, "-m", "interactvlm_ros", "train", "--data", str(tmp_path / "ds"),
                           "--out", str(tmp_path / "run"), "--steps", "1", "--threads", "1"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "is for evaluation" in proc.stderr, proc.stderr[-1000:]


def test_generalisation_splits_hold_out_pairs_and_show_new_shapes(generator, tmp_path):
    from dataclasses import replace

    from interactvlm_ros.objects.generate import build, make_variant

    held = generator.interaction_at(0).key
    gen = SyntheticGenerator(generator.body, ObjectLibrary.shipped(),
                             replace(generator.config, num=6, hold_out=(held,), unseen_shapes=2),
                             cache_dir=tmp_path / "renders")
    manifest = json.loads(gen.write(tmp_path / "ds", progress=False).read_text())
    rows = {r["id"]: r for r in manifest["samples"]}
    assert manifest["hold_out"] == [held] and len(rows) == 8
    for split, ids in manifest["splits"].items():
        for sid in ids:
            shown = f"{rows[sid]['object']}/{rows[sid]['interaction']}"
            assert (shown == held) == (split == "heldout_pairs") or split == "unseen_shapes", (split, shown)
    assert "000000" in manifest["splits"]["heldout_pairs"]
    assert manifest["splits"]["unseen_shapes"] == ["000006", "000007"]
    unseen = SyntheticDataset(tmp_path / "ds", "unseen_shapes")
    for i in range(len(unseen)):
        label = unseen[i]["object"]
        path = unseen.object_mesh_file(i, label)
        mesh = trimesh.load(path, process=False)
        assert unseen[i]["object_contact"].shape == (len(mesh.vertices),)
        assert manifest["unseen_objects"][label]["num_vertices"] == len(mesh.vertices)
        # a new instance: other proportions than the shipped mesh of that class
        assert np.abs(mesh.extents - build(label).extents).max() > 0.005
        np.testing.assert_allclose(mesh.vertices, make_variant(label, generator.config.seed).vertices, atol=1e-6)
    assert SyntheticDataset(tmp_path / "ds", "train").object_mesh_file(0, "box") is None
    with pytest.raises(ValueError, match="hold_out: no interaction box/fly"):
        SyntheticGenerator(generator.body, ObjectLibrary.shipped(), replace(generator.config, hold_out=("box/fly",)))

