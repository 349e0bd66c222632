import pytest

torch = pytest.importorskip("torch")

from wannmag.llm.common.rl import gae  # noqa: E402
from wannmag.llm.ma_rlhf import macro_gae, macro_ids  # noqa: E402


def data(b=4, L=9, seed=0):
    g = torch.Generator().manual_seed(seed)
    r, v = torch.randn(b, L, generator=g), torch.randn(b, L, generator=g)
    mask = torch.ones(b, L, dtype=torch.bool)
    mask[1, 6:] = False
    if b > 3:
        mask[3, 2:] = False
    return r, v, mask


@pytest.mark.parametrize("reduce", ["mean", "sum"])
def test_macro_gae_with_n1_equals_token_gae(reduce):
    r, v, mask = data()
    ids = macro_ids(mask, "fixed", n=1)
    a1, r1 = macro_gae(r, v, ids, gamma=0.97, lam=0.9, reward_reduce=reduce)
    a2, r2 = gae(r, v, mask, gamma=0.97, lam=0.9)
    assert torch.allclose(a1, a2, atol=1e-6) and torch.allclose(r1, r2, atol=1e-6)


def test_macro_gae_by_hand():
    r = torch.tensor([[0.0, 1.0, 0.0, 0.0, 2.0]])
    v = torch.tensor([[1.0, 3.0, 2.0, 2.0, 0.5]])
    mask = torch.ones(1, 5, dtype=torch.bool)
    ids = macro_ids(mask, "fixed", n=2)
    assert ids.tolist() == [[0, 0, 1, 1, 2]]
    adv, ret = macro_gae(r, v, ids, gamma=1.0, lam=0.5)
    # macros: V = (2, 2, 0.5), R (mean) = (0.5, 0, 2)
    d2 = 2 - 0.5
    d1 = 0 + 0.5 - 2
    d0 = 0.5 + 2 - 2
    a2, a1 = d2, d1 + 0.5 * d2
    a0 = d0 + 0.5 * a1
    assert adv.tolist()[0] == pytest.approx([a0, a0, a1, a1, a2])
    assert ret.tolist()[0] == pytest.approx([a0 + 2, a0 + 2, a1 + 2, a1 + 2, a2 + 0.5])
    adv_s, _ = macro_gae(r, v, ids, gamma=1.0, lam=0.5, reward_reduce="sum")
    assert float(adv_s[0, 0]) == pytest.approx((1 + 2 - 2) + 0.5 * ((0 + 0.5 - 2) + 0.5 * (2 - 0.5)))


def test_macro_segmentations():
    mask = torch.ones(2, 7, dtype=torch.bool)
    mask[1, 5:] = False
    assert macro_ids(mask, "fixed", n=3).tolist() == [[0, 0, 0, 1, 1, 1, 2], [0, 0, 0, 1, 1, -1, -1]]
    rnd = macro_ids(mask, "random", lo=2, hi=3, generator=torch.Generator().manual_seed(0))
    for row, m in zip(rnd, mask):
        ids = row[m]
        assert ids[0] == 0 and bool(((ids[1:] - ids[:-1]) >= 0).all()) and bool(((ids[1:] - ids[:-1]) <= 1).all())
        runs = torch.unique_consecutive(ids, return_counts=True)[1]
        assert bool((runs[:-1] >= 2).all()) and bool((runs <= 3).all())  # the last run may be cut short
    lp = torch.log(torch.tensor([[0.9, 0.1, 0.9, 0.9, 0.05, 0.9, 0.9]]).expand(2, 7))
    ppl = macro_ids(mask, "ppl", logprobs=lp, threshold=5.0, max_len=8)
    assert ppl.tolist()[0] == [0, 1, 1, 1, 2, 2, 2]
    assert macro_ids(mask[:1], "ppl", logprobs=lp[:1], threshold=100.0, max_len=3).tolist() == [[0, 0, 0, 1, 1, 1, 2]]
    r, v, _ = data(2, 7)
    a, _ = macro_gae(r, v, macro_ids(mask, "fixed", n=3))
    assert float(a[1, 5:].abs().sum()) == 0.0 and a[0, 0] == a[0, 2]
