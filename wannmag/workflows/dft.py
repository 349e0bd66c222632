"""Embedded DFT engine: GPAW (PBE + Dudarev U) total energies of collinear magnetic configurations.

Conventions of wannmag: DFT/TB energies in eV (the record gives eV per cell and eV per magnetic ion; tables print
meV per magnetic ion), exchange in meV, temperatures in K, lengths in Å, moments in μ_B.  The energies feed the
energy-mapping fit of the classical model H = Σ_{i<j} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i (each bond once, classical
spins of length S, J > 0 antiferromagnetic), see ``wannmag.structures.configurations``.

One call of :func:`run_dft` computes one configuration (``Configuration`` of the structures layer, whose atoms carry
the initial moments σ_i·2S) in its own run directory ``workdir/<config name>/`` holding the GPAW log ``gpaw.txt``,
the ``.gpw`` file and ``summary.json`` (a :class:`DFTRecord` plus the parameters that define the calculation).  A
directory whose ``summary.json`` matches the requested parameters is returned without recomputing (resume after a
crash); a directory holding a *different* calculation is never overwritten silently (one-line error).

Presets
-------
``fast``      LCAO, dzp basis, grid spacing h = 0.2 Å (legacy GPAW object, so that it can be Wannierised in-process).
``accurate``  plane waves, ``ecut`` = 450 eV, Γ-centred k-mesh of density 5.5 points per Å⁻¹ (see
              :func:`kpoint_mesh`): 6×6×1 for the CrI3 primitive cell, 5×3×1 for its rectangular 4-Cr cell,
              7×7×1 for VPS3 (6×4×1 rectangular).

Both: PBE, Dudarev U on the d shell of the magnetic ions (``U=3.0`` eV by default, or a dict per element), Fermi–Dirac
smearing 0.05 eV (energies extrapolated to zero width), SCF converged to 1e-6 eV/electron and density 1e-5.
k-meshes are scaled with the supercell at constant density (same number of k-points per reciprocal length), so
different supercells (1×1 for FM/Néel, the rectangular cell for zigzag/stripy) are sampled equally well.

Convergence test behind ``accurate`` (CrI3 monolayer, a = 7.0 Å, U = 3 eV, primitive cell, GPAW 26.7 on this 2-core
machine; script ``data/dft/convergence_cri3.py``, numbers in ``data/dft/CrI3_convergence.json``; run on the CrI3
prototype before commit 970f987, i.e. I at x = 1/3), E(Néel) − E(FM) per Cr:

    =========  ======  ======================  =================================
    ecut (eV)  k-mesh  E_Néel − E_FM (meV/Cr)  wall time FM / Néel (s)
    =========  ======  ======================  =================================
    350        6×6×1   33.30                   139 / 179
    450        6×6×1   33.41                   170 / 188
    550        6×6×1   33.40                   809 / 689  (machine loaded ×4)
    450        4×4×1   33.60                   129 / 157
    =========  ======  ======================  =================================

The energy difference is converged to 0.1 meV/Cr at 350–450 eV and to 0.2 meV/Cr between the 4×4 and 6×6 meshes,
so ``accurate`` uses 450 eV and the density of the 6×6 mesh (5.5 points per Å⁻¹); both errors are far below the
1–30 meV scale of the magnetic energies.  (The shared recipe quotes 28.5 meV/Cr at 350 eV for the same cell; its SCF
settings are not stated — GPAW's default energy criterion, 5e-4 eV/electron, is 500× looser than the one used here.)
"""

from __future__ import annotations

import json
import math
import re
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .._atomic import atomic_write_text, jsonable
from ..errors import WannmagError

__all__ = ["DFTRecord", "DFTError", "run_dft", "kpoint_mesh", "PRESETS", "write_json_atomic", "read_summary",
           "dft_parameters", "band_gaps", "hubbard_u", "resolve_configuration", "scf_progress"]

#: preset name -> calculation settings (see module docstring)
PRESETS = {
    "fast": {"mode": "lcao", "basis": "dzp", "h": 0.2, "kdensity": 5.5},
    "accurate": {"mode": "pw", "ecut": 450.0, "kdensity": 5.5},
}
SMEARING_EV = 0.05
CONVERGENCE = {"energy": 1e-6, "density": 1e-5, "eigenstates": 1e-8}
SUMMARY = "summary.json"


