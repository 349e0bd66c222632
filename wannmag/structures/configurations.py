"""Collinear magnetic configurations, their bond counts (the energy-mapping design matrix) and vacancy supercells.

A configuration is a supercell with an up/down pattern σ_i = ±1 on its magnetic sites.  In the classical
Heisenberg model of wannmag, H = Σ_{i<j} J_ij S_i·S_j (each bond once, spins of length S, J > 0 AF), its energy per
supercell is

    E = E_0 · N_sites + S² Σ_n J_n c_n,     c_n = Σ_{bonds (i<j) of shell n in the supercell} σ_i σ_j,

so ``bond_counts`` returns c_n per supercell and per magnetic site.  On the honeycomb lattice (per site):

    FM:     c = ( 3/2,  3, 3/2)     Néel:    c = (−3/2,  3, −3/2)
    zigzag: c = ( 1/2, −1, −3/2)    stripy:  c = (−1/2, −1,  3/2)

FM and Néel live in the primitive cell; zigzag and stripy in the smallest rectangular cell (a1, a1 + 2a2; four
sites).  The patterns are defined by which nearest-neighbour bonds are parallel: Néel — none; zigzag — the bonds of
the chains along a1 (the "rungs" perpendicular to a1 are antiparallel); stripy — only the rungs.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms
from ase.build import make_supercell

from ..errors import ConfigurationError
from .io import source_name
from .magnetic import MagneticSublattice, find_magnetic_sites
from .shells import neighbour_shells

__all__ = ["Configuration", "rectangular_supercell", "honeycomb_configuration", "configuration_from_pattern",
           "bond_counts", "vacancy_supercell", "standard_configurations", "CONFIG_NAMES"]

CONFIG_NAMES = ("FM", "Neel", "zigzag", "stripy")
_ALIASES = {"fm": "FM", "ferro": "FM", "neel": "Neel", "néel": "Neel", "afm": "Neel", "afm-neel": "Neel",
            "zigzag": "zigzag", "zz": "zigzag", "stripy": "stripy", "stripe": "stripy"}


@dataclass
class Configuration:
    """A collinear magnetic configuration.

    Attributes
    ----------
    name : e.g. "FM", "Neel", "zigzag", "stripy", "custom", "Neel+vac".
    sublattice : magnetic sublattice of the supercell (its ``atoms`` carry initial magnetic moments σ·2S μ_B);
        None for a configuration rebuilt by :meth:`from_dict` without its structure (then ``n_sites`` and the
        formula are the stored ones and :attr:`atoms` raises).
    pattern : σ_i = ±1 for each magnetic site of the supercell.
    supercell : 3×3 integer matrix P, supercell cell = P @ primitive cell.
    vacancies : indices (in the full supercell, before removal) of magnetic sites removed.
    """

    name: str
    sublattice: MagneticSublattice | None
    pattern: np.ndarray
    supercell: np.ndarray
    vacancies: list[int] = field(default_factory=list)
    _stored: dict | None = field(default=None, init=False, repr=False, compare=False)  # from_dict: see there

    @property
    def atoms(self) -> Atoms:
        if self.sublattice is None:
            raise ConfigurationError(f"configuration {self.name} was rebuilt from a dict without its structure (the "
                                     "supercell's atoms are not stored): give structure= to Configuration.from_dict")
        return self.sublattice.atoms

    @property
    def n_sites(self) -> int:
        if self.sublattice is None:
            return self._stored["n_sites"] if self._stored is not None else len(self.pattern)
        return self.sublattice.n_sites

    @property
    def magnetisation(self) -> float:
        """Net moment per magnetic site in units of S (1 for FM, 0 for compensated AF orders)."""
        return float(np.mean(self.pattern))

    def as_dict(self) -> dict:
        formula = self._stored["formula"] if self.sublattice is None and self._stored is not None else \
            self.atoms.get_chemical_formula()
        return {"name": self.name, "supercell": self.supercell.tolist(), "n_sites": self.n_sites,
                "pattern": [int(s) for s in self.pattern], "vacancies": list(self.vacancies),
                "formula": formula}

    @classmethod
    def from_dict(cls, d: dict, structure=None, **site_kw) -> "Configuration":
        """Inverse of :meth:`as_dict`.  The dict holds the name, supercell matrix, pattern and removed sites, not
        the atoms: give the primitive ``structure`` (file, Atoms or MagneticSublattice; ``site_kw`` go to
        :func:`find_magnetic_sites`) to have the supercell's sublattice back — built as the configurations are (the
        supercell P of it, the ``vacancies`` removed, initial moments σ·2S μ_B) and checked against the stored site
        count and formula (:class:`ConfigurationError` if they differ) — or leave it None: ``sublattice`` is None,
        ``n_sites`` and the formula are the stored ones, and :attr:`atoms` raises.  Not stored, so not rebuilt:
        per-site spins set after construction (e.g. the S = 1 hole sites of a vacancy configuration: the rebuilt
        sublattice has the structure's spins) and moments that are not σ·2S μ_B."""
        try:
            name, P = str(d["name"]), np.asarray(d["supercell"], dtype=int)
            pattern = np.asarray(d["pattern"], dtype=int)
            vacancies = [int(v) for v in d.get("vacancies") or []]
            n_sites, formula = int(d["n_sites"]), str(d["formula"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigurationError(f"not a stored configuration ({type(exc).__name__}: {exc})") from None
        if P.shape != (3, 3) or pattern.shape != (n_sites,) or not np.all(np.abs(pattern) == 1):
            raise ConfigurationError(f"stored configuration {name}: needs a 3×3 supercell and {n_sites} values ±1, got "
                                     f"{P.tolist()} and {pattern.tolist()}")
        if structure is None:
            conf = cls(name=name, sublattice=None, pattern=pattern, supercell=P, vacancies=vacancies)
            conf._stored = {"n_sites": n_sites, "formula": formula}
            return conf
        sub0 = structure if isinstance(structure, MagneticSublattice) else find_magnetic_sites(structure, **site_kw)
        sub = _build_supercell(sub0, _as_matrix(P))
        if vacancies:
            if min(vacancies) < 0 or max(vacancies) >= sub.n_sites or len(set(vacancies)) != len(vacancies):
                raise ConfigurationError(f"stored configuration {name}: vacancy sites {vacancies} are not distinct "
                                         f"sites of the {sub.n_sites}-site supercell of {source_name(sub0.atoms)}")
            sub = _remove_sites(sub, vacancies)
        if (sub.n_sites, sub.atoms.get_chemical_formula()) != (n_sites, formula):
            raise ConfigurationError(f"stored configuration {name} ({n_sites} sites, {formula}) is not one of "
                                     f"{source_name(sub0.atoms)} ({sub.n_sites} sites, "
                                     f"{sub.atoms.get_chemical_formula()} in supercell {P.tolist()})")
        _set_moments(sub, pattern)
        return cls(name=name, sublattice=sub, pattern=pattern, supercell=P, vacancies=vacancies)


def rectangular_supercell(atoms: Atoms, max_index: int = 4) -> np.ndarray:
    """Smallest supercell matrix whose second vector is perpendicular to a1 (a1, m a1 + n a2, a3)."""
    cell = atoms.cell.array
    best = None
    for n in range(1, max_index + 1):
        for m in range(-max_index, max_index + 1):
            b = m * cell[0] + n * cell[1]
            if abs(np.dot(b, cell[0])) < 1e-3 * np.linalg.norm(b) * np.linalg.norm(cell[0]):
                if best is None or np.linalg.norm(b) < best[0] - 1e-9:
                    best = (np.linalg.norm(b), m, n)
    if best is None:
        raise ConfigurationError(f"{source_name(atoms)}: no rectangular supercell with indices up to {max_index}")
    return np.array([[1, 0, 0], [best[1], best[2], 0], [0, 0, 1]])


def _as_matrix(supercell) -> np.ndarray:
    P = np.asarray(supercell, dtype=int)
    if P.shape == (3,):
        P = np.diag(P)
    if P.shape == (2,):
        P = np.diag([P[0], P[1], 1])
    if P.shape != (3, 3) or round(abs(np.linalg.det(P))) < 1:
        raise ConfigurationError(f"supercell must be 3 integers or a non-singular 3×3 integer matrix, got {supercell!r}")
    return P


def _build_supercell(sub: MagneticSublattice, P: np.ndarray) -> MagneticSublattice:
    atoms = sub.atoms.copy()
    mag = np.zeros(len(atoms), bool)
    mag[sub.indices] = True
    atoms.set_array("wm_magnetic", mag.astype(int))
    spin_full = np.zeros(len(atoms))
    spin_full[sub.indices] = sub.spins
    atoms.set_array("wm_spin", spin_full)
    big = make_supercell(atoms, P, wrap=True)
    big.info = dict(sub.atoms.info)
    idx = np.nonzero(big.get_array("wm_magnetic"))[0]
    spins = big.get_array("wm_spin")[idx]
    big.set_array("wm_magnetic", None)
    big.set_array("wm_spin", None)
    return MagneticSublattice(atoms=big, indices=idx, spins=spins, oxidation_states=dict(sub.oxidation_states),
                              two_dimensional=sub.two_dimensional)


def _remove_sites(sub: MagneticSublattice, sites) -> MagneticSublattice:
    """The sublattice without its magnetic sites ``sites`` (indices of magnetic sites; their atoms are removed)."""
    removed_atoms = set(int(sub.indices[s]) for s in sites)
    keep = [a for a in range(len(sub.atoms)) if a not in removed_atoms]
    keep_sites = [s for s in range(sub.n_sites) if s not in set(sites)]
    old_to_new = {old: new for new, old in enumerate(keep)}
    return MagneticSublattice(atoms=sub.atoms[keep],
                              indices=np.array([old_to_new[int(sub.indices[s])] for s in keep_sites]),
                              spins=sub.spins[keep_sites], oxidation_states=dict(sub.oxidation_states),
                              two_dimensional=sub.two_dimensional)


def _set_moments(sub: MagneticSublattice, pattern: np.ndarray) -> None:
    m = np.zeros(len(sub.atoms))
    m[sub.indices] = pattern * 2.0 * sub.spins  # spin-only moment g S μ_B with g = 2
    sub.atoms.set_initial_magnetic_moments(m)


def _solve_signs(sub: MagneticSublattice, parallel, name: str) -> np.ndarray:
    """σ on every site such that each nearest-neighbour bond b has σ_i σ_j = +1 if parallel(b) else −1."""
    shell1 = neighbour_shells(sub, n_shells=1)[0]
    adj: dict[int, list[tuple[int, int]]] = {s: [] for s in range(sub.n_sites)}
    for b in shell1.bonds:
        sign = 1 if parallel(np.array(b.vector)) else -1
        if b.i == b.j:
            if sign < 0:
                raise ConfigurationError(f"{source_name(sub.atoms)}: {name} order is incompatible with this supercell "
                                         f"(a site's own periodic image is a nearest neighbour that must be antiparallel)")
            continue
        adj[b.i].append((b.j, sign))
        adj[b.j].append((b.i, sign))
    sigma = np.zeros(sub.n_sites, dtype=int)
    for start in range(sub.n_sites):
        if sigma[start]:
            continue
        sigma[start] = 1
        queue = deque([start])
        while queue:
            a = queue.popleft()
            for b, sign in adj[a]:
                want = sigma[a] * sign
                if sigma[b] == 0:
                    sigma[b] = want
                    queue.append(b)
                elif sigma[b] != want:
                    raise ConfigurationError(f"{source_name(sub.atoms)}: {name} order is incompatible with this "
                                             f"supercell (frustrated sign constraints)")
    return sigma


def honeycomb_configuration(structure, name: str, supercell=None, **site_kw) -> Configuration:
    """One of the standard collinear orders FM, Néel, zigzag, stripy (module docstring) on ``structure``.

    ``supercell`` defaults to the smallest commensurate cell: the primitive cell for FM/Néel, the rectangular
    (a1, a1 + 2a2) cell for zigzag/stripy.  Any commensurate supercell may be given (3 integers or a 3×3 matrix);
    an incommensurate one raises :class:`ConfigurationError`.  ``site_kw`` go to :func:`find_magnetic_sites`.
    """
    key = _ALIASES.get(str(name).lower())
    if key is None:
        raise ConfigurationError(f"unknown configuration {name!r}; choose one of {', '.join(CONFIG_NAMES)} "
                                 "or give an explicit pattern")
    sub0 = structure if isinstance(structure, MagneticSublattice) else find_magnetic_sites(structure, **site_kw)
    if supercell is None:
        P = np.eye(3, dtype=int) if key in ("FM", "Neel") else rectangular_supercell(sub0.atoms)
    else:
        P = _as_matrix(supercell)
    sub = _build_supercell(sub0, P)
    a1 = sub0.atoms.cell.array[0] / np.linalg.norm(sub0.atoms.cell.array[0])

    def is_rung(v):
        return abs(np.dot(v, a1)) < 0.2 * np.linalg.norm(v)

    rules = {"FM": lambda v: True, "Neel": lambda v: False,
             "zigzag": lambda v: not is_rung(v), "stripy": is_rung}
    pattern = _solve_signs(sub, rules[key], key)
    if key != "FM" and abs(pattern.sum()) == len(pattern):
        raise ConfigurationError(f"{source_name(sub0.atoms)}: {key} order is incompatible with this supercell")
    _set_moments(sub, pattern)
    return Configuration(name=key, sublattice=sub, pattern=pattern, supercell=P)


def standard_configurations(structure, names=CONFIG_NAMES, **site_kw) -> list[Configuration]:
    """FM, Néel, zigzag and stripy of ``structure`` in their smallest commensurate cells."""
    sub0 = structure if isinstance(structure, MagneticSublattice) else find_magnetic_sites(structure, **site_kw)
    return [honeycomb_configuration(sub0, n) for n in names]


def configuration_from_pattern(structure, supercell, pattern, name: str = "custom", **site_kw) -> Configuration:
    """Any up/down pattern (±1 per magnetic site, in supercell order) on any supercell."""
    sub0 = structure if isinstance(structure, MagneticSublattice) else find_magnetic_sites(structure, **site_kw)
    P = _as_matrix(supercell)
    sub = _build_supercell(sub0, P)
    pattern = np.asarray(pattern, dtype=int)
    if pattern.shape != (sub.n_sites,) or not np.all(np.abs(pattern) == 1):
        raise ConfigurationError(f"pattern must hold {sub.n_sites} values ±1 (one per magnetic site of the supercell), "
                                 f"got {pattern.tolist()}")
    _set_moments(sub, pattern)
    return Configuration(name=name, sublattice=sub, pattern=pattern, supercell=P)


def bond_counts(config: Configuration, reference, n_shells: int = 3, tol: float = 0.05) -> dict:
    """Bond counts c_n = Σ_{bonds of shell n} σ_i σ_j of a configuration (module docstring).

    ``reference``: the primitive structure (or its MagneticSublattice, or a list of shell distances in Å) that
    defines the shells, so that a supercell, a vacancy supercell and the primitive cell share one shell list.
    Returns ``{"distances", "per_cell", "per_site", "n_sites"}``; ``per_cell`` is the design-matrix row of the
    energy per supercell: E = E_0 N_sites + S² Σ_n J_n c_n.
    """
    if isinstance(reference, (list, tuple, np.ndarray)) and np.ndim(reference) == 1 and len(reference) and \
            all(isinstance(x, (int, float, np.floating)) for x in reference):
        distances = [float(x) for x in reference]
    else:
        ref = reference if isinstance(reference, MagneticSublattice) else find_magnetic_sites(reference)
        distances = [s.distance for s in neighbour_shells(ref, n_shells=n_shells, tol=tol)]
    distances = distances[:n_shells]
    shells = neighbour_shells(config.sublattice, cutoff=max(distances) + tol, tol=tol)
    counts = np.zeros(len(distances))
    for sh in shells:
        match = [k for k, d in enumerate(distances) if abs(sh.distance - d) <= tol]
        if not match:
            continue
        k = match[0]
        for b in sh.bonds:
            counts[k] += config.pattern[b.i] * config.pattern[b.j]
    return {"distances": distances, "per_cell": counts, "per_site": counts / config.n_sites, "n_sites": config.n_sites}


def vacancy_supercell(structure, supercell=(2, 2, 1), fraction: float | None = None, sites=None,
                      order: str = "Neel", seed: int = 0, **site_kw) -> Configuration:
    """A supercell with magnetic vacancies (e.g. V_{1−x}PS3): remove ``sites`` (indices of magnetic sites of the
    supercell) or a random ``fraction`` x of them (rounded to the nearest integer, reproducible with ``seed``), and
    keep ``order`` (FM, Néel, ...) on the remaining sites.
    """
    if (fraction is None) == (sites is None):
        raise ConfigurationError("give exactly one of fraction= or sites= for a vacancy supercell")
    base = honeycomb_configuration(structure, order, supercell=supercell, **site_kw)
    n = base.n_sites
    if sites is None:
        if not 0.0 < fraction < 1.0:
            raise ConfigurationError(f"vacancy fraction must be in (0, 1), got {fraction}")
        k = int(round(fraction * n))
        if k == 0:
            raise ConfigurationError(f"vacancy fraction {fraction} removes no site of a {n}-site supercell; "
                                     "use a larger supercell")
        rng = np.random.default_rng(seed)
        sites = sorted(rng.choice(n, size=k, replace=False).tolist())
    sites = sorted(int(s) for s in sites)
    if not sites or min(sites) < 0 or max(sites) >= n or len(set(sites)) != len(sites):
        raise ConfigurationError(f"vacancy sites must be distinct indices in 0..{n - 1}, got {sites}")
    if len(sites) == n:
        raise ConfigurationError("cannot remove every magnetic site")
    new_sub = _remove_sites(base.sublattice, sites)
    pattern = base.pattern[[s for s in range(n) if s not in set(sites)]]
    _set_moments(new_sub, pattern)
    return Configuration(name=f"{base.name}+vac", sublattice=new_sub, pattern=pattern, supercell=base.supercell,
                         vacancies=sites)

