"""Self-consistent four-state check of the exchange anisotropy with GPAW: non-collinear LDA+U + spin–orbit SCF per
direction set (the driver; the four-state algebra is :mod:`wannmag.magnetism.anisotropy.fourstate`).

Conventions of wannmag: energies eV per supercell in the point files, meV from the energy callable, moments μ_B,
angles degrees, lengths Å; H = Σ_{bonds once} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i, classical spins of length S, J > 0
antiferromagnetic.

What GPAW 26.7 can do (read from its source, .venv/lib/python3.11/site-packages/gpaw; no GPAW run was made here)
----------------------------------------------------------------------------------------------------------------------
* **Self-consistent SOC in the non-collinear plane-wave mode: yes.**  ``soc`` is a top-level parameter of the new
  code ("Enable spin-orbit coupling", dft.py:808, 885–886, stored at dft.py:930; the old ``experimental={'soc': ...}``
  is translated with a deprecation warning, dft.py:1049–1053), read by the builder (new/builder.py:78) and passed to
  the potential calculator (new/pw/builder.py:169).  Inside the PAW spheres only (the usual approximation), every
  SCF step adds the SOC term to the spin components of the atomic Hamiltonian, ``dH_sp[1:4] =
  pack_hermitian(soc(...))``, and its energy ``e_soc`` to the total (new/pot_calc.py:232–235, 258; the term is
  gpaw/spinorbit.py:571 ``soc``).  The calculation is non-collinear (4 components) when ``magmoms`` are 3-vectors
  (new/builder.py:488–493).  Self-consistent non-collinear runs accept only LDA: ``ValueError('Only LDA supported
  for SC Non-collinear calculations')`` (new/builder.py:89–91; measured in this package, spiral driver).  DFT+U works
  with 4 components (gpaw/hubbard.py:93, the ``nspins == 4`` branch; applied at new/pot_calc.py:243).
* **Directions of local moments can be constrained: yes, by a penalty.**  ``gpaw.new.constraints.
  SpinDirectionConstraint({atom: direction}, penalty=0.8 eV)`` (new/constraints.py:10–28), passed as
  ``extensions=[...]`` (dict form ``{'name': 'spin_direction_constraint', 'constraint': ..., 'penalty': ...}``
  accepted at dft.py:72–74; GPAW's own test uses it with ``soc=True``, test/noncollinear/test_spin_dir_constraint.py:
  19, 29, 32).  It adds to the spin part of the atomic Hamiltonian (new/constraints.py:42, called at
  new/pot_calc.py:248) the derivative of E_p = λ (|m|² − (û·m)²) (new/constraints.py:85), where m is the spin moment
  in the PAW sphere, Σ M_ii' N0_ii' (new/constraints.py:72) — the same quantity as the local moments GPAW reports
  (new/density.py:359, new/calculation.py:306, ``get_non_collinear_magnetic_moments`` new/ase_interface.py:318).
  Three consequences this driver acts on:
  (1) the penalty is **blind to the sign** of m along û (E_p(m) = E_p(−m)): a moment that flips during the SCF is
      not pulled back — the start moments are put along the requested directions and the realised directions are
      checked, sign included;
  (2) the penalty is finite: a residual angle δ ≈ torque / (2 λ |m|²) remains.  Estimate for CrI3: the exchange
      torque on a Cr spin perpendicular to its neighbours is ≈ 3 |J1| S² ≈ 15 meV/rad, 2 λ |m|² ≈ 41 eV/rad² at
      λ = 2 eV (GPAW's test value; its default 0.8 eV) and |m| ≈ 3.2 μ_B, so δ ≈ 0.02° and the energy error ≈ δ² ×
      41 eV ≈ 10 μeV (an estimate, not measured);
  (3) the penalty energy itself is **not** part of the reported energy: ``calculate(..., return_energy=False)``
      returns 0.0 (new/constraints.py:82–83), so ``update_non_local_hamiltonian`` adds 0 to e_xc while the
      kinetic-energy correction subtracts D·dH including the penalty field (new/pot_calc.py:251) — the total energy
      is the Kohn–Sham energy of the constrained density (what the four-state method needs; E_p → 0 for m ∥ û).
  Only the magnetic ions are constrained (the induced ligand moments stay free).
* **The "frozen" alternative** (non-self-consistent SOC on top of a non-collinear SCF without SOC,
  ``gpaw.spinorbit.soc_eigenstates``, spinorbit.py:475) is written around one global quantisation axis (θ, φ,
  spinorbit.py:479–480, 377–392) and the spin channels of a collinear ground state (``get_both_spins``,
  spinorbit.py:544, 941); that it handles a spinor (non-collinear) ground state was not established.  It is not used:
  the self-consistent SOC + constraint route exists.  The driver can still run ``soc=False`` (same constraint): the
  null test — every anisotropic part must then vanish up to the SCF noise.

What the driver does
--------------------
:class:`FourStateDFT` holds one GPAW setting (LDA + Dudarev U on the metal d, ``setups={el: ':d,U'}``, plane waves,
Γ-centred k mesh, Fermi–Dirac smearing, ``symmetry='off'``, SOC on, the direction constraint with penalty λ on every
magnetic ion) and the supercell: the structure repeated by ``supercell`` (ase ``make_supercell``) and each site of
``template.supercell(P)`` (:func:`~wannmag.magnetism.anisotropy.fourstate.supercell_sites`, the order the four-state
functions use) mapped onto the GPAW atom at its position (element checked).  Called with an (N, 3) array of
directions it is the ``energy(directions) -> meV`` callable of
:func:`~wannmag.magnetism.anisotropy.fourstate.extract_anisotropic_model`: one GPAW SCF per direction set, start
moments 2S μ_B along each direction, constraint directions the same.  Each point is one JSON in ``workdir``,
``fourstate_<hash>.json``, the hash the SHA-256 of the canonical JSON of its parameters (structure, supercell,
directions, GPAW settings): written atomically, read back instead of recomputed (resume), the GPAW log gzipped next
to it.  After the SCF the realised site moments are read back; a point is **not usable** — the callable raises
:class:`PointRejected`, a one-line ``DFTError`` — when the SCF did not converge, when a magnetic moment collapsed
(|m| < ``min_moment_fraction`` × 2S μ_B) or when a realised direction is more than ``tolerance_deg`` from the
requested one (a flip is 180°).  The tolerance is applied when a point is used, not stored, so a stored point can be
re-judged.  :func:`four_state_check` first runs every planned point (a bad point does not stop the others), then
extracts only if all are usable; otherwise it returns the list of excluded points and no parameters.  Supercell
check: for every requested bond the other periodic images of j within ``coupling_range`` of i (default the
``n_shells``-th neighbour distance + 0.1 Å), and for the single-ion term the images of i itself, must be absent
(one-line error otherwise): a √3×√3 or 1×1 CrI3 cell mixes J3 or all three J1 bonds into the four-state sum; the
2×2 cell (8 Cr) is the smallest in-plane diagonal one that separates shells 1–3.

Cost of the CrI3 check (estimate, no run)
-----------------------------------------
Measured (data/exchange/README_spiral.md): 8-atom CrI3 cell, 250 eV, 3×3 k (9 points, symmetry off), 64 bands,
non-collinear LDA+U: ≈ 40 s CPU per SCF iteration, 12–20 iterations per point.  The 2×2 supercell has 32 atoms (216
valence electrons, ≈ 256 spinor bands, 4× the plane waves); k mesh 2×2 (4 points; the unit cell's 3×3 would be 1.5×1.5
here, 2×2 is the nearest Γ-centred mesh that is not coarser).  Per k point the work grows as N_bands·N_pw (×16, FFTs)
to N_bands²·N_pw (×64, orthonormalisation/subspace), so one iteration ≈ 40 s × 4/9 × (16…64) ≈ 280–1140 s.
Constrained SOC SCFs will need more iterations (assumed 25–40, not measured): ≈ 2–13 CPU-hours per point.  Points: 36
per bond (nine components) + 12 per single-ion site (:func:`~wannmag.magnetism.anisotropy.fourstate.n_energies`): one
nearest-neighbour bond + one Cr (the two Cr of CrI3 are inversion images; ``single_ion_sites=[0]``) = 48 SCFs ≈
100–600 CPU-hours, i.e. 4–25 days of one free core; both Cr, 59 SCFs (the all-+z state serves both sites: identical
direction sets are one file, computed once). Not implemented reductions: with the bond's inversion centre (D = 0) six
symmetric components suffice (24 SCFs) and with the C3 axis through Cr the uniaxial A needs Ē(z) − Ē(x) only (4 SCFs):
28 SCFs ≈ 60–360 CPU-hours; restarting each SCF from the density of a neighbouring direction set would cut iterations.
The SCF criterion :data:`FOURSTATE_CONVERGENCE` (energy 1e-6 eV per valence electron ≈ 0.2 meV per 2×2 supercell)
bounds the error of each J^{αβ} = ΔE/(4S²) at ≈ 4 × 0.2 / 9 ≈ 0.1 meV.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from ase.build import make_supercell
from ase.data import atomic_numbers

from .._atomic import jsonable, read_json
from ..magnetism.anisotropy.fourstate import (decompose, extract_anisotropic_model, four_state_single_ion,
                                              model_bond_frames, site_index, supercell_sites)
from ..magnetism.spinmodel import SpinModel
from ..structures import find_magnetic_sites, neighbour_shells, read_structure
from .dft import DFTError, gpaw_version, hubbard_u, write_json_atomic

__all__ = ["FourStateDFT", "FourStatePoint", "FourStateCheck", "PointRejected", "four_state_check",
           "gpaw_keywords", "point_key", "FOURSTATE_CONVERGENCE", "PENALTY_EV", "TOLERANCE_DEG"]

#: SCF criteria (new-GPAW units: energy eV per valence electron over the last 3 cycles, density electrons per
#: valence electron, eigenstates eV² per valence electron).  Energy 1e-6 eV/e ≈ 0.2 meV per 2×2 CrI3 supercell
#: (216 e); eigenstates 1e-7 (GPAW default 4e-8) — not measured for constrained SOC runs.
FOURSTATE_CONVERGENCE = {"energy": 1e-6, "density": 1e-5, "eigenstates": 1e-7}
#: Penalty λ (eV) of GPAW's SpinDirectionConstraint, E_p = λ(|m|² − (û·m)²) (GPAW's own test value; default 0.8).
PENALTY_EV = 2.0
#: Largest angle (degrees) between a realised and a requested site moment for a point to be used.
TOLERANCE_DEG = 2.0


class PointRejected(DFTError):
    """A four-state point that must not be used (not converged, moment collapsed or turned)."""


@dataclass
class FourStatePoint:
    """One constrained non-collinear SCF: ``directions`` requested per supercell site (unit vectors), ``energy`` eV
    per supercell (None when not converged), ``moments`` μ_B of all atoms, ``site_moments`` of the magnetic sites,
    ``deviation_deg`` the angle between realised and requested direction per site."""

    key: str
    directions: list
    site_atoms: list
    converged: bool
    energy: float | None = None
    iterations: int | None = None
    seconds: float | None = None
    moments: list = field(default_factory=list)
    site_moments: list = field(default_factory=list)
    deviation_deg: list = field(default_factory=list)
    orbital_moments: list | None = None
    error: str | None = None
    code_version: str | None = None
    parameters: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return jsonable(asdict(self))

    @classmethod
    def from_dict(cls, d: dict) -> "FourStatePoint":
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in names})

    def problem(self, tolerance_deg: float = TOLERANCE_DEG, min_moment_fraction: float = 0.5) -> str | None:
        """Why this point must not be used (one line), or None."""
        if not self.converged or self.energy is None or not math.isfinite(self.energy):
            return self.error or "SCF not converged"
        spins = self.parameters.get("spins", [])
        m = np.asarray(self.site_moments, float)
        if m.shape != (len(self.site_atoms), 3):
            return "no realised site moments stored"
        norms = np.linalg.norm(m, axis=1)
        for k, (n, S) in enumerate(zip(norms, spins)):
            if n < min_moment_fraction * 2 * S:
                return f"moment of site {k} collapsed to {n:.2f} μ_B (< {min_moment_fraction:g} × {2 * S:g} μ_B)"
        dev = np.asarray(self.deviation_deg, float)
        k = int(np.argmax(dev))
        if dev[k] > tolerance_deg:
            return (f"site {k} (atom {self.site_atoms[k]}) turned {dev[k]:.1f}° from the requested direction "
                    f"(tolerance {tolerance_deg:g}°)")
        return None


def point_key(params: dict) -> str:
    """Content hash of a parameter set (first 16 hex digits of the SHA-256 of its canonical JSON)."""
    text = json.dumps(jsonable(params), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _clean(a, decimals):
    """Round and turn −0.0 into 0.0 (equal directions must hash equally)."""
    return np.round(np.asarray(a, float), decimals) + 0.0


def gpaw_keywords(params: dict) -> dict:
    """Keyword arguments of the new-GPAW calculator (``gpaw.new.ase_interface.GPAW``) for ``params`` (without
    ``txt``): plane waves, non-collinear start moments, symmetry off, LDA, SOC, Dudarev U, the direction constraint
    in GPAW's dict form (dft.py:72–74)."""
    kw = dict(mode={"name": "pw", "ecut": params["ecut"]},
              magmoms=[list(m) for m in params["initial_magmoms"]],
              symmetry="off", xc="LDA", soc=bool(params["soc"]),
              kpts={"size": tuple(params["kpts"]), "gamma": True},
              occupations={"name": "fermi-dirac", "width": params["smearing"]},
              convergence=dict(params["convergence"]), maxiter=params["maxiter"])
    if params["U"]:
        kw["setups"] = {el: f":d,{u}" for el, u in params["U"].items()}
    if params["nbands"] is not None:
        kw["nbands"] = params["nbands"]
    if params["penalty"] is not None:
        kw["extensions"] = [{"name": "spin_direction_constraint", "penalty": float(params["penalty"]),
                             "constraint": {int(a): list(d) for a, d in zip(params["site_atoms"],
                                                                             params["directions"])}}]
    return kw


