"""The vacancy study of ``wannmag run --vacancies X ...``: exchange next to a magnetic vacancy from DFT, and the
ordering temperature T(x) of the diluted lattice next to the perfect one.

Conventions (as everywhere in wannmag): H = Σ_{i<j} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i, every bond once, classical
spins of length S (S = 3/2 for Cr3+ and V2+), J > 0 antiferromagnetic; exchange in meV, DFT energies in eV,
temperatures in K, lengths in Å.

The physics of the vacancy cell (its bond classes, configurations, the equal-spin fit, the exchange next to a vacancy
in the Monte Carlo lattice, the T(x) figure) is :mod:`wannmag.magnetism.vacancy`, that of its holes
:mod:`wannmag.magnetism.vacancy_holes`; this module orchestrates them (its former names are imported here).

Steps (added to the workflow of :mod:`wannmag.workflows.run` when vacancy fractions are given; each cached and
resumable like the others, results in ``OUT/steps/<step>.json``):

``vacancy_dft``  one magnetic ion removed from an ``supercell`` (default 2×2 of the primitive cell: 8 → 7 sites for
                 the honeycomb lattice, V_{7/8}PS3 for VPS3).  The nearest-neighbour bonds of the remaining sites fall
                 into two classes by their distance to the vacancy: **J1_vac** — bonds with an end site that is a
                 nearest neighbour of the vacancy (the definition used by the Monte Carlo lattice,
                 :func:`wannmag.magnetism.montecarlo.build_lattice` ``near_vacancy``), and **J1_bulk** — all other
                 nearest-neighbour bonds.  Collinear up/down patterns of the remaining spins are chosen greedily
                 (D-optimal: each new pattern maximises det AᵀA of the fit's design matrix, starting from the
                 perfect lattice's ground-state order), and their total energies are computed with embedded GPAW
                 (:func:`wannmag.workflows.dft.run_dft`, same preset and U as the main workflow), read from
                 ``--from DIR/vacancy/<configuration>/`` (VASP/QE outputs), or given by any callable engine (tests).
                 Every finished configuration is stored in ``OUT/vacancy_dft/<configuration>/record.json`` and never
                 recomputed.  This equal-spin procedure is the one of the **ionic** charge mode (``charge`` "ionic" or
                 a number: the removed ion's electrons given back, every remaining ion keeps its nominal charge).

                 **Neutral** charge mode (the default): removing a neutral V atom from VPS3 leaves two holes per
                 vacancy (V_{1−x}PS3), two V3+ (d², S = 1) if they localise on V
                 (:mod:`wannmag.magnetism.vacancy_holes`; q holes of spin S − 1/2 for an ion of oxidation state +q,
                 :func:`~wannmag.magnetism.vacancy_holes.vacancy_holes_of`).  (1) One SCF per hole **placement**
                 (``placements``, default ``near`` and ``far``; ``near_far``; ``none``: every ion started full, a
                 reference energy) in the perfect crystal's order, the holes started as 2S_hole μB moments; per
                 placement the energy, V moments, where the holes are (:func:`~wannmag.magnetism.vacancy_holes.
                 locate_holes`), gap and common gap (:class:`~wannmag.magnetism.vacancy_holes.PlacementRun`).  (2) The
                 lowest converged placement whose holes stayed on the placed sites
                 (:func:`~wannmag.magnetism.vacancy_holes.choose_placement`) gets its D-optimal configurations
                 (:func:`~wannmag.magnetism.vacancy_holes.choose_hole_patterns`, its own order first: that is the
                 placement SCF, read back).  Every SCF uses :data:`NEUTRAL_DFT` (Fermi–Dirac 0.1 eV, damped mixer,
                 fixed total moment, density criterion 1e-4, ≤ 200 iterations; overridable) and is one task of the
                 parallel map (--workers / --dask); each is cached in ``OUT/vacancy_dft/neutral/<settings>/
                 <configuration>/`` (run_dft's summary.json and a record.json holding the outcome, an unconverged SCF
                 included: it is not retried on a re-run).
``vacancy_fit``  E_cell = E_0 + S² Σ_classes J_class c_class, c_class = Σ_{bonds of the class in the cell} σ_i σ_j.
                 ``fit="J1"`` (default) fits E_0, J1_bulk and J1_vac with J2 and J3 held at the perfect lattice's
                 energy-mapping values; ``fit="J123"`` fits uniform J2 and J3 as well.  The rank of the design matrix
                 is checked: too few independent configurations raise :class:`VacancyFitError` naming the unknowns.
                 Neutral mode: :func:`~wannmag.magnetism.vacancy_holes.fit_hole_records` — E = E_0 + Σ_class J_class
                 Σ_bonds S_i S_j σ_i σ_j with S = S_hole on the hole sites, classes V2-V2_bulk, next_to_vacancy,
                 V2-V3, V3-V3 present in the cell (J2, J3 held at the energy mapping's unless "J123"); a configuration
                 whose SCF did not converge, whose spins flipped or whose holes moved is excluded with its reason;
                 classes the diluted lattice needs but the cell lacks are taken equal to the crystal's J1, said in
                 the notes (:func:`~wannmag.magnetism.vacancy_holes.lattice_classes`); the report warns about
                 fixed-moment SCFs whose spin channels overlap (:func:`~wannmag.magnetism.vacancy_holes.
                 constraint_warnings`).  The fit's options (:data:`NEUTRAL_FIT`, ``--vacancy-keep-moved``,
                 ``--vacancy-absorb-constant``, ``--vacancy-min-dof``; :func:`~wannmag.magnetism.vacancy_holes.
                 fit_cell`, shared with data/mc/vacancy_holes_dft.py) are part of this step's fingerprint only, so
                 changing one re-runs the fit and the Monte Carlo after it, never an SCF: ``keep_moved`` uses the
                 converged configurations whose holes left the placed sites too — *effective* couplings, status
                 "fitted (effective: holes moved in ...)" and said in the report; ``absorb_constant`` puts a class
                 with the same Σ S_i S_j σ_i σ_j in every configuration used into E_0 (its J None, named); a class
                 the diluted lattice needs that was absorbed leaves the Monte Carlo without its with-holes series
                 (said).  A refused fit names every excluded configuration and which option would fit.
``vacancy_mc``   diluted-lattice parallel-tempering Monte Carlo (:func:`~wannmag.magnetism.montecarlo.dilution_scan`):
                 the perfect lattice's SpinModel (J1–J3 + anisotropy of the ``model`` step) with a random fraction x
                 of sites removed and every nearest-neighbour bond next to a vacancy carrying J1_vac (as its
                 isotropic part; anisotropic exchange kept); T(x) for x = 0 and the requested fractions, disorder-averaged over
                 ``realisations`` vacancy sets per size.  T(x) is a Binder crossing bracketed inside its window or
                 None ("not bracketed", :func:`diluted_study`); the χ maxima are reported beside it, labelled.
                 The Binder cumulant is the perfect lattice's choice (easy-axis for a collinear uniaxial model).
                 Neutral charge mode with a fit by hole class (``J_meV`` holding V2-V2_bulk, next_to_vacancy, V2-V3
                 [, V3-V3], as :func:`wannmag.magnetism.vacancy_holes.fit_hole_records` gives): the dilution-only
                 series (every J of the crystal) and, beside it, the series with the holes of the vacancies
                 (:func:`~wannmag.magnetism.montecarlo.holes.hole_spec_from_fit`; two V3+ with S = 1 per vacancy,
                 every nearest-neighbour bond with the J of its class), both in the result (``with_holes``), the
                 figure and the report; the algorithm is checked on a lattice with holes too
                 (:func:`~wannmag.magnetism.montecarlo.holes.choose_hole_algorithm`); the holes go next to their
                 vacancy when the fitted placement is ``near``, else at random
                 (:func:`~wannmag.magnetism.vacancy_holes.lattice_placement`).
                 Results: ``OUT/vacancy/vacancy_study.json`` and the plot ``OUT/vacancy/tn_vs_x.png``.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
from ase.io import write

from .._atomic import atomic_write_json, atomic_write_text, jsonable
from ..errors import WannmagError
from ..magnetism.montecarlo import MCSettings
from ..magnetism.montecarlo.dilution import dilution_scan
from ..magnetism.montecarlo.holes import HoleSpec, choose_hole_algorithm, hole_spec_from_fit
from ..magnetism.montecarlo.tc import checkpoint_key, mean_field_window, peak_text, second_pass
# the vacancy cell's physics lives in the magnetism layer; imported here so that every former name keeps working
from ..magnetism.vacancy import (CLASSES, NearVacancyJ, VacancyCell, VacancyError, VacancyFit,  # noqa: F401
                                 VacancyFitError, choose_patterns, fit_vacancy_exchange, hole_placements_of,
                                 make_vacancy_cell, plot_tn_vs_x, start_pattern, vacancy_configuration,
                                 vacancy_site_distances)
from ..magnetism.vacancy import _sublattice
from ..magnetism.vacancy import pattern_name as _pattern_name
from ..magnetism.vacancy_holes import (HoleError, HolePlacement, choose_placement, classify_bonds, constraint_warnings,
                                       fit_cell, fit_design, lattice_classes, lattice_placement, placement_run,
                                       start_moments, vacancy_holes_of)
from .engine import Step
from .parallel import _client, _map
from .readers import read_output
from .results import (MappingStep, MCStep, ModelStep, StructureStep, VacancyDFTStep, VacancyFitStep,
                      VacancyMCStep)

__all__ = ["VacancyError", "VacancyFitError", "VacancyCell", "VacancyFit", "make_vacancy_cell", "choose_patterns",
           "vacancy_configuration", "fit_vacancy_exchange", "gpaw_engine", "run_vacancy_configurations",
           "vacancy_steps", "report_lines", "VACANCY_SETTINGS", "plot_tn_vs_x", "diluted_study", "NEUTRAL_DFT",
           "DEFAULT_PLACEMENTS", "PLACEMENT_NAMES", "check_placements", "neutral_settings", "neutral_gpaw_engine",
           "NEUTRAL_MIXERS", "NEUTRAL_FIT", "neutral_fit_options", "neutral_record", "neutral_scf_record",
           "start_pattern"]


#: Monte Carlo disorder realisations per preset (sizes, sweeps and replicas are those of the main workflow)
VACANCY_SETTINGS = {"fast": {"vac_realisations": 6}, "accurate": {"vac_realisations": 16}}

#: SCF settings of the neutral cell (the metallic-looking cell with its holes; measured on VPS3 with
#: data/mc/vacancy_holes_dft.py): Fermi–Dirac width (eV), damped full-spin mixer, total moment fixed at the start
#: moments' sum, GPAW's density criterion (the package's 1e-5 is below the cell's floor near 4e-5), iteration limit
NEUTRAL_DFT = {"smearing": 0.1, "mixer": {"beta": 0.02, "nmaxold": 8, "weight": 100.0}, "fixmagmom": True,
               "density_tol": 1e-4, "maxiter": 200}
#: named GPAW mixers for the neutral cell (``--vacancy-mixer``; data/mc/vacancy_holes_dft.py ``--mixer``)
NEUTRAL_MIXERS = {
    # damped full-spin mixer (the default of NEUTRAL_DFT; with FD 0.05 eV the density stalled at 10^-4.4)
    "damped": {"beta": 0.02, "nmaxold": 8, "weight": 100.0},
    # GPAW's own defaults for a periodic spin-polarised cell (MSR1, full spin), written out
    "default": {"beta": 0.05, "nmaxold": 5, "weight": 50.0},
    # density and magnetisation mixed separately (GPAW MixerDif), Pulay
    "dif": {"beta": 0.05, "nmaxold": 5, "weight": 50.0, "method": "difference", "backend": "pulay"},
}
#: options of the neutral cell's fit (vacancy_fit; part of its fingerprint only when not these defaults):
#: keep_moved — use configurations whose holes left the placed sites (effective couplings); absorb_constant — a
#: class with the same sum in every configuration used goes into E0 instead of refusing; min_dof — residual
#: degrees of freedom the fit needs after exclusions
NEUTRAL_FIT = {"keep_moved": False, "absorb_constant": False, "min_dof": 1}
#: hole placements of the neutral cell run by default, and every name accepted ("none": no hole placed, a reference)
DEFAULT_PLACEMENTS = ("near", "far")
PLACEMENT_NAMES = ("near", "far", "near_far", "none")


# ------------------------------------------------------------------------------------------------------ energies
def gpaw_engine(structure, conf, preset: str, U, workdir: str, charge: float = 0.0) -> dict:
    """Embedded GPAW through :func:`wannmag.workflows.dft.run_dft` (cell charge ``charge`` in e, 0 = neutral);
    returns its DFTRecord as a dict (energy eV per cell, moments μ_B, gaps eV)."""
    from .dft import run_dft  # local: looked up per call, the GPAW engine (tests put a fake in dft.run_dft)

    return run_dft(structure, conf, preset=preset, U=U, workdir=workdir, name=conf.name, log=True,
                   charge=charge).as_dict()


def vacancy_charge(structure, mode) -> float:
    """Net cell charge (e) of a one-vacancy supercell: "neutral" → 0; "ionic" → −(oxidation state of the removed
    ion), i.e. its electrons are given back to the lattice so that every remaining ion keeps its nominal charge
    (VPS3: −2, all V2+); a number is taken as given."""
    if mode in (None, "neutral"):
        return 0.0
    if mode == "ionic":
        sub = _sublattice(structure)
        el = sub.atoms.get_chemical_symbols()[sub.indices[0]]
        ox = sub.oxidation_states.get(el)
        if ox is None:
            raise VacancyError(f"no nominal oxidation state for {el}; give the vacancy charge as a number")
        return -float(ox)
    try:
        return float(mode)
    except (TypeError, ValueError):
        raise VacancyError(f"vacancy charge must be 'neutral', 'ionic' or a number, got {mode!r}") from None


gpaw_engine.engine_name = "gpaw"


def _engine_name(engine) -> str:
    return getattr(engine, "engine_name", getattr(engine, "__name__", type(engine).__name__))


def run_vacancy_configurations(structure, cell: VacancyCell, patterns, engine, workdir, preset: str = "fast", U=3.0,
                               log=print, charge: float = 0.0, sublattice=None) -> list[dict]:
    """Energies of the vacancy configurations, one after the other; every finished configuration is stored in
    ``workdir/<name>/record.json`` (with the identity of the calculation) and read back instead of recomputed.
    ``sublattice``: the MagneticSublattice of the ``structure`` file when the caller has it (else read here)."""
    workdir = Path(workdir)
    out = []
    for k, p in enumerate(patterns):
        conf = vacancy_configuration(structure if sublattice is None else sublattice, cell, p)
        ident = {"structure": str(structure), "supercell": cell.supercell, "site": cell.site, "pattern": list(p),
                 "preset": preset, "U": U, "engine": _engine_name(engine), "charge": charge}
        path = workdir / conf.name / "record.json"
        if path.exists():
            try:
                old = json.loads(path.read_text())
            except json.JSONDecodeError:
                old = None
            if old and old.get("identity") == jsonable(ident):
                log(f"[wannmag vacancy] {conf.name} ({k + 1}/{len(patterns)}): done earlier, read {path}")
                out.append(old)
                continue
        log(f"[wannmag vacancy] {conf.name} ({k + 1}/{len(patterns)}): {conf.atoms.get_chemical_formula()}, "
            f"pattern {''.join('+' if s > 0 else '-' for s in p)}")
        t0 = time.time()
        rec = engine(structure, conf, preset, U, str(workdir))
        rec = dict(jsonable(rec))
        if rec.get("energy") is None:
            raise VacancyError(f"{conf.name}: the energy engine returned no energy")
        rec.update({"name": conf.name, "pattern": list(p), "identity": jsonable(ident),
                    "wall_s": round(time.time() - t0, 1)})
        atomic_write_json(path, rec)
        out.append(rec)
    return out


def _read_vacancy_dir(d: Path, structure, cell: VacancyCell, patterns) -> list[dict]:
    """The records of the vacancy configurations from ``d/<name>/``; ``structure``: a file or its
    MagneticSublattice."""
    out, missing = [], []
    for p in patterns:
        name = _pattern_name(p)
        sub = d / name
        if not sub.exists():
            missing.append(name)
            continue
        files = [f for f in sorted(sub.iterdir()) if f.is_file()]
        vasp = any(f.name in ("vasprun.xml", "OUTCAR") for f in files)
        if not files:
            missing.append(name)
            continue
        rec = read_output(sub if vasp else files[0], config=name).as_dict()
        conf = vacancy_configuration(structure, cell, p)
        if rec.get("moments") and len(rec["moments"]) != len(conf.atoms):
            raise VacancyError(f"{sub}: {len(rec['moments'])} atoms, the vacancy cell has {len(conf.atoms)}")
        rec.update({"name": name, "pattern": list(p)})
        out.append(rec)
    if missing:
        raise VacancyError(f"{d}: no outputs for vacancy configuration(s) {', '.join(missing)} (the structures with "
                           f"their initial moments are written to the run's vacancy_dft/structures/)")
    return out


def _write_structures(structure, cell: VacancyCell, patterns, d: Path) -> None:
    """POSCAR files of the vacancy configurations and their initial moments (``magmoms.json``: name → MAGMOM per
    atom in POSCAR order, μ_B), for runs elsewhere; ``structure``: a file or its MagneticSublattice."""
    d.mkdir(parents=True, exist_ok=True)
    mags = {}
    for p in patterns:
        conf = vacancy_configuration(structure, cell, p)
        buf = io.StringIO()
        write(buf, conf.atoms, format="vasp", direct=True, sort=False)
        atomic_write_text(d / f"{conf.name}.vasp", buf.getvalue())
        mags[conf.name] = [float(m) for m in conf.atoms.get_initial_magnetic_moments()]
    atomic_write_json(d / "magmoms.json", mags)


# ------------------------------------------------------------------------------------------------------ neutral cell
def is_neutral(charge) -> bool:
    """True for the neutral charge mode (the default): the vacancy's holes stay in the cell."""
    return charge in (None, "neutral")


