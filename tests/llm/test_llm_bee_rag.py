import math

import pytest

torch = pytest.importorskip("torch")

from wannmag.llm.bee_rag import (BalancedDocBias, balanced_bias_row, closed_form_sigma, doc_log_mass,  # noqa: E402
                                 solve_sigma, standardise)
from wannmag.llm.common.metrics import entropy  # noqa: E402


def random_row(n, m=4, std=1.0, batch=256, seed=0):
    """Scores (B,1,1,T) of one query row over n documents of m tokens + 2 query tokens."""
    g = torch.Generator().manual_seed(seed)
    t = n * m + 2
    scores = torch.randn(batch, 1, 1, t, generator=g) * std
    doc_ids = torch.cat([torch.arange(n).repeat_interleave(m), torch.tensor([-1, -1])])
    onehot = torch.nn.functional.one_hot(doc_ids.clamp_min(0), n).float() * (doc_ids >= 0)[:, None]
    allowed = torch.ones_like(scores, dtype=torch.bool)
    return scores, allowed, onehot.expand(batch, t, n), doc_ids


def vanilla_entropy(scores):
    return float(entropy(torch.softmax(scores, -1)).mean())


def test_entropy_invariance_on_random_logits_solve():
    n_ref = 4
    s_ref, *_ = random_row(n_ref)
    target = vanilla_entropy(s_ref)
    ents_v, ents_b = [], []
    for n in (4, 8, 16, 32, 64):
        scores, allowed, onehot, _ = random_row(n, seed=n)
        zhat = standardise(doc_log_mass(scores, allowed, onehot))
        sig = solve_sigma(scores, allowed, onehot, zhat, torch.tensor(target))
        beta = balanced_bias_row(zhat, sig, doc_log_mass(scores, allowed, onehot))
        biased = scores + torch.einsum("bhqn,btn->bhqt", beta, onehot)
        ents_v.append(vanilla_entropy(scores))
        ents_b.append(float(entropy(torch.softmax(biased, -1)).mean()))
    assert ents_v[-1] - ents_v[0] > 0.8 * math.log(16)  # vanilla entropy grows ~ ln n
    # balanced entropy is invariant for n > n_ref (at n_ref rows below the mean target keep σ = 0)
    assert max(abs(e - target) for e in ents_b[1:]) < 0.02, ents_b


def test_closed_form_sigma_and_partial_invariance():
    assert float(closed_form_sigma(4, 4)) == 0.0
    assert float(closed_form_sigma(16, 4)) == pytest.approx(math.sqrt(2 * math.log(4)))
    assert float(closed_form_sigma(2, 4)) == 0.0  # clamped: never flattens
    s4, allowed4, oh4, _ = random_row(4)
    s32, allowed32, oh32, _ = random_row(32, seed=3)
    z = standardise(torch.randn(s32.shape[0], 1, 1, 32, generator=torch.Generator().manual_seed(5)))
    beta = balanced_bias_row(z, closed_form_sigma(32, 4).expand(s32.shape[:-1]), doc_log_mass(s32, allowed32, oh32))
    h_bal = float(entropy(torch.softmax(s32 + torch.einsum("bhqn,btn->bhqt", beta, oh32), -1)).mean())
    growth_v = vanilla_entropy(s32) - vanilla_entropy(s4)
    growth_b = h_bal - vanilla_entropy(s4)
    assert 0 < growth_b < 0.8 * growth_v  # the Gaussian closed form removes a good part of the growth


def test_bias_mean_preserves_document_mass():
    scores, allowed, onehot, _ = random_row(8, batch=16)
    ell = doc_log_mass(scores, allowed, onehot)
    zhat = standardise(ell)
    beta = balanced_bias_row(zhat, torch.full(scores.shape[:-1], 2.0), ell)
    p0 = torch.softmax(scores, -1)
    p1 = torch.softmax(scores + torch.einsum("bhqn,btn->bhqt", beta, onehot), -1)
    docmass = lambda p: p[..., :-2].sum(-1)  # noqa: E731
    assert torch.allclose(docmass(p0), docmass(p1), atol=1e-5)
    # the highest-importance document gains attention
    top = ell.argmax(-1)
    m0 = torch.einsum("bhqt,btn->bhqn", p0, onehot).gather(-1, top[..., None])
    m1 = torch.einsum("bhqt,btn->bhqn", p1, onehot).gather(-1, top[..., None])
    assert bool((m1 >= m0 - 1e-6).all())


def test_balanced_doc_bias_only_touches_query_rows_in_model():
    from wannmag.llm.common import KeyValueDocsTask, TinyConfig, TinyTransformer
    task = KeyValueDocsTask(n_keys=16, n_values=8, n_fillers=4, doc_len=3)
    m = TinyTransformer(TinyConfig(len(task.vocab), d_model=16, n_heads=2, n_layers=2, d_mlp=32, max_len=8), seed=0)
    b = task.sample(4, 12, torch.Generator().manual_seed(0))
    kw = dict(position_ids=b["position_ids"], attn_mask=b["attn_mask"], return_attn=True)
    v = m(b["input_ids"], **kw)
    bias = BalancedDocBias(b["doc_ids"], n_ref=4, mode="closed_form")
    o = m(b["input_ids"], attn_bias=bias, **kw)
    assert torch.allclose(o.attn[0][:, :, :-2], v.attn[0][:, :, :-2], atol=1e-6)  # document rows untouched
    assert not torch.allclose(o.attn[0][:, :, -1], v.attn[0][:, :, -1], atol=1e-4)
    assert float(bias.last_sigma[0].max()) == pytest.approx(math.sqrt(2 * math.log(3)), rel=1e-5)
    with pytest.raises(ValueError):
        BalancedDocBias(b["doc_ids"], n_ref=4, mode="solve")
