"""Force-theorem spin–orbit energies of collinear orders (data/dft/<material>_soc_fast.json), the input of
``wannmag.magnetism.anisotropy.collinear.fit_soc_records`` (single-ion A, XXZ λ_k, Kitaev K, Γ, Γ′ from DFT).

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 nice -n 10 python data/dft/make_soc.py CrI3 /work/runs/demo_cri3/dft

Reads (read-only) the converged collinear ground states ``<dft>/{FM,Neel,zigzag,stripy}_rect/*.gpw`` of a
``wannmag run --preset fast`` (LCAO dzp, PBE + U, all four orders in the same rectangular 4-site cell, empty bands
converged by construction in LCAO), evaluates ``gpaw.spinorbit.soc_eigenstates(...).calculate_band_energy()`` for
the direction set ``soc_directions(structure, extra_random=6)`` (z, −z, x, y, the Cartesian diagonals, the cubic
axes of the NN bonds and their face diagonals, 6 random directions; θ, φ in degrees) and writes the energies in meV
per cell with provenance (gpw path, size, sha256, the run's summary.json settings, GPAW version, date, timings).
Nothing is written next to the .gpw files.  Each order is fitted for its own constant: only energy differences
between directions within one order are used.
"""

import hashlib
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from wannmag.magnetism.anisotropy.collinear import (
    fit_soc_records,
    gpaw_soc_record,
    soc_directions,
)

DATA = Path(__file__).resolve().parent
STRUCTURES = DATA.parent / "structures"
ORDERS = ("FM", "Neel", "zigzag", "stripy")
ELEMENTS = {"CrI3": ["Cr"], "VPS3": ["V"]}


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main(material: str, dft_dir: str, out: str | None = None) -> Path:
    structure = STRUCTURES / f"{material}_monolayer.cif"
    dft = Path(dft_dir)
    dirs = soc_directions(structure, extra_random=6)
    t0 = time.perf_counter()
    records = {}
    for o in ORDERS:
        run = dft / f"{o}_rect"
        gpws = sorted(run.glob("*.gpw"))
        if not gpws:
            raise SystemExit(f"{run}: no .gpw file")
        rec = gpaw_soc_record(gpws[0], dirs, magnetic_elements=ELEMENTS.get(material))
        summ = json.loads((run / "summary.json").read_text())
        par = summ.get("parameters", {})
        rec["gpw_bytes"] = gpws[0].stat().st_size
        rec["gpw_sha256"] = sha256(gpws[0])
        rec["dft"] = {k: par.get(k) for k in ("preset", "mode", "basis", "xc", "U", "kpts", "smearing", "h",
                                                "nbands", "converge_bands")}
        rec["dft"].update({"energy_eV": summ.get("energy"), "gap_eV": summ.get("gap"),
                           "site_moments_muB": summ.get("site_moments"), "code_version": summ.get("code_version"),
                           "summary_pattern": summ.get("pattern")})
        if summ.get("pattern") is not None and list(summ["pattern"]) != rec["pattern"]:
            raise SystemExit(f"{run}: moment signs {rec['pattern']} differ from the summary's pattern {summ['pattern']}")
        records[o] = rec
        print(f"{o}: {len(dirs)} directions in {rec['seconds']['soc_total']:.1f} s", flush=True)
    doc = {"material": material, "structure": str(structure.relative_to(DATA.parent.parent)),
           "structure_sha256": sha256(structure), "dft_dir": str(dft.resolve()),
           "method": "GPAW force theorem: soc_eigenstates(calc, theta, phi).calculate_band_energy() on the converged "
                     "collinear ground state of each order (no self-consistency with SOC)",
           "convention": "theta from z (layer normal), phi from x (a1), degrees; energies meV per cell of the order "
                         "(4 magnetic ions, rectangular cell); only differences within one order are meaningful",
           "date": datetime.now(UTC).isoformat(timespec="seconds"),
           "script": "data/dft/make_soc.py", "seconds_total": round(time.perf_counter() - t0, 1), "orders": records}
    fit = fit_soc_records(records, structure)
    doc["fit_at_creation"] = fit.as_dict()
    path = Path(out) if out else DATA / f"{material}_soc_fast.json"
    path.write_text(json.dumps(doc, indent=1) + "\n")
    print(fit.table())
    return path


if __name__ == "__main__":
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    main(*sys.argv[1:4])
