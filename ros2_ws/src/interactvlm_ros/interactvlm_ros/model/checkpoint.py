"""Loading and saving InteractVLM weights, offline only.

* Official release directories (HF ``save_pretrained`` layout of transformers 4.31: ``config.json`` with
  ``model_type="llava"``, ``pytorch_model-0000X-of-0000N.bin`` + index or ``*.safetensors``, the LLaMA
  sentencepiece tokenizer + ``added_tokens.json``) plus a local CLIP ViT-L/14 directory (``model.clip_dir``).
* Our own directories: ``config.json`` (``format: interactvlm-config-1``), ``model.safetensors`` (everything,
  vision tower included), the tokenizer file named by the config.

The key check is strict: missing, unexpected and wrong-shaped tensors are reported together in one message.
``rotary_emb.inv_freq`` buffers (saved by transformers 4.31, absent in newer files) are ignored either way.
Every file read is checked against its sha256 first (:mod:`interactvlm_ros.model.integrity`: ``digests.json``
written by :func:`save_pretrained`, or digests recorded on the first load of an official release). A file that
cannot be parsed (truncated or corrupt weights, bad JSON, bad tokenizer) is a one-line :class:`CheckpointError`
naming the file. Nothing here downloads anything.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch

from interactvlm_ros.files.atomic import atomic_path, atomic_write_text
from interactvlm_ros.model.configuration import (
    PRESET_NAMES,
    PRESETS_DIR,
    InteractVLMConfig,
    ModelConfigError,
    VisionConfig,
    config_from_official,
    is_official_config,
    load_preset,
    resolve_model_name,
    vision_from_clip_dir,
)
from interactvlm_ros.model.integrity import MANIFEST_NAME, DigestCheck, IntegrityError, write_manifest
from interactvlm_ros.model.interactvlm import VISION_TOWER_PREFIX, InteractVLMForCausalLM
from interactvlm_ros.model.tokenizer import PromptTokenizer, load_tokenizer
from interactvlm_ros.model.vision import VisionTower

CONFIG_FORMAT = "interactvlm-config-1"
IGNORED_SUFFIXES = ("rotary_emb.inv_freq",)
NOPARTS_ANSWER = "Sure, [SEG]."


class CheckpointError(RuntimeError):
    """A checkpoint directory is incomplete, corrupt or does not match the architecture; the message (one line)
    says what and where."""


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: " + " ".join(str(exc).split())


@contextmanager
def _reading(path: Path, what: str) -> Iterator[None]:
    """Turn whatever a parser raises on a bad file into a :class:`CheckpointError` naming ``path``."""
    try:
        yield
    except (CheckpointError, ModelConfigError, IntegrityError):
        raise
    except Exception as exc:  # noqa: BLE001 - safetensors, torch, tokenizers and json raise many kinds
        raise CheckpointError(f"{path}: unreadable {what} ({_one_line(exc)}); restore it (re-download the "
                              "release or re-save the model)") from None


def _ignored(key: str) -> bool:
    return key.endswith(IGNORED_SUFFIXES)


@dataclass
class KeyReport:
    """Result of comparing expected (model) tensors with a checkpoint's tensors."""

    matched: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    shape_mismatch: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.shape_mismatch)

    def counts(self) -> dict[str, int]:
        return {"matched": len(self.matched), "missing": len(self.missing), "unexpected": len(self.unexpected),
                "shape_mismatch": len(self.shape_mismatch)}

    def message(self, source: str, limit: int = 12) -> str:
        """One readable paragraph naming the problems (first ``limit`` of each kind)."""
        def some(items):
            shown = ", ".join(str(i) for i in items[:limit])
            return shown + (f", … (+{len(items) - limit} more)" if len(items) > limit else "")
        parts = [f"{source}: checkpoint does not match the architecture "
                 f"({len(self.matched)} tensors matched)."]
        if self.missing:
            parts.append(f"missing {len(self.missing)}: {some(self.missing)}.")
        if self.unexpected:
            parts.append(f"unexpected {len(self.unexpected)}: {some(self.unexpected)}.")
        if self.shape_mismatch:
            parts.append(f"wrong shape {len(self.shape_mismatch)}: " + some(
                [f"{k} is {list(got)} in the checkpoint, model expects {list(want)}"
                 for k, got, want in self.shape_mismatch]) + ".")
        return " ".join(parts)


def compare_keys(expected: dict[str, tuple[int, ...]], found: dict[str, tuple[int, ...]]) -> KeyReport:
    """Compare name->shape maps; ``rotary_emb.inv_freq`` keys are ignored on both sides."""
    exp = {k: tuple(v) for k, v in expected.items() if not _ignored(k)}
    got = {k: tuple(v) for k, v in found.items() if not _ignored(k)}
    report = KeyReport()
    for k in sorted(exp):
        if k not in got:
            report.missing.append(k)
        elif got[k] != exp[k]:
            report.shape_mismatch.append((k, got[k], exp[k]))
        else:
            report.matched.append(k)
    report.unexpected = sorted(set(got) - set(exp))
    return report


