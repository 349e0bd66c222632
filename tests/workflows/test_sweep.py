"""``wannmag sweep`` (issue 21 item 2) with a cheap fake DFT engine: the conftest's FakeDFT (the GPAW stand-in of
the dft/run tests) given the classical energies of a known J1(U, d), J2(U), J3 model — so the energy mapping of every
point must return exactly those J's — and no .gpw file (no spin–orbit step).  The sweep on a Dask LocalCluster (its
scheduler address, in-process workers) gives the serial numbers; bad values are one error line."""

import json
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
CIF = REPO / "data" / "structures" / "CrI3_monolayer.cif"
D1 = 4.041452  # Å, CrI3 prototype 1NN
SMALL = {"mc_sizes": [4, 6], "mc_sweeps": 300, "mc_therm": 100, "mc_replicas": 6}


def model_J(U, d1):
    """meV, J > 0 AF: J1 weakens with U and falls with the Cr–Cr distance; J2 depends on U; J3 fixed."""
    return (-2.0 + 0.3 * (U - 3.0)) * (D1 / d1) ** 6, -0.3 - 0.05 * U, 0.1


@pytest.fixture
def heisenberg_gpaw(fake_gpaw, monkeypatch):
    import wannmag.workflows.dft as dft
    from ase.neighborlist import neighbor_list

    base = fake_gpaw["cls"]

    class HeisenbergDFT(base):
        def calculate(self, atoms=None, properties=("energy",), system_changes=()):
            super().calculate(atoms, properties, system_changes)
            m0 = atoms.get_initial_magnetic_moments()
            mag = np.flatnonzero(np.abs(m0) > 0)
            sub = atoms[mag]
            i, j, d = neighbor_list("ijd", sub, 8.6)
            d1 = d.min()
            U = float(self.params_["U"].get("Cr", 0.0))
            J1, J2, J3 = model_J(U, d1)
            J = np.where(d < 1.3 * d1, J1, np.where(d < 1.9 * d1, J2, J3))  # 1NN d1, 2NN √3 d1, 3NN 2 d1
            e_meV = 0.5 * float(np.sum(J * m0[mag][i] * m0[mag][j] / 4.0))  # S² σσ = m m / 4, each bond once
            self.results["energy"] = -3.0 * len(atoms) + 1e-3 * e_meV

        def write(self, path, mode=""):
            pass  # no .gpw: the anisotropy step has no spin–orbit input (dipolar only)

    monkeypatch.setattr(dft, "_make_calculator", lambda params, txt: HeisenbergDFT(params, txt))
    return HeisenbergDFT


def _numbers(res):
    return [{k: v for k, v in p.items() if k not in ("out",)} for p in res.points]


def test_sweep_on_a_dask_local_cluster_gives_the_serial_numbers(tmp_path, heisenberg_gpaw):
    pytest.importorskip("dask.distributed")
    from dask.distributed import LocalCluster

    from wannmag.workflows.sweep import SweepResult, run_sweep

    kw = dict(U=[4.0, 2.0], strain=[0.02], until="mc", settings=SMALL, log=lambda m: None)
    serial = run_sweep(str(CIF), out=tmp_path / "serial", **kw)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        par = run_sweep(str(CIF), out=tmp_path / "dask", dask=cluster.scheduler_address, **kw)
    assert [p["status"] for p in serial.points] == ["done"] * 2
    assert _numbers(par) == _numbers(serial)
    for p in serial.points:  # bit-identical Monte Carlo of every point
        a, b = (json.loads((tmp_path / d / p["label"] / "steps" / "mc.json").read_text())["result"]
                for d in ("serial", "dask"))
        assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    for p in serial.points:
        assert p["J_meV"] == pytest.approx(model_J(p["U"], D1 * 1.02), abs=1e-6)
        an = p["anisotropy"]
        assert an["soc_meV_per_ion"] is None and an["dipolar_meV_per_ion"] < 0 and an["easy_axis"] == "in plane"
        # an easy-plane 2D Heisenberg model: no ordering temperature, the reason instead of a number
        assert p["tc"]["tc_K"] is None and p["tc"]["mermin_wagner"] and p["tc"]["reason"]
        assert p["tc"]["method"] and p["converged"]["tc_bracketed"] is False
    # the stored file is the result, and it round-trips; the figure exists
    stored = json.loads((tmp_path / "serial" / "sweep.json").read_text())
    assert SweepResult.from_dict(stored).as_dict() == stored == serial.as_dict()
    assert (tmp_path / "serial" / "sweep.png").stat().st_size > 5000
    assert "none —" in serial.table()
    # a second sweep reuses every finished step of every point (nothing recomputed: same numbers, no DFT call)
    calls = heisenberg_gpaw.instances
    again = run_sweep(str(CIF), out=tmp_path / "serial", **kw)
    assert heisenberg_gpaw.instances == calls and _numbers(again) == _numbers(serial)


