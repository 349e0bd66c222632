"""Holes next to a magnetic vacancy: where they sit, which bonds they change, and the energy-mapping fit with
spins of different length.

Removing a neutral V atom from V_{1−x}PS3 leaves two holes per vacancy.  If they localise on V sites they turn two
V2+ (d³, S = 3/2, ≈ 3 μB nominal) into V3+ (d², S = 1, ≈ 2 μB nominal); the seed paper's mechanism is that these
sites (and the vacancy) weaken the antiferromagnetic coupling.  This module is the physics of that picture; the DFT
runs that test it are orchestrated by :mod:`wannmag.workflows.vacancy`.

Conventions (as everywhere in wannmag): H = Σ_{i<j} S_i·J_ij·S_j, every bond once, classical spins of length S_i
(3/2 on V2+, 1 on V3+), J > 0 antiferromagnetic, exchange in meV, DFT energies in eV per cell.

Collinear configurations σ_i = ±1 give E_cell = E_0 + Σ_classes J_class Σ_{bonds of the class} S_i S_j σ_i σ_j, so
a bond between a V2+ and a V3+ enters with the weight 3/2 · 1 — that is the only change against the equal-spin fit
(``VacancyFit`` of the workflow), and it is what makes J(V2+–V3+) comparable with J(V2+–V2+) bond for bond.

Bond classes with holes (nearest-neighbour bonds; J2, J3 keep their shell classes):

``V2-V3``                a bond with exactly one hole site (S = 1) at an end,
``V3-V3``                both ends are hole sites,
``next_to_vacancy``      V2+–V2+ bond with an end that is a nearest neighbour of the vacancy,
``V2-V2_bulk``           every other V2+–V2+ bond.

Hole placements (two holes per vacancy by default) are named by where they sit: ``near`` (both on nearest neighbours
of the vacancy), ``near_far`` (one on a nearest neighbour, one on the site farthest from the vacancy), ``far`` (the two
sites farthest from the vacancy, not bonded to each other if possible), or any explicit list of magnetic-site indices.

The exchange of the doped cell (:func:`choose_hole_patterns`, :func:`check_configuration`, :func:`fit_hole_records`):
collinear configurations with the holes held at one placement, chosen D-optimally
(:func:`wannmag.magnetism.design.greedy_d_optimal`) for E_0 and the nearest-neighbour classes present (in the 2×2
cell the three neighbours of the vacancy are not bonded to each other; ``near`` has V2-V2_bulk, next_to_vacancy and
V2-V3 bonds, ``near_far`` no V2-V2_bulk bond, ``far`` one V3-V3 bond), J2 and J3 held at the perfect crystal's values
unless fitted too.  A configuration enters the fit only if its SCF converged, its spins kept their signs and its
holes stayed on the placed sites.

The neutral cell step by step (orchestrated by ``wannmag run``, :mod:`wannmag.workflows.vacancy`): how many holes
and of which spin (:func:`vacancy_holes_of`); one SCF per placement, each summarised as a :class:`PlacementRun`
(energy, moments, where the holes went, gaps); the placement to fit (:func:`choose_placement`: the lowest converged
one whose holes stayed put); the fit's design and records as above; fixed-moment SCFs whose spin channels overlap
(:func:`constraint_warnings`); the classes and hole placement of the diluted Monte Carlo lattice
(:func:`lattice_classes`, :func:`lattice_placement`).  The fit of one placement is set up by :func:`fit_design` and
made by :func:`fit_cell` (a :class:`CellFit`: which configurations were used and why not the others, the residuals,
whether the couplings are *effective* because configurations whose holes moved were used, the classes absorbed into
E_0, and E_DFT − E_model of the excluded ones) — the one fit flow of ``wannmag run`` and data/mc/vacancy_holes_dft.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import WannmagError
from .design import collinear_candidates, greedy_d_optimal
from .linfit import linear_fit

__all__ = ["HoleError", "HolePlacement", "hole_placements", "placement_from_atoms", "classify_bonds",
           "HOLE_CLASSES", "design_row", "HoleFit", "fit_with_holes", "locate_holes", "start_moments",
           "hole_unknowns", "HoleDesign", "choose_hole_patterns", "check_configuration", "fit_hole_records",
           "predict_energy", "fit_design", "CellFit", "fit_cell",
           "vacancy_holes_of", "PlacementRun", "placement_run", "PlacementChoice", "choose_placement",
           "constraint_warnings", "lattice_classes", "lattice_placement"]

#: nearest-neighbour classes in the order of the fit's unknowns
HOLE_CLASSES = ("V2-V2_bulk", "next_to_vacancy", "V2-V3", "V3-V3")


class HoleError(WannmagError):
    """A hole placement or a fit with holes cannot be built from these inputs."""


@dataclass
class HolePlacement:
    """Which magnetic sites (vacancy-cell numbering) carry a hole (S_hole instead of S)."""

    name: str
    sites: list
    spin_hole: float = 1.0

    def spins(self, n_sites: int, spin: float) -> np.ndarray:
        """S per magnetic site: ``spin`` everywhere, ``spin_hole`` on the hole sites."""
        s = np.full(int(n_sites), float(spin))
        s[list(self.sites)] = self.spin_hole
        return s

    def as_dict(self) -> dict:
        return {"name": self.name, "sites": [int(k) for k in self.sites], "spin_hole": float(self.spin_hole)}

    @classmethod
    def from_dict(cls, d: dict) -> "HolePlacement":
        return cls(name=str(d["name"]), sites=[int(k) for k in d["sites"]], spin_hole=float(d.get("spin_hole", 1.0)))


def _check_sites(sites, n_sites: int, what: str = "hole placement") -> list[int]:
    out = []
    for k in sites:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= int(k) < n_sites:
            raise HoleError(f"{what}: {k!r} is not a magnetic site of the vacancy cell (0..{n_sites - 1})")
        out.append(int(k))
    if len(set(out)) != len(out):
        raise HoleError(f"{what}: sites {out} repeat a site")
    return out


def hole_placements(n_sites: int, near_sites, distances, bonds=None, n_holes: int = 2, spin_hole: float = 1.0,
                    extra: dict | None = None) -> list[HolePlacement]:
    """The named placements of ``n_holes`` holes (module docstring).  ``near_sites``: magnetic sites that are nearest
    neighbours of the vacancy; ``distances``: distance (Å, minimum image) of every site from the vacancy;
    ``bonds``: nearest-neighbour bonds as (i, j) pairs (used to keep the ``far`` holes apart); ``extra``: more
    placements {name: [sites]}."""
    d = np.asarray(distances, float)
    if d.shape != (n_sites,):
        raise HoleError(f"need the distance of all {n_sites} sites from the vacancy, got {d.shape}")
    near = _check_sites(near_sites, n_sites, "near sites")
    if n_holes < 1 or n_holes > n_sites:
        raise HoleError(f"number of holes must be in 1..{n_sites}, got {n_holes}")
    far_order = [int(k) for k in np.argsort(-d, kind="stable")]
    nn = {(min(i, j), max(i, j)) for i, j in (bonds or [])}
    out = []
    if len(near) >= n_holes:
        out.append(HolePlacement("near", sorted(near[:n_holes]), spin_hole))
    if n_holes == 2 and near:
        far1 = next(k for k in far_order if k not in near)
        out.append(HolePlacement("near_far", sorted([near[0], far1]), spin_hole))
    far: list[int] = []
    for apart in (True, False):  # first keep the far holes unbonded; if the cell is too small, allow bonded ones
        far = []
        for k in far_order:
            if k in near or (apart and any((min(k, f), max(k, f)) in nn for f in far)):
                continue
            far.append(k)
            if len(far) == n_holes:
                break
        if len(far) == n_holes:
            break
    if len(far) == n_holes:
        out.append(HolePlacement("far", sorted(far), spin_hole))
    for name, sites in (extra or {}).items():
        out.append(HolePlacement(str(name), sorted(_check_sites(sites, n_sites)), spin_hole))
    return out


def placement_from_atoms(atom_indices, magnetic_atom_indices, symbols=None, name: str = "custom",
                         spin_hole: float = 1.0, source: str = "hole placement") -> HolePlacement:
    """A placement given by atom indices of the vacancy cell (as a user would read them off a structure viewer);
    an atom that is not a magnetic ion (e.g. an S or P atom) is refused with one line naming it."""
    mag = [int(a) for a in magnetic_atom_indices]
    sites = []
    for a in atom_indices:
        if isinstance(a, bool) or not isinstance(a, (int, np.integer)):
            raise HoleError(f"{source}: atom index {a!r} is not an integer")
        if int(a) not in mag:
            el = f" ({symbols[int(a)]})" if symbols is not None and 0 <= int(a) < len(symbols) else ""
            raise HoleError(f"{source}: atom {a}{el} is not a magnetic ion of the vacancy cell; holes go on the "
                            f"magnetic sites (atoms {', '.join(map(str, mag))})")
        sites.append(mag.index(int(a)))
    return HolePlacement(name, sorted(_check_sites(sites, len(mag), source)), spin_hole)


def start_moments(pattern, spins) -> np.ndarray:
    """Initial moments σ_i · 2 S_i μ_B (Hund's rule for d³ → 3 μB, d² → 2 μB) of the magnetic sites."""
    p = np.asarray(pattern, float)
    s = np.asarray(spins, float)
    if p.shape != s.shape or not np.all(np.abs(p) == 1):
        raise HoleError(f"pattern must hold {s.size} values ±1, got {p.tolist()}")
    return p * 2.0 * s


def classify_bonds(bonds, holes, near_sites) -> list[dict]:
    """Copy of ``bonds`` (dicts with i, j, shell) with ``cls`` set to the hole classes of the module docstring
    (shells 2 and 3 → "J2", "J3")."""
    h = set(int(k) for k in holes)
    near = set(int(k) for k in near_sites)
    out = []
    for b in bonds:
        b = dict(b)
        if int(b["shell"]) == 1:
            nh = (int(b["i"]) in h) + (int(b["j"]) in h)
            if nh == 2:
                b["cls"] = "V3-V3"
            elif nh == 1:
                b["cls"] = "V2-V3"
            elif int(b["i"]) in near or int(b["j"]) in near:
                b["cls"] = "next_to_vacancy"
            else:
                b["cls"] = "V2-V2_bulk"
        else:
            b["cls"] = f"J{int(b['shell'])}"
        out.append(b)
    return out


def design_row(bonds, pattern, spins, unknowns) -> np.ndarray:
    """[1, Σ_{bonds of class u} S_i S_j σ_i σ_j for u in unknowns] for one collinear configuration."""
    s = np.asarray(pattern, float) * np.asarray(spins, float)
    c = {u: 0.0 for u in unknowns}
    for b in bonds:
        if b["cls"] in c:
            c[b["cls"]] += s[int(b["i"])] * s[int(b["j"])]
    return np.array([1.0] + [c[u] for u in unknowns])


@dataclass
class HoleFit:
    """Exchange (meV, internal convention) of a vacancy cell with holes; ``fixed``: classes held at given values;
    E_0 in eV per cell; residuals in meV per cell; ``spins``: S per magnetic site used in the fit."""

    placement: dict
    J: dict
    fixed: dict
    E0_eV: float
    residuals_meV: list
    rank: int
    condition_number: float
    stderr: dict | None
    configurations: list
    spins: list
    absorbed: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"convention": "H = sum_{i<j} S_i.J_ij.S_j (each bond once, |S_i| = S_i, J > 0 AF), meV",
                "placement": self.placement, "J_meV": self.J, "fixed_meV": self.fixed, "E0_eV_per_cell": self.E0_eV,
                "residuals_meV_per_cell": self.residuals_meV, "rank": self.rank,
                "condition_number": self.condition_number, "stderr_meV": self.stderr,
                "configurations": self.configurations, "spins": self.spins, "absorbed": list(self.absorbed)}

    @classmethod
    def from_dict(cls, d: dict) -> "HoleFit":
        return cls(placement=d["placement"], J=dict(d["J_meV"]), fixed=dict(d["fixed_meV"]), E0_eV=d["E0_eV_per_cell"],
                   residuals_meV=list(d["residuals_meV_per_cell"]), rank=int(d["rank"]),
                   condition_number=float(d["condition_number"]), stderr=d.get("stderr_meV"),
                   configurations=list(d["configurations"]), spins=list(d["spins"]),
                   absorbed=list(d.get("absorbed", [])))


