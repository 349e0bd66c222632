"""BeamLoRA (Gu et al., "BeamLoRA: Beam-Constraint Low-Rank Adaptation", arXiv 2502.13604, ACL 2025): every rank
of a LoRA module is a "beam" (sub-solution); a learnable per-rank gate scores the ranks, and periodically the
low-importance tail is pruned and the freed ranks are re-initialised as copies of strong ranks, so the important
sub-solutions get more parameters at a fixed total rank.

What is implemented
-------------------
* :class:`BeamLoRAAdapter` (a :class:`~wannmag.llm.common.lora.LoRAAdapter`):
  ``y = W0 x + (α/r) B [(softmax(g/T)·r) ⊙ A x]`` with a gate vector g (zeros at start, so the gate weights are all
  one and the adapter is plain LoRA), temperature T (0.05 as in the authors' code); ``rank_mask`` still applies.
  :func:`add_beamlora` attaches it by name (like ``common.lora_targets.add_lora``).
* Importance = the softmax gate values ``softmax(g/T)``; :func:`prune_set` keeps the smallest set of ranks whose
  cumulative importance reaches p (**dynamic top-p**) and prunes the rest, at most ``max_prune_frac·r``;
  :func:`top_p_schedule` anneals p from ``p_min`` (0.95) to 1 with a cosine, so pruning fades out.
* :func:`prune_and_expand` (one module) / :class:`BeamLoRAScheduler` (all modules, every ``interval`` steps):
  1. the pruned ranks' current contribution ``(α/r) w_j b_j a_j`` is merged into W0;
  2. every pruned rank j becomes a copy of a strong rank i (strongest first, round-robin): ``a_j = a_i``;
  3. gates and B are set so that the module's function is unchanged at the moment of copying: the group
     {i, its copies} shares ``exp(g/T)`` equally with the group total ``exp(g_i/T) + Σ_j exp(g_j/T)`` (so the
     softmax normaliser and every other rank's weight stay the same), and each member's ``b`` is
     ``b_i · w_i / w_group``;
  4. the optimiser state (Adam ``exp_avg``/``exp_avg_sq``) of rank i is copied to rank j (B's first moment scaled
     like B, its second moment by the square).

Simplifications: the exact bookkeeping of step 3 is our construction for an exactly function-preserving copy (the
paper copies parameters and states of the top ranks; we did not check how it splits the scores); the authors' code
paths not described in the paper (cached half-interval states, "inherit" variants) are not reproduced; importance
is the gate value only (no first-order/sensitivity alternatives).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn
from torch.nn import functional as F

from .common.lora import LoRAAdapter, LoRALinear, lora_layers
from .common.lora_targets import target_layers

__all__ = ["BeamLoRAAdapter", "add_beamlora", "beamlora_modules", "prune_set", "top_p_schedule", "prune_and_expand",
           "BeamLoRAScheduler"]


class BeamLoRAAdapter(LoRAAdapter):
    """LoRA with a per-rank softmax gate: ``scale · B diag(r·softmax(g/T) ⊙ rank_mask) A``."""

    def __init__(self, in_features: int, out_features: int, r: int, alpha: float,
                 generator: torch.Generator | None = None, temperature: float = 0.05) -> None:
        super().__init__(in_features, out_features, r, alpha, generator)
        self.gate = nn.Parameter(torch.zeros(r))
        self.temperature = float(temperature)

    def gate_weights(self) -> torch.Tensor:
        """``r · softmax(g/T)`` (all ones for equal gates)."""
        return torch.softmax(self.gate / self.temperature, 0) * self.r

    def importance(self) -> torch.Tensor:
        return torch.softmax(self.gate.detach() / self.temperature, 0)

    def delta_weight(self) -> torch.Tensor:
        return self.scale * (self.B * (self.gate_weights() * self.rank_mask)) @ self.A

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * F.linear(F.linear(x, self.A) * (self.gate_weights() * self.rank_mask), self.B)


def add_beamlora(model: nn.Module, r: int, alpha: float | None = None, targets: Iterable[str] | None = ("q", "v"),
                 name: str = "default", seed: int = 0, temperature: float = 0.05,
                 freeze_base: bool = True) -> list[nn.Parameter]:
    """Attach a rank-r BeamLoRA adapter to the targeted ``LoRALinear`` layers; return the new parameters
    (A, B, gate per layer).  Same initialisation stream as ``add_lora`` for equal-seed comparisons."""
    g = torch.Generator().manual_seed(seed)
    if freeze_base:
        for p in model.parameters():
            p.requires_grad_(False)
    alpha = float(r) if alpha is None else alpha
    params: list[nn.Parameter] = []
    for _, layer in target_layers(model, targets):
        ad = BeamLoRAAdapter(layer.in_features, layer.out_features, r, alpha, g, temperature)
        ad.to(layer.weight.device, layer.weight.dtype)
        layer.adapters[name] = ad
        params += [ad.A, ad.B, ad.gate]
    if not params:
        raise ValueError(f"no LoRALinear layer matches targets {targets}")
    return params


def beamlora_modules(model: nn.Module, name: str = "default") -> list[tuple[LoRALinear, BeamLoRAAdapter]]:
    return [(layer, layer.adapters[name]) for _, layer in lora_layers(model)
            if name in layer.adapters and isinstance(layer.adapters[name], BeamLoRAAdapter)]


def top_p_schedule(step: int, end_step: int, p_min: float = 0.95) -> float:
    """Cosine schedule of the cumulative-importance threshold: ``p_min`` at step 0 → 1 at ``end_step``."""
    frac = min(max(step / max(end_step, 1), 0.0), 1.0)
    return 1.0 - (1.0 - p_min) * 0.5 * (1.0 + math.cos(math.pi * frac))


def prune_set(importance: torch.Tensor, p: float, max_prune_frac: float = 0.5) -> torch.Tensor:
    """Indices of the ranks outside the smallest top set whose cumulative importance reaches ``p`` (at most
    ``floor(max_prune_frac · r)`` of them, the least important first)."""
    r = importance.numel()
    order = torch.argsort(importance, descending=True)
    csum = torch.cumsum(importance[order], 0) / importance.sum()
    n_keep = int((csum < p - 1e-12).sum()) + 1
    n_keep = max(n_keep, r - int(math.floor(max_prune_frac * r)), 1)
    return order[n_keep:].flip(0)  # least important first


def _adam_copy(opt: torch.optim.Optimizer | None, param: nn.Parameter, dst, src, dim: int, factor: float) -> None:
    if opt is None or param not in opt.state:
        return
    st = opt.state[param]
    for key, f in (("exp_avg", factor), ("exp_avg_sq", factor ** 2)):
        if key in st:
            buf = st[key]
            buf.index_copy_(dim, dst, buf.index_select(dim, src) * f)


@torch.no_grad()
def prune_and_expand(layer: LoRALinear, ad: BeamLoRAAdapter, pruned: torch.Tensor,
                     optimizer: torch.optim.Optimizer | None = None) -> list[tuple[int, int]]:
    """Prune ``pruned`` ranks of ``ad`` (merged into ``layer.weight``) and refill them with copies of the
    strongest remaining ranks, leaving the layer's output unchanged.  Returns the (pruned, source) pairs."""
    pruned = [int(j) for j in torch.as_tensor(pruned).reshape(-1)]
    if not pruned:
        return []
    imp = ad.importance()
    keep = [int(i) for i in torch.argsort(imp, descending=True) if int(i) not in set(pruned)]
    if not keep:
        raise ValueError("cannot prune every rank")
    w = ad.gate_weights() * ad.rank_mask
    # 1. merge the pruned contributions into the frozen weight
    dev = ad.A.device
    pj = torch.tensor(pruned, device=dev)
    layer.weight += ad.scale * (ad.B[:, pj] * w[pj]) @ ad.A[pj]
    # 2./3. copy the strongest ranks into the freed slots, re-balance gates and B
    pairs = [(j, keep[n % len(keep)]) for n, j in enumerate(pruned)]
    e = torch.exp((ad.gate - ad.gate.max()) / ad.temperature)  # stable exp(g/T) up to a common factor
    shift = ad.gate.max()
    groups: dict[int, list[int]] = {}
    for j, i in pairs:
        groups.setdefault(i, []).append(j)
    for i, js in groups.items():
        members = torch.tensor([i] + js, device=dev)
        e_tot = e[members].sum()
        w_tot = w[members].sum()
        new_gate = ad.temperature * torch.log(e_tot / len(members)) + shift
        factor = float(w[i] / w_tot)
        jt = torch.tensor(js, device=dev)
        it = torch.full((len(js),), i, device=dev)
        ad.A[jt] = ad.A[it]
        ad.B[:, members] = ad.B[:, i:i + 1].clone() * factor
        ad.rank_mask[jt] = ad.rank_mask[i].clone()
        ad.gate[members] = new_gate
        # 4. optimiser state follows the parameters
        _adam_copy(optimizer, ad.A, jt, it, 0, 1.0)
        _adam_copy(optimizer, ad.B, jt, it, 1, factor)
        if optimizer is not None and ad.B in optimizer.state:
            for key, f in (("exp_avg", factor), ("exp_avg_sq", factor ** 2)):
                if key in optimizer.state[ad.B]:
                    optimizer.state[ad.B][key][:, i] *= f
        _adam_copy(optimizer, ad.gate, jt, it, 0, 1.0)
    return pairs


class BeamLoRAScheduler:
    """Call :meth:`step` after every optimiser step: every ``interval`` steps (until ``end_step``) each BeamLoRA
    module prunes its low-importance tail under the current top-p threshold and expands its strong ranks."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer | None, interval: int, end_step: int,
                 p_min: float = 0.95, max_prune_frac: float = 0.5, name: str = "default") -> None:
        self.modules = beamlora_modules(model, name)
        self.optimizer, self.interval, self.end_step = optimizer, interval, end_step
        self.p_min, self.max_prune_frac = p_min, max_prune_frac
        self.n_pruned: list[int] = []  # total ranks re-initialised at each event

    def step(self, step: int) -> int:
        s = step + 1
        if s % self.interval or s >= self.end_step:
            return 0
        p = top_p_schedule(s, self.end_step, self.p_min)
        n = 0
        for layer, ad in self.modules:
            n += len(prune_and_expand(layer, ad, prune_set(ad.importance(), p, self.max_prune_frac),
                                      self.optimizer))
        self.n_pruned.append(n)
        return n
