"""Where the J1 gap between energy mapping and the force theorem comes from (issue 17): one chain of computed routes,
each link changing one thing, from the package's FM force theorem (PBE+U, MLWF) to its energy mapping (PBE+U).

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python data/exchange/lda_chain.py MATERIAL WORKDIR

WORKDIR is the work directory of data/exchange/gpaw_mft_lda.py (its LDA+U ground state with wave functions,
WORKDIR/<material>/<config>_LDA).  Steps:

1. The LDA+U ground state of GPAW's plane-wave force theorem (the spiral settings: LDA, Dudarev U = 3 eV, PW 250 eV,
   Γ-centred 3×3×1 k) is Wannierised with the package's own basis (wannmag.workflows.wannier.wannierise,
   projections "dp": metal d + ligand p, and P p for VPS3), into WORKDIR/<material>/<config>_LDA/wannier (resumable:
   an existing basis with its quality files is read back).
2. The force theorem on it with the settings of the shipped FM route (data/exchange/make_routes.py: 12×12×1 k,
   120 contour points, E_F mid-gap, bonds ≤ 8.5 Å CrI3 / 7.0 Å VPS3), and once more on the 3×3×1 k-mesh of the
   ground state (how much the Brillouin-zone sampling of GPAW's 3×3 q-mesh can matter).
3. The chain (J1, meV): FM force theorem PBE+U (MLWF, shipped) → [functional, and the reference state where the
   LDA+U ground state is not FM] → force theorem LDA+U (MLWF of the GPAW ground state) → [site: MLWF metal d →
   GPAW's atomic sphere, same ground state] → GPAW plane-wave force theorem (data/exchange/<m>_gpaw_mft.json) →
   [beyond the force theorem: self-consistent rotation, same functional and settings] → self-consistent spin
   spirals (data/exchange/<m>_spiral.json) → [functional and collinear energies vs spiral fit] → energy mapping
   (PBE+U, data/dft/<m>_energies.json).  Where the LDA+U energy mapping exists (data/exchange/<m>_lda_mapping.json,
   data/exchange/lda_mapping.py: the same code path and settings as the spirals) the last step is split in two:
   [method: spirals → collinear energy mapping, LDA+U] and [functional LDA+U → PBE+U, energy mapping].  The links sum to the gap by construction; what each link holds is what its
   two routes differ in.  Where the LDA+U ground state is Néel (VPS3) the first step is split through the shipped
   Néel-reference force theorem (data/exchange/<m>_neel_mft.json): reference state (PBE+U), then functional (Néel).

Output: data/exchange/<material>_lda_wannier_mft.json, a route file (read by make_routes.py) whose row is the LDA+U
MLWF force theorem and whose settings hold the chain ("gap_chain", wannmag.magnetism.routes._gap_chain).

Convention: meV, H = Σ_{i<j} J S_i·S_j, each bond once, classical spins |S| = S = 3/2, J > 0 antiferromagnetic.
"""

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from gpaw_mft_lda import SETTINGS  # noqa: E402

from wannmag._atomic import atomic_write_json  # noqa: E402
from wannmag.errors import WannmagError  # noqa: E402
from wannmag.magnetism.routes import energy_mapping_route, force_theorem_route, read_routes_json  # noqa: E402

MFT = {"kmesh": (12, 12, 1), "n_energy": 120}
RCUT = {"CrI3": 8.5, "VPS3": 7.0}


def _route_json(material: str, kind: str) -> dict:
    p = HERE / f"{material}_{kind}.json"
    if not p.exists():
        raise WannmagError(f"{p}: missing (the chain needs this route)")
    d = read_routes_json(p)
    if d.get("J1") is None:
        raise WannmagError(f"{p}: no J1 ({d.get('reason') or d.get('status') or 'not computed'})")
    return d


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("material", choices=sorted(SETTINGS))
    ap.add_argument("workdir", nargs="?", help="work directory of gpaw_mft_lda.py (not needed with --chain-only)")
    ap.add_argument("--chain-only", action="store_true",
                    help="rebuild only the gap chain of the stored <m>_lda_wannier_mft.json from the current route "
                         "files (its LDA+U MLWF J1 as stored; no ground state, no Wannierisation)")
    a = ap.parse_args(argv)
    m, s = a.material, SETTINGS[a.material]
    try:
        if a.chain_only:
            return chain_only(m, s)
        if not a.workdir:
            raise WannmagError("WORKDIR is needed unless --chain-only is given")
        return run(m, s, Path(a.workdir))
    except WannmagError as exc:
        print(f"wannmag: error: {exc}", file=sys.stderr)
        return 2