def _make_gpaw_calculator(params: dict, txt: str):
    """The production engine: a new-GPAW calculator (no test runs it)."""
    from gpaw.new.ase_interface import GPAW  # local: optional heavy dependency (GPAW, extra "dft")

    return GPAW(txt=txt, **gpaw_keywords(params))


def _log(msg, log):
    if log is None:
        return
    if log is print:
        print(msg, flush=True)
    else:
        log(msg)


def _is_scf_failure(exc) -> bool:
    try:
        from gpaw import KohnShamConvergenceError  # local: optional heavy dependency (GPAW, extra "dft")
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, KohnShamConvergenceError)


def _supercell_matrix(supercell) -> np.ndarray:
    try:
        P = np.asarray(supercell, dtype=float)
    except (TypeError, ValueError):
        raise DFTError(f"supercell must be 3 integers or a 3×3 integer matrix, got {supercell!r}") from None
    if P.shape == (3,):
        P = np.diag(P)
    if P.shape != (3, 3) or not np.all(np.isfinite(P)) or np.any(np.abs(P - np.round(P)) > 1e-9):
        raise DFTError(f"supercell must be 3 integers or a 3×3 integer matrix, got {np.asarray(supercell).tolist()}")
    P = np.round(P).astype(int)
    if round(np.linalg.det(P)) < 1:
        raise DFTError(f"supercell matrix {P.tolist()} must have a positive determinant")
    return P


