"""Parallel tempering (replica exchange) of the classical spin model on one lattice.

Hamiltonian (internal wannmag convention): H = Σ_{i<j} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i − gμ_B B·S_i, each bond once,
classical spins of length S (Heisenberg) or S_i^z = ±S (Ising, only J_zz and B_z act), J > 0 antiferromagnetic.
Energies in meV, temperatures in K (k_B = 0.08617333262 meV/K).

One sweep = [with ``algorithm`` "cluster": Wolff cluster moves by Ising embedding (:mod:`.cluster`) until the
clusters hold ``cluster_fraction`` × N sites] + one sequential Metropolis sweep (cone proposal whose half-angle is
tuned during thermalisation to an acceptance ≈ 0.5, then frozen) + ``n_overrelax`` over-relaxation sweeps (sites
with a uniaxial single-ion term are reflected at fixed S·n, sites with a general single-ion tensor are skipped; none
in Ising mode).  The walkers of one ladder run on ``threads`` Numba threads between the swaps, with a result
independent of the thread count (each walker has its own random stream).  Every ``swap_every`` sweeps the walkers at neighbouring temperatures (even pairs, then odd
pairs, alternately) try to exchange with probability min(1, exp((β_k − β_{k+1})(E_k − E_{k+1}))).  The ladder is
geometric, explicit, or "feedback": acceptance-equalising updates during the first half of the thermalisation.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field

import numba
import numpy as np
from tqdm.auto import tqdm

from ..._atomic import remove_stale_temporaries
from ..spinmodel import MEV_PER_K
from .checkpoint import check_state, load_checkpoint, save_checkpoint
from .errors import MonteCarloError
from .cluster import GROW_CHOICES, cluster_couplings
from .groundstate import pattern_of
from .kernels import N_OBS, N_OBS_OLD, seed_states, total_energy
from .ptkernel import pt_kernel
from .lattice import MCLattice
from .observables import QUANTITIES, derived_observables

__all__ = ["MCSettings", "PTResult", "parallel_tempering", "temperature_ladder", "T_RANGE_K", "MAX_REPLICAS",
           "MAX_SWEEPS", "MAX_SPINS", "ALGORITHMS", "NEW_DEFAULTS", "set_threads", "order_axis_of"]

#: sweep algorithms: "metropolis" (Metropolis + over-relaxation) or "cluster" (Wolff cluster moves first)
ALGORITHMS = ("metropolis", "cluster")

#: temperatures (K) a run accepts: below 1 mK or above 1e6 K the Boltzmann factors of meV-scale models under- or
#: overflow and no magnetic ordering of interest lies there
T_RANGE_K = (1e-3, 1e6)
#: replicas (temperatures) of one ladder
MAX_REPLICAS = 1000
#: sweeps (thermalisation or measurement) of one run; far beyond any feasible run, keeps counters in range
MAX_SWEEPS = 10 ** 9
#: replicas × lattice sites of one run: 2·10^7 spin vectors (≈ 0.5 GB of spins, plus lattice and bins)
MAX_SPINS = 2 * 10 ** 7


@dataclass
class MCSettings:
    """Parameters of a parallel-tempering run (temperatures in K, sweeps per replica).

    ladder : "geometric", "feedback" (acceptance-equalising during thermalisation) or an explicit list of K.
    n_sweeps : measurement sweeps after ``n_therm`` thermalisation sweeps.
    checkpoint_every : write a checkpoint every N sweeps (0 = never); it does not change the result.
    algorithm : "metropolis" or "cluster" (:data:`ALGORITHMS`); ``cluster_grow`` the bonds the clusters grow on
        ("pattern": satisfied in the ground-state pattern, the others in the acceptance; "all"), ``cluster_fraction``
        the cluster sites per sweep in units of N.
    threads : Numba threads running the walkers (does not change the result).
    """

    tmin: float
    tmax: float
    n_replicas: int = 24
    n_sweeps: int = 10000
    n_therm: int = 2000
    ising: bool = False
    seed: int = 0
    n_overrelax: int = 1
    measure_every: int = 1
    swap_every: int = 1
    ladder: object = "geometric"
    adapt_every: int = 20
    max_bins: int = 1024
    resync_every: int = 64
    checkpoint_every: int = 0
    progress: bool = False
    algorithm: str = "metropolis"
    cluster_grow: str = "pattern"
    cluster_fraction: float = 1.0
    threads: int = 1

    def validate(self) -> None:
        """Refuse settings outside the sane bounds (:data:`T_RANGE_K`, :data:`MAX_REPLICAS`, :data:`MAX_SWEEPS`,
        seeds in [0, 2^63)) with one :class:`MonteCarloError` line."""
        def bad(msg):
            raise MonteCarloError(msg)

        lo, hi = T_RANGE_K
        if isinstance(self.ladder, str):
            if self.ladder not in ("geometric", "feedback"):
                bad(f"ladder must be 'geometric', 'feedback' or a list of temperatures, got {self.ladder!r}")
            for name in ("tmin", "tmax"):
                v = getattr(self, name)
                if not (isinstance(v, (int, float, np.number)) and math.isfinite(v) and lo <= v <= hi):
                    bad(f"{name} must be a temperature between {lo:g} and {hi:g} K, got {v}")
            if not self.tmax > self.tmin:
                bad(f"tmax must be larger than tmin, got tmin = {self.tmin} K, tmax = {self.tmax} K")
            if not 1 <= int(self.n_replicas) <= MAX_REPLICAS:
                bad(f"the number of replicas must be between 1 and {MAX_REPLICAS}, got {self.n_replicas}")
        else:
            T = np.asarray(self.ladder, float)
            if T.ndim != 1 or len(T) < 1 or np.any(np.diff(T) <= 0) or not np.all((T >= lo) & (T <= hi)):
                bad(f"an explicit ladder must be increasing temperatures between {lo:g} and {hi:g} K")
            if len(T) > MAX_REPLICAS:
                bad(f"an explicit ladder may hold at most {MAX_REPLICAS} temperatures, got {len(T)}")
        for name in ("n_sweeps", "measure_every", "max_bins", "resync_every"):
            if not 1 <= int(getattr(self, name)) <= MAX_SWEEPS:
                bad(f"{name} must be between 1 and {MAX_SWEEPS:.0e}, got {getattr(self, name)}")
        for name in ("n_therm", "n_overrelax", "swap_every", "adapt_every", "checkpoint_every"):
            if not 0 <= int(getattr(self, name)) <= MAX_SWEEPS:
                bad(f"{name} must be between 0 and {MAX_SWEEPS:.0e}, got {getattr(self, name)}")
        if int(self.n_overrelax) > 100:
            bad(f"n_overrelax must be at most 100 over-relaxation sweeps per Metropolis sweep, got {self.n_overrelax}")
        if not 0 <= int(self.seed) < 2 ** 63:
            bad(f"seed must be an integer in [0, 2^63), got {self.seed}")
        if self.n_sweeps < self.measure_every:
            bad("n_sweeps must be at least measure_every")
        if self.algorithm not in ALGORITHMS:
            bad(f"algorithm must be one of {', '.join(ALGORITHMS)}, got {self.algorithm!r}")
        if self.cluster_grow not in GROW_CHOICES:
            bad(f"cluster_grow must be one of {', '.join(GROW_CHOICES)}, got {self.cluster_grow!r}")
        f = self.cluster_fraction
        if not (isinstance(f, (int, float, np.number)) and math.isfinite(f) and 0.0 < f <= 100.0):
            bad(f"cluster_fraction must be in (0, 100] lattice sites per sweep, got {f}")
        if not (isinstance(self.threads, (int, np.integer)) and 1 <= int(self.threads) <= 256):
            bad(f"threads must be an integer between 1 and 256, got {self.threads}")

    def physics_dict(self) -> dict:
        """The settings that determine the result (not checkpoint_every/progress)."""
        d = asdict(self)
        d.pop("checkpoint_every")
        d.pop("progress")
        d.pop("threads")
        if d.get("algorithm") == "metropolis":  # a Metropolis run keeps the signature (checkpoints) of earlier versions
            for k in NEW_DEFAULTS:
                d.pop(k, None)
        if not isinstance(d["ladder"], str):
            d["ladder"] = [float(x) for x in d["ladder"]]
        return d


#: settings added with the cluster algorithm and their defaults (left out of the signatures of Metropolis runs)
NEW_DEFAULTS = {"algorithm": "metropolis", "cluster_grow": "pattern", "cluster_fraction": 1.0}


def set_threads(n: int) -> int:
    """Set Numba's thread count to min(n, NUMBA_NUM_THREADS); returns the previous count."""
    prev = numba.get_num_threads()
    numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))
    return prev


