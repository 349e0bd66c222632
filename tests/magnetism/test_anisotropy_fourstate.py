"""Four-state method, single-ion scheme, XXZ and Kitaev–Γ–Γ′ decompositions on synthetic spin models (exact)."""

import numpy as np
import pytest

from wannmag.magnetism import SpinModel
from wannmag.magnetism.anisotropy.fourstate import (FourStateError, c3_average, decompose, extract_anisotropic_model,
                                                    four_state_exchange, four_state_single_ion, kitaev_frame,
                                                    kitaev_parameters, kitaev_tensor, model_energy_function,
                                                    n_energies, site_index, supercell_sites, xxz_parameters)
from wannmag.structures import cri3_monolayer, find_magnetic_sites, neighbour_shells

KIT = {"J": -0.9, "K": -4.1, "Gamma": 0.35, "Gamma_prime": -0.12}   # meV, per bond, internal convention
A_TRUE = np.array([[0.05, 0.02, -0.01], [0.02, 0.08, 0.03], [-0.01, 0.03, -0.13]])  # traceless, meV
D2 = 0.07   # 2NN DMI along the layer normal (meV), sign alternating with the sublattice (Kane–Mele-like)


@pytest.fixture(scope="module")
def synthetic():
    sub = find_magnetic_sites(cri3_monolayer())
    model = SpinModel.from_sublattice(sub)
    shells = neighbour_shells(sub, 3)
    for b in shells[0].bonds:
        F = kitaev_frame(sub, b.i, b.j, b.R)
        model.add_bond(b.i, b.j, b.R, kitaev_tensor(KIT["J"], KIT["K"], KIT["Gamma"], KIT["Gamma_prime"], F), shell=1)
    for k, b in enumerate(shells[1].bonds):
        s = 1.0 if b.i == 0 else -1.0
        Jt = -0.2 * np.eye(3)
        Jt[0, 1], Jt[1, 0] = s * D2, -s * D2
        model.add_bond(b.i, b.j, b.R, Jt, shell=2)
    for b in shells[2].bonds:
        model.add_bond(b.i, b.j, b.R, np.diag([0.1, 0.1, 0.13]), shell=3)
    model.single_ion = [A_TRUE.copy(), A_TRUE.copy()]
    return sub, model


