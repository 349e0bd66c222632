"""The summary block of `wannmag run` (wannmag.workflows.summary) and the progress of unfinished steps (--status).

Checked on the stored accurate CrI3 run (data/runs/CrI3_accurate), on tiny fake step results (a Tc that is not
bracketed, Mermin–Wagner, a run stopped early) and on fake run directories (GPAW logs, Monte Carlo checkpoints);
and end to end through the CLI on synthetic VASP outputs (`wannmag run --from DIR --until mapping`).
"""

import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from wannmag.cli import main
from wannmag.workflows.dft import scf_progress
from wannmag.workflows.summary import run_summary, step_progress, summary_of_run_dir

REPO = Path(__file__).resolve().parents[2]
STORED = REPO / "data" / "runs" / "CrI3_accurate"

LCAO_LOG = """\
Effective grid spacing dv^(1/3) = 0.2058

iter:   1 17:26:49  -198.130113        c          +0.9845
iter:   2 17:27:45  -194.767430        c -1.12    +0.9855
iter:   3 17:28:50  -209.694942        c -1.16    +1.0141
"""
PW_LOG = """\
SCF iterations
|iter     |     time |      energy | eigst |  dens |  magmom |
|---------|----------|-------------|-------|-------|---------|
|iter:   1| 15:20:29 |  -28.744061 | +1.71 |       |  +0.0000|
|iter:   2| 15:21:28 |  -27.414431 | +0.88 | -0.75 |  -0.0000|

Converged in 2 steps
"""


def _flat(text: str) -> str:
    """The summary with its wrapped lines joined (substring checks across line breaks)."""
    return " ".join(text.split())


def _tc_line(text: str) -> str:
    """The ordering-temperature row with its continuation lines, joined."""
    lines = text.splitlines()
    k = next(i for i, ln in enumerate(lines) if ln.startswith(("Curie temperature", "Néel temperature")))
    row = [lines[k]] + [ln for ln in lines[k + 1:k + 4] if ln.startswith(" " * 19)]
    return _flat("\n".join(row))


def _no_bad_numbers(text: str) -> None:
    assert not re.search(r"\bnan\b|\binf\b|None", text, re.I), text


def test_summary_of_the_stored_accurate_run(tmp_path):
    run = tmp_path / "moved_run"  # a copied run directory: paths inside the results follow it
    shutil.copytree(STORED, run)
    text = _flat(summary_of_run_dir(run))
    _no_bad_numbers(text)
    mapping = json.loads((STORED / "steps" / "mapping.json").read_text())
    mc = json.loads((STORED / "steps" / "mc.json").read_text())
    assert "CrI3 (preset accurate, U = Cr 3 eV)" in text
    assert re.search(r"ground state\s+FM", text)
    # J1-J3 exactly as stored, with the route and the convention (TB2J value computed independently here)
    J = mapping["J_meV"]
    assert " ".join(f"J{k} {j:+.3f}" for k, j in enumerate(J, 1)) in text
    assert "energy mapping — used by the Monte Carlo" in text and "J > 0 AF" in text
    tb2j = -J[0] * 1.5 ** 2 / 2  # J_TB2J = -J S^2/2; README: J1 = 4.0 meV in TB2J's convention
    assert f"J1_TB2J = −J1 S²/2 = {tb2j:+.2f} meV" in text and tb2j == pytest.approx(4.0, abs=0.01)
    assert re.search(r"easy axis\s+out of plane", text)
    assert f"{mc['tc_K']:.1f} ± {mc['tc_error_K']:.1f} K" in text
    assert "69.6 ± 0.7 K" in text and "Binder crossing 18x18/24x24" in text
    assert re.search(r"experiment\s+45 K", text)
    assert "fast preset" not in text  # the LCAO caveat belongs to the fast preset only
    assert str(run / "report.md") in text  # relocated, not the original /work/runs path


