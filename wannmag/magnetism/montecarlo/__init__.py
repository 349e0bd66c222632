"""Classical Monte Carlo of the wannmag spin model (issue 7): Numba Metropolis (adaptive cone) + over-relaxation +
parallel tempering, observables with error bars, ordering temperatures with a Mermin–Wagner guard, dilution,
atomic checkpoints; optionally Wolff cluster moves by Ising embedding with an exact acceptance for anisotropic and
frustrated terms (:mod:`.cluster`, ``MCSettings(algorithm="cluster")``) and the replicas of one lattice on several
Numba threads (``MCSettings(threads=N)``, results independent of N; issue 19).

Hamiltonian (internal wannmag convention, :mod:`wannmag.magnetism.spinmodel`)::

    H = Σ_{bonds (i,j,R), each once} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i − g μ_B Σ_i B·S_i

classical spins of length S (Heisenberg) or S^z = ±S (Ising mode, J_zz only), J and A in meV, J > 0
antiferromagnetic, B in tesla.  Temperatures in K (k_B = 0.08617333262 meV/K).

Typical use::

    from wannmag.magnetism.montecarlo import MCSettings, ordering_temperature
    st = MCSettings(tmin=20, tmax=80, n_replicas=24, n_sweeps=20000, n_therm=5000, seed=1)
    res = ordering_temperature(model, sizes=[12, 18, 24], settings=st, out_dir="mc_out")
    print(res.tc, res.tc_error, res.method, res.mermin_wagner)
"""

from .dilution import DilutionResult, dilution_scan, random_vacancies  # noqa: F401
from .errors import MerminWagnerWarning, MonteCarloError  # noqa: F401
from .groundstate import GroundState, anneal, ground_state, pattern_of  # noqa: F401
from .lattice import MCLattice, build_lattice  # noqa: F401
from .observables import binning_analysis, derived_observables, jackknife  # noqa: F401
from .plot import plot_curves, plot_dilution, plot_tc  # noqa: F401
from .tc import (TcResult, analyse_sizes, binder_crossing, continuous_symmetry, find_peak,  # noqa: F401
                 mermin_wagner_check, ordering_temperature, simulate)
from .tempering import MCSettings, PTResult, parallel_tempering, temperature_ladder  # noqa: F401

__all__ = ["MCSettings", "PTResult", "parallel_tempering", "temperature_ladder", "MCLattice", "build_lattice",
           "GroundState", "ground_state", "anneal", "pattern_of", "TcResult", "ordering_temperature", "simulate",
           "analyse_sizes", "find_peak", "binder_crossing", "continuous_symmetry", "mermin_wagner_check",
           "DilutionResult", "dilution_scan", "random_vacancies", "MerminWagnerWarning", "MonteCarloError",
           "binning_analysis", "jackknife", "derived_observables", "plot_tc", "plot_curves", "plot_dilution"]
