"""Randomized Soft Thinking (Wu et al., "LLMs are single-threaded reasoners: demystifying the working mechanism of
soft thinking", arXiv 2508.03440).

What is implemented
-------------------
* **Soft tokens**: during the thinking phase the next input is not a sampled token but the probability-weighted
  mixture of token embeddings ``e = Σ_v p_v E_v`` over the top-k tokens (renormalised), fed through
  ``inputs_embeds`` (:func:`soft_weights`).
* **Randomness** (the paper's remedy for the "greedy pitfall"):

  - Dirichlet resampling ``p' ~ Dir(α p)`` on the top-k support (:func:`dirichlet_resample`; mean p, variance
    ``p(1−p)/(α+1)``),
  - Gumbel-softmax ``y = softmax((log p + g)/τ)``, ``g ~ Gumbel(0,1)`` i.i.d., τ ≈ 0.5 (:func:`gumbel_softmax`;
    its argmax is distributed as p — the Gumbel-max trick).
* **Decoding** (:func:`think_and_answer`): ``greedy`` / ``sample`` (discrete chain of thought), ``soft``
  (vanilla soft thinking), ``dirichlet``, ``gumbel``; after the thinking budget the answer marker is forced and
  the answer token is decoded (argmax; sampled in ``sample`` mode).
* **Probe** (:func:`top1_dependence`): at each soft step the next-step prediction is recomputed with the soft
  input replaced by (a) the one-hot top-1 token, (b) the soft mixture without its top-1 component; the agreement
  of the argmax and the Jensen–Shannon divergence measure how much the model relies on the top-1 component
  (the paper's "single-threaded" finding: agreement with (a) ≈ 1).

Simplifications
---------------
The thinking length is fixed (s−1 tokens for an s-step problem; the paper's Cold-Stop / end-of-thinking detection
is not needed on this task).  Dirichlet samples use torch's global RNG (seed it with ``seed_everything``);
Gumbel noise can take an explicit generator.  The model is a tiny transformer trained only on discrete tokens.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .common.adapter import as_adapter
from .common.device import multinomial_gen, rand_like_gen, upcast
from .common.metrics import entropy

MODES = ("greedy", "sample", "soft", "dirichlet", "gumbel")

__all__ = ["MODES", "topk_renormalise", "soft_weights", "dirichlet_resample", "gumbel_softmax", "think_and_answer",
           "top1_dependence", "js_divergence"]


def topk_renormalise(probs: torch.Tensor, top_k: int | None) -> torch.Tensor:
    """Keep the top-k probabilities (all if None), renormalise to sum 1."""
    if top_k is None or top_k >= probs.shape[-1]:
        return probs / probs.sum(-1, keepdim=True)
    vals, idx = probs.topk(top_k, -1)
    out = torch.zeros_like(probs).scatter(-1, idx, vals)
    return out / out.sum(-1, keepdim=True)


def soft_weights(probs: torch.Tensor, top_k: int | None = None) -> torch.Tensor:
    """Vanilla soft-thinking weights: top-k renormalised probabilities."""
    return topk_renormalise(probs, top_k)


def dirichlet_resample(probs: torch.Tensor, alpha: float = 1.0, top_k: int | None = None) -> torch.Tensor:
    """``p' ~ Dir(α p)`` on the top-k support of ``probs`` (zeros elsewhere).  Uses the global torch RNG."""
    p = topk_renormalise(probs, top_k)
    conc = (alpha * p).clamp_min(1e-6)
    gam = torch._standard_gamma(conc) * (p > 0)
    return gam / gam.sum(-1, keepdim=True).clamp_min(1e-30)


