"""Maximally-localised Wannier functions (Wannier90) from a GPAW calculation, per spin channel.

Conventions of wannmag: tight-binding energies in eV, lengths in Å (exchange meV, temperatures K; the spin model
H = Σ_{i<j} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i, each bond once, classical spins of length S, J > 0 AF, is built
downstream from these Hamiltonians).

What :func:`wannierise` writes, per spin channel c ∈ {up, dn} of a spin-polarised run (or c = nm of a
non-spin-polarised one), into ``outdir``:

    <seed>_<c>.win  .wout  _hr.dat  _tb.dat  _wsvec.dat  _centres.xyz      standard Wannier90 files
    <seed>_<c>_dft_bands.json                                             DFT eigenvalues on the k-mesh
    <seed>_<c>_quality.json                                               spreads, centre offsets, band error

Projections ``"dp"``: d of the magnetic ions, p of the ligands bonded to them, and p of the other atoms of a covalent
anion complex bonded to those ligands (P of [P2S6]4− in VPS3: CrI3 → 28 WFs ``Cr:d``, ``I:p``; VPS3 → 34 WFs ``V:d``,
``S:p``, ``P:p``).  Without the P p orbitals the S p manifold of VPS3 is not closed: the S p orbital pointing along
the P–S bond turns into a P–S bond orbital whose centre sits 0.5–2 Å away from S (measured, LCAO test), failing the
centre check below; with them the 34-band V d + S p + P p manifold is isolated (no disentanglement needed) and all
centres stay within 0.3 Å of their atoms.  ``"d"``: metal d only (always entangled → disentanglement).

Orbital order (the Wannier90 standard, so any tool labels the WFs correctly): one line per projected species in
the ``projections`` block, metal d lines first, then ligand p lines (e.g. ``Cr:d`` / ``I:p``, ``V:d`` / ``S:p`` /
``P:p``); Wannier90 expands each line over the atoms of that species in structure order, with m in Wannier90's order

    d: dz2, dxz, dyz, dx2-y2, dxy          p: pz, px, py

GPAW's PAW projectors use real harmonics in the order (checked in gpaw/sphere/spherical_harmonics.py, ``names``)

    l = 1: y, z, x                          l = 2: xy, yz, 3z2-r2, zx, x2-y2

so the .amn columns are written from the PAW projections ⟨p̃_i|ψ_n⟩ permuted by :data:`W90_FROM_GPAW`
(p: [1, 2, 0], d: [2, 3, 1, 4, 0]) — the WF n starts from (and, with guiding centres, stays on) the n-th projection of
the .win.  The .amn is written here (not by GPAW's writer, which follows the atom order of the structure), the
.mmn/.eig by ``gpaw.wannier.wannier90.Wannier90``.

Band window (automatic, from the projected weights w_kn = Σ_{i ∈ projections} |⟨p̃_i|ψ_kn⟩|²): at every k the
num_wann bands with the largest weight are the target manifold.  Bands below the lowest target band (semicore
states and ligand s bands — counted and characterised in the quality file) are excluded.  If the target bands are
the same contiguous block at every k and separated by gaps, the manifold is isolated (num_bands = num_wann, no
disentanglement: CrI3 d+p).  Otherwise (e.g. VPS3, where S p mixes with P sp; or d-only projections) the outer window
takes all bands up to the highest target band + 2 and the frozen window is the largest energy interval around E_F
(starting at the bottom of the manifold) that contains no non-target band; Wannier90 disentangles (e.g. d-only
projections, or a "dp" manifold crossed by other states).

Spin-averaged model: a *non-spin-polarised* calculation of the same structure, Wannierised with the same
projections (channel ``nm``).  By default it is plain PBE (U = 0): the superexchange analysis adds the Hubbard U
itself, and a Dudarev term in a non-magnetic calculation would push the partly filled d orbitals apart according to
their occupations, i.e. count U twice.  (Averaging the up and down Hamiltonians is not used: the two channels have
independent Wannier gauges and exchange-split, differently hybridised orbitals.)

Quality checks (returned and written to JSON): maximal spread (Å²), every Wannier centre within 0.5 Å of its atom
(:class:`WannierError` otherwise), and max |E_DFT − E_W| (meV) of the bands inside the frozen window (all target
bands when isolated) on the DFT k-points, where E_W are the eigenvalues of H(k) = Σ_R e^{2πik·R} H(R)/ndegen(R)
computed from the hr.dat.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase.data import covalent_radii
from ase.formula import Formula
from ase.neighborlist import neighbor_list

from ..errors import WannmagError
from ..structures import find_magnetic_sites
from ..tightbinding.w90 import W90_MR_OF_GPAW_M, hr_eigenvalues, read_hr, read_wsvec
from .dft import _jsonable, gpaw_version, read_summary, write_json_atomic, write_text_atomic
from .engine import structure_fingerprint

__all__ = ["WannierError", "wannierise", "wannier_models", "W90_ORDER", "GPAW_ORDER", "W90_FROM_GPAW",
           "gpaw_to_w90_permutation", "choose_window", "wannier90_executable",
           "select_orbitals", "WannierChannel"]

#: real-harmonic order of Wannier90 (user guide, Table 3.1/3.2) and of GPAW (gpaw/sphere/spherical_harmonics.py)
W90_ORDER = {0: ["s"], 1: ["pz", "px", "py"], 2: ["dz2", "dxz", "dyz", "dx2-y2", "dxy"]}
GPAW_ORDER = {0: ["1"], 1: ["y", "z", "x"], 2: ["xy", "yz", "3z2-r2", "zx", "x2-y2"]}


def gpaw_to_w90_permutation(l: int) -> list[int]:
    """GPAW m-index of each Wannier90 orbital of angular momentum ``l`` (W90 order): p → [1, 2, 0], d → [2, 3, 1, 4, 0];
    the inverse of the tight-binding layer's :data:`~wannmag.tightbinding.w90.W90_MR_OF_GPAW_M` (one table of GPAW's
    m order, shared with the reader of GPAW-written ``.win`` files)."""
    mr = W90_MR_OF_GPAW_M[l]
    return [mr.index(k) for k in range(1, 2 * l + 2)]


W90_FROM_GPAW = {l: gpaw_to_w90_permutation(l) for l in W90_ORDER}
_L = {"s": 0, "p": 1, "d": 2}


class WannierError(WannmagError):
    """Wannierisation cannot be run or its result fails a quality check."""


def wannier90_executable() -> str:
    """Path of ``wannier90.x`` (one-line error if it is not on PATH)."""
    exe = shutil.which("wannier90.x")
    if exe is None:
        raise WannierError("wannier90.x: not found on PATH (install Wannier90, e.g. `apt-get install wannier90`)")
    return exe


# --------------------------------------------------------------------------------------------------------------
# orbitals
# --------------------------------------------------------------------------------------------------------------

def _projector_offset(l_j, n_j, l: int) -> int:
    """Index of the first m of the bound PAW projector of angular momentum l with the largest n (valence shell)."""
    best, offset, i = None, None, 0
    for lj, nj in zip(l_j, n_j):
        if lj == l and nj >= 0 and (best is None or nj > best):
            best, offset = nj, i
        i += 2 * lj + 1
    if offset is None:
        raise WannierError(f"no bound PAW projector with l = {l}")
    return offset


def _projector_sign(setup, j_offset_l) -> float:
    """+1 or −1 so that the radial part of the chosen PAW projector is positive on its main lobe (Wannier90
    convention of a positive radial function); GPAW's bound projectors are positive, checked at run time."""
    offset, l = j_offset_l
    i = 0
    for j, lj in enumerate(setup.l_j):
        if i == offset and lj == l:
            r = np.linspace(0.0, float(setup.pt_j[j].get_cutoff()), 300)
            v = np.array([setup.pt_j[j](x) for x in r])
            return 1.0 if np.trapezoid(v * r ** (2 * l + 2), r) >= 0 else -1.0
        i += 2 * lj + 1
    return 1.0


