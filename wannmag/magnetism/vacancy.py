"""A magnetic vacancy in a supercell: the cell and its bond classes, its collinear configurations, the equal-spin
energy-mapping fit of the exchange next to the vacancy, the exchange of a diluted Monte Carlo lattice next to a vacancy,
and the T(x) figure.  Orchestrated (DFT, caching, Monte Carlo runs, report) by :mod:`wannmag.workflows.vacancy`
(``wannmag run --vacancies``); the neutral cell's holes are :mod:`wannmag.magnetism.vacancy_holes`.

Conventions (as everywhere in wannmag): H = Σ_{i<j} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i, every bond once, classical spins
of length S (S = 3/2 for Cr3+ and V2+), J > 0 antiferromagnetic; exchange in meV, DFT energies in eV, temperatures in
K, lengths in Å.

One magnetic ion removed from a ``supercell`` (default 2×2 of the primitive cell: 8 → 7 sites for the honeycomb
lattice).  The nearest-neighbour bonds of the remaining sites fall into two classes by their distance to the vacancy:
**J1_vac** — bonds with an end site that is a nearest neighbour of the vacancy (the definition used by the Monte Carlo
lattice, :func:`wannmag.magnetism.montecarlo.build_lattice` ``near_vacancy``), and **J1_bulk** — all other
nearest-neighbour bonds; J2, J3 keep their shells (:func:`make_vacancy_cell`).  Collinear up/down patterns of the
remaining spins are chosen greedily (D-optimal: each new pattern maximises det AᵀA of the fit's design matrix,
starting from the perfect lattice's order; :func:`choose_patterns`), and E_cell = E_0 + S² Σ_classes J_class c_class,
c_class = Σ_{bonds of the class in the cell} σ_i σ_j, is fitted to their energies (:func:`fit_vacancy_exchange`:
``fit="J1"`` fits E_0, J1_bulk and J1_vac with J2, J3 held; ``"J123"`` fits J2, J3 too; the rank is checked).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._plotting import save_figure
from ..errors import WannmagError
from ..structures import find_magnetic_sites, neighbour_shells
from ..structures.configurations import honeycomb_configuration, vacancy_supercell
from .design import collinear_candidates, greedy_d_optimal
from .linfit import linear_fit
from .vacancy_holes import hole_placements, start_moments

__all__ = ["VacancyError", "VacancyFitError", "CLASSES", "VacancyCell", "make_vacancy_cell", "vacancy_configuration",
           "vacancy_site_distances", "hole_placements_of", "start_pattern", "choose_patterns", "VacancyFit",
           "fit_vacancy_exchange", "NearVacancyJ", "plot_tn_vs_x", "pattern_name"]

CLASSES = ("J1_bulk", "J1_vac", "J2", "J3")


class VacancyError(WannmagError):
    """The vacancy study cannot run with these inputs."""


class VacancyFitError(VacancyError):
    """The vacancy energy-mapping fit is underdetermined or inconsistent."""


def pattern_name(pattern) -> str:
    """vac_<u/d per remaining site>: the name of a vacancy-cell configuration."""
    return "vac_" + "".join("u" if s > 0 else "d" for s in pattern)


# ------------------------------------------------------------------------------------------------------ geometry
@dataclass
class VacancyCell:
    """A supercell with one magnetic site removed and its bonds sorted into classes (module docstring).

    ``bonds``: dicts {i, j, R, shell, cls} in the site numbering of the vacancy configuration (every bond once;
    None for a cell rebuilt by :meth:`from_dict` without its structure: then :meth:`n_bonds` is the stored count
    and what needs the bonds raises); ``near_sites``: the sites that are nearest neighbours of the vacancy;
    ``distances``: shells 1–3 of the perfect lattice (Å); ``spin``: S of the magnetic ions.
    """

    supercell: list
    site: int
    n_full: int
    n_sites: int
    spin: float
    distances: list
    near_sites: list
    bonds: list | None = field(default_factory=list)
    _stored: dict | None = field(default=None, init=False, repr=False, compare=False)  # from_dict: see there

    def _bonds(self, what: str) -> list:
        if self.bonds is None:
            raise VacancyError(f"vacancy cell (site {self.site} of supercell {self.supercell}) was rebuilt from a dict "
                               f"without its bonds, so {what} needs them: give structure= to VacancyCell.from_dict")
        return self.bonds

    def counts(self, pattern) -> dict:
        """c_class = Σ_{bonds of the class} σ_i σ_j per vacancy cell (module docstring)."""
        s = np.asarray(pattern, int)
        out = {c: 0.0 for c in CLASSES}
        for b in self._bonds("the bond counts of a pattern"):
            out[b["cls"]] += float(s[b["i"]] * s[b["j"]])
        return out

    def n_bonds(self) -> dict:
        if self.bonds is None and self._stored is not None:
            return dict(self._stored["bonds_per_class"])
        out = {c: 0 for c in CLASSES}
        for b in self._bonds("the number of bonds per class"):
            out[b["cls"]] += 1
        return out

    def as_dict(self) -> dict:
        return {"supercell": self.supercell, "vacancy_site": self.site, "n_sites_perfect": self.n_full,
                "n_sites": self.n_sites, "spin": self.spin, "distances_A": self.distances,
                "near_sites": self.near_sites, "bonds_per_class": self.n_bonds()}

    @classmethod
    def from_dict(cls, d: dict, structure=None, tol: float = 0.05) -> "VacancyCell":
        """Inverse of :meth:`as_dict`.  The dict holds the cell's geometry and its bond count per class, not the
        bonds: give the primitive ``structure`` (file, Atoms or MagneticSublattice) to have them back —
        :func:`make_vacancy_cell` of it with the stored supercell and site (``tol`` as there), checked against
        every stored field (:class:`VacancyError` if they differ) — or leave it None: ``bonds`` is None,
        :meth:`n_bonds` is the stored count, and :meth:`counts` (so the fit and the pattern choice) and
        :func:`hole_placements_of` raise."""
        try:
            kw = dict(supercell=[[int(x) for x in row] for row in d["supercell"]], site=int(d["vacancy_site"]),
                      n_full=int(d["n_sites_perfect"]), n_sites=int(d["n_sites"]), spin=float(d["spin"]),
                      distances=[float(x) for x in d["distances_A"]], near_sites=[int(x) for x in d["near_sites"]])
            per_class = {c: int(d["bonds_per_class"][c]) for c in CLASSES}
        except (KeyError, TypeError, ValueError) as exc:
            raise VacancyError(f"not a stored vacancy cell ({type(exc).__name__}: {exc})") from None
        if structure is None:
            cell = cls(**kw, bonds=None)
            cell._stored = {"bonds_per_class": per_class}
            return cell
        cell = make_vacancy_cell(structure, supercell=kw["supercell"], site=kw["site"], tol=tol)
        stored = {**kw, "bonds_per_class": per_class}
        rebuilt = {k: getattr(cell, k) for k in kw} | {"bonds_per_class": cell.n_bonds()}
        diff = [k for k in stored if stored[k] != rebuilt[k]]
        if diff:
            raise VacancyError(f"stored vacancy cell is not the one of this structure: {', '.join(diff)} differ "
                               f"(stored {', '.join(f'{k}={stored[k]}' for k in diff)}; "
                               f"rebuilt {', '.join(f'{k}={rebuilt[k]}' for k in diff)})")
        return cell


def _sublattice(structure):
    return structure if hasattr(structure, "indices") else find_magnetic_sites(structure)


def make_vacancy_cell(structure, supercell=(2, 2, 1), site: int = 0, tol: float = 0.05) -> VacancyCell:
    """The vacancy supercell of ``structure`` (file, Atoms or MagneticSublattice) with magnetic site ``site`` of the
    ``supercell`` removed, and its bond classes J1_bulk / J1_vac / J2 / J3 (module docstring).  Raises
    :class:`VacancyError` if the supercell is too small to hold a nearest-neighbour bond away from the vacancy."""
    sub0 = _sublattice(structure)
    distances = [s.distance for s in neighbour_shells(sub0, n_shells=3, tol=tol)]
    full = honeycomb_configuration(sub0, "FM", supercell=supercell)
    if not 0 <= site < full.n_sites:
        raise VacancyError(f"vacancy site {site} is not a magnetic site of the {full.n_sites}-site supercell")
    conf = vacancy_supercell(sub0, supercell=supercell, sites=[site], order="FM")
    cell = full.atoms.cell.array
    vac = full.sublattice.positions[site]
    pos = conf.sublattice.positions

    def min_image(v):
        f = np.linalg.solve(cell.T, v)
        f[:2] -= np.round(f[:2])
        return np.linalg.norm(cell.T @ f)

    near = [k for k in range(conf.n_sites) if abs(min_image(pos[k] - vac) - distances[0]) <= tol]
    bonds = []
    for sh in neighbour_shells(conf.sublattice, cutoff=max(distances) + tol, tol=tol):
        match = [n for n, d in enumerate(distances, start=1) if abs(sh.distance - d) <= tol]
        if not match:
            continue
        n = match[0]
        for b in sh.bonds:
            if n == 1:
                cls = "J1_vac" if (b.i in near or b.j in near) else "J1_bulk"
            else:
                cls = f"J{n}"
            bonds.append({"i": int(b.i), "j": int(b.j), "R": [int(r) for r in b.R], "shell": n, "cls": cls})
    vc = VacancyCell(supercell=np.asarray(conf.supercell, int).tolist(), site=int(site), n_full=int(full.n_sites),
                     n_sites=int(conf.n_sites), spin=float(conf.sublattice.spins[0]), distances=distances,
                     near_sites=near, bonds=bonds)
    nb = vc.n_bonds()
    if nb["J1_bulk"] == 0:
        raise VacancyError(f"supercell {np.asarray(supercell).tolist()} is too small: every nearest-neighbour bond "
                           "touches a neighbour of the vacancy, so bulk-like and vacancy bonds cannot be separated "
                           "(use 2×2 or larger)")
    if nb["J1_vac"] == 0:
        raise VacancyError("no nearest-neighbour bond next to the vacancy (structure without nearest neighbours?)")
    return vc


def vacancy_configuration(structure, cell: VacancyCell, pattern, holes=None):
    """The structures-layer Configuration (atoms with initial moments σ_i·2S_i μ_B) of the vacancy cell with
    up/down ``pattern`` (±1 per remaining magnetic site).  ``holes``: a
    :class:`~wannmag.magnetism.vacancy_holes.HolePlacement` — its sites start as S = ``spin_hole`` ions (V3+, d²:
    2 μB instead of 3 μB) and carry that spin in the configuration's sublattice (so the moment check and the fit
    use it); the name gets the placement's name."""
    conf = vacancy_supercell(_sublattice(structure), supercell=cell.supercell, sites=[cell.site], order="FM")
    p = np.asarray(pattern, int)
    if p.shape != (conf.n_sites,) or not np.all(np.abs(p) == 1):
        raise VacancyError(f"pattern must hold {conf.n_sites} values ±1, got {p.tolist()}")
    conf.pattern = p
    if holes is not None:
        conf.sublattice.spins = holes.spins(conf.n_sites, float(conf.sublattice.spins[0]))
    m = np.zeros(len(conf.atoms))
    m[conf.sublattice.indices] = start_moments(p, conf.sublattice.spins)
    conf.atoms.set_initial_magnetic_moments(m)
    conf.name = pattern_name(p) + (f"_h-{holes.name}" if holes is not None else "")
    return conf


