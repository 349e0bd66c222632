"""Magnetic sublattice, neighbour shells and superexchange paths."""

import numpy as np
import pytest
from ase import Atoms
from ase.neighborlist import neighbor_list

from wannmag.structures import (analyse_structure, canonical_bond, cri3_monolayer, find_magnetic_sites,
                                neighbour_shells, spin_of_ion, vps3_monolayer)


@pytest.mark.parametrize("ion, ox, S", [("Cr", 3, 1.5), ("V", 2, 1.5), ("Mn", 2, 2.5), ("Fe", 2, 2.0),
                                        ("Ni", 2, 1.0), ("Co", 2, 1.5), ("Cu", 2, 0.5), ("Fe", 3, 2.5),
                                        ("V", 3, 1.0), ("Co", 3, 0.0), ("Ru", 3, 0.5), ("Ir", 4, 0.5),
                                        ("Zn", 2, 0.0), ("Gd", 3, 3.5)])
def test_spin_table(ion, ox, S):
    assert spin_of_ion(ion, ox) == S


def test_magnetic_sites_and_overrides():
    sub = find_magnetic_sites(vps3_monolayer())
    assert sub.elements == ["V", "V"]
    assert sub.oxidation_states["V"] == 2 and sub.oxidation_states["P"] == 4  # [P2S6]4- unit
    assert sub.spins.tolist() == [1.5, 1.5]
    assert sub.two_dimensional
    assert find_magnetic_sites(vps3_monolayer(), spins={"V": 1.0}).spins.tolist() == [1.0, 1.0]
    assert find_magnetic_sites(vps3_monolayer(), oxidation_states={"V": 3}).spins.tolist() == [1.0, 1.0]


@pytest.mark.parametrize("builder, d1, angle_range, ligand", [
    (cri3_monolayer, (3.955, 4.045), (90.0, 97.0), "I"),  # issue: "≈ 3.96–4.04 Å"; a/√3 = 4.0415 for a = 7.0
    (vps3_monolayer, (3.30, 3.45), (80.0, 97.0), "S"),
])
def test_honeycomb_shells_and_paths(builder, d1, angle_range, ligand):
    report = analyse_structure(builder(), n_shells=3)
    s1, s2, s3 = report.shells
    a = np.linalg.norm(report.sublattice.atoms.cell[0])
    # honeycomb: 1NN a/sqrt3 (x3), 2NN a (x6), 3NN 2a/sqrt3 (x3)
    assert d1[0] <= s1.distance <= d1[1]
    assert (s1.multiplicity, s2.multiplicity, s3.multiplicity) == (3.0, 6.0, 3.0)
    assert s2.distance == pytest.approx(a, abs=1e-6) and s3.distance == pytest.approx(2 * a / np.sqrt(3), abs=1e-6)
    # every bond once: bonds per cell = multiplicity * n_sites / 2
    assert [len(s.bonds) for s in report.shells] == [3, 6, 3]
    for p in report.paths:
        if p.shell == 1:
            assert p.sharing == "edge-sharing" and len(p.bridges) == 2
            for b in p.bridges:
                assert b.ligand.element == ligand
                assert angle_range[0] <= b.angle <= angle_range[1]
                assert b.d_ix == pytest.approx(b.d_jx, abs=1e-6)
        else:
            assert not p.bridges and p.long_paths  # no common ligand: M-X-X-M paths instead
            for lp in p.long_paths:
                assert lp.ligand_i != lp.ligand_j
                assert lp.d_ix + lp.d_xx + lp.d_jx >= p.bond.distance - 1e-9  # triangle inequality


def test_bridge_angle_matches_law_of_cosines():
    report = analyse_structure(cri3_monolayer())
    p = next(p for p in report.paths if p.shell == 1)
    b = p.bridges[0]
    d = p.bond.distance
    expected = np.degrees(np.arccos((b.d_ix**2 + b.d_jx**2 - d**2) / (2 * b.d_ix * b.d_jx)))
    assert b.angle == pytest.approx(expected, abs=1e-6)


def test_bonds_are_canonical_and_vectors_consistent():
    sub = find_magnetic_sites(cri3_monolayer())
    cell = sub.atoms.cell.array
    keys = set()
    for sh in neighbour_shells(sub, n_shells=4):
        for b in sh.bonds:
            assert (b.i, b.j, b.R) == canonical_bond(b.i, b.j, b.R)
            assert canonical_bond(b.j, b.i, tuple(-x for x in b.R)) == (b.i, b.j, b.R)
            vec = sub.positions[b.j] + np.array(b.R) @ cell - sub.positions[b.i]
            assert np.allclose(vec, b.vector) and np.linalg.norm(vec) == pytest.approx(sh.distance, abs=0.05)
            assert b.R[2] == 0  # slab: no bond across the vacuum
            keys.add((b.i, b.j, b.R))
    assert len(keys) == sum(len(sh.bonds) for sh in neighbour_shells(sub, n_shells=4))


def test_shell_coordination_agrees_with_ase_neighbour_count():
    sub = find_magnetic_sites(vps3_monolayer())
    shells = neighbour_shells(sub, n_shells=3)
    mag = sub.magnetic_atoms()
    i, d = neighbor_list("id", mag, shells[-1].distance + 0.01)
    for sh in shells:
        counts = np.bincount(i[np.abs(d - sh.distance) < 0.05], minlength=sub.n_sites)
        assert counts.tolist() == sh.coordination.tolist()


def test_corner_sharing_perovskite_180_degrees():
    # cubic KNiF3: NiF6 octahedra share corners, Ni-F-Ni = 180 degrees
    a = 4.01
    atoms = Atoms("KNiF3", scaled_positions=[[0.5, 0.5, 0.5], [0, 0, 0], [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5]],
                  cell=np.eye(3) * a, pbc=True)
    report = analyse_structure(atoms, n_shells=2)
    assert report.sublattice.two_dimensional is False
    assert report.shells[0].multiplicity == 6 and report.shells[0].distance == pytest.approx(a)
    p = next(p for p in report.paths if p.shell == 1)
    assert p.sharing == "corner-sharing"
    assert p.bridges[0].angle == pytest.approx(180.0, abs=1e-6)
    assert report.sublattice.spins.tolist() == [1.0]  # Ni2+ d8


def test_json_has_documented_keys():
    d = analyse_structure(cri3_monolayer()).as_dict()
    assert {"magnetic_sites", "shells", "paths"} <= set(d)
    assert {"distance", "multiplicity", "bonds"} <= set(d["shells"][0])
    assert {"bridging_ligands", "angles", "sharing"} <= set(d["paths"][0])
