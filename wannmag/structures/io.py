"""Reading structures: any file ASE or pymatgen reads, an ``ase.Atoms`` or a pymatgen ``Structure``.

Every structure is validated right after it is read (:func:`validate_structure`, lengths in Å): at least one atom and
at most :data:`MAX_ATOMS`, real chemical elements, finite cell and positions, a 3D cell whose lattice vectors are at
most :data:`MAX_CELL_LENGTH` long and whose thickness along each of them is at least :data:`MIN_CELL_HEIGHT`, atoms
within :data:`MAX_FRACTIONAL` cells of the origin, and no two atoms (or an atom and its own periodic image) closer
than :data:`MIN_DISTANCE`.  Such files are not structures of a magnet, and letting them through ends in NaN results,
hangs (neighbour lists of a 0.001 Å cell) or crashes of compiled libraries (spglib on a NaN cell).

Structure files are user data and never name code: a JSON or YAML file (pymatgen's serialisation) is parsed and
scanned before anything decodes it, and any ``@module``/``@class``/``@callable`` key is refused (monty's decoder
would import the named module) — except pymatgen's own top-level header naming its Structure class; the structure is
then built from the scanned data without its site properties (so monty's decoder never runs).
Only regular files are read (not a FIFO, a device or a directory).
"""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import os
import re
import stat
import warnings
from pathlib import Path
from typing import Any

import ase.io
import numpy as np
from ase import Atoms
from ase.data import chemical_symbols
from ase.neighborlist import primitive_neighbor_list
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

from .._atomic import special_file
from ..errors import StructureError

__all__ = ["read_structure", "validate_structure", "to_pymatgen", "source_name",
           "MIN_DISTANCE", "MIN_CELL_HEIGHT", "MAX_CELL_LENGTH", "MAX_ATOMS", "MAX_FRACTIONAL"]

MIN_DISTANCE = 0.5  # Å: no two atoms (or images) closer
MIN_CELL_HEIGHT = 1.0  # Å: thickness of the cell along each lattice vector
MAX_CELL_LENGTH = 1000.0  # Å: longest lattice vector
MAX_ATOMS = 10_000
MAX_FRACTIONAL = 100.0  # |fractional coordinate| of any atom
_CODE_KEYS = ("@module", "@class", "@callable")
_SERIALISED_SUFFIXES = (".json", ".mson", ".yaml", ".yml")  # the names pymatgen decodes as serialised objects


def source_name(atoms: Atoms) -> str:
    """The name of the file (or object) a structure came from, for error messages."""
    return str(atoms.info.get("source", atoms.get_chemical_formula() or "structure"))


def _from_pymatgen(obj: Any) -> Atoms:
    atoms = AseAtomsAdaptor.get_atoms(obj)
    # pymatgen stores site properties as arrays; keep only what ASE understands
    return Atoms(atoms.get_chemical_symbols(), positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)


