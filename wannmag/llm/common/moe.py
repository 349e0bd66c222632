"""A top-k mixture-of-experts MLP that drops into ``TinyTransformer.blocks[i].mlp`` (same ``forward(x, hook) ->
(out, acts)`` interface), with the Switch-Transformer load-balancing loss (Fedus et al. 2021).

``MoEMLP(experts, d_model, k)``: router ``softmax(W_r x)``, the top-k experts per token, their gate values
renormalised to sum to one, output ``Σ_{e∈topk} g_e expert_e(x)``.  After each forward ``aux_loss`` holds
``E Σ_e f_e P_e`` (f_e: fraction of routing slots given to expert e, P_e: mean router probability; = 1 when
balanced) and ``last_topk`` the chosen experts; :func:`moe_aux_loss` sums ``aux_loss`` over a model.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def load_balance_loss(probs: torch.Tensor, topi: torch.Tensor, n_experts: int) -> torch.Tensor:
    """Switch load-balancing loss ``E Σ_e f_e P_e`` for router probabilities (N,E) and chosen indices (N,k)."""
    probs = probs.reshape(-1, n_experts)
    topi = topi.reshape(probs.shape[0], -1)
    f = torch.zeros(n_experts, dtype=probs.dtype, device=probs.device)
    f.scatter_add_(0, topi.reshape(-1), torch.ones(topi.numel(), dtype=probs.dtype, device=probs.device))
    f = f / topi.numel()
    return n_experts * (f * probs.mean(0)).sum()


class MoEMLP(nn.Module):
    def __init__(self, experts: Sequence[nn.Module], d_model: int, k: int = 2, returns_acts: bool = True) -> None:
        """``returns_acts``: the experts (and so this layer) return ``(output, activations)`` like a
        ``TinyTransformer`` MLP; False for MLPs that return the output tensor only."""
        super().__init__()
        self.returns_acts = returns_acts
        if not 1 <= k <= len(experts):
            raise ValueError(f"k={k} must be in [1, {len(experts)}]")
        self.experts = nn.ModuleList(experts)
        self.k = k
        self.router = nn.Linear(d_model, len(experts), bias=False)
        nn.init.normal_(self.router.weight, std=0.01)
        self.aux_loss = torch.zeros(())
        self.last_topk: torch.Tensor | None = None

    @property
    def n_experts(self) -> int:
        return len(self.experts)

    def route(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(router probabilities (…,E), top-k gate weights renormalised (…,k), top-k indices (…,k))."""
        probs = torch.softmax(self.router(x), -1)
        topv, topi = probs.topk(self.k, dim=-1)
        return probs, topv / topv.sum(-1, keepdim=True), topi

    def forward(self, x: torch.Tensor, *args):
        """``args`` (e.g. the TinyTransformer MLP hook) are passed to every expert."""
        shape = x.shape
        probs, w, topi = self.route(x)
        flat = x.reshape(-1, shape[-1])
        wf, tf = w.reshape(flat.shape[0], -1), topi.reshape(flat.shape[0], -1)
        out = torch.zeros_like(flat)
        for e, expert in enumerate(self.experts):
            rows, slot = (tf == e).nonzero(as_tuple=True)
            if rows.numel() == 0:
                continue
            y = expert(flat[rows][None], *args)
            y = y[0] if isinstance(y, tuple) else y
            out.index_add_(0, rows, y[0] * wf[rows, slot][:, None])
        self.aux_loss = load_balance_loss(probs, topi, self.n_experts)
        self.last_topk = topi.detach()
        if not self.returns_acts:
            return out.view(shape)
        return out.view(shape), torch.zeros(*shape[:-1], 0, dtype=x.dtype, device=x.device)


def moe_aux_loss(model: nn.Module) -> torch.Tensor:
    """Sum of the ``aux_loss`` of every module that has one (MoE layers, MoHD sub-layers)."""
    tot = None
    for mod in model.modules():
        a = getattr(mod, "aux_loss", None)
        if isinstance(a, torch.Tensor):
            tot = a if tot is None else tot + a.to(tot.device)
    return torch.zeros(()) if tot is None else tot
