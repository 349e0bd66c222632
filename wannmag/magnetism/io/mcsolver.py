"""mcsolver save file (version 2.2 layout): :func:`write_mcsolver`, :func:`read_mcsolver`.

mcsolver save file, version 2.2 (:data:`MCSOLVER`, read and write)
    E = ½ Σ_i Σ_{links of i} S_i·J·S_j + Σ_i Σ_α D_α (S_i^α)²; each listed bond creates the link i→j with J and
    j→i with Jᵀ (``Lattice.py``: strength / invStrength), so H = Σ_{listed bonds} S_i·J·S_j, spins of length S
    (``heisenbergLib.c``: spin initialised with |S| = "spin"), energies in kelvin (GUI: "all energy units are in
    Kelvin"), J < 0 ferromagnetic (sample ``samples/CrI3With2NNCoupling``).  Layout copied from that sample; the
    v2.2 reader itself was not available (see the notes for what is uncertain).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..._atomic import atomic_write_text as _atomic_write
from ..spinmodel import MEV_PER_K, Convention, Site, SpinModel
from ._common import (ExchangeFileError, _bond_list, _collect, _guess_pbc, _int, _line, _new_model, _num, _read_lines,
                      _validated, _warn, _warn_dipolar, _warn_field, _wrapped)

#: mcsolver: H = Σ_{listed bonds} S_i·J_ij·S_j, each bond once, spins of length S, kelvin, J > 0 AF
MCSOLVER = Convention("mcsolver", sign=+1, double_counting=False, unit_spins=False, unit="K")

_MC_DIAG = {"Jx": (0, 0), "Jy": (1, 1), "Jz": (2, 2)}
_MC_OFF = {f"J{a}{b}": ("xyz".index(a), "xyz".index(b)) for a in "xyz" for b in "xyz" if a != b}


def write_mcsolver(model: SpinModel, path, supercell=(32, 32, 1), temperatures=(1.0, 100.0, 21),
                   sweeps=(80000, 640000, 0), model_type: str = "Heisenberg", algorithm: str = "Metroplis",
                   ncores: int = 1) -> Path:
    """Write an mcsolver save file (layout of version 2.2, as ``samples/CrI3With2NNCoupling`` of mcsolver).

    Internal → mcsolver: J_mc = MCSOLVER.from_internal(J) = J / k_B (K), each bond once (mcsolver adds the reverse
    link with Jᵀ itself), spins of length S, J > 0 AF.  Single-ion: D_α = A_αα / k_B (K) — mcsolver's onsite term
    is Σ_α D_α (S^α)², so off-diagonal elements of A are dropped with a warning.  The field is not written
    (warning).  Labels in the file match the tensor elements: ``Jz`` = J_zz, ``Jxy`` = J_xy (S_i^x J_xy S_j^y),
    ``Dz`` = D_z.  ``algorithm`` is spelled as in mcsolver ("Metroplis" or "Wolff").
    """
    _warn_field(model, "mcsolver")
    _warn_dipolar(model, "mcsolver", written=True)
    frac, shift = _wrapped(model)
    kB = MEV_PER_K
    types = {el: q for q, el in enumerate(dict.fromkeys(s.element for s in model.sites))}
    out = ["This is mcsolver's save file, version: 2.2", "Lattice:"]
    out += [" ".join(f"{x:.9f}" for x in row) for row in model.cell]
    out += ["Supercell used in MC simulations:", " ".join(str(int(x)) for x in supercell),
            "Orbitals in cell:", str(model.n_sites),
            "Postions, initial spin states and onsite-anisotropy of every orbitals:"]
    for k, s in enumerate(model.sites):
        A = model.single_ion[k]
        Asym = 0.5 * (A + A.T)
        if np.max(np.abs(Asym - np.diag(np.diag(Asym)))) > 1e-12 * max(1.0, np.max(np.abs(Asym))):
            _warn(f"mcsolver: single-ion tensor of site {k} has off-diagonal elements; only its diagonal "
                  f"(D_x, D_y, D_z) is written")
        D = np.diag(Asym) / kB
        out.append(f"orb {k}: type {types[s.element]} spin {s.spin:.9f} pos [{frac[k, 0]:.9f} {frac[k, 1]:.9f} "
                   f"{frac[k, 2]:.9f}] Dz {D[2]:.9f} Dx {D[0]:.9f} Dy {D[1]:.9f}")
    bonds = _bond_list(model, shift)
    out += ["Bonds:", str(len(bonds)), "id, source, target, overLat, Jz, Jx, Jy of each bond:"]
    for q, (i, j, R, J) in enumerate(bonds):
        Jm = MCSOLVER.from_internal(J, model.sites[i].spin, model.sites[j].spin)
        off = " ".join(f"{lab} {Jm[a, b]:.9f}" for lab, (a, b) in
                       [("Jxy", (0, 1)), ("Jxz", (0, 2)), ("Jyz", (1, 2)), ("Jyx", (1, 0)), ("Jzx", (2, 0)),
                        ("Jzy", (2, 1))])
        out.append(f"bond {q}: Jz {Jm[2, 2]:.9f} Jx {Jm[0, 0]:.9f} Jy {Jm[1, 1]:.9f} {off} orb {i} to orb {j} "
                   f"over [{R[0]} {R[1]} {R[2]}]")
    t0, t1, nt = temperatures
    out += ["Dipole long range correction:", "alpha 0.0", "Temperature scanning region:",
            f"Tmin {t0:.9f} Tmax {t1:.9f} nT {int(nt)}", "Field scanning region:", "Hmin 0 Hmax 0 nH 1",
            "Mesurement:", "mesure the correlation function between orb0 and orb0 over [0 0 0]", "OrbGroup: 1",
            "Supergroup", "group0 orb0-orb0",
            "Sweeps for thermalization and statistics, and relaxiation step for each sweep:",
            " ".join(str(int(x)) for x in sweeps), "Model type:", model_type, "Algorithm:", algorithm,
            "XAxis type:", "T", "Distribution output frame: 0 ", "Ncores:", str(int(ncores))]
    path = Path(path)
    _atomic_write(path, "\n".join(out) + "\n")
    return path


def read_mcsolver(path, elements: dict | None = None, g: float = 2.0, pbc=None) -> SpinModel:
    """Read an mcsolver save file (versions 1.x–2.2 layouts: labelled ``Jz/Jx/Jy[/Jxy...]`` bonds and
    ``Dz/Dx/Dy`` onsite terms) into a SpinModel.

    mcsolver → internal: J_int = MCSOLVER.to_internal(J_mc) = k_B J_mc (meV); repeated bonds add up (as in
    mcsolver's Hamiltonian); A = diag(D_x, D_y, D_z) k_B.  ``elements`` maps the orbital ``type`` to a chemical
    symbol (default "X").  The file has no g-factor (``g`` for all sites).  ``pbc``: default a slab if the sites
    leave ≥ 10 Å along a3.
    """
    path, lines = _read_lines(path)
    if "mcsolver" not in lines[0]:
        raise ExchangeFileError(f"{path}, line 1: not an mcsolver save file (first line {lines[0].strip()!r})")
    tags = {}
    for k, line in enumerate(lines):
        words = re.findall(r"[a-zA-Z]+", line)
        if words and words[0] in ("Lattice", "Orbitals", "Bonds", "Postions", "Positions", "Supercell") \
                and words[0] not in tags:
            tags[words[0]] = k
    for need in ("Lattice", "Orbitals", "Bonds"):
        if need not in tags:
            raise ExchangeFileError(f"{path}: no '{need}:' section — not an mcsolver save file (or truncated)")
    rows = []
    for q in range(3):
        k = tags["Lattice"] + 1 + q
        toks = _line(lines, k, path, "the three lattice vectors").split()
        if len(toks) != 3:
            raise ExchangeFileError(f"{path}, line {k + 1}: lattice vector needs 3 numbers")
        rows.append([_num(t, path, k + 1, "lattice component") for t in toks])
    cell = np.array(rows)
    k = tags["Orbitals"] + 1
    norb = _int(_line(lines, k, path, "the number of orbitals").strip(), path, k + 1, "number of orbitals")
    orb_re = re.compile(r"^\s*orb\s+(\S+):\s*type\s+(\S+)\s+spin\s+(\S+)\s+pos\s*\[\s*(\S+)\s+(\S+)\s+(\S+)\s*\](.*)$")
    sites, single = [], []
    first = k + 2
    for q in range(norb):
        k = first + q
        text = _line(lines, k, path, f"orbital {q} of {norb}")
        m = orb_re.match(text)
        if not m:
            raise ExchangeFileError(f"{path}, line {k + 1}: cannot parse orbital line {text.strip()!r}")
        typ = _int(m.group(2), path, k + 1, "orbital type")
        S = abs(_num(m.group(3), path, k + 1, "spin"))
        f = np.array([_num(m.group(c), path, k + 1, "coordinate") for c in (4, 5, 6)])
        D = np.zeros(3)
        for lab, val in re.findall(r"D([xyz])\s+(\S+)", m.group(7)):
            D["xyz".index(lab)] = _num(val, path, k + 1, f"D{lab}")
        el = (elements or {}).get(typ, "X")
        sites.append(Site(f @ cell, el, S, float(g), f"{el}{q}"))
        single.append(np.diag(D) * MEV_PER_K)
    k = tags["Bonds"] + 1
    nb = _int(_line(lines, k, path, "the number of bonds").strip(), path, k + 1, "number of bonds")
    bond_re = re.compile(r"^\s*bond\s+\S+:\s*(.*?)\s*orb\s+(\S+)\s+to\s+orb\s+(\S+)\s+over\s*\[\s*(\S+)\s+(\S+)\s+(\S+)"
                         r"\s*\]\s*$")
    raw = []
    for q in range(nb):
        k = tags["Bonds"] + 3 + q
        text = _line(lines, k, path, f"bond {q} of {nb}")
        m = bond_re.match(text)
        if not m:
            raise ExchangeFileError(f"{path}, line {k + 1}: cannot parse bond line {text.strip()!r}")
        i, j = _int(m.group(2), path, k + 1, "orbital index"), _int(m.group(3), path, k + 1, "orbital index")
        if not (0 <= i < norb and 0 <= j < norb):
            raise ExchangeFileError(f"{path}, line {k + 1}: orbital index outside 0..{norb - 1}")
        R = tuple(int(round(_num(m.group(c), path, k + 1, "cell offset"))) for c in (4, 5, 6))
        J = np.zeros((3, 3))
        pairs = re.findall(r"(J[xyz]{1,2})\s+(\S+)", m.group(1))
        if not pairs:
            raise ExchangeFileError(f"{path}, line {k + 1}: bond without exchange values")
        for lab, val in pairs:
            a, b = _MC_DIAG.get(lab) or _MC_OFF.get(lab) or (None, None)
            if a is None:
                raise ExchangeFileError(f"{path}, line {k + 1}: unknown exchange label {lab!r}")
            J[a, b] = _num(val, path, k + 1, lab)
        raw.append((i, j, R, J, k + 1))
    pairs = _collect(raw, False, str(path), 0.0, "mcsolver", "K")
    positions = np.array([s.position for s in sites])
    model = _new_model(cell, sites, pbc if pbc is not None else _guess_pbc(cell, positions),
                       {"source": str(path), "format": "mcsolver save file", "convention_in_file": MCSOLVER.name})
    model.single_ion = single
    for (i, j, R), Jm in pairs.items():
        model.add_bond(i, j, R, MCSOLVER.to_internal(Jm, sites[i].spin, sites[j].spin))
    return _validated(model, path)

