"""Lattices below the bond range of the model: refused by cluster moves, run by Metropolis with a printed warning."""

import json
import sys
from pathlib import Path

import numpy as np

from wannmag.magnetism.montecarlo import build_lattice
from wannmag.magnetism.montecarlo.lattice import min_size_for_range, range_problem
from wannmag.magnetism.montecarlo.tc import lattice_range_notes

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_montecarlo_physics import honeycomb  # noqa: E402


def test_range_problem_finds_the_colliding_images():
    m = honeycomb(1.0, J2=0.3, J3=0.2)  # J2 ±a1 and J3 (1,1), (-1,-1) reach one cell: L = 2 joins images
    assert min_size_for_range(m) == [3, 3, 1]
    lat2 = build_lattice(m, 2)
    why = range_problem(lat2)
    assert why is not None and "lattice 2x2x1 is too small for the bond range" in why and "use L >= 3" in why
    # the claim itself: on L = 2 some site has two CSR entries to the same neighbour (the images' J add up)
    rows = np.repeat(np.arange(lat2.n_sites), np.diff(lat2.ptr))
    pairs = list(zip(rows.tolist(), lat2.nbr.tolist()))
    assert len(set(pairs)) < len(pairs)
    for L in (3, 4):
        lat = build_lattice(m, L)
        rows = np.repeat(np.arange(lat.n_sites), np.diff(lat.ptr))
        pairs = list(zip(rows.tolist(), lat.nbr.tolist()))
        assert len(set(pairs)) == len(pairs) and range_problem(lat) is None
    assert range_problem(build_lattice(honeycomb(1.0), 2)) is None  # J1 only: L = 2 is a faithful torus
    assert lattice_range_notes(m, [2, 3, 4]) == [why]


def test_cli_mc_prints_the_analysis_warnings(tmp_path, capsys):
    from wannmag.cli import main

    honeycomb(1.0, J2=0.3, S=1.0, A=np.diag([0.0, 0.0, -0.5])).save(tmp_path / "m.json")
    args = ["mc", str(tmp_path / "m.json"), "--sizes", "2", "4", "--tmin", "2", "--tmax", "20", "--replicas", "4",
            "--sweeps", "60", "--therm", "20", "--quiet", "--max-extensions", "0", "--algorithm", "metropolis",
            "--out", str(tmp_path / "o")]
    assert main(args) == 0
    out = capsys.readouterr().out
    warn = [ln for ln in out.splitlines() if ln.startswith("WARNING: ")]
    assert len(warn) == 1 and "lattice 2x2x1 is too small for the bond range" in warn[0]
    assert "4x4x1 is too small" not in out
    res = json.loads((tmp_path / "o" / "mc_result.json").read_text())  # stored with the result too
    assert "lattice 2x2x1 is too small for the bond range" in res["warning"]


def test_refined_search_warns_about_a_lattice_below_the_range():
    """The two-pass search of wannmag run (tc.ordering_temperature_refined) says it too."""
    from wannmag.magnetism.montecarlo import MCSettings
    from wannmag.magnetism.montecarlo.tc import ordering_temperature_refined

    m = honeycomb(1.0, J2=0.3, S=1.0, A=np.diag([0.0, 0.0, -0.5]))
    st = MCSettings(tmin=2.0, tmax=20.0, n_replicas=4, n_sweeps=60, n_therm=20, seed=1, algorithm="metropolis",
                    progress=False)
    res = ordering_temperature_refined(m, [2, 4], st, refine=False)
    assert res.result.warning.startswith("lattice 2x2x1 is too small for the bond range")
