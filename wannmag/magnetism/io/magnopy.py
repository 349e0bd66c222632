"""magnopy model file (txt): :func:`magnopy_convention`, :func:`write_magnopy`, :func:`read_magnopy`.

magnopy model file (txt, :func:`magnopy_convention`, read and write)
    ``Notation`` section with Double-counting, Spin-normalized, Exchange-factor c, On-site-factor c_os:
    H = c Σ_{listed (i,j,R)} S_i·J·S_j + c_os Σ_i S_i·A·S_i, both directions listed when double counting, unit
    spins when normalised, units from the section headers (meV, eV, J, K, Ry).  Source: the model-file
    documentation of magnopy 0.1 (``docs/source/user-guide/input/model-file/*.inc``, repository
    marcomarino123/magnopy, a fork of adrybakov/magnopy) and its reader ``src/magnopy/io/txt/internal.py``; the same
    four properties appear as ``Convention(multiple_counting, spin_normalized, c21, c22)`` in current magnopy.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..._atomic import atomic_write_text as _atomic_write
from ..spinmodel import Convention, Site, SpinModel
from ._common import (ExchangeFileError, dmi_matrix, _MEV_PER_UNIT, _bond_list, _collect, _element_of, _guess_pbc,
                      _int, _labels, _new_model, _num, _pbc_from_tag, _pbc_tag, _read_lines, _validated,
                      _warn_dipolar, _warn_field, _wrapped)


def magnopy_convention(double_counting: bool = True, spin_normalized: bool = False, exchange_factor: float = 0.5,
                       unit: str = "meV") -> Convention:
    """The :class:`Convention` of a magnopy ``Notation`` section: H = c Σ S_i·J·S_j over the listed pairs (both
    directions if ``double_counting``), unit spins if ``spin_normalized``, c = ``exchange_factor``, J in ``unit``."""
    c = float(exchange_factor)
    if c == 0:
        raise ExchangeFileError("magnopy notation: exchange factor 0 makes the exchange vanish")
    return Convention(f"magnopy (dc={double_counting}, normalized={spin_normalized}, c={c:g}, {unit})",
                      sign=1 if c > 0 else -1, double_counting=bool(double_counting),
                      unit_spins=bool(spin_normalized), prefactor=abs(c), unit=unit)


#: default notation written by :func:`write_magnopy` (the example of magnopy's documentation): both directions,
#: spins of length S, factor 1/2 — the listed J then equals the internal J (meV, J > 0 AF).
MAGNOPY_DEFAULT = magnopy_convention(True, False, 0.5, "meV")



def write_magnopy(model: SpinModel, path, convention: Convention = MAGNOPY_DEFAULT,
                  onsite_factor: float = 1.0) -> Path:
    """Write a magnopy model file (txt) with the given notation.

    ``convention`` must come from :func:`magnopy_convention` (its sign·prefactor is the Exchange-factor).  Internal
    → magnopy: J_m = convention.from_internal(J, S_i, S_j), listed in both directions (Jᵀ for the reverse) when it
    double counts; on-site A_m = A·(S² if spin-normalized)/(onsite_factor · unit).  The field is not written.
    """
    if convention.unit not in ("meV", "eV", "J", "K"):
        raise ExchangeFileError(f"magnopy: unit {convention.unit!r} cannot be written (meV, eV, J, K)")
    if onsite_factor == 0:
        raise ExchangeFileError("magnopy: on-site factor 0 makes the single-ion terms vanish")
    _warn_field(model, "magnopy")
    _warn_dipolar(model, "magnopy", written=True)
    frac, shift = _wrapped(model)
    labels = _labels(model)
    bar, sub = "=" * 80, "-" * 80
    true = {True: "true", False: "false"}
    out = [f"# magnopy model file written by wannmag ({_pbc_tag(model)})", bar, "Cell Angstrom"]
    out += [" ".join(f"{x:16.10f}" for x in row) for row in model.cell]
    out += [bar, "Atoms Relative", "name r1 r2 r3 s g"]
    out += [f"{lab} {f[0]:.12f} {f[1]:.12f} {f[2]:.12f} {s.spin:.6f} {s.g:.6f}"
            for lab, f, s in zip(labels, frac, model.sites)]
    out += [bar, "Notation", f"Double-counting {true[convention.double_counting]}",
            f"Spin-normalized {true[convention.unit_spins]}",
            f"Exchange-factor {convention.sign * convention.prefactor:.12g}", f"On-site-factor {onsite_factor:.12g}",
            bar, f"Exchange {convention.unit}", sub]
    for i, j, R, J in _bond_list(model, shift):
        Jm = convention.from_internal(J, model.sites[i].spin, model.sites[j].spin)
        terms = [(i, j, R, Jm)]
        if convention.double_counting:
            terms.append((j, i, tuple(-x for x in R), Jm.T))
        for a, b, RR, M in terms:
            out.append(f"{labels[a]} {labels[b]} {RR[0]} {RR[1]} {RR[2]}")
            out.append("Matrix")
            out += [" ".join(f"{x:.12e}" for x in M[r]) for r in range(3)]
            out.append(sub)
    out += [bar, f"On-site {convention.unit}", sub]
    u = _MEV_PER_UNIT[convention.unit]
    for lab, s, A in zip(labels, model.sites, model.single_ion):
        Am = 0.5 * (A + A.T) * (s.spin ** 2 if convention.unit_spins else 1.0) / (onsite_factor * u)
        out.append(lab)
        out.append(" ".join(f"{x:.12e}" for x in (Am[0, 0], Am[1, 1], Am[2, 2], Am[0, 1], Am[0, 2], Am[1, 2])))
        out.append(sub)
    out.append(bar)
    path = Path(path)
    _atomic_write(path, "\n".join(out) + "\n")
    return path


_TRUE = {"true", "t", "1", "yes", "y"}
_FALSE = {"false", "f", "0", "no", "n"}


def _unit_keyword(word: str, path, lineno: int) -> str:
    w = word.lower()
    for key, unit in (("m", "meV"), ("e", "eV"), ("j", "J"), ("k", "K"), ("r", "Ry")):
        if w.startswith(key):
            return unit
    raise ExchangeFileError(f"{path}, line {lineno}: unknown energy unit {word!r} (meV, eV, J, K, Ry)")


def _magnopy_sections(path, lines) -> dict:
    """The sections of a magnopy model file by name: {name: [(line number, text), ...]}, header line first."""
    data = []
    for q, raw in enumerate(lines, start=1):
        line = raw.split("#")[0].strip()
        if line:
            data.append((q, line))
    sections: list[tuple[str, list]] = []
    for lineno, line in data:
        if re.fullmatch(r"={10,}", line):
            sections.append(("", []))
            continue
        if not sections:
            raise ExchangeFileError(f"{path}, line {lineno}: text before the first '==========' separator")
        if not sections[-1][1]:
            sections[-1] = (line.split()[0].lower(), [(lineno, line)])
        else:
            sections[-1][1].append((lineno, line))
    sec = {}
    for name, body in sections:
        if not body:
            continue
        if name.startswith("cell"):
            sec["cell"] = body
        elif name.startswith("atoms"):
            sec["atoms"] = body
        elif name.startswith("notation"):
            sec["notation"] = body
        elif name.startswith("exchange"):
            sec["exchange"] = body
        elif name.startswith("on-site") or name.startswith("onsite"):
            sec["on-site"] = body
        else:
            lineno = body[0][0]
            if name not in ("spiral-vector", "cone-axis"):
                raise ExchangeFileError(f"{path}, line {lineno}: unknown section {body[0][1]!r} (Cell, Atoms, "
                                        f"Notation, Exchange, On-site)")
    for need in ("cell", "atoms", "notation"):
        if need not in sec:
            raise ExchangeFileError(f"{path}: no '{need.capitalize()}' section — not a magnopy model file "
                                    f"(or truncated)")
    return sec


def _magnopy_cell(path, sec) -> np.ndarray:
    """The lattice vectors (Å, rows) of the Cell section (scale and Bohr unit applied)."""
    body = sec["cell"]
    head = body[0][1].split()
    scale = 1.0
    length_unit = 1.0
    for w in head[1:]:
        if w[0].isalpha():
            length_unit = 0.529177210903 if w.lower().startswith("b") else 1.0
        else:
            scale = _num(w, path, body[0][0], "cell scale")
    if len(body) < 4:
        raise ExchangeFileError(f"{path}, line {body[-1][0]}: Cell section needs three lattice vectors")
    cell = np.array([[_num(t, path, ln, "cell component") for t in text.split()[:3]] for ln, text in body[1:4]])
    if cell.shape != (3, 3):
        raise ExchangeFileError(f"{path}, line {body[1][0]}: lattice vectors need 3 numbers each")
    cell = cell * scale * length_unit
    return cell


def _magnopy_atoms(path, sec, cell) -> tuple[list[str], list[Site]]:
    """Labels and sites (position Å, element, S, g) of the Atoms section."""
    body = sec["atoms"]
    head = body[0][1].split()
    mode = head[1].lower() if len(head) > 1 else "relative"
    if len(body) < 2:
        raise ExchangeFileError(f"{path}, line {body[0][0]}: Atoms section without a column header")
    cols = [c.lower() for c in body[1][1].split()]
    if "name" not in cols:
        raise ExchangeFileError(f"{path}, line {body[1][0]}: Atoms header needs a 'name' column")
    labels, sites = [], []
    for ln, text in body[2:]:
        toks = text.split()
        if len(toks) != len(cols):
            raise ExchangeFileError(f"{path}, line {ln}: {len(toks)} fields for {len(cols)} columns "
                                    f"({' '.join(cols)})")
        row = dict(zip(cols, toks))
        if all(c in row for c in ("r1", "r2", "r3")):
            pos = np.array([_num(row[c], path, ln, c) for c in ("r1", "r2", "r3")]) @ cell
        elif all(c in row for c in ("x", "y", "z")):
            pos = np.array([_num(row[c], path, ln, c) for c in ("x", "y", "z")]) * \
                (0.529177210903 if mode.startswith("b") else 1.0)
        else:
            raise ExchangeFileError(f"{path}, line {ln}: atom needs r1 r2 r3 or x y z")
        if "s" in row and row["s"] != "-":
            S = abs(_num(row["s"], path, ln, "spin"))
        elif all(c in row for c in ("sx", "sy", "sz")):
            S = float(np.linalg.norm([_num(row[c], path, ln, c) for c in ("sx", "sy", "sz")]))
        else:
            raise ExchangeFileError(f"{path}, line {ln}: atom {row['name']} has no spin (column s or sx sy sz)")
        if S <= 0:
            raise ExchangeFileError(f"{path}, line {ln}: atom {row['name']} has spin 0")
        gf = _num(row["g"], path, ln, "g") if "g" in row and row["g"] != "-" else 2.0
        labels.append(row["name"])
        sites.append(Site(pos, _element_of(row["name"]), S, gf, row["name"]))
    if not sites:
        raise ExchangeFileError(f"{path}, line {body[0][0]}: Atoms section lists no atoms")
    return labels, sites


def _magnopy_notation(path, sec) -> dict:
    """The Notation properties: d (double counting), s (spin-normalized), e (exchange factor), o (on-site factor)."""
    props = {}
    for ln, text in sec["notation"][1:]:
        toks = text.replace("=", " ").split()
        if len(toks) < 2:
            raise ExchangeFileError(f"{path}, line {ln}: notation line needs a keyword and a value")
        key = toks[0][0].lower()
        val = toks[-1]
        if key in "ds":
            if val.lower() not in _TRUE | _FALSE:
                raise ExchangeFileError(f"{path}, line {ln}: {toks[0]} must be true or false, got {val!r}")
            props[key] = val.lower() in _TRUE
        elif key in "eo":
            props[key] = _num(val, path, ln, toks[0])
        else:
            raise ExchangeFileError(f"{path}, line {ln}: unknown notation property {toks[0]!r}")
    for key, name in (("d", "Double-counting"), ("s", "Spin-normalized"), ("e", "Exchange-factor")):
        if key not in props:
            raise ExchangeFileError(f"{path}, line {sec['notation'][0][0]}: Notation lacks {name}")
    return props


def _magnopy_exchange(path, sec, index) -> tuple[list, str]:
    """The Exchange section: directed entries (i, j, R, J, line) in the file's unit, and that unit."""
    body = sec["exchange"]
    head = body[0][1].split()
    unit = _unit_keyword(head[1], path, body[0][0]) if len(head) > 1 else "meV"
    blocks, cur = [], []
    for ln, text in body[1:]:
        if re.fullmatch(r"-{10,}", text):
            if cur:
                blocks.append(cur)
            cur = []
        else:
            cur.append((ln, text))
    if cur:
        blocks.append(cur)
    raw = [_magnopy_bond(path, block, index) for block in blocks]
    return raw, unit


