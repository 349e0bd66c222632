"""Finite-size analysis of the Néel temperature of diluted VPS3 lattices (issue 19 item 4, "the same for the diluted
lattices of the vacancy study at x ≤ 0.1"; issue 18 item 4).

    OMP_NUM_THREADS=1 python data/mc/vps3_diluted_tn.py --x 0.1 [--sizes 48 64 96 128] [--realisations 4]
        [--tmin 145 --tmax 185 --replicas 10] [--sweeps 2500 --therm 700] [--work WORK] [--out FILE] [--quick]

Model: data/mc/VPS3_fast_spin_model.json with a random fraction x of the V sites removed (dilution alone: every J
of the crystal, S = 3/2 on every remaining site; wannmag.magnetism.montecarlo.dilution.dilution_scan, the estimator
of ``wannmag mc --dilution``).  Convention: H = Σ_{i<j} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i, each bond once, classical
spins |S| = 3/2, J > 0 antiferromagnetic, meV; temperatures in K.

Estimator: cluster moves + parallel tempering on one temperature window for every size, the easy-axis Binder
cumulant averaged over disorder realisations as U4 = 1 − [⟨q⁴⟩]/(3[⟨q²⟩]²), crossings of every size pair with
jackknife errors over the realisations (the package's Tc analysis).  Every (x, L, realisation) is seeded by its own
key and checkpointed in WORK under a directory keyed by the model, the settings and x (not by the sizes or the
number of realisations): a rerun with more sizes or realisations reuses what is done, a killed run resumes.

The verdict is the one of data/mc/vps3_tn_converged.py: T_N only if the crossings of the three largest consecutive
size pairs exist and lie within 5 % of each other; otherwise ``TN_K`` is null with the reason and every crossing is
listed.  (The perfect lattice needed L = 192–256 for that: its 48/64, 64/96 and 96/128 crossings, 252.3, 241.5 and
235.6 K, differ by 6.8 %, data/mc/VPS3_TN_converged.json.)

Output: the entry ``"x": {"<x>": {...}}`` of data/mc/VPS3_TN_diluted.json (``--out``; read-modify-write, atomic;
other fractions kept).  ``--quick``: sizes 6 8 10, one realisation, a few hundred sweeps — a test of the machinery
(written to WORK/VPS3_TN_diluted_quick.json unless --out is given), not a result.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # before numpy is imported
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import replace  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from vps3_tn_converged import crossing_rows, tn_verdict  # noqa: E402

from wannmag._atomic import atomic_write_json, jsonable, locked_dir, read_json  # noqa: E402
from wannmag.magnetism import SpinModel  # noqa: E402
from wannmag.magnetism.montecarlo import MCSettings  # noqa: E402
from wannmag.magnetism.montecarlo.dilution import dilution_scan  # noqa: E402
from wannmag.magnetism.montecarlo.tc import checkpoint_key  # noqa: E402

MODEL = HERE / "VPS3_fast_spin_model.json"
OUT = HERE / "VPS3_TN_diluted.json"
PERFECT = HERE / "VPS3_TN_converged.json"


def _fail(message: str):
    print(f"wannmag: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _rel(p) -> str:
    p = Path(p).resolve()
    try:
        return str(p.relative_to(ROOT))
    except ValueError:
        return str(p)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--x", type=float, required=True, help="vacancy fraction (0 < x < 1)")
    ap.add_argument("--model", default=str(MODEL))
    ap.add_argument("--sizes", type=int, nargs="+", default=[48, 64, 96, 128])
    ap.add_argument("--realisations", type=int, default=4)
    ap.add_argument("--tmin", type=float, default=145.0)
    ap.add_argument("--tmax", type=float, default=185.0)
    ap.add_argument("--replicas", type=int, default=10)
    ap.add_argument("--sweeps", type=int, default=2500)
    ap.add_argument("--therm", type=int, default=700)
    ap.add_argument("--extensions", type=int, default=1,
                    help="further passes beyond the window edge where an unbracketed crossing lies")
    ap.add_argument("--threads", type=int, default=1, help="Numba threads running the replicas of one lattice")
    ap.add_argument("--seed", type=int, default=20)
    ap.add_argument("--work", default=str(ROOT / "out" / "vps3_diluted_tn"))
    ap.add_argument("--out", help=f"result file (default {_rel(OUT)})")
    ap.add_argument("--quick", action="store_true", help="sizes 6 8 10, 1 realisation, few sweeps (< 1 min)")
    a = ap.parse_args(argv)
    if not 0.0 < a.x < 1.0:
        _fail(f"--x: vacancy fraction {a.x:g} outside (0, 1)")
    if len(a.sizes) < 2 or min(a.sizes) < 2:
        _fail("--sizes: give at least two lattice sizes >= 2")
    work = Path(a.work)
    if a.quick:
        a.sizes, a.realisations, a.sweeps, a.therm, a.replicas, a.extensions = [6, 8, 10], 1, 300, 100, 6, 0
    out_path = Path(a.out) if a.out else (work / "VPS3_TN_diluted_quick.json" if a.quick else OUT)
    model = SpinModel.load(a.model)
    base = MCSettings(tmin=a.tmin, tmax=a.tmax, n_replicas=a.replicas, n_sweeps=a.sweeps, n_therm=a.therm,
                      seed=a.seed, threads=a.threads, checkpoint_every=0 if a.quick else 250)
    try:
        base.validate()
    except Exception as exc:  # noqa: BLE001 - bad settings: one line
        _fail(str(exc))
    algo = "cluster"  # refused with its one line by the Monte Carlo if the scheme cannot treat the model
    st = replace(base, algorithm=algo)
    key = checkpoint_key(model, replace(st, threads=1), x=float(a.x), tag="diluted_tn")
    ck = work / f"x{a.x:g}" / key
    print(f"x = {a.x:g}: sizes {a.sizes}, {a.realisations} realisations, {st.n_replicas} replicas on "
          f"{st.tmin:g}-{st.tmax:g} K, {st.n_therm} + {st.n_sweeps} sweeps, {algo}; checkpoints {ck}", flush=True)
    c0, w0 = time.process_time(), time.time()
    res = dilution_scan(model, [float(a.x)], a.sizes, st, realisations=a.realisations, out_dir=ck, warn=False,
                        max_extensions=a.extensions)
    cpu, wall = time.process_time() - c0, time.time() - w0
    an = res.analyses[0]
    rows = crossing_rows(an)
    verdict = tn_verdict(sorted(a.sizes), rows)
    print(f"  {res.text(0)}", flush=True)
    for r in rows:
        print(f"  crossing {r['pair'][0]}/{r['pair'][1]}: {r['T_K']:.1f} +- {r['err_K']:.1f} K", flush=True)
    print(f"  verdict: {verdict['TN_reason']}", flush=True)
    perfect = read_json(PERFECT) if PERFECT.exists() else {}
    entry = {
        "x": float(a.x), "sizes": sorted(a.sizes), "realisations": a.realisations,
        "crossings": rows, **verdict,
        "analysis_tc_K": res.tc[0], "analysis_tc_err_K": res.tc_error[0], "analysis_method": res.methods[0],
        "analysis_note": res.notes[0], "status": res.statuses[0], "window_K": res.windows[0],
        "binder": getattr(an, "binder", None), "warning": getattr(an, "warning", None),
        "algorithm": "cluster moves (Wolff, Ising embedding, exact acceptance) + Metropolis/over-relaxation + "
                     "parallel tempering",
        "settings": {"tmin_K": st.tmin, "tmax_K": st.tmax, "replicas": st.n_replicas, "sweeps": st.n_sweeps,
                     "therm": st.n_therm, "seed": st.seed, "extensions": a.extensions, "threads": a.threads},
        "disorder": "random vacancies per (seed, L, realisation, x) key; all remaining sites S = 3/2, crystal J",
        "cpu_s": round(cpu, 1), "wall_s": round(wall, 1), "quick": bool(a.quick),
        "command": "python data/mc/vps3_diluted_tn.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
    }
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with locked_dir(out_path.parent):
        doc = read_json(out_path) if out_path.exists() else {}
        doc.setdefault("what", "VPS3 (fast-preset spin model) diluted lattices: Neel temperature by finite-size "
                               "analysis (cluster moves + parallel tempering, easy-axis Binder crossings, disorder "
                               "averaged), per vacancy fraction x")
        doc["model"] = _rel(a.model)
        doc["convention"] = ("H = sum_{i<j} S_i.J_ij.S_j + sum_i S_i.A_i.S_i, each bond once, |S| = 3/2, J > 0 AF; "
                             "meV, K")
        doc["perfect_lattice"] = {"TN_K": perfect.get("TN_K"), "TN_err_K": perfect.get("TN_err_K"),
                                  "source": _rel(PERFECT)} if perfect else None
        doc.setdefault("x", {})[f"{a.x:g}"] = entry
        doc["x"] = dict(sorted(doc["x"].items(), key=lambda kv: float(kv[0])))
        atomic_write_json(out_path, jsonable(doc))
    print(f"wrote {out_path}; cpu {cpu:.0f} s, wall {wall:.0f} s", flush=True)
    return entry


if __name__ == "__main__":
    main()
