"""Evaluation runs behind ``interactvlm eval``: a model on a synthetic split (with the per-class prior baseline),
or on DAMON (images + ``hot_dca_test.npz``) or PIAD (images + ``Point_*.txt``), or a predictions file of either.

Synthetic samples and DAMON images go through the node's own
:class:`~interactvlm_ros.pipeline.contact_pipeline.ContactPipeline` (``run``: the image encoded once, the human
questions in one batch, the object meshes in one call); a synthetic sample's objects are asked as
:class:`~interactvlm_ros.pipeline.contact_pipeline.ObjectQuery` values that carry the mesh the sample was made
with (its own shape in the ``unseen_shapes`` split, else the library's), so the scores are those of what the node
publishes. PIAD asks about point clouds, which the pipeline does not take: it runs ``predict_points``.

Synthetic split (one or, with ``--scenes pairs`` data, two objects per image; one query per object): human contact
P/R/F1 per image of the union of its objects' predictions (DECO binary), geodesic errors on the canonical body mesh
(cm, edge-graph Dijkstra), semantic F1 per (image, object) query against that object's own contacts weighted per
object class, object contact P/R/F1 per query on its object mesh and the PIAD map metrics (SIM, MAE, AUC, aIoU)
of the object predictions. The prior
baseline predicts, for every test sample, the mean training contact map of its object class; the interaction oracle
(a reference point, not a baseline: it is told the answer) the mean map of its object *and interaction*.

Every F1 comes with a ``<key>_ci`` = ``[low, high]``, its 95 % percentile-bootstrap interval (1000 resamples,
seed 0; :mod:`.intervals`) over samples (synthetic) or images (DAMON: an image's object queries are drawn
together); ``intervals`` in the JSON says so.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from interactvlm_ros.evaluation.geodesic import MeshGeodesic
from interactvlm_ros.evaluation.intervals import interval_note, rounded_ci
from interactvlm_ros.evaluation.metrics import (
    CONTACT_THRESHOLD,
    affordance_metrics,
    aiou,
    binary_contact_metrics,
    contact_scores,
    mae,
    roc_auc,
    semantic_contact_metrics,
    sim,
)
from interactvlm_ros.evaluation.readers import DamonSplit, PiadPair
from interactvlm_ros.objects.library import read_mesh_file
from interactvlm_ros.pipeline.contact_pipeline import ObjectQuery
from interactvlm_ros.pipeline.result import MeshTopology


def _object_metrics(preds: list[np.ndarray], gts: list[np.ndarray], prefix: str, groups=None) -> dict[str, float]:
    """Per-sample contact scores and PIAD map metrics over samples whose meshes differ in size (``groups [S]``:
    the image of each row, resampled together for the F1 interval)."""
    p_, r_, f_, sims, maes, aucs, ious = [], [], [], [], [], [], []
    for p, g in zip(preds, gts, strict=True):
        s = contact_scores(p, g)
        p_.append(s.precision[0])
        r_.append(s.recall[0])
        f_.append(s.f1[0])
        sims.append(sim(p, g))
        maes.append(mae(p, g))
        gb = g >= 0.5
        if 0 < gb.sum() < len(gb):
            aucs.append(roc_auc(gb, p))
            ious.append(aiou(p, gb))

    def mean(x):
        return float(np.mean(x)) if len(x) else float("nan")

    return {f"{prefix}_f1": mean(f_), f"{prefix}_f1_ci": rounded_ci(f_, groups), f"{prefix}_precision": mean(p_),
            f"{prefix}_recall": mean(r_), f"{prefix}_sim": mean(sims), f"{prefix}_mae": mean(maes),
            f"{prefix}_auc": mean(aucs), f"{prefix}_aiou": mean(ious)}


def transfer_map(values: np.ndarray, source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-vertex ``values [Ns]`` on ``source [Ns,3]`` carried to ``target [Nt,3]`` (another shape of the same
    class): each target vertex takes its nearest source vertex's value, both meshes scaled to a unit bounding
    box about its centre."""
    from scipy.spatial import cKDTree

    def unit(v):
        v = np.asarray(v, np.float64)
        lo, hi = v.min(axis=0), v.max(axis=0)
        return (v - (lo + hi) / 2.0) / np.maximum(hi - lo, 1e-9)

    return np.asarray(values)[cKDTree(unit(source)).query(unit(target))[1]]


