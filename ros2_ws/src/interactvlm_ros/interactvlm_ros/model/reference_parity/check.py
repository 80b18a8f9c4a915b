"""Run the project on the golden fixtures and compare every stage with the authors' code (``model parity``).

The fixtures (``tests/model/fixtures/reference_parity/``, written by its ``make_golden.py`` under transformers
4.31 with the reference code) hold each tiny model's ``config.json`` and tokenizer files as the reference saved
them, the key manifests, and the reference's outputs (``golden.npz``). Here the release directories are
re-created without the reference: every weight is ``seeded_array(name, shape)`` for the manifest's names, saved
as ``model.safetensors`` next to the copied config and tokenizer; the project then loads them with its
official-checkpoint loader and runs every mode through ``ContactPredictor`` on the same synthetic inputs
(``inputs``):

* ``ids`` / ``tokens``: prompt ids (teacher-forced: up to the contact token) and the greedy tokens with the
  contact token forced at step ``force_at`` — exact equality;
* ``contact_state`` (the last-layer hidden state predicting the contact token), ``gamma`` (Γ), ``featlift``
  (camera-gated tokens; the joint model's after its splitter half), ``lowres_logits``, ``mask_logits``,
  ``vertex_probs`` (the lift of those logits) and ``predict`` (what ``predict``/``predict_object``/``predict_2d``
  return end to end), and per render set ``sam_embeddings``, ``cam_params`` and the projected CLIP tokens:
  max |project - reference| and that over max |reference| (the relative error the tolerance applies to).
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from interactvlm_ros.model.checkpoint import load_model
from interactvlm_ros.model.predictor import OBJECT_COND_DIST, ContactPredictor, RenderSet
from interactvlm_ros.model.reference_parity import inputs
from interactvlm_ros.model.reference_parity.seeded import seeded_array
from interactvlm_ros.model.sam.sam import postprocess_masks
from interactvlm_ros.render.cameras import HUMAN_VIEWS, OBJECT_VIEWS, cam_params
from interactvlm_ros.render.lift import Lifter

FP32_TOLERANCE = 1e-4  # relative: max|diff| / max|reference| per stage
BF16_TOLERANCE = 0.15  # bf16 vs the fp32 run, relative per stage (measured worst 0.10; docs/model-and-checkpoints.md)
FIXTURES_RELATIVE = Path("tests") / "model" / "fixtures" / "reference_parity"


class ParityError(RuntimeError):
    """The fixtures are missing or unreadable."""


def default_fixtures() -> Path:
    """The fixtures of this checkout (the package is installed from ``<checkout>/ros2_ws/src/interactvlm_ros``)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / FIXTURES_RELATIVE
        if (candidate / "golden.npz").is_file():
            return candidate
    raise ParityError(f"no {FIXTURES_RELATIVE}/golden.npz above {here}; pass the fixtures folder (--fixtures)")


@dataclass
class StageResult:
    """One compared stage of one run (``run`` = ``human.tf``, ``semantic.gen``, ...; ``row`` = object index)."""

    run: str
    row: int
    stage: str
    kind: str           # "exact" (ids, tokens) or "float"
    ok: bool
    max_abs: float = 0.0
    max_rel: float = 0.0
    detail: str = ""


# ------------------------------------------------------------------------------------------- release dirs
def _save_safetensors(manifest: dict[str, list[int]], path: Path) -> None:
    from safetensors.torch import save_file

    save_file({k: torch.from_numpy(seeded_array(k, shape)) for k, shape in manifest.items()}, str(path),
              metadata={"format": "pt"})


