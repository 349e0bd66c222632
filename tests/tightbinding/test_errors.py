"""Malformed input gives one clear line naming the file (and line) — never a traceback or a silently wrong model."""

import re

import numpy as np
import pytest

from wannmag.cli import main
from wannmag.errors import WannmagError
from wannmag.tightbinding import TBError, TBFileError, TBModel, read_w90, read_w90_seed


def _fails(seed, match, **kw):
    with pytest.raises(TBFileError) as info:
        read_w90_seed(seed, **kw)
    msg = str(info.value)
    assert isinstance(info.value, WannmagError)
    assert "\n" not in msg
    assert re.search(match, msg), msg
    return msg


def _edit(path, fn):
    lines = path.read_text().splitlines()
    path.write_text("\n".join(fn(lines)) + "\n")


def _data_start(hr):
    """0-based index of the first matrix-element line of an hr file written by wannmag (15 degeneracies per line)."""
    lines = hr.read_text().splitlines()
    nr = int(lines[2])
    return 3 + (nr + 14) // 15


def test_truncated_hr(w90_dir):
    hr = w90_dir / "cri3_hr.dat"
    _edit(hr, lambda ls: ls[:-10])
    n = len(hr.read_text().splitlines())
    _fails(w90_dir / "cri3", rf"cri3_hr\.dat:{n + 1}: file ends after .* matrix-element lines \(truncated file\?\)")


def test_truncated_degeneracy_list(w90_dir):
    hr = w90_dir / "cri3_hr.dat"
    _edit(hr, lambda ls: ls[:3])
    _fails(w90_dir / "cri3", r"cri3_hr\.dat:4: file ends before the Wigner–Seitz degeneracies")
    _edit(hr, lambda ls: ls[:3] + ["    1    2   -1"])
    _fails(w90_dir / "cri3", r"cri3_hr\.dat:4: Wigner–Seitz degeneracy must be positive, found -1")


def test_garbage_in_a_matrix_element_line(w90_dir):
    hr = w90_dir / "cri3_hr.dat"
    i = _data_start(hr) + 5
    _edit(hr, lambda ls: ls[:i] + [ls[i].replace(ls[i].split()[5], "0.1.2")] + ls[i + 1:])
    _fails(w90_dir / "cri3", rf"cri3_hr\.dat:{i + 1}: column 6 is not a number")


def test_num_wann_of_hr_does_not_match_win(w90_dir):
    hr = w90_dir / "cri3_hr.dat"
    _edit(hr, lambda ls: ls[:1] + ["          27"] + ls[2:])
    _fails(w90_dir / "cri3", r"cri3_hr\.dat:2: num_wann = 27 but .*cri3\.win \(projections\) has 28")


def test_num_wann_keyword_does_not_match_projections(w90_dir):
    _edit(w90_dir / "cri3.win", lambda ls: ["num_wann = 30"] + ls[1:])
    _fails(w90_dir / "cri3", r"cri3\.win: the projections block defines 28 Wannier functions but num_wann = 30")


def test_non_hermitian_hr(w90_dir):
    hr = w90_dir / "cri3_hr.dat"
    i = _data_start(hr)
    lines = hr.read_text().splitlines()
    # find an off-diagonal element of some R != 0 and perturb it by 0.01 eV
    for j in range(i, len(lines)):
        t = lines[j].split()
        if t[:3] != ["0", "0", "0"] and t[3] != t[4] and abs(float(t[5])) > 0.05:
            break
    t = lines[j].split()
    lines[j] = " ".join(t[:5] + [f"{float(t[5]) + 0.01:.10f}", t[6]])
    hr.write_text("\n".join(lines) + "\n")
    msg = _fails(w90_dir / "cri3", r"cri3_hr\.dat:\d+: H\(R\) is not Hermitian: .*tolerance")
    assert re.search(rf":{j + 1}: |\(line {j + 1}\)", msg), msg
    # a tolerance above the perturbation (divided by the degeneracy) accepts it
    read_w90_seed(w90_dir / "cri3", hermitian_tol=0.02, mdrs=False)


