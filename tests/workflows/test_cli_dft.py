"""`wannmag dft` sub-command (with the fake calculator)."""

import json

from wannmag.cli import main

from .conftest import REPO


def test_cli_table(tmp_path, fake_gpaw, capsys):
    cif = REPO / "data" / "structures" / "CrI3_monolayer.cif"
    rc = main(["dft", str(cif), "--config", "FM", "Neel", "zigzag", "--preset", "fast", "--U", "3.0",
               "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0
    lines = [ln for ln in out.splitlines() if ln.split() and ln.split()[0] in ("FM", "Neel", "zigzag")]
    assert len(lines) == 3
    assert "E-E_FM (meV/ion)" in out
    fm = lines[0].split()
    assert float(fm[3]) == 0.0  # E - E_FM of FM itself
    assert (tmp_path / "zigzag" / "summary.json").exists()
    # resumed on a second call, JSON output
    rc = main(["dft", str(cif), "--config", "FM", "--out", str(tmp_path), "--json"])
    data = json.loads(capsys.readouterr().out)
    assert rc == 0 and data["records"][0]["config"] == "FM" and fake_gpaw["cls"].instances == 3


def test_cli_bad_input(tmp_path, capsys):
    rc = main(["dft", str(tmp_path / "nothing.cif"), "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("wannmag: error:") and "nothing.cif" in err[0]
    cif = REPO / "data" / "structures" / "CrI3_monolayer.cif"
    rc = main(["dft", str(cif), "--U", "Cr:3", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "--U" in err[0]
    rc = main(["dft", str(cif), "--config", "helix", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "helix" in err[0]