def vacancy_site_distances(structure, cell: VacancyCell) -> list[float]:
    """Minimum-image distance (Å, in the plane) of every remaining magnetic site of the vacancy cell from the
    vacancy (for the hole placements of :mod:`wannmag.magnetism.vacancy_holes`)."""
    sub0 = _sublattice(structure)
    full = honeycomb_configuration(sub0, "FM", supercell=cell.supercell)
    conf = vacancy_configuration(sub0, cell, [1] * cell.n_sites)
    C = full.atoms.cell.array
    vac = full.sublattice.positions[cell.site]
    out = []
    for r in conf.sublattice.positions:
        f = np.linalg.solve(C.T, r - vac)
        f[:2] -= np.round(f[:2])
        out.append(float(np.linalg.norm(C.T @ f)))
    return out


def hole_placements_of(structure, cell: VacancyCell, n_holes: int = 2, spin_hole: float = 1.0, extra=None):
    """The named hole placements (near / near_far / far, + ``extra``) of this vacancy cell."""
    nn = [(b["i"], b["j"]) for b in cell._bonds("its hole placements") if b["shell"] == 1]
    return hole_placements(cell.n_sites, cell.near_sites, vacancy_site_distances(structure, cell), bonds=nn,
                           n_holes=n_holes, spin_hole=spin_hole, extra=extra)


