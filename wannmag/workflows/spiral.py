"""Self-consistent flat spin spirals with GPAW's generalized Bloch theorem: the driver (no physics here).

Conventions of wannmag: energies eV per cell in the run files (meV in the fit), exchange meV, lengths Å, moments μ_B,
angles degrees.  The model the energies are fitted to is H = Σ_{i<j} S_i·J_ij·S_j (each bond once, classical spins
of length S, J > 0 antiferromagnetic); the analytic E(q) and the fit live in :mod:`wannmag.magnetism.spiral`.

What GPAW computes
------------------
Plane-wave mode with ``mode={'name': 'pw', 'ecut': E, 'qspiral': q}`` (new GPAW, ``gpaw/new/spinspiral.py``): the
magnetisation is rotated about z by the angle 2π q·R under a lattice translation R (q in reduced coordinates of the
reciprocal cell of the cell given), inside the cell it keeps the directions it converges to from the start moments.
The start moments are non-collinear 3-vectors ``σ_a·2S μ_B`` along x on the magnetic ions (σ_a = ±1 from the
pattern: FM all +1, Néel on the honeycomb +1/−1), zero elsewhere; symmetry off (no point group, no time reversal).
GPAW's self-consistent non-collinear mode accepts only LDA ("Only LDA supported for SC Non-collinear calculations",
GPAW 26.7), so the runs are LDA + Dudarev U on the d shell of the magnetic ions (the same ``setups={el: ':d,U'}``
as :mod:`wannmag.workflows.dft`).

Files
-----
One JSON per (pattern, q) in ``workdir`` — ``<pattern>_q<q1>_<q2>_<q3>.json`` — written atomically with the energy
(eV per cell, extrapolated to zero smearing), ``converged``, SCF iterations, wall time, the non-collinear moments of
every atom (vectors, μ_B), the in-plane angle and the out-of-plane tilt of each magnetic moment (degrees), the
realised sublattice phases, and the band gap (eV).  The GPAW text log is gzipped next to it.  A file whose
``parameters`` match the request is not recomputed (resume); one with different parameters is never overwritten
(one-line error).  An SCF that does not converge within ``maxiter`` is stored with ``converged: false`` and
``energy: null`` (its last, unconverged energy is not kept as a result) and is excluded from every fit with a warning
(:func:`converged_points`).
"""

from __future__ import annotations

import gzip
import math
import re
import shutil
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .._atomic import jsonable, read_json
from ..magnetism.spinmodel import SpinModel
from ..magnetism.spiral import (SpiralFitError, corotating_phases, fit_spiral, fit_stiffness, high_symmetry_label,
                                pattern_phases, relaxed_spiral_energy, select_shells, spiral_energy,
                                stiffness_tensor)
from ..structures import find_magnetic_sites, neighbour_shells, read_structure
from .dft import DFTError, band_gaps, gpaw_version, hubbard_u, resolve_configuration, write_json_atomic

__all__ = ["SpiralPoint", "spiral_energies", "spiral_parameters", "converged_points", "load_points",
           "SPIRAL_CONVERGENCE", "point_filename", "realised_phases", "spiral_model", "fit_points",
           "fit_material_points", "shell_scan", "scf_tolerance_meV_per_cell"]

#: SCF criteria of the spiral runs (new-GPAW units: energy eV per valence electron over the last 3 cycles, density
#: electrons per valence electron, eigenstates eV² per valence electron).  1e-5 eV/electron is ≈ 0.5 meV per CrI3
#: cell (54 electrons) — 20× below the spread of E(q) over the zone; GPAW's default (5e-4) would allow 27 meV.
#: Eigenstates 1e-6 instead of GPAW's 4e-8: measured on CrI3 at Γ, energy and density had converged at iteration 13
#: (energy changing by 40 μeV per iteration) while the residual fell by only 10^0.25 per iteration from 10^-4.7 —
#: GPAW's default would have added ≈ 11 iterations (≈ 45 %) without changing the energy at the meV scale.
SPIRAL_CONVERGENCE = {"energy": 1e-5, "density": 1e-4, "eigenstates": 1e-6}


@dataclass
class SpiralPoint:
    """One self-consistent spiral: q (reduced coordinates of the reciprocal cell), ``energy`` in eV per cell (None
    when not converged), moments μ_B (all atoms, vectors), ``angles_deg`` in-plane angle atan2(m_y, m_x) of each
    magnetic site, ``tilt_deg`` its angle out of the xy plane, ``phases_deg`` the realised sublattice phases
    (angles relative to site 0 of the cell), ``pattern_phases_deg`` the pattern's (0 or 180)."""

    q: list
    pattern: str
    sigma: list
    converged: bool
    energy: float | None = None
    iterations: int | None = None
    seconds: float | None = None
    moments: list = field(default_factory=list)
    site_indices: list = field(default_factory=list)
    spins: list = field(default_factory=list)
    angles_deg: list = field(default_factory=list)
    tilt_deg: list = field(default_factory=list)
    phases_deg: list = field(default_factory=list)
    pattern_phases_deg: list = field(default_factory=list)
    gap: float | None = None
    fermi_level: float | None = None
    error: str | None = None
    code_version: str | None = None
    parameters: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return jsonable(asdict(self))

    @classmethod
    def from_dict(cls, d: dict) -> "SpiralPoint":
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in names})


