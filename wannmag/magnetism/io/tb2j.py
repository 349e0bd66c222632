"""TB2J ``exchange.out``: :func:`write_tb2j`, :func:`read_tb2j`, :func:`tb2j_structure`.

TB2J ``exchange.out`` (:data:`TB2J`, read and write)
    E = −Σ_{i≠j} [J_iso e_i·e_j + e_i·J_ani·e_j + D_ij·(e_i × e_j)]: both directions (i,j,R) and (j,i,−R) listed,
    unit spins e, meV, J > 0 ferromagnetic.  Source: TB2J's writer ``TB2J/io_exchange/io_txt.py`` (mailhexu/TB2J)
    for the layout and the TB2J documentation (quoted in the ABACUS TB2J interface page) for the Hamiltonian.  The
    TB2J tensor is J_iso·1 + J_ani + J^A(D) with the D ↔ J^A relation of :func:`dmi_matrix`; J_int = −2 J_TB2J/(S_i S_j).
    A real file (CrI3, ABACUS + TB2J 0.8.2) confirms D_ji(−R) = −D_ij(R) and J_ani,ji(−R) = J_ani,ij(R), i.e. the
    reverse bond carries the transposed tensor.  J_ani is added as printed, like TB2J's ``combine_J_tensor``; a
    J_ani with a non-zero trace (seen in merged non-collinear results) is reported.  The spin S is round(|m|)/2
    from the Wannier moment unless given; single-ion terms are neither read nor written.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from ase import Atoms

from ..._atomic import atomic_write_text as _atomic_write
from ..spinmodel import TB2J, Site, SpinModel
from ._common import (ExchangeFileError, dmi_matrix, _canonical, _collect, _dmi_vector, _element_of, _guess_pbc, _int,
                      _labels, _line, _new_model, _num, _pbc_from_tag, _pbc_tag, _read_lines, _validated, _warn,
                      _warn_dipolar, _warn_field)


_LABEL = r"(?:\d+\(\s*)?([A-Z][a-z]?\d+)\s*\)?"
_TB2J_HEADER = re.compile(rf"^\s*{_LABEL}\s+{_LABEL}\s+\(\s*(\S+?)\s*,\s*(\S+?)\s*,\s*(\S+?)\s*\)\s+(\S+)")
_TB2J_DMI = re.compile(r"^\s*\[Testing!\]\s*DMI:\s*\((.*)\)\s*$")
_TB2J_JANI = re.compile(r"^\s*\[Testing!\]\s*J_ani:\s*$")
_RULE = re.compile(r"^\s*(=|-){20,}\s*$")


def write_tb2j(model: SpinModel, path, description: str = "") -> Path:
    """Write ``model`` as a TB2J ``exchange.out`` (TB2J convention, see the module docstring).

    Internal → TB2J: J_TB2J = −S_i S_j J_int / 2 (meV, J > 0 FM), every bond listed as (i,j,R) and (j,i,−R) with
    the transposed tensor; J_iso = Tr/3, DMI from the antisymmetric part (D·(e_i × e_j)), J_ani = symmetric
    traceless part.  The ``[Testing!] DMI`` and ``J_ani`` blocks are written only if some bond is anisotropic.
    The Wannier moment column holds 2S so that the reader's S = round(|m|)/2 recovers S; g is not stored.
    Single-ion terms and the field are not written (warning).
    """
    labels = _labels(model, prefer_site_labels=False)
    _warn_field(model, "TB2J")
    _warn_dipolar(model, "TB2J", written=False)
    if any(np.any(np.abs(A) > 0) for A in model.single_ion_intrinsic):
        _warn("TB2J: single-ion anisotropy is not written (its sign convention in exchange.out is not pinned down)")
    anis = any(np.max(np.abs(b.J - b.J_iso * np.eye(3))) > 1e-12 for b in model.bonds)
    bar, sub = "=" * 90, "-" * 88
    out = [bar, "Information: ",
           "Exchange parameters written by wannmag (TB2J convention: E = -sum_{i!=j} [J_iso e_i.e_j + e_i.J_ani.e_j "
           "+ D_ij.(e_i x e_j)], both directions, unit spins, meV, J > 0 FM).",
           _pbc_tag(model), description.replace("\n", " ") if description else "", "", bar, "Cell (Angstrom):"]
    out += ["{:14.8f}  {:14.8f}  {:14.8f}".format(*row) for row in model.cell]
    out += ["", bar, "Atoms:  ", "(Note: charge and magmoms only count the wannier functions.)"]
    if anis:
        out.append("{:^12s} {:^13s} {:^13s} {:^13s} {:^9s} {:^9s} {:^9s} {:^9s}".format(
            "Atom_number", "x", "y", "z", "w_charge", "M(x)", "M(y)", "M(z)"))
    else:
        out.append("{:^12s} {:^13s} {:^13s} {:^13s} {:^9s} {:^9s}".format(
            "Atom number", "x", "y", "z", "w_charge", "w_magmom"))
    for lab, s in zip(labels, model.sites):
        p = s.position
        if anis:
            out.append(f"{lab:<12s} {p[0]:13.8f} {p[1]:13.8f} {p[2]:13.8f} {0.0:9.4f} {0.0:9.4f} {0.0:9.4f} "
                       f"{2 * s.spin:9.4f}")
        else:
            out.append(f"{lab:<12s} {p[0]:13.8f} {p[1]:13.8f} {p[2]:13.8f} {0.0:9.4f} {2 * s.spin:9.4f}")
    total = sum(2 * s.spin for s in model.sites)
    out.append(f"{'Total':<12s} {'':13s} {'':13s} {'':13s} {0.0:9.4f} " +
               (f"{0.0:9.4f} {0.0:9.4f} {total:9.4f}" if anis else f"{total:9.4f}"))
    out += ["", bar, "Exchange: ",
            "{:6s} {:5s} {:15s} {:7s} {:24s} {:11s} ".format("    i", "    j", "         R", "  J_iso(meV)",
                                                            "         vector", "distance(A)")]
    rows = []
    for b in model.bonds:
        Si, Sj = model.sites[b.i].spin, model.sites[b.j].spin
        Jt = TB2J.from_internal(b.J, Si, Sj)
        vec = model.bond_vector(b)
        rows.append((float(np.linalg.norm(vec)), b.i, b.j, b.R, Jt, vec))
        rows.append((float(np.linalg.norm(vec)), b.j, b.i, tuple(-x for x in b.R), Jt.T, -vec))
    rows.sort(key=lambda r: (round(r[0], 6), r[1], r[2], r[3]))
    for dist, i, j, R, Jt, vec in rows:
        Jiso = float(np.trace(Jt) / 3.0)
        D = _dmi_vector(Jt)
        Jani = 0.5 * (Jt + Jt.T) - Jiso * np.eye(3)
        out.append(sub)
        out.append(f"   {labels[i]:5s} {labels[j]:5s} ({R[0]:3d}, {R[1]:3d}, {R[2]:3d}) {Jiso:12.8f}   "
                   f"({vec[0]:6.3f}, {vec[1]:6.3f}, {vec[2]:6.3f}) {dist:6.3f} ")
        out.append(f"J_iso: {Jiso:.12f} ")
        if anis:
            out.append(f"[Testing!] DMI: ({D[0]:.12f} {D[1]:.12f} {D[2]:.12f})")
            out.append("[Testing!]J_ani:")
            rows3 = [" ".join(f"{x:16.12f}" for x in Jani[k]) for k in range(3)]
            out += [f"[[{rows3[0]}]", f" [{rows3[1]}]", f" [{rows3[2]}]]"]
    out.append("")
    path = Path(path)
    _atomic_write(path, "\n".join(out))
    return path


def _parse_matrix_rows(rows: list[tuple[int, str]], path) -> np.ndarray:
    M = np.zeros((3, 3))
    for k, (lineno, text) in enumerate(rows):
        toks = text.replace("[", " ").replace("]", " ").split()
        if len(toks) != 3:
            raise ExchangeFileError(f"{path}, line {lineno}: J_ani row needs 3 numbers, got {len(toks)}")
        M[k] = [_num(t, path, lineno, "J_ani element") for t in toks]
    return M


def _tb2j_atoms(path, lines, k, atoms: dict, atom_order: list) -> int:
    """Read the atom lines of the Atoms section starting at line index ``k`` into ``atoms`` ({label: (position,
    |moment|)}) and ``atom_order``; returns the index of the line that ends the section."""
    n = len(lines)
    k += 1
    header = None
    while k < n and not _RULE.match(lines[k]):
        text = lines[k].strip()
        toks = text.split()
        if not toks or text.startswith("(Note"):
            k += 1
            continue
        if toks[0].lower().startswith(("atom", "symbol")):
            header = [t.lower() for t in toks]
            k += 1
            continue
        if toks[0] == "Total":
            k += 1
            continue
        if toks[0].lower().startswith("single") or toks[0].startswith("("):
            break
        if header is None:
            raise ExchangeFileError(f"{path}, line {k + 1}: atom line before the column header of the "
                                    f"Atoms section")
        if len(toks) < 6:
            raise ExchangeFileError(f"{path}, line {k + 1}: atom line needs a label, x y z, charge and "
                                    f"moment(s); got {len(toks)} fields")
        pos = [_num(t, path, k + 1, "coordinate") for t in toks[1:4]]
        mom = [_num(t, path, k + 1, "moment") for t in toks[5:8]] if len(toks) >= 8 else \
            [_num(toks[5], path, k + 1, "moment")]
        atoms[toks[0]] = (np.array(pos), float(np.linalg.norm(mom)))
        atom_order.append(toks[0])
        k += 1
    return k


def _tb2j_entry(path, lines, k, Jiso: float, lineno: int):
    """The lines of one exchange entry after its header (line index ``k``): J_iso (the header's unless a ``J_iso:``
    line follows), DMI vector, J_ani, the set of blocks present; returns (next k, Jiso, D, Jani, features)."""
    n = len(lines)
    D = np.zeros(3)
    Jani = np.zeros((3, 3))
    features = set()
    k += 1
    while k < n and not _RULE.match(lines[k]) and not _TB2J_HEADER.match(lines[k]):
        t = lines[k].strip()
        if t.lower().startswith("combined j tensor"):
            rows = lines[k + 1:k + 4]
            if len(rows) < 3 or not rows[0].strip().startswith("[[") or \
                    not rows[2].strip().endswith("]]"):
                raise ExchangeFileError(f"{path}, line {k + 1}: the combined J tensor of the entry of "
                                        f"line {lineno} is not a complete 3×3 matrix (truncated?)")
            features.add("combined J tensor")
            k += 3
        elif t.startswith("J_iso:"):
            features.add("J_iso")
            toks = t.split()
            if len(toks) < 2:
                raise ExchangeFileError(f"{path}, line {k + 1}: J_iso line without a value")
            Jiso = _num(toks[1], path, k + 1, "J_iso")
        elif _TB2J_DMI.match(t):
            toks = _TB2J_DMI.match(t).group(1).replace(",", " ").split()
            if len(toks) != 3:
                raise ExchangeFileError(f"{path}, line {k + 1}: DMI needs 3 components, got {len(toks)}")
            D = np.array([_num(x, path, k + 1, "DMI component") for x in toks])
            features.add("DMI")
        elif _TB2J_JANI.match(t):
            features.add("J_ani")
            rows = [(k + 2 + q, _line(lines, k + 1 + q, path, "the 3 rows of J_ani")) for q in range(3)]
            if not rows[0][1].strip().startswith("[[") or not rows[2][1].strip().endswith("]]"):
                raise ExchangeFileError(f"{path}, line {k + 2}: J_ani block is not a 3×3 matrix "
                                        f"'[[..] [..] [..]]' (truncated?)")
            Jani = _parse_matrix_rows(rows, path)
            k += 3
        k += 1
    return k, Jiso, D, Jani, features


def _tb2j_sites(path, entries, atoms: dict, atom_order: list, spins, g):
    """The magnetic sites (the atoms that appear in the exchange entries, in Atoms-table order) with their spins;
    returns (labels, {label: index}, sites)."""
    used = {e[0] for e in entries} | {e[1] for e in entries}
    mag = [lab for lab in atom_order if lab in used]
    index = {lab: q for q, lab in enumerate(mag)}
    sites = []
    for lab in mag:
        pos, m = atoms[lab]
        el = _element_of(lab)
        if spins is not None and (lab in spins or el in spins):
            S = float(spins.get(lab, spins.get(el)))
        else:
            S = round(m) / 2.0
            if S <= 0:
                raise ExchangeFileError(f"{path}: atom {lab} has moment {m:.3f} μB, which gives S = 0; pass "
                                        f"spins={{'{el}': S}}")
        sites.append(Site(np.array(pos), el, S, float(g), lab))
    return mag, index, sites


def read_tb2j(path, spins: dict | None = None, g: float = 2.0, tol: float = 2e-3, pbc=None,
              keep_jani_trace: bool = True) -> SpinModel:
    """Read a TB2J ``exchange.out`` into a SpinModel (internal convention, meV, J > 0 AF, each bond once).

    Parameters
    ----------
    spins : optional {label or element: S}; default S = round(|m|)/2 from the Wannier moment of each atom.
    g : g-factor of every site (TB2J does not store it).
    tol : tolerance (meV, TB2J units) for the agreement of the (i,j,R) and (j,i,−R) entries; they are averaged,
        with a warning when they differ by more (TB2J prints J_ani with 3 decimals, so keep tol ≳ 1e-3).
    pbc : periodic directions; default: as recorded by :func:`write_tb2j`, else a slab (pbc along a3 False) if
        the atoms leave ≥ 5 Å of vacuum.
    keep_jani_trace : TB2J's own ``combine_J_tensor`` adds J_ani as printed; some files (e.g. results merged from
        several spin orientations) have a J_ani with a non-zero trace, which then shifts Tr(J)/3 away from the
        printed J_iso.  True (default) follows TB2J and warns; False removes the trace of J_ani.

    TB2J → internal: the tensor J_TB2J = J_iso·1 + J_ani + J^A(D) (J^A as in :func:`dmi_matrix`, i.e. the DMI term
    D·(e_i × e_j); the same assembly as TB2J's ``combine_J_tensor``), then
    J_int = TB2J.to_internal(J_TB2J, S_i, S_j) = −2 J_TB2J/(S_i S_j).  The magnetic sites are the atoms that appear
    in the exchange section, in the order of the atoms table.
    """
    path, lines = _read_lines(path)
    cell, atoms, entries, traced = None, {}, [], []
    entry_features: set = set()
    k, n = 0, len(lines)
    atom_order: list[str] = []
    while k < n:
        line = lines[k]
        low = line.strip().lower()
        if low.startswith("cell"):
            rows = []
            for q in range(1, 4):
                text = _line(lines, k + q, path, "the three cell vectors")
                toks = text.split()
                if len(toks) < 3:
                    raise ExchangeFileError(f"{path}, line {k + q + 1}: cell vector needs 3 numbers")
                rows.append([_num(t, path, k + q + 1, "cell component") for t in toks[:3]])
            cell = np.array(rows)
            k += 4
            continue
        if low.startswith("atoms:"):
            k = _tb2j_atoms(path, lines, k, atoms, atom_order)
            continue
        if low.startswith("exchange:"):
            k += 1
            while k < n:
                text = lines[k]
                if text.strip().startswith("====") or text.strip().lower().startswith(("orbitals", "single ion")):
                    break
                m = _TB2J_HEADER.match(text)
                if not m:
                    k += 1
                    continue
                li, lj = m.group(1), m.group(2)
                R = tuple(_int(m.group(q), path, k + 1, "R component") for q in (3, 4, 5))
                Jiso = _num(m.group(6), path, k + 1, "J_iso")
                lineno = k + 1
                k, Jiso, D, Jani, features = _tb2j_entry(path, lines, k, Jiso, lineno)
                for lab in (li, lj):
                    if lab not in atoms:
                        raise ExchangeFileError(f"{path}, line {lineno}: atom {lab} is not in the Atoms section")
                tr = float(np.trace(Jani))
                if abs(tr) / 3.0 > 1e-3:  # above the rounding of TB2J's 3-decimal J_ani
                    traced.append(abs(tr) / 3.0)
                if not keep_jani_trace:
                        Jani = Jani - tr / 3.0 * np.eye(3)
                Jt = Jiso * np.eye(3) + Jani + dmi_matrix(D)
                if entries and features != entry_features:
                    lacks = sorted(entry_features - features)
                    what = f"lacks {', '.join(lacks)}" if lacks else \
                        f"adds {', '.join(sorted(features - entry_features))}"
                    raise ExchangeFileError(f"{path}, line {lineno}: this entry {what} unlike the entries before it "
                                            "(truncated or edited file?)")
                entry_features = features
                entries.append((li, lj, R, Jt, lineno))
            continue
        k += 1
    if cell is None:
        raise ExchangeFileError(f"{path}: no 'Cell (Angstrom):' section — not a TB2J exchange.out")
    if not atoms:
        raise ExchangeFileError(f"{path}: no 'Atoms:' section with atom lines — not a TB2J exchange.out")
    if not entries:
        raise ExchangeFileError(f"{path}: no exchange entries in the 'Exchange:' section")
    if traced:
        _warn(f"{path}: {len(traced)} J_ani block(s) have a non-zero trace (largest |Tr|/3 = {max(traced):.4g} meV); "
              + ("added as TB2J does, so Tr(J)/3 differs from the printed J_iso" if keep_jani_trace
                 else "the trace was removed (keep_jani_trace=False)"))
    mag, index, sites = _tb2j_sites(path, entries, atoms, atom_order, spins, g)
    directed = [(index[li], index[lj], R, Jt, lineno) for li, lj, R, Jt, lineno in entries]
    pairs = _collect(directed, True, str(path), tol, "TB2J", "meV", strict=True)
    _check_tb2j_complete(path, lines, cell, [atoms[lab][0] for lab in mag], set(pairs))
    all_positions = np.array([atoms[lab][0] for lab in atom_order])
    pbc = pbc if pbc is not None else _pbc_from_tag(lines)
    model = _new_model(cell, sites, pbc if pbc is not None else _guess_pbc(cell, all_positions, 5.0),
                       {"source": str(path), "format": "TB2J exchange.out", "convention_in_file": TB2J.name})
    for (i, j, R), Jt in pairs.items():
        model.add_bond(i, j, R, TB2J.to_internal(Jt, sites[i].spin, sites[j].spin))
    return _validated(model, path)


def _check_tb2j_complete(path, lines, cell, positions, listed: set) -> None:
    """TB2J lists every pair of magnetic atoms closer than its ``--rcut``; when the command line recorded in the
    Information section gives rcut, every such pair (i, j, R), R in the plane, must be in the file — a missing one
    means a truncated or edited file (refused)."""
    rcut = None
    for line in lines[:60]:
        m = re.search(r"--rcut[ =]+([0-9.eE+-]+)", line)
        if m:
            try:
                rcut = float(m.group(1))
            except ValueError:
                rcut = None
            break
    if rcut is None or not np.isfinite(rcut) or rcut <= 0:
        return
    pos = np.asarray(positions, float)
    heights = np.abs(np.linalg.det(cell)) / np.linalg.norm(np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]]), axis=1)
    nmax = [int(np.ceil((rcut + 1.0) / h)) + 1 if h > 1e-9 else 0 for h in heights[:2]]
    expected = set()
    for i in range(len(pos)):
        for j in range(len(pos)):
            for a in range(-nmax[0], nmax[0] + 1):
                for b in range(-nmax[1], nmax[1] + 1):
                    d = float(np.linalg.norm(pos[j] + np.array([a, b, 0]) @ cell - pos[i]))
                    if 1e-6 < d < rcut - 0.01:
                        ci, cj, cR, _ = _canonical(i, j, (a, b, 0), np.eye(3))
                        expected.add((ci, cj, cR))
    missing = expected - listed
    if missing:
        raise ExchangeFileError(f"{path}: lists {len(expected & listed)} of the {len(expected)} magnetic pairs closer "
                                f"than the rcut = {rcut:g} Å of its command line: the file is truncated or edited")


def tb2j_structure(path):
    """The full structure (cell and every atom of the Atoms table, ligands included) of a TB2J ``exchange.out`` as
    an ``ase.Atoms`` — e.g. for :func:`wannmag.magnetism.symmetry.symmetrise` of a model read with
    :func:`read_tb2j`.  Labels like ``Cr1``/``I6`` give the elements."""
    path, lines = _read_lines(path)
    cell, symbols, positions = None, [], []
    for k, line in enumerate(lines):
        low = line.strip().lower()
        if low.startswith("cell") and cell is None:
            cell = np.array([[_num(t, path, k + q + 1, "cell component")
                              for t in _line(lines, k + q, path, "the cell vectors").split()[:3]] for q in (1, 2, 3)])
        if low.startswith("atoms:"):
            for q in range(k + 1, len(lines)):
                toks = lines[q].split()
                if _RULE.match(lines[q]) or (toks and toks[0].lower().startswith("single")):
                    break
                if len(toks) >= 6 and re.fullmatch(r"[A-Z][a-z]?\d+", toks[0]):
                    symbols.append(_element_of(toks[0]))
                    positions.append([_num(t, path, q + 1, "coordinate") for t in toks[1:4]])
            break
    if cell is None or not symbols:
        raise ExchangeFileError(f"{path}: no 'Cell' or 'Atoms' section — not a TB2J exchange.out")
    return Atoms(symbols, positions=positions, cell=cell, pbc=True)
