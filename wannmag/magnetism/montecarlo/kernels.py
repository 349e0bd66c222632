"""Numba kernels of the classical Monte Carlo: RNG, local fields, Metropolis (adaptive cone), Ising flips,
over-relaxation, energies, parallel tempering.  No Python object is touched inside the loops.

Hamiltonian (internal wannmag convention, energies in meV)::

    H = Σ_{bonds (i,j), each once} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i − Σ_i z_i·S_i,      z_i = g_i μ_B B

classical spins of length S_i, J > 0 antiferromagnetic.  In the lattice arrays every bond appears twice in the CSR
neighbour list: as (i → j, J) and (j → i, Jᵀ), so that the exchange field on site i is h_i = Σ_k J_k S_{nbr[k]} and
the energy of site i is S_i·h_i + S_i·A_i·S_i − z_i·S_i (the exchange energy is ½ Σ_i S_i·h_i).

Exchange storage modes (chosen once per lattice): 0 — all bonds isotropic (one number per bond, ``Jiso``);
1 — all bonds diagonal, e.g. XXZ (three numbers, ``Jd``); 2 — general 3×3 (``Jf``, row-major).

Random numbers: xoshiro256** with one 4×uint64 state per walker (and one for the replica swaps), so that a run is
bit-for-bit reproducible from its seed and its state can be checkpointed and restored exactly.
Temperatures enter the kernels as β = 1/(k_B T) in 1/meV.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_U5 = np.uint64(5)
_U7 = np.uint64(7)
_U9 = np.uint64(9)
_U11 = np.uint64(11)
_U17 = np.uint64(17)
_U45 = np.uint64(45)
_U57 = np.uint64(57)
_U19 = np.uint64(19)
_U16 = np.uint64(16)
_U40 = np.uint64(40)
_M24 = np.uint64(0xFFFFFF)
_INV23 = 2.0 / 16777216.0  # 2^-23: 24-bit integers to [0, 2)
_INV53 = 1.0 / 9007199254740992.0  # 2^-53
TWO_PI = 2.0 * math.pi


# ---------------------------------------------------------------------------------------------------- RNG
def seed_states(seed, n: int) -> np.ndarray:
    """n independent xoshiro256** states (n × 4 uint64) derived from ``seed`` (an int or a sequence of ints) with
    numpy's SeedSequence."""
    key = [int(x) for x in seed] if np.ndim(seed) else int(seed)
    ss = np.random.SeedSequence(key)
    st = ss.generate_state(4 * n, dtype=np.uint64).reshape(n, 4)
    st[np.all(st == 0, axis=1), 0] = np.uint64(1)  # the all-zero state is the one forbidden state
    return st


@njit(cache=True, inline="always")
def _rotl(x, k, kk):
    return (x << k) | (x >> kk)


@njit(cache=True, inline="always")
def next_u64(s):
    s0 = s[0]
    s1 = s[1]
    s2 = s[2]
    s3 = s[3]
    result = _rotl(s1 * _U5, _U7, _U57) * _U9
    t = s1 << _U17
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = _rotl(s3, _U45, _U19)
    s[0] = s0
    s[1] = s1
    s[2] = s2
    s[3] = s3
    return result


@njit(cache=True, inline="always")
def next_double(s):
    """Uniform double in [0, 1) with 53 random bits."""
    return float(next_u64(s) >> _U11) * _INV53


# ---------------------------------------------------------------------------------------------------- fields
@njit(cache=True, inline="always")
def _field_iso(i, spins, ptr, nbr, Jiso):
    """Mode-0 exchange field h_i = Σ_j J_ij S_j (isotropic bonds; same convention as ``exchange_field``)."""
    hx = 0.0
    hy = 0.0
    hz = 0.0
    for k in range(ptr[i], ptr[i + 1]):
        j = nbr[k]
        J = Jiso[k]
        hx += J * spins[j, 0]
        hy += J * spins[j, 1]
        hz += J * spins[j, 2]
    return hx, hy, hz


@njit(cache=True, inline="always")
def _field_diag(i, spins, ptr, nbr, Jd):
    """Mode-1 exchange field (diagonal bond tensors, e.g. XXZ)."""
    hx = 0.0
    hy = 0.0
    hz = 0.0
    for k in range(ptr[i], ptr[i + 1]):
        j = nbr[k]
        hx += Jd[k, 0] * spins[j, 0]
        hy += Jd[k, 1] * spins[j, 1]
        hz += Jd[k, 2] * spins[j, 2]
    return hx, hy, hz


