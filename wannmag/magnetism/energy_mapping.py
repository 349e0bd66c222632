"""Exchange constants from total energies of collinear magnetic configurations (energy mapping).

Model (internal convention, each bond once, spins of length S, J > 0 antiferromagnetic, J in meV)::

    E_cell / N_sites = E_0 + S² Σ_n J_n c_n / N_sites

where c_n = Σ_{bonds of shell n in the cell} σ_i σ_j are the bond counts of the structures layer
(:func:`wannmag.structures.bond_counts`) and E_0 is the non-magnetic reference energy per magnetic ion.  Energies are
always divided by the number of magnetic sites of *their own* cell, so configurations on supercells of different sizes
mix correctly; a record without its site count is refused.  E_0 is common to all configurations only if they have the
same composition per magnetic site: mixing, say, a vacancy supercell with perfect cells is refused (fit vacancies with
their own E_0 and bond-specific J instead).

The least-squares fit reports residuals and the condition number of the (column-scaled) design matrix, and refuses
underdetermined (fewer independent configurations than unknowns) or ill-conditioned fits with a one-line message.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms

from .. import structures
from .._atomic import read_json
from ..errors import WannmagError
from ..structures import Configuration, bond_counts, configuration_from_pattern, find_magnetic_sites, neighbour_shells
from .linfit import linear_fit
from .spinmodel import SpinModel

__all__ = ["EnergyRecord", "EnergyData", "ExchangeFit", "FitError", "fit_exchange", "records_from_configurations",
           "read_energies", "load_energy_records", "model_energies", "MAX_ENERGY_EV_PER_SITE"]

#: largest |total energy| per magnetic site accepted from a file (eV); real DFT totals are 10–10⁴ eV per site
MAX_ENERGY_EV_PER_SITE = 1.0e6


class FitError(WannmagError):
    """The energy-mapping fit cannot be done (underdetermined, ill-conditioned, inconsistent input)."""


@dataclass
class EnergyRecord:
    """Total energy of one collinear configuration.

    energy : total energy of the whole (super)cell in ``unit`` (default eV).
    n_sites : magnetic sites in that cell.
    counts : bond counts c_n per cell (shell 1, 2, ...).
    composition : formula per magnetic site (e.g. "CrI3"), to check that E_0 is shared.
    """

    name: str
    energy: float
    n_sites: int
    counts: np.ndarray
    composition: str = ""
    unit: str = "eV"
    source: str = ""

    def energy_per_site_meV(self) -> float:
        scale = {"eV": 1000.0, "meV": 1.0, "Ry": 13605.693122994, "Ha": 27211.386245988}
        if self.unit not in scale:
            raise FitError(f"{self.source or self.name}: unknown energy unit {self.unit!r} (eV, meV, Ry, Ha)")
        return self.energy * scale[self.unit] / self.n_sites


@dataclass
class ExchangeFit:
    """Result of :func:`fit_exchange`: J_n in meV (internal convention), E_0 in meV per magnetic ion.

    ``records`` are the fitted energy records (in memory only: :meth:`as_dict` keeps their names, ``configurations``,
    so a fit rebuilt by :meth:`from_dict` has ``configurations`` and no ``records``)."""

    J: np.ndarray
    E0: float
    spin: float
    distances: list[float]
    residuals: np.ndarray  # meV per magnetic ion, one per record
    condition_number: float
    stderr: np.ndarray | None
    records: list[EnergyRecord] = field(default_factory=list)
    configurations: list[str] | None = None  # names of the fitted configurations (default: those of ``records``)

    def __post_init__(self):
        if self.configurations is None:
            self.configurations = [r.name for r in self.records]

    def table(self) -> str:
        lines = [f"energy mapping: {len(self.configurations)} configurations, S = {self.spin:g}, "
                 f"condition number {self.condition_number:.3g}",
                 "  H = Σ_{i<j} J_ij S_i·S_j (each bond once, |S| = S, J > 0 AF), J in meV"]
        for n, J in enumerate(self.J, start=1):
            err = "" if self.stderr is None else f" ± {self.stderr[n - 1]:.3f}"
            dist = f" ({self.distances[n - 1]:.3f} Å)" if len(self.distances) >= n else ""
            lines.append(f"  J{n}{dist} = {J:+.3f}{err} meV  ({'AF' if J > 0 else 'FM'})")
        for name, res in zip(self.configurations, self.residuals):
            lines.append(f"  {name:>12s}: residual {res:+.3f} meV/ion")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {"convention": "H = sum_{i<j} J_ij S_i.S_j, each bond once, |S| = S, J > 0 AF, meV",
                "J_meV": self.J.tolist(), "E0_meV_per_ion": self.E0, "spin": self.spin,
                "distances": self.distances, "residuals_meV_per_ion": self.residuals.tolist(),
                "condition_number": self.condition_number,
                "stderr_meV": None if self.stderr is None else self.stderr.tolist(),
                "configurations": list(self.configurations)}

    @classmethod
    def from_dict(cls, d: dict) -> "ExchangeFit":
        """Inverse of :meth:`as_dict` (extra keys, e.g. those of the workflow's mapping step, are ignored); the fit
        has the configurations' names, not their records."""
        try:
            stderr = d["stderr_meV"]
            return cls(J=np.asarray(d["J_meV"], float), E0=d["E0_meV_per_ion"], spin=d["spin"],
                       distances=list(d["distances"]), residuals=np.asarray(d["residuals_meV_per_ion"], float),
                       condition_number=d["condition_number"],
                       stderr=None if stderr is None else np.asarray(stderr, float),
                       configurations=[str(x) for x in d["configurations"]])
        except (KeyError, TypeError, ValueError) as exc:
            raise FitError(f"not an energy-mapping fit ({type(exc).__name__}: {exc})") from None

    def to_spin_model(self, sublattice, tol: float = 0.05) -> SpinModel:
        """Isotropic SpinModel with J_n on every bond of shell n of ``sublattice`` (structures layer)."""
        model = SpinModel.from_sublattice(sublattice, meta={"method": "energy mapping", **self.as_dict()})
        shells = neighbour_shells(sublattice, n_shells=len(self.J), tol=tol)
        for n, (sh, J) in enumerate(zip(shells, self.J), start=1):
            if abs(sh.distance - self.distances[n - 1]) > tol:
                raise FitError(f"shell {n} of the structure ({sh.distance:.3f} Å) does not match the fit "
                               f"({self.distances[n - 1]:.3f} Å)")
            for b in sh.bonds:
                model.add_bond(b.i, b.j, b.R, J, shell=n)
        return model


def fit_exchange(records: list[EnergyRecord], n_shells: int | None = None, spin: float = 1.5,
                 distances: list[float] | None = None, max_condition: float = 1e4) -> ExchangeFit:
    """Least-squares fit of E_0, J_1..J_n (module docstring) to ``records``.

    ``n_shells`` defaults to the number of shells in the records' counts.  Refuses (``FitError``): fewer
    linearly independent configurations than unknowns; a condition number above ``max_condition``; records
    without site counts; mixed compositions.
    """
    if not records:
        raise FitError("no configurations to fit")
    n_avail = min(len(np.atleast_1d(r.counts)) for r in records)
    n = n_avail if n_shells is None else n_shells
    if n < 1:
        raise FitError("need at least one exchange constant to fit")
    if n > n_avail:
        raise FitError(f"asked for J1..J{n} but the configurations carry bond counts for {n_avail} shell(s) only")
    for r in records:
        if not r.n_sites or r.n_sites < 1:
            raise FitError(f"configuration {r.name}: number of magnetic sites missing; energies of cells of "
                           "different sizes cannot be compared without it")
    comps = {r.composition for r in records if r.composition}
    if len(comps) > 1:
        raise FitError(f"configurations have different compositions per magnetic ion ({', '.join(sorted(comps))}): "
                       "they do not share E_0; fit them separately")
    lengths = {len(np.atleast_1d(r.counts)) for r in records}
    if n_shells is None and len(lengths) > 1:
        short = [f"{r.name} ({len(np.atleast_1d(r.counts))})" for r in records
                 if len(np.atleast_1d(r.counts)) == n_avail]
        raise FitError(f"the configurations carry bond counts for different numbers of shells ({sorted(lengths)}); "
                       f"{', '.join(short)} would reduce the fit to J1..J{n_avail}: give the same shells everywhere, "
                       "or --shells explicitly")
    if not (np.isfinite(spin) and spin > 0):
        raise FitError(f"spin length S must be a positive number, got {spin}")
    A = np.ones((len(records), n + 1))
    y = np.empty(len(records))
    for k, r in enumerate(records):
        A[k, 1:] = spin**2 * np.asarray(r.counts[:n], float) / r.n_sites
        y[k] = r.energy_per_site_meV()
    if not (np.all(np.isfinite(A)) and np.all(np.isfinite(y))):
        raise FitError(f"configurations ({', '.join(r.name for r in records)}): non-finite energies or bond counts")
    lf = linear_fit(A, y, ["E0"] + [f"J{k}" for k in range(1, n + 1)])
    names = ", ".join(r.name for r in records)
    if len(records) < n + 1 or not lf.full_rank:
        raise FitError(f"underdetermined: {lf.rank} independent configuration(s) ({names}) for {n + 1} unknowns "
                       f"(E0, J1..J{n}); not determined: {', '.join(lf.undetermined)}; add configurations or fit "
                       "fewer shells")
    if lf.condition_number > max_condition:
        raise FitError(f"ill-conditioned fit: condition number {lf.condition_number:.3g} > {max_condition:g} for "
                       f"configurations ({names}); they barely distinguish the J's")
    x, res, cond = lf.x, lf.residuals, lf.condition_number
    if not np.all(np.isfinite(x)):
        raise FitError(f"the fit of ({names}) gave non-finite exchange constants")
    stderr = None if lf.stderr is None else lf.stderr[1:]
    return ExchangeFit(J=x[1:], E0=float(x[0]), spin=spin, distances=list(distances or [])[:n] or [],
                       residuals=res, condition_number=cond, stderr=stderr, records=list(records))


def records_from_configurations(reference, configurations, energies, unit: str = "eV", n_shells: int = 3,
                                tol: float = 0.05) -> tuple[list[EnergyRecord], list[float]]:
    """Energy records of (structures-layer) ``configurations`` with total ``energies`` per (super)cell.

    ``reference``: the primitive structure or its MagneticSublattice, defining the shells.  Returns the records
    and the shell distances (Å).
    """
    ref = reference if hasattr(reference, "indices") else find_magnetic_sites(reference)
    if len(configurations) != len(energies):
        raise FitError(f"{len(configurations)} configurations but {len(energies)} energies")
    records, distances = [], None
    for c, e in zip(configurations, energies):
        bc = bond_counts(c, ref, n_shells=n_shells, tol=tol)
        distances = bc["distances"]
        comp = _composition_per_site(c)
        records.append(EnergyRecord(c.name, float(e), c.n_sites, np.asarray(bc["per_cell"]), comp, unit))
    return records, distances


def _composition_per_site(config) -> str:
    counts = Counter(config.atoms.get_chemical_symbols())
    n = config.n_sites
    return " ".join(f"{el}{counts[el] / n:.4g}" for el in sorted(counts))


@dataclass
class EnergyData:
    """Energies read by :func:`read_energies`: records, shell distances (Å), spin length S (None: not given),
    the format recognised and notes (where the structure came from, what was skipped)."""

    records: list[EnergyRecord]
    distances: list[float]
    spin: float | None
    format: str
    notes: list[str] = field(default_factory=list)


def _is_number(x) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, (bool, np.bool_))


