"""Atomic file writes: the content goes to a temporary file in the destination's folder, which is then moved
into place with ``os.replace`` (atomic on POSIX within one file system). A reader sees the old file or the new
one, never a half-written one; on failure the temporary file is removed and the destination is untouched.

* :func:`atomic_path` — context manager yielding the temporary path, for writers that want a file name
  (``torch.save``, ``safetensors.save_file``, PIL, ``shutil.copyfile``, ``open(tmp, "wb")``).
* :func:`atomic_write_bytes` / :func:`atomic_write_text` — the common one-shot cases.

Temporary names are hidden (``.<name>.<random>.tmp``); the finished file gets mode ``0o644`` (``mkstemp``
creates ``0o600``). Missing parent folders are created.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

FILE_MODE = 0o644


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on a clean exit it replaces ``path``, on an exception it is
    deleted and the exception propagates."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path`` as a :class:`Path`."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically; returns ``path`` as a :class:`Path`."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding=encoding)
    return Path(path)
