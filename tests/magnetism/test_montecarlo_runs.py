"""Monte Carlo runs (issue 7): reproducibility, checkpoint kill -9 / resume, Mermin–Wagner guard, dilution, CLI.

Convention: H = Σ_{i<j} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i − gμ_B B·S_i, each bond once, classical spins of length S,
J > 0 antiferromagnetic, meV; temperatures in K.
"""

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from wannmag.cli import main
from wannmag.magnetism import Site, SpinModel
from wannmag.magnetism.montecarlo import (MCSettings, MerminWagnerWarning, build_lattice, dilution_scan,
                                          ground_state, mermin_wagner_check, ordering_temperature,
                                          parallel_tempering)
from wannmag.magnetism.montecarlo.checkpoint import load_checkpoint
from wannmag.magnetism.spinmodel import MEV_PER_K as KB

HEX = np.array([[1.0, 0.0, 0.0], [-0.5, math.sqrt(3) / 2, 0.0], [0.0, 0.0, 10.0]])
ROOT = Path(__file__).resolve().parents[2]


def honeycomb(J1, J2=0.0, S=1.5, A=None, field=None):
    pos = [np.array([2 / 3, 1 / 3, 0]) @ HEX, np.array([1 / 3, 2 / 3, 0]) @ HEX]
    m = SpinModel(cell=HEX, sites=[Site(p, "X", S) for p in pos], pbc=(True, True, False),
                  single_ion=[A if A is not None else np.zeros((3, 3))] * 2,
                  b_field=field if field is not None else np.zeros(3))
    for R in [(0, 0, 0), (1, 0, 0), (0, -1, 0)]:
        m.add_bond(0, 1, R, J1)
    if np.any(J2):
        for i in (0, 1):
            for R in [(1, 0, 0), (1, 1, 0), (0, 1, 0)]:
                m.add_bond(i, i, R, J2)
    return m


# ------------------------------------------------------------------------------------------ reproducibility
def test_seeded_runs_are_bit_for_bit_reproducible_and_block_independent():
    m = honeycomb(-1.0, -0.2, A=np.diag([0, 0, -0.1]))
    lat = build_lattice(m, 4)
    st = MCSettings(tmin=5, tmax=60, n_replicas=6, n_sweeps=700, n_therm=300, seed=42, ladder="feedback")
    r1 = parallel_tempering(lat, st)
    r2 = parallel_tempering(lat, st)
    st_blocks = MCSettings(**{**st.__dict__, "checkpoint_every": 37})
    r3 = parallel_tempering(lat, st_blocks)  # different block boundaries, same physics
    for r in (r2, r3):
        assert np.array_equal(r.bins, r1.bins)
        assert np.array_equal(r.temperatures, r1.temperatures)
        assert np.array_equal(r.cone_angle, r1.cone_angle)
    assert not np.allclose(r1.temperatures, np.geomspace(5, 60, 6))  # the feedback moved the ladder
    r4 = parallel_tempering(lat, MCSettings(**{**st.__dict__, "seed": 43}))
    assert not np.array_equal(r4.bins, r1.bins)


_SCRIPT = """
import sys
from wannmag.magnetism import SpinModel
from wannmag.magnetism.montecarlo import MCSettings, build_lattice, parallel_tempering
model = SpinModel.load(sys.argv[1])
lat = build_lattice(model, 6)
st = MCSettings(tmin=5, tmax=60, n_replicas=4, n_sweeps=int(sys.argv[3]), n_therm=400, seed=7,
                checkpoint_every=100, progress=True)
parallel_tempering(lat, st, checkpoint=sys.argv[2])
print("finished")
"""


