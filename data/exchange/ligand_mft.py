"""Ligand-inclusive force theorem on the shipped Wannier models (issue 17, item 3).

    python data/exchange/ligand_mft.py            # both materials, ≈ 1–2 min on 2 shared cores
    python data/exchange/ligand_mft.py CrI3

Reads data/dft/<material>/<material>_{up,dn} (Wannier90, FM reference state) exactly as `wannmag exchange mft`
does (hamiltonian_from_tb, magnetic = atoms with d orbitals, Fermi level mid-gap from the .win fermi_energy),
k-mesh 12×12×1 and 120 contour points (the CLI defaults, which give the README's CrI3 J1 = −0.96 meV), and writes
data/exchange/<material>_ligand_mft.json: every route's J1–J3 (meV, internal convention H = Σ_{i<j} J S_i·S_j,
each bond once, |S| = S, J > 0 AF), its settings and wall time, the energy-mapping J of the same PBE+U data
(data/dft/<material>_energies.json) for comparison, and the ligand sites (moments, splittings, on-site stiffness,
metal–ligand and ligand–ligand raw LKAG J) of each split.  Wall times are measured on the shared machine.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))

from wannmag.magnetism.mft import hamiltonian_from_tb  # noqa: E402
from wannmag.magnetism.mft_ligand import ligand_routes  # noqa: E402
from wannmag.tightbinding import read_w90  # noqa: E402
from wannmag.tightbinding.electronic import midgap_fermi_level  # noqa: E402

KMESH = (12, 12, 1)
N_ENERGY = 120


def energy_mapping(material: str) -> dict:
    import subprocess

    path = ROOT / "data" / "dft" / f"{material}_energies.json"
    out = subprocess.run([sys.executable, "-m", "wannmag.cli", "exchange", "map-energies", str(path), "--json"],
                         capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        return {"error": out.stderr.strip()}
    d = json.loads(out.stdout)
    return {"J1": d["J_meV"][0], "J2": d["J_meV"][1], "J3": d["J_meV"][2], "source": str(path.relative_to(ROOT)),
            "spin": d["spin"]}


def run(material: str) -> dict:
    src = ROOT / "data" / "dft" / material
    t0 = time.perf_counter()
    model = read_w90(str(src), kind="collinear")
    ham = hamiltonian_from_tb(model)
    efermi, how = midgap_fermi_level(model)
    t_read = time.perf_counter() - t0
    results = {}
    routes = ligand_routes(ham, kmesh=KMESH, efermi=efermi, n_energy=N_ENERGY, keep_results=results)
    em = energy_mapping(material)
    table = []
    for name, (J1, J2, J3, settings, seconds) in routes.items():
        table.append({"name": name, "J1": J1, "J2": J2, "J3": J3,
                      "method": "magnetic force theorem on the MLWF pair (wannmag.magnetism.mft_ligand)",
                      "settings": settings, "seconds": round(float(seconds), 2)})
    sites = {split: {"sites": res.sites,
                     "site_pairs": [p for p in res.site_pairs if p["distance"] <= 4.5],
                     "notes": res.notes, "warnings": res.warnings}
             for split, res in results.items()}
    sym = model.atoms.get_chemical_symbols()
    for block in sites.values():
        for s in block["sites"]:
            s["element"] = sym[s["atom"]]
        label = [f"{s['element']}{s['atom']}" for s in block["sites"]]
        for p in block["site_pairs"]:
            p["pair"] = f"{label[p['a']]}-{label[p['b']]}"
    out = {"material": material,
           "convention": "J: H = sum_{i<j} J S_i.S_j, each bond once, |S| = S, J > 0 AF, meV; site_pairs J_raw_meV: "
                         "LKAG pair term in TB2J normalisation along the reference fields, no moment-sign division",
           "source": str(src.relative_to(ROOT)), "fermi_level_eV": efermi, "fermi_level_how": how,
           "kmesh": list(KMESH), "n_energy": N_ENERGY, "spins": list(ham.spins),
           "energy_mapping": em, "routes": table, "ligand_sites": sites,
           "read_seconds": round(t_read, 2)}
    path = HERE / f"{material}_ligand_mft.json"
    path.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n")
    print(f"{material}: wrote {path.relative_to(ROOT)}")
    print(f"  energy mapping: J1 {em.get('J1', float('nan')):+.3f}  J2 {em.get('J2', float('nan')):+.3f}  "
          f"J3 {em.get('J3', float('nan')):+.3f} meV")
    for r in table:
        fmt = [f"{x:+.3f}" if x is not None else "  n/a " for x in (r["J1"], r["J2"], r["J3"])]
        print(f"  {r['name']:<110} J1 {fmt[0]}  J2 {fmt[1]}  J3 {fmt[2]}  ({r['seconds']:.1f} s)")
    return out


if __name__ == "__main__":
    for m in (sys.argv[1:] or ["CrI3", "VPS3"]):
        run(m)
