"""Export and import of a :class:`~wannmag.magnetism.spinmodel.SpinModel` for other spin codes.

Every exporter converts the internal tensors with an explicit :class:`~wannmag.magnetism.spinmodel.Convention`
and every importer converts back with the same object, so a round trip SpinModel → file → SpinModel reproduces the
tensors and the classical energies.

Internal convention (for reference; see :mod:`wannmag.magnetism.spinmodel`)::

    H = Σ_{bonds (i,j,R), each once} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i − g μ_B Σ_i B·S_i ,

classical spins of length S, J and A in meV, J > 0 antiferromagnetic.  The antisymmetric part of J is the DMI vector
D with S_i·J^A·S_j = D·(S_i × S_j), i.e. J^A = [[0, D_z, −D_y], [−D_z, 0, D_x], [D_y, −D_x, 0]].

Conventions of the external codes, with the source each is based on
---------------------------------------------------------------------

TB2J ``exchange.out`` (:data:`TB2J`, read and write)
    E = −Σ_{i≠j} [J_iso e_i·e_j + e_i·J_ani·e_j + D_ij·(e_i × e_j)]: both directions (i,j,R) and (j,i,−R) listed,
    unit spins e, meV, J > 0 ferromagnetic.  Source: TB2J's writer ``TB2J/io_exchange/io_txt.py`` (mailhexu/TB2J)
    for the layout and the TB2J documentation (quoted in the ABACUS TB2J interface page) for the Hamiltonian.  The
    TB2J tensor is J_iso·1 + J_ani + J^A(D) with the same D ↔ J^A relation as above; J_int = −2 J_TB2J/(S_i S_j).
    A real file (CrI3, ABACUS + TB2J 0.8.2) confirms D_ji(−R) = −D_ij(R) and J_ani,ji(−R) = J_ani,ij(R), i.e. the
    reverse bond carries the transposed tensor.  J_ani is added as printed, like TB2J's ``combine_J_tensor``; a
    J_ani with a non-zero trace (seen in merged non-collinear results) is reported.  The spin S is round(|m|)/2
    from the Wannier moment unless given; single-ion terms are neither read nor written.

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

mcsolver save file, version 2.2 (:data:`MCSOLVER`, read and write)
    E = ½ Σ_i Σ_{links of i} S_i·J·S_j + Σ_i Σ_α D_α (S_i^α)²; each listed bond creates the link i→j with J and
    j→i with Jᵀ (``Lattice.py``: strength / invStrength), so H = Σ_{listed bonds} S_i·J·S_j, spins of length S
    (``heisenbergLib.c``: spin initialised with |S| = "spin"), energies in kelvin (GUI: "all energy units are in
    Kelvin"), J < 0 ferromagnetic (sample ``samples/CrI3With2NNCoupling``).  Layout copied from that sample; the
    v2.2 reader itself was not available (see the notes for what is uncertain).

magnopy model file (txt, :func:`magnopy_convention`, read and write)
    ``Notation`` section with Double-counting, Spin-normalized, Exchange-factor c, On-site-factor c_os:
    H = c Σ_{listed (i,j,R)} S_i·J·S_j + c_os Σ_i S_i·A·S_i, both directions listed when double counting, unit
    spins when normalised, units from the section headers (meV, eV, J, K, Ry).  Source: the model-file
    documentation of magnopy 0.1 (``docs/source/user-guide/input/model-file/*.inc``, repository
    marcomarino123/magnopy, a fork of adrybakov/magnopy) and its reader ``src/magnopy/io/txt/internal.py``; the same
    four properties appear as ``Convention(multiple_counting, spin_normalized, c21, c22)`` in current magnopy.

Bad input to every reader raises :class:`ExchangeFileError` (a :class:`~wannmag.errors.WannmagError`) with one line
naming the file and, where it applies, the line number.  Quantities a format cannot hold (the Zeeman field, a
non-uniaxial single-ion tensor for Vampire, off-diagonal single-ion terms for mcsolver, single-ion terms for TB2J)
produce one :class:`ExchangeFileWarning` line each.
"""

from __future__ import annotations

import re
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np

from .._atomic import atomic_write_text as _atomic_write
from .._atomic import special_file
from ..errors import WannmagError
from .spinmodel import MEV_PER_K, TB2J, Convention, Site, SpinModel

__all__ = ["ExchangeFileError", "ExchangeFileWarning", "TB2J", "VAMPIRE_UCF", "MCSOLVER", "MAGNOPY_DEFAULT",
           "magnopy_convention", "write_tb2j", "read_tb2j", "write_vampire", "read_vampire", "write_mcsolver",
           "read_mcsolver", "write_magnopy", "read_magnopy", "dmi_matrix", "tb2j_structure"]

#: Vampire: H = −Σ_{pairs} S_i·J_ij·S_j = −½ Σ_{i≠j} (both directions listed), unit spins, joules (see module doc)
VAMPIRE_UCF = Convention("Vampire (UCF)", sign=-1, double_counting=True, unit_spins=True, prefactor=0.5, unit="J")
#: mcsolver: H = Σ_{listed bonds} S_i·J_ij·S_j, each bond once, spins of length S, kelvin, J > 0 AF
MCSOLVER = Convention("mcsolver", sign=+1, double_counting=False, unit_spins=False, unit="K")

_MEV_PER_UNIT = {"meV": 1.0, "eV": 1000.0, "K": MEV_PER_K, "J": 1.0 / 1.602176634e-22, "Ry": 13605.693122994}


class ExchangeFileError(WannmagError):
    """A TB2J, Vampire, mcsolver or magnopy file cannot be read (message: file, line, problem)."""


class ExchangeFileWarning(UserWarning):
    """Something of the model cannot be represented in the target format, or an input file is inconsistent."""


def _warn(msg: str) -> None:
    warnings.warn(msg, ExchangeFileWarning, stacklevel=3)


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


# ================================================================================================ TB2J
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
    from ase import Atoms

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


# ================================================================================================ Vampire
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


# ================================================================================================ mcsolver
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


# ================================================================================================ magnopy
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
    # cell
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
    # atoms
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
    index = {lab: q for q, lab in enumerate(labels)}
    # notation
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
    onsite_factor = props.get("o", 1.0)
    # exchange
    raw = []
    unit = "meV"
    if "exchange" in sec:
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
        for block in blocks:
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
            raw.append((index[toks[0]], index[toks[1]], R, J, ln0))
    if unit not in ("meV", "eV", "J", "K"):  # e.g. Ry: convert the numbers, keep the notation
        raw = [(i, j, R, J * _MEV_PER_UNIT[unit], ln) for i, j, R, J, ln in raw]
        unit = "meV"
    conv = magnopy_convention(props["d"], props["s"], props["e"], unit)
    pairs = _collect(raw, conv.double_counting, str(path),
                     1e-9 * max([1e-300] + [float(np.max(np.abs(r[3]))) for r in raw]), "magnopy", unit)
    # on-site
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
    positions = np.array([s.position for s in sites])
    pbc = pbc if pbc is not None else _pbc_from_tag(lines)
    model = _new_model(cell, sites, pbc if pbc is not None else _guess_pbc(cell, positions),
                       {"source": str(path), "format": "magnopy model file", "convention_in_file": conv.name})
    model.single_ion = single
    for (i, j, R), Jm in pairs.items():
        model.add_bond(i, j, R, conv.to_internal(Jm, sites[i].spin, sites[j].spin))
    return _validated(model, path)
