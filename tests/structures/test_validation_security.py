"""Structure files are user data (issue 16, items 8 and 9): they may not name code, and what no magnet looks like
(NaN or degenerate cells, overlapping atoms, FIFOs and devices) is refused with one line before any library sees it.

Cases that crash or hang the unfixed reader (a NaN cell segfaults spglib, a 0.001 Å cell hangs the neighbour list,
a FIFO blocks the read) run in a subprocess with a timeout so that they fail instead of taking the session down.
"""

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import ase.io
import numpy as np
import pytest
from ase import Atoms

from wannmag.errors import StructureError
from wannmag.structures import cri3_monolayer, find_magnetic_sites, read_structure
from wannmag.structures.io import MAX_CELL_LENGTH, MIN_DISTANCE, validate_structure

DATA = Path(__file__).resolve().parents[2] / "data" / "structures"
CIF = DATA / "CrI3_monolayer.cif"


def wannmag(*args, timeout=120):
    """`wannmag ARGS` in a fresh interpreter (so that a crash or a hang cannot take the test session down)."""
    try:
        return subprocess.run([sys.executable, "-m", "wannmag.cli", *map(str, args)], capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.fail(f"wannmag {' '.join(map(str, args))} did not finish within {timeout} s (hang)")


def assert_one_error_line(res, *expect):
    assert res.returncode == 2, (res.returncode, res.stderr[-2000:])
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wannmag: error:"), res.stderr[-2000:]
    for e in expect:
        assert e in lines[0], lines[0]
    return lines[0]


def _zen_structure_dict():
    from pymatgen.core import Structure

    d = Structure.from_file(str(CIF)).as_dict()
    d["sites"][0]["properties"]["magmom"] = {"@module": "this", "@callable": "s"}  # import this → prints the Zen
    return d


@pytest.mark.parametrize("name", ["zen.json", "zen.yaml", "zen.json.gz", "zen.cif"])
def test_structure_file_naming_code_is_refused_and_nothing_is_imported(tmp_path, name):
    text = json.dumps(_zen_structure_dict())
    path = tmp_path / name
    path.write_bytes(gzip.compress(text.encode()) if name.endswith(".gz") else text.encode())
    res = wannmag("structure", path)
    assert "Zen of Python" not in res.stdout + res.stderr  # the module 'this' was never imported
    assert_one_error_line(res, str(path), "@module")


def test_code_anywhere_in_the_json_is_refused_before_decoding(tmp_path):
    d = _zen_structure_dict()
    del d["sites"][0]["properties"]["magmom"]
    d["lattice"]["@module"], d["lattice"]["@class"] = "os", "system"  # nested, not a site property
    path = tmp_path / "s.json"
    path.write_text(json.dumps(d))
    with pytest.raises(StructureError, match="names Python code"):
        read_structure(path)
    d = _zen_structure_dict()
    d["@module"] = "this"  # the top-level header may only name pymatgen's Structure
    path.write_text(json.dumps(d))
    with pytest.raises(StructureError, match="names Python code"):
        read_structure(path)


def test_pymatgen_and_ase_json_structures_still_read(tmp_path):
    from pymatgen.core import Structure

    s = Structure.from_file(str(CIF))
    s.add_site_property("magmom", [3.0] * len(s))
    ref = read_structure(CIF)
    for name in ("pmg.json", "pmg.yaml"):
        s.to(filename=str(tmp_path / name))
        got = read_structure(tmp_path / name)
        assert got.get_chemical_formula() == ref.get_chemical_formula()
        assert np.allclose(got.cell.cellpar(), ref.cell.cellpar())
    ase.io.write(tmp_path / "ase.json", ref)
    assert np.allclose(read_structure(tmp_path / "ase.json").positions, ref.positions)


def _cif_with(tmp_path, old, new, name="bad.cif"):
    text = CIF.read_text()
    assert old in text
    path = tmp_path / name
    path.write_text(text.replace(old, new))
    return path


def test_nan_cell_is_refused_instead_of_crashing(tmp_path):
    # today: pymatgen's bond-valence code hands the NaN cell to spglib, which segfaults
    path = _cif_with(tmp_path, "_cell_length_a   7.00000000", "_cell_length_a   nan")
    assert_one_error_line(wannmag("structure", path, timeout=60), str(path), "_cell_length_a = nan")


def test_tiny_cell_is_refused_instead_of_hanging(tmp_path):
    # today: ase's neighbour list of a 0.001 Å cell never ends
    path = _cif_with(tmp_path, "_cell_length_a   7.00000000", "_cell_length_a   0.001")
    assert_one_error_line(wannmag("structure", path, timeout=60), str(path), "thick")


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_non_regular_files_are_refused_before_opening(tmp_path, kind):
    if kind == "fifo":
        path = tmp_path / "pipe.cif"
        os.mkfifo(path)
    else:
        path = Path("/dev/zero")
    res = wannmag("structure", path, timeout=60)
    assert_one_error_line(res, str(path), "FIFO" if kind == "fifo" else "device")


@pytest.mark.parametrize("old, new, expect", [
    ("_cell_length_c   18.21006750", "_cell_length_c   inf", "_cell_length_c = inf"),
    ("_cell_length_c   18.21006750", "_cell_length_c   5000", "(0, 1000] Å"),
    ("_cell_angle_gamma   120.00000000", "_cell_angle_gamma   179.99", "thick"),
    ("Cr  Cr0  2  0.33333333  0.66666667  0.50000000  1", "Cr  Cr0  2  0.02  0.37  0.59  1", "apart"),
    # what the readers silently turn into another cell: a = -7 Å gives gamma = 60°, alpha = 1e308° gives 103.8°
    ("_cell_length_a   7.00000000", "_cell_length_a   -7", "_cell_length_a = -7"),
    ("_cell_angle_alpha   90.00000000", "_cell_angle_alpha   1e308", "strictly between 0° and 180°"),
    ("_cell_angle_gamma   120.00000000", "_cell_angle_gamma   480", "strictly between 0° and 180°"),
])
def test_insane_cells_are_refused_with_one_line(tmp_path, old, new, expect):
    path = _cif_with(tmp_path, old, new)
    with pytest.raises(StructureError) as e:
        read_structure(path)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg and expect in msg


def test_validation_limits_on_atoms_objects(tmp_path):
    good = cri3_monolayer()
    assert validate_structure(good) is good
    too_close = good.copy()
    too_close.positions[1] = too_close.positions[0] + [0.3, 0, 0]
    with pytest.raises(StructureError, match=f"closer than {MIN_DISTANCE:g}"):
        read_structure(too_close)
    far = good.copy()
    far.positions[0] += 1e6 * far.cell[0]
    with pytest.raises(StructureError, match="cells away"):
        read_structure(far)
    dummy = Atoms("XCr", positions=[[0, 0, 0], [2, 2, 2]], cell=np.eye(3) * 5, pbc=True)
    with pytest.raises(StructureError, match="not a chemical element"):
        read_structure(dummy)
    long = Atoms("Cr", cell=np.diag([5, 5, 2 * MAX_CELL_LENGTH]), pbc=True)
    with pytest.raises(StructureError, match="long"):
        read_structure(long)
    nan = good.copy()
    nan.positions[3, 2] = np.nan
    with pytest.raises(StructureError, match="atom 3 holds NaN"):
        read_structure(nan)
    nan = good.copy()
    nan.cell[0, 0] = np.nan
    with pytest.raises(StructureError, match="cell holds NaN"):
        read_structure(nan)
    poscar = tmp_path / "POSCAR"  # no CIF cell parameters: a NaN lattice vector
    ase.io.write(poscar, good, format="vasp")
    rows = poscar.read_text().splitlines()
    rows[2] = "  nan 0.0 0.0"
    poscar.write_text("\n".join(rows) + "\n")
    with pytest.raises(StructureError, match="NaN"):
        read_structure(poscar)


@pytest.mark.parametrize("spins, expect", [({"Cr": float("nan")}, "positive multiple"),
                                           ({"Cr": float("inf")}, "positive multiple"),
                                           ({"Cr": 0.0}, "positive multiple"), ({"Cr": -1.5}, "positive multiple"),
                                           ({"Cr": 1e308}, "positive multiple"), ({"Fe": 2.0}, "not in the structure")])
def test_spin_overrides_are_checked(spins, expect):
    with pytest.raises(StructureError, match=expect):
        find_magnetic_sites(cri3_monolayer(), spins=spins)
    assert find_magnetic_sites(cri3_monolayer(), spins={"Cr": 2.0}).spins.tolist() == [2.0, 2.0]


def test_impossible_oxidation_override_is_an_error():
    with pytest.raises(StructureError, match="impossible"):
        find_magnetic_sites(cri3_monolayer(), oxidation_states={"Cr": 99})
