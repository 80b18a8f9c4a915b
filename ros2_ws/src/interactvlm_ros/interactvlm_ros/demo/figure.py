"""The demo's per-frame picture: the input image, the contact on the body (front and back) and on the object,
and the reconstruction overlay; for synthetic frames a second row with the ground truth.

Meshes are drawn with the geometry renderer (:func:`~interactvlm_ros.render.render.render_views`), coloured grey
→ red by contact probability (the colours of ``interactvlm infer``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from interactvlm_ros.render.cameras import View
from interactvlm_ros.render.contact_colors import contact_colors

TILE = 224
CAPTION_H = 18
HEADER_H = 22
TITLE_LINE_H = 14  # each further title line

BODY_VIEWS = (View("front", 2.3, 0.0, 0.0, light=(0.0, 0.0, 3.0)),
              View("back", 2.3, 0.0, 180.0, light=(0.0, 0.0, -3.0)))
OBJECT_VIEW = (View("object", 2.3, 25.0, 35.0, light=(1.5, 2.5, 3.0)),)


@dataclass
class Tile:
    """One panel: an RGB image (any size, fitted into the tile) or None (grey panel), with a caption."""

    caption: str
    image: np.ndarray | None = None
    note: str = ""


def mesh_renders(vertices: np.ndarray, faces: np.ndarray, probs: np.ndarray, views=BODY_VIEWS,
                 size: int = TILE) -> list[np.ndarray]:
    """``[len(views)]`` uint8 ``[size,size,3]`` renders of the mesh (normalised to fill the frame) coloured by
    ``probs [N]``."""
    from interactvlm_ros.render.render import render_views

    v = np.asarray(vertices, np.float32)
    v = v - (v.max(0) + v.min(0)) / 2
    v = v * (0.8 / max(float(np.abs(v).max()), 1e-9))
    r = render_views(v, np.asarray(faces, np.int64), views, size, colors=contact_colors(probs))
    return list(r.images)


def closeup_render(vertices: np.ndarray, faces: np.ndarray, probs: np.ndarray, threshold: float,
                   size: int = TILE, radius_m: float = 0.3) -> np.ndarray | None:
    """uint8 ``[size,size,3]``: the surface around the largest contact patch (vertices ``>= threshold`` within
    ``radius_m`` of the contact vertex with the most contact surface around it), seen along its mean normal; None
    without contact. Small patches (fingers, soles) that vanish in a whole-body view stay visible."""
    from scipy.spatial import cKDTree

    from interactvlm_ros.render.render import render_views

    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces, np.int64)
    p = np.asarray(probs, np.float32)
    on = np.flatnonzero(p >= threshold)
    if not len(on):
        return None
    fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])  # area-weighted face normals
    vn = np.zeros_like(v)
    for k in range(3):
        np.add.at(vn, f[:, k], fn)
    area = np.linalg.norm(vn, axis=1)  # ~ the vertex's share of the surface: dense hands don't outweigh hips
    tree = cKDTree(v[on])
    score = np.array([area[on[n]].sum() for n in tree.query_ball_point(v[on], 0.15)])
    centre = v[on[int(np.argmax(score))]]
    patch = on[np.linalg.norm(v[on] - centre, axis=1) <= radius_m]
    centre = v[patch].mean(0)
    d = vn[patch].sum(0)
    if np.linalg.norm(d) < 1e-9 * max(len(patch), 1):
        d = centre - v.mean(0)
    d = d / max(np.linalg.norm(d), 1e-12)
    extent = float(np.linalg.norm(v[patch] - centre, axis=1).max()) + 0.08
    scale = 0.8 / extent
    keep = np.linalg.norm(v[f].mean(1) - centre, axis=1) * scale <= 1.6  # a local patch: nothing near the camera
    elev = float(np.clip(np.degrees(np.arcsin(np.clip(d[1], -1.0, 1.0))), -75.0, 75.0))  # look-at needs a tilt
    azim = float(np.degrees(np.arctan2(d[0], d[2])))
    view = View("closeup", 2.3, elev, azim % 360.0, light=tuple(float(x) for x in d * 3.0))
    r = render_views(((v - centre) * scale).astype(np.float32), f[keep], (view,), size, colors=contact_colors(p))
    return r.images[0]


def _fit(img: np.ndarray, size: int = TILE):
    from PIL import Image

    im = Image.fromarray(np.asarray(img, np.uint8))
    scale = size / max(im.width, im.height)
    im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.BILINEAR)
    canvas = Image.new("RGB", (size, size), (255, 255, 255))
    canvas.paste(im, ((size - im.width) // 2, (size - im.height) // 2))
    return canvas


def compose(title: str, rows: list[list[Tile]]) -> np.ndarray:
    """One PNG-ready uint8 image: the title (one line per newline in it), then the rows of tiles, each with its caption
    above it."""
    from PIL import Image, ImageDraw

    ncols = max(len(r) for r in rows)
    row_h = CAPTION_H + TILE
    lines = title.split("\n")
    header_h = HEADER_H + TITLE_LINE_H * (len(lines) - 1)
    fig = Image.new("RGB", (ncols * TILE, header_h + len(rows) * row_h), (255, 255, 255))
    draw = ImageDraw.Draw(fig)
    for i, line in enumerate(lines):
        draw.text((6, 5 + TITLE_LINE_H * i), line[:ncols * TILE // 6], fill=(0, 0, 0))
    for r, row in enumerate(rows):
        y = header_h + r * row_h
        for c, tile in enumerate(row):
            x = c * TILE
            draw.text((x + 4, y + 3), tile.caption[:36], fill=(60, 60, 60))
            if tile.image is not None:
                fig.paste(_fit(tile.image), (x, y + CAPTION_H))
            else:
                draw.rectangle([x + 2, y + CAPTION_H + 2, x + TILE - 3, y + row_h - 3], fill=(236, 236, 236))
            if tile.note:
                _wrapped(draw, tile.note, x + 8, y + CAPTION_H + (TILE - 40 if tile.image is not None else 12))
    return np.asarray(fig)


def _wrapped(draw, text: str, x: int, y: int, width: int = 34) -> None:
    words, line, lines = text.split(), "", []
    for w in words:
        if len(line) + len(w) + 1 > width:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}".strip()
    lines.append(line)
    lines = lines[:12]
    draw.rectangle([x - 3, y - 2, x + 6 * width + 3, y + 12 * len(lines) + 1], fill=(255, 255, 255))
    for i, ln in enumerate(lines):
        draw.text((x, y + 12 * i), ln, fill=(120, 30, 30))
