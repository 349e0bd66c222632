"""``wannmag tb``: orbitals, on-site and crystal-field levels, Δ, the ZSA classification and the largest hoppings of
a Wannier90 tight-binding model (a spin pair or a single model)."""

# Imports inside the functions are deliberate (CLI start-up: `wannmag --help` and argument errors stay fast).

from __future__ import annotations

import json
from pathlib import Path

from ..errors import WannmagError
from ._common import EPILOG, check_number, element_symbols, output_dir

def cmd_tb(args) -> int:
    from ..tightbinding import read_w90, tb_report
    from ..tightbinding.localframe import metal_atoms

    check_number(args.U, "--U", 0)
    check_number(args.centre_tol, "--centre-tol", 0, strict=True)
    check_number(args.shells, "--shells", 1, 20, integer=True)
    if args.efermi is not None:
        check_number(args.efermi, "--efermi")
    if args.nelect is not None:
        if len(args.nelect) not in (1, 2):
            raise WannmagError(f"--nelect takes one number or N_up N_down, got {len(args.nelect)} numbers")
        for n in args.nelect:
            check_number(n, "--nelect", 0, 1e5, strict=True)
        if args.efermi is not None:
            raise WannmagError("give --nelect or --efermi, not both")
    elements = element_symbols(args.magnetic)
    mdrs = {"auto": None, "on": True, "off": False}[args.mdrs]
    kind = {"auto": "auto", "single": "single", "collinear": "collinear"}[args.kind]
    model = read_w90(args.path, centre_tol=args.centre_tol, mdrs=mdrs, kind=kind)
    metals = metal_atoms(model, elements) if elements else None
    nel = None
    if args.nelect is not None:
        nel = tuple(args.nelect) if len(args.nelect) == 2 else args.nelect[0]
    rep = tb_report(model, U=args.U, n_electrons=nel, fermi_energy=args.efermi, n_shells=args.shells, metals=metals)
    if args.json:
        print(_shipped_paths(json.dumps(rep.as_dict(), indent=1, default=_jsonable), model, args.path))
    else:
        print(_shipped_paths(rep.table(), model, args.path))
    if args.plot:
        from ..tightbinding.electronic import projected_dos
        from ..tightbinding.plot import plot_bands, plot_crystal_field, plot_pdos

        out = output_dir(args.plot, "--plot (the directory for bands.png, pdos.png, ...)")
        ef = rep.classification.edges.fermi_energy if rep.classification and rep.classification.edges else None
        written = [out / "bands.png", out / "pdos.png"]
        plot_bands(model, written[0], fermi_energy=ef, dft=_dft_bands(model))
        plot_pdos(projected_dos(model), written[1], fermi_energy=ef)
        if rep.crystal_fields:
            written.append(out / "crystal_field.png")
            plot_crystal_field(rep.crystal_fields, written[-1])
        if not args.json:
            print("\nplots written: " + ", ".join(str(p) for p in written))
    return 0


def _shipped_paths(text: str, model, path) -> str:
    """``text`` with the temporary directory of decompressed ``*.gz`` Wannier90 files (removed at exit) replaced by
    the files the user gave (``DIR/seed_hr.dat.gz``), so that no printed path points at a deleted file."""
    import re

    src = Path(str(getattr(getattr(model, "up", model), "source", "") or ""))
    if not src.parent.name.startswith("wannmag_w90_"):
        return text
    given = Path(path)
    orig = given if given.is_dir() else given.parent

    def shipped(m):
        gz = orig / (m.group(1) + ".gz")
        return str(gz if gz.exists() else orig / m.group(1))

    return re.sub(re.escape(str(src.parent)) + r"/([^\s\]\"',]+)", shipped, text)


def _dft_bands(model) -> list[dict]:
    """DFT eigenvalues written next to the Wannier90 files by the DFT workflow (``<seed>_dft_bands.json``)."""
    chans = [model.up, model.down] if hasattr(model, "up") else [model]
    out = []
    for m in chans:
        src = str(m.source)
        for suf in ("_hr.dat", "_tb.dat"):
            if src.endswith(suf):
                p = Path(src[:-len(suf)] + "_dft_bands.json")
                if p.exists():
                    try:
                        d = json.loads(p.read_text())
                        out.append({"k": d["kpoints_frac"], "energies": d["bands"],
                                    "label": f"DFT {d.get('channel', '')}".strip()})
                    except (ValueError, KeyError, TypeError):
                        raise WannmagError(f"{p}: not a DFT band file (needs kpoints_frac and bands)") from None
    return out


def _jsonable(x):
    import numpy as np

    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, tuple):
        return list(x)
    raise TypeError(type(x).__name__)


def register(sub) -> None:
    p = sub.add_parser(
        "tb", help="tight-binding analysis of a Wannier90 model: crystal field, Δ, Mott–Hubbard vs charge-transfer",
        description="Read a Wannier90 model (a directory or seedname: S_hr.dat or S_tb.dat with S.win projections "
                    "and S_centres.xyz, optionally S_wsvec.dat; a spin pair S_up/S_dn is read as a collinear model) "
                    "through wannierberri and report the orbitals, the on-site levels (and exchange splittings), the "
                    "d levels in the local octahedral frame (t2g/eg, 10Dq, a1g/eg'), the charge-transfer energy "
                    "Δ = ε_d − ε_p, the Zaanen–Sawatzky–Allen classification against U with the numbers behind it, "
                    "and the largest hoppings per bond.",
        epilog=EPILOG)
    p.add_argument("path", help="Wannier90 directory, seedname, or one of the seed's files")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--plot", metavar="DIR", help="write bands.png, pdos.png and crystal_field.png into DIR")
    p.add_argument("--U", type=float, default=3.0, help="on-site Coulomb U of the d shell in eV (default 3.0)")
    p.add_argument("--nelect", type=float, nargs="+", metavar="N",
                   help="electrons per cell in the Wannier manifold (one number, or N_up N_down for a spin pair); "
                        "default: fermi_energy of the .win, else the nominal ionic count")
    p.add_argument("--efermi", type=float, help="Fermi energy in eV (instead of --nelect)")
    p.add_argument("--shells", type=int, default=3, help="metal–metal neighbour shells for the hopping table")
    p.add_argument("--centre-tol", type=float, default=0.5,
                   help="largest distance (Å) of a Wannier centre from its atom (default 0.5)")
    p.add_argument("--magnetic", nargs="+", metavar="ELEMENT",
                   help="the magnetic (metal) elements, e.g. Cr (default: the atoms carrying d orbitals)")
    p.add_argument("--mdrs", choices=["auto", "on", "off"], default="auto",
                   help="apply S_wsvec.dat (MDRS); auto = if the file exists")
    p.add_argument("--kind", choices=["auto", "single", "collinear"], default="auto",
                   help="which model to read when the path holds both a spin pair and a single model")
    p.set_defaults(func=cmd_tb, inputs=(("path", "w90"),))