def fit_with_holes(bonds, placement: HolePlacement, spin: float, patterns, energies_eV, unknowns=None,
                   fixed: dict | None = None, names=None, max_condition: float = 1e4,
                   absorb_constant: bool = False) -> HoleFit:
    """Least squares E_cell = E_0 + Σ_class J_class Σ_bonds S_i S_j σ_i σ_j (module docstring) to total energies
    (eV per cell) of collinear ``patterns``.  ``bonds``: output of :func:`classify_bonds`; ``unknowns``: classes to
    fit (default: the nearest-neighbour classes present); ``fixed``: {class: meV} for the others (J2, J3 from the
    perfect lattice).  Underdetermined or ill-conditioned sets raise :class:`HoleError` naming the unknowns.
    ``absorb_constant``: an unknown class whose Σ S_i S_j σ_i σ_j is the same in every configuration (e.g. V2-V3 when
    every configuration keeps the holes antiparallel to their neighbours) is not determined by the data; instead of
    refusing, it is dropped into E_0 (J None, listed in ``absorbed``) and the other unknowns are fitted."""
    n = len(patterns[0]) if len(patterns) else 0
    spins = placement.spins(n, spin)
    present = [c for c in HOLE_CLASSES if any(b["cls"] == c for b in bonds)]
    unknowns = list(unknowns) if unknowns is not None else present
    fixed = {k: float(v) for k, v in (fixed or {}).items() if k not in unknowns}
    missing = sorted({b["cls"] for b in bonds} - set(unknowns) - set(fixed))
    if missing:
        raise HoleError(f"bond classes {', '.join(missing)} are neither fitted nor fixed (give their J in meV)")
    if len(patterns) != len(energies_eV) or not len(patterns):
        raise HoleError(f"{len(patterns)} configurations but {len(energies_eV)} energies")
    names = list(names) if names is not None else [f"c{k}" for k in range(len(patterns))]
    absorbed = []
    if absorb_constant and len(patterns) > 1:
        A0 = np.array([design_row(bonds, p, spins, unknowns) for p in patterns])
        absorbed = [u for k, u in enumerate(unknowns) if np.ptp(A0[:, k + 1]) < 1e-9]
        unknowns = [u for u in unknowns if u not in absorbed]
    A = np.array([design_row(bonds, p, spins, unknowns) for p in patterns])
    Fx = np.array([design_row(bonds, p, spins, list(fixed))[1:] for p in patterns]) if fixed else None
    y = np.asarray(energies_eV, float) * 1000.0
    if Fx is not None:
        y = y - Fx @ np.array(list(fixed.values()))
    lf = linear_fit(A, y, ["E0"] + unknowns)
    if not lf.full_rank:
        raise HoleError(f"underdetermined fit with holes ({placement.name}): {lf.rank} independent configuration(s) "
                        f"for {A.shape[1]} unknowns; not determined: {', '.join(lf.undetermined)}")
    if lf.condition_number > max_condition:
        raise HoleError(f"ill-conditioned fit with holes ({placement.name}): condition number "
                        f"{lf.condition_number:.3g} > {max_condition:g}")
    J = {u: float(v) for u, v in zip(unknowns, lf.x[1:])}
    J.update({u: None for u in absorbed})
    J.update(fixed)
    stderr = None if lf.stderr is None else {u: float(e) for u, e in zip(unknowns, lf.stderr[1:])}
    return HoleFit(placement=placement.as_dict(), J=J, fixed=fixed, E0_eV=float(lf.x[0]) / 1000.0,
                   residuals_meV=lf.residuals.tolist(), rank=lf.rank, condition_number=lf.condition_number,
                   stderr=stderr, configurations=names, spins=spins.tolist(), absorbed=absorbed)