def gumbel_softmax(probs: torch.Tensor, tau: float = 0.5, top_k: int | None = None,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """``softmax((log p + g)/τ)`` with i.i.d. Gumbel(0,1) noise g, on the top-k support."""
    p = topk_renormalise(probs, top_k)
    u = rand_like_gen(p, generator).clamp(1e-12, 1 - 1e-12)
    g = -torch.log(-torch.log(u))
    logits = torch.where(p > 0, (torch.log(p.clamp_min(1e-30)) + g) / tau, torch.full_like(p, float("-inf")))
    return torch.softmax(logits, -1)


def step_weights(probs: torch.Tensor, mode: str, *, top_k: int | None, alpha: float, tau: float,
                 generator: torch.Generator | None) -> torch.Tensor:
    """Weights over the vocabulary of the next input token for one thinking step."""
    if mode == "greedy":
        return F.one_hot(probs.argmax(-1), probs.shape[-1]).to(probs.dtype)
    if mode == "sample":
        return F.one_hot(multinomial_gen(probs, 1, generator).squeeze(-1), probs.shape[-1]).to(probs.dtype)
    if mode == "soft":
        return soft_weights(probs, top_k)
    if mode == "dirichlet":
        return dirichlet_resample(probs, alpha, top_k)
    if mode == "gumbel":
        return gumbel_softmax(probs, tau, top_k, generator)
    raise ValueError(f"unknown mode {mode!r}; choose from {MODES}")


@torch.no_grad()
def think_and_answer(model: nn.Module, prompt: torch.Tensor, n_think: int, answer_marker: int, mode: str = "soft",
                     *, top_k: int | None = 5, alpha: float = 1.0, tau: float = 0.5,
                     generator: torch.Generator | None = None, return_trace: bool = False):
    """Think ``n_think`` steps in ``mode``, force ``answer_marker``, decode the answer token.

    Returns the answer token ids (B,), and with ``return_trace`` also the list of per-step weights (B,V) and the
    list of input-embedding prefixes before each step (for :func:`top1_dependence`).
    """
    ad = as_adapter(model)
    emb = ad.embed(prompt)
    weights, prefixes = [], []
    for _ in range(n_think):
        probs = torch.softmax(upcast(ad.forward(inputs_embeds=emb).logits[:, -1]), -1)
        w = step_weights(probs, mode, top_k=top_k, alpha=alpha, tau=tau, generator=generator)
        if return_trace:
            prefixes.append(emb)
            weights.append(w)
        emb = torch.cat([emb, ad.soft_embed(w)[:, None]], 1)
    marker = ad.embed(torch.full((prompt.shape[0], 1), answer_marker, dtype=prompt.dtype,
                                           device=prompt.device))
    emb = torch.cat([emb, marker], 1)
    probs = torch.softmax(upcast(ad.forward(inputs_embeds=emb).logits[:, -1]), -1)
    ans = multinomial_gen(probs, 1, generator).squeeze(1) if mode == "sample" else probs.argmax(-1)
    return (ans, weights, prefixes) if return_trace else ans


def js_divergence(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    m = 0.5 * (p + q)
    return entropy(m) - 0.5 * (entropy(p) + entropy(q))


@torch.no_grad()
def top1_dependence(model: nn.Module, prefix: torch.Tensor, weights: torch.Tensor) -> dict[str, float]:
    """How much the next prediction after a soft input depends on its top-1 component.

    ``prefix`` (B,T,d) input embeddings before the soft token, ``weights`` (B,V) the soft token.  Compares the
    next-token distribution after the soft token with those after the one-hot top-1 token and after the soft token
    without its top-1 component (renormalised).  Rows whose soft token is (nearly) one-hot are skipped.
    """
    top1 = weights.argmax(-1)
    keep = weights.max(-1).values < 0.999
    if int(keep.sum()) == 0:
        return {"n": 0, "agree_top1": float("nan"), "agree_rest": float("nan"), "js_top1": float("nan"),
                "js_rest": float("nan")}
    prefix, weights, top1 = prefix[keep], weights[keep], top1[keep]
    onehot = F.one_hot(top1, weights.shape[-1]).to(weights.dtype)
    rest = weights * (1 - onehot)
    rest = rest / rest.sum(-1, keepdim=True)

    ad = as_adapter(model)

    def nxt(w):
        emb = torch.cat([prefix, ad.soft_embed(w)[:, None]], 1)
        return torch.softmax(upcast(ad.forward(inputs_embeds=emb).logits[:, -1]), -1)

    p_soft, p_top1, p_rest = nxt(weights), nxt(onehot), nxt(rest)
    return {"n": int(keep.sum()),
            "agree_top1": float((p_soft.argmax(-1) == p_top1.argmax(-1)).float().mean()),
            "agree_rest": float((p_soft.argmax(-1) == p_rest.argmax(-1)).float().mean()),
            "js_top1": float(js_divergence(p_soft, p_top1).mean()),
            "js_rest": float(js_divergence(p_soft, p_rest).mean())}
