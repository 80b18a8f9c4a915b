"""The unfinished run of ``interactvlm bag`` for an output OUT: the hidden folder ``.<OUT name>.partial`` next to
OUT, where the bag is written until it is complete and moved into place.

It holds ``run.json`` (what run: input, image topics, objects, parameters; the writer's pid and start time), a
``lock`` file that the writing process holds (``flock``, released by the kernel whatever way the process ends)
and the bag being written (single file: ``<OUT name>``; bag folder: ``<OUT name>/<OUT name>.mcap``).
While its process lives the run is *in use*; once the process is gone (killed, crashed, power cut) it is
*stale*: ``interactvlm bag --resume`` continues it, ``interactvlm bag --recover OUT`` turns what it holds into
OUT, ``--restart`` discards it.

Folders ``.<OUT name>.partial-<random>`` are the temporary folders of earlier versions (and of other
:class:`~interactvlm_ros.bag.writer.AtomicBagWriter` users): without ``run.json`` they can be recovered, not
resumed.
"""

from __future__ import annotations

import datetime
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from interactvlm_ros.bag.writer import BagWriteError
from interactvlm_ros.files.atomic import atomic_write_text

FORMAT = 1
MANIFEST = "run.json"
LOCK = "lock"


@dataclass
class UnfinishedRun:
    """The unfinished-run folder ``path`` of output ``out`` (see module doc); ``manifest`` is its ``run.json``
    (None for a folder of an earlier version)."""

    out: Path
    path: Path
    manifest: dict[str, Any] | None
    _lock_fd: int | None = field(default=None, repr=False)

    @staticmethod
    def folder_for(out: str | os.PathLike) -> Path:
        out = Path(out).absolute()
        return out.parent / f".{out.name}.partial"

    @classmethod
    def start(cls, out: str | os.PathLike, manifest: dict[str, Any]) -> UnfinishedRun:
        """Create the run folder for ``out``, locked by this process, with ``manifest`` (plus pid and start time)
        as its ``run.json``. Raises :class:`BagWriteError` if one exists."""
        out = Path(out).absolute()
        final = cls.folder_for(out)
        manifest = {"format": FORMAT, **manifest, "pid": os.getpid(),
                    "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.starting-", dir=out.parent))
        run = cls(out, staging, manifest)
        try:
            run._lock(blocking=False)
            atomic_write_text(staging / MANIFEST, json.dumps(manifest, indent=1, default=str) + "\n")
            os.rename(staging, final)  # fails if a run folder (never empty) is there
        except OSError as exc:
            run.release()
            shutil.rmtree(staging, ignore_errors=True)
            raise BagWriteError(f"cannot start the unfinished-run folder {final}: {exc}") from exc
        run.path = final
        return run

    @classmethod
    def find(cls, out: str | os.PathLike) -> UnfinishedRun | None:
        """The unfinished run of ``out`` if there is one (this version's, else the newest of an earlier version)."""
        out = Path(out).absolute()
        path = cls.folder_for(out)
        if path.is_dir():
            try:
                manifest = json.loads((path / MANIFEST).read_text())
            except (OSError, ValueError):
                manifest = None
            return cls(out, path, manifest)
        legacy = [p for p in out.parent.glob(f".{out.name}.partial-*") if p.is_dir()]
        if not legacy:
            return None
        return cls(out, max(legacy, key=lambda p: p.stat().st_mtime), None)

    # --- lock ----------------------------------------------------------------------------------------------
    def _lock(self, blocking: bool) -> bool:
        fd = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return False
        self._lock_fd = fd
        return True

    def acquire(self) -> None:
        """Lock the run for this process; :class:`BagWriteError` if another live process holds it."""
        if self._lock_fd is not None:
            return
        if not self._lock(blocking=False):
            pid = (self.manifest or {}).get("pid", "?")
            raise BagWriteError(f"{self.out} is being written by another interactvlm bag (pid {pid}, "
                                f"unfinished run {self.path})")

    def release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None

    # --- contents ------------------------------------------------------------------------------------------
    @property
    def mcap_path(self) -> Path | None:
        """The MCAP file of the bag being written (None when there is none)."""
        name = self.out.name
        if self.manifest is not None:
            path = self.path / name if self.out.suffix == ".mcap" else self.path / name / f"{name}.mcap"
            return path if path.is_file() else None
        found = sorted(self.path.rglob("*.mcap"))
        return found[0] if found else None

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())

    def describe(self) -> str:
        """One phrase: where, how big, when last written, from which input."""
        mcap = self.mcap_path
        when = mcap.stat().st_mtime if mcap is not None else self.path.stat().st_mtime
        stamp = datetime.datetime.fromtimestamp(when).strftime("%Y-%m-%d %H:%M:%S")
        source = (f"input {self.manifest.get('input')}" if self.manifest is not None
                  else "written by an earlier version: it can be recovered, not resumed")
        return f"{self.path} ({self.size_bytes() / 1e6:.1f} MB, last written {stamp}, {source})"

    def discard(self) -> None:
        """Delete the run folder (the lock goes with it)."""
        if self.path.exists():
            shutil.rmtree(self.path)
        self.release()


def claim_unfinished_run(out: Path, manifest: dict[str, Any], resume: bool, restart: bool,
               note: Callable[[str], None]) -> tuple[UnfinishedRun, bool]:
    """The unfinished run to write ``out`` into, locked, and whether it is an existing one to continue (``resume``).
    A stale run found is discarded with ``restart`` (saying so through ``note``); without either flag, or when its
    ``manifest`` differs from this run's (input, image topics, objects, parameters), :class:`BagWriteError` says
    what was found and what to do."""
    found = UnfinishedRun.find(out)
    if found is not None:
        found.acquire()  # BagWriteError while another process writes it
        if restart:
            what = found.describe()
            found.discard()
            note(f"discarded the unfinished run {what}")
        elif not resume:
            found.release()
            raise BagWriteError(f"{out} has an unfinished run, {found.describe()}: continue it with --resume, keep "
                                f"what it holds with `interactvlm bag --recover {out}`, or discard it with --restart")
        elif found.manifest is None:
            found.release()
            raise BagWriteError(f"cannot resume {found.path}: it was written by an earlier version; keep what it "
                                f"holds with `interactvlm bag --recover {out}`, or discard it with --restart")
        else:
            mismatch = manifest_mismatch(found.manifest, manifest)
            if mismatch:
                found.release()
                raise BagWriteError(f"cannot resume {found.path}: {mismatch}; resume with the same input, topics, "
                                    f"objects and parameters, or discard it with --restart")
            return found, True
    elif resume:
        note(f"no unfinished run for {out}: starting from the first frame")
    return UnfinishedRun.start(out, manifest), False


def manifest_mismatch(then: Mapping[str, Any], now: Mapping[str, Any]) -> str:
    """What differs between the unfinished run's manifest and this run's ('' = nothing that matters)."""
    for key, what in (("input", "input"), ("image_topics", "image topics"), ("objects", "--objects")):
        if then.get(key) != now.get(key):
            return f"it was started with {what} {then.get(key)!r}, not {now.get(key)!r}"
    old, new = then.get("parameters", {}), now.get("parameters", {})
    changed = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    if changed:
        shown = ", ".join(f"{k}={old.get(k)!r} (now {new.get(k)!r})" for k in changed[:3])
        return f"it was started with other parameters: {shown}{' ...' if len(changed) > 3 else ''}"
    return ""
