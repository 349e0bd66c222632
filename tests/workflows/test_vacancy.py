"""The vacancy study (wannmag.workflows.vacancy): bond classes, the fit of J1 next to a vacancy, its rank check, and
the workflow steps vacancy_dft / vacancy_fit / vacancy_mc with a fake energy engine (no DFT).

Convention: H = Σ_{i<j} S_i·J_ij·S_j, each bond once, classical spins of length S = 3/2, J > 0 AF, meV; energies of
the fake engine in eV per vacancy cell.
"""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from step_results import hole_fit_result, vacancy_dft_result  # noqa: E402
from test_run import FAST, J_TRUE, from_dir  # noqa: E402,F401  (module-scoped synthetic CrI3 directory)

from wannmag.magnetism import SpinModel  # noqa: E402
from wannmag.magnetism.montecarlo import build_lattice  # noqa: E402
from wannmag.structures import find_magnetic_sites, honeycomb_configuration, neighbour_shells  # noqa: E402
from wannmag.workflows.vacancy import (VacancyError, VacancyFitError, choose_patterns,  # noqa: E402
                                       fit_vacancy_exchange, make_vacancy_cell, run_vacancy_configurations,
                                       vacancy_configuration)

REPO = Path(__file__).resolve().parents[2]
VPS3 = REPO / "data" / "structures" / "VPS3_monolayer.cif"
CRI3 = REPO / "data" / "structures" / "CrI3_monolayer.cif"


def perfect_model(structure, J):
    sub = find_magnetic_sites(structure)
    model = SpinModel.from_sublattice(sub)
    for Jn, sh in zip(J, neighbour_shells(sub, 3)):
        for b in sh.bonds:
            model.add_bond(b.i, b.j, b.R, Jn)
    return sub, model


class ClassicalEngine:
    """Fake DFT: the classical energy of a known SpinModel on the vacancy cell, computed with the Monte Carlo
    lattice (an independent code path: build_lattice's ``near_vacancy`` gives the vacancy bonds J_vac), plus a
    constant per remaining site.  Counts its calls; ``fail_after`` simulates a crash."""

    engine_name = "classical-test"

    def __init__(self, structure, J, J_vac, e_site=-14.6, fail_after=None):
        self.sub, self.model = perfect_model(structure, J)
        self.J_vac = J_vac
        self.e_site = e_site
        self.calls = 0
        self.fail_after = fail_after

    def __call__(self, structure, conf, preset, U, workdir):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise RuntimeError("simulated crash")
        self.calls += 1
        P = np.asarray(conf.supercell, int)
        size = tuple(int(P[k, k]) for k in range(3))
        assert np.count_nonzero(P - np.diag(np.diag(P))) == 0
        big = self.sub.atoms.cell.array * np.array(size)[:, None]
        inv = np.linalg.inv(big)

        def find(positions, p):
            d = (positions - p) @ inv
            d[:, :2] -= np.round(d[:, :2])
            k = int(np.argmin(np.linalg.norm(d @ big, axis=1)))
            assert np.linalg.norm(d[k] @ big) < 1e-3
            return k

        full = honeycomb_configuration(self.sub, "FM", supercell=P)
        lat0 = build_lattice(self.model, size)
        vac = find(lat0.positions, full.sublattice.positions[conf.vacancies[0]])
        lat = build_lattice(self.model, size, vacancies=[vac], near_vacancy={1: self.J_vac})
        spins = np.zeros((lat.n_sites, 3))
        for k, p in enumerate(conf.sublattice.positions):
            spins[find(lat.positions, p), 2] = conf.pattern[k] * lat.slen[0]
        e = lat.energy(spins) / 1000.0 + self.e_site * conf.n_sites
        return {"energy": e, "site_moments": (conf.pattern * 2.9).tolist(), "total_moment": float(conf.pattern.sum()),
                "gap": 0.0}


