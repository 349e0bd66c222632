"""Benchmark of wannmag's Heisenberg Metropolis kernel (issue 7).

Spin updates per second per core of ``wannmag.magnetism.montecarlo.kernels.metropolis_sweep`` against

1. a plain C loop of the same update (benchmarks/bench_mc_kernel.c: same lattice arrays, same cone proposal, same
   xoshiro256** stream), compiled here with ``gcc -O3`` in a temporary directory; the two are also checked to give
   the same trajectory;
2. mcsolver (PyPI package, C core), if it is installed in a separate venv (default /work/bench-venv; create it with
   ``python3 -m venv /work/bench-venv && /work/bench-venv/bin/pip install mcsolver numpy matplotlib``).  mcsolver's
   Heisenberg "Metropolis" picks random sites and proposes random reflections; its rate is measured as
   (ΔN_updates)/(Δtime) between two runs of different length, which removes its Python set-up cost.

Model (the same in all three): honeycomb J1–J3 + single-ion easy axis, in the wannmag convention
H = Σ_{i<j} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i (each bond once, spins of length S = 3/2, J > 0 antiferromagnetic, meV):
J1 = −2.0, J2 = −0.4, J3 = +0.1 meV, A_zz = −0.2 meV, at T = 40 K.  mcsolver uses the same Hamiltonian with
energies in K (J_K = J_meV / k_B).

Usage: python benchmarks/bench_mc.py [--L 48] [--sweeps 200] [--mcsolver-python /work/bench-venv/bin/python]
"""

from __future__ import annotations

import argparse
import ctypes
import math
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from wannmag.magnetism import Site, SpinModel  # noqa: E402
from wannmag.magnetism.montecarlo import build_lattice  # noqa: E402
from wannmag.magnetism.montecarlo.kernels import metropolis_sweep, seed_states  # noqa: E402
from wannmag.magnetism.spinmodel import MEV_PER_K  # noqa: E402

J1, J2, J3, AZZ, S, T_K = -2.0, -0.4, 0.1, -0.2, 1.5, 40.0
HEX = np.array([[1.0, 0.0, 0.0], [-0.5, math.sqrt(3) / 2, 0.0], [0.0, 0.0, 10.0]])
FRAC = [(2 / 3, 1 / 3, 0.0), (1 / 3, 2 / 3, 0.0)]
NN = [(0, 1, (0, 0, 0)), (0, 1, (1, 0, 0)), (0, 1, (0, -1, 0))]
NNN = [(i, i, R) for i in (0, 1) for R in [(1, 0, 0), (1, 1, 0), (0, 1, 0)]]
N3 = [(0, 1, (1, 1, 0)), (0, 1, (-1, 1, 0)), (0, 1, (1, -1, 0))]


def model() -> SpinModel:
    m = SpinModel(cell=HEX, sites=[Site(np.array(f) @ HEX, "Cr", S) for f in FRAC], pbc=(True, True, False),
                  single_ion=[np.diag([0.0, 0.0, AZZ])] * 2)
    for bonds, J in ((NN, J1), (NNN, J2), (N3, J3)):
        for i, j, R in bonds:
            m.add_bond(i, j, R, J)
    return m


def start_spins(lat, seed=0):
    v = np.random.default_rng(seed).normal(size=(lat.n_sites, 3))
    v[:, 2] += 3.0  # mostly ordered, as at 40 K
    return v / np.linalg.norm(v, axis=1)[:, None] * lat.slen[:, None]


def bench_numba(lat, n_sweeps, cos_max, beta):
    args = lat.kernel_args()
    ptr, nbr, Jiso, Jd, Jf, mode, A, hasA, orok, zee, slen = args
    s = start_spins(lat)
    rng = seed_states(1, 1)[0]
    metropolis_sweep(s, rng, beta, cos_max, ptr, nbr, Jiso, Jd, Jf, mode, A, hasA, zee, slen)  # compile
    best = 0.0
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(n_sweeps):
            metropolis_sweep(s, rng, beta, cos_max, ptr, nbr, Jiso, Jd, Jf, mode, A, hasA, zee, slen)
        best = max(best, n_sweeps * lat.n_sites / (time.perf_counter() - t))
    return best


