"""Issue 22 item 1: the result classes of the magnetism layer round-trip as_dict → JSON → from_dict → as_dict exactly:
SuperexchangeResult (BondAnalysis, Channel, PathTerm, KanamoriParameters), DipolarAnisotropy, GroundState and
PTResult.  Where as_dict rounds or drops fields, the rebuilt object keeps the stored values of what was derived from
the unrounded ones.  J in meV (H = Σ_{i<j} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i, each bond once, |S| = S, J > 0 AF), K."""

import json
import math
import warnings

import numpy as np
import pytest

from wannmag._atomic import jsonable
from wannmag.magnetism import Site, SpinModel
from wannmag.magnetism.anisotropy.dipolar import DipolarAnisotropy, dipolar_anisotropy
from wannmag.magnetism.montecarlo import MCSettings, build_lattice, ground_state, parallel_tempering
from wannmag.magnetism.montecarlo.groundstate import GroundState
from wannmag.magnetism.montecarlo.tempering import PTResult
from wannmag.magnetism.superexchange import SuperexchangeError, superexchange
from wannmag.magnetism.superexchange.analysis import Channel, SuperexchangeResult
from wannmag.magnetism.superexchange.formulas import KanamoriParameters
from wannmag.magnetism.superexchange.paths import PathTerm
from wannmag.magnetism.superexchange.synthetic import cri3_like_model, vps3_like_model
from wannmag.structures import cri3_monolayer


def _round_trip(obj, cls, **kw):
    stored = json.loads(json.dumps(jsonable(obj.as_dict())))
    back = cls.from_dict(stored, **kw)
    assert json.dumps(jsonable(back.as_dict())) == json.dumps(stored)
    return back


@pytest.fixture(scope="module")
def results():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {"CrI3": superexchange(cri3_like_model(), shells=(1, 2, 3)),
                "VPS3": superexchange(vps3_like_model(), shells=(1, 2, 3))}


@pytest.mark.parametrize("name", ["CrI3", "VPS3"])
def test_superexchange_result_round_trip(results, name):
    """Bonds in and out of the expansion's range (the CrI3-like 1NN is out of range, the VPS3-like one inside):
    the rebuilt bonds have the same J (None out of range), status, channels and shell summary."""
    res = results[name]
    back = _round_trip(res, SuperexchangeResult)
    assert [b.status for b in back.bonds] == [b.status for b in res.bonds]
    assert [b.in_range for b in back.bonds] == [b.in_range for b in res.bonds]
    assert [b.J for b in back.bonds] == [None if b.J is None else round(b.J, 6) for b in res.bonds]
    assert back.shell_summary() == json.loads(json.dumps(res.shell_summary()))
    for b, b0 in zip(back.bonds, res.bonds):
        assert b.bond == b0.bond and b.shell == b0.shell and b.params == b0.params
        assert [(c.category, c.orbitals, c.character, c.antiphase) for c in b.channels] == \
            [(c.category, c.orbitals, c.character, c.antiphase) for c in b0.channels]
        assert b.hoppings.t_dd is None  # the hopping matrices are not stored
    assert res.bonds[0].in_range is (name == "VPS3")


def test_spin_model_of_a_rebuilt_result_needs_its_structure(results):
    res = results["VPS3"]
    back = _round_trip(res, SuperexchangeResult, report=res.report)
    m, m0 = back.to_spin_model(), res.to_spin_model()
    assert [b.J_iso for b in m.bonds] == [round(b.J_iso, 6) for b in m0.bonds]
    assert len(m.bonds) == 12  # 3 + 6 + 3 per cell
    with pytest.raises(SuperexchangeError, match="no spin model without the structure"):
        SuperexchangeResult.from_dict(res.as_dict()).to_spin_model()


def test_channel_keeps_its_flags_where_the_rounded_values_would_flip_them():
    """A channel with J = +4e-7 meV (AF) is stored as 0.0 meV: the rebuilt channel is still AF (recomputed from the
    stored value it would read FM); a small coherent t against a large incoherent one stays antiphase."""
    c = Channel("CT t2g–t2g", ("dxz", "dxz"), "both", [PathTerm("ligand", "I4[0,0,0]:pz", 0.05, (0.2, 0.25))],
                t_eff=4e-8, t_incoherent=0.03, J=4e-7, J_incoherent=2e-3)
    back = _round_trip(c, Channel)
    assert back.J == 0.0 and back.character == c.character == "AF" and back.antiphase is c.antiphase is True
    assert back.paths[0] == c.paths[0]
    p = KanamoriParameters(U=3.2, JH=0.65, ten_dq=1.1, delta_t=3.9)
    assert _round_trip(p, KanamoriParameters) == p


