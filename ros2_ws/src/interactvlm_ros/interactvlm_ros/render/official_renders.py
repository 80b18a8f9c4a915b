"""The authors' canonical body renders and pixel→vertex maps, read from a user-supplied copy of their ``data.zip``.

The released InteractVLM checkpoints were trained on PyTorch3D renders of SMPL-H in the star ("vitruvian") pose,
shipped in ``data.zip`` (never downloaded here). The reference code reads them from ``data/hcontact_vitruvian/``:

* ``body_render_norm_{view}.png`` — one 8-bit RGB image per view (``topfront``, ``bottomfront``, ``topback``,
  ``bottomback``), read with PIL as ``np.asarray`` (the SAM input);
* ``pixel_to_vertex_map_{R}.npz`` — one array per view name, ``[R,R,3]`` integer vertex ids of the face seen at
  each pixel (-1 on background), the vertices in the order of the body's face;
* ``bary_coords_map_{R}.npz`` — one array per view name, ``[R,R,3]`` float barycentric weights of those vertices
  (PyTorch3D's perspective-correct ``bary_coords``; -1 on background).

``load_official_body_render`` turns that into a :class:`MultiViewRender` whose ``face_ids`` index the body's own
faces (each pixel's ordered vertex triple is looked up in ``faces``, so a map made for another topology is
refused), ``bary`` are the stored weights and ``depth`` is recomputed from the body's canonical vertices when
they are given. ``official_body_views`` adds the camera conditioning and the lift operator, exactly as
:func:`~interactvlm_ros.render.canonical.canonical_body_views` does for our own renders.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from interactvlm_ros.render.cameras import HUMAN_VIEWS, View, cam_params
from interactvlm_ros.render.canonical import CanonicalViews
from interactvlm_ros.render.lift import Lifter
from interactvlm_ros.render.rasterize import to_view
from interactvlm_ros.render.render import MultiViewRender

RENDER_FOLDER = "hcontact_vitruvian"  # HUMAN_VIEW_DICT['4MV-Z_Vitru']['folder']
IMAGE_NAME = "body_render_norm_{view}.png"
P2V_NAME = "pixel_to_vertex_map_{res}.npz"
BARY_NAME = "bary_coords_map_{res}.npz"


class OfficialRenderError(ValueError):
    """A missing or misshaped file in the authors' render folder (the message names the file)."""


def find_render_folder(root: str | Path) -> Path:
    """The ``hcontact_vitruvian`` folder of an unpacked ``data.zip``: ``root`` may be that folder itself, the
    ``data/`` folder holding it, or the folder ``data.zip`` was unpacked in."""
    root = Path(root).expanduser()
    tried = [root, root / RENDER_FOLDER, root / "data" / RENDER_FOLDER]
    for cand in tried:
        if cand.is_dir() and any(cand.glob("pixel_to_vertex_map_*.npz")):
            return cand
    raise OfficialRenderError(
        f"no authors' render folder under {str(root)!r}: expected {RENDER_FOLDER}/pixel_to_vertex_map_<R>.npz "
        f"(from the authors' data.zip) in one of: " + ", ".join(repr(str(t)) for t in tried))


def _npz_views(path: Path, views: tuple[View, ...]) -> dict[str, np.ndarray]:
    if not path.is_file():
        have = sorted(p.name for p in path.parent.glob("*.npz"))
        raise OfficialRenderError(f"missing {path} (found .npz files: {have or 'none'})")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [v.name for v in views if v.name not in z.files]
            if missing:
                raise OfficialRenderError(f"{path}: no array for view(s) {missing} (arrays: {sorted(z.files)})")
            return {v.name: z[v.name] for v in views}
    except OfficialRenderError:
        raise
    except (OSError, ValueError, EOFError) as exc:
        raise OfficialRenderError(f"{path}: not a readable .npz ({type(exc).__name__}: {exc})") from exc