def test_u_strain_grid_recovers_the_exact_exchange_of_every_point(tmp_path, heisenberg_gpaw):
    from wannmag.workflows.sweep import run_sweep

    res = run_sweep(str(CIF), U=[4.0, 2.0, 2.0], strain=[0.02, 0.0, -0.02], until="model", out=tmp_path / "g",
                    log=lambda m: None)
    assert res.U_values == [2.0, 4.0] and res.strains == [-0.02, 0.0, 0.02]  # sorted, duplicates dropped
    assert [p["label"] for p in res.points] == [f"U{u}_strain{e}" for u in (2, 4)
                                               for e in ("-0.020", "+0.000", "+0.020")]
    for p in res.points:
        d1 = D1 * (1 + p["strain"])
        assert p["J_meV"] == pytest.approx(model_J(p["U"], d1), abs=1e-6)   # exact: the fake's own model
        assert p["a_A"] == pytest.approx(7.0 * (1 + p["strain"]), abs=1e-4)
        assert p["ground_state"] == "FM" and p["converged"]["dft_moments_kept"] is True
        assert "energy mapping" in p["J_route"] and "tc" not in p  # --until model: no Monte Carlo
    # the unstrained points use the input file itself; the strained ones a file in OUT/structures
    assert sorted(f.name for f in (tmp_path / "g" / "structures").iterdir()) == [
        "CrI3_monolayer_strain+0.020.cif", "CrI3_monolayer_strain-0.020.cif"]
    assert (tmp_path / "g" / "sweep.png").exists()


def test_strained_atoms_scale_the_plane_only():
    from ase.io import read

    from wannmag.workflows.sweep import strained_atoms

    atoms = read(CIF)
    s = strained_atoms(atoms, -0.03)
    assert np.allclose(s.cell.array[:2], 0.97 * atoms.cell.array[:2], atol=1e-12)
    assert np.allclose(s.cell.array[2], atoms.cell.array[2], atol=1e-12)
    assert np.allclose(s.positions[:, 2], atoms.positions[:, 2], atol=1e-12)       # ligand heights kept
    assert np.allclose(s.get_scaled_positions(wrap=False), atoms.get_scaled_positions(wrap=False), atol=1e-12)


def test_result_round_trip():
    from wannmag.workflows.sweep import SweepResult

    r = SweepResult(structure="x.cif", preset="fast", until="mapping", U_values=[1.0, 2.0], strains=[0.0],
                    points=[{"U": 1.0, "strain": 0.0, "label": "U1_strain+0.000", "status": "failed", "error": "e"}])
    assert SweepResult.from_dict(r.as_dict()) == r and "failed: e" in r.table()


@pytest.mark.parametrize("argv,msg", [
    (["--U", "-1", "3"], "U = -1.0 eV is out of range"),
    (["--strain", "0", "0.3"], "strain 0.3 is out of range"),
    (["--strain", "-0.25"], "strain -0.25 is out of range"),
    (["--U", "3", "--until", "bogus"], "unknown step 'bogus' for --until"),
    ([], "give --U values and/or --strain values"),
    (["--U", "nan"], "U = nan eV is out of range"),
])
def test_bad_sweep_values_are_one_error_line(tmp_path, capsys, argv, msg):
    from wannmag.cli import main

    out = tmp_path / "o"
    rc = main(["sweep", str(CIF), "--out", str(out), *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith(f"wannmag: error: {CIF}:") and msg in err[0], err
    assert not out.exists()  # refused before any work
