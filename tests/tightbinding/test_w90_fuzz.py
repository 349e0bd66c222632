"""Fuzzed Wannier90 input and out-of-range command-line values for `exchange mft`, `tb` and `superexchange`
(issue 16, item 8): every bad input is one line ``wannmag: error: ...`` and exit status 2 — never a traceback, never
exit 0 with NaN/inf or with silently changed numbers.

The model is a small collinear CrI3-like Slater–Koster pair written as Wannier90 files (hr.dat, .win with
fermi_energy, centres, wsvec on a 3×3×1 grid), so that each case runs in a fraction of a second.
"""

import random
import re
import shutil

import numpy as np
import pytest

from wannmag.cli import main
from wannmag.tightbinding import slater_koster_collinear, write_w90_model

# CrI3-like d-p parameters (eV), as the fixtures of conftest.py
SK_KW = dict(d_atoms="Cr", p_atoms="I", eps_p=-1.5, crystal_field=(-0.1, 0.3),
             params=dict(pds=-1.0, pdp=0.45, dds=-0.12, ddp=0.06, ddd=-0.015, pps=0.5, ppp=-0.12, cutoff={"dd": 8.2}))

MFT = ["--kmesh", "3", "3", "1", "--poles", "10", "--json"]


@pytest.fixture(scope="module")
def pair_dir(tmp_path_factory, cri3_atoms):
    d = tmp_path_factory.mktemp("fuzz") / "base"
    d.mkdir()
    pair = slater_koster_collinear(cri3_atoms, exchange_splitting=3.0, eps_d=0.0, **SK_KW)
    for ch, m in (("up", pair.up), ("dn", pair.down)):
        write_w90_model(m, d / f"sk_{ch}", mp_grid=(3, 3, 1), wsvec=True, extra={"fermi_energy": -0.5})
    return d


@pytest.fixture()
def case(pair_dir, tmp_path):
    d = tmp_path / "case"
    shutil.copytree(pair_dir, d)
    return d


def run(capsys, *argv):
    rc = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def clean_error(rc, err, *names):
    """Exit 2, stderr exactly one line 'wannmag: error: …' naming every string of ``names``."""
    assert rc == 2, err
    assert re.fullmatch(r"wannmag: error: [^\n]+\n", err), err
    for n in names:
        assert n in err, err
    return err


def _edit_line(path, index, fn):
    lines = path.read_text().splitlines()
    lines[index] = fn(lines[index])
    path.write_text("\n".join(lines) + "\n")


def _first_element_line(hr):
    lines = hr.read_text().splitlines()
    nr = int(lines[2])
    return 3 + (nr + 14) // 15  # 0-based, 15 degeneracies per line


# ------------------------------------------------------------------------------------------- non-finite numbers
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN"])
def test_non_finite_hr_element_is_refused_with_file_and_line(case, capsys, value):
    hr = case / "sk_up_hr.dat"
    i = _first_element_line(hr) + 7
    _edit_line(hr, i, lambda ln: ln.rsplit(None, 1)[0] + f"  {value}")
    for cmd in (["exchange", "mft", case, *MFT], ["tb", case]):
        rc, out, err = run(capsys, *cmd)
        clean_error(rc, err, f"sk_up_hr.dat:{i + 1}:", "not a finite number")


def test_nan_wannier_centre_is_refused(case, capsys):
    c = case / "sk_dn_centres.xyz"
    _edit_line(c, 4, lambda ln: "X nan " + " ".join(ln.split()[2:]))
    rc, out, err = run(capsys, "exchange", "mft", case, *MFT)
    clean_error(rc, err, "sk_dn_centres.xyz:5:", "finite")
    _edit_line(c, 4, lambda ln: "X 1e308 0 0")
    rc, out, err = run(capsys, "tb", case)
    clean_error(rc, err, "sk_dn_centres.xyz:5:")


@pytest.mark.parametrize("value", ["nan", "inf", "abc", "1.0 2.0", ""])
def test_bad_win_fermi_energy_is_refused(case, capsys, value):
    for ch in ("up", "dn"):
        w = case / f"sk_{ch}.win"
        w.write_text(re.sub(r"fermi_energy = .*", f"fermi_energy = {value}", w.read_text()))
    for cmd in (["exchange", "mft", case, *MFT], ["tb", case]):
        rc, out, err = run(capsys, *cmd)
        err = clean_error(rc, err, "sk_up.win:", "fermi_energy")
        assert "hr.dat" not in err


@pytest.mark.parametrize("line, value", [("num_wann", "num_wann = 28x"), ("mp_grid", "mp_grid = 3 3"),
                                         ("mp_grid", "mp_grid = 3 0 1")])
def test_bad_win_parameters_name_the_win_file(case, capsys, line, value):
    w = case / "sk_up.win"
    w.write_text(re.sub(rf"{line} = .*", value, w.read_text()))
    rc, out, err = run(capsys, "tb", case)
    err = clean_error(rc, err, "sk_up.win:", line)
    assert "hr.dat" not in err


def test_absurd_lattice_in_win_names_the_win_file(case, capsys):
    w = case / "sk_up.win"
    lines = w.read_text().splitlines()
    k = lines.index("begin unit_cell_cart") + 2
    lines[k] = "1e308 0 0"
    w.write_text("\n".join(lines) + "\n")
    rc, out, err = run(capsys, "exchange", "mft", case, *MFT)
    err = clean_error(rc, err, f"sk_up.win:{k + 1}:", "lattice")
    assert "hr.dat" not in err


