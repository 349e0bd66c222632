"""SpinModel conventions and the energy-mapping route to J."""

import numpy as np
import pytest

from wannmag.magnetism import (INTERNAL, TB2J, Convention, FitError, SpinModel, SpinModelError, fit_exchange,
                               load_energy_records, model_energies, records_from_configurations)
from wannmag.structures import (cri3_monolayer, find_magnetic_sites, honeycomb_configuration, neighbour_shells,
                                standard_configurations, vacancy_supercell, vps3_monolayer)

J_TRUE = (-2.1, -0.35, 0.12)  # meV, internal convention


def honeycomb_model(builder=cri3_monolayer, Js=J_TRUE):
    sub = find_magnetic_sites(builder())
    model = SpinModel.from_sublattice(sub)
    for n, (sh, J) in enumerate(zip(neighbour_shells(sub, len(Js)), Js), start=1):
        for b in sh.bonds:
            model.add_bond(b.i, b.j, b.R, J, shell=n)
    return sub, model


def test_bonds_are_stored_once_with_transposed_tensor():
    _, model = honeycomb_model()
    D = np.array([[0, 0.3, 0], [-0.3, 0, 0], [0, 0, 0]])
    b = model.add_bond(1, 0, (1, 0, 0), D, replace=True)  # the 1NN bond (0, 1, (-1, 0, 0)) seen backwards
    assert (b.i, b.j, b.R) == (0, 1, (-1, 0, 0))
    assert np.allclose(b.J, D.T)
    assert np.allclose(b.dmi, [0, 0, -0.3])
    with pytest.raises(SpinModelError):
        model.add_bond(0, 1, (-1, 0, 0), 1.0)
    with pytest.raises(SpinModelError):
        model.add_bond(0, 0, (0, 0, 0), 1.0)


def test_energy_of_collinear_states_equals_design_matrix():
    sub, model = honeycomb_model()
    S2 = 1.5**2
    per_site = {"FM": (1.5, 3, 1.5), "Neel": (-1.5, 3, -1.5), "zigzag": (0.5, -1, -1.5), "stripy": (-0.5, -1, 1.5)}
    configs = standard_configurations(sub)
    E = model_energies(model, configs)
    for c, e in zip(configs, E):
        assert e / c.n_sites == pytest.approx(S2 * np.dot(per_site[c.name], J_TRUE), abs=1e-12)


def test_tb2j_convention_round_trip():
    # TB2J: E = -sum_{i != j} J e_i.e_j (both directions, unit spins); internal: E = J S^2 cos(theta), bond once
    S = 1.5
    J_int = -2.1
    J_tb2j = float(TB2J.from_internal(J_int, S, S))
    assert J_tb2j == pytest.approx(-J_int * S * S / 2)  # +2.3625 meV, positive = FM in TB2J
    assert float(TB2J.to_internal(J_tb2j, S, S)) == pytest.approx(J_int)
    # the pair energy is the same physical number in both conventions, for parallel spins
    assert -2 * J_tb2j * 1.0 == pytest.approx(J_int * S * S)
    kelvin = Convention("K, bond once, S", unit="K")
    assert float(kelvin.to_internal(1.0, S, S)) == pytest.approx(0.08617333262)
    assert float(INTERNAL.to_internal(J_int, S, S)) == J_int
    with pytest.raises(SpinModelError):
        Convention("bad", sign=2)


def test_json_round_trip(tmp_path):
    _, model = honeycomb_model()
    model.single_ion[0] = np.diag([0, 0, -0.1])
    path = model.save(tmp_path / "m.json")
    back = SpinModel.load(path)
    assert back.n_sites == 2 and len(back.bonds) == len(model.bonds)
    s = np.random.default_rng(0).normal(size=(2, 3))
    assert back.energy(s) == pytest.approx(model.energy(s))
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(SpinModelError, match="bad.json"):
        SpinModel.load(tmp_path / "bad.json")


