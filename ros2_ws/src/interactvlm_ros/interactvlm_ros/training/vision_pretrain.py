"""Supervised pre-training of a from-scratch vision tower on the interaction labels of a synthetic dataset.

The method starts from a pre-trained CLIP tower. Our small models start from random weights, and the contact
query can only tell two interactions with the same object apart (the left or the right hand on the mug, sitting on
or standing on the box) from what the tower sees. So before the full model is trained, the tower and the
training forward's linear ``interaction_head`` learn to classify each image's interaction::

    image [B,3,S,S] → (augment) → vision tower → patch features [B,P,C] → flatten → head → logits [B,K]
    loss = CE(logits, interaction)

A vision-only step costs about a twentieth of a full training step per image, so this is where the tower sees
most of its images. The head stays in the training forward, where the auxiliary interaction loss keeps using it.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from interactvlm_ros.training.forward import augment_pixels


def pretrain_vision(forward, dataset, epochs: int, batch_size: int = 64, lr: float = 2e-3, seed: int = 0,
                    log_path: str | Path | None = None, progress: bool = True) -> dict[str, float]:
    """Train ``forward.model``'s vision tower and ``forward.interaction_head`` for ``epochs`` over ``dataset``.

    AdamW (weight decay 0.05) with a one-cycle schedule (10 % warm-up, cosine decay); data order from
    ``(seed, epoch)``; augmentation as ``TrainingForward`` does it. Returns the last epoch's mean loss and
    accuracy; one JSON row per epoch is appended to ``log_path``.
    """
    if forward.interaction_head is None:
        raise ValueError("vision pre-training needs the interaction head (interaction weight > 0)")
    if epochs <= 0 or batch_size <= 0:
        raise ValueError(f"epochs and batch_size must be positive, got {epochs} and {batch_size}")
    model = forward.model
    tower, head = model.model.vision_tower, forward.interaction_head
    labels = forward.interaction_targets(dataset.rows)
    params = [p for p in [*tower.parameters(), *head.parameters()] if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.05)
    n = len(dataset)
    steps_per_epoch = (n + batch_size - 1) // batch_size
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch,
                                                pct_start=0.1)
    pixels = torch.cat([forward.clip(dataset.image(i)) for i in range(n)])  # [N,3,S,S], once
    tower.train()
    last: dict[str, float] = {}
    t0 = time.time()
    bar = tqdm(total=epochs * steps_per_epoch, desc="vision pre-training", unit="step", disable=not progress,
               file=sys.stderr)
    log = open(log_path, "a", encoding="utf-8") if log_path is not None else None
    try:
        for epoch in range(epochs):
            order = torch.from_numpy(np.random.default_rng([seed, 1 << 16, epoch]).permutation(n))
            total_loss, correct = 0.0, 0
            for k in range(0, n, batch_size):
                idx = order[k:k + batch_size]
                x = augment_pixels(pixels[idx]).to(model.device, model.dtype)
                logits = forward.interaction_logits(tower(x))
                y = labels[idx].to(logits.device)
                loss = F.cross_entropy(logits, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total_loss += float(loss.detach()) * len(idx)
                correct += int((logits.argmax(1) == y).sum())
                bar.update(1)
            last = {"phase": "vision", "epoch": epoch + 1, "loss": total_loss / n, "accuracy": correct / n,
                    "elapsed_s": round(time.time() - t0, 2)}
            bar.set_postfix(loss=f"{last['loss']:.3f}", acc=f"{last['accuracy']:.2f}")
            if log is not None:
                log.write(json.dumps(last) + "\n")
                log.flush()
    finally:
        bar.close()
        if log is not None:
            log.close()
    return last
