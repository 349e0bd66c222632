"""Pieces shared by the sub-commands of the ``wannmag`` CLI."""

EPILOG = ("Conventions: energies eV (TB), exchange meV, temperatures K, lengths Å. "
          "H = Σ_{i<j} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i, each bond once, spins of length S, J > 0 antiferromagnetic.")
