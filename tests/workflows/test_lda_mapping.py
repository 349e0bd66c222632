"""data/exchange/lda_mapping.py (issue 17, like-for-like LDA+U energy mapping): the plan uses exactly the spin-spiral
settings (the shipped CrI3 Γ points are reused because their stored parameters are identical), and the fit/IO path
run on a fake GPAW whose energies are the classical energies of a known J1–J3 model (E = E0·N + Σ_bonds J S²σσ by
SpinModel.energy of the supercell, independent of the bond counts the fit uses) gives that model's J back.  No DFT.
Exchange meV, internal convention H = Σ_{i<j} J S_i·S_j (each bond once, |S| = S, J > 0 AF)."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

import wannmag.workflows.spiral as sp
from wannmag.magnetism.energy_mapping import model_energies
from wannmag.magnetism.routes import collect_route_files, read_route_file
from wannmag.workflows.dft import DFTError

ROOT = Path(__file__).resolve().parents[2]
J_TRUE = (-3.42, -0.83, 0.21)
E0_EV = -16.3  # per magnetic ion


def _script():
    spec = importlib.util.spec_from_file_location("lda_mapping", ROOT / "data" / "exchange" / "lda_mapping.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


LM = _script()


def true_model():
    model = sp.spiral_model(ROOT / "data" / "structures" / "CrI3_monolayer.cif", 3)
    for b in model.bonds:
        b.J = J_TRUE[b.shell - 1] * np.eye(3)
    return model


class FakeCalc:
    def __init__(self, conf, params, txt, calls, state):
        self.conf, self.params, self.state = conf, params, state
        calls.append(conf.name)
        Path(txt).write_text("fake gpaw log\n")

    def get_potential_energy(self, atoms=None, force_consistent=False):
        if self.conf.name in self.state["fail"]:
            from gpaw import KohnShamConvergenceError

            raise KohnShamConvergenceError("fake")
        n = self.conf.n_sites
        e = E0_EV * n + model_energies(true_model(), [self.conf])[0] / 1000.0
        if n == 4:
            e += self.state["delta_meV"] * n / 1000.0  # a k-sampling offset of the rectangular cell
        return e + self.state.get("extra", {}).get(self.conf.name, 0.0)

    def get_number_of_iterations(self):
        return 80 if self.conf.name in self.state["fail"] else 19

    def get_non_collinear_magnetic_moments(self):
        m = np.zeros((len(self.params["symbols"]), 3))
        for i, s in zip(self.conf.sublattice.indices, self.params["sigma"]):
            m[i, 0] = 3.0 * s
        return m

    def get_fermi_level(self):
        return 0.0

    def get_ibz_k_points(self):
        return np.zeros((1, 3))

    def get_eigenvalues(self, kpt=0, spin=0):
        return np.array([-1.0, 0.5])


@pytest.fixture
def fake(monkeypatch):
    calls, state = [], {"fail": set(), "delta_meV": 0.0}
    confs = {}

    def factory(params, txt):
        return FakeCalc(confs[params["pattern"]], params, txt, calls, state)

    monkeypatch.setattr(sp, "_make_spiral_calculator", factory)
    return calls, state, confs


def plan_in(tmp_path, confs, rect=LM.DEFAULT_RECT):
    plan = LM.Plan("CrI3", rect, spiral_dir=tmp_path / "spiral", work_dir=tmp_path / "rect")
    confs.update({c.name: c for c, *_ in plan.items})
    return plan


def test_plan_uses_the_spiral_settings_and_reuses_the_shipped_gamma_points():
    plan = LM.Plan("CrI3")
    kw = {c.name: k for c, _, k, _ in plan.items}
    assert kw["FM"]["kpts"] == (3, 3, 1) and kw["zigzag"]["kpts"] == (3, 2, 1)
    assert kw["zigzag"]["nbands"] == 2 * kw["FM"]["nbands"] == 128
    assert all(k["ecut"] == 250.0 and k["U"] == 3.0 and k["xc"] == "LDA" and k["maxiter"] == 80 for k in kw.values())
    rows = {c.name: p for c, p, f, r in plan.stored()}  # parameters compared key by key (refused if different)
    assert rows["FM"].converged and rows["Neel"].converged
    assert rows["FM"].parameters == plan.parameters(plan.items[0][0], plan.items[0][2])


def test_fake_energies_give_the_model_back_and_a_route_file(tmp_path, fake):
    calls, state, confs = fake
    plan = plan_in(tmp_path, confs)
    out = tmp_path / "CrI3_lda_mapping.json"
    doc = LM.run(plan, out, log=lambda m: None)
    assert calls == ["FM", "Neel", "zigzag", "stripy", "FM_rect"]
    assert np.allclose([doc["J1"], doc["J2"], doc["J3"]], J_TRUE, atol=1e-9)
    fits = doc["settings"]["fits"]
    assert np.allclose(fits["FM, Néel, zigzag, stripy (exactly determined)"]["J_meV"], J_TRUE, atol=1e-9)
    assert doc["settings"]["determination"].startswith("least squares: 5")
    assert doc["settings"]["k_sampling_check_meV_per_ion"] == pytest.approx(0.0, abs=1e-9)
    # E_Néel − E_FM per ion = S² (−3 J1 − 3 J3) (bond counts per ion, README conventions)
    assert doc["settings"]["E_Neel_minus_E_FM_meV_per_ion"] == pytest.approx(2.25 * -3 * (J_TRUE[0] + J_TRUE[2]),
                                                                             abs=1e-3)
    assert json.loads(out.read_text())["J1"] == doc["J1"]
    assert len(list((tmp_path / "rect").glob("*_q*.json"))) == 3
    row = read_route_file(out, "CrI3", 1.5)[0]
    assert row.name == LM.NAME and row.status == "computed" and row.J1 == pytest.approx(J_TRUE[0])
    assert row.seconds is not None
    got = collect_route_files(tmp_path, "CrI3", 1.5, distances=[4.0415, 7.0, 8.0829])
    assert [r.name for r in got] == [LM.NAME]
    # resume: nothing recomputed; the fit-only path gives the same document
    calls.clear()
    LM.run(plan, out, log=lambda m: None)
    assert calls == []
    assert LM.main(["CrI3", "--fit-only", "--spiral-dir", str(tmp_path / "spiral"), "--work-dir",
                    str(tmp_path / "rect"), "--out", str(out)]) == 0
    assert json.loads(out.read_text())["J1"] == pytest.approx(J_TRUE[0], abs=1e-9)


def test_same_cell_fit_removes_a_k_sampling_offset_and_ferri_gives_a_residual(tmp_path, fake):
    calls, state, confs = fake
    state["delta_meV"] = 2.0
    state["extra"] = {"ferri_rect": 4 * 0.5e-3}  # 0.5 meV/ion of non-Heisenberg energy in the ferrimagnet only
    plan = plan_in(tmp_path, confs, ("zigzag", "stripy", "FM_rect", "ferri_rect"))
    doc = LM.run(plan, None, log=lambda m: None)
    st = doc["settings"]
    assert st["k_sampling_check_meV_per_ion"] == pytest.approx(2.0, abs=1e-9)
    assert not np.allclose([doc["J1"], doc["J2"], doc["J3"]], J_TRUE, atol=0.05)  # the offset biases the plain fit
    same = st["fits"]["same cell (rectangular-cell energies referenced to FM_rect)"]
    assert same["shift_meV_per_ion"] == pytest.approx(-2.0, abs=1e-9)
    assert max(abs(x) for x in same["residuals_meV_per_ion"].values()) > 0.05  # ferri's extra energy shows up
    # without the ferrimagnet's extra energy the same-cell fit is exact again
    state["extra"] = {}
    for f in (tmp_path / "rect").glob("ferri_rect_*.json"):
        f.unlink()
    doc = LM.run(plan, None, log=lambda m: None)
    same = doc["settings"]["fits"]["same cell (rectangular-cell energies referenced to FM_rect)"]
    assert np.allclose(same["J_meV"], J_TRUE, atol=1e-9)
    assert max(abs(x) for x in same["residuals_meV_per_ion"].values()) < 1e-9


def test_unconverged_configuration_is_stored_as_such_and_no_number_is_made(tmp_path, fake):
    calls, state, confs = fake
    state["fail"] = {"stripy"}
    plan = plan_in(tmp_path, confs)
    out = tmp_path / "CrI3_lda_mapping.json"
    doc = LM.run(plan, out, log=lambda m: None)
    f = json.loads((tmp_path / "rect" / sp.point_filename("stripy", (0, 0, 0))).read_text())
    assert f["converged"] is False and f["energy"] is None
    assert doc["status"] == "not computed" and doc["J1"] is None
    assert "underdetermined" in doc["reason"] and "4 of 5" in doc["reason"]
    assert doc["settings"]["not_converged"][0]["configuration"] == "stripy"
    assert doc["configurations"]["stripy"]["status"] == "not converged"
    row = read_route_file(out, "CrI3", 1.5)[0]
    assert row.status == "not computed" and row.J1 is None and "underdetermined" in row.reason


def test_a_stored_point_with_other_settings_is_refused(tmp_path, fake, capsys):
    calls, state, confs = fake
    plan = plan_in(tmp_path, confs)
    conf, wd, kw, _ = plan.items[0]
    sp.spiral_energies(conf, [(0, 0, 0)], workdir=wd, log=None, **{**kw, "ecut": 300.0})
    assert LM.main(["CrI3", "--spiral-dir", str(tmp_path / "spiral"), "--work-dir", str(tmp_path / "rect"),
                    "--out", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "differing: ecut" in err[0] and "FM_q" in err[0]
    with pytest.raises(DFTError, match="unknown configuration"):
        LM.Plan("CrI3", ("zigzag", "diagonal"))
