"""``wannmag relax``: ionic (and optionally in-plane cell) relaxation with GPAW DFT+U in a collinear magnetic order.

Orchestration only: the calculator is the package's GPAW driver (:mod:`wannmag.workflows.dft` — the same preset,
PBE + Dudarev U on the metal d shell, start moments σ_i·2S μ_B of the configuration, Fermi–Dirac smearing and SCF
criteria as every DFT energy of ``wannmag run``), the optimizer is ASE's (BFGS or FIRE), the geometry analysis is the
structures layer's (:func:`wannmag.structures.analyse_structure`: M–X distances and M–X–M angles of the
superexchange paths).  Units: energies eV, forces eV/Å, stress eV/Å³ (GPa in the printed summary), lengths Å, angles
degrees.

Run directory (``workdir``)::

    parameters.json     identity of the calculation (DFT parameters of the start geometry + relaxation settings);
                        a directory holding another relaxation is never reused or overwritten (one-line error)
    checkpoint.traj     the last evaluated geometry (one ASE trajectory frame with its energy and forces and the
                        number of optimizer steps done), replaced atomically after every step
    relax.traj          every evaluated geometry (ASE trajectory, appended; for inspection)
    gpaw-<n>.txt        GPAW log of the n-th session (a resumed run starts a new one)
    relax.json          :class:`RelaxResult` (written atomically when a session ends: converged or steps exhausted)
    relaxed.cif         the relaxed structure — written **only** when the forces met the tolerance
    unconverged_last.cif  the last geometry of a relaxation that exhausted its steps (never called relaxed)

A killed run restarts from ``checkpoint.traj`` (the last geometry; the optimizer's Hessian starts afresh, and that
geometry's SCF is repeated once).  A finished relaxation with the same parameters is returned from ``relax.json``
without any calculation; one that ran out of steps continues when more steps are allowed.

Convergence: ASE's criterion, max_i |F_i| < ``fmax`` (eV/Å); with ``cell=True`` the in-plane stress enters through
:class:`ase.filters.FrechetCellFilter` (its generalised forces include the stress × volume / N_atoms), with a mask
that relaxes only the xx, yy and xy strain components — the layer normal and the out-of-plane lattice vector c stay
fixed (the layer must lie in the xy plane).  In-plane cell relaxation needs the stress tensor, which GPAW computes
in plane-wave mode only (``preset="accurate"``).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from ase.calculators.singlepoint import SinglePointCalculator
from ase.filters import FrechetCellFilter
from ase.io import read, write
from ase.io.trajectory import Trajectory
from ase.optimize import BFGS, FIRE

from .._atomic import atomic_write_text, jsonable
from ..errors import WannmagError
from ..structures import analyse_structure
from . import dft as _dft

__all__ = ["RelaxError", "RelaxResult", "relax_atoms", "relax_structure", "geometry_summary", "OPTIMIZERS",
           "IN_PLANE_MASK"]

OPTIMIZERS = ("BFGS", "FIRE")
#: FrechetCellFilter mask (Voigt order xx, yy, zz, yz, xz, xy): in-plane strain only
IN_PLANE_MASK = (True, True, False, False, False, True)
CHECKPOINT = "checkpoint.traj"
HISTORY = "relax.traj"
RESULT = "relax.json"
RELAXED = "relaxed.cif"
UNCONVERGED = "unconverged_last.cif"
PARAMETERS = "parameters.json"
EV_PER_A3_IN_GPA = 160.21766208


class RelaxError(WannmagError):
    """A relaxation cannot be set up, run or resumed."""


@dataclass
class RelaxResult:
    """Outcome of one relaxation (energies eV, forces eV/Å, stress GPa, lengths Å, angles degrees).

    ``converged`` is True only when the optimizer's force criterion (``fmax``; with ``cell_relaxed`` including the
    in-plane stress) was met; ``relaxed_file`` is then the relaxed structure.  An unconverged relaxation keeps
    ``relaxed_file = None`` and names its last geometry in ``last_geometry_file``; ``status`` says why.
    """

    structure: str
    converged: bool
    status: str
    fmax: float
    max_force: float | None = None
    max_stress_GPa: float | None = None
    steps: int = 0
    max_steps: int = 0
    sessions: int = 0
    energy_eV: float | None = None
    energy_initial_eV: float | None = None
    optimizer: str = "BFGS"
    cell_relaxed: bool = False
    order: str | None = None
    preset: str | None = None
    U: dict = field(default_factory=dict)
    relaxed_file: str | None = None
    last_geometry_file: str | None = None
    geometry_before: dict = field(default_factory=dict)
    geometry_after: dict = field(default_factory=dict)
    parameters: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return jsonable(asdict(self))

    @classmethod
    def from_dict(cls, d: dict) -> "RelaxResult":
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in names})

    def table(self) -> str:
        """Before/after geometry and the outcome, as printed by ``wannmag relax``."""
        head = ("converged" if self.converged else "NOT converged") + f": {self.status}"
        lines = [f"relaxation ({self.optimizer}{', in-plane cell' if self.cell_relaxed else ''}, order "
                 f"{self.order}, preset {self.preset}, U {self.U}): {head}",
                 f"  steps {self.steps} (limit {self.max_steps}, {self.sessions} session(s)), max force "
                 + ("n/a" if self.max_force is None else f"{self.max_force:.4f}") + f" eV/Å (tolerance {self.fmax:g})"
                 + ("" if self.max_stress_GPa is None else f", max in-plane stress {self.max_stress_GPa:.3f} GPa"),
                 "  energy " + ("n/a" if self.energy_eV is None else f"{self.energy_eV:.6f} eV")
                 + ("" if self.energy_initial_eV is None or self.energy_eV is None else
                    f" (start {self.energy_initial_eV:.6f} eV, change {self.energy_eV - self.energy_initial_eV:+.4f})"),
                 f"  {'':22s} {'before':>28s} {'after':>28s}"]
        b, a = self.geometry_before, self.geometry_after
        for key, label in (("a_A", "a, b (Å)"), ("gamma_deg", "γ (°)")):
            lines.append(f"  {label:22s} {_fmt(b.get(key)):>28s} {_fmt(a.get(key)):>28s}")
        sb, sa = {s["shell"]: s for s in b.get("shells", [])}, {s["shell"]: s for s in a.get("shells", [])}
        for n in sorted(set(sb) | set(sa)):
            for key, label in (("d_MM_A", f"{n}NN M–M (Å)"), ("d_MX_A", f"{n}NN M–X (Å)"),
                               ("MXM_deg", f"{n}NN M–X–M (°)")):
                x, y = sb.get(n, {}).get(key), sa.get(n, {}).get(key)
                if x or y:
                    lines.append(f"  {label:22s} {_fmt(x):>28s} {_fmt(y):>28s}")
        if self.relaxed_file:
            lines.append(f"  relaxed structure: {self.relaxed_file}")
        elif self.last_geometry_file:
            lines.append(f"  last geometry (NOT relaxed): {self.last_geometry_file}")
        return "\n".join(lines)


def _fmt(x) -> str:
    if x is None:
        return "-"
    if isinstance(x, (list, tuple)):
        return ", ".join(f"{v:.3f}" for v in x) or "-"
    return f"{x:.3f}"


# --------------------------------------------------------------------------------------------------- geometry
def _distinct(values, tol: float, decimals: int) -> list[float]:
    """Sorted distinct values: neighbours closer than ``tol`` are one value (their mean), rounded."""
    out, group = [], []
    for v in sorted(float(x) for x in values):
        if group and v - group[-1] > tol:
            out.append(round(float(np.mean(group)), decimals))
            group = []
        group.append(v)
    if group:
        out.append(round(float(np.mean(group)), decimals))
    return out


def geometry_summary(atoms) -> dict:
    """Lattice and superexchange geometry of ``atoms`` from the structures layer: in-plane lattice constants a, b
    (Å) and γ (°), and per neighbour shell the M–M distance, the distinct M–X distances and M–X–M angles of the
    bridging ligands (values within 1e-3 Å / 0.01° merged, rounded to 1e-4 Å / 1e-3°)."""
    rep = analyse_structure(atoms)
    cell = atoms.cell
    lengths, angles = cell.lengths(), cell.angles()
    shells = []
    for sh in rep.shells:
        eps = [p for p in rep.paths if p.shell == sh.index]
        dmx = _distinct([d for p in eps for b in p.bridges for d in (b.d_ix, b.d_jx)], 1e-3, 4)
        ang = _distinct([b.angle for p in eps for b in p.bridges], 1e-2, 3)
        shells.append({"shell": sh.index, "d_MM_A": round(float(sh.distance), 4), "d_MX_A": dmx, "MXM_deg": ang})
    return {"a_A": [round(float(lengths[0]), 4), round(float(lengths[1]), 4)], "c_A": round(float(lengths[2]), 4),
            "gamma_deg": round(float(angles[2]), 3), "shells": shells}


# --------------------------------------------------------------------------------------------------- generic part
def _write_traj_atomic(path: Path, atoms) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp, atoms, format="traj")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _snapshot(atoms, steps: int):
    """A copy of ``atoms`` with its energy and forces (and stress, when computed) frozen, and the step count."""
    snap = atoms.copy()
    res = {"energy": float(atoms.get_potential_energy()), "forces": np.asarray(atoms.get_forces())}
    calc = atoms.calc
    if calc is not None and getattr(calc, "results", None) is not None and "stress" in calc.results:
        res["stress"] = np.asarray(calc.results["stress"])
    snap.calc = SinglePointCalculator(snap, **res)
    snap.info = {"wannmag_steps": int(steps)}
    return snap


def read_checkpoint(workdir):
    """(atoms, steps done) of ``workdir/checkpoint.traj``, or (None, 0) when there is none."""
    path = Path(workdir) / CHECKPOINT
    if not path.exists():
        return None, 0
    try:
        atoms = read(str(path), index=-1, format="traj")
    except Exception as exc:  # noqa: BLE001 - a damaged checkpoint is one line, never a traceback
        raise RelaxError(f"{path}: unreadable checkpoint ({type(exc).__name__}: {str(exc)[:120]}); delete it to "
                         "restart the relaxation from the start geometry") from None
    return atoms, int(atoms.info.get("wannmag_steps", 0))


def _cell_check(atoms, name: str) -> None:
    cell = atoms.cell.array
    normal = np.cross(cell[0], cell[1])
    normal /= np.linalg.norm(normal)
    if abs(abs(normal[2]) - 1.0) > 1e-6:
        raise RelaxError(f"{name}: in-plane cell relaxation needs the layer (lattice vectors a, b) in the xy plane; "
                         f"its normal is {np.round(normal, 4).tolist()}")


def relax_atoms(atoms, calculator, workdir, fmax: float = 0.02, max_steps: int = 200, optimizer: str = "BFGS",
                cell: bool = False, log=print, name: str | None = None) -> dict:
    """Relax ``atoms`` (a copy; the input is not changed) with the ASE calculator ``calculator`` (an object, or a
    callable ``session -> calculator``), resumable through ``workdir/checkpoint.traj`` (module docstring).

    Returns {"atoms" (final geometry, with its energy/forces frozen), "converged", "steps" (optimizer steps in all
    sessions), "sessions", "energy_eV", "energy_initial_eV", "max_force" (eV/Å), "max_stress_GPa" (in-plane, with
    ``cell``), "resumed_from_step"}.  ``max_steps`` counts steps over every session: a resumed run does the rest.
    """
    if optimizer not in OPTIMIZERS:
        raise RelaxError(f"unknown optimizer {optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    if not (isinstance(fmax, (int, float)) and np.isfinite(fmax) and 1e-5 <= float(fmax) <= 10.0):
        raise RelaxError(f"fmax must be a force tolerance in [1e-5, 10] eV/Å, got {fmax!r}")
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or not 0 <= max_steps <= 100000:
        raise RelaxError(f"max_steps must be an integer in 0..100000, got {max_steps!r}")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    name = name or str(workdir)
    if cell:
        _cell_check(atoms, name)
    start, done = read_checkpoint(workdir)
    sessions_file = workdir / ".sessions"
    session = (int(sessions_file.read_text()) if sessions_file.exists() else 0) + 1
    atomic_write_text(sessions_file, str(session))
    work = atoms.copy()
    if start is not None:
        if len(start) != len(work) or start.get_chemical_symbols() != work.get_chemical_symbols():
            raise RelaxError(f"{workdir / CHECKPOINT}: holds other atoms than {name}")
        work.set_cell(start.cell, scale_atoms=False)
        work.positions = start.positions
        _log(f"[wannmag relax] {name}: resuming from the checkpoint after step {done} ({workdir / CHECKPOINT})", log)
    work.calc = calculator(session) if callable(calculator) and not hasattr(calculator, "get_potential_energy") \
        else calculator
    target = FrechetCellFilter(work, mask=list(IN_PLANE_MASK)) if cell else work
    opt = (BFGS if optimizer == "BFGS" else FIRE)(target, logfile=None)
    first = {}

    def observe():
        k = done + opt.nsteps
        snap = _snapshot(work, k)
        first.setdefault("energy", snap.get_potential_energy())
        _write_traj_atomic(workdir / CHECKPOINT, snap)
        if not (start is not None and opt.nsteps == 0):  # the resumed geometry is already in the history
            with Trajectory(str(workdir / HISTORY), "a") as tr:
                tr.write(snap)
        f = float(np.sqrt((snap.get_forces() ** 2).sum(axis=1)).max()) if len(snap) else 0.0
        _log(f"[wannmag relax] {name}: step {k}, E = {snap.get_potential_energy():.6f} eV, max force {f:.4f} eV/Å",
             log)

    opt.attach(observe, interval=1)
    t0 = time.time()
    try:
        converged = bool(opt.run(fmax=float(fmax), steps=max(0, max_steps - done)))
    except WannmagError:
        raise
    steps = done + opt.nsteps
    forces = work.get_forces()
    max_force = float(np.sqrt((forces ** 2).sum(axis=1)).max()) if len(work) else 0.0
    max_stress = None
    if cell:
        s = work.get_stress(voigt=True)  # xx yy zz yz xz xy, eV/Å³
        max_stress = float(np.abs(np.asarray(s)[[0, 1, 5]]).max() * EV_PER_A3_IN_GPA)
    initial = None
    hist = workdir / HISTORY
    if hist.exists():
        try:
            with Trajectory(str(hist)) as tr:
                initial = float(tr[0].get_potential_energy())
        except Exception:  # noqa: BLE001 - the history is for inspection only
            initial = None
    final = _snapshot(work, steps)
    return {"atoms": final, "converged": converged, "steps": steps, "sessions": session,
            "energy_eV": float(final.get_potential_energy()),
            "energy_initial_eV": initial if initial is not None else first.get("energy"),
            "max_force": max_force, "max_stress_GPa": max_stress, "resumed_from_step": done if start is not None
            else None, "seconds": round(time.time() - t0, 1)}


def _log(msg: str, log) -> None:
    if log is None or log is False:
        return
    (print if log is True else log)(msg)


def _write_structure_atomic(path: Path, atoms) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        clean = atoms.copy()
        clean.calc = None
        clean.info = {}
        write(tmp, clean, format="cif")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# --------------------------------------------------------------------------------------------------- GPAW DFT+U
def relax_structure(structure, order: str = "FM", preset: str = "fast", U=3.0, fmax: float = 0.02,
                    max_steps: int = 200, optimizer: str = "BFGS", cell: bool = False, workdir="wannmag_relax",
                    log=True) -> RelaxResult:
    """Relax ``structure`` (file, ``ase.Atoms`` or ``MagneticSublattice``) with GPAW DFT+U in the collinear order
    ``order`` (FM, Neel, zigzag, stripy: the configuration's cell of :func:`wannmag.structures.honeycomb_configuration`
    — for zigzag/stripy the rectangular supercell, which is then the relaxed cell) — the calculator of
    :func:`wannmag.workflows.dft.run_dft` for ``preset`` and ``U`` (eV, a number or a dict per element).  Forces to
    ``fmax`` eV/Å in at most ``max_steps`` optimizer steps; ``cell``: in-plane lattice too (plane waves only).

    Results in ``workdir`` (module docstring); returns a :class:`RelaxResult`, the before/after geometry from
    :func:`geometry_summary`.  Resumable and cached: the same call on a finished directory reads ``relax.json``.
    """
    if cell and _dft.PRESETS.get(preset, {}).get("mode") != "pw":
        raise RelaxError(f"{_name(structure)}: in-plane cell relaxation needs the stress tensor, which GPAW computes in "
                         f"plane-wave mode only: use --preset accurate (not {preset!r})")
    if optimizer not in OPTIMIZERS:
        raise RelaxError(f"unknown optimizer {optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    conf = _dft.resolve_configuration(structure, order)
    if str(order).upper() == "NM":
        raise RelaxError(f"{_name(structure)}: relax in a magnetic order (FM, Neel, zigzag, stripy), not {order!r}")
    params = _dft.dft_parameters(conf, preset=preset, U=U)
    ident = {"dft": params, "relax": {"fmax": float(fmax), "optimizer": optimizer, "cell": bool(cell),
                                      "mask": list(IN_PLANE_MASK) if cell else None}}
    ident = jsonable(ident)
    workdir = Path(workdir)
    pfile = workdir / PARAMETERS
    if pfile.exists():
        try:
            old = json.loads(pfile.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            old = None
        if old != ident:
            diff = sorted(k for k in set(ident["dft"]) | set((old or {}).get("dft", {}))
                          if ident["dft"].get(k) != (old or {}).get("dft", {}).get(k))
            diff += sorted(k for k in ident["relax"] if ident["relax"].get(k) != (old or {}).get("relax", {}).get(k))
            raise RelaxError(f"{pfile}: holds a different relaxation (differs in {', '.join(diff) or 'format'}); "
                             "use another --out or delete that directory")
        rfile = workdir / RESULT
        if rfile.exists():
            try:
                res = RelaxResult.from_dict(json.loads(rfile.read_text()))
            except (json.JSONDecodeError, TypeError, UnicodeDecodeError):
                res = None
            if res is not None and (res.converged or res.steps >= max_steps):
                _log(f"[wannmag relax] {conf.name}: finished earlier, read {rfile}", log)
                return res
    workdir.mkdir(parents=True, exist_ok=True)
    _dft.write_json_atomic(pfile, ident)
    before = geometry_summary(conf.atoms)
    t0 = time.time()

    def factory(session):
        txt = workdir / f"gpaw-{session}.txt"
        _log(f"[wannmag relax] {conf.atoms.get_chemical_formula()} {conf.name} ({preset}, k-mesh "
             f"{'×'.join(map(str, params['kpts']))}, U={params['U']}): GPAW log {txt}", log)
        try:
            return _dft._make_calculator(params, str(txt))
        except WannmagError:
            raise
        except Exception as exc:  # noqa: BLE001 - GPAW set-up errors become one line
            raise RelaxError(f"{txt}: cannot set up GPAW ({type(exc).__name__}: {str(exc)[:160]})") from None

    atoms = conf.atoms.copy()
    atoms.pbc = True
    try:
        out = relax_atoms(atoms, factory, workdir, fmax=fmax, max_steps=max_steps, optimizer=optimizer, cell=cell,
                          log=log, name=f"{conf.atoms.get_chemical_formula()} {conf.name}")
    except WannmagError:
        raise
    except Exception as exc:  # noqa: BLE001 - an SCF or optimizer failure: one line, the checkpoint stays
        first = str(exc).splitlines()[0][:160] if str(exc) else ""
        raise RelaxError(f"{workdir}: relaxation failed ({type(exc).__name__}: {first}); the last geometry is kept in "
                         "checkpoint.traj, re-run to resume") from None
    final = out["atoms"]
    after = geometry_summary(final)
    warns = []
    relaxed = last = None
    if out["converged"]:
        _write_structure_atomic(workdir / RELAXED, final)
        relaxed = str(workdir / RELAXED)
        if (workdir / UNCONVERGED).exists():
            (workdir / UNCONVERGED).unlink()
        status = f"max force {out['max_force']:.4f} eV/Å < {fmax:g} eV/Å after {out['steps']} steps"
    else:
        _write_structure_atomic(workdir / UNCONVERGED, final)
        last = str(workdir / UNCONVERGED)
        status = (f"steps exhausted ({out['steps']} of {max_steps}); max force {out['max_force']:.4f} eV/Å above the "
                  f"tolerance {fmax:g} eV/Å — not a relaxed geometry (re-run with more --steps to continue)")
        warns.append(status)
    res = RelaxResult(
        structure=_name(structure), converged=bool(out["converged"]), status=status, fmax=float(fmax),
        max_force=out["max_force"], max_stress_GPa=out["max_stress_GPa"], steps=out["steps"], max_steps=max_steps,
        sessions=out["sessions"], energy_eV=out["energy_eV"], energy_initial_eV=out["energy_initial_eV"],
        optimizer=optimizer, cell_relaxed=bool(cell), order=conf.name, preset=preset, U=params["U"],
        relaxed_file=relaxed, last_geometry_file=last, geometry_before=before, geometry_after=after,
        parameters=ident, timings={"this_session_s": out["seconds"], "total_s": round(time.time() - t0, 1)},
        warnings=warns)
    _dft.write_json_atomic(workdir / RESULT, res.as_dict())
    return res


def _name(structure) -> str:
    if isinstance(structure, (str, os.PathLike)):
        return str(structure)
    atoms = getattr(structure, "atoms", structure)
    info = getattr(atoms, "info", {}) or {}
    return str(info.get("source") or info.get("name") or getattr(atoms, "get_chemical_formula", lambda: "structure")())
