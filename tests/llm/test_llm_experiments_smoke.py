import re

import pytest

torch = pytest.importorskip("torch")


def test_soft_thinking_tiny_run_writes_plot(tmp_path, capsys):
    from wannmag.llm.experiments import soft_thinking
    out = tmp_path / "soft.png"
    soft_thinking.main(["--tiny", "--out", str(out)])
    assert out.stat().st_size > 1000
    text = capsys.readouterr().out
    assert "pass@1" in text and "gumbel" in text


def test_llm_does_not_import_the_physics_side():
    import importlib
    import pathlib
    mod = importlib.import_module("wannmag.llm")
    assert "bee_rag" in mod.KERNELS
    pat = re.compile(r"^\s*(from|import)\s+(wannmag\.|\.\.+)(structures|tightbinding|magnetism|workflows)", re.M)
    for f in pathlib.Path(mod.__file__).parent.rglob("*.py"):
        assert not pat.search(f.read_text()), f"{f} imports the physics side"