class FourStateDFT:
    """The GPAW engine of the four-state method on one supercell (module docstring): ``engine(directions)`` → meV.

    ``structure``: anything :func:`wannmag.structures.read_structure` takes (the unit cell); ``template``: the
    unit-cell SpinModel whose ``supercell(P)`` site order the directions follow (default: the magnetic sites of
    ``structure``); ``supercell``: 3 integers or a 3×3 matrix; ``U`` eV on the metal d (number or dict per
    element); ``ecut`` eV; ``kpts`` Γ-centred mesh of the supercell; ``smearing`` Fermi–Dirac width eV; ``soc``
    self-consistent spin–orbit coupling; ``penalty`` λ eV of the direction constraint (None: unconstrained);
    ``tolerance_deg``, ``min_moment_fraction``: when a point is refused; ``make_calculator(params, txt)``: the engine
    (default new-GPAW).
    """

    def __init__(self, structure, supercell=(2, 2, 1), template=None, U=3.0, xc="LDA", ecut=250.0, kpts=(2, 2, 1),
                 nbands=None, smearing=0.05, convergence=None, maxiter=120, soc=True, penalty=PENALTY_EV,
                 tolerance_deg=TOLERANCE_DEG, min_moment_fraction=0.5, workdir="wannmag_fourstate",
                 make_calculator=None, log=print, gzip_logs=True, n_shells=3, coupling_range=None):
        if str(xc).upper() != "LDA":
            raise DFTError(f"xc={xc!r}: GPAW's self-consistent non-collinear mode accepts only LDA")
        try:
            atoms = read_structure(structure)
        except Exception as exc:  # one line whatever the reader says
            first = str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DFTError(f"cannot read the structure: {first}") from None
        self.atoms = atoms
        symbols = atoms.get_chemical_symbols()
        self.sublattice = find_magnetic_sites(atoms)
        self.template = SpinModel.from_sublattice(self.sublattice) if template is None else template
        for k, s in enumerate(self.template.sites):
            if s.element not in atomic_numbers or atomic_numbers[s.element] == 0:
                raise DFTError(f"template site {k}: {s.element!r} is not a chemical element")
        if not np.allclose(np.asarray(self.template.cell, float), atoms.cell.array, atol=1e-4):
            raise DFTError("the template's cell differs from the structure's cell")
        self.template_atoms = [self._atom_at(atoms, s.position, s.element, f"template site {k}")
                               for k, s in enumerate(self.template.sites)]
        metals = sorted({s.element for s in self.template.sites})
        if isinstance(U, dict):
            for el in U:
                if str(el) not in atomic_numbers or atomic_numbers[str(el)] == 0:
                    raise DFTError(f"U given for {el!r}, which is not a chemical element")
                if str(el) not in symbols:
                    raise DFTError(f"U given for {el}, which is not in the structure ({atoms.get_chemical_formula()})")
        self.U = {k: v for k, v in hubbard_u(U, metals).items() if v != 0.0}
        if any(not math.isfinite(v) or v < 0 for v in self.U.values()):
            raise DFTError(f"U must be a finite non-negative number of eV, got {self.U}")
        try:
            mesh = [float(k) for k in np.broadcast_to(np.asarray(kpts, dtype=float), (3,))]
        except (TypeError, ValueError):
            mesh = [0.0]
        if not all(k.is_integer() and k >= 1 for k in mesh):
            raise DFTError(f"k-point mesh must be 3 positive integers, got {kpts!r}")
        self.kpts = [int(k) for k in mesh]
        if not (float(ecut) > 0 and math.isfinite(float(ecut))):
            raise DFTError(f"ecut must be a positive number of eV, got {ecut!r}")
        if penalty is not None and not (float(penalty) > 0 and math.isfinite(float(penalty))):
            raise DFTError(f"penalty must be a positive number of eV (or None), got {penalty!r}")
        if not (float(tolerance_deg) > 0):
            raise DFTError(f"tolerance_deg must be positive, got {tolerance_deg!r}")
        self.P = _supercell_matrix(supercell)
        self.sites = supercell_sites(self.template, self.P)
        self.big, _ = self.template.supercell(self.P)
        self.n_sites = len(self.sites)
        self.spins = [float(s.spin) for s in self.big.sites]
        self.super_atoms = make_supercell(atoms, self.P)
        self.site_atoms = [self._atom_at(self.super_atoms, s["position"], s["element"], f"supercell site {s['index']}")
                           for s in self.sites]
        if len(set(self.site_atoms)) != self.n_sites:
            raise DFTError("two supercell sites map onto one atom")
        shells = neighbour_shells(self.sublattice, n_shells)
        self.coupling_range = float(coupling_range) if coupling_range is not None else shells[-1].distance + 0.1
        self.settings = {"ecut": float(ecut), "kpts": self.kpts, "xc": "LDA", "U": self.U,
                         "nbands": None if nbands is None else int(nbands), "smearing": float(smearing),
                         "convergence": dict(FOURSTATE_CONVERGENCE if convergence is None else convergence),
                         "maxiter": int(maxiter), "soc": bool(soc),
                         "penalty": None if penalty is None else float(penalty)}
        self.tolerance_deg = float(tolerance_deg)
        self.min_moment_fraction = float(min_moment_fraction)
        self.workdir = Path(workdir)
        self.make_calculator = make_calculator or _make_gpaw_calculator
        self.log = log
        self.gzip_logs = gzip_logs
        self.calls = 0          # SCFs started by this engine (resumed points are not counted)

    @staticmethod
    def _atom_at(atoms, position, element, what) -> int:
        cell = atoms.cell.array
        d = (atoms.positions - np.asarray(position, float)) @ np.linalg.inv(cell)
        periodic = np.array(atoms.pbc, bool)
        d[:, periodic] -= np.round(d[:, periodic])
        dist = np.linalg.norm(d @ cell, axis=1)
        a = int(np.argmin(dist))
        if dist[a] > 1e-3:
            raise DFTError(f"{what}: no atom of the structure at {np.round(position, 3).tolist()}")
        if atoms.get_chemical_symbols()[a] != element:
            raise DFTError(f"{what}: element {element} but the atom there is {atoms.get_chemical_symbols()[a]}")
        return a

    # ----------------------------------------------------------------------------------------------------------
    def directions(self, directions) -> np.ndarray:
        """The (N, 3) unit vectors of ``directions`` (one per supercell site); bad input one DFTError line."""
        try:
            d = np.asarray(directions, float)
        except (TypeError, ValueError):
            raise DFTError(f"directions must be an ({self.n_sites}, 3) array of numbers") from None
        if d.shape != (self.n_sites, 3):
            raise DFTError(f"directions must be an ({self.n_sites}, 3) array (one per supercell site), "
                           f"got shape {list(d.shape)}")
        if not np.all(np.isfinite(d)):
            raise DFTError("directions must be finite")
        n = np.linalg.norm(d, axis=1)
        if np.any(n < 1e-8):
            raise DFTError(f"site {int(np.argmin(n))}: zero-length direction")
        return d / n[:, None]

    def parameters(self, directions) -> dict:
        """The JSON-able parameter set of one direction set (its hash names the file)."""
        d = _clean(self.directions(directions), 10)
        mag = np.zeros((len(self.super_atoms), 3))
        for k, a in enumerate(self.site_atoms):
            mag[a] = 2.0 * self.spins[k] * d[k]
        a = self.super_atoms
        return jsonable({"formula": a.get_chemical_formula(), "symbols": a.get_chemical_symbols(),
                         "positions": _clean(a.positions, 5), "cell": _clean(a.cell.array, 5),
                         "supercell": self.P, "site_atoms": self.site_atoms, "spins": self.spins,
                         "directions": d, "initial_magmoms": _clean(mag, 6), **self.settings})

    def path(self, params) -> Path:
        return self.workdir / f"fourstate_{point_key(params)}.json"

    def point(self, directions) -> FourStatePoint:
        """The point of ``directions``: read back if stored with the same parameters, else computed and stored."""
        params = self.parameters(directions)
        key = point_key(params)
        path = self.path(params)
        if path.exists():
            old = read_json(path, error=DFTError)
            if old.get("parameters") != params:
                raise DFTError(f"{path}: holds a calculation with different parameters; move it away")
            return FourStatePoint.from_dict(old)
        self.workdir.mkdir(parents=True, exist_ok=True)
        txt = path.with_suffix(".txt")
        _log(f"four-state {key}: running GPAW (LDA+U, SOC {'on' if params['soc'] else 'off'}, "
             f"{len(params['symbols'])} atoms, {params['ecut']:g} eV, {'×'.join(map(str, params['kpts']))} k)",
             self.log)
        self.calls += 1
        calc = self.make_calculator(params, str(txt))
        atoms = self.super_atoms.copy()
        atoms.set_initial_magnetic_moments(None)
        atoms.calc = calc
        t0 = time.time()
        converged, energy, error = True, None, None
        try:
            energy = float(atoms.get_potential_energy())
        except Exception as exc:
            if not _is_scf_failure(exc):
                raise
            converged, error = False, f"SCF not converged in {params['maxiter']} iterations"
        seconds = time.time() - t0
        try:
            iterations = int(calc.get_number_of_iterations())
        except Exception:
            iterations = None
        pt = FourStatePoint(key=key, directions=params["directions"], site_atoms=params["site_atoms"],
                            converged=converged, energy=energy if converged else None, iterations=iterations,
                            seconds=round(seconds, 1), error=error, code_version=gpaw_version(), parameters=params)
        if converged:
            mom = np.asarray(calc.get_non_collinear_magnetic_moments(), float)
            sm = mom[params["site_atoms"]]
            req = np.asarray(params["directions"], float)
            norms = np.linalg.norm(sm, axis=1)
            cos = np.einsum("ij,ij->i", sm, req) / np.where(norms > 0, norms, 1.0)
            dev = np.where(norms > 0, np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))), 180.0)
            pt.moments = np.round(mom, 5).tolist()
            pt.site_moments = np.round(sm, 5).tolist()
            pt.deviation_deg = np.round(dev, 3).tolist()
            try:
                pt.orbital_moments = np.round(np.asarray(calc.get_orbital_magnetic_moments(), float), 5).tolist()
            except Exception:  # a bonus, never a reason to lose the energy
                pt.orbital_moments = None
        write_json_atomic(path, pt.as_dict())
        if self.gzip_logs and txt.exists():
            with open(txt, "rb") as src, gzip.open(str(txt) + ".gz", "wb") as dst:
                shutil.copyfileobj(src, dst)
            txt.unlink()
        problem = pt.problem(self.tolerance_deg, self.min_moment_fraction)
        _log(f"four-state {key}: " + (f"E = {energy:.6f} eV, {iterations} iterations, {seconds:.0f} s, "
                                      f"largest turn {max(pt.deviation_deg):.2f}°" if converged
                                      else f"NOT converged ({seconds:.0f} s)")
             + (f" — NOT USABLE: {problem}" if problem else ""), self.log)
        return pt

    def __call__(self, directions) -> float:
        """Energy (meV per supercell) of ``directions``; a point that must not be used raises PointRejected."""
        pt = self.point(directions)
        problem = pt.problem(self.tolerance_deg, self.min_moment_fraction)
        if problem:
            raise PointRejected(f"four-state point {pt.key} ({self.workdir / ('fourstate_' + pt.key + '.json')}): "
                                f"{problem}; not used")
        return pt.energy * 1000.0

    # ----------------------------------------------------------------------------------------------------------
    def nearest_bond(self) -> tuple:
        """(i, j, R) of one shortest bond of the template (R in −1..1 lattice steps)."""
        best = None
        cell = np.asarray(self.template.cell, float)
        steps = [-1, 0, 1]
        for i, si in enumerate(self.template.sites):
            for j, sj in enumerate(self.template.sites):
                for r1 in steps:
                    for r2 in steps:
                        R = (r1, r2, 0)
                        if i == j and R == (0, 0, 0):
                            continue
                        d = np.linalg.norm(sj.position + np.array(R) @ cell - si.position)
                        if best is None or d < best[0] - 1e-6:
                            best = (d, (i, j, R))
        if best is None:
            raise DFTError("the template has no bond")
        return best[1]

    def check_supercell(self, bonds, single_ion_sites) -> None:
        """One-line DFTError unless each bond (i, j, R) couples i to one image of j within ``coupling_range`` and no
        single-ion site sees its own images (module docstring)."""
        n = self.template.n_sites
        cell = np.asarray(self.big.cell, float)
        pos = np.array([s.position for s in self.big.sites])
        periodic = [k for k in range(3) if self.big.pbc[k]]
        rng = [range(-2, 3) if k in periodic else range(0, 1) for k in range(3)]
        shifts = np.array([[a, b, c] for a in rng[0] for b in rng[1] for c in rng[2]], float) @ cell

        for (i, j, R) in bonds:
            if not (0 <= int(i) < n and 0 <= int(j) < n):
                raise DFTError(f"bond ({i}, {j}, {list(R)}): site index outside 0..{n - 1}")
            target = self.template.sites[j].position + np.asarray(R, float) @ np.asarray(self.template.cell, float)
            ii = site_index(self.big, self.template.sites[i].position)
            jj = site_index(self.big, target)
            if ii == jj:
                raise DFTError(f"bond ({i}, {j}, {list(R)}) maps onto one site of supercell {self.P.tolist()}")
            want = np.linalg.norm(target - self.template.sites[i].position)
            d = np.linalg.norm(pos[jj] + shifts - pos[ii], axis=1)
            extra = sorted(x for x in d if x <= self.coupling_range and abs(x - want) > 1e-4)
            if len(extra) or np.sum(np.abs(d - want) < 1e-4) > 1:
                raise DFTError(f"supercell {self.P.tolist()} too small for bond ({i}, {j}, {list(R)}): site {i} "
                               f"also couples to another image of site {j} within {self.coupling_range:.2f} Å")
        for i in single_ion_sites:
            if not 0 <= int(i) < n:
                raise DFTError(f"single-ion site {i} outside 0..{n - 1}")
            ii = site_index(self.big, self.template.sites[i].position)
            d = np.linalg.norm(shifts, axis=1)
            if np.any((d > 1e-6) & (d <= self.coupling_range)):
                raise DFTError(f"supercell {self.P.tolist()} too small for the single-ion term: site {i} couples "
                               f"to its own image within {self.coupling_range:.2f} Å")


