"""Issue 16, item 3: the dipolar (shape) anisotropy is carried by the SpinModel as its own labelled part of the
single-ion tensors and counted exactly once by every consumer.

ΔE = E(in-plane) − E(out-of-plane) in meV per magnetic ion (> 0: easy axis along the layer normal);
H = Σ_{i<j} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i, each bond once, |S| = S, J > 0 AF, meV.

The models are built the way ``wannmag run`` builds them (``step_mapping`` → ``step_model``) from stored inputs:
CrI3 from the accurate run (data/runs/CrI3_accurate: DFT energies and force-theorem SOC energies of the four orders)
and VPS3 from the fast-preset SOC energies (data/dft/VPS3_soc_fast.json), where the dipolar term is larger than
the spin–orbit one.  The reference numbers are the run's report (independent: its anisotropy step computed the
dipolar sum and the SOC fit separately, before any spin model existed).
"""

import json
from pathlib import Path

import numpy as np
import pytest

from wannmag.cli import main
from wannmag.magnetism import SpinModel
from wannmag.magnetism.anisotropy import anisotropy_summary
from wannmag.magnetism.anisotropy.collinear import fit_soc_records
from wannmag.magnetism.energy_mapping import ExchangeFit
from wannmag.workflows.engine import Context
from wannmag.workflows.results import AnisotropyStep, MappingStep
from wannmag.workflows.run import step_mapping, step_model

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / "data" / "runs" / "CrI3_accurate"


def _in_out(model, tensors, order):
    """ΔE of single-ion tensors for a collinear order (moments ±S n; single-ion terms do not see the signs)."""
    S = model.spins
    c = np.array([0.0, 0.0, 1.0])
    e = lambda n: float(np.mean([s * s * n @ A @ n for s, A in zip(S, tensors)]))  # noqa: E731
    return 0.5 * (e(np.array([1.0, 0, 0])) + e(np.array([0, 1.0, 0]))) - e(c)


def _cri3_model(tmp_path):
    structure = str(ROOT / "data" / "structures" / "CrI3_monolayer.cif")
    dft = json.loads((RUN / "steps" / "dft.json").read_text())
    an = json.loads((RUN / "steps" / "anisotropy.json").read_text())
    ctx = Context(tmp_path, {"structure": structure}, {"dft": dft}, lambda m: None)
    ctx.results["mapping"] = step_mapping(ctx).as_dict()
    ctx.results["anisotropy"] = an
    res = step_model(ctx).as_dict()
    return SpinModel.load(res["model"]), res, an


def test_cri3_run_model_counts_dipolar_once(tmp_path):
    model, res, an = _cri3_model(tmp_path)
    dip, soc = an["dipolar_meV"], 0.8000  # report: dipolar −0.0361, SOC force theorem FM +0.8000 (+0.3148 SIA)
    assert dip == pytest.approx(-0.0361, abs=1e-4)
    assert res["anisotropy_meV_per_ion"] == pytest.approx(dip + soc, abs=1e-4)
    # the labelled part is exactly the dipolar term; single_ion (what Monte Carlo uses) is SOC SIA + dipolar
    assert model.dipolar_info["order"] == "FM" and model.dipolar_info["delta_meV_per_ion"] == pytest.approx(dip)
    assert _in_out(model, model.single_ion_dipolar, "FM") == pytest.approx(dip, rel=1e-9)
    assert _in_out(model, model.single_ion_intrinsic, "FM") == pytest.approx(0.3148, abs=1e-4)
    assert _in_out(model, model.single_ion, "FM") == pytest.approx(0.3148 + dip, abs=1e-4)
    s = anisotropy_summary(model, "FM")
    assert s["dipolar"]["delta_meV"] == pytest.approx(dip, rel=1e-9)
    assert s["single_ion"]["delta_meV"] == pytest.approx(0.3148, abs=1e-4)   # was +0.2787 (dipolar inside)
    assert s["exchange"]["delta_meV"] == pytest.approx(0.4852, abs=1e-4)
    assert s["total_delta_meV"] == pytest.approx(0.7639, abs=1e-4)           # was +0.7278 (dipolar twice)
    assert s["total_delta_meV"] == pytest.approx(model.meta["anisotropy_meV_per_ion"], abs=1e-9)
    # the model round-trips with its label
    again = SpinModel.from_dict(json.loads(json.dumps(model.as_dict())))
    assert again.dipolar_info == model.dipolar_info
    assert np.allclose(again.single_ion_dipolar, model.single_ion_dipolar)
    assert np.allclose(again.single_ion, model.single_ion)


