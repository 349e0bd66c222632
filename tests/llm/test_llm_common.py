import pytest

torch = pytest.importorskip("torch")

from wannmag.llm.common import (ArithmeticTask, KeyValueDocsTask, TinyConfig, TinyTransformer, add_lora,  # noqa: E402
                                clipped_policy_loss, group_advantages, lm_loss, lora_parameters, merge_lora,
                                pass_at_k, spearman)
from wannmag.llm.common.tasks import IGNORE  # noqa: E402


def small_model(vocab=20, **kw):
    return TinyTransformer(TinyConfig(vocab_size=vocab, d_model=16, n_heads=2, n_layers=2, d_mlp=32, max_len=16, **kw),
                           seed=0)


def test_causal_and_soft_embedding_equivalence():
    m = small_model()
    ids = torch.randint(0, 20, (3, 7))
    out = m(ids).logits
    ids2 = ids.clone()
    ids2[:, 5:] = 0
    assert torch.allclose(m(ids2).logits[:, :5], out[:, :5], atol=1e-5)  # future tokens don't leak
    onehot = torch.nn.functional.one_hot(ids, 20).float()
    assert torch.allclose(m(inputs_embeds=m.soft_embed(onehot)).logits, out, atol=1e-5)


def test_attention_bias_callable_and_mask():
    m = small_model()
    ids = torch.randint(0, 20, (2, 6))
    seen = []

    def bias(layer, scores, allowed):
        seen.append((layer, scores.shape))
        b = torch.zeros_like(scores)
        b[..., 0] = -1e9  # forbid attending to token 0
        return b

    o = m(ids, attn_bias=bias, return_attn=True)
    assert [s[0] for s in seen] == [0, 1] and seen[0][1] == (2, 2, 6, 6)
    assert float(o.attn[0][:, :, 1:, 0].detach().max()) < 1e-6
    mask = torch.ones(6, 6, dtype=torch.bool)
    mask[:, 0] = False
    mask[0, 0] = True
    o2 = m(ids, attn_mask=mask, return_attn=True)
    assert torch.allclose(o2.attn[1][:, :, 1:], o.attn[1][:, :, 1:], atol=1e-5)


def test_neuron_mask_and_mlp_hook():
    m = small_model()
    ids = torch.randint(0, 20, (2, 5))
    o = m(ids, return_mlp=True)
    assert o.mlp[0].shape == (2, 5, 32)
    m.set_neuron_mask(0, torch.zeros(32))
    o0 = m(ids, return_mlp=True)
    assert float(o0.mlp[0].abs().max()) == 0.0
    m.clear_neuron_masks()
    hooked = m(ids, mlp_hook=lambda layer, a: a * 0 if layer == 0 else a).logits
    m.set_neuron_mask(0, torch.zeros(32))
    assert torch.allclose(hooked, m(ids).logits, atol=1e-6)


def test_lora_starts_at_identity_trains_and_merges():
    m = small_model()
    ids = torch.randint(0, 20, (2, 5))
    ref = m(ids).logits.detach()
    params = add_lora(m, r=2, targets=("q", "v", "fc_in"))
    assert len(params) == 2 * 3 * 2 and all(p.requires_grad for p in params)
    assert not m.tok_emb.weight.requires_grad
    assert torch.allclose(m(ids).logits, ref, atol=1e-6)
    with torch.no_grad():
        for p in lora_parameters(m):
            p.add_(0.1 * torch.randn_like(p))
    adapted = m(ids).logits.detach()
    assert not torch.allclose(adapted, ref, atol=1e-3)
    merge_lora(m)
    assert lora_parameters(m) == []
    assert torch.allclose(m(ids).logits, adapted, atol=1e-5)


def test_tasks_are_consistent():
    t = ArithmeticTask()
    g = torch.Generator().manual_seed(1)
    pb = t.sample(50, 3, g)
    x = pb.x0
    for i in range(3):
        x = t.apply(x, pb.ops[:, i], pb.operands[:, i])
    assert torch.equal(x, pb.answer)
    e = t.encode(pb, "cot")
    lab = e["labels"]
    assert torch.equal(lab[:, e["answer_pos"] - 1], t.digit_ids[pb.answer])
    assert (lab[:, : e["prompt_len"] - 1] == IGNORE).all()
    kv = KeyValueDocsTask(n_keys=16, n_values=8, doc_len=3)
    b = kv.sample(4, 5, g)
    for i in range(4):
        d = int(b["target_doc"][i])
        assert int(b["input_ids"][i, 3 * d + 1]) == int(b["input_ids"][i, -1])  # query key = target doc's key
        assert int(b["input_ids"][i, 3 * d]) == int(b["answer_id"][i])
    assert not b["attn_mask"][0, 3, 0] and b["attn_mask"][0, -1, 0]


def test_lm_loss_ignores_unlabelled_positions():
    logits = torch.randn(2, 4, 5)
    labels = torch.full((2, 4), IGNORE)
    labels[0, 1] = 3
    expect = torch.nn.functional.cross_entropy(logits[0, 1:2], torch.tensor([3]))
    assert torch.allclose(lm_loss(logits, labels), expect)


def test_group_advantages_and_clipped_loss():
    r = torch.tensor([[1.0, 0.0, 0.0, 1.0], [2.0, 2.0, 2.0, 2.0]])
    a = group_advantages(r)
    assert torch.allclose(a[0], torch.tensor([1.0, -1.0, -1.0, 1.0]), atol=1e-4)
    assert torch.allclose(a[1], torch.zeros(4))
    assert torch.allclose(a.mean(1), torch.zeros(2), atol=1e-6)
    lp_old = torch.zeros(2, 3)
    mask = torch.ones(2, 3, dtype=torch.bool)
    adv = torch.tensor([1.0, -1.0])
    # ratio 1: loss = -mean(adv) = 0 ; large ratio is clipped for the positive advantage
    assert abs(float(clipped_policy_loss(lp_old, lp_old, adv, mask))) < 1e-7
    big = torch.full((2, 3), 1.0)  # ratio e ≈ 2.72
    loss = float(clipped_policy_loss(big, lp_old, adv, mask, clip=0.2))
    assert loss == pytest.approx(0.5 * (-1.2 + torch.e), rel=1e-5)


def test_pass_at_k_and_spearman():
    assert pass_at_k(10, 0, 3) == 0.0 and pass_at_k(10, 10, 1) == 1.0
    assert pass_at_k(4, 1, 1) == pytest.approx(0.25)
    assert pass_at_k(4, 1, 2) == pytest.approx(0.5)
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