def _short(x, n: int = 40) -> str:
    r = repr(x).replace("\n", " ")
    return r if len(r) <= n else r[: n - 1] + "…"


def _number(x, path, what: str, positive: bool = False, bound: float | None = None) -> float:
    if not _is_number(x):
        raise FitError(f"{path}: {what} must be a number, got {_short(x)}")
    try:
        v = float(x)
    except OverflowError:
        raise FitError(f"{path}: {what} is too large, got {_short(x)}") from None
    if not np.isfinite(v):
        raise FitError(f"{path}: {what} is not finite, got {_short(x)}")
    if positive and v <= 0:
        raise FitError(f"{path}: {what} must be positive, got {_short(x)}")
    if bound is not None and abs(v) > bound:
        raise FitError(f"{path}: {what} = {v:.3g} is more than {MAX_ENERGY_EV_PER_SITE:g} eV per magnetic site in "
                       "magnitude: not a total energy" if "energy" in what else
                       f"{path}: {what} = {v:.3g} is beyond {bound:g}, not a physical value")
    return v


def _count(x, path, what: str) -> int:
    if not _is_number(x) or not float(x).is_integer() or float(x) < 1:
        raise FitError(f"{path}: {what} must be a positive integer, got {_short(x)}")
    return int(x)


def _numbers(x, path, what: str) -> np.ndarray:
    if not isinstance(x, list) or not x or not all(_is_number(v) for v in x):
        raise FitError(f"{path}: {what} must be a non-empty list of numbers, got {_short(x)}")
    return np.array([_number(v, path, what) for v in x])