def test_vps3_dipolar_larger_than_soc_counted_once(tmp_path):
    """VPS3 (Néel): dipolar +0.0219 meV/V exceeds the SOC anisotropy (+0.0138); each enters once."""
    from wannmag.structures import find_magnetic_sites, neighbour_shells

    structure = str(ROOT / "data" / "structures" / "VPS3_monolayer.cif")
    stored = SpinModel.load(ROOT / "data" / "mc" / "VPS3_fast_spin_model.json")
    sub = find_magnetic_sites(structure)
    mapping = SpinModel.from_sublattice(sub)
    for J, sh in zip(stored.meta["J_meV"], neighbour_shells(sub, 3)):
        for b in sh.bonds:
            mapping.add_bond(b.i, b.j, b.R, J)
    path = mapping.save(tmp_path / "mapping.json")
    records = json.loads((ROOT / "data" / "dft" / "VPS3_soc_fast.json").read_text())["orders"]
    dip = anisotropy_summary(mapping, "Neel")["dipolar"]["delta_meV"]     # what the anisotropy step computes
    soc = fit_soc_records(records, structure, template=mapping).mae("Neel")["total"]
    assert dip == pytest.approx(0.0219, abs=1e-4) and 0 < soc < dip
    fit = ExchangeFit(J=np.asarray(stored.meta["J_meV"], float), E0=0.0, spin=1.0, distances=[],
                      residuals=np.zeros(0), condition_number=1.0, stderr=None)
    mp = MappingStep(fit=fit, table="", energies_meV={"Neel": 0.0}, site_moments={}, ground_state="Neel",
                     model_path=str(path))
    an = AnisotropyStep(order="Neel", summary={}, dipolar_meV=dip, soc_meV=None, soc_method="test",
                        soc_records=records, soc_fit={"stored": True}, soc_fit_table="")  # without design: refit
    ctx = Context(tmp_path, {"structure": structure}, {"mapping": mp.as_dict(), "anisotropy": an.as_dict()},
                  lambda m: None)
    model = SpinModel.load(step_model(ctx).model_path)
    s = anisotropy_summary(model, "Neel")
    single = fit_soc_records(records, structure, template=mapping).mae("Neel")["single_ion"]
    assert s["single_ion"]["delta_meV"] == pytest.approx(single, abs=1e-9)   # SOC SIA only (was + dipolar)
    assert s["total_delta_meV"] == pytest.approx(dip + soc, abs=1e-9)         # was 0.0576 (dipolar twice)
    assert s["total_delta_meV"] == pytest.approx(0.0357, abs=2e-4)           # README: anisotropy +0.036 meV/V
    # the demo's stored (format-1) model: the dipolar part is reconstructed and the same total comes out
    old = anisotropy_summary(stored, "Neel")
    assert stored.dipolar_info["status"] == "separate"
    assert old["total_delta_meV"] == pytest.approx(stored.meta["anisotropy_meV_per_ion"], abs=1e-9)
    assert old["dipolar"]["stored_in_model_meV"] == pytest.approx(dip, abs=1e-9)


def test_format1_models_are_read_as_they_were_meant(tmp_path, capsys):
    """The accurate run's stored model (format 1, dipolar folded into single_ion): its single-ion tensors are
    unchanged (Monte Carlo sees what it saw), the dipolar part is recognised, and ``wannmag anisotropy`` prints the
    report's total +0.7639 with the dipolar term once."""
    raw = json.loads((RUN / "spin_model.json").read_text())
    model = SpinModel.load(RUN / "spin_model.json")
    assert np.allclose(model.single_ion, np.array(raw["single_ion"]))
    assert model.dipolar_info["delta_meV_per_ion"] == pytest.approx(-0.0361, abs=1e-4)
    assert main(["anisotropy", str(RUN / "spin_model.json")]) == 0
    out = capsys.readouterr().out
    assert "+0.76392 meV/ion" in out.split("total")[1] and "counted once" in out
    # a lumped format-1 model (no SOC fit stored): the amount is unknown, nothing is added on top
    raw["meta"] = {"method": "energy mapping J + effective uniaxial anisotropy (dipolar + SOC)",
                   "anisotropy_meV_per_ion": 0.5}
    raw["single_ion"] = [np.diag([0.0, 0.0, -0.5 / 2.25]).tolist()] * 2
    raw["bonds"] = [dict(b, J=np.trace(np.array(b["J"])) / 3) for b in raw["bonds"]]
    lumped = SpinModel.from_dict(raw)
    assert lumped.dipolar_info["status"].startswith("folded")
    s = anisotropy_summary(lumped, "FM")
    assert s["total_delta_meV"] == pytest.approx(0.5, abs=1e-9) and "note" in s["dipolar"]


def test_exporters_say_what_they_export(tmp_path, capsys):
    model, _, _ = _cri3_model(tmp_path)
    path = model.save(tmp_path / "m.json")
    assert main(["export", str(path), str(tmp_path / "x.mat.txt"), "--to", "mcsolver"]) == 0
    cap = capsys.readouterr()
    assert "including the dipolar shape term (-0.0361 meV/ion)" in cap.out
    assert cap.err.count("wannmag: warning:") == 1 and "dipolar" in cap.err
    assert main(["export", str(path), str(tmp_path / "e.out"), "--to", "tb2j"]) == 0
    cap = capsys.readouterr()
    assert "single-ion terms not written" in cap.out and "not exported" in cap.err
    # the wannmag round trip keeps the label
    assert main(["export", str(path), str(tmp_path / "copy.json"), "--to", "wannmag"]) == 0
    assert SpinModel.load(tmp_path / "copy.json").dipolar_info == model.dipolar_info


def test_supercell_and_symmetrise_keep_the_label(tmp_path):
    from wannmag.magnetism.symmetry import symmetrise
    from wannmag.structures import read_structure

    model, _, _ = _cri3_model(tmp_path)
    big, parent = model.supercell((2, 1, 1))
    assert all(np.allclose(big.single_ion_dipolar[k], model.single_ion_dipolar[p]) for k, p in enumerate(parent))
    sym = symmetrise(model, read_structure(ROOT / "data" / "structures" / "CrI3_monolayer.cif"))
    assert np.allclose(sym.single_ion_dipolar, model.single_ion_dipolar, atol=1e-12)
    assert sym.dipolar_info == model.dipolar_info
