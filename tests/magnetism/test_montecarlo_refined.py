"""The multi-pass Tc search in the Monte Carlo layer (issue 22 item 3): ``tc.search_passes`` (the one rule of further
passes: ``wannmag mc``'s extensions, ``tc.second_pass`` of ``wannmag run``'s mc step and the vacancy study),
``tc.ordering_temperature_refined`` (the perfect-lattice search of both commands, sizes on a caller's ``map_fn``), the
mean-field window and the nearly-isotropic caveat.

Convention: H = Σ_{i<j} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i, each bond once, classical spins of length S, J > 0
antiferromagnetic, meV; temperatures in K.
"""

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from wannmag.magnetism import Site, SpinModel
from wannmag.magnetism.montecarlo import MCSettings
from wannmag.magnetism.montecarlo.tc import (NEARLY_ISOTROPIC_X, RefinedTc, TcResult, analyse_sizes, binder_kind,
                                             curves_of, mean_field_temperature, mean_field_window,
                                             mermin_wagner_check, nearly_isotropic_caveat, next_window,
                                             ordering_temperature_refined, refine_window, refined_edge_warning,
                                             second_pass, simulate)
from wannmag.magnetism.montecarlo.groundstate import ground_state
from wannmag.magnetism.montecarlo.lattice import build_lattice
from wannmag.magnetism.spinmodel import MEV_PER_K

ROOT = Path(__file__).parents[2]


def ising_like_fm(A=-1.0):
    """Honeycomb FM, J1 = −2 meV on the 3 NN bonds, S = 1.5, single-ion A_zz = ``A`` meV (easy axis for A < 0)."""
    cell = np.array([[7.0, 0, 0], [-3.5, 3.5 * math.sqrt(3), 0], [0, 0, 20.0]])
    frac = [(2 / 3, 1 / 3, 0.5), (1 / 3, 2 / 3, 0.5)]
    m = SpinModel(cell=cell, sites=[Site(np.array(f) @ cell, "Cr", 1.5) for f in frac], pbc=(True, True, False),
                  single_ion=[np.diag([0.0, 0.0, A])] * 2)
    for R in [(0, 0, 0), (1, 0, 0), (0, -1, 0)]:
        m.add_bond(0, 1, R, -2.0)
    return m


def _tc(tc=None, err=None, status=None, mw=False, side=None, sizes=("4x4", "6x6"), peaks_chi=None):
    return TcResult(sizes=list(sizes), tc=tc, tc_error=err, method="m", peaks_C={}, peaks_chi=peaks_chi or {},
                    crossings=[], mermin_wagner=mw, status=status or ("bracketed" if tc is not None else
                                                                      "not bracketed"), side=side)


def test_mean_field_window_is_the_classical_scale():
    """k_B T_MF = S² Σ_j |J_ij| / 3: three NN bonds of |J| = 2 meV per site, S = 1.5 → S²·6/3 = 4.5 meV."""
    m = ising_like_fm()
    assert mean_field_temperature(m) == pytest.approx(4.5 / MEV_PER_K, rel=1e-12)
    lo, hi = mean_field_window(m, 0.1, 1.1)
    assert (lo, hi) == (0.1 * mean_field_temperature(m), 1.1 * mean_field_temperature(m))
    assert mean_field_window(m, 0.03, 1.1)[0] == 0.03 * mean_field_temperature(m)