def read_manifest(path: str | Path) -> dict[str, tuple[int, ...]]:
    """A ``key<TAB>shape`` manifest (reference/official_checkpoint_keys/*.tsv) -> name->shape."""
    out: dict[str, tuple[int, ...]] = {}
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        cols = line.split("\t")
        if len(cols) < 2:
            raise CheckpointError(f"{path}:{n}: expected 'key<TAB>shape', got {line!r}")
        out[cols[0]] = tuple(int(s) for s in cols[1].split(",") if s.strip())
    return out


def model_shapes(model: InteractVLMForCausalLM, include_vision_tower: bool = False) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.checkpoint_state_dict(include_vision_tower).items()}


# --------------------------------------------------------------------------------------------- weight files
INDEX_AND_SINGLE = (("model.safetensors.index.json", "model.safetensors"),
                    ("pytorch_model.bin.index.json", "pytorch_model.bin"))


def weight_index(directory: Path) -> Path | None:
    """The index file :func:`weight_files` follows, if any (the safetensors one wins over the .bin one)."""
    for index_name, single in INDEX_AND_SINGLE:
        if (directory / index_name).is_file():
            return directory / index_name
        if (directory / single).is_file():
            return None
    return None


def weight_files(directory: Path) -> list[Path]:
    """The weight shards of a directory (safetensors preferred, then .bin), via the index when present."""
    index = weight_index(directory)
    if index is not None:
        with _reading(index, "weight index (JSON with a weight_map)"):
            names = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        missing = [n for n in names if not (directory / n).is_file()]
        if missing:
            raise CheckpointError(f"{directory}: {index.name} lists shard(s) that are not there: {missing}")
        return [directory / n for n in names]
    for _, single in INDEX_AND_SINGLE:
        if (directory / single).is_file():
            return [directory / single]
    found = sorted(p.name for p in directory.glob("*.safetensors")) or sorted(p.name for p in directory.glob("*.bin"))
    if found:
        return [directory / n for n in found]
    raise CheckpointError(f"{directory}: no weights (expected model.safetensors, model-*.safetensors + index, "
                          "pytorch_model.bin or pytorch_model-*.bin + index)")


def read_shard(path: Path) -> dict[str, torch.Tensor]:
    """All tensors of one shard on CPU (``.bin`` memory-mapped, loaded with ``weights_only``)."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        with _reading(path, "safetensors file"):
            return load_file(str(path), device="cpu")
    with _reading(path, "torch weight file"):
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError:
            return torch.load(path, map_location="cpu", weights_only=True)


def shard_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Names and shapes of a shard without reading the data where the format allows (safetensors)."""
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with _reading(path, "safetensors file"), safe_open(str(path), framework="pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    return {k: tuple(v.shape) for k, v in read_shard(path).items()}


def load_weights(model: InteractVLMForCausalLM, files: list[Path], include_vision_tower: bool,
                 source: str) -> KeyReport:
    """Strict-check then copy the shards into ``model`` (dtype/device of the model's tensors are kept)."""
    found: dict[str, tuple[int, ...]] = {}
    for f in files:
        found.update(shard_shapes(f))
    report = compare_keys(model_shapes(model, include_vision_tower), found)
    if not report.ok:
        raise CheckpointError(report.message(source))
    targets = model.checkpoint_state_dict(include_vision_tower)
    with torch.no_grad():
        for f in files:
            for k, v in read_shard(f).items():
                if not _ignored(k):
                    targets[k].copy_(v.to(targets[k].dtype))
    return report


# --------------------------------------------------------------------------------------------- loading
@dataclass
class LoadedModel:
    model: InteractVLMForCausalLM
    tokenizer: PromptTokenizer
    source: str
    official: bool


def resolve_dtype(precision: str, device: torch.device) -> torch.dtype:
    """``auto`` = fp32 on CPU, bf16 on CUDA; fp16/bf16 on CPU are allowed but slow."""
    if precision == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    table = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    if precision not in table:
        raise CheckpointError(f"model.precision must be auto, fp32, fp16 or bf16; got {precision!r}")
    return table[precision]


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise CheckpointError("model.device is 'cuda' but torch sees no CUDA device (install a CUDA build of torch "
                              "or set model.device: cpu)")
    return torch.device(device)


def _build_on(cfg: InteractVLMConfig, device: torch.device, dtype: torch.dtype, vision_tower: bool):
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype if dtype.is_floating_point else old)
    try:
        model = InteractVLMForCausalLM.build(cfg, device=device, vision_tower=vision_tower)
    finally:
        torch.set_default_dtype(old)
    return model


