"""``wannmag relax``: ionic (and optionally in-plane cell) relaxation with GPAW DFT+U in a collinear magnetic order.

Energies eV, forces eV/Å, stress GPa, lengths Å, angles degrees.  Orchestration in
:mod:`wannmag.workflows.relax`; the calculator is the one of ``wannmag dft`` (same presets, U, start moments).
"""

# Imports inside the functions are deliberate (CLI start-up: `wannmag --help` and argument errors stay fast).

from __future__ import annotations

from ._common import EPILOG, FORMATTER


def cmd_relax(args) -> int:
    from ..errors import WannmagError
    from ._common import check_number, output_dir
    from .dft import _parse_u

    check_number(args.fmax, "--fmax (eV/Å)", 1e-4, 10.0)
    check_number(args.steps, "--steps", 0, 100000, integer=True)
    U = _parse_u(args.U)
    if args.cell and args.preset != "accurate":
        raise WannmagError(f"{args.structure}: --cell needs the stress tensor, which GPAW computes in plane-wave mode "
                           "only: use --preset accurate")
    from ..structures import read_structure

    atoms = read_structure(args.structure)
    from ..structures import CONFIG_NAMES

    order = {n.lower(): n for n in CONFIG_NAMES}.get(str(args.order).lower())
    if order is None:
        raise WannmagError(f"{args.structure}: unknown order {args.order!r}; choose one of {', '.join(CONFIG_NAMES)}")
    out = output_dir(args.out)
    from ..workflows.relax import relax_structure

    atoms.info.setdefault("source", str(args.structure))
    res = relax_structure(atoms, order=order, preset=args.preset, U=U, fmax=args.fmax, max_steps=args.steps,
                          optimizer=args.optimizer, cell=args.cell, workdir=out, log=True)
    print()
    print(res.table())
    print(f"  result: {out / 'relax.json'}")
    return 0 if res.converged else 1


def register(sub) -> None:
    p = sub.add_parser(
        "relax", help="relax ionic positions (and optionally the in-plane cell) with GPAW DFT+U in a magnetic order",
        description="GPAW DFT+U (the calculator of `wannmag dft`: same preset, U, start moments of the order) and "
                    "an ASE optimizer (BFGS or FIRE) move the atoms until every force is below --fmax (eV/Å); with "
                    "--cell the in-plane lattice relaxes too (ase.filters.FrechetCellFilter, strain xx/yy/xy only: "
                    "c and the layer normal stay fixed; plane waves only).  Writes, in --out: relaxed.cif (only "
                    "when converged), relax.json (before/after M–X distances and M–X–M angles, energy, max force, "
                    "steps, converged flag), checkpoint.traj (last geometry: a killed run resumes from it), "
                    "relax.traj (history), GPAW logs.  A relaxation that exhausts --steps is reported as NOT "
                    "converged: its last geometry goes to unconverged_last.cif, never to relaxed.cif, and the "
                    "exit status is 1; re-run with more --steps to continue.",
        epilog=EPILOG, formatter_class=FORMATTER)
    p.add_argument("structure", help="structure file (CIF, POSCAR, ...)")
    p.add_argument("--preset", choices=["fast", "accurate"], default="fast",
                   help="fast = LCAO dzp; accurate = plane waves 450 eV (default fast)")
    p.add_argument("--U", nargs="+", metavar="U", help="Dudarev U on the metal d in eV: one number or EL=U pairs "
                   "(default 3.0)")
    p.add_argument("--order", default="FM", help="collinear order: FM (default), Neel, zigzag, stripy (zigzag and "
                                                 "stripy relax in their rectangular cell)")
    p.add_argument("--fmax", type=float, default=0.02, help="force tolerance in eV/Å (default 0.02)")
    p.add_argument("--steps", type=int, default=200, help="optimizer steps at most, over all sessions (default 200)")
    p.add_argument("--optimizer", choices=["BFGS", "FIRE"], default="BFGS", help="ASE optimizer (default BFGS)")
    p.add_argument("--cell", action="store_true", help="relax the in-plane lattice too (needs --preset accurate)")
    p.add_argument("--out", required=True, help="relaxation directory (created; resumable)")
    p.set_defaults(func=cmd_relax, inputs=(("structure", "file"),))
