"""The model adapter (issue 23): every kernel runs on TinyTransformer and on MiniGPT2 (an independently written
GPT-2-style decoder with plain nn.Linear layers, other names, tied embeddings), and the structural operations the
kernels rely on are exact on the second architecture too."""

import copy

import pytest

torch = pytest.importorskip("torch")

from llm_kernel_cases import ARCHS, DEVICE_CASES, HOST_CASES, lm_batch, tiny_model  # noqa: E402

from wannmag.llm.common.adapter import GPT2Adapter, TinyAdapter, as_adapter  # noqa: E402
from wannmag.llm.common.lora import LoRALinear  # noqa: E402

CPU = torch.device("cpu")


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("name", sorted(DEVICE_CASES))
def test_every_kernel_runs_on_both_architectures(name, arch):
    model = tiny_model(arch)
    outs = list(DEVICE_CASES[name](model, CPU))
    if name in HOST_CASES:
        outs += HOST_CASES[name](model, CPU)
    for o in outs:
        if o.is_floating_point():
            assert torch.isfinite(o).all(), name


def test_adapter_dispatch_and_unknown_model():
    assert isinstance(as_adapter(tiny_model("tiny")), TinyAdapter)
    ad = as_adapter(tiny_model("gpt2"))
    assert isinstance(ad, GPT2Adapter) and as_adapter(ad) is ad
    assert (ad.n_layers, ad.d_model, ad.n_heads, ad.d_head) == (2, 16, 2, 8)
    with pytest.raises(TypeError, match="no model adapter"):
        as_adapter(torch.nn.Linear(2, 2))


@pytest.mark.parametrize("arch", ARCHS)
def test_forward_embeddings_and_lora_wrap_are_exact(arch):
    m = tiny_model(arch)
    ad = as_adapter(m)
    ids = lm_batch(CPU)["input_ids"]
    ref = ad.forward(ids).logits
    if arch == "gpt2":
        assert torch.equal(ref, m(ids))                     # the adapter is the model's own forward
    onehot = torch.nn.functional.one_hot(ids, 20).float()
    assert torch.allclose(ad.forward(inputs_embeds=ad.soft_embed(onehot)).logits, ref, atol=1e-6)
    layers = ad.lora_layers()                                # wraps plain Linears in place
    assert len(layers) == 12 and all(isinstance(l, LoRALinear) for _, l in layers)
    assert torch.allclose(ad.forward(ids).logits, ref, atol=1e-6)
    out = ad.forward(ids, return_mlp=True, return_attn=True, return_final=True)
    assert len(out.mlp) == 2 and out.mlp[0].shape == (2, 8, 32)
    assert len(out.attn) == 2 and torch.allclose(out.attn[0].sum(-1), torch.ones(2, 2, 8), atol=1e-5)
    assert out.hidden[0].shape == (2, 8, 16)


@pytest.mark.parametrize("arch", ARCHS)
def test_neuron_masks(arch):
    ad = as_adapter(tiny_model(arch))
    ids = lm_batch(CPU)["input_ids"]
    ref = ad.forward(ids).logits
    mask = torch.ones(32)
    mask[:16] = 0
    ad.set_neuron_mask(1, mask)
    out = ad.forward(ids, return_mlp=True)
    assert float(out.mlp[1][..., :16].abs().max()) == 0.0 and float(out.mlp[1][..., 16:].abs().max()) > 0
    assert not torch.allclose(out.logits, ref)
    ad.clear_neuron_masks()
    assert torch.equal(ad.forward(ids).logits, ref)


@pytest.mark.parametrize("arch", ARCHS)
def test_block_wrappers_reduce_to_the_dense_model(arch):
    """ITT with rho=0, MoHD with every group active and an MoE of identical experts are the dense model."""
    from wannmag.llm.itt import make_itt
    from wannmag.llm.mohd import make_mohd
    from wannmag.llm.upit import build_moe, mlp_states
    base = tiny_model(arch)
    ids = lm_batch(CPU)["input_ids"]
    ref = as_adapter(base).forward(ids).logits
    itt = make_itt(copy.deepcopy(base), rho=0.0, n_think=2)
    assert torch.equal(as_adapter(itt).forward(ids).logits, ref)
    mohd = make_mohd(copy.deepcopy(base), n_groups=4, n_shared=1, k=3)
    assert torch.allclose(as_adapter(mohd).forward(ids).logits, ref, atol=1e-5)
    s = mlp_states(base)
    moe = build_moe(base, [s, s, s], k=2)
    assert torch.allclose(as_adapter(moe).forward(ids).logits, ref, atol=1e-5)


@pytest.mark.parametrize("arch", ARCHS)
def test_apex_fusion_is_exact(arch):
    from wannmag.llm.apex import ExpansionAdapter, expand, fuse
    m = tiny_model(arch)
    ids = lm_batch(CPU)["input_ids"]
    _, handles = expand(m, 0.25, [lm_batch(CPU)])
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, ExpansionAdapter):
                mod.E.normal_(0, 0.3)
    before = as_adapter(m).forward(ids).logits
    for h in handles:
        h.remove()
    assert fuse(m) == 12
    assert torch.allclose(as_adapter(m).forward(ids).logits, before, atol=1e-5)
