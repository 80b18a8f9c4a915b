"""Lift per-view mask logits back onto mesh vertices (or points) through the render's pixel→surface maps.

``mode="soft"`` (the method's current lift, differentiable)::

    p = sigmoid(clamp(logit, -20, 20))                                  for every valid pixel
    num_v[n] += b_n·p,  den_v[n] += b_n                                  per view v, over the face's vertices n
    value_v[n] = num_v[n] / den_v[n]                                     where den_v[n] > 0
    out[n] = clamp(mean over views with den_v[n] > 0 of value_v[n], 0, 1)   (0 where no view sees n)

Everything after the sigmoid is linear in ``p`` with fixed weights ``b_n / (den_v[n]·#views(n))``, so it is
precomputed once as a sparse CSR matrix ``[N, P]`` over the P valid pixels only: a lift is one gather, one
sigmoid on P values and one sparse×dense product; its backward is the product with the stored transpose.

``fill_unseen=True`` (our option, off in the method): a vertex that no view sees (palms, between the legs,
sub-pixel triangles at low render resolution) takes the lifted value of the nearest seen vertex along the mesh
edges. It is a row copy of the same operator, so it costs nothing at run time; with 128 px renders it lets
perfect masks reach a per-vertex F1 of 0.88 instead of 0.34 on Anny.

:meth:`Lifter.lift_above` (the reference's object-mesh lift, ``ObjectMeshContact3DPredictor``, what the official
checkpoints' object contact uses): only pixels with ``p = sigmoid(logit) > 0.3`` vote; per view
``value_v[n] = Σ b_n·p / Σ b_n`` over those pixels; ``out[n]`` = mean of ``value_v[n]`` over the views in which
``n`` got a vote, 0 where no view voted. Unlike the soft lift, low-probability pixels do not pull vertices down
and a vertex no confident pixel reaches stays exactly 0.

``mode="threshold"`` (the original released lift, not differentiable — it was detached there too): pixels with
``logit > 0.3``; ``num[n] += b_n``, ``count[n] += 1`` pooled over views; ``value = num/count``; output binarised
at ``value > 0.3``.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

THRESHOLD_LOGIT = 0.3
THRESHOLD_VALUE = 0.3
OBJECT_PROB_THRESHOLD = 0.3  # ObjectMeshContact3DPredictor(threshold=0.3), on sigmoid probabilities


def _row_order(rows: torch.Tensor, num_rows: int) -> torch.Tensor:
    """Stable permutation sorting ``rows`` (a radix sort through numpy when ids fit in 16 bits)."""
    if num_rows <= 1 << 16:
        return torch.from_numpy(np.argsort(rows.numpy().astype(np.uint16), kind="stable"))
    return torch.argsort(rows, stable=True)


def _csr(rows: torch.Tensor, cols: torch.Tensor, vals: torch.Tensor, shape: tuple[int, int],
         rows_sorted: bool = False) -> torch.Tensor:
    """CSR matrix with int32 indices (measured ~2x faster than int64 for sparse @ dense on the CPU).

    The entries must have ``cols`` increasing within each row once stably ordered by row (true for entries
    generated in pixel order); ``rows_sorted`` says they already are ordered by row.
    """
    if not rows_sorted:
        order = _row_order(rows, shape[0])
        rows, cols, vals = rows[order], cols[order], vals[order]
    crow = torch.zeros(shape[0] + 1, dtype=torch.int64)
    crow[1:] = torch.cumsum(torch.bincount(rows, minlength=shape[0]), 0)
    index_dtype = torch.int32 if max(shape[0], shape[1], len(vals)) < 2**31 - 1 else torch.int64
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Ss]parse.*")
        return torch.sparse_csr_tensor(crow.to(index_dtype), cols.to(index_dtype), vals.contiguous(), shape,
                                       check_invariants=False)


def _spmm(a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``a [R,C]`` sparse CSR times ``x [B,C]`` → ``[B,R]`` (matrix-vector product for B = 1)."""
    if x.shape[0] == 1:
        return (a @ x[0])[None]
    return torch.sparse.mm(a, x.T.contiguous()).T