def select_orbitals(atoms, metals, ligands, projections: str = "dp"):
    """Projection lines and the orbital list in Wannier90 order.

    Returns ``(lines, orbitals)``: ``lines`` = [(element, l)] in .win order (metal d first, then ligand p);
    ``orbitals`` = [(atom index, l, W90 name)] — one entry per WF, in Wannier90's order.
    """
    if projections not in ("dp", "d"):
        raise WannierError(f"projections must be 'dp' (metal d + ligand p) or 'd' (metal d only), got {projections!r}")
    symbols = atoms.get_chemical_symbols()
    lines = [(el, 2) for el in metals]
    if projections == "dp":
        lines += [(el, 1) for el in ligands]
    orbitals = []
    for el, l in lines:
        for a, s in enumerate(symbols):
            if s == el:
                orbitals += [(a, l, name) for name in W90_ORDER[l]]
    return lines, orbitals


def _ligand_elements(atoms, metal_indices, factor: float = 1.2) -> list[str]:
    """Non-magnetic elements bonded to a magnetic ion (d ≤ factor · sum of covalent radii)."""
    return _bonded_elements(atoms, set(int(m) for m in metal_indices), factor)[0]


def _partner_elements(atoms, metal_indices, factor: float = 1.2) -> list[str]:
    """Non-magnetic elements bonded to a ligand but not to a magnetic ion: the other atoms of a covalent anion
    complex, e.g. P of the [P2S6]4− unit in MPS3 (their p orbitals are included with projections="dp")."""
    return _bonded_elements(atoms, set(int(m) for m in metal_indices), factor)[1]


def _bonded_elements(atoms, metal: set, factor: float):
    cutoffs = [covalent_radii[n] * factor for n in atoms.numbers]
    i, j = neighbor_list("ij", atoms, cutoffs)
    lig_atoms = {int(b) for a, b in zip(i, j) if a in metal and b not in metal}
    part_atoms = {int(b) for a, b in zip(i, j) if a in lig_atoms and b not in metal and b not in lig_atoms}
    symbols = atoms.get_chemical_symbols()
    lig = list(dict.fromkeys(symbols[a] for a in sorted(lig_atoms)))
    part = list(dict.fromkeys(symbols[a] for a in sorted(part_atoms) if symbols[a] not in lig))
    order = {el: k for k, el in enumerate(dict.fromkeys(symbols))}
    return sorted(lig, key=lambda e: order[e]), sorted(part, key=lambda e: order[e])


# --------------------------------------------------------------------------------------------------------------
# band window
# --------------------------------------------------------------------------------------------------------------

@dataclass
class Window:
    """Band window of one channel (0-based band indices, energies eV)."""

    n_lo: int                      # first included band
    n_hi: int                      # last included band (inclusive)
    isolated: bool
    froz_min: float | None = None
    froz_max: float | None = None
    win_min: float | None = None
    win_max: float | None = None
    notes: list = field(default_factory=list)

    @property
    def num_bands(self) -> int:
        return self.n_hi - self.n_lo + 1


