"""Force theorem (FM reference) on more than one Wannier basis of the same ground state (issue 17): how much does the
force-theorem J1 move with the choice of Wannier functions?

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 nice -n 5 python data/exchange/wannier_basis.py /work/runs/wbasis [stage ...]

stages (default: all, in this order; runner and options: data/_stages.py, ``--dry-run`` prints the plan):

- ``cri3-shipped``: the FM ground state with exactly the settings of the shipped models (data/dft/make_reference.py,
  stage cri3-wannier: PBE + Dudarev U = 3 eV on Cr d, PW 450 eV, 6×6 k, 53 bands of which the top 8 unconverged,
  the same run_dft parameters through ``wannier_models``; run directory WORK/CrI3/FM_wannier keeps the .gpw with
  wave functions) and the shipped basis Wannierised again from it (WORK/CrI3/basis_shipped);
- ``cri3-dp-occfrozen``: basis B, the same 28 projections (Cr d + I p) disentangled from a wider outer window (the
  28-band d+p manifold plus the next :data:`EXTRA_BANDS` converged bands) with only the occupied states frozen
  (frozen window from the manifold bottom to VBM + 0.1 eV, below mid-gap): the empty Cr d states (e_g↑, t2g↓, e_g↓)
  may mix with the bands above — the kind of window/disentanglement choice in which independent fits differ;
- ``cri3-d-only``: basis C, Cr d only (10 WFs, the package's ``projections="d"``: automatic disentanglement window):
  the I p states are downfolded into the Cr d functions (d–p antibonding, I p tails), so rotating a Cr "spin" in the
  force theorem rotates its ligand tails with it;
- ``cri3-mft``: the force theorem on each basis with the settings of the shipped FM route (data/exchange/
  make_routes.py: 12×12×1 k, 120 contour points, E_F mid-gap at the .win occupation, bonds ≤ 8.5 Å,
  ``wannmag.magnetism.routes.force_theorem_route``), the quality metrics of each basis, and the reproduction check
  (the re-made shipped basis must give the shipped FM route's J1–J3 within :data:`REPRO_TOL_MEV`; else the stage
  fails and no result is written) → data/exchange/CrI3_wannier_basis.json (read by make_routes.py as the route kind
  ``wannier_basis``: one row per basis other than the shipped one).

Units: exchange meV in the package's internal convention H = Σ_{i<j} J_ij S_i·S_j (each bond once, classical spins
of length S = 3/2, J > 0 antiferromagnetic); TB energies eV, spreads Å², band errors meV, wall times s.  Every stage
is resumable: a finished DFT run is read back (run_dft), a Wannierised basis whose quality files exist is not
redone.
"""

import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from unittest import mock

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "data"))

from _stages import run_stages  # noqa: E402
from wannmag.errors import WannmagError  # noqa: E402
from wannmag.structures import cri3_monolayer, vps3_monolayer  # noqa: E402

MATERIALS = {"CrI3": cri3_monolayer, "VPS3": vps3_monolayer}
U = 3.0
PRESET = "accurate"
RCUT = {"CrI3": 8.5, "VPS3": 7.0}
MFT = {"kmesh": (12, 12, 1), "n_energy": 120}
#: converged bands above the d+p manifold added to the outer window of basis B
EXTRA_BANDS = 8
#: the re-made shipped basis must reproduce the shipped FM route within this (meV, each of J1–J3): the DFT is the
#: same calculation (SCF converged to 1e-6 eV / density 1e-5), the Wannierisation the same deterministic wannier90 run
REPRO_TOL_MEV = 0.01
OUT = ROOT / "data" / "exchange"