def build_chain(m: str, s: dict, fm_J1: float, lda_J1: float, em_J1: float):
    """The links from the PBE+U MLWF force theorem's J1 (``fm_J1``) to the energy mapping's (``em_J1``) through the
    routes of data/exchange (module docstring), and the gap; meV, internal convention."""
    gp, sp = _route_json(m, "gpaw_mft"), _route_json(m, "spiral")

    def link(name, a_label, a_J1, b_label, b_J1):
        return {"name": name, "from": a_label, "to": b_label, "from_J1": a_J1, "to_J1": b_J1}

    chain = []
    start = ("force theorem (FM reference), PBE+U MLWF", fm_J1)
    if s["config"] == "FM":
        chain.append(link("functional PBE+U -> LDA+U (MLWF force theorem, FM reference)", *start, "LDA+U MLWF", lda_J1))
    else:
        neel = _route_json(m, "neel_mft")
        chain.append(link("reference state FM -> Néel (PBE+U MLWF force theorem)", *start,
                          "force theorem (Néel reference), PBE+U MLWF", neel["J1"]))
        chain.append(link("functional PBE+U -> LDA+U (MLWF force theorem, Néel reference)",
                          "force theorem (Néel reference), PBE+U MLWF", neel["J1"], "LDA+U MLWF", lda_J1))
    chain.append(link("site: MLWF metal d -> GPAW atomic sphere (same LDA+U ground state)", "LDA+U MLWF", lda_J1,
                      "GPAW plane-wave force theorem", gp["J1"]))
    chain.append(link("beyond the force theorem: self-consistent spirals (LDA+U, same settings)",
                      "GPAW plane-wave force theorem", gp["J1"], "spin spiral (self-consistent)", sp["J1"]))
    lda_map = HERE / f"{m}_lda_mapping.json"
    lm = read_routes_json(lda_map) if lda_map.exists() else {}
    if lm.get("J1") is not None:  # the LDA+U energy mapping (data/exchange/lda_mapping.py) splits the last step
        chain.append(link("method: spirals -> collinear energy mapping (LDA+U, same settings)",
                          "spin spiral (self-consistent)", sp["J1"], "energy mapping, LDA+U", lm["J1"]))
        chain.append(link("functional LDA+U -> PBE+U (collinear energy mapping)", "energy mapping, LDA+U",
                          lm["J1"], "energy mapping", em_J1))
    else:
        chain.append(link("functional and method: LDA+U spirals -> PBE+U collinear energy mapping",
                          "spin spiral (self-consistent)", sp["J1"], "energy mapping", em_J1))
    for x in chain:
        x["J1"] = x["to_J1"] - x["from_J1"]
    gap = em_J1 - fm_J1
    return chain, gap