def check_placements(names=None) -> list[str]:
    """The hole placements to run (default :data:`DEFAULT_PLACEMENTS`): names of :data:`PLACEMENT_NAMES`, none
    repeated, at least one with holes ("none" alone is only a reference energy).  One :class:`VacancyError` line."""
    names = list(DEFAULT_PLACEMENTS if names is None else names)
    for n in names:
        if n not in PLACEMENT_NAMES:
            raise VacancyError(f"vacancy placement {n!r} is not one of {', '.join(PLACEMENT_NAMES)}")
    if len(set(names)) != len(names):
        raise VacancyError(f"vacancy placements repeat a name: {' '.join(names)}")
    if not [n for n in names if n != "none"]:
        raise VacancyError("vacancy placements need one with holes (near, far, near_far); 'none' alone is only a "
                           "reference energy")
    return names


def neutral_settings(overrides: dict | None = None) -> dict:
    """The neutral cell's SCF settings: :data:`NEUTRAL_DFT` with ``overrides`` (keys smearing eV, mixer dict,
    fixmagmom, density_tol, maxiter; an unknown key is one :class:`VacancyError` line; values are checked by
    :func:`wannmag.workflows.dft.dft_parameters` when the first SCF is set up)."""
    over = dict(overrides or {})
    bad = sorted(set(over) - set(NEUTRAL_DFT))
    if bad:
        raise VacancyError(f"unknown neutral-cell DFT setting(s) {', '.join(bad)} (known: {', '.join(NEUTRAL_DFT)})")
    out = {**NEUTRAL_DFT, **over}
    out["mixer"] = None if out["mixer"] is None else dict(out["mixer"])
    return out


