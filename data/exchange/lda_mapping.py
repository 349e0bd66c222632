"""Production run: the collinear energy mapping of a honeycomb magnet in exactly the LDA+U plane-wave settings of the
spin-spiral route (issue 17, like-for-like table) → data/exchange/<material>_lda_mapping.json, a route file that
data/exchange/make_routes.py and ``wannmag exchange compare data/exchange`` pick up.

    cd /work/main && source .venv/bin/activate && OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \\
        nohup nice -n 5 python data/exchange/lda_mapping.py CrI3 > /work/lda_mapping_CrI3.log 2>&1 &
    python data/exchange/lda_mapping.py CrI3 --dry-run      # the plan: what is done, what runs, with which settings
    python data/exchange/lda_mapping.py CrI3 --fit-only     # refit the stored configurations at any time

Every configuration is one self-consistent calculation of the spin-spiral driver (wannmag.workflows.spiral) at
q = 0: GPAW new plane-wave mode, non-collinear spinors with start moments ±2S μ_B along x, symmetry off, LDA +
Dudarev U on the metal d, the ecut, smearing, SCF criteria and ``maxiter`` of data/exchange/spiral_dft.py (its
SETTINGS are imported, not copied).  So every energy here is computed by the same code path as the spiral points:

* FM and Néel in the 2-site primitive cell ARE the spiral route's Γ points (data/exchange/spiral/<material>/): their
  stored ``parameters`` are compared key by key with the parameters this script would use and reused only if they
  are identical (recorded in the route file as ``reused_spiral_points``); a missing one is computed there, exactly
  as spiral_dft.py would; a different one is refused (one error line, nothing overwritten).
* zigzag and stripy in the 4-site rectangular (a1, a1 + 2a2) cell (wannmag.structures.honeycomb_configuration),
  plus FM in the same cell (``FM_rect``, the fifth configuration, as in the PBE+U energy mapping of
  data/dft/make_reference.py): it has the bond counts of FM per ion, so its only role is the residual: E_FM_rect −
  E_FM per ion is the k-sampling (and SCF) inconsistency between the two cells.  Optional sixth: ``ferri_rect``
  (↑↑↑↓, bond counts per ion (0, 1, 0)): an independent row, its residual tests the J1–J3 Heisenberg model itself.
  One JSON per configuration in data/exchange/lda_mapping/<material>/ (resumable; an SCF not converged within
  ``maxiter`` is stored with ``converged: false``, ``energy: null`` and excluded from every fit, named in the
  route file).
* k-points: the primitive cell's Γ-centred n×n mesh corresponds to the density n/|b1| (points per Å⁻¹ of
  wannmag.workflows.dft.kpoint_mesh, n_i = ⌈density·|b_i|⌉); the same density gives 3×2×1 for the rectangular cell
  of CrI3 (spacings 0.30 and 0.26 Å⁻¹ against 0.35 Å⁻¹ in the primitive 3×3 mesh).  No mesh of the rectangular
  cell samples exactly the primitive 3×3 points (the cell doubles the area and 3 is odd), hence FM_rect.  Bands:
  the primitive count × the number of primitive cells (the same number of empty spinor bands per cell).

Fit (wannmag.magnetism.energy_mapping.fit_exchange, bond counts from wannmag.structures.bond_counts):
E_cell/N = E0 + S² Σ_n J_n c_n/N with unknowns E0, J1, J2, J3.  FM, Néel, zigzag and stripy alone determine them
exactly (4 equations, 4 unknowns: zero residual, no error estimate); the route's J are the least-squares fit of
every converged configuration (FM_rect, ferri_rect included) — the same rule as the PBE+U energy mapping — and the
route file also holds the exactly determined fit and the "same cell" fit (rectangular-cell energies shifted by
E_FM − E_FM_rect per ion, which removes the cell's k-sampling offset exactly).  Units: energies eV per cell in the
configuration files, meV per magnetic ion in the fit; exchange meV in the internal convention H = Σ_{i<j} J S_i·S_j
(each bond once, classical spins |S| = S, J > 0 antiferromagnetic); lengths Å.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "data" / "exchange"))

import spiral_dft  # noqa: E402  (the spiral route's settings: one source)
from wannmag.errors import WannmagError  # noqa: E402
from wannmag.workflows import spiral as sp  # noqa: E402
from wannmag.workflows.dft import DFTError, kpoint_mesh, write_json_atomic  # noqa: E402

EXCHANGE = ROOT / "data" / "exchange"
NAME = "energy mapping (LDA+U, spin-spiral settings)"
#: rectangular-cell configurations: name → standard order name (honeycomb_configuration) or ±1 pattern
RECT = {"zigzag": "zigzag", "stripy": "stripy", "FM_rect": [1, 1, 1, 1], "ferri_rect": [1, 1, 1, -1]}
DEFAULT_RECT = ("zigzag", "stripy", "FM_rect")
EXACT = ("FM", "Neel", "zigzag", "stripy")
Q0 = (0.0, 0.0, 0.0)


class Plan:
    """The calculations of one material: ``items`` [(Configuration, workdir, keyword arguments of
    spiral_energies, role)] in run order, the primitive structure and the settings they come from."""

    def __init__(self, material: str, rect=DEFAULT_RECT, spiral_dir=None, work_dir=None):
        from wannmag.structures import configuration_from_pattern, honeycomb_configuration, read_structure, \
            rectangular_supercell

        if material not in spiral_dft.SETTINGS:
            raise DFTError(f"{material}: no spin-spiral settings in data/exchange/spiral_dft.py "
                           f"(materials: {', '.join(spiral_dft.SETTINGS)})")
        bad = [r for r in rect if r not in RECT]
        if bad:
            raise DFTError(f"unknown configuration {', '.join(bad)}; rectangular-cell configurations: "
                           f"{', '.join(RECT)}")
        s = spiral_dft.SETTINGS[material]
        self.material, self.settings = material, s
        self.structure = read_structure(ROOT / "data" / "structures" / s["cif"])
        self.spiral_dir = Path(spiral_dir) if spiral_dir else spiral_dft.OUT / material
        self.work_dir = Path(work_dir) if work_dir else EXCHANGE / "lda_mapping" / material
        base = dict(U=s["U"], xc="LDA", ecut=s["ecut"], maxiter=spiral_dft.MAXITER)
        kp = np.asarray(s["kpts"], int)
        b = 2 * np.pi * np.linalg.inv(self.structure.cell.array).T
        self.kdensity = float(kp[0] / np.linalg.norm(b[0]))  # points per Å⁻¹ (kpoint_mesh)
        if tuple(kpoint_mesh(self.structure, self.kdensity)) != tuple(int(x) for x in kp):
            raise DFTError(f"{material}: the spiral k-mesh {kp.tolist()} is not a constant-density mesh of the "
                           "primitive cell; the rectangular cell's mesh cannot be matched")
        self.items = []
        for name in ("FM", "Neel"):
            conf = honeycomb_configuration(self.structure, name)
            self.items.append((conf, self.spiral_dir, {**base, "kpts": tuple(int(x) for x in kp),
                                                       "nbands": s["nbands"]}, "spin-spiral Γ point"))
        P = rectangular_supercell(self.structure)
        ncell = int(round(abs(np.linalg.det(P))))
        for name in rect:
            spec = RECT[name]
            conf = (honeycomb_configuration(self.structure, spec, supercell=P) if isinstance(spec, str)
                    else configuration_from_pattern(self.structure, P, spec, name=name))
            conf.name = name
            self.items.append((conf, self.work_dir,
                               {**base, "kpts": kpoint_mesh(conf.atoms, self.kdensity),
                                "nbands": None if s["nbands"] is None else s["nbands"] * ncell},
                               "rectangular cell"))

    def parameters(self, conf, kw) -> dict:
        return sp.spiral_parameters(conf, Q0, U=kw["U"], xc=kw["xc"], ecut=kw["ecut"], kpts=kw["kpts"],
                                    nbands=kw["nbands"], maxiter=kw["maxiter"])

    def file(self, conf, workdir) -> Path:
        return workdir / sp.point_filename(conf.name, Q0)

    def stored(self):
        """[(Configuration, SpiralPoint or None (not run yet), file, role)]; a stored file whose parameters differ
        from the plan's is refused (one DFTError line naming the file and the keys)."""
        from wannmag._atomic import read_json

        out = []
        for conf, wd, kw, role in self.items:
            path = self.file(conf, wd)
            if not path.exists():
                out.append((conf, None, path, role))
                continue
            d = read_json(path, error=DFTError)
            want = self.parameters(conf, kw)
            got = d.get("parameters") if isinstance(d, dict) else None
            if got != want:
                keys = sorted(k for k in set(want) | set(got or {}) if (got or {}).get(k) != want.get(k))
                raise DFTError(f"{path}: holds a calculation with other settings than the LDA+U mapping's "
                               f"(differing: {', '.join(keys)}); not reused, not overwritten")
            out.append((conf, sp.SpiralPoint.from_dict(d), path, role))
        return out


