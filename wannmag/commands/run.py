"""``wannmag run``: the whole workflow from a structure file (embedded GPAW) or a directory of DFT outputs."""

# Imports inside the functions are deliberate (CLI start-up: `wannmag --help` and argument errors stay fast).

from __future__ import annotations

import argparse

from ._common import EPILOG, FORMATTER


def cmd_run(args) -> int:
    import numpy as np

    from ..errors import WannmagError
    from ..workflows.run import build_workflow

    if args.structure is None and args.from_dir is None:
        raise WannmagError("give a structure file or --from DIR")
    settings = {}  # Monte Carlo settings given on the command line override the preset's
    for flag, key, value, least in (("--mc-sizes", "mc_sizes", args.mc_sizes, 4),
                                    ("--mc-sweeps", "mc_sweeps", args.mc_sweeps, 1),
                                    ("--mc-replicas", "mc_replicas", args.mc_replicas, 1),
                                    ("--vacancy-realisations", "vac_realisations", args.vacancy_realisations, 1)):
        if value is None:
            continue
        if min(np.atleast_1d(value)) < least:
            raise WannmagError(f"{flag} must be {'at least 4' if least == 4 else 'positive'}, got {value}")
        settings[key] = value
    _check_options(args)
    if args.mc_sweeps is not None:
        settings["mc_therm"] = max(args.mc_sweeps // 4, 1)
    if args.mc_algorithm is not None:
        settings["mc_algorithm"] = args.mc_algorithm
    if args.mc_threads is not None:
        settings["mc_threads"] = args.mc_threads
    eng = build_workflow(args.structure, out=args.out, preset=args.preset, U=args.U, from_dir=args.from_dir,
                         settings=settings or None, dask=args.dask, seed=args.seed, workers=args.workers,
                         vacancies=args.vacancies,
                         vacancy_supercell=args.vacancy_supercell, vacancy_site=args.vacancy_site,
                         vacancy_fit=args.vacancy_fit, vacancy_configs=args.vacancy_configs,
                         vacancy_charge=args.vacancy_charge, vacancy_placements=args.vacancy_placements,
                         vacancy_dft_settings=_neutral_dft_settings(args),
                         vacancy_keep_moved=bool(args.vacancy_keep_moved),
                         vacancy_absorb_constant=bool(args.vacancy_absorb_constant),
                         vacancy_min_dof=1 if args.vacancy_min_dof is None else args.vacancy_min_dof,
                         relax=args.relax, relax_fmax=args.relax_fmax)
    if args.status:
        from ..workflows.summary import step_progress

        for row in eng.status():
            progress = None if row["done"] else step_progress(eng.out, row["step"], eng.params)
            print(f"{row['step']:>16s}: {'done' if row['done'] else 'to do'}"
                  + (f" ({row['seconds']:.1f} s)" if row["seconds"] is not None else "")
                  + (f" — in progress: {progress}" if progress else ""))
        return 0
    names = [step.name for step in eng.steps]
    for name in list(args.redo or ()) + ([args.until] if args.until else []):
        if name not in names:
            raise WannmagError(f"unknown step {name!r}; the steps are {', '.join(names)}")
    res = eng.run(until=args.until, force=tuple(args.redo or ()))
    from ..workflows.summary import run_summary

    print("\n" + run_summary(res, eng.params, out=eng.out), flush=True)
    return 0


#: options that only mean something with --vacancies, and their defaults
_VACANCY_DEFAULTS = {"vacancy_supercell": [2, 2], "vacancy_site": 0, "vacancy_charge": "neutral"}
#: options of the neutral vacancy cell only (SCF settings, then the fit's options): option -> NEUTRAL_DFT key
_NEUTRAL_DFT_OPTIONS = {"vacancy_smearing": "smearing", "vacancy_mixer": "mixer", "vacancy_density": "density_tol",
                        "vacancy_maxiter": "maxiter", "vacancy_fixmagmom": "fixmagmom"}
_NEUTRAL_FIT_OPTIONS = ("vacancy_keep_moved", "vacancy_absorb_constant", "vacancy_min_dof")


def _neutral_dft_settings(args) -> dict | None:
    """The neutral cell's SCF settings given on the command line (overrides of NEUTRAL_DFT; a mixer by name)."""
    from ..workflows.vacancy import NEUTRAL_MIXERS

    out = {key: getattr(args, opt) for opt, key in _NEUTRAL_DFT_OPTIONS.items() if getattr(args, opt) is not None}
    if "mixer" in out:
        out["mixer"] = dict(NEUTRAL_MIXERS[out["mixer"]])
    return out or None


def _check_options(args) -> None:
    """Every numeric option finite and in its stated range, before any step runs (one error line each); the lower
    bounds of the Monte Carlo settings are checked by ``cmd_run`` itself."""
    from ..errors import WannmagError
    from ._common import check_number

    check_number(args.U, "--U (eV)", 0, 20)
    check_number(args.workers, "--workers", 1, 256)
    check_number(args.seed, "--seed", 0, 2**63 - 1)
    if args.mc_threads is not None:
        check_number(args.mc_threads, "--mc-threads", 1, 256)
    for flag, values, most in (("--mc-sizes", args.mc_sizes, 1000), ("--mc-replicas", args.mc_replicas, 1000),
                               ("--mc-sweeps", args.mc_sweeps, 10**9),
                               ("--vacancy-realisations", args.vacancy_realisations, 10000)):
        for v in ([] if values is None else values if isinstance(values, list) else [values]):
            check_number(v, flag, maximum=most)
    neutral_only = ("vacancy_placements", *_NEUTRAL_DFT_OPTIONS, *_NEUTRAL_FIT_OPTIONS)
    if args.vacancies is None:
        given = [k for k in (*_VACANCY_DEFAULTS, "vacancy_configs", "vacancy_realisations", *neutral_only)
                 if getattr(args, k) is not None]
        if given:
            raise WannmagError(f"--{given[0].replace('_', '-')} has no effect without --vacancies X [X ...]")
    for x in args.vacancies or []:
        if not 0 < x < 1:  # False for NaN too
            raise WannmagError(f"--vacancies must be fractions strictly between 0 and 1, got {x}")
    for key, default in _VACANCY_DEFAULTS.items():
        if getattr(args, key) is None:
            setattr(args, key, default)
    for n in args.vacancy_supercell:
        check_number(n, "--vacancy-supercell", 1, 10)
    check_number(args.vacancy_site, "--vacancy-site", 0, 999)
    from ..workflows.vacancy import check_placements, is_neutral

    for k in neutral_only:
        if getattr(args, k) is not None and not is_neutral(args.vacancy_charge):
            raise WannmagError(f"--{k.replace('_', '-')} applies to the neutral cell (--vacancy-charge neutral), not "
                               f"to --vacancy-charge {args.vacancy_charge}")
    for opt, value, least, most, strict, integer in (
            ("--vacancy-smearing (eV)", args.vacancy_smearing, 0, 2, True, False),
            ("--vacancy-density", args.vacancy_density, 0, 0.1, True, False),
            ("--vacancy-maxiter", args.vacancy_maxiter, 1, 100000, False, True),
            ("--vacancy-min-dof", args.vacancy_min_dof, 0, 100, False, True)):
        if value is not None:
            check_number(value, opt, least, most, strict=strict, integer=integer)
    if args.vacancy_placements is not None:
        try:
            check_placements(args.vacancy_placements)
        except WannmagError as exc:
            raise WannmagError(f"--vacancy-placements: {exc}") from None
    if args.vacancy_configs is not None:
        check_number(args.vacancy_configs, "--vacancy-configs", 1, 1000)


def register(sub) -> None:
    p = sub.add_parser(
        "run", help="the whole workflow: structure → DFT → J (three routes) → anisotropy → Monte Carlo → report",
        description="Structure → magnetic configurations → DFT energies (embedded GPAW, or --from DIR) → energy "
                    "mapping → Wannier functions → tight-binding analysis → force-theorem J and superexchange "
                    "channels → anisotropy → spin model → spin waves and Monte Carlo Tc/TN → report.md/report.html. "
                    "Every step is cached in OUT/steps/; re-running skips what is done and resumes an interrupted "
                    "step (Monte Carlo from its checkpoints).  --from DIR: sub-directories FM/ Neel/ zigzag/ stripy/ "
                    "with VASP (vasprun.xml/OUTCAR) or QE (pw.x) outputs, a structure file, and Wannier90 files "
                    "(<seed>_up_hr.dat, <seed>_dn_hr.dat, .win, optionally <seed>_nm_hr.dat) anywhere below DIR.  "
                    "--vacancies X [X ...] adds the vacancy study (e.g. V_{1-x}PS3): one magnetic ion removed from a "
                    "2x2 supercell.  Neutral cell (default): the vacancy's holes (two V3+, S = 1, for VPS3) started at "
                    "each of --vacancy-placements (one SCF each, Fermi-Dirac 0.1 eV, damped mixer, fixed total "
                    "moment), then collinear configurations with the holes at the lowest converged placement whose "
                    "holes stay put, and J fitted by bond class (V2-V2_bulk, next_to_vacancy, V2-V3, V3-V3; "
                    "configurations whose holes moved, spins flipped or SCF did not converge excluded, with the "
                    "reason; --vacancy-keep-moved uses the moved ones too — effective couplings, said so — and "
                    "--vacancy-absorb-constant puts a class the configurations cannot determine into E0; changing "
                    "either re-runs only the fit); --vacancy-charge ionic: every remaining ion kept V2+, J1 next to the vacancy fitted "
                    "separately from the bulk-like J1 (J in meV, H = sum_{i<j} J_ij S_i.S_j, each bond once, "
                    "|S| = S, J > 0 AF).  Then diluted-lattice Monte Carlo T_N(x) at x = 0 and each X (neutral: "
                    "dilution only and with the holes), in OUT/vacancy/ (vacancy_study.json, tn_vs_x.png) and in the "
                    "report.  Every SCF is cached on its own and runs as one task of --workers / --dask; with --from "
                    "DIR the vacancy energies are read from DIR/vacancy/<configuration>/ (names and POSCARs in "
                    "OUT/vacancy_dft/).",
        epilog=EPILOG, formatter_class=FORMATTER)
    p.add_argument("structure", nargs="?", help="structure file (CIF, POSCAR, ...)")
    p.add_argument("--from", dest="from_dir", metavar="DIR", help="directory of DFT outputs instead of running GPAW")
    p.add_argument("--engine", choices=["gpaw"], default="gpaw", help="embedded DFT engine (default gpaw)")
    p.add_argument("--preset", choices=["fast", "accurate"], default="fast",
                   help="fast: LCAO dzp, small Monte Carlo; accurate: PW 450 eV, larger Monte Carlo")
    p.add_argument("--U", type=float, default=3.0, help="Dudarev U on the metal d in eV (default 3)")
    p.add_argument("--out", default="out/run", help="run directory, created if needed (default out/run)")
    p.add_argument("--dask", metavar="ADDRESS", help="run the independent tasks of --workers on Dask ('local' for a "
                                                     "LocalCluster on this machine, or a scheduler address)")
    p.add_argument("--seed", type=int, default=0, help="Monte Carlo seed")
    p.add_argument("--relax", action=argparse.BooleanOptionalAction, default=None,
                   help="relax the ionic positions with GPAW DFT+U (FM) first and run every step on the relaxed "
                        "structure (default: on for --preset accurate, off for fast and --from); an unconverged "
                        "relaxation stops the run")
    p.add_argument("--relax-fmax", type=float, default=0.02, help="force tolerance of --relax in eV/Å (default 0.02)")
    p.add_argument("--workers", type=int, default=1,
                   help="local processes when no Dask cluster is used (default 1): DFT configurations, the Wannier "
                        "FM/NM branches, the spin-orbit calculations and the Monte Carlo sizes run side by side")
    p.add_argument("--vacancies", nargs="+", type=float, metavar="X",
                   help="vacancy fractions x (0 < x < 1) for the vacancy study, e.g. --vacancies 0.05 0.1 0.2")
    p.add_argument("--vacancy-supercell", nargs=2, type=int, default=None, metavar=("N1", "N2"),
                   help="supercell of the primitive cell holding one vacancy (default 2 2: 8 -> 7 sites)")
    p.add_argument("--vacancy-site", type=int, default=None, help="index of the removed magnetic site (default 0)")
    p.add_argument("--vacancy-fit", choices=["J1", "J123"], default="J1",
                   help="J1: J2/J3 held at the perfect lattice's (default; ionic: J1 next to the vacancy and "
                        "bulk-like J1, 4 configurations; neutral: the nearest-neighbour J by hole class); J123: fit "
                        "J2, J3 too")
    p.add_argument("--vacancy-charge", default=None, metavar="neutral|ionic|Q",
                   help="charge state of the vacancy cell: neutral (default; the removed ion's electrons leave holes), "
                        "ionic (they are given back: every remaining ion keeps its nominal charge, VPS3: cell charge "
                        "−2, all V2+), or the cell charge Q in e")
    p.add_argument("--vacancy-placements", nargs="+", metavar="P",
                   help="neutral cell: where the vacancy's holes (V3+, S = 1 for VPS3) start, each an SCF: near, far, "
                        "near_far, none (no hole placed: a reference energy); the lowest converged placement whose "
                        "holes stay put is fitted (default: near far)")
    p.add_argument("--vacancy-configs", type=int, metavar="N",
                   help="number of vacancy configurations (default: unknowns + 1, one redundant for a residual; "
                        "neutral cell: unknowns + 3)")
    p.add_argument("--vacancy-keep-moved", action="store_true", default=None,
                   help="neutral cell: fit with the converged configurations whose holes left the placed sites too "
                        "(spin signs kept): EFFECTIVE couplings of the holes' actual states, not a fixed-hole "
                        "Heisenberg fit (said in the fit's status and the report); re-runs only the fit")
    p.add_argument("--vacancy-absorb-constant", action="store_true", default=None,
                   help="neutral cell: a bond class with the same sum in every configuration used (not determined "
                        "by them) goes into E0 (its J not given, named) instead of refusing the fit; re-runs only "
                        "the fit")
    p.add_argument("--vacancy-min-dof", type=int, metavar="N",
                   help="neutral cell: residual degrees of freedom the fit needs after exclusions (default 1)")
    p.add_argument("--vacancy-smearing", type=float, metavar="EV",
                   help="neutral cell: Fermi-Dirac width of its SCFs in eV (default 0.1)")
    p.add_argument("--vacancy-mixer", choices=["damped", "default", "dif"],
                   help="neutral cell: GPAW mixer of its SCFs: damped (default; beta 0.02, 8 old densities, weight "
                        "100), default (GPAW's), dif (density and magnetisation mixed separately, Pulay)")
    p.add_argument("--vacancy-density", type=float, metavar="TOL",
                   help="neutral cell: SCF density criterion (default 1e-4, GPAW's)")
    p.add_argument("--vacancy-maxiter", type=int, metavar="N",
                   help="neutral cell: SCF iteration limit (default 200)")
    p.add_argument("--vacancy-fixmagmom", action=argparse.BooleanOptionalAction, default=None,
                   help="neutral cell: hold each SCF's total moment at the sum of its start moments (default on; "
                        "a constraint, checked afterwards)")
    p.add_argument("--mc-sizes", type=int, nargs="+", metavar="L",
                   help="Monte Carlo lattice sizes L (L×L cells) instead of the preset's "
                        "(fast 6 9 12, accurate 12 18 24)")
    p.add_argument("--mc-sweeps", type=int, metavar="N",
                   help="Monte Carlo measurement sweeps per replica (thermalisation N/4) instead of the preset's")
    p.add_argument("--mc-replicas", type=int, metavar="N",
                   help="parallel-tempering temperatures instead of the preset's")
    p.add_argument("--mc-algorithm", choices=["metropolis", "cluster"],
                   help="Monte Carlo sweep: cluster (Wolff cluster moves by Ising embedding first; see wannmag mc "
                        "--help) or metropolis (Metropolis + over-relaxation); default: cluster where the model allows "
                        "it, else metropolis (the reason is stored)")
    p.add_argument("--mc-threads", type=int, metavar="N",
                   help="threads running the replicas of one Monte Carlo lattice in parallel (default 1; the "
                        "result does not depend on N)")
    p.add_argument("--vacancy-realisations", type=int, metavar="N",
                   help="disorder realisations per vacancy fraction and size (fast 6, accurate 16)")
    p.add_argument("--until", metavar="STEP",
                   help="run only this step and the steps it depends on (e.g. --until mc skips the Wannier steps)")
    p.add_argument("--redo", nargs="+", metavar="STEP", help="recompute these steps (and all after them)")
    p.add_argument("--status", action="store_true", help="list the steps and whether they are done")
    p.set_defaults(func=cmd_run, inputs=(("structure", "file"), ("from_dir", "dir")))
