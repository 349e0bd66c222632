"""Diluted Monte Carlo lattices with the holes of the vacancies: V_{1−x}PS3 with two V3+ (S = 1) per V vacancy.

Removing a neutral magnetic ion leaves ``per_vacancy`` holes (two for a V2+ vacancy); if they localise on magnetic
sites they turn those sites into ions of spin ``spin_hole`` (V3+, d², S = 1 instead of S = 3/2).  This module places
them on a diluted supercell and gives every nearest-neighbour bond the exchange of its class
(:data:`~wannmag.magnetism.vacancy_holes.HOLE_CLASSES`, the classes of the DFT fit
:func:`~wannmag.magnetism.vacancy_holes.fit_with_holes`):

``V3-V3``            both ends are hole sites,
``V2-V3``            exactly one end is a hole site,
``next_to_vacancy``  no hole at either end, and an end is a nearest neighbour of a vacancy (of any vacancy),
``V2-V2_bulk``       every other nearest-neighbour bond (also every bond of a lattice without vacancies).

A bond of a class gets the isotropic exchange J_class (meV) in place of its own isotropic part tr(J)/3 (any
anisotropic part of the model's tensor is kept, as in the workflow's ``NearVacancyJ``); further shells (J2, J3, ...)
and the single-ion tensors stay those of the perfect-crystal model.  Convention: H = Σ_{i<j} S_i·J_ij·S_j +
Σ_i S_i·A_i·S_i, every bond once, classical spins of length S_i, J > 0 antiferromagnetic, meV.

Placements: ``near`` — the holes of each vacancy on its nearest neighbours, chosen at random among those present and
not yet a hole (vacancies taken in random order); where fewer are free (a neighbour is itself vacant or already holds
a hole of another vacancy) the rest go to the nearest free sites by bond path (ties at random) and are counted as
``displaced``.  ``random`` — per_vacancy × n_vac hole sites uniformly among all remaining sites.  Both reproducible
from a key (sequence of ints).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import shortest_path

from ..spinmodel import SpinModel
from ..vacancy_holes import HOLE_CLASSES
from .errors import MonteCarloError
from .groundstate import ground_state
from .lattice import MCLattice, _as_size, bond_shells, build_lattice, random_vacancies, supercell_bonds
from .tc import choose_algorithm, simulate

__all__ = ["PLACEMENTS", "HoleSpec", "Holes", "nn_adjacency", "place_holes", "bond_classes", "HoleExchange",
           "hole_lattice", "simulate_holes", "choose_hole_algorithm", "hole_spec_from_fit"]

#: hole placements on the Monte Carlo lattice
PLACEMENTS = ("near", "random")


@dataclass
class HoleSpec:
    """What the holes are: exchange per nearest-neighbour class ``J`` {class: meV, J > 0 AF}, ``placement``
    (:data:`PLACEMENTS`), ``per_vacancy`` holes per vacancy, spin ``spin_hole`` of a hole site."""

    J: dict
    placement: str = "near"
    per_vacancy: int = 2
    spin_hole: float = 1.0

    def validate(self) -> None:
        """One :class:`MonteCarloError` line for an unknown class, a non-finite J, an unknown placement, S ≤ 0."""
        if not isinstance(self.J, dict):
            raise MonteCarloError(f"hole exchange must be a mapping {{class: J in meV}}, got {type(self.J).__name__}")
        for k, v in self.J.items():
            if k not in HOLE_CLASSES:
                raise MonteCarloError(f"unknown bond class {k!r}; the classes are {', '.join(HOLE_CLASSES)}")
            if isinstance(v, bool) or not isinstance(v, (int, float, np.number)) or not math.isfinite(v):
                raise MonteCarloError(f"exchange of class {k} must be a finite number (meV), got {v!r}")
        if self.placement not in PLACEMENTS:
            raise MonteCarloError(f"hole placement must be one of {', '.join(PLACEMENTS)}, got {self.placement!r}")
        n = self.per_vacancy
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 0 <= int(n) <= 12:
            raise MonteCarloError(f"holes per vacancy must be an integer in 0..12, got {n!r}")
        s = self.spin_hole
        if isinstance(s, bool) or not isinstance(s, (int, float, np.number)) or not (math.isfinite(s) and s > 0):
            raise MonteCarloError(f"spin of a hole site must be a finite S > 0, got {s!r}")

    def as_dict(self) -> dict:
        return {"J_meV": {k: float(v) for k, v in self.J.items()}, "placement": self.placement,
                "per_vacancy": int(self.per_vacancy), "spin_hole": float(self.spin_hole),
                "convention": "H = sum_{i<j} S_i.J_ij.S_j, each bond once, |S_i| = S_i, J > 0 AF, meV"}

    @classmethod
    def from_dict(cls, d: dict) -> "HoleSpec":
        return cls(J={k: float(v) for k, v in d["J_meV"].items()}, placement=str(d["placement"]),
                   per_vacancy=int(d["per_vacancy"]), spin_hole=float(d["spin_hole"]))


def hole_spec_from_fit(fit: dict, placement: str = "near") -> tuple[HoleSpec | None, list[str]]:
    """(HoleSpec, notes) for the Monte Carlo lattice from a fit with holes (:meth:`~wannmag.magnetism.vacancy_holes.
    HoleFit.as_dict`: "J_meV" {class: meV, J > 0 AF}, "placement" with its "sites" and "spin_hole"); (None, []) when
    the fit carries no hole class (an equal-spin vacancy fit).  V2-V2_bulk, next_to_vacancy and V2-V3 are needed
    (every diluted lattice with holes has such bonds; else one :class:`MonteCarloError` line naming them); a missing
    V3-V3 (the 2×2 cell with both holes next to its vacancy has no V3–V3 bond) is taken equal to V2-V3, said in the
    notes.  Holes per vacancy = the number of hole sites of the fitted placement (default 2), S of a hole site its
    spin_hole (default 1)."""
    J = (fit or {}).get("J_meV") or {}
    got = {k: float(J[k]) for k in HOLE_CLASSES if k in J}
    if not got:
        return None, []
    missing = [k for k in ("V2-V2_bulk", "next_to_vacancy", "V2-V3") if k not in got]
    if missing:
        raise MonteCarloError(f"the fit with holes has no exchange for bond class {', '.join(missing)} (meV); every "
                              "diluted lattice with holes has such bonds (fit a placement that has them)")
    notes = []
    if "V3-V3" not in got:
        got["V3-V3"] = got["V2-V3"]
        notes.append(f"V3-V3 not in the fit: taken equal to V2-V3 = {got['V2-V3']:+.3f} meV (an assumption; the fitted "
                     "cell has no V3-V3 bond)")
    pl = fit.get("placement") or {}
    spec = HoleSpec(J=got, placement=placement, per_vacancy=len(pl.get("sites") or [0, 0]),
                    spin_hole=float(pl.get("spin_hole", 1.0)))
    spec.validate()
    return spec, notes


@dataclass
class Holes:
    """Hole sites of one diluted lattice (undiluted supercell numbering, as the vacancies): ``sites``, the vacancy
    ``owner`` of each (−1 for the ``random`` placement) and how many were ``displaced`` beyond the nearest
    neighbours of their vacancy."""

    sites: list
    owner: list
    displaced: int = 0
    spin_hole: float = 1.0
    vacancies: list = field(default_factory=list)

    def spins(self) -> dict:
        """{site: S_hole}, the ``spins`` override of :func:`~.lattice.build_lattice`."""
        return {int(k): float(self.spin_hole) for k in self.sites}

    def summary(self) -> dict:
        return {"n_vacancies": len(self.vacancies), "n_holes": len(self.sites), "displaced": int(self.displaced)}

    def as_dict(self) -> dict:
        return {"sites": [int(k) for k in self.sites], "owner": [int(k) for k in self.owner],
                "displaced": int(self.displaced), "spin_hole": float(self.spin_hole),
                "vacancies": [int(k) for k in self.vacancies]}

    @classmethod
    def from_dict(cls, d: dict) -> "Holes":
        return cls(sites=[int(k) for k in d["sites"]], owner=[int(k) for k in d["owner"]],
                   displaced=int(d["displaced"]), spin_hole=float(d["spin_hole"]),
                   vacancies=[int(k) for k in d["vacancies"]])


def nn_adjacency(model: SpinModel, size):
    """Nearest-neighbour (shell-1, :func:`~.lattice.bond_shells`) graph of the undiluted supercell as a symmetric
    scipy CSR matrix, and the shell-1 bonds (rows, cols, model bond index), each once."""
    L = _as_size(size)
    n_full = L[0] * L[1] * L[2] * model.n_sites
    _, rows, cols, bidx = supercell_bonds(model, L)
    shells = bond_shells(model)
    nn = (shells[bidx] == 1) & (rows != cols) if len(bidx) else np.zeros(0, bool)
    r, c = rows[nn], cols[nn]
    adj = csr_matrix((np.ones(2 * len(r)), (np.concatenate([r, c]), np.concatenate([c, r]))), shape=(n_full, n_full))
    adj.data[:] = 1.0  # duplicate images of one pair count once
    return adj, (r, c, bidx[nn])


def place_holes(model: SpinModel, size, vacancies, spec: HoleSpec, key) -> Holes:
    """Hole sites for the diluted lattice ``vacancies`` (module docstring), reproducible from ``key``."""
    spec.validate()
    L = _as_size(size)
    n_full = L[0] * L[1] * L[2] * model.n_sites
    vac = sorted({int(v) for v in (vacancies or [])})
    if vac and (vac[0] < 0 or vac[-1] >= n_full):
        raise MonteCarloError(f"vacancy indices must lie in 0..{n_full - 1}")
    n_holes = int(spec.per_vacancy) * len(vac)
    n_present = n_full - len(vac)
    if n_holes > n_present:
        raise MonteCarloError(f"hole fraction impossible: {len(vac)} vacancies of {n_full} sites "
                              f"(x = {len(vac) / n_full:.3g}) need {n_holes} hole sites ({spec.per_vacancy} per "
                              f"vacancy) but only {n_present} sites remain (x must be <= "
                              f"{1.0 / (1 + spec.per_vacancy):.3g})")
    g = np.random.default_rng(np.random.SeedSequence([int(x) for x in key] + [0x401E5]))
    free = np.ones(n_full, bool)
    free[vac] = False
    if spec.placement == "random" or not n_holes:
        sites = sorted(g.choice(np.nonzero(free)[0], size=n_holes, replace=False).tolist()) if n_holes else []
        return Holes(sites=sites, owner=[-1] * len(sites), displaced=0, spin_hole=float(spec.spin_hole),
                     vacancies=vac)
    adj, _ = nn_adjacency(model, L)
    sites, owner, displaced = [], [], 0
    for v in g.permutation(vac):
        v = int(v)
        nb = adj.indices[adj.indptr[v]:adj.indptr[v + 1]]
        cand = nb[free[nb]]
        k = int(spec.per_vacancy)
        got = list(g.choice(cand, size=k, replace=False)) if len(cand) >= k else list(cand)
        if len(got) < k:  # the nearest free sites by bond path (vacant sites still connect the lattice)
            d = shortest_path(adj, unweighted=True, indices=v)
            d[~free] = np.inf
            d[got] = np.inf
            order = np.lexsort((g.random(n_full), d))
            extra = [int(i) for i in order[:k - len(got)] if np.isfinite(d[i])]
            if len(got) + len(extra) < k:  # a disconnected free site (open boundaries): any free site
                rest = np.setdiff1d(np.nonzero(free)[0], got + extra)
                extra += g.choice(rest, size=k - len(got) - len(extra), replace=False).tolist()
            displaced += len(extra)
            got += extra
        for h in got:
            free[int(h)] = False
            sites.append(int(h))
            owner.append(v)
    order = np.argsort(sites)
    return Holes(sites=[sites[i] for i in order], owner=[owner[i] for i in order], displaced=displaced,
                 spin_hole=float(spec.spin_hole), vacancies=vac)


def bond_classes(rows, cols, holes, near) -> np.ndarray:
    """Class name (:data:`HOLE_CLASSES`) of each nearest-neighbour bond rows[e]–cols[e] (module docstring):
    ``holes`` and ``near`` are boolean masks over the undiluted supercell (hole site; nearest neighbour of a
    vacancy)."""
    rows, cols = np.asarray(rows, np.int64), np.asarray(cols, np.int64)
    nh = holes[rows].astype(int) + holes[cols].astype(int)
    nv = near[rows] | near[cols]
    out = np.where(nh == 2, "V3-V3", np.where(nh == 1, "V2-V3", np.where(nv, "next_to_vacancy", "V2-V2_bulk")))
    return out.astype(object)


class HoleExchange:
    """``bond_exchange`` of :func:`~.lattice.build_lattice`: a nearest-neighbour bond gets J_class (meV, isotropic,
    in place of its own tr(J)/3, the anisotropic part kept) of its hole class; longer bonds keep their tensors.  A
    class that occurs without a J in ``J`` is refused (one line naming it)."""

    def __init__(self, model: SpinModel, size, vacancies, holes: Holes, J: dict):
        L = _as_size(size)
        n_full = L[0] * L[1] * L[2] * model.n_sites
        self.shells = bond_shells(model)
        self.J = {k: float(v) for k, v in J.items()}
        self.hole = np.zeros(n_full, bool)
        self.hole[list(holes.sites)] = True
        vac = np.zeros(n_full, bool)
        vac[list(vacancies or [])] = True
        adj, _ = nn_adjacency(model, L)
        self.near = (adj @ vac.astype(float)) > 0.0
        self.near &= ~vac
        self.counts: dict = {}

    def __call__(self, rows, cols, bidx, J):
        nn = self.shells[bidx] == 1 if len(bidx) else np.zeros(0, bool)
        cls = bond_classes(rows[nn], cols[nn], self.hole, self.near)
        names, counts = np.unique(cls.astype(str), return_counts=True) if len(cls) else ([], [])
        self.counts = {str(k): int(n) for k, n in zip(names, counts)}
        missing = [k for k in self.counts if k not in self.J]
        if missing:
            raise MonteCarloError("no exchange given for bond class " + ", ".join(
                f"{k} ({self.counts[k]} bonds)" for k in missing) + " of this lattice; give J in meV for every class "
                "that occurs")
        out = np.array(J, float)
        idx = np.nonzero(nn)[0]
        target = np.array([self.J[c] for c in cls]) if len(cls) else np.zeros(0)
        iso = np.trace(out[idx], axis1=1, axis2=2) / 3.0
        out[idx] += (target - iso)[:, None, None] * np.eye(3)
        return out


def hole_lattice(model: SpinModel, size, vacancies, spec: HoleSpec, key) -> tuple[MCLattice, Holes, dict]:
    """(lattice, holes, class counts): ``model`` on ``size`` with ``vacancies`` removed, the holes placed
    (:func:`place_holes`, key ``key``) with spin ``spec.spin_hole`` and the bonds given their class exchange
    (:class:`HoleExchange`)."""
    holes = place_holes(model, size, vacancies, spec, key)
    hx = HoleExchange(model, size, vacancies, holes, spec.J)
    lat = build_lattice(model, size, vacancies=vacancies, spins=holes.spins(), bond_exchange=hx)
    return lat, holes, dict(hx.counts)


def simulate_holes(model: SpinModel, size, settings, vacancies, spec: HoleSpec, checkpoint=None, seed_key=None):
    """Ground state + parallel tempering on the lattice of :func:`hole_lattice` (:func:`~.tc.simulate` with the
    holes' ``spins`` and :class:`HoleExchange`); returns (PTResult, Holes, class counts)."""
    L = _as_size(size)
    key = tuple(seed_key) if seed_key is not None else (settings.seed, *L)
    holes = place_holes(model, L, vacancies, spec, key)
    hx = HoleExchange(model, L, vacancies, holes, spec.J)
    res, _ = simulate(model, L, settings, vacancies=vacancies, checkpoint=checkpoint, seed_key=key,
                      spins=holes.spins(), bond_exchange=hx)
    return res, holes, dict(hx.counts)


def choose_hole_algorithm(model: SpinModel, sizes, settings, spec: HoleSpec | None, fraction: float,
                          requested: str | None = None) -> tuple[str, str]:
    """(algorithm, reason) for a diluted study of ``model`` on ``sizes`` with and without holes: the one rule of
    :func:`~.tc.choose_algorithm` ("metropolis" kept; None/"auto" → cluster moves where the scheme is valid, else
    Metropolis with the refusal as the reason; "cluster" → the refusal raised), applied to the undiluted lattice of
    the smallest size (the other sizes checked for the bond range) and, with ``spec``, to one realisation with holes
    at ``fraction`` (the first realisation of :func:`~.dilution.dilution_scan`'s keys), whose nearest-neighbour bonds
    carry the class exchange (meV, J > 0 AF) the cluster scheme must accept too."""
    sizes = [_as_size(s) for s in sizes]
    if not sizes:
        raise MonteCarloError("give at least one lattice size")
    L = min(sizes, key=lambda s: int(np.prod(s)))
    lats = [("", build_lattice(model, L), [build_lattice(model, s) for s in sizes if s != L])]
    if spec is not None and float(fraction) > 0:
        key = (int(settings.seed), *L, 0, int(round(float(fraction) * 1e6)))
        vac = random_vacancies(int(np.prod(L)) * model.n_sites, float(fraction), key)
        lats.append((f"lattice with holes (x = {float(fraction):g}): ", hole_lattice(model, L, vac, spec, key)[0], []))
    algo, why = "metropolis", "requested"
    for label, lat, others in lats:
        gs = ground_state(lat, ising=bool(settings.ising), seed=settings.seed)
        algo, why = choose_algorithm(lat, gs.pattern, others, requested)
        if algo == "metropolis":
            return algo, label + why
    return algo, why
