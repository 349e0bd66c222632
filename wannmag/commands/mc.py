"""``wannmag mc``: classical Monte Carlo (parallel tempering) of a spin model — ordering temperature from the C and χ
peaks and Binder crossings over several sizes, optional site dilution, checkpoint/resume, JSON + plots.

Spin model convention: H = Σ_{i<j} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i − gμ_B B·S_i, each bond once, classical spins of
length S, J > 0 antiferromagnetic, meV; temperatures in K.
"""

from __future__ import annotations

import json
import math
import sys
import warnings
from pathlib import Path

from ..errors import WannmagError
from ._common import EPILOG, FORMATTER


def _check(args) -> None:
    if not args.sizes or any(s < 2 for s in args.sizes):
        raise WannmagError(f"--sizes must be integers >= 2, got {args.sizes}")
    for name in ("tmin", "tmax"):
        v = getattr(args, name)
        if not (math.isfinite(v) and v > 0):
            raise WannmagError(f"--{name} must be a positive temperature in K, got {v}")
    if args.tmin >= args.tmax:
        raise WannmagError(f"--tmin must be below --tmax, got {args.tmin} >= {args.tmax}")
    if args.replicas < 2:
        raise WannmagError(f"--replicas must be at least 2, got {args.replicas}")
    if args.sweeps < 1 or args.therm < 0:
        raise WannmagError(f"--sweeps must be >= 1 and --therm >= 0, got {args.sweeps} and {args.therm}")
    if args.checkpoint_every < 0:
        raise WannmagError(f"--checkpoint-every must be >= 0, got {args.checkpoint_every}")
    if args.dilution is not None and not 0.0 < args.dilution < 1.0:
        raise WannmagError(f"--dilution must be a vacancy fraction in (0, 1), got {args.dilution}")
    if args.realisations < 1:
        raise WannmagError(f"--realisations must be at least 1, got {args.realisations}")
    if args.overrelax < 0:
        raise WannmagError(f"--overrelax must be >= 0, got {args.overrelax}")