@pytest.mark.parametrize("builder", [cri3_monolayer, vps3_monolayer])
def test_energy_mapping_round_trip_mixed_supercells(builder):
    sub, model = honeycomb_model(builder)
    configs = standard_configurations(sub) + [honeycomb_configuration(sub, "Neel", supercell=(2, 2, 1)),
                                               honeycomb_configuration(sub, "stripy", supercell=(2, 2, 1))]
    E0 = -15.321  # eV per magnetic ion
    energies = model_energies(model, configs) / 1000.0 + E0 * np.array([c.n_sites for c in configs])
    records, distances = records_from_configurations(sub, configs, energies)
    fit = fit_exchange(records, spin=1.5, distances=distances)
    assert fit.J == pytest.approx(J_TRUE, abs=1e-9)
    assert fit.E0 == pytest.approx(E0 * 1000, abs=1e-6)
    assert np.max(np.abs(fit.residuals)) < 1e-9
    # a spin model built from the fit reproduces the energies
    back = fit.to_spin_model(sub)
    assert model_energies(back, configs) == pytest.approx(model_energies(model, configs), abs=1e-9)


def test_fit_refuses_underdetermined_and_inconsistent_input(tmp_path):
    sub, model = honeycomb_model()
    fm, neel = standard_configurations(sub, names=("FM", "Neel"))
    energies = model_energies(model, [fm, neel]) / 1000.0
    records, _ = records_from_configurations(sub, [fm, neel], energies)
    with pytest.raises(FitError, match="underdetermined"):
        fit_exchange(records, n_shells=3)
    # two configurations fit one J exactly... but FM/Néel cannot separate J1 from J3: with 2 shells still refused
    ok = fit_exchange(records, n_shells=1)
    assert ok.J[0] == pytest.approx(J_TRUE[0] + J_TRUE[2], abs=1e-9)
    # the same Néel state on a bigger cell adds no information
    neel2 = honeycomb_configuration(sub, "Neel", supercell=(2, 2, 1))
    recs2, _ = records_from_configurations(sub, [fm, neel, neel2], list(energies) +
                                           [model_energies(model, [neel2])[0] / 1000.0])
    with pytest.raises(FitError, match="underdetermined"):
        fit_exchange(recs2, n_shells=2)
    # a vacancy supercell does not share E0 with perfect cells
    vac = vacancy_supercell(sub, supercell=(2, 2, 1), sites=[0])
    recs3, _ = records_from_configurations(sub, [fm, neel, vac], [0.0, 0.1, 0.2])
    with pytest.raises(FitError, match="compositions"):
        fit_exchange(recs3, n_shells=1)
    # records without their site count
    (tmp_path / "e.json").write_text('{"configurations": [{"name": "FM", "energy": -1.0, "counts": [3, 6, 3]}]}')
    with pytest.raises(FitError, match="n_sites"):
        load_energy_records(tmp_path / "e.json")


def test_ill_conditioned_fit_is_refused():
    sub, model = honeycomb_model()
    configs = standard_configurations(sub)
    records, _ = records_from_configurations(sub, configs, np.zeros(4))
    # make zigzag nearly identical to stripy in the J1/J3 columns: condition number explodes
    records[2].counts = records[3].counts * 1.0 + np.array([1e-7, 0, 0])
    with pytest.raises(FitError):
        fit_exchange(records, n_shells=3)


def test_linear_fit_diagnostics():
    """The shared least-squares helper: exact solution, the undetermined unknowns of a rank-deficient design named,
    condition number of the column-normalised design, standard errors only with redundant data."""
    from wannmag.magnetism.linfit import linear_fit

    A = np.array([[1.0, 1.5, 3.0], [1.0, -1.5, 3.0], [1.0, 0.5, -1.0], [1.0, -0.5, -1.0]])
    x0 = np.array([-10.0, 2.0, 0.3])
    lf = linear_fit(A, A @ x0, ["E0", "J1", "J2"])
    assert lf.full_rank and lf.x == pytest.approx(x0) and np.abs(lf.residuals).max() < 1e-12
    assert lf.stderr is not None and lf.stderr.max() < 1e-10 and 1 <= lf.condition_number < 10
    bad = linear_fit(A[:, [0, 2, 2]] * [1, 1, 2], A[:, 0], ["E0", "Ja", "Jb"])   # two proportional columns
    assert bad.rank == 2 and not bad.full_rank and bad.undetermined == ["Ja", "Jb"]
    assert bad.condition_number == float("inf") and bad.stderr is None
