"""``wannmag superexchange``: channel-by-channel exchange of a bond from a spin-averaged Wannier model."""

# Imports inside the functions are deliberate (CLI start-up: `wannmag --help` and argument errors stay fast).

from __future__ import annotations

import json
import warnings
from pathlib import Path

from ..errors import WannmagError
from ._common import EPILOG, FORMATTER


def load_spin_averaged(path):
    """(model, description) from a Wannier90 directory/seed: the non-spin-polarised ``*_nm`` seed if present (the
    spin-averaged model of the workflows layer), else the only single seed, else the up/down pair averaged (with a
    warning: the two channels have independent gauges).  ``sk:cri3`` / ``sk:vps3`` give the synthetic models."""
    from ..magnetism.superexchange.synthetic import SYNTHETIC
    from ..tightbinding.w90 import find_w90_models, gunzipped, read_w90, read_w90_seed

    spec = str(path)
    if spec.startswith("sk:"):
        key = spec[3:].lower()
        if key not in SYNTHETIC:
            raise WannmagError(f"unknown synthetic model {spec!r} (use sk:cri3 or sk:vps3)")
        m = SYNTHETIC[key]()
        return m, f"synthetic {m.name}"
    p = Path(spec)
    if not p.exists() and not any(Path(spec + s).exists() for s in ("_hr.dat", "_tb.dat")):
        raise WannmagError(f"{spec}: no such Wannier90 directory or seed")
    tmp = gunzipped(p)
    if tmp is not None:
        model, desc = load_spin_averaged(tmp)
        return model, f"{desc} [from {p}, gzipped]"
    found = find_w90_models(p)
    nm = [s for s in found.single if s.endswith(("_nm", ".nm"))]
    if nm:
        if len(nm) > 1:
            raise WannmagError(f"{spec}: several spin-averaged (_nm) seeds; give one seed")
        return read_w90_seed(nm[0]), f"{Path(nm[0]).name} (non-spin-polarised Wannier model)"
    if len(found.single) == 1 and not found.collinear:
        return read_w90_seed(found.single[0]), Path(found.single[0]).name
    if found.collinear:
        model = read_w90(p, kind="collinear")
        warnings.warn("no *_nm seed: averaging the up and down Wannier Hamiltonians, which have independent gauges "
                      "(use a non-spin-polarised Wannierisation for quantitative work)", stacklevel=2)
        return model.spin_averaged(), f"{model.name} (up/down averaged)"
    raise WannmagError(f"{spec}: several Wannier90 models ({', '.join(Path(s).name for s in found.single)}); "
                       "give the seed")


def _parse_compare(items) -> dict:
    import math

    out = {}
    for item in items or []:
        try:
            name, val = item.split("=", 1)
            if not name.strip() or not math.isfinite(float(val)):
                raise ValueError
            out[name.strip()] = float(val)
        except ValueError:
            raise WannmagError(f"--compare expects NAME=J_meV (e.g. 'energy mapping=-1.9'), got {item!r}") from None
    return out


def _compare_models(paths, shell: int) -> dict:
    from ..magnetism.spinmodel import SpinModel

    out = {}
    for path in paths or []:
        sm = SpinModel.load(path)
        sm.assign_shells()
        Js = [b.J_iso for b in sm.bonds if b.shell == shell]
        if not Js:
            raise WannmagError(f"{path}: no bond of shell {shell}")
        out[sm.meta.get("method", Path(path).stem)] = float(sum(Js) / len(Js))
    return out


