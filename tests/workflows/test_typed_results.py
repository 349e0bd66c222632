"""Issue 22 item 2: every result a ``wannmag run`` step stores round-trips as_dict → JSON → from_dict → as_dict, and
the steps hand typed results to each other (the spin models and the Wannier model in memory, not written and read
back).  Units: eV (DFT, tight binding), meV (J, anisotropy; H = Σ_{i<j} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i, each bond
once, |S| = S, J > 0 AF), K, Å."""

import json
from pathlib import Path

import numpy as np
import pytest

from wannmag.magnetism.anisotropy.soc import STANDARD_DIRECTIONS, MAEResult
from wannmag.magnetism.energy_mapping import ExchangeFit, FitError, fit_exchange, records_from_configurations
from wannmag.structures import cri3_monolayer, find_magnetic_sites, honeycomb_configuration
from wannmag.tightbinding import ZSAClassification, classify_zsa, slater_koster_collinear
from wannmag.workflows.engine import Context, Engine, Step
from wannmag.workflows.results import (AnisotropyStep, DFTStep, MappingStep, MFTStep, ModelStep, StepResultError,
                                       StructureStep, TBStep, WannierStep)
from wannmag.workflows.wannier import WannierChannel

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / "data" / "runs" / "CrI3_accurate" / "steps"
TYPES = {"structure": StructureStep, "dft": DFTStep, "mapping": MappingStep, "wannier": WannierStep, "tb": TBStep,
         "mft": MFTStep, "anisotropy": AnisotropyStep, "model": ModelStep}


def _json_round_trip(obj, cls):
    back = cls.from_dict(json.loads(json.dumps(obj.as_dict())))
    assert json.dumps(back.as_dict()) == json.dumps(obj.as_dict())
    return back


@pytest.mark.parametrize("step", list(TYPES))
def test_stored_steps_of_the_accurate_run_are_their_typed_results_key_for_key(step):
    """The typed result of a stored step writes back the same JSON, key order included (a run's files do not
    change with the types)."""
    stored = json.loads((RUN / f"{step}.json").read_text())
    plain = {k: v for k, v in stored.items() if not k.startswith("_")}
    obj = TYPES[step].from_dict(plain)
    assert json.dumps(obj.as_dict()) == json.dumps(plain)
    _json_round_trip(obj, TYPES[step])


def test_typed_fields_of_the_stored_run():
    mp = MappingStep.from_dict(json.loads((RUN / "mapping.json").read_text()))
    assert mp.ground_state == "FM" and mp.J_meV == json.loads((RUN / "mapping.json").read_text())["J_meV"]
    assert mp.fit.configurations == ["FM", "Neel", "zigzag", "stripy"] and mp.fit.records == []
    dft = DFTStep.from_dict(json.loads((RUN / "dft.json").read_text()))
    assert [r.config for r in dft.records] == ["FM", "Neel", "zigzag", "stripy"] and dft.record("Neel").energy < 0
    tb = TBStep.from_dict(json.loads((RUN / "tb.json").read_text()))
    assert tb.regime == "charge-transfer" and tb.classification.text() == tb.text  # the call's text, rebuilt
    w = WannierStep.from_dict(json.loads((RUN / "wannier.json").read_text()))
    assert set(w.channels) == {"up", "dn", "nm"} and isinstance(w.channels["up"], WannierChannel)
    with pytest.raises(StepResultError, match="mapping step result without ground_state"):
        MappingStep.from_dict({k: v for k, v in mp.as_dict().items() if k != "ground_state"})


def test_exchange_fit_round_trip_on_the_stored_energies():
    """The energy-mapping fit of the accurate run's DFT energies: the rebuilt fit has the same J, residuals, table
    and dict (its configurations by name)."""
    recs = json.loads((RUN / "dft.json").read_text())["records"]
    sub = find_magnetic_sites(ROOT / "data" / "structures" / "CrI3_monolayer.cif")
    configs = [honeycomb_configuration(sub, r["config"], supercell=r["supercell"]) for r in recs]
    records, distances = records_from_configurations(sub, configs, [r["energy"] for r in recs])
    fit = fit_exchange(records, n_shells=3, spin=1.5, distances=distances)
    back = _json_round_trip(fit, ExchangeFit)
    assert np.array_equal(back.J, fit.J) and np.array_equal(back.residuals, fit.residuals)
    assert np.array_equal(back.stderr, fit.stderr) and back.table() == fit.table()
    assert back.configurations == [r.name for r in records]
    with pytest.raises(FitError, match="not an energy-mapping fit"):
        ExchangeFit.from_dict({"J_meV": [1.0]})