def _magnopy_bond(path, block, index) -> tuple:
    """One bond of the Exchange section (header line and its Matrix/Isotropic/DMI/Symmetric-anisotropy parts) →
    (i, j, R, J, line); later parts replace the corresponding part of J (magnopy's priority rules)."""
    ln0, text = block[0]
    toks = text.split()
    if len(toks) < 5:
        raise ExchangeFileError(f"{path}, line {ln0}: bond header needs atom1 atom2 i j k")
    for lab in toks[:2]:
        if lab not in index:
            raise ExchangeFileError(f"{path}, line {ln0}: atom {lab} is not in the Atoms section")
    R = tuple(_int(t, path, ln0, "cell index") for t in toks[2:5])
    J = np.zeros((3, 3))
    got = False
    q = 1
    while q < len(block):
        ln, text = block[q]
        word = text.split()[0].lower()
        vals = text.split()[1:]
        if word.startswith("m"):
            M = []
            for r in range(1, 4):
                if q + r >= len(block):
                    raise ExchangeFileError(f"{path}, line {ln}: Matrix needs three rows (truncated?)")
                lnr, tr = block[q + r]
                tt = tr.split()
                if len(tt) != 3:
                    raise ExchangeFileError(f"{path}, line {lnr}: matrix row needs 3 numbers")
                M.append([_num(t, path, lnr, "matrix element") for t in tt])
            J = np.array(M)
            q += 3
        elif word.startswith("i"):
            if len(vals) != 1:
                raise ExchangeFileError(f"{path}, line {ln}: Isotropic needs one value")
            J = J + (_num(vals[0], path, ln, "isotropic exchange") - np.trace(J) / 3) * np.eye(3)
        elif word.startswith("d"):
            if len(vals) != 3:
                raise ExchangeFileError(f"{path}, line {ln}: DMI needs three components")
            D = [_num(v, path, ln, "DMI component") for v in vals]
            J = J - 0.5 * (J - J.T) + dmi_matrix(D)
        elif word.startswith("s"):
            if len(vals) != 5:
                raise ExchangeFileError(f"{path}, line {ln}: Symmetric-anisotropy needs Sxx Syy Sxy Sxz Syz")
            sxx, syy, sxy, sxz, syz = (_num(v, path, ln, "anisotropy element") for v in vals)
            SA = np.array([[sxx, sxy, sxz], [sxy, syy, syz], [sxz, syz, -sxx - syy]])
            J = J - (0.5 * (J + J.T) - np.trace(J) / 3 * np.eye(3)) + SA
        else:
            raise ExchangeFileError(f"{path}, line {ln}: unknown bond entry {text.split()[0]!r} (Matrix, "
                                    f"Isotropic, DMI, Symmetric-anisotropy)")
        got = True
        q += 1
    if not got:
        raise ExchangeFileError(f"{path}, line {ln0}: bond {text} has no parameters")
    return (index[toks[0]], index[toks[1]], R, J, ln0)