@njit(cache=True, inline="always")
def _field_full(i, spins, ptr, nbr, Jf):
    """Mode-2 exchange field (general 3×3 bond tensors, row-major)."""
    hx = 0.0
    hy = 0.0
    hz = 0.0
    for k in range(ptr[i], ptr[i + 1]):
        j = nbr[k]
        sx = spins[j, 0]
        sy = spins[j, 1]
        sz = spins[j, 2]
        hx += Jf[k, 0] * sx + Jf[k, 1] * sy + Jf[k, 2] * sz
        hy += Jf[k, 3] * sx + Jf[k, 4] * sy + Jf[k, 5] * sz
        hz += Jf[k, 6] * sx + Jf[k, 7] * sy + Jf[k, 8] * sz
    return hx, hy, hz


@njit(cache=True, inline="always")
def exchange_field(i, spins, ptr, nbr, Jiso, Jd, Jf, mode):
    """h_i = Σ_j J_ij S_j (meV per unit of S_i) over the CSR row of site i (H = Σ_{i<j} S_i·J_ij·S_j + ...,
    each bond once, J > 0 antiferromagnetic; the CSR row holds J_ij and the reverse rows J_ijᵀ).  The hot sweeps
    call the per-mode functions below directly, outside the site loop's mode dispatch."""
    if mode == 0:
        return _field_iso(i, spins, ptr, nbr, Jiso)
    if mode == 1:
        return _field_diag(i, spins, ptr, nbr, Jd)
    return _field_full(i, spins, ptr, nbr, Jf)


@njit(cache=True, inline="always")
def _quad(A, i, x, y, z):
    return (x * (A[i, 0] * x + A[i, 1] * y + A[i, 2] * z) + y * (A[i, 3] * x + A[i, 4] * y + A[i, 5] * z)
            + z * (A[i, 6] * x + A[i, 7] * y + A[i, 8] * z))


@njit(cache=True)
def total_energy(spins, ptr, nbr, Jiso, Jd, Jf, mode, A, hasA, zee):
    """H = Σ_{i<j} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i − Σ_i z_i·S_i (meV, each bond once, J > 0 antiferromagnetic)
    of one configuration."""
    e_ex = 0.0
    e_loc = 0.0
    for i in range(spins.shape[0]):
        hx, hy, hz = exchange_field(i, spins, ptr, nbr, Jiso, Jd, Jf, mode)
        sx = spins[i, 0]
        sy = spins[i, 1]
        sz = spins[i, 2]
        e_ex += sx * hx + sy * hy + sz * hz
        if hasA[i]:
            e_loc += _quad(A, i, sx, sy, sz)
        e_loc -= zee[i, 0] * sx + zee[i, 1] * sy + zee[i, 2] * sz
    return 0.5 * e_ex + e_loc


@njit(cache=True)
def renormalise(spins, slen):
    for i in range(spins.shape[0]):
        n = math.sqrt(spins[i, 0] ** 2 + spins[i, 1] ** 2 + spins[i, 2] ** 2)
        f = slen[i] / n
        spins[i, 0] *= f
        spins[i, 1] *= f
        spins[i, 2] *= f


# ---------------------------------------------------------------------------------------------------- moves
@njit(cache=True, inline="always")
def cone_move(nx, ny, nz, cos_max, rng):
    """Unit vector uniformly distributed on the spherical cap of half-angle θ_max (cos θ_max = ``cos_max``)
    around the unit vector n.  The proposal density depends only on n·n', so it is symmetric.

    The azimuth is drawn without trigonometric functions (Marsaglia): a point (x, y) uniform in the unit disc
    (two 24-bit coordinates from one 64-bit random number, rejection from the square, acceptance π/4) gives
    (cos φ, sin φ) = ((x² − y²), 2xy)/(x² + y²) with φ uniform in [0, 2π)."""
    c = 1.0 - next_double(rng) * (1.0 - cos_max)
    while True:
        r = next_u64(rng)
        x = float(r >> _U40) * _INV23 - 1.0
        y = float((r >> _U16) & _M24) * _INV23 - 1.0
        q = x * x + y * y
        if q <= 1.0 and q > 0.0:
            break
    s = math.sqrt(max(0.0, 1.0 - c * c)) / q
    cp = s * (x * x - y * y)
    sp = s * (2.0 * x * y)
    # orthonormal basis (e1, e2) perpendicular to n
    if abs(nz) < 0.9:
        # e1 = z × n / |z × n| = (−ny, nx, 0)/r
        r_ = math.sqrt(nx * nx + ny * ny)
        e1x = -ny / r_
        e1y = nx / r_
        e1z = 0.0
    else:
        # e1 = x × n / |x × n| = (0, −nz, ny)/r
        r_ = math.sqrt(ny * ny + nz * nz)
        e1x = 0.0
        e1y = -nz / r_
        e1z = ny / r_
    e2x = ny * e1z - nz * e1y
    e2y = nz * e1x - nx * e1z
    e2z = nx * e1y - ny * e1x
    return c * nx + cp * e1x + sp * e2x, c * ny + cp * e1y + sp * e2y, c * nz + cp * e1z + sp * e2z


