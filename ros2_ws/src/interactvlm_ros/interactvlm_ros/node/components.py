"""Config → what the node runs: the contact predictor, the body topology and the object mesh library."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from interactvlm_ros.node.core import ContactNode
from interactvlm_ros.pipeline.result import MeshTopology

LOG = logging.getLogger("interactvlm.node")


@dataclass
class NodeComponents:
    """The heavy parts, loaded once (lifecycle *configure*) and freed on *cleanup*."""

    predictor: Any
    body: MeshTopology
    library: Any
    backend: str
    load_s: float

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> NodeComponents:
        """Load the model (``ContactPredictor.from_config``, or a Triton client: ``serving.factory``), the body
        model's canonical mesh and the library."""
        from interactvlm_ros.body import load_body_model
        from interactvlm_ros.objects import ObjectLibrary
        from interactvlm_ros.serving.factory import load_predictor

        t0 = time.monotonic()
        predictor = load_predictor(cfg)  # a Triton client when inference.backend is triton
        body_model = getattr(predictor, "body_model", None) or load_body_model(cfg)
        body = body_topology(body_model)
        library = ObjectLibrary.from_config(cfg)
        backend = str(getattr(predictor, "backend_name", cfg.inference.backend))
        load_s = time.monotonic() - t0
        LOG.info("loaded model %s (%s backend), body %s (%d vertices) in %.1f s", cfg.model.name, backend,
                 body.name, body.num_vertices, load_s)
        return cls(predictor, body, library, backend, load_s)

    def build_node(self, cfg: Mapping[str, Any], sink, warn=None, predictor=None) -> ContactNode:
        """The :class:`~interactvlm_ros.node.core.ContactNode` over these components, publishing to ``sink``
        (``predictor`` replaces the loaded one: tests inject faults through it)."""
        return ContactNode(cfg, predictor or self.predictor, self.body, sink, self.library, warn=warn,
                           backend=self.backend)


def body_topology(body_model) -> MeshTopology:
    """The body model's canonical mesh as a :class:`MeshTopology` with ``mesh_id = "<name>:<topology hash>"``."""
    vertices = np.asarray(body_model.canonical_vertices(), dtype=np.float32)
    faces = np.asarray(body_model.faces, dtype=np.int64)
    return MeshTopology(f"{body_model.name}:{body_model.topology_hash}", "body", body_model.name, vertices, faces)
