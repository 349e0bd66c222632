"""Issue 18 item 3, the second route: the magnetic force theorem on a Wannier model of the doped (neutral vacancy)
VPS3 cell, beside the energy mapping of data/mc/vacancy_holes_dft.py --fit.

    OMP_NUM_THREADS=1 nice -n 5 python data/mc/vacancy_holes_mft.py [--U 3] [--smearing 0.05] [--placement near]
        [--work out/vacancy_holes_mft] [--kmesh 6 6 1 8 8 1] [--out data/mc/VPS3_vacancy_holes_mft.json]

Steps (a thin caller of the package):

1. The reference state: the Néel configuration of the 2×2 vacancy cell V7P8S24 with the two holes started on the
   placement's sites (wannmag.magnetism.vacancy: make_vacancy_cell, hole_placements_of, vacancy_configuration) — the
   same configuration, settings and SCF as configuration 1 of ``vacancy_holes_dft.py --fit`` (fast preset LCAO dzp,
   PBE+U on V d, Fermi–Dirac ``--smearing``, damped mixer, cell moment held at the start moments' sum, density
   criterion 1e-4), recomputed in WORK because the LCAO wave functions are Wannierised in the same process
   (wannmag.workflows.wannier).  Its energy and V moments are compared with the fit's record of that configuration
   (data/mc/VPS3_vacancy_holes_dft.json): the reference is the fit's state only if they agree.
2. MLWFs per spin channel (wannierise, projections V d + S p + P p: 131 per channel), with the package's checks
   (centres within 0.5 Å of their atoms, band error).  The fixed-moment SCF has one Fermi level per spin channel; the
   Wannierisation gets the middle of the common gap (both channels' highest occupied and lowest empty levels).
3. LKAG force theorem (wannmag.magnetism.mft.lkag_exchange) for every bond of shells 1–3 of the vacancy cell, from
   this collinear (Néel-with-holes) reference: antiparallel pairs divided by sign(m_i·m_j) as the package does,
   S = 1 on the two hole sites and 3/2 on the other V in J = −2 J_LKAG/(S_i S_j) (the spins of the energy-mapping fit),
   E_F in mid-gap of the Wannier bands at the occupation of the .win file.  k-mesh convergence: the J of the two
   meshes of ``--kmesh`` (their largest difference is stored).
4. Per bond class of wannmag.magnetism.vacancy_holes.classify_bonds (V2-V2_bulk, next_to_vacancy, V2-V3, V3-V3; J2,
   J3): mean, spread and the bonds; beside them the energy-mapping fit of the same placement, U and width if it is
   recorded in data/mc/VPS3_vacancy_holes.json.

Convention: H = Σ_{i<j} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i, each bond once, classical spins of length S_i (3/2 on V2+,
1 on V3+), J > 0 antiferromagnetic, meV; TB energies eV, lengths Å.  Output: ``--out`` (atomic write).
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # before numpy is imported
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from wannmag._atomic import atomic_write_json, jsonable  # noqa: E402
from wannmag.errors import WannmagError  # noqa: E402
from wannmag.magnetism.vacancy_holes import HOLE_CLASSES, classify_bonds  # noqa: E402

STRUCTURE = ROOT / "data" / "structures" / "VPS3_monolayer.cif"
OUT = HERE / "VPS3_vacancy_holes_mft.json"
DFT_RECORDS = HERE / "VPS3_vacancy_holes_dft.json"
FIT = HERE / "VPS3_vacancy_holes.json"
CLASS_ORDER = (*HOLE_CLASSES, "J2", "J3")


def _rel(p) -> str:
    p = Path(p).resolve()
    try:
        return str(p.relative_to(ROOT))
    except ValueError:
        return str(p)


def class_table(bonds, J, holes, near_sites) -> dict:
    """Per class of :func:`classify_bonds` (bonds: dicts with i, j, R, shell; ``J`` their exchange in meV, same
    order): {class: {"mean_meV", "min_meV", "max_meV", "n", "bonds": [[i, j, R, J], ...]}}, classes in CLASS_ORDER."""
    if len(bonds) != len(J):
        raise WannmagError(f"{len(bonds)} bonds but {len(J)} exchange values")
    out = {}
    for b, j in zip(classify_bonds(bonds, holes, near_sites), J):
        row = out.setdefault(b["cls"], {"bonds": []})
        row["bonds"].append([int(b["i"]), int(b["j"]), [int(x) for x in b["R"]], float(j)])
    for row in out.values():
        v = np.array([x[3] for x in row["bonds"]])
        row.update(mean_meV=float(v.mean()), min_meV=float(v.min()), max_meV=float(v.max()), n=int(len(v)))
    return {c: out[c] for c in CLASS_ORDER if c in out}


def common_gap_middle(calc) -> tuple[float, dict]:
    """Middle of the gap common to both spin channels of a (fixed-moment) GPAW calculation: (max over spins of the
    highest level with occupation > 1/2, min over spins of the lowest level below 1/2); raises if they overlap."""
    occ_hi, emp_lo = -np.inf, np.inf
    weights = calc.get_k_point_weights()
    nk = len(weights)
    for s in range(calc.get_number_of_spins()):
        for k in range(nk):
            e = calc.get_eigenvalues(kpt=k, spin=s)
            f = calc.get_occupation_numbers(kpt=k, spin=s) / weights[k] * (calc.get_number_of_spins() / 2.0)
            occ_hi = max(occ_hi, float(e[f > 0.5].max()))
            emp_lo = min(emp_lo, float(e[f <= 0.5].min()))
    if not emp_lo > occ_hi:
        raise WannmagError(f"the two spin channels overlap (highest occupied {occ_hi:.3f} eV, lowest empty "
                           f"{emp_lo:.3f} eV): no common gap, so no single Fermi level for the force theorem")
    return 0.5 * (occ_hi + emp_lo), {"highest_occupied_eV": occ_hi, "lowest_empty_eV": emp_lo,
                                     "common_gap_eV": emp_lo - occ_hi}


def fit_of(U: float, placement: str, width: float) -> dict | None:
    """The energy-mapping fit of data/mc/VPS3_vacancy_holes.json for this U, placement and width (fixed-moment,
    damped mixer), or None."""
    if not FIT.exists():
        return None
    fits = json.loads(FIT.read_text()).get("fits") or {}
    for key, f in fits.items():
        if (key.startswith(f"U{U:g}/{placement}/w{width:g}/damped/") and "/fixm" in key and "/moved" not in key
                and f.get("J_meV")):
            return {"key": key, "J_meV": f.get("J_meV"), "J_err_meV": f.get("J_err_meV"),
                    "rms_meV": f.get("rms_meV"), "status": f.get("status")}
    return None


def dft_record(name: str, U: float, width: float) -> dict | None:
    """The fit run's record of configuration ``name`` (same U, width, fixed moment) from VPS3_vacancy_holes_dft.json."""
    if not DFT_RECORDS.exists():
        return None
    text = json.loads(DFT_RECORDS.read_text())
    found = []

    def walk(x):
        if isinstance(x, dict):
            if x.get("config") == name or x.get("name") == name:
                found.append(x)
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk(text)
    for r in found:
        if (abs(float(r.get("smearing_eV", r.get("smearing", -1)) or -1) - width) < 1e-9
                and abs(float(r.get("U_eV", U)) - U) < 1e-9 and r.get("fixmagmom")
                and r.get("energy_eV") is not None):
            return r
    return None