def neutral_fit_options(overrides: dict | None = None) -> dict:
    """The neutral cell's fit options: :data:`NEUTRAL_FIT` with ``overrides`` (keep_moved, absorb_constant booleans;
    min_dof an integer ≥ 0); an unknown key or a bad value is one :class:`VacancyError` line."""
    over = dict(overrides or {})
    bad = sorted(set(over) - set(NEUTRAL_FIT))
    if bad:
        raise VacancyError(f"unknown neutral-cell fit option(s) {', '.join(bad)} (known: {', '.join(NEUTRAL_FIT)})")
    out = {**NEUTRAL_FIT, **over}
    for k in ("keep_moved", "absorb_constant"):
        if not isinstance(out[k], (bool, np.bool_)):
            raise VacancyError(f"neutral-cell fit option {k} must be true or false, got {out[k]!r}")
        out[k] = bool(out[k])
    m = out["min_dof"]
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 0:
        raise VacancyError(f"neutral-cell fit option min_dof must be an integer >= 0, got {m!r}")
    out["min_dof"] = int(m)
    return out


def neutral_gpaw_engine(structure, conf, preset: str, U, workdir: str, smearing=None, mixer=None, maxiter=None,
                        density_tol=None, fixmagmom=False) -> dict:
    """One SCF of the neutral vacancy cell with embedded GPAW (:func:`wannmag.workflows.dft.run_dft` in
    ``workdir/<configuration name>``, cached there by its summary.json) and the neutral cell's settings; returns the
    DFTRecord as a dict; an SCF that does not converge raises DFTError (a WannmagError)."""
    from .dft import run_dft  # local: looked up per call, the GPAW engine (tests put a fake in dft.run_dft)

    return run_dft(structure, conf, preset=preset, U=U, workdir=workdir, name=conf.name, log=True,
                   smearing=smearing, mixer=mixer, maxiter=maxiter, density_tol=density_tol,
                   fixmagmom=fixmagmom).as_dict()


neutral_gpaw_engine.engine_name = "gpaw"


class _OutputsReader:
    """The neutral cell's SCFs read from ``DIR/vacancy/<configuration>/`` (VASP or pw.x outputs, ``--from DIR``)
    instead of computed: energy and the moments of the magnetic sites (taken as converged); never cached."""

    engine_name = "from-dir"
    cache = False

    def __init__(self, d):
        self.d = Path(d)

    def __call__(self, structure, conf, preset, U, workdir, **settings) -> dict:
        sub = self.d / conf.name
        files = [f for f in sorted(sub.iterdir()) if f.is_file()]
        vasp = any(f.name in ("vasprun.xml", "OUTCAR") for f in files)
        rec = read_output(sub if vasp else files[0], config=conf.name).as_dict()
        mom = rec.get("moments") or []
        if len(mom) != len(conf.atoms):
            raise VacancyError(f"{sub}: {len(mom)} atomic moments, the vacancy cell has {len(conf.atoms)} atoms")
        rec["site_moments"] = [float(mom[k]) for k in conf.sublattice.indices]
        return rec

    def missing(self, names) -> list[str]:
        return [n for n in names if not (self.d / n).is_dir() or not any(f.is_file() for f in (self.d / n).iterdir())]


def neutral_record(rec: dict) -> dict:
    """The fields of a DFTRecord dict that the fit with holes and the report use (energy eV per cell, signed moments
    of the magnetic sites μ_B, gaps eV)."""
    if rec.get("energy") is None:
        raise VacancyError("the energy engine returned no energy")
    ex = rec.get("extra") or {}
    return {"converged": True, "energy_eV": float(rec["energy"]), "V_moments": [float(m) for m in rec["site_moments"]],
            "total_moment": rec.get("total_moment"), "gap_eV": rec.get("gap"), "gaps_eV": rec.get("gaps"),
            "fermi_level_eV": rec.get("fermi_level"), "fermi_levels_eV": ex.get("fermi_levels_eV"),
            "common_gap_eV": ex.get("common_gap_eV"), "scf_iterations": ex.get("scf_iterations"),
            "wall_s": (rec.get("timings") or {}).get("total"), "warnings": list(rec.get("warnings") or [])}


def neutral_scf_record(conf, call, convert=None) -> dict:
    """One SCF of the neutral cell as a record: ``call()`` runs it and returns what ``convert`` (default: nothing to
    convert) turns into the fields of a converged SCF (those of :func:`neutral_record`, which converts a DFTRecord
    dict); a WannmagError raised by ``call`` (an SCF that did not converge) becomes a record with ``converged``
    False, no energy and the reason — never an energy; one raised by ``convert`` (a result without an energy) stops.  The record carries the configuration's name,
    pattern and start moments (μ_B) and the wall time (s).  Used by the workflow's SCF tasks and by
    data/mc/vacancy_holes_dft.py."""
    t0 = time.time()
    base = {"name": conf.name, "pattern": [int(s) for s in conf.pattern],
            "start_moments": start_moments(conf.pattern, conf.sublattice.spins).tolist()}
    try:
        rec = call()
    except WannmagError as exc:
        out = {**base, "converged": False, "energy_eV": None, "reason": " ".join(str(exc).split())}
    else:
        out = {**base, **dict(jsonable(rec if convert is None else convert(dict(jsonable(rec))))), "converged": True}
        if len(out["V_moments"]) != conf.n_sites:
            raise VacancyError(f"{conf.name}: {len(out['V_moments'])} site moments for {conf.n_sites} magnetic sites")
    out["wall_s"] = out.get("wall_s") or round(time.time() - t0, 1)
    return dict(jsonable(out))


def _neutral_scf(args) -> dict:
    """One SCF of the neutral cell (a task of :func:`~wannmag.workflows.parallel._map`: in this process, a local
    worker process or on Dask): ``engine(structure, conf, preset, U, workdir, **settings)``; a WannmagError (an SCF
    that did not converge) is recorded as such, never as an energy.  The record is written to
    ``workdir/<configuration>/record.json`` with its identity (cached engines) before it is returned."""
    engine, structure, conf, preset, U, workdir, settings, ident = args
    out = neutral_scf_record(conf, lambda: engine(structure, conf, preset, U, workdir, **settings),
                             convert=neutral_record)
    out = dict(out, identity=ident)
    if getattr(engine, "cache", True):
        atomic_write_json(Path(workdir) / conf.name / "record.json", out)
    return out


def _neutral_workdir(d: Path, preset: str, U, settings: dict) -> Path:
    """``OUT/vacancy_dft/neutral/<preset>_U<U>_w<smearing>[_fixm]_<hash of every setting>``: SCFs with other settings
    never meet each other's run directories (run_dft refuses a directory holding another calculation)."""
    h = hashlib.sha256(json.dumps(jsonable(settings), sort_keys=True).encode()).hexdigest()[:8]
    return d / "neutral" / (f"{preset}_U{float(U):g}_w{float(settings['smearing']):g}"
                            + ("_fixm" if settings.get("fixmagmom") else "") + f"_{h}")


class _LazyClient:
    """One Dask client for the SCF batches of a step, started only when a batch has something to run."""

    def __init__(self, dask):
        self.dask, self.client = dask, None

    def get(self):
        if self.client is None and self.dask:
            self.client = _client(self.dask)
        return self.client

    def close(self) -> None:
        if self.client is not None:
            self.client.close()


