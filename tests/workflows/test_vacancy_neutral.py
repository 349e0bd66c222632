"""`wannmag run --vacancies ... --vacancy-charge neutral` (issue 18 item 5): the hole placements, the fit
configurations of the lowest usable one and the fit by bond class as cached, resumable steps, with a fake energy
engine (no DFT; tests/workflows/fake_vacancy_holes.py: classical energies of a known mixed-spin model from the
geometry of each configuration) and a synthetic VPS3 --from directory for the perfect crystal.

Convention: H = Σ_{i<j} S_i·J_ij·S_j, each bond once, S = 3/2 on V2+ and 1 on the hole (V3+) sites, J > 0 AF, meV;
energies eV per 39-atom cell.
"""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fake_vacancy_holes import HoleEngine, vps3_from_dir  # noqa: E402
from step_results import hole_fit_result, vacancy_dft_result  # noqa: E402
from test_vacancy import run_steps_for_vacancy_mc  # noqa: E402

from wannmag.magnetism.vacancy_holes import choose_hole_patterns, classify_bonds  # noqa: E402
from wannmag.workflows.engine import StepError  # noqa: E402
from wannmag.workflows.results import VacancyFitStep  # noqa: E402
from wannmag.workflows.vacancy import (hole_placements_of, make_vacancy_cell,  # noqa: E402
                                       vacancy_configuration)

REPO = Path(__file__).resolve().parents[2]
J123 = (26.4, 0.37, 0.6)  # perfect crystal J1, J2, J3 (meV), the --from directory's energies
J = {"V2-V2_bulk": 26.1, "next_to_vacancy": 21.0, "V2-V3": 12.5, "V3-V3": 8.0, "J2": J123[1], "J3": J123[2]}
NEEL = [1, -1, 1, -1, 1, -1, 1]


@pytest.fixture(scope="module")
def vps3(tmp_path_factory):
    return vps3_from_dir(tmp_path_factory.mktemp("vps3_from"), J123, REPO)


@pytest.fixture(scope="module")
def design(vps3):
    """Names of the near placement's 8 fit configurations as the step chooses them (library, not the step)."""
    cif = str(vps3 / "VPS3_monolayer.cif")
    cell = make_vacancy_cell(cif)
    places = {p.name: p for p in hole_placements_of(cif, cell)}
    hp = places["near"]
    bonds = classify_bonds(cell.bonds, hp.sites, cell.near_sites)
    d = choose_hole_patterns(bonds, hp, 1.5, cell.n_sites, n_configs=8, start=NEEL)
    return {"cif": cif, "cell": cell, "places": places,
            "names": [vacancy_configuration(cif, cell, p, holes=hp).name for p in d.patterns]}


def _kw(vps3, eng, out, **more):
    return dict(from_dir=vps3, out=out, vacancies=[0.1], vacancy_engine=eng, vacancy_configs=8,
                log=lambda m: None, **more)