def test_second_pass_runs_only_where_there_is_a_window():
    calls = []

    def run(st):
        calls.append(st)
        return _tc(40.5, 0.5)

    st = MCSettings(tmin=5.0, tmax=100.0, seed=7)
    # refining off, a Mermin–Wagner model, nothing to look for: no second pass, the first analysis is reported
    for first, refine in ((_tc(40.0, 2.0), False), (_tc(40.0, 2.0, mw=True), True), (_tc(), True)):
        two = second_pass(first, st, run, refine=refine)
        assert not calls and two.second is None and two.window is None and two.result is first
        assert not two.refined and two.t_window == [5.0, 100.0] and two.warning is None
    # a bracketed first crossing: one more pass on refine_window, seed + 1, the other settings unchanged
    first = _tc(40.0, 2.0)
    two = second_pass(first, st, run)
    assert len(calls) == 1 and (calls[0].tmin, calls[0].tmax) == pytest.approx(refine_window(40.0, 2.0, 5.0, 100.0))
    assert calls[0] == replace(st, tmin=calls[0].tmin, tmax=calls[0].tmax, seed=8)
    assert two.refined and two.result is two.second and two.result.tc == 40.5
    assert two.t_window == pytest.approx([34.0, 46.0]) and two.warning is None
    # an unbracketed first pass with the crossing above tmax: the window beyond the edge (next_window)
    calls.clear()
    two = second_pass(_tc(side="above tmax"), MCSettings(tmin=5.0, tmax=12.0), run)
    assert (calls[0].tmin, calls[0].tmax) == pytest.approx(next_window(_tc(side="above tmax"), 5.0, 12.0))


def test_second_pass_reports_only_a_bracketed_second_analysis():
    st = MCSettings(tmin=5.0, tmax=100.0)
    first = _tc(40.0, 2.0)
    two = second_pass(first, st, lambda s: _tc())  # the second pass found no crossing: the first one stays
    assert two.second is not None and not two.refined and two.result is first and two.warning is None
    assert two.t_window == [5.0, 100.0]
    two = second_pass(first, st, lambda s: _tc(45.5, 0.3))  # at the edge of 34–46 K: adopted with the warning
    assert two.refined and two.warning == refined_edge_warning(45.5, two.window) and "edge" in two.warning


def test_refined_tc_round_trip():
    st = MCSettings(tmin=5.0, tmax=100.0)
    for second in (_tc(41.0, 0.4), _tc()):
        two = second_pass(_tc(40.0, 2.0), st, lambda s, r=second: r)
        back = RefinedTc.from_dict(json.loads(json.dumps(two.as_dict())))
        assert back.as_dict() == two.as_dict()
        assert back.refined == two.refined and back.t_window == two.t_window
        assert back.result.as_dict(with_runs=False) == two.result.as_dict(with_runs=False)


def _former_step_mc(model, sizes, settings, out_dir):
    """The two-pass search as ``step_mc`` implemented it before issue 22 (inline copy, serial)."""
    from wannmag.magnetism.montecarlo.tc import checkpoint_key

    lat0 = build_lattice(model, sizes[0])
    gs0 = ground_state(lat0, seed=settings.seed)
    binder = binder_kind(lat0, gs0)
    mw = mermin_wagner_check(model, lat0.dimension, False, gs0.spins, lat0.slen)

    def one(st):
        key = checkpoint_key(model, st)
        return {f"{L}x{L}": curves_of(simulate(model, L, st, checkpoint=str(out_dir / f"checkpoint_{L}_{key}.npz"))[0])
                for L in sizes}
    curves = one(settings)
    tcr = analyse_sizes(curves, mw, binder)
    coarse = tcr
    window = next_window(tcr, settings.tmin, settings.tmax)
    if window is not None and not mw.get("flag"):
        fine = replace(settings, tmin=window[0], tmax=window[1], seed=settings.seed + 1)
        curves2 = one(fine)
        tcr2 = analyse_sizes(curves2, mw, binder)
        if tcr2.tc is not None:
            curves, tcr = curves2, tcr2
    return coarse, tcr, curves


