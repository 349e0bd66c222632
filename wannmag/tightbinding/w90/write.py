"""Writers of synthetic Wannier90 files (``_hr.dat``, ``_tb.dat``, ``.win``, ``_centres.xyz``, ``_wsvec.dat``) and
:func:`write_w90_model`, which folds a model onto the Wigner–Seitz supercell exactly as Wannier90 writes it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase import Atoms

from ..harmonics import ORBITAL_NAMES
from ..model import TBError, TBModel
from .mdrs import fold_to_grid, mdrs_shifts


def write_hr(path, R, H_file, ndegen, header: str = "written by wannmag") -> None:
    """Write a Wannier90 ``_hr.dat`` (values are written as given, i.e. *not* divided by ndegen)."""
    R = np.asarray(R, int)
    nw = H_file.shape[1]
    with open(path, "w") as f:
        f.write(header.strip() + "\n")
        f.write(f"{nw:12d}\n{len(R):12d}\n")
        for s in range(0, len(R), 15):
            f.write("".join(f"{d:5d}" for d in ndegen[s:s + 15]) + "\n")
        for r, h in zip(R, H_file):
            for n in range(nw):
                for m in range(nw):
                    f.write(f"{r[0]:5d}{r[1]:5d}{r[2]:5d}{m + 1:5d}{n + 1:5d}{h[m, n].real:22.14f}"
                            f"{h[m, n].imag:22.14f}\n")


def write_tb(path, lattice, R, H_file, ndegen, centres, header: str = "written by wannmag") -> None:
    """Write a Wannier90 ``_tb.dat`` (Hamiltonian as given, positions: diagonal Wannier centres at R = 0)."""
    R = np.asarray(R, int)
    nw = H_file.shape[1]
    with open(path, "w") as f:
        f.write(header.strip() + "\n")
        for v in np.asarray(lattice):
            f.write(f"{v[0]:22.14f}{v[1]:22.14f}{v[2]:22.14f}\n")
        f.write(f"{nw:12d}\n{len(R):12d}\n")
        for s in range(0, len(R), 15):
            f.write("".join(f"{d:5d}" for d in ndegen[s:s + 15]) + "\n")
        for r, h in zip(R, H_file):
            f.write(f"\n{r[0]:5d}{r[1]:5d}{r[2]:5d}\n")
            for n in range(nw):
                for m in range(nw):
                    f.write(f"{m + 1:5d}{n + 1:5d}{h[m, n].real:22.14f}{h[m, n].imag:22.14f}\n")
        for r, deg in zip(R, ndegen):
            f.write(f"\n{r[0]:5d}{r[1]:5d}{r[2]:5d}\n")
            for n in range(nw):
                for m in range(nw):
                    pos = centres[m] * deg if (m == n and not r.any()) else np.zeros(3)
                    f.write(f"{m + 1:5d}{n + 1:5d}" + "".join(f"{x:18.10f}{0.0:18.10f}" for x in pos) + "\n")


def write_centres(path, centres, atoms: Atoms | None = None) -> None:
    """Write a Wannier90-style ``_centres.xyz``."""
    n = len(centres) + (len(atoms) if atoms is not None else 0)
    with open(path, "w") as f:
        f.write(f"{n:6d}\n Wannier centres, written by wannmag\n")
        for c in centres:
            f.write(f"X {c[0]:18.10f}{c[1]:18.10f}{c[2]:18.10f}\n")
        if atoms is not None:
            for s, p in zip(atoms.get_chemical_symbols(), atoms.positions):
                f.write(f"{s:2s}{p[0]:18.10f}{p[1]:18.10f}{p[2]:18.10f}\n")


def write_wsvec(path, R, shifts: dict, num_wann: int) -> None:
    """Write a ``_wsvec.dat`` in Wannier90's layout from MDRS ``shifts`` (see :func:`mdrs_shifts`)."""
    with open(path, "w") as f:
        f.write("## written by wannmag with use_ws_distance=.true.\n")
        for iR, r in enumerate(np.asarray(R)):
            for m in range(num_wann):
                for n in range(num_wann):
                    Ts = shifts[(iR, m, n)]
                    f.write(f"{r[0]:5d}{r[1]:5d}{r[2]:5d}{m + 1:5d}{n + 1:5d}\n{len(Ts):5d}\n")
                    for T in Ts:
                        f.write(f"{T[0]:5d}{T[1]:5d}{T[2]:5d}\n")


