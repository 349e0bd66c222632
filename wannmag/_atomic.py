"""Atomic file writes shared by every layer (results are never left half-written: temp file + os.replace).

The temporary file sits next to the target as ``.<name>.wm<pid>-<host>.<random>.tmp`` (``host`` a short hash of the
host name): several processes may write into one directory at once, and :func:`remove_stale_temporaries` removes
only the leftovers of writers that are gone (a dead process on this host, or older than ``max_age`` seconds), never
the in-flight file of a live one.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import io
import json
import os
import re
import socket
import tempfile
import time
from pathlib import Path

import numpy as np

__all__ = ["atomic_write_text", "atomic_write_bytes", "atomic_write_json", "atomic_savefig", "jsonable",
           "read_json", "remove_stale_temporaries", "special_file", "locked_dir"]

_HOST = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]
_TMP_RE = re.compile(r"\.wm(\d+)-([0-9a-f]{8})\.[^.]*\.tmp$")


def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


_FILE_MODE = _umask_mode()  # mkstemp creates 0600 files; results get the usual mode (0644 with umask 022)


def atomic_write_bytes(path, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.wm{os.getpid()}-{_HOST}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode())


def atomic_savefig(fig, path, **kwargs) -> Path:
    """Save a matplotlib figure atomically (rendered in memory, then temp file + os.replace): a run killed while
    plotting leaves the previous figure or none, never a truncated one.  The format follows the suffix (png
    default); ``kwargs`` go to ``fig.savefig``."""
    path = Path(path)
    buf = io.BytesIO()
    fig.savefig(buf, format=kwargs.pop("format", path.suffix.lstrip(".").lower() or "png"), **kwargs)
    return atomic_write_bytes(path, buf.getvalue())


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: alive, owned by someone else
        return True
    return True


def remove_stale_temporaries(path, max_age: float = 3600.0) -> list[Path]:
    """Remove the temporary files that interrupted atomic writes of ``path`` left behind (``.<name>.*.tmp``), but
    only stale ones: written by a process of this host that no longer runs, or (other hosts on a shared file
    system, older naming) not modified for ``max_age`` seconds.  The in-flight temporary file of another live
    writer is never touched.  Returns the removed paths."""
    path = Path(path)
    removed = []
    now = time.time()
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        m = _TMP_RE.search(tmp.name)
        try:
            old = now - tmp.stat().st_mtime > max_age
        except OSError:
            continue
        stale = old or (m is not None and m.group(2) == _HOST and not _pid_alive(int(m.group(1))))
        if stale:
            try:
                tmp.unlink()
                removed.append(tmp)
            except OSError:
                pass
    return removed


def jsonable(obj):
    """Convert numpy scalars/arrays, tuples and paths into JSON-serialisable Python objects."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, complex):
        return [obj.real, obj.imag]
    return obj


def atomic_write_json(path, data, indent: int = 1) -> Path:
    return atomic_write_text(path, json.dumps(jsonable(data), indent=indent))


def special_file(path) -> str | None:
    """What ``path`` is when it exists but is neither a regular file nor a directory ("a FIFO (named pipe)", "a
    device", "a socket"), else None.  Every reader checks this before opening: reading a FIFO or a device blocks or
    never ends."""
    import stat

    try:
        mode = Path(path).stat().st_mode
    except OSError:
        return None  # missing or inaccessible: the reader's own open() says so
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    return ("a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")


def read_json(path, error=ValueError):
    """Parse a JSON file; a missing, unreadable, special (FIFO, device) or malformed file raises ``error`` with one
    line naming it."""
    path = Path(path)
    kind = special_file(path)
    if kind:
        raise error(f"{path}: is {kind}, not a JSON file")
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except IsADirectoryError:
        raise error(f"{path}: is a directory, not a JSON file") from None
    except UnicodeDecodeError:
        raise error(f"{path}: not a text file") from None
    except json.JSONDecodeError as exc:
        raise error(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None


@contextlib.contextmanager
def locked_dir(path):
    """An exclusive ``flock`` on the directory holding ``path`` for a read-modify-write of that file (no lock file
    left behind; the file itself cannot carry the lock, it is replaced on every atomic write).  Writers that take it
    never interleave; readers need no lock (every write is atomic)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock
