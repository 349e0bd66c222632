"""``wannmag relax`` (issue 21 item 1): the generic resumable relaxation on ASE's EMT (exact minimum: the perfect fcc
lattice), the in-plane cell mask, the GPAW path of the package's DFT driver with a harmonic fake calculator of known
minimum, the unconverged flag, resume after an interruption, the result's round trip and the CLI's one-line errors."""

import json
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.emt import EMT

from wannmag.workflows.relax import RelaxResult, geometry_summary, read_checkpoint, relax_atoms, relax_structure

REPO = Path(__file__).resolve().parents[2]
CIF = REPO / "data" / "structures" / "CrI3_monolayer.cif"
A_CU = 3.6  # Å, cubic fcc cell; EMT's own minimum differs slightly: only the distances' equality is exact


def rattled_cu(seed=3):
    atoms = bulk("Cu", "fcc", a=A_CU, cubic=True)  # 4 atoms
    atoms.rattle(0.08, seed=seed)
    return atoms


def nn_distances(atoms):
    from ase.neighborlist import neighbor_list

    d = neighbor_list("d", atoms, 0.85 * A_CU)
    return np.sort(d)


def test_emt_relaxation_reaches_the_tolerance_and_the_perfect_lattice(tmp_path):
    atoms = rattled_cu()
    f0 = np.sqrt((_forces(atoms) ** 2).sum(axis=1)).max()
    out = relax_atoms(atoms, EMT(), tmp_path / "r", fmax=0.01, max_steps=100, log=None)
    assert out["converged"] and out["steps"] > 0
    fresh = out["atoms"].copy()
    fresh.calc = EMT()
    fmax_fresh = np.sqrt((fresh.get_forces() ** 2).sum(axis=1)).max()  # independent evaluation at the final geometry
    assert fmax_fresh < 0.01 < f0 and out["max_force"] == pytest.approx(fmax_fresh, abs=1e-10)
    assert out["energy_eV"] < out["energy_initial_eV"]
    # exact: a fixed cubic cell relaxes back to the perfect fcc arrangement, all 12 neighbours at a/sqrt(2)
    d = nn_distances(out["atoms"])
    assert len(d) == 48 and np.allclose(d, A_CU / np.sqrt(2), atol=5e-3)
    assert atoms.positions.tolist() != out["atoms"].positions.tolist()  # the input is not changed in place
    assert not (tmp_path / "r" / "relaxed.cif").exists()  # the generic part writes no structure file


def _forces(atoms):
    a = atoms.copy()
    a.calc = EMT()
    return a.get_forces()


def test_in_plane_cell_relaxation_keeps_c_and_the_normal(tmp_path):
    atoms = bulk("Cu", "fcc", a=A_CU, cubic=True)
    atoms.set_cell(np.diag([1.03 * A_CU, 1.03 * A_CU, A_CU]), scale_atoms=True)  # 3 % in-plane tension
    c0 = atoms.cell.array[2].copy()
    out = relax_atoms(atoms, EMT(), tmp_path / "cell", fmax=0.005, max_steps=200, cell=True, log=None)
    assert out["converged"]
    cell = out["atoms"].cell.array
    assert np.array_equal(cell[2], c0)                      # c untouched
    assert np.allclose(cell[:2, 2], 0.0, atol=1e-12)        # a, b stay in the plane
    assert cell[0, 0] < 1.03 * A_CU - 0.01                  # the tension relaxed
    fresh = out["atoms"].copy()
    fresh.calc = EMT()
    s = fresh.get_stress(voigt=True)                        # xx yy zz yz xz xy (eV/Å³), independent evaluation
    n = len(fresh)
    # FrechetCellFilter's generalised force of the strain is -stress·V/N: below fmax at convergence
    assert np.abs(s[[0, 1, 5]]).max() * fresh.get_volume() / n < 0.005
    assert abs(s[2]) > 1e-3                                 # zz was not relaxed (masked)
    assert out["max_stress_GPa"] == pytest.approx(np.abs(s[[0, 1, 5]]).max() * 160.21766208, rel=1e-6)


class Interrupt(Exception):
    pass


