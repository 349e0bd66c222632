"""Anisotropic spin-model parameters from total energies: four-state method, single-ion scheme, XXZ and Kitaev–Γ.

Energies come from any engine through a callable

    energy(directions) -> float      # meV, total energy of the whole supercell

where ``directions`` is an (N, 3) array of unit vectors, one per magnetic site of the supercell, in the site order
of ``SpinModel.supercell(P)`` of the template model (:func:`supercell_sites` lists positions and elements so that
a DFT driver can map them onto its atoms; a non-collinear + SOC DFT run per call is the intended production use,
:func:`model_energy_function` is the exact synthetic engine used by the tests).

Conventions (internal, as :mod:`wannmag.magnetism.spinmodel`): H = Σ_{bonds once} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i,
classical spins of length S, J > 0 antiferromagnetic, meV; Cartesian components unless a frame is named.

Four-state method (Xiang, Kan, Whangbo et al., Phys. Rev. B 84, 224429 (2011); Dalton Trans. 42, 823 (2013))
--------------------------------------------------------------------------------------------------------------
For a bond (i, j) and Cartesian components α, β, all spins but i and j are held along a third axis γ (γ ≠ α, β;
γ = the next axis for α = β) with a fixed up/down ``background`` pattern, and four energies are computed with
(S_i^α, S_j^β) = (+S_i, +S_j), (+, −), (−, +), (−, −) (spin i along ±α, spin j along ±β):

    J^{αβ}_ij = (E₁ + E₄ − E₂ − E₃) / (4 S_i S_j).

Every term that does not couple i to j cancels in this combination: the single-ion energies (even in ±S), the
couplings of i or j to the background (odd in S_i or S_j alone), everything else (constant).  What remains is
Σ_images S_i·J_{i,j'}·S_j' over *all periodic images j' of j in the supercell*: the supercell must be large enough
that i couples to one image of j only (true for a 3×3 honeycomb supercell and bonds up to the third shell).  Nine
(α, β) pairs × 4 energies give the full tensor, symmetric part, DMI (D_x = (J_yz − J_zy)/2, cyclic) included.

Single-ion anisotropy (one spin rotated, all others fixed)
----------------------------------------------------------
Spin i is put along ±n while every other spin stays along a fixed background axis b (default ẑ, with the
``background`` pattern).  Then E(±n) = S_i² n·A_i·n ± S_i n·h_i + const (h_i = the exchange field of the fixed
spins), so Ē(n) = [E(n) + E(−n)]/2 = S_i² n·A_i·n + const.  With n = x, y, z, (x+y)/√2, (x+z)/√2, (y+z)/√2:

    A_αα − A_ββ = [Ē(α) − Ē(β)]/S_i²,      A_αβ = [Ē((α+β)/√2) − (Ē(α) + Ē(β))/2] / S_i².

Only the traceless part of A is defined (S_i·S_i = S_i² is fixed); we return it.  The bond from i to its own
periodic images rotates with i and would add its symmetric anisotropy to A: again the supercell must be large
enough that a site does not couple to its own images.  12 energies per site.

Exchange anisotropy
-------------------
* XXZ (global frame, z = layer normal): for a C3-symmetric layer the three bonds of one shell average to
  J_xx = J_yy = J_⊥, J_zz; λ = J_zz − J_⊥ ( < 0 favours spins out of plane for a FM bond: the collinear FM energy
  per bond is S²(J_⊥ + λ n_z²)).  :func:`xxz_parameters` reports J_xx, J_yy, J_zz of one bond and of its C3 average.
* Kitaev–Γ–Γ′ in the local cubic frame of an edge-sharing bond (Rau, Lee & Kee, PRL 112, 077204 (2014) for J, K,
  Γ; Γ′ as in Rau & Kee, arXiv:1408.4811): on a "γ bond"

      S_i·J·S_j = J S_i·S_j + K S_i^γ S_j^γ + Γ (S_i^α S_j^β + S_i^β S_j^α)
                  + Γ′ (S_i^α S_j^γ + S_i^γ S_j^α + S_i^β S_j^γ + S_i^γ S_j^β)    (+ DMI, + residual).

  The frame (:func:`kitaev_frame`): α̂, β̂ along the metal→ligand directions M_i→X₁, M_i→X₂ of the two bridging
  ligands, each with the sign that makes its projection on the layer normal c positive (so the same pair of axes
  is found from either metal), symmetrically orthonormalised (α̂, β̂ = (e₊ ± e₋)/√2 with e± ∝ x₀ ± y₀); γ̂ ⟂ α̂, β̂
  with γ̂·c > 0, and α̂ ↔ β̂ swapped if needed to keep the frame right-handed (the form above is symmetric under
  α ↔ β).  For ideal octahedra this is the global cubic frame x̂, ŷ, ẑ with [111] ∥ c used throughout the Kitaev
  literature.  Then with J^c = F J Fᵀ (F rows = α̂, β̂, γ̂) and its symmetric part J^s:
  J = (J^s_αα + J^s_ββ)/2, K = J^s_γγ − J, Γ = J^s_αβ, Γ′ = (J^s_αγ + J^s_βγ)/2; ``residual`` = the largest of
  |J^s_αα − J^s_ββ|/2 and |J^s_αγ − J^s_βγ|/2 (zero when the bond has its C2h symmetry).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...errors import WannmagError
from ...structures import find_magnetic_sites
from ...structures.magnetic import MagneticSublattice
from ...structures.paths import coordination
from ..spinmodel import SpinModel
from .dipolar import match_sites

__all__ = ["FourStateError", "four_state_exchange", "four_state_single_ion", "model_energy_function",
           "supercell_sites", "site_index", "kitaev_frame", "model_bond_frames", "kitaev_parameters", "kitaev_tensor",
           "xxz_parameters", "c3_average", "BondAnisotropy", "extract_anisotropic_model", "n_energies"]

_AX = np.eye(3)


class FourStateError(WannmagError):
    """Bad input to the four-state / single-ion mapping."""


def _check_energy(E, what):
    try:
        E = float(E)
    except (TypeError, ValueError):
        raise FourStateError(f"energy callable returned {E!r} for {what}; it must return a number in meV") from None
    if not np.isfinite(E):
        raise FourStateError(f"energy callable returned {E} for {what}")
    return E


def _background(n_sites, background):
    if background is None:
        return np.ones(n_sites)
    b = np.asarray(background, float)
    if b.shape != (n_sites,) or not np.all(np.abs(b) == 1):
        raise FourStateError(f"background pattern must hold {n_sites} values ±1")
    return b


def four_state_exchange(energy, n_sites: int, i: int, j: int, S_i: float, S_j: float, background=None,
                        components=None) -> np.ndarray:
    """Exchange tensor J_ij (3×3, meV, internal convention, Cartesian) by the four-state method (module
    docstring).  ``background``: ±1 per supercell site for the spins held along the third axis (default all +1);
    ``components``: iterable of (α, β) to compute (default all nine; the others are left 0)."""
    if i == j or not (0 <= i < n_sites and 0 <= j < n_sites):
        raise FourStateError(f"four-state method needs two different sites in 0..{n_sites - 1}, got {i}, {j}")
    sigma = _background(n_sites, background)
    J = np.zeros((3, 3))
    for a, b in (components or [(a, b) for a in range(3) for b in range(3)]):
        g = next(k for k in range(3) if k != a and k != b) if a != b else (a + 1) % 3
        base = sigma[:, None] * _AX[g][None, :]
        E = {}
        for si in (1, -1):
            for sj in (1, -1):
                d = base.copy()
                d[i] = si * _AX[a]
                d[j] = sj * _AX[b]
                E[si, sj] = _check_energy(energy(d), f"sites {i}, {j}, components {'xyz'[a]}{'xyz'[b]}")
        J[a, b] = (E[1, 1] + E[-1, -1] - E[1, -1] - E[-1, 1]) / (4.0 * S_i * S_j)
    return J


_SIA_DIRS = {"x": _AX[0], "y": _AX[1], "z": _AX[2], "xy": (_AX[0] + _AX[1]) / np.sqrt(2),
             "xz": (_AX[0] + _AX[2]) / np.sqrt(2), "yz": (_AX[1] + _AX[2]) / np.sqrt(2)}


def four_state_single_ion(energy, n_sites: int, i: int, S_i: float, background=None,
                          background_axis=(0.0, 0.0, 1.0)) -> np.ndarray:
    """Traceless single-ion tensor A_i (3×3, meV, H = S_i·A_i·S_i) by rotating spin i alone (module docstring)."""
    if not 0 <= i < n_sites:
        raise FourStateError(f"site {i} outside 0..{n_sites - 1}")
    sigma = _background(n_sites, background)
    b = np.asarray(background_axis, float)
    if b.shape != (3,) or np.linalg.norm(b) < 1e-12:
        raise FourStateError("background_axis must be a non-zero 3-vector")
    base = sigma[:, None] * (b / np.linalg.norm(b))[None, :]
    Ebar = {}
    for name, n in _SIA_DIRS.items():
        e = 0.0
        for s in (1, -1):
            d = base.copy()
            d[i] = s * n
            e += _check_energy(energy(d), f"site {i} along {'+' if s > 0 else '-'}{name}") / 2.0
        Ebar[name] = e / S_i ** 2
    M = np.diag([Ebar["x"], Ebar["y"], Ebar["z"]])
    for (p, q), name in (((0, 1), "xy"), ((0, 2), "xz"), ((1, 2), "yz")):
        M[p, q] = M[q, p] = Ebar[name] - (Ebar["xyz"[p]] + Ebar["xyz"[q]]) / 2.0
    return M - np.trace(M) / 3.0 * np.eye(3)


def n_energies(n_bonds: int, n_sites: int, single_ion: bool = True) -> int:
    """Number of energy evaluations of :func:`extract_anisotropic_model`: 36 per bond, 12 per site."""
    return 36 * n_bonds + (12 * n_sites if single_ion else 0)


# --------------------------------------------------------------------------------------------------------------
# supercells
# --------------------------------------------------------------------------------------------------------------

def supercell_sites(template, supercell) -> list[dict]:
    """Sites of ``template.supercell(P)`` in the order the energy callable receives them: element, Cartesian
    position (Å) and the unit-cell site each one copies."""
    big, parent = template.supercell(supercell)
    return [{"index": k, "element": s.element, "position": s.position.tolist(), "unit_site": int(parent[k])}
            for k, s in enumerate(big.sites)]


def site_index(big, position, tol: float = 1e-4) -> int:
    """Index of the site of the supercell model ``big`` at ``position`` (modulo the supercell's in-plane lattice)."""
    inv = np.linalg.inv(big.cell)
    pos = np.array([s.position for s in big.sites])
    d = (pos - np.asarray(position, float)) @ inv
    periodic = np.array(big.pbc, bool)
    d[:, periodic] -= np.round(d[:, periodic])
    dist = np.linalg.norm(d @ big.cell, axis=1)
    k = int(np.argmin(dist))
    if dist[k] > tol:
        raise FourStateError(f"no supercell site at {np.round(position, 3).tolist()}")
    return k


def model_energy_function(model, supercell=(1, 1, 1)):
    """Exact classical energy engine of ``model`` on ``supercell``: returns (energy(directions) -> meV per
    supercell, supercell model).  Directions are unit vectors scaled by each site's S."""
    big, _ = model.supercell(supercell)
    S = big.spins

    def energy(directions):
        d = np.asarray(directions, float).reshape(big.n_sites, 3)
        return big.energy(d * S[:, None])

    return energy, big


# --------------------------------------------------------------------------------------------------------------
# frames and decompositions
# --------------------------------------------------------------------------------------------------------------

def _layer_normal(cell):
    n = np.cross(cell[0], cell[1])
    return n / np.linalg.norm(n)


def kitaev_frame(sublattice, i: int, j: int, R, normal=None) -> np.ndarray:
    """Local cubic frame (rows α̂, β̂, γ̂) of the edge-sharing bond (i, j, R) of ``sublattice`` (a
    ``MagneticSublattice`` with its ligands, or a structure accepted by ``find_magnetic_sites``), built from the
    two bridging ligands as described in the module docstring.  ``normal`` defaults to a1 × a2."""
    sub = sublattice if isinstance(sublattice, MagneticSublattice) else find_magnetic_sites(sublattice)
    c = _layer_normal(sub.atoms.cell.array) if normal is None else np.asarray(normal, float) / np.linalg.norm(normal)
    coord = coordination(sub)
    R = tuple(int(x) for x in R)
    lig_i = {(L.index, L.R): v for L, v in coord[i]}
    lig_j = {(L.index, tuple(int(a + b) for a, b in zip(L.R, R))): v for L, v in coord[j]}
    shared = sorted(set(lig_i) & set(lig_j))
    if len(shared) != 2:
        raise FourStateError(f"bond ({i}, {j}, {list(R)}) has {len(shared)} bridging ligand(s); the Kitaev frame "
                             "needs an edge-sharing bond (two)")
    u = [lig_i[k] / np.linalg.norm(lig_i[k]) for k in shared]
    proj = [float(v @ c) for v in u]
    if min(abs(p) for p in proj) < 1e-3:
        raise FourStateError(f"bond ({i}, {j}, {list(R)}): a bridging ligand lies in the layer plane; no cubic frame")
    x0, y0 = (v * np.sign(p) for v, p in zip(u, proj))
    ep = (x0 + y0) / np.linalg.norm(x0 + y0)
    em = (x0 - y0) / np.linalg.norm(x0 - y0)
    a, b = (ep + em) / np.sqrt(2), (ep - em) / np.sqrt(2)
    g = np.cross(a, b)
    if g @ c < 0:
        a, b = b, a
        g = -g
    return np.array([a, b, g])


def model_bond_frames(model, structure, bonds) -> list[np.ndarray]:
    """Cubic frames (:func:`kitaev_frame`) of ``bonds`` (``Bond`` objects of the SpinModel ``model``), whose sites
    are the magnetic sites of ``structure`` (any structure accepted by ``find_magnetic_sites``, or a
    ``MagneticSublattice`` with its ligands) in any order and cell translation: sites and bonds are matched by
    position.  Raises a ``WannmagError`` if a site has no partner or a bond is not edge-sharing."""
    sub = structure if isinstance(structure, MagneticSublattice) else find_magnetic_sites(structure)
    inv = np.linalg.inv(sub.atoms.cell.array)
    m = match_sites([s.position for s in model.sites], sub.positions, sub.atoms.cell.array)
    frames = []
    for b in bonds:
        i, j = int(m[b.i]), int(m[b.j])
        # lattice shift: position of j + R in the model's cell vs the sublattice's site j
        target = model.sites[b.j].position + np.array(b.R) @ model.cell
        shift = np.round((target - sub.positions[j]) @ inv).astype(int)
        base = np.round((model.sites[b.i].position - sub.positions[i]) @ inv).astype(int)
        frames.append(kitaev_frame(sub, i, j, tuple(int(x) for x in shift - base)))
    return frames


@dataclass
class BondAnisotropy:
    """Decomposition of one exchange tensor (meV, internal convention)."""

    J_tensor: np.ndarray
    J_iso: float
    dmi: np.ndarray
    xxz: dict
    kitaev: dict | None = None
    bond: tuple | None = None
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"bond": list(self.bond) if self.bond else None, "J_tensor_meV": self.J_tensor.tolist(),
                "J_iso_meV": self.J_iso, "D_meV": self.dmi.tolist(), "xxz": self.xxz, "kitaev": self.kitaev}

    @classmethod
    def from_dict(cls, d: dict) -> "BondAnisotropy":
        """Inverse of :meth:`as_dict` (meV); ``extra`` is not stored (empty)."""
        bond = d.get("bond")
        if bond is not None:
            bond = tuple(tuple(x) if isinstance(x, list) else x for x in bond)
        return cls(J_tensor=np.asarray(d["J_tensor_meV"], float), J_iso=d["J_iso_meV"],
                   dmi=np.asarray(d["D_meV"], float), xxz=d["xxz"], kitaev=d.get("kitaev"), bond=bond)


