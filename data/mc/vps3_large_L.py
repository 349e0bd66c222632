"""Does the VPS3 Monte Carlo T_N converge with the lattice size?  (issue 9, session 4)

    OMP_NUM_THREADS=1 python data/mc/vps3_large_L.py data/mc/VPS3_fast_spin_model.json WORKDIR [--sizes 24 36 48]

MODEL.json (data/mc/VPS3_fast_spin_model.json): the spin model of a `wannmag run data/structures/VPS3_monolayer.cif --preset fast` (H = Σ_{i<j}
S_i·J_ij·S_j + Σ_i S_i·A_i·S_i, each bond once, |S| = 3/2, J > 0 AF, meV; J1 = +26.4 meV, anisotropy ΔE = +0.036
meV/V out of plane, i.e. Δ/(J1 S²) ≈ 6e-4: a nearly isotropic 2D Heisenberg antiferromagnet).  Parallel tempering
on every size (one process per size, two at a time; checkpoints in WORKDIR, resumable) over 40–400 K with 24
replicas; Binder crossings, C and χ peaks → data/mc/VPS3_large_L.json.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

from wannmag._atomic import atomic_write_text
from wannmag.magnetism import SpinModel
from wannmag.magnetism.montecarlo import MCSettings
from wannmag.magnetism.montecarlo.tc import analyse_sizes, curves_of, simulate

ROOT = Path(__file__).resolve().parents[2]


def run_size(args):
    model_path, L, settings, ck = args
    t = time.time()
    res, _ = simulate(SpinModel.load(model_path), L, settings, checkpoint=ck)
    return L, curves_of(res), round(time.time() - t, 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("workdir")
    ap.add_argument("--sizes", type=int, nargs="+", default=[24, 36, 48])
    ap.add_argument("--sweeps", type=int, default=20000)
    ap.add_argument("--json", default="VPS3_large_L.json", help="output file name in data/mc")
    a = ap.parse_args()
    wd = Path(a.workdir)
    wd.mkdir(parents=True, exist_ok=True)
    st = MCSettings(tmin=40.0, tmax=400.0, n_replicas=24, n_sweeps=a.sweeps, n_therm=a.sweeps // 4, seed=7,
                    checkpoint_every=1000)
    jobs = [(a.model, L, st, str(wd / f"checkpoint_{L}.npz")) for L in a.sizes]
    with ProcessPoolExecutor(max_workers=2) as ex:
        runs = list(ex.map(run_size, jobs))
    res = analyse_sizes({f"{L}x{L}": c for L, c, _ in runs})
    d = res.as_dict(with_runs=False)
    out = {"what": "VPS3 (fast-preset spin model) Monte Carlo on larger lattices", "model": a.model,
           "command": "python data/mc/vps3_large_L.py " + " ".join([a.model, a.workdir, "--sizes",
                                                                     *map(str, a.sizes), "--sweeps", str(a.sweeps),
                                                                     "--json", a.json]),
           "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
           "settings": {"tmin_K": st.tmin, "tmax_K": st.tmax, "replicas": st.n_replicas, "sweeps": st.n_sweeps,
                        "therm": st.n_therm, "seed": st.seed},
           "wall_s": {f"{L}": t for L, _, t in runs},
           "convention": "H = sum_{i<j} S_i.J_ij.S_j + sum_i S_i.A_i.S_i, each bond once, |S| = 3/2, J > 0 AF; meV, K",
           "result": d}
    atomic_write_text(ROOT / "data" / "mc" / a.json, json.dumps(out, indent=1, default=float))
    print(json.dumps({k: d.get(k) for k in ("tc_K", "tc_error_K", "method", "binder_crossings", "peaks_C",
                                            "peaks_chi")}, indent=1, default=float))


if __name__ == "__main__":
    main()
