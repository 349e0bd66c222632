"""Issue 16, item 8 (spin-model JSON, TB2J files, export targets): every malformed model is one
``wannmag: error: <file>: <problem>`` line and exit status 2 in every sub-command that reads it; validation lives in
``SpinModel.from_dict``/``validate`` and in the importers, so every consumer benefits."""

import copy
import json
import math
import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from wannmag.cli import main
from wannmag.magnetism import SpinModel
from wannmag.magnetism.io import ExchangeFileError, ExchangeFileWarning, read_tb2j
from wannmag.magnetism.spinmodel import MAX_EXCHANGE_MEV, SpinModelError

ROOT = Path(__file__).resolve().parents[2]
BASE = json.loads((ROOT / "data" / "mc" / "VPS3_fast_spin_model.json").read_text())


def _set(path, value):
    def f(d):
        obj = d
        for key in path[:-1]:
            obj = obj[key]
        obj[path[-1]] = value
    return f


CASES = {
    "position of 2 numbers": (_set(["sites", 0, "position"], [0, 0]), "position"),
    "R of 2 numbers": (_set(["bonds", 0, "R"], [1, 0]), "R"),
    "2x2 cell": (_set(["cell"], [[1, 0], [0, 1]]), "cell"),
    "spin 0": (_set(["sites", 0, "spin"], 0), "spin S = 0"),
    "negative spin": (_set(["sites", 0, "spin"], -1.5), "spin S = -1.5"),
    "NaN spin": (_set(["sites", 0, "spin"], math.nan), "not finite"),
    "string spin": (_set(["sites", 0, "spin"], "1.5"), "must be a number"),
    "boolean spin": (_set(["sites", 0, "spin"], True), "must be a number"),
    "NaN J": (_set(["bonds", 0, "J"], math.nan), "not finite"),
    "NaN in a J tensor": (_set(["bonds", 0, "J", 1, 1], math.nan), "not finite"),
    "J = 1e308": (_set(["bonds", 0, "J"], 1e308), f"exceeds {MAX_EXCHANGE_MEV:g} meV"),
    "integer J beyond float": (_set(["bonds", 0, "J"], 10 ** 400), "too large"),
    "NaN field": (_set(["field_T"], [0, 0, math.nan]), "field_T"),
    "inf single-ion": (_set(["single_ion", 0, 2, 2], math.inf), "not finite"),
    "huge single-ion": (_set(["single_ion", 0, 2, 2], 1e6), "exceeds"),
    "no sites": (_set(["sites"], []), "sites"),
    "boolean site index": (_set(["bonds", 0, "i"], True), "integers"),
    "site index out of range": (_set(["bonds", 0, "i"], 7), "outside"),
    "fractional R": (_set(["bonds", 0, "R"], [0.5, 0, 0]), "integers"),
    "R beyond int64 (fuzz c0360)": (_set(["bonds", 0, "R", 2], 10 ** 30), "beyond"),
    "coincident sites": (lambda d: d["sites"][1].__setitem__("position", d["sites"][0]["position"]), "coincide"),
    "singular cell": (_set(["cell"], [[1, 0, 0], [2, 0, 0], [0, 0, 1]]), "singular"),
    "duplicate bond": (lambda d: d["bonds"].append(copy.deepcopy(d["bonds"][0])), "already"),
    "bonds not a list": (_set(["bonds"], {"a": 1}), "bonds"),
    "meta not an object": (_set(["meta"], [1]), "meta"),
    "newer format": (_set(["version"], 99), "version"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_models_are_refused_in_one_place(tmp_path, name):
    change, match = CASES[name]
    d = copy.deepcopy(BASE)
    change(d)
    path = tmp_path / "model.json"
    path.write_text(json.dumps(d))  # NaN/Infinity as Python's json writes them
    with pytest.raises(SpinModelError, match=match) as exc:
        SpinModel.load(path)
    assert str(exc.value).startswith(str(path)) and "\n" not in str(exc.value)
    assert str(exc.value).count(str(path)) == 1


@pytest.mark.parametrize("name", ["spin 0", "NaN J", "J = 1e308", "2x2 cell", "NaN field",
                                  "R beyond int64 (fuzz c0360)"])
def test_every_sub_command_gives_one_error_line(tmp_path, capsys, name):
    change, _ = CASES[name]
    d = copy.deepcopy(BASE)
    change(d)
    path = tmp_path / "model.json"
    path.write_text(json.dumps(d))
    for argv in (["anisotropy", str(path)], ["export", str(path), str(tmp_path / "o.out"), "--to", "tb2j"],
                 ["mc", str(path), "--sizes", "4", "--sweeps", "10", "--tmin", "10", "--tmax", "20"]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"wannmag: error: {path}: "), (argv, err)


def test_the_shipped_models_still_load():
    for p in (ROOT / "data" / "mc" / "VPS3_fast_spin_model.json", ROOT / "data" / "runs" / "CrI3_accurate" /
              "spin_model.json"):
        m = SpinModel.load(p)
        assert m.n_sites == 2 and len(m.bonds) == 12


def test_fifo_and_directory_inputs_are_refused(tmp_path, capsys):
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    for argv in (["anisotropy", str(fifo)], ["export", str(fifo), str(tmp_path / "o"), "--to", "tb2j"],
                 ["export", str(fifo), str(tmp_path / "o"), "--to", "tb2j", "--from", "tb2j"],
                 ["export", str(tmp_path), str(tmp_path / "o"), "--to", "tb2j"]):
        assert main(argv) == 2, argv  # a FIFO would hang the reader
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("wannmag: error:"), err


def test_anisotropy_pattern_of_wrong_length(capsys):
    model = str(ROOT / "data" / "mc" / "VPS3_fast_spin_model.json")
    for pattern in ("1", "1,-1,1", "1,2", ","):
        assert main(["anisotropy", model, "--pattern", pattern]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("wannmag: error: --pattern"), err
    assert main(["anisotropy", model, "--pattern", "1,-1"]) == 0


def test_export_targets(tmp_path, capsys):
    model = str(ROOT / "data" / "mc" / "VPS3_fast_spin_model.json")
    (tmp_path / "d.UCF").mkdir()
    for out, fmt in ((tmp_path, "tb2j"), (Path("/proc/wannmag_x.out"), "tb2j"), (tmp_path / "d", "vampire")):
        assert main(["export", model, str(out), "--to", fmt]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("wannmag: error:") and ".tmp" not in err[0], err
    # parent folders are created; the file is complete and no temporary file is left
    out = tmp_path / "new" / "dir" / "m.txt"
    assert main(["export", model, str(out), "--to", "magnopy"]) == 0
    assert out.read_text().rstrip().endswith("=" * 80)
    assert sorted(p.name for p in out.parent.iterdir()) == ["m.txt"]


def _tb2j_lines():
    return (ROOT / "data" / "dft" / "CrI3" / "TB2J_exchange.out").read_text().splitlines()


def test_truncated_tb2j_files_are_refused(tmp_path):
    """Every cut of the real TB2J 0.9.22 file (12 bonds, rcut 8.5 Å in its command line) is refused: an entry
    cut inside its tensor, an entry lacking the parts the others have, a pair listed in one direction only, or
    whole pairs missing below the recorded rcut (e.g. the first 3 of the 12 bonds)."""
    lines = _tb2j_lines()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExchangeFileWarning)
        assert len(read_tb2j(ROOT / "data" / "dft" / "CrI3" / "TB2J_exchange.out").bonds) == 12
        first = next(k for k, ln in enumerate(lines) if ln.startswith("-" * 20))
        for cut in range(first + 1, len(lines)):
            p = tmp_path / "exchange.out"
            p.write_text("\n".join(lines[:cut]) + "\n")
            with pytest.raises(ExchangeFileError, match="truncated|edited") as exc:
                read_tb2j(p)
            assert "\n" not in str(exc.value) and str(p) in str(exc.value)
    p.write_text("\n".join(lines[:84]) + "\n")  # exactly the three nearest-neighbour bonds, both directions
    with pytest.raises(ExchangeFileError, match=r"lists 3 of the 12 magnetic pairs closer than the rcut = 8.5"):
        read_tb2j(p)


def test_tb2j_importer_validates_the_model(tmp_path):
    text = "\n".join(_tb2j_lines()).replace("J_iso:  1.0848", "J_iso:  1e300")
    text = text.replace("   Cr1   Cr2   (  0,   0,   0)  1.0848", "   Cr1   Cr2   (  0,   0,   0)  1e300")
    p = tmp_path / "exchange.out"
    p.write_text(text)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExchangeFileWarning)
        with pytest.raises(ExchangeFileError, match="exceeds"):
            read_tb2j(p)


def test_validate_accepts_a_good_model_and_leaves_it_unchanged():
    m = SpinModel.from_dict(copy.deepcopy(BASE))
    before = json.dumps(m.as_dict())
    assert m.validate() is m and json.dumps(m.as_dict()) == before
    assert np.allclose(m.single_ion, BASE["single_ion"])


def test_figure_targets(tmp_path, capsys):
    """Figures are written atomically into created folders; a directory or an unwritable place is one line."""
    from wannmag.errors import WannmagError
    from wannmag.magnetism.plot import plot_exchange_map

    model = str(ROOT / "data" / "mc" / "VPS3_fast_spin_model.json")
    out = tmp_path / "a" / "b" / "bands.png"
    assert main(["anisotropy", model, "--order", "Neel", "--plot", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG" and [p.name for p in out.parent.iterdir()] == ["bands.png"]
    capsys.readouterr()
    for target in (tmp_path, Path("/proc/wannmag_bands.png")):
        assert main(["anisotropy", model, "--order", "Neel", "--plot", str(target)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"wannmag: error: {target}"), err
    with pytest.raises(WannmagError, match="cannot write"):
        plot_exchange_map(SpinModel.load(model), "/proc/wannmag_map.png")


@pytest.mark.parametrize("args", [["--npoints", "100000000"], ["--npoints", "1"], ["--path", ""], ["--g", "nan"],
                                  ["--g", "-1"]])
def test_anisotropy_option_bounds(capsys, args):
    model = str(ROOT / "data" / "mc" / "VPS3_fast_spin_model.json")
    assert main(["anisotropy", model, "--order", "Neel", *args]) == 2  # 1e8 k-points would hang
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("wannmag: error: --"), err
