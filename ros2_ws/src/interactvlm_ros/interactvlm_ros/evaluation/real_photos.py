"""The real-photo evaluation behind ``interactvlm eval --real``: does contact on real photos land where a person
would draw it?

The labels file (``assets/real_photos/labels.json``, format ``interactvlm-real-photos``) names per image its
source package and path, its sha256, a scene, the object name a user would type and the body parts in contact
(names of the body model's ``part_vertex_ids``; the person's own left and right). ``parts: []`` means no contact:
no person in the image (``person: false``), or a person who touches nothing in that frame. An optional
``contact_visibility`` says how much of the touching body part the image shows: ``visible`` (the default; also
for no-contact images), ``partial`` (only a wrist, a forearm or fingertips at the object's edge) or ``hidden``
(nothing of it: the contact is known from context, such as a hand behind the board it holds up). The scores are
also reported per visibility, so that a contact no detector can see is told apart from one the model misses.

Per image, from the per-vertex human contact ``p [N]`` (all zeros when the model reports the contact not found):

* part hit: every labelled part has at least 10 % of its vertices at ``p >= 0.5``; with no contact labelled,
  no vertex at ``p >= 0.5``.
* on target: the share of the predicted contact mass (``p`` summed over the vertices at ``p >= 0.5``) that lies
  on the labelled parts' vertices; 0 when nothing is predicted. With no contact labelled: 1 when nothing is
  predicted, else 0.

The class-prior baseline is the project's (see ``runner.py``): each object class's mean training contact map,
from a synthetic dataset's train split, or from training samples regenerated with the shipped default model's
recipe (``synth --num 16000 --seed 0``); an object name with no training class gets an empty map.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

FORMAT = "interactvlm-real-photos"
FORMAT_VERSION = 1
CONTACT_THRESHOLD = 0.5
PART_COVERAGE = 0.10
SOURCE_KINDS = {"python": ("module",), "wheel": ("package", "version"), "debian": ("package",)}
VISIBILITIES = ("visible", "partial", "hidden")  # how much of the touching body part an image shows
# The shipped default model's training data (Makefile, train-default): its class prior is sampled from it.
RECIPE_NUM, RECIPE_SEED, RECIPE_MASK_SIZE = 16000, 0, 128


def shipped_labels_path() -> Path:
    """The labels file shipped in the package (``assets/real_photos/labels.json``)."""
    return Path(__file__).resolve().parent.parent / "assets" / "real_photos" / "labels.json"


@dataclass(frozen=True)
class RealPhoto:
    """One labelled image; ``parts`` empty means no contact."""

    id: str
    source: str
    path: str
    sha256: str
    scene: str
    object: str
    person: bool
    parts: tuple[str, ...]
    note: str = ""
    contact_visibility: str = "visible"


@dataclass
class RealPhotoSet:
    """A parsed labels file: ``sources`` (name → source dict) and ``images`` in file order."""

    sources: dict[str, dict]
    images: list[RealPhoto]


def _field(entry: dict, key: str, kind: type, where: str):
    if key not in entry:
        raise ValueError(f"{where}: missing {key!r}")
    value = entry[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"{where}: {key!r} must be {kind.__name__}, got {type(value).__name__}")
    return value


def load_real_labels(path: str | Path, part_names=None) -> RealPhotoSet:
    """Read and check a labels file; with ``part_names`` (a body model's ``part_vertex_ids()`` keys) every
    labelled part must be one of them. Raises ValueError naming the file, the image and the problem."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"real-photo labels not found: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a JSON labels file ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"{path}: not a real-photo labels file (format must be {FORMAT!r})")
    if doc.get("version") != FORMAT_VERSION:
        raise ValueError(f"{path}: version {doc.get('version')!r} is not supported (only {FORMAT_VERSION})")
    sources = _field(doc, "sources", dict, str(path))
    for name, src in sources.items():
        where = f"{path}: source {name!r}"
        if not isinstance(src, dict) or src.get("kind") not in SOURCE_KINDS:
            raise ValueError(f"{where}: kind must be one of {', '.join(SOURCE_KINDS)}")
        for key in SOURCE_KINDS[src["kind"]]:
            _field(src, key, str, where)
    entries = _field(doc, "images", list, str(path))
    if not entries:
        raise ValueError(f"{path}: no images")
    known = sorted(part_names) if part_names is not None else None
    images, seen = [], set()
    for k, e in enumerate(entries):
        if not isinstance(e, dict):
            raise ValueError(f"{path}: image #{k} is not an object")
        where = f"{path}: image {e.get('id', f'#{k}')!r}"
        pid = _field(e, "id", str, where)
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", pid) or pid in seen:
            raise ValueError(f"{where}: id must be unique and use only letters, digits, '_', '.', '-'")
        seen.add(pid)
        if _field(e, "source", str, where) not in sources:
            raise ValueError(f"{where}: unknown source {e['source']!r} (sources: {', '.join(sources)})")
        rel = _field(e, "path", str, where)
        if rel.startswith("/") or ".." in Path(rel).parts:
            raise ValueError(f"{where}: path must be relative and stay inside its source, got {rel!r}")
        sha = _field(e, "sha256", str, where)
        if not re.fullmatch(r"[0-9a-f]{64}", sha):
            raise ValueError(f"{where}: sha256 must be 64 lowercase hex digits")
        parts = _field(e, "parts", list, where)
        if not all(isinstance(p, str) for p in parts) or len(set(parts)) != len(parts):
            raise ValueError(f"{where}: parts must be distinct part names")
        if known is not None:
            unknown = [p for p in parts if p not in known]
            if unknown:
                raise ValueError(f"{where}: unknown body part {unknown[0]!r} (the body model's parts: "
                                 f"{', '.join(known)})")
        person = _field(e, "person", bool, where)
        if not person and parts:
            raise ValueError(f"{where}: person is false but parts are labelled")
        obj = _field(e, "object", str, where).strip()
        if not obj:
            raise ValueError(f"{where}: object must not be empty")
        visibility = e.get("contact_visibility", "visible")
        if visibility not in VISIBILITIES:
            raise ValueError(f"{where}: contact_visibility must be one of {', '.join(VISIBILITIES)}, got "
                             f"{visibility!r}")
        if not parts and visibility != "visible":
            raise ValueError(f"{where}: contact_visibility {visibility!r} needs labelled parts (no contact is "
                             f"'visible')")
        images.append(RealPhoto(pid, e["source"], rel, sha, _field(e, "scene", str, where), obj, person,
                                tuple(parts), str(e.get("note", "")), visibility))
    return RealPhotoSet(sources, images)