def choose_window(eps_kn, w_kn, nw: int, efermi: float, n_conv: int | None = None,
                  extra_bands: int = 2, margin: float = 0.02) -> Window:
    """Automatic window from eigenvalues ``eps_kn`` and target weights ``w_kn`` (see module docstring).

    ``n_conv``: number of converged bands (bands above are never used).
    """
    eps = np.asarray(eps_kn, float)
    w = np.asarray(w_kn, float)
    nk, nb = eps.shape
    n_conv = nb if n_conv is None else min(n_conv, nb)
    if nw > n_conv:
        raise WannierError(f"{nw} Wannier functions need at least {nw} converged bands, the calculation has {n_conv}")
    target = np.zeros((nk, nb), bool)
    for k in range(nk):
        top = np.argsort(-w[k, :n_conv], kind="stable")[:nw]
        target[k, top] = True
    frac = target.mean(axis=0)
    # bottom of the manifold: the lowest band that is a target band at half of the k-points or more
    n_lo = int(np.nonzero(frac >= 0.5)[0].min())
    n_top = int(np.nonzero(frac > 0)[0].max())
    # isolated: the nw bands from n_lo are separated by gaps from the bands below and above
    n_end = n_lo + nw - 1
    if n_end < n_conv:
        gap_below = n_lo == 0 or eps[:, n_lo - 1].max() < eps[:, n_lo].min() - 0.01
        gap_above = n_end + 1 >= nb or eps[:, n_end].max() < eps[:, n_end + 1].min() - 0.01
        # the block must carry the target character (at least 80 % of the target weight at every k; CrI3 d+p: 94 %)
        share = w[:, n_lo:n_end + 1].sum(axis=1) / np.maximum(w[:, :n_conv].sum(axis=1), 1e-12)
        if gap_below and gap_above and share.min() >= 0.8:
            return Window(n_lo=n_lo, n_hi=n_end, isolated=True, win_min=float(eps[:, n_lo].min()),
                          win_max=float(eps[:, n_end].max()))
    n_top = max(n_top, n_end)
    n_hi = min(n_top + extra_bands, n_conv - 1)
    sub_e = eps[:, n_lo:n_hi + 1]
    sub_t = target[:, n_lo:n_hi + 1]
    bottom = float(sub_e.min())
    intruders = sub_e[~sub_t]
    above = intruders[intruders > efermi]
    below = intruders[intruders <= efermi]
    froz_max = float(above.min() - margin) if above.size else float(sub_e[sub_t].max())
    froz_min = float(below.max() + margin) if below.size else bottom - 0.1
    # at most nw bands inside the frozen window at every k
    for _ in range(200):
        count = ((sub_e >= froz_min) & (sub_e <= froz_max)).sum(axis=1)
        if count.max() <= nw:
            break
        froz_max -= 0.05
    notes = []
    if froz_max <= froz_min:
        notes.append("no frozen window: no energy range around E_F is free of non-target bands")
        froz_min = froz_max = None
    return Window(n_lo=n_lo, n_hi=n_hi, isolated=False, froz_min=froz_min, froz_max=froz_max,
                  win_min=float(bottom - 0.1), win_max=float(sub_e.max() + 0.1), notes=notes)


# --------------------------------------------------------------------------------------------------------------
# Wannier90 file helpers
# --------------------------------------------------------------------------------------------------------------

def _write_win(path, atoms, lines, nw, window: Window, nbands_total, mp, kpts_bz, efermi, num_iter, dis_num_iter):
    exclude = list(range(1, window.n_lo + 1)) + list(range(window.n_hi + 2, nbands_total + 1))
    out = [f"! Wannier90 input written by wannmag (GPAW {gpaw_version()}): projections in Wannier90 order",
           "begin projections"]
    for el, l in lines:
        out.append(f"{el}:{'spd'[l]}")
    out += ["end projections", "",
            f"num_wann  = {nw}", f"num_bands = {window.num_bands}"]
    if exclude:
        out.append("exclude_bands : " + ",".join(str(n) for n in exclude))
    out += [f"num_iter  = {num_iter}", "guiding_centres = true", "iprint = 1", "",
            "write_hr  = true", "write_tb  = true", "write_xyz = true", "use_ws_distance = true",
            "translate_home_cell = false", f"fermi_energy = {efermi:.6f}", ""]
    if not window.isolated:
        out += [f"dis_win_min  = {window.win_min:.6f}", f"dis_win_max  = {window.win_max:.6f}"]
        if window.froz_max is not None:
            out += [f"dis_froz_min = {window.froz_min:.6f}", f"dis_froz_max = {window.froz_max:.6f}"]
        out += [f"dis_num_iter = {dis_num_iter}", "dis_mix_ratio = 0.5", ""]
    out.append("begin unit_cell_cart\nang")
    for v in atoms.cell.array:
        out.append(f"  {v[0]:16.10f} {v[1]:16.10f} {v[2]:16.10f}")
    out += ["end unit_cell_cart", "", "begin atoms_frac"]
    for s, f in zip(atoms.get_chemical_symbols(), atoms.get_scaled_positions(wrap=False)):
        out.append(f"  {s:3s} {f[0]:16.10f} {f[1]:16.10f} {f[2]:16.10f}")
    out += ["end atoms_frac", "", f"mp_grid = {mp[0]} {mp[1]} {mp[2]}", "", "begin kpoints"]
    for k in kpts_bz:
        out.append(f"  {k[0]:16.10f} {k[1]:16.10f} {k[2]:16.10f}")
    out += ["end kpoints", ""]
    write_text_atomic(path, "\n".join(out))


