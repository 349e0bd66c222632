"""Magnetic dipole–dipole (shape) anisotropy of a 2D-periodic layer of point moments.

Convention
----------
Every magnetic ion carries the point moment m_i = g_i S_i μ_B e_i (classical spin of length S_i along the unit
vector e_i; g = 2 by default, so m = 3 μ_B for Cr3+ and V2+).  The dipolar energy of the layer, per cell, is

    E_dip = ½ Σ_{i,j in cell} Σ'_R (μ0/4π) [m_i·m_j − 3 (m_i·r̂)(m_j·r̂)] / r³,     r = r_j + R − r_i,

the primed sum leaving out r = 0, the ½ correcting the double counting of every pair.  Written with the dipolar
tensor T(r) = (r² 1 − 3 r r) / r⁵ = −∇∇(1/r) and the *lattice-summed* tensors

    W_ij = Σ'_R T(r_j + R − r_i)      (Å⁻³, a 3×3 symmetric tensor per pair of sublattices),

a collinear state m_i = σ_i g_i S_i μ_B n (σ_i = ±1, common axis n) has the energy per magnetic ion

    E(n) = n · D · n,       D = (C / 2N) Σ_ij σ_i σ_j g_i g_j S_i S_j W_ij     (meV per ion),

with N the number of magnetic ions per cell and the constant

    C = (μ0/4π) μ_B² / Å³ = 0.0536815 meV     (CODATA 2022 via scipy.constants: μ0 = 1.25663706127e-6 N/A²,
                                               μ_B = 9.2740100657e-24 J/T, e = 1.602176634e-19 C).

For g = 2 and S = 3/2 (m = 3 μ_B) the pair prefactor C m² = 0.48313 meV·Å³.  We report E_out = E(ẑ) (ẑ = layer
normal), the in-plane energies E(x̂), E(ŷ) and their mean, the in-plane extremes (eigenvalues of the in-plane block
of D) and ΔE_dip = E_in − E_out: positive ΔE means the dipolar energy prefers the moments out of plane.

Ewald summation in two dimensions
---------------------------------
The sum over R of 1/r³ is absolutely convergent in 2D but slowly (the tail of a net moment falls off as 1/R_c).
We write T = −∇∇(1/r) and split 1/r = erfc(αr)/r + erf(αr)/r (Ewald).  The short-range part is summed in real space,

    T_real(r) = B(r) 1 − C(r) r r,
    B(r) = [erfc(αr) + (2αr/√π) e^{−α²r²}] / r³,
    C(r) = [3 erfc(αr) + (2αr/√π)(3 + 2α²r²) e^{−α²r²}] / r⁵,

and the long-range part φ_L(ρ, z) = Σ_R erf(α|r + R|)/|r + R| (ρ in plane, z along the normal) is summed with the
2D Fourier representation of Parry (Surf. Sci. 49, 433 (1975); Grzybowski, Gwóźdź & Bródka, Phys. Rev. B 61,
6706 (2000) for the dipolar case):

    φ_L(ρ, z) = (π/A) Σ_{G≠0} e^{iG·ρ} f_G(z)/G  −  (2π/A) [z erf(αz) + e^{−α²z²}/(α√π)]  (+ const),
    f_G(z) = e^{Gz} erfc(G/2α + αz) + e^{−Gz} erfc(G/2α − αz),

(A = cell area, G the 2D reciprocal vectors, G = |G|).  Differentiating twice (f″_G = G² f_G − (4αG/√π)
e^{−G²/4α² − α²z²}, ∂_z² of the G = 0 term = −(4√π α/A) e^{−α²z²}) gives the reciprocal tensor

    T_ab = (π/A) Σ_G G_a G_b cos(G·ρ) f_G/G,          T_az = (π/A) Σ_G G_a sin(G·ρ) f′_G/G,
    T_zz = −(π/A) Σ_G cos(G·ρ) f″_G/G + (4√π α/A) e^{−α²z²},

and for i = j the self term −∇∇[erf(αr)/r] at r = 0, (4α³/3√π) 1, is subtracted.  The divergent constant of φ_L
is irrelevant (it is removed by the derivatives), and the layer is genuinely 2D: no vacuum correction, no
dependence on the third lattice vector, no shape/surface term of a 3D Ewald sum.  f_G is evaluated with the scaled
complementary error function (e^{Gz} erfc(u₊) = erfcx(u₊) e^{−G²/4α² − α²z²}), which is stable for the few-Å
buckling of real layers.  α, the real-space and the reciprocal cutoffs are chosen so that every neglected term is
below ``tol`` (default 1e-12 in relative units).

Brute-force check
-----------------
:func:`lattice_tensors_direct` sums T over all |r| ≤ R_c and adds the continuum tail of a uniform sheet outside the
circle, (2π/(A R_c)) diag(−½, −½, 1) per pair (for R_c ≫ buckling); :func:`lattice_tensors_extrapolated` repeats
this for a dense ladder of R_c in [R_max/2, R_max] and fits W(R_c) = W_∞ + b/R_c to the *uncorrected* partial
sums, returning W_∞ (both estimates agree with Ewald to a few 1e-6 for R_max ≈ 200 lattice constants).

Lattice sums (unit lattice constant, Σ' r⁻³ = W_zz of a Bravais lattice): square 9.0336217 (= 4 ζ(3/2) β(3/2)),
triangular 11.0341757349 (this module, cross-checked by brute force to 1e-5).

In a spin model (Monte Carlo)
-----------------------------
:func:`dipolar_bonds` gives the dipolar coupling as ordinary exchange tensors of the internal convention,
J^dip_ij(R) = C g_i g_j T(r)  (meV, H = Σ_{bonds once} S_i·J·S_j, spins of length S), for all pairs with
|r| ≤ ``cutoff``.  :func:`add_dipolar` adds them to a model and, optionally, the *shape term* that restores the
Ewald result for one collinear reference order σ: the part of the lattice sum beyond the cutoff, ΔW_ij = W_ij −
W_ij(|r| ≤ cutoff), is folded into an effective single-ion tensor

    A_i^shape = (C/2) Σ_j σ_i σ_j g_i g_j (S_j/S_i) ΔW_ij        (meV, H = Σ_i S_i·A_i·S_i).

Approximation stated plainly: bonds within the cutoff are exact for every spin state; the shape term is exact only
for uniform rotations of the reference collinear order (it is the mean field of the far dipoles of that order).
Fluctuations of the far spins (spin waves, domains, the paramagnet) are not described by it, so above T_c or for
states other than the reference order it overestimates the long-range dipolar energy; it vanishes in the limit
cutoff → ∞.  For an AF order with zero net moment the tail decays fast and the shape term is small; for a FM the
tail is ∝ 1/cutoff and the shape term matters.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from ase import Atoms
from scipy import constants as _const
from scipy.special import erfc, erfcx

from ...errors import WannmagError
from ...structures import Configuration, configuration_from_pattern, honeycomb_configuration
from ...structures.magnetic import MagneticSublattice
from ..spinmodel import SpinModel, _canonical

__all__ = ["DIPOLAR_MEV", "DipolarError", "DipolarAnisotropy", "layer_frame", "lattice_tensors_ewald",
           "lattice_tensors_direct", "lattice_tensors_extrapolated", "lattice_sum_r3", "dipolar_anisotropy",
           "dipolar_bonds", "add_dipolar", "collinear_state", "pair_picture"]

#: (μ0/4π) μ_B² / Å³ in meV (CODATA via scipy.constants): 0.0536815 meV
DIPOLAR_MEV = (_const.mu_0 / (4.0 * np.pi) * _const.physical_constants["Bohr magneton"][0] ** 2 / 1e-30
               / (_const.e * 1e-3))


class DipolarError(WannmagError):
    """Bad input to the dipolar lattice sums (not a layer, coincident sites, bad pattern, ...)."""


# --------------------------------------------------------------------------------------------------------------
# geometry
# --------------------------------------------------------------------------------------------------------------

def layer_frame(cell) -> np.ndarray:
    """Orthonormal frame (rows e1, e2, e3) of a layer: e1 ∥ a1, e3 ∥ a1 × a2 (the layer normal)."""
    cell = np.asarray(cell, float)
    n = np.cross(cell[0], cell[1])
    if np.linalg.norm(n) < 1e-9 or np.linalg.norm(cell[0]) < 1e-9:
        raise DipolarError("the first two lattice vectors do not span a plane")
    e3 = n / np.linalg.norm(n)
    e1 = cell[0] / np.linalg.norm(cell[0])
    e2 = np.cross(e3, e1)
    return np.array([e1, e2, e3])


def _to_layer(cell, positions):
    """2D lattice vectors (2×2, in-plane coordinates), in-plane positions and heights in the layer frame."""
    F = layer_frame(cell)
    cell = np.asarray(cell, float)
    pos = np.asarray(positions, float).reshape(-1, 3) @ F.T
    a = cell[:2] @ F.T
    if np.any(np.abs(a[:, 2]) > 1e-9):
        raise DipolarError("lattice vectors a1, a2 are not in one plane")  # pragma: no cover - by construction
    return F, a[:, :2], pos


def _lattice_points(a2d, rmax):
    """Integer pairs (n1, n2) with |n1 a1 + n2 a2| ≤ rmax (+ margin), and their vectors."""
    b = np.linalg.inv(a2d).T  # rows: reciprocal (without 2π)
    n1 = int(np.ceil(rmax * np.linalg.norm(b[0]))) + 1
    n2 = int(np.ceil(rmax * np.linalg.norm(b[1]))) + 1
    i, j = np.meshgrid(np.arange(-n1, n1 + 1), np.arange(-n2, n2 + 1), indexing="ij")
    n = np.stack([i.ravel(), j.ravel()], axis=1)
    v = n @ a2d
    keep = np.linalg.norm(v, axis=1) <= rmax
    return n[keep], v[keep]


# --------------------------------------------------------------------------------------------------------------
# Ewald
# --------------------------------------------------------------------------------------------------------------

def _ewald_parameters(a2d, tol, alpha=None):
    area = abs(np.linalg.det(a2d))
    if alpha is None:
        alpha = np.sqrt(np.pi / area)  # balances the real and reciprocal work
    # erfc(x) < tol for x > p  (with a polynomial prefactor margin)
    p = np.sqrt(-np.log(tol)) + 1.5
    return float(alpha), float(p / alpha), float(2.0 * alpha * p), area


def _real_space_tensor(d):
    """Bare dipolar tensor (r² 1 − 3 r r)/r⁵ for an array of vectors d (…, 3)."""
    r2 = np.sum(d * d, axis=-1)
    r = np.sqrt(r2)
    return (r2[..., None, None] * np.eye(3) - 3.0 * d[..., :, None] * d[..., None, :]) / (r ** 5)[..., None, None]


def lattice_tensors_ewald(cell, positions, tol: float = 1e-12, alpha: float | None = None) -> np.ndarray:
    """Lattice-summed dipolar tensors W_ij = Σ'_R T(r_j + R − r_i) (Å⁻³, Cartesian) by the 2D Ewald method.

    ``cell``: 3×3 (rows a1, a2, a3; only a1, a2 are periodic); ``positions``: (N, 3) Cartesian Å.  Returns an
    array (N, N, 3, 3).  See the module docstring for the formulas.
    """
    F, a2d, pos = _to_layer(cell, positions)
    n = len(pos)
    alpha, rcut, gcut, area = _ewald_parameters(a2d, tol, alpha)
    # reciprocal vectors (with 2π), G ≠ 0
    b2d = 2.0 * np.pi * np.linalg.inv(a2d).T
    _, G = _lattice_points(b2d, gcut)
    G = G[np.linalg.norm(G, axis=1) > 1e-12]
    Gn = np.linalg.norm(G, axis=1)
    spread = np.ptp(pos[:, 2]) if n else 0.0
    _, Rv = _lattice_points(a2d, rcut + np.max(np.linalg.norm(pos[:, :2] - pos[0, :2], axis=1)) * 2 + spread + 1.0)
    W = np.zeros((n, n, 3, 3))
    sp = 2.0 / np.sqrt(np.pi)
    for i in range(n):
        for j in range(i, n):
            d = pos[j] - pos[i]
            # real space
            dv = np.concatenate([Rv + d[:2], np.full((len(Rv), 1), d[2])], axis=1)
            r = np.linalg.norm(dv, axis=1)
            keep = (r > 1e-10) & (r <= rcut)
            if i != j and np.any(r < 1e-6):
                raise DipolarError(f"magnetic sites {i} and {j} coincide (periodic images at the same position)")
            dv, r = dv[keep], r[keep]
            ar = alpha * r
            g = sp * ar * np.exp(-ar * ar)
            B = (erfc(ar) + g) / r ** 3
            C = (3.0 * erfc(ar) + g * (3.0 + 2.0 * ar * ar)) / r ** 5
            Wr = np.eye(3) * B.sum() - np.einsum("k,ka,kb->ab", C, dv, dv)
            # reciprocal space
            z = d[2]
            E = np.exp(-(Gn / (2 * alpha)) ** 2 - (alpha * z) ** 2)
            up, um = Gn / (2 * alpha) + alpha * z, Gn / (2 * alpha) - alpha * z
            f = E * (erfcx(up) + erfcx(um))
            fp = Gn * E * (erfcx(up) - erfcx(um))
            fpp = Gn ** 2 * f - (2 * alpha * sp) * Gn * E
            ph = G @ d[:2]
            c, s = np.cos(ph), np.sin(ph)
            Wk = np.zeros((3, 3))
            Wk[:2, :2] = (np.pi / area) * np.einsum("k,ka,kb->ab", c * f / Gn, G, G)
            Wk[:2, 2] = Wk[2, :2] = (np.pi / area) * np.einsum("k,ka->a", s * fp / Gn, G)
            Wk[2, 2] = -(np.pi / area) * np.sum(c * fpp / Gn) + 4.0 * np.sqrt(np.pi) * alpha / area * np.exp(-(alpha * z) ** 2)
            Wij = Wr + Wk
            if i == j:
                Wij -= 4.0 * alpha ** 3 / (3.0 * np.sqrt(np.pi)) * np.eye(3)
            Wij = F.T @ Wij @ F  # back to Cartesian
            W[i, j] = Wij
            W[j, i] = Wij  # T(−r) = T(r)
    return W


# --------------------------------------------------------------------------------------------------------------
# brute force
# --------------------------------------------------------------------------------------------------------------

def _direct_raw(a2d, pos, rcuts):
    """Uncorrected partial sums Σ_{|r| ≤ R_c} T(r) in the layer frame for each R_c: (len(rcuts), N, N, 3, 3)."""
    n = len(pos)
    rcuts = np.sort(np.asarray(rcuts, float))
    spread = np.max(np.linalg.norm(pos[:, None, :2] - pos[None, :, :2], axis=-1)) if n > 1 else 0.0
    _, Rv = _lattice_points(a2d, rcuts[-1] + spread + 1.0)
    out = np.zeros((len(rcuts), n, n, 3, 3))
    for i in range(n):
        for j in range(n):
            d = pos[j] - pos[i]
            dv = np.concatenate([Rv + d[:2], np.full((len(Rv), 1), d[2])], axis=1)
            r = np.linalg.norm(dv, axis=1)
            keep = (r > 1e-10) & (r <= rcuts[-1])
            dv, r = dv[keep], r[keep]
            order = np.argsort(r)
            dv, r = dv[order], r[order]
            T = _real_space_tensor(dv)
            csum = np.cumsum(T, axis=0)
            idx = np.searchsorted(r, rcuts, side="right")
            for k, m in enumerate(idx):
                out[k, i, j] = csum[m - 1] if m > 0 else 0.0
    return rcuts, out


def _tail(area, rc):
    return (2.0 * np.pi / (area * rc)) * np.diag([-0.5, -0.5, 1.0])


def lattice_tensors_direct(cell, positions, rcut: float, tail: bool = True) -> np.ndarray:
    """Brute-force W_ij: the real-space sum over |r| ≤ ``rcut`` Å plus (``tail``) the continuum tail of a uniform
    sheet outside the circle, (2π/(A R_c)) diag(−½, −½, 1) in the layer frame.  Returns (N, N, 3, 3), Cartesian."""
    F, a2d, pos = _to_layer(cell, positions)
    area = abs(np.linalg.det(a2d))
    _, raw = _direct_raw(a2d, pos, [rcut])
    W = raw[0]
    if tail:
        W = W + _tail(area, rcut)
    return np.einsum("ai,nmab,bj->nmij", F, W, F)


def lattice_tensors_extrapolated(cell, positions, rcut: float, n_points: int = 200):
    """Brute force with extrapolation: uncorrected partial sums at ``n_points`` cutoffs R_c from ``rcut``/2 to
    ``rcut`` fitted by W(R_c) = W_∞ + b/R_c (least squares, every tensor element separately; the dense ladder
    averages out the lattice-point-counting noise ∝ R_c^(−5/2) of a circular cutoff).

    Returns ``(W_inf, W_tail_corrected, b)``: the extrapolated tensors, the tail-corrected sum at ``rcut`` (N, N, 3,
    3 each, Cartesian) and the fitted coefficients b (layer frame, (N, N, 3, 3)); for a sheet with a net moment the
    fit finds b_zz ≈ −2π/A, the continuum value used by the tail correction.
    """
    F, a2d, pos = _to_layer(cell, positions)
    area = abs(np.linalg.det(a2d))
    rc = np.linspace(rcut / 2.0, rcut, n_points)
    rc, raw = _direct_raw(a2d, pos, rc)
    X = np.stack([np.ones_like(rc), 1.0 / rc], axis=1)
    coef, *_ = np.linalg.lstsq(X, raw.reshape(len(rc), -1), rcond=None)
    W_inf = coef[0].reshape(raw.shape[1:])
    W_tc = raw[-1] + _tail(area, rc[-1])
    rot = lambda W: np.einsum("ai,nmab,bj->nmij", F, W, F)  # noqa: E731
    return rot(W_inf), rot(W_tc), coef[1].reshape(raw.shape[1:])


def lattice_sum_r3(cell2d, method: str = "ewald", rcut: float | None = None) -> float:
    """Σ'_R |R|⁻³ over a 2D Bravais lattice with rows a1, a2 (2×2 or 2×3, Å): W_zz of one site.

    ``method``: "ewald" (default), "direct" (tail-corrected brute force, ``rcut`` default 150 |a1|) or
    "extrapolated" (brute force with the 1/R_c fit).
    """
    c = np.asarray(cell2d, float)
    if c.shape == (2, 2):
        c = np.hstack([c, np.zeros((2, 1))])
    cell = np.vstack([c[:2], [0.0, 0.0, 1.0]])
    pos = np.zeros((1, 3))
    if method == "ewald":
        W = lattice_tensors_ewald(cell, pos)
    else:
        rc = rcut if rcut is not None else 150.0 * np.linalg.norm(c[0])
        if method == "direct":
            W = lattice_tensors_direct(cell, pos, rc)
        elif method == "extrapolated":
            W = lattice_tensors_extrapolated(cell, pos, rc)[0]
        else:
            raise DipolarError(f"unknown method {method!r} (ewald, direct, extrapolated)")
    n = layer_frame(cell)[2]
    return float(n @ W[0, 0] @ n)


# --------------------------------------------------------------------------------------------------------------
# collinear states
# --------------------------------------------------------------------------------------------------------------

@dataclass
class CollinearState:
    """Magnetic sites of one (super)cell with an up/down pattern: what the dipolar sums and LSWT need."""

    cell: np.ndarray
    positions: np.ndarray
    spins: np.ndarray
    g: np.ndarray
    pattern: np.ndarray
    name: str = "custom"
    supercell: np.ndarray | None = None
    elements: list = field(default_factory=list)

    @property
    def n_sites(self) -> int:
        return len(self.positions)


def _sublattice_from_model(model):
    atoms = Atoms([s.element for s in model.sites], positions=[s.position for s in model.sites], cell=model.cell,
                  pbc=True)
    return MagneticSublattice(atoms=atoms, indices=np.arange(model.n_sites), spins=model.spins,
                              two_dimensional=not bool(model.pbc[2]))


def match_sites(positions_a, positions_b, cell, tol: float = 1e-3) -> np.ndarray:
    """Index map k → m with positions_a[k] ≡ positions_b[m] modulo the in-plane lattice of ``cell``."""
    cell = np.asarray(cell, float)
    inv = np.linalg.inv(cell)
    out = np.full(len(positions_a), -1)
    for k, p in enumerate(np.asarray(positions_a, float)):
        d = (np.asarray(positions_b, float) - p) @ inv
        d[:, :2] -= np.round(d[:, :2])
        dist = np.linalg.norm(d @ cell, axis=1)
        m = int(np.argmin(dist))
        if dist[m] > tol:
            raise DipolarError(f"site {k} at {np.round(p, 3).tolist()} has no partner in the other cell")
        out[k] = m
    return out


def collinear_state(source, order: str | None = "FM", pattern=None, supercell=None, g: float | None = None,
                    spins: dict | None = None):
    """The magnetic sites and up/down pattern of a collinear order on ``source``.

    ``source``: a ``SpinModel`` (sites, S, g), a ``Configuration`` (its own pattern), a ``MagneticSublattice``, an
    ``ase.Atoms`` or a structure file.  ``order``: FM, Neel, zigzag, stripy (structures layer,
    ``honeycomb_configuration``; the smallest commensurate supercell unless ``supercell`` is given), or None with
    an explicit ``pattern`` (±1 per site of the cell, or of ``supercell``).  ``g`` overrides the g-factor (default:
    the model's, else 2).  For a SpinModel the returned state comes with the supercell model:
    ``(state, model_on_supercell)``; otherwise ``(state, None)``.
    """
    if isinstance(source, SpinModel):
        model = source
        sub = _sublattice_from_model(model)
        if pattern is not None and supercell is None and len(pattern) != model.n_sites:
            raise DipolarError(f"pattern has {len(pattern)} value(s) but the model has {model.n_sites} sites: give "
                               "one ±1 per site of the model's cell")
        if pattern is not None and supercell is None:
            P = np.eye(3, dtype=int)
            pat = np.asarray(pattern, int)
        else:
            if pattern is not None:
                conf = configuration_from_pattern(sub, supercell, pattern)
            else:
                conf = honeycomb_configuration(sub, order or "FM", supercell=supercell)
            P = np.asarray(conf.supercell, int)
            big, _ = model.supercell(P)
            m = match_sites([s.position for s in big.sites], conf.sublattice.positions, big.cell)
            pat = np.asarray(conf.pattern, int)[m]
            model = big
        if pat.shape != (model.n_sites,) or not np.all(np.abs(pat) == 1):
            raise DipolarError(f"pattern must hold {model.n_sites} values ±1, got {np.asarray(pattern).tolist()}")
        gs = np.array([s.g for s in model.sites]) if g is None else np.full(model.n_sites, float(g))
        st = CollinearState(cell=model.cell.copy(), positions=np.array([s.position for s in model.sites]),
                            spins=model.spins.copy(), g=gs, pattern=pat, name=order or "custom", supercell=P,
                            elements=[s.element for s in model.sites])
        return st, model
    if isinstance(source, Configuration):
        conf = source
    elif pattern is not None:
        conf = configuration_from_pattern(source, supercell if supercell is not None else np.eye(3, dtype=int),
                                          pattern, **({"spins": spins} if spins and not isinstance(source, MagneticSublattice) else {}))
    else:
        kw = {"spins": spins} if spins and not isinstance(source, MagneticSublattice) else {}
        conf = honeycomb_configuration(source, order or "FM", supercell=supercell, **kw)
    sub = conf.sublattice
    gs = np.full(sub.n_sites, 2.0 if g is None else float(g))
    return CollinearState(cell=sub.atoms.cell.array.copy(), positions=sub.positions.copy(), spins=sub.spins.copy(),
                          g=gs, pattern=np.asarray(conf.pattern, int), name=conf.name,
                          supercell=np.asarray(conf.supercell, int), elements=sub.elements), None


# --------------------------------------------------------------------------------------------------------------
# anisotropy
# --------------------------------------------------------------------------------------------------------------

@dataclass
class DipolarAnisotropy:
    """Dipolar energy of a collinear order per magnetic ion (meV) versus the moment direction.

    ``tensor`` D (3×3, Cartesian, meV per ion): E(n) = n·D·n for the moments along ±n.  ``E_out`` = E(layer
    normal), ``E_x``/``E_y`` along the in-plane frame vectors (x ∥ a1), ``E_in`` their mean, ``E_in_min``/
    ``E_in_max`` the in-plane extremes, ``delta`` = E_in − E_out (> 0: out-of-plane preferred).
    A result rebuilt by :meth:`from_dict` has no ``normal``/``frame`` (not stored): its energies are the stored ones.
    """

    order: str
    n_sites: int
    tensor: np.ndarray
    normal: np.ndarray | None
    method: str
    moments: np.ndarray
    pattern: np.ndarray
    frame: np.ndarray | None
    _stored: dict | None = field(default=None, init=False, repr=False, compare=False)  # from_dict: see there

    def _energy(self, key: str, value):
        """The stored energy ``key`` of a result without its frame (from_dict), else ``value()``."""
        if self.frame is None and self._stored is not None:
            return self._stored[key]
        return value()

    @property
    def E_out(self) -> float:
        return self._energy("E_out_meV", lambda: float(self.normal @ self.tensor @ self.normal))

    @property
    def E_x(self) -> float:
        return self._energy("E_x_meV", lambda: float(self.frame[0] @ self.tensor @ self.frame[0]))

    @property
    def E_y(self) -> float:
        return self._energy("E_y_meV", lambda: float(self.frame[1] @ self.tensor @ self.frame[1]))

    @property
    def in_plane(self) -> np.ndarray:
        return self.frame[:2] @ self.tensor @ self.frame[:2].T

    @property
    def E_in(self) -> float:
        return self._energy("E_in_meV", lambda: float(np.trace(self.in_plane) / 2.0))

    @property
    def E_in_min(self) -> float:
        return self._energy("E_in_min_meV", lambda: float(np.linalg.eigvalsh(self.in_plane)[0]))

    @property
    def E_in_max(self) -> float:
        return self._energy("E_in_max_meV", lambda: float(np.linalg.eigvalsh(self.in_plane)[1]))

    @property
    def delta(self) -> float:
        """E_in − E_out (meV per ion, in-plane mean): > 0 means the dipolar energy prefers out-of-plane moments."""
        return self.E_in - self.E_out

    @property
    def easy_axis(self) -> np.ndarray:
        w, v = np.linalg.eigh(self.tensor)
        return v[:, 0]

    def as_dict(self) -> dict:
        return {"order": self.order, "method": self.method, "n_sites": self.n_sites,
                "convention": "E(n) = n.D.n meV per magnetic ion, moments g S muB along +-n; delta = E_in - E_out "
                              "(> 0: out-of-plane preferred)",
                "E_out_meV": self.E_out, "E_x_meV": self.E_x, "E_y_meV": self.E_y, "E_in_meV": self.E_in,
                "E_in_min_meV": self.E_in_min, "E_in_max_meV": self.E_in_max, "delta_meV": self.delta,
                "tensor_meV": self.tensor.tolist(), "moments_muB": self.moments.tolist(),
                "pattern": [int(s) for s in self.pattern]}

    @classmethod
    def from_dict(cls, d: dict) -> "DipolarAnisotropy":
        """Inverse of :meth:`as_dict`.  The layer frame is not stored (``normal``, ``frame`` None): the energies
        along the normal and the in-plane axes are the stored ones (``delta`` = E_in − E_out as before); the tensor,
        moments (μ_B) and pattern are whole."""
        res = cls(order=d["order"], n_sites=d["n_sites"], tensor=np.asarray(d["tensor_meV"], float), normal=None,
                  method=d["method"], moments=np.asarray(d["moments_muB"], float),
                  pattern=np.asarray(d["pattern"], int), frame=None)
        res._stored = {k: d[k] for k in ("E_out_meV", "E_x_meV", "E_y_meV", "E_in_meV", "E_in_min_meV",
                                         "E_in_max_meV")}
        return res


def dipolar_anisotropy(source, order: str | None = "FM", pattern=None, supercell=None, g: float | None = None,
                       method: str = "ewald", rcut: float | None = None, spins: dict | None = None) -> DipolarAnisotropy:
    """Dipolar (shape) anisotropy per magnetic ion of a collinear order (module docstring).

    ``source``/``order``/``pattern``/``supercell``/``g``: see :func:`collinear_state`.  ``method``: "ewald"
    (default), "direct" (tail-corrected brute force to ``rcut`` Å, default 100 |a1|) or "extrapolated".
    """
    st, _ = collinear_state(source, order=order, pattern=pattern, supercell=supercell, g=g, spins=spins)
    if method == "ewald":
        W = lattice_tensors_ewald(st.cell, st.positions)
    elif method in ("direct", "extrapolated"):
        rc = rcut if rcut is not None else 100.0 * np.linalg.norm(st.cell[0])
        W = (lattice_tensors_direct(st.cell, st.positions, rc) if method == "direct"
             else lattice_tensors_extrapolated(st.cell, st.positions, rc)[0])
    else:
        raise DipolarError(f"unknown method {method!r} (ewald, direct, extrapolated)")
    mu = st.pattern * st.g * st.spins
    D = DIPOLAR_MEV / (2.0 * st.n_sites) * np.einsum("i,j,ijab->ab", mu, mu, W)
    F = layer_frame(st.cell)
    return DipolarAnisotropy(order=st.name, n_sites=st.n_sites, tensor=D, normal=F[2], method=method,
                             moments=mu, pattern=st.pattern, frame=F)


def pair_picture(moment: float, distance: float, n_neighbours: int, parallel: bool) -> tuple[float, float]:
    """Dipolar energy per ion (meV) of ``n_neighbours`` in-plane neighbours at ``distance`` Å only, with three-fold
    (or higher) in-plane symmetry, for moments out of plane and in plane: (E_out, E_in).

    Pair energy C m²(1 − 3cos²θ)/r³ (±for parallel/antiparallel): out of plane θ = 90° → +C m²/r³; in plane the
    average of 1 − 3cos²θ over the bond directions is −½.  Per ion: ½ × n_neighbours × pair energy.
    """
    s = 1.0 if parallel else -1.0
    e = DIPOLAR_MEV * moment ** 2 / distance ** 3
    return 0.5 * n_neighbours * s * e, 0.5 * n_neighbours * s * (-0.5) * e


# --------------------------------------------------------------------------------------------------------------
# spin-model terms
# --------------------------------------------------------------------------------------------------------------

def dipolar_bonds(model, cutoff: float) -> list[tuple[int, int, tuple[int, int, int], np.ndarray]]:
    """Dipolar couplings of ``model`` as bond tensors of the internal convention, for all pairs with |r| ≤ cutoff:
    ``[(i, j, R, J)]`` each bond once (canonical i < j, or i = j and R > 0), J = C g_i g_j (r² 1 − 3 r r)/r⁵ in
    meV (H = Σ S_i·J·S_j with spins of length S)."""
    if cutoff <= 0:
        raise DipolarError(f"dipolar cutoff must be positive, got {cutoff}")

    cell = model.cell
    F, a2d, _ = _to_layer(cell, np.zeros((1, 3)))
    pos = np.array([s.position for s in model.sites])
    spread = np.max(np.linalg.norm(pos[:, None] - pos[None], axis=-1)) if len(pos) > 1 else 0.0
    nR, _ = _lattice_points(a2d, cutoff + spread + 1.0)
    out, seen = [], set()
    for i in range(model.n_sites):
        for j in range(model.n_sites):
            for R2 in nR:
                R = (int(R2[0]), int(R2[1]), 0)
                d = pos[j] + np.array(R) @ cell - pos[i]
                r = np.linalg.norm(d)
                if r < 1e-8 or r > cutoff:
                    continue
                ci, cj, cR, _ = _canonical(i, j, R, np.eye(3))
                if (ci, cj, cR) in seen:
                    continue
                seen.add((ci, cj, cR))
                dd = pos[cj] + np.array(cR) @ cell - pos[ci]
                J = DIPOLAR_MEV * model.sites[ci].g * model.sites[cj].g * _real_space_tensor(dd)
                out.append((ci, cj, cR, J))
    return out


def add_dipolar(model, cutoff: float, pattern=None, shape: bool = True):
    """A copy of ``model`` with the dipolar bonds up to ``cutoff`` Å added to its exchange tensors and, if
    ``shape`` and a collinear reference ``pattern`` (±1 per site of ``model``; default FM) are given, the shape
    term A^shape (module docstring) added to its single-ion tensors.  ``meta["dipolar"]`` records what was done."""
    new = SpinModel.from_dict(model.as_dict())
    for i, j, R, J in dipolar_bonds(model, cutoff):
        existing = next((b for b in new.bonds if (b.i, b.j, b.R) == (i, j, R)), None)
        if existing is not None:
            existing.J = existing.J + J
        else:
            new.add_bond(i, j, R, J)
    info = {"cutoff_A": float(cutoff), "bonds": "C g_i g_j (r^2 1 - 3 r r)/r^5 for |r| <= cutoff",
            "constant_meV": DIPOLAR_MEV}
    if shape:
        sigma = np.ones(model.n_sites, int) if pattern is None else np.asarray(pattern, int)
        if sigma.shape != (model.n_sites,) or not np.all(np.abs(sigma) == 1):
            raise DipolarError(f"reference pattern must hold {model.n_sites} values ±1")
        pos = np.array([s.position for s in model.sites])
        W = lattice_tensors_ewald(model.cell, pos)
        Wc = np.zeros_like(W)
        for i, j, R, _J in dipolar_bonds(model, cutoff):
            d = pos[j] + np.array(R) @ model.cell - pos[i]
            T = _real_space_tensor(d)
            Wc[i, j] += T
            Wc[j, i] += T
        dW = W - Wc
        g = np.array([s.g for s in model.sites])
        S = model.spins
        for i in range(model.n_sites):
            A = 0.5 * DIPOLAR_MEV * sum(sigma[i] * sigma[j] * g[i] * g[j] * S[j] / S[i] * dW[i, j]
                                        for j in range(model.n_sites))
            new.single_ion[i] = new.single_ion[i] + A
        info["shape_term"] = {"pattern": [int(s) for s in sigma],
                              "approximation": "Ewald remainder beyond the cutoff as a single-ion term; exact for "
                                               "uniform rotations of this collinear order only"}
    new.meta = dict(new.meta, dipolar=info)
    return new