# ------------------------------------------------------------------------------------------------------ design
def _unknowns(fit: str) -> list[str]:
    if fit == "J1":
        return ["J1_bulk", "J1_vac"]
    if fit == "J123":
        return list(CLASSES)
    raise VacancyError(f"unknown vacancy fit {fit!r} (J1: J2, J3 from the perfect lattice; J123: fit them too)")


def _row(cell: VacancyCell, pattern, unknowns) -> np.ndarray:
    c = cell.counts(pattern)
    return np.array([1.0] + [cell.spin ** 2 * c[u] for u in unknowns])


def choose_patterns(cell: VacancyCell, fit: str = "J1", n_configs: int | None = None, start=None,
                    max_enumerate: int = 16) -> list[list[int]]:
    """``n_configs`` (default: unknowns + 1, one redundant configuration for a residual check) up/down patterns of
    the vacancy cell, chosen greedily to maximise det AᵀA of the fit's design matrix (module docstring), starting
    with ``start`` (the ground-state order of the perfect lattice on the remaining sites).  Patterns differing by a
    global flip are the same configuration; site 0 is always up."""
    unk = _unknowns(fit)
    n_unk = len(unk) + 1
    n_configs = n_unk + 1 if n_configs is None else int(n_configs)
    if n_configs < 1:
        raise VacancyError(f"need at least one vacancy configuration, got {n_configs}")
    cands = collinear_candidates(cell.n_sites, max_enumerate)
    rows = np.array([_row(cell, p, unk) for p in cands])
    chosen: list[int] = []
    if start is not None:
        s = np.asarray(start, int) * (1 if start[0] > 0 else -1)
        chosen = [k for k, p in enumerate(cands) if np.array_equal(p, s)][:1]
    chosen = greedy_d_optimal(rows, n_configs, start=chosen)
    return [cands[k].astype(int).tolist() for k in chosen]


