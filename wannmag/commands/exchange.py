"""``wannmag exchange``: exchange constants by energy mapping (``map-energies``) or the magnetic force theorem
(``mft``); every route side by side (``compare``).

Conventions: internal J in meV, H = Σ_{i<j} J_ij S_i·S_j (each bond once, spins of length S, J > 0 antiferromagnetic);
the force theorem also prints TB2J's convention (E = −Σ_{i≠j} J e_i·e_j, both directions, unit spins, > 0 FM).
"""

# Imports inside the functions are deliberate (CLI start-up: `wannmag --help` and argument errors stay fast).

from __future__ import annotations

import json
from pathlib import Path

from ..errors import WannmagError
from ._common import EPILOG, FORMATTER


def _energy_records(path: Path, n_shells: int | None, spin: float | None, structure=None):
    """EnergyData of FILE.json or of a directory: its ``*energies*.json``, a run's ``steps/dft.json`` or the
    ``*/summary.json`` of a ``wannmag dft --out DIR`` (all of them, one configuration each)."""
    from .._atomic import read_json
    from ..magnetism.energy_mapping import EnergyData, FitError, read_energies

    if not path.exists():
        raise WannmagError(f"{path}: no such file or directory")
    if path.is_dir():
        candidates = sorted(path.glob("*energies*.json")) or sorted(path.glob("steps/dft.json"))
        if candidates:
            data = read_energies(candidates[0], structure, n_shells)
            data.notes.insert(0, f"read {candidates[0]}")
        else:
            summaries = sorted(p for p in path.glob("*/summary.json") if p.is_file())
            if not summaries:
                raise WannmagError(f"{path}: no energies JSON (*energies*.json, steps/dft.json or */summary.json) "
                                   "in this directory")
            import tempfile

            recs = [read_json(p, FitError) for p in summaries]
            with tempfile.TemporaryDirectory() as tmp:
                joined = Path(tmp) / "records.json"
                joined.write_text(json.dumps({"records": recs}))
                data = read_energies(joined, structure, n_shells)
            for r in data.records:
                r.source = str(path)
            data = EnergyData(data.records, data.distances, data.spin, data.format,
                              [f"read {len(summaries)} summary.json files of {path}"] + data.notes)
    elif not path.is_file():
        raise WannmagError(f"{path}: not a regular file")
    else:
        data = read_energies(path, structure, n_shells)
    if spin is not None:
        data.spin = spin
    elif data.spin is None:
        data.spin = 1.5
        data.notes.append("spin length S = 3/2 (not in the file; --spin to change)")
    return data


def _check_options(args) -> None:
    import math

    if args.shells is not None and not 1 <= args.shells <= 20:
        raise WannmagError(f"--shells must be between 1 and 20, got {args.shells}")
    if args.spin is not None and not (math.isfinite(args.spin) and 0 < args.spin <= 50):
        raise WannmagError(f"--spin must be a spin length in (0, 50], got {args.spin}")
    if not (math.isfinite(args.max_condition) and args.max_condition > 1):
        raise WannmagError(f"--max-condition must be a finite number above 1, got {args.max_condition}")
    if args.plot:
        plot = Path(args.plot)
        if plot.is_dir():
            raise WannmagError(f"{plot}: is a directory; give a PNG file name for --plot")
        if plot.exists() and not plot.is_file():
            raise WannmagError(f"{plot}: not a regular file; give a PNG file name for --plot")


