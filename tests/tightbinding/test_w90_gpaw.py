"""Wannier90 files written by GPAW's ``gpaw.wannier.wannier90`` (projections ``f=x, y, z : s # n = 3, l = 2``, one
line per orbital, m in GPAW's real-harmonic order) and the ``--magnetic`` / ``--centre-tol`` options.

The shipped CrI3 Wannier pair is rewritten the GPAW way: its orbitals permuted into GPAW's m order within every
shell (hr.dat, centres and wsvec alike) and its .win written as GPAW writes it.  Reading it back must give the same
model (orbital names, H(R), centres) and the force theorem the same J as the original files.
"""

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from wannmag.cli import main
from wannmag.tightbinding import read_w90
from wannmag.tightbinding.w90 import (parse_projections, read_centres_xyz, read_hr, read_win, read_wsvec,
                                      write_centres, write_hr, write_wsvec)

DATA = Path(__file__).resolve().parents[2] / "data" / "dft" / "CrI3"
GPAW_M = {0: ["s"], 1: ["py", "pz", "px"], 2: ["dxy", "dyz", "dz2", "dxz", "dx2-y2"]}  # GPAW's order, W90 names
PN = {"Cr": {2: 3}, "I": {1: 5}}  # principal quantum numbers GPAW would write


def gpaw_win(wd, n_and_l: bool = True) -> str:
    """A .win as gpaw.wannier.wannier90.Wannier90.write_input writes it (GPAW 26.7)."""
    frac = wd.atoms.get_scaled_positions(wrap=False)
    sym = wd.atoms.get_chemical_symbols()
    specs = parse_projections(wd)
    out = ["begin projections"]
    for a, (el, r) in enumerate(zip(sym, frac)):
        for l in sorted({sp.l for sp in specs if np.allclose(sp.site, wd.atoms.positions[a])}):
            for _ in range(2 * l + 1):
                line = f"f={r[0]:1.2f}, {r[1]:1.2f}, {r[2]:1.2f} : s "
                out.append(line + (f"# n = {PN[el][l]}, l = {l}" if n_and_l else ""))
    out += ["end projections", "", "spinors = False", "write_hr = True", "write_xyz = True", "",
            f"num_bands       = {wd.num_wann}", "", "guiding_centres = True", f"num_wann        = {wd.num_wann}",
            "num_iter        = 100", "", f"fermi_energy  = {wd.fermi_energy:2.3f}", "dis_num_iter  = 200",
            "dis_mix_ratio = 0.5", "", "begin unit_cell_cart"]
    out += [f"{v[0]:14.10f} {v[1]:14.10f} {v[2]:14.10f}" for v in wd.lattice]
    out += ["end unit_cell_cart", "", "begin atoms_frac"]
    out += [f"{el}{r[0]:14.10f} {r[1]:14.10f} {r[2]:14.10f}" for el, r in zip(sym, frac)]
    out += ["end atoms_frac", "", "mp_grid = {} {} {}".format(*wd.mp_grid), ""]
    return "\n".join(out) + "\n"


def gpaw_order(wd) -> list[int]:
    """File index of the original (Wannier90-order) orbital at each position of the GPAW-order file."""
    specs = parse_projections(wd)
    q = []
    for a in range(len(wd.atoms)):
        idx = [i for i, sp in enumerate(specs) if np.allclose(sp.site, wd.atoms.positions[a])]
        for l in sorted({specs[i].l for i in idx}):
            names = {specs[i].name: i for i in idx if specs[i].l == l}
            q += [names[n] for n in GPAW_M[l]]
    return q


def write_gpaw_dir(dest: Path, n_and_l: bool = True) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for ch in ("up", "dn"):
        seed = DATA / f"CrI3_{ch}"
        wd = read_win(str(seed) + ".win")
        q = gpaw_order(wd)
        assert sorted(q) == list(range(wd.num_wann)) and q != list(range(wd.num_wann))
        R, ndeg, H = read_hr(str(seed) + "_hr.dat")
        write_hr(dest / f"CrI3_{ch}_hr.dat", R, H[:, q][:, :, q], ndeg.astype(int), header="written by GPAW test")
        c = read_centres_xyz(str(seed) + "_centres.xyz", wd.num_wann)
        write_centres(dest / f"CrI3_{ch}_centres.xyz", c[q], wd.atoms)
        shifts = read_wsvec(str(seed) + "_wsvec.dat", R, wd.num_wann)
        nw = wd.num_wann
        new = {(iR, j, k): shifts[(iR, q[j], q[k])] for iR in range(len(R)) for j in range(nw) for k in range(nw)}
        write_wsvec(dest / f"CrI3_{ch}_wsvec.dat", R, new, nw)
        (dest / f"CrI3_{ch}.win").write_text(gpaw_win(wd, n_and_l))
    return dest


@pytest.fixture(scope="module")
def gpaw_dir(tmp_path_factory):
    return write_gpaw_dir(tmp_path_factory.mktemp("gpaw") / "CrI3")