def _pattern(x, path, what: str) -> np.ndarray:
    if not isinstance(x, list) or not x or not all(_is_number(v) and v in (-1, 1) for v in x):
        raise FitError(f"{path}: {what} must be a list of ±1, got {_short(x)}")
    return np.array(x, int)


def _supercell(x, path, what: str) -> np.ndarray:
    ok = isinstance(x, list) and len(x) == 3 and all(isinstance(r, list) and len(r) == 3 and
                                                     all(_is_number(v) and abs(float(v)) <= 1000 and
                                                         float(v).is_integer() for v in r)
                                                     for r in x)
    if not ok:
        raise FitError(f"{path}: {what} must be a 3×3 matrix of integers (|n| ≤ 1000), got {_short(x)}")
    P = np.array(x, int)
    n = abs(round(np.linalg.det(P)))
    if n < 1 or n > 10000:
        raise FitError(f"{path}: {what} {'is singular' if n < 1 else f'has {n} cells (at most 10000)'}")
    return P


_UNITS = ("eV", "meV", "Ry", "Ha")


def _label(structure) -> str:
    if isinstance(structure, (str, Path)):
        return str(structure)
    info = getattr(structure, "info", {}) or {}
    return str(info.get("name") or info.get("source") or "given")
_PROTOTYPES = ("cri3_monolayer", "vps3_monolayer")  # structures a reference file may name (nothing else is called)


