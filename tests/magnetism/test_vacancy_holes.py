"""Holes next to a vacancy (issue 18): placements, start moments, the energy-mapping fit with S = 1 and S = 3/2 sites
together, hole location from moments, and bad placements."""

import itertools

import numpy as np
import pytest

from wannmag.magnetism.vacancy_holes import (HoleError, HoleFit, HolePlacement, classify_bonds, fit_with_holes,
                                             hole_placements, locate_holes, placement_from_atoms, start_moments)

# a 7-site vacancy cell of the honeycomb 2x2 supercell (geometry as make_vacancy_cell gives for VPS3)
NEAR = [0, 2, 4]
DIST = [3.38, 5.85, 3.38, 5.85, 3.38, 5.85, 6.75]


@pytest.fixture(scope="module")
def cell():
    from wannmag.workflows.vacancy import make_vacancy_cell

    return make_vacancy_cell("data/structures/VPS3_monolayer.cif")


def _energy(bonds, spins, pattern, J, E0=-123.0):
    """Direct classical energy (eV) of a collinear configuration: E0 + Σ_bonds J S_i S_j σ_i σ_j (meV → eV)."""
    s = np.asarray(pattern, float) * spins
    return E0 + sum(J[b["cls"]] * s[b["i"]] * s[b["j"]] for b in bonds) / 1000.0


def test_placements_and_start_moments(cell):
    assert cell.near_sites == NEAR
    nn = [(b["i"], b["j"]) for b in cell.bonds if b["shell"] == 1]
    pl = {p.name: p for p in hole_placements(cell.n_sites, cell.near_sites, DIST, bonds=nn)}
    assert set(pl) == {"near", "near_far", "far"}
    assert set(pl["near"].sites) <= set(NEAR) and len(pl["near"].sites) == 2
    assert 6 in pl["near_far"].sites and len(set(pl["near_far"].sites) & set(NEAR)) == 1
    assert not set(pl["far"].sites) & set(NEAR) and 6 in pl["far"].sites
    # start moments: sigma * 2S, 2 muB on the holes, 3 muB elsewhere
    pattern = [1, -1, 1, -1, 1, -1, -1]
    m = start_moments(pattern, pl["near"].spins(cell.n_sites, 1.5))
    for k in range(cell.n_sites):
        assert m[k] == pytest.approx(pattern[k] * (2.0 if k in pl["near"].sites else 3.0))
    assert HolePlacement.from_dict(pl["far"].as_dict()) == pl["far"]


def test_fit_mixed_spins_recovers_synthetic_model(cell):
    hp = HolePlacement("bonded", [0, 1])  # a bonded pair: all four nearest-neighbour classes occur
    bonds = classify_bonds(cell.bonds, hp.sites, cell.near_sites)
    classes = {b["cls"] for b in bonds}
    assert {"V2-V3", "V3-V3", "next_to_vacancy", "J2", "J3"} <= classes
    J = {"V2-V2_bulk": 26.4, "next_to_vacancy": 21.0, "V2-V3": 12.5, "V3-V3": 8.0, "J2": 0.37, "J3": 0.6}
    spins = hp.spins(cell.n_sites, 1.5)
    pats = [[1] + list(t) for t in itertools.product((1, -1), repeat=cell.n_sites - 1)]
    E = [_energy(bonds, spins, p, J) for p in pats]
    fit = fit_with_holes(bonds, hp, 1.5, pats, E, fixed={"J2": 0.37, "J3": 0.6})
    for k, v in J.items():
        assert fit.J[k] == pytest.approx(v, abs=1e-9)
    assert max(abs(r) for r in fit.residuals_meV) < 1e-8
    assert fit.E0_eV == pytest.approx(-123.0, abs=1e-12)
    # with equal spins assumed (S = 3/2 everywhere) the same energies give a different, wrong V2-V3
    wrong = fit_with_holes(bonds, HolePlacement("bonded", [0, 1], spin_hole=1.5), 1.5, pats, E,
                           fixed={"J2": 0.37, "J3": 0.6})
    assert wrong.J["V2-V3"] == pytest.approx(12.5 * 1.0 / 1.5, rel=1e-9)
    assert wrong.J["V3-V3"] == pytest.approx(8.0 * 1.0 / 2.25, rel=1e-9)
    assert HoleFit.from_dict(fit.as_dict()).as_dict() == fit.as_dict()


def test_fit_underdetermined_is_one_clear_error(cell):
    hp = HolePlacement("near", [0, 2])
    bonds = classify_bonds(cell.bonds, hp.sites, cell.near_sites)
    pats = [[1, -1, 1, -1, 1, -1, -1], [1, 1, 1, 1, 1, 1, 1]]
    with pytest.raises(HoleError, match="underdetermined.*not determined"):
        fit_with_holes(bonds, hp, 1.5, pats, [0.0, 0.1], fixed={"J2": 0.0, "J3": 0.0})
    with pytest.raises(HoleError, match="neither fitted nor fixed"):
        fit_with_holes(bonds, hp, 1.5, pats, [0.0, 0.1])


def test_placement_naming_a_non_magnetic_atom_is_refused(cell):
    from wannmag.workflows.vacancy import vacancy_configuration

    conf = vacancy_configuration("data/structures/VPS3_monolayer.cif", cell, [1] * cell.n_sites)
    mag = [int(i) for i in conf.sublattice.indices]
    symbols = conf.atoms.get_chemical_symbols()
    s_atom = symbols.index("S")
    with pytest.raises(HoleError, match=rf"atom {s_atom} \(S\) is not a magnetic ion") as e:
        placement_from_atoms([mag[0], s_atom], mag, symbols, source="holes.json")
    assert "\n" not in str(e.value) and str(e.value).startswith("holes.json:")
    ok = placement_from_atoms([mag[2], mag[0]], mag, symbols)
    assert ok.sites == [0, 2]
    with pytest.raises(HoleError, match="not a magnetic site"):
        hole_placements(cell.n_sites, [0, 9], DIST)


def test_locate_holes_from_moments():
    m = [2.48, -2.47, 1.85, -2.50, 1.80, -2.49, -2.51]
    r = locate_holes(m, n_holes=2)
    assert r["localised"] and r["sites"] == [2, 4]
    smeared = [2.30, -2.31, 2.28, -2.33, 2.29, -2.30, -2.32]
    r = locate_holes(smeared, n_holes=2)
    assert not r["localised"] and "no clear split" in r["reason"]
