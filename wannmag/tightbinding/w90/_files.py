"""Reading the lines of a Wannier90 text file (or of its ``.gz``) with one-line errors; lengths in Å."""

from __future__ import annotations

import gzip
from pathlib import Path

from ..._atomic import special_file
from ..model import TBFileError


BOHR = 0.529177210903
MAX_LENGTH = 1e5  # Å: larger lattice vectors or positions in a .win are not a crystal


def _lines(path: Path, what: str) -> list[str]:
    """The lines of ``path`` (or of ``path.gz``, gzip-compressed as shipped in ``data/dft``)."""
    path = Path(path)
    if not path.exists() and Path(str(path) + ".gz").exists():
        path = Path(str(path) + ".gz")
    if not path.exists():
        raise TBFileError(f"{path}: no such file ({what})")
    if path.is_dir():
        raise TBFileError(f"{path}: is a directory, not a {what}")
    _check_regular(path)
    if path.suffix == ".gz":
        try:
            with gzip.open(path, "rt", errors="replace") as f:
                text = f.read()
        except (OSError, EOFError) as exc:
            raise TBFileError(f"{path}: not a readable gzip file ({type(exc).__name__})") from None
    else:
        text = path.read_text(errors="replace")
    if not text.strip():
        raise TBFileError(f"{path}: file is empty ({what})")
    return text.splitlines()


def _int(path, lineno: int, token: str, what: str) -> int:
    try:
        return int(token)
    except (ValueError, TypeError):
        raise TBFileError(f"{path}:{lineno}: expected an integer ({what}), found {token!r}") from None



def _check_regular(path: Path) -> None:
    """Refuse a FIFO, device or socket before anything opens it (reading one blocks or never ends)."""
    kind = special_file(path)
    if kind:
        raise TBFileError(f"{path}: is {kind}, not a Wannier90 file")


