"""Electronic structure of a tight-binding model: k meshes, DOS and orbital-projected DOS (Gaussian broadening),
Fermi level from an electron count, band edges and gap, and the orbital character of the gap edges.

Energies in eV; DOS in states/eV per cell (spin-summed for a spinless model: each band holds 2 electrons; 1 for a
collinear channel or a spinor model).  Band edges on a finite k mesh are upper bounds of the true gap.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from .model import CollinearTBModel, TBError, TBModel

__all__ = ["kmesh", "BandEdges", "band_edges", "fermi_level_warning", "midgap_fermi_level", "nominal_electron_count", "orbital_weights", "dos", "projected_dos",
           "edge_character", "orbital_groups"]


def kmesh(model, n=None, spacing: float = 0.08, shift=False) -> np.ndarray:
    """Γ-centred Monkhorst–Pack mesh (reduced coordinates) over the periodic directions of ``model``.

    ``n``: points per direction (int or 3 ints); default from ``spacing`` (1/Å): n_i = ceil(|b_i| / spacing).
    """
    m = model.up if isinstance(model, CollinearTBModel) else model
    per = m.periodic if m.periodic.any() else np.ones(3, bool)
    if n is None:
        b = np.linalg.norm(m.reciprocal_lattice, axis=1)
        n = [max(2, int(np.ceil(x / spacing))) for x in b]
    n = np.broadcast_to(np.asarray(n, int), (3,)).copy()
    n[~per] = 1
    axes = [(np.arange(k) + (0.5 if shift else 0.0)) / k for k in n]
    return np.array(np.meshgrid(*axes, indexing="ij")).reshape(3, -1).T


def _channels(model) -> list[tuple[str | None, TBModel]]:
    if isinstance(model, CollinearTBModel):
        return [("up", model.up), ("down", model.down)]
    if isinstance(model, TBModel):
        return [(model.spin, model)]
    raise TBError(f"expected a TBModel or CollinearTBModel, got {type(model).__name__}")


def nominal_electron_count(model) -> float | tuple[float, float]:
    """Electrons in the Wannier subspace from nominal ionic charges: d^n on the metals (n = group − oxidation
    state), full p⁶ shells on anion ligands.  For a :class:`CollinearTBModel` the pair (N↑, N↓), with each metal's
    moment along the sign of its exchange splitting (high-spin S of :mod:`wannmag.structures.magnetic`).
    """
    # local: wannmag.structures costs ~0.4 s to import (ase.build, pymatgen); tightbinding alone stays light
    from ..structures.magnetic import TRANSITION_METALS, d_electron_count, spin_of_ion
    from ..structures.magnetic import _oxidation_states

    m = _channels(model)[0][1]
    if m.atoms is None:
        raise TBError(f"{m.name}: no structure; pass the number of electrons")
    ox = _oxidation_states(m.atoms)
    per_atom: dict[int, tuple[float, float]] = {}
    delta = model.exchange_splitting() if isinstance(model, CollinearTBModel) else None
    for a in m.atoms_with_orbitals:
        el = m.atoms.get_chemical_symbols()[a]
        idx = m.select(atom=a)
        ls = sorted({m.orbitals[i].l for i in idx})
        if el not in ox:
            raise TBError(f"{m.name}: no oxidation state for {el}; pass the number of electrons (or fermi_energy)")
        if el in TRANSITION_METALS:
            if ls != [2]:
                raise TBError(f"{m.name}: nominal count needs only d orbitals on {el}{a}; pass the number of electrons")
            nd = d_electron_count(el, ox[el])
            s = spin_of_ion(el, ox[el])
            sign = 1.0
            if delta is not None:
                sign = -1.0 if np.mean(delta[m.select(atom=a, l=2)]) > 0 else 1.0
            up, dn = nd / 2 + sign * s, nd / 2 - sign * s
            per_atom[a] = (up, dn)
        elif ox[el] < 0 and ls == [1]:
            per_atom[a] = (3.0, 3.0)
        else:
            raise TBError(f"{m.name}: cannot count the electrons of {el}{a} (oxidation state {ox[el]:+d}, orbitals "
                          f"l = {ls}); pass the number of electrons (or fermi_energy)")
    up = sum(v[0] for v in per_atom.values())
    dn = sum(v[1] for v in per_atom.values())
    if isinstance(model, CollinearTBModel):
        return (up, dn)
    return up + dn


@dataclass
class BandEdges:
    """Fermi level, valence-band maximum, conduction-band minimum and gap (eV) on a k mesh."""

    fermi_energy: float
    vbm: float
    cbm: float
    gap: float
    insulating: bool
    n_electrons: float | tuple | None = None
    k_vbm: np.ndarray | None = None
    k_cbm: np.ndarray | None = None
    spin_vbm: str | None = None
    spin_cbm: str | None = None
    source: str = ""

    def as_dict(self) -> dict:
        r = lambda x: round(float(x), 6)  # noqa: E731
        return {"fermi_energy": r(self.fermi_energy), "vbm": r(self.vbm), "cbm": r(self.cbm), "gap": r(self.gap),
                "insulating": self.insulating, "n_electrons": self.n_electrons,
                "k_vbm": None if self.k_vbm is None else np.round(self.k_vbm, 5).tolist(),
                "k_cbm": None if self.k_cbm is None else np.round(self.k_cbm, 5).tolist(),
                "spin_vbm": self.spin_vbm, "spin_cbm": self.spin_cbm, "fermi_source": self.source}

    @classmethod
    def from_dict(cls, d: dict) -> "BandEdges":
        """Inverse of :meth:`as_dict` (the stored values: energies rounded to 1e-6 eV, k points to 1e-5)."""
        k = lambda x: None if x is None else np.asarray(x, float)  # noqa: E731
        return cls(fermi_energy=d["fermi_energy"], vbm=d["vbm"], cbm=d["cbm"], gap=d["gap"],
                   insulating=d["insulating"], n_electrons=d.get("n_electrons"), k_vbm=k(d.get("k_vbm")),
                   k_cbm=k(d.get("k_cbm")), spin_vbm=d.get("spin_vbm"), spin_cbm=d.get("spin_cbm"),
                   source=d.get("fermi_source", ""))


def midgap_fermi_level(model) -> tuple[float, str]:
    """(E_F in eV, how it was found) for an insulating Wannier model without a given electron count: the occupation
    of :func:`band_edges` (``fermi_energy`` of the .win file, else the nominal ionic count) and E_F in mid-gap.
    A model that is metallic at that occupation raises :class:`TBError` (give the electron count instead)."""
    be = band_edges(model)
    if not be.insulating:
        raise TBError(f"{getattr(model, 'name', 'model')}: not insulating with the {be.source}; give the number of "
                      "electrons in the Wannier manifold or the Fermi level")
    return 0.5 * (be.vbm + be.cbm), f"mid-gap ({be.source}; gap {be.gap:.3f} eV)"


def fermi_level_warning(model, fermi_energy: float, k=None) -> str | None:
    """One line of warning when ``fermi_energy`` (eV, e.g. from a user's electron count) does not lie in the gap the
    model has at its own nominal occupation (``fermi_energy`` of the .win file, else the nominal ionic count, as in
    :func:`band_edges`): inside a band (a metallic occupation of an insulator's bands) or in another gap (another
    electron count).  None when the model has no gap at its nominal occupation (nothing to compare with) or when
    the Fermi level lies in that gap."""
    try:
        nominal = band_edges(model, k=k)
    except TBError:
        return None
    if not nominal.insulating or nominal.vbm < fermi_energy < nominal.cbm:
        return None
    n = nominal.n_electrons
    count = (f"{sum(n):g} (↑ {n[0]:g}, ↓ {n[1]:g})" if isinstance(n, (tuple, list)) else f"{n:g}")
    gap = (f"the model has a gap from {nominal.vbm:.3f} to {nominal.cbm:.3f} eV ({nominal.gap:.3f} eV) at its nominal "
           f"occupation of {count} electrons per cell ({nominal.source})")
    try:
        given = band_edges(model, fermi_energy=fermi_energy, k=k, snap=False)
    except TBError:
        return f"E_F = {fermi_energy:.3f} eV lies outside the bands, but {gap}; check the electron count / Fermi level"
    if not given.insulating:
        return (f"E_F = {fermi_energy:.3f} eV lies inside a band, but {gap}: the result describes a metallic "
                "occupation of the insulator's bands; check the electron count / Fermi level")
    return (f"E_F = {fermi_energy:.3f} eV lies in another gap ({given.vbm:.3f} to {given.cbm:.3f} eV) than the nominal "
            f"one: {gap}; check the electron count / Fermi level")


def band_edges(model, n_electrons=None, fermi_energy: float | None = None, k=None, nk=None,
               gap_tol: float = 1e-3, snap: bool = True) -> BandEdges:
    """Band edges of ``model`` on the mesh ``k`` (default :func:`kmesh`).

    The occupation is fixed by, in this order: ``fermi_energy`` (eV); ``n_electrons`` (electrons per cell in the
    Wannier subspace, spin-summed; a pair (N↑, N↓) fixes each channel of a collinear model separately); the
    ``fermi_energy`` keyword of the model's .win file; :func:`nominal_electron_count`.  For an insulator the Fermi
    level is put in mid-gap (unless given).

    With a Fermi energy the model is an insulator if every channel has the same number of bands below E_F at every
    k.  Otherwise, with ``snap=True`` (E_F of a DFT run at a band edge of slightly shifted Wannier bands), the
    neighbouring integer band counts per channel are tried and an insulating occupation whose gap lies within
    0.1 eV of E_F is used (the largest such gap; ``source`` says so); failing that the model is reported as a metal (gap 0).
    """
    chans = _channels(model)
    if fermi_energy is not None and not np.isfinite(fermi_energy):
        raise TBError(f"the Fermi energy must be a finite number of eV, got {fermi_energy}")
    for n in (n_electrons if isinstance(n_electrons, (tuple, list)) else [n_electrons]):
        if n is not None and not (np.isfinite(n) and n > 0):
            raise TBError(f"the number of electrons must be a positive number, got {n}")
    if k is None:
        k = kmesh(model, nk)
    k = np.atleast_2d(k)
    nkp = len(k)
    E = {s: m.eigenvalues(k) for s, m in chans}
    epb = {s: m.electrons_per_band for s, m in chans}
    name = chans[0][1].name
    if fermi_energy is None and n_electrons is None:
        hint = getattr(chans[0][1], "fermi_energy_hint", None)
        if hint is not None:
            fermi_energy, source = hint, "fermi_energy of the .win file"
        else:
            n_electrons, source = nominal_electron_count(model), "nominal ionic count"
    else:
        source = "given Fermi energy" if fermi_energy is not None else "given electron count"

    def from_bands(nb: dict):
        """Edges for a fixed number of occupied bands per channel (the same at every k)."""
        vb = [(E[s][:, nb[s] - 1].max(), s, int(E[s][:, nb[s] - 1].argmax())) for s in E if nb[s] > 0]
        cb = [(E[s][:, nb[s]].min(), s, int(E[s][:, nb[s]].argmin())) for s in E if nb[s] < E[s].shape[1]]
        if not vb or not cb:
            raise TBError(f"{name}: all bands empty or all bands full at this occupation")
        return max(vb), min(cb)

    def from_states(n_total: float, chan_list):
        """Edges for n_total electrons filled over the listed channels (common Fermi level)."""
        allE = np.concatenate([E[s].ravel() for s in chan_list])
        spin = np.concatenate([[s] * E[s].size for s in chan_list])
        kidx = np.concatenate([np.tile(np.arange(nkp)[:, None], (1, E[s].shape[1])).ravel() for s in chan_list])
        nocc_f = n_total * nkp / epb[chan_list[0]]
        nocc = int(round(nocc_f))
        if abs(nocc - nocc_f) > 1e-6 or nocc <= 0 or nocc >= len(allE):
            raise TBError(f"{name}: {n_total:g} electrons cannot fill {len(allE) // nkp} bands of "
                          f"{epb[chan_list[0]]:g} electron(s) each on this mesh")
        order = np.argsort(allE, kind="stable")
        v, c = order[nocc - 1], order[nocc]
        return (allE[v], spin[v], kidx[v]), (allE[c], spin[c], kidx[c])

    ef = fermi_energy
    if fermi_energy is not None:
        counts = {s: (E[s] <= fermi_energy).sum(axis=1) for s in E}
        if all(np.all(c == c[0]) for c in counts.values()):
            (vbm, sv, kv), (cbm, sc, kc) = from_bands({s: int(c[0]) for s, c in counts.items()})
            n_used = sum(int(c[0]) * epb[s] for s, c in counts.items())
        else:
            best = None
            if snap:
                opts = [sorted({int(np.floor(c.mean())), int(np.ceil(c.mean()))}) for c in counts.values()]
                for combo in itertools.product(*opts):
                    nb = dict(zip(counts, combo))
                    if any(n <= 0 or n >= E[s].shape[1] for s, n in nb.items()):
                        continue
                    (v, *vi), (c, *ci) = from_bands(nb)
                    if c - v > gap_tol and v - 0.1 <= fermi_energy <= c + 0.1:
                        score = -(c - v)  # the largest gap: the real one, not a sliver between crossing bands
                        if best is None or score < best[0]:
                            best = (score, nb, (v, *vi), (c, *ci))
            if best is not None:
                _, nb, (vbm, sv, kv), (cbm, sc, kc) = best
                n_used = sum(n * epb[s] for s, n in nb.items())
                source += (f" (E_F {fermi_energy:.3f} eV cuts a band edge of the model; snapped to "
                           + ", ".join(f"{n} band(s) {s or ''}".strip() for s, n in nb.items()) + ")")
                ef = 0.5 * (vbm + cbm)
            else:  # a metal at this Fermi energy
                below = [(E[s][E[s] <= fermi_energy].max(), s) for s in E if (E[s] <= fermi_energy).any()]
                above = [(E[s][E[s] > fermi_energy].min(), s) for s in E if (E[s] > fermi_energy).any()]
                if not below or not above:
                    raise TBError(f"{name}: Fermi energy {fermi_energy:.4f} eV lies outside the bands")
                (vbm, sv), (cbm, sc) = max(below), min(above)
                kv = int(np.argwhere(E[sv] == vbm)[0][0])
                kc = int(np.argwhere(E[sc] == cbm)[0][0])
                return BandEdges(fermi_energy=float(fermi_energy), vbm=float(vbm), cbm=float(cbm), gap=0.0,
                                 insulating=False, n_electrons=None, k_vbm=k[kv], k_cbm=k[kc],
                                 spin_vbm=None if sv is None else str(sv), spin_cbm=None if sc is None else str(sc),
                                 source=source + " (metallic)")
        n_electrons = n_used
    elif isinstance(n_electrons, (tuple, list)):
        if len(chans) != 2:
            raise TBError("a pair (N_up, N_down) of electron counts needs a collinear model")
        res = [from_states(float(n), [s]) for s, n in zip(("up", "down"), n_electrons)]
        (vbm, sv, kv) = max(res[0][0], res[1][0])
        (cbm, sc, kc) = min(res[0][1], res[1][1])
    else:
        (vbm, sv, kv), (cbm, sc, kc) = from_states(float(n_electrons), [s for s, _ in chans])
    gap = max(0.0, float(cbm - vbm))
    insulating = gap > gap_tol
    if ef is None:
        ef = 0.5 * (vbm + cbm) if insulating else float(vbm)
    return BandEdges(fermi_energy=float(ef), vbm=float(vbm), cbm=float(cbm), gap=gap, insulating=insulating,
                     n_electrons=n_electrons, k_vbm=k[kv], k_cbm=k[kc],
                     spin_vbm=None if sv is None else str(sv), spin_cbm=None if sc is None else str(sc),
                     source=source)


def orbital_groups(model, by: str = "element-l") -> dict[str, list[int]]:
    """Orbital index groups: ``"element-l"`` (e.g. ``"Cr d"``, ``"I p"``), ``"l"`` (``"d"``, ``"p"``),
    ``"atom"`` (``"Cr0"``), or ``"orbital"`` (every orbital)."""
    m = _channels(model)[0][1]
    letters = {-1: "?", 0: "s", 1: "p", 2: "d", 3: "f"}
    out: dict[str, list[int]] = {}
    for i, o in enumerate(m.orbitals):
        key = {"element-l": f"{o.element} {letters.get(o.l, 'h')}", "l": letters.get(o.l, "h"),
               "atom": f"{o.element}{o.atom}", "orbital": o.label}.get(by)
        if key is None:
            raise TBError(f"unknown orbital grouping {by!r}")
        out.setdefault(key, []).append(i)
    return out


def orbital_weights(model: TBModel, k) -> tuple[np.ndarray, np.ndarray]:
    """Energies (nk, nb) and orbital weights |<w_i|ψ_nk>|² (nk, nb, nw) of one channel."""
    E, U = model.eigh(k)
    return E, (np.abs(U) ** 2).transpose(0, 2, 1)


def dos(energies, egrid, sigma: float = 0.05, weights=None, nk: int | None = None) -> np.ndarray:
    """Gaussian-broadened DOS (states/eV per k-point average) of ``energies`` (any shape) on ``egrid``."""
    e = np.asarray(energies).ravel()
    w = np.ones_like(e) if weights is None else np.asarray(weights).ravel()
    nk = nk or (np.asarray(energies).shape[0] if np.ndim(energies) > 1 else 1)
    g = np.asarray(egrid)
    out = np.zeros_like(g, dtype=float)
    for s in range(0, len(e), 20000):
        x = (g[:, None] - e[None, s:s + 20000]) / sigma
        out += (np.exp(-0.5 * x * x) * w[None, s:s + 20000]).sum(axis=1)
    return out / (sigma * np.sqrt(2 * np.pi) * nk)


def projected_dos(model, egrid=None, sigma: float = 0.05, k=None, nk=None, by: str = "element-l") -> dict:
    """Total and orbital-projected DOS: ``{"energy": egrid, channel: {"total": …, group: …}}`` with channel
    ``"total"`` for a single model or ``"up"``/``"down"`` for a collinear pair (states/eV per cell, including the
    spin degeneracy of a spinless model)."""
    chans = _channels(model)
    if k is None:
        k = kmesh(model, nk)
    groups = orbital_groups(model, by)
    res = {}
    emin = emax = None
    data = []
    for s, m in chans:
        E, W = orbital_weights(m, k)
        data.append((s, m, E, W))
        emin = E.min() if emin is None else min(emin, E.min())
        emax = E.max() if emax is None else max(emax, E.max())
    if egrid is None:
        egrid = np.linspace(emin - 5 * sigma, emax + 5 * sigma, 1200)
    res["energy"] = np.asarray(egrid)
    for s, m, E, W in data:
        f = m.electrons_per_band
        ch = {"total": f * dos(E, egrid, sigma, nk=len(k))}
        for g, idx in groups.items():
            ch[g] = f * dos(E, egrid, sigma, weights=W[:, :, idx].sum(axis=2), nk=len(k))
        res[s if s is not None else "total"] = ch
    return res


def edge_character(model, edges: BandEdges | None = None, window: float = 0.1, k=None, nk=None,
                   by: str = "element-l", **edge_kw) -> dict:
    """Orbital character of the valence-band top and conduction-band bottom.

    Weights of the orbital groups (and the totals ``"d"``/``"p"``) averaged over all states within ``window`` eV
    below the VBM (``"vbm"``) and above the CBM (``"cbm"``) on the k mesh, all channels together.
    """
    chans = _channels(model)
    if k is None:
        k = kmesh(model, nk)
    if edges is None:
        edges = band_edges(model, k=k, **edge_kw)
    groups = orbital_groups(model, by)
    lgroups = orbital_groups(model, "l")
    acc = {"vbm": [], "cbm": []}
    for s, m in chans:
        E, W = orbital_weights(m, k)
        sel_v = (E <= edges.vbm + 1e-9) & (E >= edges.vbm - window)
        sel_c = (E >= edges.cbm - 1e-9) & (E <= edges.cbm + window)
        acc["vbm"].append(W[sel_v])
        acc["cbm"].append(W[sel_c])
    out = {}
    for key, lst in acc.items():
        Wsel = np.concatenate(lst) if lst else np.zeros((0, chans[0][1].num_wann))
        if len(Wsel) == 0:
            out[key] = {}
            continue
        mean = Wsel.mean(axis=0)
        d = {g: float(mean[idx].sum()) for g, idx in groups.items()}
        for letter in ("d", "p"):
            d[letter] = float(mean[lgroups.get(letter, [])].sum()) if letter in lgroups else 0.0
        d["n_states"] = int(len(Wsel))
        out[key] = d
    return out
