"""Each kernel's core functions as small cases ``case(model, device) -> list of output tensors`` (issue 23), shared by
``test_llm_device.py`` (meta/cuda runs, factory audit) and ``test_llm_adapter.py`` (both architectures).

``DEVICE_CASES`` never read tensor data on the host, so they run on the ``meta`` device; ``HOST_CASES`` do (training
loops, ``int()``/``nonzero`` bookkeeping) and run on real devices only.  Every case works on any model with an adapter
(``tiny_model("tiny")`` = TinyTransformer, ``tiny_model("gpt2")`` = the independently written MiniGPT2).
"""

from __future__ import annotations

import copy

import torch

from wannmag.llm.common import TinyConfig, TinyTransformer
from wannmag.llm.common.adapter import as_adapter
from wannmag.llm.common.gpt2 import GPT2Config, MiniGPT2

V, D, H, L, DM, T = 20, 16, 2, 2, 32, 8
ARCHS = ("tiny", "gpt2")


def tiny_model(arch: str = "tiny", seed: int = 0):
    if arch == "tiny":
        return TinyTransformer(TinyConfig(vocab_size=V, d_model=D, n_heads=H, n_layers=L, d_mlp=DM, max_len=32),
                               seed=seed)
    if arch == "gpt2":
        return MiniGPT2(GPT2Config(vocab_size=V, n_embd=D, n_head=H, n_layer=L, n_inner=DM, n_positions=32), seed=seed)
    raise ValueError(arch)


def fdtype(model) -> torch.dtype:
    """The model's floating dtype: the float inputs a case makes itself follow it (a float64 model gets float64)."""
    return next(p.dtype for p in model.parameters() if p.is_floating_point())


def lm_batch(dev, b: int = 2, t: int = T, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, V, (b, t), generator=g)
    labels = torch.cat([ids[:, 1:], torch.full((b, 1), -100)], 1)
    return {"input_ids": ids.to(dev), "labels": labels.to(dev)}


# ------------------------------------------------------------------------------------------------ device cases
def bee_rag_dev(model, dev):
    from wannmag.llm.bee_rag import BalancedDocBias, LearnedBalance
    doc_ids = torch.tensor([[0, 0, 1, 1, 2, 2, -1, -1]] * 2)  # layout on the CPU, the model elsewhere
    ids = lm_batch(dev)["input_ids"]
    pos = torch.tensor([0, 1, 0, 1, 0, 1, 2, 3], device=dev)
    seg = doc_ids[0]
    am = ((seg[:, None] == seg[None, :]) | (seg[:, None] < 0)).to(dev)
    ad = as_adapter(model)
    dt = fdtype(model)
    outs = []
    for mode, kw in (("solve", {"reference_entropy": torch.full((L, H), 0.5, device=dev, dtype=dt)}),
                     ("closed_form", {}), ("learned", {"learned": LearnedBalance(L, H).to(dev, dt)})):
        bias = BalancedDocBias(doc_ids, n_ref=2, mode=mode, **kw)
        outs.append(ad.forward(ids, position_ids=pos, attn_mask=am, attn_bias=bias).logits)
    return outs


def soft_thinking_dev(model, dev):
    from wannmag.llm.soft_thinking import think_and_answer
    prompt = lm_batch(dev)["input_ids"][:, :4]
    return [think_and_answer(model, prompt, 2, 3, mode) for mode in ("greedy", "soft", "dirichlet", "gumbel")]


def kape_dev(model, dev):
    from wannmag.llm.kape import activation_probability, collect_activations, deactivated, select_neurons
    b = lm_batch(dev)
    a_int = collect_activations(model, [b])
    a_ext = collect_activations(model, [lm_batch(dev, seed=1)])
    m_int, m_ext = select_neurons(activation_probability(a_int), activation_probability(a_ext), frac=0.1)
    with deactivated(model, m_int | m_ext):
        off = collect_activations(model, [b])
    return [a_int, m_int, m_ext, off]


