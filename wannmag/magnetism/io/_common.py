"""What the exchange-file formats share: errors and warnings, the bond orientation rule, the averaging of the
two listed directions, line parsing, site labels, periodicity and single-ion helpers."""

from __future__ import annotations

import re
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np

from ..._atomic import special_file
from ...errors import WannmagError
from ..spinmodel import MEV_PER_K, SpinModel

_MEV_PER_UNIT = {"meV": 1.0, "eV": 1000.0, "K": MEV_PER_K, "J": 1.0 / 1.602176634e-22, "Ry": 13605.693122994}


class ExchangeFileError(WannmagError):
    """A TB2J, Vampire, mcsolver or magnopy file cannot be read (message: file, line, problem)."""


class ExchangeFileWarning(UserWarning):
    """Something of the model cannot be represented in the target format, or an input file is inconsistent."""


def _warn(msg: str) -> None:
    warnings.warn(msg, ExchangeFileWarning, stacklevel=3)



def dmi_matrix(D) -> np.ndarray:
    """Antisymmetric matrix J^A with S_i·J^A·S_j = D·(S_i × S_j)."""
    Dx, Dy, Dz = (float(x) for x in D)
    return np.array([[0.0, Dz, -Dy], [-Dz, 0.0, Dx], [Dy, -Dx, 0.0]])


def _canonical(i: int, j: int, R, J):
    """The stored direction of the bond (i, j, R) ≡ (j, i, −R) (i < j, or i = j and R lexicographically positive)
    and the tensor in that direction (transposed if the bond was reversed) — the SpinModel's rule."""
    R = tuple(int(x) for x in R)
    if i < j or (i == j and R > (0, 0, 0)):
        return i, j, R, J
    return j, i, tuple(-x for x in R), J.T


def _dmi_vector(J) -> np.ndarray:
    A = 0.5 * (J - J.T)
    return np.array([A[1, 2], A[2, 0], A[0, 1]])


# ---------------------------------------------------------------------------------------------------- helpers
def _read_lines(path) -> tuple[Path, list[str]]:
    path = Path(path)
    kind = special_file(path)
    if kind:
        raise ExchangeFileError(f"{path}: is {kind}, not an exchange file")
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ExchangeFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ExchangeFileError(f"{path}: is a directory, not a file") from None
    except UnicodeDecodeError:
        raise ExchangeFileError(f"{path}: not a text file") from None
    if not text.strip():
        raise ExchangeFileError(f"{path}: file is empty")
    return path, text.splitlines()


def _num(tok: str, path, lineno: int, what: str = "value") -> float:
    try:
        x = float(tok)
    except (TypeError, ValueError):
        raise ExchangeFileError(f"{path}, line {lineno}: {what} {tok!r} is not a number") from None
    if not np.isfinite(x):
        raise ExchangeFileError(f"{path}, line {lineno}: {what} {tok!r} is not finite")
    return x


def _int(tok: str, path, lineno: int, what: str = "index") -> int:
    try:
        return int(tok)
    except (TypeError, ValueError):
        raise ExchangeFileError(f"{path}, line {lineno}: {what} {tok!r} is not an integer") from None


def _line(lines: list[str], k: int, path, what: str) -> str:
    if k >= len(lines):
        raise ExchangeFileError(f"{path}, line {len(lines)}: file ends before {what} (truncated?)")
    return lines[k]


def _wrapped(model: SpinModel) -> tuple[np.ndarray, np.ndarray]:
    """Fractional site positions wrapped into [0, 1) and the integer shifts t with frac = wrapped + t."""
    frac = np.asarray([s.position for s in model.sites]) @ np.linalg.inv(model.cell)
    shift = np.floor(frac + 1e-9).astype(int)
    wrapped = frac - shift
    wrapped[np.abs(wrapped) < 1e-12] = 0.0
    return wrapped, shift


def _bond_list(model: SpinModel, shift: np.ndarray):
    """Bonds (i, j, R in the wrapped cell, J) — R adjusted so that bond vectors are unchanged."""
    return [(b.i, b.j, tuple(int(x) for x in np.array(b.R) + shift[b.j] - shift[b.i]), b.J) for b in model.bonds]


def _labels(model: SpinModel, prefer_site_labels: bool = True) -> list[str]:
    """Unique labels: the site labels if usable, otherwise element + running number per element (Cr1, Cr2, I1)."""
    labels = [s.label for s in model.sites]
    ok = all(labels) and len(set(labels)) == len(labels) and all(re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", x)
                                                                    for x in labels)
    if prefer_site_labels and ok:
        return labels
    count: dict[str, int] = defaultdict(int)
    out = []
    for s in model.sites:
        count[s.element] += 1
        out.append(f"{s.element}{count[s.element]}")
    return out


def _element_of(label: str) -> str:
    m = re.match(r"[A-Z][a-z]?", label)
    return m.group(0) if m else "X"


