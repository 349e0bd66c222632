"""Exceptions shared by every layer of wannmag.

Every error a user can provoke with bad input derives from :class:`WannmagError`; its message is one line that
names the file (or object) and the problem.  The CLI prints it as ``wannmag: error: <message>`` and exits with
status 2, never with a traceback.
"""


class WannmagError(Exception):
    """Base class: a user-facing problem described in one line."""


class StructureError(WannmagError):
    """A structure file or object cannot be used (unreadable, empty, no magnetic ion, ...)."""


class ConfigurationError(WannmagError):
    """A magnetic configuration is incompatible with the structure or supercell."""