def nearest_seen(faces: np.ndarray, seen: np.ndarray, vertices=None) -> torch.Tensor:
    """For each vertex, the id of the nearest ``seen`` vertex along mesh edges (itself when seen; itself too
    when its component has no seen vertex). ``faces [F,3]``, ``seen`` bool ``[N]``, ``vertices [N,3]`` or None
    (hop count) → int64 ``[N]``."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import dijkstra

    n = len(seen)
    if not seen.any():
        return torch.arange(n)
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]).astype(np.int64)
    if vertices is None:
        w = np.ones(len(e))
    else:
        v = np.asarray(vertices, dtype=np.float64)
        w = np.linalg.norm(v[e[:, 0]] - v[e[:, 1]], axis=1) + 1e-12  # 0-length edges must stay edges
    graph = sp.coo_matrix((w, (e[:, 0], e[:, 1])), shape=(n, n)).tocsr()
    graph = graph.maximum(graph.T)
    _, _, src = dijkstra(graph, directed=False, indices=np.nonzero(seen)[0], min_only=True,
                         return_predecessors=True)
    src = np.where(seen | (src < 0), np.arange(n), src)
    return torch.from_numpy(src.astype(np.int64))


def _copy_rows(a: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """CSR ``a [R,C]`` → CSR whose row r is row ``source[r]`` of ``a``."""
    crow, col, val = a.crow_indices().to(torch.int64), a.col_indices().to(torch.int64), a.values()
    counts = crow[source + 1] - crow[source]
    starts = torch.repeat_interleave(crow[source], counts)
    offsets = torch.arange(int(counts.sum())) - torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
    take = starts + offsets
    rows = torch.repeat_interleave(torch.arange(len(source)), counts)
    return _csr(rows, col[take], val[take], tuple(a.shape), rows_sorted=True)


def _csr_transpose(a: torch.Tensor) -> torch.Tensor:
    """CSR ``a [R,C]`` → CSR ``a^T [C,R]`` (columns increasing within each row)."""
    crow = a.crow_indices().to(torch.int64)
    rows = torch.repeat_interleave(torch.arange(a.shape[0]), crow[1:] - crow[:-1])
    return _csr(a.col_indices().to(torch.int64), rows, a.values(), (a.shape[1], a.shape[0]))


class _SparseApply(torch.autograd.Function):
    """``out [B,N] = x [B,P] @ A^T`` with ``grad_x = grad_out @ A`` (A and A^T precomputed CSR)."""

    @staticmethod
    def forward(ctx, x, a, a_t):
        ctx.a_t = a_t
        return _spmm(a, x)

    @staticmethod
    def backward(ctx, grad_out):
        return _spmm(ctx.a_t, grad_out.contiguous()), None, None


class Lifter:
    """Precomputed pixel→vertex operator of one multi-view render.

    Args:
        face_ids: int ``[V,H,W]`` face id per pixel (-1 = background).
        bary: float ``[V,H,W,3]`` barycentric weights of the face's three vertices.
        faces: int ``[F,3]`` vertex ids of each face (for point clouds use ``Lifter.for_points``).
        num_vertices: N, the length of the lifted vector.
        mode: ``"soft"`` or ``"threshold"`` (see the module docstring).
        fill_unseen: copy each unseen vertex's value from its nearest seen vertex (see the module docstring).
        vertices: float ``[N,3]``; with ``fill_unseen`` "nearest" is measured along edges of these lengths
            (hop count when omitted).
    """

    def __init__(self, face_ids, bary, faces, num_vertices: int, mode: str = "soft", fill_unseen: bool = False,
                 vertices=None):
        if mode not in ("soft", "threshold"):
            raise ValueError(f"mode must be 'soft' or 'threshold', got {mode!r}")
        fid = torch.as_tensor(np.asarray(face_ids) if not isinstance(face_ids, torch.Tensor) else face_ids)
        fid = fid.to("cpu", torch.int64)
        b = torch.as_tensor(np.asarray(bary) if not isinstance(bary, torch.Tensor) else bary).to("cpu", torch.float32)
        f = torch.as_tensor(np.asarray(faces) if not isinstance(faces, torch.Tensor) else faces).to("cpu", torch.int64)
        if fid.ndim != 3:
            raise ValueError(f"face_ids must be [V,H,W], got shape {tuple(fid.shape)}")
        if tuple(b.shape) != (*fid.shape, 3):
            raise ValueError(f"bary must be [V,H,W,3] = {(*fid.shape, 3)}, got {tuple(b.shape)}")
        if f.ndim != 2 or f.shape[1] != 3:
            raise ValueError(f"faces must be [F,3], got {tuple(f.shape)}")
        if not torch.isfinite(b).all():
            raise ValueError("bary contains non-finite (NaN/inf) weights")
        if fid.numel() and int(fid.max()) >= f.shape[0]:
            raise ValueError(f"face_ids reference face {int(fid.max())} but there are only {f.shape[0]} faces")
        if f.numel() and (int(f.min()) < 0 or int(f.max()) >= num_vertices):
            raise ValueError(f"faces reference vertex ids outside [0, {num_vertices - 1}]")
        self.mode = mode
        self.fill_unseen = bool(fill_unseen)
        self.num_vertices = int(num_vertices)
        self.num_views, self.height, self.width = (int(s) for s in fid.shape)
        flat = fid.reshape(-1)
        self.pixel_index = torch.nonzero(flat >= 0).squeeze(1)  # [P] into V*H*W
        vid = f[flat[self.pixel_index]]  # [P,3]
        w = b.reshape(-1, 3)[self.pixel_index]  # [P,3]
        self._build(vid, w)
        self.source = torch.arange(self.num_vertices)  # [N] the seen vertex each vertex's value comes from
        if self.fill_unseen:
            self.source = nearest_seen(f.numpy(), self.covered.numpy(), vertices)
            self.a = _copy_rows(self.a, self.source)
            if self.mode == "soft":
                self.a_t = _csr_transpose(self.a)
            else:
                self.count = _copy_rows(self.count, self.source)

    @classmethod
    def for_points(cls, point_ids, num_points: int, mode: str = "soft") -> Lifter:
        """Lifter onto points from a point-id map ``[V,H,W]`` (PIAD: per point, mean of the pixel probabilities
        over the pixels it wins in a view; averaged over the views in which it is visible)."""
        pid = torch.as_tensor(np.asarray(point_ids) if not isinstance(point_ids, torch.Tensor) else point_ids)
        pid = pid.to("cpu", torch.int64)
        bary = torch.zeros((*pid.shape, 3))
        bary[..., 0] = 1.0
        faces = torch.arange(num_points, dtype=torch.int64)[:, None].expand(num_points, 3)
        return cls(pid, bary, faces, num_points, mode=mode)

    # -- construction ----------------------------------------------------------------------------------------
    def _build(self, vid: torch.Tensor, w: torch.Tensor) -> None:
        n, hw = self.num_vertices, self.height * self.width
        npix = self.pixel_index.numel()
        vid, perm = vid.sort(dim=1)  # vertex ids increasing within each pixel (CSR column order of a_t)
        w = w.gather(1, perm)
        view = (self.pixel_index // hw).repeat_interleave(3)
        cols = torch.arange(npix).repeat_interleave(3)  # pixel of each entry, nondecreasing
        rows, vw = vid.reshape(-1), w.reshape(-1)
        zero = vw <= 0
        if self.mode == "soft" and bool(zero.float().mean() > 0.1):  # e.g. point maps: (1, 0, 0) weights
            keep = torch.nonzero(~zero).squeeze(1)
            rows, vw, view, cols = (t.index_select(0, keep) for t in (rows, vw, view, cols))
        key = view * n + rows
        den = torch.zeros(self.num_views * n).index_add_(0, key, vw.clamp_min(0.0))
        seen = den.view(self.num_views, n) > 0
        self.views_per_vertex = seen.sum(0)  # [N]
        self.covered = self.views_per_vertex > 0  # [N] vertices that receive weight in at least one view
        if self.mode == "soft":
            # weight b / (den_view[n] · #views(n)); entries with b = 0 stay 0 (no division by a zero den)
            val = vw.clamp_min(0.0) / (den[key] * self.views_per_vertex[rows]).clamp_min(1e-30)
            self.a = _csr(rows, cols, val, (n, npix))
            self.a_t = _csr(cols, rows, val, (npix, n), rows_sorted=True)
        else:
            order = _row_order(rows, n)
            r, c, v = rows[order], cols[order], vw[order]
            self.a = _csr(r, c, v, (n, npix), rows_sorted=True)  # sum of barycentric weights
            self.count = _csr(r, c, torch.ones_like(v), (n, npix), rows_sorted=True)
        # For project(): the three (vertex, weight) pairs per valid pixel.
        self.pixel_vertices, self.pixel_weights = vid, w

    def to(self, device) -> Lifter:
        """Move the operator to ``device`` (in place; returns self)."""
        for name in ("pixel_index", "a", "a_t", "count", "covered", "views_per_vertex", "pixel_vertices",
                     "pixel_weights", "source"):
            if getattr(self, name, None) is not None:
                setattr(self, name, getattr(self, name).to(device))
        return self

    @property
    def device(self) -> torch.device:
        return self.pixel_index.device

    @property
    def num_pixels(self) -> int:
        """P, the number of valid (foreground) pixels over all views."""
        return int(self.pixel_index.numel())

    # -- use ---------------------------------------------------------------------------------------------------
    def _gather(self, logits: torch.Tensor) -> tuple[torch.Tensor, bool]:
        if not isinstance(logits, torch.Tensor):
            raise TypeError(f"logits must be a torch tensor, got {type(logits).__name__}")
        batched = logits.ndim == 4
        if logits.ndim not in (3, 4) or tuple(logits.shape[-3:]) != (self.num_views, self.height, self.width):
            raise ValueError(f"logits must be [V,H,W] or [B,V,H,W] with V,H,W = {self.num_views}, {self.height}, "
                             f"{self.width} (the render the Lifter was built from), got {tuple(logits.shape)}")
        x = logits.reshape(logits.shape[0] if batched else 1, -1)
        if x.device != self.device:
            raise ValueError(f"logits are on {x.device} but the Lifter is on {self.device}; call lifter.to(device)")
        return x.index_select(1, self.pixel_index), batched  # [B,P]

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        """Per-view logits ``[V,H,W]`` / ``[B,V,H,W]`` → per-vertex probabilities ``[N]`` / ``[B,N]``."""
        x, batched = self._gather(logits)
        if self.mode == "soft":
            p = torch.sigmoid(x.clamp(-20.0, 20.0)).to(torch.float32)
            out = _SparseApply.apply(p, self.a, self.a_t)
            if torch.isnan(out).any():  # NaN logits propagate to the vertices they touch: refuse, never clamp
                raise ValueError("logits contain NaN on foreground pixels; refusing to lift them")
            out = out.clamp(0.0, 1.0)
        else:
            if torch.isnan(x).any():
                raise ValueError("logits contain NaN on foreground pixels; refusing to lift them")
            with torch.no_grad():
                m = (x > THRESHOLD_LOGIT).to(torch.float32)
                num = _spmm(self.a, m)
                cnt = _spmm(self.count, m)
                value = torch.where(cnt > 0, num / cnt.clamp_min(1.0), torch.zeros((), device=m.device))
                out = (value > THRESHOLD_VALUE).to(torch.float32)
        return out if batched else out[0]

    @torch.no_grad()
    def lift_above(self, logits: torch.Tensor, threshold: float = OBJECT_PROB_THRESHOLD) -> torch.Tensor:
        """The reference's object lift (module docstring): per-view logits ``[V,H,W]`` / ``[B,V,H,W]`` → per-vertex
        values ``[N]`` / ``[B,N]`` from the pixels with ``sigmoid(logit) > threshold`` only. With ``fill_unseen``
        an unseen vertex copies its nearest seen vertex's value, as in :meth:`__call__`."""
        x, batched = self._gather(logits)  # [B,P]
        if torch.isnan(x).any():
            raise ValueError("logits contain NaN on foreground pixels; refusing to lift them")
        p = torch.sigmoid(x.to(torch.float32))
        vote = (p > threshold).to(torch.float32)
        b, n, v = x.shape[0], self.num_vertices, self.num_views
        view = torch.div(self.pixel_index, self.height * self.width, rounding_mode="floor")  # [P]
        key = (view[:, None] * n + self.pixel_vertices).reshape(-1)  # [3P] (view, vertex) of each entry
        w = self.pixel_weights.reshape(-1)  # [3P]
        num = torch.zeros(b, v * n, device=x.device).index_add_(1, key, (w.view(-1, 3)[None] * (p * vote)[..., None])
                                                                  .reshape(b, -1))
        den = torch.zeros(b, v * n, device=x.device).index_add_(1, key, (w.view(-1, 3)[None] * vote[..., None])
                                                                  .reshape(b, -1))
        num, den = num.view(b, v, n), den.view(b, v, n)
        voted = den > 0
        value = torch.where(voted, num / den.clamp_min(1e-30), torch.zeros((), device=x.device))
        views = voted.sum(1)
        out = torch.where(views > 0, value.sum(1) / views.clamp_min(1), torch.zeros((), device=x.device))
        if self.fill_unseen:
            out = out[:, self.source]
        return out if batched else out[0]

    def project(self, vertex_values: torch.Tensor) -> torch.Tensor:
        """Per-vertex values ``[N]`` / ``[B,N]`` → per-view maps ``[V,H,W]`` / ``[B,V,H,W]`` (barycentric
        interpolation over each pixel's face; 0 on background)."""
        vals = torch.as_tensor(vertex_values, device=self.device)
        batched = vals.ndim == 2
        if vals.shape[-1] != self.num_vertices or vals.ndim not in (1, 2):
            raise ValueError(f"vertex_values must be [N] or [B,N] with N = {self.num_vertices}, "
                             f"got {tuple(vals.shape)}")
        vals = vals.reshape(-1, self.num_vertices).to(torch.float32)
        pix = (vals[:, self.pixel_vertices] * self.pixel_weights[None]).sum(-1)  # [B,P]
        out = torch.zeros(vals.shape[0], self.num_views * self.height * self.width, device=self.device)
        out[:, self.pixel_index] = pix
        out = out.view(-1, self.num_views, self.height, self.width)
        return out if batched else out[0]