def _union(maps: list[np.ndarray]) -> np.ndarray:
    """Binary contact of an image from its per-object maps ``[K][N]``: a vertex any of them puts at >= 0.5."""
    return (np.stack(maps) >= CONTACT_THRESHOLD).any(axis=0).astype(np.float32)


def _mesh_query(label: str, mesh, mesh_id: str) -> ObjectQuery:
    """``label`` asked about with its contact localised on ``mesh`` (``vertices``/``faces``)."""
    return ObjectQuery(label, MeshTopology(mesh_id, "object", label, np.asarray(mesh.vertices, np.float32),
                                           np.asarray(mesh.faces, np.int64)))


def evaluate_synthetic(pipeline, dataset, train_dataset, library, body_model, progress: bool = True,
                       limit: int | None = None) -> dict:
    """Score ``pipeline`` (a ``ContactPipeline``; its ``run`` on each image) on ``dataset`` (a
    ``SyntheticDataset`` split).

    One query per object in the image, carrying the object's mesh. Semantic rows are (image, object) pairs against
    that object's own labels; binary rows are images: the union of the image's per-object predictions against the
    union of its labels (as DAMON scores binary contact). With one object per image the two are the same rows.
    ``train_dataset`` gives the prior baseline's per-class mean maps (carried by :func:`transfer_map` onto a
    sample's own mesh in the ``unseen_shapes`` split); ``library`` the object meshes; ``body_model`` the canonical
    mesh for geodesic errors (must be the topology the labels are on).
    """
    if body_model.num_vertices != dataset.num_body_vertices:
        raise ValueError(f"labels have {dataset.num_body_vertices} body vertices, the body model "
                         f"{body_model.num_vertices}")
    n = len(dataset) if limit is None else min(limit, len(dataset))
    if n == 0:
        raise ValueError("the evaluation split is empty")
    prior_h, prior_o, oracle_h = train_dataset.class_means(
        [("human_contact", "object"), ("object_contact", "object"), ("human_contact", "interaction")])
    # (file mesh, its query) of each object class's library mesh and of the dataset's own meshes (unseen shapes,
    # read once); the file mesh carries the class prior onto an own shape as before
    meshes = {}
    for label in dataset.object_labels():
        mesh = library.mesh(label)
        meshes[label] = (mesh, _mesh_query(label, mesh, library.mesh_id(label)))
    own: dict[Path, tuple] = {}
    zero = np.zeros(dataset.num_body_vertices, np.float32)
    # per (image, object) query
    h_pred, h_gt, h_prior, h_oracle, labels, image_of = [], [], [], [], [], []
    o_pred, o_gt, o_prior = [], [], []
    # per image
    b_pred, b_gt, b_prior, b_oracle = [], [], [], []
    missing = 0
    for i in tqdm(range(n), desc="eval", unit="sample", disable=not progress):
        item = dataset[i]
        objects = item["objects"]
        queries = []
        for o in objects:
            label = o["object"]
            path = dataset.object_mesh_file(i, label)
            if path is not None and path not in own:
                m = read_mesh_file(path, "{path}")[0]
                own[path] = (m, _mesh_query(label, m, f"{label}@{Path(path).stem}"))
            queries.append(meshes[label] if path is None else own[path])
        res = pipeline.run(item["image"], [q for _, q in queries]).contacts.contacts
        first = len(h_pred)
        for o, (mesh, _), c in zip(objects, queries, res, strict=True):
            label = o["object"]
            h = c.human_probs if c.found and c.human_probs is not None else zero
            missing += int(not c.found)
            ob = c.object_probs if c.found and c.object_probs is not None else np.zeros(len(mesh.vertices))
            h_pred.append(np.asarray(h, np.float32))
            h_gt.append(o["human_contact"])
            labels.append(label)
            image_of.append(i)
            h_prior.append(prior_h.get(label, zero))
            h_oracle.append(oracle_h.get(f"{label}/{o['interaction']}", zero))
            o_pred.append(np.asarray(ob, np.float32))
            o_gt.append(o["object_contact"])
            prior_map = prior_o.get(label, np.zeros_like(o["object_contact"]))
            if mesh is not meshes[label][0]:  # the sample's own shape: the class prior carried onto it
                prior_map = transfer_map(prior_map, meshes[label][0].vertices, mesh.vertices)
            o_prior.append(prior_map)
        b_pred.append(_union(h_pred[first:]))
        b_gt.append(item["human_contact"])
        b_prior.append(_union(h_prior[first:]))
        b_oracle.append(_union(h_oracle[first:]))
    h_pred, h_gt, h_prior = np.stack(h_pred), np.stack(h_gt), np.stack(h_prior)
    b_pred, b_gt, b_prior, b_oracle = np.stack(b_pred), np.stack(b_gt), np.stack(b_prior), np.stack(b_oracle)
    geo = MeshGeodesic.cached(body_model.canonical_vertices(), body_model.faces)
    human = binary_contact_metrics(b_pred, b_gt, geodesic=geo)
    semantic = semantic_contact_metrics(h_pred, h_gt, labels)
    prior = binary_contact_metrics(b_prior, b_gt)
    prior_sem = semantic_contact_metrics(h_prior, h_gt, labels)
    oracle = binary_contact_metrics(b_oracle, b_gt)
    prior_object = _object_metrics(o_prior, o_gt, "prior", image_of)
    out = {
        "human_f1": human["f1"], "human_f1_ci": rounded_ci(contact_scores(b_pred, b_gt).f1),
        "human_precision": human["precision"], "human_recall": human["recall"],
        "human_geodesic_fp_cm": human["geodesic_fp_cm"], "human_geodesic_fn_cm": human["geodesic_fn_cm"],
        "semantic_f1": semantic["f1"], "semantic_f1_ci": rounded_ci(contact_scores(h_pred, h_gt).f1, image_of),
        "semantic_precision": semantic["precision"], "semantic_recall": semantic["recall"],
        **_object_metrics(o_pred, o_gt, "object", image_of),
        "prior_baseline_human_f1": prior["f1"],
        "prior_baseline_human_f1_ci": rounded_ci(contact_scores(b_prior, b_gt).f1),
        "prior_baseline_semantic_f1": prior_sem["f1"],
        "prior_baseline_semantic_f1_ci": rounded_ci(contact_scores(h_prior, h_gt).f1, image_of),
        "prior_baseline_object_f1": prior_object["prior_f1"],
        "prior_baseline_object_f1_ci": prior_object["prior_f1_ci"],
        "interaction_oracle_human_f1": oracle["f1"],
        "interaction_oracle_human_f1_ci": rounded_ci(contact_scores(b_oracle, b_gt).f1),
        "intervals": interval_note("image"),
        "scenes": dataset.scenes,
        "num_samples": int(n),
        "num_queries": len(labels),
        "no_contact_token": int(missing),
        "semantic_per_class": {k: round(v["f1"], 4) for k, v in semantic["per_class"].items()},
        "prior_per_class": {k: round(v["f1"], 4) for k, v in prior_sem["per_class"].items()},
    }
    return out


