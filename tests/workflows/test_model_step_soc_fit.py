"""Issue 22 item 2: the anisotropy step stores its collinear SOC fit whole (CollinearSOCFit.as_dict with its design)
and the model step rebuilds it with from_dict instead of fitting again; the numbers are the refit's, bit for bit.

Convention: H = Σ_{i<j} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i, each bond once, |S| = S, J > 0 AF, meV."""

import json
from pathlib import Path

import numpy as np
import pytest

import wannmag.magnetism.anisotropy.collinear as collinear
from wannmag.magnetism.anisotropy.collinear import (CollinearFitError, CollinearSOCFit, fit_soc_records,
                                                    template_model)
from wannmag.workflows.engine import Context
from wannmag.workflows.results import AnisotropyStep
from wannmag.workflows.run import step_model

from .step_results import mapping_result

ROOT = Path(__file__).resolve().parents[2]


def _data(material):
    doc = json.loads((ROOT / f"data/dft/{material}_soc_fast.json").read_text())
    return doc["orders"], ROOT / doc["structure"]


@pytest.mark.parametrize("material", ["CrI3", "VPS3"])
def test_collinear_soc_fit_round_trip(material):
    """Measured GPAW force-theorem records: as_dict → JSON → from_dict gives the same dict, table, MAE per order
    and the same tensors applied to a model (exactly); a dict without the design is refused in one line."""
    records, cif = _data(material)
    tm = template_model(cif)
    fit = fit_soc_records(records, cif, template=tm)
    back = CollinearSOCFit.from_dict(json.loads(json.dumps(fit.as_dict())))
    assert json.dumps(back.as_dict(), sort_keys=True) == json.dumps(fit.as_dict(), sort_keys=True)
    assert back.table() == fit.table() and back.rms_meV_per_ion == fit.rms_meV_per_ion
    assert all(back.mae(o) == fit.mae(o) and back.easy_axis(o) == fit.easy_axis(o) for o in fit.design.orders)
    a, b = fit.apply(tm), back.apply(tm)
    assert all(np.array_equal(x.J, y.J) for x, y in zip(a.bonds, b.bonds)) and len(a.bonds) == len(b.bonds)
    assert all(np.array_equal(x, y) for x, y in zip(a.single_ion, b.single_ion))
    old = {k: v for k, v in fit.as_dict().items() if k != "design"}  # as stored before the design was
    with pytest.raises(CollinearFitError, match="stored without its design"):
        CollinearSOCFit.from_dict(old)


def _ctx(tmp_path, soc_fit, records, cif, mapping_model):
    an = AnisotropyStep(order="FM", summary={}, dipolar_meV=0.0361, soc_meV=0.93, soc_method="test", soc_records=records,
                        soc_fit=soc_fit, soc_fit_table="").as_dict()
    return Context(tmp_path, {"structure": str(cif)}, {"mapping": mapping_result(mapping_model), "anisotropy": an},
                   lambda m: None)


def test_model_step_rebuilds_the_stored_fit_and_gives_the_refit_model(tmp_path, monkeypatch):
    """The model step from a stored fit (no refit, the structure never read) and from an anisotropy result of the
    former layout (refit from the records, as before) write the same spin model, byte for byte."""
    records, cif = _data("CrI3")
    m = template_model(cif)
    for b in m.bonds:  # energy-mapping-like isotropic J1-J3 (meV)
        b.J = {1: -2.0, 2: -0.3, 3: 0.1}[b.shell] * np.eye(3)
    path = m.save(tmp_path / "mapping.json")
    fit = fit_soc_records(records, cif, template=m)
    calls = []
    real = collinear.fit_soc_records
    monkeypatch.setattr(collinear, "fit_soc_records", lambda *a, **k: calls.append(1) or real(*a, **k))
    (tmp_path / "new").mkdir()
    ctx = _ctx(tmp_path / "new", json.loads(json.dumps(fit.as_dict())), records, cif, path)
    new = step_model(ctx)
    assert calls == [] and ctx._resolved is None  # no fit, no structure read
    (tmp_path / "old").mkdir()
    old_dict = {k: v for k, v in fit.as_dict().items() if k != "design"}
    old = step_model(_ctx(tmp_path / "old", old_dict, records, cif, path))
    assert calls == [1]  # the fallback refits once
    assert Path(new.model_path).read_bytes() == Path(old.model_path).read_bytes()
    assert new.anisotropy_meV_per_ion == old.anisotropy_meV_per_ion == pytest.approx(0.0361 + fit.mae("FM")
                                                                                           ["total"], abs=1e-12)