def run_steps_for_vacancy_mc(model_path, algorithm: str, tc: float, tc_error: float) -> dict:
    """The stored results of the run's structure, model and mc steps that vacancy_mc reads (typed: StructureStep,
    ModelStep, MCStep), for a formula "VPS3", the spin model file ``model_path`` and an mc step that chose
    ``algorithm`` and found Tc = ``tc`` ± ``tc_error`` K."""
    from wannmag.magnetism.montecarlo.tc import TcResult
    from wannmag.workflows.results import MCStep, ModelStep, StructureStep

    tcr = TcResult(sizes=["4x4x1"], tc=tc, tc_error=tc_error, method="Binder crossing", peaks_C={}, peaks_chi={},
                   crossings=[], mermin_wagner=False, status="bracketed")
    mc = MCStep(result=tcr, mermin_wagner=False, warning=None, sizes=[4], t_window_K=[1.0, 60.0], coarse={},
                refined=False, refine_warning=None, algorithm=algorithm, algorithm_reason="test", figure="")
    model = ModelStep(model_path=str(model_path), anisotropy_meV_per_ion=0.0, J_meV=[], method="test")
    return {"structure": StructureStep("VPS3", "", [], [], [], "").as_dict(), "model": model.as_dict(),
            "mc": mc.as_dict()}


J_VPS3 = (2.0, 0.1, 0.3)  # meV, VPS3-like AF J1


def _fit(structure, J, J_vac, fit, n_configs=None):
    cell = make_vacancy_cell(structure)
    pats = choose_patterns(cell, fit=fit, n_configs=n_configs)
    eng = ClassicalEngine(structure, J, J_vac)
    energies = [eng(structure, vacancy_configuration(structure, cell, p), "fast", 3.0, ".")["energy"] for p in pats]
    fixed = {"J2": J[1], "J3": J[2]} if fit == "J1" else None
    return cell, fit_vacancy_exchange(cell, pats, energies, fit=fit, fixed=fixed)


def test_bond_classes_of_the_2x2_cell():
    cell = make_vacancy_cell(VPS3)
    assert cell.n_full == 8 and cell.n_sites == 7 and cell.spin == 1.5
    assert len(cell.near_sites) == 3
    # 12 - 3 nearest-neighbour bonds left: 6 touch a neighbour of the vacancy, 3 are bulk-like; 24 - 6 J2; 12 - 3 J3
    assert cell.n_bonds() == {"J1_bulk": 3, "J1_vac": 6, "J2": 18, "J3": 9}
    with pytest.raises(VacancyError, match="too small"):
        make_vacancy_cell(VPS3, supercell=[[2, 1, 0], [-1, 1, 0], [0, 0, 1]])


@pytest.mark.parametrize("structure", [VPS3, CRI3])
def test_fit_recovers_bulk_and_vacancy_J_exactly(structure):
    cell, fit = _fit(structure, J_VPS3, J_vac=0.7, fit="J1")
    assert fit.J["J1_bulk"] == pytest.approx(J_VPS3[0], abs=1e-9)
    assert fit.J["J1_vac"] == pytest.approx(0.7, abs=1e-9)
    assert fit.rank == 3 and np.max(np.abs(fit.residuals_meV)) < 1e-8
    assert fit.E0_eV == pytest.approx(-14.6 * 7, abs=1e-9)


def test_fit_with_free_J2_J3():
    cell = make_vacancy_cell(VPS3)
    pats = choose_patterns(cell, fit="J123")
    eng = ClassicalEngine(VPS3, J_VPS3, -0.4)
    energies = [eng(VPS3, vacancy_configuration(VPS3, cell, p), "fast", 3.0, ".")["energy"] for p in pats]
    try:
        fit = fit_vacancy_exchange(cell, pats, energies, fit="J123")
    except VacancyFitError as exc:  # the 2x2 cell may not separate J2/J3 from J1: then the error must say so
        assert "not determined" in str(exc)
        return
    for k, v in zip(("J1_bulk", "J1_vac", "J2", "J3"), (J_VPS3[0], -0.4, J_VPS3[1], J_VPS3[2])):
        assert fit.J[k] == pytest.approx(v, abs=1e-8)


def test_underdetermined_fit_is_one_clear_error():
    cell = make_vacancy_cell(VPS3)
    pats = choose_patterns(cell, fit="J1", n_configs=2)
    with pytest.raises(VacancyFitError, match=r"underdetermined vacancy fit: 2 independent .* 3 unknowns"):
        fit_vacancy_exchange(cell, pats, [-100.0, -100.1], fit="J1", fixed={"J2": 0.1, "J3": 0.3})
    with pytest.raises(VacancyFitError, match="needs fixed values of J2, J3"):
        fit_vacancy_exchange(cell, pats, [-100.0, -100.1], fit="J1")