class DFTError(WannmagError):
    """A DFT calculation cannot be set up, run or resumed."""


@dataclass
class DFTRecord:
    """Result of one collinear DFT calculation (or of a reader of a user's VASP / QE / Wannier90 output).

    Units: energies eV (``energy`` per cell, ``energy_per_ion`` per magnetic ion), moments μ_B, lengths Å,
    times s.  ``site_moments`` follow the magnetic sites of the configuration (``pattern`` σ_i = ±1, 0 for a
    non-magnetic calculation); ``moments`` are all atoms.  ``gaps`` holds one band gap per spin channel (eV; 0 for a
    metallic channel), ``gap`` the gap of the whole spectrum.
    """

    source: str                      # "gpaw", "vasp", "qe", "wannier90"
    formula: str
    config: str
    pattern: list = field(default_factory=list)
    n_sites: int = 0
    supercell: list = field(default_factory=lambda: np.eye(3, dtype=int).tolist())
    preset: str | None = None
    U: dict = field(default_factory=dict)
    energy: float | None = None
    energy_per_ion: float | None = None
    moments: list = field(default_factory=list)
    site_moments: list = field(default_factory=list)
    total_moment: float | None = None
    fermi_level: float | None = None
    gaps: list = field(default_factory=list)
    gap: float | None = None
    kpts: list | None = None
    timings: dict = field(default_factory=dict)
    code_version: str | None = None
    run_dir: str | None = None
    gpw: str | None = None
    parameters: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return _jsonable(asdict(self))

    @classmethod
    def from_dict(cls, d: dict) -> "DFTRecord":
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in names})

    def write(self, path) -> None:
        write_json_atomic(path, self.as_dict())


def _jsonable(obj):
    """JSON-ready copy of ``obj`` (numpy scalars/arrays, tuples, paths): :func:`wannmag._atomic.jsonable`."""
    return jsonable(obj)


def write_json_atomic(path, data) -> None:
    """Write ``data`` as JSON to ``path`` atomically (temporary file in the same directory, then os.replace; usual
    file mode), indent 1 and a final newline — the format of every run-directory and reference-data JSON."""
    atomic_write_text(path, json.dumps(jsonable(data), indent=1) + "\n")


def write_text_atomic(path, text: str) -> None:
    """Write text to ``path`` atomically (:func:`wannmag._atomic.atomic_write_text`)."""
    atomic_write_text(path, text)


def read_summary(run_dir) -> DFTRecord:
    """The :class:`DFTRecord` stored in ``run_dir/summary.json`` (one-line error if absent or unreadable)."""
    path = Path(run_dir) / SUMMARY if Path(run_dir).is_dir() else Path(run_dir)
    if not path.exists():
        raise DFTError(f"{path}: no such file (not a finished wannmag DFT run directory)")
    try:
        return DFTRecord.from_dict(json.loads(path.read_text()))
    except (json.JSONDecodeError, TypeError, UnicodeDecodeError) as exc:
        raise DFTError(f"{path}: unreadable summary ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})") from None


# --------------------------------------------------------------------------------------------------------------
# k-points
# --------------------------------------------------------------------------------------------------------------

def kpoint_mesh(atoms, density: float, periodic=None) -> tuple[int, int, int]:
    """Γ-centred Monkhorst–Pack mesh of constant density: n_i = ⌈density · |b_i|⌉ (b_i reciprocal vectors incl. 2π,
    in Å⁻¹; ``density`` in points per Å⁻¹), n_i = 1 along non-periodic directions (the vacuum direction of a slab).

    Scaling a cell by an integer supercell therefore scales the mesh down by the same factor (6×6×1 for the CrI3
    primitive cell at density 5.5 → 5×3×1 for the rectangular (a1, a1 + 2a2) cell).  A tolerance of 0.05 points
    absorbs rounding noise of the cell.
    """
    if density <= 0:
        raise DFTError(f"k-point density must be positive, got {density}")
    cell = np.asarray(atoms.cell.array if hasattr(atoms, "cell") else atoms, float)
    if periodic is None:
        periodic = getattr(atoms, "pbc", (True, True, True))
    rec = 2.0 * np.pi * np.linalg.inv(cell).T
    mesh = []
    for i in range(3):
        if not periodic[i]:
            mesh.append(1)
            continue
        mesh.append(max(1, int(math.ceil(density * np.linalg.norm(rec[i]) - 0.05))))
    return tuple(mesh)


