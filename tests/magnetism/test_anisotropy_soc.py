"""Spin–orbit anisotropy: VASP readers (OUTCAR + INCAR, vasprun.xml), SAXIS rotation, MAE bookkeeping."""

import numpy as np
import pytest

from wannmag.magnetism.anisotropy.soc import (MAEResult, SOCError, direction_angles, read_vasp_mae, read_vasp_run,
                                              saxis_to_cartesian, spin_direction, split_sia_exchange)


def test_saxis_rotation_vasp_convention():
    assert np.allclose(saxis_to_cartesian([0, 0, 3], [0, 0, 1]), [0, 0, 3])
    assert np.allclose(saxis_to_cartesian([0, 0, 3], [1, 0, 0]), [3, 0, 0])
    assert np.allclose(saxis_to_cartesian([0, 0, 1], [1, 1, 0]), [np.sqrt(0.5), np.sqrt(0.5), 0])
    assert np.allclose(saxis_to_cartesian([0, 0, 1], [0, 1, 0]), [0, 1, 0])
    # a moment given along x' of SAXIS = z stays along x; the SAXIS frame is orthonormal
    R = np.array([saxis_to_cartesian(e, [0.3, -0.5, 0.8]) for e in np.eye(3)])
    assert np.allclose(R @ R.T, np.eye(3)) and np.linalg.det(R) == pytest.approx(1.0)
    for th, ph in ((0, 0), (90, 0), (90, 90), (35, 210)):
        t, p = direction_angles(spin_direction(th, ph))
        assert np.allclose(spin_direction(t, p), spin_direction(th, ph))


OUTCAR = """ vasp.6.4.2 18Apr23 (build ...) complex
   LNONCOLLINEAR =      T    non collinear calculations
   LSORBIT =      T    spin-orbit coupling
 number of electron      54.0000000 magnetization       0.0012      0.0003      6.0001
  free  energy   TOTEN  =       -60.12345678 eV
  energy  without entropy=      -60.12000000  energy(sigma->0) =      -60.12200000
 number of electron      54.0000000 magnetization       0.0010      0.0002      6.0002
  free  energy   TOTEN  =       -60.12345000 eV
  energy  without entropy=      -60.12100000  energy(sigma->0) =      {e}
"""


def _outcar_run(tmp, name, saxis, energy):
    d = tmp / name
    d.mkdir()
    (d / "OUTCAR").write_text(OUTCAR.format(e=energy))
    (d / "INCAR").write_text(f"SYSTEM = CrI3\nLSORBIT = .TRUE.\nSAXIS = {saxis}\nMAGMOM = 0 0 3  0 0 3  18*0 ! two Cr\n")
    return d


def test_outcar_runs_give_directions_and_mae(tmp_path):
    runs = [_outcar_run(tmp_path, "z", "0 0 1", "-60.12150000"),
            _outcar_run(tmp_path, "x", "1 0 0", "-60.12090000"),
            _outcar_run(tmp_path, "y", "0 1 0", "-60.12090100")]
    r = read_vasp_run(runs[1] / "OUTCAR")
    assert r["theta"] == pytest.approx(90.0, abs=0.05) and r["phi"] == pytest.approx(0.0, abs=0.05)
    assert r["n_magnetic"] == 2 and r["energy_eV"] == pytest.approx(-60.1209)
    mae = read_vasp_mae(runs)
    assert mae.n_magnetic == 2
    assert mae.mae() == pytest.approx((-60.120900500 + 60.1215) * 1000 / 2, abs=1e-6)  # +0.3 meV/Cr: out of plane
    assert np.allclose(spin_direction(*mae.easy), [0, 0, 1], atol=1e-3)
    assert "out-of-plane" in mae.table()


VASPRUN = """<?xml version="1.0" encoding="ISO-8859-1"?>
<modeling>
 <incar>
  <v type="logical" name="LSORBIT"> T  </v>
  <v name="SAXIS">      {saxis}</v>
  <v name="MAGMOM">      0 0 3 0 0 3 18*0</v>
 </incar>
 <parameters>
  <separator name="electronic">
   <i type="logical" name="LNONCOLLINEAR"> T  </i>
  </separator>
 </parameters>
 <calculation>
  <scstep><energy><i name="e_fr_energy">   -59.0 </i></energy></scstep>
  <energy>
   <i name="e_fr_energy">    -60.10000000 </i>
   <i name="e_wo_entrp">    -60.10100000 </i>
   <i name="e_0_energy">    {e} </i>
  </energy>
 </calculation>
</modeling>
"""