def point_filename(pattern: str, q) -> str:
    qs = "_".join(f"{float(x):+.5f}" for x in q)
    return f"{pattern}_q{qs}.json"


def spiral_parameters(conf, q, U=3.0, xc="LDA", ecut=250.0, kpts=(3, 3, 1), nbands=None, smearing=0.05,
                      convergence=None, maxiter=80) -> dict:
    """The JSON-able parameter set that defines one spiral calculation (and the identity of its file).  A supercell
    configuration is accepted at q = 0 only: the collinear state computed in the same non-collinear mode (e.g. the
    zigzag and stripy states of the LDA+U energy mapping, data/exchange/lda_mapping.py)."""
    if str(xc).upper() != "LDA":
        raise DFTError(f"xc={xc!r}: GPAW's self-consistent non-collinear (spin-spiral) mode accepts only LDA")
    q = [float(x) for x in np.broadcast_to(np.asarray(q, float), (3,))]
    if not all(math.isfinite(x) for x in q):
        raise DFTError(f"spiral vector q must be finite, got {q}")
    mesh = [int(k) for k in np.broadcast_to(np.asarray(kpts, int), (3,))]
    if min(mesh) < 1:
        raise DFTError(f"k-point mesh must be positive integers, got {kpts!r}")
    if not (float(ecut) > 0):
        raise DFTError(f"ecut must be positive (eV), got {ecut!r}")
    if not np.allclose(np.asarray(conf.supercell), np.eye(3)) and any(x != 0.0 for x in q):
        raise DFTError("spin spirals are run in the primitive cell (q is in its reciprocal coordinates); "
                       f"configuration {conf.name!r} uses a supercell (only q = 0, a collinear state in the "
                       "non-collinear mode, may use one)")
    atoms = conf.atoms
    metals = sorted(set(conf.sublattice.elements))
    udict = hubbard_u(U, metals)
    return jsonable({
        "formula": atoms.get_chemical_formula(),
        "symbols": atoms.get_chemical_symbols(),
        "positions": np.round(atoms.positions, 5),
        "cell": np.round(atoms.cell.array, 5),
        "pattern": conf.name,
        "sigma": [int(s) for s in conf.pattern],
        "initial_magmoms": np.round(atoms.get_initial_magnetic_moments(), 3),
        "q": q,
        "ecut": float(ecut),
        "kpts": mesh,
        "xc": "LDA",
        "U": {k: v for k, v in udict.items() if v != 0.0},
        "nbands": None if nbands is None else int(nbands),
        "smearing": float(smearing),
        "convergence": dict(SPIRAL_CONVERGENCE if convergence is None else convergence),
        "maxiter": int(maxiter),
    })


def _make_spiral_calculator(params: dict, txt: str):
    """A new-GPAW plane-wave spin-spiral calculator for ``params`` (monkeypatched in the tests)."""
    from gpaw.new.ase_interface import GPAW  # local: optional heavy dependency (GPAW, extra "dft")

    kw = dict(mode={"name": "pw", "ecut": params["ecut"], "qspiral": params["q"]},
              magmoms=[[m, 0.0, 0.0] for m in params["initial_magmoms"]],
              symmetry="off", xc="LDA", txt=txt,
              kpts={"size": tuple(params["kpts"]), "gamma": True},
              occupations={"name": "fermi-dirac", "width": params["smearing"]},
              convergence=dict(params["convergence"]), maxiter=params["maxiter"])
    if params["U"]:
        kw["setups"] = {el: f":d,{u}" for el, u in params["U"].items()}
    if params["nbands"] is not None:
        kw["nbands"] = params["nbands"]
    return GPAW(**kw)


def _angles(moments, site_indices, sigma):
    m = np.asarray(moments, float)[list(site_indices)]
    ang = np.degrees(np.arctan2(m[:, 1], m[:, 0]))
    tilt = np.degrees(np.arctan2(m[:, 2], np.hypot(m[:, 0], m[:, 1])))
    phases = (ang - ang[0] + 180.0) % 360.0 - 180.0
    pattern = [0.0 if s >= 0 else 180.0 for s in sigma]
    return ang, tilt, phases, pattern


def _log(msg, log):
    if log is None:
        return
    if log is print:
        print(msg, flush=True)
    else:
        log(msg)