def locate_holes(site_moments, spin: float = 1.5, spin_hole: float = 1.0, n_holes: int | None = None) -> dict:
    """Where the holes are, from the converged moments of the magnetic sites (μ_B, e.g. PAW-sphere moments).

    Covalency shrinks sphere moments (VPS3 V2+: 2.47–2.53 μB in the sphere for 3 μB nominal), so the sites are
    compared with each other, not with 2S: the ``n_holes`` sites with the smallest |m| are the hole candidates, and
    they count as localised holes only if the gap between them and the rest is a clear fraction of the nominal
    difference 2(S − S_hole) μB (≥ 0.25 of it).  Returns {"sites", "localised", "moments", "gap_muB", "reason"}."""
    m = np.abs(np.asarray(site_moments, float))
    if m.ndim != 1 or not np.all(np.isfinite(m)) or m.size == 0:
        raise HoleError("site moments must be a non-empty list of finite numbers")
    k = int(n_holes) if n_holes is not None else 0
    order = np.argsort(m, kind="stable")
    if k <= 0 or k >= m.size:
        return {"sites": [], "localised": False, "moments": m.tolist(), "gap_muB": 0.0,
                "reason": "no hole count given" if k <= 0 else "every site would be a hole site"}
    low, high = m[order[:k]], m[order[k:]]
    gap = float(high.min() - low.max())
    need = 0.25 * 2.0 * (spin - spin_hole)
    ok = gap >= need
    reason = (f"the {k} smallest moments ({', '.join(f'{v:.2f}' for v in low)} μB) lie {gap:.2f} μB below the rest "
              f"(≥ {need:.2f} needed)" if ok else
              f"no clear split: the {k} smallest moments are only {gap:.2f} μB below the rest (< {need:.2f}); the holes "
              "are delocalised or sit on the ligands")
    return {"sites": sorted(int(i) for i in order[:k]), "localised": bool(ok), "moments": m.tolist(),
            "gap_muB": gap, "reason": reason}


