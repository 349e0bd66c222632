"""APEX (Gu et al., "Advantageous Parameter EXpansion Training Makes Better Large Language Models", arXiv
2505.24241): find the *advantageous* units of each layer (FFN channels, attention heads with large activations) and
the *disadvantageous* ones, and train an expansion that maps the advantageous parameters into the space of the
disadvantageous ones; fuse the expansion into the weights and repeat in stages.

What is implemented
-------------------
* Units (:func:`unit_groups`): the FFN channels of each layer (row c of ``fc_in`` + its bias, column c of
  ``fc_out``) and the attention heads (the d_head rows of ``q``, ``k``, ``v`` + biases, the d_head columns of ``o``).
* Scores (:func:`activation_scores`): mean |activation| of each channel (post-nonlinearity) and mean L2 norm of
  each head's output (the input of ``o``), over a few batches of the training data.
* Selection (:func:`select_units`): the top fraction = advantageous set T, the bottom fraction = disadvantageous
  set D (disjoint); ``random=True`` draws both at random (the control at an equal trainable budget).
* Expansion (:class:`ExpansionAdapter`, a ``LoRALinear`` adapter): for every projection, a learnable |D|×|T|
  matrix E (zeros at start) adds to each D unit a combination of the T units' parameters,
  ``W_D ← W_D + Σ_t E_dt W_t`` (rows of input-side projections incl. bias; columns of ``fc_out``/``o``), so the
  D units are re-expressed in the span of the strong units while training.  Trainable: all E and the T units' own
  parameters (gradient masks); everything else is frozen.
* Fusion (:func:`fuse`): the expansions are folded into the weights (exactly; T ∩ D = ∅) and removed; the model's
  output is unchanged.  :func:`apex_finetune` runs score → select → expand → train → fuse for several stages.

Simplifications: one expansion matrix per projection (not shared between the input and output side of a unit);
the paper's exact operator form and its stage/ratio schedule may differ; scores use the fine-tuning data only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .common.adapter import ROLES, as_adapter
from .common.lora import LoRALinear
from .common.metrics import effective_rank
from .common.train import batch_loss, forward_batch

__all__ = ["UnitGroup", "unit_groups", "activation_scores", "select_units", "ExpansionAdapter", "expand", "fuse",
           "apex_finetune", "mean_effective_rank", "trainable_budget"]

ADAPTER = "apex"


@dataclass
class UnitGroup:
    layer: int
    kind: str                        # "ffn" or "head"
    in_proj: list[LoRALinear]        # units are row blocks
    out_proj: list[LoRALinear]       # units are column blocks
    unit: int                        # rows/columns per unit
    n_units: int

    @property
    def key(self) -> tuple[int, str]:
        return (self.layer, self.kind)


def unit_groups(model: nn.Module, kinds: Sequence[str] = ("ffn", "head")) -> list[UnitGroup]:
    """The unit groups of every layer, through the model's adapter (plain Linears are wrapped as ``LoRALinear``)."""
    ad = as_adapter(model)
    out = []
    for i in range(ad.n_layers):
        if "ffn" in kinds:
            fc_in, fc_out = ad.lora_layer(i, "fc_in"), ad.lora_layer(i, "fc_out")
            out.append(UnitGroup(i, "ffn", [fc_in], [fc_out], 1, fc_in.out_features))
        if "head" in kinds:
            qkv = [ad.lora_layer(i, r) for r in ("q", "k", "v")]
            out.append(UnitGroup(i, "head", qkv, [ad.lora_layer(i, "o")], ad.d_head, ad.n_heads))
    return out


@torch.no_grad()
def activation_scores(model: nn.Module, batches: Sequence[dict]) -> dict[tuple[int, str], torch.Tensor]:
    """Mean |activation| per FFN channel and mean output norm per attention head, over ``batches``."""
    sums: dict[tuple[int, str], torch.Tensor] = {}
    handles = []
    ad = as_adapter(model)
    for i in range(ad.n_layers):
        h, dh = ad.n_heads, ad.d_head

        def pre(mod, args, i=i, h=h, dh=dh):
            y = args[0]
            s = y.reshape(*y.shape[:-1], h, dh).norm(dim=-1).reshape(-1, h).mean(0)
            sums[(i, "head")] = sums.get((i, "head"), 0) + s
        handles.append(ad.attn_out(i).register_forward_pre_hook(pre))
    try:
        for b in batches:
            out = forward_batch(model, b, return_mlp=True)
            for i, a in enumerate(out.mlp):
                s = a.abs().reshape(-1, a.shape[-1]).mean(0)
                sums[(i, "ffn")] = sums.get((i, "ffn"), 0) + s
    finally:
        for hd in handles:
            hd.remove()
    return {k: v / len(batches) for k, v in sums.items()}


