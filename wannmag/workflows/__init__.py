"""Workflows layer: the embedded DFT engine (GPAW), Wannierisation (Wannier90) and readers of users' DFT outputs.

Imports only ``wannmag.structures`` and ``wannmag.errors``.  Conventions: energies eV (TB/DFT), exchange meV,
temperatures K, lengths Å; H = Σ_{i<j} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i, each bond once, classical spins of length S,
J > 0 antiferromagnetic.  GPAW is imported lazily, only when a calculation is run.
"""

from .dft import DFTError, DFTRecord, kpoint_mesh, read_summary, run_dft  # noqa: F401


def __getattr__(name):
    """``wannmag.workflows.build_workflow`` / ``run_workflow``, imported on first use (the workflow module pulls in
    every layer below it; ``wannmag.workflows.dft`` alone stays light)."""
    if name in ("build_workflow", "run_workflow"):
        from . import run  # local: lazy on purpose, `import wannmag.workflows` must not load every layer

        return getattr(run, name)
    raise AttributeError(f"module 'wannmag.workflows' has no attribute {name!r}")
