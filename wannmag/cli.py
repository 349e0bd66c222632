"""The ``wannmag`` command line.

Conventions (all sub-commands): TB energies in eV, exchange in meV, temperatures in K, lengths in Å; spin Hamiltonian
H = Σ_{i<j} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i, each bond once, classical spins of length S, J > 0 antiferromagnetic.

Errors and warnings (what the user sees on stderr):

* Bad input is reported as one line ``wannmag: error: ...`` with exit status 2 (a :class:`~wannmag.errors.WannmagError`
  raised anywhere below); control characters in the message (e.g. a newline in a file name) are escaped so that it
  stays one line.
* Python warnings raised while a command runs (numpy ``RuntimeWarning``, wannmag's own warnings, ...) are collected,
  not printed as they happen.  When the command fails, only the error line is printed (a warning about a computation
  that was abandoned is noise in front of the real problem).  When it succeeds, each distinct warning is printed once
  after the output as ``wannmag: warning: <message>``; deprecation notices of third-party libraries (``Deprecation-``,
  ``PendingDeprecation-``, ``FutureWarning``) are dropped — they concern the developers, not the user's numbers.
  Consequence: a long command (``dft``, ``run``) shows its warnings at the end, its log files hold them as they occur.
* An exception that is not a ``WannmagError`` is a bug in wannmag: it is reported as one line
  ``wannmag: error: internal error (<type>: <message>); please report`` with exit status 2 (the environment variable
  ``WANNMAG_TRACEBACK=1`` shows the traceback instead).  Running out of memory is one line ``wannmag: error: out of
  memory ...`` with exit status 2.
* Command-line syntax errors are argparse's usage lines plus one ``wannmag <command>: error: ...`` line, exit 2.
"""

# Imports inside the functions are deliberate (CLI start-up: `wannmag --help` and argument errors stay fast).

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
import warnings

from . import __version__
from .commands import COMMANDS
from .commands._common import EPILOG, FORMATTER
from .errors import WannmagError

#: warning categories that are never shown to the user (library deprecation notices)
SILENT_WARNINGS = (DeprecationWarning, PendingDeprecationWarning, FutureWarning, ImportWarning, ResourceWarning)
_MAX_WARNINGS = 20  # distinct warnings printed after a successful command (the rest are counted)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wannmag",
        description="wannmag: from DFT and Wannier functions to exchange constants, anisotropy and ordering "
                    "temperatures of 2D magnets.",
        epilog=EPILOG, formatter_class=FORMATTER)
    parser.add_argument("--version", action="version", version=f"wannmag {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"wannmag.commands.{name}").register(sub)
    return parser


def one_line(text) -> str:
    """``text`` as one printable line: newlines, tabs and other control characters escaped (``\\n``, ``\\t``, ...)."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), str(text)).strip()


class _WarningCollector:
    """Collects warnings (each distinct message once, in order) instead of printing them."""

    def __init__(self):
        self.messages: dict[str, None] = {}

    def __call__(self, message, category, filename, lineno, file=None, line=None):
        if issubclass(category, SILENT_WARNINGS):
            return
        text = one_line(message)
        if issubclass(category, RuntimeWarning) and category.__module__ in ("builtins", "numpy"):
            text = f"{text} (numerical warning from {os.path.basename(filename)}:{lineno})"
        self.messages[text] = None

    def flush(self, stream) -> None:
        items = list(self.messages)
        for text in items[:_MAX_WARNINGS]:
            print(f"wannmag: warning: {text}", file=stream)
        if len(items) > _MAX_WARNINGS:
            print(f"wannmag: warning: ... and {len(items) - _MAX_WARNINGS} more distinct warning(s)", file=stream)


_MISSING = {"file": "no such file", "dir": "no such directory", "path": "no such file or directory",
            "w90": "no such Wannier90 directory, file or seed"}


def check_inputs(args) -> None:
    """The input paths a sub-command declares (``set_defaults(inputs=((attr, kind), ...))``, kind ``file``,
    ``dir``, ``path`` or ``w90`` — a Wannier90 directory, file or seed prefix; ``sk:...`` synthetic models pass)
    exist: a missing one is the one-line error before the command imports its heavy modules (< 1 s).  Anything
    else about the path (a directory for a file, a FIFO, permissions) is left to the command's own checks."""
    from pathlib import Path

    for attr, kind in getattr(args, "inputs", ()) or ():
        value = getattr(args, attr, None)
        if value is None or (kind == "w90" and str(value).startswith("sk:")):
            continue
        path = Path(value)
        try:
            if path.exists() or path.is_symlink():
                continue
            if kind == "w90" and path.parent.is_dir() and any(
                    f.name.startswith(path.name) for f in path.parent.iterdir()):
                continue  # a seed prefix (DIR/seed → DIR/seed_hr.dat, ...)
        except (OSError, ValueError):  # unreadable parent, NUL in the name, ...: the command reports it
            continue
        raise WannmagError(f"{value}: {_MISSING[kind]}")


def _error(message) -> int:
    print(f"wannmag: error: {one_line(message)}", file=sys.stderr)
    return 2


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    collector = _WarningCollector()
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = collector
        try:
            check_inputs(args)
            status = int(args.func(args) or 0)
        except WannmagError as exc:
            return _error(exc)
        except BrokenPipeError:  # e.g. `wannmag structure ... | head`
            return 0
        except KeyboardInterrupt:
            print("wannmag: interrupted", file=sys.stderr)
            return 130
        except MemoryError as exc:
            return _error(f"out of memory{f' ({exc})' if str(exc) else ''}: the input asks for more memory than "
                          "this machine has (a too large mesh, lattice or file?)")
        except RecursionError:
            return _error("input nested too deeply (recursion limit reached)")
        except Exception as exc:  # noqa: BLE001 - a bug: one line for the user, the traceback on request
            if os.environ.get("WANNMAG_TRACEBACK"):
                raise
            return _error(f"internal error ({type(exc).__name__}: {exc}); please report "
                          "(WANNMAG_TRACEBACK=1 shows the traceback)")
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        return status
    collector.flush(sys.stderr)
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
