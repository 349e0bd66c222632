"""Path decomposition of the effective metal–metal hopping of one bond of a spin-averaged Wannier (or Slater–Koster)
model in local octahedral frames.

For the bond (i, j, R) (magnetic sites; site j in cell R) the blocks are

* t_dd (5×5): direct d–d hopping, rows = d orbitals of M_i in its local frame, columns = d of M_j in its frame;
* for every bridging ligand L (structures layer, :func:`wannmag.structures.exchange_paths`) and each of its p
  orbitals: t_{m,Lp} (M_i → L) and t_{Lp,m'} (L → M_j), the p orbitals written in the local frame of M_i (one
  common p basis for both halves of the path);
* for bonds without a bridging ligand, every M_i–X1–X2–M_j path: t(M_i → X1), t(X1 → X2), t(X2 → M_j).

Single-particle (Löwdin) path amplitudes, orbital-resolved denominators (ε = on-site levels of the model)::

    direct          t_dd[m, m']
    via L, p        t_{m,Lp} t_{Lp,m'} · ½ [1/(ε_m − ε_p) + 1/(ε_m' − ε_p)]
    via X1 p, X2 p' t_{m,p} t_{p,p'} t_{p',m'} / ((ε_m − ε_p)(ε_m' − ε_p'))

The coherent sum over paths is the effective hopping t_eff[m, m'] of a d-only model to this order; the incoherent
sum √Σ t_path² is what a single-path picture would give.  Energies eV.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...tightbinding.harmonics import ORBITAL_NAMES
from ...tightbinding.localframe import local_frames
from ...tightbinding.model import CollinearTBModel, TBModel
from .formulas import EG, T2G, SuperexchangeError

__all__ = ["D_NAMES", "P_NAMES", "BondHoppings", "NoLigandWarning", "PathTerm", "bond_hoppings", "path_terms"]

D_NAMES = ORBITAL_NAMES[2]
P_NAMES = ORBITAL_NAMES[1]


class NoLigandWarning(UserWarning):
    """The model has no ligand p orbitals: only the direct (d–d) channels can be computed."""


@dataclass
class PathTerm:
    """One path between orbital m of M_i and m' of M_j: ``kind`` = 'direct', 'ligand' or 'mxxm', ``via`` a label
    (e.g. 'I4[0,0,0]:px'), ``amplitude`` the single-particle amplitude (eV), ``hops`` its hoppings (eV)."""

    kind: str
    via: str
    amplitude: float
    hops: tuple

    def as_dict(self) -> dict:
        return {"kind": self.kind, "via": self.via, "amplitude_eV": round(float(self.amplitude), 7),
                "hops_eV": [round(float(h), 6) for h in self.hops]}

    @classmethod
    def from_dict(cls, d: dict) -> "PathTerm":
        """Inverse of :meth:`as_dict` (eV, as stored: amplitude to 1e-7, hops to 1e-6)."""
        return cls(kind=d["kind"], via=d["via"], amplitude=d["amplitude_eV"], hops=tuple(d["hops_eV"]))


@dataclass
class BondHoppings:
    """All hopping blocks of one bond in local frames (see the module docstring)."""

    i: int
    j: int
    R: tuple
    atoms: tuple                         # structure indices of M_i, M_j
    elements: tuple
    distance: float
    t_dd: np.ndarray                     # 5×5
    eps_i: np.ndarray                    # local d levels of M_i (5)
    eps_j: np.ndarray
    lig_labels: list = field(default_factory=list)    # per bridging ligand orbital, e.g. 'I4[0,0,0]:px'
    lig_of: list = field(default_factory=list)        # ligand index (0, 1, …) of each orbital
    lig_elements: list = field(default_factory=list)  # element of each bridging ligand
    t_ip: np.ndarray | None = None       # 5 × n_lig_orb
    t_pj: np.ndarray | None = None       # n_lig_orb × 5
    eps_p: np.ndarray | None = None      # on-site level of each bridging ligand orbital
    t_pp: np.ndarray | None = None       # n_lig_orb × n_lig_orb hopping between different bridging ligands (local
    #                                      frame of M_i; zero blocks on each ligand) — used by the cluster ED only
    angles: list = field(default_factory=list)        # M–X–M angle of each bridging ligand (degrees)
    long_paths: list = field(default_factory=list)    # [(label, t_i1 5×3, t_12 3×3, t_2j 3×5, eps1 3, eps2 3)]
    has_ligands: bool = True
    sharing: str = ""
    max_imag: float = 0.0                # largest |Im| of the hoppings used (eV; the real parts are used)

    @property
    def n_lig(self) -> int:
        return 0 if self.t_ip is None else self.t_ip.shape[1]

    @property
    def eps_p_mean(self) -> float | None:
        if self.eps_p is not None and len(self.eps_p):
            return float(np.mean(self.eps_p))
        if self.long_paths:
            return float(np.mean(np.concatenate([np.r_[lp[4], lp[5]] for lp in self.long_paths])))
        return None


def _spatial(model: TBModel, a: int, b: int, R, la: int, lb: int, imag: list | None = None) -> np.ndarray:
    """Real part of the orbital block between atoms (spinor models: the average of the spin-diagonal blocks); the
    largest |Im| is appended to ``imag`` (reported once per bond, not warned per block)."""
    if model.spinor:
        blk = 0.5 * (model.atom_block(a, b, R, la, lb, spin="up") + model.atom_block(a, b, R, la, lb, spin="down"))
    else:
        blk = model.atom_block(a, b, R, la, lb)
    if imag is not None:
        imag.append(float(np.abs(blk.imag).max(initial=0.0)))
    return blk.real


def bond_hoppings(model, report, bond, frames=None) -> BondHoppings:
    """Hopping blocks of ``bond`` (a :class:`wannmag.structures.Bond` of ``report`` = ``analyse_structure`` of the
    model's atoms) in local octahedral frames."""
    if isinstance(model, CollinearTBModel):
        model = model.spin_averaged()
    sub = report.sublattice
    ai, aj = int(sub.indices[bond.i]), int(sub.indices[bond.j])
    R = tuple(int(x) for x in bond.R)
    if frames is None:
        frames = local_frames(model)
    for a in (ai, aj):
        if a not in frames:
            raise SuperexchangeError(f"{model.name}: magnetic atom {a} has no d orbitals in the model")
    im: list = []
    Di, Dj = frames[ai].d_matrix(), frames[aj].d_matrix()
    Pi = frames[ai].p_matrix()
    t_dd = Di.T @ _spatial(model, ai, aj, R, 2, 2, imag=im) @ Dj
    if t_dd.shape != (5, 5):
        raise SuperexchangeError(f"{model.name}: atoms {ai}, {aj} need full d shells (got {t_dd.shape})")
    eps_i = np.diag(Di.T @ _spatial(model, ai, ai, (0, 0, 0), 2, 2, imag=im) @ Di).copy()
    eps_j = np.diag(Dj.T @ _spatial(model, aj, aj, (0, 0, 0), 2, 2, imag=im) @ Dj).copy()
    symbols = model.atoms.get_chemical_symbols()
    hb = BondHoppings(i=bond.i, j=bond.j, R=R, atoms=(ai, aj), elements=(symbols[ai], symbols[aj]),
                      distance=float(bond.distance), t_dd=t_dd, eps_i=eps_i, eps_j=eps_j)
    paths = next((p for p in report.paths if p.bond.i == bond.i and p.bond.j == bond.j
                  and tuple(p.bond.R) == R), None)
    hb.sharing = paths.sharing if paths is not None else ""
    p_atoms = {o.atom for o in model.orbitals if o.l == 1}
    hb.has_ligands = bool(p_atoms)
    hb.max_imag = max(im, default=0.0)
    if not hb.has_ligands or paths is None:
        return hb
    tip, tpj, eps, labels, lig_of, ligs = [], [], [], [], [], []
    for n, br in enumerate(paths.bridges):
        L = br.ligand
        if L.index not in p_atoms:
            continue
        RL = tuple(int(x) for x in L.R)
        a = _spatial(model, ai, L.index, RL, 2, 1, imag=im)                                  # 5×3
        b = _spatial(model, L.index, aj, tuple(np.subtract(R, RL)), 1, 2, imag=im)   # 3×5
        e = _spatial(model, L.index, L.index, (0, 0, 0), 1, 1, imag=im)
        a = Di.T @ a @ Pi
        b = Pi.T @ b @ Dj
        e = Pi.T @ e @ Pi
        tip.append(a)
        tpj.append(b)
        eps.append(np.diag(e))
        labels += [f"{L.element}{L.index}{list(RL)}:{nm}" for nm in P_NAMES]
        lig_of += [len(hb.angles)] * 3
        ligs.append((L.index, RL))
        hb.angles.append(float(br.angle))
        hb.lig_elements.append(L.element)
    if tip:
        hb.t_ip = np.concatenate(tip, axis=1)
        hb.t_pj = np.concatenate(tpj, axis=0)
        hb.eps_p = np.concatenate(eps)
        hb.lig_labels = labels
        hb.lig_of = lig_of
        n = 3 * len(ligs)
        hb.t_pp = np.zeros((n, n))
        for a, (La, Ra) in enumerate(ligs):
            for b, (Lb, Rb) in enumerate(ligs):
                if a != b:
                    hb.t_pp[3 * a:3 * a + 3, 3 * b:3 * b + 3] = (
                        Pi.T @ _spatial(model, La, Lb, tuple(np.subtract(Rb, Ra)), 1, 1, imag=im) @ Pi)
    for lp in paths.long_paths:
        L1, L2 = lp.ligand_i, lp.ligand_j
        if L1.index not in p_atoms or L2.index not in p_atoms:
            continue
        R1, R2 = tuple(int(x) for x in L1.R), tuple(int(x) for x in L2.R)
        t1 = Di.T @ _spatial(model, ai, L1.index, R1, 2, 1, imag=im) @ Pi
        t12 = Pi.T @ _spatial(model, L1.index, L2.index, tuple(np.subtract(R2, R1)), 1, 1, imag=im) @ Pi
        t2 = Pi.T @ _spatial(model, L2.index, aj, tuple(np.subtract(R, R2)), 1, 2, imag=im) @ Dj
        e1 = np.diag(Pi.T @ _spatial(model, L1.index, L1.index, (0, 0, 0), 1, 1, imag=im) @ Pi)
        e2 = np.diag(Pi.T @ _spatial(model, L2.index, L2.index, (0, 0, 0), 1, 1, imag=im) @ Pi)
        if not (np.any(t1) and np.any(t12) and np.any(t2)):
            continue
        label = f"{L1.element}{L1.index}{list(R1)}–{L2.element}{L2.index}{list(R2)}"
        hb.long_paths.append((label, t1, t12, t2, e1, e2))
        if L1.element not in hb.lig_elements:
            hb.lig_elements.append(L1.element)
    hb.max_imag = max(im, default=0.0)
    return hb


def path_terms(hb: BondHoppings, m: int, mp: int, tol: float = 1e-9) -> list[PathTerm]:
    """Single-particle paths from orbital ``m`` of M_i to ``mp`` of M_j (indices in the d order dz2, dxz, dyz,
    dx2-y2, dxy), with non-negligible amplitude."""
    out = []
    if abs(hb.t_dd[m, mp]) > tol:
        out.append(PathTerm("direct", "d–d", float(hb.t_dd[m, mp]), (float(hb.t_dd[m, mp]),)))
    if hb.t_ip is not None:
        for k in range(hb.n_lig):
            a, b = hb.t_ip[m, k], hb.t_pj[k, mp]
            den = 0.5 * (1.0 / (hb.eps_i[m] - hb.eps_p[k]) + 1.0 / (hb.eps_j[mp] - hb.eps_p[k]))
            amp = a * b * den
            if abs(amp) > tol:
                out.append(PathTerm("ligand", hb.lig_labels[k], float(amp), (float(a), float(b))))
    for label, t1, t12, t2, e1, e2 in hb.long_paths:
        for p in range(3):
            for q in range(3):
                amp = t1[m, p] * t12[p, q] * t2[q, mp] / ((hb.eps_i[m] - e1[p]) * (hb.eps_j[mp] - e2[q]))
                if abs(amp) > tol:
                    out.append(PathTerm("mxxm", f"{label}:{P_NAMES[p]}–{P_NAMES[q]}", float(amp),
                                        (float(t1[m, p]), float(t12[p, q]), float(t2[q, mp]))))
    return out


def is_t2g(m: int) -> bool:
    return m in T2G


def is_eg(m: int) -> bool:
    return m in EG