def cmd_superexchange(args) -> int:
    from ..magnetism.superexchange import plot_channels, superexchange

    from ._common import check_kmesh, check_number, element_symbols

    if args.bond < 1:
        raise WannmagError(f"--bond must be a shell index ≥ 1, got {args.bond}")
    check_number(args.bond, "--bond", 1, 50, integer=True)
    for opt in ("U", "JH", "Up", "Jp", "tendq"):
        if getattr(args, opt) is not None:
            check_number(getattr(args, opt), f"--{opt}", 0)
    if args.delta is not None:
        check_number(args.delta, "--delta")
    check_kmesh(args.kmesh)
    elements = element_symbols(args.magnetic)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model, desc = load_spin_averaged(args.wannier_dir)
        comp = _parse_compare(args.compare)
        comp.update(_compare_models(args.compare_model, args.bond))
        params = {k: v for k, v in (("U", args.U), ("JH", args.JH), ("Up", args.Up), ("Jp", args.Jp),
                                    ("delta", args.delta), ("ten_dq", args.tendq)) if v is not None}
        if args.single_particle_ct:
            params["hund_ct"] = False
        res = superexchange(model, shells=(args.bond,), comparisons={args.bond: comp}, magnetic=elements, **params)
    msgs = [str(w.message) for w in caught]
    for m in msgs:
        if m not in res.warnings:
            res.warnings.append(m)
    if args.save_model:
        bad = [b for b in res.bonds if not b.in_range]
        if bad:
            raise WannmagError(f"{args.wannier_dir}: --save-model: shell {args.bond} has no perturbative J "
                               f"({bad[0].status}); use the force theorem or --ed for this bond")
    green = _green(args, elements) if args.green else None
    ed = None
    if args.ed:
        from ..magnetism.superexchange.cluster import cluster_channels

        b0 = res.bonds[0]
        ed = cluster_channels(b0.hoppings, b0.params, n_sectors=None if args.ed_full_ladder else 2)
    if args.json:
        d = res.as_dict()
        d["model"] = desc
        if green is not None:
            d["green_channels"] = [g.as_dict() for g in green]
        if ed is not None:
            d["cluster_ed"] = ed.as_dict()
        print(json.dumps(d, indent=1, ensure_ascii=False))
    else:
        print(f"model: {desc}")
        print(res.table())
        if green is not None:
            print(f"\nnon-perturbative channels (force theorem on the spin-polarised model, local octahedral frames; "
                  f"J > 0 AF, meV, internal convention), shell {args.bond}:")
            for g in green:
                print(f"  {g.i}-{g.j} R={list(g.R)} d={g.distance:.3f} Å  J = {g.J:+.3f}  "
                      + "  ".join(f"{k} {v:+.3f}" for k, v in g.channels.items()))
        if ed is not None:
            print("\nnon-perturbative channels by exact diagonalisation of the bond's cluster (first bond of the "
                  "shell; docs/superexchange.md §10):")
            print(ed.table())
    if args.save_model:
        res.to_spin_model().save(args.save_model)
    if args.plot:
        out = plot_channels({res.name: res.bonds[0]}, args.plot,
                            title=f"{res.name}: superexchange channels of shell {args.bond}")
        if not args.json:
            print(f"\nplot written to {out}")
    return 0


def _green(args, elements=None):
    """Green's-function channels of shell ``args.bond`` from the up/dn Wannier files next to the spin-averaged ones."""
    from ..magnetism.superexchange.green import green_channels
    from ..tightbinding import read_w90

    if str(args.wannier_dir).startswith("sk:"):
        raise WannmagError("--green needs spin-polarised Wannier files (seed_up/seed_dn), not a synthetic sk: model")
    try:
        model = read_w90(args.wannier_dir, kind="collinear")
    except WannmagError as exc:
        raise WannmagError(f"{args.wannier_dir}: --green needs the spin-up and spin-down Wannier files ({exc})") from None
    return green_channels(model, shells=(args.bond,), kmesh=tuple(args.kmesh), magnetic=elements)