def spiral_energies(structure_or_atoms, qpoints, pattern="FM", U=3.0, xc="LDA", ecut=250.0, kpts=(3, 3, 1),
                    workdir="wannmag_spiral", nbands=None, smearing=0.05, convergence=None, maxiter=80,
                    log=print, gzip_logs=True) -> list[SpiralPoint]:
    """Self-consistent LDA+U spin-spiral energies E(q) for each q of ``qpoints`` on top of ``pattern``.

    ``structure_or_atoms``: anything :func:`wannmag.structures.read_structure` takes (its primitive cell is used) or
    a ``Configuration``; ``pattern``: "FM", "Neel" (or a ``Configuration``) — the sublattice signs σ_a of the start
    moments (2S μ_B along ±x).  ``qpoints``: reduced coordinates of the reciprocal cell.  ``U`` eV on the metal d
    shell (number or dict per element); ``ecut`` eV; ``kpts`` Γ-centred mesh; ``smearing`` Fermi–Dirac width eV;
    ``convergence`` GPAW SCF criteria (default :data:`SPIRAL_CONVERGENCE`); ``maxiter`` SCF iterations before the
    point is stored as not converged.  Returns one :class:`SpiralPoint` per q in the order given; finished points
    (same parameters) are read back, not recomputed.
    """
    if hasattr(structure_or_atoms, "pattern") and hasattr(structure_or_atoms, "sublattice"):
        conf = structure_or_atoms
    else:
        conf = resolve_configuration(read_structure(structure_or_atoms), pattern)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    sites = [int(i) for i in conf.sublattice.indices]
    spins = [float(s) for s in conf.sublattice.spins]
    out = []
    for q in qpoints:
        params = spiral_parameters(conf, q, U=U, xc=xc, ecut=ecut, kpts=kpts, nbands=nbands, smearing=smearing,
                                   convergence=convergence, maxiter=maxiter)
        path = workdir / point_filename(conf.name, params["q"])
        if path.exists():
            old = read_json(path, error=DFTError)
            if old.get("parameters") != params:
                raise DFTError(f"{path}: holds a spiral calculation with different parameters; "
                               "move it away or use another workdir")
            pt = SpiralPoint.from_dict(old)
            _log(f"spiral {conf.name} q={params['q']}: done before "
                 f"({'converged' if pt.converged else 'NOT converged'}), skipped", log)
            out.append(pt)
            continue
        txt = path.with_suffix(".txt")
        _log(f"spiral {conf.name} q={params['q']}: running GPAW (LDA+U, {params['ecut']:g} eV, "
             f"{'×'.join(map(str, params['kpts']))} k), log {txt}", log)
        calc = _make_spiral_calculator(params, str(txt))
        atoms = conf.atoms.copy()
        atoms.set_initial_magnetic_moments(None)
        atoms.calc = calc
        t0 = time.time()
        converged, energy, error = True, None, None
        try:
            energy = float(atoms.get_potential_energy())
        except Exception as exc:  # GPAW's KohnShamConvergenceError (and TooFewBandsError) end up here
            from gpaw import KohnShamConvergenceError  # local: optional heavy dependency (GPAW, extra "dft")

            if not isinstance(exc, KohnShamConvergenceError):
                raise
            converged, error = False, f"SCF not converged in {params['maxiter']} iterations"
        seconds = time.time() - t0
        try:
            iterations = int(calc.get_number_of_iterations())
        except Exception:
            iterations = None
        pt = SpiralPoint(q=params["q"], pattern=conf.name, sigma=params["sigma"], converged=converged,
                         energy=energy if converged else None, iterations=iterations, seconds=round(seconds, 1),
                         site_indices=sites, spins=spins, error=error, code_version=gpaw_version(),
                         parameters=params)
        if converged:
            mom = np.asarray(calc.get_non_collinear_magnetic_moments(), float)
            ang, tilt, ph, pph = _angles(mom, sites, params["sigma"])
            pt.moments = np.round(mom, 4).tolist()
            pt.angles_deg, pt.tilt_deg = np.round(ang, 2).tolist(), np.round(tilt, 2).tolist()
            pt.phases_deg, pt.pattern_phases_deg = np.round(ph, 2).tolist(), pph
            try:
                efermi = float(calc.get_fermi_level())
                nk = len(calc.get_ibz_k_points())
                eigs = np.array([[calc.get_eigenvalues(kpt=k) for k in range(nk)]])
                pt.fermi_level = efermi
                pt.gap = band_gaps(eigs, efermi)[1]
            except Exception as exc:  # the gap is a bonus, never a reason to lose the energy
                _log(f"  (gap not available: {type(exc).__name__})", log)
        write_json_atomic(path, pt.as_dict())
        if gzip_logs and txt.exists():
            with open(txt, "rb") as src, gzip.open(str(txt) + ".gz", "wb") as dst:
                shutil.copyfileobj(src, dst)
            txt.unlink()
        _log(f"spiral {conf.name} q={params['q']}: "
             + (f"E = {energy:.6f} eV, {iterations} iterations, {seconds:.0f} s, phases {pt.phases_deg} deg"
                if converged else f"NOT converged after {iterations} iterations ({seconds:.0f} s); stored as such"),
             log)
        out.append(pt)
    return out


def load_points(workdir, pattern=None) -> list[SpiralPoint]:
    """Every spiral JSON in ``workdir`` (optionally one pattern), in file-name order."""
    pts = []
    for p in sorted(Path(workdir).glob("*_q*.json")):
        pt = SpiralPoint.from_dict(read_json(p, error=DFTError))
        if pattern is None or pt.pattern == pattern:
            pts.append(pt)
    return pts