def test_neutral_study_recovers_the_classes_excludes_and_resumes(vps3, design, tmp_path):
    from wannmag.workflows.run import build_workflow

    names = design["names"]
    assert names[0] == "vac_udududu_h-near"  # the placement run is the fit's first configuration
    bad_scf, moved, overlap = names[3], names[5], names[1]
    (tmp_path / "log").mkdir()
    eng = HoleEngine(design["cif"], J, tmp_path / "log", unconverged=[bad_scf], moved=[moved], overlap=[overlap],
                     crash_after=5)
    out = tmp_path / "run"
    with pytest.raises(StepError, match="simulated crash"):  # interrupted after 5 SCFs (2 placements + 3)
        build_workflow(**_kw(vps3, eng, out)).run(until="vacancy_fit")
    assert len(eng.calls()) == 5 and len(list(out.glob("vacancy_dft/neutral/*/*/record.json"))) == 5
    from wannmag.workflows.summary import step_progress

    assert step_progress(out, "vacancy_dft") == "5 SCF(s) of the neutral cell done"  # wannmag run --status
    eng.crash_after = None
    res = build_workflow(**_kw(vps3, eng, out)).run(until="vacancy_fit")
    calls = eng.calls()
    # every SCF ran once: 2 placements + 7 more configurations (the first is the near placement's own SCF)
    assert len(calls) == 9 and len(set(calls)) == 9 and set(calls) == set(names) | {"vac_udududu_h-far"}
    vd, vf = res["vacancy_dft"], res["vacancy_fit"]
    # placements: energies from the fake engine directly; near is the lower one and is fitted
    cell = design["cell"]
    e = {n: eng.energy_and_holes(vacancy_configuration(design["cif"], cell, NEEL, holes=design["places"][n]))[0]
         for n in ("near", "far")}
    assert e["near"] < e["far"]
    pl = {r["name"]: r for r in vd["placements"]}
    assert pl["near"]["energy_eV"] == pytest.approx(e["near"], abs=1e-9) and pl["near"]["usable"]
    assert pl["far"]["holes_found"]["sites"] == design["places"]["far"].sites and pl["far"]["check"]["ok"]
    assert vd["choice"]["placement"] == "near" and vd["choice"]["relative_meV"]["near"] == 0.0
    assert vd["choice"]["relative_meV"]["far"] == pytest.approx(1000 * (e["far"] - e["near"]), abs=1e-3)
    assert vd["holes_per_vacancy"] == 2 and vd["spin_hole"] == 1.0 and vd["start_pattern"] == NEEL
    assert [r["name"] for r in vd["records"]] == names
    # the fit recovers the classes the engine was built with; J2, J3 held at the mapping's
    for c in ("V2-V2_bulk", "next_to_vacancy", "V2-V3"):
        assert vf["J_meV"][c] == pytest.approx(J[c], abs=1e-6)
        assert vf["J_fitted_meV"][c] == vf["J_meV"][c]
    assert vf["fixed_meV"] == pytest.approx({"J2": J123[1], "J3": J123[2]}, abs=1e-6)
    assert vf["dof"] == 2 and vf["residual_rms_meV"] < 1e-6 and vf["mc_placement"] == "near"
    ex = {x["name"]: x["reason"] for x in vf["excluded"]}
    assert set(ex) == {bad_scf, moved}
    assert ex[bad_scf].startswith("SCF not converged") and "KohnShamConvergenceError" in ex[bad_scf]
    assert "holes moved from sites [0, 2] to [5, 6]" in ex[moved]
    assert sum(r["used"] for r in vf["configurations"]) == 6
    assert [w for w in vd["constraint_warnings"] if w.startswith(overlap)] and len(vd["constraint_warnings"]) == 1
    assert "overlapping by 0.40 eV" in vd["constraint_warnings"][0]
    # re-run of both steps: every SCF read back (the unconverged one too), the same fit
    res2 = build_workflow(**_kw(vps3, eng, out)).run(until="vacancy_fit", force=("vacancy_dft",))
    assert len(eng.calls()) == 9 and res2["vacancy_fit"]["J_meV"] == vf["J_meV"]
    # the Monte Carlo step's with-holes series gets its HoleSpec from this fit
    from wannmag.magnetism.montecarlo.holes import HoleSpec
    from wannmag.workflows.engine import Context
    from wannmag.workflows.vacancy import _hole_spec

    spec, notes = _hole_spec(Context(out, {"vacancy": {"charge": "neutral"}}, {}, log=None),
                             VacancyFitStep.from_dict(vf))
    assert spec == HoleSpec(J={"V2-V2_bulk": vf["J_meV"]["V2-V2_bulk"], "next_to_vacancy":
                               vf["J_meV"]["next_to_vacancy"], "V2-V3": vf["J_meV"]["V2-V3"],
                               "V3-V3": vf["J_meV"]["V2-V3"]}, placement="near", per_vacancy=2, spin_hole=1.0)
    assert any("V3-V3 not in the fit" in n for n in notes)
    _check_report(out, res)


