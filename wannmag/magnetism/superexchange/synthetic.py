"""Synthetic Slater–Koster d–p models of the two prototype materials, built with the TB layer's builder on
:func:`wannmag.structures.cri3_monolayer` and :func:`wannmag.structures.vps3_monolayer`.

The numbers are round, literature-motivated magnitudes (eV), not fits:

* CrI3-like (charge-transfer, edge-sharing, Cr–I–Cr ≈ 93°): I 5p is extended and shallow, so strong p–d hopping
  (pdσ = −1.0, pdπ = 0.45, Harrison ratio pdπ/pdσ ≈ −0.45) and a small level difference ε_d − ε_p = 2.5 eV < U
  (charge-transfer regime in the Zaanen–Sawatzky–Allen sense); Cr–Cr = 4.04 Å is long, so the direct d–d hopping is
  weak (ddσ = −0.05, ddπ = 0.02, ddδ = −0.005).  I–I: ppσ = 0.5, ppπ = −0.1 at the shortest contact (3.82 Å),
  scaled as d⁻² (Harrison) to every I–I contact up to 4.4 Å (the inter-octahedral contacts of the M–X–X–M paths).
* VPS3-like (Mott–Hubbard, V–V = 3.38 Å): a large direct overlap (ddσ = −0.40, ddπ = 0.20, ddδ = −0.03, of the
  order of Harrison's d–d estimate at this distance), the same p–d hopping, and a deep S 3p level
  ε_d − ε_p = 5.0 eV > U (Mott–Hubbard regime); S–S as I–I (from 3.38 Å, up to 4.4 Å).
* Both: a bare crystal field of 1.0 eV (eg above t2g, on-site, in the local octahedral frame; the rest of the ligand
  field comes from the explicit p–d hopping).
"""

from __future__ import annotations

from ...structures import cri3_monolayer, vps3_monolayer
from ...tightbinding.slater_koster import SKParameters, slater_koster_model

__all__ = ["SYNTHETIC", "cri3_like_model", "vps3_like_model"]

#: ligand–ligand hopping to every X–X contact up to 4.4 Å (Harrison d⁻² from the shortest contact), so that the
#: inter-octahedral M–X–X–M paths of the 2NN/3NN bonds exist
CRI3_SK = {"pds": -1.0, "pdp": 0.45, "pps": 0.5, "ppp": -0.1, "dds": -0.05, "ddp": 0.02, "ddd": -0.005,
           "d0": {"pp": 3.82}, "eta": {"pp": 2.0}, "cutoff": {"pp": 4.4}}
VPS3_SK = {"pds": -1.0, "pdp": 0.45, "pps": 0.5, "ppp": -0.1, "dds": -0.40, "ddp": 0.20, "ddd": -0.03,
           "d0": {"pp": 3.38}, "eta": {"pp": 2.0}, "cutoff": {"pp": 4.4}}


def cri3_like_model(eps_p: float = -2.5, ten_dq: float = 1.0, **sk):
    """Cr d + I p Slater–Koster model of the CrI3 monolayer (see the module docstring)."""
    return slater_koster_model(cri3_monolayer(), d_atoms="Cr", p_atoms="I", params=SKParameters(**{**CRI3_SK, **sk}),
                               eps_d=0.0, eps_p=eps_p, crystal_field=(0.0, ten_dq), name="CrI3-like (Slater–Koster)")


def vps3_like_model(eps_p: float = -5.0, ten_dq: float = 1.0, **sk):
    """V d + S p Slater–Koster model of the VPS3 monolayer (see the module docstring)."""
    return slater_koster_model(vps3_monolayer(), d_atoms="V", p_atoms="S", params=SKParameters(**{**VPS3_SK, **sk}),
                               eps_d=0.0, eps_p=eps_p, crystal_field=(0.0, ten_dq), name="VPS3-like (Slater–Koster)")


SYNTHETIC = {"cri3": cri3_like_model, "vps3": vps3_like_model}
