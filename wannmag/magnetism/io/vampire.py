"""Vampire ``.UCF`` + ``.mat``: :func:`write_vampire`, :func:`read_vampire`.

Vampire ``.UCF`` + ``.mat`` (:data:`VAMPIRE_UCF`, write; read for the round trip)
    Vampire lists every interaction in both directions (its reader rejects asymmetric lists,
    ``src/unitcell/verify.cpp``) and evaluates E_i = −Σ_j S_i·J_ij·S_j per spin over *all* listed neighbours; the
    comment in ``src/exchange/energy.cpp`` notes the resulting "silent factor 1/2", so the Hamiltonian is
    H = −½ Σ_{i≠j} S_i·J_ij·S_j = −Σ_{pairs} S_i·J_ij·S_j with unit spins and J in joules (tensor order
    Jxx Jxy Jxz Jyx Jyy Jyz Jzx Jzy Jzz, ``src/unitcell/read_interactions.cpp``).  Magnopy's predefined "vampire"
    convention (multiple counting, normalised spins, c22 = −1/2) says the same.  **This differs by a factor 2 from**
    ``spinmodel.VAMPIRE`` (which double counts with prefactor 1); see notes/issue5-io.md.  Single-ion anisotropy:
    ``material[n]:uniaxial-anisotropy-constant`` k_u (J/atom) with E = −k_u (ŝ·e)² and
    ``uniaxial-anisotropy-direction`` e (``src/anisotropy/uniaxial_second_order.cpp``).  From S·A·S with |S| = S and
    A = a_0·1 + a_1 e eᵀ: k_u = −a_1 S² (the constant a_0 S² is dropped).  Moments: ``atomic-spin-moment`` = g S μ_B.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import numpy as np

from ..._atomic import atomic_write_text as _atomic_write
from ..spinmodel import Convention, Site, SpinModel
from ._common import (ExchangeFileError, _MEV_PER_UNIT, _bond_list, _collect, _element_of, _guess_pbc, _int,
                      _new_model, _num, _pbc_from_tag, _pbc_tag, _read_lines, _uniaxial, _validated, _warn,
                      _warn_dipolar, _warn_field, _wrapped)

#: Vampire: H = −Σ_{pairs} S_i·J_ij·S_j = −½ Σ_{i≠j} (both directions listed), unit spins, joules (see module doc)
VAMPIRE_UCF = Convention("Vampire (UCF)", sign=-1, double_counting=True, unit_spins=True, prefactor=0.5, unit="J")


def write_vampire(model: SpinModel, ucf_path, mat_path=None, damping: float = 1.0) -> tuple[Path, Path]:
    """Write the Vampire unit-cell file (``.UCF``, tensorial exchange in joules) and material file (``.mat``).

    Internal → Vampire: J_V = VAMPIRE_UCF.from_internal(J, S_i, S_j) = −S_i S_j J (meV → J); every bond is
    written as (i,j,R) with J_V and (j,i,−R) with J_Vᵀ (Vampire requires both).  Each site is its own material,
    with ``atomic-spin-moment`` = g S μ_B.  A uniaxial single-ion tensor A = a_0·1 + a_1 e eᵀ becomes
    ``uniaxial-anisotropy-constant`` k_u = −a_1 S² (converted to J/atom) along e (Vampire: E = −k_u (ŝ·e)²; the
    constant a_0 S² is dropped); a non-uniaxial tensor gives a one-line warning and k_u = 0.  Fractional site
    coordinates are wrapped into [0, 1) (Vampire rejects others) and R is shifted to keep the bond vectors.
    """
    ucf_path = Path(ucf_path)
    mat_path = Path(mat_path) if mat_path is not None else ucf_path.with_suffix(".mat")
    _warn_field(model, "Vampire")
    _warn_dipolar(model, "Vampire", written=True)
    frac, shift = _wrapped(model)
    lengths = np.linalg.norm(model.cell, axis=1)
    out = [f"# Vampire unit-cell file written by wannmag ({_pbc_tag(model)})", "# Unit cell size (Angstrom):",
           " ".join(f"{x:.10f}" for x in lengths),
           "# Unit cell lattice vectors (normalised):"]
    out += [" ".join(f"{x:.12f}" for x in model.cell[k] / lengths[k]) for k in range(3)]
    out += ["# Atoms: id cx cy cz material lattice-category height-category",
            f"{model.n_sites} {model.n_sites}"]
    out += [f"{k} {frac[k, 0]:.12f} {frac[k, 1]:.12f} {frac[k, 2]:.12f} {k} 0 0" for k in range(model.n_sites)]
    rows = []
    for i, j, R, J in _bond_list(model, shift):
        JV = VAMPIRE_UCF.from_internal(J, model.sites[i].spin, model.sites[j].spin)
        rows.append((i, j, R, JV))
        rows.append((j, i, tuple(-x for x in R), JV.T))
    out += ["# Interactions: IID i j dx dy dz Jxx Jxy Jxz Jyx Jyy Jyz Jzx Jzy Jzz (J; H = -sum_pairs S_i.J.S_j, "
            "unit spins)", f"{len(rows)} tensorial"]
    for iid, (i, j, R, JV) in enumerate(rows):
        out.append(f"{iid} {i} {j} {R[0]} {R[1]} {R[2]} " + " ".join(f"{x:.12e}" for x in JV.ravel()))
    mat = [f"# Vampire material file written by wannmag; exchange in {ucf_path.name}",
           f"material:num-materials = {model.n_sites}"]
    mev_to_joule = 1.0 / _MEV_PER_UNIT["J"]
    for k, s in enumerate(model.sites):
        A = model.single_ion[k]
        uni = _uniaxial(A)
        if uni is None:
            _warn(f"Vampire: single-ion tensor of site {k} ({s.element}) is not uniaxial (three distinct "
                  f"eigenvalues); written as k_u = 0")
            ku, e = 0.0, np.array([0.0, 0.0, 1.0])
        else:
            _, a1, e = uni
            ku = -a1 * s.spin ** 2 * mev_to_joule
        n = k + 1
        mat += ["#---------------------------------------------------", f"# Material {n}",
                "#---------------------------------------------------",
                f"material[{n}]:material-name={s.label or s.element + str(k)}",
                f"material[{n}]:material-element={s.element}",
                f"material[{n}]:damping-constant={damping}",
                f"material[{n}]:atomic-spin-moment={s.g * s.spin:.10f} !muB",
                f"material[{n}]:uniaxial-anisotropy-constant={ku:.12e}",
                f"material[{n}]:uniaxial-anisotropy-direction = {e[0]:.12f} , {e[1]:.12f} , {e[2]:.12f}",
                f"material[{n}]:initial-spin-direction = 0.0 , 0.0 , 1.0"]
    mat.append("#---------------------------------------------------")
    _atomic_write(ucf_path, "\n".join(out) + "\n")
    _atomic_write(mat_path, "\n".join(mat) + "\n")
    return ucf_path, mat_path


def _read_vampire_mat(path) -> dict[int, dict[str, str]]:
    path, lines = _read_lines(path)
    mats: dict[int, dict[str, str]] = defaultdict(dict)
    pat = re.compile(r"^\s*material\[(\d+)\]\s*:\s*([A-Za-z0-9\-]+)\s*=\s*(.*?)\s*$")
    for lineno, raw in enumerate(lines, start=1):
        line = raw.split("#")[0].strip()
        if not line or line.lower().startswith("material:"):
            continue
        m = pat.match(line)
        if not m:
            if line.lower().startswith("material"):
                raise ExchangeFileError(f"{path}, line {lineno}: cannot parse {raw.strip()!r} "
                                        f"(expected material[n]:keyword=value)")
            continue
        mats[int(m.group(1))][m.group(2).lower()] = (m.group(3).split("!")[0].strip(), lineno)
    if not mats:
        raise ExchangeFileError(f"{path}: no material[n]: entries — not a Vampire material file")
    return mats


def read_vampire(ucf_path, mat_path=None, spins: dict | None = None, g: float = 2.0, tol: float = 1e-9,
                 pbc=None) -> SpinModel:
    """Read a Vampire ``.UCF`` (+ ``.mat``) into a SpinModel (internal convention, meV, J > 0 AF).

    Spins: S = round(2 μ_s/g)/2 from ``atomic-spin-moment`` (g = 2 unless given; ``spins`` = {material name or
    element: S} overrides).  Vampire → internal: J_int = VAMPIRE_UCF.to_internal(J_V, S_i, S_j) after averaging
    the (i,j,R) and (j,i,−R)ᵀ entries (relative ``tol``); a uniaxial constant k_u along e becomes
    A = −(k_u/S²) e eᵀ (meV).  Isotropic, vectorial (diagonal) and tensorial exchange types are read.
    ``pbc``: as recorded by :func:`write_vampire` in a comment, else a slab if the sites leave ≥ 10 Å along a3.
    """
    ucf_path, lines = _read_lines(ucf_path)
    mat_path = Path(mat_path) if mat_path is not None else ucf_path.with_suffix(".mat")
    data = [(q + 1, ln) for q, ln in enumerate(lines) if ln.strip() and "#" not in ln]
    pos = 0

    def take(what):
        nonlocal pos
        if pos >= len(data):
            raise ExchangeFileError(f"{ucf_path}, line {len(lines)}: file ends before {what} (truncated?)")
        pos += 1
        return data[pos - 1]

    lineno, text = take("the unit-cell size")
    toks = text.split()
    if len(toks) < 3:
        raise ExchangeFileError(f"{ucf_path}, line {lineno}: unit-cell size needs 3 numbers")
    size = np.array([_num(t, ucf_path, lineno, "unit-cell size") for t in toks[:3]])
    shape = []
    for q in range(3):
        lineno, text = take("the three unit-cell vectors")
        toks = text.split()
        if len(toks) < 3:
            raise ExchangeFileError(f"{ucf_path}, line {lineno}: unit-cell vector needs 3 numbers")
        shape.append([_num(t, ucf_path, lineno, "unit-cell vector component") for t in toks[:3]])
    shape = np.array(shape)
    cell = shape / np.linalg.norm(shape, axis=1)[:, None] * size[:, None]
    lineno, text = take("the atoms header")
    toks = text.split()
    n_atoms = _int(toks[0], ucf_path, lineno, "number of atoms")
    if n_atoms < 1:
        raise ExchangeFileError(f"{ucf_path}, line {lineno}: number of atoms must be positive, got {n_atoms}")
    frac, mat_ids = np.zeros((n_atoms, 3)), []
    for q in range(n_atoms):
        lineno, text = take(f"atom {q} of {n_atoms}")
        toks = text.split()
        if len(toks) < 4:
            raise ExchangeFileError(f"{ucf_path}, line {lineno}: atom line needs id cx cy cz [material ...]")
        frac[q] = [_num(t, ucf_path, lineno, "fractional coordinate") for t in toks[1:4]]
        mat_ids.append(_int(toks[4], ucf_path, lineno, "material id") if len(toks) > 4 else 0)
    lineno, text = take("the interactions header")
    toks = text.split()
    n_int = _int(toks[0], ucf_path, lineno, "number of interactions")
    kind = toks[1].lower() if len(toks) > 1 else "isotropic"
    nvals = {"isotropic": 1, "0": 1, "vectorial": 3, "1": 3, "tensorial": 9, "2": 9}.get(kind)
    if nvals is None:
        raise ExchangeFileError(f"{ucf_path}, line {lineno}: exchange type {toks[1]!r} not supported "
                                f"(isotropic, vectorial, tensorial)")
    raw = []
    for q in range(n_int):
        lineno, text = take(f"interaction {q} of {n_int}")
        toks = text.split()
        if len(toks) < 6 + nvals:
            raise ExchangeFileError(f"{ucf_path}, line {lineno}: {kind} interaction needs IID i j dx dy dz and "
                                    f"{nvals} value(s), got {len(toks)} fields")
        i, j = (_int(t, ucf_path, lineno, "atom index") for t in toks[1:3])
        if not (0 <= i < n_atoms and 0 <= j < n_atoms):
            raise ExchangeFileError(f"{ucf_path}, line {lineno}: atom index outside 0..{n_atoms - 1}")
        R = tuple(_int(t, ucf_path, lineno, "cell offset") for t in toks[3:6])
        vals = [_num(t, ucf_path, lineno, "exchange value") for t in toks[6:6 + nvals]]
        J = vals[0] * np.eye(3) if nvals == 1 else np.diag(vals) if nvals == 3 else np.array(vals).reshape(3, 3)
        raw.append((i, j, R, J, lineno))
    if pos < len(data):
        _warn(f"{ucf_path}, line {data[pos][0]}: further sections (biquadratic exchange?) ignored")
    mats = _read_vampire_mat(mat_path)
    sites, single = [], []
    for q in range(n_atoms):
        entry = mats.get(mat_ids[q] + 1)
        if entry is None:
            raise ExchangeFileError(f"{mat_path}: no material[{mat_ids[q] + 1}] for atom {q} of {ucf_path.name}")
        name = entry.get("material-name", (f"m{mat_ids[q] + 1}", 0))[0]
        el = entry.get("material-element", (_element_of(name), 0))[0]
        if "atomic-spin-moment" not in entry:
            raise ExchangeFileError(f"{mat_path}: material[{mat_ids[q] + 1}] has no atomic-spin-moment")
        mu, ln = entry["atomic-spin-moment"]
        mu = _num(mu.split()[0] if mu.split() else mu, mat_path, ln, "atomic-spin-moment")
        if spins is not None and (name in spins or el in spins):
            S = float(spins.get(name, spins.get(el)))
        else:
            S = round(2 * mu / g) / 2.0
            if S <= 0:
                raise ExchangeFileError(f"{mat_path}, line {ln}: moment {mu} μB gives S = 0; pass spins=")
        ku_s, ln = entry.get("uniaxial-anisotropy-constant", entry.get("second-order-uniaxial-anisotropy-constant",
                                                                      ("0", 0)))
        ku = _num(ku_s.split()[0] if ku_s.split() else ku_s, mat_path, ln, "anisotropy constant")
        e_s, ln = entry.get("uniaxial-anisotropy-direction", ("0 0 1", 0))
        toks = [t for t in re.split(r"[,\s]+", e_s) if t]
        if len(toks) != 3:
            raise ExchangeFileError(f"{mat_path}, line {ln}: anisotropy direction needs 3 components")
        e = np.array([_num(t, mat_path, ln, "direction component") for t in toks])
        if np.linalg.norm(e) == 0:
            raise ExchangeFileError(f"{mat_path}, line {ln}: anisotropy direction is the zero vector")
        e = e / np.linalg.norm(e)
        single.append(-(ku * _MEV_PER_UNIT["J"]) / S ** 2 * np.outer(e, e))
        sites.append(Site(frac[q] @ cell, el, S, float(g), name))
    pairs = _collect(raw, True, str(ucf_path), tol * max(1e-300, max(np.max(np.abs(r[3])) for r in raw))
                     if raw else tol, "Vampire", "J")
    positions = np.array([s.position for s in sites])
    pbc = pbc if pbc is not None else _pbc_from_tag(lines)
    model = _new_model(cell, sites, pbc if pbc is not None else _guess_pbc(cell, positions),
                       {"source": str(ucf_path), "format": "Vampire UCF", "convention_in_file": VAMPIRE_UCF.name})
    model.single_ion = single
    for (i, j, R), JV in pairs.items():
        model.add_bond(i, j, R, VAMPIRE_UCF.to_internal(JV, sites[i].spin, sites[j].spin))
    return _validated(model, ucf_path)

