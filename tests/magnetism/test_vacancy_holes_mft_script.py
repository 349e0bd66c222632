"""data/mc/vacancy_holes_mft.py (issue 18 item 3, force theorem on the doped cell): the pieces that do not need
GPAW — the bond classes of the 2×2 vacancy cell with its holes, the per-class table of the force-theorem J, the
common gap of a fixed-moment calculation (two Fermi levels) and the look-up of the energy-mapping fit and of the
fit's own SCF record of the reference configuration.  Convention: H = Σ_{i<j} S_i·J_ij·S_j, J > 0 AF, meV."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("vacancy_holes_mft", ROOT / "data" / "mc" / "vacancy_holes_mft.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def cell_and_holes(script):
    from wannmag.magnetism.vacancy import hole_placements_of, make_vacancy_cell

    cell = make_vacancy_cell(str(script.STRUCTURE))
    hp = {p.name: p for p in hole_placements_of(str(script.STRUCTURE), cell)}["near"]
    return cell, hp


def test_class_table_of_the_vacancy_cell(script, cell_and_holes):
    cell, hp = cell_and_holes
    bonds = [b for b in cell.bonds if b["shell"] <= 3]
    # J = 10 * shell + 100 * (number of hole ends of a first-shell bond): each class gets a known value
    holes = set(hp.sites)
    J = [10.0 * b["shell"] + (100.0 * ((b["i"] in holes) + (b["j"] in holes)) if b["shell"] == 1 else 0.0)
         for b in bonds]
    t = script.class_table(bonds, J, hp.sites, cell.near_sites)
    assert list(t) == ["V2-V2_bulk", "next_to_vacancy", "V2-V3", "J2", "J3"]   # no V3-V3 bond in this cell
    # 9 first-neighbour bonds: 12 of the perfect 2x2 cell minus the vacancy's 3; the holes (sites 0, 2) are two of
    # the vacancy's three neighbours, so 4 bonds join a hole to a V2+, 2 more touch the third neighbour
    assert {c: t[c]["n"] for c in t} == {"V2-V2_bulk": 3, "next_to_vacancy": 2, "V2-V3": 4, "J2": 18, "J3": 9}
    assert t["V2-V3"]["mean_meV"] == 110.0 and t["V2-V2_bulk"]["min_meV"] == t["V2-V2_bulk"]["max_meV"] == 10.0
    assert t["J3"]["mean_meV"] == 30.0
    with pytest.raises(Exception):
        script.class_table(bonds, J[:-1], hp.sites, cell.near_sites)


class _FakeCalc:
    """Two spin channels, two k-points (weights 1/4, 3/4), occupations as GPAW gives them (times the weight)."""

    def __init__(self, e_up, e_dn, n_up, n_dn):
        self.e = [np.array(e_up, float), np.array(e_dn, float)]
        self.n = [n_up, n_dn]

    def get_k_point_weights(self):
        return np.array([0.25, 0.75])

    def get_number_of_spins(self):
        return 2

    def get_eigenvalues(self, kpt, spin):
        return self.e[spin] + 0.01 * kpt

    def get_occupation_numbers(self, kpt, spin):
        f = np.zeros(len(self.e[spin]))
        f[: self.n[spin]] = 1.0
        return f * self.get_k_point_weights()[kpt]


def test_common_gap_of_two_fermi_levels(script):
    calc = _FakeCalc([-3.0, -1.0, 1.0], [-2.0, 0.2, 0.5], 2, 1)   # occupied up to -0.99 (up), -1.99 (dn)
    mid, gap = script.common_gap_middle(calc)
    assert gap["highest_occupied_eV"] == pytest.approx(-0.99) and gap["lowest_empty_eV"] == pytest.approx(0.2)
    assert mid == pytest.approx(0.5 * (-0.99 + 0.2)) and gap["common_gap_eV"] == pytest.approx(1.19)
    with pytest.raises(Exception, match="overlap"):
        script.common_gap_middle(_FakeCalc([-3.0, 0.5, 1.0], [-2.0, 0.2, 0.5], 2, 1))


def test_stored_fit_and_reference_record(script):
    rec = script.dft_record("vac_udududu_h-near", 3.0, 0.05)
    assert rec is not None and rec["energy_eV"] == pytest.approx(-197.708793, abs=1e-6)
    assert rec["fixmagmom"] and len(rec["V_moments"]) == 7
    fit = script.fit_of(3.0, "near", 0.1)
    assert fit is not None and fit["key"].startswith("U3/near/w0.1/")
    assert set(fit["J_meV"]) >= {"V2-V2_bulk", "next_to_vacancy", "V2-V3"}
    assert script.fit_of(3.0, "near", 0.3) is None
