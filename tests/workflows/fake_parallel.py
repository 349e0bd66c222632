"""Fake engines for the parallel wannier / anisotropy steps (tests/workflows/test_parallel_steps.py).

:func:`install` replaces GPAW by deterministic stand-ins: ``run_dft`` (a run directory and a calculator-like object),
``wannierise`` (Wannier90-like files whose content depends only on the configuration, U and channel, and the
per-call ``<seed>_wannier_summary.json`` of the real one), ``gpaw_mae`` / ``gpaw_soc_record`` (band energies from the
.gpw's bytes) and ``fit_soc_records``.  Module-level, so that a spawned process pool can install it as its
initializer.  Environment: ``FAKE_PAR_DIR`` (required) receives one line per call in ``calls.log``;
``FAKE_PAR_MEET=N`` makes every fake DFT run / SOC calculation wait until N of them have started (a rendezvous that
times out — and fails the test — if the pieces run one after the other); ``FAKE_PAR_FAIL=FM`` makes the SOC record
of that order raise a WannmagError.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np


def _dir() -> Path:
    return Path(os.environ["FAKE_PAR_DIR"])


def _log(what: str) -> None:
    with open(_dir() / "calls.log", "a") as fh:
        fh.write(what + "\n")


def _meet(group: str, name: str, timeout: float = 20.0) -> None:
    n = int(os.environ.get("FAKE_PAR_MEET", "0") or 0)
    if n <= 1:
        return
    d = _dir() / f"meet_{group}"
    d.mkdir(exist_ok=True)
    (d / name).write_text("")
    t0 = time.time()
    while len(list(d.iterdir())) < n:
        if time.time() - t0 > timeout:
            raise RuntimeError(f"rendezvous {group}: {name} waited {timeout} s alone — the pieces ran serially")
        time.sleep(0.05)


def _number(*parts) -> float:
    h = hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()
    return int(h[:8], 16) / 16**8


class FakeCalc:
    def __init__(self, conf, U):
        self.conf, self.U = conf, U


class FakeRecord:
    def __init__(self, run_dir, conf, U):
        self.run_dir, self.conf, self.U = str(run_dir), conf, U


def fake_run_dft(structure, conf, return_calc=False, **kw):
    _log(f"run_dft {kw['name']}")
    _meet("dft", kw["name"])
    run_dir = Path(kw["workdir"]) / kw["name"]
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "summary.json").write_text(json.dumps({"config": conf, "U": kw["U"]}))
    rec = FakeRecord(run_dir, conf, kw["U"])
    return (rec, FakeCalc(conf, kw["U"])) if return_calc else rec


def fake_wannierise(src, projections="dp", seed=None, outdir=None, n_unconverged=None, log=True, **kw):
    from wannmag.workflows.wannier import WannierChannel

    conf, U = (src.conf, src.U) if isinstance(src, FakeCalc) else json.loads(
        (Path(src) / "summary.json").read_text()).values()
    seed = seed or "CrI3"
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    _log(f"wannierise {conf}")
    res = {}
    for c in (["nm"] if conf == "NM" else ["up", "dn"]):
        x = _number(conf, U, c, projections)
        files = {}
        for ext in ("_hr.dat", "_tb.dat", "_wsvec.dat", "_centres.xyz", ".win", ".wout"):
            f = outdir / f"{seed}_{c}{ext}"
            f.write_text(f"{conf} {U} {c} {x:.12f}\n")
            files[ext] = str(f)
        res[c] = WannierChannel(channel=c, seed=f"{seed}_{c}", outdir=str(outdir), num_wann=28, num_bands=28,
                                orbitals=[f"o{k}" for k in range(28)], window={"isolated": True},
                                excluded_below={"count": 6}, max_spread=2.0 + x, spreads=[2.0 + x] * 28,
                                centre_offsets=[0.01] * 28, max_centre_offset=0.01, band_error_meV=x,
                                band_error_states=10, timings={"total": 0.0}, files=files)
    (outdir / f"{seed}_wannier_summary.json").write_text(json.dumps(
        {"seed": seed, "projections": projections, "source": "fake", "channels": {c: r.as_dict() for c, r in
                                                                                   res.items()}}))
    return res


def fake_gpaw_mae(gpw, directions=None, **kw):
    from wannmag.magnetism.anisotropy.soc import STANDARD_DIRECTIONS, MAEResult

    _log(f"gpaw_mae {Path(gpw).parent.name}")
    _meet("soc", "mae")
    dirs = list(directions) if directions is not None else list(STANDARD_DIRECTIONS)
    data = Path(gpw).read_bytes()
    e = [-1000.0 + _number(data, t, p) for t, p in dirs]
    return MAEResult(theta=np.array([d[0] for d in dirs], float), phi=np.array([d[1] for d in dirs], float),
                     energy=np.array(e), n_magnetic=4, method="fake force theorem")


def fake_gpaw_soc_record(gpw, directions, magnetic_elements=None, n2=None):
    from wannmag.magnetism.anisotropy.collinear import CollinearFitError

    order = Path(gpw).parent.name.split("_")[0]
    _log(f"gpaw_soc_record {order}")
    _meet("soc", order)
    if order in os.environ.get("FAKE_PAR_FAIL", "").split(","):
        raise CollinearFitError(f"{gpw}: fake failure of {order}")
    data = Path(gpw).read_bytes()
    return {"gpw": str(gpw), "elements": list(magnetic_elements or []),
            "directions": [[float(t), float(p)] for t, p in directions],
            "energies_meV_per_cell": [-1000.0 + _number(data, t, p) for t, p in directions]}


class FakeFit:
    def __init__(self, records):
        self.records = records

    def as_dict(self):
        return {"orders": list(self.records), "sum_meV": sum(sum(r["energies_meV_per_cell"])
                                                              for r in self.records.values())}

    def table(self):
        return "fake fit: " + ", ".join(self.records)


def fake_fit_soc_records(records, structure, template=None, **kw):
    return FakeFit(records)


def install(set_=setattr) -> None:
    """Replace the GPAW-backed functions by the fakes in this process (a process-pool initializer; in the test
    process pass ``monkeypatch.setattr``)."""
    import wannmag.magnetism.anisotropy as an
    import wannmag.magnetism.anisotropy.collinear as col
    import wannmag.workflows.dft as dft
    import wannmag.workflows.wannier as wan

    set_(dft, "run_dft", fake_run_dft)
    set_(wan, "wannierise", fake_wannierise)
    set_(wan, "_valence_electrons", _hundred)
    set_(an, "gpaw_mae", fake_gpaw_mae)
    set_(col, "gpaw_soc_record", fake_gpaw_soc_record)
    set_(col, "fit_soc_records", fake_fit_soc_records)


def _hundred(atoms) -> int:
    return 100