def test_zsa_classification_and_band_edges_round_trip():
    kw = dict(d_atoms=["Cr"], p_atoms=["I"], params=dict(pds=-0.6, pdp=0.3, dds=-0.05, ddp=0.025, pps=0.25,
                                                          ppp=-0.075), eps_p=-2.5, crystal_field=(-0.3, 0.6))
    pair = slater_koster_collinear(cri3_monolayer(), exchange_splitting=3.0, eps_d=0.0, **kw)
    cls = classify_zsa(pair, U=3.0, n_electrons=None, nk=4)
    back = _json_round_trip(cls, ZSAClassification)
    assert back.text() == cls.text() and back.regime == cls.regime and back.consistent == cls.consistent
    assert back.edges is not None and back.edges.gap == pytest.approx(cls.edges.gap, abs=1e-6)


def test_mae_result_round_trip():
    e = [-1000.0, -999.5, -999.4, -1000.0, -999.8, -999.8]
    mae = MAEResult(theta=np.array([d[0] for d in STANDARD_DIRECTIONS]),
                    phi=np.array([d[1] for d in STANDARD_DIRECTIONS]), energy=np.array(e), n_magnetic=2,
                    method="test", sources=["a.gpw"])
    back = _json_round_trip(mae, MAEResult)
    assert back.mae() == mae.mae() == pytest.approx((0.5 * (-999.5 - 999.4) + 1000.0) / 2)  # E_in − E_out per ion


def test_dilution_result_round_trip():
    from wannmag.magnetism import Site, SpinModel
    from wannmag.magnetism.montecarlo import MCSettings
    from wannmag.magnetism.montecarlo.dilution import DilutionResult, dilution_scan

    cell = np.array([[1.0, 0.0, 0.0], [-0.5, 3 ** 0.5 / 2, 0.0], [0.0, 0.0, 10.0]])
    m = SpinModel(cell=cell, sites=[Site(np.array(f) @ cell, "X", 1.0) for f in ((2 / 3, 1 / 3, 0), (1 / 3, 2 / 3, 0))],
                  pbc=(True, True, False))
    for R in [(0, 0, 0), (1, 0, 0), (0, -1, 0)]:
        m.add_bond(0, 1, R, -1.0)
    st = MCSettings(tmin=5.0, tmax=30.0, n_replicas=4, n_sweeps=60, n_therm=20, seed=2, ising=True)
    res = dilution_scan(m, [0.0, 0.2], [3, 4], st, realisations=1, warn=False)
    back = _json_round_trip(res, DilutionResult)
    assert back.tc == res.tc and [a.status for a in back.analyses] == [a.status for a in res.analyses]
    lab = next(iter(res.curves[1]))
    assert np.array_equal(back.curves[1][lab]["T"], res.curves[1][lab]["T"])
    assert np.array_equal(back.curves[1][lab]["U4"][0], res.curves[1][lab]["U4"][0])


def test_the_engine_hands_a_typed_result_to_the_next_step_and_stores_its_dict(tmp_path):
    """In one run the next step gets the very object the step returned (nothing written and read back); a later
    run that skips the step rebuilds it once with from_dict; the stored JSON is its as_dict."""
    seen = []

    def make(ctx):
        return ModelStep(model_path="m.json", anisotropy_meV_per_ion=0.25, J_meV=[-2.0], method="test",
                         model="in memory")

    def use(ctx):
        a, b = ctx.typed("model", ModelStep), ctx.typed("model", ModelStep)
        seen.append((a, a is b))
        return {"anisotropy": a.anisotropy_meV_per_ion}

    steps = lambda: [Step("model", make), Step("use", use, ("model",), params={"v": len(seen)})]  # noqa: E731
    Engine(tmp_path, steps(), log=lambda m: None).run()
    obj, same = seen[0]
    assert same and obj.model == "in memory"  # the step's own object
    stored = json.loads((tmp_path / "steps" / "model.json").read_text())
    assert {k: v for k, v in stored.items() if not k.startswith("_")} == obj.as_dict()
    Engine(tmp_path, steps(), log=lambda m: None).run()  # "model" skipped, "use" recomputed (new params)
    again, same = seen[1]
    assert same and again.model is None and again.as_dict() == obj.as_dict()  # from_dict, made once
    ctx = Context(tmp_path, {}, {"model": stored}, lambda m: None)
    assert ctx.typed("model", ModelStep).J_meV == [-2.0]