# ------------------------------------------------------------------------------------------------ design and fit
def hole_unknowns(bonds, fit_j23: bool = False) -> list[str]:
    """The exchange classes a fit with holes determines: the nearest-neighbour classes of :data:`HOLE_CLASSES` that
    have bonds in this placement (in a 2×2 cell e.g. ``near_far`` and ``far`` leave no V2-V2_bulk bond, and only
    ``far`` has a V3-V3 bond), plus "J2", "J3" when ``fit_j23`` (else they are held fixed)."""
    present = {b["cls"] for b in bonds}
    out = [c for c in HOLE_CLASSES if c in present]
    if fit_j23:
        out += [c for c in ("J2", "J3") if c in present]
    return out


@dataclass
class HoleDesign:
    """Collinear configurations (σ_i = ±1 per magnetic site, site 0 up; holes fixed at ``placement``) chosen for the
    fit E = E_0 + Σ_u J_u Σ_bonds S_i S_j σ_i σ_j of the ``unknowns`` (meV), with the rank, the condition number
    (column-normalised design, as :func:`~wannmag.magnetism.linfit.linear_fit`) and the residual degrees of freedom
    (configurations − unknowns − 1 for E_0) of the full set.  ``fixed``: classes held at given values (meV)."""

    placement: dict
    unknowns: list
    fixed: list
    patterns: list
    rank: int
    n_unknowns: int
    condition_number: float
    dof: int
    bonds_per_class: dict

    def as_dict(self) -> dict:
        return {"placement": self.placement, "unknowns": ["E0"] + list(self.unknowns), "fixed": list(self.fixed),
                "patterns": [list(map(int, p)) for p in self.patterns], "rank": self.rank,
                "n_unknowns": self.n_unknowns, "condition_number": self.condition_number, "dof": self.dof,
                "bonds_per_class": self.bonds_per_class}

    @classmethod
    def from_dict(cls, d: dict) -> "HoleDesign":
        unk = [u for u in d["unknowns"] if u != "E0"]
        return cls(placement=d["placement"], unknowns=unk, fixed=list(d["fixed"]),
                   patterns=[list(map(int, p)) for p in d["patterns"]], rank=int(d["rank"]),
                   n_unknowns=int(d["n_unknowns"]), condition_number=float(d["condition_number"]), dof=int(d["dof"]),
                   bonds_per_class=dict(d["bonds_per_class"]))


def choose_hole_patterns(bonds, placement: HolePlacement, spin: float, n_sites: int, unknowns=None,
                         n_configs: int | None = None, start=None, min_dof: int = 2, max_enumerate: int = 16,
                         max_condition: float = 1e4) -> HoleDesign:
    """D-optimal collinear configurations for the fit with holes (:func:`fit_with_holes`): ``bonds`` from
    :func:`classify_bonds`, ``unknowns`` the classes to fit (default :func:`hole_unknowns`: the nearest-neighbour
    classes present, J2 and J3 held fixed); ``n_configs`` (default unknowns + 1 + ``min_dof``) patterns chosen greedily
    for the largest det AᵀA of the design with S_i = 1 on the hole sites and ``spin`` elsewhere
    (:func:`wannmag.magnetism.design.greedy_d_optimal`), starting with ``start`` (e.g. the perfect lattice's order on
    the remaining sites).  Raises :class:`HoleError` when the placement has no hole, the configurations cannot
    determine every unknown (rank check over all candidates and over the chosen set), the chosen set leaves fewer
    than ``min_dof`` residual degrees of freedom, or the design is ill-conditioned."""
    if not placement.sites:
        raise HoleError(f"hole placement {placement.name!r} has no hole site: the equal-spin vacancy fit applies")
    unknowns = list(unknowns) if unknowns is not None else hole_unknowns(bonds)
    present = {b["cls"] for b in bonds}
    absent = [u for u in unknowns if u not in present]
    if absent:
        raise HoleError(f"hole placement {placement.name!r}: no bond of class {', '.join(absent)} in the cell")
    n_unk = len(unknowns) + 1
    n_configs = n_unk + int(min_dof) if n_configs is None else int(n_configs)
    if n_configs < n_unk + int(min_dof):
        raise HoleError(f"{n_configs} configurations for {n_unk} unknowns (E0, {', '.join(unknowns)}) leave fewer "
                        f"than {min_dof} residual degrees of freedom")
    spins = placement.spins(n_sites, spin)
    cands = collinear_candidates(n_sites, max_enumerate)
    rows = np.array([design_row(bonds, p, spins, unknowns) for p in cands])
    labels = ["E0"] + unknowns
    every = linear_fit(rows, np.zeros(len(rows)), labels)
    if not every.full_rank:
        raise HoleError(f"hole placement {placement.name!r}: no set of collinear configurations determines "
                        f"{', '.join(every.undetermined)} (rank {every.rank} of {n_unk})")
    if n_configs > len(cands):
        raise HoleError(f"{n_configs} configurations asked, the cell has only {len(cands)} distinct ones")
    chosen: list[int] = []
    if start is not None:
        st = np.asarray(start, int) * (1 if start[0] > 0 else -1)
        chosen = [k for k, p in enumerate(cands) if np.array_equal(p, st)][:1]
        if not chosen:
            raise HoleError(f"start pattern {np.asarray(start).tolist()} is not a pattern of {n_sites} values ±1")
    chosen = greedy_d_optimal(rows, n_configs, start=chosen)
    lf = linear_fit(rows[chosen], np.zeros(len(chosen)), labels)
    if not lf.full_rank:
        raise HoleError(f"hole placement {placement.name!r}: the {len(chosen)} chosen configurations leave "
                        f"{', '.join(lf.undetermined)} undetermined")
    if lf.condition_number > max_condition:
        raise HoleError(f"hole placement {placement.name!r}: ill-conditioned design (condition number "
                        f"{lf.condition_number:.3g} > {max_condition:g})")
    nb: dict = {}
    for b in bonds:
        nb[b["cls"]] = nb.get(b["cls"], 0) + 1
    fixed = sorted(c for c in present if c not in unknowns)
    return HoleDesign(placement=placement.as_dict(), unknowns=unknowns, fixed=fixed,
                      patterns=[cands[k].astype(int).tolist() for k in chosen], rank=lf.rank, n_unknowns=n_unk,
                      condition_number=float(lf.condition_number), dof=len(chosen) - n_unk, bonds_per_class=nb)