def kitaev_parameters(J, frame) -> dict:
    """J, K, Γ, Γ′ (meV) of tensor ``J`` (Cartesian) in the cubic ``frame`` (rows α̂, β̂, γ̂), plus the DMI vector
    in that frame and the residual that the J–K–Γ–Γ′ form does not describe (module docstring)."""
    F = np.asarray(frame, float)
    Jc = F @ np.asarray(J, float) @ F.T
    Js = 0.5 * (Jc + Jc.T)
    Jh = 0.5 * (Js[0, 0] + Js[1, 1])
    A = 0.5 * (Jc - Jc.T)
    return {"J": float(Jh), "K": float(Js[2, 2] - Jh), "Gamma": float(Js[0, 1]),
            "Gamma_prime": float(0.5 * (Js[0, 2] + Js[1, 2])),
            "D_local": [float(A[1, 2]), float(A[2, 0]), float(A[0, 1])],
            "residual": float(max(abs(Js[0, 0] - Js[1, 1]), abs(Js[0, 2] - Js[1, 2])) / 2.0)}


def kitaev_tensor(J, K, Gamma, Gamma_prime, frame) -> np.ndarray:
    """Cartesian 3×3 tensor of the J–K–Γ–Γ′ bond Hamiltonian in the cubic ``frame`` (inverse of
    :func:`kitaev_parameters` for a bond without DMI)."""
    Jc = J * np.eye(3)
    Jc[2, 2] += K
    Jc[0, 1] = Jc[1, 0] = Gamma
    Jc[0, 2] = Jc[2, 0] = Jc[1, 2] = Jc[2, 1] = Gamma_prime
    F = np.asarray(frame, float)
    return F.T @ Jc @ F


