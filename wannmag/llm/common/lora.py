"""LoRA-able linear layer (Hu et al. 2021) used for every projection of :class:`~wannmag.llm.common.model.TinyTransformer`.

``LoRALinear`` behaves exactly like ``nn.Linear`` until :meth:`LoRALinear.add_lora` attaches a rank-r update
``W x + (alpha/r) B A x`` (A: r×in, Gaussian/√in; B: out×r, zeros, so the output is unchanged at attach time).
Several named adapters can be attached (part 2's BeamLoRA needs per-rank control): ``adapter`` selects one and
``active`` switches them on/off; ``rank_mask`` (length r, default ones) gates individual ranks of an adapter.
Attaching adapters to a model by target (role names through the model adapter) is
:mod:`~wannmag.llm.common.lora_targets` (``add_lora``, ``target_layers``; kept apart so that this module, which the
model and the adapter build on, imports neither of them).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import torch
from torch import nn
from torch.nn import functional as F


class LoRAAdapter(nn.Module):
    """One low-rank update: ``scale * B @ diag(rank_mask) @ A``."""

    def __init__(self, in_features: int, out_features: int, r: int, alpha: float,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        if r < 1:
            raise ValueError(f"LoRA rank must be >= 1, got {r}")
        self.r = int(r)
        self.scale = float(alpha) / float(r)
        a = torch.randn(r, in_features, generator=generator) / math.sqrt(in_features)
        self.A = nn.Parameter(a)
        self.B = nn.Parameter(torch.zeros(out_features, r))
        self.register_buffer("rank_mask", torch.ones(r))
        self.active = True

    def delta_weight(self) -> torch.Tensor:
        return self.scale * (self.B * self.rank_mask) @ self.A

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * F.linear(F.linear(x, self.A) * self.rank_mask, self.B)


class LoRALinear(nn.Linear):
    """``nn.Linear`` with optional named LoRA adapters (none by default)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__(in_features, out_features, bias=bias)
        self.adapters = nn.ModuleDict()

    def add_lora(self, r: int, alpha: float | None = None, name: str = "default",
                 generator: torch.Generator | None = None) -> LoRAAdapter:
        alpha = float(r) if alpha is None else alpha
        ad = LoRAAdapter(self.in_features, self.out_features, r, alpha, generator)
        ad.to(self.weight.device, self.weight.dtype)
        self.adapters[name] = ad
        return ad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.linear(x, self.weight, self.bias)
        for ad in self.adapters.values():
            if ad.active:
                y = y + ad(x)
        return y

    @torch.no_grad()
    def merge(self) -> None:
        """Fold active adapters into ``weight`` and remove all adapters."""
        for ad in self.adapters.values():
            if ad.active:
                self.weight += ad.delta_weight()
        self.adapters = nn.ModuleDict()


def lora_layers(model: nn.Module, targets: Iterable[str] | None = None) -> Iterator[tuple[str, LoRALinear]]:
    """``(name, layer)`` for every ``LoRALinear`` whose last name component is in ``targets`` (all if None)."""
    tset = None if targets is None else set(targets)
    for name, mod in model.named_modules():
        if isinstance(mod, LoRALinear) and (tset is None or name.rsplit(".", 1)[-1] in tset):
            yield name, mod


def lora_parameters(model: nn.Module, name: str | None = None) -> list[nn.Parameter]:
    """All adapter parameters (of one adapter name, or of all)."""
    out: list[nn.Parameter] = []
    for _, layer in lora_layers(model):
        for n, ad in layer.adapters.items():
            if name is None or n == name:
                out += [ad.A, ad.B]
    return out


def merge_lora(model: nn.Module) -> None:
    """Merge and drop every adapter of the model."""
    for _, layer in lora_layers(model):
        layer.merge()
