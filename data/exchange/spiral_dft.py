"""Production run: self-consistent LDA+U spin spirals E(q) of CrI3 (FM pattern) and VPS3 (Néel pattern), and the fit
of J1–J3 and the small-q stiffness (issue 17, route "spin spiral").  Provenance and settings: README_spiral.md.

    cd /work/main && source .venv/bin/activate && OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \
        nohup nice -n 5 python data/exchange/spiral_dft.py > /work/spiral_run.log 2>&1 &

Resumable: every finished (pattern, q) is a JSON in data/exchange/spiral/<material>/ and is not recomputed.
``--fit-only [CrI3|VPS3 ...]`` only refits the stored points (data/exchange/<material>_spiral.json); the DFT run calls
it in a fresh process after each material, so the fit uses the fit code on disk at that time.
``--materials CrI3`` restricts the DFT run.

Units: energies eV per cell in the point files, meV in the fit, exchange meV (internal convention H = Σ_{i<j} J S_i·S_j,
each bond once, classical spins S = 3/2, J > 0 AF), q in reduced coordinates of the reciprocal cell.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from wannmag.structures import honeycomb_configuration, read_structure  # noqa: E402
from wannmag.workflows.spiral import spiral_energies  # noqa: E402

OUT = ROOT / "data" / "exchange" / "spiral"

# Settings (README_spiral.md): one SCF iteration of the CrI3 primitive cell, LDA+U 3 eV, q = M, 300 eV, 4×4 k,
# 80 bands took 130 s on this machine at load ≈ 10 (two cores shared by ~8 processes); 250 eV, 3×3 k, 64 bands cut
# the work per iteration ≈ 3× (plane waves ×0.76, k-points ×0.56, bands ×0.8).
SETTINGS = {
    "CrI3": {"cif": "CrI3_monolayer.cif", "pattern": "FM", "other": "Neel", "ecut": 250.0, "kpts": (3, 3, 1),
             "nbands": 64, "U": 3.0},      # 54 valence electrons (Cr 6, I 7)
    "VPS3": {"cif": "VPS3_monolayer.cif", "pattern": "Neel", "other": "FM", "ecut": 250.0, "kpts": (3, 3, 1),
             "nbands": 86, "U": 3.0},      # 72 valence electrons (V 13, P 5, S 6)
}
MAXITER = 80
# Small-q stiffness set (issue 17 item 1): E(q) − E(Γ) at q = 0.05–0.15 along Γ–M is 0.3–3 meV per CrI3 cell, the
# main set's criterion (energy 1e-5 eV per valence electron ≈ 0.5 meV/cell) cannot resolve it.  This set reruns Γ
# with the points, all at energy 2e-7 eV/e (≈ 11 µeV per CrI3 cell, 14 per VPS3 cell) and density 1e-5, in its
# own folder (<name>_stiffness) so that its Γ is never mixed with the main set's.
STIFFNESS_CONVERGENCE = {"energy": 2e-7, "density": 1e-5, "eigenstates": 1e-6}
STIFFNESS_Q = [0.0, 0.1, 0.15, 0.05]      # along Γ–M in units of b1; Γ, 0.1, 0.15 determine D and B exactly


def run_stiffness(name, log=print):
    """Γ and small q along Γ–M of the ground-state pattern at :data:`STIFFNESS_CONVERGENCE` (resumable per point)."""
    s = SETTINGS[name]
    atoms = read_structure(ROOT / "data" / "structures" / s["cif"])
    conf = honeycomb_configuration(atoms, s["pattern"])
    kw = dict(U=s["U"], xc="LDA", ecut=s["ecut"], kpts=s["kpts"], nbands=s["nbands"], maxiter=MAXITER,
              workdir=OUT / f"{name}_stiffness", log=log, convergence=STIFFNESS_CONVERGENCE)
    t0 = time.time()
    for x in STIFFNESS_Q:                         # one call per point: each finished point is on disk at once
        spiral_energies(conf, [np.array([x, 0.0, 0.0])], **kw)
    log(f"{name}: stiffness points done, {time.time() - t0:.0f} s in this run")


def qpoints(atoms):
    """Γ, M, K, then the midpoints of Γ–M, M–K, K–Γ (reduced coordinates; the small-q stiffness points are --stiffness's).
    K is checked against |K| = 4π/(3a) for the 120° cell of the CIFs."""
    G, M, K = np.zeros(3), np.array([0.5, 0, 0]), np.array([1 / 3, 1 / 3, 0])
    B = 2 * np.pi * atoms.cell.reciprocal()
    a = atoms.cell.lengths()[0]
    assert abs(np.linalg.norm(K @ B) - 4 * np.pi / (3 * a)) < 1e-6, "K point of this cell is not (1/3, 1/3, 0)"
    assert abs(np.linalg.norm(M @ B) - 2 * np.pi / (np.sqrt(3) * a)) < 1e-6
    main = [G, M, K, (G + M) / 2, (M + K) / 2, (K + G) / 2]
    return main


def run_material(name, log=print):
    s = SETTINGS[name]
    atoms = read_structure(ROOT / "data" / "structures" / s["cif"])
    main = qpoints(atoms)
    kw = dict(U=s["U"], xc="LDA", ecut=s["ecut"], kpts=s["kpts"], nbands=s["nbands"], maxiter=MAXITER,
              workdir=OUT / name, log=log)
    conf = honeycomb_configuration(atoms, s["pattern"])
    other = honeycomb_configuration(atoms, s["other"])
    t0 = time.time()
    spiral_energies(conf, main[:3], **kw)            # Γ, M, K of the ground-state pattern
    spiral_energies(other, [main[0]], **kw)          # the other collinear state at q = 0 (J1 + J3 check)
    spiral_energies(conf, main[3:], **kw)            # midpoints
    # no small q here: the stiffness is the --stiffness set's (tighter SCF criterion, its own folder)
    log(f"{name}: all spiral points done, {time.time() - t0:.0f} s in this run")


def reference_routes(name):
    """J1–J3 of the PBE+U energy mapping from data/exchange/<name>_routes.json, stored beside the fit for comparison
    (never used in it); empty if the file is absent."""
    import json

    path = ROOT / "data" / "exchange" / f"{name}_routes.json"
    try:
        rows = json.loads(path.read_text())["routes"]
    except (OSError, ValueError, KeyError):
        return {}
    out = {}
    for r in rows:
        if r.get("name") == "energy mapping" and r.get("J1") is not None:
            out["energy mapping (PBE+U, collinear, shipped)"] = {k: r.get(k) for k in ("J1", "J2", "J3")}
    return out


def all_routes(name):
    """{route name: {"J1", "J2", "J3"}} of every route of data/exchange/<name>_routes.json with J1–J3 (meV, internal
    convention), for the D each implies beside the stiffness set's D; empty if the file is absent."""
    import json

    try:
        rows = json.loads((ROOT / "data" / "exchange" / f"{name}_routes.json").read_text())["routes"]
    except (OSError, ValueError, KeyError):
        return {}
    out = {r["name"]: {k: r[k] for k in ("J1", "J2", "J3")} for r in rows
           if all(isinstance(r.get(k), (int, float)) for k in ("J1", "J2", "J3"))}
    for r in rows:   # a row fitted with more than three shells (the spirals' every-point row): D from all its J
        D = (r.get("settings") or {}).get("D_from_J_meV_A2_per_cell")
        if r["name"] in out and isinstance(D, (int, float)):
            out[r["name"]].update(D=D, source=f"data/exchange/{name}_spiral.json (J_meV, all shells)")
    # the MLWF force theorem with every J(R) up to 30 Å (data/exchange/ft_stiffness.py): its D is given, not J1–J3's
    ft = ROOT / "data" / "exchange" / f"{name}_ft_stiffness.json"
    try:
        for k, v in json.loads(ft.read_text())["suggested_D_from_routes"].items():
            out[k] = {"J1": v["J"][0], "J2": v["J"][1], "J3": v["J"][2], "D": v["D"],
                      "source": str(ft.relative_to(ROOT))}
    except (OSError, ValueError, KeyError):
        pass
    return out


def fit_stiffness_only(name):
    from wannmag.workflows.spiral import stiffness_from_points

    s = SETTINGS[name]
    wd = OUT / f"{name}_stiffness"
    if not list(wd.glob("*_q*.json")):
        return
    doc = stiffness_from_points(ROOT / "data" / "structures" / s["cif"], wd, s["pattern"],
                                out=ROOT / "data" / "exchange" / f"{name}_spiral_stiffness.json", material=name,
                                reference=all_routes(name))
    if doc["D"] is None:
        print(f"{name} stiffness: not computed ({doc['reason']})", flush=True)
        return
    routes = ", ".join(f"{k} {v['D']:.1f}" for k, v in doc["D_from_routes"].items())
    print(f"{name} stiffness: D = {doc['D']:.2f} meV Å² per cell (B = {doc['B']:.1f}, {doc['n_points']} small-q "
          f"points); D implied by the routes' J1–J3: {routes}", flush=True)


def shell_scan_only(name, shells=(3, 4, 5, 6)):
    """Fits with 3..6 shells to the main set and the stiffness set together → data/exchange/<name>_spiral_shells.json:
    does E(q) over the zone and the small-q stiffness fit one Heisenberg model, and with how many shells?"""
    import json

    from wannmag._atomic import atomic_write_json, jsonable
    from wannmag.workflows.spiral import shell_scan

    s = SETTINGS[name]
    sf = ROOT / "data" / "exchange" / f"{name}_spiral_stiffness.json"
    stiff = json.loads(sf.read_text()) if sf.exists() else None
    atoms = read_structure(ROOT / "data" / "structures" / s["cif"])
    done = {tuple(np.round(json.loads(f.read_text())["q"], 5)) for f in (OUT / name).glob("*_q*.json")}
    todo = [q for q in qpoints(atoms) if tuple(np.round(q, 5)) not in done]
    doc = shell_scan(ROOT / "data" / "structures" / s["cif"], [OUT / name, OUT / f"{name}_stiffness"], s["pattern"],
                     shells=shells, stiffness=stiff, predict=todo)
    doc.update(material=name, command=f"python data/exchange/spiral_dft.py --shell-scan {name}",
               folders=[f"data/exchange/spiral/{name}", f"data/exchange/spiral/{name}_stiffness"])
    atomic_write_json(ROOT / "data" / "exchange" / f"{name}_spiral_shells.json", jsonable(doc))
    for r in doc["fits"]:
        if r["status"] != "fitted":
            print(f"{name} {r['n_shells']} shells: {r['reason']}", flush=True)
            continue
        J = ", ".join(f"{x:+.3f}" for x in r["J"])
        pred = "; ".join(f"q={p['q'][:2]}: {p['dE_meV_per_cell']:.2f} meV at {p['relative_angle_deg']}°"
                         for p in r.get("predictions", []))
        print(f"{name} {r['n_shells']} shells ({doc['n_points']} points): J = {J} meV, rms {r['rms_residual']:.3f} "
              f"meV/cell, cond {r['condition_number']:.0f}, D from J {r['D_from_J']:.1f} (stiffness set "
              f"{doc['stiffness_set_D'] or float('nan'):.1f})" + (f"; predicted {pred}" if pred else ""), flush=True)


def fit_only(names):
    from wannmag.workflows.spiral import fit_material_points

    for name in names:
        fit_stiffness_only(name)
        s = SETTINGS[name]
        if not list((OUT / name).glob("*_q*.json")):
            print(f"{name}: no finished spiral point yet, no fit file written", flush=True)
            continue
        try:
            extra = [d for d in (OUT / f"{name}_stiffness",) if list(d.glob("*_q*.json"))]
            res = fit_material_points(ROOT / "data" / "structures" / s["cif"], OUT / name, s["pattern"],
                                      out=ROOT / "data" / "exchange" / f"{name}_spiral.json", material=name,
                                      reference=reference_routes(name), select="high_symmetry",
                                      all_points_dirs=extra)
            print(f"{name}: {res}", flush=True)
        except Exception as exc:  # a fit that cannot be made yet (too few points) is reported, not fatal
            print(f"{name}: no fit: {type(exc).__name__}: {exc}", flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fit-only", nargs="*", default=None)
    ap.add_argument("--materials", nargs="*", default=list(SETTINGS))
    ap.add_argument("--shell-scan", nargs="+", default=None, metavar="NAME",
                    help="fit 3..6 exchange shells to the main and stiffness sets together (no DFT)")
    ap.add_argument("--stiffness", nargs="+", default=None, metavar="NAME",
                    help="run only the small-q stiffness set (Γ, q = 0.1, 0.15, 0.05 along Γ–M, tight SCF criterion)")
    args = ap.parse_args(argv)
    if args.shell_scan is not None:
        for name in args.shell_scan:
            shell_scan_only(name)
        return 0
    if args.stiffness is not None:
        for name in args.stiffness:
            run_stiffness(name)
            subprocess.run([sys.executable, __file__, "--fit-only", name], check=False)
        return
    if args.fit_only is not None:
        fit_only(args.fit_only or list(SETTINGS))
        return
    for name in args.materials:
        run_material(name)
        subprocess.run([sys.executable, __file__, "--fit-only", name], check=False)


if __name__ == "__main__":
    main()
