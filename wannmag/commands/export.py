"""``wannmag export``: write a wannmag SpinModel in another code's format (and convention); ``--from`` reads one."""

from __future__ import annotations

from pathlib import Path

from ..errors import WannmagError
from ._common import EPILOG, FORMATTER

FORMATS = ("tb2j", "vampire", "mcsolver", "magnopy", "wannmag")


def _read(path: Path, fmt: str):
    from ..magnetism import SpinModel, read_magnopy, read_mcsolver, read_tb2j, read_vampire

    readers = {"wannmag": SpinModel.load, "tb2j": read_tb2j, "vampire": read_vampire, "mcsolver": read_mcsolver,
               "magnopy": read_magnopy}
    return readers[fmt](path)


def cmd_export(args) -> int:
    from ..magnetism import write_magnopy, write_mcsolver, write_tb2j, write_vampire

    src = Path(args.model)
    model = _read(src, args.source_format)
    out = Path(args.out)
    if args.to == "wannmag":
        written = [model.save(out)]
    elif args.to == "tb2j":
        written = [write_tb2j(model, out, description=f"exported by wannmag from {src}")]
    elif args.to == "vampire":
        written = list(write_vampire(model, out.with_suffix(".UCF"), out.with_suffix(".mat")))
    elif args.to == "mcsolver":
        written = [write_mcsolver(model, out)]
    elif args.to == "magnopy":
        written = [write_magnopy(model, out)]
    else:  # pragma: no cover - argparse restricts choices
        raise WannmagError(f"unknown format {args.to}")
    for p in written:
        print(f"written {p}")
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "export", help="convert a spin model between wannmag, TB2J, Vampire, mcsolver and magnopy",
        description="Read MODEL (wannmag JSON by default, or --from another code's file) and write it as --to FORMAT. "
                    "Each conversion applies the target code's convention explicitly: TB2J (−, both directions, unit "
                    "spins, meV), Vampire (−½Σ_{i≠j}, unit spins, J), mcsolver (each bond once, spins S, K), magnopy "
                    "(its Notation flags).", epilog=EPILOG, formatter_class=FORMATTER)
    p.add_argument("model", metavar="MODEL")
    p.add_argument("out", metavar="OUT", help="output file (Vampire: OUT.UCF and OUT.mat)")
    p.add_argument("--to", choices=FORMATS, required=True)
    p.add_argument("--from", dest="source_format", choices=FORMATS, default="wannmag",
                   help="format of MODEL (default wannmag JSON)")
    p.set_defaults(func=cmd_export)
