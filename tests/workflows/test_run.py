"""`wannmag run --from DIR` on a directory of synthetic VASP outputs and Wannier90 files (no DFT engine needed)."""

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_synthetic import energy_outputs  # noqa: E402

from wannmag.structures import cri3_monolayer  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
J_TRUE = (-2.0, -0.3, 0.1)  # meV, internal convention (S = 3/2)


@pytest.fixture(scope="module")
def from_dir(tmp_path_factory):
    from wannmag.tightbinding import slater_koster_model, write_w90_model

    d = energy_outputs(tmp_path_factory.mktemp("cluster_outputs"), J_TRUE, REPO)
    w = d / "wannier"
    w.mkdir()
    p = dict(pds=-0.6, pdp=0.3, dds=-0.05, ddp=0.025, pps=0.25, ppp=-0.075)
    kw = dict(d_atoms=["Cr"], p_atoms=["I"], params=p, eps_p=-2.5, crystal_field=(-0.3, 0.6))
    for ch, eps in (("up", -1.5), ("dn", 1.5), ("nm", 0.0)):
        spin = {"up": "up", "dn": "down", "nm": None}[ch]
        write_w90_model(slater_koster_model(cri3_monolayer(), eps_d=eps, spin=spin, **kw), w / f"CrI3_{ch}",
                        mp_grid=(6, 6, 1))
    return d


FAST = {"mc_sizes": [4, 6, 8], "mc_sweeps": 1500, "mc_therm": 500, "mc_replicas": 8, "kmesh_mft": [6, 6, 1]}


def test_run_from_directory_gives_a_report_and_resumes(from_dir, tmp_path):
    from wannmag.workflows.run import build_workflow

    out = tmp_path / "run"
    logs = []
    res = build_workflow(from_dir=from_dir, out=out, settings=FAST, log=logs.append).run()
    # energy mapping recovers the J's that generated the VASP energies
    assert res["mapping"]["J_meV"] == pytest.approx(J_TRUE, abs=1e-4)
    assert res["mapping"]["ground_state"] == "FM"
    assert res["mapping"]["E_minus_EFM_meV_per_ion"]["Neel"] > 0
    # the force theorem on the Wannier pair gives a ferromagnetic J1 (synthetic Slater-Koster model)
    assert res["mft"]["shells"][0]["J"] < 0
    assert res["superexchange"]["J1_meV"] is not None and "channels_meV" in res["superexchange"]
    # only dipolar anisotropy here (no spin-orbit from a directory of energies): FM prefers in-plane moments
    assert res["anisotropy"]["dipolar_meV"] < 0 and res["anisotropy"]["soc_meV"] is None
    # easy-plane 2D Heisenberg: Mermin-Wagner flag instead of a bare number
    assert res["mc"]["mermin_wagner"] and res["mc"]["warning"]
    assert res["mc"]["tc_K"] == res["mc"]["result"].get("tc_K")
    md = (out / "report.md").read_text()
    assert "energy mapping" in md and "force theorem" in md and ("Mermin" in md or "continuous" in md)
    summary = md.split("## Summary")[1].split("## ")[0]
    assert "Ground state: **FM**" in summary and "Easy axis: **in plane**" in summary
    assert "Curie temperature: **none**" in summary  # easy-plane 2D model: no number pretending to be Tc
    page = (out / "report.html").read_text()
    assert "data:image/png;base64," in page  # self-contained
    # second run: everything is skipped, nothing recomputed, same report
    logs.clear()
    again = build_workflow(from_dir=from_dir, out=out, settings=FAST, log=logs.append).run()
    assert all("skipped" in m for m in logs if m.startswith("[wannmag run]"))
    assert again["mapping"]["J_meV"] == res["mapping"]["J_meV"]
    assert (out / "report.md").read_text() == md


def test_run_from_a_directory_without_energies_is_one_clear_error(tmp_path):
    from wannmag.errors import WannmagError
    from wannmag.workflows.run import build_workflow

    (tmp_path / "d").mkdir()
    shutil.copy(REPO / "data" / "structures" / "CrI3_monolayer.cif", tmp_path / "d")
    with pytest.raises(WannmagError, match="at least two"):
        build_workflow(from_dir=tmp_path / "d", out=tmp_path / "run", log=lambda m: None).run()
    saved = json.loads((tmp_path / "run" / "steps" / "structure.json").read_text())
    assert saved["formula"] == "CrI3"  # the finished step is kept


def test_dask_local_cluster_gives_the_serial_numbers(from_dir, tmp_path):
    pytest.importorskip("dask.distributed")
    from wannmag.workflows.run import build_workflow

    small = {**FAST, "mc_sizes": [4, 6], "mc_sweeps": 600, "mc_therm": 200, "mc_replicas": 6}
    serial = build_workflow(from_dir=from_dir, out=tmp_path / "serial", settings=small, log=lambda m: None)
    res_s = serial.run(until="mc")
    par = build_workflow(from_dir=from_dir, out=tmp_path / "dask", settings=small, dask="local", log=lambda m: None)
    res_d = par.run(until="mc")
    assert res_d["mapping"]["J_meV"] == res_s["mapping"]["J_meV"]
    a, b = res_s["mc"]["result"], res_d["mc"]["result"]
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)  # bit-identical Monte Carlo