@dataclass
class FourStateCheck:
    """Result of :func:`four_state_check` (meV, internal convention).  ``bonds``: per bond the 3×3 tensor, its
    Kitaev J, K, Γ, Γ′ in the bond's cubic frame, XXZ and DMI; ``single_ion``: per site the traceless A and
    A_zz − (A_xx + A_yy)/2; ``excluded``: the points that were not usable (then ``bonds`` and ``single_ion`` are
    empty and ``status`` is "incomplete")."""

    status: str
    n_points: int
    n_usable: int
    supercell: list
    settings: dict
    bonds: list = field(default_factory=list)
    single_ion: list = field(default_factory=list)
    excluded: list = field(default_factory=list)
    points: list = field(default_factory=list)
    seconds: float = 0.0
    tolerance_deg: float = TOLERANCE_DEG

    def as_dict(self) -> dict:
        return jsonable(asdict(self))

    @classmethod
    def from_dict(cls, d: dict) -> "FourStateCheck":
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in names})


def planned_directions(engine: FourStateDFT, bonds, single_ion_sites) -> list[np.ndarray]:
    """Every direction set the extraction will request, in order, without duplicates (dry run of the four-state
    functions with a recording callable)."""
    seen, out = set(), []

    def record(d):
        key = np.round(np.asarray(d, float), 10).tobytes()
        if key not in seen:
            seen.add(key)
            out.append(np.array(d, float))
        return 0.0

    if bonds:
        extract_anisotropic_model(record, engine.template, engine.P, bonds=bonds, single_ion=False)
    for i in single_ion_sites:
        ii = site_index(engine.big, engine.template.sites[i].position)
        four_state_single_ion(record, engine.n_sites, ii, engine.template.sites[i].spin)
    return out


