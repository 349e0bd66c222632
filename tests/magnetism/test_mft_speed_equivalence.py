"""The vectorised force theorem (batched BLAS products, Fourier sum at the bonds' R) against a straightforward
evaluation of the LKAG formula (issue 17, item 6).

Reference: for every contour point z and every k of the mesh, G(k, z) = [z − H(k)]^{-1} by a matrix inverse (no
eigen-decomposition), G_ij(R, z) = (1/N_k) Σ_k e^{−2πi k·R} G_ij(k, z) by an explicit loop, and

    J^{LKAG}_ij(R) = (1/4π) Im Σ_z w(z) Tr[Δ_i G↑_ij(R, z) Δ_j G↓_ji(−R, z)] · sign(m_i·m_j)   (meV, TB2J convention)

on the same contour points and weights.  The model is random (several orbitals per magnetic atom, a ligand orbital,
complex hoppings, a non-square k-mesh, a chunk size that does not divide the number of energy points) so that a
transposed index, a wrong sign of R or a chunk boundary shows up.
"""

import numpy as np
import pytest

from wannmag.magnetism.mft import CollinearHamiltonian, energy_contour, kmesh_points, lkag_exchange

CELL = np.array([[3.0, 0.0, 0.0], [-1.5, 2.6, 0.0], [0.0, 0.0, 20.0]])
RS = [(0, 0, 0), (1, 0, 0), (0, 1, 0), (1, 1, 0), (1, -1, 0), (2, 0, 0)]


def random_model(signs=(1, 1), seed=3) -> CollinearHamiltonian:
    """Two magnetic atoms (3 orbitals each) and one ligand (2 orbitals); up/down differ on the magnetic blocks by an
    exchange splitting of sign −s_i (s_i = +1: ↑ levels lower)."""
    rng = np.random.default_rng(seed)
    orbital_atom = np.array([0, 0, 0, 1, 1, 1, 2, 2])
    nw = len(orbital_atom)
    Rall = RS + [tuple(-x for x in R) for R in RS[1:]]
    H = {R: np.zeros((nw, nw), complex) for R in Rall}
    for R in RS[1:]:
        h = 0.15 * (rng.normal(size=(nw, nw)) + 1j * rng.normal(size=(nw, nw))) / (1 + np.abs(R).sum())
        H[R] = h
        H[tuple(-x for x in R)] = h.conj().T
    h0 = 0.3 * (rng.normal(size=(nw, nw)) + 1j * rng.normal(size=(nw, nw)))
    H[(0, 0, 0)] = h0 + h0.conj().T + np.diag([0.0, 0.1, 0.2, 0.05, 0.15, 0.25, -2.0, -2.2])
    split = np.zeros((nw, nw), complex)
    for atom, s in zip((0, 1), signs):
        idx = np.nonzero(orbital_atom == atom)[0]
        d = rng.normal(scale=0.2, size=(3, 3))
        split[np.ix_(idx, idx)] = -s * (2.0 * np.eye(3) + 0.5 * (d + d.T))
    H_up = np.array([H[R] + (0.5 * split if R == (0, 0, 0) else 0) for R in Rall])
    H_dn = np.array([H[R] - (0.5 * split if R == (0, 0, 0) else 0) for R in Rall])
    positions = np.array([[0.0, 0.0, 10.0], [1.5, 0.87, 10.0], [0.75, 0.4, 11.0]])
    return CollinearHamiltonian(cell=CELL, R=np.array(Rall), H_up=H_up, H_dn=H_dn, orbital_atom=orbital_atom,
                                positions=positions, magnetic=[0, 1], elements=["Cr", "Cr"], spins=[1.5, 1.5],
                                source="random model")


def reference_lkag(ham, bonds, kmesh, efermi, emin, n_energy, rotations=None):
    """J^{LKAG} (meV) and the orbital-resolved matrices by the plain formula (module docstring)."""
    kpts = kmesh_points(kmesh)
    z, w = energy_contour(emin, efermi, n_energy)
    nk = len(kpts)
    signs = ham.moment_signs()
    idx = [np.nonzero(ham.orbital_atom == a)[0] for a in ham.magnetic]
    rot = [np.asarray((rotations or {}).get(k, np.eye(len(i)))) for k, i in enumerate(idx)]
    delta = [rot[k] @ ham.onsite_splitting(a) @ rot[k].conj().T for k, a in enumerate(ham.magnetic)]
    Hk = [ham.hk(kpts, s) for s in (0, 1)]
    out, orb = [], []
    for a, b, R in bonds:
        acc = 0.0
        acc_orb = np.zeros((len(idx[a]), len(idx[b])), complex)
        for zz, ww in zip(z, w):
            Gup = np.zeros((len(idx[a]), len(idx[b])), complex)
            Gdn = np.zeros((len(idx[b]), len(idx[a])), complex)
            for k in range(nk):
                gu = np.linalg.inv(zz * np.eye(ham.nw) - Hk[0][k])
                gd = np.linalg.inv(zz * np.eye(ham.nw) - Hk[1][k])
                ph = np.exp(-2j * np.pi * np.dot(kpts[k], R))
                Gup += ph * gu[np.ix_(idx[a], idx[b])] / nk
                Gdn += np.conj(ph) * gd[np.ix_(idx[b], idx[a])] / nk  # G↓_ji(−R)
            Gup = rot[a] @ Gup @ rot[b].conj().T
            Gdn = rot[b] @ Gdn @ rot[a].conj().T
            X, Y = delta[a] @ Gup, delta[b] @ Gdn
            acc_orb += ww * X * Y.T
            acc += ww * np.trace(X @ Y)
        s = signs[a] * signs[b]
        out.append(np.imag(acc) / (4 * np.pi) * 1000.0 * s)
        orb.append(np.imag(acc_orb) / (4 * np.pi) * 1000.0 * s)
    return np.array(out), orb