def test_configurations_resume_after_a_crash(tmp_path):
    cell = make_vacancy_cell(VPS3)
    pats = choose_patterns(cell, fit="J1")
    eng = ClassicalEngine(VPS3, J_VPS3, 0.7, fail_after=2)
    with pytest.raises(RuntimeError):
        run_vacancy_configurations(VPS3, cell, pats, eng, tmp_path, log=lambda m: None)
    assert len(list(tmp_path.glob("vac_*/record.json"))) == 2
    eng.fail_after = None
    recs = run_vacancy_configurations(VPS3, cell, pats, eng, tmp_path, log=lambda m: None)
    assert eng.calls == len(pats) and len(recs) == len(pats)  # the two finished ones were not recomputed


VAC_SETTINGS = {**FAST, "mc_sizes": [4, 6], "mc_sweeps": 1200, "mc_therm": 400, "mc_replicas": 10,
                "vac_realisations": 3}


def test_workflow_vacancy_study_json_plot_report_and_resume(from_dir, tmp_path):
    from wannmag.workflows.run import build_workflow

    out = tmp_path / "run"
    J_vac = -1.0  # weaker ferromagnetic J1 next to the vacancy than in the bulk (J1 = -2)
    eng = ClassicalEngine(CRI3, J_TRUE, J_vac)
    # the equal-spin J1_bulk / J1_vac study is the ionic charge mode (the neutral cell's: test_vacancy_neutral.py)
    kw = dict(from_dir=from_dir, out=out, settings=VAC_SETTINGS, vacancies=[0.1, 0.25], vacancy_engine=eng,
              vacancy_charge="ionic")
    logs = []
    res = build_workflow(log=logs.append, **kw).run()
    fit = res["vacancy_fit"]
    assert fit["J_meV"]["J1_bulk"] == pytest.approx(J_TRUE[0], abs=1e-6)
    assert fit["J_meV"]["J1_vac"] == pytest.approx(J_vac, abs=1e-6)
    vm = res["vacancy_mc"]
    assert vm["fractions"] == [0.0, 0.1, 0.25]
    tn = vm["tn_K"]
    # a number only for a bracketed Binder crossing; otherwise None with the reason
    for t, st, note in zip(tn, vm["statuses"], vm["notes"]):
        assert (t is None) == (st == "not bracketed") and (t is not None or note.startswith("not bracketed"))
    # (this synthetic CrI3 model is a 2D easy-plane Heisenberg magnet, Mermin-Wagner: its "T(x)" are finite-size
    # crossovers, too noisy to order in so short a run; monotonicity is tested on an Ising-like model below)
    assert vm["mermin_wagner"]
    study = json.loads((out / "vacancy" / "vacancy_study.json").read_text())
    assert study["tn_K"] == tn and "J > 0 AF" in study["convention"]
    assert (out / "vacancy" / "tn_vs_x.png").stat().st_size > 1000
    md = (out / "report.md").read_text()
    assert "## Vacancies" in md and "J1_vac" in md and "tn_vs_x.png" in md
    assert (out / "vacancy_dft" / "plan.json").exists() and list((out / "vacancy_dft" / "structures").glob("*.vasp"))
    # re-run: every step skipped, no configuration recomputed, same report
    calls = eng.calls
    logs.clear()
    again = build_workflow(log=logs.append, **kw).run()
    assert all("skipped" in m for m in logs if m.startswith("[wannmag run]"))
    assert eng.calls == calls and again["vacancy_mc"]["tn_K"] == tn
    assert (out / "report.md").read_text() == md
    # the stored vacancy steps are their typed results key for key; the report made again from them (each rebuilt
    # with from_dict) is the one the first run made from its objects in memory
    from wannmag.workflows.results import VacancyDFTStep, VacancyFitStep, VacancyMCStep

    for step, cls in (("vacancy_dft", VacancyDFTStep), ("vacancy_fit", VacancyFitStep), ("vacancy_mc", VacancyMCStep)):
        stored = {k: v for k, v in again[step].items() if not k.startswith("_")}
        assert json.dumps(cls.from_dict(stored).as_dict()) == json.dumps(stored), step
    build_workflow(log=logs.append, **kw).run(force=("report",))
    assert (out / "report.md").read_text() == md
    # a changed fraction list recomputes only the Monte Carlo of the study (and the report)
    logs.clear()
    build_workflow(log=logs.append, **{**kw, "vacancies": [0.1]}).run()
    redone = [m.split(":")[0].split()[-1] for m in logs if m.startswith("[wannmag run]") and "skipped" not in m
              and "finished" not in m]
    assert redone == ["vacancy_mc", "report"] and eng.calls == calls