def _structure_for(path: Path, data: dict, structure):
    """The structure of a reference energies file: ``structure`` if given, else a structure file the file names
    (keys ``structure`` or ``material``; looked for next to the file, in its parent folders and in the working
    folder), else a wannmag prototype it names (``wannmag.structures.cri3_monolayer()``, ...)."""
    if structure is not None:
        return structure, f"structure: {_label(structure)}"
    text = " ".join(str(data.get(k, "")) for k in ("structure", "material"))
    for name in re.findall(r"[\w./-]+\.(?:cif|vasp|xyz|extxyz|json)\b|[\w./-]*POSCAR[\w.-]*", text):
        for base in [path.parent, *path.parent.parents, Path.cwd()]:
            cand = base / name
            if cand.is_file() and cand.resolve() != path.resolve():
                return str(cand), f"structure: {cand} (named in {path.name})"
    for name in re.findall(r"wannmag\.structures\.(\w+)\(\)", text):
        if name in _PROTOTYPES:
            return getattr(structures, name)(), f"structure: wannmag.structures.{name}() (named in {path.name})"
    raise FitError(f"{path}: configurations given by pattern and supercell need the structure; give --structure "
                   "FILE (the file names none that can be found)")


def _from_documented(path: Path, data: dict) -> EnergyData:
    confs = data["configurations"]
    if not confs:
        raise FitError(f"{path}: 'configurations' is empty")
    default_unit = data.get("unit", "eV")
    records = []
    for k, c in enumerate(confs):
        if not isinstance(c, dict):
            raise FitError(f"{path}: configuration {k} must be an object with energy, n_sites, counts")
        name = c.get("name", k)
        label = f"configuration {_short(name)}"
        for key in ("energy", "n_sites", "counts"):
            if key not in c:
                raise FitError(f"{path}: {label} lacks '{key}'")
        n_sites = _count(c["n_sites"], path, f"{label}: n_sites")
        unit = c.get("unit", default_unit)
        if unit not in _UNITS:
            raise FitError(f"{path}: {label}: unknown energy unit {_short(unit)} ({', '.join(_UNITS)})")
        scale = {"eV": 1.0, "meV": 1e-3, "Ry": 13.605693122994, "Ha": 27.211386245988}[unit]
        energy = _number(c["energy"], path, f"{label}: energy", bound=MAX_ENERGY_EV_PER_SITE * n_sites / scale)
        counts = _numbers(c["counts"], path, f"{label}: counts")
        comp = c.get("composition", "")
        if not isinstance(comp, str):
            raise FitError(f"{path}: {label}: composition must be a string, got {_short(comp)}")
        records.append(EnergyRecord(str(name), energy, n_sites, counts, comp, unit, str(path)))
    lengths = sorted({len(r.counts) for r in records})
    if len(lengths) > 1:
        short = ", ".join(f"{r.name} ({len(r.counts)})" for r in records if len(r.counts) == lengths[0])
        raise FitError(f"{path}: the configurations carry bond counts for different numbers of shells {lengths}: "
                       f"{short} would silently reduce the fit to J1..J{lengths[0]}; give every configuration the "
                       "same shells")
    return EnergyData(records, [], None, "documented (counts per configuration)")


