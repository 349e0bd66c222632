"""Shared fixtures of the workflows tests: a fake GPAW-like calculator for resume / moment-check tests."""

from pathlib import Path

import numpy as np
import pytest
from ase.calculators.calculator import Calculator, all_changes

DATA = Path(__file__).resolve().parent / "data"
REPO = Path(__file__).resolve().parents[2]
REF = REPO / "data" / "dft"


class FakeDFT(Calculator):
    """Returns E = -1 eV per atom − 0.01 Σ σ_iσ_j-ish, moments = initial moments × ``scale`` (flip/collapse control)."""

    implemented_properties = ["energy", "magmoms", "magmom"]
    instances = 0

    def __init__(self, params, txt, scale=None):
        super().__init__()
        FakeDFT.instances += 1
        self.params_ = params
        self.txt = txt
        self.scale = scale
        Path(txt).write_text("fake GPAW log\n")

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        m0 = atoms.get_initial_magnetic_moments()
        m = m0 * 1.05 if self.scale is None else m0 * np.asarray(self.scale)
        self.results = {"energy": -1.0 * len(atoms) - 0.01 * abs(m0.sum()), "magmoms": m, "magmom": m.sum()}

    def get_number_of_spins(self):
        return 2 if self.params_["spinpol"] else 1

    def get_magnetic_moments(self, atoms=None):
        return self.results["magmoms"]

    def get_magnetic_moment(self, atoms=None):
        return self.results["magmom"]

    def get_fermi_level(self):
        return 0.0

    def get_ibz_k_points(self):
        return np.zeros((2, 3))

    def get_eigenvalues(self, kpt=0, spin=0):
        return np.array([-2.0, -1.0, 1.0 + spin, 2.0]) + 0.1 * kpt

    def write(self, path, mode=""):
        Path(path).write_text(f"fake gpw mode={mode}\n")


@pytest.fixture
def fake_gpaw(monkeypatch):
    """Replace the GPAW factory of wannmag.workflows.dft by FakeDFT; returns a dict to steer moment scaling."""
    import wannmag.workflows.dft as dft

    FakeDFT.instances = 0
    control = {"scale": None}

    def factory(params, txt):
        return FakeDFT(params, txt, scale=control["scale"])

    monkeypatch.setattr(dft, "_make_calculator", factory)
    control["cls"] = FakeDFT
    return control
