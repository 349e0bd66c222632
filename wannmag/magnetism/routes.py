"""One exchange, several routes: J1–J3 of one material from every route that was computed, side by side (issue 17).

Conventions: exchange in meV, internal convention H = Σ_{i<j} J_ij S_i·S_j (each bond once, classical spins of length
S, J > 0 antiferromagnetic); the printed table also gives TB2J's convention (E = −Σ_{i≠j} J e_i·e_j, both
directions, unit spins, J > 0 ferromagnetic) through :data:`wannmag.magnetism.spinmodel.TB2J`
(J_TB2J = −J S_i S_j / 2).  Wall times in s.

Routes (a row each; a route whose file is absent is listed as "not computed" with the reason, never with numbers):

- energy mapping: DFT total energies of FM, Néel, zigzag, stripy → least squares (``data/dft/<m>_energies.json``);
- force theorem (FM reference): LKAG on the MLWF pair of the FM state (``data/dft/<m>``), computed on the spot;
- route files ``<m>_<kind>.json`` of :data:`ROUTE_KINDS` (spin spirals, force theorem on the Néel reference,
  ligand-downfolded force theorem, non-perturbative channels, GPAW's plane-wave force theorem), read as they are;
- derived: the average of the FM- and Néel-reference force theorems (below).

Reference-state average (issue 17, item 2).  Rotate the two sublattices of the honeycomb lattice against each other
by θ (θ = 0 FM, θ = π Néel).  The energy per magnetic ion changes by the integral of the torque along the path,

    E_Néel − E_FM = ∫_0^π (dE/dθ) dθ,    dE/dθ = −(z_n/2) S² Σ_n J_n^eff(θ) sin θ    (inter-sublattice shells n),

which defines an angle-dependent effective exchange J_n^eff(θ); the force theorem on the FM (Néel) reference state
measures J_n^eff(0) (J_n^eff(π)), and energy mapping measures the sin-weighted path average
J_n^map = ½ ∫_0^π J_n^eff(θ) sin θ dθ.  If J^eff is linear in cos θ — the simplest non-Heisenberg case, a
biquadratic term B (S_i·S_j)² gives J^eff(θ) = J + 2 B S² cos θ — the integral of sin θ cos θ vanishes and

    J^map = [J^eff(0) + J^eff(π)] / 2,

i.e. energy mapping equals the average of the FM- and Néel-reference force theorems exactly.  The derived row
"force theorem, average of FM and Néel references" is that average, and the gap analysis lists (average − FM) as
the reference-state contribution to the J1 gap.  For same-sublattice shells (J2 of the honeycomb) the path does not
rotate the pair, so both references should give the same J2 and the average carries no path information.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from .._atomic import jsonable, read_json
from ..errors import WannmagError
from ..tightbinding import read_w90
from ..tightbinding.electronic import midgap_fermi_level
from .energy_mapping import FitError, fit_exchange, read_energies
from .mft import hamiltonian_from_tb, lkag_exchange, mft_spin_model
from .spinmodel import TB2J

__all__ = ["Route", "ExchangeRoutes", "RoutesError", "ROUTE_KINDS", "read_route_file", "energy_mapping_route",
           "force_theorem_route", "build_routes", "routes_from_run_steps", "MC_CHOICE", "read_routes_json",
           "is_automatic"]

CONVENTION = "meV; H = sum_{i<j} J S_i.S_j, each bond once, classical spins |S| = S, J > 0 AF"

#: route files <material>_<kind>.json: kind → (route name, what it is, why it may be missing)
ROUTE_KINDS = {
    "neel_mft": ("force theorem (Néel reference)",
                 "LKAG on the MLWF pair of the Néel state (pair term divided by sign(m_i·m_j))",
                 "needs a Néel-state DFT run and Wannierisation (data/exchange/neel_wannier.py)"),
    "spiral": ("spin spiral (self-consistent)",
               "GPAW generalized Bloch theorem E(q) along Γ–M–K–Γ, fitted with the classical honeycomb E(q)",
               "needs self-consistent non-collinear GPAW runs (LDA+U only)"),
    "ligand_mft": ("force theorem, ligand spins downfolded",
                   "LKAG with ligand sites as magnetic sites, ligand spins downfolded to an effective metal–metal J",
                   "module wannmag.magnetism.mft_ligand; route file not written yet"),
    "gpaw_mft": ("GPAW plane-wave force theorem",
                 "gpaw.response.mft Heisenberg/IsotropicExchangeCalculator (site-based, Wannier-free)",
                 "needs GPAW response calculations on the ground state"),
    "channels": ("channels, non-perturbative",
                 "orbital-resolved Green's-function split / exact diagonalisation of the M2X2 cluster",
                 "route file not written yet"),
    "wannier_basis": ("force theorem (FM reference), another Wannier basis",
                      "LKAG on an independent Wannierisation of the same ground state (other window/projections)",
                      "needs a second Wannierisation of the FM state; the force-theorem J1 moves with the basis "
                      "(issue 17: 1.87 against 1.08 meV in TB2J's convention for another CrI3 fit)"),
}

#: which J the Monte Carlo uses, and why
MC_CHOICE = ("energy mapping", "it is made of self-consistent total energies of the collinear states that the Monte "
             "Carlo samples, with the run's own functional and U: ligand moments, d–p hybridisation and "
             "non-Heisenberg terms are relaxed in every state, so it averages over the path between them; the "
             "force theorem is the curvature at one frozen reference state and moves with the reference and the "
             "Wannier basis, and GPAW's self-consistent spin spirals are LDA(+U) only")


class RoutesError(WannmagError):
    """Route files that cannot be compared (unreadable, another material, mismatched spin or model)."""


def _finite_or_none(x, where: str, what: str):
    if x is None:
        return None
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x) or abs(x) > 1e4:
        raise RoutesError(f"{where}: {what} must be a finite number of meV (|J| ≤ 1e4) or null, got {x!r}")
    return float(x)


def _seconds(x, where: str):
    """Wall time: a number, or a dict of parts (its 'total' if given, else the sum of its top-level numbers; nested
    dicts are taken as breakdowns and not added — the dict is kept in the route's settings as 'seconds_parts')."""
    if x is None:
        return None
    if isinstance(x, dict):
        if isinstance(x.get("total"), (int, float)):
            return float(x["total"])
        parts = [v for v in x.values() if isinstance(v, (int, float)) and not isinstance(v, bool)]
        return float(sum(parts)) if parts else None
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x) or x < 0:
        raise RoutesError(f"{where}: seconds must be a non-negative number, got {x!r}")
    return float(x)


