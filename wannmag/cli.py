"""The ``wannmag`` command line.

Conventions (all sub-commands): TB energies in eV, exchange in meV, temperatures in K, lengths in Å; spin Hamiltonian
H = Σ_{i<j} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i, each bond once, classical spins of length S, J > 0 antiferromagnetic.
Errors in the input are reported as one line ``wannmag: error: ...`` with exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__
from .commands import COMMANDS
from .commands._common import EPILOG, FORMATTER
from .errors import WannmagError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wannmag",
        description="wannmag: from DFT and Wannier functions to exchange constants, anisotropy and ordering "
                    "temperatures of 2D magnets.",
        epilog=EPILOG, formatter_class=FORMATTER)
    parser.add_argument("--version", action="version", version=f"wannmag {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"wannmag.commands.{name}").register(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except WannmagError as exc:
        print(f"wannmag: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `wannmag structure ... | head`
        return 0
    except KeyboardInterrupt:
        print("wannmag: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
