"""T_c estimates beside the classical Monte Carlo number in the run summary, the run report, and the stored accurate
CrI3 run (data/runs/refresh_estimates.py).

The numbers printed are checked against independent evaluations: Torelli–Olsen of a nearest-neighbour model with a
single-ion term is the formula with J and A themselves; the quantum RPA is (S+1)/S × the classical RPA; the
quantum-mapped T_c is the classical T_c × the RPA ratio of the mapped model, evaluated here from the mapped model's
own spin waves; the stored run's added estimates equal data/mc/TC_estimates.json (same spin model).
"""

import importlib.util
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from wannmag.magnetism import SpinModel
from wannmag.magnetism.anisotropy import spin_waves_for_order
from wannmag.magnetism.tc_estimates import quantum_mapped_model, torelli_olsen_tc
from wannmag.structures import cri3_monolayer, find_magnetic_sites, neighbour_shells
from wannmag.workflows.engine import Context
from wannmag.workflows.report_html import markdown_to_html
from wannmag.workflows.run import _summary_lines, step_lswt
from wannmag.workflows.summary import run_summary, summary_of_run_dir, tc_estimate_lines

from .step_results import mapping_result, mc_result, model_result, structure_result

REPO = Path(__file__).resolve().parents[2]
STORED = REPO / "data" / "runs" / "CrI3_accurate"
S = 1.5
J1, A_AXIS = -3.0, -0.3   # package convention: FM NN exchange, easy axis z (A_zz − A_xx < 0), meV


def _flat(text):
    return " ".join(text.split())


def _no_bad_numbers(text):
    assert not re.search(r"\bnan\b|\binf\b", text, re.I) and "None" not in text, text


