"""Small metrics used by several kernels."""

from __future__ import annotations

import math

import numpy as np
import torch


def entropy(p: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Shannon entropy (nats) of probability vectors along ``dim`` (0·log 0 = 0)."""
    return -(p * torch.log(p.clamp_min(1e-30))).sum(dim)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k (Chen et al. 2021) from n samples of which c are correct: 1 − C(n−c,k)/C(n,k)."""
    if k > n:
        raise ValueError("k > n")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod((n - c - i) / (n - i) for i in range(k))


def rankdata(x) -> np.ndarray:
    """Average ranks (ties share the mean rank), 1-based."""
    x = np.asarray(x, dtype=float)
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(1, len(x) + 1)
    for v in np.unique(x):
        sel = x == v
        if sel.sum() > 1:
            ranks[sel] = ranks[sel].mean()
    return ranks


def spearman(x, y) -> float:
    """Spearman rank correlation (Pearson correlation of average ranks); nan if a side is constant."""
    rx, ry = rankdata(x), rankdata(y)
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def distinct_n(seqs, n: int = 2) -> float:
    """Distinct-n (Li et al. 2016): distinct n-grams / all n-grams over a set of token sequences (lists or a 2-D
    tensor; for tensors pass already-truncated rows as lists).  0 when there is no n-gram."""
    grams: list[tuple] = []
    for s in seqs:
        s = [int(t) for t in s]
        grams += [tuple(s[i:i + n]) for i in range(len(s) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def effective_rank(w: torch.Tensor, eps: float = 1e-12) -> float:
    """Effective rank (Roy & Vetterli 2007): ``exp(H(σ/Σσ))`` of the singular values of a matrix, in [1, min(m,n)]."""
    s = torch.linalg.svdvals(w.detach().double())
    p = s / s.sum().clamp_min(eps)
    return float(torch.exp(entropy(p)))
