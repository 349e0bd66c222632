"""Convergence test behind the `accurate` preset: E(Néel) − E(FM) per Cr of the CrI3 monolayer (a = 7.0 Å,
U = 3 eV on Cr d) versus plane-wave cutoff and k-mesh.  Run (≈ 1 h on 2 cores):

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python data/dft/convergence_cri3.py /work/runs/conv

Each (ecut, k) point is a pair of wannmag run directories (resumable); the table is written atomically to
data/dft/CrI3_convergence.json after every pair.
"""
import sys
from pathlib import Path

from wannmag.structures import cri3_monolayer
from wannmag.workflows.dft import gpaw_version, run_dft, write_json_atomic

work = Path(sys.argv[1] if len(sys.argv) > 1 else "/work/runs/conv")
out = Path(__file__).resolve().parent / "CrI3_convergence.json"
points = [(450, 6), (350, 6), (550, 6), (450, 4), (450, 9)]
rows = []
for ecut, k in points:
    recs = {c: run_dft(cri3_monolayer(), c, preset="accurate", U=3.0, ecut=ecut, kpts=(k, k, 1), workdir=work,
                       name=f"{c}_e{ecut}_k{k}") for c in ("FM", "Neel")}
    rows.append({"ecut_eV": ecut, "kpts": [k, k, 1],
                 "dE_Neel_FM_meV_per_Cr": 1000 * (recs["Neel"].energy_per_ion - recs["FM"].energy_per_ion),
                 "E_FM_eV_per_cell": recs["FM"].energy, "E_Neel_eV_per_cell": recs["Neel"].energy,
                 "moment_Cr_FM": recs["FM"].site_moments, "moment_Cr_Neel": recs["Neel"].site_moments,
                 "time_s": {c: r.timings.get("scf") for c, r in recs.items()}})
    write_json_atomic(out, {"material": "CrI3 monolayer (wannmag.structures.cri3_monolayer(), a = 7.0 Å)",
                            "U_eV": {"Cr": 3.0}, "xc": "PBE", "code": f"gpaw {gpaw_version()}", "points": rows})
    print(rows[-1], flush=True)
