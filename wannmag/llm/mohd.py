"""MoHD — Mixture of Hidden Dimensions (Chen et al., "Mixture of Hidden-Dimensions Transformer", arXiv 2412.05644,
ICML 2025): the hidden dimension is split into sub-dimension groups; *shared* groups are always active, *routed*
groups are activated per token by a router, so each sub-layer reads and writes only part of the hidden state.

What is implemented
-------------------
:class:`HiddenRouter` (one per sub-layer) and :class:`MoHDBlock` (wraps a ``TinyTransformer`` block; same forward
interface, :func:`make_mohd` replaces every block):

* d is split into ``n_groups`` groups of d/n_groups dimensions; the first ``n_shared`` are shared, a router
  ``softmax(W_r LN(x))`` over the routed groups picks the top ``k`` per token;
* **activation scaling**: the active input sub-dimensions are multiplied by ``n_groups / n_active`` (restores the
  expected size of every dot product ``w·x`` of the masked input);
* **group fusion**: each active routed group receives the mean of the inactive routed groups through a learnable
  (d_g × d_g) map F (zeros at start), so information of switched-off groups is not lost outright;
* the router gate enters with value 1 and the router's gradient (straight-through ``1 + p − sg(p)``);
* the sub-layer (attention or MLP) reads the masked input and its output is masked to the same groups before the
  residual addition; **load balancing**: Switch loss over the routed groups in ``aux_loss`` (sum with
  ``common.moe.moe_aux_loss``);
* :func:`mohd_flops_per_token`: projections cost ∝ the active fraction (q k v fc_in read, o fc_out write only active
  dimensions); attention scores and values are dense.

With all groups active (k = routed groups), MoHD is exactly the dense block (scaling 1, no inactive groups to fuse,
gates 1).

Simplifications: one router per sub-layer on the layer-normed input (the paper's exact router placement, scaling
factor and fusion operator may differ); masks are applied to dense computations (the FLOPs are counted as an
implementation that gathers the active dimensions would spend them); no expansion setting (total d larger than the
dense model) is run here.
"""

from __future__ import annotations

import torch
from torch import nn

from .common.adapter import ModelAdapter, TinyAdapter, as_adapter
from .common.device import module_device
from .common.moe import load_balance_loss

__all__ = ["HiddenRouter", "MoHDBlock", "make_mohd", "mohd_flops_per_token", "active_fraction"]


class HiddenRouter(nn.Module):
    def __init__(self, d_model: int, n_groups: int = 8, n_shared: int = 2, k: int = 2, scaling: bool = True,
                 fusion: bool = True) -> None:
        super().__init__()
        if d_model % n_groups:
            raise ValueError("d_model must be divisible by n_groups")
        self.n_routed = n_groups - n_shared
        if not 0 <= k <= self.n_routed or n_shared < 0:
            raise ValueError("need 0 <= k <= n_groups - n_shared")
        self.d, self.n_groups, self.n_shared, self.k = d_model, n_groups, n_shared, k
        self.dg = d_model // n_groups
        self.scaling, self.fusion = scaling, fusion
        self.router = nn.Linear(d_model, max(self.n_routed, 1), bias=False)
        nn.init.normal_(self.router.weight, std=0.02)
        self.fuse = nn.Parameter(torch.zeros(self.dg, self.dg))
        self.aux_loss = torch.zeros(())

    @property
    def n_active(self) -> int:
        return self.n_shared + self.k

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(masked, scaled, fused input; binary group mask over d) for a layer-normed input h (…, d)."""
        shape = h.shape
        g = h.reshape(*shape[:-1], self.n_groups, self.dg)
        gate = torch.ones(*shape[:-1], self.n_groups, dtype=h.dtype, device=h.device)
        active = torch.zeros_like(gate)
        active[..., : self.n_shared] = 1.0
        if self.n_routed and self.k:
            probs = torch.softmax(self.router(h), -1)
            topv, topi = probs.topk(self.k, dim=-1)
            sel = torch.zeros_like(probs).scatter(-1, topi, 1.0)
            active[..., self.n_shared:] = sel
            st = 1.0 + probs - probs.detach()  # value 1, gradient of the router probability
            gate[..., self.n_shared:] = torch.where(sel > 0, st, torch.ones_like(st))
            self.aux_loss = load_balance_loss(probs, topi, self.n_routed)
        else:
            self.aux_loss = h.new_zeros(())
        if self.fusion and self.n_routed and self.k < self.n_routed:
            inactive = (1.0 - active[..., self.n_shared:])[..., None]
            routed = g[..., self.n_shared:, :]
            mean_off = (routed * inactive).sum(-2) / inactive.sum(-2).clamp_min(1.0)
            fused = routed + active[..., self.n_shared:, None] * (mean_off @ self.fuse)[..., None, :]
            g = torch.cat([g[..., : self.n_shared, :], fused], -2)
        scale = self.n_groups / self.n_active if self.scaling else 1.0
        x = g * (active * gate)[..., None] * scale
        mask = active[..., None].expand(*active.shape, self.dg).reshape(shape)
        return x.reshape(shape), mask


class MoHDBlock(nn.Module):
    def __init__(self, block: nn.Module, d_model: int, ops: type[ModelAdapter] = TinyAdapter, **kw) -> None:
        super().__init__()
        self.block = block
        self.ops = ops  # the adapter class: block-level sub-layer calls (a class, not the model)
        self.r_attn = HiddenRouter(d_model, **kw)
        self.r_mlp = HiddenRouter(d_model, **kw)
        self.last_active: float = 1.0

    def forward(self, x, *args):
        b, ops = self.block, self.ops
        drop = ops.block_drop(b)
        h, m1 = self.r_attn(ops.block_ln1(b)(x))
        a, extra_a = ops.attn_call(b, h, *args)
        x = x + drop(a * m1)
        h, m2 = self.r_mlp(ops.block_ln2(b)(x))
        mo, extra_m = ops.mlp_call(b, h, *args)
        x = x + drop(mo * m2)
        self.last_active = ((m1.mean() + m2.mean()) / 2).detach()  # tensor (no host sync); active_fraction reads it
        return ops.block_pack(x, extra_a, extra_m)


def make_mohd(model: nn.Module, **kw) -> nn.Module:
    """Replace every block of ``model`` by a :class:`MoHDBlock` in place (kw: n_groups, n_shared, k, scaling,
    fusion); returns the model."""
    ad = as_adapter(model)
    blocks = ad.blocks
    for i in range(len(blocks)):
        dev, dt = module_device(blocks[i])
        blocks[i] = MoHDBlock(blocks[i], ad.d_model, ops=type(ad), **kw).to(dev, dt)
    return model


def active_fraction(model: nn.Module) -> float:
    vals = [float(blk.last_active) for blk in as_adapter(model).blocks if isinstance(blk, MoHDBlock)]
    return sum(vals) / len(vals) if vals else 1.0


def mohd_flops_per_token(cfg, seq_len: int, active: float = 1.0, n_groups: int = 8, n_routed: int = 0) -> float:
    """Forward FLOPs per token: per layer ``2(4 d d_a + 2 d_a d_mlp) + 4 d ctx`` (d_a = active·d) plus the routers
    ``2·2 d n_routed``, plus the LM head ``2 d V``; ``active = 1`` gives the dense count."""
    d, dm = cfg.d_model, cfg.d_mlp
    da = active * d
    layer = 2 * (4 * d * da + 2 * da * dm) + 4 * d * (seq_len + 1) / 2 + 2 * 2 * d * n_routed
    return cfg.n_layers * layer + 2 * d * cfg.vocab_size
