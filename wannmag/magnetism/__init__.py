"""Magnetism layer: the SpinModel (internal convention H = Σ_{i<j} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i, each bond once,
spins of length S, J > 0 antiferromagnetic, meV), exchange routes (energy mapping, magnetic force theorem,
superexchange), anisotropy and Monte Carlo."""

from .spinmodel import INTERNAL, TB2J, VAMPIRE, Bond, Convention, Site, SpinModel, SpinModelError  # noqa: F401
from .energy_mapping import (EnergyRecord, ExchangeFit, FitError, fit_exchange, load_energy_records,  # noqa: F401
                             model_energies, records_from_configurations)
from .io import (MCSOLVER, VAMPIRE_UCF, ExchangeFileError, ExchangeFileWarning, magnopy_convention,  # noqa: F401
                 read_magnopy, read_mcsolver, read_tb2j, read_vampire, tb2j_structure, write_magnopy,
                 write_mcsolver, write_tb2j, write_vampire)
from .symmetry import SymmetryError, bond_orbits, symmetrise  # noqa: F401
