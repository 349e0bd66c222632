"""Channel-by-channel superexchange of the bonds of a spin-averaged Wannier model (see ``docs/superexchange.md``).

For every bond the exchange (internal convention H = J S_i·S_j, each bond once, |S| = 3/2, J > 0 AF, meV) is split
into channels:

* ``t2g–t2g MH``  — Mott–Hubbard transfer between half-filled t2g orbitals (antiferromagnetic), amplitude summed
  coherently over the direct d–d hop, the ligand paths and the M–X–X–M paths;
* ``t2g–eg MH``   — transfer from a half-filled t2g into an empty eg orbital, ferromagnetic through Hund's coupling
  on the receiving ion (S' = 2 vs S' = 1 intermediate states);
* ``CT t2g–t2g``, ``CT t2g–eg``, ``CT eg–eg`` — two ligand holes (charge-transfer regime, fourth order in t_pd):
  Goodenough–Kanamori AF when both holes share a ligand orbital, FM from the ligand Hund J_p when they sit in
  orthogonal orbitals (90°);
* ``CT×direct``   — third-order interference of the direct hop with the ligand paths in the charge-transfer state.

Every channel row lists its paths with signed single-particle amplitudes, the coherent sum t_eff and the incoherent
√Σ t², the J of the channel and the J one would get by adding the paths incoherently (each path alone).

Validity: the channels are terms of an expansion in t/Δ (ligand paths: t_pd over the charge-transfer energy of the
receiving multiplet) and t/E (direct d–d: t_dd over the smallest Mott–Hubbard excitation).  Where the larger of the
two exceeds :data:`EXPANSION_LIMIT` the bond's total is not an exchange constant: :attr:`BondAnalysis.J` is None,
:attr:`BondAnalysis.status` says "out of range (max |t_pd|/Δ = …)", the channel values are kept only as *formal
perturbative terms* (tables, JSON and plots label them so) and :meth:`SuperexchangeResult.to_spin_model` refuses.
The non-perturbative decomposition for such bonds: :mod:`.cluster` (exact diagonalisation of the M2X2 cluster) and
:mod:`.green` (orbital-resolved force theorem).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from ...structures import analyse_structure
from ...tightbinding.localframe import local_frames, metal_atoms
from ...tightbinding.model import CollinearTBModel
from ..spinmodel import Site, SpinModel
from .formulas import (
    EG,
    ION_DEFAULTS,
    LIGAND_DEFAULTS,
    T2G,
    KanamoriParameters,
    SuperexchangeError,
    ct_direct_exchange,
    ct_exchange,
    mh_exchange,
)
from .paths import D_NAMES, BondHoppings, NoLigandWarning, PathTerm, bond_hoppings, path_terms

__all__ = [
    "CATEGORIES",
    "EXPANSION_LIMIT",
    "BondAnalysis",
    "Channel",
    "SuperexchangeResult",
    "analyse_bond",
    "resolve_parameters",
    "superexchange",
]

#: validity bound of the expansion parameter (max |t_pd|/Δ, max |t_dd|/E_MH).  The ground-state energy of the
#: elementary two-level problem of every channel (a level at 0 coupled by t to a level at Δ),
#: E = Δ/2 − √(Δ²/4 + t²) = −t²/Δ + t⁴/Δ³ − 2t⁶/Δ⁵ + …, is a series in (t/Δ)² whose radius of convergence is
#: |t|/Δ = 1/2 (branch points at t = ±iΔ/2); beyond it the order-by-order sum diverges and no truncation is an estimate.
#: Between 0.3 and 0.5 the fourth-order sum is kept with a note (the sixth-order term is ≳ 2(2t/Δ)²·… of the fourth).
EXPANSION_LIMIT = 0.5

CATEGORIES = ["t2g–t2g MH", "t2g–eg MH", "CT t2g–t2g", "CT t2g–eg", "CT eg–eg", "CT×direct"]
_KIND = {m: ("t2g" if m in T2G else "eg") for m in range(5)}
#: group number (= d + s valence electrons of the neutral atom) of the transition metals: n_d = group − oxidation state
_GROUP = {el: g for row in (["Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu"],
                            ["Y", "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag"],
                            ["Lu", "Hf", "Ta", "W", "Re", "Os", "Ir", "Pt", "Au"]) for g, el in enumerate(row, start=3)}


@dataclass
class Channel:
    """One channel of one bond: ``category`` (see :data:`CATEGORIES`), orbitals (m on M_i, m' on M_j), direction
    (for MH: 'i→j', 'j→i' or 'both'), paths (single-particle, eV), t_eff and t_incoherent (eV), J and J_incoherent
    (meV, internal convention)."""

    category: str
    orbitals: tuple
    direction: str
    paths: list
    t_eff: float
    t_incoherent: float
    J: float
    J_incoherent: float
    _stored: dict | None = field(default=None, init=False, repr=False, compare=False)  # from_dict: see there

    @property
    def antiphase(self) -> bool:
        """Coherent and incoherent values differ by more than a factor of 2 (hopping or J)."""
        if self._stored is not None and "antiphase" in self._stored:
            return self._stored["antiphase"]
        t_flag = self.t_incoherent > 1e-4 and abs(self.t_eff) * 2 < self.t_incoherent
        big = max(abs(self.J), abs(self.J_incoherent))
        j_flag = big > 1e-3 and (abs(self.J) * 2 < abs(self.J_incoherent) or abs(self.J_incoherent) * 2 < abs(self.J)
                                 or np.sign(self.J) != np.sign(self.J_incoherent))
        return bool(t_flag or j_flag)

    @property
    def character(self) -> str:
        if self._stored is not None and "character" in self._stored:
            return self._stored["character"]
        return "AF" if self.J > 0 else "FM"

    def as_dict(self) -> dict:
        return {"category": self.category, "orbitals": list(self.orbitals), "direction": self.direction,
                "paths": [p.as_dict() for p in self.paths], "t_eff_eV": round(self.t_eff, 7),
                "t_incoherent_eV": round(self.t_incoherent, 7), "J_meV": round(self.J, 6),
                "J_incoherent_meV": round(self.J_incoherent, 6), "character": self.character,
                "antiphase": self.antiphase}

    @classmethod
    def from_dict(cls, d: dict) -> "Channel":
        """Inverse of :meth:`as_dict`, also of a channel of an out-of-range bond (``formal_term_meV``; see
        :meth:`BondAnalysis.as_dict`).  Values as stored (t to 1e-7 eV, J to 1e-6 meV); ``character`` and
        ``antiphase`` are the stored flags (made from the unrounded values)."""
        J = d["J_meV"] if "J_meV" in d else d["formal_term_meV"]
        J_inc = d["J_incoherent_meV"] if "J_incoherent_meV" in d else d["formal_term_incoherent_meV"]
        c = cls(category=d["category"], orbitals=tuple(d["orbitals"]), direction=d["direction"],
                paths=[PathTerm.from_dict(q) for q in d["paths"]], t_eff=d["t_eff_eV"],
                t_incoherent=d["t_incoherent_eV"], J=J, J_incoherent=J_inc)
        c._stored = {k: d[k] for k in ("character", "antiphase") if k in d}
        return c


@dataclass
class BondAnalysis:
    """Superexchange channels of one bond."""

    hoppings: BondHoppings
    params: KanamoriParameters
    provenance: dict
    channels: list = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    direct_only: dict = field(default_factory=dict)
    comparisons: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    shell: int | None = None
    expansion: float | None = None       # max |t_pd| / Δ of the bond (validity of the expansion)
    expansion_dd: float | None = None    # max |t_dd| / E_MH (smallest Mott–Hubbard excitation energy)
    _stored: dict | None = field(default=None, init=False, repr=False, compare=False)  # from_dict: see there

    @property
    def expansion_max(self) -> float:
        return max(self.expansion or 0.0, self.expansion_dd or 0.0)

    @property
    def in_range(self) -> bool:
        """The expansion parameter is inside :data:`EXPANSION_LIMIT` (the channel sum is an exchange estimate)."""
        if self._stored is not None:
            return self._stored["in_range"]
        return self.expansion_max <= EXPANSION_LIMIT

    @property
    def status(self) -> str:
        """'ok (…)' or 'out of range (max |t_pd|/Δ = …)' — which parameter is the larger one is named."""
        if self._stored is not None:
            return self._stored["status"]
        if (self.expansion or 0.0) >= (self.expansion_dd or 0.0):
            txt = f"max |t_pd|/Δ = {self.expansion or 0.0:.2f}"
        else:
            txt = f"max |t_dd|/E_MH = {self.expansion_dd:.2f}"
        if self.in_range:
            return f"ok ({txt} ≤ {EXPANSION_LIMIT})"
        return f"out of range ({txt} > {EXPANSION_LIMIT})"

    @property
    def J(self) -> float | None:
        """Sum of the channels (meV) — None where the expansion is out of range (:attr:`status`)."""
        if not self.in_range:
            return None
        if self._stored is not None:
            return self._stored["J"]
        return float(sum(self.summary.values()))

    @property
    def bond(self) -> tuple:
        h = self.hoppings
        return (h.i, h.j, h.R)

    def as_dict(self) -> dict:
        h = self.hoppings
        return {"bond": {"i": h.i, "j": h.j, "R": list(h.R), "atoms": list(h.atoms), "elements": list(h.elements),
                         "distance": round(h.distance, 5), "shell": self.shell, "sharing": h.sharing,
                         "bridging_ligands": sorted(set(l.split(":")[0] for l in h.lig_labels)),
                         "angles": [round(a, 3) for a in h.angles],
                         "n_mxxm_paths": (self._stored["n_mxxm_paths"] if self._stored is not None
                                          else len(h.long_paths))},
                "parameters_eV": self.params.as_dict(), "parameter_source": self.provenance,
                "J_meV": None if self.J is None else round(self.J, 6), "status": self.status,
                ("channels_by_category_meV" if self.in_range else "formal_terms_by_category_meV"):
                    {k: round(v, 6) for k, v in self.summary.items()},
                "direct_path_only_meV": {k: round(v, 6) for k, v in self.direct_only.items()},
                "comparison_meV": self.comparisons, "notes": self.notes,
                "expansion_t_over_delta": None if self.expansion is None else round(self.expansion, 4),
                "expansion_t_dd_over_E_MH": None if self.expansion_dd is None else round(self.expansion_dd, 4),
                "expansion_limit": EXPANSION_LIMIT,
                "channels": [self._channel_dict(c) for c in self.channels]}

    @classmethod
    def from_dict(cls, d: dict) -> "BondAnalysis":
        """Inverse of :meth:`as_dict` (meV, eV, Å, degrees as stored).  The hopping matrices are not stored: the
        bond's :class:`~.paths.BondHoppings` holds its sites, elements, distance, sharing, M–X–M angles and the
        names of the bridging ligands (as ``lig_labels``), with None for the matrices and levels and no M–X–X–M
        path blocks; J, the status and whether the expansion is in range are the stored values (made from the
        unrounded channels and expansion parameters)."""
        b = d["bond"]
        hb = BondHoppings(i=int(b["i"]), j=int(b["j"]), R=tuple(int(x) for x in b["R"]), atoms=tuple(b["atoms"]),
                          elements=tuple(b["elements"]), distance=b["distance"], t_dd=None, eps_i=None, eps_j=None,
                          lig_labels=list(b["bridging_ligands"]), angles=list(b["angles"]), sharing=b["sharing"])
        in_range = "channels_by_category_meV" in d
        res = cls(hoppings=hb, params=KanamoriParameters.from_dict(d["parameters_eV"]),
                  provenance=dict(d["parameter_source"]), channels=[Channel.from_dict(c) for c in d["channels"]],
                  summary=dict(d["channels_by_category_meV" if in_range else "formal_terms_by_category_meV"]),
                  direct_only=dict(d["direct_path_only_meV"]), comparisons=dict(d["comparison_meV"]),
                  notes=list(d["notes"]), shell=b["shell"], expansion=d["expansion_t_over_delta"],
                  expansion_dd=d["expansion_t_dd_over_E_MH"])
        res._stored = {"in_range": in_range, "status": d["status"], "J": d["J_meV"],
                       "n_mxxm_paths": int(b["n_mxxm_paths"])}
        return res

    def _channel_dict(self, c) -> dict:
        d = c.as_dict()
        if not self.in_range:     # formal perturbative terms of a divergent expansion, not exchange constants
            d["formal_term_meV"] = d.pop("J_meV")
            d["formal_term_incoherent_meV"] = d.pop("J_incoherent_meV")
            d.pop("character")
        return d

    def table(self, min_J: float = 0.005, max_paths: int = 6, max_rows: int = 30) -> str:
        h = self.hoppings
        p = self.params
        lines = [f"bond {h.i}-{h.j} R={list(h.R)} ({h.elements[0]}–{h.elements[1]}, d = {h.distance:.3f} Å"
                 + (f", shell {self.shell}" if self.shell else "") + (f", {h.sharing}" if h.sharing else "")
                 + (f", M–X–M {', '.join(f'{a:.1f}°' for a in h.angles)}" if h.angles else "") + ")",
                 f"  parameters (eV): U = {p.U:g}, J_H = {p.JH:g}, 10Dq = {p.ten_dq:.3f}, Δ_t2g(³T1) = {p.delta_t:.3f}, "
                 f"U_p = {p.Up:g}, J_p = {p.Jp:g}   [" + ", ".join(f"{k}: {v}" for k, v in self.provenance.items()) + "]",
                 f"  {'channel':<12} {'orbitals':<16} {'dir':<4} {'t_eff (meV)':>11} {'√Σt² (meV)':>10} "
                 + (f"{'J (meV)':>9} {'J_incoh':>9}" if self.in_range else f"{'term':>9} {'term_inc':>9}")
                 + f"  {'':2}  paths (signed single-particle amplitudes, meV)"]
        if not self.in_range:
            lines.insert(2, f"  status: {self.status}: the expansion diverges; the channel values below are formal "
                            "perturbative terms (meV), not exchange constants, and their sum is no J")
        shown = 0
        rows = [c for c in sorted(self.channels, key=lambda c: -abs(c.J))
                if abs(c.J) >= min_J or (c.antiphase and abs(c.J_incoherent) >= min_J)]
        for c in rows:
            if shown == max_rows:
                lines.append(f"  … {len(rows) - shown} more rows with |J| ≥ {min_J} meV (all rows: --json)")
                break
            shown += 1
            ps = sorted(c.paths, key=lambda q: -abs(q.amplitude))
            ptxt = ", ".join(f"{q.via} {1000 * q.amplitude:+.1f}" for q in ps[:max_paths])
            if len(ps) > max_paths:
                ptxt += f", … ({len(ps)} paths)"
            flag = "!" if c.antiphase else ""
            lines.append(f"  {c.category:<12} {c.orbitals[0] + '–' + c.orbitals[1]:<16} {c.direction:<4} "
                         f"{1000 * c.t_eff:11.2f} {1000 * c.t_incoherent:10.2f} {c.J:9.4f} {c.J_incoherent:9.4f}  "
                         f"{c.character if self.in_range else '  '}{flag:1}  {ptxt}")
        lines.append(("  by category (meV):  " if self.in_range else "  formal terms by category (meV, not J):  ")
                     + "   ".join(f"{k}: {v:+.4f}" for k, v in self.summary.items()))
        if self.direct_only:
            lines.append("  direct d–d path alone (meV):  " + "   ".join(f"{k}: {v:+.4f}"
                                                                       for k, v in self.direct_only.items()))
        if self.J is None:
            lines.append(f"  J (superexchange, sum): none — {self.status}")
        else:
            kind = "AF" if self.J > 1e-9 else "FM" if self.J < -1e-9 else "no exchange at this order"
            lines.append(f"  J (superexchange, sum) = {self.J:+.4f} meV  ({kind})")
        for k, v in self.comparisons.items():
            lines.append(f"  J ({k}) = {v:+.4f} meV")
        lines.append("  '!' = antiphase: coherent and incoherent sums differ by more than a factor 2")
        for n in self.notes:
            lines.append(f"  note: {n}")
        return "\n".join(lines)


def resolve_parameters(hb: BondHoppings, U=None, JH=None, ten_dq=None, delta=None, delta_t=None, Up=None, Jp=None,
                       n_eg: int = 2, hund_ct: bool = True):
    """Kanamori parameters for a bond: explicit values win; otherwise ion/ligand defaults and model levels.

    ``delta`` is the multiplet- and orbital-averaged (ZSA) charge-transfer energy (default ε̄_d − ε̄_p of the model's
    on-site levels, the Δ of ``wannmag tb``); the formulas use Δ_t2g(³T1) = Δ − 0.4·10Dq + 8J_H/3
    (:meth:`KanamoriParameters.delta_t_from_average`) unless ``delta_t`` is given.  ``ten_dq`` defaults to the on-site ε̄_eg − ε̄_t2g of the model's d orbitals in the local frame.
    ``hund_ct=False`` switches to single-particle charge-transfer denominators (Δ_t = Δ − 0.4·10Dq, eg: + 10Dq, no
    multiplet dependence) — the textbook t_pd²/Δ picture, for comparison."""
    prov = {}
    el = hb.elements[0]
    ion = ION_DEFAULTS.get(el)
    if U is None or JH is None:
        if ion is None:
            raise SuperexchangeError(f"no default U, J_H for {el}: give them (--U, --JH)")
    if U is None:
        U, prov["U"] = ion["U"], f"default for {el}"
    else:
        prov["U"] = "given"
    if JH is None:
        JH, prov["JH"] = ion["JH"], f"default for {el}"
    else:
        prov["JH"] = "given"
    eps = 0.5 * (hb.eps_i + hb.eps_j)
    e_t2g, e_eg = float(np.mean(eps[list(T2G)])), float(np.mean(eps[list(EG)]))
    if ten_dq is None:
        ten_dq, prov["ten_dq"] = e_eg - e_t2g, "model on-site levels"
    else:
        prov["ten_dq"] = "given"
    lig = hb.lig_elements[0] if hb.lig_elements else None
    ld = LIGAND_DEFAULTS.get(lig, {"Up": 2.5, "Jp": 0.6})
    if Up is None:
        Up, prov["Up"] = ld["Up"], f"default for {lig}"
    else:
        prov["Up"] = "given"
    if Jp is None:
        Jp, prov["Jp"] = ld["Jp"], f"default for {lig}"
    else:
        prov["Jp"] = "given"
    if delta_t is None:
        if delta is None:
            ep = hb.eps_p_mean
            if ep is None:
                delta, prov["delta"] = 10.0, "no ligand orbitals (unused)"
            else:
                delta, prov["delta"] = float(np.mean(eps)) - ep, "ε̄_d − ε̄_p of the model"
        else:
            prov["delta"] = "given"
        delta_t = KanamoriParameters.delta_t_from_average(delta, JH, ten_dq) if hund_ct else delta - 0.4 * ten_dq
    else:
        prov["delta"] = "Δ_t given"
    if not hund_ct:
        prov["ct_denominators"] = "single-particle (no multiplet resolution)"
    return KanamoriParameters(U=U, JH=JH, ten_dq=ten_dq, delta_t=delta_t, Up=Up, Jp=Jp, n_eg=n_eg,
                              hund_ct=hund_ct), prov


def _mb_paths(hb: BondHoppings, donor: int, recv: int, direction: str, h: np.ndarray, p: KanamoriParameters):
    """Many-body path amplitudes (functions of the receiver offset λ) for the transfer donor → recv.
    direction 'ij': donor on M_i, receiver on M_j; 'ji': donor on M_j, receiver on M_i."""
    out = []
    if direction == "ij":
        tdd = hb.t_dd[donor, recv]
    else:
        tdd = hb.t_dd[recv, donor]
    if tdd != 0.0:
        out.append(("direct", lambda lam, v=tdd: v))
    if hb.t_ip is not None:
        for k in range(hb.n_lig):
            if direction == "ij":
                prod = hb.t_pj[k, recv] * hb.t_ip[donor, k]
            else:
                prod = hb.t_ip[recv, k] * hb.t_pj[k, donor]
            if prod != 0.0:
                out.append((hb.lig_labels[k], lambda lam, v=prod, hk=h[k]: v / (p.delta_t + lam + hk)))
    ep = hb.eps_p_mean
    for label, t1, t12, t2, e1, e2 in hb.long_paths:
        h1, h2 = ep - e1, ep - e2
        for a in range(3):
            for b in range(3):
                if direction == "ij":   # donor → X1(a) → X2(b) → recv: first hole on X2(b)
                    prod = t2[b, recv] * t12[a, b] * t1[donor, a]
                    hf, hs = h2[b], h1[a]
                else:                   # donor (M_j) → X2(b) → X1(a) → recv (M_i): first hole on X1(a)
                    prod = t1[recv, a] * t12[a, b] * t2[b, donor]
                    hf, hs = h1[a], h2[b]
                if prod != 0.0:
                    out.append((label, lambda lam, v=prod, x=hf, y=hs: v / ((p.delta_t + lam + x) * (p.delta_t + lam + y))))
    return out


def _mh(paths, kind, p):
    total = lambda lam: sum(f(lam) for _, f in paths)
    J = mh_exchange(total, kind, p) if paths else 0.0
    J_inc = sum(mh_exchange(f, kind, p) for _, f in paths)
    return J, J_inc


def _check_t2g3_sites(sub, bond) -> None:
    """Refuse a bond whose end sites are not t2g³ ions with S = 3/2 (the only case the formulas implement)."""
    for s in (bond.i, bond.j):
        el = sub.elements[s]
        ox = (sub.oxidation_states or {}).get(el)
        nd = None if ox is None or el not in _GROUP else _GROUP[el] - ox
        if nd is not None and nd != 3:
            raise SuperexchangeError(f"site {s} ({el}{ox:+d}) is d{nd}: the superexchange formulas are implemented for "
                                     "t2g³ ions (S = 3/2, e.g. Cr3+, V2+)")
        if abs(float(sub.spins[s]) - 1.5) > 1e-6:
            raise SuperexchangeError(f"site {s} ({sub.elements[s]}) has S = {sub.spins[s]}: the superexchange formulas "
                                     "are implemented for t2g³ ions (S = 3/2, e.g. Cr3+, V2+)")


def _hopping_notes(hb: BondHoppings, p: KanamoriParameters) -> list:
    """Notes on the bond's hoppings (imaginary parts, no ligand orbitals or paths) and on eg excitation energies
    too small for perturbation theory."""
    notes = []
    if hb.max_imag > 1e-3:
        notes.append(f"hoppings have imaginary parts up to {1000 * hb.max_imag:.1f} meV (gauge or spin–orbit); "
                     "their real parts are used")
    if not hb.has_ligands:
        notes.append("the model has no ligand p orbitals: direct (d–d) channels only — the d–d hoppings of d-only "
                     "Wannier functions already contain the ligand-assisted hopping")
    elif hb.t_ip is None and not hb.long_paths:
        notes.append("no bridging ligand and no M–X–X–M path with non-zero hoppings: direct channels only")
    for name, val in (("Δ_eg(S'=2)", p.delta_t + p.ten_dq - 5 * p.JH), ("E_MH(t2g→eg, S'=2)", p.E_tt + p.ten_dq - 5 * p.JH)):
        if (hb.t_ip is not None or "E_MH" in name) and val < 0.5:
            notes.append(f"{name} = {val:.2f} eV is small: perturbation theory is unreliable for the eg channels")
    return notes


def _expansion_parameters(hb: BondHoppings, p: KanamoriParameters, h: np.ndarray):
    """(max |t_pd| / Δ, max |t_dd| / E_MH) of the bond, each None where there is no such hopping: the validity of the
    expansion (ligand hole energies ``h``)."""
    expansion = expansion_dd = None
    ep = hb.eps_p_mean
    if hb.t_ip is not None or hb.long_paths:
        # expansion parameter: largest |t_pd| / (its charge-transfer energy), t2g and eg (Hund S' = 2) receivers
        blocks = []
        if hb.t_ip is not None:
            blocks.append((hb.t_ip, hb.t_pj.T, h))
        for _, t1, _, t2, e1, e2 in hb.long_paths:
            blocks.append((t1, t2.T, np.r_[ep - e1, ep - e2]))
        r = 0.0
        for rows, off in ((list(T2G), 0.0), (list(EG), p.ten_dq - 5 * p.JH if p.hund_ct else p.ten_dq)):
            for ti, tj, hh in blocks:
                t = max(np.abs(ti[rows]).max(), np.abs(tj[rows]).max())
                r = max(r, t / max(p.delta_t + off + hh.min(), 1e-6))
        expansion = float(r)
    # direct d–d: |t_dd| over the smallest Mott–Hubbard excitation (t2g → t2g, t2g → eg Hund S' = 2)
    e_mh = min(p.E_tt, p.E_tt + p.ten_dq - 5 * p.JH)
    if np.any(hb.t_dd):
        expansion_dd = float(np.abs(hb.t_dd).max() / max(e_mh, 1e-6))
    return expansion, expansion_dd


def _mott_hubbard_channels(hb: BondHoppings, h: np.ndarray, p: KanamoriParameters, summary: dict,
                           direct_only: dict) -> list:
    """Mott–Hubbard channels (one d electron moved to the other metal, directly or through ligands) of every
    orbital pair except eg–eg; their J is added to ``summary`` and that of the direct hop alone to ``direct_only``."""
    channels = []
    for a in range(5):
        for b in range(5):
            ka, kb = _KIND[a], _KIND[b]
            if ka == "eg" and kb == "eg":
                continue
            sp_paths = path_terms(hb, a, b)
            t_eff = float(sum(q.amplitude for q in sp_paths))
            t_inc = float(np.sqrt(sum(q.amplitude ** 2 for q in sp_paths)))
            J = J_inc = 0.0
            if ka == "t2g" and kb == "t2g":
                cat, direction = "t2g–t2g MH", "both"
                for d, dn, rv in (("ij", a, b), ("ji", b, a)):
                    mb = _mb_paths(hb, dn, rv, d, h, p)
                    x, y = _mh(mb, "t2g", p)
                    J += x
                    J_inc += y
                    direct_only[cat] += _mh([q for q in mb if q[0] == "direct"], "t2g", p)[0]
            elif ka == "t2g":       # a (t2g, M_i) → b (eg, M_j)
                cat, direction = "t2g–eg MH", "i→j"
                mb = _mb_paths(hb, a, b, "ij", h, p)
                J, J_inc = _mh(mb, "eg", p)
                direct_only[cat] += _mh([q for q in mb if q[0] == "direct"], "eg", p)[0]
            else:                   # b (t2g, M_j) → a (eg, M_i)
                cat, direction = "t2g–eg MH", "j→i"
                mb = _mb_paths(hb, b, a, "ji", h, p)
                J, J_inc = _mh(mb, "eg", p)
                direct_only[cat] += _mh([q for q in mb if q[0] == "direct"], "eg", p)[0]
            if not sp_paths and J == 0.0:
                continue
            channels.append(Channel(cat, (D_NAMES[a], D_NAMES[b]), direction, sp_paths, t_eff, t_inc, J, J_inc))
            summary[cat] += J
    return channels


def _charge_transfer_channels(hb: BondHoppings, h: np.ndarray, p: KanamoriParameters, summary: dict) -> list:
    """Charge-transfer channels (two ligand holes) of every orbital pair with a bridging ligand, and their
    interference with the direct hop (CT×direct); their J is added to ``summary``."""
    channels = []
    lig_of = np.array(hb.lig_of)
    for a in range(5):
        for b in range(5):
            ka, kb = _KIND[a], _KIND[b]
            t1, t2 = hb.t_ip[a], hb.t_pj[:, b]
            if not (np.any(t1) and np.any(t2)):
                continue
            cat = {("t2g", "t2g"): "CT t2g–t2g", ("eg", "eg"): "CT eg–eg"}.get((ka, kb), "CT t2g–eg")
            J = ct_exchange(t1, t2, ka, kb, p, hole_energy=h, ligand_of=hb.lig_of)
            J_inc = 0.0
            for L in sorted(set(hb.lig_of)):
                sel = lig_of == L
                J_inc += ct_exchange(t1[sel], t2[sel], ka, kb, p, hole_energy=h[sel])
            sp_paths = [q for q in path_terms(hb, a, b) if q.kind == "ligand"]
            t_eff = float(sum(q.amplitude for q in sp_paths))
            t_inc = float(np.sqrt(sum(q.amplitude ** 2 for q in sp_paths)))
            if abs(J) > 1e-7 or abs(J_inc) > 1e-7:
                channels.append(Channel(cat, (D_NAMES[a], D_NAMES[b]), "both", sp_paths, t_eff, t_inc, J, J_inc))
                summary[cat] += J
            tdd = hb.t_dd[a, b]
            if tdd != 0.0:
                Jx = ct_direct_exchange(tdd, t1, t2, ka, kb, p, hole_energy=h)
                Jx_inc = sum(ct_direct_exchange(tdd, t1[lig_of == L], t2[lig_of == L], ka, kb, p,
                                                hole_energy=h[lig_of == L]) for L in sorted(set(hb.lig_of)))
                if abs(Jx) > 1e-7 or abs(Jx_inc) > 1e-7:
                    channels.append(Channel("CT×direct", (D_NAMES[a], D_NAMES[b]), "both",
                                            [q for q in path_terms(hb, a, b) if q.kind != "mxxm"],
                                            t_eff + tdd, float(np.hypot(t_inc, tdd)), Jx, Jx_inc))
                    summary["CT×direct"] += Jx
    return channels


def analyse_bond(model, report, bond, params: dict | None = None, frames=None, shell: int | None = None,
                 comparisons: dict | None = None) -> BondAnalysis:
    """Channel decomposition of one bond (a :class:`wannmag.structures.Bond` of ``report``); ``params`` are keyword
    arguments of :func:`resolve_parameters`."""
    hb = bond_hoppings(model, report, bond, frames=frames)
    _check_t2g3_sites(report.sublattice, bond)
    p, prov = resolve_parameters(hb, **(params or {}))
    res = BondAnalysis(hoppings=hb, params=p, provenance=prov, shell=shell, comparisons=dict(comparisons or {}))
    res.notes.extend(_hopping_notes(hb, p))
    ep = hb.eps_p_mean
    h = (ep - hb.eps_p) if hb.eps_p is not None else np.zeros(0)
    res.expansion, res.expansion_dd = _expansion_parameters(hb, p, h)
    r = res.expansion_max
    if not res.in_range:
        res.notes.append(f"{res.status}: the expansion diverges for this bond (radius of convergence t/Δ = 1/2), "
                         "the channel values are formal perturbative terms and their sum is not an exchange "
                         "constant; non-perturbative channels: --ed (cluster exact diagonalisation) or --green")
    elif r > 0.3:
        res.notes.append(f"{res.status}: the expansion is only qualitative for this bond")
    summary = {c: 0.0 for c in CATEGORIES}
    direct_only = {"t2g–t2g MH": 0.0, "t2g–eg MH": 0.0}
    res.channels.extend(_mott_hubbard_channels(hb, h, p, summary, direct_only))
    if hb.t_ip is not None:
        res.channels.extend(_charge_transfer_channels(hb, h, p, summary))
    res.summary = summary
    res.direct_only = direct_only
    return res


@dataclass
class SuperexchangeResult:
    """Superexchange analysis of the requested bonds of one model."""

    name: str
    report: object
    bonds: list
    warnings: list = field(default_factory=list)
    _stored: dict | None = field(default=None, init=False, repr=False, compare=False)  # from_dict: see there

    def shell_summary(self) -> list[dict]:
        """Per shell: number of bonds analysed, mean J and mean channel contributions (meV); the stored summary
        for a result rebuilt by :meth:`from_dict` (means of the unrounded bond values)."""
        if self._stored is not None:
            return [dict(x) for x in self._stored["shells"]]
        out = []
        for s in sorted({b.shell for b in self.bonds}):
            bs = [b for b in self.bonds if b.shell == s]
            ok = all(b.in_range for b in bs)
            worst = max(bs, key=lambda b: b.expansion_max)
            out.append({"shell": s, "distance": round(float(np.mean([b.hoppings.distance for b in bs])), 4),
                        "n_bonds": len(bs), "status": worst.status,
                        "J_meV": round(float(np.mean([b.J for b in bs])), 6) if ok else None,
                        "J_spread_meV": round(float(np.ptp([b.J for b in bs])), 6) if ok else None,
                        ("channels_meV" if ok else "formal_terms_meV"):
                            {c: round(float(np.mean([b.summary[c] for b in bs])), 6) for c in CATEGORIES}})
        return out

    def to_spin_model(self) -> SpinModel:
        """Isotropic SpinModel (internal convention) with the superexchange J of every analysed bond; refused
        (:class:`SuperexchangeError`) if a bond's expansion is out of range (its J is None)."""
        bad = [b for b in self.bonds if not b.in_range]
        if bad:
            raise SuperexchangeError(f"{self.name}: no spin model from the perturbative channels: bond "
                                     f"{bad[0].hoppings.i}-{bad[0].hoppings.j} (shell {bad[0].shell}) is {bad[0].status}")
        if self.report is None or getattr(self.report, "sublattice", None) is None:
            raise SuperexchangeError(f"{self.name}: no spin model without the structure (a result rebuilt by "
                                     "from_dict needs report=, the StructureReport with its sublattice)")
        sub = self.report.sublattice
        sites = [Site(np.array(pos), el, float(s), label=f"{el}{k}")
                 for k, (pos, el, s) in enumerate(zip(sub.positions, sub.elements, sub.spins))]
        model = SpinModel(cell=sub.atoms.cell.array.copy(), sites=sites, pbc=tuple(sub.pbc),
                          meta={"method": "superexchange (Kanamori t2g³ perturbation theory on Wannier hoppings)",
                                "source": self.name,
                                "parameters_eV": self.bonds[0].params.as_dict() if self.bonds else {}})
        for b in self.bonds:
            model.add_bond(b.hoppings.i, b.hoppings.j, b.hoppings.R, b.J, shell=b.shell)
        return model

    def as_dict(self) -> dict:
        return {"source": self.name, "convention": "H = sum_{i<j} J S_i.S_j, each bond once, |S| = 3/2, J > 0 AF, meV",
                "shells": self.shell_summary(), "bonds": [b.as_dict() for b in self.bonds], "warnings": self.warnings}

    @classmethod
    def from_dict(cls, d: dict, report=None) -> "SuperexchangeResult":
        """Inverse of :meth:`as_dict`: the bonds by :meth:`BondAnalysis.from_dict`, the shell summary as stored.
        The structure report is not stored: give it as ``report`` (a
        :class:`~wannmag.structures.StructureReport`) for :meth:`to_spin_model`."""
        res = cls(name=d["source"], report=report, bonds=[BondAnalysis.from_dict(b) for b in d["bonds"]],
                  warnings=list(d.get("warnings", [])))
        res._stored = {"shells": [dict(x) for x in d["shells"]]}
        return res

    def table(self) -> str:
        out = [f"superexchange of {self.name}"]
        for w in self.warnings:
            out.append(f"warning: {w}")
        shown = set()
        for b in self.bonds:
            if b.shell in shown:
                continue
            shown.add(b.shell)
            out.append("")
            out.append(b.table())
        out.append("")
        out.append("shell means (meV): " + "; ".join(
            f"shell {r['shell']} ({r['n_bonds']} bonds, d = {r['distance']:.3f} Å): "
            + (f"J = {r['J_meV']:+.4f} (spread {r['J_spread_meV']:.1e})" if r["J_meV"] is not None
               else f"J: none, {r['status']}") for r in self.shell_summary()))
        return "\n".join(out)


def superexchange(model, shells=(1,), n_shells: int | None = None, report=None, comparisons: dict | None = None,
                  magnetic=None, **params) -> SuperexchangeResult:
    """Superexchange channels of all bonds of the given neighbour ``shells`` (1 = nearest) of a spin-averaged model
    (:class:`~wannmag.tightbinding.TBModel` with atoms; a :class:`CollinearTBModel` is spin-averaged).  ``params``:
    U, JH, ten_dq, delta, delta_t, Up, Jp (eV, see :func:`resolve_parameters`).  ``comparisons``: {shell: {method:
    J}} shown next to the result (e.g. energy mapping, force theorem).  ``magnetic``: element symbols of the
    magnetic (metal) atoms, overriding their detection from the structure and the d orbitals."""
    if isinstance(model, CollinearTBModel):
        model = model.spin_averaged()
    if model.atoms is None:
        raise SuperexchangeError(f"{model.name}: the model has no structure (atoms); cannot find bonds and ligands")
    shells = sorted({int(s) for s in shells})
    if not shells or shells[0] < 1:
        raise SuperexchangeError(f"shell indices start at 1, got {shells}")
    if report is None:
        report = analyse_structure(model.atoms, n_shells=max(n_shells or 0, max(shells)), magnetic=magnetic)
    avail = {s.index for s in report.shells}
    missing = [s for s in shells if s not in avail]
    if missing:
        raise SuperexchangeError(f"{model.name}: shell(s) {missing} not found (the structure has {len(avail)} shells)")
    out = SuperexchangeResult(name=model.name, report=report, bonds=[])
    if not any(o.l == 1 for o in model.orbitals):
        msg = "model has no ligand p orbitals: direct (d–d) channels only"
        warnings.warn(msg, NoLigandWarning, stacklevel=2)
        out.warnings.append(msg)
    frames = local_frames(model, metals=None if magnetic is None else metal_atoms(model, magnetic))
    for sh in report.shells:
        if sh.index not in shells:
            continue
        comp = (comparisons or {}).get(sh.index, {})
        for bond in sh.bonds:
            out.bonds.append(analyse_bond(model, report, bond, params=params, frames=frames, shell=sh.index,
                                          comparisons=comp))
    return out