class DyingEMT(EMT):
    """EMT that dies (like a killed job) at its ``die_at``-th evaluation."""

    def __init__(self, die_at):
        super().__init__()
        self.die_at, self.calls = die_at, 0

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        self.calls += 1
        if self.calls >= self.die_at:
            raise Interrupt("killed")
        super().calculate(atoms, properties, system_changes)


class RecordingEMT(EMT):
    def __init__(self):
        super().__init__()
        self.seen = []

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        self.seen.append(atoms.positions.copy())
        super().calculate(atoms, properties, system_changes)


def test_a_killed_relaxation_resumes_from_its_last_geometry(tmp_path):
    d = tmp_path / "resume"
    with pytest.raises(Interrupt):
        relax_atoms(rattled_cu(), DyingEMT(die_at=4), d, fmax=0.01, max_steps=100, log=None)
    ck, done = read_checkpoint(d)
    assert ck is not None and done == 2  # evaluations 1-3 finished: steps 0, 1, 2 checkpointed
    calc = RecordingEMT()
    out = relax_atoms(rattled_cu(), calc, d, fmax=0.01, max_steps=100, log=None)
    assert np.allclose(calc.seen[0], ck.positions)  # the second session starts where the first stopped
    assert out["converged"] and out["resumed_from_step"] == 2 and out["steps"] > 2 and out["sessions"] == 2
    assert np.allclose(nn_distances(out["atoms"]), A_CU / np.sqrt(2), atol=5e-3)
    # the step limit counts over both sessions
    d2 = tmp_path / "limit"
    with pytest.raises(Interrupt):
        relax_atoms(rattled_cu(), DyingEMT(die_at=4), d2, fmax=1e-4, max_steps=5, log=None)
    out2 = relax_atoms(rattled_cu(), EMT(), d2, fmax=1e-4, max_steps=5, log=None)
    assert out2["steps"] == 5 and not out2["converged"]


# ------------------------------------------------------------------------------- the GPAW path with a fake calculator
Z_SCALE = 0.94  # the fake's minimum: ligand heights above/below the metal plane scaled by this factor


class HarmonicFake(Calculator):
    """E = ½ k Σ |r − r_ref|² around a reference geometry (the start geometry with the ligand heights scaled by
    Z_SCALE about the metal plane): the relaxed geometry is known exactly."""

    implemented_properties = ["energy", "forces"]
    made = 0

    def __init__(self, params, txt):
        super().__init__()
        HarmonicFake.made += 1
        self.params_ = params
        Path(txt).write_text("fake GPAW log\n")
        pos = np.array(params["positions"], float)
        symbols = params["symbols"]
        z0 = np.mean([p[2] for p, s in zip(pos, symbols) if s == "Cr"])
        ref = pos.copy()
        ref[:, 2] = z0 + Z_SCALE * (pos[:, 2] - z0)
        self.ref = ref

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        u = atoms.positions - self.ref
        k = 2.0  # eV/Å²
        self.results = {"energy": -10.0 + 0.5 * k * float((u ** 2).sum()), "forces": -k * u}


@pytest.fixture
def harmonic_gpaw(monkeypatch):
    import wannmag.workflows.dft as dft

    HarmonicFake.made = 0
    monkeypatch.setattr(dft, "_make_calculator", lambda params, txt: HarmonicFake(params, txt))
    return HarmonicFake


def expected_after():
    from ase.io import read

    from wannmag.structures import honeycomb_configuration

    atoms = honeycomb_configuration(read(CIF), "FM").atoms.copy()
    z0 = atoms.positions[[i for i, s in enumerate(atoms.get_chemical_symbols()) if s == "Cr"], 2].mean()
    atoms.positions[:, 2] = z0 + Z_SCALE * (atoms.positions[:, 2] - z0)
    return geometry_summary(atoms)


