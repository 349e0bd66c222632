"""Sub-commands of the ``wannmag`` CLI: one module per command, each with ``register(subparsers)``.

The CLI is the top layer: a command module may import from any layer of the package.
"""

COMMANDS = ["structure", "exchange", "tb", "mc", "dft", "anisotropy", "superexchange", "export", "run", "relax", "sweep"]
