import pytest

torch = pytest.importorskip("torch")

from wannmag.llm.common import ArithmeticTask, TinyConfig, TinyTransformer, batch_loss  # noqa: E402
from wannmag.llm.swift_study import (RandomProjector, checkpoint_influence, example_gradients,  # noqa: E402
                                     influence)


def setup():
    t = ArithmeticTask()
    m = TinyTransformer(TinyConfig(len(t.vocab), d_model=16, n_heads=2, n_layers=1, d_mlp=32, max_len=16), seed=0)
    g = torch.Generator().manual_seed(0)
    probe = t.encode(t.sample(4, 2, g), "cot")
    ev = t.encode(t.sample(4, 2, g), "direct", answer_only=True)
    return t, m, probe, ev


def test_influence_equals_finite_difference_loss_change():
    torch.set_default_dtype(torch.float64)
    try:
        _, m, probe, ev = setup()
        m = m.double()
        gp = example_gradients(m, [probe])
        ge = example_gradients(m, [ev])
        lr = 1e-3
        predicted = float(influence(ge, gp, lr))  # = -ΔL to first order
        before = float(batch_loss(m, ev))
        with torch.no_grad():
            off = 0
            for p in m.parameters():
                n = p.numel()
                p -= lr * gp[0, off:off + n].view_as(p)
                off += n
        after = float(batch_loss(m, ev))
        assert predicted != 0.0
        assert (before - after) == pytest.approx(predicted, rel=0.02)
    finally:
        torch.set_default_dtype(torch.float32)


def test_random_projection_preserves_inner_products():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5000, generator=g)
    proj = RandomProjector(5000, k=2048, seed=1, chunk=1000)
    px = proj(x)
    assert px.shape == (3, 2048)
    gram, pgram = x @ x.T, px @ px.T
    assert torch.allclose(pgram.diagonal(), gram.diagonal(), rtol=0.1)
    assert torch.allclose(proj(x), px)  # deterministic
    with pytest.raises(ValueError):
        proj(torch.randn(2, 10))


def test_checkpoint_influence_sums_over_checkpoints_and_restores_model():
    _, m, probe, ev = setup()
    state = {k: v.clone() for k, v in m.state_dict().items()}
    one = checkpoint_influence(m, [(state, 0.1)], {"p": [probe]}, {"e": [ev]})
    two = checkpoint_influence(m, [(state, 0.1), (state, 0.2)], {"p": [probe]}, {"e": [ev]})
    assert two[("p", "e")] == pytest.approx(3 * one[("p", "e")], rel=1e-5)
    self_inf = checkpoint_influence(m, [(state, 1.0)], {"p": [ev]}, {"e": [ev]})
    assert self_inf[("p", "e")] > 0  # a step on an example lowers its own loss
    for k, v in m.state_dict().items():
        assert torch.equal(v, state[k])
