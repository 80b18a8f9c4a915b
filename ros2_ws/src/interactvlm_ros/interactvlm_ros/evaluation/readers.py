"""Readers for the benchmark files: DAMON (DECO) ``hot_dca_*.npz`` and PIAD (IAGNet) ``Point_*.txt``.

DAMON npz: arrays aligned by sample — ``imgname`` [S] str, ``contact_label`` [S,6890] (1 = contact; a sample may
hold an empty list = no 3D label), ``contact_label_smplx`` [S,10475], ``contact_label_objectwise`` /
``contact_label_smplx_objectwise`` [S] object array of dicts ``{object name: vertex ids}``, and CLIFF ``pose``,
``shape``, ``transl``, ``cam_k``. Object arrays are pickled, so the file is opened with ``allow_pickle=True``:
read only files you trust (they come from the dataset's own site).

PIAD point file: one line per point (2048), ``<shape_id> <ObjectClass> x y z a_1 … a_17`` with the affordances
in the fixed order :data:`PIAD_AFFORDANCES`; file names ``Point_<Split>_<Class>_<n>.txt``, images
``Img_<Split>_<Class>_<affordance>_<n>.jpg``. Images and point clouds are not 1:1 in PIAD (any point cloud of the
image's class may pair with it); :func:`read_piad_pairs` makes the pairing explicit and reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

PIAD_AFFORDANCES: tuple[str, ...] = ("grasp", "contain", "lift", "open", "lay", "sit", "support", "wrapgrasp",
                                     "pour", "move", "display", "push", "listen", "wear", "press", "cut", "stab")
DAMON_IGNORED_OBJECTS = ("supporting",)


@dataclass
class DamonSplit:
    """One DAMON split: ``contact [S,N]`` float32 (rows of samples without a 3D label are zero and
    ``has_contact[i]`` False) and ``objectwise[i]`` = ``{object name: vertex ids}``."""

    path: Path
    imgnames: list[str]
    contact: np.ndarray
    has_contact: np.ndarray
    objectwise: list[dict[str, np.ndarray]]
    num_vertices: int
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.imgnames)

    def object_contact(self, index: int, name: str) -> np.ndarray:
        """Dense GT ``[N]`` float32 of one object in one sample (zeros if the object is not labelled there)."""
        out = np.zeros(self.num_vertices, dtype=np.float32)
        ids = self.objectwise[index].get(name)
        if ids is not None and len(ids):
            out[ids] = 1.0
        return out

    def semantic_pairs(self, ignore: tuple[str, ...] = DAMON_IGNORED_OBJECTS) -> list[tuple[int, str]]:
        """All (sample index, object name) pairs scored by semantic contact ("supporting" ignored as in DECO);
        names keep DAMON's spelling, spaces become ``_`` only in the challenge's submission format."""
        return [(i, name) for i, objs in enumerate(self.objectwise) for name in sorted(objs)
                if name.lower() not in ignore]


def _vertex_ids(value, num_vertices: int, where: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    arr = arr.ravel()
    if arr.shape[0] == num_vertices and np.isin(arr, (0, 1)).all():  # a dense 0/1 vector
        return np.flatnonzero(arr).astype(np.int64)
    if not np.all(np.equal(np.mod(arr, 1), 0)):
        raise ValueError(f"{where}: vertex ids must be integers")
    ids = arr.astype(np.int64)
    if ids.min() < 0 or ids.max() >= num_vertices:
        raise ValueError(f"{where}: vertex id outside [0, {num_vertices})")
    return np.unique(ids)


def read_damon_npz(path: str | Path, smplx: bool = False) -> DamonSplit:
    """Read ``hot_dca_{trainval,test}.npz``; ``smplx`` picks the ``*_smplx`` labels (10475 vertices)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"DAMON file not found: {path}")
    contact_key = "contact_label_smplx" if smplx else "contact_label"
    object_key = "contact_label_smplx_objectwise" if smplx else "contact_label_objectwise"
    num_vertices = 10475 if smplx else 6890
    with np.load(path, allow_pickle=True) as data:
        for key in ("imgname", contact_key):
            if key not in data.files:
                raise ValueError(f"{path}: not a DAMON npz, key {key!r} missing (has {sorted(data.files)})")
        imgnames = [str(x) for x in data["imgname"]]
        raw_contact = data[contact_key]
        raw_objects = data[object_key] if object_key in data.files else None
        extras = {k: data[k] for k in ("pose", "shape", "transl", "cam_k") if k in data.files}
    n = len(imgnames)
    if len(raw_contact) != n:
        raise ValueError(f"{path}: {contact_key} has {len(raw_contact)} rows for {n} images")
    contact = np.zeros((n, num_vertices), dtype=np.float32)
    has_contact = np.zeros(n, dtype=bool)
    for i, row in enumerate(raw_contact):
        row = np.asarray(row, dtype=np.float32).ravel()
        if row.size == 0:
            continue
        if row.size != num_vertices:
            raise ValueError(f"{path}: {contact_key}[{i}] has {row.size} values, expected {num_vertices}")
        contact[i] = row
        has_contact[i] = True
    objectwise: list[dict[str, np.ndarray]] = [{} for _ in range(n)]
    if raw_objects is not None:
        if len(raw_objects) != n:
            raise ValueError(f"{path}: {object_key} has {len(raw_objects)} rows for {n} images")
        for i, entry in enumerate(raw_objects):
            if isinstance(entry, np.ndarray) and entry.dtype == object and entry.shape == ():
                entry = entry.item()
            if not isinstance(entry, dict):
                raise ValueError(f"{path}: {object_key}[{i}] must be a dict {{object: vertex ids}}, "
                                 f"got {type(entry).__name__}")
            objectwise[i] = {str(name): _vertex_ids(ids, num_vertices, f"{path}: {object_key}[{i}][{name!r}]")
                             for name, ids in entry.items()}
    return DamonSplit(path, imgnames, contact, has_contact, objectwise, num_vertices, extras)


