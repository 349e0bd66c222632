"""Magnetic force theorem: wannmag vs TB2J on the same Wannier90 files, side by side (J1–J3 and wall time).

TB2J pins scipy < 1.17, so it lives in its own virtual environment (default /work/bench-tb2j):

    python3 -m venv /work/bench-tb2j && /work/bench-tb2j/bin/pip install TB2J "scipy<1.17"

Usage (from the repository root, wannmag's venv active):

    python benchmarks/bench_mft_tb2j.py                       # synthetic CrI3-like Slater–Koster d–p model
    python benchmarks/bench_mft_tb2j.py --wannier data/dft/CrI3 --prefix-up CrI3_up --prefix-dn CrI3_dn \
        --nelect 42                                           # a real collinear Wannier90 pair
    python benchmarks/bench_mft_tb2j.py --wannier data/dft/CrI3 --prefix-up CrI3_up --prefix-dn CrI3_dn \
        --nelect 42 --kmesh 24 24 1 --nz 120 --old-rev 40af623 --repeat 5
                                                          # wannmag now vs wannmag at git revision REV (same J?)

TB2J is given ``_hr.dat`` + ``_centres.xyz`` + the ``.win`` and a POSCAR only (never ``_tb.dat``: TB2J misplaces
Wannier centres of a slab centred at z = c/2 when reading it).  Both codes run on one core with the same k-mesh and
the same number of contour points: the BLAS/OpenMP thread variables are set to 1 at the top of this script, before
numpy is imported (set after the import they do not reach numpy's already started BLAS, and wannmag ran on 2 BLAS
threads against TB2J's 1), and passed to TB2J's process.  Printed J's are in TB2J's convention
(E = −Σ_{i≠j} J e_i·e_j, unit spins, meV, positive = FM) so the two columns compare directly.
"""

from __future__ import annotations

import os

# one BLAS/OpenMP thread for both codes: must happen before numpy (or anything importing it) is imported
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
for _var in THREAD_VARIABLES:
    os.environ[_var] = "1"

import argparse  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402


def synthetic(workdir: Path):
    """CrI3-like Slater–Koster model written as a Wannier90 up/down pair; returns (dir, prefix_up, prefix_dn, nelect)."""
    from wannmag.structures import cri3_monolayer
    from wannmag.tightbinding.slater_koster import slater_koster_model
    from wannmag.tightbinding.w90 import write_w90_model

    at = cri3_monolayer()
    p = dict(pds=-0.6, pdp=0.3, dds=-0.05, ddp=0.025, pps=0.25, ppp=-0.075)
    kw = dict(d_atoms=["Cr"], p_atoms=["I"], params=p, eps_p=-2.5, crystal_field=(-0.3, 0.6))
    for spin, eps in (("up", -1.5), ("dn", 1.5)):
        model = slater_koster_model(at, eps_d=eps, spin="up" if spin == "up" else "down", **kw)
        write_w90_model(model, workdir / f"cri3_{spin}", mp_grid=(6, 6, 1))
    return workdir, "cri3_up", "cri3_dn", 42.0


def blas_threads() -> str:
    """The BLAS thread count numpy runs with (threadpoolctl if installed, else the environment variables)."""
    try:
        from threadpoolctl import threadpool_info

        info = [f"{x.get('internal_api')} {x.get('num_threads')}" for x in threadpool_info()
                if x.get("user_api") == "blas"]
        return ", ".join(info) or "no BLAS found by threadpoolctl"
    except ImportError:
        return f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')} (threadpoolctl not installed)"