def check_configuration(site_moments, pattern, placement: HolePlacement, spin: float = 1.5,
                        min_moment: float = 0.5) -> dict:
    """Did a converged configuration stay the one that was asked for?  ``site_moments``: signed moments of the
    magnetic sites (μ_B); the spins must keep the signs of ``pattern`` (every |m| ≥ ``min_moment``) and the holes
    must be localised (:func:`locate_holes`) on exactly the placement's sites.  Returns {"ok", "pattern_kept",
    "holes_stayed", "holes": locate_holes(...), "reason"}."""
    m = np.asarray(site_moments, float)
    p = np.asarray(pattern, int)
    if m.shape != p.shape:
        raise HoleError(f"{m.size} site moments for a pattern of {p.size} sites")
    found = locate_holes(m, spin=spin, spin_hole=placement.spin_hole, n_holes=len(placement.sites))
    flipped = [int(k) for k in np.flatnonzero((np.sign(m) != p) | (np.abs(m) < min_moment))]
    kept = not flipped
    stayed = bool(found["localised"] and found["sites"] == sorted(int(k) for k in placement.sites))
    why = []
    if not kept:
        why.append(f"spins of site(s) {flipped} did not keep the asked sign (moments "
                   f"{', '.join(f'{m[k]:+.2f}' for k in flipped)} μB)")
    if not found["localised"]:
        why.append(f"holes not localised: {found['reason']}")
    elif not stayed:
        why.append(f"holes moved from sites {sorted(placement.sites)} to {found['sites']} ({found['reason']})")
    return {"ok": bool(kept and stayed), "pattern_kept": kept, "holes_stayed": stayed, "holes": found,
            "reason": "; ".join(why) if why else f"pattern kept, holes on {found['sites']} ({found['reason']})"}


def predict_energy(bonds, fit: HoleFit, pattern) -> float:
    """The fitted model's energy (eV per cell) of a collinear ``pattern`` with the holes where the fit had them:
    E_0 + Σ_class J_class Σ_bonds S_i S_j σ_i σ_j (``bonds`` from :func:`classify_bonds`, spins ``fit.spins``, J in meV,
    J > 0 AF, fixed classes included).  For a configuration whose holes left their sites (delocalised between parallel
    spins), DFT − prediction measures what the Heisenberg model with localised holes misses — e.g. the kinetic
    (double-exchange-like) energy the mobile holes gain."""
    classes = [c for c, v in fit.J.items() if v is not None]
    row = design_row(bonds, pattern, fit.spins, classes)
    return float(fit.E0_eV + row[1:] @ np.array([fit.J[c] for c in classes], float) / 1000.0)


def fit_hole_records(bonds, placement: HolePlacement, spin: float, records, unknowns, fixed: dict | None = None,
                     min_dof: int = 1, max_condition: float = 1e4, keep_moved: bool = False,
                     absorb_constant: bool = False) -> tuple[HoleFit, list[dict], list[str]]:
    """The fit with holes over DFT ``records`` (dicts with "name", "pattern", "converged", "energy_eV" per cell and
    "V_moments", signed μ_B): a record enters only if its SCF converged and :func:`check_configuration` passes;
    every other record is excluded with its reason (returned as warnings, one line each).  Refused
    (:class:`HoleError`) when fewer than unknowns + 1 + ``min_dof`` records remain, or by :func:`fit_with_holes`
    (rank, condition number).  Returns the fit, the records annotated with "used" and "excluded_because", and the
    warnings.

    ``keep_moved``: a converged configuration that kept its spin signs but whose holes left the placed sites is used
    too (annotated "holes_moved"), so that the J are *effective* couplings of the holes' actual states (e.g. mobile
    between parallel spins), not those of localised holes; the residuals then say how far from a Heisenberg model of
    fixed holes the energies are.  ``absorb_constant``: see :func:`fit_with_holes`."""
    out, warn = [], []
    for r in records:
        r = dict(r)
        why = None
        if not r.get("converged") or r.get("energy_eV") is None:
            why = f"SCF not converged ({r.get('reason') or 'no energy'})"
        else:
            chk = check_configuration(r["V_moments"], r["pattern"], placement, spin)
            r["check"] = chk
            if not chk["ok"] and keep_moved and chk["pattern_kept"]:
                r["holes_moved"] = True
                warn.append(f"{r.get('name')}: used although its holes left the placed sites ({chk['reason']}): "
                            "effective couplings")
            elif not chk["ok"]:
                why = chk["reason"]
        r["used"] = why is None
        r["excluded_because"] = why
        if why is not None:
            warn.append(f"{r.get('name')}: excluded from the fit: {why}")
        out.append(r)
    used = [r for r in out if r["used"]]
    n_unk = len(unknowns)
    if absorb_constant and len(used) > 1:  # classes the used configurations cannot determine are not counted
        spins = placement.spins(len(used[0]["pattern"]), spin)
        A0 = np.array([design_row(bonds, r["pattern"], spins, list(unknowns)) for r in used])
        n_unk -= int(sum(np.ptp(A0[:, k + 1]) < 1e-9 for k in range(len(unknowns))))
    need = n_unk + 1 + int(min_dof)
    if len(used) < need:
        why = "; ".join(f"{r.get('name')}: {r['excluded_because']}" for r in out if not r["used"])
        raise HoleError(f"fit with holes ({placement.name}) refused: {len(used)} usable configuration(s) of "
                        f"{len(out)}, {need} needed for E0, {', '.join(unknowns)} with {min_dof} residual degree(s) "
                        f"of freedom" + (f" (excluded: {why})" if why else ""))
    fit = fit_with_holes(bonds, placement, spin, [r["pattern"] for r in used], [r["energy_eV"] for r in used],
                         unknowns=unknowns, fixed=fixed, names=[r.get("name") for r in used],
                         max_condition=max_condition, absorb_constant=absorb_constant)
    warn += [f"{c}: the same Σ S_i S_j σ_i σ_j in every configuration used: not determined by these data "
             "(absorbed into E0)" for c in fit.absorbed]
    return fit, out, warn


