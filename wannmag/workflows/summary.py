"""The answer of ``wannmag run`` in a few lines, and how far a running step is.

:func:`run_summary` builds the block printed at the end of ``wannmag run`` from the stored step results (the dicts of
``OUT/steps/<step>.json``): material and preset, ground state, J1–J3 with the route and the convention, easy axis,
the ordering temperature with its method (or "not bracketed"/"not determined" with the reason — never a number that
did not converge), the estimates beside it (:func:`tc_estimate_lines`: Torelli–Olsen, quantum RPA for spin S,
quantum-mapped T_c), the preset's caveat and the measured value beside it.  :func:`summary_of_run_dir` does the same
for a finished (or partly finished) run directory, :func:`step_progress` says how far an unfinished step got
(``wannmag run --status``: DFT configurations done and the SCF iteration of a running one, Monte Carlo sweeps per
lattice from the checkpoints).

Conventions: exchange in meV, H = Σ_{i<j} J_ij S_i·S_j (each bond once, |S| = S, J > 0 antiferromagnetic); TB2J's
J_TB2J = −J S²/2 (E = −Σ_{i≠j} J e_i·e_j, unit spins, > 0 FM); anisotropy ΔE = E_in − E_out in meV per magnetic
ion (> 0: easy axis along the layer normal); temperatures in K.
"""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path

import numpy as np

from ..magnetism.montecarlo.tc import NEARLY_ISOTROPIC_X
from ..magnetism.montecarlo.tc import nearly_isotropic_caveat as _nearly_isotropic_caveat
from .dft import scf_progress
from .engine import _relocate
from .reference_values import EXPERIMENT

__all__ = ["run_summary", "summary_of_run_dir", "step_progress", "load_run_results", "tc_estimate_lines",
           "nearly_isotropic_caveat", "mc_warnings", "ADDED_ESTIMATES_STEP", "NEARLY_ISOTROPIC_X",
           "VPS3_DRIFT"]

#: the file name (``OUT/steps/<name>.json``) of Tc estimates added to a stored run afterwards, without re-running a
#: step (``data/runs/refresh_estimates.py``); read only when the run's own lswt step did not store them
ADDED_ESTIMATES_STEP = "tc_estimates"
#: the one short caveat of the quantum mapping (its single-ion rule is taken from a summary of the paper)
MAPPING_CAVEAT = "its single-ion rule is unverified"

#: the measured drift of a nearly isotropic magnet quoted by :func:`nearly_isotropic_caveat`: the VPS3 model
#: (x = 6.0e-4) with cluster moves, Binder crossings of the smallest and the largest pair of data/mc/VPS3_TN_converged.json
#: ("largest_pairs"; 279 K at L = 6/9/12 in the fast preset): converged only at L = 96-256, 47 K below
VPS3_DRIFT = {"what": "VPS3 model with cluster moves", "source": "data/mc/VPS3_TN_converged.json",
              "crossings": [{"pair": [96, 128], "T_K": 235.58151066626996},
                            {"pair": [192, 256], "T_K": 232.25872393803334}],
              "verdict": "the three largest pairs within 1.4 %: T_N = 232 K"}

#: the DFT configurations of ``wannmag run`` (the same as ``wannmag.workflows.run.CONFIGS``)
_CONFIGS = ("FM", "Neel", "zigzag", "stripy")


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _js(values, fmt="+.3f") -> str:
    return "  ".join(f"J{k} {format(v, fmt)}" for k, v in enumerate(values, start=1) if _finite(v))


def _experiment(formula: str):
    return EXPERIMENT.get(formula)


def _preset(results: dict, params: dict) -> tuple[str | None, bool]:
    """(preset, energies from a directory?) of the run: the engine's parameters, else the stored DFT records."""
    dft = results.get("dft") or {}
    from_dir = bool(params.get("from_dir")) or dft.get("engine") == "from-dir"
    preset = params.get("preset")
    if preset is None:
        presets = {r.get("preset") for r in dft.get("records") or [] if isinstance(r, dict)}
        preset = presets.pop() if len(presets) == 1 else None
    return preset, from_dir


def _stored_estimates(results: dict) -> tuple[dict | None, str]:
    """(estimates, where from): the lswt step's own (``lswt["estimates"]``), else those added to a stored run
    afterwards (``steps/tc_estimates.json``, :data:`ADDED_ESTIMATES_STEP`), else (None, "")."""
    lw = results.get("lswt") or {}
    if isinstance(lw.get("estimates"), dict):
        return lw["estimates"], ""
    added = results.get(ADDED_ESTIMATES_STEP) or {}
    if isinstance(added.get("estimates"), dict):
        return added["estimates"], f" [added {added.get('date') or '?'} from the stored spin model; no step re-run]"
    return None, ""