def select_units(scores: torch.Tensor, frac: float, random: bool = False,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(T, D): the ``max(1, round(frac·n))`` highest- and lowest-scoring units (or a random disjoint pair)."""
    n = scores.numel()
    k = max(1, int(round(frac * n)))
    if 2 * k > n:
        raise ValueError("frac too large: T and D must be disjoint")
    if random:
        gdev = generator.device if generator is not None else scores.device
        order = torch.randperm(n, generator=generator, device=gdev).to(scores.device)
    else:
        order = torch.argsort(scores, descending=True)
    return order[:k].sort().values, order[-k:].sort().values


def _block_index(units: torch.Tensor, unit: int) -> torch.Tensor:
    return (units[:, None] * unit + torch.arange(unit, device=units.device)[None]).reshape(-1)


class ExpansionAdapter(nn.Module):
    """``W_D += Σ_t E_dt W_t`` for the unit blocks of one projection (``side="in"``: rows + bias, ``"out"``:
    columns).  Adds ``x ΔWᵀ (+ Δb)`` to the layer output without materialising ΔW."""

    def __init__(self, layer: LoRALinear, t_units: torch.Tensor, d_units: torch.Tensor, unit: int, side: str) -> None:
        super().__init__()
        if side not in ("in", "out"):
            raise ValueError(side)
        self._layer = [layer]  # not a submodule
        self.side, self.unit = side, unit
        dev = layer.weight.device
        self.register_buffer("idx_t", _block_index(t_units.to(dev), unit))
        self.register_buffer("idx_d", _block_index(d_units.to(dev), unit))
        self.nt, self.nd = len(t_units), len(d_units)
        self.E = nn.Parameter(torch.zeros(self.nd, self.nt, device=dev, dtype=layer.weight.dtype))
        self.active = True

    @property
    def layer(self) -> LoRALinear:
        return self._layer[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w, b, u = self.layer.weight, self.layer.bias, self.unit
        if self.side == "in":
            z = F.linear(x, w[self.idx_t], None if b is None else b[self.idx_t])
            z = z.reshape(*z.shape[:-1], self.nt, u)
            mixed = torch.einsum("dt,...tu->...du", self.E, z).reshape(*z.shape[:-2], self.nd * u)
            out = x.new_zeros(*x.shape[:-1], w.shape[0])
            return out.index_copy(-1, self.idx_d, mixed)
        xd = x.index_select(-1, self.idx_d).reshape(*x.shape[:-1], self.nd, u)
        z = torch.einsum("dt,...du->...tu", self.E, xd).reshape(*x.shape[:-1], self.nt * u)
        return F.linear(z, w[:, self.idx_t])

    def delta(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(ΔW, Δb) of the expansion."""
        w, b, u = self.layer.weight, self.layer.bias, self.unit
        dw = torch.zeros_like(w)
        if self.side == "in":
            wt = w[self.idx_t].reshape(self.nt, u, -1)
            dw[self.idx_d] = torch.einsum("dt,tui->dui", self.E, wt).reshape(self.nd * u, -1)
            db = None
            if b is not None:
                db = torch.zeros_like(b)
                db[self.idx_d] = (self.E @ b[self.idx_t].reshape(self.nt, u)).reshape(-1)
            return dw, db
        wt = w[:, self.idx_t].reshape(w.shape[0], self.nt, u)
        dw[:, self.idx_d] = torch.einsum("otu,dt->odu", wt, self.E).reshape(w.shape[0], self.nd * u)
        return dw, None


def _mask_hook(mask: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda g: g * mask


def expand(model: nn.Module, frac: float, score_batches: Sequence[dict], random: bool = False,
           generator: torch.Generator | None = None, kinds: Sequence[str] = ("ffn", "head"),
           train_t: bool = True) -> tuple[list[nn.Parameter], list]:
    """Select T/D in every unit group, attach expansions, freeze everything else.  Returns (trainable parameters,
    hook handles) — the weights of T units are trainable through gradient masks (``train_t``)."""
    scores = activation_scores(model, score_batches)
    for p in model.parameters():
        p.requires_grad_(False)
    params: list[nn.Parameter] = []
    handles = []
    masks: dict[nn.Parameter, torch.Tensor] = {}
    for grp in unit_groups(model, kinds):
        t_u, d_u = select_units(scores[grp.key], frac, random, generator)
        for side, projs in (("in", grp.in_proj), ("out", grp.out_proj)):
            for layer in projs:
                ad = ExpansionAdapter(layer, t_u, d_u, grp.unit, side)
                layer.adapters[ADAPTER] = ad
                params.append(ad.E)
                if not train_t:
                    continue
                idx = _block_index(t_u.to(layer.weight.device), grp.unit)
                m = torch.zeros_like(layer.weight)
                if side == "in":
                    m[idx] = 1.0
                    if layer.bias is not None:
                        mb = torch.zeros_like(layer.bias)
                        mb[idx] = 1.0
                        masks[layer.bias] = mb
                else:
                    m[:, idx] = 1.0
                masks[layer.weight] = m
    for p, m in masks.items():
        p.requires_grad_(True)
        handles.append(p.register_hook(_mask_hook(m)))
        params.append(p)
    return params, handles


@torch.no_grad()
def fuse(model: nn.Module) -> int:
    """Fold every expansion into its layer's weight/bias and remove it; returns how many were fused."""
    n = 0
    for mod in model.modules():
        if isinstance(mod, LoRALinear) and ADAPTER in mod.adapters:
            ad = mod.adapters[ADAPTER]
            dw, db = ad.delta()
            mod.weight += dw
            if db is not None:
                mod.bias += db
            del mod.adapters[ADAPTER]
            n += 1
    return n


def apex_finetune(model: nn.Module, batch_fn: Callable[[int], dict], steps: int, stages: int = 3,
                  frac: float = 0.25, lr: float = 3e-3, random: bool = False, seed: int = 0,
                  n_score_batches: int = 4, kinds: Sequence[str] = ("ffn", "head"),
                  callback: Callable[[int, float], None] | None = None) -> dict:
    """Staged APEX fine-tuning; returns ``{"loss": curve, "budget": trainable entries per stage}``."""
    g = torch.Generator().manual_seed(seed)
    curve, budget = [], []
    per = [steps // stages + (1 if s < steps % stages else 0) for s in range(stages)]
    step = 0
    for st in range(stages):
        model.eval()
        params, handles = expand(model, frac, [batch_fn(-1 - i) for i in range(n_score_batches)], random, g, kinds)
        budget.append(trainable_budget(model))
        opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.98), weight_decay=0.0)
        model.train()
        for _ in range(per[st]):
            loss = batch_loss(model, batch_fn(step))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            curve.append(float(loss.detach()))
            if callback is not None:
                callback(step, curve[-1])
            step += 1
        for h in handles:
            h.remove()
        fuse(model)
    for p in model.parameters():
        p.requires_grad_(True)
    model.eval()
    return {"loss": curve, "budget": budget}


def trainable_budget(model: nn.Module) -> int:
    """Trainable entries under the current expansion: all E plus the T units' rows/columns."""
    n = 0
    for mod in model.modules():
        if isinstance(mod, LoRALinear) and ADAPTER in mod.adapters:
            ad = mod.adapters[ADAPTER]
            n += ad.E.numel()
            other = mod.weight.shape[1] if ad.side == "in" else mod.weight.shape[0]
            n += ad.idx_t.numel() * other + (ad.idx_t.numel() if ad.side == "in" and mod.bias is not None else 0)
    return n


def mean_effective_rank(model: nn.Module, names: Sequence[str] = ("q", "k", "v", "o", "fc_in", "fc_out")) -> float:
    """Mean effective rank of the named projection weights over layers."""
    ad = as_adapter(model)
    vals = [effective_rank(ad.linear(i, r).weight) for i in range(ad.n_layers) for r in ROLES if r in names]
    return sum(vals) / len(vals)
