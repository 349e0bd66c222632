"""Issue 18, item 4: T_N(x) of V_{1−x}PS3 by diluted-lattice Monte Carlo, dilution alone against dilution with the
holes of the vacancies (two V3+, S = 1, per V vacancy) and the exchange of the doped cell.

    OMP_NUM_THREADS=1 python data/mc/vacancy_holes_tn.py [--J V2-V2_bulk=25.7 next_to_vacancy=20 V2-V3=12 ...]
        [--placement near|random] [--sizes 24 36 48] [--realisations 8] [--sweeps 10000] [--workers 2]
        [--work out/vacancy_holes_tn] [--quick]

Inputs: the exchange per nearest-neighbour class from ``data/mc/VPS3_vacancy_holes.json`` ("J_meV", written by
data/mc/vacancy_holes_dft.py --fit) or from ``--J CLASS=meV ...`` (classes V2-V2_bulk, next_to_vacancy, V2-V3, V3-V3;
a V3-V3 missing from the fit — the 2×2 DFT cell with both holes next to its vacancy has no V3–V3 bond — is taken
equal to V2-V3, and the JSON says so), and the perfect-crystal model ``data/mc/VPS3_fast_spin_model.json`` (J2, J3,
single-ion terms and the anisotropic parts of J1 kept everywhere).  Convention: H = Σ_{i<j} S_i·J_ij·S_j +
Σ_i S_i·A_i·S_i, each bond once, classical spins of length S_i (3/2 on V2+, 1 on V3+), J > 0 AF, meV; T in K.

Two series on the same vacancy sets (every (x, L, realisation) seeded by its own key,
wannmag.magnetism.montecarlo.dilution_scan): "dilution_only" (holes ignored, all S = 3/2, J unchanged) and
"with_holes" (wannmag.magnetism.montecarlo.holes: holes placed ``near`` their vacancy or at ``random``, every
nearest-neighbour bond given the J of its class; at x = 0 every bond is V2-V2_bulk).  Cluster moves where the scheme
applies (else Metropolis, said in the output).  T_N is a Binder crossing bracketed inside its window (the package's
Tc analysis, one further pass beyond the edge where an unbracketed crossing lies); otherwise the entry is a status
with the side and the χ maximum, never a number.  Monte Carlo checkpoints in WORK (resumable: a killed run restarts
where it stopped).  Output: the "TN_vs_x" block of the JSON (read-modify-write under a directory lock, atomic; other
keys kept) and the figure docs/img/vps3_tn_vs_x_holes.png (bounds drawn as arrows at the window edge).

``--quick`` (test mode, < 1 min): 4×4 and 6×6 lattices, 1 realisation, 300 sweeps, 8 replicas; its results go to
WORK/VPS3_vacancy_holes_quick.json and WORK/tn_vs_x_holes_quick.png unless --json/--figure are given.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))

from wannmag._atomic import atomic_write_json, jsonable, locked_dir, read_json  # noqa: E402
from wannmag._plotting import save_figure  # noqa: E402
from wannmag.errors import WannmagError  # noqa: E402
from wannmag.magnetism import SpinModel  # noqa: E402
from wannmag.magnetism.vacancy_holes import HOLE_CLASSES  # noqa: E402

JSON = HERE / "VPS3_vacancy_holes.json"
MODEL = HERE / "VPS3_fast_spin_model.json"
FIGURE = ROOT / "docs" / "img" / "vps3_tn_vs_x_holes.png"
FRACTIONS = (0.0, 0.05, 0.1, 0.15)


class InputError(WannmagError):
    """Bad input of this script (one line naming the file or option)."""


_locked = locked_dir  # one lock for both writers of data/mc/VPS3_vacancy_holes.json


def parse_J(items) -> dict:
    out = {}
    for it in items:
        name, sep, val = str(it).partition("=")
        if not sep:
            raise InputError(f"--J: {it!r} is not CLASS=meV")
        if name not in HOLE_CLASSES:
            raise InputError(f"--J: unknown bond class {name!r}; the classes are {', '.join(HOLE_CLASSES)}")
        try:
            v = float(val)
        except ValueError:
            raise InputError(f"--J: {name}={val!r} is not a number (meV)") from None
        if v != v or v in (float("inf"), float("-inf")):
            raise InputError(f"--J: {name} must be a finite number (meV), got {val}")
        out[name] = v
    return out


def read_J(path: Path) -> dict:
    d = read_json(path, InputError)
    J = d.get("J_meV") if isinstance(d, dict) else None
    if not isinstance(J, dict) or not J:
        raise InputError(f"{path}: no exchange \"J_meV\" {{class: meV}} (the fit of vacancy_holes_dft.py --fit has not "
                         "been stored); give it with --J CLASS=meV ...")
    out = {}
    for k, v in J.items():
        if k not in HOLE_CLASSES:
            continue  # J2, J3 of a --fit-J23 fit: the further shells stay those of the perfect-crystal model
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v or abs(v) == float("inf"):
            raise InputError(f"{path}: J_meV[{k!r}] = {v!r} is not a finite number (meV)")
        out[k] = float(v)
    return out


def _rel(path) -> str:
    """A path inside the repository as it is written in the results (repository-relative), else as given."""
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def complete_J(J: dict, source: str) -> tuple[dict, list]:
    """The classes every diluted lattice with holes needs; V3-V3 = V2-V3 when absent (said in the notes)."""
    notes = []
    need = ["V2-V2_bulk", "next_to_vacancy", "V2-V3"]
    missing = [k for k in need if k not in J]
    if missing:
        raise InputError(f"{source}: no exchange for bond class {', '.join(missing)} (meV); every diluted lattice with "
                         "holes has such bonds")
    J = dict(J)
    if "V3-V3" not in J:
        J["V3-V3"] = J["V2-V3"]
        notes.append(f"V3-V3 not given ({source}): taken equal to V2-V3 = {J['V2-V3']:+.3f} meV (an assumption; the "
                     "2x2 DFT cell with both holes next to its vacancy has no V3-V3 bond)")
    return J, notes


def _map_fn(workers: int):
    if workers <= 1:
        return None

    def run(fn, items):
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        if len(items) <= 1:
            return [fn(x) for x in items]
        with ProcessPoolExecutor(max_workers=min(workers, len(items)), mp_context=mp.get_context("spawn")) as ex:
            return list(ex.map(fn, items))

    return run


def choose_algorithm(model, sizes, settings, spec, x, want: str) -> tuple[str, str]:
    """("cluster" | "metropolis", why): the package's one rule (wannmag.magnetism.montecarlo.tc.choose_algorithm via
    holes.choose_hole_algorithm) on the undiluted lattices and on one realisation with holes at the largest x;
    ``--algorithm cluster`` (the default) means cluster moves where the scheme is valid, else Metropolis (said)."""
    from wannmag.magnetism.montecarlo.holes import choose_hole_algorithm

    return choose_hole_algorithm(model, sizes, settings, spec, x, requested=None if want == "cluster" else want)


def entry(res, k: int):
    """[T, err] of a bracketed Binder crossing, else the status (why, where the crossing lies, the χ maximum)."""
    a = res.analyses[k]
    if a.bracketed:
        return [float(a.tc), float(a.tc_error or 0.0)]
    pk = a.peaks_chi.get(a.sizes[-1]) if a.sizes else None
    return {"status": a.status, "side": a.side, "note": a.note, "t_window_K": res.windows[k],
            "chi_max_largest_lattice": None if pk is None else
            {"lattice": a.sizes[-1], "T_K": pk["T"], "error_K": pk.get("error"), "at_edge": pk.get("at_edge"),
             "estimator": "chi maximum (not an ordering temperature)"}}


def plot(block: dict, path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.6, 4.2))
    styles = {"dilution_only": ("C0", "o", -0.002, "dilution only (S = 3/2, J unchanged)"),
              "with_holes": ("C3", "s", +0.002, "with holes (2 V3+ S = 1 per vacancy, J by class)")}
    top = 0.0
    for mode, (col, mk, dx, lab) in styles.items():
        pts = block.get(mode, {})
        xs = sorted(pts, key=float)
        bx = [float(x) + dx for x in xs if isinstance(pts[x], list)]
        by = [pts[x][0] for x in xs if isinstance(pts[x], list)]
        be = [pts[x][1] for x in xs if isinstance(pts[x], list)]
        if bx:
            ax.errorbar(bx, by, yerr=be, color=col, marker=mk, capsize=3, label=lab + ": Binder crossing")
            top = max(top, max(y + e for y, e in zip(by, be)))
        else:
            ax.plot([], [], color=col, marker=mk, label=lab)
        for x in xs:
            v = pts[x]
            if isinstance(v, list):
                continue
            lo, hi = v.get("t_window_K") or (None, None)
            if v.get("side") == "above tmax" and hi is not None:
                ax.annotate("", xy=(float(x) + dx, hi * 1.12), xytext=(float(x) + dx, hi),
                            arrowprops={"arrowstyle": "->", "color": col})
                ax.plot(float(x) + dx, hi, marker="_", ms=12, color=col)
                ax.text(float(x) + dx, hi * 1.13, f"> {hi:.0f} K\nnot bracketed", color=col, fontsize=6, ha="center")
                top = max(top, hi * 1.3)
            elif v.get("side") == "below tmin" and lo is not None:
                ax.annotate("", xy=(float(x) + dx, lo * 0.5), xytext=(float(x) + dx, lo),
                            arrowprops={"arrowstyle": "->", "color": col})
                ax.plot(float(x) + dx, lo, marker="_", ms=12, color=col)
                ax.text(float(x) + dx, lo * 1.08, f"< {lo:.0f} K\nnot bracketed", color=col, fontsize=6,
                        ha="center")
                top = max(top, lo * 1.3)
            else:
                ax.text(float(x) + dx, 0.02, "n.b.", color=col, fontsize=7, ha="center",
                        transform=ax.get_xaxis_transform())
    ax.set_xlabel("vacancy fraction x")
    ax.set_ylabel("T_N (K)")
    ax.set_ylim(0, max(top * 1.1, 1.0))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper right")
    ax.set_title(title, fontsize=8)
    fig.text(0.01, 0.01, "arrows: Binder crossing beyond the window edge (a bound); n.b.: not bracketed, side "
             "unknown", fontsize=6, color="0.4")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return save_figure(fig, path, dpi=120, tight_layout=False, close=True)


def merge_write(path: Path, block: dict) -> None:
    with _locked(path):
        d = read_json(path, InputError) if path.exists() else {}
        if not isinstance(d, dict):
            raise InputError(f"{path}: not a JSON object")
        d["TN_vs_x"] = block
        atomic_write_json(path, d)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--J", nargs="+", metavar="CLASS=meV", help="exchange per class instead of the JSON's J_meV")
    ap.add_argument("--json", help=f"the result file (J_meV read, TN_vs_x written; default {JSON})")
    ap.add_argument("--model", default=str(MODEL), help="perfect-crystal spin model (J2, J3, single-ion)")
    ap.add_argument("--figure", help=f"figure (default {FIGURE})")
    ap.add_argument("--work", default=str(ROOT / "out" / "vacancy_holes_tn"), help="checkpoint directory")
    ap.add_argument("--fractions", type=float, nargs="+", default=list(FRACTIONS))
    ap.add_argument("--placement", default="near", choices=("near", "random"))
    ap.add_argument("--sizes", type=int, nargs="+", default=[24, 36, 48])
    ap.add_argument("--realisations", type=int, default=8)
    ap.add_argument("--sweeps", type=int, default=10000)
    ap.add_argument("--therm", type=int, help="thermalisation sweeps (default sweeps/4)")
    ap.add_argument("--replicas", type=int, default=32)
    ap.add_argument("--tmin", type=float, default=15.0)
    ap.add_argument("--tmax", type=float, default=400.0)
    ap.add_argument("--algorithm", default="cluster", choices=("cluster", "metropolis"))
    ap.add_argument("--extensions", type=int, default=1, help="further passes beyond the edge where an unbracketed "
                    "crossing lies (tc.until_bracketed)")
    ap.add_argument("--workers", type=int, default=1, help="local processes for the independent runs")
    ap.add_argument("--seed", type=int, default=18)
    ap.add_argument("--quick", action="store_true", help="tiny test run (< 1 min)")
    a = ap.parse_args(argv)
    try:
        return run(a, argv)
    except WannmagError as exc:
        print(f"wannmag: error: {exc}", file=sys.stderr)
        return 2


def run(a, argv) -> int:
    from wannmag.magnetism.montecarlo import MCSettings
    from wannmag.magnetism.montecarlo.dilution import dilution_scan
    from wannmag.magnetism.montecarlo.holes import HoleSpec
    from wannmag.magnetism.montecarlo.tc import checkpoint_key

    work = Path(a.work)
    if a.quick:
        a.sizes, a.realisations, a.sweeps, a.therm, a.replicas, a.extensions = [4, 6], 1, 300, 100, 8, 0
        a.tmin, a.tmax = max(a.tmin, 20.0), min(a.tmax, 400.0)
    json_path = Path(a.json) if a.json else (work / "VPS3_vacancy_holes_quick.json" if a.quick else JSON)
    fig_path = Path(a.figure) if a.figure else (work / "tn_vs_x_holes_quick.png" if a.quick else FIGURE)
    if a.J:
        J, source = parse_J(a.J), "--J"
    else:
        J, source = read_J(json_path), _rel(json_path)
    J, notes = complete_J(J, source)
    model = SpinModel.load(a.model)
    spec = HoleSpec(J=J, placement=a.placement)
    spec.validate()
    for x in a.fractions:
        if not 0.0 <= x < 1.0 / 3.0:
            raise InputError(f"--fractions: x = {x:g} outside [0, 1/3) (two holes per vacancy need 2x <= 1 - x)")
    fractions = sorted({0.0, *[float(x) for x in a.fractions]})
    therm = a.therm if a.therm is not None else a.sweeps // 4
    base = MCSettings(tmin=a.tmin, tmax=a.tmax, n_replicas=a.replicas, n_sweeps=a.sweeps, n_therm=therm,
                      seed=a.seed, checkpoint_every=0 if a.quick else 1000)
    base.validate()
    algo, why = choose_algorithm(model, a.sizes, base, spec, max(fractions), a.algorithm)
    from dataclasses import replace

    st = replace(base, algorithm=algo)
    map_fn = _map_fn(a.workers)
    t0, c0 = time.time(), time.process_time()
    out, results = {}, {}
    for mode in ("dilution_only", "with_holes"):
        holes = spec if mode == "with_holes" else None
        key = checkpoint_key(model, st, mode=mode, holes=None if holes is None else holes.as_dict(),
                             sizes=list(a.sizes), realisations=a.realisations)
        ck = work / mode / key
        print(f"{mode}: x = {fractions}, sizes {a.sizes}, {a.realisations} realisations, {a.sweeps} sweeps, "
              f"{algo}; checkpoints {ck}", flush=True)
        res = dilution_scan(model, fractions, a.sizes, st, realisations=a.realisations, out_dir=ck, warn=False,
                            map_fn=map_fn, max_extensions=a.extensions, holes=holes)
        results[mode] = res
        out[mode] = {f"{x:g}": entry(res, k) for k, x in enumerate(fractions)}
        atomic_write_json(ck / "dilution_result.json", res.as_dict())
        for k, x in enumerate(fractions):
            print(f"  x = {x:g}: {res.text(k)}", flush=True)
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = time.process_time() - c0 + (ru.ru_utime + ru.ru_stime if map_fn is not None else 0.0)
    hr = results["with_holes"]
    block = {
        **out,
        "convention": "H = sum_{i<j} S_i.J_ij.S_j + sum_i S_i.A_i.S_i, each bond once, |S_i| = 3/2 (V2+) or 1 (V3+), "
                      "J > 0 AF; meV, K; [T, err] = Binder crossing bracketed inside its window, else a status",
        "J_meV_used": J, "J_source": source, "model": _rel(a.model), "placement": a.placement,
        "hole_counts": {f"{x:g}": c for x, c in zip(fractions, hr.hole_counts)},
        "sizes": list(a.sizes), "realisations": a.realisations,
        "settings": {"tmin_K": st.tmin, "tmax_K": st.tmax, "replicas": st.n_replicas, "sweeps": st.n_sweeps,
                     "therm": st.n_therm, "seed": st.seed, "algorithm": algo, "algorithm_note": why,
                     "extensions": a.extensions},
        "warnings": {m: {f"{x:g}": r.analyses[k].warning for k, x in enumerate(fractions) if r.analyses[k].warning}
                     for m, r in results.items()},
        "notes": notes + ["x = 0 with_holes: no vacancy, so no hole; every nearest-neighbour bond is V2-V2_bulk"],
        "quick": bool(a.quick), "cpu_s": round(cpu, 1), "wall_s": round(time.time() - t0, 1),
        "command": "python data/mc/vacancy_holes_tn.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
    }
    block = jsonable(block)
    merge_write(json_path, block)
    title = (f"V(1-x)PS3 T_N(x): L = {', '.join(map(str, a.sizes))}, {a.realisations} disorder sets, holes "
             f"'{a.placement}'" + (" [QUICK TEST RUN]" if a.quick else ""))
    plot(block, fig_path, title)
    print(f"wrote {json_path} (TN_vs_x) and {fig_path}; cpu {cpu:.0f} s, wall {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
