"""Analytic ordering-temperature estimates beside Monte Carlo, and quantum corrections to classical numbers.

Package convention (as everywhere): H = Σ_{i<j} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i − g μ_B B·S_i, every bond once,
classical spins of length S, J > 0 antiferromagnetic, meV; temperatures K.  Every number here is an *estimate* to
be read next to the classical Monte Carlo T_c, never instead of it.

1. Torelli–Olsen formula (classical, ferromagnets with easy-axis anisotropy)
----------------------------------------------------------------------------
D. Torelli and T. Olsen, 2D Mater. 6, 015028 (2019) fitted classical Monte Carlo critical temperatures of 2D
Heisenberg ferromagnets with single-ion anisotropy by

    T_c = T_c^Ising · f(−A/J),    T_c^Ising = t_I S² J / k_B,    f(x) = tanh^{1/4}[(6/N_nn) ln(1 + γ x)],  γ = 0.033,

in *their* convention H = −½ Σ_{i≠j} J S_i·S_j + A Σ_i (S_i^z)² (each bond counted once with −J, J > 0
ferromagnetic; A < 0 easy axis, A the coefficient per S_z²), N_nn nearest neighbours, t_I = k_B T_c/(J S²) of the
Ising model of the lattice (honeycomb t_I = 2/ln(2 + √3) = 1.5187, Houtappel 1950; the source quotes 1.52).
**Source actually read**: the paper itself was not reachable with the search tools here; the formula, the
convention and the worked number (J = 3.1 meV, A = −0.38 meV, S = 3/2, N = 3 → T_c = 37 K) are those of the GPAW
summer-school CrI3 exercise that cites the paper (gpaw ``doc/summerschools/summerschool24/magnetism/magnetism1.py``:
J = (E_AFM − E_FM)/(3S²) per magnetic atom, A = (E_z − E_x)/S² per atom).  Limits: f(x) → 1 for x → ∞ (Ising),
f(0) = 0 (Mermin–Wagner).

Converter from the package: J_TO = −J_iso (one bond, once), A_TO = A_zz − A_xx of a uniaxial S·A·S, i.e.
−A_TO·S² = S²(A_xx − A_zz) = ΔE per ion (E_in − E_out) of :mod:`wannmag.magnetism.anisotropy`.

Models that are not a NN ferromagnet with a single-ion term (:func:`torelli_olsen_estimate`):
* Collinear antiferromagnets (VPS3 Néel): for *classical* spins S_j → σ_j S_j (σ = ±1 the order's pattern) is a
  change of variables with unit Jacobian, so the model with bonds σ_iσ_j J_ij has the same partition function and
  a ferromagnetic ground state; the estimate is made for that gauge-transformed model (single-ion terms unchanged).
  Bonds that connect equal σ and are AF (the VPS3 J2, intra-sublattice) stay AF there: they frustrate the FM
  and enter only through the two effective parameters below.  (For quantum spins the map is not canonical: it is
  the classical Tc that this estimates.)
* Further neighbours and anisotropic exchange: J_eff from the classical spin stiffness of the ordered state,
  ρ = ¾ J_eff S² d₁² (the honeycomb NN relation, d₁ the NN distance; :meth:`SpinWaves.stiffness`), and the
  anisotropy from the LSWT gap of the (gauge-transformed) FM, A_eff = −Δ/(2S) (the NN FM + single-ion relation
  Δ = 2S(A_xx − A_zz)), so that XXZ/Kitaev/dipolar contributions to the gap count.  For a NN model with a
  single-ion term only both reduce to J and A exactly (tested).  Alternatives are reported next to it (J1 only;
  J_eff from the exchange field Σ_n z_n J_n / N_nn), to show how much the choice matters.
* The fit's range: the paper's fit was made for anisotropies of 2D materials; for −A/J ≪ 10⁻² f ∝ x^{1/4} is an
  extrapolation (the true small-anisotropy law is logarithmic) — flagged ``extrapolated``.
* Easy-plane or gapless models: no T_c from this formula (returned as None with the reason).

2. Renormalisation-group estimate (Irkhin–Katanin type) — NOT implemented, on purpose
-----------------------------------------------------------------------------------------
Wanted: T_c of a 2D Heisenberg magnet with weak easy-axis anisotropy from its spin stiffness ρ_s and gap Δ, the
self-consistent RG/1/N result of V. Yu. Irkhin and A. A. Katanin, PRB 57, 379 (1998) and PRB 60, 2990 (1999), and V.
Yu. Irkhin, A. A. Katanin, M. I. Katsnelson, PRB 60, 1082 (1999). **What was searched and found** (search tools of
the session, issue 19 item 4; no live web): the easy-plane companion paper (Irkhin & Katanin, cond-mat/9811003, "The
Kosterlitz-Thouless and magnetic transition temperatures in layered magnets with a weak easy-plane anisotropy") is
indexed, but only its first page is returned (abstract; its Eq. (1), T_KT = (π/2) J S² of the 2D XY model; the text
stops before the RG formulas and before it recalls the easy-axis results); the quantum quasi-2D antiferromagnet
paper (cond-mat/9703013, PRB 57, 379) likewise only its abstract and introduction; PRB 60, 1082 and PRB 60, 2990 not
at all; no public repository, documentation page or issue thread quotes the easy-axis formula; the CrI3 papers that
might apply or discuss it (Lado & Fernández-Rossier, 2D Mater. 4, 035002 (2017), whose abstract says only "using
spin wave theory we estimate the Curie temperature"; Torelli & Olsen, arXiv:1808.06400; T. Olsen, arXiv:1908.11115)
were reachable only as abstracts. The general form that spin-wave theory leads one to expect (k_B T_c ∝ ρ_s divided
by a logarithm of T_c/Δ, with correction terms) is not enough: the constants inside and beside the logarithm, the
two-loop terms, the definition of ρ_s (classical or renormalised by quantum fluctuations, per area or per bond) and
of Δ (magnon gap or anisotropy field) change the number, and they are not reproduced from memory. So the estimate is
stored as None with this reason (:data:`RG_NOT_IMPLEMENTED`), next to its ingredients computed for the model:
``rho_s_meV`` (classical stiffness per area, :meth:`SpinWaves.stiffness`, twist energy E = ½ ρ_s ∫(∇θ)² d²r), the
LSWT gap of the order (``gap_meV``) and of the gauge-transformed ferromagnet (``gap_gauge_fm_meV``; for an
antiferromagnet the former is the exchange-enhanced gap of the AF magnon, the latter the gap of the ferromagnet with
the same classical partition function, §1). Which of these the formula takes is part of what must be checked in the
paper.

3. Quantum corrections (always beside the classical number)
-----------------------------------------------------------
(a) Quantum RPA (Tyablikov) for spin S: :meth:`SpinWaves.tc_rpa` (``tc_quantum``), exactly (S+1)/S times the
classical-spin RPA of the same M(k).

(b) Classical ↔ quantum mapping, A. El Mendili and M. E. Zhitomirsky, arXiv:2602.16501 (2026): the partition
function of quantum spins S is, to leading order in 1/[S(S+1)], that of classical spins of length
S_C = √(S(S+1)) with J_C = J S(S+1), H_C = g μ_B H √(S(S+1)) and D_C = D [S(S+1) − 3/4] for a single-ion term
D S_z² (n the unit vector: J_C n_i·n_j, D_C n_z²).  **Source actually read**: the abstract (S_C = √(S(S+1))) and
a third-party summary of the paper (sciencestack.ai) that states J_C, H_C and D_C; the paper's own text was not
reachable, so the D_C rule is unverified against it.  (A single-spin high-temperature expansion matched at second
order gives D_C = D √(S(S+1)[S(S+1) − 3/4]) instead: 3.35 D vs 3.00 D for S = 3/2 — the single-ion part of the
mapping is the uncertain one.)

In package terms (classical spins of length S′ = √(S(S+1)), :func:`quantum_mapped_model`): exchange and field
unchanged (S′² J = J_C), the dipolar part of the single-ion tensor unchanged (a two-site bilinear term, it scales
like exchange), and the intrinsic single-ion tensor A (traceless part) multiplied by

    c = [S/(S − ½)] · [S(S+1) − 3/4] / [S(S+1)]      (``single_ion="product_states"``, the default)

where S/(S − ½) converts the classical A fitted to DFT product-state energies to the quantum D
(⟨S_z²⟩ = S(S − ½)cos²θ + S/2 in a spin coherent state, tested exactly; ΔE = A S² = D S(S − ½)).  With
``single_ion="quantum"`` A is taken to be the quantum D already (c = [S(S+1) − 3/4]/[S(S+1)]).  S = 1/2: the
single-ion term is a constant and is dropped.  S = 3/2: c = 1.2 (product states) or 0.8 (quantum D).

:func:`quantum_corrected_tc` returns T_c^q = T_c^cl × ratio, ratio = T_c(mapped)/T_c(original) evaluated with an
estimator that reacts to both changes: the classical-spin RPA of the full model (any collinear order; primary) and
Torelli–Olsen (beside it).  The exchange scaling alone gives exactly S(S+1)/S² = (S+1)/S (T_c of a classical model
scales with its energy scale); the rest is the change of the anisotropy/exchange ratio.  A classical Monte Carlo
run of the mapped model gives the same without the estimator (recommended for the final number).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.linalg import expm

from ..errors import WannmagError
from .anisotropy.lswt import LSWTError, SpinWaves, spin_waves_for_order
from .spinmodel import MEV_PER_K, SpinModel

__all__ = ["ISING_TC_REDUCED", "TO_GAMMA", "TcEstimateError", "TorelliOlsenResult", "QuantumTcResult",
           "torelli_olsen_f", "torelli_olsen_tc", "RG_NOT_IMPLEMENTED", "package_to_torelli_olsen",
           "gauge_to_ferromagnet",
           "torelli_olsen_estimate", "coherent_state_sz2", "quantum_mapped_model", "quantum_corrected_tc",
           "tc_estimates"]

#: k_B T_c / (J S²) of the nearest-neighbour Ising model, by coordination number (exact: honeycomb
#: 2/ln(2+√3) (Houtappel 1950), square 2/ln(1+√2) (Onsager 1944), triangular 4/ln 3 (Houtappel 1950)).
ISING_TC_REDUCED = {3: 2.0 / math.log(2.0 + math.sqrt(3.0)), 4: 2.0 / math.log(1.0 + math.sqrt(2.0)),
                    6: 4.0 / math.log(3.0)}
#: γ of the Torelli–Olsen fit
TO_GAMMA = 0.033
#: below this −A/J the fit is an extrapolation (flagged, not refused)
TO_SMALL_X = 1e-2

TO_SOURCE = ("D. Torelli and T. Olsen, 2D Mater. 6, 015028 (2019), formula as given (with a worked CrI3 number) in "
             "the GPAW summer-school exercise doc/summerschools/summerschool24/magnetism/magnetism1.py; the paper "
             "itself was not reachable here")
RG_NOT_IMPLEMENTED = (
    "not implemented: the easy-axis RG formula of Irkhin & Katanin (PRB 57, 379 (1998); PRB 60, 2990 (1999)) and "
    "Irkhin, Katanin & Katsnelson (PRB 60, 1082 (1999)) was not reachable with the search tools here (only the "
    "first page of the easy-plane companion cond-mat/9811003 and the abstract of cond-mat/9703013 are indexed, "
    "no repository quotes it); its constants and the definitions of rho_s and Delta are not reproduced from "
    "memory. Ingredients stored for when it is checked against the paper")
EZ_SOURCE = ("A. El Mendili and M. E. Zhitomirsky, arXiv:2602.16501 (2026): S_C = sqrt(S(S+1)) (abstract); "
             "J_C = J S(S+1), H_C = g muB H sqrt(S(S+1)), D_C = D[S(S+1) - 3/4] as stated by a third-party summary "
             "(sciencestack.ai); the paper's text was not reachable, the D_C rule is unverified")


class TcEstimateError(WannmagError):
    """An estimate that cannot be made for this model (wrong order, easy plane, missing ingredients)."""


# --------------------------------------------------------------------------- Torelli–Olsen
def torelli_olsen_f(x, n_nn: int = 3):
    """f(x) = tanh^{1/4}[(6/N_nn) ln(1 + γx)], x = −A/J ≥ 0 (their convention, module docstring)."""
    x = np.asarray(x, float)
    if np.any(x < 0):
        raise TcEstimateError(f"Torelli–Olsen needs an easy axis (−A/J ≥ 0), got {np.min(x):.4g}")
    return np.tanh(6.0 / n_nn * np.log1p(TO_GAMMA * x)) ** 0.25


def torelli_olsen_tc(J_meV: float, A_meV: float, S: float, n_nn: int = 3) -> float:
    """T_c (K) of the Torelli–Olsen formula in *their* convention: J > 0 ferromagnetic (H = −½Σ_{i≠j} J S_i·S_j),
    A the coefficient of Σ_i S_iz² (< 0 easy axis), spin S, N_nn nearest neighbours (3, 4 or 6)."""
    if n_nn not in ISING_TC_REDUCED:
        raise TcEstimateError(f"no Ising T_c stored for N_nn = {n_nn} (3 honeycomb, 4 square, 6 triangular)")
    if not J_meV > 0:
        raise TcEstimateError(f"Torelli–Olsen is for ferromagnets (J > 0 in their convention), got J = {J_meV:.4g} meV")
    return float(ISING_TC_REDUCED[n_nn] * S ** 2 * J_meV / MEV_PER_K * torelli_olsen_f(-A_meV / J_meV, n_nn))


def package_to_torelli_olsen(J_iso_meV: float, single_ion) -> tuple[float, float]:
    """(J_TO, A_TO) from the package's isotropic NN exchange (J > 0 AF, each bond once) and a uniaxial single-ion
    tensor (3×3, meV, S·A·S, symmetry axis z): J_TO = −J, A_TO = A_zz − ½(A_xx + A_yy)."""
    A = np.asarray(single_ion, float)
    return -float(J_iso_meV), float(A[2, 2] - 0.5 * (A[0, 0] + A[1, 1]))


def gauge_to_ferromagnet(model: SpinModel, pattern) -> SpinModel:
    """The model with every bond tensor multiplied by σ_iσ_j (classical S_j → σ_j S_j; module docstring), so that
    the collinear state ``pattern`` becomes the ferromagnet.  Single-ion terms and field unchanged (field: only for
    B = 0, else refused — it is odd in S)."""
    sigma = np.asarray(pattern, float)
    if sigma.shape != (model.n_sites,) or not np.all(np.abs(sigma) == 1):
        raise TcEstimateError(f"pattern must hold {model.n_sites} values ±1")
    if np.any(model.b_field) and not np.all(sigma == 1):
        raise TcEstimateError("the sublattice map S_j → −S_j changes a Zeeman term; give a zero-field model")
    d = model.as_dict()
    for b in d["bonds"]:
        b["J"] = (np.asarray(b["J"]) * sigma[b["i"]] * sigma[b["j"]]).tolist()
    return SpinModel.from_dict(d)


def _nn_shell(model: SpinModel):
    """(d₁, N_nn): nearest-neighbour distance and coordination (bonds of that length per site)."""
    lengths = np.array([model.bond_length(b) for b in model.bonds])
    d1 = float(lengths.min())
    n_nn = 2 * int(np.sum(np.abs(lengths - d1) < 1e-3 * d1)) / model.n_sites
    return d1, n_nn


@dataclass
class TorelliOlsenResult:
    """Torelli–Olsen estimate (K) with its converted parameters (module docstring).  ``tc_K`` None: not
    applicable (``reason``)."""

    tc_K: float | None
    reason: str | None = None
    order: str = "FM"
    S: float = 0.0
    n_nn: int = 3
    J_eff_meV: float = 0.0
    A_eff_meV: float = 0.0
    x: float = 0.0
    gap_meV: float = 0.0
    rho_meV_A2: float = 0.0
    tc_ising_K: float = 0.0
    extrapolated: bool = False
    gauge_transformed: bool = False
    alternatives: dict = field(default_factory=dict)
    source: str = TO_SOURCE

    def as_dict(self) -> dict:
        d = asdict(self)
        d["formula"] = ("Tc = t_I S^2 J_eff/k_B tanh^(1/4)[(6/N_nn) ln(1 + 0.033 x)], x = -A_eff/J_eff; J_eff from "
                        "the spin stiffness rho = (3/4) J_eff S^2 d1^2, A_eff = -gap/(2S) of the (gauge-transformed) "
                        "FM; t_I exact Ising value of the lattice")
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TorelliOlsenResult":
        return cls(**{k: v for k, v in d.items() if k != "formula"})


def _ordered(model, order, axis):
    sw, ax = spin_waves_for_order(model, order=order, axis=axis)
    sigma = np.sign(sw.v @ ax)
    return sw, ax, sigma


def torelli_olsen_estimate(model: SpinModel, order: str = "FM", axis=None) -> TorelliOlsenResult:
    """Torelli–Olsen T_c of ``model`` in the collinear ``order`` (module docstring for the mapping of AF orders,
    further neighbours and exchange anisotropy).  Not applicable (tc_K None, reason): non-honeycomb/square/triangular
    coordination, mixed spins, easy plane or gapless, unstable gauge-transformed FM."""
    sw, ax, sigma = _ordered(model, order, axis)
    big = sw.model
    S_all = big.spins
    if np.ptp(S_all) > 1e-12:
        return TorelliOlsenResult(None, "sites with different S: the formula is for one spin length", order=order)
    S = float(S_all[0])
    d1, n_nn = _nn_shell(big)
    nn = int(round(n_nn))
    if abs(n_nn - nn) > 1e-9 or nn not in ISING_TC_REDUCED:
        return TorelliOlsenResult(None, f"coordination {n_nn} has no stored Ising T_c", order=order, S=S)
    gauge = not np.all(sigma == sigma[0])
    fm = gauge_to_ferromagnet(big, sigma) if gauge else big
    try:
        swf = SpinWaves(fm, pattern=np.ones(fm.n_sites), axis=ax)
        gap = swf.gap()
    except LSWTError as exc:
        return TorelliOlsenResult(None, f"the (gauge-transformed) FM is not a stable state: {exc}", order=order,
                                  S=S, n_nn=nn, gauge_transformed=gauge)
    rho = swf.stiffness()["rho_meV_A2"]
    J_eff = rho / (0.75 * S ** 2 * d1 ** 2)
    A_eff = -gap / (2 * S)
    res = TorelliOlsenResult(None, order=order, S=S, n_nn=nn, J_eff_meV=float(J_eff), A_eff_meV=float(A_eff),
                             gap_meV=float(gap), rho_meV_A2=float(rho), gauge_transformed=gauge)
    if not J_eff > 0:
        res.reason = f"the twist stiffness is not positive (J_eff = {J_eff:.4g} meV): no ferromagnet to map"
        return res
    if gap < 1e-4 * S * J_eff * nn:   # a Goldstone mode comes out of Colpa's method at ~1e-6 of the band width
        res.reason = (f"no spin-wave gap ({gap:.2g} meV, numerically zero: easy plane or isotropic): no finite T_c "
                      "from this formula (KT or none)")
        return res
    res.x = float(-A_eff / J_eff)
    res.tc_ising_K = float(ISING_TC_REDUCED[nn] * S ** 2 * J_eff / MEV_PER_K)
    res.tc_K = torelli_olsen_tc(J_eff, A_eff, S, nn)
    res.extrapolated = bool(res.x < TO_SMALL_X)
    # how much the choice of J_eff matters: NN only, and the exchange field Σ_n z_n J_n / N_nn
    lengths = np.array([fm.bond_length(b) for b in fm.bonds])
    Jiso = np.array([b.J_iso for b in fm.bonds])
    J1 = -float(np.mean(Jiso[np.abs(lengths - d1) < 1e-3 * d1]))
    Jfield = -float(2 * np.sum(Jiso) / fm.n_sites / nn)
    for name, J in (("J1_only", J1), ("exchange_field", Jfield)):
        if J > 0:
            res.alternatives[name] = {"J_eff_meV": J, "x": float(-A_eff / J),
                                      "tc_K": torelli_olsen_tc(J, A_eff, S, nn)}
        else:
            res.alternatives[name] = {"J_eff_meV": J, "tc_K": None, "reason": "not ferromagnetic"}
    return res


# --------------------------------------------------------------------------- quantum corrections
def coherent_state_sz2(S: float, theta: float) -> float:
    """⟨S_z²⟩ in the spin coherent state |S, S⟩ rotated by θ from z, from the spin matrices (exact check of
    S(S − ½)cos²θ + S/2)."""
    m = np.arange(S, -S - 1, -1)
    n = len(m)
    Sz = np.diag(m)
    Sp = np.zeros((n, n))
    for k in range(1, n):
        Sp[k - 1, k] = math.sqrt(S * (S + 1) - m[k] * (m[k] + 1))
    Sy = (Sp - Sp.T) / 2j

    psi = expm(-1j * theta * Sy) @ np.eye(n)[0]
    return float(np.real(np.conj(psi) @ (Sz @ Sz) @ psi))


def _single_ion_factor(S: float, single_ion: str) -> float:
    X = S * (S + 1)
    if S <= 0.5:
        return 0.0
    ez = (X - 0.75) / X
    if single_ion == "product_states":
        return S / (S - 0.5) * ez
    if single_ion == "quantum":
        return ez
    raise TcEstimateError(f"single_ion must be 'product_states' or 'quantum', got {single_ion!r}")


def quantum_mapped_model(model: SpinModel, single_ion: str = "product_states") -> SpinModel:
    """The classical model (package convention, spins of length √(S(S+1))) that El Mendili–Zhitomirsky map the
    quantum spin-S model to (module docstring): exchange, field and dipolar part unchanged, intrinsic single-ion
    tensor (traceless part) × c(S)."""
    d = model.as_dict()
    new_A = []
    for k, site in enumerate(d["sites"]):
        S = float(site["spin"])
        site["spin"] = math.sqrt(S * (S + 1))
        A_int = model.single_ion_intrinsic[k]
        iso = np.trace(A_int) / 3.0 * np.eye(3)
        A_new = iso + _single_ion_factor(S, single_ion) * (A_int - iso) + model.single_ion_dipolar[k]
        new_A.append(A_new.tolist())
    d["single_ion"] = new_A
    d.setdefault("meta", {})
    d["meta"] = dict(d["meta"], quantum_mapping={"source": EZ_SOURCE, "single_ion": single_ion,
                                                 "spins_quantum": model.spins.tolist()})
    return SpinModel.from_dict(d)


@dataclass
class QuantumTcResult:
    """Quantum-corrected T_c by the El Mendili–Zhitomirsky mapping: tc_quantum_K = tc_classical_K × ratio."""

    ratio: float | None
    ratio_method: str
    tc_classical_K: float | None = None
    tc_quantum_K: float | None = None
    exchange_factor: float = 1.0
    single_ion_factor: float = 1.0
    single_ion_rule: str = "product_states"
    ratio_rpa: float | None = None
    ratio_torelli_olsen: float | None = None
    notes: list = field(default_factory=list)
    source: str = EZ_SOURCE

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "QuantumTcResult":
        return cls(**d)


def quantum_corrected_tc(model: SpinModel, tc_classical_K: float | None = None, order: str = "FM", axis=None,
                         single_ion: str = "product_states") -> QuantumTcResult:
    """T_c^q = T_c^cl × ratio with ratio = T_c(mapped model)/T_c(model) from the classical-spin RPA (primary) and
    Torelli–Olsen (beside it, when applicable) — module docstring.  ``tc_classical_K`` None: only the ratio."""
    S = model.spins
    if np.ptp(S) > 1e-12:
        raise TcEstimateError("quantum_corrected_tc needs one spin length for all sites")
    S0 = float(S[0])
    mapped = quantum_mapped_model(model, single_ion)
    res = QuantumTcResult(None, "classical-spin RPA of the mapped / original model",
                          exchange_factor=(S0 + 1) / S0, single_ion_factor=_single_ion_factor(S0, single_ion),
                          single_ion_rule=single_ion)
    sw0, ax, _ = _ordered(model, order, axis)
    sw1, _, _ = _ordered(mapped, order, ax)
    t0, t1 = sw0.tc_rpa(), sw1.tc_rpa()
    if t0.tc_classical > 0 and t1.tc_classical > 0 and t0.converged and t1.converged:
        res.ratio_rpa = float(t1.tc_classical / t0.tc_classical)
    else:
        res.notes.append("RPA ratio not available (gapless or BZ average not converged)")
    to0, to1 = torelli_olsen_estimate(model, order, ax), torelli_olsen_estimate(mapped, order, ax)
    if to0.tc_K and to1.tc_K:
        res.ratio_torelli_olsen = float(to1.tc_K / to0.tc_K)
    res.ratio = res.ratio_rpa if res.ratio_rpa is not None else res.ratio_torelli_olsen
    if res.ratio is None:
        res.ratio_method = "none available"
    elif res.ratio_rpa is None:
        res.ratio_method = "Torelli–Olsen of the mapped / original model"
    if tc_classical_K is not None:
        res.tc_classical_K = float(tc_classical_K)
        res.tc_quantum_K = None if res.ratio is None else float(tc_classical_K * res.ratio)
    return res


def tc_estimates(model: SpinModel, order: str = "FM", axis=None, tc_classical_K: float | None = None) -> dict:
    """Every estimate of this module for one model and order, JSON-ready: spin-wave gap and stiffness (the RG
    ingredients), classical and quantum RPA, Torelli–Olsen, the quantum mapping (ratio; × ``tc_classical_K`` if
    given).  Estimates that cannot be made are stored with the reason, never as a number."""
    sw, ax, _ = _ordered(model, order, axis)
    out = {"order": order, "axis": np.asarray(ax).tolist(), "gap_meV": float(sw.gap()),
           "stiffness": sw.stiffness()}
    t = sw.tc_rpa()
    out["rpa"] = t.as_dict() if t.converged else {"not_converged": t.as_dict()}
    out["torelli_olsen"] = torelli_olsen_estimate(model, order, ax).as_dict()
    try:
        out["quantum_mapping"] = quantum_corrected_tc(model, tc_classical_K, order, ax).as_dict()
    except TcEstimateError as exc:
        out["quantum_mapping"] = {"ratio": None, "reason": str(exc)}
    out["rg_estimate"] = {"tc_K": None, "reason": RG_NOT_IMPLEMENTED,
                          "ingredients": {"rho_s_meV": out["stiffness"]["rho_s_meV"], "gap_meV": out["gap_meV"],
                                          "gap_gauge_fm_meV": out["torelli_olsen"]["gap_meV"]}}
    return out
