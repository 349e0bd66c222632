import copy

import pytest

torch = pytest.importorskip("torch")

from wannmag.llm.common import TinyConfig, TinyTransformer  # noqa: E402
from wannmag.llm.common.moe import moe_aux_loss  # noqa: E402
from wannmag.llm.mohd import HiddenRouter, active_fraction, make_mohd, mohd_flops_per_token  # noqa: E402


def small_model():
    return TinyTransformer(TinyConfig(vocab_size=20, d_model=16, n_heads=2, n_layers=2, d_mlp=32, max_len=16), seed=0)


def test_all_groups_active_equals_the_dense_model():
    dense = small_model()
    m = make_mohd(copy.deepcopy(dense), n_groups=4, n_shared=1, k=3)
    for blk in m.blocks:  # a trained-looking router and fusion map must not matter when everything is active
        with torch.no_grad():
            for r in (blk.r_attn, blk.r_mlp):
                r.router.weight.normal_()
                r.fuse.normal_()
    ids = torch.randint(0, 20, (3, 9))
    assert torch.allclose(m(ids).logits, dense(ids).logits, atol=1e-5)
    assert active_fraction(m) == 1.0
    loss = m(ids).logits.sum()
    loss.backward()  # gates are straight-through: the router still gets a gradient
    assert m.blocks[0].r_mlp.router.weight.grad is not None


def test_router_mask_scaling_and_fusion():
    r = HiddenRouter(16, n_groups=4, n_shared=1, k=1)
    with torch.no_grad():
        r.router.weight.normal_()
    h = torch.randn(5, 16)
    x, mask = r(h)
    groups = mask.view(5, 4, 4)[..., 0]
    assert torch.equal(groups[:, 0], torch.ones(5)) and torch.equal(groups.sum(1), torch.full((5,), 2.0))
    assert torch.equal(mask.view(5, 4, 4), groups[..., None].expand(5, 4, 4))
    sel = torch.softmax(r.router(h), -1).argmax(-1) + 1
    for i in range(5):  # zero fusion map: active groups are the input times n_groups/n_active = 2
        g = int(sel[i])
        assert torch.allclose(x[i].view(4, 4)[g], 2 * h[i].view(4, 4)[g], atol=1e-6)
        assert torch.allclose(x[i].view(4, 4)[0], 2 * h[i].view(4, 4)[0])
        off = [j for j in range(4) if j not in (0, g)]
        assert float(x[i].view(4, 4)[off].detach().abs().sum()) == 0.0
    with torch.no_grad():
        r.fuse.copy_(torch.eye(4))
    x2, _ = r(h)
    for i in range(5):  # fusion adds the mean of the two inactive routed groups to the active routed group
        g = int(sel[i])
        off = [j for j in range(1, 4) if j != g]
        expect = 2 * (h[i].view(4, 4)[g] + h[i].view(4, 4)[off].mean(0))
        assert torch.allclose(x2[i].view(4, 4)[g], expect, atol=1e-5)
    assert float(r.aux_loss.detach()) >= 1.0 - 1e-6


def test_half_active_model_and_flops():
    m = make_mohd(small_model(), n_groups=4, n_shared=1, k=1)
    ids = torch.randint(0, 20, (2, 8))
    m(ids)
    assert active_fraction(m) == pytest.approx(0.5)
    assert float(moe_aux_loss(m).detach()) > 0
    cfg = m.cfg
    dense = mohd_flops_per_token(cfg, 8)
    half = mohd_flops_per_token(cfg, 8, active=0.5)
    d = cfg.d_model
    proj = cfg.n_layers * 2 * (4 * d * d + 2 * d * cfg.d_mlp)
    assert dense - half == pytest.approx(proj / 2)
