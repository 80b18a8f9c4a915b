"""Greedy decoding that keeps the last-layer hidden state predicting the contact token.

Two equivalent paths over the same model:

* :func:`generate_cached` — ours. The prompt prefix shared by every queried object (system text, the 256 image
  embeddings, the start of the question) is prefilled **once** at batch 1, its KV cache is repeated for the B
  objects, the per-object suffixes are prefilled as one padded batch, then one token per step is decoded with the
  KV cache. When a step's argmax is a contact token, the last-layer hidden state of that step (the state whose
  next-token prediction is the contact token, LISA's convention) is kept.
* :func:`generate_recompute` — the reference implementation's way: no cache, the whole sequence is re-run for
  every new token, one object at a time; the contact state is read from the last full pass. Used by the bench and
  the tests to prove both give the same tokens and embeddings.

Sequence layout per batch row: ``[past | prefix | pad … | suffix_i | generated …]``; pads are masked out and
positions count only real tokens, so a row equals the same prompt run alone. ``past`` (optional, a
:class:`PrefilledPrefix`) is a prompt start already prefilled once for a whole frame (system text + image, see
``model.encoded_image``): each call starts from a copy of its KV cache, so it serves every query of the frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class GenerationOutput:
    """Result of decoding B prompts.

    Attributes:
        tokens: generated ids per row (prompt excluded; stops after EOS or once every contact token was emitted).
        contact_states: ``[B, C, D]`` last-layer hidden states predicting contact token c (zeros where not found),
            C = number of contact token kinds (1 for [SEG]; 2 for [HSEG]/[OSEG]).
        found: ``[B, C]`` bool.
        steps: decoder steps run after the prefill.
    """

    tokens: list[list[int]]
    contact_states: torch.Tensor
    found: torch.Tensor
    steps: int = 0


@dataclass
class DecodeSettings:
    """Stopping rules. ``force_contact_at`` (bench/tests): emit contact token ``contact_ids[force_contact_index]``
    at that step (0-based) instead of the argmax, giving a fixed answer length for models with random weights."""

    max_new_tokens: int
    eos_id: int
    contact_ids: list[int]
    force_contact_at: int | None = None
    force_contact_index: int = 0


def _positions(mask: torch.Tensor) -> torch.Tensor:
    """Position ids counting only attended tokens: ``[B,T]`` mask -> ``[B,T]`` (pads get 0)."""
    return (mask.long().cumsum(-1) - 1).clamp(min=0)


class _Tracker:
    """Book-keeping shared by both decoders: chosen tokens, found contact states, finished rows."""

    def __init__(self, batch: int, hidden: int, settings: DecodeSettings, device, dtype):
        self.s = settings
        self.tokens: list[list[int]] = [[] for _ in range(batch)]
        self.states = torch.zeros(batch, len(settings.contact_ids), hidden, device=device, dtype=dtype)
        self.found = torch.zeros(batch, len(settings.contact_ids), dtype=torch.bool, device=device)
        self.done = torch.zeros(batch, dtype=torch.bool, device=device)

    def step(self, step: int, logits: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """Pick the next token of every row from ``logits [B,V]``; record contact states from ``hidden [B,D]``."""
        nxt = logits.argmax(-1)
        if self.s.force_contact_at is not None and step == self.s.force_contact_at:
            nxt = torch.full_like(nxt, self.s.contact_ids[self.s.force_contact_index])
        nxt = torch.where(self.done, torch.full_like(nxt, self.s.eos_id), nxt)
        for c, cid in enumerate(self.s.contact_ids):
            hit = (nxt == cid) & ~self.found[:, c] & ~self.done
            if hit.any():
                self.states[hit, c] = hidden[hit].to(self.states.dtype)
                self.found[:, c] |= hit
        for b, (tok, done) in enumerate(zip(nxt.tolist(), self.done.tolist(), strict=True)):  # one device sync
            if not done:
                self.tokens[b].append(tok)
        self.done |= (nxt == self.s.eos_id) | self.found.all(-1)
        return nxt

    def finished(self) -> bool:
        return bool(self.done.all())


@dataclass
class PrefilledPrefix:
    """A prompt start prefilled once at batch 1: its ``cache`` (the model's KV cache type) holds ``length``
    positions. Never modified after it is made; :func:`prefill` continues from a copy."""

    cache: object
    length: int


@torch.no_grad()
def prefill_prefix(model, embeds: torch.Tensor) -> PrefilledPrefix:
    """Prefill prompt-start embeddings ``[T,D]`` at batch 1 (e.g. system text + image, shared by many prompts)."""
    cache = model.new_cache()
    mask = torch.ones(1, embeds.shape[0], dtype=torch.long, device=embeds.device)
    model.decoder(embeds[None], mask, _positions(mask), cache)
    return PrefilledPrefix(cache, int(embeds.shape[0]))


@torch.no_grad()
def prefill(model, prefix: torch.Tensor, suffixes: list[torch.Tensor], past: PrefilledPrefix | None = None):
    """Prefill ``prefix [Tp,D]`` once (batch 1), repeat its KV cache B times, prefill the padded suffixes.

    ``past``: positions before ``prefix`` that are already prefilled (their cache is copied, not changed).
    Returns ``(hidden [B,D] of the last position, cache, mask [B,T], positions [B,T])``, ``T`` counting ``past``.
    """
    batch = len(suffixes)
    device, dtype = prefix.device, prefix.dtype
    t0 = past.length if past is not None else 0
    cache = model.repeat_cache(past.cache, 1) if past is not None else model.new_cache()
    tp = t0 + prefix.shape[0]
    if prefix.shape[0]:
        mask_p = torch.ones(1, tp, dtype=torch.long, device=device)
        model.decoder(prefix[None], mask_p, _positions(mask_p)[:, t0:], cache)
    if batch > 1:
        cache.batch_repeat_interleave(batch)
    ts = max(s.shape[0] for s in suffixes)
    if ts == 0:
        raise ValueError("every prompt equals the shared prefix; nothing to decode from")
    suffix = torch.zeros(batch, ts, prefix.shape[1], device=device, dtype=dtype)
    mask = torch.zeros(batch, tp + ts, dtype=torch.long, device=device)
    mask[:, :tp] = 1
    for b, s in enumerate(suffixes):
        if s.shape[0]:
            suffix[b, ts - s.shape[0]:] = s
            mask[b, tp + ts - s.shape[0]:] = 1
    pos = _positions(mask)
    hidden = model.decoder(suffix, mask, pos[:, tp:], cache)[:, -1]
    return hidden, cache, mask, pos


@torch.no_grad()
def generate_cached(model, prefix: torch.Tensor, suffixes: list[torch.Tensor],
                    settings: DecodeSettings, past: PrefilledPrefix | None = None) -> GenerationOutput:
    """Decode B prompts sharing ``prefix [Tp, D]`` (embeddings) with per-row ``suffixes[b] [Ts_b, D]``,
    optionally after an already prefilled ``past``.

    ``model`` provides ``decoder(inputs_embeds, attention_mask, position_ids, cache) -> [B,T,D]`` (last-layer,
    normed), ``lm_logits(hidden) -> [B,T,V]``, ``embed_ids(ids [B,T]) -> [B,T,D]``, ``new_cache()`` and
    ``repeat_cache(cache, repeats)`` (a new cache; only used with ``past``).
    """
    batch = len(suffixes)
    device, dtype = prefix.device, prefix.dtype
    hidden, cache, mask, pos = prefill(model, prefix, suffixes, past)
    tracker = _Tracker(batch, hidden.shape[-1], settings, device, dtype)
    steps = 0
    for step in range(settings.max_new_tokens):
        nxt = tracker.step(step, model.lm_logits(hidden), hidden)
        if tracker.finished():
            break
        mask = torch.cat([mask, torch.ones(batch, 1, dtype=mask.dtype, device=device)], 1)
        pos_new = pos[:, -1:] + 1
        pos = torch.cat([pos, pos_new], 1)
        hidden = model.decoder(model.embed_ids(nxt[:, None]), mask, pos_new, cache)[:, -1]
        steps += 1
    return GenerationOutput(tracker.tokens, tracker.states, tracker.found, steps)


@torch.no_grad()
def generate_recompute(model, prompt: torch.Tensor, settings: DecodeSettings) -> GenerationOutput:
    """Reference-style decoding of one prompt ``[T, D]``: every step re-runs the whole sequence, no cache."""
    device, dtype = prompt.device, prompt.dtype
    seq = prompt[None]
    tracker = _Tracker(1, prompt.shape[1], settings, device, dtype)
    steps = 0
    for step in range(settings.max_new_tokens):
        mask = torch.ones(1, seq.shape[1], dtype=torch.long, device=device)
        hidden = model.decoder(seq, mask, _positions(mask), None)[:, -1]
        nxt = tracker.step(step, model.lm_logits(hidden), hidden)
        if tracker.finished():
            break
        seq = torch.cat([seq, model.embed_ids(nxt[:, None])], 1)
        steps += 1
    return GenerationOutput(tracker.tokens, tracker.states, tracker.found, steps)