def test_vacancy_monte_carlo_on_dask_gives_the_serial_numbers(from_dir, tmp_path):
    pytest.importorskip("dask.distributed")
    from wannmag.workflows.run import build_workflow

    eng = ClassicalEngine(CRI3, J_TRUE, -1.0)
    small = {**VAC_SETTINGS, "mc_sizes": [4], "mc_sweeps": 300, "mc_therm": 100, "mc_replicas": 4,
             "vac_realisations": 2}
    kw = dict(from_dir=from_dir, settings=small, vacancies=[0.25], vacancy_engine=eng, log=lambda m: None,
              vacancy_charge="ionic")
    serial = build_workflow(out=tmp_path / "serial", **kw).run(until="vacancy_mc")["vacancy_mc"]
    dask = build_workflow(out=tmp_path / "dask", dask="local", **kw).run(until="vacancy_mc")["vacancy_mc"]
    a, b = (json.loads((tmp_path / d / "vacancy" / "vacancy_study.json").read_text()) for d in ("serial", "dask"))
    assert dask["tn_K"] == serial["tn_K"] and a["dilution"] == b["dilution"]  # bit-identical Monte Carlo


def test_bad_fractions_are_refused(tmp_path):
    from wannmag.workflows.run import WorkflowError, build_workflow

    with pytest.raises(WorkflowError, match=r"vacancy fractions must lie in \(0, 1\)"):
        build_workflow(VPS3, out=tmp_path, vacancies=[0.0, 0.2])


def test_diluted_tn_decreases_monotonically_on_an_ising_honeycomb(tmp_path):
    from wannmag.magnetism.montecarlo import MCSettings
    from wannmag.workflows.vacancy import diluted_study

    _, model = perfect_model(VPS3, (2.0, 0.0, 0.0))  # Néel antiferromagnet, J1 = 2 meV, S = 3/2
    settings = MCSettings(tmin=10.0, tmax=120.0, n_replicas=14, n_sweeps=1500, n_therm=500, seed=1, ising=True)
    study = diluted_study(model, J_vac=1.0, fractions=[0.08, 0.16, 0.24], sizes=[4, 6], settings=settings,
                          realisations=3, out_dir=tmp_path)  # Tc(x = 0) ≈ 79 K (honeycomb Ising)
    tn = study["tn_K"]
    assert study["fractions"] == [0.0, 0.08, 0.16, 0.24]
    # x = 0, 0.08: Binder crossings 82 and 74 K (exact Tc(0) = 79 K); x = 0.16, 0.24: the 4/6 Binder cumulants do
    # not cross inside 10-120 K, so no T(x) is reported there — only the χ maxima, labelled as such
    assert study["statuses"] == ["bracketed", "bracketed", "not bracketed", "not bracketed"], study["notes"]
    assert 70.0 < tn[0] < 90.0 and tn[0] > tn[1] and tn[2:] == [None, None]
    assert all(m.startswith("Binder crossing") for m in study["methods"][:2])
    assert all(n.startswith("not bracketed: Binder cumulants do not cross inside [10, 120] K")
               for n in study["notes"][2:])
    chi = study["chi_max_K"]
    assert all(c["estimator"] == "chi maximum" for c in chi)
    assert all(a["T"] > b["T"] for a, b in zip(chi, chi[1:])), chi  # the ordering scale falls with x
    assert not study["mermin_wagner"]
    saved = json.loads((tmp_path / "vacancy_study.json").read_text())
    assert saved["tn_K"] == tn and saved["J1_vac_meV"] == 1.0
    assert (tmp_path / "tn_vs_x.png").stat().st_size > 1000