@dataclass
class VacancyFit:
    """Fitted exchange (meV, internal convention, J > 0 AF) of the vacancy cell: ``J`` {class: value},
    ``fixed`` the classes held at perfect-lattice values, E_0 in eV per cell, residuals in meV per cell."""

    J: dict
    fixed: dict
    E0_eV: float
    residuals_meV: list
    rank: int
    n_unknowns: int
    condition_number: float
    stderr: dict | None
    configurations: list

    def as_dict(self) -> dict:
        return {"convention": "H = sum_{i<j} S_i.J_ij.S_j (each bond once, |S| = S, J > 0 AF), meV",
                "J_meV": self.J, "fixed_meV": self.fixed, "E0_eV_per_cell": self.E0_eV,
                "residuals_meV_per_cell": self.residuals_meV, "rank": self.rank, "n_unknowns": self.n_unknowns,
                "condition_number": self.condition_number, "stderr_meV": self.stderr,
                "configurations": self.configurations}

    @classmethod
    def from_dict(cls, d: dict) -> "VacancyFit":
        return cls(J=dict(d["J_meV"]), fixed=dict(d["fixed_meV"]), E0_eV=float(d["E0_eV_per_cell"]),
                   residuals_meV=list(d["residuals_meV_per_cell"]), rank=int(d["rank"]),
                   n_unknowns=int(d["n_unknowns"]), condition_number=float(d["condition_number"]),
                   stderr=d.get("stderr_meV"), configurations=list(d["configurations"]))