#: material → basis name → (directory under WORK/<material>, one-line description)
BASES = {
    "CrI3": {
        "shipped": ("basis_shipped", "Cr d + I p, 28 WFs, bands 7–34 isolated (no disentanglement), I 5s excluded — "
                                     "the package's automatic window, as data/dft/CrI3"),
        "dp_occfrozen": ("basis_dp_occfrozen", f"Cr d + I p, 28 WFs disentangled from bands 7–{34 + EXTRA_BANDS} "
                                               f"(manifold + next {EXTRA_BANDS} bands), frozen window = occupied "
                                               "states only (bottom … VBM + 0.1 eV)"),
        "d_only": ("basis_d_only", "Cr d only, 10 WFs, I p downfolded into the d functions (automatic "
                                   "disentanglement window of projections='d')"),
    },
    "VPS3": {
        "shipped": ("basis_shipped", "V d + S p + P p, 34 WFs, disentangled (the package's automatic window, as "
                                     "data/dft/VPS3)"),
        "dp_occfrozen": ("basis_dp_occfrozen", f"V d + S p + P p, 34 WFs disentangled from the manifold + next "
                                               f"{EXTRA_BANDS} bands, frozen window = occupied states only (bottom "
                                               "… VBM + 0.1 eV)"),
        "d_only": ("basis_d_only", "V d only, 10 WFs, S p and P p downfolded into the d functions (automatic "
                                   "disentanglement window of projections='d')"),
    },
}
#: row name suffix per basis kind
ROW_SUFFIX = {"dp_occfrozen": " (occupied-only frozen window)", "d_only": " (ligands downfolded)"}


def _run_dir(mat: str, work: Path) -> Path:
    return work / mat / "FM_wannier"


def shipped(mat: str, work: Path) -> None:
    """The FM ground state with the settings of data/dft/make_reference.py's wannier stage (same run_dft
    parameters through wannier_models) and the shipped basis again (metal d + ligand p, automatic window)."""
    from wannmag.workflows.wannier import wannier_models

    outdir = work / mat / BASES[mat]["shipped"][0]
    if (_run_dir(mat, work) / "summary.json").exists() and \
            all((outdir / f"{mat}_{c}_quality.json").exists() for c in ("up", "dn")):
        print(f"{mat} shipped: ground state and basis made earlier ({outdir})", flush=True)
        return
    t0 = time.time()
    wannier_models(MATERIALS[mat](), preset=PRESET, U=U, workdir=work / mat,
                   outdir=work / mat / BASES[mat]["shipped"][0], projections="dp", config="FM", nm=False)
    _record_time(work / mat / BASES[mat]["shipped"][0], time.time() - t0)
    print(f"{mat}: ground state + shipped basis in {time.time() - t0:.0f} s", flush=True)


def _record_time(outdir: Path, seconds: float) -> None:
    from wannmag.workflows.dft import write_json_atomic

    f = outdir / "basis_timing.json"
    if not f.exists():  # the first (real) run only; a resumed stage does not overwrite it
        write_json_atomic(f, {"wall_s": round(seconds, 1),
                              "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")})


def occupied_frozen_window(extra: int):
    """A replacement for ``wannmag.workflows.wannier.choose_window``: the package's own choice gives the manifold
    (first band ``n_lo``); the outer window is widened by ``extra`` converged bands above it and only the occupied
    states are frozen (from the manifold bottom to min(VBM + 0.1 eV, mid-gap))."""
    from wannmag.workflows import wannier as W

    original = W.choose_window

    def choose(eps_kn, w_kn, nw, efermi, n_conv=None, **kw):
        base = original(eps_kn, w_kn, nw, efermi, n_conv=n_conv, **kw)
        eps = np.asarray(eps_kn, float)
        nconv = eps.shape[1] if n_conv is None else min(n_conv, eps.shape[1])
        n_hi = min(base.n_lo + nw - 1 + extra, nconv - 1)
        sub = eps[:, base.n_lo:n_hi + 1]
        occ, emp = sub[sub < efermi], sub[sub >= efermi]
        vbm, cbm = float(occ.max()), float(emp.min())
        froz_max = min(vbm + 0.1, 0.5 * (vbm + cbm))
        bottom = float(sub.min())
        return W.Window(n_lo=base.n_lo, n_hi=n_hi, isolated=False, froz_min=bottom - 0.1, froz_max=froz_max,
                        win_min=bottom - 0.1, win_max=float(sub.max()) + 0.1,
                        notes=[f"wannier_basis.py: outer window = manifold + {extra} bands, frozen = occupied only "
                               f"(VBM {vbm:.3f}, CBM {cbm:.3f} eV)"])

    return choose


