"""Issue 22 item 2 (the rest of the steps): relax, superexchange, exchange_compare, lswt, mc and report return typed
results too (wannmag.workflows.results), stored key for key as the former dicts, and the report reads the typed
results: the objects of this run in memory, the steps of an earlier run rebuilt once each with from_dict.  The
vacancy study's own steps vacancy_dft, vacancy_fit and vacancy_mc likewise (VacancyDFTStep, VacancyFitStep; both
layouts: the equal-spin cell and the neutral cell with its holes; VacancyMCStep with its DilutionSeries).  Units:
eV, meV (H = Σ_{i<j} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i, each bond once, |S| = S, J > 0 AF), K, Å."""

import json
import sys
from pathlib import Path

import pytest

import wannmag.workflows.results as results
from wannmag.workflows.relax import RelaxResult
from wannmag.magnetism.vacancy import VacancyFit
from wannmag.magnetism.vacancy_holes import HoleDesign, PlacementChoice, PlacementRun
from wannmag.workflows.results import (AnisotropyStep, DFTStep, DilutionSeries, ExchangeCompareStep, LSWTStep,
                                       MappingStep, MCStep, MFTStep, ModelStep, RelaxStep, ReportStep, StepResultError,
                                       StructureStep, SuperexchangeStep, TBStep, VacancyDFTStep, VacancyFitStep,
                                       VacancyMCStep, WannierStep)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_synthetic import energy_outputs  # noqa: E402
from step_results import hole_fit_result  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
ACCURATE = ROOT / "data" / "runs" / "CrI3_accurate" / "steps"
TYPES = {"structure": StructureStep, "dft": DFTStep, "mapping": MappingStep, "wannier": WannierStep, "tb": TBStep,
         "mft": MFTStep, "superexchange": SuperexchangeStep, "anisotropy": AnisotropyStep,
         "exchange_compare": ExchangeCompareStep, "model": ModelStep, "lswt": LSWTStep, "mc": MCStep,
         "report": ReportStep}
TINY = {"mc_sizes": [4, 6], "mc_sweeps": 300, "mc_therm": 100, "mc_replicas": 6, "kmesh_mft": [6, 6, 1]}


def _plain(d: dict) -> dict:
    return {k: v for k, v in d.items() if not k.startswith("_")}


@pytest.fixture(scope="module")
def from_dir(tmp_path_factory):
    """Synthetic VASP energies of J = (−2.0, −0.3, 0.1) meV and Slater–Koster Wannier files of CrI3 (test_run.py)."""
    from wannmag.structures import cri3_monolayer
    from wannmag.tightbinding import slater_koster_model, write_w90_model

    d = energy_outputs(tmp_path_factory.mktemp("outputs"), (-2.0, -0.3, 0.1), ROOT)
    (d / "wannier").mkdir()
    kw = dict(d_atoms=["Cr"], p_atoms=["I"], params=dict(pds=-0.6, pdp=0.3, dds=-0.05, ddp=0.025, pps=0.25,
                                                          ppp=-0.075), eps_p=-2.5, crystal_field=(-0.3, 0.6))
    for ch, eps in (("up", -1.5), ("dn", 1.5), ("nm", 0.0)):
        spin = {"up": "up", "dn": "down", "nm": None}[ch]
        write_w90_model(slater_koster_model(cri3_monolayer(), eps_d=eps, spin=spin, **kw), d / "wannier" / f"CrI3_{ch}",
                        mp_grid=(6, 6, 1))
    return d


def _spy_from_dict(monkeypatch, types=TYPES.values()) -> list:
    calls = []
    for cls in types:
        real = cls.from_dict.__func__
        monkeypatch.setattr(cls, "from_dict",
                            classmethod(lambda c, d, _real=real: calls.append(c.__name__) or _real(c, d)))
    return calls