# --------------------------------------------------------------------------------------------------------------
# setting up a calculation
# --------------------------------------------------------------------------------------------------------------

def hubbard_u(U, elements) -> dict[str, float]:
    """GPAW's per-element U (eV): ``U`` a number (every element of ``elements``), a dict {element: U}, or None (no
    U, an empty dict); else DFTError."""
    if U is None:
        return {}
    if isinstance(U, dict):
        out = {}
        for el, val in U.items():
            try:
                out[str(el)] = float(val)
            except (TypeError, ValueError):
                raise DFTError(f"U for {el} must be a number in eV, got {val!r}") from None
        return out
    try:
        u = float(U)
    except (TypeError, ValueError):
        raise DFTError(f"U must be a number in eV or a dict per element, got {U!r}") from None
    return {el: u for el in sorted(set(elements))}


def resolve_configuration(structure, config):
    """A :class:`~wannmag.structures.Configuration` as given, or by name ("FM", "Neel", ..., "NM") of ``structure``."""
    # local: wannmag.structures costs ~0.4 s to import (pymatgen, ase.build); `import wannmag.workflows` stays light
    from ..structures import Configuration, honeycomb_configuration

    if isinstance(config, Configuration):
        return config
    if str(config).upper() in ("NM", "NONMAGNETIC", "NON-MAGNETIC", "PARAMAGNETIC"):
        base = honeycomb_configuration(structure, "FM")
        base.name = "NM"
        base.pattern = np.zeros(base.n_sites, dtype=int)
        base.atoms.set_initial_magnetic_moments(np.zeros(len(base.atoms)))
        return base
    if structure is None:
        raise DFTError(f"configuration {config!r} given by name needs a structure")
    return honeycomb_configuration(structure, config)


