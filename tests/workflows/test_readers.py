"""Readers of users' outputs (VASP, QE, Wannier90) on the tiny synthetic files of tests/workflows/data/."""

import re
import shutil

import pytest

from wannmag.errors import WannmagError
from wannmag.workflows.dft import DFTRecord
from wannmag.workflows.readers import ReaderError, read_output, read_qe, read_vasp, read_wannier_dir

from .conftest import DATA


def one_line(exc):
    msg = str(exc.value)
    assert "\n" not in msg and isinstance(exc.value, WannmagError)
    return msg


@pytest.mark.parametrize("name", ["vasp_fm", "vasp_fm/OUTCAR", "vasp_fm/vasprun.xml"])
def test_vasp(name):
    rec = read_vasp(DATA / name)
    assert isinstance(rec, DFTRecord) and rec.source == "vasp"
    assert rec.energy == pytest.approx(-29.341665)          # energy(sigma->0), eV per cell
    assert rec.energy_per_ion == pytest.approx(-29.341665 / 2)
    assert rec.n_sites == 2 and rec.config == "FM" and rec.pattern == [1, 1]
    assert rec.site_moments == pytest.approx([3.05, 3.05])   # from OUTCAR (next to vasprun.xml)
    assert rec.fermi_level == pytest.approx(-3.2)
    assert rec.gaps == pytest.approx([2.15, 2.15])
    assert rec.code_version == "vasp 6.4.2"
    assert DFTRecord.from_dict(rec.as_dict()) == rec


def test_vasprun_without_outcar_warns(tmp_path):
    shutil.copy(DATA / "vasp_fm" / "vasprun.xml", tmp_path)
    rec = read_vasp(tmp_path / "vasprun.xml")
    assert rec.energy == pytest.approx(-29.341665) and rec.site_moments == []
    assert any("site moments unavailable" in w for w in rec.warnings)


