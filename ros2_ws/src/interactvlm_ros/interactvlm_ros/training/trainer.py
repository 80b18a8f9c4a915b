"""The training loop behind ``interactvlm train``: AdamW with linear warm-up then linear decay, gradient clipping,
deterministic sample order, JSON-lines metrics, atomic checkpoints with exact resume, and the final model export.

Method settings (reference §4): AdamW lr 3e-4, betas (0.9, 0.95), weight decay 0, 100 warm-up steps then decay,
grad clip 1.0. Trainable: everything but the frozen SAM image/prompt encoders for a model trained from scratch
(``mode="full"``, the tiny preset: its CLIP and LLM are random, so they must learn); for official checkpoints
(``mode="lora"``) LoRA on the LLM's ``q_proj``/``v_proj`` (r=8, α=16, dropout 0.05) plus ``lm_head``,
``embed_tokens``, Γ, the SAM mask decoder and FeatLift — CLIP, the projector and the SAM encoders stay frozen.

Sample order: step ``s`` takes samples ``s·B … s·B+B-1`` of an endless stream whose epoch ``e`` is the permutation
``default_rng([seed, e])`` of the training split, so a resumed run sees exactly the batches of an uninterrupted
one. A checkpoint holds the trainable weights, the optimizer, the scheduler, the torch RNG state and the step.
"""

from __future__ import annotations

import io
import json
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from interactvlm_ros.files.atomic import atomic_path, atomic_write_bytes
from interactvlm_ros.training.lora import apply_lora, merge_lora

CHECKPOINT_NAME = "checkpoint.pt"
METRICS_NAME = "metrics.jsonl"


