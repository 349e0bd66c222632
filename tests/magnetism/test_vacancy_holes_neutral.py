"""The neutral vacancy cell's physics in wannmag.magnetism.vacancy_holes (issue 18 item 5): holes per vacancy, the
placement runs and the choice of the placement to fit, the fixed-moment constraint warning (moved here from
data/mc/vacancy_holes_dft.py: the same answers as the script's copy), the classes and hole placement of the diluted
lattice.  Moments μ_B, energies eV per cell, J meV (J > 0 AF)."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from wannmag.magnetism.vacancy_holes import (HoleError, HolePlacement, PlacementChoice, PlacementRun,
                                             choose_placement, constraint_warnings, lattice_classes,
                                             lattice_placement, placement_run, vacancy_holes_of)

ROOT = Path(__file__).resolve().parents[2]
NEEL = [1, -1, 1, -1, 1, -1, 1]
NEAR = HolePlacement("near", [0, 2])
FAR = HolePlacement("far", [4, 6])


def _moments(holes, pattern=NEEL):
    return (np.array(pattern) * np.where(np.isin(np.arange(7), holes), 1.9, 2.45)).tolist()


def _rec(name, e, holes, converged=True, **kw):
    return {"name": name, "converged": converged, "energy_eV": e if converged else None,
            "V_moments": _moments(holes) if converged else None, "reason": None if converged else "SCF stopped",
            **kw}


def test_holes_per_vacancy():
    assert vacancy_holes_of(2, 1.5) == (2, 1.0)      # V2+ d3 -> two V3+ d2
    assert vacancy_holes_of(3.0, 1.5) == (3, 1.0)    # Cr3+
    for q in (0, -2, 1.5, float("nan")):
        with pytest.raises(HoleError, match="positive integer"):
            vacancy_holes_of(q, 1.5)
    with pytest.raises(HoleError, match="leaves no moment"):
        vacancy_holes_of(1, 0.5)


def test_choose_the_lowest_usable_placement():
    runs = [placement_run("near", NEAR, NEEL, _rec("vac_n", -197.68, [0, 2], scf_iterations=31), 1.5, 1.0, 2),
            placement_run("far", FAR, NEEL, _rec("vac_f", -197.32, [4, 6]), 1.5, 1.0, 2),
            placement_run("none", None, NEEL, _rec("vac_0", -197.73, [0, 2]), 1.5, 1.0, 2),
            placement_run("near_far", HolePlacement("near_far", [0, 5]), NEEL,
                          _rec("vac_nf", None, [], converged=False), 1.5, 1.0, 2)]
    assert [r.usable for r in runs] == [True, True, False, False]
    assert runs[0].check["ok"] and runs[0].holes_found["sites"] == [0, 2] and runs[0].scf_iterations == 31
    assert runs[2].check is None and runs[2].holes_found["sites"] == [0, 2]   # where the holes went by themselves
    assert runs[3].energy_eV is None and runs[3].reason == "SCF stopped"
    ch = choose_placement(runs)
    assert ch.placement == "near" and ch.sites == [0, 2] and ch.energy_eV == -197.68
    assert ch.relative_meV == {"near": pytest.approx(50.0), "far": pytest.approx(410.0), "none": 0.0,
                               "near_far": None}
    assert len(ch.notes) == 1 and ch.notes[0].startswith("none lies 50.0 meV below near but is not fitted: no holes "
                                                         "placed; holes found on sites [0, 2]")
    # JSON round trips
    for r in runs:
        assert PlacementRun.from_dict(json.loads(json.dumps(r.as_dict()))).as_dict() == r.as_dict()
    assert PlacementChoice.from_dict(json.loads(json.dumps(ch.as_dict()))) == ch
    # near's holes moved away: far is fitted, the note says why near is not
    moved = placement_run("near", NEAR, NEEL, _rec("vac_n", -197.68, [4, 5]), 1.5, 1.0, 2)
    ch = choose_placement([moved, runs[1]])
    assert ch.placement == "far" and "holes moved from sites [0, 2] to [4, 5]" in ch.notes[0]
    flipped = dict(_rec("vac_f", -197.9, [4, 6]))
    flipped["V_moments"][1] *= -1
    assert not placement_run("far", FAR, NEEL, flipped, 1.5, 1.0, 2).usable
    with pytest.raises(HoleError, match=r"no placement with its holes on the placed sites to fit: near: .*moved"):
        choose_placement([moved, runs[2]])
    with pytest.raises(HoleError, match="no placement of the holes converged: near_far: not converged"):
        choose_placement([runs[3]])


def test_constraint_warnings_one_copy_used_by_the_data_script():
    """Only an active constraint is flagged (spin channels overlapping, common gap < −smearing); a large Fermi-level
    split with a positive common gap is a free insulator; a record without the common gap is unchecked."""
    recs = [{"name": "near", "converged": True, "fermi_levels_eV": [-1.564, -0.868], "common_gap_eV": 0.334},
            {"name": "active", "converged": True, "fermi_levels_eV": [-1.0, -1.05], "common_gap_eV": -0.4},
            {"name": "old", "converged": True, "fermi_levels_eV": [-1.681, -0.716]},
            {"name": "free", "converged": True, "fermi_level_eV": -1.0},
            {"name": "unconv", "converged": False, "fermi_levels_eV": [0.0, 1.0], "common_gap_eV": -1.0}]
    w = constraint_warnings(recs, 0.1)
    assert len(w) == 2 and w[0].startswith("active:") and "0.40 eV" in w[0] and w[1].startswith("old:")
    assert "unchecked" in w[1] and [x for x in constraint_warnings(recs, 0.5) if x.startswith("active")] == []
    spec = importlib.util.spec_from_file_location("vhd_neutral", ROOT / "data/mc/vacancy_holes_dft.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.constraint_warnings is constraint_warnings  # the data script uses the library's, no copy


def test_lattice_classes_and_placement():
    J, assumed, notes = lattice_classes({"V2-V2_bulk": 26.0, "next_to_vacancy": 20.0, "V2-V3": 11.0, "J2": 0.4},
                                        26.4)
    assert J == {"V2-V2_bulk": 26.0, "next_to_vacancy": 20.0, "V2-V3": 11.0, "J2": 0.4} and not assumed and not notes
    J, assumed, notes = lattice_classes({"next_to_vacancy": 20.0, "V2-V3": 11.0, "V3-V3": 7.0}, 26.4)
    assert J["V2-V2_bulk"] == 26.4 and assumed == {"V2-V2_bulk": 26.4} and "perfect crystal's J1" in notes[0]
    with pytest.raises(HoleError, match="no V2-V3"):
        lattice_classes({"V2-V2_bulk": 26.0}, 26.4)
    assert lattice_placement("near") == ("near", None)
    pl, note = lattice_placement("far")
    assert pl == "random" and "'far'" in note


def test_predict_energy_is_the_fitted_model():
    """predict_energy of the fitted configurations = DFT energy + residual (residual = model − DFT); of a flipped
    site = the exchange of its bonds."""
    from wannmag.magnetism.vacancy_holes import (HolePlacement, classify_bonds, design_row, fit_with_holes,
                                                 predict_energy)

    bonds = [{"i": 0, "j": 1, "shell": 1}, {"i": 1, "j": 2, "shell": 1}, {"i": 2, "j": 3, "shell": 1},
             {"i": 3, "j": 0, "shell": 1}, {"i": 0, "j": 2, "shell": 2}]
    hp = HolePlacement(name="one", sites=[0], spin_hole=1.0)
    cb = classify_bonds(bonds, hp.sites, near_sites=[1])
    rng = np.random.default_rng(3)
    pats = [[1, s1, s2, s3] for s1 in (1, -1) for s2 in (1, -1) for s3 in (1, -1)]
    spins = hp.spins(4, 1.5)
    true = {"V2-V3": 7.0, "next_to_vacancy": 11.0, "V2-V2_bulk": 13.0, "J2": 0.5}
    E = [(-5.0 + design_row(cb, p, spins, list(true))[1:] @ np.array(list(true.values())) / 1000)
         + rng.normal(0, 1e-4) for p in pats]
    fit = fit_with_holes(cb, hp, 1.5, pats, E, unknowns=["V2-V3", "next_to_vacancy", "V2-V2_bulk"], fixed={"J2": 0.5})
    for p, e, r in zip(pats, E, fit.residuals_meV):
        assert predict_energy(cb, fit, p) == pytest.approx(e + r / 1000.0, abs=1e-12)
    assert predict_energy(cb, fit, [1, 1, 1, 1]) - predict_energy(cb, fit, [1, -1, 1, 1]) == pytest.approx(
        2 * 1.5 * (1.0 * fit.J["V2-V3"] + 1.5 * fit.J["next_to_vacancy"]) / 1000.0, abs=1e-12)


def test_fit_cell_kinds_round_trip_and_beyond_heisenberg():
    """fit_cell (the one fit flow of wannmag run and data/mc/vacancy_holes_dft.py) on the VPS3 near placement: a
    moved configuration excluded by default with E_DFT − E_model given; with keep_moved the status and kind say
    EFFECTIVE; with absorb_constant the absorbed class is named and no prediction is made; as_dict round trip."""
    from wannmag.magnetism.vacancy_holes import CellFit, HolePlacement, fit_cell, fit_design
    from wannmag.workflows.vacancy import make_vacancy_cell

    cell = make_vacancy_cell(str(ROOT / "data/structures/VPS3_monolayer.cif"))
    hp = HolePlacement("near", [0, 2])
    neel = [1, -1, 1, -1, 1, -1, 1]
    bonds, unknowns, design = fit_design(cell.bonds, cell.near_sites, hp, 1.5, cell.n_sites, start=neel, n_configs=8)
    assert unknowns == ["V2-V2_bulk", "next_to_vacancy", "V2-V3"] and design.patterns[0] == neel
    J = {"V2-V2_bulk": 26.0, "next_to_vacancy": 22.0, "V2-V3": 14.0, "J2": 0.4, "J3": 0.6}
    spins = hp.spins(cell.n_sites, 1.5)

    def energy(p):  # direct sum, eV
        s = np.asarray(p, float) * spins
        return -197.0 + sum(J[b["cls"]] * s[b["i"]] * s[b["j"]] for b in bonds) / 1000.0

    recs = []
    for k, p in enumerate(design.patterns):
        holes = [5, 6] if k == 4 else [0, 2]
        m = np.array(p) * np.array([1.9 if i in holes else 2.5 for i in range(cell.n_sites)])
        recs.append({"name": f"c{k}", "pattern": p, "converged": True, "V_moments": m.tolist(),
                     "energy_eV": energy(p) - (0.030 if k == 4 else 0.0)})  # the moved one 30 meV lower
    fixed = {"J2": 0.4, "J3": 0.6}
    cf = fit_cell(bonds, hp, 1.5, recs, unknowns, fixed=fixed)
    assert cf.status == "fitted" and not cf.effective and cf.moved == [] and cf.dof == 7 - 4
    assert cf.kind.startswith("fixed-hole Heisenberg fit")
    for c in unknowns:
        assert cf.fit.J[c] == pytest.approx(J[c], abs=1e-6)
    assert cf.beyond_heisenberg_meV == {"c4": pytest.approx(-30.0, abs=1e-6)}
    assert cf.records[4]["beyond_heisenberg_meV"] == pytest.approx(-30.0, abs=1e-6) and not cf.records[4]["used"]
    assert cf.rms_meV < 1e-6 and set(cf.residuals_meV) == {f"c{k}" for k in range(8) if k != 4}
    assert cf.notes() == []
    eff = fit_cell(bonds, hp, 1.5, recs, unknowns, fixed=fixed, keep_moved=True)
    assert eff.moved == ["c4"] and eff.status == "fitted (effective: holes moved in c4)" and eff.effective
    assert eff.kind == ("EFFECTIVE couplings (1 configuration(s) with moved holes used: not a fixed-hole Heisenberg "
                        "fit)")
    assert eff.dof == 4 and eff.rms_meV == pytest.approx(np.sqrt(np.mean(np.square(eff.fit.residuals_meV))))
    assert eff.rms_meV > 1.0 and eff.beyond_heisenberg_meV == {}  # the 30 meV shows up in the residuals
    assert eff.notes("--x") == ["effective couplings: configurations whose holes left the placed sites are used "
                                "(--x): c4"]
    back = CellFit.from_dict(json.loads(json.dumps(eff.as_dict())))
    assert back.as_dict() == eff.as_dict() and back.status == eff.status
    # only the 4 configurations with the B sublattice antiparallel to the holes: V2-V3 absorbed, named
    only = [r for r in recs if r["pattern"][1] == -1 and r["pattern"][3] == -1]
    ab = fit_cell(bonds, hp, 1.5, only, unknowns, fixed=fixed, absorb_constant=True)
    assert ab.fit.absorbed == ["V2-V3"] and ab.dof == 1 and ab.beyond_heisenberg_meV == {}
    assert ab.notes() == ["V2-V3: not determined: the same sum in every configuration used (absorbed into E0)"]
    with pytest.raises(HoleError, match="refused: 4 usable configuration"):
        fit_cell(bonds, hp, 1.5, only, unknowns, fixed=fixed)
