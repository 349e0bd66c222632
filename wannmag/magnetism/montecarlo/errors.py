"""Errors and warnings of the Monte Carlo layer."""

from ...errors import WannmagError


class MonteCarloError(WannmagError):
    """Bad Monte Carlo input (sizes, temperatures, sweeps, model, checkpoint) described in one line."""


class MerminWagnerWarning(UserWarning):
    """The model is two-dimensional (or lower) with a continuous symmetry that the order would break: its true
    ordering temperature is zero (Mermin–Wagner), and the finite-size peaks of C and χ drift to zero with growing L
    (logarithmically slowly).  The quoted "ordering temperature" is then a finite-size crossover, not a Tc."""