def swift_study_dev(model, dev):
    from wannmag.llm.swift_study import RandomProjector, example_gradients, influence
    g = example_gradients(model, [lm_batch(dev, 1, seed=s) for s in range(2)])
    p = RandomProjector(g.shape[1], k=8, chunk=500)(g)
    return [g, p, influence(p, p, 0.1, normalize=True)]


def riorag_dev(model, dev):
    from wannmag.llm.common.generate import sequence_logprobs
    from wannmag.llm.common.rl import clipped_policy_loss, group_advantages
    b = lm_batch(dev)["input_ids"]
    lp = sequence_logprobs(model, b[:, :4], b[:, 4:])
    adv = group_advantages(torch.rand(1, 2).to(dev, fdtype(model))).reshape(-1)
    loss = clipped_policy_loss(lp, lp.detach(), adv, torch.ones_like(lp, dtype=torch.bool))
    return [lp, adv, loss]


def beamlora_dev(model, dev):
    from wannmag.llm.beamlora import add_beamlora
    m = copy.deepcopy(model)
    params = add_beamlora(m, 2, targets=("q", "v", "fc_in"))
    loss = as_adapter(m).forward(lm_batch(dev)["input_ids"]).logits.square().mean()
    loss.backward()
    return [loss] + [p.grad for p in params]


def apex_dev(model, dev):
    from wannmag.llm.apex import ExpansionAdapter, expand, fuse
    m = copy.deepcopy(model)
    params, handles = expand(m, 0.25, [lm_batch(dev)])
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, ExpansionAdapter):
                mod.E.add_(0.1)
    out = as_adapter(m).forward(lm_batch(dev)["input_ids"]).logits
    for h in handles:
        h.remove()
    fuse(m)
    return [out, as_adapter(m).forward(lm_batch(dev)["input_ids"]).logits]


def itt_dev(model, dev):
    from wannmag.llm.itt import make_itt
    m = make_itt(copy.deepcopy(model), rho=0.5, n_think=2).eval()
    return [as_adapter(m).forward(lm_batch(dev)["input_ids"]).logits]


def mohd_dev(model, dev):
    from wannmag.llm.common.moe import moe_aux_loss
    from wannmag.llm.mohd import make_mohd
    m = make_mohd(copy.deepcopy(model), n_groups=4, n_shared=1, k=1)
    return [as_adapter(m).forward(lm_batch(dev)["input_ids"]).logits, moe_aux_loss(m)]


def upit_dev(model, dev):
    from wannmag.llm.upit import dare, merge, mlp_states
    s = mlp_states(model)
    merged = merge(s[0], s[1], 0.3)
    out = dare(merged, s[0], 0.3)
    return list(merged.values()) + list(out.values())


def cd_rlhf_dev(model, dev):
    from wannmag.llm.cd_rlhf import CuriosityModule, intrinsic_rewards, topk_gate
    from wannmag.llm.common.ppo import ActorCritic
    ac = ActorCritic(model)                  # no .to(): the value head must follow the model by itself
    seq = lm_batch(dev)["input_ids"]
    logits, values, h = ac(seq)
    icm = CuriosityModule(D, V).to(dev, fdtype(model))
    err = icm.errors(h, seq[:, 1:])
    gate = topk_gate(logits[:, :-1], seq[:, 1:])
    return [values, err, gate, intrinsic_rewards(err, gate, torch.ones_like(gate))]


def ma_rlhf_dev(model, dev):
    from wannmag.llm.ma_rlhf import macro_gae, macro_ids
    mask = torch.ones(2, T, dtype=torch.bool, device=dev)
    lp = torch.log_softmax(as_adapter(model).forward(lm_batch(dev)["input_ids"]).logits, -1)[..., 3]
    outs = [macro_ids(mask, "fixed", n=2), macro_ids(mask, "random", generator=torch.Generator().manual_seed(0)),
            macro_ids(mask, "ppl", logprobs=lp, threshold=5.0)]
    r, v = torch.rand(2, T).to(dev, fdtype(model)), torch.rand(2, T).to(dev, fdtype(model))
    for mid in outs:
        outs = outs + list(macro_gae(r, v, mid))
    return outs


