"""Loading Wannier90 models: :func:`read_w90` (directory, seedname or file; spin pairs), :func:`read_w90_seed`
(one seed, every check of the package docstring), :func:`find_w90_models`, :func:`gunzipped`."""

from __future__ import annotations

import atexit
import gzip
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..model import CollinearTBModel, TBError, TBFileError, TBModel
from ._files import _check_regular
from .bridge import _wb_load
from .centres import _assign, read_centres_xyz
from .hr import _hermiticity, check_hr_file, check_tb_file
from .mdrs import apply_mdrs, read_wsvec
from .win import _gpaw_to_w90_order, _projection_axes_to_global, parse_projections, read_win


def _find(seed: str, suffixes) -> Path | None:
    for s in suffixes:
        p = Path(seed + s)
        if p.exists():
            _check_regular(p)
            return p
    return None


def _win_for(seed: str) -> Path | None:
    p = _find(seed, [".win"])
    if p is None:
        base = re.sub(r"[._](up|dn|down)$", "", seed)
        if base != seed:
            p = _find(base, [".win"])
    return p


def read_w90_seed(seed, *, centre_tol: float = 0.5, mdrs: bool | None = None, hermitian_tol: float = 1e-4,
                  spin: str | None = None, prefer: str = "hr", win=None) -> TBModel:
    """Load one Wannier90 model ``seed`` (``seed_hr.dat`` or ``seed_tb.dat`` + ``seed.win`` + ``seed_centres.xyz``
    [+ ``seed_wsvec.dat``]) through wannierberri; see the module docstring for the checks and conventions.

    mdrs : apply ``seed_wsvec.dat`` (None: if the file exists).
    spin : ``"up"``/``"down"`` for one channel of a collinear pair.
    win : an explicit ``.win`` path (default ``seed.win``, or the ``.win`` of the seed without ``_up``/``_dn``).
    """
    seed = str(seed)
    for suf in ("_hr.dat", "_tb.dat", ".win"):
        if seed.endswith(suf):
            seed = seed[:-len(suf)]
    order = ["_hr.dat", "_tb.dat"] if prefer == "hr" else ["_tb.dat", "_hr.dat"]
    hfile = _find(seed, order)
    if hfile is None:
        raise TBFileError(f"{seed}: no Wannier90 Hamiltonian ({seed}_hr.dat or {seed}_tb.dat)")
    winp = Path(win) if win is not None else _win_for(seed)
    if winp is None:
        raise TBFileError(f"{seed}.win: no such file (the .win with the projections block is needed to assign "
                          "Wannier functions to atoms and orbitals)")
    wd = read_win(winp)
    specs = parse_projections(wd)
    nw_win = wd.num_wann
    if nw_win is not None and len(specs) != nw_win:
        raise TBFileError(f"{winp}: the projections block defines {len(specs)} Wannier functions but num_wann = "
                          f"{nw_win}")
    kind = "hr" if hfile.name.endswith("_hr.dat") else "tb"
    check = check_hr_file if kind == "hr" else check_tb_file
    layout = check(hfile, expected_num_wann=len(specs), expected_from=f"{winp} (projections)")
    if wd.mp_grid is not None:
        total = float(np.sum(1.0 / layout.ndegen))
        nk = int(np.prod(wd.mp_grid))
        if abs(total - nk) > 1e-6 * nk:
            raise TBFileError(f"{hfile}: Σ 1/degeneracy over the {layout.nrpts} R vectors is {total:.6g} but the "
                              f"mp_grid {wd.mp_grid} of {winp} has {nk} k-points; wrong degeneracy list?")
    if layout.lattice is not None and not np.allclose(layout.lattice, wd.lattice, atol=1e-4):
        raise TBFileError(f"{hfile}: lattice vectors differ from those of {winp}")
    cfile = _find(seed, ["_centres.xyz"])
    if cfile is not None:
        centres = read_centres_xyz(cfile, layout.num_wann)
        csource = str(cfile)
    elif kind == "tb":
        centres, csource = None, str(hfile)
    else:
        centres, csource = np.array([s.site for s in specs]), f"{winp} (projection sites; no {seed}_centres.xyz)"
    system = _wb_load(layout, hfile, wd.lattice, centres)
    R = np.array(system.rvec.iRvec, dtype=int)
    if R.shape != layout.R.shape or np.any(R != layout.R):
        raise TBFileError(f"{hfile}: R vectors read by wannierberri differ from the file layout")  # pragma: no cover
    H = np.array(system.Ham_R, dtype=complex)
    _hermiticity(layout, R, H, hermitian_tol)
    if centres is None:
        centres = np.array(system.wannier_centers_cart, float)
        if not np.all(np.isfinite(centres)):
            raise TBFileError(f"{hfile}: Wannier centres (position matrix) are not finite numbers")
    if not (np.isfinite(centre_tol) and centre_tol > 0):
        raise TBError(f"the centre tolerance must be a positive number of Å, got {centre_tol}")
    orbitals = _assign(wd, specs, centres, centre_tol, csource)
    H = _projection_axes_to_global(winp, specs, orbitals, H)
    wsfile = _find(seed, ["_wsvec.dat"])
    applied = False
    if mdrs is None:
        mdrs = wsfile is not None
    if mdrs:
        if wsfile is None:
            raise TBFileError(f"{seed}_wsvec.dat: no such file (needed for MDRS)")
        R, H = apply_mdrs(R, H, read_wsvec(wsfile, R, layout.num_wann))
        applied = True
    perm = _gpaw_to_w90_order(specs)
    if perm is not None:  # GPAW-written projections: Wannier90 orbital order within every shell
        orbitals = [orbitals[i] for i in perm]
        centres = np.asarray(centres)[perm]
        H = H[:, perm][:, :, perm]
    model = TBModel(R, H, wd.lattice, centres=centres, orbitals=orbitals, atoms=wd.atoms,
                    name=Path(seed).name, spin=spin, hermitian_tol=max(hermitian_tol, 1e-6), source=str(hfile))
    model.win = wd
    model.mdrs_applied = applied
    model.fermi_energy_hint = wd.fermi_energy
    return model