def fit_design(cell_bonds, near_sites, placement: HolePlacement, spin: float, n_sites: int, start=None,
               fit_j23: bool = False, n_configs: int | None = None) -> tuple[list[dict], list[str], HoleDesign]:
    """The fit of one hole placement, set up: the bonds of the vacancy cell (dicts i, j, shell) classified for
    ``placement`` (:func:`classify_bonds`), the classes to fit (:func:`hole_unknowns`: the nearest-neighbour classes
    present, J2 and J3 too when ``fit_j23``) and their D-optimal configurations (:func:`choose_hole_patterns`,
    ``start`` first).  Returns (bonds, unknowns, design); the :class:`HoleError` lines of those functions."""
    bonds = classify_bonds(cell_bonds, placement.sites, near_sites)
    unknowns = hole_unknowns(bonds, fit_j23=fit_j23)
    design = choose_hole_patterns(bonds, placement, spin, n_sites, unknowns=unknowns, n_configs=n_configs,
                                  start=start)
    return bonds, unknowns, design


@dataclass
class CellFit:
    """The fit with holes of one vacancy cell over its DFT records, as both ``wannmag run`` (vacancy_fit) and
    data/mc/vacancy_holes_dft.py report it (:func:`fit_cell`).

    ``fit``: the :class:`HoleFit` (J in meV, J > 0 AF, H = Σ_{i<j} S_i·J_ij·S_j, each bond once; E_0 eV per cell);
    ``records``: every record annotated by :func:`fit_hole_records` ("used", "excluded_because", "check",
    "holes_moved"), a converged excluded one also with "beyond_heisenberg_meV" when the model can predict it;
    ``warnings``: one line per exclusion, use of a moved configuration or absorbed class; ``moved``: configurations
    used although their holes left the placed sites (``keep_moved``) — when any, the J are **effective** couplings
    of the holes' actual states, not a fixed-hole Heisenberg fit; ``beyond_heisenberg_meV``: {configuration: E_DFT −
    E_model} (meV per cell) of the converged configurations excluded because their holes moved or spins flipped,
    the model being this fit with the holes held on the placed sites (none when a class was absorbed into E_0:
    the model then has no absolute energy for them); ``residuals_meV``: {configuration used: model − DFT} (meV per
    cell); ``dof``: configurations used − fitted unknowns − 1."""

    fit: HoleFit
    records: list
    warnings: list
    moved: list
    beyond_heisenberg_meV: dict
    residuals_meV: dict
    dof: int
    rms_meV: float
    max_abs_meV: float
    keep_moved: bool = False
    absorb_constant: bool = False

    @property
    def effective(self) -> bool:
        """True when configurations whose holes moved were used: effective couplings."""
        return bool(self.moved)

    @property
    def status(self) -> str:
        """"fitted", or "fitted (effective: holes moved in <configurations>)"."""
        return f"fitted (effective: holes moved in {', '.join(self.moved)})" if self.moved else "fitted"

    @property
    def kind(self) -> str:
        """What the J are, in words (for printed and reported text)."""
        if self.moved:
            return (f"EFFECTIVE couplings ({len(self.moved)} configuration(s) with moved holes used: not a fixed-hole "
                    "Heisenberg fit)")
        return "fixed-hole Heisenberg fit (every configuration used kept its holes on the placed sites)"

    def notes(self, keep_moved_option: str = "--keep-moved") -> list[str]:
        """The absorbed classes and, with ``keep_moved``, the configurations whose holes moved (one line each;
        ``keep_moved_option``: how the caller's user asked for it)."""
        out = [f"{c}: not determined: the same sum in every configuration used (absorbed into E0)"
               for c in self.fit.absorbed]
        if self.keep_moved:
            out.append(f"effective couplings: configurations whose holes left the placed sites are used "
                       f"({keep_moved_option}): " + ", ".join(self.moved))
        return out

    def as_dict(self) -> dict:
        return {"fit": self.fit.as_dict(), "records": list(self.records), "warnings": list(self.warnings),
                "moved": list(self.moved), "beyond_heisenberg_meV": dict(self.beyond_heisenberg_meV),
                "residuals_meV": dict(self.residuals_meV), "dof": int(self.dof), "rms_meV": float(self.rms_meV),
                "max_abs_meV": float(self.max_abs_meV), "keep_moved": bool(self.keep_moved),
                "absorb_constant": bool(self.absorb_constant), "status": self.status}

    @classmethod
    def from_dict(cls, d: dict) -> "CellFit":
        return cls(fit=HoleFit.from_dict(d["fit"]), records=list(d["records"]), warnings=list(d["warnings"]),
                   moved=list(d["moved"]), beyond_heisenberg_meV=dict(d["beyond_heisenberg_meV"]),
                   residuals_meV=dict(d["residuals_meV"]), dof=int(d["dof"]), rms_meV=float(d["rms_meV"]),
                   max_abs_meV=float(d["max_abs_meV"]), keep_moved=bool(d.get("keep_moved", False)),
                   absorb_constant=bool(d.get("absorb_constant", False)))


