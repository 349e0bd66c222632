"""Analytic ordering-temperature estimates and quantum corrections beside the classical Monte Carlo numbers, for
the CrI3 accurate-run model and the VPS3 fast-preset model (issue 19, items 4 and 5).

    OMP_NUM_THREADS=1 python data/mc/tc_estimates.py          # writes data/mc/TC_estimates.json (≈ 10 s)

Convention (internal): H = Σ_{i<j} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i, each bond once, classical spins of length
S = 3/2, J > 0 antiferromagnetic, meV; temperatures K.  Formulas, sources and what is unverified:
wannmag/magnetism/tc_estimates.py.  Per material: classical Monte Carlo T_c (as stored, or the reason there is
none), classical and quantum RPA (Tyablikov), Torelli–Olsen (with the J_eff alternatives), the quantum-mapped T_c
(El Mendili–Zhitomirsky; T_c^cl × ratio, only where a converged classical T_c exists), the RG estimate (not
implemented — the easy-axis formula was not reachable to verify: reason and its ingredients), the measured value
where there is one.  No parameter is adjusted.
Also writes data/mc/<material>_quantum_mapped_spin_model.json, the classical model of spin length √(S(S+1)) that
the mapping gives, for a Monte Carlo run (its T_c is the quantum-mapped T_c without the RPA/TO ratio):

    wannmag mc data/mc/CrI3_quantum_mapped_spin_model.json --sizes 12 18 24 --tmin 60 --tmax 160 --out OUT
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from wannmag.magnetism import SpinModel  # noqa: E402
from wannmag.magnetism.tc_estimates import quantum_mapped_model, tc_estimates  # noqa: E402

MATERIALS = {
    "CrI3": {"model": "data/runs/CrI3_accurate/spin_model.json", "order": "FM",
             "mc": "data/runs/CrI3_accurate/steps/mc.json",
             "measured": {"T_K": 45.0, "what": "Curie temperature of the monolayer",
                          "ref": "B. Huang et al., Nature 546, 270 (2017)"}},
    "VPS3": {"model": "data/mc/VPS3_fast_spin_model.json", "order": "Neel",
             "mc": "data/mc/VPS3_large_L_64.json", "measured": None},
}


def classical_mc(name: str, path: str) -> dict:
    d = json.loads((ROOT / path).read_text())
    if name == "CrI3":
        return {"tc_K": d["tc_K"], "tc_error_K": d["tc_error_K"], "method": d["method"], "source": path}
    r = d["result"]
    return {"tc_K": None, "source": path,
            "reason": r.get("warning") or "not converged",
            "crossings_K": {"/".join(c["sizes"]): c["T"] for c in r["binder_crossings"]}}


def main() -> None:
    out = {"what": "analytic T_c estimates and quantum corrections beside classical Monte Carlo (issue 19)",
           "command": "python data/mc/tc_estimates.py",
           "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
           "convention": "H = sum_{i<j} S_i.J_ij.S_j + sum_i S_i.A_i.S_i, each bond once, |S| = 3/2, J > 0 AF; "
                         "meV, K",
           "formulas_and_sources": "wannmag/magnetism/tc_estimates.py (module docstring)",
           "materials": {}}
    for name, spec in MATERIALS.items():
        model = SpinModel.load(ROOT / spec["model"])
        mc = classical_mc(name, spec["mc"])
        est = tc_estimates(model, order=spec["order"], tc_classical_K=mc["tc_K"])
        to = est["torelli_olsen"]
        qm = est["quantum_mapping"]
        rpa = est["rpa"]
        summary = {
            "classical_MC_K": mc["tc_K"], "classical_MC_err_K": mc.get("tc_error_K"),
            "RPA_classical_K": rpa.get("Tc_RPA_classical_K"), "RPA_quantum_K": rpa.get("Tc_RPA_quantum_K"),
            "torelli_olsen_K": to["tc_K"], "torelli_olsen_extrapolated": to["extrapolated"],
            "torelli_olsen_alternatives_K": {k: v.get("tc_K") for k, v in to["alternatives"].items()},
            "quantum_mapping_ratio": qm.get("ratio"), "quantum_mapped_MC_K": qm.get("tc_quantum_K"),
            "quantum_mapped_torelli_olsen_K": (to["tc_K"] * qm["ratio_torelli_olsen"]
                                               if to["tc_K"] and qm.get("ratio_torelli_olsen") else None),
            "rg_estimate_K": est["rg_estimate"]["tc_K"],
            "rg_estimate_reason": est["rg_estimate"].get("reason"),
            "measured_K": spec["measured"]["T_K"] if spec["measured"] else None,
        }
        mapped = ROOT / f"data/mc/{name}_quantum_mapped_spin_model.json"
        quantum_mapped_model(model).save(mapped)   # for a Monte Carlo run of the mapped model (wannmag mc)
        out["materials"][name] = {"quantum_mapped_model": str(mapped.relative_to(ROOT)), "model": spec["model"],
                                  "order": spec["order"], "summary": summary,
                                  "classical_mc": mc, "measured": spec["measured"], "estimates": est}
        print(name, json.dumps(summary, indent=1))
    path = ROOT / "data/mc/TC_estimates.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print("wrote", path)


if __name__ == "__main__":
    main()