DEVICE_CASES = {"bee_rag": bee_rag_dev, "soft_thinking": soft_thinking_dev, "kape": kape_dev,
                "swift_study": swift_study_dev, "riorag": riorag_dev, "beamlora": beamlora_dev, "apex": apex_dev,
                "itt": itt_dev, "mohd": mohd_dev, "upit": upit_dev, "cd_rlhf": cd_rlhf_dev, "ma_rlhf": ma_rlhf_dev}


# ------------------------------------------------------------------------------------------------ host cases
def bee_rag_host(model, dev):
    from wannmag.llm.bee_rag import BalancedDocBias, calibrate_reference_entropy
    doc_ids = torch.tensor([[0, 0, 1, 1, 2, 2, -1, -1]] * 2, device=dev)
    b = {"input_ids": lm_batch(dev)["input_ids"], "position_ids": torch.tensor([0, 1, 0, 1, 0, 1, 2, 3], device=dev),
         "attn_mask": torch.ones(T, T, dtype=torch.bool, device=dev)}
    ref = calibrate_reference_entropy(model, [b])
    bias = BalancedDocBias(doc_ids, n_ref=2, reference_entropy=ref * 0.5)
    out = as_adapter(model).forward(b["input_ids"], position_ids=b["position_ids"], attn_mask=b["attn_mask"],
                                    attn_bias=bias)
    return [ref, out.logits, bias.last_sigma[0]]


def soft_thinking_host(model, dev):
    from wannmag.llm.soft_thinking import think_and_answer, top1_dependence
    prompt = lm_batch(dev)["input_ids"][:, :4]
    g = torch.Generator(device=dev).manual_seed(0)
    outs = [think_and_answer(model, prompt, 2, 3, m, generator=g) for m in ("sample", "gumbel")]
    ans, w, pre = think_and_answer(model, prompt, 2, 3, "soft", top_k=None, return_trace=True)
    top1_dependence(model, pre[1], w[1])
    return outs + [ans] + list(w)          # w: the soft tokens (floating, the model's dtype)


def swift_study_host(model, dev):
    from wannmag.llm.swift_study import RandomProjector, checkpoint_influence
    state = copy.deepcopy(model.state_dict())
    n = sum(p.numel() for p in model.parameters())
    sc = checkpoint_influence(model, [(state, 0.1)], {"a": [lm_batch(dev, 1)]}, {"e": [lm_batch(dev, 1, seed=2)]},
                              RandomProjector(n, 8))
    return [torch.tensor(list(sc.values()), dtype=fdtype(model))]


def riorag_host(model, dev):
    from wannmag.llm.common.generate import generate, sequence_logprobs
    from wannmag.llm.common.rl import clipped_policy_loss, group_advantages
    prompt = lm_batch(dev)["input_ids"][:, :3].repeat_interleave(2, 0)
    gen = generate(model, prompt, 4, generator=torch.Generator(device=dev).manual_seed(0), eos_id=2)
    rewards = (gen.tokens == 5).float().mean(1).reshape(2, 2)
    lp = sequence_logprobs(model, prompt, gen.tokens)
    loss = clipped_policy_loss(lp, gen.logprobs, group_advantages(rewards).reshape(-1), gen.mask)
    loss.backward()
    return [loss]


def beamlora_host(model, dev):
    from wannmag.llm.beamlora import BeamLoRAScheduler, add_beamlora, beamlora_modules
    m = copy.deepcopy(model)
    params = add_beamlora(m, 4, targets=("q", "v"))
    opt = torch.optim.Adam(params, lr=1e-2)
    x = lm_batch(dev)["input_ids"]
    loss = as_adapter(m).forward(x).logits.square().mean()
    loss.backward()
    opt.step()
    with torch.no_grad():
        for _, ad in beamlora_modules(m):
            ad.gate.copy_(torch.tensor([0.3, 0.2, 0.0, -0.3], device=dev))
            ad.B.normal_()
    before = as_adapter(m).forward(x).logits
    sched = BeamLoRAScheduler(m, opt, interval=1, end_step=10)
    n = sched.step(0)
    after = as_adapter(m).forward(x).logits
    assert n > 0 and torch.allclose(before, after, atol=1e-4), "prune/expand must keep the function"
    return [after]