def variant(mat: str, work: Path, name: str) -> None:
    """Wannierise the kept ground state (WORK/<mat>/FM_wannier) in basis ``name`` of :data:`BASES`."""
    from wannmag.workflows import wannier as W

    outdir = work / mat / BASES[mat][name][0]
    if all((outdir / f"{mat}_{c}_quality.json").exists() for c in ("up", "dn")):
        print(f"{mat} {name}: Wannierised earlier ({outdir})", flush=True)
        return
    run = _run_dir(mat, work)
    if not (run / "summary.json").exists():
        raise RuntimeError(f"{run}: no finished ground state; run stage {mat.lower()}-shipped first")
    t0 = time.time()
    if name == "dp_occfrozen":
        with mock.patch.object(W, "choose_window", occupied_frozen_window(EXTRA_BANDS)):
            res = W.wannierise(run, projections="dp", outdir=outdir)
    elif name == "d_only":
        res = W.wannierise(run, projections="d", outdir=outdir)
    else:
        raise ValueError(name)
    _record_time(outdir, time.time() - t0)
    print(f"{mat} {name}: " + ", ".join(f"{c}: spread ≤ {r.max_spread:.2f} Å², offset ≤ {r.max_centre_offset:.2f} Å, "
                                        f"frozen-window error {r.band_error_meV:.2f} meV" for c, r in res.items())
          + f" ({time.time() - t0:.0f} s)", flush=True)


def quality(mat: str, basis_dir: Path, ref_dir: Path | None) -> dict:
    """Per channel: the package's metrics (spreads, centre offsets, band error inside the frozen window, all target
    bands when isolated) and, against the shipped basis's DFT bands ``ref_dir`` (the isolated 28-band d+p manifold on
    the same k-mesh), the largest error of the Wannier bands that belong to that manifold (dp bases: all 28 bands,
    i.e. also the empty d bands outside a frozen window)."""
    from wannmag.tightbinding.w90 import hr_eigenvalues, read_hr

    out = {}
    for c in ("up", "dn"):
        q = json.loads((basis_dir / f"{mat}_{c}_quality.json").read_text())
        w = q["window"]
        d = {"num_wann": q["num_wann"], "num_bands": q["num_bands"], "bands": [w["n_lo"] + 1, w["n_hi"] + 1],
             "isolated": w["isolated"], "frozen_window_eV": None if w["isolated"] else [w["froz_min"], w["froz_max"]],
             "max_spread_A2": round(q["max_spread"], 4), "mean_spread_A2": round(float(np.mean(q["spreads"])), 4),
             "total_spread_A2": round(float(np.sum(q["spreads"])), 4),
             "max_centre_offset_A": round(q["max_centre_offset"], 4),
             "band_error_meV_frozen": round(q["band_error_meV"], 4), "band_error_states": q["band_error_states"],
             "wannier90_s": q["timings"].get("wannier90"), "wannierise_s": q["timings"].get("total")}
        rq = json.loads((ref_dir / f"{mat}_{c}_quality.json").read_text()) if ref_dir is not None else None
        if rq is not None and ref_dir != basis_dir and rq["window"]["isolated"] and q["num_wann"] == rq["num_wann"]:
            ref = json.loads((ref_dir / f"{mat}_{c}_dft_bands.json").read_text())
            ed = np.sort(np.asarray(ref["bands"], float), axis=1)
            ew = hr_eigenvalues(np.asarray(ref["kpoints_frac"], float), *read_hr(basis_dir / f"{mat}_{c}_hr.dat"))
            err = np.abs(ed - ew)
            occ = ed < ref["fermi_level"]
            d["band_error_meV_manifold"] = round(1000 * float(err.max()), 3)
            d["band_error_meV_occupied"] = round(1000 * float(err[occ].max()), 3)
            d["band_error_meV_empty"] = round(1000 * float(err[~occ].max()), 3) if (~occ).any() else None
        out[c] = d
    return out


def onsite(basis_dir: Path, settings: dict) -> dict:
    """Exchange splitting of the collinear model (trace of H↑ − H↓ on each metal's d block, eV) and the Fermi level
    the force theorem used (``settings`` of its route)."""
    from wannmag.magnetism.mft import hamiltonian_from_tb
    from wannmag.tightbinding import read_w90

    ham = hamiltonian_from_tb(read_w90(str(basis_dir), kind="collinear"))
    return {"trace_exchange_splitting_eV": [round(float(np.trace(ham.onsite_splitting(a)).real), 4)
                                            for a in ham.magnetic],
            "efermi_eV": settings["efermi_eV"], "efermi": settings["efermi"]}


#: electrons per cell in a metal-d-only model: d³ majority (Cr³⁺, V²⁺), 2 metal ions per cell, minority empty
NOMINAL_D_ELECTRONS = {"CrI3": 6, "VPS3": 6}