@dataclass
class Route:
    """One route's J1–J3 (meV, internal convention; None where the route gives no value).

    status: "computed", "derived" (from other rows) or "not computed" (then ``reason`` says why and J's are None);
    reference: the magnetic state the route expands around ("FM", "Néel", …) where that applies; seconds: wall time
    of the route as measured (the upstream DFT and Wannierisation in ``settings`` where known)."""

    name: str
    J1: float | None = None
    J2: float | None = None
    J3: float | None = None
    method: str = ""
    settings: dict = field(default_factory=dict)
    seconds: float | None = None
    status: str = "computed"
    reason: str = ""
    reference: str | None = None
    source: str = ""

    @property
    def J(self) -> list:
        return [self.J1, self.J2, self.J3]

    def as_dict(self) -> dict:
        return jsonable({"name": self.name, "J1": self.J1, "J2": self.J2, "J3": self.J3, "method": self.method,
                         "settings": self.settings, "seconds": self.seconds, "status": self.status,
                         "reason": self.reason, "reference": self.reference, "source": self.source})

    @classmethod
    def from_dict(cls, d: dict, where: str = "route") -> "Route":
        if not isinstance(d, dict) or not isinstance(d.get("name"), str) or not d["name"].strip():
            raise RoutesError(f"{where}: a route must be an object with a non-empty 'name'")
        w = f"{where} ({d['name']})"
        J = d.get("J_meV")
        vals = {k: d.get(k) for k in ("J1", "J2", "J3")}
        if all(v is None for v in vals.values()) and isinstance(J, list):
            vals = {f"J{n + 1}": (J[n] if n < len(J) else None) for n in range(3)}
        vals = {k: _finite_or_none(v, w, k) for k, v in vals.items()}
        status = d.get("status") or ("computed" if vals["J1"] is not None else "not computed")
        if status not in ("computed", "derived", "not computed"):
            status = "not computed" if vals["J1"] is None else "computed"
        if status != "not computed" and vals["J1"] is None:
            raise RoutesError(f"{w}: no J1 (give J1 in meV, or status 'not computed' and a reason)")
        if status == "not computed":
            vals = {k: None for k in vals}  # never show numbers of a route that did not finish
        settings = dict(d.get("settings")) if isinstance(d.get("settings"), dict) else {}
        if isinstance(d.get("seconds"), dict):  # keep the breakdown beside the one number of the table
            settings.setdefault("seconds_parts", d["seconds"])
        ref = d.get("reference")
        return cls(name=d["name"].strip(), **vals, method=str(d.get("method") or ""), settings=settings,
                   seconds=_seconds(d.get("seconds"), w), status=status, reason=str(d.get("reason") or ""),
                   reference=ref if isinstance(ref, str) else None, source=str(d.get("source") or ""))