def chain_only(m: str, s: dict) -> int:
    """Rebuild the gap chain of data/exchange/<m>_lda_wannier_mft.json from the current route files (spirals, LDA+U
    energy mapping, GPAW force theorem) with the file's own LDA+U MLWF J1; the FM force theorem and the energy
    mapping are recomputed from the shipped data as in :func:`run`."""
    path = HERE / f"{m}_lda_wannier_mft.json"
    if not path.exists():
        raise WannmagError(f"{path}: missing (run data/exchange/lda_chain.py {m} WORKDIR first)")
    out = read_routes_json(path)
    fm, _ = force_theorem_route(ROOT / "data" / "dft" / m, kmesh=MFT["kmesh"], n_energy=MFT["n_energy"], rcut=RCUT[m])
    em, _ = energy_mapping_route(ROOT / "data" / "dft" / f"{m}_energies.json")
    chain, gap = build_chain(m, s, fm.J1, out["J1"], em.J1)
    out["settings"]["gap_chain"] = chain
    out["settings"]["gap_chain_check"] = {"gap_meV": gap, "sum_of_links_meV": sum(x["J1"] for x in chain)}
    out["chain_rebuilt"] = {"command": f"python data/exchange/lda_chain.py {m} --chain-only",
                            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d")}
    atomic_write_json(path, out)
    print(f"J1 gap {gap:+.3f} meV = " + " ".join(f"[{x['name']}: {x['J1']:+.3f}]" for x in chain))
    return 0


def run(m: str, s: dict, work: Path) -> int:
    from wannmag.workflows.wannier import wannierise

    gs_dir = work / m / f"{s['config']}_LDA"
    if not (gs_dir / "summary.json").exists():
        raise WannmagError(f"{gs_dir}: no LDA+U ground state (run data/exchange/gpaw_mft_lda.py {m} {work} first)")
    wdir = gs_dir / "wannier"
    t0 = time.time()
    if not (sorted(wdir.glob("*_up_quality.json")) and sorted(wdir.glob("*_dn_quality.json"))):
        wannierise(gs_dir, projections="dp", outdir=wdir)
    t_w = time.time() - t0
    quality = {c: json.loads(next(wdir.glob(f"*_{c}_quality.json")).read_text()) for c in ("up", "dn")}
    # a resumed basis: its own recorded Wannierisation times (both channels)
    t_w = sum(float((q.get("timings") or {}).get("total") or 0.0) for q in quality.values()) or t_w
    ref = s["config"].replace("Neel", "Néel")
    name = f"force theorem, LDA+U MLWF ({ref} reference)"
    lda, _ = force_theorem_route(wdir, kmesh=MFT["kmesh"], n_energy=MFT["n_energy"], rcut=RCUT[m], name=name)
    lda3, _ = force_theorem_route(wdir, kmesh=s["kpts"], n_energy=MFT["n_energy"], rcut=RCUT[m], name=name)
    fm, _ = force_theorem_route(ROOT / "data" / "dft" / m, kmesh=MFT["kmesh"], n_energy=MFT["n_energy"], rcut=RCUT[m])
    em, _ = energy_mapping_route(ROOT / "data" / "dft" / f"{m}_energies.json")
    chain, gap = build_chain(m, s, fm.J1, lda.J1, em.J1)

    out = {
        "material": m, "spin": 1.5, "name": name, "reference": ref,
        "J1": lda.J1, "J2": lda.J2, "J3": lda.J3, "status": "computed",
        "method": "magnetic force theorem (LKAG) on MLWFs (metal d + ligand p) of the LDA+U ground state of GPAW's "
                  "plane-wave force theorem (data/exchange/gpaw_mft_lda.py), Wannier Hamiltonian frozen",
        "convention": "meV; H = sum_{i<j} J S_i.S_j, each bond once, |S| = 3/2, J > 0 AF",
        "settings": {
            "ground_state": {"xc": "LDA", "U_eV": 3.0, "ecut_eV": s["ecut"], "kpts": list(s["kpts"]),
                             "config": s["config"], "source": "data/exchange/gpaw_mft_lda.py (WORKDIR/"
                             f"{m}/{s['config']}_LDA)"},
            "wannier": {"projections": "dp", "max_spread_A2": {c: q.get("max_spread") for c, q in quality.items()},
                        "band_error_meV": {c: q.get("band_error_meV", q.get("band_error")) for c, q in
                                           quality.items()}},
            "mft": {"kmesh": list(MFT["kmesh"]), "n_energy": MFT["n_energy"], "rcut_A": RCUT[m],
                    **{k: v for k, v in lda.settings.items() if k in ("efermi_eV", "efermi", "J_spread_meV")}},
            "J_on_ground_state_kmesh": {"kmesh": list(s["kpts"]), "J1": lda3.J1, "J2": lda3.J2, "J3": lda3.J3},
            "gap_chain": chain,
            "gap_chain_check": {"gap_meV": gap, "sum_of_links_meV": sum(x["J1"] for x in chain)},
        },
        "seconds": {"wannierisation": round(t_w, 1), "force_theorem": lda.seconds},
        "command": f"OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python data/exchange/lda_chain.py {m} WORKDIR",
        "made_by": "data/exchange/lda_chain.py", "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
    }
    atomic_write_json(HERE / f"{m}_lda_wannier_mft.json", out)
    print(f"{m}: LDA+U MLWF force theorem J1, J2, J3 = {lda.J1:+.3f}, {lda.J2:+.3f}, {lda.J3:+.3f} meV "
          f"(on the {s['kpts'][0]}x{s['kpts'][1]} k-mesh: {lda3.J1:+.3f}, {lda3.J2:+.3f}, {lda3.J3:+.3f})")
    print(f"J1 gap {gap:+.3f} meV = " + " ".join(f"[{x['name']}: {x['J1']:+.3f}]" for x in chain))
    return 0


if __name__ == "__main__":
    sys.exit(main())