def _rot(axis, angle):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    K = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * K + (1 - np.cos(angle)) * K @ K


def c3_average(J, normal=(0.0, 0.0, 1.0)) -> np.ndarray:
    """Average of R J Rᵀ over the three-fold rotations about ``normal``: the XXZ tensor of a C3-symmetric shell."""
    return sum(_rot(normal, 2 * np.pi * k / 3) @ np.asarray(J, float) @ _rot(normal, 2 * np.pi * k / 3).T
               for k in range(3)) / 3.0


def xxz_parameters(J, normal=(0.0, 0.0, 1.0)) -> dict:
    """J_xx, J_yy, J_zz of one bond in the layer frame (z ∥ normal, x ∥ the first in-plane Cartesian direction
    orthogonal to it) and the XXZ parameters of its C3 average: J_perp = (J_xx + J_yy)/2, J_zz, λ = J_zz − J_perp."""
    c = np.asarray(normal, float) / np.linalg.norm(normal)
    x = np.array([1.0, 0, 0]) - c[0] * c
    if np.linalg.norm(x) < 1e-6:
        x = np.array([0, 1.0, 0]) - c[1] * c
    x /= np.linalg.norm(x)
    F = np.array([x, np.cross(c, x), c])
    Js = 0.5 * (np.asarray(J, float) + np.asarray(J, float).T)
    Jl = F @ Js @ F.T
    Jav = F @ c3_average(Js, c) @ F.T
    perp = 0.5 * (Jav[0, 0] + Jav[1, 1])
    return {"J_xx": float(Jl[0, 0]), "J_yy": float(Jl[1, 1]), "J_zz": float(Jl[2, 2]), "J_perp": float(perp),
            "lambda": float(Jav[2, 2] - perp)}


