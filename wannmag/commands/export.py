"""``wannmag export``: write a wannmag SpinModel in another code's format (and convention); ``--from`` reads one."""

# Imports inside the functions are deliberate (CLI start-up: `wannmag --help` and argument errors stay fast).

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


def _check_target(path: Path) -> None:
    if path.is_dir():
        raise WannmagError(f"{path}: is a directory; give an output file name")
    if path.exists() and not path.is_file():
        raise WannmagError(f"{path}: not a regular file; give an output file name")


def _exported_terms(model, fmt: str) -> str:
    """One line saying which terms of the model the target format receives."""
    if fmt == "tb2j":
        single = "single-ion terms not written (TB2J holds none)"
    elif not any(a.any() for a in model.single_ion):
        single = "no single-ion terms"
    elif model.has_dipolar_single_ion:
        d = model.dipolar_info.get("delta_meV_per_ion")
        size = f"{d:+.4f} meV/ion" if isinstance(d, (int, float)) else "size not recorded"
        single = ("single-ion terms: the total, including the dipolar shape term (" + size + ")"
                  + (", kept as a labelled part" if fmt == "wannmag" else ""))
    else:
        single = "single-ion terms: as in the model (no dipolar part)"
    return f"exported: {len(model.bonds)} exchange bonds (full tensors where the format holds them); {single}"


def cmd_export(args) -> int:
    import sys
    import warnings

    from ..magnetism import write_magnopy, write_mcsolver, write_tb2j, write_vampire

    src = Path(args.model)
    out = Path(args.out)
    targets = [out.with_suffix(".UCF"), out.with_suffix(".mat")] if args.to == "vampire" else [out]
    for t in targets:
        _check_target(t)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = _read(src, args.source_format)
        try:
            if args.to == "wannmag":
                written = [model.save(out)]
            elif args.to == "tb2j":
                written = [write_tb2j(model, out, description=f"exported by wannmag from {src}")]
            elif args.to == "vampire":
                written = list(write_vampire(model, targets[0], targets[1]))
            elif args.to == "mcsolver":
                written = [write_mcsolver(model, out)]
            elif args.to == "magnopy":
                written = [write_magnopy(model, out)]
            else:  # pragma: no cover - argparse restricts choices
                raise WannmagError(f"unknown format {args.to}")
        except OSError as exc:
            where = exc.filename if str(exc.filename) in map(str, targets) else out  # not the temporary name
            raise WannmagError(f"{where}: cannot write ({exc.strerror or type(exc).__name__})") from None
    for w in caught:
        print(f"wannmag: warning: {' '.join(str(w.message).split())}", file=sys.stderr)
    for p in written:
        print(f"written {p}")
    print(_exported_terms(model, args.to))
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "export", help="convert a spin model between wannmag, TB2J, Vampire, mcsolver and magnopy",
        description="Read MODEL (wannmag JSON by default, or --from another code's file) and write it as --to FORMAT. "
                    "Each conversion applies the target code's convention explicitly: TB2J (−, both directions, unit "
                    "spins, meV), Vampire (−½Σ_{i≠j}, unit spins, J), mcsolver (each bond once, spins S, K), magnopy "
                    "(its Notation flags).", epilog=EPILOG, formatter_class=FORMATTER)
    p.add_argument("model", metavar="MODEL",
                   help="the spin model to convert: a wannmag SpinModel JSON (written by 'wannmag run', 'exchange mft "
                        "--save-model', ...), or with --from another code's file: TB2J exchange.out, Vampire OUT.UCF "
                        "(its OUT.mat beside it), an mcsolver save file, a magnopy model file")
    p.add_argument("out", metavar="OUT", help="output file to write (Vampire: OUT.UCF and OUT.mat; missing parent "
                                              "folders are created); an existing file is replaced")
    p.add_argument("--to", choices=FORMATS, required=True,
                   help="format (and convention) of OUT: tb2j, vampire, mcsolver, magnopy, or wannmag (JSON)")
    p.add_argument("--from", dest="source_format", choices=FORMATS, default="wannmag",
                   help="format of MODEL (default wannmag JSON)")
    p.set_defaults(func=cmd_export, inputs=(("model", "file"),))
