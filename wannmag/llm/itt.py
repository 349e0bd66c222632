"""Inner Thinking Transformer (Chen et al., "Inner Thinking Transformer: Leveraging Dynamic Depth Scaling to Foster
Adaptive Internal Thinking", arXiv 2502.13842): a layer re-applies its own weights to the tokens a router selects
("inner thinking steps"), accumulating each step's result through residual thinking connections weighted by
learnable thinking-step encodings.

What is implemented
-------------------
:class:`ITTBlock` wraps a ``TinyTransformer`` block ``f`` (same ``forward(x, allowed, attn_bias, mlp_hook)``
interface, so it replaces ``model.blocks[i]``; :func:`make_itt` does that):

* step 0: ``y₀ = f(x)`` (the base layer);
* **adaptive token routing**: at each extra step t = 1…n a router ``s_t = σ(w_tᵀ y_{t−1} + b_t)`` scores every token
  and the top ρ fraction is selected (``m_t = s_t ≥ τ_t``);
* **residual thinking connection** with the **thinking-step encoding** φ_t ∈ R^d (learnable, one per step):
  ``y_t = y_{t−1} + m_t s_t φ_t ⊙ f(y_{t−1})`` for selected tokens, unchanged elsewhere;
  ``residual=False`` (ablation) overwrites instead: ``y_t = y_{t−1} + m_t s_t (f(y_{t−1}) − y_{t−1})``;
* ``mode="loop"``: the plain loop baseline ``y_t = f(y_{t−1})`` on every token (n extra full passes);
* ρ = 0 (or n = 0) returns the base layer exactly.

FLOPs (:func:`flops_per_token`) are counted analytically per token and forward pass: matmul FLOPs (2 per MAC) of
the projections and the attention scores/values over the average causal context, the routers, the embedding-free
LM head; a thinking step costs its *selected* fraction of a layer (an efficient implementation gathers the selected
tokens, as Mixture-of-Depths does).

Simplifications: the implementation re-runs the block on the whole sequence and keeps the selected tokens' results
(numerically what a gather would give only if unselected keys were also refreshed — here keys/values come from the
current representation of every token); selection is **causal**: the top-ρ threshold τ_t is the (1−ρ)-quantile of
the router scores over the training batch (a running average is used in evaluation, like BatchNorm statistics)
instead of a per-sequence top-k, which would let a token's routing depend on later tokens; no router auxiliary loss.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .common.adapter import as_adapter
from .common.device import module_device, upcast

__all__ = ["ITTBlock", "make_itt", "flops_per_token", "selected_fractions"]


class ITTBlock(nn.Module):
    def __init__(self, block: nn.Module, d_model: int, n_think: int = 2, rho: float = 0.5, residual: bool = True,
                 mode: str = "itt", phi_init: float = 0.5, momentum: float = 0.05) -> None:
        super().__init__()
        if mode not in ("itt", "loop"):
            raise ValueError(mode)
        if not 0.0 <= rho <= 1.0:
            raise ValueError("rho must be in [0, 1]")
        self.block, self.n_think, self.rho, self.residual, self.mode = block, n_think, rho, residual, mode
        self.routers = nn.ModuleList([nn.Linear(d_model, 1) for _ in range(n_think)])
        for r in self.routers:
            nn.init.normal_(r.weight, std=0.02)
            nn.init.zeros_(r.bias)
        self.phi = nn.Parameter(torch.full((n_think, d_model), float(phi_init)))  # thinking-step encodings
        self.register_buffer("tau", torch.full((n_think,), 0.5))
        self.register_buffer("tau_init", torch.zeros(n_think, dtype=torch.bool))
        self.momentum = momentum
        self.last_frac: list[float] = []

    def _threshold(self, t: int, s: torch.Tensor) -> torch.Tensor:
        if self.rho >= 1.0:
            return s.new_tensor(-1.0)
        if self.training:
            q = torch.quantile(upcast(s.detach().reshape(-1)), 1.0 - self.rho)
            with torch.no_grad():
                if not bool(self.tau_init[t]):
                    self.tau[t] = q
                    self.tau_init[t] = True
                else:
                    self.tau[t] = (1 - self.momentum) * self.tau[t] + self.momentum * q
            return q
        return self.tau[t]

    def forward(self, x, *args, **kw):
        """Same signature and return value as the wrapped block (hidden state first if it returns a tuple)."""
        out = self.block(x, *args, **kw)
        y = _hidden(out)
        self.last_frac = []
        if self.mode == "loop":
            for _ in range(self.n_think):
                out = self.block(y, *args, **kw)
                y = _hidden(out)
            return out
        if self.rho == 0.0 or self.n_think == 0:
            return out
        for t in range(self.n_think):
            s = torch.sigmoid(self.routers[t](y)).squeeze(-1)  # (B,T)
            m = (s >= self._threshold(t, s)).to(y.dtype)
            self.last_frac.append(m.detach().mean())  # a tensor (no host sync); selected_fractions() reads it
            f = _hidden(self.block(y, *args, **kw))  # unselected tokens get weight 0 exactly
            w = (m * s)[..., None]
            if self.residual:
                y = y + w * self.phi[t] * f
            else:
                y = y + w * (f - y)
        return (y, *out[1:]) if isinstance(out, tuple) else y


def _hidden(out):
    return out[0] if isinstance(out, tuple) else out


def make_itt(model: nn.Module, layers: Sequence[int] | None = None, **kw) -> nn.Module:
    """Wrap ``model.blocks[i]`` (all layers by default) in :class:`ITTBlock` in place; returns the model."""
    ad = as_adapter(model)
    blocks = ad.blocks
    layers = range(len(blocks)) if layers is None else layers
    for i in layers:
        dev, dt = module_device(blocks[i])
        blocks[i] = ITTBlock(blocks[i], ad.d_model, **kw).to(dev, dt)
    return model


def selected_fractions(model: nn.Module) -> list[list[float]]:
    return [[float(f) for f in blk.last_frac] for blk in as_adapter(model).blocks if isinstance(blk, ITTBlock)]


def flops_per_token(cfg, seq_len: int, blocks: Sequence[nn.Module] | None = None,
                    fractions: Sequence[Sequence[float]] | None = None) -> float:
    """Forward FLOPs per token (2 per multiply-add) of a ``TinyTransformer`` with ``cfg`` on sequences of
    ``seq_len``: per layer ``2(4d² + 2 d d_mlp) + 4 d ctx`` with the average causal context ``ctx = (T+1)/2``,
    times (1 + n) for a loop block, plus ``Σ_t (frac_t · layer + 2d)`` for an ITT block (``fractions``: the
    selected fraction per step; default ρ), plus the LM head ``2 d V``."""
    d, dm = cfg.d_model, cfg.d_mlp
    layer = 2 * (4 * d * d + 2 * d * dm) + 4 * d * (seq_len + 1) / 2
    total = 2 * d * cfg.vocab_size
    blocks = list(blocks) if blocks is not None else [None] * cfg.n_layers
    it = iter(fractions) if fractions is not None else None
    for blk in blocks:
        total += layer
        if isinstance(blk, ITTBlock):
            fr = next(it) if it is not None else None
            if blk.mode == "loop":
                total += blk.n_think * layer
            elif blk.rho > 0:
                fr = fr if fr else [blk.rho] * blk.n_think
                total += sum(f * layer + 2 * d for f in fr)
    return total
