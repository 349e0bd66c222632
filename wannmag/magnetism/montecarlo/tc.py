"""Ordering temperature from parallel-tempering runs over several lattice sizes, and the Mermin–Wagner guard.

Hamiltonian (internal wannmag convention): H = Σ_{i<j} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i − gμ_B B·S_i, each bond once,
classical spins of length S, J > 0 antiferromagnetic, meV; temperatures in K.

Estimators (all in K, with uncertainties):

* peaks of C(T) and χ(T) for every size: parabola through the ≤ 5 points around the maximum, uncertainty from a
  parametric bootstrap over the error bars.  A maximum at the first or last temperature is not a peak: it is
  reported as a bound (``bound`` "lower": the peak lies at T ≥ tmax; "upper": at T ≤ tmin) with T the edge;
* Binder-cumulant crossings U4_L(T) = U4_L'(T) for every pair of sizes (linear interpolation; the + → −
  sign change of U4_L' − U4_L, L' > L, with the largest weight), uncertainty by parametric bootstrap.
  Which cumulant (:func:`binder_kind`): for a model whose ordered moments break no continuous symmetry and have a
  single easy axis n, the cumulant ``U4_axis`` of the component Q·n (and ``chi_axis`` for the χ peaks) — the
  estimator of an easy-axis (Ising-type) transition: in a nearly isotropic 2D magnet the vector cumulant ``U4`` of
  |Q| also counts the finite-size quasi-order of the isotropic part (correlation length ≫ L far above T_N, any
  orientation).  Otherwise the vector ``U4`` and ``chi``.  ``binder`` in the result says which ("easy-axis" /
  "vector"), ``binder_reason`` why.
  ``tc`` is the crossing of the two largest sizes; ``tc_error`` combines its bootstrap error with the spread of all
  pair crossings (the finite-size drift).

Only a Binder crossing bracketed strictly inside the window is an ordering temperature (``status`` "bracketed").
Without one (or with one size) ``tc`` is None, ``status`` is "not bracketed", ``side`` says where the crossing
lies — "above tmax" when the larger lattice is the more ordered one (U4_L' > U4_L) over the window, "below tmin"
when it is the less ordered one, else from a χ maximum at an edge — and ``note`` says so in one line.
:func:`next_window` gives the window of a further pass (beyond the edge where the crossing lies, or around a first
estimate) and :func:`search_passes` is the one rule of the further passes: ``wannmag mc`` repeats passes until a
crossing is bracketed (a bounded number of times; :func:`until_bracketed` for a caller's own runs), the two-pass
search of ``wannmag run`` and its vacancy study is :func:`second_pass` (one refining pass on :func:`next_window` of a
first analysis, reported only if it brackets a crossing).  :func:`ordering_temperature_refined` runs the passes on
the perfect lattice for both commands, the sizes of a pass on a caller's ``map_fn`` (processes, Dask: this layer
imports neither); ``wannmag run`` on the window :func:`mean_field_window`.

Mermin–Wagner: in d ≤ 2 a continuous symmetry cannot be broken at T > 0.  The model's continuous symmetries are
the global rotations R with RᵀJR = J for every bond, RᵀA_iR = A_i and RᵀB = B (generators found numerically); if
there is one that acts on the ordered moments (SO(3) for isotropic Heisenberg; U(1) about n when the ground state
has moments ⊥ n, e.g. easy-plane XY without in-plane anisotropy), a 2D run emits :class:`MerminWagnerWarning` and
sets ``mermin_wagner`` in the result: its true Tc is zero and the finite-size peaks drift to 0 with L.  In d ≤ 1
there is no finite-temperature order at all (even for Ising).  Ising mode has only a discrete symmetry.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..._atomic import atomic_write_text as _atomic_write
from ..._atomic import jsonable
from ..spinmodel import MEV_PER_K, SpinModel
from .cluster import ClusterSchemeError, check_cluster_lattice, cluster_couplings
from .errors import MerminWagnerWarning, MonteCarloError
from .groundstate import easy_axis_of, ground_state
from .kernels import OBS_NAMES
from .lattice import _as_size, build_lattice, min_size_for_range, range_problem
from .tempering import MAX_SPINS, NEW_DEFAULTS, T_RANGE_K, MCSettings, PTResult, parallel_tempering, temperature_ladder

__all__ = ["continuous_symmetry", "mermin_wagner_check", "binder_kind", "find_peak", "peak_text", "binder_crossing",
           "analyse_sizes", "choose_algorithm", "refine_window", "extend_window", "next_window", "until_bracketed",
           "refined_edge_warning", "checkpoint_key", "lattice_range_notes", "convergence_notes", "easy_axis_crossing_notes",
           "EASY_AXIS_U4_MIN", "TcResult", "ordering_temperature",
           "simulate", "mean_field_temperature", "mean_field_window", "RefinedTc", "second_pass", "search_passes",
           "ordering_temperature_refined", "nearly_isotropic_caveat", "NEARLY_ISOTROPIC_X"]

_GEN = np.array([[[0, 0, 0], [0, 0, -1], [0, 1, 0]],
                 [[0, 0, 1], [0, 0, 0], [-1, 0, 0]],
                 [[0, -1, 0], [1, 0, 0], [0, 0, 0]]], float)


def continuous_symmetry(model: SpinModel, ising: bool = False, tol: float = 1e-8) -> np.ndarray:
    """Axes (rows) spanning the Lie algebra of global spin rotations R that leave H = Σ_{i<j} S_i·J_ij·S_j +
    Σ_i S_i·A_i·S_i − gμ_B B·S_i invariant (RᵀJ_ijR = J_ij, RᵀA_iR = A_i, RᵀB = B; J > 0 AF): 3 rows for SO(3),
    1 row (the axis n) for U(1), none otherwise.  Ising mode has no continuous symmetry."""
    if ising:
        return np.zeros((0, 3))
    rows = []
    mats = [b.J for b in model.bonds] + list(model.single_ion)
    scale = max([1.0] + [float(np.abs(m).max()) for m in mats])
    for M in mats:
        rows.append(np.stack([(G @ M - M @ G).ravel() for G in _GEN], axis=1) / scale)
    B = np.asarray(model.b_field, float)
    if np.any(B):
        rows.append(np.stack([G @ B for G in _GEN], axis=1) / np.linalg.norm(B))
    if not rows:
        return np.eye(3)
    Mbig = np.concatenate(rows, axis=0)
    _, s, vt = np.linalg.svd(Mbig)
    s = np.concatenate([s, np.zeros(3 - len(s))])
    null = vt[s < tol]
    return null if len(null) != 2 else np.eye(3)


def mermin_wagner_check(model: SpinModel, dimension: int, ising: bool = False, gs_spins=None, slen=None) -> dict:
    """{"flag": bool, "reason": str, "symmetry": "SO(3)" | "U(1) about n" | "none"} (module docstring)."""
    axes = continuous_symmetry(model, ising)
    sym = "none" if len(axes) == 0 else ("SO(3)" if len(axes) == 3 else f"U(1) about {np.round(axes[0], 4).tolist()}")
    if dimension <= 1:
        return {"flag": True, "symmetry": sym,
                "reason": f"{dimension}D lattice: no long-range order at T > 0 for short-range interactions"}
    if dimension >= 3 or len(axes) == 0:
        return {"flag": False, "symmetry": sym, "reason": ""}
    if len(axes) == 3:
        return {"flag": True, "symmetry": sym,
                "reason": "2D isotropic Heisenberg model (SO(3) symmetric): true Tc = 0 (Mermin-Wagner); "
                          "the C/chi peaks and Binder crossings are finite-size crossovers that drift to 0 with L"}
    n = axes[0] / np.linalg.norm(axes[0])
    perp = 1.0
    if gs_spins is not None:
        u = np.asarray(gs_spins) / np.asarray(slen)[:, None]
        perp = float(np.mean(np.linalg.norm(u - np.outer(u @ n, n), axis=1)))
    if perp > 0.1:
        return {"flag": True, "symmetry": sym,
                "reason": f"2D model with a U(1) symmetry about {np.round(n, 3).tolist()} that rotates the ordered "
                          "moments (XY-type, no in-plane anisotropy): no long-range order at T > 0 "
                          "(Mermin-Wagner; at most a BKT transition), the finite-size peaks drift with L"}
    return {"flag": False, "symmetry": sym, "reason": ""}


def binder_kind(lat, gs, ising: bool = False, col_tol: float = 0.99) -> dict:
    """Which Binder cumulant the Tc analysis uses on ``lat`` with ground state ``gs`` (:class:`.GroundState`):
    {"binder": "easy-axis" | "vector", "reason": str, "axis": n}.

    "easy-axis" in Ising mode, or when the ground state is collinear (⟨|ŝ_i·n|⟩ ≥ ``col_tol``), no continuous
    symmetry of H rotates the ordered moments (none, or a U(1) about n itself), no field couples to the order
    parameter (Σ σ_i z_i = 0), and the energy of the rigidly rotated ground-state pattern, E(u) = u·K·u with
    K = ½ Σ_{CSR entries i→j} σ_iσ_j S_iS_j sym(J_ij) + Σ_i S_i² sym(A_i) (meV; exact for the bilinear H;
    :func:`.groundstate.easy_axis_of`), has a non-degenerate minimum along n.  Otherwise "vector" (isotropic, easy-plane,
    non-collinear, field-coupled)."""
    n = np.asarray(gs.axis, float)

    def vector(why):
        return {"binder": "vector", "reason": why, "axis": n.tolist()}

    if ising:
        return {"binder": "easy-axis", "reason": "Ising mode: the order parameter is its z component",
                "axis": [0.0, 0.0, 1.0]}
    if gs.collinearity < col_tol:
        return vector(f"non-collinear ground state (collinearity {gs.collinearity:.3f})")
    sig = np.asarray(gs.pattern, float)
    zee = np.asarray(lat.zee, float)
    if np.any(zee) and np.linalg.norm((sig[:, None] * zee).sum(axis=0)) > 1e-12 * max(1.0, np.abs(zee).max()):
        return vector("a field couples to the order parameter")
    axes = continuous_symmetry(lat.model)
    if len(axes) == 3:
        return vector("isotropic (SO(3)) model")
    if len(axes) == 1 and abs(float(np.dot(axes[0] / np.linalg.norm(axes[0]), n))) < col_tol:
        return vector("a U(1) symmetry rotates the ordered moments (easy plane)")
    v, gap = easy_axis_of(lat, sig)
    if v is None:
        return vector("no single easy axis (degenerate minimum of the anisotropy energy)")
    if abs(float(v @ n)) < col_tol:
        return vector("the ground-state axis is not the easy axis of the pattern's anisotropy energy")
    gap = gap / lat.n_sites
    return {"binder": "easy-axis", "axis": n.tolist(),
            "reason": f"collinear ground state with a single easy axis (anisotropy gap {gap:.3g} meV per site): "
                      "Binder cumulant of the order-parameter component along it"}


# ------------------------------------------------------------------------------------------------ estimators
def _parabola_vertex(T, y):
    k = int(np.argmax(y))
    lo, hi = max(0, k - 2), min(len(T), k + 3)
    if hi - lo < 3:
        return float(T[k])
    c = np.polyfit(T[lo:hi], y[lo:hi], 2)
    if c[0] >= 0:
        return float(T[k])
    v = -c[1] / (2 * c[0])
    return float(np.clip(v, T[lo], T[hi - 1]))


def find_peak(T, y, err, n_boot: int = 200, seed: int = 0) -> dict:
    """Peak position (K) of y(T) with a bootstrap uncertainty.  A maximum at the first or last temperature is not a
    peak: then ``at_edge`` is True, ``T`` is that edge temperature, ``error`` None and ``bound`` "lower" (maximum at
    the upper edge: the peak lies at T ≥ T[-1]) or "upper" (at the lower edge: T ≤ T[0]); else ``bound`` None."""
    T = np.asarray(T, float)
    y = np.asarray(y, float)
    err = np.nan_to_num(np.asarray(err, float))
    k = int(np.argmax(y))
    if k == 0 or k == len(T) - 1:
        return {"T": float(T[k]), "error": None, "height": float(y[k]), "at_edge": True,
                "bound": "lower" if k == len(T) - 1 and len(T) > 1 else "upper"}
    g = np.random.default_rng(seed)
    boot = [_parabola_vertex(T, y + err * g.normal(size=len(y))) for _ in range(n_boot)]
    return {"T": _parabola_vertex(T, y), "error": float(np.std(boot)), "height": float(y[k]), "at_edge": False,
            "bound": None}


def peak_text(p: dict) -> str:
    """'61.20 ± 0.80 K' for a peak, '≥ 80.00 K (upper window edge)' / '≤ 20.00 K (lower window edge)' for a
    maximum at an edge of the window (module docstring)."""
    if p.get("at_edge"):
        return (f"≥ {p['T']:.2f} K (upper window edge)" if p.get("bound", "lower") == "lower"
                else f"≤ {p['T']:.2f} K (lower window edge)")
    return f"{p['T']:.2f} ± {(p.get('error') or 0.0):.2f} K"


def _crossings(T, ua, ub, sd=None):
    """+ → − sign changes of d = ub − ua with a significance weight: Σ d/σ over the two points before minus the
    same over the two points after the change."""
    d = ub - ua
    sd = np.ones_like(d) if sd is None else np.maximum(sd, 1e-12)
    z = d / sd
    out = []
    for k in range(len(T) - 1):
        if d[k] > 0 >= d[k + 1]:
            t = T[k] + (T[k + 1] - T[k]) * d[k] / (d[k] - d[k + 1])
            if not T[0] < t < T[-1]:  # a crossing at the last temperature is not bracketed
                continue
            w = z[max(0, k - 1):k + 1].sum() - z[k + 1:k + 3].sum()
            out.append((t, w, k))
    return out


def binder_crossing(T, ua, ea, ub, eb, n_boot: int = 200, seed: int = 0, min_significance: float = 3.0) -> dict | None:
    """Crossing temperature of two Binder curves (size a < size b) with a bootstrap uncertainty, or None.

    The crossing is the + → − sign change of U4_b − U4_a with the largest significance (Σ |d|/σ_d of the two
    points on either side); one below ``min_significance`` is noise (e.g. where both curves sit at their high- or
    low-temperature limits) and is ignored."""
    T = np.asarray(T, float)
    ua, ub = np.asarray(ua, float), np.asarray(ub, float)
    ea, eb = np.nan_to_num(np.asarray(ea, float)), np.nan_to_num(np.asarray(eb, float))
    sd = np.hypot(ea, eb)
    cr = _crossings(T, ua, ub, sd)
    if not cr:
        return None
    t0, w0, k0 = max(cr, key=lambda c: c[1])
    if w0 < min_significance:
        return None
    g = np.random.default_rng(seed)
    boot = []
    for _ in range(n_boot):
        c = _crossings(T, ua + ea * g.normal(size=len(T)), ub + eb * g.normal(size=len(T)))
        c = [x for x in c if abs(x[2] - k0) <= 2]
        if c:
            boot.append(min(c, key=lambda x: abs(x[0] - t0))[0])
    err = float(np.std(boot)) if len(boot) > 1 else float(T[min(k0 + 1, len(T) - 1)] - T[k0])
    return {"T": float(t0), "error": err, "significance": float(w0), "n_boot_found": len(boot)}


@dataclass
class TcResult:
    """Ordering-temperature analysis (K).  ``tc``/``tc_error``/``method`` is a Binder crossing bracketed inside the
    window ``t_window`` (``status`` "bracketed"), else None with ``status`` "not bracketed", ``side`` ("above tmax",
    "below tmin" or None) and the one-line ``note`` (module docstring); ``passes`` lists the windows tried by
    :func:`until_bracketed`.  ``mermin_wagner`` True means the true Tc is zero and ``tc`` is only a finite-size
    crossover (see ``warning``)."""

    sizes: list
    tc: float | None
    tc_error: float | None
    method: str
    peaks_C: dict
    peaks_chi: dict
    crossings: list
    mermin_wagner: bool = False
    warning: str = ""
    symmetry: str = ""
    runs: list = field(default_factory=list)
    ground_state: dict = field(default_factory=dict)
    status: str = "bracketed"
    side: str | None = None
    note: str = ""
    t_window: list = field(default_factory=list)
    passes: list = field(default_factory=list)
    binder: str = "vector"
    binder_reason: str = ""

    @property
    def bracketed(self) -> bool:
        return self.status == "bracketed" and self.tc is not None

    def headline(self, name: str = "Tc") -> str:
        """'Tc = 61.2 ± 0.8 K (Binder crossing 12x12x1/18x18x1)', or the 'not bracketed: ...' note — never a
        number that is not a bracketed crossing."""
        if self.bracketed:
            return f"{name} = {self.tc:.2f} ± {(self.tc_error or 0.0):.2f} K ({self.method})"
        return f"{name}: {self.note or 'not bracketed'}"

    def as_dict(self, with_runs: bool = True) -> dict:
        d = {"tc_K": self.tc, "tc_error_K": self.tc_error, "method": self.method, "status": self.status,
             "side": self.side, "note": self.note, "t_window_K": self.t_window, "passes": self.passes,
             "sizes": self.sizes, "binder": self.binder, "binder_reason": self.binder_reason,
             "peaks_C": self.peaks_C, "peaks_chi": self.peaks_chi, "binder_crossings": self.crossings,
             "mermin_wagner": self.mermin_wagner, "warning": self.warning, "continuous_symmetry": self.symmetry,
             "ground_state": self.ground_state,
             "convention": "H = sum_{i<j} S_i.J_ij.S_j + sum_i S_i.A_i.S_i - g muB B.S_i; J > 0 AF; meV; T in K"}
        if with_runs:
            d["runs"] = [r.as_dict() if isinstance(r, PTResult) else r for r in self.runs]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TcResult":
        """Inverse of :meth:`as_dict` (runs stay dicts)."""
        return cls(sizes=list(d.get("sizes", [])), tc=d.get("tc_K"), tc_error=d.get("tc_error_K"),
                   method=d.get("method", ""), peaks_C=d.get("peaks_C", {}), peaks_chi=d.get("peaks_chi", {}),
                   crossings=list(d.get("binder_crossings", [])), mermin_wagner=bool(d.get("mermin_wagner", False)),
                   warning=d.get("warning", ""), symmetry=d.get("continuous_symmetry", ""),
                   runs=list(d.get("runs", [])), ground_state=d.get("ground_state", {}),
                   status=d.get("status", "bracketed"), side=d.get("side"), note=d.get("note", ""),
                   t_window=list(d.get("t_window_K", [])), passes=list(d.get("passes", [])),
                   binder=d.get("binder", "vector"), binder_reason=d.get("binder_reason", ""))

    def save(self, path) -> Path:
        _atomic_write(Path(path), json.dumps(self.as_dict(), indent=1))
        return Path(path)


def analyse_sizes(curves: dict, mw: dict | None = None, binder: str | dict = "vector", notes=()) -> TcResult:
    """Tc analysis of ``curves`` = {label: {"T": temperatures (K), "n_sites": N, name: (values, errors)}} for
    name in C, chi, U4 (and U4_axis, chi_axis; labels sorted by n_sites).  ``binder``: "vector" (U4, chi) or
    "easy-axis" (U4_axis, chi_axis), or a :func:`binder_kind` dict; "easy-axis" falls back to "vector" (saying
    so) when a curve lacks U4_axis.  ``notes``: the caller's warnings about the runs themselves (e.g.
    :func:`lattice_range_notes`), first in ``warning``."""
    why = ""
    if isinstance(binder, dict):
        binder, why = binder.get("binder", "vector"), binder.get("reason", "")
    if binder not in ("vector", "easy-axis"):
        raise MonteCarloError(f"binder must be 'vector' or 'easy-axis', got {binder!r}")
    labels = sorted(curves, key=lambda k: curves[k]["n_sites"])
    if binder == "easy-axis" and not all("U4_axis" in curves[k] and "chi_axis" in curves[k] for k in labels):
        binder, why = "vector", "easy-axis cumulant requested but not measured in every curve"
    ukey, ckey = ("U4_axis", "chi_axis") if binder == "easy-axis" else ("U4", "chi")
    peaks_C = {str(k): find_peak(curves[k]["T"], *curves[k]["C"]) for k in labels}
    peaks_chi = {str(k): find_peak(curves[k]["T"], *curves[k][ckey]) for k in labels}
    crossings = []
    for a in range(len(labels)):
        for b in range(a + 1, len(labels)):
            ca, cb = curves[labels[a]], curves[labels[b]]
            if len(ca["T"]) == len(cb["T"]) and np.allclose(ca["T"], cb["T"], rtol=1e-9):
                c = binder_crossing(ca["T"], *ca[ukey], *cb[ukey])
            else:  # different ladders (feedback): interpolate both on the larger size's grid within the overlap
                lo, hi = max(ca["T"][0], cb["T"][0]), min(ca["T"][-1], cb["T"][-1])
                grid = cb["T"][(cb["T"] >= lo) & (cb["T"] <= hi)]
                if len(grid) < 3:
                    continue
                ua, ea = (np.interp(grid, ca["T"], x) for x in ca[ukey])
                ub, eb = (np.interp(grid, cb["T"], x) for x in cb[ukey])
                c = binder_crossing(grid, ua, ea, ub, eb)
            if c is not None:
                crossings.append({"sizes": [str(labels[a]), str(labels[b])], **c})
    tc = tc_err = side = None
    status, note = "bracketed", ""
    window = [float(min(curves[k]["T"][0] for k in labels)), float(max(curves[k]["T"][-1] for k in labels))] \
        if labels else []
    if crossings:
        big = [c for c in crossings if c["sizes"] == [str(labels[-2]), str(labels[-1])]]
        main = big[0] if big else crossings[-1]
        spread = float(np.std([c["T"] for c in crossings])) if len(crossings) > 1 else 0.0
        tc, tc_err, method = main["T"], float(np.hypot(main["error"], spread)), \
            f"Binder crossing {main['sizes'][0]}/{main['sizes'][1]}"
    else:
        status, method = "not bracketed", "not bracketed"
        side = _crossing_side(curves, labels, peaks_chi, ukey=ukey)
        note = _not_bracketed_note(window, side, labels, peaks_chi)
    mw = mw or {}
    notes = [*notes, *([mw["reason"]] if mw.get("reason") else [])]
    notes += convergence_notes(tc, crossings, peaks_C, labels) if not mw.get("flag") else []
    if tc is not None and binder == "easy-axis" and not mw.get("flag"):
        notes += easy_axis_crossing_notes(tc, curves[main["sizes"][1]] if main["sizes"][1] in curves
                                          else curves[labels[-1]], ukey)
    return TcResult(sizes=[str(k) for k in labels], tc=tc, tc_error=tc_err, method=method, peaks_C=peaks_C,
                    peaks_chi=peaks_chi, crossings=crossings, mermin_wagner=bool(mw.get("flag", False)),
                    warning="; ".join(notes), symmetry=mw.get("symmetry", ""), status=status, side=side, note=note,
                    t_window=window, binder=binder, binder_reason=why)


def _crossing_side(curves: dict, labels: list, peaks_chi: dict, z_sig: float = 3.0, ukey: str = "U4") -> str | None:
    """Where the Binder crossing of the two largest lattices lies when none was found inside the window.  From the
    Binder cumulants: "above tmax" if U4_L' − U4_L (L' > L) is significantly positive somewhere (> ``z_sig`` σ) and
    nowhere significantly negative (the whole window is on the ordered side), "below tmin" in the opposite case.
    From the χ maximum of the largest lattice: "above tmax" at the upper edge, "below tmin" at the lower edge.  The
    two must agree where both speak; None if undecided (e.g. one size with an interior χ maximum)."""
    binder = None
    if len(labels) >= 2:
        ca, cb = curves[labels[-2]], curves[labels[-1]]
        grid = cb["T"]
        ua, ea = (np.interp(grid, ca["T"], np.asarray(x, float)) for x in ca[ukey])
        ub, eb = np.asarray(cb[ukey][0], float), np.asarray(cb[ukey][1], float)
        sd = np.maximum(np.hypot(np.nan_to_num(ea), np.nan_to_num(eb)), 1e-12)
        z = np.nan_to_num((ub - ua) / sd)
        pos, neg = bool(np.any(z > z_sig)), bool(np.any(z < -z_sig))
        binder = "above tmax" if pos and not neg else ("below tmin" if neg and not pos else None)
    p = peaks_chi.get(str(labels[-1])) if labels else None
    chi = None
    if p and p.get("at_edge"):
        chi = "above tmax" if p.get("bound") == "lower" else "below tmin"
    if binder and chi and binder != chi:
        return None
    if binder and p and not p.get("at_edge"):
        return None  # an interior χ maximum: the transition region lies inside, the crossing is not resolved
    return binder or chi


def _not_bracketed_note(window: list, side: str | None, labels: list, peaks_chi: dict) -> str:
    lo, hi = window if window else (float("nan"), float("nan"))
    if len(labels) < 2:
        why = f"one lattice size ({labels[0] if labels else 'none'}): Binder crossings need at least two"
    else:
        why = f"Binder cumulants do not cross inside [{lo:.4g}, {hi:.4g}] K"
    where = {"above tmax": f"crossing above tmax = {hi:.4g} K", "below tmin": f"crossing below tmin = {lo:.4g} K"}
    txt = f"not bracketed: {why} ({where.get(side, 'crossing not located')})"
    p = peaks_chi.get(str(labels[-1])) if labels else None
    if p:
        txt += f"; chi maximum of {labels[-1]} {peak_text(p)}"
    return txt


def convergence_notes(tc, crossings: list, peaks_C: dict, labels) -> list[str]:
    """Warnings that a finite-size estimate is not converged (K): Binder crossings of different size pairs that
    disagree by more than 15 % of Tc, and a specific-heat maximum of the largest lattice more than 1.5 × above the
    crossing — the signature of a nearly isotropic 2D magnet, whose short-range order (the C maximum) builds up far
    above the ordering set by a weak anisotropy, and whose Binder crossings converge only on lattices larger than
    the anisotropy length (measured: the VPS3 fast-preset model, Δ/(J S²) ≈ 6e-4, gave 18/24 crossings of 109 and
    278 K in two independent runs)."""
    out = []
    if tc is None or not crossings:
        return out
    ts = [c["T"] for c in crossings]
    if len(ts) > 1 and max(ts) - min(ts) > 0.15 * abs(tc):
        out.append("the Binder crossings of the size pairs disagree (" + ", ".join(
            f"{c['sizes'][0]}/{c['sizes'][1]}: {c['T']:.1f} K" for c in crossings)
            + "): the ordering temperature is not converged on these lattices")
    pc = peaks_C.get(str(labels[-1])) if labels else None
    if pc and not pc.get("at_edge") and pc["T"] > 1.5 * tc:
        out.append(f"the specific heat of {labels[-1]} peaks at {pc['T']:.0f} K, far above the Binder crossing "
                   f"{tc:.0f} K: a nearly isotropic 2D magnet (weak anisotropy); its ordering temperature converges "
                   "slowly with the lattice size")
    return out


#: below this anisotropy-to-exchange ratio x (Torelli–Olsen's x = −A_eff/J_eff, else |ΔE_aniso| / (|J1| S²)) a 2D
#: magnet counts as nearly isotropic: its anisotropy length exceeds every lattice the presets of ``wannmag run`` use,
#: and the Binder crossings of small lattices drift down with L (measured on the VPS3 model, x = 6.0e-4:
#: data/mc/VPS3_TN_converged.json).  CrI3 (fast preset): x ≈ 0.05.
NEARLY_ISOTROPIC_X = 1e-2


def nearly_isotropic_caveat(x, how: str, sizes=(), measured: dict | None = None) -> str | None:
    """The caveat of a Monte Carlo ordering temperature of a nearly isotropic 2D magnet, or None: ``x`` is its
    anisotropy-to-exchange ratio (``how`` names it, e.g. "Torelli–Olsen x = −A_eff/J_eff"); below
    :data:`NEARLY_ISOTROPIC_X` the lattices ``sizes`` (integers L) lie far below the anisotropy length and see an almost
    isotropic 2D Heisenberg magnet, whose Binder crossings drift down as L grows, so the crossing of small lattices is
    an upper estimate of the model's T_N, not a converged one.  ``measured`` (optional, the caller's data): {"what":
    the measured model, "crossings": [{"pair": [L, L'], "T_K": K}, ...], "source": where it is stored} — quoted in
    the text as the evidence ("252 K at L = 48/64, 236 K at 96/128, not converged"); without it the text quotes
    nothing.  The caller decides whether there is a number to caveat (a finite, non-Mermin–Wagner Tc)."""
    if x is None or x >= NEARLY_ISOTROPIC_X:
        return None
    sizes = [s for s in sizes or [] if isinstance(s, int)]
    L = f"L ≤ {max(sizes)}" if sizes else "these sizes"
    text = (f"nearly isotropic magnet ({how} = {x:.1e} < {NEARLY_ISOTROPIC_X:g}): lattices of {L} lie far below the "
            "anisotropy length, where the Binder crossings still drift down with L, so this ordering temperature is "
            "an upper estimate of the model's, not a converged value")
    if measured and measured.get("crossings"):
        pts = [f"{c['T_K']:.0f} K at {'L = ' if k == 0 else ''}{c['pair'][0]}/{c['pair'][1]}"
               for k, c in enumerate(measured["crossings"])]
        src = f"; {measured['source']}" if measured.get("source") else ""
        text += f" ({measured.get('what') or 'measured'}: {', '.join(pts)}, {measured.get('verdict', 'not converged')}{src})"
    return text


#: the easy-axis cumulant U4 of q_n = Q·n is 2/3 for order along n, 0.4 for order along a random direction (lattices
#: below the anisotropy length: the isotropic part orders, the anisotropy is not yet felt) and 0 for no order; at the
#: Ising transition of a uniaxial 2D magnet it crosses near U* ≈ 0.61.  A crossing below the midpoint of 0.4 and
#: 0.61 is the finite-size crossover of the isotropic part, not the easy-axis transition.
EASY_AXIS_U4_MIN = 0.5


def easy_axis_crossing_notes(tc: float, curve: dict, ukey: str = "U4_axis") -> list[str]:
    """A warning when the easy-axis Binder cumulant at the crossing ``tc`` (K; interpolated on the larger lattice's
    ``curve``) lies below :data:`EASY_AXIS_U4_MIN`: the lattices do not resolve the anisotropy, so the crossing is
    not the easy-axis (Ising-class) transition — measured on the VPS3 fast-preset demo (anisotropy/exchange 6e-4,
    L = 6–12): U4_axis ≈ 0.39 at the 'crossing', i.e. order along a random direction."""
    try:
        T = np.asarray(curve["T"], float)
        u = float(np.interp(tc, T, np.asarray(curve[ukey][0], float)))
    except (KeyError, IndexError, TypeError, ValueError):
        return []
    if not np.isfinite(u) or u >= EASY_AXIS_U4_MIN:
        return []
    return [f"the easy-axis Binder cumulant at the crossing is {u:.2f}, near the 0.4 of order along a random direction "
            f"and below {EASY_AXIS_U4_MIN} (Ising crossings lie near 0.61): these lattices are smaller than the "
            "anisotropy length, so this crossing is the finite-size crossover of the isotropic exchange, not the "
            "easy-axis ordering transition"]


def curves_of(r: PTResult) -> dict:
    return {"T": r.temperatures, "n_sites": r.n_sites,
            **{k: r.observables[k] for k in ("C", "chi", "U4", "Q", "M", "energy", "chi_M", "Q_axis", "chi_axis",
                                             "U4_axis") if k in r.observables}}


def _label(size) -> str:
    s = _as_size(size)
    return "x".join(map(str, s))


def simulate(model: SpinModel, size, settings: MCSettings, vacancies=None, near_vacancy=None, checkpoint=None,
             seed_key=None, spins=None, bond_exchange=None) -> tuple[PTResult, object]:
    """Ground state (annealing) + parallel tempering of ``model`` on one lattice (``vacancies``, ``near_vacancy``,
    ``spins`` and ``bond_exchange`` as in :func:`~.lattice.build_lattice`); returns (PTResult, GroundState)."""
    lat = build_lattice(model, size, vacancies=vacancies, near_vacancy=near_vacancy, spins=spins,
                        bond_exchange=bond_exchange)
    gs = ground_state(lat, ising=settings.ising, seed=settings.seed)
    key = seed_key if seed_key is not None else (settings.seed, *lat.size)
    res = parallel_tempering(lat, settings, pattern=gs.pattern, init=gs.spins, checkpoint=checkpoint, seed_key=key,
                             ground_state=gs.as_dict(), order_axis=gs.axis)
    return res, gs


def check_memory(model: SpinModel, sizes, settings: MCSettings) -> None:
    """Refuse (one :class:`MonteCarloError` line) runs whose replicas × sites exceed
    :data:`~.tempering.MAX_SPINS` before anything is built."""
    n_rep = len(temperature_ladder(settings))
    for s in sizes:
        L = _as_size(s)
        n = L[0] * L[1] * L[2] * model.n_sites * n_rep
        if n > MAX_SPINS:
            raise MonteCarloError(f"{n_rep} replicas × {L[0] * L[1] * L[2] * model.n_sites} sites of the "
                                  f"{'x'.join(map(str, L))} lattice = {n} spins, more than the {MAX_SPINS:.0e} one "
                                  "run holds in memory; use fewer replicas or smaller sizes")


def check_sizes(model: SpinModel, sizes, settings: MCSettings) -> list:
    """The lattice sizes as 3-tuples after the checks every Tc search makes before anything runs: at least one size,
    periodic sizes ≥ 2, valid settings, memory (:func:`check_memory`); one :class:`MonteCarloError` line otherwise."""
    full = [_as_size(s) for s in sizes]
    if not full:
        raise MonteCarloError("give at least one lattice size")
    for s in full:
        for a in range(3):
            if model.pbc[a] and s[a] < 2 and any(x[a] >= 2 for x in full):
                raise MonteCarloError(f"lattice size {list(s)}: periodic sizes must be at least 2")
    settings.validate()
    check_memory(model, full, settings)
    return full


def ordering_temperature(model: SpinModel, sizes, settings: MCSettings, out_dir=None, warn: bool = True) -> TcResult:
    """Parallel tempering on every size in ``sizes`` (each an integer L → L×L×1, or 2-3 integers) and the Tc
    analysis (module docstring).  With ``out_dir``, each size checkpoints to ``out_dir/checkpoint_<L>.npz``
    (resumed if present).  Emits :class:`MerminWagnerWarning` (and sets ``mermin_wagner``) for 2D models with an
    unbroken continuous symmetry."""
    sizes = check_sizes(model, sizes, settings)
    lat0 = build_lattice(model, sizes[0])
    gs0 = ground_state(lat0, ising=settings.ising, seed=settings.seed)
    mw = mermin_wagner_check(model, lat0.dimension, settings.ising, gs0.spins, lat0.slen)
    if mw["flag"] and warn:
        warnings.warn(mw["reason"], MerminWagnerWarning, stacklevel=2)
    runs = []
    for s in sizes:
        ck = None if out_dir is None else Path(out_dir) / f"checkpoint_{_label(s)}.npz"
        res, _ = simulate(model, s, settings, checkpoint=ck)
        runs.append(res)
    tcr = analyse_sizes({_label(r.size): curves_of(r) for r in runs}, mw,
                        binder_kind(lat0, gs0, settings.ising), notes=lattice_range_notes(model, sizes))
    tcr.runs = runs
    tcr.ground_state = runs[0].ground_state
    return tcr


def lattice_range_notes(model: SpinModel, sizes) -> list[str]:
    """One warning per lattice of ``sizes`` below the bond range of ``model``
    (:func:`~.lattice.range_problem`: periodic images of different bonds join the same pair of sites, so the run
    simulates a different model; Metropolis runs it exactly as built, cluster moves refuse it)."""
    need = min_size_for_range(model)
    out = []
    for s in sizes:
        s = _as_size(s)
        if all(s[a] >= need[a] for a in range(3) if model.pbc[a]):
            continue  # above the range: no two bonds can meet through images
        why = range_problem(build_lattice(model, s))
        if why is not None:
            out.append(why)
    return out


def refine_window(tc, err, tmin, tmax):
    """Temperature window (K) of the refining Monte Carlo pass around a first estimate ``tc`` ± ``err`` from a
    ladder on [tmin, tmax]: tc ± max(3 err, 0.15 tc), clipped to (0.5 tmin, 1.5 tmax); None without an estimate."""
    if tc is None or not np.isfinite(tc) or tc <= 0:
        return None
    half = max(3.0 * (err if err is not None and np.isfinite(err) else 0.0), 0.15 * tc)
    lo, hi = max(tc - half, 0.5 * tmin, 1e-3), min(tc + half, 1.5 * tmax)
    return (float(lo), float(hi)) if hi > lo else None


def extend_window(side: str, tmin: float, tmax: float) -> tuple[float, float] | None:
    """Window (K) of the next pass when the Binder crossing lies outside [tmin, tmax]: with f = tmax/tmin clipped
    to [2, 4], [0.9 tmax, f·tmax] for ``side`` "above tmax" and [tmin/f, 1.1 tmin] for "below tmin" (the new window
    overlaps the old edge, so that a crossing just beyond it is bracketed); None for any other side or outside
    :data:`~.tempering.T_RANGE_K`."""
    f = float(np.clip(tmax / tmin, 2.0, 4.0))
    if side == "above tmax":
        lo, hi = 0.9 * tmax, f * tmax
    elif side == "below tmin":
        lo, hi = tmin / f, 1.1 * tmin
    else:
        return None
    if lo < T_RANGE_K[0] or hi > T_RANGE_K[1]:
        return None
    return float(lo), float(hi)


def next_window(tcr: TcResult, tmin: float, tmax: float) -> tuple[float, float] | None:
    """Window (K) of a further pass after ``tcr`` from a ladder on [tmin, tmax] — the one rule shared by ``wannmag
    mc``, the workflow's mc step and the vacancy study: around the bracketed crossing (:func:`refine_window`); if
    not bracketed, beyond the edge where the crossing lies (:func:`extend_window`), or around the χ maximum of the
    largest lattice when that lies inside the window but the Binder cumulants did not resolve a crossing; None if
    there is nothing to look for (no estimate, or a Mermin–Wagner model whose true Tc is zero)."""
    if tcr.mermin_wagner:
        return None
    if tcr.bracketed:
        return refine_window(tcr.tc, tcr.tc_error, tmin, tmax)
    w = extend_window(tcr.side, tmin, tmax)
    if w is not None:
        return w
    p = tcr.peaks_chi.get(tcr.sizes[-1]) if tcr.sizes else None
    if p and not p.get("at_edge") and tcr.side is None:
        return refine_window(p["T"], p.get("error"), tmin, tmax)
    return None


def choose_algorithm(lat0, pattern, other_lattices=(), requested: str | None = None) -> tuple[str, str]:
    """(algorithm, reason) for a run on ``lat0`` (and the further lattices ``other_lattices`` of the other sizes)
    with the ground-state ``pattern``: ``requested`` "metropolis" or "cluster" is kept (a cluster request the scheme
    cannot treat raises its :class:`.cluster.ClusterSchemeError` line); None or "auto" (the default) gives "cluster" where
    the cluster scheme is valid (:func:`.cluster.cluster_couplings`: grown bonds with an isotropic part at least
    their anisotropic remainder, a bond to grow on, lattices above the bond range) and "metropolis" with the
    refusal as the reason otherwise."""
    if requested == "metropolis":
        return "metropolis", "requested"
    requested = None if requested == "auto" else requested
    if requested not in (None, "cluster"):
        raise MonteCarloError(f"algorithm must be metropolis or cluster, got {requested!r}")
    try:
        cluster_couplings(lat0, pattern)
        for lat in other_lattices:
            check_cluster_lattice(lat)
    except ClusterSchemeError as exc:
        if requested == "cluster":
            raise
        return "metropolis", f"cluster moves not valid for this model ({exc}); Metropolis + over-relaxation"
    return "cluster", "requested" if requested == "cluster" else "default where valid (Wolff clusters by Ising " \
        "embedding + Metropolis + over-relaxation)"


def until_bracketed(run, settings: MCSettings, max_extensions: int = 3, log=None) -> tuple[TcResult, MCSettings]:
    """``run(settings, k) -> TcResult`` for pass k = 0, 1, ...; while the Binder crossing is not bracketed, the next
    pass runs on :func:`next_window` (seed + k, the other settings unchanged), at most ``max_extensions`` times
    (0: one pass); a window around an interior χ maximum (crossing side unknown) is tried only once.  Returns the
    first bracketed result (else the last one) with its settings; ``passes`` of the result lists every window tried
    with its status, ``log(str)`` is told about each extension.  The rule is :func:`search_passes` (no refining
    pass around a bracketed crossing, the last pass kept when none brackets one)."""
    k = iter(range(1, int(max_extensions) + 1))
    two = search_passes(run(settings, 0), settings, lambda st: run(st, next(k)), passes=int(max_extensions) + 1,
                        refine=False, keep="last", log=log)
    tcr = two.result
    tcr.passes = two.passes
    return tcr, two.settings


def refined_edge_warning(tc, window) -> str | None:
    """A warning when the refined estimate ``tc`` (K) lies within 10 % of an edge of its ``window`` (K): the first
    estimate was off and the refined number is approximate; None otherwise."""
    lo, hi = window
    margin = 0.1 * (hi - lo)
    if lo + margin <= tc <= hi - margin:
        return None
    return f"the refined T {tc:.1f} K lies at the edge of its window {lo:.1f}–{hi:.1f} K; treat it as approximate"


def checkpoint_key(model: SpinModel, settings: MCSettings, **extra) -> str:
    """Short hash of a spin model, Monte Carlo settings and anything else that defines a set of runs (``extra``,
    JSON-able): names checkpoint files/directories, so that a re-run with other inputs starts fresh instead of
    meeting the checkpoints of a different run, while an interrupted run with the same inputs resumes."""
    # the thread count does not change a run; the cluster settings at their defaults keep the keys of earlier versions
    items = {k: v for k, v in vars(settings).items()
             if k != "threads" and not (k in NEW_DEFAULTS and settings.algorithm == "metropolis")}
    # the measured moments are part of the key: checkpoints of the earlier layout (no easy-axis moments) cannot be
    # resumed, a run with the current one starts fresh beside them instead of meeting them
    blob = json.dumps(jsonable({"model": model.as_dict(), "settings": sorted(items.items()), **extra,
                                "observables": list(OBS_NAMES)}),
                      sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:10]


# ------------------------------------------------------------------------------------------- the two-pass search
def mean_field_temperature(model: SpinModel) -> float:
    """The classical mean-field temperature scale (K) of ``model``: k_B T_MF = S² Σ_j |J_ij| / 3, S the spin of the
    first site, Σ_j |J_ij| the mean over the sites of the summed |J_iso| (meV) of their bonds (each bond counted at
    both ends); the scale of the Monte Carlo windows of ``wannmag run`` (:func:`mean_field_window`)."""
    S = model.sites[0].spin
    zJ = sum(abs(b.J_iso) for b in model.bonds) * 2 / model.n_sites
    return S * S * zJ / 3 / MEV_PER_K


def mean_field_window(model: SpinModel, lo: float = 0.1, hi: float = 1.1) -> tuple[float, float]:
    """(lo·T_MF, hi·T_MF) in K (:func:`mean_field_temperature`): the first-pass window of the workflow's mc step
    (0.1–1.1) and of the vacancy study (0.03–1.1: dilution lowers T towards zero at the percolation threshold)."""
    t_mf = mean_field_temperature(model)
    return lo * t_mf, hi * t_mf


def _pass_entry(settings: MCSettings, tcr: TcResult) -> dict:
    return {"t_window_K": [float(settings.tmin), float(settings.tmax)], "status": tcr.status, "side": tcr.side,
            "tc_K": tcr.tc, "tc_error_K": tcr.tc_error, "method": tcr.method}


@dataclass
class RefinedTc:
    """The multi-pass ordering-temperature search of :func:`search_passes` (K): ``first`` the analysis of the first
    pass on ``first_window``; ``window`` the window of the last further pass (None: none ran — refining off,
    Mermin–Wagner, or nothing to look for) and ``second`` its analysis; ``result`` the reported analysis (the last
    one that bracketed a Binder crossing, else the first or the last pass's: ``keep``), ``reported`` its pass
    (0 = the first); ``warning`` the edge warning of a reported further pass (:func:`refined_edge_warning`);
    ``passes`` one line per pass run (window, status, side, Tc).  ``curves`` (not serialised) the curves of the
    reported pass, where the caller kept them (:func:`ordering_temperature_refined`); ``settings`` (not
    serialised) the Monte Carlo settings of the reported pass."""

    first: TcResult
    result: TcResult
    first_window: list
    window: tuple | None = None
    second: TcResult | None = None
    warning: str | None = None
    curves: dict = field(default_factory=dict, repr=False)
    passes: list = field(default_factory=list)
    reported: int = 0
    settings: MCSettings | None = field(default=None, repr=False)

    @property
    def refined(self) -> bool:
        """The reported analysis is a further pass's (for the two-pass search: the second pass bracketed a
        crossing)."""
        return self.reported > 0

    @property
    def t_window(self) -> list:
        """The window (K) of the reported pass."""
        return list(self.passes[self.reported]["t_window_K"]) if self.passes else list(self.first_window)

    def as_dict(self) -> dict:
        return {"first": self.first.as_dict(with_runs=False), "first_window_K": list(self.first_window),
                "window_K": None if self.window is None else list(self.window),
                "second": None if self.second is None else self.second.as_dict(with_runs=False),
                "refined": self.refined, "warning": self.warning, "passes": self.passes, "reported": self.reported}

    @classmethod
    def from_dict(cls, d: dict) -> "RefinedTc":
        """Inverse of :meth:`as_dict` (the reported analysis is the first pass's or the last further pass's; an
        intermediate pass of a longer search keeps its line in ``passes`` only)."""
        first = TcResult.from_dict(d["first"])
        second = None if d.get("second") is None else TcResult.from_dict(d["second"])
        passes = list(d.get("passes") or [])
        reported = d.get("reported")
        if reported is None:  # stored before the passes were: the second pass is reported when it bracketed
            reported = 1 if second is not None and second.bracketed else 0
        return cls(first=first, result=second if reported > 0 and second is not None else first,
                   first_window=list(d["first_window_K"]),
                   window=None if d.get("window_K") is None else tuple(d["window_K"]), second=second,
                   warning=d.get("warning"), passes=passes, reported=int(reported))


def search_passes(first: TcResult, settings: MCSettings, run, passes: int = 2, refine: bool = True,
                  keep: str = "first", log=None) -> RefinedTc:
    """Further Monte Carlo passes after a first one — the one rule of ``wannmag mc``, ``wannmag run``'s mc step and
    the vacancy study.  ``first`` is the analysis of a pass with ``settings`` (window [tmin, tmax] K); at most
    ``passes`` passes in all (the first included), each further one ``run(st) -> TcResult`` with ``st`` = settings
    on the window :func:`next_window` of the pass before (around a bracketed crossing T ± max(3σ, 0.15 T); beyond
    the edge where an unbracketed one lies; around an interior χ maximum, tried once; never for a Mermin–Wagner
    model) and seed + k for pass k.  A pass that brackets a crossing ends the search, except that with ``refine``
    the first such pass gets one refining pass around it.  Without a string ladder (explicit temperatures) the
    window cannot move: no further pass.

    Reported (``result``): the last pass that bracketed a crossing (with :func:`refined_edge_warning` if it is not
    the first pass); if none did, the first pass (``keep`` "first": the two-pass search of ``wannmag run``) or the
    last one (``keep`` "last": ``wannmag mc``, whose note then says where the crossing lies beyond the last
    window).  ``log(str)`` is told about each further pass."""
    if keep not in ("first", "last"):
        raise MonteCarloError(f"keep must be 'first' or 'last', got {keep!r}")
    runs = [(settings, first)]
    st, cur = settings, first
    for k in range(int(passes) - 1):
        if not isinstance(st.ladder, str):
            break
        if cur.bracketed and not (refine and k == 0):
            break  # a bracketed crossing ends the search (refined once if it is the first pass's)
        if not cur.bracketed and cur.side is None and k > 0:
            break  # a pass around the χ maximum did not resolve a crossing: another one would not either
        w = next_window(cur, st.tmin, st.tmax)
        if w is None:
            break
        if log is not None:
            log(f"window {st.tmin:.4g}-{st.tmax:.4g} K: {cur.headline('T') if cur.bracketed else cur.note}; "
                f"pass {k + 2} on {w[0]:.4g}-{w[1]:.4g} K")
        refining = cur.bracketed
        st = replace(settings, tmin=w[0], tmax=w[1], seed=settings.seed + k + 1)
        cur = run(st)
        runs.append((st, cur))
        if cur.bracketed or refining:
            break  # bracketed now, or the refining pass found none: the first pass's crossing stays
    hit = [k for k, (_, a) in enumerate(runs) if a.bracketed]
    rep = hit[-1] if hit else (0 if keep == "first" else len(runs) - 1)
    out = RefinedTc(first=first, result=runs[rep][1], first_window=[settings.tmin, settings.tmax],
                    passes=[_pass_entry(s_, a) for s_, a in runs], reported=rep, settings=runs[rep][0])
    if len(runs) > 1:
        out.window, out.second = (runs[-1][0].tmin, runs[-1][0].tmax), runs[-1][1]
    if rep > 0 and out.result.bracketed:
        out.warning = refined_edge_warning(out.result.tc, (runs[rep][0].tmin, runs[rep][0].tmax))
    return out


def second_pass(first: TcResult, settings: MCSettings, run, refine: bool = True) -> RefinedTc:
    """The two-pass Tc search of ``wannmag run``'s mc step and of the vacancy study: :func:`search_passes` with at
    most one further pass (none unless ``refine``) — on :func:`next_window` of ``first`` (around a bracketed
    crossing, or beyond the edge where an unbracketed one lies, or around an interior χ maximum), ``run(fine) ->
    TcResult`` with the same sizes and sweeps, seed + 1; the second analysis is reported only if it brackets a
    Binder crossing (with :func:`refined_edge_warning`), else the first stays."""
    return search_passes(first, settings, run, passes=2 if refine else 1, refine=True, keep="first")


def _size_label(size) -> str:
    """Curve label of a lattice size: "LxL" for an integer L (the labels of ``wannmag run``'s mc step), else
    "LxMxN"."""
    if isinstance(size, (int, np.integer)):
        return f"{int(size)}x{int(size)}"
    return _label(size)


def _size_task(args):
    """One lattice of a pass of :func:`ordering_temperature_refined` (a ``map_fn`` task: in this process, a spawned
    process or a Dask worker): (model, size, settings, checkpoint path or None[, keep the run]) → (size, curves,
    ground state[, the PTResult])."""
    model, size, settings, ck, *keep = args
    res, _ = simulate(model, size, settings, checkpoint=ck)
    return (size, curves_of(res), res.ground_state) + ((res,) if keep and keep[0] else ())


def ordering_temperature_refined(model: SpinModel, sizes, settings: MCSettings, refine: bool = True, map_fn=None,
                                 out_dir=None, mw: dict | None = None, binder=None, passes: int | None = None,
                                 refine_crossing: bool = True, keep: str = "first", log=None,
                                 with_runs: bool = False, checkpoint_path=None) -> RefinedTc:
    """The multi-pass Tc search on the perfect lattice (K): parallel tempering of ``model`` on every size of
    ``sizes`` (integers L → L×L×1, curves labelled "LxL"; or 2-3 integers) with ``settings``, the Tc analysis
    (:func:`analyse_sizes`), then :func:`search_passes` — by default the two-pass search of ``wannmag run``
    (:func:`second_pass`: at most ``passes`` = 2 passes, 1 without ``refine``; the reported analysis the second
    one only if it brackets a crossing); ``wannmag mc`` asks for ``passes`` = 1 + its extensions,
    ``refine_crossing`` False (a bracketed crossing ends the search) and ``keep`` "last".  ``map_fn(fn, tasks) ->
    list`` runs the sizes of a pass (in order; default: one after the other here; the workflow passes its process
    pool or Dask map — every task is seeded by its own settings and size, so the numbers do not depend on where it
    runs).  With ``out_dir`` every run checkpoints to ``out_dir/checkpoint_<L>_<checkpoint_key(model, settings of
    the pass)>.npz`` (an interrupted pass resumes, a pass with other inputs starts fresh), or where
    ``checkpoint_path(settings, k, size)`` says for pass k (``wannmag mc``'s own layout).  ``mw``
    (:func:`mermin_wagner_check`) and ``binder`` (:func:`binder_kind`) are computed from the ground state of the
    first size unless given.  ``with_runs``: every analysis keeps its :class:`~.tempering.PTResult` runs and the
    ground state of the first size's run (as :func:`ordering_temperature`).  ``log(str)``: told about each further
    pass.  No warning is emitted: a Mermin–Wagner model is flagged in the analyses."""
    sizes = list(sizes)
    check_sizes(model, sizes, settings)
    if mw is None or binder is None:
        lat0 = build_lattice(model, sizes[0])
        gs0 = ground_state(lat0, ising=settings.ising, seed=settings.seed)
        if mw is None:
            mw = mermin_wagner_check(model, lat0.dimension, settings.ising, gs0.spins, lat0.slen)
        if binder is None:
            binder = binder_kind(lat0, gs0, settings.ising)
    if map_fn is None:
        def map_fn(fn, tasks):
            return [fn(t) for t in tasks]
    done = []

    def run(st):
        key = checkpoint_key(model, st)
        tag = (lambda L: str(int(L)) if isinstance(L, (int, np.integer)) else "x".join(map(str, _as_size(L))))
        if checkpoint_path is not None:
            cks = [str(checkpoint_path(st, len(done), L)) for L in sizes]
        else:
            cks = [None if out_dir is None else str(Path(out_dir) / f"checkpoint_{tag(L)}_{key}.npz") for L in sizes]
        tasks = [(model, L, st, ck) + ((True,) if with_runs else ()) for L, ck in zip(sizes, cks)]
        runs = map_fn(_size_task, tasks)
        curves = {_size_label(r[0]): r[1] for r in runs}
        done.append(curves)
        tcr = analyse_sizes(curves, mw, binder, notes=small)  # lattices below the bond range: every pass says so
        if with_runs:
            tcr.runs = [r[3] for r in runs]
            tcr.ground_state = runs[0][3].ground_state
        return tcr

    small = lattice_range_notes(model, sizes)
    n = (2 if refine else 1) if passes is None else int(passes)
    out = search_passes(run(settings), settings, run, passes=n, refine=refine_crossing, keep=keep, log=log)
    out.curves = done[out.reported]
    return out

