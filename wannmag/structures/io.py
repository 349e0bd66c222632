"""Reading structures: any file ASE or pymatgen reads, an ``ase.Atoms`` or a pymatgen ``Structure``."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from ase import Atoms

from ..errors import StructureError

__all__ = ["read_structure", "to_pymatgen", "source_name"]


def source_name(atoms: Atoms) -> str:
    """The name of the file (or object) a structure came from, for error messages."""
    return str(atoms.info.get("source", atoms.get_chemical_formula() or "structure"))


def _from_pymatgen(obj: Any) -> Atoms:
    from pymatgen.io.ase import AseAtomsAdaptor

    atoms = AseAtomsAdaptor.get_atoms(obj)
    # pymatgen stores site properties as arrays; keep only what ASE understands
    return Atoms(atoms.get_chemical_symbols(), positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)


def read_structure(source: Any, format: str | None = None) -> Atoms:
    """Return an ``ase.Atoms`` from a path (CIF, POSCAR/CONTCAR, xyz/extxyz, QE input, ... — anything ASE or
    pymatgen reads), an ``ase.Atoms`` (copied) or a pymatgen ``Structure``.

    Raises :class:`StructureError` with a one-line message naming the file when it does not exist, is empty,
    cannot be parsed or contains no atoms.  The source is recorded in ``atoms.info['source']``.
    """
    if isinstance(source, Atoms):
        atoms = source.copy()
        atoms.info.setdefault("source", atoms.info.get("name", atoms.get_chemical_formula()))
        return _check_nonempty(atoms)
    if type(source).__name__ in ("Structure", "IStructure") and hasattr(source, "lattice"):
        atoms = _from_pymatgen(source)
        atoms.info["source"] = f"pymatgen Structure {source.composition.reduced_formula}"
        return _check_nonempty(atoms)
    if not isinstance(source, (str, os.PathLike)):
        raise StructureError(f"cannot read a structure from an object of type {type(source).__name__}")

    path = Path(source)
    if not path.exists():
        raise StructureError(f"{path}: no such file")
    if path.is_dir():
        raise StructureError(f"{path}: is a directory, not a structure file")
    if path.stat().st_size == 0 or not path.read_bytes().strip():
        raise StructureError(f"{path}: file is empty")

    errors = []
    atoms = None
    try:
        import ase.io

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            atoms = ase.io.read(path, format=format)
        if isinstance(atoms, list):  # some readers return a list of images
            atoms = atoms[-1] if atoms else None
    except Exception as exc:  # noqa: BLE001 - every parser failure becomes one clear line below
        errors.append(f"ase: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        atoms = None
    if atoms is None or len(atoms) == 0:
        try:
            from pymatgen.core import Structure

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                atoms = _from_pymatgen(Structure.from_file(str(path)))
        except Exception as exc:  # noqa: BLE001
            errors.append(f"pymatgen: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            atoms = None
    if atoms is None:
        detail = "; ".join(e.strip() for e in errors)[:300]
        raise StructureError(f"{path}: not a readable structure file ({detail})")
    atoms.info["source"] = str(path)
    return _check_nonempty(atoms)


def _check_nonempty(atoms: Atoms) -> Atoms:
    if len(atoms) == 0:
        raise StructureError(f"{source_name(atoms)}: structure contains no atoms")
    if atoms.cell.rank < 3 or abs(atoms.cell.volume) < 1e-6:
        raise StructureError(f"{source_name(atoms)}: structure has no 3D periodic cell (needed for lattice sums; "
                             "add vacuum along the non-periodic direction)")
    return atoms


def to_pymatgen(atoms: Atoms):
    """pymatgen ``Structure`` of an ``ase.Atoms`` (lattice and species only)."""
    from pymatgen.io.ase import AseAtomsAdaptor

    return AseAtomsAdaptor.get_structure(Atoms(atoms.get_chemical_symbols(), positions=atoms.positions,
                                               cell=atoms.cell, pbc=True))
