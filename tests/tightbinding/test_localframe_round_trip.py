"""Issue 22 item 1: LocalFrame and CrystalFieldLevels round-trip as_dict → JSON → from_dict → as_dict exactly.

as_dict rounds (axes 1e-6, M→X vectors 1e-5 Å, levels 1e-6 eV) and drops the trans pairs, the raw pair directions,
the off-diagonal local d block and the cluster's eg weights; from_dict finds the pairs again and keeps the stored
values of what was derived from unrounded numbers (10Dq, Δ, ε_d, bond lengths, axis deviation).  Energies eV."""

import json

import numpy as np
import pytest
from ase import Atoms

from wannmag._atomic import jsonable
from wannmag.magnetism.superexchange.synthetic import cri3_like_model, vps3_like_model
from wannmag.tightbinding import CrystalFieldLevels, LocalFrame, crystal_fields, slater_koster_model
from wannmag.tightbinding.localframe import octahedral_frame


def _octahedron(Q, a=2.6, stretch=(1.0, 1.0, 1.0), noise=0.0, seed=0):
    """CrI6 octahedron rotated by Q, axes stretched, positions with Gaussian noise (Å), in a 30 Å box."""
    rng = np.random.default_rng(seed)
    vecs = []
    for k in range(3):
        for s in (1, -1):
            v = np.zeros(3)
            v[k] = s * a * stretch[k]
            vecs.append(v + noise * rng.normal(size=3))
    pos = np.array([[0.0, 0, 0]] + vecs) @ Q.T + 15.0
    return Atoms("CrI6", positions=pos, cell=np.eye(3) * 30, pbc=False)


def _round_trip(obj, cls):
    stored = json.loads(json.dumps(jsonable(obj.as_dict())))
    back = cls.from_dict(stored)
    assert json.dumps(jsonable(back.as_dict())) == json.dumps(stored)
    return back, stored


@pytest.mark.parametrize("make", [cri3_like_model, vps3_like_model], ids=["CrI3", "VPS3"])
def test_crystal_field_levels_of_the_honeycomb_models_round_trip(make):
    for cf in crystal_fields(make()):
        back, stored = _round_trip(cf, CrystalFieldLevels)
        # the derived quantities are the stored ones (made from the unrounded levels), within 1e-6 eV of the object
        assert back.ten_dq == stored["ten_dq"] == pytest.approx(cf.ten_dq, abs=1e-6)
        assert back.delta == stored["delta"] == pytest.approx(cf.delta, abs=1e-6)
        assert back.eps_d == pytest.approx(cf.eps_d, abs=1e-6) and back.ten_dq_cluster == stored["ten_dq_cluster"]
        assert np.allclose(back.t2g_levels, cf.t2g_levels, atol=1e-6) and back.h_local is None
        # the frame: same axes, the same trans pairs found again, raw pair directions from the 1e-5 Å vectors
        fr, f0 = back.frame, cf.frame
        assert np.allclose(fr.axes, f0.axes, atol=1e-6) and fr.pairs == [tuple(p) for p in f0.pairs]
        assert np.allclose(fr.raw_axes, f0.raw_axes, atol=1e-5)
        assert np.allclose(np.sort(fr.cis_angles), np.sort(f0.cis_angles), atol=1e-3)
        assert fr.max_deviation == round(f0.max_deviation, 4)


def test_distorted_octahedron_frame_finds_its_pairs_again():
    """A stretched, noisy octahedron (cis angles several degrees from 90°): the pairs from the stored axes and
    vectors are the ones octahedral_frame paired, and the rebuilt frame gives the same d rotation (to 1e-5)."""
    Q = np.linalg.qr(np.random.default_rng(3).normal(size=(3, 3)))[0]
    at = _octahedron(Q, stretch=(1.0, 1.05, 0.92), noise=0.08, seed=4)
    fr = octahedral_frame(at, 0, candidates=range(1, 7))
    back, stored = _round_trip(fr, LocalFrame)
    assert back.pairs == [tuple(p) for p in fr.pairs]
    assert stored["cis_angle_range"][0] < 88.0 < 92.0 < stored["cis_angle_range"][1]
    assert np.allclose(back.d_matrix(), fr.d_matrix(), atol=1e-5)
    m = slater_koster_model(at, d_atoms="Cr", p_atoms="I", params=dict(pds=-1.3, pdp=0.6), eps_d=0.0, eps_p=-2.2,
                            crystal_field=(-0.2, 0.4))
    cf = crystal_fields(m)[0]
    cb, _ = _round_trip(cf, CrystalFieldLevels)
    # the MX6 cluster of the distorted cage: its levels and 10Dq as stored; its eg weights are not stored
    assert cb.ten_dq_cluster == round(cf.ten_dq_cluster, 6) and cf.ten_dq_cluster > 0.6  # > on-site 10Dq (0.6 eV)
    assert np.array_equal(cb.cluster_levels, np.round(cf.cluster_levels, 6)) and cb.cluster_eg_weight is None
