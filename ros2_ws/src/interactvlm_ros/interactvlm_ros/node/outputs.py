"""What one processed frame produces, before any transport turns it into messages (no ROS types here)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from interactvlm_ros.pipeline.result import ContactResult


@dataclass(frozen=True)
class FrameHeader:
    """The source image's header: acquisition stamp (ns since the epoch) and its camera optical frame."""

    stamp_ns: int
    frame_id: str

    @property
    def stamp_s(self) -> float:
        return self.stamp_ns * 1e-9


@dataclass
class PlacedMesh:
    """A mesh drawn in the image's optical frame: ``points`` ``[N,3]`` float32 metres, ``probs`` ``[N]`` in [0,1].

    ``label`` is the body model or object name; ``faces`` ``[F,3]`` for the RViz triangle-list marker.
    """

    label: str
    mesh_id: str
    points: np.ndarray
    faces: np.ndarray
    probs: np.ndarray


@dataclass
class BodyFrame:
    """A REP-155 ``body_<id>`` frame in the image's frame: ``translation [3]`` metres, ``rotation [4]`` x, y, z, w."""

    body_id: str
    translation: np.ndarray
    rotation: np.ndarray


@dataclass
class FrameOutputs:
    """Everything published for one image. ``placement`` says how ``human``/``objects`` were posed:
    ``"fixed"`` = the documented stand-in pose of :mod:`interactvlm_ros.node.placement`; ``"reconstructed"`` =
    the camera-frame reconstruction (:mod:`interactvlm_ros.recon`), which also gives ``body_id`` (REP-155 id
    of the person the contacts belong to), ``body_points [Nb,3]`` (the posed body, for the contact points),
    ``object_points`` (query label -> posed object vertices ``[No,3]``) and ``body_frames`` (one per person)."""

    header: FrameHeader
    result: ContactResult
    threshold: float
    body_mesh_id: str
    human: PlacedMesh | None
    objects: list[PlacedMesh] = field(default_factory=list)
    object_vertex_counts: dict[str, int] = field(default_factory=dict)
    with_markers: bool = False
    with_clouds: bool = True
    placement: str = "fixed"
    body_id: str = ""
    body_points: np.ndarray | None = None
    object_points: dict[str, np.ndarray] = field(default_factory=dict)
    body_frames: list[BodyFrame] = field(default_factory=list)


@dataclass
class DiagnosticsReport:
    """One diagnostic status: ``level`` 0 OK, 1 WARN, 2 ERROR; ``values`` are shown as key/value strings."""

    name: str
    level: int
    message: str
    hardware_id: str
    values: dict[str, str]
    stamp_ns: int