#: chunk size of the parallel walker loop (1: dynamic, one walker at a time; 0: Numba's static split)
PARALLEL_CHUNKSIZE = 1


def _set_chunksize(n: int) -> int:
    """Numba's chunk size of parallel loops started from this thread (0 = static split); returns the previous one."""
    return int(numba.set_parallel_chunksize(int(n)))


def temperature_ladder(settings: MCSettings) -> np.ndarray:
    """Initial temperatures (K), increasing."""
    if not isinstance(settings.ladder, str):
        return np.asarray(settings.ladder, float).copy()
    n = int(settings.n_replicas)
    if n == 1:
        return np.array([float(settings.tmin)])
    return np.geomspace(settings.tmin, settings.tmax, n)


@dataclass
class PTResult:
    """Result of one parallel-tempering run on one lattice (temperatures in K, energies meV per site).

    ``observables[name] = (values, errors)`` for name in QUANTITIES (see :mod:`.observables`; the ``*_axis`` ones
    of the component Q·n along ``order_axis``); ``swap_acceptance``
    per neighbouring pair; ``tau_int_E`` in measurements; ``bins`` and ``bin_size`` keep the raw binned series.
    """

    size: tuple
    n_sites: int
    temperatures: np.ndarray
    observables: dict
    swap_acceptance: np.ndarray
    cone_angle: np.ndarray
    tau_int_E: np.ndarray
    binning_converged: np.ndarray
    bins: np.ndarray
    bin_size: int
    settings: MCSettings
    ground_state: dict = field(default_factory=dict)
    sweeps_done: int = 0
    cluster: dict = field(default_factory=dict)
    order_axis: list | None = None
    _stored: dict | None = field(default=None, init=False, repr=False, compare=False)  # from_dict: see there

    def curve(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        return self.observables[name]

    @property
    def n_bins(self) -> int:
        """Bins of the measured series (the stored count for a result rebuilt by :meth:`from_dict`)."""
        if self.bins is None and self._stored is not None:
            return int(self._stored["n_bins"])
        return int(self.bins.shape[1])

    @classmethod
    def from_dict(cls, d: dict) -> "PTResult":
        """Inverse of :meth:`as_dict`.  The raw binned series are not stored: ``bins`` is None and :attr:`n_bins`
        the stored count; ``settings`` are the physics settings (checkpointing, progress and threads at their
        defaults: they do not change a result)."""
        arr = lambda x: np.asarray(x, float)  # noqa: E731
        res = cls(size=tuple(d["size"]), n_sites=d["n_sites"], temperatures=arr(d["temperatures_K"]),
                  observables={k: (arr(v["value"]), arr(v["error"])) for k, v in d["observables"].items()},
                  swap_acceptance=arr(d["swap_acceptance"]), cone_angle=arr(d["cone_half_angle_rad"]),
                  tau_int_E=arr(d["tau_int_E"]), binning_converged=np.asarray(d["binning_converged"], bool),
                  bins=None, bin_size=d["bin_size"], settings=MCSettings(**d["settings"]),
                  ground_state=d.get("ground_state", {}), sweeps_done=d.get("sweeps", 0),
                  cluster=d.get("cluster", {}), order_axis=d.get("order_axis"))
        res._stored = {"n_bins": int(d["n_bins"])}
        return res

    def as_dict(self) -> dict:
        return {"size": list(self.size), "n_sites": self.n_sites, "temperatures_K": self.temperatures.tolist(),
                "observables": {k: {"value": v[0].tolist(), "error": v[1].tolist()}
                                for k, v in self.observables.items()},
                "swap_acceptance": self.swap_acceptance.tolist(),
                "cone_half_angle_rad": self.cone_angle.tolist(), "tau_int_E": self.tau_int_E.tolist(),
                "binning_converged": self.binning_converged.tolist(), "bin_size": self.bin_size,
                "n_bins": self.n_bins, "settings": self.settings.physics_dict(),
                "ground_state": self.ground_state, "sweeps": self.sweeps_done,
                **({"cluster": self.cluster} if self.cluster else {}),
                **({"order_axis": self.order_axis} if self.order_axis is not None else {}),
                "units": {"T": "K", "energy": "meV/site", "C": "k_B/site", "chi": "1/meV", "M": "S", "Q": "S"}}


def _signature(lat: MCLattice, settings: MCSettings, pattern: np.ndarray, init: np.ndarray, seed_key,
               order_axis: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in (lat.ptr, lat.nbr, lat.Jf, lat.A, lat.zee, lat.slen, np.asarray(pattern, float),
              np.asarray(init, float), np.asarray(order_axis, float)):
        h.update(np.ascontiguousarray(a).tobytes())
    h.update(json.dumps(settings.physics_dict(), sort_keys=True).encode())
    h.update(json.dumps([int(x) for x in seed_key]).encode())
    return h.hexdigest()


def _bins_layout(settings: MCSettings) -> tuple[int, int]:
    n_meas = (settings.n_sweeps - 1) // settings.measure_every + 1
    bin_size = max(1, -(-n_meas // settings.max_bins))
    return bin_size, n_meas // bin_size


def _initial_state(lat, settings, pattern, init, seed_key) -> dict:
    T = temperature_ladder(settings)
    nT = len(T)
    N = lat.n_sites
    rng = seed_states(seed_key, nT + 1)
    spins = np.empty((nT, N, 3))
    if init is None:
        g = np.random.default_rng(np.random.SeedSequence([int(x) for x in seed_key] + [99]))
        for w in range(nT):
            if settings.ising:
                spins[w] = 0.0
                spins[w, :, 2] = lat.slen * np.where(g.random(N) < 0.5, 1.0, -1.0)
            else:
                v = g.normal(size=(N, 3))
                spins[w] = v / np.linalg.norm(v, axis=1)[:, None] * lat.slen[:, None]
    else:
        init = np.asarray(init, float)
        if settings.ising:  # project the start configuration on ±S z
            z = np.where(init[:, 2] >= 0.0, 1.0, -1.0) * lat.slen
            init = np.zeros_like(init)
            init[:, 2] = z
        spins[:] = init[None]
    args = lat.kernel_args()
    energies = np.array([total_energy(spins[w], *args[:8], args[9]) for w in range(nT)])
    bin_size, n_bins = _bins_layout(settings)
    return {
        "spins": spins, "rng": np.ascontiguousarray(rng[:nT]), "rng_swap": rng[nT].copy(), "energies": energies,
        "temp_of": np.arange(nT, dtype=np.int64), "walker_at": np.arange(nT, dtype=np.int64),
        "betas": 1.0 / (MEV_PER_K * T), "cos_max": np.zeros(nT), "counters": np.zeros(nT, np.int64),
        "acc_win": np.zeros(nT, np.int64), "att_win": np.zeros(nT, np.int64),
        "sw_acc_win": np.zeros(max(nT - 1, 1), np.int64), "sw_att_win": np.zeros(max(nT - 1, 1), np.int64),
        "sw_acc": np.zeros(max(nT - 1, 1), np.int64), "sw_att": np.zeros(max(nT - 1, 1), np.int64),
        "bins": np.zeros((nT, n_bins, N_OBS)), "sweep": np.array(0, np.int64),
        "bin_size": np.array(bin_size, np.int64),
        **({"cl_stats": np.zeros((nT, 3), np.int64)} if settings.algorithm == "cluster" else {}),
    }


def order_axis_of(lat: MCLattice, init=None, ising: bool = False) -> np.ndarray:
    """Default axis n of the order-parameter component Q·n: the principal axis of the start configuration ``init``
    (the annealed ground state: its easy axis), ẑ for a random start or in Ising mode."""
    if ising or init is None:
        return np.array([0.0, 0.0, 1.0])

    return np.asarray(pattern_of(np.asarray(init, float), lat.slen)[1], float)


def _order_axis(lat: MCLattice, settings: MCSettings, init, order_axis) -> np.ndarray:
    """The unit vector n of the measured component Q·n: ``order_axis`` normalised, default :func:`order_axis_of`."""
    qaxis = order_axis_of(lat, init, bool(settings.ising)) if order_axis is None else np.asarray(order_axis, float)
    if qaxis.shape != (3,) or not np.all(np.isfinite(qaxis)) or np.linalg.norm(qaxis) == 0.0:
        raise MonteCarloError(f"order-parameter axis must be a non-zero 3-vector, got {qaxis.tolist()}")
    return np.ascontiguousarray(qaxis / np.linalg.norm(qaxis))


def _resumed_state(checkpoint, lat: MCLattice, settings: MCSettings, fresh: dict, sig: str) -> dict | None:
    """The state stored in ``checkpoint`` if it exists (None otherwise), refused unless it belongs to this very run
    (signature ``sig``) and is consistent (:func:`~.checkpoint.check_state` against the ``fresh`` state)."""
    # a run killed while writing a checkpoint leaves its temporary file behind (the checkpoint itself is
    # intact: it is replaced atomically); remove only those of writers that are gone, never the in-flight
    # temporary file of another live run writing into the same directory
    remove_stale_temporaries(checkpoint)
    state = load_checkpoint(checkpoint)
    if state is not None:
        b = np.asarray(state.get("bins", np.zeros((0, 0, 0))))
        if b.ndim == 3 and b.shape[2] == N_OBS_OLD:
            raise MonteCarloError(f"{checkpoint}: Monte Carlo checkpoint of an earlier wannmag version (its "
                                  "measurements lack the easy-axis moments of the order parameter); remove it "
                                  "to start afresh")
        if "signature" not in state or np.asarray(state["signature"]).dtype.kind != "U":
            raise MonteCarloError(f"{checkpoint}: corrupt Monte Carlo checkpoint: no run signature; remove it to "
                                  "start afresh")
        if str(state["signature"]) != sig:
            raise MonteCarloError(f"{checkpoint}: checkpoint of a different run (model, size, settings or seed "
                                  "differ); remove it or choose another --out")
        args0 = lat.kernel_args()
        check_state(checkpoint, state, fresh, settings.n_therm + settings.n_sweeps, int(settings.n_therm),
                    int(settings.measure_every), lat.slen,
                    lambda s: total_energy(s, *args0[:8], args0[9]))
    return state


def _run_sweeps(lat: MCLattice, settings: MCSettings, state: dict, pattern: np.ndarray, qaxis: np.ndarray, Jg,
                rest_free, checkpoint) -> None:
    """Advance ``state`` to the last sweep with the parallel-tempering kernel, in blocks (progress bar updates,
    checkpoints every ``settings.checkpoint_every`` sweeps); the Numba threads and chunk size are restored after."""
    N = lat.n_sites
    total = settings.n_therm + settings.n_sweeps
    bin_size = int(state["bin_size"])
    n_bins = state["bins"].shape[1]
    ladder_every = max(50, settings.n_therm // 20) if settings.ladder == "feedback" else 0
    ladder_until = settings.n_therm // 2
    args = lat.kernel_args()
    nR = state["spins"].shape[0]
    cluster = settings.algorithm == "cluster"
    nw = nR if cluster else 1
    stack = np.zeros((nw, N if cluster else 1), np.int64)
    incl = np.zeros((nw, N if cluster else 1), np.uint8)
    old = np.zeros((nw, N if cluster else 1, 3))
    cl_stats = state["cl_stats"] if cluster else np.zeros((nR, 3), np.int64)
    cl_target = max(1, int(math.ceil(settings.cluster_fraction * N)))
    uniax = lat.uniax if lat.uniax is not None else np.zeros(N, bool)
    axis = lat.axis if lat.axis is not None else np.zeros((N, 3))
    ising = bool(settings.ising)
    sweep = int(state["sweep"])
    step = max(1, total // 200)
    pbar = None
    if settings.progress:
        pbar = tqdm(total=total, initial=sweep, desc=f"MC {'x'.join(map(str, lat.size))}", unit="sweep",
                    leave=False)
    kernel = pt_kernel(settings.threads)
    prev_threads = set_threads(settings.threads) if int(settings.threads) > 1 else None
    # walkers handed to the threads one at a time (dynamic, chunk 1; the kernel runs the lowest temperature first):
    # cluster walkers at low T cost several times those at high T, a static split left one thread idle
    prev_chunk = _set_chunksize(PARALLEL_CHUNKSIZE) if prev_threads is not None else None
    try:
        while sweep < total:
            nxt = min(total, (sweep // step + 1) * step)
            if settings.checkpoint_every:
                nxt = min(nxt, (sweep // settings.checkpoint_every + 1) * settings.checkpoint_every)
            kernel(state["spins"], state["rng"], state["rng_swap"], state["energies"], state["temp_of"],
                   state["walker_at"], state["betas"], state["cos_max"], state["counters"], state["acc_win"],
                   state["att_win"], state["sw_acc_win"], state["sw_att_win"], state["sw_acc"], state["sw_att"],
                   state["bins"], *args[:11], np.ascontiguousarray(pattern), qaxis, uniax, axis, ising,
                   int(settings.n_overrelax), int(cluster), Jg, bool(rest_free), cl_target, stack, incl, old, cl_stats,
                   sweep, nxt, int(settings.n_therm), int(settings.measure_every),
                   bin_size, n_bins, int(settings.swap_every), int(settings.adapt_every), ladder_every, ladder_until,
                   int(settings.resync_every))
            sweep = nxt
            state["sweep"] = np.array(sweep, np.int64)
            if pbar is not None:
                pbar.update(nxt - pbar.n)
            if checkpoint is not None and settings.checkpoint_every and (
                    sweep % settings.checkpoint_every == 0 or sweep == total):
                save_checkpoint(checkpoint, state)
    finally:
        if prev_threads is not None:
            set_threads(prev_threads)
        if prev_chunk is not None:
            _set_chunksize(prev_chunk)
        if pbar is not None:
            pbar.close()


def parallel_tempering(lat: MCLattice, settings: MCSettings, pattern=None, init=None, checkpoint=None,
                       seed_key=None, ground_state: dict | None = None, order_axis=None) -> PTResult:
    """Run parallel tempering on ``lat``.

    pattern : σ_i = ±1 of the order parameter (default all +1: the order parameter is then |M|).
    order_axis : unit vector n of the measured component Q·n of the order parameter (observables ``Q_axis``,
        ``chi_axis``, ``U4_axis``; default :func:`order_axis_of`: the principal axis of ``init``).
    init : start configuration of every replica (e.g. the annealed ground state; default random).
    checkpoint : path of a checkpoint file; if it exists and belongs to this very run (same lattice, settings,
        pattern, start and seed) the run resumes from it, bit for bit as if never interrupted; a checkpoint of a
        different run raises :class:`MonteCarloError`.  Written every ``settings.checkpoint_every`` sweeps and at
        the end.
    seed_key : sequence of ints for the RNG (default (settings.seed,)); use e.g. (seed, L) per lattice size.
    """
    settings.validate()
    N = lat.n_sites
    pattern = np.ones(N) if pattern is None else np.ascontiguousarray(pattern, float)
    if pattern.shape != (N,):
        raise MonteCarloError(f"order-parameter pattern has {pattern.shape[0]} entries for {N} sites")
    seed_key = tuple(int(x) for x in (seed_key if seed_key is not None else (settings.seed,)))
    n_spins = len(temperature_ladder(settings)) * N
    if n_spins > MAX_SPINS:
        raise MonteCarloError(f"{len(temperature_ladder(settings))} replicas × {N} sites = {n_spins} spins, more "
                              f"than the {MAX_SPINS:.0e} one run holds in memory; use fewer replicas or a smaller "
                              "lattice")
    if settings.algorithm == "cluster":
        Jg, rest_free = cluster_couplings(lat, pattern, ising=bool(settings.ising), grow=settings.cluster_grow)
    else:
        Jg, rest_free = np.zeros(len(lat.nbr)), False
    qaxis = _order_axis(lat, settings, init, order_axis)
    sig = _signature(lat, settings, pattern, init if init is not None else np.zeros(0), seed_key, qaxis)
    fresh = _initial_state(lat, settings, pattern, init, seed_key)
    fresh["signature"] = np.array(sig)
    state = None
    if checkpoint is not None:
        state = _resumed_state(checkpoint, lat, settings, fresh, sig)
    if state is None:
        state = fresh
    _run_sweeps(lat, settings, state, pattern, qaxis, Jg, rest_free, checkpoint)
    if checkpoint is not None:
        save_checkpoint(checkpoint, state)
    return _result(lat, settings, state, ground_state or {}, qaxis)


def result_from_state(lat: MCLattice, settings: MCSettings, state: dict, ground_state=None,
                      order_axis=None) -> PTResult:
    return _result(lat, settings, state, ground_state or {}, order_axis)


def _result(lat, settings, state, gs, order_axis=None) -> PTResult:
    betas = state["betas"]
    T = 1.0 / (MEV_PER_K * betas)
    bin_size = int(state["bin_size"])
    obs = derived_observables(state["bins"], bin_size, betas, lat.n_sites)
    tau = obs.pop("tau_int_E")
    conv = obs.pop("binning_converged")
    nT = len(betas)
    cl = {}
    if "cl_stats" in state:
        st_ = np.asarray(state["cl_stats"], float)
        mv = np.maximum(st_[:, 0], 1.0)
        cl = {"moves_per_sweep": (st_[:, 0] / max(int(state["sweep"]) - settings.n_therm, 1)).tolist(),
              "acceptance": (st_[:, 1] / mv).tolist(), "mean_size": (st_[:, 2] / mv).tolist(),
              "grow": settings.cluster_grow, "fraction": settings.cluster_fraction}
    acc = np.where(state["sw_att"] > 0, state["sw_acc"] / np.maximum(state["sw_att"], 1), np.nan)[:max(nT - 1, 0)]
    return PTResult(size=tuple(lat.size), n_sites=lat.n_sites, temperatures=T,
                    observables={q: obs[q] for q in QUANTITIES}, swap_acceptance=acc,
                    cone_angle=np.arccos(np.clip(state["cos_max"], -1, 1)), tau_int_E=tau, binning_converged=conv,
                    bins=state["bins"].copy(), bin_size=bin_size, settings=settings, ground_state=gs,
                    sweeps_done=int(state["sweep"]), cluster=cl,
                    order_axis=None if order_axis is None else [float(x) for x in order_axis])
