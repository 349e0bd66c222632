"""Pieces shared by the sub-commands of the ``wannmag`` CLI."""

import argparse

EPILOG = ("Conventions: TB energies in eV, exchange in meV, temperatures in K, lengths in Å.\n"
          "Spin Hamiltonian H = Σ_{i<j} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i, each bond once,\n"
          "classical spins of length S, J > 0 antiferromagnetic.")

FORMATTER = argparse.RawDescriptionHelpFormatter
