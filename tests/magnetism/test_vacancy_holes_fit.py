"""Exchange of the doped vacancy cell (issue 18 item 3): the D-optimal design with the holes held at a placement,
the configuration check (spins kept, holes stayed), the refusal when too few configurations remain, and the whole
``--fit`` mode of data/mc/vacancy_holes_dft.py on a fake engine (a known mixed-spin model, one unconverged SCF, one
configuration whose holes moved)."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from wannmag.magnetism.vacancy_holes import (HoleDesign, HoleError, HolePlacement, check_configuration,
                                             choose_hole_patterns, classify_bonds, design_row, fit_hole_records,
                                             hole_unknowns, HoleFit)

ROOT = Path(__file__).resolve().parents[2]
VPS3 = str(ROOT / "data/structures/VPS3_monolayer.cif")
NEEL = [1, -1, 1, -1, 1, -1, 1]  # the perfect lattice's Néel order on the 7 remaining sites (site 0 up)


@pytest.fixture(scope="module")
def cell():
    from wannmag.workflows.vacancy import make_vacancy_cell

    return make_vacancy_cell(VPS3)


@pytest.fixture(scope="module")
def places(cell):
    from wannmag.workflows.vacancy import hole_placements_of

    return {p.name: p for p in hole_placements_of(VPS3, cell)}


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("vacancy_holes_dft", ROOT / "data/mc/vacancy_holes_dft.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _energy(bonds, spins, pattern, J, E0=-197.7):
    """Direct sum (eV): E0 + Σ_bonds J S_i S_j σ_i σ_j / 1000, independent of design_row."""
    s = np.asarray(pattern, float) * spins
    return E0 + sum(J[b["cls"]] * s[b["i"]] * s[b["j"]] for b in bonds) / 1000.0


def test_design_per_placement(cell, places):
    near = set(cell.near_sites)
    # the three neighbours of the vacancy are not nearest neighbours of each other
    assert not [b for b in cell.bonds if b["shell"] == 1 and b["i"] in near and b["j"] in near]
    expect = {"near": ["V2-V2_bulk", "next_to_vacancy", "V2-V3"],
              "near_far": ["next_to_vacancy", "V2-V3"],              # every bulk bond touches the far hole
              "far": ["next_to_vacancy", "V2-V3", "V3-V3"]}           # the two far holes are bonded
    for name, unk in expect.items():
        hp = places[name]
        bonds = classify_bonds(cell.bonds, hp.sites, cell.near_sites)
        assert hole_unknowns(bonds) == unk
        d = choose_hole_patterns(bonds, hp, 1.5, cell.n_sites, start=NEEL)
        assert d.unknowns == unk and d.fixed == ["J2", "J3"]
        assert len(d.patterns) == len(unk) + 3 and d.dof == 2 and d.rank == len(unk) + 1
        assert d.patterns[0] == NEEL and len({tuple(p) for p in d.patterns}) == len(d.patterns)
        assert all(p[0] == 1 for p in d.patterns)
        # independent rank/condition of the chosen design
        A = np.array([design_row(bonds, p, hp.spins(cell.n_sites, 1.5), unk) for p in d.patterns])
        assert np.linalg.matrix_rank(A) == len(unk) + 1
        An = A / np.linalg.norm(A, axis=0)
        sv = np.linalg.svd(An, compute_uv=False)
        assert d.condition_number == pytest.approx(sv[0] / sv[-1], rel=1e-9) and d.condition_number < 10
        assert HoleDesign.from_dict(json.loads(json.dumps(d.as_dict()))).as_dict() == d.as_dict()
        # J2 and J3 fitted too: still determined by this cell
        d23 = choose_hole_patterns(bonds, hp, 1.5, cell.n_sites, unknowns=hole_unknowns(bonds, fit_j23=True),
                                   start=NEEL)
        assert d23.fixed == [] and d23.rank == len(unk) + 3
    with pytest.raises(HoleError, match="no hole site"):
        choose_hole_patterns(cell.bonds, HolePlacement("none", []), 1.5, cell.n_sites)
    hp = places["near"]
    bonds = classify_bonds(cell.bonds, hp.sites, cell.near_sites)
    with pytest.raises(HoleError, match="no bond of class V3-V3"):
        choose_hole_patterns(bonds, hp, 1.5, cell.n_sites, unknowns=["V2-V3", "V3-V3"])
    with pytest.raises(HoleError, match="residual degrees of freedom"):
        choose_hole_patterns(bonds, hp, 1.5, cell.n_sites, n_configs=4)


def test_check_configuration():
    hp = HolePlacement("near", [0, 2])
    p = np.array(NEEL)
    good = p * np.array([1.8, 2.5, 1.8, 2.5, 2.5, 2.5, 2.5])
    r = check_configuration(good, NEEL, hp)
    assert r["ok"] and r["holes"]["sites"] == [0, 2]
    moved = p * np.array([2.5, 2.5, 1.8, 2.5, 1.8, 2.5, 2.5])
    r = check_configuration(moved, NEEL, hp)
    assert not r["ok"] and not r["holes_stayed"] and "moved from sites [0, 2] to [2, 4]" in r["reason"]
    flipped = good.copy()
    flipped[5] *= -1
    r = check_configuration(flipped, NEEL, hp)
    assert not r["ok"] and not r["pattern_kept"] and "[5]" in r["reason"]
    smeared = p * 2.3
    r = check_configuration(smeared, NEEL, hp)
    assert not r["ok"] and "not localised" in r["reason"]


def test_fit_refused_when_too_few_remain(cell, places):
    hp = places["near_far"]
    bonds = classify_bonds(cell.bonds, hp.sites, cell.near_sites)
    unk = hole_unknowns(bonds)
    d = choose_hole_patterns(bonds, hp, 1.5, cell.n_sites, start=NEEL)
    spins = hp.spins(cell.n_sites, 1.5)
    J = {"next_to_vacancy": 20.0, "V2-V3": 11.0, "J2": 0.4, "J3": 0.6}
    recs = []
    for k, p in enumerate(d.patterns):
        m = list(np.array(p) * np.where(spins < 1.5, 1.8, 2.5))
        recs.append({"name": f"c{k}", "pattern": p, "converged": k != 1, "V_moments": m,
                     "energy_eV": None if k == 1 else _energy(bonds, spins, p, J)})
    fit, out, warn = fit_hole_records(bonds, hp, 1.5, recs, unk, fixed={"J2": 0.4, "J3": 0.6})
    assert fit.J["next_to_vacancy"] == pytest.approx(20.0, abs=1e-8) and fit.J["V2-V3"] == pytest.approx(11.0, abs=1e-8)
    assert [r["used"] for r in out] == [True, False, True, True, True] and len(warn) == 1 and "c1" in warn[0]
    recs[2]["converged"] = False
    with pytest.raises(HoleError, match="refused: 3 usable configuration.*4 needed") as err:
        fit_hole_records(bonds, hp, 1.5, recs, unk, fixed={"J2": 0.4, "J3": 0.6})
    assert "(excluded: c1: SCF not converged" in str(err.value) and "; c2: SCF not converged" in str(err.value)


def test_fit_mode_with_fake_engine(tmp_path, cell, places, script, capsys):
    from wannmag.workflows.dft import DFTError

    hp = places["near"]
    bonds = classify_bonds(cell.bonds, hp.sites, cell.near_sites)
    perfect = json.loads((ROOT / "data/mc/VPS3_fast_spin_model.json").read_text())["meta"]["J_meV"]
    J = {"V2-V2_bulk": 26.4, "next_to_vacancy": 21.0, "V2-V3": 12.5, "J2": perfect[1], "J3": perfect[2]}
    spins = hp.spins(cell.n_sites, 1.5)
    d = choose_hole_patterns(bonds, hp, 1.5, cell.n_sites, n_configs=8, start=NEEL)
    bad_scf, moved = d.patterns[3], d.patterns[5]
    calls = []

    def engine(conf, U, workdir, smearing, mixer, maxiter):
        p = [int(x) for x in conf.pattern]
        calls.append(p)
        assert U == 3.0 and smearing == 0.05 and mixer == "damped" and workdir.endswith("/U3_w0.05")
        assert list(conf.sublattice.spins) == list(spins)  # the holes start as S = 1 sites
        if p == bad_scf:
            raise DFTError(f"{workdir}/{conf.name}/gpaw.txt: SCF not converged in {maxiter} iterations")
        holes = [4, 6] if p == moved else hp.sites
        mag = np.array([1.8 if k in holes else 2.5 for k in range(cell.n_sites)])
        # the configuration whose holes moved lies 50 meV below the localised-hole model (what the fit reports)
        e = _energy(bonds, spins, p, J) - (0.050 if p == moved else 0.0)
        return {"energy_eV": e, "V_moments": (np.array(p) * mag).tolist(), "gap_eV": 0.0, "scf_iterations": 41}

    out = tmp_path / "holes.json"
    out.write_text(json.dumps({"TN_vs_x": {"dilution_only": {"0.05": [200.0, 5.0]}}, "other": 1}))
    cells = tmp_path / "cells.json"
    cells.write_text(json.dumps({"cells": [
        {"U_eV": 3.0, "placement": "near", "smearing_eV": 0.05, "mixer": "damped", "converged": True,
         "energy_eV": -197.71, "V_moments": [1.8, -2.5, 1.8, -2.5, 2.5, -2.5, 2.5], "gap_eV": 0.0,
         "holes_found": {"sites": [0, 2], "localised": True}},
        {"U_eV": 3.0, "placement": "far", "smearing_eV": 0.05, "mixer": "damped", "converged": False,
         "energy_eV": None, "reason": "SCF not converged"},
        {"U_eV": 2.0, "placement": "near", "converged": True, "energy_eV": -190.0}]}))
    args = ["--fit", "near", "--U", "3", "--n-configs", "8", "--out", str(out), "--cells-from", str(cells),
            "--work", str(tmp_path / "work")]
    assert script.main(args, engine=engine) == 0
    assert len(calls) == 8
    data = json.loads(out.read_text())
    assert data["TN_vs_x"] == {"dilution_only": {"0.05": [200.0, 5.0]}} and data["other"] == 1  # kept
    assert data["U_eV"] == 3.0 and data["placement"] == "near"
    for k in ("V2-V2_bulk", "next_to_vacancy", "V2-V3"):
        assert data["J_meV"][k] == pytest.approx(J[k], abs=1e-6)
    assert data["J_fixed_meV"] == {"J2": perfect[1], "J3": perfect[2]}
    assert data["residual_meV"]["dof"] == 2 and data["residual_meV"]["max_abs"] < 1e-6
    conf = {tuple(r["pattern"]): r for r in data["configurations"]}
    assert conf[tuple(bad_scf)]["converged"] is False and conf[tuple(bad_scf)]["energy_eV"] is None
    assert not conf[tuple(bad_scf)]["used"] and "SCF not converged" in conf[tuple(bad_scf)]["excluded_because"]
    assert conf[tuple(moved)]["converged"] and not conf[tuple(moved)]["used"]
    assert "holes moved from sites [0, 2] to [4, 6]" in conf[tuple(moved)]["excluded_because"]
    assert sum(r["used"] for r in data["configurations"]) == 6
    assert conf[tuple(moved)]["beyond_heisenberg_meV"] == pytest.approx(-50.0, abs=1e-6)
    assert list(data["beyond_heisenberg_meV"]["per_configuration"].values()) == [
        pytest.approx(-50.0, abs=1e-6)]  # only the converged, excluded one (the unconverged one has no energy)
    c = {(x["placement"]): x for x in data["cells"]}
    assert set(c) == {"near", "far"} and c["near"]["energy_eV"] == -197.71 and c["far"]["converged"] is False
    assert c["far"]["energy_eV"] is None
    err = capsys.readouterr().out
    assert "excluded from the fit" in err and "NOT converged" in err

    # resumed: nothing recomputed (converged and unconverged records read back); with the default 6 configurations
    # (the first 6 of the 8: greedy) only 4 usable remain for 4 unknowns -> refused, recorded, top level kept
    calls.clear()
    assert script.main(args[:4] + args[6:], engine=engine) == 1
    assert calls == []
    data2 = json.loads(out.read_text())
    assert data2["J_meV"] == data["J_meV"] and data2["TN_vs_x"] == data["TN_vs_x"]
    refused = [b for b in data2["fits"].values() if b["status"].startswith("fit refused")]
    assert len(refused) == 1 and "4 usable configuration(s) of 6" in refused[0]["status"]
    # --retry-unconverged runs the unconverged one again (and only it)
    script.main(args + ["--retry-unconverged"], engine=engine)
    assert calls == [bad_scf]
    # --keep-moved: the configuration whose holes moved enters; the result says it is effective, in words
    assert script.main(args + ["--keep-moved"], engine=engine) == 0
    eff = json.loads(out.read_text())
    assert eff["status"].startswith("fitted (effective: holes moved in ") and eff["fit_key"].endswith("/moved")
    assert "EFFECTIVE couplings (1 configuration(s) with moved holes used" in capsys.readouterr().out


def _writer(args):
    path, tag, n = args
    spec = importlib.util.spec_from_file_location("vhd", ROOT / "data/mc/vacancy_holes_dft.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for k in range(n):
        mod._merge_write(Path(path), {f"{tag}_{k}": k}, f"{tag}_{k}", {"k": k})


def test_concurrent_merge_writes_keep_every_key(tmp_path):
    import multiprocessing as mp

    path = tmp_path / "shared.json"
    path.write_text(json.dumps({"TN_vs_x": {"with_holes": {}}}))
    with mp.get_context("fork").Pool(2) as pool:
        pool.map(_writer, [(str(path), "a", 25), (str(path), "b", 25)])
    data = json.loads(path.read_text())
    assert "TN_vs_x" in data
    assert all(f"{t}_{k}" in data and f"{t}_{k}" in data["fits"] for t in "ab" for k in range(25))
    assert [p.name for p in tmp_path.iterdir()] == ["shared.json"]  # no lock or temporary file left


def test_fit_mode_split_between_two_instances(tmp_path, cell, places, script, capsys):
    hp = places["near_far"]
    bonds = classify_bonds(cell.bonds, hp.sites, cell.near_sites)
    J = {"next_to_vacancy": 19.0, "V2-V3": 10.0, "J2": 0.0, "J3": 0.0}
    spins = hp.spins(cell.n_sites, 1.5)
    perfect = json.loads((ROOT / "data/mc/VPS3_fast_spin_model.json").read_text())["meta"]["J_meV"]
    J.update({"J2": perfect[1], "J3": perfect[2]})
    calls = []

    def engine(conf, U, workdir, smearing, mixer, maxiter):
        p = [int(x) for x in conf.pattern]
        calls.append(p)
        mag = np.where(spins < 1.5, 1.8, 2.5)
        return {"energy_eV": _energy(bonds, spins, p, J), "V_moments": (np.array(p) * mag).tolist(), "gap_eV": 0.1}

    out = tmp_path / "holes.json"
    base = ["--fit", "near_far", "--U", "2", "--out", str(out), "--cells-from", str(tmp_path / "none.json"),
            "--work", str(tmp_path / "work")]
    assert script.main(base + ["--plan"], engine=engine) == 0 and calls == [] and not out.exists()
    assert "1. vac_udududu_h-near_far" in capsys.readouterr().out
    assert script.main(base + ["--configs", "1", "3"], engine=engine) == 0
    assert len(calls) == 2 and "J_meV" not in json.loads(out.read_text())
    assert "no fit yet" in capsys.readouterr().out
    # --available fits what is there: 2 configurations for E0 + 2 J is refused (too few), never a number
    assert script.main(base + ["--configs", "1", "--available"], engine=engine) == 1
    assert "fit refused" in capsys.readouterr().out and json.loads(out.read_text()).get("J_meV") is None
    assert script.main(base + ["--configs", "2", "4", "--available"], engine=engine) == 0
    assert len(calls) == 4
    part = json.loads(out.read_text())
    assert part["J_meV"]["V2-V3"] == pytest.approx(10.0, abs=1e-6) and len(part["configurations"]) == 4
    assert "not computed (fit of those available, --available): vac_" in part["J_notes"][-1]
    # --available alone starts no SCF (another instance may be running the missing ones in the same directories)
    assert script.main(base + ["--available"], engine=engine) == 0
    assert len(calls) == 4
    assert script.main(base + ["--configs", "5"], engine=engine) == 0
    assert len(calls) == 5
    data = json.loads(out.read_text())
    assert data["U_eV"] == 2.0 and data["J_meV"]["V2-V2_bulk"] is None and "no such bond" in data["J_notes"][0]
    # the crystal's J1 is known at U = 3 eV only: no ratio to it at U = 2 eV (it would mix in the change of U)
    ratios = [b["J_over_perfect_J1"] for b in data["fits"].values() if b.get("J_meV")]
    assert ratios and all(isinstance(r, str) and "not at U = 2 eV" in r for r in ratios)
    assert "perfect crystal's values at U = 3 eV, not at U = 2 eV" in data["J_notes"][1]
    assert data["J_meV"]["next_to_vacancy"] == pytest.approx(19.0, abs=1e-6)
    assert data["J_meV"]["V2-V3"] == pytest.approx(10.0, abs=1e-6)
    assert [r["name"] for r in data["configurations"]] == [r["name"] for r in data["fits"][data["fit_key"]]
                                                           ["configurations"]] and len(data["configurations"]) == 5
    assert script.main(base + ["--configs", "7"], engine=engine) == 2
    assert "--configs [7]: the fit has configurations 1..5" in capsys.readouterr().err


def test_fit_mode_fixmagmom_is_passed_on_and_kept_apart(tmp_path, cell, places, script):
    """--fixmagmom in the fit mode: every configuration runs with fixed-moment occupations in its own work directory,
    the fit block says so, and records of the free SCF are never reused for it (nor the other way round)."""
    hp = places["near"]
    bonds = classify_bonds(cell.bonds, hp.sites, cell.near_sites)
    spins = hp.spins(cell.n_sites, 1.5)
    perfect = json.loads((ROOT / "data/mc/VPS3_fast_spin_model.json").read_text())["meta"]["J_meV"]
    J = {"V2-V2_bulk": 26.0, "next_to_vacancy": 20.0, "V2-V3": 11.0, "J2": perfect[1], "J3": perfect[2]}
    seen = []

    def engine(conf, U, workdir, smearing, mixer, maxiter, fixmagmom=False):
        seen.append((fixmagmom, workdir))
        p = [int(x) for x in conf.pattern]
        mag = np.where(spins < 1.5, 1.8, 2.5)
        return {"energy_eV": _energy(bonds, spins, p, J) + (0.01 if fixmagmom else 0.0),
                "V_moments": (np.array(p) * mag).tolist(), "gap_eV": 0.0}

    out = tmp_path / "holes.json"
    base = ["--fit", "near", "--U", "3", "--out", str(out), "--cells-from", str(tmp_path / "none.json"),
            "--work", str(tmp_path / "work")]
    assert script.main(base + ["--fixmagmom"], engine=engine) == 0
    n = len(seen)
    assert n >= 6 and all(f and w.endswith("/U3_w0.05_fixm") for f, w in seen)
    data = json.loads(out.read_text())
    assert data["fit_key"].endswith("/fixm") and data["fits"][data["fit_key"]]["fixmagmom"] is True
    for k in ("V2-V2_bulk", "next_to_vacancy", "V2-V3"):
        assert data["J_meV"][k] == pytest.approx(J[k], abs=1e-6)  # a constant shift leaves J unchanged
    assert script.main(base, engine=engine) == 0  # the free SCF: its own runs, not the fixed-moment records
    assert len(seen) == 2 * n and not any(f for f, _ in seen[n:])
    assert all(w.endswith("/U3_w0.05") for _, w in seen[n:])
    assert script.main(base + ["--fixmagmom"], engine=engine) == 0 and len(seen) == 2 * n  # resumed: nothing re-run


def test_fixed_moment_constraint_warning(script):
    """Only an active constraint is flagged: spin channels that overlap (common gap < 0).  A large Fermi-level split
    with a positive common gap (the measured near cell: 0.70 eV split, common gap +0.33 eV) is a free insulator; a
    record from before the common gap was stored is named as unchecked; free and unconverged runs are skipped."""
    recs = [{"name": "near", "converged": True, "fermi_levels_eV": [-1.564, -0.868], "common_gap_eV": 0.334},
            {"name": "active", "converged": True, "fermi_levels_eV": [-1.0, -1.05], "common_gap_eV": -0.4},
            {"name": "old", "converged": True, "fermi_levels_eV": [-1.681, -0.716]},
            {"name": "free", "converged": True, "fermi_level_eV": -1.0},
            {"name": "unconv", "converged": False, "fermi_levels_eV": [0.0, 1.0], "common_gap_eV": -1.0}]
    w = script.constraint_warnings(recs, 0.1)
    assert len(w) == 2 and w[0].startswith("active:") and "0.40 eV" in w[0] and w[1].startswith("old:")
    assert "unchecked" in w[1]
    assert [x for x in script.constraint_warnings(recs, 0.5) if x.startswith("active")] == []


def test_absorb_constant_and_keep_moved(cell, places):
    """VPS3 near placement: the four configurations with the B sublattice antiparallel to the holes (the ones whose
    holes stay localised in DFT) cannot determine V2-V3 (its Σ S S σσ is the same in all four): absorbed into E0 with
    the other classes exact and one residual degree of freedom; configurations whose holes moved enter with
    keep_moved (effective couplings) and then determine V2-V3 too."""
    hp = places["near"]
    bonds = classify_bonds(cell.bonds, hp.sites, cell.near_sites)
    perfect = json.loads((ROOT / "data/mc/VPS3_fast_spin_model.json").read_text())["meta"]["J_meV"]
    J = {"V2-V2_bulk": 26.4, "next_to_vacancy": 21.0, "V2-V3": 12.5, "J2": perfect[1], "J3": perfect[2]}
    spins = hp.spins(cell.n_sites, 1.5)
    fixed = {"J2": perfect[1], "J3": perfect[2]}
    unknowns = ["V2-V2_bulk", "next_to_vacancy", "V2-V3"]

    def rec(name, p, holes_localised=True):
        mag = np.array([1.95 if (k in hp.sites and holes_localised) else 2.45 for k in range(cell.n_sites)])
        return {"name": name, "pattern": p, "converged": True, "energy_eV": _energy(bonds, spins, p, J),
                "V_moments": (np.array(p) * mag).tolist()}

    bdown = [[1, -1, 1, -1, s4, -1, s6] for s4 in (1, -1) for s6 in (1, -1)]
    recs = [rec(f"b{k}", p) for k, p in enumerate(bdown)]
    with pytest.raises(HoleError, match="refused"):  # V2-V3 counted as an unknown: 4 configurations are too few
        fit_hole_records(bonds, hp, 1.5, recs, unknowns, fixed=fixed)
    fit, ann, warns = fit_hole_records(bonds, hp, 1.5, recs, unknowns, fixed=fixed, absorb_constant=True)
    assert fit.absorbed == ["V2-V3"] and fit.J["V2-V3"] is None
    assert fit.J["V2-V2_bulk"] == pytest.approx(26.4, abs=1e-6) and fit.J["next_to_vacancy"] == pytest.approx(21.0, abs=1e-6)
    assert any("V2-V3: the same" in w for w in warns) and len(fit.residuals_meV) == 4
    assert HoleFit.from_dict(fit.as_dict()).absorbed == ["V2-V3"]
    # two FM-like configurations whose holes spread: excluded by default, used (effective) with keep_moved
    moved = [rec("fm", [1] * 7, holes_localised=False), rec("fm6", [1, 1, 1, 1, 1, 1, -1], holes_localised=False)]
    fit2, ann2, _ = fit_hole_records(bonds, hp, 1.5, recs + moved, unknowns, fixed=fixed, absorb_constant=True)
    assert fit2.J["V2-V3"] is None  # the moved ones excluded: the same fit as above
    assert fit2.absorbed == ["V2-V3"] and not any(r["used"] for r in ann2 if r["name"].startswith("fm"))
    fit3, ann3, warns3 = fit_hole_records(bonds, hp, 1.5, recs + moved, unknowns, fixed=fixed, keep_moved=True)
    assert all(r["used"] and r.get("holes_moved") for r in ann3 if r["name"].startswith("fm"))
    for c in unknowns:
        assert fit3.J[c] == pytest.approx(J[c], abs=1e-6)
    assert sum("effective couplings" in w for w in warns3) == 2


def test_placement_mode_is_the_package_record_and_placement_run(tmp_path, cell, places, script, monkeypatch):
    """The placement mode (no --fit) on a fake engine: one record per placement in data/mc/VPS3_vacancy_holes_dft.json's
    schema (here a temporary file), made by the package (neutral_scf_record, placement_run: where the holes went),
    an unconverged SCF recorded without an energy, a done placement not run again; the fit flow is the package's."""
    import wannmag.magnetism.vacancy_holes as vh
    from wannmag.workflows.dft import DFTError

    assert script.fit_cell is vh.fit_cell and script.fit_design is vh.fit_design  # no copy of the fit flow
    monkeypatch.setattr(script, "OUT", tmp_path / "cells.json")
    calls = []

    def engine(conf, U, workdir, smearing, mixer, maxiter, density_tol=None, fixmagmom=False):
        calls.append((conf.name, workdir, density_tol, fixmagmom))
        if conf.name.endswith("h-far"):
            raise DFTError(f"{workdir}/{conf.name}/gpaw.txt: GPAW calculation failed (KohnShamConvergenceError)")
        m0 = conf.atoms.get_initial_magnetic_moments()[conf.sublattice.indices]
        holes = [0, 2] if "_h-" not in conf.name else [k for k in range(len(m0)) if abs(m0[k]) < 2.5]
        mag = np.sign(m0) * np.array([1.9 if k in holes else 2.5 for k in range(len(m0))])
        return {"energy_eV": -197.7 + 0.01 * len(calls), "V_moments": mag.tolist(), "gap_eV": 0.02,
                "scf_iterations": 40}

    args = ["--U", "3", "--placements", "near", "far", "none", "--smearing", "0.1", "--fixmagmom", "--density",
            "1e-4", "--work", str(tmp_path / "work")]
    assert script.main(args, engine=engine) is None
    assert [c[0] for c in calls] == ["vac_udududu_h-near", "vac_udududu_h-far", "vac_udududu"]
    assert all(w.endswith("/U3_w0.1_d0.0001_fixm") and d == 1e-4 and f for _, w, d, f in calls)
    data = json.loads((tmp_path / "cells.json").read_text())
    c = {x["placement"]: x for x in data["cells"]}
    assert c["near"]["converged"] and c["near"]["hole_sites"] == places["near"].sites
    assert c["near"]["start_moments"] == [2.0, -3.0, 2.0, -3.0, 3.0, -3.0, 3.0]
    assert c["near"]["holes_found"]["sites"] == [0, 2] and c["near"]["holes_found"]["localised"]
    assert c["near"]["metal"] is True and c["near"]["energy_eV"] == pytest.approx(-197.69)
    assert "pattern" not in c["near"] and c["near"]["fixmagmom"] is True and c["near"]["density_tol"] == 1e-4
    assert c["far"]["converged"] is False and c["far"]["energy_eV"] is None and "KohnSham" in c["far"]["reason"]
    assert "holes_found" not in c["far"]
    assert c["none"]["hole_sites"] == [] and c["none"]["holes_found"]["sites"] == [0, 2]
    assert data["lowest"]["3"] == {"placement": "near", "energy_eV": pytest.approx(-197.69),
                                   "relative_meV": {"near": 0.0, "none": 20.0}}
    assert data["pattern"] == NEEL and data["settings"]["mixers"]["damped"] == {"beta": 0.02, "nmaxold": 8,
                                                                                "weight": 100.0}
    assert script.main(args, engine=engine) is None and len(calls) == 3  # every placement done: nothing re-run