def _check_report(out, res):
    from wannmag.workflows.engine import Context
    from wannmag.workflows.vacancy import report_lines

    fig = out / "vacancy" / "tn_vs_x.png"
    vm = {"fractions": [0.0, 0.1], "tn_K": [60.0, None], "tn_error_K": [1.0, None],
          "methods": ["Binder crossing 6x6x1/9x9x1", "not bracketed"], "realisations": 2, "sizes": [6, 9],
          "figure": str(fig), "warnings": []}
    results = {**res, "vacancy_mc": vm}
    md = "\n".join(report_lines(Context(out, {}, results, log=None)))
    vd, vf = res["vacancy_dft"], res["vacancy_fit"]
    assert "| placement | holes placed on | E − E_min (meV) | V moments (μ_B) | holes found on | gap (eV) | " \
           "common gap (eV) | converged |" in md
    far = vd["choice"]["relative_meV"]["far"]
    assert "| near | 0, 2 | 0.0 | +1.85, -2.47, +1.85, -2.47, +2.47, -2.47, +2.47 | 0, 2 (localised); stayed | " \
           "0.300 | +0.300 | yes (31 iterations) |" in md
    assert f"| far | {', '.join(map(str, vd['placements'][1]['sites']))} | {far:.1f} |" in md
    assert "Fitted placement: **near**" in md
    assert "| class | bonds in the cell | J (meV) | ± (meV) | source | perfect crystal (meV) |" in md
    assert f"| V2-V2_bulk | 3 | {vf['J_meV']['V2-V2_bulk']:+.3f} |" in md and "| J2 | 18 | +0.370 | " in md
    assert "| perfect crystal (held) |" in md
    assert "| configuration | E (eV/cell) | V moments (μ_B) | used | residual (meV) | excluded because |" in md
    rows = [ln for ln in md.splitlines() if ln.startswith("| vac_")]
    assert len(rows) == 8 and sum("| no |" in r for r in rows) == 2
    assert any("| no |" in r and "holes moved from sites [0, 2] to [5, 6]" in r for r in rows)
    assert "Warning: " + vd["constraint_warnings"][0] in md
    assert "## Vacancies" in md and "| 0.1 | not bracketed |" in md


def test_far_placement_fitted_when_lowest_and_none_as_reference(vps3, design, tmp_path):
    from wannmag.workflows.run import build_workflow

    far = tuple(design["places"]["far"].sites)
    (tmp_path / "log").mkdir()
    eng = HoleEngine(design["cif"], J, tmp_path / "log", placement_bonus={far: -0.3})
    res = build_workflow(**{**_kw(vps3, eng, tmp_path / "run", vacancy_placements=["none", "near", "far"]),
                            "vacancy_configs": None}).run(until="vacancy_fit")
    vd, vf = res["vacancy_dft"], res["vacancy_fit"]
    assert [r["name"] for r in vd["placements"]] == ["none", "near", "far"]
    none = vd["placements"][0]
    assert none["sites"] == [] and none["check"] is None and none["holes_found"]["sites"] == [0, 2]
    assert vd["choice"]["placement"] == "far" and vd["choice"]["relative_meV"]["far"] == 0.0
    # far: no bulk-like V2-V2 bond in the 2x2 cell: fitted next_to_vacancy, V2-V3, V3-V3; V2-V2_bulk = crystal's J1
    for c in ("next_to_vacancy", "V2-V3", "V3-V3"):
        assert vf["J_meV"][c] == pytest.approx(J[c], abs=1e-6)
    assert vf["assumed_meV"] == {"V2-V2_bulk": pytest.approx(J123[0], abs=1e-6)}
    assert vf["mc_placement"] == "random" and any("at random" in n for n in vf["notes"])
    assert len(design["names"]) == 8 and len(vd["records"]) == 6  # default: unknowns + 3
    assert len(eng.calls()) == 3 + 5


def test_configurations_on_a_dask_local_cluster_with_two_workers(vps3, design, tmp_path):
    pytest.importorskip("dask.distributed")
    from wannmag.workflows.run import build_workflow

    (tmp_path / "log").mkdir()
    # both placement SCFs must be running at the same time (a rendezvous in the engine; it fails when serial)
    eng = HoleEngine(design["cif"], J, tmp_path / "log", meet=["vac_udududu_h-near", "vac_udududu_h-far"])
    res = build_workflow(**_kw(vps3, eng, tmp_path / "run", dask="local")).run(until="vacancy_fit")
    vf = res["vacancy_fit"]
    for c in ("V2-V2_bulk", "next_to_vacancy", "V2-V3"):
        assert vf["J_meV"][c] == pytest.approx(J[c], abs=1e-6)
    assert len(eng.calls()) == 9 and not vf["excluded"]
    pids = {p.read_text() for p in (tmp_path / "log" / "meet").iterdir()}
    assert len(pids) == 2  # two worker processes