def _magnopy_onsite(path, sec, index, sites, onsite_factor, conv) -> list[np.ndarray]:
    """Single-ion tensors A (meV, internal convention) of the On-site section; zero for sites it does not list."""
    single = [np.zeros((3, 3)) for _ in sites]
    if "on-site" in sec:
        body = sec["on-site"]
        head = body[0][1].split()
        ou = _unit_keyword(head[1], path, body[0][0]) if len(head) > 1 else "meV"
        rows = [(ln, t) for ln, t in body[1:] if not re.fullmatch(r"-{10,}", t)]
        if len(rows) % 2:
            raise ExchangeFileError(f"{path}, line {rows[-1][0]}: on-site entry needs a label line and a line "
                                    f"'Axx Ayy Azz Axy Axz Ayz' (truncated?)")
        for q in range(0, len(rows), 2):
            (ln, lab), (ln2, vals) = rows[q], rows[q + 1]
            if lab not in index:
                raise ExchangeFileError(f"{path}, line {ln}: atom {lab} is not in the Atoms section")
            v = vals.split()
            if len(v) != 6:
                raise ExchangeFileError(f"{path}, line {ln2}: on-site needs Axx Ayy Azz Axy Axz Ayz")
            axx, ayy, azz, axy, axz, ayz = (_num(x, path, ln2, "on-site element") for x in v)
            A = np.array([[axx, axy, axz], [axy, ayy, ayz], [axz, ayz, azz]])
            S = sites[index[lab]].spin
            single[index[lab]] = single[index[lab]] + onsite_factor * _MEV_PER_UNIT[ou] * A / \
                (S ** 2 if conv.unit_spins else 1.0)
    return single