def test_a_run_hands_typed_results_on_and_the_report_reads_them(from_dir, tmp_path, monkeypatch):
    """A fresh run rebuilds no step from its JSON (every later step and the report get the objects); each stored
    step is its typed result key for key; a report made again from the stored steps (each rebuilt once) is the same
    file, and its numbers are the typed results' (J1 of the superexchange, Tc of the Monte Carlo)."""
    from wannmag.workflows.run import build_workflow

    calls = _spy_from_dict(monkeypatch)
    out = tmp_path / "run"
    res = build_workflow(from_dir=from_dir, out=out, settings=TINY, log=lambda m: None).run()
    assert calls == []
    for step, cls in TYPES.items():
        stored = json.loads((out / "steps" / f"{step}.json").read_text())
        assert json.dumps(cls.from_dict(_plain(stored)).as_dict()) == json.dumps(_plain(stored)), step
    calls.clear()
    md = (out / "report.md").read_text()
    build_workflow(from_dir=from_dir, out=out, settings=TINY, log=lambda m: None).run(force=("report",))
    assert (out / "report.md").read_text() == md
    read = ["StructureStep", "MappingStep", "MFTStep", "SuperexchangeStep", "ExchangeCompareStep", "TBStep",
            "AnisotropyStep", "ModelStep", "LSWTStep", "MCStep"]
    assert sorted(calls) == sorted(read)  # once each, even where the report reads a step twice (mapping, mc, ...)
    sx = SuperexchangeStep.from_dict(res["superexchange"])
    assert sx.J1_meV == res["superexchange"]["J1_meV"] < 0 and sx.result.bonds[0].in_range  # FM-like 1NN
    assert f"| superexchange channels (1NN, Kanamori perturbation theory) | {sx.J1_meV:+.3f} | | |" in md
    mc = MCStep.from_dict(res["mc"])
    assert mc.tc_K == res["mc"]["result"]["tc_K"] and mc.mermin_wagner  # easy-plane 2D model: Mermin-Wagner flag
    assert "Curie temperature: **none**" in md
    ec = ExchangeCompareStep.from_dict(res["exchange_compare"])
    assert ec.routes.route("energy mapping").J1 == pytest.approx(-2.0, abs=1e-4)
    assert json.loads((out / "exchange_routes.json").read_text()) == ec.routes.as_dict()


def test_stored_lswt_and_report_of_the_accurate_run_key_for_key():
    """lswt.json of the accurate run was stored before the analytic estimates were: it reads and writes back
    without them; the report step's files."""
    for step, cls in (("lswt", LSWTStep), ("report", ReportStep)):
        stored = _plain(json.loads((ACCURATE / f"{step}.json").read_text()))
        obj = cls.from_dict(stored)
        assert json.dumps(obj.as_dict()) == json.dumps(stored)
    lw = LSWTStep.from_dict(json.loads((ACCURATE / "lswt.json").read_text()))
    assert lw.estimates is None and lw.gap_meV > 0 and lw.rpa.tc_classical == lw.tc_rpa_K  # easy axis: gapped
    assert LSWTStep.from_dict({"skipped": "no ground state"}).as_dict() == {"skipped": "no ground state"}


def test_mc_step_of_an_earlier_layout_reads_and_writes_the_current_one():
    """The accurate run's mc.json has no status, note, algorithm or binder (stored before them): it reads, the
    numbers it has are kept, and it writes the current layout (the result's own status and Binder cumulant)."""
    stored = _plain(json.loads((ACCURATE / "mc.json").read_text()))
    mc = MCStep.from_dict(stored)
    d = mc.as_dict()
    assert all(d[k] == v for k, v in stored.items() if k != "result")
    assert mc.tc_K == stored["tc_K"] == stored["result"]["tc_K"] == pytest.approx(69.6, abs=0.1)
    assert mc.coarse["tc_K"] == pytest.approx(65.9, abs=0.1) and mc.refined and mc.algorithm is None
    assert list(d)[:5] == ["tc_K", "tc_error_K", "method", "status", "note"] and d["binder"] == "vector"
    with pytest.raises(StepResultError, match="mc step result without result"):
        MCStep.from_dict({k: v for k, v in stored.items() if k != "result"})


def test_relax_step_round_trip():
    res = RelaxResult(structure="/x/CrI3.cif", converged=True, status="forces below 0.02 eV/Å", fmax=0.02,
                      max_force=0.011, steps=7, max_steps=200, energy_eV=-29.3, relaxed_file="/x/relax/relaxed.cif",
                      geometry_before={"M-X": [2.78]}, geometry_after={"M-X": [2.74]})
    step = RelaxStep(result=res, unrelaxed_structure="/x/CrI3.cif")
    back = RelaxStep.from_dict(json.loads(json.dumps(step.as_dict())))
    assert back.as_dict() == step.as_dict() and back.result.table() == res.table()
    assert list(step.as_dict())[-1] == "unrelaxed_structure" and results.RelaxStep is RelaxStep


# ------------------------------------------------------------------------------------------ the vacancy study
VACANCY = {"vacancy_dft": VacancyDFTStep, "vacancy_fit": VacancyFitStep}


def _stored(out, step) -> dict:
    return _plain(json.loads((out / "steps" / f"{step}.json").read_text()))