def dft_parameters(conf, preset: str = "fast", U=3.0, kpts=None, kdensity=None, ecut=None, nbands=None,
                   converge_bands=None, write_wavefunctions: bool = False, xc: str = "PBE",
                   smearing: float = SMEARING_EV, charge: float = 0.0, mixer: dict | None = None,
                   maxiter: int | None = None, density_tol: float | None = None, fixmagmom: bool = False) -> dict:
    """The full, JSON-able parameter set that defines a calculation (and its run directory's identity).
    ``charge``: net charge of the cell in units of e (−2 = two extra electrons, with GPAW's compensating background);
    recorded only when non-zero, so neutral runs keep their identity.  ``mixer``: GPAW density-mixer keywords (e.g.
    {"beta": 0.02, "nmaxold": 8, "weight": 100.0} — a damped mixer for metallic, magnetic cells), ``maxiter``: SCF
    iteration limit; both recorded only when given (default runs keep their identity).  ``density_tol``: the SCF
    density criterion (electrons per valence electron) instead of the package's 1e-5 — e.g. GPAW's own default 1e-4
    for a metallic cell whose density change has a floor above 1e-5; recorded only when given, and the record says
    which criterion a calculation met.  ``fixmagmom``: keep the cell's total moment at the sum of the start moments
    (GPAW's fixed-moment Fermi–Dirac occupations, two Fermi levels) — a constraint, recorded only when set."""
    if not isinstance(fixmagmom, bool):
        raise DFTError(f"fixmagmom must be True or False, got {fixmagmom!r}")
    if density_tol is not None and not (isinstance(density_tol, (int, float)) and not isinstance(density_tol, bool)
                                        and 1e-8 <= float(density_tol) <= 1e-3):
        raise DFTError(f"density_tol must be a number in [1e-8, 1e-3], got {density_tol!r}")
    if mixer is not None:
        if not isinstance(mixer, dict) or not set(mixer) <= {"beta", "nmaxold", "weight", "method", "backend"}:
            raise DFTError(f"mixer must be a dict of beta, nmaxold, weight (method, backend), got {mixer!r}")
        b = mixer.get("beta")
        if b is not None and not (isinstance(b, (int, float)) and 0.0 < float(b) <= 1.0):
            raise DFTError(f"mixer beta must be in (0, 1], got {b!r}")
    if maxiter is not None and (isinstance(maxiter, bool) or not isinstance(maxiter, int) or not 1 <= maxiter <= 10000):
        raise DFTError(f"maxiter must be an integer in 1..10000, got {maxiter!r}")
    if not (isinstance(smearing, (int, float)) and 0.0 < float(smearing) <= 1.0):
        raise DFTError(f"smearing width must be in (0, 1] eV, got {smearing!r}")
    if preset not in PRESETS:
        raise DFTError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    p = dict(PRESETS[preset])
    if ecut is not None:
        if p["mode"] != "pw":
            raise DFTError(f"ecut applies to the plane-wave preset 'accurate', not to {preset!r}")
        p["ecut"] = float(ecut)
    atoms = conf.atoms
    spinpol = bool(np.any(np.abs(conf.pattern) > 0))
    periodic = (True, True, not conf.sublattice.two_dimensional)
    if kpts is None:
        dens = float(kdensity if kdensity is not None else p["kdensity"])
        mesh = kpoint_mesh(atoms, dens, periodic)
    else:
        mesh = tuple(int(k) for k in np.broadcast_to(np.asarray(kpts, int), (3,)))
        dens = None
        if min(mesh) < 1:
            raise DFTError(f"k-point mesh must be positive integers, got {kpts!r}")
    p["kdensity"] = dens
    metals = sorted(set(conf.sublattice.elements))
    udict = hubbard_u(U, metals)
    return _jsonable({
        "formula": atoms.get_chemical_formula(),
        "symbols": atoms.get_chemical_symbols(),
        "positions": np.round(atoms.positions, 5),
        "cell": np.round(atoms.cell.array, 5),
        "initial_magmoms": np.round(atoms.get_initial_magnetic_moments(), 3),
        "config": conf.name,
        "pattern": [int(s) for s in conf.pattern],
        "supercell": np.asarray(conf.supercell, int),
        "preset": preset,
        **p,
        "kpts": list(mesh),
        "xc": xc,
        "U": {k: v for k, v in udict.items() if v != 0.0},
        "spinpol": spinpol,
        "smearing": float(smearing),
        "convergence": CONVERGENCE if density_tol is None else {**CONVERGENCE, "density": float(density_tol)},
        "nbands": nbands,
        "converge_bands": converge_bands,
        "write_wavefunctions": bool(write_wavefunctions),
        **({"charge": float(charge)} if charge else {}),
        **({"mixer": dict(mixer)} if mixer is not None else {}),
        **({"maxiter": int(maxiter)} if maxiter is not None else {}),
        **({"fixmagmom": True} if fixmagmom else {}),
    })


def _make_calculator(params: dict, txt: str):
    """A GPAW calculator for ``params`` (monkeypatched in the tests)."""
    from gpaw import GPAW  # local: optional heavy dependency (GPAW, extra "dft")

    kw = dict(xc=params["xc"], txt=txt, spinpol=params["spinpol"],
              kpts={"size": tuple(params["kpts"]), "gamma": True},
              occupations={"name": "fermi-dirac", "width": params["smearing"],
                           **({"fixmagmom": True} if params.get("fixmagmom") else {})},
              convergence=dict(params["convergence"]))
    if params["U"]:
        kw["setups"] = {el: f":d,{u}" for el, u in params["U"].items()}
    if params.get("charge"):
        kw["charge"] = params["charge"]
    if params.get("mixer"):
        kw["mixer"] = dict(params["mixer"])
    if params.get("maxiter"):
        kw["maxiter"] = int(params["maxiter"])
    if params["nbands"] is not None:
        kw["nbands"] = params["nbands"]
    if params["converge_bands"] is not None:
        kw["convergence"]["bands"] = params["converge_bands"]
    if params["mode"] == "pw":
        kw["mode"] = {"name": "pw", "ecut": params["ecut"]}
        return GPAW(**kw)
    kw["mode"] = "lcao"
    kw["basis"] = params["basis"]
    kw["h"] = params["h"]
    return GPAW(**kw, legacy_gpaw=True)


def gpaw_version() -> str:
    try:
        import gpaw  # local: optional heavy dependency (GPAW, extra "dft")

        return str(gpaw.__version__)
    except ImportError:  # pragma: no cover
        return "unavailable"


