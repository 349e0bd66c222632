"""Issue 22 item 1: the workflow Context resolves the structure once (Atoms + MagneticSublattice) and follows a change
of ``params["structure"]`` (the relax step's ``after`` hook); the steps use it instead of re-reading the file."""

import sys
from pathlib import Path

import numpy as np
import pytest

import wannmag.structures.magnetic as magnetic
from wannmag.structures import find_magnetic_sites, honeycomb_configuration, rectangular_supercell
from wannmag.workflows.engine import Context, Engine, Step

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_synthetic import energy_outputs  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CRI3 = ROOT / "data" / "structures" / "CrI3_monolayer.cif"
VPS3 = ROOT / "data" / "structures" / "VPS3_monolayer.cif"


@pytest.fixture
def file_reads(monkeypatch):
    """Paths read by find_magnetic_sites (the structure analysis every step used to redo)."""
    seen = []
    orig = magnetic.read_structure

    def counting(src, *a, **kw):
        if isinstance(src, (str, Path)):
            seen.append(str(src))
        return orig(src, *a, **kw)

    monkeypatch.setattr(magnetic, "read_structure", counting)
    return seen


def _same_sublattice(a, b):
    return (a.atoms.get_chemical_symbols() == b.atoms.get_chemical_symbols()
            and np.array_equal(a.atoms.positions, b.atoms.positions) and np.array_equal(a.atoms.cell, b.atoms.cell)
            and np.array_equal(a.indices, b.indices) and np.array_equal(a.spins, b.spins))


def test_context_resolves_the_structure_once_and_follows_a_new_path(tmp_path, file_reads):
    ctx = Context(tmp_path, {"structure": str(CRI3)}, {}, lambda m: None)
    sub = ctx.sublattice
    assert ctx.sublattice is sub and ctx.atoms is sub.atoms and file_reads == [str(CRI3)]
    assert _same_sublattice(sub, find_magnetic_sites(CRI3)) and sub.atoms.get_chemical_formula() == "Cr2I6"
    ctx.params["structure"] = str(VPS3)  # what the relax step's after hook does
    assert ctx.sublattice.atoms.get_chemical_formula() == "P2S6V2" and file_reads[-1] == str(VPS3)


def test_engine_steps_see_the_structure_an_after_hook_set(tmp_path, file_reads):
    """A relax-like first step points params["structure"] at another file (computed and when read back from an
    earlier run): every later step sees that file's sublattice, read once."""
    def relax(ctx):
        return {"relaxed_file": str(VPS3)}

    def use(ctx):
        return {"formula": ctx.atoms.get_chemical_formula(), "n": int(ctx.sublattice.n_sites),
                "same": ctx.sublattice is ctx.sublattice}

    def follow(ctx, res):
        ctx.params["structure"] = res["relaxed_file"]

    steps = [Step("relax", relax, after=follow), Step("a", use, ("relax",)), Step("b", use, ("a",), params={"k": 1})]
    res = Engine(tmp_path / "run", steps, params={"structure": str(CRI3)}, log=lambda m: None).run()
    assert res["a"]["formula"] == res["b"]["formula"] == "P2S6V2" and res["a"]["same"]
    assert file_reads == [str(VPS3)]
    steps[2].params = {"k": 2}  # b recomputed, relax read back from disk: its hook still moves the structure
    res = Engine(tmp_path / "run", steps, params={"structure": str(CRI3)}, log=lambda m: None).run()
    assert res["b"]["formula"] == "P2S6V2" and file_reads == [str(VPS3)] * 2


def test_structure_functions_give_the_same_answers_from_the_sublattice():
    """What the steps now pass (the Context's sublattice) gives what the path gave."""
    from wannmag.magnetism.anisotropy.collinear import soc_directions

    sub = find_magnetic_sites(CRI3)
    assert soc_directions(sub) == soc_directions(str(CRI3))
    for name in ("FM", "Neel", "zigzag", "stripy"):
        a = honeycomb_configuration(sub, name, supercell=rectangular_supercell(sub.atoms))
        b = honeycomb_configuration(str(CRI3), name, supercell=rectangular_supercell(find_magnetic_sites(CRI3).atoms))
        assert np.array_equal(a.pattern, b.pattern) and np.array_equal(a.atoms.positions, b.atoms.positions)
        assert np.array_equal(a.atoms.get_initial_magnetic_moments(), b.atoms.get_initial_magnetic_moments())
    assert _same_sublattice(sub, find_magnetic_sites(CRI3))  # not modified by the calls above


def test_run_from_a_directory_reads_the_structure_once(tmp_path, file_reads):
    """structure → dft (--from DIR: four configurations) → mapping: one read of the structure file, where the steps
    made six before (analyse_structure 1, _read_energies 4, mapping 1; measured 2026-12-04)."""
    from wannmag.workflows.run import build_workflow

    d = energy_outputs(tmp_path / "outputs", (-2.0, -0.3, 0.1), ROOT)
    eng = build_workflow(from_dir=d, out=tmp_path / "run", log=lambda m: None)
    file_reads.clear()  # build_workflow's content fingerprint reads through read_structure directly, not counted
    res = eng.run(until="mapping")
    assert res["mapping"]["J_meV"] == pytest.approx([-2.0, -0.3, 0.1], abs=1e-4)
    assert len(file_reads) == 1
