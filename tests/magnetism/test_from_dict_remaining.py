"""Issue 22 item 2: Site, Bond (wannmag.magnetism.spinmodel) and VacancyCell (wannmag.magnetism.vacancy) round-trip
as_dict → JSON → from_dict → as_dict exactly, on the shipped spin models (data/mc, data/runs) and the shipped CrI3
and VPS3 monolayers.  J tensors in meV (H = Σ_{i<j} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i, each bond once, |S_i| = S_i,
J > 0 AF), positions in Å: they come back bit for bit (floats through JSON are exact)."""

import json
from pathlib import Path

import numpy as np
import pytest

import wannmag.magnetism.vacancy as mv
from wannmag.magnetism import Bond, Site, SpinModel, SpinModelError

DATA = Path(__file__).resolve().parents[2] / "data"
MODELS = ["mc/VPS3_fast_spin_model.json", "mc/CrI3_quantum_mapped_spin_model.json",
          "runs/CrI3_accurate/spin_model.json"]
CIF = {c: str(DATA / "structures" / f"{c}_monolayer.cif") for c in ("CrI3", "VPS3")}


def _stored(obj) -> dict:
    return json.loads(json.dumps(obj.as_dict()))


@pytest.fixture(scope="module", params=MODELS)
def model(request):
    return SpinModel.load(DATA / request.param)


def test_sites_round_trip_exactly(model):
    for site in model.sites:
        back = Site.from_dict(_stored(site))
        assert back.as_dict() == site.as_dict()
        assert np.array_equal(back.position, site.position) and back.position.dtype == float
        assert (back.element, back.spin, back.g, back.label) == (site.element, site.spin, site.g, site.label)


def test_bonds_round_trip_exactly(model):
    """Every bond of the model, with its full anisotropic tensor (the CrI3 models carry DMI and Γ of up to 0.78 meV):
    the rebuilt tensor, its isotropic part, DMI vector and Γ are the original ones bit for bit."""
    assert max(np.abs(b.anisotropic).max() for b in model.bonds) > 1e-4  # really anisotropic tensors
    for bond in model.bonds:
        back = Bond.from_dict(_stored(bond))
        assert back.as_dict() == bond.as_dict()
        assert (back.i, back.j, back.R, back.shell) == (bond.i, bond.j, bond.R, bond.shell)
        assert all(type(x) is int for x in back.R)
        assert np.array_equal(back.J, bond.J) and back.J_iso == bond.J_iso
        assert np.array_equal(back.dmi, bond.dmi) and np.array_equal(back.anisotropic, bond.anisotropic)


def test_rebuilt_sites_and_bonds_give_the_same_classical_energy(model):
    """A model assembled from the rebuilt sites and bonds (not through SpinModel.from_dict) has the same energy of a
    random non-collinear state on a 3×3 supercell (every bond and image distinct) as the original, to 1e-12 meV."""
    rebuilt = SpinModel(cell=model.cell.copy(), sites=[Site.from_dict(_stored(s)) for s in model.sites],
                        bonds=[Bond.from_dict(_stored(b)) for b in model.bonds],
                        single_ion=[a.copy() for a in model.single_ion], b_field=model.b_field.copy(), pbc=model.pbc)
    big0, _ = model.supercell((3, 3, 1))
    big1, _ = rebuilt.supercell((3, 3, 1))
    rng = np.random.default_rng(22)
    for _ in range(3):
        e = rng.normal(size=(big0.n_sites, 3))
        e /= np.linalg.norm(e, axis=1)[:, None]
        spins = e * big0.spins[:, None]
        E0, E1 = big0.energy(spins), big1.energy(spins)
        assert abs(E1 - E0) <= 1e-12
        assert abs(E0) > 1.0  # a real energy (meV per 3×3 cell), not an empty sum
    # the FM state of the primitive cell: E = S² Σ_bonds J_zz + Σ_i S² A_i,zz for spins along z
    up = np.tile([0.0, 0.0, 1.0], (model.n_sites, 1)) * model.spins[:, None]
    expected = sum(model.spins[b.i] * model.spins[b.j] * b.J[2, 2] for b in rebuilt.bonds) + \
        sum(s ** 2 * a[2, 2] for s, a in zip(model.spins, rebuilt.single_ion))
    assert rebuilt.energy(up) == pytest.approx(expected, abs=1e-12)


def test_site_and_bond_from_dict_refuse_broken_dicts():
    with pytest.raises(SpinModelError, match="site: site lacks 'spin'"):
        Site.from_dict({"position": [0, 0, 0], "element": "Cr"})
    with pytest.raises(SpinModelError, match="R must be 3 integers"):
        Bond.from_dict({"i": 0, "j": 1, "R": [0.5, 0, 0], "J": 1.0})
    # a scalar J is the isotropic tensor
    assert np.array_equal(Bond.from_dict({"i": 0, "j": 1, "R": [0, 0, 0], "J": 2.5}).J, 2.5 * np.eye(3))


@pytest.fixture(scope="module", params=["CrI3", "VPS3"])
def vcell(request):
    return request.param, mv.make_vacancy_cell(CIF[request.param])


def test_vacancy_cell_round_trips_without_its_structure(vcell):
    """Alone, the stored cell keeps its geometry and bond count per class; what needs the bonds says so."""
    name, cell = vcell
    d = _stored(cell)
    back = mv.VacancyCell.from_dict(d)
    assert json.dumps(back.as_dict()) == json.dumps(d)
    assert back.bonds is None and back.n_bonds() == cell.n_bonds()
    assert (back.n_full, back.n_sites, back.near_sites, back.distances) == \
        (cell.n_full, cell.n_sites, cell.near_sites, cell.distances)
    with pytest.raises(mv.VacancyError, match="give structure= to VacancyCell.from_dict"):
        back.counts([1] * back.n_sites)
    with pytest.raises(mv.VacancyError, match="hole placements"):
        mv.hole_placements_of(CIF[name], back)


def test_vacancy_cell_round_trips_with_its_structure(vcell):
    """With the structure the bonds come back (same classes, same c_class of every pattern) and the equal-spin fit
    recovers a known model from the rebuilt cell; another structure is refused."""
    name, cell = vcell
    d = _stored(cell)
    back = mv.VacancyCell.from_dict(d, structure=CIF[name])
    assert json.dumps(back.as_dict()) == json.dumps(d)
    assert back.bonds == cell.bonds
    rng = np.random.default_rng(5)
    for _ in range(5):
        p = rng.choice([-1, 1], size=cell.n_sites)
        assert back.counts(p) == cell.counts(p)
    pats = mv.choose_patterns(back, fit="J1", n_configs=5, start=mv.start_pattern(CIF[name], back))
    J = {"J1_bulk": 26.0, "J1_vac": 20.0, "J2": 0.4, "J3": 0.6}
    E = [-197.0 + sum(J[b["cls"]] * cell.spin ** 2 * p[b["i"]] * p[b["j"]] for b in cell.bonds) / 1000.0
         for p in pats]
    fit = mv.fit_vacancy_exchange(back, pats, E, fit="J1", fixed={"J2": 0.4, "J3": 0.6})
    assert fit.J["J1_bulk"] == pytest.approx(26.0, abs=1e-8) and fit.J["J1_vac"] == pytest.approx(20.0, abs=1e-8)
    other = CIF["VPS3" if name == "CrI3" else "CrI3"]
    with pytest.raises(mv.VacancyError, match="not the one of this structure"):
        mv.VacancyCell.from_dict(d, structure=other)