def load_old_mft(rev: str):
    """wannmag.magnetism.mft as it was at git revision ``rev`` (imported as a sibling module of the current one, so
    its relative imports resolve against the current package)."""
    import importlib.util

    root = Path(__file__).resolve().parents[1]
    src = subprocess.run(["git", "show", f"{rev}:wannmag/magnetism/mft.py"], cwd=root, capture_output=True,
                         text=True, check=True).stdout
    path = Path(tempfile.mkdtemp(prefix="bench_mft_old_")) / "mft_old.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("wannmag.magnetism._mft_old", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def compare_revisions(ham, rev: str, kmesh, nz, nel, rcut, repeat) -> int:
    """The force theorem now and at git revision ``rev`` on the same model, timed alternately (median of ``repeat``
    runs each), and the largest difference of the J's."""
    from wannmag.magnetism import mft as new

    old = load_old_mft(rev)
    kw = dict(kmesh=tuple(kmesh), n_electrons=nel, n_energy=nz, rcut=rcut)
    t_old, t_new, c_old, c_new = [], [], [], []
    for _ in range(repeat):  # alternate, so that a load change on the shared machine hits both
        for mod, times, cpu in ((old, t_old, c_old), (new, t_new, c_new)):
            t0, c0 = time.perf_counter(), time.process_time()
            res = mod.lkag_exchange(ham, **kw)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            if mod is old:
                r_old = res
            else:
                r_new = res
    diff = float(np.max(np.abs(r_new.J_lkag - r_old.J_lkag)))
    rel = diff / float(np.max(np.abs(r_old.J_lkag)))
    print(f"k-mesh {list(kmesh)}, {nz} contour points, {len(r_new.bonds)} bonds, {ham.nw} orbitals; "
          f"BLAS threads: {blas_threads()}")
    print(f"{'':>14} {'wall median (s)':>15} {'min (s)':>8} {'CPU median (s)':>14}  wall times of the runs")
    for name, t, c in ((f"old {rev[:10]}", t_old, c_old), ("new", t_new, c_new)):
        print(f"{name:>14} {statistics.median(t):15.3f} {min(t):8.3f} {statistics.median(c):14.3f}  "
              + " ".join(f"{x:.3f}" for x in t))
    print(f"speed-up (median old / median new): wall {statistics.median(t_old) / statistics.median(t_new):.2f}x, "
          f"CPU {statistics.median(c_old) / statistics.median(c_new):.2f}x; "
          f"max |J_new − J_old| = {diff:.2e} meV (relative {rel:.1e})")
    return 0 if rel < 1e-10 else 1


