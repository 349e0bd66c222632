import pytest

torch = pytest.importorskip("torch")

from wannmag.llm.cd_rlhf import (CuriosityModule, RunningRMS, curiosity_shaping, intrinsic_rewards,  # noqa: E402
                                 topk_gate)
from wannmag.llm.common.ppo import Rollout  # noqa: E402


def exact_icm(d=4, vocab=5):
    """φ = identity and f(φ, a) = φ: exact whenever the state does not change."""
    icm = CuriosityModule(d, vocab, d_feat=d, d_act=2, d_hidden=d)
    with torch.no_grad():
        icm.encoder.weight.copy_(torch.eye(d))
        l1, l2 = icm.forward_model[0], icm.forward_model[2]
        l1.weight.zero_()
        l1.weight[:, :d] = torch.eye(d)
        l1.bias.fill_(10.0)  # keep the GELU in its linear regime
        l2.weight.copy_(torch.eye(d))
        l2.bias.fill_(-10.0)
    return icm


def test_icm_reward_is_zero_where_the_prediction_is_exact():
    icm = exact_icm()
    states = torch.randn(2, 5, 4)
    states[0, 2] = states[0, 1]  # token 1 of row 0: s_{t+1} = s_t -> exactly predicted
    states[1] = states[1, :1].expand(5, 4)  # row 1: constant state -> every prediction exact
    tokens = torch.randint(0, 5, (2, 4))
    with torch.no_grad():
        err = icm.errors(states, tokens)
    assert float(err[0, 1]) == pytest.approx(0.0, abs=1e-8) and bool((err[1].abs() < 1e-8).all())
    assert float(err[0, 0]) > 1e-3
    gate = torch.ones(2, 4, dtype=torch.bool)
    mask = torch.ones(2, 4, dtype=torch.bool)
    r = intrinsic_rewards(err, gate, mask, RunningRMS())
    assert float(r[0, 1]) == pytest.approx(0.0, abs=1e-8) and bool((r[1].abs() < 1e-8).all())
    assert bool((r >= 0).all()) and float(r[0, 0]) > 0
    # normalisation by the RMS: the normalised valid errors have unit RMS on the first batch
    valid = err.detach()
    assert float(((valid / valid.pow(2).mean().sqrt()) - r).abs().max()) < 1e-5


def test_topk_gate_and_masks():
    logits = torch.tensor([[[3.0, 2.0, 1.0, 0.0]] * 4])
    tokens = torch.tensor([[0, 1, 2, 3]])
    assert topk_gate(logits, tokens, 1).tolist() == [[False, True, True, True]]
    assert topk_gate(logits, tokens, 2).tolist() == [[False, False, True, True]]
    err = torch.ones(1, 4)
    mask = torch.tensor([[True, True, True, False]])
    assert intrinsic_rewards(err, topk_gate(logits, tokens, 2), mask).tolist() == [[0.0, 0.0, 1.0, 0.0]]


def test_icm_training_reduces_error_and_shaping_adds_reward():
    torch.manual_seed(0)
    icm = CuriosityModule(8, 6, seed=0)
    states = torch.randn(16, 7, 8)
    tokens = torch.randint(0, 6, (16, 6))
    mask = torch.ones(16, 6, dtype=torch.bool)
    opt = torch.optim.Adam([p for p in icm.parameters() if p.requires_grad], lr=1e-2)
    first = icm.update(states, tokens, mask, opt)
    for _ in range(100):
        last = icm.update(states, tokens, mask, opt)
    assert last < 0.3 * first
    assert not icm.encoder.weight.requires_grad
    ro = Rollout(torch.ones(16, 1, dtype=torch.long), tokens, mask, torch.zeros(16, 6), torch.zeros(16, 6),
                 torch.zeros(16, 6), torch.randn(16, 6, 6), states)
    stats = []
    base = torch.zeros(16, 6)
    shaped = curiosity_shaping(CuriosityModule(8, 6, seed=1), eta=0.5, k=1, stats=stats)(ro, base)
    gate = topk_gate(ro.logits, tokens, 1)
    assert bool((shaped[~gate] == 0).all()) and bool((shaped[gate] > 0).all())
    assert stats and 0 < stats[0]["gated"] < 1