def load_model(name: str, clip_dir: str = "", device: str | torch.device = "cpu",
               precision: str = "auto") -> LoadedModel:
    """A preset name (``tiny``: seeded random weights), ``default`` (the shipped model) or a checkpoint directory
    -> model + tokenizer."""
    name = resolve_model_name(name)
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    dtype = resolve_dtype(precision, dev)
    if name in PRESET_NAMES:
        cfg = load_preset(name)
        if cfg.tokenizer == "sentencepiece":
            raise CheckpointError(f"preset {name!r} is an architecture only: set model.name to a released "
                                  f"InteractVLM checkpoint directory (and model.clip_dir to a local CLIP ViT-L/14)")
        # random weights: initialise in fp32 (the same values whatever the precision), then cast
        model = InteractVLMForCausalLM.build(cfg, device="cpu").to(dev, dtype)
        return LoadedModel(model, load_tokenizer(cfg.tokenizer, PRESETS_DIR), f"preset {name}", official=False)
    directory = Path(name).expanduser()
    if not directory.is_dir():
        raise CheckpointError(f"model {name!r} is neither a preset ({', '.join(PRESET_NAMES)}) nor a directory")
    if not (directory / "config.json").is_file():
        raise CheckpointError(f"{directory}: no config.json (not a model directory)")
    try:
        return _load_directory(directory, clip_dir, dev, dtype)
    except (IntegrityError, ModelConfigError) as exc:
        raise CheckpointError(" ".join(str(exc).split())) from None


def _load_directory(directory: Path, clip_dir: str, dev: torch.device, dtype: torch.dtype) -> LoadedModel:
    """Check the digests, read config and tokenizer, build, load the weights; record the digests on a first
    load (official releases) only once all of that succeeded."""
    digests = DigestCheck(directory)
    digests.verify()
    config_path = directory / "config.json"
    data = read_config_json(config_path)
    files = weight_files(directory)
    if is_official_config(data):
        if not clip_dir:
            raise CheckpointError(f"{directory} is an official InteractVLM checkpoint: its CLIP vision tower is not "
                                  "in it. Set model.clip_dir to a local copy of openai/clip-vit-large-patch14")
        clip = Path(clip_dir).expanduser()
        clip_digests = DigestCheck(clip)
        clip_digests.verify()
        tokenizer_files = [n for n in OFFICIAL_TOKENIZER_FILES if (directory / n).is_file()]
        with _reading(directory, "sentencepiece tokenizer (" + ", ".join(OFFICIAL_TOKENIZER_FILES) + ")"):
            tokenizer = load_tokenizer("sentencepiece", directory)
        with _reading(clip / "config.json", "CLIP config.json"):
            vision = vision_from_clip_dir(clip)
        with _reading(config_path, "official model config"):
            cfg = config_from_official(data, vision, source=str(config_path), added_tokens=tokenizer.added)
        if "noparts" in directory.name.lower() and cfg.prompts.answer_template is None:
            cfg.prompts.answer_template = NOPARTS_ANSWER  # released "-noParts" model: trained on this answer only
        cfg.tokens.bos, cfg.tokens.eos, cfg.tokens.pad = tokenizer.bos_id, tokenizer.eos_id, tokenizer.pad_id
        _check_tokenizer(cfg, tokenizer, directory)
        digests.cover(_files_read(directory, files, tokenizer_files))
        clip_digests.cover(_files_read(clip, weight_files(clip), []))
        model = _build_on(cfg, dev, dtype, vision_tower=False)
        load_weights(model, files, include_vision_tower=False, source=str(directory))
        try:
            model.set_vision_tower(VisionTower.from_clip_dir(cfg.vision, clip_dir, dtype=dtype))
        except ValueError as exc:
            raise CheckpointError(" ".join(str(exc).split())) from None
        model.to(dtype)
        digests.record()
        clip_digests.record()
        return LoadedModel(model.eval(), tokenizer, str(directory), official=True)
    if data.get("format") != CONFIG_FORMAT:
        raise CheckpointError(f"{config_path}: neither an official InteractVLM config (model_type 'llava') nor ours "
                              f"(format '{CONFIG_FORMAT}')")
    with _reading(config_path, "model config"):
        cfg = InteractVLMConfig.from_dict(data, source=str(config_path))
    with _reading(directory / cfg.tokenizer, "tokenizer file"):
        tokenizer = load_tokenizer(cfg.tokenizer, directory)
    _check_tokenizer(cfg, tokenizer, directory)
    digests.cover(_files_read(directory, files, [cfg.tokenizer]))
    model = _build_on(cfg, dev, dtype, vision_tower=True)
    load_weights(model, files, include_vision_tower=True, source=str(directory))
    digests.record()
    return LoadedModel(model.eval(), tokenizer, str(directory), official=False)


