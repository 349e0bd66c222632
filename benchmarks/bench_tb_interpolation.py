"""Benchmark: band interpolation of a 22-orbital Wannier model at 10^4 k-points, wannmag vs wannierberri.

Model: a 1T-MX2 d–p Slater–Koster layer in a 2×1 cell (2 M with d, 4 X with p = 22 orbitals; dd up to the 3rd
neighbour, pd and pp nearest neighbours), written as Wannier90 files folded onto a 6×6×1 grid (Wigner–Seitz
degeneracies 1–3), and read back by both codes from the same ``_hr.dat``.

wannmag: ``TBModel.eigenvalues`` (H(k) = one complex matrix product over the R > 0 half of the R vectors using
H(−R) = H(R)†, then batched ``eigvalsh`` with one BLAS thread).  wannierberri: its own interpolation, ``Data_K_R``
for a k list (``HH_K`` then ``E_K``) — the leanest wannierberri route to band energies at arbitrary k.

Run: ``python benchmarks/bench_tb_interpolation.py [--nk 10000] [--repeat 3]``.  Prints timings, the speed-up
ratio and the largest band-energy difference (must be < 1e-8 eV).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from ase import Atoms

from wannmag.tightbinding import read_w90_seed, slater_koster_model, write_w90_model
from wannmag.tightbinding.w90 import _quiet, check_hr_file


def model_22():
    a, h = 3.5, 1.55
    cell = np.array([[a, 0, 0], [-a / 2, a * np.sqrt(3) / 2, 0], [0, 0, 20.0]])
    frac = [(0, 0, 0.5), (1 / 3, 2 / 3, 0.5 + h / 20), (2 / 3, 1 / 3, 0.5 - h / 20)]
    at = Atoms("VSe2", scaled_positions=frac, cell=cell, pbc=True).repeat((2, 1, 1))
    order = np.argsort([0 if s == "V" else 1 for s in at.get_chemical_symbols()], kind="stable")
    at = at[order]
    params = dict(pds=-1.1, pdp=0.5, dds=-0.25, ddp=0.12, ddd=-0.03, pps=0.45, ppp=-0.1,
                  cutoff={"dd": 2 * a + 0.1}, d0={"dd": a}, eta={"dd": 5.0})
    return slater_koster_model(at, d_atoms="V", p_atoms="Se", params=params, eps_d=0.5, eps_p=-1.8,
                               crystal_field=[0.1, -0.05, -0.05, 0.0, 0.0], name="1T-VSe2 2x1 d-p")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nk", type=int, default=10000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)

    sk = model_22()
    tmp = Path(tempfile.mkdtemp(prefix="bench_tb_"))
    write_w90_model(sk, tmp / "m22", mp_grid=(6, 6, 1))
    ours = read_w90_seed(tmp / "m22", mdrs=False)
    with _quiet():
        from wannierberri.data_K import get_data_k_class_from_system
        from wannierberri.grid import Path as WBPath
        from wannierberri.system import System_R

        system = System_R.from_hr_file(str(tmp / "m22"), wannier_centers_cart=ours.centres,
                                       real_lattice=ours.lattice)
    cls = get_data_k_class_from_system(system)
    k = np.random.default_rng(42).random((args.nk, 3))
    k[:, 2] = 0.0

    def run_wb():
        with _quiet():
            data = cls(system, grid=WBPath(system=system, k_list=k), k_list=k)
            return np.array(data.E_K)

    def run_wb_hk():
        with _quiet():
            data = cls(system, grid=WBPath(system=system, k_list=k), k_list=k)
            return np.array(data.HH_K)

    def best(f):
        times, out = [], None
        for _ in range(args.repeat):
            t = time.perf_counter()
            out = f()
            times.append(time.perf_counter() - t)
        return min(times), out

    t_ours, E_ours = best(lambda: ours.eigenvalues(k))
    t_hk, _ = best(lambda: ours.hk(k))
    t_wb, E_wb = best(run_wb)
    t_wb_hk, H_wb = best(run_wb_hk)
    diff = float(np.abs(E_ours - E_wb).max())
    diff_h = float(np.abs(ours.hk(k) - H_wb).max())
    ndeg = check_hr_file(tmp / "m22_hr.dat").ndegen
    print(f"model: {sk.name}, {ours.num_wann} orbitals, {ours.nR} R vectors (Wannier90 hr file, 6x6x1 grid, "
          f"Wigner–Seitz degeneracies {sorted(set(ndeg.tolist()))})")
    print(f"k-points: {len(k)} random (kz = 0); best of {args.repeat}")
    print(f"bands  wannmag TBModel.eigenvalues : {t_ours:8.3f} s   wannierberri Data_K_R.E_K  : {t_wb:8.3f} s   "
          f"ratio {t_wb / t_ours:.1f}x")
    print(f"H(k)   wannmag TBModel.hk          : {t_hk:8.3f} s   wannierberri Data_K_R.HH_K : {t_wb_hk:8.3f} s   "
          f"ratio {t_wb_hk / t_hk:.1f}x")
    print(f"speed-up (wannierberri / wannmag), bands: {t_wb / t_ours:.1f}x")
    print(f"max |E_wannmag − E_wannierberri| = {diff:.2e} eV, max |H_wannmag − H_wannierberri| = {diff_h:.2e} eV")
    if diff > 1e-8 or diff_h > 1e-8:
        raise SystemExit("band energies disagree by more than 1e-8 eV")
    if t_ours >= t_wb:
        raise SystemExit("wannmag is not faster than wannierberri")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
