"""Readers of users' DFT outputs, returning the same :class:`~wannmag.workflows.dft.DFTRecord` as the embedded engine.

* :func:`read_vasp` — ``vasprun.xml`` and/or ``OUTCAR`` (a file or a directory holding them): total energy
  (energy(σ→0), eV), per-atom moments (OUTCAR ``magnetization (x)``, μ_B), Fermi level, band gaps per spin.
* :func:`read_qe` — Quantum ESPRESSO ``pw.x`` output: total energy (``!    total energy``, Ry → eV), per-site moments
  (``Magnetic moment per site``; QE ≥ 7 and QE 6 formats), Fermi level, gaps.
* :func:`read_wannier_dir` — a directory of Wannier90 files with both spin channels (``<seed>_up_hr.dat``,
  ``<seed>_dn_hr.dat``, their ``.win``; optional ``<seed>_nm_hr.dat``), validated (files exist, num_wann agree).
* :func:`read_output` — dispatch on the file name / content.

Conventions: energies eV (per cell and per magnetic ion), moments μ_B, lengths Å.  Bad input (missing, truncated,
unfinished or inconsistent files) raises :class:`ReaderError` with one line naming the file and the problem.
The configuration pattern σ_i is taken from the signs of the moments on the magnetic sites (found by
``wannmag.structures.find_magnetic_sites``) unless given.
"""

from __future__ import annotations

import re
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import ase.io
import numpy as np
from ase import Atoms

from ..errors import WannmagError
from ..structures import find_magnetic_sites
from ..tightbinding.w90 import gunzipped
from .dft import DFTRecord, band_gaps

__all__ = ["ReaderError", "read_vasp", "read_qe", "read_wannier_dir", "read_output"]


class ReaderError(WannmagError):
    """A user's DFT or Wannier90 output cannot be read."""


def _first_line(exc: BaseException) -> str:
    s = str(exc)
    return f"{type(exc).__name__}: {s.splitlines()[0][:150]}" if s else type(exc).__name__


def _check_file(path: Path, what: str) -> Path:
    if not path.exists():
        raise ReaderError(f"{path}: no such file ({what})")
    if path.is_dir():
        raise ReaderError(f"{path}: is a directory, expected a {what}")
    if not path.is_file():
        raise ReaderError(f"{path}: not a regular file, expected a {what}")
    if path.stat().st_size == 0:
        raise ReaderError(f"{path}: file is empty")
    return path


