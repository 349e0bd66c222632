"""The force theorem on other Wannier bases (issue 17): <material>_wannier_basis.json (data/exchange/wannier_basis.py)
as a route of data/exchange/make_routes.py and of `wannmag exchange compare`.

J in meV, internal convention H = Σ_{i<j} J S_i·S_j (each bond once, |S| = S, J > 0 AF).
"""

import importlib.util
import json
from pathlib import Path

import pytest

from wannmag.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXCHANGE = ROOT / "data" / "exchange"
S = 1.5
ROW = "force theorem (FM reference), Wannier basis: test basis"
MISSING = "force theorem (FM reference), another Wannier basis"


def _basis_file(**over):
    d = {"material": "CrI3", "spin": S, "distances": [4.0415, 7.0, 8.0829],
         "routes": [{"name": ROW, "J1": -1.5, "J2": -0.6, "J3": 0.03, "reference": "FM", "method": "test",
                     "settings": {"basis": "test"}, "seconds": {"total": 12.0, "force_theorem": 3.0,
                                                                "wannierisation": 9.0}}],
         "reproduction": {"max_abs_diff_meV": 0.002, "passed": True}}
    d.update(over)
    return d


def _base_copy(tmp_path):
    """CrI3_routes.json with the energy-mapping and FM force-theorem rows only (as in tests/magnetism/test_routes.py)."""
    d = json.loads((EXCHANGE / "CrI3_routes.json").read_text())
    d["routes"] = [r for r in d["routes"] if r["name"] in ("energy mapping", "force theorem (FM reference)")]
    d.get("gap", {}).pop("contributions", None)
    (tmp_path / "CrI3_routes.json").write_text(json.dumps(d))
    return next(r for r in d["routes"] if r["name"] == "force theorem (FM reference)")


def _compare(capsys, d):
    rc = main(["exchange", "compare", str(d), "--json"])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def test_compare_reads_the_basis_file(tmp_path, capsys):
    fm = _base_copy(tmp_path)
    rc, out, err = _compare(capsys, tmp_path)
    assert rc == 0, err
    names = [r["name"] for r in json.loads(out)["routes"]]
    assert MISSING in names  # without the file: the "not computed" row
    (tmp_path / "CrI3_wannier_basis.json").write_text(json.dumps(_basis_file()))
    rc, out, err = _compare(capsys, tmp_path)
    assert rc == 0, err
    d = json.loads(out)
    rows = {r["name"]: r for r in d["routes"]}
    assert MISSING not in rows  # the file is there: its rows replace the "not computed" one
    r = rows[ROW]
    assert (r["J1"], r["J2"], r["J3"]) == (-1.5, -0.6, 0.03) and r["seconds"] == 12.0 and r["reference"] == "FM"
    # the gap is still measured from the package's own FM route, not from the other basis
    assert d["gap"]["J1_force_theorem"] == pytest.approx(fm["J1"])


@pytest.mark.parametrize("over, expect", [
    ({"material": "VPS3"}, "mismatched models"),
    ({"spin": 1.0}, "spin length S = 1.0"),
    ({"distances": [3.4, 5.9, 6.8]}, "mismatched models"),
    ({"routes": [{"name": ROW, "J1": "nan"}]}, "non-finite number"),
    ({"routes": [{"name": ROW, "J1": 1e9}]}, "J1 must be a finite number"),
])
def test_bad_basis_file_is_one_error_line(tmp_path, capsys, over, expect):
    _base_copy(tmp_path)
    (tmp_path / "CrI3_wannier_basis.json").write_text(json.dumps(_basis_file(**over)))
    rc, out, err = _compare(capsys, tmp_path)
    lines = err.strip().splitlines()
    assert rc == 2 and out == "" and len(lines) == 1 and "Traceback" not in err
    assert lines[0].startswith("wannmag: error: ") and "CrI3_wannier_basis.json" in lines[0] and expect in lines[0]


def _make_routes_module():
    spec = importlib.util.spec_from_file_location("make_routes_under_test", EXCHANGE / "make_routes.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_make_routes_takes_the_basis_rows(tmp_path, monkeypatch, capsys):
    """make_routes.py with its folder pointed at tmp_path: the basis file's rows in the written CrI3_routes.json,
    the note naming them and the reproduction check; the FM row computed from data/dft/CrI3 as always."""
    mr = _make_routes_module()
    monkeypatch.setattr(mr, "HERE", tmp_path)
    (tmp_path / "CrI3_wannier_basis.json").write_text(json.dumps(_basis_file()))
    mr.make("CrI3")
    capsys.readouterr()
    d = json.loads((tmp_path / "CrI3_routes.json").read_text())
    rows = {r["name"]: r for r in d["routes"]}
    assert rows[ROW]["J1"] == -1.5 and MISSING not in rows
    assert rows["force theorem (FM reference)"]["J1"] == pytest.approx(-0.963, abs=1e-3)
    note = next(n for n in d["notes"] if n.startswith("other Wannier bases"))
    assert ROW in note and "2.0e-03 meV" in note


def test_shipped_basis_file():
    """data/exchange/CrI3_wannier_basis.json as wannier_basis.py wrote it: the re-made shipped basis reproduced the
    FM route within the stated tolerance, each row's J1 is its basis's force theorem, and the combined routes file
    carries the rows."""
    d = json.loads((EXCHANGE / "CrI3_wannier_basis.json").read_text())
    rep = d["reproduction"]
    assert rep["passed"] and rep["max_abs_diff_meV"] <= rep["tolerance_meV"]
    assert rep["shipped_route_J_meV"][0] == pytest.approx(-0.963, abs=1e-3)
    J1s = {round(b["J_meV"][0], 9) for name, b in d["bases"].items() if name != "shipped"}
    assert {round(r["J1"], 9) for r in d["routes"]} == J1s and len(d["routes"]) >= 2
    combined = {r["name"] for r in json.loads((EXCHANGE / "CrI3_routes.json").read_text())["routes"]}
    assert {r["name"] for r in d["routes"]} <= combined and MISSING not in combined


def test_shipped_vps3_basis_file_reports_the_refused_basis():
    """data/exchange/VPS3_wannier_basis.json: the re-made shipped basis reproduces the FM route (J1 +35.30 meV), the
    occupied-only frozen window gives a computed row, and the V d-only basis that the package's Wannier checks refuse
    (minority channel: a function centred far from its V) is a "not computed" row with that reason — never a J."""
    d = json.loads((EXCHANGE / "VPS3_wannier_basis.json").read_text())
    rep = d["reproduction"]
    assert rep["passed"] and rep["shipped_route_J_meV"][0] == pytest.approx(35.297, abs=1e-3)
    rows = {r["name"]: r for r in d["routes"]}
    computed = [r for r in rows.values() if r.get("status") != "not computed"]
    refused = [r for r in rows.values() if r.get("status") == "not computed"]
    assert {round(r["J1"], 9) for r in computed} == {round(b["J_meV"][0], 9) for n, b in d["bases"].items()
                                                     if n != "shipped"}
    assert set(d["failed_bases"]) == {"d_only"} and len(refused) == 1
    assert refused[0].get("J1") is None and "refused" in refused[0]["reason"] and "centred" in refused[0]["reason"]
    combined = {r["name"]: r for r in json.loads((EXCHANGE / "VPS3_routes.json").read_text())["routes"]}
    assert set(rows) <= set(combined) and combined[refused[0]["name"]]["J1"] is None