def converged_points(points, warn=True) -> list[SpiralPoint]:
    """The points whose SCF converged; each excluded point is named in a warning (never fitted)."""
    good = []
    for pt in points:
        if pt.converged and pt.energy is not None and math.isfinite(pt.energy):
            good.append(pt)
        elif warn:
            warnings.warn(f"spiral {pt.pattern} q={pt.q}: SCF not converged ({pt.error}); excluded from the fit",
                          stacklevel=2)
    return good


# --------------------------------------------------------------------------------------------------------------
# from the stored points to the fit (orchestration; the physics is wannmag.magnetism.spiral)
# --------------------------------------------------------------------------------------------------------------

def realised_phases(model, pt: SpiralPoint) -> np.ndarray:
    """Home-cell angles φ_a (rad) of eq. (1) of :mod:`wannmag.magnetism.spiral` for the model's sites, from the
    GPAW moments of ``pt``: φ_a = −θ_a^GPAW + 2π q·n_a, where θ is GPAW's in-plane angle (its spirals turn with
    −2π q·r, measured) and n_a the lattice vector between the model's site and the atom GPAW used (GPAW wraps
    reduced positions into [0, 1))."""
    cell = np.asarray(pt.parameters["cell"], float)
    pos = np.asarray(pt.parameters["positions"], float)[list(pt.site_indices)]
    s_gpaw = pos @ np.linalg.inv(cell)
    s_gpaw[:, :2] %= 1.0
    s_model = np.array([site.position for site in model.sites]) @ np.linalg.inv(model.cell)
    n = np.round(s_model - s_gpaw)
    if np.abs(s_model - s_gpaw - n).max() > 1e-3:
        raise DFTError(f"spiral point q={pt.q}: magnetic sites of the model and of the calculation differ")
    theta = np.radians(np.asarray(pt.angles_deg, float))
    return -theta + 2 * np.pi * n @ np.asarray(pt.q, float)


def spiral_model(structure, n_shells: int = 3):
    """Isotropic SpinModel (J = 0) with the first ``n_shells`` neighbour shells of ``structure``'s primitive
    magnetic sublattice: the bond list the spiral fit needs."""
    sub = find_magnetic_sites(read_structure(structure))
    model = SpinModel.from_sublattice(sub)
    for n, sh in enumerate(neighbour_shells(sub, n_shells), start=1):
        for b in sh.bonds:
            model.add_bond(b.i, b.j, b.R, 0.0, shell=n)
    return model


def fit_points(model, points, main_pattern: str, n_shells: int = 3, stiffness_q_max_reduced: float = 0.16):
    """Fit J1..Jn (+E0) to the converged ``points`` (all patterns, realised phases) and the small-q stiffness to the
    points of ``main_pattern`` with |q| ≤ ``stiffness_q_max_reduced`` × |b1| (Å⁻¹).  Returns a dict with the
    SpiralFit (as_dict), the stiffness, the stiffness implied by the fitted J, and what was excluded and why."""
    good = converged_points(points)
    excluded = [{"q": p.q, "pattern": p.pattern, "reason": p.error or "not converged"} for p in points
                if p not in good]
    out = {"n_points": len(points), "n_converged": len(good), "excluded": excluded, "fit": None, "stiffness": None}
    if not good:
        out["fit_error"] = "no converged spiral point"
        return out
    q = np.array([p.q for p in good], float)
    E = np.array([p.energy for p in good]) * 1000.0
    ph = np.array([realised_phases(model, p) for p in good])
    pat = np.array([corotating_phases(model, [p.q], p.sigma)[0] for p in good])
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fit = fit_spiral(model, q, E, n_shells=n_shells, phases=ph, pattern=pat,
                             source=f"spiral points ({len(good)} converged)")
        out["fit"] = fit.as_dict()
        for w in caught:
            warnings.warn(str(w.message), stacklevel=2)
        fitted = model.__class__(cell=model.cell, sites=model.sites, pbc=model.pbc)
        for b in model.bonds:
            fitted.add_bond(b.i, b.j, b.R, fit.J[b.shell - 1] if b.shell <= n_shells else 0.0, shell=b.shell)
    except SpiralFitError as exc:
        out["fit_error"] = str(exc)
        fitted = None
    main = [k for k, p in enumerate(good) if p.pattern == main_pattern]
    b1 = np.linalg.norm(2 * np.pi * np.linalg.inv(model.cell).T[0])
    try:
        st = fit_stiffness(model, q[main], E[main], q_max=stiffness_q_max_reduced * b1 + 1e-9)
        if fitted is not None:
            sigma = good[main[0]].sigma
            u = np.asarray(st["direction"], float)
            st["D_from_fitted_J"] = float(u @ stiffness_tensor(fitted, sigma, frame="bond") @ u)
        out["stiffness"] = st
    except SpiralFitError as exc:
        out["stiffness_error"] = str(exc)
    return out