def evaluate_damon(pipeline, split: DamonSplit, image_dir: str | Path, geodesic: MeshGeodesic | None = None,
                   progress: bool = True, limit: int | None = None) -> dict:
    """A model (``pipeline``: a ``ContactPipeline``) on DAMON: per image, one query per labelled object
    ("supporting" excluded). Semantic = per
    (image, object) pair, count-weighted per class; binary = OR over the image's object predictions against
    ``contact_label`` (images without a 3D label skipped). The predictor's body must match the labels' topology."""
    image_dir = Path(image_dir)
    from PIL import Image

    n = len(split) if limit is None else min(limit, len(split))
    sem_pred, sem_gt, sem_labels, sem_image, bin_pred, bin_gt = [], [], [], [], [], []
    for i in tqdm(range(n), desc="eval damon", unit="image", disable=not progress):
        names = [name for idx, name in split.semantic_pairs() if idx == i]
        if not names and not split.has_contact[i]:
            continue
        path = image_dir / Path(split.imgnames[i]).name
        if not path.is_file():
            raise FileNotFoundError(f"DAMON image not found: {path}")
        with Image.open(path) as im:
            rgb = np.asarray(im.convert("RGB"))
        queries = [n_.replace("_", " ") for n_ in names] or ["object"]
        probs = []
        for c in pipeline.run(rgb, queries).contacts.contacts:
            probs.append(c.human_probs if c.found and c.human_probs is not None else np.zeros(split.num_vertices))
        probs = np.stack(probs)
        if probs.shape[1] != split.num_vertices:
            raise ValueError(f"the model predicts on {probs.shape[1]} vertices, DAMON labels have "
                             f"{split.num_vertices} (use the matching body model)")
        for name, p in zip(names, probs, strict=False):
            sem_pred.append(p)
            sem_gt.append(split.object_contact(i, name))
            sem_labels.append(name)
            sem_image.append(i)
        if split.has_contact[i]:
            bin_pred.append((probs >= 0.5).any(axis=0).astype(np.float32))
            bin_gt.append(split.contact[i])
    out: dict = {"num_images": len(bin_pred), "num_pairs": len(sem_pred), "intervals": interval_note("image")}
    if bin_pred:
        bin_pred, bin_gt = np.stack(bin_pred), np.stack(bin_gt)
        b = binary_contact_metrics(bin_pred, bin_gt, geodesic=geodesic)
        out.update({"human_f1": b["f1"], "human_f1_ci": rounded_ci(contact_scores(bin_pred, bin_gt).f1),
                    "human_precision": b["precision"], "human_recall": b["recall"]})
        if geodesic is not None:
            out["human_geodesic_fp_cm"] = b["geodesic_fp_cm"]
            out["human_geodesic_fn_cm"] = b["geodesic_fn_cm"]
    if sem_pred:
        sem_pred, sem_gt = np.stack(sem_pred), np.stack(sem_gt)
        s = semantic_contact_metrics(sem_pred, sem_gt, sem_labels)
        # count-weighted class means = the mean over (image, object) rows; an image's rows are drawn together
        out.update({"semantic_f1": s["f1"], "semantic_f1_ci": rounded_ci(contact_scores(sem_pred, sem_gt).f1,
                                                                         sem_image),
                    "semantic_precision": s["precision"], "semantic_recall": s["recall"],
                    "semantic_per_class": {k: round(v["f1"], 4) for k, v in s["per_class"].items()}})
    return out