def write_releases(fixtures: Path, meta: dict, out: Path) -> tuple[dict[str, Path], Path]:
    """Each model's release directory (copied config + tokenizer files, seeded ``model.safetensors``) and the
    CLIP directory, under ``out``."""
    clip = out / "clip"
    clip.mkdir(parents=True, exist_ok=True)
    for f in (fixtures / "clip").iterdir():
        (clip / f.name).write_bytes(f.read_bytes())
    _save_safetensors(meta["clip_manifest"], clip / "model.safetensors")
    dirs = {}
    for name, info in meta["models"].items():
        d = out / name
        d.mkdir(parents=True, exist_ok=True)
        for f in (fixtures / name).iterdir():
            (d / f.name).write_bytes(f.read_bytes())
        (d / "tokenizer.model").write_bytes((fixtures / "tokenizer.model").read_bytes())
        _save_safetensors(info["manifest"], d / "model.safetensors")
        dirs[name] = d
    return dirs, clip


@contextmanager
def _private_cache(root: Path):
    """Digests of the temporary releases and SAM embeddings go to ``root``, not the user's cache."""
    old = os.environ.get("INTERACTVLM_CACHE_DIR")
    os.environ["INTERACTVLM_CACHE_DIR"] = str(root)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("INTERACTVLM_CACHE_DIR", None)
        else:
            os.environ["INTERACTVLM_CACHE_DIR"] = old


# ------------------------------------------------------------------------------------------- project side
def _render_set(kind: str, size: int) -> RenderSet:
    s = inputs.render_set(kind, size)
    views = HUMAN_VIEWS if kind == "human" else OBJECT_VIEWS
    cams = cam_params(views) if kind == "human" else cam_params(views, dist_override=OBJECT_COND_DIST)
    lifter = Lifter(s["face_ids"], s["bary"], s["faces"], int(s["num_vertices"]))
    return RenderSet(s["images"], torch.from_numpy(cams), lifter, f"reference-parity:{kind}",
                     int(s["num_vertices"]))


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().cpu().numpy()