def read_magnopy(path, pbc=None) -> SpinModel:
    """Read a magnopy model file (txt; sections Cell, Atoms, Notation, Exchange, On-site) into a SpinModel.

    The Notation section fixes the convention (:func:`magnopy_convention`); magnopy → internal:
    J_int = convention.to_internal(J_m, S_i, S_j) after pairing (double counting: the two directions are checked and
    averaged) or summing (no double counting) the listed terms; A_int = onsite_factor·unit·A_m/(S² if normalized).
    Exchange entries may give ``Matrix``, ``Isotropic``, ``DMI`` and ``Symmetric-anisotropy`` parts (magnopy's
    priority rules: the later parts replace the corresponding part of the matrix).  Atoms need the spin column
    ``s`` (or ``sx sy sz``); g from column ``g`` (default 2).  Comments start with ``#``.  ``pbc``: as recorded
    by :func:`write_magnopy` in a comment, else a slab if the sites leave ≥ 10 Å along a3.
    """
    path, lines = _read_lines(path)
    sec = _magnopy_sections(path, lines)
    cell = _magnopy_cell(path, sec)
    labels, sites = _magnopy_atoms(path, sec, cell)
    index = {lab: q for q, lab in enumerate(labels)}
    props = _magnopy_notation(path, sec)
    onsite_factor = props.get("o", 1.0)
    raw, unit = _magnopy_exchange(path, sec, index) if "exchange" in sec else ([], "meV")
    if unit not in ("meV", "eV", "J", "K"):  # e.g. Ry: convert the numbers, keep the notation
        raw = [(i, j, R, J * _MEV_PER_UNIT[unit], ln) for i, j, R, J, ln in raw]
        unit = "meV"
    conv = magnopy_convention(props["d"], props["s"], props["e"], unit)
    pairs = _collect(raw, conv.double_counting, str(path),
                     1e-9 * max([1e-300] + [float(np.max(np.abs(r[3]))) for r in raw]), "magnopy", unit)
    single = _magnopy_onsite(path, sec, index, sites, onsite_factor, conv)
    positions = np.array([s.position for s in sites])
    pbc = pbc if pbc is not None else _pbc_from_tag(lines)
    model = _new_model(cell, sites, pbc if pbc is not None else _guess_pbc(cell, positions),
                       {"source": str(path), "format": "magnopy model file", "convention_in_file": conv.name})
    model.single_ion = single
    for (i, j, R), Jm in pairs.items():
        model.add_bond(i, j, R, conv.to_internal(Jm, sites[i].spin, sites[j].spin))
    return _validated(model, path)
