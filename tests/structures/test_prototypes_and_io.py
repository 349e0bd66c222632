"""Prototypes, shipped CIFs and the structure reader (including bad input)."""

from pathlib import Path

import ase.io
import numpy as np
import pytest
import spglib
from ase import Atoms

from wannmag.errors import StructureError
from wannmag.structures import (cri3_monolayer, find_magnetic_sites, honeycomb_mpx3, honeycomb_mx3, read_structure,
                                to_pymatgen, vps3_monolayer)

DATA = Path(__file__).resolve().parents[2] / "data" / "structures"


def spacegroup(atoms):
    cell = (atoms.cell.array, atoms.get_scaled_positions(), atoms.numbers)
    return spglib.get_spacegroup(cell, symprec=1e-3)


def sorted_fingerprint(atoms):
    """Species and positions modulo the lattice, independent of atom order and origin of the layer along z."""
    frac = np.mod(atoms.get_scaled_positions() + 1e-9, 1.0)
    return sorted((s, *np.round(f, 5)) for s, f in zip(atoms.get_chemical_symbols(), frac))


@pytest.mark.parametrize("builder, n_atoms", [(cri3_monolayer, 8), (vps3_monolayer, 10)])
def test_prototypes_have_p31m_symmetry(builder, n_atoms):
    atoms = builder()
    assert len(atoms) == n_atoms
    assert spacegroup(atoms) == "P-31m (162)"


def test_cri3_geometry_matches_defaults():
    atoms = cri3_monolayer()
    d = atoms.get_all_distances(mic=True)
    cr = [i for i, s in enumerate(atoms.get_chemical_symbols()) if s == "Cr"]
    i_ = [i for i, s in enumerate(atoms.get_chemical_symbols()) if s == "I"]
    assert d[cr[0], cr[1]] == pytest.approx(7.0 / np.sqrt(3), abs=1e-9)
    # six iodines at exactly the requested Cr-I distance around each Cr
    for c in cr:
        assert np.sort(d[c, i_])[:6] == pytest.approx([2.78] * 6, abs=1e-9)


def test_vps3_has_p2_dimer_and_ps3_units():
    atoms = vps3_monolayer()
    sym = atoms.get_chemical_symbols()
    d = atoms.get_all_distances(mic=True)
    p = [i for i, s in enumerate(sym) if s == "P"]
    s_ = [i for i, s in enumerate(sym) if s == "S"]
    assert d[p[0], p[1]] == pytest.approx(2.20, abs=1e-9)
    for ip in p:  # each P bonded to three S at a P-S bond length typical of thiophosphates (2.0-2.1 Å)
        ds = np.sort(d[ip, s_])
        assert np.all((ds[:3] > 1.95) & (ds[:3] < 2.10))
        assert ds[3] > 3.0


def test_generic_builders_other_members():
    crcl3 = honeycomb_mx3("Cr", "Cl", a=5.94, d_mx=2.35)
    mnps3 = honeycomb_mpx3("Mn", "S", a=6.08, d_mx=2.62)
    assert spacegroup(crcl3) == "P-31m (162)"
    assert find_magnetic_sites(crcl3).spins.tolist() == [1.5, 1.5]
    assert find_magnetic_sites(mnps3).spins.tolist() == [2.5, 2.5]  # Mn2+ d5
    with pytest.raises(ValueError):
        honeycomb_mx3("Cr", "I", a=7.0, d_mx=2.0)  # shorter than the in-plane distance


@pytest.mark.parametrize("name, builder", [("CrI3", cri3_monolayer), ("VPS3", vps3_monolayer)])
def test_shipped_cifs_equal_the_builders(name, builder):
    shipped = read_structure(DATA / f"{name}_monolayer.cif")
    built = builder()
    assert shipped.cell.cellpar() == pytest.approx(built.cell.cellpar(), abs=1e-5)
    assert sorted_fingerprint(shipped) == sorted_fingerprint(built)
    assert spacegroup(shipped) == "P-31m (162)"


@pytest.mark.parametrize("fmt, suffix", [("vasp", "POSCAR"), ("extxyz", "s.extxyz"), ("espresso-in", "pw.in"),
                                         ("cif", "s.cif")])
def test_reader_round_trips_common_formats(tmp_path, fmt, suffix):
    atoms = cri3_monolayer()
    path = tmp_path / suffix
    if fmt == "espresso-in":
        ase.io.write(path, atoms, format=fmt, pseudopotentials={"Cr": "Cr.upf", "I": "I.upf"})
    else:
        ase.io.write(path, atoms, format=fmt)
    back = read_structure(path)
    assert back.info["source"] == str(path)
    assert sorted_fingerprint(back) == sorted_fingerprint(atoms)


def test_reader_accepts_atoms_and_pymatgen_interchangeably():
    atoms = vps3_monolayer()
    from_atoms = read_structure(atoms)
    from_pmg = read_structure(to_pymatgen(atoms))
    assert sorted_fingerprint(from_atoms) == sorted_fingerprint(from_pmg)
    assert from_atoms is not atoms  # copied, never modified in place


def _one_line(exc):
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def test_bad_files_give_one_line_naming_the_file(tmp_path):
    missing = tmp_path / "missing.cif"
    with pytest.raises(StructureError) as e:
        read_structure(missing)
    assert str(missing) in _one_line(e) and "no such file" in str(e.value)

    empty = tmp_path / "empty.cif"
    empty.write_text("")
    with pytest.raises(StructureError) as e:
        read_structure(empty)
    assert str(empty) in _one_line(e) and "empty" in str(e.value)

    garbage = tmp_path / "garbage.cif"
    garbage.write_text("this is not a crystal\n1 2 3\n")
    with pytest.raises(StructureError) as e:
        read_structure(garbage)
    assert str(garbage) in _one_line(e)

    truncated = tmp_path / "truncated.cif"
    truncated.write_text((DATA / "CrI3_monolayer.cif").read_text()[:300])
    with pytest.raises(StructureError) as e:
        read_structure(truncated)
    assert str(truncated) in _one_line(e)

    with pytest.raises(StructureError) as e:
        read_structure(tmp_path)
    assert "directory" in _one_line(e)


def test_structure_without_magnetic_ion_is_refused(tmp_path):
    nacl = Atoms("NaCl", scaled_positions=[[0, 0, 0], [0.5, 0.5, 0.5]], cell=np.eye(3) * 4.0, pbc=True)
    path = tmp_path / "NaCl.vasp"
    ase.io.write(path, nacl, format="vasp")
    with pytest.raises(StructureError) as e:
        find_magnetic_sites(path)
    assert str(path) in _one_line(e) and "no magnetic ion" in str(e.value)
    with pytest.raises(StructureError) as e:
        find_magnetic_sites(path, magnetic=["Fe"])
    assert "Fe" in _one_line(e)