def test_ordering_temperature_refined_is_the_former_mc_step_and_uses_map_fn(tmp_path):
    """Same seed, same model: the new function gives the numbers of the former inline step_mc path bit for bit
    (first and reported analyses, curves); the sizes of each pass go through ``map_fn``, in order; the checkpoints
    keep their names (checkpoint_<L>_<key of the pass>.npz)."""
    m = ising_like_fm()
    tmin, tmax = mean_field_window(m, 0.1, 1.1)
    st = MCSettings(tmin=tmin, tmax=tmax, n_replicas=8, n_sweeps=1000, n_therm=300, seed=3, checkpoint_every=1000)
    (tmp_path / "old").mkdir()
    coarse, tcr, curves = _former_step_mc(m, [4, 6], st, tmp_path / "old")
    assert coarse.bracketed  # the path with a second pass is the one compared
    tasks = []

    def map_fn(fn, items):
        tasks.append([(L, s.seed, s.tmin) for _, L, s, _ in items])
        return [fn(x) for x in items]

    two = ordering_temperature_refined(m, [4, 6], st, map_fn=map_fn, out_dir=tmp_path / "new")
    assert json.dumps(two.first.as_dict(with_runs=False), default=str) == \
        json.dumps(coarse.as_dict(with_runs=False), default=str)
    assert json.dumps(two.result.as_dict(with_runs=False), default=str) == \
        json.dumps(tcr.as_dict(with_runs=False), default=str)
    assert two.refined and two.result.tc == tcr.tc and two.window[0] < coarse.tc < two.window[1]
    assert all(np.array_equal(two.curves[k]["T"], curves[k]["T"]) and
               np.array_equal(np.asarray(two.curves[k]["U4"]), np.asarray(curves[k]["U4"])) for k in curves)
    assert [[L for L, _, _ in p] for p in tasks] == [[4, 6], [4, 6]]
    assert [p[0][1] for p in tasks] == [3, 4] and tasks[1][0][2] == pytest.approx(two.window[0])
    names = lambda d: sorted(f.name for f in d.glob("checkpoint_*.npz"))  # noqa: E731
    assert names(tmp_path / "new") == names(tmp_path / "old") and len(names(tmp_path / "new")) == 4


def test_nearly_isotropic_caveat_quotes_measurements_only_when_given():
    assert nearly_isotropic_caveat(None, "") is None
    assert nearly_isotropic_caveat(NEARLY_ISOTROPIC_X, "x") is None
    bare = nearly_isotropic_caveat(6.0e-4, "x", [6, 9, 12])
    assert bare.startswith("nearly isotropic magnet (x = 6.0e-04 < 0.01): lattices of L ≤ 12 lie far below")
    assert bare.endswith("not a converged value") and "VPS3" not in bare and " K" not in bare
    assert "these sizes" in nearly_isotropic_caveat(6.0e-4, "x", [])
    meas = {"what": "model M", "crossings": [{"pair": [8, 16], "T_K": 99.6}, {"pair": [16, 32], "T_K": 90.2}],
            "source": "file.json"}
    assert nearly_isotropic_caveat(6.0e-4, "x", [6], meas) == \
        bare.replace("L ≤ 12", "L ≤ 6") + " (model M: 100 K at L = 8/16, 90 K at 16/32, not converged; file.json)"


def test_summary_caveat_text_is_unchanged_and_its_numbers_are_the_data_files():
    """The run summary's caveat (now built by tc.nearly_isotropic_caveat from the summary's VPS3_DRIFT) is the text
    it printed with the L = 256 data, and VPS3_DRIFT holds the smallest and largest pairs of data/mc/VPS3_TN_converged.json."""
    from wannmag.workflows.summary import VPS3_DRIFT
    from wannmag.workflows.summary import nearly_isotropic_caveat as summary_caveat

    r = {"mc": {"tc_K": 279.1, "sizes": [6, 9, 12]}, "model": {"anisotropy_meV_per_ion": 0.016},
         "mapping": {"J_meV": [26.4, 0.9, 1.2], "spin": 1.5}}
    assert summary_caveat(r) == (
        "nearly isotropic magnet (|E_in − E_out| / (|J1| S²) = 2.7e-04 < 0.01): lattices of L ≤ 12 lie far below the "
        "anisotropy length, where the Binder crossings still drift down with L, so this ordering temperature is "
        "an upper estimate of the model's, not a converged value (VPS3 model with cluster moves: 236 K at "
        "L = 96/128, 232 K at 192/256, the three largest pairs within 1.4 %: T_N = 232 K; "
        "data/mc/VPS3_TN_converged.json)")
    data = json.loads((ROOT / VPS3_DRIFT["source"]).read_text())
    by_pair = {tuple(c["pair"]): c["T_K"] for c in data["crossings"]}
    pairs = data["largest_pairs"]
    assert [tuple(c["pair"]) for c in VPS3_DRIFT["crossings"]] == [tuple(pairs[0]), tuple(pairs[-1])]
    assert all(c["T_K"] == by_pair[tuple(c["pair"])] for c in VPS3_DRIFT["crossings"])