def fit_material_points(structure, workdir, main_pattern: str, out=None, material: str | None = None,
                        n_shells: int = 3, reference: dict | None = None, select: str = "all",
                        all_points_dirs=None, shells=(3, 4, 5, 6)) -> str:
    """Load the spiral points of ``workdir``, fit (:func:`fit_points`), write ``out`` (JSON, atomic) with the
    settings, per-point data and the fit; returns a one-line summary.  ``reference``: other routes' J to store
    beside the fit (never used in it).

    ``select="high_symmetry"``: the J1..J{n_shells} row is fitted to the points at Γ, M and K only
    (:func:`wannmag.magnetism.spiral.high_symmetry_label`; the others are listed as excluded, with the reason):
    the issue's Γ–M–K prescription, exactly determined by FM and Néel at Γ plus the main pattern at M and K
    (commensurate states of small cells, as the 4-configuration energy mapping's are), so the row does not move
    when midpoints are added; a least-squares J1–J3 over a growing set of midpoints would move with the sampling
    whenever E(q) is not a J1–J3 curve (further shells fold into J1–J3 differently at each point).
    ``all_points_dirs`` (folders, e.g. the small-q stiffness set): a second row fitted to every converged point of
    ``workdir`` and those folders with the fewest shells (of ``shells``) whose rms residual lies within the SCF
    energy tolerance per cell (:func:`wannmag.magnetism.spiral.select_shells`, :func:`scf_tolerance_meV_per_cell`)
    — the model E(q) itself supports; the file then holds both rows in ``routes`` (top-level J1–J3 = the first row)."""
    model = spiral_model(structure, n_shells)
    points = load_points(workdir)
    skipped = []
    if select == "high_symmetry":
        fit_pts = [p for p in points if high_symmetry_label(model.cell, p.q) is not None]
        skipped = [{"q": p.q, "pattern": p.pattern, "reason": "not at Γ, M or K (in the every-point row only)"}
                   for p in points if p not in fit_pts]
    elif select == "all":
        fit_pts = points
    else:
        raise ValueError(f"select must be 'all' or 'high_symmetry', not {select!r}")
    res = fit_points(model, fit_pts, main_pattern, n_shells)
    res["excluded"] = res["excluded"] + skipped
    settings = {}
    if points:
        p0 = points[0].parameters
        settings = {k: p0.get(k) for k in ("ecut", "kpts", "xc", "U", "nbands", "smearing", "convergence",
                                           "maxiter")}
        settings["code_version"] = points[0].code_version
    fit = res["fit"]
    J = (fit["J"] + [None] * 3)[:3] if fit else [None, None, None]
    spins = sorted(set(model.spins.tolist()))
    seconds = sum(p.seconds or 0.0 for p in fit_pts)
    doc = {"material": material, "name": "spin spiral (self-consistent)",
           "method": "self-consistent flat spin spirals (GPAW qspiral, LDA+U), fitted with eq. (1) of "
                     "wannmag.magnetism.spiral using the realised sublattice phases",
           "convention": "H = sum_{i<j} J_ij S_i.S_j, each bond once, |S| = S, J > 0 AF, meV",
           "J1": J[0], "J2": J[1], "J3": J[2], "spin": spins[0] if len(spins) == 1 else spins,
           "distances": fit["distances"] if fit else None,
           "seconds": {"dft_all_points": round(seconds, 1)},
           "main_pattern": main_pattern, "settings": settings,
           "points": [{"q": p.q, "pattern": p.pattern, "converged": p.converged, "energy_eV": p.energy,
                       "iterations": p.iterations, "seconds": p.seconds, "angles_deg": p.angles_deg,
                       "tilt_deg": p.tilt_deg, "site_moments": [p.moments[i] for i in p.site_indices]
                       if p.moments else [], "gap_eV": p.gap, "error": p.error} for p in points],
           **res, "reference": reference or {}}
    doc["relative_energies"] = _relative_energies(model, points, main_pattern, reference or {})
    if fit is None:
        doc["status"] = "not computed"
        doc["reason"] = f"{len(points)} spiral points, {res['n_converged']} converged: {res.get('fit_error')}"
    else:
        st = res.get("stiffness")
        doc["settings"] = {**settings, "rms_residual_meV_per_cell": fit["rms_residual"],
                           "condition_number": fit["condition_number"], "n_points": len(fit["q"]),
                           "stiffness_meV_A2_per_cell": None if not st else st["D"]}
    doc["select"] = select
    if select == "high_symmetry" and fit is not None:
        doc["method"] += ("; J1–J3 from the points at Γ, M and K only (commensurate states, exactly determined; "
                          "the every-point row gives the shells E(q) itself needs)")
    extra = ""
    if all_points_dirs:
        dirs = [Path(workdir), *[Path(d) for d in all_points_dirs]]
        scan = shell_scan(structure, dirs, main_pattern, shells=shells)
        tol = scf_tolerance_meV_per_cell(dirs)
        sel = select_shells(scan, tol)
        all_pts = [p for d in dirs for p in load_points(d)]
        row0 = {k: doc[k] for k in ("name", "method", "J1", "J2", "J3", "seconds", "settings")
                if k in doc}
        if doc.get("status"):
            row0.update(status=doc["status"], reason=doc.get("reason"))
        doc["routes"] = [row0, _every_point_row(sel, scan, tol, all_pts, dirs)]
        doc["shell_selection"] = {"tolerance_meV_per_cell": tol, "n_shells": sel.get("n_shells"),
                                  "reason": sel["reason"],
                                  "fits": [{k: r.get(k) for k in ("n_shells", "status", "rms_residual", "J",
                                                                    "condition_number", "D_from_J", "reason")}
                                           for r in scan["fits"]]}
        extra = f"; every point: {sel['reason']}"
    if out is not None:
        write_json_atomic(out, doc)
    if res["fit"] is None:
        return f"{len(points)} points ({res['n_converged']} converged): no fit ({res.get('fit_error')})" + extra
    f = res["fit"]
    J = ", ".join(f"J{n} = {x:+.3f}" for n, x in enumerate(f["J"], start=1))
    st = res["stiffness"]
    return (f"{len(f['q'])} points fitted: {J} meV, rms residual {f['rms_residual']:.3f} meV/cell"
            + (f"; stiffness D = {st['D']:.1f} meV Å²/cell (from J: {st.get('D_from_fitted_J', float('nan')):.1f})"
               if st else "") + extra)