def test_bad_vacancy_placements_are_one_error_line(tmp_path, capsys):
    from wannmag.cli import main

    cif = str(REPO / "data" / "structures" / "VPS3_monolayer.cif")
    base = ["run", cif, "--out", str(tmp_path / "run")]
    cases = [(["--vacancies", "0.1", "--vacancy-placements", "near", "nearby"],
              "--vacancy-placements: vacancy placement 'nearby' is not one of near, far, near_far, none"),
             (["--vacancies", "0.1", "--vacancy-placements", "none"], "need one with holes"),
             (["--vacancies", "0.1", "--vacancy-placements", "near", "near"], "repeat a name"),
             (["--vacancies", "0.1", "--vacancy-charge", "ionic", "--vacancy-placements", "near"],
              "applies to the neutral cell"),
             (["--vacancy-placements", "near"], "--vacancy-placements has no effect without --vacancies")]
    for args, msg in cases:
        assert main(base + args) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("wannmag: error: ") and msg in err[0], err
    assert not (tmp_path / "run" / "steps").exists()


def test_step_parameters_ionic_unchanged_neutral_keyed(tmp_path):
    from wannmag.workflows.run import WorkflowError, build_workflow
    from wannmag.workflows.vacancy import NEUTRAL_DFT

    cif = REPO / "data" / "structures" / "VPS3_monolayer.cif"
    ionic = {s.name: s for s in build_workflow(cif, out=tmp_path, vacancies=[0.1], vacancy_charge="ionic",
                                               log=lambda m: None).steps}
    assert ionic["vacancy_dft"].params["charge"] == "ionic" and "neutral" not in ionic["vacancy_dft"].params
    assert ionic["vacancy_fit"].params == {"fit": "J1"}
    neutral = {s.name: s for s in build_workflow(cif, out=tmp_path, vacancies=[0.1], log=lambda m: None,
                                                 vacancy_placements=["far", "near_far"],
                                                 vacancy_dft_settings={"smearing": 0.05}).steps}
    n = neutral["vacancy_dft"].params["neutral"]
    assert n["placements"] == ["far", "near_far"] and n["settings"] == {**NEUTRAL_DFT, "smearing": 0.05}
    assert NEUTRAL_DFT == {"smearing": 0.1, "mixer": {"beta": 0.02, "nmaxold": 8, "weight": 100.0},
                           "fixmagmom": True, "density_tol": 1e-4, "maxiter": 200}
    with pytest.raises(WorkflowError, match="neutral cell only"):
        build_workflow(cif, out=tmp_path, vacancies=[0.1], vacancy_charge="ionic", vacancy_placements=["near"])
    from wannmag.workflows.vacancy import VacancyError

    with pytest.raises(VacancyError, match="unknown neutral-cell DFT setting"):
        build_workflow(cif, out=tmp_path, vacancies=[0.1], vacancy_dft_settings={"smear": 0.1})


def test_gpaw_engine_of_the_neutral_cell_passes_the_settings_to_run_dft(monkeypatch, design, tmp_path):
    import wannmag.workflows.dft as dft
    from wannmag.workflows.vacancy import NEUTRAL_DFT, neutral_gpaw_engine

    seen = {}

    class Rec:
        def as_dict(self):
            return {"energy": -197.68}

    def fake_run_dft(structure, conf, **kw):
        seen.update(kw, conf=conf)
        return Rec()

    monkeypatch.setattr(dft, "run_dft", fake_run_dft)
    conf = vacancy_configuration(design["cif"], design["cell"], NEEL, holes=design["places"]["near"])
    assert neutral_gpaw_engine(design["cif"], conf, "fast", 3.0, str(tmp_path), **NEUTRAL_DFT) == {"energy": -197.68}
    assert seen["conf"] is conf and seen["name"] == conf.name and seen["workdir"] == str(tmp_path)
    assert {k: seen[k] for k in NEUTRAL_DFT} == NEUTRAL_DFT and seen["preset"] == "fast" and seen["U"] == 3.0
    m = conf.atoms.get_initial_magnetic_moments()[conf.sublattice.indices]
    assert np.allclose(m, [2, -3, 2, -3, 3, -3, 3])  # holes start at 2 μB, V2+ at 3 μB