@dataclass
class ExchangeRoutes:
    """Every exchange route of one material and the analysis of the J1 gap between energy mapping and the FM force
    theorem (meV, internal convention).

    gap = {"J1_energy_mapping", "J1_force_theorem", "gap", "contributions": {name: meV}, "sum", "remainder",
    "notes"}; mc = {"route", "reason"}: which J the Monte Carlo uses and why.  stiffness: the small-q spin stiffness
    of the self-consistent spirals beside the D each route implies (:func:`stiffness_summary` of
    ``<material>_spiral_stiffness.json``; empty when there is none): E(q) − E(Γ) = D|q|² + B|q|⁴ per primitive cell,
    meV Å², |q| in 1/Å including 2π, along Γ–M, in the frame of the ground-state pattern."""

    material: str
    spin: float
    routes: list[Route]
    gap: dict = field(default_factory=dict)
    mc: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    stiffness: dict = field(default_factory=dict)

    def route(self, name: str) -> Route | None:
        return next((r for r in self.routes if r.name == name), None)

    def as_dict(self) -> dict:
        return jsonable({"material": self.material, "spin": self.spin, "convention": CONVENTION,
                         "routes": [r.as_dict() for r in self.routes], "gap": self.gap, "mc": self.mc,
                         "notes": list(self.notes), **({"stiffness": self.stiffness} if self.stiffness else {})})

    @classmethod
    def from_dict(cls, d: dict, where: str = "routes") -> "ExchangeRoutes":
        if not isinstance(d, dict) or not isinstance(d.get("material"), str) or not isinstance(d.get("routes"), list):
            raise RoutesError(f"{where}: not an exchange-routes file (needs 'material' and a list 'routes')")
        spin = d.get("spin")
        if isinstance(spin, bool) or not isinstance(spin, (int, float)) or not 0 < spin <= 50:
            raise RoutesError(f"{where}: spin length S must be a number in (0, 50], got {spin!r}")
        routes = [Route.from_dict(r, where) for r in d["routes"]]
        gap = d.get("gap") if isinstance(d.get("gap"), dict) else {}
        mc = d.get("mc") if isinstance(d.get("mc"), dict) else {}
        stiff = d.get("stiffness") if isinstance(d.get("stiffness"), dict) else {}
        return cls(material=d["material"], spin=float(spin), routes=routes, gap=gap, mc=mc,
                   notes=[str(x) for x in d.get("notes") or []], stiffness=stiff)

    def table(self) -> str:
        """Every route (J1–J3 in both conventions, method, settings, wall time), the gap analysis and the Monte
        Carlo's choice, as text."""
        S = self.spin

        def f(x, conv=False):
            if x is None:
                return f"{'—':>8}"
            return f"{float(TB2J.from_internal(x, S, S)) if conv else x:+8.3f}"

        w = max([46] + [len(r.name) for r in self.routes])
        lines = [f"{self.material}: exchange by route (S = {S:g})",
                 "J: H = Σ_{i<j} J S_i·S_j (each bond once, |S| = S, > 0 AF); J_TB2J = −J S²/2: "
                 "E = −Σ_{i≠j} J e_i·e_j (unit spins, > 0 FM); meV",
                 f"{'route':<{w}} {'J1':>8} {'J2':>8} {'J3':>8} | {'J1_TB2J':>8} {'J2_TB2J':>8} {'J3_TB2J':>8} "
                 f"{'time (s)':>9}"]
        for r in self.routes:
            t = "" if r.seconds is None else f"{r.seconds:9.1f}"
            if r.status == "not computed":
                lines.append(f"{r.name:<{w}} not computed: {r.reason}")
                continue
            lines.append(f"{r.name:<{w}} {f(r.J1)} {f(r.J2)} {f(r.J3)} | {f(r.J1, 1)} {f(r.J2, 1)} {f(r.J3, 1)} "
                         f"{t:>9}")
        lines.append("")
        lines.append("methods and settings:")
        for r in self.routes:
            if r.status == "not computed":
                continue
            st = "; ".join(f"{k} {_short(v)}" for k, v in r.settings.items())
            lines.append(f"  {r.name}: {r.method}" + (f" [{st}]" if st else "")
                         + (f" ({r.source})" if r.source else ""))
        g = self.gap
        if g:
            lines.append("")
            lines.append(f"J1 gap: energy mapping {g['J1_energy_mapping']:+.3f} − force theorem (FM reference) "
                         f"{g['J1_force_theorem']:+.3f} = {g['gap']:+.3f} meV")
            for k, v in (g.get("contributions") or {}).items():
                lines.append(f"  {k}: {v:+.3f} meV")
            if g.get("contributions"):
                lines.append(f"  sum {g['sum']:+.3f} meV ({100 * g['sum'] / g['gap']:.0f} % of the gap), "
                             f"not explained {g['remainder']:+.3f} meV" if g["gap"] else f"  sum {g['sum']:+.3f} meV")
            else:
                lines.append("  no contribution computed yet (needs the Néel-reference or ligand-downfolded routes)")
            lines.extend(f"  note: {n}" for n in g.get("notes") or [])
        if self.stiffness:
            lines.append("")
            lines.extend(stiffness_lines(self.stiffness))
        if self.mc:
            lines.append("")
            lines.append(f"Monte Carlo uses: {self.mc.get('route')} — {self.mc.get('reason')}")
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)


