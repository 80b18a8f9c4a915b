"""The object mesh library: label -> mesh file (metres, y up, centred), from the ``objects.library`` parameter.

Entries are ``"label:path"`` strings. A relative path is looked up in the package's shipped folder
(``interactvlm_ros/assets/objects/``) first, then next to the parameter file, then in the working directory.
The shipped meshes are our own procedurally generated CC0 meshes (see :mod:`interactvlm_ros.objects.generate`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh

from interactvlm_ros.config.paths import package_dir

# Free-text object names (COCO/DAMON class names, common words) -> shipped label.
ALIASES: dict[str, str] = {
    "carton": "box", "package": "box", "parcel": "box", "cardboard box": "box", "suitcase": "box",
    "water bottle": "bottle", "wine bottle": "bottle", "vase": "bottle",
    "coffee mug": "mug", "teacup": "mug",
    "wine glass": "cup", "glass": "cup", "paper cup": "cup",
    "sports ball": "ball", "football": "ball", "soccer ball": "ball", "basketball": "ball", "volleyball": "ball",
    "dining table": "table", "desk": "table",
    "stool": "chair", "armchair": "chair", "couch": "bench", "sofa": "bench",
    "cutting board": "board", "plank": "board", "tray": "board", "book": "board", "keyboard": "board",
    "notebook": "laptop", "computer": "laptop",
    "snowboard": "skateboard", "longboard": "skateboard",
}


class ObjectLibraryError(ValueError):
    """A library entry is malformed, names a missing file, or a label is unknown."""


def shipped_dir() -> Path:
    """Folder of the shipped meshes inside the installed package."""
    return package_dir() / "assets" / "objects"


@dataclass(frozen=True)
class ObjectEntry:
    """One library entry: ``label`` and the resolved mesh ``path``."""

    label: str
    path: Path


class ObjectLibrary:
    """Label -> metric mesh. Meshes load lazily and are cached; callers get copies.

    >>> lib = ObjectLibrary.from_config(cfg)
    >>> lib.mesh("mug").extents          # metres
    """

    def __init__(self, entries: Iterable[ObjectEntry]):
        self._entries: dict[str, ObjectEntry] = {}
        for entry in entries:
            if entry.label in self._entries:
                raise ObjectLibraryError(f"objects.library: label {entry.label!r} is listed twice")
            self._entries[entry.label] = entry
        self._meshes: dict[str, trimesh.Trimesh] = {}
        self._ids: dict[str, str] = {}

    # --- construction ---------------------------------------------------------------------------------
    @classmethod
    def from_config(cls, cfg: Mapping) -> ObjectLibrary:
        """From ``cfg["objects.library"]``; relative paths also resolve next to the parameter file."""
        base = Path(cfg.source).parent if getattr(cfg, "source", None) else None
        return cls.from_entries(cfg["objects.library"], base_dir=base)

    @classmethod
    def from_entries(cls, items: Iterable[str], base_dir: Path | None = None) -> ObjectLibrary:
        """From ``"label:path"`` strings (see the module docstring for how relative paths resolve)."""
        return cls([parse_entry(item, base_dir) for item in items])

    @classmethod
    def shipped(cls) -> ObjectLibrary:
        """Every shipped mesh under its own label."""
        from interactvlm_ros.objects.generate import SHIPPED

        return cls.from_entries(f"{label}:{name}" for label, (_, name) in SHIPPED.items())

    # --- queries --------------------------------------------------------------------------------------
    def labels(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, label: str) -> bool:
        return label in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def path(self, label: str) -> Path:
        return self._entry(label).path

    def mesh(self, label: str) -> trimesh.Trimesh:
        """A copy of the mesh of ``label`` in metres."""
        if label not in self._meshes:
            entry = self._entry(label)
            try:
                mesh = trimesh.load(entry.path, force="mesh", process=False)
            except (ValueError, KeyError, IndexError, TypeError, OSError, AttributeError) as exc:
                raise ObjectLibraryError(f"objects.library: cannot read mesh of {label!r} at {entry.path}: {exc}") \
                    from None
            if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
                raise ObjectLibraryError(f"objects.library: {entry.path} (label {label!r}) holds no triangles")
            self._meshes[label] = mesh
        return self._meshes[label].copy()

    def size(self, label: str) -> np.ndarray:
        """Axis-aligned extents ``[3]`` (x, y, z) in metres."""
        if label not in self._meshes:
            self.mesh(label)
        return np.asarray(self._meshes[label].extents, dtype=np.float64)

    def mesh_id(self, label: str) -> str:
        """Stable id of the mesh: ``label@<first 8 hex of the file's sha1>`` (changes when the file does)."""
        if label not in self._ids:
            digest = hashlib.sha1(self._entry(label).path.read_bytes()).hexdigest()[:8]
            self._ids[label] = f"{label}@{digest}"
        return self._ids[label]

    def lookup(self, name: str) -> str | None:
        """The library label for a free-text object name ("coffee mug", "sports ball"), or None.

        Exact label, then alias, then singular form, then the last word that is a label or alias.
        """
        text = re.sub(r"\s+", " ", name.strip().lower())
        candidates = [text, text[:-1] if text.endswith("s") else text]
        words = text.split(" ")
        candidates += [" ".join(words[i:]) for i in range(1, len(words))]
        candidates += [w[:-1] if w.endswith("s") else w for w in reversed(words)]
        for cand in candidates:
            if cand in self._entries:
                return cand
            alias = ALIASES.get(cand)
            if alias is not None and alias in self._entries:
                return alias
        return None

    def _entry(self, label: str) -> ObjectEntry:
        try:
            return self._entries[label]
        except KeyError:
            raise ObjectLibraryError(f"object {label!r} is not in objects.library (known: "
                                     f"{', '.join(self._entries) or 'none'})") from None


def parse_entry(item: str, base_dir: Path | None = None) -> ObjectEntry:
    """``"label:path"`` -> :class:`ObjectEntry` with an existing file, or :class:`ObjectLibraryError`."""
    if not isinstance(item, str) or ":" not in item:
        raise ObjectLibraryError(f"objects.library entry {item!r}: expected 'label:path'")
    label, raw = (s.strip() for s in item.split(":", 1))
    if not label or not raw:
        raise ObjectLibraryError(f"objects.library entry {item!r}: label and path must both be non-empty")
    path = Path(raw).expanduser()
    if path.is_absolute():
        candidates = [path]
    else:
        candidates = [shipped_dir() / path] + ([base_dir / path] if base_dir is not None else []) + [Path.cwd() / path]
    for cand in candidates:
        if cand.is_file():
            return ObjectEntry(label, cand.resolve())
    tried = ", ".join(str(c) for c in candidates)
    raise ObjectLibraryError(f"objects.library entry {item!r}: mesh file not found (tried {tried})")
