r"""Flat spin spirals on a lattice with several sites per cell: the classical E(q), the fit of J_1..J_n (+ E_0) to
self-consistent spiral energies, and the small-q spin stiffness (physics only; the GPAW driver is
:mod:`wannmag.workflows.spiral`).

Conventions of wannmag: exchange in meV, H = Σ_{i<j} S_i·J_ij·S_j (every bond (i, j, R) once, classical spins of
length S_i, J > 0 antiferromagnetic), energies in meV **per cell** here, lengths Å, q in reduced coordinates of the
reciprocal cell (Cartesian |q| in Å⁻¹ where stated, including the 2π), angles in radians in the API (degrees in
stored results).

The spiral
----------
The spin of site a in the cell at the integer lattice vector R (Cartesian R·cell) is

    S_a(R) = S_a (cos θ_a(R), sin θ_a(R), 0),    θ_a(R) = 2π q·R + φ_a,

with φ_a the angle of site a in the home cell.  A bond (i, j, R) therefore carries the angle 2π q·R + φ_j − φ_i,
and the isotropic energy per cell is exactly

    E(q) = E_0 + Σ_{bonds (i,j,R)} J_ij S_i S_j cos(2π q·R + φ_j − φ_i)                          (1)

(only the isotropic part Tr(J)/3 of each bond tensor enters; DMI and anisotropic exchange are not in (1)).  It is
linear in the shell constants: E(q) = E_0 + Σ_n J_n c_n(q) with c_n(q) = Σ_{bonds of shell n} S_i S_j cos(...).
(1) holds for *any* home-cell angles φ_a; two choices matter:

* fixed ("lattice" frame): φ_a = φ_a^pat, the collinear pattern's angles (FM: all 0; Néel on the honeycomb:
  φ_B = π) — the spins turn only from cell to cell;
* co-rotating ("bond" frame): φ_a = φ_a^pat + 2π q·s_a (s_a the reduced position of site a): the bond angle is
  q·d_ij + φ_j^pat − φ_i^pat with d_ij the bond vector — the continuous spiral (:func:`corotating_phases`).

GPAW's plane-wave spirals (generalized Bloch theorem, ``qspiral``) are the co-rotating kind: the start moments are
given in the frame that turns with q·r, so the unrelaxed state has φ_a = φ_a^pat + 2π q·s_a, and
``get_non_collinear_magnetic_moments`` returns the physical directions.  Measured (GPAW 26.7, H₂ chain in a 2a cell,
q = ¼, both start moments along x; ``tests/workflows/test_spiral_driver.py`` keeps the live check): the returned
in-plane angles are −8.5° and −53.5° for sites at s = 0.1, 0.6 (−2π q·s = −9°, −54°; the two differ by
q·d = 45° at every shift), they move with a rigid translation of the crystal while the energy does not change
(−2.2164 eV at three shifts); and decisively, the 2a cell at q = ½ with both start moments along x has exactly the
energy per atom of the 1-atom chain at q = ¼ (the uniform 90°-per-a spiral; −1.2337585 eV both) and returns the
relative angle −89.6°, while start moments (x, y) give the ↑↑↓↓ state (relative −0.4°, −1.2577525 eV).  On CrI3
(LDA+U, FM pattern, q = M) the co-rotating start (relative angle 60°) relaxed self-consistently to 1.5° — the
classical optimum of the J1–J3 model at M is 0° — so the realised phases are essential.  GPAW's sense of rotation
is negative (θ(R) = −2π q·R + θ(0)), so the phases of (1) are φ_a = −(GPAW angle of site a) — the mirror spiral, with
the same energy.  Whichever frame a code uses, the fit takes the realised phases, so (1) stays exact.

Honeycomb J1–J3 (two sites A, B per cell, S_A = S_B = S, Δφ = φ_B − φ_A of the pattern; sites at A = (1/3, 2/3),
B = (2/3, 1/3) in the 120° cell of ``data/structures/*.cif``, so the three A→B first-neighbour bonds have R ∈ N1 =
{(0,0), (0,1), (−1,0)}, the third-neighbour bonds R ∈ N3 = {(1,1), (−1,1), (−1,−1)}, the six second-neighbour
bonds per cell are A→A and B→B with R ∈ {(1,0), (0,1), (1,1)}, and s_B − s_A = δ = (1/3, −1/3)):

    E(q) = E_0 + S² [ J1 Σ_{R∈N1} cos(2π q·(R + ε δ) + Δφ)
                      + 2 J2 (cos 2πq₁ + cos 2πq₂ + cos 2π(q₁+q₂))
                      + J3 Σ_{R∈N3} cos(2π q·(R + ε δ) + Δφ) ]                                    (2)

per cell (two magnetic ions), ε = 0 in the fixed frame, ε = 1 in the co-rotating (GPAW) frame, where R + δ runs over
the bond vectors {(⅓, −⅓), (⅓, ⅔), (−⅔, −⅓)} and −2× them.  Checks (:func:`honeycomb_spiral_energy`): FM at Γ
gives S²(3J1 + 6J2 + 3J3) and Néel at Γ S²(−3J1 + 6J2 − 3J3), twice the per-ion collinear counts of the README.
Co-rotating frame: FM pattern at M = (½, 0): S²(½J1 − 2J2 − 3/2 J3), Néel pattern at M: S²(−½J1 − 2J2 + 3/2 J3);
fixed frame: FM at M S²(J1 − 2J2 − 3J3), Néel at M S²(−J1 − 2J2 + 3J3); at K = (⅓, ⅓) the J1 and J3 sums vanish
in both frames and patterns: −3S²J2.  Γ, M, K of one pattern plus Γ of the other determine E_0, J1, J2, J3 (regular 4×4 design in both frames).
:func:`spiral_energy` evaluates (1) from any :class:`SpinModel`.

Honeycomb subtlety: for a general q the self-consistent relative angle of the two sublattices is not pinned to the
unrelaxed value — a torque can relax it.  (1) is exact for whatever angles the spins take, so the fit takes the
phases realised in the DFT (from the non-collinear moments) when given, and warns when they differ from the assumed
ones by more than 10°.

Small-q stiffness
-----------------
For pattern phases 0 or π on every bond, (1) expands as E(q) − E(0) = q·D·q + O(q⁴) with Cartesian q (Å⁻¹) and

    D = −½ Σ_{bonds} J_ij S_i S_j cos(φ_j^pat − φ_i^pat) v vᵀ      (D in meV Å² per cell)

with v = R·cell (fixed frame) or v = d_ij, the bond vector (co-rotating frame) (:func:`stiffness_tensor`); only the
co-rotating D has the lattice symmetry (isotropic in plane on the honeycomb).  :func:`fit_stiffness` fits D along one direction from the points with |q| ≤ q_max on
their own (with a q⁴ term when there are at least two such points besides Γ): the number is the fixed-phase
stiffness of the frame the data were computed in; if the sublattice angle relaxes, the realised phases enter the full fit, not this one.  Valid only
while the q⁴ term is small against the q² term at q_max (its relative size is returned).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from .._atomic import jsonable
from .energy_mapping import FitError
from .linfit import linear_fit
from .spinmodel import SpinModel

__all__ = ["SpiralFit", "SpiralFitError", "spiral_energy", "spiral_design", "honeycomb_spiral_energy",
           "stiffness_tensor", "fit_stiffness", "fit_spiral", "pattern_phases", "corotating_phases", "PHASE_WARN_DEG",
           "high_symmetry_label", "select_shells"]

#: realised sublattice phases further than this from the pattern's are warned about (degrees)
PHASE_WARN_DEG = 10.0


class SpiralFitError(FitError):
    """A spin-spiral fit cannot be made (too few or degenerate points, bad input)."""


def pattern_phases(sigma) -> np.ndarray:
    """Sublattice phases φ_a (rad) of a collinear pattern σ_a = ±1: 0 for +1, π for −1."""
    return np.where(np.asarray(sigma, float) >= 0, 0.0, math.pi)


def _phases(model: SpinModel, phases) -> np.ndarray:
    if phases is None:
        return np.zeros(model.n_sites)
    ph = np.asarray(phases, float)
    if ph.shape != (model.n_sites,) or not np.all(np.isfinite(ph)):
        raise SpiralFitError(f"need {model.n_sites} finite sublattice phases, got {np.asarray(phases).tolist()}")
    return ph


def _qarray(q) -> np.ndarray:
    q = np.atleast_2d(np.asarray(q, float))
    if q.shape[1] == 2:
        q = np.hstack([q, np.zeros((len(q), 1))])
    if q.shape[1] != 3 or not np.all(np.isfinite(q)):
        raise SpiralFitError(f"q points must be finite 2- or 3-vectors (reduced coordinates), got shape {q.shape}")
    return q


def _phases_per_point(model, q, phases):
    """(n_q, n_sites) phases: one set for all q, or one per q."""
    if phases is None:
        return np.zeros((len(q), model.n_sites))
    ph = np.asarray(phases, float)
    if ph.ndim == 1:
        return np.tile(_phases(model, ph), (len(q), 1))
    if ph.shape != (len(q), model.n_sites) or not np.all(np.isfinite(ph)):
        raise SpiralFitError(f"phases must be ({model.n_sites},) or ({len(q)}, {model.n_sites}), got {ph.shape}")
    return ph


def spiral_design(model: SpinModel, q, phases=None, n_shells: int | None = None) -> np.ndarray:
    """Design matrix [1, c_1(q), ..., c_n(q)] of eq. (1) (module docstring), one row per q.

    c_n(q) = Σ_{bonds of shell n} S_i S_j cos(2π q·R + φ_j − φ_i) (per cell); shells from the bonds' ``shell``
    labels (assigned by length if missing).  ``phases``: (n_sites,) for all q or (n_q, n_sites), radians."""
    q = _qarray(q)
    ph = _phases_per_point(model, q, phases)
    if any(b.shell is None for b in model.bonds):
        model.assign_shells()
    nmax = max((b.shell for b in model.bonds), default=0)
    n = nmax if n_shells is None else int(n_shells)
    if n < 1 or n > nmax:
        raise SpiralFitError(f"the model has bonds in {nmax} shell(s); cannot fit {n}")
    S = model.spins
    A = np.zeros((len(q), n + 1))
    A[:, 0] = 1.0
    for b in model.bonds:
        if b.shell > n:
            continue
        ang = 2 * np.pi * q @ np.asarray(b.R, float) + ph[:, b.j] - ph[:, b.i]
        A[:, b.shell] += S[b.i] * S[b.j] * np.cos(ang)
    return A


def spiral_energy(model: SpinModel, q, phases=None) -> np.ndarray:
    """Classical energy per cell (meV) of the flat spiral (q, phases) of eq. (1) with the isotropic part Tr(J)/3 of
    every bond of ``model`` (E_0 = 0).  ``q``: one or many reduced 3-vectors; returns one energy per q."""
    q = _qarray(q)
    ph = _phases_per_point(model, q, phases)
    S = model.spins
    E = np.zeros(len(q))
    for b in model.bonds:
        ang = 2 * np.pi * q @ np.asarray(b.R, float) + ph[:, b.j] - ph[:, b.i]
        E += b.J_iso * S[b.i] * S[b.j] * np.cos(ang)
    return E


def relaxed_spiral_energy(model: SpinModel, q, step_deg: float = 0.1) -> tuple[float, float]:
    """Lowest energy per cell (meV, E_0 = 0) of the flat spiral at one reduced ``q`` of a two-site ``model`` over the
    relative sublattice angle φ_1 − φ_0 of eq. (1) (grid of ``step_deg``), and that angle in degrees: what a
    self-consistent spiral whose sublattice angle relaxes fully reaches."""
    if len(model.sites) != 2:
        raise SpiralFitError(f"relaxed_spiral_energy: needs a two-site cell, got {len(model.sites)} sites")
    grid = np.radians(np.arange(0.0, 360.0, step_deg))
    e = spiral_energy(model, np.repeat(_qarray(q)[:1], len(grid), axis=0),
                      np.stack([np.zeros_like(grid), grid], axis=1))
    k = int(np.argmin(e))
    return float(e[k]), round(float(np.degrees(grid[k])), 1)


def honeycomb_spiral_energy(q, J1, J2, J3, S=1.5, dphi=0.0, E0=0.0, frame="lattice") -> np.ndarray:
    """Eq. (2) of the module docstring: E(q) per cell (meV) of the honeycomb J1–J3 model with the sites at
    A = (1/3, 2/3), B = (2/3, 1/3) of the 120° cell, pattern phase ``dphi`` = φ_B − φ_A (rad), ``frame``
    "lattice" (fixed home-cell angles, ε = 0) or "bond" (co-rotating, GPAW's, ε = 1)."""
    q = _qarray(q)[:, :2]
    eps = {"lattice": 0.0, "bond": 1.0}[frame]
    delta = eps * np.array([1 / 3, -1 / 3])
    N1 = np.array([(0, 0), (0, 1), (-1, 0)], float) + delta
    N3 = np.array([(1, 1), (-1, 1), (-1, -1)], float) + delta
    N2 = np.array([(1, 0), (0, 1), (1, 1)], float)
    c1 = np.cos(2 * np.pi * q @ N1.T + dphi).sum(1)
    c2 = 2 * np.cos(2 * np.pi * q @ N2.T).sum(1)
    c3 = np.cos(2 * np.pi * q @ N3.T + dphi).sum(1)
    return E0 + S**2 * (J1 * c1 + J2 * c2 + J3 * c3)


def corotating_phases(model: SpinModel, q, sigma) -> np.ndarray:
    """Home-cell angles (n_q, n_sites, rad) of the co-rotating spiral on the pattern σ: φ_a = φ_a^pat + 2π q·s_a,
    s_a the reduced position of site a (module docstring) — the unrelaxed state of a GPAW ``qspiral`` run."""
    q = _qarray(q)
    s = np.array([site.position for site in model.sites]) @ np.linalg.inv(model.cell)
    return pattern_phases(sigma)[None, :] + 2 * np.pi * q @ s.T


def stiffness_tensor(model: SpinModel, pattern=None, frame: str = "bond") -> np.ndarray:
    """D (3×3, meV Å² per cell) with E(q) − E(0) = q·D·q + O(q⁴), q Cartesian in Å⁻¹ (module docstring), for the
    collinear ``pattern`` (σ_a = ±1 or phases 0/π; default FM) in the co-rotating (``frame="bond"``, GPAW's) or fixed
    (``"lattice"``) frame.  Requires every bond phase φ_j − φ_i to be 0 or π: otherwise E(q) has a linear term."""
    if pattern is None:
        ph = np.zeros(model.n_sites)
    else:
        p = np.asarray(pattern, float)
        ph = pattern_phases(p) if np.all(np.isin(p, (-1.0, 1.0))) else _phases(model, p)
    if frame not in ("bond", "lattice"):
        raise SpiralFitError(f"frame must be 'bond' or 'lattice', got {frame!r}")
    S = model.spins
    D = np.zeros((3, 3))
    for b in model.bonds:
        c = math.cos(ph[b.j] - ph[b.i])
        if abs(abs(c) - 1.0) > 1e-9:
            raise SpiralFitError("the small-q expansion needs collinear reference phases (0 or π on every bond)")
        v = model.bond_vector(b) if frame == "bond" else np.asarray(b.R, float) @ model.cell
        D += -0.5 * b.J_iso * S[b.i] * S[b.j] * c * np.outer(v, v)
    return D


@dataclass
class SpiralFit:
    """Result of :func:`fit_spiral`: J_n (meV, internal convention), E_0 (meV per cell), residuals (meV per cell,
    model − data, one per point), rank/condition number of the design, realised phases (degrees) and warnings;
    ``stiffness``: result of :func:`fit_stiffness` (or None when too few small-q points)."""

    J: list
    E0: float
    spin: list
    distances: list
    q: list
    energies: list
    residuals: list
    rank: int
    condition_number: float
    stderr: list | None
    phases_deg: list
    pattern_phases_deg: list
    stiffness: dict | None = None
    warnings: list = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    @property
    def rms_residual(self) -> float:
        r = np.asarray(self.residuals, float)
        return float(np.sqrt(np.mean(r**2))) if r.size else 0.0

    def as_dict(self) -> dict:
        return jsonable({
            "convention": "H = sum_{i<j} J_ij S_i.S_j, each bond once, |S| = S, J > 0 AF, meV; E per cell (meV)",
            "J": self.J, "E0": self.E0, "spin": self.spin, "distances": self.distances, "q": self.q,
            "energies": self.energies, "residuals": self.residuals, "rms_residual": self.rms_residual,
            "rank": self.rank, "condition_number": self.condition_number, "stderr": self.stderr,
            "phases_deg": self.phases_deg, "pattern_phases_deg": self.pattern_phases_deg,
            "stiffness": self.stiffness, "warnings": self.warnings, "meta": self.meta})

    @classmethod
    def from_dict(cls, d: dict) -> "SpiralFit":
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in names})

    def table(self) -> str:
        lines = [f"spin-spiral fit: {len(self.q)} q points, rank {self.rank}, condition number "
                 f"{self.condition_number:.3g}, rms residual {self.rms_residual:.3f} meV/cell",
                 "  H = Σ_{i<j} J_ij S_i·S_j (each bond once, |S| = S, J > 0 AF), J in meV"]
        for n, J in enumerate(self.J, start=1):
            err = "" if self.stderr is None else f" ± {self.stderr[n - 1]:.3f}"
            lines.append(f"  J{n} ({self.distances[n - 1]:.3f} Å) = {J:+.3f}{err} meV")
        if self.stiffness:
            s = self.stiffness
            lines.append(f"  stiffness D = {s['D']:.2f} meV Å² per cell along {s['direction']} (|q| ≤ "
                         f"{s['q_max']:.3f} Å⁻¹, {s['n_points']} points)")
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def _cartesian(model, q):
    return _qarray(q) @ (2 * np.pi * np.linalg.inv(model.cell).T)


