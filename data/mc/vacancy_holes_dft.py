"""Issue 18, step 1–2: the NEUTRAL V-vacancy cell of VPS3 (2×2 supercell, V7P8S24, two holes per vacancy) with the
holes placed on chosen V sites by their start moments (V3+, d², 2 μB instead of 3 μB), converged with Fermi–Dirac
smearing and a damped density mixer; several placements and U values, all reported.

A thin caller of the package (the same steps as ``wannmag run --vacancies X --vacancy-charge neutral``, kept for its
resumable files and work directories): one SCF and its record by :func:`wannmag.workflows.vacancy.neutral_scf_record`
(GPAW through :func:`~wannmag.workflows.vacancy.neutral_gpaw_engine`), where the holes went by
:func:`wannmag.magnetism.vacancy_holes.placement_run`, the fit's design by :func:`~wannmag.magnetism.vacancy_holes.
fit_design` and the fit itself by :func:`~wannmag.magnetism.vacancy_holes.fit_cell` (exclusions, --keep-moved,
--absorb-constant, residuals, E_DFT − E_model of the excluded configurations).  This file only keeps its own files:
which settings, U and configurations to run, the result files and their merging between instances.

Resumable: every finished SCF is cached by wannmag.workflows.dft.run_dft in WORK/<U>/<name>/summary.json; an SCF that
did not converge is recorded as such (never as an energy).  Results: data/mc/VPS3_vacancy_holes_dft.json.

    OMP_NUM_THREADS=1 nice -n 5 python data/mc/vacancy_holes_dft.py [--U 3 2 4] [--placements none near far near_far]
        [--smearing 0.05] [--work /work/runs/vacancy_holes]

Fit mode (issue 18 item 3): the exchange of the doped cell with the holes held at one placement,

    OMP_NUM_THREADS=1 nice -n 5 python data/mc/vacancy_holes_dft.py --fit near --U 3 [--smearing 0.05]
        [--mixer damped] [--maxiter 200] [--n-configs N] [--fit-J23] [--fixmagmom] [--work /work/runs/vacancy_holes]

runs the D-optimal spin configurations of wannmag.magnetism.vacancy_holes.choose_hole_patterns (the Néel order
first: it is the placement run's own calculation, read from the same work directory) through run_dft with the
placement mode's settings, resumable per configuration (a converged one from run_dft's summary.json, an
unconverged one from the result file; --retry-unconverged runs those again), checks in every converged
configuration that the spins kept their signs and the holes stayed on the placed sites (locate_holes), excludes the
others with a warning, fits E = E_0 + Σ_class J_class Σ_bonds S_i S_j σ_i σ_j (S = 1 on the holes, 3/2 elsewhere;
J2, J3 held at the perfect crystal's energy-mapping values unless --fit-J23) and writes data/mc/VPS3_vacancy_holes.json
(read-modify-write under a lock: keys of other writers such as "TN_vs_x" are kept).

Settings: fast preset (LCAO dzp, h = 0.2 Å, the package's k-density 5.5 Å → 4×4 k in the 2×2 cell, 7 irreducible points), PBE+U on V d,
mixer beta 0.02 / nmaxold 8 / weight 100 (damped, for a metal with a soft spin density), up to 200 iterations.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))

from wannmag._atomic import atomic_write_json, locked_dir  # noqa: E402
from wannmag.errors import WannmagError  # noqa: E402
from wannmag.magnetism.vacancy_holes import (HoleError, constraint_warnings, fit_cell, fit_design,  # noqa: E402
                                             locate_holes, placement_run, start_moments)
from wannmag.workflows.vacancy import (NEUTRAL_MIXERS, hole_placements_of, make_vacancy_cell,  # noqa: E402
                                       neutral_gpaw_engine, neutral_record, neutral_scf_record, start_pattern,
                                       vacancy_configuration)

STRUCTURE = str(ROOT / "data/structures/VPS3_monolayer.cif")
OUT = HERE / "VPS3_vacancy_holes_dft.json"
FIT_OUT = HERE / "VPS3_vacancy_holes.json"
SPIN_MODEL = HERE / "VPS3_fast_spin_model.json"  # perfect crystal, energy mapping J1, J2, J3 (fast preset, U = 3 eV)
SPIN_MODEL_U = 3.0  # eV (README: VPS3 energy mapping, PBE+U 3 eV on V d)
#: the package's named mixers of the neutral cell (damped: session 6's; default: GPAW's MSR1; dif: MixerDif, Pulay)
MIXERS = NEUTRAL_MIXERS


def main(argv=None, engine=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--U", type=float, nargs="+", default=[3.0])
    ap.add_argument("--placements", nargs="+", default=["near", "far", "none", "near_far"])
    ap.add_argument("--smearing", type=float, nargs="+", default=[0.05])
    ap.add_argument("--maxiter", type=int, default=200)
    ap.add_argument("--work", default="/work/runs/vacancy_holes")
    ap.add_argument("--mixer", default="damped", choices=sorted(MIXERS))
    ap.add_argument("--fixmagmom", action="store_true",
                    help="keep the cell moment at the sum of the start moments (GPAW fixed-moment occupations): removes "
                         "the slow moment drift seen in the free SCF; a constraint, recorded; in the fit mode every "
                         "configuration's moment is held at its own start moments' sum")
    ap.add_argument("--density", type=float, default=None, metavar="TOL",
                    help="SCF density criterion (electrons per valence electron) instead of the package's 1e-5, e.g. "
                         "GPAW's default 1e-4 (the neutral cell's density change has a floor near 4e-5); recorded")
    ap.add_argument("--fit", metavar="PLACEMENT", help="fit mode: the exchange of the doped cell with the holes at "
                    "this placement (near, far, near_far)")
    ap.add_argument("--n-configs", type=int, help="fit mode: number of configurations (default unknowns + 3: two "
                    "residual degrees of freedom)")
    ap.add_argument("--fit-J23", action="store_true", help="fit mode: fit J2 and J3 too (default: perfect crystal)")
    ap.add_argument("--min-dof", type=int, default=1, help="fit mode: refuse the fit with fewer residual degrees of "
                    "freedom left after exclusions")
    ap.add_argument("--retry-unconverged", action="store_true", help="fit mode: run unconverged configurations again")
    ap.add_argument("--configs", type=int, nargs="+", help="fit mode: run only these configurations (1-based, as "
                    "--plan lists them; two instances with disjoint sets share the work; the fit is made by the "
                    "instance that finds them all recorded)")
    ap.add_argument("--keep-moved", action="store_true", help="fit mode: use converged configurations whose holes "
                    "left the placed sites too (spin signs kept): effective couplings of the holes' actual states; "
                    "the residuals say how far from fixed-hole Heisenberg the energies are")
    ap.add_argument("--absorb-constant", action="store_true", help="fit mode: a class with the same sum in every "
                    "configuration used (not determined by them) goes into E0 (J null, said) instead of refusing")
    ap.add_argument("--available", action="store_true", help="fit mode: fit the configurations computed so far, starting no SCF (with --configs: run those first) "
                    "(the design's others are named as not computed in the result; the fit still needs --min-dof "
                    "residual degrees of freedom among the usable ones)")
    ap.add_argument("--plan", action="store_true", help="fit mode: print the configurations and which are done, run "
                    "nothing")
    ap.add_argument("--out", default=str(FIT_OUT), help="fit mode: result file")
    ap.add_argument("--cells-from", default=str(OUT), help="fit mode: the placement runs' file (for 'cells')")
    a = ap.parse_args(argv)
    if a.fit is not None:
        try:
            return fit_mode(a, engine=engine)
        except WannmagError as exc:
            print(f"wannmag: error: {exc}", file=sys.stderr)
            return 2

    engine = engine or gpaw_engine
    cell = make_vacancy_cell(STRUCTURE)
    pattern = start_pattern(STRUCTURE, cell, "Neel")
    places = {p.name: p for p in hole_placements_of(STRUCTURE, cell)}
    places["none"] = None  # every V starts as V2+ (3 μB): where do the holes go by themselves?
    data = json.loads(OUT.read_text()) if OUT.exists() else {"cells": []}
    data.update({"structure": "data/structures/VPS3_monolayer.cif", "supercell": cell.supercell,
                 "vacancy_site": cell.site, "near_sites": cell.near_sites, "pattern": pattern,
                 "placements": {k: (v.as_dict() if v else None) for k, v in places.items()},
                 "settings": {"preset": "fast (LCAO dzp)", "xc": "PBE", "mixers": MIXERS, "maxiter": a.maxiter},
                 "convention": "moments: PAW-sphere, μB; energies eV per 39-atom cell"})
    done = {(c["U_eV"], c["placement"], c["smearing_eV"], c.get("mixer", "damped"), c.get("density_tol"),
             bool(c.get("fixmagmom"))) for c in data["cells"]}
    for U in a.U:
        for width in a.smearing:
            for name in a.placements:
                if (U, name, width, a.mixer, a.density, a.fixmagmom) in done:
                    continue
                hp = places[name]
                conf = vacancy_configuration(STRUCTURE, cell, pattern, holes=hp)
                print(f"[vacancy holes] U = {U} eV, smearing {width} eV, placement {name}: {conf.name}", flush=True)
                r = _scf(engine, conf, U, _workdir(a.work, U, width, a.mixer, a.density, a.fixmagmom), width, a)
                run = placement_run(name, hp, pattern, r, cell.spin, 1.0, 2)  # where the two holes went
                rec = {"U_eV": U, "placement": name, "smearing_eV": width, "mixer": a.mixer, "density_tol": a.density,
                       "fixmagmom": a.fixmagmom, "name": conf.name, "hole_sites": hp.sites if hp else [],
                       **{k: v for k, v in r.items() if k not in ("name", "pattern")}}
                if run.converged:
                    rec.update({"holes_found": run.holes_found,
                                "metal": bool(r.get("gap_eV") is not None and r["gap_eV"] < 0.05)})
                print(f"[vacancy holes] -> {json.dumps({k: rec.get(k) for k in ('converged', 'energy_eV', 'V_moments', 'gap_eV', 'scf_iterations', 'wall_s')})}",
                      flush=True)
                if OUT.exists():  # another instance (other mixer / U) may have written meanwhile: merge
                    data["cells"] = json.loads(OUT.read_text()).get("cells", data["cells"])
                data["cells"].append(rec)
                atomic_write_json(OUT, data)
    conv = [c for c in data["cells"] if c.get("converged")]
    for U in sorted({c["U_eV"] for c in conv}):
        cs = [c for c in conv if c["U_eV"] == U]
        best = min(cs, key=lambda c: c["energy_eV"])
        data.setdefault("lowest", {})[f"{U:g}"] = {"placement": best["placement"], "energy_eV": best["energy_eV"],
                                                   "relative_meV": {c["placement"]: round(1000 * (c["energy_eV"] - best["energy_eV"]), 1) for c in cs}}
    atomic_write_json(OUT, data)


# ------------------------------------------------------------------------------------------------------ fit mode
def _workdir(work: str, U: float, width: float, mixer: str, density=None, fixmagmom: bool = False) -> str:
    """The run directory of the placement mode (the same for the fit mode), so that the Néel configuration of a
    placement is read back instead of recomputed."""
    return (f"{work}/U{U:g}_w{width:g}" + ("" if mixer == "damped" else f"_{mixer}")
            + ("" if density is None else f"_d{density:g}") + ("_fixm" if fixmagmom else ""))


def gpaw_engine(conf, U, workdir, smearing, mixer, maxiter, density_tol=None, fixmagmom=False) -> dict:
    """One configuration with the placement mode's settings (the package's neutral-cell GPAW engine and record,
    :func:`~wannmag.workflows.vacancy.neutral_gpaw_engine`, ``mixer`` a name of :data:`MIXERS`); an unconverged SCF
    raises DFTError (a WannmagError).  ``fixmagmom``: the configuration's total moment is held at the sum of its
    start moments (3 μB per V2+ and 2 μB per hole, with the configuration's signs) — the integer moment of localised
    V moments; a constraint, recorded."""
    return neutral_record(neutral_gpaw_engine(None, conf, "fast", U, workdir, smearing=smearing, mixer=MIXERS[mixer],
                                              maxiter=maxiter, density_tol=density_tol, fixmagmom=fixmagmom))


def _scf(engine, conf, U, workdir, width, a) -> dict:
    """The record of one SCF (:func:`~wannmag.workflows.vacancy.neutral_scf_record`: converged or not, never an
    energy of an unconverged one); ``engine(conf, U, workdir, smearing, mixer name, maxiter[, density_tol=]
    [, fixmagmom=])`` as :func:`gpaw_engine`."""
    return neutral_scf_record(conf, lambda: engine(conf, U, workdir, width, a.mixer, a.maxiter,
                                                   **({"density_tol": a.density} if a.density is not None else {}),
                                                   **({"fixmagmom": True} if a.fixmagmom else {})))


_locked = locked_dir  # one lock for both writers of data/mc/VPS3_vacancy_holes.json


def _merge_write(path: Path, top: dict | None, fit_key: str, block: dict) -> dict:
    """Read the newest ``path``, set ``fits[fit_key] = block`` — its configuration records merged by name with those
    already stored there (another instance may run other configurations of the same fit) — and the top-level keys
    ``top`` (None: leave them); keep every other key (e.g. "TN_vs_x" of another script); write atomically."""
    with _locked(path):
        data = json.loads(path.read_text()) if path.exists() else {}
        fits = data.setdefault("fits", {})
        new = {r["name"]: r for r in block.get("configurations", [])}
        kept = [r for r in (fits.get(fit_key) or {}).get("configurations", []) if r["name"] not in new]
        order = {tuple(p): k for k, p in enumerate(block.get("design", {}).get("patterns", []))}
        recs = sorted(kept + list(new.values()), key=lambda r: order.get(tuple(r["pattern"]), len(order)))
        fits[fit_key] = dict(block, configurations=recs)
        if top:
            data.update(top)
        atomic_write_json(path, data)
    return data


def _old_records(path: Path, U: float, placement: str, width: float, mixer: str, fixmagmom: bool = False) -> dict:
    """Configuration records (by name) computed earlier with these settings by any fit of this placement; a
    converged record wins over an unconverged one."""
    old: dict = {}
    if not path.exists():
        return old
    for b in json.loads(path.read_text()).get("fits", {}).values():
        if (b.get("U_eV"), b.get("placement"), b.get("smearing_eV"), b.get("mixer"),
                bool(b.get("fixmagmom"))) == (U, placement, width, mixer, bool(fixmagmom)):
            for r in b.get("configurations", []):
                if not (old.get(r["name"]) or {}).get("converged"):
                    old[r["name"]] = {q: v for q, v in r.items() if q not in ("used", "excluded_because", "check")}
    return old


def _cells(path: Path, U: float) -> list:
    """The placement runs at ``U`` (converged: energy, V moments, gap, holes found; unconverged: no energy)."""
    if not path.exists():
        return []
    out = []
    for c in json.loads(path.read_text()).get("cells", []):
        if float(c.get("U_eV", -1)) != float(U):
            continue
        rec = {"placement": c.get("placement"), "smearing_eV": c.get("smearing_eV"),
               "mixer": c.get("mixer") or "damped", "fixmagmom": bool(c.get("fixmagmom")),
               "converged": bool(c.get("converged"))}
        if rec["converged"]:
            rec.update({"energy_eV": c.get("energy_eV"), "V_moments": c.get("V_moments"), "gap_eV": c.get("gap_eV"),
                        "scf_iterations": c.get("scf_iterations"),
                        "holes_found": (c.get("holes_found") or {}).get("sites"),
                        "holes_localised": (c.get("holes_found") or {}).get("localised")})
        else:
            rec.update({"energy_eV": None, "reason": c.get("reason")})
        out.append(rec)
    return out


def fit_mode(a, engine=None) -> int:
    """The fit mode of the module docstring; returns 0 for a fit, 1 when the fit is refused (recorded as such)."""
    engine = engine or gpaw_engine
    out = Path(a.out)
    if len(a.U) != 1 or len(a.smearing) != 1:
        raise WannmagError(f"{Path(__file__).name}: --fit runs one U and one smearing width at a time")
    U, width = float(a.U[0]), float(a.smearing[0])
    cell = make_vacancy_cell(STRUCTURE)
    places = {p.name: p for p in hole_placements_of(STRUCTURE, cell)}
    if a.fit not in places:
        raise WannmagError(f"{Path(__file__).name}: --fit {a.fit}: not a hole placement of the vacancy cell "
                           f"(one of {', '.join(sorted(places))})")
    hp = places[a.fit]
    meta = json.loads(SPIN_MODEL.read_text())["meta"]
    perfect = [float(v) for v in meta["J_meV"]]
    fixed = {} if a.fit_J23 else {"J2": perfect[1], "J3": perfect[2]}
    j23_note = None
    if fixed and U != SPIN_MODEL_U:
        j23_note = (f"J2, J3 held at the perfect crystal's values at U = {SPIN_MODEL_U:g} eV, not at U = {U:g} eV "
                    "(an approximation; --fit-J23 fits them in this cell)")
        print(f"[vacancy holes fit] warning: {j23_note}", flush=True)
    bonds, unknowns, design = fit_design(cell.bonds, cell.near_sites, hp, cell.spin, cell.n_sites,
                                         start=start_pattern(STRUCTURE, cell, "Neel"), fit_j23=a.fit_J23,
                                         n_configs=a.n_configs)
    key = (f"U{U:g}/{hp.name}/w{width:g}/{a.mixer}/n{len(design.patterns)}" + ("/J23" if a.fit_J23 else "")
           + ("/fixm" if a.fixmagmom else "") + ("/moved" if a.keep_moved else "") + ("/abs" if a.absorb_constant else ""))
    old = _old_records(out, U, hp.name, width, a.mixer, a.fixmagmom)
    wd = _workdir(a.work, U, width, a.mixer, a.density, a.fixmagmom)
    block = {"U_eV": U, "placement": hp.name, "hole_sites": hp.sites, "smearing_eV": width, "mixer": a.mixer, "density_tol": a.density,
             "fixmagmom": a.fixmagmom, "mixer_settings": MIXERS[a.mixer], "maxiter": a.maxiter, "preset": "fast (LCAO dzp)", "xc": "PBE",
             "design": design.as_dict(), "configurations": [], "status": "running"}
    print(f"[vacancy holes fit] U = {U:g} eV, placement {hp.name} (holes on {hp.sites}): unknowns E0, "
          f"{', '.join(unknowns)}; fixed {fixed or 'none'}; {len(design.patterns)} configurations, condition number "
          f"{design.condition_number:.3g}, {design.dof} residual degrees of freedom", flush=True)
    confs = [vacancy_configuration(STRUCTURE, cell, p, holes=hp) for p in design.patterns]
    if a.plan:
        for k, (p, conf) in enumerate(zip(design.patterns, confs)):
            prev = old.get(conf.name) or {}
            state = ("converged (recorded)" if prev.get("converged") else "NOT converged (recorded)" if prev else
                     "converged (run_dft summary)" if Path(wd, conf.name, "summary.json").exists() else "to run")
            sm = " ".join(f"{m:+g}" for m in start_moments(p, conf.sublattice.spins))
            print(f"  {k + 1}. {conf.name}  start moments {sm}  [{state}]")
        return 0
    # --available without --configs fits what is recorded and starts no SCF (another instance may be running the
    # missing ones in the same work directories: a second GPAW there would overwrite its files)
    todo = [k - 1 for k in a.configs] if a.configs else ([] if a.available else range(len(design.patterns)))
    bad = [k + 1 for k in todo if not 0 <= k < len(design.patterns)]
    if bad:
        raise WannmagError(f"{Path(__file__).name}: --configs {bad}: the fit has configurations "
                           f"1..{len(design.patterns)}")
    for k in todo:
        conf = confs[k]
        prev = _old_records(out, U, hp.name, width, a.mixer, a.fixmagmom).get(conf.name)  # another instance may have run it
        if prev and (prev.get("converged") or (not a.retry_unconverged and (prev.get("maxiter") or 0) >= a.maxiter)):
            print(f"[vacancy holes fit] {conf.name} ({k + 1}/{len(design.patterns)}): recorded earlier "
                  f"({'converged' if prev.get('converged') else 'NOT converged'})", flush=True)
            continue
        print(f"[vacancy holes fit] {conf.name} ({k + 1}/{len(design.patterns)}): running", flush=True)
        rec = dict(_scf(engine, conf, U, wd, width, a), maxiter=a.maxiter)
        if rec["converged"]:
            rec["holes_found"] = locate_holes(rec["V_moments"], spin=cell.spin, spin_hole=hp.spin_hole,
                                              n_holes=len(hp.sites))
            print(f"[vacancy holes fit] {conf.name}: E = {rec['energy_eV']:.6f} eV, V moments "
                  f"{', '.join(f'{m:+.2f}' for m in rec['V_moments'])}", flush=True)
        else:
            print(f"[vacancy holes fit] {conf.name}: NOT converged: {rec['reason']}", flush=True)
        _merge_write(out, None, key, dict(block, configurations=[rec]))
    old = _old_records(out, U, hp.name, width, a.mixer, a.fixmagmom)
    all_names = [c.name for c in confs]
    missing = [n for n in all_names if n not in old]
    recs = [old[n] for n in all_names if n in old]
    block["configurations"] = recs
    if missing and a.available:
        print(f"[vacancy holes fit] --available: fitting without {', '.join(missing)} (not computed)", flush=True)
    if missing and not a.available:
        block["status"] = f"incomplete: not yet computed {', '.join(missing)}"
        _merge_write(out, None, key, block)
        print(f"[vacancy holes fit] no fit yet: configurations {', '.join(missing)} not computed (another instance "
              "with --configs?)", flush=True)
        return 0
    try:  # the package's fit flow (the one of wannmag run's vacancy_fit)
        cf = fit_cell(bonds, hp, cell.spin, recs, unknowns, fixed=fixed, min_dof=a.min_dof, keep_moved=a.keep_moved,
                      absorb_constant=a.absorb_constant)
    except HoleError as exc:
        block.update({"status": f"fit refused: {exc}", "configurations": [dict(r, used=False) for r in recs],
                      "J_meV": None})
        print(f"[vacancy holes fit] fit refused: {exc}", flush=True)
        data = _merge_write(out, None, key, block)
        if "J_meV" not in data:  # no fit at all yet: the top level says so
            _merge_write(out, {"U_eV": U, "cells": _cells(Path(a.cells_from), U), "J_meV": None,
                               "status": f"no fit: {key}: {exc}"}, key, block)
        return 1
    fit, annotated = cf.fit, cf.records
    warns = cf.warnings + constraint_warnings(recs, width)
    # converged configurations the fit could not use because their holes left the placed sites: what the
    # localised-hole Heisenberg model misses there (DFT − model, meV per cell; < 0: the mobile holes gain energy)
    for r in annotated:
        if r["name"] in cf.beyond_heisenberg_meV:
            print(f"[vacancy holes fit] {r['name']} (excluded: {r['excluded_because']}): DFT − localised-hole model "
                  f"= {cf.beyond_heisenberg_meV[r['name']]:+.1f} meV per cell", flush=True)
    for w in warns:
        print(f"[vacancy holes fit] warning: {w}", flush=True)
    J = {c: fit.J.get(c) for c in ("V2-V2_bulk", "next_to_vacancy", "V2-V3")}
    J.update({c: v for c, v in fit.J.items() if c not in J})
    notes = [f"{c}: no such bond in the 2x2 vacancy cell with holes on {hp.sites}" for c, v in J.items()
             if v is None and c not in fit.absorbed]
    notes += cf.notes("--keep-moved")
    notes += [j23_note] if j23_note else []
    notes += [f"configurations of the design not computed (fit of those available, --available): "
              f"{', '.join(missing)}"] if missing else []
    residual = {"per_configuration": cf.residuals_meV, "rms": cf.rms_meV, "max_abs": cf.max_abs_meV, "dof": cf.dof}
    block.update({
        "status": cf.status,
        "convention": "H = sum_{i<j} S_i.J_ij.S_j, each bond once, |S_i| = 1 on the hole (V3+) sites, 3/2 on V2+; "
                      "J > 0 AF; meV; energies eV per 39-atom cell",
        "J_meV": J, "J_stderr_meV": fit.stderr, "J_fixed_meV": fit.fixed, "J_notes": notes,
        "J_perfect_crystal_meV": {"J1": perfect[0], "J2": perfect[1], "J3": perfect[2], "U_eV": SPIN_MODEL_U,
                                  "source": "data/mc/VPS3_fast_spin_model.json meta (energy mapping, fast preset)"},
        # a ratio to the crystal's J1 only at the crystal's U (at another U it would mix a U change into it)
        "J_over_perfect_J1": ({c: (None if v is None else v / perfect[0]) for c, v in J.items()
                               if c in ("V2-V2_bulk", "next_to_vacancy", "V2-V3", "V3-V3")} if U == SPIN_MODEL_U
                              else f"not given: the perfect crystal's J1 is known at U = {SPIN_MODEL_U:g} eV only, "
                                   f"not at U = {U:g} eV"),
        "residual_meV": residual,
        "E0_eV": fit.E0_eV, "rank": fit.rank, "condition_number": fit.condition_number, "spins": fit.spins,
        "configurations": annotated, "warnings": warns, "not_computed": missing,
        "beyond_heisenberg_meV": {"per_configuration": cf.beyond_heisenberg_meV,
                                  "meaning": "E_DFT - E_model of converged configurations excluded from the fit "
                                             "(holes not on the placed sites), the model being this fit with the "
                                             "holes held on the placed sites; meV per 39-atom cell"}})
    top = {"U_eV": U, "placement": hp.name, "cells": _cells(Path(a.cells_from), U), "J_meV": J,
           "J_stderr_meV": fit.stderr, "J_fixed_meV": fit.fixed, "J_notes": notes,
           "J_perfect_crystal_meV": block["J_perfect_crystal_meV"], "residual_meV": residual,
           "configurations": annotated, "fit_key": key, "status": block["status"],
           "beyond_heisenberg_meV": block["beyond_heisenberg_meV"],
           "top_level": "the most recent successful fit; every fit (also refused ones) under 'fits'"}
    _merge_write(out, top, key, block)
    kind = cf.kind if cf.effective else "J (meV)"
    print(f"[vacancy holes fit] {kind}: {json.dumps(J)}; residuals rms {cf.rms_meV:.3f} meV "
          f"(dof {cf.dof}); written {out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
