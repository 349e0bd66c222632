"""Cluster moves (Wolff by Ising embedding + acceptance), parallel replicas and uniaxial over-relaxation (issue 19).

Convention throughout: H = Σ_{i<j} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i − gμ_B B·S_i, each bond once, classical spins of
length S, J > 0 antiferromagnetic, meV; temperatures in K (k_B = 0.08617333262 meV/K).
"""

import math
import sys
from pathlib import Path

import numpy as np
import pytest

from wannmag.magnetism import Site, SpinModel
from wannmag.magnetism.montecarlo import (MCSettings, MonteCarloError, build_lattice, ground_state,
                                          ordering_temperature, parallel_tempering)
from wannmag.magnetism.montecarlo.cluster import cluster_couplings, cluster_sweep
from wannmag.magnetism.montecarlo.kernels import overrelax_sweep_uniaxial, seed_states, total_energy
from wannmag.magnetism.spinmodel import MEV_PER_K as KB

sys.path.insert(0, str(Path(__file__).parent))
from test_montecarlo_physics import ISING_TC, honeycomb  # noqa: E402


# ------------------------------------------------------------------------------------------ exact: a triangle
def triangle():
    """Three spins S = 1 with every kind of term the acceptance must handle: an AF bond with a DMI part, an XXZ
    ferromagnetic bond, a frustrated AF bond, easy-axis single-ion terms and a tilted field (meV, tesla)."""
    cell = np.diag([30.0, 30.0, 30.0])
    m = SpinModel(cell=cell, sites=[Site(np.array(p), "X", 1.0) for p in ([0, 0, 0], [3, 0, 0], [1.5, 2.6, 0])],
                  pbc=(False, False, False), single_ion=[np.diag([0.0, 0.0, -0.4])] * 3,
                  b_field=np.array([2.0, 0.0, 5.0]))
    J12 = np.eye(3) + np.array([[0, 0.2, 0], [-0.2, 0, 0], [0, 0, 0]])
    m.add_bond(0, 1, (0, 0, 0), J12)
    m.add_bond(1, 2, (0, 0, 0), np.diag([-0.8, -0.8, -1.0]))
    m.add_bond(0, 2, (0, 0, 0), 0.5)
    return m


