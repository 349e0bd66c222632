"""Tight-binding layer: Wannier90 models (read through wannierberri), fast H(k)/bands/DOS, local octahedral frames,
crystal-field levels, the Zaanen–Sawatzky–Allen classification, and Slater–Koster model building.

Conventions: TB energies in eV, exchange in meV, temperatures in K, lengths in Å; k-points in reduced coordinates.
H(R) = <w_m,0|H|w_n,R> with the Wigner–Seitz degeneracies divided out exactly once; H(k) in the lattice gauge
("I", exp(2πi k·R), as Wannier90/wannierberri) by default, the atomic/"tb" gauge ("II", with orbital positions) on
request.  Orbitals in the Wannier90 real-harmonic order: d = dz2, dxz, dyz, dx2-y2, dxy; p = pz, px, py.

Layering: imports only :mod:`wannmag.structures` and :mod:`wannmag.errors`.  User errors raise
:class:`TBError`/:class:`TBFileError` (subclasses of :class:`wannmag.errors.WannmagError`) with one-line messages
naming the file (and line).
"""

from .model import CollinearTBModel, Orbital, TBError, TBFileError, TBModel, make_orbitals  # noqa: F401
from .harmonics import ORBITAL_NAMES, frame_matrix, real_harmonics, rotation_matrix  # noqa: F401
from .slater_koster import (SKParameters, sk_block, sk_block_rotated, slater_koster_collinear,  # noqa: F401
                            slater_koster_model)
from .localframe import (CrystalFieldLevels, LocalFrame, crystal_field, crystal_fields,  # noqa: F401
                         hopping_matrices, local_frames, octahedral_frame)
from .w90 import find_w90_models, read_w90, read_w90_seed, to_wannierberri, write_w90_model  # noqa: F401
from .electronic import (BandEdges, band_edges, dos, edge_character, kmesh, nominal_electron_count,  # noqa: F401
                         orbital_weights, projected_dos)
from .classify import ZSAClassification, classify_zsa  # noqa: F401
from .report import TBReport, tb_report  # noqa: F401
