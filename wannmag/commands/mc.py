"""``wannmag mc``: classical Monte Carlo (parallel tempering) of a spin model — ordering temperature from Binder
crossings over several sizes (C and χ maxima alongside), optional site dilution, checkpoint/resume, JSON + plots.

An ordering temperature is printed only when a Binder crossing is bracketed inside the temperature window; otherwise
the window is extended beyond the edge where the crossing lies (``--max-extensions`` passes: the multi-pass search
of ``wannmag run``, :func:`wannmag.magnetism.montecarlo.tc.ordering_temperature_refined` /
:func:`~wannmag.magnetism.montecarlo.tc.search_passes`, without its refining pass around a bracketed crossing) and,
if that fails or is disabled, the output, the plot title and the JSON say "not bracketed" and where the crossing
lies.  A C/χ maximum at the window edge is printed as
a bound (≥ tmax / ≤ tmin), not as a value.

Spin model convention: H = Σ_{i<j} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i − gμ_B B·S_i, each bond once, classical spins of
length S, J > 0 antiferromagnetic, meV; temperatures in K.
"""

# Imports inside the functions are deliberate (CLI start-up: `wannmag --help` and argument errors stay fast).

from __future__ import annotations

import json
import math
import sys
import warnings

from ..errors import WannmagError
from ._common import EPILOG, FORMATTER, output_dir


def _check(args) -> None:
    """Every option within its sane bound (one error line each, naming the bound)."""
    from ..magnetism.montecarlo.dilution import MAX_REALISATIONS
    from ..magnetism.montecarlo.lattice import MAX_SITES
    from ..magnetism.montecarlo.tempering import MAX_REPLICAS, MAX_SWEEPS, T_RANGE_K

    if not args.sizes or any(s < 2 for s in args.sizes):
        raise WannmagError(f"--sizes must be integers >= 2, got {args.sizes}")
    if any(s > 10 ** 4 for s in args.sizes):
        raise WannmagError(f"--sizes must be at most 10000 (and L² × sites per cell at most {MAX_SITES:.0e}), got "
                           f"{max(args.sizes)}")
    lo, hi = T_RANGE_K
    for name in ("tmin", "tmax"):
        v = getattr(args, name)
        if not (math.isfinite(v) and lo <= v <= hi):
            raise WannmagError(f"--{name} must be a temperature between {lo:g} and {hi:g} K, got {v}")
    if args.tmin >= args.tmax:
        raise WannmagError(f"--tmin must be below --tmax, got {args.tmin} >= {args.tmax}")
    if not 2 <= args.replicas <= MAX_REPLICAS:
        raise WannmagError(f"--replicas must be between 2 and {MAX_REPLICAS}, got {args.replicas}")
    if not 1 <= args.sweeps <= MAX_SWEEPS:
        raise WannmagError(f"--sweeps must be between 1 and {MAX_SWEEPS:.0e}, got {args.sweeps}")
    if not 0 <= args.therm <= MAX_SWEEPS:
        raise WannmagError(f"--therm must be between 0 and {MAX_SWEEPS:.0e}, got {args.therm}")
    if not 0 <= args.checkpoint_every <= MAX_SWEEPS:
        raise WannmagError(f"--checkpoint-every must be between 0 and {MAX_SWEEPS:.0e}, got {args.checkpoint_every}")
    if args.dilution is not None and not 0.0 <= args.dilution < 1.0:
        raise WannmagError(f"--dilution must be a vacancy fraction in [0, 1), got {args.dilution}")
    if not 1 <= args.realisations <= MAX_REALISATIONS:
        raise WannmagError(f"--realisations must be between 1 and {MAX_REALISATIONS}, got {args.realisations}")
    if not 0 <= args.overrelax <= 100:
        raise WannmagError(f"--overrelax must be between 0 and 100, got {args.overrelax}")
    if not 0 <= args.seed < 2 ** 63:
        raise WannmagError(f"--seed must be an integer in [0, 2^63), got {args.seed}")
    if not 0 <= args.max_extensions <= 10:
        raise WannmagError(f"--max-extensions must be between 0 and 10, got {args.max_extensions}")
    if not 1 <= args.threads <= 256:
        raise WannmagError(f"--threads must be between 1 and 256, got {args.threads}")


def _peak_cols(pc: dict, px: dict) -> str:
    from ..magnetism.montecarlo.tc import peak_text

    return f"C max {peak_text(pc):>30s}   chi max {peak_text(px):>30s}"