def _fake(tc=None, note=None, mw=False, preset="fast"):
    results = {
        "structure": {"formula": "CrI3"},
        "dft": {"engine": "gpaw", "records": [{"preset": preset, "U": {"Cr": 3.0}}]},
        "mapping": {"J_meV": [-4.3, -0.72, -0.09], "spin": 1.5, "ground_state": "FM",
                    "E_minus_EFM_meV_per_ion": {"FM": 0.0, "Neel": 29.6, "zigzag": 16.8, "stripy": 25.9}},
        "anisotropy": {"soc_meV": 0.93, "dipolar_meV": -0.036},
        "model": {"anisotropy_meV_per_ion": 0.894},
        "mc": {"tc_K": tc, "tc_error_K": None if tc is None else 1.5, "method": "Binder crossing 9x9/12x12",
               "sizes": [6, 9, 12], "note": note, "mermin_wagner": mw},
    }
    return results


def test_summary_of_a_tiny_fake_run_with_a_bracketed_tc():
    text = _flat(run_summary(_fake(tc=81.5), {"preset": "fast", "U": 3.0}))
    _no_bad_numbers(text)
    assert "preset fast, U = 3 eV" in text
    assert "J1 -4.300 J2 -0.720 J3 -0.090" in text
    assert "81.5 ± 1.5 K" in text and "Binder crossing 9x9/12x12" in text
    assert "upper estimates" in text  # the fast preset's caveat
    assert "E_in − E_out = +0.894 meV/ion: spin–orbit +0.930, dipolar -0.036" in text
    assert re.search(r"experiment\s+45 K", text)


def test_a_nearly_isotropic_magnet_gets_the_small_lattice_caveat():
    """VPS3-like: anisotropy/exchange ~ 6e-4 -> the small-lattice crossing is called an upper estimate, not converged;
    CrI3-like (x ~ 0.05) gets no such caveat; no caveat without a finite Monte Carlo number."""
    from wannmag.workflows.summary import NEARLY_ISOTROPIC_X, nearly_isotropic_caveat

    vps3 = _fake(tc=279.1)
    vps3["structure"]["formula"] = "VPS3"
    vps3["mapping"].update(J_meV=[26.4, 0.9, 1.2], ground_state="Neel")
    vps3["model"]["anisotropy_meV_per_ion"] = 0.016  # |dE| / (|J1| S^2) = 2.7e-4
    text = _flat(run_summary(vps3, {"preset": "fast"}))
    assert "nearly isotropic magnet (|E_in − E_out| / (|J1| S²) = 2.7e-04" in text
    assert "L ≤ 12" in text and "upper estimate" in text and "not a converged value" in text
    # Torelli-Olsen's x wins when stored
    vps3["lswt"] = {"estimates": {"torelli_olsen": {"x": 5.98e-4, "tc_K": 83.4, "S": 1.5}}}
    assert "Torelli–Olsen x = −A_eff/J_eff = 6.0e-04" in _flat(run_summary(vps3, {"preset": "fast"}))
    # CrI3-like anisotropy: 0.894 / (4.3 * 2.25) = 0.09 > threshold
    assert 0.894 / (4.3 * 2.25) > NEARLY_ISOTROPIC_X
    assert nearly_isotropic_caveat(_fake(tc=81.5)) is None
    assert "nearly isotropic" not in _flat(run_summary(_fake(tc=81.5)))
    # no number, no caveat about it
    vps3["mc"]["tc_K"] = None
    assert nearly_isotropic_caveat(vps3) is None


