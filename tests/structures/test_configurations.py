"""Magnetic configurations, the energy-mapping design matrix and vacancy supercells."""

import numpy as np
import pytest
from ase import Atoms
from ase.neighborlist import neighbor_list

from wannmag.errors import ConfigurationError
from wannmag.structures import (bond_counts, configuration_from_pattern, cri3_monolayer, find_magnetic_sites,
                                honeycomb_configuration, rectangular_supercell, standard_configurations,
                                vacancy_supercell, vps3_monolayer)

# textbook per-site coefficients of J1, J2, J3 (in units of S^2) on the honeycomb lattice, H = sum_{i<j} J S_i.S_j
TEXTBOOK = {"FM": (1.5, 3.0, 1.5), "Neel": (-1.5, 3.0, -1.5), "zigzag": (0.5, -1.0, -1.5), "stripy": (-0.5, -1.0, 1.5)}


def brute_force_counts(config, distances, tol=0.05):
    """Independent count: every ordered neighbour pair from ase.neighborlist, halved."""
    mag = config.sublattice.magnetic_atoms()
    i, j, d = neighbor_list("ijd", mag, max(distances) + tol)
    sig = config.pattern
    return np.array([0.5 * np.sum(sig[i] * sig[j] * (np.abs(d - dn) < tol)) for dn in distances])


@pytest.mark.parametrize("builder", [cri3_monolayer, vps3_monolayer])
def test_textbook_coefficients(builder):
    sub = find_magnetic_sites(builder())
    for config in standard_configurations(sub):
        counts = bond_counts(config, sub)
        assert counts["per_site"] == pytest.approx(TEXTBOOK[config.name], abs=1e-12), config.name
        assert counts["per_cell"] == pytest.approx(brute_force_counts(config, counts["distances"]), abs=1e-12)
        assert config.n_sites == (2 if config.name in ("FM", "Neel") else 4)
        assert config.magnetisation == (1.0 if config.name == "FM" else 0.0)


def test_larger_supercells_give_the_same_per_site_counts():
    sub = find_magnetic_sites(cri3_monolayer())
    for name in TEXTBOOK:
        for sc in [(2, 2, 1), (4, 2, 1)]:
            config = honeycomb_configuration(sub, name, supercell=sc)  # both commensurate with all four orders
            assert bond_counts(config, sub)["per_site"] == pytest.approx(TEXTBOOK[name], abs=1e-12)


def test_rectangular_supercell_is_orthogonal_and_doubled():
    atoms = cri3_monolayer()
    P = rectangular_supercell(atoms)
    cell = P @ atoms.cell.array
    assert abs(np.dot(cell[0], cell[1])) < 1e-9
    assert round(abs(np.linalg.det(P))) == 2


def test_initial_moments_follow_the_pattern():
    config = honeycomb_configuration(cri3_monolayer(), "zigzag")
    m = config.atoms.get_initial_magnetic_moments()
    assert np.allclose(m[config.sublattice.indices], 3.0 * config.pattern)  # g S = 3 mu_B for Cr3+
    ligands = np.setdiff1d(np.arange(len(config.atoms)), config.sublattice.indices)
    assert np.allclose(m[ligands], 0.0)


def test_arbitrary_pattern_matches_brute_force():
    sub = find_magnetic_sites(vps3_monolayer())
    rng = np.random.default_rng(3)
    pattern = rng.choice([-1, 1], size=2 * 9)
    config = configuration_from_pattern(sub, (3, 3, 1), pattern)
    counts = bond_counts(config, sub)
    assert counts["per_cell"] == pytest.approx(brute_force_counts(config, counts["distances"]), abs=1e-12)
    with pytest.raises(ConfigurationError):
        configuration_from_pattern(sub, (3, 3, 1), pattern[:-1])
    with pytest.raises(ConfigurationError):
        configuration_from_pattern(sub, (3, 3, 1), np.zeros(18))


def test_incompatible_configurations_are_refused():
    sub = find_magnetic_sites(cri3_monolayer())
    # zigzag/stripy need the rectangular cell: the 2-site primitive cell cannot hold them
    for name in ("zigzag", "stripy"):
        with pytest.raises(ConfigurationError, match="incompatible"):
            honeycomb_configuration(sub, name, supercell=(1, 1, 1))
    # Néel on a triangular lattice is frustrated
    tri = Atoms("Fe", positions=[[0, 0, 5]], cell=[[3, 0, 0], [-1.5, 3 * np.sqrt(3) / 2, 0], [0, 0, 15]], pbc=True)
    with pytest.raises(ConfigurationError):
        honeycomb_configuration(tri, "Neel", supercell=(2, 2, 1), spins={"Fe": 2.5})
    with pytest.raises(ConfigurationError, match="unknown configuration"):
        honeycomb_configuration(sub, "spiral")


def test_vacancy_supercell():
    sub = find_magnetic_sites(vps3_monolayer())
    vac = vacancy_supercell(sub, supercell=(3, 3, 1), fraction=0.12, seed=1)
    assert vac.n_sites == 18 - 2 and len(vac.vacancies) == 2  # round(0.12 * 18) = 2
    assert vac.atoms.get_chemical_formula() == "P18S54V16"
    again = vacancy_supercell(sub, supercell=(3, 3, 1), fraction=0.12, seed=1)
    assert again.vacancies == vac.vacancies  # reproducible
    counts = bond_counts(vac, sub)
    assert counts["per_cell"] == pytest.approx(brute_force_counts(vac, counts["distances"]), abs=1e-12)
    # each vacancy in the Neel state removes its 3 antiparallel J1 bonds (if the two vacancies are not neighbours)
    listed = vacancy_supercell(sub, supercell=(3, 3, 1), sites=[0, 9])
    full = bond_counts(honeycomb_configuration(sub, "Neel", supercell=(3, 3, 1)), sub)["per_cell"]
    assert bond_counts(listed, sub)["per_cell"][0] == pytest.approx(full[0] + 6)
    for bad in [dict(fraction=0.0), dict(fraction=0.01), dict(sites=[0, 0]), dict(sites=[99]), dict()]:
        with pytest.raises(ConfigurationError):
            vacancy_supercell(sub, supercell=(3, 3, 1), **bad)