def _run_w90(args, cwd, seed, log_name):
    exe = wannier90_executable()
    proc = subprocess.run([exe, *args, seed], cwd=cwd, capture_output=True, text=True)
    werr = Path(cwd) / f"{seed}.werr"
    if proc.returncode != 0 or werr.exists() and "error" in werr.read_text().lower():
        msg = werr.read_text().strip().replace("\n", " ") if werr.exists() else (proc.stderr or proc.stdout).strip()
        raise WannierError(f"{Path(cwd) / seed}.win: wannier90.x {' '.join(args)} failed: {' '.join(msg.split())[:200]}")
    (Path(cwd) / log_name).write_text(proc.stdout + proc.stderr)


def _parse_wout(path, nw):
    """Final centres (Å) and spreads (Å²) from the .wout."""
    text = Path(path).read_text()
    idx = text.rfind("Final State")
    if idx < 0:
        raise WannierError(f"{path}: no 'Final State' block (Wannier90 did not finish)")
    pat = re.compile(r"WF centre and spread\s+(\d+)\s+\(\s*([-0-9.]+),\s*([-0-9.]+),\s*([-0-9.]+)\s*\)\s+([-0-9.]+)")
    cs = [(int(m.group(1)), [float(m.group(k)) for k in (2, 3, 4)], float(m.group(5)))
          for m in pat.finditer(text[idx:])][:nw]
    if len(cs) != nw:
        raise WannierError(f"{path}: found {len(cs)} of {nw} final Wannier centres")
    return np.array([c[1] for c in cs]), np.array([c[2] for c in cs])


def _min_image_distance(c, r, cell, periodic):
    best = np.inf
    rng = [range(-1, 2) if p else range(0, 1) for p in periodic]
    for i in rng[0]:
        for j in rng[1]:
            for k in rng[2]:
                best = min(best, np.linalg.norm(c - r - np.array([i, j, k]) @ cell))
    return best


# --------------------------------------------------------------------------------------------------------------
# main entry points
# --------------------------------------------------------------------------------------------------------------

@dataclass
class WannierChannel:
    """Result of one spin channel (energies eV, lengths Å, spreads Å², band error meV)."""

    channel: str
    seed: str
    outdir: str
    num_wann: int
    num_bands: int
    orbitals: list
    window: dict
    excluded_below: dict
    max_spread: float
    spreads: list
    centre_offsets: list
    max_centre_offset: float
    band_error_meV: float
    band_error_states: int
    timings: dict
    files: dict

    def as_dict(self):
        return _jsonable(self.__dict__)

    @classmethod
    def from_dict(cls, d: dict) -> "WannierChannel":
        """Inverse of :meth:`as_dict` (every field is stored as it is)."""
        missing = [k for k in cls.__dataclass_fields__ if k not in d]
        if missing:
            raise WannierError(f"not a Wannier channel result: {', '.join(missing)} missing")
        return cls(**{k: d[k] for k in cls.__dataclass_fields__})


def _load_calc(source):
    """(calc, run_dir, summary or None) from a run directory, a .gpw file or a live calculator."""
    if hasattr(source, "get_eigenvalues"):
        return source, None, None
    p = Path(source)
    summary = None
    if p.is_dir():
        try:
            summary = read_summary(p)
        except WannmagError:
            summary = None
        gpws = sorted(p.glob("*.gpw"))
        if not gpws:
            raise WannierError(f"{p}: no .gpw file in this run directory")
        gpw = Path(summary.gpw) if summary and summary.gpw and Path(summary.gpw).exists() else gpws[0]
        run_dir = p
    elif p.suffix == ".gpw" and p.exists():
        gpw, run_dir = p, p.parent
    else:
        raise WannierError(f"{p}: no such run directory or .gpw file")
    if summary is not None and not summary.parameters.get("write_wavefunctions", True):
        raise WannierError(f"{gpw}: written without wave functions; rerun run_dft(..., write_wavefunctions=True)")
    if summary is not None and summary.parameters.get("mode") == "lcao":
        raise WannierError(f"{gpw}: LCAO (preset 'fast') runs are Wannierised in the same process: pass the "
                           "calculator returned by run_dft(..., return_calc=True) instead of the file")
    from gpaw import GPAW  # local: optional heavy dependency (GPAW, extra "dft")

    try:
        calc = GPAW(str(gpw), txt=None)
    except Exception as exc:  # noqa: BLE001
        raise WannierError(f"{gpw}: cannot read ({type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''})") from None
    return calc, run_dir, summary


