"""Evaluation: DECO/DAMON contact metrics, PIAD affordance metrics, geodesic errors on any body mesh, readers for
the DAMON and PIAD file formats, and the runner behind ``interactvlm eval``."""

from interactvlm_ros.evaluation.geodesic import MeshGeodesic, geodesic_errors
from interactvlm_ros.evaluation.metrics import (
    ContactScores,
    affordance_metrics,
    aiou,
    binary_contact_metrics,
    contact_scores,
    mae,
    roc_auc,
    semantic_contact_metrics,
    sim,
)
from interactvlm_ros.evaluation.readers import (
    DamonSplit,
    PiadPair,
    PiadPointCloud,
    read_damon_npz,
    read_piad_pairs,
    read_piad_points,
)

__all__ = [
    "ContactScores",
    "DamonSplit",
    "MeshGeodesic",
    "PiadPair",
    "PiadPointCloud",
    "affordance_metrics",
    "aiou",
    "binary_contact_metrics",
    "contact_scores",
    "geodesic_errors",
    "mae",
    "read_damon_npz",
    "read_piad_pairs",
    "read_piad_points",
    "roc_auc",
    "semantic_contact_metrics",
    "sim",
]
