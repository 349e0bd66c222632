"""Wolff cluster moves for classical Heisenberg (and Ising) spins by Ising embedding, made exact for anisotropic and
frustrated models by a Metropolis acceptance of the whole cluster flip.

Hamiltonian (internal wannmag convention, energies in meV)::

    H = Σ_{bonds (i,j), each once} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i − Σ_i z_i·S_i,      z_i = g_i μ_B B

classical spins of length S_i, J > 0 antiferromagnetic.  Temperatures enter as β = 1/(k_B T) in 1/meV.

The move (Wolff, PRL 62, 361 (1989); with a partial embedding as in Kandel & Domany, PRB 43, 8539 (1991))
-------------------------------------------------------------------------------------------------------------
1. Draw a unit vector r uniformly on the sphere (Ising mode: r = ẑ) and a seed site uniformly.  The reflection
   R_r: S → S − 2 (S·r) r changes only the projection x_i = S_i·r → −x_i and is its own inverse.
2. Split H = H_emb + H_rest.  H_emb = Σ_{grown bonds} g_ij x_i x_j, where g_ij is a scalar per bond (by default the
   isotropic part tr J_ij / 3 of the bonds that are satisfied in the ground-state pattern σ, i.e. g_ij σ_i σ_j < 0;
   the other bonds get g_ij = 0).  Since g_ij S_i·S_j = g_ij x_i x_j + g_ij S_i⊥·S_j⊥ and R_r leaves S⊥ unchanged,
   H_rest = H − H_emb contains everything else — the perpendicular parts of the grown bonds (invariant under a flip
   of both ends), the anisotropic/antisymmetric remainder J_ij − g_ij 1, the bonds not grown (e.g. the VPS3 J2,
   frustrated against the Néel pattern), single-ion and Zeeman terms.
3. Grow the cluster C from the seed: a site i ∈ C tries once to add each neighbour j ∉ C over every grown bond with
   p_ij = 1 − exp(min(0, 2β g_ij x_i x_j)) (x of the configuration before the move; only bonds that the embedded Ising
   model satisfies, g_ij x_i x_j < 0, can be activated).
4. Reflect every spin of C and accept the whole flip with min(1, exp(−β ΔH_rest)), ΔH_rest = ΔH − ΔH_emb; ΔH is
   computed exactly (the cluster's sites are flipped one after the other, each in its current local field).

Detailed balance.  For a given r and cluster C, the forward move (configuration a → b = R_r(C) a) and the reverse
(b → a, same r — or −r, which defines the same reflection, drawn with the same density — same C) have the same seed
probability |C|/N summed over seeds in C, and the same activation probabilities of the bonds inside C, because x_i x_j
is unchanged when both ends flip.  They differ only on the boundary bonds (i ∈ C, j ∉ C), each of which must be
*inactive*: the forward growth rejects it with 1 − p_ij = exp(min(0, t_ij)), t_ij = 2β g_ij x_i x_j, the reverse with
exp(min(0, −t_ij)); their ratio is exp(t_ij).  Hence P_prop(a→b)/P_prop(b→a) = Π_boundary exp(2β g_ij x_i x_j)
= exp(−β [H_emb(b) − H_emb(a)]) (a boundary bond changes by −2 g_ij x_i x_j).  With the acceptance ratio
A(a→b)/A(b→a) = exp(−β ΔH_rest) the product is exp(−β ΔH) = π(b)/π(a): detailed balance for the Boltzmann
distribution of the full H.  The reflection preserves the spin lengths and the uniform measure on each sphere, so no
Jacobian enters.  Parallel bonds between the same two sites (duplicate images in a small lattice) are separate terms
of H_emb and would still be exact, but such a lattice is refused for its physics (:func:`cluster_couplings`).

Ergodicity comes from the Metropolis sweep that follows the cluster moves in every sweep (tempering.py).  With no
term in H_rest (isotropic bonds all grown, no single-ion or Zeeman term) every flip is accepted: plain Wolff.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .errors import MonteCarloError
from .kernels import _quad, next_double, next_u64
from .lattice import range_problem

__all__ = ["cluster_couplings", "cluster_sweep", "wolff_cluster", "check_cluster_lattice", "ClusterSchemeError"]


class ClusterSchemeError(MonteCarloError):
    """A model or lattice the cluster scheme refuses (one line; the command line prefixes the model file)."""


# ---------------------------------------------------------------------------------------------------- kernel
@njit(cache=True)
def wolff_cluster(spins, rng, beta, ptr, nbr, Jiso, Jd, Jf, mode, A, hasA, zee, Jg, rest_free, ising, stack, incl,
                  old):
    """One cluster move (module docstring) on one walker.  ``Jg`` holds g_ij per CSR entry (0: bond not grown),
    ``rest_free`` is True when H_rest ≡ 0 (then ΔH = ΔH_emb and no acceptance test is needed).  ``stack``
    (int64, N), ``incl`` (uint8, N, all zero on entry and exit) and ``old`` (N × 3) are work arrays.
    Returns (cluster size, accepted 0/1, ΔH in meV)."""
    N = spins.shape[0]
    if ising:
        rx = 0.0
        ry = 0.0
        rz = 1.0
    else:
        c = 1.0 - 2.0 * next_double(rng)
        phi = 2.0 * math.pi * next_double(rng)
        s = math.sqrt(max(0.0, 1.0 - c * c))
        rx = s * math.cos(phi)
        ry = s * math.sin(phi)
        rz = c
    seed = int(next_u64(rng) % np.uint64(N))
    stack[0] = seed
    incl[seed] = 1
    n = 1
    head = 0
    dE_emb = 0.0
    while head < n:
        i = stack[head]
        head += 1
        xi = spins[i, 0] * rx + spins[i, 1] * ry + spins[i, 2] * rz
        for k in range(ptr[i], ptr[i + 1]):
            g = Jg[k]
            if g == 0.0:
                continue
            j = nbr[k]
            if incl[j]:
                continue
            xj = spins[j, 0] * rx + spins[j, 1] * ry + spins[j, 2] * rz
            t = 2.0 * beta * g * xi * xj
            if t < 0.0 and next_double(rng) < 1.0 - math.exp(t):
                incl[j] = 1
                stack[n] = j
                n += 1
    if rest_free:
        # ΔH = ΔH_emb: every grown bond from C to outside changes by −2 g x_i x_j (evaluated before the flip)
        for c_ in range(n):
            i = stack[c_]
            xi = spins[i, 0] * rx + spins[i, 1] * ry + spins[i, 2] * rz
            for k in range(ptr[i], ptr[i + 1]):
                j = nbr[k]
                if incl[j]:
                    continue
                xj = spins[j, 0] * rx + spins[j, 1] * ry + spins[j, 2] * rz
                dE_emb -= 2.0 * Jg[k] * xi * xj
        for c_ in range(n):
            i = stack[c_]
            xi = spins[i, 0] * rx + spins[i, 1] * ry + spins[i, 2] * rz
            spins[i, 0] -= 2.0 * xi * rx
            spins[i, 1] -= 2.0 * xi * ry
            spins[i, 2] -= 2.0 * xi * rz
            incl[i] = 0
        return n, 1, dE_emb
    # exact ΔH: flip the cluster's sites one after the other in their current fields; in the same pass ΔH_emb over
    # the grown bonds from C to outside (those neighbours are never flipped, so their x is the one before the move)
    dE = 0.0
    for c_ in range(n):
        i = stack[c_]
        sx = spins[i, 0]
        sy = spins[i, 1]
        sz = spins[i, 2]
        old[c_, 0] = sx
        old[c_, 1] = sy
        old[c_, 2] = sz
        xi = sx * rx + sy * ry + sz * rz
        hx = 0.0
        hy = 0.0
        hz = 0.0
        for k in range(ptr[i], ptr[i + 1]):
            j = nbr[k]
            ux = spins[j, 0]
            uy = spins[j, 1]
            uz = spins[j, 2]
            if mode == 0:
                J = Jiso[k]
                hx += J * ux
                hy += J * uy
                hz += J * uz
            elif mode == 1:
                hx += Jd[k, 0] * ux
                hy += Jd[k, 1] * uy
                hz += Jd[k, 2] * uz
            else:
                hx += Jf[k, 0] * ux + Jf[k, 1] * uy + Jf[k, 2] * uz
                hy += Jf[k, 3] * ux + Jf[k, 4] * uy + Jf[k, 5] * uz
                hz += Jf[k, 6] * ux + Jf[k, 7] * uy + Jf[k, 8] * uz
            if not incl[j]:
                dE_emb -= 2.0 * Jg[k] * xi * (ux * rx + uy * ry + uz * rz)
        hx -= zee[i, 0]
        hy -= zee[i, 1]
        hz -= zee[i, 2]
        tx = sx - 2.0 * xi * rx
        ty = sy - 2.0 * xi * ry
        tz = sz - 2.0 * xi * rz
        dE += (tx - sx) * hx + (ty - sy) * hy + (tz - sz) * hz
        if hasA[i]:
            dE += _quad(A, i, tx, ty, tz) - _quad(A, i, sx, sy, sz)
        spins[i, 0] = tx
        spins[i, 1] = ty
        spins[i, 2] = tz
    d_rest = dE - dE_emb
    ok = d_rest <= 0.0 or next_double(rng) < math.exp(-beta * d_rest)
    for c_ in range(n):
        i = stack[c_]
        incl[i] = 0
        if not ok:
            spins[i, 0] = old[c_, 0]
            spins[i, 1] = old[c_, 1]
            spins[i, 2] = old[c_, 2]
    if ok:
        return n, 1, dE
    return n, 0, 0.0


@njit(cache=True)
def cluster_sweep(spins, rng, beta, ptr, nbr, Jiso, Jd, Jf, mode, A, hasA, zee, Jg, rest_free, ising, target, stack,
                  incl, old):
    """Cluster moves on one walker until the clusters built hold ≥ ``target`` sites in total (at least one move).
    Returns (moves, accepted moves, sites in the clusters, ΔH in meV)."""
    moves = 0
    acc = 0
    sites = 0
    dE = 0.0
    while True:
        n, a, d = wolff_cluster(spins, rng, beta, ptr, nbr, Jiso, Jd, Jf, mode, A, hasA, zee, Jg, rest_free, ising,
                                stack, incl, old)
        moves += 1
        acc += a
        sites += n
        dE += d
        if sites >= target:
            break
    return moves, acc, sites, dE


# ---------------------------------------------------------------------------------------------------- set-up
#: default bonds the clusters grow on: "pattern" — the isotropic part of the bonds satisfied in the ground-state
#: pattern (σ_i σ_j J_iso < 0); "all" — the isotropic part of every bond (frustrated bonds then join clusters only
#: where they are locally satisfied, exact as well; none in the acceptance)
GROW_CHOICES = ("pattern", "all")


def check_cluster_lattice(lat) -> None:
    """Refuse (one :class:`ClusterSchemeError` line) a lattice too small for the bond range of its model: a bond that
    wraps onto its own site or two bonds (or a bond and its own reverse) joining the same pair of sites.  Such a lattice is a different model (the
    images add up) — exact for Metropolis as built, but not the model meant; cluster runs need L above the range."""
    why = range_problem(lat)
    if why is not None:
        raise ClusterSchemeError(f"{why} (cluster moves refuse such a lattice; --algorithm metropolis runs it, "
                                 "with this warning)")


def cluster_couplings(lat, pattern, ising: bool = False, grow: str = "pattern", tol: float = 1e-10):
    """(Jg per CSR entry, rest_free) for :func:`wolff_cluster` on ``lat`` (meV; H = Σ_{i<j} S_i·J_ij·S_j + ...,
    J > 0 antiferromagnetic).  g_ij = tr J_ij / 3 (Ising mode: J_ij^zz) for the bonds chosen by ``grow``
    (:data:`GROW_CHOICES`; "pattern" uses σ_i = ``pattern``), else 0.

    Refuses (one :class:`MonteCarloError` line) a model the scheme cannot treat: a grown bond whose anisotropic or
    antisymmetric (DMI) remainder max|J − g 1| exceeds |g| (the acceptance of the cluster flips would vanish; such
    bond-dependent, Kitaev-like or DM-dominated models need Metropolis), no bond to grow on, or a lattice too small
    for the bond range (:func:`check_cluster_lattice`)."""
    if grow not in GROW_CHOICES:
        raise MonteCarloError(f"cluster growth must be one of {', '.join(GROW_CHOICES)}, got {grow!r}")
    check_cluster_lattice(lat)
    Jf = lat.Jf.reshape(-1, 3, 3)
    if ising:
        g = Jf[:, 2, 2].copy()
        rem = np.zeros(len(g))
    else:
        g = np.trace(Jf, axis1=1, axis2=2) / 3.0
        rem = np.abs(Jf - g[:, None, None] * np.eye(3)).max(axis=(1, 2)) if len(g) else np.zeros(0)
    rows = np.repeat(np.arange(lat.n_sites), np.diff(lat.ptr))
    sig = np.asarray(pattern, float)
    if grow == "pattern":
        g = np.where(g * sig[rows] * sig[lat.nbr] < 0.0, g, 0.0)
    scale = max(1.0, float(np.abs(Jf).max(initial=0.0)))
    g[np.abs(g) <= tol * scale] = 0.0
    if not np.any(g):
        raise ClusterSchemeError("cluster moves: no bond to grow clusters on (no isotropic exchange satisfied by the "
                              "ground-state pattern); use --algorithm metropolis")
    bad = (g != 0.0) & (rem > np.abs(g))
    if np.any(bad):
        k = int(np.argmax(bad))
        raise ClusterSchemeError(
            f"cluster moves: the bond between sites {int(rows[k])} and {int(lat.nbr[k])} has an anisotropic/"
            f"antisymmetric part (max |J - J_iso| = {rem[k]:.4g} meV) larger than its isotropic part "
            f"({g[k]:.4g} meV), which the Ising embedding cannot treat; use --algorithm metropolis")
    full = np.where(g != 0.0, 1.0, 0.0)
    aniso_rest = bool(np.any(rem[g != 0.0] > tol * scale)) if not ising else False
    rest_free = (not ising and bool(np.all(full == 1.0)) and not aniso_rest and not np.any(lat.hasA & ~lat.orok)
                 and not np.any(lat.zee))
    if ising:
        rest_free = bool(np.all(g == Jf[:, 2, 2])) and not np.any(lat.zee[:, 2])
    return np.ascontiguousarray(g), rest_free