# --------------------------------------------------------------------------------------------------------------
# analysis of a finished calculation
# --------------------------------------------------------------------------------------------------------------

def fermi_levels(calc) -> tuple[float | None, list[float] | None]:
    """(E_F, per-spin Fermi levels) in eV.  With a fixed total moment (GPAW ``fixmagmom``) each spin channel has its
    own Fermi level and GPAW's ``get_fermi_level`` refuses ("There are two Fermi-levels!"): then E_F is None and the
    two levels are returned — the converged SCF must not be lost to that after it finished (it was, once)."""
    try:
        return float(calc.get_fermi_level()), None
    except ValueError:
        levels = [float(x) for x in np.atleast_1d(calc.get_fermi_levels())]
        if len(levels) != 2:
            raise
        return None, levels


def band_gaps(eigs_skn: np.ndarray, efermi) -> tuple[list[float], float]:
    """Band gap per spin channel and of the whole spectrum (eV) from eigenvalues [spin, k, band] and E_F.

    A state is occupied when it lies below E_F; a channel with bands on both sides of E_F at the same k (or with
    valence-band maximum above the conduction-band minimum) is metallic (gap 0).  ``efermi`` may be one level per
    spin channel (fixed total moment): each channel is cut at its own level; the whole-spectrum gap is then the gap
    between the highest occupied and lowest empty state of both channels (0 when they overlap: :func:`common_gap`).
    """
    eigs = np.asarray(eigs_skn, float)
    per_spin = np.ndim(efermi) > 0
    levels = list(np.atleast_1d(np.asarray(efermi, float))) if per_spin else [float(efermi)] * len(eigs)
    if per_spin and len(levels) != len(eigs):
        raise ValueError(f"{len(levels)} Fermi levels for {len(eigs)} spin channels")
    gaps = []
    vbm_all, cbm_all = -np.inf, np.inf
    for e, ef in zip(eigs, levels):
        occ = e[e <= ef]
        emp = e[e > ef]
        vbm = occ.max() if occ.size else -np.inf
        cbm = emp.min() if emp.size else np.inf
        vbm_all, cbm_all = max(vbm_all, vbm), min(cbm_all, cbm)
        gaps.append(float(max(0.0, cbm - vbm)) if np.isfinite(cbm - vbm) else 0.0)
    gap = float(max(0.0, cbm_all - vbm_all)) if np.isfinite(cbm_all - vbm_all) else 0.0
    return gaps, gap


def common_gap(eigs_skn: np.ndarray, levels) -> float | None:
    """Signed gap (eV) between the highest occupied and the lowest empty state over both spin channels, each channel
    filled to its own Fermi level (fixed total moment).  > 0: one Fermi level could sit in both channels' gaps, so
    the fixed-moment state is a free self-consistent insulator and the split of the two levels means nothing;
    < 0: the constraint is active (electrons would move between channels; |value| is the overlap)."""
    eigs = np.asarray(eigs_skn, float)
    vbm, cbm = -np.inf, np.inf
    for e, ef in zip(eigs, np.atleast_1d(np.asarray(levels, float))):
        occ, emp = e[e <= ef], e[e > ef]
        vbm = max(vbm, occ.max()) if occ.size else vbm
        cbm = min(cbm, emp.min()) if emp.size else cbm
    return float(cbm - vbm) if np.isfinite(cbm - vbm) else None


def check_moments(site_moments, pattern, spins, elements=None, collapse_fraction: float = 0.3) -> list[str]:
    """One warning line per magnetic site whose converged moment flipped against σ_i or collapsed below
    ``collapse_fraction`` · 2S μ_B.  Empty list if the requested up/down pattern survived."""
    out = []
    for k, (m, s, S) in enumerate(zip(site_moments, pattern, spins)):
        if s == 0:
            continue
        el = f"{elements[k]} " if elements is not None else ""
        if abs(m) < collapse_fraction * 2.0 * S:
            out.append(f"site {k} ({el}σ={s:+d}): moment collapsed to {m:+.2f} μB (expected ≈ {s * 2 * S:+.1f})")
        elif np.sign(m) != np.sign(s):
            out.append(f"site {k} ({el}σ={s:+d}): moment flipped to {m:+.2f} μB (expected ≈ {s * 2 * S:+.1f})")
    return out


