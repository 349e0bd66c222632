"""Export and import of a :class:`~wannmag.magnetism.spinmodel.SpinModel` for other spin codes — one module
per file format, behind the public functions re-exported here.

Every exporter converts the internal tensors with an explicit :class:`~wannmag.magnetism.spinmodel.Convention`
and every importer converts back with the same object, so a round trip SpinModel → file → SpinModel reproduces the
tensors and the classical energies.

Internal convention (for reference; see :mod:`wannmag.magnetism.spinmodel`)::

    H = Σ_{bonds (i,j,R), each once} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i − g μ_B Σ_i B·S_i ,

classical spins of length S, J and A in meV, J > 0 antiferromagnetic.  The antisymmetric part of J is the DMI vector
D with S_i·J^A·S_j = D·(S_i × S_j), i.e. J^A = [[0, D_z, −D_y], [−D_z, 0, D_x], [D_y, −D_x, 0]].

The conventions of the external codes, each with the source it is based on, are in the docstrings of the format
modules:

* :mod:`.tb2j` — TB2J ``exchange.out`` (:data:`TB2J`, read and write; the structure of the file)
* :mod:`.vampire` — Vampire ``.UCF`` + ``.mat`` (:data:`VAMPIRE_UCF`, write; read for the round trip)
* :mod:`.mcsolver` — mcsolver save file, version 2.2 (:data:`MCSOLVER`, read and write)
* :mod:`.magnopy` — magnopy model file (txt, :func:`magnopy_convention`, read and write)
* :mod:`._common` — the helpers all formats share (bond orientation, averaging of the two directions,
  errors and warnings)

Bad input to every reader raises :class:`ExchangeFileError` (a :class:`~wannmag.errors.WannmagError`) with one line
naming the file and, where it applies, the line number.  Quantities a format cannot hold (the Zeeman field, a
non-uniaxial single-ion tensor for Vampire, off-diagonal single-ion terms for mcsolver, single-ion terms for TB2J)
produce one :class:`ExchangeFileWarning` line each.
"""

from ..spinmodel import TB2J
from ._common import ExchangeFileError, ExchangeFileWarning, dmi_matrix
from .magnopy import MAGNOPY_DEFAULT, magnopy_convention, read_magnopy, write_magnopy
from .mcsolver import MCSOLVER, read_mcsolver, write_mcsolver
from .tb2j import read_tb2j, tb2j_structure, write_tb2j
from .vampire import VAMPIRE_UCF, read_vampire, write_vampire

__all__ = ["ExchangeFileError", "ExchangeFileWarning", "TB2J", "VAMPIRE_UCF", "MCSOLVER", "MAGNOPY_DEFAULT",
           "magnopy_convention", "write_tb2j", "read_tb2j", "write_vampire", "read_vampire", "write_mcsolver",
           "read_mcsolver", "write_magnopy", "read_magnopy", "dmi_matrix", "tb2j_structure"]
