"""wannmag: DFT → maximally-localised Wannier functions → exchange, anisotropy and ordering temperatures of 2D magnets.

Layers (a module imports only from its own layer or below):
``structures`` → ``tightbinding`` → ``magnetism`` → ``workflows`` → ``cli``.  ``llm`` stands apart.

Conventions used throughout: TB energies in eV, exchange in meV, temperatures in K, lengths in Å.
Spin Hamiltonian H = Σ_{i<j} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i, each bond once, classical spins of length S,
J > 0 antiferromagnetic.
"""

__version__ = "0.1.0"

from .errors import WannmagError  # noqa: F401