def _run_neutral_scfs(ctx, structure, cell: VacancyCell, items, engine, wd: Path, settings: dict, what: str,
                      client: _LazyClient):
    """The SCFs of ``items`` [(pattern, HolePlacement or None), ...]: finished ones (record.json with the same
    identity: converged or not) read back, the others handed together to the parallel map (--workers / --dask)."""
    p = ctx.params
    confs = [vacancy_configuration(ctx.sublattice, cell, q, holes=hp) for q, hp in items]
    if isinstance(engine, _OutputsReader):
        missing = engine.missing([c.name for c in confs])
        if missing:
            _write_confs(confs, ctx.step_dir("vacancy_dft") / "structures")
            raise VacancyError(f"{engine.d}: no outputs for the neutral vacancy cell's {what} {', '.join(missing)} "
                               f"(their structures and initial moments are in "
                               f"{ctx.step_dir('vacancy_dft') / 'structures'})")
    out: list = [None] * len(confs)
    todo = []
    for k, conf in enumerate(confs):
        ident = jsonable({"structure": str(structure), "supercell": cell.supercell, "site": cell.site,
                          "pattern": [int(s) for s in conf.pattern], "spins": conf.sublattice.spins,
                          "preset": p["preset"], "U": p["U"], "engine": _engine_name(engine), "settings": settings})
        path = wd / conf.name / "record.json"
        if getattr(engine, "cache", True) and path.exists():
            try:
                old = json.loads(path.read_text())
            except json.JSONDecodeError:
                old = None
            if old and old.get("identity") == ident:
                state = ("E = {:.6f} eV".format(old["energy_eV"]) if old.get("converged") else
                         f"NOT converged: {old.get('reason')}")
                ctx.log(f"[wannmag vacancy] {conf.name}: done earlier ({state}), read {path}")
                out[k] = old
                continue
        todo.append((k, ident))
    if todo:
        ctx.log(f"[wannmag vacancy] {what}: {len(todo)} SCF(s) to run ({', '.join(confs[k].name for k, _ in todo)})")
        res = _map(client.get(), _neutral_scf, [(engine, structure, confs[k], p["preset"], p["U"], str(wd), settings,
                                                 ident) for k, ident in todo], workers=p.get("workers", 1))
        for (k, _), r in zip(todo, res):
            out[k] = r
            ctx.log(f"[wannmag vacancy] {r['name']}: " + (f"E = {r['energy_eV']:.6f} eV, V moments "
                                                          + ", ".join(f"{m:+.2f}" for m in r["V_moments"])
                                                          if r.get("converged") else f"NOT converged: {r['reason']}"))
    return out


def _write_confs(confs, d: Path) -> None:
    """POSCARs and initial moments (``magmoms.json``) of configurations, for runs elsewhere."""
    d.mkdir(parents=True, exist_ok=True)
    path = d / "magmoms.json"
    mags = json.loads(path.read_text()) if path.exists() else {}
    for conf in confs:
        buf = io.StringIO()
        write(buf, conf.atoms, format="vasp", direct=True, sort=False)
        atomic_write_text(d / f"{conf.name}.vasp", buf.getvalue())
        mags[conf.name] = [float(m) for m in conf.atoms.get_initial_magnetic_moments()]
    atomic_write_json(path, mags)


def _neutral_dft(ctx, structure, cell: VacancyCell) -> VacancyDFTStep:
    """vacancy_dft in the neutral charge mode (module docstring): the hole placements, then the fit configurations
    of the lowest usable placement."""
    p = ctx.params
    v = p["vacancy"]
    settings = neutral_settings({k: x for k, x in (v.get("neutral") or {}).items() if k != "placements"})
    names = check_placements((v.get("neutral") or {}).get("placements"))
    d = ctx.step_dir("vacancy_dft")
    n_holes, s_hole = vacancy_holes_of(-vacancy_charge(ctx.sublattice, "ionic"), cell.spin)
    places = {hp.name: hp for hp in hole_placements_of(ctx.sublattice, cell, n_holes=n_holes, spin_hole=s_hole)}
    unknown = [n for n in names if n != "none" and n not in places]
    if unknown:
        raise VacancyError(f"hole placement {unknown[0]!r} does not exist in this vacancy cell ({n_holes} holes; "
                           f"placements: {', '.join(sorted(places))}, none)")
    start = _ground_state_pattern(ctx, cell) or [1] * cell.n_sites
    start = [int(s) * (1 if start[0] > 0 else -1) for s in start]
    vdir = Path(p["from_dir"]) / "vacancy" if p.get("from_dir") else None
    eng = p.get("vacancy_engine")
    if eng is None:
        eng = _OutputsReader(vdir) if vdir is not None else neutral_gpaw_engine
    wd = _neutral_workdir(d, p["preset"], p["U"], settings)
    client = _LazyClient(p.get("dask"))
    try:
        return _neutral_steps(ctx, structure, cell, names, places, start, eng, wd, settings, n_holes, s_hole, client)
    finally:
        client.close()


def _neutral_steps(ctx, structure, cell, names, places, start, eng, wd, settings, n_holes, s_hole,
                   client) -> VacancyDFTStep:
    v = ctx.params["vacancy"]
    d = ctx.step_dir("vacancy_dft")
    dft_kw = {k: settings[k] for k in NEUTRAL_DFT}
    recs = _run_neutral_scfs(ctx, structure, cell, [(start, places.get(n)) for n in names], eng, wd, dft_kw,
                             "hole placements", client)
    runs = [placement_run(n, places.get(n), start, r, cell.spin, s_hole, n_holes) for n, r in zip(names, recs)]
    atomic_write_json(d / "placements.json", {"placements": [r.as_dict() for r in runs], "workdir": str(wd)})
    choice = choose_placement(runs)
    for n in choice.notes:
        ctx.log(f"[wannmag vacancy] note: {n}")
    hp = places[choice.placement]
    _, _, design = fit_design(cell.bonds, cell.near_sites, hp, cell.spin, cell.n_sites, start=start,
                              fit_j23=v.get("fit") == "J123", n_configs=v.get("n_configs"))
    ctx.log(f"[wannmag vacancy] placement {hp.name} (holes on sites {hp.sites}): {len(design.patterns)} "
            f"configurations for E0, {', '.join(design.unknowns)} (fixed: {', '.join(design.fixed) or 'none'}), "
            f"condition number {design.condition_number:.3g}")
    cfg = _run_neutral_scfs(ctx, structure, cell, [(q, hp) for q in design.patterns], eng, wd, dft_kw,
                            f"fit configurations of placement {hp.name}", client)
    keep_out = ("identity",)
    # the records as stored (JSON types): what the fit reads, in this run or from the stored step
    return VacancyDFTStep(cell=cell, engine=_engine_name(eng), charge=0.0, mode="holes", settings=settings,
                          placement_names=names, holes_per_vacancy=n_holes, spin_hole=s_hole, start_pattern=start,
                          placements=runs, choice=choice, placement=hp, design=design, workdir=str(wd),
                          records=jsonable([{k: x for k, x in r.items() if k not in keep_out} for r in cfg]),
                          constraint_warnings=constraint_warnings(list({r["name"]: r for r in recs + cfg}.values()),
                                                                  settings["smearing"]))


def _neutral_fit(ctx, vd: VacancyDFTStep) -> VacancyFitStep:
    """vacancy_fit in the neutral charge mode: :func:`~wannmag.magnetism.vacancy_holes.fit_cell` over the fit
    configurations (excluded ones with their reasons; the options of :data:`NEUTRAL_FIT`: ``keep_moved`` —
    effective couplings with configurations whose holes moved, said in ``status`` and ``kind``; ``absorb_constant``
    — a class the configurations used cannot determine goes into E0, named in ``absorbed`` and the notes;
    ``min_dof``), J2 and J3 held at the perfect crystal's energy-mapping values unless fitted, the classes a diluted
    lattice needs completed (:func:`~wannmag.magnetism.vacancy_holes.lattice_classes`; not possible when one of
    them was absorbed: then no with-holes Monte Carlo, said in the notes) and the Monte Carlo hole placement
    (:func:`~wannmag.magnetism.vacancy_holes.lattice_placement`)."""
    v = ctx.params["vacancy"]
    opts = neutral_fit_options(v.get("neutral_fit"))
    cell = make_vacancy_cell(ctx.sublattice, supercell=v["supercell"], site=v["site"])
    hp, design = vd.placement, vd.design
    bonds = classify_bonds(cell.bonds, hp.sites, cell.near_sites)
    perfect_J = ctx.typed("mapping", MappingStep).J_meV
    perfect = perfect_J + [0.0, 0.0, 0.0]
    fixed = {c: perfect[int(c[1:]) - 1] for c in design.fixed}
    try:
        cf = fit_cell(bonds, hp, cell.spin, vd.records, design.unknowns, fixed=fixed, **opts)
    except HoleError as exc:  # its line names every excluded configuration with the reason
        hint = []
        for k, text in (("absorb_constant", "--vacancy-absorb-constant would fit the classes these configurations "
                                            "determine"),
                        ("keep_moved", "--vacancy-keep-moved would fit effective couplings with the configurations "
                                       "whose holes moved")):
            if not opts[k]:
                try:
                    fit_cell(bonds, hp, cell.spin, vd.records, design.unknowns, fixed=fixed, **{**opts, k: True})
                except HoleError:
                    continue
                hint.append(text)
        raise VacancyFitError(str(exc) + (f" ({'; '.join(hint)})" if hint else "")) from None
    fit = cf.fit
    needed = [c for c in ("V2-V2_bulk", "next_to_vacancy", "V2-V3") if c in fit.absorbed]
    mc_placement, note = lattice_placement(hp.name)
    if needed:  # the diluted lattice needs this class: no with-holes series
        J, assumed = dict(fit.J), {}
        notes = [f"{', '.join(needed)} not determined by the configurations used (absorbed into E0): no "
                 "with-holes Monte Carlo series, dilution only (--vacancy-keep-moved fits effective couplings "
                 "that include the configurations whose holes moved)"]
    else:
        J, assumed, notes = lattice_classes(fit.J, perfect[0])
        J.update({c: None for c in fit.absorbed})
    notes = cf.notes("--vacancy-keep-moved") + notes + ([note] if note else [])
    for r in cf.records:
        r["residual_meV"] = cf.residuals_meV.get(r["name"])
    nb: dict = {}
    for b in bonds:
        nb[b["cls"]] = nb.get(b["cls"], 0) + 1
    out = VacancyFitStep(convention=fit.as_dict()["convention"], J_meV=J, fixed_meV=fit.fixed, E0_eV_per_cell=fit.E0_eV,
                         residuals_meV_per_cell=fit.residuals_meV, rank=fit.rank,
                         condition_number=fit.condition_number, stderr_meV=fit.stderr, configurations=cf.records,
                         perfect_J_meV=perfect_J, table="", cell=cell, mode="holes",
                         placement=HolePlacement.from_dict(fit.placement), spins=fit.spins,
                         J_fitted_meV={u: fit.J[u] for u in design.unknowns}, assumed_meV=assumed, bonds_per_class=nb,
                         mc_placement=mc_placement,
                         excluded=[{"name": r["name"], "reason": r["excluded_because"]} for r in cf.records
                                   if not r["used"]],
                         residual_rms_meV=cf.rms_meV, dof=cf.dof, warnings=cf.warnings, notes=notes,
                         absorbed=list(fit.absorbed), status=cf.status, kind=cf.kind, effective=cf.effective,
                         moved=cf.moved, options=opts, beyond_heisenberg_meV=cf.beyond_heisenberg_meV)
    out.table = _hole_fit_table(out)
    ctx.log(out.table)
    for w in cf.warnings + notes:
        ctx.log(f"[wannmag vacancy] {w}")
    return out