def stiffness_summary(doc: dict, where: str = "stiffness") -> dict:
    """The part of a small-q stiffness file (``workflows.spiral.stiffness_from_points``) that the route comparison
    shows: {"status", "D", "B", "n_points", "q_max", "pattern", "reason", "routes": {name: {"D", "D_J1_J3"?}},
    "source"}; D in meV Å² per primitive cell (E(q) − E(Γ) = D|q|² + B|q|⁴, |q| in 1/Å incl. 2π, along Γ–M)."""
    if not isinstance(doc, dict):
        raise RoutesError(f"{where}: not a JSON object")
    out = {"status": str(doc.get("status") or "not computed"), "pattern": doc.get("main_pattern"),
           "source": where}
    if out["status"] == "fitted":
        D = _finite_or_none(doc.get("D"), where, "D")
        if D is None:
            raise RoutesError(f"{where}: status 'fitted' but no finite D")
        out.update(D=D, B=_finite_or_none(doc.get("B"), where, "B"), n_points=doc.get("n_points"),
                   q_max=_finite_or_none(doc.get("q_max"), where, "q_max"))
    else:
        out["reason"] = str(doc.get("reason") or "no small-q points converged yet")
    routes = {}
    for name, r in (doc.get("D_from_routes") or {}).items():
        if isinstance(r, dict) and _finite_or_none(r.get("D"), where, f"D of {name}") is not None:
            routes[str(name)] = {"D": float(r["D"])}
            if r.get("D_J1_J3") is not None:
                routes[str(name)]["D_J1_J3"] = float(r["D_J1_J3"])
    out["routes"] = routes
    return out


def stiffness_lines(st: dict) -> list[str]:
    """Text of :func:`stiffness_summary`: the spirals' D, then every route's D and its ratio to it."""
    head = ("spin stiffness along Γ–M (E(q) − E(Γ) = D|q|² + B|q|⁴ per cell, meV Å², |q| in 1/Å incl. 2π, "
            f"{st.get('pattern') or 'ground-state'} pattern)")
    if st.get("status") != "fitted":
        return [head, f"  self-consistent small-q spirals: not computed ({st.get('reason')})"]
    D = st["D"]
    lines = [head, f"  self-consistent small-q spirals: D = {D:.1f} (B = {st.get('B') or 0:.1f}, "
                   f"Γ + {st.get('n_points')} small-q points, |q| ≤ {st.get('q_max') or 0:.3f} Å⁻¹) ({st.get('source')})",
             "  D implied by each route (from its J1–J3 unless the name says more: 'J1–J4', 'all J(R)'; "
             "ratio to the spirals' D):"]
    w = max([10] + [len(k) for k in st.get("routes", {})])
    for name, r in st.get("routes", {}).items():
        extra = f"   (J1–J3 only: {r['D_J1_J3']:.1f})" if "D_J1_J3" in r else ""
        lines.append(f"    {name:<{w}} {r['D']:8.1f}  ×{r['D'] / D:.2f}{extra}")
    return lines


def _short(v, n: int = 60) -> str:
    s = v if isinstance(v, str) else str(v)
    return s if len(s) <= n else s[: n - 1] + "…"


def _material_of(text: str) -> str:
    """'CrI3 monolayer (…)' → 'CrI3'."""
    return str(text).strip().split()[0] if str(text).strip() else ""


