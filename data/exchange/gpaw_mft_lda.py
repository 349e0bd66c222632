"""GPAW's plane-wave site force theorem in LDA+U (issue 17, item 4): the consistent, Wannier-free force-theorem route,
on the same footing as the self-consistent spin spirals (data/exchange/spiral_dft.py: LDA+U 3 eV, PW 250 eV, 3×3 k).

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python data/exchange/gpaw_mft_lda.py MATERIAL WORKDIR [--qmesh 3 3 1]

1. Collinear ground state of the material's reference order (CrI3: FM, VPS3: Néel) with wannmag.workflows.dft.run_dft:
   LDA (not PBE: GPAW's HeisenbergExchangeCalculator accepts LDA-type functionals only, and its exchange field then
   includes the Hubbard correction — see wannmag/workflows/gpaw_mft.py), Dudarev U = 3 eV on the metal d, PW 250 eV,
   Γ-centred 3×3×1 k (the spiral settings), ``NBANDS`` bands of which ``CONVERGE_BANDS`` converged, wave functions
   written (WORKDIR/<material>/..., resumable: a finished ground state is read back).
2. ``gpaw_site_exchange(method="heisenberg")`` on spherical sites of radii ``RADII`` (Å) on the q-mesh (default
   3×3×1 = the k-mesh; J̄(−q) = J̄(q)*, so 5 of 9 q computed), J(R) by Fourier transform, shells J1–J3 per radius
   and the radius plateau among the radii GPAW considers valid (gpaw.response.site_data.get_site_radii_range: a
   sphere must not overlap a neighbour's augmentation sphere); J1–J3 of the route = the mean of each shell over the
   radii of the J1 plateau, with the spread over them ("range_over_radii").  ``--reselect`` re-derives them for a
   finished run's JSON (the .gpw is read for the valid range).
   Caveat stored with the result: on an n×n q-mesh J(R) is Σ_m J(R + n m) (aliasing of bonds n lattice vectors
   apart: on 3×3 the images of J1–J3 are ≥ 13 Å away in CrI3), and 3×3 k is not a converged Brillouin-zone sum.
Output: data/exchange/<MATERIAL>_gpaw_mft.json (the route file of `wannmag exchange compare`; the earlier PBE+U
cost measurement of the isotropic calculator is kept in it under "pbe_u_isotropic_cost").

Convention: meV, H = Σ_{i<j} J S_i·S_j, each bond once, |S| = 3/2, J > 0 AF (converted from GPAW's
E = −Σ_pairs J u_i·u_j by J = −1000 J_GPAW/(S_i S_j)).
"""

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from wannmag.workflows.dft import run_dft, write_json_atomic  # noqa: E402
from wannmag.workflows.gpaw_mft import gpaw_site_exchange, valid_plateaus  # noqa: E402

RADII = [0.8, 1.0, 1.2, 1.4, 1.6, 1.8, 2.0]  # Å
ECUT_CHI = 50.0  # eV, plane-wave cutoff of χ_KS (GPAW's Fe test)
SETTINGS = {  # the spiral settings of data/exchange/spiral_dft.py, collinear, with more (converged) bands
    "CrI3": {"cif": "CrI3_monolayer.cif", "config": "FM", "ecut": 250.0, "kpts": (3, 3, 1), "nbands": 72,
             "converge_bands": 64, "rcut": 8.5},   # 54 valence electrons
    "VPS3": {"cif": "VPS3_monolayer.cif", "config": "Neel", "ecut": 250.0, "kpts": (3, 3, 1), "nbands": 96,
             "converge_bands": 86, "rcut": 7.0},   # 72 valence electrons
}


