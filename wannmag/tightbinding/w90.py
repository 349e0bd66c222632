"""Reading Wannier90 models (through wannierberri) with clear one-line errors, and writing synthetic Wannier90 files.

Files of a seed ``S`` (Wannier90 ≥ 2.1 naming):

* ``S_hr.dat`` or ``S_tb.dat``: H(R) (eV) with the Wigner–Seitz degeneracy list; the numbers are read by
  wannierberri (``System_R.from_hr_file`` / ``from_tb_dat``), which divides each H(R) by its degeneracy — exactly
  once; wannmag never divides again.  Before a file is handed to wannierberri a cheap structural check runs
  (header, num_wann, nrpts, degeneracies, number and layout of the matrix-element lines); afterwards H(R) is checked
  against H(−R)† (tolerance ``hermitian_tol`` eV).  Every problem is one :class:`TBFileError` naming file and line.
* ``S.win``: lattice (``unit_cell_cart``), atoms (``atoms_cart``/``atoms_frac``), ``projections`` (parsed with the
  Wannier90 ordering rules: lines in order, for each line the sites of the species in atoms-block order, then l
  ascending, then mr ascending, then spin (u, d) innermost for ``spinors = true``), ``num_wann``, ``mp_grid``,
  ``fermi_energy``.  Orbital names: d = dz2, dxz, dyz, dx2-y2, dxy; p = pz, px, py — always with respect to the
  global Cartesian axes: shells projected with custom axes (``:z=…:x=…``) are rotated back on reading.
  Files written by GPAW (``gpaw.wannier.wannier90``) project every orbital as ``f=x, y, z : s # n = 3, l = 2``: the
  Wannier function is the PAW projector (n, l, m) of that atom, m in GPAW's order (p: y, z, x; d: xy, yz, 3z²−r²,
  zx, x²−y²), so l is read from the comment and each complete shell is put into Wannier90 order on reading.
  ``fermi_energy``, ``num_wann`` and ``mp_grid`` must be well-formed numbers (NaN, inf or text are errors).
* ``S_centres.xyz``: Wannier centres (Å).  Without it, the centres of a ``_tb.dat`` file or the projection sites
  are used.  Each Wannier function is assigned to the nearest atom of its projection's element; a centre farther
  than ``centre_tol`` Å (default 0.5) from every such atom is an error.
* ``S_wsvec.dat`` (optional, ``use_ws_distance``): the MDRS shifts T of every (R, m, n); with ``mdrs=True`` (the
  default when the file exists) H_mn(R) is redistributed over R + T with weight 1/N_T.

Collinear pairs: ``S_up_*`` and ``S_dn_*`` (or ``S_down_*``) → :class:`CollinearTBModel`.  Spinor models
(``spinors = true``): Wannier90 order, spin innermost (orbital 1 ↑, orbital 1 ↓, orbital 2 ↑, …).

Units: energies eV, lengths Å.
"""

from __future__ import annotations

import contextlib
import io
import os
import gzip
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms

from .._atomic import special_file
from .harmonics import ORBITAL_NAMES
from .model import CollinearTBModel, Orbital, TBError, TBFileError, TBModel

__all__ = ["read_w90", "read_w90_seed", "find_w90_models", "check_hr_file", "check_tb_file", "read_hr",
           "hr_eigenvalues", "read_win", "WinData", "parse_projections", "read_centres_xyz", "read_wsvec",
           "apply_mdrs", "wigner_seitz", "fold_to_grid", "mdrs_shifts", "write_hr", "write_tb", "write_win",
           "write_centres", "write_wsvec", "write_w90_model", "to_wannierberri", "BOHR"]

BOHR = 0.529177210903
MAX_LENGTH = 1e5  # Å: larger lattice vectors or positions in a .win are not a crystal


# ---------------------------------------------------------------------------------------------------- helpers
def _lines(path: Path, what: str) -> list[str]:
    """The lines of ``path`` (or of ``path.gz``, gzip-compressed as shipped in ``data/dft``)."""
    path = Path(path)
    if not path.exists() and Path(str(path) + ".gz").exists():
        path = Path(str(path) + ".gz")
    if not path.exists():
        raise TBFileError(f"{path}: no such file ({what})")
    if path.is_dir():
        raise TBFileError(f"{path}: is a directory, not a {what}")
    _check_regular(path)
    if path.suffix == ".gz":
        try:
            with gzip.open(path, "rt", errors="replace") as f:
                text = f.read()
        except (OSError, EOFError) as exc:
            raise TBFileError(f"{path}: not a readable gzip file ({type(exc).__name__})") from None
    else:
        text = path.read_text(errors="replace")
    if not text.strip():
        raise TBFileError(f"{path}: file is empty ({what})")
    return text.splitlines()


def _int(path, lineno: int, token: str, what: str) -> int:
    try:
        return int(token)
    except (ValueError, TypeError):
        raise TBFileError(f"{path}:{lineno}: expected an integer ({what}), found {token!r}") from None


@dataclass
class HRLayout:
    """Result of the structural check of a ``_hr.dat``/``_tb.dat`` file."""

    path: Path
    kind: str                  # "hr" or "tb"
    num_wann: int
    nrpts: int
    ndegen: np.ndarray
    R: np.ndarray              # (nrpts, 3) in file order
    first_line: int            # 1-based line number of the first matrix element line (hr) / first R line (tb)
    lattice: np.ndarray | None = None

    def line_of(self, iR: int, m: int, n: int) -> int:
        """1-based line number of H_mn(R[iR]) (0-based m, n) in the file."""
        nw = self.num_wann
        if self.kind == "hr":
            return self.first_line + iR * nw * nw + n * nw + m
        return self.first_line + iR * (nw * nw + 2) + 2 + n * nw + m

    def line_of_R(self, iR: int) -> int:
        """1-based line of the first matrix element (hr) or of the R-vector line (tb) of R[iR]."""
        nw = self.num_wann
        return self.first_line + iR * nw * nw if self.kind == "hr" else self.first_line + iR * (nw * nw + 2) + 1


def _read_header(path: Path, lines: list[str], start: int, what: str):
    """num_wann, nrpts and the degeneracy list starting at 0-based line ``start``; returns (nw, nrpts, ndeg, next)."""
    def get(i, desc):
        if i >= len(lines):
            raise TBFileError(f"{path}:{i + 1}: file ends before the {desc} (truncated {what}?)")
        tok = lines[i].split()
        if not tok:
            raise TBFileError(f"{path}:{i + 1}: empty line where the {desc} is expected")
        return tok

    nw = _int(path, start + 1, get(start, "number of Wannier functions")[0], "num_wann")
    if nw <= 0:
        raise TBFileError(f"{path}:{start + 1}: num_wann must be positive, found {nw}")
    nr = _int(path, start + 2, get(start + 1, "number of R vectors")[0], "nrpts")
    if nr <= 0:
        raise TBFileError(f"{path}:{start + 2}: nrpts must be positive, found {nr}")
    ndeg: list[int] = []
    i = start + 2
    while len(ndeg) < nr:
        tok = get(i, f"Wigner–Seitz degeneracies ({nr} expected, {len(ndeg)} read)")
        for t in tok:
            v = _int(path, i + 1, t, "Wigner–Seitz degeneracy")
            if v <= 0:
                raise TBFileError(f"{path}:{i + 1}: Wigner–Seitz degeneracy must be positive, found {v}")
            ndeg.append(v)
        i += 1
    if len(ndeg) != nr:
        raise TBFileError(f"{path}:{i}: {len(ndeg)} degeneracies for nrpts = {nr} (the degeneracy list must end "
                          "at the end of a line)")
    return nw, nr, np.array(ndeg), i


def _bad_line_scan(path, lines, first, count, nfields, what, int_cols):
    """Locate the first malformed line of a block of matrix-element lines (slow path, only on error)."""
    for t in range(count):
        i = first + t
        if i >= len(lines):
            raise TBFileError(f"{path}:{i + 1}: file ends after {t} of {count} {what} lines (truncated file?)")
        tok = lines[i].split()
        if len(tok) != nfields:
            raise TBFileError(f"{path}:{i + 1}: expected {nfields} columns ({what}), found {len(tok)}: "
                              f"{lines[i].strip()[:60]!r}")
        for c in range(nfields):
            try:
                int(tok[c]) if c in int_cols else float(tok[c])
            except ValueError:
                raise TBFileError(f"{path}:{i + 1}: column {c + 1} is not a number: {tok[c]!r}") from None
    raise TBFileError(f"{path}: malformed {what} block")  # pragma: no cover


