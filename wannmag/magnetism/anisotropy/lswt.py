"""Linear spin-wave theory (Holstein–Primakoff + Colpa) for a SpinModel with an ordered ground state.

Model: the internal convention H = Σ_{bonds once} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i − g μ_B Σ_i B·S_i (meV, spins of
length S, J > 0 AF), any number n of sites per cell, full 3×3 bond tensors.  The ordered state is given per site
by a unit vector (collinear orders: σ_i n; a zigzag or stripy order lives on its own supercell model, see
:func:`spin_waves_for_order`); it must be a stationary classical state (checked: the torque S_i × ∂H/∂S_i must
vanish).

Holstein–Primakoff to linear order (large S, the classical-spin convention of the model)
----------------------------------------------------------------------------------------
Each site gets a right-handed local frame (e¹_i, e²_i, v_i = ordered direction), u_i = e¹_i + i e²_i, and

    S_i ≈ √(S_i/2) (b_i u_i* + b_i† u_i) + (S_i − b_i† b_i) v_i.

With b_{i,l} = N^(−1/2) Σ_k e^{ik·R_l} b_{ik} the quadratic part is H₂ = ½ Σ_k X_k† M(k) X_k + const,
X_k = (b_{1k} … b_{nk}, b†_{1,−k} … b†_{n,−k}), M = [[a(k), c(k)], [c(k)†, a(−k)ᵀ]] with, for every bond
(i, j, R, J) (phase e^{ik·R}, R the lattice vector of the bond) and every site,

    a_ij(k) += ½√(S_iS_j) (u_i·J·u_j*) e^{ik·R},   a_ji(k) += c.c.,
    c_ij(k) += ½√(S_iS_j) (u_i·J·u_j) e^{ik·R},    c_ji(k) += ½√(S_iS_j) (u_i·J·u_j) e^{−ik·R},
    a_ii += −S_j (v_i·J·v_j),  a_jj += −S_i (v_i·J·v_j),
    a_ii += S_i (u_i*·A_i·u_i) − 2 S_i (v_i·A_i·v_i) + g μ_B B·v_i,    c_ii += S_i (u_i·A_i·u_i).

The single-ion term is expanded like a classical spin (no 1 − 1/2S factor), so the LSWT energies are the small-
oscillation (precession) frequencies of the classical model that Monte Carlo samples.  The magnon energies ħω_ν(k)
(meV) are the positive eigenvalues of η M(k), η = diag(1, −1), obtained by Colpa's Cholesky method (M must be
positive definite — a negative eigenvalue means the state is not a local minimum and is reported as an error).

Honeycomb closed forms (used by the tests), γ(k) = Σ_{δ = 3 NN} e^{ik·δ}, uniaxial A (A_xx = A_yy), XXZ NN bonds:
* FM (J < 0), spins along z:  ħω±(k) = S[−3J_zz ± |J_xx| |γ(k)|] + 2S(A_xx − A_zz);  gap at Γ
  Δ = 3S(J_xx − J_zz) + 2S(A_xx − A_zz) (in-plane J_xx is negative: an XXZ λ = J_zz − J_xx < 0 opens a gap);
  at K, γ = 0: the two branches meet (Dirac point) at −3S J_zz + 2S(A_xx − A_zz).
* Néel (J > 0), spins ±z:  ħω(k) = √[(3S J_zz + 2S(A_xx − A_zz))² − S² J_xx² |γ(k)|²], doubly degenerate; at Γ
  Δ = √[(3SJ_zz + 2SΔA)² − 9S²J_xx²] ≈ 2S √(3J ΔA) for small ΔA (the AF gap grows as the square root).

RPA (Tyablikov) ordering temperature
------------------------------------
Tyablikov decoupling with the magnon energies renormalised ∝ ⟨S^z⟩; near T_c the Bose factors become k_BT/ħω and
the thermal ⟨b_i† b_i⟩ is k_BT [M(k)⁻¹]_ii (equipartition of H₂), so that

    k_B T_c = (S(S+1)/3) / ⟨ S [M(k)⁻¹]_ii ⟩_{k, i}           (quantum spins, Tyablikov)

with the average over the Brillouin zone and over the n sites (symmetry-equivalent sites with one S assumed).
* FM, one site per cell: [M⁻¹]_11 = 1/ħω(k):  k_B T_c = (S+1) / (3 ⟨1/ħω(k)⟩).
* FM, n sites: ⟨S [M⁻¹]_ii⟩ = (S/n) Σ_ν ⟨1/ħω_ν(k)⟩ (the multi-sublattice RPA, e.g. Rusz, Turek & Diviš, PRB 71,
  174408 (2005)).
* Néel AF: [M⁻¹]_11 = a(k)/(a(k)² − |c(k)|²) = a(k)/ħω(k)²:  k_B T_N = S(S+1) / (3 S ⟨a(k)/ħω(k)²⟩).
``classical=True`` replaces S(S+1) by S², the form to compare with classical Monte Carlo.  Both numbers come from
the same M(k), so tc_quantum / tc_classical = (S+1)/S exactly (one S for all sites) — the quantum Tyablikov result
for spin S, k_B T_c = S(S+1)/3 · [⟨1/E(q)⟩]⁻¹ with E(q) = ħω(q)/S the FM magnon energy per unit S (Tyablikov,
*Methods in the Quantum Theory of Magnetism*, Plenum 1967; the multi-sublattice form of Rusz et al. cited above).
The model's single-ion A is the classical one fitted to product-state (DFT) energies; its LSWT gap 2S·ΔA equals
the quantum gap D(2S − 1) of the quantum single-ion constant D = ΔA·S/(S − ½) that gives the same product-state
energies (⟨S_z²⟩ = S(S − ½)cos²θ + S/2 in a spin coherent state), so the quantum RPA uses the right gap at this
order.  Without a gap the 2D
average diverges (Mermin–Wagner) and T_c = 0 is returned.  The single-ion term enters as in LSWT (gap ∝ ⟨S^z⟩),
the simplest RPA treatment of anisotropy (no Anderson–Callen correction) — state this when comparing.  The BZ
average uses Monkhorst–Pack grids (Γ excluded) doubled until two successive values agree to ``tol``.

Spin stiffness (classical)
--------------------------
:meth:`SpinWaves.stiffness`: the energy of a long-wavelength twist of the collinear state (every spin rotated by
q·r_i about an axis ⟂ the ordered direction), per site, ΔE = ½ Σ_ab ρ_ab q_a q_b with

    ρ_ab = −(1/N) Σ_bonds J_iso σ_i σ_j S_i S_j r_a r_b        (meV Å², r the bond vector, σ_i = ±1 the pattern),

from the isotropic parts of the bonds (the twist of a collinear state probes the isotropic exchange; anisotropic
parts only shift the gap).  ρ = ½(ρ_xx + ρ_yy) in the layer plane is the stiffness per site, ρ_s = ρ/A_site (meV)
per area.  For a FM the LSWT dispersion of the lowest branch is ħω(k) ≈ Δ + (ρ/S) k² (tested); honeycomb NN FM
with J < 0 and NN distance d: ρ = ¾|J|S²d².
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase.cell import Cell

from ...errors import WannmagError
from ..spinmodel import MEV_PER_K, MU_B_MEV_PER_T
from .dipolar import collinear_state, layer_frame

__all__ = ["LSWTError", "SpinWaves", "spin_waves_for_order", "local_frame", "honeycomb_gamma", "RPAResult",
           "TcResult"]


class LSWTError(WannmagError):
    """The spin-wave problem is ill-posed (state not stationary or not a minimum, bad k-points, ...)."""


def local_frame(v) -> tuple[np.ndarray, np.ndarray]:
    """(e¹, e²) with e¹ × e² = v for the unit vector v (e¹ ⟂ v chosen along x̂ × v, or ŷ × v if v ∥ x̂)."""
    v = np.asarray(v, float) / np.linalg.norm(v)
    ref = np.array([1.0, 0, 0]) if abs(v[0]) < 0.9 else np.array([0, 1.0, 0])
    e2 = np.cross(v, ref)
    e2 /= np.linalg.norm(e2)
    e1 = np.cross(e2, v)
    return e1, e2


def honeycomb_gamma(kcart, bond_vectors) -> np.ndarray:
    """γ(k) = Σ_δ e^{ik·δ} over the nearest-neighbour bond vectors δ (Å); k Cartesian (Å⁻¹, incl. 2π)."""
    return np.exp(1j * np.asarray(kcart) @ np.asarray(bond_vectors).T).sum(axis=-1)


@dataclass
class RPAResult:
    """RPA ordering temperature (K) with the grid it converged on."""

    tc_quantum: float
    tc_classical: float
    mean_inverse: float  # ⟨S [M⁻¹]_ii⟩ in 1/meV
    nk: int
    converged: bool
    gapless: bool = False

    def as_dict(self) -> dict:
        return {"Tc_RPA_quantum_K": self.tc_quantum, "Tc_RPA_classical_K": self.tc_classical,
                "mean_S_Minv_per_meV": self.mean_inverse, "nk": self.nk, "converged": self.converged,
                "gapless": self.gapless,
                "formula": "k_B Tc = S(S+1)/3 / <S [M(k)^-1]_ii> (quantum); S^2/3 / <...> (classical)"}

    @classmethod
    def from_dict(cls, d: dict) -> "RPAResult":
        """Inverse of :meth:`as_dict`."""
        return cls(float(d["Tc_RPA_quantum_K"]), float(d["Tc_RPA_classical_K"]), float(d["mean_S_Minv_per_meV"]),
                   int(d["nk"]), bool(d["converged"]), gapless=bool(d.get("gapless", False)))


#: the former name (one TcResult per meaning: the Monte Carlo one is montecarlo.tc.TcResult); kept for old code
TcResult = RPAResult


class SpinWaves:
    """LSWT of ``model`` about the ordered state ``directions`` ((n_sites, 3) unit vectors; or ``pattern`` ±1 per
    site along ``axis``).  ``check``: verify that the state is stationary (torque < 1e-6 meV) — see module
    docstring for the formulas and conventions."""

    def __init__(self, model, directions=None, pattern=None, axis=(0.0, 0.0, 1.0), check: bool = True):
        n = model.n_sites
        if directions is None:
            sigma = np.ones(n) if pattern is None else np.asarray(pattern, float)
            if sigma.shape != (n,) or not np.all(np.abs(sigma) == 1):
                raise LSWTError(f"pattern must hold {n} values ±1, got {np.asarray(pattern).tolist()}")
            ax = np.asarray(axis, float)
            if ax.shape != (3,) or np.linalg.norm(ax) < 1e-12:
                raise LSWTError(f"axis must be a non-zero 3-vector, got {axis!r}")
            directions = sigma[:, None] * (ax / np.linalg.norm(ax))[None, :]
        d = np.asarray(directions, float)
        if d.shape != (n, 3) or np.any(np.linalg.norm(d, axis=1) < 1e-12):
            raise LSWTError(f"directions must be {n} non-zero 3-vectors")
        self.model = model
        self.v = d / np.linalg.norm(d, axis=1)[:, None]
        self.S = model.spins.astype(float)
        e = [local_frame(x) for x in self.v]
        self.u = np.array([a + 1j * b for a, b in e])
        self.n = n
        if check:
            tq = self.torques()
            if np.max(np.linalg.norm(tq, axis=1)) > 1e-6:
                k = int(np.argmax(np.linalg.norm(tq, axis=1)))
                raise LSWTError(f"the given state is not a classical stationary state (torque {np.linalg.norm(tq[k]):.3g}"
                                f" meV on site {k}); LSWT needs the ground state (e.g. another axis or order)")
        self._setup()

    # ----------------------------------------------------------------- classical state
    def local_fields(self) -> np.ndarray:
        """∂H/∂S_i (meV per unit spin length) of the ordered state, (n, 3)."""
        m = self.model
        s = self.v * self.S[:, None]
        h = np.zeros((self.n, 3))
        for b in m.bonds:
            h[b.i] += b.J @ s[b.j]
            h[b.j] += b.J.T @ s[b.i]
        for i, A in enumerate(m.single_ion):
            h[i] += (A + A.T) @ s[i]
        if np.any(m.b_field):
            g = np.array([x.g for x in m.sites])
            h -= MU_B_MEV_PER_T * g[:, None] * m.b_field[None, :]
        return h

    def torques(self) -> np.ndarray:
        return np.cross(self.v * self.S[:, None], self.local_fields())

    # ----------------------------------------------------------------- M(k)
    def _setup(self):
        m, u, v, S = self.model, self.u, self.v, self.S
        n = self.n
        a0 = np.zeros((n, n), complex)
        c0 = np.zeros((n, n), complex)
        terms = []  # (i, j, R, ca, cc): k-dependent parts
        for b in m.bonds:
            i, j, J = b.i, b.j, b.J
            f = 0.5 * np.sqrt(S[i] * S[j])
            ca = f * (u[i] @ J @ u[j].conj())
            cc = f * (u[i] @ J @ u[j])
            terms.append((i, j, np.array(b.R, float), ca, cc))
            w = v[i] @ J @ v[j]
            a0[i, i] -= S[j] * w
            a0[j, j] -= S[i] * w
        g = np.array([x.g for x in m.sites])
        for i, A in enumerate(m.single_ion):
            As = 0.5 * (A + A.T)
            a0[i, i] += S[i] * (u[i].conj() @ As @ u[i]) - 2 * S[i] * (v[i] @ As @ v[i])
            c0[i, i] += S[i] * (u[i] @ As @ u[i])
            a0[i, i] += MU_B_MEV_PER_T * g[i] * (m.b_field @ v[i])
        self._a0, self._c0, self._terms = a0, c0, terms

    def _blocks(self, kfrac):
        k = np.atleast_2d(np.asarray(kfrac, float))
        if k.shape[1] == 2:
            k = np.hstack([k, np.zeros((len(k), 1))])
        if k.shape[1] != 3:
            raise LSWTError("k-points must be given as fractional coordinates (m, 3) or (m, 2)")
        nk, n = len(k), self.n
        a = np.broadcast_to(self._a0, (nk, n, n)).copy()
        am = np.broadcast_to(self._a0, (nk, n, n)).copy()  # a(−k)
        c = np.broadcast_to(self._c0, (nk, n, n)).copy()
        for i, j, R, ca, cc in self._terms:
            ph = np.exp(2j * np.pi * (k @ R))
            a[:, i, j] += ca * ph
            a[:, j, i] += np.conj(ca) * np.conj(ph)
            am[:, i, j] += ca * np.conj(ph)
            am[:, j, i] += np.conj(ca) * ph
            c[:, i, j] += cc * ph
            c[:, j, i] += cc * np.conj(ph)
        return a, am, c

    def matrix(self, kfrac) -> np.ndarray:
        """M(k) (m, 2n, 2n) for fractional k-points (units of the reciprocal vectors of ``model.cell``)."""
        a, am, c = self._blocks(kfrac)
        top = np.concatenate([a, c], axis=2)
        bot = np.concatenate([np.conj(np.transpose(c, (0, 2, 1))), np.transpose(am, (0, 2, 1))], axis=2)
        return np.concatenate([top, bot], axis=1)

    def energies(self, kfrac, tol: float = 1e-7) -> np.ndarray:
        """Magnon energies ħω_ν(k) (meV), ascending, shape (m, n) (Colpa's method)."""
        M = self.matrix(kfrac)
        n = self.n
        scale = max(1.0, float(np.max(np.abs(M))))
        eps = 1e-12 * scale
        eye = np.eye(2 * n)
        try:
            K = np.linalg.cholesky(M + eps * eye)
        except np.linalg.LinAlgError:
            wmin = np.linalg.eigvalsh(M)[:, 0]
            bad = int(np.argmin(wmin))
            if wmin[bad] < -tol * scale:
                raise LSWTError(f"M(k) is not positive definite at k = {np.round(np.atleast_2d(kfrac)[bad], 4).tolist()}"
                                f" (eigenvalue {wmin[bad]:.3g} meV): the ordered state is not a minimum") from None
            K = np.linalg.cholesky(M + (abs(wmin.min()) + 1e-9 * scale) * eye)
        Kd = np.conj(np.transpose(K, (0, 2, 1)))  # M = K K† (numpy lower factor) → use K† η K
        eta = np.diag(np.r_[np.ones(n), -np.ones(n)])
        w = np.linalg.eigvalsh(Kd @ eta @ K)
        return np.sort(w[:, n:], axis=1)  # the n positive eigenvalues

    # ----------------------------------------------------------------- paths, gaps, Tc
    def band_path(self, path: str = "GMKG", npoints: int = 200, special_points=None):
        """(ase BandPath, energies (npoints, n) meV) along ``path`` of the model's cell (2D: pbc = (1, 1, 0))."""
        try:
            bp = Cell(self.model.cell).bandpath(path, npoints=npoints, special_points=special_points,
                                                pbc=list(self.model.pbc))
        except Exception as exc:  # noqa: BLE001 - ase raises several types for unknown labels
            raise LSWTError(f"cannot build the band path {path!r} for this cell ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
        return bp, self.energies(bp.kpts)

    def gap(self) -> float:
        """Lowest magnon energy at Γ (meV): the anisotropy gap."""
        return float(self.energies(np.zeros((1, 3)))[0, 0])

    def _mean_inverse(self, nk: int) -> float:
        n = self.n
        periodic = [p for p in range(3) if self.model.pbc[p]]
        grid = (np.arange(nk) + 0.5) / nk - 0.5
        axes = [grid if p in periodic else np.zeros(1) for p in range(3)]
        K = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
        total = 0.0
        for start in range(0, len(K), 32768):
            M = self.matrix(K[start:start + 32768])
            diag = np.real(np.diagonal(np.linalg.inv(M), axis1=1, axis2=2))[:, :n]
            total += float(np.sum(diag * self.S[None, :]))
        return total / (len(K) * n)

    def stiffness(self) -> dict:
        """Classical spin stiffness of the collinear ordered state (module docstring): ``rho_meV_A2`` per site
        (in-plane average), ``rho_s_meV`` per area, the tensor ``rho_ab_meV_A2`` in the Cartesian frame, and the
        in-plane anisotropy of ρ.  Non-collinear states raise LSWTError."""
        m = self.model
        axis = self.v[0]
        proj = self.v @ axis
        if not np.allclose(np.abs(proj), 1.0, atol=1e-8):
            raise LSWTError("the stiffness formula needs a collinear state (all spins ± one axis)")
        sigma = np.sign(proj)
        rho = np.zeros((3, 3))
        for b in m.bonds:
            r = m.bond_vector(b)
            rho -= b.J_iso * sigma[b.i] * sigma[b.j] * self.S[b.i] * self.S[b.j] * np.outer(r, r)
        rho /= self.n

        F = layer_frame(m.cell)
        rl = F @ rho @ F.T
        rho_plane = 0.5 * (rl[0, 0] + rl[1, 1])
        area = float(np.linalg.norm(np.cross(m.cell[0], m.cell[1])))
        return {"rho_meV_A2": float(rho_plane), "rho_s_meV": float(rho_plane * self.n / area),
                "rho_ab_meV_A2": rho.tolist(),
                "in_plane_anisotropy": float(abs(rl[0, 0] - rl[1, 1]) / max(abs(rho_plane), 1e-300)),
                "formula": "rho_ab = -(1/N) sum_bonds J_iso s_i s_j S_i S_j r_a r_b; rho = (rho_xx + rho_yy)/2"}

    def tc_rpa(self, tol: float = 1e-3, nk_start: int = 32, nk_max: int = 512) -> RPAResult:
        """RPA (Tyablikov) ordering temperature (module docstring), quantum S(S+1) and classical S² forms, K."""
        Smean = float(np.mean(self.S))
        gap = self.gap()
        if gap < 1e-6:
            return RPAResult(0.0, 0.0, float("inf"), 0, True, gapless=True)
        nk, prev, val, used = nk_start, None, None, nk_start
        converged = False
        while nk <= nk_max:
            val, used = self._mean_inverse(nk), nk
            if prev is not None and abs(val - prev) <= tol * abs(val):
                converged = True
                break
            prev, nk = val, 2 * nk
        nk = used
        tq = Smean * (Smean + 1) / 3.0 / val / MEV_PER_K
        tc = Smean ** 2 / 3.0 / val / MEV_PER_K
        return RPAResult(tq, tc, val, nk, converged)


def spin_waves_for_order(model, order: str = "FM", axis=None, pattern=None, supercell=None, check: bool = True):
    """LSWT for a collinear ``order`` (FM, Neel, zigzag, stripy or an explicit ``pattern``) of a unit-cell model:
    builds the magnetic supercell model (``dipolar.collinear_state``) and, if ``axis`` is None, takes the axis among
    the layer normal, a1 and the in-plane perpendicular with the lowest classical energy.  Returns (SpinWaves,
    axis)."""
    st, big = collinear_state(model, order=order, pattern=pattern, supercell=supercell)
    if axis is None:
        F = layer_frame(big.cell)
        cands = [F[2], F[0], F[1]]
        E = [big.energy(st.pattern[:, None] * c[None, :]) for c in cands]
        axis = cands[int(np.argmin(np.round(E, 12)))]
    return SpinWaves(big, pattern=st.pattern, axis=axis, check=check), np.asarray(axis, float)
