"""The synthetic interaction generator behind ``interactvlm synth``.

Per sample (deterministic from ``(seed, index)``): draw an interaction (uniform over the catalogue), a body shape,
pose the body, place the object, label contacts, render an RGB image from a random front-hemisphere camera with
random colours, light and background, and derive the 2D training masks on the canonical views (a face is contact
when ≥ 2 of its vertices are; valid = rendered pixels), as the method builds its DAMON masks.

With ``SynthConfig.scenes = "pairs"`` every sample shows two objects touched by different body parts (a
:class:`~interactvlm_ros.data.interactions.Combination`, uniform over :func:`build_combinations`): each object is
placed and labelled on its own, so semantic contact (one query per object) differs from binary contact (their
union). Such a dataset is for evaluation; its manifest says ``"scenes": "pairs"``.

Generalisation splits (``SynthConfig.hold_out`` / ``unseen_shapes``): samples of a held-out ``object/interaction``
pair go to the split ``heldout_pairs`` instead of train/val/test, so a model trained on the folder never saw that
pairing (it saw the object and the interaction apart); ``unseen_shapes`` extra samples (indices after ``num``)
show new procedural instances of the object classes (:func:`~interactvlm_ros.objects.generate.make_variant`,
written to ``unseen_objects/<label>.ply``; their rows say ``"mesh_dir": "unseen_objects"``) in the split
``unseen_shapes``.

Dataset folder::

    manifest.json                  format, seed, sizes, body topology, objects, splits, one row per sample
    images/000123.png              RGB image
    labels/000123.npz              human_contact [Nb] u1, object_contact [No] u1, human_masks [V,R,R] bool,
                                   object_masks [V,R,R] bool, body pose/shape, object placement, camera;
                                   pairs: human_contact = the union, and per object k human_contact_k [Nb],
                                   object_contact_k [No_k], object_masks_k, object_rotation_k/translation_k/scale_k
    canonical/human_valid.npy      [V,R,R] bool; canonical/<label>_valid.npy per object class
    unseen_objects/<label>.ply     the new object shapes of the ``unseen_shapes`` split (when asked for)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from interactvlm_ros.data.interactions import (
    CONTACT_DISTANCE,
    MAX_PENETRATION,
    Combination,
    Interaction,
    SceneContext,
    build_catalogue,
    build_combinations,
    contacts,
    mesh_components,
    penetration_depth,
    yaw_symmetry_order,
)
from interactvlm_ros.data.posing import PoseBuilder
from interactvlm_ros.files.atomic import atomic_write_bytes
from interactvlm_ros.render.cameras import HUMAN_VIEWS, View
from interactvlm_ros.render.canonical import canonical_body_views, object_views
from interactvlm_ros.render.render import render_views

FORMAT = "interactvlm-synthetic-contacts"
FORMAT_VERSION = 1
SPLIT_FRACTIONS = {"train": 0.75, "val": 0.10, "test": 0.15}
SCENE_KINDS = ("single", "pairs")
UNSEEN_DIR = "unseen_objects"
BASE_PARTS = ("head", "neck", "torso", "hips", "left upper arm", "right upper arm", "left forearm",
              "right forearm", "left hand", "right hand", "left thigh", "right thigh", "left lower leg",
              "right lower leg", "left foot", "right foot")
PART_COVERAGE = 0.10  # a part is named in the answer when >= 10 % of its vertices are in contact (the method's)

SKIN = np.array([[0.96, 0.80, 0.69], [0.88, 0.67, 0.52], [0.76, 0.57, 0.42], [0.55, 0.38, 0.26],
                 [0.36, 0.24, 0.16], [0.99, 0.87, 0.77]])


@dataclass
class SynthConfig:
    """Generator settings: ``image_size`` of the RGB images, ``mask_size`` of the canonical masks, ``scenes``
    ``"single"`` (one object per image) or ``"pairs"`` (two objects, different contacts); ``hold_out``
    ``object/interaction`` keys kept out of train/val/test and ``unseen_shapes`` samples with new object shapes
    (the generalisation splits, see the module docstring)."""

    num: int
    seed: int = 0
    image_size: int = 128
    mask_size: int = 256
    max_attempts: int = 8
    scenes: str = "single"
    hold_out: tuple[str, ...] = ()
    unseen_shapes: int = 0


def _atomic_npz(path: Path, arrays: dict) -> None:
    import io

    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def _atomic_png(path: Path, image: np.ndarray) -> None:
    import io

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())


def face_masks(vertex_contact: np.ndarray, faces: np.ndarray, face_ids: np.ndarray) -> np.ndarray:
    """2D masks ``[V,H,W]`` bool: pixels whose visible face has ≥ 2 contact vertices (background False)."""
    face_on = vertex_contact.astype(np.int32)[faces].sum(axis=1) >= 2
    out = np.zeros(face_ids.shape, dtype=bool)
    fg = face_ids >= 0
    out[fg] = face_on[face_ids[fg]]
    return out


def contact_parts(contact: np.ndarray, parts: dict[str, np.ndarray]) -> list[str]:
    """Body-part names whose vertices are at least :data:`PART_COVERAGE` in contact (the method's rule), else
    the most-covered part."""
    cover = {name: float(contact[parts[name]].mean()) for name in BASE_PARTS if name in parts and len(parts[name])}
    named = [name for name, c in cover.items() if c >= PART_COVERAGE]
    if not named and contact.any():  # small patches on densely meshed parts (Anny's hands): name the largest
        named = [max(cover, key=cover.get)]
    return named


class SceneRenderer:
    """The RGB image of one scene: body + object meshes, random camera, colours, light and background."""

    def __init__(self, body_faces: np.ndarray, parts: dict[str, np.ndarray], num_body_vertices: int):
        self.body_faces = body_faces
        self.n = num_body_vertices
        group = np.zeros(num_body_vertices, dtype=np.int64)  # 0 skin, 1 shirt, 2 trousers, 3 shoes
        for name in ("torso", "left upper arm", "right upper arm", "left forearm", "right forearm"):
            group[parts[name]] = 1
        for name in ("hips", "left thigh", "right thigh", "left lower leg", "right lower leg"):
            group[parts[name]] = 2
        for name in ("left foot", "right foot"):
            group[parts[name]] = 3
        self.group = group
        self.forearms = np.concatenate([parts["left forearm"], parts["right forearm"]])

    def render(self, body_vertices: np.ndarray, object_vertices: np.ndarray, object_faces: np.ndarray,
               size: int, rng: np.random.Generator, object_sizes: tuple[int, ...] = ()) -> tuple[np.ndarray, dict]:
        """RGB ``[size,size,3]`` and the camera; ``object_vertices`` may hold several objects one after another,
        ``object_sizes`` their vertex counts (each gets its own colour)."""
        palette = np.stack([SKIN[rng.integers(len(SKIN))], rng.uniform(0.05, 0.95, 3), rng.uniform(0.05, 0.8, 3),
                            rng.uniform(0.0, 0.3, 3)])
        group = self.group.copy()
        if rng.random() < 0.5:  # short sleeves
            group[self.forearms] = 0
        body_col = palette[group]
        if len(object_sizes) > 1:
            obj_col = np.concatenate([np.broadcast_to(rng.uniform(0.1, 1.0, 3), (n, 3)) for n in object_sizes])
        else:
            obj_col = np.broadcast_to(rng.uniform(0.1, 1.0, 3), object_vertices.shape)
        verts = np.concatenate([body_vertices, object_vertices]).astype(np.float32)
        faces = np.concatenate([self.body_faces, object_faces + self.n])
        lo, hi = verts.min(axis=0), verts.max(axis=0)
        verts = verts - (lo + hi) / 2.0
        body_height = float(np.ptp(body_vertices[:, 1]))
        # frame the body large; wide objects (tables) may reach the image border
        extent = max(body_height, 0.75 * float((hi - lo)[0]), float((hi - lo)[1]))
        fill = rng.uniform(0.85, 0.98)
        elev, azim = rng.uniform(-5.0, 30.0), rng.uniform(-60.0, 60.0)
        dist = 0.5 * extent / np.tan(np.radians(30.0)) / fill + float((hi - lo)[2]) / 4.0
        light = np.array([rng.uniform(-2, 2), rng.uniform(0.5, 3.0), rng.uniform(1.0, 3.0)]) * dist / 2.0
        view = View("synthetic", float(dist), float(elev), float(azim % 360.0), 0.0, 0.0,
                    tuple(float(x) for x in light))
        r = render_views(verts, faces, (view,), size, colors=np.concatenate([body_col, obj_col]).astype(np.float32))
        fg = r.valid[0]
        img = r.images[0].astype(np.float32) * rng.uniform(0.8, 1.15) * rng.uniform(0.9, 1.1, 3)
        bg = self._background(size, rng)
        out = np.where(fg[..., None], img, bg)
        out = out + rng.normal(0.0, rng.uniform(0.0, 6.0), out.shape)
        camera = {"dist": float(dist), "elev": float(elev), "azim": float(azim), "center": ((lo + hi) / 2).tolist()}
        return np.clip(out, 0, 255).astype(np.uint8), camera

    @staticmethod
    def _background(size: int, rng: np.random.Generator) -> np.ndarray:
        a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        t = np.linspace(0.0, 1.0, size)
        if rng.random() < 0.5:
            grad = t[:, None, None] * np.ones((1, size, 1))
        else:
            grad = t[None, :, None] * np.ones((size, 1, 1))
        bg = a * (1 - grad) + b * grad
        return bg + rng.normal(0.0, rng.uniform(2.0, 15.0), (size, size, 3))


class SyntheticGenerator:
    """Generates samples for a body model (Anny) and an object library."""

    def __init__(self, body_model, library, config: SynthConfig, cache_dir: str | Path | None = None):
        if body_model.name != "anny":
            raise ValueError(f"the synthetic generator poses Anny bodies (bone names); got body model "
                             f"{body_model.name!r}")
        self.body = body_model
        self.library = library
        self.config = config
        if config.scenes not in SCENE_KINDS:
            raise ValueError(f"scenes must be one of {SCENE_KINDS}, got {config.scenes!r}")
        self.catalogue = [i for i in build_catalogue() if i.label in library]
        if not self.catalogue:
            raise ValueError(f"none of the generator's object classes is in the object library "
                             f"({', '.join(library.labels())})")
        self.combinations = [c for c in build_combinations() if all(i.label in library for i in c.parts)]
        if config.scenes == "pairs" and not self.combinations:
            raise ValueError("no two-object scene has both its objects in the object library")
        unknown = sorted(set(config.hold_out) - {i.key for i in self.catalogue})
        if unknown:
            raise ValueError(f"hold_out: no interaction {', '.join(unknown)} (known: "
                             f"{', '.join(i.key for i in self.catalogue)})")
        self.cache_dir = cache_dir
        self.meshes = {i.label: library.mesh(i.label) for i in self.catalogue}
        self.components = {label: mesh_components(m) for label, m in self.meshes.items()}
        self.yaw_orders = {label: yaw_symmetry_order(m.vertices) for label, m in self.meshes.items()}
        self.parts = body_model.part_vertex_ids()
        self.faces = np.asarray(body_model.faces, dtype=np.int64)
        with torch.no_grad():
            rest = body_model.forward().joints[0].cpu().numpy()
        self.rest_joints = rest
        self.parents = list(body_model.model.bone_parents)
        self.renderer = SceneRenderer(self.faces, self.parts, body_model.num_vertices)
        self.human_views = canonical_body_views(body_model, config.mask_size, cache_dir=cache_dir)
        self.object_views = {label: object_views(m.vertices, m.faces, config.mask_size)
                             for label, m in self.meshes.items()}

    def _shape(self, rng) -> np.ndarray:
        # offsets from the mid-range person: gender, age, muscle, weight, height, proportions
        lo = np.array([-0.5, -0.15, -0.35, -0.3, -0.3, -0.3])
        hi = np.array([0.5, 0.25, 0.35, 0.3, 0.3, 0.3])
        return rng.uniform(lo, hi).astype(np.float32)

    def _start(self, index: int) -> tuple[np.random.Generator, Interaction | Combination]:
        """Sample ``index``'s RNG and its interaction, or its combination with ``scenes="pairs"`` (that RNG's
        first draw)."""
        rng = np.random.default_rng([self.config.seed, index])
        if self.config.scenes == "pairs":
            return rng, self.combinations[int(rng.integers(len(self.combinations)))]
        return rng, self.catalogue[int(rng.integers(len(self.catalogue)))]

    def interaction_at(self, index: int) -> Interaction | Combination:
        """The interaction (a combination with ``scenes="pairs"``) that sample ``index`` shows, without generating
        it."""
        return self._start(index)[1]

    def _overlap(self, placed: list[tuple[Interaction, np.ndarray]]) -> bool:
        """Whether two placed objects interpenetrate by more than :data:`MAX_PENETRATION`."""
        for a, (ia, va) in enumerate(placed):
            for ib, vb in placed[a + 1:]:
                if max(penetration_depth(vb, va, self.components[ia.label]),
                       penetration_depth(va, vb, self.components[ib.label])) > MAX_PENETRATION:
                    return True
        return False

    def sample(self, index: int) -> dict:
        """One sample as arrays + metadata (raises RuntimeError if no valid placement is found). Per object:
        ``objects`` = [{interaction, human_contact, object_contact, object_masks, object_rotation,
        object_translation, object_scale}]; one object: those keys at the top level too; ``human_contact`` /
        ``human_masks`` / ``parts`` are over all objects."""
        rng, scene = self._start(index)
        acts = scene.parts if isinstance(scene, Combination) else (scene,)
        for _attempt in range(self.config.max_attempts):
            pb = PoseBuilder(self.body.joint_names, self.parents, self.rest_joints)
            scene.pose(pb, rng)
            pose = pb.pose_vector()
            shape = self._shape(rng)
            with torch.no_grad():
                out = self.body.forward(pose=torch.from_numpy(pose)[None], shape=torch.from_numpy(shape)[None])
            verts = out.vertices[0].cpu().numpy().astype(np.float64)
            joints = {n: j for n, j in zip(self.body.joint_names, out.joints[0].cpu().numpy(), strict=True)}
            placements, placed = [], []
            for act in acts:
                mesh = self.meshes[act.label]
                ctx = SceneContext(verts, self.parts, mesh, self.components[act.label], joints)
                placement = act.place(ctx, rng).without_symmetric_yaw(self.yaw_orders[act.label])
                placements.append(placement)
                placed.append((act, placement.apply(np.asarray(mesh.vertices, dtype=np.float64))))
            if any(penetration_depth(verts, v, self.components[a.label]) > MAX_PENETRATION for a, v in placed):
                continue
            if len(placed) > 1 and self._overlap(placed):
                continue
            labels = [contacts(verts, self.faces, v, np.asarray(self.meshes[a.label].faces), CONTACT_DISTANCE,
                               seed=int(rng.integers(1 << 30))) for a, v in placed]
            if any(h.sum() < 10 or o.sum() < 3 for h, o in labels):
                continue
            offsets = np.cumsum([0] + [len(v) for _, v in placed])
            obj_f = np.concatenate([np.asarray(self.meshes[a.label].faces) + off
                                    for (a, _), off in zip(placed, offsets, strict=False)])
            image, camera = self.renderer.render(verts, np.concatenate([v for _, v in placed]), obj_f,
                                                 self.config.image_size, rng,
                                                 object_sizes=tuple(len(v) for _, v in placed))
            human = np.any([h for h, _ in labels], axis=0)
            objects = [{"interaction": a, "human_contact": h, "object_contact": o,
                        "object_masks": face_masks(o, np.asarray(self.meshes[a.label].faces),
                                                   self.object_views[a.label].render.face_ids),
                        "object_rotation": p.rotation, "object_translation": p.translation, "object_scale": p.scale,
                        "parts": contact_parts(h, self.parts)}
                       for (a, _), (h, o), p in zip(placed, labels, placements, strict=True)]
            sample = {"interaction": scene, "image": image, "human_contact": human,
                      "human_masks": face_masks(human, self.faces, self.human_views.render.face_ids),
                      "pose": pose, "shape": shape, "camera": camera, "parts": contact_parts(human, self.parts),
                      "objects": objects}
            if len(objects) == 1:
                sample.update({k: objects[0][k] for k in ("object_contact", "object_masks", "object_rotation",
                                                          "object_translation", "object_scale")})
            return sample
        raise RuntimeError(f"sample {index}: no valid placement for {scene.key} in "
                           f"{self.config.max_attempts} attempts")

    def write_sample(self, index: int, out: Path) -> dict:
        """Generate sample ``index``, write its image and labels under ``out``; returns its manifest row (without
        the split)."""
        s = self.sample(index)
        sid = f"{index:06d}"
        _atomic_png(out / "images" / f"{sid}.png", s["image"])
        arrays = {"human_contact": s["human_contact"].astype(np.uint8)}
        if isinstance(s["interaction"], Combination):
            arrays.update({"human_masks": s["human_masks"], "pose": s["pose"], "shape": s["shape"]})
            for k, o in enumerate(s["objects"]):
                arrays.update({f"human_contact_{k}": o["human_contact"].astype(np.uint8),
                               f"object_contact_{k}": o["object_contact"].astype(np.uint8),
                               f"object_masks_{k}": o["object_masks"], f"object_rotation_{k}": o["object_rotation"],
                               f"object_translation_{k}": o["object_translation"],
                               f"object_scale_{k}": o["object_scale"]})
        else:
            arrays.update({
                "object_contact": s["object_contact"].astype(np.uint8),
                "human_masks": s["human_masks"], "object_masks": s["object_masks"],
                "pose": s["pose"], "shape": s["shape"], "object_rotation": s["object_rotation"],
                "object_translation": s["object_translation"], "object_scale": s["object_scale"]})
        _atomic_npz(out / "labels" / f"{sid}.npz", arrays)
        scene = s["interaction"]
        row = {"id": sid, "image": f"images/{sid}.png", "labels": f"labels/{sid}.npz"}
        if isinstance(scene, Combination):
            row.update({"object": "+".join(a.label for a in scene.parts), "interaction": scene.key,
                        "description": scene.description, "parts": s["parts"],
                        "objects": [{"object": o["interaction"].label, "interaction": o["interaction"].name,
                                     "parts": o["parts"]} for o in s["objects"]]})
        else:
            row.update({"object": scene.label, "interaction": scene.name, "description": scene.description,
                        "parts": s["parts"]})
        row["camera"] = s["camera"]
        return row

    def write(self, out_dir: str | Path, progress: bool = True, workers: int = 1, build=None) -> Path:
        """Generate ``config.num`` samples into ``out_dir`` (created); returns the manifest path.

        With ``workers > 1`` the samples are generated by that many processes, each with its own generator made
        by ``build()`` (a picklable callable returning a ``SyntheticGenerator`` of the same config). Every sample
        depends only on ``(seed, index)``, so the folder is byte-identical to a one-process run.
        """
        out = Path(out_dir)
        (out / "images").mkdir(parents=True, exist_ok=True)
        (out / "labels").mkdir(parents=True, exist_ok=True)
        (out / "canonical").mkdir(parents=True, exist_ok=True)
        np.save(out / "canonical" / "human_valid.npy", self.human_views.render.valid)
        for label, views in self.object_views.items():
            np.save(out / "canonical" / f"{label}_valid.npy", views.render.valid)
        n = self.config.num
        order = np.random.default_rng([self.config.seed, 1 << 20]).permutation(n)
        n_test = int(round(n * SPLIT_FRACTIONS["test"]))
        n_val = int(round(n * SPLIT_FRACTIONS["val"]))
        split_of = {}
        for rank, idx in enumerate(order):
            split_of[int(idx)] = "test" if rank < n_test else "val" if rank < n_test + n_val else "train"
        bar = tqdm(total=n, desc="synth", unit="sample", disable=not progress)
        if workers > 1 and n > 1:
            if build is None:
                raise ValueError("write(workers > 1) needs build, a picklable callable that makes the generator")
            rows = _write_parallel(build, out, n, workers, bar)
        else:
            rows = []
            for i in range(n):
                rows.append(self.write_sample(i, out))
                bar.update()
        bar.close()
        held = set(self.config.hold_out)
        rows = [{**row, "split": "heldout_pairs" if f"{row['object']}/{row['interaction']}" in held
                 else split_of[int(row["id"])]} for row in rows]
        unseen = None
        if self.config.unseen_shapes > 0:
            unseen = self._unseen_generator(out)
            for j in range(self.config.unseen_shapes):
                row = unseen.write_sample(n + j, out)
                rows.append({**row, "split": "unseen_shapes", "mesh_dir": UNSEEN_DIR})
        manifest = {
            "format": FORMAT, "version": FORMAT_VERSION, "seed": self.config.seed, "num_samples": n,
            "image_size": self.config.image_size, "mask_size": self.config.mask_size,
            "contact_distance_m": CONTACT_DISTANCE,
            "body_model": self.body.name, "num_body_vertices": int(self.body.num_vertices),
            "topology_hash": self.body.topology_hash,
            "human_views": [v.name for v in HUMAN_VIEWS],
            "objects": {label: {"mesh_id": self.library.mesh_id(label), "num_vertices": int(len(m.vertices))}
                        for label, m in self.meshes.items()},
            "interactions": [{"object": i.label, "name": i.name, "description": i.description}
                             for i in self.catalogue],
            "splits": {k: [r["id"] for r in rows if r["split"] == k] for k in SPLIT_FRACTIONS},
            "samples": rows,
        }
        if held:
            manifest["splits"]["heldout_pairs"] = [r["id"] for r in rows if r["split"] == "heldout_pairs"]
            manifest["hold_out"] = sorted(held)
        if unseen is not None:
            manifest["splits"]["unseen_shapes"] = [r["id"] for r in rows if r["split"] == "unseen_shapes"]
            manifest["unseen_objects"] = {
                label: {"mesh_id": unseen.library.mesh_id(label), "num_vertices": int(len(m.vertices)),
                        "file": f"{UNSEEN_DIR}/{label}.ply"} for label, m in unseen.meshes.items()}
        if self.config.scenes == "pairs":
            manifest["scenes"] = "pairs"
            manifest["combinations"] = [{"key": c.key, "description": c.description} for c in self.combinations]
        path = out / "manifest.json"
        atomic_write_bytes(path, json.dumps(manifest, indent=1).encode())
        return path


    def _unseen_generator(self, out: Path) -> SyntheticGenerator:
        """A generator of the same settings over new procedural instances of this one's object classes (drawn
        from the seed), their meshes written to ``out/unseen_objects``."""
        from dataclasses import replace

        from interactvlm_ros.objects import ObjectLibrary
        from interactvlm_ros.objects.generate import make_variant, write_mesh

        folder = (out / UNSEEN_DIR).resolve()
        folder.mkdir(parents=True, exist_ok=True)
        for label in self.meshes:
            write_mesh(make_variant(label, self.config.seed), folder / f"{label}.ply")
        library = ObjectLibrary.from_entries([f"{label}:{folder / label}.ply" for label in self.meshes],
                                             asset_dirs=[folder])
        return SyntheticGenerator(self.body, library, replace(self.config, hold_out=(), unseen_shapes=0),
                                  cache_dir=self.cache_dir)


_WORKER_GENERATOR: SyntheticGenerator | None = None


def _init_worker(build) -> None:
    global _WORKER_GENERATOR
    torch.set_num_threads(1)
    _WORKER_GENERATOR = build()


def _write_chunk(indices: list[int], out: Path) -> list[dict]:
    return [_WORKER_GENERATOR.write_sample(i, out) for i in indices]


def _write_parallel(build, out: Path, n: int, workers: int, bar) -> list[dict]:
    """Samples ``0..n-1`` written by ``workers`` spawned processes in chunks; rows in index order."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    chunk = max(1, min(50, n // (4 * workers)))
    chunks = [list(range(i, min(n, i + chunk))) for i in range(0, n, chunk)]
    rows: dict[int, dict] = {}
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
                             initargs=(build,)) as pool:
        futures = [pool.submit(_write_chunk, c, out) for c in chunks]
        for fut in as_completed(futures):
            done = fut.result()
            rows.update((int(row["id"]), row) for row in done)
            bar.update(len(done))
    return [rows[i] for i in range(n)]
