"""KAPE: knowledge activation probability entropy (arXiv 2505.11995) — finding and switching off the MLP neurons
specific to internal (parametric) or external (context) knowledge.

What is implemented
-------------------
* Activation probability of every MLP neuron (post-nonlinearity activation > 0) over a set of runs, at the answer
  position (:func:`collect_activations`, :func:`activation_probability`).
* Two kinds of runs: *internal* (question without context) and *external* (question after a context).  For each
  neuron the two probabilities are normalised to a distribution ``p̂ = (P_int, P_ext)/(P_int + P_ext)`` and its
  entropy is the KAPE score (:func:`kape_scores`): 0 for a neuron that fires for one kind only, ln 2 for one that
  fires equally for both (the LAPE recipe of language-specific neurons applied to knowledge sources).
* Selection (:func:`select_neurons`): among neurons whose larger activation probability exceeds ``min_prob``,
  the ``frac`` lowest-KAPE neurons of each kind (kind = the source with the larger probability).
* Deactivation (:func:`deactivated`): a context manager zeroing the chosen neurons through the model's
  persistent neuron masks.

Simplifications: activations are taken at the answer position only; the paper's exact thresholds and its use of
the neurons (e.g. for conflict-aware steering in real LLMs) are replaced by a plain ablation on a tiny model.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import contextmanager

import torch
from torch import nn

from .common.adapter import as_adapter
from .common.metrics import entropy

__all__ = ["collect_activations", "activation_probability", "kape_scores", "select_neurons", "deactivated"]


@torch.no_grad()
def collect_activations(model: nn.Module, batches: Iterable[dict], position: int = -1) -> torch.Tensor:
    """MLP activations at ``position`` for every example: (N, L, d_mlp)."""
    out = []
    for b in batches:
        o = as_adapter(model).forward(b["input_ids"], return_mlp=True)
        out.append(torch.stack([a[:, position] for a in o.mlp], 1))
    return torch.cat(out, 0)


def activation_probability(acts: torch.Tensor, threshold: float = 0.0) -> torch.Tensor:
    """Fraction of examples on which each neuron is active (> threshold): (N,L,d) → (L,d)."""
    return (acts > threshold).float().mean(0)


def kape_scores(p_int: torch.Tensor, p_ext: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Entropy of ``(P_int, P_ext)/(P_int + P_ext)`` per neuron (nats; ln 2 where both are zero)."""
    tot = p_int + p_ext
    p = torch.stack([p_int, p_ext], -1) / tot.clamp_min(eps)[..., None]
    p = torch.where(tot[..., None] > eps, p, torch.full_like(p, 0.5))
    return entropy(p)


def select_neurons(p_int: torch.Tensor, p_ext: torch.Tensor, frac: float = 0.05,
                   min_prob: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """Boolean masks (L,d) of internal-specific and external-specific neurons.

    Candidates fire with probability ≥ ``min_prob`` for their preferred source; of each kind the
    ``ceil(frac · L · d)`` candidates with the lowest KAPE are chosen (fewer if there are fewer candidates).
    """
    score = kape_scores(p_int, p_ext)
    n_pick = max(1, int(round(frac * p_int.numel())))
    masks = []
    for pref, other in ((p_int, p_ext), (p_ext, p_int)):
        cand = (pref > other) & (pref >= min_prob)
        s = torch.where(cand, score, torch.full_like(score, float("inf"))).reshape(-1)
        idx = s.topk(min(n_pick, s.numel()), largest=False).indices
        m = torch.zeros(s.numel(), dtype=torch.bool, device=s.device)
        m[idx] = cand.reshape(-1)[idx]  # non-candidates (score inf) are never picked
        masks.append(m.view_as(p_int))
    return masks[0], masks[1]


@contextmanager
def deactivated(model: nn.Module, mask: torch.Tensor):
    """Zero the MLP neurons selected by ``mask`` (L,d) inside the ``with`` block (restores all masks to 1 after)."""
    ad = as_adapter(model)
    try:
        for layer in range(mask.shape[0]):
            ad.set_neuron_mask(layer, (~mask[layer]).float())
        yield model
    finally:
        ad.clear_neuron_masks()
