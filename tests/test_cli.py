"""The ``wannmag`` command line: help texts, the structure command, one-line errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from wannmag.cli import main

DATA = Path(__file__).resolve().parents[1] / "data" / "structures"


def run(*args):
    return subprocess.run([sys.executable, "-m", "wannmag.cli", *args], capture_output=True, text=True)


def test_help_documents_every_option():
    top = run("--help")
    assert top.returncode == 0 and "structure" in top.stdout and "J > 0 antiferromagnetic" in top.stdout
    sub = run("structure", "--help")
    for opt in ("--json", "--plot", "--shells", "--magnetic", "--spin", "--oxidation", "--tol"):
        assert opt in sub.stdout


def test_structure_table_and_plot(tmp_path, capsys):
    png = tmp_path / "cri3.png"
    assert main(["structure", str(DATA / "CrI3_monolayer.cif"), "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "edge-sharing" in out and "93.3" in out  # Cr-I-Cr angle of the shipped structure
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


def test_structure_json(capsys):
    assert main(["structure", str(DATA / "VPS3_monolayer.cif"), "--json", "--shells", "2"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [s["multiplicity"] for s in data["shells"]] == [3.0, 6.0]
    assert len(data["shells"][0]["bonds"]) == 3
    assert {s["element"] for s in data["magnetic_sites"]} == {"V"}
    assert all(len(p["bridging_ligands"]) == 2 for p in data["paths"] if p["shell"] == 1)


@pytest.mark.parametrize("content, expect", [("", "file is empty"), ("not a structure\n", "not a readable structure")])
def test_bad_input_is_one_line_without_traceback(tmp_path, content, expect):
    bad = tmp_path / "bad.cif"
    bad.write_text(content)
    res = run("structure", str(bad))
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wannmag: error:") and str(bad) in lines[0] and expect in lines[0]
    assert "Traceback" not in res.stderr


def test_bad_option_values(tmp_path):
    res = run("structure", str(DATA / "CrI3_monolayer.cif"), "--spin", "Cr:1.5")
    assert res.returncode == 2 and "ELEMENT=VALUE" in res.stderr and "Traceback" not in res.stderr
    res = run("structure", str(DATA / "CrI3_monolayer.cif"), "--shells", "0")
    assert res.returncode == 2 and "--shells" in res.stderr


def test_exchange_map_energies(tmp_path, capsys):
    # energies generated from J1 = -2, J2 = -0.3, J3 = 0.1 meV (S = 3/2) on primitive and rectangular cells
    J = np.array([-2.0, -0.3, 0.1])
    counts = {"FM": ([3, 6, 3], 2), "Neel": ([-3, 6, -3], 2), "zigzag": ([2, -4, -6], 4), "stripy": ([-2, -4, 6], 4)}
    confs = [{"name": k, "energy": (-5.0 * n + 2.25 * np.dot(c, J) / 1000), "n_sites": n, "counts": c}
             for k, (c, n) in counts.items()]
    path = tmp_path / "energies.json"
    path.write_text(json.dumps({"spin": 1.5, "configurations": confs}))
    assert main(["exchange", "map-energies", str(path), "--json"]) == 0
    fit = json.loads(capsys.readouterr().out)
    assert fit["J_meV"] == pytest.approx(J.tolist(), abs=1e-9)
    res = run("exchange", "map-energies", str(path), "--shells", "4")
    assert res.returncode == 2 and "3 shell(s)" in res.stderr and "Traceback" not in res.stderr
    path.write_text(json.dumps({"configurations": confs[:2]}))
    res = run("exchange", "map-energies", str(path))
    assert res.returncode == 2 and "underdetermined" in res.stderr


def test_exchange_mft_on_wannier_files(tmp_path, capsys):
    from wannmag.structures import cri3_monolayer
    from wannmag.tightbinding import slater_koster_model, write_w90_model

    p = dict(pds=-0.6, pdp=0.3, dds=-0.05, ddp=0.025, pps=0.25, ppp=-0.075)
    kw = dict(d_atoms=["Cr"], p_atoms=["I"], params=p, eps_p=-2.5, crystal_field=(-0.3, 0.6))
    for spin, eps in (("up", -1.5), ("dn", 1.5)):
        write_w90_model(slater_koster_model(cri3_monolayer(), eps_d=eps, spin="up" if spin == "up" else "down", **kw),
                        tmp_path / f"cri3_{spin}", mp_grid=(6, 6, 1))
    model_json = tmp_path / "model.json"
    assert main(["exchange", "mft", str(tmp_path), "--kmesh", "6", "6", "1", "--nelect", "42", "--rcut", "4.5",
                 "--orbital-resolved", "--json", "--save-model", str(model_json), "--plot",
                 str(tmp_path / "cri3.png")]) == 0
    assert (tmp_path / "cri3_map.png").stat().st_size > 10_000 and (tmp_path / "cri3_Jr.png").exists()
    out = json.loads(capsys.readouterr().out)
    assert len(out["bonds"]) == 3
    for b in out["bonds"]:
        assert b["J"] < 0 and b["J_TB2J"] > 0  # ferromagnetic 1NN, both conventions
        orb = b["orbital_TB2J"]
        assert sum(orb.values()) == pytest.approx(b["J_TB2J"], rel=1e-8)
        assert orb["t2g-eg"] + orb["eg-t2g"] > 0  # the Hund's-rule t2g-eg channel is ferromagnetic
    assert model_json.exists()
    # without --nelect/--efermi: the occupation from the nominal ionic count (no fermi_energy in these .win files),
    # Fermi level in mid-gap — the same J's for this insulator
    res = run("exchange", "mft", str(tmp_path), "--kmesh", "6", "6", "1", "--rcut", "4.5", "--json")
    assert res.returncode == 0, res.stderr
    assert "mid-gap (nominal ionic count" in res.stdout
    auto = json.loads(res.stdout[res.stdout.index("{"):])
    assert [b["J"] for b in auto["bonds"]] == pytest.approx([b["J"] for b in out["bonds"]], abs=1e-6)
    # a metal at the nominal count cannot be guessed: one clear line
    (tmp_path / "metal").mkdir()
    for spin, eps in (("up", -1.5), ("dn", -1.5)):
        write_w90_model(slater_koster_model(cri3_monolayer(), eps_d=eps, spin="up" if spin == "up" else "down", **kw),
                        tmp_path / "metal" / f"cri3_{spin}", mp_grid=(6, 6, 1))
    res = run("exchange", "mft", str(tmp_path / "metal"), "--kmesh", "6", "6", "1")
    assert res.returncode == 2 and "--nelect" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.parametrize("fmt", ["tb2j", "vampire", "mcsolver", "magnopy"])
def test_export_round_trip_through_other_codes(tmp_path, fmt):
    from wannmag.magnetism import SpinModel
    from wannmag.structures import cri3_monolayer, find_magnetic_sites, neighbour_shells

    sub = find_magnetic_sites(cri3_monolayer())
    model = SpinModel.from_sublattice(sub)
    for J, sh in zip((-2.0, -0.3, 0.1), neighbour_shells(sub, 3)):
        for b in sh.bonds:
            model.add_bond(b.i, b.j, b.R, J)
    src = model.save(tmp_path / "model.json")
    out = tmp_path / f"model.{fmt}"
    assert main(["export", str(src), str(out), "--to", fmt]) == 0
    exported = out.with_suffix(".UCF") if fmt == "vampire" else out
    back = tmp_path / "back.json"
    assert main(["export", str(exported), str(back), "--from", fmt, "--to", "wannmag"]) == 0
    again = SpinModel.load(back)
    spins = np.random.default_rng(1).normal(size=(2, 3))
    spins /= np.linalg.norm(spins, axis=1)[:, None]
    assert again.energy(spins) == pytest.approx(model.energy(spins), rel=1e-6)


def test_exchange_mft_convergence_report(tmp_path, capsys):
    from wannmag.structures import cri3_monolayer
    from wannmag.tightbinding import slater_koster_model, write_w90_model

    p = dict(pds=-0.6, pdp=0.3, dds=-0.05, ddp=0.025, pps=0.25, ppp=-0.075)
    kw = dict(d_atoms=["Cr"], p_atoms=["I"], params=p, eps_p=-2.5, crystal_field=(-0.3, 0.6))
    for spin, eps in (("up", -1.5), ("dn", 1.5)):
        write_w90_model(slater_koster_model(cri3_monolayer(), eps_d=eps, spin="up" if spin == "up" else "down", **kw),
                        tmp_path / f"cri3_{spin}", mp_grid=(6, 6, 1))
    assert main(["exchange", "mft", str(tmp_path), "--kmesh", "9", "9", "1", "--nelect", "42", "--rcut", "4.5",
                 "--poles", "60", "--convergence"]) == 0
    line = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("convergence:")][0]
    dk = float(line.split("max change of J ")[1].split()[0])
    assert dk < 0.05  # meV: J1 of an insulator converges fast in k


# ---------------------------------------------------------------- the error path of main (issue 16, item 8)
def run_patched(body: str, *args):
    """`wannmag structure ARGS` in a fresh interpreter with cmd_structure replaced by ``def cmd(args): <body>``."""
    code = ("import sys, warnings, numpy as np\n"
            "import wannmag.commands.structure as s\n"
            "from wannmag.errors import WannmagError\n"
            "def cmd(args):\n" + "".join(f"    {line}\n" for line in body.splitlines()) +
            "s.cmd_structure = cmd\n"
            "from wannmag.cli import main\n"
            "sys.exit(main(sys.argv[1:]))\n")
    env = {k: v for k, v in os.environ.items() if k != "WANNMAG_TRACEBACK"}
    # an existing file as the argument: the CLI checks that input files exist before the (patched) command runs
    return subprocess.run([sys.executable, "-c", code, "structure", __file__, *args], capture_output=True, text=True,
                          env=env)


def test_warnings_are_not_printed_before_the_error_line():
    res = run_patched("np.log(np.zeros(3))\nnp.array([0.0]) / 0.0\nwarnings.warn('a user warning')\n"
                      "raise WannmagError('x.cif: broken')")
    assert res.returncode == 2
    assert res.stderr == "wannmag: error: x.cif: broken\n"


def test_warnings_of_a_successful_command_are_printed_once_after_the_output():
    res = run_patched("for _ in range(5):\n    warnings.warn('check this', UserWarning)\n"
                      "warnings.warn('old API', DeprecationWarning)\nwarnings.warn('later', FutureWarning)\n"
                      "print('result 1.0')\nreturn 0")
    assert res.returncode == 0 and res.stdout == "result 1.0\n"
    assert res.stderr.splitlines() == ["wannmag: warning: check this"]


def test_unexpected_exception_is_one_internal_error_line():
    res = run_patched("return {}['missing']")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wannmag: error: internal error (KeyError: 'missing')")
    assert "please report" in lines[0]
    res = run_patched("raise MemoryError()")
    assert res.returncode == 2 and res.stderr.startswith("wannmag: error: out of memory")
    assert len(res.stderr.strip().splitlines()) == 1
    env = dict(os.environ, WANNMAG_TRACEBACK="1")
    code = ("import wannmag.commands.structure as s\ns.cmd_structure = lambda a: {}['k']\n"
            f"from wannmag.cli import main\nmain(['structure', {__file__!r}])")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert "Traceback" in res.stderr and "KeyError" in res.stderr


def test_error_line_stays_one_line_with_control_characters_in_a_file_name(tmp_path):
    bad = tmp_path / "two\nlines\t.cif"
    bad.write_text("not a structure\n")
    res = run("structure", str(bad))
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wannmag: error:") and "two\\nlines\\t.cif" in lines[0]


def test_argparse_errors_are_usage_and_one_error_line():
    res = run("mc", "model.json", "--tmin", "abc", "--tmax", "80")
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and lines[0].startswith("usage: wannmag mc")
    assert lines[-1].startswith("wannmag mc: error: argument --tmin: invalid float value")


@pytest.mark.parametrize("args, expect", [
    (["--spin", "Cr=nan"], "finite number"), (["--spin", "Cr=-1.5"], "positive multiple of 1/2"),
    (["--spin", "Cr=0"], "positive multiple of 1/2"), (["--spin", "Xx=1"], "not a chemical element"),
    (["--spin", "Fe=2"], "not in the structure"), (["--spin", "Cr=1", "Cr=2"], "given twice"),
    (["--oxidation", "Cr=99"], "impossible"), (["--magnetic", "Xx"], "not a chemical element symbol"),
    (["--shells", "1000000000"], "--shells"), (["--tol", "nan"], "--tol"), (["--tol", "-1"], "--tol")])
def test_structure_option_values_are_checked(args, expect, capsys):
    assert main(["structure", str(DATA / "CrI3_monolayer.cif"), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("wannmag: error:") and expect in err[0]


@pytest.mark.parametrize("args, expect", [
    (["--U", "nan"], "--U must be between 0 and 20 eV"), (["--U", "Cr=-1"], "--U of Cr"),
    (["--U", "Cr=inf"], "finite"), (["--kpts", "0", "3", "1"], "--kpts"), (["--kdensity", "nan"], "--kdensity"),
    (["--ecut", "-450"], "--ecut")])
def test_dft_option_values_are_checked_before_any_calculation(args, expect, tmp_path, capsys):
    # the unknown configuration would stop it too, but only after these checks: the message must name the option
    assert main(["dft", str(DATA / "CrI3_monolayer.cif"), "--out", str(tmp_path / "o"), "--config", "bogus",
                 *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expect in err[0]


def test_plot_that_cannot_be_written_is_one_error_line(capsys):
    assert main(["structure", str(DATA / "CrI3_monolayer.cif"), "--plot", "/proc/wannmag/x.png"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("wannmag: error: /proc/wannmag/x.png: cannot write the plot")
