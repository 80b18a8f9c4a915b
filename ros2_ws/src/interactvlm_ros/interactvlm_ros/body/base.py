"""The body-model interface every topology implements (batched, differentiable torch; metres, y up, z forward)."""

from __future__ import annotations

import abc
import hashlib
from dataclasses import dataclass

import numpy as np
import torch

# The method's canonical "star" (vitruvian) pose: T-pose arms, each hip rotated 30° about the forward axis.
STAR_HIP_DEG = 30.0


@dataclass
class BodyOutput:
    """``vertices [B,N,3]`` and ``joints [B,J,3]`` in metres (y up, z forward, the body's left at +x)."""

    vertices: torch.Tensor
    joints: torch.Tensor


def body_part_groups(joint_to_part: dict[str, str], dominant_joint: np.ndarray,
                     joint_names: list[str]) -> dict[str, np.ndarray]:
    """Named parts → sorted vertex ids, assigning each vertex to the part of its dominant skinning joint.

    Also adds the unions ``left arm`` / ``right arm`` (upper arm + forearm + hand), ``left leg`` /
    ``right leg`` (thigh + lower leg + foot), ``arms``, ``legs``, ``hands``, ``feet``.
    """
    part_of_joint = np.array([joint_to_part.get(n, "") for n in joint_names], dtype=object)
    labels = part_of_joint[dominant_joint]
    parts = {name: np.sort(np.nonzero(labels == name)[0]).astype(np.int64)
             for name in sorted(set(joint_to_part.values()))}
    unions = {
        "left arm": ("left upper arm", "left forearm", "left hand"),
        "right arm": ("right upper arm", "right forearm", "right hand"),
        "left leg": ("left thigh", "left lower leg", "left foot"),
        "right leg": ("right thigh", "right lower leg", "right foot"),
        "arms": ("left upper arm", "left forearm", "left hand", "right upper arm", "right forearm", "right hand"),
        "legs": ("left thigh", "left lower leg", "left foot", "right thigh", "right lower leg", "right foot"),
        "hands": ("left hand", "right hand"),
        "feet": ("left foot", "right foot"),
    }
    for name, members in unions.items():
        parts[name] = np.sort(np.concatenate([parts.get(m, np.zeros(0, np.int64)) for m in members]))
    return parts


class BodyModel(torch.nn.Module, abc.ABC):
    """A parametric body: ``forward(pose, shape, global_orient, transl) -> BodyOutput``.

    Attributes: ``name`` (topology name), ``num_vertices``, ``faces`` (int64 ``[F,3]``), ``faces_tensor``,
    ``joint_names``, ``pose_dim``, ``shape_dim``, ``topology_hash``.
    """

    name: str
    pose_dim: int
    shape_dim: int
    joint_names: list[str]

    def __init__(self) -> None:
        super().__init__()
        self._canonical: np.ndarray | None = None
        self._hash: str | None = None

    # -- topology ------------------------------------------------------------------------------------------
    @property
    @abc.abstractmethod
    def faces(self) -> np.ndarray:
        """int64 ``[F,3]`` triangle vertex ids."""

    @property
    def faces_tensor(self) -> torch.Tensor:
        return torch.as_tensor(self.faces, dtype=torch.int64)

    @property
    @abc.abstractmethod
    def num_vertices(self) -> int:
        """N."""

    @property
    def topology_hash(self) -> str:
        """Stable 16-hex hash of the faces and the canonical vertices (rounded to 10 µm)."""
        if self._hash is None:
            h = hashlib.sha256()
            h.update(self.name.encode())
            h.update(np.ascontiguousarray(self.faces, dtype=np.int64).tobytes())
            h.update(np.round(self.canonical_vertices().astype(np.float64) * 1e5).astype(np.int64).tobytes())
            self._hash = h.hexdigest()[:16]
        return self._hash

    # -- parameters ----------------------------------------------------------------------------------------
    @property
    def param_dtype(self) -> torch.dtype:
        return torch.float32

    @property
    def param_device(self) -> torch.device:
        for t in self.buffers():
            return t.device
        return torch.device("cpu")

    def zero_params(self, batch: int = 1) -> dict[str, torch.Tensor]:
        """Zero tensors accepted by ``forward``: pose ``[B,pose_dim]``, shape ``[B,shape_dim]``,
        global_orient ``[B,3]`` (axis-angle), transl ``[B,3]``."""
        kw = {"dtype": self.param_dtype, "device": self.param_device}
        return {"pose": torch.zeros(batch, self.pose_dim, **kw), "shape": torch.zeros(batch, self.shape_dim, **kw),
                "global_orient": torch.zeros(batch, 3, **kw), "transl": torch.zeros(batch, 3, **kw)}

    def _params(self, pose, shape, global_orient, transl) -> dict[str, torch.Tensor]:
        given = {"pose": pose, "shape": shape, "global_orient": global_orient, "transl": transl}
        batch = max((t.shape[0] for t in given.values() if t is not None), default=1)
        zero = self.zero_params(batch)
        dims = {"pose": self.pose_dim, "shape": self.shape_dim, "global_orient": 3, "transl": 3}
        out = {}
        for key, value in given.items():
            if value is None:
                out[key] = zero[key]
                continue
            value = torch.as_tensor(value, dtype=self.param_dtype, device=self.param_device)
            if value.ndim == 1:
                value = value[None]
            if value.ndim != 2 or value.shape[1] != dims[key]:
                raise ValueError(f"{self.name}: {key} must be [B,{dims[key]}], got {tuple(value.shape)}")
            if value.shape[0] != batch:
                if value.shape[0] != 1:
                    raise ValueError(f"{self.name}: batch sizes differ ({key} has {value.shape[0]}, expected "
                                     f"{batch} or 1)")
                value = value.expand(batch, -1)
            out[key] = value
        return out

    @abc.abstractmethod
    def forward(self, pose=None, shape=None, global_orient=None, transl=None) -> BodyOutput:
        """Posed vertices and joints for a batch of parameters (see ``zero_params`` for the sizes)."""

    @abc.abstractmethod
    def star_pose_params(self) -> dict[str, torch.Tensor]:
        """Batch-1 parameters of the method's canonical star pose (zero shape, no global rotation)."""

    def canonical_vertices(self) -> np.ndarray:
        """Star-pose vertices, float32 ``[N,3]`` (no global rotation or translation)."""
        if self._canonical is None:
            with torch.no_grad():
                out = self.forward(**self.star_pose_params())
            self._canonical = out.vertices[0].detach().cpu().numpy().astype(np.float32)
        return self._canonical

    @abc.abstractmethod
    def part_vertex_ids(self) -> dict[str, np.ndarray]:
        """Named body parts ("head", "torso", "hips", "left hand", "right foot", "left arm", ...) → vertex ids."""

    def describe(self) -> str:
        f = self.faces
        return f"{self.name}: {self.num_vertices} vertices, {len(f)} faces, {len(self.joint_names)} joints"
