"""Finite-size analysis of the VPS3 Néel temperature with cluster moves + parallel tempering (issue 19, item 4).

    OMP_NUM_THREADS=1 python data/mc/vps3_tn_converged.py [--workdir WORK] [--sizes 32 48 64 96 128 192 256]
                                                         [--sweeps 10000] [--threads 2] [--quick --out FILE]

Model: data/mc/VPS3_fast_spin_model.json (wannmag convention H = Σ_{i<j} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i, each bond
once, classical spins |S| = 3/2, J > 0 antiferromagnetic, meV: J1 ≈ +26.4, J2 ≈ +0.37 (frustrated against the Néel
order), J3 ≈ +0.60, easy axis z, Δ/(J1 S²) ≈ 6e-4).  Temperatures in K.

Estimator: Binder crossings of the easy-axis cumulant U4_axis = 1 − ⟨q_z⁴⟩/(3⟨q_z²⟩²) of the staggered order
parameter's component along the easy axis (wannmag.magnetism.montecarlo.tc.binder_kind says "easy-axis" for this
model; the vector cumulant of |Q| mixes in the finite-size quasi-order of the nearly isotropic part).

Passes (every run checkpointed in WORK, keyed by model and settings: an interrupted script resumes where it stopped,
with the identical result):

1. First pass: the three smallest sizes on a wide window (default 150–320 K), ``--first-sweeps`` sweeps; the
   crossing of the largest pair (extended beyond a window edge by tc.next_window if not bracketed, twice at most)
   gives the centre T1 ± e1.
2. Refined pass: every size in increasing order on a narrow window centred on the current estimate — T1, then the
   crossing of the two largest sizes done in this pass — of half-width max(3 e, f(L) T), f(L) = 0.10 (64/L)^½
   clipped to [0.04, 0.12] (at most 0.15 T); feedback ladder (acceptance-equalising during thermalisation) with
   n = ⌈ln(tmax/tmin) √(C N) / 1.6⌉ + 1 replicas, C the largest specific heat per site measured in the first pass
   (k_B; at least 1.6): the swap acceptance of neighbouring temperatures is ≈ erfc(0.49 Δln T √(C N)) — calibrated on
   data/mc/VPS3_cluster_fss_64.json (0.09 at L = 24, 0.012 at L = 36, 0 at L = 64 with 12 replicas on 160–320 K) —
   i.e. ≈ 0.25 by design; the measured acceptances are printed and stored, and a size below 0.1 is flagged.

T_N is stated only if the crossings of the three largest consecutive size pairs exist and lie within 5 % of each
other (T_N = the largest pair's crossing, error = its bootstrap error combined with the spread of the three); else
TN_K is null with the reason, and every crossing is listed.  Beside it: the Torelli–Olsen estimate
(wannmag.magnetism.tc_estimates; VPS3's anisotropy ratio lies below the formula's fitted range: "extrapolated") and
the RG estimate (null with its reason while not implemented).

Output: data/mc/VPS3_TN_converged.json (``--out``).  ``--quick``: sizes 6 8 10, a few hundred sweeps, < 1 min — a
test of the machinery, not a result.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # before numpy is imported
    os.environ.setdefault(_v, "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "2")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import replace  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from wannmag._atomic import atomic_write_text, jsonable  # noqa: E402
from wannmag.magnetism import SpinModel  # noqa: E402
from wannmag.magnetism.montecarlo import MCSettings, build_lattice, ground_state  # noqa: E402
from wannmag.magnetism.montecarlo.tc import (analyse_sizes, binder_kind, checkpoint_key, choose_algorithm,  # noqa: E402
                                             curves_of, mermin_wagner_check, next_window, simulate)

MODEL = ROOT / "data" / "mc" / "VPS3_fast_spin_model.json"
OUT = ROOT / "data" / "mc" / "VPS3_TN_converged.json"
SWAP_DIVISOR = 1.6   # Δln T √(C N) per ladder step for a swap acceptance ≈ 0.25 (module docstring)
MIN_ACCEPTANCE = 0.1
AGREE = 0.05         # the three largest pairs' crossings within 5 % of each other


def _fail(message: str):
    """Bad input: one line on stderr, exit status 2 (the package's rule)."""
    print(message, file=sys.stderr)
    raise SystemExit(2)


def n_replicas(tmin: float, tmax: float, n_sites: int, c_site: float, least: int = 4) -> int:
    """Replicas for a swap acceptance ≈ 0.25 on [tmin, tmax] (K) for N sites of specific heat c_site (k_B/site)."""
    return max(least, int(math.ceil(math.log(tmax / tmin) * math.sqrt(c_site * n_sites) / SWAP_DIVISOR)) + 1)


def half_width(L: int, T: float, err: float | None) -> float:
    f = min(max(0.10 * math.sqrt(64.0 / L), 0.04), 0.12)
    return min(max(3.0 * (err or 0.0), f * T), 0.15 * T)


def label(L: int) -> str:
    return f"{L}x{L}x1"


class Runner:
    """Runs one size with checkpoints in the work directory (keyed by model and settings) and keeps a summary."""

    def __init__(self, model: SpinModel, workdir: Path, threads: int, log=print):
        self.model, self.workdir, self.threads, self.log = model, workdir, threads, log

    def run(self, L: int, st: MCSettings, tag: str):
        key = checkpoint_key(self.model, st, L=int(L), tag=tag)
        d = self.workdir / tag
        d.mkdir(parents=True, exist_ok=True)
        c0, w0 = time.process_time(), time.perf_counter()
        res, _ = simulate(self.model, L, replace(st, threads=self.threads), checkpoint=d / f"checkpoint_{L}_{key}.npz")
        acc = np.asarray(res.swap_acceptance, float)
        info = {"L": int(L), "window_K": [float(res.temperatures[0]), float(res.temperatures[-1])],
                "replicas": len(res.temperatures), "sweeps": st.n_sweeps, "therm": st.n_therm, "seed": st.seed,
                "swap_acceptance": [float(x) for x in acc],
                "swap_acceptance_min": float(np.nanmin(acc)) if len(acc) else None,
                "cpu_s_this_call": round(time.process_time() - c0, 1), "wall_s_this_call": round(
                    time.perf_counter() - w0, 1),
                "cluster_acceptance": res.cluster.get("acceptance") if res.cluster else None,
                "checkpoint": str(d / f"checkpoint_{L}_{key}.npz")}
        info["low_acceptance"] = bool(info["swap_acceptance_min"] is not None
                                      and info["swap_acceptance_min"] < MIN_ACCEPTANCE)
        self.log(f"  L = {L:4d} {tag}: {info['window_K'][0]:.1f}-{info['window_K'][1]:.1f} K, {info['replicas']} "
                 f"replicas, {st.n_sweeps} sweeps; swap acceptance min {info['swap_acceptance_min']:.3f} "
                 f"(mean {np.nanmean(acc) if len(acc) else float('nan'):.3f})"
                 + ("  ** below 0.1 **" if info["low_acceptance"] else "")
                 + f"; CPU {info['cpu_s_this_call']:.0f} s", flush=True)
        return curves_of(res), res, info


def crossing_rows(tcr) -> list[dict]:
    out = []
    for c in tcr.crossings:
        a, b = (int(s.split("x")[0]) for s in c["sizes"])
        out.append({"pair": [a, b], "T_K": c["T"], "err_K": c["error"], "significance": c["significance"]})
    return out


def tn_verdict(sizes: list[int], rows: list[dict]) -> dict:
    """TN from the three largest consecutive pairs (module docstring)."""
    pairs = [[sizes[k], sizes[k + 1]] for k in range(len(sizes) - 1)][-3:]
    by = {tuple(r["pair"]): r for r in rows}
    missing = [p for p in pairs if tuple(p) not in by]
    if len(pairs) < 3:
        return {"TN_K": None, "TN_err_K": None, "largest_pairs": pairs,
                "TN_reason": f"{len(sizes)} sizes: three consecutive pairs need at least four"}
    if missing:
        return {"TN_K": None, "TN_err_K": None, "largest_pairs": pairs,
                "TN_reason": "no bracketed Binder crossing for the pair(s) " + ", ".join(f"{a}/{b}" for a, b in missing)}
    ts = np.array([by[tuple(p)]["T_K"] for p in pairs])
    spread = float((ts.max() - ts.min()) / ts.mean())
    if spread > AGREE:
        return {"TN_K": None, "TN_err_K": None, "largest_pairs": pairs, "relative_spread": spread,
                "TN_reason": f"the three largest pairs' crossings ({', '.join(f'{t:.1f}' for t in ts)} K) differ by "
                             f"{100 * spread:.1f} % > {100 * AGREE:.0f} %: not converged"}
    main = by[tuple(pairs[-1])]
    return {"TN_K": float(main["T_K"]), "TN_err_K": float(math.hypot(main["err_K"], float(np.std(ts)))),
            "largest_pairs": pairs, "relative_spread": spread,
            "TN_reason": f"crossings of {', '.join(f'{a}/{b}' for a, b in pairs)} within {100 * spread:.1f} %"}


def side_estimates(model: SpinModel) -> dict:
    from wannmag.magnetism.tc_estimates import tc_estimates

    try:
        est = tc_estimates(model, order="Neel")
    except Exception as exc:  # noqa: BLE001 - an estimate that cannot be made is stored with its reason
        return {"torelli_olsen_K": None, "torelli_olsen": {"reason": str(exc)}, "rg_estimate_K": None,
                "rg_estimate": {"reason": str(exc)}}
    to = est["torelli_olsen"]
    rg = est.get("rg_estimate") or {}
    return {"torelli_olsen_K": to.get("tc_K"), "torelli_olsen": to, "rg_estimate_K": rg.get("tc_K"),
            "rg_estimate": rg}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=str(MODEL))
    ap.add_argument("--workdir", default=str(ROOT / "out" / "vps3_tn_converged"))
    ap.add_argument("--sizes", type=int, nargs="+", default=[32, 48, 64, 96, 128, 192, 256])
    ap.add_argument("--sweeps", type=int, default=10000, help="measurement sweeps of the refined pass (therm 1/4)")
    ap.add_argument("--first-sweeps", type=int, default=2000, help="measurement sweeps of the first pass")
    ap.add_argument("--first-window", type=float, nargs=2, default=[150.0, 320.0], metavar=("TMIN", "TMAX"))
    ap.add_argument("--threads", type=int, default=2, help="Numba threads running the replicas of one size")
    ap.add_argument("--seed", type=int, default=19)
    ap.add_argument("--quick", action="store_true", help="sizes 6 8 10, few sweeps: a < 1 min test of the machinery")
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--from-result", metavar="MC_RESULT_JSON", nargs="+",
                    help="no Monte Carlo: state the verdict from the result file(s) of finished `wannmag mc` runs — "
                         "e.g. runs made by hand on narrow windows; several files (each size in one file only) are "
                         "merged and their curves analysed together by tc.analyse_sizes (different temperature "
                         "ladders: interpolated on the larger size's grid inside the overlap)")
    ap.add_argument("--mc-command", action="append", default=None,
                    help="with --from-result: the command that produced each file (provenance; once per file, in "
                         "the files' order)")
    ap.add_argument("--mc-cpu-s", type=_cpu_seconds, action="append", default=None,
                    help="with --from-result: each file's CPU seconds, or 'unknown' (provenance; once per file, in "
                         "the files' order)")
    a = ap.parse_args(argv)
    if a.from_result:
        return from_result(a, argv)
    if a.quick:
        a.sizes, a.sweeps, a.first_sweeps = [6, 8, 10], 300, 200
    sizes = sorted({int(x) for x in a.sizes})
    if len(sizes) < 2 or sizes[0] < 4:
        _fail("wannmag: error: --sizes: give at least two sizes >= 4")
    model = SpinModel.load(a.model)
    wd = Path(a.workdir)
    wd.mkdir(parents=True, exist_ok=True)
    t_start = time.process_time()
    lat0 = build_lattice(model, sizes[0])
    gs0 = ground_state(lat0, seed=a.seed)
    algo, algo_why = choose_algorithm(lat0, gs0.pattern, [build_lattice(model, L) for L in sizes[1:]])
    binder = binder_kind(lat0, gs0)
    mw = mermin_wagner_check(model, lat0.dimension, False, gs0.spins, lat0.slen)
    print(f"algorithm {algo} ({algo_why}); Binder cumulant {binder['binder']} ({binder['reason']})", flush=True)
    runner = Runner(model, wd, a.threads)
    c_guess = 1.6

    # ---- pass 1: the three smallest sizes on a wide window
    first = sizes[:3]
    tmin, tmax = a.first_window
    passes1 = []
    for ext in range(3):
        curves, infos = {}, []
        for L in first:
            n = n_replicas(tmin, tmax, 2 * L * L, c_guess)
            st = MCSettings(tmin=tmin, tmax=tmax, n_replicas=n, n_sweeps=a.first_sweeps,
                            n_therm=max(a.first_sweeps // 4, 1), seed=a.seed + ext, algorithm=algo, ladder="feedback",
                            checkpoint_every=500)
            c, res, info = runner.run(L, st, "first")
            curves[label(L)] = c
            infos.append(info)
            c_guess = max(c_guess, float(np.nanmax(res.observables["C"][0])))
        tcr1 = analyse_sizes(curves, mw, binder)
        passes1.append({"window_K": [tmin, tmax], "runs": infos, "result": tcr1.as_dict(with_runs=False)})
        print(f"first pass {tmin:.1f}-{tmax:.1f} K: {tcr1.headline('T_N')}", flush=True)
        if tcr1.bracketed:
            break
        w = next_window(tcr1, tmin, tmax)
        if w is None:
            break
        tmin, tmax = w
    if tcr1.bracketed:
        centre, err = float(tcr1.tc), float(tcr1.tc_error or 0.0)
    else:  # no crossing: centre on the χ_axis maximum of the largest first-pass size (stated in the output)
        p = tcr1.peaks_chi.get(label(first[-1])) or {}
        centre, err = float(p.get("T", 0.5 * (tmin + tmax))), float(p.get("error") or 0.1 * p.get("T", tmin))
    print(f"refined windows centred on {centre:.1f} ± {err:.1f} K; C per site <= {c_guess:.2f} k_B", flush=True)

    # ---- pass 2: every size on a narrow window around the current estimate
    curves2, infos2, centres = {}, [], []
    for L in sizes:
        h = half_width(L, centre, err)
        lo, hi = centre - h, centre + h
        n = n_replicas(lo, hi, 2 * L * L, c_guess)
        st = MCSettings(tmin=lo, tmax=hi, n_replicas=n, n_sweeps=a.sweeps, n_therm=max(a.sweeps // 4, 1),
                        seed=a.seed + 100, algorithm=algo, ladder="feedback", checkpoint_every=500)
        c, res, info = runner.run(L, st, "refined")
        info["centre_K"], info["centre_err_K"] = centre, err
        curves2[label(L)] = c
        infos2.append(info)
        if len(curves2) >= 2:
            t = analyse_sizes(curves2, mw, binder)
            if t.bracketed and t.method.endswith(f"{label(L)}"):
                centre, err = float(t.tc), float(t.crossings[-1]["error"])
        centres.append(centre)
    tcr = analyse_sizes(curves2, mw, binder)
    rows = crossing_rows(tcr)
    verdict = tn_verdict(sizes, rows)
    est = side_estimates(model)
    out = {"what": "VPS3 (fast-preset spin model) Neel temperature: finite-size analysis with cluster moves + "
                   "parallel tempering, Binder crossings of the easy-axis cumulant" + (" (QUICK TEST, not a result)"
                                                                                      if a.quick else ""),
           "quick": bool(a.quick), "model": os.path.relpath(a.model, ROOT),
           "command": "python data/mc/vps3_tn_converged.py " + " ".join(argv if argv is not None else sys.argv[1:]),
           "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
           "convention": "H = sum_{i<j} S_i.J_ij.S_j + sum_i S_i.A_i.S_i, each bond once, |S| = 3/2, J > 0 AF; "
                         "meV, K",
           "sizes": sizes, "crossings": rows, **verdict,
           "torelli_olsen_K": est["torelli_olsen_K"], "rg_estimate_K": est["rg_estimate_K"],
           "algorithm": f"{algo} + parallel tempering (feedback ladder)", "algorithm_reason": algo_why,
           "binder": tcr.binder, "binder_reason": tcr.binder_reason or binder["reason"],
           "swap_acceptance_min": {str(i["L"]): i["swap_acceptance_min"] for i in infos2},
           "low_acceptance_sizes": [i["L"] for i in infos2 if i["low_acceptance"]],
           "first_pass": passes1, "refined_runs": infos2,
           "peaks_chi_axis": tcr.peaks_chi, "peaks_C": tcr.peaks_C, "warning": tcr.warning,
           "torelli_olsen": est["torelli_olsen"], "rg_estimate": est["rg_estimate"],
           "cpu_s_this_invocation": round(time.process_time() - t_start, 1)}
    return write_verdict(a.out, out, rows, verdict, est)


def write_verdict(path, out: dict, rows, verdict: dict, est: dict) -> dict:
    """Write ``out`` atomically to ``path`` and print the crossings and the verdict."""
    atomic_write_text(Path(path), json.dumps(jsonable(out), indent=1))
    print("crossings: " + ", ".join(f"{r['pair'][0]}/{r['pair'][1]} {r['T_K']:.1f} ± {r['err_K']:.1f} K"
                                      for r in rows), flush=True)
    print(f"T_N: {verdict['TN_K']} ({verdict['TN_reason']}); Torelli-Olsen {est['torelli_olsen_K']} K; "
          f"written {path}", flush=True)
    return out


def _cpu_seconds(text: str):
    """--mc-cpu-s value: seconds, or None for 'unknown'."""
    return None if text.lower() == "unknown" else float(text)


def _per_file(values, paths, option: str) -> list:
    """One provenance value per result file (None where not given at all); a count that does not match the files
    is one error line rather than values silently attached to the wrong file."""
    if values is None:
        return [None] * len(paths)
    if len(values) != len(paths):
        _fail(f"wannmag: error: {option}: given {len(values)} time(s) for {len(paths)} result file(s); give it once "
              "per file, in the files' order ('unknown' for a CPU time not measured)")
    return list(values)


def _curves_of_run(r: dict) -> dict:
    """Curves (tc.analyse_sizes layout) of one stored run (PTResult.as_dict)."""
    return {"T": np.asarray(r["temperatures_K"], float), "n_sites": int(r["n_sites"]),
            **{k: (np.asarray(v["value"], float), np.asarray(v["error"], float))
               for k, v in r["observables"].items()}}


def merge_results(paths) -> tuple[dict, list, str, dict]:
    """Curves of every run in the ``wannmag mc`` result files ``paths`` (one size in one file only), the runs, the
    Binder cumulant they agree on and the Mermin–Wagner entry; one error line for anything else."""
    curves, runs, binders, mw, reason = {}, [], set(), {}, ""
    for path in paths:
        try:
            res = json.loads(Path(path).read_text())
            file_runs = res["runs"]
            file_curves = {label(int(r["size"][0])): _curves_of_run(r) for r in file_runs}
            binders.add(res["binder"])
            reason = reason or res.get("binder_reason", "")
        except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
            _fail(f"wannmag: error: {path}: not a wannmag mc result with stored runs ({exc})")
        if not file_runs:
            _fail(f"wannmag: error: {path}: no runs stored")
        twice = sorted(set(curves) & set(file_curves))
        if twice:
            _fail(f"wannmag: error: {path}: size(s) {', '.join(twice)} already given by an earlier file")
        curves.update(file_curves)
        runs += [{**r, "file": os.path.relpath(path, ROOT) if os.path.isabs(path) else path} for r in file_runs]
        if res.get("mermin_wagner"):
            mw = {"flag": True, "reason": res.get("warning", ""), "symmetry": res.get("continuous_symmetry", "")}
    if len(binders) != 1:
        _fail(f"wannmag: error: {paths[-1]}: the files used different Binder cumulants ({sorted(binders)})")
    return curves, runs, {"binder": binders.pop(), "reason": reason}, mw


def from_result(a, argv) -> dict:
    """The verdict of the module docstring from finished ``wannmag mc`` results (no new Monte Carlo): the curves of
    every file are analysed together (the crossings are recomputed, not copied)."""
    paths = list(a.from_result)
    commands = _per_file(a.mc_command, paths, "--mc-command")
    cpu = _per_file(a.mc_cpu_s, paths, "--mc-cpu-s")
    curves, runs, binder, mw = merge_results(paths)
    tcr = analyse_sizes(curves, mw, binder)
    sizes = sorted(int(k.split("x")[0]) for k in curves)
    rows = crossing_rows(tcr)
    verdict = tn_verdict(sizes, rows)
    est = side_estimates(SpinModel.load(a.model))

    def algo(r):
        st = r.get("settings") or {}
        return (f"L = {r['size'][0]}: {st.get('algorithm', '?')} + parallel tempering ({st.get('ladder', '?')} "
                f"ladder, {st.get('n_replicas', '?')} replicas on {st.get('tmin', '?')}-{st.get('tmax', '?')} K, "
                f"{st.get('n_sweeps', '?')} + {st.get('n_therm', '?')} sweeps, seed {st.get('seed', '?')}; "
                f"{r['file']})")

    one = len(paths) == 1
    out = {"what": "VPS3 (fast-preset spin model) Neel temperature: finite-size analysis with cluster moves + "
                   "parallel tempering, Binder crossings of the " + binder["binder"] + " cumulant",
           "quick": False, "model": os.path.relpath(a.model, ROOT),
           "command": "python data/mc/vps3_tn_converged.py " + " ".join(argv if argv is not None else sys.argv[1:]),
           "result_files": [os.path.relpath(p, ROOT) if os.path.isabs(p) else p for p in paths],
           "mc_command": commands[0] if one else commands,
           "mc_cpu_s": cpu[0] if one else cpu,
           "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
           "convention": "H = sum_{i<j} S_i.J_ij.S_j + sum_i S_i.A_i.S_i, each bond once, |S| = 3/2, J > 0 AF; "
                         "meV, K",
           "sizes": sizes, "crossings": rows, **verdict,
           "torelli_olsen_K": est["torelli_olsen_K"], "rg_estimate_K": est["rg_estimate_K"],
           "algorithm": "; ".join(algo(r) for r in runs),
           "binder": tcr.binder, "binder_reason": tcr.binder_reason,
           "swap_acceptance_min": {str(r["size"][0]): float(min(r["swap_acceptance"])) for r in runs
                                   if r.get("swap_acceptance")},
           "peaks_chi_axis": tcr.peaks_chi, "peaks_C": tcr.peaks_C, "warning": tcr.warning,
           "torelli_olsen": est["torelli_olsen"], "rg_estimate": est["rg_estimate"],
           "max_size_reason": (None if sizes[-1] >= 256 else
                               "L = 256 not reached: a cluster sweep costs 150 ms per replica at L = 256 (≈ 38 CPU-h "
                               "for the default schedule up to 256 on this 2-core machine); largest size run: "
                               f"{sizes[-1]}")}
    return write_verdict(a.out, out, rows, verdict, est)


if __name__ == "__main__":
    main()
