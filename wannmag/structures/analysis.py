"""One call from a structure to its magnetic sublattice, neighbour shells and exchange paths (``wannmag structure``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .io import source_name
from .magnetic import MagneticSublattice, find_magnetic_sites
from .paths import ExchangePaths, exchange_paths
from .shells import Shell, neighbour_shells

__all__ = ["StructureReport", "analyse_structure"]


@dataclass
class StructureReport:
    """Magnetic sublattice, shells and exchange paths of one structure (lengths Å, angles degrees).

    A report rebuilt by :meth:`from_dict` without the structure has ``sublattice`` None: its source, formula, cell
    and site table are the stored ones (:meth:`as_dict`, :meth:`table` work; code that needs the atoms does not)."""

    sublattice: MagneticSublattice | None
    shells: list[Shell]
    paths: list[ExchangePaths]
    _stored: dict | None = field(default=None, init=False, repr=False, compare=False)  # from_dict: see there

    @property
    def name(self) -> str:
        return self._header()["source"]

    def _header(self) -> dict:
        """Source, formula, cell, slab flag, oxidation states and site table: of the sublattice, or as stored."""
        sub = self.sublattice
        if sub is None:
            return self._stored
        return {"source": source_name(sub.atoms), "formula": sub.atoms.get_chemical_formula(),
                "cell": sub.atoms.cell.array.round(6).tolist(), "two_dimensional": sub.two_dimensional,
                "oxidation_states": sub.oxidation_states, "magnetic_sites": sub.site_table()}

    def as_dict(self) -> dict:
        return {**self._header(), "shells": [s.as_dict() for s in self.shells],
                "paths": [p.as_dict() for p in self.paths]}

    @classmethod
    def from_dict(cls, d: dict, sublattice: MagneticSublattice | None = None) -> "StructureReport":
        """Inverse of :meth:`as_dict`.  The dict holds the magnetic sites, not the whole structure: give the
        ``sublattice`` of the same structure to have it back (then the header is computed from it, as before),
        or leave it None (the stored header is used).  Shells count their sites' neighbours again from the bonds
        (:meth:`Shell.from_dict`); the paths share the shells' bonds."""
        n = len(d["magnetic_sites"]) if sublattice is None else sublattice.n_sites
        shells = [Shell.from_dict(x, n_sites=n) for x in d["shells"]]
        bonds = {(b.i, b.j, b.R): b for sh in shells for b in sh.bonds}
        rep = cls(sublattice=sublattice, shells=shells, paths=[ExchangePaths.from_dict(x, bonds) for x in d["paths"]])
        if sublattice is None:
            rep._stored = {k: d[k] for k in ("source", "formula", "cell", "two_dimensional", "oxidation_states",
                                             "magnetic_sites")}
        return rep

    def table(self) -> str:
        """Human-readable table of sites, shells and paths."""
        h = self._header()
        lines = [f"{h['source']}: {h['formula']}, {len(h['magnetic_sites'])} magnetic site(s) per cell"
                 f"{' (2D slab)' if h['two_dimensional'] else ''}"]
        for row in h["magnetic_sites"]:
            ox = h["oxidation_states"].get(row["element"])
            ion = f"{row['element']}{'' if ox is None else f'{ox:+d}'}"
            lines.append(f"  site {row['site']}: {ion:6s} S = {row['spin']:.1f}  at "
                         + " ".join(f"{x:8.4f}" for x in row["position"]))
        lines.append("")
        lines.append(f"{'shell':>5} {'d (Å)':>8} {'mult':>5} {'bonds/cell':>10}  {'sharing':<15} {'M-X-M angles (°)':<22}"
                     f" {'d(M-X) (Å)':<12} {'M-X-X-M paths (d_XX, Å)'}")
        for sh in self.shells:
            eps = [p for p in self.paths if p.shell == sh.index]
            sharing = sorted({p.sharing for p in eps})
            angles = sorted({round(b.angle, 1) for p in eps for b in p.bridges})
            dmx = sorted({round(d, 3) for p in eps for b in p.bridges for d in (b.d_ix, b.d_jx)})
            n_long = [len(p.long_paths) for p in eps]
            dxx = sorted({round(lp.d_xx, 2) for p in eps for lp in p.long_paths})
            long_txt = "-" if not any(n_long) else (f"{min(n_long)}–{max(n_long)} per bond, d_XX "
                                                     + ", ".join(f"{d:.2f}" for d in dxx[:4]))
            lines.append(f"{sh.index:>5} {sh.distance:8.4f} {sh.multiplicity:5g} {len(sh.bonds):>10}  "
                         f"{'/'.join(sharing):<15} {', '.join(f'{a:.1f}' for a in angles) or '-':<22} "
                         f"{', '.join(f'{d:.3f}' for d in dmx) or '-':<12} {long_txt}")
        lines.append("")
        lines.append("bonds (i, j, R) and their bridging ligands:")
        for p in self.paths:
            ligs = ", ".join(f"{b.ligand.element}{b.ligand.index}{list(b.ligand.R)} ({b.angle:.1f}°)" for b in p.bridges)
            lines.append(f"  {p.shell}NN  {p.bond.i}-{p.bond.j} R={list(p.bond.R)} d={p.bond.distance:.4f}  "
                         f"{p.sharing}: {ligs or f'{len(p.long_paths)} M-X-X-M path(s)'}")
        return "\n".join(lines)


def analyse_structure(structure, n_shells: int = 3, magnetic=None, spins=None, oxidation_states=None,
                      shell_tol: float = 0.05, ligand_tol: float = 0.15) -> StructureReport:
    """Magnetic sublattice, the first ``n_shells`` neighbour shells and all exchange paths of ``structure``."""
    sub = structure if isinstance(structure, MagneticSublattice) else \
        find_magnetic_sites(structure, magnetic=magnetic, spins=spins, oxidation_states=oxidation_states)
    shells = neighbour_shells(sub, n_shells=n_shells, tol=shell_tol)
    paths = exchange_paths(sub, shells, ligand_tol=ligand_tol)
    return StructureReport(sublattice=sub, shells=shells, paths=paths)