def fit_cell(bonds, placement: HolePlacement, spin: float, records, unknowns, fixed: dict | None = None,
             min_dof: int = 1, keep_moved: bool = False, absorb_constant: bool = False,
             max_condition: float = 1e4) -> CellFit:
    """The fit with holes of one vacancy cell (:class:`CellFit`): :func:`fit_hole_records` over ``records`` (which
    configurations enter and why the others do not; ``keep_moved``, ``absorb_constant``, ``min_dof`` as there; its
    :class:`HoleError` when refused, naming every excluded configuration), then the residuals per configuration, the
    residual degrees of freedom (an absorbed class is not counted as fitted), the configurations used although
    their holes moved, and — when no class was absorbed — what the fixed-hole model misses in the converged
    configurations it could not use (:func:`predict_energy`; < 0: the mobile holes gain energy)."""
    fit, annotated, warns = fit_hole_records(bonds, placement, spin, records, unknowns, fixed=fixed,
                                             min_dof=min_dof, max_condition=max_condition, keep_moved=keep_moved,
                                             absorb_constant=absorb_constant)
    beyond = {}
    if not fit.absorbed:  # E0 holds an absorbed class's constant sum: no absolute prediction elsewhere
        for r in annotated:
            if not r["used"] and r.get("converged") and r.get("energy_eV") is not None:
                d = 1000.0 * (float(r["energy_eV"]) - predict_energy(bonds, fit, r["pattern"]))
                r["beyond_heisenberg_meV"] = d
                beyond[r["name"]] = d
    res = np.asarray(fit.residuals_meV, float)
    return CellFit(fit=fit, records=annotated, warnings=list(warns),
                   moved=[r["name"] for r in annotated if r.get("holes_moved")], beyond_heisenberg_meV=beyond,
                   residuals_meV=dict(zip(fit.configurations, fit.residuals_meV)),
                   dof=len(fit.configurations) - 1 - (len(unknowns) - len(fit.absorbed)),
                   rms_meV=float(np.sqrt(np.mean(np.square(res)))), max_abs_meV=float(np.max(np.abs(res))),
                   keep_moved=bool(keep_moved), absorb_constant=bool(absorb_constant))


# ------------------------------------------------------------------------------------------------ the neutral cell
def vacancy_holes_of(oxidation_state, spin: float) -> tuple[int, float]:
    """How many holes a neutral vacancy leaves and the spin of a hole site: removing a neutral magnetic ion of nominal
    oxidation state +q takes q electrons less than the ion had given to the lattice, so q holes remain (VPS3, V2+:
    2; CrI3, Cr3+: 3).  On a magnetic site a hole removes one d electron; for a d shell at most half filled (2S = n_d:
    V2+ d³, Cr3+ d³) S becomes S − 1/2 (V3+, d², S = 1).  Returns (n_holes, spin_hole); raises :class:`HoleError`
    when q is not a positive integer or S − 1/2 ≤ 0 (a d¹ ion would lose its moment: not this picture)."""
    q = float(oxidation_state)
    if not np.isfinite(q) or q < 1 or q != round(q):
        raise HoleError(f"oxidation state of the removed ion must be a positive integer, got {oxidation_state!r}")
    s_hole = float(spin) - 0.5
    if s_hole <= 0:
        raise HoleError(f"a hole on a site of spin S = {spin:g} leaves no moment (S − 1/2 = {s_hole:g}): the "
                        "picture of holes as lower-spin ions does not apply")
    return int(round(q)), s_hole


@dataclass
class PlacementRun:
    """One SCF of the neutral vacancy cell with its holes started at a placement (``sites`` empty: the placement
    "none", every ion started with its full moment) in the ``pattern`` of the perfect crystal's order.  Energies eV
    per cell; moments μ_B (signed, magnetic sites); gaps eV.  ``holes_found``: :func:`locate_holes` of the converged
    moments (where the holes went); ``check``: :func:`check_configuration` against the placement (None for "none"
    or an unconverged SCF); ``reason``: why the SCF gave no energy."""

    name: str
    sites: list
    pattern: list
    configuration: str
    converged: bool
    energy_eV: float | None = None
    V_moments: list | None = None
    total_moment: float | None = None
    gap_eV: float | None = None
    common_gap_eV: float | None = None
    fermi_levels_eV: list | None = None
    scf_iterations: int | None = None
    holes_found: dict | None = None
    check: dict | None = None
    reason: str | None = None
    warnings: list | None = None

    @property
    def usable(self) -> bool:
        """Converged, with holes placed, spins kept and the holes on the placed sites: a placement the fit can use."""
        return bool(self.converged and self.sites and self.check and self.check.get("ok"))

    def as_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["sites"] = [int(k) for k in self.sites]
        d["pattern"] = [int(k) for k in self.pattern]
        d["usable"] = self.usable
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "PlacementRun":
        return cls(**{k: d.get(k) for k in cls.__dataclass_fields__ if k in d})


def placement_run(name: str, placement: HolePlacement | None, pattern, record: dict, spin: float,
                  spin_hole: float, n_holes: int) -> PlacementRun:
    """A :class:`PlacementRun` from one SCF ``record`` (dict: "name", "converged", "energy_eV", "V_moments" signed,
    optionally "total_moment", "gap_eV", "common_gap_eV", "fermi_levels_eV", "scf_iterations", "reason",
    "warnings"): where the ``n_holes`` holes are (:func:`locate_holes` with S = ``spin``, S_hole = ``spin_hole``) and,
    for a placement with sites, whether the configuration stayed the one asked for (:func:`check_configuration`)."""
    sites = [] if placement is None else [int(k) for k in placement.sites]
    run = PlacementRun(name=str(name), sites=sites, pattern=[int(s) for s in pattern],
                       configuration=str(record.get("name")), converged=bool(record.get("converged")),
                       reason=record.get("reason"), warnings=list(record.get("warnings") or []))
    if not run.converged or record.get("energy_eV") is None:
        run.converged = False
        run.reason = run.reason or "no energy"
        return run
    vm = [float(m) for m in record["V_moments"]]
    run.energy_eV = float(record["energy_eV"])
    run.V_moments = vm
    for k in ("total_moment", "gap_eV", "common_gap_eV", "fermi_levels_eV", "scf_iterations"):
        setattr(run, k, record.get(k))
    run.holes_found = locate_holes(vm, spin=spin, spin_hole=spin_hole, n_holes=n_holes)
    if placement is not None and placement.sites:
        run.check = check_configuration(vm, pattern, placement, spin)
    return run


