"""The inputs of the parity check, synthetic and deterministic, identical on both sides.

numpy only (no torch, no package imports): the reference-side script loads this file by path.

* ``photo()``: the "photo" uint8 ``[300,400,3]`` (not square, not SAM's size: CLIP's resize/crop and the 2D
  mode's SAM resize are both exercised).
* ``render_set(kind, size)``: four "renders" uint8 ``[4,S,S,3]`` (coloured blobs on white, different per view)
  with their pixel->face map ``face_ids [4,S,S]`` (-1 = background), barycentric weights ``bary [4,S,S,3]`` and
  the mesh's ``faces [F,3]`` (a regular grid of ``rows x cols`` vertices). The renders are not the canonical
  body: this check is about the model (the canonical renders are compared with PyTorch3D's separately); a
  fixed synthetic set keeps the golden outputs valid whatever the project's renderer does.
"""

from __future__ import annotations

import numpy as np

PHOTO_SHAPE = (300, 400)
MESH_GRID = {"human": (60, 50), "object": (40, 40)}  # rows x cols vertices of each kind's mesh
# The golden file keeps these stages on a grid (a few hundred KB in all): stage -> stride of each trailing
# axis, starting at stride // 2 (mask logits [V,1024,1024] -> [V,16,16]; SAM embeddings [V,256,64,64] ->
# [V,16,8,8]; the projected CLIP tokens [256,D] -> [32,D/8]). Every other stage is kept whole.
STORED_STRIDES = {"mask_logits": (64, 64), "lowres_logits": (16, 16), "sam_embeddings": (16, 8, 8),
                  "image_tokens": (8, 8)}


def stored(stage: str, value: np.ndarray) -> np.ndarray:
    """What the golden file keeps of ``stage``: the strided grid of ``STORED_STRIDES`` (float32), else all."""
    a = np.asarray(value)
    strides = STORED_STRIDES.get(stage)
    if strides is not None:
        lead = a.ndim - len(strides)
        a = a[(slice(None),) * lead + tuple(slice(s // 2, None, s) for s in strides)]
    return np.ascontiguousarray(a.astype(np.float32) if a.dtype.kind == "f" else a)


def photo() -> np.ndarray:
    """uint8 ``[300,400,3]``: smooth colour waves with a dark disc and a bright bar."""
    h, w = PHOTO_SHAPE
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 128 + 90 * np.sin(x / 23.0 + y / 41.0)
    g = 128 + 90 * np.cos(x / 37.0 - y / 19.0)
    b = 128 + 90 * np.sin((x + y) / 53.0)
    img = np.stack([r, g, b], -1)
    img[(x - 250) ** 2 + (y - 140) ** 2 < 60 ** 2] *= 0.3
    img[(np.abs(y - 230) < 12) & (x > 40) & (x < 220)] = (240, 230, 60)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def grid_faces(rows: int, cols: int) -> np.ndarray:
    """Faces ``[2(rows-1)(cols-1), 3]`` of a ``rows x cols`` vertex grid; cell (i, j) holds faces 2c (v00, v01,
    v10) and 2c+1 (v11, v10, v01), c = i(cols-1)+j."""
    i, j = np.mgrid[0:rows - 1, 0:cols - 1]
    v00 = i * cols + j
    v01, v10, v11 = v00 + 1, v00 + cols, v00 + cols + 1
    a = np.stack([v00, v01, v10], -1).reshape(-1, 3)
    b = np.stack([v11, v10, v01], -1).reshape(-1, 3)
    return np.stack([a, b], 1).reshape(-1, 3).astype(np.int64)


def _silhouette(kind: str, view: int, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Foreground of view ``view``: a union of ellipses ``(cx, cy, rx, ry)`` in [-1, 1] coordinates."""
    if kind == "human":
        shift = 0.08 * (view - 1.5)
        blobs = [(shift, 0.05, 0.32, 0.45), (shift, -0.62, 0.15, 0.15), (-0.45 + shift, 0.0, 0.12, 0.5),
                 (0.45 + shift, 0.1 * view - 0.1, 0.12, 0.5), (shift, 0.7, 0.3, 0.22)]
    else:
        blobs = [(0.1 * view - 0.15, 0.0, 0.5 - 0.05 * view, 0.35), (0.3, -0.3 + 0.1 * view, 0.2, 0.25)]
    inside = np.zeros(xs.shape, bool)
    for cx, cy, rx, ry in blobs:
        inside |= ((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2 <= 1.0
    return inside


def render_set(kind: str, size: int) -> dict[str, np.ndarray]:
    """``images`` uint8 ``[4,S,S,3]``, ``face_ids`` int64 ``[4,S,S]``, ``bary`` float32 ``[4,S,S,3]``,
    ``faces`` int64 ``[F,3]``, ``num_vertices`` (0-d) of the ``kind`` ("human" or "object") set."""
    rows, cols = MESH_GRID[kind]
    faces = grid_faces(rows, cols)
    c = (np.arange(size, dtype=np.float64) + 0.5) / size * 2.0 - 1.0
    ys, xs = np.meshgrid(c, c, indexing="ij")
    images = np.full((4, size, size, 3), 255, np.uint8)
    face_ids = np.full((4, size, size), -1, np.int64)
    bary = np.zeros((4, size, size, 3), np.float32)
    for v in range(4):
        fg = _silhouette(kind, v, xs, ys)
        s = np.clip((ys + 1) / 2 * (rows - 1), 0, rows - 1)                    # mesh row coordinate
        t = np.clip(((xs + 1) / 2 * 0.75 + 0.08 * v) * (cols - 1), 0, cols - 1)  # column: each view sees a band
        i = np.minimum(np.floor(s), rows - 2).astype(np.int64)
        j = np.minimum(np.floor(t), cols - 2).astype(np.int64)
        fs, ft = s - i, t - j
        upper = fs + ft > 1.0
        fid = 2 * (i * (cols - 1) + j) + upper
        w = np.where(upper[..., None], np.stack([fs + ft - 1, 1 - ft, 1 - fs], -1),
                     np.stack([1 - fs - ft, ft, fs], -1))
        face_ids[v][fg] = fid[fg]
        bary[v][fg] = w[fg].astype(np.float32)
        shade = 0.6 + 0.4 * np.cos(3.0 * s / rows + v) * np.sin(2.0 * t / cols + 1.0)
        col = np.stack([127 + 120 * xs * shade, 127 + 120 * ys * shade, 200 * shade + 20 * v], -1)
        images[v][fg] = np.clip(np.round(col[fg]), 0, 255).astype(np.uint8)
    return {"images": images, "face_ids": face_ids, "bary": bary, "faces": faces,
            "num_vertices": np.asarray(rows * cols)}


def pixel_to_vertex(face_ids: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """The reference's map layout: vertex ids of each pixel's face ``[...,3]``, -1 on background."""
    return np.where(face_ids[..., None] >= 0, faces[np.clip(face_ids, 0, None)], -1).astype(np.int64)
