"""``wannmag anisotropy``: table, JSON, magnon plot, one-line errors; the summary terms against hand formulas."""

import json

import numpy as np
import pytest
from ase.io import write

from wannmag.cli import main
from wannmag.magnetism import SpinModel
from wannmag.magnetism.anisotropy import anisotropy_summary, kitaev_frame, kitaev_tensor
from wannmag.structures import cri3_monolayer, find_magnetic_sites, neighbour_shells

S = 1.5


@pytest.fixture
def files(tmp_path):
    cif = tmp_path / "CrI3.cif"
    write(cif, cri3_monolayer())
    sub = find_magnetic_sites(cri3_monolayer())
    m = SpinModel.from_sublattice(sub, meta={"structure": str(cif)})
    for b in neighbour_shells(sub, 1)[0].bonds:
        m.add_bond(b.i, b.j, b.R, kitaev_tensor(-2.0, -1.0, -0.1, 0.02, kitaev_frame(sub, b.i, b.j, b.R)))
    m.single_ion = [np.diag([0.0, 0.0, -0.05])] * 2
    path = tmp_path / "model.json"
    m.save(path)
    return cif, path, m


def test_summary_terms(files):
    cif, path, m = files
    s = anisotropy_summary(m, "FM")
    assert s["single_ion"]["delta_meV"] == pytest.approx(S ** 2 * 0.05)
    lam = s["exchange"]["xxz_lambda_meV"]
    assert s["exchange"]["delta_meV"] == pytest.approx(-1.5 * S ** 2 * lam, rel=1e-9)  # 3/2 bonds per ion
    k = s["exchange"]["kitaev"]
    assert (k["K"], k["Gamma"], k["Gamma_prime"]) == pytest.approx((-1.0, -0.1, 0.02), abs=1e-12)
    total = s["dipolar"]["delta_meV"] + s["single_ion"]["delta_meV"] + s["exchange"]["delta_meV"]
    assert s["total_delta_meV"] == pytest.approx(total)
    assert s["easy_axis"] == "out-of-plane"


def test_cli_table_json_plot(files, tmp_path, capsys):
    cif, path, m = files
    assert main(["anisotropy", str(path), "--plot", str(tmp_path / "bands.png")]) == 0
    out = capsys.readouterr().out
    for word in ("dipolar", "single-ion", "XXZ", "Kitaev K", "Γ′", "total", "predicted easy axis: out-of-plane",
                 "magnon gap"):
        assert word in out
    assert (tmp_path / "bands.png").stat().st_size > 10000
    assert main(["anisotropy", str(cif), "--order", "Neel", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["order"] == "Neel" and d["single_ion"] is None and d["dipolar"]["delta_meV"] > 0
    assert main(["anisotropy", str(path), "--order", "zigzag", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_sites"] == 4


def test_cli_errors_are_one_line(files, tmp_path, capsys):
    cif, path, m = files
    assert main(["anisotropy", str(tmp_path / "none.json")]) == 2
    assert main(["anisotropy", str(cif), "--plot", str(tmp_path / "x.png")]) == 2
    assert main(["anisotropy", str(path), "--pattern", "1,x"]) == 2
    assert main(["anisotropy", str(path), "--order", "spiral"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 4 and all(line.startswith("wannmag: error:") for line in err)
