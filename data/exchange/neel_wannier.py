"""Force theorem on the Néel reference state (issue 17, item 2): Néel-reference MLWF models of the CrI3 and VPS3
monolayers and LKAG J1–J3 on them, beside the FM-reference force theorem and the energy mapping.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 nice -n 5 python data/exchange/neel_wannier.py /work/runs_neel [stage ...]

stages: vps3-wannier, cri3-wannier (DFT + Wannier90, resumable run directories under the work directory; the small
Wannier90 text files are copied gzipped to data/dft/<material>_Neel/), vps3-mft, cri3-mft (force theorem on the
shipped FM and Néel models with the same settings → data/exchange/<material>_neel_mft.json).  Default: all.  Runner
and options: data/_stages.py (``--dry-run`` prints the plan).

Settings are those of the shipped FM models (data/dft/PROVENANCE.md, preset ``accurate``: PBE + Dudarev U = 3 eV on
the metal d, plane waves 450 eV, k-density 5.5 Å (6×6 CrI3, 7×7 VPS3), same nbands/converged bands, metal d +
ligand p projections, same automatic window), so that the FM and Néel force theorems differ only by the reference.
Units: exchange meV in the package's internal convention H = Σ_{i<j} J_ij S_i·S_j (each bond once, classical spins
of length S = 3/2, J > 0 antiferromagnetic); Wannier spreads Å², band errors meV.  The force theorem divides the
pair term by sign(m_i·m_j) (wannmag.magnetism.mft.lkag_exchange), so an antiparallel reference gives J in the same
convention.  The non-spin-polarised (spin-averaged) run is not repeated (it does not depend on the reference).
"""

import json
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "data"))

from _stages import gzip_copy, run_stages  # noqa: E402
from wannmag.structures import cri3_monolayer, vps3_monolayer  # noqa: E402
from wannmag.workflows.dft import write_json_atomic  # noqa: E402

DATA = ROOT / "data"
MATERIALS = {"CrI3": cri3_monolayer, "VPS3": vps3_monolayer}
U = 3.0
PRESET = "accurate"
#: the Wannier90 text files the readers need (hr, wsvec, centres, win; wout for the spreads; no tb.dat: the readers
#: prefer hr.dat) and the quality/band records
KEEP = ("_hr.dat", "_wsvec.dat", "_centres.xyz", ".win", ".wout", "_quality.json", "_dft_bands.json")
#: force-theorem settings (same for the FM and the Néel model of a material)
MFT = {"kmesh": (12, 12, 1), "n_energy": 120, "shells": 3}
#: energy-mapping J1–J3 (meV, internal convention) from data/dft/<material>_energies.json (README / issue 17)
ENERGY_MAPPING = {"CrI3": -3.55, "VPS3": 25.9}


def wannier(mat: str, work: Path) -> None:
    from wannmag.workflows.wannier import wannier_models

    structure = MATERIALS[mat]()
    wd = work / mat / "wannier_runs"
    out = work / mat / "wannier_neel"
    t0 = time.time()
    res = wannier_models(structure, preset=PRESET, U=U, workdir=wd, outdir=out, projections="dp", config="Neel",
                         nm=False)
    t_w = time.time() - t0
    seed = next(iter(res.values())).seed.rsplit("_", 1)[0]
    dest = DATA / "dft" / f"{mat}_Neel"
    dest.mkdir(parents=True, exist_ok=True)
    for c in ("up", "dn"):
        for ext in KEEP:
            src = out / f"{seed}_{c}{ext}"
            if not src.exists():
                continue
            if ext in (".win", "_centres.xyz", "_quality.json"):
                shutil.copy2(src, dest / src.name)
            else:
                gzip_copy(src, dest / (src.name + ".gz"))
    summ = json.loads((out / f"{seed}_wannier_summary.json").read_text())
    summ["timing_s"] = {"wannier_models (Néel DFT run + Wannierisation, resumed parts not counted)": round(t_w, 1)}
    run = json.loads((wd / "Neel_wannier" / "summary.json").read_text())
    run["parameters"].pop("positions", None)
    summ["dft_runs"] = {"Neel_wannier": run}
    summ["made_by"] = "data/exchange/neel_wannier.py"
    write_json_atomic(dest / f"{seed}_wannier_summary.json", summ)
    print(f"{mat} Néel Wannier: " + ", ".join(f"{c}: spread ≤ {r.max_spread:.2f} Å², offset ≤ {r.max_centre_offset:.2f} Å, "
                                              f"mesh error {r.band_error_meV:.2f} meV" for c, r in res.items())
          + f" ({t_w:.0f} s)", flush=True)


