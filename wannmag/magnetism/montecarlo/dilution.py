"""Site dilution: a random fraction x of the magnetic sites replaced by vacancies, observables averaged over
disorder realisations, ordering temperature T(x).

Hamiltonian (internal wannmag convention): H = Σ_{i<j} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i − gμ_B B·S_i over the sites
that remain, each bond once, classical spins of length S, J > 0 antiferromagnetic, meV; temperatures in K.  Bonds
next to a vacancy may carry other exchange tensors (``near_vacancy``: a dict {shell: J} or a callable, see
:func:`~.lattice.build_lattice`).

For every x and every size, ``realisations`` vacancy sets (exactly round(x·N) sites removed, chosen at random with
a seed derived from (seed, size, realisation, x)) are simulated with the undiluted ground-state pattern as order
parameter; C and χ are disorder-averaged ([⟨·⟩], error = statistical ⊕ sample-to-sample spread/√n), the Binder
cumulants U4 (vector) and U4_axis (easy axis) are taken from the disorder-averaged moments [⟨q²⟩], [⟨q⁴⟩] (error
with a jackknife over realisations; :data:`DISORDER_AVERAGE`), and the curves are analysed as in
:func:`~.tc.analyse_sizes` with the cumulant the perfect lattice uses (:func:`~.tc.binder_kind`: the easy-axis one
for a collinear uniaxial model, else the vector one): T(x) is a Binder crossing of the averaged cumulant
bracketed inside the window, else None with the reason in ``notes`` ("not bracketed: ...", e.g. with one size or a crossing beyond the
window); ``max_extensions`` > 0 repeats an unbracketed x on :func:`~.tc.next_window` (:func:`~.tc.until_bracketed`).

With ``holes`` (a :class:`~.holes.HoleSpec`) every realisation also carries the holes of its vacancies (V_{1−x}PS3:
two V3+ with S = 1 per V vacancy, placed "near" their vacancy or at "random", seeded by the realisation's key) and
every nearest-neighbour bond the exchange of its class (V2-V2_bulk, next_to_vacancy, V2-V3, V3-V3; :mod:`.holes`).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..._atomic import atomic_write_text as _atomic_write
from ..spinmodel import SpinModel
from .errors import MerminWagnerWarning, MonteCarloError
from .groundstate import ground_state
from .holes import simulate_holes
from .kernels import OBS_NAMES
from .lattice import _as_size, build_lattice, random_vacancies
from .tc import (TcResult, _label, analyse_sizes, binder_kind, check_memory, curves_of, mermin_wagner_check,
                 simulate, until_bracketed)
from .tempering import MCSettings, temperature_ladder

__all__ = ["random_vacancies", "DilutionResult", "dilution_scan", "moments_of", "MAX_REALISATIONS",
           "DISORDER_AVERAGE"]

#: disorder realisations per fraction and size
MAX_REALISATIONS = 10000
#: how the realisations are averaged (stored with every result)
DISORDER_AVERAGE = ("C, chi, Q, M, energy, chi_M, Q_axis, chi_axis: mean over realisations; U4 = 1 - [<q^4>]/(3 "
                    "[<q^2>]^2) and U4_axis = 1 - [<q_n^4>]/(3 [<q_n^2>]^2) from the disorder-averaged moments")


#: disorder-averaged per-realisation curves (averages of the realisations' values)
_MEAN = ("C", "chi", "Q", "M", "energy", "chi_M", "Q_axis", "chi_axis")
#: Binder cumulants from the disorder-averaged moments: name -> (second moment, fourth moment)
_CUMULANTS = {"U4": ("q2", "q4"), "U4_axis": ("qa2", "qa4")}


def moments_of(res) -> dict:
    """Per-temperature Monte Carlo averages ⟨q²⟩, ⟨q⁴⟩ (vector order parameter |Q| per site in units of S) and
    ⟨q_n²⟩, ⟨q_n⁴⟩ (its component along the ground-state axis n) of a :class:`~.tempering.PTResult`, from its bins
    (each the sum of ``bin_size`` measurements)."""
    means = np.asarray(res.bins, float).mean(axis=1) / float(res.bin_size)
    return {k: means[:, OBS_NAMES.index(k)].copy() for k in ("q2", "q4", "qa2", "qa4")}


def _binder(q2, q4):
    q2, q4 = np.asarray(q2, float), np.asarray(q4, float)
    return np.where(q2 > 0, 1.0 - q4 / (3.0 * np.where(q2 > 0, q2, 1.0) ** 2), 0.0)


def _average(curves: list[dict], grid: np.ndarray) -> dict:
    """Disorder average of the realisations' ``curves`` on the temperature ``grid`` (K).  C, χ, Q, M, e, χ_M and the
    easy-axis Q_axis, χ_axis: [value] (mean over realisations); error = statistical (√Σσ²/n) ⊕ the sample-to-sample
    spread/√n.  The Binder cumulants from the disorder-averaged moments — the cumulant of the disorder-averaged
    order-parameter distribution, U4 = 1 − [⟨q⁴⟩]/(3[⟨q²⟩]²) and U4_axis = 1 − [⟨q_n⁴⟩]/(3[⟨q_n²⟩]²) — with error
    = statistical (the realisations' own cumulant errors, √Σσ²/n) ⊕ a jackknife over the realisations (leave one
    out).  A quantity (or moment) missing from any realisation is left out."""
    n = len(curves)
    out = {"T": grid, "n_sites": float(np.mean([c["n_sites"] for c in curves]))}
    for q in _MEAN:
        if not all(q in c for c in curves):
            continue
        vals = np.array([np.interp(grid, c["T"], c[q][0]) for c in curves])
        errs = np.array([np.interp(grid, c["T"], np.nan_to_num(c[q][1])) for c in curves])
        stat = np.sqrt(np.sum(errs ** 2, axis=0)) / n
        spread = vals.std(axis=0, ddof=1) / np.sqrt(n) if n > 1 else np.zeros(len(grid))
        out[q] = (vals.mean(axis=0), np.hypot(stat, spread))
    mom = {}
    for q, (m2, m4) in _CUMULANTS.items():
        if not all(q in c and m2 in c.get("moments", {}) and m4 in c.get("moments", {}) for c in curves):
            continue
        a2 = np.array([np.interp(grid, c["T"], c["moments"][m2]) for c in curves])
        a4 = np.array([np.interp(grid, c["T"], c["moments"][m4]) for c in curves])
        errs = np.array([np.interp(grid, c["T"], np.nan_to_num(c[q][1])) for c in curves])
        stat = np.sqrt(np.sum(errs ** 2, axis=0)) / n
        jk = np.zeros(len(grid))
        if n > 1:
            loo = np.array([_binder((a2.sum(0) - a2[r]) / (n - 1), (a4.sum(0) - a4[r]) / (n - 1)) for r in range(n)])
            jk = np.sqrt((n - 1) / n * np.sum((loo - loo.mean(axis=0)) ** 2, axis=0))
        out[q] = (_binder(a2.mean(axis=0), a4.mean(axis=0)), np.hypot(stat, jk))
        mom[m2], mom[m4] = a2.mean(axis=0), a4.mean(axis=0)
    if mom:
        out["moments"] = mom
    return out


@dataclass
class DilutionResult:
    """T(x) in K: ``tc[k] ± tc_error[k]`` at vacancy fraction ``fractions[k]``, a bracketed Binder crossing or None
    (``notes[k]`` then says why, ``statuses[k]`` "not bracketed"); ``windows[k]`` the temperature window (K) of the
    pass reported; ``analyses[k]`` the full analysis of the disorder-averaged curves."""

    fractions: list
    tc: list
    tc_error: list
    methods: list
    realisations: int
    analyses: list = field(default_factory=list)
    curves: list = field(default_factory=list)
    statuses: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    windows: list = field(default_factory=list)
    #: with holes: the HoleSpec (as a dict) and per fraction the hole counts summed over sizes and realisations
    holes: dict | None = None
    hole_counts: list = field(default_factory=list)

    def text(self, k: int) -> str:
        """One line for fraction k: 'T = 61.2 ± 0.8 K (Binder crossing ...)' or its 'not bracketed: ...' note."""
        if self.tc[k] is not None:
            return f"T = {self.tc[k]:.2f} ± {(self.tc_error[k] or 0.0):.2f} K ({self.methods[k]})"
        return self.notes[k] if k < len(self.notes) and self.notes[k] else "no ordering temperature found"

    def as_dict(self) -> dict:
        def clean(c):
            return {k: ([v[0].tolist(), v[1].tolist()] if isinstance(v, tuple) else
                        (v.tolist() if isinstance(v, np.ndarray) else (clean(v) if isinstance(v, dict) else v)))
                    for k, v in c.items()}

        return {"fractions": self.fractions, "tc_K": self.tc, "tc_error_K": self.tc_error, "methods": self.methods,
                "statuses": self.statuses, "notes": self.notes, "t_windows_K": self.windows,
                "realisations": self.realisations, "analyses": [a.as_dict(with_runs=False) for a in self.analyses],
                "disorder_average": DISORDER_AVERAGE,
                "averaged_curves": [{lab: clean(c) for lab, c in cs.items()} for cs in self.curves],
                **({"holes": self.holes, "hole_counts": self.hole_counts} if self.holes is not None else {}),
                "convention": "H = sum_{i<j} S_i.J_ij.S_j + sum_i S_i.A_i.S_i - g muB B.S_i; J > 0 AF; meV; T in K"}

    @classmethod
    def from_dict(cls, d: dict) -> "DilutionResult":
        """Inverse of :meth:`as_dict`: the analyses as :class:`~.tc.TcResult` (without runs), the averaged curves
        with numpy arrays again ("T", (values, errors) pairs, the moments)."""
        def curve(c):
            out = {}
            for k, v in c.items():
                if k == "T":
                    out[k] = np.asarray(v, float)
                elif isinstance(v, dict):
                    out[k] = {q: np.asarray(x, float) for q, x in v.items()}
                elif isinstance(v, list) and len(v) == 2 and all(isinstance(x, list) for x in v):
                    out[k] = (np.asarray(v[0], float), np.asarray(v[1], float))
                else:
                    out[k] = v
            return out

        return cls(fractions=list(d["fractions"]), tc=list(d["tc_K"]), tc_error=list(d["tc_error_K"]),
                   methods=list(d["methods"]), realisations=d["realisations"],
                   analyses=[TcResult.from_dict(a) for a in d.get("analyses", [])],
                   curves=[{lab: curve(c) for lab, c in cs.items()} for cs in d.get("averaged_curves", [])],
                   statuses=list(d.get("statuses", [])), notes=list(d.get("notes", [])),
                   windows=list(d.get("t_windows_K", [])), holes=d.get("holes"),
                   hole_counts=list(d.get("hole_counts", [])))

    def save(self, path) -> Path:
        _atomic_write(Path(path), json.dumps(self.as_dict(), indent=1))
        return Path(path)


def _dilution_run(task) -> dict:
    """One disorder realisation at one size (a module-level function, so that it can run in another process or on
    a Dask worker): the averaged-curve input of :func:`dilution_scan`."""
    model, size, settings, vac, near_vacancy, ck, key, *more = task
    spec = more[0] if more else None
    if spec is None:
        res, _ = simulate(model, size, settings, vacancies=vac, near_vacancy=near_vacancy, checkpoint=ck,
                          seed_key=key)
        return {**curves_of(res), "moments": moments_of(res)}

    res, holes, counts = simulate_holes(model, size, settings, vac, spec, checkpoint=ck, seed_key=key)
    return {**curves_of(res), "moments": moments_of(res), "holes": {**holes.summary(), "bond_classes": counts}}


def _sum_counts(items: list) -> dict:
    out: dict = {}
    for h in items:
        for k, v in h.items():
            if isinstance(v, dict):
                out[k] = _sum_counts([out.get(k, {}), v])
            else:
                out[k] = out.get(k, 0) + int(v)
    return out


def dilution_scan(model: SpinModel, fractions, sizes, settings: MCSettings, realisations: int = 8,
                  near_vacancy=None, out_dir=None, warn: bool = True, map_fn=None,
                  max_extensions: int = 0, holes=None) -> DilutionResult:
    """T(x) for every vacancy fraction x in ``fractions`` (module docstring; ``holes`` a :class:`~.holes.HoleSpec`
    or None, not together with ``near_vacancy``; checkpoints of hole runs belong in their own ``out_dir``; the
    refusal of a fraction whose holes do not fit comes before any run).  With ``out_dir`` every run
    checkpoints to ``out_dir/checkpoint_x<x>_<L>_r<k>.npz`` (and resumes; further passes of ``max_extensions`` in
    ``out_dir/window_<tmin>-<tmax>K/``).  ``map_fn(fn, tasks) -> list`` runs the independent (x, size,
    realisation) simulations, e.g. on Dask or a process pool (default: one after the other); each is seeded by its
    own key, so the result does not depend on where or in which order they run."""
    settings.validate()
    if not 1 <= int(realisations) <= MAX_REALISATIONS:
        raise MonteCarloError(f"the number of disorder realisations must be between 1 and {MAX_REALISATIONS}, got "
                              f"{realisations}")
    if not fractions:
        raise MonteCarloError("give at least one vacancy fraction")
    for x in fractions:
        if not 0.0 <= float(x) < 1.0:  # also NaN
            raise MonteCarloError(f"dilution fraction must be in [0, 1), got {x}")
    if holes is not None:
        if near_vacancy is not None:
            raise MonteCarloError("give either holes (their bond classes include next_to_vacancy) or near_vacancy")
        holes.validate()
        for x in fractions:
            if float(x) > 1.0 / (1 + holes.per_vacancy) + 1e-12:
                raise MonteCarloError(f"hole fraction impossible: x = {float(x):g} with {holes.per_vacancy} holes per "
                                      f"vacancy needs more hole sites than remain (x must be <= "
                                      f"{1.0 / (1 + holes.per_vacancy):.3g})")
    sizes = [_as_size(s) for s in sizes]
    check_memory(model, sizes, settings)
    fractions = [float(x) for x in fractions]
    grid = temperature_ladder(settings)
    lat0 = build_lattice(model, sizes[0])
    gs0 = ground_state(lat0, ising=settings.ising, seed=settings.seed)
    mw = mermin_wagner_check(model, lat0.dimension, settings.ising, gs0.spins, lat0.slen)
    binder = binder_kind(lat0, gs0, settings.ising)  # the perfect lattice's choice (dilution breaks no symmetry)
    if mw["flag"] and warn:
        warnings.warn(mw["reason"], MerminWagnerWarning, stacklevel=2)
    tasks, where = [], []
    for ix, x in enumerate(fractions):
        for s in sizes:
            n_full = int(np.prod(s)) * model.n_sites
            for r in range(realisations if x > 0 else 1):
                key = (settings.seed, *s, r, int(round(x * 1e6)))
                vac = random_vacancies(n_full, x, key)
                ck = None if out_dir is None else \
                    Path(out_dir) / f"checkpoint_x{x:g}_{_label(s)}_r{r}.npz"
                more = (holes,) if holes is not None else ()
                tasks.append((model, s, settings, vac, near_vacancy, ck, key) + more)
                where.append((ix, _label(s)))
    runs = map_fn(_dilution_run, tasks) if map_fn is not None else [_dilution_run(t) for t in tasks]
    tcs, errs, methods, analyses, all_curves = [], [], [], [], []
    for ix, x in enumerate(fractions):
        per_size = {}
        for s in sizes:
            lab = _label(s)
            per_size[lab] = _average([c for (i, ll), c in zip(where, runs) if i == ix and ll == lab], grid)
        a = analyse_sizes(per_size, mw, binder)
        analyses.append(a)
        all_curves.append(per_size)
        tcs.append(a.tc)
        errs.append(a.tc_error)
        methods.append(a.method)
    res = DilutionResult(fractions=fractions, tc=tcs, tc_error=errs, methods=methods, realisations=realisations,
                         analyses=analyses, curves=all_curves, statuses=[a.status for a in analyses],
                         notes=[a.note for a in analyses],
                         windows=[[float(settings.tmin), float(settings.tmax)] for _ in fractions],
                         holes=None if holes is None else holes.as_dict(),
                         hole_counts=[] if holes is None else
                         [_sum_counts([c["holes"] for (i, _), c in zip(where, runs) if i == ix])
                          for ix in range(len(fractions))])
    for ix, x in enumerate(fractions):
        if int(max_extensions) <= 0 or analyses[ix].bracketed or analyses[ix].mermin_wagner:
            continue
        got = {}

        def run(st, k, x=x, ix=ix):
            if k == 0:
                return analyses[ix]
            sub = None if out_dir is None else Path(out_dir) / f"window_{st.tmin:.6g}-{st.tmax:.6g}K"
            r = dilution_scan(model, [x], sizes, st, realisations=realisations, near_vacancy=near_vacancy,
                              out_dir=sub, warn=False, map_fn=map_fn, holes=holes)
            got["curves"] = r.curves[0]
            return r.analyses[0]

        a, st = until_bracketed(run, settings, max_extensions)
        if a is not analyses[ix]:
            res.analyses[ix], res.curves[ix] = a, got["curves"]
            res.tc[ix], res.tc_error[ix], res.methods[ix] = a.tc, a.tc_error, a.method
            res.statuses[ix], res.notes[ix] = a.status, a.note
            res.windows[ix] = [float(st.tmin), float(st.tmax)]
    return res
