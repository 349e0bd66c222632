"""Non-perturbative exchange channels: the magnetic force theorem (LKAG Green's functions) on the spin-polarised
MLWF Hamiltonian, resolved into t2g–t2g, t2g–eg and eg–eg contributions of each bond in the local octahedral
frames of the two metals.

Why: the channel formulas of :mod:`.analysis` expand in t_pd/Δ and t/U.  For charge-transfer bonds such as the
90° Cr–I–Cr bond of CrI3 (max |t_pd|/Δ ≈ 2.8 on the shipped Wannier model) the expansion does not converge and
its channel sums are not quantitative.  The Green's function G = (ω − H)⁻¹ of the whole d + p Hamiltonian contains
every ligand path to all orders, coherently, so its orbital decomposition of J_ij = Σ_{m∈i, m'∈j} J_ij^{mm'}
(Liechtenstein–Katsnelson–Antropov–Gubanov; TB2J's orbital decomposition) is the non-perturbative counterpart of the
t2g–p–t2g (AF) and t2g–p–eg (FM) channels.  It needs the two spin channels (seed_up/seed_dn), not the
spin-averaged model, and it is a linear-response (small rotation) quantity around the collinear reference state.

Internal convention: H = Σ_{i<j} J_ij S_i·S_j, each bond once, |S| = S, J > 0 antiferromagnetic, meV
(converted from the LKAG/TB2J numbers, E = −Σ_{i≠j} J e_i·e_j, by J = −2 J_TB2J/(S_i S_j)).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...tightbinding.electronic import midgap_fermi_level
from ...tightbinding.localframe import local_frames, metal_atoms
from ..mft import hamiltonian_from_tb, lkag_exchange
from .formulas import SuperexchangeError

__all__ = ["GreenChannels", "green_channels"]

T2G, EG = [1, 2, 4], [0, 3]  # Wannier90 d order dz2, dxz, dyz, dx2-y2, dxy in the local octahedral frame


@dataclass
class GreenChannels:
    """Channel decomposition of one bond (meV, internal convention; the channels sum to J)."""

    i: int
    j: int
    R: tuple
    distance: float
    J: float
    channels: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"i": self.i, "j": self.j, "R": list(self.R), "distance": self.distance, "J_meV": self.J,
                "channels_meV": dict(self.channels)}

    @classmethod
    def from_dict(cls, d: dict) -> "GreenChannels":
        """Inverse of :meth:`as_dict` (Å, meV)."""
        return cls(i=int(d["i"]), j=int(d["j"]), R=tuple(int(x) for x in d["R"]), distance=d["distance"],
                   J=d["J_meV"], channels=dict(d["channels_meV"]))


def green_channels(model, shells=(1,), kmesh=(9, 9, 1), efermi: float | None = None,
                   n_electrons: float | None = None, n_energy: int = 120, magnetic=None) -> list[GreenChannels]:
    """t2g–t2g / t2g–eg / eg–eg exchange of every bond of the given neighbour ``shells`` (1 = nearest) of a
    collinear MLWF model (:class:`~wannmag.tightbinding.CollinearTBModel` with metal d orbitals), from the
    orbital-resolved force theorem in the local octahedral frames.  E_F: given, or from ``n_electrons``, or in mid-gap
    of the model's own occupation (.win fermi_energy / nominal count).  ``magnetic``: element symbols of the metal
    atoms (default: the atoms with d orbitals).  Internal convention (module docstring)."""
    if not hasattr(model, "up") or not hasattr(model, "down"):
        raise SuperexchangeError(f"{getattr(model, 'name', 'model')}: the Green's-function channels need both spin "
                                 "channels (seed_up/seed_dn Wannier files), not a spin-averaged model")
    metals = None if magnetic is None else metal_atoms(model, magnetic)
    ham = hamiltonian_from_tb(model, magnetic=metals)
    frames = local_frames(model.up, metals=metals)
    missing = [a for a in ham.magnetic if a not in frames]
    if missing:
        raise SuperexchangeError(f"{model.name}: no octahedral frame for metal atom(s) {missing} (no ligand cage "
                                 "found); the t2g/eg split is undefined")
    rotations = {k: frames[a].d_matrix().T for k, a in enumerate(ham.magnetic)}
    if efermi is None and n_electrons is None:
        efermi, _ = midgap_fermi_level(model)
    # shells by distance among all metal pairs up to the farthest requested shell
    probe = lkag_exchange(ham, kmesh=kmesh, efermi=efermi, n_energy=8, rcut=12.0)  # the bond list only
    dists = np.unique(np.round(probe.distances, 3))
    if max(shells) > len(dists):
        raise SuperexchangeError(f"{model.name}: only {len(dists)} neighbour shell(s) within 12 Å")
    keep = [b for b, d in zip(probe.bonds, probe.distances) if any(abs(d - dists[s - 1]) < 2e-3 for s in shells)]
    res = lkag_exchange(ham, bonds=keep, kmesh=kmesh, efermi=efermi, n_electrons=n_electrons, n_energy=n_energy,
                        rotations=rotations)
    out = []
    for (a, b, R), d, J, jl, mat in zip(res.bonds, res.distances, res.J, res.J_lkag, res.orbital):
        factor = -2.0 / (ham.spins[a] * ham.spins[b])  # TB2J → internal, as for J itself
        blk = {"t2g–t2g": float(mat[np.ix_(T2G, T2G)].sum()),
               "t2g–eg": float(mat[np.ix_(T2G, EG)].sum() + mat[np.ix_(EG, T2G)].sum()),
               "eg–eg": float(mat[np.ix_(EG, EG)].sum())}
        out.append(GreenChannels(int(a), int(b), tuple(int(x) for x in R), float(d), float(J),
                                 {k: float(factor * v) for k, v in blk.items()}))
    return out
