"""wannmag.magnetism.vacancy (issue 22: the vacancy cell's physics out of wannmag.workflows.vacancy): the workflow's
former names are the same objects, the equal-spin fit round-trips and recovers a known model exactly, and the J1
next to a vacancy of the Monte Carlo lattice replaces only the isotropic part."""

import json
from pathlib import Path

import numpy as np
import pytest

import wannmag.magnetism.vacancy as mv
import wannmag.workflows.vacancy as wv

VPS3 = str(Path(__file__).resolve().parents[2] / "data" / "structures" / "VPS3_monolayer.cif")


def test_workflow_names_are_the_magnetism_layer_objects():
    for name in ("CLASSES", "VacancyCell", "VacancyError", "VacancyFitError", "VacancyFit", "make_vacancy_cell",
                 "vacancy_configuration", "vacancy_site_distances", "hole_placements_of", "start_pattern",
                 "choose_patterns", "fit_vacancy_exchange", "NearVacancyJ", "plot_tn_vs_x"):
        assert getattr(wv, name) is getattr(mv, name), name
    assert issubclass(mv.VacancyFitError, mv.VacancyError)


def test_equal_spin_fit_recovers_a_model_and_round_trips():
    cell = mv.make_vacancy_cell(VPS3)
    assert (cell.n_full, cell.n_sites) == (8, 7) and cell.n_bonds()["J1_vac"] > 0 and cell.n_bonds()["J1_bulk"] > 0
    start = mv.start_pattern(VPS3, cell)
    assert start == [1, -1, 1, -1, 1, -1, 1]
    pats = mv.choose_patterns(cell, fit="J1", n_configs=5, start=start)
    assert pats[0] == start and len({tuple(p) for p in pats}) == 5
    J = {"J1_bulk": 26.0, "J1_vac": 20.0, "J2": 0.4, "J3": 0.6}
    # independent energies: a direct bond sum with S = 3/2
    E = [-197.0 + sum(J[b["cls"]] * 2.25 * p[b["i"]] * p[b["j"]] for b in cell.bonds) / 1000.0 for p in pats]
    fit = mv.fit_vacancy_exchange(cell, pats, E, fit="J1", fixed={"J2": 0.4, "J3": 0.6})
    for c in ("J1_bulk", "J1_vac"):
        assert fit.J[c] == pytest.approx(J[c], abs=1e-8)
    assert max(abs(r) for r in fit.residuals_meV) < 1e-8 and fit.configurations[0] == "vac_udududu"
    assert mv.VacancyFit.from_dict(json.loads(json.dumps(fit.as_dict()))).as_dict() == fit.as_dict()
    with pytest.raises(mv.VacancyFitError, match="underdetermined"):
        mv.fit_vacancy_exchange(cell, pats[:2], E[:2], fit="J1", fixed={"J2": 0.4, "J3": 0.6})


def test_near_vacancy_exchange_keeps_the_anisotropic_part():
    from wannmag.magnetism import SpinModel
    from wannmag.structures import find_magnetic_sites, neighbour_shells

    sub = find_magnetic_sites(VPS3)
    model = SpinModel.from_sublattice(sub)
    for Jn, sh in zip((2.0, 0.1), neighbour_shells(sub, 2)):
        for b in sh.bonds:
            model.add_bond(b.i, b.j, b.R, Jn)
    near = mv.NearVacancyJ(model, 1.5)
    Jt = np.diag([2.0, 2.1, 1.9]) + np.array([[0, 0.2, 0], [-0.2, 0, 0], [0, 0, 0]])
    first = next(k for k, b in enumerate(model.bonds) if near.shells[k] == 1)
    second = next(k for k, b in enumerate(model.bonds) if near.shells[k] != 1)

    class Bond:
        J = Jt

    out = near(first, Bond, 1)
    assert np.trace(out) / 3 == pytest.approx(1.5) and np.allclose(out - np.trace(out) / 3 * np.eye(3),
                                                                   Jt - np.trace(Jt) / 3 * np.eye(3))
    assert near(second, Bond, 1) is None