def read_structure(source: Any, format: str | None = None) -> Atoms:
    """Return an ``ase.Atoms`` from a path (CIF, POSCAR/CONTCAR, xyz/extxyz, QE input, ... — anything ASE or
    pymatgen reads), an ``ase.Atoms`` (copied) or a pymatgen ``Structure``.

    Raises :class:`StructureError` with a one-line message naming the file when it does not exist, is not a regular
    file, is empty, cannot be parsed, names code (``@module`` keys in JSON/YAML) or fails :func:`validate_structure`.
    The source is recorded in ``atoms.info['source']``.
    """
    if isinstance(source, Atoms):
        atoms = source.copy()
        atoms.info.setdefault("source", atoms.info.get("name", atoms.get_chemical_formula()))
        return validate_structure(atoms)
    if type(source).__name__ in ("Structure", "IStructure") and hasattr(source, "lattice"):
        atoms = _from_pymatgen(source)
        atoms.info["source"] = f"pymatgen Structure {source.composition.reduced_formula}"
        return validate_structure(atoms)
    if not isinstance(source, (str, os.PathLike)):
        raise StructureError(f"cannot read a structure from an object of type {type(source).__name__}")

    path = Path(source)
    _check_regular_file(path)
    serialised = _scan_serialised(path)
    _check_cif_cell(path)

    errors = []
    atoms = None
    try:
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
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if serialised is not None:  # pymatgen's JSON/YAML: build it from the scanned data
                    atoms = _from_pymatgen(Structure.from_dict(_without_properties(serialised)))
                else:
                    atoms = _from_pymatgen(Structure.from_file(str(path)))
        except Exception as exc:  # noqa: BLE001
            errors.append(f"pymatgen: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            atoms = None
    if atoms is None:
        detail = "; ".join(e.strip() for e in errors)[:300]
        raise StructureError(f"{path}: not a readable structure file ({detail})")
    atoms.info["source"] = str(path)
    return validate_structure(atoms)


def _check_regular_file(path: Path) -> None:
    """Refuse what is not a non-empty regular file before opening it (a FIFO or a device would block or never end)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise StructureError(f"{path}: no such file") from None
    except OSError as exc:
        raise StructureError(f"{path}: cannot access the file ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise StructureError(f"{path}: is a directory, not a structure file")
    kind = special_file(path)
    if kind:
        raise StructureError(f"{path}: is {kind}, not a structure file")
    try:
        with open(path, "rb") as fh:
            while True:
                chunk = fh.read(1 << 16)
                if not chunk:
                    raise StructureError(f"{path}: file is empty")
                if chunk.strip():
                    break
    except OSError as exc:
        raise StructureError(f"{path}: cannot read the file ({exc.strerror or exc})") from None


def _open_binary(path: Path):
    """The file, transparently decompressed (gzip, bzip2, xz/lzma by their magic bytes)."""
    with open(path, "rb") as fh:
        magic = fh.read(6)
    if magic[:2] == b"\x1f\x8b":
        return gzip.open(path, "rb")
    if magic[:3] == b"BZh":
        return bz2.open(path, "rb")
    if magic == b"\xfd7zXZ\x00" or magic[:1] == b"\x5d":
        try:
            fh = lzma.open(path, "rb")
            fh.peek(1)
            return fh
        except lzma.LZMAError:
            pass
    return open(path, "rb")


def _scan_serialised(path: Path):
    """Parse a JSON/YAML structure file (by name, like pymatgen, or a file that starts with ``{`` or ``[``) and refuse
    it if it names code anywhere (``@module``, ``@class``, ``@callable`` keys).  Returns the parsed data of a file
    pymatgen would decode as a serialised object, else None."""
    by_name = any(s in path.name.lower() for s in _SERIALISED_SUFFIXES)
    try:
        with _open_binary(path) as fh:
            head = fh.read(4096).lstrip()
            if not by_name and head[:1] not in (b"{", b"["):
                return None
            raw = head + fh.read()
    except (OSError, EOFError, lzma.LZMAError) as exc:
        if by_name:
            raise StructureError(f"{path}: cannot read the file ({type(exc).__name__}: {exc})") from None
        return None
    text = raw.decode("utf-8", errors="replace")
    data, parsed = None, False
    try:
        data, parsed = json.loads(text), True
    except RecursionError:
        raise StructureError(f"{path}: JSON nested too deeply") from None
    except ValueError:
        if ".yaml" in path.name.lower() or ".yml" in path.name.lower():
            try:
                from ruamel.yaml import YAML  # local: not a declared dependency (it comes with pymatgen), YAML only

                data, parsed = YAML(typ="safe", pure=True).load(text), True
            except RecursionError:
                raise StructureError(f"{path}: YAML nested too deeply") from None
            except Exception as exc:  # noqa: BLE001 - any YAML parser error
                raise StructureError(f"{path}: not readable YAML ({type(exc).__name__}: "
                                     f"{_first_line(exc)})") from None
    if not parsed:
        if by_name:
            raise StructureError(f"{path}: not valid JSON")
        return None
    key = _code_key(data)
    if key is not None:
        raise StructureError(f"{path}: refused: the file names Python code ({key!r}); structure files are "
                             "data and may not contain @module/@class/@callable")
    return data if by_name else None


_CIF_CELL = re.compile(r"^[ \t]*_cell_(length_[abc]|angle_(?:alpha|beta|gamma))[ \t]+(\S+)", re.M | re.I)


def _check_cif_cell(path: Path) -> None:
    """The cell parameters of a CIF as written: every length positive and every angle strictly between 0° and 180°.
    (The readers accept more and silently build another cell: a = −7 Å becomes γ = 60°, α = 450° becomes 90°.)"""
    try:
        with _open_binary(path) as fh:
            head = fh.read(1 << 16)
            if ".cif" not in path.name.lower() and b"_cell_length_a" not in head:
                return
            text = (head + fh.read()).decode("utf-8", errors="replace")
    except (OSError, EOFError, lzma.LZMAError):
        return  # the readers report it
    for m in _CIF_CELL.finditer(text):
        key, raw = m.group(1).lower(), m.group(2)
        try:
            value = float(re.sub(r"\(\d+\)$", "", raw))
        except ValueError:
            raise StructureError(f"{path}: _cell_{key} is {raw!r}, not a number") from None
        ok = 0.0 < value <= MAX_CELL_LENGTH if key.startswith("length") else 0.0 < value < 180.0
        if not ok:
            limits = f"in (0, {MAX_CELL_LENGTH:g}] Å" if key.startswith("length") else "strictly between 0° and 180°"
            raise StructureError(f"{path}: _cell_{key} = {raw} (must be {limits})")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


def _code_key(data) -> str | None:
    """The first key anywhere in nested dicts/lists that names code (``@module``, ``@class``, ``@callable``), else
    None.  The one exception is the header pymatgen writes at the top of its own Structure files
    (``"@module": "pymatgen.core.structure", "@class": "Structure"``), which names the class wannmag builds from the
    data anyway (with ``Structure.from_dict``; nothing is imported or decoded from the file)."""
    stack = [(data, True)]
    while stack:
        obj, top = stack.pop()
        if isinstance(obj, dict):
            for k, v in obj.items():
                if isinstance(k, str) and k.strip() in _CODE_KEYS:
                    allowed = top and ((k == "@module" and v == "pymatgen.core.structure")
                                       or (k == "@class" and v in ("Structure", "IStructure")))
                    if not allowed:
                        return f"{k}: {str(v)[:40]}"
                stack.append((v, False))
        elif isinstance(obj, (list, tuple)):
            stack.extend((v, False) for v in obj)
    return None


def _without_properties(data):
    """pymatgen's Structure dict without structure/site properties (wannmag keeps only species, cell, positions)."""
    if not isinstance(data, dict):
        raise StructureError("not a pymatgen Structure (a JSON object with 'lattice' and 'sites')")
    out = {k: v for k, v in data.items() if k != "properties"}
    sites = data.get("sites")
    if isinstance(sites, list):
        out["sites"] = [{k: v for k, v in s.items() if k != "properties"} if isinstance(s, dict) else s
                        for s in sites]
    return out


def validate_structure(atoms: Atoms, name: str | None = None) -> Atoms:
    """Refuse a structure that no magnet has (limits in the module docstring); return ``atoms`` unchanged.

    Raises :class:`StructureError` with one line naming the source and the first problem found."""
    name = name or source_name(atoms)
    n = len(atoms)
    if n == 0:
        raise StructureError(f"{name}: structure contains no atoms")
    if n > MAX_ATOMS:
        raise StructureError(f"{name}: {n} atoms in the cell, more than the {MAX_ATOMS} wannmag handles")
    z = atoms.numbers
    bad = np.nonzero((z < 1) | (z >= len(chemical_symbols)))[0]
    if len(bad):
        raise StructureError(f"{name}: atom {bad[0]} is not a chemical element (atomic number {z[bad[0]]})")
    cell = np.asarray(atoms.cell.array, float)
    pos = np.asarray(atoms.positions, float)
    if not np.all(np.isfinite(cell)):
        raise StructureError(f"{name}: the cell holds NaN or inf")
    bad = np.nonzero(~np.all(np.isfinite(pos), axis=1))[0]
    if len(bad):
        raise StructureError(f"{name}: the position of atom {bad[0]} holds NaN or inf")
    lengths = np.linalg.norm(cell, axis=1)
    if lengths.max() > MAX_CELL_LENGTH:
        k = int(np.argmax(lengths))
        raise StructureError(f"{name}: lattice vector {'abc'[k]} is {lengths[k]:.4g} Å long (at most "
                             f"{MAX_CELL_LENGTH:g} Å)")
    volume = abs(float(np.linalg.det(cell)))
    if atoms.cell.rank < 3 or not volume > 1e-6:
        raise StructureError(f"{name}: structure has no 3D periodic cell (needed for lattice sums; "
                             "add vacuum along the non-periodic direction)")
    heights = volume / np.linalg.norm(np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]]), axis=1)
    if heights.min() < MIN_CELL_HEIGHT:
        k = int(np.argmin(heights))
        vectors = ", ".join(f"{x:.4g}" for x in lengths)
        raise StructureError(f"{name}: the cell is only {heights[k]:.5g} Å thick along lattice vector {'abc'[k]} "
                             f"(at least {MIN_CELL_HEIGHT:g} Å; lattice vectors {vectors} Å)")
    frac = np.linalg.solve(cell.T, pos.T).T
    far = np.nonzero(np.abs(frac).max(axis=1) > MAX_FRACTIONAL)[0]
    if len(far):
        raise StructureError(f"{name}: atom {far[0]} lies {np.abs(frac[far[0]]).max():.3g} cells away from the cell "
                             f"(at most {MAX_FRACTIONAL:g})")
    i, j, d = primitive_neighbor_list("ijd", (True, True, True), cell, pos, MIN_DISTANCE)
    if len(d):
        k = int(np.argmin(d))
        sym = atoms.get_chemical_symbols()
        what = (f"atom {i[k]} ({sym[i[k]]}) is {d[k]:.3g} Å from its own periodic image" if i[k] == j[k] else
                f"atoms {i[k]} ({sym[i[k]]}) and {j[k]} ({sym[j[k]]}) are {d[k]:.3g} Å apart")
        raise StructureError(f"{name}: {what} (closer than {MIN_DISTANCE:g} Å: overlapping or duplicated atoms?)")
    return atoms


def to_pymatgen(atoms: Atoms):
    """pymatgen ``Structure`` of an ``ase.Atoms`` (lattice and species only)."""
    return AseAtomsAdaptor.get_structure(Atoms(atoms.get_chemical_symbols(), positions=atoms.positions,
                                               cell=atoms.cell, pbc=True))