@njit(cache=True, inline="always")
def _metropolis_site(i, hx, hy, hz, spins, rng, beta, cos_max, A, hasA, zee, slen):
    """Metropolis step of site i in its exchange field h_i: ΔE = (S'−S)·(h_i − z_i) + S'·A_i·S' − S·A_i·S,
    accepted with min(1, e^{−βΔE}).  Returns (1, ΔE) if accepted, else (0, 0)."""
    hx -= zee[i, 0]
    hy -= zee[i, 1]
    hz -= zee[i, 2]
    S = slen[i]
    sx = spins[i, 0]
    sy = spins[i, 1]
    sz = spins[i, 2]
    ux, uy, uz = cone_move(sx / S, sy / S, sz / S, cos_max, rng)
    inv = S / math.sqrt(ux * ux + uy * uy + uz * uz)
    tx = ux * inv
    ty = uy * inv
    tz = uz * inv
    dE = (tx - sx) * hx + (ty - sy) * hy + (tz - sz) * hz
    if hasA[i]:
        dE += _quad(A, i, tx, ty, tz) - _quad(A, i, sx, sy, sz)
    if dE <= 0.0 or next_double(rng) < math.exp(-beta * dE):
        spins[i, 0] = tx
        spins[i, 1] = ty
        spins[i, 2] = tz
        return 1, dE
    return 0, 0.0


# One loop per exchange storage mode: a mode branch inside the site loop costs ~40 % of the throughput (measured,
# benchmarks/bench_mc.py), so the dispatch happens once per sweep.  (A single loop taking the field function as a
# Numba first-class argument was measured too: 10–12 % slower, the call is not inlined; hence three short loops.)
@njit(cache=True)
def _metropolis_iso(spins, rng, beta, cos_max, ptr, nbr, Jiso, A, hasA, zee, slen):
    acc = 0
    dE_tot = 0.0
    for i in range(spins.shape[0]):
        hx, hy, hz = _field_iso(i, spins, ptr, nbr, Jiso)
        a, d = _metropolis_site(i, hx, hy, hz, spins, rng, beta, cos_max, A, hasA, zee, slen)
        acc += a
        dE_tot += d
    return acc, dE_tot


@njit(cache=True)
def _metropolis_diag(spins, rng, beta, cos_max, ptr, nbr, Jd, A, hasA, zee, slen):
    acc = 0
    dE_tot = 0.0
    for i in range(spins.shape[0]):
        hx, hy, hz = _field_diag(i, spins, ptr, nbr, Jd)
        a, d = _metropolis_site(i, hx, hy, hz, spins, rng, beta, cos_max, A, hasA, zee, slen)
        acc += a
        dE_tot += d
    return acc, dE_tot


@njit(cache=True)
def _metropolis_full(spins, rng, beta, cos_max, ptr, nbr, Jf, A, hasA, zee, slen):
    acc = 0
    dE_tot = 0.0
    for i in range(spins.shape[0]):
        hx, hy, hz = _field_full(i, spins, ptr, nbr, Jf)
        a, d = _metropolis_site(i, hx, hy, hz, spins, rng, beta, cos_max, A, hasA, zee, slen)
        acc += a
        dE_tot += d
    return acc, dE_tot