def check_hr_file(path, expected_num_wann: int | None = None, expected_from: str | None = None) -> HRLayout:
    """Structural check of a Wannier90 ``_hr.dat`` file (no number is kept; wannierberri reads them)."""
    return _parse_hr(path, expected_num_wann, expected_from)[0]


def read_hr(path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The numbers of a Wannier90 ``_hr.dat`` (or ``_hr.dat.gz``), after the checks of :func:`check_hr_file`:
    (R [nR, 3] int, ndegen [nR], H [nR, nw, nw] complex, eV, as in the file — not divided by ndegen).  For the
    light-weight band checks of the workflows; models with orbitals come from :func:`read_w90_seed`."""
    layout, a = _parse_hr(path)
    nw = layout.num_wann
    H = (a[:, 5] + 1j * a[:, 6]).reshape(layout.nrpts, nw, nw).transpose(0, 2, 1)  # row index m runs fastest
    return layout.R.copy(), np.asarray(layout.ndegen, float), np.ascontiguousarray(H)


def hr_eigenvalues(kpts_frac, R, ndegen, H, shifts: dict | None = None) -> np.ndarray:
    """Eigenvalues [k, n] (eV) of H(k) = Σ_R e^{2πi k·R} H(R) / ndegen(R) at fractional k-points, with the MDRS
    shifts of :func:`read_wsvec` (Wannier90's use_ws_distance) when ``shifts`` is given; the Fourier sum is
    :meth:`TBModel.eigenvalues` (lattice gauge: only reduced k and R enter, so no lattice is needed)."""
    R = np.asarray(R, int)
    H = np.asarray(H, complex) / np.asarray(ndegen, float)[:, None, None]
    if shifts:
        R, H = apply_mdrs(R, H, shifts)
    return TBModel(R, H, np.eye(3), name="hr.dat", hermitian_tol=1e-4).eigenvalues(kpts_frac)


def _parse_hr(path, expected_num_wann: int | None = None, expected_from: str | None = None):
    path = Path(path)
    lines = _lines(path, "Wannier90 _hr.dat file")
    nw, nr, ndeg, i = _read_header(path, lines, 1, "_hr.dat")
    if expected_num_wann is not None and nw != expected_num_wann:
        raise TBFileError(f"{path}:2: num_wann = {nw} but {expected_from or 'expected'} has {expected_num_wann}")
    count = nr * nw * nw
    body = lines[i:i + count]
    tail = [ln for ln in lines[i + count:] if ln.strip()]
    tokens = " ".join(body).split()
    if len(body) < count or len(tokens) != 7 * count:
        _bad_line_scan(path, lines, i, count, 7, "matrix-element", {0, 1, 2, 3, 4})
    if tail:
        raise TBFileError(f"{path}:{i + count + 1}: {len(tail)} unexpected line(s) after the {count} matrix elements "
                          f"(nrpts = {nr}, num_wann = {nw}); inconsistent header?")
    try:
        a = np.array(tokens, dtype=float).reshape(count, 7)
    except ValueError:
        _bad_line_scan(path, lines, i, count, 7, "matrix-element", {0, 1, 2, 3, 4})
    fin = np.isfinite(a[:, 5:]).all(axis=1)
    if not fin.all():
        bad = int(np.nonzero(~fin)[0][0])
        raise TBFileError(f"{path}:{i + bad + 1}: matrix element is not a finite number: {lines[i + bad].strip()!r}")
    ints = a[:, :5]
    if np.any(ints != np.rint(ints)):
        bad = int(np.nonzero(np.any(ints != np.rint(ints), axis=1))[0][0])
        raise TBFileError(f"{path}:{i + bad + 1}: R and orbital indices must be integers: {lines[i + bad].strip()!r}")
    ints = ints.astype(int)
    t = np.arange(count)
    m_exp = t % nw + 1
    n_exp = (t // nw) % nw + 1
    bad = np.nonzero((ints[:, 3] != m_exp) | (ints[:, 4] != n_exp))[0]
    if len(bad):
        b = int(bad[0])
        raise TBFileError(f"{path}:{i + b + 1}: orbital indices ({ints[b, 3]}, {ints[b, 4]}), expected "
                          f"({m_exp[b]}, {n_exp[b]}) (row index fastest, num_wann = {nw}); mismatched num_wann?")
    R = ints[::nw * nw, :3]
    Rrep = np.repeat(R, nw * nw, axis=0)
    bad = np.nonzero(np.any(ints[:, :3] != Rrep, axis=1))[0]
    if len(bad):
        b = int(bad[0])
        raise TBFileError(f"{path}:{i + b + 1}: R vector {tuple(int(x) for x in ints[b, :3])} changes inside the block of "
                          f"R = {tuple(int(x) for x in Rrep[b])} ({nw}×{nw} lines per R); mismatched num_wann?")
    _check_unique_R(path, R, lambda k: i + k * nw * nw + 1)
    return HRLayout(path, "hr", nw, nr, ndeg, R, i + 1), a


def _check_unique_R(path, R, line_of):
    seen = {}
    for k, r in enumerate(map(tuple, R)):
        if r in seen:
            raise TBFileError(f"{path}:{line_of(k)}: R vector {r} appears twice (first at line {line_of(seen[r])})")
        seen[r] = k


def check_tb_file(path, expected_num_wann: int | None = None, expected_from: str | None = None) -> HRLayout:
    """Structural check of a Wannier90 ``_tb.dat`` file (Hamiltonian and position blocks)."""
    path = Path(path)
    lines = _lines(path, "Wannier90 _tb.dat file")
    lat = []
    for k in range(1, 4):
        if k >= len(lines):
            raise TBFileError(f"{path}:{k + 1}: file ends inside the lattice vectors (truncated?)")
        try:
            v = [float(x) for x in lines[k].split()[:3]]
        except ValueError:
            raise TBFileError(f"{path}:{k + 1}: lattice vector is not 3 numbers: {lines[k].strip()!r}") from None
        if len(v) != 3:
            raise TBFileError(f"{path}:{k + 1}: lattice vector is not 3 numbers: {lines[k].strip()!r}")
        lat.append(v)
    nw, nr, ndeg, i = _read_header(path, lines, 4, "_tb.dat")
    if expected_num_wann is not None and nw != expected_num_wann:
        raise TBFileError(f"{path}:5: num_wann = {nw} but {expected_from or 'expected'} has {expected_num_wann}")
    first = i
    R = np.zeros((nr, 3), int)
    for part, nfields in (("Hamiltonian", 4), ("position", 8)):
        for k in range(nr):
            if i >= len(lines):
                raise TBFileError(f"{path}:{i + 1}: file ends after {k} of {nr} R blocks of the {part} matrix "
                                  "(truncated file?)")
            if lines[i].strip():
                raise TBFileError(f"{path}:{i + 1}: expected an empty line before R block {k + 1} of the {part} "
                                  f"matrix, found {lines[i].strip()[:60]!r}; mismatched num_wann?")
            if i + 1 >= len(lines):
                raise TBFileError(f"{path}:{i + 2}: file ends before R block {k + 1} (truncated file?)")
            tok = lines[i + 1].split()
            if len(tok) != 3:
                raise TBFileError(f"{path}:{i + 2}: expected an R vector (3 integers), found {lines[i + 1].strip()!r}")
            r = [_int(path, i + 2, t, "R vector") for t in tok]
            if part == "Hamiltonian":
                R[k] = r
            elif tuple(r) != tuple(R[k]):
                raise TBFileError(f"{path}:{i + 2}: position block {k + 1} has R = {tuple(r)}, Hamiltonian block "
                                  f"has {tuple(int(x) for x in R[k])}")
            body = lines[i + 2:i + 2 + nw * nw]
            tokens = " ".join(body).split()
            if len(body) < nw * nw or len(tokens) != nfields * nw * nw:
                _bad_line_scan(path, lines, i + 2, nw * nw, nfields, f"{part} matrix-element", {0, 1})
            try:
                mn = np.array(tokens, dtype=float).reshape(nw * nw, nfields)[:, :2]
            except ValueError:
                _bad_line_scan(path, lines, i + 2, nw * nw, nfields, f"{part} matrix-element", {0, 1})
            t = np.arange(nw * nw)
            bad = np.nonzero((mn[:, 0] != t % nw + 1) | (mn[:, 1] != t // nw + 1))[0]
            if len(bad):
                b = int(bad[0])
                raise TBFileError(f"{path}:{i + 3 + b}: orbital indices ({int(mn[b, 0])}, {int(mn[b, 1])}), expected "
                                  f"({b % nw + 1}, {b // nw + 1}); mismatched num_wann?")
            i += 2 + nw * nw
    if any(ln.strip() for ln in lines[i:]):
        raise TBFileError(f"{path}:{i + 1}: unexpected lines after the position matrix")
    _check_unique_R(path, R, lambda k: first + k * (nw * nw + 2) + 2)
    return HRLayout(path, "tb", nw, nr, ndeg, R, first + 1, lattice=np.array(lat))


# ---------------------------------------------------------------------------------------------------- .win
@dataclass
class ProjectionSpec:
    """One Wannier function as defined by the projections block."""

    site: np.ndarray            # Cartesian position of the projection site (Å)
    label: str | None           # species label (None for f=/c= sites)
    element: str | None
    l: int
    mr: int
    name: str
    spin: str | None
    line: int                   # 1-based line number in the .win file
    axes: np.ndarray | None = None  # rows x, y, z of the projection frame if not the default
    gpaw_shell: int | None = None   # GPAW-written projections: id of the (site, n, l) shell (m in GPAW order)


@dataclass
class WinData:
    path: Path
    lattice: np.ndarray
    atoms: Atoms
    labels: list[str]
    parameters: dict
    projection_lines: list[tuple[int, str]] = field(default_factory=list)
    projection_comments: dict[int, str] = field(default_factory=dict)  # line → text after '#' or '!'

    @property
    def num_wann(self) -> int | None:
        v = self.parameters.get("num_wann")
        return int(v) if isinstance(v, (int, float)) else None

    @property
    def spinors(self) -> bool:
        return bool(self.parameters.get("spinors", False))

    @property
    def mp_grid(self):
        v = self.parameters.get("mp_grid")
        return tuple(int(x) for x in v) if isinstance(v, list) and len(v) == 3 else None

    @property
    def fermi_energy(self) -> float | None:
        v = self.parameters.get("fermi_energy")
        return float(v) if isinstance(v, (int, float)) else None


def _element_of_label(label: str) -> str:
    from ase.data import chemical_symbols

    m = re.match(r"([A-Za-z]{1,2})", label)
    if not m:
        return label
    s = m.group(1)
    cand = s[0].upper() + s[1:].lower()
    if cand in chemical_symbols:
        return cand
    return s[0].upper() if s[0].upper() in chemical_symbols else cand


def _block_lines(path: Path, lines: list[str], name: str) -> list[tuple[int, str]] | None:
    start = end = None
    for k, ln in enumerate(lines):
        s = re.sub(r"[!#].*", "", ln).strip().lower()
        if re.match(rf"begin\s+{name}\b", s):
            start = k
        elif re.match(rf"end\s+{name}\b", s) and start is not None:
            end = k
            break
    if start is None:
        return None
    if end is None:
        raise TBFileError(f"{path}:{start + 1}: 'begin {name}' without 'end {name}'")
    out = []
    for k in range(start + 1, end):
        s = re.sub(r"[!#].*", "", lines[k]).strip()
        if s:
            out.append((k + 1, s))
    return out


def read_win(path) -> WinData:
    """Lattice, atoms, parameters and the projections block of a Wannier90 ``.win`` file."""
    import wannier90io

    path = Path(path)
    lines = _lines(path, "Wannier90 .win file")
    text = "\n".join(lines) + "\n"
    try:
        raw = wannier90io.parse_win_raw(text)
    except Exception as exc:  # noqa: BLE001
        raise TBFileError(f"{path}: cannot parse the .win file ({type(exc).__name__}: {exc})") from None
    params = {k.lower(): v for k, v in raw.get("parameters", {}).items()}
    cell_block = _block_lines(path, lines, "unit_cell_cart")
    if not cell_block:
        raise TBFileError(f"{path}: no 'begin unit_cell_cart' block (lattice vectors needed)")
    unit = 1.0
    rows = []
    for ln, s in cell_block:
        if s.lower() in ("bohr", "ang", "angstrom"):
            unit = BOHR if s.lower() == "bohr" else 1.0
            continue
        try:
            rows.append([float(x) for x in s.replace(",", " ").split()[:3]])
        except ValueError:
            raise TBFileError(f"{path}:{ln}: lattice vector is not 3 numbers: {s!r}") from None
        if not all(np.isfinite(x) and abs(x) <= MAX_LENGTH for x in rows[-1]):
            raise TBFileError(f"{path}:{ln}: lattice vector must be 3 finite numbers (≤ {MAX_LENGTH:g} Å): {s!r}")
    if len(rows) != 3 or any(len(r) != 3 for r in rows):
        raise TBFileError(f"{path}:{cell_block[0][0]}: unit_cell_cart must contain 3 lattice vectors")
    lattice = np.array(rows) * unit
    labels, pos, frac = [], [], None
    for name in ("atoms_cart", "atoms_frac"):
        blk = _block_lines(path, lines, name)
        if blk is None:
            continue
        frac = name == "atoms_frac"
        unit = 1.0
        for ln, s in blk:
            if s.lower() in ("bohr", "ang", "angstrom"):
                unit = BOHR if s.lower() == "bohr" else 1.0
                continue
            tok = s.split()
            try:
                xyz = [float(x) for x in tok[1:4]]
            except ValueError:
                xyz = []
            if len(tok) < 4 or len(xyz) != 3:
                raise TBFileError(f"{path}:{ln}: atom line must be 'LABEL x y z', found {s!r}")
            if not all(np.isfinite(x) and abs(x) <= MAX_LENGTH for x in xyz):
                raise TBFileError(f"{path}:{ln}: atom position must be 3 finite numbers (≤ {MAX_LENGTH:g}), found {s!r}")
            labels.append(tok[0])
            pos.append(np.array(xyz) if frac else np.array(xyz) * unit)
        break
    if not labels:
        raise TBFileError(f"{path}: no 'begin atoms_cart' or 'begin atoms_frac' block")
    pos = np.array(pos)
    cart = pos @ lattice if frac else pos
    atoms = Atoms([_element_of_label(lb) for lb in labels], positions=cart, cell=lattice, pbc=True)
    atoms.info["source"] = str(path)
    atoms.info["labels"] = labels
    if abs(np.linalg.det(lattice)) < 1e-6:
        raise TBFileError(f"{path}:{cell_block[0][0]}: the lattice vectors span no volume")
    _check_parameters(path, lines, params)
    proj = _block_lines(path, lines, "projections") or []
    comments = {}
    for ln, _ in proj:
        m = re.search(r"[!#](.*)", lines[ln - 1])
        if m:
            comments[ln] = m.group(1).strip()
    return WinData(path, lattice, atoms, labels, params, proj, comments)


def _param_line(lines: list[str], key: str) -> int | None:
    for k, ln in enumerate(lines):
        if re.match(rf"\s*{key}\s*[=:\s]", ln, flags=re.IGNORECASE):
            return k + 1
    return None


def _check_parameters(path: Path, lines: list[str], params: dict) -> None:
    """``fermi_energy`` a finite number (eV), ``num_wann`` a positive integer, ``mp_grid`` three positive integers:
    a malformed value is an error naming the .win line, never silently ignored."""
    def bad(key, what):
        ln = _param_line(lines, key)
        raise TBFileError(f"{path}{f':{ln}' if ln else ''}: {key} must be {what}, found {params[key]!r}")

    if "fermi_energy" in params:
        v = params["fermi_energy"]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
            bad("fermi_energy", "a finite number (eV)")
    if "num_wann" in params:
        v = params["num_wann"]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or v != int(v) or v < 1:
            bad("num_wann", "a positive integer")
    if "mp_grid" in params:
        v = params["mp_grid"]
        if (not isinstance(v, list) or len(v) != 3
                or not all(isinstance(x, (int, float)) and not isinstance(x, bool) and np.isfinite(x)
                           and x == int(x) and x >= 1 for x in v)):
            bad("mp_grid", "three positive integers")


_ANG = {
    "s": [(0, 1)], "p": [(1, m) for m in (1, 2, 3)], "d": [(2, m) for m in range(1, 6)],
    "f": [(3, m) for m in range(1, 8)],
    "sp": [(-1, 1), (-1, 2)], "sp2": [(-2, m) for m in (1, 2, 3)], "sp3": [(-3, m) for m in (1, 2, 3, 4)],
    "sp3d": [(-4, m) for m in range(1, 6)], "sp3d2": [(-5, m) for m in range(1, 7)],
}
for _l, _names in ORBITAL_NAMES.items():
    for _m, _n in enumerate(_names, start=1):
        _ANG[_n] = [(_l, _m)]
_HYBRID_NAMES = {-1: "sp", -2: "sp2", -3: "sp3", -4: "sp3d", -5: "sp3d2"}


def _orbital_name(l: int, mr: int) -> str:
    if l >= 0:
        return ORBITAL_NAMES[l][mr - 1]
    return f"{_HYBRID_NAMES[l]}-{mr}"


def _parse_vec(path, ln, s):
    try:
        v = [float(x) for x in s.replace(",", " ").split()]
    except ValueError:
        v = []
    if len(v) != 3 or not all(np.isfinite(v)) or max(abs(x) for x in v) > MAX_LENGTH:
        raise TBFileError(f"{path}:{ln}: expected 3 finite numbers in {s!r}")
    return np.array(v)


def parse_projections(win: WinData) -> list[ProjectionSpec]:
    """The Wannier functions defined by the projections block, in Wannier90 order (see the module docstring)."""
    path = win.path
    if not win.projection_lines:
        raise TBFileError(f"{path}: no 'begin projections' block; cannot assign the Wannier functions to atoms "
                          "and orbitals")
    out: list[ProjectionSpec] = []
    label_map: dict[str, list[int]] = {}
    for i, lb in enumerate(win.labels):
        label_map.setdefault(lb.lower(), []).append(i)
    unit = 1.0
    gpaw = _gpaw_shells(win)
    for ln, s in win.projection_lines:
        low = s.lower()
        if low in ("bohr", "ang", "angstrom"):
            unit = BOHR if low == "bohr" else 1.0
            continue
        if low.startswith("random"):
            raise TBFileError(f"{path}:{ln}: random projections cannot be assigned to atoms and orbitals")
        spins = [None]
        msp = re.search(r"\(([ud, ]+)\)", s)
        body = re.sub(r"\(.*?\)", "", s)
        body = re.sub(r"\[.*?\]", "", body)
        if win.spinors:
            spins = ["up", "down"]
            if msp:
                sp = [x.strip() for x in msp.group(1).split(",") if x.strip()]
                spins = [{"u": "up", "d": "down"}[x] for x in sp]
        parts = [p.strip() for p in body.split(":")]
        if len(parts) < 2 or not parts[0] or not parts[1]:
            raise TBFileError(f"{path}:{ln}: projection must be 'site:orbitals', found {s!r}")
        site, ang = parts[0], parts[1]
        axes = None
        zax, xax = np.array([0, 0, 1.0]), np.array([1.0, 0, 0])
        for opt in parts[2:]:
            key, _, val = opt.partition("=")
            key = key.strip().lower()
            if key == "z":
                zax = _parse_vec(path, ln, val)
            elif key == "x":
                xax = _parse_vec(path, ln, val)
        if not (np.allclose(zax / np.linalg.norm(zax), [0, 0, 1]) and np.allclose(xax / np.linalg.norm(xax), [1, 0, 0])):
            z = zax / np.linalg.norm(zax)
            x = xax - z * (xax @ z)
            x /= np.linalg.norm(x)
            axes = np.array([x, np.cross(z, x), z])
        # sites
        if site.lower().startswith(("f=", "c=")):
            v = _parse_vec(path, ln, site[2:])
            cart = v @ win.lattice if site.lower().startswith("f=") else v * unit
            sites = [(cart, None, None)]
        else:
            idx = label_map.get(site.lower())
            if idx is None:
                raise TBFileError(f"{path}:{ln}: projection site {site!r} is not an atom label of the atoms block "
                                  f"(labels: {', '.join(sorted(set(win.labels)))})")
            sites = [(win.atoms.positions[i], win.labels[i], win.atoms.get_chemical_symbols()[i]) for i in idx]
        # angular states
        states = set()
        for a in ang.split(";"):
            a = a.strip().lower().replace(" ", "")
            if not a:
                continue
            if a.startswith("l="):
                m = re.fullmatch(r"l=(-?\d)(?:,mr=([\d,]+))?", a)
                if not m:
                    raise TBFileError(f"{path}:{ln}: cannot read angular momentum {a!r}")
                l = int(m.group(1))
                nmax = 2 * l + 1 if l >= 0 else {-1: 2, -2: 3, -3: 4, -4: 5, -5: 6}.get(l, 0)
                if nmax == 0 or l > 3:
                    raise TBFileError(f"{path}:{ln}: unsupported l = {l}")
                mrs = [int(x) for x in m.group(2).split(",") if x] if m.group(2) else list(range(1, nmax + 1))
                if any(not 1 <= x <= nmax for x in mrs):
                    raise TBFileError(f"{path}:{ln}: mr out of range 1…{nmax} for l = {l}")
                states.update((l, x) for x in mrs)
            elif a in _ANG:
                states.update(_ANG[a])
            else:
                raise TBFileError(f"{path}:{ln}: unknown orbital {a!r} in projection {s!r}")
        if not states:
            raise TBFileError(f"{path}:{ln}: projection {s!r} defines no orbital")
        shell = None
        if ln in gpaw:  # GPAW: an s projection standing for orbital m of the (n, l) shell named in the comment
            if states != {(0, 1)} or len(sites) != 1:
                raise TBFileError(f"{path}:{ln}: GPAW projection comment '# n = …, l = …' on a projection that is "
                                  f"not a single-site 's': {s!r}")
            shell, l_g, m_g = gpaw[ln]
            states = {(l_g, W90_MR_OF_GPAW_M[l_g][m_g])}
        ordered = sorted(states)  # l ascending (-5 … 3), then mr ascending — the Wannier90 loop order
        for cart, label, el in sites:
            for l, mr in ordered:
                for spin in spins:
                    out.append(ProjectionSpec(site=np.asarray(cart, float), label=label, element=el, l=l, mr=mr,
                                              name=_orbital_name(l, mr), spin=spin, line=ln, axes=axes,
                                              gpaw_shell=shell))
    return out


#: GPAW's real spherical harmonics (gpaw/sphere/spherical_harmonics.py ``names``: p = y, z, x; d = xy, yz, 3z²−r²,
#: zx, x²−y², all with positive lobes along the positive axes like Wannier90's) → Wannier90 mr of each GPAW m
W90_MR_OF_GPAW_M = {0: [1], 1: [3, 1, 2], 2: [5, 3, 1, 2, 4]}
_GPAW_COMMENT = re.compile(r"n\s*=\s*(-?\d+)\s*,\s*l\s*=\s*(-?\d+)", re.IGNORECASE)


def _gpaw_shells(win: WinData) -> dict[int, tuple[int, int, int]]:
    """Projection lines written by GPAW's ``gpaw.wannier.wannier90`` (``f=x, y, z : s # n = 3, l = 2``: one line per
    orbital, the PAW projector (n, l, m) of the atom, m in GPAW's order): {line: (shell id, l, m)}.  Consecutive
    lines with the same site, n and l form one shell and must hold all 2l + 1 orbitals (the comment gives no m)."""
    path = win.path
    tagged = []
    for ln, s in win.projection_lines:
        m = _GPAW_COMMENT.fullmatch(win.projection_comments.get(ln, "").strip())
        tagged.append((ln, s.split(":")[0].replace(" ", "").lower(), (int(m.group(1)), int(m.group(2))) if m else None))
    out: dict[int, tuple[int, int, int]] = {}
    k, shell = 0, 0
    while k < len(tagged):
        ln, site, nl = tagged[k]
        if nl is None:
            k += 1
            continue
        n, l = nl
        if l not in W90_MR_OF_GPAW_M:
            raise TBFileError(f"{path}:{ln}: GPAW projection with l = {l}: only s, p and d shells are supported")
        group = [ln]
        while (k + len(group) < len(tagged) and tagged[k + len(group)][1] == site
               and tagged[k + len(group)][2] == nl and len(group) < 2 * l + 1):
            group.append(tagged[k + len(group)][0])
        if len(group) != 2 * l + 1:
            raise TBFileError(f"{path}:{ln}: GPAW projection lines give n and l but not m: {len(group)} of the "
                              f"{2 * l + 1} orbitals of the n = {n}, l = {l} shell at {site} cannot be named; "
                              "project onto whole shells")
        for m_g, x in enumerate(group):
            out[x] = (shell, l, m_g)
        shell += 1
        k += len(group)
    return out


def _gpaw_to_w90_order(specs: list[ProjectionSpec]) -> np.ndarray | None:
    """Permutation p (new orbital i = file orbital p[i]) that puts every GPAW shell into Wannier90 order (mr
    ascending, spin innermost); None if the file order is already the Wannier90 order."""
    perm = np.arange(len(specs))
    shells: dict[int, list[int]] = {}
    for i, sp in enumerate(specs):
        if sp.gpaw_shell is not None:
            shells.setdefault(sp.gpaw_shell, []).append(i)
    for idx in shells.values():
        perm[idx] = sorted(idx, key=lambda i: (specs[i].mr, specs[i].spin != "up"))
    return None if np.all(perm == np.arange(len(specs))) else perm


# ---------------------------------------------------------------------------------------------------- centres
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


def _projection_axes_to_global(win_path, specs: list[ProjectionSpec], orbitals: list[Orbital], H: np.ndarray):
    """Express shells projected with custom axes (``z=…:x=…``) in the global Cartesian frame.

    A Wannier function of such a shell is f_m(x'·r, y'·r, z'·r) = Σ_m' D_m'm f_m'(r), D = frame_matrix(l, axes);
    with the block-orthogonal O (O[shell, shell] = D) the global-frame Hamiltonian is O H(R) Oᵀ.
    """
    from .harmonics import frame_matrix

    if not any(sp.axes is not None for sp in specs):
        return H
    nw = len(specs)
    O = np.eye(nw)
    groups: dict[tuple, list[int]] = {}
    for i, (sp, o) in enumerate(zip(specs, orbitals)):
        if sp.axes is not None:
            groups.setdefault((o.atom, o.l, o.spin, sp.line), []).append(i)
    for (atom, l, spin, line), idx in groups.items():
        names = [orbitals[i].name for i in idx]
        if l < 0 or sorted(names) != sorted(ORBITAL_NAMES[l]):
            raise TBFileError(f"{win_path}:{line}: custom projection axes need complete shells of real harmonics "
                              f"(found {', '.join(names)} on atom {atom})")
        order = [idx[names.index(n)] for n in ORBITAL_NAMES[l]]
        O[np.ix_(order, order)] = frame_matrix(l, specs[idx[0]].axes)
    return np.einsum("ab,rbc,dc->rad", O, H, O)


# ---------------------------------------------------------------------------------------------------- MDRS
def read_wsvec(path, R: np.ndarray, num_wann: int) -> dict[tuple[int, int, int], list[np.ndarray]]:
    """MDRS shifts of a ``_wsvec.dat`` file: {(iR, m, n) (0-based): [T1, T2, …]} for the R list ``R``."""
    path = Path(path)
    lines = _lines(path, "Wannier90 _wsvec.dat file")
    index = {tuple(r): k for k, r in enumerate(R)}
    out = {}
    i = 1 if lines[0].lstrip().startswith("#") else 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        tok = lines[i].split()
        if len(tok) != 5:
            raise TBFileError(f"{path}:{i + 1}: expected 'R1 R2 R3 m n', found {lines[i].strip()!r}")
        vals = [_int(path, i + 1, t, "R vector / orbital index") for t in tok]
        r, m, n = tuple(vals[:3]), vals[3], vals[4]
        if r not in index:
            raise TBFileError(f"{path}:{i + 1}: R vector {r} is not in the Hamiltonian file")
        if not (1 <= m <= num_wann and 1 <= n <= num_wann):
            raise TBFileError(f"{path}:{i + 1}: orbital indices ({m}, {n}) outside 1…{num_wann}; mismatched num_wann?")
        if i + 1 >= len(lines):
            raise TBFileError(f"{path}:{i + 2}: file ends before the number of shifts (truncated?)")
        nd = _int(path, i + 2, (lines[i + 1].split() or [""])[0], "number of shifts")
        if nd <= 0:
            raise TBFileError(f"{path}:{i + 2}: number of shifts must be positive, found {nd}")
        shifts = []
        for q in range(nd):
            j = i + 2 + q
            if j >= len(lines):
                raise TBFileError(f"{path}:{j + 1}: file ends inside the shifts of R = {r}, ({m}, {n}) (truncated?)")
            t = lines[j].split()
            if len(t) < 3:
                raise TBFileError(f"{path}:{j + 1}: expected a shift vector (3 integers), found {lines[j].strip()!r}")
            shifts.append(np.array([_int(path, j + 1, x, "shift") for x in t[:3]]))
        out[(index[r], m - 1, n - 1)] = shifts
        i += 2 + nd
    missing = len(R) * num_wann * num_wann - len(out)
    if missing:
        raise TBFileError(f"{path}: shifts for {len(out)} of {len(R) * num_wann ** 2} (R, m, n) entries; "
                          f"file truncated or for another model")
    return out


def apply_mdrs(R: np.ndarray, H: np.ndarray, shifts: dict) -> tuple[np.ndarray, np.ndarray]:
    """Redistribute H_mn(R) over R + T (weight 1/N_T) with the MDRS ``shifts`` of :func:`read_wsvec`."""
    rows, ms, ns, vals = [], [], [], []
    for (iR, m, n), Ts in shifts.items():
        v = H[iR, m, n] / len(Ts)
        for T in Ts:
            rows.append(R[iR] + T)
            ms.append(m)
            ns.append(n)
            vals.append(v)
    rows = np.array(rows, dtype=int)
    Rn, inv = np.unique(rows, axis=0, return_inverse=True)
    Hn = np.zeros((len(Rn),) + H.shape[1:], complex)
    np.add.at(Hn, (inv.ravel(), np.array(ms), np.array(ns)), np.array(vals))
    return Rn, Hn


def wigner_seitz(lattice, mp_grid, tol: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """The Wigner–Seitz supercell R vectors of an ``mp_grid`` and their degeneracies (Wannier90's algorithm)."""
    N = np.asarray(mp_grid, int)
    lattice = np.asarray(lattice, float)
    rng = [np.arange(-2 * n, 2 * n + 1) for n in N]
    cand = np.array(np.meshgrid(*rng, indexing="ij")).reshape(3, -1).T
    sup = np.array(np.meshgrid([-2, -1, 0, 1, 2], [-2, -1, 0, 1, 2], [-2, -1, 0, 1, 2], indexing="ij")).reshape(3, -1).T
    sup = sup * N
    # drop directions without k sampling (N = 1 → only R = 0 along that axis)
    keep = np.all((N > 1) | (cand == 0), axis=1)
    cand = cand[keep]
    sup = sup[np.all((N > 1) | (sup == 0), axis=1)]
    d = np.linalg.norm(((cand[:, None, :] - sup[None, :, :]) @ lattice), axis=2)
    d0 = np.linalg.norm(cand @ lattice, axis=1)
    dmin = d.min(axis=1)
    sel = d0 <= dmin + tol
    ndeg = np.sum(np.abs(d - dmin[:, None]) < tol, axis=1)
    return cand[sel], ndeg[sel]


def fold_to_grid(model: TBModel, mp_grid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fold a model onto the Wigner–Seitz supercell of ``mp_grid`` as Wannier90 would write it.

    Returns (R, H_file, ndegen): H_file(R) = Σ_{R' ≡ R mod N} H(R') (the un-divided value Wannier90 writes) for
    every Wigner–Seitz vector R with degeneracy ndegen(R).  Reading the result back (dividing by ndegen) reproduces
    H(k) exactly on the ``mp_grid`` k-points.
    """
    N = np.asarray(mp_grid, int)
    Rws, ndeg = wigner_seitz(model.lattice, N)
    grid = {}
    for r, h in zip(model.R, model.H):
        g = tuple(np.mod(r, N))
        grid[g] = grid.get(g, 0) + h
    zero = np.zeros((model.num_wann,) * 2, complex)
    H = np.array([grid.get(tuple(np.mod(r, N)), zero) for r in Rws])
    return Rws, H, ndeg


def mdrs_shifts(lattice, centres, R, mp_grid, tol: float = 1e-5) -> dict:
    """MDRS shifts T (multiples of the supercell vectors) minimising |R + T + τ_n − τ_m| for every (iR, m, n)."""
    N = np.asarray(mp_grid, int)
    lattice = np.asarray(lattice, float)
    sup = np.array(np.meshgrid([-2, -1, 0, 1, 2], [-2, -1, 0, 1, 2], [-2, -1, 0, 1, 2], indexing="ij")).reshape(3, -1).T
    sup = sup[np.all((N > 1) | (sup == 0), axis=1)] * N
    supc = sup @ lattice
    centres = np.asarray(centres, float)
    out = {}
    nw = len(centres)
    for iR, r in enumerate(np.asarray(R)):
        rc = r @ lattice
        d = rc[None, None, :] + centres[None, :, :] - centres[:, None, :]        # (m, n, 3)
        dist = np.linalg.norm(d[:, :, None, :] + supc[None, None, :, :], axis=3)  # (m, n, nsup)
        dmin = dist.min(axis=2)
        for m in range(nw):
            for n in range(nw):
                sel = np.nonzero(dist[m, n] < dmin[m, n] + tol)[0]
                out[(iR, m, n)] = [sup[s] for s in sel]
    return out


# ---------------------------------------------------------------------------------------------------- writers
def write_hr(path, R, H_file, ndegen, header: str = "written by wannmag") -> None:
    """Write a Wannier90 ``_hr.dat`` (values are written as given, i.e. *not* divided by ndegen)."""
    R = np.asarray(R, int)
    nw = H_file.shape[1]
    with open(path, "w") as f:
        f.write(header.strip() + "\n")
        f.write(f"{nw:12d}\n{len(R):12d}\n")
        for s in range(0, len(R), 15):
            f.write("".join(f"{d:5d}" for d in ndegen[s:s + 15]) + "\n")
        for r, h in zip(R, H_file):
            for n in range(nw):
                for m in range(nw):
                    f.write(f"{r[0]:5d}{r[1]:5d}{r[2]:5d}{m + 1:5d}{n + 1:5d}{h[m, n].real:22.14f}"
                            f"{h[m, n].imag:22.14f}\n")


def write_tb(path, lattice, R, H_file, ndegen, centres, header: str = "written by wannmag") -> None:
    """Write a Wannier90 ``_tb.dat`` (Hamiltonian as given, positions: diagonal Wannier centres at R = 0)."""
    R = np.asarray(R, int)
    nw = H_file.shape[1]
    with open(path, "w") as f:
        f.write(header.strip() + "\n")
        for v in np.asarray(lattice):
            f.write(f"{v[0]:22.14f}{v[1]:22.14f}{v[2]:22.14f}\n")
        f.write(f"{nw:12d}\n{len(R):12d}\n")
        for s in range(0, len(R), 15):
            f.write("".join(f"{d:5d}" for d in ndegen[s:s + 15]) + "\n")
        for r, h in zip(R, H_file):
            f.write(f"\n{r[0]:5d}{r[1]:5d}{r[2]:5d}\n")
            for n in range(nw):
                for m in range(nw):
                    f.write(f"{m + 1:5d}{n + 1:5d}{h[m, n].real:22.14f}{h[m, n].imag:22.14f}\n")
        for r, deg in zip(R, ndegen):
            f.write(f"\n{r[0]:5d}{r[1]:5d}{r[2]:5d}\n")
            for n in range(nw):
                for m in range(nw):
                    pos = centres[m] * deg if (m == n and not r.any()) else np.zeros(3)
                    f.write(f"{m + 1:5d}{n + 1:5d}" + "".join(f"{x:18.10f}{0.0:18.10f}" for x in pos) + "\n")


def write_centres(path, centres, atoms: Atoms | None = None) -> None:
    """Write a Wannier90-style ``_centres.xyz``."""
    n = len(centres) + (len(atoms) if atoms is not None else 0)
    with open(path, "w") as f:
        f.write(f"{n:6d}\n Wannier centres, written by wannmag\n")
        for c in centres:
            f.write(f"X {c[0]:18.10f}{c[1]:18.10f}{c[2]:18.10f}\n")
        if atoms is not None:
            for s, p in zip(atoms.get_chemical_symbols(), atoms.positions):
                f.write(f"{s:2s}{p[0]:18.10f}{p[1]:18.10f}{p[2]:18.10f}\n")


def write_wsvec(path, R, shifts: dict, num_wann: int) -> None:
    """Write a ``_wsvec.dat`` in Wannier90's layout from MDRS ``shifts`` (see :func:`mdrs_shifts`)."""
    with open(path, "w") as f:
        f.write("## written by wannmag with use_ws_distance=.true.\n")
        for iR, r in enumerate(np.asarray(R)):
            for m in range(num_wann):
                for n in range(num_wann):
                    Ts = shifts[(iR, m, n)]
                    f.write(f"{r[0]:5d}{r[1]:5d}{r[2]:5d}{m + 1:5d}{n + 1:5d}\n{len(Ts):5d}\n")
                    for T in Ts:
                        f.write(f"{T[0]:5d}{T[1]:5d}{T[2]:5d}\n")


def _projection_lines(model: TBModel) -> tuple[list[str], list[str]]:
    """(atom labels, projection lines) reproducing the model's orbital order under Wannier90's rules."""
    sym = model.atoms.get_chemical_symbols()
    letters = {0: "s", 1: "p", 2: "d", 3: "f"}
    per_atom: list[tuple[int, tuple]] = []
    for o in model.orbitals:
        if not per_atom or per_atom[-1][0] != o.atom:
            per_atom.append((o.atom, ()))
        a, names = per_atom[-1]
        if o.name not in names:
            per_atom[-1] = (a, names + (o.name,))
    labels = [f"{s}{i + 1}" for i, s in enumerate(sym)]
    lines = []
    for a, names in per_atom:
        ls = sorted({model.orbitals[model.select(atom=a)[0]].l} | {o.l for o in model.orbitals if o.atom == a})
        full = all(set(ORBITAL_NAMES[l]) <= set(names) for l in ls) and len(names) == sum(2 * l + 1 for l in ls)
        spec = ";".join(letters[l] for l in ls) if full else ";".join(names)
        lines.append(f"{labels[a]}:{spec}")
    # check the model order is the Wannier90 order of these lines
    expect = []
    for a, names in per_atom:
        ls = sorted({o.l for o in model.orbitals if o.atom == a})
        for l in ls:
            for nm in ORBITAL_NAMES[l]:
                if nm in names:
                    expect.append((a, nm))
    if expect != [(o.atom, o.name) for o in model.orbitals if o.spin in (None, "up")]:
        raise TBError("model orbital order cannot be expressed as a Wannier90 projections block")
    return labels, lines


def write_win(path, atoms: Atoms, labels: list[str], projections: list[str], num_wann: int, mp_grid=None,
              spinors: bool = False, extra: dict | None = None) -> None:
    """Write a minimal ``.win`` (lattice, atoms_cart, projections, num_wann, mp_grid, extra keywords)."""
    with open(path, "w") as f:
        f.write(f"num_wann = {num_wann}\n")
        if mp_grid is not None:
            f.write(f"mp_grid = {mp_grid[0]} {mp_grid[1]} {mp_grid[2]}\n")
        if spinors:
            f.write("spinors = true\n")
        for k, v in (extra or {}).items():
            f.write(f"{k} = {v}\n")
        f.write("\nbegin unit_cell_cart\nang\n")
        for v in atoms.cell.array:
            f.write(f"  {v[0]:16.10f} {v[1]:16.10f} {v[2]:16.10f}\n")
        f.write("end unit_cell_cart\n\nbegin atoms_cart\nang\n")
        for lb, p in zip(labels, atoms.positions):
            f.write(f"  {lb:6s} {p[0]:16.10f} {p[1]:16.10f} {p[2]:16.10f}\n")
        f.write("end atoms_cart\n\nbegin projections\n")
        for ln in projections:
            f.write(f"  {ln}\n")
        f.write("end projections\n")


def write_w90_model(model: TBModel, seed, mp_grid=(4, 4, 1), formats=("hr",), wsvec: bool = False,
                    centres: bool = True, win: bool = True, extra: dict | None = None) -> dict[str, Path]:
    """Write a model as the Wannier90 files of ``seed`` (``seed_hr.dat``/``seed_tb.dat``, ``seed.win``,
    ``seed_centres.xyz``, optionally ``seed_wsvec.dat``), folded onto the Wigner–Seitz supercell of ``mp_grid``
    exactly as Wannier90 writes it (non-trivial degeneracies on the supercell boundary).  Returns the paths.
    """
    seed = str(seed)
    R, Hf, ndeg = fold_to_grid(model, mp_grid)
    out = {}
    if "hr" in formats:
        out["hr"] = Path(seed + "_hr.dat")
        write_hr(out["hr"], R, Hf, ndeg)
    if "tb" in formats:
        out["tb"] = Path(seed + "_tb.dat")
        write_tb(out["tb"], model.lattice, R, Hf, ndeg, model.centres)
    if centres:
        out["centres"] = Path(seed + "_centres.xyz")
        write_centres(out["centres"], model.centres, model.atoms)
    if win and model.atoms is not None:
        labels, lines = _projection_lines(model)
        out["win"] = Path(seed + ".win")
        write_win(out["win"], model.atoms, labels, lines, model.num_wann, mp_grid, spinors=model.spinor, extra=extra)
    if wsvec:
        out["wsvec"] = Path(seed + "_wsvec.dat")
        write_wsvec(out["wsvec"], R, mdrs_shifts(model.lattice, model.centres, R, mp_grid), model.num_wann)
    return out


# ---------------------------------------------------------------------------------------------------- wannierberri
@contextlib.contextmanager
def _quiet():
    """Silence wannierberri's console output (it prints progress to stdout and import notes to stderr)."""
    import logging

    sink = io.StringIO()
    prev = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            yield sink
    finally:
        logging.disable(prev)


def _import_wannierberri():
    with _quiet():
        import wannierberri  # noqa: F401
        from wannierberri.system import System_R
    return System_R


def _wb_load(layout: HRLayout, seed_path: Path, lattice, centres):
    System_R = _import_wannierberri()
    try:
        with _quiet():
            if layout.kind == "hr":
                name = str(layout.path)
                if not name.endswith("_hr.dat"):
                    tmp = tempfile.mkdtemp(prefix="wannmag_hr_")
                    link = os.path.join(tmp, "model_hr.dat")
                    os.symlink(os.path.abspath(name), link)
                    seedname = link[:-7]
                else:
                    seedname = name[:-7]
                system = System_R.from_hr_file(seedname, wannier_centers_cart=np.asarray(centres, float),
                                               real_lattice=np.asarray(lattice, float))
            else:
                kw = {} if centres is None else {"wannier_centers_cart": np.asarray(centres, float)}
                system = System_R.from_tb_dat(tb_file=str(layout.path), **kw)
    except TBError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure is one line naming the file
        msg = str(exc).splitlines()[0] if str(exc) else ""
        raise TBFileError(f"{layout.path}: wannierberri could not read the file ({type(exc).__name__}: {msg})") from None
    return system


def to_wannierberri(model: TBModel):
    """A wannierberri ``System_R`` holding the same H(R) (for cross-checks and benchmarks)."""
    System_R = _import_wannierberri()
    from wannierberri.fourier.rvectors import Rvectors

    with _quiet():
        s = System_R()
        s.real_lattice = np.array(model.lattice)
        s.num_wann = model.num_wann
        s.set_R_mat("Ham", model.H.copy())
        s.wannier_centers_cart = model.centres.copy()
        s.clear_cached_wcc()
        s.rvec = Rvectors(lattice=s.real_lattice, iRvec=model.R.copy(), shifts_left_red=s.wannier_centers_red)
        s.do_at_end_of_init()
    return s


def _hermiticity(layout: HRLayout, R: np.ndarray, H: np.ndarray, tol: float) -> None:
    index = {tuple(r): k for k, r in enumerate(R)}
    for k, r in enumerate(R):
        if tuple(-r) not in index:
            raise TBFileError(f"{layout.path}:{layout.line_of_R(k)}: R = {tuple(int(x) for x in r)} has no partner −R "
                              "(H(−R) = H(R)† cannot be checked)")
    fin = np.isfinite(H)
    if not fin.all():
        k, m, n = (int(x) for x in np.argwhere(~fin)[0])
        raise TBFileError(f"{layout.path}:{layout.line_of(k, m, n)}: H_{m + 1},{n + 1}(R={tuple(int(x) for x in R[k])}) "
                          "is not a finite number (NaN or inf)")
    partner = np.array([index[tuple(-r)] for r in R])
    diff = np.abs(H - H[partner].conj().transpose(0, 2, 1))
    worst = float(diff.max())
    if not worst <= tol:
        k, m, n = np.unravel_index(int(np.argmax(diff)), diff.shape)
        kp = partner[k]
        raise TBFileError(
            f"{layout.path}:{layout.line_of(k, m, n)}: H(R) is not Hermitian: H_{m + 1},{n + 1}(R={tuple(int(x) for x in R[k])}) = "
            f"{H[k, m, n].real:.6f}{H[k, m, n].imag:+.6f}i but conj H_{n + 1},{m + 1}(−R) (line "
            f"{layout.line_of(kp, n, m)}) = {H[kp, n, m].real:.6f}{-H[kp, n, m].imag:+.6f}i, |difference| "
            f"{worst:.3g} eV > tolerance {tol:g} eV")


# ---------------------------------------------------------------------------------------------------- loading
def _check_regular(path: Path) -> None:
    """Refuse a FIFO, device or socket before anything opens it (reading one blocks or never ends)."""
    kind = special_file(path)
    if kind:
        raise TBFileError(f"{path}: is {kind}, not a Wannier90 file")


def _find(seed: str, suffixes) -> Path | None:
    for s in suffixes:
        p = Path(seed + s)
        if p.exists():
            _check_regular(p)
            return p
    return None


def _win_for(seed: str) -> Path | None:
    p = _find(seed, [".win"])
    if p is None:
        base = re.sub(r"[._](up|dn|down)$", "", seed)
        if base != seed:
            p = _find(base, [".win"])
    return p


def read_w90_seed(seed, *, centre_tol: float = 0.5, mdrs: bool | None = None, hermitian_tol: float = 1e-4,
                  spin: str | None = None, prefer: str = "hr", win=None) -> TBModel:
    """Load one Wannier90 model ``seed`` (``seed_hr.dat`` or ``seed_tb.dat`` + ``seed.win`` + ``seed_centres.xyz``
    [+ ``seed_wsvec.dat``]) through wannierberri; see the module docstring for the checks and conventions.

    mdrs : apply ``seed_wsvec.dat`` (None: if the file exists).
    spin : ``"up"``/``"down"`` for one channel of a collinear pair.
    win : an explicit ``.win`` path (default ``seed.win``, or the ``.win`` of the seed without ``_up``/``_dn``).
    """
    seed = str(seed)
    for suf in ("_hr.dat", "_tb.dat", ".win"):
        if seed.endswith(suf):
            seed = seed[:-len(suf)]
    order = ["_hr.dat", "_tb.dat"] if prefer == "hr" else ["_tb.dat", "_hr.dat"]
    hfile = _find(seed, order)
    if hfile is None:
        raise TBFileError(f"{seed}: no Wannier90 Hamiltonian ({seed}_hr.dat or {seed}_tb.dat)")
    winp = Path(win) if win is not None else _win_for(seed)
    if winp is None:
        raise TBFileError(f"{seed}.win: no such file (the .win with the projections block is needed to assign "
                          "Wannier functions to atoms and orbitals)")
    wd = read_win(winp)
    specs = parse_projections(wd)
    nw_win = wd.num_wann
    if nw_win is not None and len(specs) != nw_win:
        raise TBFileError(f"{winp}: the projections block defines {len(specs)} Wannier functions but num_wann = "
                          f"{nw_win}")
    kind = "hr" if hfile.name.endswith("_hr.dat") else "tb"
    check = check_hr_file if kind == "hr" else check_tb_file
    layout = check(hfile, expected_num_wann=len(specs), expected_from=f"{winp} (projections)")
    if wd.mp_grid is not None:
        total = float(np.sum(1.0 / layout.ndegen))
        nk = int(np.prod(wd.mp_grid))
        if abs(total - nk) > 1e-6 * nk:
            raise TBFileError(f"{hfile}: Σ 1/degeneracy over the {layout.nrpts} R vectors is {total:.6g} but the "
                              f"mp_grid {wd.mp_grid} of {winp} has {nk} k-points; wrong degeneracy list?")
    if layout.lattice is not None and not np.allclose(layout.lattice, wd.lattice, atol=1e-4):
        raise TBFileError(f"{hfile}: lattice vectors differ from those of {winp}")
    cfile = _find(seed, ["_centres.xyz"])
    if cfile is not None:
        centres = read_centres_xyz(cfile, layout.num_wann)
        csource = str(cfile)
    elif kind == "tb":
        centres, csource = None, str(hfile)
    else:
        centres, csource = np.array([s.site for s in specs]), f"{winp} (projection sites; no {seed}_centres.xyz)"
    system = _wb_load(layout, hfile, wd.lattice, centres)
    R = np.array(system.rvec.iRvec, dtype=int)
    if R.shape != layout.R.shape or np.any(R != layout.R):
        raise TBFileError(f"{hfile}: R vectors read by wannierberri differ from the file layout")  # pragma: no cover
    H = np.array(system.Ham_R, dtype=complex)
    _hermiticity(layout, R, H, hermitian_tol)
    if centres is None:
        centres = np.array(system.wannier_centers_cart, float)
        if not np.all(np.isfinite(centres)):
            raise TBFileError(f"{hfile}: Wannier centres (position matrix) are not finite numbers")
    if not (np.isfinite(centre_tol) and centre_tol > 0):
        raise TBError(f"the centre tolerance must be a positive number of Å, got {centre_tol}")
    orbitals = _assign(wd, specs, centres, centre_tol, csource)
    H = _projection_axes_to_global(winp, specs, orbitals, H)
    wsfile = _find(seed, ["_wsvec.dat"])
    applied = False
    if mdrs is None:
        mdrs = wsfile is not None
    if mdrs:
        if wsfile is None:
            raise TBFileError(f"{seed}_wsvec.dat: no such file (needed for MDRS)")
        R, H = apply_mdrs(R, H, read_wsvec(wsfile, R, layout.num_wann))
        applied = True
    perm = _gpaw_to_w90_order(specs)
    if perm is not None:  # GPAW-written projections: Wannier90 orbital order within every shell
        orbitals = [orbitals[i] for i in perm]
        centres = np.asarray(centres)[perm]
        H = H[:, perm][:, :, perm]
    model = TBModel(R, H, wd.lattice, centres=centres, orbitals=orbitals, atoms=wd.atoms,
                    name=Path(seed).name, spin=spin, hermitian_tol=max(hermitian_tol, 1e-6), source=str(hfile))
    model.win = wd
    model.mdrs_applied = applied
    model.fermi_energy_hint = wd.fermi_energy
    return model


@dataclass
class W90Models:
    """Wannier90 models found at a path: ``collinear`` pairs (up, down seeds) and ``single`` seeds."""

    collinear: list[tuple[str, str]]
    single: list[str]


def find_w90_models(path) -> W90Models:
    """Wannier90 seeds at ``path``: a directory, a seedname prefix, or one of the seed's files."""
    p = Path(path)
    seeds: list[str] = []
    if p.is_dir():
        for f in sorted(p.iterdir()):
            for suf in ("_hr.dat", "_tb.dat"):
                if f.name.endswith(suf):
                    seeds.append(str(f)[:-len(suf)])
    else:
        s = str(p)
        for suf in ("_hr.dat", "_tb.dat", ".win", "_centres.xyz", "_wsvec.dat"):
            if s.endswith(suf):
                s = s[:-len(suf)]
                break
        for cand in (s, s + "_up", s + "_dn", s + "_down", s + ".up", s + ".dn"):
            if _find(cand, ["_hr.dat", "_tb.dat"]):
                seeds.append(cand)
        if not seeds and not p.exists():
            raise TBFileError(f"{path}: no such file, directory or Wannier90 seed")
    seeds = sorted(set(seeds))
    if not seeds:
        raise TBFileError(f"{path}: no Wannier90 Hamiltonian (*_hr.dat or *_tb.dat) found")
    pairs, used = [], set()
    for s in seeds:
        m = re.match(r"(.*)[._]up$", s)
        if m:
            for dn in (m.group(1) + "_dn", m.group(1) + "_down", m.group(1) + ".dn", m.group(1) + ".down"):
                if dn in seeds:
                    pairs.append((s, dn))
                    used.update({s, dn})
                    break
    return W90Models(collinear=pairs, single=[s for s in seeds if s not in used])


def gunzipped(src) -> Path | None:
    """If directory ``src`` holds gzip-compressed Wannier90 files (``*_hr.dat.gz`` …, as shipped in ``data/dft``),
    a temporary directory with all its Wannier90 files decompressed (removed at interpreter exit); else None."""
    src = Path(src)
    if not src.is_dir() or not any(f.name.endswith((".dat.gz", ".xyz.gz", ".win.gz")) for f in src.iterdir()):
        return None
    import atexit
    import shutil
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="wannmag_w90_"))
    atexit.register(shutil.rmtree, tmp, True)
    for f in src.iterdir():
        if not f.is_file():
            continue
        if f.suffix == ".gz":
            try:
                with gzip.open(f, "rb") as fi, open(tmp / f.name[:-3], "wb") as fo:
                    shutil.copyfileobj(fi, fo)
            except (OSError, EOFError) as exc:
                raise TBFileError(f"{f}: not a readable gzip file ({type(exc).__name__})") from None
        elif f.suffix in (".dat", ".win", ".xyz", ".json", ".wout"):
            shutil.copy(f, tmp / f.name)
    return tmp


def read_w90(path, *, centre_tol: float = 0.5, mdrs: bool | None = None, hermitian_tol: float = 1e-4,
             prefer: str = "hr", kind: str = "auto") -> TBModel | CollinearTBModel:
    """Load the Wannier90 model at ``path`` (directory, seedname or file; gzip-compressed files in a directory are
    read too).

    A spin pair (``S_up``/``S_dn``) gives a :class:`CollinearTBModel` (unless ``kind="single"``), otherwise a
    :class:`TBModel`.  If several candidates exist, the collinear pair is preferred; ambiguous choices are errors.
    """
    p = Path(path)
    tmp = gunzipped(p if p.is_dir() else p.parent) if (p.is_dir() or p.parent.is_dir()) else None
    if tmp is not None:
        path = tmp if p.is_dir() else tmp / p.name
    found = find_w90_models(path)
    kw = dict(centre_tol=centre_tol, mdrs=mdrs, hermitian_tol=hermitian_tol, prefer=prefer)
    if kind in ("auto", "collinear") and found.collinear:
        if len(found.collinear) > 1:
            raise TBFileError(f"{path}: several spin pairs ({', '.join(Path(u).name for u, _ in found.collinear)}); "
                              "give the seedname")
        up, dn = found.collinear[0]
        mu = read_w90_seed(up, spin="up", **kw)
        md = read_w90_seed(dn, spin="down", **kw)
        return CollinearTBModel(mu, md, name=re.sub(r"[._]up$", "", Path(up).name))
    if kind == "collinear":
        raise TBFileError(f"{path}: no spin pair (S_up_hr.dat and S_dn_hr.dat) found")
    singles = found.single or [s for pair in found.collinear for s in pair]
    if len(singles) > 1:
        raise TBFileError(f"{path}: several Wannier90 models ({', '.join(Path(s).name for s in singles)}); "
                          "give the seedname")
    return read_w90_seed(singles[0], **kw)
