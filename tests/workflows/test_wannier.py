"""Wannierisation helpers: the GPAW → Wannier90 orbital order, projections, band windows, hr.dat Fourier sums,
and the one-line error when wannier90.x is missing."""

import numpy as np
import pytest

from wannmag.structures import cri3_monolayer, vps3_monolayer
from wannmag.tightbinding.model import TBFileError
from wannmag.tightbinding.w90 import hr_eigenvalues, read_hr, read_win
from wannmag.workflows.wannier import (GPAW_ORDER, W90_FROM_GPAW, W90_ORDER, WannierError, _ligand_elements,
                                       _partner_elements, _projector_offset, choose_window, select_orbitals,
                                       wannier90_executable, wannierise)

from .conftest import DATA

# Wannier90 user guide, Table 3.2 (real harmonics up to normalisation), as functions of (x, y, z) on the unit sphere
W90_FUNCS = {"pz": lambda x, y, z: z, "px": lambda x, y, z: x, "py": lambda x, y, z: y,
             "dz2": lambda x, y, z: 2 * z * z - x * x - y * y, "dxz": lambda x, y, z: x * z,
             "dyz": lambda x, y, z: y * z, "dx2-y2": lambda x, y, z: x * x - y * y, "dxy": lambda x, y, z: x * y}


def test_permutation_values():
    assert W90_FROM_GPAW[1] == [1, 2, 0]          # pz, px, py  <-  GPAW (y, z, x)
    assert W90_FROM_GPAW[2] == [2, 3, 1, 4, 0]    # dz2, dxz, dyz, dx2-y2, dxy  <-  GPAW (xy, yz, 3z2-r2, zx, x2-y2)
    assert W90_ORDER[2] == ["dz2", "dxz", "dyz", "dx2-y2", "dxy"] and W90_ORDER[1] == ["pz", "px", "py"]


def test_permutation_against_gpaw_harmonics():
    """GPAW's real harmonics Y_L (gpaw/sphere/spherical_harmonics.py), permuted, are Wannier90's, with + sign."""
    sh = pytest.importorskip("gpaw.sphere.spherical_harmonics")
    assert sh.names[1] == GPAW_ORDER[1] and sh.names[2] == GPAW_ORDER[2]
    rng = np.random.default_rng(1)
    pts = rng.normal(size=(50, 3))
    pts /= np.linalg.norm(pts, axis=1)[:, None]
    for l, first_L in ((1, 1), (2, 4)):
        for k, name in enumerate(W90_ORDER[l]):
            m = W90_FROM_GPAW[l][k]
            yg = np.array([sh.Y(first_L + m, *p) for p in pts])
            yw = np.array([W90_FUNCS[name](*p) for p in pts])
            c = np.dot(yg, yw) / np.dot(yw, yw)
            assert c > 0 and np.allclose(yg, c * yw, atol=1e-10), name


def test_projector_offset():
    # Cr setup: 4s, 4p, 3d bound, then unbound s, p, d  ->  3d starts at index 1 + 3 = 4 (the recipe's 4–8)
    assert _projector_offset([0, 1, 2, 0, 1, 2], [4, 4, 3, -1, -1, -1], 2) == 4
    # I: 5s, 5p  -> p at 1–3
    assert _projector_offset([0, 1, 0, 1, 2], [5, 5, -1, -1, -1], 1) == 1
    # V with semicore 3s 4s 3p 4p 3d: d at 1 + 1 + 3 + 3 = 8; valence p is 4p (5–7)
    assert _projector_offset([0, 0, 1, 1, 2, 2], [3, 4, 3, 4, 3, -1], 2) == 8
    assert _projector_offset([0, 0, 1, 1, 2, 2], [3, 4, 3, 4, 3, -1], 1) == 5
    with pytest.raises(WannierError):
        _projector_offset([0, 1], [3, 3], 2)


