"""The parallel-tempering driver kernel (Numba): sweeps of every walker (cluster moves, Metropolis,
over-relaxation), replica swaps, cone and ladder adaptation, binned measurements.

Hamiltonian (internal wannmag convention, energies in meV)::

    H = Σ_{bonds (i,j), each once} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i − Σ_i z_i·S_i,      z_i = g_i μ_B B

classical spins of length S_i, J > 0 antiferromagnetic; β = 1/(k_B T) in 1/meV.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .cluster import cluster_sweep
from .kernels import (ising_sweep, metropolis_sweep, next_double, order_parameters_axis, overrelax_sweep_uniaxial,
                      renormalise, total_energy)

__all__ = ["pt_run", "pt_run_serial", "pt_kernel"]


@njit(cache=True)
def _adjust_ladder(betas, sw_acc_win, sw_att_win):
    """Acceptance-equalising ladder update: with x_k = ln(T_{k+1}/T_k) and −ln a_k ∝ x_k², the spacings
    x_k ∝ x_k^old / √(−ln a_k) would equalise the swap acceptances; damped by ½, ends fixed."""
    n = betas.shape[0]
    if n < 3:
        return
    lnT = np.empty(n)
    for k in range(n):
        lnT[k] = -math.log(betas[k])
    x = np.empty(n - 1)
    total = lnT[n - 1] - lnT[0]
    s = 0.0
    for k in range(n - 1):
        a = 0.5
        if sw_att_win[k] > 0:
            a = sw_acc_win[k] / sw_att_win[k]
        a = min(max(a, 0.01), 0.99)
        old = lnT[k + 1] - lnT[k]
        new = old / math.sqrt(-math.log(a))
        x[k] = new
        s += new
    for k in range(n - 1):
        x[k] = 0.5 * (lnT[k + 1] - lnT[k]) + 0.5 * x[k] * total / s
    acc = lnT[0]
    for k in range(1, n - 1):
        acc += x[k - 1]
        betas[k] = math.exp(-acc)


@njit(cache=True)
def _resync_energies(spins, energies, ising, slen, ptr, nbr, Jiso, Jd, Jf, mode, A, hasA, zee):
    """Every walker's spins back to their lengths (continuous spins) and its energy recomputed from scratch (the
    running sums of the sweeps' energy changes drift by rounding)."""
    for w in range(spins.shape[0]):
        if not ising:
            renormalise(spins[w], slen)
        energies[w] = total_energy(spins[w], ptr, nbr, Jiso, Jd, Jf, mode, A, hasA, zee)


@njit(cache=True)
def _swap_replicas(parity, therm, betas, energies, walker_at, temp_of, rng_swap, sw_acc_win, sw_att_win, sw_acc,
                   sw_att):
    """Replica-exchange attempts between the temperature pairs (k, k+1), k = parity, parity + 2, ...: accepted with
    min(1, exp((β_k − β_{k+1})(E_k − E_{k+1}))); attempts and acceptances counted in the feedback windows and,
    after thermalisation, in the run totals."""
    nT = betas.shape[0]
    for k in range(parity, nT - 1, 2):
        wa = walker_at[k]
        wb = walker_at[k + 1]
        delta = (betas[k] - betas[k + 1]) * (energies[wa] - energies[wb])
        r = next_double(rng_swap)
        ok = delta >= 0.0 or r < math.exp(delta)
        sw_att_win[k] += 1
        if not therm:
            sw_att[k] += 1
        if ok:
            walker_at[k] = wb
            walker_at[k + 1] = wa
            temp_of[wa] = k + 1
            temp_of[wb] = k
            sw_acc_win[k] += 1
            if not therm:
                sw_acc[k] += 1


@njit(cache=True)
def _adapt_cones(cos_max, acc_win, att_win):
    """Metropolis cone of every temperature widened or narrowed towards a 50 % acceptance (half-angle scaled by
    the acceptance / 0.5, clipped to [½, 2] per step and to [1e-3, π]); the acceptance windows restart."""
    for k in range(cos_max.shape[0]):
        if att_win[k] > 0:
            ratio = acc_win[k] / att_win[k]
            theta = math.acos(cos_max[k])
            f = min(max(ratio / 0.5, 0.5), 2.0)
            theta = min(max(theta * f, 1e-3), math.pi)
            cos_max[k] = math.cos(theta)
        acc_win[k] = 0
        att_win[k] = 0