def test_gpaw_engine_path_with_a_fake_calculator(fake_gpaw, tmp_path):
    """The default engine goes through run_dft (neutral vacancy cell, 39 atoms for VPS3 2x2) and its records keep
    moments and gaps; the identity stored next to each record makes a re-run read instead of recompute."""
    from wannmag.workflows.vacancy import gpaw_engine

    cell = make_vacancy_cell(VPS3)
    pats = choose_patterns(cell, fit="J1", n_configs=3)
    recs = run_vacancy_configurations(VPS3, cell, pats, gpaw_engine, tmp_path, log=lambda m: None)
    assert [r["name"] for r in recs] == [f"vac_{''.join('u' if s > 0 else 'd' for s in p)}" for p in pats]
    assert all(len(r["moments"]) == 39 and len(r["site_moments"]) == 7 for r in recs)
    assert fake_gpaw["cls"].instances == 3
    again = run_vacancy_configurations(VPS3, cell, pats, gpaw_engine, tmp_path, log=lambda m: None)
    assert fake_gpaw["cls"].instances == 3 and [r["energy"] for r in again] == [r["energy"] for r in recs]


def test_near_vacancy_exchange_replaces_only_the_isotropic_part():
    from wannmag.workflows.vacancy import NearVacancyJ

    _, model = perfect_model(VPS3, (2.0, 0.1, 0.3))
    K = np.diag([0.0, 0.0, 0.5])  # an anisotropic (XXZ-like) part on every bond
    for b in model.bonds:
        b.J = b.J + K
    f = NearVacancyJ(model, 0.7)
    nn = [k for k, s in enumerate(f.shells) if s == 1]
    J = f(nn[0], model.bonds[nn[0]], 1)
    assert np.trace(J) / 3 == pytest.approx(0.7) and J[2, 2] - J[0, 0] == pytest.approx(0.5)
    far = [k for k, s in enumerate(f.shells) if s == 2][0]
    assert f(far, model.bonds[far], 1) is None


def test_vacancy_charge_states(tmp_path):
    """neutral → 0; ionic → −(oxidation state of the removed ion): VPS3 −2 (all V2+), CrI3 −3; the charge enters the
    GPAW parameters (and the run's identity) only when non-zero, and charged records are not mixed with neutral ones."""
    from wannmag.structures import cri3_monolayer
    from wannmag.workflows.dft import dft_parameters
    from wannmag.workflows.vacancy import vacancy_charge, vacancy_configuration

    assert vacancy_charge(VPS3, "neutral") == 0.0 and vacancy_charge(VPS3, None) == 0.0
    assert vacancy_charge(VPS3, "ionic") == -2.0
    assert vacancy_charge(cri3_monolayer(), "ionic") == -3.0
    assert vacancy_charge(VPS3, "-1.5") == -1.5
    with pytest.raises(VacancyError, match="neutral', 'ionic' or a number"):
        vacancy_charge(VPS3, "holes")
    cell = make_vacancy_cell(VPS3)
    conf = vacancy_configuration(VPS3, cell, choose_patterns(cell, fit="J1")[0])
    assert "charge" not in dft_parameters(conf)                      # neutral runs keep their identity
    assert dft_parameters(conf, charge=-2.0)["charge"] == -2.0
    pats = choose_patterns(cell, fit="J1")[:1]
    eng = ClassicalEngine(VPS3, J_VPS3, 0.7)
    run_vacancy_configurations(VPS3, cell, pats, eng, tmp_path, log=lambda m: None)
    run_vacancy_configurations(VPS3, cell, pats, eng, tmp_path, log=lambda m: None, charge=-2.0)
    assert eng.calls == 2                                            # a different charge is a different calculation


def test_bad_vacancy_charge_is_refused_before_any_step(tmp_path):
    from wannmag.cli import main

    assert main(["run", str(VPS3), "--out", str(tmp_path / "run"), "--vacancies", "0.1",
                 "--vacancy-charge", "holes"]) == 2
    assert not (tmp_path / "run" / "steps").exists()