def test_select_orbitals_cri3_vps3():
    atoms = cri3_monolayer()
    assert _ligand_elements(atoms, [0, 1]) == ["I"]
    lines, orbs = select_orbitals(atoms, ["Cr"], ["I"], "dp")
    assert lines == [("Cr", 2), ("I", 1)] and len(orbs) == 28
    assert [o[2] for o in orbs[:5]] == W90_ORDER[2] and [o[0] for o in orbs[:10]] == [0] * 5 + [1] * 5
    assert [o[2] for o in orbs[10:13]] == W90_ORDER[1] and orbs[10][0] == 2 and orbs[-1][0] == 7
    _, d_only = select_orbitals(atoms, ["Cr"], ["I"], "d")
    assert len(d_only) == 10
    v = vps3_monolayer()
    assert _ligand_elements(v, [0, 1]) == ["S"]   # P (P2S6 dimer) is not bonded to V ...
    assert _partner_elements(v, [0, 1]) == ["P"]  # ... but to S: its p orbitals close the S p manifold
    assert _partner_elements(atoms, [0, 1]) == []
    lines, orbs = select_orbitals(v, ["V"], ["S", "P"], "dp")
    assert lines == [("V", 2), ("S", 1), ("P", 1)] and len(orbs) == 34 and orbs[28][:2] == (8, 1)
    with pytest.raises(WannierError, match="projections must be"):
        select_orbitals(atoms, ["Cr"], ["I"], "spd")


def test_choose_window_isolated_and_entangled():
    nk = 4
    # isolated: 2 low s bands, 3 target bands, gap, 2 high bands
    eps = np.array([[-10, -9, -3, -2, -1, 3, 4]] * nk, float) + np.linspace(0, 0.2, nk)[:, None]
    w = np.array([[0.1, 0.1, 0.9, 0.8, 0.7, 0.2, 0.1]] * nk)
    win = choose_window(eps, w, 3, efermi=-1.5)
    assert win.isolated and (win.n_lo, win.n_hi, win.num_bands) == (2, 4, 3)
    # entangled: an intruder band with little target weight crosses the top target band at k = 2, 3
    eps2 = np.array([[-10, -3, -2, -1, 0.5, 3]] * nk, float)
    eps2[2:, 3] = -0.9   # intruder (little target weight) below the top target band at k = 2, 3
    eps2[2:, 4] = -0.5
    w2 = np.array([[0.1, 0.9, 0.8, 0.7, 0.1, 0.1]] * nk)
    w2[2:, 3], w2[2:, 4] = 0.1, 0.7
    win2 = choose_window(eps2, w2, 3, efermi=-2.5)
    assert not win2.isolated and win2.n_lo == 1
    assert win2.froz_max < -0.9 and win2.froz_min < -3   # frozen window ends below the intruder
    inside = ((eps2 >= win2.froz_min) & (eps2 <= win2.froz_max)).sum(axis=1)
    assert inside.max() <= 3
    with pytest.raises(WannierError, match="converged bands"):
        choose_window(eps, w, 3, efermi=0.0, n_conv=2)


def test_hr_fourier_sum(tmp_path):
    R, deg, H = read_hr(DATA / "w90" / "CrI3_up_hr.dat")
    assert H.shape == (3, 10, 10) and list(deg) == [1, 1, 1]
    k = np.array([[0.0, 0, 0], [0.25, 0, 0], [0.5, 0.5, 0]])
    e = hr_eigenvalues(k, R, deg, H)
    for kk, ek in zip(k, e):
        Hk = sum(np.exp(2j * np.pi * kk @ r) * H[i] / deg[i] for i, r in enumerate(R))
        assert np.allclose(ek, np.linalg.eigvalsh(Hk))
    (tmp_path / "bad_hr.dat").write_text("x\n10\n3\n1 1 1\n0 0 0 1 1 0.1\n")
    with pytest.raises(TBFileError, match="bad_hr.dat"):
        read_hr(tmp_path / "bad_hr.dat")
    info = read_win(DATA / "w90" / "CrI3_up.win")
    assert info.num_wann == 10 and [ln for _, ln in info.projection_lines] == ["Cr:d"] and info.mp_grid == (2, 2, 1)


def test_missing_wannier90_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(WannierError) as exc:
        wannier90_executable()
    assert "wannier90.x: not found" in str(exc.value) and "\n" not in str(exc.value)
    with pytest.raises(WannierError, match="wannier90.x: not found"):
        wannierise(tmp_path)


def test_wannierise_bad_source(tmp_path):
    if not _have_w90():
        pytest.skip("wannier90.x not installed")
    with pytest.raises(WannierError, match="no such run directory"):
        wannierise(tmp_path / "nothing.gpw")
    (tmp_path / "run").mkdir()
    with pytest.raises(WannierError, match="no .gpw file"):
        wannierise(tmp_path / "run")


def _have_w90():
    try:
        wannier90_executable()
        return True
    except WannierError:
        return False