@njit(cache=True)
def _measure(bins, counters, bidx, spins, energies, temp_of, slen, pat, qaxis):
    """One measurement of every walker summed into bin ``bidx`` of its temperature (OBS_NAMES order: e, e², |M|,
    |M|², Q, Q², Q⁴, |M|⁴, Q·n, (Q·n)², (Q·n)⁴; e per site) and counted in ``counters``."""
    N = spins.shape[1]
    for w in range(spins.shape[0]):
        k = temp_of[w]
        e = energies[w] / N
        mm, q, qa = order_parameters_axis(spins[w], slen, pat, qaxis)
        bins[k, bidx, 0] += e
        bins[k, bidx, 1] += e * e
        bins[k, bidx, 2] += mm
        bins[k, bidx, 3] += mm * mm
        bins[k, bidx, 4] += q
        bins[k, bidx, 5] += q * q
        bins[k, bidx, 6] += q * q * q * q
        bins[k, bidx, 7] += mm * mm * mm * mm
        qa2 = qa * qa
        bins[k, bidx, 8] += qa
        bins[k, bidx, 9] += qa2
        bins[k, bidx, 10] += qa2 * qa2
        counters[k] += 1


def _pt_run(spins, rng, rng_swap, energies, temp_of, walker_at, betas, cos_max, counters,
           acc_win, att_win, sw_acc_win, sw_att_win, sw_acc, sw_att, bins,
           ptr, nbr, Jiso, Jd, Jf, mode, A, hasA, orok, zee, slen, pat, qaxis, uniax, axis,
           ising, n_or, algo, Jg, rest_free, cl_target, stack, incl, old, cl_stats,
           sweep0, sweep1, n_therm, measure_every, bin_size, n_bins, swap_every,
           adapt_every, ladder_every, ladder_until, resync_every):
    """Advance a parallel-tempering run from global sweep ``sweep0`` to ``sweep1``.

    One sweep of a walker: with ``algo`` 1, cluster moves (:func:`.cluster.cluster_sweep`, growth couplings ``Jg``,
    until the clusters hold ``cl_target`` sites; ``stack``/``incl``/``old`` per-walker work arrays; moves, accepted
    moves and cluster sites per temperature summed into ``cl_stats`` during the measurement), then one Metropolis
    sweep (Ising: single-spin flips) and ``n_or`` over-relaxation sweeps (uniaxial single-ion sites included,
    :func:`.kernels.overrelax_sweep_uniaxial`).  The walkers run in parallel (Numba threads; ``numba.set_num_threads``
    chooses how many) with results independent of the thread count.

    Every decision (swap parity, cone adaptation, ladder feedback, measurement, energy resynchronisation) is a
    function of the global sweep index only, so splitting a run into blocks (checkpoints) does not change it.
    Walker w sits at temperature index temp_of[w]; walker_at is the inverse map.  A swap of the walkers at
    temperatures k, k+1 is accepted with min(1, exp((β_k − β_{k+1})(E_k − E_{k+1}))).  Measurements (after
    ``n_therm`` sweeps, every ``measure_every`` sweeps) are summed into ``bins[k, b, :]`` (OBS_NAMES) with bin
    index b = measurement // bin_size; the order parameter is Q = Σ σ_i S_i/(N S_i) with σ_i = ``pat`` and its
    component along the ground-state axis ``qaxis`` (unit vector).  ``counters[k]`` counts the measurements at
    temperature k.

    Load balance: the parallel loop runs over the temperature indices k (walker walker_at[k]), lowest temperature
    first — with a chunk size of 1 (:func:`numba.set_parallel_chunksize`, set by the caller) the threads take the
    walkers one at a time, costly low-temperature cluster walkers first; which thread runs a walker does not change
    its result.
    """
    nR = spins.shape[0]
    nT = betas.shape[0]
    N = spins.shape[1]
    for sweep in range(sweep0, sweep1):
        therm = sweep < n_therm
        # the walkers are independent between swaps (own spins, own random stream, own temperature index k, so
        # every array written below is written by one walker only): prange over walkers gives the bit-identical
        # result of the serial loop on any number of threads
        for kk in prange(nR):
            w = walker_at[kk]
            k = kk
            b = betas[k]
            dE = 0.0
            # the walker's random state in a private copy during its sweep: the 32-byte states of neighbouring
            # walkers share a cache line, and writing them from two threads at every draw would serialise them
            rs = rng[w].copy()
            if algo == 1:
                mv, ca, cs, dc = cluster_sweep(spins[w], rs, b, ptr, nbr, Jiso, Jd, Jf, mode, A, hasA, zee, Jg,
                                               rest_free, ising, cl_target, stack[w], incl[w], old[w])
                dE += dc
                if not therm:
                    cl_stats[k, 0] += mv
                    cl_stats[k, 1] += ca
                    cl_stats[k, 2] += cs
            if ising:
                a, d = ising_sweep(spins[w], rs, b, ptr, nbr, Jiso, Jd, Jf, mode, zee)
            else:
                a, d = metropolis_sweep(spins[w], rs, b, cos_max[k], ptr, nbr, Jiso, Jd, Jf, mode, A, hasA,
                                        zee, slen)
                for _ in range(n_or):
                    overrelax_sweep_uniaxial(spins[w], ptr, nbr, Jiso, Jd, Jf, mode, orok, uniax, axis, zee)
            rng[w, :] = rs
            energies[w] += dE + d
            acc_win[k] += a
            att_win[k] += N
        s1 = sweep + 1
        if s1 % resync_every == 0:
            _resync_energies(spins, energies, ising, slen, ptr, nbr, Jiso, Jd, Jf, mode, A, hasA, zee)
        if swap_every > 0 and nT > 1 and s1 % swap_every == 0:
            _swap_replicas((s1 // swap_every) % 2, therm, betas, energies, walker_at, temp_of, rng_swap,
                           sw_acc_win, sw_att_win, sw_acc, sw_att)
        if therm and (not ising) and adapt_every > 0 and s1 % adapt_every == 0:
            _adapt_cones(cos_max, acc_win, att_win)
        if therm and ladder_every > 0 and s1 <= ladder_until and s1 % ladder_every == 0:
            _adjust_ladder(betas, sw_acc_win, sw_att_win)
            for k in range(nT - 1):
                sw_acc_win[k] = 0
                sw_att_win[k] = 0
        if not therm:
            m = sweep - n_therm
            if m % measure_every == 0:
                bidx = (m // measure_every) // bin_size
                if bidx < n_bins:
                    _measure(bins, counters, bidx, spins, energies, temp_of, slen, pat, qaxis)


# Two compiled versions of the same kernel.  The parallel one (walkers in prange) is used only when more than one
# thread is asked for: Numba's default threading layer here is GNU OpenMP, which is not fork-safe — a process that has
# run a parallel kernel and then forks (a test harness, a user's multiprocessing pool) kills its children at their
# first parallel region ("fork() called from a process already using GNU OpenMP").  The serial version never starts
# the threading layer (and is ≈ 6 % faster on one thread).  Distinct qualified names keep their on-disk caches apart.
pt_run = njit(cache=True, parallel=True)(_pt_run)
_serial = type(_pt_run)(_pt_run.__code__, _pt_run.__globals__, "pt_run_serial", _pt_run.__defaults__,
                        _pt_run.__closure__)
_serial.__qualname__ = "pt_run_serial"
_serial.__doc__ = _pt_run.__doc__
pt_run_serial = njit(cache=True)(_serial)


def pt_kernel(threads: int):
    """The kernel for ``threads`` Numba threads: the serial compilation for one thread (no threading layer started,
    fork-safe), the parallel one otherwise; both give bit-identical results."""
    return pt_run if int(threads) > 1 else pt_run_serial