def scf_tolerance_meV_per_cell(workdirs) -> float | None:
    """The energy resolution of spiral points, meV per cell: GPAW's energy criterion (eV per valence electron over
    the last three SCF cycles, the points' stored ``parameters["convergence"]["energy"]``) × the cell's valence
    electrons ("Valence electrons: N" of the GPAW log stored beside each point, ``.txt`` or ``.txt.gz``); the
    loosest over the folders (a combined fit cannot resolve better than its loosest set).  None when no point
    has both (then no shell count is selected)."""
    out = None
    for d in workdirs:
        for js in sorted(Path(d).glob("*_q*.json")):
            pt = SpiralPoint.from_dict(read_json(js, error=DFTError))
            crit = (pt.parameters.get("convergence") or {}).get("energy")
            n = None
            for log in (js.with_suffix(".txt"), js.with_suffix(".txt.gz")):
                if log.exists():
                    opener = gzip.open if log.suffix == ".gz" else open
                    with opener(log, "rt", errors="replace") as fh:
                        m = re.search(r"Valence electrons:\s*([0-9.]+)", fh.read(200_000))
                    n = float(m.group(1)) if m else None
                    break
            if crit is not None and n:
                tol = float(crit) * n * 1000.0
                out = tol if out is None else max(out, tol)
                break   # one point per folder: the criterion and the cell are the same for all its points
    return out


def _every_point_row(sel, scan, tol, points, dirs) -> dict:
    """The route row of the every-point fit (:func:`fit_material_points`)."""
    name = "spin spiral (self-consistent), every point"
    seconds = {"dft_all_points": round(sum(p.seconds or 0.0 for p in points), 1)}
    if sel["n_shells"] is None:
        return {"name": name, "status": "not computed", "reason": sel["reason"], "seconds": seconds}
    f = sel["fit"]
    n = sel["n_shells"]
    further = "; ".join(f"J{k} = {x:+.3f} meV ({d:.1f} Å)" for k, (x, d) in
                        enumerate(zip(f["J"], f.get("distances") or [float("nan")] * n), start=1) if k > 3)
    return {"name": f"{name}, J1–J{n}", "J1": f["J"][0], "J2": f["J"][1], "J3": f["J"][2],
            "method": f"least squares of E0, J1..J{n} to all {scan['n_points']} converged spiral points "
                      f"({', '.join(str(d.name) for d in dirs)}): {sel['reason']}"
                      + (f"; further shells {further}" if further else ""),
            "settings": {"J_meV": f["J"], "n_shells": n, "distances": f.get("distances"),
                         "rms_residual_meV_per_cell": f["rms_residual"], "tolerance_meV_per_cell": tol,
                         "condition_number": f["condition_number"], "n_points": scan["n_points"],
                         "stderr": f.get("stderr"), "D_from_J_meV_A2_per_cell": f.get("D_from_J")},
            "seconds": seconds}


