"""Channel-by-channel superexchange of t2g³ (S = 3/2) magnets from Wannier hoppings, validated by exact
diagonalisation (issue 6).  Derivations: docs/superexchange.md.

Internal convention: H = Σ_{i<j} J_ij S_i·S_j, each bond once, |S| = 3/2, J > 0 antiferromagnetic, meV.

* :func:`superexchange` (analysis) — per bond: path decomposition (direct, M–X–M per ligand orbital, M–X–X–M),
  coherent vs incoherent sums, exchange per channel (t2g–t2g MH, t2g–eg MH, CT two-hole, CT×direct); the result
  gives a :class:`~wannmag.magnetism.SpinModel` via ``to_spin_model()``.
* :mod:`.formulas` — the analytic channel formulas (Kanamori U, U' = U − 2J_H, J_H, 10Dq, Δ, U_p, J_p).
* :mod:`.ed` — Fock-space exact diagonalisation and numerical perturbation theory of small clusters.
* :func:`~.green.green_channels` — the non-perturbative counterpart: orbital-resolved force theorem (t2g–t2g,
  t2g–eg, eg–eg) on the spin-polarised model, for charge-transfer bonds where t_pd/Δ ≳ 1;
* :func:`~.cluster.cluster_channels` — non-perturbative channels by exact diagonalisation of the bond's M2X2
  cluster (restricted Fock space), with the two-ligand interference that identifies antiphase paths; where the
  expansion is out of range (:data:`EXPANSION_LIMIT`) the perturbative bond has no J (``BondAnalysis.J`` is None);
* :func:`plot_channels` — bar chart; :mod:`.synthetic` — Slater–Koster CrI3-like / VPS3-like models.
"""

from .analysis import (  # noqa: F401
                       CATEGORIES,
                       EXPANSION_LIMIT,
                       BondAnalysis,
                       Channel,
                       SuperexchangeResult,
                       analyse_bond,
                       resolve_parameters,
                       superexchange,
)
from .formulas import (  # noqa: F401
                       ION_DEFAULTS,
                       LIGAND_DEFAULTS,
                       KanamoriParameters,
                       SuperexchangeError,
                       ct_direct_exchange,
                       ct_exchange,
                       exchange_from_blocks,
                       mh_exchange,
)
from .paths import BondHoppings, NoLigandWarning, PathTerm, bond_hoppings, path_terms  # noqa: F401
from .plot import plot_channels  # noqa: F401
from .synthetic import cri3_like_model, vps3_like_model  # noqa: F401
