"""Policy-gradient pieces shared by the RL kernels: GRPO's group-normalised advantages and the clipped surrogate."""

from __future__ import annotations

import torch


def group_advantages(rewards: torch.Tensor, eps: float = 1e-6, scale: bool = True) -> torch.Tensor:
    """GRPO advantages for rewards (B, G) of G responses per prompt: ``(r − mean_g r) / (std_g r + eps)``.

    ``std`` is the population standard deviation of the group; a group with equal rewards gets zero advantage.
    ``scale=False`` only centres (Dr. GRPO style).
    """
    if rewards.dim() != 2:
        raise ValueError("rewards must be (prompts, group)")
    centred = rewards - rewards.mean(1, keepdim=True)
    if not scale:
        return centred
    return centred / (rewards.std(1, unbiased=False, keepdim=True) + eps)


def clipped_policy_loss(logp_new: torch.Tensor, logp_old: torch.Tensor, adv: torch.Tensor, mask: torch.Tensor,
                        clip: float = 0.2, logp_ref: torch.Tensor | None = None, kl_coef: float = 0.0) -> torch.Tensor:
    """PPO/GRPO clipped surrogate (to minimise).  logp_* (N,L) per token, adv (N,), mask (N,L).

    Token terms ``−min(ρ A, clip(ρ, 1±ε) A)`` with ``ρ = exp(logp_new − logp_old)`` are averaged over each
    sequence's tokens, then over sequences (GRPO).  With ``logp_ref`` a k3 KL penalty
    ``exp(ref − new) − (ref − new) − 1`` weighted by ``kl_coef`` is added per token.
    """
    m = mask.float()
    ratio = torch.exp(logp_new - logp_old)
    a = adv[:, None]
    per_tok = -torch.minimum(ratio * a, ratio.clamp(1 - clip, 1 + clip) * a)
    if logp_ref is not None and kl_coef:
        d = logp_ref - logp_new
        per_tok = per_tok + kl_coef * (torch.exp(d) - d - 1)
    per_seq = (per_tok * m).sum(1) / m.sum(1).clamp(min=1)
    return per_seq.mean()
