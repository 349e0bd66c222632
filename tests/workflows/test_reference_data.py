"""Physics checks on the shipped reference data (data/dft/, made by data/dft/make_reference.py with GPAW).

These read numbers only (no DFT is run): CrI3 monolayer is a ferromagnet with Cr moments ≈ 3 μB, VPS3 a Néel
antiferromagnet with V moments ≈ 3 μB, and the MLWF Hamiltonians reproduce the DFT bands.
"""

import json

import numpy as np
import pytest

from wannmag.workflows.readers import read_wannier_dir
from wannmag.tightbinding.w90 import hr_eigenvalues, read_hr, read_win, read_wsvec

from .conftest import REF


def _energies(mat):
    path = REF / f"{mat}_energies.json"
    if not path.exists():
        pytest.skip(f"{path} not generated yet (data/dft/make_reference.py)")
    return json.loads(path.read_text())


def test_cri3_ferromagnet():
    d = _energies("CrI3")["configurations"]
    assert set(d) >= {"FM", "Neel", "zigzag", "stripy"}
    for c in ("Neel", "zigzag", "stripy"):
        assert d[c]["dE_meV_per_ion_vs_FM"] > 0, c          # FM is the ground state
        assert d[c]["dE_meV_per_ion_vs_FM_same_cell"] > 0, c
    assert d["Neel"]["dE_meV_per_ion_vs_FM"] > d["zigzag"]["dE_meV_per_ion_vs_FM"]
    for c, row in d.items():
        assert all(2.8 < abs(m) < 3.5 for m in row["site_moments_muB"]), (c, row["site_moments_muB"])
        assert not row["warnings"]
    assert d["FM"]["total_moment_muB"] == pytest.approx(6.0, abs=0.05)   # 3 μB per Cr, insulating
    assert min(d["FM"]["gaps_eV"]) > 0.3


def test_vps3_neel_antiferromagnet():
    d = _energies("VPS3")["configurations"]
    assert d["Neel"]["dE_meV_per_ion_vs_FM"] < 0                       # Néel below FM
    assert d["Neel"]["dE_meV_per_ion_vs_FM"] == min(r["dE_meV_per_ion_vs_FM"] for r in d.values())
    for c, row in d.items():
        assert all(2.4 < abs(m) < 3.4 for m in row["site_moments_muB"]), (c, row["site_moments_muB"])
        assert [int(np.sign(m)) for m in row["site_moments_muB"]] == row["pattern"], c
    # V2+ d3: 3 μB per V in the cell moment (the PAW-sphere site moments are smaller, V–S covalency)
    assert d["FM"]["total_moment_muB"] == pytest.approx(6.0, abs=0.05)
    assert min(d["FM"]["gaps_eV"]) > 0.3 and d["Neel"]["gap_eV"] > 0.3


def test_k_sampling_consistency():
    for mat in ("CrI3", "VPS3"):
        e = _energies(mat)
        assert abs(e["k_sampling_check_meV_per_ion"]) < 2.0   # FM in the rectangular cell vs primitive cell


def _wdir(mat):
    d = REF / mat
    if not d.exists():
        pytest.skip(f"{d} not generated yet (data/dft/make_reference.py)")
    return d


@pytest.mark.parametrize("mat", ["CrI3", "VPS3"])
def test_wannier_files_are_standard(mat):
    d = _wdir(mat)
    rec = read_wannier_dir(d)
    nw, proj = (28, ["Cr:d", "I:p"]) if mat == "CrI3" else (34, ["V:d", "S:p", "P:p"])
    assert rec.extra["num_wann"] == nw and "hr_nm" in rec.extra
    metal, ligand = proj[0][:-2], proj[1][:-2]
    for c in ("up", "dn", "nm"):
        win = read_win(d / f"{mat}_{c}.win")
        assert [ln for _, ln in win.projection_lines] == proj and win.num_wann == nw
        text = (d / f"{mat}_{c}.win").read_text()
        for key in ("write_hr", "write_tb", "write_xyz", "use_ws_distance"):
            assert f"{key}" in text
        for ext in ("_hr.dat", "_tb.dat", "_wsvec.dat", "_centres.xyz"):
            assert (d / f"{mat}_{c}{ext}").exists() or (d / f"{mat}_{c}{ext}.gz").exists(), ext
        q = json.loads((d / f"{mat}_{c}_quality.json").read_text())
        assert q["passed"] and q["max_centre_offset"] < 0.5 and q["max_spread"] < 6.0
        assert q["orbitals"][0] == f"{metal}1:dz2" and q["orbitals"][10] == f"{ligand}3:pz"


