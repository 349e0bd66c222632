"""Wannier90 ``.win``: lattice, atoms, parameters and the projections block, parsed with Wannier90's ordering
rules (GPAW-written projections put into Wannier90 order); shells with custom projection axes rotated back to the
global Cartesian frame.  Lengths in Å."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols

from ..harmonics import ORBITAL_NAMES, frame_matrix
from ..model import Orbital, TBFileError
from ._files import BOHR, MAX_LENGTH, _lines


@dataclass
class ProjectionSpec:
    """One Wannier function as defined by the projections block."""

    site: np.ndarray            # Cartesian position of the projection site (Å)
    label: str | None           # species label (None for f=/c= sites)
    element: str | None
    l: int
    mr: int
    name: str
    spin: str | None
    line: int                   # 1-based line number in the .win file
    axes: np.ndarray | None = None  # rows x, y, z of the projection frame if not the default
    gpaw_shell: int | None = None   # GPAW-written projections: id of the (site, n, l) shell (m in GPAW order)


@dataclass
class WinData:
    path: Path
    lattice: np.ndarray
    atoms: Atoms
    labels: list[str]
    parameters: dict
    projection_lines: list[tuple[int, str]] = field(default_factory=list)
    projection_comments: dict[int, str] = field(default_factory=dict)  # line → text after '#' or '!'

    @property
    def num_wann(self) -> int | None:
        v = self.parameters.get("num_wann")
        return int(v) if isinstance(v, (int, float)) else None

    @property
    def spinors(self) -> bool:
        return bool(self.parameters.get("spinors", False))

    @property
    def mp_grid(self):
        v = self.parameters.get("mp_grid")
        return tuple(int(x) for x in v) if isinstance(v, list) and len(v) == 3 else None

    @property
    def fermi_energy(self) -> float | None:
        v = self.parameters.get("fermi_energy")
        return float(v) if isinstance(v, (int, float)) else None


def _element_of_label(label: str) -> str:
    m = re.match(r"([A-Za-z]{1,2})", label)
    if not m:
        return label
    s = m.group(1)
    cand = s[0].upper() + s[1:].lower()
    if cand in chemical_symbols:
        return cand
    return s[0].upper() if s[0].upper() in chemical_symbols else cand


def _block_lines(path: Path, lines: list[str], name: str) -> list[tuple[int, str]] | None:
    start = end = None
    for k, ln in enumerate(lines):
        s = re.sub(r"[!#].*", "", ln).strip().lower()
        if re.match(rf"begin\s+{name}\b", s):
            start = k
        elif re.match(rf"end\s+{name}\b", s) and start is not None:
            end = k
            break
    if start is None:
        return None
    if end is None:
        raise TBFileError(f"{path}:{start + 1}: 'begin {name}' without 'end {name}'")
    out = []
    for k in range(start + 1, end):
        s = re.sub(r"[!#].*", "", lines[k]).strip()
        if s:
            out.append((k + 1, s))
    return out


def read_win(path) -> WinData:
    """Lattice, atoms, parameters and the projections block of a Wannier90 ``.win`` file."""
    import wannier90io  # local import: it takes ~0.8 s (pydantic models) and only .win reading needs it

    path = Path(path)
    lines = _lines(path, "Wannier90 .win file")
    text = "\n".join(lines) + "\n"
    try:
        raw = wannier90io.parse_win_raw(text)
    except Exception as exc:  # noqa: BLE001
        raise TBFileError(f"{path}: cannot parse the .win file ({type(exc).__name__}: {exc})") from None
    params = {k.lower(): v for k, v in raw.get("parameters", {}).items()}
    cell_block = _block_lines(path, lines, "unit_cell_cart")
    if not cell_block:
        raise TBFileError(f"{path}: no 'begin unit_cell_cart' block (lattice vectors needed)")
    unit = 1.0
    rows = []
    for ln, s in cell_block:
        if s.lower() in ("bohr", "ang", "angstrom"):
            unit = BOHR if s.lower() == "bohr" else 1.0
            continue
        try:
            rows.append([float(x) for x in s.replace(",", " ").split()[:3]])
        except ValueError:
            raise TBFileError(f"{path}:{ln}: lattice vector is not 3 numbers: {s!r}") from None
        if not all(np.isfinite(x) and abs(x) <= MAX_LENGTH for x in rows[-1]):
            raise TBFileError(f"{path}:{ln}: lattice vector must be 3 finite numbers (≤ {MAX_LENGTH:g} Å): {s!r}")
    if len(rows) != 3 or any(len(r) != 3 for r in rows):
        raise TBFileError(f"{path}:{cell_block[0][0]}: unit_cell_cart must contain 3 lattice vectors")
    lattice = np.array(rows) * unit
    labels, pos, frac = [], [], None
    for name in ("atoms_cart", "atoms_frac"):
        blk = _block_lines(path, lines, name)
        if blk is None:
            continue
        frac = name == "atoms_frac"
        unit = 1.0
        for ln, s in blk:
            if s.lower() in ("bohr", "ang", "angstrom"):
                unit = BOHR if s.lower() == "bohr" else 1.0
                continue
            tok = s.split()
            try:
                xyz = [float(x) for x in tok[1:4]]
            except ValueError:
                xyz = []
            if len(tok) < 4 or len(xyz) != 3:
                raise TBFileError(f"{path}:{ln}: atom line must be 'LABEL x y z', found {s!r}")
            if not all(np.isfinite(x) and abs(x) <= MAX_LENGTH for x in xyz):
                raise TBFileError(f"{path}:{ln}: atom position must be 3 finite numbers (≤ {MAX_LENGTH:g}), found {s!r}")
            labels.append(tok[0])
            pos.append(np.array(xyz) if frac else np.array(xyz) * unit)
        break
    if not labels:
        raise TBFileError(f"{path}: no 'begin atoms_cart' or 'begin atoms_frac' block")
    pos = np.array(pos)
    cart = pos @ lattice if frac else pos
    atoms = Atoms([_element_of_label(lb) for lb in labels], positions=cart, cell=lattice, pbc=True)
    atoms.info["source"] = str(path)
    atoms.info["labels"] = labels
    if abs(np.linalg.det(lattice)) < 1e-6:
        raise TBFileError(f"{path}:{cell_block[0][0]}: the lattice vectors span no volume")
    _check_parameters(path, lines, params)
    proj = _block_lines(path, lines, "projections") or []
    comments = {}
    for ln, _ in proj:
        m = re.search(r"[!#](.*)", lines[ln - 1])
        if m:
            comments[ln] = m.group(1).strip()
    return WinData(path, lattice, atoms, labels, params, proj, comments)


def _param_line(lines: list[str], key: str) -> int | None:
    for k, ln in enumerate(lines):
        if re.match(rf"\s*{key}\s*[=:\s]", ln, flags=re.IGNORECASE):
            return k + 1
    return None


def _check_parameters(path: Path, lines: list[str], params: dict) -> None:
    """``fermi_energy`` a finite number (eV), ``num_wann`` a positive integer, ``mp_grid`` three positive integers:
    a malformed value is an error naming the .win line, never silently ignored."""
    def bad(key, what):
        ln = _param_line(lines, key)
        raise TBFileError(f"{path}{f':{ln}' if ln else ''}: {key} must be {what}, found {params[key]!r}")

    if "fermi_energy" in params:
        v = params["fermi_energy"]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
            bad("fermi_energy", "a finite number (eV)")
    if "num_wann" in params:
        v = params["num_wann"]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or v != int(v) or v < 1:
            bad("num_wann", "a positive integer")
    if "mp_grid" in params:
        v = params["mp_grid"]
        if (not isinstance(v, list) or len(v) != 3
                or not all(isinstance(x, (int, float)) and not isinstance(x, bool) and np.isfinite(x)
                           and x == int(x) and x >= 1 for x in v)):
            bad("mp_grid", "three positive integers")


_ANG = {
    "s": [(0, 1)], "p": [(1, m) for m in (1, 2, 3)], "d": [(2, m) for m in range(1, 6)],
    "f": [(3, m) for m in range(1, 8)],
    "sp": [(-1, 1), (-1, 2)], "sp2": [(-2, m) for m in (1, 2, 3)], "sp3": [(-3, m) for m in (1, 2, 3, 4)],
    "sp3d": [(-4, m) for m in range(1, 6)], "sp3d2": [(-5, m) for m in range(1, 7)],
}
for _l, _names in ORBITAL_NAMES.items():
    for _m, _n in enumerate(_names, start=1):
        _ANG[_n] = [(_l, _m)]
_HYBRID_NAMES = {-1: "sp", -2: "sp2", -3: "sp3", -4: "sp3d", -5: "sp3d2"}


def _orbital_name(l: int, mr: int) -> str:
    if l >= 0:
        return ORBITAL_NAMES[l][mr - 1]
    return f"{_HYBRID_NAMES[l]}-{mr}"


def _parse_vec(path, ln, s):
    try:
        v = [float(x) for x in s.replace(",", " ").split()]
    except ValueError:
        v = []
    if len(v) != 3 or not all(np.isfinite(v)) or max(abs(x) for x in v) > MAX_LENGTH:
        raise TBFileError(f"{path}:{ln}: expected 3 finite numbers in {s!r}")
    return np.array(v)


def parse_projections(win: WinData) -> list[ProjectionSpec]:
    """The Wannier functions defined by the projections block, in Wannier90 order (see the module docstring)."""
    path = win.path
    if not win.projection_lines:
        raise TBFileError(f"{path}: no 'begin projections' block; cannot assign the Wannier functions to atoms "
                          "and orbitals")
    out: list[ProjectionSpec] = []
    label_map: dict[str, list[int]] = {}
    for i, lb in enumerate(win.labels):
        label_map.setdefault(lb.lower(), []).append(i)
    unit = 1.0
    gpaw = _gpaw_shells(win)
    for ln, s in win.projection_lines:
        low = s.lower()
        if low in ("bohr", "ang", "angstrom"):
            unit = BOHR if low == "bohr" else 1.0
            continue
        if low.startswith("random"):
            raise TBFileError(f"{path}:{ln}: random projections cannot be assigned to atoms and orbitals")
        spins = [None]
        msp = re.search(r"\(([ud, ]+)\)", s)
        body = re.sub(r"\(.*?\)", "", s)
        body = re.sub(r"\[.*?\]", "", body)
        if win.spinors:
            spins = ["up", "down"]
            if msp:
                sp = [x.strip() for x in msp.group(1).split(",") if x.strip()]
                spins = [{"u": "up", "d": "down"}[x] for x in sp]
        parts = [p.strip() for p in body.split(":")]
        if len(parts) < 2 or not parts[0] or not parts[1]:
            raise TBFileError(f"{path}:{ln}: projection must be 'site:orbitals', found {s!r}")
        site, ang = parts[0], parts[1]
        axes = None
        zax, xax = np.array([0, 0, 1.0]), np.array([1.0, 0, 0])
        for opt in parts[2:]:
            key, _, val = opt.partition("=")
            key = key.strip().lower()
            if key == "z":
                zax = _parse_vec(path, ln, val)
            elif key == "x":
                xax = _parse_vec(path, ln, val)
        if not (np.allclose(zax / np.linalg.norm(zax), [0, 0, 1]) and np.allclose(xax / np.linalg.norm(xax), [1, 0, 0])):
            z = zax / np.linalg.norm(zax)
            x = xax - z * (xax @ z)
            x /= np.linalg.norm(x)
            axes = np.array([x, np.cross(z, x), z])
        # sites
        if site.lower().startswith(("f=", "c=")):
            v = _parse_vec(path, ln, site[2:])
            cart = v @ win.lattice if site.lower().startswith("f=") else v * unit
            sites = [(cart, None, None)]
        else:
            idx = label_map.get(site.lower())
            if idx is None:
                raise TBFileError(f"{path}:{ln}: projection site {site!r} is not an atom label of the atoms block "
                                  f"(labels: {', '.join(sorted(set(win.labels)))})")
            sites = [(win.atoms.positions[i], win.labels[i], win.atoms.get_chemical_symbols()[i]) for i in idx]
        # angular states
        states = set()
        for a in ang.split(";"):
            a = a.strip().lower().replace(" ", "")
            if not a:
                continue
            if a.startswith("l="):
                m = re.fullmatch(r"l=(-?\d)(?:,mr=([\d,]+))?", a)
                if not m:
                    raise TBFileError(f"{path}:{ln}: cannot read angular momentum {a!r}")
                l = int(m.group(1))
                nmax = 2 * l + 1 if l >= 0 else {-1: 2, -2: 3, -3: 4, -4: 5, -5: 6}.get(l, 0)
                if nmax == 0 or l > 3:
                    raise TBFileError(f"{path}:{ln}: unsupported l = {l}")
                mrs = [int(x) for x in m.group(2).split(",") if x] if m.group(2) else list(range(1, nmax + 1))
                if any(not 1 <= x <= nmax for x in mrs):
                    raise TBFileError(f"{path}:{ln}: mr out of range 1…{nmax} for l = {l}")
                states.update((l, x) for x in mrs)
            elif a in _ANG:
                states.update(_ANG[a])
            else:
                raise TBFileError(f"{path}:{ln}: unknown orbital {a!r} in projection {s!r}")
        if not states:
            raise TBFileError(f"{path}:{ln}: projection {s!r} defines no orbital")
        shell = None
        if ln in gpaw:  # GPAW: an s projection standing for orbital m of the (n, l) shell named in the comment
            if states != {(0, 1)} or len(sites) != 1:
                raise TBFileError(f"{path}:{ln}: GPAW projection comment '# n = …, l = …' on a projection that is "
                                  f"not a single-site 's': {s!r}")
            shell, l_g, m_g = gpaw[ln]
            states = {(l_g, W90_MR_OF_GPAW_M[l_g][m_g])}
        ordered = sorted(states)  # l ascending (-5 … 3), then mr ascending — the Wannier90 loop order
        for cart, label, el in sites:
            for l, mr in ordered:
                for spin in spins:
                    out.append(ProjectionSpec(site=np.asarray(cart, float), label=label, element=el, l=l, mr=mr,
                                              name=_orbital_name(l, mr), spin=spin, line=ln, axes=axes,
                                              gpaw_shell=shell))
    return out


#: GPAW's real spherical harmonics (gpaw/sphere/spherical_harmonics.py ``names``: p = y, z, x; d = xy, yz, 3z²−r²,
#: zx, x²−y², all with positive lobes along the positive axes like Wannier90's) → Wannier90 mr of each GPAW m
W90_MR_OF_GPAW_M = {0: [1], 1: [3, 1, 2], 2: [5, 3, 1, 2, 4]}
_GPAW_COMMENT = re.compile(r"n\s*=\s*(-?\d+)\s*,\s*l\s*=\s*(-?\d+)", re.IGNORECASE)


def _gpaw_shells(win: WinData) -> dict[int, tuple[int, int, int]]:
    """Projection lines written by GPAW's ``gpaw.wannier.wannier90`` (``f=x, y, z : s # n = 3, l = 2``: one line per
    orbital, the PAW projector (n, l, m) of the atom, m in GPAW's order): {line: (shell id, l, m)}.  Consecutive
    lines with the same site, n and l form one shell and must hold all 2l + 1 orbitals (the comment gives no m)."""
    path = win.path
    tagged = []
    for ln, s in win.projection_lines:
        m = _GPAW_COMMENT.fullmatch(win.projection_comments.get(ln, "").strip())
        tagged.append((ln, s.split(":")[0].replace(" ", "").lower(), (int(m.group(1)), int(m.group(2))) if m else None))
    out: dict[int, tuple[int, int, int]] = {}
    k, shell = 0, 0
    while k < len(tagged):
        ln, site, nl = tagged[k]
        if nl is None:
            k += 1
            continue
        n, l = nl
        if l not in W90_MR_OF_GPAW_M:
            raise TBFileError(f"{path}:{ln}: GPAW projection with l = {l}: only s, p and d shells are supported")
        group = [ln]
        while (k + len(group) < len(tagged) and tagged[k + len(group)][1] == site
               and tagged[k + len(group)][2] == nl and len(group) < 2 * l + 1):
            group.append(tagged[k + len(group)][0])
        if len(group) != 2 * l + 1:
            raise TBFileError(f"{path}:{ln}: GPAW projection lines give n and l but not m: {len(group)} of the "
                              f"{2 * l + 1} orbitals of the n = {n}, l = {l} shell at {site} cannot be named; "
                              "project onto whole shells")
        for m_g, x in enumerate(group):
            out[x] = (shell, l, m_g)
        shell += 1
        k += len(group)
    return out


def _gpaw_to_w90_order(specs: list[ProjectionSpec]) -> np.ndarray | None:
    """Permutation p (new orbital i = file orbital p[i]) that puts every GPAW shell into Wannier90 order (mr
    ascending, spin innermost); None if the file order is already the Wannier90 order."""
    perm = np.arange(len(specs))
    shells: dict[int, list[int]] = {}
    for i, sp in enumerate(specs):
        if sp.gpaw_shell is not None:
            shells.setdefault(sp.gpaw_shell, []).append(i)
    for idx in shells.values():
        perm[idx] = sorted(idx, key=lambda i: (specs[i].mr, specs[i].spin != "up"))
    return None if np.all(perm == np.arange(len(specs))) else perm



def _projection_axes_to_global(win_path, specs: list[ProjectionSpec], orbitals: list[Orbital], H: np.ndarray):
    """Express shells projected with custom axes (``z=…:x=…``) in the global Cartesian frame.

    A Wannier function of such a shell is f_m(x'·r, y'·r, z'·r) = Σ_m' D_m'm f_m'(r), D = frame_matrix(l, axes);
    with the block-orthogonal O (O[shell, shell] = D) the global-frame Hamiltonian is O H(R) Oᵀ.
    """
    if not any(sp.axes is not None for sp in specs):
        return H
    nw = len(specs)
    O = np.eye(nw)
    groups: dict[tuple, list[int]] = {}
    for i, (sp, o) in enumerate(zip(specs, orbitals)):
        if sp.axes is not None:
            groups.setdefault((o.atom, o.l, o.spin, sp.line), []).append(i)
    for (atom, l, spin, line), idx in groups.items():
        names = [orbitals[i].name for i in idx]
        if l < 0 or sorted(names) != sorted(ORBITAL_NAMES[l]):
            raise TBFileError(f"{win_path}:{line}: custom projection axes need complete shells of real harmonics "
                              f"(found {', '.join(names)} on atom {atom})")
        order = [idx[names.index(n)] for n in ORBITAL_NAMES[l]]
        O[np.ix_(order, order)] = frame_matrix(l, specs[idx[0]].axes)
    return np.einsum("ab,rbc,dc->rad", O, H, O)