def _refresh_module():
    spec = importlib.util.spec_from_file_location("refresh_estimates", REPO / "data" / "runs" / "refresh_estimates.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _nn_model():
    sub = find_magnetic_sites(cri3_monolayer())
    model = SpinModel.from_sublattice(sub)
    for b in neighbour_shells(sub, 1)[0].bonds:
        model.add_bond(b.i, b.j, b.R, J1)
    model.single_ion = [np.diag([0.0, 0.0, A_AXIS])] * 2
    for s in model.sites:
        s.spin = S
    return model


@pytest.fixture(scope="module")
def fake_run(tmp_path_factory):
    """Step results of a tiny fake run whose lswt step is the real one on a NN FM model with a single-ion term."""
    model = _nn_model()
    path = tmp_path_factory.mktemp("model") / "model.json"
    model.save(path)
    lswt = step_lswt(Context(path.parent, {}, {"model": model_result(path), "mapping": mapping_result(path)},
                             lambda m: None)).as_dict()  # as the engine stores it
    results = {"structure": {"formula": "CrI3"},
               "dft": {"engine": "gpaw", "records": [{"preset": "fast", "U": {"Cr": 3.0}}]},
               "mapping": {"J_meV": [J1, 0.0, 0.0], "spin": S, "ground_state": "FM",
                           "E_minus_EFM_meV_per_ion": {"FM": 0.0}},
               "model": {"anisotropy_meV_per_ion": -A_AXIS * S ** 2},
               "lswt": lswt,
               "mc": {"tc_K": 81.5, "tc_error_K": 1.5, "method": "Binder crossing 9x9/12x12", "sizes": [6, 9, 12],
                      "t_window_K": [40.0, 120.0], "mermin_wagner": False}}
    return model, results


def _independent(model):
    """Torelli–Olsen with J and A themselves; classical RPA of the original and of the mapped model."""
    to = torelli_olsen_tc(-J1, A_AXIS, S, 3)
    rpa0 = spin_waves_for_order(model, order="FM")[0].tc_rpa().tc_classical
    rpa1 = spin_waves_for_order(quantum_mapped_model(model), order="FM")[0].tc_rpa().tc_classical
    return to, rpa0, rpa1 / rpa0


def test_summary_shows_the_estimates_beside_the_classical_number(fake_run):
    model, results = fake_run
    to, rpa0, ratio = _independent(model)
    text = run_summary(results, {"preset": "fast", "U": 3.0})
    flat = _flat(text)
    _no_bad_numbers(flat)
    assert "81.5 ± 1.5 K (classical Monte Carlo" in flat                 # the classical number stays
    assert f"Torelli–Olsen {to:.1f} K" in flat
    assert f"quantum RPA (Tyablikov, spin S = 1.5) {(S + 1) / S * rpa0:.1f} K" in flat
    assert f"{81.5 * ratio:.1f} K (classical Monte Carlo × {ratio:.3f}" in flat
    assert "single-ion rule is unverified" in flat
    lines = text.splitlines()
    at = {k: next(i for i, ln in enumerate(lines) if ln.startswith(k))
          for k in ("Curie temperature", "estimates", "experiment")}
    assert at["Curie temperature"] < at["estimates"] < at["experiment"]  # beside it, measured value after
    assert re.search(r"experiment\s+45 K", text)
    # a mapping ratio that differs from the pure exchange scaling (S+1)/S: the single-ion term counts
    assert ratio != pytest.approx((S + 1) / S, rel=1e-3)


def test_no_quantum_mapped_number_without_a_classical_tc(fake_run):
    _, results = fake_run
    for mc in ({"tc_K": None, "note": "not bracketed: no crossing", "sizes": [6, 9, 12]},
               {"tc_K": 12.0, "tc_error_K": 0.5, "mermin_wagner": True, "sizes": [6, 9, 12]}):
        lines = tc_estimate_lines({**results, "mc": mc})
        mapped = next(t for t in lines if t.startswith("quantum-mapped"))
        assert "no number" in mapped and " K (classical Monte Carlo ×" not in mapped, mapped
        assert "unverified" in mapped
        _no_bad_numbers(run_summary({**results, "mc": mc}))


def test_estimates_that_were_not_made_are_named_with_the_reason(fake_run):
    _, results = fake_run
    lw = json.loads(json.dumps(results["lswt"]))
    lw["estimates"]["torelli_olsen"] = {"tc_K": None, "reason": "no spin-wave gap (easy plane)"}
    lw["estimates"]["quantum_mapping"] = {"ratio": None, "reason": "needs one spin length"}
    lw["rpa"]["converged"] = False
    text = " ".join(tc_estimate_lines({**results, "lswt": lw}))
    assert "Torelli–Olsen: none — no spin-wave gap (easy plane)" in text
    assert "quantum RPA (Tyablikov, spin S = 1.5): none — the Brillouin-zone average did not converge" in text
    assert "none — needs one spin length" in text
    assert not re.search(r"\d K", text)                                   # no temperature printed at all
    skipped = tc_estimate_lines({**results, "lswt": {"skipped": "not a collinear order"}})
    assert skipped and all("none" in t or "not stored" in t for t in skipped)
    assert tc_estimate_lines({"mc": results["mc"]}) == []                 # nothing stored, nothing said


def test_report_summary_section_has_the_estimates(fake_run, tmp_path):
    model, results = fake_run
    to, rpa0, ratio = _independent(model)
    # the report reads typed step results: the same numbers as whole step dicts (wannmag.workflows.results)
    path = tmp_path / "model.json"
    typed = {**results, "structure": structure_result("CrI3"), "mapping": mapping_result(path, J=(J1, 0.0, 0.0)),
             "model": model_result(path, anisotropy=-A_AXIS * S ** 2),
             "mc": mc_result(81.5, 1.5, "Binder crossing 9x9/12x12", [6, 9, 12], [40.0, 120.0])}
    md = "\n".join(_summary_lines(Context(tmp_path, {"preset": "fast"}, typed, lambda m: None), "CrI3"))
    assert "Curie temperature (classical Monte Carlo): **81.5 ± 1.5 K**" in md
    assert f"    - Torelli–Olsen {to:.1f} K" in md
    assert f"    - quantum-mapped (El Mendili–Zhitomirsky, S² → S(S+1)) {81.5 * ratio:.1f} K" in md
    assert md.index("classical Monte Carlo): **81.5") < md.index("Torelli–Olsen") < md.index("Experiment: ")
    page = markdown_to_html(md, ".")
    assert re.search(r"<li>Estimates beside it \(not replacing it\):\s*<ul>\s*<li>Torelli–Olsen", page)


def test_refresh_estimates_on_a_copy_of_the_stored_run(tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(STORED, run)
    for f in (run / "steps" / "tc_estimates.json", run / "report.html"):
        f.unlink(missing_ok=True)
    original = (run / "report.md").read_text()
    head = original.split("\n## Tc estimates (added ")[0].rstrip("\n")   # the report as the run wrote it
    mod = _refresh_module()
    assert mod.main([str(run)]) == 0
    assert mod.main([str(run)]) == 0                                       # a second run replaces the section
    added = json.loads((run / "steps" / "tc_estimates.json").read_text())
    ref = json.loads((REPO / "data" / "mc" / "TC_estimates.json").read_text())["materials"]["CrI3"]
    assert added["estimates"] == ref["estimates"]                          # same spin model, same numbers
    assert added["command"].startswith("python data/runs/refresh_estimates.py") and added["date"]
    assert re.fullmatch(r"[0-9a-f]{40}", added["package_commit"] or "")
    assert "ADDED" in added["what"] and added["classical_mc"]["tc_K"] == pytest.approx(69.6086, abs=1e-4)
    md = (run / "report.md").read_text()
    assert md.startswith(head) and md.count("## Tc estimates (added ") == 1
    sec = md.split("## Tc estimates (added ")[1]
    s = ref["summary"]
    for txt in ("**69.6 ± 0.7 K**", f"Torelli–Olsen {s['torelli_olsen_K']:.1f} K",
                f"{s['RPA_quantum_K']:.1f} K", f"{s['quantum_mapped_MC_K']:.1f} K", "single-ion rule is unverified",
                "45 K", "no step re-run"):
        assert txt in sec, txt
    assert (run / "report.html").exists() and "Tc estimates (added" in (run / "report.html").read_text()
    text = _flat(summary_of_run_dir(run))
    _no_bad_numbers(text)
    assert "69.6 ± 0.7 K" in text and "Torelli–Olsen 66.8 K" in text and "133.8 K" in text and "117.9 K" in text
    assert "[added " in text and "no step re-run" in text


def test_refresh_estimates_bad_input_is_one_line(tmp_path, capsys):
    mod = _refresh_module()
    assert mod.main([str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("wannmag: error: ") and "not a wannmag run directory" in err[0]
    run = tmp_path / "run"
    shutil.copytree(STORED / "steps", run / "steps")
    (run / "report.md").write_text("# report\n")
    assert mod.main([str(run)]) == 2                                       # no spin model beside it or in model/
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "spin_model.json" in err[0] and "Traceback" not in err[0]


def test_stored_accurate_run_shows_classical_and_quantum_tc():
    """The must-show: the stored report has the classical Tc and the quantum-corrected ones, as stored."""
    added = json.loads((STORED / "steps" / "tc_estimates.json").read_text())
    ref = json.loads((REPO / "data" / "mc" / "TC_estimates.json").read_text())["materials"]["CrI3"]
    assert added["estimates"] == ref["estimates"]
    md = (STORED / "report.md").read_text()
    sec = md.split(f"## Tc estimates (added {added['date']} from the stored spin model; no step re-run)")[1]
    for txt in ("**69.6 ± 0.7 K**", "Torelli–Olsen 66.8 K", "133.8 K", "117.9 K", "45 K"):
        assert txt in sec, txt
    assert "Tc estimates (added" in (STORED / "report.html").read_text()
    text = _flat(summary_of_run_dir(STORED))                               # and the run summary of the stored run
    assert "69.6 ± 0.7 K (classical Monte Carlo" in text and "Torelli–Olsen 66.8 K" in text
    assert "spin S = 1.5) 133.8 K" in text and "117.9 K (classical Monte Carlo × 1.694" in text