def force_theorem_nominal(model_dir: Path, rcut: float, n_electrons: int):
    """``force_theorem_route`` with E_F mid-gap at a given electron count: a d-only model has no ligand bands, so
    the DFT Fermi level of its .win (set for the d + p manifold) lies inside its disentangled bands (measured:
    "not insulating"); with the nominal count (t2g³ majority per metal) it is an insulator."""
    from wannmag.magnetism.mft import hamiltonian_from_tb, lkag_exchange, mft_spin_model
    from wannmag.magnetism.routes import Route
    from wannmag.tightbinding import read_w90
    from wannmag.tightbinding.electronic import band_edges

    t0 = time.perf_counter()
    model = read_w90(str(model_dir), kind="collinear")
    be = band_edges(model, n_electrons=n_electrons)
    if not be.insulating:
        raise RuntimeError(f"{model_dir}: not insulating with {n_electrons} electrons per cell")
    ef = 0.5 * (be.vbm + be.cbm)
    ham = hamiltonian_from_tb(model)
    res = lkag_exchange(ham, kmesh=MFT["kmesh"], efermi=ef, n_energy=MFT["n_energy"], rcut=rcut)
    shells = mft_spin_model(ham, res).shell_summary()[:3]
    settings = {"efermi_eV": round(ef, 4), "efermi": f"mid-gap at {n_electrons} electrons per cell (gap "
                f"{be.gap:.3f} eV)", "orbitals": ham.nw, "J_spread_meV": [round(x["J_spread"], 4) for x in shells]}
    r = Route(name="d only", J1=shells[0]["J"], J2=shells[1]["J"], J3=shells[2]["J"], reference="FM",
              settings=settings, seconds=round(time.perf_counter() - t0, 2))
    return r, {"distances": [x["distance"] for x in shells], "efermi": ef}