def test_relax_structure_reaches_the_known_minimum_and_writes_its_files(tmp_path, harmonic_gpaw):
    out = tmp_path / "relax"
    res = relax_structure(str(CIF), order="FM", preset="fast", U=3.0, fmax=0.01, workdir=out, log=None)
    assert res.converged and res.max_force < 0.01 and res.relaxed_file == str(out / "relaxed.cif")
    exp = expected_after()
    b, a = res.geometry_before, res.geometry_after
    assert b["shells"][0]["d_MX_A"] == [2.78] and b["shells"][0]["MXM_deg"] == pytest.approx([93.251], abs=1e-3)
    assert a["shells"][0]["d_MX_A"] == pytest.approx(exp["shells"][0]["d_MX_A"], abs=2e-3)
    assert a["shells"][0]["MXM_deg"] == pytest.approx(exp["shells"][0]["MXM_deg"], abs=0.05)
    assert a["shells"][0]["d_MX_A"][0] < 2.78 - 0.02  # flatter octahedra: shorter Cr–I
    assert a["a_A"] == b["a_A"]  # fixed cell
    # the stored file is the relaxed geometry, and its analysis is the stored "after"
    from wannmag.structures import read_structure

    back = geometry_summary(read_structure(out / "relaxed.cif"))
    assert back["shells"][0]["d_MX_A"] == pytest.approx(a["shells"][0]["d_MX_A"], abs=1e-3)
    stored = json.loads((out / "relax.json").read_text())
    assert RelaxResult.from_dict(stored).as_dict() == stored == res.as_dict()
    assert stored["parameters"]["dft"]["U"] == {"Cr": 3.0} and stored["order"] == "FM"
    # cached: a second call makes no calculator
    made = harmonic_gpaw.made
    again = relax_structure(str(CIF), order="FM", preset="fast", U=3.0, fmax=0.01, workdir=out, log=None)
    assert harmonic_gpaw.made == made and again.as_dict() == res.as_dict()
    # another U in the same directory: refused, nothing overwritten
    from wannmag.errors import WannmagError

    with pytest.raises(WannmagError, match=r"holds a different relaxation \(differs in U\)"):
        relax_structure(str(CIF), order="FM", preset="fast", U=4.0, fmax=0.01, workdir=out, log=None)


def test_exhausted_steps_are_reported_as_unconverged_then_continued(tmp_path, harmonic_gpaw):
    out = tmp_path / "short"
    res = relax_structure(str(CIF), fmax=0.001, max_steps=1, workdir=out, log=None)
    assert not res.converged and res.relaxed_file is None and res.steps == 1
    assert "not a relaxed geometry" in res.status and res.warnings
    assert not (out / "relaxed.cif").exists() and (out / "unconverged_last.cif").exists()
    more = relax_structure(str(CIF), fmax=0.001, max_steps=200, workdir=out, log=None)
    assert more.converged and more.steps > 1 and more.sessions == 2
    assert (out / "relaxed.cif").exists() and not (out / "unconverged_last.cif").exists()


def test_result_round_trip():
    r = RelaxResult(structure="x.cif", converged=False, status="steps exhausted", fmax=0.02, max_force=0.5,
                    steps=3, geometry_before={"a_A": [7.0, 7.0], "shells": []}, U={"Cr": 3.0})
    assert RelaxResult.from_dict(r.as_dict()) == r
    assert "NOT converged" in r.table()


@pytest.mark.parametrize("argv,msg", [
    (["--cell"], "--cell needs the stress tensor"),
    (["--fmax", "-1"], "--fmax (eV/Å) must be"),
    (["--order", "spiral"], "unknown order 'spiral'"),
    (["--U", "-2"], "--U must be between 0 and 20 eV"),
])
def test_cli_bad_values_are_one_line(tmp_path, capsys, argv, msg):
    from wannmag.cli import main

    rc = main(["relax", str(CIF), "--out", str(tmp_path / "o"), *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("wannmag: error:") and msg in err[0]


def test_cli_relax_with_the_fake_calculator(tmp_path, capsys, harmonic_gpaw):
    from wannmag.cli import main

    rc = main(["relax", str(CIF), "--out", str(tmp_path / "o"), "--fmax", "0.01"])
    out = capsys.readouterr().out
    assert rc == 0 and "converged" in out and "1NN M–X–M (°)" in out and "relaxed.cif" in out
    rc = main(["relax", str(CIF), "--out", str(tmp_path / "u"), "--fmax", "0.0001", "--steps", "1"])
    assert rc == 1 and "NOT converged" in capsys.readouterr().out