@njit(cache=True)
def metropolis_sweep(spins, rng, beta, cos_max, ptr, nbr, Jiso, Jd, Jf, mode, A, hasA, zee, slen):
    """One sequential Metropolis sweep of Heisenberg spins (length S_i) with the cone proposal for
    H = Σ_{i<j} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i − Σ_i z_i·S_i (meV, J > 0 antiferromagnetic): ΔE_i = (S'−S)·(h_i − z_i)
    + S'·A_i·S' − S·A_i·S, accepted with min(1, e^{−βΔE}).  Returns (accepted, ΔE in meV)."""
    if mode == 0:
        return _metropolis_iso(spins, rng, beta, cos_max, ptr, nbr, Jiso, A, hasA, zee, slen)
    if mode == 1:
        return _metropolis_diag(spins, rng, beta, cos_max, ptr, nbr, Jd, A, hasA, zee, slen)
    return _metropolis_full(spins, rng, beta, cos_max, ptr, nbr, Jf, A, hasA, zee, slen)


@njit(cache=True)
def ising_sweep(spins, rng, beta, ptr, nbr, Jiso, Jd, Jf, mode, zee):
    """One sequential Metropolis sweep of Ising spins S_i^z = ±S_i (x = y = 0) for H = Σ_{i<j} J_ij^zz S_i^z S_j^z
    − Σ_i z_i^z S_i^z (+ the constant single-ion term; meV, J > 0 antiferromagnetic).  Returns (accepted, ΔE)."""
    acc = 0
    dE_tot = 0.0
    for i in range(spins.shape[0]):
        hz = 0.0
        if mode == 0:
            for k in range(ptr[i], ptr[i + 1]):
                hz += Jiso[k] * spins[nbr[k], 2]
        elif mode == 1:
            for k in range(ptr[i], ptr[i + 1]):
                hz += Jd[k, 2] * spins[nbr[k], 2]
        else:
            for k in range(ptr[i], ptr[i + 1]):
                hz += Jf[k, 8] * spins[nbr[k], 2]
        hz -= zee[i, 2]
        sz = spins[i, 2]
        dE = -2.0 * sz * hz
        if dE <= 0.0 or next_double(rng) < math.exp(-beta * dE):
            spins[i, 2] = -sz
            acc += 1
            dE_tot += dE
    return acc, dE_tot


@njit(cache=True, inline="always")
def _reflect(i, hx, hy, hz, spins, zee):
    hx -= zee[i, 0]
    hy -= zee[i, 1]
    hz -= zee[i, 2]
    h2 = hx * hx + hy * hy + hz * hz
    if h2 < 1e-300:
        return
    f = 2.0 * (spins[i, 0] * hx + spins[i, 1] * hy + spins[i, 2] * hz) / h2
    spins[i, 0] = f * hx - spins[i, 0]
    spins[i, 1] = f * hy - spins[i, 1]
    spins[i, 2] = f * hz - spins[i, 2]


@njit(cache=True)
def overrelax_sweep(spins, ptr, nbr, Jiso, Jd, Jf, mode, orok, zee):
    """Over-relaxation: reflect S_i about its local field h_i − z_i, S' = 2 (S·ĥ) ĥ − S.

    The energy of site i is linear in S_i (any exchange tensor, DMI included, and the Zeeman term) unless it has a
    single-ion term; the reflection keeps |S_i| and S_i·h_i, so it is an exact microcanonical move.  Sites with a
    non-trivial single-ion tensor (``orok`` False) are skipped.  One loop per exchange storage mode."""
    n = spins.shape[0]
    if mode == 0:
        for i in range(n):
            if orok[i]:
                hx, hy, hz = _field_iso(i, spins, ptr, nbr, Jiso)
                _reflect(i, hx, hy, hz, spins, zee)
    elif mode == 1:
        for i in range(n):
            if orok[i]:
                hx, hy, hz = _field_diag(i, spins, ptr, nbr, Jd)
                _reflect(i, hx, hy, hz, spins, zee)
    else:
        for i in range(n):
            if orok[i]:
                hx, hy, hz = _field_full(i, spins, ptr, nbr, Jf)
                _reflect(i, hx, hy, hz, spins, zee)


