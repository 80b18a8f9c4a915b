"""``interactvlm infer IMAGE --object NAME [--object NAME …] [--model DIR|PRESET] --out DIR``.

Writes, into ``--out``:

* ``contacts.npz`` — ``labels``, ``found``, ``human_probs [K,N]`` (NaN rows when not found), ``view_masks
  [K,V,H,W]``, and ``object_probs_<i>`` in object mode;
* ``contacts.json`` — the same per-vertex probabilities as lists, decoded texts, reasons, timings;
* ``body_<label>.ply`` — the canonical body coloured by contact (``object_<label>.ply`` in object mode);
* ``contacts.png`` — one figure: the input image, the 4 view masks over the renders, the coloured body from
  the front and the back (object mode: the coloured object from two sides).

Modes: ``human`` (default, semantic human contact, all objects in one batched call), ``object`` (contact on an
object mesh: ``--mesh FILE`` or the object library's mesh for the name) and ``2d`` (2D contact mask on the image).
Every file is written to a temporary name and renamed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from interactvlm_ros.cli.infer_reconstruction import add_arguments as add_recon_arguments
from interactvlm_ros.cli.infer_reconstruction import parse_intrinsics, read_depth, write_reconstruction
from interactvlm_ros.files.atomic import atomic_path, atomic_write_bytes, atomic_write_text
from interactvlm_ros.pipeline.contact_pipeline import ContactPipeline
from interactvlm_ros.pipeline.person_gate import PersonGate
from interactvlm_ros.render.contact_colors import contact_colors

TILE = 224


def add_parser(sub, common) -> None:
    p = sub.add_parser("infer", parents=[common], help="contact for one image: npz/json probabilities, coloured "
                       "PLY meshes and a PNG figure")
    p.add_argument("image", help="input image (any format PIL reads: 8/16-bit, grayscale, RGBA)")
    p.add_argument("--object", dest="objects", action="append", default=[], metavar="NAME",
                   help="object name to query (repeatable); default: the 'objects' parameter")
    p.add_argument("--model", default=None, metavar="DIR|PRESET", help="model directory or preset (model.name)")
    p.add_argument("--mode", choices=("human", "object", "2d"), default="human",
                   help="human contact (default), object contact on a mesh, or a 2D mask on the image")
    p.add_argument("--mesh", default=None, metavar="FILE", help="object mesh for --mode object (any trimesh "
                   "format); default: the object library's mesh for the first --object")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    add_recon_arguments(p)
    p.set_defaults(run=run)


def _slug(label: str) -> str:
    return re.sub(r"[^a-zA-Z0-9]+", "_", label).strip("_") or "object"


def read_image(path: str | Path) -> np.ndarray:
    """An image file as an array (PIL modes kept: L, I;16, RGB, RGBA…); the predictor normalises it."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("P", "CMYK", "YCbCr", "LA", "1"):
                im = im.convert("RGBA" if "transparency" in im.info or im.mode == "LA" else "RGB")
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(im)
                return arr.astype(np.uint16) if arr.max() <= 65535 else (arr >> 16).astype(np.uint16)
            if im.mode == "F":
                arr = np.asarray(im, np.float32)
                return np.clip(arr / max(float(arr.max()), 1e-6), 0, 1)
            return np.asarray(im)
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read image {path}: {exc}") from None


def _mesh_ply(vertices, faces, probs) -> bytes:
    import trimesh

    colors = (contact_colors(probs) * 255).astype(np.uint8)
    mesh = trimesh.Trimesh(vertices=np.asarray(vertices), faces=np.asarray(faces), vertex_colors=colors,
                           process=False)
    return mesh.export(file_type="ply")


def _side_renders(vertices, faces, probs, size: int) -> list[np.ndarray]:
    """The mesh coloured by contact from the front and the back (geometry renderer, unlit colours shaded)."""
    from interactvlm_ros.render.cameras import View
    from interactvlm_ros.render.render import render_views

    v = np.asarray(vertices, np.float32)
    v = v - (v.max(0) + v.min(0)) / 2
    v = v * (0.8 / max(float(np.abs(v).max()), 1e-9))  # any size fills the frame like the canonical body
    dist = 2.3
    views = (View("front", dist, 0.0, 0.0, light=(0.0, 0.0, 3.0)), View("back", dist, 0.0, 180.0,
                                                                      light=(0.0, 0.0, -3.0)))
    r = render_views(v, faces, views, size, colors=contact_colors(probs))
    return [img for img in r.images]