def _magnetic(atoms, magnetic=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return find_magnetic_sites(atoms, magnetic=magnetic)
        except WannmagError:
            return None


def _record(source, path, atoms, energy, moments, efermi, eigs_skn, config, pattern, supercell, version, magnetic,
            extra=None, warns=None) -> DFTRecord:
    sub = _magnetic(atoms, magnetic)
    idx = list(sub.indices) if sub is not None else []
    n_sites = len(idx)
    moments = None if moments is None else np.asarray(moments, float).reshape(-1)
    site_m = moments[idx].tolist() if moments is not None and len(moments) == len(atoms) else []
    if pattern is None:
        pattern = [int(np.sign(m)) if abs(m) > 0.1 else 0 for m in site_m] if site_m else []
    if config is None:
        if not site_m:
            config = "unknown"
        elif all(s == 0 for s in pattern):
            config = "NM"
        elif all(s >= 0 for s in pattern) or all(s <= 0 for s in pattern):
            config = "FM"
        else:
            config = "AFM"
    gaps, gap = ([], None)
    if eigs_skn is not None and efermi is not None and np.size(eigs_skn):
        gaps, gap = band_gaps(eigs_skn, efermi)
    total = float(np.sum(moments)) if moments is not None and len(moments) else None
    return DFTRecord(source=source, formula=atoms.get_chemical_formula(), config=str(config),
                     pattern=[int(s) for s in pattern], n_sites=n_sites,
                     supercell=np.asarray(supercell if supercell is not None else np.eye(3), int).tolist(),
                     energy=energy, energy_per_ion=(energy / n_sites if energy is not None and n_sites else None),
                     moments=[] if moments is None else np.round(moments, 4).tolist(),
                     site_moments=np.round(site_m, 4).tolist(), total_moment=total, fermi_level=efermi,
                     gaps=[round(g, 4) for g in gaps], gap=None if gap is None else round(gap, 4),
                     code_version=version, run_dir=str(Path(path).parent), warnings=list(warns or []),
                     extra={"file": str(path), "elements": sub.elements if sub is not None else [],
                            "site_indices": [int(i) for i in idx],
                            "spins": [float(s) for s in sub.spins] if sub is not None else [], **(extra or {})})


# --------------------------------------------------------------------------------------------------------------
# VASP
# --------------------------------------------------------------------------------------------------------------

def _vasprun(path: Path):
    _check_file(path, "vasprun.xml")
    text_tail = path.read_bytes()[-400:].decode("latin-1", "replace").strip()
    if not text_tail.endswith("</modeling>"):
        raise ReaderError(f"{path}: truncated (no closing </modeling>; the VASP run did not finish)")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise ReaderError(f"{path}: not valid XML ({_first_line(exc)})") from None
    calcs = root.findall("calculation")
    if not calcs or calcs[-1].find("energy") is None:
        raise ReaderError(f"{path}: no finished <calculation> with an <energy> block")
    last = calcs[-1]
    scsteps = last.findall("scstep/energy")
    e_node = (scsteps[-1] if scsteps else last.find("energy")).find("i[@name='e_0_energy']")
    if e_node is None:
        e_node = last.find("energy/i[@name='e_wo_entrp']")
    if e_node is None:
        raise ReaderError(f"{path}: no e_0_energy / e_wo_entrp in the last calculation")
    energy = float(e_node.text)
    ef_node = last.find("dos/i[@name='efermi']")
    efermi = float(ef_node.text) if ef_node is not None else None
    eigs = []
    for spin_set in last.findall("eigenvalues/array/set/set"):
        eigs.append([[float(r.text.split()[0]) for r in kset.findall("r")] for kset in spin_set.findall("set")])
    try:
        eigs = np.array(eigs, float) if eigs else None
    except ValueError:
        raise ReaderError(f"{path}: inconsistent <eigenvalues> block") from None
    ispin = root.find("parameters//i[@name='ISPIN']")
    version = root.find("generator/i[@name='version']")
    version = f"vasp {version.text.strip()}" if version is not None else "vasp"

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            atoms = ase.io.read(path, format="vasp-xml", index=-1)
    except Exception as exc:  # noqa: BLE001
        raise ReaderError(f"{path}: ASE cannot read the structure ({_first_line(exc)})") from None
    return atoms, energy, efermi, eigs, version, (int(ispin.text) if ispin is not None else None)


def _eigs_from_singlepoint(atoms):
    """Eigenvalues [spin, k, band] from the k-point list of an ASE single-point calculator (None if absent)."""
    kpts = getattr(getattr(atoms, "calc", None), "kpts", None)
    if not kpts:
        return None
    try:
        nspin = max(k.s for k in kpts) + 1
        by_spin = [[k.eps_n for k in kpts if k.s == s] for s in range(nspin)]
        return np.array(by_spin, float)
    except (AttributeError, ValueError):
        return None


def _outcar(path: Path):
    _check_file(path, "OUTCAR")
    text = path.read_text(errors="replace")
    if "General timing and accounting informations for this job" not in text:
        raise ReaderError(f"{path}: truncated (no final timing section; the VASP run did not finish)")
    m = re.findall(r"energy\(sigma->0\)\s*=\s*([-0-9.Ee+]+)", text)
    if not m:
        raise ReaderError(f"{path}: no 'energy(sigma->0)' line (no finished electronic step)")
    energy = float(m[-1])
    ef = re.findall(r"E-fermi\s*:\s*([-0-9.Ee+]+)", text)
    efermi = float(ef[-1]) if ef else None

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            atoms = ase.io.read(path, format="vasp-out", index=-1)
    except Exception as exc:  # noqa: BLE001
        raise ReaderError(f"{path}: ASE cannot parse this OUTCAR ({_first_line(exc)})") from None
    moments = None
    try:
        moments = atoms.calc.results.get("magmoms")
    except AttributeError:
        pass
    eigs = _eigs_from_singlepoint(atoms)
    v = re.search(r"^\s*(vasp\.[0-9.]+)", text, re.M)
    return atoms, energy, efermi, eigs, moments, (v.group(1).replace(".", " ", 1) if v else "vasp")


def read_vasp(path, config=None, pattern=None, supercell=None, magnetic=None) -> DFTRecord:
    """Energy, moments, Fermi level and gaps from ``vasprun.xml`` and/or ``OUTCAR``.

    ``path`` is one of the two files or a directory holding them.  With both, energy/eigenvalues come from
    vasprun.xml and the per-atom moments from OUTCAR (vasprun.xml has no site moments); the two energies must agree
    to 1 meV.  ``config``/``pattern``/``supercell`` label the configuration (default: from the moment signs).
    """
    p = Path(path)
    if not p.exists():
        raise ReaderError(f"{p}: no such file or directory")
    if p.is_dir():
        xml, out = p / "vasprun.xml", p / "OUTCAR"
        if not xml.exists() and not out.exists():
            raise ReaderError(f"{p}: neither vasprun.xml nor OUTCAR found")
        xml = xml if xml.exists() else None
        out = out if out.exists() else None
    elif p.name.lower().endswith(".xml"):
        xml, out = p, (p.parent / "OUTCAR" if (p.parent / "OUTCAR").exists() else None)
    else:
        xml, out = None, p
    warns = []
    if xml is not None:
        atoms, energy, efermi, eigs, version, ispin = _vasprun(xml)
        moments = None
        if out is not None:
            a2, e2, ef2, _, moments, _ = _outcar(out)
            if abs(e2 - energy) > 1e-3:
                raise ReaderError(f"{out}: energy {e2:.6f} eV disagrees with {xml} ({energy:.6f} eV); "
                                  "are they from the same run?")
            if len(a2) != len(atoms):
                raise ReaderError(f"{out}: {len(a2)} atoms, but {xml} has {len(atoms)}")
        elif ispin == 2:
            warns.append(f"{xml}: spin-polarised but no OUTCAR next to it: site moments unavailable")
        src = xml
    else:
        atoms, energy, efermi, eigs, moments, version = _outcar(out)
        src = out
    return _record("vasp", src, atoms, energy, moments, efermi, eigs, config, pattern, supercell, version, magnetic,
                   warns=warns)


# --------------------------------------------------------------------------------------------------------------
# Quantum ESPRESSO
# --------------------------------------------------------------------------------------------------------------

_QE_MAG_NEW = re.compile(r"atom\s+(\d+)\s+\(R=[^)]*\)\s+charge=\s*([-0-9.]+)\s+magn=\s*([-0-9.]+)")
_QE_MAG_OLD = re.compile(r"atom:\s+(\d+)\s+charge:\s+([-0-9.]+)\s+magn:\s+([-0-9.]+)")


def read_qe(path, config=None, pattern=None, supercell=None, magnetic=None) -> DFTRecord:
    """Energy (eV), per-site moments (μ_B), Fermi level and gaps from a pw.x output file."""
    p = _check_file(Path(path), "pw.x output file")
    text = p.read_text(errors="replace")
    if "Program PWSCF" not in text:
        raise ReaderError(f"{p}: not a pw.x output (no 'Program PWSCF' header)")
    if "convergence NOT achieved" in text:
        raise ReaderError(f"{p}: SCF did not converge ('convergence NOT achieved')")
    if "JOB DONE" not in text:
        raise ReaderError(f"{p}: truncated (no 'JOB DONE.'; the pw.x run did not finish)")
    if not re.search(r"^!\s+total energy", text, re.M):
        raise ReaderError(f"{p}: no converged '!    total energy' line")
    m = re.search(r"number of atoms/cell\s*=\s*(\d+)", text)
    if not m:
        raise ReaderError(f"{p}: no 'number of atoms/cell' line in the header")
    nat = int(m.group(1))
    # moments: the last 'Magnetic moment per site' block (QE >= 7 'magn=' and QE 6 'magn:' formats)
    moments = None
    blocks = [m.start() for m in re.finditer(r"Magnetic moment per site", text)]
    if blocks:
        seg = text[blocks[-1]:]
        rows = _QE_MAG_NEW.findall(seg) or _QE_MAG_OLD.findall(seg)
        vals = {}
        for i, _, mag in rows:
            if int(i) in vals:
                break
            vals[int(i)] = float(mag)
        if sorted(vals) != list(range(1, nat + 1)):
            raise ReaderError(f"{p}: 'Magnetic moment per site' lists {len(vals)} atoms, the structure has {nat}")
        moments = np.array([vals[i + 1] for i in range(nat)])
    elif re.search(r"nspin\s*=\s*2|total magnetization", text, re.I):
        raise ReaderError(f"{p}: spin-polarised run without a 'Magnetic moment per site' block")

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            atoms = ase.io.read(p, format="espresso-out", index=-1)
    except Exception as exc:  # noqa: BLE001
        raise ReaderError(f"{p}: ASE cannot parse this pw.x output ({_first_line(exc)})") from None
    try:
        energy = float(atoms.get_potential_energy())
    except Exception as exc:  # noqa: BLE001
        raise ReaderError(f"{p}: no total energy ({_first_line(exc)})") from None
    if len(atoms) != nat:
        raise ReaderError(f"{p}: header gives {nat} atoms, the parsed structure has {len(atoms)}")
    efermi = None
    m = re.findall(r"the Fermi energy is\s+([-0-9.]+)\s+ev", text)
    if m:
        efermi = float(m[-1])
    else:
        m = re.findall(r"highest occupied, lowest unoccupied level \(ev\):\s+([-0-9.]+)\s+([-0-9.]+)", text)
        if m:
            efermi = 0.5 * (float(m[-1][0]) + float(m[-1][1]))
        else:
            m = re.findall(r"highest occupied level \(ev\):\s+([-0-9.]+)", text)
            efermi = float(m[-1]) if m else None
    eigs = _eigs_from_singlepoint(atoms)
    v = re.search(r"Program PWSCF\s+(v\.?\S+)", text)
    return _record("qe", p, atoms, energy, moments, efermi, eigs, config, pattern, supercell,
                   f"pw.x {v.group(1)}" if v else "pw.x", magnetic)


# --------------------------------------------------------------------------------------------------------------
# Wannier90 directory
# --------------------------------------------------------------------------------------------------------------

def _hr_num_wann(path: Path) -> int:
    try:
        with open(path) as f:
            f.readline()
            n = int(f.readline().split()[0])
            nr = int(f.readline().split()[0])
    except (ValueError, IndexError, UnicodeDecodeError):
        raise ReaderError(f"{path}: not a Wannier90 hr.dat (header lines 2–3 must give num_wann and nrpts)") from None
    if n < 1 or nr < 1:
        raise ReaderError(f"{path}: num_wann = {n}, nrpts = {nr}")
    return n


def _win_num_wann(path: Path) -> int | None:
    m = re.search(r"^\s*num_wann\s*[=:]\s*(\d+)", path.read_text(errors="replace"), re.M | re.I)
    return int(m.group(1)) if m else None


def read_wannier_dir(path, seed: str | None = None) -> DFTRecord:
    """Locate and validate a Wannier90 pair of spin channels in directory ``path``.

    Looks for ``<seed>_up_hr.dat`` and ``<seed>_dn_hr.dat`` (also ``<seed>.up_hr.dat``/``_down_``), their ``.win``
    files (``<seed>_up.win``; a single ``<seed>.win`` is accepted for both), and the optional spin-averaged
    ``<seed>_nm_hr.dat``; checks that num_wann agrees everywhere.  The record has no energy; ``extra`` holds the
    paths (``hr_up``, ``hr_dn``, ``hr_nm``, ``win_up``, ``win_dn``, ``centres_up``…), ``num_wann`` and ``seed``.
    """
    d = Path(path)
    if not d.exists():
        raise ReaderError(f"{d}: no such directory")
    if not d.is_dir():
        raise ReaderError(f"{d}: not a directory (expected a directory of Wannier90 files)")

    d = gunzipped(d) or d  # gzip-compressed files (as shipped in data/dft) are read from a decompressed copy
    ups = sorted(d.glob(f"{seed or '*'}[_.]up_hr.dat")) or sorted(d.glob(f"{seed or '*'}[_.]up[_.]hr.dat"))
    dns = sorted(d.glob(f"{seed or '*'}[_.]dn_hr.dat")) + sorted(d.glob(f"{seed or '*'}[_.]down_hr.dat"))
    if not ups and not dns:
        raise ReaderError(f"{d}: no <seed>_up_hr.dat / <seed>_dn_hr.dat Wannier90 files")
    if not ups:
        raise ReaderError(f"{d}: spin-up channel missing (found {dns[0].name} but no *_up_hr.dat)")
    if not dns:
        raise ReaderError(f"{d}: spin-down channel missing (found {ups[0].name} but no *_dn_hr.dat)")
    seeds = sorted({re.sub(r"[_.]up_hr\.dat$", "", u.name) for u in ups})
    if len(seeds) > 1 and seed is None:
        raise ReaderError(f"{d}: several seeds ({', '.join(seeds)}); choose one with seed=")
    s = seeds[0]
    hr_up = d / f"{s}_up_hr.dat" if (d / f"{s}_up_hr.dat").exists() else ups[0]
    hr_dn = next((x for x in (d / f"{s}_dn_hr.dat", d / f"{s}_down_hr.dat", d / f"{s}.dn_hr.dat") if x.exists()), None)
    if hr_dn is None:
        raise ReaderError(f"{d}: spin-down channel of seed {s!r} missing (no {s}_dn_hr.dat)")
    files = {"hr_up": hr_up, "hr_dn": hr_dn}
    for ch in ("up", "dn"):
        win = next((x for x in (d / f"{s}_{ch}.win", d / f"{s}.{ch}.win", d / f"{s}.win") if x.exists()), None)
        if win is None:
            raise ReaderError(f"{d}: no .win file for the {ch} channel (expected {s}_{ch}.win)")
        files[f"win_{ch}"] = win
        for key, ext in (("centres", "_centres.xyz"), ("tb", "_tb.dat"), ("wsvec", "_wsvec.dat")):
            f = d / f"{s}_{ch}{ext}"
            if f.exists():
                files[f"{key}_{ch}"] = f
    nm = d / f"{s}_nm_hr.dat"
    if nm.exists():
        files["hr_nm"] = nm
        if (d / f"{s}_nm.win").exists():
            files["win_nm"] = d / f"{s}_nm.win"
    nws = {k: _hr_num_wann(v) for k, v in files.items() if k.startswith("hr_")}
    for k, v in files.items():
        if k.startswith("win_"):
            n = _win_num_wann(v)
            if n is None:
                raise ReaderError(f"{v}: no num_wann in this .win file")
            nws[k] = n
    if len(set(nws.values())) != 1:
        detail = ", ".join(f"{Path(files[k]).name}: {n}" for k, n in nws.items())
        raise ReaderError(f"{d}: num_wann differs between files ({detail})")
    nw = next(iter(nws.values()))

    atoms = _atoms_from_win(files["win_up"]) or Atoms()
    rec = _record("wannier90", files["hr_up"], atoms, None, None, None, None, "FM" if len(atoms) else "unknown",
                  None, None, "wannier90", None,
                  extra={"seed": s, "num_wann": nw, **{k: str(v) for k, v in files.items()}})
    rec.run_dir = str(d)
    return rec


def _atoms_from_win(path: Path):
    """Structure from the unit_cell_cart / atoms_frac (or atoms_cart) blocks of a .win file (None if absent)."""
    text = path.read_text(errors="replace")
    cell = re.search(r"begin\s+unit_cell_cart(.*?)end\s+unit_cell_cart", text, re.S | re.I)
    if not cell:
        return None
    rows = [ln.split() for ln in cell.group(1).strip().splitlines() if ln.strip()]
    scale = 1.0
    if rows and rows[0][0].lower() in ("ang", "bohr"):
        scale = 0.529177210903 if rows[0][0].lower() == "bohr" else 1.0
        rows = rows[1:]
    try:
        C = np.array([[float(x) for x in r[:3]] for r in rows[:3]]) * scale
        frac = re.search(r"begin\s+atoms_frac(.*?)end\s+atoms_frac", text, re.S | re.I)
        cart = re.search(r"begin\s+atoms_cart(.*?)end\s+atoms_cart", text, re.S | re.I)
        if frac:
            lines = [ln.split() for ln in frac.group(1).strip().splitlines() if ln.strip()]
            syms = [re.sub(r"[^A-Za-z]", "", ln[0]) for ln in lines]
            return Atoms(syms, scaled_positions=[[float(x) for x in ln[1:4]] for ln in lines], cell=C, pbc=True)
        if cart:
            lines = [ln.split() for ln in cart.group(1).strip().splitlines() if ln.strip()]
            sc = 1.0
            if lines and lines[0][0].lower() in ("ang", "bohr"):
                sc = 0.529177210903 if lines[0][0].lower() == "bohr" else 1.0
                lines = lines[1:]
            syms = [re.sub(r"[^A-Za-z]", "", ln[0]) for ln in lines]
            return Atoms(syms, positions=[[float(x) * sc for x in ln[1:4]] for ln in lines], cell=C, pbc=True)
    except (ValueError, IndexError, KeyError):
        raise ReaderError(f"{path}: malformed unit_cell_cart / atoms block") from None
    return None


def read_output(path, **kw) -> DFTRecord:
    """Read any supported output: a Wannier90 directory, a VASP directory/vasprun.xml/OUTCAR, or a pw.x output."""
    p = Path(path)
    if not p.exists():
        raise ReaderError(f"{p}: no such file or directory")
    if p.is_dir():
        if list(p.glob("*_hr.dat")):
            return read_wannier_dir(p, **kw)
        return read_vasp(p, **kw)
    name = p.name.lower()
    if name.endswith(".xml") or "outcar" in name:
        return read_vasp(p, **kw)
    head = p.read_text(errors="replace")[:20000]
    if "Program PWSCF" in head:
        return read_qe(p, **kw)
    if "vasp." in head and "POTCAR:" in head:
        return read_vasp(p, **kw)
    raise ReaderError(f"{p}: unrecognised output (expected vasprun.xml, OUTCAR, a pw.x output or a Wannier90 directory)")
