"""The wannierberri bridge: a checked ``_hr.dat``/``_tb.dat`` read into a ``System_R`` (wannierberri divides
every H(R) by its degeneracy, exactly once), :func:`to_wannierberri`, and :func:`_quiet` for its console output."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from ..model import TBError, TBFileError, TBModel
from .hr import HRLayout


@contextlib.contextmanager
def _quiet():
    """Silence wannierberri's console output (it prints progress to stdout and import notes to stderr)."""
    sink = io.StringIO()
    prev = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            yield sink
    finally:
        logging.disable(prev)


def _import_wannierberri():
    # local import: wannierberri takes seconds to import and is needed only when a model is read or bridged
    with _quiet():
        from wannierberri.system import System_R
    return System_R


def _wb_load(layout: HRLayout, seed_path: Path, lattice, centres):
    System_R = _import_wannierberri()
    try:
        with _quiet():
            if layout.kind == "hr":
                name = str(layout.path)
                if not name.endswith("_hr.dat"):
                    tmp = tempfile.mkdtemp(prefix="wannmag_hr_")
                    link = os.path.join(tmp, "model_hr.dat")
                    os.symlink(os.path.abspath(name), link)
                    seedname = link[:-7]
                else:
                    seedname = name[:-7]
                system = System_R.from_hr_file(seedname, wannier_centers_cart=np.asarray(centres, float),
                                               real_lattice=np.asarray(lattice, float))
            else:
                kw = {} if centres is None else {"wannier_centers_cart": np.asarray(centres, float)}
                system = System_R.from_tb_dat(tb_file=str(layout.path), **kw)
    except TBError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure is one line naming the file
        msg = str(exc).splitlines()[0] if str(exc) else ""
        raise TBFileError(f"{layout.path}: wannierberri could not read the file ({type(exc).__name__}: {msg})") from None
    return system


def to_wannierberri(model: TBModel):
    """A wannierberri ``System_R`` holding the same H(R) (for cross-checks and benchmarks)."""
    System_R = _import_wannierberri()
    from wannierberri.fourier.rvectors import Rvectors  # local: heavy optional import, as above

    with _quiet():
        s = System_R()
        s.real_lattice = np.array(model.lattice)
        s.num_wann = model.num_wann
        s.set_R_mat("Ham", model.H.copy())
        s.wannier_centers_cart = model.centres.copy()
        s.clear_cached_wcc()
        s.rvec = Rvectors(lattice=s.real_lattice, iRvec=model.R.copy(), shifts_left_red=s.wannier_centers_red)
        s.do_at_end_of_init()
    return s