def _labelled_vertices(parts, part_ids: dict[str, np.ndarray]) -> np.ndarray:
    ids = [np.asarray(part_ids[p], dtype=np.int64) for p in parts]
    return np.unique(np.concatenate(ids)) if ids else np.zeros(0, np.int64)


def part_hit(probs: np.ndarray, parts, part_ids: dict[str, np.ndarray]) -> bool:
    """``probs [N]``: every part in ``parts`` has >= 10 % of its vertices at p >= 0.5 (``parts`` empty: no vertex
    at p >= 0.5)."""
    on = np.asarray(probs) >= CONTACT_THRESHOLD
    if not parts:
        return not bool(on.any())
    return all(len(part_ids[p]) > 0 and on[part_ids[p]].mean() >= PART_COVERAGE for p in parts)


def on_target(probs: np.ndarray, parts, part_ids: dict[str, np.ndarray]) -> float:
    """``probs [N]``: share of the predicted contact mass (p summed over vertices at p >= 0.5) on ``parts``;
    0 when nothing is predicted. ``parts`` empty: 1 when nothing is predicted, else 0."""
    p = np.asarray(probs, dtype=np.float64)
    mass = np.where(p >= CONTACT_THRESHOLD, p, 0.0)
    total = float(mass.sum())
    if not parts:
        return 1.0 if total == 0.0 else 0.0
    if total == 0.0:
        return 0.0
    return float(mass[_labelled_vertices(parts, part_ids)].sum() / total)


