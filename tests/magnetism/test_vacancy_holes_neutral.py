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