def cmd_map_energies(args) -> int:
    import numpy as np

    from ..magnetism.energy_mapping import FitError, fit_exchange

    _check_options(args)
    structure = None
    if args.structure:
        from ..structures import read_structure

        structure = read_structure(args.structure)
        structure.info["name"] = str(args.structure)
    data = _energy_records(Path(args.source), args.shells, args.spin, structure)
    if args.plot and not data.distances:
        raise WannmagError(f"{args.source}: the energies give no shell distances ('distances'); cannot plot J(r)")
    try:
        fit = fit_exchange(data.records, n_shells=args.shells, spin=data.spin, distances=data.distances,
                           max_condition=args.max_condition)
    except FitError as exc:
        raise FitError(str(exc) if str(exc).startswith(str(args.source)) else f"{args.source}: {exc}") from None
    if not (np.all(np.isfinite(fit.J)) and np.isfinite(fit.E0)):  # pragma: no cover - fit_exchange refuses these
        raise WannmagError(f"{args.source}: the fit gave non-finite exchange constants")
    if args.json:
        print(json.dumps({**fit.as_dict(), "format": data.format, "notes": data.notes}, indent=1))
    else:
        print(f"{args.source}: {data.format}" + "".join(f"; {n}" for n in data.notes))
        print(fit.table())
    if args.plot:
        _plot_j_of_r(fit.distances, fit.J, args.plot, "energy mapping")
        if not args.json:
            print(f"plot: {args.plot}")
    return 0


def _plot_j_of_r(distances, J, path, label):
    """J (meV, J > 0 AF) against the shell distance (Å) for a fit without a structure; written atomically (parent
    folders are created; an unwritable target is one error line)."""
    import io

    from matplotlib.figure import Figure

    from .._atomic import atomic_write_bytes

    if not distances:
        raise WannmagError("the energies file gives no shell distances ('distances'); cannot plot J(r)")
    fig = Figure(figsize=(5.5, 4))
    ax = fig.subplots()
    ax.axhline(0, color="0.6", lw=0.8)
    ax.plot(distances[:len(J)], J, "o-", label=label)
    for n, (d, j) in enumerate(zip(distances, J), start=1):
        ax.annotate(f"J{n}", (d, j), textcoords="offset points", xytext=(4, 4))
    ax.set_xlabel("bond length (Å)")
    ax.set_ylabel("J (meV), J > 0 AF, each bond once, |S| = S")
    ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=130)
    try:
        atomic_write_bytes(Path(path), buf.getvalue())
    except OSError as exc:
        raise WannmagError(f"{path}: cannot write the plot ({exc.strerror or type(exc).__name__})") from None


