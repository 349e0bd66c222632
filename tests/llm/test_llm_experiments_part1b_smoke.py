"""Part-1 experiment entry points (issue 23: they never ran in tests): Swift Study and RioRAG end to end in
--tiny mode."""

import importlib

import pytest

torch = pytest.importorskip("torch")

CASES = [("swift_study", "predicted influence"), ("riorag", "GRPO, length decay on")]


@pytest.mark.parametrize("name,needle", CASES)
def test_tiny_run_writes_plot(name, needle, tmp_path, capsys):
    mod = importlib.import_module(f"wannmag.llm.experiments.{name}")
    out = tmp_path / f"{name}.png"
    mod.main(["--tiny", "--out", str(out)])
    assert out.stat().st_size > 1000
    assert needle in capsys.readouterr().out
