"""Issue 16 item 8, the Monte Carlo classes: out-of-range ``wannmag mc`` values, ``--out`` onto a file, damaged
checkpoints with a valid run signature, two runs writing into one directory, figures written atomically.  Every
failure is one ``wannmag: error:`` line naming the bound or the file, exit status 2, never a traceback or a hang.

Convention: H = Σ_{i<j} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i, each bond once, classical spins of length S, J > 0
antiferromagnetic, meV; temperatures in K.
"""

import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from wannmag.cli import main
from wannmag.magnetism import Site, SpinModel

HEX = np.array([[1.0, 0.0, 0.0], [-0.5, math.sqrt(3) / 2, 0.0], [0.0, 0.0, 10.0]])
ROOT = Path(__file__).resolve().parents[2]
RUN = ["--ising", "--sizes", "3", "4", "--tmin", "5", "--tmax", "30", "--replicas", "4", "--sweeps", "200",
       "--therm", "50", "--quiet", "--checkpoint-every", "50", "--max-extensions", "0"]


@pytest.fixture
def model(tmp_path):
    pos = [np.array([2 / 3, 1 / 3, 0]) @ HEX, np.array([1 / 3, 2 / 3, 0]) @ HEX]
    m = SpinModel(cell=HEX, sites=[Site(p, "X", 1.0) for p in pos], pbc=(True, True, False))
    for R in [(0, 0, 0), (1, 0, 0), (0, -1, 0)]:
        m.add_bond(0, 1, R, -1.0)
    path = tmp_path / "m.json"
    m.save(path)
    return path


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("wannmag: error:"), err
    assert "Traceback" not in err[0] and "internal error" not in err[0], err
    return err[0]


