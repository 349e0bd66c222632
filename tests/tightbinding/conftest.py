"""Shared fixtures: Slater–Koster d–p models with known answers and their synthetic Wannier90 files."""

from __future__ import annotations

import pytest

from wannmag.structures import cri3_monolayer
from wannmag.tightbinding import slater_koster_collinear, slater_koster_model, write_w90_model

# CrI3-like d-p parameters (eV); dd hoppings reach the 2nd and 3rd Cr-Cr neighbours (cutoff 8.2 Å) so that the
# Wigner-Seitz folding onto a small k grid is non-trivial
SK_PARAMS = dict(pds=-1.0, pdp=0.45, dds=-0.12, ddp=0.06, ddd=-0.015, pps=0.5, ppp=-0.12,
                 cutoff={"dd": 8.2})
SK_KW = dict(d_atoms="Cr", p_atoms="I", params=SK_PARAMS, eps_p=-1.5, crystal_field=(-0.1, 0.3))


@pytest.fixture(scope="session")
def cri3_atoms():
    return cri3_monolayer()


@pytest.fixture(scope="session")
def sk_model(cri3_atoms):
    """Spinless 28-orbital CrI3-like d-p model (Cr d + I p)."""
    return slater_koster_model(cri3_atoms, eps_d=0.0, **SK_KW)


@pytest.fixture(scope="session")
def sk_pair(cri3_atoms):
    """Collinear pair with a 3 eV exchange splitting on Cr d."""
    return slater_koster_collinear(cri3_atoms, exchange_splitting=3.0, eps_d=0.0, **SK_KW)


@pytest.fixture()
def w90_dir(tmp_path, sk_model):
    """sk_model written as Wannier90 files (hr + tb + win + centres + wsvec) on a 3x3x1 grid."""
    write_w90_model(sk_model, tmp_path / "cri3", mp_grid=(3, 3, 1), formats=("hr", "tb"), wsvec=True)
    return tmp_path