def test_neutral_cell_read_from_a_directory(vps3, design, tmp_path):
    """--from DIR without an engine: the placement SCFs and then the fit configurations are read from
    DIR/vacancy/<configuration>/ (VASP outputs); each missing set is one error naming it, with its POSCARs written."""
    import shutil

    from make_synthetic import outcar, vasprun

    from wannmag.workflows.run import build_workflow

    d = tmp_path / "from"
    shutil.copytree(vps3, d)
    (tmp_path / "log").mkdir()
    eng = HoleEngine(design["cif"], J, tmp_path / "log")
    out = tmp_path / "run"
    kw = dict(from_dir=d, out=out, vacancies=[0.1], log=lambda m: None)

    def write(msg):
        names = msg.split("fit configurations of placement near " if "fit configurations" in msg else
                          "hole placements ")[1].split(" (their structures")[0].split(", ")
        for name in names:
            conf = _conf(design, name)
            r = eng(None, conf, "fast", 3.0, "", **_settings())
            mom = conf.atoms.get_initial_magnetic_moments() * 0.0
            mom[conf.sublattice.indices] = r["site_moments"]
            (d / "vacancy" / name).mkdir(parents=True)
            vasprun(conf.atoms, r["energy"], d / "vacancy" / name / "vasprun.xml")
            outcar(conf.atoms, r["energy"], mom, d / "vacancy" / name / "OUTCAR")
            assert (out / "vacancy_dft" / "structures" / f"{name}.vasp").exists()
        return names

    with pytest.raises(StepError) as e1:
        build_workflow(**kw).run(until="vacancy_fit")
    assert write(str(e1.value)) == ["vac_udududu_h-near", "vac_udududu_h-far"]
    with pytest.raises(StepError) as e2:
        build_workflow(**kw).run(until="vacancy_fit")
    assert len(write(str(e2.value))) == 5  # the default unknowns + 3 = 6, the first read already
    res = build_workflow(**kw).run(until="vacancy_fit")
    assert res["vacancy_dft"]["engine"] == "from-dir"
    for c in ("V2-V2_bulk", "next_to_vacancy", "V2-V3"):
        assert res["vacancy_fit"]["J_meV"][c] == pytest.approx(J[c], abs=1e-6)


def _settings():
    from wannmag.workflows.vacancy import NEUTRAL_DFT

    return dict(NEUTRAL_DFT)


def _conf(design, name):
    """The configuration of a name vac_<u/d pattern>_h-<placement>."""
    pat, place = name[4:].split("_h-")
    return vacancy_configuration(design["cif"], design["cell"], [1 if c == "u" else -1 for c in pat],
                                 holes=design["places"][place])