def apex_host(model, dev):
    from wannmag.llm.apex import apex_finetune, mean_effective_rank
    m = copy.deepcopy(model)
    res = apex_finetune(m, lambda s: lm_batch(dev, seed=abs(s)), steps=2, stages=2, frac=0.25, random=True)
    mean_effective_rank(m)
    return [torch.tensor(res["loss"], dtype=fdtype(model))]


def itt_host(model, dev):
    from wannmag.llm.itt import make_itt, selected_fractions
    m = make_itt(copy.deepcopy(model), rho=0.5, n_think=2).train()
    out = as_adapter(m).forward(lm_batch(dev)["input_ids"]).logits
    assert all(len(f) == 2 for f in selected_fractions(m))
    return [out]


def mohd_host(model, dev):
    from wannmag.llm.mohd import active_fraction, make_mohd
    m = make_mohd(copy.deepcopy(model), n_groups=4, n_shared=1, k=1)
    out = as_adapter(m).forward(lm_batch(dev)["input_ids"]).logits
    assert 0.0 < active_fraction(m) < 1.0
    return [out]


def upit_host(model, dev):
    from wannmag.llm.common.moe import moe_aux_loss
    from wannmag.llm.upit import build_moe, genetic_expand, mlp_states, pre_optimise_routers
    base = mlp_states(model)
    m2 = copy.deepcopy(model)
    with torch.no_grad():
        for p in m2.parameters():
            p.add_(0.01 * torch.randn(p.shape, generator=torch.Generator().manual_seed(1)).to(dev))
    experts = genetic_expand([base, mlp_states(m2)], base, 3, generator=torch.Generator(device=dev).manual_seed(0))
    moe = build_moe(model, experts, k=2)
    res = pre_optimise_routers(moe, [lm_batch(dev)], steps=2)
    out = as_adapter(moe).forward(lm_batch(dev)["input_ids"]).logits
    return [out, moe_aux_loss(moe), res["labels"][0]]


def _ppo(model, dev, **kw):
    from wannmag.llm.common.ppo import ActorCritic, PPOConfig, ppo_train
    ac = ActorCritic(copy.deepcopy(model))   # head follows the model
    prompt = lm_batch(dev, 4)["input_ids"][:, :2]
    cfg = PPOConfig(steps=1, max_new=4, epochs=1, eos_id=None)
    hist = ppo_train(ac, lambda s: prompt, lambda ro: (ro.tokens == 5).float().mean(1), cfg,
                     generator=torch.Generator(device=dev).manual_seed(0), **kw)
    return [torch.tensor([h["reward"] for h in hist], dtype=fdtype(model)), ac.value_head.weight]


def cd_rlhf_host(model, dev):
    from wannmag.llm.cd_rlhf import CuriosityModule, curiosity_shaping
    return _ppo(model, dev, shaping_fn=curiosity_shaping(CuriosityModule(D, V).to(dev, fdtype(model)), eta=0.1))


def ma_rlhf_host(model, dev):
    from wannmag.llm.ma_rlhf import macro_advantage_fn
    return _ppo(model, dev, advantage_fn=macro_advantage_fn("ppl", threshold=5.0, stats=[]))


HOST_CASES = {"bee_rag": bee_rag_host, "soft_thinking": soft_thinking_host, "swift_study": swift_study_host,
              "riorag": riorag_host, "beamlora": beamlora_host, "apex": apex_host, "itt": itt_host,
              "mohd": mohd_host, "upit": upit_host, "cd_rlhf": cd_rlhf_host, "ma_rlhf": ma_rlhf_host}
