"""Spin–orbit anisotropy with the embedded GPAW engine.

``dft``: a small LCAO CrI3 FM calculation (preset fast, 3×3×1 k-mesh, ≈ 1 min on 2 cores) and its force-theorem
MAE: symmetry checks only (time reversal E(n) = E(−n), θ → π − θ about an in-plane two-fold axis of the D3d
layer, E(x) = E(y) for the trigonal layer).
``slow``: the physical number from the colleague's converged ``accurate`` runs (and from this issue's plane-wave run
with converged empty bands) when they exist on this machine; the out-of-plane easy axis expected from experiment
is checked as an expected failure — with the prototype geometry (trigonally compressed CrI6 octahedra) the GPAW
PBE+U force theorem gives an in-plane easy axis, with an ideal octahedron an out-of-plane one (notes/issue8.md).
"""

from pathlib import Path

import numpy as np
import pytest
import spglib

from wannmag.structures import cri3_monolayer

pytest.importorskip("gpaw")


@pytest.fixture(autouse=True)
def _single_thread(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")


def in_plane_two_fold_axis(atoms) -> float:
    """φ (degrees) of an in-plane axis d whose two-fold action on axial vectors maps (d, z) → (d, −z)."""
    L = atoms.cell.array.T
    sym = spglib.get_symmetry((atoms.cell.array, atoms.get_scaled_positions(), atoms.numbers))
    for R in sym["rotations"]:
        Rc = L @ R @ np.linalg.inv(L)
        Rax = np.linalg.det(Rc) * Rc
        if np.isclose(Rax[2, 2], -1):
            w, v = np.linalg.eig(Rax)
            d = np.real(v[:, np.argmin(abs(w - 1))])
            return float(np.degrees(np.arctan2(d[1], d[0])))
    raise AssertionError("no in-plane two-fold axis")


def check_symmetry(res, phi_c):
    Ez, Ex, Ey = res.energy_of(0, 0), res.energy_of(90, 0), res.energy_of(90, 90)
    scale = abs(Ez - Ex)
    assert scale > 0.05  # meV per cell: the iodine SOC gives a sizeable anisotropy
    assert res.energy_of(180, 0) == pytest.approx(Ez, abs=1e-6)                           # time reversal
    assert res.energy_of(30, 0) == pytest.approx(res.energy_of(150, 180), abs=1e-4)       # time reversal
    assert abs(res.energy_of(30, phi_c) - res.energy_of(150, phi_c)) < max(0.005, 0.01 * scale)  # C2 axis
    assert abs(Ex - Ey) < max(0.01, 0.02 * scale)                                          # trigonal: E(x) = E(y)
    return Ez, Ex, Ey


@pytest.mark.dft
def test_gpaw_mae_symmetry_small_lcao(tmp_path):
    from wannmag.magnetism.anisotropy.soc import gpaw_mae
    from wannmag.workflows.dft import run_dft

    atoms = cri3_monolayer()
    phi_c = in_plane_two_fold_axis(atoms)
    rec = run_dft(atoms, "FM", preset="fast", U=3.0, kpts=(3, 3, 1), workdir=tmp_path, log=False)
    dirs = [(0, 0), (90, 0), (90, 90), (180, 0), (30, 0), (150, 180), (30, phi_c), (150, phi_c)]
    res = gpaw_mae(rec.gpw, directions=dirs)
    assert res.n_magnetic == 2 and res.warnings == []
    check_symmetry(res, phi_c)


ACCURATE = [Path("/work/runs/conv/FM_e450_k6"), Path(__file__).resolve().parents[2] / "data" / "dft" / "FM_e450_k6",
            Path("/work/runs/issue8/FM_e450_k6_bands46")]


def _accurate_runs():
    return [p for p in ACCURATE if (p / "summary.json").exists() and list(p.glob("*.gpw"))]


@pytest.mark.slow
@pytest.mark.parametrize("run", ACCURATE, ids=lambda p: p.name)
def test_cri3_mae_accurate_runs(run):
    from wannmag.magnetism.anisotropy.soc import gpaw_mae

    if run not in _accurate_runs():
        pytest.skip(f"{run}: no converged accurate run on this machine")
    phi_c = in_plane_two_fold_axis(cri3_monolayer())
    res = gpaw_mae(run, directions=[(0, 0), (90, 0), (90, 90), (180, 0), (30, 0), (150, 180), (30, phi_c),
                                    (150, phi_c)])
    check_symmetry(res, phi_c)
    print(res.table())
    assert 0.05 < abs(res.mae()) < 3.0  # meV per Cr


@pytest.mark.slow
@pytest.mark.xfail(reason="prototype CrI3 (ligands at x = 1/3, trigonally compressed CrI6) gives an in-plane "
                          "MAE, an ideal octahedron an out-of-plane one (notes/issue8.md): needs a relaxed "
                          "geometry; experiment and most DFT studies give out-of-plane", strict=False)
def test_cri3_easy_axis_out_of_plane():
    from wannmag.magnetism.anisotropy.soc import gpaw_mae

    runs = _accurate_runs()
    if not runs:
        pytest.skip("no converged accurate CrI3 run on this machine")
    assert gpaw_mae(runs[-1], directions=[(0, 0), (90, 0)]).mae() > 0


@pytest.mark.slow
@pytest.mark.dft
def test_vps3_dipolar_comparable_to_soc(tmp_path):
    """VPS3 (V2+ d3, light S ligands): the dipolar anisotropy is of the same order as or larger than the spin–orbit
    one, for the FM and the Néel state (LCAO 3×3, U = 3 eV, prototype geometry; ≈ 3 min)."""
    from wannmag.magnetism.anisotropy import dipolar_anisotropy
    from wannmag.magnetism.anisotropy.soc import gpaw_mae
    from wannmag.structures import vps3_monolayer
    from wannmag.workflows.dft import run_dft

    for order in ("FM", "Neel"):
        rec = run_dft(vps3_monolayer(), order, preset="fast", U=3.0, kpts=(3, 3, 1), workdir=tmp_path, log=False)
        soc = gpaw_mae(rec.gpw, directions=[(0, 0), (90, 0), (90, 90)]).mae()
        dip = dipolar_anisotropy(vps3_monolayer(), order).delta
        print(f"VPS3 {order}: SOC {soc:+.5f}, dipolar {dip:+.5f} meV/V")
        assert abs(dip) >= 0.3 * abs(soc)