def parse_tb2j(path: Path) -> dict[tuple, float]:
    """J_iso (meV) per (i, j, R) from TB2J's exchange.out (labels mapped to the order of appearance)."""
    text = path.read_text()
    out, labels = {}, {}
    for m in re.finditer(r"^\s*(\w+)\s+(\w+)\s+\(\s*(-?\d+),\s*(-?\d+),\s*(-?\d+)\)\s+(-?[\d.]+)", text, re.M):
        a, b = m.group(1), m.group(2)
        for lab in (a, b):
            labels.setdefault(lab, len(labels))
        R = tuple(int(m.group(k)) for k in (3, 4, 5))
        out[(labels[a], labels[b], R)] = float(m.group(6))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wannier", type=Path, help="directory with the Wannier90 pair (default: synthetic model)")
    ap.add_argument("--prefix-up")
    ap.add_argument("--prefix-dn")
    ap.add_argument("--nelect", type=float)
    ap.add_argument("--kmesh", type=int, nargs=3, default=[9, 9, 1])
    ap.add_argument("--nz", type=int, default=100)
    ap.add_argument("--rcut", type=float, default=8.5)
    ap.add_argument("--tb2j", default="/work/bench-tb2j/bin/wann2J.py")
    ap.add_argument("--repeat", type=int, default=3, help="timings are the best of this many runs")
    ap.add_argument("--keep", type=Path, help="copy TB2J's exchange.out (and the command) to this file")
    ap.add_argument("--old-rev", metavar="REV", help="instead of TB2J: compare with wannmag's force theorem at git "
                    "revision REV (median times, largest J difference)")
    args = ap.parse_args(argv)

    from wannmag.magnetism.mft import hamiltonian_from_tb, lkag_exchange
    from wannmag.tightbinding import read_w90

    tmp = Path(tempfile.mkdtemp(prefix="bench_mft_"))
    if args.wannier is None:
        wdir, pu, pd, nel = synthetic(tmp)
    else:
        wdir, pu, pd, nel = args.wannier, args.prefix_up, args.prefix_dn, args.nelect
    model = read_w90(Path(wdir) / pu.rsplit("_up", 1)[0], kind="collinear")
    ham = hamiltonian_from_tb(model)
    if args.old_rev:
        return compare_revisions(ham, args.old_rev, args.kmesh, args.nz, nel, args.rcut, args.repeat)

    times = []
    for _ in range(args.repeat):  # best of N: the machine may be shared
        t0 = time.perf_counter()
        ours = lkag_exchange(ham, kmesh=tuple(args.kmesh), n_electrons=nel, n_energy=args.nz, rcut=args.rcut)
        times.append(time.perf_counter() - t0)
    t_ours = min(times)

    if not Path(args.tb2j).exists():
        print(f"TB2J not found at {args.tb2j}; wannmag alone: {t_ours:.2f} s")
        print(ours.table())
        return 1
    run = tmp / "tb2j"
    run.mkdir()
    for f in Path(wdir).glob("*"):
        if f.name.startswith((pu, pd)) and not f.name.endswith("_tb.dat"):
            shutil.copy(f, run / f.name)
    import ase.io

    ase.io.write(run / "POSCAR", model.atoms, format="vasp")
    emin = float(min(np.linalg.eigvalsh(ham.hk(np.zeros((1, 3)), s)).min() for s in (0, 1))) - 1.0 - ours.efermi
    cmd = [str(Path(args.tb2j).parent / "python"), args.tb2j, "--path", str(run),
           "--posfile", "POSCAR", "--prefix_up", pu, "--prefix_down", pd, "--elements", *sorted(set(ham.elements)),
           "--kmesh", *map(str, args.kmesh), "--efermi", f"{ours.efermi:.6f}", "--emin", f"{emin:.3f}",
           "--emax", "0.0", "--nz", str(args.nz), "--rcut", str(args.rcut), "--np", "1",
           "--output_path", str(run / "TB2J_results")]
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=run, capture_output=True, text=True,
                              env={**os.environ, **{v: "1" for v in THREAD_VARIABLES}})
        times.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            break
    t_tb2j = min(times)
    if proc.returncode != 0:
        print(proc.stdout[-2000:], proc.stderr[-3000:])
        return 1
    theirs = parse_tb2j(run / "TB2J_results" / "exchange.out")
    if args.keep is not None:
        shutil.copy(run / "TB2J_results" / "exchange.out", args.keep)
        args.keep.with_suffix(".cmd").write_text(" ".join(cmd[1:]).replace(str(run), "<dir>") + "\n")
    print(f"k-mesh {args.kmesh}, {args.nz} contour points, E_F = {ours.efermi:.4f} eV; wannmag's BLAS threads: "
          f"{blas_threads()}, TB2J: --np 1 and the same thread variables")
    print(f"{'bond':>22} {'d (Å)':>7} {'wannmag':>10} {'TB2J':>10} {'diff':>8}   (J in TB2J convention, meV)")
    diffs = []
    for (a, b, R), d, J in zip(ours.bonds, ours.distances, ours.J_lkag):
        key = (a, b, tuple(R))
        alt = (b, a, tuple(-x for x in R))
        Jt = theirs.get(key, theirs.get(alt))
        if Jt is None:
            continue
        diffs.append(abs(J - Jt))
        print(f"{str((a, b, list(R))):>22} {d:7.3f} {J:10.4f} {Jt:10.4f} {J - Jt:8.4f}")
    print(f"max |difference| = {max(diffs):.4f} meV over {len(diffs)} bonds")
    print(f"time (best of {args.repeat}, TB2J includes its ~2 s start-up): wannmag {t_ours:.2f} s, "
          f"TB2J {t_tb2j:.2f} s, ratio TB2J/wannmag = {t_tb2j / t_ours:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
