"""The authors' data.zip renders: a folder written in their exact layout (PNG per view, per-view arrays in
pixel_to_vertex_map_<R>.npz / bary_coords_map_<R>.npz, -1 on background as PyTorch3D leaves it) is read into a
MultiViewRender + Lifter, the lift equals the reference's HumanContact3DPredictor formula on those maps, the
predictor uses it with model.render_dir, and every missing or misshaped file is named in the error."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from synthetic_smplx import synthetic_smpl_arrays, write_synthetic_smpl

from interactvlm_ros.render import HUMAN_VIEWS, render_views
from interactvlm_ros.render.official_renders import (
    OfficialRenderError,
    find_render_folder,
    load_official_body_render,
    official_body_views,
)

RES = 48


@pytest.fixture(scope="module")
def smplh_mesh():
    d = synthetic_smpl_arrays("smplh")
    return d["v_template"].astype(np.float32), d["f"].astype(np.int64)


def write_data_zip_layout(root: Path, vertices, faces, res: int, views=HUMAN_VIEWS) -> Path:
    """``root/data/hcontact_vitruvian/`` as the authors' data.zip has it, made by our renderer."""
    folder = root / "data" / "hcontact_vitruvian"
    folder.mkdir(parents=True)
    r = render_views(vertices, faces, views, res, colors="normals")
    p2v, bary = {}, {}
    for i, view in enumerate(views):
        fid = r.face_ids[i]
        m = np.full((res, res, 3), -1, np.int64)
        m[fid >= 0] = faces[fid[fid >= 0]]
        b = np.full((res, res, 3), -1.0, np.float32)
        b[fid >= 0] = r.bary[i][fid >= 0]
        p2v[view.name], bary[view.name] = m, b
        Image.fromarray(r.images[i]).save(folder / f"body_render_norm_{view.name}.png")
    np.savez_compressed(folder / f"pixel_to_vertex_map_{res}.npz", **p2v)
    np.savez_compressed(folder / f"bary_coords_map_{res}.npz", **bary)
    return folder


def reference_human_lift(logits: np.ndarray, p2v: list[np.ndarray], bary: list[np.ndarray], n: int) -> np.ndarray:
    """HumanContact3DPredictor.forward (post-FIX): per-view bary-weighted mean of sigmoid(clamp(logit)), then the
    mean over the views that reached the vertex, clamped to [0, 1]."""
    total, count = np.zeros(n), np.zeros(n)
    for lg, m, b in zip(logits, p2v, bary, strict=True):
        p = 1.0 / (1.0 + np.exp(-np.clip(lg.astype(np.float64), -20, 20))).reshape(-1)
        v, w = m.reshape(-1, 3), b.reshape(-1, 3).astype(np.float64)
        ok = ((v >= 0) & (v < n)).all(1)
        v, w, p = v[ok], w[ok], p[ok]
        votes, counts = np.zeros(n), np.zeros(n)
        for k in range(3):
            np.add.at(votes, v[:, k], w[:, k] * p)
            np.add.at(counts, v[:, k], w[:, k])
        seen = counts > 0
        votes[seen] /= counts[seen]
        total += votes
        count += seen
    out = np.where(count > 0, total / np.maximum(count, 1), 0.0)
    return np.clip(out, 0, 1)


def test_reads_the_data_zip_layout(smplh_mesh, tmp_path):
    v, f = smplh_mesh
    folder = write_data_zip_layout(tmp_path, v, f, RES)
    ours = render_views(v, f, HUMAN_VIEWS, RES, colors="normals")
    for root in (tmp_path, tmp_path / "data", folder):
        assert find_render_folder(root) == folder
    r = load_official_body_render(tmp_path, f, len(v), vertices=v, resolution=RES)
    assert r.meta["source"] == "official" and r.views == HUMAN_VIEWS and r.resolution == RES
    np.testing.assert_array_equal(r.face_ids, ours.face_ids)
    np.testing.assert_array_equal(r.images, ours.images)
    np.testing.assert_array_equal(r.valid, ours.valid)
    np.testing.assert_allclose(r.bary, ours.bary, atol=0)
    np.testing.assert_allclose(r.depth, ours.depth, rtol=1e-5, atol=1e-6)  # recomputed from the vertices
    assert (r.depth[~r.valid] == 0).all() and r.valid.mean() > 0.05


