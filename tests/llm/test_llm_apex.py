import pytest

torch = pytest.importorskip("torch")

from wannmag.llm.apex import (ExpansionAdapter, activation_scores, apex_finetune, expand, fuse,  # noqa: E402
                              mean_effective_rank, select_units, trainable_budget, unit_groups)
from wannmag.llm.common import TinyConfig, TinyTransformer  # noqa: E402
from wannmag.llm.common.lora import LoRALinear  # noqa: E402
from wannmag.llm.common.metrics import effective_rank  # noqa: E402


def small_model():
    return TinyTransformer(TinyConfig(vocab_size=20, d_model=16, n_heads=4, n_layers=2, d_mlp=32, max_len=16), seed=0)


def batches(n=2):
    g = torch.Generator().manual_seed(1)
    out = []
    for _ in range(n):
        ids = torch.randint(0, 20, (4, 8), generator=g)
        out.append({"input_ids": ids, "labels": torch.roll(ids, -1, 1)})
    return out


@pytest.mark.parametrize("side,unit", [("in", 1), ("in", 4), ("out", 1), ("out", 4)])
def test_expansion_adapter_equals_explicit_weight_update(side, unit):
    layer = LoRALinear(16, 16)
    ad = ExpansionAdapter(layer, torch.tensor([0, 2]), torch.tensor([1, 3]), unit, side)
    with torch.no_grad():
        ad.E.normal_()
    layer.adapters["apex"] = ad
    x = torch.randn(3, 5, 16)
    dw, db = ad.delta()
    w = layer.weight + dw
    b = layer.bias + (db if db is not None else 0)
    assert torch.allclose(layer(x), x @ w.T + b, atol=1e-5)
    # D units are exactly W_D + sum_t E_dt W_t
    rows = lambda u: slice(u * unit, (u + 1) * unit)  # noqa: E731
    if side == "in":
        expect = layer.weight[rows(1)] + ad.E[0, 0] * layer.weight[rows(0)] + ad.E[0, 1] * layer.weight[rows(2)]
        assert torch.allclose(w[rows(1)], expect, atol=1e-6)
        assert torch.equal(w[rows(0)], layer.weight[rows(0)])  # T units untouched
    else:
        expect = layer.weight[:, rows(3)] + ad.E[1, 0] * layer.weight[:, rows(0)] + ad.E[1, 1] * layer.weight[:, rows(2)]
        assert torch.allclose(w[:, rows(3)], expect, atol=1e-6)


def test_fusion_leaves_the_model_output_unchanged():
    m = small_model()
    ids = torch.randint(0, 20, (3, 8))
    base = m(ids).logits.detach()
    params, handles = expand(m, 0.25, batches())
    assert torch.allclose(m(ids).logits, base, atol=1e-6)  # E = 0 at start: nothing changes
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, ExpansionAdapter):
                mod.E.copy_(0.3 * torch.randn(mod.E.shape, generator=g))
    before = m(ids).logits.detach()
    assert not torch.allclose(before, base, atol=1e-3)
    assert fuse(m) == 2 * (1 + 1 + 3 + 1)  # per layer: fc_in, fc_out, q, k, v, o
    for h in handles:
        h.remove()
    assert all(not mod.adapters for mod in m.modules() if isinstance(mod, LoRALinear))
    assert torch.allclose(m(ids).logits, before, atol=1e-5)


def test_scores_selection_and_gradient_masks():
    m = small_model()
    sc = activation_scores(m, batches())
    assert sc[(0, "ffn")].shape == (32,) and sc[(1, "head")].shape == (4,)
    assert bool((sc[(0, "ffn")] >= 0).all())
    t, d = select_units(torch.tensor([0.1, 5.0, 3.0, 0.2, 1.0, 0.0]), 1 / 3)
    assert t.tolist() == [1, 2] and d.tolist() == [0, 5]
    tr, dr = select_units(torch.arange(10.0), 0.3, random=True, generator=torch.Generator().manual_seed(0))
    assert len(set(tr.tolist()) & set(dr.tolist())) == 0 and len(tr) == len(dr) == 3
    params, handles = expand(m, 0.25, batches())
    fc = m.blocks[0].mlp.fc_in
    ad = fc.adapters["apex"]
    m(batches(1)[0]["input_ids"]).logits.sum().backward()
    g = fc.weight.grad
    t_rows = ad.idx_t
    others = torch.ones(32, dtype=torch.bool)
    others[t_rows] = False
    assert float(g[others].abs().max()) == 0.0 and float(g[t_rows].abs().max()) > 0
    assert m.tok_emb.weight.grad is None  # frozen
    n_e = sum(p.numel() for p in params if p.dim() == 2 and p.shape[0] < 10)
    assert trainable_budget(m) > n_e > 0
    for h in handles:
        h.remove()


def test_apex_finetune_runs_and_fuses():
    m = small_model()
    data = batches(3)
    res = apex_finetune(m, lambda s: data[s % 3], steps=6, stages=2, frac=0.25)
    assert len(res["loss"]) == 6 and len(res["budget"]) == 2
    assert all(not mod.adapters for mod in m.modules() if isinstance(mod, LoRALinear))
    assert len(unit_groups(m)) == 4
    assert 1.0 <= mean_effective_rank(m) <= 32
    assert effective_rank(torch.eye(5)) == pytest.approx(5.0)
    assert effective_rank(torch.outer(torch.arange(1.0, 4), torch.ones(3))) == pytest.approx(1.0, abs=1e-6)
