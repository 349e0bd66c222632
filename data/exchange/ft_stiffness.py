"""Small-q spin stiffness of the PBE+U MLWF force theorem with ALL metal–metal couplings J(R) up to a cutoff radius
(issue 17): how much do the couplings beyond J3 change the force theorem's D?

    cd /work/main && source .venv/bin/activate && OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \
        nice -n 19 python data/exchange/ft_stiffness.py [CrI3 VPS3] [--rcut 30]

For each material and each shipped MLWF pair (data/dft/<m> = FM reference state, data/dft/<m>_Neel = Néel reference
state): LKAG J(R) (wannmag.magnetism.mft.lkag_exchange, E_F mid-gap as data/exchange/neel_wannier.py) for every
metal pair (i, j, R) with |d_ij| ≤ rcut, then D along Γ–M (direction of b1) of the ground-state pattern (CrI3 FM,
VPS3 Néel, as data/exchange/spiral_dft.py) by wannmag.magnetism.spiral.stiffness_tensor in the co-rotating (GPAW)
frame — the definition of "D_from_routes" in data/exchange/<m>_spiral_stiffness.json — with the bonds up to each
distance shell in turn, so that the convergence in the cutoff is visible.  Writes data/exchange/<m>_ft_stiffness.json.

Convention: E(q) − E(Γ) = D|q|² + B|q|⁴ per primitive cell (meV Å², |q| in Å⁻¹ incl. 2π), co-rotating frame;
J: H = Σ_{i<j} J_ij S_i·S_j, each bond once, classical spins S = 3/2, J > 0 AF, meV.  For a collinear pattern
D = −½ Σ_bonds J_ij S_i S_j σ_i σ_j (u·d_ij)², d_ij the bond vector: each shell n adds −¼ S² σ_n J_n z_n d_n²
(z_n bonds per cell, C3-symmetric shell), so long-range J weigh with d².

Which D: the MLWF gauge breaks C3 (the three J1 bonds of VPS3's FM model differ by 3.7 meV), and the bond-resolved
u·D·u then depends on the direction u.  "D_cumulative" / "D_all" is the C3-symmetric value ½ Tr_plane D — equal to
u·D·u of the model with J averaged over each distance shell, hence exactly the "D_from_routes" definition when
truncated at shell 3 (checked).  The bond-resolved value along Γ–M is stored beside it ("..._GM_bond_resolved").

Checks stored in the file: (1) J1–J3 (shell means) against the shipped route numbers of data/exchange/<m>_routes.json
(12×12 mesh there; ≤ 0.01 meV required); (2) D of the shipped J1–J3 by the route definition (spiral_model of the CIF,
J by shell) against "D_from_routes" of the spiral stiffness file where it exists, and against D of this run's bonds
truncated at shell 3; (3) k-mesh and energy-contour convergence of every J and of D (CHECK_KMESH, CHECK_N_ENERGY).
The whole run takes seconds (28 and 22 orbitals, 15×15 mesh).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from wannmag.magnetism.mft import hamiltonian_from_tb, lkag_exchange, mft_spin_model  # noqa: E402
from wannmag.magnetism.spiral import stiffness_tensor  # noqa: E402
from wannmag.tightbinding import read_w90  # noqa: E402
from wannmag.tightbinding.electronic import midgap_fermi_level  # noqa: E402
from wannmag.workflows.dft import write_json_atomic  # noqa: E402
from wannmag.workflows.spiral import spiral_model  # noqa: E402

DATA = ROOT / "data"
#: ground-state pattern whose stiffness is wanted (as data/exchange/spiral_dft.py SETTINGS) and its σ
MATERIALS = {"CrI3": {"cif": "CrI3_monolayer.cif", "pattern": "FM", "sigma": (1, 1)},
             "VPS3": {"cif": "VPS3_monolayer.cif", "pattern": "Neel", "sigma": (1, -1)}}
#: reference state → (model directory suffix, name of the route in data/exchange/<m>_routes.json)
REFERENCES = {"FM reference": ("", "force theorem (FM reference)"),
              "Néel reference": ("_Neel", "force theorem (Néel reference)")}
#: the shipped force-theorem settings (data/runs/CrI3_accurate/steps/mft.json: 15×15×1, 120 contour points)
KMESH = (15, 15, 1)
N_ENERGY = 120
#: convergence checks of every J and of D
CHECK_KMESH = (24, 24, 1)
CHECK_N_ENERGY = 240
#: default cutoff (Å): D changes by < 0.1 meV Å² beyond ≈ 22 Å in all four models
RCUT = 30.0
#: bonds whose lengths differ by less than this (Å) form one distance shell
SHELL_TOL = 0.02
#: largest allowed |J1–J3 here − shipped route| (meV)
J_CHECK_TOL = 0.01
CONVENTION = ("E(q) - E(Gamma) = D|q|^2 + B|q|^4 per primitive cell, meV, |q| in 1/Angstrom incl. 2 pi, along "
              "Gamma-M (direction of b1), co-rotating frame (wannmag.magnetism.spiral.stiffness_tensor, "
              "frame='bond'), pattern sigma of the material's ground state; J: H = sum_{i<j} J_ij S_i.S_j, each bond "
              "once, |S| = 3/2, J > 0 AF, meV")


def gamma_m_direction(cell) -> np.ndarray:
    """Unit Cartesian vector along b1 (Γ–M for the 120° honeycomb cell)."""
    b1 = np.linalg.inv(np.asarray(cell, float)).T[0]
    return b1 / np.linalg.norm(b1)


def distance_shells(distances, tol: float = SHELL_TOL) -> list[float]:
    """Distinct bond lengths (Å), bonds within ``tol`` of a shell's first length belong to it."""
    shells: list[float] = []
    for x in np.sort(np.asarray(distances, float)):
        if not shells or x - shells[-1] > tol:
            shells.append(float(x))
    return shells


