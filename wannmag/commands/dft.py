"""``wannmag dft``: total energies of collinear magnetic configurations with the embedded GPAW engine, optionally
followed by Wannierisation (up, down and spin-averaged MLWF Hamiltonians).

Energies: eV per cell in the run directories; the table prints E − E_FM in meV per magnetic ion.
"""

# Imports inside the functions are deliberate (CLI start-up: `wannmag --help` and argument errors stay fast).

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..errors import WannmagError
from ._common import EPILOG, parse_pairs


MAX_U = 20.0  # eV


def _parse_u(items):
    """--U 3.0  or  --U Cr=3.0 V=2.5  → float or dict (eV), each 0 ≤ U ≤ 20 eV."""
    if not items:
        return 3.0
    if len(items) == 1 and "=" not in items[0]:
        try:
            values = {"": float(items[0])}
        except ValueError:
            raise WannmagError(f"--U expects a number in eV or ELEMENT=U pairs, got {items[0]!r}") from None
    else:
        values = parse_pairs(items, "--U", float, "Cr=3.0")
    for el, u in values.items():
        if not 0.0 <= u <= MAX_U:  # also refuses NaN
            raise WannmagError(f"--U{' of ' + el if el else ''} must be between 0 and {MAX_U:g} eV, got {u}")
    return values[""] if "" in values else values


def _check_options(args) -> None:
    """Refuse nonsensical numbers before any file is read or any calculation starts."""
    if args.kdensity is not None and not 0.0 < args.kdensity <= 100.0:
        raise WannmagError(f"--kdensity must be a k-point density in (0, 100] points per Å⁻¹, got {args.kdensity}")
    if args.kpts is not None and not all(1 <= k <= 100 for k in args.kpts):
        raise WannmagError(f"--kpts must be three integers between 1 and 100, got {' '.join(map(str, args.kpts))}")
    if args.ecut is not None and not 50.0 <= args.ecut <= 5000.0:
        raise WannmagError(f"--ecut must be a plane-wave cutoff between 50 and 5000 eV, got {args.ecut}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise WannmagError(f"{out}: --out must be a directory, and this is an existing file")


def format_table(records) -> str:
    """E − E_FM per magnetic ion (meV), site moments (μB) and gaps (eV) of a list of DFTRecords."""
    by = {r.config: r for r in records}
    ref = by.get("FM")
    ref_e = ref.energy_per_ion if ref is not None else min(r.energy_per_ion for r in records)
    ref_name = "FM" if ref is not None else "min"
    lines = [f"{'config':<10} {'sites':>5} {'E (eV/cell)':>14} {f'E-E_{ref_name} (meV/ion)':>20}  "
             f"{'site moments (μB)':<28} {'gaps up/dn (eV)':<16} notes"]
    for r in records:
        mom = " ".join(f"{m:+.2f}" for m in r.site_moments[:6]) + (" …" if len(r.site_moments) > 6 else "")
        gaps = "/".join(f"{g:.2f}" for g in r.gaps)
        note = f"{len(r.warnings)} warning(s)" if r.warnings else ""
        lines.append(f"{r.config:<10} {r.n_sites:>5} {r.energy:14.6f} {1000 * (r.energy_per_ion - ref_e):20.2f}  "
                     f"{mom:<28} {gaps:<16} {note}")
    return "\n".join(lines)


def cmd_dft(args) -> int:
    from ..structures import read_structure
    from ..workflows.dft import run_dft

    _check_options(args)
    U = _parse_u(args.U)
    atoms = read_structure(args.structure)
    out = Path(args.out)
    from ..structures import honeycomb_configuration

    # resolve every configuration first, so that a bad name fails before any calculation starts
    configs = [c if str(c).upper() == "NM" else honeycomb_configuration(atoms, c) for c in args.config]
    records = []
    try:
        from tqdm import tqdm

        it = tqdm(configs, desc="configurations", unit="config", file=sys.stderr, disable=args.json)
    except ImportError:  # pragma: no cover
        it = configs
    for c in it:
        records.append(run_dft(atoms, c, preset=args.preset, U=U, workdir=out, kdensity=args.kdensity,
                               ecut=args.ecut, kpts=args.kpts, log=not args.json))
    wann = None
    if args.wannier:
        from ..workflows.wannier import wannier_models

        wann = wannier_models(atoms, preset=args.preset, U=U, workdir=out, outdir=out / "wannier",
                              projections=args.projections, kpts=args.kpts, ecut=args.ecut, log=not args.json)
    if args.json:
        print(json.dumps({"records": [r.as_dict() for r in records],
                          "wannier": {c: w.as_dict() for c, w in (wann or {}).items()}}, indent=1))
        return 0
    print()
    print(format_table(records))
    for r in records:
        for w in r.warnings:
            print(f"warning: {r.config}: {w}")
    if wann:
        print()
        print(f"{'channel':<8} {'WFs':>4} {'bands':>5} {'max spread (Å²)':>16} {'max centre offset (Å)':>22} "
              f"{'band error (meV)':>17}  files")
        for c, w in wann.items():
            print(f"{c:<8} {w.num_wann:>4} {w.num_bands:>5} {w.max_spread:16.3f} {w.max_centre_offset:22.3f} "
                  f"{w.band_error_meV:17.2f}  {w.files['_hr.dat']}")
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "dft", help="DFT(+U) energies of magnetic configurations with the embedded GPAW engine (+ Wannier90 MLWFs)",
        description="Run GPAW (PBE + Dudarev U on the metal d shell) for each requested collinear configuration of "
                    "a structure (FM and Néel in the primitive cell, zigzag and stripy in the rectangular cell), "
                    "one resumable run directory per configuration under --out; print E − E_FM per magnetic ion "
                    "(meV), site moments (μB) and band gaps per spin (eV).  With --wannier, also compute the up, "
                    "down and spin-averaged (non-spin-polarised) Wannier90 MLWF Hamiltonians (metal d + ligand p).",
        epilog=EPILOG)
    p.add_argument("structure", help="structure file (CIF, POSCAR, ...)")
    p.add_argument("--config", nargs="+", default=["FM", "Neel", "zigzag", "stripy"], metavar="NAME",
                   help="configurations: FM Neel zigzag stripy NM (default: the four ordered ones)")
    p.add_argument("--preset", choices=["fast", "accurate"], default="fast",
                   help="fast = LCAO dzp; accurate = plane waves 450 eV (default fast)")
    p.add_argument("--U", nargs="+", metavar="U", help="Dudarev U on the metal d in eV: one number or EL=U pairs "
                   "(default 3.0)")
    p.add_argument("--out", required=True, help="work directory (one sub-directory per configuration)")
    p.add_argument("--kdensity", type=float, help="k-point density in points per Å⁻¹ (default 5.5)")
    p.add_argument("--kpts", type=int, nargs=3, metavar="N", help="explicit k-mesh (overrides --kdensity)")
    p.add_argument("--ecut", type=float, help="plane-wave cutoff in eV (accurate preset)")
    p.add_argument("--wannier", action="store_true", help="also Wannierise (FM and non-spin-polarised runs)")
    p.add_argument("--projections", choices=["dp", "d"], default="dp", help="metal d + ligand p (default) or d only")
    p.add_argument("--json", action="store_true", help="print the records as JSON")
    p.set_defaults(func=cmd_dft, inputs=(("structure", "file"),))
