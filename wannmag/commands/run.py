"""``wannmag run``: the whole workflow from a structure file (embedded GPAW) or a directory of DFT outputs."""

from __future__ import annotations

from ._common import EPILOG, FORMATTER


def cmd_run(args) -> int:
    from ..errors import WannmagError
    from ..workflows.run import build_workflow

    if args.structure is None and args.from_dir is None:
        raise WannmagError("give a structure file or --from DIR")
    eng = build_workflow(args.structure, out=args.out, preset=args.preset, U=args.U, from_dir=args.from_dir,
                         dask=args.dask, seed=args.seed, workers=args.workers)
    if args.status:
        for row in eng.status():
            print(f"{row['step']:>14s}: {'done' if row['done'] else 'to do'}"
                  + (f" ({row['seconds']:.1f} s)" if row["seconds"] is not None else ""))
        return 0
    res = eng.run(until=args.until, force=tuple(args.redo or ()))
    if "report" in res:
        print(f"\nreport: {res['report']['report_md']} and {res['report']['report_html']}")
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "run", help="the whole workflow: structure → DFT → J (three routes) → anisotropy → Monte Carlo → report",
        description="Structure → magnetic configurations → DFT energies (embedded GPAW, or --from DIR) → energy "
                    "mapping → Wannier functions → tight-binding analysis → force-theorem J and superexchange "
                    "channels → anisotropy → spin model → spin waves and Monte Carlo Tc/TN → report.md/report.html. "
                    "Every step is cached in OUT/steps/; re-running skips what is done and resumes an interrupted "
                    "step (Monte Carlo from its checkpoints).  --from DIR: sub-directories FM/ Neel/ zigzag/ stripy/ "
                    "with VASP (vasprun.xml/OUTCAR) or QE (pw.x) outputs, a structure file, and Wannier90 files "
                    "(<seed>_up_hr.dat, <seed>_dn_hr.dat, .win, optionally <seed>_nm_hr.dat) anywhere below DIR.",
        epilog=EPILOG, formatter_class=FORMATTER)
    p.add_argument("structure", nargs="?", help="structure file (CIF, POSCAR, ...)")
    p.add_argument("--from", dest="from_dir", metavar="DIR", help="directory of DFT outputs instead of running GPAW")
    p.add_argument("--engine", choices=["gpaw"], default="gpaw", help="embedded DFT engine (default gpaw)")
    p.add_argument("--preset", choices=["fast", "accurate"], default="fast",
                   help="fast: LCAO dzp, small Monte Carlo; accurate: PW 450 eV, larger Monte Carlo")
    p.add_argument("--U", type=float, default=3.0, help="Dudarev U on the metal d in eV (default 3)")
    p.add_argument("--out", default="wannmag_run", help="run directory (default wannmag_run)")
    p.add_argument("--dask", metavar="ADDRESS", help="run configurations and Monte Carlo sizes on Dask ('local' for a "
                                                     "LocalCluster on this machine, or a scheduler address)")
    p.add_argument("--seed", type=int, default=0, help="Monte Carlo seed")
    p.add_argument("--workers", type=int, default=1, help="local processes for DFT configurations and Monte Carlo "
                                                         "sizes when no Dask cluster is used (default 1)")
    p.add_argument("--until", metavar="STEP", help="stop after this step")
    p.add_argument("--redo", nargs="+", metavar="STEP", help="recompute these steps (and all after them)")
    p.add_argument("--status", action="store_true", help="list the steps and whether they are done")
    p.set_defaults(func=cmd_run)
