"""The GPAW four-state driver (wannmag.workflows.fourstate_dft) with fake calculators (no GPAW run): energies of a
known anisotropic spin model computed from the start moments the driver hands to the calculator (so the site → atom
mapping, the JSON cache and the four-state algebra are tested together and must give K, Γ, Γ′, J and A back
exactly), a fake whose SCF turns or flips a moment (the point is flagged and never used), and bad input."""

import numpy as np
import pytest

import wannmag.workflows.fourstate_dft as fs
from wannmag.magnetism import SpinModel
from wannmag.magnetism.anisotropy.fourstate import (extract_anisotropic_model, kitaev_frame, kitaev_parameters,
                                                    kitaev_tensor, n_energies, site_index)
from wannmag.structures import find_magnetic_sites, neighbour_shells, read_structure
from wannmag.workflows.dft import DFTError

CIF = "data/structures/CrI3_monolayer.cif"
KIT = {"J": -0.9, "K": -4.1, "Gamma": 0.35, "Gamma_prime": -0.12}       # meV, nearest-neighbour bond
A_TRUE = np.array([[0.05, 0.02, -0.01], [0.02, 0.08, 0.03], [-0.01, 0.03, -0.13]])  # traceless, meV
E0_EV = -250.0


@pytest.fixture(scope="module")
def truth():
    sub = find_magnetic_sites(read_structure(CIF))
    model = SpinModel.from_sublattice(sub)
    shells = neighbour_shells(sub, 3)
    for b in shells[0].bonds:
        F = kitaev_frame(sub, b.i, b.j, b.R)
        model.add_bond(b.i, b.j, b.R, kitaev_tensor(KIT["J"], KIT["K"], KIT["Gamma"], KIT["Gamma_prime"], F), shell=1)
    for b in shells[1].bonds:
        Jt = -0.2 * np.eye(3)
        s = 0.07 if b.i == 0 else -0.07
        Jt[0, 1], Jt[1, 0] = s, -s
        model.add_bond(b.i, b.j, b.R, Jt, shell=2)
    for b in shells[2].bonds:
        model.add_bond(b.i, b.j, b.R, np.diag([0.1, 0.1, 0.13]), shell=3)
    model.single_ion = [A_TRUE.copy(), A_TRUE.copy()]
    return sub, model


class FakeCalc:
    """Stands in for GPAW: reads the start moments it is given (by atom, as GPAW would), finds the spin-model site
    of each Cr atom by position on its own, and returns E0 + the classical energy (eV) of the realised directions.
    ``turn(params) -> (atom, rotation matrix) or None`` makes the SCF turn one moment (energy of the turned state)."""

    def __init__(self, model, params, txt, calls, turn=None, fail=None):
        self.params, self.model = params, model
        calls.append(params)
        with open(txt, "w") as fh:
            fh.write("fake gpaw log\n")
        mag = np.asarray(params["initial_magmoms"], float)
        self.moments = mag * (3.1 / 3.0)
        if turn is not None and turn(params) is not None:
            a, Rm = turn(params)
            self.moments[a] = Rm @ self.moments[a]
        self.fail = fail is not None and fail(params)

    def _energy_meV(self):
        P = np.asarray(self.params["supercell"])
        big, _ = self.model.supercell(P)
        cell = np.asarray(self.params["cell"], float)
        pos = np.asarray(self.params["positions"], float)
        syms = self.params["symbols"]
        spins = np.zeros((big.n_sites, 3))
        for k, s in enumerate(big.sites):
            d = (pos - s.position) @ np.linalg.inv(cell)
            d[:, :2] -= np.round(d[:, :2])
            a = int(np.argmin(np.linalg.norm(d @ cell, axis=1)))
            assert syms[a] == "Cr"
            m = self.moments[a]
            spins[k] = s.spin * m / np.linalg.norm(m)
        return big.energy(spins)

    def get_potential_energy(self, atoms=None, force_consistent=False):
        if self.fail:
            from gpaw import KohnShamConvergenceError

            raise KohnShamConvergenceError("fake")
        return E0_EV + self._energy_meV() / 1000.0

    def get_number_of_iterations(self):
        return 120 if self.fail else 23

    def get_non_collinear_magnetic_moments(self):
        return self.moments.copy()


