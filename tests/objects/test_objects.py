"""The object library: shipped CC0 meshes with metric sizes, the objects.library parameter, lookup, errors."""

import numpy as np
import pytest
import trimesh

from interactvlm_ros.config import load_config
from interactvlm_ros.config.schema import PARAMETERS_BY_NAME
from interactvlm_ros.objects import ObjectLibrary, ObjectLibraryError, shipped_dir
from interactvlm_ros.objects.generate import SHIPPED, build, main

REQUIRED = ["box", "bottle", "mug", "chair", "ball", "board", "table"]

# Real-world sizes (largest extent, metres) the shipped meshes must have, with a generous tolerance.
EXPECTED_MAX_EXTENT = {"box": 0.40, "bottle": 0.25, "mug": 0.134, "chair": 0.90, "ball": 0.22, "board": 0.60,
                       "table": 1.20}


@pytest.fixture(scope="module")
def library():
    return ObjectLibrary.from_config(load_config(None))


def test_default_parameter_lists_every_shipped_mesh(library):
    default = PARAMETERS_BY_NAME["objects.library"].default
    assert default == [f"{label}:{name}" for label, (_, name) in SHIPPED.items()]
    assert set(REQUIRED) <= set(library.labels())
    assert (shipped_dir() / "LICENSE").read_text().count("CC0") >= 1


@pytest.mark.parametrize("label", REQUIRED)
def test_shipped_mesh_is_metric_centred_and_small(library, label):
    mesh = library.mesh(label)
    assert isinstance(mesh, trimesh.Trimesh)
    assert 300 <= len(mesh.vertices) <= 5000
    assert np.allclose(mesh.bounds.mean(axis=0), 0.0, atol=1e-6)
    assert library.size(label).max() == pytest.approx(EXPECTED_MAX_EXTENT[label], rel=0.02)
    assert library.path(label).stat().st_size < 200_000
    # Even vertex spacing: no edge longer than a fifth of the object.
    assert mesh.edges_unique_length.max() < 0.2 * mesh.extents.max()


def test_shipped_files_match_the_generator(library):
    for label in ("box", "mug", "chair"):
        regenerated = build(label)
        shipped = library.mesh(label)
        assert len(regenerated.vertices) == len(shipped.vertices)
        assert np.allclose(np.sort(regenerated.vertices, axis=0), np.sort(shipped.vertices, axis=0), atol=1e-6)


def test_generator_writes_loadable_files(tmp_path):
    assert main(["--out", str(tmp_path)]) == 0
    lib = ObjectLibrary.from_entries([f"ball:{tmp_path / 'ball.ply'}"], asset_dirs=[tmp_path])
    assert lib.size("ball") == pytest.approx([0.22, 0.22, 0.22], rel=0.02)
    assert not list(tmp_path.glob("*.tmp"))


def test_mesh_is_a_copy_and_id_is_stable(library):
    a = library.mesh("box")
    a.vertices[:] = 0.0
    assert library.mesh("box").extents.max() > 0.3
    assert library.mesh_id("box") == library.mesh_id("box")
    assert library.mesh_id("box").startswith("box@")
    assert library.mesh_id("box") != library.mesh_id("ball")


@pytest.mark.parametrize("name,label", [("mug", "mug"), ("Coffee Mug", "mug"), ("sports ball", "ball"),
                                        ("dining table", "table"), ("bottles", "bottle"), ("red chair", "chair"),
                                        ("giraffe", None)])
def test_lookup_free_text(library, name, label):
    assert library.lookup(name) == label


def test_user_entry_relative_to_parameter_file(tmp_path):
    trimesh.creation.box(extents=(0.1, 0.2, 0.3)).export(tmp_path / "crate.obj")
    params = tmp_path / "params.yaml"
    params.write_text("/**:\n  ros__parameters:\n    objects.library: ['crate:crate.obj', 'ball:ball.ply']\n")
    lib = ObjectLibrary.from_config(load_config(params))
    assert lib.labels() == ["crate", "ball"]
    assert lib.size("crate") == pytest.approx([0.1, 0.2, 0.3])


@pytest.mark.parametrize("entries,match", [
    (["box"], r"expected 'label:path'"),
    (["box:"], r"must both be non-empty"),
    (["box:does_not_exist.ply"], r"'box:does_not_exist.ply': mesh file not found"),
    (["box:box.ply", "box:ball.ply"], r"label 'box' is listed twice"),
])
def test_bad_entries_are_named(entries, match):
    with pytest.raises(ObjectLibraryError, match=match):
        ObjectLibrary.from_entries(entries)


def test_unknown_label_and_unreadable_file(library, tmp_path):
    with pytest.raises(ObjectLibraryError, match=r"'giraffe' is not in objects.library"):
        library.mesh("giraffe")
    bad = tmp_path / "bad.ply"
    bad.write_text("not a mesh")
    with pytest.raises(ObjectLibraryError, match=r"bad\.ply \(label 'bad'\) is not a readable ply mesh"):
        ObjectLibrary.from_entries([f"bad:{bad}"], asset_dirs=[tmp_path]).mesh("bad")