@pytest.mark.parametrize("mat", ["CrI3", "VPS3"])
@pytest.mark.parametrize("c", ["up", "dn", "nm"])
def test_wannier_bands_match_dft(mat, c):
    d = _wdir(mat)
    bands = json.loads((d / f"{mat}_{c}_dft_bands.json").read_text())
    R, deg, H = read_hr(d / f"{mat}_{c}_hr.dat")
    k = np.array(bands["kpoints_frac"])
    ew = hr_eigenvalues(k, R, deg, H)
    ed = np.array(bands["bands"])
    if bands["isolated"]:
        err = np.abs(np.sort(ed, axis=1) - ew).max()
    else:
        lo, hi = bands["frozen_window"]
        err = max(np.abs(e[(e >= lo) & (e <= hi)][:, None] - w[None, :]).min(axis=1).max() for e, w in zip(ed, ew))
    assert 1000 * err < 20.0
    if mat == "CrI3":
        assert bands["isolated"] and ed.shape[1] == 28


@pytest.mark.parametrize("c", ["up", "dn", "nm"])
def test_cri3_interpolated_bands_on_path(c):
    """Off the Wannier k-mesh: DFT (non-self-consistent) bands along Γ–M–K–Γ vs the Wannier interpolation."""
    d = _wdir("CrI3")
    p = d / f"CrI3_{c}_dft_path.json"
    if not p.exists():
        pytest.skip(f"{p} not generated")
    path = json.loads(p.read_text())
    R, deg, H = read_hr(d / f"CrI3_{c}_hr.dat")
    ws = read_wsvec(d / f"CrI3_{c}_wsvec.dat", R, H.shape[1])
    ew = hr_eigenvalues(np.array(path["kpoints_frac"]), R, deg, H, ws)
    err = 1000 * np.abs(np.sort(np.array(path["bands"]), axis=1) - ew).max()
    assert err == pytest.approx(path["max_error_meV"], abs=0.5)
    assert err < 50.0


def test_data_size():
    total = sum(p.stat().st_size for p in REF.rglob("*") if p.is_file())
    assert total < 30e6
    assert not list(REF.rglob("*.gpw")) and not list(REF.rglob("*.mmn")) and not list(REF.rglob("*.amn"))


@pytest.mark.parametrize("mat", ["CrI3", "VPS3"])
def test_energy_mapping_of_the_reference(mat):
    """J1–J3 from the shipped energies (H = Σ_{i<j} J S_i·S_j, each bond once, S = 3/2, J > 0 AF, meV): the four
    orders in one rectangular cell determine them exactly, the primitive-cell FM/Néel agree within the k-sampling
    check; CrI3 1NN ferromagnetic, VPS3 1NN antiferromagnetic and dominant."""
    from wannmag.workflows.reference import reference_exchange

    _energies(mat)
    cif = REF.parent / "structures" / f"{mat}_monolayer.cif"
    same_cell, _ = reference_exchange(REF / f"{mat}_energies.json", cif,
                                      configurations=["FM_rect", "Neel", "zigzag", "stripy"])
    fit, model = reference_exchange(REF / f"{mat}_energies.json", cif)
    assert np.abs(fit.residuals).max() < 0.1                 # meV per ion, all five configurations
    assert fit.J == pytest.approx(same_cell.J, abs=0.05)
    J1, J2, J3 = fit.J
    if mat == "CrI3":
        assert J1 < 0 and abs(J1) > abs(J2) > abs(J3)
    else:
        assert J1 > 0 and J1 > abs(J2) and J1 > abs(J3)
    assert len(model.bonds) == 12 and {b.shell for b in model.bonds} == {1, 2, 3}


def test_reference_reader_errors(tmp_path):
    from wannmag.workflows.reference import ReferenceError, load_energies, reference_exchange

    with pytest.raises(ReferenceError, match="no such file"):
        load_energies(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"configurations": {"FM": {"energy_eV_per_cell": 1.0}}')
    with pytest.raises(ReferenceError, match="bad.json"):
        load_energies(bad)
    bad.write_text('{"configurations": {"FM": {"energy_eV_per_cell": 1.0}}}')
    with pytest.raises(ReferenceError, match="FM lacks pattern, supercell"):
        load_energies(bad)
    with pytest.raises(ReferenceError, match="no configuration"):
        reference_exchange(REF / "CrI3_energies.json", REF.parent / "structures" / "CrI3_monolayer.cif",
                           configurations=["FM", "ferri"])