def _hole_fit_table(fit: VacancyFitStep) -> str:
    """The fit with holes of the neutral cell (its :class:`VacancyCell` ``fit.cell``) as text (ctx.log and the
    report's code block)."""
    cell, pl = fit.cell, fit.placement
    perfect = list(fit.perfect_J_meV) + [None, None, None]
    lines = [f"neutral vacancy cell: {cell.n_sites} of {cell.n_full} magnetic sites (supercell {cell.supercell}), "
             f"holes ({pl.name}) on sites {pl.sites} with S = {pl.spin_hole:g}, S = {cell.spin:g} elsewhere; "
             "H = Σ_{i<j} J_ij S_i·S_j, each bond once, J > 0 AF, meV"]
    if fit.kind:
        lines.append(f"{fit.kind}")
    lines.append(f"{'class':>16s} {'bonds':>5s} {'J (meV)':>10s} {'':>9s} {'source':>24s} {'perfect J':>10s}")
    for c, val in fit.J_meV.items():
        err = (fit.stderr_meV or {}).get(c)
        src = fit.source(c)
        ref = perfect[0] if c in ("V2-V2_bulk", "next_to_vacancy", "V2-V3", "V3-V3") else \
            perfect[int(c[1:]) - 1] if c in ("J2", "J3") else None
        lines.append(f"{c:>16s} {fit.bonds_per_class.get(c, 0):5d} {_num(val, '+10.3f'):>10s} "
                     f"{'' if err is None else '± ' + format(err, '.3f'):>9s} {src:>24s} "
                     f"{'' if ref is None else format(ref, '+.3f'):>10s}")
    lines.append(f"rank {fit.rank}, condition number {fit.condition_number:.3g}, residuals rms "
                 f"{fit.residual_rms_meV:.3f} meV/cell ({fit.dof} residual degrees of freedom)")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------------ steps
def _ground_state_pattern(ctx, cell: VacancyCell):
    """The perfect lattice's ground-state order (mapping step) on the sites of the vacancy cell, if commensurate."""
    order = ctx.typed("mapping", MappingStep).ground_state if "mapping" in ctx.results else "Neel"
    return start_pattern(ctx.sublattice, cell, order)


def step_vacancy_dft(ctx):
    p = ctx.params
    v = p["vacancy"]
    structure, sub = p["structure"], ctx.sublattice  # the file (engines, identities) and its sublattice
    cell = make_vacancy_cell(sub, supercell=v["supercell"], site=v["site"])
    if is_neutral(v.get("charge")):
        return _neutral_dft(ctx, structure, cell)
    patterns = choose_patterns(cell, fit=v["fit"], n_configs=v["n_configs"], start=_ground_state_pattern(ctx, cell))
    d = ctx.step_dir("vacancy_dft")
    _write_structures(sub, cell, patterns, d / "structures")
    atomic_write_json(d / "plan.json", {"cell": cell.as_dict(), "patterns": patterns,
                                        "names": [_pattern_name(q) for q in patterns]})
    vdir = Path(p["from_dir"]) / "vacancy" if p.get("from_dir") else None
    q = 0.0
    if vdir is not None and p.get("vacancy_engine") is None:
        if not vdir.is_dir():
            raise VacancyError(f"{vdir}: no such directory; put the outputs of the vacancy configurations "
                               f"{', '.join(_pattern_name(q) for q in patterns)} in {vdir}/<configuration>/ (their "
                               f"structures and initial moments are in {d / 'structures'})")
        recs = _read_vacancy_dir(vdir, sub, cell, patterns)
        engine = "from-dir"
    else:
        q = vacancy_charge(sub, v.get("charge"))
        eng = p.get("vacancy_engine")
        if eng is None:
            eng = functools.partial(gpaw_engine, charge=q)
            eng.engine_name = "gpaw"
        wd = d if q == 0 else d / f"charge{q:+g}"  # charged cells get their own run directories
        recs = run_vacancy_configurations(structure, cell, patterns, eng, wd, preset=p["preset"], U=p["U"],
                                          log=ctx.log, charge=q, sublattice=sub)
        engine = _engine_name(eng)
    keep = ("name", "pattern", "energy", "site_moments", "moments", "total_moment", "gap", "gaps", "fermi_level",
            "warnings", "timings", "wall_s", "gpw", "formula", "kpts")
    # the records as stored (JSON types): what the fit reads, in this run or from the stored step
    return VacancyDFTStep(cell=cell, engine=engine, charge=q, records=jsonable([{k: r.get(k) for k in keep}
                                                                                for r in recs]))


def step_vacancy_fit(ctx):
    p = ctx.params
    v = p["vacancy"]
    vd = ctx.typed("vacancy_dft", VacancyDFTStep)
    if vd.mode == "holes":
        return _neutral_fit(ctx, vd)
    cell = make_vacancy_cell(ctx.sublattice, supercell=v["supercell"], site=v["site"])
    recs = vd.records
    perfect_J = ctx.typed("mapping", MappingStep).J_meV
    mapJ = perfect_J + [0.0, 0.0, 0.0]
    fixed = {"J2": float(mapJ[1]), "J3": float(mapJ[2])} if v["fit"] == "J1" else {}
    fit = fit_vacancy_exchange(cell, [r["pattern"] for r in recs], [r["energy"] for r in recs], fit=v["fit"],
                               fixed=fixed, names=[r["name"] for r in recs])
    out = VacancyFitStep.equal_spin(fit, perfect_J, _fit_table(cell, fit, perfect_J), cell)
    ctx.log(out.table)
    return out


def _fit_table(cell: VacancyCell, fit: VacancyFit, perfect) -> str:
    nb = cell.n_bonds()
    lines = [f"vacancy cell: {cell.n_sites} of {cell.n_full} magnetic sites (supercell {cell.supercell}), "
             f"S = {cell.spin:g}; H = Σ_{{i<j}} J_ij S_i·S_j, each bond once, J > 0 AF, meV",
             f"{'class':>8s} {'bonds':>5s} {'J (meV)':>10s} {'perfect lattice':>16s}"]
    ref = {"J1_bulk": perfect[0], "J1_vac": perfect[0], "J2": perfect[1] if len(perfect) > 1 else None,
           "J3": perfect[2] if len(perfect) > 2 else None}
    for c in CLASSES:
        err = "" if not fit.stderr or c not in fit.stderr else f" ± {fit.stderr[c]:.3f}"
        tag = " (fixed)" if c in fit.fixed else ""
        r = "" if ref[c] is None else f"{ref[c]:+.3f}"
        lines.append(f"{c:>8s} {nb[c]:5d} {fit.J[c]:+10.3f}{err}{tag} {r:>16s}")
    lines.append(f"rank {fit.rank}/{fit.n_unknowns}, condition number {fit.condition_number:.3g}, residuals "
                 + ", ".join(f"{x:+.3f}" for x in fit.residuals_meV) + " meV/cell")
    return "\n".join(lines)


def _chi_max(a) -> dict | None:
    """χ maximum (K) of the largest lattice of a Tc analysis, labelled: {"T", "error", "lattice", "estimator"} with
    estimator "chi maximum" or, at a window edge, "edge: chi maximum >= T" / "edge: chi maximum <= T"."""
    if not a.sizes:
        return None
    lab = a.sizes[-1]
    pk = a.peaks_chi[lab]
    est = ("chi maximum" if not pk.get("at_edge") else
           f"edge: chi maximum {'>=' if pk.get('bound') == 'lower' else '<='} {pk['T']:.4g} K")
    return {"T": pk["T"], "error": pk.get("error"), "lattice": lab, "estimator": est, "text": peak_text(pk)}


