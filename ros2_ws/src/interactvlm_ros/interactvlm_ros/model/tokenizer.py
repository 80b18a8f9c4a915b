"""Tokenizers for the VLM prompt, both offline.

* :class:`SentencePieceTokenizer` — the official LLaMA tokenizer: ``tokenizer.model`` (sentencepiece) from the
  checkpoint directory plus its added tokens (``added_tokens.json`` or ``tokenizer_config.json``), reproducing the
  slow ``LlamaTokenizer`` of transformers 4.31 (``use_fast=False``, pad = unk) the release was trained with: text
  is split on added tokens, the whitespace next to an added token is stripped, every chunk is encoded with the
  sentencepiece dummy prefix — except, with ``"legacy": false`` in ``tokenizer_config.json``, the chunks after an
  added token: their first piece loses its dummy-prefix ``▁`` (``<im_end>\nWhich`` -> ``Which``, not ``▁Which``).
* :class:`JsonTokenizer` — our small ``tokenizers`` BPE file (``tiny_tokenizer.json`` next to the presets, built
  by :func:`build_tiny_tokenizer` from the prompt/answer templates, body-part names, DAMON object names and
  printable ASCII), with the same special/added tokens and the same splitting rules.

Object names are untrusted text: :func:`sanitize_object_name` removes anything that could spell a special
token before it reaches a prompt.
"""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path

from interactvlm_ros.files.atomic import atomic_path

# Added tokens of the method (the 7B LISA base also has <im_patch>).
SEG, HSEG, OSEG = "[SEG]", "[HSEG]", "[OSEG]"
IM_START, IM_END, IM_PATCH = "<im_start>", "<im_end>", "<im_patch>"
IMAGE_PLACEHOLDER = "<image>"
ADDED_TOKENS = (SEG, IM_START, IM_END, HSEG, OSEG, IM_PATCH)
SPECIAL_TOKENS = ("<unk>", "<s>", "</s>")


def split_at_added_tokens(text: str, added) -> list[str]:
    """``text`` split at the ``added`` tokens (whole matches, longest first): plain, token, plain, ..., plain; each
    token eats the whitespace next to it."""
    pattern = "(" + "|".join(re.escape(t) for t in sorted(added, key=len, reverse=True)) + ")"
    parts = re.split(pattern, text)
    for i in range(1, len(parts), 2):
        parts[i - 1] = parts[i - 1].rstrip()
        parts[i + 1] = parts[i + 1].lstrip()
    return parts


class TokenizerError(ValueError):
    """A tokenizer file is missing or inconsistent with the model config."""


def sanitize_object_name(name: str, max_chars: int = 64, keep_underscores: bool = False) -> str:
    """Make an object name safe to put into a prompt.

    Drops control/format characters and the bracket characters ``[]<>{}`` (so no added/special token such as
    ``[SEG]``, ``<image>``, ``</s>`` can be spelled), replaces underscores by spaces (DAMON names such as
    ``tennis_racket``) unless ``keep_underscores`` (official checkpoints: the reference's run_demo passes the
    file-name spelling ``tennis_racket`` through), collapses whitespace and truncates to ``max_chars``. Raises
    ``ValueError`` when nothing printable is left.
    """
    if not isinstance(name, str):
        raise ValueError(f"object name must be a string, got {type(name).__name__}")
    text = unicodedata.normalize("NFKC", name)
    blank = "\t\n\r" if keep_underscores else "\t\n\r_"
    text = "".join(" " if ch in blank else ch for ch in text
                   if ch in "\t\n\r" or unicodedata.category(ch)[0] != "C")
    text = re.sub(r"[\[\]<>{}]", " ", text)
    text = " ".join(text.split())[:max_chars].strip()
    if not text:
        raise ValueError(f"object name {name!r} is empty after removing control and bracket characters")
    return text


class PromptTokenizer:
    """Common splitting rules; subclasses encode plain chunks (``_encode_chunk``) and decode ids."""

    added: dict[str, int]
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int

    def _encode_chunk(self, text: str) -> list[int]:
        raise TypeError(f"{type(self).__name__} must implement _encode_chunk")

    def _decode_plain(self, ids: list[int]) -> str:
        raise TypeError(f"{type(self).__name__} must implement _decode_plain")

    @property
    def vocab_size(self) -> int:
        raise TypeError(f"{type(self).__name__} must implement vocab_size")

    def token_id(self, token: str) -> int:
        if token not in self.added:
            raise TokenizerError(f"token {token!r} is not in this tokenizer (added tokens: {sorted(self.added)})")
        return self.added[token]

    def encode(self, text: str) -> list[int]:
        """Ids of ``text`` without BOS; added tokens are matched whole and eat the whitespace next to them."""
        if not self.added:
            return self._encode_chunk(text) if text else []
        parts = split_at_added_tokens(text, self.added)
        ids: list[int] = []
        for i, part in enumerate(parts):
            if i % 2:
                ids.append(self.added[part])
            elif part:
                ids.extend(self._encode_chunk(part))
        return ids

    def decode(self, ids: list[int]) -> str:
        """Text of ``ids``; BOS/EOS/pad are dropped, added tokens are written out."""
        inverse = {v: k for k, v in self.added.items()}
        out: list[str] = []
        plain: list[int] = []
        for i in ids:
            i = int(i)
            if i in (self.bos_id, self.eos_id) or i < 0:
                continue
            if i in inverse:
                if plain:
                    out.append(self._decode_plain(plain))
                    plain = []
                out.append(inverse[i])
            else:
                plain.append(i)
        if plain:
            out.append(self._decode_plain(plain))
        text = " ".join(out)
        return text.strip()