def make_engine(model, tmp_path, calls, turn=None, fail=None, **kw):
    def factory(params, txt):
        return FakeCalc(model, params, txt, calls, turn=turn, fail=fail)

    return fs.FourStateDFT(CIF, supercell=(2, 2, 1), workdir=tmp_path, make_calculator=factory, log=None, **kw)


def bond_sites(eng):
    """Supercell indices (i, j) of the engine's default nearest-neighbour bond."""
    i, j, R = eng.nearest_bond()
    m = eng.template
    return site_index(eng.big, m.sites[i].position), site_index(eng.big, m.sites[j].position + np.array(R) @ m.cell)


def test_exact_recovery_of_kitaev_parameters_and_single_ion(truth, tmp_path):
    sub, model = truth
    calls = []
    eng = make_engine(model, tmp_path, calls)
    assert eng.n_sites == 8 and len(eng.super_atoms) == 32
    res = fs.four_state_check(eng)           # one nearest-neighbour bond + both Cr
    assert res.status == "complete" and not res.excluded
    # 36 + 2 × 12 energies; the "+z" single-ion state of both sites is the same all-+z state: computed once
    assert res.n_points == len(calls) == n_energies(1, 2) - 1 == 59
    (b,) = res.bonds
    k = b["kitaev"]
    assert (k["J"], k["K"], k["Gamma"], k["Gamma_prime"]) == pytest.approx(
        (KIT["J"], KIT["K"], KIT["Gamma"], KIT["Gamma_prime"]), abs=1e-9)
    assert k["residual"] < 1e-9 and np.allclose(b["D_meV"], 0.0, atol=1e-9)
    assert b["length_A"] == pytest.approx(neighbour_shells(sub, 1)[0].distance, abs=1e-6)
    for s in res.single_ion:
        assert np.allclose(s["A_meV"], A_TRUE, atol=1e-9)
        assert s["A_zz_minus_mean_xy_meV"] == pytest.approx(A_TRUE[2, 2] - 0.5 * (A_TRUE[0, 0] + A_TRUE[1, 1]),
                                                            abs=1e-9)
    # one JSON per direction set, named by its content hash; a gzipped log next to each
    assert len(list(tmp_path.glob("fourstate_*.json"))) == 59
    assert len(list(tmp_path.glob("fourstate_*.txt.gz"))) == 59 and not list(tmp_path.glob("*.txt"))
    # the constraint and the start moments the calculator received: along the requested directions, 2S μ_B
    p = calls[0]
    assert p["soc"] is True and p["penalty"] == fs.PENALTY_EV and p["xc"] == "LDA" and p["U"] == {"Cr": 3.0}
    mag = np.asarray(p["initial_magmoms"])
    assert np.allclose(mag[p["site_atoms"]], 3.0 * np.asarray(p["directions"]))
    assert np.allclose(np.delete(mag, p["site_atoms"], axis=0), 0.0)
    # the result round-trips
    assert fs.FourStateCheck.from_dict(res.as_dict()).as_dict() == res.as_dict()

    # resume: the engine is the callable extract_anisotropic_model consumes; every point is read back, none rerun
    calls.clear()
    eng2 = make_engine(model, tmp_path, calls)
    bond = eng2.nearest_bond()
    fitted = extract_anisotropic_model(eng2, eng2.template, eng2.P, bonds=[bond])
    assert calls == [] and eng2.calls == 0
    F = kitaev_frame(sub, *bond)
    kk = kitaev_parameters(fitted.bonds[0].J, F)
    assert kk["K"] == pytest.approx(KIT["K"], abs=1e-9) and kk["Gamma"] == pytest.approx(KIT["Gamma"], abs=1e-9)
    assert np.allclose(fitted.single_ion[1], A_TRUE, atol=1e-9)


