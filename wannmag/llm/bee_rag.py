"""BEE-RAG: balanced entropy engineering for retrieval-augmented generation (Wang et al., arXiv 2508.05100).

What is implemented
-------------------
Attention of the query tokens over n retrieved documents gets one additive bias per document on the logits of
every key token of that document::

    a_ij = softmax_j( q_i·k_j/√d + β_doc(j) )

* **Document importance (zero-shot, "intrinsic")**: the log attention mass of each document under the layer's
  own raw scores, ``ℓ_d = logsumexp_{j∈d} q·k_j/√d``, averaged over the heads of the layer ("multi-importance":
  every head votes) and standardised over the documents of the row, ``ẑ_d``.
* **Balancing**: ``β_d = μ + σ ẑ_d``.  The spread σ is the balancing factor: it is chosen so that the attention
  entropy stays at its value for a reference number of documents ``n_ref`` while n grows (entropy invariance);
  μ keeps the total attention mass on the documents unchanged (the query / instruction tokens keep their share).
  Two ways to pick σ:

  - ``"closed_form"``: Gaussian logits give ``H ≈ ln N − Var(logits)/2`` (N keys), so invariance needs
    ``σ² = σ_ref² + 2 ln(n/n_ref)`` (:func:`closed_form_sigma`).  Exact only for N ≫ exp(Var); at n ≤ 64 it
    under-corrects (entropy still grows, about half as fast).
  - ``"solve"`` (default): per query row and head, bisection on σ ≥ 0 so that the row entropy equals the
    reference entropy ``H_ref[layer, head]`` (measured by :func:`calibrate_reference_entropy` on inputs with
    ``n_ref`` documents).  This is the target-variance choice made exact.
* **Learned light variant** (:class:`LearnedBalance`): per layer and head a learnable gain g and base spread σ0,
  ``σ = exp(g)·sqrt(σ0² + 2 ln(n/n_ref))``, and learnable head weights for the importance vote — 3·L·H scalars
  trained with the backbone frozen (the paper's parameter-efficient balancing-factor fine-tuning).

Simplifications (stated honestly)
---------------------------------
* The paper works with real LLMs and passages; here documents are short synthetic token blocks encoded in parallel
  (each document sees only itself, positions restart per document, :class:`~wannmag.llm.common.KeyValueDocsTask`),
  and the bias acts only on the rows of the query tokens (the rows that attend across documents).
* σ is clamped at ≥ 0 (the bias only sharpens; for n < n_ref nothing is changed).
* The paper's exact importance estimator and its fine-tuning recipe are not reproduced token for token; the
  importance here is the model's own per-document attention mass, and the learned variant trains 3·L·H scalars.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .common.adapter import as_adapter
from .common.metrics import entropy

__all__ = ["closed_form_sigma", "doc_log_mass", "standardise", "balanced_bias_row", "solve_sigma",
           "BalancedDocBias", "LearnedBalance", "calibrate_reference_entropy", "query_row_entropy"]


def closed_form_sigma(n_docs: int | torch.Tensor, n_ref: int, sigma_ref: float | torch.Tensor = 0.0):
    """Gaussian entropy-invariance spread: ``sqrt(max(σ_ref² + 2 ln(n/n_ref), 0))``."""
    n = torch.as_tensor(n_docs, dtype=torch.float32)
    var = torch.as_tensor(sigma_ref, dtype=torch.float32, device=n.device) ** 2 + 2 * torch.log(n / n_ref)
    return var.clamp_min(0).sqrt()


def doc_onehot(doc_ids: torch.Tensor, n_docs: int, dtype: torch.dtype | None = None) -> torch.Tensor:
    """(B,T,n) float (default dtype) on ``doc_ids.device``: key token t belongs to document d (non-document tokens:
    all zero)."""
    dtype = torch.get_default_dtype() if dtype is None else dtype
    oh = torch.nn.functional.one_hot(doc_ids.clamp_min(0), n_docs).to(dtype)
    return oh * (doc_ids >= 0).unsqueeze(-1).to(dtype)


def doc_log_mass(scores: torch.Tensor, allowed: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
    """``ℓ_d = log Σ_{j∈d, allowed} exp(scores_j)`` for every row: (…,T) scores → (…,n)."""
    s = scores.masked_fill(~allowed, float("-inf"))
    mx = s.amax(-1, keepdim=True).clamp_min(-1e30)
    w = torch.exp(s - mx)
    mass = w @ onehot if onehot.dim() == 2 else torch.einsum("bhqt,btn->bhqn", w, onehot)
    return torch.log(mass.clamp_min(1e-30)) + mx


def standardise(z: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Zero mean, unit (population) variance along the last axis."""
    return (z - z.mean(-1, keepdim=True)) / (z.std(-1, unbiased=False, keepdim=True) + eps)