def _projection_lines(model: TBModel) -> tuple[list[str], list[str]]:
    """(atom labels, projection lines) reproducing the model's orbital order under Wannier90's rules."""
    sym = model.atoms.get_chemical_symbols()
    letters = {0: "s", 1: "p", 2: "d", 3: "f"}
    per_atom: list[tuple[int, tuple]] = []
    for o in model.orbitals:
        if not per_atom or per_atom[-1][0] != o.atom:
            per_atom.append((o.atom, ()))
        a, names = per_atom[-1]
        if o.name not in names:
            per_atom[-1] = (a, names + (o.name,))
    labels = [f"{s}{i + 1}" for i, s in enumerate(sym)]
    lines = []
    for a, names in per_atom:
        ls = sorted({model.orbitals[model.select(atom=a)[0]].l} | {o.l for o in model.orbitals if o.atom == a})
        full = all(set(ORBITAL_NAMES[l]) <= set(names) for l in ls) and len(names) == sum(2 * l + 1 for l in ls)
        spec = ";".join(letters[l] for l in ls) if full else ";".join(names)
        lines.append(f"{labels[a]}:{spec}")
    # check the model order is the Wannier90 order of these lines
    expect = []
    for a, names in per_atom:
        ls = sorted({o.l for o in model.orbitals if o.atom == a})
        for l in ls:
            for nm in ORBITAL_NAMES[l]:
                if nm in names:
                    expect.append((a, nm))
    if expect != [(o.atom, o.name) for o in model.orbitals if o.spin in (None, "up")]:
        raise TBError("model orbital order cannot be expressed as a Wannier90 projections block")
    return labels, lines


def write_win(path, atoms: Atoms, labels: list[str], projections: list[str], num_wann: int, mp_grid=None,
              spinors: bool = False, extra: dict | None = None) -> None:
    """Write a minimal ``.win`` (lattice, atoms_cart, projections, num_wann, mp_grid, extra keywords)."""
    with open(path, "w") as f:
        f.write(f"num_wann = {num_wann}\n")
        if mp_grid is not None:
            f.write(f"mp_grid = {mp_grid[0]} {mp_grid[1]} {mp_grid[2]}\n")
        if spinors:
            f.write("spinors = true\n")
        for k, v in (extra or {}).items():
            f.write(f"{k} = {v}\n")
        f.write("\nbegin unit_cell_cart\nang\n")
        for v in atoms.cell.array:
            f.write(f"  {v[0]:16.10f} {v[1]:16.10f} {v[2]:16.10f}\n")
        f.write("end unit_cell_cart\n\nbegin atoms_cart\nang\n")
        for lb, p in zip(labels, atoms.positions):
            f.write(f"  {lb:6s} {p[0]:16.10f} {p[1]:16.10f} {p[2]:16.10f}\n")
        f.write("end atoms_cart\n\nbegin projections\n")
        for ln in projections:
            f.write(f"  {ln}\n")
        f.write("end projections\n")


def write_w90_model(model: TBModel, seed, mp_grid=(4, 4, 1), formats=("hr",), wsvec: bool = False,
                    centres: bool = True, win: bool = True, extra: dict | None = None) -> dict[str, Path]:
    """Write a model as the Wannier90 files of ``seed`` (``seed_hr.dat``/``seed_tb.dat``, ``seed.win``,
    ``seed_centres.xyz``, optionally ``seed_wsvec.dat``), folded onto the Wigner–Seitz supercell of ``mp_grid``
    exactly as Wannier90 writes it (non-trivial degeneracies on the supercell boundary).  Returns the paths.
    """
    seed = str(seed)
    R, Hf, ndeg = fold_to_grid(model, mp_grid)
    out = {}
    if "hr" in formats:
        out["hr"] = Path(seed + "_hr.dat")
        write_hr(out["hr"], R, Hf, ndeg)
    if "tb" in formats:
        out["tb"] = Path(seed + "_tb.dat")
        write_tb(out["tb"], model.lattice, R, Hf, ndeg, model.centres)
    if centres:
        out["centres"] = Path(seed + "_centres.xyz")
        write_centres(out["centres"], model.centres, model.atoms)
    if win and model.atoms is not None:
        labels, lines = _projection_lines(model)
        out["win"] = Path(seed + ".win")
        write_win(out["win"], model.atoms, labels, lines, model.num_wann, mp_grid, spinors=model.spinor, extra=extra)
    if wsvec:
        out["wsvec"] = Path(seed + "_wsvec.dat")
        write_wsvec(out["wsvec"], R, mdrs_shifts(model.lattice, model.centres, R, mp_grid), model.num_wann)
    return out