def test_lift_on_the_maps_equals_the_reference_formula(smplh_mesh, tmp_path):
    v, f = smplh_mesh
    folder = write_data_zip_layout(tmp_path, v, f, RES)
    body = _ArrayBody(v, f)
    cv = official_body_views(tmp_path, body, RES)
    np.testing.assert_allclose(cv.cam_params[1], [0.2, 315 / 360, 315 / 360, 0.5, 0.65], atol=1e-7)
    logits = torch.randn(len(HUMAN_VIEWS), RES, RES, generator=torch.Generator().manual_seed(0)) * 4
    with np.load(folder / f"pixel_to_vertex_map_{RES}.npz") as zm, np.load(folder / f"bary_coords_map_{RES}.npz") as zb:
        p2v = [zm[view.name] for view in HUMAN_VIEWS]
        bary = [zb[view.name] for view in HUMAN_VIEWS]
    expected = reference_human_lift(logits.numpy(), p2v, bary, len(v))
    got = cv.lifter(logits).numpy()
    np.testing.assert_allclose(got, expected, atol=2e-6)
    assert (expected > 0).sum() > 500  # the maps reach many vertices


def test_predictor_uses_the_render_dir(tiny_model, tmp_path):
    """model.render_dir: ContactPredictor's body views are the folder's images and maps (the tiny model
    localises at 256 px, so the folder holds 256 px maps), for a real SMPL-H-format body model."""
    pytest.importorskip("smplx")
    from interactvlm_ros.body import load_body_model
    from interactvlm_ros.model.predictor import ContactPredictor

    write_synthetic_smpl(tmp_path / "models", kind="smplh")
    body = load_body_model("smplh", model_dir=tmp_path / "models")
    res = tiny_model.model.config.render_resolution
    folder = write_data_zip_layout(tmp_path / "zip", body.canonical_vertices(), np.asarray(body.faces, np.int64),
                                   res)
    # mark the images so they cannot be confused with a fresh render of ours
    for view in HUMAN_VIEWS:
        p = folder / f"body_render_norm_{view.name}.png"
        img = np.asarray(Image.open(p)).copy()
        img[0, 0] = (1, 2, 3)
        Image.fromarray(img).save(p)
    pred = ContactPredictor.from_loaded(tiny_model, body_model=body, cache_dir=str(tmp_path / "cache"),
                                        render_dir=str(tmp_path / "zip"))
    views = pred.body_views()
    assert views.images.shape == (4, res, res, 3) and (views.images[:, 0, 0] == (1, 2, 3)).all()
    assert views.num_vertices == 6890 and views.lifter.num_vertices == 6890
    ours = ContactPredictor.from_loaded(tiny_model, body_model=body, cache_dir=str(tmp_path / "cache"))
    assert ours.body_views().content_key != views.content_key
    contact = pred.predict(np.full((64, 64, 3), 128, np.uint8), ["chair"]).contacts[0]
    assert contact.found and contact.human_probs.shape == (6890,)
    assert contact.view_masks.shape == (4, res, res)


class _ArrayBody:
    """The bits of a BodyModel official_body_views reads."""

    def __init__(self, v, f):
        self.faces, self._v = f, v

    def canonical_vertices(self):
        return self._v


# --- errors -------------------------------------------------------------------------------------------------------
def _fresh(tmp_path, smplh_mesh) -> Path:
    v, f = smplh_mesh
    return write_data_zip_layout(tmp_path, v, f, RES)


def _load(tmp_path, smplh_mesh, res=RES):
    v, f = smplh_mesh
    return load_official_body_render(tmp_path, f, len(v), resolution=res)