#: an SCF line of a GPAW log: "iter:   3 17:28:50  -209.694942  c ..." (legacy/LCAO) or
#: "|iter:   3| 15:22:13 |  -27.913335 | +0.41 | ..." (new GPAW, plane waves)
_ITER = re.compile(r"^\|?iter:\s*(\d+)\s*\|?\s*\S+\s*\|?\s*(-?\d+\.\d+)")


def scf_progress(txt) -> dict | None:
    """The last SCF iteration of the GPAW log ``txt``: {"iteration", "energy_eV", "delta_eV" (change from the
    iteration before, None at the first), "converged" (GPAW wrote "Converged in")}; None if the log has no SCF line
    yet or cannot be read.  Reads the log only (costs nothing to the running calculation)."""
    try:
        text = Path(txt).read_text(errors="replace")
    except OSError:
        return None
    its = [(int(m.group(1)), float(m.group(2))) for m in map(_ITER.match, text.splitlines()) if m]
    if not its:
        return None
    (k, e), prev = its[-1], (its[-2][1] if len(its) > 1 and its[-2][0] == its[-1][0] - 1 else None)
    return {"iteration": k, "energy_eV": e, "delta_eV": None if prev is None else e - prev,
            "converged": "Converged in" in text}


#: seconds between two looks at the GPAW log of a running calculation (progress lines of run_dft)
SCF_PROGRESS_SECONDS = 10.0


class _ScfWatcher:
    """Prints the SCF progress of a running GPAW calculation (from its log, every ``every`` seconds at most, only
    when a new iteration appeared) in a daemon thread; ``with _ScfWatcher(...):`` around the calculation."""

    def __init__(self, txt, label: str, log, every: float | None = None):
        self.txt, self.label, self.log = Path(txt), label, log
        self.every = SCF_PROGRESS_SECONDS if every is None else every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._last = 0

    def _loop(self):
        while not self._stop.wait(self.every):
            self._report()

    def _report(self):
        p = scf_progress(self.txt)
        if p and p["iteration"] > self._last:
            self._last = p["iteration"]
            d = "" if p["delta_eV"] is None else f", ΔE = {p['delta_eV']:+.2e} eV"
            _log(f"[wannmag dft] {self.label}: SCF iteration {p['iteration']}, E = {p['energy_eV']:.6f} eV{d}"
                 + (" (converged)" if p["converged"] else ""), self.log)

    def __enter__(self):
        if self.log not in (None, False):
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
            self._report()  # the last iteration, if the loop did not see it
        return False


def _log(msg: str, log) -> None:
    if log is None or log is False:
        return
    if log is True or log == "stdout":
        # one write per line: print() writes the text and the newline separately, so two worker processes sharing
        # the terminal interleaved their lines ("... eV[wannmag dft] Neel ...")
        sys.stdout.write(msg + "\n")
        sys.stdout.flush()
    else:
        log(msg)


def _finished_run(summary_path: Path, run_dir: Path, params: dict, name: str, log):
    """The DFTRecord of ``summary_path`` when it was computed with ``params`` (its paths pointing at ``run_dir``,
    where the files are now), None when there is no summary yet; DFTError when it holds another calculation."""
    if not summary_path.exists():
        return None
    old = read_summary(summary_path)
    if old.parameters == params:
        _log(f"[wannmag dft] {name}: finished earlier, read {summary_path}", log)
        # a moved or copied work directory: the record points at where its files are now
        old.run_dir = str(run_dir)
        if old.gpw:
            old.gpw = str(run_dir / Path(old.gpw).name)
        return old
    diff = sorted(k for k in set(params) | set(old.parameters) if params.get(k) != old.parameters.get(k))
    raise DFTError(f"{summary_path}: holds a different calculation (differs in {', '.join(diff)}); "
                   f"use another workdir/name or delete that directory")


