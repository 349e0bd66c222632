"""Part-1 experiment entry points (issue 23: they never ran in tests): BEE-RAG and KAPE end to end in --tiny mode."""

import importlib

import pytest

torch = pytest.importorskip("torch")

CASES = [("bee_rag", "acc balanced (solve)"), ("kape", "26 random neurons off")]


@pytest.mark.parametrize("name,needle", CASES)
def test_tiny_run_writes_plot(name, needle, tmp_path, capsys):
    mod = importlib.import_module(f"wannmag.llm.experiments.{name}")
    out = tmp_path / f"{name}.png"
    mod.main(["--tiny", "--out", str(out)])
    assert out.stat().st_size > 1000
    assert needle in capsys.readouterr().out