def route_values(radii, shells, valid) -> dict:
    """The route's J1–J3: the mean of each shell over the radii of the J1 plateau, searched among GPAW's valid radii
    only (``valid`` = [r_min, r_max] Å, see wannmag.workflows.gpaw_mft.valid_plateaus), with the spread over those
    radii; status "not computed" with the reason when the valid radii give no J1 plateau."""
    pl = valid_plateaus(radii, shells, valid)
    out = {"valid_radii_A": valid, "plateau": pl}
    p = pl.get("J1")
    if not p:
        return {"status": "not computed", "J1": None, "J2": None, "J3": None, "radius_A": None,
                "reason": f"no radius plateau of J1 inside GPAW's valid range {valid} A (J1 changes by more than "
                          "5 % between every two valid radii)", **out}
    use = [n for n, r in enumerate(radii) if p[0] <= r <= p[1]]
    vals = {f"J{k + 1}": [shells[n][k] for n in use] for k in range(3)}
    return {"status": "computed", "reason": "", **{k: float(np.mean(v)) for k, v in vals.items()},
            "radius_A": [p[0], p[1]], "range_over_radii": {k: [min(v), max(v)] for k, v in vals.items()}, **out}


def caveats(material: str, qmesh) -> list:
    """What the route's numbers do not include: q-mesh aliasing (with the shortest alias distance of J1–J3 on this
    lattice) and the unconverged spiral k-mesh / cutoff."""
    from ase.io import read

    s = SETTINGS[material]
    a = float(read(ROOT / "data" / "structures" / s["cif"]).cell.lengths()[0])
    d3 = 2 * a / 3 ** 0.5   # third-neighbour distance of the honeycomb (2 × the first)
    n = int(qmesh[0])
    return [f"J(R) from a {'x'.join(map(str, qmesh))} q-mesh is the sum over R + {n}m (aliasing; the images of "
            f"J1-J3 lie at least {n * a - d3:.1f} A away in {material}, a = {a:.2f} A)",
            f"{'x'.join(map(str, s['kpts']))} k and {s['ecut']:.0f} eV are the spiral settings, not converged "
            "Brillouin-zone sums (the collinear accurate preset is 450 eV, 6x6 k)"]


def route_seconds(ground_state: float, mft: dict) -> dict:
    """Wall times of the route: the ground state plus GPAW's response part ('total' = both, what the table shows)."""
    parts = {k: v for k, v in mft.items() if k != "total"}
    return {"ground_state": ground_state, **parts,
            "total": round(ground_state + float(mft.get("load", 0.0)) + float(mft.get("q_points", 0.0)), 1)}


def with_radius_settings(out: dict) -> dict:
    """Copy the site-radius choice into the route's settings (what `wannmag exchange compare` shows)."""
    out["settings"].update({"site_radii_A": out.get("radius_A"), "valid_radii_A": out.get("valid_radii_A"),
                            "range_over_radii": out.get("range_over_radii")})
    return out


