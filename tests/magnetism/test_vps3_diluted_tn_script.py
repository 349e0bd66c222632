"""data/mc/vps3_diluted_tn.py (issue 19 item 4 for the diluted lattices): the --quick mode writes its entry per
vacancy fraction (other fractions kept), resumes from its checkpoints with the identical result, reuses the runs
of a smaller set of sizes, applies the T_N rule of vps3_tn_converged.py, and refuses a bad fraction with one line.
Convention: H = Σ_{i<j} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i, J > 0 AF, meV; temperatures in K."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "data" / "mc" / "vps3_diluted_tn.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("vps3_diluted_tn", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_quick_entry_resume_and_other_fractions_kept(script, tmp_path):
    out = tmp_path / "dil.json"
    common = ["--quick", "--tmin", "100", "--tmax", "400", "--work", str(tmp_path / "w"), "--out", str(out)]
    e1 = script.main(["--x", "0.1", *common])
    d = json.loads(out.read_text())
    assert set(d["x"]) == {"0.1"} and d["x"]["0.1"]["quick"]
    for k in ("sizes", "realisations", "crossings", "TN_K", "TN_err_K", "TN_reason", "largest_pairs", "window_K",
              "binder", "settings", "cpu_s", "command"):
        assert k in e1, k
    assert e1["sizes"] == [6, 8, 10] and e1["realisations"] == 1 and e1["binder"] == "easy-axis"
    assert e1["TN_K"] is None and "at least four" in e1["TN_reason"]  # three sizes: no verdict, and why
    for r in e1["crossings"]:
        assert set(r) >= {"pair", "T_K", "err_K"} and 100.0 <= r["T_K"] <= 400.0
    # resumed from the finished checkpoints: the identical analysis, the file rewritten with the same entry
    e2 = script.main(["--x", "0.1", *common])
    assert e2["crossings"] == e1["crossings"] and e2["analysis_tc_K"] == e1["analysis_tc_K"]
    # another fraction is added beside the first, not over it
    script.main(["--x", "0.05", *common])
    d = json.loads(out.read_text())
    assert list(d["x"]) == ["0.05", "0.1"] and d["x"]["0.1"]["crossings"] == e1["crossings"]
    assert d["perfect_lattice"]["TN_K"] == pytest.approx(json.loads(
        (ROOT / "data" / "mc" / "VPS3_TN_converged.json").read_text())["TN_K"])


def test_checkpoints_keyed_without_sizes(script, tmp_path):
    """The work directory is keyed by model, settings and x only: a run with fewer sizes leaves checkpoints that
    the larger run reuses (same file names), so sizes can be added later."""
    work = tmp_path / "w"
    base = ["--x", "0.1", "--quick", "--tmin", "100", "--tmax", "400", "--work", str(work)]
    script.main([*base, "--out", str(tmp_path / "a.json")])
    files = sorted(p.name for p in work.rglob("checkpoint_*.npz"))
    assert files and all("x0.1_" in f for f in files)
    assert len({p.parent for p in work.rglob("checkpoint_*.npz")}) == 1


@pytest.mark.parametrize("bad", [["--x", "1.2"], ["--x", "0"], ["--x", "0.1", "--sizes", "8"]])
def test_bad_input_one_line(bad, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, str(SCRIPT), *bad, "--work", str(tmp_path), "--out", str(tmp_path / "o.json")],
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wannmag: error:"), p.stderr
    assert not (tmp_path / "o.json").exists()