# ------------------------------------------------------------------ one rule for wannmag mc and wannmag run (issue 22)
def _chain(results):
    """A fake ``run(settings)`` returning ``results`` in turn, recording the settings of every call."""
    calls, it = [], iter(results)

    def run(st):
        calls.append(st)
        return next(it)
    return run, calls


def test_search_passes_extends_until_bracketed_as_wannmag_mc_did():
    """refine=False, keep="last": beyond the edge while not bracketed (seed + k for pass k), stop at the first
    bracketed pass; the windows chain through next_window; the passes listed as until_bracketed listed them."""
    from wannmag.magnetism.montecarlo.tc import extend_window, search_passes

    st = MCSettings(tmin=5.0, tmax=12.0, seed=7)
    above = _tc(side="above tmax")
    run, calls = _chain([_tc(side="above tmax"), _tc(30.0, 1.0), _tc(99.0, 1.0)])
    logs = []
    two = search_passes(above, st, run, passes=4, refine=False, keep="last", log=logs.append)
    w1 = extend_window("above tmax", 5.0, 12.0)
    w2 = extend_window("above tmax", *w1)
    assert [(c.tmin, c.tmax, c.seed) for c in calls] == [(*w1, 8), (*w2, 9)]  # stopped at the bracketed pass 3
    assert two.result.tc == 30.0 and two.reported == 2 and two.settings is calls[1] and two.refined
    assert [p["status"] for p in two.passes] == ["not bracketed", "not bracketed", "bracketed"]
    assert two.passes[0]["t_window_K"] == [5.0, 12.0] and two.t_window == pytest.approx(list(w2))
    assert len(logs) == 2 and logs[0].startswith("window 5-12 K: ") and "; pass 2 on " in logs[0]
    # nothing bracketed: the last pass is reported (keep="last"), or the first (keep="first", wannmag run)
    for keep in ("last", "first"):
        later = [_tc(side="above tmax"), _tc(side="above tmax")]
        run, calls = _chain(later)
        two = search_passes(above, st, run, passes=3, refine=False, keep=keep)
        assert len(calls) == 2 and two.result is (later[-1] if keep == "last" else above)
        assert two.reported == (2 if keep == "last" else 0) and two.warning is None  # no crossing: no edge warning


def test_search_passes_stops_after_one_refining_pass_and_after_a_chi_maximum_pass():
    from wannmag.magnetism.montecarlo.tc import search_passes

    st = MCSettings(tmin=5.0, tmax=100.0, seed=0)
    run, calls = _chain([_tc(side="above tmax")])  # the refining pass finds no crossing: the first one stays
    two = search_passes(_tc(40.0, 2.0), st, run, passes=5, refine=True)
    assert len(calls) == 1 and two.result.tc == 40.0 and not two.refined
    # an interior chi maximum (side unknown) is tried once
    chi = {"6x6": {"T": 50.0, "error": 1.0, "at_edge": False}}
    run, calls = _chain([_tc(side=None, peaks_chi=chi), _tc(side=None, peaks_chi=chi)])
    two = search_passes(_tc(side=None, peaks_chi=chi), st, run, passes=5, refine=False, keep="last")
    assert len(calls) == 1 and two.reported == 1
    # explicit temperatures: the window cannot move
    run, calls = _chain([])
    two = search_passes(_tc(side="above tmax"), replace(st, ladder=[10.0, 20.0, 30.0]), run, passes=3)
    assert calls == [] and two.second is None
    with pytest.raises(Exception, match="keep must be"):
        search_passes(_tc(), st, run, keep="best")


