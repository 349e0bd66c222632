"""MA-RLHF (Chai et al., "MA-RLHF: Reinforcement Learning from Human Feedback with Macro Actions", arXiv
2410.02743): PPO over *macro actions* — runs of consecutive tokens — so that the credit of a delayed reward has to
travel over fewer decision points.

What is implemented
-------------------
* Macro segmentation (:func:`macro_ids`, (B,L) macro index per token, −1 on padding):
  ``"fixed"`` n-grams; ``"random"`` lengths drawn uniformly from [lo, hi]; ``"ppl"`` perplexity-based cuts — a new
  macro starts at a token whose perplexity ``exp(−log π(a_t))`` exceeds a threshold (a surprising token opens a
  new unit) or when the macro reaches ``max_len`` tokens.
* :func:`macro_gae`: per macro the value ``V_m`` and the reward ``R_m`` are averages over its tokens
  (``reward_reduce="sum"`` sums the rewards instead); GAE over macros ``δ_m = R_m + γ V_{m+1} − V_m``,
  ``A_m = δ_m + γλ A_{m+1}``; the advantage and the return ``A_m + V_m`` are broadcast to every token of the macro
  (the token-level PPO update and value loss are then used unchanged).  With one token per macro this is exactly
  token-level GAE.
* :func:`macro_advantage_fn` → an ``advantage_fn`` for ``common.ppo.ppo_train``.

Simplifications: the macro policy's probability is the product of its tokens' probabilities, so the token-level
clipped surrogate with the broadcast advantage is used (not a macro-level ratio clip); the perplexity criterion is
per token.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .common.ppo import Rollout

__all__ = ["macro_ids", "macro_gae", "macro_advantage_fn"]


def macro_ids(mask: torch.Tensor, kind: str = "fixed", n: int = 2, lo: int = 1, hi: int = 4,
              logprobs: torch.Tensor | None = None, threshold: float = 4.0, max_len: int = 8,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """(B,L) index of the macro each valid token belongs to (0, 1, …), −1 where ``mask`` is False."""
    b, L = mask.shape
    dev = mask.device
    pos = torch.arange(L, device=dev).expand(b, L)
    if kind == "fixed":
        ids = pos // n
    elif kind == "random":
        gdev = generator.device if generator is not None else dev
        # one row of L lengths per sequence (drawn row by row: the same stream as a per-row loop); token t belongs
        # to the macro k with cumsum(lens)[k-1] <= t < cumsum(lens)[k]
        lens = torch.stack([torch.randint(lo, hi + 1, (L,), generator=generator, device=gdev) for _ in range(b)])
        ends = lens.to(dev).cumsum(1)
        ids = torch.searchsorted(ends, pos.contiguous(), right=True)
    elif kind == "ppl":
        if logprobs is None:
            raise ValueError("kind='ppl' needs logprobs")
        surprise = torch.exp(-logprobs) > threshold
        ids = torch.zeros(b, L, dtype=torch.long, device=dev)
        cur = torch.zeros(b, dtype=torch.long, device=dev)
        length = torch.zeros(b, dtype=torch.long, device=dev)
        for t in range(L):
            if t > 0:
                new = surprise[:, t] | (length >= max_len)
                cur = cur + new.long()
                length = torch.where(new, torch.zeros_like(length), length)
            ids[:, t] = cur
            length = length + 1
    else:
        raise ValueError(f"unknown macro kind {kind!r}")
    return torch.where(mask.bool(), ids, torch.full_like(ids, -1))


def macro_gae(rewards: torch.Tensor, values: torch.Tensor, macro: torch.Tensor, gamma: float = 1.0,
              lam: float = 0.95, reward_reduce: str = "mean") -> tuple[torch.Tensor, torch.Tensor]:
    """Macro-level GAE broadcast to tokens; rewards, values, macro (B,L) with macro ids in [0, L) (−1 = padding).
    Returns (advantages, returns) (B,L).  The number of macros is bounded by L (no read of the ids on the host)."""
    if reward_reduce not in ("mean", "sum"):
        raise ValueError(reward_reduce)
    b, L = rewards.shape
    valid = macro >= 0
    m_ids = macro.clamp(min=0)
    n_m = max(L, 1)  # empty trailing macros have exists = 0 and do not change the recursion
    cnt = rewards.new_zeros(b, n_m).scatter_add_(1, m_ids, valid.to(rewards.dtype))
    r_sum = rewards.new_zeros(b, n_m).scatter_add_(1, m_ids, rewards * valid)
    v_sum = rewards.new_zeros(b, n_m).scatter_add_(1, m_ids, values * valid)
    exists = cnt > 0
    v_m = v_sum / cnt.clamp(min=1)
    r_m = r_sum / cnt.clamp(min=1) if reward_reduce == "mean" else r_sum
    adv_m = rewards.new_zeros(b, n_m)
    last = rewards.new_zeros(b)
    next_v = rewards.new_zeros(b)
    next_e = rewards.new_zeros(b)
    for m in range(n_m - 1, -1, -1):
        e = exists[:, m].to(rewards.dtype)
        delta = r_m[:, m] + gamma * next_v * next_e - v_m[:, m]
        last = delta + gamma * lam * next_e * last
        adv_m[:, m] = last * e
        next_v, next_e = v_m[:, m], e
    adv = adv_m.gather(1, m_ids) * valid
    ret = (adv_m + v_m).gather(1, m_ids) * valid
    return adv, ret


def macro_advantage_fn(kind: str = "fixed", gamma: float = 1.0, lam: float = 0.95, reward_reduce: str = "mean",
                       generator: torch.Generator | None = None, stats: list | None = None,
                       **kw) -> Callable[[Rollout, torch.Tensor, torch.Tensor, torch.Tensor], tuple]:
    """An ``advantage_fn`` for :func:`~wannmag.llm.common.ppo.ppo_train` (``kw``: n, lo, hi, threshold, max_len)."""

    def fn(ro: Rollout, rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor):
        macro = macro_ids(mask, kind, logprobs=ro.logprobs, generator=generator, **kw)
        if stats is not None:
            n_tok = float(mask.sum())
            n_mac = float(sum(int(row[row >= 0].max()) + 1 for row in macro if bool((row >= 0).any())))
            stats.append(n_tok / max(n_mac, 1.0))
        return macro_gae(rewards, values, macro, gamma, lam, reward_reduce)

    return fn
