"""A vectorised torch z-buffer rasterizer (CPU or GPU, no display), exact at pixel centres.

For every triangle, the pixel centres inside its screen bounding box are tested with screen-space edge functions;
triangles are grouped by bounding-box size (powers of two) so each group is one batched tensor operation, and
groups are processed in chunks of bounded size. The nearest candidate per pixel wins (``scatter_reduce`` amin on
view-space depth; ties go to the higher candidate index). Barycentrics are perspective-correct and depth is the
view-space z, as PyTorch3D's ``rasterize_meshes`` with ``faces_per_pixel=1, blur_radius=0`` returns them.
Triangles with a vertex at or behind the camera plane (z <= 1e-6) are skipped (never the case for the method's
cameras, which look at a unit-size scene from 1.5-2 m).

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


def _next_pow2(x: torch.Tensor) -> torch.Tensor:
    return torch.pow(2, torch.ceil(torch.log2(x.clamp_min(1).to(torch.float32)))).to(torch.int64)


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
        vertices: float32 ``[N,3]`` world coordinates. faces: int64 ``[F,3]``.
        keep: optional bool ``[F]``; faces outside it are not drawn (face ids stay the original indices).
    """
    device = vertices.device
    H = W = int(resolution)
    v_view = to_view(vertices, view)
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
    size = hi_s - lo_s + 1  # [S,2] (w, h)
    kw, kh = _next_pow2(size[:, 0]), _next_pow2(size[:, 1])
    group = kw * (W + 1) + kh
    face_sel = face_idx[sel]
    batches = _Batches(zbuf)
    lo_f = lo_s.to(origin.dtype)
    d0 = lo_f - origin  # [S,2] offset of the bbox corner from vertex 0
    ext = (hi_s - lo_s).to(origin.dtype)  # [S,2] bbox extent - 1
    for g in torch.unique(group).tolist():
        members = torch.nonzero(group == g).squeeze(1)
        gw, gh = int(kw[members[0]]), int(kh[members[0]])
        oy, ox = torch.meshgrid(torch.arange(gh, device=device), torch.arange(gw, device=device), indexing="ij")
        ox, oy = ox.reshape(-1), oy.reshape(-1)
        oxf, oyf = ox.to(origin.dtype)[None], oy.to(origin.dtype)[None]
        per = gw * gh
        step = max(1, _CHUNK // per)
        for start in range(0, members.numel(), step):
            m = members[start:start + step]
            c = coef[m]
            dx = d0[m, 0:1] + oxf  # [M,per]
            dy = d0[m, 1:2] + oyf
            w1 = c[:, 0:1] * dx + c[:, 1:2] * dy
            w2 = c[:, 2:3] * dx + c[:, 3:4] * dy
            inside = (w1 >= 0) & (w2 >= 0) & (w1 + w2 <= 1) & (oxf <= ext[m, 0:1]) & (oyf <= ext[m, 1:2])
            fi, pi = torch.nonzero(inside, as_tuple=True)
            if fi.numel() == 0:
                continue
            a1, a2 = w1[fi, pi], w2[fi, pi]
            wv = torch.stack([1.0 - a1 - a2, a1, a2], 1)  # [K,3]
            mf = m[fi]
            pw = wv * inv_z[mf]
            denom = pw.sum(dim=1, keepdim=True)
            bary = pw / denom
            z = 1.0 / denom.squeeze(1)
            pix = (lo_s[mf, 1] + oy[pi]) * W + lo_s[mf, 0] + ox[pi]
            batches.add(pix, z, face_sel[mf], bary)
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