def score_damon_predictions(split: DamonSplit, predictions: np.ndarray, geodesic: MeshGeodesic | None = None) -> dict:
    """DECO binary metrics of precomputed per-vertex predictions ``[S, N]`` aligned with the split's images
    (images without a 3D label skipped)."""
    predictions = np.asarray(predictions, dtype=np.float64)
    if predictions.shape != split.contact.shape:
        raise ValueError(f"predictions {predictions.shape} do not match the split's labels {split.contact.shape}")
    keep = split.has_contact
    b = binary_contact_metrics(predictions[keep], split.contact[keep], geodesic=geodesic)
    out = {"human_f1": b["f1"], "human_f1_ci": rounded_ci(contact_scores(predictions[keep], split.contact[keep]).f1),
           "human_precision": b["precision"], "human_recall": b["recall"], "num_images": int(keep.sum()),
           "intervals": interval_note("image")}
    if geodesic is not None:
        out["human_geodesic_fp_cm"] = b["geodesic_fp_cm"]
        out["human_geodesic_fn_cm"] = b["geodesic_fn_cm"]
    return out


def score_piad_predictions(pairs: list[PiadPair], preds) -> dict:
    """PIAD SIM / MAE / AUC / aIoU of per-point predictions ``[S,N]`` (in ``pairs`` order), overall and per
    object class and per affordance."""
    if len(preds) != len(pairs):
        raise ValueError(f"{len(preds)} predictions for {len(pairs)} PIAD samples")
    gt = np.stack([p.target for p in pairs]).astype(np.float32)
    pred = np.asarray(np.stack([np.asarray(x, np.float32) for x in preds]))
    if pred.shape != gt.shape:
        raise ValueError(f"predictions are {pred.shape}, the paired point clouds need {gt.shape}")
    by_object = affordance_metrics(pred, gt, [p.object_class for p in pairs])
    by_affordance = affordance_metrics(pred, gt, [p.affordance for p in pairs])["per_class"]
    return {"piad_sim": by_object["sim"], "piad_mae": by_object["mae"], "piad_auc": by_object["auc"],
            "piad_aiou": by_object["aiou"], "num_samples": len(pairs),
            "per_object": by_object["per_class"], "per_affordance": by_affordance}


def evaluate_piad(predictor, pairs: list[PiadPair], progress: bool = True, limit: int | None = None) -> dict:
    """Run ``predictor`` (object mode, the affordance question) on each PIAD image against its point cloud."""
    from PIL import Image

    pairs = pairs[:limit] if limit is not None else pairs
    preds = []
    for pair in tqdm(pairs, desc="eval piad", unit="sample", disable=not progress):
        with Image.open(pair.image) as im:
            rgb = np.asarray(im.convert("RGB"))
        c = predictor.predict_points(rgb, pair.points.points, pair.object_class).contacts[0]
        n = len(pair.points.points)
        preds.append(c.object_probs if c.found and c.object_probs is not None else np.zeros(n, np.float32))
    return score_piad_predictions(pairs, preds)