def _from_reference(path: Path, data: dict, structure, n_shells: int) -> EnergyData:
    if not data["configurations"]:
        raise FitError(f"{path}: 'configurations' is empty")
    struct, note = _structure_for(path, data, structure)
    try:
        sub = find_magnetic_sites(struct)
    except WannmagError as exc:
        raise FitError(f"{path}: {exc}") from None
    configs, energies = [], []
    for name, c in data["configurations"].items():
        label = f"configuration {name}"
        if not isinstance(c, dict):
            raise FitError(f"{path}: {label} must be an object")
        missing = [k for k in ("energy_eV_per_cell", "pattern", "supercell") if k not in c]
        if missing:
            raise FitError(f"{path}: {label} lacks {', '.join(missing)}")
        pattern = _pattern(c["pattern"], path, f"{label}: pattern")
        P = _supercell(c["supercell"], path, f"{label}: supercell")
        energies.append(_number(c["energy_eV_per_cell"], path, f"{label}: energy_eV_per_cell",
                                bound=MAX_ENERGY_EV_PER_SITE * len(pattern)))
        try:
            conf = configuration_from_pattern(sub, P, pattern, name=str(name))
        except WannmagError as exc:
            raise FitError(f"{path}: {label} does not fit the structure ({exc})") from None
        if "n_sites" in c and c["n_sites"] != conf.n_sites:
            raise FitError(f"{path}: {label}: n_sites {_short(c['n_sites'])} but {conf.n_sites} magnetic sites in "
                           "its supercell")
        configs.append(conf)
    if not configs:
        raise FitError(f"{path}: 'configurations' is empty")
    records, distances = _records(path, sub, configs, energies, n_shells)
    return EnergyData(records, distances, float(sub.spins[0]), "wannmag reference energies (pattern + supercell)",
                      [note])


def _records(path, reference, configs, energies, n_shells):
    try:
        records, distances = records_from_configurations(reference, configs, energies, n_shells=n_shells)
    except FitError:
        raise
    except WannmagError as exc:
        raise FitError(f"{path}: {exc}") from None
    for r in records:
        r.source = str(path)
    return records, distances


