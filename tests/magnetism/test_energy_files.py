"""Issue 16, items 5 and 8: ``wannmag exchange map-energies`` reads the package's own energy files (the reference
files data/dft/*_energies.json, the DFT records of ``wannmag run``/``wannmag dft``) and the documented format, and
every malformed input is one ``wannmag: error: <file>: <problem>`` line with exit status 2.

J in meV, H = Σ_{i<j} J_ij S_i·S_j, each bond once, |S| = S, J > 0 AF."""

import copy
import json
import math
import os
import shutil
from pathlib import Path

import pytest

from wannmag.cli import main

ROOT = Path(__file__).resolve().parents[2]
DFT = ROOT / "data" / "dft"
RUN = ROOT / "data" / "runs" / "CrI3_accurate"

# README, "Results on the shipped materials": energy mapping of the reference files (all five configurations)
README_J = {"CrI3": ((-3.55, -0.59, -0.01), 0.005), "VPS3": ((25.9, 0.33, 0.63), 0.05)}


def _json_out(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("mat", ["CrI3", "VPS3"])
def test_shipped_energy_files_give_the_readme_values(mat, capsys, tmp_path, monkeypatch):
    from wannmag.workflows.reference import reference_exchange

    out = _json_out(capsys, ["exchange", "map-energies", str(DFT / f"{mat}_energies.json"), "--json"])
    J, tol = README_J[mat]
    assert out["J_meV"] == pytest.approx(J, abs=tol)
    # independent evaluation: the reference module's own fit of the same file and structure
    fit, _ = reference_exchange(DFT / f"{mat}_energies.json", ROOT / "data" / "structures" / f"{mat}_monolayer.cif")
    assert out["J_meV"] == pytest.approx(fit.J.tolist(), abs=1e-9)
    assert "structure:" in " ".join(out["notes"])
    # alone in a folder (no CIF to be found): the prototype the file names gives the same numbers
    monkeypatch.chdir(tmp_path)
    shutil.copy(DFT / f"{mat}_energies.json", tmp_path / "e.json")
    alone = _json_out(capsys, ["exchange", "map-energies", str(tmp_path / "e.json"), "--json"])
    assert alone["J_meV"] == pytest.approx(out["J_meV"], abs=1e-6)
    assert "monolayer()" in " ".join(alone["notes"])
    # --structure given explicitly
    given = _json_out(capsys, ["exchange", "map-energies", str(tmp_path / "e.json"), "--json", "--structure",
                               str(ROOT / "data" / "structures" / f"{mat}_monolayer.cif")])
    assert given["J_meV"] == pytest.approx(out["J_meV"], abs=1e-9)


def test_run_dft_step_and_summary_files(tmp_path, capsys):
    """The dft step of the accurate CrI3 run: the same J1–J3 as the run's own mapping step."""
    mapping = json.loads((RUN / "steps" / "mapping.json").read_text())["J_meV"]
    for src in (RUN / "steps" / "dft.json", RUN):
        assert _json_out(capsys, ["exchange", "map-energies", str(src), "--json"])["J_meV"] == \
            pytest.approx(mapping, abs=1e-9)
    # a `wannmag dft --out DIR` folder: one summary.json per configuration
    for rec in json.loads((RUN / "steps" / "dft.json").read_text())["records"]:
        (tmp_path / rec["config"]).mkdir()
        (tmp_path / rec["config"] / "summary.json").write_text(json.dumps(rec))
    assert _json_out(capsys, ["exchange", "map-energies", str(tmp_path), "--json"])["J_meV"] == \
        pytest.approx(mapping, abs=1e-9)


COUNTS = {"FM": ([3, 6, 3], 2), "Neel": ([-3, 6, -3], 2), "zigzag": ([2, -4, -6], 4), "stripy": ([-2, -4, 6], 4)}
J_TRUE = (-2.0, -0.3, 0.1)
DOC = {"spin": 1.5, "distances": [4.04, 7.0, 8.08],
       "configurations": [{"name": k, "energy": -5.0 * n + 2.25 * sum(a * j for a, j in zip(c, J_TRUE)) / 1000,
                           "unit": "eV", "n_sites": n, "counts": c} for k, (c, n) in COUNTS.items()]}


def test_documented_format_recovers_the_model(tmp_path, capsys):
    p = tmp_path / "e.json"
    p.write_text(json.dumps(DOC))
    assert _json_out(capsys, ["exchange", "map-energies", str(p), "--json"])["J_meV"] == \
        pytest.approx(J_TRUE, abs=1e-9)


def _conf(key, value):
    def f(d):
        d["configurations"][1][key] = value
    return f


def _top(key, value):
    def f(d):
        d[key] = value
    return f


BAD = {
    "energy null": (_conf("energy", None), "energy must be a number"),
    "energy list": (_conf("energy", [1, 2]), "energy must be a number"),
    "energy true": (_conf("energy", True), "energy must be a number"),
    "energy NaN": (_conf("energy", math.nan), "not finite"),
    "energy inf": (_conf("energy", math.inf), "not finite"),
    "energy 1e308": (_conf("energy", 1e308), "not a total energy"),
    "n_sites word": (_conf("n_sites", "two"), "positive integer"),
    "n_sites 2.5": (_conf("n_sites", 2.5), "positive integer"),
    "n_sites 0": (_conf("n_sites", 0), "positive integer"),
    "counts scalar": (_conf("counts", 3), "list of numbers"),
    "counts nested": (_conf("counts", [[3, 6, 3]]), "list of numbers"),
    "counts of one shell": (_conf("counts", [3]), "different numbers of shells"),
    "unknown unit": (_conf("unit", "furlong"), "unknown energy unit"),
    "spin string": (_top("spin", "1.5"), "spin must be a number"),
    "spin negative": (_top("spin", -1.5), "spin must be positive"),
    "spin NaN": (_top("spin", math.nan), "spin is not finite"),
    "distances null": (_top("distances", [None, 1, 2]), "distances"),
    "no configurations": (_top("configurations", []), "empty"),
    "configurations null": (_top("configurations", None), "no 'configurations'"),
    "empty reference dict": (_top("configurations", {}), "empty"),
    "not an object": (lambda d: d.clear(), "no 'configurations'"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_malformed_energies_are_one_error_line(tmp_path, capsys, name):
    change, match = BAD[name]
    d = copy.deepcopy(DOC)
    change(d)
    p = tmp_path / "e.json"
    p.write_text(json.dumps(d))
    assert main(["exchange", "map-energies", str(p)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"wannmag: error: {p}: ") and match in err[0], err


@pytest.mark.parametrize("opt,value", [("--shells", "0"), ("--shells", "1000000000"), ("--spin", "nan"),
                                       ("--spin", "-1"), ("--spin", "inf"), ("--max-condition", "nan"),
                                       ("--max-condition", "0")])
def test_bad_options(tmp_path, capsys, opt, value):
    p = tmp_path / "e.json"
    p.write_text(json.dumps(DOC))
    assert main(["exchange", "map-energies", str(p), opt, value]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"wannmag: error: {opt}"), err


def test_reference_file_defects(tmp_path, capsys):
    ref = json.loads((DFT / "CrI3_energies.json").read_text())
    for change, match in [(lambda d: d["configurations"]["Neel"].__setitem__("pattern", [1, 2]), "list of ±1"),
                          (lambda d: d["configurations"]["Neel"].__setitem__("pattern", [1, -1, 1]), "does not fit"),
                          (lambda d: d["configurations"]["Neel"].__setitem__("supercell", [[1, 0], [0, 1]]), "3×3"),
                          (lambda d: d["configurations"]["Neel"].__setitem__("energy_eV_per_cell", math.nan),
                           "not finite"),
                          (lambda d: d["configurations"]["Neel"].pop("supercell"), "lacks supercell"),
                          (lambda d: d.__setitem__("material", "something"), "give --structure")]:
        d = copy.deepcopy(ref)
        change(d)
        p = tmp_path / "r.json"
        p.write_text(json.dumps(d))
        assert main(["exchange", "map-energies", str(p)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"wannmag: error: {p}: ") and match in err[0], err


def test_fifo_is_refused_not_read(tmp_path, capsys):
    fifo = tmp_path / "e.json"
    os.mkfifo(fifo)
    assert main(["exchange", "map-energies", str(fifo)]) == 2  # reading it would block forever
    assert capsys.readouterr().err.strip() == f"wannmag: error: {fifo}: not a regular file"


def test_plot_targets(tmp_path, capsys, monkeypatch):
    p = tmp_path / "e.json"
    p.write_text(json.dumps(DOC))
    monkeypatch.chdir(tmp_path)
    assert main(["exchange", "map-energies", str(p), "--plot", "nodir/x.png"]) == 0  # folders are created
    assert (tmp_path / "nodir" / "x.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [f.name for f in (tmp_path / "nodir").iterdir()] == ["x.png"]  # no temporary file left
    capsys.readouterr()
    (tmp_path / "adir").mkdir()
    for target in ("adir", "/proc/wannmag_x.png"):
        assert main(["exchange", "map-energies", str(p), "--plot", target]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"wannmag: error: {target}") and ".tmp" not in err[0], err


@pytest.mark.parametrize("supercell", [[[1, 0, 0], [1, 2, 0], [0, 0, -1e308]], [[99999999999999999999999, 0, 0],
                                                                                 [1, 2, 0], [0, 0, 1]]])
def test_absurd_supercells_are_refused(tmp_path, capsys, supercell):
    ref = json.loads((DFT / "VPS3_energies.json").read_text())
    ref["configurations"]["FM_rect"]["supercell"] = supercell
    p = tmp_path / "r.json"
    p.write_text(json.dumps(ref))
    assert main(["exchange", "map-energies", str(p)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"wannmag: error: {p}: configuration FM_rect: supercell"), err