@pytest.mark.parametrize("args, expect", [
    (["--tmin", "5", "--tmax", "30", "--seed", "-1"], "--seed must be an integer in [0, 2^63)"),
    (["--tmin", "1e-300", "--tmax", "30"], "--tmin must be a temperature between 0.001 and 1e+06 K"),
    (["--tmin", "5", "--tmax", "1e300"], "--tmax must be a temperature between 0.001 and 1e+06 K"),
    (["--tmin", "nan", "--tmax", "30"], "--tmin must be a temperature between"),
    (["--tmin", "5", "--tmax", "inf"], "--tmax must be a temperature between"),
    (["--tmin", "30", "--tmax", "5"], "--tmin must be below --tmax"),
    (["--tmin", "5", "--tmax", "30", "--sweeps", "0"], "--sweeps must be between 1 and 1e+09"),
    (["--tmin", "5", "--tmax", "30", "--sweeps", "-3"], "--sweeps must be between 1 and 1e+09"),
    (["--tmin", "5", "--tmax", "30", "--therm", "-1"], "--therm must be between 0 and 1e+09"),
    (["--tmin", "5", "--tmax", "30", "--replicas", "1000001"], "--replicas must be between 2 and 1000"),
    (["--tmin", "5", "--tmax", "30", "--sizes", "100000"], "--sizes must be at most 10000"),
    (["--tmin", "5", "--tmax", "30", "--sizes", "3000"], "1e+06 cells"),
    (["--tmin", "5", "--tmax", "30", "--sizes", "300", "--replicas", "500"], "more than the 2e+07 one run holds"),
    (["--tmin", "5", "--tmax", "30", "--dilution", "1"], "--dilution must be a vacancy fraction in [0, 1)"),
    (["--tmin", "5", "--tmax", "30", "--dilution", "-0.1"], "--dilution must be a vacancy fraction in [0, 1)"),
    (["--tmin", "5", "--tmax", "30", "--dilution", "nan"], "--dilution must be a vacancy fraction in [0, 1)"),
    (["--tmin", "5", "--tmax", "30", "--dilution", "0.1", "--realisations", "0"],
     "--realisations must be between 1 and 10000"),
    (["--tmin", "5", "--tmax", "30", "--max-extensions", "-1"], "--max-extensions must be between 0 and 10"),
    (["--tmin", "5", "--tmax", "30", "--overrelax", "1000000"], "--overrelax must be between 0 and 100"),
])
def test_out_of_range_values_are_one_line(model, tmp_path, capsys, args, expect):
    t0 = time.perf_counter()
    assert main(["mc", str(model), *args, "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert expect in one_error_line(capsys)
    assert time.perf_counter() - t0 < 5.0  # refused up front, nothing simulated or allocated


def test_huge_replica_count_is_refused_at_once_not_a_hang(model, tmp_path):
    """Today `mc --replicas 100000000` hangs (allocating and annealing 1e8 replicas)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    res = subprocess.run([sys.executable, "-m", "wannmag.cli", "mc", str(model), "--tmin", "5", "--tmax", "30",
                          "--replicas", "100000000", "--out", str(tmp_path / "o")], capture_output=True, text=True,
                         timeout=60, env=env)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines() == ["wannmag: error: --replicas must be between 2 and 1000, got 100000000"]


def test_library_refuses_the_same_bounds():
    from wannmag.magnetism.montecarlo import MCSettings, MonteCarloError

    for kw, msg in [({"tmin": 1e-300, "tmax": 30}, "tmin must be a temperature between"),
                    ({"tmin": 5, "tmax": 30, "seed": -1}, "seed must be an integer"),
                    ({"tmin": 5, "tmax": 30, "n_replicas": 10 ** 8}, "replicas must be between 1 and 1000"),
                    ({"tmin": 5, "tmax": 30, "n_sweeps": 0}, "n_sweeps must be between 1")]:
        with pytest.raises(MonteCarloError, match=msg):
            MCSettings(**kw).validate()


def test_out_onto_an_existing_file_is_one_line(model, tmp_path, capsys):
    f = tmp_path / "results.txt"
    f.write_text("keep me")
    assert main(["mc", str(model), *RUN, "--out", str(f)]) == 2
    line = one_error_line(capsys)
    assert str(f) in line and "--out must be a directory, but this is an existing file" in line
    assert f.read_text() == "keep me"


# ------------------------------------------------------------------------------------------ checkpoints
def _tamper(path: Path, how: str) -> None:
    with np.load(path, allow_pickle=False) as d:
        state = {k: d[k].copy() for k in d.files}
    assert "signature" in state  # the run's "checksum" stays valid: only the content is damaged
    if how == "missing key":
        del state["rng"]
    elif how == "wrong spins shape":
        state["spins"] = state["spins"][:, :-1]
    elif how == "NaN spin":
        state["spins"][0, 0, 2] = np.nan
    elif how == "sweep 1e9":
        state["sweep"] = np.array(10 ** 9, np.int64)
    elif how == "spin length":
        state["spins"][1, 3] *= 2.0
    elif how == "sweep inside the run":
        state["sweep"] = np.array(int(state["sweep"]) - 50, np.int64)  # counters no longer match
    elif how == "walker maps":
        state["temp_of"][:] = 0
    np.savez(path, **state)


@pytest.mark.parametrize("how, expect", [
    ("missing key", "missing field(s) 'rng'"),
    ("wrong spins shape", "field 'spins' has shape"),
    ("NaN spin", "field 'spins' holds NaN or inf"),
    ("sweep 1e9", "sweep counter 1000000000 outside 0..250"),
    ("spin length", "spin lengths differ from the model's S"),
    ("sweep inside the run", "measurements recorded"),
    ("walker maps", "not inverse permutations"),
])
def test_damaged_checkpoint_with_a_valid_signature_is_refused(model, tmp_path, capsys, how, expect):
    out = tmp_path / "o"
    assert main(["mc", str(model), *RUN, "--out", str(out)]) == 0
    capsys.readouterr()
    ck = out / "checkpoint_3x3x1.npz"
    assert ck.exists()
    _tamper(ck, how)
    assert main(["mc", str(model), *RUN, "--out", str(out)]) == 2
    line = one_error_line(capsys)
    assert str(ck) in line and "corrupt Monte Carlo checkpoint" in line and expect in line, line


def test_an_intact_checkpoint_still_resumes(model, tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["mc", str(model), *RUN, "--out", str(out)]) == 0
    first = capsys.readouterr().out
    assert main(["mc", str(model), *RUN, "--out", str(out)]) == 0
    assert capsys.readouterr().out == first


# ------------------------------------------------------------------------------------------ two runs, one --out
def test_stale_temporary_cleanup_spares_live_writers(tmp_path):
    """Today the starter of a run deletes every `.checkpoint_*.npz.*.tmp` in --out, including the in-flight temporary
    file of another run writing there (its os.replace then fails with FileNotFoundError)."""
    from wannmag._atomic import _HOST, remove_stale_temporaries

    target = tmp_path / "checkpoint_4x4x1.npz"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    try:
        live_tmp = tmp_path / f".{target.name}.wm{sleeper.pid}-{_HOST}.abc123.tmp"
        dead_tmp = tmp_path / f".{target.name}.wm{dead.pid}-{_HOST}.def456.tmp"
        foreign = tmp_path / f".{target.name}.wm{sleeper.pid}-00000000.xyz.tmp"  # another host: by age only
        old_style = tmp_path / f".{target.name}.q1w2e3.tmp"
        for f in (live_tmp, dead_tmp, foreign, old_style):
            f.write_bytes(b"partial")
        removed = remove_stale_temporaries(target)
        assert set(removed) == {dead_tmp}
        assert live_tmp.exists() and foreign.exists() and old_style.exists()
        past = time.time() - 7200
        os.utime(foreign, (past, past))
        os.utime(old_style, (past, past))
        assert set(remove_stale_temporaries(target)) == {foreign, old_style} and live_tmp.exists()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_concurrent_writer_survives_another_runs_cleanup(tmp_path):
    """One process rewrites a checkpoint atomically in a loop while another keeps running the start-up cleanup."""
    target = tmp_path / "checkpoint_4x4x1.npz"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    writer = subprocess.Popen([sys.executable, "-c", (
        "import sys; from wannmag._atomic import atomic_write_bytes\n"
        f"for k in range(400): atomic_write_bytes({str(target)!r}, bytes(200000))\n"
        "print('ok')")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    cleaner = subprocess.Popen([sys.executable, "-c", (
        "from wannmag._atomic import remove_stale_temporaries\n"
        f"for k in range(4000): remove_stale_temporaries({str(target)!r})\n")], env=env)
    out, err = writer.communicate(timeout=120)
    cleaner.wait(timeout=120)
    assert writer.returncode == 0 and out.strip() == "ok" and cleaner.returncode == 0, err
    assert target.stat().st_size == 200000 and not list(tmp_path.glob(".*.tmp"))


# ------------------------------------------------------------------------------------------ atomic figures
def test_mc_figures_are_written_atomically(tmp_path, monkeypatch):
    """A run killed while saving its figure must leave the previous figure (today: a truncated PNG)."""
    import wannmag._atomic as atomic
    from wannmag.magnetism.montecarlo.plot import plot_curves, plot_dilution

    T = np.linspace(5.0, 30.0, 4)
    curve = {"T": T, **{q: (np.ones(4), np.zeros(4)) for q in ("M", "Q", "chi", "energy", "C", "U4")}}
    png = tmp_path / "mc_curves.png"
    png.write_bytes(b"previous figure")

    def killed(src, dst):
        raise KeyboardInterrupt("kill")

    monkeypatch.setattr(atomic.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        plot_curves({"3x3x1": curve}, png, title="t")
    assert png.read_bytes() == b"previous figure" and not list(tmp_path.glob(".*.tmp"))

    class D:
        fractions, tc, tc_error = [0.0, 0.1], [20.0, None], [1.0, None]

    dpng = tmp_path / "mc_dilution.png"
    dpng.write_bytes(b"previous")
    with pytest.raises(KeyboardInterrupt):
        plot_dilution(D(), dpng)
    assert dpng.read_bytes() == b"previous"
    monkeypatch.undo()
    plot_curves({"3x3x1": curve}, png, title="t")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_vacancy_figure_is_written_atomically(tmp_path, monkeypatch):
    import wannmag._atomic as atomic
    from wannmag.workflows.vacancy import plot_tn_vs_x

    png = tmp_path / "tn_vs_x.png"
    png.write_bytes(b"previous")

    def killed(src, dst):
        raise KeyboardInterrupt("kill")

    monkeypatch.setattr(atomic.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        plot_tn_vs_x([0.0, 0.1], [80.0, None], [1.0, None], png)
    assert png.read_bytes() == b"previous" and not list(tmp_path.glob(".*.tmp"))
