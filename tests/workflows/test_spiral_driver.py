"""The spin-spiral driver (wannmag.workflows.spiral) with a fake GPAW whose energies are the classical E(q) of a
known J1–J3 model (so the whole chain driver → JSON → realised phases → fit must give the model's J back), plus
two slow live GPAW checks (the API works; GPAW's spiral frame co-rotates with q·r)."""

import json
import math
import sys
import warnings

import numpy as np
import pytest

import wannmag.workflows.spiral as sp
from wannmag.magnetism.spiral import corotating_phases, spiral_energy
from wannmag.structures import honeycomb_configuration, read_structure
from wannmag.workflows.dft import DFTError

CIF = "data/structures/CrI3_monolayer.cif"
J_TRUE = (-3.55, -0.59, 0.21)
E0_EV = -40.0
ZONE = [(0, 0, 0), (0.5, 0, 0), (1 / 3, 1 / 3, 0), (0.25, 0, 0), (5 / 12, 1 / 6, 0), (1 / 6, 1 / 6, 0),
        (0.1, 0, 0), (0.15, 0, 0)]


def true_model(J=None):
    J = J_TRUE if J is None else J   # the module's J_TRUE at call time (a test may monkeypatch it)
    model = sp.spiral_model(CIF, len(J))
    for b in model.bonds:
        b.J = J[b.shell - 1] * np.eye(3)
    return model


class FakeCalc:
    """Stands in for GPAW: energy E0 + classical E(q) of the true model on the co-rotating spiral, moments with
    GPAW's sense of rotation (in-plane angle −φ_a), optionally not converging."""

    def __init__(self, params, txt, calls, fail_q=(), J=None):
        self.params, self.calls, self.J = params, calls, J
        self.fail = any(np.allclose(params["q"], f) for f in fail_q)
        calls.append(params["q"])
        with open(txt, "w") as fh:
            fh.write("fake gpaw log\n  Valence electrons: 54.0\n")

    def _phases(self):
        model = true_model(self.J)
        sigma = self.params["sigma"]
        return model, corotating_phases(model, [self.params["q"]], sigma)[0]

    def get_potential_energy(self, atoms=None, force_consistent=False):
        if self.fail:
            from gpaw import KohnShamConvergenceError

            raise KohnShamConvergenceError("fake")
        model, ph = self._phases()
        return E0_EV + spiral_energy(model, [self.params["q"]], ph)[0] / 1000.0

    def get_number_of_iterations(self):
        return 80 if self.fail else 17

    def get_non_collinear_magnetic_moments(self):
        _, ph = self._phases()
        m = np.zeros((len(self.params["symbols"]), 3))
        for k, a in enumerate((0, 1)):
            m[a] = 3.0 * np.array([math.cos(-ph[k]), math.sin(-ph[k]), 0.0])
        return m

    def get_fermi_level(self):
        return 0.0

    def get_ibz_k_points(self):
        return np.zeros((2, 3))

    def get_eigenvalues(self, kpt=0, spin=0):
        return np.array([-1.0, -0.5, 0.7, 1.2])


@pytest.fixture
def fake(monkeypatch):
    calls = []
    state = {"fail_q": [(1 / 3, 1 / 3, 0)], "J": None}

    def factory(params, txt):
        return FakeCalc(params, txt, calls, state["fail_q"], state["J"])

    monkeypatch.setattr(sp, "_make_spiral_calculator", factory)
    return calls, state


def run(tmp_path, patterns=(("FM", ZONE), ("Neel", [(0, 0, 0)]))):
    atoms = read_structure(CIF)
    out = []
    for name, qs in patterns:
        conf = honeycomb_configuration(atoms, name)
        out += sp.spiral_energies(conf, qs, U=3.0, ecut=250, kpts=(3, 3, 1), workdir=tmp_path, log=None)
    return out