@dataclass
class TrainConfig:
    """Hyper-parameters and bookkeeping of one run."""

    steps: int = 1000
    batch_size: int = 8
    lr: float = 3e-4
    warmup: int = 100
    betas: tuple[float, float] = (0.9, 0.95)
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    seed: int = 0
    mode: str = "full"  # full | lora
    lora_r: int = 8
    lora_alpha: float = 16.0
    lora_dropout: float = 0.05
    answer: str = "simple"
    log_every: int = 10
    checkpoint_every: int = 100

    def validate(self) -> None:
        if self.mode not in ("full", "lora"):
            raise ValueError(f"mode must be 'full' or 'lora', got {self.mode!r}")
        for name in ("steps", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.lr <= 0 or self.warmup < 0:
            raise ValueError("lr must be positive and warmup non-negative")


def warmup_decay(step: int, warmup: int, total: int) -> float:
    """LR multiplier: linear 0→1 over ``warmup`` steps, then linear 1→0 at ``total`` (DeepSpeed WarmupDecayLR)."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    return max(0.0, (total - step) / max(1, total - warmup))


def configure_trainable(model, mode: str, r: int = 8, alpha: float = 16.0, dropout: float = 0.05) -> list[str]:
    """Set ``requires_grad`` for ``mode`` (see the module docstring); returns the LoRA-wrapped module paths."""
    sam = model.sam
    wrapped: list[str] = []
    if mode == "full":
        for p in model.parameters():
            p.requires_grad_(True)
    else:
        for p in model.parameters():
            p.requires_grad_(False)
        wrapped = apply_lora(model, ("q_proj", "v_proj"), r, alpha, dropout, within="model.layers.")
        for module in (model.lm_head, model.model.embed_tokens, model.model.text_hidden_fcs, sam.mask_decoder,
                       model.cam_pose_encoder):
            for p in module.parameters():
                p.requires_grad_(True)
    for module in (sam.image_encoder, sam.prompt_encoder):
        for p in module.parameters():
            p.requires_grad_(False)
    return wrapped


def _atomic_save(obj, path: Path) -> None:
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


class Trainer:
    """Runs :class:`~interactvlm_ros.training.forward.TrainingForward` over a dataset split.

    Args:
        forward: the training forward (holds the model).
        dataset: indexable training samples (``SyntheticDataset``).
        config: :class:`TrainConfig`.
        out_dir: run folder (checkpoint, metrics log, exported model).
    """

    def __init__(self, forward, dataset, config: TrainConfig, out_dir: str | Path):
        config.validate()
        if len(dataset) == 0:
            raise ValueError("the training split is empty")
        self.forward = forward
        self.model = forward.model
        self.dataset = dataset
        self.config = config
        self.out = Path(out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.named_params = self._named_trainables()
        self.params = list(self.named_params.values())
        if not self.params:
            raise ValueError("no trainable parameters (call configure_trainable first)")
        self.optimizer = torch.optim.AdamW(self.params, lr=config.lr, betas=tuple(config.betas),
                                           weight_decay=config.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: warmup_decay(s, config.warmup, config.steps))
        self.step = 0
        self._perm_epoch = -1
        self._perm = np.arange(0)

    def _named_trainables(self) -> dict[str, torch.nn.Parameter]:
        """Trainable parameters by name: the model's own names, ``aux.<name>`` for training-only heads of the
        forward (never exported)."""
        named = {n: p for n, p in self.model.named_parameters() if p.requires_grad}
        ids = {id(p) for p in self.model.parameters()}
        if isinstance(self.forward, torch.nn.Module):
            named.update({f"aux.{n}": p for n, p in self.forward.named_parameters()
                          if id(p) not in ids and p.requires_grad})
        return named

    # ------------------------------------------------------------------------------------------ data order
    def batch_indices(self, step: int) -> list[int]:
        n, bsz = len(self.dataset), self.config.batch_size
        out = []
        for k in range(step * bsz, step * bsz + bsz):
            epoch, pos = divmod(k, n)
            if epoch != self._perm_epoch:
                self._perm = np.random.default_rng([self.config.seed, epoch]).permutation(n)
                self._perm_epoch = epoch
            out.append(int(self._perm[pos]))
        return out

    # ------------------------------------------------------------------------------------------ one step
    def train_step(self) -> dict[str, float]:
        self.model.train()
        batch = [self.dataset[i] for i in self.batch_indices(self.step)]
        out = self.forward(batch)
        self.optimizer.zero_grad(set_to_none=True)
        out["loss"].backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.params, self.config.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        row = {k: float(v.detach()) for k, v in out.items() if isinstance(v, torch.Tensor) and v.ndim == 0}
        row["grad_norm"] = float(grad_norm)
        return row

    def train(self, steps: int | None = None, progress: bool = True) -> dict[str, float]:
        """Train up to ``steps`` (default: the configured total), logging and checkpointing; returns the last row."""
        end = min(self.config.steps, steps if steps is not None else self.config.steps)
        last: dict[str, float] = {}
        t0 = time.time()
        bar = tqdm(total=end, initial=self.step, desc="train", unit="step", disable=not progress, file=sys.stderr)
        with open(self.out / METRICS_NAME, "a", encoding="utf-8") as log:
            while self.step < end:
                row = self.train_step()
                last = {"step": self.step, "lr": self.scheduler.get_last_lr()[0], **row,
                        "elapsed_s": round(time.time() - t0, 2)}
                if self.step % self.config.log_every == 0 or self.step == end:
                    log.write(json.dumps(last) + "\n")
                    log.flush()
                if self.step % self.config.checkpoint_every == 0 or self.step == end:
                    self.save_checkpoint()
                bar.update(1)
                bar.set_postfix(loss=f"{row['loss']:.3f}")
        bar.close()
        return last

    # ------------------------------------------------------------------------------------------ checkpoints
    def trainable_state(self) -> dict[str, torch.Tensor]:
        return {n: p.detach().cpu().clone() for n, p in self.named_params.items()}

    def save_checkpoint(self, path: str | Path | None = None) -> Path:
        path = Path(path) if path is not None else self.out / CHECKPOINT_NAME
        _atomic_save({"step": self.step, "model": self.trainable_state(), "optimizer": self.optimizer.state_dict(),
                      "scheduler": self.scheduler.state_dict(), "torch_rng": torch.get_rng_state(),
                      "config": asdict(self.config)}, path)
        return path

    def load_checkpoint(self, path: str | Path | None = None) -> int:
        """Restore model, optimizer, scheduler, RNG and step from a checkpoint; returns the step."""
        path = Path(path) if path is not None else self.out / CHECKPOINT_NAME
        if not path.is_file():
            raise FileNotFoundError(f"no checkpoint at {path}")
        state = torch.load(path, map_location="cpu", weights_only=False)
        names = self.named_params
        missing = sorted(set(state["model"]) ^ set(names))
        if missing:
            raise ValueError(f"{path}: trainable parameters differ from this run's, e.g. {missing[:5]}")
        with torch.no_grad():
            for n, v in state["model"].items():
                names[n].copy_(v.to(names[n].device, names[n].dtype))
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        self.step = int(state["step"])
        return self.step

    # ------------------------------------------------------------------------------------------ export
    def export(self, directory: str | Path, tokenizer, source_dir: str | Path | None = None) -> Path:
        """Write the trained model as a model directory ``load_model`` reads.

        Our models: ``save_pretrained`` (config, safetensors, tokenizer, digests). Official checkpoints (LoRA):
        the LoRA deltas are merged and the weights written as ``model.safetensors`` in the official key layout
        next to a copy of the source directory's config and tokenizer files; ``digests.json`` (sha256 of every
        file written) comes last.
        """
        directory = Path(directory)
        merge_lora(self.model)
        self.model.eval()
        if source_dir is None:
            from interactvlm_ros.model.checkpoint import save_pretrained

            return save_pretrained(self.model, tokenizer, directory)
        from safetensors.torch import save_file

        from interactvlm_ros.model.integrity import MANIFEST_NAME, write_manifest

        directory.mkdir(parents=True, exist_ok=True)
        written = ["model.safetensors"]
        for f in Path(source_dir).iterdir():
            if f.is_file() and not f.name.endswith((".safetensors", ".bin", ".json.tmp")) \
                    and "index.json" not in f.name and f.name != MANIFEST_NAME:
                shutil.copyfile(f, directory / f.name)
                written.append(f.name)
        state = {k: v.detach().cpu().contiguous() for k, v in self.model.checkpoint_state_dict(False).items()}
        with atomic_path(directory / "model.safetensors") as tmp:
            save_file(state, str(tmp), metadata={"format": "pt"})
        write_manifest(directory, written)
        return directory
