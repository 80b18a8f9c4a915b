"""Model configuration: one ``InteractVLMConfig`` built from a preset YAML, our own ``config.json``, or the
``config.json`` of an official InteractVLM release (HF ``save_pretrained`` layout, ``model_type="llava"``).

The config names every size the modules need (CLIP tower, LLaMA, SAM preset), the token ids of the added tokens,
the prompt questions/answer template and the render/mask resolutions of the MV-Loc stage.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

PRESETS_DIR = Path(__file__).resolve().parent / "presets"
PRESET_NAMES = ("tiny", "tiny-synth", "official-7b", "official-13b")
# ``model.name: default`` = the model shipped in the package, trained by ``make train-default`` (synthetic data).
DEFAULT_MODEL_NAME = "default"


def resolve_model_name(name: str) -> str:
    """``default`` → the shipped model directory (``interactvlm_ros/assets/default_model``); other names as given."""
    if name == DEFAULT_MODEL_NAME:
        return str(Path(__file__).resolve().parent.parent / "assets" / "default_model")
    return name

# CLIP ViT-L/14 image normalisation (openai/clip-vit-large-patch14 preprocessor_config.json values).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class ModelConfigError(ValueError):
    """A model config (preset, config.json) is missing a field or has a wrong value; the message names it."""


@dataclass
class VisionConfig:
    """CLIP ViT vision tower (``transformers.CLIPVisionConfig`` fields) and how its features are selected."""

    hidden_size: int = 1024
    intermediate_size: int = 4096
    num_hidden_layers: int = 24
    num_attention_heads: int = 16
    image_size: int = 224
    patch_size: int = 14
    layer_norm_eps: float = 1e-5
    hidden_act: str = "quick_gelu"
    select_layer: int = -2          # mm_vision_select_layer: hidden state of the penultimate layer
    select_feature: str = "patch"   # CLS token dropped
    patch_stem: str = "linear"      # "linear": CLIP's p×p patch conv; "conv": ConvPatchStem (small towers)
    image_mean: tuple[float, ...] = CLIP_MEAN
    image_std: tuple[float, ...] = CLIP_STD

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2

    @property
    def num_features(self) -> int:
        """Length P of the selected feature sequence ``[B,P,C]``: the patches, plus CLS unless it is dropped."""
        return self.num_patches + (self.select_feature != "patch")


@dataclass
class TextConfig:
    """LLaMA language model (``transformers.LlamaConfig`` fields)."""

    hidden_size: int = 5120
    intermediate_size: int = 13824
    num_hidden_layers: int = 40
    num_attention_heads: int = 40
    num_key_value_heads: int = 40
    vocab_size: int = 32003
    rms_norm_eps: float = 1e-5
    max_position_embeddings: int = 4096
    rope_theta: float = 10000.0


@dataclass
class TokenConfig:
    """Ids of the special and added tokens. ``image`` is the placeholder id spliced into CLIP embeddings."""

    bos: int = 1
    eos: int = 2
    pad: int = 0
    unk: int = 0
    seg: int = 32000
    im_start: int = 32001
    im_end: int = 32002
    hseg: int | None = None
    oseg: int | None = None
    im_patch: int | None = None
    image: int = -200


@dataclass
class PromptConfig:
    """The method's conversation template and questions (``{object}`` is replaced by the object name).

    ``answer_template``: None = generate the answer greedily; a string containing the contact token (e.g.
    ``"Sure, [SEG]."`` for the "noParts" checkpoints) = teacher-force it in one prefill pass, no generation.
    ``keep_underscores``: object names keep their underscores (``tennis_racket``), as the reference's run_demo
    passes file-name spellings (official checkpoints); otherwise underscores become spaces (our models).
    """

    system: str = ("A chat between a curious human and an artificial intelligence assistant. The assistant gives "
                   "helpful, detailed, and polite answers to the human's questions.")
    human_question: str = "Which body parts are in contact with the {object}? Segment these contact areas."
    object_question: str = ("\"What type of affordance does the human-object interaction suggest? Then, segment the "
                            "area on the {object} where the human is making contact.\",")
    image2d_question: str = ("Segment the area on the human's body that is in direct contact with the {object} in "
                             "this image.")
    answer_template: str | None = None
    max_new_tokens: int = 512
    max_object_chars: int = 64
    keep_underscores: bool = False


OBJECT_LIFTS = ("reference", "soft")


@dataclass
class InteractVLMConfig:
    """Everything needed to build an InteractVLM model.

    Attributes:
        name: preset name or a free label.
        vision, text, tokens, prompts: see the dataclasses above.
        sam: SAM size, ``{"preset": "vit_h"|"tiny", ...overrides}`` (see ``model/sam``).
        out_dim: Γ output size (SAM prompt embedding size, 256).
        num_views: rendered views per query (4).
        cam_conditioning: the model has FeatLift (``cam_pose_encoder``; official ``multiview_cam_cond``). Without
            it only the 2D mode runs.
        token_type: "Gen" (one ``[SEG]``) or "Gen-Hu-Obj" (joint model, ``[HSEG]``/``[OSEG]``).
        tokenizer: "sentencepiece" (official: tokenizer.model + added tokens in the checkpoint directory) or the
            file name of a ``tokenizers`` JSON next to the config (our own models).
        render_resolution: resolution of the canonical renders and of the Lifter maps (masks are resized to it).
        lift_fill_unseen: vertices no canonical view sees take the lifted value of the nearest seen vertex
            (``render.lift.Lifter``); off in the method, on for our default model (128 px renders).
        object_lift: how object masks are lifted to mesh vertices: "reference" (InteractVLM's
            ``ObjectMeshContact3DPredictor``: only pixels with probability > 0.3 vote; the official checkpoints) or
            "soft" (the human soft lift over every pixel; our own models, see ``render.lift``).
        seed: initialisation seed for random weights (presets without a checkpoint).
        object_classes: the object names the model was trained on (a closed vocabulary: other names are mapped
            onto them or refused, see ``model.object_names``), or None for an open vocabulary (the official
            checkpoints: any name is asked as typed).
    """

    name: str = "custom"
    vision: VisionConfig = field(default_factory=VisionConfig)
    text: TextConfig = field(default_factory=TextConfig)
    tokens: TokenConfig = field(default_factory=TokenConfig)
    prompts: PromptConfig = field(default_factory=PromptConfig)
    sam: dict[str, Any] = field(default_factory=lambda: {"preset": "vit_h"})
    out_dim: int = 256
    num_views: int = 4
    cam_conditioning: bool = True
    token_type: str = "Gen"
    tokenizer: str = "sentencepiece"
    render_resolution: int = 1024
    lift_fill_unseen: bool = False
    object_lift: str = "soft"
    seed: int = 0
    object_classes: list[str] | None = None

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["vision"]["image_mean"] = list(self.vision.image_mean)
        d["vision"]["image_std"] = list(self.vision.image_std)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> InteractVLMConfig:
        data = dict(data)
        sub = {"vision": VisionConfig, "text": TextConfig, "tokens": TokenConfig, "prompts": PromptConfig}
        kwargs: dict[str, Any] = {}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known - {"format"})
        if unknown:
            raise ModelConfigError(f"{source}: unknown model config key(s) {unknown}; known: {sorted(known)}")
        for key, value in data.items():
            if key in sub:
                if not isinstance(value, dict):
                    raise ModelConfigError(f"{source}: '{key}' must be a mapping, got {type(value).__name__}")
                kwargs[key] = _build(sub[key], value, f"{source}: {key}")
            elif key != "format":
                kwargs[key] = value
        cfg = cls(**kwargs)
        cfg.validate(source)
        return cfg

    def validate(self, source: str = "config") -> None:
        if self.token_type not in ("Gen", "Gen-Hu-Obj"):
            raise ModelConfigError(f"{source}: token_type must be 'Gen' or 'Gen-Hu-Obj', got {self.token_type!r}")
        if self.token_type == "Gen-Hu-Obj" and (self.tokens.hseg is None or self.tokens.oseg is None):
            raise ModelConfigError(f"{source}: token_type 'Gen-Hu-Obj' needs tokens.hseg and tokens.oseg")
        ids = [i for i in (self.tokens.seg, self.tokens.im_start, self.tokens.im_end, self.tokens.hseg,
                           self.tokens.oseg) if i is not None]
        bad = [i for i in ids if not 0 <= i < self.text.vocab_size]
        if bad:
            raise ModelConfigError(f"{source}: token ids {bad} outside the vocabulary (vocab_size "
                                   f"{self.text.vocab_size})")
        if self.text.hidden_size % self.text.num_attention_heads:
            raise ModelConfigError(f"{source}: text.hidden_size must be divisible by text.num_attention_heads")
        if self.vision.patch_stem not in ("linear", "conv"):
            raise ModelConfigError(f"{source}: vision.patch_stem must be 'linear' or 'conv', got "
                                   f"{self.vision.patch_stem!r}")
        if self.vision.patch_stem == "conv" and self.vision.patch_size & (self.vision.patch_size - 1):
            raise ModelConfigError(f"{source}: vision.patch_stem 'conv' needs a power-of-two patch_size, got "
                                   f"{self.vision.patch_size}")
        if self.vision.image_size % self.vision.patch_size:
            raise ModelConfigError(f"{source}: vision.image_size must be a multiple of vision.patch_size")
        if "preset" not in self.sam:
            raise ModelConfigError(f"{source}: sam needs a 'preset' (vit_h or tiny)")
        if self.prompts.answer_template is not None and "[SEG]" not in self.prompts.answer_template:
            raise ModelConfigError(f"{source}: prompts.answer_template must contain [SEG], got "
                                   f"{self.prompts.answer_template!r}")
        if self.object_lift not in OBJECT_LIFTS:
            raise ModelConfigError(f"{source}: object_lift must be one of {OBJECT_LIFTS}, got {self.object_lift!r}")
        if self.render_resolution < 16:
            raise ModelConfigError(f"{source}: render_resolution too small ({self.render_resolution})")
        classes = self.object_classes
        if classes is not None and (not isinstance(classes, list) or not classes
                                    or not all(isinstance(c, str) and c.strip() for c in classes)):
            raise ModelConfigError(f"{source}: object_classes must be null or a list of object names, got "
                                   f"{classes!r}")

    @property
    def contact_token_ids(self) -> list[int]:
        """Token ids that carry a contact embedding ([SEG], or [HSEG]/[OSEG] for the joint model)."""
        if self.token_type == "Gen-Hu-Obj":
            return [self.tokens.hseg, self.tokens.oseg]
        return [self.tokens.seg]


def _build(klass, values: dict[str, Any], source: str):
    known = {f.name for f in fields(klass)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ModelConfigError(f"{source}: unknown key(s) {unknown}; known: {sorted(known)}")
    values = dict(values)
    for key in ("image_mean", "image_std"):
        if key in values:
            values[key] = tuple(float(v) for v in values[key])
    return klass(**values)


def load_preset(name: str) -> InteractVLMConfig:
    """The preset ``name`` (one of ``PRESET_NAMES``) from ``model/presets/<name>.yaml``."""
    path = PRESETS_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ModelConfigError(f"unknown model preset {name!r}; presets: {', '.join(PRESET_NAMES)} "
                               f"(or give a model directory)")
    data = yaml.safe_load(path.read_text())
    return InteractVLMConfig.from_dict(data, source=f"preset {name}")


# ---------------------------------------------------------------------------------------- official config.json
def is_official_config(data: dict[str, Any]) -> bool:
    """True for the ``config.json`` of an official InteractVLM release (LLaVA/LISA layout)."""
    return data.get("model_type") == "llava" or "InteractVLMForCausalLM" in data.get("architectures", [])


def config_from_official(data: dict[str, Any], vision: VisionConfig | None = None,
                         source: str = "config.json", added_tokens: dict[str, int] | None = None) -> InteractVLMConfig:
    """Map an official ``config.json`` (see reference official_checkpoint_keys/extras) to our config.

    ``vision`` comes from the local CLIP directory's config (the checkpoint does not hold the tower); ViT-L/14
    defaults otherwise. Two optional keys that releases do not have let derived checkpoints in the official
    layout use another SAM size: ``sam`` (``{"preset": "tiny"}``) and ``render_resolution``.
    ``added_tokens`` (the checkpoint tokenizer's added tokens) gives the ids of ``<im_start>``/``<im_end>``/
    ``<im_patch>``; without it the LISA values 32001/32002 are assumed.
    """
    required = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "vocab_size",
                "seg_token_idx")
    missing = [k for k in required if k not in data]
    if missing:
        raise ModelConfigError(f"{source}: official config lacks {missing}")
    vocab = int(data["vocab_size"])
    seg = int(data["seg_token_idx"])
    text = TextConfig(
        hidden_size=int(data["hidden_size"]), intermediate_size=int(data["intermediate_size"]),
        num_hidden_layers=int(data["num_hidden_layers"]), num_attention_heads=int(data["num_attention_heads"]),
        num_key_value_heads=int(data.get("num_key_value_heads") or data["num_attention_heads"]),
        vocab_size=vocab, rms_norm_eps=float(data.get("rms_norm_eps", 1e-6)),
        max_position_embeddings=int(data.get("max_position_embeddings", 2048)),
        rope_theta=float(data.get("rope_theta", 10000.0)))
    # LISA-13B-llama2: [SEG]=32000, <im_start>=32001, <im_end>=32002. LISA-7B-v1: <im_patch>=32000,
    # <im_start>=32001, <im_end>=32002, [SEG]=32003. Either way im_start/im_end are 32001/32002.
    tokens = TokenConfig(
        bos=int(data.get("bos_token_id", 1)), eos=int(data.get("eos_token_id", 2)),
        pad=int(data.get("pad_token_id", 0) or 0), seg=seg, im_start=32001, im_end=32002,
        hseg=data.get("hseg_token_idx"), oseg=data.get("oseg_token_idx"),
        im_patch=32000 if seg == 32003 else None)
    for name, attr in (("<im_start>", "im_start"), ("<im_end>", "im_end"), ("<im_patch>", "im_patch")):
        if added_tokens and name in added_tokens:
            setattr(tokens, attr, int(added_tokens[name]))
    vis = vision or VisionConfig()
    vis.select_layer = int(data.get("mm_vision_select_layer", -2))
    vis.select_feature = str(data.get("mm_vision_select_feature", "patch"))
    if int(data.get("mm_hidden_size", vis.hidden_size)) != vis.hidden_size:
        raise ModelConfigError(f"{source}: mm_hidden_size {data.get('mm_hidden_size')} does not match the CLIP "
                               f"tower hidden size {vis.hidden_size}")
    size = "13b" if text.hidden_size == 5120 else "7b" if text.hidden_size == 4096 else f"{text.hidden_size}d"
    question = str(data.get("hC_question_type", "parts"))
    cfg = InteractVLMConfig(
        name=f"official-{size}", vision=vis, text=text, tokens=tokens, prompts=PromptConfig(),
        sam=dict(data.get("sam") or {"preset": "vit_h"}), out_dim=int(data.get("out_dim", 256)),
        num_views=int(data.get("multiview_channels", 4)), token_type=str(data.get("token_type", "Gen")),
        cam_conditioning=bool(data.get("multiview_cam_cond", True)),
        tokenizer="sentencepiece", render_resolution=int(data.get("render_resolution", 1024)),
        object_lift="reference")
    cfg.prompts.keep_underscores = True  # run_demo: object_name = file name prefix, underscores kept
    if question == "noParts" or data.get("answer_template"):
        cfg.prompts.answer_template = str(data.get("answer_template") or "Sure, [SEG].")
    cfg.validate(source)
    return cfg


def vision_from_clip_dir(clip_dir: str | Path) -> VisionConfig:
    """CLIP tower sizes from a local CLIP directory's ``config.json`` (full CLIPModel or CLIPVisionModel)."""
    path = Path(clip_dir).expanduser() / "config.json"
    if not path.is_file():
        raise ModelConfigError(f"model.clip_dir: {path} not found (need a local CLIP ViT-L/14 directory with "
                               "config.json and weights, e.g. a copy of openai/clip-vit-large-patch14)")
    data = json.loads(path.read_text())
    vc = data.get("vision_config", data)
    return VisionConfig(
        hidden_size=int(vc.get("hidden_size", 1024)), intermediate_size=int(vc.get("intermediate_size", 4096)),
        num_hidden_layers=int(vc.get("num_hidden_layers", 24)),
        num_attention_heads=int(vc.get("num_attention_heads", 16)), image_size=int(vc.get("image_size", 224)),
        patch_size=int(vc.get("patch_size", 14)), layer_norm_eps=float(vc.get("layer_norm_eps", 1e-5)),
        hidden_act=str(vc.get("hidden_act", "quick_gelu")))


# ---------------------------------------------------------------------------------------- light-weight probing
def inspect_model_source(name: str, clip_dir: str = "") -> tuple[bool, str, str]:
    """What ``model.name`` (+ ``model.clip_dir``) resolves to, without importing torch.

    Returns ``(usable, detail, fix)`` for ``interactvlm doctor``.
    """
    name = resolve_model_name(name)
    if name in PRESET_NAMES:
        cfg = load_preset(name)
        if cfg.tokenizer == "sentencepiece":
            return (False, f"preset {name!r} is an architecture only (no weights)",
                    "download an InteractVLM release (registration at interactvlm.is.tue.mpg.de), set model.name to "
                    "its directory and model.clip_dir to a local CLIP ViT-L/14")
        tok = PRESETS_DIR / cfg.tokenizer
        if not tok.is_file():
            return False, f"preset {name!r}: tokenizer {tok} missing", "reinstall the package"
        return True, f"preset {name!r} (random weights: architecture and pipeline checks only)", ""
    path = Path(name).expanduser()
    fix = "point model.name at an InteractVLM checkpoint directory (config.json + weights) or a preset"
    if not path.is_dir():
        return False, f"{path}: not a directory and not a preset ({', '.join(PRESET_NAMES)})", fix
    config = path / "config.json"
    if not config.is_file():
        return False, f"{path}: no config.json", fix
    try:
        data = json.loads(config.read_text())
    except (OSError, ValueError) as exc:
        return False, f"{config}: unreadable ({exc})", fix
    weights = sorted(p.name for p in path.iterdir() if p.suffix in (".bin", ".safetensors"))
    if not weights:
        return False, f"{path}: no *.safetensors / *.bin weights", fix
    if is_official_config(data):
        if not (path / "tokenizer.model").is_file():
            return False, f"{path}: official checkpoint without tokenizer.model", "copy the release's tokenizer files"
        if not clip_dir or not (Path(clip_dir).expanduser() / "config.json").is_file():
            return (False, f"{path}: official checkpoint; model.clip_dir {clip_dir or '(empty)'} has no CLIP "
                    "config.json", "set model.clip_dir to a local copy of openai/clip-vit-large-patch14")
        return True, f"{path}: official InteractVLM ({len(weights)} weight file(s)) + CLIP {clip_dir}", ""
    if data.get("format") != "interactvlm-config-1":
        return False, f"{config}: neither an official InteractVLM config nor ours", fix
    tok = data.get("tokenizer", "")
    if tok != "sentencepiece" and not (path / tok).is_file():
        return False, f"{path}: tokenizer file {tok!r} missing", "re-save the model (save_pretrained)"
    return True, f"{path}: InteractVLM model {data.get('name', '')!r} ({len(weights)} weight file(s))", ""