def cmd_mc(args) -> int:
    _check(args)
    from ..magnetism.montecarlo import (MCSettings, MerminWagnerWarning, dilution_scan, ordering_temperature,
                                        plot_dilution, plot_tc)
    from ..magnetism.spinmodel import SpinModel

    model = SpinModel.load(args.model)
    if not model.bonds:
        raise WannmagError(f"{args.model}: the spin model has no exchange bond")
    st = MCSettings(tmin=args.tmin, tmax=args.tmax, n_replicas=args.replicas, n_sweeps=args.sweeps,
                    n_therm=args.therm, ising=args.ising, seed=args.seed, n_overrelax=0 if args.ising else args.overrelax,
                    ladder=args.ladder, checkpoint_every=args.checkpoint_every, progress=not args.quiet)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sizes = [(s, s, 1) if not model.pbc[2] else (s, s, s) for s in args.sizes]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MerminWagnerWarning)
        res = ordering_temperature(model, sizes, st, out_dir=out)
    res.save(out / "mc_result.json")
    plot_tc(res, out / "mc_curves.png")
    lines = [f"{args.model}: {model.n_sites} site(s)/cell, {'Ising' if args.ising else 'Heisenberg'}, "
             f"sizes {', '.join(map(str, args.sizes))}, {args.replicas} replicas {args.tmin}-{args.tmax} K, "
             f"{args.sweeps} sweeps (+{args.therm} thermalisation)"]
    gs = res.ground_state
    if gs:
        lines.append(f"ground state (annealed): {gs['energy_per_site_meV']:.4f} meV/site, period {gs['period']}, "
                     f"{'ferromagnetic' if gs.get('ferromagnetic') else 'antiferromagnetic/staggered'}")
    for k in res.sizes:
        pc, px = res.peaks_C[k], res.peaks_chi[k]
        lines.append(f"  L = {k:10s} C peak {pc['T']:8.2f} ± {pc['error']:.2f} K{' (edge)' if pc['at_edge'] else ''}"
                     f"   chi peak {px['T']:8.2f} ± {px['error']:.2f} K{' (edge)' if px['at_edge'] else ''}")
    for c in res.crossings:
        lines.append(f"  Binder crossing {c['sizes'][0]} / {c['sizes'][1]}: {c['T']:.2f} ± {c['error']:.2f} K")
    if res.tc is not None:
        lines.append(f"T_order = {res.tc:.2f} ± {res.tc_error:.2f} K ({res.method})")
    if res.mermin_wagner:
        lines.append(f"WARNING (Mermin-Wagner): {res.warning}; the number above is a finite-size crossover, "
                     "the true Tc is 0")
    if args.dilution is not None:
        dres = dilution_scan(model, [0.0, args.dilution], sizes, st, realisations=args.realisations, out_dir=out,
                             warn=False)
        dres.save(out / "mc_dilution.json")
        plot_dilution(dres, out / "mc_dilution.png")
        for x, t, e, m in zip(dres.fractions, dres.tc, dres.tc_error, dres.methods):
            lines.append(f"dilution x = {x:g}: T = {t:.2f} ± {e:.2f} K ({m}, {args.realisations} realisations)"
                         if t is not None else f"dilution x = {x:g}: no ordering temperature found")
    lines.append(f"results: {out / 'mc_result.json'}, plot: {out / 'mc_curves.png'}")
    if args.json:
        print(json.dumps(res.as_dict(with_runs=False), indent=1))
    else:
        print("\n".join(lines))
    if res.mermin_wagner and caught:
        print(f"wannmag: warning: {res.warning}", file=sys.stderr)
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "mc", help="classical Monte Carlo (parallel tempering): ordering temperature, Binder crossings, dilution",
        description="Parallel-tempering Monte Carlo of a wannmag spin model (JSON written by SpinModel.save) on "
                    "L×L periodic supercells (L×L×L for 3D models): Metropolis with an adaptive cone plus "
                    "over-relaxation (Heisenberg) or single-spin flips (--ising, J_zz only).  The order parameter is "
                    "the magnetisation projected on the annealed ground-state pattern (FM, Néel, zigzag, stripy, "
                    "...).  Reports the ordering temperature from the C and chi peaks per size and from Binder-"
                    "cumulant crossings, with uncertainties, and warns (Mermin-Wagner) when a 2D model has a "
                    "continuous symmetry so that its true Tc is zero.  Writes OUT/mc_result.json, OUT/mc_curves.png "
                    "and checkpoints OUT/checkpoint_*.npz: rerunning the same command resumes an interrupted run "
                    "with the identical result.",
        epilog=EPILOG, formatter_class=FORMATTER)
    p.add_argument("model", help="spin model JSON (wannmag.SpinModel)")
    p.add_argument("--sizes", type=int, nargs="+", default=[12, 18, 24], metavar="L",
                   help="linear lattice sizes (default 12 18 24; at least 3 for Binder crossings)")
    p.add_argument("--tmin", type=float, required=True, help="lowest temperature (K)")
    p.add_argument("--tmax", type=float, required=True, help="highest temperature (K)")
    p.add_argument("--replicas", type=int, default=24, help="number of temperatures/replicas (default 24)")
    p.add_argument("--sweeps", type=int, default=20000, help="measurement sweeps per replica (default 20000)")
    p.add_argument("--therm", type=int, default=5000, help="thermalisation sweeps per replica (default 5000)")
    p.add_argument("--ising", action="store_true", help="Ising spins S_z = ±S (uses J_zz and B_z only)")
    p.add_argument("--ladder", choices=["geometric", "feedback"], default="geometric",
                   help="temperature ladder: geometric, or feedback (acceptance-equalising during thermalisation)")
    p.add_argument("--overrelax", type=int, default=1, help="over-relaxation sweeps per Metropolis sweep (default 1)")
    p.add_argument("--dilution", type=float, metavar="X", help="also simulate a vacancy fraction X and report T(X)")
    p.add_argument("--realisations", type=int, default=8, help="disorder realisations for --dilution (default 8)")
    p.add_argument("--seed", type=int, default=0, help="random seed (runs are bit-for-bit reproducible)")
    p.add_argument("--out", default="mc_out", help="output directory (default mc_out)")
    p.add_argument("--checkpoint-every", type=int, default=1000, metavar="N",
                   help="write a checkpoint every N sweeps (default 1000; 0 = only at the end)")
    p.add_argument("--json", action="store_true", help="print the analysis as JSON instead of a table")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_mc)
