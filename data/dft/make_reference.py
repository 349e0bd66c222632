"""Reference DFT data of wannmag (data/dft/): energies of FM, Néel, zigzag and stripy order and MLWF Hamiltonians
(up, dn, spin-averaged) for the CrI3 and VPS3 monolayers, with the embedded GPAW engine (preset `accurate`).

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python data/dft/make_reference.py /work/runs [stage ...]

stages: cri3-energies, cri3-wannier, vps3-energies, vps3-wannier (default: all, in this order; runner and options:
data/_stages.py, ``--dry-run`` prints the plan).  Every calculation lives in its own run directory under the work
directory (resumable: a finished one is read back, never recomputed);
this script copies only small results into data/dft/ (no .gpw, .amn, .mmn, .chk).  Energies in eV (JSON per cell
and per magnetic ion; E − E_FM in meV per magnetic ion), moments μ_B, lengths Å.
"""

import json
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _stages import gzip_copy, run_stages  # noqa: E402
from wannmag.structures import (configuration_from_pattern, cri3_monolayer, rectangular_supercell,  # noqa: E402
                                vps3_monolayer)
from wannmag.workflows.dft import PRESETS, gpaw_version, run_dft, write_json_atomic  # noqa: E402
from wannmag.workflows.wannier import band_path_check, wannier_models  # noqa: E402

DATA = Path(__file__).resolve().parent
MATERIALS = {"CrI3": cri3_monolayer, "VPS3": vps3_monolayer}
U = 3.0
PRESET = "accurate"
GZIP_ABOVE = 1_000_000  # bytes


def energies(mat: str, work: Path) -> None:
    structure = MATERIALS[mat]()
    wd = work / mat / "energies"
    recs = {}
    for c in ("FM", "Neel", "zigzag", "stripy"):
        recs[c] = run_dft(structure, c, preset=PRESET, U=U, workdir=wd)
    # k-sampling consistency check: FM in the rectangular 4-site cell of zigzag/stripy
    P = rectangular_supercell(structure)
    fm_rect = configuration_from_pattern(structure, P, [1, 1, 1, 1], name="FM_rect")
    recs["FM_rect"] = run_dft(fm_rect, fm_rect, preset=PRESET, U=U, workdir=wd)
    e_fm = recs["FM"].energy_per_ion
    e_fm_rect = recs["FM_rect"].energy_per_ion
    table = {}
    for c, r in recs.items():
        ref = e_fm_rect if c in ("zigzag", "stripy", "FM_rect") else e_fm
        table[c] = {"energy_eV_per_cell": r.energy, "energy_eV_per_ion": r.energy_per_ion,
                    "dE_meV_per_ion_vs_FM": 1000 * (r.energy_per_ion - e_fm),
                    "dE_meV_per_ion_vs_FM_same_cell": 1000 * (r.energy_per_ion - ref),
                    "site_moments_muB": r.site_moments, "total_moment_muB": r.total_moment,
                    "moments_all_atoms_muB": r.moments, "pattern": r.pattern, "n_sites": r.n_sites,
                    "supercell": r.supercell, "kpts": r.kpts, "gaps_eV": r.gaps, "gap_eV": r.gap,
                    "fermi_level_eV": r.fermi_level, "time_s": r.timings, "warnings": r.warnings}
    write_json_atomic(DATA / f"{mat}_energies.json", {
        "material": f"{mat} monolayer (wannmag.structures.{MATERIALS[mat].__name__}(), data/structures/{mat}_monolayer.cif)",
        "units": "energies eV (per cell, per magnetic ion); dE meV per magnetic ion; moments μB",
        "method": {"code": f"gpaw {gpaw_version()}", "xc": "PBE", "U_eV": {k: v for k, v in recs['FM'].U.items()},
                   "preset": PRESET, **{k: v for k, v in PRESETS[PRESET].items()},
                   "smearing_eV": recs["FM"].parameters.get("smearing"), "geometry": "unrelaxed prototype"},
        "reference": "dE_meV_per_ion_vs_FM: against FM in the primitive cell; dE_meV_per_ion_vs_FM_same_cell: zigzag and "
                     "stripy against FM in their own rectangular cell (FM_rect), cancelling k-sampling differences",
        "k_sampling_check_meV_per_ion": 1000 * (e_fm_rect - e_fm),
        "configurations": table,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d")})
    print(f"{mat}: " + ", ".join(f"{c} {t['dE_meV_per_ion_vs_FM']:+.2f}" for c, t in table.items()) + " meV/ion", flush=True)


def wannier(mat: str, work: Path) -> None:
    structure = MATERIALS[mat]()
    wd = work / mat / "wannier_runs"
    out = work / mat / "wannier"
    t0 = time.time()
    res = wannier_models(structure, preset=PRESET, U=U, workdir=wd, outdir=out, projections="dp", config="FM")
    t_w = time.time() - t0
    seed = next(iter(res.values())).seed.rsplit("_", 1)[0]
    t1 = time.time()
    path_err = {}
    for run in ("FM_wannier", "NM_wannier"):
        if not all((out / f"{seed}_{c}_dft_path.json").exists() for c in (("up", "dn") if run == "FM_wannier" else ("nm",))):
            path_err.update(band_path_check(wd / run, out, seed, npoints=41))
    t_p = time.time() - t1
    dest = DATA / mat
    dest.mkdir(exist_ok=True)
    for c in ("up", "dn", "nm"):
        for ext in ("_hr.dat", "_tb.dat", "_wsvec.dat", "_centres.xyz", ".win", ".wout", "_quality.json",
                    "_dft_bands.json", "_dft_path.json"):
            src = out / f"{seed}_{c}{ext}"
            if not src.exists():
                continue
            if src.stat().st_size > GZIP_ABOVE:
                gzip_copy(src, dest / (src.name + ".gz"))
                (dest / src.name).unlink(missing_ok=True)
            else:
                shutil.copy2(src, dest / src.name)
                (dest / (src.name + ".gz")).unlink(missing_ok=True)
    summ = json.loads((out / f"{seed}_wannier_summary.json").read_text())
    summ["timing_s"] = {"wannier_models (DFT runs + Wannierisation, resumed parts not counted)": round(t_w, 1),
                        "band_path_checks": round(t_p, 1)}
    summ["dft_runs"] = {r: json.loads((wd / r / "summary.json").read_text()) for r in ("FM_wannier", "NM_wannier")}
    for r in summ["dft_runs"].values():
        r["parameters"].pop("positions", None)
    write_json_atomic(dest / f"{seed}_wannier_summary.json", summ)
    print(f"{mat} Wannier: " + ", ".join(f"{c}: spread ≤ {r.max_spread:.2f} Å², offset ≤ {r.max_centre_offset:.2f} Å, "
                                         f"mesh error {r.band_error_meV:.2f} meV" for c, r in res.items())
          + f"; path errors {path_err} meV", flush=True)


STAGES = {"cri3-energies": lambda w: energies("CrI3", w), "cri3-wannier": lambda w: wannier("CrI3", w),
          "vps3-energies": lambda w: energies("VPS3", w), "vps3-wannier": lambda w: wannier("VPS3", w)}

if __name__ == "__main__":
    sys.exit(run_stages(STAGES, __doc__, "/work/runs"))
