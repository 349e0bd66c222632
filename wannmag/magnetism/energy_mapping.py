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

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._atomic import read_json
from ..errors import WannmagError
from ..structures import bond_counts, find_magnetic_sites, neighbour_shells
from .linfit import linear_fit
from .spinmodel import SpinModel

__all__ = ["EnergyRecord", "ExchangeFit", "FitError", "fit_exchange", "records_from_configurations",
           "load_energy_records", "model_energies"]


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
    """Result of :func:`fit_exchange`: J_n in meV (internal convention), E_0 in meV per magnetic ion."""

    J: np.ndarray
    E0: float
    spin: float
    distances: list[float]
    residuals: np.ndarray  # meV per magnetic ion, one per record
    condition_number: float
    stderr: np.ndarray | None
    records: list[EnergyRecord] = field(default_factory=list)

    def table(self) -> str:
        lines = [f"energy mapping: {len(self.records)} configurations, S = {self.spin:g}, "
                 f"condition number {self.condition_number:.3g}",
                 "  H = Σ_{i<j} J_ij S_i·S_j (each bond once, |S| = S, J > 0 AF), J in meV"]
        for n, J in enumerate(self.J, start=1):
            err = "" if self.stderr is None else f" ± {self.stderr[n - 1]:.3f}"
            dist = f" ({self.distances[n - 1]:.3f} Å)" if len(self.distances) >= n else ""
            lines.append(f"  J{n}{dist} = {J:+.3f}{err} meV  ({'AF' if J > 0 else 'FM'})")
        for r, res in zip(self.records, self.residuals):
            lines.append(f"  {r.name:>12s}: residual {res:+.3f} meV/ion")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {"convention": "H = sum_{i<j} J_ij S_i.S_j, each bond once, |S| = S, J > 0 AF, meV",
                "J_meV": self.J.tolist(), "E0_meV_per_ion": self.E0, "spin": self.spin,
                "distances": self.distances, "residuals_meV_per_ion": self.residuals.tolist(),
                "condition_number": self.condition_number,
                "stderr_meV": None if self.stderr is None else self.stderr.tolist(),
                "configurations": [r.name for r in self.records]}

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
    A = np.ones((len(records), n + 1))
    y = np.empty(len(records))
    for k, r in enumerate(records):
        A[k, 1:] = spin**2 * np.asarray(r.counts[:n], float) / r.n_sites
        y[k] = r.energy_per_site_meV()
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
    from collections import Counter

    counts = Counter(config.atoms.get_chemical_symbols())
    n = config.n_sites
    return " ".join(f"{el}{counts[el] / n:.4g}" for el in sorted(counts))


def load_energy_records(path) -> tuple[list[EnergyRecord], list[float], float | None]:
    """Read energies from a JSON file: ``{"spin": S?, "distances": [...]?, "configurations": [{"name", "energy",
    "unit"?, "n_sites", "counts": [c1, c2, ...], "composition"?}, ...]}``; returns (records, distances, spin)."""
    path = Path(path)
    data = read_json(path, FitError)
    confs = data.get("configurations") if isinstance(data, dict) else None
    if not confs:
        raise FitError(f"{path}: no 'configurations' list")
    records = []
    for k, c in enumerate(confs):
        for key in ("energy", "n_sites", "counts"):
            if key not in c:
                raise FitError(f"{path}: configuration {c.get('name', k)} lacks '{key}'")
        records.append(EnergyRecord(str(c.get("name", k)), float(c["energy"]), int(c["n_sites"]),
                                    np.asarray(c["counts"], float), str(c.get("composition", "")),
                                    str(c.get("unit", data.get("unit", "eV"))), str(path)))
    return records, list(data.get("distances", [])), data.get("spin")


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
