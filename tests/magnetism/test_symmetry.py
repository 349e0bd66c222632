"""Symmetrisation of exchange tensors by the space group of the full structure (ligands included)."""

import warnings
from pathlib import Path

import numpy as np
import pytest

from wannmag.magnetism import SpinModel
from wannmag.magnetism.io import ExchangeFileWarning, dmi_matrix, read_tb2j, tb2j_structure
from wannmag.magnetism.symmetry import (SymmetryError, bond_orbits, space_group, symmetrise,
                                        symmetry_operations)
from wannmag.structures import cri3_monolayer, find_magnetic_sites, neighbour_shells, vps3_monolayer

FIXTURE = Path(__file__).parent / "data" / "cri3_tb2j_exchange_excerpt.out"


def model_with(builder=cri3_monolayer, Js=(-2.1, -0.35, 0.12), noise=0.0, dmi=0.0, seed=0):
    rng = np.random.default_rng(seed)
    atoms = builder()
    sub = find_magnetic_sites(atoms)
    model = SpinModel.from_sublattice(sub)
    for n, (sh, J) in enumerate(zip(neighbour_shells(sub, len(Js)), Js), start=1):
        for b in sh.bonds:
            T = J * np.eye(3) + noise * rng.normal(size=(3, 3)) + dmi_matrix(dmi * rng.normal(size=3))
            model.add_bond(b.i, b.j, b.R, T, shell=n)
    return atoms, model


def by_key(model):
    return {(b.i, b.j, b.R): b for b in model.bonds}


def test_orbits_of_cri3_and_vps3():
    for builder in (cri3_monolayer, vps3_monolayer):
        atoms, model = model_with(builder)
        assert space_group(atoms) == ("P-31m", 162)
        orbits = bond_orbits(model, atoms)
        assert [o.multiplicity for o in orbits] == [3, 6, 3]
        assert [o.label for o in orbits] == ["J1", "J2", "J3"]
        a = atoms.cell.lengths()[0]
        assert [o.distance for o in orbits] == pytest.approx([a / np.sqrt(3), a, 2 * a / np.sqrt(3)])
        assert sum(o.multiplicity for o in orbits) == len(model.bonds)
        assert orbits[0].representative in orbits[0].members


def test_noisy_equivalent_bonds_become_equal():
    atoms, model = model_with(noise=0.05, seed=3)
    ops = symmetry_operations(model, atoms)
    assert len(ops) == 12
    sym = symmetrise(model, atoms)
    assert sym.meta["symmetrised"]["space_group"] == "P-31m"
    new, old = by_key(sym), by_key(model)
    for orbit in bond_orbits(model, atoms):
        iso_new = [new[k].J_iso for k in orbit.members]
        iso_old = [old[k].J_iso for k in orbit.members]
        assert np.ptp(iso_old) > 1e-3  # the noise made them different ...
        assert np.ptp(iso_new) < 1e-12  # ... symmetrisation makes them equal
        assert np.mean(iso_new) == pytest.approx(np.mean(iso_old), abs=1e-12)  # isotropic part unchanged on average
    # every tensor is the symmetry image of the others: J(g b) = R J(b) R^T (transposed for a reversed image)
    for op in ops:
        for b in sym.bonds:
            i, j, R = op.bond_image(b.i, b.j, b.R)
            img = op.tensor(b.J)
            key = (i, j, R) if (i < j or (i == j and R > (0, 0, 0))) else (j, i, tuple(-x for x in R))
            target = new[key].J if key == (i, j, R) else new[key].J.T
            assert np.allclose(target, img, atol=1e-12)
    # idempotent, and a symmetric model is left alone
    again = symmetrise(sym, atoms)
    assert all(np.allclose(b.J, by_key(again)[(b.i, b.j, b.R)].J, atol=1e-12) for b in sym.bonds)
    _, clean = model_with()
    assert all(np.allclose(b.J, by_key(symmetrise(clean, atoms))[(b.i, b.j, b.R)].J) for b in clean.bonds)