@pytest.fixture(scope="module")
def original():
    return read_w90(DATA, kind="collinear")


def test_gpaw_win_reads_the_same_model(gpaw_dir, original):
    assert "# n = 3, l = 2" in (gpaw_dir / "CrI3_up.win").read_text()
    m = read_w90(gpaw_dir, kind="collinear")
    for a, b in ((m.up, original.up), (m.down, original.down)):
        assert [(o.atom, o.l, o.name) for o in a.orbitals] == [(o.atom, o.l, o.name) for o in b.orbitals]
        assert np.allclose(a.centres, b.centres, atol=1e-7)
        ra = {tuple(r): h for r, h in zip(a.R, a.H)}
        rb = {tuple(r): h for r, h in zip(b.R, b.H)}
        assert ra.keys() == rb.keys()
        assert max(np.abs(ra[r] - rb[r]).max() for r in ra) < 1e-12
    assert sorted({o.atom for o in m.up.orbitals if o.l == 2}) == [0, 1]  # the Cr d shells are recognised


def _mft_json(path, *extra, capsys):
    assert main(["exchange", "mft", str(path), "--kmesh", "6", "6", "1", "--poles", "40", "--json", *extra]) == 0
    out = capsys.readouterr().out
    return json.loads(out[out.index("{"):])


def test_gpaw_win_gives_the_same_mft_exchange(gpaw_dir, capsys):
    ref = _mft_json(DATA, capsys=capsys)
    new = _mft_json(gpaw_dir, capsys=capsys)
    assert len(new["bonds"]) == len(ref["bonds"]) > 0
    for a, b in zip(new["bonds"], ref["bonds"]):
        assert (a["i"], a["j"], a["R"]) == (b["i"], b["j"], b["R"])
        assert a["J"] == pytest.approx(b["J"], abs=1e-9)


def test_magnetic_option_names_the_magnetic_atoms(tmp_path, capsys):
    """GPAW lines without the (n, l) comment are plain s projections: no d orbitals are found and the magnetic atoms
    must be named; with --magnetic Cr the force theorem gives the original J (J is invariant under relabelling the
    orbitals of an atom)."""
    d = write_gpaw_dir(tmp_path / "plain", n_and_l=False)
    assert main(["exchange", "mft", str(d), "--kmesh", "6", "6", "1", "--poles", "40"]) == 2
    err = capsys.readouterr().err
    assert re.fullmatch(r"wannmag: error: .*no atom carries d orbitals.*--magnetic.*\n", err), err
    ref = _mft_json(DATA, capsys=capsys)
    new = _mft_json(d, "--magnetic", "Cr", capsys=capsys)
    assert [b["J"] for b in new["bonds"]] == pytest.approx([b["J"] for b in ref["bonds"]], abs=1e-9)
    assert main(["exchange", "mft", str(d), "--magnetic", "Fe"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Fe" in err and "wannmag: error:" in err


def test_magnetic_option_of_tb_and_superexchange(gpaw_dir, capsys):
    assert main(["tb", str(gpaw_dir), "--magnetic", "Cr", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert sorted(c["atom"] for c in rep["crystal_field"]) == [0, 1]
    assert main(["tb", str(gpaw_dir), "--magnetic", "Xx"]) == 2
    assert "Xx" in capsys.readouterr().err
    assert main(["superexchange", str(gpaw_dir), "--magnetic", "Cr", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["bonds"]
    assert main(["superexchange", str(gpaw_dir), "--magnetic", "I"]) == 2
    assert "wannmag: error:" in capsys.readouterr().err


def test_centre_tol_of_exchange_mft(tmp_path, capsys):
    d = tmp_path / "moved"
    shutil.copytree(DATA, d)
    for ch in ("up", "dn"):  # move the first I p centre 0.6 Å from its atom (as disentangled S/P centres are)
        f = d / f"CrI3_{ch}_centres.xyz"
        lines = f.read_text().splitlines()
        k = 2 + 10  # first I p Wannier function
        tok = lines[k].split()
        lines[k] = f"X {float(tok[1]) + 0.6:16.8f} {tok[2]} {tok[3]}"
        f.write_text("\n".join(lines) + "\n")
    assert main(["exchange", "mft", str(d), "--kmesh", "6", "6", "1", "--poles", "40"]) == 2
    assert "tolerance 0.5 Å" in capsys.readouterr().err
    ref = _mft_json(DATA, capsys=capsys)
    new = _mft_json(d, "--centre-tol", "0.8", capsys=capsys)
    assert [b["J"] for b in new["bonds"]] == pytest.approx([b["J"] for b in ref["bonds"]], abs=1e-9)
    for bad in ("0", "-1", "nan"):
        assert main(["exchange", "mft", str(d), "--centre-tol", bad]) == 2
        err = capsys.readouterr().err
        assert err.startswith("wannmag: error:") and "centre" in err and err.count("\n") == 1