def wannierise(run_dir_or_gpw, projections: str = "dp", seed: str | None = None, outdir=None, metals=None,
               ligands=None, channels=None, num_iter: int = 400, dis_num_iter: int = 1000,
               max_centre_offset: float = 0.5, n_unconverged: int | None = None, log=True) -> dict:
    """Wannier90 MLWFs of every spin channel of a GPAW calculation (module docstring).

    Parameters
    ----------
    run_dir_or_gpw : a run directory of :func:`run_dft` (with wave functions), a .gpw file, or a live GPAW
        calculator (LCAO runs of preset ``fast`` must be passed live).
    projections : "dp" (metal d + ligand p) or "d" (metal d only).
    seed : Wannier90 seed prefix (default: reduced formula); files are ``<seed>_<channel>*``.
    outdir : output directory (default ``<run_dir>/wannier``).
    metals, ligands : element lists (default: magnetic ions from the structures layer; non-magnetic elements bonded
        to them, plus — for "dp" — the anion-complex partners bonded to those ligands, see the module docstring).
    channels : subset of ("up", "dn") or ("nm",); default all channels of the calculation.
    n_unconverged : top bands of the calculation to ignore (default from the run's ``converge_bands``).

    Returns a dict channel → :class:`WannierChannel`; raises :class:`WannierError` when wannier90.x is missing,
    fails, or a Wannier centre lies more than ``max_centre_offset`` Å from its atom.
    """
    wannier90_executable()
    calc, run_dir, summary = _load_calc(run_dir_or_gpw)
    atoms = calc.get_atoms() if hasattr(calc, "get_atoms") else calc.atoms
    atoms = atoms.copy()
    sub = find_magnetic_sites(atoms)
    metals = list(metals) if metals else list(dict.fromkeys(sub.elements))
    if ligands is None:
        ligands = _ligand_elements(atoms, sub.indices)
        if projections == "dp":
            ligands += _partner_elements(atoms, sub.indices)
    ligands = list(ligands)
    if projections == "dp" and not ligands:
        raise WannierError(f"{atoms.get_chemical_formula()}: no ligand bonded to {', '.join(metals)} found; "
                           "give ligands=[...] or use projections='d'")
    lines, orbitals = select_orbitals(atoms, metals, ligands, projections)
    nw = len(orbitals)
    if seed is None:
        seed = Formula(atoms.get_chemical_formula()).reduce()[0].format("metal")
    if outdir is None:
        if run_dir is None:
            raise WannierError("outdir= is required when a live calculator is Wannierised")
        outdir = Path(run_dir) / "wannier"
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)

    nspins = calc.get_number_of_spins()
    names = ["up", "dn"] if nspins == 2 else ["nm"]
    channels = list(channels) if channels else names
    for c in channels:
        if c not in names:
            raise WannierError(f"channel {c!r} not in this calculation (has {', '.join(names)})")

    # projector indices of every WF in W90 order
    setups = calc.wfs.setups
    proj = []  # (atom, i, sign)
    for a, l, name in orbitals:
        s = setups[a]
        off = _projector_offset(s.l_j, s.n_j, l)
        sign = _projector_sign(s, (off, l))
        proj.append((a, off + W90_FROM_GPAW[l][W90_ORDER[l].index(name)], sign))
    labels = [f"{atoms[a].symbol}{a + 1}:{name}" for a, _, name in orbitals]

    if n_unconverged is None:
        cb = summary.parameters.get("converge_bands") if summary else None
        n_unconverged = -int(cb) if isinstance(cb, int) and cb < 0 else 0
    results = {}
    for c in channels:
        spin = names.index(c)
        results[c] = _wannierise_channel(calc, atoms, spin, c, f"{seed}_{c}", outdir, lines, proj, labels, nw,
                                         num_iter, dis_num_iter, max_centre_offset, n_unconverged, log,
                                         ligand_els=ligands, summary=summary)
    write_json_atomic(outdir / f"{seed}_wannier_summary.json",
                      {"seed": seed, "projections": projections, "lines": [f"{el}:{'spd'[l]}" for el, l in lines],
                       "orbitals": labels, "source": str(run_dir_or_gpw) if run_dir is not None else "live calculator",
                       "gpaw": gpaw_version(), "channels": {c: r.as_dict() for c, r in results.items()}})
    return results


def _bz_projections(calc, atoms, spin: int, nbz: int, proj, nw: int, ligand_els):
    """(eps, P_kni, lig_s) of one spin channel on the ``nbz`` k-points of the full Brillouin zone: eigenvalues
    (nbz, nbands), the PAW projections of every Wannier function's projector (columns in Wannier90 order, signs
    applied) and the mean weight of the ligand s projectors in every band (the character of excluded bands)."""
    # local: optional heavy dependency (GPAW, extra "dft")
    from gpaw.ibz2bz import IBZ2BZMaps
    from gpaw.wannier.wannier90 import get_projections_in_bz

    wfs = calc.wfs
    kd = wfs.kd
    ibz2bz = IBZ2BZMaps.from_calculator(calc)
    nbands = calc.get_number_of_bands()
    eps = np.array([calc.get_eigenvalues(kpt=int(kd.bz2ibz_k[K]), spin=spin) for K in range(nbz)])
    P_kni = np.zeros((nbz, nbands, nw), complex)
    lig_s = []  # weight of ligand s projectors (character of excluded bands)
    for K in range(nbz):
        P_ani = get_projections_in_bz(wfs, K, spin, ibz2bz, bcomm=None)
        for col, (a, i, sign) in enumerate(proj):
            P_kni[K, :, col] = sign * P_ani[a][:nbands, i]
        ws = np.zeros(nbands)
        for a, at in enumerate(atoms):
            if at.symbol in ligand_els:
                s = wfs.setups[a]
                try:
                    off = _projector_offset(s.l_j, s.n_j, 0)
                    ws += np.abs(P_ani[a][:nbands, off]) ** 2
                except WannierError:
                    pass
        lig_s.append(ws)
    return eps, P_kni, np.mean(lig_s, axis=0)


def _write_amn(path, P_kni, window: Window, nw: int) -> None:
    """The .amn in Wannier90 order: A_mn(k) = <ψ_mk | g_n> = conj(<p̃_n | ψ_mk>) on the window's bands."""
    nbz = len(P_kni)
    band_sel = slice(window.n_lo, window.n_hi + 1)
    out = ["Kohn-Sham projections from GPAW PAW projectors, columns in Wannier90 order (wannmag)",
           f"{window.num_bands:10d} {nbz:6d} {nw:6d}"]
    for K in range(nbz):
        A = P_kni[K, band_sel, :].conj()
        for n in range(nw):
            for m in range(window.num_bands):
                out.append(f"{m + 1:5d} {n + 1:5d} {K + 1:5d} {A[m, n].real:18.12f} {A[m, n].imag:18.12f}")
    write_text_atomic(path, "\n".join(out) + "\n")