def high_symmetry_label(cell, q, tol: float = 1e-4) -> str | None:
    """"Γ", "M" or "K" when the reduced wave vector ``q`` (coordinates of the reciprocal cell of ``cell``, Å) is
    one of the high-symmetry points of a hexagonal 2D zone, else None.  ``q`` is folded to its shortest image
    q_min (in-plane reciprocal vectors n1 b1 + n2 b2, |n| ≤ 2); with b = |b1| = |b2| at 60° or 120°, the zone is
    a hexagon whose boundary points nearest to Γ (|q_min| = b/2) are exactly the edge midpoints M and whose
    farthest (|q_min| = b/√3) are exactly the corners K.  A non-hexagonal in-plane cell gives None except at Γ."""
    cell = np.asarray(cell, float)
    B = 2 * np.pi * np.linalg.inv(cell).T
    qc = np.asarray(q, float)[:3] @ B
    imgs = [qc - n1 * B[0] - n2 * B[1] for n1 in range(-2, 3) for n2 in range(-2, 3)]
    qm = min(float(np.linalg.norm(v)) for v in imgs)
    b1, b2 = np.linalg.norm(B[0]), np.linalg.norm(B[1])
    if qm < tol * b1:
        return "Γ"
    cosang = abs(float(B[0] @ B[1]) / (b1 * b2))
    if abs(b1 - b2) > tol * b1 or abs(cosang - 0.5) > 1e-3:
        return None
    if abs(qm - b1 / 2) < tol * b1:
        return "M"
    if abs(qm - b1 / np.sqrt(3)) < tol * b1:
        return "K"
    return None