@torch.no_grad()
def project_outputs(meta: dict, releases: dict[str, Path], clip: Path, device: str, precision: str,
                    cache: Path) -> dict[str, np.ndarray]:
    """Every golden key's value as the project computes it (same names, stored the same way)."""
    size = int(meta["render_size"])
    force_at = int(meta["force_at"])
    photo = inputs.photo()
    sets = {k: _render_set(k, size) for k in ("human", "object")}
    out: dict[str, np.ndarray] = {}

    def put(key: str, value, stored_as: str = "") -> None:
        stage = stored_as or key.rsplit(".", 1)[-1]
        out[key] = inputs.stored(stage, value if isinstance(value, np.ndarray) else _np(value))

    for model_name, ckpt in releases.items():
        loaded = load_model(str(ckpt), str(clip), device, precision)
        model = loaded.model
        pred = ContactPredictor(model, loaded.tokenizer, body_model=None, cache_dir=str(cache))
        pred._body_views = sets["human"]  # the synthetic renders stand in for the canonical body's
        encoded = pred.encode(photo)
        put(f"{model_name}.image_tokens", encoded.image_embeds)
        for run in [r for r in meta["runs"] if r["model"] == model_name]:
            mode, labels = run["mode"], [x["object"] for x in run["rows"]]
            if run["how"] == "tf":
                # the prompt ends "ASSISTANT: Sure," whichever contact token follows ([SEG], [HSEG], [OSEG])
                pred.set_answer("Sure, [SEG].")
                pred.force_contact_at = None
            else:
                pred.set_answer("generate", max_new_tokens=force_at + 2)
                pred.force_contact_at = force_at
            res, _ = pred.contact_states(encoded, labels, mode)
            col = 1 if (model.is_joint and mode == "object") else 0
            states = res.contact_states[:, col]
            gamma = model.contact_embeddings(states)
            for i, label in enumerate(labels):
                row = f"{run['name']}[{i}]"
                put(f"{row}.ids", np.asarray(pred._prompt_ids(mode, label)))
                if run["how"] == "gen":
                    put(f"{row}.tokens", np.asarray(res.tokens[i][:force_at + 1]))
                put(f"{row}.contact_state", states[i])
                put(f"{row}.gamma", gamma[i])
            if mode == "image2d":
                sam = model.sam
                emb, input_hw = encoded.sam_embedding(sam, model.dtype)
                put(f"{model_name}.photo.sam_embeddings", emb)
                sparse, dense = sam.prompt_encoder(text_embeds=gamma[:, None, :])
                low, _ = sam.mask_decoder(emb.to(sparse.dtype), sam.prompt_encoder.get_dense_pe().to(sparse.dtype),
                                          sparse, dense[:1], multimask_output=False)
                logits = sam.postprocess_masks(low[:, 0].float(), input_hw, photo.shape[:2])
                probs = pred.predict_2d(encoded, labels)
                for i in range(len(labels)):
                    row = f"{run['name']}[{i}]"
                    put(f"{row}.lowres_logits", low[i])
                    put(f"{row}.mask_logits", logits[i:i + 1])
                    put(f"{row}.predict", probs.contacts[i].view_masks, stored_as="mask_logits")
                continue
            views = sets[mode]
            emb = pred.render_embeddings(views).to(model.dtype)
            cams = views.cam_params.to(model.device, model.dtype)
            put(f"{model_name}.{mode}.sam_embeddings", emb)
            put(f"{model_name}.{mode}.cam_params", views.cam_params)
            mv = model.branch_mvloc(mode, size) if model.is_joint else model.mvloc(size)
            tokens = model.cam_pose_encoder(gamma, cams)
            if model.is_joint:
                tokens = mv.split(tokens)
            low = mv.low_res_logits(gamma, emb, cams)
            logits = postprocess_masks(low.float(), model.sam.image_size, (size, size), (size, size))
            lifter = views.lifter
            lifted = lifter(logits) if mode == "human" else lifter.lift_above(logits)
            if mode == "human":
                final = [c.human_probs for c in pred.predict(encoded, labels).contacts]
            else:
                final = [pred._predict_on_object(encoded, label, lambda v=views: v, "").contacts[0].object_probs
                         for label in labels]
            for i in range(len(labels)):
                row = f"{run['name']}[{i}]"
                put(f"{row}.featlift", tokens[i])
                put(f"{row}.lowres_logits", low[i])
                put(f"{row}.mask_logits", logits[i])
                put(f"{row}.vertex_probs", lifted[i])
                put(f"{row}.predict", np.asarray(final[i], np.float32))
    return out


# ------------------------------------------------------------------------------------------- comparison
def _reference_for(key: str, golden) -> np.ndarray | None:
    """The golden array a project key is compared with (``predict`` = the lifted probabilities; in 2D the
    sigmoid of the mask logits)."""
    if key in golden.files:
        return golden[key]
    head, stage = key.rsplit(".", 1)
    if stage == "predict":
        if f"{head}.vertex_probs" in golden.files:
            return golden[f"{head}.vertex_probs"]
        if f"{head}.mask_logits" in golden.files:
            return (1.0 / (1.0 + np.exp(-golden[f"{head}.mask_logits"].astype(np.float64)))).astype(np.float32)
    return None