def fit_vacancy_exchange(cell: VacancyCell, patterns, energies_eV, fit: str = "J1", fixed: dict | None = None,
                         names=None, max_condition: float = 1e4) -> VacancyFit:
    """Least-squares E_cell = E_0 + S² Σ_class J_class c_class (module docstring) to total energies (eV per
    vacancy cell).  ``fit="J1"`` needs ``fixed`` = {"J2": ..., "J3": ...} (meV).  Raises :class:`VacancyFitError`
    when the configurations do not determine every unknown (rank check) or the fit is ill-conditioned."""
    unk = _unknowns(fit)
    fixed = {k: float(v) for k, v in (fixed or {}).items() if k not in unk}
    missing = [c for c in CLASSES if c not in unk and c not in fixed]
    if missing:
        raise VacancyFitError(f"vacancy fit {fit!r} needs fixed values of {', '.join(missing)} (meV)")
    names = list(names) if names is not None else [pattern_name(p) for p in patterns]
    if len(patterns) != len(energies_eV):
        raise VacancyFitError(f"{len(patterns)} configurations but {len(energies_eV)} energies")
    if not len(patterns):
        raise VacancyFitError("no vacancy configurations to fit")
    A = np.array([_row(cell, p, unk) for p in patterns])
    y = np.array([float(e) * 1000.0 - cell.spin ** 2 * sum(fixed[k] * cell.counts(p)[k] for k in fixed)
                  for p, e in zip(patterns, energies_eV)])
    n = A.shape[1]
    label = ", ".join(["E0"] + unk)
    lf = linear_fit(A, y, ["E0"] + unk)
    if not lf.full_rank:
        raise VacancyFitError(f"underdetermined vacancy fit: {lf.rank} independent configuration(s) "
                              f"({', '.join(names)}) for {n} unknowns ({label}); not determined: "
                              f"{', '.join(lf.undetermined)}. Add "
                              "configurations (more --vacancy-configs) or fit fewer unknowns (--vacancy-fit J1)")
    cond = lf.condition_number
    if cond > max_condition:
        raise VacancyFitError(f"ill-conditioned vacancy fit: condition number {cond:.3g} > {max_condition:g} "
                              f"({', '.join(names)})")
    x, res, rank = lf.x, lf.residuals, lf.rank
    stderr = None if lf.stderr is None else {u: float(e) for u, e in zip(unk, lf.stderr[1:])}
    J = {u: float(v) for u, v in zip(unk, x[1:])}
    J.update(fixed)
    return VacancyFit(J={c: J[c] for c in CLASSES}, fixed=fixed, E0_eV=float(x[0]) / 1000.0,
                      residuals_meV=res.tolist(), rank=rank, n_unknowns=n, condition_number=cond, stderr=stderr,
                      configurations=names)


def start_pattern(structure, cell: VacancyCell, order: str = "Neel"):
    """The perfect lattice's collinear ``order`` on the remaining sites of the vacancy cell, site 0 up (a list of
    ±1), or None when the order is not commensurate with the cell's supercell."""
    try:
        full = honeycomb_configuration(structure, order, supercell=cell.supercell)
    except WannmagError:
        return None
    p = np.delete(full.pattern, cell.site).astype(int)
    return (p * (1 if p[0] > 0 else -1)).tolist()



def plot_tn_vs_x(fractions, tn, err, path, title: str = "", perfect=None, holes=None) -> Path:
    """T_N(x) (K) against the vacancy fraction x, the perfect lattice's T (x = 0) marked; an x without a bracketed
    Binder crossing (None) has no point.  ``holes``: (tn, err) of the series with the vacancies' holes, drawn
    beside."""
    import matplotlib  # local: heavy dependency (matplotlib, ~0.4 s to import), only plotting needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 4))
    x = np.array(fractions, float)
    t = np.array([np.nan if v is None else v for v in tn], float)
    e = np.array([0.0 if v is None else v for v in err], float)
    ax.errorbar(x, t, yerr=e, marker="o", capsize=3, label="diluted lattice (MC)" if holes is None else
                "dilution only (MC)")
    if holes is not None:
        th = np.array([np.nan if v is None else v for v in holes[0]], float)
        eh = np.array([0.0 if v is None else v for v in holes[1]], float)
        ax.errorbar(x + 0.002, th, yerr=eh, marker="s", color="C3", capsize=3,
                    label="with holes (V3+ S = 1, J by bond class; MC)")
    if perfect is not None and perfect[0] is not None:
        ax.axhline(perfect[0], color="k", ls="--", lw=0.8, label="perfect lattice (mc step)")
    ax.set_xlabel("vacancy fraction x")
    ax.set_ylabel("ordering temperature (K)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    return save_figure(fig, path, dpi=110, close=True)  # atomic: never a truncated figure


class NearVacancyJ:
    """``near_vacancy`` of :func:`~wannmag.magnetism.montecarlo.build_lattice`: a nearest-neighbour bond next to a
    vacancy gets the isotropic exchange ``J_vac`` (meV, J > 0 AF) in place of its own isotropic part
    J_iso = tr(J)/3; any anisotropic part of its tensor (Kitaev, Γ, DM, XXZ from the anisotropy step) is kept.
    Longer bonds keep their tensors."""

    def __init__(self, model, J_vac: float):
        from .montecarlo.lattice import bond_shells  # local: it loads the Monte Carlo package and numba (~0.3 s)

        self.shells = bond_shells(model)
        self.J_vac = float(J_vac)

    def __call__(self, b_i, bond, n_vac):
        if self.shells[b_i] != 1:
            return None
        J = np.asarray(bond.J, float)
        return J + (self.J_vac - np.trace(J) / 3.0) * np.eye(3)