def balanced_bias_row(zhat: torch.Tensor, sigma: torch.Tensor, ell: torch.Tensor) -> torch.Tensor:
    """Per-document bias ``β = μ + σ ẑ`` with μ keeping the documents' total mass: (…,n)."""
    b = sigma[..., None] * zhat
    mu = torch.logsumexp(ell, -1, keepdim=True) - torch.logsumexp(ell + b, -1, keepdim=True)
    return mu + b


def _row_entropy(scores: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    p = torch.softmax(scores.masked_fill(~allowed, float("-inf")), -1)
    return entropy(p)


def solve_sigma(scores: torch.Tensor, allowed: torch.Tensor, onehot: torch.Tensor, zhat: torch.Tensor,
                target: torch.Tensor, sigma_max: float = 30.0, iters: int = 24) -> torch.Tensor:
    """Bisection for σ ∈ [0, σ_max] such that the row entropy with ``β = μ + σ ẑ`` equals ``target``.

    scores/allowed (B,H,T,T), onehot (B,T,n), zhat (B,H,T,n), target broadcastable to (B,H,T).
    Rows already below the target get σ = 0; rows that cannot reach it get σ_max.
    """
    ell = doc_log_mass(scores, allowed, onehot)
    target = torch.as_tensor(target, dtype=scores.dtype, device=scores.device).expand(scores.shape[:-1])

    def ent(sig):
        beta = balanced_bias_row(zhat, sig, ell)
        return _row_entropy(scores + torch.einsum("bhqn,btn->bhqt", beta, onehot), allowed)

    lo = scores.new_zeros(scores.shape[:-1])
    hi = torch.full_like(lo, sigma_max)
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        above = ent(mid) > target
        lo = torch.where(above, mid, lo)
        hi = torch.where(above, hi, mid)
    sig = 0.5 * (lo + hi)
    return torch.where(ent(torch.zeros_like(lo)) <= target, torch.zeros_like(sig), sig)


class LearnedBalance(nn.Module):
    """3·L·H learnable scalars: log-gain g, base spread σ0 and importance head-weight logits w."""

    def __init__(self, n_layers: int, n_heads: int) -> None:
        super().__init__()
        self.log_gain = nn.Parameter(torch.zeros(n_layers, n_heads))
        self.sigma0 = nn.Parameter(torch.zeros(n_layers, n_heads))
        self.head_logits = nn.Parameter(torch.zeros(n_layers, n_heads))

    def sigma(self, layer: int, n_docs: int, n_ref: int) -> torch.Tensor:
        var = self.sigma0[layer] ** 2 + 2 * math.log(n_docs / n_ref)
        return torch.exp(self.log_gain[layer]) * torch.sqrt(var.clamp_min(1e-8))


class BalancedDocBias:
    """Attention-bias callable (``attn_bias=`` of ``TinyTransformer`` or of any model's adapter forward).

    ``doc_ids`` (B,T): document index of each token, −1 for non-document tokens; only rows of non-document
    tokens get a bias.  The document layout (one-hot map, query rows) is derived from ``doc_ids`` once and moved to
    the device/dtype of the attention scores at each call, so ``doc_ids`` may live on the CPU while the model runs
    elsewhere (``n_docs`` may be given to skip reading ``doc_ids.max()``).  ``mode``: ``"solve"`` (needs
    ``reference_entropy`` (L,H)), ``"closed_form"`` or ``"learned"`` (needs ``learned``).  ``layers``: which layers are balanced (default all).
    After each forward ``last_sigma[layer]`` holds σ (B,H,R) of the R balanced rows for inspection.
    """

    def __init__(self, doc_ids: torch.Tensor, n_ref: int, mode: str = "solve",
                 reference_entropy: torch.Tensor | None = None, learned: LearnedBalance | None = None,
                 sigma_ref: float = 0.0, layers: tuple[int, ...] | None = None, per_head_importance: bool = False,
                 n_docs: int | None = None):
        if mode not in ("solve", "closed_form", "learned"):
            raise ValueError(f"unknown mode {mode!r}")
        if mode == "solve" and reference_entropy is None:
            raise ValueError("mode 'solve' needs reference_entropy (see calibrate_reference_entropy)")
        if mode == "learned" and learned is None:
            raise ValueError("mode 'learned' needs a LearnedBalance module")
        self.doc_ids = doc_ids
        self.n_docs = int(doc_ids.max()) + 1 if n_docs is None else int(n_docs)
        self.onehot = doc_onehot(doc_ids, self.n_docs)
        self.query_rows = doc_ids < 0
        self.rows = self.query_rows.any(0).nonzero().squeeze(1)  # only rows of query tokens are balanced
        self._cache: dict = {}
        self.n_ref, self.mode, self.ref, self.learned = n_ref, mode, reference_entropy, learned
        self.sigma_ref, self.layers, self.per_head = sigma_ref, layers, per_head_importance
        self.last_sigma: dict[int, torch.Tensor] = {}

    def importance(self, layer: int, ell: torch.Tensor) -> torch.Tensor:
        """ẑ (B,H,T,n): standardised doc log-mass, averaged over heads unless per-head."""
        if self.per_head:
            z = ell
        elif self.mode == "learned":
            w = torch.softmax(self.learned.head_logits[layer], 0)
            z = torch.einsum("h,bhqn->bqn", w, ell)[:, None].expand_as(ell)
        else:
            z = ell.mean(1, keepdim=True).expand_as(ell)
        return standardise(z)

    def __call__(self, layer: int, scores: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor | None:
        if self.layers is not None and layer not in self.layers:
            return None
        if self.n_docs <= self.n_ref and self.mode != "learned":
            return None
        grad = self.mode == "learned"
        onehot, rows, rmask = self._layout(scores)
        with torch.set_grad_enabled(grad and torch.is_grad_enabled()):
            sc = scores[:, :, rows] if grad else scores[:, :, rows].detach()
            al = allowed[:, :, rows]
            ell = doc_log_mass(sc.detach(), al, onehot)
            zhat = self.importance(layer, ell)
            if self.mode == "solve":
                sigma = solve_sigma(sc, al, onehot, zhat, self.ref[layer].to(sc)[None, :, None])
            elif self.mode == "closed_form":
                sigma = closed_form_sigma(self.n_docs, self.n_ref, self.sigma_ref).to(sc).expand(sc.shape[:-1])
            else:
                sigma = self.learned.sigma(layer, self.n_docs, self.n_ref)[None, :, None].expand(sc.shape[:-1])
            sigma = sigma * rmask
            self.last_sigma[layer] = sigma.detach()
            beta = balanced_bias_row(zhat, sigma, ell)
            rows_bias = torch.einsum("bhqn,btn->bhqt", beta, onehot)
            bias = rows_bias.new_zeros(scores.shape)
            bias[:, :, rows] = rows_bias
            return bias


    def _layout(self, scores: torch.Tensor):
        """(one-hot (B,T,n), balanced row indices (R,), row mask (B,1,R)) on the scores' device and dtype."""
        key = (scores.device, scores.dtype)
        if key not in self._cache:
            rows = self.rows.to(scores.device)
            self._cache[key] = (self.onehot.to(scores.device, scores.dtype), rows,
                                self.query_rows.to(scores.device)[:, rows][:, None, :].to(scores.dtype))
        return self._cache[key]


def query_row_entropy(attn: list[torch.Tensor], row: int = -1) -> torch.Tensor:
    """Attention entropy (L,H) of one query row (default the last token), averaged over the batch."""
    return torch.stack([entropy(a[:, :, row]).mean(0) for a in attn])


@torch.no_grad()
def calibrate_reference_entropy(model: nn.Module, batches: list[dict], row: int = -1) -> torch.Tensor:
    """Mean vanilla attention entropy (L,H) of the query row on batches with ``n_ref`` documents."""
    ents = []
    for b in batches:
        out = as_adapter(model).forward(b["input_ids"], position_ids=b["position_ids"], attn_mask=b["attn_mask"],
                                        return_attn=True)
        ents.append(query_row_entropy(out.attn, row))
    return torch.stack(ents).mean(0)