def shell_scan(structure, workdirs, main_pattern: str, shells=(3, 4, 5, 6), stiffness: dict | None = None,
               predict=()) -> dict:
    """How many exchange shells the spiral energies need: least-squares fits of E0, J1..Jn for each n in ``shells``
    to the converged points of every folder in ``workdirs`` together (e.g. the full-zone set and the small-q
    stiffness set: their Γ points agree to µeV, so both sets are one E(q) curve), with each fit's residuals per
    point, rms, condition number, standard errors and the small-q stiffness D its J imply (along b1, the main
    pattern's frame) beside the stiffness set's ``stiffness["D"]``.  A fit with fewer points than unknowns + 1 is
    listed as not determined.  ``predict``: reduced q not computed yet; each fit predicts E(q) − E(Γ, main pattern)
    at them, minimised over the relative sublattice angle (what a self-consistent spiral relaxes to; two-site cells),
    so the next DFT points test the fits out of sample.  meV, meV per cell, meV Å² per cell; internal J convention
    (J > 0 AF, each bond once)."""
    points = [pt for w in workdirs for pt in load_points(w)]
    good = converged_points(points)
    rows = []
    for n in shells:
        model = spiral_model(structure, n)
        row = {"n_shells": int(n), "n_points": len(good), "n_unknowns": int(n) + 1}
        if len(good) < n + 2:
            row.update(status="not determined",
                       reason=f"{len(good)} points for {n + 1} unknowns: no residual degree of freedom")
            rows.append(row)
            continue
        res = fit_points(model, good, main_pattern, n)   # a fit that cannot be made comes back as fit_error
        f = res.get("fit")
        if f is None:
            row.update(status="not determined", reason=res.get("fit_error"))
            rows.append(row)
            continue
        fitted = _model_with_J(model, f["J"])
        sigma = next(p.sigma for p in good if p.pattern == main_pattern)
        u = np.linalg.inv(model.cell).T[0]
        u = u / np.linalg.norm(u)
        D = float(u @ stiffness_tensor(fitted, sigma, frame="bond") @ u)
        row.update(status="fitted", J=f["J"], stderr=f.get("stderr"), distances=f.get("distances"),
                   rms_residual=f["rms_residual"], condition_number=f["condition_number"],
                   residuals=[{"q": pt.q, "pattern": pt.pattern, "residual_meV_per_cell": r}
                              for pt, r in zip(good, f["residuals"])],
                   D_from_J=D)
        if stiffness and stiffness.get("D") is not None:
            row["D_ratio_to_stiffness_set"] = D / float(stiffness["D"])
        if len(predict) and len(model.sites) == 2:
            e_gamma = float(spiral_energy(fitted, [np.zeros(3)], pattern_phases(sigma)[None, :])[0])
            row["predictions"] = []
            for qp in predict:
                e, angle = relaxed_spiral_energy(fitted, qp)
                row["predictions"].append({"q": [float(x) for x in qp], "dE_meV_per_cell": e - e_gamma,
                                           "relative_angle_deg": angle})
        rows.append(row)
    return {"what": "least-squares E(q) fits with n exchange shells to all converged spiral points together",
            "convention": "H = sum_{i<j} J_ij S_i.S_j, each bond once, J > 0 AF; meV; residuals model - data, "
                          "meV per cell; D meV A^2 per cell along b1",
            "folders": [str(w) for w in workdirs], "n_points": len(good),
            "excluded": [{"q": p.q, "pattern": p.pattern} for p in points if p not in good],
            "stiffness_set_D": None if not stiffness else stiffness.get("D"), "fits": rows}


def _relative_energies(model, points, main_pattern, reference):
    """E(q) − E(Γ, main pattern) per converged point (meV per cell), beside the same difference predicted by eq. (1)
    with each reference's J1–J3 at the realised phases (a check usable before there are enough points to fit)."""
    good = [p for p in points if p.converged and p.energy is not None]
    g = [p for p in good if p.pattern == main_pattern and np.allclose(p.q, 0.0)]
    if not g:
        return []
    rows = []
    ref_models = {}
    for name, J in reference.items():
        if all(J.get(k) is not None for k in ("J1", "J2", "J3")):
            m = model.__class__(cell=model.cell, sites=model.sites, pbc=model.pbc)
            for b in model.bonds:
                m.add_bond(b.i, b.j, b.R, [J["J1"], J["J2"], J["J3"]][b.shell - 1] if b.shell <= 3 else 0.0,
                           shell=b.shell)
            ref_models[name] = m
    ph0 = realised_phases(model, g[0])
    for p in good:
        ph = realised_phases(model, p)
        row = {"q": p.q, "pattern": p.pattern, "dE_meV_per_cell": (p.energy - g[0].energy) * 1000.0,
               "phases_deg": np.degrees(ph - ph[0]).round(2).tolist(), "predicted": {}}
        for name, m in ref_models.items():
            row["predicted"][name] = float(spiral_energy(m, [p.q], ph)[0] - spiral_energy(m, [g[0].q], ph0)[0])
        rows.append(row)
    return rows


def _model_with_J(model, J):
    """``model``'s bonds with J1..J3 (meV) by shell (further shells 0)."""
    m = model.__class__(cell=model.cell, sites=model.sites, pbc=model.pbc)
    for b in model.bonds:
        m.add_bond(b.i, b.j, b.R, J[b.shell - 1] if b.shell <= len(J) else 0.0, shell=b.shell)
    return m


