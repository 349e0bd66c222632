"""The wannier step's FM / NM branches and the anisotropy step's SOC calculations run side by side (issue 20, item 4)
and give exactly the serial results; a finished Wannier branch is skipped on a re-run.  GPAW and Wannier90 are
replaced by the deterministic fakes of ``fake_parallel`` (in the test process, in spawned pool processes and in the
threads of an in-process Dask cluster).  A rendezvous inside the fakes fails the parallel runs if their pieces ran
one after the other."""

import json
import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from wannmag.workflows.dft import DFTRecord
from wannmag.workflows.engine import Context

from . import fake_parallel
from .step_results import mapping_result

ROOT = Path(__file__).resolve().parents[2]
CIF = ROOT / "data" / "structures" / "CrI3_monolayer.cif"
MODEL = ROOT / "data" / "runs" / "CrI3_accurate" / "spin_model.json"


@pytest.fixture
def fakes(monkeypatch, tmp_path):
    d = tmp_path / "calls"
    d.mkdir()
    monkeypatch.setenv("FAKE_PAR_DIR", str(d))
    monkeypatch.delenv("FAKE_PAR_MEET", raising=False)
    monkeypatch.delenv("FAKE_PAR_FAIL", raising=False)
    fake_parallel.install(monkeypatch.setattr)
    return d


def _calls(d: Path) -> list[str]:
    f = d / "calls.log"
    return sorted(f.read_text().split("\n")[:-1]) if f.exists() else []


def _portable(res: dict, root: Path) -> dict:
    """Channel results with the run directory taken out of every path (two runs in two directories compared)."""
    return json.loads(json.dumps({c: r.as_dict() for c, r in res.items()}).replace(str(root), "ROOT"))


def _files(d: Path) -> dict:
    return {f.name: f.read_bytes() for f in sorted(Path(d).iterdir()) if f.is_file() and not f.name.endswith(".json")}


@pytest.fixture
def threaded_dask():
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as c:
        yield c.scheduler_address


def test_wannier_branches_in_two_processes_equal_serial(fakes, tmp_path, monkeypatch):
    from wannmag.workflows.wannier import wannier_models

    serial = wannier_models(str(CIF), preset="fast", U=3.0, workdir=tmp_path / "s", outdir=tmp_path / "s" / "w")
    assert _calls(fakes) == ["run_dft FM_wannier", "run_dft NM_wannier", "wannierise FM", "wannierise NM"]
    par_calls = tmp_path / "par_calls"
    par_calls.mkdir()
    monkeypatch.setenv("FAKE_PAR_DIR", str(par_calls))
    monkeypatch.setenv("FAKE_PAR_MEET", "2")  # both branches must be running at the same time
    with ProcessPoolExecutor(2, mp_context=mp.get_context("spawn"), initializer=fake_parallel.install) as ex:
        par = wannier_models(str(CIF), preset="fast", U=3.0, workdir=tmp_path / "p", outdir=tmp_path / "p" / "w",
                             map_fn=lambda fn, items: list(ex.map(fn, items)))
    assert _calls(par_calls) == _calls(fakes)
    assert list(par) == list(serial) == ["up", "dn", "nm"]
    assert _portable(par, tmp_path / "p") == _portable(serial, tmp_path / "s")
    assert _files(tmp_path / "p" / "w") == _files(tmp_path / "s" / "w") and len(_files(tmp_path / "s" / "w")) == 18
    # one summary of every channel (each branch's wannierise wrote only its own)
    for d in ("s", "p"):
        summ = json.loads((tmp_path / d / "w" / "CrI3_wannier_summary.json").read_text())
        assert list(summ["channels"]) == ["up", "dn", "nm"]


def test_finished_branch_is_skipped_on_rerun(fakes, tmp_path):
    from wannmag.workflows.wannier import wannier_models

    kw = dict(preset="fast", U=3.0, workdir=tmp_path / "s", outdir=tmp_path / "s" / "w")
    first = wannier_models(str(CIF), **kw)
    n = len(_calls(fakes))
    again = wannier_models(str(CIF), **kw)
    assert len(_calls(fakes)) == n  # nothing recomputed
    assert _portable(again, tmp_path) == _portable(first, tmp_path)
    # a file of the NM branch lost: only that branch runs again
    (tmp_path / "s" / "w" / "CrI3_nm_hr.dat").unlink()
    wannier_models(str(CIF), **kw)
    calls = _calls(fakes)
    assert calls.count("run_dft NM_wannier") == 2 and calls.count("run_dft FM_wannier") == 1
    assert (tmp_path / "s" / "w" / "CrI3_nm_hr.dat").exists()
    # another U: a different FM calculation (recomputed); the NM branch is plain PBE (nm_U = 0) and stays
    wannier_models(str(CIF), **{**kw, "U": 2.0})
    calls = _calls(fakes)
    assert calls.count("run_dft NM_wannier") == 2 and calls.count("run_dft FM_wannier") == 2
    wannier_models(str(CIF), **{**kw, "U": 2.0, "nm_U": 1.0})
    calls = _calls(fakes)
    assert calls.count("run_dft NM_wannier") == 3 and calls.count("run_dft FM_wannier") == 2


