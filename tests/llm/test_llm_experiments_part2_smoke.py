"""Every part-2 experiment runs end to end in --tiny mode, prints its table and writes its plot."""

import importlib

import pytest

torch = pytest.importorskip("torch")

CASES = [("beamlora", "BeamLoRA r=2"), ("apex", "random T/D"), ("itt", "ITT w/o residual"),
         ("mohd", "dense d=32"), ("upit", "plain upcycling"), ("cd_rlhf", "distinct-3"),
         ("ma_rlhf", "perplexity cuts")]


@pytest.mark.parametrize("name,needle", CASES)
def test_tiny_run_writes_plot(name, needle, tmp_path, capsys):
    mod = importlib.import_module(f"wannmag.llm.experiments.{name}")
    out = tmp_path / f"{name}.png"
    mod.main(["--tiny", "--out", str(out)])
    assert out.stat().st_size > 1000
    assert needle in capsys.readouterr().out


def test_every_kernel_is_listed_and_importable():
    import wannmag.llm as llm
    for k in llm.KERNELS:
        importlib.import_module(f"wannmag.llm.{k}")
        importlib.import_module(f"wannmag.llm.experiments.{k}")