def truncated(model, rmax: float):
    """``model``'s bonds with length ≤ ``rmax`` Å (same sites and cell)."""
    m = model.__class__(cell=model.cell, sites=model.sites, pbc=model.pbc)
    for b in model.bonds:
        if model.bond_length(b) <= rmax:
            m.add_bond(b.i, b.j, b.R, b.J_iso)
    return m


def D_values(model, sigma, u) -> tuple[float, float]:
    """(C3-symmetric D, D along ``u`` with every bond's own J), meV Å² per cell.

    The symmetric value is the in-plane average ½ Tr_plane D of the co-rotating stiffness tensor: the ``u·D·u`` of
    the model whose J are averaged over each distance shell (all bonds of a shell have one length), i.e. exactly the
    ``D_from_routes`` definition for J1–J3.  The bond-resolved value along ``u`` differs from it only through the
    C3 breaking of the Wannier gauge (unequal J on symmetry-equivalent bonds)."""
    Dt = stiffness_tensor(model, sigma, frame="bond")
    n = np.cross(model.cell[0], model.cell[1])
    n = n / np.linalg.norm(n)
    return float(0.5 * (np.trace(Dt) - n @ Dt @ n)), float(u @ Dt @ u)


def shell_table(model, sigma, u, tol: float = SHELL_TOL) -> list[dict]:
    """Per distance shell: distance, bonds per cell, mean/spread of J, the shell's own ΔD and the C3-symmetric D of
    all bonds up to and including it (:func:`D_values`), beside the bond-resolved D along ``u``."""
    lengths = np.array([model.bond_length(b) for b in model.bonds])
    J = np.array([b.J_iso for b in model.bonds])
    rows, prev = [], 0.0
    for n, x in enumerate(distance_shells(lengths, tol), start=1):
        m = np.abs(lengths - x) <= tol
        Dsym, Du = D_values(truncated(model, x + tol), sigma, u)
        rows.append({"shell": n, "distance_A": round(x, 4), "n_bonds": int(m.sum()), "J_mean": float(J[m].mean()),
                     "J_spread": float(J[m].max() - J[m].min()), "dD_shell": Dsym - prev, "D_cumulative": Dsym,
                     "D_cumulative_GM_bond_resolved": Du})
        prev = Dsym
    return rows


def force_theorem(model_dir: Path, kmesh, n_energy, rcut):
    t0 = time.time()
    tb = read_w90(model_dir, kind="collinear")
    ham = hamiltonian_from_tb(tb)
    ef, how = midgap_fermi_level(tb)
    res = lkag_exchange(ham, kmesh=kmesh, efermi=ef, n_energy=n_energy, rcut=rcut)
    return ham, res, mft_spin_model(ham, res), how, time.time() - t0