def test_the_tc_analysis_own_warnings_are_printed():
    """The analysis's convergence notes (stored in mc["result"]["warning"]) reach the summary, once each."""
    from wannmag.workflows.summary import mc_warnings

    r = _fake(tc=265.9)
    note = ("the Binder crossings of the size pairs disagree (6x6/9x9: 307.9 K, 6x6/12x12: 265.9 K): the ordering "
            "temperature is not converged on these lattices")
    r["mc"]["result"] = {"warning": note}
    r["mc"]["refine_warning"] = "edge"
    assert mc_warnings(r["mc"]) == ["edge", note]
    assert _flat("warning: " + note) in _flat(run_summary(r))
    r["mc"]["warning"] = note  # stored twice (Mermin-Wagner reason copied into the result): printed once
    assert mc_warnings(r["mc"]) == ["edge", note]


def test_a_tc_that_is_not_bracketed_is_never_printed_as_a_number():
    note = "not bracketed: Binder cumulants do not cross inside [20, 80] K (crossing above tmax = 80 K)"
    text = run_summary(_fake(tc=None, note=note))
    tc_line = _tc_line(text)
    assert note in tc_line and "±" not in tc_line
    # no note stored: still says why
    text = _flat(run_summary(_fake(tc=None, note=None)))
    assert "not bracketed: no Binder crossing inside the Monte Carlo window" in text
    # Mermin-Wagner: no number even if one was stored
    text = run_summary(_fake(tc=12.0, mw=True))
    tc_line = _tc_line(text)
    assert "Mermin–Wagner" in tc_line and "12.0" not in tc_line


def test_summary_of_a_run_stopped_early_names_what_is_missing():
    text = run_summary({"structure": {"formula": "VPS3"}}, {"preset": "fast"})
    assert "ground state" in text and "not computed yet" in text
    assert "Néel temperature" in text or "Curie temperature" in text
    _no_bad_numbers(text)


def test_scf_progress_reads_both_gpaw_log_formats(tmp_path):
    (tmp_path / "lcao.txt").write_text(LCAO_LOG)
    (tmp_path / "pw.txt").write_text(PW_LOG)
    p = scf_progress(tmp_path / "lcao.txt")
    assert p["iteration"] == 3 and p["energy_eV"] == -209.694942 and not p["converged"]
    assert p["delta_eV"] == pytest.approx(-209.694942 - -194.767430, abs=1e-9)
    p = scf_progress(tmp_path / "pw.txt")
    assert p["iteration"] == 2 and p["converged"]
    assert p["delta_eV"] == pytest.approx(-27.414431 - -28.744061, abs=1e-9)
    (tmp_path / "empty.txt").write_text("no SCF yet\n")
    assert scf_progress(tmp_path / "empty.txt") is None and scf_progress(tmp_path / "missing.txt") is None


def _fake_dft_dir(out: Path) -> None:
    for name in ("FM", "Neel"):
        d = out / "dft" / f"{name}_rect"
        d.mkdir(parents=True)
        (d / "summary.json").write_text("{}")
        (d / "gpaw.txt").write_text(LCAO_LOG + "\nConverged in 3 steps\n")
    d = out / "dft" / "zigzag_rect"
    d.mkdir()
    (d / "gpaw.txt").write_text(LCAO_LOG)


def test_step_progress_of_dft_and_monte_carlo(tmp_path):
    _fake_dft_dir(tmp_path)
    txt = step_progress(tmp_path, "dft")
    assert txt.startswith("2 of 4 configurations done") and "zigzag SCF iteration 3" in txt
    assert "ΔE = -1.49e+01 eV" in txt
    mc = tmp_path / "mc"
    mc.mkdir()
    for L, sweep in ((6, 8000), (9, 3000)):
        np.savez(mc / f"checkpoint_{L}_abc123.npz", sweep=np.array(sweep))
    txt = step_progress(tmp_path, "mc", {"mc_sweeps": 6000, "mc_therm": 2000})
    assert txt == "6x6 8000/8000 sweeps, 9x9 3000/8000 sweeps"
    assert step_progress(tmp_path, "lswt") is None and step_progress(tmp_path / "nothing", "dft") is None