def _wannier_ctx(out: Path, dask=None, workers=1):
    params = {"structure": str(CIF), "preset": "fast", "U": 3.0, "wannier_dir": None, "dask": dask,
              "workers": workers}
    return Context(out, params, {}, log=lambda m: None)


def test_wannier_step_on_a_dask_pool_equals_serial(fakes, tmp_path, monkeypatch, threaded_dask):
    from wannmag.workflows.run import step_wannier

    serial = step_wannier(_wannier_ctx(tmp_path / "s")).as_dict()
    monkeypatch.setenv("FAKE_PAR_MEET", "2")
    par = step_wannier(_wannier_ctx(tmp_path / "p", dask=threaded_dask)).as_dict()
    assert json.loads(json.dumps(par).replace(str(tmp_path / "p"), "R")) == \
        json.loads(json.dumps(serial).replace(str(tmp_path / "s"), "R"))
    assert list(par["channels"]) == ["up", "dn", "nm"]
    assert _files(tmp_path / "p" / "wannier") == _files(tmp_path / "s" / "wannier")


def _anisotropy_ctx(out: Path, dask=None, workers=1):
    records = []
    for k, order in enumerate(("FM", "Neel", "zigzag", "stripy")):
        d = out / "dft" / f"{order}_rect"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{order}.gpw").write_text(f"fake gpw {order} {k}\n")
        records.append(DFTRecord(source="gpaw", formula="CrI3", config=order, gpw=str(d / f"{order}.gpw")).as_dict())
    params = {"structure": str(CIF), "preset": "fast", "U": 3.0, "dask": dask, "workers": workers}
    results = {"mapping": mapping_result(MODEL), "dft": {"records": records, "engine": "gpaw"}}
    return Context(out, params, results, log=lambda m: None)


def _same_run(a: dict, b: dict, da: Path, db: Path) -> bool:
    return json.loads(json.dumps(a).replace(str(da), "R")) == json.loads(json.dumps(b).replace(str(db), "R"))


def test_anisotropy_orders_on_a_dask_pool_equal_serial(fakes, tmp_path, monkeypatch, threaded_dask):
    from wannmag.workflows.run import step_anisotropy

    serial = step_anisotropy(_anisotropy_ctx(tmp_path / "s")).as_dict()
    assert serial["soc_method"] == "fake force theorem" and serial["soc_fit"]["orders"] == \
        ["FM", "Neel", "zigzag", "stripy"]
    assert sorted(_calls(fakes)) == sorted(["gpaw_mae FM_rect"] + [f"gpaw_soc_record {o}" for o in
                                                                  ("FM", "Neel", "zigzag", "stripy")])
    monkeypatch.setenv("FAKE_PAR_MEET", "2")
    par = step_anisotropy(_anisotropy_ctx(tmp_path / "p", dask=threaded_dask)).as_dict()
    assert _same_run(par, serial, tmp_path / "p", tmp_path / "s")
    assert list(par["soc_records"]) == ["FM", "Neel", "zigzag", "stripy"]
    # an independent evaluation of the stored number: (E_in − E_out) per ion from the fake energies
    from wannmag.magnetism.anisotropy.soc import STANDARD_DIRECTIONS

    e = dict(zip(STANDARD_DIRECTIONS, fake_parallel.fake_gpaw_mae(tmp_path / "s" / "dft" / "FM_rect" / "FM.gpw")
                 .energy))
    assert par["soc_meV"] == pytest.approx((0.5 * (e[(90.0, 0.0)] + e[(90.0, 90.0)]) - e[(0.0, 0.0)]) / 4, abs=1e-12)


def test_anisotropy_failure_of_an_order_is_reported_as_in_the_serial_loop(fakes, tmp_path, monkeypatch,
                                                                          threaded_dask):
    from wannmag.workflows.run import step_anisotropy

    monkeypatch.setenv("FAKE_PAR_FAIL", "stripy,zigzag")
    serial = step_anisotropy(_anisotropy_ctx(tmp_path / "s")).as_dict()
    par = step_anisotropy(_anisotropy_ctx(tmp_path / "p", dask=threaded_dask)).as_dict()
    # the first failing order in the DFT records' order (zigzag before stripy), no fit, the MAE kept
    assert serial["soc_fit"] is None and "fake failure of zigzag" in serial["soc_fit_error"]
    assert _same_run(par, serial, tmp_path / "p", tmp_path / "s")
    assert par["soc_meV"] is not None and "soc_records" not in par
