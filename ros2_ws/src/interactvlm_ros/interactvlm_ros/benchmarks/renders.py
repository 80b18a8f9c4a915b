"""``interactvlm bench renders``: our renderer against PyTorch3D with the method's render settings, pixel by pixel.

Runs only where ``pytorch3d`` is importable (it is no dependency of the project: build it yourself, see
docs/model-and-checkpoints.md); elsewhere it reports ``skipped``. For the configured body (``body.model``, e.g.
``--set body.model=smplh --set body.model_dir=DIR``) and for Anny, each of the 4 human views is rendered at
1024 px, and the object library's mug (normalised, xyz colours) from the 4 object views, by

* PyTorch3D exactly as the authors' ``preprocess_data/render_mesh_utils.py`` does: ``look_at_view_transform``
  with ``T += (x, y, 0)``, default ``FoVPerspectiveCameras``, ``RasterizationSettings(1024, blur_radius 0,
  faces_per_pixel 1)``, ``HardPhongShader`` with one ``PointLights`` (ambient 0.5, diffuse 0.3, specular 0.2) at
  the view's light, ``TexturesVertex`` = (vertex normal + 1) / 2 (objects: ``0.8·xyz + 0.1``, per-axis bbox
  normalised), image ``(rgb * 255).astype(uint8)``;
* our ``render_views`` (same mesh, same views).

Figures per body: ``faceid_agreement`` (foreground pixels of either render whose face ids are equal; target
>= 0.995), ``color_mad_255`` (mean absolute colour difference over all pixels and channels, in grey levels;
target <= 2), the fraction of pixels more than 2 levels apart, the barycentric difference on agreeing pixels, and
``sam_rel_diff``: ``|E_ours - E_p3d| / |E_p3d|`` of the SAM ViT-H image embeddings of the two renders (random
seeded weights, real size; target <= 1e-3), per view. ``--quick`` embeds one view per mesh instead of four.
"""

from __future__ import annotations

import os
import time

import numpy as np
import torch

from interactvlm_ros.render.cameras import HUMAN_VIEWS, OBJECT_VIEWS, View
from interactvlm_ros.render.raycast import face_id_agreement
from interactvlm_ros.render.render import MultiViewRender, render_views

RESOLUTION = 1024
TARGETS = {"faceid_agreement": ">= 0.995", "color_mad_255": "<= 2.0", "sam_rel_diff_max": "<= 0.001"}