def test_fit_options_refuse_absorb_keep_moved_and_rerun_only_the_fit(vps3, design, tmp_path):
    """The real VPS3 U = 3 eV situation on fake-engine data: of the 8 configurations of the near placement the 2nd,
    3rd and 5th keep their spins but their holes move, the 6th does not converge; the 4 left keep the holes
    antiparallel to all their neighbours, so V2-V3 has the same sum in all of them.  Without an option the fit is
    refused (naming every excluded configuration and the options that would fit); --vacancy-absorb-constant fits
    V2-V2_bulk and next_to_vacancy with V2-V3 absorbed into E0 (named, no with-holes Monte Carlo); with
    --vacancy-keep-moved the moved ones enter and the result is labelled EFFECTIVE.  Changing the option re-runs the
    fit only: no SCF, the vacancy_dft result untouched."""
    from wannmag.workflows.engine import Context
    from wannmag.workflows.run import build_workflow
    from wannmag.workflows.vacancy import _hole_spec

    names = design["names"]
    moved, bad = [names[1], names[2], names[4]], names[5]
    assert moved == ["vac_uuuuuud_h-near", "vac_uuuuduu_h-near", "vac_uuuuuuu_h-near"]  # as in the DFT data
    (tmp_path / "log").mkdir()
    eng = HoleEngine(design["cif"], J, tmp_path / "log", moved=moved, unconverged=[bad])
    out = tmp_path / "run"
    with pytest.raises(StepError) as err:
        build_workflow(**_kw(vps3, eng, out)).run(until="vacancy_fit")
    msg = str(err.value)
    assert "fit with holes (near) refused: 4 usable configuration(s) of 8, 5 needed" in msg
    for n in moved + [bad]:
        assert f"{n}: " in msg  # every excluded configuration named with its reason
    assert f"{bad}: SCF not converged" in msg and "holes not localised" not in msg  # the fake's holes move cleanly
    assert "holes moved from sites [0, 2] to" in msg
    assert "--vacancy-absorb-constant would fit" in msg and "--vacancy-keep-moved would fit" in msg
    assert len(eng.calls()) == 9
    dft_json = out / "steps" / "vacancy_dft.json"
    t_dft = dft_json.stat().st_mtime_ns

    # absorbed constant: V2-V3 into E0, the other classes exact from the 4 localised configurations
    vf = build_workflow(**_kw(vps3, eng, out, vacancy_absorb_constant=True)).run(until="vacancy_fit")["vacancy_fit"]
    assert len(eng.calls()) == 9 and dft_json.stat().st_mtime_ns == t_dft  # no SCF, vacancy_dft read back
    assert vf["absorbed"] == ["V2-V3"] and vf["J_meV"]["V2-V3"] is None and vf["J_fitted_meV"]["V2-V3"] is None
    for c in ("V2-V2_bulk", "next_to_vacancy"):
        assert vf["J_meV"][c] == pytest.approx(J[c], abs=1e-6)
    assert vf["dof"] == 1 and vf["residual_rms_meV"] < 1e-6 and vf["status"] == "fitted" and not vf["effective"]
    assert [r["name"] for r in vf["configurations"] if r["used"]] == [names[k] for k in (0, 3, 6, 7)]
    assert vf["options"] == {"keep_moved": False, "absorb_constant": True, "min_dof": 1}
    assert any(n.startswith("V2-V3: not determined") and "absorbed into E0" in n for n in vf["notes"])
    assert any("no with-holes Monte Carlo series, dilution only" in n for n in vf["notes"])
    assert vf["beyond_heisenberg_meV"] == {}  # E0 holds V2-V3's constant: no absolute prediction elsewhere
    spec, notes = _hole_spec(Context(out, {"vacancy": {"charge": "neutral"}}, {}, log=None),
                             VacancyFitStep.from_dict(vf))
    assert spec is None and notes == ["with holes: not run: V2-V3 not determined by the fit (absorbed into E0); "
                                      "dilution only"]
    md = _report(out, vf)
    assert "| V2-V3 | 4 |  |  | absorbed into E0 | +26.400 |" in md
    assert "Which fit: fixed-hole Heisenberg" in md and "Absorbed into E0" in md and ": V2-V3." in md
    assert "Fit options: --vacancy-absorb-constant (status: fitted)." in md
    fit_json = out / "steps" / "vacancy_fit.json"
    fp_absorb = _fingerprint(fit_json)

    # keep_moved: the moved configurations used, exact J (the fake's energies are those of the placed holes),
    # the stored status and the report say EFFECTIVE
    vf = build_workflow(**_kw(vps3, eng, out, vacancy_keep_moved=True)).run(until="vacancy_fit")["vacancy_fit"]
    assert len(eng.calls()) == 9 and dft_json.stat().st_mtime_ns == t_dft
    assert _fingerprint(fit_json) != fp_absorb
    assert vf["status"] == f"fitted (effective: holes moved in {', '.join(moved)})" and vf["effective"]
    assert vf["moved"] == moved and vf["absorbed"] == [] and vf["dof"] == 3
    for c in ("V2-V2_bulk", "next_to_vacancy", "V2-V3"):
        assert vf["J_meV"][c] == pytest.approx(J[c], abs=1e-6)
    assert vf["kind"].startswith("EFFECTIVE couplings (3 configuration(s) with moved holes used")
    assert vf["table"].splitlines()[1] == vf["kind"]
    assert ("effective couplings: configurations whose holes left the placed sites are used (--vacancy-keep-moved): "
            + ", ".join(moved)) in vf["notes"]
    md = _report(out, vf)
    assert "Which fit: **EFFECTIVE couplings** — 3 configuration(s) whose holes left the placed sites are used" in md
    assert "| V2-V3 | 4 | +12.500 |" in md and "| fitted (effective) |" in md
    assert f"Fit options: --vacancy-keep-moved (status: fitted (effective: holes moved in {moved[0]}," in md
    t_fit = fit_json.stat().st_mtime_ns
    build_workflow(**_kw(vps3, eng, out, vacancy_keep_moved=True)).run(until="vacancy_fit")
    assert fit_json.stat().st_mtime_ns == t_fit and len(eng.calls()) == 9  # the same options: nothing re-run


def _fingerprint(path):
    return json.loads(path.read_text())["_fingerprint"]


