"""Every exchange route of CrI3 and VPS3 side by side → data/exchange/<material>_routes.json (issue 17).

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python data/exchange/make_routes.py [CrI3 VPS3]

Re-runnable: the energy mapping (data/dft/<m>_energies.json, fitted now; its seconds are the recorded DFT wall times
plus the fit) and the force theorem on the FM reference (data/dft/<m> Wannier files, computed now, seconds measured)
are made here; every other route is read from the route files that exist in this folder at the time
(<m>_neel_mft.json, <m>_spiral.json, <m>_ligand_mft.json, <m>_gpaw_mft.json, <m>_channels.json,
<m>_wannier_basis.json — the force theorem on other Wannier bases of the same FM ground state, made by
data/exchange/wannier_basis.py; see wannmag.magnetism.routes.ROUTE_KINDS).  A missing route file is a row "not computed" with the reason, never a
number.  Output: {"material", "spin", "routes": [{"name", "J1", "J2", "J3", "method", "settings", "seconds", …}],
"gap": {"J1_energy_mapping", "J1_force_theorem", "contributions": {name: meV}, …}, "mc": {…}} in meV, internal
convention H = Σ_{i<j} J S_i·S_j (each bond once, classical spins |S| = S, J > 0 AF).  ``wannmag exchange compare
data/exchange`` prints the tables (both conventions).

Force-theorem settings: 12×12×1 k, 120 contour points, E_F mid-gap at the .win occupation, bonds up to 8.5 Å (CrI3)
/ 7.0 Å (VPS3) — the same as data/exchange/neel_wannier.py uses for the Néel-reference models, so that the two
references differ only by the reference state.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from wannmag._atomic import atomic_write_json  # noqa: E402
from wannmag.magnetism.routes import (build_routes, collect_route_files, energy_mapping_route,  # noqa: E402
                                      force_theorem_route, read_routes_json)

HERE = ROOT / "data" / "exchange"
MFT = {"kmesh": (12, 12, 1), "n_energy": 120}
RCUT = {"CrI3": 8.5, "VPS3": 7.0}
BASIS = {"CrI3": "Cr d + I p, 28 WFs, bands 7–34 isolated (I 5s excluded), spreads ≤ 2.36 Å²",
         "VPS3": "V d + S p + P p, 34 WFs, disentangled with a frozen window from the projected DOS; the MLWF gauge "
                 "breaks C3 on one 1NN bond by ≈ 12 %"}

#: why the package's force-theorem routes use the shipped basis and not another one
BASIS_CHOICE = {"CrI3": "the Cr d + I p manifold is isolated by gaps (no window to choose, no disentanglement), so "
                        "its MLWFs follow from the projections alone and reproduce every band of the manifold (0.01 "
                        "meV); a disentangled or d-only basis adds choices (outer/frozen window, electron count) "
                        "and moved J1 by ≤ 0.1 meV (≤ 11 %), far less than the gap to energy mapping",
                "VPS3": "the V d + S p + P p manifold is entangled with the bands above, so every basis of it is "
                        "disentangled: the shipped one freezes the projected-DOS window (the package's automatic "
                        "choice, used by every Wannier-based number); freezing only the occupied states moves the FM "
                        "force-theorem J1 by +4.5 meV (+13 %), the same direction as and about half of the FM→Néel "
                        "reference-state step (−5.0), and a V d-only basis is refused for the minority channel (no "
                        "state in its frozen window, a Wannier function centred 1.56 Å off its V)"}


def rel(path) -> str:
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def basis_note(material: str) -> str:
    """What the table says about the Wannier basis: the other bases' rows and the reproduction check of
    <material>_wannier_basis.json (data/exchange/wannier_basis.py), or that they are not computed."""
    f = HERE / f"{material}_wannier_basis.json"
    if not f.exists():
        return f"no second Wannier basis computed for {material} ({f.name} absent)"
    d = read_routes_json(f)
    rep = d.get("reproduction") or {}
    names = [r.get("name") for r in d.get("routes") or [] if isinstance(r, dict)]
    diff = rep.get("max_abs_diff_meV")
    check = (f"the shipped basis Wannierised again from that ground state gives the FM route's J1–J3 within "
             f"{diff:.1e} meV" if isinstance(diff, (int, float)) and not isinstance(diff, bool)
             else "no reproduction check of the shipped basis recorded")
    return (f"other Wannier bases of the same FM ground state: {'; '.join(map(str, names))} ({f.name}, "
            f"data/exchange/wannier_basis.py); {check}. The package keeps the shipped basis: "
            + BASIS_CHOICE.get(material, "its automatic window and projections"))


def make(material: str):
    em, info = energy_mapping_route(ROOT / "data" / "dft" / f"{material}_energies.json")
    em.source = rel(em.source)
    ft, finfo = force_theorem_route(ROOT / "data" / "dft" / material, rcut=RCUT[material], **MFT)
    ft.source = rel(ft.source)
    ft.settings["wannier"] = rel(ft.settings["wannier"])
    others = collect_route_files(HERE, material, info["spin"], distances=info["distances"],
                                 skip={em.name, ft.name})
    for r in others:
        r.source = rel(r.source)
    comp = build_routes(material, info["spin"], [em, ft] + others, dE_neel_meV=info["dE_neel_meV"],
                        notes=["made by data/exchange/make_routes.py (energy mapping and FM force theorem computed "
                               "on the spot; other routes read from their route files)",
                               f"Wannier basis of the force-theorem routes: data/dft/{material} ({BASIS[material]}), "
                               "the package's own Wannierisation (wannmag.workflows.wannier) that every Wannier-based "
                               "number of the package uses; the force-theorem J1 depends on the basis (issue 17: "
                               "1.87 against 1.08 meV, TB2J convention, for an independent CrI3 fit)",
                               basis_note(material)])
    atomic_write_json(HERE / f"{material}_routes.json", comp.as_dict())
    print(comp.table(), flush=True)
    return comp


if __name__ == "__main__":
    for m in sys.argv[1:] or ["CrI3", "VPS3"]:
        make(m)
        print()
