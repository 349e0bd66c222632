"""Pieces shared by the sub-commands of the ``wannmag`` CLI."""

# Imports inside the functions are deliberate (CLI start-up: `wannmag --help` and argument errors stay fast).

import argparse

from ..errors import WannmagError

EPILOG = ("Conventions: TB energies in eV, exchange in meV, temperatures in K, lengths in Å.\n"
          "Spin Hamiltonian H = Σ_{i<j} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i, each bond once,\n"
          "classical spins of length S, J > 0 antiferromagnetic.")

FORMATTER = argparse.RawDescriptionHelpFormatter


def parse_pairs(items, option: str, cast=float, example: str = "Cr=1.5") -> dict:
    """``["Cr=1.5", "I=0"]`` → ``{"Cr": 1.5, "I": 0.0}``.  A malformed item, an unknown element symbol, an element
    given twice or a value that is not a finite number is one clear error naming ``option``; the range of the values
    is checked where they are used."""
    import math

    from ase.data import atomic_numbers

    out = {}
    for item in items or []:
        try:
            el, val = item.split("=")
            el = el.strip()
            value = cast(val)
        except ValueError:
            raise WannmagError(f"{option} expects ELEMENT=VALUE pairs (e.g. {example}), got {item!r}") from None
        if el not in atomic_numbers or atomic_numbers[el] == 0:
            raise WannmagError(f"{option}: {el!r} is not a chemical element symbol (in {item!r})")
        if isinstance(value, float) and not math.isfinite(value):
            raise WannmagError(f"{option}: the value for {el} must be a finite number, got {val!r}")
        if el in out:
            raise WannmagError(f"{option}: {el} given twice")
        out[el] = value
    return out


#: largest k-mesh per direction accepted on the command line (the memory check of the force theorem is finer)
MAX_KMESH = 1000


def check_number(value, option: str, minimum: float | None = None, maximum: float | None = None,
                 strict: bool = False, integer: bool = False) -> None:
    """One-line error unless ``value`` is a finite number ≥ ``minimum`` (> with ``strict``) and ≤ ``maximum``."""
    import math

    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and integer:
        ok = value == int(value)
    if ok and minimum is not None:
        ok = value > minimum if strict else value >= minimum
    if ok and maximum is not None:
        ok = value <= maximum
    if not ok:
        what = "an integer" if integer else "a finite number"
        rng = []
        if minimum is not None:
            rng.append(f"{'>' if strict else '≥'} {minimum:g}")
        if maximum is not None:
            rng.append(f"≤ {maximum:g}")
        raise WannmagError(f"{option} must be {what}{' ' + ' and '.join(rng) if rng else ''}, got {value}")


def check_kmesh(kmesh, option: str = "--kmesh") -> None:
    """Three positive integers, each ≤ MAX_KMESH."""
    if len(kmesh) != 3 or not all(isinstance(x, int) and 1 <= x <= MAX_KMESH for x in kmesh):
        raise WannmagError(f"{option} must be three integers from 1 to {MAX_KMESH}, got {' '.join(map(str, kmesh))}")


def element_symbols(items) -> list[str] | None:
    """``--magnetic`` values as element symbols (``cr`` → ``Cr``); an unknown symbol is one clear error."""
    from ase.data import chemical_symbols

    if not items:
        return None
    out = []
    for el in items:
        sym = str(el).strip()
        sym = sym[:1].upper() + sym[1:].lower()
        if sym not in chemical_symbols[1:]:
            raise WannmagError(f"--magnetic expects element symbols (e.g. Cr), got {el!r}")
        out.append(sym)
    return out


def output_dir(path: str, option: str = "--out"):
    """The directory ``path``, created with its parents; an existing file or an uncreatable directory is one error line."""
    from pathlib import Path

    out = Path(path)
    if out.exists() and not out.is_dir():
        raise WannmagError(f"{out}: {option} must be a directory, but this is an existing file")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WannmagError(f"{out}: cannot create the directory for {option} ({exc.strerror or exc})") from None
    return out