def mft(mat: str, work: Path) -> None:
    from wannmag.magnetism.routes import force_theorem_route
    from wannmag.workflows.dft import read_summary, write_json_atomic

    shipped_route, info = force_theorem_route(ROOT / "data" / "dft" / mat, rcut=RCUT[mat], **MFT)
    routes, bases, failed = {}, {}, {}
    ref_dir = work / mat / BASES[mat]["shipped"][0]
    for name, (sub, desc) in BASES[mat].items():
        d = work / mat / sub
        if not all((d / f"{mat}_{c}_quality.json").exists() for c in ("up", "dn")):
            print(f"{mat} {name}: not Wannierised ({d}), skipped", flush=True)
            continue
        try:
            if name == "d_only":  # the .win's DFT E_F falls inside the d-only bands: nominal d count (below)
                r, rinfo = force_theorem_nominal(d, RCUT[mat], NOMINAL_D_ELECTRONS[mat])
            else:
                r, rinfo = force_theorem_route(d, rcut=RCUT[mat], **MFT)
        except (WannmagError, RuntimeError) as exc:  # a basis the package refuses is reported, never used
            if name == "shipped":
                raise
            failed[name] = f"{type(exc).__name__}: {exc}"
            print(f"{mat} {name}: no force theorem ({failed[name]})", flush=True)
            continue
        t = d / "basis_timing.json"
        bases[name] = {"description": desc, "directory": str(d), "J_meV": r.J, "J_spread_meV":
                       r.settings["J_spread_meV"], "force_theorem_s": r.seconds,
                       "wannierisation_s": json.loads(t.read_text())["wall_s"] if t.exists() else None,
                       "quality": quality(mat, d, ref_dir if ref_dir.exists() else None),
                       **onsite(d, r.settings),
                       "distances_A": [round(x, 4) for x in rinfo["distances"]]}
        routes[name] = r
    if "shipped" not in routes:
        raise RuntimeError(f"{mat}: the re-made shipped basis is missing: no reproduction check, nothing written")
    diff = [abs(a - b) for a, b in zip(routes["shipped"].J, shipped_route.J)]
    repro = {"shipped_route_J_meV": shipped_route.J, "remade_J_meV": routes["shipped"].J,
             "max_abs_diff_meV": max(diff), "tolerance_meV": REPRO_TOL_MEV, "passed": max(diff) <= REPRO_TOL_MEV}
    print(f"{mat} reproduction: shipped {np.round(shipped_route.J, 4)} re-made {np.round(routes['shipped'].J, 4)} "
          f"→ max |Δ| {max(diff):.4f} meV (tolerance {REPRO_TOL_MEV})", flush=True)
    if not repro["passed"]:
        raise RuntimeError(f"{mat}: the re-made shipped basis gives J1–J3 {routes['shipped'].J} against the shipped "
                           f"{shipped_route.J} meV (tolerance {REPRO_TOL_MEV}): find out why before using the others")
    gs = read_summary(_run_dir(mat, work))
    ground = {"run_dir": str(_run_dir(mat, work)), "gpw": gs.gpw, "energy_eV": gs.energy,
              "site_moments_muB": gs.site_moments, "dft_seconds": gs.timings, "code": gs.code_version,
              "parameters": f"those of data/dft/make_reference.py {mat.lower()}-wannier (FM_wannier, compared: "
                            "identical)"}
    rows = []
    J1_ref = routes["shipped"].J1
    for name, r in routes.items():
        if name == "shipped":
            continue
        b = bases[name]
        rows.append({"name": f"force theorem (FM reference), Wannier basis: {BASES[mat][name][1].split(',')[0]}"
                             + ROW_SUFFIX[name],
                     "J1": r.J1, "J2": r.J2, "J3": r.J3, "reference": "FM",
                     "method": "magnetic force theorem (LKAG) on the MLWF pair of another Wannier basis of the same FM "
                               "ground state, Wannier Hamiltonian frozen",
                     "settings": {"basis": BASES[mat][name][1], "kmesh": list(MFT["kmesh"]),
                                  "n_energy": MFT["n_energy"],
                                  "rcut_A": RCUT[mat], "efermi_eV": b["efermi_eV"], "orbitals": r.settings["orbitals"],
                                  "J_spread_meV": b["J_spread_meV"],
                                  "J1_minus_shipped_basis_meV": round(r.J1 - J1_ref, 4),
                                  "max_spread_A2": {c: b["quality"][c]["max_spread_A2"] for c in ("up", "dn")},
                                  "band_error_meV_frozen": {c: b["quality"][c]["band_error_meV_frozen"]
                                                            for c in ("up", "dn")},
                                  "ground_state": str(ground["gpw"])},
                     "seconds": {"total": round((b["force_theorem_s"] or 0) + (b["wannierisation_s"] or 0), 1),
                                 "force_theorem": b["force_theorem_s"], "wannierisation": b["wannierisation_s"]},
                     "source": f"data/exchange/{mat}_wannier_basis.json"})
    for name, why in failed.items():
        rows.append({"name": f"force theorem (FM reference), Wannier basis: {BASES[mat][name][1].split(',')[0]}"
                             + ROW_SUFFIX[name], "status": "not computed", "reference": "FM",
                     "reason": f"the package refused this basis (Wannier checks or force-theorem preconditions): "
                               f"{why}",
                     "source": f"data/exchange/{mat}_wannier_basis.json"})
    write_json_atomic(OUT / f"{mat}_wannier_basis.json", {
        "material": mat, "spin": 1.5, "distances": bases["shipped"]["distances_A"],
        "convention": "meV; H = sum_{i<j} J S_i.S_j, each bond once, classical spins |S| = 3/2, J > 0 AF",
        "made_by": "data/exchange/wannier_basis.py", "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "routes": rows, "reproduction": repro, "bases": bases, "failed_bases": failed, "ground_state": ground,
        "force_theorem_settings": {"kmesh": list(MFT["kmesh"]), "n_energy": MFT["n_energy"], "rcut_A": RCUT[mat],
                                   "efermi": "mid-gap at the .win occupation"}})
    for name, b in bases.items():
        print(f"{mat} {name:13s} J1–J3 {np.round(b['J_meV'], 3)} meV; max spread up/dn "
              f"{b['quality']['up']['max_spread_A2']}/{b['quality']['dn']['max_spread_A2']} Å²", flush=True)


STAGES = {f"{m.lower()}-{stage}": (lambda w, m=m, f=f: f(m, w))
          for m in ("CrI3", "VPS3")
          for stage, f in (("shipped", shipped), ("dp-occfrozen", lambda m, w: variant(m, w, "dp_occfrozen")),
                           ("d-only", lambda m, w: variant(m, w, "d_only")), ("mft", mft))}

if __name__ == "__main__":
    sys.exit(run_stages(STAGES, __doc__, "/work/runs/wbasis"))
