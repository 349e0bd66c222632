"""Issue 22 item 2: Orbital and TBReport round-trip as_dict → JSON → from_dict → as_dict exactly, on the shipped
CrI3 and VPS3 Wannier models (data/dft, collinear up/down pairs) and a spinless Slater–Koster model.  The report's
dict holds its numbers (rounded to 1e-6 eV), not H(R): rebuilt alone it keeps the stored header and refuses its table
(which needs the number of R vectors); rebuilt with its model it is the original report.  Energies eV, lengths Å."""

import json
from pathlib import Path

import pytest

from wannmag.tightbinding import Orbital, TBError, make_orbitals, read_w90
from wannmag.tightbinding.report import TBReport, tb_report

DFT = Path(__file__).resolve().parents[2] / "data" / "dft"
REGIME = {"CrI3": "charge-transfer", "VPS3": "Mott–Hubbard"}


def _stored(obj) -> dict:
    return json.loads(json.dumps(obj.as_dict()))


@pytest.fixture(scope="module")
def shipped():
    out = {}
    for name in ("CrI3", "VPS3"):
        model = read_w90(DFT / name)
        out[name] = (model, tb_report(model, U=3.0))
    return out


@pytest.mark.parametrize("name", ["CrI3", "VPS3"])
def test_orbitals_of_the_shipped_models_round_trip(shipped, name):
    model, _ = shipped[name]
    orbitals = model.up.orbitals + model.down.orbitals
    # the spinor components and an orbital on a shifted atom image of the same atoms
    orbitals += make_orbitals([(o.atom, o.element, o.name) for o in model.up.orbitals], spinor=True)
    orbitals.append(Orbital(0, model.up.orbitals[0].element, 2, "dxy", "down", (1, -1, 0)))
    for o in orbitals:
        back = Orbital.from_dict(_stored(o))
        assert back == o and back.as_dict() == o.as_dict()
        assert (back.m, back.label) == (o.m, o.label)
    with pytest.raises(TBError, match="not a stored orbital"):
        Orbital.from_dict({"atom": 0, "element": "Cr", "l": 2, "name": "dxy", "spin": "sideways"})


@pytest.mark.parametrize("name", ["CrI3", "VPS3"])
def test_report_round_trips_without_its_model(shipped, name):
    """Alone, the report keeps its stored header, crystal fields and ZSA call (CrI3 charge-transfer, VPS3
    Mott–Hubbard, Δ < U resp. > U = 3 eV); its table needs the model and says so."""
    _, rep = shipped[name]
    d = _stored(rep)
    back = TBReport.from_dict(d)
    assert json.dumps(back.as_dict()) == json.dumps(d)
    assert back.model is None and back.kind == rep.kind == "collinear"
    assert back.orbital_table() == rep.orbital_table() and back.onsite_levels() == d["onsite"]
    assert back.classification.regime == rep.classification.regime == REGIME[name]
    assert (back.classification.delta < 3.0) == (name == "CrI3")
    assert [c.ten_dq for c in back.crystal_fields] == [round(c.ten_dq, 6) for c in rep.crystal_fields]
    assert all(c.ten_dq > 0 for c in back.crystal_fields)  # t2g below eg on every metal
    assert back.bonds == d["bonds"] and back.warnings == rep.warnings
    with pytest.raises(TBError, match="give model= to TBReport.from_dict"):
        back.table()


@pytest.mark.parametrize("name", ["CrI3", "VPS3"])
def test_report_round_trips_with_its_model(shipped, name):
    model, rep = shipped[name]
    d = _stored(rep)
    back = TBReport.from_dict(d, model=model)
    assert json.dumps(back.as_dict()) == json.dumps(d)
    assert back.table() == rep.table()
    other = shipped["VPS3" if name == "CrI3" else "CrI3"][0]
    with pytest.raises(TBError, match="is not the one of the stored report"):
        TBReport.from_dict(d, model=other)


def test_spinless_report_round_trips(sk_model):
    rep = tb_report(sk_model, U=3.0)
    d = _stored(rep)
    for model in (None, sk_model):
        back = TBReport.from_dict(d, model=model)
        assert json.dumps(back.as_dict()) == json.dumps(d) and back.kind == "spinless"
    assert back.table() == rep.table()