def compile_c(tmp: Path):
    src = Path(__file__).with_name("bench_mc_kernel.c")
    so = tmp / "bench_mc_kernel.so"
    subprocess.run(["gcc", "-O3", "-fPIC", "-shared", "-o", str(so), str(src), "-lm"], check=True)
    lib = ctypes.CDLL(str(so))
    f = lib.metropolis_sweeps
    P = ctypes.c_void_p
    f.argtypes = [ctypes.c_long, ctypes.c_long, P, P, P, P, P, P, P, P, P, ctypes.c_double, ctypes.c_double]
    f.restype = ctypes.c_long
    return f


def _c_call(f, lat, s, rng, n, beta, cos_max):
    hasA = lat.hasA.astype(np.uint8)
    return f(n, lat.n_sites, lat.ptr.ctypes.data, lat.nbr.ctypes.data, lat.Jiso.ctypes.data, lat.A.ctypes.data,
             hasA.ctypes.data, lat.zee.ctypes.data, lat.slen.ctypes.data, s.ctypes.data, rng.ctypes.data, beta,
             cos_max)


def bench_c(f, lat, n_sweeps, cos_max, beta):
    s = start_spins(lat)
    rng = seed_states(1, 1)[0].copy()
    _c_call(f, lat, s, rng, 1, beta, cos_max)
    best = 0.0
    for _ in range(3):
        t = time.perf_counter()
        _c_call(f, lat, s, rng, n_sweeps, beta, cos_max)
        best = max(best, n_sweeps * lat.n_sites / (time.perf_counter() - t))
    return best


def same_trajectory(f, lat, cos_max, beta, n=20):
    a = start_spins(lat, 5)
    b = a.copy()
    ra = seed_states(9, 1)[0].copy()
    rb = ra.copy()
    args = lat.kernel_args()
    for _ in range(n):
        metropolis_sweep(a, ra, beta, cos_max, *args[:8], args[9], args[10])
    _c_call(f, lat, b, rb, n, beta, cos_max)
    return bool(np.array_equal(a, b) and np.array_equal(ra, rb)), float(np.abs(a - b).max())


def mcsolver_input(L, n_therm, n_sweep, T) -> str:
    """mcsolver v3.0 settings file for the benchmark model (energies in K)."""
    jk = [J / MEV_PER_K for J in (J1, J2, J3)]
    lines = ["This is mcsolver's save file, version: 3.0", "Lattice:"]
    lines += ["%.9f %.9f %.9f" % tuple(v) for v in np.array([[1, 0, 0], [-0.5, math.sqrt(3) / 2, 0], [0, 0, 1]])]
    lines += ["Supercell used in MC simulations:", f"{L} {L} 1", "Orbitals in cell:", "2",
              "Positions, initial spin states and onsite-anisotropy of every orbital:"]
    for k, f in enumerate(FRAC):
        lines.append(f"orb {k}: type 0 spin {S:.9f} pos [{f[0]:.9f} {f[1]:.9f} 0.000000000] Dx 0.000000000 "
                     f"Dy 0.000000000 Dz {AZZ / MEV_PER_K:.9f} h 0.000000000")
    bonds = [(b, jk[0]) for b in NN] + [(b, jk[1]) for b in NNN] + [(b, jk[2]) for b in N3]
    lines += ["Bonds:", str(len(bonds)), "id, source, target, overLat, exchange matrix elements of each bond:"]
    for k, ((i, j, R), J) in enumerate(bonds):
        lines.append(f"bond {k}: Jx {J:.9f} Jy {J:.9f} Jz {J:.9f} Jxy 0 Jxz 0 Jyz 0 Jyx 0 Jzx 0 Jzy 0 "
                     f"orb {i} to orb {j} over [{R[0]} {R[1]} {R[2]}]")
    lines += ["Temperature scanning region:", f"Tmin {T:.9f} Tmax {T:.9f} nT 1",
              "Field scanning region (in unit 1.48872 T, only if Kelvin and uB is used for energy and spin):",
              "Hmin 0.000000000 Hmax 0.000000000 nH 1", "Dipole long-range coupling:", "alpha 0.000000",
              "Measurement:", "measure the correlation function between orb0 and orb1 over [0 0 0]", "Supergroup",
              "OrbGroup:1", "Supergroup", "group0 orb0-orb0", ">>>       Topological section      <<<",
              "LocalCircuit per cell: 0 (set to 0 to skip the calc. for topo. Q)",
              ">>>   End of Topological section   <<<", "Distribution output frame: 0",
              "Sweeps for thermalization and statistics, and relaxiation step for each sweep:",
              f"{n_therm} {n_sweep} 0", "XAxis type:", "T", "Model type:", "Heisenberg", "Algorithm:", "Metropolis",
              "Ncores:", "1"]
    return "\n".join(lines) + "\n"