def test_until_bracketed_is_the_search_of_wannmag_mc(tmp_path):
    """A caller's own run(settings, k) through until_bracketed and the perfect-lattice search of wannmag mc
    (ordering_temperature_refined with passes = 1 + extensions, no refining pass, the last pass kept) give the same
    analysis, passes and final window on an Ising honeycomb whose window 5–12 K lies below Tc ≈ 17.6 K."""
    from wannmag.magnetism.montecarlo import ordering_temperature
    from wannmag.magnetism.montecarlo.tc import until_bracketed

    cell = np.array([[1.0, 0.0, 0.0], [-0.5, math.sqrt(3) / 2, 0.0], [0.0, 0.0, 10.0]])
    m = SpinModel(cell=cell, sites=[Site(np.array(f) @ cell, "X", 1.0) for f in ((2 / 3, 1 / 3, 0), (1 / 3, 2 / 3, 0))],
                  pbc=(True, True, False))
    for R in [(0, 0, 0), (1, 0, 0), (0, -1, 0)]:
        m.add_bond(0, 1, R, -1.0)
    st = MCSettings(tmin=5.0, tmax=12.0, n_replicas=6, n_sweeps=300, n_therm=100, seed=1, ising=True)
    sizes = [(4, 4, 1), (6, 6, 1)]
    old, st_old = until_bracketed(lambda s, k: ordering_temperature(m, sizes, s, warn=False), st, 2)
    new = ordering_temperature_refined(m, sizes, st, passes=3, refine_crossing=False, keep="last", with_runs=True)
    assert len(old.passes) == len(new.passes) >= 2 and old.passes == new.passes
    assert json.dumps(new.result.as_dict()) == json.dumps({**old.as_dict(), "passes": []})  # runs included
    assert new.settings == st_old and new.result.ground_state == old.ground_state


def test_wannmag_mc_runs_the_search_of_wannmag_run(tmp_path, monkeypatch, capsys):
    """The command calls tc.ordering_temperature_refined (one implementation) with its extension rule, and a 2D
    isotropic model still gets its one Mermin–Wagner line on stderr."""
    import wannmag.magnetism.montecarlo.tc as tc
    from wannmag.cli import main

    seen = []
    real = tc.ordering_temperature_refined
    monkeypatch.setattr(tc, "ordering_temperature_refined", lambda *a, **k: seen.append(k) or real(*a, **k))
    m = ising_like_fm(A=0.0)
    m.save(tmp_path / "heis.json")
    rc = main(["mc", str(tmp_path / "heis.json"), "--sizes", "3", "4", "--tmin", "5", "--tmax", "80", "--replicas",
               "4", "--sweeps", "100", "--therm", "20", "--quiet", "--max-extensions", "2", "--out",
               str(tmp_path / "o")])
    cap = capsys.readouterr()
    assert rc == 0 and len(seen) == 1
    assert (seen[0]["passes"], seen[0]["refine_crossing"], seen[0]["keep"]) == (3, False, "last")
    warned = [ln for ln in cap.err.splitlines() if ln.startswith("wannmag: warning:")]
    assert len(warned) == 1 and "Mermin-Wagner" in warned[0] and "WARNING (Mermin-Wagner)" in cap.out
    data = json.loads((tmp_path / "o" / "mc_result.json").read_text())
    assert data["mermin_wagner"] and len(data["runs"]) == 2 and len(data["passes"]) == 1  # MW: no further pass