def top_parts(probs: np.ndarray, part_ids: dict[str, np.ndarray], k: int = 3) -> list[list]:
    """Where the predicted contact mass (``probs [N]`` at p >= 0.5) lies: up to ``k`` ``[part, share]`` of the
    smallest named parts (a part that contains another, such as ``hands``, is skipped), largest share first."""
    p = np.asarray(probs, dtype=np.float64)
    mass = np.where(p >= CONTACT_THRESHOLD, p, 0.0)
    total = float(mass.sum())
    if total == 0.0:
        return []
    sets = {name: set(np.asarray(ids).tolist()) for name, ids in part_ids.items()}
    leaves = [n for n, v in sets.items() if v and not any(m != n and sets[m] and sets[m] < v for m in sets)]
    shares = sorted(((float(mass[part_ids[n]].sum()) / total, n) for n in leaves), reverse=True)
    return [[n, round(share, 3)] for share, n in shares[:k] if share > 0]


def score_real(photos: list[RealPhoto], predictions: dict[str, np.ndarray], prior: dict[str, np.ndarray],
               part_ids: dict[str, np.ndarray], found: dict[str, bool] | None = None) -> dict:
    """Scores of per-image predictions ``{id: p [N]}`` and the class prior ``{object: p [N]}`` (a missing class:
    empty map). Returns the ``real_*`` and ``prior_baseline_real_*`` keys (means over images), the same over the
    images whose contact is in view (``real_seen_*``: visibility ``visible`` or ``partial``), ``real_per_scene``,
    ``real_per_visibility``, ``real_scene_mean`` (each scene weighted equally) and ``real_per_image``."""
    if not photos:
        raise ValueError("no real photos to score")
    num_vertices = 1 + max(int(np.max(v)) for v in part_ids.values() if len(v))
    rows = {}
    for photo in photos:
        if photo.id not in predictions:
            raise ValueError(f"no prediction for image {photo.id!r}")
        pred = np.asarray(predictions[photo.id], dtype=np.float64)
        if pred.ndim != 1 or len(pred) < num_vertices:
            raise ValueError(f"image {photo.id!r}: prediction of shape {pred.shape} does not cover the body's "
                             f"{num_vertices} part vertices")
        base = np.asarray(prior.get(photo.object, np.zeros(len(pred))), dtype=np.float64)
        if base.shape != pred.shape:
            raise ValueError(f"the class prior of {photo.object!r} has {base.shape[0]} vertices, the prediction "
                             f"{pred.shape[0]}")
        rows[photo.id] = {
            "scene": photo.scene, "object": photo.object, "parts": list(photo.parts),
            "contact_visibility": photo.contact_visibility,
            "found": bool(found[photo.id]) if found is not None else bool((pred >= CONTACT_THRESHOLD).any()),
            "predicted_vertices": int((pred >= CONTACT_THRESHOLD).sum()),
            "part_hit": part_hit(pred, photo.parts, part_ids), "on_target": on_target(pred, photo.parts, part_ids),
            "prior_part_hit": part_hit(base, photo.parts, part_ids),
            "prior_on_target": on_target(base, photo.parts, part_ids),
            "top_parts": top_parts(pred, part_ids),
        }

    def summary(ids: list[str]) -> dict:
        r = [rows[i] for i in ids]
        return {"num_images": len(r), "part_hit_rate": float(np.mean([x["part_hit"] for x in r])),
                "on_target": float(np.mean([x["on_target"] for x in r])),
                "prior_part_hit_rate": float(np.mean([x["prior_part_hit"] for x in r])),
                "prior_on_target": float(np.mean([x["prior_on_target"] for x in r]))}

    scenes: dict[str, list[str]] = {}
    for photo in photos:
        scenes.setdefault(photo.scene, []).append(photo.id)
    overall = summary(list(rows))
    per_scene = {s: summary(ids) for s, ids in scenes.items()}
    by_visibility = {v: [p.id for p in photos if p.contact_visibility == v] for v in VISIBILITIES}
    seen_ids = by_visibility["visible"] + by_visibility["partial"]
    seen = summary(seen_ids) if seen_ids else None
    return {
        "real_num_images": len(rows), "real_num_scenes": len(scenes),
        "real_num_no_contact": sum(1 for p in photos if not p.parts),
        "real_part_hit_rate": overall["part_hit_rate"], "real_on_target": overall["on_target"],
        "real_found_rate": float(np.mean([x["found"] for x in rows.values()])),
        "prior_baseline_real_part_hit_rate": overall["prior_part_hit_rate"],
        "prior_baseline_real_on_target": overall["prior_on_target"],
        "real_num_seen": len(seen_ids),
        "real_seen_part_hit_rate": seen["part_hit_rate"] if seen else None,
        "real_seen_on_target": seen["on_target"] if seen else None,
        "prior_baseline_real_seen_part_hit_rate": seen["prior_part_hit_rate"] if seen else None,
        "prior_baseline_real_seen_on_target": seen["prior_on_target"] if seen else None,
        "real_per_visibility": {v: summary(ids) for v, ids in by_visibility.items() if ids},
        "real_per_scene": per_scene,
        "real_scene_mean": {k: float(np.mean([v[k] for v in per_scene.values()])) for k in overall
                            if k != "num_images"},
        "real_per_image": rows,
    }