def _rewrite(path: Path, **changes):
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    for k, val in changes.items():
        if val is None:
            arrays.pop(k)
        else:
            arrays[k] = val
    np.savez_compressed(path, **arrays)


def test_no_folder_names_the_places_tried(tmp_path):
    with pytest.raises(OfficialRenderError, match="hcontact_vitruvian/pixel_to_vertex_map"):
        find_render_folder(tmp_path)


def test_missing_or_misshaped_files_are_named(smplh_mesh, tmp_path):
    folder = _fresh(tmp_path, smplh_mesh)
    p2v, bary = folder / f"pixel_to_vertex_map_{RES}.npz", folder / f"bary_coords_map_{RES}.npz"
    with pytest.raises(OfficialRenderError, match=f"pixel_to_vertex_map_64.npz.*localises at 64 px.*_{RES}.npz"):
        _load(tmp_path, smplh_mesh, res=64)

    png = folder / "body_render_norm_topback.png"
    png.rename(folder / "saved.png")
    with pytest.raises(OfficialRenderError, match="missing .*body_render_norm_topback.png"):
        _load(tmp_path, smplh_mesh)
    (folder / "saved.png").rename(png)

    rgb = np.asarray(Image.open(png))
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])).save(png)
    with pytest.raises(OfficialRenderError, match="body_render_norm_topback.png: expected an 8-bit RGB.*'RGBA'"):
        _load(tmp_path, smplh_mesh)
    Image.fromarray(rgb[:-1]).save(png)
    with pytest.raises(OfficialRenderError, match=f"topback.png: expected {RES}x{RES} pixels.*got {RES}x{RES - 1}"):
        _load(tmp_path, smplh_mesh)
    Image.fromarray(rgb).save(png)

    with np.load(p2v) as z:
        good = z["bottomback"]
    _rewrite(p2v, bottomback=None)
    with pytest.raises(OfficialRenderError, match=r"map_48.npz: no array for view\(s\) \['bottomback'\]"):
        _load(tmp_path, smplh_mesh)
    _rewrite(p2v, bottomback=good[:, :, :2])
    with pytest.raises(OfficialRenderError, match=r"pixel_to_vertex_map_48.npz\['bottomback'\]: expected shape"):
        _load(tmp_path, smplh_mesh)
    _rewrite(p2v, bottomback=good.astype(np.float32))
    with pytest.raises(OfficialRenderError, match="must be integers"):
        _load(tmp_path, smplh_mesh)
    bad = good.copy()
    bad[good[..., 0] >= 0] += 10000
    _rewrite(p2v, bottomback=bad)
    with pytest.raises(OfficialRenderError, match="vertex id .* but the body model has 6890 vertices"):
        _load(tmp_path, smplh_mesh)
    swapped = good.copy()
    swapped[..., [0, 1]] = good[..., [1, 0]]  # same vertices, another order: not a face of this topology
    _rewrite(p2v, bottomback=swapped)
    with pytest.raises(OfficialRenderError, match=r"bottomback'\]: pixel \(row \d+, col \d+\) shows vertices .* "
                                                  "not a face of the body model"):
        _load(tmp_path, smplh_mesh)
    _rewrite(p2v, bottomback=good)

    with np.load(bary) as z:
        gb = z["topfront"]
    _rewrite(bary, topfront=np.where(gb >= 0, np.nan, gb).astype(np.float32))
    with pytest.raises(OfficialRenderError, match=r"bary_coords_map_48.npz\['topfront'\]: non-finite"):
        _load(tmp_path, smplh_mesh)
    bary.write_bytes(b"not a zip")
    with pytest.raises(OfficialRenderError, match="bary_coords_map_48.npz: not a readable .npz"):
        _load(tmp_path, smplh_mesh)
    bary.unlink()
    with pytest.raises(OfficialRenderError, match="missing .*bary_coords_map_48.npz"):
        _load(tmp_path, smplh_mesh)
