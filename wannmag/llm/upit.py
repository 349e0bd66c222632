"""UpIT (Hui et al., "Upcycling Instruction Tuning from Dense to Mixture-of-Experts via Parameter Merging", arXiv
2410.01610): build a mixture of experts from a dense model's *intermediate* instruction-tuning checkpoints,
expand it genetically to more experts, pre-optimise the routers on seed data, then fine-tune the MoE.

What is implemented
-------------------
1. **Experts from checkpoints**: the MLP of every layer at each saved checkpoint of the dense fine-tuning run is one
   expert of that layer (:func:`mlp_states`, :func:`build_moe`); the non-MLP parameters come from the final
   checkpoint.  Plain upcycling (the baseline) = copies of the final checkpoint's MLP.
2. **Genetic expansion** (:func:`genetic_expand`): while a layer has fewer than the target number of experts, the
   two most dissimilar experts (lowest cosine similarity of their flattened parameters) are merged with a random
   weight λ ~ U(0, 1), ``θ = λθ_a + (1−λ)θ_b`` (:func:`merge`), and the merged expert's difference to the dense
   base is sparsified with DARE (drop each entry with probability p, rescale the rest by 1/(1−p); :func:`dare`);
   both preserve expectations: E_λ[θ] = (θ_a + θ_b)/2, E[DARE(δ)] = δ.
3. **Router pre-optimisation** (:func:`pre_optimise_routers`): every seed sequence is assigned to the expert index
   whose dense model (that expert in every layer) has the lowest loss on it; the routers alone are trained with
   cross-entropy to send the sequence's tokens to that expert.
4. **Top-2 MoE with load balancing** (``common.moe.MoEMLP``, Switch loss), then fine-tuned as a whole.

Simplifications: checkpoint experts share the expert index across layers (expert e of every layer comes from the
same checkpoint or merge, which is what makes step 3's per-sequence label meaningful); DARE is applied relative to the
dense *base* (pre-fine-tuning) MLP; one expansion merge per missing expert, no population/fitness selection beyond
"most dissimilar pair".
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .common.adapter import as_adapter
from .common.device import module_device, rand_like_gen, randn_gen
from .common.moe import MoEMLP
from .common.train import lm_loss

__all__ = ["mlp_states", "merge", "dare", "cosine_similarity", "genetic_expand", "build_moe", "expert_losses",
           "pre_optimise_routers", "moe_layers"]

State = dict[str, torch.Tensor]


def mlp_states(model: nn.Module) -> list[State]:
    """A detached copy of every layer's MLP parameters (the experts one checkpoint contributes; buffers such as
    neuron masks are left out)."""
    ad = as_adapter(model)
    out = []
    for i in range(ad.n_layers):
        mlp = ad.mlp(i)
        bufs = {n for n, _ in mlp.named_buffers()}
        out.append({k: v.detach().clone() for k, v in mlp.state_dict().items() if k not in bufs})
    return out


def merge(a: State, b: State, lam: float) -> State:
    """``λ a + (1 − λ) b`` entry by entry."""
    return {k: lam * a[k] + (1.0 - lam) * b[k] for k in a}


def dare(state: State, base: State, p: float, generator: torch.Generator | None = None) -> State:
    """DARE (Yu et al. 2024): drop each entry of ``state − base`` with probability p, rescale the kept ones by
    1/(1 − p), add back to ``base``."""
    if not 0.0 <= p < 1.0:
        raise ValueError("p must be in [0, 1)")
    out = {}
    for k, v in state.items():
        keep = (rand_like_gen(v.float(), generator) >= p).to(v.dtype)
        out[k] = base[k] + (v - base[k]) * keep / (1.0 - p)
    return out


def _flat(s: State) -> torch.Tensor:
    return torch.cat([v.reshape(-1) for v in s.values()])


def cosine_similarity(a: State, b: State) -> float:
    return float(F.cosine_similarity(_flat(a), _flat(b), dim=0))


def genetic_expand(experts: Sequence[Sequence[State]], base: Sequence[State], n_target: int, p_drop: float = 0.3,
                   generator: torch.Generator | None = None) -> list[list[State]]:
    """experts[e][layer] → n_target experts: repeatedly merge the most dissimilar pair (similarity summed over
    layers) with a random λ and DARE.  Returns a new list (the originals first)."""
    out = [list(e) for e in experts]
    n_layers = len(base)
    while len(out) < n_target:
        best, pair = None, None
        for i in range(len(out)):
            for j in range(i + 1, len(out)):
                sim = sum(cosine_similarity(out[i][li], out[j][li]) for li in range(n_layers))
                if best is None or sim < best:
                    best, pair = sim, (i, j)
        i, j = pair
        lam = float(torch.rand((), generator=generator, device=generator.device if generator is not None else "cpu"))
        out.append([dare(merge(out[i][li], out[j][li], lam), base[li], p_drop, generator) for li in range(n_layers)])
    return out


def build_moe(model: nn.Module, experts: Sequence[Sequence[State]], k: int = 2,
              router_seed: int = 0) -> nn.Module:
    """A copy of ``model`` whose every MLP is a top-k :class:`~wannmag.llm.common.moe.MoEMLP` with
    ``experts[e][layer]`` loaded into expert e."""
    moe_model = copy.deepcopy(model)
    ad = as_adapter(moe_model)
    g = torch.Generator().manual_seed(router_seed)
    for li in range(ad.n_layers):
        base = ad.mlp(li)
        dev, dt = module_device(base)
        bufs = {n for n, _ in base.named_buffers()}
        mods = []
        for e in experts:
            m = copy.deepcopy(base)
            missing, unexpected = m.load_state_dict(e[li], strict=False)
            if unexpected or set(missing) - bufs:
                raise ValueError(f"expert state does not match layer {li}'s MLP: missing {missing}, "
                                 f"unexpected {unexpected}")
            mods.append(m)
        moe = MoEMLP(mods, ad.d_model, k, returns_acts=ad.mlp_returns_acts).to(dev, dt)
        ad.set_mlp(li, moe)
        with torch.no_grad():
            w = moe.router.weight
            w.copy_(0.01 * randn_gen(w.shape, g, device=w.device, dtype=w.dtype))
    return moe_model


def moe_layers(model: nn.Module) -> list[MoEMLP]:
    ad = as_adapter(model)
    return [ad.mlp(i) for i in range(ad.n_layers) if isinstance(ad.mlp(i), MoEMLP)]


@torch.no_grad()
def expert_losses(moe_model: nn.Module, batch: dict) -> torch.Tensor:
    """(B, E) per-sequence loss of the dense model that uses expert e in every layer."""
    ad = as_adapter(moe_model)
    idx = [i for i in range(ad.n_layers) if isinstance(ad.mlp(i), MoEMLP)]
    layers = [ad.mlp(i) for i in idx]
    n_e = layers[0].n_experts
    cols = []
    try:
        for e in range(n_e):
            for i, l in zip(idx, layers):
                ad.set_mlp(i, l.experts[e])
            logits = ad.forward(batch["input_ids"]).logits
            cols.append(lm_loss(logits, batch["labels"], reduction="none"))
    finally:
        for i, l in zip(idx, layers):
            ad.set_mlp(i, l)
    return torch.stack(cols, 1)


def pre_optimise_routers(moe_model: nn.Module, seed_batches: Sequence[dict], steps: int = 50, lr: float = 1e-2,
                         callback: Callable[[int, float], None] | None = None) -> dict:
    """Label every seed sequence with its lowest-loss expert and train only the routers to send its (labelled)
    tokens there.  Returns ``{"labels": list of (B,) tensors, "loss": curve, "accuracy": final token accuracy}``."""
    ad = as_adapter(moe_model)
    layers = moe_layers(moe_model)
    labels = [expert_losses(moe_model, b).argmin(1) for b in seed_batches]
    params = [l.router.weight for l in layers]
    trainable = {p: p.requires_grad for p in moe_model.parameters()}
    for p in moe_model.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    captured: list[torch.Tensor] = []
    hooks = [l.router.register_forward_hook(lambda m, i, o: captured.append(o)) for l in layers]
    opt = torch.optim.Adam(params, lr=lr)
    curve = []
    try:
        for s in range(steps):
            bi = s % len(seed_batches)
            b, lab = seed_batches[bi], labels[bi]
            captured.clear()
            ad.forward(b["input_ids"])
            tok = b["labels"] != -100
            loss = 0.0
            for logits in captured:
                tgt = lab[:, None].expand(tok.shape)
                loss = loss + F.cross_entropy(logits[tok], tgt[tok])
            loss = loss / len(captured)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            curve.append(float(loss.detach()))
            if callback is not None:
                callback(s, curve[-1])
        with torch.no_grad():
            captured.clear()
            b, lab = seed_batches[0], labels[0]
            ad.forward(b["input_ids"])
            tok = b["labels"] != -100
            acc = sum(float((c.argmax(-1)[tok] == lab[:, None].expand(tok.shape)[tok]).float().mean())
                      for c in captured) / len(captured)
    finally:
        for h in hooks:
            h.remove()
        for p, t in trainable.items():
            p.requires_grad_(t)
    return {"labels": labels, "loss": curve, "accuracy": acc}
