"""``wannmag structure``: magnetic sublattice, neighbour shells and superexchange paths of a structure file."""

# Imports inside the functions are deliberate (CLI start-up: `wannmag --help` and argument errors stay fast).

from __future__ import annotations

import json
from pathlib import Path

from ..errors import WannmagError
from ._common import EPILOG, FORMATTER, parse_pairs


def cmd_structure(args) -> int:
    from ..structures import analyse_structure

    if not 1 <= args.shells <= 20:
        raise WannmagError(f"--shells must be between 1 and 20, got {args.shells}")
    if not 0.0 <= args.tol <= 0.5:  # also refuses NaN
        raise WannmagError(f"--tol must be between 0 and 0.5 Å, got {args.tol}")
    report = analyse_structure(args.file, n_shells=args.shells, magnetic=args.magnetic or None,
                               spins=parse_pairs(args.spin, "--spin", float, "Cr=1.5"),
                               oxidation_states=parse_pairs(args.oxidation, "--oxidation", int, "V=2"),
                               shell_tol=args.tol)
    if args.json:
        print(json.dumps(report.as_dict(), indent=1))
    else:
        print(report.table())
    if args.plot:
        from ..structures.plot import plot_magnetic_lattice

        out = Path(args.plot)
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            plot_magnetic_lattice(report, out)
        except OSError as exc:
            raise WannmagError(f"{out}: cannot write the plot ({exc.strerror or exc})") from None
        if not args.json:
            print(f"\nplot written to {out}")
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "structure", help="magnetic sublattice, neighbour shells and superexchange paths of a structure file",
        description="Read a structure file (CIF, POSCAR/CONTCAR, xyz/extxyz, QE input, anything ASE or pymatgen "
                    "reads), find the magnetic ions and their spin S, the neighbour shells of the magnetic "
                    "sublattice (distance, multiplicity, every bond (i, j, R) once) and, for every bond, the bridging "
                    "ligands with M–X distances and M–X–M angles (edge-/corner-sharing) or the M–X–X–M paths.",
        epilog=EPILOG, formatter_class=FORMATTER)
    p.add_argument("file", help="structure file")
    p.add_argument("--shells", type=int, default=3, help="number of neighbour shells (default 3)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object with keys magnetic_sites, shells (distance, multiplicity, bonds), paths")
    p.add_argument("--plot", metavar="OUT.png", help="draw the magnetic lattice, bonds coloured by shell, ligands shown")
    p.add_argument("--magnetic", nargs="+", metavar="EL", help="elements to treat as magnetic (default: d/f ions with S > 0)")
    p.add_argument("--spin", nargs="+", metavar="EL=S", help="override the spin of an element, e.g. Cr=1.5")
    p.add_argument("--oxidation", nargs="+", metavar="EL=N", help="override an oxidation state, e.g. V=2")
    p.add_argument("--tol", type=float, default=0.05, help="bonds within TOL Å share a shell (default 0.05)")
    p.set_defaults(func=cmd_structure, inputs=(("file", "file"),))