def _collect(entries, double_counting: bool, source: str, tol: float, code: str, unit: str,
             strict: bool = False) -> dict:
    """Group directed entries (i, j, R, J, lineno) into canonical bonds.

    With double counting every pair should be listed twice, as (i,j,R) with J and (j,i,−R) with Jᵀ: both are
    oriented canonically, checked against each other (warning above ``tol``) and averaged.  Without double counting
    the listed terms add up.  Returns {(i, j, R): J_ext in the canonical direction}.
    """
    groups: dict = defaultdict(list)
    for i, j, R, J, lineno in entries:
        R = tuple(int(x) for x in R)
        if i == j and not any(R):
            _warn(f"{source}, line {lineno}: interaction of site {i} with itself in the same cell ignored "
                  f"(not an exchange bond)")
            continue
        ci, cj, cR, cJ = _canonical(i, j, R, np.asarray(J, float))
        groups[(ci, cj, cR)].append((cJ, lineno, (i, j, R) == (ci, cj, cR)))
    out = {}
    mismatched, single, worst = [], 0, (0.0, None)
    for key, items in groups.items():
        Js = np.array([x[0] for x in items])
        if double_counting:
            if len(items) == 1:
                single += 1
            dev = float(np.max(np.ptp(Js, axis=0))) if len(items) > 1 else 0.0
            if dev > tol:
                mismatched.append(key)
                if dev > worst[0]:
                    worst = (dev, items[0][1])
            out[key] = Js.mean(axis=0)
        else:
            out[key] = Js.sum(axis=0)
    if mismatched:
        _warn(f"{source}: {len(mismatched)} bond(s) differ between the (i,j,R) and (j,i,-R) entries by more than "
              f"{tol:.3g} {unit} (worst {worst[0]:.3g} {unit}, line {worst[1]}); the two directions were averaged")
    if single and strict:
        raise ExchangeFileError(f"{source}: {single} bond(s) listed in one direction only, although {code} lists "
                                "every pair in both directions: the file is truncated or edited")
    if single:
        _warn(f"{source}: {single} bond(s) listed in one direction only although {code} lists both; "
              f"the reverse was assumed equal (transposed)")
    return out


def _uniaxial(A: np.ndarray, rtol: float = 1e-6):
    """If the symmetric part of A is a_0·1 + a_1 e eᵀ, return (a_0, a_1, e); otherwise None."""
    Asym = 0.5 * (A + A.T)
    w, v = np.linalg.eigh(Asym)
    scale = max(np.max(np.abs(w)), 1e-300)
    if np.max(np.abs(w)) < 1e-14:
        return 0.0, 0.0, np.array([0.0, 0.0, 1.0])
    if abs(w[0] - w[1]) <= rtol * scale + 1e-14 and abs(w[1] - w[2]) <= rtol * scale + 1e-14:
        return float(w.mean()), 0.0, np.array([0.0, 0.0, 1.0])
    if abs(w[0] - w[1]) <= rtol * scale + 1e-14:  # unique eigenvalue w[2]
        a0, a1, e = 0.5 * (w[0] + w[1]), w[2] - 0.5 * (w[0] + w[1]), v[:, 2]
    elif abs(w[1] - w[2]) <= rtol * scale + 1e-14:  # unique eigenvalue w[0]
        a0, a1, e = 0.5 * (w[1] + w[2]), w[0] - 0.5 * (w[1] + w[2]), v[:, 0]
    else:
        return None
    k = int(np.argmax(np.abs(e)))
    e = e if e[k] > 0 else -e
    return float(a0), float(a1), e


def _warn_field(model: SpinModel, code: str) -> None:
    if np.any(model.b_field):
        _warn(f"{code}: the magnetic field B = {model.b_field.tolist()} T is not written (set it in the {code} "
              f"input instead)")


def _pbc_tag(model: SpinModel) -> str:
    return "wannmag pbc: " + " ".join("T" if x else "F" for x in model.pbc)


def _pbc_from_tag(lines) -> tuple | None:
    """The periodicity recorded by a wannmag writer in a comment/information line, if any."""
    for line in lines:
        m = re.search(r"wannmag pbc:\s*([TF])\s+([TF])\s+([TF])", line)
        if m:
            return tuple(x == "T" for x in m.groups())
    return None


def _new_model(cell, sites, pbc, meta) -> SpinModel:
    return SpinModel(cell=np.asarray(cell, float), sites=sites, pbc=tuple(bool(x) for x in pbc), meta=meta)


def _validated(model: SpinModel, path) -> SpinModel:
    """The model read from ``path`` after :meth:`SpinModel.validate` (spins, finite and bounded values, cell)."""
    try:
        return model.validate(str(path))
    except WannmagError as exc:
        raise ExchangeFileError(str(exc)) from None


def _dipolar_note(model: SpinModel) -> str:
    info = model.dipolar_info
    d = info.get("delta_meV_per_ion")
    size = f"ΔE_dip = {d:+.4f} meV/ion" if isinstance(d, (int, float)) else "size not recorded"
    order = f", order {info['order']}" if info.get("order") else ""
    return f"{size}{order}"


def _warn_dipolar(model: SpinModel, code: str, written: bool) -> None:
    """Say what happens to the model's labelled dipolar single-ion part (``SpinModel.single_ion_dipolar``)."""
    if not model.has_dipolar_single_ion:
        return
    if written:
        _warn(f"{code}: the single-ion terms written are the model's total, including its dipolar (shape) term as an "
              f"effective uniaxial anisotropy ({_dipolar_note(model)}); do not add {code}'s own dipolar "
              "interaction on top of it")
    else:
        _warn(f"{code}: the model's dipolar (shape) term ({_dipolar_note(model)}) is part of its single-ion terms, "
              f"which {code} does not hold: it is not exported")


def _guess_pbc(cell: np.ndarray, positions: np.ndarray, min_gap: float = 10.0) -> tuple[bool, bool, bool]:
    """Slab (pbc False along a3) if ``positions`` leave an empty gap of at least ``min_gap`` Å along the normal of
    the a1–a2 plane (10 Å for magnetic sites only: bulk layered magnets have ~6.6 Å between magnetic planes;
    5 Å when all atoms are known, as in the structures layer)."""
    normal = np.cross(cell[0], cell[1])
    if np.linalg.norm(normal) < 1e-9 or len(positions) == 0:
        return (True, True, True)
    normal /= np.linalg.norm(normal)
    height = abs(float(cell[2] @ normal))
    z = np.sort(np.mod(positions @ normal, height))
    gaps = np.diff(np.concatenate([z, [z[0] + height]]))
    return (True, True, not bool(gaps.max() >= min_gap))

