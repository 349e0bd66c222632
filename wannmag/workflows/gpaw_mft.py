"""GPAW's plane-wave site force theorem (Wannier-free): exchange constants J_ij(R) from a ground-state .gpw with
``gpaw.response.mft.IsotropicExchangeCalculator`` (F. L. Durhuus, T. Skovhus, T. Olsen, J. Phys.: Condens. Matter
35, 105802 (2023); GPAW tutorial "Magnon dispersion from the magnetic force theorem").

Package conventions: exchange in meV, H = Σ_{i<j} J_ij S_i·S_j (every bond once, classical spins of length S,
J > 0 antiferromagnetic), lengths Å, energies of the DFT layer eV.

What GPAW computes.  For a collinear ground state and spherical sites Ω_a (radius r_c around each magnetic ion), the
lattice Fourier transform of the exchange between sublattices a and b

    J̄^{ab}(q) = −(2/Ω_cell) W_xc^{z†} K^{a†}(q) χ'^{+−}_KS(q) K^b(q) W_xc^z          (eV)

(χ'^{+−}_KS the reactive static transverse Kohn–Sham susceptibility, K^a the site kernels, W_xc^z = (V_xc^↑ −
V_xc^↓)/2 the exchange field), in the convention of the tutorial and the paper

    E_H = −½ Σ_{i,j} Σ_{a,b} J^{ab}_{ij} u_{ia}·u_{jb}  = − Σ_{pairs} J u_i·u_j,     J̄^{ab}(q) = Σ_i J^{ab}_{0i} e^{iq·R_i},

i.e. each pair once (the ½ cancels the double sum), unit vectors u, eV, J > 0 ferromagnetic.  Checked against
GPAW's own linear spin-wave formula (gpaw.response.heisenberg: ħω(q) = (2/M)[J̄(0) − J̄(q)] for one site of moment
M μ_B, which is the classical single-counting result ω = S[J̃(0) − J̃(q)] with S = M/2 and J̃ = J/S²).

Conversion to the package (``GPAW_MFT``, a :class:`wannmag.magnetism.spinmodel.Convention`):

    J_internal(meV) = −1000 · J^{GPAW}(eV) / (S_i S_j)

Real space: J^{ab}(R) = (1/N_q) Σ_q J̄^{ab}(q) e^{−2πi q·R} on a Γ-centred q-mesh commensurate with the ground
state's k-mesh (R inside the mesh's supercell, |R_k| < n_k/2); J̄^{ab}(−q) = J̄^{ab}(q)* (collinear, no SOC), so only
half of the mesh is computed.  The on-site term J^{aa}(0) is a self-interaction of the site partition, not a bond,
and is dropped.

Antiparallel sites (a Néel ground state): Eq. (2) with the signed W_xc^z gives sign(m_a m_b) times Eq. (1), the
force theorem with B^xc = −|W_xc^z| (GPAW's docstring); the driver multiplies the isotropic calculator's J̄^{ab} by
sign(m_a m_b) (site moments of the ground state, stored in the result), the analogue of the sign(m_i·m_j) of
wannmag.magnetism.mft.lkag_exchange, so that an AF reference gives J in the same convention.

Exchange–correlation kernels (read from gpaw 26.7's source, gpaw/response/localft.py and matrix_elements.py, and
measured here, see tests/workflows/test_gpaw_mft.py):
- ``IsotropicExchangeCalculator`` (this driver's method "isotropic") evaluates W_xc^z with ``add_LSDA_Wxc``, whose
  functional is always ``'LDA'`` (``XC('LDA')``, asserted to be of LDA type) on the ground-state spin density,
  whatever functional made the ground state, and it has no Hubbard term.  With an LDA ground state it is the
  consistent LSDA force theorem of the paper.  With a GGA (PBE) ground state it runs, but the field is the LDA field
  of the PBE density, not the PBE exchange field that split the bands (χ_KS is from the PBE+U bands).  With DFT+U
  the Hubbard exchange field −U/2 (ρ^↑ − ρ^↓) on the d projectors is missing from W_xc: the force theorem then
  rotates the spins against only the LSDA part of the field that splits the d states, while χ_KS carries the full
  PBE+U splitting.  In the localized (superexchange) limit the two field vertices of J ∝ B χ B scale J by
  (B_used/Δ)², Δ the true ↑/↓ splitting: for Cr3+/V2+ t2g³ (n↑ − n↓ ≈ 1 per t2g orbital) Dudarev U = 3 eV adds
  ≈ U(n↑ − n↓) ≈ 3 eV to the ≈ 3 eV LSDA splitting of the occupied t2g levels (the PBE+U CrI3 Wannier model has a
  mean Cr d splitting Tr Δ/5 = 5.3 eV), so |J| comes out too small by up to a factor ≈ 4 on those channels.  The
  result is a mixed, internally inconsistent estimate (no sum rule or Goldstone guarantee), *not* the PBE+U force
  theorem; the consistent comparison is an LDA or LDA+U ground state with method "heisenberg".
- ``HeisenbergExchangeCalculator`` (method "heisenberg", site spin pair energies d^xc = −|W_xc^z| on atomic spheres,
  gpaw.response.site_data.AtomicSites) uses the ground state's own functional name but asserts it is of LDA type
  (a PBE ground state raises ``AssertionError`` inside GPAW, reported here as a WannmagError), and adds the Hubbard
  correction Δd = −U/2 ⟨ψ|m^a|ψ'⟩ (GPAW's test_NiO_withU).  It is therefore the consistent choice for LDA and
  LDA+U ground states (the LDA+U table of issue 17), and unusable for PBE/PBE+U.

Site radius.  J depends on r_c (the rigid-spin partition); the paper and tutorial take the plateau where the
magnon energies do not change with r_c.  Only radii inside GPAW's valid range count
(gpaw.response.site_data.get_site_radii_range: above the spherical truncation width and below the distance to the
nearest neighbour's augmentation sphere; CrI3 LDA+U at 250 eV: Cr 0.12–1.62 Å, so 1.8 and 2.0 Å overlap the I
spheres and GPAW warns "Some radii is outsite the valid range"); the result stores the range (``valid_radii``) and
the plateau is searched among the valid radii only.  :func:`plateau` reports the radius window in which J1 changes by less than
a tolerance per step.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import WannmagError
from ..magnetism.spinmodel import Convention
from ..structures import find_magnetic_sites
from .dft import _jsonable

__all__ = ["GPAW_MFT", "GpawMFTError", "GpawMFTResult", "xc_support", "q_mesh", "half_mesh",
           "real_space_exchange", "gpaw_site_exchange", "plateau", "valid_plateaus", "bonds_within"]

#: GPAW's MFT convention: E = −Σ_{pairs} J u_i·u_j (each pair once, unit vectors), eV, J > 0 FM
GPAW_MFT = Convention("GPAW MFT", sign=-1, double_counting=False, unit_spins=True, unit="eV")


class GpawMFTError(WannmagError):
    """The plane-wave force theorem cannot be run on this ground state."""


def xc_support(gs) -> dict:
    """What GPAW's MFT kernels do with the functional and Hubbard U of a ground state (a GPAW calculator or a
    ``ResponseGroundStateAdapter``); see the module docstring."""
    from gpaw.xc import XC  # local: optional heavy dependency (GPAW, extra "dft")

    if not hasattr(gs, "xcname"):
        from gpaw.response import ResponseGroundStateAdapter  # local: optional heavy dependency (GPAW, extra "dft")

        gs = ResponseGroundStateAdapter(gs)
    name = str(gs.xcname)
    kind = XC(name).type
    hub = {}
    for a, setup in enumerate(gs.pawdatasets.by_atom):
        if setup.hubbard_u is not None:
            U = setup.hubbard_u
            hub[int(a)] = {"l": [int(x) for x in U.l], "U_eV": [round(float(u) * 27.211386245988, 4) for u in U.U]}
    out = {"xc": name, "xc_type": kind, "hubbard_atoms": hub,
           "isotropic": {"runs": True, "field": "LSDA (XC('LDA')) on the ground-state spin density, no Hubbard term",
                         "consistent": kind == "LDA" and not hub},
           "heisenberg": {"runs": kind == "LDA", "field": f"LSDA of the ground state's functional ({name}) "
                          "+ Hubbard correction where setups carry U", "consistent": kind == "LDA"}}
    notes = []
    if kind != "LDA":
        notes.append(f"{name} is a {kind} functional: the isotropic calculator uses the LDA exchange field of this "
                     "density instead of the field that split the bands; the heisenberg calculator refuses it")
    if hub:
        notes.append("DFT+U ground state: the Hubbard exchange field is not in the isotropic calculator's W_xc "
                     "(the heisenberg calculator includes it)")
    out["notes"] = notes
    return out


def q_mesh(kmesh) -> np.ndarray:
    """All q-points (relative coordinates, in (−½, ½]) of the Γ-centred mesh ``kmesh`` (3 integers)."""
    axes = [np.arange(n) / n for n in kmesh]
    g = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    g = np.where(g > 0.5 + 1e-12, g - 1.0, g)
    return g


def half_mesh(q_qc) -> tuple[list[int], list[int]]:
    """(computed, mirror): indices of q-points to compute and, for each q of the mesh, the index of the computed
    q or −q it is obtained from (J̄(−q) = J̄(q)*); a negative mirror index −1−n means "conjugate of n"."""
    q = np.asarray(q_qc, float)
    key = [tuple(np.round(np.mod(x, 1.0) % 1.0, 8)) for x in q]
    index = {k: n for n, k in enumerate(key)}
    computed, mirror = [], [None] * len(q)
    for n, x in enumerate(q):
        if mirror[n] is not None:
            continue
        computed.append(n)
        mirror[n] = n
        m = index.get(tuple(np.round(np.mod(-x, 1.0) % 1.0, 8)))
        if m is not None and mirror[m] is None:
            mirror[m] = -1 - n
    return computed, mirror


def real_space_exchange(J_qab, q_qc, R_list) -> np.ndarray:
    """J^{ab}(R) = (1/N_q) Σ_q J̄^{ab}(q) e^{−2πi q·R} for each R of ``R_list``; shape (len(R_list), na, nb), real
    part (the imaginary part vanishes for a collinear system without SOC; returned values are checked by callers)."""
    J = np.asarray(J_qab, complex)
    q = np.asarray(q_qc, float)
    R = np.asarray(R_list, float).reshape(-1, 3)
    phase = np.exp(-2j * np.pi * R @ q.T)  # (nR, nq)
    return np.einsum("rq,qab->rab", phase, J) / len(q)


def bonds_within(cell, positions, sites, kmesh, rcut: float):
    """Bonds (a, b, R, distance) between the magnetic sites (atom indices ``sites``) with |R_k| ≤ (n_k − 1)//2 and
    length ≤ rcut Å, each bond once (a < b, or a = b with R lexicographically positive), sorted by length."""
    cell = np.asarray(cell, float)
    pos = np.asarray(positions, float)
    rng = [range(-((m - 1) // 2), (m - 1) // 2 + 1) for m in kmesh]
    out = []
    for a in range(len(sites)):
        for b in range(len(sites)):
            for R in ((x, y, z) for x in rng[0] for y in rng[1] for z in rng[2]):
                if a == b and R == (0, 0, 0):
                    continue
                if not (a < b or (a == b and R > (0, 0, 0))):
                    continue
                d = float(np.linalg.norm(pos[sites[b]] + np.array(R) @ cell - pos[sites[a]]))
                if d <= rcut:
                    out.append((a, b, R, d))
    return sorted(out, key=lambda t: (round(t[3], 3), t[0], t[1], t[2]))


def _shells(distances, tol=0.02):
    shells = []
    for x in sorted(distances):
        if not shells or x - shells[-1] > tol:
            shells.append(float(x))
    return shells


def plateau(radii, values, rel_tol: float = 0.05, abs_tol: float = 0.05):
    """The longest run of consecutive radii in which ``values`` change by less than max(rel_tol·|v|, abs_tol) from
    one radius to the next; returns (first radius, last radius, mean value) or None when no two neighbours agree."""
    r = np.asarray(radii, float)
    v = np.asarray(values, float)
    best, start = None, 0
    for n in range(1, len(v) + 1):
        if n == len(v) or abs(v[n] - v[n - 1]) > max(rel_tol * abs(v[n - 1]), abs_tol):
            if n - start >= 2 and (best is None or n - start > best[1] - best[0]):
                best = (start, n)
            start = n
    if best is None:
        return None
    s, e = best
    return float(r[s]), float(r[e - 1]), float(v[s:e].mean())


@dataclass
class GpawMFTResult:
    """Exchange of GPAW's plane-wave force theorem for every site radius (meV, internal convention; radii Å).

    ``J[p][n]``: bond n of ``bonds`` at radius ``radii[p]``; ``shells[p]``: shell means [J1, J2, ...];
    ``J_q_eV``: the raw J̄^{ab}(q) (eV, GPAW convention) on ``q_points``, {"real", "imag"} arrays (q, a, b, radius)."""

    method: str
    radii: list
    sites: list
    spins: list
    bonds: list
    J: list
    shells: list
    shell_distances: list
    q_points: list
    J_q_eV: list
    max_imag_meV: float
    xc: dict
    settings: dict
    seconds: dict
    plateau: dict = field(default_factory=dict)
    site_moments: list = field(default_factory=list)
    valid_radii: list = field(default_factory=list)  # [r_min, r_max] (Å) valid for every site; [] = not recorded

    def as_dict(self) -> dict:
        return _jsonable(dict(self.__dict__))

    @classmethod
    def from_dict(cls, d: dict) -> "GpawMFTResult":
        d = dict(d)
        d["bonds"] = [[int(a), int(b), [int(x) for x in R], float(dist)] for a, b, R, dist in d["bonds"]]
        return cls(**d)


def _open_calculator(calc_or_gpw):
    """(calc, source): a GPAW calculator read from a .gpw path, or the live calculator given."""
    from gpaw import GPAW  # local: optional heavy dependency (GPAW, extra "dft")

    if isinstance(calc_or_gpw, (str, Path)):
        p = Path(calc_or_gpw)
        if not p.is_file():
            raise GpawMFTError(f"{p}: no such .gpw file")
        try:
            calc = GPAW(str(p), txt=None, parallel={"domain": 1})
        except Exception as exc:  # noqa: BLE001
            raise GpawMFTError(f"{p}: cannot read ({type(exc).__name__})") from None
        return calc, str(p)
    return calc_or_gpw, "live calculator"


def _sites_and_spins(atoms, sites, spins) -> tuple[list[int], list[float]]:
    """Magnetic atom indices and spin lengths S: as given, or from the structures layer (S 1.5 where unknown)."""
    if sites is None or spins is None:
        sub = find_magnetic_sites(atoms)
        sites = list(sub.indices) if sites is None else list(sites)
        if spins is None:
            spin_of = dict(zip(sub.indices, sub.spins))
            spins = [float(spin_of.get(a, 1.5)) for a in sites]
    return [int(a) for a in sites], [float(s) for s in spins]


def _q_sampling(kmesh, qmesh, q_points, source: str):
    """(qmesh, q_all, computed, mirror): the Γ-centred q-mesh (default the k-mesh; it must divide it) with the half
    of it that is computed (:func:`half_mesh`), or the given ``q_points``, all computed (qmesh then unused)."""
    if q_points is None:
        qmesh = tuple(int(x) for x in (qmesh or kmesh))
        if any(k % q for k, q in zip(kmesh, qmesh)):
            raise GpawMFTError(f"{source}: q-mesh {qmesh} is not commensurate with the k-mesh {kmesh}")
        q_all = q_mesh(qmesh)
        computed, mirror = half_mesh(q_all)
    else:
        q_all = np.asarray(q_points, float).reshape(-1, 3)
        computed, mirror = list(range(len(q_all))), list(range(len(q_all)))
    return qmesh, q_all, computed, mirror


def _exchange_at_q(method: str, gs, context, pos, sites, radii, q_all, computed, ecut, nbands, xc, source: str, log):
    """(J_qabp, per_q): GPAW's J̄^{ab}(q) (eV) at the ``computed`` q of every radius (zero elsewhere) and the
    seconds per q; a GPAW assertion (a functional it does not support) becomes a :class:`GpawMFTError`."""
    nsites = len(sites)
    J_qabp = np.zeros((len(q_all), nsites, nsites, len(radii)), complex)
    per_q = []
    try:
        if method == "isotropic":
            # local: optional heavy dependency (GPAW, extra "dft")
            from gpaw.response.chiks import ChiKSCalculator
            from gpaw.response.localft import LocalFTCalculator
            from gpaw.response.mft import IsotropicExchangeCalculator
            from gpaw.response.site_kernels import SphericalSiteKernels

            chiks = ChiKSCalculator(gs, context, ecut=ecut, nbands=nbands, gammacentered=True)
            localft = LocalFTCalculator.from_rshe_parameters(gs, context)
            iso = IsotropicExchangeCalculator(chiks, localft)
            kernels = SphericalSiteKernels(pos, np.array([[r] * nsites for r in radii]))
            for n in computed:
                tq = time.time()
                J_qabp[n] = iso(q_all[n], kernels)
                per_q.append(round(time.time() - tq, 1))
                log and log(f"[wannmag gpaw-mft] q = {np.round(q_all[n], 4).tolist()}: {per_q[-1]} s")
        else:
            # local: optional heavy dependency (GPAW, extra "dft")
            from gpaw.response.mft import HeisenbergExchangeCalculator
            from gpaw.response.site_data import AtomicSites

            asites = AtomicSites(indices=sites, radii=[list(radii) for _ in sites])
            hcalc = HeisenbergExchangeCalculator(gs, asites, context=context, nbands=nbands)
            for n in computed:
                tq = time.time()
                J_qabp[n] = hcalc(q_all[n]).array
                per_q.append(round(time.time() - tq, 1))
                log and log(f"[wannmag gpaw-mft] q = {np.round(q_all[n], 4).tolist()}: {per_q[-1]} s")
    except AssertionError as exc:
        raise GpawMFTError(f"{source}: GPAW's {method} MFT calculator refused this ground state (xc {xc['xc']}, "
                           f"{xc['xc_type']}: an assertion inside GPAW failed{': ' + str(exc) if str(exc) else ''}; "
                           "it supports LDA-type functionals only)") from None
    return J_qabp, per_q


def _shell_exchange(atoms, sites, spins, qmesh, q_all, J_qabp, radii, rcut: float, shells: int):
    """(bonds, J, shell_means, shell_distances, max_imag_meV): J(R) of every bond within ``rcut`` Å (internal
    convention, meV) for every radius, by Fourier transform over the q-mesh, and the means of the first ``shells``
    shells."""
    nsites = len(sites)
    Jint, shell_means, max_imag = [], [], 0.0
    blist = bonds_within(atoms.cell.array, atoms.positions, sites, qmesh, rcut)
    Rs = sorted({b[2] for b in blist})
    ridx = {R: k for k, R in enumerate(Rs)}
    for p in range(len(radii)):
        JR = real_space_exchange(J_qabp[..., p], q_all, Rs) if Rs else np.zeros((0, nsites, nsites))
        vals = []
        for a, b, R, d in blist:
            v = JR[ridx[R], a, b]
            max_imag = max(max_imag, 1000 * abs(v.imag))
            vals.append(float(GPAW_MFT.to_internal(v.real, spins[a], spins[b])))
        Jint.append(vals)
    dists = _shells([b[3] for b in blist])[:shells]
    for vals in Jint:
        shell_means.append([float(np.mean([v for v, b in zip(vals, blist) if abs(b[3] - d) <= 0.02]))
                            for d in dists])
    bonds = [[a, b, list(R), d] for a, b, R, d in blist]
    return bonds, Jint, shell_means, dists, max_imag


def gpaw_site_exchange(calc_or_gpw, radii, sites=None, spins=None, qmesh=None, q_points=None, ecut: float = 50.0,
                       nbands=None, rcut: float = 9.0, method: str = "isotropic", txt="-", log=print,
                       shells: int = 3) -> GpawMFTResult:
    """J_ij of GPAW's plane-wave force theorem on spherical sites of every radius in ``radii`` (Å).

    calc_or_gpw : GPAW calculator or a .gpw written with wave functions (``mode='all'``).
    sites : atom indices of the magnetic ions (default: the magnetic sites of the structures layer).
    spins : spin length S of each site (default: the structures layer's ion table; only for the conversion).
    qmesh : Γ-centred q-mesh (default: the ground state's k-mesh); J(R) by Fourier transform.  ``q_points``
        instead: only these q (no J(R); the cost measurement of a single q).
    ecut : plane-wave cutoff of χ_KS (eV); nbands : bands in the sum (default all converged bands of the .gpw).
    method : "isotropic" (IsotropicExchangeCalculator, Eq. (2) of the paper) or "heisenberg"
        (HeisenbergExchangeCalculator; LDA(+U) ground states only).
    """
    # local: optional heavy dependency (GPAW, extra "dft")
    from gpaw.response import ResponseContext, ResponseGroundStateAdapter

    t0 = time.time()
    if method not in ("isotropic", "heisenberg"):
        raise GpawMFTError(f"method must be 'isotropic' or 'heisenberg', got {method!r}")
    radii = [float(r) for r in np.atleast_1d(radii)]
    if not radii or min(radii) <= 0:
        raise GpawMFTError(f"site radii must be positive (Å), got {radii}")
    calc, source = _open_calculator(calc_or_gpw)
    atoms = calc.get_atoms()
    if calc.get_number_of_spins() != 2:
        raise GpawMFTError(f"{source}: not spin-polarised; the force theorem needs a magnetic ground state")
    sites, spins = _sites_and_spins(atoms, sites, spins)
    gs = ResponseGroundStateAdapter(calc)
    xc = xc_support(gs)
    valid = valid_radius_range(gs, sites)
    t_load = time.time() - t0

    context = ResponseContext(txt=txt)
    kmesh = tuple(int(x) for x in calc.wfs.kd.N_c)
    qmesh, q_all, computed, mirror = _q_sampling(kmesh, qmesh, q_points, source)
    t1 = time.time()
    J_qabp, per_q = _exchange_at_q(method, gs, context, atoms.positions[sites], sites, radii, q_all, computed, ecut,
                                   nbands, xc, source, log)
    for n, m in enumerate(mirror):
        if m is not None and m < 0:
            J_qabp[n] = np.conj(J_qabp[-1 - m])
    moments = [float(x) for x in calc.get_magnetic_moments()[sites]]
    signs = np.array([1.0 if m >= 0 else -1.0 for m in moments])
    if method == "isotropic":
        # Eq. (2) uses the signed W_xc^z instead of B^xc = −|W_xc^z|: for antiparallel sites the two differ by
        # sign(m_a m_b) (GPAW's docstring); restore Eq. (1) (the heisenberg calculator uses |W_xc^z| already)
        J_qabp *= (signs[:, None] * signs[None, :])[None, :, :, None]
    t_q = time.time() - t1

    bonds, Jint, shell_means, dists, max_imag = [], [], [], [], 0.0
    if q_points is None:
        bonds, Jint, shell_means, dists, max_imag = _shell_exchange(atoms, sites, spins, qmesh, q_all, J_qabp, radii,
                                                                    rcut, shells)
    res = GpawMFTResult(
        method=method, radii=radii, sites=sites, spins=spins, bonds=bonds, J=Jint, shells=shell_means,
        shell_distances=dists, q_points=np.round(q_all, 10).tolist(),
        J_q_eV={"real": J_qabp.real.tolist(), "imag": J_qabp.imag.tolist()}, max_imag_meV=max_imag, xc=xc,
        settings={"source": source, "ecut_chiks_eV": ecut, "nbands": nbands, "kmesh": list(kmesh),
                  "qmesh": list(qmesh) if q_points is None else None, "n_q_computed": len(computed),
                  "rcut_A": rcut, "convention": "meV; H = sum_{i<j} J S_i.S_j, each bond once, |S| = S, J > 0 AF; "
                  "converted from GPAW's E = -sum_pairs J u_i.u_j (eV, unit vectors) by J = -1000 J_GPAW/(S_i S_j)"},
        seconds={"load": round(t_load, 1), "q_points": round(t_q, 1), "per_q": per_q,
                 "total": round(time.time() - t0, 1)},
        site_moments=moments, valid_radii=valid)
    if shell_means:
        res.plateau = valid_plateaus(radii, shell_means, valid)
    return res


def valid_radius_range(gs, sites) -> list:
    """[r_min, r_max] (Å) of site radii GPAW considers valid for every site in ``sites`` (the largest lower and the
    smallest upper bound of gpaw.response.site_data.get_site_radii_range)."""
    from gpaw.response.site_data import get_site_radii_range  # local: optional heavy dependency (GPAW, extra "dft")

    rmin, rmax = get_site_radii_range(gs)
    return [float(max(rmin[a] for a in sites)), float(min(rmax[a] for a in sites))]


def valid_plateaus(radii, shell_means, valid=None) -> dict:
    """{"J1": plateau, ...} of the shell means over the radii inside ``valid`` = [r_min, r_max] (all radii if not
    given); a shell whose valid radii do not give a plateau (or fewer than two valid radii) maps to None."""
    keep = [n for n, r in enumerate(radii) if not valid or valid[0] <= r <= valid[1]]
    nsh = len(shell_means[0]) if shell_means else 0
    return {f"J{k + 1}": plateau([radii[n] for n in keep], [shell_means[n][k] for n in keep]) if len(keep) >= 2
            else None for k in range(nsh)}