def tc_estimate_lines(results: dict, mark_added: bool = True) -> list[str]:
    """The estimates printed beside the classical Monte Carlo T_c (never instead of it), one line each, from the
    stored step results: Torelli–Olsen, the quantum RPA (Tyablikov) for spin S and the quantum-mapped T_c (El
    Mendili–Zhitomirsky: classical MC T_c × the ratio T_c(mapped)/T_c(original) stored by
    :func:`wannmag.magnetism.tc_estimates.quantum_corrected_tc`), each with its label and caveat; an estimate that
    was not made or did not converge is named with the reason, never given as a number.  Temperatures in K, spin
    lengths as in the model (H = Σ_{i<j} S_i·J_ij·S_j, each bond once, J > 0 AF).  Empty when the run has neither
    spin waves nor estimates yet; ``mark_added``: say so when the estimates were added to a stored run afterwards."""
    lw = results.get("lswt") or {}
    mc = results.get("mc") or {}
    est, added = _stored_estimates(results)
    if not lw and est is None:
        return []
    lines = []
    if est is not None and est.get("skipped"):
        return [f"Torelli–Olsen, quantum mapping: not made — {est['skipped']}"]
    # Torelli–Olsen
    to = (est or {}).get("torelli_olsen") or {}
    if est is None:
        lines.append("Torelli–Olsen, quantum mapping: not stored by this run (its lswt step predates them)")
    elif _finite(to.get("tc_K")):
        lines.append(f"Torelli–Olsen {to['tc_K']:.1f} K (fit to classical Monte Carlo of 2D magnets with easy-axis "
                     "anisotropy; J_eff from the spin stiffness, A_eff from the spin-wave gap"
                     + ("; extrapolated below the fitted anisotropy range" if to.get("extrapolated") else "") + ")")
    else:
        lines.append(f"Torelli–Olsen: none — {to.get('reason') or 'not applicable to this model'}")
    # quantum RPA for spin S: the lswt step's number, else the added estimates'
    rpa = lw.get("rpa") if isinstance(lw.get("rpa"), dict) else ((est or {}).get("rpa") or {})
    q = lw.get("tc_rpa_quantum_K") if "tc_rpa_quantum_K" in lw else rpa.get("Tc_RPA_quantum_K")
    S = to.get("S") or (results.get("mapping") or {}).get("spin")
    s_txt = f"S = {S:g}" if _finite(S) else "S"
    if rpa.get("converged") is False or "not_converged" in rpa:
        lines.append(f"quantum RPA (Tyablikov, spin {s_txt}): none — the Brillouin-zone average did not converge")
    elif _finite(q) and q > 0 and not rpa.get("gapless"):
        lines.append(f"quantum RPA (Tyablikov, spin {s_txt}) {q:.1f} K ((S+1)/S × the classical-spin RPA; a "
                     "decoupling approximation)")
    elif lw.get("skipped"):
        lines.append(f"quantum RPA (Tyablikov): none — {lw['skipped']}")
    elif q is None:
        lines.append("quantum RPA (Tyablikov): not stored by this run")
    else:
        lines.append("quantum RPA (Tyablikov): none — no spin-wave gap (Mermin–Wagner) or no finite value")
    # quantum mapping: classical MC Tc × stored ratio (the MC number only when it is one)
    qm = (est or {}).get("quantum_mapping")
    if est is not None:
        qm = qm or {}
        ratio = qm.get("ratio")
        how = "classical RPA" if qm.get("ratio_method", "").startswith("classical-spin RPA") else "Torelli–Olsen"
        name = "quantum-mapped (El Mendili–Zhitomirsky, S² → S(S+1))"
        tc = mc.get("tc_K")
        if not _finite(ratio):
            lines.append(f"{name}: none — {qm.get('reason') or '; '.join(qm.get('notes') or []) or 'no ratio'}")
        elif mc.get("mermin_wagner") or not _finite(tc):
            lines.append(f"{name}: no number — no classical Monte Carlo T_c to scale (ratio {ratio:.3f} from the "
                         f"{how}; {MAPPING_CAVEAT})")
        else:
            inherits = "; it scales the Monte Carlo number above and inherits its warnings" \
                if mc_warnings(mc) or nearly_isotropic_caveat(results) else ""
            lines.append(f"{name} {tc * ratio:.1f} K (classical Monte Carlo × {ratio:.3f}, the ratio from the {how} "
                         f"of the mapped and original models; {MAPPING_CAVEAT}{inherits})")
    if added and mark_added and lines:
        lines[0] += added
    return lines