SPIECE_UNDERLINE = "\u2581"


def read_legacy_flag(directory: Path) -> bool:
    """``legacy`` of ``tokenizer_config.json`` (transformers' ``LlamaTokenizer`` default, True, when absent)."""
    path = directory / "tokenizer_config.json"
    if not path.is_file():
        return True
    value = json.loads(path.read_text()).get("legacy", True)
    if value is None:
        return True
    if not isinstance(value, bool):
        raise TokenizerError(f"{path}: 'legacy' must be true or false, got {value!r}")
    return value


class SentencePieceTokenizer(PromptTokenizer):
    """The official slow LLaMA tokenizer (``tokenizer.model`` + added tokens) without transformers.

    ``legacy`` (None: from ``tokenizer_config.json``, default True) is transformers 4.31's ``LlamaTokenizer``
    flag. With ``legacy=False`` that tokenizer prepends ``▁`` to the whole text (and turns any ``▁`` in it into a
    space), splits on added tokens, encodes the first chunk as usual and, for every later chunk that does not
    start with a space, drops the ``▁`` of its first piece (the piece is then looked up as written: a piece the
    vocabulary lacks becomes ``<unk>``). :meth:`encode` does exactly that.
    """

    def __init__(self, directory: str | Path, legacy: bool | None = None):
        import sentencepiece as spm

        directory = Path(directory)
        model = directory / "tokenizer.model"
        if not model.is_file():
            raise TokenizerError(f"{model} not found: the official checkpoint directory must hold the LLaMA "
                                 "sentencepiece tokenizer (tokenizer.model)")
        self.sp = spm.SentencePieceProcessor(model_file=str(model))
        self.added = _read_added_tokens(directory)
        self.legacy = read_legacy_flag(directory) if legacy is None else bool(legacy)
        self.unk_id = self.sp.unk_id()
        self.bos_id = self.sp.bos_id()
        self.eos_id = self.sp.eos_id()
        self.pad_id = self.unk_id          # LISA/InteractVLM: pad_token = unk_token
        base = self.sp.get_piece_size()
        bad = {t: i for t, i in self.added.items() if i < base}
        if bad:
            raise TokenizerError(f"{directory}: added tokens {bad} collide with the sentencepiece vocabulary "
                                 f"(size {base})")

    def _encode_chunk(self, text: str) -> list[int]:
        return list(self.sp.encode(text))

    def encode(self, text: str) -> list[int]:
        if self.legacy:
            return super().encode(text)
        return self._encode_non_legacy(text)

    def _encode_non_legacy(self, text: str) -> list[int]:
        """transformers 4.31 ``LlamaTokenizer(legacy=False).tokenize`` + ``convert_tokens_to_ids``."""
        text = SPIECE_UNDERLINE + text.replace(SPIECE_UNDERLINE, " ")
        parts = split_at_added_tokens(text, self.added) if self.added else [text]
        ids: list[int] = []
        for i, part in enumerate(parts):
            if i % 2:
                ids.append(self.added[part])
                continue
            if not part:
                continue
            is_first = part.startswith(SPIECE_UNDERLINE)
            if is_first:
                part = part[1:]
            pieces = self.sp.encode(part, out_type=str)
            if not is_first and not part.startswith(" ") and pieces and pieces[0].startswith(SPIECE_UNDERLINE):
                pieces = ([pieces[0][1:]] if len(pieces[0]) > 1 else []) + pieces[1:]
            ids.extend(self.sp.piece_to_id(p) for p in pieces)
        return ids

    def _decode_plain(self, ids: list[int]) -> str:
        return self.sp.decode([i for i in ids if i < self.sp.get_piece_size()])

    @property
    def vocab_size(self) -> int:
        return max([self.sp.get_piece_size() - 1, *self.added.values()]) + 1


