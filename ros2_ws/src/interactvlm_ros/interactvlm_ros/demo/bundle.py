"""The demo's input frames: real photos first, then a few synthetic scenes held out from training.

The synthetic frames come from our generator (:class:`~interactvlm_ros.data.SyntheticGenerator`) with
:data:`DEMO_SEED`, a seed no training set uses (``make train-default`` trains on seed 0; a sample is drawn
from the random stream ``(seed, index)``, so other seeds give other scenes). Walking the indices in order, the
first scene of each object class is kept until :data:`NUM_SCENES` scenes are chosen. Stored in
``interactvlm_ros/assets/demo/``::

    manifest.json         seed, image size, intrinsics, one row per frame (id, object, interaction, parts)
    <id>.png              RGB image
    <id>_contact.npz      ground truth for reference: human_vertices / object_vertices (uint32 ids in contact)

Regenerate (deterministic, byte-identical)::

    python -m interactvlm_ros.demo.bundle [--out DIR]

The real photos (:func:`real_photo_frames`) are the labelled images of the real-photo evaluation
(``assets/real_photos/labels.json``) that ship inside an installed Python package (scikit-image: the astronaut,
the cameraman, a coffee cup, a cat), loaded at run time with their labels: the object name a user would type and
the body parts in contact, plus two calibration-board frames from Debian's opencv-doc package
(:data:`DEMO_PACKAGED_PHOTOS`), fetched once into the cache like ``eval --real``'s images (a 95 MB download; left
out, with a note, where it cannot be fetched). ``interactvlm eval --real`` scores the whole labelled set.
"""

from __future__ import annotations

import argparse
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from interactvlm_ros.config.paths import package_dir

DEMO_SEED = 20251125
NUM_SCENES = 5
IMAGE_SIZE = 160
FOV_DEG = 60.0  # the generator's camera (PyTorch3D look-at, 60° field of view)
FORMAT = "interactvlm-demo-frames-1"
DEMO_PACKAGED_PHOTOS = ("board_right03", "board_left05")
"""Photos from Debian packages the demo shows too: a person holding a calibration board up to the camera, face
behind it; the hand that holds it is seen at the board's edge in the first and hidden behind the board in the
second (the person gate finds it, and reports the second not found, with the reason)."""


def bundle_dir() -> Path:
    """``interactvlm_ros/assets/demo`` inside the installed package."""
    return package_dir() / "assets" / "demo"


@dataclass
class DemoFrame:
    """One demo input: ``image`` uint8 ``[H,W,3]``, the object queried, ``K [3,3]`` intrinsics (``None`` = the
    default field of view), ground-truth contact vertex ids when known (synthetic scenes), the labelled body
    parts in contact for a real photo (``()``: no contact; ``None``: not a labelled photo)."""

    id: str
    image: np.ndarray
    object: str
    source: str
    K: np.ndarray | None = None
    description: str = ""
    gt_human_vertices: np.ndarray | None = None
    gt_object_vertices: np.ndarray | None = None
    labelled_parts: tuple[str, ...] | None = None


def pinhole_k(width: int, height: int, fov_deg: float) -> np.ndarray:
    """``[3,3]`` K of a pinhole with horizontal field of view ``fov_deg`` and the principal point at the centre."""
    f = 0.5 * width / math.tan(math.radians(fov_deg) / 2.0)
    return np.array([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]])


class BundleError(RuntimeError):
    """The bundled frames are missing or unreadable (the message says how to regenerate them)."""


def load_bundle(root: str | Path | None = None) -> list[DemoFrame]:
    """The bundled synthetic frames (manifest order)."""
    from PIL import Image

    root = Path(root) if root is not None else bundle_dir()
    path = root / "manifest.json"
    regen = "regenerate them with `python -m interactvlm_ros.demo.bundle`"
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise BundleError(f"demo frames: cannot read {path} ({exc}); {regen}") from None
    if manifest.get("format") != FORMAT:
        raise BundleError(f"demo frames: {path} has format {manifest.get('format')!r}, expected {FORMAT!r}; {regen}")
    frames = []
    for row in manifest["frames"]:
        try:
            with Image.open(root / row["image"]) as im:
                image = np.asarray(im.convert("RGB"))
            with np.load(root / row["contact"], allow_pickle=False) as z:
                human, obj = z["human_vertices"], z["object_vertices"]
        except (OSError, KeyError, ValueError) as exc:
            raise BundleError(f"demo frames: {root / row['image']} or its contact file is unreadable ({exc}); "
                              f"{regen}") from None
        frames.append(DemoFrame(row["id"], image, row["object"], "synthetic", np.asarray(row["K"], np.float64),
                                row["description"], human.astype(np.int64), obj.astype(np.int64)))
    return frames