def select_shells(scan: dict, tolerance: float | None) -> dict:
    """The fewest exchange shells whose rms residual is within ``tolerance`` (meV per cell, the SCF energy
    resolution of the spiral energies): residuals below it cannot be told from SCF noise, so more shells would fit
    noise.  ``scan``: {"n_points", "fits": [{"n_shells", "status" ("fitted" or not), "rms_residual", ...}]} in
    increasing n_shells (the shell scan of the spiral workflow).  Returns {"n_shells", "fit" (the scan's row),
    "reason"}; n_shells None (with the reason) when no tolerance is known or no fitted shell count reaches it —
    never the best of the rest silently."""
    fitted = [r for r in scan.get("fits", []) if r.get("status") == "fitted"]
    summary = ", ".join(f"J1–J{r['n_shells']} {r['rms_residual']:.3f}" for r in fitted)
    if tolerance is None:
        return {"n_shells": None, "fit": None, "reason": f"no SCF energy tolerance known (rms: {summary})"}
    for r in fitted:
        if r["rms_residual"] <= tolerance:
            return {"n_shells": r["n_shells"], "fit": r,
                    "reason": f"J1–J{r['n_shells']}: the fewest shells with rms {r['rms_residual']:.3f} ≤ the SCF "
                              f"tolerance {tolerance:.2f} meV/cell ({scan['n_points']} points; rms: {summary})"}
    return {"n_shells": None, "fit": None,
            "reason": f"no shell count up to {max((r['n_shells'] for r in fitted), default=0)} fits within the SCF "
                      f"tolerance {tolerance:.2f} meV/cell (rms: {summary}): E(q) is not a short-range "
                      "Heisenberg curve at this resolution"}