@njit(cache=True, inline="always")
def _reflect_uniaxial(i, hx, hy, hz, spins, zee, axis):
    """Microcanonical move of a site with a uniaxial single-ion term S·A·S = a S² + D (S·n)², n = ``axis[i]``:
    with S = s_n n + S⊥ and the linear field h = h_i − z_i = h_n n + h⊥, reflect S⊥ about h⊥ within the circle of
    fixed s_n: S⊥' = 2 (S⊥·ĥ⊥) ĥ⊥ − S⊥.  It keeps |S|, s_n (so the single-ion energy) and S⊥·h⊥ (so S·h): the site
    energy S·h + S·A·S is conserved exactly; applied twice in the same field it is the identity (an involution), and
    it preserves the uniform measure on the sphere (a reflection of the azimuth about n at fixed s_n), hence it
    satisfies detailed balance as a deterministic move.  Nothing happens when h ∥ n."""
    hx -= zee[i, 0]
    hy -= zee[i, 1]
    hz -= zee[i, 2]
    nx = axis[i, 0]
    ny = axis[i, 1]
    nz = axis[i, 2]
    hn = hx * nx + hy * ny + hz * nz
    px = hx - hn * nx
    py = hy - hn * ny
    pz = hz - hn * nz
    p2 = px * px + py * py + pz * pz
    if p2 < 1e-300:
        return
    sx = spins[i, 0]
    sy = spins[i, 1]
    sz = spins[i, 2]
    sn = sx * nx + sy * ny + sz * nz
    qx = sx - sn * nx
    qy = sy - sn * ny
    qz = sz - sn * nz
    f = 2.0 * (qx * px + qy * py + qz * pz) / p2
    spins[i, 0] = sn * nx + f * px - qx
    spins[i, 1] = sn * ny + f * py - qy
    spins[i, 2] = sn * nz + f * pz - qz


@njit(cache=True, inline="always")
def _or_site(i, hx, hy, hz, spins, orok, uniax, axis, zee):
    if orok[i]:
        _reflect(i, hx, hy, hz, spins, zee)
    elif uniax[i]:
        _reflect_uniaxial(i, hx, hy, hz, spins, zee, axis)


@njit(cache=True)
def overrelax_sweep_uniaxial(spins, ptr, nbr, Jiso, Jd, Jf, mode, orok, uniax, axis, zee):
    """Over-relaxation of every site: the reflection about the local field (:func:`overrelax_sweep`) for sites
    without an anisotropic single-ion term (``orok``), the reflection at fixed S·n (:func:`_reflect_uniaxial`) for
    sites with a uniaxial one (``uniax``, axis n = ``axis[i]``); sites with a general (three different
    eigenvalues) single-ion tensor are skipped.  Each move conserves the energy exactly
    (H = Σ_{i<j} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i − Σ_i z_i·S_i, meV, J > 0 antiferromagnetic)."""
    n = spins.shape[0]
    if mode == 0:
        for i in range(n):
            if orok[i] or uniax[i]:
                hx, hy, hz = _field_iso(i, spins, ptr, nbr, Jiso)
                _or_site(i, hx, hy, hz, spins, orok, uniax, axis, zee)
    elif mode == 1:
        for i in range(n):
            if orok[i] or uniax[i]:
                hx, hy, hz = _field_diag(i, spins, ptr, nbr, Jd)
                _or_site(i, hx, hy, hz, spins, orok, uniax, axis, zee)
    else:
        for i in range(n):
            if orok[i] or uniax[i]:
                hx, hy, hz = _field_full(i, spins, ptr, nbr, Jf)
                _or_site(i, hx, hy, hz, spins, orok, uniax, axis, zee)


@njit(cache=True)
def greedy_sweep(spins, ptr, nbr, Jiso, Jd, Jf, mode, orok, zee, slen):
    """Zero-temperature quench: align every site without a single-ion term antiparallel to its field (the exact
    minimum of its linear energy).  Used at the end of simulated annealing."""
    for i in range(spins.shape[0]):
        if not orok[i]:
            continue
        hx, hy, hz = exchange_field(i, spins, ptr, nbr, Jiso, Jd, Jf, mode)
        hx -= zee[i, 0]
        hy -= zee[i, 1]
        hz -= zee[i, 2]
        h = math.sqrt(hx * hx + hy * hy + hz * hz)
        if h < 1e-300:
            continue
        spins[i, 0] = -slen[i] * hx / h
        spins[i, 1] = -slen[i] * hy / h
        spins[i, 2] = -slen[i] * hz / h