def test_turned_or_flipped_moment_is_flagged_never_used(truth, tmp_path):
    _, model = truth
    calls = []
    ang = np.radians(10.0)
    Rz = np.array([[np.cos(ang), -np.sin(ang), 0], [np.sin(ang), np.cos(ang), 0], [0, 0, 1.0]])

    probe = make_engine(model, tmp_path, [])
    ii, jj = bond_sites(probe)

    def turn(params):
        d = np.asarray(params["directions"])
        a = params["site_atoms"][ii]
        if np.allclose(d[ii], [1, 0, 0]) and np.allclose(d[jj], [0, 1, 0]):    # (+, +) of the xy component
            return a, Rz
        if np.allclose(d[ii], [0, 0, -1]) and np.allclose(d[jj], [1, 0, 0]):   # (−, +) of zx: the SCF flips i
            return a, -np.eye(3)
        return None

    eng = make_engine(model, tmp_path, calls, turn=turn)
    res = fs.four_state_check(eng, single_ion_sites=[])
    assert res.status == "incomplete" and res.bonds == [] and res.single_ion == []
    assert res.n_points == 36 and res.n_usable == 34
    reasons = sorted(e["reason"] for e in res.excluded)
    assert any(f"site {ii} " in r and "turned 10.0°" in r for r in reasons)
    assert any(f"site {ii} " in r and "turned 180.0°" in r for r in reasons)
    # the callable refuses such a point with one line naming it; the four-state extraction cannot use it
    bad = next(e for e in res.excluded if "10.0" in e["reason"])
    pt = fs.FourStatePoint.from_dict(__import__("json").loads((tmp_path / bad["file"]).read_text()))
    with pytest.raises(fs.PointRejected) as exc:
        eng(pt.directions)
    assert "\n" not in str(exc.value) and bad["key"] in str(exc.value)
    with pytest.raises(DFTError):
        extract_anisotropic_model(eng, eng.template, eng.P, bonds=[eng.nearest_bond()], single_ion=False)
    # a looser tolerance re-judges the stored 10° point (not the flip); stored points are not recomputed
    n = len(calls)
    loose = make_engine(model, tmp_path, calls, turn=turn, tolerance_deg=15.0)
    assert loose(pt.directions) == pytest.approx(pt.energy * 1000.0) and len(calls) == n


def test_unconverged_point_is_excluded(truth, tmp_path):
    _, model = truth
    calls = []

    probe = make_engine(model, tmp_path, [])
    ii, jj = bond_sites(probe)

    def fail(params):   # the (+, +) configuration of the zz component
        d = np.asarray(params["directions"])
        return np.allclose(d[ii], [0, 0, 1]) and np.allclose(d[jj], [0, 0, 1])

    eng = make_engine(model, tmp_path, calls, fail=fail)
    res = fs.four_state_check(eng, single_ion_sites=[])
    assert res.status == "incomplete"
    assert [e["reason"] for e in res.excluded] == ["SCF not converged in 120 iterations"]
    stored = [fs.FourStatePoint.from_dict(__import__("json").loads(p.read_text()))
              for p in tmp_path.glob("fourstate_*.json")]
    assert sum(1 for p in stored if not p.converged and p.energy is None) == 1


