"""Autoregressive generation for the tiny model (no KV cache: sequences are a few dozen tokens)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .adapter import as_adapter
from .device import multinomial_gen, upcast


@dataclass
class Generation:
    tokens: torch.Tensor    # (B, L) generated ids (pad after <eos>)
    logprobs: torch.Tensor  # (B, L) log-prob of each generated token under the temperature-1 policy
    mask: torch.Tensor      # (B, L) True for generated tokens up to and including <eos>

    @property
    def lengths(self) -> torch.Tensor:
        return self.mask.sum(1)


@torch.no_grad()
def generate(model: nn.Module, prompt: torch.Tensor, max_new: int, *, greedy: bool = False,
             temperature: float = 1.0, generator: torch.Generator | None = None, eos_id: int | None = 2,
             pad_id: int = 0, **forward_kwargs) -> Generation:
    """Greedy or sampled continuation of ``prompt`` (B,P) by up to ``max_new`` tokens.

    ``logprobs`` are log-probabilities under the unmodified (temperature 1) distribution — what a policy-gradient
    method needs as the behaviour log-prob.
    """
    b = prompt.shape[0]
    fwd = as_adapter(model).forward
    seq = prompt
    toks, lps = [], []
    done = torch.zeros(b, dtype=torch.bool, device=prompt.device)
    alive = []
    for _ in range(max_new):
        logits = fwd(seq, **forward_kwargs).logits[:, -1]
        logp = F.log_softmax(upcast(logits), -1)
        if greedy:
            nxt = logits.argmax(-1)
        else:
            probs = torch.softmax(upcast(logits) / temperature, -1)
            nxt = multinomial_gen(probs, 1, generator).squeeze(1)
        nxt = torch.where(done, torch.full_like(nxt, pad_id), nxt)
        alive.append(~done)
        toks.append(nxt)
        lps.append(logp.gather(1, nxt[:, None]).squeeze(1))
        if eos_id is not None:
            done = done | (nxt == eos_id)
        seq = torch.cat([seq, nxt[:, None]], 1)
        if bool(done.all()):
            break
    mask = torch.stack(alive, 1)
    return Generation(torch.stack(toks, 1), torch.stack(lps, 1) * mask, mask)


def sequence_logprobs(model: nn.Module, prompt: torch.Tensor, response: torch.Tensor,
                      **forward_kwargs) -> torch.Tensor:
    """Per-token log-probs (B,L) of ``response`` given ``prompt`` (differentiable)."""
    seq = torch.cat([prompt, response], 1)
    logits = as_adapter(model).forward(seq, **forward_kwargs).logits[:, prompt.shape[1] - 1: -1]
    return F.log_softmax(upcast(logits), -1).gather(2, response[..., None]).squeeze(2)