def recipe_train_indices(count: int, num: int = RECIPE_NUM, seed: int = RECIPE_SEED) -> np.ndarray:
    """The first ``count`` sample indices (ascending) of the train split of ``synth --num num --seed seed``
    (the split rule of ``SyntheticGenerator.write``: test, then val, then train along a seeded permutation)."""
    from interactvlm_ros.data.synthesize import SPLIT_FRACTIONS

    order = np.random.default_rng([seed, 1 << 20]).permutation(num)
    held = int(round(num * SPLIT_FRACTIONS["test"])) + int(round(num * SPLIT_FRACTIONS["val"]))
    train = np.sort(order[held:])
    if not 0 < count <= len(train):
        raise ValueError(f"the class prior needs 1..{len(train)} training samples, got {count}")
    return train[:count]


def recipe_class_prior(generator, count: int, cache_file: str | Path | None = None,
                       progress: bool = True) -> dict[str, np.ndarray]:
    """Per object class, the mean human contact ``[N]`` of the first ``count`` train-split samples of the dataset
    that ``generator`` (a ``SyntheticGenerator``; its config's num and seed) writes; cached in ``cache_file`` (npz)
    when given."""
    if cache_file is not None and Path(cache_file).is_file():
        with np.load(cache_file) as z:
            return {k: z[k].astype(np.float32) for k in z.files}
    sums: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    indices = recipe_train_indices(count, generator.config.num, generator.config.seed)
    for index in tqdm(indices, desc="class prior", unit="sample", disable=not progress):
        s = generator.sample(int(index))
        label = s["interaction"].label
        sums[label] = sums.get(label, 0.0) + s["human_contact"].astype(np.float64)
        counts[label] = counts.get(label, 0) + 1
    prior = {k: (sums[k] / counts[k]).astype(np.float32) for k in sums}
    if cache_file is not None:
        import io

        from interactvlm_ros.files.atomic import atomic_write_bytes

        buf = io.BytesIO()
        np.savez(buf, **prior)
        atomic_write_bytes(cache_file, buf.getvalue())
    return prior


def predict_real(pipeline, photos: list[RealPhoto], files: dict[str, Path], progress: bool = True,
                 evidence: dict | None = None) -> tuple[dict[str, np.ndarray], dict[str, bool]]:
    """Run ``pipeline`` (a ``ContactPipeline``, as the node runs it) on each image with its object name:
    ``({id: p [N]}, {id: found})``; a contact reported not found is all zeros. With the pipeline's person gate
    (``contact.person_gate``) each result is gated as the node gates it (no person: not found), and each image's
    evidence goes into ``evidence`` ({id: PersonEvidence}) when given."""
    from PIL import Image

    preds, found = {}, {}
    n = int(pipeline.predictor.body_model.num_vertices)
    for photo in tqdm(photos, desc="eval real", unit="image", disable=not progress):
        try:
            with Image.open(files[photo.id]) as im:
                rgb = np.asarray(im.convert("RGB"))
        except OSError as exc:
            raise ValueError(f"image {photo.id!r}: unreadable ({exc})") from None
        run = pipeline.run(rgb, [photo.object])
        if run.person is not None and evidence is not None:
            evidence[photo.id] = run.person
        c = run.contacts.contacts[0]
        found[photo.id] = bool(c.found and c.human_probs is not None)
        preds[photo.id] = np.asarray(c.human_probs, np.float32) if found[photo.id] else np.zeros(n, np.float32)
    return preds, found


