"""A wrong electron count (or Fermi level) given to the force theorem is not silent (issue 16, item 4).

The shipped VPS3 Wannier pair is an insulator at the occupation of its DFT run (fermi_energy of the .win: 40
electrons per cell in the Wannier manifold, gap −1.538 … −0.330 eV).  `--nelect 42` puts E_F inside the conduction
bands (0.93 eV) and gives meaningless J; the command must say so, in the table and in the JSON output.
"""

import json
from pathlib import Path

import pytest

from wannmag.cli import main

VPS3 = Path(__file__).resolve().parents[2] / "data" / "dft" / "VPS3"
FAST = ["--kmesh", "4", "4", "1", "--poles", "30", "--rcut", "4"]


def _run(capsys, *extra, json_out=True):
    rc = main(["exchange", "mft", str(VPS3), *FAST, *extra] + (["--json"] if json_out else []))
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    if json_out:
        return json.loads(cap.out[cap.out.index("{"):])
    return cap.out


def test_wrong_electron_count_warns_with_the_gap_and_the_nominal_count(capsys):
    out = _run(capsys, "--nelect", "42")
    assert len(out["warnings"]) == 1
    w = out["warnings"][0]
    assert "inside a band" in w and "gap from -1.538 to -0.330 eV" in w and "40 electrons per cell" in w
    assert out["efermi_eV"] > 0.5  # E_F really is in the conduction bands
    table = _run(capsys, "--nelect", "42", json_out=False)
    assert "warning: E_F = 0.945 eV lies inside a band" in table  # E_F of the 4×4 mesh


@pytest.mark.parametrize("extra", [["--nelect", "40"], [], ["--efermi", "-0.9"]])
def test_nominal_occupation_gives_no_warning(capsys, extra):
    out = _run(capsys, *extra)
    assert out["warnings"] == []
    assert out["reference_moments"] == [1, 1]  # the shipped pair is the FM state
    assert out["bonds"][0]["J"] > 20  # VPS3 J1: antiferromagnetic, tens of meV


def test_fermi_level_in_a_band_warns(capsys):
    out = _run(capsys, "--efermi", "-2.5")
    assert len(out["warnings"]) == 1 and "inside a band" in out["warnings"][0]