def _series(model, fractions, sizes, settings, realisations, ck_dir, near, holes, map_fn, refine: bool) -> dict:
    """One T(x) series of :func:`diluted_study` (``near``: NearVacancyJ or None; ``holes``: HoleSpec or None), with
    the optional second pass per x; returns the per-x results, the final analyses and the raw dilution results."""
    res = dilution_scan(model, fractions, [int(x) for x in sizes], settings, realisations=int(realisations),
                        near_vacancy=near, out_dir=ck_dir(settings), map_fn=map_fn, holes=holes)
    tn, err, methods = list(res.tc), list(res.tc_error), list(res.methods)
    final = list(res.analyses)
    windows = [[settings.tmin, settings.tmax] for _ in fractions]
    coarse = {"tn_K": list(res.tc), "tn_error_K": list(res.tc_error), "methods": list(res.methods),
              "statuses": [a.status for a in res.analyses], "notes": [a.note for a in res.analyses],
              "chi_max_K": [_chi_max(a) for a in res.analyses], "t_window_K": [settings.tmin, settings.tmax]}
    notes, dilution = [], res.as_dict()
    if refine and not (res.analyses and res.analyses[0].mermin_wagner):
        dilution = {"coarse": dilution, "refined": {}}
        for k, x in enumerate(fractions):
            def run(fine, x=x):  # the second pass of one x: the same sizes and realisations on the fine window
                r2 = dilution_scan(model, [x], [int(s) for s in sizes], fine, realisations=int(realisations),
                                   near_vacancy=near, out_dir=ck_dir(fine), map_fn=map_fn, warn=False, holes=holes)
                dilution["refined"][f"{x:g}"] = r2.as_dict()
                return r2.analyses[0]

            two = second_pass(res.analyses[k], settings, run)  # the rule of the mc step (tc.second_pass)
            if two.second is None:
                continue
            w, a2 = two.window, two.second
            if not two.refined:
                keep = (f"first pass on {settings.tmin:.4g}-{settings.tmax:.4g} K kept" if res.analyses[k].bracketed
                        else "no ordering temperature")
                notes.append(f"x = {x:g}: the second pass on {w[0]:.4g}-{w[1]:.4g} K found no Binder crossing "
                             f"({a2.note}); {keep}")
                continue
            tn[k], err[k], methods[k], windows[k] = a2.tc, a2.tc_error, a2.method, list(w)
            final[k] = a2
            if two.warning:
                notes.append(f"x = {x:g}: {two.warning}")
    notes += [f"x = {x:g}: {a.note}" for x, a in zip(fractions, final) if not a.bracketed and a.note]
    notes += [f"x = {x:g}: {a.warning}" for x, a in zip(fractions, final) if a.warning and not a.mermin_wagner]
    return {"tn_K": tn, "tn_error_K": err, "methods": methods, "statuses": [a.status for a in final],
            "notes": [a.note for a in final],
            "estimators": [a.method if a.bracketed else "not bracketed" for a in final],
            "binder": [a.binder for a in final], "chi_max_K": [_chi_max(a) for a in final], "t_windows_K": windows,
            "coarse": coarse, "warnings": notes, "mermin_wagner": bool(res.analyses[0].mermin_wagner)
            if res.analyses else False, "realisations": res.realisations, "dilution": dilution,
            **({"hole_spec": res.holes, "hole_counts": res.hole_counts} if holes is not None else {})}


def diluted_study(model, J_vac: float | None, fractions, sizes, settings, realisations: int, out_dir, perfect=None,
                  title: str = "", extra: dict | None = None, map_fn=None, refine: bool = False,
                  holes=None) -> dict:
    """Diluted-lattice Monte Carlo T(x) of ``model`` (SpinModel of the perfect lattice, H = Σ_{i<j} S_i·J_ij·S_j +
    Σ_i S_i·A_i·S_i, each bond once, |S| = S, J > 0 AF, meV) with every nearest-neighbour bond next to a vacancy
    carrying the isotropic exchange ``J_vac`` (meV; :class:`NearVacancyJ`; None: dilution alone, every bond keeps
    its tensor), for x = 0 and ``fractions``; ``settings`` an MCSettings (K).  Writes ``out_dir/vacancy_study.json``
    and ``out_dir/tn_vs_x.png`` (atomically; Monte Carlo checkpoints in ``out_dir/checkpoints/<hash of model, J_vac,
    holes and settings>/``, resumed) and returns the study as a dict (temperatures in K).  ``map_fn(fn, tasks)`` runs
    the disorder realisations (Dask, local processes; see :func:`~wannmag.magnetism.montecarlo.dilution_scan`).

    ``tn_K[k]`` is an ordering temperature only if it is a Binder crossing bracketed inside its window; otherwise it
    is None, ``statuses[k]`` is "not bracketed" and ``notes[k]`` says where the crossing lies.  ``estimators[k]``
    names what every number is ("Binder crossing 18x18x1/24x24x1", or "not bracketed"), and ``chi_max_K[k]`` gives
    the χ maximum of the largest lattice with its own label ("chi maximum", or "edge: chi maximum >= T" when it
    sits at a window edge and is only a bound) — a χ maximum is never reported as T(x).  ``binder[k]`` names the
    cumulant (easy-axis for a collinear uniaxial model, else vector; :func:`~wannmag.magnetism.montecarlo.tc.
    binder_kind`).

    ``refine``: a second pass for every x on :func:`~wannmag.magnetism.montecarlo.tc.next_window` of its first
    pass (:func:`~wannmag.magnetism.montecarlo.tc.second_pass`, the rule shared with ``wannmag mc`` and the
    workflow's mc step: around a bracketed crossing, T ± max(3σ, 0.15 T); beyond the window edge where an
    unbracketed crossing lies; around an interior χ maximum), the same sizes, sweeps and realisations, seed + 1.
    The second pass is reported if it brackets a crossing (with a warning
    when that lies at the edge of its window), else the first pass stays (and the notes say that the second pass
    found no crossing); the first pass is kept in ``coarse``.

    ``holes`` (a :class:`~wannmag.magnetism.montecarlo.holes.HoleSpec`: the exchange per nearest-neighbour class of
    the doped cell, meV): a second series on the same vacancy sets with the holes of the vacancies (V3+, S =
    ``spin_hole``, ``per_vacancy`` per vacancy) and every nearest-neighbour bond given the J of its class
    (:mod:`wannmag.magnetism.montecarlo.holes`), stored under ``with_holes`` (same keys as the dilution series,
    plus ``hole_spec`` and ``hole_counts``) and drawn beside the dilution curve."""
    out = Path(out_dir)

    def ck_dir(spec):
        def f(st):  # checkpoints of one set of runs, keyed by what defines them
            more = {} if spec is None else {"holes": spec.as_dict()}
            return out / "checkpoints" / checkpoint_key(model, st, J_vac=None if J_vac is None else float(J_vac),
                                                        sizes=[int(x) for x in sizes],
                                                        realisations=int(realisations), **more)
        return f

    fractions = sorted({0.0, *[float(x) for x in fractions]})
    near = None if J_vac is None else NearVacancyJ(model, J_vac)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        main = _series(model, fractions, sizes, settings, realisations, ck_dir(None), near, None, map_fn, refine)
        wh = None
        if holes is not None:
            wh = _series(model, fractions, sizes, settings, realisations, ck_dir(holes), None, holes, map_fn, refine)
    png = plot_tn_vs_x(fractions, main["tn_K"], main["tn_error_K"], out / "tn_vs_x.png", perfect=perfect, title=title,
                       holes=None if wh is None else (wh["tn_K"], wh["tn_error_K"]))
    dilution = main.pop("dilution")
    if wh is not None:
        wh["dilution"] = wh.pop("dilution")
    study = {"convention": "H = sum_{i<j} S_i.J_ij.S_j + sum_i S_i.A_i.S_i, each bond once, |S| = S, J > 0 AF; "
                           "meV, K",
             "fractions": fractions, **{k: v for k, v in main.items() if k != "warnings"},
             "sizes": [int(x) for x in sizes], "t_window_K": [settings.tmin, settings.tmax], "refined": bool(refine),
             "J1_vac_meV": None if J_vac is None else float(J_vac),
             "perfect_mc_K": None if perfect is None else list(perfect),
             "warnings": sorted({str(w.message) for w in caught}) + main["warnings"], **(extra or {}),
             **({"with_holes": wh} if wh is not None else {}),
             "dilution": dilution, "json": str(out / "vacancy_study.json"), "figure": str(png)}
    atomic_write_text(out / "vacancy_study.json", json.dumps(jsonable(study), indent=1))
    return study


def _hole_spec(ctx, fit: VacancyFitStep):
    """(HoleSpec, notes) when the charge mode is neutral and the vacancy fit carries hole classes, else (None, [])."""
    charge = ctx.params["vacancy"].get("charge")
    if charge not in (None, "neutral"):
        return None, []
    lacking = [c for c in ("V2-V2_bulk", "next_to_vacancy", "V2-V3") if c in (fit.absorbed or [])]
    if lacking:  # a class the diluted lattice needs was absorbed into E0 (--vacancy-absorb-constant): no series
        return None, [f"with holes: not run: {', '.join(lacking)} not determined by the fit (absorbed into E0); "
                      "dilution only"]
    spec, notes = hole_spec_from_fit(fit.as_dict(), placement=fit.mc_placement or "near")
    return spec, (list(fit.notes or []) + notes) if spec is not None else notes


