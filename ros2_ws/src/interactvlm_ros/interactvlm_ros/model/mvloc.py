"""MV-Loc: contact token -> Γ -> FeatLift (camera-gated per-view tokens) -> SAM mask decoder over V renders.

The method (InteractVLM §3, reference §1.3-1.5): the VLM's contact-token hidden state is projected to 256-d by
Γ (``text_hidden_fcs``), copied once per view and gated by a camera MLP (FeatLift, ``cam_pose_encoder``):
``E3D[v] = E * sigmoid(W_v · mlp(cam_v) + b_v)``. The V gated tokens of one contact token form ONE sparse
prompt set that is broadcast against each of the V render embeddings, so every view's decoder pass sees all
V camera-gated tokens (the views differ by their image embedding). Output: one mask logit map per view.

Everything here is batched over K contact tokens (several objects at once) by broadcasting, without Python
loops over K; K is the only dynamic axis (ONNX export). Key names: ``ContactProjection`` is the ModuleList
stored as ``model.text_hidden_fcs``; ``FeatLift`` is the top-level ``cam_pose_encoder``.
"""

from __future__ import annotations

import torch
from torch import nn

from .sam import Sam
from .sam.common import is_tracing
from .sam.mask_decoder import MaskDecoder
from .sam.prompt_encoder import PromptEncoder
from .sam.sam import postprocess_masks

CAM_PARAM_DIM = 5  # [dist/10, elev/360, azim/360, (x+1)/2, (y+1)/2]


class ContactProjection(nn.ModuleList):
    """Γ: LLM hidden state ``[..., hidden]`` -> contact embedding ``[..., out_dim]``.

    A ModuleList holding one ``Sequential(Linear(h, h), ReLU, Linear(h, out), Dropout)`` so that, assigned as
    ``model.text_hidden_fcs``, its keys are ``text_hidden_fcs.0.0.{weight,bias}`` and ``text_hidden_fcs.0.2.*``.
    """

    def __init__(self, hidden_size: int, out_dim: int = 256, dropout: float = 0.0) -> None:
        super().__init__([nn.Sequential(nn.Linear(hidden_size, hidden_size), nn.ReLU(inplace=True),
                                        nn.Linear(hidden_size, out_dim), nn.Dropout(dropout))])
        self.hidden_size = hidden_size
        self.out_dim = out_dim

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        if hidden_states.shape[-1] != self.hidden_size:
            raise ValueError(f"contact hidden states must be [..., {self.hidden_size}]; "
                             f"got {list(hidden_states.shape)}")
        return self[0](hidden_states.to(self[0][0].weight.dtype))


class FeatLift(nn.Module):
    """Φ (InteractVLM's ``VIv1CamPoseEncoder``): per-view multiplicative gates from camera parameters.

    ``spatial_encoder`` = ``Sequential(Linear(5, 128), ReLU, Linear(128, 128), ReLU)`` shared by the views;
    ``view_transforms[v]`` = ``Linear(128, out_dim)`` for view index v. Gate ``g_v = sigmoid(W_v · mlp(cam_v) + b_v)``.
    """

    def __init__(self, num_views: int = 4, cam_dim: int = CAM_PARAM_DIM, hidden_dim: int = 128,
                 out_dim: int = 256) -> None:
        super().__init__()
        self.num_views = num_views
        self.cam_dim = cam_dim
        self.out_dim = out_dim
        self.spatial_encoder = nn.Sequential(nn.Linear(cam_dim, hidden_dim), nn.ReLU(),
                                             nn.Linear(hidden_dim, hidden_dim), nn.ReLU())
        self.view_transforms = nn.ModuleList(nn.Linear(hidden_dim, out_dim) for _ in range(num_views))

    def _check_cams(self, cam_params: torch.Tensor) -> None:
        if cam_params.dim() not in (2, 3) or tuple(cam_params.shape[-2:]) != (self.num_views, self.cam_dim):
            raise ValueError(f"cam_params must be [{self.num_views}, {self.cam_dim}] (or [K, {self.num_views}, "
                             f"{self.cam_dim}]); got {list(cam_params.shape)}")

    def gates(self, cam_params: torch.Tensor) -> torch.Tensor:
        """Camera parameters ``[..., V, 5]`` -> gates in (0, 1) ``[..., V, out_dim]``."""
        if not is_tracing():
            self._check_cams(cam_params)
        feats = self.spatial_encoder(cam_params.to(self.view_transforms[0].weight.dtype))  # [..., V, 128]
        logits = torch.stack([lin(feats[..., v, :]) for v, lin in enumerate(self.view_transforms)], dim=-2)
        return torch.sigmoid(logits)

    def forward(self, embeds: torch.Tensor, cam_params: torch.Tensor) -> torch.Tensor:
        """Contact embeddings ``[K, C]`` and cameras ``[V, 5]`` (or ``[K, V, 5]``) -> gated tokens ``[K, V, C]``."""
        if not is_tracing() and (embeds.dim() != 2 or embeds.shape[-1] != self.out_dim):
            raise ValueError(f"contact embeddings must be [K, {self.out_dim}]; got {list(embeds.shape)}")
        gates = self.gates(cam_params)
        return embeds[:, None, :].to(gates.dtype) * gates


