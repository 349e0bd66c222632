"""Magnetic anisotropy of 2D magnets (issue 8).

* :mod:`.dipolar` — dipole–dipole (shape) anisotropy of any collinear order by 2D Ewald summation, brute-force check,
  dipolar bonds and shape term for spin models.
* :mod:`.soc` — spin–orbit (magnetocrystalline) anisotropy: GPAW force theorem, VASP MAGMOM/SAXIS runs.
* :mod:`.fourstate` — single-ion tensors, full exchange tensors (four-state method), XXZ and Kitaev–Γ–Γ′ in the
  ligand cubic frame, from any energy callable.
* :mod:`.collinear` — SIA, XXZ λ_k and Kitaev K, Γ, Γ′ from force-theorem SOC energies of collinear orders
  (FM, Néel, zigzag, stripy in one cell; :func:`fit_collinear_soc`).
* :mod:`.lswt` — linear spin-wave theory (Holstein–Primakoff + Colpa), anisotropy gap, RPA (Tyablikov) T_c.
* :mod:`.plot` — magnon bands, E(θ).

Convention everywhere: H = Σ_{bonds once} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i − g μ_B B·S_i (meV, classical spins of
length S, J > 0 AF); anisotropy energies are reported as ΔE = E(in plane) − E(out of plane) in meV per magnetic ion,
ΔE > 0 favouring moments along the layer normal.

:func:`anisotropy_summary` combines the terms of a spin model (or a bare structure: dipolar only) for one collinear
order; it is what ``wannmag anisotropy`` prints.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import WannmagError
from ..spinmodel import SpinModel
from .collinear import (CollinearFitError, CollinearSOCFit, fit_collinear_soc, fit_soc_records,  # noqa: F401
                        soc_directions, template_model)
from .dipolar import (DIPOLAR_MEV, DipolarAnisotropy, DipolarError, add_dipolar, collinear_state,  # noqa: F401
                      dipolar_anisotropy, dipolar_bonds, lattice_sum_r3, lattice_tensors_direct,
                      lattice_tensors_ewald, lattice_tensors_extrapolated, layer_frame)
from .fourstate import (FourStateError, c3_average, decompose, extract_anisotropic_model,  # noqa: F401
                        four_state_exchange, four_state_single_ion, kitaev_frame, kitaev_parameters, kitaev_tensor,
                        model_bond_frames, model_energy_function, supercell_sites, xxz_parameters)
from .lswt import LSWTError, RPAResult, SpinWaves, TcResult, spin_waves_for_order  # noqa: F401
from .soc import MAEResult, SOCError, gpaw_mae, read_vasp_mae, read_vasp_run, spin_direction  # noqa: F401

__all__ = ["anisotropy_summary", "DIPOLAR_MEV", "dipolar_anisotropy", "lattice_sum_r3", "add_dipolar", "dipolar_bonds",
           "gpaw_mae", "read_vasp_mae", "four_state_exchange", "four_state_single_ion", "extract_anisotropic_model",
           "kitaev_frame", "kitaev_parameters", "xxz_parameters", "SpinWaves", "spin_waves_for_order", "MAEResult",
           "fit_collinear_soc", "fit_soc_records", "CollinearSOCFit"]


def _in_out(F, f):
    """(E_x + E_y)/2 − E_z of a quadratic form f(n) in the layer frame F (rows x, y, normal)."""
    return 0.5 * (f(F[0]) + f(F[1])) - f(F[2])


def anisotropy_summary(source, order: str | None = "FM", pattern=None, structure=None, g: float | None = None) -> dict:
    """Anisotropy terms (meV per magnetic ion, ΔE = E_in − E_out, in-plane = mean of x ∥ a1 and y) of one
    collinear order.

    ``source``: a ``SpinModel`` (dipolar + single-ion + exchange anisotropy) or a structure (dipolar only).
    ``structure``: the structure of a model (for the Kitaev frame of the nearest-neighbour bonds, which needs the
    ligands); default ``model.meta["structure"]`` if that file exists.  Returns a JSON-able dict.

    The dipolar term is counted exactly once: it is the 2D Ewald sum of this order, and the single-ion row is the
    model's single-ion tensors *without* their labelled dipolar part (``SpinModel.single_ion_dipolar``, folded in by
    ``wannmag run``), i.e. the spin–orbit/crystal-field single-ion anisotropy.  ``dipolar["counted"]`` says which
    dipolar value entered the total; a stored part for another order is reported, not added.  Models whose dipolar
    bonds were added with :func:`add_dipolar` (``meta["dipolar"]``), and old models with dipolar folded into the
    single-ion tensors in an unknown amount, hold the dipolar energy already: it is then not added again.
    """
    is_model = isinstance(source, SpinModel)
    dip = dipolar_anisotropy(source, order=order if pattern is None else None, pattern=pattern, g=g)
    out = {"order": dip.order, "n_sites": dip.n_sites,
           "convention": "Delta E = E(in-plane) - E(out-of-plane), meV per magnetic ion; > 0 favours out-of-plane",
           "dipolar": {"delta_meV": dip.delta, "E_out_meV": dip.E_out, "E_x_meV": dip.E_x, "E_y_meV": dip.E_y,
                       "method": "2D Ewald, point moments g S muB", "moments_muB": [float(abs(m)) for m in dip.moments],
                       "counted": "2D Ewald sum of this order"}}
    total = dip.delta
    info = source.dipolar_info if is_model else {}
    legacy = info.get("status") == "folded, amount unknown"
    if is_model and "dipolar" in source.meta:
        total = 0.0  # the model already holds dipolar bonds (add_dipolar): counted in its exchange/single-ion terms
        out["dipolar"]["note"] = "model already contains dipolar terms; not added again to the total"
        out["dipolar"]["counted"] = "the model's dipolar bonds and shape term (add_dipolar), in the rows below"
    elif legacy:
        total = 0.0
        out["dipolar"]["note"] = ("the model's single-ion tensors already include a dipolar term of unrecorded size "
                                  "(old 'wannmag run' model); not added again to the total")
        out["dipolar"]["counted"] = "inside the single-ion row (old model; its size was not recorded)"
    if is_model:
        st, big = collinear_state(source, order=order if pattern is None else None, pattern=pattern)
        F = layer_frame(big.cell)
        s = st.pattern * st.spins
        N = big.n_sites

        def e_single(tensors):
            return lambda n: sum(S ** 2 * n @ A @ n for S, A in zip(st.spins, tensors)) / N

        def e_ex(n):
            return sum(s[b.i] * s[b.j] * (n @ b.J @ n) for b in big.bonds) / N

        if legacy:
            sia = _in_out(F, e_single(big.single_ion))
            out["single_ion"] = {"delta_meV": float(sia), "method": "model single-ion tensors, S^2 n.A.n "
                                                                     "(SOC and dipolar, lumped in this old model)"}
        else:
            sia = _in_out(F, e_single(big.single_ion_intrinsic))
            method = "model single-ion tensors, S^2 n.A.n"
            if source.has_dipolar_single_ion:
                stored = float(_in_out(F, e_single(big.single_ion_dipolar)))
                method += " (without the model's dipolar part)"
                out["dipolar"]["stored_in_model_meV"] = stored
                out["dipolar"]["stored_order"] = info.get("order")
                out["dipolar"]["stored_source"] = info.get("source")
                if "note" not in out["dipolar"]:
                    same = abs(stored - dip.delta) <= 1e-6 * max(1.0, abs(dip.delta))
                    out["dipolar"]["counted"] = (
                        "2D Ewald sum of this order; the model's stored dipolar single-ion part "
                        + ("(the same value) " if same else f"({stored:+.5f} meV/ion, for "
                           + (f"order {info['order']}" if info.get("order") else "the run's ground state")
                           + "; Monte Carlo uses that one) ")
                        + "is left out of the single-ion row")
            out["single_ion"] = {"delta_meV": float(sia), "method": method}
        exa = _in_out(F, e_ex)
        out["exchange"] = {"delta_meV": float(exa), "method": "model bond tensors in the collinear state"}
        total += sia + exa
        # nearest-neighbour bond parameters (unit-cell model)
        if source.bonds:
            lengths = np.array([source.bond_length(b) for b in source.bonds])
            nn = [b for b, d in zip(source.bonds, lengths) if d < lengths.min() + 0.05]
            normal = layer_frame(source.cell)[2]
            lam = [xxz_parameters(b.J, normal)["lambda"] for b in nn]
            out["exchange"]["nn_bonds"] = len(nn)
            out["exchange"]["xxz_lambda_meV"] = float(np.mean(lam))
            out["exchange"]["J_iso_nn_meV"] = float(np.mean([b.J_iso for b in nn]))
            kit = _kitaev_nn(source, nn, structure)
            if kit is not None:
                out["exchange"]["kitaev"] = kit
    else:
        out["single_ion"] = None
        out["exchange"] = None
    if not np.isfinite(total):  # pragma: no cover - validated models and structures give finite terms
        raise WannmagError("anisotropy: the total is not finite (NaN/inf in the model or structure)")
    out["total_delta_meV"] = float(total)
    out["easy_axis"] = "out-of-plane" if total > 0 else "in-plane"
    if not is_model:
        out["note"] = "structure only: single-ion and exchange anisotropy need a spin model (MODEL.json)"
    return out


def _kitaev_nn(model, nn, structure):
    src = structure if structure is not None else model.meta.get("structure")
    if src is None or (isinstance(src, (str, Path)) and not Path(src).exists()):
        return None
    try:
        frames = model_bond_frames(model, src, nn)
    except WannmagError:
        return None
    vals = [kitaev_parameters(b.J, F) for b, F in zip(nn, frames)]
    return {k: float(np.mean([v[k] for v in vals])) for k in ("J", "K", "Gamma", "Gamma_prime", "residual")}
