"""Wannier centres: the ``_centres.xyz`` reader and the assignment of every Wannier function to the nearest
atom of its projection's element (minimum image; lengths in Å)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..model import Orbital, TBFileError
from ._files import MAX_LENGTH, _int, _lines
from .win import ProjectionSpec, WinData


def read_centres_xyz(path, num_wann: int | None = None) -> np.ndarray:
    """Wannier centres (Å) from a Wannier90 ``_centres.xyz`` file (the lines labelled ``X``)."""
    path = Path(path)
    lines = _lines(path, "Wannier90 _centres.xyz file")
    n = _int(path, 1, lines[0].split()[0] if lines[0].split() else "", "number of entries")
    if n < 0:
        raise TBFileError(f"{path}:1: number of entries must not be negative, found {n}")
    rows = []
    for k, ln in enumerate(lines[2:2 + n], start=3):
        tok = ln.split()
        if len(tok) < 4:
            raise TBFileError(f"{path}:{k}: expected 'LABEL x y z', found {ln.strip()!r}")
        if tok[0].upper() != "X":
            continue
        try:
            rows.append([float(x) for x in tok[1:4]])
        except ValueError:
            raise TBFileError(f"{path}:{k}: coordinates are not numbers: {ln.strip()!r}") from None
        if not np.all(np.isfinite(rows[-1])) or np.abs(rows[-1]).max() > MAX_LENGTH:
            raise TBFileError(f"{path}:{k}: coordinates must be finite numbers (≤ {MAX_LENGTH:g} Å): {ln.strip()!r}")
    if len(lines) < 2 + n:
        raise TBFileError(f"{path}:{len(lines)}: file announces {n} entries but has {len(lines) - 2} (truncated?)")
    if num_wann is not None and len(rows) != num_wann:
        raise TBFileError(f"{path}: {len(rows)} Wannier centres (lines 'X x y z') but num_wann = {num_wann}")
    return np.array(rows, dtype=float).reshape(-1, 3)


def _assign(win: WinData, specs: list[ProjectionSpec], centres: np.ndarray, centre_tol: float,
            centres_file: str) -> list[Orbital]:
    atoms = win.atoms
    lat = win.lattice
    inv = np.linalg.inv(lat)
    sym = atoms.get_chemical_symbols()
    out = []
    for w, (spec, c) in enumerate(zip(specs, centres)):
        element = spec.element
        if element is None:  # f=/c= site: the element of the atom at the projection site
            d = _min_image(atoms.positions - spec.site, lat, inv)
            element = sym[int(np.argmin(np.linalg.norm(d, axis=1)))]
        cand = [i for i, e in enumerate(sym) if e == element]
        diff = c - atoms.positions[cand]
        wrapped = _min_image(diff, lat, inv)
        dist = np.linalg.norm(wrapped, axis=1)
        k = int(np.argmin(dist))
        if not dist[k] <= centre_tol:
            raise TBFileError(f"{centres_file}: Wannier function {w + 1} ({element} {spec.name}, projection at "
                              f"{win.path}:{spec.line}) is centred {dist[k]:.3f} Å from the nearest {element} atom "
                              f"(tolerance {centre_tol:g} Å)")
        shift = np.rint((diff[k] - wrapped[k]) @ inv).astype(int)
        out.append(Orbital(atom=cand[k], element=element, l=spec.l, name=spec.name, spin=spec.spin,
                           cell=tuple(int(x) for x in shift)))
    return out


def _min_image(d: np.ndarray, lat: np.ndarray, inv: np.ndarray) -> np.ndarray:
    f = d @ inv
    f -= np.rint(f)
    best = f @ lat
    # check neighbouring images for skewed cells
    bestn = np.linalg.norm(best, axis=1)
    for s in np.array(np.meshgrid([-1, 0, 1], [-1, 0, 1], [-1, 0, 1])).T.reshape(-1, 3):
        if not s.any():
            continue
        cand = (f + s) @ lat
        cn = np.linalg.norm(cand, axis=1)
        better = cn < bestn - 1e-12
        best[better] = cand[better]
        bestn[better] = cn[better]
    return best


