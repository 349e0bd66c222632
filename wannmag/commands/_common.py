"""Pieces shared by the sub-commands of the ``wannmag`` CLI."""

import argparse

EPILOG = ("Conventions: TB energies in eV, exchange in meV, temperatures in K, lengths in Å.\n"
          "Spin Hamiltonian H = Σ_{i<j} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i, each bond once,\n"
          "classical spins of length S, J > 0 antiferromagnetic.")

FORMATTER = argparse.RawDescriptionHelpFormatter


def parse_pairs(items, option: str, cast=float, example: str = "Cr=1.5") -> dict:
    """``["Cr=1.5", "I=0"]`` → ``{"Cr": 1.5, "I": 0.0}``; a malformed item is one clear error naming ``option``."""
    from ..errors import WannmagError

    out = {}
    for item in items or []:
        try:
            el, val = item.split("=")
            out[el.strip()] = cast(val)
        except ValueError:
            raise WannmagError(f"{option} expects ELEMENT=VALUE pairs (e.g. {example}), got {item!r}") from None
    return out
