"""objects.library paths stay inside the asset folders (shipped folder, the parameter file's folder,
objects.asset_dirs): ``..``, absolute and symlink escapes are ObjectLibraryErrors naming the entry, and a file
trimesh cannot parse is an ObjectLibraryError naming the file."""

from __future__ import annotations

from pathlib import Path

import pytest
import trimesh

from interactvlm_ros.config import load_config
from interactvlm_ros.objects import ObjectLibrary, ObjectLibraryError, shipped_dir


@pytest.fixture
def layout(tmp_path) -> dict[str, Path]:
    """``cfg/params.yaml`` with ``cfg/crate.obj`` beside it, and ``outside/secret.ply`` (a valid mesh) that no
    configured folder holds."""
    cfg, outside = tmp_path / "cfg", tmp_path / "outside"
    cfg.mkdir()
    outside.mkdir()
    trimesh.creation.box(extents=(0.1, 0.2, 0.3)).export(cfg / "crate.obj")
    trimesh.creation.icosphere().export(outside / "secret.ply")
    return {"cfg": cfg, "outside": outside, "params": cfg / "params.yaml"}


def library_from(layout, entries: list[str], asset_dirs: list[str] | None = None) -> ObjectLibrary:
    lines = ["/**:", "  ros__parameters:", f"    objects.library: {entries!r}"]
    if asset_dirs is not None:
        lines.append(f"    objects.asset_dirs: {asset_dirs!r}")
    layout["params"].write_text("\n".join(lines) + "\n")
    return ObjectLibrary.from_config(load_config(layout["params"]))


def test_dotdot_escape_from_the_shipped_folder_is_rejected():
    depth = len(shipped_dir().resolve().parts)
    entry = "cup:" + "../" * depth + "etc/passwd"
    with pytest.raises(ObjectLibraryError, match=rf"entry '{entry}': /etc/passwd is outside the asset folders "
                                                 r"\(.*\); move the mesh into one of them or add its folder to "
                                                 r"objects.asset_dirs"):
        ObjectLibrary.from_entries([entry])


def test_dotdot_escape_from_the_parameter_file_folder_is_rejected(layout):
    with pytest.raises(ObjectLibraryError, match=r"entry 'secret:\.\./outside/secret\.ply': .*secret\.ply is "
                                                 r"outside the asset folders"):
        library_from(layout, ["secret:../outside/secret.ply"])
    # `..` that stays inside a configured folder is fine
    lib = library_from(layout, ["crate:../cfg/crate.obj"])
    assert lib.path("crate") == (layout["cfg"] / "crate.obj").resolve()


def test_absolute_path_only_inside_a_configured_folder(layout):
    secret = layout["outside"] / "secret.ply"
    with pytest.raises(ObjectLibraryError, match=rf"entry 'secret:{secret}': {secret} is outside"):
        library_from(layout, [f"secret:{secret}"])
    lib = library_from(layout, [f"secret:{secret}", "drill:secret.ply"], asset_dirs=[str(layout["outside"])])
    assert lib.path("secret") == lib.path("drill") == secret.resolve()
    assert len(lib.mesh("secret").faces) > 0
    # a relative asset_dirs entry is relative to the parameter file's folder
    assert library_from(layout, ["s:secret.ply"], asset_dirs=["../outside"]).path("s") == secret.resolve()


def test_symlink_escapes_are_rejected(layout):
    cfg = layout["cfg"]
    (cfg / "link.ply").symlink_to(layout["outside"] / "secret.ply")
    (cfg / "linked_dir").symlink_to(layout["outside"], target_is_directory=True)
    for entry in ("s:link.ply", "s:linked_dir/secret.ply"):
        with pytest.raises(ObjectLibraryError, match=rf"entry '{entry}': .*secret\.ply is outside the asset"):
            library_from(layout, [entry])
    (cfg / "inner.obj").symlink_to(cfg / "crate.obj")  # a link that stays inside is fine
    assert library_from(layout, ["crate:inner.obj"]).path("crate") == (cfg / "crate.obj").resolve()


def test_a_missing_asset_dir_and_a_non_mesh_file_are_named(layout):
    with pytest.raises(ObjectLibraryError, match=r"objects.asset_dirs entry 'nowhere': .*nowhere is not a folder"):
        library_from(layout, ["crate:crate.obj"], asset_dirs=["nowhere"])
    (layout["cfg"] / "notes.txt").write_text("hello")
    with pytest.raises(ObjectLibraryError, match=r"entry 'n:notes\.txt': notes\.txt is not a mesh file the "
                                                 r"library reads \(glb, obj, off, ply, stl\)"):
        library_from(layout, ["n:notes.txt"])


@pytest.mark.parametrize("content", [b"garbage, not a mesh\n" * 10,
                                     b"ply\nformat binary_little_endian 1.0\nelement vertex 100\nproperty float x\n"
                                     b"end_header\n" + b"\x00" * 10])
def test_a_garbage_ply_is_an_object_library_error(layout, content):
    bad = layout["cfg"] / "bad.ply"
    bad.write_bytes(content)
    lib = library_from(layout, ["bad:bad.ply"])
    with pytest.raises(ObjectLibraryError, match=rf"{bad.resolve()} \(label 'bad'\) is not a readable ply mesh "
                                                 r"\(\w+: .+\)|holds no triangles"):
        lib.mesh("bad")


def test_obj_side_files_are_not_read(layout):
    """An OBJ's material library is not followed (the mesh is parsed from the file's bytes alone)."""
    obj = layout["cfg"] / "tri.obj"
    obj.write_text("mtllib ../outside/secret.mtl\nv 0 0 0\nv 0.1 0 0\nv 0 0.1 0\nf 1 2 3\n")
    (layout["outside"] / "secret.mtl").write_text("newmtl x\nmap_Kd /etc/passwd\n")
    mesh = library_from(layout, ["tri:tri.obj"]).mesh("tri")
    assert len(mesh.faces) == 1 and not getattr(mesh.visual, "material", None)


def test_the_working_directory_is_not_searched(layout, monkeypatch):
    monkeypatch.chdir(layout["outside"])
    with pytest.raises(ObjectLibraryError, match=r"'s:secret\.ply': mesh file not found"):
        library_from(layout, ["s:secret.ply"])


def test_infer_mesh_file_errors_name_the_file(tmp_path):
    """``infer --mesh FILE`` reads with the library's parser: one-line errors naming the file."""
    from interactvlm_ros.objects.library import read_mesh_file

    bad = tmp_path / "drill.stl"
    bad.write_bytes(b"solid x\nfacet normal 0 0 1\nouter loop\nvertex 0 0\n")  # a vertex with two coordinates
    with pytest.raises(ObjectLibraryError, match=rf"^--mesh {bad} (is not a readable stl mesh|holds no triangles)"):
        read_mesh_file(bad, "--mesh {path}")
    with pytest.raises(ObjectLibraryError, match=r"\.gltf is not a mesh format read here"):
        read_mesh_file(tmp_path / "scene.gltf", "--mesh {path}")
    with pytest.raises(ObjectLibraryError, match=r"cannot read it"):
        read_mesh_file(tmp_path / "missing.ply", "--mesh {path}")
    good = tmp_path / "tri.obj"
    good.write_text("v 0 0 0\nv 0.1 0 0\nv 0 0.1 0\nf 1 2 3\n")
    mesh, data = read_mesh_file(good)
    assert len(mesh.faces) == 1 and data == good.read_bytes()