def mc_warnings(mc: dict) -> list[str]:
    """Every warning of a stored Monte Carlo step result, once each: the second pass's window-edge warning, the
    Mermin–Wagner reason and the Tc analysis's own convergence notes (``mc["result"]["warning"]``: size pairs whose
    Binder crossings disagree, a specific-heat peak at the window edge, ...) — the last were stored but not printed
    before, so a VPS3 demo T_N whose pairs crossed 42 K apart came without its warning."""
    out = []
    for w in (mc.get("refine_warning"), mc.get("warning"), (mc.get("result") or {}).get("warning")):
        for part in str(w or "").split("; "):
            part = part.strip()
            if part and part not in out:
                out.append(part)
    return out


def _anisotropy_ratio(results: dict):
    """(x, how) of the run: Torelli–Olsen's x = −A_eff/J_eff when stored, else |ΔE_aniso| / (|J1| S²) from the model
    and the mapping (ΔE per magnetic ion in meV, J1 in meV, S the spin length); (None, "") when neither is known."""
    est, _ = _stored_estimates(results)
    to = (est or {}).get("torelli_olsen") or {}
    if _finite(to.get("x")):
        return abs(to["x"]), "Torelli–Olsen x = −A_eff/J_eff"
    dE = (results.get("model") or {}).get("anisotropy_meV_per_ion")
    mp = results.get("mapping") or {}
    J1 = (mp.get("J_meV") or [None])[0]
    S = mp.get("spin")
    if _finite(dE) and _finite(J1) and _finite(S) and J1 != 0 and S > 0:
        return abs(dE) / (abs(J1) * S * S), "|E_in − E_out| / (|J1| S²)"
    return None, ""


def nearly_isotropic_caveat(results: dict) -> str | None:
    """The caveat of a Monte Carlo ordering temperature of a nearly isotropic 2D magnet for a run's step results
    (:func:`wannmag.magnetism.montecarlo.tc.nearly_isotropic_caveat` with the run's anisotropy-to-exchange ratio and
    sizes, quoting the measured VPS3 drift :data:`VPS3_DRIFT`), or None.  Only for a finite Monte Carlo number (an
    unbracketed or Mermin–Wagner result already says what it is)."""
    mc = results.get("mc") or {}
    if not _finite(mc.get("tc_K")) or mc.get("mermin_wagner"):
        return None
    x, how = _anisotropy_ratio(results)
    return _nearly_isotropic_caveat(x, how, mc.get("sizes") or [], measured=VPS3_DRIFT)