def _report(out, vf):
    from wannmag.workflows.engine import Context
    from wannmag.workflows.vacancy import report_lines

    vd = json.loads((out / "steps" / "vacancy_dft.json").read_text())
    vm = {"fractions": [0.0, 0.1], "tn_K": [60.0, None], "tn_error_K": [1.0, None],
          "methods": ["Binder crossing 6x6x1/9x9x1", "not bracketed"], "realisations": 2, "sizes": [6, 9],
          "figure": str(out / "vacancy" / "tn_vs_x.png"), "warnings": []}
    return "\n".join(report_lines(Context(out, {}, {"vacancy_dft": vd, "vacancy_fit": vf, "vacancy_mc": vm},
                                          log=None)))


def test_fit_options_on_the_command_line(tmp_path, capsys, monkeypatch):
    """--vacancy-keep-moved, --vacancy-absorb-constant, --vacancy-min-dof and the SCF settings of the neutral cell
    reach build_workflow; without --vacancies or with an ionic cell they are one error line; bad numbers too."""
    import wannmag.workflows.run as wr
    from wannmag.cli import main
    from wannmag.workflows.vacancy import NEUTRAL_MIXERS

    cif = str(REPO / "data" / "structures" / "VPS3_monolayer.cif")
    base = ["run", cif, "--out", str(tmp_path / "run")]
    seen = {}

    class Fake:
        def status(self):
            return []

    def fake_build(*a, **kw):
        seen.clear()
        seen.update(kw)
        return Fake()

    monkeypatch.setattr(wr, "build_workflow", fake_build)
    assert main(base + ["--vacancies", "0.1", "--status"]) == 0
    assert seen["vacancy_keep_moved"] is False and seen["vacancy_absorb_constant"] is False
    assert seen["vacancy_min_dof"] == 1 and seen["vacancy_dft_settings"] is None
    assert main(base + ["--vacancies", "0.1", "--vacancy-keep-moved", "--vacancy-absorb-constant",
                        "--vacancy-min-dof", "2", "--vacancy-smearing", "0.05", "--vacancy-mixer", "dif",
                        "--vacancy-density", "2e-4", "--vacancy-maxiter", "300", "--no-vacancy-fixmagmom",
                        "--status"]) == 0
    assert seen["vacancy_keep_moved"] is True and seen["vacancy_absorb_constant"] is True
    assert seen["vacancy_min_dof"] == 2
    assert seen["vacancy_dft_settings"] == {"smearing": 0.05, "mixer": NEUTRAL_MIXERS["dif"], "density_tol": 2e-4,
                                            "maxiter": 300, "fixmagmom": False}
    capsys.readouterr()
    cases = [(["--vacancy-keep-moved"], "--vacancy-keep-moved has no effect without --vacancies"),
             (["--vacancies", "0.1", "--vacancy-charge", "ionic", "--vacancy-absorb-constant"],
              "--vacancy-absorb-constant applies to the neutral cell"),
             (["--vacancies", "0.1", "--vacancy-charge", "ionic", "--vacancy-mixer", "dif"],
              "--vacancy-mixer applies to the neutral cell"),
             (["--vacancies", "0.1", "--vacancy-smearing", "0"], "--vacancy-smearing (eV) must be"),
             (["--vacancies", "0.1", "--vacancy-min-dof", "-1"], "--vacancy-min-dof must be")]
    for args, msg in cases:
        assert main(base + args) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("wannmag: error: ") and msg in err[0], err


def test_fit_options_checked_and_keyed_only_when_not_default(tmp_path):
    """The fit options enter vacancy_fit's parameters only when they differ from the defaults (a run with the
    defaults keeps its cached fit), never vacancy_dft's; bad values and the ionic cell are refused."""
    from wannmag.workflows.run import WorkflowError, build_workflow
    from wannmag.workflows.vacancy import VacancyError

    cif = REPO / "data" / "structures" / "VPS3_monolayer.cif"

    def steps(**kw):
        return {s.name: s for s in build_workflow(cif, out=tmp_path, vacancies=[0.1], log=lambda m: None,
                                                  **kw).steps}

    plain, moved = steps(), steps(vacancy_keep_moved=True, vacancy_min_dof=2)
    assert plain["vacancy_dft"].params == moved["vacancy_dft"].params
    assert set(moved["vacancy_fit"].params) - set(plain["vacancy_fit"].params) == {"keep_moved", "min_dof"}
    assert moved["vacancy_fit"].params["keep_moved"] is True and moved["vacancy_fit"].params["min_dof"] == 2
    assert "keep_moved" not in plain["vacancy_fit"].params and "absorb_constant" not in plain["vacancy_fit"].params
    with pytest.raises(VacancyError, match="min_dof must be an integer >= 0"):
        steps(vacancy_min_dof=-1)
    with pytest.raises(VacancyError, match="keep_moved must be true or false"):
        steps(vacancy_keep_moved="yes")
    with pytest.raises(WorkflowError, match="neutral cell only"):
        build_workflow(cif, out=tmp_path, vacancies=[0.1], vacancy_charge="ionic", vacancy_absorb_constant=True)