# ----------------------------------------------------------------------------------- random damage, seeded
def _damage(path, rng):
    text = path.read_text()
    lines = text.splitlines(keepends=True)
    kind = rng.choice(["truncate", "delete", "bitflip", "duplicate"])
    if kind == "truncate":
        n = rng.randrange(len(text))
        path.write_text(text[:n])
        return f"{path.name} truncated at character {n}"
    if kind == "delete":
        i = rng.randrange(len(lines))
        del lines[i]
        path.write_text("".join(lines))
        return f"{path.name} line {i + 1} deleted"
    if kind == "duplicate":
        i = rng.randrange(len(lines))
        lines.insert(i, lines[i])
        path.write_text("".join(lines))
        return f"{path.name} line {i + 1} duplicated"
    data = bytearray(path.read_bytes())
    i, bit = rng.randrange(len(data)), rng.randrange(8)
    data[i] ^= 1 << bit
    path.write_bytes(bytes(data))
    return f"{path.name} byte {i} bit {bit} flipped"


@pytest.mark.parametrize("target", ["sk_up_hr.dat", "sk_dn.win", "sk_up_centres.xyz"])
def test_damaged_files_give_one_clean_error_or_a_finite_result(pair_dir, tmp_path, capsys, target):
    rng = random.Random(f"issue16-{target}")
    outcomes = {"ok": 0, "error": 0}
    for n in range(16):
        d = tmp_path / f"c{n}"
        shutil.copytree(pair_dir, d)
        trigger = _damage(d / target, rng)
        for cmd in (["exchange", "mft", d, *MFT], ["tb", d, "--json"]):
            rc, out, err = run(capsys, *cmd)
            if rc == 0:
                assert not re.search(r"\b(nan|inf)\b", out, re.IGNORECASE), trigger
                outcomes["ok"] += 1
            else:
                err = clean_error(rc, err)
                assert "internal error" not in err, (trigger, err)
                if target.endswith(".win") and "hr.dat" in err:
                    assert ".win" in err, (trigger, err)  # a .win problem names the .win file
                outcomes["error"] += 1
    assert outcomes["error"] >= 8  # the damage is really seen (not silently accepted)


# ------------------------------------------------------------------------------------------ command-line values
@pytest.mark.parametrize("args, option", [
    (["--kmesh", "0", "0", "0"], "--kmesh"), (["--kmesh", "-1", "3", "1"], "--kmesh"),
    (["--kmesh", "3", "3", "0"], "--kmesh"), (["--kmesh", "100000", "100000", "1"], "--kmesh"),
    (["--poles", "0"], "--poles"), (["--poles", "100000000"], "--poles"), (["--efermi", "nan"], "--efermi"),
    (["--efermi", "inf"], "--efermi"), (["--rcut", "nan"], "--rcut"), (["--rcut", "-1"], "--rcut"),
    (["--rcut", "0"], "--rcut"), (["--nelect", "nan"], "--nelect"), (["--nelect", "-3"], "--nelect"),
    (["--centre-tol", "nan"], "--centre-tol"), (["--nelect", "42", "--efermi", "0"], "--nelect"),
    (["--magnetic", "Qq"], "--magnetic")])
def test_mft_refuses_out_of_range_values(pair_dir, capsys, args, option):
    rc, out, err = run(capsys, "exchange", "mft", pair_dir, *args)
    clean_error(rc, err, option)


def test_mft_refuses_a_k_mesh_beyond_memory_and_a_fermi_level_outside_the_bands(pair_dir, capsys):
    rc, out, err = run(capsys, "exchange", "mft", pair_dir, "--kmesh", "1000", "1000", "1")
    clean_error(rc, err, "1000×1000×1 k-mesh", "GB")
    for ef in ("100", "-100"):
        rc, out, err = run(capsys, "exchange", "mft", pair_dir, *MFT, "--efermi", ef)
        clean_error(rc, err, "all bands")


@pytest.mark.parametrize("args, option", [
    (["--nelect", "nan"], "--nelect"), (["--nelect", "inf"], "--nelect"), (["--nelect", "1", "2", "3"], "--nelect"),
    (["--efermi", "nan"], "--efermi"), (["--U", "nan"], "--U"), (["--U", "-1"], "--U"),
    (["--centre-tol", "nan"], "--centre-tol"), (["--centre-tol", "0"], "--centre-tol"),
    (["--shells", "0"], "--shells"), (["--magnetic", "12"], "--magnetic")])
def test_tb_refuses_out_of_range_values(pair_dir, capsys, args, option):
    rc, out, err = run(capsys, "tb", pair_dir, *args)
    clean_error(rc, err, option)


@pytest.mark.parametrize("args, option", [
    (["--kmesh", "0", "1", "1", "--green"], "--kmesh"), (["--U", "nan"], "--U"), (["--JH", "inf"], "--JH"),
    (["--delta", "nan"], "--delta"), (["--tendq", "-1"], "--tendq"), (["--bond", "1000000"], "--bond")])
def test_superexchange_refuses_out_of_range_values(pair_dir, capsys, args, option):
    rc, out, err = run(capsys, "superexchange", pair_dir, *args)
    clean_error(rc, err, option)


def test_the_undamaged_model_runs(pair_dir, capsys):
    """The baseline of every case above: the same commands on the intact files succeed with finite numbers."""
    import json

    rc, out, err = run(capsys, "exchange", "mft", pair_dir, *MFT)
    assert rc == 0, err
    res = json.loads(out[out.index("{"):])
    assert res["bonds"] and all(np.isfinite(b["J"]) for b in res["bonds"])
    rc, out, err = run(capsys, "tb", pair_dir, "--json")
    assert rc == 0, err