def test_monte_carlo_settings_from_the_command_line(tmp_path, capsys):
    from wannmag.cli import main

    assert main(["run", str(VPS3), "--out", str(tmp_path / "bad"), "--mc-sizes", "2", "8"]) == 2
    assert "--mc-sizes must be at least 4" in capsys.readouterr().err
    assert main(["run", str(VPS3), "--out", str(tmp_path / "bad"), "--vacancy-realisations", "0"]) == 2
    assert "--vacancy-realisations must be positive" in capsys.readouterr().err
    assert not (tmp_path / "bad" / "steps").exists()
    # the options reach the Monte Carlo steps' parameters (and so their fingerprints)
    from wannmag.workflows.run import build_workflow

    eng = build_workflow(VPS3, out=tmp_path / "ok", settings={"mc_sizes": [12, 18], "mc_sweeps": 800,
                                                              "mc_therm": 200, "vac_realisations": 9},
                         vacancies=[0.1], log=lambda m: None)
    steps = {s.name: s for s in eng.steps}
    assert steps["mc"].params["mc_sizes"] == [12, 18] and steps["mc"].params["mc_sweeps"] == 800
    assert steps["vacancy_mc"].params["vac_realisations"] == 9


def test_refined_dilution_pass_and_keyed_checkpoints(tmp_path):
    """The second pass runs every x on a ladder around its first estimate (reported, first pass kept), and a
    re-run with other Monte Carlo settings in the same directory starts fresh instead of meeting the first run's
    checkpoints."""
    from dataclasses import replace

    from wannmag.magnetism.montecarlo import MCSettings
    from wannmag.magnetism.montecarlo.tc import refine_window
    from wannmag.workflows.vacancy import diluted_study

    _, model = perfect_model(VPS3, (2.0, 0.0, 0.0))
    st = MCSettings(tmin=10.0, tmax=120.0, n_replicas=10, n_sweeps=800, n_therm=200, seed=2, ising=True)
    study = diluted_study(model, 1.0, [0.2], [4, 6], st, realisations=2, out_dir=tmp_path, refine=True)
    c = study["coarse"]
    assert study["refined"] and c["t_window_K"] == [10.0, 120.0]
    # x = 0: a bracketed crossing, refined on a ladder around it
    w = refine_window(c["tn_K"][0], c["tn_error_K"][0], 10.0, 120.0)
    assert study["t_windows_K"][0] == pytest.approx(list(w)) and w[0] < c["tn_K"][0] < w[1]
    assert study["statuses"][0] == "bracketed" and w[0] < study["tn_K"][0] < w[1]
    # x = 0.2: no crossing in the first pass; the second pass around its interior χ maximum finds none either, so
    # T(x) stays None — the χ maximum (45 K) is reported under its own name, never as T(x)
    assert c["tn_K"][1] is None and study["tn_K"][1] is None and study["statuses"][1] == "not bracketed"
    assert study["chi_max_K"][1]["estimator"] == "chi maximum" and 30 < study["chi_max_K"][1]["T"] < 60
    assert any(n.startswith("x = 0.2: the second pass on") and "found no Binder crossing" in n
               for n in study["warnings"])
    assert set(study["dilution"]["refined"]) == {"0", "0.2"}
    again = diluted_study(model, 1.0, [0.2], [4, 6], replace(st, n_sweeps=600), realisations=2, out_dir=tmp_path)
    assert again["coarse"]["tn_K"] != c["tn_K"]  # ran afresh (its own checkpoint directory), no error
    assert len(list((tmp_path / "checkpoints").iterdir())) == 4  # 2 refined windows + 2 first passes