def test_driver_writes_resumes_and_fit_recovers_model(tmp_path, fake):
    calls, state = fake
    pts = run(tmp_path)
    assert len(calls) == len(ZONE) + 1
    files = sorted(tmp_path.glob("*.json"))
    assert len(files) == len(ZONE) + 1
    assert len(list(tmp_path.glob("*.txt.gz"))) == len(ZONE) + 1 and not list(tmp_path.glob("*.txt"))
    failed = [p for p in pts if not p.converged]
    assert len(failed) == 1 and failed[0].energy is None and failed[0].iterations == 80
    assert "not converged" in failed[0].error
    d = json.loads(files[0].read_text())
    assert sp.SpiralPoint.from_dict(d).as_dict() == d  # round trip
    ok = pts[1]  # M, FM: GPAW angles −60°, −120° for Cr at (1/3, 2/3), (2/3, 1/3)
    assert np.allclose(ok.angles_deg, [-60.0, -120.0], atol=1e-6)
    assert ok.gap == pytest.approx(1.2) and ok.seconds is not None

    # resume: nothing is recomputed
    calls.clear()
    run(tmp_path)
    assert calls == []
    # a different parameter set in the same directory is refused, not overwritten
    atoms = read_structure(CIF)
    with pytest.raises(DFTError, match="different parameters"):
        sp.spiral_energies(honeycomb_configuration(atoms, "FM"), [(0, 0, 0)], U=3.0, ecut=300, kpts=(3, 3, 1),
                           workdir=tmp_path, log=None)

    # the fit: the unconverged K point is excluded with a warning, the rest gives the model's J back
    model = sp.spiral_model(CIF, 3)
    with pytest.warns(UserWarning, match="excluded from the fit"):
        res = sp.fit_points(model, sp.load_points(tmp_path), "FM")
    assert res["n_converged"] == len(ZONE) and len(res["excluded"]) == 1
    assert np.allclose(res["fit"]["J"], J_TRUE, atol=1e-6)
    assert max(abs(r) for r in res["fit"]["residuals"]) < 1e-6
    assert res["fit"]["E0"] == pytest.approx(E0_EV * 1000, abs=1e-6)
    st = res["stiffness"]
    assert st["n_points"] == 2 and st["D"] == pytest.approx(st["D_from_fitted_J"], rel=0.05)

    out = tmp_path / "CrI3_spiral.json"
    with pytest.warns(UserWarning):
        line = sp.fit_material_points(CIF, tmp_path, "FM", out=out, material="CrI3")
    assert "J1 = -3.550" in line
    assert json.loads(out.read_text())["fit"]["J"][0] == pytest.approx(J_TRUE[0], abs=1e-6)
    # relative energies beside the prediction of a reference J set (here the true one: equal)
    with pytest.warns(UserWarning):
        sp.fit_material_points(CIF, tmp_path, "FM", out=out, material="CrI3",
                               reference={"truth": dict(zip(("J1", "J2", "J3"), J_TRUE))})
    rel = json.loads(out.read_text())["relative_energies"]
    assert len(rel) == len(ZONE) and all(abs(r["dE_meV_per_cell"] - r["predicted"]["truth"]) < 1e-6 for r in rel)
    # the fit file is a route file of the exchange comparison
    from wannmag.magnetism.routes import read_route_file

    row = read_route_file(out, "CrI3", 1.5)[0]
    assert row.name == "spin spiral (self-consistent)" and row.J1 == pytest.approx(J_TRUE[0], abs=1e-6)


def test_too_few_points_give_no_fit_and_say_why(tmp_path, fake):
    calls, state = fake
    state["fail_q"] = []
    run(tmp_path, patterns=(("FM", ZONE[:3]),))
    res = sp.fit_points(sp.spiral_model(CIF, 3), sp.load_points(tmp_path), "FM")
    assert res["fit"] is None and "cannot determine" in res["fit_error"]
    out = tmp_path / "CrI3_spiral.json"
    sp.fit_material_points(CIF, tmp_path, "FM", out=out, material="CrI3")
    from wannmag.magnetism.routes import read_route_file

    row = read_route_file(out, "CrI3", 1.5)[0]
    assert row.J1 is None and row.status == "not computed" and "cannot determine" in row.reason


