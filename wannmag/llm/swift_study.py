"""Swift Study (Peng et al., "Shall your data strategy work? Perform a swift study", arXiv 2502.13514):
predict whether a data strategy helps from the gradient influence of a few probe examples, without retraining.

What is implemented
-------------------
* Per-example loss gradients over a parameter set (:func:`example_gradients`), flattened.
* A seeded Johnson–Lindenstrauss random projection to k dimensions, generated chunk by chunk so that the D×k
  matrix is never stored (:class:`RandomProjector`; ``E⟨Pa, Pb⟩ = ⟨a, b⟩``).
* First-order (TracIn-style) influence of a probe example z on an evaluation example z' at checkpoint t with
  learning rate η_t: ``I_t = η_t ⟨∇L(z'), ∇L(z)⟩`` — the decrease of the evaluation loss after one SGD step of
  size η_t on z, to first order (:func:`influence`); summed over checkpoints (:func:`checkpoint_influence`).
* The strategy score: mean influence of its probe examples on a set of evaluation examples, optionally cosine-
  normalised (``normalize=True`` divides by the gradient norms).

Simplifications: the paper's relative-influence normalisation and in-/cross-task inflow decomposition are reduced
to the mean (optionally cosine-normalised) probe→evaluation influence; SGD (not Adam) geometry is assumed; the
model is a tiny transformer and the "strategies" are synthetic data formats.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from .common.device import randn_gen
from .common.train import batch_loss

__all__ = ["flat_grad", "example_gradients", "RandomProjector", "influence", "checkpoint_influence"]


def flat_grad(model: nn.Module, loss: torch.Tensor, params: Sequence[nn.Parameter]) -> torch.Tensor:
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1) for g, p in zip(grads, params)])


def example_gradients(model: nn.Module, examples: Sequence[dict], params: Sequence[nn.Parameter] | None = None,
                      loss_fn: Callable[[nn.Module, dict], torch.Tensor] = batch_loss) -> torch.Tensor:
    """(n, D) flattened loss gradients, one row per example dict (each a batch of size 1 or a small group)."""
    params = [p for p in model.parameters() if p.requires_grad] if params is None else list(params)
    return torch.stack([flat_grad(model, loss_fn(model, ex), params) for ex in examples])


class RandomProjector:
    """x ↦ R x/√k with R (k×D) i.i.d. N(0,1) generated per chunk of D from a seed (never stored whole)."""

    def __init__(self, dim: int, k: int = 256, seed: int = 0, chunk: int = 8192) -> None:
        self.dim, self.k, self.seed, self.chunk = dim, k, seed, chunk

    def __call__(self, g: torch.Tensor) -> torch.Tensor:
        if g.shape[-1] != self.dim:
            raise ValueError(f"expected dimension {self.dim}, got {g.shape[-1]}")
        out = g.new_zeros(*g.shape[:-1], self.k)
        gen = torch.Generator().manual_seed(self.seed)  # CPU stream: the same R on every device
        for start in range(0, self.dim, self.chunk):
            stop = min(start + self.chunk, self.dim)
            r = randn_gen((stop - start, self.k), gen, device=g.device, dtype=g.dtype)
            out += g[..., start:stop] @ r
        return out / self.k ** 0.5


def influence(g_eval: torch.Tensor, g_probe: torch.Tensor, lr: float, normalize: bool = False) -> torch.Tensor:
    """(m, n) influence ``lr ⟨g_eval_i, g_probe_j⟩`` (positive: a step on the probe lowers the eval loss)."""
    if normalize:
        g_eval = g_eval / g_eval.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        g_probe = g_probe / g_probe.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return lr * g_eval @ g_probe.T


def checkpoint_influence(model: nn.Module, checkpoints: Sequence[tuple[dict, float]], probes: dict[str, list[dict]],
                         evals: dict[str, list[dict]], projector: RandomProjector | None = None,
                         normalize: bool = False,
                         loss_fn: Callable[[nn.Module, dict], torch.Tensor] = batch_loss) -> dict[tuple[str, str], float]:
    """Mean influence of each probe set on each evaluation set, summed over ``(state_dict, lr)`` checkpoints.

    Returns ``{(strategy, eval_set): score}``.  The model's parameters are restored afterwards.
    """
    backup = {k: v.clone() for k, v in model.state_dict().items()}
    scores: dict[tuple[str, str], float] = {(s, e): 0.0 for s in probes for e in evals}
    try:
        for state, lr in checkpoints:
            model.load_state_dict(state)
            gp = {s: example_gradients(model, ex, loss_fn=loss_fn) for s, ex in probes.items()}
            ge = {e: example_gradients(model, ex, loss_fn=loss_fn) for e, ex in evals.items()}
            if projector is not None:
                gp = {s: projector(v) for s, v in gp.items()}
                ge = {e: projector(v) for e, v in ge.items()}
            for s in probes:
                for e in evals:
                    scores[(s, e)] += float(influence(ge[e], gp[s], lr, normalize).mean())
    finally:
        model.load_state_dict(backup)
    return scores