def _record_configuration(path, k, r, structure_sub):
    """(Configuration, energy eV, spin) of one DFTRecord dict (the ``dft`` step, ``wannmag dft --json``,
    ``summary.json``): on ``structure_sub`` if given, else on the record's own cell (``parameters``)."""
    if not isinstance(r, dict):
        raise FitError(f"{path}: record {k} must be an object")
    name = str(r.get("config", k))
    label = f"record {name}"
    for key in ("energy", "pattern"):
        if key not in r:
            raise FitError(f"{path}: {label} lacks '{key}'")
    if isinstance(r["pattern"], list) and r["pattern"] and all(v == 0 for v in r["pattern"]):
        return None  # a non-magnetic run: not a Heisenberg configuration
    pattern = _pattern(r["pattern"], path, f"{label}: pattern")
    energy = _number(r["energy"], path, f"{label}: energy", bound=MAX_ENERGY_EV_PER_SITE * len(pattern))
    params = r.get("parameters") or {}
    spins = (r.get("extra") or {}).get("spins") or []
    spin = spins[0] if spins and _is_number(spins[0]) else None
    try:
        if structure_sub is not None:
            P = _supercell(r.get("supercell", np.eye(3, dtype=int).tolist()), path, f"{label}: supercell")
            return configuration_from_pattern(structure_sub, P, pattern, name=name), energy, spin
        if not all(key in params for key in ("symbols", "positions", "cell")):
            raise FitError(f"{path}: {label} carries no cell (parameters.symbols/positions/cell); give --structure")
        symbols, pos, cell = params["symbols"], params["positions"], params["cell"]
        if not (isinstance(symbols, list) and all(isinstance(x, str) for x in symbols)):
            raise FitError(f"{path}: {label}: parameters.symbols must be element names")
        pos = np.array([_numbers(p, path, f"{label}: position") for p in pos]) if isinstance(pos, list) else None
        cell = np.array([_numbers(c, path, f"{label}: cell") for c in cell]) if isinstance(cell, list) else None
        if pos is None or pos.shape != (len(symbols), 3) or cell is None or cell.shape != (3, 3):
            raise FitError(f"{path}: {label}: parameters.positions/cell have the wrong shape")
        sub = find_magnetic_sites(Atoms(symbols, positions=pos, cell=cell, pbc=True))
        order = (r.get("extra") or {}).get("site_indices")
        if isinstance(order, list) and sorted(order) == sorted(int(i) for i in sub.indices) and \
                len(order) == len(pattern):
            by_atom = dict(zip(order, pattern))
            pattern = np.array([by_atom[int(i)] for i in sub.indices])
        if len(pattern) != sub.n_sites:
            raise FitError(f"{path}: {label}: {len(pattern)} pattern values for {sub.n_sites} magnetic sites")
        return Configuration(name=name, sublattice=sub, pattern=pattern, supercell=np.eye(3, dtype=int)), energy, spin
    except FitError:
        raise
    except WannmagError as exc:
        raise FitError(f"{path}: {label}: {exc}") from None


def _from_dft_records(path: Path, recs, structure, n_shells: int) -> EnergyData:
    if not isinstance(recs, list) or not recs:
        raise FitError(f"{path}: 'records' must be a non-empty list of DFT records")
    notes = []
    structure_sub = None
    if structure is not None:
        try:
            structure_sub = find_magnetic_sites(structure)
        except WannmagError as exc:
            raise FitError(f"{path}: {exc}") from None
        notes.append(f"structure: {_label(structure)}")
    else:
        notes.append("structure: the cells stored in the records")
    configs, energies, spins = [], [], []
    for k, r in enumerate(recs):
        got = _record_configuration(path, k, r, structure_sub)
        if got is None:
            notes.append(f"skipped {r.get('config', k)}: not spin-polarised")
            continue
        configs.append(got[0])
        energies.append(got[1])
        spins.append(got[2])
    if not configs:
        raise FitError(f"{path}: no magnetic configuration among the records")
    reference = structure_sub if structure_sub is not None else configs[0].sublattice
    records, distances = _records(path, reference, configs, energies, n_shells)
    spin = spins[0] if spins[0] is not None else float(reference.spins[0])
    return EnergyData(records, distances, spin, "DFT records (wannmag dft / run)", notes)