def route_D(cif: Path, J3, sigma, u) -> float:
    """D of J1–J3 (meV) by the definition of ``D_from_routes`` (wannmag.workflows.spiral.stiffness_from_points):
    the CIF's first three shells with J by shell, co-rotating stiffness tensor of the pattern σ along ``u``."""
    base = spiral_model(cif, 3)
    m = base.__class__(cell=base.cell, sites=base.sites, pbc=base.pbc)
    for b in base.bonds:
        m.add_bond(b.i, b.j, b.R, J3[b.shell - 1], shell=b.shell)
    return D_values(m, sigma, u)[1]


def shipped_routes(mat: str) -> dict:
    try:
        rows = json.loads((DATA / "exchange" / f"{mat}_routes.json").read_text())["routes"]
    except (OSError, ValueError, KeyError):
        return {}
    return {r["name"]: [r["J1"], r["J2"], r["J3"]] for r in rows
            if all(isinstance(r.get(k), (int, float)) for k in ("J1", "J2", "J3"))}


def shipped_D_from_routes(mat: str) -> dict:
    try:
        return json.loads((DATA / "exchange" / f"{mat}_spiral_stiffness.json").read_text()).get("D_from_routes") or {}
    except (OSError, ValueError):
        return {}


def one_reference(mat: str, ref: str, rcut: float) -> dict:
    spec = MATERIALS[mat]
    suffix, route = REFERENCES[ref]
    model_dir = DATA / "dft" / f"{mat}{suffix}"
    sigma = np.array(spec["sigma"], float)
    t0 = time.time()
    ham, res, model, how, t_main = force_theorem(model_dir, KMESH, N_ENERGY, rcut)
    u = gamma_m_direction(model.cell)
    table = shell_table(model, sigma, u)
    J13 = [row["J_mean"] for row in table[:3]]

    # checks: k-mesh and energy contour (same bonds), J1–J3 against the shipped route, D of J1–J3
    checks = {}
    for label, km, ne in (("kmesh", CHECK_KMESH, N_ENERGY), ("n_energy", KMESH, CHECK_N_ENERGY)):
        _, r2, m2, _, t2 = force_theorem(model_dir, km, ne, rcut)
        J_a = dict(zip(res.bonds, res.J))
        dJ = max(abs(J_a[b] - j) for b, j in zip(r2.bonds, r2.J))
        D2 = D_values(m2, sigma, u)[0]
        checks[f"{label}_convergence"] = {"kmesh": list(km), "n_energy": ne, "max_abs_dJ_meV": float(dJ), "D": D2,
                                          "dD": D2 - table[-1]["D_cumulative"], "seconds": round(t2, 2)}
    shipped = shipped_routes(mat).get(route)
    if shipped is not None:
        diff = float(np.max(np.abs(np.array(J13) - np.array(shipped))))
        checks["J1_J3_vs_shipped_route"] = {"route": route, "shipped": shipped, "here": J13, "max_abs_diff_meV": diff,
                                            "ok": diff <= J_CHECK_TOL}
    cif = DATA / "structures" / spec["cif"]
    d_routes = shipped_D_from_routes(mat)
    checks["D_J1_J3"] = {
        "route_definition_shipped_J": None if shipped is None else route_D(cif, shipped, sigma, u),
        "route_definition_J_here": route_D(cif, J13, sigma, u),
        "symmetric_here_to_shell_3": table[2]["D_cumulative"],
        "bond_resolved_GM_here_to_shell_3": table[2]["D_cumulative_GM_bond_resolved"],
        "D_from_routes_in_spiral_stiffness_file": (d_routes.get(route) or {}).get("D")}

    rows = [{k: (round(v, 6) if isinstance(v, float) else v) for k, v in r.items()} for r in table]
    bonds = [{"i": i, "j": j, "R": list(R), "d_A": round(float(d), 4), "J": round(float(J), 6)}
             for (i, j, R), d, J in zip(res.bonds, res.distances, res.J)]
    full = table[-1]["D_cumulative"]
    near = [r for r in table if r["distance_A"] <= rcut - 5.0]
    return {"model": f"data/dft/{mat}{suffix}", "reference": res.reference(), "moment_signs": res.moment_signs,
            "efermi_eV": res.efermi, "efermi_from": how, "rcut_A": rcut, "n_bonds": len(res.bonds),
            "direction": np.round(u, 6).tolist(), "pattern_sigma": spec["sigma"],
            "D_J1_J3": table[2]["D_cumulative"], "D_all": full,
            "D_all_GM_bond_resolved": table[-1]["D_cumulative_GM_bond_resolved"],
            "D_change_last_5A": None if not near else full - near[-1]["D_cumulative"],
            "beyond_J3_fraction": (full - table[2]["D_cumulative"]) / table[2]["D_cumulative"],
            "shells": rows, "bonds": bonds, "checks": checks,
            "seconds": {"force_theorem": round(t_main, 2), "total_with_checks": round(time.time() - t0, 2)}}