def fit_stiffness(model: SpinModel, q, energies, q_max: float, E_gamma: float | None = None) -> dict:
    """D along one direction from E(q) − E(0) = D |q|² (+ B |q|⁴) on the points with 0 < |q| ≤ ``q_max`` (Å⁻¹,
    Cartesian, 2π included); ``energies`` meV per cell; E(0) from the Γ point of the set (or ``E_gamma``).
    All small-q points must lie on one line through Γ.  The q⁴ term is fitted when there are ≥ 2 such points;
    ``quartic_fraction`` = |B| q_max² / |D| says how far the q² law holds at q_max.  Raises
    :class:`SpiralFitError` if there is no Γ point or no small-q point."""
    qc = _cartesian(model, q)
    E = np.asarray(energies, float)
    norm = np.linalg.norm(qc, axis=1)
    if E_gamma is None:
        g = np.flatnonzero(norm < 1e-9)
        if not g.size:
            raise SpiralFitError("the stiffness needs the Γ point (q = 0) in the set")
        if np.ptp(E[g]) > 1e-6:
            raise SpiralFitError("several Γ points with different energies (two patterns?): give the points of one "
                                 "pattern or E_gamma")
        E_gamma = float(E[g].mean())
    sel = np.flatnonzero((norm > 1e-9) & (norm <= q_max + 1e-12))
    if not sel.size:
        raise SpiralFitError(f"no q point with 0 < |q| ≤ {q_max:g} Å⁻¹ for the stiffness")
    dirs = qc[sel] / norm[sel, None]
    u = dirs[0]
    if np.any(np.abs(np.abs(dirs @ u) - 1) > 1e-6):
        raise SpiralFitError("the small-q points for the stiffness must lie on one line through Γ")
    x = norm[sel]
    y = E[sel] - E_gamma
    quartic = len(sel) >= 2
    A = np.column_stack([x**2, x**4]) if quartic else x[:, None] ** 2
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    D = float(coef[0])
    B = float(coef[1]) if quartic else None
    qm = float(x.max())
    return {"D": D, "B": B, "unit": "meV Å² per cell (E − E(Γ) = D|q|² + B|q|⁴, |q| in Å⁻¹ incl. 2π)",
            "direction": np.round(u, 6).tolist(), "q_max": qm, "n_points": int(len(sel)),
            "quartic_fraction": None if B is None or D == 0 else abs(B) * qm**2 / abs(D),
            "residuals": (A @ coef - y).tolist(),
            "validity": f"|q| ≤ {qm:.4f} Å⁻¹ along {np.round(u, 3).tolist()}; stiffness of the frame the energies were computed in"}