@dataclass
class W90Models:
    """Wannier90 models found at a path: ``collinear`` pairs (up, down seeds) and ``single`` seeds."""

    collinear: list[tuple[str, str]]
    single: list[str]


def find_w90_models(path) -> W90Models:
    """Wannier90 seeds at ``path``: a directory, a seedname prefix, or one of the seed's files."""
    p = Path(path)
    seeds: list[str] = []
    if p.is_dir():
        for f in sorted(p.iterdir()):
            for suf in ("_hr.dat", "_tb.dat"):
                if f.name.endswith(suf):
                    seeds.append(str(f)[:-len(suf)])
    else:
        s = str(p)
        for suf in ("_hr.dat", "_tb.dat", ".win", "_centres.xyz", "_wsvec.dat"):
            if s.endswith(suf):
                s = s[:-len(suf)]
                break
        for cand in (s, s + "_up", s + "_dn", s + "_down", s + ".up", s + ".dn"):
            if _find(cand, ["_hr.dat", "_tb.dat"]):
                seeds.append(cand)
        if not seeds and not p.exists():
            raise TBFileError(f"{path}: no such file, directory or Wannier90 seed")
    seeds = sorted(set(seeds))
    if not seeds:
        raise TBFileError(f"{path}: no Wannier90 Hamiltonian (*_hr.dat or *_tb.dat) found")
    pairs, used = [], set()
    for s in seeds:
        m = re.match(r"(.*)[._]up$", s)
        if m:
            for dn in (m.group(1) + "_dn", m.group(1) + "_down", m.group(1) + ".dn", m.group(1) + ".down"):
                if dn in seeds:
                    pairs.append((s, dn))
                    used.update({s, dn})
                    break
    return W90Models(collinear=pairs, single=[s for s in seeds if s not in used])


def gunzipped(src) -> Path | None:
    """If directory ``src`` holds gzip-compressed Wannier90 files (``*_hr.dat.gz`` …, as shipped in ``data/dft``),
    a temporary directory with all its Wannier90 files decompressed (removed at interpreter exit); else None."""
    src = Path(src)
    if not src.is_dir() or not any(f.name.endswith((".dat.gz", ".xyz.gz", ".win.gz")) for f in src.iterdir()):
        return None
    tmp = Path(tempfile.mkdtemp(prefix="wannmag_w90_"))
    atexit.register(shutil.rmtree, tmp, True)
    for f in src.iterdir():
        if not f.is_file():
            continue
        if f.suffix == ".gz":
            try:
                with gzip.open(f, "rb") as fi, open(tmp / f.name[:-3], "wb") as fo:
                    shutil.copyfileobj(fi, fo)
            except (OSError, EOFError) as exc:
                raise TBFileError(f"{f}: not a readable gzip file ({type(exc).__name__})") from None
        elif f.suffix in (".dat", ".win", ".xyz", ".json", ".wout"):
            shutil.copy(f, tmp / f.name)
    return tmp


def read_w90(path, *, centre_tol: float = 0.5, mdrs: bool | None = None, hermitian_tol: float = 1e-4,
             prefer: str = "hr", kind: str = "auto") -> TBModel | CollinearTBModel:
    """Load the Wannier90 model at ``path`` (directory, seedname or file; gzip-compressed files in a directory are
    read too).

    A spin pair (``S_up``/``S_dn``) gives a :class:`CollinearTBModel` (unless ``kind="single"``), otherwise a
    :class:`TBModel`.  If several candidates exist, the collinear pair is preferred; ambiguous choices are errors.
    """
    p = Path(path)
    tmp = gunzipped(p if p.is_dir() else p.parent) if (p.is_dir() or p.parent.is_dir()) else None
    if tmp is not None:
        path = tmp if p.is_dir() else tmp / p.name
    found = find_w90_models(path)
    kw = dict(centre_tol=centre_tol, mdrs=mdrs, hermitian_tol=hermitian_tol, prefer=prefer)
    if kind in ("auto", "collinear") and found.collinear:
        if len(found.collinear) > 1:
            raise TBFileError(f"{path}: several spin pairs ({', '.join(Path(u).name for u, _ in found.collinear)}); "
                              "give the seedname")
        up, dn = found.collinear[0]
        mu = read_w90_seed(up, spin="up", **kw)
        md = read_w90_seed(dn, spin="down", **kw)
        return CollinearTBModel(mu, md, name=re.sub(r"[._]up$", "", Path(up).name))
    if kind == "collinear":
        raise TBFileError(f"{path}: no spin pair (S_up_hr.dat and S_dn_hr.dat) found")
    singles = found.single or [s for pair in found.collinear for s in pair]
    if len(singles) > 1:
        raise TBFileError(f"{path}: several Wannier90 models ({', '.join(Path(s).name for s in singles)}); "
                          "give the seedname")
    return read_w90_seed(singles[0], **kw)
