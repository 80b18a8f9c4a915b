"""A vectorised torch z-buffer rasterizer (CPU or GPU, no display), exact at pixel centres.

Scanline rasterisation, batched over all triangles at once: for every (triangle, pixel row) pair the column span
where the three screen-space edge functions are non-negative is solved in closed form, the pixel centres of those
spans become candidates (``repeat_interleave``), and each candidate is re-tested exactly with edge functions in
coordinates local to the triangle's first vertex. Work is proportional to the covered pixels, whatever the
triangles' shapes, and is done in chunks of bounded size. The nearest candidate per pixel wins (one
``scatter_reduce`` amin on packed depth/candidate keys; exact depth ties go to the first candidate).
The projection and the edge functions are computed in float64 (the outputs are float32): a pixel centre a
hair from an edge (float32 pixel coordinates near column 360 are 3e-5 px apart) is decided as exact arithmetic
decides it, not by the rounding of the vertices' projection. Barycentrics are perspective-correct and depth is
the view-space z, as PyTorch3D's ``rasterize_meshes`` with
``faces_per_pixel=1, blur_radius=0`` returns them. Triangles with a vertex at or behind the camera plane
(z <= 1e-6) are skipped (never the case for the method's cameras, which look at a unit-size scene from 1.5-2 m).

Points are rasterised the way PyTorch3D's ``PointsRasterizer`` does: discs of a constant NDC radius, nearest
point per pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from interactvlm_ros.render.cameras import View, focal_ndc, look_at

_CHUNK = 1 << 22  # candidate (face, pixel) pairs per batched step
_EPS_Z = 1e-6


@dataclass
class Fragments:
    """Per-pixel result of one view: ``face_ids`` int64 ``[H,W]`` (-1 = background), ``bary`` float32 ``[H,W,3]``,
    ``depth`` float32 ``[H,W]`` (view-space z, 0 on background)."""

    face_ids: torch.Tensor
    bary: torch.Tensor
    depth: torch.Tensor


def to_view(vertices: torch.Tensor, view: View) -> torch.Tensor:
    """World ``[N,3]`` → view space ``[N,3]`` (PyTorch3D convention, see cameras.py)."""
    m, t = look_at(view)
    m = torch.as_tensor(m, dtype=vertices.dtype, device=vertices.device)
    t = torch.as_tensor(t, dtype=vertices.dtype, device=vertices.device)
    return vertices @ m.T + t


def to_pixels(v_view: torch.Tensor, resolution: int) -> torch.Tensor:
    """View space ``[N,3]`` → continuous pixel coordinates ``[N,2]`` = (column, row) of the pixel grid whose
    centres are integers."""
    s = focal_ndc()
    z = v_view[:, 2].clamp_min(_EPS_Z)
    x_ndc = s * v_view[:, 0] / z
    y_ndc = s * v_view[:, 1] / z
    col = (1.0 - x_ndc) * resolution / 2.0 - 0.5
    row = (1.0 - y_ndc) * resolution / 2.0 - 0.5
    return torch.stack([col, row], dim=1)


def _chunks(counts: torch.Tensor, limit: int):
    """Consecutive index ranges ``[i, j)`` whose summed ``counts`` stay near ``limit`` (at least one item)."""
    total = torch.cumsum(counts, 0)
    n = int(counts.numel())
    i = 0
    base = 0
    while i < n:
        j = int(torch.searchsorted(total, base + limit, right=True))
        j = max(j, i + 1)
        yield i, j
        base = int(total[j - 1])
        i = j


class _ZBuffer:
    """Nearest-candidate buffer. Candidates of one batch are resolved with a single ``scatter_reduce`` on packed
    int64 keys ``(float bits of depth) << 32 | candidate index`` (positive floats order like their bit patterns),
    so the minimum key gives both the nearest depth and, on ties, the lowest candidate index. Across batches the
    earlier batch wins ties."""

    _NONE = torch.iinfo(torch.int64).max

    def __init__(self, n_pix: int, device):
        self.zbits = torch.full((n_pix,), self._NONE, dtype=torch.int64, device=device)
        self.face = torch.full((n_pix,), -1, dtype=torch.int64, device=device)
        self.bary = torch.zeros((n_pix, 3), device=device)
        self.z = torch.zeros((n_pix,), device=device)

    def update(self, pix: torch.Tensor, z: torch.Tensor, face: torch.Tensor, bary: torch.Tensor) -> None:
        if pix.numel() == 0:
            return
        if pix.numel() >= 1 << 32:
            raise ValueError("too many rasterisation candidates in one batch")
        z = z.to(torch.float32).clamp_min(0.0)
        zb = z.view(torch.int32).to(torch.int64)
        key = (zb << 32) | torch.arange(pix.numel(), device=pix.device)
        best = torch.full_like(self.zbits, self._NONE).scatter_reduce_(0, pix, key, reduce="amin", include_self=True)
        upd = torch.nonzero((best != self._NONE) & ((best >> 32) < self.zbits)).squeeze(1)
        cand = best[upd] & 0xFFFFFFFF
        self.zbits[upd] = best[upd] >> 32
        self.face[upd] = face[cand]
        self.bary[upd] = bary[cand].to(self.bary.dtype)
        self.z[upd] = z[cand]


class _Batches:
    """Accumulates candidate lists and flushes them into the z-buffer in batches of about ``_CHUNK``."""

    def __init__(self, zbuf: _ZBuffer):
        self.zbuf, self.parts, self.count = zbuf, [], 0

    def add(self, pix, z, face, bary) -> None:
        self.parts.append((pix, z, face, bary))
        self.count += pix.numel()
        if self.count >= _CHUNK:
            self.flush()

    def flush(self) -> None:
        if self.parts:
            cols = list(zip(*self.parts, strict=True))
            self.zbuf.update(*(torch.cat(c) for c in cols))
        self.parts, self.count = [], 0


def rasterize_mesh(vertices: torch.Tensor, faces: torch.Tensor, view: View, resolution: int,
                   keep: torch.Tensor | None = None) -> Fragments:
    """Rasterise a triangle mesh for one view.

    Args:
        vertices: float ``[N,3]`` world coordinates (projected in float64). faces: int64 ``[F,3]``.
        keep: optional bool ``[F]``; faces outside it are not drawn (face ids stay the original indices).
    """
    device = vertices.device
    H = W = int(resolution)
    v_view = to_view(vertices.to(torch.float64), view)
    p = to_pixels(v_view, resolution)
    face_idx = torch.arange(faces.shape[0], device=device)
    tri_z = v_view[:, 2][faces]  # [F,3]
    ok = (tri_z > _EPS_Z).all(dim=1)
    if keep is not None:
        ok &= keep.to(device)
    tri = p[faces]  # [F,3,2]
    lo = torch.ceil(tri.min(dim=1).values)
    hi = torch.floor(tri.max(dim=1).values)
    lo = lo.clamp(0, W - 1)
    hi_c = hi.clamp(max=W - 1)
    ok &= (hi[:, 0] >= lo[:, 0]) & (hi[:, 1] >= lo[:, 1]) & (tri.max(dim=1).values >= 0).all(dim=1)
    ok &= (tri.min(dim=1).values <= W - 1).all(dim=1)
    # Edge functions in coordinates local to vertex 0 (accurate for tiny triangles far from the origin):
    # w1 = (dx·e2y - dy·e2x) / area, w2 = (e1x·dy - e1y·dx) / area, w0 = 1 - w1 - w2.
    e1 = tri[:, 1] - tri[:, 0]
    e2 = tri[:, 2] - tri[:, 0]
    area = e1[:, 0] * e2[:, 1] - e2[:, 0] * e1[:, 1]
    ok &= area.abs() > 1e-9
    sel = torch.nonzero(ok).squeeze(1)
    zbuf = _ZBuffer(H * W, device)
    if sel.numel() == 0:
        return Fragments(zbuf.face.view(H, W), zbuf.bary.view(H, W, 3), torch.zeros(H, W, device=device))
    inv = 1.0 / area[sel]
    origin = tri[sel, 0]  # [S,2]
    coef = torch.stack([e2[sel, 1] * inv, -e2[sel, 0] * inv, -e1[sel, 1] * inv, e1[sel, 0] * inv], 1)  # [S,4]
    inv_z = 1.0 / tri_z[sel]  # [S,3]
    lo_s, hi_s = lo[sel].to(torch.int64), hi_c[sel].to(torch.int64)
    face_sel = face_idx[sel]
    batches = _Batches(zbuf)
    # Scanlines: every (face, pixel row) pair gets the exact column span where all three edge functions are
    # >= 0 (widened by a hair); candidates are only the pixels of those spans, re-tested exactly below.
    rows_per_face = hi_s[:, 1] - lo_s[:, 1] + 1
    for f0, f1 in _chunks(rows_per_face, _CHUNK):
        fr = torch.arange(f0, f1, device=device)
        pf = torch.repeat_interleave(fr, rows_per_face[f0:f1])  # pair -> face (index into sel)
        first = torch.cumsum(rows_per_face[f0:f1], 0) - rows_per_face[f0:f1]
        py = lo_s[pf, 1] + torch.arange(pf.numel(), device=device) - first[pf - f0]
        c = coef[pf]
        dy = py.to(origin.dtype) - origin[pf, 1]
        # constraints a·dx + b >= 0 for w1, w2 and w0 = 1 - w1 - w2
        a = torch.stack([c[:, 0], c[:, 2], -(c[:, 0] + c[:, 2])], 1)
        b = torch.stack([c[:, 1] * dy, c[:, 3] * dy, 1.0 - (c[:, 1] + c[:, 3]) * dy], 1)
        bound = -b / torch.where(a == 0, torch.ones_like(a), a)
        inf = torch.full_like(bound, float("inf"))
        lower = torch.where(a > 0, bound, -inf).max(1).values
        upper = torch.where(a < 0, bound, inf).min(1).values
        empty = ((a == 0) & (b < 0)).any(1)
        x0 = origin[pf, 0]
        tol = 1e-3
        px_lo = torch.maximum(torch.ceil(lower + x0 - tol), lo_s[pf, 0].to(origin.dtype))
        px_hi = torch.minimum(torch.floor(upper + x0 + tol), hi_s[pf, 0].to(origin.dtype))
        span = torch.where(empty, torch.zeros_like(px_lo), (px_hi - px_lo + 1).clamp_min(0)).to(torch.int64)
        for p0, p1 in _chunks(span, _CHUNK):
            sp = span[p0:p1]
            cp = torch.repeat_interleave(torch.arange(p0, p1, device=device), sp)  # candidate -> pair
            if cp.numel() == 0:
                continue
            start_x = torch.cumsum(sp, 0) - sp
            cx = px_lo[cp] + (torch.arange(cp.numel(), device=device) - start_x[cp - p0]).to(origin.dtype)
            m = pf[cp]
            cc = coef[m]
            dx = cx - origin[m, 0]
            dyc = dy[cp]
            w1 = cc[:, 0] * dx + cc[:, 1] * dyc
            w2 = cc[:, 2] * dx + cc[:, 3] * dyc
            inside = torch.nonzero((w1 >= 0) & (w2 >= 0) & (w1 + w2 <= 1)).squeeze(1)
            if inside.numel() == 0:
                continue
            a1, a2, m = w1[inside], w2[inside], m[inside]
            pw = torch.stack([1.0 - a1 - a2, a1, a2], 1) * inv_z[m]
            denom = pw.sum(dim=1, keepdim=True)
            pix = py[cp[inside]] * W + cx[inside].to(torch.int64)
            batches.add(pix, 1.0 / denom.squeeze(1), face_sel[m], pw / denom)
    batches.flush()
    face_ids = zbuf.face.view(H, W)
    depth = torch.where(face_ids >= 0, zbuf.z.view(H, W), torch.zeros((), device=device))
    return Fragments(face_ids, zbuf.bary.view(H, W, 3), depth)


def rasterize_points(points: torch.Tensor, view: View, resolution: int, radius: float) -> Fragments:
    """Rasterise points as discs of NDC radius ``radius`` (PyTorch3D ``PointsRasterizer`` semantics, nearest
    point kept). Returns Fragments whose ``face_ids`` are point ids and ``bary`` is ``(1, 0, 0)`` on hits."""
    device = points.device
    H = W = int(resolution)
    v_view = to_view(points, view)
    ok = v_view[:, 2] > _EPS_Z
    p = to_pixels(v_view, resolution)
    r_pix = radius * W / 2.0
    lo = torch.ceil(p - r_pix).clamp(0, W - 1).to(torch.int64)
    hi = torch.floor(p + r_pix).clamp(max=W - 1).to(torch.int64)
    ok &= (hi >= lo).all(dim=1) & (p + r_pix >= 0).all(dim=1) & (p - r_pix <= W - 1).all(dim=1)
    sel = torch.nonzero(ok).squeeze(1)
    zbuf = _ZBuffer(H * W, device)
    k = int(2 * int(r_pix) + 3)
    oy, ox = torch.meshgrid(torch.arange(k, device=device), torch.arange(k, device=device), indexing="ij")
    ox, oy = ox.reshape(-1), oy.reshape(-1)
    step = max(1, _CHUNK // (k * k))
    ones = torch.tensor([1.0, 0.0, 0.0], device=device)
    batches = _Batches(zbuf)
    for start in range(0, sel.numel(), step):
        m = sel[start:start + step]
        cx = lo[m, 0:1] + ox[None]
        cy = lo[m, 1:2] + oy[None]
        d2 = (cx.to(p.dtype) - p[m, 0:1]) ** 2 + (cy.to(p.dtype) - p[m, 1:2]) ** 2
        inside = (cx <= hi[m, 0:1]) & (cy <= hi[m, 1:2]) & (d2 < r_pix * r_pix)
        fi, pi = torch.nonzero(inside, as_tuple=True)
        if fi.numel() == 0:
            continue
        pix = cy[fi, pi] * W + cx[fi, pi]
        batches.add(pix, v_view[m, 2][fi], m[fi], ones.expand(fi.numel(), 3))
    batches.flush()
    face_ids = zbuf.face.view(H, W)
    depth = torch.where(face_ids >= 0, zbuf.z.view(H, W), torch.zeros((), device=device))
    return Fragments(face_ids, zbuf.bary.view(H, W, 3), depth)
