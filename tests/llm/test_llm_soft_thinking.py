import pytest

torch = pytest.importorskip("torch")

from wannmag.llm.soft_thinking import (dirichlet_resample, gumbel_softmax, soft_weights, think_and_answer,  # noqa: E402
                                       top1_dependence, topk_renormalise)


def test_topk_renormalise():
    p = torch.tensor([[0.5, 0.2, 0.2, 0.1]])
    q = topk_renormalise(p, 2)
    assert torch.allclose(q, torch.tensor([[0.5 / 0.7, 0.2 / 0.7, 0.0, 0.0]]))
    assert torch.allclose(soft_weights(p), p)


def test_gumbel_max_statistics_and_temperature():
    p = torch.tensor([0.5, 0.3, 0.15, 0.05])
    g = torch.Generator().manual_seed(0)
    y = gumbel_softmax(p.expand(40000, 4), tau=0.5, generator=g)
    assert torch.allclose(y.sum(-1), torch.ones(40000), atol=1e-5)
    freq = torch.bincount(y.argmax(-1), minlength=4).float() / 40000
    assert torch.allclose(freq, p, atol=0.01)  # Gumbel-max: argmax ~ Categorical(p)
    y_cold = gumbel_softmax(p.expand(4000, 4), tau=0.05, generator=g)
    y_hot = gumbel_softmax(p.expand(4000, 4), tau=2.0, generator=g)
    assert float(y_cold.max(-1).values.mean()) > 0.95 > float(y_hot.max(-1).values.mean())
    yk = gumbel_softmax(p.expand(100, 4), tau=0.5, top_k=2, generator=g)
    assert float(yk[:, 2:].abs().max()) == 0.0


def test_dirichlet_mean_and_variance():
    torch.manual_seed(0)
    p = torch.tensor([0.6, 0.3, 0.1])
    for alpha in (1.0, 10.0):
        s = dirichlet_resample(p.expand(40000, 3), alpha=alpha)
        assert torch.allclose(s.sum(-1), torch.ones(40000), atol=1e-5)
        assert torch.allclose(s.mean(0), p, atol=0.01)
        assert torch.allclose(s.var(0), p * (1 - p) / (alpha + 1), rtol=0.08)
    s = dirichlet_resample(p.expand(10, 3), alpha=1.0, top_k=2)
    assert float(s[:, 2].abs().max()) == 0.0


def test_think_and_answer_modes_and_probe():
    from wannmag.llm.common import ArithmeticTask, TinyConfig, TinyTransformer
    t = ArithmeticTask()
    m = TinyTransformer(TinyConfig(len(t.vocab), d_model=16, n_heads=2, n_layers=1, d_mlp=32, max_len=24), seed=0)
    prompt = t.prompt_ids(t.sample(6, 3, torch.Generator().manual_seed(0)))
    a_greedy = think_and_answer(m, prompt, 2, t.vocab["A"], "greedy")
    a_soft1 = think_and_answer(m, prompt, 2, t.vocab["A"], "soft", top_k=1)
    assert torch.equal(a_greedy, a_soft1)  # soft thinking with top-1 only is greedy decoding
    ans, w, pre = think_and_answer(m, prompt, 2, t.vocab["A"], "gumbel", generator=torch.Generator().manual_seed(1),
                                   return_trace=True)
    assert ans.shape == (6,) and len(w) == 2 and pre[1].shape[1] == prompt.shape[1] + 1
    probe = top1_dependence(m, pre[0], w[0])
    assert 0.0 <= probe["agree_top1"] <= 1.0 and probe["js_top1"] >= 0.0
    with pytest.raises(ValueError):
        think_and_answer(m, prompt, 1, t.vocab["A"], "beam")
