"""Add the T_c estimates to a stored ``wannmag run`` directory without re-running any step (no DFT, no Monte Carlo).

    python data/runs/refresh_estimates.py RUN_DIR

Reads the run's own spin model (``RUN_DIR/spin_model.json``, else the model step's ``model.json``), its ground state
(``steps/mapping.json``) and its classical Monte Carlo result (``steps/mc.json``), evaluates
:func:`wannmag.magnetism.tc_estimates.tc_estimates` (Torelli–Olsen, classical and quantum RPA/Tyablikov for spin S,
El Mendili–Zhitomirsky quantum mapping with T_c^q = T_c^MC × ratio; the RG estimate stays None with its reason) and

* stores them as an added, labelled file ``RUN_DIR/steps/tc_estimates.json`` (provenance: command, date, package
  commit and whether wannmag/ differed from it) — read by ``wannmag.workflows.summary`` when the run's own lswt step
  predates the estimates;
* appends (or replaces, when run again) the section "## Tc estimates (added <date> from the stored spin model; no step
  re-run)" at the end of ``RUN_DIR/report.md``; the rest of the report is left as it was;
* re-renders ``RUN_DIR/report.html`` with :func:`wannmag.workflows.report_html.render_report`.

Conventions: H = Σ_{i<j} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i, each bond once, classical spins of length S, J > 0 AF;
meV, K.  Every number is an estimate beside the classical Monte Carlo T_c, never instead of it; a Monte Carlo T_c
that is not a number (not bracketed, Mermin–Wagner) is not scaled.  Bad input: one line
``wannmag: error: <file>: <problem>`` and exit 2.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from wannmag._atomic import atomic_write_text, read_json  # noqa: E402
from wannmag.errors import WannmagError  # noqa: E402

#: the heading of the added report section (the date follows "added ")
HEADING = "## Tc estimates (added {date} from the stored spin model; no step re-run)"
_HEADING_RE = re.compile(r"^## Tc estimates \(added .*\)\s*$", re.M)


def _commit() -> dict:
    """The package commit (git HEAD of this repository) and the files of wannmag/ that differ from it."""
    def git(*args):
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=30)

    try:
        head = git("rev-parse", "HEAD").stdout.strip() or None
        changed = sorted(ln[3:] for ln in git("status", "--porcelain", "--", "wannmag").stdout.splitlines()
                         if ln.strip()) if head else None
    except (OSError, subprocess.SubprocessError):
        head, changed = None, None
    return {"package_commit": head, "wannmag_files_modified_since_commit": changed}


def _step(run: Path, name: str) -> dict:
    d = read_json(run / "steps" / f"{name}.json", error=WannmagError)
    if not isinstance(d, dict):
        raise WannmagError(f"{run / 'steps' / f'{name}.json'}: not a step result (JSON object expected)")
    return d


def _model_path(run: Path, model_step: dict) -> Path:
    """The spin model the run's Monte Carlo used: the copy beside the report, else the model step's file (followed
    into the run directory when the run was moved)."""
    if (run / "spin_model.json").is_file():
        return run / "spin_model.json"
    stored = model_step.get("model")
    if isinstance(stored, str):
        for cand in (Path(stored), run / "model" / Path(stored).name):
            if cand.is_file():
                return cand
    raise WannmagError(f"{run / 'spin_model.json'}: no such file (and the model step's {stored!r} is not there "
                       "either): the run's spin model is needed")


def compute(run) -> dict:
    """The added step result (JSON-ready) of the run directory ``run``."""
    from wannmag.magnetism import SpinModel
    from wannmag.magnetism.tc_estimates import tc_estimates

    run = Path(run)
    if not (run / "steps").is_dir():
        raise WannmagError(f"{run}: not a wannmag run directory (no steps/)")
    mapping, mc = _step(run, "mapping"), _step(run, "mc")
    model_step = _step(run, "model") if (run / "steps" / "model.json").exists() else {}
    order = mapping.get("ground_state")
    if not isinstance(order, str):
        raise WannmagError(f"{run / 'steps' / 'mapping.json'}: no ground state stored")
    path = _model_path(run, model_step)
    model = SpinModel.load(path)
    tc = mc.get("tc_K")
    tc_cl = float(tc) if isinstance(tc, (int, float)) and math.isfinite(tc) and not mc.get("mermin_wagner") else None
    try:
        est = tc_estimates(model, order=order, tc_classical_K=tc_cl)
    except WannmagError as exc:
        est = {"skipped": str(exc)}
    rel = path.relative_to(run) if path.is_relative_to(run) else path
    return {
        "what": "T_c estimates beside the classical Monte Carlo T_c, ADDED to a stored run afterwards: no step was "
                "re-run (no DFT, no Monte Carlo); computed from the run's own spin model and Monte Carlo result",
        "command": f"python data/runs/refresh_estimates.py {run}",
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        **_commit(),
        "inputs": {"spin_model": str(rel), "mc": "steps/mc.json", "ground_state": "steps/mapping.json"},
        "order": order,
        "classical_mc": {"tc_K": tc_cl, "tc_error_K": mc.get("tc_error_K") if tc_cl is not None else None,
                         "method": mc.get("method"), "sizes": mc.get("sizes")},
        "convention": "H = sum_{i<j} S_i.J_ij.S_j + sum_i S_i.A_i.S_i, each bond once, classical spins of length S, "
                      "J > 0 AF; meV, K",
        "formulas_and_sources": "wannmag/magnetism/tc_estimates.py (module docstring)",
        "estimates": est,
    }


def report_section(run, added: dict) -> str:
    """The added report section (Markdown) from the run's stored steps and the added result."""
    from wannmag.workflows.run import EXPERIMENT
    from wannmag.workflows.summary import ADDED_ESTIMATES_STEP, load_run_results, tc_estimate_lines

    res = load_run_results(run)
    res.pop("lswt", None)  # the lines come from the added estimates (the stored lswt step may predate them)
    res[ADDED_ESTIMATES_STEP] = added
    mc = res.get("mc") or {}
    kind = "Curie" if added["order"] == "FM" else "Néel"
    cl = added["classical_mc"]
    if cl["tc_K"] is not None:
        tc_txt = f"**{cl['tc_K']:.1f} ± {cl['tc_error_K'] or 0:.1f} K** ({cl['method']})"
    elif mc.get("mermin_wagner"):
        tc_txt = "none — no finite-temperature order of this 2D model (Mermin–Wagner)"
    else:
        tc_txt = f"not determined — {mc.get('note') or 'no Binder crossing inside the Monte Carlo window'}"
    est = added["estimates"]
    rpa = est.get("rpa") or {}
    lines = [HEADING.format(date=added["date"]), "",
             f"Added by `{added['command']}` (package commit {(added['package_commit'] or 'unknown')[:12]}"
             + (f"; {len(mod)} file(s) of wannmag/ modified since, listed in `steps/tc_estimates.json`"
                if (mod := added.get("wannmag_files_modified_since_commit")) else "")
             + f") with `wannmag.magnetism.tc_estimates` from this run's spin model (`{added['inputs']['spin_model']}`)"
             " and Monte Carlo result (`steps/mc.json`); stored in `steps/tc_estimates.json`. No step was re-run "
             "(no DFT, no Monte Carlo); the sections above are as the run wrote them. Estimates beside the classical "
             "Monte Carlo number, never replacing it:", "",
             f"- {kind} temperature (classical Monte Carlo): {tc_txt}"]
    if isinstance(rpa.get("Tc_RPA_classical_K"), float) and rpa.get("converged"):
        lines.append(f"- RPA (Tyablikov) for classical spins: {rpa['Tc_RPA_classical_K']:.1f} K")
    lines += [f"- {t}" for t in tc_estimate_lines(res, mark_added=False)]  # the heading says they were added
    rg = est.get("rg_estimate") or {}
    if rg:
        lines.append("- RG estimate (Irkhin–Katanin type): not computed — its formula could not be checked against "
                     "the papers (reason and ingredients in `steps/tc_estimates.json`)")
    formula = (res.get("structure") or {}).get("formula")
    if formula in EXPERIMENT:
        what, val, ref = EXPERIMENT[formula]
        lines.append(f"- Experiment: {what} {val:.0f} K ({ref})")
    return "\n".join(lines) + "\n"


