import copy

import pytest

torch = pytest.importorskip("torch")

from wannmag.llm.common import TinyConfig, TinyTransformer, lm_loss  # noqa: E402
from wannmag.llm.common.moe import MoEMLP  # noqa: E402
from wannmag.llm.upit import (build_moe, cosine_similarity, dare, expert_losses, genetic_expand, merge,  # noqa: E402
                              mlp_states, pre_optimise_routers)


def small_model(seed=0):
    return TinyTransformer(TinyConfig(vocab_size=12, d_model=16, n_heads=2, n_layers=2, d_mlp=32, max_len=16),
                           seed=seed)


def rand_state(seed):
    g = torch.Generator().manual_seed(seed)
    return {"w": torch.randn(6, 5, generator=g), "b": torch.randn(6, generator=g)}


def test_merge_preserves_expectation_over_lambda():
    a, b = rand_state(0), rand_state(1)
    mid = merge(a, b, 0.5)
    assert all(torch.allclose(mid[k], (a[k] + b[k]) / 2) for k in a)
    g = torch.Generator().manual_seed(3)
    lams = torch.rand(4000, generator=g)
    mean = {k: torch.stack([merge(a, b, float(l))[k] for l in lams[:400]]).mean(0) for k in a}
    # merge is affine in lambda: the sample mean is merge(a, b, mean lambda) exactly, and E[lambda] = 1/2
    assert all(torch.allclose(mean[k], merge(a, b, float(lams[:400].mean()))[k], atol=1e-5) for k in a)
    assert float(lams.mean()) == pytest.approx(0.5, abs=0.02)


def test_dare_rescaling_preserves_expectation():
    base, st = rand_state(0), rand_state(1)
    assert all(torch.allclose(dare(st, base, 0.0)[k], st[k], atol=1e-6) for k in st)
    g = torch.Generator().manual_seed(0)
    p = 0.7
    samples = [dare(st, base, p, g) for _ in range(3000)]
    for k in st:
        delta = st[k] - base[k]
        s = torch.stack([x[k] for x in samples])
        kept = (s - base[k]).abs() > 1e-7
        assert torch.allclose((s - base[k])[kept], (delta / (1 - p)).expand_as(s)[kept], atol=1e-5)
        assert float(kept.float().mean()) == pytest.approx(1 - p, abs=0.01)
        mean = s.mean(0)
        se = delta.abs() / (1 - p) * (p * (1 - p) / 3000) ** 0.5  # standard error of the mean per entry
        assert bool(((mean - st[k]).abs() <= 5 * se + 1e-6).all())


def test_genetic_expand_merges_the_most_dissimilar_pair():
    a, b = rand_state(0), rand_state(1)
    c = {k: -v for k, v in a.items()}  # anti-parallel to a: the most dissimilar pair is (0, 2)
    base = [{k: torch.zeros_like(v) for k, v in a.items()}]
    assert cosine_similarity(a, c) == pytest.approx(-1.0)
    out = genetic_expand([[a], [b], [c]], base, 4, p_drop=0.0, generator=torch.Generator().manual_seed(5))
    lam = float(torch.rand((), generator=torch.Generator().manual_seed(5)))
    assert len(out) == 4 and out[0][0] is a
    expect = merge(a, c, lam)
    assert all(torch.allclose(out[3][0][k], expect[k]) for k in a)


def test_build_moe_identical_experts_equal_dense_and_expert_losses():
    dense = small_model()
    states = mlp_states(dense)
    moe = build_moe(dense, [states] * 3, k=2)
    assert all(isinstance(b.mlp, MoEMLP) for b in moe.blocks)
    ids = torch.randint(0, 12, (3, 8))
    assert torch.allclose(moe(ids).logits, dense(ids).logits, atol=1e-5)  # top-2 weights sum to one
    other = mlp_states(small_model(seed=1))
    moe2 = build_moe(dense, [states, other], k=1)
    batch = {"input_ids": ids, "labels": torch.roll(ids, -1, 1)}
    el = expert_losses(moe2, batch)
    d2 = copy.deepcopy(dense)
    for blk, st in zip(d2.blocks, other):
        blk.mlp.load_state_dict({**st, "neuron_mask": blk.mlp.neuron_mask})
    assert torch.allclose(el[:, 0], lm_loss(dense(ids).logits, batch["labels"], "none"), atol=1e-5)
    assert torch.allclose(el[:, 1], lm_loss(d2(ids).logits, batch["labels"], "none"), atol=1e-5)
    assert isinstance(moe2.blocks[0].mlp, MoEMLP)  # restored after the per-expert passes


def test_router_pre_optimisation_learns_the_labels():
    dense = small_model()
    moe = build_moe(dense, [mlp_states(dense), mlp_states(small_model(1)), mlp_states(small_model(2))], k=2)
    g = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(2):
        ids = torch.randint(0, 12, (8, 8), generator=g)
        batches.append({"input_ids": ids, "labels": torch.roll(ids, -1, 1)})
    before = {n: p.clone() for n, p in moe.named_parameters() if "router" not in n}
    res = pre_optimise_routers(moe, batches, steps=40, lr=5e-2)
    assert res["loss"][-1] < 0.9 * res["loss"][0] and res["accuracy"] > 1 / 3 + 0.1  # 3 experts: chance 1/3
    assert all(torch.equal(p, before[n]) for n, p in moe.named_parameters() if "router" not in n)
    assert all(p.requires_grad for p in moe.parameters())