def test_checkpoint_kill9_and_resume_equals_uninterrupted_run(tmp_path):
    model_file = tmp_path / "model.json"
    honeycomb(-1.0, -0.2, A=np.diag([0, 0, -0.1])).save(model_file)
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(_SCRIPT))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    n_sweeps = 12000
    total = n_sweeps + 400
    ck_a, ck_b = tmp_path / "a.npz", tmp_path / "b.npz"
    # the interrupted run: SIGKILL as soon as a checkpoint well before the end exists
    proc = subprocess.Popen([sys.executable, str(script), str(model_file), str(ck_b), str(n_sweeps)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    killed_at = None
    t0 = time.time()
    while time.time() - t0 < 120:
        if ck_b.exists():
            try:
                st = load_checkpoint(ck_b)
            except Exception:  # noqa: BLE001 - a reader never sees a torn file, but be safe
                st = None
            if st is not None and 0 < int(st["sweep"]) < total:
                proc.send_signal(signal.SIGKILL)
                killed_at = int(st["sweep"])
                break
        if proc.poll() is not None:
            break
        time.sleep(0.005)
    proc.wait()
    assert killed_at is not None and proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert int(load_checkpoint(ck_b)["sweep"]) < total
    # resume the killed run, and do an uninterrupted one
    res_b = subprocess.run([sys.executable, str(script), str(model_file), str(ck_b), str(n_sweeps)], env=env,
                           capture_output=True, text=True, timeout=300)
    assert res_b.returncode == 0 and "finished" in res_b.stdout, res_b.stderr[-2000:]
    res_a = subprocess.run([sys.executable, str(script), str(model_file), str(ck_a), str(n_sweeps)], env=env,
                           capture_output=True, text=True, timeout=300)
    assert res_a.returncode == 0, res_a.stderr[-2000:]
    a, b = load_checkpoint(ck_a), load_checkpoint(ck_b)
    assert int(a["sweep"]) == int(b["sweep"]) == total
    assert set(a) == set(b)
    for k in a:
        assert np.array_equal(a[k], b[k]), k
    assert not list(tmp_path.glob(".*.tmp"))  # no stray temporary files


def test_checkpoint_of_another_run_is_refused(tmp_path):
    from wannmag.magnetism.montecarlo import MonteCarloError

    lat = build_lattice(honeycomb(-1.0), 3)
    st = MCSettings(tmin=5, tmax=60, n_replicas=3, n_sweeps=50, n_therm=10, seed=1)
    parallel_tempering(lat, st, checkpoint=tmp_path / "c.npz")
    with pytest.raises(MonteCarloError, match="different run"):
        parallel_tempering(lat, MCSettings(**{**st.__dict__, "seed": 2}), checkpoint=tmp_path / "c.npz")
    # resuming a finished run returns the same result without simulating
    r1 = parallel_tempering(lat, st, checkpoint=tmp_path / "c.npz")
    r2 = parallel_tempering(lat, st)
    assert np.array_equal(r1.bins, r2.bins)


# ------------------------------------------------------------------------------------------ Mermin–Wagner
def test_2d_isotropic_heisenberg_triggers_mermin_wagner_warning():
    m = honeycomb(-1.0)
    st = MCSettings(tmin=5, tmax=60, n_replicas=4, n_sweeps=200, n_therm=50, seed=1)
    with pytest.warns(MerminWagnerWarning, match="Mermin-Wagner"):
        r = ordering_temperature(m, [2, 3], st)
    assert r.mermin_wagner and r.symmetry == "SO(3)" and "true Tc = 0" in r.warning
    assert r.as_dict()["mermin_wagner"] is True


@pytest.mark.parametrize("kind, flagged", [
    ("easy-axis single-ion", False),
    ("easy-axis XXZ", False),
    ("easy-plane XXZ", True),
    ("isotropic + DMI along z", False),
    ("ising", False),
    ("3D isotropic", False),
])
def test_mermin_wagner_classification(kind, flagged):
    A = None
    J1 = -1.0
    ising = False
    dim = 2
    if kind == "easy-axis single-ion":
        A = np.diag([0, 0, -0.1])
    elif kind == "easy-axis XXZ":
        J1 = np.diag([-1.0, -1.0, -1.1])
    elif kind == "easy-plane XXZ":
        J1 = np.diag([-1.0, -1.0, -0.8])
    elif kind == "isotropic + DMI along z":  # U(1) about z survives, but a FM with D_z on the NN bonds ...
        J1 = -np.eye(3) + np.array([[0, 0.05, 0], [-0.05, 0, 0], [0, 0, 0]])
        A = np.diag([0, 0, -0.1])  # ... with an easy axis orders along z: no MW
    elif kind == "ising":
        ising = True
    elif kind == "3D isotropic":
        dim = 3
    m = honeycomb(J1, A=A)
    lat = build_lattice(m, 4)
    gs = ground_state(lat, ising=ising, seed=0)
    res = mermin_wagner_check(m, dim, ising, gs.spins, lat.slen)
    assert res["flag"] is flagged, res
    if kind == "easy-plane XXZ":
        assert res["symmetry"].startswith("U(1)")
    if not flagged and kind != "3D isotropic":
        st = MCSettings(tmin=5, tmax=60, n_replicas=3, n_sweeps=50, n_therm=10, seed=1, ising=ising)
        with warnings.catch_warnings():
            warnings.simplefilter("error", MerminWagnerWarning)
            assert not ordering_temperature(m, [2], st).mermin_wagner


# ------------------------------------------------------------------------------------------ dilution
def test_dilution_lowers_the_ordering_temperature_monotonically():
    m = honeycomb(-1.0, S=1.0)
    st = MCSettings(tmin=0.5 / KB, tmax=1.8 / KB, n_replicas=16, n_sweeps=3000, n_therm=600, ising=True, seed=3)
    d = dilution_scan(m, [0.0, 0.1, 0.2], [8], st, realisations=3)
    # one size: no Binder crossing, so no ordering temperature is reported — only the χ maxima, labelled as such
    assert d.tc == [None, None, None] and d.statuses == ["not bracketed"] * 3
    assert all("one lattice size" in n and "chi maximum of 8x8x1" in n for n in d.notes)
    peaks = [a.peaks_chi["8x8x1"] for a in d.analyses]
    assert not any(p["at_edge"] for p in peaks)
    t = np.array([p["T"] for p in peaks]) * KB
    e = np.array([p["error"] for p in peaks]) * KB
    assert t[0] > t[1] > t[2], (t, e)
    assert t[0] - t[1] > 2 * math.hypot(e[0], e[1]) and t[1] - t[2] > 2 * math.hypot(e[1], e[2])
    assert 1.45 < t[0] < 1.7  # L = 8 χ peak of the pure model, above the exact Tc/|J| = 1.519
    assert json.loads(json.dumps(d.as_dict()))["tc_K"] == [None, None, None]


def test_dilution_runs_are_independent_of_where_and_in_which_order_they_run():
    """map_fn (Dask, process pools) may run the (x, size, realisation) simulations anywhere, in any order: the
    numbers are those of the serial scan (every run is seeded by its own key)."""
    m = honeycomb(-1.0, S=1.0)
    st = MCSettings(tmin=0.5 / KB, tmax=1.8 / KB, n_replicas=4, n_sweeps=200, n_therm=50, ising=True, seed=5)
    serial = dilution_scan(m, [0.0, 0.2], [4, 6], st, realisations=2)
    seen = []

    def backwards(fn, tasks):
        seen.append(len(tasks))
        return [fn(t) for t in tasks[::-1]][::-1]

    other = dilution_scan(m, [0.0, 0.2], [4, 6], st, realisations=2, map_fn=backwards)
    assert seen == [2 + 4]  # x = 0: one run per size; x = 0.2: two realisations per size
    assert json.dumps(other.as_dict(), sort_keys=True) == json.dumps(serial.as_dict(), sort_keys=True)


def test_vacancies_and_bond_overrides_near_vacancies():
    m = honeycomb(-1.0, -0.1, S=1.0)
    lat = build_lattice(m, 4, vacancies=[0], near_vacancy={1: -2.0})
    assert lat.n_sites == 31
    # the 3 neighbours of the vacancy keep 2 NN bonds each: 6 bonds, 12 CSR entries, changed to -2
    assert np.sum(lat.Jiso == -2.0) == 12
    assert np.sum(lat.Jiso == -0.1) == 2 * (32 * 3 - 6)  # 2NN bonds untouched (site 0 had 6 of them)

    def f(b_index, bond, n_vac):
        return -3.0 * n_vac if bond.shell is None and abs(bond.J_iso + 1.0) < 1e-12 else None

    lat2 = build_lattice(m, 4, vacancies=[0, 1], near_vacancy=f)
    assert lat2.n_sites == 30 and np.all(np.isin(lat2.Jiso, [-1.0, -0.1, -3.0, -6.0]))
    assert np.any(lat2.Jiso == -3.0)


# ------------------------------------------------------------------------------------------ CLI
def test_cli_mc_runs_writes_json_and_plots(tmp_path, capsys):
    model = tmp_path / "m.json"
    honeycomb(-1.0, A=np.diag([0, 0, -0.1])).save(model)
    out = tmp_path / "out"
    rc = main(["mc", str(model), "--sizes", "3", "4", "--tmin", "10", "--tmax", "60", "--replicas", "6",
               "--sweeps", "300", "--therm", "100", "--out", str(out), "--quiet", "--checkpoint-every", "100",
               "--dilution", "0.1", "--realisations", "2"])
    text = capsys.readouterr().out
    assert rc == 0
    assert "T_order" in text and "dilution x = 0.1" in text
    data = json.loads((out / "mc_result.json").read_text())
    # a number only if it is a bracketed Binder crossing (issue 16), else None with the reason
    assert (data["tc_K"] is None) == (data["status"] == "not bracketed") and (data["tc_K"] is None or data["tc_K"] > 0)
    assert data["tc_K"] is not None or "not bracketed" in text
    assert len(data["runs"]) == 2 and "J > 0 AF" in data["convention"]
    for png in ("mc_curves.png", "mc_dilution.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "mc_dilution.json").read_text())["fractions"] == [0.0, 0.1]


@pytest.mark.parametrize("args, expect", [
    (["--tmin", "10", "--tmax", "5"], "--tmin must be below --tmax"),
    (["--tmin", "1", "--tmax", "5", "--sizes", "1", "4"], "--sizes must be integers >= 2"),
    (["--tmin", "1", "--tmax", "5", "--dilution", "1.5"], "--dilution"),
    (["--tmin", "1", "--tmax", "5", "--replicas", "1"], "--replicas"),
])
def test_cli_mc_bad_input_is_one_line(tmp_path, capsys, args, expect):
    model = tmp_path / "m.json"
    honeycomb(-1.0).save(model)
    assert main(["mc", str(model), *args, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("wannmag: error:") and expect in err[0]


def test_cli_mc_missing_and_malformed_model(tmp_path, capsys):
    assert main(["mc", str(tmp_path / "none.json"), "--tmin", "1", "--tmax", "2"]) == 2
    assert "no such file" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    res = subprocess.run([sys.executable, "-m", "wannmag.cli", "mc", str(bad), "--tmin", "1", "--tmax", "2"],
                         capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "not valid JSON" in res.stderr
    help_text = subprocess.run([sys.executable, "-m", "wannmag.cli", "mc", "--help"], capture_output=True,
                               text=True, env=dict(os.environ, PYTHONPATH=str(ROOT))).stdout
    for opt in ("--sizes", "--tmin", "--tmax", "--replicas", "--sweeps", "--therm", "--ising", "--dilution",
                "--realisations", "--seed", "--out", "--checkpoint-every"):
        assert opt in help_text


def test_unconverged_finite_size_estimates_are_flagged():
    from wannmag.magnetism.montecarlo.tc import convergence_notes

    labels = ["12x12", "18x18", "24x24"]
    good = [{"sizes": ["12x12", "18x18"], "T": 68.4}, {"sizes": ["18x18", "24x24"], "T": 69.6}]
    peaks = {"24x24": {"T": 70.5, "at_edge": False}}
    assert convergence_notes(69.6, good, peaks, labels) == []          # CrI3 accurate: consistent
    bad = [{"sizes": ["12x12", "18x18"], "T": 156.2}, {"sizes": ["18x18", "24x24"], "T": 243.3}]
    notes = convergence_notes(243.3, bad, {"24x24": {"T": 320.0, "at_edge": False}}, labels)
    assert len(notes) == 1 and "disagree" in notes[0] and "156.2 K" in notes[0]
    hump = convergence_notes(108.8, [{"sizes": ["18x18", "24x24"], "T": 108.8}],
                             {"24x24": {"T": 301.4, "at_edge": False}}, labels)
    assert len(hump) == 1 and "nearly isotropic" in hump[0]           # VPS3-like: C maximum far above the crossing
    assert convergence_notes(None, bad, peaks, labels) == []