def real_photo_frames(packaged: tuple[str, ...] = DEMO_PACKAGED_PHOTOS) -> list[DemoFrame]:
    """The labelled real photos that ship in an installed Python package and the ``packaged`` ones (ids of
    photos from Debian packages, fetched into the cache; skipped with a note on stderr when that fails), in the
    labels file's order (the astronaut first), each queried with its labelled object name."""
    import sys

    from PIL import Image

    from interactvlm_ros.evaluation.photo_sources import labelled_photo_files
    from interactvlm_ros.evaluation.real_photos import load_real_labels, shipped_labels_path

    labels = load_real_labels(shipped_labels_path())
    python = [p.id for p in labels.images if labels.sources[p.source]["kind"] == "python"]
    files, missing = labelled_photo_files([*python, *packaged], labels)
    if missing:
        print(f"demo: showing no calibration-board photos: {missing}", file=sys.stderr)
    frames = []
    for photo in labels.images:
        if photo.id not in files:
            continue
        with Image.open(files[photo.id]) as im:
            image = np.ascontiguousarray(np.asarray(im.convert("RGB")))
        what = f"{photo.scene}: " + (", ".join(photo.parts) if photo.parts else
                                     "no contact" + ("" if photo.person else " (no person)"))
        if photo.contact_visibility != "visible":
            what += " (partly in view)" if photo.contact_visibility == "partial" else " (not in view)"
        frames.append(DemoFrame(photo.id, image, photo.object, "photo", None, what, labelled_parts=photo.parts))
    return frames


def generate_bundle(out: str | Path, seed: int = DEMO_SEED, num: int = NUM_SCENES, image_size: int = IMAGE_SIZE,
                    progress: bool = True) -> Path:
    """Generate the bundled frames into ``out`` (see the module docstring); returns the manifest path."""
    from PIL import Image
    from tqdm import tqdm

    from interactvlm_ros.body import load_body_model
    from interactvlm_ros.config import load_config
    from interactvlm_ros.config.paths import cache_dir
    from interactvlm_ros.data import SynthConfig, SyntheticGenerator
    from interactvlm_ros.files.atomic import atomic_write_bytes
    from interactvlm_ros.objects import ObjectLibrary

    cfg = load_config(None, ["body.model=anny"])
    gen = SyntheticGenerator(load_body_model(cfg), ObjectLibrary.from_config(cfg),
                             SynthConfig(num=num, seed=seed, image_size=image_size),
                             cache_dir=cache_dir(cfg.cache.dir) / "renders")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    K = pinhole_k(image_size, image_size, FOV_DEG)
    rows, seen = [], set()
    bar = tqdm(total=num, desc="demo frames", unit="frame", disable=not progress)
    index = 0
    while len(rows) < num:
        if index > 50 * num:
            raise RuntimeError(f"only {len(rows)} object classes found in {index} samples")
        label = gen.interaction_at(index).label
        if label in seen:
            index += 1
            continue
        s = gen.sample(index)
        seen.add(label)
        fid = f"{seed}_{index:04d}_{label}"
        buf = io.BytesIO()
        Image.fromarray(s["image"]).save(buf, format="PNG", optimize=True)
        atomic_write_bytes(out / f"{fid}.png", buf.getvalue())
        buf = io.BytesIO()
        np.savez_compressed(buf, human_vertices=np.flatnonzero(s["human_contact"]).astype(np.uint32),
                            object_vertices=np.flatnonzero(s["object_contact"]).astype(np.uint32))
        atomic_write_bytes(out / f"{fid}_contact.npz", buf.getvalue())
        inter = s["interaction"]
        rows.append({"id": fid, "index": index, "image": f"{fid}.png", "contact": f"{fid}_contact.npz",
                     "object": label, "interaction": inter.name, "description": inter.description,
                     "parts": s["parts"], "K": K.tolist(), "camera": s["camera"]})
        bar.update(1)
        index += 1
    bar.close()
    manifest = {"format": FORMAT, "generator_seed": seed, "image_size": image_size, "fov_deg": FOV_DEG,
                "body_model": gen.body.name, "topology_hash": gen.body.topology_hash,
                "num_body_vertices": int(gen.body.num_vertices),
                "objects": {r["object"]: gen.library.mesh_id(r["object"]) for r in rows},
                "regenerate": "python -m interactvlm_ros.demo.bundle", "frames": rows}
    path = out / "manifest.json"
    atomic_write_bytes(path, (json.dumps(manifest, indent=1) + "\n").encode())
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m interactvlm_ros.demo.bundle", description=__doc__.split("\n")[0])
    p.add_argument("--out", default=None, help="output folder (default: the package's assets/demo)")
    p.add_argument("--seed", type=int, default=DEMO_SEED)
    p.add_argument("--num", type=int, default=NUM_SCENES)
    p.add_argument("--image-size", type=int, default=IMAGE_SIZE)
    args = p.parse_args(argv)
    path = generate_bundle(args.out or bundle_dir(), args.seed, args.num, args.image_size)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
