"""Single-ion and exchange anisotropy from force-theorem spin–orbit energies of *collinear* states.

Convention (internal, as everywhere in wannmag): H = Σ_{i<j} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i, every bond once,
classical spins of length S (3/2 for Cr3+, V2+), J > 0 antiferromagnetic, meV; Cartesian components, z ∥ the
layer normal c = a1 × a2.

Why collinear states suffice
----------------------------
In a collinear state with moments σ_i n (σ_i = ±1, all along ±n) the classical energy is

    E(n) = const + n·M·n,       M = S² Σ_bonds σ_i σ_j J^s_ij + S² Σ_i A_i,

with J^s the symmetric part of the bond tensor (DMI drops out: σ_iσ_j n·(D × n) = 0).  By the magnetic force
theorem the spin–orbit band energy of a converged collinear calculation with the spin axis along n
(:func:`gpaw_mae`, ``soc_eigenstates``) equals E(n) up to an n-independent constant.  Energies of one order along
several directions therefore measure the traceless part of M for that order (at most 5 numbers; directions must
span the quadratic forms n nᵀ: e.g. x, y, z and the three diagonals), never its constant — and that is all that is
used: each order gets its own fitted constant, so the total-energy differences between orders (SCF noise, different
densities) never enter.  Several orders in the SAME supercell (FM, Néel, zigzag, stripy in the rectangular 4-site
cell) weight the bonds with different σ_iσ_j, which separates the terms.

Model fitted (linear least squares, :func:`fit_collinear_soc`)
--------------------------------------------------------------
* ``A``: uniaxial single-ion anisotropy D = A_zz − A_⊥ on every site (A_i = D (ĉĉ − 1/3); the site symmetry D3 of
  the honeycomb MX3 layers allows nothing else); D < 0 favours moments along c.
* ``K``, ``Gamma``, ``Gamma_prime``: the traceless anisotropic part of every nearest-neighbour (edge-sharing) bond
  in its own cubic frame (:func:`kitaev_frame`; Rau–Lee–Kee form, :func:`kitaev_tensor` with J = 0, trace
  removed).  The C2h symmetry of the bond allows exactly these three symmetric anisotropic terms; the NN DMI is
  zero by inversion (and invisible here anyway).  ``nn="xxz"`` replaces them by one uniaxial λ₁.
* ``lambda_k`` (k = 2, 3, ...): XXZ anisotropy λ = J_zz − J_⊥ of shell k, the same uniaxial tensor
  λ (ĉĉ − 1/3) on every bond of the shell (the C3 average; the non-uniaxial parts of the longer bonds are not
  modelled and end up in the residual or, in zigzag/stripy, partly in K, Γ, Γ′ — stated approximation).
* one constant per order.
The XXZ anisotropy of the NN shell is derived, λ₁ = J_zz − J_⊥ of the C3 average of the NN tensor
(:func:`xxz_parameters`; for ideal cubic axes λ₁ = Γ + 2Γ′, K does not enter).

Rank (what is determined)
-------------------------
FM and Néel keep the C3 axis: each gives one number (E_in − E_out), the uniaxial combinations
D + (3/2)λ₁ + 3λ₂ + (3/2)λ₃ and D − (3/2)λ₁ + 3λ₂ − (3/2)λ₃ (per ion, in units of S²).  Zigzag and stripy break
C3; both keep the C2h of the "rung" bond, so each gives three numbers.  Their sum is uniaxial (the NN and 3NN
terms cancel): D − λ₂; their difference holds the rung bond's own tensor (K, Γ, Γ′) and λ₃.  All four orders with
a complete direction set give 8 numbers for 6 unknowns (D, K, Γ, Γ′, λ₂, λ₃): full rank, 2 degrees of freedom left
for the residual (they measure what the model leaves out: the non-uniaxial part of the 2NN bonds, quartic terms).
FM alone determines one combination; FM + Néel two; any set that leaves a parameter undetermined raises
:class:`CollinearFitError` naming the parameters that cannot be separated (:meth:`CollinearDesign.undetermined`).

Energies: meV per cell of the calculation (the supercell P of the order; :class:`MAEResult` energies are that).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...structures import Configuration, find_magnetic_sites, neighbour_shells
from ...structures.magnetic import MagneticSublattice
from ..linfit import linear_fit
from ..spinmodel import SpinModel
from .dipolar import DipolarError, collinear_state, layer_frame, match_sites
from .fourstate import kitaev_tensor, model_bond_frames, xxz_parameters
from .soc import MAEResult, SOCError, direction_angles, gpaw_mae, spin_direction

__all__ = ["CollinearFitError", "CollinearDesign", "CollinearSOCFit", "fit_collinear_soc", "collinear_design",
           "template_model", "soc_directions", "gpaw_soc_record", "fit_soc_records"]


class CollinearFitError(SOCError):
    """The collinear force-theorem fit cannot separate the anisotropy terms (underdetermined) or has bad input."""


def _traceless(T):
    T = 0.5 * (np.asarray(T, float) + np.asarray(T, float).T)
    return T - np.trace(T) / 3.0 * np.eye(3)


def template_model(structure, n_shells: int = 3, tol: float = 0.05):
    """A SpinModel on the magnetic sites of ``structure`` with zero-tensor bonds of the first ``n_shells`` shells
    (the bond list the fit works on), shell labels set."""
    sub = structure if isinstance(structure, MagneticSublattice) else find_magnetic_sites(structure)
    model = SpinModel.from_sublattice(sub, meta={"method": "template for the collinear SOC fit"})
    for n, sh in enumerate(neighbour_shells(sub, n_shells=n_shells, tol=tol), start=1):
        for b in sh.bonds:
            model.add_bond(b.i, b.j, b.R, 0.0, shell=n)
    return model


def soc_directions(structure=None, frames=None, extra_random: int = 0, seed: int = 0) -> list[tuple[float, float]]:
    """A direction set (θ, φ in degrees) for the fit: ±z, x, y and the three diagonals x±y, x±z, y±z of the
    Cartesian frame, the cubic axes x_c, y_c, z_c of the nearest-neighbour bonds (the γ̂ axes of their
    :func:`kitaev_frame`) and their six face diagonals, plus ``extra_random`` random directions.  ``frames``:
    the NN cubic frames (default: from ``structure``)."""
    vecs = [np.array(v, float) for v in ([0, 0, 1], [0, 0, -1], [1, 0, 0], [0, 1, 0])]
    for a, b in ((0, 1), (0, 2), (1, 2)):
        for s in (1, -1):
            v = np.zeros(3)
            v[a], v[b] = 1.0, s
            vecs.append(v / np.sqrt(2))
    if frames is None and structure is not None:
        tm = template_model(structure, n_shells=1)
        frames = model_bond_frames(tm, structure, tm.bonds)
    if frames is not None:
        axes = [np.asarray(F, float)[2] for F in frames]
        vecs += axes
        for a in range(len(axes)):
            for b in range(a + 1, len(axes)):
                for s in (1, -1):
                    v = axes[a] + s * axes[b]
                    vecs.append(v / np.linalg.norm(v))
    rng = np.random.default_rng(seed)
    for _ in range(extra_random):
        v = rng.normal(size=3)
        vecs.append(v / np.linalg.norm(v))
    out = []
    for v in vecs:
        if not any(np.allclose(v, w, atol=1e-8) for w in out):
            out.append(v)
    return [tuple(round(x, 10) for x in direction_angles(v)) for v in out]


# --------------------------------------------------------------------------------------------------------------
# design
# --------------------------------------------------------------------------------------------------------------

@dataclass
class _Order:
    name: str
    supercell: np.ndarray
    pattern: np.ndarray          # ±1 per site of the template's supercell model (its site order)
    n_sites: int
    M: dict = field(default_factory=dict)   # parameter -> 3×3 (meV per cell per unit parameter)


def _order_state(template, name, spec):
    """(supercell P, pattern in the order of ``template.supercell(P)``) of one order specification."""
    if isinstance(spec, Configuration):
        P, pattern, positions = np.asarray(spec.supercell, int), np.asarray(spec.pattern, int), spec.sublattice.positions
    elif isinstance(spec, dict) and spec.get("resolved"):
        # already in the site order of template.supercell(P) (CollinearDesign.as_dict): taken as it is
        P, pat = np.asarray(spec["supercell"], int), np.asarray(spec["pattern"], int)
        return P, pat, len(pat)
    elif isinstance(spec, dict):
        if "supercell" not in spec or "pattern" not in spec:
            raise CollinearFitError(f"order {name}: give 'supercell' and 'pattern' (and optionally 'positions')")
        P, pattern = np.asarray(spec["supercell"], int), np.asarray(spec["pattern"], int)
        positions = spec.get("positions")
    elif isinstance(spec, (tuple, list)) and len(spec) == 2:
        P, pattern, positions = np.asarray(spec[0], int), np.asarray(spec[1], int), None
    else:
        raise CollinearFitError(f"order {name}: expected a Configuration, a dict with supercell/pattern or a "
                                f"(supercell, pattern) pair, got {type(spec).__name__}")
    try:
        if positions is not None:
            big, _ = template.supercell(P)
            if len(positions) != big.n_sites or len(pattern) != big.n_sites:
                raise CollinearFitError(f"order {name}: {len(pattern)} pattern values / {len(positions)} positions "
                                        f"for {big.n_sites} sites of supercell {P.tolist()}")
            m = match_sites([s.position for s in big.sites], positions, big.cell)
            pat = pattern[m]
        else:
            st, big = collinear_state(template, order=None, pattern=pattern, supercell=P)
            pat = st.pattern
    except DipolarError as exc:
        raise CollinearFitError(f"order {name}: {exc}") from None
    if not np.all(np.abs(pat) == 1):
        raise CollinearFitError(f"order {name}: the pattern must hold ±1 values")
    return P, np.asarray(pat, int), big.n_sites


def _energies(name, data):
    """(N×3 unit vectors, energies meV per cell) from an MAEResult, a {(θ, φ): E} dict or a list of (n, E)."""
    if isinstance(data, MAEResult):
        vec = [spin_direction(t, p) for t, p in zip(data.theta, data.phi)]
        E = list(data.energy)
    elif isinstance(data, dict) and "energies" in data:
        dirs = data.get("directions")
        if dirs is None:
            dirs = [(d["theta"], d["phi"]) for d in data["angles"]]
        vec = [spin_direction(*d) if len(d) == 2 else np.asarray(d, float) for d in dirs]
        E = list(data["energies"])
    elif isinstance(data, dict):
        vec = [spin_direction(*k) if len(k) == 2 else np.asarray(k, float) for k in data]
        E = list(data.values())
    else:
        pairs = list(data)
        vec = [np.asarray(v, float) if len(v) == 3 else spin_direction(*v) for v, _ in pairs]
        E = [e for _, e in pairs]
    vec = np.array(vec, float).reshape(-1, 3)
    E = np.array(E, float)
    if len(vec) != len(E) or not len(E):
        raise CollinearFitError(f"order {name}: no (direction, energy) pairs")
    norms = np.linalg.norm(vec, axis=1)
    if np.any(norms < 1e-12) or not np.all(np.isfinite(E)):
        raise CollinearFitError(f"order {name}: zero direction vector or non-finite energy")
    return vec / norms[:, None], E


class CollinearDesign:
    """The linear model E_o(n) = c_o + Σ_p x_p n·M_{o,p}·n of :func:`fit_collinear_soc` for a set of orders
    (module docstring): parameter names, the 3×3 matrices M_{o,p} (meV per cell per unit parameter) and the
    rank analysis for given direction sets."""

    def __init__(self, template, structure, orders: dict, nn: str = "kitaev", n_shells: int | None = None,
                 single_ion: bool = True, tol: float = 0.05, frames: list | None = None):
        if nn not in ("kitaev", "xxz"):
            raise CollinearFitError(f"nn must be 'kitaev' or 'xxz', got {nn!r}")
        if not orders:
            raise CollinearFitError("no collinear orders given")
        self.template = copy.deepcopy(template)
        distances = self.template.assign_shells(tol)
        shells_present = len(distances)
        self.n_shells = shells_present if n_shells is None else min(int(n_shells), shells_present)
        self.c = layer_frame(self.template.cell)[2]
        self.uniaxial = np.outer(self.c, self.c) - np.eye(3) / 3.0
        self.nn = nn
        bonds = self.template.bonds
        self.nn_bonds = [k for k, b in enumerate(bonds) if b.shell == 1]
        self.frames = {}
        self.tol = tol
        if nn == "kitaev" and self.nn_bonds and frames is not None:  # given (from_dict): the NN bonds' cubic frames
            self.frames = dict(zip(self.nn_bonds, [np.asarray(F, float) for F in frames]))
        elif nn == "kitaev" and self.nn_bonds:
            if structure is None:
                raise CollinearFitError("the Kitaev terms need the structure (ligands) for the cubic frames")
            try:
                frames = model_bond_frames(self.template, structure, [bonds[k] for k in self.nn_bonds])
            except Exception as exc:  # noqa: BLE001 - any WannmagError of the frame construction
                raise CollinearFitError(f"cubic frames of the NN bonds: {exc}") from None
            self.frames = dict(zip(self.nn_bonds, frames))
        # parameter -> (single-ion tensor per site or None, {bond index: tensor})
        self.basis: dict[str, tuple] = {}
        if single_ion:
            self.basis["A"] = (self.uniaxial, {})
        if nn == "kitaev":
            for name, args in (("K", (1, 0, 0)), ("Gamma", (0, 1, 0)), ("Gamma_prime", (0, 0, 1))):
                self.basis[name] = (None, {k: _traceless(kitaev_tensor(0.0, *args, self.frames[k]))
                                           for k in self.nn_bonds})
        else:
            self.basis["lambda_1"] = (None, {k: self.uniaxial for k in self.nn_bonds})
        for s in range(2, self.n_shells + 1):
            self.basis[f"lambda_{s}"] = (None, {k: self.uniaxial for k, b in enumerate(bonds) if b.shell == s})
        self.params = list(self.basis)
        if not self.params:
            raise CollinearFitError("nothing to fit: no single-ion term and no bonds")
        self.orders: dict[str, _Order] = {}
        for name, spec in orders.items():
            P, pat, n = _order_state(self.template, name, spec)
            o = _Order(name=name, supercell=P, pattern=pat, n_sites=n)
            for p in self.params:
                o.M[p] = self._matrix(P, pat, p)
            self.orders[name] = o

    def as_dict(self) -> dict:
        """What rebuilds this design without the structure (:meth:`from_dict`): the template SpinModel, the cubic
        frames of its NN bonds, the orders (supercell, pattern in the site order of ``template.supercell(P)``)
        and the options."""
        return {"template": self.template.as_dict(), "nn": self.nn, "n_shells": self.n_shells,
                "single_ion": "A" in self.basis, "tol": self.tol,
                "frames": [np.asarray(self.frames[k]).tolist() for k in self.nn_bonds] if self.frames else None,
                "orders": {n: {"supercell": np.asarray(o.supercell).tolist(), "pattern": np.asarray(o.pattern).tolist(),
                               "resolved": True} for n, o in self.orders.items()}}

    @classmethod
    def from_dict(cls, d: dict) -> "CollinearDesign":
        return cls(SpinModel.from_dict(d["template"]), None, d["orders"], nn=d["nn"], n_shells=d["n_shells"],
                   single_ion=d["single_ion"], tol=d["tol"], frames=d.get("frames"))

    def _matrix(self, P, pattern, p):
        """M_{o,p}: n·M·n = classical energy per supercell of the collinear state σ n for unit parameter p."""
        A, bt = self.basis[p]
        tm = copy.deepcopy(self.template)
        for k, b in enumerate(tm.bonds):
            b.J = bt.get(k, np.zeros((3, 3))).copy()
        tm.single_ion = [np.zeros((3, 3)) if A is None else A.copy() for _ in tm.sites]
        big, _ = tm.supercell(P)
        s = pattern * big.spins
        M = sum(s[b.i] * s[b.j] * 0.5 * (b.J + b.J.T) for b in big.bonds) if big.bonds else np.zeros((3, 3))
        M = M + sum(S ** 2 * a for S, a in zip(big.spins, big.single_ion))
        return np.asarray(M, float)

    def rows(self, name, vectors) -> np.ndarray:
        """Design rows (parameters only) of order ``name`` for unit vectors (N×3)."""
        o = self.orders[name]
        v = np.asarray(vectors, float).reshape(-1, 3)
        return np.stack([np.einsum("ni,ij,nj->n", v, o.M[p], v) for p in self.params], axis=1)

    def matrix(self, directions: dict) -> np.ndarray:
        """Full design matrix (parameters, then one constant per order) for ``{order: N×3 unit vectors}``."""
        names = list(directions)
        blocks = []
        for k, name in enumerate(names):
            R = self.rows(name, directions[name])
            C = np.zeros((len(R), len(names)))
            C[:, k] = 1.0
            blocks.append(np.hstack([R, C]))
        return np.vstack(blocks)

    def rank(self, directions: dict, rtol: float = 1e-5) -> tuple[int, np.ndarray, np.ndarray]:
        """(rank, singular values, null-space basis rows) of the design for ``directions``."""
        X = self.matrix(directions)
        scale = np.linalg.norm(X, axis=0)
        scale[scale == 0] = 1.0
        _, s, Vt = np.linalg.svd(X / scale, full_matrices=True)
        r = int(np.sum(s > rtol * s.max())) if s.size else 0
        return r, s, Vt[r:] / scale

    def undetermined(self, directions: dict, rtol: float = 1e-5) -> list[str]:
        """Parameters that the orders and directions cannot separate (empty: full rank)."""
        _, _, null = self.rank(directions, rtol)
        if not len(null):
            return []
        P = len(self.params)
        comp = np.abs(null[:, :P])
        comp = comp / max(comp.max(), 1e-300) if comp.size else comp
        bad = [p for k, p in enumerate(self.params) if comp[:, k].max() > 1e-6]
        return bad or ["the per-order constants (an order with one direction only)"]


    def null_text(self, directions: dict, rtol: float = 1e-5) -> str:
        """'' or, for a one- or two-dimensional null space, the parameter combinations that leave every energy
        unchanged (e.g. ``(energies unchanged along A + 0.33 lambda_2)``)."""
        _, _, null = self.rank(directions, rtol)
        P = len(self.params)
        if not len(null) or len(null) > 2:
            return ""
        combos = []
        for v in null[:, :P]:
            if np.abs(v).max() < 1e-12:
                continue
            v = v / v[np.argmax(np.abs(v))]
            terms = [f"{c:+.2g} {p}" for c, p in zip(v, self.params) if abs(c) > 1e-3]
            combos.append(" ".join(terms).lstrip("+"))
        return f" (energies unchanged along {'; '.join(combos)})" if combos else ""


def collinear_design(template, structure, orders, **kw) -> CollinearDesign:
    """:class:`CollinearDesign` (for rank analyses without energies)."""
    return CollinearDesign(template, structure, orders, **kw)


# --------------------------------------------------------------------------------------------------------------
# fit
# --------------------------------------------------------------------------------------------------------------

@dataclass
class CollinearSOCFit:
    """Result of :func:`fit_collinear_soc`.

    ``params``: meV — ``A`` = A_zz − A_⊥ (uniaxial SIA, < 0 easy axis ∥ c), ``K``, ``Gamma``, ``Gamma_prime``
    (NN, cubic frame, traceless part: the Heisenberg J of the Rau–Lee–Kee form is J_iso − K/3), ``lambda_k``
    (XXZ of shell k, J_zz − J_⊥); ``derived["lambda_1"]`` the C3-averaged XXZ of the NN tensor.  ``stderr``:
    least-squares standard errors from the residual (None without redundancy).  ``residuals``: meV per cell per
    order, data − fit.  Internal convention H = Σ_{i<j} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i, |S_i| = S, meV.
    """

    params: dict
    stderr: dict | None
    derived: dict
    constants: dict
    residuals: dict
    directions: dict
    rank: int
    n_unknowns: int
    n_data: int
    singular_values: np.ndarray
    design: CollinearDesign = field(repr=False)

    @property
    def rms_meV_per_ion(self) -> float:
        return float(np.sqrt(np.mean(np.concatenate([r / self.design.orders[o].n_sites
                                                      for o, r in self.residuals.items()]) ** 2)))

    # ----------------------------------------------------------------- model quantities
    def M(self, order: str) -> np.ndarray:
        """Anisotropy matrix of ``order``: E(n) − c = n·M·n, meV per cell."""
        o = self.design.orders[order]
        return sum(self.params[p] * o.M[p] for p in self.design.params)

    def energy(self, order: str, n) -> float:
        """Fitted anisotropy energy n·M·n (meV per cell, without the order's constant)."""
        n = np.asarray(n, float) / np.linalg.norm(n)
        return float(n @ self.M(order) @ n)

    def mae(self, order: str) -> dict:
        """ΔE = E_in − E_out (meV per ion; in-plane = mean of x ∥ a1 and y; > 0 favours c) of ``order``, split into
        the single-ion part, the NN exchange part and the longer shells."""
        o = self.design.orders[order]
        F = layer_frame(self.design.template.cell)

        def d(M):
            return float((0.5 * (F[0] @ M @ F[0] + F[1] @ M @ F[1]) - F[2] @ M @ F[2]) / o.n_sites)

        parts = {p: self.params[p] * d(o.M[p]) for p in self.design.params}
        out = {"single_ion": parts.get("A", 0.0),
               "exchange_nn": sum(v for p, v in parts.items() if p in ("K", "Gamma", "Gamma_prime", "lambda_1"))}
        for s in range(2, self.design.n_shells + 1):
            out[f"exchange_{s}nn"] = parts.get(f"lambda_{s}", 0.0)
        out["exchange"] = sum(v for k, v in out.items() if k.startswith("exchange_"))
        out["total"] = out["single_ion"] + out["exchange"]
        return out

    def easy_axis(self, order: str) -> dict:
        """Lowest-energy direction of ``order`` (eigenvector of M), its angle to the layer normal (degrees) and the
        eigenvalues (meV per ion, relative to the lowest)."""
        w, V = np.linalg.eigh(self.M(order))
        n = V[:, 0] * (1 if V[:, 0] @ self.design.c >= 0 else -1)
        ang = float(np.degrees(np.arccos(np.clip(abs(n @ self.design.c), 0, 1))))
        label = "out-of-plane" if ang < 1.0 else ("in-plane" if ang > 89.0 else "tilted")
        return {"axis": n.tolist(), "angle_to_normal_deg": ang, "label": label,
                "eigenvalues_meV_per_ion": ((w - w[0]) / self.design.orders[order].n_sites).tolist()}

    # ----------------------------------------------------------------- spin-model tensors
    def tensors(self) -> dict:
        """Traceless anisotropic tensors for the SpinModel: ``single_ion`` (3×3, every site) and ``bonds``
        [(i, j, R, 3×3)] of the template's bonds (meV, internal convention)."""
        A = np.zeros((3, 3))
        bonds = {k: np.zeros((3, 3)) for k in range(len(self.design.template.bonds))}
        for p in self.design.params:
            Ap, bt = self.design.basis[p]
            if Ap is not None:
                A = A + self.params[p] * Ap
            for k, T in bt.items():
                bonds[k] = bonds[k] + self.params[p] * T
        tb = self.design.template.bonds
        return {"single_ion": A, "bonds": [(tb[k].i, tb[k].j, tb[k].R, T) for k, T in bonds.items() if np.any(T)]}

    def apply(self, model, tol: float = 1e-3):
        """A copy of ``model`` (sites as the template's) with the fitted anisotropic tensors added to its bonds and
        single-ion terms (traceless: the isotropic J of every bond is unchanged).  Bonds of the fit missing in
        ``model`` are added with their anisotropic part only."""
        pos_t = np.array([s.position for s in self.design.template.sites])
        pos_m = np.array([s.position for s in model.sites])
        if pos_t.shape != pos_m.shape or np.abs(pos_t - pos_m).max() > tol:
            raise CollinearFitError("apply: the model's sites are not those of the fit's template")
        out = copy.deepcopy(model)
        t = self.tensors()
        for k in range(out.n_sites):
            out.single_ion[k] = out.single_ion[k] + t["single_ion"]
        added = 0
        for i, j, R, T in t["bonds"]:
            b = next((x for x in out.bonds if (x.i, x.j, tuple(x.R)) == (i, j, tuple(R))), None)
            if b is None:
                out.add_bond(i, j, R, T)
                added += 1
            else:
                b.J = b.J + T
        out.meta = dict(out.meta, soc_fit={"method": "force-theorem SOC energies of collinear orders "
                                                     "(fit_collinear_soc)", "params_meV": dict(self.params),
                                           "bonds_added": added})
        return out

    def as_dict(self) -> dict:
        return {"convention": "H = sum_{i<j} S_i.J_ij.S_j + sum_i S_i.A_i.S_i, |S| = S, J > 0 AF, meV; A = A_zz - "
                              "A_perp (uniaxial SIA); K, Gamma, Gamma_prime of the NN bond in its cubic frame "
                              "(traceless part); lambda_k = J_zz - J_perp of shell k",
                "params_meV": dict(self.params), "stderr_meV": None if self.stderr is None else dict(self.stderr),
                "derived_meV": dict(self.derived), "rank": self.rank, "n_unknowns": self.n_unknowns,
                "n_data": self.n_data, "rms_residual_meV_per_ion": self.rms_meV_per_ion,
                "residuals_meV_per_cell": {k: v.tolist() for k, v in self.residuals.items()},
                "mae_meV_per_ion": {o: self.mae(o) for o in self.design.orders},
                "easy_axis": {o: self.easy_axis(o) for o in self.design.orders},
                # what from_dict needs besides the numbers above
                "constants_meV_per_cell": dict(self.constants),
                "directions": {o: np.asarray(v).tolist() for o, v in self.directions.items()},
                "singular_values": np.asarray(self.singular_values).tolist(), "design": self.design.as_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> "CollinearSOCFit":
        """Inverse of :meth:`as_dict` (the design rebuilt from its template, frames and orders: no structure file,
        no refit); raises :class:`CollinearFitError` for a dict without the design (written before it was
        stored)."""
        if not isinstance(d, dict) or "design" not in d:
            raise CollinearFitError("this collinear SOC fit was stored without its design; fit it again")
        return cls(params=dict(d["params_meV"]), stderr=None if d.get("stderr_meV") is None else dict(d["stderr_meV"]),
                   derived=dict(d["derived_meV"]), constants=dict(d["constants_meV_per_cell"]),
                   residuals={k: np.asarray(v, float) for k, v in d["residuals_meV_per_cell"].items()},
                   directions={k: np.asarray(v, float) for k, v in d["directions"].items()}, rank=int(d["rank"]),
                   n_unknowns=int(d["n_unknowns"]), n_data=int(d["n_data"]),
                   singular_values=np.asarray(d["singular_values"], float),
                   design=CollinearDesign.from_dict(d["design"]))

    def table(self) -> str:
        head = (f"  rank {self.rank} of {self.n_unknowns} unknowns, {self.n_data} energies, rms residual "
                f"{self.rms_meV_per_ion:.4f} meV/ion")
        lines = ["anisotropy from force-theorem SOC energies of collinear orders (meV, internal convention)", head]
        for p, v in self.params.items():
            e = "" if self.stderr is None else f" ± {self.stderr[p]:.4f}"
            lines.append(f"  {p:12s} {v:+.4f}{e}")
        for p, v in self.derived.items():
            lines.append(f"  {p:12s} {v:+.4f}  (derived)")
        for o in self.design.orders:
            m, ea = self.mae(o), self.easy_axis(o)
            lines.append(f"  {o:8s} ΔE = E_in − E_out = {m['total']:+.4f} meV/ion (SIA {m['single_ion']:+.4f}, "
                         f"exchange {m['exchange']:+.4f}); easy axis {ea['label']} "
                         f"({ea['angle_to_normal_deg']:.1f}° from c)")
        return "\n".join(lines)


def fit_collinear_soc(template, structure, orders: dict, energies: dict, nn: str = "kitaev",
                      n_shells: int | None = None, single_ion: bool = True, rtol: float = 1e-5) -> CollinearSOCFit:
    """Fit the symmetric anisotropic parameters (module docstring) to force-theorem SOC energies of collinear
    orders.

    ``template``: unit-cell SpinModel whose bonds (shells by length) carry the anisotropy (e.g. the energy-mapping
    model, or :func:`template_model`); ``structure``: its structure with the ligands (for the cubic frames);
    ``orders``: ``{name: Configuration | {"supercell", "pattern"[, "positions"]} | (supercell, pattern)}`` — the
    pattern in the site order of the calculation (``configuration_from_pattern``), or matched by ``positions``;
    ``energies``: ``{name: MAEResult | {(θ, φ): E} | [(n, E), ...]}``, meV per cell of that order.
    ``nn``: ``"kitaev"`` (K, Γ, Γ′) or ``"xxz"`` (λ₁); ``n_shells``: longest shell with an XXZ λ (default: all
    shells of the template).  Raises :class:`CollinearFitError` when the data cannot separate the parameters.
    """
    missing = [o for o in orders if o not in energies]
    if missing:
        raise CollinearFitError(f"no energies for order(s) {', '.join(missing)}")
    design = CollinearDesign(template, structure, orders, nn=nn, n_shells=n_shells, single_ion=single_ion)
    data = {o: _energies(o, energies[o]) for o in orders}
    dirs = {o: v for o, (v, _) in data.items()}
    y = np.concatenate([E for _, E in data.values()])
    X = design.matrix(dirs)
    r, s, _ = design.rank(dirs, rtol)
    n_unk = X.shape[1]
    if r < n_unk:
        bad = design.undetermined(dirs, rtol)
        raise CollinearFitError(f"collinear SOC fit underdetermined: orders {', '.join(orders)} with "
                                f"{len(y)} energies fix {r} of {n_unk} unknowns (one constant per order); cannot "
                                f"separate {', '.join(bad)}{design.null_text(dirs, rtol)} — add orders that break C3 "
                                "(zigzag, stripy) or directions spanning n nᵀ (x, y, z and their diagonals), or fit "
                                "fewer terms")
    lf = linear_fit(X, y, rtol=rtol)
    coef, res = lf.x, -lf.residuals  # res = y − fit
    P = len(design.params)
    stderr = None if lf.stderr is None else {p: float(lf.stderr[k]) for k, p in enumerate(design.params)}
    params = {p: float(coef[k]) for k, p in enumerate(design.params)}
    derived = {}
    if nn == "kitaev" and design.nn_bonds:
        k0 = design.nn_bonds[0]
        T = sum(params[p] * design.basis[p][1][k0] for p in ("K", "Gamma", "Gamma_prime"))
        derived["lambda_1"] = xxz_parameters(T, design.c)["lambda"]
    residuals, k = {}, 0
    for o, (_, E) in data.items():
        residuals[o] = res[k:k + len(E)]
        k += len(E)
    constants = {o: float(coef[P + m]) for m, o in enumerate(orders)}
    return CollinearSOCFit(params=params, stderr=stderr, derived=derived, constants=constants, residuals=residuals,
                           directions=dirs, rank=r, n_unknowns=n_unk, n_data=len(y), singular_values=s, design=design)


# --------------------------------------------------------------------------------------------------------------
# GPAW records (one per collinear order) and the fit from them
# --------------------------------------------------------------------------------------------------------------

def gpaw_soc_record(gpw, directions, magnetic_elements=None, n2: int | None = None) -> dict:
    """Force-theorem SOC band energies (:func:`gpaw_mae`) of one converged collinear GPAW ground state (.gpw,
    opened read-only) for ``directions`` [(θ, φ) degrees], with what :func:`fit_soc_records` needs: the cell (Å),
    the positions, elements and up/down pattern (sign of the local moment) of the magnetic sites (atoms of
    ``magnetic_elements``, default those with |moment| > 1 μB), the GPAW version and timings.  JSON-able;
    energies in meV per cell."""
    import gpaw  # local: optional heavy dependency (GPAW, extra "dft")
    from gpaw import GPAW

    path = Path(gpw)
    t0 = time.perf_counter()
    try:
        calc = GPAW(str(path), txt=None)
    except Exception as exc:  # noqa: BLE001 - GPAW read errors become one line
        raise CollinearFitError(f"{path}: cannot read the GPAW file ({type(exc).__name__})") from None
    atoms = calc.get_atoms()
    mom = np.asarray(calc.get_magnetic_moments(), float)
    sym = atoms.get_chemical_symbols()
    if magnetic_elements is None:
        mag = [k for k, m in enumerate(mom) if abs(m) > 1.0]
    else:
        mag = [k for k, s in enumerate(sym) if s in set(magnetic_elements)]
    if not mag:
        raise CollinearFitError(f"{path}: no magnetic site")
    t_read = time.perf_counter() - t0
    t1 = time.perf_counter()
    res = gpaw_mae(calc, directions, n_magnetic=len(mag), n2=n2)
    t_soc = time.perf_counter() - t1
    return {"gpw": str(path.resolve()), "gpaw_version": gpaw.__version__, "cell": atoms.cell.array.tolist(),
            "elements": [sym[k] for k in mag], "positions": atoms.positions[mag].tolist(),
            "moments_muB": mom[mag].round(4).tolist(), "pattern": [int(np.sign(mom[k])) for k in mag],
            "directions": [[float(t), float(p)] for t, p in directions],
            "energies_meV_per_cell": [float(e) for e in res.energy], "n2": n2, "method": res.method,
            "warnings": list(res.warnings), "seconds": {"read": round(t_read, 2), "soc_total": round(t_soc, 2),
                                                        "soc_per_direction": round(t_soc / len(directions), 3)}}


def fit_soc_records(records: dict, structure, template=None, **kw) -> CollinearSOCFit:
    """:func:`fit_collinear_soc` from ``{order: record}`` (:func:`gpaw_soc_record`, or the same keys from any
    engine: ``cell``, ``positions`` and ``pattern`` of the magnetic sites, ``directions`` [(θ, φ)],
    ``energies_meV_per_cell``).  The supercell of each record is found from its cell and the primitive cell of
    ``template`` (default :func:`template_model` of ``structure``, three shells)."""
    if template is None:
        template = template_model(structure, n_shells=kw.pop("template_shells", 3))
    inv = np.linalg.inv(template.cell)
    orders, energies = {}, {}
    for name, rec in records.items():
        Pf = np.asarray(rec["cell"], float) @ inv
        P = np.round(Pf).astype(int)
        # a vacuum height different from the template's is fine for a layer: only the in-plane part must match
        if np.abs(Pf[:2, :2] - P[:2, :2]).max() > 1e-3 or np.abs(Pf[:2, 2]).max() > 1e-3:
            raise CollinearFitError(f"order {name}: its cell is not a supercell of the template's primitive cell")
        P[2] = [0, 0, 1]
        orders[name] = {"supercell": P, "pattern": rec["pattern"], "positions": rec["positions"]}
        energies[name] = [(tuple(d), e) for d, e in zip(rec["directions"], rec["energies_meV_per_cell"])]
    return fit_collinear_soc(template, structure, orders, energies, **kw)