def _write_mmn_eig(calc, atoms, spin: int, seed: str, outdir, window: Window) -> None:
    """The .mmn overlaps and .eig eigenvalues of the window's bands, written by GPAW's Wannier90 interface into
    ``outdir`` (it writes into the working directory, which is restored)."""
    from gpaw.wannier.wannier90 import Wannier90  # local: optional heavy dependency (GPAW, extra "dft")

    cwd = os.getcwd()
    try:
        os.chdir(outdir)
        w = Wannier90(calc, seed=seed, bands=range(window.n_lo, window.n_hi + 1),
                      orbitals_ai=[[] for _ in range(len(atoms))], spin=spin)
        w.write_eigenvalues()
        w.write_overlaps()
    finally:
        os.chdir(cwd)


def _band_error(ed, ew, window: Window) -> tuple[float, int]:
    """(largest deviation in eV, states compared) of the Wannier eigenvalues ``ew`` from the DFT bands ``ed`` of
    the window: all target bands when isolated, else every DFT state inside the frozen window."""
    if window.isolated:
        diffs = np.abs(np.sort(ed, axis=1) - ew)
        return float(diffs.max()), diffs.size
    err, nstates = 0.0, 0
    if window.froz_max is not None:
        for k in range(len(ed)):
            inside = ed[k][(ed[k] >= window.froz_min) & (ed[k] <= window.froz_max)]
            if inside.size:
                # every frozen DFT state must appear among the Wannier eigenvalues
                err = max(err, float(np.abs(inside[:, None] - ew[k][None, :]).min(axis=1).max()))
                nstates += inside.size
    return err, nstates


def _wannierise_channel(calc, atoms, spin, channel, seed, outdir, lines, proj, labels, nw, num_iter,
                        dis_num_iter, max_off, n_unconv, log, ligand_els, summary):
    t0 = time.time()
    timings = {}
    kpts_bz = np.asarray(calc.get_bz_k_points())
    nbands = calc.get_number_of_bands()
    n_conv = nbands - n_unconv
    efermi = float(calc.get_fermi_level())
    eps, P_kni, lig_s = _bz_projections(calc, atoms, spin, len(kpts_bz), proj, nw, ligand_els)
    w_kn = (np.abs(P_kni) ** 2).sum(axis=2)
    window = choose_window(eps, w_kn, nw, efermi, n_conv=n_conv)
    excl = {"count": window.n_lo,
            "ligand_s_bands": int(sum(1 for n in range(window.n_lo) if lig_s[n] > 0.3)),
            "note": "bands below the d+p manifold (ligand s and semicore), left out with exclude_bands"}
    mp = [int(x) for x in calc.wfs.kd.N_c]
    win = outdir / f"{seed}.win"
    _write_win(win, atoms, lines, nw, window, nbands, mp, kpts_bz, efermi, num_iter, dis_num_iter)
    if log:
        print(f"[wannmag wannier] {seed}: {nw} WFs from bands {window.n_lo + 1}–{window.n_hi + 1} "
              f"({'isolated' if window.isolated else f'disentangled, frozen ≤ {window.froz_max}'}), "
              f"{window.n_lo} band(s) excluded below; running wannier90.x in {outdir}", flush=True)
    t = time.time()
    _run_w90(["-pp"], outdir, seed, f"{seed}.pp.log")
    timings["pp"] = round(time.time() - t, 1)
    t = time.time()
    _write_amn(outdir / f"{seed}.amn", P_kni, window, nw)
    timings["amn"] = round(time.time() - t, 1)
    t = time.time()
    _write_mmn_eig(calc, atoms, spin, seed, outdir, window)
    timings["mmn_eig"] = round(time.time() - t, 1)
    t = time.time()
    _run_w90([], outdir, seed, f"{seed}.w90.log")
    timings["wannier90"] = round(time.time() - t, 1)

    centres, spreads = _parse_wout(outdir / f"{seed}.wout", nw)
    cell = atoms.cell.array
    # a Wannier function is periodic along every lattice vector (also the vacuum direction of a slab, sampled by
    # one k-point), so its centre is compared with the nearest periodic image of its atom
    periodic = (True, True, True)
    offsets = [float(_min_image_distance(centres[n], atoms.positions[a], cell, periodic))
               for n, (a, _, _) in enumerate(proj)]
    # band error inside the frozen window (all target bands when isolated)
    ew = hr_eigenvalues(kpts_bz, *read_hr(outdir / f"{seed}_hr.dat"))
    ed = eps[:, window.n_lo:window.n_hi + 1]
    err, nstates = _band_error(ed, ew, window)
    dft_bands = {"seed": seed, "channel": channel, "units": "eV", "fermi_level": efermi,
                 "kpoints_frac": kpts_bz, "first_band": window.n_lo + 1, "bands": ed,
                 "frozen_window": [window.froz_min, window.froz_max] if not window.isolated else None,
                 "isolated": window.isolated}
    write_json_atomic(outdir / f"{seed}_dft_bands.json", dft_bands)
    files = {ext: str(outdir / f"{seed}{ext}") for ext in ("_hr.dat", "_tb.dat", "_wsvec.dat", "_centres.xyz", ".win",
                                                          ".wout")}
    for ext, path in files.items():
        if not Path(path).exists():
            raise WannierError(f"{path}: Wannier90 did not write this file")
    timings["total"] = round(time.time() - t0, 1)
    res = WannierChannel(channel=channel, seed=seed, outdir=str(outdir), num_wann=nw, num_bands=window.num_bands,
                         orbitals=labels, window={k: v for k, v in window.__dict__.items()},
                         excluded_below=excl, max_spread=float(spreads.max()), spreads=np.round(spreads, 5).tolist(),
                         centre_offsets=np.round(offsets, 4).tolist(), max_centre_offset=float(max(offsets)),
                         band_error_meV=1000.0 * err, band_error_states=int(nstates), timings=timings, files=files)
    quality = res.as_dict()
    quality["passed"] = bool(max(offsets) <= max_off)
    write_json_atomic(outdir / f"{seed}_quality.json", quality)
    if log:
        print(f"[wannmag wannier] {seed}: max spread {res.max_spread:.3f} Å², max centre offset "
              f"{res.max_centre_offset:.3f} Å, band error {res.band_error_meV:.2f} meV ({nstates} states), "
              f"{timings['total']:.0f} s", flush=True)
    if max(offsets) > max_off:
        n = int(np.argmax(offsets))
        raise WannierError(f"{outdir / seed}_centres.xyz: Wannier function {n + 1} ({labels[n]}) is centred "
                           f"{offsets[n]:.2f} Å from its atom (limit {max_off} Å)")
    return res