def test_vasprun_runs(tmp_path):
    paths = []
    for name, saxis, e in (("z", "0 0 1", "-60.2000"), ("x", "1 0 0", "-60.2010"), ("xz", "1 0 1", "-60.2005")):
        p = tmp_path / f"vasprun_{name}.xml"
        p.write_text(VASPRUN.format(saxis=saxis, e=e))
        paths.append(p)
    mae = read_vasp_mae(paths)
    assert np.allclose(mae.theta, [0, 90, 45]) and np.allclose(mae.phi, 0)
    assert mae.mae() == pytest.approx(-0.5)  # in-plane easy axis: −1 meV per cell / 2 ions
    fit = mae.uniaxial_fit()
    assert fit["K1_meV"] + fit["K2_meV"] == pytest.approx(-0.5, abs=1e-9)
    assert fit["rms_meV"] < 1e-9


def test_mae_result_symmetry_helpers():
    th = np.array([0, 90, 90, 180, 30, 150])
    ph = np.array([0, 0, 90, 0, 90, 90])
    E = 1.0 * np.sin(np.radians(th)) ** 2
    r = MAEResult(th, ph, E, 2, "synthetic")
    assert r.energy_of(30, 90) == pytest.approx(r.energy_of(150, 90))
    assert r.mae() == pytest.approx(0.5)
    with pytest.raises(SOCError):
        r.energy_of(60, 0)


def test_bad_vasp_input(tmp_path):
    with pytest.raises(SOCError):
        read_vasp_run(tmp_path / "missing")
    (tmp_path / "OUTCAR").write_text("nothing here\n")
    with pytest.raises(SOCError) as exc:
        read_vasp_run(tmp_path / "OUTCAR")
    assert "energy" in str(exc.value) and "\n" not in str(exc.value)
    (tmp_path / "bad.xml").write_text("<modeling><calculation>")
    with pytest.raises(SOCError):
        read_vasp_run(tmp_path / "bad.xml")
    with pytest.raises(SOCError):
        read_vasp_mae([])


def test_split_sia_exchange_on_a_model():
    """FM and Néel anisotropies of a classical honeycomb model (NN XXZ + uniaxial A) give back λ and A exactly."""
    from wannmag.magnetism import SpinModel
    from wannmag.structures import cri3_monolayer, find_magnetic_sites, neighbour_shells

    sub = find_magnetic_sites(cri3_monolayer())
    m = SpinModel.from_sublattice(sub)
    for b in neighbour_shells(sub, 1)[0].bonds:
        m.add_bond(b.i, b.j, b.R, np.diag([-2.0, -2.0, -2.12]))
    m.single_ion = [np.diag([0.0, 0.0, -0.03])] * 2
    x, z = np.array([1.0, 0, 0]), np.array([0, 0, 1.0])
    d = {p: (m.energy(np.array(p)[:, None] * x) - m.energy(np.array(p)[:, None] * z)) / 2 for p in ((1, 1), (1, -1))}
    r = split_sia_exchange(d[(1, 1)], d[(1, -1)])
    assert r["lambda_nn_meV"] == pytest.approx(-0.12, abs=1e-12)
    assert r["A_zz_minus_A_perp_meV"] == pytest.approx(-0.03, abs=1e-12)


def test_gpaw_run_directory_settings(tmp_path):
    """The SOC band window and the warning come from a wannmag run directory's summary.json."""
    import json

    from wannmag.magnetism.anisotropy.soc import _converged_bands, _gpaw_warnings

    gpw = tmp_path / "FM.gpw"
    gpw.write_text("")
    (tmp_path / "summary.json").write_text(json.dumps({"parameters": {"mode": "pw", "converge_bands": None}}))
    assert _converged_bands(gpw) is None
    assert "only the occupied bands" in _gpaw_warnings(gpw)[0]
    (tmp_path / "summary.json").write_text(json.dumps({"parameters": {"mode": "pw", "converge_bands": 46}}))
    assert _converged_bands(gpw) == 46 and _gpaw_warnings(gpw) == []
    (tmp_path / "summary.json").write_text(json.dumps({"parameters": {"mode": "lcao", "converge_bands": None}}))
    assert _gpaw_warnings(gpw) == []
