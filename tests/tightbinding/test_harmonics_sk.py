"""Real-harmonic rotation matrices and the Slater–Koster table against analytic results."""

import numpy as np
import pytest
from ase import Atoms
from scipy.spatial.transform import Rotation

from wannmag.tightbinding import (SKParameters, real_harmonics, rotation_matrix, sk_block, sk_block_rotated,
                                  slater_koster_model)
from wannmag.tightbinding.harmonics import frame_matrix


def _random_rotations(n, seed=0):
    return Rotation.random(n, random_state=seed).as_matrix()


@pytest.mark.parametrize("l", [1, 2, 3])
def test_rotation_matrices_orthogonal_and_homomorphic(l):
    Q1, Q2 = _random_rotations(2, seed=l)
    D1, D2 = rotation_matrix(l, Q1), rotation_matrix(l, Q2)
    assert np.allclose(D1 @ D1.T, np.eye(2 * l + 1), atol=1e-12)
    assert np.allclose(rotation_matrix(l, Q1 @ Q2), D1 @ D2, atol=1e-12)
    assert np.allclose(rotation_matrix(l, np.eye(3)), np.eye(2 * l + 1), atol=1e-12)


@pytest.mark.parametrize("l", [1, 2])
def test_rotation_matrices_rotate_the_functions(l):
    """f_m(Qᵀ r) = Σ_m' D_m'm f_m'(r) at random points (not the points used to build D)."""
    Q = _random_rotations(1, seed=7)[0]
    r = np.random.default_rng(3).normal(size=(40, 3))
    D = rotation_matrix(l, Q)
    assert np.allclose(real_harmonics(l, r @ Q), real_harmonics(l, r) @ D, atol=1e-12)


def test_rotation_by_90_degrees_about_z_permutes_d_orbitals():
    """Rotating by +90° about z maps x→y, y→−x: dxz → dyz, dyz → −dxz, dx2-y2 → −dx2-y2, dxy → −dxy."""
    Q = Rotation.from_euler("z", 90, degrees=True).as_matrix()
    D = rotation_matrix(2, Q)  # column m = rotated orbital m in the original basis
    dz2, dxz, dyz, dx2y2, dxy = range(5)
    expected = np.zeros((5, 5))
    expected[dz2, dz2] = 1
    expected[dyz, dxz] = 1      # (O dxz)(r) = dxz(Qᵀr) = x'z with x' = y  -> dyz
    expected[dxz, dyz] = -1
    expected[dx2y2, dx2y2] = -1
    expected[dxy, dxy] = -1
    assert np.allclose(D, expected, atol=1e-12)
    P = rotation_matrix(1, Q)   # pz, px, py: px -> py, py -> -px
    assert np.allclose(P, [[1, 0, 0], [0, 0, -1], [0, 1, 0]], atol=1e-12)


def test_frame_matrix_gives_local_orbitals():
    """Local orbital m of a frame with axes x', y', z' equals f_m(x'·r, y'·r, z'·r)."""
    A = _random_rotations(1, seed=11)[0]  # rows = axes
    D = frame_matrix(2, A)
    r = np.random.default_rng(5).normal(size=(30, 3))
    local = real_harmonics(2, r @ A.T)    # f_m(A r)
    assert np.allclose(local, real_harmonics(2, r) @ D, atol=1e-12)


@pytest.mark.parametrize("l1,l2,V", [(0, 0, (0.7,)), (0, 1, (0.9,)), (0, 2, (-0.4,)), (1, 1, (0.8, -0.3)),
                                     (1, 2, (-1.2, 0.6)), (2, 1, (-1.2, 0.6)), (2, 2, (-0.5, 0.3, -0.07))])
def test_sk_table_equals_rotated_bond_frame(l1, l2, V):
    """The Slater–Koster Table I entries equal the bond-frame diag(σ, π, π, δ, δ) rotated to the bond direction."""
    for d in np.random.default_rng(l1 * 3 + l2).normal(size=(25, 3)):
        assert np.allclose(sk_block(l1, l2, d, V), sk_block_rotated(l1, l2, d, V), atol=1e-13)