def register(sub) -> None:
    p = sub.add_parser(
        "superexchange", help="channel-by-channel superexchange (t2g³ ions) of a bond from a Wannier model",
        description="Decompose the metal–metal hopping of every bond of a neighbour shell of a spin-averaged Wannier "
                    "model into paths (direct d–d, through each bridging ligand and p orbital, M–X–X–M), sum them "
                    "coherently and incoherently (antiphase paths are flagged), and compute the exchange per channel "
                    "for t2g³ ions (S = 3/2: Cr3+, V2+) in the Kanamori model: AF t2g–t2g and FM t2g–eg kinetic "
                    "exchange, the charge-transfer (two ligand holes) channels and their interference with the "
                    "direct hop.  WANNIER_DIR: a Wannier90 directory or seed (the *_nm seed is used when present; "
                    "*.gz files are read), or sk:cri3 / sk:vps3 for the synthetic Slater–Koster models.  Formulas "
                    "and their derivation: docs/superexchange.md.",
        epilog=EPILOG, formatter_class=FORMATTER)
    p.add_argument("wannier_dir", metavar="WANNIER_DIR", help="Wannier90 directory or seed, or sk:cri3 / sk:vps3")
    p.add_argument("--bond", type=int, default=1, metavar="SHELL", help="neighbour shell to analyse (default 1)")
    p.add_argument("--U", type=float, help="Kanamori U on the metal (eV; default 3.0 for Cr, V)")
    p.add_argument("--JH", type=float, help="Hund J_H on the metal (eV; default 0.7; U' = U − 2J_H)")
    p.add_argument("--Up", type=float, help="ligand U_p (eV; default by element, e.g. I 2.0, S 3.0)")
    p.add_argument("--Jp", type=float, help="ligand Hund J_p (eV; default by element, e.g. I 0.5, S 0.7)")
    p.add_argument("--delta", type=float, help="multiplet-averaged charge-transfer energy Δ = ε̄_d − ε̄_p (eV; default "
                                                "from the model, as `wannmag tb`); Δ into t2g⁴ ³T1 is "
                                                "Δ − 0.4·10Dq + 8J_H/3")
    p.add_argument("--tendq", type=float, help="bare eg − t2g splitting 10Dq (eV; default: the model's on-site d "
                                                "levels in the local octahedral frame)")
    p.add_argument("--single-particle-ct", action="store_true",
                   help="charge-transfer denominators without multiplet resolution (textbook t_pd²/Δ; comparison only)")
    p.add_argument("--compare", nargs="+", metavar="NAME=J", help="J of the same shell from other routes (meV, "
                                                                   "internal convention), shown side by side")
    p.add_argument("--compare-model", nargs="+", metavar="SPINMODEL.json",
                   help="SpinModel JSON files (energy mapping, force theorem) whose shell-mean J is shown side by side")
    p.add_argument("--green", action="store_true",
                   help="also the non-perturbative channels: orbital-resolved force theorem (t2g–t2g, t2g–eg, eg–eg) "
                        "on the spin-polarised Wannier pair in the same directory — the reference when t_pd/Δ ≳ 1")
    p.add_argument("--kmesh", type=int, nargs=3, default=[9, 9, 1], help="k-mesh of --green (default 9 9 1)")
    p.add_argument("--ed", action="store_true",
                   help="also the non-perturbative channels by exact diagonalisation of the bond's M2X2 cluster "
                        "(restricted Fock space; J and J with one ligand, t2g or eg hoppings switched off, the "
                        "interference of the two ligands); ≈ 5 min for a d+p bond on one core")
    p.add_argument("--ed-full-ladder", action="store_true",
                   help="with --ed: all four multiplets S_tot = 0…3 (Landé fit and ladder deviation; ≈ 4× longer) "
                        "instead of the top step E(2) − E(3)")
    p.add_argument("--magnetic", nargs="+", metavar="ELEMENT",
                   help="the magnetic (metal) elements, e.g. Cr (default: from the structure and the d orbitals)")
    p.add_argument("--json", action="store_true", help="print one JSON object (bonds, channels, paths, parameters)")
    p.add_argument("--plot", metavar="OUT.png", help="bar chart of the channel contributions")
    p.add_argument("--save-model", metavar="OUT.json", help="write the SpinModel (J of every analysed bond)")
    p.set_defaults(func=cmd_superexchange, inputs=(("wannier_dir", "w90"),))