def test_vacancy_mc_step_runs_holes_beside_dilution_for_a_neutral_fit_with_hole_classes(tmp_path):
    """The vacancy_mc step with a fake fit by hole class (as fit_hole_records gives for the neutral cell): the
    dilution-only series (every J of the crystal) and the series with holes (HoleSpec from the fit, V3-V3 = V2-V3
    said in a note), each identical to a direct dilution_scan of the same settings; both in the step result, the
    JSON, the figure and the report section; the easy-axis cumulant for this uniaxial model."""
    from wannmag.magnetism.montecarlo import MCSettings
    from wannmag.magnetism.montecarlo.dilution import dilution_scan
    from wannmag.magnetism.montecarlo.holes import HoleSpec
    from wannmag.magnetism.spinmodel import MEV_PER_K
    from wannmag.workflows.engine import Context
    from wannmag.workflows.results import VacancyMCStep
    from wannmag.workflows.vacancy import report_lines, step_vacancy_mc

    _, model = perfect_model(VPS3, (2.0, 0.1, 0.0))
    model.single_ion = [np.diag([0.0, 0.0, -0.05])] * model.n_sites  # easy axis z
    model.save(tmp_path / "model.json")
    fit = hole_fit_result(VPS3, {"V2-V2_bulk": 2.0, "next_to_vacancy": 1.5, "V2-V3": 0.8, "J2": 0.1, "J3": 0.0},
                          {"J2": 0.1, "J3": 0.0}, 4, {"name": "near", "sites": [1, 3], "spin_hole": 1.0},
                          perfect_J_meV=[2.0, 0.1, 0.0])
    params = {"vacancy": {"fractions": [0.1], "charge": "neutral"}, "mc_sizes": [4, 6], "mc_sweeps": 200,
              "mc_therm": 50, "mc_replicas": 4, "seed": 3, "vac_realisations": 2, "mc_refine": False, "workers": 1}
    results = {**run_steps_for_vacancy_mc(tmp_path / "model.json", "cluster", 30.0, 1.0), "vacancy_fit": fit,
               "vacancy_dft": vacancy_dft_result(VPS3)}
    ctx = Context(tmp_path / "run", params, results, log=lambda m: None)
    step = step_vacancy_mc(ctx)
    assert isinstance(step, VacancyMCStep) and isinstance(step.with_holes.hole_spec, HoleSpec)
    vm = step.as_dict()
    assert json.dumps(VacancyMCStep.from_dict(json.loads(json.dumps(vm))).as_dict()) == json.dumps(vm)
    results["vacancy_mc"] = vm
    spec = HoleSpec(J={"V2-V2_bulk": 2.0, "next_to_vacancy": 1.5, "V2-V3": 0.8, "V3-V3": 0.8})
    wh = vm["with_holes"]
    assert HoleSpec.from_dict(wh["hole_spec"]) == spec and any("V3-V3 not in the fit" in n for n in vm["hole_notes"])
    assert vm["J1_vac_meV"] is None and "dilution" not in vm and "dilution" not in wh
    assert vm["algorithm"] == "cluster" and vm["algorithm_reason"]
    assert vm["binder"] == wh["binder"] == ["easy-axis", "easy-axis"]
    hc = wh["hole_counts"]
    assert hc[0]["n_holes"] == 0
    assert hc[1]["n_holes"] == 2 * hc[1]["n_vacancies"] == 2 * 2 * (3 + 7)  # round(0.1 N), N = 32, 72
    # the same numbers as a direct scan with the step's settings (window 0.03-1.1 T_MF, algorithm cluster)
    S = 1.5
    t_mf = S * S * sum(abs(b.J_iso) for b in model.bonds) * 2 / model.n_sites / 3 / MEV_PER_K
    st = MCSettings(tmin=0.03 * t_mf, tmax=1.1 * t_mf, n_replicas=4, n_sweeps=200, n_therm=50, seed=3,
                    checkpoint_every=1000, algorithm="cluster")
    plain = dilution_scan(model, [0.0, 0.1], [4, 6], st, realisations=2, warn=False)
    holes = dilution_scan(model, [0.0, 0.1], [4, 6], st, realisations=2, holes=spec, warn=False)
    assert vm["tn_K"] == plain.tc and wh["tn_K"] == holes.tc
    saved = json.loads((tmp_path / "run" / "vacancy" / "vacancy_study.json").read_text())
    for got, want in ((saved["dilution"], plain), (saved["with_holes"]["dilution"], holes)):
        assert got["averaged_curves"][1]["6x6x1"]["U4_axis"] == \
            [want.curves[1]["6x6x1"]["U4_axis"][0].tolist(), want.curves[1]["6x6x1"]["U4_axis"][1].tolist()]
    assert not np.array_equal(plain.curves[1]["6x6x1"]["energy"][0], holes.curves[1]["6x6x1"]["energy"][0])
    assert Path(vm["figure"]).stat().st_size > 1000
    ctx.out = tmp_path / "run"
    md = "\n".join(report_lines(ctx))
    assert "With holes:" in md and "V2-V3 +0.80" in md and "Binder cumulant: easy-axis" in md
    assert "40 on 20 vacancies" in md  # 2 realisations x (3 + 7) vacancies, summed over L = 4 and 6