@njit(cache=True)
def local_min_sweep(spins, ptr, nbr, Jiso, Jd, Jf, mode, A, hasA, zee, slen, n_iter):
    """Zero-temperature local minimisation of every site in its frozen exchange + Zeeman field, single-ion term
    included: projected gradient descent on the sphere with backtracking (sites without single-ion term are set
    antiparallel to their field directly).  Returns the energy change (meV, ≤ 0)."""
    dE_tot = 0.0
    for i in range(spins.shape[0]):
        hx, hy, hz = exchange_field(i, spins, ptr, nbr, Jiso, Jd, Jf, mode)
        hx -= zee[i, 0]
        hy -= zee[i, 1]
        hz -= zee[i, 2]
        S = slen[i]
        ux = spins[i, 0] / S
        uy = spins[i, 1] / S
        uz = spins[i, 2] / S
        e = S * (ux * hx + uy * hy + uz * hz)
        if hasA[i]:
            e += S * S * _quad(A, i, ux, uy, uz)
        amax = 0.0
        for k in range(9):
            amax = max(amax, abs(A[i, k]))
        hn = math.sqrt(hx * hx + hy * hy + hz * hz)
        eta = 1.0 / (S * hn + 6.0 * S * S * amax + 1e-300)
        e0 = e
        for _ in range(n_iter):
            gx = S * hx
            gy = S * hy
            gz = S * hz
            if hasA[i]:
                gx += S * S * ((A[i, 0] + A[i, 0]) * ux + (A[i, 1] + A[i, 3]) * uy + (A[i, 2] + A[i, 6]) * uz)
                gy += S * S * ((A[i, 3] + A[i, 1]) * ux + (A[i, 4] + A[i, 4]) * uy + (A[i, 5] + A[i, 7]) * uz)
                gz += S * S * ((A[i, 6] + A[i, 2]) * ux + (A[i, 7] + A[i, 5]) * uy + (A[i, 8] + A[i, 8]) * uz)
            gu = gx * ux + gy * uy + gz * uz
            tx = gx - gu * ux
            ty = gy - gu * uy
            tz = gz - gu * uz
            if tx * tx + ty * ty + tz * tz < 1e-28 * (gx * gx + gy * gy + gz * gz) + 1e-300:
                break
            step = eta
            improved = False
            for _b in range(30):
                vx = ux - step * tx
                vy = uy - step * ty
                vz = uz - step * tz
                n = math.sqrt(vx * vx + vy * vy + vz * vz)
                vx /= n
                vy /= n
                vz /= n
                en = S * (vx * hx + vy * hy + vz * hz)
                if hasA[i]:
                    en += S * S * _quad(A, i, vx, vy, vz)
                if en < e:
                    ux = vx
                    uy = vy
                    uz = vz
                    e = en
                    improved = True
                    break
                step *= 0.5
            if not improved:
                break
            eta = 2.0 * step
        spins[i, 0] = S * ux
        spins[i, 1] = S * uy
        spins[i, 2] = S * uz
        dE_tot += e - e0
    return dE_tot


@njit(cache=True)
def order_parameters_axis(spins, slen, pat, n):
    """(|M|, |Q|, |Q·n|): the magnetisation and the staggered magnetisation Q = Σ σ_i S_i/S_i / N (σ_i = ±1 the
    ground-state pattern), both per site in units of S (1 in the fully ordered state), and the component of Q along the
    unit vector ``n`` (the ground-state axis; per site in units of S) — the order parameter of an easy-axis
    (Ising-type) transition."""
    mx = 0.0
    my = 0.0
    mz = 0.0
    qx = 0.0
    qy = 0.0
    qz = 0.0
    for i in range(spins.shape[0]):
        inv = 1.0 / slen[i]
        x = spins[i, 0] * inv
        y = spins[i, 1] * inv
        z = spins[i, 2] * inv
        mx += x
        my += y
        mz += z
        p = pat[i]
        qx += p * x
        qy += p * y
        qz += p * z
    nn = spins.shape[0]
    qa = abs(qx * n[0] + qy * n[1] + qz * n[2]) / nn
    return (math.sqrt(mx * mx + my * my + mz * mz) / nn, math.sqrt(qx * qx + qy * qy + qz * qz) / nn, qa)


# ---------------------------------------------------------------------------------------------------- tempering
#: per bin: e, e², m, m², q, q², q⁴, m⁴ and the moments |q_n|, q_n², q_n⁴ of the order-parameter component along the
#: ground-state axis n (checkpoints of earlier versions held the first 8 only)
N_OBS = 11
OBS_NAMES = ("e", "e2", "m", "m2", "q", "q2", "q4", "m4", "qa", "qa2", "qa4")
#: the bins layout of earlier versions (no axis moments)
N_OBS_OLD = 8