def test_bad_settings_are_refused(tmp_path, fake):
    atoms = read_structure(CIF)
    conf = honeycomb_configuration(atoms, "FM")
    with pytest.raises(DFTError, match="only LDA"):
        sp.spiral_energies(conf, [(0, 0, 0)], xc="PBE", workdir=tmp_path, log=None)
    with pytest.raises(DFTError, match="primitive cell"):
        sp.spiral_energies(honeycomb_configuration(atoms, "zigzag"), [(0.5, 0, 0)], workdir=tmp_path, log=None)
    # q = 0 in a supercell is a collinear state in the non-collinear mode: accepted (parameters only, no run)
    zz = sp.spiral_parameters(honeycomb_configuration(atoms, "zigzag"), (0, 0, 0))
    assert zz["sigma"] == [1, 1, -1, -1] and len(zz["symbols"]) == 16
    with pytest.raises(DFTError, match="finite"):
        sp.spiral_energies(conf, [(np.nan, 0, 0)], workdir=tmp_path, log=None)


@pytest.mark.slow
def test_live_gpaw_spiral_frame_corotates(tmp_path):
    """GPAW (new PW mode, qspiral): the energy of an H2 chain spiral does not change under a rigid translation, and
    the returned moments turn by −2π q·s with the atom's reduced position s (the frame of the docstring)."""
    from ase import Atoms
    from gpaw.new.ase_interface import GPAW

    a, q = 2.5, 0.25
    res = []
    for x in (0.0, 0.25 * a):
        h = Atoms("H2", positions=[(x, 0, 0), (x + a, 0, 0)], cell=[2 * a, 0, 0], pbc=[1, 0, 0])
        h.center(vacuum=2.0, axis=(1, 2))
        h.calc = GPAW(mode={"name": "pw", "ecut": 250, "qspiral": [q, 0, 0]}, magmoms=[[1, 0, 0], [1, 0, 0]],
                      symmetry="off", kpts=(4, 1, 1), xc="LDA", occupations={"name": "fermi-dirac", "width": 0.05},
                      txt=None)
        e = h.get_potential_energy()
        m = h.calc.get_non_collinear_magnetic_moments()
        res.append((e, np.degrees(np.arctan2(m[:, 1], m[:, 0])), h.get_scaled_positions()[:, 0]))
    assert res[0][0] == pytest.approx(res[1][0], abs=2e-4)
    for e, ang, s in res:
        rel = (ang[1] - ang[0] + 180) % 360 - 180
        assert rel == pytest.approx(-360 * q * (s[1] - s[0]), abs=2.0)
    assert (res[1][1][0] - res[0][1][0]) == pytest.approx(-360 * q * (res[1][2][0] - res[0][2][0]), abs=2.0)

    # decisive: the 2a cell at q = ½ with both start moments along x is the uniform 90°-per-a spiral of the 1-atom
    # chain at q = ¼ (same energy per atom), and the returned moments show its physical relative angle (−90°)
    def chain(n, qq, mags):
        h = Atoms(f"H{n}", positions=[(i * a, 0, 0) for i in range(n)], cell=[n * a, 0, 0], pbc=[1, 0, 0])
        h.center(vacuum=2.0, axis=(1, 2))
        h.calc = GPAW(mode={"name": "pw", "ecut": 300, "qspiral": [qq, 0, 0]}, magmoms=mags, symmetry="off",
                      kpts=(8 // n, 1, 1), xc="LDA", occupations={"name": "fermi-dirac", "width": 0.05}, txt=None,
                      convergence={"energy": 1e-7, "density": 1e-6})
        e = h.get_potential_energy() / n
        m = h.calc.get_non_collinear_magnetic_moments()
        return e, np.degrees(np.arctan2(m[:, 1], m[:, 0]))

    e1, _ = chain(1, 0.25, [[1, 0, 0]])
    e2, ang2 = chain(2, 0.5, [[1, 0, 0], [1, 0, 0]])
    assert e2 == pytest.approx(e1, abs=1e-6)
    assert (ang2[1] - ang2[0] + 180) % 360 - 180 == pytest.approx(-90.0, abs=2.0)


@pytest.mark.slow
def test_live_driver_one_point(tmp_path):
    """The driver end to end on a 1-atom bcc Fe cell (LDA, small settings, < 1 min)."""
    from ase.build import bulk

    pts = sp.spiral_energies(bulk("Fe", "bcc", a=2.87), [(0.1, 0, 0)], U=0.0, ecut=200, kpts=(2, 2, 2),
                             workdir=tmp_path, maxiter=40, smearing=0.1, log=None)
    p = pts[0]
    assert p.converged and math.isfinite(p.energy) and p.iterations > 1
    assert 1.5 < np.linalg.norm(p.moments[0]) < 3.5
    assert (tmp_path / sp.point_filename("FM", [0.1, 0, 0])).exists()


@pytest.mark.parametrize("pattern,J", [("FM", J_TRUE), ("Neel", (3.0, 0.4, 1.2))])
def test_stiffness_set_recovers_the_model_stiffness(tmp_path, fake, monkeypatch, pattern, J):
    """The stiffness set (Γ, q = 0.1, 0.15, 0.05 along Γ–M at the tight criterion) of a classical model: D of the
    fit equals the exact q² coefficient of that model (stiffness_tensor) to the O(q⁶) truncation, also on the Néel
    pattern of an antiferromagnet; the routes' D are computed from their J; too few points give no number."""
    from wannmag.magnetism.spiral import stiffness_tensor

    monkeypatch.setattr(sys.modules[__name__], "J_TRUE", J)
    calls, state = fake
    state["fail_q"] = []
    conf = honeycomb_configuration(read_structure(CIF), pattern)
    tight = {"energy": 2e-7, "density": 1e-5, "eigenstates": 1e-6}
    for x in (0.0, 0.1):
        sp.spiral_energies(conf, [(x, 0, 0)], U=3.0, ecut=250, kpts=(3, 3, 1), workdir=tmp_path, log=None,
                           convergence=tight)
    few = sp.stiffness_from_points(CIF, tmp_path, pattern)
    assert few["D"] is None and few["status"] == "not computed" and "2 converged points" in few["reason"]
    for x in (0.15, 0.05):
        sp.spiral_energies(conf, [(x, 0, 0)], U=3.0, ecut=250, kpts=(3, 3, 1), workdir=tmp_path, log=None,
                           convergence=tight)
    out = tmp_path / "stiff.json"
    doc = sp.stiffness_from_points(CIF, tmp_path, pattern, out=out, material="CrI3",
                                   reference={"truth": dict(zip(("J1", "J2", "J3"), J)),
                                              "half": {"J1": J[0] / 2, "J2": J[1] / 2, "J3": J[2] / 2},
                                              "given": {"J1": J[0], "J2": J[1], "J3": J[2], "D": 123.4,
                                                        "source": "x.json"}})
    model = true_model()
    u = np.asarray(doc["direction"])
    D_exact = float(u @ stiffness_tensor(model, conf.pattern, frame="bond") @ u)
    assert doc["status"] == "fitted" and doc["n_points"] == 3 and D_exact > 0
    assert doc["D"] == pytest.approx(D_exact, rel=2e-3)
    assert doc["exact_from_two_points"]["D"] == pytest.approx(D_exact, rel=2e-3)
    assert doc["D_from_routes"]["truth"]["D"] == pytest.approx(D_exact, rel=1e-12)
    assert doc["D_from_routes"]["half"]["D"] == pytest.approx(D_exact / 2, rel=1e-12)
    # a route that summed all its J(R) gives its D; its J1–J3 D is kept beside it
    assert doc["D_from_routes"]["given"]["D"] == 123.4
    assert doc["D_from_routes"]["given"]["D_J1_J3"] == pytest.approx(D_exact, rel=1e-12)
    assert all(max(abs(x) for x in p["deviation_from_corotating_deg"]) < 1e-6 for p in doc["phase_deviation"])
    assert json.loads(out.read_text())["D"] == pytest.approx(doc["D"])
    assert doc["settings"]["convergence"] == tight


def test_shell_scan_finds_the_shell_the_model_has(tmp_path, fake, monkeypatch):
    """A classical J1–J4 model behind the fake GPAW, its zone points and small-q points in two folders: the 3-shell
    fit leaves residuals, the 4-shell fit recovers J1–J4 exactly with zero residual and the model's stiffness; the
    predictions at a q not computed are the model's energy minimised over the sublattice angle."""
    from wannmag.magnetism.spiral import pattern_phases, stiffness_tensor

    J4 = (-3.7, -0.8, 0.02, 0.16)

    def model4(J=None):
        m = sp.spiral_model(CIF, 4)
        for b in m.bonds:
            b.J = J4[b.shell - 1] * np.eye(3)
        return m

    monkeypatch.setattr(sys.modules[__name__], "true_model", model4)
    calls, state = fake
    state["fail_q"] = []
    main, small = tmp_path / "main", tmp_path / "small"
    run(main, patterns=(("FM", [(0, 0, 0), (0.5, 0, 0), (1 / 3, 1 / 3, 0), (0.25, 0, 0)]), ("Neel", [(0, 0, 0)])))
    run(small, patterns=(("FM", [(0, 0, 0), (0.05, 0, 0), (0.1, 0, 0), (0.15, 0, 0)]),))
    q_new = (1 / 6, 1 / 6, 0)
    doc = sp.shell_scan(CIF, [main, small], "FM", shells=(3, 4), stiffness={"D": 1.0}, predict=[q_new])
    f3, f4 = doc["fits"]
    assert doc["n_points"] == 9 and f3["status"] == f4["status"] == "fitted"
    assert f3["rms_residual"] > 1e-3 and f4["rms_residual"] < 1e-6
    assert np.allclose(f4["J"], J4, atol=1e-6)
    m = model4()
    u = np.linalg.inv(m.cell).T[0] / np.linalg.norm(np.linalg.inv(m.cell).T[0])
    assert f4["D_from_J"] == pytest.approx(float(u @ stiffness_tensor(m, [1, 1], frame="bond") @ u), rel=1e-6)
    assert f4["D_ratio_to_stiffness_set"] == pytest.approx(f4["D_from_J"])
    grid = np.radians(np.arange(0.0, 360.0, 0.1))
    e = spiral_energy(m, np.repeat([q_new], len(grid), axis=0), np.stack([0 * grid, grid], axis=1))
    e0 = spiral_energy(m, [np.zeros(3)], pattern_phases([1, 1])[None, :])[0]
    (p,) = f4["predictions"]
    assert p["dE_meV_per_cell"] == pytest.approx(float(e.min() - e0), abs=1e-6)  # fitted J exact to ~1e-9
    # the fake's co-rotating spiral is not lower than the relaxed minimum the prediction assumes
    co = spiral_energy(m, [q_new], corotating_phases(m, [q_new], [1, 1]))[0] - e0
    assert co >= p["dE_meV_per_cell"] - 1e-6
    few = sp.shell_scan(CIF, [small], "FM", shells=(4,))
    assert few["fits"][0]["status"] == "not determined" and "no residual degree of freedom" in few["fits"][0]["reason"]


def test_high_symmetry_points_of_the_hexagonal_zone():
    from wannmag.magnetism.spiral import high_symmetry_label

    cell = read_structure(CIF).cell[:]
    expect = {(0, 0, 0): "Γ", (1, 0, 0): "Γ", (0.5, 0, 0): "M", (0, 0.5, 0): "M", (0.5, 0.5, 0): "M",
              (1 / 3, 1 / 3, 0): "K", (-1 / 3, -1 / 3, 0): "K", (1 / 6, 1 / 6, 0): None, (0.25, 0, 0): None,
              (5 / 12, 1 / 6, 0): None, (1 / 3, 0, 0): None, (0.05, 0, 0): None}
    for q, lab in expect.items():
        assert high_symmetry_label(cell, q) == lab, q
    # a rectangular in-plane cell has no hexagonal M/K
    assert high_symmetry_label(np.diag([3.0, 5.0, 20.0]), (0.5, 0, 0)) is None
    assert high_symmetry_label(np.diag([3.0, 5.0, 20.0]), (0, 0, 0)) == "Γ"


def test_route_file_gamma_m_k_row_and_every_point_row_recover_a_j1_j4_model(tmp_path, fake):
    """E(q) of a J1–J4 model: the Γ/M/K row is exactly determined and folds J4 into J1–J3 (so it differs from the
    truth); the every-point row (main set + a small-q folder) selects four shells by the SCF tolerance (GPAW's
    1e-5 eV per valence electron × 54 electrons = 0.54 meV per cell, read from the logs) and gives J1–J4 back."""
    from wannmag.magnetism.routes import read_route_file

    calls, state = fake
    J4 = (-3.55, -0.59, 0.21, 0.16)
    state.update(fail_q=[], J=J4)
    main, small = tmp_path / "main", tmp_path / "small"
    atoms = read_structure(CIF)
    sp.spiral_energies(honeycomb_configuration(atoms, "FM"), ZONE[:6], U=3.0, ecut=250, kpts=(3, 3, 1),
                       workdir=main, log=None)
    sp.spiral_energies(honeycomb_configuration(atoms, "Neel"), [(0, 0, 0)], U=3.0, ecut=250, kpts=(3, 3, 1),
                       workdir=main, log=None)
    sp.spiral_energies(honeycomb_configuration(atoms, "FM"), [(0, 0, 0), (0.05, 0, 0), (0.1, 0, 0)], U=3.0,
                       ecut=250, kpts=(3, 3, 1), workdir=small, log=None)
    assert sp.scf_tolerance_meV_per_cell([main, small]) == pytest.approx(0.54)
    out = tmp_path / "CrI3_spiral.json"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        line = sp.fit_material_points(CIF, main, "FM", out=out, material="CrI3", select="high_symmetry",
                                      all_points_dirs=[small])
    doc = json.loads(out.read_text())
    assert doc["settings"]["n_points"] == 4 and len(doc["excluded"]) == 3
    assert all("not at Γ, M or K" in e["reason"] for e in doc["excluded"])
    hs, every = read_route_file(out, "CrI3", 1.5)
    assert hs.name == "spin spiral (self-consistent)" and hs.J1 == pytest.approx(doc["J1"])
    assert abs(hs.J1 - J4[0]) > 0.05     # J4 folded into J1–J3 at Γ, M, K
    assert every.name.endswith("every point, J1–J4") and every.settings["n_shells"] == 4
    assert np.allclose(every.settings["J_meV"], J4, atol=1e-6)
    assert every.settings["n_points"] == 10 and every.settings["rms_residual_meV_per_cell"] < 1e-6
    assert "J1–J4" in line and doc["shell_selection"]["tolerance_meV_per_cell"] == pytest.approx(0.54)
    # J1–J3 over every point cannot describe the J4 curve: its rms is recorded, not hidden
    j3 = next(f for f in doc["shell_selection"]["fits"] if f["n_shells"] == 3)
    assert j3["rms_residual"] > 0.1
