"""Prototype monolayers of the honeycomb MX3 and MPX3 families.

Both families share the same skeleton (space group P-31m, No. 162, for the ideal monolayer): the metal atoms M sit
on a honeycomb lattice at the 2c sites (1/3, 2/3), (2/3, 1/3) and are octahedrally coordinated by six ligands X; the
octahedra share edges, so every nearest-neighbour M–M bond is bridged by two X (M–X–M angle near 90°).  The ligands
occupy the 6k sites (x, 0, ±z), (0, x, ±z), (−x, −x, ±z) (and their inversion images); x = 1/3 is the ideal
close-packed value.  The centre of each M6 hexagon (the 1a site) is empty in MX3 (CrI3, CrCl3, RuCl3, ...) and holds a
vertical P–P dimer in MPX3 (VPS3, MnPS3, FePS3, NiPS3, ...).

Lattice vectors: a1 = (a, 0, 0), a2 = (−a/2, a√3/2, 0), a3 = (0, 0, c); the layer is centred at z = c/2 with
``vacuum`` Å of empty space between periodic images.  All lengths in Å.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

__all__ = ["honeycomb_mx3", "honeycomb_mpx3", "cri3_monolayer", "vps3_monolayer", "regular_octahedron_x"]


def _hexagonal_cell(a: float, c: float) -> np.ndarray:
    return np.array([[a, 0.0, 0.0], [-a / 2.0, a * np.sqrt(3.0) / 2.0, 0.0], [0.0, 0.0, c]])


def _ligand_height(a: float, d_mx: float, x: float) -> float:
    """Height h of the ligand planes above the metal plane for an M–X distance ``d_mx``.

    The in-plane M–X distance r is the distance from the metal at (1/3, 2/3) to the ligand at (x, 1); by the
    three-fold axis through the metal, all three ligands of one plane are at the same distance.
    """
    cell = _hexagonal_cell(a, 1.0)[:2, :2]
    r = np.linalg.norm(np.array([x - 1.0 / 3.0, 1.0 - 2.0 / 3.0]) @ cell)
    if d_mx <= r:
        raise ValueError(f"M–X distance {d_mx:.3f} Å is shorter than the in-plane M–X distance {r:.3f} Å "
                         f"for a = {a:.3f} Å, x = {x:.3f}")
    return float(np.sqrt(d_mx**2 - r**2))


def regular_octahedron_x(a: float, d_mx: float) -> float:
    """In-plane 6k coordinate x of the ligands that makes the MX6 octahedra regular (M–X bonds at the ideal angle
    arccos(1/√3) = 54.74° from the layer normal) for a given a and M–X distance.

    The in-plane M–X distance of the ligand (x, 1) from the metal at (1/3, 2/3) is r² = a²(u² − u/3 + 1/9) with
    u = x − 1/3; a regular octahedron needs r = d·√(2/3).  The root closest to x = 1/3 is returned.
    """
    r2 = (d_mx * np.sqrt(2.0 / 3.0) / a) ** 2
    disc = 1.0 / 9.0 - 4.0 * (1.0 / 9.0 - r2)
    if disc < 0:
        raise ValueError(f"no regular octahedron fits a = {a:.3f} Å with M–X = {d_mx:.3f} Å")
    roots = [(1.0 / 3.0 + sgn * np.sqrt(disc)) / 2.0 for sgn in (+1, -1)]
    u = min(roots, key=abs)
    return 1.0 / 3.0 + u


def _honeycomb_skeleton(metal: str, ligand: str, a: float, d_mx: float, vacuum: float, x: float,
                        thickness_extra: float = 0.0) -> tuple[list[str], list[np.ndarray], float, float]:
    h = _ligand_height(a, d_mx, x)
    half = max(h, thickness_extra)
    c = 2.0 * half + vacuum
    symbols = [metal, metal] + [ligand] * 6
    frac = [
        (1 / 3, 2 / 3, 0.0), (2 / 3, 1 / 3, 0.0),
        (x, 0.0, +1), (0.0, x, +1), (1 - x, 1 - x, +1),      # upper ligand plane: (x,0), (0,x), (-x,-x)
        (1 - x, 0.0, -1), (0.0, 1 - x, -1), (x, x, -1),      # lower ligand plane: inversion images
    ]
    cell = _hexagonal_cell(a, c)
    positions = []
    for f1, f2, side in frac:
        z = c / 2.0 + side * h
        positions.append(np.array([f1, f2, 0.0]) @ cell + np.array([0.0, 0.0, z]))
    return symbols, positions, c, h


def honeycomb_mx3(metal: str, ligand: str, a: float, d_mx: float, vacuum: float = 15.0,
                  x: float | None = None) -> Atoms:
    """Monolayer MX3 with a honeycomb metal lattice (BiI3-type layer, P-31m).

    Parameters
    ----------
    metal, ligand : chemical symbols of M and X.
    a : in-plane hexagonal lattice constant (Å); the M–M nearest-neighbour distance is a/√3.
    d_mx : M–X bond length (Å); sets the height of the ligand planes.
    vacuum : empty space between periodic images along z (Å).
    x : in-plane ligand coordinate of the 6k site.  Default: the value that makes the MX6 octahedra regular
        (:func:`regular_octahedron_x`); x = 1/3 instead keeps the ligands on the ideal close-packed positions, which
        for a given a and d_mx trigonally compresses or elongates the octahedra.  The trigonal distortion matters:
        it sets the sign of the spin–orbit anisotropy of CrI3 (see ``cri3_monolayer``).
    """
    if x is None:
        x = regular_octahedron_x(a, d_mx)
    symbols, positions, c, _ = _honeycomb_skeleton(metal, ligand, a, d_mx, vacuum, x)
    atoms = Atoms(symbols, positions=positions, cell=_hexagonal_cell(a, c), pbc=True)
    atoms.info["prototype"] = f"{metal}{ligand}3 honeycomb monolayer (P-31m)"
    return atoms


def honeycomb_mpx3(metal: str, ligand: str = "S", a: float = 5.85, d_mx: float = 2.55, d_pp: float = 2.20,
                   vacuum: float = 15.0, x: float = 1.0 / 3.0, pnictogen: str = "P") -> Atoms:
    """Monolayer MPX3 (metal thiophosphate family): the MX3 honeycomb skeleton plus a vertical P–P dimer at the
    centre of every metal hexagon, each P bonded to the three ligands of its own plane ([P2X6]^4− unit).

    Parameters as in :func:`honeycomb_mx3`; ``d_pp`` is the P–P bond length (Å) and ``pnictogen`` the dimer element.
    """
    h = _ligand_height(a, d_mx, x)
    if d_pp / 2.0 >= h + 1.0:
        raise ValueError(f"P–P distance {d_pp} Å puts P far outside the ligand planes (h = {h:.3f} Å)")
    symbols, positions, c, _ = _honeycomb_skeleton(metal, ligand, a, d_mx, vacuum, x)
    symbols += [pnictogen, pnictogen]
    positions += [np.array([0.0, 0.0, c / 2.0 + d_pp / 2.0]), np.array([0.0, 0.0, c / 2.0 - d_pp / 2.0])]
    atoms = Atoms(symbols, positions=positions, cell=_hexagonal_cell(a, c), pbc=True)
    atoms.info["prototype"] = f"{metal}{pnictogen}{ligand}3 honeycomb monolayer (P-31m)"
    return atoms


def cri3_monolayer(a: float = 7.0, d_crx: float = 2.78, vacuum: float = 15.0) -> Atoms:
    """CrI3 monolayer (Cr3+, d3, S = 3/2; ferromagnetic, Tc ≈ 45 K).

    Defaults: a = 7.0 Å and d(Cr–I) = 2.78 Å, a PBE(+U)-like monolayer geometry — the one used in the measured
    GPAW → Wannier90 recipe of this project (shared/recipes/gpaw-wannier90.md, E_Néel − E_FM = 28.5 meV/Cr).
    PBE-family monolayer lattice constants in the literature spread over ≈ 6.9–7.1 Å (see the discussion in
    Staros et al., J. Chem. Phys. 156, 014707 (2022)); the experimental bulk value (R-3, low temperature) is
    a = 6.867 Å with Cr–I ≈ 2.73 Å (McGuire et al., Chem. Mater. 27, 612 (2015)).  Cr–Cr = a/√3 ≈ 4.04 Å and
    Cr–I–Cr ≈ 93° with the defaults.

    The iodine in-plane coordinate makes the CrI6 octahedra regular (x = 0.3523; Cr–I bonds 54.74° from the
    normal), as in relaxed monolayers: e.g. the DFT structure of the TB2J CrI3 example (ABACUS; a = 6.823 Å,
    Cr–I 2.696 Å) has its Cr–I bonds at 54.95°.  The close-packed x = 1/3 would instead compress the octahedra
    (57.1° at a = 7.0 Å, Cr–I = 2.78 Å), and GPAW's spin–orbit force theorem then puts the easy axis in the plane
    (E_in − E_out = −1.0 meV/Cr, LCAO), against experiment; with regular octahedra it is out of plane.
    """
    atoms = honeycomb_mx3("Cr", "I", a=a, d_mx=d_crx, vacuum=vacuum)
    atoms.info["name"] = "CrI3 monolayer"
    return atoms


def vps3_monolayer(a: float = 5.85, d_vs: float = 2.55, d_pp: float = 2.20, vacuum: float = 15.0) -> Atoms:
    """VPS3 monolayer (V2+, d3, S = 3/2; Néel antiferromagnet).

    Defaults: a = 5.85 Å, the hexagonal in-plane constant of the MPS3 cell of vanadium thiophosphate
    (V_{0.78}PS3, monoclinic b ≈ 10.1 Å = √3 a), as compiled in the MPS3 literature (Brec, Solid State Ionics
    22, 3 (1986)); d(V–S) = 2.55 Å and d(P–P) = 2.20 Å are typical MPS3 bond lengths (cf. FePS3, MnPS3 in
    Ouvrard, Brec & Rouxel, Mat. Res. Bull. 20, 1181 (1985)).  V–V = a/√3 ≈ 3.38 Å, P–S ≈ 2.02 Å, V–S–V ≈ 83°.
    These are approximate: relax with DFT for quantitative work.
    """
    atoms = honeycomb_mpx3("V", "S", a=a, d_mx=d_vs, d_pp=d_pp, vacuum=vacuum)
    atoms.info["name"] = "VPS3 monolayer"
    return atoms
