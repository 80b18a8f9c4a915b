"""The engine cache: one folder per artifact under ``engines_dir()``, keyed so a stale artifact is never used.

An artifact's folder name is its key: ``<stage>-<model hash>-<backend>-<precision>-<arch>-<runtime>``, where
*model hash* covers the stage's weights, its static sizes and the stage code version, *arch* is the GPU's
compute capability (``sm89``), ``cpu`` or ``any`` (plain ONNX), and *runtime* the exporter / ONNX Runtime /
TensorRT version. Each folder holds the artifact file(s) plus ``manifest.json`` (the key and a blake2b digest
and size of every file). An artifact is used only when its manifest matches the key and every digest matches;
anything else (truncated or garbled file, a plan for another GPU or TensorRT version copied in, an unreadable
manifest) is reported and rebuilt.

Writes are atomic: an artifact is built in a temporary folder next to its final place and moved there with
``os.replace``; builders of the same key serialise on a lock file (``fcntl.flock``), and the second one finds
the first one's finished artifact instead of building it again.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

LOG = logging.getLogger("interactvlm.engines")
MANIFEST = "manifest.json"
LOCK_DIR = ".locks"
MANIFEST_VERSION = 1


class CorruptArtifact(RuntimeError):
    """A cached artifact exists but cannot be used (bad digest, unreadable, or rejected by its runtime)."""


@dataclass(frozen=True)
class ArtifactKey:
    """What identifies one built artifact (see the module docstring)."""

    stage: str
    model_hash: str
    backend: str      # onnx | onnxruntime | tensorrt
    precision: str    # fp32 | fp16 | bf16
    arch: str         # any | cpu | sm<major><minor>
    runtime: str      # e.g. torch2.13.0-opset17, ort1.32.0, trt10.9.0

    @property
    def name(self) -> str:
        parts = (self.stage, self.model_hash[:16], self.backend, self.precision, self.arch, self.runtime)
        for p in parts:
            if not p or "/" in p or p.startswith("."):
                raise ValueError(f"invalid artifact key part {p!r} in {parts}")
        return "-".join(parts)


def file_digest(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.blake2b(digest_size=20)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@dataclass
class CacheEntry:
    """One artifact folder as found on disk (``engines list``)."""

    path: Path
    key: ArtifactKey | None
    size_bytes: int
    problem: str  # "" when the digests match


class EngineCache:
    """Artifacts under ``root`` (``config.paths.engines_dir()``)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, key: ArtifactKey) -> Path:
        return self.root / key.name

    # ------------------------------------------------------------------------------------ validation
    def check(self, folder: Path, key: ArtifactKey | None = None) -> str:
        """Why the artifact in ``folder`` cannot be used ("" when its manifest and digests are intact)."""
        mpath = folder / MANIFEST
        if not mpath.is_file():
            return "no manifest"
        try:
            manifest = json.loads(mpath.read_text())
            stored = ArtifactKey(**manifest["key"])
            files = dict(manifest["files"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            return f"unreadable manifest ({exc})"
        if key is not None and stored != key:
            return f"built for {stored.name}, not {key.name}"
        for name, info in files.items():
            f = folder / name
            if not f.is_file():
                return f"{name} is missing"
            if f.stat().st_size != info["size"]:
                return f"{name} has {f.stat().st_size} bytes, the manifest says {info['size']} (truncated?)"
            if file_digest(f) != info["blake2b"]:
                return f"{name} does not match its digest (corrupt)"
        return ""

    def lookup(self, key: ArtifactKey) -> Path | None:
        """The artifact folder of ``key`` when present and intact; a damaged one is reported (and left for the
        next build to replace)."""
        folder = self.path(key)
        if not folder.exists():
            return None
        problem = self.check(folder, key)
        if problem:
            LOG.warning("engine %s is unusable: %s; rebuilding it", key.name, problem)
            return None
        return folder

    # ------------------------------------------------------------------------------------ building
    @contextlib.contextmanager
    def lock(self, key: ArtifactKey) -> Iterator[None]:
        """Exclusive lock on ``key`` across processes (blocks until the other builder is done)."""
        lock_dir = self.root / LOCK_DIR
        lock_dir.mkdir(parents=True, exist_ok=True)
        with open(lock_dir / f"{key.name}.lock", "a+") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)

    def _publish(self, key: ArtifactKey, build: Callable[[Path], None]) -> Path:
        """Run ``build(tmp_folder)`` (it writes the artifact files), add the manifest, move into place."""
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{key.name}-", dir=self.root))
        try:
            build(tmp)
            files = {p.name: {"size": p.stat().st_size, "blake2b": file_digest(p)}
                     for p in sorted(tmp.iterdir()) if p.is_file()}
            if not files:
                raise RuntimeError(f"building {key.name} wrote no files")
            manifest = {"version": MANIFEST_VERSION, "key": asdict(key), "files": files}
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
            final = self.path(key)
            if final.exists():  # a damaged artifact of this key: move it aside, then replace
                trash = Path(tempfile.mkdtemp(prefix=f".old-{key.name}-", dir=self.root))
                os.replace(final, trash / "artifact")
                shutil.rmtree(trash, ignore_errors=True)
            os.replace(tmp, final)
            return final
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    def get_or_build(self, key: ArtifactKey, build: Callable[[Path], None], load: Callable[[Path], object],
                     force: bool = False) -> object:
        """``load(folder)`` of the cached artifact, building it first when missing, damaged or ``force``.

        A cached artifact that ``load`` rejects (raises) is reported and rebuilt once; a freshly built one that
        fails to load raises :class:`CorruptArtifact`.
        """
        if not force:
            folder = self.lookup(key)
            if folder is not None:
                try:
                    return load(folder)
                except Exception as exc:  # noqa: BLE001 - any load failure means: rebuild
                    LOG.warning("engine %s failed to load (%s); rebuilding it", key.name, exc)
        with self.lock(key):
            folder = None if force else self.lookup(key)  # another process may have built it meanwhile
            if folder is not None:
                try:
                    return load(folder)
                except Exception as exc:  # noqa: BLE001
                    LOG.warning("engine %s failed to load (%s); rebuilding it", key.name, exc)
            folder = self._publish(key, build)
        try:
            return load(folder)
        except Exception as exc:
            raise CorruptArtifact(f"freshly built engine {key.name} failed to load: {exc}") from exc

    # ------------------------------------------------------------------------------------ listing
    def entries(self) -> list[CacheEntry]:
        """Every artifact folder under the root (temporary and lock folders excluded)."""
        out = []
        if not self.root.is_dir():
            return out
        for folder in sorted(self.root.iterdir()):
            if not folder.is_dir() or folder.name.startswith("."):
                continue
            key = None
            try:
                key = ArtifactKey(**json.loads((folder / MANIFEST).read_text())["key"])
            except (OSError, ValueError, KeyError, TypeError):
                pass
            size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
            out.append(CacheEntry(folder, key, size, self.check(folder, key)))
        return out

    def remove(self, folder: Path) -> None:
        if folder.parent.resolve() != self.root.resolve():
            raise ValueError(f"{folder} is not an artifact folder of {self.root}")
        shutil.rmtree(folder)