def run_summary(results: dict, params: dict | None = None, out=None) -> str:
    """The summary block of a run from its step results (any subset: a step not run yet is named as missing)."""
    params = params or {}
    r = results
    formula = (r.get("structure") or {}).get("formula") or "?"
    preset, from_dir = _preset(r, params)
    U = params.get("U")
    if U is None:
        recs = (r.get("dft") or {}).get("records") or []
        Us = {json.dumps(x.get("U"), sort_keys=True) for x in recs if isinstance(x, dict) and x.get("U")}
        U = json.loads(Us.pop()) if len(Us) == 1 else None
    U_txt = (", U = " + ", ".join(f"{k} {v:g} eV" for k, v in U.items())) if isinstance(U, dict) and U else \
        (f", U = {U:g} eV" if _finite(U) else "")
    source = "DFT energies read from a directory" if from_dir else f"preset {preset or '?'}"
    w = 19
    lines = [f"== wannmag run: {formula} ({source}{U_txt}) " + "=" * 20]

    def row(label, text):  # wrapped at 118 characters, continuation lines indented under the text
        for k, part in enumerate(textwrap.wrap(str(text), 118 - w, break_on_hyphens=False) or [""]):
            lines.append(f"{label if k == 0 else '':<{w}s}{'  ' if k else ''}{part}")

    mp = r.get("mapping")
    if mp:
        rel = mp.get("E_minus_EFM_meV_per_ion") or {}
        others = ", ".join(f"{k} {v:+.2f}" for k, v in rel.items() if k != "FM" and _finite(v))
        row("ground state", f"{mp.get('ground_state')}" + (f"   (E − E_FM: {others} meV/ion)" if others else ""))
        S = mp.get("spin")
        ec = r.get("exchange_compare") or {}
        mc_route = (ec.get("mc") or {}).get("route") or "energy mapping"
        used = " — used by the Monte Carlo" if mc_route == "energy mapping" else ""
        row("exchange (meV)", f"{_js(mp.get('J_meV') or [])}   energy mapping{used}")
        mft = r.get("mft") or {}
        if mft.get("shells"):
            row("", f"{_js([s.get('J') for s in mft['shells'][:3]])}   force theorem (LKAG, FM reference, "
                    "Wannier functions)")
        if mc_route != "energy mapping":
            row("", f"Monte Carlo uses: {mc_route}")
        conv = "H = Σ_{i<j} J S_i·S_j, each bond once, |S| = S" + (f" = {S:g}" if _finite(S) else "") + ", J > 0 AF"
        J1 = (mp.get("J_meV") or [None])[0]
        if _finite(J1) and _finite(S):
            conv += f" (TB2J convention: J1_TB2J = −J1 S²/2 = {-J1 * S * S / 2:+.2f} meV, > 0 FM)"
        row("", conv)
    else:
        row("ground state", "not computed yet (steps dft, mapping)")
    model = r.get("model") or {}
    an = r.get("anisotropy") or {}
    dE = model.get("anisotropy_meV_per_ion")
    if _finite(dE):
        axis = "out of plane" if dE > 0 else ("in plane" if dE < 0 else "none (isotropic)")
        parts = []
        if _finite(an.get("soc_meV")):
            parts.append(f"spin–orbit {an['soc_meV']:+.3f}")
        if _finite(an.get("dipolar_meV")):
            parts.append(f"dipolar {an['dipolar_meV']:+.3f}")
        row("easy axis", f"{axis}   (E_in − E_out = {dE:+.3f} meV/ion" + (f": {', '.join(parts)}" if parts else "")
            + ")")
    elif an or model:
        row("easy axis", "not determined (no finite anisotropy energy stored)")
    mc = r.get("mc")
    kind = "Curie temperature" if (mp or {}).get("ground_state") == "FM" else "Néel temperature"
    if mc:
        tc, err = mc.get("tc_K"), mc.get("tc_error_K")
        sizes = ", ".join(str(s) for s in mc.get("sizes") or [])
        if mc.get("mermin_wagner"):
            row(kind, "none — no finite-temperature order of this 2D model (Mermin–Wagner)")
        elif _finite(tc):
            row(kind, f"{tc:.1f} ± {err if _finite(err) else 0:.1f} K   (classical Monte Carlo, "
                      f"{mc.get('method')}; sizes {sizes})")
        else:
            note = mc.get("note") or (mc.get("result") or {}).get("note") or \
                "no Binder crossing inside the Monte Carlo window"
            if not str(note).startswith("not bracketed"):
                note = f"not bracketed: {note}"
            row(kind, f"{note} (sizes {sizes})")
        for text in mc_warnings(mc):
            row("", f"warning: {text}")
    else:
        row(kind, "not computed yet (step mc)")
    lw = r.get("lswt") or {}
    if _finite(lw.get("tc_rpa_K")) and lw["tc_rpa_K"] > 0:
        row("", f"RPA (Tyablikov) {lw['tc_rpa_K']:.1f} K for classical spins"
                + (f", spin-wave gap {lw['gap_meV']:.3f} meV" if _finite(lw.get("gap_meV")) else ""))
    if mc:  # estimates beside the classical number, never replacing it
        for k, text in enumerate(tc_estimate_lines(r)):
            row("estimates" if k == 0 else "", text)
    exp = _experiment(formula)
    if exp:
        what, val, ref = exp
        row("experiment", f"{val:.0f} K   ({what}; {ref})")
    caveats = []
    if preset == "fast" and not from_dir:
        caveats.append("fast preset: LCAO (dzp) energies overestimate the exchange (CrI3: E_Néel − E_FM 23 % above "
                       "plane waves), so J and the ordering temperature are upper estimates; --preset accurate for "
                       "quantitative numbers")
    iso = nearly_isotropic_caveat(r)
    if iso:
        caveats.append(iso)
    if mc:
        caveats.append("classical spins of length S with the DFT exchange and anisotropy; nothing is tuned to the "
                       "experiment")
    for k, c in enumerate(caveats):
        row("caveat" if k == 0 else "", c)
    rep = r.get("report") or {}
    if rep.get("report_md"):
        md, page = rep["report_md"], rep.get("report_html")
        if out is not None and not Path(md).exists() and (Path(out) / "report.md").exists():
            md, page = Path(out) / "report.md", Path(out) / "report.html"  # stored before runs recorded _out
        row("report", f"{md}, {page}")
    elif out is not None:
        row("results", f"{Path(out) / 'steps'}/<step>.json")
    return "\n".join(lines)