def _quality(model_dir: Path, seed: str) -> dict:
    q = {}
    for c in ("up", "dn"):
        d = json.loads((model_dir / f"{seed}_{c}_quality.json").read_text())
        q[c] = {"max_spread_A2": d["max_spread"], "mean_spread_A2": float(np.mean(d["spreads"])),
                "max_centre_offset_A": d["max_centre_offset"], "band_error_meV_kmesh": d["band_error_meV"],
                "band_error_meV_path": d.get("path_band_error_meV"), "isolated": d["window"]["isolated"],
                "bands": [d["window"]["n_lo"] + 1, d["window"]["n_hi"] + 1]}
    return q


def shell_average(distances, J, n_shells: int = 3, tol: float = 0.02):
    """Group bonds by length (|Δd| ≤ tol Å) into the first ``n_shells`` shells: per shell the distance, the mean J,
    its spread (max − min, the C3-breaking of the Wannier gauge) and the number of bonds."""
    d = np.asarray(distances, float)
    J = np.asarray(J, float)
    shells = []
    for x in np.sort(d):
        if not shells or x - shells[-1] > tol:
            shells.append(float(x))
    out = []
    for x in shells[:n_shells]:
        m = np.abs(d - x) <= tol
        out.append({"distance_A": round(x, 4), "J": float(J[m].mean()), "spread": float(J[m].max() - J[m].min()),
                    "n_bonds": int(m.sum()), "J_bonds": [round(float(v), 4) for v in J[m]]})
    return out


def force_theorem(model_dir: Path, rcut: float) -> dict:
    """LKAG J1–J3 (meV, internal convention) of the collinear MLWF pair in ``model_dir`` with the settings MFT;
    the Fermi level in mid-gap at the .win file's occupation (as ``wannmag exchange mft``)."""
    from wannmag.magnetism.mft import hamiltonian_from_tb, lkag_exchange
    from wannmag.tightbinding import read_w90
    from wannmag.tightbinding.electronic import midgap_fermi_level

    t0 = time.time()
    model = read_w90(model_dir, kind="collinear")
    ham = hamiltonian_from_tb(model)
    ef, how = midgap_fermi_level(model)
    res = lkag_exchange(ham, kmesh=MFT["kmesh"], efermi=ef, n_energy=MFT["n_energy"], rcut=rcut)
    sh = shell_average(res.distances, res.J, MFT["shells"])
    splitting = [float(np.trace(ham.onsite_splitting(a)).real) for a in ham.magnetic]
    return {"J1": sh[0]["J"], "J2": sh[1]["J"], "J3": sh[2]["J"], "shells": sh,
            "reference": res.reference(), "moment_signs": [int(x) for x in res.moment_signs],
            "trace_exchange_splitting_eV": splitting, "efermi_eV": float(ef), "efermi_from": how,
            "warnings": list(res.warnings), "seconds": round(time.time() - t0, 1)}