def cmd_mc(args) -> int:
    _check(args)
    from ..magnetism.montecarlo import MCSettings, dilution_scan, plot_dilution, plot_tc
    from ..magnetism.montecarlo.cluster import ClusterSchemeError
    from ..magnetism.montecarlo.tc import _label, checkpoint_key, ordering_temperature_refined
    from ..magnetism.spinmodel import SpinModel

    model = SpinModel.load(args.model)
    if not model.bonds:
        raise WannmagError(f"{args.model}: the spin model has no exchange bond")
    st = MCSettings(tmin=args.tmin, tmax=args.tmax, n_replicas=args.replicas, n_sweeps=args.sweeps,
                    n_therm=args.therm, ising=args.ising, seed=args.seed, n_overrelax=0 if args.ising else args.overrelax,
                    ladder=args.ladder, checkpoint_every=args.checkpoint_every, progress=not args.quiet,
                    algorithm=args.algorithm, threads=args.threads)
    st.validate()
    out = output_dir(args.out)
    sizes = [(s, s, 1) if not model.pbc[2] else (s, s, s) for s in args.sizes]
    ext_log: list[str] = []
    # the search of wannmag run's mc step (tc.ordering_temperature_refined): up to --max-extensions further passes
    # beyond the edge where an unbracketed crossing lies, none around a bracketed one, the last pass reported when
    # none brackets a crossing
    def checkpoint(settings, k, size):
        # pass 0 checkpoints in OUT (resumable as before); further windows in their own keyed directories
        d = out if k == 0 else out / f"window_{settings.tmin:.6g}-{settings.tmax:.6g}K_{checkpoint_key(model, settings)}"
        return d / f"checkpoint_{_label(size)}.npz"

    with warnings.catch_warnings(record=True):  # the runs' warnings are not printed (Mermin-Wagner: below)
        try:
            search = ordering_temperature_refined(model, sizes, st, passes=args.max_extensions + 1,
                                                  refine_crossing=False, keep="last", log=ext_log.append,
                                                  with_runs=True, checkpoint_path=checkpoint)
        except ClusterSchemeError as exc:
            raise WannmagError(f"{args.model}: {exc}") from None
    res, st_final = search.result, search.settings
    res.passes = search.passes
    res.save(out / "mc_result.json")
    plot_tc(res, out / "mc_curves.png")
    lines = [f"{args.model}: {model.n_sites} site(s)/cell, {'Ising' if args.ising else 'Heisenberg'}, "
             f"sizes {', '.join(map(str, args.sizes))}, {args.replicas} replicas {args.tmin}-{args.tmax} K, "
             f"{args.sweeps} sweeps (+{args.therm} thermalisation), {args.algorithm}"
             + (" (Wolff cluster moves + Metropolis + over-relaxation)" if args.algorithm == "cluster" else "")
             + (f", {args.threads} threads" if args.threads > 1 else "")]
    lines += [f"extended: {e}" for e in ext_log]
    if len(res.passes) > 1:
        lines.append(f"window of the result: {st_final.tmin:.4g}-{st_final.tmax:.4g} K "
                     f"(pass {len(res.passes)} of at most {args.max_extensions + 1}, --max-extensions)")
    gs = res.ground_state
    if gs:
        lines.append(f"ground state (annealed): {gs['energy_per_site_meV']:.4f} meV/site, period {gs['period']}, "
                     f"{'ferromagnetic' if gs.get('ferromagnetic') else 'antiferromagnetic/staggered'}")
    for k in res.sizes:
        lines.append(f"  L = {k:10s} {_peak_cols(res.peaks_C[k], res.peaks_chi[k])}")
    for c in res.crossings:
        lines.append(f"  Binder crossing {c['sizes'][0]} / {c['sizes'][1]}: {c['T']:.2f} ± {c['error']:.2f} K")
    lines.append(res.headline("T_order"))
    if not res.bracketed and not res.mermin_wagner:
        hint = ("automatic extension disabled (--max-extensions 0)" if args.max_extensions == 0 else
                f"after {len(res.passes)} pass(es)")
        lines.append(f"  no ordering temperature: {hint}; choose --tmin/--tmax around the crossing")
    if res.mermin_wagner:
        lines.append(f"WARNING (Mermin-Wagner): {res.warning}; any number above is a finite-size crossover, "
                     "the true Tc is 0")
    elif res.warning:  # the analysis' own doubts (lattices below the bond range, size pairs that disagree, ...)
        lines.append(f"WARNING: {res.warning}")
    if args.dilution is not None:
        # diluted lattices start from the window that bracketed the perfect one (else from the one given)
        dres = dilution_scan(model, sorted({0.0, args.dilution}), sizes, st_final if res.bracketed else st,
                             realisations=args.realisations,
                             out_dir=out, warn=False, max_extensions=args.max_extensions)
        dres.save(out / "mc_dilution.json")
        plot_dilution(dres, out / "mc_dilution.png")
        for k, x in enumerate(dres.fractions):
            lines.append(f"dilution x = {x:g}: {dres.text(k)} ({args.realisations} realisations)")
    lines.append(f"results: {out / 'mc_result.json'}, plot: {out / 'mc_curves.png'}")
    if args.json:
        print(json.dumps(res.as_dict(with_runs=False), indent=1))
    else:
        print("\n".join(lines))
    if res.mermin_wagner:
        print(f"wannmag: warning: {res.warning}", file=sys.stderr)
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "mc", help="classical Monte Carlo (parallel tempering): ordering temperature, Binder crossings, dilution",
        description="Parallel-tempering Monte Carlo of a wannmag spin model (JSON written by SpinModel.save) on "
                    "L×L periodic supercells (L×L×L for 3D models): Metropolis with an adaptive cone plus "
                    "over-relaxation (Heisenberg) or single-spin flips (--ising, J_zz only).  The order parameter is "
                    "the magnetisation projected on the annealed ground-state pattern (FM, Néel, zigzag, stripy, "
                    "...).  Reports the C and chi maxima per size (a maximum at the window edge as a bound) and the "
                    "ordering temperature from Binder-cumulant crossings, with uncertainties, only if a crossing is "
                    "bracketed inside the window: otherwise it extends the window (--max-extensions) or says 'not "
                    "bracketed' and where the crossing lies; it warns (Mermin-Wagner) when a 2D model has a "
                    "continuous symmetry so that its true Tc is zero.  Writes OUT/mc_result.json, OUT/mc_curves.png "
                    "and checkpoints OUT/checkpoint_*.npz: rerunning the same command resumes an interrupted run "
                    "with the identical result.",
        epilog=EPILOG, formatter_class=FORMATTER)
    p.add_argument("model", help="spin model JSON (wannmag.SpinModel)")
    p.add_argument("--sizes", type=int, nargs="+", default=[12, 18, 24], metavar="L",
                   help="linear lattice sizes (default 12 18 24): at least 2 for a Binder crossing (one size "
                        "gives C and chi maxima only); with 3 or more the crossings of the size pairs are compared "
                        "(convergence warning when they disagree)")
    p.add_argument("--tmin", type=float, required=True, help="lowest temperature (K)")
    p.add_argument("--tmax", type=float, required=True, help="highest temperature (K)")
    p.add_argument("--replicas", type=int, default=24, help="number of temperatures/replicas (default 24)")
    p.add_argument("--sweeps", type=int, default=20000, help="measurement sweeps per replica (default 20000)")
    p.add_argument("--therm", type=int, default=5000, help="thermalisation sweeps per replica (default 5000)")
    p.add_argument("--ising", action="store_true", help="Ising spins S_z = ±S (uses J_zz and B_z only)")
    p.add_argument("--ladder", choices=["geometric", "feedback"], default="geometric",
                   help="temperature ladder: geometric, or feedback (acceptance-equalising during thermalisation)")
    p.add_argument("--algorithm", choices=["metropolis", "cluster"], default="metropolis",
                   help="sweep: metropolis (Metropolis + over-relaxation; default) or cluster (Wolff cluster moves by "
                        "Ising embedding, flipping about N sites per sweep, then Metropolis + over-relaxation; exact "
                        "for anisotropic and frustrated models through an acceptance test of every cluster flip; "
                        "refuses bonds dominated by anisotropic/DM exchange and lattices smaller than the bond range)")
    p.add_argument("--threads", type=int, default=1, metavar="N",
                   help="threads running the replicas of one lattice in parallel (default 1; the result does not "
                        "depend on N; the threads meet after every sweep, so on cores busy with other jobs N > 1 "
                        "can be slower than 1)")
    p.add_argument("--overrelax", type=int, default=1, help="over-relaxation sweeps per Metropolis sweep (default 1)")
    p.add_argument("--max-extensions", type=int, default=3, metavar="N",
                   help="when the Binder cumulants do not cross inside [tmin, tmax], run up to N further passes on "
                        "a window beyond the edge where the crossing lies (default 3; 0 = never: report 'not "
                        "bracketed')")
    p.add_argument("--dilution", type=float, metavar="X", help="also simulate a vacancy fraction X and report T(X)")
    p.add_argument("--realisations", type=int, default=8, help="disorder realisations for --dilution (default 8)")
    p.add_argument("--seed", type=int, default=0, help="random seed (runs are bit-for-bit reproducible)")
    p.add_argument("--out", default="out/mc", help="output directory, created if needed (default out/mc)")
    p.add_argument("--checkpoint-every", type=int, default=1000, metavar="N",
                   help="write a checkpoint every N sweeps (default 1000; 0 = only at the end)")
    p.add_argument("--json", action="store_true", help="print the analysis as JSON instead of a table")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_mc, inputs=(("model", "file"),))
