"""Energies JSON files of wannmag's reference calculations (``data/dft/<material>_energies.json``, written by
``data/dft/make_reference.py``) → energy records, exchange fit and SpinModel.

Each configuration of the file carries its total energy per cell (eV), its supercell matrix and its ±1 pattern on
the magnetic sites of that supercell, so the bond counts are recomputed from the structure, never copied.
The fit is :func:`wannmag.magnetism.energy_mapping.fit_exchange`: H = Σ_{i<j} J_ij S_i·S_j + E_0, each bond once,
classical spins of length S, J > 0 antiferromagnetic, J in meV, E_0 in meV per magnetic ion.
"""

from __future__ import annotations

import json
from pathlib import Path

from .._atomic import read_json
from ..errors import WannmagError
from ..magnetism.energy_mapping import fit_exchange, records_from_configurations
from ..structures import configuration_from_pattern, find_magnetic_sites

__all__ = ["ReferenceError", "load_energies", "reference_exchange"]


class ReferenceError(WannmagError):
    """An energies JSON file cannot be used."""


def load_energies(path) -> dict:
    """The parsed energies JSON (``configurations`` → {energy_eV_per_cell, pattern, supercell, ...})."""
    p = Path(path)
    if not p.exists():
        raise ReferenceError(f"{p}: no such file")
    try:
        d = read_json(p)
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as exc:
        raise ReferenceError(f"{p}: not a valid JSON file ({exc})") from None
    confs = d.get("configurations") if isinstance(d, dict) else None
    if not confs:
        raise ReferenceError(f"{p}: no 'configurations' in this file")
    for name, c in confs.items():
        missing = [k for k in ("energy_eV_per_cell", "pattern", "supercell") if k not in c]
        if missing:
            raise ReferenceError(f"{p}: configuration {name} lacks {', '.join(missing)}")
    return d


def reference_exchange(path, structure, configurations=None, n_shells: int = 3, spin: float | None = None):
    """(ExchangeFit, SpinModel) from an energies JSON and the structure it was computed for.

    ``configurations``: names to use (default: all in the file).  ``spin`` defaults to the structure's nominal
    spin (S = 3/2 for Cr3+, V2+).  J in meV, internal convention (module docstring)."""
    d = load_energies(path)
    sub = find_magnetic_sites(structure)
    names = list(configurations or d["configurations"])
    unknown = [n for n in names if n not in d["configurations"]]
    if unknown:
        raise ReferenceError(f"{path}: no configuration(s) {', '.join(unknown)}")
    configs, energies = [], []
    for n in names:
        c = d["configurations"][n]
        try:
            configs.append(configuration_from_pattern(sub, c["supercell"], c["pattern"], name=n))
        except WannmagError as exc:
            raise ReferenceError(f"{path}: configuration {n} does not fit the structure ({exc})") from None
        energies.append(float(c["energy_eV_per_cell"]))
    records, distances = records_from_configurations(sub, configs, energies, n_shells=n_shells)
    S = float(spin if spin is not None else sub.spins[0])
    fit = fit_exchange(records, n_shells=n_shells, spin=S, distances=distances)
    return fit, fit.to_spin_model(sub)