def test_dipolar_anisotropy_round_trip():
    """CrI3 monolayer, four collinear orders (2D Ewald): the rebuilt result has the stored energies (no frame is
    stored), the same ΔE = E_in − E_out bit for bit and the same easy axis from the whole tensor."""
    for order in ("FM", "Neel", "zigzag", "stripy"):
        da = dipolar_anisotropy(cri3_monolayer(), order)
        back = _round_trip(da, DipolarAnisotropy)
        assert back.delta == da.delta and back.E_in_min == da.E_in_min and back.frame is None
        assert np.allclose(np.abs(back.easy_axis), np.abs(da.easy_axis), atol=1e-12)
    assert dipolar_anisotropy(cri3_monolayer(), "FM").delta < 0  # FM point dipoles of a layer: in-plane preferred


def _honeycomb(J1, A):
    hexa = np.array([[1.0, 0.0, 0.0], [-0.5, math.sqrt(3) / 2, 0.0], [0.0, 0.0, 10.0]])
    pos = [np.array([2 / 3, 1 / 3, 0]) @ hexa, np.array([1 / 3, 2 / 3, 0]) @ hexa]
    m = SpinModel(cell=hexa, sites=[Site(p, "X", 1.5) for p in pos], pbc=(True, True, False), single_ion=[A, A])
    for R in [(0, 0, 0), (1, 0, 0), (0, -1, 0)]:
        m.add_bond(0, 1, R, J1)
    return m


@pytest.mark.parametrize("J1,algorithm,ladder", [(-1.0, "metropolis", "geometric"), (1.0, "cluster", [3.0, 8, 20, 50])])
def test_ground_state_and_parallel_tempering_round_trip(J1, algorithm, ladder):
    """Easy-axis honeycomb (A = −0.1 meV ẑẑ), FM and Néel: the ground state's flags and the run's curves, settings
    and bin count come back; the raw bins and the spins are not stored."""
    lat = build_lattice(_honeycomb(J1, np.diag([0.0, 0.0, -0.1])), 4)
    gs = ground_state(lat, seed=1)
    gb = _round_trip(gs, GroundState)
    assert gb.ferromagnetic is gs.ferromagnetic is (J1 < 0) and gb.spins is None and gb.period == gs.period
    st = MCSettings(tmin=3.0, tmax=50.0, n_replicas=4, n_sweeps=300, n_therm=100, seed=3, algorithm=algorithm,
                    ladder=ladder)
    run = parallel_tempering(lat, st, pattern=gs.pattern, init=gs.spins, ground_state=gs.as_dict())
    back = _round_trip(run, PTResult)
    assert back.settings == run.settings and back.n_bins == run.bins.shape[1] and back.bins is None
    assert all(np.array_equal(back.curve(k)[0], run.curve(k)[0], equal_nan=True) for k in run.observables)
    assert np.array_equal(back.temperatures, run.temperatures) and back.size == tuple(run.size)


def test_bond_orbits_bond_anisotropy_and_spin_ladder_round_trip():
    """The symmetry orbits of the CrI3 bonds (3, 6, 3 per cell), the decomposition of a bond tensor with DMI in a
    cubic frame, and the two-site ED ladder of an AF t2g–t2g bond (Heisenberg: the Landé steps equal J)."""
    from wannmag.magnetism.anisotropy.fourstate import BondAnisotropy, decompose
    from wannmag.magnetism.superexchange.ed import Cluster, SpinLadder, ed_spin_ladder, metal_site
    from wannmag.magnetism.symmetry import BondOrbit, bond_orbits
    from wannmag.structures import find_magnetic_sites, neighbour_shells

    atoms = cri3_monolayer()
    sub = find_magnetic_sites(atoms)
    model = SpinModel.from_sublattice(sub)
    for J, sh in zip((-2.1, -0.35, 0.12), neighbour_shells(sub, 3)):
        for b in sh.bonds:
            model.add_bond(b.i, b.j, b.R, J)
    orbits = bond_orbits(model, atoms)
    back = [_round_trip(o, BondOrbit) for o in orbits]
    assert [o.multiplicity for o in back] == [3, 6, 3] and [o.members for o in back] == [o.members for o in orbits]

    J = np.array([[-2.0, 0.3, 0.1], [0.1, -2.2, 0.05], [-0.1, 0.05, -1.7]])
    frame = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))[0].T
    d = decompose(J, frame=frame, bond=(0, 1, (1, 0, 0)))
    db = _round_trip(d, BondAnisotropy)
    assert db.J_iso == d.J_iso == pytest.approx(-5.9 / 3) and np.array_equal(db.dmi, d.dmi) and db.bond == d.bond
    assert db.kitaev == d.kitaev and db.xxz == d.xxz

    t = 0.03 * np.random.default_rng(1).standard_normal((3, 3))
    ladder = ed_spin_ladder(Cluster([metal_site("M1", 3.0, 0.7), metal_site("M2", 3.0, 0.7)], {(0, 1): t}), 1.5, 1.5)
    lb = _round_trip(ladder, SpinLadder)
    assert lb.energies == ladder.energies and lb.J == ladder.J > 0 and lb.deviation < 0.01
