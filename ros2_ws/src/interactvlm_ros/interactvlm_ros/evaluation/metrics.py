"""Contact and affordance metrics exactly as the benchmarks define them.

Human/object contact (DECO ``precision_recall_f1score``): per sample, a vertex is predicted in contact when
``p >= 0.5`` and is GT contact when ``g > 0``; ``P = TP/#pred``, ``R = TP/#gt``, ``F1 = 2PR/(P+R)`` with DECO's edge
cases, checked in this order: no prediction → P=1, R=0, F1=0; no GT → P=0, R=1, F1=0; ``P+R <= 1e-10`` → all 0.
Reported numbers are means over samples. Semantic contact: per object class the mean of per-sample scores,
overall = class means weighted by the class's sample count.

Affordance (PIAD / IAGNet ``evalization.py``): per sample over its points, ``SIM = Σ min(p/(Σp+ε), g/(Σg+ε))``
(ε = 1e-12), ``MAE = Σ|p-g| / n_points``, GT binarised at ``g >= 0.5``, ``AUC`` = ROC AUC of the binarised GT
against ``p`` (rank statistic, ties averaged — sklearn's ``roc_auc_score``), ``aIoU`` = mean over
``t ∈ linspace(0, 1, 20)`` of ``IoU(p >= t, gt)``. Samples whose binarised GT is all 0 (or all 1, where AUC is
undefined) are excluded from the AUC and aIoU means.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

CONTACT_THRESHOLD = 0.5
AIOU_THRESHOLDS = np.linspace(0.0, 1.0, 20)
SIM_EPS = 1e-12


def _as_2d(values, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be [N] or [S,N] per-vertex values, got shape {arr.shape}")
    return arr


def _check_pair(pred: np.ndarray, gt: np.ndarray) -> None:
    if pred.shape != gt.shape:
        raise ValueError(f"predictions {pred.shape} and ground truth {gt.shape} differ in shape "
                         "(same samples × same vertices expected)")
    if not np.all(np.isfinite(pred)):
        raise ValueError("predictions contain NaN or inf")


@dataclass
class ContactScores:
    """Per-sample contact scores, arrays ``[S]``: precision, recall, f1 and the counts behind them."""

    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    true_positives: np.ndarray
    num_predicted: np.ndarray
    num_gt: np.ndarray

    def means(self) -> dict[str, float]:
        """Sample means (DECO's reported numbers); zeros for an empty set."""
        if len(self.f1) == 0:
            return {"precision": 0.0, "recall": 0.0, "f1": 0.0}
        return {"precision": float(self.precision.mean()), "recall": float(self.recall.mean()),
                "f1": float(self.f1.mean())}


def contact_scores(pred, gt, threshold: float = CONTACT_THRESHOLD) -> ContactScores:
    """DECO per-sample precision/recall/F1. ``pred`` probabilities and ``gt`` labels, ``[N]`` or ``[S,N]``."""
    pred, gt = _as_2d(pred, "pred"), _as_2d(gt, "gt")
    _check_pair(pred, gt)
    pred_on = pred >= threshold
    gt_on = gt > 0
    tp = (pred_on & gt_on).sum(axis=1).astype(np.float64)
    n_pred = pred_on.sum(axis=1).astype(np.float64)
    n_gt = gt_on.sum(axis=1).astype(np.float64)
    precision = np.zeros(len(tp))
    recall = np.zeros(len(tp))
    f1 = np.zeros(len(tp))
    for i in range(len(tp)):
        if n_pred[i] == 0:  # no prediction
            precision[i], recall[i], f1[i] = 1.0, 0.0, 0.0
        elif n_gt[i] == 0:  # no ground truth
            precision[i], recall[i], f1[i] = 0.0, 1.0, 0.0
        else:
            p, r = tp[i] / n_pred[i], tp[i] / n_gt[i]
            if p + r <= 1e-10:
                precision[i], recall[i], f1[i] = 0.0, 0.0, 0.0
            else:
                precision[i], recall[i], f1[i] = p, r, 2.0 * p * r / (p + r)
    return ContactScores(precision, recall, f1, tp, n_pred, n_gt)


def binary_contact_metrics(pred, gt, threshold: float = CONTACT_THRESHOLD, geodesic=None) -> dict:
    """Binary contact over a set of samples: mean P/R/F1 and, when ``geodesic`` (a :class:`MeshGeodesic`) is given,
    the DECO geodesic errors in cm (``geodesic_fp_cm`` = the reported "Geo", ``geodesic_fn_cm``)."""
    pred, gt = _as_2d(pred, "pred"), _as_2d(gt, "gt")
    scores = contact_scores(pred, gt, threshold)
    out = scores.means()
    out["num_samples"] = int(len(scores.f1))
    if geodesic is not None:
        fp, fn = geodesic.errors(pred >= threshold, gt > 0)
        out["geodesic_fp_cm"] = float(fp.mean()) if len(fp) else 0.0
        out["geodesic_fn_cm"] = float(fn.mean()) if len(fn) else 0.0
    return out


def semantic_contact_metrics(pred, gt, labels: Sequence[str], threshold: float = CONTACT_THRESHOLD,
                             categories: dict[str, str] | None = None) -> dict:
    """Semantic (object-wise) contact: one row per (image, object) pair with its object ``labels [S]``.

    Returns ``f1``/``precision``/``recall`` = per-class sample means weighted by class counts, ``per_class``
    ``{label: {count, f1, precision, recall}}`` and, with ``categories`` (label → category), ``per_category``
    (count-weighted too).
    """
    pred, gt = _as_2d(pred, "pred"), _as_2d(gt, "gt")
    labels = [str(x) for x in labels]
    if len(labels) != len(pred):
        raise ValueError(f"{len(labels)} labels for {len(pred)} samples")
    scores = contact_scores(pred, gt, threshold)
    per_class: dict[str, dict] = {}
    for label in sorted(set(labels)):
        idx = np.array([i for i, x in enumerate(labels) if x == label])
        per_class[label] = {"count": int(len(idx)), "f1": float(scores.f1[idx].mean()),
                            "precision": float(scores.precision[idx].mean()),
                            "recall": float(scores.recall[idx].mean())}
    out = _weighted(per_class)
    out["num_samples"] = int(len(labels))
    out["per_class"] = per_class
    if categories is not None:
        grouped: dict[str, dict[str, dict]] = {}
        for label, row in per_class.items():
            grouped.setdefault(categories.get(label, "other"), {})[label] = row
        out["per_category"] = {cat: {**_weighted(rows), "count": sum(r["count"] for r in rows.values())}
                               for cat, rows in sorted(grouped.items())}
    return out


def _weighted(rows: dict[str, dict]) -> dict[str, float]:
    total = sum(r["count"] for r in rows.values())
    if total == 0:
        return {"f1": 0.0, "precision": 0.0, "recall": 0.0}
    return {key: float(sum(r[key] * r["count"] for r in rows.values()) / total)
            for key in ("f1", "precision", "recall")}


# --- PIAD affordance -------------------------------------------------------------------------------------------


def sim(pred, gt) -> float:
    """Histogram intersection of the sum-normalised maps (IAGNet ``SIM``), one sample ``[N]``."""
    p = np.asarray(pred, dtype=np.float64).ravel()
    g = np.asarray(gt, dtype=np.float64).ravel()
    p = p / (p.sum() + SIM_EPS)
    g = g / (g.sum() + SIM_EPS)
    return float(np.minimum(p, g).sum())


def mae(pred, gt) -> float:
    """Mean absolute error per point, one sample ``[N]``."""
    p = np.asarray(pred, dtype=np.float64).ravel()
    g = np.asarray(gt, dtype=np.float64).ravel()
    return float(np.abs(p - g).sum() / len(p))


def roc_auc(labels, scores) -> float:
    """Area under the ROC curve of binary ``labels [N]`` against ``scores [N]`` (Mann–Whitney U with average
    ranks for ties — identical to ``sklearn.metrics.roc_auc_score``). Raises if only one class is present."""
    y = np.asarray(labels).ravel().astype(bool)
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"labels {y.shape} and scores {s.shape} differ in shape")
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("ROC AUC is undefined when only one class is present in the labels")
    ranks = rankdata(s, method="average")
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def aiou(pred, gt_binary) -> float:
    """Mean IoU of ``pred >= t`` and the binary GT over the 20 thresholds ``linspace(0, 1, 20)``."""
    p = np.asarray(pred, dtype=np.float64).ravel()
    g = np.asarray(gt_binary).ravel().astype(bool)
    ious = []
    for t in AIOU_THRESHOLDS:
        m = p >= t
        union = np.sum(m | g)
        ious.append(np.sum(m & g) / union if union > 0 else np.nan)
    return float(np.mean(ious))


