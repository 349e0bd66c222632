"""Non-perturbative exchange channels of one bond: exact diagonalisation (ED) of the M2X2 cluster.

Why: the channel formulas of :mod:`.analysis` are terms of an expansion in t/Δ whose radius of convergence is 1/2
(:data:`~.analysis.EXPANSION_LIMIT`); the shipped CrI3 and VPS3 Wannier models are beyond it (max |t_pd|/Δ = 2.8 and
0.94).  Here the same Kanamori Hamiltonian the formulas expand is solved exactly on the bond's cluster, and the channels
are defined by switching hoppings off — a non-perturbative decomposition.

Cluster (energies eV): the two metals of the bond (five d orbitals each, local octahedral frame of the TB layer,
t2g³, levels t2g = 0, eg = 10Dq as in the formulas) and its bridging ligands (three p orbitals each, p basis in the
frame of M_i, levels from the spin-averaged model: ε_p placed so that d³p⁶ → d⁴(³T1)p⁵ costs Δ_t, plus the
orbital-resolved one-hole offsets ε̄_p − ε_p — :func:`~.ed.ligand_site`), with the MLWF hoppings of the spin-averaged
model: t_dd (M–M), t_pd (M–X), t_pp (X–X between the two bridging ligands).  Kanamori U, J_H (U' = U − 2J_H, spin
flip and pair hopping) on the metals, U_p, J_p on the ligands — the parameters of :func:`~.analysis.resolve_parameters`
(so that deep inside the expansion range ED and the formulas describe the same Hamiltonian; the formulas neglect t_pp,
switch it off for that comparison).

Restricted Fock space (``restricted=True``, the default): every metal keeps d^{n−1}, dⁿ or d^{n+1} (n = 3) and the
bridging ligands together hold at most two holes.  Justification: these are exactly the intermediate states of every
channel of the fourth-order theory (Mott–Hubbard d²d⁴, one-hole d⁴L, two-hole d⁴d⁴L²); what is dropped costs at
least one more charge-transfer or Hubbard energy on top of them (d⁵: 2Δ + U' on one metal; three ligand holes; d¹)
and only enters at sixth order.  The restriction is by site occupation numbers only, so it commutes with total spin
and the S²-shifted ladder of :func:`~.ed.ed_spin_ladder` stays exact inside it.  Checked against the full Fock space
on clusters small enough for both (tests/magnetism/test_superexchange_cluster.py: t2g + one eg per metal, two p
orbitals per ligand, hoppings up to the CrI3 ratio t_pd/Δ ≈ 3).  Size of the full M2X2 sector S_z = 0: 6.5·10⁵ states
restricted (full: 1.3·10⁸).

J (meV, internal convention H = Σ_{i<j} J S_i·S_j, each bond once, |S| = 3/2, J > 0 AF) from the Landé fit of the
lowest multiplets E(S_tot), S_tot = 0 … 3 (:func:`~.ed.ed_spin_ladder`); the ladder deviation measures how
Heisenberg-like the cluster is.

Channels (:func:`cluster_channels`), each an ED of the cluster with some hoppings switched off:

* ``all``                — the cluster as is (J of the bond);
* ``ligands, no direct`` — t_dd = 0;  ``direct only`` — no ligands (M2);
* ``X1 only``, ``X2 only`` — one bridging ligand (t_dd = 0); **interference** = J(both) − J(X1) − J(X2) with t_dd = 0:
  the part that exists only because the paths through the two ligands add coherently; a large interference of the
  sign opposite to J(X1) + J(X2) identifies antiphase paths;
* ``t2g hops only`` (every hopping into/out of eg switched off: t2g–t2g MH and CT channels, AF) and ``eg hops only``
  (CT eg–eg); **t2g–eg** = J(all) − J(t2g) − J(eg): the channels that need both (FM t2g–p–eg of Goodenough–Kanamori);
* **direct × ligand** = J(all) − J(ligands, no direct) − J(direct only).

Deep inside the expansion range these reduce to the category sums of the formulas (tested within a few %).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from itertools import combinations, product

import numpy as np

from .ed import Cluster, ClusterSite, EDError, ed_spin_ladder, ligand_site
from .formulas import EG, T2G, KanamoriParameters, SuperexchangeError

__all__ = ["ClusterChannels", "bond_cluster", "cluster_channels", "cluster_exchange", "restricted_basis"]


def bond_cluster(hb, p: KanamoriParameters, ligands=None, direct: bool = True, ligand_ligand: bool = True,
                 hops=("t2g", "eg"), scale: float = 1.0, d_orbitals=tuple(range(5)), p_orbitals=(0, 1, 2)) -> Cluster:
    """The M_i–(X…)–M_j cluster of a :class:`~.paths.BondHoppings` ``hb`` with the Kanamori parameters ``p``.

    ``ligands``: indices of the bridging ligands kept (default all); ``direct``/``ligand_ligand``: keep t_dd / t_pp;
    ``hops``: orbital kinds whose hoppings are kept ('t2g', 'eg'; the orbitals stay, with their on-site interaction);
    ``scale`` multiplies every hopping; ``d_orbitals``/``p_orbitals`` select orbitals (Wannier90 order: dz2, dxz, dyz,
    dx2-y2, dxy; pz, px, py) — for small test clusters."""
    d_orbitals, p_orbitals = list(d_orbitals), list(p_orbitals)
    if not set(T2G) <= set(d_orbitals):
        raise SuperexchangeError("the cluster needs the three t2g orbitals of each metal (t2g³ ions)")
    keep_d = np.array([("t2g" if m in T2G else "eg") in hops for m in range(5)], float)
    lv = np.array([p.ten_dq if m in EG else 0.0 for m in range(5)])[d_orbitals]
    metal = lambda name: ClusterSite(name, len(d_orbitals), lv, p.U, p.JH, 3,
                                     [f"d{m}" for m in d_orbitals])
    sites = [metal("M1")]
    hop = {}
    n_lig = 0 if hb.t_ip is None else len(set(hb.lig_of))
    ligands = list(range(n_lig)) if ligands is None else list(ligands)
    lig_of = np.array(hb.lig_of if hb.t_ip is not None else [], int)
    h = (hb.eps_p_mean - hb.eps_p) if hb.eps_p is not None else np.zeros(0)
    cols = {}
    for L in ligands:
        if L >= n_lig:
            raise SuperexchangeError(f"bond {hb.i}-{hb.j} has {n_lig} bridging ligand(s), not {L + 1}")
        sel = np.nonzero(lig_of == L)[0][p_orbitals]
        cols[L] = sel
        sites.append(ligand_site(f"X{L + 1}", len(sel), p.Up, p.Jp, p.delta_t, p.U, p.JH, hole_energy=h[sel]))
    sites.append(metal("M2"))
    last = len(sites) - 1
    di = np.ix_(d_orbitals, d_orbitals)
    if direct:
        hop[(0, last)] = scale * (keep_d[:, None] * hb.t_dd * keep_d[None, :])[di]
    for k, L in enumerate(ligands, start=1):
        sel = cols[L]
        hop[(0, k)] = scale * (keep_d[:, None] * hb.t_ip)[np.ix_(d_orbitals, sel)]
        hop[(k, last)] = scale * (hb.t_pj * keep_d[None, :])[np.ix_(sel, d_orbitals)]
    if ligand_ligand and hb.t_pp is not None:
        for (k1, L1), (k2, L2) in combinations(list(enumerate(ligands, start=1)), 2):
            blk = hb.t_pp[np.ix_(cols[L1], cols[L2])]
            if np.any(blk):
                hop[(k1, k2)] = scale * blk
    return Cluster(sites, hop)


def restricted_basis(cluster: Cluster, metal_window: int = 1, max_holes: int = 2):
    """``basis(n_up, n_dn)`` for :func:`~.ed.ed_spin_ladder`: the Fock states in which every metal (the first and
    last site) holds n_el ± ``metal_window`` electrons and the ligands (the sites between) together at most
    ``max_holes`` holes (module docstring)."""
    sites = cluster.sites
    off = cluster.offsets
    n_orb = cluster.n_orb
    N = cluster.n_electrons
    ranges = []
    for k, s in enumerate(sites):
        if k in (0, len(sites) - 1):
            ranges.append(range(max(0, s.n_el - metal_window), min(2 * s.n_orb, s.n_el + metal_window) + 1))
        else:
            ranges.append(range(max(0, 2 * s.n_orb - max_holes), 2 * s.n_orb + 1))
    lig = list(range(1, len(sites) - 1))
    occs = [o for o in product(*ranges) if sum(o) == N
            and sum(2 * sites[k].n_orb - o[k] for k in lig) <= max_holes]
    cache = {}

    def masks(k, nu, nd):
        key = (k, nu, nd)
        if key not in cache:
            n, o = sites[k].n_orb, int(off[k])
            ups = np.array([sum(1 << (o + b) for b in c) for c in combinations(range(n), nu)], dtype=np.int64)
            dns = np.array([sum(1 << (n_orb + o + b) for b in c) for c in combinations(range(n), nd)], dtype=np.int64)
            cache[key] = (ups[:, None] | dns[None, :]).ravel()
        return cache[key]

    def basis(n_up: int, n_dn: int) -> np.ndarray:
        out = []
        for occ in occs:
            spl = [range(max(0, o - s.n_orb), min(s.n_orb, o) + 1) for o, s in zip(occ, sites)]
            for nus in product(*spl):
                if sum(nus) != n_up:
                    continue
                arr = np.zeros(1, dtype=np.int64)
                for k, (o, nu) in enumerate(zip(occ, nus)):
                    arr = (arr[:, None] | masks(k, nu, o - nu)[None, :]).ravel()
                out.append(arr)
        return np.sort(np.concatenate(out)) if out else np.zeros(0, dtype=np.int64)

    return basis


def cluster_exchange(cluster: Cluster, restricted: bool = True, n_sectors: int | None = None, **kw):
    """(SpinLadder, seconds): ED J of a two-metal cluster (meV, internal convention), in the restricted Fock space
    (``kw``: :func:`restricted_basis` options) or the full one; ``n_sectors`` as in :func:`~.ed.ed_spin_ladder`
    (2: J from the top step E(S=2) − E(S=3) = 3J only — the S_z = 3, 2 sectors are 8·10⁴ and 3.5·10⁵ states of the
    restricted M2X2 cluster against 1.06·10⁶ for S_z = 0)."""
    t0 = time.perf_counter()
    basis = restricted_basis(cluster, **kw) if restricted else None
    for shift in (0.05, 0.25, 1.0):   # the S² shift must exceed the ladder's spread (|J| large beyond the range)
        try:
            lad = ed_spin_ladder(cluster, 1.5, 1.5, shift=shift, basis=basis, n_sectors=n_sectors)
            break
        except EDError:
            if shift == 1.0:
                raise
    return lad, time.perf_counter() - t0


@dataclass
class ClusterChannels:
    """ED channel decomposition of one bond (J in meV, internal convention H = J S_i·S_j, J > 0 AF).

    runs: {name: {"J_meV", "ladder_deviation", "dims", "seconds"}} — one ED per name (module docstring);
    channels: {name: meV} — derived differences (interference, t2g–eg, direct × ligand); settings: parameters (eV)
    and options; J: J of the run 'all'."""

    bond: dict
    settings: dict
    runs: dict = field(default_factory=dict)
    channels: dict = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def J(self) -> float | None:
        r = self.runs.get("all")
        return None if r is None else r["J_meV"]

    def as_dict(self) -> dict:
        return {"bond": dict(self.bond), "settings": dict(self.settings), "J_meV": self.J,
                "runs": {k: dict(v) for k, v in self.runs.items()}, "channels_meV": dict(self.channels),
                "seconds": self.seconds,
                "convention": "H = sum_{i<j} J S_i.S_j, each bond once, |S| = 3/2, J > 0 AF, meV"}

    @classmethod
    def from_dict(cls, d: dict) -> "ClusterChannels":
        return cls(bond=dict(d["bond"]), settings=dict(d["settings"]), runs={k: dict(v) for k, v in d["runs"].items()},
                   channels=dict(d["channels_meV"]), seconds=float(d["seconds"]))

    def table(self) -> str:
        b = self.bond
        lines = [f"cluster ED of bond {b['i']}-{b['j']} R={b['R']} ({b.get('elements', '')}, "
                 f"{len(b.get('ligands', []))} bridging ligand(s)); restricted Fock space: "
                 f"{self.settings.get('restricted')}; J > 0 AF, meV, internal convention",
                 f"  {'run':<24} {'J (meV)':>10} {'ladder dev.':>11} {'max dim':>11} {'s':>7}"]
        for k, r in self.runs.items():
            dev = "n/a" if r["ladder_deviation"] is None else f"{r['ladder_deviation']:.2e}"
            lines.append(f"  {k:<24} {r['J_meV']:+10.4f} {dev:>11} {max(r['dims'].values()):>11} {r['seconds']:7.1f}")
        lines.append("  derived channels (meV):  " + "   ".join(f"{k}: {v:+.4f}" for k, v in self.channels.items()))
        return "\n".join(lines)


#: the runs of :func:`cluster_channels`: name → bond_cluster options
RUNS = {
    "all": {},
    "direct only": {"ligands": []},
    "ligands, no direct": {"direct": False},
    "X1 only (no direct)": {"ligands": [0], "direct": False},
    "X2 only (no direct)": {"ligands": [1], "direct": False},
    "t2g hops only": {"hops": ("t2g",)},
    "eg hops only": {"hops": ("eg",)},
}


def cluster_channels(hb, p: KanamoriParameters, runs=None, restricted: bool = True, scale: float = 1.0,
                     ligand_ligand: bool = True, d_orbitals=tuple(range(5)), p_orbitals=(0, 1, 2),
                     n_sectors: int | None = None, direct: bool = True, log=None) -> ClusterChannels:
    """ED of the bond's cluster for every run of :data:`RUNS` (or the names in ``runs``) and the derived channels
    (module docstring).  ``scale``, ``ligand_ligand``, ``d_orbitals``, ``p_orbitals``: as in :func:`bond_cluster`;
    ``direct=False`` drops t_dd from every run (and the run 'direct only')."""
    n_lig = 0 if hb.t_ip is None else len(set(hb.lig_of))
    names = list(RUNS) if runs is None else list(runs)
    if n_lig != 2:
        names = [n for n in names if not n.startswith(("X1", "X2"))]
    if n_lig == 0:
        names = [n for n in names if n in ("all", "t2g hops only", "eg hops only")]
    if not direct:
        names = [n for n in names if n != "direct only"]
    t0 = time.perf_counter()
    out = ClusterChannels(
        bond={"i": hb.i, "j": hb.j, "R": list(hb.R), "elements": "–".join(hb.elements), "distance": round(hb.distance, 4),
              "ligands": sorted(set(l.split(":")[0] for l in hb.lig_labels))},
        settings={"parameters_eV": p.as_dict(), "restricted": ("metals d^(n±1), ≤ 2 ligand holes" if restricted
                                                               else "full Fock space"),
                  "hopping_scale": scale, "ligand_ligand_hopping": ligand_ligand, "direct_hopping": direct,
                  "ladder": "full (S_tot = 0…3, Landé fit)" if n_sectors is None else
                            f"top {n_sectors} multiplets (S_tot = 3 … {4 - n_sectors})",
                  "d_orbitals": list(d_orbitals), "p_orbitals": list(p_orbitals)})
    for name in names:
        opts = dict(RUNS[name])
        if not direct:
            opts["direct"] = False
        cl = bond_cluster(hb, p, scale=scale, ligand_ligand=ligand_ligand, d_orbitals=d_orbitals,
                          p_orbitals=p_orbitals, **opts)
        try:
            lad, sec = cluster_exchange(cl, restricted=restricted, n_sectors=n_sectors)
        except EDError as exc:
            raise SuperexchangeError(f"bond {hb.i}-{hb.j}, ED run '{name}': {exc}") from None
        dev = None if not np.isfinite(lad.deviation) else lad.deviation
        out.runs[name] = {"J_meV": lad.J, "ladder_deviation": dev, "J_steps_meV": {str(k): v for k, v in lad.J_steps.items()},
                          "dims": lad.dims, "seconds": round(sec, 2)}
        if log:
            log(f"  ED {name}: J = {lad.J:+.4f} meV ({sec:.1f} s, dim {max(lad.dims.values())})")
    J = {k: v["J_meV"] for k, v in out.runs.items()}
    if {"ligands, no direct", "X1 only (no direct)", "X2 only (no direct)"} <= set(J):
        out.channels["interference X1×X2"] = J["ligands, no direct"] - J["X1 only (no direct)"] - J["X2 only (no direct)"]
    if {"all", "t2g hops only", "eg hops only"} <= set(J):
        out.channels["t2g–eg (needs both)"] = J["all"] - J["t2g hops only"] - J["eg hops only"]
    if {"all", "ligands, no direct", "direct only"} <= set(J):
        out.channels["direct×ligand"] = J["all"] - J["ligands, no direct"] - J["direct only"]
    out.seconds = round(time.perf_counter() - t0, 2)
    return out
