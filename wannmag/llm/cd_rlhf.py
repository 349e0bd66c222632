"""CD-RLHF (Sun et al., "Curiosity-Driven Reinforcement Learning from Human Feedback", arXiv 2501.11463): an
intrinsic curiosity module (ICM) rewards tokens whose next state the module cannot predict, to keep generations
diverse under RLHF; the curiosity reward is given only to tokens the policy was not already sure about.

What is implemented
-------------------
* :class:`CuriosityModule`: state encoder φ (the policy's final hidden state → feature) and forward model
  ``f(φ(s_t), e(a_t)) ≈ φ(s_{t+1})``; the prediction error ``½‖f − φ(s_{t+1})‖²`` per token; :meth:`update` trains
  the forward model (and action embedding) on a rollout.
* :func:`intrinsic_rewards`: the error normalised by a running RMS (:class:`RunningRMS`; no mean subtraction, so an
  exact prediction gives exactly zero), masked to the tokens **outside the policy's top-k** at the time of sampling.
* :func:`curiosity_shaping` → a ``shaping_fn`` for ``common.ppo.ppo_train``: ``r_t ← r_t + η r^int_t`` (the
  extrinsic part = scripted reward + per-token KL penalty), then one ICM update on the rollout.

Simplifications: the state encoder is a fixed random projection (random-feature ICM; the paper trains the encoder —
without an inverse model a trained encoder can collapse to a constant and make every error zero); the reward is a
scripted function, not a reward model; the top-k gate uses the behaviour policy's logits.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .common.ppo import Rollout

__all__ = ["CuriosityModule", "RunningRMS", "topk_gate", "intrinsic_rewards", "curiosity_shaping"]


class CuriosityModule(nn.Module):
    def __init__(self, d_state: int, vocab_size: int, d_feat: int = 32, d_act: int = 16, d_hidden: int = 64,
                 seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.encoder = nn.Linear(d_state, d_feat, bias=False)
        with torch.no_grad():
            self.encoder.weight.copy_(torch.randn(d_feat, d_state, generator=g) / d_state ** 0.5)
        self.encoder.weight.requires_grad_(False)  # fixed random features
        self.action_emb = nn.Embedding(vocab_size, d_act)
        self.forward_model = nn.Sequential(nn.Linear(d_feat + d_act, d_hidden), nn.GELU(),
                                           nn.Linear(d_hidden, d_feat))

    def predict(self, states: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(prediction of φ(s_{t+1}), target φ(s_{t+1})) for states (B,L+1,d) and tokens (B,L)."""
        phi = self.encoder(states)
        pred = self.forward_model(torch.cat([phi[:, :-1], self.action_emb(tokens)], -1))
        return pred, phi[:, 1:].detach()

    def errors(self, states: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        pred, tgt = self.predict(states, tokens)
        return 0.5 * ((pred - tgt) ** 2).sum(-1)

    def update(self, states: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor,
               opt: torch.optim.Optimizer, epochs: int = 1) -> float:
        m = mask.float()
        loss = states.new_zeros(())
        for _ in range(epochs):
            loss = (self.errors(states.detach(), tokens) * m).sum() / m.sum().clamp(min=1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return float(loss.detach())


class RunningRMS:
    """Running root-mean-square of non-negative values (exponential moving average of the squares)."""

    def __init__(self, momentum: float = 0.1, eps: float = 1e-8) -> None:
        self.momentum, self.eps = momentum, eps
        self.mean_sq: float | None = None

    def update(self, x: torch.Tensor) -> None:
        v = float((x.detach() ** 2).mean()) if x.numel() else 0.0
        self.mean_sq = v if self.mean_sq is None else (1 - self.momentum) * self.mean_sq + self.momentum * v

    @property
    def rms(self) -> float:
        return (self.mean_sq or 0.0) ** 0.5 + self.eps


def topk_gate(logits: torch.Tensor, tokens: torch.Tensor, k: int = 1) -> torch.Tensor:
    """True where the sampled token is **not** among the policy's top-k tokens (rank ≥ k; ties count as inside)."""
    chosen = logits.gather(-1, tokens[..., None])
    rank = (logits > chosen).sum(-1)
    return rank >= k


def intrinsic_rewards(errors: torch.Tensor, gate: torch.Tensor, mask: torch.Tensor,
                      normaliser: RunningRMS | None = None) -> torch.Tensor:
    """``error / RMS`` on gated valid tokens, 0 elsewhere (the normaliser is updated with the valid errors)."""
    valid = mask.bool()
    if normaliser is not None:
        normaliser.update(errors[valid])
        errors = errors / normaliser.rms
    return errors * (gate & valid).float()


def curiosity_shaping(icm: CuriosityModule, eta: float = 0.5, k: int = 1, lr: float = 1e-3,
                      stats: list | None = None) -> Callable[[Rollout, torch.Tensor], torch.Tensor]:
    """A ``shaping_fn`` for :func:`~wannmag.llm.common.ppo.ppo_train` adding ``η r^int`` to the token rewards and
    training the ICM on each rollout (``stats`` collects per-step means of the raw error and of r^int)."""
    opt = torch.optim.Adam([p for p in icm.parameters() if p.requires_grad], lr=lr)
    norm = RunningRMS()

    def shape(ro: Rollout, rewards: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            err = icm.errors(ro.states, ro.tokens)
        gate = topk_gate(ro.logits, ro.tokens, k)
        r_int = intrinsic_rewards(err, gate, ro.mask, norm)
        icm.update(ro.states, ro.tokens, ro.mask, opt)
        if stats is not None:
            m = ro.mask.float()
            stats.append({"error": float((err * m).sum() / m.sum()), "r_int": float((r_int * m).sum() / m.sum()),
                          "gated": float((gate.float() * m).sum() / m.sum())})
        return rewards + eta * r_int

    return shape