@dataclass
class PiadPointCloud:
    """One PIAD object: ``points [N,3]``, ``affordances [N,17]`` in [0,1] (columns = :data:`PIAD_AFFORDANCES`)."""

    path: Path
    shape_id: str
    object_class: str
    points: np.ndarray
    affordances: np.ndarray

    def affordance(self, name: str) -> np.ndarray:
        """The per-point map ``[N]`` of one affordance."""
        if name not in PIAD_AFFORDANCES:
            raise ValueError(f"unknown PIAD affordance {name!r}; known: {', '.join(PIAD_AFFORDANCES)}")
        return self.affordances[:, PIAD_AFFORDANCES.index(name)]


def read_piad_points(path: str | Path) -> PiadPointCloud:
    """Read one ``Point_*.txt`` file (``shape_id class x y z`` + 17 affordance values per line)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"PIAD point file not found: {path}")
    shape_ids, classes, rows = set(), set(), []
    expected = 2 + 3 + len(PIAD_AFFORDANCES)
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.strip().split()
            if not parts:
                continue
            if len(parts) != expected:
                raise ValueError(f"{path}:{lineno}: expected {expected} fields (shape_id class x y z + "
                                 f"{len(PIAD_AFFORDANCES)} affordances), got {len(parts)}")
            shape_ids.add(parts[0])
            classes.add(parts[1])
            try:
                rows.append([float(x) for x in parts[2:]])
            except ValueError as exc:
                raise ValueError(f"{path}:{lineno}: {exc}") from None
    if not rows:
        raise ValueError(f"{path}: no points")
    if len(classes) != 1 or len(shape_ids) != 1:
        raise ValueError(f"{path}: one object per file expected, found classes {sorted(classes)}, "
                         f"shape ids {sorted(shape_ids)}")
    data = np.asarray(rows, dtype=np.float64)
    return PiadPointCloud(path, shape_ids.pop(), classes.pop(), data[:, :3].astype(np.float32),
                          data[:, 3:].astype(np.float32))


def piad_image_info(name: str) -> tuple[str, str]:
    """``(object class, affordance)`` from a PIAD image name ``Img_<Split>_<Class>_<affordance>_<n>.jpg``."""
    parts = Path(name).stem.split("_")
    if len(parts) < 4:
        raise ValueError(f"not a PIAD image name (Img_<Split>_<Class>_<affordance>_<n>): {name!r}")
    affordance, object_class = parts[-2], parts[-3]
    if affordance not in PIAD_AFFORDANCES:
        raise ValueError(f"{name!r}: unknown affordance {affordance!r}")
    return object_class, affordance


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass
class PiadPair:
    """One PIAD evaluation sample: an image, the affordance its name states, and the paired point cloud."""

    image: Path
    object_class: str
    affordance: str
    points: PiadPointCloud

    @property
    def target(self) -> np.ndarray:
        """The GT map ``[N]`` of this image's affordance on the paired point cloud."""
        return self.points.affordance(self.affordance)


def read_piad_pairs(image_dir: str | Path, point_dir: str | Path, pairs_file: str | Path | None = None
                    ) -> list[PiadPair]:
    """PIAD samples from an image folder and a ``Point_*.txt`` folder.

    With ``pairs_file`` (one ``<image name> <point file name>`` per line) those pairs, in that order. Without it,
    images sorted by name, the k-th image of a class paired with the (k mod n)-th of that class's n point files
    sorted by name.
    """
    image_dir, point_dir = Path(image_dir), Path(point_dir)
    for folder, what in ((image_dir, "image"), (point_dir, "point")):
        if not folder.is_dir():
            raise FileNotFoundError(f"PIAD {what} folder not found: {folder}")
    clouds: dict[str, PiadPointCloud] = {}

    def cloud(name: str) -> PiadPointCloud:
        if name not in clouds:
            clouds[name] = read_piad_points(point_dir / name)
        return clouds[name]

    if pairs_file is not None:
        rows = []
        for lineno, line in enumerate(Path(pairs_file).read_text().splitlines(), 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2:
                raise ValueError(f"{pairs_file}:{lineno}: expected '<image> <point file>', got {line!r}")
            rows.append((parts[0], parts[1]))
    else:
        images = sorted(f.name for f in image_dir.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        by_class: dict[str, list[str]] = {}
        for f in sorted(point_dir.glob("Point_*.txt")):
            by_class.setdefault(cloud(f.name).object_class, []).append(f.name)
        seen: dict[str, int] = {}
        rows = []
        for name in images:
            object_class, _ = piad_image_info(name)
            if object_class not in by_class:
                raise ValueError(f"{image_dir / name}: no point cloud of class {object_class!r} in {point_dir} "
                                 f"(classes there: {sorted(by_class)})")
            k = seen.get(object_class, 0)
            seen[object_class] = k + 1
            rows.append((name, by_class[object_class][k % len(by_class[object_class])]))
    if not rows:
        raise ValueError(f"no PIAD images ({', '.join(IMAGE_SUFFIXES)}) in {image_dir}")
    pairs = []
    for image_name, point_name in rows:
        object_class, affordance = piad_image_info(image_name)
        pc = cloud(point_name)
        if pc.object_class != object_class:
            raise ValueError(f"{image_name} shows a {object_class}, {point_name} is a {pc.object_class}")
        if not (image_dir / image_name).is_file():
            raise FileNotFoundError(f"PIAD image not found: {image_dir / image_name}")
        pairs.append(PiadPair(image_dir / image_name, object_class, affordance, pc))
    return pairs