def _overlay(render: np.ndarray, mask: np.ndarray, rendered_only: bool = True) -> np.ndarray:
    from PIL import Image

    m = np.asarray(Image.fromarray((np.clip(mask, 0, 1) * 255).astype(np.uint8)).resize(render.shape[1::-1]),
                   np.float32)[..., None] / 255.0
    body = render.astype(np.int32).sum(-1, keepdims=True) < 765  # rendered (non-white) pixels
    if not rendered_only:
        body = np.ones_like(body)
    m = m * body
    gray = render.astype(np.float32).mean(-1, keepdims=True) * 0.8 + 40  # grey body so the red mask stands out
    gray = np.where(body, gray, 255.0)
    out = gray * (1 - 0.8 * m) + np.array([230, 20, 20], np.float32) * 0.8 * m
    return out.clip(0, 255).astype(np.uint8)


def _fit(img: np.ndarray, size: int = TILE) -> np.ndarray:
    from PIL import Image

    im = Image.fromarray(img)
    im.thumbnail((size, size))
    canvas = Image.new("RGB", (size, size), (255, 255, 255))
    canvas.paste(im, ((size - im.width) // 2, (size - im.height) // 2))
    return np.asarray(canvas)


def make_figure(image_rgb: np.ndarray, rows: list[dict], image_mask: bool = False) -> np.ndarray:
    """One row per object: input | 4 view masks over the renders | front | back (``image_mask``: input | the 2D
    mask over the image), with a caption."""
    from PIL import Image, ImageDraw

    caption_h = 34
    headers = ["input", "2D contact mask"] if image_mask else ["input", "view 1", "view 2", "view 3", "view 4",
                                                                "front", "back"]
    ncols = len(headers)
    fig = Image.new("RGB", (max(ncols * TILE, 3 * TILE), len(rows) * (TILE + caption_h)), (255, 255, 255))
    draw = ImageDraw.Draw(fig)
    for r, row in enumerate(rows):
        y = r * (TILE + caption_h)
        text = f"{row['label']}: " + (row["text"][:110] if row["found"] else f"no contact - {row['reason'][:100]}")
        draw.text((6, y + 4), text, fill=(0, 0, 0))
        if r == 0:
            legend = "" if image_mask else " (views: mask, front/back: per-vertex)"
            draw.text((6, y + 18), "   ".join(f"[{h}]" for h in headers) + "     red = contact probability" + legend,
                      fill=(90, 90, 90))
        tiles = [_fit(image_rgb)] + [_fit(t) for t in row["tiles"]]
        for c, tile in enumerate(tiles[:ncols]):
            fig.paste(Image.fromarray(tile), (c * TILE, y + caption_h))
    return np.asarray(fig)


def _shown_name(c, with_how: bool = True) -> str:
    """A contact's object as printed: the prompt name, or ``asked -> known (how)`` when the model's vocabulary
    mapped it (``name_match``), or the name as asked when the model does not know it."""
    if not c.found and c.name_match == "unknown":
        return c.asked
    if c.name_match in ("", "open vocabulary") or c.asked == c.label:
        return c.label
    return f"{c.asked} -> {c.label}" + (f" ({c.name_match})" if with_how else "")


def run(args) -> int:
    from PIL import Image

    from interactvlm_ros.model.vision import to_rgb_uint8
    from interactvlm_ros.serving.factory import load_predictor

    cfg = args.cfg
    if args.model:
        cfg = cfg.replace(model__name=args.model)
    objects = args.objects or list(cfg.objects.names)
    out = Path(args.out)
    try:
        image = read_image(args.image)
        rgb = to_rgb_uint8(image)
    except ValueError as exc:
        print(f"interactvlm infer: {exc}")
        return 2
    try:
        K, depth = parse_intrinsics(args.intrinsics), read_depth(args.depth)
    except ValueError as exc:
        print(f"interactvlm infer: {exc}")
        return 2
    predictor = load_predictor(cfg)  # a Triton client when inference.backend is triton
    recon = library = None
    if args.reconstruct:
        from interactvlm_ros.objects import ObjectLibrary
        from interactvlm_ros.pipeline.reconstruction import ReconStage

        library = ObjectLibrary.from_config(cfg)
        recon = ReconStage(cfg, body_model=predictor.body_model, library=library, track=False)
    obj_mesh, attempt = None, None
    if args.mode == "human":
        pipeline = ContactPipeline(predictor, library, recon, object_contact=recon is not None,
                                   person_gate=PersonGate.from_config(cfg, recon))
        try:
            run_ = pipeline.run(image, objects, K, depth)
        finally:
            pipeline.close()
        result, attempt = run_.contacts, run_.reconstruction
    elif args.mode == "2d":
        result = predictor.predict_2d(image, objects)
    else:
        label = objects[0]
        if args.mesh:
            from interactvlm_ros.objects.library import read_mesh_file

            obj_mesh, _ = read_mesh_file(Path(args.mesh), "--mesh {path}")
            mesh_id = Path(args.mesh).name
        else:
            from interactvlm_ros.objects import ObjectLibrary

            lib = ObjectLibrary.from_config(cfg)
            key = lib.lookup(label)
            if key is None:
                print(f"interactvlm infer: no mesh for {label!r} in the object library ({', '.join(lib.labels())});"
                      " pass --mesh FILE")
                return 2
            obj_mesh, mesh_id = lib.mesh(key), lib.mesh_id(key)
        result = predictor.predict_object(image, obj_mesh.vertices, obj_mesh.faces, label, mesh_id=mesh_id)

    body = predictor.body_model
    if body is None:  # the Triton client: the body topology is loaded here (same body.model as the server's)
        from interactvlm_ros.body import load_body_model

        body = load_body_model(cfg)
    arrays: dict[str, np.ndarray] = {"labels": np.array([c.label for c in result.contacts]),
                                     "found": np.array([c.found for c in result.contacts])}
    record = {"model": cfg.model.name, "mode": args.mode, "image": str(args.image),
              "body_model": result.body_model, "num_body_vertices": result.num_body_vertices,
              "timings_ms": result.timings_ms, "contacts": []}
    rows = []
    for i, c in enumerate(result.contacts):
        entry = {"label": c.label, "query": c.asked, "name_match": c.name_match, "text": c.text, "found": c.found,
                 "reason": c.reason, "object_mesh_id": c.object_mesh_id}
        row = {"label": _shown_name(c, with_how=False), "text": c.text, "found": c.found, "reason": c.reason,
               "tiles": []}
        if c.human_probs is not None:
            entry["human_probs"] = [round(float(p), 5) for p in c.human_probs]
        if c.object_probs is not None:
            entry["object_probs"] = [round(float(p), 5) for p in c.object_probs]
            arrays[f"object_probs_{i}"] = c.object_probs
        record["contacts"].append(entry)
        if c.found and args.mode != "2d":
            if c.view_masks is not None:  # a served result (inference.backend=triton) carries no view masks
                views = predictor.body_views() if args.mode == "human" else predictor.object_render_set(
                    obj_mesh.vertices, obj_mesh.faces)
                row["tiles"] = [_overlay(views.images[v], c.view_masks[v]) for v in range(len(c.view_masks))]
            if args.mode == "human":
                verts, faces, probs = body.canonical_vertices(), body.faces, c.human_probs
                name = f"body_{_slug(c.asked)}.ply"
            else:
                verts, faces, probs = obj_mesh.vertices, obj_mesh.faces, c.object_probs
                name = f"object_{_slug(c.asked)}.ply"
            ply = _mesh_ply(verts, faces, probs)
            atomic_write_bytes(out / name, ply)
            row["tiles"] += _side_renders(verts, faces, probs, TILE)
        elif c.found:
            row["tiles"] = [_overlay(rgb, c.view_masks[0], rendered_only=False)]
        rows.append(row)
    if args.mode == "human" and body is not None:
        arrays["human_probs"] = np.stack([c.human_probs if c.found else np.full(body.num_vertices, np.nan,
                                                                               np.float32) for c in result.contacts])
    masks = [c.view_masks for c in result.contacts if c.found and c.view_masks is not None]
    if masks and len({m.shape for m in masks}) == 1:
        arrays["view_masks"] = np.stack(masks)

    with atomic_path(out / "contacts.npz") as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
    atomic_write_text(out / "contacts.json", json.dumps(record) + "\n")
    figure = make_figure(rgb, rows, image_mask=args.mode == "2d")
    with atomic_path(out / "contacts.png") as tmp:
        Image.fromarray(figure).save(tmp, format="PNG")
    thr = float(cfg.contact.threshold)
    for c in result.contacts:
        probs = c.human_probs if c.human_probs is not None else c.object_probs
        if not c.found:
            status = f"not found ({c.reason})"
        elif probs is not None:
            status = f"{int((probs >= thr).sum())} of {len(probs)} vertices >= {thr}"
        else:
            status = f"{float((c.view_masks >= thr).mean()) * 100:.1f}% of pixels >= {thr}"
        print(f"{_shown_name(c)}: {c.text!r} -> {status}")
    print(f"wrote {out}/contacts.npz, contacts.json, contacts.png "
          f"({sum(result.timings_ms.values()):.0f} ms: " + ", ".join(
              f"{k} {v:.0f}" for k, v in result.timings_ms.items()) + ")")
    if recon is not None:
        if attempt is None:  # object / 2d mode: the people only
            try:
                attempt = recon.run(rgb, None, K, depth)
            finally:
                recon.close()
        return write_reconstruction(out, rgb, attempt)
    return 0
