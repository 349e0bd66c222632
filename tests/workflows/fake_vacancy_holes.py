"""A fake DFT engine for the neutral vacancy cell (tests/workflows/test_vacancy_neutral.py) and a synthetic
``--from DIR`` of VPS3 energies.

:class:`HoleEngine` gives every SCF the classical energy of a known model with spins of different length, computed
from the geometry of the configuration alone (an independent code path: its own bond search by distance, the hole
sites read from the start moments, the vacancy found as the missing site of the full supercell), not from the
package's bond classes.  Convention: E = E0 + Σ_{bonds i<j, each once} J_class S_i S_j σ_i σ_j / 1000 (eV per cell,
J in meV, J > 0 AF), S = 3/2 on V2+ sites and 1 on hole (V3+) sites.  Module-level and picklable, so that local
worker processes and Dask workers can run it; every call is appended to ``<log_dir>/calls.log``.
"""

from __future__ import annotations

import itertools
import os
import shutil
import time
from pathlib import Path

import numpy as np

from wannmag.errors import WannmagError


class FakeSCFError(WannmagError):
    """An SCF of the fake engine that did not converge."""


class Crash(RuntimeError):
    """A simulated crash of the whole run (not an unconverged SCF)."""


def _shells(sub, supercell):
    """The three shortest distinct site–site distances (Å) of the perfect supercell."""
    from wannmag.structures import honeycomb_configuration

    full = honeycomb_configuration(sub, "FM", supercell=supercell)
    pos = full.sublattice.positions
    C = full.atoms.cell.array
    d = set()
    for i, j in itertools.combinations(range(len(pos)), 2):
        for a, b in itertools.product((-1, 0, 1), repeat=2):
            d.add(round(float(np.linalg.norm(pos[j] + a * C[0] + b * C[1] - pos[i])), 3))
    return sorted(d)[:3], full


