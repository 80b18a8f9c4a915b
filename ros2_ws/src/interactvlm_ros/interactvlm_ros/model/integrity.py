"""sha256 digests of the files a model directory is loaded from, checked on every load.

* A directory we write (``save_pretrained``, the training export, the shipped default model) holds
  ``digests.json``: the size and sha256 of every weight shard, config and tokenizer file written, written last
  and atomically.
* A directory without one (an official release, which may be read-only) has its digests recorded outside it on
  the first load that succeeds, in ``<cache>/digests/<sha256 of the resolved path>.json``
  (:func:`~interactvlm_ros.config.paths.cache_dir`), and checked on every later load.

Files are hashed once per load, streamed in 1 MiB reads, files in parallel threads (hashlib releases the GIL).
A size that differs is reported without hashing. This detects corruption and accidental edits; whoever can
write a directory can also rewrite its ``digests.json``, so it is not a signature.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from interactvlm_ros.config.paths import cache_dir
from interactvlm_ros.files.atomic import atomic_write_text

LOG = logging.getLogger("interactvlm.model")
MANIFEST_NAME = "digests.json"
MANIFEST_FORMAT = "interactvlm-digests-1"
CHUNK = 1 << 20


class IntegrityError(RuntimeError):
    """A file differs from its digest, is missing, or is not covered by the digests; the message names it."""


@dataclass(frozen=True)
class FileDigest:
    """Size in bytes and sha256 (hex) of one file."""

    size: int
    sha256: str


def sha256_file(path: str | os.PathLike) -> str:
    """The sha256 (hex) of a file, read in a stream."""
    h = hashlib.sha256()
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


def digest_files(directory: Path, names: Iterable[str]) -> dict[str, FileDigest]:
    """``name -> FileDigest`` of files in ``directory``, several files hashed at once."""
    names = sorted(set(names))

    def one(name: str) -> FileDigest:
        path = directory / name
        return FileDigest(path.stat().st_size, sha256_file(path))

    workers = min(len(names), os.cpu_count() or 1)
    if workers <= 1:
        return {n: one(n) for n in names}
    with ThreadPoolExecutor(workers) as pool:
        return dict(zip(names, pool.map(one, names), strict=True))


def write_manifest(directory: str | Path, names: Iterable[str]) -> Path:
    """Write ``digests.json`` for ``names`` (files in ``directory``) atomically; returns its path."""
    directory = Path(directory)
    return atomic_write_text(directory / MANIFEST_NAME, _dump(digest_files(directory, names)))


def recorded_digests_path(directory: str | Path) -> Path:
    """Where the digests of a directory without ``digests.json`` are recorded (keyed by its resolved path)."""
    key = hashlib.sha256(str(Path(directory).resolve()).encode()).hexdigest()[:32]
    return cache_dir() / "digests" / f"{key}.json"


def _dump(files: dict[str, FileDigest], **extra) -> str:
    body = {"format": MANIFEST_FORMAT, **extra,
            "files": {n: {"size": d.size, "sha256": d.sha256} for n, d in sorted(files.items())}}
    return json.dumps(body, indent=2, sort_keys=True) + "\n"


def read_digests(path: Path) -> dict[str, FileDigest]:
    """The ``files`` of a digests file (manifest or record); :class:`IntegrityError` when unreadable."""
    try:
        data = json.loads(path.read_text())
        if data.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"format is {data.get('format')!r}, not {MANIFEST_FORMAT!r}")
        return {str(n): FileDigest(int(d["size"]), str(d["sha256"])) for n, d in data["files"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise IntegrityError(f"{path}: unreadable digests ({type(exc).__name__}: {exc}); delete it to record the "
                             "directory's digests again on the next load") from None


class DigestCheck:
    """The digest check of one directory: :meth:`verify` before reading, :meth:`cover` once the loader knows
    which files it reads, :meth:`record` after a successful load (records only on the first load)."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        manifest = self.directory / MANIFEST_NAME
        self.record_path: Path | None = None
        if manifest.is_file():
            self.source, self.expected = manifest, read_digests(manifest)
            self.advice = ("restore the file: re-save or re-train the model (the shipped default model: reinstall "
                           "the package or `git checkout` it); if the change was intended, delete "
                           f"{manifest} and its digests are recorded on the next load")
        else:
            self.source = recorded_digests_path(self.directory)
            self.expected = read_digests(self.source) if self.source.is_file() else None
            self.advice = (f"re-download the release; if the change was intended, delete {self.source} and the "
                           "digests are recorded again on the next load")
        self.pending: dict[str, FileDigest] = {}

    @property
    def first_load(self) -> bool:
        """No manifest and nothing recorded yet: this load records the digests."""
        return self.expected is None

    def verify(self) -> None:
        """Hash every file the digests list and compare; raises :class:`IntegrityError` naming the first bad one."""
        if self.expected is None:
            return
        what = self.source.name if self.source.name == MANIFEST_NAME else f"the digests recorded in {self.source}"
        for name, want in sorted(self.expected.items()):
            path = self.directory / name
            if not path.is_file():
                raise IntegrityError(f"{path} is missing but listed in {what}; {self.advice}")
            size = path.stat().st_size
            if size != want.size:
                raise IntegrityError(f"{path} has {size} bytes, {what} says {want.size} (truncated or replaced); "
                                     f"{self.advice}")
        for name, got in digest_files(self.directory, self.expected).items():
            if got.sha256 != self.expected[name].sha256:
                raise IntegrityError(f"{self.directory / name} does not match its sha256 in {what} (corrupted or "
                                     f"modified); {self.advice}")

    def cover(self, names: Iterable[str]) -> None:
        """Every file the loader reads must be listed; on a first load they are hashed for :meth:`record`."""
        names = sorted(set(names))
        if self.expected is None:
            self.pending = digest_files(self.directory, names)
            return
        unlisted = [n for n in names if n not in self.expected]
        if unlisted:
            raise IntegrityError(f"{self.directory}: {', '.join(unlisted)} not covered by {self.source} (added "
                                 f"after the digests were written); {self.advice}")

    def record(self) -> None:
        """After a successful first load: write the pending digests to the cache (a failure is only logged)."""
        if self.expected is not None or not self.pending:
            return
        try:
            atomic_write_text(self.source, _dump(self.pending, directory=str(self.directory.resolve()),
                                                 recorded=time.strftime("%Y-%m-%dT%H:%M:%S%z")))
        except OSError as exc:
            LOG.warning("could not record the digests of %s in %s (%s); it is not checked on later loads",
                        self.directory, self.source, exc)
            return
        self.expected, self.pending = self.pending, {}
        LOG.info("recorded the sha256 of %d file(s) of %s in %s", len(self.expected), self.directory, self.source)


__all__ = ["MANIFEST_NAME", "DigestCheck", "FileDigest", "IntegrityError", "digest_files", "read_digests",
           "recorded_digests_path", "sha256_file", "write_manifest"]