def test_kitaev_frame_is_the_cubic_frame(synthetic):
    sub, _ = synthetic
    nn = neighbour_shells(sub, 1)[0].bonds
    frames = [kitaev_frame(sub, b.i, b.j, b.R) for b in nn]
    c = np.array([0, 0, 1.0])
    gammas = np.array([F[2] for F in frames])
    for F in frames:
        assert np.allclose(F @ F.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(F) == pytest.approx(1.0)
        assert F[2] @ c > 0
    # the three γ axes of the three bonds are (nearly, for the trigonally distorted prototype) the cubic axes
    assert np.allclose(gammas @ gammas.T, np.eye(3), atol=0.08)
    assert np.allclose(gammas @ c, 1 / np.sqrt(3), atol=0.06)
    # the γ axis is perpendicular to its bond
    for b, F in zip(nn, frames):
        assert abs(F[2] @ np.array(b.vector)) < 1e-9
    # the same frame from the other metal of the bond
    b = nn[0]
    assert np.allclose(kitaev_frame(sub, b.j, b.i, tuple(-x for x in b.R)), frames[0], atol=1e-12)


def test_kitaev_parameters_round_trip():
    rng = np.random.default_rng(3)
    F, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    F = F.T * np.sign(np.linalg.det(F))
    J = kitaev_tensor(1.0, -3.0, 0.5, -0.2, F)
    p = kitaev_parameters(J, F)
    assert (p["J"], p["K"], p["Gamma"], p["Gamma_prime"]) == pytest.approx((1.0, -3.0, 0.5, -0.2), abs=1e-12)
    assert p["residual"] == pytest.approx(0.0, abs=1e-12)


def test_four_state_recovers_every_tensor_exactly(synthetic):
    sub, model = synthetic
    P = (3, 3, 1)
    energy, big = model_energy_function(model, P)
    assert len(supercell_sites(model, P)) == 18
    calls = {"n": 0}

    def counted(d):
        calls["n"] += 1
        return energy(d)

    fitted = extract_anisotropic_model(counted, model, P)
    assert calls["n"] == n_energies(len(model.bonds), model.n_sites)
    for b_true in model.bonds:
        b = next(x for x in fitted.bonds if (x.i, x.j, x.R) == (b_true.i, b_true.j, b_true.R))
        assert np.allclose(b.J, b_true.J, atol=1e-10)
    for A_fit in fitted.single_ion:
        assert np.allclose(A_fit, A_TRUE - np.trace(A_TRUE) / 3 * np.eye(3), atol=1e-10)
    # Kitaev–Γ–Γ′ of each nearest-neighbour bond in its own cubic frame
    for b in fitted.bonds:
        if model.bond_length(b) < 4.1:
            p = kitaev_parameters(b.J, kitaev_frame(sub, b.i, b.j, b.R))
            assert (p["J"], p["K"], p["Gamma"], p["Gamma_prime"]) == pytest.approx(
                (KIT["J"], KIT["K"], KIT["Gamma"], KIT["Gamma_prime"]), abs=1e-10)
            assert p["residual"] < 1e-10
        elif model.bond_length(b) < 7.1:  # 2NN: DMI recovered with its sign
            d = decompose(b.J)
            assert abs(d.dmi[2]) == pytest.approx(D2, abs=1e-10)
    # the energy of any state is reproduced by the fitted model
    rng = np.random.default_rng(0)
    spins = rng.normal(size=(2, 3))
    spins /= np.linalg.norm(spins, axis=1)[:, None]
    assert fitted.energy(spins) == pytest.approx(model.energy(spins) - 0.0, abs=1e-9)


def test_background_pattern_and_single_components(synthetic):
    _, model = synthetic
    energy, big = model_energy_function(model, (3, 3, 1))
    rng = np.random.default_rng(1)
    bg = rng.choice([-1, 1], size=big.n_sites)
    b = model.bonds[0]
    i = site_index(big, model.sites[b.i].position)
    j = site_index(big, model.sites[b.j].position + np.array(b.R) @ model.cell)
    J = four_state_exchange(energy, big.n_sites, i, j, 1.5, 1.5, background=bg)
    assert np.allclose(J, b.J, atol=1e-10)
    Jxz = four_state_exchange(energy, big.n_sites, i, j, 1.5, 1.5, components=[(0, 2)])
    assert Jxz[0, 2] == pytest.approx(b.J[0, 2], abs=1e-10) and Jxz[1, 1] == 0.0
    A = four_state_single_ion(energy, big.n_sites, 4, 1.5, background=bg, background_axis=(1, 1, 1))
    assert np.allclose(A, A_TRUE, atol=1e-10)


def test_xxz_of_c3_symmetric_shell(synthetic):
    sub, model = synthetic
    nn = [b for b in model.bonds if b.shell == 1]
    avg = sum(b.J for b in nn) / 3
    assert np.allclose(c3_average(nn[0].J), avg, atol=1e-3)  # the three bonds are C3 images (prototype symmetry)
    # ideal cubic axes with [111] along the layer normal: the C3 average of a J–K–Γ–Γ′ bond is XXZ with
    # λ = J_zz − J_perp = Γ + 2Γ′ and J_perp = J + K/3 − (Γ + 2Γ′)/3 (exact)
    c = np.array([1.0, 1.0, 1.0]) / np.sqrt(3)
    e1 = np.array([1.0, -1.0, 0.0]) / np.sqrt(2)
    to_layer = np.array([e1, np.cross(c, e1), c])   # rows: global x, y, z in cubic coordinates
    F0 = np.eye(3) @ to_layer.T                      # cubic axes written in the global (layer) frame
    x = xxz_parameters(kitaev_tensor(KIT["J"], KIT["K"], KIT["Gamma"], KIT["Gamma_prime"], F0))
    assert x["lambda"] == pytest.approx(KIT["Gamma"] + 2 * KIT["Gamma_prime"], abs=1e-12)
    assert x["J_perp"] == pytest.approx(KIT["J"] + KIT["K"] / 3 - (KIT["Gamma"] + 2 * KIT["Gamma_prime"]) / 3,
                                        abs=1e-12)
    # the trigonally distorted prototype (Cr–I–Cr ≈ 93°): the cubic axes tilt, and K leaks into λ
    xp = xxz_parameters(nn[0].J)
    g = kitaev_frame(sub, nn[0].i, nn[0].j, nn[0].R)[2]
    assert xp["lambda"] == pytest.approx(x["lambda"] + 1.5 * KIT["K"] * ((g[2]) ** 2 - 1 / 3), abs=0.05)
    # an explicit XXZ tensor
    xz = xxz_parameters(np.diag([1.0, 1.0, 1.3]))
    assert xz["lambda"] == pytest.approx(0.3) and xz["J_xx"] == xz["J_yy"] == pytest.approx(1.0)


def test_bad_input():
    with pytest.raises(FourStateError):
        four_state_exchange(lambda d: 0.0, 4, 1, 1, 1.5, 1.5)
    with pytest.raises(FourStateError):
        four_state_exchange(lambda d: "x", 4, 0, 1, 1.5, 1.5)
    with pytest.raises(FourStateError):
        four_state_single_ion(lambda d: 0.0, 4, 0, 1.5, background=[1, 1])
    sub = find_magnetic_sites(cri3_monolayer())
    b2 = neighbour_shells(sub, 2)[1].bonds[0]
    with pytest.raises(FourStateError) as exc:
        kitaev_frame(sub, b2.i, b2.j, b2.R)
    assert "bridging" in str(exc.value)