# ------------------------------------------------------------------------------------------------------ routes
def energy_mapping_route(path, n_shells: int = 3) -> tuple[Route, dict]:
    """The energy-mapping row from an energies file (``data/dft/<m>_energies.json`` or any format
    :func:`wannmag.magnetism.energy_mapping.read_energies` reads); seconds = the fit (measured now) + the DFT runs'
    wall times recorded in the file.  Returns the route and {"spin", "distances", "dE_neel_meV"} (E_Néel − E_FM per
    ion from the file, if both are there)."""
    t0 = time.perf_counter()
    data = read_energies(path, None, n_shells)
    names = [r.name for r in data.records]
    if "FM" not in names:
        raise RoutesError(f"{path}: no FM configuration: the reference state of the comparison is missing")
    try:
        fit = fit_exchange(data.records, n_shells=n_shells, spin=data.spin or 1.5, distances=data.distances)
    except FitError as exc:
        raise RoutesError(str(exc) if str(exc).startswith(str(path)) else f"{path}: {exc}") from None
    fit_s = time.perf_counter() - t0
    raw = read_routes_json(path)
    dft_s = 0.0
    for c in (raw.get("configurations") or {}).values() if isinstance(raw.get("configurations"), dict) else []:
        t = (c.get("time_s") or {}) if isinstance(c, dict) else {}
        if isinstance(t.get("total"), (int, float)):
            dft_s += float(t["total"])
    method = raw.get("method") if isinstance(raw.get("method"), dict) else {}
    settings = {"configurations": names, "dft": {k: method.get(k) for k in ("code", "xc", "U_eV", "mode", "ecut",
                                                                            "kdensity") if k in method},
                "condition_number": round(float(fit.condition_number), 3),
                "stderr_meV": [round(float(x), 4) for x in fit.stderr], "fit_seconds": round(fit_s, 3),
                "distances_A": [round(float(x), 4) for x in data.distances[:3]]}
    e = {r.name: r.energy_per_site_meV() for r in data.records}
    if "Neel" in e:
        settings["E_Neel_minus_E_FM_meV_per_ion"] = round(e["Neel"] - e["FM"], 4)
    J = [float(x) for x in fit.J] + [None] * 3
    route = Route(name="energy mapping", J1=J[0], J2=J[1], J3=J[2], reference="FM, Néel, zigzag, stripy",
                  method="least squares of DFT total energies of collinear states (self-consistent in each state)",
                  settings=settings, seconds=round(dft_s + fit_s, 1) if dft_s else round(fit_s, 3),
                  source=str(path))
    info = {"spin": float(data.spin or 1.5), "distances": [float(x) for x in data.distances[:3]],
            "dE_neel_meV": (e["Neel"] - e["FM"]) if "Neel" in e else None}
    return route, info


def force_theorem_route(wannier_dir, kmesh=(12, 12, 1), n_energy: int = 120, rcut: float = 8.5,
                        name: str = "force theorem (FM reference)") -> tuple[Route, dict]:
    """LKAG J1–J3 (shell means) of the collinear MLWF pair in ``wannier_dir``, computed now (seconds measured);
    E_F mid-gap at the occupation of the .win file (:func:`wannmag.tightbinding.electronic.midgap_fermi_level`).
    Returns the route and {"distances", "spread"} (the shells' bond distances and largest J spread per shell)."""
    t0 = time.perf_counter()
    model = read_w90(str(wannier_dir), kind="collinear")
    ham = hamiltonian_from_tb(model)
    ef, how = midgap_fermi_level(model)
    res = lkag_exchange(ham, kmesh=tuple(kmesh), efermi=ef, n_energy=n_energy, rcut=rcut)
    shells = mft_spin_model(ham, res).shell_summary()[:3]
    seconds = time.perf_counter() - t0
    ref = "FM" if len(set(res.moment_signs)) == 1 else "antiparallel (" + res.reference() + ")"
    J = [s["J"] for s in shells] + [None] * 3
    settings = {"kmesh": list(kmesh), "n_energy": int(n_energy), "rcut_A": rcut, "efermi_eV": round(ef, 4),
                "efermi": how, "wannier": str(wannier_dir), "orbitals": ham.nw,
                "J_spread_meV": [round(s["J_spread"], 4) for s in shells]}
    summary = sorted(Path(wannier_dir).glob("*_wannier_summary.json"))
    if summary:  # the upstream DFT + Wannierisation, as recorded (not part of the seconds of the table)
        try:
            t = read_routes_json(summary[0]).get("timing_s")
        except RoutesError:
            t = None
        if t:
            settings["upstream_seconds"] = t
    route = Route(name=name, J1=J[0], J2=J[1], J3=J[2], reference=ref, settings=settings,
                  method="magnetic force theorem (LKAG) on the MLWF pair, Wannier Hamiltonian frozen",
                  seconds=round(seconds, 2), source=str(wannier_dir))
    return route, {"distances": [s["distance"] for s in shells]}


def read_routes_json(path) -> dict:
    """A route or comparison JSON file as a dict; not a JSON object, or holding a NaN/inf anywhere: RoutesError."""
    data = read_json(path, RoutesError)
    if not isinstance(data, dict):
        raise RoutesError(f"{path}: not a JSON object")
    bad = _non_finite(data)
    if bad is not None:
        raise RoutesError(f"{path}: non-finite number (NaN/Infinity) at {bad}")
    return data


def _non_finite(obj, where: str = "top level"):
    """Where the first NaN/inf of a parsed JSON document sits (None if there is none): a route file's settings are
    echoed in the table, so none may hold one."""
    if isinstance(obj, float):
        return None if math.isfinite(obj) else where
    if isinstance(obj, str):  # a number written as a string ("nan", "-inf") is echoed as text: refused too
        return where if obj.strip().lower().lstrip("+-") in ("nan", "inf", "infinity") else None
    if isinstance(obj, dict):
        for k, v in obj.items():
            w = _non_finite(v, f"{where}/{k}" if where != "top level" else str(k))
            if w:
                return w
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            w = _non_finite(v, f"{where}[{i}]")
            if w:
                return w
    return None