def read_energies(path, structure=None, n_shells: int | None = None) -> EnergyData:
    """Energies of collinear configurations from a JSON file in any of wannmag's formats:

    * documented: ``{"spin": S?, "distances": [...]?, "unit": "eV"?, "configurations": [{"name", "energy",
      "unit"?, "n_sites", "counts": [c1, c2, ...], "composition"?}, ...]}`` (energy per cell, counts per cell);
    * reference (``data/dft/<material>_energies.json``): ``{"configurations": {name: {"energy_eV_per_cell",
      "pattern", "supercell", ...}}}`` — the bond counts are computed from the structure (``structure``, else the
      file or prototype the file names);
    * DFT records (``wannmag run``'s ``steps/dft.json``, ``wannmag dft --json``, a run's ``summary.json`` or a list
      of them): energy, pattern, supercell and the cell of each calculation.

    Every value is checked (types, finite numbers, |E| ≤ MAX_ENERGY_EV_PER_SITE per site, positive integer site
    counts, ±1 patterns); a problem is one :class:`FitError` line naming the file.  ``n_shells``: shells for the
    computed bond counts (default 3)."""
    path = Path(path)
    data = read_json(path, FitError)
    n = 3 if n_shells is None else int(n_shells)
    if isinstance(data, list):
        return _from_dft_records(path, data, structure, n)
    if not isinstance(data, dict):
        raise FitError(f"{path}: not an energies file (a JSON object with 'configurations' or 'records')")
    if "records" in data:
        return _from_dft_records(path, data["records"], structure, n)
    if "energy" in data and "pattern" in data:
        return _from_dft_records(path, [data], structure, n)
    confs = data.get("configurations")
    if isinstance(confs, dict):
        out = _from_reference(path, data, structure, n)
    elif isinstance(confs, list):
        out = _from_documented(path, data)
    else:
        raise FitError(f"{path}: no 'configurations' list (documented format) or object (reference format), and "
                       "no 'records' (DFT records)")
    if "spin" in data:
        out.spin = _number(data["spin"], path, "spin", positive=True, bound=50.0)
    if "distances" in data:
        dist = data["distances"]
        out.distances = [] if dist in (None, []) else _numbers(dist, path, "distances").tolist()
        if any(d <= 0 for d in out.distances):
            raise FitError(f"{path}: distances must be positive (Å), got {_short(dist)}")
    return out


def load_energy_records(path, structure=None) -> tuple[list[EnergyRecord], list[float], float | None]:
    """(records, distances, spin) of :func:`read_energies` (kept for callers of the first version)."""
    d = read_energies(path, structure)
    return d.records, d.distances, d.spin


def model_energies(model: SpinModel, configurations) -> np.ndarray:
    """Classical energies (meV per supercell) of collinear ``configurations`` (along z) of ``model``.

    Each configuration's pattern is placed on ``model.supercell(config.supercell)``; used to round-trip the fit.
    """
    out = []
    for c in configurations:
        big, _ = model.supercell(c.supercell)
        if big.n_sites != len(c.pattern):
            raise FitError(f"configuration {c.name} has {len(c.pattern)} sites, the model supercell {big.n_sites}")
        order = _match_sites(big, c.sublattice.positions)
        spins = np.zeros((big.n_sites, 3))
        spins[order, 2] = c.pattern * big.spins[order]
        out.append(big.energy(spins))
    return np.array(out)


def _match_sites(model: SpinModel, positions: np.ndarray, tol: float = 1e-3) -> np.ndarray:
    """Index of the model site at each of ``positions`` (Cartesian, Å), modulo the model's lattice."""
    inv = np.linalg.inv(model.cell)
    fm = np.array([s.position for s in model.sites]) @ inv
    fp = np.asarray(positions) @ inv
    d = fp[:, None, :] - fm[None, :, :]
    d -= np.round(d)
    dist = np.linalg.norm(d @ model.cell, axis=2)
    order = np.argmin(dist, axis=1)
    if np.any(dist[np.arange(len(order)), order] > tol) or len(set(order.tolist())) != len(order):
        raise FitError("configuration sites do not coincide with the spin model's supercell sites")
    return order
