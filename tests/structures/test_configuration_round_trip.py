"""Issue 22 item 2: Configuration round-trips as_dict → JSON → from_dict → as_dict exactly, on the standard orders
(FM, Néel, zigzag, stripy), a vacancy supercell and a vacancy-cell configuration of the shipped CrI3 and VPS3
monolayers.  With the primitive structure the supercell's atoms come back (same positions, initial moments σ·2S μ_B
and textbook bond counts); without it the configuration keeps its stored site count and formula.  Lengths Å."""

import json
from pathlib import Path

import numpy as np
import pytest

import wannmag.magnetism.vacancy as mv
from wannmag.errors import ConfigurationError
from wannmag.structures import bond_counts, find_magnetic_sites, standard_configurations, vacancy_supercell
from wannmag.structures.configurations import Configuration

CIF = {c: str(Path(__file__).resolve().parents[2] / "data" / "structures" / f"{c}_monolayer.cif")
       for c in ("CrI3", "VPS3")}


def _stored(obj) -> dict:
    return json.loads(json.dumps(obj.as_dict()))


def _configurations(name):
    sub0 = find_magnetic_sites(CIF[name])
    confs = standard_configurations(sub0)
    confs.append(vacancy_supercell(sub0, supercell=(2, 2, 1), sites=[1, 6], order="Neel"))
    vc = mv.make_vacancy_cell(CIF[name])
    confs.append(mv.vacancy_configuration(CIF[name], vc, mv.start_pattern(CIF[name], vc)))
    return sub0, confs


@pytest.fixture(scope="module", params=["CrI3", "VPS3"])
def configs(request):
    return (request.param, *_configurations(request.param))


def test_configurations_round_trip_without_their_structure(configs):
    _, _, confs = configs
    for conf in confs:
        d = _stored(conf)
        back = Configuration.from_dict(d)
        assert json.dumps(back.as_dict()) == json.dumps(d), conf.name
        assert back.sublattice is None and back.n_sites == conf.n_sites
        assert np.array_equal(back.pattern, conf.pattern) and np.array_equal(back.supercell, conf.supercell)
        assert back.magnetisation == conf.magnetisation
        with pytest.raises(ConfigurationError, match="give structure= to Configuration.from_dict"):
            back.atoms


def test_configurations_round_trip_with_their_structure(configs):
    """The rebuilt supercell is the original one: positions, symbols and initial moments to the bit, and the same
    bond counts (FM c = (3/2, 3, 3/2) per site, Néel (−3/2, 3, −3/2), zigzag (1/2, −1, −3/2), stripy (−1/2, −1, 3/2)
    on the honeycomb lattice)."""
    name, sub0, confs = configs
    textbook = {"FM": [1.5, 3, 1.5], "Neel": [-1.5, 3, -1.5], "zigzag": [0.5, -1, -1.5], "stripy": [-0.5, -1, 1.5]}
    for conf in confs:
        d = _stored(conf)
        for structure in (CIF[name], sub0):
            back = Configuration.from_dict(d, structure=structure)
            assert json.dumps(back.as_dict()) == json.dumps(d), conf.name
            assert back.atoms.get_chemical_symbols() == conf.atoms.get_chemical_symbols()
            assert np.array_equal(back.atoms.positions, conf.atoms.positions)
            assert np.array_equal(back.atoms.cell.array, conf.atoms.cell.array)
            assert np.array_equal(back.sublattice.indices, conf.sublattice.indices)
            assert np.array_equal(back.atoms.get_initial_magnetic_moments(), conf.atoms.get_initial_magnetic_moments())
        c0, c1 = bond_counts(conf, sub0), bond_counts(back, sub0)
        assert np.array_equal(c1["per_cell"], c0["per_cell"])
        if conf.name in textbook:
            assert c1["per_site"] == pytest.approx(textbook[conf.name], abs=1e-12)


def test_configuration_of_another_structure_is_refused(configs):
    name, _, confs = configs
    other = CIF["VPS3" if name == "CrI3" else "CrI3"]
    with pytest.raises(ConfigurationError, match="is not one of"):
        Configuration.from_dict(_stored(confs[0]), structure=other)
    d = _stored(confs[0])
    d["pattern"] = d["pattern"][:-1]
    with pytest.raises(ConfigurationError, match="values ±1"):
        Configuration.from_dict(d)