def _run_scf(conf, params: dict, txt: Path, label: str, log):
    """(atoms, calc, energy eV, SCF time s): the GPAW calculator of ``params`` (log ``txt``) on a periodic copy of
    the configuration's atoms and its SCF, with progress lines labelled ``label``; a failure to set up GPAW or of
    the SCF is one DFTError line."""
    atoms = conf.atoms.copy()
    atoms.pbc = True
    try:
        calc = _make_calculator(params, str(txt))
    except WannmagError:
        raise
    except Exception as exc:  # noqa: BLE001 - GPAW set-up errors become one line
        raise DFTError(f"{txt}: cannot set up GPAW ({type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''})") from None
    atoms.calc = calc
    t0 = time.time()
    try:
        with _ScfWatcher(txt, label, log):
            energy = float(atoms.get_potential_energy())
    except Exception as exc:  # noqa: BLE001
        msg = str(exc).splitlines()[0][:160] if str(exc) else ""
        raise DFTError(f"{txt}: GPAW calculation failed ({type(exc).__name__}: {msg})") from None
    return atoms, calc, energy, time.time() - t0


def run_dft(structure, config="FM", preset: str = "fast", U=3.0, workdir="wannmag_dft", kpts=None,
            kdensity=None, ecut=None, nbands=None, converge_bands=None, write_wavefunctions: bool = False,
            name: str | None = None, log=True, return_calc: bool = False, charge: float = 0.0,
            smearing: float = SMEARING_EV, mixer: dict | None = None, maxiter: int | None = None,
            progress: str | None = None, density_tol: float | None = None, fixmagmom: bool = False,
            xc: str = "PBE", **site_kw):
    """Total energy, moments, Fermi level and gaps of one collinear magnetic configuration with GPAW.

    Parameters
    ----------
    structure : structure file, ``ase.Atoms`` or ``MagneticSublattice`` (ignored when ``config`` is a
        ``Configuration``).
    config : "FM", "Neel", "zigzag", "stripy" (smallest commensurate cell, see
        ``wannmag.structures.honeycomb_configuration``), "NM" (non-spin-polarised), or any ``Configuration``
        (``configuration_from_pattern``, ``vacancy_supercell``); its atoms carry the initial moments σ_i·2S μ_B.
    preset : "fast" (LCAO dzp) or "accurate" (PW 450 eV); see the module docstring.
    U : Dudarev U_eff on the d shell of the magnetic ions in eV (a number for all, or a dict per element).
    workdir : parent directory; the run directory is ``workdir/<name or config name>``.
    kpts : explicit k-mesh (3 integers) instead of the preset's constant-density mesh; ``kdensity`` overrides the
        density (points per Å⁻¹, see :func:`kpoint_mesh`); ``ecut`` the plane-wave cutoff (eV, accurate only).
    nbands, converge_bands : GPAW band settings (more, converged empty bands for Wannierisation).
    write_wavefunctions : store the wave functions in the .gpw (needed by ``wannierise``; large file).
    xc : exchange-correlation functional (default PBE; "LDA" for the LDA+U comparisons with GPAW's non-collinear
        spin spirals and its Heisenberg force-theorem calculator, which accept LDA-type functionals only).
    log : True to print progress lines (the path of the GPAW log to follow, and every ≈ 10 s the SCF iteration and
        its energy change read from that log), a callable, or None.
    progress : label of this run among others, e.g. "2 of 4", shown in the progress lines.
    return_calc : also return the live calculator (``(record, calc)``; None when resumed from disk).
    charge : net charge of the cell (e; e.g. −2 for a V vacancy in VPS3 with all remaining V kept V2+).
    smearing, mixer, maxiter : Fermi–Dirac width (eV), GPAW mixer keywords and SCF iteration limit (metallic or
        hard-to-converge cells, e.g. the neutral vacancy cell with its two holes); an SCF that reaches ``maxiter``
        raises :class:`DFTError` (it is never stored as a result).

    Returns
    -------
    DFTRecord — energy in eV per cell and per magnetic ion, moments μ_B, gaps eV, timings s.  A run directory
    whose summary.json matches all parameters is returned without recomputing.
    """
    t_start = time.time()
    conf = resolve_configuration(structure, config)
    params = dft_parameters(conf, preset=preset, U=U, kpts=kpts, kdensity=kdensity, ecut=ecut, nbands=nbands,
                            converge_bands=converge_bands, write_wavefunctions=write_wavefunctions, charge=charge,
                            smearing=smearing, mixer=mixer, maxiter=maxiter, density_tol=density_tol,
                            fixmagmom=fixmagmom, xc=xc)
    run_dir = Path(workdir) / (name or conf.name)
    summary_path = run_dir / SUMMARY
    old = _finished_run(summary_path, run_dir, params, conf.name, log)
    if old is not None:
        return (old, None) if return_calc else old
    run_dir.mkdir(parents=True, exist_ok=True)
    txt = run_dir / "gpaw.txt"
    gpw = run_dir / f"{conf.name}.gpw"
    write_json_atomic(run_dir / "parameters.json", params)
    _log(f"[wannmag dft] {conf.atoms.get_chemical_formula()} {conf.name}{f' ({progress})' if progress else ''} "
         f"({preset}, k-mesh "
         f"{'×'.join(map(str, params['kpts']))}, U={params['U']}): running GPAW, log: {txt}", log)

    atoms, calc, energy, t_scf = _run_scf(conf, params, txt, f"{conf.name}{f' ({progress})' if progress else ''}", log)

    nspins = calc.get_number_of_spins()
    try:
        moments = np.asarray(calc.get_magnetic_moments(), float) if params["spinpol"] else np.zeros(len(atoms))
    except Exception:  # noqa: BLE001 - some calculators have no local moments
        moments = np.zeros(len(atoms))
    total = float(calc.get_magnetic_moment()) if params["spinpol"] else 0.0
    nk = len(calc.get_ibz_k_points())
    eigs = np.array([[calc.get_eigenvalues(kpt=k, spin=s) for k in range(nk)] for s in range(nspins)])
    efermi, efermis = fermi_levels(calc)
    gaps, gap = band_gaps(eigs, efermis if efermis is not None else efermi)

    try:
        n_iter = int(calc.get_number_of_iterations())
    except Exception:  # noqa: BLE001 - not every calculator counts its iterations
        n_iter = None
    site_m = moments[conf.sublattice.indices]
    warns = check_moments(site_m, conf.pattern, conf.sublattice.spins, conf.sublattice.elements)
    for w in warns:
        print(f"wannmag: warning: {conf.atoms.get_chemical_formula()} {conf.name}: {w}", file=sys.stderr, flush=True)

    t1 = time.time()
    calc.write(str(gpw), mode="all" if write_wavefunctions else "")
    t_write = time.time() - t1
    rec = DFTRecord(
        source="gpaw", formula=conf.atoms.get_chemical_formula(), config=conf.name,
        pattern=[int(s) for s in conf.pattern], n_sites=int(conf.n_sites),
        supercell=np.asarray(conf.supercell, int).tolist(), preset=preset, U=params["U"],
        energy=energy, energy_per_ion=energy / max(conf.n_sites, 1),
        moments=np.round(moments, 4).tolist(), site_moments=np.round(site_m, 4).tolist(), total_moment=total,
        fermi_level=efermi, gaps=[round(g, 4) for g in gaps], gap=round(gap, 4), kpts=list(params["kpts"]),
        timings={"scf": round(t_scf, 1), "write": round(t_write, 1), "total": round(time.time() - t_start, 1)},
        code_version=f"gpaw {gpaw_version()}", run_dir=str(run_dir), gpw=str(gpw), parameters=params,
        warnings=warns,
        extra={"spins": [float(s) for s in conf.sublattice.spins], "elements": conf.sublattice.elements,
               "site_indices": [int(i) for i in conf.sublattice.indices], "nbands": int(eigs.shape[-1]),
               "n_ibz_kpoints": int(nk), "scf_iterations": n_iter,
               **({"fermi_levels_eV": efermis, "fixmagmom": True, "common_gap_eV": common_gap(eigs, efermis)}
                  if efermis is not None else {}), "structure": str(conf.atoms.info.get("name", conf.atoms.info.get("source", "")))},
    )
    rec.write(summary_path)
    _log(f"[wannmag dft] {conf.name}: E = {energy:.6f} eV ({rec.energy_per_ion:.6f} eV/ion), site moments "
         f"{', '.join(f'{m:+.2f}' for m in site_m)} μB, gaps {', '.join(f'{g:.2f}' for g in gaps)} eV, "
         f"{t_scf:.0f} s", log)
    return (rec, calc) if return_calc else rec