def test_pd_sigma_along_111():
    s, p = -1.3, 0.55
    E = sk_block(1, 2, [1, 1, 1], (s, p))          # rows pz px py; cols dz2 dxz dyz dx2-y2 dxy
    c = 1 / np.sqrt(3)
    # Table I: E_x,xy = √3 l²m (pdσ) + m(1−2l²)(pdπ); E_z,3z²−r² = n[n²−(l²+m²)/2](pdσ) + √3 n(l²+m²)(pdπ)
    assert E[1, 4] == pytest.approx(np.sqrt(3) * c**3 * s + c * (1 - 2 * c * c) * p)
    assert E[0, 0] == pytest.approx(c * (c * c - c * c) * s + np.sqrt(3) * c * (2 * c * c) * p)
    assert E[1, 3] == pytest.approx(np.sqrt(3) / 2 * c * 0 * s + c * (1 - c * c + c * c) * p)
    # σ projection: p along the bond with the d orbital pointing along the bond gives (pdσ); π projections vanish
    n = np.array([1.0, 1, 1]) / np.sqrt(3)
    pn = real_harmonics(1, n)[0] / np.linalg.norm(real_harmonics(1, n)[0])
    dn = real_harmonics(2, n)[0] / np.linalg.norm(real_harmonics(2, n)[0])
    assert pn @ E @ dn == pytest.approx(s)
    perp = np.cross(n, [1, 0, 0])
    pperp = real_harmonics(1, perp)[0] / np.linalg.norm(real_harmonics(1, perp)[0])
    assert pperp @ E @ dn == pytest.approx(0, abs=1e-14)
    # reversing the bond (d at the origin, p at -d... ) flips the sign of the odd p-d integrals
    assert np.allclose(sk_block(2, 1, [1, 1, 1], (s, p)), -E.T)


def test_simple_cubic_dd_sigma_bands_at_gamma_and_x():
    """One d shell per site on a simple cubic lattice, nearest-neighbour (ddσ) only:
    Γ: ε_d + 3(ddσ) (eg, twice), ε_d (t2g, three times); X: ε_d + {3(ddσ), −(ddσ), 0, 0, 0}."""
    a, s, eps = 2.7, -0.8, 0.4
    at = Atoms("Fe", positions=[[0, 0, 0]], cell=np.eye(3) * a, pbc=True)
    m = slater_koster_model(at, d_atoms="Fe", params=SKParameters(dds=s), eps_d=eps)
    E = m.eigenvalues([[0, 0, 0], [0.5, 0, 0]])
    assert np.allclose(E[0], np.sort([eps, eps, eps, eps + 3 * s, eps + 3 * s]), atol=1e-12)
    assert np.allclose(E[1], np.sort([eps + 3 * s, eps - s, eps, eps, eps]), atol=1e-12)


def test_dimer_eigenvalues():
    """A d–d dimer along an arbitrary direction: ε ± (ddσ), ε ± (ddπ) (×2), ε ± (ddδ) (×2)."""
    s, p, d, eps = -0.9, 0.5, -0.12, 0.2
    v = np.array([1.3, -0.7, 2.1])
    at = Atoms("Ni2", positions=[[10, 10, 10], np.array([10, 10, 10]) + v], cell=np.eye(3) * 30, pbc=False)
    m = slater_koster_model(at, d_atoms="Ni", params=dict(dds=s, ddp=p, ddd=d), eps_d=eps)
    E = m.eigenvalues([0, 0, 0])[0]
    expected = np.sort([eps + x * sign for x in (s, p, p, d, d) for sign in (1, -1)])
    assert np.allclose(E, expected, atol=1e-12)


def test_distance_scaling_and_cutoff():
    at = Atoms("Ni2", positions=[[0, 0, 0], [2.0, 0, 0]], cell=np.eye(3) * 30, pbc=False)
    p = SKParameters(dds=-1.0, d0={"dd": 2.5}, eta={"dd": 5.0})
    m = slater_koster_model(at, d_atoms="Ni", params=p)
    E = m.eigenvalues([0, 0, 0])[0]
    assert E.min() == pytest.approx(-(2.5 / 2.0) ** 5)
    p.cutoff = {"dd": 1.5}
    assert np.allclose(slater_koster_model(at, d_atoms="Ni", params=p).eigenvalues([0, 0, 0]), 0.0)