def update_report(md_path: Path, section: str) -> None:
    """Replace the added section of ``md_path`` (from its heading to the next ``## `` heading or the end) or append
    it at the end."""
    md = md_path.read_text(encoding="utf-8")
    m = _HEADING_RE.search(md)
    if m:
        nxt = re.search(r"^## ", md[m.end():], flags=re.M)
        end = m.end() + nxt.start() if nxt else len(md)
        md = md[:m.start()] + section + ("\n" + md[end:] if nxt else "")
    else:
        md = md.rstrip("\n") + "\n\n" + section
    atomic_write_text(md_path, md)


def refresh(run) -> dict:
    """Compute, store and report the estimates of the run directory ``run``; returns the added step result."""
    from wannmag.workflows.report_html import render_report

    run = Path(run)
    md = run / "report.md"
    if not (run / "steps").is_dir():
        raise WannmagError(f"{run}: not a wannmag run directory (no steps/)")
    if not md.is_file():
        raise WannmagError(f"{md}: no such file (the run's report is needed)")
    added = compute(run)
    atomic_write_text(run / "steps" / "tc_estimates.json", json.dumps(added, indent=1) + "\n")
    update_report(md, report_section(run, added))
    render_report(md)
    return added


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python data/runs/refresh_estimates.py RUN_DIR", file=sys.stderr)
        return 2
    try:
        added = refresh(argv[0])
    except WannmagError as exc:
        print(f"wannmag: error: {exc}", file=sys.stderr)
        return 2
    run = Path(argv[0])
    section = HEADING.format(date=added["date"])[3:]
    print(f"wrote {run / 'steps' / 'tc_estimates.json'}, {run / 'report.md'} (section '{section}'), "
          f"{run / 'report.html'}")
    from wannmag.workflows.summary import tc_estimate_lines

    for t in tc_estimate_lines({"mc": json.loads((run / "steps" / "mc.json").read_text()), "tc_estimates": added}):
        print("  " + t)
    return 0


if __name__ == "__main__":
    sys.exit(main())