def rel(path) -> str:
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def _fit(records, distances, spin):
    from wannmag.magnetism.energy_mapping import FitError, fit_exchange

    try:
        f = fit_exchange(records, n_shells=3, spin=spin, distances=distances)
    except FitError as exc:
        return None, str(exc)
    return f, None


def _fit_dict(f, exact: bool) -> dict:
    return {"J_meV": [float(x) for x in f.J], "E0_meV_per_ion": float(f.E0),
            "configurations": [r.name for r in f.records],
            "residuals_meV_per_ion": {r.name: round(float(x), 6) for r, x in zip(f.records, f.residuals)},
            "condition_number": round(float(f.condition_number), 4),
            "stderr_meV": None if exact or f.stderr is None else [round(float(x), 5) for x in f.stderr]}


def fit_plan(plan: Plan, out=None, fit_seconds_extra: float = 0.0) -> dict:
    """The route document of the stored configurations (module docstring); written to ``out`` if given."""
    from wannmag.magnetism.energy_mapping import records_from_configurations

    t0 = time.perf_counter()
    rows = plan.stored()
    good = [(c, p, f, r) for c, p, f, r in rows if p is not None and p.converged and p.energy is not None]
    not_converged = [{"configuration": c.name, "file": rel(f), "iterations": p.iterations, "error": p.error}
                     for c, p, f, r in rows if p is not None and not (p.converged and p.energy is not None)]
    not_run = [c.name for c, p, f, r in rows if p is None]
    spin = float(rows[0][0].sublattice.spins[0])
    fits, J, reason, distances = {}, [None, None, None], "", None
    records = []
    if good:
        records, distances = records_from_configurations(plan.structure, [c for c, *_ in good],
                                                         [p.energy for _, p, *_ in good], n_shells=3)
        distances = [float(x) for x in distances]
    by = {r.name: r for r in records}
    e = {r.name: r.energy_per_site_meV() for r in records}
    main, err = _fit(records, distances, spin) if records else (None, "no converged configuration")
    if main is not None:
        fits["all converged (least squares; the route's J)"] = _fit_dict(main, len(records) == 4)
        J = [float(x) for x in main.J]
    else:
        reason = f"{len(good)} of {len(rows)} configurations converged ({', '.join(by) or 'none'}): {err}"
    if all(n in by for n in EXACT) and len(records) > 4:
        f4, err4 = _fit([by[n] for n in EXACT], distances, spin)
        fits["FM, Néel, zigzag, stripy (exactly determined)"] = _fit_dict(f4, True) if f4 else {"error": err4}
    if "FM_rect" in by and "FM" in by:
        shift = e["FM"] - e["FM_rect"]  # meV per ion, added to every rectangular-cell configuration
        rect = {c.name for c, p, f, role in rows if role == "rectangular cell"}
        same = [replace(r, energy=r.energy + shift * r.n_sites / 1000.0) if r.name in rect else r
                for r in records if r.name != "FM_rect"]  # records_from_configurations: eV per cell
        fs, errs = _fit(same, distances, spin)
        fits["same cell (rectangular-cell energies referenced to FM_rect)"] = (
            {**_fit_dict(fs, len(same) == 4), "shift_meV_per_ion": round(shift, 6)} if fs else {"error": errs})
    t_fit = time.perf_counter() - t0 + fit_seconds_extra
    conf_rows = {}
    for c, p, f, role in rows:
        row = {"file": rel(f), "role": role, "pattern": [int(x) for x in c.pattern], "n_sites": int(c.n_sites),
               "supercell": np.asarray(c.supercell, int).tolist(), "status": "not run yet"}
        if p is not None:
            mags = [float(np.linalg.norm(p.moments[i])) for i in p.site_indices] if p.moments else []
            row.update({"status": "converged" if p.converged and p.energy is not None else "not converged",
                        "energy_eV_per_cell": p.energy, "kpts": p.parameters.get("kpts"),
                        "nbands": p.parameters.get("nbands"), "iterations": p.iterations, "seconds": p.seconds,
                        "site_moment_norms_muB": [round(m, 3) for m in mags], "tilt_deg": p.tilt_deg,
                        "gap_eV": p.gap, "code_version": p.code_version, "error": p.error})
            if c.name in by:
                row["energy_meV_per_ion"] = e[c.name]
        conf_rows[c.name] = row
    p0 = next((p for _, p, *_ in rows if p is not None), None)
    dft = {"code": f"gpaw {p0.code_version}" if p0 else None,
           "mode": "new-GPAW plane waves, non-collinear spinors at q = 0 (the spin-spiral driver), symmetry off",
           "xc": "LDA", "U_eV": {k: v for k, v in (p0.parameters["U"] if p0 else {}).items()},
           "ecut": plan.settings["ecut"], "kdensity_points_per_inv_A": round(plan.kdensity, 4),
           "kpts": {c.name: list(kw["kpts"]) for c, _, kw, _ in plan.items},
           "nbands": {c.name: kw["nbands"] for c, _, kw, _ in plan.items},
           "smearing_eV": p0.parameters["smearing"] if p0 else None,
           "convergence": p0.parameters["convergence"] if p0 else None, "maxiter": spiral_dft.MAXITER,
           "geometry": "unrelaxed prototype (data/structures)"}
    reused = {c.name: {"file": rel(f), "identical_parameters": True} for c, p, f, role in rows
              if p is not None and role == "spin-spiral Γ point"}
    settings = {"configurations": list(by), "dft": dft, "fits": fits, "reused_spiral_points": reused,
                "determination": ("exactly determined: 4 configurations for 4 unknowns (E0, J1, J2, J3), zero "
                                  "residual, no error estimate" if len(records) == 4 else
                                  f"least squares: {len(records)} configurations for 4 unknowns"),
                "not_converged": not_converged, "not_run": not_run, "fit_seconds": round(t_fit, 3)}
    if main is not None:
        settings.update({"condition_number": round(float(main.condition_number), 4),
                         "residuals_meV_per_ion": fits["all converged (least squares; the route's J)"]
                         ["residuals_meV_per_ion"],
                         "stderr_meV": fits["all converged (least squares; the route's J)"]["stderr_meV"],
                         "distances_A": [round(x, 4) for x in distances]})
    if "Neel" in e and "FM" in e:
        settings["E_Neel_minus_E_FM_meV_per_ion"] = round(e["Neel"] - e["FM"], 4)
    if "FM_rect" in e and "FM" in e:
        settings["k_sampling_check_meV_per_ion"] = round(e["FM_rect"] - e["FM"], 4)
    dft_s = {c.name: p.seconds for c, p, *_ in rows if p is not None and p.seconds is not None}
    doc = {"material": plan.material, "spin": spin, "distances": distances, "name": NAME,
           "J1": J[0], "J2": J[1], "J3": J[2],
           "method": "least squares of self-consistent total energies of collinear states (FM, Néel: the spin-spiral "
                     "route's Γ points; zigzag, stripy, FM in the 4-site rectangular cell), all in GPAW's "
                     "non-collinear plane-wave LDA+U mode at q = 0 with the spin-spiral settings",
           "reference": "FM, Néel, zigzag, stripy",
           "convention": "meV; H = sum_{i<j} J S_i.S_j, each bond once, classical spins |S| = S, J > 0 AF",
           "settings": settings,
           "seconds": {"total": round(sum(dft_s.values()) + t_fit, 1), "dft_per_configuration": dft_s,
                       "fit": round(t_fit, 3),
                       "note": "FM and Néel are shared with the spin-spiral route (their wall time is counted in "
                               "both)"},
           "configurations": conf_rows,
           "made_by": "data/exchange/lda_mapping.py",
           "date": datetime.now(timezone.utc).strftime("%Y-%m-%d")}
    if main is None:
        doc["status"] = "not computed"
        doc["reason"] = reason
    if out is not None:
        write_json_atomic(out, doc)
    return doc