def _vacancy_round_trip(out, build, calls) -> tuple[VacancyDFTStep, VacancyFitStep]:
    """A fresh run to vacancy_fit hands the DFT step's object to the fit (no from_dict); both stored steps are their
    typed results key for key (order included); the fit made again from the stored DFT step (rebuilt once) is the
    same stored fit."""
    build().run(until="vacancy_fit")
    assert calls == []
    for step, cls in VACANCY.items():
        stored = _stored(out, step)
        assert json.dumps(cls.from_dict(stored).as_dict()) == json.dumps(stored), step
    fit = _stored(out, "vacancy_fit")
    calls.clear()
    build().run(until="vacancy_fit", force=("vacancy_fit",))
    assert calls == ["VacancyDFTStep"] and json.dumps(_stored(out, "vacancy_fit")) == json.dumps(fit)
    return VacancyDFTStep.from_dict(_stored(out, "vacancy_dft")), VacancyFitStep.from_dict(fit)


def test_vacancy_steps_of_the_equal_spin_cell_are_typed_and_round_trip(from_dir, tmp_path, monkeypatch):
    """Ionic charge mode (every Cr3+ keeps S = 3/2): J1_bulk and J1_vac of a classical fake engine with J1 = −2.0,
    J1 next to the vacancy −1.0 meV (J2, J3 held at the mapping's −0.3, 0.1) come back exactly from the typed fit."""
    from test_vacancy import CRI3, ClassicalEngine

    from wannmag.workflows.run import build_workflow

    calls = _spy_from_dict(monkeypatch, VACANCY.values())
    out = tmp_path / "run"
    eng = ClassicalEngine(CRI3, (-2.0, -0.3, 0.1), -1.0)
    vd, vf = _vacancy_round_trip(out, lambda: build_workflow(from_dir=from_dir, out=out, vacancies=[0.1],
                                                             vacancy_engine=eng, vacancy_charge="ionic",
                                                             log=lambda m: None), calls)
    assert vd.mode is None and vd.engine == "classical-test" and vd.charge == -3.0
    assert (vd.cell.n_full, vd.cell.n_sites, vd.cell.bonds) == (8, 7, None)  # rebuilt without its bonds
    assert vd.cell.n_bonds() == vf.cell.n_bonds() and sum(vd.cell.n_bonds().values()) > 0
    assert vf.mode is None and vf.configurations == [r["name"] for r in vd.records]
    assert vf.J_meV["J1_bulk"] == pytest.approx(-2.0, abs=1e-6) and vf.J_meV["J1_vac"] == pytest.approx(-1.0, abs=1e-6)
    assert vf.fixed_meV == pytest.approx({"J2": -0.3, "J3": 0.1}, abs=1e-9) and vf.perfect_J_meV[:2] == \
        pytest.approx([-2.0, -0.3], abs=1e-6)
    assert isinstance(vf.fit, VacancyFit) and vf.fit.J == vf.J_meV and vf.n_unknowns == vf.fit.n_unknowns == 3
    assert vf.placement is None and vf.J_fitted_meV is None and "J1_vac" in vf.table


def test_vacancy_steps_of_the_neutral_cell_are_typed_and_round_trip(tmp_path, monkeypatch):
    """Neutral charge mode (two S = 1 holes per vacancy, fake engine of known class couplings, meV): the placements,
    the choice, the design and the fit by hole class are typed objects and come back from the stored steps."""
    from fake_vacancy_holes import HoleEngine, vps3_from_dir

    from wannmag.workflows.run import build_workflow

    J123 = (26.4, 0.37, 0.6)
    J = {"V2-V2_bulk": 26.1, "next_to_vacancy": 21.0, "V2-V3": 12.5, "V3-V3": 8.0, "J2": J123[1], "J3": J123[2]}
    vps3 = vps3_from_dir(tmp_path / "from", J123, ROOT)
    (tmp_path / "log").mkdir()
    eng = HoleEngine(str(vps3 / "VPS3_monolayer.cif"), J, tmp_path / "log")
    calls = _spy_from_dict(monkeypatch, VACANCY.values())
    out = tmp_path / "run"
    vd, vf = _vacancy_round_trip(out, lambda: build_workflow(from_dir=vps3, out=out, vacancies=[0.1],
                                                             vacancy_engine=eng, vacancy_configs=8,
                                                             log=lambda m: None), calls)
    assert vd.mode == vf.mode == "holes" and vd.charge == 0.0 and vd.holes_per_vacancy == 2 and vd.spin_hole == 1.0
    assert all(isinstance(r, PlacementRun) for r in vd.placements) and [r.name for r in vd.placements] == \
        vd.placement_names == ["near", "far"]
    assert isinstance(vd.choice, PlacementChoice) and vd.choice.placement == vd.placement.name == "near"
    assert isinstance(vd.design, HoleDesign) and len(vd.design.patterns) == len(vd.records) == 8
    assert vf.placement == vd.placement and vf.mc_placement == "near" and vf.fit is None
    for c in ("V2-V2_bulk", "next_to_vacancy", "V2-V3"):
        assert vf.J_meV[c] == pytest.approx(J[c], abs=1e-6) and vf.J_fitted_meV[c] == vf.J_meV[c]
    assert vf.fixed_meV == pytest.approx({"J2": J123[1], "J3": J123[2]}, abs=1e-6)
    assert vf.absorbed == [] and vf.status == "fitted" and vf.effective is False and vf.moved == []
    assert [r["name"] for r in vf.configurations] == [r["name"] for r in vd.records]
    assert vf.residual_rms_meV < 1e-6 and vf.dof == 8 - 1 - len(vf.J_fitted_meV)