class AttentionSplitter(nn.Module):
    """The joint model's (``Gen-Hu-Obj``) splitter, top-level ``attention_splitter`` (InteractVLM
    ``model/components.py`` ``AttentionSplitter``, 12 keys): the V camera-gated tokens of one contact token attend
    to each other with a human and an object query and a shared key/value, and each result is projected back::

        x = input_proj(tokens)                     [..., V, 128]
        A_h = softmax(query_human(x) · key(x)^T / sqrt(128))   (over the V tokens; likewise A_o)
        human = output_proj(A_h · value(x)),  object = output_proj(A_o · value(x))     [..., V, 256]

    The reference applies it after FeatLift: ``[HSEG]`` takes ``human``, ``[OSEG]`` takes ``object``, a plain
    ``[SEG]`` is left as it is.
    """

    def __init__(self, input_dim: int = 256, hidden_dim: int = 128) -> None:
        super().__init__()
        self.input_proj = nn.Linear(input_dim, hidden_dim)
        self.query_human = nn.Linear(hidden_dim, hidden_dim)
        self.query_object = nn.Linear(hidden_dim, hidden_dim)
        self.key = nn.Linear(hidden_dim, hidden_dim)
        self.value = nn.Linear(hidden_dim, hidden_dim)
        self.output_proj = nn.Linear(hidden_dim, input_dim)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Gated tokens ``[..., V, C]`` -> (human tokens, object tokens), each ``[..., V, C]``."""
        x = self.input_proj(tokens)
        k, v = self.key(x), self.value(x)
        scale = k.size(-1) ** 0.5
        human = torch.softmax(self.query_human(x) @ k.transpose(-2, -1) / scale, dim=-1) @ v
        obj = torch.softmax(self.query_object(x) @ k.transpose(-2, -1) / scale, dim=-1) @ v
        return self.output_proj(human), self.output_proj(obj)


SPLITTER_BRANCHES = ("human", "object")


class MVLoc(nn.Module):
    """Multi-view localisation: contact embeddings + V render embeddings + V cameras -> per-view mask logits.

    ``forward(contact_embeds [K, C], image_embeddings [V, C, h, w], cam_params [V, 5]) -> logits [K, V, H, W]``
    with ``H = W = mask_size``. ``image_embeddings``/``cam_params`` may also carry a leading K (one render set
    per token). The modules are shared, not copied: build it from the model's own SAM and FeatLift with
    :meth:`from_sam`, and do not register it as a sub-module of the model (that would duplicate state-dict keys).
    """

    def __init__(self, prompt_encoder: PromptEncoder, mask_decoder: MaskDecoder, feat_lift: FeatLift,
                 image_size: int, mask_size: int | None = None, input_size: tuple[int, int] | None = None,
                 splitter: AttentionSplitter | None = None, branch: str | None = None) -> None:
        super().__init__()
        if (splitter is None) != (branch is None) or (branch is not None and branch not in SPLITTER_BRANCHES):
            raise ValueError(f"a joint model's MV-Loc needs its attention_splitter and a branch in "
                             f"{SPLITTER_BRANCHES}; got splitter={splitter is not None}, branch={branch!r}")
        self.splitter = splitter
        self.branch = branch
        if feat_lift.out_dim != prompt_encoder.embed_dim:
            raise ValueError(f"FeatLift out_dim {feat_lift.out_dim} != prompt embedding dim {prompt_encoder.embed_dim}")
        self.prompt_encoder = prompt_encoder
        self.mask_decoder = mask_decoder
        self.feat_lift = feat_lift
        self.image_size = int(image_size)
        self.mask_size = int(mask_size) if mask_size else self.image_size
        self.input_size = tuple(input_size) if input_size else (self.image_size, self.image_size)

    @classmethod
    def from_sam(cls, sam: Sam, feat_lift: FeatLift, mask_size: int | None = None,
                 splitter: AttentionSplitter | None = None, branch: str | None = None) -> MVLoc:
        """MV-Loc sharing ``sam.prompt_encoder``/``sam.mask_decoder`` and ``feat_lift`` (renders are square);
        a joint model also shares its ``attention_splitter`` and takes its ``branch`` ("human" for ``[HSEG]``,
        "object" for ``[OSEG]``) of the split tokens."""
        return cls(sam.prompt_encoder, sam.mask_decoder, feat_lift, sam.image_size, mask_size, splitter=splitter,
                   branch=branch)

    @property
    def embed_dim(self) -> int:
        return self.prompt_encoder.embed_dim

    @property
    def num_views(self) -> int:
        return self.feat_lift.num_views

    def _check(self, contact_embeds: torch.Tensor, image_embeddings: torch.Tensor) -> None:
        c, v = self.embed_dim, self.num_views
        h, w = self.prompt_encoder.image_embedding_size
        if contact_embeds.dim() != 2 or contact_embeds.shape[-1] != c:
            raise ValueError(f"contact_embeds must be [K, {c}]; got {list(contact_embeds.shape)}")
        if image_embeddings.dim() not in (4, 5) or tuple(image_embeddings.shape[-4:]) != (v, c, h, w):
            raise ValueError(f"image_embeddings must be [{v}, {c}, {h}, {w}] (or [K, {v}, {c}, {h}, {w}]); "
                             f"got {list(image_embeddings.shape)}")

    def low_res_logits(self, contact_embeds: torch.Tensor, image_embeddings: torch.Tensor,
                       cam_params: torch.Tensor) -> torch.Tensor:
        """Decoder logits ``[K, V, 4h, 4w]`` (before :func:`postprocess_masks`)."""
        if not is_tracing():
            self._check(contact_embeds, image_embeddings)
        tokens = self.feat_lift(contact_embeds, cam_params)  # [K, V, C]
        if self.splitter is not None:
            tokens = self.split(tokens)
        sparse, _ = self.prompt_encoder(text_embeds=tokens)  # [K, V, C]
        # One prompt set of V tokens per contact token, broadcast over the V view embeddings:
        # sparse [K, 1, V, C] x images [1 or K, V, C, h, w]. Without a mask prompt the dense embedding
        # (no_mask_embed) is the same for every set, so one copy [1, C, h, w] broadcasts.
        images = image_embeddings if image_embeddings.dim() == 5 else image_embeddings[None]
        dense = self.prompt_encoder.no_mask_dense(1).to(sparse.dtype)
        masks, _ = self.mask_decoder(images.to(sparse.dtype), self.prompt_encoder.get_dense_pe().to(sparse.dtype),
                                     sparse[:, None], dense, multimask_output=False)
        return masks[..., 0, :, :]  # [K, V, 4h, 4w]

    def split(self, tokens: torch.Tensor) -> torch.Tensor:
        """The joint model's splitter: this branch's half of ``tokens`` (shape kept)."""
        return self.splitter(tokens)[SPLITTER_BRANCHES.index(self.branch)]

    def upscale(self, low: torch.Tensor, mask_size: int | None = None) -> torch.Tensor:
        """Decoder logits ``[..., 4h, 4w]`` -> masks ``[..., R, R]``, R = ``mask_size`` (default the model's)."""
        r = mask_size or self.mask_size
        return postprocess_masks(low, self.image_size, self.input_size, (r, r))

    def forward(self, contact_embeds: torch.Tensor, image_embeddings: torch.Tensor,
                cam_params: torch.Tensor) -> torch.Tensor:
        """Mask logits ``[K, V, mask_size, mask_size]`` (no sigmoid)."""
        low = self.low_res_logits(contact_embeds, image_embeddings, cam_params)
        return postprocess_masks(low, self.image_size, self.input_size, (self.mask_size, self.mask_size))