def test_vacancy_mc_step_runs_dilution_only_when_the_fit_absorbed_v2_v3(tmp_path):
    """A neutral fit with V2-V3 absorbed into E0 (--vacancy-absorb-constant) cannot give the holes' lattice its
    V2-V3 bonds: the vacancy_mc step runs the dilution-only series (every J of the crystal; identical to a direct
    dilution_scan), no with-holes series, and says why in the result and the report."""
    from wannmag.magnetism import SpinModel
    from wannmag.magnetism.montecarlo import MCSettings
    from wannmag.magnetism.montecarlo.dilution import dilution_scan
    from wannmag.magnetism.spinmodel import MEV_PER_K
    from wannmag.structures import find_magnetic_sites, neighbour_shells
    from wannmag.workflows.engine import Context
    from wannmag.workflows.vacancy import report_lines, step_vacancy_mc

    sub = find_magnetic_sites(str(REPO / "data" / "structures" / "VPS3_monolayer.cif"))
    model = SpinModel.from_sublattice(sub)
    for Jn, sh in zip((2.0, 0.1, 0.0), neighbour_shells(sub, 3)):
        for b in sh.bonds:
            model.add_bond(b.i, b.j, b.R, Jn)
    model.save(tmp_path / "model.json")
    fit = hole_fit_result(REPO / "data" / "structures" / "VPS3_monolayer.cif",
                          {"V2-V2_bulk": 2.0, "next_to_vacancy": 1.5, "V2-V3": None, "J2": 0.1, "J3": 0.0},
                          {"J2": 0.1, "J3": 0.0}, 3, {"name": "near", "sites": [0, 2], "spin_hole": 1.0},
                          perfect_J_meV=[2.0, 0.1, 0.0], absorbed=["V2-V3"])
    params = {"vacancy": {"fractions": [0.1], "charge": "neutral"}, "mc_sizes": [4], "mc_sweeps": 200,
              "mc_therm": 50, "mc_replicas": 4, "seed": 3, "vac_realisations": 2, "mc_refine": False, "workers": 1}
    results = {**run_steps_for_vacancy_mc(tmp_path / "model.json", "metropolis", 30.0, 1.0), "vacancy_fit": fit,
               "vacancy_dft": vacancy_dft_result(REPO / "data" / "structures" / "VPS3_monolayer.cif")}
    ctx = Context(tmp_path / "run", params, results, log=lambda m: None)
    step = step_vacancy_mc(ctx)
    vm = step.as_dict()
    assert step.with_holes is None and step.series.tn_K == vm["tn_K"]
    assert json.dumps(type(step).from_dict(json.loads(json.dumps(vm))).as_dict()) == json.dumps(vm)
    assert "with_holes" not in vm and vm["J1_vac_meV"] is None
    assert vm["hole_notes"] == ["with holes: not run: V2-V3 not determined by the fit (absorbed into E0); "
                                "dilution only"]
    t_mf = 1.5 ** 2 * sum(abs(b.J_iso) for b in model.bonds) * 2 / model.n_sites / 3 / MEV_PER_K
    st = MCSettings(tmin=0.03 * t_mf, tmax=1.1 * t_mf, n_replicas=4, n_sweeps=200, n_therm=50, seed=3,
                    checkpoint_every=1000, algorithm="metropolis")
    plain = dilution_scan(model, [0.0, 0.1], [4], st, realisations=2, warn=False)
    saved = json.loads((tmp_path / "run" / "vacancy" / "vacancy_study.json").read_text())
    assert saved["dilution"]["averaged_curves"][1]["4x4x1"]["energy"] == \
        [plain.curves[1]["4x4x1"]["energy"][0].tolist(), plain.curves[1]["4x4x1"]["energy"][1].tolist()]
    results["vacancy_mc"] = vm
    md = "\n".join(report_lines(ctx))
    assert "Note: with holes: not run: V2-V3 not determined by the fit (absorbed into E0); dilution only." in md
    assert "With holes:" not in md