def read_route_file(path, material: str, spin: float, kind: str | None = None) -> list[Route]:
    """The rows of one route file ``<material>_<kind>.json``: an object with J1, J2, J3 (meV, internal convention;
    or J_meV [...]), method, settings, seconds (a number or a dict of parts), optional reason/status, or with a list
    'routes' of such objects.  The file's 'material' must be ``material`` and its spin length (key 'spin', where
    given) ``spin``; else one RoutesError line naming the file.  A row whose settings hold
    ``gap_contributions`` {name: meV} (its own split of the J1 gap between energy mapping and the FM force theorem,
    internal convention) has those entries listed in the gap analysis under its name; a row whose settings hold a
    ``gap_chain`` (links from the FM force theorem's J1 to the energy mapping's, see :func:`_gap_chain`) replaces the
    summed entries by its links (the others are kept under "not_summed": no term is counted twice)."""
    path = Path(path)
    data = read_routes_json(path)
    m = data.get("material")
    if m is not None and _material_of(m).lower() != material.lower():
        raise RoutesError(f"{path}: route file of {_material_of(m)!r}, not of {material!r} (mismatched models)")
    s = data.get("spin", data.get("S"))
    spins = data.get("spins")
    if s is None and isinstance(spins, list) and spins:
        s = next((x for x in spins if not (isinstance(x, (int, float)) and abs(float(x) - spin) <= 1e-6)), spins[0])
    if s is not None and (isinstance(s, bool) or not isinstance(s, (int, float)) or abs(float(s) - spin) > 1e-6):
        raise RoutesError(f"{path}: spin length S = {s!r} here but S = {spin:g} in the energy mapping "
                          "(mismatched models: J's of different S cannot be compared)")
    kind = kind or path.stem[len(material) + 1:]
    default_name, default_method, _ = ROUTE_KINDS.get(kind, (kind.replace("_", " "), "", ""))
    rows = data["routes"] if isinstance(data.get("routes"), list) else [data]
    out = []
    for k, row in enumerate(rows):
        if not isinstance(row, dict):
            raise RoutesError(f"{path}: route {k} is not an object")
        row = {**row, "name": row.get("name") if isinstance(row.get("name"), str) and row.get("name").strip()
               else default_name, "method": row.get("method") or default_method,
               "source": row.get("source") or str(path)}
        if kind == "neel_mft" and not row.get("reference"):
            row["reference"] = "Néel"
        if row.get("J1") is None and not isinstance(row.get("J_meV"), list) and not row.get("reason"):
            st = row.get("settings") if isinstance(row.get("settings"), dict) else {}
            said = [x for k in ("warnings", "notes") for x in (st.get(k) or []) if isinstance(x, str)]
            other = sorted(k for k in row if isinstance(k, str) and k.startswith("J1_"))
            row["reason"] = str(row.get("status") or row.get("note") or (said[0] if said else "")
                                or "the file gives no J1" + (f" (it has {', '.join(other)}; a route file gives J1, J2, "
                                                             "J3 or a list 'routes' of such rows)" if other else ""))
            row["status"] = "not computed"
        out.append(Route.from_dict(row, str(path)))
    return out


def _check_distances(path, theirs, ours, tol: float = 0.05):
    """Shell distances of a route against the energy mapping's (Å): a route of another structure is refused."""
    if not theirs or not ours:
        return
    for n, (a, b) in enumerate(zip(theirs, ours), start=1):
        if not (isinstance(a, (int, float)) and abs(float(a) - float(b)) <= tol):
            raise RoutesError(f"{path}: shell {n} at {a} Å here but {b:.3f} Å in the energy mapping "
                              "(mismatched models)")


def is_automatic(r: Route, material: str) -> bool:
    """A "not computed" row that :func:`build_routes` made for a missing route file (made anew on a rebuild)."""
    return r.status == "not computed" and not r.source and r.reason.startswith(f"no {material}_")


