"""``ContactResult``: the one thing the node, the CLI and evaluation consume from the model.

Shapes: ``Nb`` = vertices of the body topology (``body_model``), ``No`` = vertices of the object mesh,
``V`` = number of rendered views (4), ``H×W`` = mask resolution.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class ObjectContact:
    """Contact for one queried object name in one image.

    Attributes:
        label: the object name as put into the prompt (sanitised: special tokens and markup removed).
        text: the decoded VLM answer.
        found: whether the answer contained the contact token; when False, probabilities are None and
            ``reason`` says why.
        human_probs: ``[Nb]`` float32 per-vertex contact probability on the body topology, or None.
        object_probs: ``[No]`` float32 per-vertex contact probability on the object mesh, or None.
        object_mesh_id: id of the object mesh ``object_probs`` refers to ("" when none).
        view_masks: ``[V, H, W]`` float32 probabilities of the rendered views (or ``[1, H, W]`` for the 2D
            image mode), or None.
        reason: empty when found as the model answered, else a short explanation (also set on a found contact the
            person gate changed or could not check).
        query: the object name exactly as asked (``label`` is its sanitised form, or the name the model knows it
            by); "" = same as ``label``.
        name_match: how ``query`` became ``label`` (``model.object_names``): ``known``, ``synonym``, ``head noun``,
            ``open vocabulary``, ``unknown`` (not asked: the model was not trained on it; ``reason`` lists what it
            knows), or "" when not recorded.
        person_confidence: the person evidence of the frame (``contact.person_gate``,
            :mod:`interactvlm_ros.pipeline.person_gate`) in [0, 1], or None when no gate checked it.
    """

    label: str
    text: str = ""
    found: bool = True
    human_probs: np.ndarray | None = None
    object_probs: np.ndarray | None = None
    object_mesh_id: str = ""
    view_masks: np.ndarray | None = None
    reason: str = ""
    query: str = ""
    name_match: str = ""
    person_confidence: float | None = None

    @property
    def asked(self) -> str:
        """The object name as the user asked for it."""
        return self.query or self.label


@dataclass
class ContactResult:
    """Contacts for every queried object in one image, plus what produced them.

    Attributes:
        body_model: topology name of ``human_probs`` (e.g. "anny", "smplx", "smplh").
        num_body_vertices: ``Nb``.
        contacts: one :class:`ObjectContact` per queried object, in query order.
        timings_ms: per-stage wall time in milliseconds (e.g. "vision", "llm", "mvloc", "lift").
    """

    body_model: str
    num_body_vertices: int
    contacts: list[ObjectContact] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def total_ms(self) -> float:
        return float(sum(self.timings_ms.values()))


@dataclass(frozen=True)
class MeshTopology:
    """A mesh that per-vertex contact indices refer to (published once, latched).

    ``vertices`` ``[N,3]`` float32 canonical positions (metres, y up), ``faces`` ``[F,3]`` int64.
    """

    mesh_id: str
    kind: str  # "body" or "object"
    name: str
    vertices: np.ndarray
    faces: np.ndarray

    @property
    def num_vertices(self) -> int:
        return int(len(self.vertices))