def evaluate_real(cfg, labels: str | Path, images_dir: str | Path | None = None, data_dir: str | Path | None = None,
                  prior_samples: int = 350, progress: bool = True, limit: int | None = None,
                  person_gate=None, predictor=None) -> dict:
    """``interactvlm eval --real``: fetch the images, run the configured model, score it and the class prior
    (from ``data_dir``'s train split, else ``prior_samples`` samples of the default recipe's training data).
    ``person_gate``: the ``contact.person_gate`` gate the CLI builds (None: disabled); ``real_person_gate`` reports
    it and each image's ``person`` what it saw. ``predictor``: what answers (the CLI's ``load_predictor``: a Triton
    client with ``inference.backend: triton``); None: a local ``ContactPredictor`` of ``cfg``."""
    from interactvlm_ros.config.paths import cache_dir
    from interactvlm_ros.evaluation.photo_sources import fetch_real_photos
    from interactvlm_ros.model import ContactPredictor
    from interactvlm_ros.pipeline.contact_pipeline import ContactPipeline

    root = cache_dir(cfg.cache.dir)
    load_real_labels(labels)  # the file's own errors before the model loads; part names are checked below
    if data_dir is None and cfg.body.model != "anny":
        raise ValueError(f"the class prior is sampled from the synthetic generator, which poses Anny bodies: use "
                         f"body.model=anny or give --data DIR (got body.model={cfg.body.model})")
    if predictor is None:
        predictor = ContactPredictor.from_config(cfg)
    body = predictor.body_model
    part_ids = body.part_vertex_ids()
    photos = load_real_labels(labels, part_names=part_ids)
    if limit is not None:
        photos.images = photos.images[:max(1, limit)]
    files = fetch_real_photos(photos, images_dir or root / "real_photos", progress)
    if data_dir is not None:
        from interactvlm_ros.data import SyntheticDataset

        train = SyntheticDataset(data_dir, "train")
        if train.num_body_vertices != body.num_vertices:
            raise ValueError(f"{data_dir} labels {train.num_body_vertices} body vertices, the body model has "
                             f"{body.num_vertices}")
        prior = train.class_mean_contact("human_contact", "object")
        prior_source = f"{data_dir} train split ({len(train)} samples)"
    else:
        from interactvlm_ros.data import SynthConfig, SyntheticGenerator
        from interactvlm_ros.objects import ObjectLibrary

        library = ObjectLibrary.from_config(cfg)
        gen = SyntheticGenerator(body, library, SynthConfig(num=RECIPE_NUM, seed=RECIPE_SEED,
                                                            mask_size=RECIPE_MASK_SIZE), cache_dir=root / "renders")
        meshes = "-".join(library.mesh_id(k)[:8] for k in sorted(gen.meshes))
        cache = root / "real_photos" / f"prior_s{RECIPE_SEED}_n{RECIPE_NUM}_k{prior_samples}_" \
                                       f"{body.topology_hash[:12]}_{meshes}.npz"
        prior = recipe_class_prior(gen, prior_samples, cache, progress)
        prior_source = f"{prior_samples} training samples of synth --num {RECIPE_NUM} --seed {RECIPE_SEED}"
    evidence: dict = {}
    pipeline = ContactPipeline(predictor, object_contact=False, person_gate=person_gate)  # the gate: body's hands
    try:
        preds, found = predict_real(pipeline, photos.images, files, progress, evidence)
    finally:
        pipeline.close()
    out = score_real(photos.images, preds, prior, part_ids, found)
    out.update({"model": cfg.model.name, "real_labels": str(labels), "real_prior": prior_source,
                "real_person_gate": str(cfg.contact.person_gate) if person_gate is not None else "disabled"})
    for pid, ev in evidence.items():
        out["real_per_image"][pid]["person"] = ev.describe()
    return out
