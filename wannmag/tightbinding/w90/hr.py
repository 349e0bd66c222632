"""Wannier90 ``_hr.dat`` and ``_tb.dat``: structural checks (one :class:`TBFileError` naming file and line), the
numbers of an ``_hr.dat``, the Fourier sum of :func:`hr_eigenvalues` and the check H(−R) = H(R)† (eV)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..model import TBFileError, TBModel
from ._files import _int, _lines
from .mdrs import apply_mdrs


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