def decompose(J, normal=(0.0, 0.0, 1.0), frame=None, bond=None) -> BondAnisotropy:
    """Isotropic part, DMI, XXZ and (with a cubic ``frame``) Kitaev–Γ–Γ′ parameters of one bond tensor."""
    J = np.asarray(J, float)
    A = 0.5 * (J - J.T)
    return BondAnisotropy(J_tensor=J, J_iso=float(np.trace(J) / 3), dmi=np.array([A[1, 2], A[2, 0], A[0, 1]]),
                          xxz=xxz_parameters(J, normal), kitaev=kitaev_parameters(J, frame) if frame is not None else None,
                          bond=bond)


# --------------------------------------------------------------------------------------------------------------
# whole model
# --------------------------------------------------------------------------------------------------------------

def extract_anisotropic_model(energy, template, supercell, bonds=None, single_ion: bool = True, background=None,
                              progress=None):
    """A SpinModel with full 3×3 exchange tensors for ``bonds`` and single-ion tensors for every site of
    ``template`` (a unit-cell SpinModel), from the energies of the callable ``energy`` on ``supercell``.

    ``bonds``: list of (i, j, R) of the unit cell (default: the bonds of ``template``).  ``background``: ±1 per
    supercell site (default all +1).  The energy callable is evaluated 36× per bond and 12× per site
    (:func:`n_energies`); ``progress`` (callable) receives one line per bond/site.
    """
    big, _ = template.supercell(supercell)
    if bonds is None:
        bonds = [(b.i, b.j, b.R) for b in template.bonds]
    if not bonds and not single_ion:
        raise FourStateError("nothing to extract: no bonds and single_ion=False")
    out = SpinModel(cell=template.cell.copy(), sites=list(template.sites), pbc=template.pbc,
                    meta=dict(template.meta, method="four-state", supercell=np.asarray(supercell).tolist()))
    for (i, j, R) in bonds:
        ii = site_index(big, template.sites[i].position)
        jj = site_index(big, template.sites[j].position + np.array(R) @ template.cell)
        if ii == jj:
            raise FourStateError(f"bond ({i}, {j}, {list(R)}) maps onto one site of the supercell: use a larger one")
        J = four_state_exchange(energy, big.n_sites, ii, jj, big.sites[ii].spin, big.sites[jj].spin, background)
        out.add_bond(i, j, R, J)
        if progress:
            progress(f"bond ({i}, {j}, {list(R)}): J_iso = {np.trace(J) / 3:+.4f} meV")
    if single_ion:
        for i, s in enumerate(template.sites):
            ii = site_index(big, s.position)
            out.single_ion[i] = four_state_single_ion(energy, big.n_sites, ii, s.spin, background)
            if progress:
                progress(f"site {i}: A_zz − (A_xx + A_yy)/2 = "
                         f"{out.single_ion[i][2, 2] - 0.5 * (out.single_ion[i][0, 0] + out.single_ion[i][1, 1]):+.4f} meV")
    return out