def test_neutral_vacancy_fit_stored_before_the_fit_options_round_trips_without_them():
    """A neutral-cell fit stored before the fit options existed has no absorbed, status, kind, effective, moved,
    options, beyond_heisenberg_meV: it reads (None) and writes back without them; a required key missing is one
    StepResultError line naming it."""
    cif = ROOT / "data" / "structures" / "VPS3_monolayer.cif"
    now = hole_fit_result(cif, {"V2-V2_bulk": 2.0, "next_to_vacancy": 1.5, "V2-V3": 0.8, "J2": 0.1, "J3": 0.0},
                          {"J2": 0.1, "J3": 0.0}, 4, {"name": "near", "sites": [1, 3], "spin_hole": 1.0},
                          perfect_J_meV=[2.0, 0.1, 0.0])
    later = ("absorbed", "status", "kind", "effective", "moved", "options", "beyond_heisenberg_meV")
    old = {k: v for k, v in json.loads(json.dumps(now)).items() if k not in later}
    fit = VacancyFitStep.from_dict(old)
    assert all(getattr(fit, k) is None for k in later) and json.dumps(fit.as_dict()) == json.dumps(old)
    assert list(now).index("absorbed") == list(now).index("spins") + 1 and list(now)[-1] == "table"
    with pytest.raises(StepResultError, match="vacancy_fit \\(neutral cell\\) step result without mc_placement"):
        VacancyFitStep.from_dict({k: v for k, v in old.items() if k != "mc_placement"})
    with pytest.raises(StepResultError, match="vacancy_dft step result without records"):
        VacancyDFTStep.from_dict({"cell": now["cell"], "engine": "x", "charge": 0.0})


def _series(n: int, holes: bool) -> dict:
    """One T(x) series as diluted_study stores it (K; keys in its order), for n fractions."""
    d = {"tn_K": [60.0] + [None] * (n - 1), "tn_error_K": [1.0] + [None] * (n - 1),
         "methods": ["Binder crossing 4x4x1/6x6x1"] + ["not bracketed"] * (n - 1),
         "statuses": ["bracketed"] + ["not bracketed"] * (n - 1), "notes": [""] * n,
         "estimators": ["Binder crossing 4x4x1/6x6x1"] + ["not bracketed"] * (n - 1), "binder": ["easy-axis"] * n,
         "chi_max_K": [{"T": 58.0, "error": None, "lattice": "6x6x1", "estimator": "chi maximum", "text": "58"}, None],
         "t_windows_K": [[1.0, 90.0]] * n, "coarse": {"tn_K": [60.0, None]}}
    if holes:
        d["warnings"] = ["x = 0.1: no crossing"]
    d.update({"mermin_wagner": False, "realisations": 2})
    if holes:
        d.update({"hole_spec": {"J_meV": {"V2-V2_bulk": 2.0, "next_to_vacancy": 1.5, "V2-V3": 0.8, "V3-V3": 0.8},
                                "placement": "near", "per_vacancy": 2, "spin_hole": 1.0,
                                "convention": "H = sum_{i<j} S_i.J_ij.S_j, each bond once, |S_i| = S_i, J > 0 AF, meV"},
                  "hole_counts": [{"n_holes": 0, "n_vacancies": 0}, {"n_holes": 40, "n_vacancies": 20}]})
    return d


