"""Why the ``fast`` preset's CrI3 exchange is too large: E(Néel) − E(FM) of the CrI3 monolayer (primitive cell,
PBE + U = 3 eV on Cr d, GPAW 26.7) with LCAO basis sets against plane waves.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python data/dft/basis_study_cri3.py WORKDIR

E(Néel) − E(FM) per Cr = 3 (J1 + J3) S² (H = Σ_{i<j} J_ij S_i·S_j, each bond once, |S| = 3/2, J > 0 AF, meV), so
its relative error is the relative error of J1 + J3.  Runs (each in WORKDIR/<label>/, resumable through run_dft):

- LCAO dzp (the ``fast`` preset, from gpaw-data) at h = 0.20 and 0.15 Å: grid convergence;
- LCAO tzdp and the "extended" dzp/tzdp (energy shift 0.01 eV instead of 0.1 eV: longer-ranged orbitals), generated
  offline by ``gpaw-basis`` into WORKDIR/basis (seconds; nothing is downloaded);
- PW 350 eV on a 4×4 mesh (k density 3.7 Å) against the ``accurate`` reference (PW 450 eV, 6×6; data/dft).

Writes data/dft/CrI3_basis_study.json (energies, differences, wall times).  The force-theorem SOC energy
E_in − E_out of the PW 350 eV FM state (``gpaw_mae``) is recorded too.
"""

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from ase.io import read

DATA = Path(__file__).resolve().parent
CIF = DATA.parent / "structures" / "CrI3_monolayer.cif"
LCAO = [("dzp", 0.20, None), ("dzp", 0.15, None), ("tzdp", 0.20, ["-t", "tzdp"]),
        ("e01.dzp", 0.20, ["-t", "dzp", "-E", "0.01", "-n", "e01"]),
        ("e01.tzdp", 0.20, ["-t", "tzdp", "-E", "0.01", "-n", "e01"])]


def main(workdir: str) -> None:
    from gpaw import setup_paths

    from wannmag.workflows import dft
    from wannmag.workflows.dft import gpaw_version, run_dft

    wd = Path(workdir)
    basis_dir = wd / "basis"
    basis_dir.mkdir(parents=True, exist_ok=True)
    setup_paths.insert(0, str(basis_dir))
    structure = read(CIF)
    rows = []

    def pair(label, preset, **kw):
        row = {"label": label}
        for conf in ("FM", "Neel"):
            rec = run_dft(structure, conf, preset=preset, workdir=str(wd / label), log=False, **kw)
            row[f"E_{conf}_eV"] = rec.energy
            row[f"time_{conf}_s"] = rec.timings.get("total")  # of the SCF run itself (also when resumed)
        row["dE_Neel_FM_meV_per_Cr"] = 1000 * (row["E_Neel_eV"] - row["E_FM_eV"]) / 2
        rows.append(row)
        print(json.dumps(row), flush=True)
        return row

    for name, h, gen in LCAO:
        if gen is not None and not (basis_dir / f"Cr.{name}.basis").exists():
            subprocess.run(["gpaw-basis", *gen, "Cr", "I"], cwd=basis_dir, check=True, capture_output=True)
        # run_dft has no basis option: this study swaps the fast preset (in this process only)
        dft.PRESETS["fast"] = {"mode": "lcao", "basis": name, "h": h, "kdensity": 5.5}
        pair(f"lcao_{name}_h{h}", "fast")
    pair("pw_350eV_k3.7", "accurate", ecut=350.0, kdensity=3.7)

    from wannmag.magnetism.anisotropy import gpaw_mae

    mae = gpaw_mae(wd / "pw_350eV_k3.7" / "FM")
    soc = (mae.energy_of(90.0, 0.0) - mae.energy_of(0.0)) / mae.n_magnetic
    ref = json.loads((DATA / "CrI3_energies.json").read_text())
    out = {"what": "E(Neel) - E(FM) of the CrI3 monolayer, primitive cell, LCAO basis sets vs plane waves",
           "command": f"python data/dft/basis_study_cri3.py {workdir}", "gpaw": gpaw_version(),
           "date": datetime.now(UTC).strftime("%Y-%m-%d"), "U_eV": 3.0,
           "structure": str(CIF.relative_to(DATA.parent.parent)),
           "convention": "dE = E_Neel - E_FM per Cr = 3 (J1 + J3) S^2, H = sum_{i<j} J_ij S_i.S_j, |S| = 3/2, J > 0 AF",
           "rows": rows, "pw_350_fm_soc_E_in_minus_E_out_meV_per_Cr": soc,
           "reference_accurate_dE_Neel_FM_meV_per_Cr": ref["configurations"]["Neel"]["dE_meV_per_ion_vs_FM"],
           "note": "wall times are single-process runs with the other core busy"}
    (DATA / "CrI3_basis_study.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "basis_study")
