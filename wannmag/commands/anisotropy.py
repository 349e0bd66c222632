"""``wannmag anisotropy``: magnetic anisotropy of a collinear order — dipolar (shape) term by 2D Ewald summation,
single-ion and exchange anisotropy of a spin model (XXZ λ, Kitaev K, Γ, Γ′ of the nearest-neighbour bonds), their
total and the predicted easy axis; optionally the magnon bands (linear spin-wave theory) as a PNG.

Conventions: ΔE = E(in-plane) − E(out-of-plane) in meV per magnetic ion (> 0: out-of-plane easy axis), in-plane =
mean over x ∥ a1 and y; H = Σ_{i<j} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i, each bond once, spins of length S, J > 0 AF;
moments g S μ_B (g from the model, default 2).
"""

# Imports inside the functions are deliberate (CLI start-up: `wannmag --help` and argument errors stay fast).

from __future__ import annotations

import json
from pathlib import Path

from ..errors import WannmagError
from ._common import EPILOG, FORMATTER


def _load_source(path: str):
    from ..magnetism.spinmodel import SpinModel

    p = Path(path)
    if not p.exists():
        raise WannmagError(f"{path}: no such file")
    if not p.is_file():
        raise WannmagError(f"{path}: not a regular file")
    if p.suffix.lower() == ".json":
        try:
            head = json.loads(p.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            head = None
        if isinstance(head, dict) and head.get("format") == "wannmag.SpinModel":
            return SpinModel.from_dict(head, source=str(p)), True
    from ..structures import read_structure

    return read_structure(p), False


def _fmt(x, unit="meV/ion"):
    return "n/a" if x is None else f"{x:+.5f} {unit}"


def _table(src: str, s: dict) -> str:
    lines = [f"anisotropy of {src}: order {s['order']} ({s['n_sites']} magnetic sites in the magnetic cell)",
             "  ΔE = E(in-plane) − E(out-of-plane) in meV per magnetic ion; ΔE > 0 favours out-of-plane moments",
             f"  {'term':<34s}{'ΔE':>18s}   method"]
    d = s["dipolar"]
    lines.append(f"  {'dipolar (shape)':<34s}{_fmt(d['delta_meV']):>18s}   {d['method']}"
                 + (" [already in model, not added]" if "note" in d else ""))
    if "stored_in_model_meV" in d or "note" in d:
        lines.append(f"    counted once: {d['counted']}")
    sia = s["single_ion"]
    lines.append(f"  {'single-ion anisotropy (SIA)':<34s}{_fmt(sia['delta_meV'] if sia else None):>18s}   "
                 f"{sia['method'] if sia else 'needs a spin model'}")
    ex = s["exchange"]
    lines.append(f"  {'exchange anisotropy':<34s}{_fmt(ex['delta_meV'] if ex else None):>18s}   "
                 f"{ex['method'] if ex else 'needs a spin model'}")
    if ex and "xxz_lambda_meV" in ex:
        lines.append(f"    {'XXZ λ = J_zz − J_⊥ (NN bond)':<32s}{_fmt(ex['xxz_lambda_meV'], 'meV'):>18s}   "
                     f"C3 average of {ex['nn_bonds']} NN bonds, J_iso = {ex['J_iso_nn_meV']:+.4f} meV")
        k = ex.get("kitaev")
        if k:
            lines.append(f"    {'Kitaev K':<32s}{_fmt(k['K'], 'meV'):>18s}   ligand cubic frame (Rau–Lee–Kee)")
            lines.append(f"    {'Γ':<32s}{_fmt(k['Gamma'], 'meV'):>18s}")
            lines.append(f"    {'Γ′':<32s}{_fmt(k['Gamma_prime'], 'meV'):>18s}")
        else:
            lines.append(f"    {'Kitaev K, Γ, Γ′':<32s}{'n/a':>18s}   give --structure (ligands define the frame)")
    lines.append(f"  {'total':<34s}{_fmt(s['total_delta_meV']):>18s}")
    lines.append(f"  predicted easy axis: {s['easy_axis']}")
    if "note" in s:
        lines.append(f"  note: {s['note']}")
    return "\n".join(lines)


def cmd_anisotropy(args) -> int:
    from ..magnetism.anisotropy import anisotropy_summary

    import math

    if args.g is not None and not (math.isfinite(args.g) and 0 < args.g <= 10):
        raise WannmagError(f"--g must be a g-factor in (0, 10], got {args.g}")
    if not 2 <= args.npoints <= 10000:
        raise WannmagError(f"--npoints must be between 2 and 10000, got {args.npoints}")
    if args.path is not None and not args.path.strip():
        raise WannmagError("--path is empty: give k-point labels, e.g. GMKG")
    source, is_model = _load_source(args.source)
    pattern = None
    if args.pattern:
        try:
            pattern = [int(x) for x in args.pattern.replace(",", " ").split()]
        except ValueError:
            pattern = None
        if not pattern or any(abs(x) != 1 for x in pattern):
            raise WannmagError(f"--pattern must be ±1 values separated by commas, got {args.pattern!r}")
        if is_model and len(pattern) != source.n_sites:
            raise WannmagError(f"--pattern has {len(pattern)} value(s) but {args.source} has {source.n_sites} sites: "
                               "give one ±1 per site of the model's cell")
    structure = None
    if args.structure:
        from ..structures import read_structure

        structure = read_structure(args.structure)
    summary = anisotropy_summary(source, order=args.order, pattern=pattern, structure=structure, g=args.g)
    if args.plot:
        if not is_model:
            raise WannmagError("--plot draws magnon bands and needs a spin model (MODEL.json), not a structure")
        from ..magnetism.anisotropy.lswt import spin_waves_for_order
        from ..magnetism.anisotropy.plot import plot_magnon_bands

        sw, axis = spin_waves_for_order(source, args.order if pattern is None else None, pattern=pattern)
        path = args.path
        if path is None and sw.n == source.n_sites and source.n_sites == 2:
            path = "GMKG"
        bp, E = sw.band_path(path, npoints=args.npoints)
        gap = sw.gap()
        plot_magnon_bands(bp, E, args.plot, title=f"{Path(args.source).name}: {summary['order']}, LSWT", gap=gap)
        summary["magnons"] = {"plot": str(args.plot), "gap_meV": gap, "axis": [float(x) for x in axis],
                              "path": bp.path}
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        print(_table(Path(args.source).name, summary))
        if "magnons" in summary:
            print(f"  magnon gap at Γ (LSWT): {summary['magnons']['gap_meV']:.4f} meV; bands → {args.plot}")
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "anisotropy", help="dipolar, single-ion and exchange anisotropy of a collinear order; magnon bands",
        description="Magnetic anisotropy per magnetic ion of a collinear order: dipolar (shape) term by 2D Ewald "
                    "summation of point moments g S μB, and for a spin model (MODEL.json) its single-ion and exchange "
                    "anisotropy (XXZ λ, Kitaev K, Γ, Γ′ of the NN bonds), the total and the predicted easy axis.",
        epilog=EPILOG, formatter_class=FORMATTER)
    p.add_argument("source", metavar="MODEL.json|STRUCTURE", help="wannmag spin model (JSON) or a structure file")
    p.add_argument("--order", default="FM", help="collinear order: FM, Neel, zigzag, stripy (default FM)")
    p.add_argument("--pattern", help="explicit up/down pattern on the model's cell, e.g. '1,-1' (overrides --order)")
    p.add_argument("--structure", help="structure file of a model, for the Kitaev frame of the NN bonds (ligands)")
    p.add_argument("--g", type=float, default=None, help="g-factor of the moments (default: the model's, else 2)")
    p.add_argument("--plot", metavar="OUT.png", help="magnon bands (linear spin-wave theory) of the model")
    p.add_argument("--path", default=None, help="k-path for --plot (ase labels, default GMKG for the honeycomb)")
    p.add_argument("--npoints", type=int, default=200, help="k-points along the path (default 200)")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.set_defaults(func=cmd_anisotropy, inputs=(("source", "file"), ("structure", "file")))