def _exact_triangle(lat, beta, n=1_000_000, seed=0):
    """⟨E⟩, ⟨Σ S_z²⟩, ⟨M_z⟩ by direct integration over the uniform measure (importance-free sampling)."""
    g = np.random.default_rng(seed)
    sw = sz2 = smz = se = 0.0
    for _ in range(n // 250_000):
        v = g.normal(size=(250_000, 3, 3))
        s = v / np.linalg.norm(v, axis=2)[..., None]
        E = np.zeros(len(s))
        for i in range(3):
            for k in range(lat.ptr[i], lat.ptr[i + 1]):
                j = lat.nbr[k]
                E += 0.5 * np.einsum("na,ab,nb->n", s[:, i], lat.Jf[k].reshape(3, 3), s[:, j])
            E += np.einsum("na,ab,nb->n", s[:, i], lat.A[i].reshape(3, 3), s[:, i]) - s[:, i] @ lat.zee[i]
        w = np.exp(-beta * (E - E.min()))  # E.min() of each chunk: rescale consistently below
        w *= np.exp(-beta * E.min())
        sw += w.sum()
        se += (w * E).sum()
        sz2 += (w * (s[:, :, 2] ** 2).sum(axis=1)).sum()
        smz += (w * s[:, :, 2].sum(axis=1)).sum()
    return se / sw, sz2 / sw, smz / sw


def _cluster_only(lat, Jg, rest_free, beta, n_moves, seed, exact_e=False):
    """Only cluster moves (no Metropolis): series of E, Σ S_z², M_z after every move (E tracked from the returned
    ΔH, or recomputed with ``exact_e``)."""
    N = lat.n_sites
    rng = seed_states(seed, 1)[0]
    g = np.random.default_rng(seed)
    v = g.normal(size=(N, 3))
    s = v / np.linalg.norm(v, axis=1)[:, None] * lat.slen[:, None]
    args = (lat.ptr, lat.nbr, lat.Jiso, lat.Jd, lat.Jf, lat.mode, lat.A, lat.hasA, lat.zee)
    E = total_energy(s, *args)
    stack, incl, old = np.zeros(N, np.int64), np.zeros(N, np.uint8), np.zeros((N, 3))
    out = np.empty((n_moves, 3))
    acc = 0
    for t in range(n_moves):
        _, a, _, d = cluster_sweep(s, rng, beta, *args, Jg, rest_free, False, 1, stack, incl, old)
        acc += a
        E = total_energy(s, *args) if exact_e else E + d
        out[t] = E, (s[:, 2] ** 2).sum(), s[:, 2].sum()
    assert E == pytest.approx(total_energy(s, *args), abs=1e-8)  # the tracked ΔH are the exact ones
    return out, acc / n_moves


@pytest.mark.parametrize("grow", ["pattern", "all"])
def test_cluster_moves_alone_sample_the_exact_boltzmann_distribution_of_a_triangle(grow):
    """Cluster moves alone (no Metropolis) on three spins with DMI, XXZ, a frustrated bond, single-ion terms and a
    field: ⟨E⟩, ⟨Σ S_z²⟩ and ⟨M_z⟩ equal the exact integrals over the spheres (independent evaluation) within 4σ.
    With "pattern" σ = (+, −, +) only bond 0–1 is grown: the other two bonds enter only through the acceptance."""
    lat = build_lattice(triangle(), 1)
    assert lat.mode == 2
    beta = 1.0 / 0.8
    Jg, rest_free = cluster_couplings(lat, np.array([1.0, -1.0, 1.0]), grow=grow)
    assert not rest_free
    assert np.count_nonzero(Jg) == (2 if grow == "pattern" else 6)  # CSR holds each bond twice
    ex = _exact_triangle(lat, beta)
    ser, acc = _cluster_only(lat, Jg, rest_free, beta, 120_000, seed=3)
    assert 0.05 < acc < 0.98  # the acceptance test is exercised
    blocks = ser[: len(ser) // 200 * 200].reshape(200, -1, 3).mean(axis=1)
    mean, err = blocks.mean(axis=0), blocks.std(axis=0, ddof=1) / math.sqrt(len(blocks))
    for k in range(3):
        assert abs(mean[k] - ex[k]) < 4 * err[k] + 2e-3 * abs(ex[k]), (k, mean[k], err[k], ex[k])


def test_cluster_moves_without_acceptance_would_be_wrong():
    """The same triangle sampled with the acceptance switched off (rest_free forced True) misses the exact ⟨E⟩
    by many σ: the acceptance is what makes the partial embedding exact (the test above could fail)."""
    lat = build_lattice(triangle(), 1)
    beta = 1.0 / 0.8
    Jg, _ = cluster_couplings(lat, np.array([1.0, -1.0, 1.0]), grow="pattern")
    ex = _exact_triangle(lat, beta, n=500_000)
    ser, _ = _cluster_only(lat, Jg, True, beta, 100_000, seed=4, exact_e=True)
    blocks = ser.reshape(100, -1, 3).mean(axis=1)
    mean, err = blocks.mean(axis=0), blocks.std(axis=0, ddof=1) / 10.0
    assert abs(mean[0] - ex[0]) > 10 * err[0]


# ------------------------------------------------------------------------------------------ against Metropolis
def _compare(m, L, tmin, tmax, nT=5, sweeps=12000, grow="pattern", seed=5, min_acc=None):
    lat = build_lattice(m, L)
    gs = ground_state(lat, seed=0)
    res = {}
    for algo in ("metropolis", "cluster"):
        st = MCSettings(tmin=tmin, tmax=tmax, n_replicas=nT, n_sweeps=sweeps, n_therm=2000, seed=seed,
                        algorithm=algo, cluster_grow=grow)
        res[algo] = parallel_tempering(lat, st, pattern=gs.pattern, init=gs.spins)
    a, b = res["metropolis"], res["cluster"]
    assert np.allclose(a.temperatures, b.temperatures)
    for q in ("energy", "C", "Q", "U4"):
        va, ea = a.observables[q]
        vb, eb = b.observables[q]
        z = np.abs(va - vb) / np.hypot(ea, eb)
        assert np.all(z < 4.5), (q, va, vb, ea, eb)
    if min_acc is not None:
        assert min(b.cluster["acceptance"]) < min_acc  # the acceptance test mattered
    return a, b


@pytest.mark.parametrize("J1,L", [(-1.0, 4), (1.0, 4), pytest.param(-1.0, 6, marks=pytest.mark.slow),
                                  pytest.param(1.0, 6, marks=pytest.mark.slow)])
def test_cluster_pt_equals_metropolis_pt_j1_j3_easy_axis(J1, L):
    """Honeycomb J1–J3 (J2 frustrated against the Néel pattern when J1 is AF) + easy-axis single-ion term, FM and AF
    J1, 4×4 and 6×6: E, C, |Q| and U4 of cluster + PT equal Metropolis + over-relaxation + PT within 4.5σ."""
    m = honeycomb(J1, J2=0.15, J3=0.2 * abs(J1), S=1.5, A=np.diag([0.0, 0.0, -0.05]))
    _compare(m, L, 6.0, 40.0)


def test_cluster_pt_equals_metropolis_strong_anisotropy_and_frustrated_j2():
    """A case where the acceptance matters: strong easy axis (|D| = 0.5 J1) and a frustrated J2 = 0.3 J1 on an AF
    Néel honeycomb; clusters grown on J1, J3 only, everything else in the acceptance (some rejected)."""
    m = honeycomb(1.0, J2=0.3, J3=0.1, S=1.0, A=np.diag([0.0, 0.0, -0.5]))
    _compare(m, 4, 3.0, 30.0, min_acc=0.7)


def test_cluster_grow_all_equals_metropolis_frustrated():
    m = honeycomb(1.0, J2=0.3, J3=0.1, S=1.0, A=np.diag([0.0, 0.0, -0.2]))
    _compare(m, 4, 3.0, 30.0, grow="all")


# ------------------------------------------------------------------------------------------ Ising
def test_honeycomb_ising_tc_from_cluster_moves():
    """Ising honeycomb (J = −1 meV, σ = ±1) with cluster moves + PT: Binder crossing within 3 % of the exact
    k_B Tc/|J| = 2/ln(2+√3) ≈ 1.5187."""
    m = honeycomb(-1.0, S=1.0)
    st = MCSettings(tmin=1.40 / KB, tmax=1.65 / KB, n_replicas=10, n_sweeps=6000, n_therm=1000, ising=True,
                    seed=1, algorithm="cluster", cluster_fraction=0.5)
    r = ordering_temperature(m, [4, 8, 12], st)
    assert r.bracketed and r.runs[-1].cluster["acceptance"][0] == pytest.approx(1.0)
    tc = r.tc * KB
    assert abs(tc - ISING_TC) / ISING_TC < 0.03, (tc, r.crossings)


# ------------------------------------------------------------------------------------------ threads
def test_replicas_in_parallel_are_bit_identical_to_serial():
    m = honeycomb(1.0, J2=0.15, J3=0.2, S=1.5, A=np.diag([0.0, 0.0, -0.05]))
    lat = build_lattice(m, 6)
    gs = ground_state(lat, seed=0)
    out = []
    for algo in ("metropolis", "cluster"):
        for th in (1, 2):
            st = MCSettings(tmin=5, tmax=40, n_replicas=6, n_sweeps=300, n_therm=100, seed=9, algorithm=algo,
                            threads=th)
            r = parallel_tempering(lat, st, pattern=gs.pattern, init=gs.spins)
            out.append(r)
    for a, b in ((out[0], out[1]), (out[2], out[3])):
        assert np.array_equal(a.bins, b.bins)
        assert np.array_equal(a.temperatures, b.temperatures)
    assert not np.array_equal(out[0].bins, out[2].bins)


def test_a_forked_child_runs_after_a_threaded_run_in_the_parent():
    """After a 2-thread run in this process, a forked child's default (1-thread) run works and gives the parent's
    numbers: the one-thread path never enters Numba's GNU-OpenMP layer, which is not fork-safe."""
    import os

    m = honeycomb(1.0, S=1.5, A=np.diag([0.0, 0.0, -0.05]))
    lat = build_lattice(m, 4)
    st2 = MCSettings(tmin=5, tmax=40, n_replicas=4, n_sweeps=60, n_therm=20, seed=4, threads=2)
    ref = parallel_tempering(lat, st2)
    st1 = MCSettings(tmin=5, tmax=40, n_replicas=4, n_sweeps=60, n_therm=20, seed=4, threads=1)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            os.close(r)
            res = parallel_tempering(lat, st1)
            code = 0 if np.array_equal(res.bins, ref.bins) else 3
        finally:
            os.write(w, bytes([code]))
            os._exit(code)
    os.close(w)
    _, status = os.waitpid(pid, 0)
    got = os.read(r, 1)
    os.close(r)
    assert os.waitstatus_to_exitcode(status) == 0 and got == bytes([0])


# ------------------------------------------------------------------------------------------ over-relaxation
def test_uniaxial_overrelaxation_conserves_energy_and_is_an_involution():
    rng = np.random.default_rng(2)
    n = np.array([0.3, -0.5, 0.8]) / np.linalg.norm([0.3, -0.5, 0.8])
    A = 0.1 * np.eye(3) - 0.7 * np.outer(n, n)  # uniaxial about a tilted axis
    J1 = np.array([[1.0, 0.3, -0.2], [-0.3, 0.8, 0.1], [0.2, -0.1, 1.1]])
    m = honeycomb(J1, J2=-0.2, S=1.5, A=A, field=np.array([0.3, 0.0, 1.0]))
    lat = build_lattice(m, 4)
    assert lat.uniax.all() and not lat.orok.any()
    assert np.allclose(np.abs(lat.axis @ n), 1.0)
    v = rng.normal(size=(lat.n_sites, 3))
    s = v / np.linalg.norm(v, axis=1)[:, None] * 1.5
    args = (lat.ptr, lat.nbr, lat.Jiso, lat.Jd, lat.Jf, lat.mode)
    e = lat.energy(s)
    for i in range(lat.n_sites):  # one site at a time: each single move conserves the energy to 1e-12
        only = np.zeros(lat.n_sites, bool)
        only[i] = True
        s1 = s.copy()
        overrelax_sweep_uniaxial(s1, *args, np.zeros_like(only), only, lat.axis, lat.zee)
        assert abs(lat.energy(s1) - e) < 1e-12 * max(1.0, abs(e))
        assert abs(np.linalg.norm(s1[i]) - 1.5) < 1e-13
        s2 = s1.copy()
        overrelax_sweep_uniaxial(s2, *args, np.zeros_like(only), only, lat.axis, lat.zee)
        assert np.allclose(s2, s, atol=1e-13)
        if i == 0:
            assert np.abs(s1 - s).max() > 1e-3
    s3 = s.copy()
    overrelax_sweep_uniaxial(s3, *args, lat.orok, lat.uniax, lat.axis, lat.zee)
    assert np.abs(s3 - s).max() > 0.1 and abs(lat.energy(s3) - e) < 1e-11 * max(1.0, abs(e))


def test_uniaxial_overrelaxation_keeps_the_distribution():
    """Over-relaxation (5 sweeps per Metropolis sweep) on an easy-axis model samples the same ⟨E⟩, C, |Q| as pure
    Metropolis; a general (biaxial) tensor is not uniaxial and its sites are skipped."""
    m = honeycomb(-1.0, J2=-0.1, S=1.5, A=np.diag([0.0, 0.0, -0.3]))
    lat = build_lattice(m, 4)
    assert lat.uniax.all()
    assert not build_lattice(honeycomb(-1.0, S=1.5, A=np.diag([0.1, 0.0, -0.3])), 3).uniax.any()
    res = []
    for n_or in (0, 5):
        st = MCSettings(tmin=5, tmax=40, n_replicas=5, n_sweeps=15000, n_therm=2000, seed=3, n_overrelax=n_or)
        res.append(parallel_tempering(lat, st))
    for q in ("energy", "C", "M"):
        (va, ea), (vb, eb) = res[0].observables[q], res[1].observables[q]
        assert np.all(np.abs(va - vb) < 4.5 * np.hypot(ea, eb)), (q, va, vb)


# ------------------------------------------------------------------------------------------ bad settings
def test_cluster_refuses_what_it_cannot_treat():
    kitaev = np.diag([0.1, 0.1, -2.0])  # bond-dependent anisotropy larger than the isotropic part
    with pytest.raises(MonteCarloError, match="anisotropic/antisymmetric part"):
        lat = build_lattice(honeycomb(kitaev, S=1.0), 4)
        cluster_couplings(lat, np.ones(lat.n_sites))
    lat = build_lattice(honeycomb(1.0, J3=0.2), 2)  # J3 reaches a cell further: its images collide on L = 2
    with pytest.raises(MonteCarloError, match="too small for the bond range"):
        parallel_tempering(lat, MCSettings(tmin=1, tmax=2, n_replicas=2, n_sweeps=10, algorithm="cluster"))
    with pytest.raises(MonteCarloError, match="algorithm must be"):
        MCSettings(tmin=1, tmax=2, algorithm="wolff").validate()
    with pytest.raises(MonteCarloError, match="threads"):
        MCSettings(tmin=1, tmax=2, threads=0).validate()


def test_metropolis_signature_unchanged_by_the_new_settings():
    """A Metropolis run's physics settings (its checkpoint signature) are those of earlier versions: resuming an
    old checkpoint is not refused; the thread count is not part of it."""
    d = MCSettings(tmin=1, tmax=2, threads=2).physics_dict()
    assert not {"algorithm", "cluster_grow", "cluster_fraction", "threads"} & set(d)
    assert MCSettings(tmin=1, tmax=2, algorithm="cluster").physics_dict()["algorithm"] == "cluster"


# ------------------------------------------------------------------------------------------ workflow and CLI
@pytest.mark.slow
def test_run_mc_step_with_cluster_algorithm_and_threads(tmp_path):
    """The workflow's mc step with mc_algorithm = cluster (and 2 threads): the runs use cluster moves, the Tc of an
    Ising-like FM honeycomb is bracketed and equals the one of the same step with Metropolis within errors."""
    from wannmag.workflows.engine import Context
    from wannmag.workflows.results import ModelStep, StructureStep
    from wannmag.workflows.run import step_mc

    m = honeycomb(-2.0, S=1.5, A=np.diag([0.0, 0.0, -1.0]))
    path = tmp_path / "model.json"
    m.save(path)
    out = {}
    for algo in ("metropolis", "cluster"):
        params = {"mc_sizes": [4, 6], "mc_sweeps": 1000, "mc_therm": 300, "mc_replicas": 8, "seed": 3,
                  "mc_algorithm": algo, "mc_threads": 2, "mc_refine": False}
        d = tmp_path / algo
        d.mkdir()
        steps = {"model": ModelStep(model_path=str(path), anisotropy_meV_per_ion=0.0, J_meV=[], method="t").as_dict(),
                 "structure": StructureStep("X", "", [], [], [], "").as_dict()}
        out[algo] = step_mc(Context(d, params, steps, lambda m: None)).as_dict()
    a, b = out["metropolis"], out["cluster"]
    assert a["tc_K"] is not None and b["tc_K"] is not None and (a["algorithm"], b["algorithm"]) == tuple(out)
    for algo in out:  # the checkpoints hold the cluster statistics only for the cluster runs
        ck = list((tmp_path / algo / "mc").glob("checkpoint_6_*.npz"))
        assert len(ck) == 1 and ("cl_stats" in np.load(ck[0]).files) == (algo == "cluster")
    assert abs(a["tc_K"] - b["tc_K"]) < 4 * math.hypot(a["tc_error_K"], b["tc_error_K"]) + 0.05 * a["tc_K"]


def test_run_mc_step_key_names_the_algorithm(tmp_path):
    """The step key names the algorithm: "auto" by default (cluster moves where valid), else the one asked for."""
    from wannmag.workflows.run import build_workflow

    cif = Path(__file__).parents[2] / "data" / "structures" / "VPS3_monolayer.cif"
    st = {s.name: s for s in build_workflow(cif, out=tmp_path / "w", settings={"mc_algorithm": "cluster"}).steps}
    assert st["mc"].params["mc_algorithm"] == "cluster"
    st = {s.name: s for s in build_workflow(cif, out=tmp_path / "w2").steps}
    assert st["mc"].params["mc_algorithm"] == "auto"


def test_cli_mc_cluster_bad_settings_one_line(tmp_path, capsys):
    from wannmag.cli import main

    honeycomb(1.0, J3=0.2, S=1.5).save(tmp_path / "af.json")
    honeycomb(np.diag([0.1, 0.1, -2.0]), S=1.0).save(tmp_path / "kit.json")
    base = ["--tmin", "5", "--tmax", "40", "--replicas", "4", "--sweeps", "50", "--therm", "10", "--quiet",
            "--algorithm", "cluster", "--out", str(tmp_path / "o")]
    for model, sizes, msg in (("af.json", ["2", "4"], "too small for the bond range"),
                              ("kit.json", ["4", "6"], "anisotropic/antisymmetric part")):
        assert main(["mc", str(tmp_path / model), "--sizes", *sizes, *base]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"wannmag: error: {tmp_path / model}: ") and msg in err[0]
    assert main(["mc", str(tmp_path / "af.json"), "--sizes", "4", *base[:-2], "--threads", "0"]) == 2
    assert "--threads must be between 1 and 256" in capsys.readouterr().err


def test_run_mc_step_refuses_a_model_the_cluster_scheme_cannot_treat(tmp_path):
    from wannmag.errors import WannmagError
    from wannmag.workflows.engine import Context
    from wannmag.workflows.results import ModelStep
    from wannmag.workflows.run import step_mc

    path = tmp_path / "kit.json"
    honeycomb(np.diag([0.1, 0.1, -2.0]), S=1.0).save(path)
    params = {"mc_sizes": [4, 6], "mc_sweeps": 100, "mc_therm": 10, "mc_replicas": 4, "seed": 0,
              "mc_algorithm": "cluster"}
    model = ModelStep(model_path=str(path), anisotropy_meV_per_ion=0.0, J_meV=[], method="test").as_dict()
    ctx = Context(tmp_path, params, {"model": model}, lambda m: None)  # refused before the structure's formula
    with pytest.raises(WannmagError, match=f"^{path}: cluster moves: .*anisotropic/antisymmetric part"):
        step_mc(ctx)
    assert not list((tmp_path / "mc").glob("checkpoint_*"))  # refused before any run