def pytorch3d_render(vertices: np.ndarray, faces: np.ndarray, views: tuple[View, ...], resolution: int,
                     colors: str = "normals") -> MultiViewRender:
    """The authors' ``render_mesh`` + ``project_vertices_and_create_mask`` for each view (module docstring);
    ``colors``: ``normals`` (bodies) or ``xyz`` (objects: per-axis bbox-normalised xyz, ``0.8·c + 0.1``, as
    their ``generate_sam_inp_objs``). PyTorch3D's CPU rasterizer is the naive one (every pixel tests every
    face): ~1-3 min per 1024 px view of a 14k-27k-face body on 2 shared cores."""
    from pytorch3d.renderer import (
        FoVPerspectiveCameras,
        HardPhongShader,
        MeshRasterizer,
        PointLights,
        RasterizationSettings,
        TexturesVertex,
        look_at_view_transform,
    )
    from pytorch3d.structures import Meshes

    v = torch.as_tensor(np.asarray(vertices, np.float32))
    f = torch.as_tensor(np.asarray(faces).astype(np.int64))
    if colors == "normals":  # the authors' compute_vertex_normals: area-weighted face normals per vertex
        fn = torch.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]], dim=1)
        n = torch.zeros_like(v)
        for k in range(3):
            n.index_add_(0, f[:, k], fn)
        tex = (torch.nn.functional.normalize(n, p=2, dim=1) + 1) / 2
    elif colors == "xyz":
        lo, hi = v.min(dim=0).values, v.max(dim=0).values
        tex = (v - lo) / (hi - lo) * 0.8 + 0.1
    else:
        raise ValueError(f"colors must be 'normals' or 'xyz', got {colors!r}")
    mesh = Meshes(verts=[v], faces=[f], textures=TexturesVertex(verts_features=tex[None]))
    shape = (len(views), resolution, resolution)
    out = MultiViewRender(images=np.empty((*shape, 3), np.uint8), face_ids=np.empty(shape, np.int32),
                          bary=np.zeros((*shape, 3), np.float32), depth=np.zeros(shape, np.float32),
                          valid=np.empty(shape, bool), views=tuple(views), resolution=resolution,
                          meta={"renderer": "pytorch3d"})
    for i, view in enumerate(views):
        R, T = look_at_view_transform(view.dist, view.elev, view.azim)
        T[0, 1] += view.y
        T[0, 0] += view.x
        cameras = FoVPerspectiveCameras(R=R, T=T)
        settings = RasterizationSettings(image_size=resolution, blur_radius=0.0, faces_per_pixel=1)
        rasterizer = MeshRasterizer(cameras=cameras, raster_settings=settings)
        lights = PointLights(ambient_color=[[0.5, 0.5, 0.5]], diffuse_color=[[0.3, 0.3, 0.3]],
                             specular_color=[[0.2, 0.2, 0.2]], location=[list(view.light)])
        shader = HardPhongShader(cameras=cameras, lights=lights)
        with torch.no_grad():  # MeshRenderer(rasterizer, shader)(mesh), keeping the fragments (one rasterisation)
            frags = rasterizer(mesh)
            images = shader(frags, mesh)
        out.images[i] = (images[0, ..., :3].numpy() * 255).astype(np.uint8)
        fid = frags.pix_to_face[0, ..., 0].numpy()
        out.face_ids[i] = fid
        out.valid[i] = fid >= 0
        out.bary[i][fid >= 0] = frags.bary_coords[0, ..., 0, :].numpy()[fid >= 0]
        out.depth[i][fid >= 0] = frags.zbuf[0, ..., 0].numpy()[fid >= 0]
    return out


def compare(ours: MultiViewRender, ref: MultiViewRender) -> dict:
    """Pixel-by-pixel figures of two renders of the same mesh and views."""
    diff = np.abs(ours.images.astype(np.int16) - ref.images.astype(np.int16))
    same = (ours.face_ids == ref.face_ids) & (ref.face_ids >= 0)
    fg_either = (ours.face_ids >= 0) | (ref.face_ids >= 0)
    per_view = [round(face_id_agreement(ours.face_ids[i], ref.face_ids[i]), 6) for i in range(len(ours.views))]
    return {
        "faceid_agreement": round(face_id_agreement(ours.face_ids, ref.face_ids), 6),
        "faceid_agreement_per_view": per_view,
        "foreground_pixels": int(fg_either.sum()),
        "foreground_only_ours": int(((ours.face_ids >= 0) & (ref.face_ids < 0)).sum()),
        "foreground_only_pytorch3d": int(((ours.face_ids < 0) & (ref.face_ids >= 0)).sum()),
        "color_mad_255": round(float(diff.mean()), 4),
        "color_mad_255_foreground": round(float(diff[fg_either].mean()), 4),
        "color_max_abs_255": int(diff.max()),
        "pixels_over_2_levels": round(float((diff.max(-1) > 2)[fg_either].mean()), 6),
        "pixels_equal": round(float((diff.max(-1) == 0).mean()), 6),
        "bary_max_abs_same_face": round(float(np.abs(ours.bary - ref.bary)[same].max()) if same.any() else 0.0, 7),
        "depth_max_abs_same_face": round(float(np.abs(ours.depth - ref.depth)[same].max()) if same.any() else 0.0,
                                         7),
    }


