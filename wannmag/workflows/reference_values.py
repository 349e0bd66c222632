"""Measured reference values of materials, for the comparisons in the reports of ``wannmag run``.

One place for every experimental number the workflows compare with (used by :mod:`wannmag.workflows.run` and
:mod:`wannmag.workflows.summary`).  Temperatures in K.
"""

from __future__ import annotations

__all__ = ["EXPERIMENT"]

#: measured ordering temperatures for the comparison in the report: reduced formula → (what was measured, value in K,
#: reference)
EXPERIMENT = {"CrI3": ("Curie temperature of the monolayer", 45.0, "Huang et al., Nature 546, 270 (2017)")}
