"""Reading Wannier90 models (through wannierberri) with clear one-line errors, and writing synthetic Wannier90 files.

Files of a seed ``S`` (Wannier90 ≥ 2.1 naming):

* ``S_hr.dat`` or ``S_tb.dat``: H(R) (eV) with the Wigner–Seitz degeneracy list; the numbers are read by
  wannierberri (``System_R.from_hr_file`` / ``from_tb_dat``), which divides each H(R) by its degeneracy — exactly
  once; wannmag never divides again.  Before a file is handed to wannierberri a cheap structural check runs
  (header, num_wann, nrpts, degeneracies, number and layout of the matrix-element lines); afterwards H(R) is checked
  against H(−R)† (tolerance ``hermitian_tol`` eV).  Every problem is one :class:`TBFileError` naming file and line.
* ``S.win``: lattice (``unit_cell_cart``), atoms (``atoms_cart``/``atoms_frac``), ``projections`` (parsed with the
  Wannier90 ordering rules: lines in order, for each line the sites of the species in atoms-block order, then l
  ascending, then mr ascending, then spin (u, d) innermost for ``spinors = true``), ``num_wann``, ``mp_grid``,
  ``fermi_energy``.  Orbital names: d = dz2, dxz, dyz, dx2-y2, dxy; p = pz, px, py — always with respect to the
  global Cartesian axes: shells projected with custom axes (``:z=…:x=…``) are rotated back on reading.
  Files written by GPAW (``gpaw.wannier.wannier90``) project every orbital as ``f=x, y, z : s # n = 3, l = 2``: the
  Wannier function is the PAW projector (n, l, m) of that atom, m in GPAW's order (p: y, z, x; d: xy, yz, 3z²−r²,
  zx, x²−y²), so l is read from the comment and each complete shell is put into Wannier90 order on reading.
  ``fermi_energy``, ``num_wann`` and ``mp_grid`` must be well-formed numbers (NaN, inf or text are errors).
* ``S_centres.xyz``: Wannier centres (Å).  Without it, the centres of a ``_tb.dat`` file or the projection sites
  are used.  Each Wannier function is assigned to the nearest atom of its projection's element; a centre farther
  than ``centre_tol`` Å (default 0.5) from every such atom is an error.
* ``S_wsvec.dat`` (optional, ``use_ws_distance``): the MDRS shifts T of every (R, m, n); with ``mdrs=True`` (the
  default when the file exists) H_mn(R) is redistributed over R + T with weight 1/N_T.

Collinear pairs: ``S_up_*`` and ``S_dn_*`` (or ``S_down_*``) → :class:`CollinearTBModel`.  Spinor models
(``spinors = true``): Wannier90 order, spin innermost (orbital 1 ↑, orbital 1 ↓, orbital 2 ↑, …).

Units: energies eV, lengths Å.

One module per job, behind the public functions re-exported here:

* :mod:`.hr` — ``_hr.dat``/``_tb.dat``: structural checks, :func:`read_hr`, :func:`hr_eigenvalues`, H(−R) = H(R)†
* :mod:`.win` — ``.win``: :func:`read_win`, :func:`parse_projections` (GPAW-written projections included), custom
  projection axes
* :mod:`.centres` — ``_centres.xyz`` and the assignment of Wannier functions to atoms
* :mod:`.mdrs` — ``_wsvec.dat``, MDRS shifts, the Wigner–Seitz supercell, folding onto an ``mp_grid``
* :mod:`.write` — the writers (:func:`write_w90_model` and one function per file)
* :mod:`.bridge` — the wannierberri bridge (``System_R`` reading, :func:`to_wannierberri`)
* :mod:`.load` — :func:`read_w90`, :func:`read_w90_seed`, :func:`find_w90_models`, :func:`gunzipped`
* :mod:`._files` — reading a (gzip-compressed) text file with one-line errors
"""

from ._files import BOHR, MAX_LENGTH
from . import bridge as _bridge
from .bridge import to_wannierberri
from .centres import read_centres_xyz
from .hr import HRLayout, check_hr_file, check_tb_file, hr_eigenvalues, read_hr
from .load import W90Models, find_w90_models, gunzipped, read_w90, read_w90_seed
from .mdrs import apply_mdrs, fold_to_grid, mdrs_shifts, read_wsvec, wigner_seitz
from .win import W90_MR_OF_GPAW_M, ProjectionSpec, WinData, parse_projections, read_win
from .write import (write_centres, write_hr, write_tb, write_w90_model, write_win,
                    write_wsvec)

_quiet = _bridge._quiet  # the tests silence wannierberri with w90._quiet

__all__ = ["read_w90", "read_w90_seed", "find_w90_models", "check_hr_file", "check_tb_file", "read_hr",
           "hr_eigenvalues", "read_win", "WinData", "parse_projections", "read_centres_xyz", "read_wsvec",
           "apply_mdrs", "wigner_seitz", "fold_to_grid", "mdrs_shifts", "write_hr", "write_tb", "write_win",
           "write_centres", "write_wsvec", "write_w90_model", "to_wannierberri", "BOHR", "MAX_LENGTH", "HRLayout",
           "ProjectionSpec", "W90Models", "W90_MR_OF_GPAW_M", "gunzipped"]