def reselect(material):
    """Re-derive J1–J3 of a finished run's JSON with GPAW's valid radius range (read from the ground state's .gpw)."""
    from gpaw import GPAW
    from gpaw.response import ResponseGroundStateAdapter
    from wannmag.workflows.gpaw_mft import valid_radius_range

    out_path = ROOT / "data" / "exchange" / f"{material}_gpaw_mft.json"
    out = json.loads(out_path.read_text())
    res = out["result"]
    gs = ResponseGroundStateAdapter(GPAW(res["settings"]["source"], txt=None, parallel={"domain": 1}))
    res["valid_radii"] = valid_radius_range(gs, res["sites"])
    res["plateau"] = valid_plateaus(res["radii"], res["shells"], res["valid_radii"])
    for k in ("J1", "J2", "J3", "radius_A", "plateau", "range_over_radii", "valid_radii_A", "reason", "status"):
        out.pop(k, None)
    out = {**{k: v for k, v in out.items() if k not in ("by_radius",)}, **route_values(res["radii"], res["shells"],
                                                                                         res["valid_radii"]),
           "by_radius": out["by_radius"]}
    out["settings"]["caveats"] = caveats(material, out["settings"]["qmesh"])
    out["seconds"] = route_seconds(out["seconds"]["ground_state"], res["seconds"])
    write_json_atomic(out_path, with_radius_settings(out))
    print(json.dumps({x: out[x] for x in ("status", "J1", "J2", "J3", "radius_A", "valid_radii_A")}), flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("material", choices=sorted(SETTINGS))
    ap.add_argument("workdir", nargs="?")
    ap.add_argument("--qmesh", type=int, nargs=3, default=None)
    ap.add_argument("--reselect", action="store_true",
                    help="only re-derive J1-J3 of the finished run's JSON with GPAW's valid radius range")
    args = ap.parse_args(argv)
    if args.reselect:
        return reselect(args.material)
    if not args.workdir:
        ap.error("WORKDIR is needed for a run")
    s = SETTINGS[args.material]
    t0 = time.time()
    rec = run_dft(ROOT / "data" / "structures" / s["cif"], config=s["config"], preset="accurate", U=3.0, xc="LDA",
                  ecut=s["ecut"], kpts=s["kpts"], nbands=s["nbands"], converge_bands=s["converge_bands"],
                  write_wavefunctions=True, workdir=Path(args.workdir) / args.material, name=f"{s['config']}_LDA")
    t_gs = time.time() - t0
    gpw = rec.gpw if getattr(rec, "gpw", None) else str(sorted((Path(args.workdir) / args.material).rglob("*.gpw"))[0])
    print(f"{args.material}: ground state {rec.energy:.6f} eV, moments {rec.site_moments}, gpw {gpw}", flush=True)
    qmesh = tuple(args.qmesh) if args.qmesh else tuple(s["kpts"])
    res = gpaw_site_exchange(gpw, RADII, qmesh=qmesh, ecut=ECUT_CHI, nbands=s["converge_bands"], rcut=s["rcut"],
                             method="heisenberg", txt=str(Path(gpw).with_name("gpaw_mft_heisenberg.txt")))
    out_path = ROOT / "data" / "exchange" / f"{args.material}_gpaw_mft.json"
    old = json.loads(out_path.read_text()) if out_path.exists() else {}
    keep = {"pbe_u_isotropic_cost": {x: old[x] for x in ("ground_state", "status", "reason", "one_q", "xc_kernels",
                                                          "seconds") if x in old}} if old.get("status") == "not computed" else (
        {"pbe_u_isotropic_cost": old["pbe_u_isotropic_cost"]} if "pbe_u_isotropic_cost" in old else {})
    out = {
        "material": args.material, "name": "GPAW plane-wave force theorem",
        "method": "GPAW plane-wave site force theorem, HeisenbergExchangeCalculator (Durhuus, Skovhus, Olsen, J. "
                  "Phys.: Condens. Matter 35, 105802 (2023)) on an LDA+U ground state (wannmag.workflows.gpaw_mft."
                  "gpaw_site_exchange, method='heisenberg'); Wannier-free",
        "convention": "meV; H = sum_{i<j} J S_i.S_j, each bond once, |S| = 3/2, J > 0 AF",
        "spin": 1.5, "reference": s["config"].replace("Neel", "Néel"),
        **route_values(RADII, res.shells, res.valid_radii),
        "by_radius": {f"{r:.1f}": dict(zip(("J1", "J2", "J3"), sh)) for r, sh in zip(RADII, res.shells)},
        "settings": {"xc": "LDA", "U": {"metal d": 3.0}, "ecut_gs_eV": s["ecut"], "kpts": list(s["kpts"]),
                     "qmesh": list(qmesh), "nbands_gs": s["nbands"], "nbands_chi": s["converge_bands"],
                     "ecut_chi_eV": ECUT_CHI, "radii_A": RADII, "site_moments_muB": rec.site_moments,
                     "gs_energy_eV": rec.energy, "gs_converged_iterations": getattr(rec, "iterations", None),
                     "caveats": caveats(args.material, qmesh)},
        "xc_kernels": res.xc, "max_imag_meV": res.max_imag_meV,
        "seconds": route_seconds(round(t_gs, 1), res.seconds),
        "result": res.as_dict(),
        "command": f"OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python data/exchange/gpaw_mft_lda.py {args.material} "
                   f"WORKDIR" + (f" --qmesh {' '.join(map(str, qmesh))}" if args.qmesh else ""),
        "made_by": "data/exchange/gpaw_mft_lda.py", "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        **keep,
    }
    write_json_atomic(out_path, with_radius_settings(out))
    print(json.dumps({x: out[x] for x in ("status", "J1", "J2", "J3", "radius_A")}), flush=True)
    print(json.dumps(out["by_radius"]), flush=True)


if __name__ == "__main__":
    main()
