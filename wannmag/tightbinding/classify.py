"""Zaanen–Sawatzky–Allen classification of a transition-metal compound from its d–p tight-binding model.

ZSA (Phys. Rev. Lett. 55, 418 (1985)): with the on-site Coulomb repulsion U of the d shell and the charge-transfer
energy Δ = ε_d − ε_p (the cost of moving a ligand p electron to the metal, d^n → d^{n+1}L̲),

* Δ > U: **Mott–Hubbard** insulator — the gap is d–d (lower → upper Hubbard band), the valence-band top is d-like;
* Δ < U: **charge-transfer** insulator — the gap is p→d, the valence-band top is ligand-p-like.

Δ is taken from the on-site energies of the (spin-averaged) Wannier model: the mean d level of the metals minus
the mean p level of their coordinating ligands (eV).  The orbital character of the gap edges of the model's
bands (spin-polarised if the model is) is reported alongside as a consistency check: a VBM with more ligand-p than
metal-d weight supports the charge-transfer call.  U is an input (default 3 eV).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .electronic import BandEdges, band_edges, edge_character, kmesh
from .localframe import local_frames
from .model import CollinearTBModel, TBError

__all__ = ["ZSAClassification", "classify_zsa", "charge_transfer_energy"]

CT = "charge-transfer"
MH = "Mott–Hubbard"


def charge_transfer_energy(model, metals=None) -> tuple[float, float, float, dict]:
    """(Δ, ε_d, ε_p, details): mean metal-d on-site level minus mean on-site level of the p orbitals of the
    ligands coordinating the metals (spin-averaged model), eV.  Ligands: the six octahedral ligands when the
    metals are octahedrally coordinated, otherwise the p atoms within 1.2× the shortest metal–p-atom distance.
    ``metals``: atom indices of the metals (default: every atom with d orbitals)."""
    m = model.spin_averaged() if isinstance(model, CollinearTBModel) else model
    d_idx = [i for i, o in enumerate(m.orbitals) if o.l == 2 and (metals is None or o.atom in metals)]
    if not d_idx:
        raise TBError(f"{m.name}: no d orbitals{' on the named metals' if metals is not None else ''}; "
                      "Δ = ε_d − ε_p is undefined")
    metals = sorted({m.orbitals[i].atom for i in d_idx})
    p_atoms = sorted({o.atom for o in m.orbitals if o.l == 1} - set(metals))
    if not p_atoms:
        raise TBError(f"{m.name}: no ligand p orbitals; Δ = ε_d − ε_p is undefined (d-only model)")
    ligands: set[int] = set()
    how = "octahedral ligands"
    try:
        for f in local_frames(m, metals=metals).values():
            ligands.update(a for a, _ in f.ligands)
    except TBError:
        how = "nearest p atoms"
        if m.atoms is None:
            ligands = set(p_atoms)
        else:
            dist = np.array([[m.atoms.get_distance(a, b, mic=True) for b in p_atoms] for a in metals])
            dmin = dist.min()
            ligands = {p_atoms[j] for j in np.nonzero((dist <= 1.2 * dmin).any(axis=0))[0]}
    ligands &= set(p_atoms)
    e = m.onsite_energies()
    eps_d = float(np.mean(e[d_idx]))
    p_idx = [i for i, o in enumerate(m.orbitals) if o.l == 1 and o.atom in ligands]
    eps_p = float(np.mean(e[p_idx]))
    elements = sorted({m.orbitals[i].element for i in p_idx})
    return eps_d - eps_p, eps_d, eps_p, {"ligand_atoms": sorted(ligands), "ligand_elements": elements,
                                         "ligands_from": how}


@dataclass
class ZSAClassification:
    """Result of :func:`classify_zsa` (energies in eV)."""

    regime: str
    delta: float
    U: float
    eps_d: float
    eps_p: float
    edges: BandEdges | None = None
    vbm_character: dict = field(default_factory=dict)
    cbm_character: dict = field(default_factory=dict)
    band_regime: str | None = None
    ligand_elements: list = field(default_factory=list)
    delta_by_spin: dict = field(default_factory=dict)

    @property
    def consistent(self) -> bool | None:
        return None if self.band_regime is None else self.band_regime == self.regime

    def text(self) -> str:
        lig = "/".join(self.ligand_elements) or "ligand"
        lines = [f"ZSA classification: {self.regime} "
                 f"(Δ = ε_d − ε_p = {self.eps_d:.3f} − ({self.eps_p:.3f}) = {self.delta:.3f} eV "
                 f"{'<' if self.delta < self.U else '>'} U = {self.U:.3f} eV)"]
        for s, v in self.delta_by_spin.items():
            lines.append(f"  Δ({s}) = {v:.3f} eV")
        if self.edges is not None:
            e = self.edges
            lines.append(f"  gap {e.gap:.3f} eV (VBM {e.vbm:.3f}, CBM {e.cbm:.3f} eV; occupation from {e.source})"
                         if e.insulating else f"  no gap in the model bands (metallic at this occupation; "
                                              f"E_F = {e.fermi_energy:.3f} eV)")
        if self.vbm_character:
            v, c = self.vbm_character, self.cbm_character
            lines.append(f"  VBM character: d {v.get('d', 0):.2f}, p {v.get('p', 0):.2f}   "
                         f"CBM character: d {c.get('d', 0):.2f}, p {c.get('p', 0):.2f}")
            lines.append(f"  band-edge evidence: {self.band_regime} ({'consistent' if self.consistent else 'NOT consistent'}"
                         f" with the Δ/U call; a {lig}-p VBM indicates charge transfer)")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        r = lambda x: None if x is None else round(float(x), 6)  # noqa: E731
        return {"regime": self.regime, "delta": r(self.delta), "U": r(self.U), "eps_d": r(self.eps_d),
                "eps_p": r(self.eps_p), "delta_by_spin": {k: r(v) for k, v in self.delta_by_spin.items()},
                "edges": None if self.edges is None else self.edges.as_dict(),
                "vbm_character": self.vbm_character, "cbm_character": self.cbm_character,
                "band_regime": self.band_regime, "consistent": self.consistent,
                "ligand_elements": self.ligand_elements}

    @classmethod
    def from_dict(cls, d: dict) -> "ZSAClassification":
        """Inverse of :meth:`as_dict` (energies as stored, rounded to 1e-6 eV; ``consistent`` follows from the
        regimes)."""
        return cls(regime=d["regime"], delta=d["delta"], U=d["U"], eps_d=d["eps_d"], eps_p=d["eps_p"],
                   edges=None if d.get("edges") is None else BandEdges.from_dict(d["edges"]),
                   vbm_character=dict(d.get("vbm_character") or {}), cbm_character=dict(d.get("cbm_character") or {}),
                   band_regime=d.get("band_regime"), ligand_elements=list(d.get("ligand_elements") or []),
                   delta_by_spin=dict(d.get("delta_by_spin") or {}))


def classify_zsa(model, U: float = 3.0, n_electrons=None, fermi_energy: float | None = None, k=None, nk=None,
                 window: float = 0.1, edges: bool = True, metals=None) -> ZSAClassification:
    """Charge-transfer vs Mott–Hubbard call (module docstring) for a :class:`TBModel` or
    :class:`CollinearTBModel`; ``U`` in eV.  Electron count / Fermi level as in
    :func:`~wannmag.tightbinding.electronic.band_edges`; ``edges=False`` skips the band-edge character."""
    if not np.isfinite(U) or U < 0:
        raise TBError(f"U must be a non-negative number of eV, got {U}")
    delta, eps_d, eps_p, info = charge_transfer_energy(model, metals)
    by_spin = {}
    if isinstance(model, CollinearTBModel):
        for s, ch in (("up", model.up), ("down", model.down)):
            by_spin[s] = charge_transfer_energy(ch, metals)[0]
    regime = CT if delta < U else MH
    out = ZSAClassification(regime=regime, delta=delta, U=float(U), eps_d=eps_d, eps_p=eps_p,
                            ligand_elements=info["ligand_elements"], delta_by_spin=by_spin)
    if edges:
        if k is None:
            k = kmesh(model, nk)
        be = band_edges(model, n_electrons=n_electrons, fermi_energy=fermi_energy, k=k)
        ch = edge_character(model, be, window=window, k=k)
        out.edges = be
        out.vbm_character, out.cbm_character = ch["vbm"], ch["cbm"]
        if be.insulating and ch["vbm"]:
            out.band_regime = CT if ch["vbm"].get("p", 0) > ch["vbm"].get("d", 0) else MH
    return out
