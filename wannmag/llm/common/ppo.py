"""A small token-level PPO loop for RLHF-style kernels (CD-RLHF, MA-RLHF): actor-critic wrapper with a value head,
rollouts with the per-token KL penalty against a frozen reference, GAE and the clipped update.

The kernels plug in through two callbacks of :func:`ppo_train`:

* ``shaping_fn(rollout, rewards) -> rewards`` — adds per-token rewards (CD-RLHF's curiosity) and may train its own
  modules on the rollout;
* ``advantage_fn(rollout, rewards, values, mask) -> (advantages, returns)`` — replaces token GAE (MA-RLHF's macro
  GAE).

Rewards per token: ``r_t = −β (log π(a_t) − log π_ref(a_t))`` plus the scripted reward (a (B,) terminal reward on
the last valid token, or a dense (B,L) tensor).  Advantages are whitened over the batch before the update.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from .adapter import as_adapter
from .device import module_device, upcast
from .generate import generate
from .rl import gae, masked_whiten, ppo_token_loss, value_loss


@dataclass
class PPOConfig:
    steps: int = 100
    max_new: int = 12
    lr: float = 1e-3
    epochs: int = 2           # optimisation passes over each rollout batch
    clip: float = 0.2
    vf_coef: float = 0.5
    vf_clip: float | None = 0.2
    gamma: float = 1.0
    lam: float = 0.95
    kl_coef: float = 0.05     # β of the per-token KL penalty against the reference policy
    whiten: bool = True
    grad_clip: float = 1.0
    temperature: float = 1.0
    eos_id: int | None = None  # None: fixed-length responses


class ActorCritic(nn.Module):
    """A policy (any model with a :mod:`~wannmag.llm.common.adapter`) with a linear value head on its final
    (layer-normed) hidden states; the value head starts at zero."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        dev, dtype = module_device(model)   # the head lives where the model does (device and dtype)
        self.value_head = nn.Linear(as_adapter(model).d_model, 1, device=dev, dtype=dtype)
        nn.init.zeros_(self.value_head.weight)
        nn.init.zeros_(self.value_head.bias)

    def forward(self, seq: torch.Tensor):
        out = as_adapter(self.model).forward(seq, return_final=True)
        h = out.hidden[-1]
        return out.logits, self.value_head(h).squeeze(-1), h


@dataclass
class Rollout:
    prompt: torch.Tensor      # (B,P)
    tokens: torch.Tensor      # (B,L) generated tokens
    mask: torch.Tensor        # (B,L) valid tokens
    logprobs: torch.Tensor    # (B,L) behaviour log-probs
    ref_logprobs: torch.Tensor
    values: torch.Tensor      # (B,L) V(s_t), s_t = the state in which token t is chosen
    logits: torch.Tensor      # (B,L,V) policy logits at each choice
    states: torch.Tensor      # (B,L+1,d) final hidden state of s_0 … s_L (s_{t+1} includes token t)
    extra: dict = field(default_factory=dict)

    @property
    def seq(self) -> torch.Tensor:
        return torch.cat([self.prompt, self.tokens], 1)


def token_logprobs(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    return F.log_softmax(upcast(logits), -1).gather(-1, tokens[..., None]).squeeze(-1)


@torch.no_grad()
def rollout(ac: ActorCritic, ref: nn.Module, prompt: torch.Tensor, cfg: PPOConfig,
            generator: torch.Generator | None = None) -> Rollout:
    ac.eval()
    gen = generate(ac.model, prompt, cfg.max_new, temperature=cfg.temperature, generator=generator,
                   eos_id=cfg.eos_id)
    p = prompt.shape[1]
    seq = torch.cat([prompt, gen.tokens], 1)
    logits, values, h = ac(seq)
    lg = logits[:, p - 1:-1]
    ref_lg = as_adapter(ref).forward(seq).logits[:, p - 1:-1]
    return Rollout(prompt, gen.tokens, gen.mask, token_logprobs(lg, gen.tokens) * gen.mask,
                   token_logprobs(ref_lg, gen.tokens) * gen.mask, values[:, p - 1:-1] * gen.mask, lg, h[:, p - 1:])


def token_rewards(ro: Rollout, scripted: torch.Tensor, kl_coef: float) -> torch.Tensor:
    """Per-token rewards: KL penalty on every token + the scripted reward ((B,) → on the last valid token)."""
    m = ro.mask.float()
    r = -kl_coef * (ro.logprobs - ro.ref_logprobs) * m
    if scripted.dim() == 1:
        last = (ro.mask.long().cumsum(1) == ro.mask.sum(1, keepdim=True)) & ro.mask
        r = r + last.float() * scripted[:, None]
    else:
        r = r + scripted * m
    return r


def ppo_train(ac: ActorCritic, prompt_fn: Callable[[int], torch.Tensor],
              reward_fn: Callable[[Rollout], torch.Tensor], cfg: PPOConfig,
              generator: torch.Generator | None = None, ref: nn.Module | None = None,
              shaping_fn: Callable[[Rollout, torch.Tensor], torch.Tensor] | None = None,
              advantage_fn: Callable | None = None,
              callback: Callable[[int, Rollout, dict], None] | None = None) -> list[dict]:
    """Run ``cfg.steps`` PPO iterations; return per-step stats ``{"reward", "kl", "length"}`` (scripted reward mean
    of the rollout batch, mean per-token log-ratio to the reference, mean response length)."""
    if ref is None:
        ref = copy.deepcopy(ac.model)
    for p in ref.parameters():
        p.requires_grad_(False)
    ref.eval()
    params = [p for p in ac.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, betas=(0.9, 0.98))
    advantage_fn = advantage_fn or (lambda ro, r, v, m: gae(r, v, m, cfg.gamma, cfg.lam))
    hist = []
    for step in range(cfg.steps):
        ro = rollout(ac, ref, prompt_fn(step), cfg, generator)
        scripted = reward_fn(ro).float()
        rewards = token_rewards(ro, scripted, cfg.kl_coef)
        if shaping_fn is not None:
            rewards = shaping_fn(ro, rewards)
        adv, ret = advantage_fn(ro, rewards, ro.values, ro.mask)
        if cfg.whiten:
            adv = masked_whiten(adv, ro.mask)
        ac.train()
        p = ro.prompt.shape[1]
        for _ in range(cfg.epochs):
            logits, values, _ = ac(ro.seq)
            logp = token_logprobs(logits[:, p - 1:-1], ro.tokens)
            loss = ppo_token_loss(logp, ro.logprobs, adv.detach(), ro.mask, cfg.clip)
            loss = loss + cfg.vf_coef * value_loss(values[:, p - 1:-1], ro.values, ret.detach(), ro.mask, cfg.vf_clip)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
        ac.eval()
        m = ro.mask.float()
        info = {"reward": float(scripted.mean() if scripted.dim() == 1 else (scripted * m).sum(1).mean()),
                "kl": float(((ro.logprobs - ro.ref_logprobs) * m).sum() / m.sum().clamp(min=1)),
                "length": float(m.sum(1).mean())}
        hist.append(info)
        if callback is not None:
            callback(step, ro, info)
    return hist
