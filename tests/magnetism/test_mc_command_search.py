"""``wannmag mc`` prints the numbers of the library's Tc search (issue 22 item 3: the command's own extension loop
was replaced by ``tc.ordering_temperature_refined``, the search ``wannmag run`` uses).

The reference is not a stored number: it is the command's former rule written out here with direct calls of the
library function ``tc.ordering_temperature`` (the loop ``tc.until_bracketed`` ran before commit 1a411cd: pass k on
``next_window`` of pass k − 1 with seed + k, stop at the first bracketed pass, at most 1 + ``--max-extensions``
passes, the last pass reported).  The command's stdout and mc_result.json must carry exactly its numbers.

Convention: H = Σ_{i<j} S_i·J_ij·S_j, each bond once, classical spins of length S, J > 0 antiferromagnetic, meV;
temperatures in K.
"""

import json
import math
from dataclasses import replace

import numpy as np

from wannmag.cli import main
from wannmag.magnetism import Site, SpinModel
from wannmag.magnetism.montecarlo import MCSettings
from wannmag.magnetism.montecarlo.tc import next_window, ordering_temperature


def ising_honeycomb() -> SpinModel:
    """Honeycomb Ising FM, J = −1 meV on the 3 NN bonds, S = 1 (Tc ≈ 17.6 K): a window of 5–12 K lies below it."""
    cell = np.array([[1.0, 0.0, 0.0], [-0.5, math.sqrt(3) / 2, 0.0], [0.0, 0.0, 10.0]])
    m = SpinModel(cell=cell, sites=[Site(np.array(f) @ cell, "X", 1.0) for f in ((2 / 3, 1 / 3, 0), (1 / 3, 2 / 3, 0))],
                  pbc=(True, True, False))
    for R in [(0, 0, 0), (1, 0, 0), (0, -1, 0)]:
        m.add_bond(0, 1, R, -1.0)
    return m


def former_rule(model, sizes, st, max_extensions):
    """The former ``wannmag mc`` search, library calls only: (reported TcResult, its settings, extension texts)."""
    log, cur = [], st
    for k in range(max_extensions + 1):
        tcr = ordering_temperature(model, sizes, cur, warn=False)
        if tcr.bracketed or k == max_extensions:
            break
        w = next_window(tcr, cur.tmin, cur.tmax)
        if w is None:
            break
        log.append(f"window {cur.tmin:.4g}-{cur.tmax:.4g} K: {tcr.note}; pass {k + 2} on {w[0]:.4g}-{w[1]:.4g} K")
        cur = replace(cur, tmin=w[0], tmax=w[1], seed=st.seed + k + 1)
    return tcr, cur, log


def test_wannmag_mc_prints_the_numbers_of_the_former_search(tmp_path, capsys):
    m = ising_honeycomb()
    m.save(tmp_path / "ising.json")
    out = tmp_path / "o"
    rc = main(["mc", str(tmp_path / "ising.json"), "--sizes", "4", "6", "--tmin", "5", "--tmax", "12", "--replicas",
               "6", "--sweeps", "300", "--therm", "100", "--ising", "--seed", "1", "--quiet", "--max-extensions", "2",
               "--out", str(out)])
    printed = capsys.readouterr().out.splitlines()
    assert rc == 0
    # the settings the command builds from these options (--ising: no over-relaxation)
    st = MCSettings(tmin=5.0, tmax=12.0, n_replicas=6, n_sweeps=300, n_therm=100, ising=True, seed=1, n_overrelax=0,
                    ladder="geometric", checkpoint_every=1000, progress=False, algorithm="metropolis", threads=1)
    ref, st_ref, log = former_rule(m, [(4, 4, 1), (6, 6, 1)], st, 2)
    assert log and ref.bracketed  # the case exercises an extension and ends with a Binder crossing
    assert 12.0 < ref.tc < st_ref.tmax  # above the first window: the extension moved up, towards Tc ≈ 17.6 K
    assert [ln[len("extended: "):] for ln in printed if ln.startswith("extended: ")] == log
    assert f"window of the result: {st_ref.tmin:.4g}-{st_ref.tmax:.4g} K (pass {len(log) + 1} of at most 3, " \
           "--max-extensions)" in printed
    crossings = [f"  Binder crossing {c['sizes'][0]} / {c['sizes'][1]}: {c['T']:.2f} ± {c['error']:.2f} K"
                 for c in ref.crossings]
    assert crossings and [ln for ln in printed if ln.startswith("  Binder crossing")] == crossings
    assert ref.headline("T_order") in printed
    # the stored analysis is the reference's, runs included, number for number
    stored = json.loads((out / "mc_result.json").read_text())
    assert len(stored.pop("passes")) == len(log) + 1
    assert stored == json.loads(json.dumps({k: v for k, v in ref.as_dict().items() if k != "passes"}))