def four_state_check(engine: FourStateDFT, bonds=None, single_ion_sites=None) -> FourStateCheck:
    """Run every point of the four-state extraction of ``bonds`` ((i, j, R) of the template; default one
    nearest-neighbour bond) and of the single-ion tensors of ``single_ion_sites`` (default all template sites),
    then — only if every point is usable — the tensors, their Kitaev (cubic-frame) and XXZ decompositions."""
    bonds = [engine.nearest_bond()] if bonds is None else [(int(i), int(j), tuple(int(x) for x in R))
                                                           for i, j, R in bonds]
    sites = list(range(engine.template.n_sites)) if single_ion_sites is None else [int(i) for i in single_ion_sites]
    if not bonds and not sites:
        raise DFTError("nothing to compute: no bond and no single-ion site")
    engine.check_supercell(bonds, sites)
    plan = planned_directions(engine, bonds, sites)
    points = [engine.point(d) for d in plan]
    excluded = []
    for pt in points:
        problem = pt.problem(engine.tolerance_deg, engine.min_moment_fraction)
        if problem:
            excluded.append({"key": pt.key, "file": f"fourstate_{pt.key}.json", "reason": problem})
    summary = [{"key": p.key, "energy_eV": p.energy, "converged": p.converged, "iterations": p.iterations,
                "seconds": p.seconds, "max_deviation_deg": max(p.deviation_deg) if p.deviation_deg else None}
               for p in points]
    out = FourStateCheck(status="incomplete" if excluded else "complete", n_points=len(points),
                         n_usable=len(points) - len(excluded), supercell=engine.P.tolist(), settings=engine.settings,
                         excluded=excluded, points=summary, seconds=round(sum(p.seconds or 0.0 for p in points), 1),
                         tolerance_deg=engine.tolerance_deg)
    if excluded:
        _log(f"four-state check: {len(excluded)} of {len(points)} points not usable; no parameters", engine.log)
        return out
    normal = np.cross(engine.template.cell[0], engine.template.cell[1])
    if bonds:
        fitted = extract_anisotropic_model(engine, engine.template, engine.P, bonds=bonds, single_ion=False)
        frames = model_bond_frames(fitted, engine.sublattice, fitted.bonds)
        for b, F in zip(fitted.bonds, frames):
            dec = decompose(b.J, normal=normal, frame=F, bond=(b.i, b.j, tuple(int(x) for x in b.R)))
            out.bonds.append({**dec.as_dict(), "length_A": float(fitted.bond_length(b)), "frame": F.tolist()})
    for i in sites:
        ii = site_index(engine.big, engine.template.sites[i].position)
        A = four_state_single_ion(engine, engine.n_sites, ii, engine.template.sites[i].spin)
        out.single_ion.append({"site": i, "A_meV": A.tolist(),
                               "A_zz_minus_mean_xy_meV": float(A[2, 2] - 0.5 * (A[0, 0] + A[1, 1]))})
    return out