def bench_mcsolver(python: str, L: int, sweeps: int):
    """(updates per second, note) from two mcsolver runs of different length, or (None, reason)."""
    if not Path(python).exists():
        return None, f"{python} not found (mcsolver venv not created)"
    chk = subprocess.run([python, "-c", "import mcsolver"], capture_output=True, text=True)
    if chk.returncode != 0:
        return None, "mcsolver is not importable: " + chk.stderr.strip().splitlines()[-1]
    times = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in (sweeps // 4, sweeps):
            f = Path(tmp) / f"input_{n}"
            f.write_text(mcsolver_input(L, 0, n, T_K))
            code = textwrap.dedent(f"""
                import time, mcsolver
                if __name__ == '__main__':
                    t = time.perf_counter(); mcsolver.loadMC({str(f)!r}); print('ELAPSED', time.perf_counter() - t)
            """)
            res = subprocess.run([python, "-c", code], cwd=tmp, capture_output=True, text=True, timeout=3600)
            el = [ln for ln in res.stdout.splitlines() if ln.startswith("ELAPSED")]
            if res.returncode != 0 or not el:
                return None, "mcsolver run failed: " + (res.stderr.strip().splitlines() or ["?"])[-1]
            times[n] = float(el[0].split()[1])
    n_sites = 2 * L * L
    dn = (sweeps - sweeps // 4) * n_sites
    dt = times[sweeps] - times[sweeps // 4]
    return dn / dt, f"mcsolver {sweeps // 4} vs {sweeps} sweeps: {times[sweeps // 4]:.2f} s, {times[sweeps]:.2f} s"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--L", type=int, default=48)
    p.add_argument("--sweeps", type=int, default=200)
    p.add_argument("--mcsolver-python", default="/work/bench-venv/bin/python")
    p.add_argument("--mcsolver-sweeps", type=int, default=2000)
    args = p.parse_args(argv)
    if shutil.which("gcc") is None:
        sys.exit("gcc not found")
    lat = build_lattice(model(), args.L)
    beta = 1.0 / (MEV_PER_K * T_K)
    cos_max = math.cos(0.6)
    print(f"lattice: honeycomb {args.L}x{args.L}, {lat.n_sites} spins, {len(lat.nbr) // lat.n_sites} neighbours "
          f"per site (J1-J3), single-ion A_zz; T = {T_K} K, cone half-angle 0.6 rad; single thread")
    with tempfile.TemporaryDirectory() as tmp:
        f = compile_c(Path(tmp))
        same, diff = same_trajectory(f, lat, cos_max, beta)
        print(f"C and Numba kernels give the same trajectory over 20 sweeps: {same} (max |ΔS| = {diff:.1e})")
        r_numba = bench_numba(lat, args.sweeps, cos_max, beta)
        r_c = bench_c(f, lat, args.sweeps, cos_max, beta)
    print(f"wannmag Numba kernel : {r_numba / 1e6:8.2f} M spin updates/s per core")
    print(f"plain C (gcc -O3)    : {r_c / 1e6:8.2f} M spin updates/s per core")
    print(f"ratio Numba / C      : {r_numba / r_c:8.2f}  (target >= 0.5)")
    r_mcs, note = bench_mcsolver(args.mcsolver_python, args.L, args.mcsolver_sweeps)
    if r_mcs is None:
        print(f"mcsolver             : not measured — {note}")
    else:
        print(f"mcsolver (C core)    : {r_mcs / 1e6:8.2f} M spin updates/s per core  ({note})")
        print(f"ratio Numba / mcsolver: {r_numba / r_mcs:7.2f}")
    print(f"(machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
