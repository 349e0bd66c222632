"""data/exchange/lda_chain.py (issue 17): the chain of routes from the FM force theorem to energy mapping.  The
shipped chain is checked in tests/magnetism/test_routes.py; here: the script refuses a missing ground state or a
route file without J1 in one error line."""

import importlib.util
import json
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "data" / "exchange" / "lda_chain.py"


def _script():
    spec = importlib.util.spec_from_file_location("lda_chain", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _one_error_line(capsys):
    err = capsys.readouterr().err.strip()
    assert err.startswith("wannmag: error: ") and "\n" not in err and "Traceback" not in err, err
    return err


def test_missing_ground_state_is_one_error_line(tmp_path, capsys):
    assert _script().main(["CrI3", str(tmp_path)]) == 2
    assert "no LDA+U ground state" in _one_error_line(capsys)


def test_route_file_without_J1_is_one_error_line(tmp_path, capsys, monkeypatch):
    mod = _script()
    here = tmp_path / "exchange"
    here.mkdir()
    (here / "CrI3_gpaw_mft.json").write_text(json.dumps({"material": "CrI3", "J1": None, "status": "not computed",
                                                        "reason": "no plateau"}))
    monkeypatch.setattr(mod, "HERE", here)
    try:
        mod._route_json("CrI3", "gpaw_mft")
    except mod.WannmagError as exc:
        assert "no J1 (no plateau)" in str(exc)
    else:
        raise AssertionError("a route without J1 was accepted")
    shutil.rmtree(here)