def build_routes(material: str, spin: float, routes: list[Route], dE_neel_meV: float | None = None,
                 notes=None) -> ExchangeRoutes:
    """The comparison: the given rows (earlier derived rows and automatic "not computed" rows are dropped and made
    anew, so a stored comparison can be rebuilt with more routes), a "not computed" row for every route kind without
    a row, the derived
    reference-state average (module docstring) when both FM- and Néel-reference force theorems exist, the J1 gap
    analysis and the Monte Carlo's choice.  Needs the energy-mapping row (the comparison's reference)."""
    routes = [r for r in routes if r.status != "derived" and not is_automatic(r, material)]
    names = [r.name for r in routes]
    em = next((r for r in routes if r.name == "energy mapping" and r.status == "computed"), None)
    if em is None:
        raise RoutesError(f"{material}: no energy-mapping route (the reference of the comparison: it needs the "
                          "DFT energies of FM and Néel at least)")
    if dE_neel_meV is None:
        dE_neel_meV = em.settings.get("E_Neel_minus_E_FM_meV_per_ion")
    out = list(routes)
    for kind, (name, _, why) in ROUTE_KINDS.items():
        present = any(Path(r.source).name == f"{material}_{kind}.json" for r in routes if r.source)
        if name not in names and not present:
            out.append(Route(name=name, status="not computed", reason=f"no {material}_{kind}.json ({why})"))
    fm = next((r for r in routes if r.status == "computed" and r.reference == "FM"
               and r.name.startswith("force theorem (FM")), None)
    neel = next((r for r in routes if r.status == "computed" and r.reference == "Néel"), None)
    gap, notes = {}, list(notes or [])
    if fm is not None and neel is not None:
        avg = [None if (a is None or b is None) else 0.5 * (a + b) for a, b in zip(fm.J, neel.J)]
        row = Route(name="force theorem, average of FM and Néel references", J1=avg[0], J2=avg[1], J3=avg[2],
                    status="derived", method="[J(FM reference) + J(Néel reference)]/2: energy mapping if J_eff(θ) "
                    "is linear in cos θ along the FM→Néel path (wannmag.magnetism.routes docstring)",
                    settings={"from": [fm.name, neel.name]},
                    seconds=None if fm.seconds is None or neel.seconds is None else fm.seconds + neel.seconds)
        if dE_neel_meV is not None and avg[0] is not None:
            pred = -3.0 * spin**2 * (avg[0] + (avg[2] or 0.0))  # E_Néel − E_FM per ion = −3 S² (J1 + J3)
            row.settings["E_Neel_minus_E_FM_meV_per_ion"] = {"from_average": round(pred, 3),
                                                             "DFT": round(float(dE_neel_meV), 3)}
        out.insert(out.index(neel) + 1, row)
    if fm is not None:
        contributions = {}
        if neel is not None:
            contributions["reference state (average of FM and Néel references − FM reference)"] = \
                0.5 * (neel.J1 - fm.J1)
        for r in routes:  # contributions a route file names itself (J1, meV, internal convention)
            c = r.settings.get("gap_contributions") if isinstance(r.settings, dict) else None
            if isinstance(c, dict):
                for k, v in c.items():
                    if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                        contributions[f"{k} ({r.name})"] = float(v)
        chain = next((c for c in (_gap_chain(r, fm.J1, em.J1) for r in routes) if c), None)
        if chain is not None:  # one route file splits the whole gap: its links alone are summed (no overlap)
            other = contributions
            contributions = {f"{k} ({chain[1]})": v for k, v in chain[0].items()}
        total = float(sum(contributions.values()))
        gap = {"J1_energy_mapping": em.J1, "J1_force_theorem": fm.J1, "gap": em.J1 - fm.J1,
               "contributions": contributions, "sum": total, "remainder": em.J1 - fm.J1 - total,
               "notes": ["contributions of different routes were computed independently and may overlap; their sum "
                         "is a decomposition only where one route splits the gap itself"]}
        if chain is not None:
            gap["decomposition"] = "chain"
            gap["not_summed"] = other
            gap["notes"] = ["the contributions are the links of one chain of computed routes from the FM force "
                            "theorem to energy mapping, each link the J1 difference of two routes that differ in the "
                            "named step: they sum to the gap by construction, and what each link holds is what its "
                            "two routes differ in; other estimates (not summed, they overlap the links): "
                            + ("; ".join(f"{k} {v:+.3f} meV" for k, v in other.items()) or "none")]
    else:
        notes.append("no FM-reference force theorem: no gap analysis")
    return ExchangeRoutes(material=material, spin=float(spin), routes=out, gap=gap,
                          mc={"route": MC_CHOICE[0], "reason": MC_CHOICE[1],
                              "J_meV": [em.J1, em.J2, em.J3]}, notes=notes)


def _gap_chain(r: Route, fm_J1: float, em_J1: float, tol: float = 1e-3):
    """({link name: ΔJ1}, route name) when the row's settings hold a ``gap_chain``: a list of links {"name", "from",
    "to", "from_J1", "to_J1"} (meV, internal convention) that starts at the FM force theorem's J1 and ends at the
    energy mapping's J1 (within ``tol`` meV), each link starting where the previous one ended; else None (a chain
    that does not connect the two is not used: one RoutesError-free None, the table then sums the other entries)."""
    links = r.settings.get("gap_chain") if isinstance(r.settings, dict) else None
    if not isinstance(links, list) or not links or not all(isinstance(x, dict) for x in links):
        return None
    try:
        ends = [(float(x["from_J1"]), float(x["to_J1"])) for x in links]
    except (KeyError, TypeError, ValueError):
        return None
    if abs(ends[0][0] - fm_J1) > tol or abs(ends[-1][1] - em_J1) > tol or any(
            abs(a[1] - b[0]) > tol for a, b in zip(ends, ends[1:])):
        return None
    return {str(x["name"]): t - f for x, (f, t) in zip(links, ends)}, r.name