def reference_and_wannier(conf, a, work, wdir, run_dft, mixers, wannierise) -> dict:
    """Steps 1-2 of the module docstring: the SCF (live calculator) and its MLWFs; returns what the result keeps."""
    kw = dict(preset="fast", U=a.U, workdir=str(work), name=conf.name, log=True, smearing=a.smearing,
              mixer=mixers["damped"], maxiter=200, density_tol=1e-4, fixmagmom=True, return_calc=True)
    t0 = time.time()
    rec, calc = run_dft(None, conf, **kw)
    if calc is None:  # resumed from disk: LCAO wave functions are not stored, recompute in this process
        import shutil

        shutil.rmtree(rec.run_dir)
        rec, calc = run_dft(None, conf, **kw)
    t_scf = time.time() - t0
    site_m = [float(m) for m in rec.site_moments]
    mid, gap = common_gap_middle(calc)
    calc.get_fermi_level = lambda: mid  # one level for the Wannierisation's window and .win (two with fixmagmom)
    stored = dft_record(conf.name, a.U, a.smearing)
    same = None
    if stored is not None:
        same = {"stored_energy_eV": stored["energy_eV"],
                "energy_difference_meV": 1000 * (rec.energy - stored["energy_eV"]),
                "stored_V_moments": stored.get("V_moments"),
                "max_moment_difference_muB": float(np.max(np.abs(np.array(site_m) - np.array(stored["V_moments"]))))
                if stored.get("V_moments") else None}
    print(f"[vacancy mft] E = {rec.energy:.6f} eV, V moments {', '.join(f'{m:+.3f}' for m in site_m)}; common gap "
          f"{gap['common_gap_eV']:.3f} eV" + (f"; fit record {same['energy_difference_meV']:+.3f} meV" if same else ""),
          flush=True)
    t1 = time.time()
    chans = wannierise(calc, projections="dp", outdir=wdir, n_unconverged=0, log=True)
    return {"energy_eV": rec.energy, "V_moments": site_m, "gap": gap, "same_as_fit_record": same,
            "wannier_channels": {c: r.as_dict() for c, r in chans.items()}, "scf_wall_s": round(t_scf, 1),
            "wannier_wall_s": round(time.time() - t1, 1), "fermi_mid_gap_eV": mid}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--U", type=float, default=3.0)
    ap.add_argument("--smearing", type=float, default=0.05)
    ap.add_argument("--placement", default="near")
    ap.add_argument("--work", default=str(ROOT / "out" / "vacancy_holes_mft"))
    ap.add_argument("--kmesh", type=int, nargs="+", default=[6, 6, 1, 8, 8, 1],
                    help="two k-meshes (6 integers) for the force theorem; the second is the result")
    ap.add_argument("--n-energy", type=int, default=120)
    ap.add_argument("--out", default=str(OUT))
    a = ap.parse_args(argv)
    if len(a.kmesh) != 6:
        print("wannmag: error: --kmesh: give two k-meshes, 6 integers", file=sys.stderr)
        raise SystemExit(2)
    try:
        return run(a, argv)
    except WannmagError as exc:
        print(f"wannmag: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def run(a, argv) -> dict:
    from wannmag.magnetism.mft import hamiltonian_from_tb, lkag_exchange
    from wannmag.magnetism.vacancy import (hole_placements_of, make_vacancy_cell, start_pattern,
                                           vacancy_configuration)
    from wannmag.tightbinding import read_w90
    from wannmag.tightbinding.electronic import midgap_fermi_level
    from wannmag.workflows.dft import run_dft
    from wannmag.workflows.vacancy import NEUTRAL_MIXERS
    from wannmag.workflows.wannier import wannierise

    t0, c0 = time.time(), time.process_time()
    cell = make_vacancy_cell(str(STRUCTURE))
    places = {p.name: p for p in hole_placements_of(str(STRUCTURE), cell)}
    if a.placement not in places:
        raise WannmagError(f"--placement {a.placement}: not a hole placement of the vacancy cell "
                           f"(one of {', '.join(sorted(places))})")
    hp = places[a.placement]
    conf = vacancy_configuration(str(STRUCTURE), cell, start_pattern(str(STRUCTURE), cell, "Neel"), holes=hp)
    work = Path(a.work) / f"U{a.U:g}_w{a.smearing:g}_{hp.name}"
    print(f"[vacancy mft] {conf.name}: SCF (U = {a.U:g} eV, FD {a.smearing:g} eV, fixed moment) in {work}", flush=True)
    wdir = work / "wannier"
    done = work / "reference.json"  # written after the Wannierisation: a rerun goes straight to the force theorem
    if done.exists():
        ref = json.loads(done.read_text())
        print(f"[vacancy mft] reference and Wannier models finished earlier: {done}", flush=True)
    else:
        ref = reference_and_wannier(conf, a, work, wdir, run_dft, NEUTRAL_MIXERS, wannierise)
        atomic_write_json(done, jsonable(ref))
    site_m, gap, same, quality = ref["V_moments"], ref["gap"], ref["same_as_fit_record"], ref["wannier_channels"]
    model = read_w90(wdir, kind="collinear")
    holes = set(int(k) for k in hp.sites)
    spins = [1.0 if k in holes else float(cell.spin) for k in range(cell.n_sites)]
    ham = hamiltonian_from_tb(model, magnetic=[int(x) for x in conf.sublattice.indices], spins=spins)
    efermi, how = midgap_fermi_level(model)
    bonds = [b for b in cell.bonds if int(b["shell"]) <= 3]
    req = [(int(b["i"]), int(b["j"]), tuple(int(x) for x in b["R"])) for b in bonds]
    results = {}
    for m in (tuple(a.kmesh[:3]), tuple(a.kmesh[3:])):
        res = lkag_exchange(ham, bonds=req, kmesh=m, efermi=efermi, n_energy=a.n_energy)
        by = {(int(x), int(y), tuple(int(r) for r in R)): j for (x, y, R), j in zip(res.bonds, res.J)}
        results[m] = (res, [float(by[r]) for r in req])
        print(f"[vacancy mft] k-mesh {m}: J (meV) " + ", ".join(f"{j:+.2f}" for j in results[m][1]), flush=True)
    (m1, (r1, J1)), (m2, (r2, J2)) = results.items()
    table = class_table(bonds, J2, hp.sites, cell.near_sites)
    out = {
        "what": "VPS3 neutral vacancy cell (V7P8S24, two holes): magnetic force theorem (LKAG) on its MLWF model, "
                "Neel reference with the holes on the placement's sites; J per bond class beside the energy mapping",
        "convention": "H = sum_{i<j} S_i.J_ij.S_j, each bond once, S = 1 on the hole sites, 3/2 on the other V, "
                      "J > 0 AF; meV; antiparallel reference pairs divided by sign(m_i.m_j)",
        "U_eV": a.U, "smearing_eV": a.smearing, "placement": hp.name, "hole_sites": list(hp.sites),
        "near_sites": list(cell.near_sites), "configuration": conf.name,
        "reference": {"energy_eV": ref["energy_eV"], "V_moments": site_m, **gap,
                      "moment_signs": list(r2.moment_signs), "same_as_fit_record": same, "scf_wall_s": ref["scf_wall_s"],
                      "wannier_wall_s": ref["wannier_wall_s"]},
        "wannier": {"projections": "V d + S p + P p", "num_wann": len(model.orbitals), "channels": quality},
        "efermi_eV": efermi, "efermi_how": how, "spins": spins,
        "kmesh": list(m2), "kmesh_check": list(m1), "n_energy": a.n_energy,
        "max_change_kmesh_meV": float(np.max(np.abs(np.array(J2) - np.array(J1)))),
        "classes": table,
        "energy_mapping": fit_of(a.U, hp.name, a.smearing),
        "cpu_s": round(time.process_time() - c0, 1), "wall_s": round(time.time() - t0, 1),
        "command": "python data/mc/vacancy_holes_mft.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
    }
    atomic_write_json(Path(a.out), jsonable(out))
    for c, row in table.items():
        print(f"[vacancy mft] {c:16s} {row['mean_meV']:+8.3f} meV (min {row['min_meV']:+.3f}, max {row['max_meV']:+.3f},"
              f" {row['n']} bonds)", flush=True)
    print(f"[vacancy mft] wrote {a.out}; k-mesh change {out['max_change_kmesh_meV']:.3f} meV", flush=True)
    return out


if __name__ == "__main__":
    main()