def load_run_results(out) -> dict:
    """{step: result} of every readable ``OUT/steps/<step>.json`` (error files and damaged JSON skipped)."""
    results = {}
    here = Path(out).resolve()
    steps = Path(out) / "steps"
    for f in sorted(steps.glob("*.json")) if steps.is_dir() else []:
        try:
            d = json.loads(f.read_text())
        except (OSError, ValueError, UnicodeDecodeError):
            continue
        if isinstance(d, dict):
            old = d.get("_out")
            if isinstance(old, str) and old != str(here):  # a moved or copied run directory (engine.Engine.load)
                d = _relocate(d, old, str(here))
            results[f.stem] = d
    return results


def summary_of_run_dir(out, params: dict | None = None) -> str:
    """:func:`run_summary` of the stored results of the run directory ``out``."""
    return run_summary(load_run_results(out), params, out=out)


# ------------------------------------------------------------------------------------------------- progress
def _dft_progress(workdir: Path, names, label_fmt="{name}_rect") -> str | None:
    if not workdir.is_dir():
        return None
    done, running = [], []
    for name in names:
        d = workdir / label_fmt.format(name=name)
        if (d / "summary.json").exists():
            done.append(name)
        elif (d / "gpaw.txt").exists():
            p = scf_progress(d / "gpaw.txt")
            running.append(f"{name} SCF iteration {p['iteration']}" + (
                f", ΔE = {p['delta_eV']:+.2e} eV" if p and p.get("delta_eV") is not None else "")
                if p else f"{name} started")
    if not done and not running:
        return None
    txt = f"{len(done)} of {len(names)} configurations done"
    return txt + (f"; running: {'; '.join(running)}" if running else "")


def _mc_progress(mcdir: Path, params: dict) -> str | None:
    files = sorted(mcdir.glob("checkpoint_*.npz"), key=lambda f: f.stat().st_mtime) if mcdir.is_dir() else []
    if not files:
        return None
    key = files[-1].stem.split("_", 2)[-1]  # the pass written last: checkpoint_<L>_<key>.npz
    total = None
    if params.get("mc_sweeps") is not None:
        total = int(params["mc_sweeps"]) + int(params.get("mc_therm") or 0)
    parts = []
    for f in sorted(mcdir.glob(f"checkpoint_*_{key}.npz"), key=lambda f: int(f.stem.split("_")[1])):
        L = f.stem.split("_")[1]
        try:
            with np.load(f) as z:
                sweep = int(z["sweep"])
        except (OSError, ValueError, KeyError):
            parts.append(f"{L}x{L} checkpoint unreadable")
            continue
        parts.append(f"{L}x{L} {sweep}" + (f"/{total}" if total else "") + " sweeps")
    n_keys = len({f.stem.split("_", 2)[-1] for f in files})
    return ("second pass: " if n_keys > 1 else "") + ", ".join(parts)


def _neutral_progress(d: Path) -> str | None:
    """SCFs of the neutral vacancy cell (``vacancy_dft/neutral/<settings>/<configuration>/``): finished ones (a
    record.json, converged or not) and the iteration of running ones (GPAW's log)."""
    done, running = [], []
    for sub in sorted(x for tag in d.iterdir() if tag.is_dir() for x in tag.iterdir() if x.is_dir()):
        if (sub / "record.json").exists():
            done.append(sub.name)
        elif (sub / "gpaw.txt").exists():
            p = scf_progress(sub / "gpaw.txt")
            running.append(f"{sub.name} SCF iteration {p['iteration']}" if p else f"{sub.name} started")
    if not done and not running:
        return None
    return f"{len(done)} SCF(s) of the neutral cell done" + (f"; running: {'; '.join(running)}" if running else "")


def step_progress(out, step: str, params: dict | None = None) -> str | None:
    """How far the unfinished ``step`` of the run directory ``out`` got, from the files it leaves behind (None when
    there is nothing to say): ``dft`` and ``vacancy_dft`` configurations done and the SCF iteration of a running one
    (GPAW's log), ``mc`` sweeps per lattice size from the checkpoints."""
    params = params or {}
    out = Path(out)
    try:
        if step == "dft":
            return _dft_progress(out / "dft", _CONFIGS)
        if step == "mc":
            return _mc_progress(out / "mc", params)
        if step == "vacancy_dft":
            d = out / "vacancy_dft"
            if (d / "neutral").is_dir():
                return _neutral_progress(d / "neutral")
            names = sorted(p.name for p in d.iterdir() if p.is_dir()) if d.is_dir() else []
            return _dft_progress(d, names, "{name}") if names else None
        if step == "wannier":
            d = out / "dft_wannier"
            names = sorted(p.name for p in d.iterdir() if p.is_dir()) if d.is_dir() else []
            return _dft_progress(d, names, "{name}") if names else None
    except OSError:
        return None
    return None