def _is_slab(atoms, min_gap: float = 5.0) -> bool:
    cell = atoms.cell.array
    normal = np.cross(cell[0], cell[1])
    normal /= np.linalg.norm(normal)
    height = abs(np.dot(cell[2], normal))
    z = np.sort(np.mod(atoms.positions @ normal, height))
    gaps = np.diff(np.concatenate([z, [z[0] + height]]))
    return bool(gaps.max() >= min_gap)


def wannier_models(structure, preset: str = "accurate", U=3.0, workdir="wannmag_dft", projections: str = "dp",
                   config="FM", nm_U=0.0, seed: str | None = None, outdir=None, kpts=None, ecut=None, log=True,
                   nm: bool = True, map_fn=None):
    """Up, down and spin-averaged MLWF Hamiltonians of ``structure``: a spin-polarised ``config`` run (FM by
    default) → channels up/dn, and a non-spin-polarised run (U = ``nm_U``, default 0, see module docstring) →
    channel nm, all in ``outdir`` (default ``workdir/wannier``).  Runs are resumed like :func:`run_dft`.

    ``config`` may be any collinear order of the structures layer, e.g. "Neel" (an antiferromagnetic reference
    state of the force theorem): its cell must then hold the whole magnetic pattern (Néel: the primitive 2-metal
    cell of the honeycomb), and each spin channel of that calculation is Wannierised with the same projections and
    window logic as FM — channel "up" holds the majority d of the σ = +1 ions and the minority d of the σ = −1
    ions, "dn" the reverse.  ``nm=False`` skips the spin-averaged run (e.g. when it exists from the FM models).

    The two runs (``config`` SCF + its Wannierisation, NM SCF + its Wannierisation) are independent branches:
    ``map_fn(fn, items) -> list`` (e.g. the process pool / Dask map of ``wannmag run``) runs them side by side;
    default serial — the results are the same.  A finished branch leaves ``outdir/<run name>_channels.json``
    (its channels and the identity of its inputs), so a re-run skips it.  ``outdir/<seed>_wannier_summary.json``
    lists the channels of every branch."""
    sub = find_magnetic_sites(structure)
    atoms = sub.atoms
    nval = _valence_electrons(atoms)
    nbands = nval // 2 + 5 * sub.n_sites + 2 * len(atoms)
    unconv = len(atoms)
    outdir = Path(outdir) if outdir is not None else Path(workdir) / "wannier"
    runs = [(config, U, f"{config}_wannier")] + ([("NM", nm_U, "NM_wannier")] if nm else [])
    tasks = [(structure, conf, dict(preset=preset, U=u, workdir=workdir, kpts=kpts, ecut=ecut, nbands=nbands,
                                    converge_bands=-unconv, write_wavefunctions=True, name=name, log=log),
              dict(projections=projections, seed=seed, outdir=outdir, n_unconverged=unconv, log=log))
             for conf, u, name in runs]
    branches = map_fn(_wannier_branch, tasks) if map_fn is not None else [_wannier_branch(t) for t in tasks]
    res = {}
    for b in branches:
        res.update(b)
    if len(branches) > 1 and res:
        # each branch's wannierise wrote the summary of its own channels (the last one to finish wins): one summary
        # of all channels, in branch order
        first = next(iter(res.values()))
        path = outdir / f"{first.seed.rsplit('_', 1)[0]}_wannier_summary.json"
        if path.exists():
            summ = json.loads(path.read_text())
            summ["channels"] = {c: r.as_dict() for c, r in res.items()}
            write_json_atomic(path, summ)
    return res


def _branch_key(structure, conf, dft_kw, w_kw) -> str:
    """Identity of one branch's inputs (structure by content, DFT and Wannier settings; not where files go)."""
    ident = {"structure": structure_fingerprint(structure), "config": str(conf),
             "dft": {k: v for k, v in dft_kw.items() if k not in ("workdir", "log")},
             "wannier": {k: v for k, v in w_kw.items() if k not in ("outdir", "log")}}
    return hashlib.sha256(json.dumps(_jsonable(ident), sort_keys=True, default=str).encode()).hexdigest()[:20]