def fit_spiral(model: SpinModel, q, energies, n_shells: int = 3, phases=None, pattern=None,
               max_condition: float = 1e4, stiffness_q_max: float | None = None,
               source: str = "spin spirals") -> SpiralFit:
    """Least-squares fit of E_0 (meV per cell) and J_1..J_n (meV) of ``model``'s first ``n_shells`` shells to the
    spiral energies ``energies`` (meV per cell, one per reduced q in ``q``) with eq. (1).

    ``pattern``: the reference pattern (σ_a = ±1 or phases in rad; one for all q or one row per q, so that points
    of two patterns, e.g. FM spirals plus the Néel state at Γ, go into one fit) — the phases assumed when
    ``phases`` is None;
    ``phases``: the realised sublattice phases (rad), one set per q (n_q, n_sites) or one for all.  A realised
    phase further than :data:`PHASE_WARN_DEG` from the pattern's is warned about (and recorded).  Refuses with one
    :class:`SpiralFitError`: fewer points than unknowns, a rank-deficient design (names the undetermined unknowns),
    a condition number above ``max_condition``, non-finite energies.  ``stiffness_q_max`` (Å⁻¹): fit the small-q
    stiffness on the points with |q| ≤ it (:func:`fit_stiffness`; a set with Γ points of two patterns gets no
    stiffness here — fit it on one pattern's points).
    """
    q = _qarray(q)
    E = np.asarray(energies, float).ravel()
    if len(E) != len(q):
        raise SpiralFitError(f"{source}: {len(q)} q points but {len(E)} energies")
    if not np.all(np.isfinite(E)):
        raise SpiralFitError(f"{source}: non-finite energies")
    if pattern is None:
        pat = np.zeros((len(q), model.n_sites))
    else:
        p = np.asarray(pattern, float)
        pat = _phases_per_point(model, q, pattern_phases(p) if np.all(np.isin(p, (-1.0, 1.0))) else p)
    msgs = []
    if phases is None:
        ph = pat.copy()
    else:
        ph = _phases_per_point(model, q, phases)
        x = (ph - ph[:, :1]) - (pat - pat[:, :1])
        dev = np.abs(np.degrees((x + np.pi) % (2 * np.pi) - np.pi))
        for k in np.flatnonzero(dev.max(axis=1) > PHASE_WARN_DEG):
            msgs.append(f"q = {np.round(q[k], 4).tolist()}: realised sublattice phases differ from the pattern by "
                        f"up to {dev[k].max():.1f}° (> {PHASE_WARN_DEG:g}°); the realised ones are used")
    n_unknowns = n_shells + 1
    if len(q) < n_unknowns:
        raise SpiralFitError(f"{source}: {len(q)} spiral energies cannot determine E0 and J1..J{n_shells} "
                             f"({n_unknowns} unknowns)")
    A = spiral_design(model, q, ph, n_shells)
    labels = ["E0"] + [f"J{n}" for n in range(1, n_shells + 1)]
    fit = linear_fit(A, E, labels=labels)
    if not fit.full_rank:
        raise SpiralFitError(f"{source}: the {len(q)} q points do not determine {', '.join(fit.undetermined)} "
                             f"(design rank {fit.rank} < {n_unknowns}); add q points of another kind")
    if not (fit.condition_number <= max_condition):
        raise SpiralFitError(f"{source}: ill-conditioned spiral fit (condition number {fit.condition_number:.3g} "
                             f"> {max_condition:g})")
    for m in msgs:
        warnings.warn(m, stacklevel=2)
    distances = [float(d) for d in model.assign_shells()][:n_shells] if any(b.shell is None for b in model.bonds) \
        else [float(np.mean([model.bond_length(b) for b in model.bonds if b.shell == n]))
              for n in range(1, n_shells + 1)]
    stiff = None
    if stiffness_q_max is not None:
        try:
            stiff = fit_stiffness(model, q, E, stiffness_q_max)
        except SpiralFitError as exc:
            msgs.append(f"no stiffness: {exc}")
    return SpiralFit(J=[float(x) for x in fit.x[1:]], E0=float(fit.x[0]), spin=model.spins.tolist(),
                     distances=distances, q=q.tolist(), energies=E.tolist(), residuals=fit.residuals.tolist(),
                     rank=int(fit.rank), condition_number=float(fit.condition_number),
                     stderr=None if fit.stderr is None else [float(x) for x in fit.stderr[1:]],
                     phases_deg=np.degrees(ph).round(3).tolist(), pattern_phases_deg=np.degrees(pat).tolist(),
                     stiffness=stiff, warnings=msgs, meta={"source": source, "n_shells": n_shells})