def cmd_mft(args) -> int:
    import warnings

    from ..magnetism.mft import (MAX_ENERGY_POINTS, hamiltonian_from_tb, lkag_exchange, mft_spin_model,
                                 orbital_blocks)
    from ..tightbinding import read_w90
    from ..tightbinding.localframe import metal_atoms
    from ._common import check_kmesh, check_number, element_symbols

    check_kmesh(args.kmesh)
    check_number(args.poles, "--poles", 1, MAX_ENERGY_POINTS, integer=True)
    check_number(args.rcut, "--rcut", 0, strict=True)
    check_number(args.centre_tol, "--centre-tol", 0, strict=True)
    if args.efermi is not None:
        check_number(args.efermi, "--efermi")
    if args.nelect is not None:
        check_number(args.nelect, "--nelect", 0, strict=True)
        if args.efermi is not None:
            raise WannmagError("give --nelect or --efermi, not both")
    for target in (args.save_model, args.plot):
        if target and Path(target).is_dir():
            raise WannmagError(f"{target}: is a directory; give a file name to write")
    elements = element_symbols(args.magnetic)
    user_occupation = args.efermi is not None or args.nelect is not None
    model = read_w90(args.source, kind="collinear", centre_tol=args.centre_tol)
    ham = hamiltonian_from_tb(model, magnetic=metal_atoms(model, elements) if elements else None)
    if args.efermi is None and args.nelect is None:
        # the occupation of the Wannier manifold: fermi_energy of the .win file (written by wannmag's Wannierisation
        # and by most DFT interfaces), else the nominal ionic count; the Fermi level goes to mid-gap
        from ..tightbinding.electronic import midgap_fermi_level

        try:
            args.efermi, how = midgap_fermi_level(model)
        except WannmagError as exc:
            raise WannmagError(f"{args.source}: cannot fix the occupation ({exc}); give --nelect (electrons per cell "
                               "in the Wannier manifold) or --efermi (eV)") from None
        print(f"Fermi level {args.efermi:.3f} eV: {how}")
    rotations, groups = None, None
    if args.orbital_resolved:
        from ..tightbinding.localframe import local_frames

        frames = local_frames(model.up, metals=ham.magnetic)
        # local orbital m = Σ_m' D[m', m] f_m' (global): new basis = Dᵀ @ old
        rotations = {k: frames[a].d_matrix().T for k, a in enumerate(ham.magnetic) if a in frames}
        groups = {"t2g": [1, 2, 4], "eg": [0, 3]}
    res = lkag_exchange(ham, kmesh=tuple(args.kmesh), efermi=args.efermi, n_electrons=args.nelect,
                        n_energy=args.poles, rcut=args.rcut, progress=not args.json, rotations=rotations)
    if user_occupation:  # a wrong electron count puts E_F inside the bands of an insulator: say so
        from ..tightbinding.electronic import fermi_level_warning

        msg = fermi_level_warning(model, res.efermi)
        if msg:
            res.warnings.append(msg)
            warnings.warn(msg, stacklevel=1)
    blocks = orbital_blocks(res, groups) if groups else None
    if args.json:
        out = {"convention": "J: H = sum_{i<j} J S_i.S_j, each bond once, |S| = S, J > 0 AF, meV; "
                             "J_TB2J: E = -sum_{i!=j} J e_i.e_j, unit spins, > 0 FM",
               "efermi_eV": res.efermi, "kmesh": list(res.kmesh), "n_energy": res.n_energy,
               "reference_moments": list(res.moment_signs), "reference": res.reference(),
               "warnings": list(res.warnings),
               "bonds": [{"i": a, "j": b, "R": list(R), "distance": float(d), "J": float(J), "J_TB2J": float(jl),
                          **({"orbital_TB2J": blocks[n]} if blocks else {})}
                         for n, ((a, b, R), d, J, jl) in enumerate(zip(res.bonds, res.distances, res.J, res.J_lkag))]}
        print(json.dumps(out, indent=1))
    else:
        print(res.table())
        if blocks:
            print("\norbital-resolved J_TB2J (meV) in the local octahedral frame:")
            for (a, b, R), blk in zip(res.bonds, blocks):
                print(f"  {a}-{b} R={list(R)}: " + "  ".join(f"{k} {v:+.3f}" for k, v in blk.items()))
    model_out = mft_spin_model(ham, res)
    if args.save_model:
        model_out.save(args.save_model)
    if args.plot:
        from ..magnetism.plot import plot_exchange_map, plot_j_vs_r

        base = Path(args.plot)
        base.parent.mkdir(parents=True, exist_ok=True)
        plot_exchange_map(model_out, base.with_name(base.stem + "_map.png"))
        plot_j_vs_r([model_out], base.with_name(base.stem + "_Jr.png"), labels=["force theorem"])
        if not args.json:
            print(f"plots: {base.with_name(base.stem + '_map.png')}, {base.with_name(base.stem + '_Jr.png')}")
    if args.convergence:
        from ..magnetism.mft import convergence_report

        k = list(args.kmesh)
        coarse = [max(1, (x * 2) // 3) if x > 1 else 1 for x in k]
        rep = convergence_report(ham, res.bonds[:3], [coarse, k], [max(20, args.poles // 2), args.poles],
                                 efermi=res.efermi)
        print(f"convergence: max change of J {rep['max_change_kmesh_meV']:.4f} meV from k-mesh {coarse} to {k}, "
              f"{rep['max_change_energy_meV']:.4f} meV from {max(20, args.poles // 2)} to {args.poles} energy points")
    return 0


def load_comparisons(directory: Path) -> list:
    """The exchange-route comparisons of ``directory``: a run directory (``exchange_routes.json`` of the
    exchange_compare step, else its ``steps/mapping.json`` and ``steps/mft.json``) or a folder of route files
    (``<material>_routes.json`` of data/exchange/make_routes.py, completed by any ``<material>_<kind>.json`` route
    file that appeared since)."""
    from ..magnetism.routes import ExchangeRoutes, RoutesError, build_routes, collect_route_files, is_automatic, \
        read_routes_json, routes_from_run_steps, stiffness_summary

    if not directory.exists():
        raise WannmagError(f"{directory}: no such directory")
    if not directory.is_dir():
        raise WannmagError(f"{directory}: not a directory (give data/exchange or a 'wannmag run' directory)")
    stored = directory / "exchange_routes.json"
    if stored.is_file():
        return [ExchangeRoutes.from_dict(read_routes_json(stored), str(stored))]
    if (directory / "steps").is_dir() and (directory / "steps" / "mapping.json").exists():
        results = {}
        for step in ("structure", "dft", "mapping", "mft", "superexchange"):
            f = directory / "steps" / f"{step}.json"
            if f.exists():
                d = read_routes_json(f)
                if not isinstance(d, dict):
                    raise RoutesError(f"{f}: not a JSON object")
                results[step] = d
        material = str((results.get("structure") or {}).get("formula") or directory.name)
        try:
            return [routes_from_run_steps(results, material)]
        except RoutesError as exc:
            raise RoutesError(f"{directory / 'steps'}: {exc}") from None
    files = sorted(directory.glob("*_routes.json"))
    if not files:
        raise WannmagError(f"{directory}: no exchange routes here (neither <material>_routes.json nor a run's "
                           "exchange_routes.json or steps/mapping.json)")
    out = []
    for f in files:
        base = ExchangeRoutes.from_dict(read_routes_json(f), str(f))
        material = f.name[: -len("_routes.json")]
        if base.material.lower() != material.lower():
            raise RoutesError(f"{f}: holds the routes of {base.material!r}, not of {material!r}")
        em = base.route("energy mapping")
        distances = (em.settings.get("distances_A") if em else None) or None
        extra = collect_route_files(directory, material, base.spin, distances=distances,
                                    skip={r.name for r in base.routes if not is_automatic(r, material)})
        try:
            comp = build_routes(base.material, base.spin, base.routes + extra, notes=base.notes)
        except RoutesError as exc:
            raise RoutesError(f"{f}: {exc}") from None
        sf = directory / f"{material}_spiral_stiffness.json"
        if sf.is_file():
            comp.stiffness = stiffness_summary(read_routes_json(sf), str(sf))
        out.append(comp)
    return out


def cmd_compare(args) -> int:
    comps = load_comparisons(Path(args.source))
    if args.json:
        print(json.dumps([c.as_dict() for c in comps] if len(comps) > 1 else comps[0].as_dict(), indent=1))
    else:
        print("\n\n".join(c.table() for c in comps))
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "exchange", help="exchange constants: energy mapping or the magnetic force theorem",
        description="Exchange constants J1, J2, ... by energy mapping of collinear-configuration energies "
                    "(map-energies) or by the magnetic force theorem (Liechtenstein/LKAG Green's functions) on a "
                    "collinear pair of Wannier Hamiltonians (mft).", epilog=EPILOG, formatter_class=FORMATTER)
    modes = p.add_subparsers(dest="mode", metavar="MODE", required=True)

    m = modes.add_parser("map-energies", help="fit E0, J1..Jn to energies of magnetic configurations",
                         description="FILE.json in one of wannmag's formats: documented {'spin': S, 'distances': "
                                     "[...], 'configurations': [{'name', 'energy' (per cell), 'unit' (eV), 'n_sites', "
                                     "'counts': [c1, c2, ...]}]}; the reference files data/dft/*_energies.json "
                                     "(configurations by pattern and supercell: the structure is --structure, else "
                                     "the one the file names); the DFT records of 'wannmag run' (steps/dft.json) "
                                     "or 'wannmag dft' (--json output, DIR/*/summary.json).  Or a directory holding "
                                     "such files.", epilog=EPILOG, formatter_class=FORMATTER)
    m.add_argument("source", metavar="FILE.json|DIR")
    m.add_argument("--structure", metavar="FILE", help="structure of configurations given by pattern and supercell "
                   "(bond counts computed from it)")
    m.add_argument("--shells", type=int, default=None, help="number of J's to fit (default: all shells in the file)")
    m.add_argument("--spin", type=float, default=None, help="spin length S (default: from the file, else 3/2)")
    m.add_argument("--max-condition", type=float, default=1e4, help="refuse fits above this condition number")
    m.add_argument("--json", action="store_true", help="print the fit as JSON")
    m.add_argument("--plot", metavar="OUT.png", help="plot J against the shell distance")
    m.set_defaults(func=cmd_map_energies, inputs=(("source", "path"), ("structure", "file")))

    f = modes.add_parser("mft", help="magnetic force theorem on a Wannier90 spin-up/spin-down pair",
                         description="WANNIER_DIR holds seed_up_hr.dat, seed_dn_hr.dat (+ _centres.xyz, .win).",
                         epilog=EPILOG, formatter_class=FORMATTER)
    f.add_argument("source", metavar="WANNIER_DIR")
    f.add_argument("--kmesh", type=int, nargs=3, default=[12, 12, 1], help="Γ-centred k-mesh (default 12 12 1)")
    f.add_argument("--poles", type=int, default=120, help="energy points on the contour (default 120)")
    f.add_argument("--rcut", type=float, default=9.0, help="largest bond length in Å (default 9)")
    f.add_argument("--nelect", type=float, default=None,
                   help="electrons per cell in the Wannier manifold; when omitted (and no --efermi): the occupation "
                        "of the fermi_energy in the .win file, else the nominal ionic count, with E_F placed in "
                        "mid-gap (printed); a model that is metallic at that occupation is an error asking for --nelect "
                        "or --efermi.  A given count that puts E_F inside a band of a gapped model is warned about")
    f.add_argument("--efermi", type=float, default=None, help="Fermi level in eV (instead of --nelect)")
    f.add_argument("--magnetic", nargs="+", metavar="ELEMENT",
                   help="the magnetic elements, e.g. Cr (default: the atoms carrying d orbitals)")
    f.add_argument("--centre-tol", type=float, default=0.5,
                   help="largest distance (Å) of a Wannier centre from its atom (default 0.5; disentangled ligand "
                        "centres may sit farther)")
    f.add_argument("--orbital-resolved", action="store_true", help="t2g/eg decomposition in the local octahedral frame")
    f.add_argument("--save-model", metavar="MODEL.json", help="write the SpinModel (internal convention)")
    f.add_argument("--json", action="store_true", help="print the result as JSON")
    f.add_argument("--plot", metavar="OUT.png", help="exchange map (OUT_map.png) and J(r) (OUT_Jr.png)")
    f.add_argument("--convergence", action="store_true",
                   help="also report the change of J1–J3 from a 2/3 k-mesh and half the energy points")
    f.set_defaults(func=cmd_mft, inputs=(("source", "w90"),))

    c = modes.add_parser("compare", help="every exchange route side by side (J1–J3, both conventions, times)",
                         description="DIR: data/exchange (the <material>_routes.json of data/exchange/make_routes.py "
                                     "and any <material>_<route>.json route files) or a 'wannmag run' directory "
                                     "(its exchange_routes.json, else steps/mapping.json + steps/mft.json).  One "
                                     "table per material: J1–J3 in the internal and TB2J conventions, method, "
                                     "settings and wall time of every route ('not computed' with the reason where "
                                     "a route is missing), the J1 gap between energy mapping and the FM-reference "
                                     "force theorem with its named contributions, and which J the Monte Carlo "
                                     "uses and why.", epilog=EPILOG, formatter_class=FORMATTER)
    c.add_argument("source", metavar="DIR")
    c.add_argument("--json", action="store_true",
                   help="print the comparison as JSON (one object; a list of them when DIR holds several materials)")
    c.set_defaults(func=cmd_compare, inputs=(("source", "dir"),))