def compare(project: dict[str, np.ndarray], golden, tolerance: float) -> list[StageResult]:
    """One :class:`StageResult` per golden key (a key the project did not produce fails)."""
    keys = sorted(set(golden.files) | set(project))
    results = []
    for key in keys:
        head, stage = key.rsplit(".", 1)
        run, row = (head.split("[")[0], int(head.split("[")[1].rstrip("]"))) if "[" in head else (head, -1)
        ref = _reference_for(key, golden)
        got = project.get(key)
        if ref is None or got is None:
            results.append(StageResult(run, row, stage, "float", False,
                                       detail="missing on the project side" if got is None else "no golden"))
            continue
        if stage in ("ids", "tokens"):
            same = ref.shape == got.shape and bool((ref == got).all())
            detail = "" if same else f"project {got.tolist()[-8:]} vs reference {ref.tolist()[-8:]}"
            results.append(StageResult(run, row, stage, "exact", same, detail=detail))
            continue
        if ref.shape != got.shape:
            results.append(StageResult(run, row, stage, "float", False,
                                       detail=f"shape {list(got.shape)} vs {list(ref.shape)}"))
            continue
        d = float(np.abs(got.astype(np.float64) - ref.astype(np.float64)).max()) if ref.size else 0.0
        scale = float(np.abs(ref.astype(np.float64)).max()) if ref.size else 0.0
        rel = d / scale if scale else d
        results.append(StageResult(run, row, stage, "float", bool(rel <= tolerance), d, rel))
    return results


def summarize(results: list[StageResult]) -> dict:
    """Per run (mode.tf/gen) and stage: worst max_abs / max_rel over the rows, all ok."""
    table: dict[str, dict[str, dict]] = {}
    for r in results:
        cell = table.setdefault(r.run, {}).setdefault(r.stage, {"kind": r.kind, "max_abs": 0.0, "max_rel": 0.0,
                                                                 "ok": True, "rows": 0})
        cell["max_abs"] = max(cell["max_abs"], r.max_abs)
        cell["max_rel"] = max(cell["max_rel"], r.max_rel)
        cell["ok"] = cell["ok"] and r.ok
        cell["rows"] += 1
        if r.detail:
            cell["detail"] = r.detail
    return table


def run_parity(fixtures: str | Path | None = None, device: str = "cpu", precision: str = "fp32",
               tolerance: float = FP32_TOLERANCE, against: str = "reference") -> dict:
    """Load the fixtures' models with the project, run every mode, compare with the reference's outputs.

    ``against="fp32"`` compares with the project's own fp32 run instead (the bf16 check: same code, only the
    precision differs). Returns ``{"ok", "device", "precision", "tolerance", "against", "modes": {run:
    {stage: {max_abs, max_rel, ok, ...}}}, "failures": [...]}``.
    """
    fixtures = Path(fixtures) if fixtures else default_fixtures()
    if not (fixtures / "golden.npz").is_file() or not (fixtures / "meta.json").is_file():
        raise ParityError(f"{fixtures}: no golden.npz/meta.json (regenerate with make_golden.py)")
    meta = json.loads((fixtures / "meta.json").read_text())
    golden = np.load(fixtures / "golden.npz")
    tf32 = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False  # fp32 means fp32 on CUDA
    try:
        with tempfile.TemporaryDirectory(prefix="interactvlm-parity-") as tmp, _private_cache(Path(tmp) / "cache"):
            releases, clip = write_releases(fixtures, meta, Path(tmp) / "releases")
            project = project_outputs(meta, releases, clip, device, precision, Path(tmp) / "cache")
            if against == "fp32":
                base = project_outputs(meta, releases, clip, device, "fp32", Path(tmp) / "cache32")
                golden = _Golden(base)
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32
    results = compare(project, golden, tolerance)
    return {"ok": all(r.ok for r in results), "device": device, "precision": precision, "tolerance": tolerance,
            "against": against, "reference": meta.get("reference", {}), "compared": len(results),
            "modes": summarize(results), "failures": [asdict(r) for r in results if not r.ok]}


class _Golden:
    """A dict of arrays with ``np.load``'s ``files``/``[]`` interface (the project's fp32 run as the baseline)."""

    def __init__(self, arrays: dict[str, np.ndarray]):
        self._arrays = arrays
        self.files = sorted(arrays)

    def __getitem__(self, key: str) -> np.ndarray:
        return self._arrays[key]


__all__ = ["BF16_TOLERANCE", "FP32_TOLERANCE", "ParityError", "StageResult", "compare", "default_fixtures",
           "project_outputs", "run_parity", "summarize", "write_releases"]