def _read_image(path: Path, resolution: int) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise OfficialRenderError(f"missing {path}")
    try:
        with Image.open(path) as im:
            mode, arr = im.mode, np.asarray(im)
    except (OSError, UnidentifiedImageError) as exc:
        raise OfficialRenderError(f"{path}: not a readable image ({type(exc).__name__}: {exc})") from exc
    if mode != "RGB" or arr.dtype != np.uint8:
        raise OfficialRenderError(f"{path}: expected an 8-bit RGB image (what the reference feeds SAM), got "
                                  f"PIL mode {mode!r}")
    if arr.shape != (resolution, resolution, 3):
        raise OfficialRenderError(f"{path}: expected {resolution}x{resolution} pixels (the size of its maps), "
                                  f"got {arr.shape[1]}x{arr.shape[0]}")
    return np.ascontiguousarray(arr)


def _face_lookup(faces: np.ndarray, num_vertices: int):
    """Ordered vertex triple → face id, as (sorted keys, their face ids)."""
    f = faces.astype(np.int64)
    keys = (f[:, 0] * num_vertices + f[:, 1]) * num_vertices + f[:, 2]
    order = np.argsort(keys, kind="stable")
    return keys[order], order


def _map_to_face_ids(p2v: np.ndarray, path: Path, view: str, faces: np.ndarray, num_vertices: int,
                     lookup) -> np.ndarray:
    """``[R,R,3]`` vertex triples → int32 ``[R,R]`` face ids of ``faces`` (-1 background)."""
    if not np.issubdtype(p2v.dtype, np.integer):
        raise OfficialRenderError(f"{path}[{view!r}]: vertex ids must be integers, got dtype {p2v.dtype}")
    p2v = p2v.astype(np.int64)
    valid = (p2v >= 0).all(axis=-1)  # the reference lifts only pixels whose three ids are all valid
    ids = p2v[valid]
    if ids.size and int(ids.max()) >= num_vertices:
        raise OfficialRenderError(f"{path}[{view!r}]: vertex id {int(ids.max())} but the body model has "
                                  f"{num_vertices} vertices (maps made for another topology; the official "
                                  f"renders are SMPL-H/SMPL, 6890 vertices)")
    keys = (ids[:, 0] * num_vertices + ids[:, 1]) * num_vertices + ids[:, 2]
    sorted_keys, face_of = lookup
    pos = np.searchsorted(sorted_keys, keys).clip(0, max(len(sorted_keys) - 1, 0))
    found = sorted_keys[pos] == keys if len(sorted_keys) else np.zeros(len(keys), bool)
    if not found.all():
        bad = int(np.argmin(found))
        r, c = (int(x) for x in np.argwhere(valid)[bad])
        raise OfficialRenderError(f"{path}[{view!r}]: pixel (row {r}, col {c}) shows vertices {ids[bad].tolist()}, "
                                  f"which is not a face of the body model ({len(faces)} faces): maps made for "
                                  f"another topology or face order (the authors' maps are SMPL-H/SMPL: "
                                  f"body.model smplh or smpl)")
    out = np.full(valid.shape, -1, np.int32)
    out[valid] = face_of[pos].astype(np.int32)
    return out


