"""GPAW's plane-wave site force theorem (issue 17, item 4) on a plane-wave ground state of CrI3 or VPS3:
J1–J3 (meV, internal convention H = Σ_{i<j} J S_i·S_j, each bond once, |S| = 3/2, J > 0 AF) against the spherical
site radius, or — when the full q-mesh is too expensive here — the measured cost of one q-point.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 nice -n 5 python data/exchange/gpaw_mft.py MATERIAL RUN_DIR [cost|full]

RUN_DIR: a run directory of wannmag.workflows.dft.run_dft written with wave functions (its .gpw and summary.json),
e.g. the Néel Wannier runs of data/exchange/neel_wannier.py (/work/runs_neel/<MATERIAL>/wannier_runs/Neel_wannier:
PBE + U 3 eV, PW 450 eV, the Wannier k-mesh).  ``cost`` (default): one q-point (the smallest non-zero q of the
mesh) with all site radii; the projected cost of the full mesh (half of it, J̄(−q) = J̄(q)*) is per-q × count.
``full``: the whole q-mesh → J(R) by Fourier transform → J1–J3 per radius and the radius plateau.
Output: data/exchange/<MATERIAL>_gpaw_mft.json (numbers, or "not computed" with the measured reason).

What the number means for a PBE+U ground state: see wannmag/workflows/gpaw_mft.py (module docstring) — the
isotropic calculator uses the LSDA exchange field of the density without the Hubbard field, so this is not the
PBE+U force theorem; the consistent GPAW route is an LDA(+U) ground state with method "heisenberg".
"""

import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from wannmag.workflows.dft import read_summary, write_json_atomic  # noqa: E402
from wannmag.workflows.gpaw_mft import gpaw_site_exchange, half_mesh, q_mesh  # noqa: E402

RADII = [0.8, 1.0, 1.2, 1.4, 1.6, 1.8, 2.0]  # Å, spherical sites on the metal ions
ECUT = 50.0  # eV, plane-wave cutoff of χ_KS (GPAW's Fe test: 50 eV)
RCUT = {"CrI3": 8.5, "VPS3": 7.0}


def main(mat: str, run_dir: Path, mode: str = "cost") -> dict:
    from gpaw import GPAW

    summ = read_summary(run_dir)
    gpw = Path(summ.gpw) if summ.gpw and Path(summ.gpw).exists() else sorted(run_dir.glob("*.gpw"))[0]
    cb = summ.parameters.get("converge_bands")
    t0 = time.time()
    calc = GPAW(str(gpw), txt=None, parallel={"domain": 1})
    t_load = time.time() - t0
    nconv = calc.get_number_of_bands() + (int(cb) if isinstance(cb, int) and cb < 0 else 0)
    kmesh = tuple(int(x) for x in calc.wfs.kd.N_c)
    q_all = q_mesh(kmesh)
    n_half = len(half_mesh(q_all)[0])
    txt = run_dir / f"gpaw_mft_{mode}.txt"
    base = {"material": mat, "method": "GPAW plane-wave site force theorem (gpaw.response.mft."
            "IsotropicExchangeCalculator, Durhuus, Skovhus, Olsen, J. Phys.: Condens. Matter 35, 105802 (2023)); "
            "wannmag.workflows.gpaw_mft.gpaw_site_exchange",
            "convention": "meV; H = sum_{i<j} J S_i.S_j, each bond once, |S| = 3/2, J > 0 AF; converted from GPAW's "
                          "E = -sum_pairs J u_i.u_j (eV, unit vectors, J > 0 FM): J = -1000 J_GPAW / S^2",
            "ground_state": {"run_dir": str(run_dir), "gpw": str(gpw), "config": summ.parameters.get("config"),
                             "xc": summ.parameters.get("xc"), "U": summ.parameters.get("U"),
                             "mode": summ.parameters.get("mode"), "ecut": summ.parameters.get("ecut"),
                             "kpts": list(kmesh), "site_moments_muB": summ.site_moments,
                             "nbands_converged": nconv},
            "command": f"OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python data/exchange/gpaw_mft.py {mat} {run_dir} full",
            "made_by": "data/exchange/gpaw_mft.py", "date": datetime.now(timezone.utc).strftime("%Y-%m-%d")}
    if mode == "cost":
        q1 = [1.0 / kmesh[0], 0.0, 0.0]
        res = gpaw_site_exchange(calc, RADII, q_points=[q1], ecut=ECUT, nbands=nconv, txt=str(txt))
        per_q = res.seconds["per_q"][0]
        out = {**base, "status": "not computed",
               "reason": f"measured cost of one q-point: {per_q:.0f} s (ecut {ECUT} eV, {nconv} bands, "
                         f"{'x'.join(map(str, kmesh))} k, shared 2-core machine); the full {'x'.join(map(str, kmesh))} "
                         f"q-mesh needs {n_half} q-points (J(-q) = J(q)*) -> about {n_half * per_q / 60:.0f} min",
               "J1": None, "J2": None, "J3": None,
               "one_q": {"q_c": q1, "radii_A": RADII, "J_q_eV_real": np.array(res.J_q_eV["real"])[0].tolist(),
                         "J_q_eV_imag": np.array(res.J_q_eV["imag"])[0].tolist(), "site_moments_muB": res.site_moments},
               "xc_kernels": res.xc,
               "seconds": {"load_gpw": round(t_load, 1), "one_q": per_q, "projected_full_mesh": round(n_half * per_q),
                           "n_q_full_mesh": n_half}}
    else:
        res = gpaw_site_exchange(calc, RADII, ecut=ECUT, nbands=nconv, rcut=RCUT[mat], txt=str(txt))
        p = res.plateau.get("J1")
        k = int(np.argmin([abs(r - 0.5 * (p[0] + p[1])) for r in RADII])) if p else None
        out = {**base, "status": "computed" if p else "no plateau",
               "J1": res.shells[k][0] if k is not None else None,
               "J2": res.shells[k][1] if k is not None else None,
               "J3": res.shells[k][2] if k is not None else None,
               "radius_A": RADII[k] if k is not None else None, "plateau": res.plateau,
               "by_radius": {f"{r:.1f}": dict(zip(("J1", "J2", "J3"), s)) for r, s in zip(RADII, res.shells)},
               "result": res.as_dict(), "xc_kernels": res.xc,
               "seconds": {"load_gpw": round(t_load, 1), **res.seconds}}
    write_json_atomic(ROOT / "data" / "exchange" / f"{mat}_gpaw_mft.json", out)
    print(json.dumps({k: out[k] for k in ("status", "J1", "J2", "J3") if k in out}), out.get("reason", ""), flush=True)
    return out


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else "cost")