OFFICIAL_TOKENIZER_FILES = ("tokenizer.model", "added_tokens.json", "tokenizer_config.json")


def read_config_json(path: Path) -> dict:
    """A model directory's ``config.json`` as a dict, or a one-line :class:`CheckpointError`."""
    with _reading(path, "JSON"):
        data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: not a model config (a JSON object), got {type(data).__name__}")
    return data


def _files_read(directory: Path, weights: list[Path], tokenizer_files: list[str]) -> list[str]:
    """Names (relative to ``directory``) of every file loading reads: config, weight index, shards, tokenizer."""
    index = weight_index(directory)
    return ["config.json", *([index.name] if index else []), *(f.name for f in weights), *tokenizer_files]


def _check_tokenizer(cfg: InteractVLMConfig, tok: PromptTokenizer, directory: Path) -> None:
    want = {"[SEG]": cfg.tokens.seg, "<im_start>": cfg.tokens.im_start, "<im_end>": cfg.tokens.im_end}
    if cfg.token_type == "Gen-Hu-Obj":
        want.update({"[HSEG]": cfg.tokens.hseg, "[OSEG]": cfg.tokens.oseg})
    bad = {t: (tok.added.get(t), i) for t, i in want.items() if tok.added.get(t) != i}
    if bad:
        raise CheckpointError(f"{directory}: tokenizer and config disagree on added token ids "
                              f"(token: (tokenizer, config)) {bad}")
    if tok.vocab_size > cfg.text.vocab_size:
        raise CheckpointError(f"{directory}: tokenizer has {tok.vocab_size} tokens but the model only "
                              f"{cfg.text.vocab_size} embeddings")


# --------------------------------------------------------------------------------------------- saving
def save_pretrained(model: InteractVLMForCausalLM, tokenizer: PromptTokenizer, directory: str | Path) -> Path:
    """Write ``config.json``, ``model.safetensors``, the tokenizer file and, last, ``digests.json`` (their sizes
    and sha256); every file atomically."""
    from safetensors.torch import save_file

    if not hasattr(tokenizer, "path"):
        raise CheckpointError("save_pretrained needs a tokenizers-JSON tokenizer (official sentencepiece "
                              "models are not re-saved)")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    cfg = model.config
    data = {"format": CONFIG_FORMAT, **cfg.to_dict()}
    data["tokenizer"] = Path(tokenizer.path).name
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.checkpoint_state_dict(True).items()
             if not _ignored(k)}
    with atomic_path(directory / "model.safetensors") as tmp:
        save_file(state, str(tmp), metadata={"format": "pt"})
    with atomic_path(directory / data["tokenizer"]) as tmp:
        shutil.copyfile(tokenizer.path, tmp)
    atomic_write_text(directory / "config.json", json.dumps(data, indent=2, sort_keys=True) + "\n")
    write_manifest(directory, ["model.safetensors", data["tokenizer"], "config.json"])
    return directory


def checkpoint_report(directory: str | Path) -> KeyReport:
    """Compare a checkpoint directory's tensors (names and shapes only) with the architecture its config.json
    describes, built on ``meta``; nothing is loaded into a model and no CLIP directory is needed."""
    from interactvlm_ros.model.tokenizer import _read_added_tokens

    directory = Path(directory).expanduser()
    config_path = directory / "config.json"
    if not config_path.is_file():
        raise CheckpointError(f"{directory}: no config.json (not a model directory)")
    data = read_config_json(config_path)
    official = is_official_config(data)
    if official:
        # the tower is not in the checkpoint; only its width (mm_hidden_size, the projector's input) matters here
        vision = VisionConfig(hidden_size=int(data.get("mm_hidden_size", 1024)))
        cfg = config_from_official(data, vision, source=str(config_path), added_tokens=_read_added_tokens(directory))
    else:
        cfg = InteractVLMConfig.from_dict(data, source=str(config_path))
    model = InteractVLMForCausalLM.build(cfg, device="meta", vision_tower=not official)
    found: dict[str, tuple[int, ...]] = {}
    for f in weight_files(directory):
        found.update(shard_shapes(f))
    return compare_keys(model_shapes(model, include_vision_tower=not official), found)


def meta_model(preset: str) -> InteractVLMForCausalLM:
    """The preset's architecture on the ``meta`` device (no memory, no weights) for key checks."""
    return InteractVLMForCausalLM.build(load_preset(preset), device="meta", vision_tower=False)


__all__ = ["MANIFEST_NAME", "VISION_TOWER_PREFIX", "CheckpointError", "KeyReport", "LoadedModel", "checkpoint_report",
           "compare_keys", "load_model", "meta_model", "model_shapes", "read_config_json", "read_manifest",
           "save_pretrained"]