def sam_relative_differences(sam, ours: np.ndarray, ref: np.ndarray) -> list[float]:
    """``|E(ours_v) - E(ref_v)| / |E(ref_v)|`` (Frobenius) per view of uint8 ``[V,H,W,3]`` images."""
    out = []
    with torch.no_grad():
        for a, b in zip(ours, ref, strict=True):
            e = sam.embed_images(np.stack([a, b]), batch_size=1)
            out.append(float((e[0] - e[1]).norm() / e[1].norm()))
    return out


def compare_mesh(sam, name: str, vertices, faces, views: tuple[View, ...], colors: str, sam_views: int) -> dict:
    """PyTorch3D vs ours for one mesh at ``RESOLUTION``: :func:`compare` figures, timings, SAM differences on the
    first ``sam_views`` views."""
    t0 = time.perf_counter()
    ref = pytorch3d_render(vertices, faces, views, RESOLUTION, colors=colors)
    t1 = time.perf_counter()
    ours = render_views(vertices, faces, views, RESOLUTION, colors=colors)
    t2 = time.perf_counter()
    row = compare(ours, ref)
    row.update(mesh=name, colors=colors, num_vertices=int(len(vertices)), num_faces=int(len(faces)),
               pytorch3d_ms_per_view=round((t1 - t0) * 1000 / len(views), 1),
               ours_ms_per_view=round((t2 - t1) * 1000 / len(views), 1))
    rel = sam_relative_differences(sam, ours.images[:sam_views], ref.images[:sam_views])
    row["sam_rel_diff"] = [round(r, 7) for r in rel]
    row["sam_views"] = [v.name for v in views[:sam_views]]
    return row


def run(cfg, args) -> dict:
    try:
        import pytorch3d  # noqa: F401
    except ImportError as exc:
        return {"skipped": f"pytorch3d is not importable ({exc}); build it to compare (docs/model-and-checkpoints.md)"}
    import pytorch3d as p3d

    from interactvlm_ros.body import load_body_model
    from interactvlm_ros.model.sam.sam import Sam
    from interactvlm_ros.objects.generate import build
    from interactvlm_ros.render.canonical import normalize_mesh

    quick = bool(getattr(args, "quick", False))
    bodies = [load_body_model(cfg)]
    if bodies[0].name != "anny":
        bodies.append(load_body_model("anny", cache_root=cfg.cache.dir))
    meshes = [(b.name, b.canonical_vertices(), np.asarray(b.faces, np.int64), HUMAN_VIEWS, "normals")
              for b in bodies]
    mug = build("mug")  # the object library's mug, normalised and coloured as the demo's object renders
    meshes.append(("object:mug", normalize_mesh(mug.vertices)[0], np.asarray(mug.faces, np.int64), OBJECT_VIEWS,
                   "xyz"))
    torch.manual_seed(0)
    sam = Sam.from_config("vit_h").eval()
    result: dict = {"pytorch3d_version": p3d.__version__, "resolution": RESOLUTION, "targets": TARGETS,
                    "sam": "vit_h, random weights (torch.manual_seed(0)), fp32", "torch_threads":
                    torch.get_num_threads(), "load_average_1min": round(os.getloadavg()[0], 2), "bodies": {}}
    worst = {"faceid_agreement": 1.0, "color_mad_255": 0.0, "sam_rel_diff_max": 0.0}
    for name, verts, faces, views, colors in meshes:
        row = compare_mesh(sam, name, verts, faces, views, colors, 1 if quick else len(views))
        result["bodies"][name] = row
        worst["faceid_agreement"] = min(worst["faceid_agreement"], row["faceid_agreement"])
        worst["color_mad_255"] = max(worst["color_mad_255"], row["color_mad_255"])
        worst["sam_rel_diff_max"] = max(worst["sam_rel_diff_max"], max(row["sam_rel_diff"]))
    result.update(worst)
    result["meets_targets"] = bool(worst["faceid_agreement"] >= 0.995 and worst["color_mad_255"] <= 2.0
                                   and worst["sam_rel_diff_max"] <= 1e-3)
    return result
