import math

import pytest

torch = pytest.importorskip("torch")

from wannmag.llm.kape import activation_probability, deactivated, kape_scores, select_neurons  # noqa: E402


def constructed():
    """4 neurons, 100 internal and 100 external runs: 0 internal-only, 1 external-only, 2 both, 3 rarely active."""
    a_int = torch.zeros(100, 1, 4)
    a_ext = torch.zeros(100, 1, 4)
    a_int[:, 0, 0] = 1.0
    a_ext[:, 0, 1] = 1.0
    a_int[:, 0, 2] = 1.0
    a_ext[:, 0, 2] = 1.0
    a_int[:3, 0, 3] = 1.0
    return a_int, a_ext


def test_kape_entropy_on_constructed_activations():
    a_int, a_ext = constructed()
    p_int, p_ext = activation_probability(a_int), activation_probability(a_ext)
    assert torch.allclose(p_int[0], torch.tensor([1.0, 0.0, 1.0, 0.03]))
    h = kape_scores(p_int, p_ext)[0]
    assert float(h[0]) == pytest.approx(0.0, abs=1e-9) and float(h[1]) == pytest.approx(0.0, abs=1e-9)
    assert float(h[2]) == pytest.approx(math.log(2))
    # partial specificity: P_int = 0.75, P_ext = 0.25 → H(0.75, 0.25)
    hp = kape_scores(torch.tensor([0.75]), torch.tensor([0.25]))
    assert float(hp) == pytest.approx(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))


def test_select_neurons_picks_specific_and_active_ones():
    a_int, a_ext = constructed()
    p_int, p_ext = activation_probability(a_int), activation_probability(a_ext)
    m_int, m_ext = select_neurons(p_int, p_ext, frac=0.25, min_prob=0.1)
    assert m_int[0].tolist() == [True, False, False, False]  # neuron 3 is specific but rarely active
    assert m_ext[0].tolist() == [False, True, False, False]


def test_deactivated_context_manager_zeroes_and_restores():
    from wannmag.llm.common import TinyConfig, TinyTransformer
    m = TinyTransformer(TinyConfig(vocab_size=10, d_model=16, n_heads=2, n_layers=2, d_mlp=8, max_len=8), seed=0)
    ids = torch.randint(0, 10, (2, 5))
    ref = m(ids, return_mlp=True)
    mask = torch.zeros(2, 8, dtype=torch.bool)
    mask[1, 3] = True
    with deactivated(m, mask):
        o = m(ids, return_mlp=True)
        assert float(o.mlp[1][..., 3].abs().max()) == 0.0
        assert torch.allclose(o.mlp[0], ref.mlp[0])
    assert torch.allclose(m(ids).logits, ref.logits)