def test_missing_minus_R_partner_in_tb(w90_dir):
    (w90_dir / "cri3_hr.dat").unlink()
    tb = w90_dir / "cri3_tb.dat"
    lines = tb.read_text().splitlines()
    # change the first nonzero R vector line of the Hamiltonian and of the position block consistently
    idx = [k for k, ln in enumerate(lines) if len(ln.split()) == 3 and k > 5 and lines[k - 1].strip() == ""]
    nr = len(idx) // 2
    target = next(k for k in range(nr) if lines[idx[k]].split() != ["0", "0", "0"])
    for k in (idx[target], idx[target + nr]):
        lines[k] = "    7    7    0"
    tb.write_text("\n".join(lines) + "\n")
    _fails(w90_dir / "cri3", rf"cri3_tb\.dat:{idx[target] + 1}: R = \(7, 7, 0\) has no partner", mdrs=False,
           prefer="tb")


def test_truncated_tb(w90_dir):
    (w90_dir / "cri3_hr.dat").unlink()
    _edit(w90_dir / "cri3_tb.dat", lambda ls: ls[:-300])
    _fails(w90_dir / "cri3", r"cri3_tb\.dat:\d+: file ends after .* (lines|R blocks)", prefer="tb")


def test_centre_far_from_every_atom(w90_dir):
    c = w90_dir / "cri3_centres.xyz"
    lines = c.read_text().splitlines()
    x = lines[2 + 12].split()                  # WF 13 (an I p orbital)
    lines[2 + 12] = f"X {float(x[1]) + 1.2:.8f} {x[2]} {x[3]}"
    c.write_text("\n".join(lines) + "\n")
    _fails(w90_dir / "cri3", r"cri3_centres\.xyz: Wannier function 13 \(I py.*cri3\.win:\d+\) is centred 1\.2\d* Å "
                             r"from the nearest I atom \(tolerance 0\.5 Å\)")
    read_w90_seed(w90_dir / "cri3", centre_tol=1.5)   # a larger tolerance accepts it


def test_missing_projections_block(w90_dir):
    win = w90_dir / "cri3.win"
    text = win.read_text()
    win.write_text(text[:text.index("begin projections")])
    _fails(w90_dir / "cri3", r"cri3\.win: no 'begin projections' block")


def test_unknown_projection_site_and_orbital(w90_dir):
    win = w90_dir / "cri3.win"
    _edit(win, lambda ls: [ln.replace("I3:p", "Xx9:p") for ln in ls])
    _fails(w90_dir / "cri3", r"cri3\.win:\d+: projection site 'Xx9' is not an atom label")
    _edit(win, lambda ls: [ln.replace("Xx9:p", "I3:q") for ln in ls])
    _fails(w90_dir / "cri3", r"cri3\.win:\d+: unknown orbital 'q'")


def test_missing_win_file(w90_dir):
    (w90_dir / "cri3.win").unlink()
    _fails(w90_dir / "cri3", r"cri3\.win: no such file")


def test_degeneracies_inconsistent_with_mp_grid(w90_dir):
    _edit(w90_dir / "cri3.win", lambda ls: [("mp_grid = 4 4 1" if ln.startswith("mp_grid") else ln) for ln in ls])
    _fails(w90_dir / "cri3", r"cri3_hr\.dat: Σ 1/degeneracy .* 9 but the mp_grid \(4, 4, 1\)")


def test_truncated_wsvec(w90_dir):
    _edit(w90_dir / "cri3_wsvec.dat", lambda ls: ls[:-7])
    _fails(w90_dir / "cri3", r"cri3_wsvec\.dat(:\d+)?: .*(truncated|file ends)")


def test_no_model_found(tmp_path):
    with pytest.raises(TBFileError, match=r"no Wannier90 Hamiltonian"):
        read_w90(tmp_path)
    with pytest.raises(TBFileError, match=r"no such file, directory or Wannier90 seed"):
        read_w90(tmp_path / "nothing")


def test_programmatic_non_hermitian_model_rejected():
    H = np.zeros((3, 2, 2), complex)
    H[1, 0, 1] = 1.0
    H[2, 1, 0] = 0.5          # should be 1.0 for H(-R) = H(R)†
    with pytest.raises(TBError, match=r"not Hermitian"):
        TBModel([[0, 0, 0], [1, 0, 0], [-1, 0, 0]], H, np.eye(3))


def test_cli_reports_one_line(w90_dir, capsys):
    win = w90_dir / "cri3.win"
    text = win.read_text()
    win.write_text(text[:text.index("begin projections")])
    assert main(["tb", str(w90_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("wannmag: error: ") and "cri3.win" in err and "\n" not in err