def affordance_metrics(pred, gt, labels: Sequence[str] | None = None) -> dict:
    """PIAD metrics over samples: ``pred``/``gt`` ``[S,N]`` in [0,1]. Means of SIM, MAE (all samples), AUC, aIoU
    (samples with both classes in the binarised GT); ``per_class`` breakdown when ``labels [S]`` are given."""
    pred, gt = _as_2d(pred, "pred"), _as_2d(gt, "gt")
    _check_pair(pred, gt)
    n = len(pred)
    sims = np.array([sim(pred[i], gt[i]) for i in range(n)])
    maes = np.array([mae(pred[i], gt[i]) for i in range(n)])
    aucs = np.full(n, np.nan)
    ious = np.full(n, np.nan)
    for i in range(n):
        g = gt[i] >= 0.5
        if 0 < g.sum() < len(g):
            aucs[i] = roc_auc(g, pred[i])
            ious[i] = aiou(pred[i], g)

    def summary(idx: np.ndarray) -> dict:
        ok = idx[~np.isnan(aucs[idx])]
        return {"sim": float(sims[idx].mean()) if len(idx) else 0.0,
                "mae": float(maes[idx].mean()) if len(idx) else 0.0,
                "auc": float(aucs[ok].mean()) if len(ok) else float("nan"),
                "aiou": float(ious[ok].mean()) if len(ok) else float("nan"),
                "count": int(len(idx)), "count_auc": int(len(ok))}

    out = summary(np.arange(n))
    out["num_samples"] = n
    if labels is not None:
        labels = [str(x) for x in labels]
        if len(labels) != n:
            raise ValueError(f"{len(labels)} labels for {n} samples")
        out["per_class"] = {lab: summary(np.array([i for i, x in enumerate(labels) if x == lab]))
                            for lab in sorted(set(labels))}
    return out