def step_vacancy_mc(ctx):
    p = ctx.params
    v = p["vacancy"]
    # the model step's SpinModel (in memory in a fresh run, else its file read once; shared with the mc step: read
    # only) and the mc step's typed result, when the run has one
    model = ctx.typed("model", ModelStep).spin_model()
    mc = ctx.typed("mc", MCStep) if "mc" in ctx.results else None
    fit = ctx.typed("vacancy_fit", VacancyFitStep)
    spec, hole_notes = _hole_spec(ctx, fit)
    # with holes (neutral cell, fit by bond class): the dilution-only series beside keeps every J of the crystal
    # (also when the fit cannot give the holes' series: a class it needs absorbed into E0)
    J_vac = None if spec is not None or fit.mode == "holes" else float(fit.J_meV["J1_vac"])
    # the window of the mc step (0.1–1.1 × the classical mean-field scale S² Σ_j |J_ij| / 3), reaching further
    # down: dilution lowers T towards zero at the percolation threshold
    tmin, tmax = mean_field_window(model, 0.03, 1.1)
    # the algorithm the mc step chose for this model (cluster moves where valid; tc.choose_algorithm)
    algo = (mc.algorithm if mc is not None else None) or "metropolis"
    settings = MCSettings(tmin=tmin, tmax=tmax, n_replicas=p["mc_replicas"], n_sweeps=p["mc_sweeps"],
                          n_therm=p["mc_therm"], seed=p["seed"], checkpoint_every=1000, algorithm=algo,
                          threads=int(p.get("mc_threads") or 1))
    algo_note = None
    if spec is not None:  # the one rule (tc.choose_algorithm), also on a lattice with holes
        algo, algo_note = choose_hole_algorithm(model, p["mc_sizes"], settings, spec, max(v["fractions"]),
                                                requested=None if algo == "cluster" else "metropolis")
        settings = replace(settings, algorithm=algo)
    perfect = (mc.tc_K, mc.tc_error_K) if mc is not None else None
    formula = ctx.typed("structure", StructureStep).formula if "structure" in ctx.results else ""
    if spec is None and J_vac is None:
        title = f"{formula}: dilution only (every J of the crystal)"
    elif spec is None:
        title = (f"{formula}: J1 next to a vacancy {J_vac:+.2f} meV "
                 f"(perfect {fit.perfect_J_meV[0]:+.2f} meV)")
    else:
        title = (f"{formula}: dilution only vs with holes (" + ", ".join(f"{k} {val:+.1f}" for k, val in
                                                                       spec.J.items()) + " meV)")
    client = _client(p.get("dask"))
    try:
        # the (x, size, realisation) runs are independent and seeded by their own keys: on Dask or on --workers
        # local processes they give the serial numbers
        study = diluted_study(model, J_vac, v["fractions"], p["mc_sizes"], settings, p["vac_realisations"],
                              ctx.step_dir("vacancy"), perfect=perfect, title=title,
                              extra={"fit": {"J_meV": fit.J_meV, "fixed_meV": fit.fixed_meV, "rank": fit.rank},
                                     "algorithm": settings.algorithm,
                                     **({"algorithm_reason": algo_note, "hole_notes": hole_notes}
                                        if spec is not None else {"hole_notes": hole_notes} if hole_notes
                                        else {})},
                              map_fn=lambda fn, items: _map(client, fn, items, workers=p.get("workers", 1)),
                              refine=p.get("mc_refine", True), holes=spec)
    finally:
        if client is not None:
            client.close()
    # the study without its raw dilution results, in JSON types: the object is what is stored, also in this run
    out = {k: val for k, val in study.items() if k != "dilution"}
    if "with_holes" in out:
        out["with_holes"] = {k: val for k, val in out["with_holes"].items() if k != "dilution"}
    return VacancyMCStep.from_dict(jsonable(out))


def vacancy_steps(params: dict) -> list:
    """The three steps of the study for :func:`wannmag.workflows.run.build_workflow` (module docstring)."""
    v = params["vacancy"]
    eng = params.get("vacancy_engine")
    dftp = {"structure": params["structure"], "preset": params["preset"], "U": params["U"],
            "from_dir": params.get("from_dir"), "supercell": v["supercell"], "site": v["site"], "fit": v["fit"],
            "n_configs": v["n_configs"], "engine": "gpaw" if eng is None else _engine_name(eng),
            # the charge state defines the calculations
            "charge": 0 if v.get("charge") in (None, "neutral") else str(v["charge"])}
    fitp = {"fit": v["fit"]}
    if is_neutral(v.get("charge")):  # the neutral cell with its holes: placements, then the fit by hole class
        ns = v.get("neutral") or {}
        dftp["neutral"] = {"placements": check_placements(ns.get("placements")),
                           "settings": neutral_settings({k: x for k, x in ns.items() if k != "placements"}),
                           "procedure": "placements, lowest usable one's D-optimal configurations (holes v1)"}
        fitp["procedure"] = "fit_hole_records, J2/J3 of the crystal unless J123, lattice classes completed (v1)"
        # the fit's options: only those that differ from the defaults enter the fingerprint (a run with the
        # defaults keeps its cached fit); changing one re-runs the fit and what follows it, never the SCFs
        opts = neutral_fit_options(v.get("neutral_fit"))
        fitp.update({k: x for k, x in opts.items() if x != NEUTRAL_FIT[k]})
    mcp = {k: params[k] for k in ("mc_sizes", "mc_sweeps", "mc_therm", "mc_replicas", "seed", "vac_realisations")}
    mcp["mc_algorithm"] = params.get("mc_algorithm") or "auto"  # as the mc step (whose choice it uses)
    # (the wording is part of the fingerprint: results of the former rule, which reported χ maxima as T(x), rerun)
    mcp["passes"] = ("wide window down to 0.03 T_MF, then per x a pass on next_window; T(x) only from bracketed "
                     "Binder crossings" if params.get("mc_refine", True) else "one; T(x) only from bracketed Binder "
                     "crossings")
    mcp["fractions"] = sorted({0.0, *[float(x) for x in v["fractions"]]})
    # (part of the fingerprint: results of the former vector-only, cumulant-averaged analysis rerun from checkpoints)
    mcp["binder"] = "tc.binder_kind; U4 from disorder-averaged moments; holes beside when the fit has hole classes"
    return [Step("vacancy_dft", step_vacancy_dft, ("structure", "mapping"), params=dftp,
                 description="DFT of the neutral vacancy cell: hole placements, then the fit configurations"
                 if is_neutral(v.get("charge")) else "DFT energies of the vacancy supercell configurations"),
            Step("vacancy_fit", step_vacancy_fit, ("vacancy_dft", "mapping"), params=fitp,
                 description="J by hole class of the neutral cell" if is_neutral(v.get("charge")) else
                 "J1 next to the vacancy vs bulk-like J1"),
            Step("vacancy_mc", step_vacancy_mc, ("model", "vacancy_fit", "mc"), params=mcp,
                 description="diluted-lattice Monte Carlo T(x)")]


def _charge_text(q: float) -> str:
    if not q:
        return "neutral cell (no extra charge; the removed ion's electrons leave holes)"
    return f"cell charge {q:+g} e (the removed ion's electrons given back: remaining ions keep their nominal charge)"


