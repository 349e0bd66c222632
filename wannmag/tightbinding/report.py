"""One call from a Wannier model to the numbers ``wannmag tb`` prints: orbitals, on-site levels, crystal-field
levels (10Dq, trigonal splitting), Δ = ε_d − ε_p, the ZSA classification and the largest hoppings per bond
(local octahedral frames).  Energies in eV, lengths in Å.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from .classify import ZSAClassification, classify_zsa
from .harmonics import ORBITAL_NAMES
from .localframe import CrystalFieldLevels, crystal_field, hopping_matrices, local_frames
from .model import CollinearTBModel, TBError, TBModel

__all__ = ["TBReport", "tb_report", "metal_bonds"]


def metal_bonds(model, n_shells: int = 3, tol: float = 0.05, metals=None) -> list[dict]:
    """Metal–metal bonds (i, j, R) of the first ``n_shells`` shells (each bond once, canonical direction) between
    the ``metals`` (atom indices; default: the atoms with d orbitals)."""
    # local: wannmag.structures costs ~0.4 s to import (ase.build, pymatgen); tightbinding alone stays light
    from ..structures.magnetic import MagneticSublattice, _is_slab
    from ..structures.shells import neighbour_shells

    m = model.up if isinstance(model, CollinearTBModel) else model
    metals = sorted({o.atom for o in m.orbitals if o.l == 2 and o.atom >= 0}) if metals is None else sorted(metals)
    if not metals or m.atoms is None:
        return []
    sub = MagneticSublattice(atoms=m.atoms, indices=np.array(metals), spins=np.ones(len(metals)),
                             two_dimensional=not bool(m.periodic[2]) or _is_slab(m.atoms))
    try:
        shells = neighbour_shells(sub, n_shells=n_shells, tol=tol)
    except Exception:  # noqa: BLE001 - a single metal without periodic images has no bonds
        return []
    out = []
    for sh in shells:
        for b in sh.bonds:
            out.append({"shell": sh.index, "i": int(metals[b.i]), "j": int(metals[b.j]), "R": tuple(b.R),
                        "distance": b.distance})
    return out


def _largest(block: np.ndarray, rows, cols, n: int = 3) -> list[dict]:
    a = np.abs(block)
    order = np.argsort(a.ravel())[::-1][:n]
    out = []
    for f in order:
        i, j = np.unravel_index(f, block.shape)
        val = block[i, j]
        out.append({"from": rows[i], "to": cols[j],
                    "t": round(float(val.real), 6) if np.isrealobj(block) or abs(val.imag) < 1e-9
                    else [round(float(val.real), 6), round(float(val.imag), 6)]})
    return out


@dataclass
class TBReport:
    """Everything ``wannmag tb`` reports about one model.

    A report rebuilt by :meth:`from_dict` without its model has ``model`` None: its source, name, kind, orbital
    table and on-site levels are the stored ones (:meth:`as_dict`, :attr:`kind`, :meth:`orbital_table`,
    :meth:`onsite_levels` work); what needs H(R) — :meth:`table` (the number of R vectors) — raises a one-line
    :class:`TBError`."""

    model: TBModel | CollinearTBModel | None
    crystal_fields: list[CrystalFieldLevels] = field(default_factory=list)
    classification: ZSAClassification | None = None
    bonds: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    _stored: dict | None = field(default=None, init=False, repr=False, compare=False)  # from_dict: see there

    @property
    def kind(self) -> str:
        if self.model is None:
            return self._stored_header("kind")["kind"]
        if isinstance(self.model, CollinearTBModel):
            return "collinear"
        return "spinor" if self.model.spinor else "spinless"

    def _stored_header(self, what: str) -> dict:
        """The stored header of a report rebuilt without its model; a report with neither cannot give ``what``."""
        if self._stored is None:
            raise TBError(f"TBReport without a model or a stored header: {what} needs the model")
        return self._stored

    def _base(self, what: str = "this") -> TBModel:
        if self.model is None:
            name = self._stored["name"] if self._stored is not None else "TBReport"
            raise TBError(f"{name}: the report was rebuilt from a dict without its Wannier model (H(R) is not stored), "
                          f"so {what} needs it: give model= to TBReport.from_dict")
        return self.model.up if isinstance(self.model, CollinearTBModel) else self.model

    def orbital_table(self) -> list[dict]:
        if self.model is None:
            return copy.deepcopy(self._stored_header("the orbital table")["orbitals"])
        m = self._base()
        rows: dict[int, dict] = {}
        for i, o in enumerate(m.orbitals):
            r = rows.setdefault(o.atom, {"atom": o.atom, "element": o.element, "orbitals": [], "indices": []})
            if o.name not in r["orbitals"]:
                r["orbitals"].append(o.name)
            r["indices"].append(i + 1)
        return list(rows.values())

    def onsite_levels(self) -> list[dict]:
        """Mean on-site energy per atom and shell (per spin channel for a collinear model)."""
        if self.model is None:
            return copy.deepcopy(self._stored_header("the on-site levels")["onsite"])
        chans = ([("up", self.model.up), ("down", self.model.down)] if isinstance(self.model, CollinearTBModel)
                 else [(None, self.model)])
        out = []
        base = self._base()
        for a in base.atoms_with_orbitals:
            for l in sorted({o.l for o in base.orbitals if o.atom == a}):
                row = {"atom": a, "element": base.orbitals[base.select(atom=a)[0]].element,
                       "shell": {0: "s", 1: "p", 2: "d", 3: "f"}.get(l, str(l))}
                for s, ch in chans:
                    e = ch.onsite_energies()[ch.select(atom=a, l=l)]
                    row[s or "mean"] = round(float(e.mean()), 6)
                    row[f"levels_{s}" if s else "levels"] = np.round(e, 6).tolist()
                if isinstance(self.model, CollinearTBModel):
                    row["exchange_splitting"] = round(row["up"] - row["down"], 6)
                out.append(row)
        return out

    _HEADER = ("source", "name", "kind", "num_wann", "lattice", "mdrs_applied", "orbitals", "onsite")

    def _header(self) -> dict:
        """Source, name, kind, size, lattice, MDRS flag, orbital table and on-site levels: of the model, or as
        stored."""
        if self.model is None:
            return copy.deepcopy(self._stored_header("as_dict"))
        m = self._base()
        return {"source": m.source, "name": self.model.name, "kind": self.kind, "num_wann": m.num_wann,
                "lattice": np.round(m.lattice, 6).tolist(), "mdrs_applied": bool(getattr(m, "mdrs_applied", False)),
                "orbitals": self.orbital_table(), "onsite": self.onsite_levels()}

    def as_dict(self) -> dict:
        return {**self._header(),
                "crystal_field": [c.as_dict() for c in self.crystal_fields],
                "classification": None if self.classification is None else self.classification.as_dict(),
                "bonds": self.bonds, "warnings": self.warnings,
                "units": {"energy": "eV", "length": "Å"}}

    @classmethod
    def from_dict(cls, d: dict, model: TBModel | CollinearTBModel | None = None) -> "TBReport":
        """Inverse of :meth:`as_dict`.  The dict holds the report's numbers (rounded to 1e-6 eV), not the
        Hamiltonian: give the ``model`` it was made of to have it back (then the header — source, orbital table,
        on-site levels — is computed from it, as before; a model of another size or kind raises :class:`TBError`),
        or leave it None (the stored header is used; :meth:`table` then raises).  The crystal fields and the ZSA
        classification are rebuilt by their own ``from_dict`` (the full local d blocks are not stored: the table
        prints the stored diagonal, rounded to 1e-6 eV); the bonds' largest hoppings and the warnings are the
        stored ones."""
        try:
            header = {k: d[k] for k in cls._HEADER}
            cf = [CrystalFieldLevels.from_dict(x) for x in d["crystal_field"]]
            zsa = None if d["classification"] is None else ZSAClassification.from_dict(d["classification"])
            bonds, warnings = copy.deepcopy(list(d["bonds"])), [str(w) for w in d["warnings"]]
        except (KeyError, TypeError, AttributeError) as exc:
            raise TBError(f"not a stored TBReport ({type(exc).__name__}: {exc})") from None
        rep = cls(model=model, crystal_fields=cf, classification=zsa, bonds=bonds, warnings=warnings)
        if model is None:
            rep._stored = copy.deepcopy(header)
        elif (rep.kind, rep._base().num_wann) != (header["kind"], header["num_wann"]):
            raise TBError(f"model {model.name} ({rep.kind}, {rep._base().num_wann} orbitals) is not the one of the "
                          f"stored report {header['name']} ({header['kind']}, {header['num_wann']} orbitals)")
        return rep

    def table(self) -> str:
        m = self._base("its table (the number of R vectors)")
        L = [f"{self.model.name}: {self.kind} Wannier model, {m.num_wann} orbitals per spin channel, "
             f"{m.nR} R vectors{' (MDRS applied)' if getattr(m, 'mdrs_applied', False) else ''}  [{m.source}]"]
        L.append("orbitals (Wannier90 order; d = dz2 dxz dyz dx2-y2 dxy, p = pz px py):")
        for r in self.orbital_table():
            L.append(f"  {r['element']}{r['atom']:<3d} {' '.join(r['orbitals']):<32s} WF {r['indices'][0]}–{r['indices'][-1]}")
        L.append("")
        L.append("on-site levels (eV):")
        for r in self.onsite_levels():
            if "exchange_splitting" in r:
                L.append(f"  {r['element']}{r['atom']:<3d} {r['shell']}: ε↑ {r['up']:8.3f}  ε↓ {r['down']:8.3f}  "
                         f"Δ_ex = ε↑ − ε↓ {r['exchange_splitting']:8.3f}")
            else:
                L.append(f"  {r['element']}{r['atom']:<3d} {r['shell']}: {r['mean']:8.3f}")
        if self.crystal_fields:
            L.append("")
            L.append("crystal field, local octahedral frames (spin-averaged, eV):")
            for c in self.crystal_fields:
                # levels rebuilt by CrystalFieldLevels.from_dict keep only the stored diagonal (rounded to 1e-6 eV)
                diag = np.diag(c.h_local) if c.h_local is not None else list(c.as_dict()["local_levels"].values())
                lv = " ".join(f"{n} {e:.3f}" for n, e in zip(ORBITAL_NAMES[2], diag))
                L.append(f"  {c.element}{c.atom}: {lv}")
                L.append(f"      ε_t2g {c.eps_t2g:.3f}  ε_eg {c.eps_eg:.3f}  10Dq (on-site) {c.ten_dq:.3f}"
                         + (f"  10Dq (MX6 cluster) {c.ten_dq_cluster:.3f}" if c.ten_dq_cluster is not None else "")
                         + f"  a1g−eg' {c.trigonal_splitting:+.3f}  t2g–eg mixing {c.t2g_eg_mixing:.3f}")
                if c.delta is not None:
                    L.append(f"      ε_d {c.eps_d:.3f}  ε_p(ligands) {c.eps_p:.3f}  Δ = ε_d − ε_p {c.delta:.3f}"
                             f"  (octahedron: M–X {c.frame.bond_lengths.min():.3f}–{c.frame.bond_lengths.max():.3f} Å,"
                             f" axes off by ≤ {c.frame.max_deviation:.2f}°)")
        if self.classification is not None:
            L.append("")
            L.append(self.classification.text())
        if self.bonds:
            L.append("")
            L.append("largest hoppings per bond (local frames, eV; spin-averaged for a collinear model):")
            for b in self.bonds:
                tops = ", ".join(f"{t['from']}→{t['to']} {_hopping_text(t['t'])}" for t in b["largest"])
                L.append(f"  {b['kind']:<3s} {b['label']:<22s} d={b['distance']:.3f}  ‖t‖={b['norm']:.3f}  {tops}")
        for w in self.warnings:
            L.append(f"warning: {w}")
        return "\n".join(L)


def tb_report(model, U: float = 3.0, n_electrons=None, fermi_energy: float | None = None, n_shells: int = 3,
              nk=None, n_largest: int = 3, metals=None) -> TBReport:
    """Build the :class:`TBReport` of a model (classification needs d and ligand p orbitals; skipped otherwise).
    ``metals``: atom indices of the metal (magnetic) atoms (default: the atoms carrying d orbitals)."""
    rep = TBReport(model=model)
    avg = model.spin_averaged() if isinstance(model, CollinearTBModel) else model
    frames = {}
    try:
        frames = local_frames(avg, metals=metals)
        rep.crystal_fields = [crystal_field(avg, a, f) for a, f in frames.items()]
    except TBError as exc:
        rep.warnings.append(f"no local octahedral frames: {exc}")
    try:
        rep.classification = classify_zsa(model, U=U, n_electrons=n_electrons, fermi_energy=fermi_energy, nk=nk,
                                          metals=metals)
    except TBError as exc:
        rep.warnings.append(f"no ZSA classification: {exc}")
    frame = "local" if frames else "global"
    names = {1: ORBITAL_NAMES[1], 2: ORBITAL_NAMES[2], 0: ORBITAL_NAMES[0]}
    for b in metal_bonds(avg, n_shells=n_shells, metals=metals):
        blk = hopping_matrices(avg, b["i"], b["j"], b["R"], frame=frame, frames=frames or None).get("dd")
        if blk is None:
            continue
        rep.bonds.append({"kind": f"{b['shell']}NN", "label": f"{b['i']}→{b['j']} R={list(b['R'])}", "i": b["i"],
                          "j": b["j"], "R": list(b["R"]), "distance": round(b["distance"], 5),
                          "norm": round(float(np.linalg.norm(blk)), 6),
                          "largest": _largest(blk, names[2], names[2], n_largest)})
    for a, f in frames.items():
        for (x, R) in f.ligands[:6]:
            blk = hopping_matrices(avg, a, x, R, frame=frame, frames=frames).get("dp")
            if blk is None:
                continue
            rep.bonds.append({"kind": "M-X", "label": f"{a}→{x} R={list(R)}", "i": a, "j": int(x), "R": list(R),
                              "distance": round(float(np.linalg.norm(f.ligand_vectors[f.ligands.index((x, R))])), 5),
                              "norm": round(float(np.linalg.norm(blk)), 6),
                              "largest": _largest(blk, names[2], names[1], n_largest)})
            break  # one representative M–X bond per metal
    return rep


def _hopping_text(t, imag_tol: float = 1e-5) -> str:
    """A hopping (eV) as text: a real number when its imaginary part is below ``imag_tol`` eV (the gauge noise of a
    real Wannier Hamiltonian), else ``re+imj``."""
    z = complex(*t) if isinstance(t, (list, tuple)) else complex(t)
    if abs(z.imag) <= imag_tol:
        return f"{z.real:+.6f}"
    return f"({z.real:+.6f}{z.imag:+.6f}j)"