@pytest.mark.parametrize("signs", [(1, 1), (1, -1)])
def test_vectorised_lkag_equals_plain_formula(signs):
    ham = random_model(signs)
    bonds = [(0, 1, (0, 0, 0)), (0, 1, (-1, 0, 0)), (0, 0, (1, 0, 0)), (1, 1, (0, 1, 0)), (0, 1, (1, -1, 0)),
             (0, 0, (1, 1, 0))]
    kmesh, n_energy = (5, 4, 1), 23
    eig = np.linalg.eigvalsh(ham.hk(kmesh_points(kmesh), 0))
    efermi = float(np.sort(eig.ravel())[len(eig.ravel()) // 2])  # inside the bands: a metal, the hardest case
    emin = float(min(np.linalg.eigvalsh(ham.hk(kmesh_points(kmesh), s)).min() for s in (0, 1))) - 1.0
    theta = 0.7
    c, s = np.cos(theta), np.sin(theta)
    rotations = {1: np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])}
    res = lkag_exchange(ham, bonds=bonds, kmesh=kmesh, efermi=efermi, emin=emin, n_energy=n_energy, chunk=7,
                        rotations=rotations)
    ref, ref_orb = reference_lkag(ham, bonds, kmesh, efermi, emin, n_energy, rotations=rotations)
    got = dict(zip(res.bonds, res.J_lkag))
    got_orb = dict(zip(res.bonds, res.orbital))
    assert np.max(np.abs(ref)) > 1e-3  # not a trivially vanishing exchange
    for (a, b, R), J, M in zip(bonds, ref, ref_orb):
        assert got[(a, b, R)] == pytest.approx(J, rel=1e-10, abs=1e-10 * np.max(np.abs(ref)))
        np.testing.assert_allclose(got_orb[(a, b, R)], M, rtol=0, atol=1e-10 * np.max(np.abs(ref)))


def test_memory_bounded_batches_give_the_same_exchange(monkeypatch):
    import wannmag.magnetism.mft as mft

    ham = random_model((1, -1))
    kw = dict(bonds=[(0, 1, (0, 0, 0)), (0, 0, (1, 0, 0))], kmesh=(5, 4, 1), n_electrons=5.0, n_energy=23)
    full = lkag_exchange(ham, chunk=23, **kw)
    monkeypatch.setattr(mft, "CHUNK_MEMORY", 1.0)  # one energy point per batch
    one = lkag_exchange(ham, chunk=23, **kw)
    np.testing.assert_allclose(one.J_lkag, full.J_lkag, rtol=1e-12, atol=0)


def test_energy_integral_runs_on_one_blas_thread(monkeypatch):
    """threadpoolctl is a dependency: the guard really limits every loaded BLAS to one thread and restores it (in a
    child started with 2 BLAS threads), and lkag_exchange runs its BLAS products inside the guard."""
    import os
    import subprocess
    import sys

    import wannmag.magnetism.mft as mft

    code = ("from threadpoolctl import threadpool_info\nimport numpy, scipy.linalg\n"
            "from wannmag.magnetism.mft import _single_threaded_blas\n"
            "n = lambda: sorted({x['num_threads'] for x in threadpool_info() if x['user_api'] == 'blas'})\n"
            "before = n()\nwith _single_threaded_blas():\n    inside = n()\nprint(before, inside, n())\n")
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[0] == "[2] [1] [2]"

    entered = []
    guard = mft._single_threaded_blas

    def recording():
        entered.append(True)
        return guard()

    monkeypatch.setattr(mft, "_single_threaded_blas", recording)
    lkag_exchange(random_model(), bonds=[(0, 1, (0, 0, 0))], kmesh=(3, 3, 1), n_electrons=5.0, n_energy=8)
    assert entered == [True]
