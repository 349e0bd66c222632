"""Pieces shared by the sub-commands of the ``wannmag`` CLI."""

import argparse

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

    from ..errors import WannmagError

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
