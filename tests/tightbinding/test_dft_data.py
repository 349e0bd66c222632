"""Tests on the real DFT + Wannier90 models in data/dft/ (skipped until they are there).

Expected physics: CrI3 is a charge-transfer insulator (I p at the valence-band top, Δ < U = 3 eV), VPS3 a
Mott–Hubbard insulator (V d at the valence-band top); t2g below eg on every metal; our bands equal wannierberri's
interpolation of the same files to 1e-8 eV.
"""

from pathlib import Path

import numpy as np
import pytest
from tb_helpers import random_k, wb_interpolation, wb_system_hr

from wannmag.tightbinding import CollinearTBModel, classify_zsa, crystal_fields, find_w90_models, read_w90, \
    read_w90_seed
from wannmag.tightbinding.w90 import gunzipped

DATA = Path(__file__).resolve().parents[2] / "data" / "dft"


def _find(name: str):
    """Directories under data/dft holding Wannier90 Hamiltonians of the compound ``name``."""
    if not DATA.exists():
        return []
    dirs = sorted({p.parent for p in DATA.rglob("*_hr.dat*") if name.lower() in str(p.relative_to(DATA)).lower()})
    return dirs


CRI3 = _find("cri3")
VPS3 = _find("vps3")
ALL = CRI3 + VPS3


@pytest.mark.skipif(not ALL, reason="no DFT+Wannier90 data in data/dft yet")
@pytest.mark.parametrize("d", ALL, ids=lambda p: str(p.relative_to(DATA)))
def test_wannierberri_agreement_on_real_models(d):
    d = gunzipped(d) or d  # the shipped files are gzip-compressed
    found = find_w90_models(d)
    seeds = [s for pair in found.collinear for s in pair] + found.single
    k = random_k(20, seed=5)
    for seed in seeds:
        m = read_w90_seed(seed, mdrs=False)
        _, Ewb = wb_interpolation(wb_system_hr(seed, m), k)
        assert np.abs(m.eigenvalues(k) - Ewb).max() < 1e-8


def _model(d):
    m = read_w90(d)
    assert isinstance(m, CollinearTBModel)
    return m


@pytest.mark.skipif(not ALL, reason="no DFT+Wannier90 data in data/dft yet")
@pytest.mark.parametrize("d", ALL, ids=lambda p: str(p.relative_to(DATA)))
def test_t2g_below_eg(d):
    for cf in crystal_fields(_model(d)):
        assert cf.eps_t2g < cf.eps_eg
        if cf.ten_dq_cluster is not None:
            assert cf.ten_dq_cluster > 0


@pytest.mark.skipif(not CRI3, reason="no CrI3 Wannier90 data in data/dft yet")
@pytest.mark.parametrize("d", CRI3, ids=lambda p: str(p.relative_to(DATA)))
def test_cri3_is_charge_transfer(d):
    c = classify_zsa(_model(d), U=3.0)
    assert c.regime == "charge-transfer", c.text()
    assert c.edges.insulating and c.vbm_character["p"] > c.vbm_character["d"], c.text()
    assert "I" in c.ligand_elements


@pytest.mark.skipif(not VPS3, reason="no VPS3 Wannier90 data in data/dft yet")
@pytest.mark.parametrize("d", VPS3, ids=lambda p: str(p.relative_to(DATA)))
def test_vps3_is_mott_hubbard(d):
    c = classify_zsa(_model(d), U=3.0)
    assert c.regime == "Mott–Hubbard", c.text()
    assert c.vbm_character["d"] > c.vbm_character["p"], c.text()


@pytest.mark.skipif(not VPS3, reason="no VPS3 Wannier90 data in data/dft yet")
def test_vps3_occupation_from_the_win_fermi_level():
    """VPS3's Wannier manifold holds P p orbitals, which have no nominal ionic count: the occupation comes from the
    DFT Fermi level in the .win file, E_F goes to mid-gap (used by `wannmag exchange mft` and the workflow)."""
    from wannmag.errors import WannmagError
    from wannmag.tightbinding import nominal_electron_count
    from wannmag.tightbinding.electronic import band_edges, midgap_fermi_level

    m = _model(VPS3[0])
    with pytest.raises(WannmagError, match="P"):
        nominal_electron_count(m)
    ef, how = midgap_fermi_level(m)
    be = band_edges(m)
    assert be.vbm < ef < be.cbm and ef == pytest.approx(0.5 * (be.vbm + be.cbm))
    assert ".win" in how and be.gap > 0.5
