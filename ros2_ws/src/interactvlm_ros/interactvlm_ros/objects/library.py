"""The object mesh library: label -> mesh file (metres, y up, centred), from the ``objects.library`` parameter.

Entries are ``"label:path"`` strings. Meshes are read only from the *asset folders*: the package's shipped
folder (``interactvlm_ros/assets/objects/``), the folder of the parameter file, and the folders listed in
``objects.asset_dirs`` (relative ones are relative to the parameter file's folder). A relative path is looked
up in them in that order; an absolute path must lie inside one of them. After ``..`` and symlinks are resolved
the file must still be inside an asset folder, else the entry is an :class:`ObjectLibraryError` naming it.
Meshes are parsed from the file's bytes (glb, obj, off, ply or stl), so no side file (an OBJ's material
library) is read. The shipped meshes are our own procedurally generated CC0 meshes (see
:mod:`interactvlm_ros.objects.generate`).
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterable, Mapping, Sequence
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


# Self-contained mesh formats: the file alone describes the mesh (no .gltf buffers, no archives, no point clouds).
MESH_FORMATS = ("glb", "obj", "off", "ply", "stl")


class ObjectLibraryError(ValueError):
    """A library entry is malformed, names a missing or unreadable file or one outside the asset folders, or a
    label is unknown."""


def read_mesh_file(path: Path, what: str = "{path}") -> tuple[trimesh.Trimesh, bytes]:
    """``(mesh, file bytes)`` of a glb/obj/off/ply/stl file, parsed from its bytes (no side files are read).

    Raises :class:`ObjectLibraryError` in one line, ``what`` (with ``{path}`` filled in) naming the file, for an
    unreadable file, another format, a corrupt mesh or one without triangles."""
    name = what.format(path=path)
    fmt = path.suffix[1:].lower()
    if fmt not in MESH_FORMATS:
        raise ObjectLibraryError(f"{name}: .{fmt} is not a mesh format read here (use {', '.join(MESH_FORMATS)})")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ObjectLibraryError(f"{name}: cannot read it: {exc.strerror or exc}") from None
    try:
        mesh = trimesh.load(io.BytesIO(data), file_type=fmt, force="mesh", process=False)
    except Exception as exc:  # noqa: BLE001 - trimesh's parsers raise many kinds on a corrupt file
        raise ObjectLibraryError(f"{name} is not a readable {fmt} mesh ({type(exc).__name__}: "
                                 f"{' '.join(str(exc).split())})") from None
    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
        raise ObjectLibraryError(f"{name} holds no triangles")
    return mesh, data


def shipped_dir() -> Path:
    """Folder of the shipped meshes inside the installed package."""
    return package_dir() / "assets" / "objects"


def asset_folders(base_dir: Path | None = None, asset_dirs: Iterable[str] = ()) -> list[Path]:
    """The folders library meshes may come from, resolved: the shipped folder, ``base_dir`` (the parameter
    file's folder) and ``asset_dirs`` (``objects.asset_dirs``; relative to ``base_dir``, else to the working
    directory). A listed folder that does not exist is an :class:`ObjectLibraryError`."""
    folders = [shipped_dir().resolve()] + ([base_dir.resolve()] if base_dir is not None else [])
    for raw in asset_dirs:
        folder = (base_dir or Path.cwd()) / Path(raw).expanduser()
        if not folder.is_dir():
            raise ObjectLibraryError(f"objects.asset_dirs entry {raw!r}: {folder} is not a folder")
        folders.append(folder.resolve())
    return list(dict.fromkeys(folders))


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
        """From ``cfg.objects.library`` and ``cfg.objects.asset_dirs``; the folder of the parameter file
        (``cfg.source``, when it is a file) is an asset folder too."""
        source = Path(getattr(cfg, "source", None) or "")
        base = source.parent if source.name and source.is_file() else None
        return cls.from_entries(cfg.objects.library, base_dir=base, asset_dirs=cfg.get("objects.asset_dirs", ()))

    @classmethod
    def from_entries(cls, items: Iterable[str], base_dir: Path | None = None,
                     asset_dirs: Iterable[str | Path] = ()) -> ObjectLibrary:
        """From ``"label:path"`` strings (see the module docstring for where paths may lead)."""
        folders = asset_folders(base_dir, [str(d) for d in asset_dirs])
        return cls([parse_entry(item, folders) for item in items])

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
            mesh, data = read_mesh_file(entry.path, f"objects.library: {{path}} (label {label!r})")
            self._meshes[label] = mesh
            self._ids.setdefault(label, f"{label}@{hashlib.sha1(data).hexdigest()[:8]}")
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


def parse_entry(item: str, folders: Sequence[Path] | None = None) -> ObjectEntry:
    """``"label:path"`` -> :class:`ObjectEntry` with an existing mesh file inside one of ``folders`` (default:
    :func:`asset_folders` with no parameter file), or :class:`ObjectLibraryError` naming the entry."""
    if not isinstance(item, str) or ":" not in item:
        raise ObjectLibraryError(f"objects.library entry {item!r}: expected 'label:path'")
    label, raw = (s.strip() for s in item.split(":", 1))
    if not label or not raw:
        raise ObjectLibraryError(f"objects.library entry {item!r}: label and path must both be non-empty")
    folders = asset_folders() if folders is None else list(folders)
    path = Path(raw).expanduser()
    candidates = [path] if path.is_absolute() else [folder / path for folder in folders]
    found = next((c for c in candidates if c.is_file()), None)
    if found is None:
        tried = ", ".join(str(c) for c in candidates)
        raise ObjectLibraryError(f"objects.library entry {item!r}: mesh file not found (tried {tried})")
    resolved = found.resolve()
    if not any(resolved.is_relative_to(folder) for folder in folders):
        raise ObjectLibraryError(
            f"objects.library entry {item!r}: {resolved} is outside the asset folders "
            f"({', '.join(str(f) for f in folders)}); move the mesh into one of them or add its folder to "
            "objects.asset_dirs")
    if resolved.suffix[1:].lower() not in MESH_FORMATS:
        raise ObjectLibraryError(f"objects.library entry {item!r}: {resolved.name} is not a mesh file the library "
                                 f"reads ({', '.join(MESH_FORMATS)})")
    return ObjectEntry(label, resolved)