def collect_route_files(directory, material: str, spin: float, distances=None, skip=()) -> list[Route]:
    """Rows of every ``<material>_<kind>.json`` in ``directory`` (kinds of :data:`ROUTE_KINDS` first, then any other
    ``<material>_*.json`` that has a J1), except the names in ``skip`` and the combined ``<material>_routes.json``."""
    directory = Path(directory)
    rows = []
    known = [directory / f"{material}_{k}.json" for k in ROUTE_KINDS]
    others = sorted(p for p in directory.glob(f"{material}_*.json")
                    if p not in known and p.name != f"{material}_routes.json")
    for p in known + others:
        if not p.exists():
            continue
        if p in others:
            try:
                d = read_routes_json(p)
            except RoutesError:
                raise
            if not (isinstance(d, dict) and ("J1" in d or isinstance(d.get("routes"), list))):
                continue  # not a route file (e.g. E(q) data of a route): skipped
        for r in read_route_file(p, material, spin):
            if r.name in skip:
                continue
            _check_distances(p, read_routes_json(p).get("distances"), distances)
            rows.append(r)
    return rows


def routes_from_run_steps(results: dict, material: str) -> ExchangeRoutes:
    """The comparison of a ``wannmag run``: step results {"mapping": …, "mft": …, "superexchange": …, "dft": …}
    as the workflow stores them (``OUT/steps/<step>.json``)."""
    mp = results.get("mapping") or {}
    if not mp.get("J_meV"):
        raise RoutesError(f"{material}: the run has no energy mapping (steps/mapping.json): the reference of the "
                          "comparison is missing")
    S = float(mp.get("spin") or 1.5)
    J = [float(x) for x in mp["J_meV"]] + [None] * 3
    dft_s = (results.get("dft") or {}).get("_seconds")
    routes = [Route(name="energy mapping", J1=J[0], J2=J[1], J3=J[2], reference="FM, Néel, zigzag, stripy",
                    method="least squares of DFT total energies of collinear states (self-consistent in each state)",
                    settings={"configurations": mp.get("configurations"),
                              "condition_number": mp.get("condition_number"),
                              "distances_A": mp.get("distances"),
                              "E_Neel_minus_E_FM_meV_per_ion": (mp.get("E_minus_EFM_meV_per_ion") or {}).get("Neel")},
                    seconds=None if dft_s is None else float(dft_s) + float(mp.get("_seconds") or 0.0),
                    source="steps/mapping.json")]
    mft = results.get("mft") or {}
    if mft.get("shells"):
        sh = mft["shells"][:3]
        Jf = [float(s["J"]) for s in sh] + [None] * 3
        routes.append(Route(name="force theorem (FM reference)", J1=Jf[0], J2=Jf[1], J3=Jf[2], reference="FM",
                            method="magnetic force theorem (LKAG) on the MLWF pair, Wannier Hamiltonian frozen",
                            settings={"efermi": mft.get("efermi_source")}, seconds=mft.get("_seconds"),
                            source="steps/mft.json"))
    else:
        routes.append(Route(name="force theorem (FM reference)", status="not computed",
                            reason="no force-theorem step in this run", source="steps/mft.json"))
    sx = results.get("superexchange") or {}
    if sx:
        status = sx.get("status") if str(sx.get("status", "")).startswith("out of range") else None
        status = status or next((b.get("status") for b in sx.get("bonds", []) if isinstance(b, dict)
                                 and str(b.get("status", "")).startswith("out of range")), None)
        legacy = any("out of range" in str(w) or "outside the range" in str(w) for w in sx.get("warnings", []))
        if sx.get("J1_meV") is None or status or legacy:
            why = status or ("outside the range of the perturbation theory" if legacy else "no J1")
            routes.append(Route(name="superexchange channels (perturbative)", status="not computed",
                                reason=f"Kanamori expansion: {why}; its sum is not a J estimate",
                                source="steps/superexchange.json"))
        else:
            routes.append(Route(name="superexchange channels (perturbative)", J1=float(sx["J1_meV"]),
                                method="Kanamori perturbation theory on the spin-averaged MLWF model, 1NN bond",
                                seconds=sx.get("_seconds"), source="steps/superexchange.json"))
    return build_routes(material, S, routes,
                        notes=["routes beyond the run's own (spin spirals, Néel reference, ligand downfolding, GPAW "
                               "plane-wave force theorem) are in data/exchange/<material>_routes.json of the "
                               "repository"])
