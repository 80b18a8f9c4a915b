"""Reader of a synthetic dataset folder written by :class:`~interactvlm_ros.data.synthesize.SyntheticGenerator`
(layout in that module's docstring)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from interactvlm_ros.data.synthesize import FORMAT, FORMAT_VERSION


class DatasetError(ValueError):
    """A dataset folder is missing, incomplete or of another format; the message names the file."""


class SyntheticDataset:
    """Samples of one split (``None`` = all) as dicts.

    Each item: ``id``, ``image`` uint8 ``[H,W,3]``, ``object`` (class label), ``interaction``, ``parts`` (body
    part names in contact), ``human_contact`` float32 ``[Nb]``, ``object_contact`` float32 ``[No]``,
    ``human_masks`` / ``object_masks`` bool ``[V,R,R]`` (R = ``mask_size``), and ``objects``: one entry per
    object in the image, ``{object, interaction, human_contact [Nb], object_contact [No]}``.

    A two-object dataset (``scenes == "pairs"``, evaluation only) has no top-level ``object_contact`` /
    ``object_masks``; its ``object`` and ``interaction`` join the two (``chair+mug``), ``human_contact`` is the
    union and ``objects`` holds each object's own labels. Samples of the ``unseen_shapes`` split show the
    dataset's own meshes (:meth:`object_mesh_file`); their ``object_contact`` is on those meshes' vertices.
    """

    def __init__(self, root: str | Path, split: str | None = None):
        self.root = Path(root)
        path = self.root / "manifest.json"
        if not path.is_file():
            raise DatasetError(f"{path}: not found (create a dataset with `interactvlm synth --out {self.root}`)")
        try:
            manifest = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{path}: not valid JSON ({exc})") from None
        if manifest.get("format") != FORMAT or manifest.get("version") != FORMAT_VERSION:
            raise DatasetError(f"{path}: format {manifest.get('format')!r} v{manifest.get('version')}, expected "
                               f"{FORMAT!r} v{FORMAT_VERSION}")
        self.manifest = manifest
        if split is not None and split not in manifest["splits"]:
            raise DatasetError(f"{path}: no split {split!r} (has {sorted(manifest['splits'])})")
        self.split = split
        self.scenes = str(manifest.get("scenes", "single"))
        self.rows = [r for r in manifest["samples"] if split is None or r["split"] == split]

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def mask_size(self) -> int:
        return int(self.manifest["mask_size"])

    @property
    def num_body_vertices(self) -> int:
        return int(self.manifest["num_body_vertices"])

    @property
    def topology_hash(self) -> str:
        return str(self.manifest["topology_hash"])

    def object_labels(self) -> list[str]:
        return sorted(self.manifest["objects"])

    def object_mesh_file(self, index: int, label: str) -> Path | None:
        """The dataset's own mesh of ``label`` for sample ``index`` (the ``unseen_shapes`` split's new shapes),
        or None when the sample uses the object library's mesh."""
        folder = self.rows[index].get("mesh_dir")
        if folder is None:
            return None
        path = self.root / folder / f"{label}.ply"
        if not path.is_file():
            raise DatasetError(f"{path}: not found (the mesh of {label!r} in sample {self.rows[index]['id']})")
        return path

    def interaction_classes(self) -> tuple[str, ...]:
        """``object/interaction`` names of every interaction the generator can make, sorted."""
        return tuple(sorted(f"{i['object']}/{i['name']}" for i in self.manifest["interactions"]))

    def labels(self, index: int) -> dict[str, np.ndarray]:
        row = self.rows[index]
        path = self.root / row["labels"]
        try:
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except (OSError, ValueError) as exc:
            raise DatasetError(f"{path}: unreadable label file ({exc})") from None

    def image(self, index: int) -> np.ndarray:
        path = self.root / self.rows[index]["image"]
        try:
            with Image.open(path) as im:
                return np.asarray(im.convert("RGB"))
        except OSError as exc:
            raise DatasetError(f"{path}: unreadable image ({exc})") from None

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self.rows):
            raise IndexError(f"sample {index} out of range ({len(self.rows)} samples)")
        row = self.rows[index]
        lab = self.labels(index)
        item = {"id": row["id"], "image": self.image(index), "object": row["object"],
                "interaction": row["interaction"], "parts": list(row["parts"]),
                "human_contact": lab["human_contact"].astype(np.float32),
                "human_masks": lab["human_masks"].astype(bool),
                "objects": [{"object": o, "interaction": it, "human_contact": a["human_contact"].astype(np.float32),
                             "object_contact": a["object_contact"].astype(np.float32)}
                            for o, it, a in self._per_object(row, lab)]}
        if self.scenes == "single":
            item["object_contact"] = lab["object_contact"].astype(np.float32)
            item["object_masks"] = lab["object_masks"].astype(bool)
        return item

    def _per_object(self, row: dict, labels: dict[str, np.ndarray]) -> list[tuple[str, str, dict[str, np.ndarray]]]:
        """``(object, interaction, {human_contact, object_contact})`` of each object in one sample."""
        if self.scenes == "single":
            return [(row["object"], row["interaction"], labels)]
        try:
            return [(o["object"], o["interaction"], {"human_contact": labels[f"human_contact_{k}"],
                                                     "object_contact": labels[f"object_contact_{k}"]})
                    for k, o in enumerate(row["objects"])]
        except KeyError as exc:
            raise DatasetError(f"{self.root / row['labels']}: no {exc.args[0]} for sample {row['id']}") from None

    def class_mean_contact(self, key: str = "human_contact", by: str = "object") -> dict[str, np.ndarray]:
        """Mean per-vertex contact over this split per object class (``by="object"``: the prior baseline's map)
        or per ``object/interaction`` (``by="interaction"``: what an oracle told the interaction would predict);
        in a two-object dataset each object's own labels count for its class."""
        return self.class_means([(key, by)])[0]

    def class_means(self, groupings: list[tuple[str, str]]) -> list[dict[str, np.ndarray]]:
        """``class_mean_contact`` for several ``(key, by)`` pairs in one pass over the label files."""
        for _, by in groupings:
            if by not in ("object", "interaction"):
                raise ValueError(f"by must be 'object' or 'interaction', got {by!r}")
        sums: list[dict[str, np.ndarray]] = [{} for _ in groupings]
        counts: list[dict[str, int]] = [{} for _ in groupings]
        for i, row in enumerate(self.rows):
            for obj, inter, labels in self._per_object(row, self.labels(i)):
                for g, (key, by) in enumerate(groupings):
                    label = obj if by == "object" else f"{obj}/{inter}"
                    sums[g][label] = sums[g].get(label, 0.0) + labels[key].astype(np.float64)
                    counts[g][label] = counts[g].get(label, 0) + 1
        return [{k: (s[k] / c[k]).astype(np.float32) for k in s} for s, c in zip(sums, counts, strict=True)]