def run(mat: str, rcut: float, argv) -> dict:
    t0 = time.time()
    refs = {ref: one_reference(mat, ref, rcut) for ref in REFERENCES}
    doc = {"material": mat, "what": "small-q spin stiffness implied by the PBE+U MLWF force theorem (LKAG) with all "
                                    "metal-metal J(R) up to rcut, by distance shell",
           "pattern": MATERIALS[mat]["pattern"], "kmesh": list(KMESH), "n_energy": N_ENERGY, "rcut_A": rcut,
           "shell_tol_A": SHELL_TOL, "convention": CONVENTION, "references": refs,
           "suggested_D_from_routes": {
               f"force theorem ({ref}), all J(R) up to {rcut:g} A": {"J": [r["J_mean"] for r in v["shells"][:3]],
                                                                      "D": v["D_all"], "D_J1_J3": v["D_J1_J3"]}
               for ref, v in refs.items()},
           "note": "D is linear in J: the average of the two references' D is the D of the averaged J",
           "command": " ".join(["python data/exchange/ft_stiffness.py", *argv]),
           "made_by": "data/exchange/ft_stiffness.py",
           "date": datetime.now(timezone.utc).strftime("%Y-%m-%d")}
    fm, ne = refs["FM reference"], refs["Néel reference"]
    doc["suggested_D_from_routes"][f"force theorem, average of FM and Néel references, all J(R) up to {rcut:g} A"] = {
        "J": [0.5 * (a["J_mean"] + b["J_mean"]) for a, b in zip(fm["shells"][:3], ne["shells"][:3])],
        "D": 0.5 * (fm["D_all"] + ne["D_all"]), "D_J1_J3": 0.5 * (fm["D_J1_J3"] + ne["D_J1_J3"])}
    doc["seconds"] = round(time.time() - t0, 2)
    write_json_atomic(DATA / "exchange" / f"{mat}_ft_stiffness.json", doc)
    return doc


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("materials", nargs="*", default=list(MATERIALS), help=f"any of {', '.join(MATERIALS)}")
    ap.add_argument("--rcut", type=float, default=RCUT, help=f"cutoff radius in Å (default {RCUT})")
    args = ap.parse_args(argv)
    unknown = sorted(set(args.materials) - set(MATERIALS))
    if unknown:
        ap.error(f"unknown material(s) {', '.join(unknown)}; choose from {', '.join(MATERIALS)}")
    bad = False
    for mat in args.materials or list(MATERIALS):
        doc = run(mat, args.rcut, argv)
        for ref, v in doc["references"].items():
            print(f"{mat} {ref}: D(J1-J3) = {v['D_J1_J3']:.2f}, D(all J, r <= {args.rcut:g} A) = {v['D_all']:.2f} "
                  f"meV A^2 per cell ({100 * v['beyond_J3_fraction']:+.1f} %), {v['n_bonds']} bonds, "
                  f"{v['seconds']['force_theorem']:.1f} s", flush=True)
            print("  shell  d (A)   bonds   J mean (meV)   dD      D cumulative", flush=True)
            for r in v["shells"]:
                print(f"  {r['shell']:5d} {r['distance_A']:7.3f} {r['n_bonds']:5d} {r['J_mean']:+13.5f} "
                      f"{r['dD_shell']:+8.2f} {r['D_cumulative']:9.2f}", flush=True)
            c = v["checks"]
            print(f"  checks: {json.dumps({k: c[k] for k in c})}", flush=True)
            jc = c.get("J1_J3_vs_shipped_route")
            bad |= jc is not None and not jc["ok"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
