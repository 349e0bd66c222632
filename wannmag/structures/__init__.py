"""Structures layer: prototypes, reading, the magnetic sublattice, neighbour shells, superexchange paths,
magnetic configurations (design matrix) and vacancy supercells.  Lengths in Å, angles in degrees."""

from .configurations import (CONFIG_NAMES, Configuration, bond_counts, configuration_from_pattern,  # noqa: F401
                             honeycomb_configuration, rectangular_supercell, standard_configurations,
                             vacancy_supercell)
from .io import read_structure, to_pymatgen  # noqa: F401
from .magnetic import MagneticSublattice, find_magnetic_sites, spin_of_ion  # noqa: F401
from .paths import ExchangePaths, exchange_paths  # noqa: F401
from .prototypes import cri3_monolayer, honeycomb_mpx3, honeycomb_mx3, vps3_monolayer  # noqa: F401
from .shells import Bond, Shell, canonical_bond, neighbour_shells  # noqa: F401
from .analysis import StructureReport, analyse_structure  # noqa: F401