def _vacancy_mc(holes: bool) -> dict:
    """A vacancy_mc step as step_vacancy_mc stores it (keys in its order): dilution only, or beside the holes."""
    d = {"convention": "H = sum_{i<j} S_i.J_ij.S_j + sum_i S_i.A_i.S_i, each bond once, |S| = S, J > 0 AF; meV, K",
         "fractions": [0.0, 0.1], **_series(2, False), "sizes": [4, 6], "t_window_K": [1.0, 90.0], "refined": False,
         "J1_vac_meV": None if holes else -1.0, "perfect_mc_K": [61.0, 1.5], "warnings": ["x = 0.1: no crossing"],
         "fit": {"J_meV": {"J1_vac": -1.0}, "fixed_meV": {}, "rank": 3}, "algorithm": "cluster"}
    if holes:
        d.update({"algorithm_reason": "cluster scheme valid", "hole_notes": ["V3-V3 not in the fit"],
                  "with_holes": _series(2, True)})
    return {**d, "json": "/x/vacancy/vacancy_study.json", "figure": "/x/vacancy/tn_vs_x.png"}


def test_vacancy_mc_step_round_trips_with_and_without_holes_and_an_earlier_layout():
    """vacancy_mc (K): the dilution-only series stored flat, the with-holes series nested with its HoleSpec; both
    layouts read and write back key for key (order included); a step lacking what later versions added (statuses,
    estimators, chi maxima, refined, algorithm, ...) reads with None and writes back without them (J1_vac_meV and
    perfect_mc_K, None by meaning, are written); a key the report needs missing is one StepResultError line."""
    from wannmag.magnetism.montecarlo.holes import HoleSpec

    for holes in (False, True):
        d = json.loads(json.dumps(_vacancy_mc(holes)))
        vm = VacancyMCStep.from_dict(d)
        assert json.dumps(vm.as_dict()) == json.dumps(d)
        assert vm.series.tn_K == [60.0, None] and vm.series.warnings is None and vm.warnings == d["warnings"]
        assert vm.series.realisations == 2 and vm.series.binder == ["easy-axis"] * 2
        if holes:
            assert isinstance(vm.with_holes, DilutionSeries) and vm.with_holes.hole_counts[1]["n_holes"] == 40
            assert vm.with_holes.hole_spec == HoleSpec(J={"V2-V2_bulk": 2.0, "next_to_vacancy": 1.5, "V2-V3": 0.8,
                                                          "V3-V3": 0.8})
            assert vm.J1_vac_meV is None and vm.algorithm_reason and vm.hole_notes
        else:
            assert vm.with_holes is None and vm.J1_vac_meV == -1.0 and vm.hole_notes is None
    early = {k: v for k, v in _vacancy_mc(False).items()
             if k in ("fractions", "tn_K", "tn_error_K", "methods", "mermin_wagner", "realisations", "sizes",
                      "J1_vac_meV", "perfect_mc_K", "warnings", "json", "figure")}
    vm = VacancyMCStep.from_dict(early)
    assert vm.series.chi_max_K is None and vm.refined is None and vm.algorithm is None and vm.convention is None
    assert json.dumps(vm.as_dict()) == json.dumps(early)
    partial = {k: v for k, v in early.items() if k not in ("J1_vac_meV", "perfect_mc_K")}
    assert VacancyMCStep.from_dict(partial).as_dict() == {**partial, "J1_vac_meV": None, "perfect_mc_K": None}
    with pytest.raises(StepResultError, match="vacancy_mc step result without realisations"):
        VacancyMCStep.from_dict({k: v for k, v in early.items() if k != "realisations"})
    with pytest.raises(StepResultError, match="vacancy_mc series step result without methods"):
        DilutionSeries.from_dict({"tn_K": [], "tn_error_K": []})


def test_neutral_vacancy_fit_source_of_each_class():
    """VacancyFitStep.source: where the J of each class of the neutral cell's fit comes from (the tables' column)."""
    cif = ROOT / "data" / "structures" / "VPS3_monolayer.cif"
    d = hole_fit_result(cif, {"V2-V2_bulk": 2.0, "next_to_vacancy": 1.5, "V2-V3": None, "J2": 0.1, "J3": 0.0},
                        {"J2": 0.1, "J3": 0.0}, 3, {"name": "near", "sites": [0, 2], "spin_hole": 1.0},
                        perfect_J_meV=[2.0, 0.1, 0.0], absorbed=["V2-V3"])
    fit = VacancyFitStep.from_dict(d)
    assert [fit.source(c) for c in ("V2-V2_bulk", "V2-V3", "J2", "V3-V3")] == \
        ["fitted", "absorbed into E0", "perfect crystal (held)", "assumed = perfect J1"]
    fit.effective = True
    assert fit.source("next_to_vacancy") == "fitted (effective)"
