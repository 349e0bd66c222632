import copy

import pytest

torch = pytest.importorskip("torch")

from wannmag.llm.common import TinyConfig, TinyTransformer  # noqa: E402
from wannmag.llm.itt import ITTBlock, flops_per_token, make_itt, selected_fractions  # noqa: E402


def small_model():
    return TinyTransformer(TinyConfig(vocab_size=20, d_model=16, n_heads=2, n_layers=2, d_mlp=32, max_len=16), seed=0)


def allowed(t, b=2, h=2):
    return torch.ones(t, t, dtype=torch.bool).tril().expand(b, h, t, t)


@pytest.mark.parametrize("train_mode", [False, True])
def test_rho_zero_equals_the_base_layer(train_mode):
    base = small_model()
    itt = make_itt(copy.deepcopy(base), rho=0.0, n_think=3)
    ids = torch.randint(0, 20, (3, 9))
    itt.train(train_mode)
    assert torch.equal(itt(ids).logits, base(ids).logits)


def test_loop_mode_and_explicit_itt_step():
    m = small_model()
    blk = m.blocks[0]
    x = torch.randn(2, 6, 16)
    a = allowed(6)
    f = lambda z: blk(z, a, None, None)[0]  # noqa: E731
    loop = ITTBlock(blk, 16, n_think=2, mode="loop")
    assert torch.allclose(loop(x, a)[0], f(f(f(x))), atol=1e-6)
    itt = ITTBlock(blk, 16, n_think=1, rho=1.0)
    with torch.no_grad():
        itt.phi.normal_()
        itt.routers[0].weight.normal_()
    y0 = f(x)
    s = torch.sigmoid(itt.routers[0](y0))
    expect = y0 + s * itt.phi[0] * f(y0)
    assert torch.allclose(itt(x, a)[0], expect, atol=1e-5)
    nores = ITTBlock(blk, 16, n_think=1, rho=1.0, residual=False)
    nores.routers[0].load_state_dict(itt.routers[0].state_dict())
    assert torch.allclose(nores(x, a)[0], y0 + s * (f(y0) - y0), atol=1e-5)


def test_router_selects_top_rho_and_eval_is_causal():
    m = make_itt(small_model(), rho=0.25, n_think=2)
    for blk in m.blocks:
        with torch.no_grad():
            for r in blk.routers:
                r.weight.normal_()
    ids = torch.randint(0, 20, (8, 12))
    m.train()
    for _ in range(30):  # let the running thresholds settle on this distribution
        m(ids)
    for fr in selected_fractions(m):
        assert fr == [pytest.approx(0.25, abs=0.02)] * 2
    m.eval()
    out = m(ids).logits
    for fr in selected_fractions(m):
        assert all(0.1 < f < 0.4 for f in fr)
    ids2 = ids.clone()
    ids2[:, 7:] = (ids2[:, 7:] + 1) % 20
    assert torch.allclose(m(ids2).logits[:, :7], out[:, :7], atol=1e-5)  # no leak from later tokens


def test_flops_accounting():
    cfg = small_model().cfg
    base = flops_per_token(cfg, 10)
    d, dm = cfg.d_model, cfg.d_mlp
    layer = 2 * (4 * d * d + 2 * d * dm) + 4 * d * 5.5
    assert base == pytest.approx(2 * layer + 2 * d * cfg.vocab_size)
    loop = make_itt(small_model(), mode="loop", n_think=2)
    assert flops_per_token(cfg, 10, loop.blocks) == pytest.approx(base + 4 * layer)
    itt = make_itt(small_model(), rho=0.5, n_think=2)
    assert flops_per_token(cfg, 10, itt.blocks) == pytest.approx(base + 2 * (2 * (0.5 * layer + 2 * d)))
    assert flops_per_token(cfg, 10, make_itt(small_model(), rho=0.0).blocks) == pytest.approx(base)
    assert flops_per_token(cfg, 10, itt.blocks, [[0.1, 0.2], [0.0, 0.0]]) == pytest.approx(
        base + 0.3 * layer + 4 * 2 * d)