def test_steps_hand_on_their_models_in_memory(from_dir, tmp_path, monkeypatch):
    """Issue 22: a fresh run reads none of the spin models it wrote (the mapping's and the Monte Carlo's are handed
    on as objects) and the collinear Wannier model once for tb, mft and superexchange; a re-run that recomputes
    only the Monte Carlo reads model.json once, and the model read from the file is the one the first run used
    (the same checkpoint keys, the same Monte Carlo numbers)."""
    import wannmag.workflows.results as results
    import wannmag.workflows.run as run
    from wannmag.magnetism import SpinModel

    loads, w90 = [], []
    real_load, real_w90 = SpinModel.load.__func__, run.read_w90
    monkeypatch.setattr(SpinModel, "load", classmethod(lambda cls, p: loads.append(Path(p).name) or real_load(cls, p)))
    spy = lambda *a, **k: w90.append(k.get("kind")) or real_w90(*a, **k)  # noqa: E731
    monkeypatch.setattr(run, "read_w90", spy)
    monkeypatch.setattr(results, "read_w90", spy)
    small = {**FAST, "mc_sizes": [4, 6], "mc_sweeps": 300, "mc_therm": 100, "mc_replicas": 6}
    out = tmp_path / "run"
    first = run.build_workflow(from_dir=from_dir, out=out, settings=small, log=lambda m: None).run()
    assert loads == [] and sorted(w90) == ["collinear", "single"]  # the NM Wannierisation: superexchange's own
    cks = sorted(f.name for f in (out / "mc").glob("checkpoint_*.npz"))
    loads.clear(), w90.clear()
    again = run.build_workflow(from_dir=from_dir, out=out, settings=small, log=lambda m: None).run(force=("mc",))
    assert loads == ["model.json"] and w90 == []
    assert sorted(f.name for f in (out / "mc").glob("checkpoint_*.npz")) == cks  # same model, same keys
    assert again["mc"]["result"] == first["mc"]["result"] and again["lswt"] == first["lswt"]


def test_mc_refine_window_brackets_the_first_estimate():
    from wannmag.magnetism.montecarlo.tc import refine_window

    assert refine_window(None, None, 5.0, 100.0) is None
    assert refine_window(float("nan"), 1.0, 5.0, 100.0) is None
    lo, hi = refine_window(40.0, 2.0, 5.0, 100.0)  # ±max(3·2, 0.15·40) = ±6
    assert (lo, hi) == pytest.approx((34.0, 46.0))
    lo, hi = refine_window(40.0, 10.0, 5.0, 100.0)  # a poor first estimate widens the window
    assert (lo, hi) == pytest.approx((10.0, 70.0))
    from wannmag.magnetism.montecarlo.tc import refined_edge_warning

    assert refined_edge_warning(40.0, (34.0, 46.0)) is None          # well inside: no warning
    assert "edge of its window 34.0–46.0 K" in refined_edge_warning(45.5, (34.0, 46.0))  # within 10 % of the edge


def test_mc_step_refines_around_the_first_estimate(tmp_path):
    """An Ising-like anisotropic honeycomb FM: the second Monte Carlo pass runs on a window around the first Tc
    and its estimate is the one reported."""
    import math

    from wannmag.magnetism import Site, SpinModel
    from wannmag.workflows.engine import Context
    from wannmag.workflows.run import step_mc

    cell = np.array([[7.0, 0, 0], [-3.5, 3.5 * math.sqrt(3), 0], [0, 0, 20.0]])
    frac = [(2 / 3, 1 / 3, 0.5), (1 / 3, 2 / 3, 0.5)]
    m = SpinModel(cell=cell, sites=[Site(np.array(f) @ cell, "Cr", 1.5) for f in frac], pbc=(True, True, False),
                  single_ion=[np.diag([0.0, 0.0, -1.0])] * 2)
    for R in [(0, 0, 0), (1, 0, 0), (0, -1, 0)]:
        m.add_bond(0, 1, R, -2.0)
    path = tmp_path / "model.json"
    m.save(path)
    params = {"mc_sizes": [4, 6], "mc_sweeps": 1500, "mc_therm": 500, "mc_replicas": 8, "seed": 3}
    from .step_results import model_result, structure_result

    ctx = Context(tmp_path, params, {"model": model_result(path), "structure": structure_result("X")}, lambda m: None)
    res = step_mc(ctx)
    assert res.refined and not res.mermin_wagner
    co = res.coarse
    lo, hi = res.t_window_K
    assert lo < co["tc_K"] < hi and (hi - lo) < 0.5 * (co["t_window_K"][1] - co["t_window_K"][0])
    assert lo < res.tc_K < hi and res.tc_K == res.result.tc
    assert len(list((tmp_path / "mc").glob("checkpoint_6_*.npz"))) == 2  # both passes, keyed by model + settings
    again = step_mc(ctx)  # resumes from the checkpoints: identical numbers
    assert again.tc_K == res.tc_K and again.coarse == res.coarse