def stiffness_from_points(structure, workdir, main_pattern: str, out=None, material: str | None = None,
                          reference: dict | None = None, q_max_reduced: float = 0.16, n_shells: int = 3) -> dict:
    """The small-q spin stiffness on its own (issue 17 item 1), from a set of spiral points computed for it (Γ and
    small q on one line through Γ, one SCF criterion; :func:`spiral_energies` into its own ``workdir``).

    D and B of E(q) − E(Γ) = D|q|² + B|q|⁴ (meV Å² per cell, |q| in Å⁻¹ incl. 2π, GPAW's co-rotating frame) by
    :func:`wannmag.magnetism.spiral.fit_stiffness`: exactly determined by Γ and two small-q points, with a residual
    from the third.  Beside it, for each route in ``reference`` ({name: {"J1", "J2", "J3"}}, meV, internal
    convention H = Σ_{i<j} J_ij S_i·S_j, J > 0 AF), the D its J imply (:func:`stiffness_tensor`, co-rotating frame,
    the pattern's σ) — the stiffness is one combination of J (honeycomb: Σ_n J_n z_n d_n² weighted by the pattern's
    signs), so it checks the routes without fitting three J.  The realised sublattice angle of every point is stored:
    the formula assumes the co-rotating pattern (relaxation of the angle lowers E by O(q⁴) on the honeycomb, checked
    against the per-point angles).  Unconverged points are excluded with their reason; too few points → ``"D": None``
    with the reason, never a number."""
    model = spiral_model(structure, n_shells)
    points = [p for p in load_points(workdir) if p.pattern == main_pattern]
    good = converged_points(points, warn=False)
    excluded = [{"q": p.q, "reason": p.error or "SCF not converged"} for p in points if p not in good]
    doc = {"material": material, "what": "small-q spin stiffness from self-consistent spirals (GPAW qspiral, "
                                         "LDA+U), fitted on its own",
           "convention": "E(q) - E(Gamma) = D|q|^2 + B|q|^4 per cell, meV, |q| in 1/Angstrom incl. 2 pi, "
                         "co-rotating frame; J: H = sum_{i<j} J_ij S_i.S_j, each bond once, J > 0 AF, meV",
           "main_pattern": main_pattern, "excluded": excluded, "D": None, "B": None,
           "points": [{"q": p.q, "energy_eV": p.energy, "converged": p.converged, "iterations": p.iterations,
                       "seconds": p.seconds, "angles_deg": p.angles_deg} for p in points]}
    if points:
        p0 = points[0].parameters
        doc["settings"] = {k: p0.get(k) for k in ("ecut", "kpts", "xc", "U", "nbands", "smearing", "convergence",
                                                  "maxiter")}
    b1 = np.linalg.norm(2 * np.pi * np.linalg.inv(model.cell).T[0])
    try:
        if len(good) < 3:
            raise SpiralFitError(f"{len(good)} converged points; D and B need Γ and two small-q points")
        q = np.array([p.q for p in good], float)
        E = np.array([p.energy for p in good]) * 1000.0
        st = fit_stiffness(model, q, E, q_max=q_max_reduced * b1 + 1e-9)
        if st["n_points"] < 2:
            raise SpiralFitError("fewer than two small-q points inside q_max")
        doc.update({k: st[k] for k in ("D", "B", "direction", "q_max", "n_points", "quartic_fraction",
                                       "residuals", "validity")})
        g = next(p for p in good if np.allclose(p.q, 0.0))
        dev = []
        for p in good:   # realised − co-rotating phases, common rotation removed, wrapped to (−180, 180]
            d = realised_phases(model, p) - corotating_phases(model, [p.q], p.sigma)[0]
            d = np.degrees(d - d[0])
            dev.append({"q": p.q, "deviation_from_corotating_deg": (-((-d + 180.0) % 360.0) + 180.0).round(2).tolist()})
        doc["phase_deviation"] = dev
        if len(good) > 3:   # exactly determined by Γ and the two largest q; the others check it
            big = sorted(range(len(good)), key=lambda k: -np.linalg.norm(good[k].q))[:2]
            sub = [k for k in range(len(good)) if np.allclose(good[k].q, 0.0)][:1] + big
            st3 = fit_stiffness(model, q[sub], E[sub], q_max=q_max_reduced * b1 + 1e-9)
            doc["exact_from_two_points"] = {"D": st3["D"], "B": st3["B"],
                                           "q_used": [good[k].q for k in sub]}
        u = np.asarray(st["direction"], float)
        sigma = np.asarray(g.sigma, float)
        doc["D_from_routes"] = {}
        for name, J in (reference or {}).items():
            if all(J.get(k) is not None for k in ("J1", "J2", "J3")):
                m = _model_with_J(model, [J["J1"], J["J2"], J["J3"]])
                D13 = float(u @ stiffness_tensor(m, sigma, frame="bond") @ u)
                if J.get("D") is not None:   # a route that summed all its J(R) (given D, J1–J3 for display)
                    doc["D_from_routes"][name] = {"J": [J["J1"], J["J2"], J["J3"]], "D": float(J["D"]),
                                                  "D_J1_J3": D13, "source": J.get("source")}
                else:
                    doc["D_from_routes"][name] = {"J": [J["J1"], J["J2"], J["J3"]], "D": D13}
        doc["status"] = "fitted"
    except SpiralFitError as exc:
        doc["status"] = "not computed"
        doc["reason"] = str(exc)
    doc["seconds"] = round(sum(p.seconds or 0.0 for p in points), 1)
    if out is not None:
        write_json_atomic(out, jsonable(doc))
    return doc
