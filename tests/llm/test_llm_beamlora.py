import pytest

torch = pytest.importorskip("torch")

from wannmag.llm.beamlora import (BeamLoRAAdapter, BeamLoRAScheduler, add_beamlora, beamlora_modules,  # noqa: E402
                                  prune_and_expand, prune_set, top_p_schedule)
from wannmag.llm.common import TinyConfig, TinyTransformer, add_lora  # noqa: E402
from wannmag.llm.common.lora import LoRALinear  # noqa: E402


def small_model():
    return TinyTransformer(TinyConfig(vocab_size=20, d_model=16, n_heads=2, n_layers=2, d_mlp=32, max_len=16), seed=0)


def randomised(layer: LoRALinear, r=6, seed=1) -> BeamLoRAAdapter:
    g = torch.Generator().manual_seed(seed)
    ad = BeamLoRAAdapter(layer.in_features, layer.out_features, r, 2.0 * r, g)
    layer.adapters["default"] = ad
    with torch.no_grad():
        ad.B.normal_(generator=g)
        ad.gate.copy_(0.1 * torch.randn(r, generator=g))
    return ad


def test_gate_softmax_equals_explicit_formula_and_lora_at_start():
    layer = LoRALinear(8, 5)
    ad = randomised(layer)
    x = torch.randn(3, 8)
    w = torch.softmax(ad.gate / ad.temperature, 0) * ad.r
    assert float(w.detach().sum()) == pytest.approx(ad.r)
    expect = x @ layer.weight.T + layer.bias + ad.scale * ((x @ ad.A.T) * w) @ ad.B.T
    assert torch.allclose(layer(x), expect, atol=1e-5)
    assert torch.allclose(layer.weight + ad.delta_weight(), layer.weight + ad.scale * (ad.B * w) @ ad.A, atol=1e-6)
    # zero gates: every gate weight is 1 -> identical to plain LoRA with the same seed
    m1, m2 = small_model(), small_model()
    add_lora(m1, 4, targets=("q", "v", "fc_in"), seed=3)
    add_beamlora(m2, 4, targets=("q", "v", "fc_in"), seed=3)
    for (_, l1), (l2, a2) in zip([(n, m) for n, m in m1.named_modules() if isinstance(m, LoRALinear)
                                  and "default" in m.adapters], beamlora_modules(m2)):
        a1 = l1.adapters["default"]
        assert torch.equal(a1.A, a2.A)
        with torch.no_grad():
            a1.B.normal_()
            a2.B.copy_(a1.B)
    ids = torch.randint(0, 20, (2, 7))
    assert torch.allclose(m1(ids).logits, m2(ids).logits, atol=1e-5)


def test_prune_and_copy_preserves_the_function_and_copies_state():
    layer = LoRALinear(8, 5)
    ad = randomised(layer, r=6)
    x = torch.randn(4, 8)
    opt = torch.optim.Adam(ad.parameters(), lr=1e-2)
    (layer(x) ** 2).sum().backward()
    opt.step()
    y0 = layer(x).detach()
    imp = ad.importance()
    pruned = torch.argsort(imp)[:3]  # three weakest ranks; the strongest ranks are the sources
    gate_before = ad.gate.detach().clone()
    z_before = torch.exp(gate_before / ad.temperature).sum()
    others = [k for k in range(6) if k not in pruned.tolist()]
    pairs = prune_and_expand(layer, ad, pruned, opt)
    assert torch.allclose(layer(x), y0, atol=1e-5)  # function preserved at the moment of copying
    z_after = torch.exp(ad.gate.detach() / ad.temperature).sum()
    assert float(z_after / z_before) == pytest.approx(1.0, rel=1e-5)  # softmax normaliser unchanged
    strong = torch.argsort(imp, descending=True)[:3].tolist()
    assert sorted(i for _, i in pairs) == sorted(strong)
    for j, i in pairs:
        assert torch.equal(ad.A[j], ad.A[i]) and torch.allclose(ad.B[:, j], ad.B[:, i])
        assert ad.gate[j] == ad.gate[i]
        st = opt.state[ad.A]
        assert torch.equal(st["exp_avg"][j], st["exp_avg"][i]) and torch.equal(st["exp_avg_sq"][j], st["exp_avg_sq"][i])
        assert torch.equal(opt.state[ad.gate]["exp_avg"][j], opt.state[ad.gate]["exp_avg"][i])
    assert set(others) >= {i for _, i in pairs}


def test_prune_set_and_schedule():
    imp = torch.tensor([0.5, 0.3, 0.15, 0.04, 0.01])
    assert prune_set(imp, 0.95).tolist() == [4, 3]  # keeps 0.5+0.3+0.15 = 0.95
    assert prune_set(imp, 0.98).tolist() == [4] and prune_set(imp, 0.999).numel() == 0
    assert prune_set(imp, 0.5, max_prune_frac=0.4).tolist() == [4, 3]  # capped at floor(0.4*5) = 2
    assert prune_set(torch.full((4,), 0.25), 0.95).numel() == 0  # equal gates: nothing pruned
    assert top_p_schedule(0, 100) == pytest.approx(0.95) and top_p_schedule(100, 100) == pytest.approx(1.0)
    assert top_p_schedule(50, 100) == pytest.approx(0.975)


def test_scheduler_keeps_model_output_and_trains():
    m = small_model()
    params = add_beamlora(m, 4, targets=("q", "v"), seed=0)
    opt = torch.optim.Adam(params, lr=5e-2)
    sched = BeamLoRAScheduler(m, opt, interval=5, end_step=40, p_min=0.6)
    ids = torch.randint(0, 20, (4, 8))
    for step in range(20):
        loss = m(ids).logits.logsumexp(-1).mean() - m(ids).logits[..., 3].mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        before = m(ids).logits.detach()
        n = sched.step(step)
        assert torch.allclose(m(ids).logits, before, atol=1e-4)
        if n:
            assert (step + 1) % 5 == 0
    assert sum(sched.n_pruned) > 0