def test_truncated_vasprun(tmp_path):
    text = (DATA / "vasp_fm" / "vasprun.xml").read_text()
    (tmp_path / "vasprun.xml").write_text(text[: len(text) // 2])
    with pytest.raises(ReaderError) as exc:
        read_vasp(tmp_path / "vasprun.xml")
    assert "truncated" in one_line(exc) and "vasprun.xml" in str(exc.value)


def test_truncated_outcar(tmp_path):
    text = (DATA / "vasp_fm" / "OUTCAR").read_text()
    (tmp_path / "OUTCAR").write_text(text[: text.index("FREE ENERGIE")])
    with pytest.raises(ReaderError) as exc:
        read_vasp(tmp_path / "OUTCAR")
    assert "truncated" in one_line(exc) and "OUTCAR" in str(exc.value)


def test_vasp_bad_inputs(tmp_path):
    (tmp_path / "OUTCAR").write_text("")
    with pytest.raises(ReaderError, match="empty"):
        read_vasp(tmp_path / "OUTCAR")
    with pytest.raises(ReaderError, match="neither vasprun.xml nor OUTCAR"):
        read_vasp(_empty_dir(tmp_path))
    with pytest.raises(ReaderError, match="no such"):
        read_vasp(tmp_path / "missing")
    # vasprun.xml and OUTCAR from different runs
    d = tmp_path / "mixed"
    shutil.copytree(DATA / "vasp_fm", d)
    outcar = re.sub(r"energy\(sigma->0\) =\s+-29.34166500", "energy(sigma->0) =  -29.10000000", (d / "OUTCAR").read_text())
    (d / "OUTCAR").write_text(outcar)
    with pytest.raises(ReaderError) as exc:
        read_vasp(d)
    assert "disagrees" in one_line(exc)


def _empty_dir(tmp_path):
    d = tmp_path / "empty"
    d.mkdir()
    return d


def test_qe():
    rec = read_qe(DATA / "qe_neel.out")
    assert rec.source == "qe" and rec.energy == pytest.approx(-29.274840, abs=1e-5)
    assert rec.site_moments == pytest.approx([3.05, -3.05]) and rec.pattern == [1, -1]
    assert rec.config == "AFM" and rec.fermi_level == pytest.approx(-3.2)
    assert rec.gaps == pytest.approx([2.15, 2.15])
    assert read_qe(DATA / "qe_neel.out", config="Neel").config == "Neel"
    assert read_output(DATA / "qe_neel.out").energy == rec.energy


def test_qe_bad_inputs(tmp_path):
    text = (DATA / "qe_neel.out").read_text()
    (tmp_path / "trunc.out").write_text(text[: text.index("JOB DONE")])
    with pytest.raises(ReaderError) as exc:
        read_qe(tmp_path / "trunc.out")
    assert "truncated" in one_line(exc)
    (tmp_path / "noconv.out").write_text(text.replace("convergence has been achieved in  25 iterations",
                                                      "convergence NOT achieved after 100 iterations: stopping"))
    with pytest.raises(ReaderError, match="did not converge"):
        read_qe(tmp_path / "noconv.out")
    (tmp_path / "other.out").write_text("hello\n")
    with pytest.raises(ReaderError, match="not a pw.x output"):
        read_qe(tmp_path / "other.out")
    lines = text.splitlines()
    cut = [ln for ln in lines if "magn=" not in ln or "atom   8" not in ln]
    (tmp_path / "mag.out").write_text("\n".join(cut) + "\n")
    with pytest.raises(ReaderError, match="lists 7 atoms, the structure has 8"):
        read_qe(tmp_path / "mag.out")


def test_wannier_dir():
    rec = read_wannier_dir(DATA / "w90")
    assert rec.source == "wannier90" and rec.energy is None
    assert rec.extra["num_wann"] == 10 and rec.extra["seed"] == "CrI3"
    assert rec.extra["hr_up"].endswith("CrI3_up_hr.dat") and rec.extra["hr_dn"].endswith("CrI3_dn_hr.dat")
    assert rec.extra["hr_nm"].endswith("CrI3_nm_hr.dat")
    assert rec.formula == "Cr2I6" and rec.n_sites == 2
    assert read_output(DATA / "w90").extra["num_wann"] == 10


def test_wannier_dir_missing_channel(tmp_path):
    d = tmp_path / "w"
    shutil.copytree(DATA / "w90", d)
    (d / "CrI3_dn_hr.dat").unlink()
    with pytest.raises(ReaderError) as exc:
        read_wannier_dir(d)
    assert "spin-down channel missing" in one_line(exc)
    shutil.copy(DATA / "w90" / "CrI3_dn_hr.dat", d)
    (d / "CrI3_up_hr.dat").unlink()
    with pytest.raises(ReaderError, match="spin-up channel missing"):
        read_wannier_dir(d)


def test_wannier_dir_mismatched_num_wann(tmp_path):
    d = tmp_path / "w"
    shutil.copytree(DATA / "w90", d)
    win = (d / "CrI3_dn.win").read_text().replace("num_wann = 10", "num_wann = 28")
    (d / "CrI3_dn.win").write_text(win)
    with pytest.raises(ReaderError) as exc:
        read_wannier_dir(d)
    assert "num_wann differs" in one_line(exc) and "CrI3_dn.win: 28" in str(exc.value)
    shutil.copy(DATA / "w90" / "CrI3_dn.win", d)
    hr = (d / "CrI3_up_hr.dat").read_text().splitlines()
    hr[1] = "          12"
    (d / "CrI3_up_hr.dat").write_text("\n".join(hr) + "\n")
    with pytest.raises(ReaderError, match="num_wann differs"):
        read_wannier_dir(d)


def test_wannier_dir_other_errors(tmp_path):
    with pytest.raises(ReaderError, match="no such directory"):
        read_wannier_dir(tmp_path / "none")
    with pytest.raises(ReaderError, match="no <seed>_up_hr.dat"):
        read_wannier_dir(_empty_dir(tmp_path))
    d = tmp_path / "w"
    shutil.copytree(DATA / "w90", d)
    (d / "CrI3_up.win").unlink()
    with pytest.raises(ReaderError, match="no .win file for the up channel"):
        read_wannier_dir(d)
    (d / "CrI3_up.win").write_text("garbage\n")
    with pytest.raises(ReaderError, match="no num_wann"):
        read_wannier_dir(d)
    (d / "CrI3_up.win").unlink()
    (d / "CrI3_dn_hr.dat").write_text("header\nnot a number\n")
    with pytest.raises(ReaderError):
        read_wannier_dir(d)


def test_read_output_dispatch(tmp_path):
    assert read_output(DATA / "vasp_fm").source == "vasp"
    (tmp_path / "x.txt").write_text("nothing useful\n")
    with pytest.raises(ReaderError, match="unrecognised output"):
        read_output(tmp_path / "x.txt")
    with pytest.raises(ReaderError, match="no such file"):
        read_output(tmp_path / "absent")


def test_non_regular_files_are_refused(tmp_path):
    """A FIFO named as vasprun.xml would block the reader forever: refused with one line."""
    import os

    from wannmag.errors import WannmagError
    from wannmag.workflows.readers import read_vasp

    fifo = tmp_path / "vasprun.xml"
    os.mkfifo(fifo)
    with pytest.raises(WannmagError, match="not a regular file"):
        read_vasp(fifo)