def _read_added_tokens(directory: Path) -> dict[str, int]:
    """Added tokens (``[SEG]``, ``<im_start>``...) from ``added_tokens.json`` and/or ``tokenizer_config.json``."""
    added: dict[str, int] = {}
    path = directory / "added_tokens.json"
    if path.is_file():
        added.update({str(k): int(v) for k, v in json.loads(path.read_text()).items()})
    cfg_path = directory / "tokenizer_config.json"
    if cfg_path.is_file():
        decoder = json.loads(cfg_path.read_text()).get("added_tokens_decoder", {})
        for idx, entry in decoder.items():
            content = entry.get("content") if isinstance(entry, dict) else None
            if content and content not in SPECIAL_TOKENS:
                added[content] = int(idx)
    return {k: v for k, v in added.items() if k not in SPECIAL_TOKENS}


class JsonTokenizer(PromptTokenizer):
    """A ``tokenizers`` JSON tokenizer (our models) with the same added tokens and splitting rules."""

    def __init__(self, path: str | Path):
        from tokenizers import Tokenizer

        path = Path(path)
        if not path.is_file():
            raise TokenizerError(f"tokenizer file {path} not found")
        self.path = path
        self.tk = Tokenizer.from_file(str(path))
        vocab = self.tk.get_vocab(with_added_tokens=True)
        missing = [t for t in (*SPECIAL_TOKENS, SEG, IM_START, IM_END) if t not in vocab]
        if missing:
            raise TokenizerError(f"{path}: tokenizer lacks {missing}")
        self.unk_id, self.bos_id, self.eos_id = (vocab[t] for t in SPECIAL_TOKENS)
        self.pad_id = self.unk_id
        self.added = {t: vocab[t] for t in ADDED_TOKENS if t in vocab}

    def _encode_chunk(self, text: str) -> list[int]:
        return list(self.tk.encode(text, add_special_tokens=False).ids)

    def _decode_plain(self, ids: list[int]) -> str:
        return self.tk.decode(ids, skip_special_tokens=True)

    @property
    def vocab_size(self) -> int:
        return self.tk.get_vocab_size(with_added_tokens=True)


def load_tokenizer(kind: str, directory: str | Path) -> PromptTokenizer:
    """``kind`` = "sentencepiece" (official dir) or a JSON file name relative to ``directory``."""
    if kind == "sentencepiece":
        return SentencePieceTokenizer(directory)
    return JsonTokenizer(Path(directory) / kind)


# ------------------------------------------------------------------------------------------- the tiny tokenizer
BODY_PART_NAMES = (
    "head", "neck", "torso", "chest", "back", "hips", "pelvis", "left hand", "right hand", "left arm", "right arm",
    "left forearm", "right forearm", "left upper arm", "right upper arm", "left shoulder", "right shoulder",
    "left leg", "right leg", "left thigh", "right thigh", "left calf", "right calf", "left foot", "right foot",
    "left knee", "right knee", "left elbow", "right elbow", "fingers", "face", "buttocks", "spine",
)


def tiny_tokenizer_corpus() -> list[str]:
    """Training text of the tiny tokenizer: the method's prompts/answers, body parts, DAMON objects."""
    from interactvlm_ros.model.configuration import PromptConfig
    from interactvlm_ros.model.object_names import DAMON_OBJECTS
    from interactvlm_ros.model.prompts import ANSWER_TEMPLATES

    p = PromptConfig()
    lines = [p.system, p.human_question, p.object_question, p.image2d_question, "USER: ASSISTANT:"]
    for obj in DAMON_OBJECTS:
        lines += [p.human_question.format(object=obj), p.object_question.format(object=obj)]
    for template in ANSWER_TEMPLATES:
        for i in range(0, len(BODY_PART_NAMES), 3):
            parts = ", ".join(BODY_PART_NAMES[i:i + 3])
            lines.append(template.format(body_parts=parts, affordance="hold", class_name="chair"))
    lines += list(BODY_PART_NAMES) + list(DAMON_OBJECTS)
    lines.append("".join(chr(c) for c in range(32, 127)))
    return lines


def build_tiny_tokenizer(path: str | Path, vocab_size: int = 1024) -> Path:
    """Train the tiny BPE tokenizer (Metaspace pre-tokenizer like sentencepiece, ASCII alphabet) and write it."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tk = Tokenizer(models.BPE(unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    tk.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=[chr(c) for c in range(32, 127)] + ["\u2581"], show_progress=False)
    tk.train_from_iterator(tiny_tokenizer_corpus(), trainer=trainer)
    tk.add_special_tokens([SEG, IM_START, IM_END, HSEG, OSEG])
    path = Path(path)
    with atomic_path(path) as tmp:
        tk.save(str(tmp))
    return path


if __name__ == "__main__":  # maintainer tool: python -m interactvlm_ros.model.tokenizer
    from interactvlm_ros.model.configuration import PRESETS_DIR

    out = build_tiny_tokenizer(PRESETS_DIR / "tiny_tokenizer.json")
    print(f"wrote {out} ({JsonTokenizer(out).vocab_size} tokens, added {JsonTokenizer(out).added})")