@dataclass
class PlacementChoice:
    """The placement whose exchange is fitted: the lowest-energy :attr:`PlacementRun.usable` run.  ``relative_meV``:
    every converged run's energy above the lowest converged one (meV per cell; None: not converged); ``notes``: runs
    below the chosen one that could not be used, and why."""

    placement: str
    sites: list
    energy_eV: float
    relative_meV: dict
    notes: list

    def as_dict(self) -> dict:
        return {"placement": self.placement, "sites": [int(k) for k in self.sites], "energy_eV": self.energy_eV,
                "relative_meV": dict(self.relative_meV), "notes": list(self.notes)}

    @classmethod
    def from_dict(cls, d: dict) -> "PlacementChoice":
        return cls(placement=str(d["placement"]), sites=[int(k) for k in d["sites"]], energy_eV=float(d["energy_eV"]),
                   relative_meV=dict(d["relative_meV"]), notes=list(d["notes"]))


def _run_state(r: PlacementRun) -> str:
    if not r.converged:
        return f"not converged ({r.reason})"
    if not r.sites:
        hf = r.holes_found or {}
        return ("no holes placed; " + (f"holes found on sites {hf.get('sites')}" if hf.get("localised") else
                                       "holes not localised on V"))
    return (r.check or {}).get("reason", "unchecked")


def choose_placement(runs) -> PlacementChoice:
    """The lowest-energy usable placement run (:class:`PlacementChoice`); a converged run that lies lower but cannot be
    used — no holes placed ("none"), holes moved or delocalised, spins flipped — is named in the notes with its
    energy difference.  Raises :class:`HoleError` (one line naming every run's state) when no run is usable."""
    runs = list(runs)
    conv = [r for r in runs if r.converged]
    if not conv:
        raise HoleError("no placement of the holes converged: " + "; ".join(f"{r.name}: {_run_state(r)}" for r in runs))
    e_min = min(r.energy_eV for r in conv)
    rel = {r.name: (round(1000.0 * (r.energy_eV - e_min), 3) if r.converged else None) for r in runs}
    usable = [r for r in conv if r.usable]
    if not usable:
        raise HoleError("no placement with its holes on the placed sites to fit: "
                        + "; ".join(f"{r.name}: {_run_state(r)}" for r in runs))
    best = min(usable, key=lambda r: r.energy_eV)
    notes = [f"{r.name} lies {1000.0 * (best.energy_eV - r.energy_eV):.1f} meV below {best.name} but is not fitted: "
             f"{_run_state(r)}" for r in sorted(conv, key=lambda r: r.energy_eV)
             if r.energy_eV < best.energy_eV and not r.usable]
    return PlacementChoice(placement=best.name, sites=list(best.sites), energy_eV=best.energy_eV, relative_meV=rel,
                           notes=notes)


def constraint_warnings(records, smearing: float = 0.0) -> list[str]:
    """Fixed-moment SCFs whose constraint is active: the highest occupied state of one spin channel lies above the
    lowest empty state of the other (``common_gap_eV`` < 0, :func:`wannmag.workflows.dft.common_gap`), so the free
    system would move electrons between the channels and the constrained energy carries the constraint's cost.  The
    split of the two channels' Fermi levels alone means nothing for an insulator (each level sits somewhere in its
    channel's gap: measured 0.70 and 0.96 eV splits with common gaps of +0.33 and +0.28 eV).  ``records``: dicts
    with "name", "converged", and for a fixed-moment run "fermi_levels_eV" (two levels) and "common_gap_eV"; a
    fixed-moment record without ``common_gap_eV`` (run before it was stored) is named as unchecked; free and
    unconverged runs are skipped.  ``smearing`` (eV): an overlap smaller than it is not counted."""
    out = []
    for r in records:
        if not r.get("converged") or not r.get("fermi_levels_eV"):
            continue
        g = r.get("common_gap_eV")
        if g is None:
            out.append(f"{r['name']}: fixed moment, common gap of the two spin channels not stored (run before it "
                       "was recorded): whether the constraint is active is unchecked")
        elif g < -smearing:
            out.append(f"{r['name']}: fixed moment held with the spin channels overlapping by {-g:.2f} eV: not a free "
                       "self-consistent state; its energy includes the constraint's cost")
    return out


def lattice_classes(J: dict, perfect_J1: float) -> tuple[dict, dict, list[str]]:
    """The nearest-neighbour classes a diluted lattice with holes needs (V2-V2_bulk, next_to_vacancy, V2-V3) from a
    fit with holes ``J`` {class: meV}.  A class the fitted cell has no bond of (in the 2×2 VPS3 cell only ``near`` has
    a V2-V2_bulk bond; a placement with every neighbour of the vacancy a hole has no next_to_vacancy bond) is taken
    equal to the perfect crystal's J1 (``perfect_J1``, meV), an assumption said in the notes; V2-V3 cannot be assumed
    (:class:`HoleError`).  Returns (J with every needed class, {assumed class: meV}, notes); J > 0 AF."""
    out = {k: float(v) for k, v in J.items() if v is not None}
    if "V2-V3" not in out:
        raise HoleError("the fit with holes has no V2-V3 exchange (every placement with holes has V2-V3 bonds)")
    assumed, notes = {}, []
    for c in ("V2-V2_bulk", "next_to_vacancy"):
        if c not in out:
            out[c] = assumed[c] = float(perfect_J1)
            notes.append(f"{c}: no such bond in the fitted cell; taken equal to the perfect crystal's J1 = "
                         f"{perfect_J1:+.3f} meV (an assumption)")
    return out, assumed, notes


def lattice_placement(name: str) -> tuple[str, str | None]:
    """The hole placement of the Monte Carlo lattice (:data:`wannmag.magnetism.montecarlo.holes.PLACEMENTS`: "near",
    "random") for the placement the DFT fit used: ``near`` → "near" (the holes on neighbours of their vacancy);
    any other (``far``, ``near_far``, explicit sites) → "random" with a note (holes away from the vacancy, which a
    diluted lattice cannot place per vacancy otherwise)."""
    if name == "near":
        return "near", None
    return "random", (f"the fitted placement {name!r} keeps holes away from the vacancy: the Monte Carlo places "
                      "them at random among the remaining sites (an approximation)")