def mft(mat: str, work: Path | None = None) -> dict:
    from wannmag.magnetism.energy_mapping import fit_exchange, read_energies

    seed = mat
    rcut = {"CrI3": 8.5, "VPS3": 7.0}[mat]
    neel_dir = DATA / "dft" / f"{mat}_Neel"
    fm_dir = DATA / "dft" / mat
    neel = force_theorem(neel_dir, rcut)
    fm = force_theorem(fm_dir, rcut)
    edata = read_energies(DATA / "dft" / f"{mat}_energies.json", None, 3)
    fit = fit_exchange(edata.records, n_shells=3, spin=edata.spin, distances=edata.distances)
    wsum = json.loads((neel_dir / f"{seed}_wannier_summary.json").read_text())
    run = wsum["dft_runs"]["Neel_wannier"]
    out = {
        "material": mat,
        "method": "magnetic force theorem (LKAG, wannmag.magnetism.mft.lkag_exchange) on the MLWF pair of the "
                  "Néel reference state; pair term divided by sign(m_i·m_j)",
        "convention": "meV; H = sum_{i<j} J S_i.S_j, each bond once, classical spins |S| = 3/2, J > 0 AF",
        "J1": neel["J1"], "J2": neel["J2"], "J3": neel["J3"],
        "neel_reference": neel,
        "fm_reference": {**fm, "model": f"data/dft/{mat}"},
        "energy_mapping": {"J1": float(fit.J[0]), "J2": float(fit.J[1]), "J3": float(fit.J[2]),
                           "source": f"data/dft/{mat}_energies.json (FM, Néel, zigzag, stripy; 3 shells)"},
        "average_fm_neel": {k: 0.5 * (neel[k] + fm[k]) for k in ("J1", "J2", "J3")},
        # E_FM − E_Néel per magnetic ion = S² · 3 (J1 + J3) on the honeycomb (J2 joins equal sublattices, drops out):
        # what each set of J predicts for the energy the DFT total energies give directly
        "dE_FM_minus_Neel_meV_per_ion": {
            "note": "S^2 * 3 (J1 + J3), S = 3/2; 'dft' from the total energies of data/dft/<material>_energies.json",
            "dft": -float(json.loads((DATA / "dft" / f"{mat}_energies.json").read_text())
                          ["configurations"]["Neel"]["dE_meV_per_ion_vs_FM"]),
            **{name: 2.25 * 3 * (d["J1"] + d["J3"]) for name, d in
               (("force_theorem_fm_ref", fm), ("force_theorem_neel_ref", neel),
                ("energy_mapping", {"J1": float(fit.J[0]), "J3": float(fit.J[2])}))}},
        "settings": {"dft": {k: run["parameters"].get(k) for k in ("xc", "U", "mode", "ecut", "kpts", "smearing",
                                                                     "nbands", "converge_bands", "config",
                                                                     "initial_magmoms")},
                     "site_moments_muB": run.get("site_moments"), "dft_energy_eV": run.get("energy"),
                     "wannier": {"projections": wsum["projections"], "lines": wsum["lines"],
                                 "window": "automatic (wannmag.workflows.wannier.choose_window), as the FM models"},
                     "mft": {"kmesh": list(MFT["kmesh"]), "n_energy": MFT["n_energy"], "rcut_A": rcut,
                             "efermi": "mid-gap at the .win occupation"}},
        "wannier_quality": _quality(neel_dir, seed),
        "seconds": {"dft_and_wannier": wsum.get("timing_s"), "dft_scf": run.get("timings"),
                    "force_theorem_neel": neel["seconds"], "force_theorem_fm": fm["seconds"]},
        "model": f"data/dft/{mat}_Neel",
        "made_by": "data/exchange/neel_wannier.py",
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
    }
    write_json_atomic(DATA / "exchange" / f"{mat}_neel_mft.json", out)
    print(f"{mat}: force theorem, Néel reference J1..J3 = " + ", ".join(f"{neel[k]:+.3f}" for k in ("J1", "J2", "J3"))
          + f" ({neel['reference']}); FM reference " + ", ".join(f"{fm[k]:+.3f}" for k in ("J1", "J2", "J3"))
          + "; energy mapping " + ", ".join(f"{x:+.3f}" for x in fit.J[:3]) + " meV", flush=True)
    return out


STAGES = {"vps3-wannier": lambda w: wannier("VPS3", w), "cri3-wannier": lambda w: wannier("CrI3", w),
          "vps3-mft": lambda w: mft("VPS3", w), "cri3-mft": lambda w: mft("CrI3", w)}

if __name__ == "__main__":
    sys.exit(run_stages(STAGES, __doc__, "/work/runs_neel"))
