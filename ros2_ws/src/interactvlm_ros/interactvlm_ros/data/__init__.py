"""Synthetic human–object interaction data: posed Anny bodies touching object-library meshes, rendered images,
per-vertex contact labels on both meshes and the canonical-view training masks; the dataset reader."""

from interactvlm_ros.data.dataset import DatasetError, SyntheticDataset
from interactvlm_ros.data.synthesize import SynthConfig, SyntheticGenerator

__all__ = ["DatasetError", "SynthConfig", "SyntheticDataset", "SyntheticGenerator"]