def summary(doc: dict) -> str:
    if doc.get("status") == "not computed":
        return f"{doc['material']}: no J yet: {doc['reason']}"
    st = doc["settings"]
    res = ", ".join(f"{k} {v:+.3f}" for k, v in st["residuals_meV_per_ion"].items())
    return (f"{doc['material']} {NAME}: J1, J2, J3 = " + ", ".join(f"{x:+.3f}" for x in (doc['J1'], doc['J2'],
                                                                                           doc['J3']))
            + f" meV ({st['determination']}; residuals meV/ion: {res})")


def run(plan: Plan, out, log=print) -> dict:
    """Compute every missing configuration (resumable), refitting after each one."""
    doc = None
    for conf, wd, kw, role in plan.items:
        plan.stored()  # refuse a mismatched stored file before any calculation
        sp.spiral_energies(conf, [Q0], workdir=wd, log=log, **kw)
        doc = fit_plan(plan, out)
        log(summary(doc))
    return doc


def describe(plan: Plan) -> str:
    lines = [f"{plan.material}: LDA+U energy mapping with the spin-spiral settings (ecut {plan.settings['ecut']:g} eV, "
             f"U {plan.settings['U']:g} eV, k-density {plan.kdensity:.3f} per Å⁻¹, maxiter {spiral_dft.MAXITER})"]
    for (conf, wd, kw, role), (_, p, f, _) in zip(plan.items, plan.stored()):
        state = ("to run" if p is None else "done, converged" if p.converged else "done, NOT converged")
        lines.append(f"  {conf.name:>10s}  {conf.n_sites} sites  k {'×'.join(map(str, kw['kpts']))}  bands "
                     f"{kw['nbands']}  {role}: {state}  ({rel(f)})")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("material", help=f"one of {', '.join(spiral_dft.SETTINGS)}")
    ap.add_argument("--configs", nargs="+", default=list(DEFAULT_RECT), metavar="NAME",
                    help=f"rectangular-cell configurations, in run order (default {' '.join(DEFAULT_RECT)}; also "
                         "ferri_rect)")
    ap.add_argument("--fit-only", action="store_true", help="refit the stored configurations, run nothing")
    ap.add_argument("--dry-run", action="store_true", help="print the plan, run nothing, write nothing")
    ap.add_argument("--spiral-dir", type=Path, help="spin-spiral point files (default data/exchange/spiral/MAT)")
    ap.add_argument("--work-dir", type=Path, help="rectangular-cell files (default data/exchange/lda_mapping/MAT)")
    ap.add_argument("--out", type=Path, help="route file (default data/exchange/MAT_lda_mapping.json)")
    args = ap.parse_args(argv)
    try:
        # configurations already stored are always part of the plan (resumed, never re-run): running a subset
        # (e.g. --configs FM_rect) must not write a route file fitted to that subset alone
        wd = args.work_dir or EXCHANGE / "lda_mapping" / args.material
        stored = [c for c in RECT if (wd / sp.point_filename(c, Q0)).exists()]
        plan = Plan(args.material, list(dict.fromkeys([*args.configs, *stored])), args.spiral_dir, args.work_dir)
        out = args.out or EXCHANGE / f"{args.material}_lda_mapping.json"
        if args.dry_run:
            print(describe(plan))
            return 0
        if args.fit_only:
            print(summary(fit_plan(plan, out)), flush=True)
            return 0
        print(describe(plan), flush=True)
        doc = run(plan, out, log=lambda m: print(m, flush=True))
        print(summary(doc), flush=True)
        return 0
    except WannmagError as exc:
        print(f"lda_mapping.py: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
