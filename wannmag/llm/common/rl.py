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


# ----------------------------------------------------------------------------------------------------- PPO pieces
def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0,
        lam: float = 0.95) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over tokens (Schulman et al. 2016).  rewards, values, mask (B,L).

    ``δ_t = r_t + γ V_{t+1} m_{t+1} − V_t``, ``A_t = δ_t + γλ m_{t+1} A_{t+1}`` (the episode ends after the last
    valid token: V = 0 beyond it).  Returns (advantages, returns = A + V), both zero where ``mask`` is False.
    """
    m = mask.float()
    b, L = rewards.shape
    adv = torch.zeros_like(rewards)
    last = torch.zeros(b, dtype=rewards.dtype, device=rewards.device)
    next_v = torch.zeros(b, dtype=rewards.dtype, device=rewards.device)
    next_m = torch.zeros(b, dtype=rewards.dtype, device=rewards.device)
    for t in range(L - 1, -1, -1):
        delta = rewards[:, t] + gamma * next_v * next_m - values[:, t]
        last = delta + gamma * lam * next_m * last
        adv[:, t] = last * m[:, t]
        next_v, next_m = values[:, t], m[:, t]
    return adv, (adv + values) * m


def masked_whiten(x: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``(x − mean)/std`` over the valid entries (zero elsewhere)."""
    m = mask.float()
    n = m.sum().clamp(min=1)
    mean = (x * m).sum() / n
    var = (((x - mean) * m) ** 2).sum() / n
    return (x - mean) / torch.sqrt(var + eps) * m


def ppo_token_loss(logp_new: torch.Tensor, logp_old: torch.Tensor, adv: torch.Tensor, mask: torch.Tensor,
                   clip: float = 0.2) -> torch.Tensor:
    """Token-level PPO clipped surrogate (to minimise) with per-token advantages adv (N,L), averaged over valid
    tokens (the RLHF convention; :func:`clipped_policy_loss` is the per-sequence GRPO variant)."""
    m = mask.float()
    ratio = torch.exp(logp_new - logp_old)
    per_tok = -torch.minimum(ratio * adv, ratio.clamp(1 - clip, 1 + clip) * adv)
    return (per_tok * m).sum() / m.sum().clamp(min=1)


def value_loss(values: torch.Tensor, values_old: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor,
               clip: float | None = 0.2) -> torch.Tensor:
    """``½ max((V − R)², (clip(V, V_old ± c) − R)²)`` averaged over valid tokens (no clipping for clip=None)."""
    m = mask.float()
    err = (values - returns) ** 2
    if clip is not None:
        vc = values_old + (values - values_old).clamp(-clip, clip)
        err = torch.maximum(err, (vc - returns) ** 2)
    return 0.5 * (err * m).sum() / m.sum().clamp(min=1)
