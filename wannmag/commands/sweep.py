"""``wannmag sweep``: ``wannmag run`` over a grid of U (eV) and biaxial in-plane strain, every point a cached run.

J in meV (H = Σ_{i<j} S_i·J_ij·S_j, each bond once, |S| = S, J > 0 AF), anisotropy meV per ion, T in K.
Orchestration in :mod:`wannmag.workflows.sweep`.
"""

# Imports inside the functions are deliberate (CLI start-up: `wannmag --help` and argument errors stay fast).

from __future__ import annotations

from ._common import EPILOG, FORMATTER


def cmd_sweep(args) -> int:
    from ._common import check_number, output_dir

    check_number(args.workers, "--workers", 1, 256, integer=True)
    check_number(args.seed, "--seed", 0, 2**63 - 1, integer=True)
    settings = {}
    if args.mc_sizes is not None:
        for L in args.mc_sizes:
            check_number(L, "--mc-sizes", 4, 1000, integer=True)
        settings["mc_sizes"] = args.mc_sizes
    if args.mc_sweeps is not None:
        check_number(args.mc_sweeps, "--mc-sweeps", 1, 10**9, integer=True)
        settings["mc_sweeps"] = args.mc_sweeps
        settings["mc_therm"] = max(args.mc_sweeps // 4, 1)
    from ..workflows.sweep import run_sweep

    # U, strain and --until are checked by run_sweep before any work (one line naming the structure file)
    if args.U is None and args.strain is None:
        from ..errors import WannmagError

        raise WannmagError(f"{args.structure}: give --U values and/or --strain values to sweep")
    res = run_sweep(args.structure, U=args.U, strain=args.strain, until=args.until, preset=args.preset,
                    out=_out(args, output_dir), dask=args.dask, workers=args.workers, settings=settings or None,
                    seed=args.seed, log=print)
    print()
    print(res.table())
    print(f"\nresults: {args.out}/sweep.json, figure {args.out}/sweep.png; every point's run directory "
          f"{args.out}/<U..._strain...>/ (report with `wannmag run ... --out` of that directory)")
    failed = [p for p in res.points if p.get("status") != "done"]
    for p in failed:
        print(f"point {p['label']} failed: {p.get('error')} (re-run the sweep to retry it)")
    return 1 if failed else 0


def _out(args, output_dir):
    from pathlib import Path

    # validate values before creating the directory: run_sweep creates it after its checks
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        output_dir(args.out)  # the one-line error for an existing file
    return out


def register(sub) -> None:
    p = sub.add_parser(
        "sweep", help="`wannmag run` over U and/or biaxial strain values: J1-J3, anisotropy, Tc per point + plot",
        description="Every point (U, strain) of the grid --U × --strain is a cached `wannmag run` up to --until "
                    "(default mc) in OUT/U<U>_strain<strain>/; the points run as independent tasks on Dask "
                    "(--dask local or a scheduler address) or on --workers local processes, each point's steps "
                    "serially (the numbers equal a serial sweep).  Strain: biaxial in-plane (a, b scaled by 1 + "
                    "strain, fractional coordinates and the out-of-plane lattice vector kept, no relaxation); the "
                    "strained structures are written to OUT/structures/.  Collected per point: J1-J3 (meV, energy "
                    "mapping: the J of the Monte Carlo), the anisotropy (E_in − E_out meV/ion, easy axis, single-ion "
                    "A and Kitaev K, Γ, Γ′ where the run fitted them), the ordering temperature (K) with its method "
                    "or the reason there is none, convergence flags → OUT/sweep.json and OUT/sweep.png.  Exit "
                    "status 1 when a point failed (its error is stored; a re-run retries it).",
        epilog=EPILOG, formatter_class=FORMATTER)
    p.add_argument("structure", help="structure file (CIF, POSCAR, ...)")
    p.add_argument("--U", nargs="+", type=float, metavar="U", help="Dudarev U values in eV, each in [0, 20] "
                                                                  "(default: the run's 3 eV)")
    p.add_argument("--strain", nargs="+", type=float, metavar="EPS",
                   help="biaxial in-plane strains as fractions, |strain| ≤ 0.2 (e.g. -0.02 0 0.02; default 0)")
    p.add_argument("--until", default="mc", metavar="STEP", help="last `wannmag run` step of every point "
                                                                 "(default mc: no Wannier functions)")
    p.add_argument("--preset", choices=["fast", "accurate"], default="fast", help="run preset (default fast)")
    p.add_argument("--out", default="out/sweep", help="sweep directory (default out/sweep)")
    p.add_argument("--dask", metavar="ADDRESS", help="run the points on Dask ('local' for a LocalCluster on this "
                                                     "machine, or a scheduler address)")
    p.add_argument("--workers", type=int, default=1, help="local processes for the points when no Dask cluster is "
                                                         "used (default 1)")
    p.add_argument("--seed", type=int, default=0, help="Monte Carlo seed (the same for every point)")
    p.add_argument("--mc-sizes", type=int, nargs="+", metavar="L", help="Monte Carlo sizes instead of the preset's")
    p.add_argument("--mc-sweeps", type=int, metavar="N", help="Monte Carlo sweeps per replica instead of the preset's")
    p.set_defaults(func=cmd_sweep, inputs=(("structure", "file"),))
