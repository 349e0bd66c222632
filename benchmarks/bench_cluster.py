"""Benchmark of the cluster Monte Carlo (issue 19): integrated autocorrelation times per CPU-second, cluster + PT
against Metropolis + over-relaxation + PT, for the VPS3 model at T ≈ T_N; and the parallel-replica speed-up.

Model: data/mc/VPS3_fast_spin_model.json (wannmag convention H = Σ_{i<j} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i, each bond
once, |S| = 3/2, J > 0 antiferromagnetic, meV; J1 ≈ 26.4, J2 ≈ 0.37 (frustrated against the Néel order), J3 ≈ 0.60
meV, easy axis ≈ 0.0145 meV).  Temperatures in K.

For each size L (L×L cells, 2 L² sites) and each algorithm the same parallel-tempering run (geometric ladder on
[tmin, tmax], every sweep measured, bin size 1) is made; at the temperature of the ladder nearest ``--t-target``
(default 230 K, the Binder crossing 48/64 of data/mc/VPS3_large_L_64.json) the integrated autocorrelation time τ_int
(in sweeps) of the energy and of the staggered order parameter |Q| is estimated with Sokal's automatic window
(the smallest M with M ≥ c·τ(M), c = 5, as in emcee's ``integrated_time``; emcee is used if installed).  The cost of a
sweep is the process CPU time of the run divided by its sweeps (thermalisation included; compile time excluded by a
warm-up run).  Efficiency = 1/(τ_int × CPU s per sweep); the table prints both and the ratio cluster/Metropolis.  A
τ_int with fewer than 50 τ of data is flagged ``*`` (emcee's criterion): an underestimate.

``--threads-test L`` times one size with 1 and 2 Numba threads (replicas in parallel) for both algorithms and checks
that the measurements are bit-identical; the load average is printed, since the machine may be shared.

Usage: python benchmarks/bench_cluster.py [--sizes 32 64 128 256] [--sweeps 20000 ...] [--cluster-sweeps 8000 ...]
                                         [--json out.json]
       python benchmarks/bench_cluster.py --sizes --threads-test 64
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # before numpy is imported
    os.environ[_v] = "1"
os.environ.setdefault("NUMBA_NUM_THREADS", "2")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from wannmag.magnetism import SpinModel  # noqa: E402
from wannmag.magnetism.montecarlo import MCSettings, build_lattice, ground_state, parallel_tempering  # noqa: E402

MODEL = ROOT / "data" / "mc" / "VPS3_fast_spin_model.json"


def integrated_time(x: np.ndarray, c: float = 5.0) -> tuple[float, bool]:
    """(τ_int in samples, reliable): Sokal's automatic windowing; emcee's implementation if available."""
    x = np.asarray(x, float)
    n = len(x)
    try:
        import emcee

        tau = float(emcee.autocorr.integrated_time(x, c=c, quiet=True)[0])
    except ImportError:
        y = x - x.mean()
        f = np.fft.rfft(y, n=2 * n)
        acf = np.fft.irfft(f * np.conj(f))[:n]
        acf = acf / acf[0] if acf[0] > 0 else np.zeros(n)
        taus = 2.0 * np.cumsum(acf) - 1.0
        m = np.arange(n)
        ok = m >= c * taus
        tau = float(taus[np.argmax(ok)] if ok.any() else taus[-1])
    return tau, bool(n >= 50 * tau)


def run(model, L, algorithm, args, threads=1, sweeps=None, therm=None):
    lat = build_lattice(model, L)
    gs = ground_state(lat, seed=0)
    if sweeps is None and algorithm == "cluster" and args.cluster_sweeps_of:
        sweeps = args.cluster_sweeps_of[L]
    sweeps = sweeps or args.sweeps_of[L]
    therm = therm if therm is not None else sweeps // 5
    st = MCSettings(tmin=args.tmin, tmax=args.tmax, n_replicas=args.replicas, n_sweeps=sweeps, n_therm=therm,
                    seed=args.seed, algorithm=algorithm, max_bins=sweeps, threads=threads,
                    cluster_fraction=args.cluster_fraction)
    c0, w0 = time.process_time(), time.perf_counter()
    res = parallel_tempering(lat, st, pattern=gs.pattern, init=gs.spins)
    return res, time.process_time() - c0, time.perf_counter() - w0, sweeps + therm


def warm_up(model):
    for algo in ("metropolis", "cluster"):
        lat = build_lattice(model, 4)
        gs = ground_state(lat, seed=0)
        parallel_tempering(lat, MCSettings(tmin=200, tmax=280, n_replicas=2, n_sweeps=20, n_therm=5,
                                           algorithm=algo), pattern=gs.pattern, init=gs.spins)


def autocorr_table(model, args) -> list[dict]:
    rows = []
    for L in args.sizes:
        row = {"L": L, "n_sites": 2 * L * L}
        for algo in args.algorithms:
            res, cpu, wall, total = run(model, L, algo, args)
            k = int(np.argmin(np.abs(res.temperatures - args.t_target)))
            assert res.bin_size == 1
            e, q = res.bins[k, :, 0], res.bins[k, :, 4]
            te, oke = integrated_time(e)
            tq, okq = integrated_time(q)
            cps = cpu / total
            row[algo] = {"T_K": float(res.temperatures[k]), "sweeps": int(res.bins.shape[1]), "cpu_s": cpu,
                         "wall_s": wall, "cpu_s_per_sweep": cps, "tau_E": te, "tau_Q": tq, "reliable_E": oke,
                         "reliable_Q": okq, "eff_E": 1.0 / (te * cps), "eff_Q": 1.0 / (tq * cps),
                         "Q": float(q.mean()), "cluster": res.cluster}
            print(f"  L = {L:4d} {algo:10s} T = {res.temperatures[k]:6.1f} K  τ_E = {te:8.1f}{'' if oke else '*'}  "
                  f"τ_Q = {tq:8.1f}{'' if okq else '*'}  CPU {cpu:7.1f} s ({1e3 * cps:.2f} ms/sweep)"
                  + (f"  cluster acc {np.round(res.cluster['acceptance'][k], 2)} size "
                     f"{res.cluster['mean_size'][k]:.0f}" if res.cluster else ""), flush=True)
        rows.append(row)
    if len(args.algorithms) < 2:
        return rows
    for row in rows:
        row["ratio_E"] = row["cluster"]["eff_E"] / row["metropolis"]["eff_E"]
        row["ratio_Q"] = row["cluster"]["eff_Q"] / row["metropolis"]["eff_Q"]
    print("\nefficiency = 1/(τ_int × CPU s per sweep), at T ≈ T_N; ratio = cluster / Metropolis (* = run < 50 τ)")
    print(f"{'L':>5s} {'τ_E M':>9s} {'τ_E C':>9s} {'τ_Q M':>9s} {'τ_Q C':>9s} {'ms/sw M':>8s} {'ms/sw C':>8s} "
          f"{'ratio E':>8s} {'ratio Q':>8s}")
    for r in rows:
        m, c = r["metropolis"], r["cluster"]

        def f(x, ok):
            return f"{x:8.1f}{'' if ok else '*'}"
        print(f"{r['L']:5d} {f(m['tau_E'], m['reliable_E']):>9s} {f(c['tau_E'], c['reliable_E']):>9s} "
              f"{f(m['tau_Q'], m['reliable_Q']):>9s} {f(c['tau_Q'], c['reliable_Q']):>9s} "
              f"{1e3 * m['cpu_s_per_sweep']:8.2f} {1e3 * c['cpu_s_per_sweep']:8.2f} {r['ratio_E']:8.2f} "
              f"{r['ratio_Q']:8.2f}")
    return rows


def threads_test(model, L, args) -> dict:
    from wannmag.magnetism.montecarlo import tempering

    out = {"L": L, "replicas": args.replicas, "load_before": os.getloadavg(),
           "chunksize": tempering.PARALLEL_CHUNKSIZE}
    for algo in ("metropolis", "cluster"):
        r1, c1, w1, _ = run(model, L, algo, args, threads=1, sweeps=args.thread_sweeps, therm=0)
        r2, c2, w2, _ = run(model, L, algo, args, threads=2, sweeps=args.thread_sweeps, therm=0)
        same = bool(np.array_equal(r1.bins, r2.bins) and np.array_equal(r1.temperatures, r2.temperatures))
        out[algo] = {"wall_1": w1, "wall_2": w2, "speedup": w1 / w2, "identical": same}
        print(f"  threads L = {L} {algo:10s}: 1 thread {w1:6.2f} s, 2 threads {w2:6.2f} s, speed-up "
              f"{w1 / w2:.2f}x, results identical: {same}", flush=True)
    out["load_after"] = os.getloadavg()
    print(f"  load average before {out['load_before']}, after {out['load_after']} (2 cores)")
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="*", default=[32, 64, 128, 256])
    p.add_argument("--sweeps", type=int, nargs="*", default=None,
                   help="measurement sweeps per size (default 20000 for every size)")
    p.add_argument("--cluster-sweeps", type=int, nargs="*", default=None,
                   help="measurement sweeps per size for the cluster runs (default: as --sweeps); each algorithm "
                        "needs >= 50 tau of its own, and Metropolis tau_Q is ~50x the cluster one at L >= 64")
    p.add_argument("--replicas", type=int, default=6)
    p.add_argument("--tmin", type=float, default=200.0)
    p.add_argument("--tmax", type=float, default=280.0)
    p.add_argument("--t-target", type=float, default=230.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--cluster-fraction", type=float, default=1.0,
                   help="cluster sites per sweep in units of N (MCSettings.cluster_fraction, default 1)")
    p.add_argument("--threads-test", type=int, default=0, metavar="L")
    p.add_argument("--thread-sweeps", type=int, default=200)
    p.add_argument("--chunksize", type=int, default=None,
                   help="chunk size of the parallel walker loop (default: tempering.PARALLEL_CHUNKSIZE = 1, "
                        "dynamic; 0 = Numba's static split), for comparison")
    p.add_argument("--algorithms", nargs="+", default=["metropolis", "cluster"], choices=["metropolis", "cluster"])
    p.add_argument("--json", help="write the numbers here")
    args = p.parse_args(argv)
    sw = args.sweeps or [20000]
    if len(sw) == 1:
        sw = sw * len(args.sizes)
    args.sweeps_of = dict(zip(args.sizes, sw))
    csw = args.cluster_sweeps
    if csw and len(csw) == 1:
        csw = csw * len(args.sizes)
    args.cluster_sweeps_of = dict(zip(args.sizes, csw)) if csw else {}
    model = SpinModel.load(MODEL)
    if args.chunksize is not None:
        from wannmag.magnetism.montecarlo import tempering

        tempering.PARALLEL_CHUNKSIZE = int(args.chunksize)
    warm_up(model)
    out = {"model": str(MODEL.relative_to(ROOT)), "tmin_K": args.tmin, "tmax_K": args.tmax,
           "cluster_fraction": args.cluster_fraction,
           "replicas": args.replicas, "t_target_K": args.t_target, "load_average_start": os.getloadavg()}
    if args.sizes:
        out["autocorrelation"] = autocorr_table(model, args)
    if args.threads_test:
        out["threads"] = threads_test(model, args.threads_test, args)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