def _md(text) -> str:
    """Text for a Markdown table cell ('|' escaped)."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _num(x, fmt: str) -> str:
    return "" if x is None else format(x, fmt)


def neutral_report_lines(vd: VacancyDFTStep, vf: VacancyFitStep) -> list[str]:
    """The neutral cell's part of the vacancy section: the placement runs (energy relative to the lowest, meV; V
    moments; where the holes are; gap and common gap; converged), the chosen placement, warnings of an active
    fixed-moment constraint, the fit by bond class with its residuals, and every configuration with why it was
    excluded."""
    s = vd.settings
    ch = vd.choice
    rel = ch.relative_meV or {}
    mixer = ", ".join(f"{k} {v:g}" if isinstance(v, (int, float)) else f"{k} {v}" for k, v in (s.get("mixer") or
                                                                                          {}).items()) or "GPAW's"
    lines = [f"Neutral cell: {vd.holes_per_vacancy} holes per vacancy, a hole site started as S = "
             f"{vd.spin_hole:g} ({2 * vd.spin_hole:g} μ_B) at the placements below, in the perfect crystal's "
             f"order ({''.join('+' if x > 0 else '-' for x in vd.start_pattern)}). SCF: Fermi–Dirac "
             f"{s['smearing']:g} eV, mixer {mixer}, "
             + ("total moment fixed at the start moments' sum (a constraint)" if s.get("fixmagmom") else
                "free total moment")
             + f", density criterion {_num(s.get('density_tol'), 'g') or 'default'}, at most {s.get('maxiter')} "
             "iterations.", "",
             "| placement | holes placed on | E − E_min (meV) | V moments (μ_B) | holes found on | gap (eV) | "
             "common gap (eV) | converged |", "|---|---|---|---|---|---|---|---|"]
    for r in vd.placements:  # PlacementRun; holes_found and check are the dicts of locate_holes and
        placed = ", ".join(map(str, r.sites)) if r.sites else "none (every ion started full)"  # check_configuration
        hf = r.holes_found or {}
        found = ""
        if r.converged:
            found = (", ".join(map(str, hf.get("sites") or [])) + (" (localised)" if hf.get("localised") else
                                                                 " (not localised)"))
            if r.check is not None:
                found += "; stayed" if r.check.get("ok") else f"; not as placed: {r.check.get('reason')}"
        conv = (f"yes ({r.scf_iterations} iterations)" if r.converged and r.scf_iterations else
                "yes" if r.converged else f"no: {r.reason}")
        lines.append(f"| {r.name} | {placed} | {_num(rel.get(r.name), '.1f')} | "
                     f"{', '.join(f'{m:+.2f}' for m in r.V_moments or [])} | {_md(found)} | "
                     f"{_num(r.gap_eV, '.3f')} | {_num(r.common_gap_eV, '+.3f')} | {_md(conv)} |")
    lines += ["", f"Fitted placement: **{ch.placement}** (holes on sites {ch.sites}; the lowest converged "
              "placement whose holes stayed on the placed sites)."]
    lines += [f"Note: {n}." for n in ch.notes or []]
    lines += [f"Warning: {w}." for w in vd.constraint_warnings or []]
    if not vd.constraint_warnings and s.get("fixmagmom"):
        lines.append("Fixed moment: no converged SCF has its two spin channels overlapping (common gap ≥ −smearing): "
                     "the constraint is not active.")
    perfect = list(vf.perfect_J_meV) + [None, None, None]
    lines += ["", "Exchange by bond class (H = Σ_{i<j} J_ij S_i·S_j, each bond once, S = "
              f"{vf.placement.spin_hole:g} on the hole sites, {vd.cell.spin:g} elsewhere, J > 0 AF, "
              "meV):", "",
              "| class | bonds in the cell | J (meV) | ± (meV) | source | perfect crystal (meV) |",
              "|---|---|---|---|---|---|"]
    for c, val in vf.J_meV.items():
        err = (vf.stderr_meV or {}).get(c)
        src = vf.source(c)
        src = src + " (no bond in the cell)" if src.startswith("assumed") else src
        ref = perfect[0] if not c.startswith("J") else perfect[int(c[1:]) - 1]
        lines.append(f"| {c} | {vf.bonds_per_class.get(c, 0)} | {_num(val, '+.3f')} | {_num(err, '.3f')} | "
                     f"{src} | {_num(ref, '+.3f')} |")
    lines += ["", f"Fit: {len(vf.residuals_meV_per_cell)} configurations used, residuals rms "
              f"{vf.residual_rms_meV:.3f} meV per cell ({vf.dof} residual degrees of freedom), condition "
              f"number {vf.condition_number:.3g}."]
    lines += _fit_kind_lines(vf)
    lines += ["",
              "| configuration | E (eV/cell) | V moments (μ_B) | used | residual (meV) | excluded because |",
              "|---|---|---|---|---|---|"]
    for r in vf.configurations:  # the configuration records (dicts), annotated by the fit
        lines.append(f"| {r['name']} | {_num(r.get('energy_eV'), '.6f')} | "
                     f"{', '.join(f'{m:+.2f}' for m in r.get('V_moments') or [])} | {'yes' if r['used'] else 'no'} | "
                     f"{_num(r.get('residual_meV'), '+.3f')} | {_md(r.get('excluded_because') or '')} |")
    lines += [""] + [f"Note: {n}." for n in vf.notes or []]
    lines.append(f"An SCF without an energy is recorded and not retried on a re-run (delete its record.json under "
                 f"{vd.workdir} to run it again).")
    return lines


def _fit_kind_lines(vf: VacancyFitStep) -> list[str]:
    """Which fit of the neutral cell this is (report): fixed-hole Heisenberg or effective couplings (configurations
    whose holes moved used, ``--vacancy-keep-moved``), and the classes absorbed into E0 (``--vacancy-absorb-
    constant``).  A fit stored before these options existed is a fixed-hole fit with the defaults."""
    opts = {**NEUTRAL_FIT, **(vf.options or {})}
    given = [f"--vacancy-{k.replace('_', '-')}" + ("" if isinstance(NEUTRAL_FIT[k], bool) else f" {opts[k]}")
             for k in NEUTRAL_FIT if opts[k] != NEUTRAL_FIT[k]]
    moved = vf.moved or []
    if moved:
        out = [f"Which fit: **EFFECTIVE couplings** — {len(moved)} configuration(s) whose holes left the placed "
               f"sites are used ({', '.join(moved)}): not a fixed-hole Heisenberg fit; the residuals say how far "
               "from one the energies are."]
    else:
        out = ["Which fit: fixed-hole Heisenberg (every configuration used kept its spins and its holes on the "
               "placed sites)."]
    if vf.absorbed:
        out.append(f"Absorbed into E0 (the same Σ S_i S_j σ_i σ_j in every configuration used, not determined by "
                   f"them): {', '.join(vf.absorbed)}.")
    status = "fitted" if vf.status is None else vf.status  # (a fit stored before the options has none)
    out.append(f"Fit options: {', '.join(given) if given else 'defaults'} (status: {status}).")
    return out


def report_lines(ctx) -> list[str]:
    """The vacancy section of report.md."""
    if "vacancy_mc" not in ctx.results:
        return []
    vd = ctx.typed("vacancy_dft", VacancyDFTStep)
    vf = ctx.typed("vacancy_fit", VacancyFitStep)
    vm = ctx.typed("vacancy_mc", VacancyMCStep)
    cell = vd.cell
    lines = ["## Vacancies: exchange next to a vacancy and T(x) of the diluted lattice", "",
             f"One magnetic ion removed from a {cell.n_full}-site supercell ({cell.n_sites} sites "
             f"left), {_charge_text(vd.charge or 0)}, energies: {vd.engine}.", ""]
    if vd.mode == "holes":
        lines += neutral_report_lines(vd, vf)
    else:
        lines += ["| configuration | E (eV/cell) | total moment (μ_B) | gap (eV) | site moments (μ_B) |",
                  "|---|---|---|---|---|"]
        for rec in vd.records:  # the configuration records (dicts: run_dft's DFTRecord fields)
            mom = rec.get("site_moments") or []
            tm = rec.get("total_moment")
            gap = rec.get("gap")
            lines.append(f"| {rec['name']} | {rec['energy']:.4f} | {'' if tm is None else format(tm, '+.2f')} | "
                         f"{'' if gap is None else format(gap, '.3f')} | {', '.join(f'{m:+.2f}' for m in mom)} |")
        if vf.table:
            lines += ["", "```", vf.table, "```"]
    se, wh = vm.series, vm.with_holes  # the dilution-only series and the one with the holes (DilutionSeries)
    if wh is not None:
        hs = wh.hole_spec or HoleSpec(J={})  # (its defaults: 2 per vacancy, S = 1, near)
        Jtxt = ", ".join(f"{k} {val:+.2f}" for k, val in hs.J.items())
        lines += ["", "Dilution only (every J of the perfect crystal, S = 3/2) beside the lattice with the holes of "
                  f"the vacancies ({hs.per_vacancy} per vacancy, S = {hs.spin_hole:g}, placed "
                  f"'{hs.placement}'), every nearest-neighbour bond with the J of its class: {Jtxt} "
                  "meV (J > 0 AF).",
                  f"Algorithm: {vm.algorithm or ''} ({vm.algorithm_reason or ''})."]
        lines += [f"Note: {n}." for n in vm.hole_notes or []]
    elif vm.hole_notes:
        lines += [""] + [f"Note: {n}." for n in vm.hole_notes]
    lines += ["", "| x | T (K) | estimator | χ maximum of the largest lattice (K) |", "|---|---|---|---|"]
    chis = se.chi_max_K or [None] * len(vm.fractions)  # dicts T, error, lattice, estimator, text (or None)
    for x, t, e, m, c in zip(vm.fractions, se.tn_K, se.tn_error_K, se.methods, chis):
        tt = "not bracketed" if t is None else f"{t:.1f} ± {(e or 0):.1f}"
        ct = "" if not c else (c.get("text") or f"{c['T']:.1f}")
        lines.append(f"| {x:g} | {tt} | {m if t is not None else 'no Binder crossing (see note)'} | {ct} |")
    if wh is not None:
        lines += ["", "With holes:", "", "| x | T (K) | estimator | χ maximum of the largest lattice (K) | holes |",
                  "|---|---|---|---|---|"]
        hcs = wh.hole_counts or [{}] * len(vm.fractions)  # dicts n_holes, n_vacancies, ... per x
        for x, t, e, m, c, hc in zip(vm.fractions, wh.tn_K, wh.tn_error_K, wh.methods,
                                     wh.chi_max_K or [None] * len(vm.fractions), hcs):
            tt = "not bracketed" if t is None else f"{t:.1f} ± {(e or 0):.1f}"
            ct = "" if not c else (c.get("text") or f"{c['T']:.1f}")
            lines.append(f"| {x:g} | {tt} | {m if t is not None else 'no Binder crossing (see note)'} | {ct} | "
                         f"{hc.get('n_holes', 0)} on {hc.get('n_vacancies', 0)} vacancies |")
        lines += [f"Note (with holes): {w}." for w in wh.warnings or [] if w.startswith("x = ")]
    binders = sorted(set(se.binder or []) | set((wh.binder if wh is not None else None) or []))
    if binders:
        lines.append(f"Binder cumulant: {', '.join(binders)} (the perfect lattice's choice; U4 from the "
                     "disorder-averaged moments).")
    if vm.perfect_mc_K and vm.perfect_mc_K[0] is not None:
        lines.append(f"\nPerfect lattice (mc step): {vm.perfect_mc_K[0]:.1f} ± {(vm.perfect_mc_K[1] or 0):.1f} K.")
    lines.append(f"Disorder realisations per size and x: {se.realisations}; sizes {vm.sizes}.")
    if vm.refined:
        lines.append("Two passes: a ladder over " + "–".join(f"{t:.0f}" for t in vm.t_window_K) + " K, then for "
                     "every x a ladder around its first estimate (windows " + ", ".join(
                         f"{w[0]:.0f}–{w[1]:.0f}" for w in se.t_windows_K) + " K).")
    lines.append("T is a Binder crossing bracketed inside its temperature window; a χ maximum is not an ordering "
                 "temperature (at a window edge it is only a bound).")
    lines += [f"Note: {w}." for w in vm.warnings or [] if w.startswith("x = ")]
    if se.mermin_wagner:
        lines.append("Warning: the model has a continuous symmetry in 2D (Mermin–Wagner); the temperatures are "
                     "finite-size crossovers.")
    lines += ["", f"![T(x)]({Path(vm.figure).relative_to(ctx.out)})", ""]
    return lines