def load_official_body_render(root: str | Path, faces, num_vertices: int, vertices=None,
                              views: tuple[View, ...] = HUMAN_VIEWS, resolution: int = 1024) -> MultiViewRender:
    """Read the authors' renders and maps (module docstring) for ``views`` at ``resolution`` px.

    Args:
        root: the unpacked ``data.zip`` (see :func:`find_render_folder`).
        faces: int ``[F,3]`` the body's faces (SMPL-H/SMPL: 13776); num_vertices: N (6890).
        vertices: optional float ``[N,3]`` canonical vertices; when given ``depth`` is the view-space z of each
            pixel's surface point (``Σ b_i z_i``), else zeros.
    Returns a :class:`MultiViewRender` (``meta['source'] = 'official'``, ``meta['folder']``).
    Raises :class:`OfficialRenderError` naming the missing or misshaped file.
    """
    folder = find_render_folder(root)
    res = int(resolution)
    views = tuple(views)
    f = np.asarray(faces, dtype=np.int64)
    if f.ndim != 2 or f.shape[1] != 3:
        raise ValueError(f"faces must be [F,3], got {f.shape}")
    p2v_path, bary_path = folder / P2V_NAME.format(res=res), folder / BARY_NAME.format(res=res)
    if not p2v_path.is_file():
        have = sorted(p.name for p in folder.glob("pixel_to_vertex_map_*.npz"))
        raise OfficialRenderError(f"missing {p2v_path}: the model localises at {res} px, the folder has {have}")
    p2v = _npz_views(p2v_path, views)
    bary = _npz_views(bary_path, views)
    lookup = _face_lookup(f, int(num_vertices))
    shape = (len(views), res, res)
    out_img = np.empty((*shape, 3), np.uint8)
    out_fid = np.empty(shape, np.int32)
    out_bary = np.zeros((*shape, 3), np.float32)
    out_depth = np.zeros(shape, np.float32)
    v_world = None if vertices is None else torch.as_tensor(np.asarray(vertices, np.float32))
    if v_world is not None and tuple(v_world.shape) != (int(num_vertices), 3):
        raise ValueError(f"vertices must be [{num_vertices},3], got {tuple(v_world.shape)}")
    for i, view in enumerate(views):
        for path, arr in ((p2v_path, p2v[view.name]), (bary_path, bary[view.name])):
            if arr.shape != (res, res, 3):
                raise OfficialRenderError(f"{path}[{view.name!r}]: expected shape ({res}, {res}, 3), "
                                          f"got {arr.shape}")
        fid = _map_to_face_ids(p2v[view.name], p2v_path, view.name, f, int(num_vertices), lookup)
        b = bary[view.name]
        if not np.issubdtype(b.dtype, np.floating):
            raise OfficialRenderError(f"{bary_path}[{view.name!r}]: weights must be floats, got dtype {b.dtype}")
        valid = fid >= 0
        bv = b[valid].astype(np.float32)
        if not np.isfinite(bv).all():
            raise OfficialRenderError(f"{bary_path}[{view.name!r}]: non-finite weights on foreground pixels")
        out_fid[i] = fid
        out_bary[i][valid] = bv
        out_img[i] = _read_image(folder / IMAGE_NAME.format(view=view.name), res)
        if v_world is not None:
            z = to_view(v_world, view)[:, 2].numpy()  # [N]
            out_depth[i][valid] = (z[f[fid[valid]]] * bv).sum(axis=1)
    return MultiViewRender(images=out_img, face_ids=out_fid, bary=out_bary, depth=out_depth, valid=out_fid >= 0,
                           views=views, resolution=res, meta={"source": "official", "folder": str(folder)})


def official_body_views(root: str | Path, body_model, resolution: int = 1024,
                        views: tuple[View, ...] = HUMAN_VIEWS, lift_mode: str = "soft",
                        fill_unseen: bool = False) -> CanonicalViews:
    """The authors' renders of the canonical body with camera conditioning and lifter, like
    ``canonical_body_views`` (``body_model`` must be SMPL-H or SMPL: the maps index its 6890 vertices)."""
    vertices = body_model.canonical_vertices()
    faces = np.asarray(body_model.faces, dtype=np.int64)
    render = load_official_body_render(root, faces, len(vertices), vertices=vertices, views=views,
                                       resolution=resolution)
    lifter = Lifter(render.face_ids, render.bary, faces, len(vertices), mode=lift_mode, fill_unseen=fill_unseen,
                    vertices=vertices)
    return CanonicalViews(render, cam_params(views), lifter, vertices, faces, np.zeros(3, np.float32), 1.0)
