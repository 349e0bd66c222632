"""``wannmag sweep``: ``wannmag run`` over a grid of Hubbard U and biaxial in-plane strain, one cached run per point.

Every point (U, ε) is an ordinary run directory ``OUT/U<U>_strain<ε>`` (``U3_strain+0.020``), made by
:func:`wannmag.workflows.run.build_workflow` up to the step ``until`` (default ``mc``): finished steps are skipped on
a re-run, an interrupted point resumes, and the points are independent tasks on Dask (a LocalCluster or a scheduler
address) or on local processes, through the helpers of ``wannmag run`` (:mod:`wannmag.workflows.parallel`) — each
point runs its own steps serially, so the numbers are those of a serial sweep.

Strain: ε is applied to the in-plane lattice (the plane of the lattice vectors a, b) with the fractional coordinates
kept: a, b → (1 + ε) a, (1 + ε) b, the component of every lattice vector along the layer normal unchanged (so the
ligand heights in Å stay those of the input); the strained structure is written to ``OUT/structures/`` (ε = 0 uses the
input file itself).  No relaxation of the strained cell is made.

Per point the sweep collects (from the run's stored step results): J1–J3 (meV, H = Σ_{i<j} J_ij S_i·S_j, each bond
once, |S| = S, J > 0 antiferromagnetic) with the route that produced them (the energy mapping of the DFT energies of
FM, Néel, zigzag, stripy — the J's of the run's Monte Carlo) and the fit's residuals; the anisotropy (ΔE = E_in −
E_out in meV per magnetic ion, > 0: easy axis out of plane; its dipolar and spin–orbit parts; the single-ion A and the
Kitaev K, Γ, Γ′ of the collinear spin–orbit fit where the run made one); the ordering temperature (K) with its method,
or none with the reason (not bracketed, Mermin–Wagner — never an unconverged number); and whether the DFT
configurations kept their requested moments.  Result: ``OUT/sweep.json`` (:class:`SweepResult`, written atomically)
and ``OUT/sweep.png`` (J1–J3, anisotropy and T_c against U or strain; :func:`wannmag.magnetism.plot.plot_sweep`).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .._atomic import atomic_write_json, jsonable
from ..errors import WannmagError
from ..magnetism.plot import plot_sweep
from ..structures import read_structure
from .parallel import _client, _map
from .relax import _write_structure_atomic
from .run import PRESET_SETTINGS, build_workflow

__all__ = ["SweepError", "SweepResult", "run_sweep", "strained_atoms", "point_label", "point_summary", "MAX_STRAIN",
           "MAX_U"]

MAX_STRAIN = 0.2
MAX_U = 20.0  # eV, as `wannmag dft --U`
CONVENTION = ("J in meV, H = sum_{i<j} J_ij S_i.S_j + sum_i S_i.A_i.S_i, each bond once, |S| = S, J > 0 AF; "
              "anisotropy E_in - E_out in meV per magnetic ion (> 0: easy axis out of plane); T in K; strain: "
              "biaxial in-plane, fractional coordinates kept")


class SweepError(WannmagError):
    """The sweep cannot run with these inputs."""


@dataclass
class SweepResult:
    """A U/strain sweep: one entry of ``points`` per (U, strain) (see :func:`point_summary`), ``until`` the last run
    step computed, ``settings`` the run settings every point used."""

    structure: str
    preset: str
    until: str
    U_values: list
    strains: list
    points: list = field(default_factory=list)
    settings: dict = field(default_factory=dict)
    convention: str = CONVENTION

    def as_dict(self) -> dict:
        return jsonable(asdict(self))

    @classmethod
    def from_dict(cls, d: dict) -> "SweepResult":
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in names})

    def table(self) -> str:
        """One line per point: U, strain, ground state, J1–J3, anisotropy, T_c (or why none)."""
        lines = [f"{'U (eV)':>6} {'strain':>7} {'ground':>7} {'J1':>8} {'J2':>8} {'J3':>8} {'ΔE_an':>8} "
                 f"{'easy axis':>12}  T (K)",
                 f"{'':>6} {'':>7} {'state':>7} {'(meV)':>8} {'(meV)':>8} {'(meV)':>8} {'(meV/ion)':>8}"]
        for p in self.points:
            head = f"{p['U']:6.2f} {p['strain']:+7.3f}"
            if p.get("status") != "done":
                lines.append(f"{head}  failed: {p.get('error')}")
                continue
            J = list(p.get("J_meV") or []) + [None] * 3
            js = " ".join(f"{j:+8.3f}" if _finite(j) else f"{'-':>8}" for j in J[:3])
            an = p.get("anisotropy") or {}
            dE = an.get("total_meV_per_ion")
            lines.append(f"{head} {str(p.get('ground_state')):>7} {js} "
                         f"{(format(dE, '+8.3f') if _finite(dE) else '-'):>8} {str(an.get('easy_axis') or '-'):>12}  "
                         f"{_tc_text(p.get('tc'))}")
        return "\n".join(lines)


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _tc_text(tc) -> str:
    if not tc:
        return "not computed"
    if _finite(tc.get("tc_K")) and not tc.get("mermin_wagner"):
        return f"{tc.get('kind', 'T_c')} {tc['tc_K']:.1f} ± {tc.get('tc_error_K') or 0:.1f} ({tc.get('method')})"
    return f"none — {tc.get('reason') or 'no Binder crossing bracketed'}"


# ------------------------------------------------------------------------------------------------- inputs
def point_label(U: float, strain: float) -> str:
    """Run-directory name of a point: ``U3_strain+0.000``."""
    return f"U{U:g}_strain{strain:+.3f}"


def strained_atoms(atoms, strain: float):
    """A copy of ``atoms`` under biaxial in-plane strain ``strain`` (module docstring): deformation
    F = 1 + ε (1 − n̂n̂ᵀ), n̂ the normal of the (a, b) plane, applied to every lattice vector with the fractional
    coordinates kept."""
    cell = np.asarray(atoms.cell.array, float)
    n = np.cross(cell[0], cell[1])
    n /= np.linalg.norm(n)
    F = np.eye(3) + strain * (np.eye(3) - np.outer(n, n))
    out = atoms.copy()
    out.set_cell(cell @ F.T, scale_atoms=True)
    return out


def _check_values(structure, U_values, strains, until, steps) -> None:
    name = str(structure)
    for u in U_values:
        if not _finite(u) or not 0.0 <= u <= MAX_U:
            raise SweepError(f"{name}: U = {u} eV is out of range; every --U must be in [0, {MAX_U:g}] eV")
    for e in strains:
        if not _finite(e) or abs(e) > MAX_STRAIN:
            raise SweepError(f"{name}: strain {e} is out of range; every --strain must satisfy |strain| ≤ "
                             f"{MAX_STRAIN:g} (a fraction: 0.02 = 2 %)")
    if until not in steps:
        raise SweepError(f"{name}: unknown step {until!r} for --until; the steps are {', '.join(steps)}")


# ------------------------------------------------------------------------------------------------- one point
def point_summary(results: dict, U: float, strain: float, label: str, out) -> dict:
    """What the sweep keeps of one finished run (its step results ``results``; see the module docstring)."""
    mp = results.get("mapping") or {}
    recs = (results.get("dft") or {}).get("records") or []
    dft_warn = [f"{r.get('config')}: {w}" for r in recs for w in (r.get("warnings") or [])]
    point = {"U": float(U), "strain": float(strain), "label": label, "out": str(out), "status": "done",
             "formula": (results.get("structure") or {}).get("formula"),
             "a_A": None, "ground_state": mp.get("ground_state"), "J_meV": mp.get("J_meV"),
             "J_route": "energy mapping (DFT total energies of FM, Neel, zigzag, stripy; the J of the Monte Carlo)"
             if mp else None,
             "J_residuals_meV_per_ion": mp.get("residuals_meV_per_ion"), "J_condition_number": mp.get("condition_number"),
             "E_minus_EFM_meV_per_ion": mp.get("E_minus_EFM_meV_per_ion"), "site_moments": mp.get("site_moments"),
             "dft_warnings": dft_warn}
    mft = results.get("mft") or {}
    if mft.get("shells"):
        point["J_force_theorem_meV"] = [s.get("J") for s in mft["shells"][:3]]
    an, model = results.get("anisotropy"), results.get("model")
    if an is not None or model is not None:
        an, model = an or {}, model or {}
        dE = model.get("anisotropy_meV_per_ion")
        fit = an.get("soc_fit") or {}
        params = fit.get("params_meV") or {}
        point["anisotropy"] = {
            "total_meV_per_ion": dE, "dipolar_meV_per_ion": an.get("dipolar_meV"), "soc_meV_per_ion": an.get("soc_meV"),
            "easy_axis": None if not _finite(dE) else ("out of plane" if dE > 0 else "in plane" if dE < 0 else "none"),
            "single_ion_A_meV": params.get("A"), "K_meV": params.get("K"), "Gamma_meV": params.get("Gamma"),
            "Gamma_prime_meV": params.get("Gamma_prime"),
            "soc_fit": "collinear spin-orbit fit (force theorem)" if params else
            (an.get("soc_fit_error") or an.get("soc_method"))}
    mc = results.get("mc")
    conv = {"dft_moments_kept": not dft_warn if recs else None}
    if mc is not None:
        kind = "T_C" if mp.get("ground_state") == "FM" else "T_N"
        tc = mc.get("tc_K")
        ok = _finite(tc) and not mc.get("mermin_wagner")
        reason = None
        if mc.get("mermin_wagner"):
            reason = mc.get("warning") or "no finite-temperature order of this 2D model (Mermin–Wagner)"
        elif not ok:
            reason = mc.get("note") or "no Binder crossing bracketed inside the Monte Carlo window"
        point["tc"] = {"kind": kind, "tc_K": tc if ok else None, "tc_error_K": mc.get("tc_error_K") if ok else None,
                       "method": mc.get("method"), "status": mc.get("status"), "reason": reason,
                       "mermin_wagner": bool(mc.get("mermin_wagner")), "sizes": mc.get("sizes"),
                       "algorithm": mc.get("algorithm")}
        conv["tc_bracketed"] = ok
    point["converged"] = conv
    return point


def _run_point(args) -> dict:
    """One point of the sweep (a Dask task or a local process): ``wannmag run`` up to ``until`` in its own run
    directory.  A WannmagError of the run is stored as a failed point (the other points go on; a re-run retries it)."""
    structure, U, strain, label, out, preset, until, settings, seed = args

    def log(msg):
        print(f"[wannmag sweep {label}] {msg}", flush=True)

    try:
        # relax=False: every point keeps the fractional coordinates of the (strained) structure, as documented;
        # the accurate preset's default relaxation of `wannmag run` is not applied per point
        res = build_workflow(structure, out=out, preset=preset, U=U, settings=settings, seed=seed, log=log,
                             dask=None, workers=1, relax=False).run(until=until)
    except WannmagError as exc:
        return {"U": float(U), "strain": float(strain), "label": label, "out": str(out), "status": "failed",
                "error": str(exc)}
    point = point_summary(res, U, strain, label, out)
    point["a_A"] = round(float(np.linalg.norm(read_structure(structure).cell.array[0])), 5)
    return point


# ------------------------------------------------------------------------------------------------- the sweep
def run_sweep(structure, U=None, strain=None, until: str = "mc", preset: str = "fast", out="sweep", dask=None,
              workers: int = 1, settings: dict | None = None, seed: int = 0, log=print,
              plot: bool = True) -> SweepResult:
    """Run ``wannmag run`` up to ``until`` at every (U, strain) of the grid ``U`` × ``strain`` (eV; fractions,
    0.02 = 2 % biaxial tension) — U defaults to the run's 3 eV, strain to 0 — each point in ``out/<point_label>``,
    as independent tasks on ``dask`` ("local" or a scheduler address) or ``workers`` local processes; write
    ``out/sweep.json`` and ``out/sweep.png``.  ``settings`` overrides the preset's run settings (Monte Carlo sizes,
    sweeps, ...), the same for every point.  Values out of range (U < 0 or > 20 eV, |strain| > 0.2, an unknown step)
    are one error before any work."""
    if U is None and strain is None:
        raise SweepError(f"{structure}: give --U values and/or --strain values to sweep")
    U_values = [3.0] if U is None else [float(u) if _finite(u) else u for u in np.atleast_1d(U).tolist()]
    strains = [0.0] if strain is None else [float(e) if _finite(e) else e for e in np.atleast_1d(strain).tolist()]
    if not U_values or not strains:
        raise SweepError(f"{structure}: empty list of U or strain values")
    if preset not in PRESET_SETTINGS:
        raise SweepError(f"{structure}: unknown preset {preset!r} (fast, accurate)")
    steps = [s.name for s in build_workflow(structure, out=Path(out) / "_steps", preset=preset, log=log,
                                            relax=False).steps]
    _check_values(structure, U_values, strains, until, steps)
    U_values, strains = sorted(set(U_values)), sorted(set(strains))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    src = Path(structure).resolve()
    atoms = read_structure(src)
    files = {}
    for e in strains:
        if e == 0.0:
            files[e] = str(src)
            continue
        path = out / "structures" / f"{src.stem}_strain{e:+.3f}.cif"
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_structure_atomic(path, strained_atoms(atoms, e))
        files[e] = str(path.resolve())
    items = [(files[e], u, e, point_label(u, e), str((out / point_label(u, e)).resolve()), preset, until,
              settings, seed) for u in U_values for e in strains]
    log(f"[wannmag sweep] {len(items)} point(s) ({len(U_values)} U × {len(strains)} strain), each `wannmag run` "
        f"up to {until} in {out}/<point>")
    client = _client(dask)
    try:
        points = _map(client, _run_point, items, workers=workers)
    finally:
        if client is not None:
            client.close()
    res = SweepResult(structure=str(src), preset=preset, until=until, U_values=U_values, strains=strains,
                      points=points, settings={**PRESET_SETTINGS[preset], **(settings or {}), "seed": seed})
    atomic_write_json(out / "sweep.json", res.as_dict())
    if plot and any(p.get("status") == "done" for p in points):
        try:
            plot_sweep(res.points, out / "sweep.png", U_values=res.U_values, strains=res.strains, preset=res.preset)
        except Exception as exc:  # noqa: BLE001 - the numbers matter more than the figure
            warnings.warn(f"sweep plot failed: {exc}")
    return res
