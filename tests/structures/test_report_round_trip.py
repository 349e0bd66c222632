"""Issue 22 item 1: StructureReport (and its Shell, Bond, ExchangePaths, BridgePath, LongPath, Ligand) round-trips
as_dict → JSON → from_dict → as_dict exactly, on the shipped CrI3 and VPS3 monolayers.  Lengths Å, angles degrees."""

import json
from pathlib import Path

import numpy as np
import pytest

from wannmag.structures import StructureReport, analyse_structure
from wannmag.structures.paths import ExchangePaths
from wannmag.structures.shells import Shell

CIF = Path(__file__).resolve().parents[2] / "data" / "structures"


@pytest.fixture(scope="module", params=["CrI3", "VPS3"])
def report(request):
    return analyse_structure(CIF / f"{request.param}_monolayer.cif")


def _stored(obj) -> dict:
    return json.loads(json.dumps(obj.as_dict()))


def test_report_round_trips_without_and_with_its_structure(report):
    d = _stored(report)
    alone = StructureReport.from_dict(d)
    assert json.dumps(alone.as_dict()) == json.dumps(d) and alone.sublattice is None
    assert alone.table() == report.table() and alone.name == report.name  # the header as stored
    full = StructureReport.from_dict(d, sublattice=report.sublattice)
    assert json.dumps(full.as_dict()) == json.dumps(d) and full.sublattice is report.sublattice


def test_rebuilt_shells_count_the_honeycomb_neighbours_again(report):
    """Each bond is stored once; counting one neighbour at each end gives the honeycomb coordination 3, 6, 3 of
    every site, exactly the arrays neighbour_shells made."""
    back = StructureReport.from_dict(_stored(report))
    assert [s.multiplicity for s in back.shells] == [3.0, 6.0, 3.0]
    for s, s0 in zip(back.shells, report.shells):
        assert np.array_equal(s.coordination, s0.coordination) and len(s.bonds) == len(s0.bonds)
        assert all(np.allclose(b.vector, b0.vector, atol=1e-6) for b, b0 in zip(s.bonds, s0.bonds))
    # the paths hold the shells' bond objects (with their vectors), and the same sharing, angles and M-X-X-M paths
    bonds = {id(b) for s in back.shells for b in s.bonds}
    assert all(id(p.bond) in bonds for p in back.paths)
    assert [p.sharing for p in back.paths] == [p.sharing for p in report.paths]
    assert [len(p.long_paths) for p in back.paths] == [len(p.long_paths) for p in report.paths]
    assert {round(b.angle, 3) for p in back.paths for b in p.bridges} == \
        {round(b.angle, 3) for p in report.paths for b in p.bridges}


def test_parts_round_trip_alone(report):
    """A shell without its site count and a path without the shells' bonds (no vector) still write the same dict."""
    for s in report.shells:
        d = _stored(s)
        assert json.dumps(Shell.from_dict(d).as_dict()) == json.dumps(d)
    for p in report.paths:
        d = _stored(p)
        back = ExchangePaths.from_dict(d)
        assert json.dumps(back.as_dict()) == json.dumps(d) and back.bond.vector is None
