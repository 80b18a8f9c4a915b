"""Atomic file writes: content lands whole, failures leave the destination and the folder untouched."""

import stat

import numpy as np
import pytest

from interactvlm_ros.files.atomic import atomic_path, atomic_write_bytes, atomic_write_text


def test_bytes_and_text_replace_existing_file(tmp_path):
    p = tmp_path / "sub" / "out.bin"  # missing parent is created
    assert atomic_write_bytes(p, b"first") == p
    assert p.read_bytes() == b"first"
    atomic_write_text(p, "zweite \u00fc\n")
    assert p.read_text(encoding="utf-8") == "zweite \u00fc\n"
    assert stat.S_IMODE(p.stat().st_mode) == 0o644
    assert sorted(x.name for x in p.parent.iterdir()) == ["out.bin"]


def test_atomic_path_gives_a_hidden_temp_in_the_same_folder(tmp_path):
    p = tmp_path / "arrays.npz"
    with atomic_path(p) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".arrays.npz.") and tmp.suffix == ".tmp"
        assert not p.exists()
        with open(tmp, "wb") as f:
            np.savez_compressed(f, x=np.arange(3))
    with np.load(p) as z:
        assert z["x"].tolist() == [0, 1, 2]
    assert [x.name for x in tmp_path.iterdir()] == ["arrays.npz"]


def test_failure_keeps_old_content_and_removes_temp(tmp_path):
    p = tmp_path / "model.bin"
    p.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="disk full"), atomic_path(p) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("disk full")
    assert p.read_bytes() == b"old"
    assert [x.name for x in tmp_path.iterdir()] == ["model.bin"]


def test_writer_that_deletes_its_temp_still_fails_cleanly(tmp_path):
    p = tmp_path / "gone.txt"
    with pytest.raises(FileNotFoundError), atomic_path(p) as tmp:
        tmp.unlink()
    assert not p.exists() and list(tmp_path.iterdir()) == []