def test_gpaw_keywords_are_accepted_by_gpaw_parameters(truth, tmp_path):
    _, model = truth
    eng = make_engine(model, tmp_path, [])
    d = np.zeros((8, 3))
    d[:, 2] = 1.0
    d[0] = [1.0, 0.0, 0.0]
    params = eng.parameters(d)
    kw = fs.gpaw_keywords(params)
    assert kw["soc"] is True and kw["symmetry"] == "off" and kw["setups"] == {"Cr": ":d,3.0"}
    (ext,) = kw["extensions"]
    assert sorted(ext["constraint"]) == sorted(params["site_atoms"])
    assert ext["constraint"][params["site_atoms"][0]] == [1.0, 0.0, 0.0]
    from gpaw.dft import Parameters
    from gpaw.new.constraints import SpinDirectionConstraint

    p = Parameters(**kw)                       # GPAW 26.7's own parameter parsing, no calculation
    assert p.soc is True
    (c,) = p.extensions
    assert isinstance(c, SpinDirectionConstraint)
    assert np.allclose(c.constraint[params["site_atoms"][0]], [1, 0, 0])
    # the same directions give the same key (−0.0 and rounding noise included); another direction another key
    assert fs.point_key(eng.parameters(-(-d) + 1e-13)) == fs.point_key(params)
    d2 = d.copy()
    d2[0] = [0.0, 1.0, 0.0]
    assert fs.point_key(eng.parameters(d2)) != fs.point_key(params)
    # unconstrained and SOC-free variants are distinct parameter sets (the null test)
    free = fs.FourStateDFT(CIF, supercell=(2, 2, 1), workdir=tmp_path, penalty=None, soc=False, log=None)
    assert "extensions" not in fs.gpaw_keywords(free.parameters(d))
    assert fs.point_key(free.parameters(d)) != fs.point_key(params)


def test_bad_input_is_one_error_line(truth, tmp_path):
    _, model = truth
    eng = make_engine(model, tmp_path, [])
    d = np.tile([0.0, 0.0, 1.0], (8, 1))
    cases = []
    d0 = d.copy()
    d0[3] = 0.0
    cases.append(("zero-length", lambda: eng(d0)))
    cases.append(("shape", lambda: eng(d[:5])))
    cases.append(("outside 0..1", lambda: fs.four_state_check(eng, bonds=[(0, 5, (0, 0, 0))], single_ion_sites=[])))
    cases.append(("outside 0..1", lambda: fs.four_state_check(eng, bonds=[], single_ion_sites=[7])))
    cases.append(("not a chemical element", lambda: fs.FourStateDFT(CIF, U={"Xx": 3.0}, workdir=tmp_path)))
    cases.append(("not in the structure", lambda: fs.FourStateDFT(CIF, U={"Fe": 3.0}, workdir=tmp_path)))
    cases.append(("only LDA", lambda: fs.FourStateDFT(CIF, xc="PBE", workdir=tmp_path)))
    cases.append(("too small", lambda: fs.four_state_check(
        fs.FourStateDFT(CIF, supercell=(1, 1, 1), workdir=tmp_path, log=None), single_ion_sites=[])))
    cases.append(("too small", lambda: fs.four_state_check(
        fs.FourStateDFT(CIF, supercell=(1, 1, 1), workdir=tmp_path, log=None), bonds=[])))
    cases.append(("positive determinant", lambda: fs.FourStateDFT(CIF, supercell=(2, 0, 1), workdir=tmp_path)))
    cases.append(("k-point", lambda: fs.FourStateDFT(CIF, kpts=(2, 0, 1), workdir=tmp_path)))
    cases.append(("penalty", lambda: fs.FourStateDFT(CIF, penalty=-1.0, workdir=tmp_path)))
    for match, fn in cases:
        with pytest.raises(DFTError, match=match) as exc:
            fn()
        assert "\n" not in str(exc.value)
    # a template site with an unknown element
    sub = find_magnetic_sites(read_structure(CIF))
    bad = SpinModel.from_sublattice(sub)
    bad.sites[1].element = "Qq"
    with pytest.raises(DFTError, match="not a chemical element"):
        fs.FourStateDFT(CIF, template=bad, workdir=tmp_path)
    bad.sites[1].element = "I"
    with pytest.raises(DFTError, match="the atom there is Cr"):
        fs.FourStateDFT(CIF, template=bad, workdir=tmp_path)
    # nothing ran
    assert not list(tmp_path.glob("fourstate_*.json"))
