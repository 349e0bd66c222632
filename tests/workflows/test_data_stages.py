"""The stage runner of the production data scripts (data/_stages.py): order, a failing stage does not stop the
others (exit 1), an unknown stage is refused before any work (exit 2), --dry-run starts nothing, wall times are
recorded; and both scripts that use it parse --dry-run without starting DFT."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _stages():
    spec = importlib.util.spec_from_file_location("_stages", ROOT / "data" / "_stages.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_run_stages_order_failure_and_timings(tmp_path, capsys):
    st = _stages()
    ran = []

    def bad(w):
        ran.append("b")
        raise RuntimeError("boom")

    stages = {"a": lambda w: ran.append(("a", w)), "b": bad, "c": lambda w: ran.append("c")}
    assert st.run_stages(stages, "doc", str(tmp_path), [str(tmp_path)]) == 1
    assert ran == [("a", tmp_path), "b", "c"]
    out = capsys.readouterr().out
    assert "FAILED stages:\nb: RuntimeError: boom" in out
    t = json.loads((tmp_path / "stage_timings.json").read_text())
    assert set(t) == {"a", "c"} and all(v["wall_s"] >= 0 for v in t.values())


def test_unknown_stage_and_dry_run_start_nothing(tmp_path, capsys):
    st = _stages()
    ran = []
    stages = {"a": lambda w: ran.append("a")}
    assert st.run_stages(stages, "doc", str(tmp_path), [str(tmp_path), "a", "zz"]) == 2
    assert "unknown stage zz" in capsys.readouterr().err
    assert st.run_stages(stages, "doc", str(tmp_path), ["a"]) == 2  # a stage where the work directory belongs
    assert st.run_stages(stages, "doc", str(tmp_path), [str(tmp_path), "--dry-run"]) == 0
    assert ran == [] and not (tmp_path / "stage_timings.json").exists()


def test_gzip_copy_is_reproducible(tmp_path):
    import gzip

    st = _stages()
    src = tmp_path / "x.dat"
    src.write_bytes(b"1 2 3\n" * 100)
    st.gzip_copy(src, tmp_path / "a.gz")
    st.gzip_copy(src, tmp_path / "b.gz")
    assert (tmp_path / "a.gz").read_bytes() == (tmp_path / "b.gz").read_bytes()
    assert gzip.decompress((tmp_path / "a.gz").read_bytes()) == src.read_bytes()


def test_scripts_dry_run(tmp_path):
    for script, stage in (("data/dft/make_reference.py", "cri3-energies"), ("data/exchange/neel_wannier.py",
                                                                          "cri3-mft")):
        p = subprocess.run([sys.executable, str(ROOT / script), str(tmp_path), stage, "--dry-run"],
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        assert f"stages: {stage} (dry run" in p.stdout
        assert not (tmp_path / "stage_timings.json").exists()