def test_dmi_vanishes_on_1nn_and_is_allowed_on_2nn():
    atoms, model = model_with(Js=(0.0, 0.0, 0.0), dmi=0.3, seed=11)
    sym = symmetrise(model, atoms)
    orbits = bond_orbits(model, atoms)
    d1 = [by_key(sym)[k].dmi for k in orbits[0].members]
    d2 = [by_key(sym)[k].dmi for k in orbits[1].members]
    # inversion centre at the 1NN midpoint (P-31m): D = 0
    assert np.allclose(d1, 0.0, atol=1e-14)
    assert np.abs([by_key(model)[k].dmi for k in orbits[0].members]).max() > 0.05  # it was not zero before
    # no inversion centre on the 2NN bond: D survives, with equal length on all 6 bonds
    norms = np.linalg.norm(d2, axis=1)
    assert norms.min() > 0.01 and np.ptp(norms) < 1e-12
    # Moriya rules for the 2NN bond in P-31m: no component perpendicular to the bond within the plane
    for k in orbits[1].members:
        b = by_key(sym)[k]
        e = sym.bond_vector(b) / np.linalg.norm(sym.bond_vector(b))
        perp = np.cross([0, 0, 1.0], e)
        assert abs(b.dmi @ perp) < 1e-12
    # the bare Cr honeycomb (no iodine) has the horizontal mirror of P6/mmm: only D_z would survive —
    # the ligands lower the symmetry and allow the in-plane component
    bare = find_magnetic_sites(atoms).magnetic_atoms()
    assert space_group(bare)[0] == "P6/mmm"
    d2_bare = np.array([by_key(symmetrise(model, bare))[k].dmi for k in orbits[1].members])
    assert np.allclose(d2_bare[:, :2], 0, atol=1e-14) and np.abs(d2_bare[:, 2]).min() > 1e-3
    assert np.abs(np.array(d2)[:, :2]).max() > 1e-3


def test_real_tb2j_cri3_dmi_is_already_nearly_symmetric():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExchangeFileWarning)
        model = read_tb2j(FIXTURE)
    atoms = tb2j_structure(FIXTURE)
    assert atoms.get_chemical_formula() == "Cr2I6"
    sym = symmetrise(model, atoms)
    for b in model.bonds:
        s = by_key(sym)[(b.i, b.j, b.R)]
        # the DFT numbers (4 printed decimals) obey the symmetry to their precision
        assert np.allclose(s.dmi, b.dmi, atol=2e-3)
        assert s.J_iso == pytest.approx(b.J_iso, abs=1e-3)
    assert max(np.linalg.norm(b.dmi) for b in sym.bonds) > 0.03  # 2NN DMI of CrI3, ~0.04 meV (internal)


def test_missing_members_are_added_and_single_ion_symmetrised():
    atoms, model = model_with(noise=0.0)
    model.bonds = [b for b in model.bonds if b.shell != 2 or b.i == 0]  # drop the three 1-1 second neighbours
    model.single_ion = [np.diag([0.0, 0.0, -0.1]), np.diag([0.01, 0.0, -0.12])]
    with pytest.warns(UserWarning, match="3 bond"):
        sym = symmetrise(model, atoms)
    assert len(sym.bonds) == 12
    assert np.allclose(sym.single_ion[0], sym.single_ion[1])  # the two Cr are equivalent (inversion)
    A = sym.single_ion[0]
    assert A[0, 0] == pytest.approx(A[1, 1]) and np.allclose(A[:2, 2], 0)  # C3 axis along z: uniaxial
    assert np.trace(A) == pytest.approx(np.mean([np.trace(x) for x in model.single_ion]))


def test_structure_and_model_must_match():
    atoms, model = model_with()
    with pytest.raises(SymmetryError, match="lattice"):
        symmetrise(model, cri3_monolayer(a=7.2))
    atoms2 = atoms.copy()
    atoms2.positions[0] += [0.5, 0, 0]  # Cr moved: the model's site is not an atom of the structure
    with pytest.raises(SymmetryError, match="not an atom"):
        symmetrise(model, atoms2)


def test_accepts_a_magnetic_sublattice():
    atoms, model = model_with(noise=0.02)
    sub = find_magnetic_sites(atoms)
    a, b = symmetrise(model, sub), symmetrise(model, atoms)
    assert all(np.allclose(x.J, y.J) for x, y in zip(a.bonds, b.bonds))