class HoleEngine:
    engine_name = "fake-holes"

    def __init__(self, structure, J: dict, log_dir, e_site=-28.0, spin=1.5, moved=(), unconverged=(),
                 overlap=(), crash_after=None, meet=(), placement_bonus=None):
        self.structure = str(structure)
        self.J = dict(J)
        self.log_dir = str(log_dir)
        self.e_site = e_site
        self.spin = spin
        self.moved = set(moved)              # configurations whose holes end on other sites
        self.unconverged = set(unconverged)  # configurations whose SCF does not converge
        self.overlap = set(overlap)          # fixed-moment configurations with overlapping spin channels
        self.crash_after = crash_after       # raise Crash once this many calls are logged
        self.meet = set(meet)                # these configurations must all be running at the same time
        self.placement_bonus = dict(placement_bonus or {})  # eV added when the holes sit on exactly these sites

    def calls(self) -> list[str]:
        f = Path(self.log_dir) / "calls.log"
        return f.read_text().split() if f.exists() else []

    def _meet(self, name: str, timeout: float = 60.0) -> None:
        d = Path(self.log_dir) / "meet"
        d.mkdir(exist_ok=True)
        (d / name).write_text(str(os.getpid()))
        t0 = time.time()
        while not all((d / n).exists() for n in self.meet):
            if time.time() - t0 > timeout:
                raise RuntimeError(f"{name} waited {timeout} s alone: the SCFs ran one after the other")
            time.sleep(0.05)

    def energy_and_holes(self, conf):
        from wannmag.structures import find_magnetic_sites

        sub = find_magnetic_sites(self.structure)
        (d1, d2, d3), full = _shells(sub, conf.supercell)
        vac = full.sublattice.positions[conf.vacancies[0]]
        C = full.atoms.cell.array
        pos = conf.sublattice.positions
        m0 = conf.atoms.get_initial_magnetic_moments()[conf.sublattice.indices]
        S = np.abs(m0) / 2.0
        sig = np.sign(m0)
        hole = S < self.spin - 1e-9

        def near(i):
            return min(np.linalg.norm(pos[i] + a * C[0] + b * C[1] - vac)
                       for a, b in itertools.product((-1, 0, 1), repeat=2)) < d1 + 0.01

        e = 0.0
        for i, j in itertools.combinations(range(len(pos)), 2):
            for a, b in itertools.product((-1, 0, 1), repeat=2):
                r = np.linalg.norm(pos[j] + a * C[0] + b * C[1] - pos[i])
                if abs(r - d1) < 0.01:
                    nh = int(hole[i]) + int(hole[j])
                    cls = ("V3-V3" if nh == 2 else "V2-V3" if nh == 1 else
                           "next_to_vacancy" if near(i) or near(j) else "V2-V2_bulk")
                elif abs(r - d2) < 0.01:
                    cls = "J2"
                elif abs(r - d3) < 0.01:
                    cls = "J3"
                else:
                    continue
                e += self.J[cls] * S[i] * S[j] * sig[i] * sig[j]
        sites = tuple(int(k) for k in np.flatnonzero(hole))
        return e / 1000.0 + self.e_site * len(pos) + self.placement_bonus.get(sites, 0.0), hole, sig

    def __call__(self, structure, conf, preset, U, workdir, smearing=None, mixer=None, maxiter=None,
                 density_tol=None, fixmagmom=False):
        if self.crash_after is not None and len(self.calls()) >= self.crash_after:
            raise Crash("simulated crash")
        with open(Path(self.log_dir) / "calls.log", "a") as fh:
            fh.write(conf.name + "\n")
        assert smearing == 0.1 and mixer == {"beta": 0.02, "nmaxold": 8, "weight": 100.0}
        assert fixmagmom is True and density_tol == 1e-4 and maxiter == 200
        if conf.name in self.meet:
            self._meet(conf.name)
        if conf.name in self.unconverged:
            raise FakeSCFError(f"{workdir}/{conf.name}/gpaw.txt: GPAW calculation failed (KohnShamConvergenceError: "
                               "Did not converge!)")
        e, hole, sig = self.energy_and_holes(conf)
        if not hole.any():  # nothing placed: the holes settle next to the vacancy by themselves (sites 0, 2)
            hole = np.isin(np.arange(len(sig)), [0, 2])
        if conf.name in self.moved:  # the holes leave their sites for the two farthest V2+ sites
            hole = np.isin(np.arange(len(sig)), [k for k in range(len(sig)) if not hole[k]][-2:])
        mag = np.where(hole, 1.85, 2.47) * sig
        return {"energy": e, "site_moments": mag.tolist(), "total_moment": float(np.round(mag.sum())),
                "gap": 0.3, "gaps": [0.3, 2.2], "fermi_level": None, "warnings": [],
                "extra": {"scf_iterations": 31, "fermi_levels_eV": [-1.5, -0.9],
                          "common_gap_eV": -0.4 if conf.name in self.overlap else 0.3}}


def vps3_from_dir(d, J123, repo, e_site=-28.0):
    """VASP outputs (vasprun.xml + OUTCAR) of FM, Néel, zigzag, stripy of the VPS3 monolayer with the energies of a
    J1–J3 model (meV, S = 3/2, J > 0 AF; E0 = ``e_site`` eV per V) and the CIF beside them: ``wannmag run --from d``."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from make_synthetic import outcar, vasprun

    from wannmag.magnetism import SpinModel
    from wannmag.magnetism.energy_mapping import model_energies
    from wannmag.structures import find_magnetic_sites, neighbour_shells, standard_configurations

    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    cif = Path(repo) / "data" / "structures" / "VPS3_monolayer.cif"
    shutil.copy(cif, d / cif.name)
    sub = find_magnetic_sites(str(cif))
    model = SpinModel.from_sublattice(sub)
    for J, sh in zip(J123, neighbour_shells(sub, 3)):
        for b in sh.bonds:
            model.add_bond(b.i, b.j, b.R, J)
    configs = standard_configurations(sub)
    energies = model_energies(model, configs) / 1000 + e_site * np.array([c.n_sites for c in configs])
    for c, e in zip(configs, energies):
        (d / c.name).mkdir()
        vasprun(c.atoms, e, d / c.name / "vasprun.xml")
        outcar(c.atoms, e, c.atoms.get_initial_magnetic_moments() * 0.82, d / c.name / "OUTCAR")
    return d
