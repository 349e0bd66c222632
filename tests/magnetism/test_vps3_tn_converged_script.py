"""data/mc/vps3_tn_converged.py (issue 19, item 4): the --quick mode writes the issue's schema, resumes from its
checkpoints with the identical result, and the T_N rule (three largest consecutive pairs within 5 %) is applied
exactly.  Convention: H = Σ_{i<j} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i, J > 0 AF, meV; temperatures in K."""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("vps3_tn_converged", ROOT / "data" / "mc" / "vps3_tn_converged.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_quick_mode_schema_and_resume(script, tmp_path):
    args = ["--quick", "--threads", "1", "--workdir", str(tmp_path / "w"), "--out", str(tmp_path / "tn.json")]
    out = script.main(args)
    d = json.loads((tmp_path / "tn.json").read_text())
    for k in ("sizes", "crossings", "TN_K", "TN_err_K", "TN_reason", "torelli_olsen_K", "rg_estimate_K", "algorithm",
              "binder", "swap_acceptance_min", "refined_runs", "first_pass"):
        assert k in d, k
    assert d["quick"] and d["sizes"] == [6, 8, 10] and d["binder"] == "easy-axis"
    assert d["algorithm"].startswith("cluster")
    assert d["TN_K"] is None and "at least four" in d["TN_reason"]   # three sizes: no verdict, said so
    for r in d["crossings"]:
        assert set(r) >= {"pair", "T_K", "err_K"}
    for run in d["refined_runs"]:
        assert 0.0 <= run["swap_acceptance_min"] <= 1.0 and run["replicas"] >= 4
    assert d["torelli_olsen_K"] is None or d["torelli_olsen_K"] > 0
    # a second invocation resumes from the finished checkpoints: the identical analysis
    again = script.main(args)
    assert again["crossings"] == out["crossings"] and again["peaks_chi_axis"] == out["peaks_chi_axis"]
    assert [r["window_K"] for r in again["refined_runs"]] == [r["window_K"] for r in out["refined_runs"]]


def test_tn_rule(script):
    sizes = [32, 48, 64, 96, 128]
    rows = [{"pair": [a, b], "T_K": t, "err_K": 1.0} for (a, b), t in
            (((32, 48), 150.0), ((48, 64), 200.0), ((64, 96), 201.0), ((96, 128), 204.0))]
    v = script.tn_verdict(sizes, rows)
    assert v["TN_K"] == 204.0 and v["largest_pairs"] == [[48, 64], [64, 96], [96, 128]]
    assert v["TN_err_K"] == pytest.approx((1.0 + ((200 - 201.6667) ** 2 + (201 - 201.6667) ** 2
                                                  + (204 - 201.6667) ** 2) / 3) ** 0.5, rel=1e-4)
    rows[1]["T_K"] = 190.0   # 190, 201, 204: 7 % apart
    v = script.tn_verdict(sizes, rows)
    assert v["TN_K"] is None and "not converged" in v["TN_reason"]
    v = script.tn_verdict(sizes, rows[:-1])
    assert v["TN_K"] is None and "96/128" in v["TN_reason"]


def test_replica_rule_against_the_calibration_runs(script):
    """On 160–320 K (data/mc/VPS3_cluster_fss_64.json: 12 replicas gave swap acceptances 0.06–0.11 at L = 24 and 0
    at L = 64) the rule asks for more than 12 at L = 24 and about four times as many at L = 64."""
    assert 12 < script.n_replicas(160, 320, 2 * 24 * 24, 1.6) <= 25
    assert script.n_replicas(160, 320, 2 * 64 * 64, 1.6) >= 4 * 12


def test_from_result_states_the_verdict_of_a_stored_run(script, tmp_path, capsys):
    """--from-result: the verdict from a finished `wannmag mc` run (the stored easy-axis run L = 24–64) — the curves
    re-analysed by tc.analyse_sizes give the run's own crossings; the rule gives T_N only within 5 %."""
    src = ROOT / "data" / "mc" / "VPS3_cluster_fss_64_axis.json"
    stored = json.loads(src.read_text())
    out = script.main(["--from-result", str(src), "--out", str(tmp_path / "tn.json")])
    by = {tuple(int(s.split("x")[0]) for s in c["sizes"]): c["T"] for c in stored["binder_crossings"]}
    assert out["sizes"] == [24, 36, 48, 64] and out["binder"] == "easy-axis"
    assert out["largest_pairs"] == [[24, 36], [36, 48], [48, 64]]
    ts = [by[(24, 36)], by[(36, 48)], by[(48, 64)]]
    spread = (max(ts) - min(ts)) / (sum(ts) / 3)
    assert out["relative_spread"] == pytest.approx(spread)
    assert (out["TN_K"] is not None) == (spread <= 0.05)
    if out["TN_K"] is not None:
        assert out["TN_K"] == pytest.approx(by[(48, 64)])
    # a damaged result: one error line, exit status 2 (SystemExit with the message)
    bad = tmp_path / "bad.json"
    bad.write_text('{"sizes": ["24x24x1"]}')
    with pytest.raises(SystemExit) as exc:
        script.main(["--from-result", str(bad), "--out", str(tmp_path / "x.json")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("wannmag: error: ") and "bad.json" in err[0]


def test_from_result_merges_files_by_size(script, tmp_path, capsys):
    """Several result files: their runs are analysed together.  Splitting the stored L = 48–128 run into two files
    (48, 64 | 96, 128) gives the crossings of the whole file exactly; a size given twice is one error line."""
    src = ROOT / "data" / "mc" / "VPS3_cluster_fss_128_axis.json"
    stored = json.loads(src.read_text())
    whole = script.main(["--from-result", str(src), "--out", str(tmp_path / "whole.json")])
    got = {tuple(r["pair"]): r["T_K"] for r in whole["crossings"]}
    for c in stored["binder_crossings"]:
        assert got[tuple(int(x.split("x")[0]) for x in c["sizes"])] == pytest.approx(c["T"], abs=1e-9)
    parts = []
    for k, keep in enumerate(([48, 64], [96, 128])):
        d = dict(stored, runs=[r for r in stored["runs"] if r["size"][0] in keep])
        parts.append(tmp_path / f"part{k}.json")
        parts[-1].write_text(json.dumps(d))
    merged = script.main(["--from-result", *map(str, parts), "--out", str(tmp_path / "merged.json")])
    assert merged["sizes"] == [48, 64, 96, 128]
    assert [(r["pair"], r["T_K"]) for r in merged["crossings"]] == [(r["pair"], r["T_K"]) for r in whole["crossings"]]
    assert merged["TN_reason"] == whole["TN_reason"] and merged["binder"] == "easy-axis"
    assert len(merged["result_files"]) == 2 and "seed 12" in merged["algorithm"]
    assert merged["mc_cpu_s"] == [None, None] and merged["mc_command"] == [None, None]
    # provenance given once per file, in the files' order ('unknown' for a CPU time not measured)
    tagged = script.main(["--from-result", *map(str, parts), "--mc-cpu-s", "unknown", "--mc-cpu-s", "12.5",
                          "--out", str(tmp_path / "tagged.json")])
    assert tagged["mc_cpu_s"] == [None, 12.5]
    with pytest.raises(SystemExit) as exc:  # one value for two files: refused, not attached to the wrong file
        script.main(["--from-result", *map(str, parts), "--mc-cpu-s", "12.5", "--out", str(tmp_path / "x.json")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--mc-cpu-s" in err[0] and "2 result file(s)" in err[0]
    with pytest.raises(SystemExit) as exc:
        script.main(["--from-result", str(parts[0]), str(src), "--out", str(tmp_path / "x.json")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "48x48x1" in err[0] and "already given" in err[0]
