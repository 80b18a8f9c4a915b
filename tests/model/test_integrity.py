"""Weight integrity: sha256 digests written at save time (and shipped with the default model), digests recorded
on the first load of a directory without them, and one-line errors for corrupt, truncated or unparsable files —
in the loader and through ``python -m interactvlm_ros infer``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from interactvlm_ros.model.checkpoint import CheckpointError, load_model, save_pretrained
from interactvlm_ros.model.configuration import load_preset, resolve_model_name
from interactvlm_ros.model.integrity import (
    MANIFEST_NAME,
    DigestCheck,
    IntegrityError,
    digest_files,
    recorded_digests_path,
    sha256_file,
)

DEFAULT_MODEL = Path(resolve_model_name("default"))
SHIPPED_FILES = ["config.json", "model.safetensors", "tiny_tokenizer.json"]
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(autouse=True)
def digests_cache(tmp_path, monkeypatch):
    """Recorded digests go to this test's cache (subprocesses inherit it), never to ~/.cache."""
    monkeypatch.setenv("INTERACTVLM_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def default_copy(tmp_path) -> Path:
    """A copy of the shipped default model, digests.json included."""
    return Path(shutil.copytree(DEFAULT_MODEL, tmp_path / "default_model"))


@pytest.fixture(scope="module")
def tiny_saved(tmp_path_factory) -> Path:
    """A tiny random-weight model written by save_pretrained."""
    from interactvlm_ros.model.configuration import PRESETS_DIR
    from interactvlm_ros.model.interactvlm import InteractVLMForCausalLM
    from interactvlm_ros.model.tokenizer import JsonTokenizer

    cfg = load_preset("tiny")
    model = InteractVLMForCausalLM.build(cfg, seed=4)
    return save_pretrained(model, JsonTokenizer(PRESETS_DIR / cfg.tokenizer), tmp_path_factory.mktemp("tiny") / "m")


def flip(path: Path, offset_fraction: float = 0.5, length: int = 4096) -> None:
    """Invert ``length`` bytes in the middle of a file (same size, like the tester's 4 KiB flip)."""
    data = bytearray(path.read_bytes())
    start = int(len(data) * offset_fraction)
    data[start:start + length] = bytes(b ^ 0xFF for b in data[start:start + length])
    path.write_bytes(bytes(data))


def load_error(directory: Path, **kwargs) -> str:
    with pytest.raises(CheckpointError) as err:
        load_model(str(directory), device="cpu", precision="fp32", **kwargs)
    message = str(err.value)
    assert "\n" not in message
    return message


# ----------------------------------------------------------------------------------------- shipped model
def test_shipped_default_model_has_matching_digests():
    manifest = json.loads((DEFAULT_MODEL / MANIFEST_NAME).read_text())
    assert sorted(manifest["files"]) == SHIPPED_FILES  # the model card is documentation, not checked
    DigestCheck(DEFAULT_MODEL).verify()
    for name in SHIPPED_FILES:
        assert manifest["files"][name]["sha256"] == sha256_file(DEFAULT_MODEL / name)


def test_flipped_bytes_in_the_shipped_model_are_caught(default_copy):
    flip(default_copy / "model.safetensors")
    message = load_error(default_copy)
    assert f"{default_copy / 'model.safetensors'} does not match its sha256 in digests.json" in message
    assert "re-save or re-train" in message


def test_truncated_weights_are_one_line_errors(default_copy):
    weights = default_copy / "model.safetensors"
    size = weights.stat().st_size
    with open(weights, "r+b") as f:
        f.truncate(size // 3)
    assert f"has {size // 3} bytes, digests.json says {size} (truncated or replaced)" in load_error(default_copy)
    # without digests the parser's failure is still one line naming the file
    (default_copy / MANIFEST_NAME).unlink()
    message = load_error(default_copy)
    assert message.startswith(f"{weights}: unreadable safetensors file (SafetensorError:")


def test_bad_config_and_tokenizer_are_one_line_errors(default_copy, digests_cache):
    (default_copy / MANIFEST_NAME).unlink()
    config = default_copy / "config.json"
    good_config = config.read_text()
    config.write_text(good_config[:200])
    assert load_error(default_copy).startswith(f"{config}: unreadable JSON (JSONDecodeError:")
    config.write_text(json.dumps({**json.loads(good_config), "text": {"hidden_size": "wide"}}))
    assert "config.json" in load_error(default_copy)
    config.write_text(good_config)
    tokenizer = default_copy / "tiny_tokenizer.json"
    tokenizer.write_text("{ not json")
    assert load_error(default_copy).startswith(f"{tokenizer}: unreadable tokenizer file")
    assert not recorded_digests_path(default_copy).exists()  # failed loads record nothing


def test_corrupt_config_with_digests_is_named_before_parsing(default_copy):
    config = default_copy / "config.json"
    config.write_text(config.read_text().replace('"num_views": 4', '"num_views": 5'))
    assert f"{config} does not match its sha256 in digests.json" in load_error(default_copy)


# ----------------------------------------------------------------------------------------- saving
def test_save_pretrained_writes_digests_of_every_file(tiny_saved):
    manifest = json.loads((tiny_saved / MANIFEST_NAME).read_text())
    assert sorted(manifest["files"]) == SHIPPED_FILES
    for name, entry in manifest["files"].items():
        assert entry == {"size": (tiny_saved / name).stat().st_size, "sha256": sha256_file(tiny_saved / name)}
    assert not list(tiny_saved.glob(".*.tmp"))
    loaded = load_model(str(tiny_saved), device="cpu", precision="fp32")
    assert not loaded.official and not recorded_digests_path(tiny_saved).exists()


def test_unreadable_or_incomplete_digests_are_named(tiny_saved, tmp_path):
    d = Path(shutil.copytree(tiny_saved, tmp_path / "m"))
    manifest = json.loads((d / MANIFEST_NAME).read_text())
    del manifest["files"]["tiny_tokenizer.json"]
    (d / MANIFEST_NAME).write_text(json.dumps(manifest))
    assert "tiny_tokenizer.json not covered by" in load_error(d)
    (d / MANIFEST_NAME).write_text("[1, 2")
    assert f"{d / MANIFEST_NAME}: unreadable digests" in load_error(d)


# ----------------------------------------------------------------------------------------- no digests.json
def test_directory_without_digests_is_recorded_on_first_load_then_checked(tiny_saved, tmp_path, digests_cache):
    d = Path(shutil.copytree(tiny_saved, tmp_path / "release", ignore=shutil.ignore_patterns(MANIFEST_NAME)))
    record = recorded_digests_path(d)
    assert str(record).startswith(str(digests_cache)) and not record.exists()
    os.chmod(d, 0o555)  # official releases may be read-only: nothing is written into them
    try:
        load_model(str(d), device="cpu", precision="fp32")
        data = json.loads(record.read_text())
        assert data["directory"] == str(d.resolve()) and sorted(data["files"]) == SHIPPED_FILES
        assert sorted(p.name for p in d.iterdir()) == SHIPPED_FILES
        load_model(str(d), device="cpu", precision="fp32")  # unchanged: loads
    finally:
        os.chmod(d, 0o755)
    flip(d / "model.safetensors", 0.9, 16)
    message = load_error(d)
    assert f"{d / 'model.safetensors'} does not match its sha256 in the digests recorded in {record}" in message
    assert f"re-download the release; if the change was intended, delete {record}" in message
    record.unlink()  # the documented way to accept the change
    load_model(str(d), device="cpu", precision="fp32")
    assert record.is_file()


def test_digests_hash_several_files_at_once(tmp_path):
    for i in range(3):
        (tmp_path / f"shard{i}").write_bytes(bytes([i]) * (3 << 20))
    digests = digest_files(tmp_path, [f"shard{i}" for i in range(3)])
    assert [d.size for d in digests.values()] == [3 << 20] * 3
    assert digests["shard1"].sha256 == sha256_file(tmp_path / "shard1")
    with pytest.raises(IntegrityError, match="unreadable digests"):
        (tmp_path / MANIFEST_NAME).write_text('{"format": "other", "files": {}}')
        DigestCheck(tmp_path)


# ----------------------------------------------------------------------------------------- the CLI
def test_infer_on_a_corrupted_model_prints_one_line_and_fails(default_copy, tmp_path):
    flip(default_copy / "model.safetensors")
    image = tmp_path / "person.png"
    Image.fromarray(np.full((48, 64, 3), 128, np.uint8)).save(image)
    proc = subprocess.run([sys.executable, "-m", "interactvlm_ros", "infer", str(image), "--object", "chair",
                           "--model", str(default_copy), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("interactvlm infer: ") and "model.safetensors does not match its sha256" in lines[0]
    assert not (tmp_path / "out").exists()