def test_status_shows_partial_progress_through_the_cli(tmp_path, capsys):
    out = tmp_path / "run"
    _fake_dft_dir(out)
    assert main(["run", str(REPO / "data" / "structures" / "CrI3_monolayer.cif"), "--out", str(out), "--status"]) == 0
    lines = capsys.readouterr().out.splitlines()
    dft = next(ln for ln in lines if ln.strip().startswith("dft:"))
    assert "to do" in dft and "in progress: 2 of 4 configurations done" in dft
    assert any(ln.strip() == "structure: to do" for ln in lines)


def test_run_prints_the_summary_at_the_end(tmp_path, capsys):
    """End to end on synthetic VASP outputs (energies of a known J1-J3 model): the summary ends the output."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from make_synthetic import energy_outputs

    d = energy_outputs(tmp_path / "outputs", (-2.0, -0.3, 0.1), REPO)
    assert main(["run", "--from", str(d), "--out", str(tmp_path / "run"), "--until", "mapping"]) == 0
    printed = capsys.readouterr().out
    block = _flat(printed[printed.rindex("== wannmag run: CrI3"):])
    assert "DFT energies read from a directory" in block
    assert "J1 -2.000 J2 -0.300 J3 +0.100" in block  # the J's that generated the energies
    assert "not computed yet (step mc)" in block and "upper estimates" not in block
    _no_bad_numbers(block)


def test_run_dft_prints_scf_progress_from_the_log(tmp_path, monkeypatch, fake_gpaw):
    """run_dft's progress lines: 'configuration k of n' and the SCF iterations that appear in GPAW's log while the
    calculation runs (a fake calculator writes three LCAO-style iteration lines, 0.15 s apart)."""
    import time

    import wannmag.workflows.dft as dft

    FakeDFT = fake_gpaw["cls"]  # the fixture's class (a bare `import conftest` is ambiguous in the full run)

    class SlowFake(FakeDFT):
        def calculate(self, atoms=None, properties=("energy",), system_changes=()):
            with open(self.txt, "a") as fh:
                for line in LCAO_LOG.splitlines():
                    if line.startswith("iter:"):
                        fh.write(line + "\n")
                        fh.flush()
                        time.sleep(0.15)
            super().calculate(atoms, properties)

    monkeypatch.setattr(dft, "_make_calculator", lambda params, txt: SlowFake(params, txt))
    monkeypatch.setattr(dft, "SCF_PROGRESS_SECONDS", 0.05)
    logs = []
    dft.run_dft(REPO / "data" / "structures" / "CrI3_monolayer.cif", "FM", workdir=tmp_path, log=logs.append,
                progress="configuration 1 of 4")
    assert "FM (configuration 1 of 4)" in logs[0]
    scf = [ln for ln in logs if "SCF iteration" in ln]
    assert scf and scf[-1].endswith("SCF iteration 3, E = -209.694942 eV, ΔE = -1.49e+01 eV")
    iters = [int(re.search(r"iteration (\d+)", ln).group(1)) for ln in scf]
    assert iters == sorted(set(iters))  # each iteration at most once, in order


def test_the_quantum_mapped_number_says_it_inherits_the_warnings():
    from wannmag.workflows.summary import tc_estimate_lines

    r = _fake(tc=265.9)
    r["lswt"] = {"estimates": {"quantum_mapping": {"ratio": 1.677, "ratio_method": "classical-spin RPA"},
                               "torelli_olsen": {"x": 6.0e-4, "tc_K": 83.4, "S": 1.5}}}
    line = [t for t in tc_estimate_lines(r) if t.startswith("quantum-mapped")][0]
    assert "445.9 K" in line and "inherits its warnings" in line
    r["lswt"]["estimates"]["torelli_olsen"]["x"] = 0.05  # anisotropic enough, no stored warning: no such clause
    line = [t for t in tc_estimate_lines(r) if t.startswith("quantum-mapped")][0]
    assert "inherits" not in line
