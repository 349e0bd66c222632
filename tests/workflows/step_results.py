"""Stored step results of ``wannmag run`` (the dicts of OUT/steps/<step>.json) for tests that call one step with a
hand-made Context: made with the typed result classes of :mod:`wannmag.workflows.results`, so that they hold every
key the later steps read.  J in meV (H = Σ_{i<j} S_i·J_ij·S_j, each bond once, |S| = S, J > 0 AF)."""

from __future__ import annotations

import numpy as np

from wannmag.magnetism.energy_mapping import ExchangeFit
from wannmag.magnetism.montecarlo.tc import TcResult
from wannmag.magnetism.vacancy import make_vacancy_cell
from wannmag.magnetism.vacancy_holes import HolePlacement
from wannmag.workflows.results import (MappingStep, MCStep, ModelStep, StructureStep, VacancyDFTStep,
                                       VacancyFitStep)


def structure_result(formula: str = "X") -> dict:
    return StructureStep(formula=formula, table="", shells=[], paths=[], magnetic_sites=[], figure="").as_dict()


def mapping_result(model_path, ground_state: str = "FM", J=(-2.0, -0.3, 0.1), spin: float = 1.5) -> dict:
    """A mapping step of the spin model file ``model_path`` (its J as the fit's, no residuals)."""
    fit = ExchangeFit(J=np.asarray(J, float), E0=0.0, spin=spin, distances=[], residuals=np.zeros(0),
                      condition_number=1.0, stderr=None)
    return MappingStep(fit=fit, table=fit.table(), energies_meV={ground_state: 0.0}, site_moments={},
                       ground_state=ground_state, model_path=str(model_path)).as_dict()


def model_result(model_path, anisotropy: float = 0.0) -> dict:
    return ModelStep(model_path=str(model_path), anisotropy_meV_per_ion=anisotropy, J_meV=[], method="test").as_dict()


def mc_result(tc_K, tc_error_K, method: str, sizes, t_window_K, mermin_wagner: bool = False) -> dict:
    """A Monte Carlo step (K) whose reported pass brackets ``tc_K`` in ``t_window_K`` (one pass, no runs stored)."""
    res = TcResult(sizes=list(sizes), tc=tc_K, tc_error=tc_error_K, method=method, peaks_C={}, peaks_chi={},
                   crossings=[], mermin_wagner=mermin_wagner, t_window=list(t_window_K))
    return MCStep(result=res, mermin_wagner=mermin_wagner, warning=None, sizes=list(sizes), t_window_K=list(t_window_K),
                  coarse={"t_window_K": list(t_window_K), "tc_K": tc_K, "tc_error_K": tc_error_K, "method": method},
                  refined=False, refine_warning=None, algorithm="metropolis", algorithm_reason="test",
                  figure="").as_dict()


def hole_fit_result(structure, J_meV: dict, fixed_meV: dict, rank: int, placement: dict, perfect_J_meV,
                    absorbed=()) -> dict:
    """A vacancy_fit step of the neutral cell with its holes (mode "holes") of the vacancy cell of ``structure``
    (default 2×2, site 0): ``J_meV`` by class (meV, J > 0 AF; None: absorbed into E0), the classes held at
    ``fixed_meV``, ``placement`` {name, sites, spin_hole}, the perfect crystal's J1–J3; the Monte Carlo holes
    "near", no configurations, residuals or notes (what vacancy_mc reads)."""
    return VacancyFitStep(
        convention="H = sum_{i<j} S_i.J_ij.S_j (each bond once, |S_i| = S_i, J > 0 AF), meV", J_meV=dict(J_meV),
        fixed_meV=dict(fixed_meV), E0_eV_per_cell=0.0, residuals_meV_per_cell=[], rank=rank, condition_number=1.0,
        stderr_meV=None, configurations=[], perfect_J_meV=list(perfect_J_meV), table="",
        cell=make_vacancy_cell(structure), mode="holes", placement=HolePlacement.from_dict(placement), spins=[],
        J_fitted_meV={k: v for k, v in J_meV.items() if k not in fixed_meV}, assumed_meV={}, bonds_per_class={},
        mc_placement="near", excluded=[], residual_rms_meV=0.0, dof=0, warnings=[], notes=[],
        absorbed=list(absorbed)).as_dict()


def vacancy_dft_result(structure, engine: str = "fake", charge: float = 0.0) -> dict:
    """A vacancy_dft step of the equal-spin layout without records, of the vacancy cell of ``structure`` (default
    2×2, site 0: 8 → 7 sites): what the report's first lines read (cell, charge e, engine)."""
    return VacancyDFTStep(cell=make_vacancy_cell(structure), engine=engine, charge=charge, records=[]).as_dict()
