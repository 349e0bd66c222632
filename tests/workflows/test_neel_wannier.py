"""Néel-reference MLWF models (issue 17, item 2): wannier_models(config="Neel", nm=False) runs one spin-polarised
Néel calculation with exactly the settings of the FM models, and a Néel Wannier pair on disk is read as an
antiparallel reference by the force theorem (moment signs +1, −1).  Exchange in meV, internal convention
H = Σ_{i<j} J S_i·S_j (each bond once, |S| = S, J > 0 AF).
"""

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from wannmag.structures import cri3_monolayer

ROOT = Path(__file__).resolve().parents[2]
W90 = Path(__file__).resolve().parent / "data" / "w90"


def _script():
    spec = importlib.util.spec_from_file_location("neel_wannier", ROOT / "data" / "exchange" / "neel_wannier.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _record_calls(monkeypatch, tmp_path):
    import wannmag.workflows.dft as dft
    import wannmag.workflows.wannier as wannier

    calls = []

    class Rec:
        def __init__(self, name):
            self.run_dir = str(tmp_path / name)

    def fake_run_dft(structure, config, **kw):
        calls.append(("dft", config, kw))
        return Rec(kw["name"])

    def fake_wannierise(src, **kw):
        calls.append(("wannierise", src, kw))
        return {}

    monkeypatch.setattr(dft, "run_dft", fake_run_dft)
    monkeypatch.setattr(wannier, "wannierise", fake_wannierise)
    monkeypatch.setattr(wannier, "_valence_electrons", lambda atoms: 42)
    return calls


def test_neel_models_use_the_fm_settings(monkeypatch, tmp_path):
    from wannmag.workflows.wannier import wannier_models

    calls = _record_calls(monkeypatch, tmp_path)
    s = cri3_monolayer()
    wannier_models(s, preset="accurate", U=3.0, workdir=tmp_path, outdir=tmp_path / "w", config="FM")
    fm = [c for c in calls if c[0] == "dft"]
    calls.clear()
    wannier_models(s, preset="accurate", U=3.0, workdir=tmp_path, outdir=tmp_path / "w", config="Neel", nm=False)
    neel = [c for c in calls if c[0] == "dft"]
    # default: the FM run and the spin-averaged NM run; Néel with nm=False: one run only
    assert [c[1] for c in fm] == ["FM", "NM"]
    assert [c[1] for c in neel] == ["Neel"]
    kw_fm, kw_neel = dict(fm[0][2]), dict(neel[0][2])
    assert kw_fm.pop("name") == "FM_wannier" and kw_neel.pop("name") == "Neel_wannier"
    assert kw_fm == kw_neel  # same preset, U, bands, converged bands, k-mesh, wave functions
    assert kw_neel["write_wavefunctions"] and kw_neel["U"] == 3.0
    wz = [c for c in calls if c[0] == "wannierise"]
    assert len(wz) == 1 and wz[0][2]["projections"] == "dp"


def test_neel_configuration_is_the_primitive_cell():
    from wannmag.structures import honeycomb_configuration

    s = cri3_monolayer()
    neel, fm = honeycomb_configuration(s, "Neel"), honeycomb_configuration(s, "FM")
    assert list(neel.pattern) == [1, -1]
    assert np.allclose(neel.atoms.cell.array, fm.atoms.cell.array)
    assert np.allclose(neel.atoms.positions, fm.atoms.positions)
    assert neel.atoms.get_initial_magnetic_moments()[:2].tolist() == [3.0, -3.0]


def _write_neel_pair(dest: Path):
    """The shipped FM CrI3 pair (data/dft/CrI3, Cr d + I p) with the on-site exchange splitting of the second Cr
    reversed: the Wannier pair of an antiparallel (Néel) reference of the same model, written as Wannier90 files."""
    from wannmag.tightbinding.w90 import read_hr, write_hr

    src = ROOT / "data" / "dft" / "CrI3"
    dest.mkdir()
    Ru, du, Hu = read_hr(src / "CrI3_up_hr.dat.gz")
    Rd, dd, Hd = read_hr(src / "CrI3_dn_hr.dat.gz")
    assert np.array_equal(Ru, Rd)
    r0 = int(np.nonzero(np.all(Ru == 0, axis=1))[0][0])
    avg, half = 0.5 * (Hu + Hd), 0.5 * (Hu[r0] - Hd[r0])
    split = np.zeros_like(half)  # the on-site d blocks of the exchange splitting: Cr1 kept, Cr2 reversed
    split[:5, :5], split[5:10, 5:10] = half[:5, :5], -half[5:10, 5:10]
    Nu, Nd = avg.copy(), avg.copy()  # everything else spin-averaged
    Nu[r0] += split
    Nd[r0] -= split
    write_hr(dest / "CrI3_up_hr.dat", Ru, Nu, du.astype(int))
    write_hr(dest / "CrI3_dn_hr.dat", Rd, Nd, dd.astype(int))
    for c in ("up", "dn"):
        for ext in (".win", "_centres.xyz", "_wsvec.dat.gz"):
            shutil.copy(src / f"CrI3_{c}{ext}", dest / f"CrI3_{c}{ext}")


def test_neel_pair_is_an_antiparallel_reference(tmp_path):
    from wannmag.magnetism.mft import hamiltonian_from_tb, lkag_exchange
    from wannmag.tightbinding import read_w90

    _write_neel_pair(tmp_path / "neel")
    fm = hamiltonian_from_tb(read_w90(ROOT / "data" / "dft" / "CrI3", kind="collinear"))
    neel = hamiltonian_from_tb(read_w90(tmp_path / "neel", kind="collinear"))
    assert fm.moment_signs() == [1, 1]
    assert neel.moment_signs() == [1, -1]
    # exchange splittings of the two Cr are opposite in the Néel pair, equal in the FM pair
    tr = [float(np.trace(neel.onsite_splitting(a)).real) for a in neel.magnetic]
    tf = [float(np.trace(fm.onsite_splitting(a)).real) for a in fm.magnetic]
    assert tr[0] == pytest.approx(-tr[1]) and tr[0] == pytest.approx(tf[0]) and tr[0] < 0
    res = lkag_exchange(neel, kmesh=(3, 3, 1), n_electrons=42, n_energy=30, rcut=4.5)
    assert "antiparallel" in res.reference() and list(res.moment_signs) == [1, -1]
    assert np.all(np.isfinite(res.J))


def test_shell_average():
    mod = _script()
    d = [4.04, 4.041, 4.039, 7.0, 7.0, 7.0, 7.0, 7.0, 7.0, 8.08, 8.08, 8.08, 9.0]
    J = [1.0, 1.2, 1.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.3, 0.3, 0.3, 5.0]
    sh = mod.shell_average(d, J, 3)
    assert [s["n_bonds"] for s in sh] == [3, 6, 3]
    assert sh[0]["J"] == pytest.approx(1.1) and sh[0]["spread"] == pytest.approx(0.2)
    assert sh[2]["distance_A"] == pytest.approx(8.08)


@pytest.mark.parametrize("mat", ["CrI3", "VPS3"])
def test_shipped_neel_models(mat):
    """The shipped Néel models (data/dft/<mat>_Neel) are antiparallel references whose force theorem reproduces the
    stored data/exchange/<mat>_neel_mft.json (same settings)."""
    out = ROOT / "data" / "exchange" / f"{mat}_neel_mft.json"
    if not out.exists():
        pytest.skip(f"{out} not produced yet (python data/exchange/neel_wannier.py)")
    stored = json.loads(out.read_text())
    assert stored["neel_reference"]["moment_signs"] == [1, -1]
    assert stored["fm_reference"]["moment_signs"] == [1, 1]
    if mat == "VPS3":  # the 34-orbital model: keep the default run short, CrI3 recomputes
        return
    mod = _script()
    again = mod.force_theorem(ROOT / "data" / "dft" / f"{mat}_Neel", {"CrI3": 8.5, "VPS3": 7.0}[mat])
    for k in ("J1", "J2", "J3"):
        assert again[k] == pytest.approx(stored[k], abs=1e-6)
