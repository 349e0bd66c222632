"""Shared pieces added in part 2: GAE / PPO losses, the PPO loop, the MoE layer, distinct-n, Markov LM task."""

import math

import pytest

torch = pytest.importorskip("torch")

from wannmag.llm.common import ArithmeticTask, TinyConfig, TinyTransformer, make_generator  # noqa: E402
from wannmag.llm.common.metrics import distinct_n  # noqa: E402
from wannmag.llm.common.moe import MoEMLP, load_balance_loss, moe_aux_loss  # noqa: E402
from wannmag.llm.common.ppo import ActorCritic, PPOConfig, ppo_train, rollout, token_rewards  # noqa: E402
from wannmag.llm.common.rl import gae, masked_whiten, ppo_token_loss, value_loss  # noqa: E402
from wannmag.llm.common.tasks import MarkovLMTask  # noqa: E402


def gae_reference(r, v, gamma, lam):
    """Textbook GAE for one full-length episode (V = 0 after the end)."""
    L = len(r)
    adv = [0.0] * L
    for t in range(L):
        a = 0.0
        for k in range(t, L):
            nv = v[k + 1] if k + 1 < L else 0.0
            a += (gamma * lam) ** (k - t) * (r[k] + gamma * nv - v[k])
        adv[t] = a
    return adv


def test_gae_matches_the_definition_and_respects_the_mask():
    g = torch.Generator().manual_seed(0)
    r, v = torch.randn(3, 6, generator=g), torch.randn(3, 6, generator=g)
    mask = torch.ones(3, 6, dtype=torch.bool)
    mask[1, 4:] = False
    adv, ret = gae(r, v, mask, gamma=0.9, lam=0.8)
    for b, L in ((0, 6), (1, 4), (2, 6)):
        ref = gae_reference(r[b, :L].tolist(), v[b, :L].tolist(), 0.9, 0.8)
        assert adv[b, :L].tolist() == pytest.approx(ref, abs=1e-5)
    assert float(adv[1, 4:].abs().sum()) == 0.0 and torch.allclose(ret[0], adv[0] + v[0])
    # lambda = 1, gamma = 1: advantage = reward-to-go - V
    adv1, _ = gae(r, v, torch.ones(3, 6, dtype=torch.bool), 1.0, 1.0)
    assert torch.allclose(adv1, r.flip(1).cumsum(1).flip(1) - v, atol=1e-5)
    w = masked_whiten(adv, mask)
    assert float(w[mask].mean()) == pytest.approx(0.0, abs=1e-6) and float(w[~mask].abs().sum()) == 0.0


def test_ppo_losses():
    lp = torch.log(torch.tensor([[0.5, 0.2]]))
    adv = torch.tensor([[1.0, -1.0]])
    m = torch.ones(1, 2, dtype=torch.bool)
    assert float(ppo_token_loss(lp, lp, adv, m)) == pytest.approx(0.0)
    new = lp + torch.log(torch.tensor([[2.0, 2.0]]))  # ratio 2: clipped to 1.2 for A>0, unclipped 2 for A<0
    assert float(ppo_token_loss(new, lp, adv, m)) == pytest.approx((-1.2 + 2.0) / 2)
    v, vo, ret = torch.tensor([[1.0]]), torch.tensor([[0.0]]), torch.tensor([[0.0]])
    mm = torch.ones(1, 1, dtype=torch.bool)
    assert float(value_loss(v, vo, ret, mm, clip=None)) == pytest.approx(0.5)
    assert float(value_loss(v, vo, ret, mm, clip=0.2)) == pytest.approx(0.5)  # max(1, 0.04)


def test_moe_layer_routing_and_balance_loss():
    torch.manual_seed(0)
    experts = [torch.nn.Sequential(torch.nn.Linear(8, 8)) for _ in range(4)]

    class Wrap(torch.nn.Module):
        def __init__(self, f):
            super().__init__()
            self.f = f

        def forward(self, x, hook=None):
            return self.f(x), x

    moe = MoEMLP([Wrap(e) for e in experts], 8, k=2)
    x = torch.randn(2, 5, 8)
    y, acts = moe(x)
    probs, w, topi = moe.route(x)
    expect = sum(w[..., j:j + 1] * torch.stack([experts[int(e)](x[b, t]) for b in range(2) for t in range(5)
                                                for e in [topi[b, t, j]]]).view(2, 5, 8) for j in range(2))
    assert torch.allclose(y, expect, atol=1e-5)
    assert float(moe_aux_loss(moe).detach()) == pytest.approx(float(moe.aux_loss.detach()))
    uniform = torch.full((8, 4), 0.25)
    assert float(load_balance_loss(uniform, torch.arange(8).remainder(4)[:, None], 4)) == pytest.approx(1.0)
    skew = torch.tensor([[1.0, 0, 0, 0]]).repeat(8, 1)
    assert float(load_balance_loss(skew, torch.zeros(8, 1, dtype=torch.long), 4)) == pytest.approx(4.0)


def test_distinct_n_and_markov_task_and_ops():
    assert distinct_n([[1, 2, 3], [1, 2, 4]], 2) == pytest.approx(3 / 4)
    assert distinct_n([[1, 1, 1, 1]], 1) == pytest.approx(1 / 4) and distinct_n([[1]], 2) == 0.0
    t = MarkovLMTask(n_tokens=5, order=2, branching=2, n_domains=2, seed=0)
    assert torch.allclose(t.probs.sum(-1), torch.ones(2, 25)) and int((t.probs[0, 3] > 0).sum()) == 2
    b = t.sample(64, 12, make_generator(0), domains=1)
    ids = b["input_ids"]
    toks = ids[:, 2:] - int(t.tok_ids[0])
    for i in range(2, 10):  # every generated token is an allowed successor in domain 1
        ctx = t.context_index(toks[:, i - 2:i])
        assert bool((t.probs[1, ctx, toks[:, i]] > 0).all())
    assert (b["labels"][:, 3:-1] == ids[:, 4:]).all() and (b["labels"][:, :3] == -100).all()
    assert 0 < b["optimal_loss"] < math.log(2) + 1e-6
    a = ArithmeticTask()
    pb = a.sample(200, 3, make_generator(0), ops=("*",))
    assert bool((pb.ops == 2).all())
    assert torch.equal(a.sample(5, 2, make_generator(3)).results, a.sample(5, 2, make_generator(3), ops=None).results)


def test_ppo_loop_runs_and_learns_a_trivial_reward():
    cfg = TinyConfig(vocab_size=6, d_model=16, n_heads=2, n_layers=1, d_mlp=32, max_len=12)
    ac = ActorCritic(TinyTransformer(cfg, seed=0))
    prompt = torch.full((32, 1), 1)
    pc = PPOConfig(steps=25, max_new=4, lr=1e-2, kl_coef=0.0)
    ro = rollout(ac, ac.model, prompt, pc, make_generator(0))
    assert ro.tokens.shape == (32, 4) and ro.states.shape == (32, 5, 16) and ro.logits.shape == (32, 4, 6)
    r = token_rewards(ro, torch.ones(32), 0.0)
    assert torch.equal(r[:, -1], torch.ones(32)) and float(r[:, :-1].abs().sum()) == 0.0
    hist = ppo_train(ac, lambda s: prompt, lambda ro: (ro.tokens == 3).float().mean(1), pc, make_generator(1))
    assert hist[-1]["reward"] > hist[0]["reward"] + 0.2
