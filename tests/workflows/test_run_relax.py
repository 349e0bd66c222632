"""The relax step of `wannmag run` (issue 21): first step when asked (default on for the accurate preset), every later
step reads the relaxed structure — also when the relax step is read back from an earlier run —, an unconverged
relaxation stops the run, and the report states the geometry before and after.  GPAW is replaced by a fake
relax_structure that moves the atoms by a known amount (the real one is tested in test_relax.py)."""

from pathlib import Path

import numpy as np
import pytest
from ase.io import read, write

import wannmag.workflows.relax as relax_mod
from wannmag.workflows.engine import StepError
from wannmag.workflows.run import WorkflowError, build_workflow

REPO = Path(__file__).resolve().parents[2]
CIF = REPO / "data" / "structures" / "CrI3_monolayer.cif"
SCALE = 1.02  # the fake "relaxation" stretches the layer in plane by 2 %


def _fake(calls, converged=True):
    def relax_structure(structure, order="FM", preset="fast", U=3.0, fmax=0.02, max_steps=200, workdir=None,
                        log=None, **kw):
        calls.append({"structure": str(structure), "order": order, "preset": preset, "fmax": fmax})
        atoms = read(structure)
        atoms.set_cell(atoms.cell[:] * np.array([[SCALE], [SCALE], [1.0]]), scale_atoms=True)
        f = Path(workdir) / ("relaxed.cif" if converged else "unconverged_last.cif")
        write(f, atoms)
        return relax_mod.RelaxResult(structure=str(structure), converged=converged,
                                     status="max force 0.01 eV/Å < 0.02 eV/Å after 3 steps" if converged else
                                     "steps exhausted (200 of 200)", fmax=fmax, max_force=0.01, steps=3,
                                     max_steps=max_steps, relaxed_file=str(f) if converged else None,
                                     last_geometry_file=None if converged else str(f),
                                     geometry_before={"M-X_A": [2.72]}, geometry_after={"M-X_A": [2.75]})
    return relax_structure


def test_relaxed_structure_flows_into_every_later_step(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(relax_mod, "relax_structure", _fake(calls))
    out = tmp_path / "run"
    plain = build_workflow(CIF, out=tmp_path / "plain", preset="fast", log=lambda m: None).run(until="structure")
    eng = build_workflow(CIF, out=out, preset="fast", relax=True, log=lambda m: None)
    assert [s.name for s in eng.steps][:2] == ["relax", "structure"]
    res = eng.run(until="structure")
    assert len(calls) == 1 and calls[0]["structure"] == str(CIF.resolve()) and calls[0]["order"] == "FM"
    assert eng.params["structure"].endswith("relaxed.cif")
    # the structure step analysed the relaxed file: the in-plane metal-metal distance grew by the fake's 2 %
    d0, d1 = plain["structure"]["table"], res["structure"]["table"]
    assert d0 != d1
    # read back from the earlier run: no new relaxation, and the later steps still get the relaxed file
    logs = []
    again = build_workflow(CIF, out=out, preset="fast", relax=True, log=logs.append)
    again.run(until="structure")
    assert len(calls) == 1 and any("relax: done earlier" in m for m in logs)
    assert again.params["structure"].endswith("relaxed.cif")
    # another tolerance is another relaxation (the structure step's fingerprint follows it)
    third = build_workflow(CIF, out=out, preset="fast", relax=True, relax_fmax=0.01, log=logs.append)
    third.run(until="structure")
    assert len(calls) == 2 and calls[1]["fmax"] == 0.01


def test_relax_defaults_and_refusals(tmp_path, monkeypatch):
    names = lambda e: [s.name for s in e.steps]  # noqa: E731
    assert "relax" in names(build_workflow(CIF, out=tmp_path / "a", preset="accurate", log=lambda m: None))
    assert "relax" not in names(build_workflow(CIF, out=tmp_path / "b", preset="fast", log=lambda m: None))
    assert "relax" not in names(build_workflow(CIF, out=tmp_path / "c", preset="accurate", relax=False,
                                               log=lambda m: None))
    d = tmp_path / "from"
    d.mkdir()
    with pytest.raises(WorkflowError, match="--relax needs DFT"):
        build_workflow(CIF, from_dir=d, out=tmp_path / "d", relax=True, log=lambda m: None)
    with pytest.raises(WorkflowError, match="force tolerance"):
        build_workflow(CIF, out=tmp_path / "e", relax=True, relax_fmax=-1, log=lambda m: None)


def test_an_unconverged_relaxation_stops_the_run(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(relax_mod, "relax_structure", _fake(calls, converged=False))
    eng = build_workflow(CIF, out=tmp_path / "run", preset="fast", relax=True, log=lambda m: None)
    with pytest.raises(StepError, match="relaxation did not converge"):
        eng.run(until="structure")
    assert eng.params["structure"] == str(CIF.resolve())
    assert not (tmp_path / "run" / "steps" / "structure.json").exists()


def test_report_geometry_section(tmp_path, monkeypatch):
    from wannmag.workflows.engine import Context
    from wannmag.workflows.run import _relax_lines

    ctx = lambda results: Context(tmp_path, {}, results, lambda m: None)  # noqa: E731
    assert "not relaxed" in " ".join(_relax_lines(ctx({})))
    calls = []
    res = _fake(calls)(CIF, workdir=tmp_path).as_dict()
    lines = "\n".join(_relax_lines(ctx({"relax": {**res, "_fingerprint": "x", "unrelaxed_structure": str(CIF)}})))
    assert "Geometry (relaxed by this run)" in lines and str(CIF) in lines and "relaxed.cif" in lines
