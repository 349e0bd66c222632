"""wannmag: DFT → maximally-localised Wannier functions → exchange, anisotropy and ordering temperatures of 2D magnets.

Layers (a module imports only from its own layer or below):
``structures`` → ``tightbinding`` → ``magnetism`` → ``workflows`` → ``cli``.  ``llm`` stands apart.

Conventions used throughout: TB energies in eV, exchange in meV, temperatures in K, lengths in Å.
Spin Hamiltonian H = Σ_{i<j} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i, each bond once, classical spins of length S,
J > 0 antiferromagnetic.
"""

__version__ = "0.1.0"

from .errors import WannmagError  # noqa: F401


#: the public entry points, imported on first use (``import wannmag`` stays light: numba, pymatgen, GPAW and the
#: workflow layer load only when one of these is touched)
_LAZY = {"SpinModel": ("wannmag.magnetism", "SpinModel"),
         "read_structure": ("wannmag.structures", "read_structure"),
         "read_w90": ("wannmag.tightbinding.w90", "read_w90"),
         "build_workflow": ("wannmag.workflows.run", "build_workflow"),
         "run_workflow": ("wannmag.workflows.run", "run_workflow")}

__all__ = ["WannmagError", "__version__", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        mod, attr = _LAZY[name]
        value = getattr(importlib.import_module(mod), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'wannmag' has no attribute {name!r}")