def _wannier_branch(args) -> dict:
    """One branch of :func:`wannier_models`: the DFT run of ``conf`` and the Wannierisation of its channels →
    {channel: :class:`WannierChannel`}; skipped (read back) when its ``<run name>_channels.json`` matches the inputs
    and every file it lists exists.  Module-level, so that a process pool or Dask can run it."""
    from .dft import run_dft  # local: looked up per call, the GPAW engine (tests put a fake in dft.run_dft)

    structure, conf, dft_kw, w_kw = args
    outdir = Path(w_kw["outdir"])
    done = outdir / f"{dft_kw['name']}_channels.json"
    key = _branch_key(structure, conf, dft_kw, w_kw)
    if done.exists():
        try:
            old = json.loads(done.read_text())
            chans = {c: WannierChannel(**d) for c, d in old["channels"].items()}
        except (OSError, ValueError, TypeError, KeyError):
            chans = None
        if (chans and old.get("key") == key and all(r.outdir == str(outdir) for r in chans.values())
                and all(Path(f).exists() for r in chans.values() for f in r.files.values())):
            if dft_kw.get("log"):
                print(f"[wannmag wannier] {dft_kw['name']}: finished earlier, read {done}", flush=True)
            return chans
    if dft_kw["preset"] == "fast":
        rec, calc = run_dft(structure, conf, return_calc=True, **dft_kw)
        if calc is None:  # resumed LCAO run: the wave functions must be recomputed in-process
            shutil.rmtree(rec.run_dir)
            rec, calc = run_dft(structure, conf, return_calc=True, **dft_kw)
        src = calc
    else:
        rec = run_dft(structure, conf, **dft_kw)
        src = rec.run_dir
    res = wannierise(src, **w_kw)
    if res and all(isinstance(r, WannierChannel) for r in res.values()):
        write_json_atomic(done, {"key": key, "config": str(conf), "run": dft_kw["name"],
                                 "channels": {c: r.as_dict() for c, r in res.items()}})
    return res


def _valence_electrons(atoms) -> int:
    # local: optional heavy dependency (GPAW, extra "dft")
    from gpaw.setup import create_setup
    from gpaw.xc import XC

    xc = XC("PBE")
    cache = {}
    n = 0
    for s in atoms.get_chemical_symbols():
        if s not in cache:
            cache[s] = int(round(create_setup(s, xc).Nv))
        n += cache[s]
    return n


# --------------------------------------------------------------------------------------------------------------
# interpolation check off the Wannier k-mesh
# --------------------------------------------------------------------------------------------------------------

def band_path_check(run_dir, outdir, seed: str, path: str = "GMKG", npoints: int = 61, log=True) -> dict:
    """DFT bands on a band path (non-self-consistent, fixed density, from the run's .gpw) versus the Wannier
    interpolation of every channel of ``outdir/<seed>_<channel>_hr.dat`` (with the _wsvec.dat shifts).

    Writes ``<seed>_<channel>_dft_path.json`` (k-points, DFT eigenvalues of the Wannier window) and returns
    {channel: max |E_DFT − E_W| in meV} over the states inside the frozen window (all target bands if isolated).
    """
    calc, run_dir, _ = _load_calc(run_dir)
    outdir = Path(outdir)
    nspins = calc.get_number_of_spins()
    names = ["up", "dn"] if nspins == 2 else ["nm"]
    qual = {c: json.loads((outdir / f"{seed}_{c}_quality.json").read_text()) for c in names}
    n_max = max(q["window"]["n_hi"] for q in qual.values()) + 1
    t0 = time.time()
    txt = Path(run_dir) / f"bandpath_{seed}.txt"
    bp = calc.atoms.cell.bandpath(path, npoints=npoints, pbc=[True, True, False])
    nc = calc.fixed_density(kpts=bp.kpts, symmetry="off", nbands=n_max + 8,
                            convergence={"bands": n_max + 1, "eigenstates": 1e-6}, txt=str(txt))
    nk = len(bp.kpts)
    out = {}
    for s, c in enumerate(names):
        q = qual[c]
        w = q["window"]
        eps = np.array([nc.get_eigenvalues(kpt=k, spin=s) for k in range(nk)])[:, w["n_lo"]:w["n_hi"] + 1]
        R, deg, H = read_hr(outdir / f"{seed}_{c}_hr.dat")
        wsf = outdir / f"{seed}_{c}_wsvec.dat"
        ws = read_wsvec(wsf, R, H.shape[1]) if wsf.exists() or Path(f"{wsf}.gz").exists() else None
        ew = hr_eigenvalues(bp.kpts, R, deg, H, ws)
        if w["isolated"]:
            err = float(np.abs(np.sort(eps, axis=1) - ew).max())
        elif w["froz_max"] is not None:
            err = 0.0
            for k in range(nk):
                inside = eps[k][(eps[k] >= w["froz_min"]) & (eps[k] <= w["froz_max"])]
                if inside.size:
                    err = max(err, float(np.abs(inside[:, None] - ew[k][None, :]).min(axis=1).max()))
        else:
            err = float("nan")
        write_json_atomic(outdir / f"{seed}_{c}_dft_path.json",
                          {"seed": f"{seed}_{c}", "path": path, "units": "eV", "kpoints_frac": bp.kpts,
                           "first_band": w["n_lo"] + 1, "bands": eps, "isolated": w["isolated"],
                           "frozen_window": None if w["isolated"] else [w["froz_min"], w["froz_max"]],
                           "fermi_level": float(calc.get_fermi_level()),
                           "max_error_meV": 1000 * err, "time_s": round(time.time() - t0, 1)})
        q["path_band_error_meV"] = 1000 * err
        write_json_atomic(outdir / f"{seed}_{c}_quality.json", q)
        out[c] = 1000 * err
        if log:
            print(f"[wannmag wannier] {seed}_{c}: band path {path} ({nk} k): max |E_DFT − E_W| = {1000 * err:.1f} meV",
                  flush=True)
    return out
