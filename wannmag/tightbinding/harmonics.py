"""Real spherical harmonics in the Wannier90 convention and their rotation matrices.

Orbital order (Wannier90 user guide, table of ``l``, ``mr``):

* l = 0: ``s``
* l = 1: ``pz, px, py``                          (mr = 1, 2, 3)
* l = 2: ``dz2, dxz, dyz, dx2-y2, dxy``           (mr = 1 … 5)

with the angular parts (all with positive lobes along the positive axes, no Condon–Shortley sign)::

    pz ∝ z, px ∝ x, py ∝ y
    dz2 ∝ (3z² − r²)/(2√3), dxz ∝ xz, dyz ∝ yz, dx2-y2 ∝ (x² − y²)/2, dxy ∝ xy

normalised on the unit sphere.  These are the cubic harmonics of the Slater–Koster table.

Rotations.  For a proper rotation Q (3×3, acting on Cartesian column vectors) the rotated function
(O_Q f)(r) = f(Qᵀ r) of a real harmonic of degree l is again a combination of the harmonics of the same l::

    f_m(Qᵀ r) = Σ_m' D^l_{m'm}(Q) f_m'(r)

:func:`rotation_matrix` builds D^l(Q) numerically (least squares on a fixed set of points on the sphere, exact for
these polynomials); D^l is real orthogonal and D^l(Q1 Q2) = D^l(Q1) D^l(Q2).

Local frames.  A frame is given by the three orthonormal axes x', y', z' (rows of ``axes``).  The orbital ``m`` of
the local frame is f_m(x'·r, y'·r, z'·r) = Σ_m' D_{m'm} f_m'(r) with D = :func:`frame_matrix` (l, axes) =
D^l(axesᵀ); a block of a Hamiltonian written in global-frame orbitals transforms as H_loc = D_iᵀ H D_j.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["ORBITAL_NAMES", "L_OF_NAME", "real_harmonics", "rotation_matrix", "frame_matrix", "T2G", "EG",
           "orbital_slice"]

ORBITAL_NAMES: dict[int, tuple[str, ...]] = {
    0: ("s",),
    1: ("pz", "px", "py"),
    2: ("dz2", "dxz", "dyz", "dx2-y2", "dxy"),
    3: ("fz3", "fxz2", "fyz2", "fz(x2-y2)", "fxyz", "fx(x2-3y2)", "fy(3x2-y2)"),
}
L_OF_NAME = {name: l for l, names in ORBITAL_NAMES.items() for name in names}

#: positions of the t2g (dxz, dyz, dxy) and eg (dz2, dx2-y2) orbitals inside a d block in Wannier90 order
T2G = (1, 2, 4)
EG = (0, 3)


def orbital_slice(l: int) -> int:
    return 2 * l + 1


def real_harmonics(l: int, r: np.ndarray) -> np.ndarray:
    """Values of the real harmonics of degree ``l`` (Wannier90 order) at the points ``r`` (n, 3).

    The points are normalised to the unit sphere first; the result has shape (n, 2l+1).
    """
    r = np.atleast_2d(np.asarray(r, dtype=float))
    r = r / np.linalg.norm(r, axis=1)[:, None]
    x, y, z = r.T
    if l == 0:
        return np.full((len(r), 1), 1.0 / np.sqrt(4 * np.pi))
    if l == 1:
        c = np.sqrt(3.0 / (4 * np.pi))
        return c * np.stack([z, x, y], axis=1)
    if l == 2:
        c = np.sqrt(15.0 / (4 * np.pi))
        return np.stack([np.sqrt(5.0 / (16 * np.pi)) * (3 * z**2 - 1.0),
                         c * x * z, c * y * z,
                         c / 2.0 * (x**2 - y**2), c * x * y], axis=1)
    if l == 3:
        return np.stack([np.sqrt(7.0 / (16 * np.pi)) * z * (5 * z**2 - 3.0),
                         np.sqrt(21.0 / (32 * np.pi)) * x * (5 * z**2 - 1.0),
                         np.sqrt(21.0 / (32 * np.pi)) * y * (5 * z**2 - 1.0),
                         np.sqrt(105.0 / (16 * np.pi)) * z * (x**2 - y**2),
                         np.sqrt(105.0 / (4 * np.pi)) * x * y * z,
                         np.sqrt(35.0 / (32 * np.pi)) * x * (x**2 - 3 * y**2),
                         np.sqrt(35.0 / (32 * np.pi)) * y * (3 * x**2 - y**2)], axis=1)
    raise ValueError(f"real harmonics implemented for l = 0…3, not l = {l}")


@lru_cache(maxsize=None)
def _sample_points(n: int = 64) -> np.ndarray:
    """A fixed, well-spread set of points on the unit sphere (Fibonacci lattice)."""
    i = np.arange(n) + 0.5
    phi = np.arccos(1 - 2 * i / n)
    theta = np.pi * (1 + 5**0.5) * i
    return np.stack([np.cos(theta) * np.sin(phi), np.sin(theta) * np.sin(phi), np.cos(phi)], axis=1)


@lru_cache(maxsize=None)
def _pinv_basis(l: int) -> np.ndarray:
    return np.linalg.pinv(real_harmonics(l, _sample_points()))


def rotation_matrix(l: int, Q) -> np.ndarray:
    """D^l(Q): ``f_m(Qᵀ r) = Σ_m' D[m', m] f_m'(r)`` for the real harmonics of degree ``l`` (Wannier90 order).

    ``Q`` must be a proper or improper orthogonal 3×3 matrix (improper rotations give the parity (−1)^l).
    """
    Q = np.asarray(Q, dtype=float)
    if Q.shape != (3, 3) or not np.allclose(Q @ Q.T, np.eye(3), atol=1e-8):
        raise ValueError("rotation_matrix: Q must be an orthogonal 3×3 matrix")
    if l == 0:
        return np.ones((1, 1))
    pts = _sample_points()
    rotated = real_harmonics(l, pts @ Q)        # rows: f_m(Qᵀ r_k)  (pts @ Q = (Qᵀ r_k)ᵀ)
    D = _pinv_basis(l) @ rotated
    return D


def frame_matrix(l: int, axes) -> np.ndarray:
    """D such that the orbital m of the local frame with axes x', y', z' (rows of ``axes``) is Σ_m' D[m', m] f_m'.

    ``axes`` must be orthonormal.  Equivalent to :func:`rotation_matrix` (l, axesᵀ).
    """
    A = np.asarray(axes, dtype=float)
    return rotation_matrix(l, A.T)
