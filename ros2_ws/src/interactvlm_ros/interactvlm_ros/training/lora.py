"""LoRA (Hu et al. 2021) for the official checkpoints' fine-tuning: ``q_proj``/``v_proj`` of the LLM, r=8, α=16,
dropout 0.05 (the method's setting). Our own small module, peft-compatible in its maths:
``y = W x + (α/r)·B(A(dropout(x)))`` with ``A`` Kaiming-uniform and ``B`` zero, so a fresh adapter is an identity.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable low-rank update."""

    def __init__(self, base: nn.Linear, r: int = 8, alpha: float = 16.0, dropout: float = 0.05):
        super().__init__()
        if r <= 0:
            raise ValueError(f"LoRA rank must be positive, got {r}")
        self.base = base
        for p in self.base.parameters():
            p.requires_grad_(False)
        self.r = int(r)
        self.scaling = float(alpha) / float(r)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        dev, dt = base.weight.device, base.weight.dtype
        self.lora_A = nn.Parameter(torch.empty(self.r, base.in_features, device=dev, dtype=dt))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, self.r, device=dev, dtype=dt))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.merged = False

    @property
    def weight(self) -> torch.Tensor:  # modules that read .weight (e.g. dtype checks) see the base weight
        return self.base.weight

    @property
    def bias(self) -> torch.Tensor | None:
        return self.base.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base(x)
        if self.merged:
            return out
        update = self.dropout(x).to(self.lora_A.dtype) @ self.lora_A.T @ self.lora_B.T
        return out + (update * self.scaling).to(out.dtype)

    def delta_weight(self) -> torch.Tensor:
        """The dense update ``(α/r)·B A`` ``[out, in]``."""
        return (self.lora_B @ self.lora_A) * self.scaling

    @torch.no_grad()
    def merge(self) -> nn.Linear:
        """Fold the update into the base weight and return the plain ``nn.Linear`` (as the method merges LoRA
        before release)."""
        self.base.weight += self.delta_weight().to(self.base.weight.dtype)
        self.merged = True
        return self.base


def apply_lora(model: nn.Module, targets: tuple[str, ...] = ("q_proj", "v_proj"), r: int = 8, alpha: float = 16.0,
               dropout: float = 0.05, within: str | None = None) -> list[str]:
    """Replace every ``nn.Linear`` whose attribute name is in ``targets`` (optionally only below the submodule
    path prefix ``within``, e.g. the language model) by a :class:`LoRALinear`. Returns the replaced paths."""
    replaced = []
    for path, module in list(model.named_modules()):
        if within is not None and not path.startswith(within):
            continue
        for name, child in list(module.named_children()):
            if name in targets and isinstance(child, nn.Linear):
                setattr(module, name, LoRALinear(child, r, alpha, dropout))
                replaced.append(f"{path}.{name}" if path else name)
    if not replaced:
        raise ValueError(f"no nn.Linear named {list(targets)} found" + (f" below {within!r}" if within else ""))
    return replaced


def merge_lora(model: nn.Module) -> int:
    """Merge every :class:`LoRALinear` back into a plain ``nn.Linear`` in place; returns how many."""
    count = 0
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, LoRALinear):
                setattr(module, name, child.merge())
                count += 1
    return count


def lora_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The adapters' trainable parameters (``lora_A``, ``lora_B``)."""
    return [p for n, p in model.named_parameters() if n.endswith("lora_A") or n.endswith("lora_B")]
