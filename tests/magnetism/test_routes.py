"""Exchange routes side by side (issue 17, items 2 and 7): wannmag.magnetism.routes and `wannmag exchange compare`.

J in meV, internal convention H = Σ_{i<j} J S_i·S_j (each bond once, |S| = S, J > 0 AF); TB2J: J_TB2J = −J S²/2.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from wannmag.cli import main
from wannmag.magnetism.routes import ExchangeRoutes, Route, RoutesError, build_routes, read_route_file

ROOT = Path(__file__).resolve().parents[2]
EXCHANGE = ROOT / "data" / "exchange"
RUN = ROOT / "data" / "runs" / "CrI3_accurate"
S = 1.5


def _compare(capsys, d, json_out=False):
    rc = main(["exchange", "compare", str(d)] + (["--json"] if json_out else []))
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def _error_line(capsys, d):
    rc, out, err = _compare(capsys, d)
    assert rc == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wannmag: error: ") and "Traceback" not in err
    return lines[0]


# ------------------------------------------------------------------------------------------ physics of the average
def _classical(J, B, extra=0.0):
    """Energy per ion (meV) of the honeycomb with the two sublattices at angle θ, 1NN bonds only (3/2 per ion):
    E(θ) = 3/2 [J S² cos θ + B S⁴ cos² θ + extra S² cos³ θ]."""
    return lambda t: 1.5 * (J * S**2 * np.cos(t) + B * S**4 * np.cos(t) ** 2 + extra * S**2 * np.cos(t) ** 3)


def _routes_of(E):
    """Energy mapping from E(π) − E(0) = −3 S² J1 and the force theorems as the curvature of E at θ = 0 (FM) and
    θ = π (Néel): d²E/dθ² = ∓ 3/2 S² J_eff (finite differences, h = 1e-4)."""
    h = 1e-4
    curv = [(E(t + h) - 2 * E(t) + E(t - h)) / h**2 for t in (0.0, np.pi)]
    J_fm, J_neel = -curv[0] / (1.5 * S**2), curv[1] / (1.5 * S**2)
    J_map = -(E(np.pi) - E(0.0)) / (3 * S**2)
    routes = [Route("energy mapping", J1=J_map, reference="FM, Néel"),
              Route("force theorem (FM reference)", J1=J_fm, reference="FM"),
              Route("force theorem (Néel reference)", J1=J_neel, reference="Néel", source="test")]
    return build_routes("X", S, routes, dE_neel_meV=E(np.pi) - E(0.0)), J_fm, J_neel, J_map


def test_average_of_fm_and_neel_references_is_energy_mapping_for_a_biquadratic_model():
    J, B = -2.0, 0.3
    comp, J_fm, J_neel, J_map = _routes_of(_classical(J, B))
    assert J_fm == pytest.approx(J + 2 * B * S**2, abs=1e-5)  # J_eff(0)
    assert J_neel == pytest.approx(J - 2 * B * S**2, abs=1e-5)  # J_eff(π)
    avg = comp.route("force theorem, average of FM and Néel references")
    assert avg.status == "derived"
    assert avg.J1 == pytest.approx(J_map, abs=1e-5) and J_map == pytest.approx(J, abs=1e-12)
    g = comp.gap
    assert g["gap"] == pytest.approx(J_map - J_fm)
    (name, c), = g["contributions"].items()
    assert "reference state" in name and c == pytest.approx(g["gap"], abs=1e-5)  # the whole gap, nothing left
    assert abs(g["remainder"]) < 1e-5
    pred = avg.settings["E_Neel_minus_E_FM_meV_per_ion"]
    assert pred["from_average"] == pytest.approx(pred["DFT"], abs=1e-3)


def test_average_misses_terms_not_linear_in_cos_theta():
    # a cos³θ term makes J_eff(θ) quadratic in cos θ: the two end points no longer give the path average
    comp, J_fm, J_neel, J_map = _routes_of(_classical(-2.0, 0.3, extra=0.5))
    avg = comp.route("force theorem, average of FM and Neel references".replace("Neel", "Néel"))
    assert abs(avg.J1 - J_map) > 0.1


# ------------------------------------------------------------------------------------------ result object
def test_routes_round_trip_and_both_conventions():
    comp = ExchangeRoutes.from_dict(json.loads((EXCHANGE / "CrI3_routes.json").read_text()))
    again = ExchangeRoutes.from_dict(json.loads(json.dumps(comp.as_dict())))
    assert again.as_dict() == comp.as_dict()
    em = comp.route("energy mapping")
    assert em.J1 == pytest.approx(-3.554, abs=1e-3)  # README: −3.55 meV from data/dft/CrI3_energies.json
    text = comp.table()
    line = next(x for x in text.splitlines() if x.startswith("energy mapping"))
    # J_TB2J = −J S²/2 (TB2J: unit spins, both directions, > 0 FM), written out here independently of Convention
    assert f"{-em.J1 * S * S / 2:+8.3f}" in line and f"{em.J1:+8.3f}" in line
    assert "Monte Carlo uses: energy mapping" in text


def test_not_computed_routes_show_no_numbers():
    routes = [Route("energy mapping", J1=-3.5, J2=-0.6, J3=0.0),
              Route.from_dict({"name": "spin spiral (self-consistent)", "J1": -9.9, "status": "not computed",
                               "reason": "SCF not converged"})]
    comp = build_routes("CrI3", S, routes)
    sp = comp.route("spin spiral (self-consistent)")
    assert sp.J1 is None and "SCF not converged" in comp.table() and "-9.9" not in comp.table()
    assert comp.route("force theorem (Néel reference)").status == "not computed"  # listed, with the reason
    assert "no CrI3_neel_mft.json" in comp.route("force theorem (Néel reference)").reason


# ------------------------------------------------------------------------------------------ CLI on shipped data
def test_compare_on_the_shipped_routes(capsys):
    rc, out, err = _compare(capsys, EXCHANGE)
    assert rc == 0, err
    assert "CrI3: exchange by route" in out and "VPS3: exchange by route" in out
    assert "J1 gap: energy mapping -3.554" in out
    assert "Monte Carlo uses: energy mapping" in out
    rc, out, _ = _compare(capsys, EXCHANGE, json_out=True)
    data = json.loads(out)
    by = {d["material"]: d for d in data}
    for m in ("CrI3", "VPS3"):
        names = [r["name"] for r in by[m]["routes"]]
        assert {"energy mapping", "force theorem (FM reference)"} <= set(names)
        for r in by[m]["routes"]:
            assert (r["J1"] is None) == (r["status"] == "not computed")
        assert set(by[m]["gap"]) >= {"J1_energy_mapping", "J1_force_theorem", "contributions"}
    # the stored FM force theorem is the same J1 as the README's (TB2J convention 1.08 meV)
    fm = next(r for r in by["CrI3"]["routes"] if r["name"] == "force theorem (FM reference)")
    assert -fm["J1"] * S * S / 2 == pytest.approx(1.08, abs=0.01)


def test_compare_on_a_run_directory(capsys):
    rc, out, err = _compare(capsys, RUN)
    assert rc == 0, err
    assert "-3.553" in out and "-0.963" in out and "Monte Carlo uses: energy mapping" in out



def _base_copy(tmp_path):
    """CrI3_routes.json as make_routes.py writes it before any other route file exists (energy mapping and FM force
    theorem only), so that a test can add route files without meeting the shipped ones."""
    d = json.loads((EXCHANGE / "CrI3_routes.json").read_text())
    d["routes"] = [r for r in d["routes"] if r["name"] in ("energy mapping", "force theorem (FM reference)")]
    d.get("gap", {}).pop("contributions", None)
    (tmp_path / "CrI3_routes.json").write_text(json.dumps(d))


def test_compare_picks_up_a_new_route_file(tmp_path, capsys):
    _base_copy(tmp_path)
    fm = ExchangeRoutes.from_dict(json.loads((EXCHANGE / "CrI3_routes.json").read_text())).route(
        "force theorem (FM reference)")
    (tmp_path / "CrI3_neel_mft.json").write_text(json.dumps(
        {"material": "CrI3", "J1": -2.0, "J2": -0.6, "J3": 0.02, "method": "test", "seconds": {"a": 1.0, "b": 2.0}}))
    rc, out, err = _compare(capsys, tmp_path, json_out=True)
    assert rc == 0, err
    d = json.loads(out)
    rows = {r["name"]: r for r in d["routes"]}
    neel = rows["force theorem (Néel reference)"]
    assert neel["J1"] == -2.0 and neel["seconds"] == 3.0 and neel["settings"]["seconds_parts"] == {"a": 1.0, "b": 2.0}
    avg = rows["force theorem, average of FM and Néel references"]
    assert avg["J1"] == pytest.approx(0.5 * (fm.J1 - 2.0))
    (c,) = d["gap"]["contributions"].values()
    assert c == pytest.approx(0.5 * (-2.0 - fm.J1))


def test_a_route_file_with_several_rows_and_a_failed_one(tmp_path, capsys):
    _base_copy(tmp_path)
    (tmp_path / "CrI3_ligand_mft.json").write_text(json.dumps({"material": "CrI3", "spins": [1.5, 1.5], "routes": [
        {"name": "ligand A", "J1": -1.1, "J2": -0.5, "J3": 0.0, "seconds": 2.0,
         "settings": {"gap_contributions": {"ligand spins": -0.3}}},
        {"name": "ligand B", "J1": None, "settings": {"notes": ["ligand sector not positive definite"]}}]}))
    rc, out, err = _compare(capsys, tmp_path, json_out=True)
    assert rc == 0, err
    rows = {r["name"]: r for r in json.loads(out)["routes"]}
    assert rows["ligand A"]["J1"] == -1.1
    assert rows["ligand B"]["status"] == "not computed" and "not positive definite" in rows["ligand B"]["reason"]
    assert "force theorem, ligand spins downfolded" not in rows  # the file is there: no 'missing file' row
    assert json.loads(out)["gap"]["contributions"] == {"ligand spins (ligand A)": -0.3}


def _chain_route(fm_J1, em_J1, mid=(-1.0, -2.0)):
    ends = [fm_J1, *mid, em_J1]
    links = [{"name": f"step {k}", "from": f"a{k}", "to": f"a{k + 1}", "from_J1": a, "to_J1": b}
             for k, (a, b) in enumerate(zip(ends, ends[1:]))]
    return Route("chain route", J1=mid[0], reference="FM", source="test", settings={"gap_chain": links})


def test_a_gap_chain_is_summed_alone_and_the_reference_state_is_not_counted_twice():
    J, B = -2.0, 0.3
    base, J_fm, J_neel, J_map = _routes_of(_classical(J, B))
    rows = [r for r in base.routes if r.status != "derived" and r.status != "not computed"]
    comp = build_routes("X", S, rows + [_chain_route(J_fm, J_map)], dE_neel_meV=None)
    g = comp.gap
    assert g["decomposition"] == "chain"
    assert list(g["contributions"]) == [f"step {k} (chain route)" for k in range(3)]
    assert g["sum"] == pytest.approx(g["gap"], abs=1e-12) and abs(g["remainder"]) < 1e-12
    (name, v), = g["not_summed"].items()  # the reference-state entry is listed, not added to the chain
    assert "reference state" in name and v == pytest.approx(0.5 * (J_neel - J_fm))
    assert "not summed" in g["notes"][0]
    # a chain that does not end at the energy mapping's J1 is not used as the decomposition
    comp2 = build_routes("X", S, rows + [_chain_route(J_fm, J_map + 0.5)], dE_neel_meV=None)
    assert "decomposition" not in comp2.gap and len(comp2.gap["contributions"]) == 1


@pytest.mark.parametrize("m", ["CrI3", "VPS3"])
def test_shipped_gap_chain_links_computed_routes(m):
    """data/exchange/<m>_lda_wannier_mft.json: each link's ends are J1 values of shipped routes (FM force theorem,
    for VPS3 the Néel-reference force theorem, the file's own LDA+U MLWF row, GPAW plane-wave force theorem, spin
    spiral (Γ/M/K row), LDA+U energy mapping, energy mapping) and the links sum to the gap of <m>_routes.json."""
    d = json.loads((EXCHANGE / f"{m}_lda_wannier_mft.json").read_text())
    comp = ExchangeRoutes.from_dict(json.loads((EXCHANGE / f"{m}_routes.json").read_text()))
    J1 = {r.name: r.J1 for r in comp.routes if r.J1 is not None}
    chain = d["settings"]["gap_chain"]
    assert chain[0]["from_J1"] == pytest.approx(J1["force theorem (FM reference)"], abs=1e-3)
    assert chain[-1]["to_J1"] == pytest.approx(J1["energy mapping"], abs=1e-3)
    inner = [x["to_J1"] for x in chain[:-1]]
    if m == "VPS3":   # the ground state is Néel: the chain passes through the Néel-reference force theorem
        assert inner.pop(0) == pytest.approx(json.loads((EXCHANGE / "VPS3_neel_mft.json").read_text())["J1"])
    assert inner[0] == pytest.approx(d["J1"], abs=1e-12)
    gp = json.loads((EXCHANGE / f"{m}_gpaw_mft.json").read_text())["J1"]
    sp = json.loads((EXCHANGE / f"{m}_spiral.json").read_text())["J1"]
    assert sp == pytest.approx(J1["spin spiral (self-consistent)"], abs=1e-9)
    expect = [gp, sp]
    if (EXCHANGE / f"{m}_lda_mapping.json").exists():  # the LDA+U energy mapping splits the last step
        expect.append(json.loads((EXCHANGE / f"{m}_lda_mapping.json").read_text())["J1"])
        assert expect[-1] == pytest.approx(J1["energy mapping (LDA+U, spin-spiral settings)"], abs=1e-9)
    assert inner[1:] == pytest.approx(expect, abs=1e-9)
    assert sum(x["to_J1"] - x["from_J1"] for x in chain) == pytest.approx(comp.gap["gap"], abs=1e-3)
    assert comp.gap.get("decomposition") == "chain"


@pytest.mark.parametrize("material", ["CrI3", "VPS3"])
def test_shipped_spiral_rows_gamma_m_k_exact_and_every_point_within_scf_tolerance(material):
    """data/exchange/<m>_spiral.json: the first row is J1–J3 exactly determined by the points at Γ, M and K (zero
    residual, every other point listed as excluded with the reason); the second row is the every-point fit with the
    fewest shells whose rms lies within the SCF tolerance, and every fit with fewer shells does not (so the shell
    count is the rule's, not a choice); both rows are read by the comparison."""
    from wannmag.magnetism.spiral import high_symmetry_label
    from wannmag.structures import read_structure

    d = json.loads((EXCHANGE / f"{material}_spiral.json").read_text())
    assert d["select"] == "high_symmetry" and d["settings"]["rms_residual_meV_per_cell"] < 1e-6
    cell = read_structure(ROOT / "data" / "structures" / f"{material}_monolayer.cif").cell[:]
    used = [q for q in d["fit"]["q"]]
    assert len(used) == 4 and all(high_symmetry_label(cell, q) is not None for q in used)
    assert all(high_symmetry_label(cell, e["q"]) is None for e in d["excluded"] if "Γ, M or K" in e["reason"])
    sel = d["shell_selection"]
    n, tol = sel["n_shells"], sel["tolerance_meV_per_cell"]
    fits = {f["n_shells"]: f for f in sel["fits"] if f["status"] == "fitted"}
    assert fits[n]["rms_residual"] <= tol and all(fits[k]["rms_residual"] > tol for k in fits if k < n)
    rows = read_route_file(EXCHANGE / f"{material}_spiral.json", material, 1.5)
    assert [r.name for r in rows] == ["spin spiral (self-consistent)",
                                      f"spin spiral (self-consistent), every point, J1–J{n}"]
    assert rows[0].J1 == pytest.approx(d["J1"]) and rows[1].J1 == pytest.approx(fits[n]["J"][0])
    assert rows[1].settings["J_meV"] == pytest.approx(fits[n]["J"])


# ------------------------------------------------------------------------------------------ bad input
def test_missing_directory(capsys):
    assert "no such directory" in _error_line(capsys, ROOT / "no_such_dir")


@pytest.mark.parametrize("content, expect", [
    ("{not json", "not valid JSON"),
    (json.dumps({"material": "VPS3", "J1": 1.0}), "mismatched models"),  # another material's file
    (json.dumps({"material": "CrI3", "spin": 1.0, "J1": 1.0}), "spin length S = 1.0"),  # mismatched S
    (json.dumps({"material": "CrI3", "spins": [1.5, 1.0], "J1": 1.0}), "spin length S = 1.0"),
    (json.dumps({"material": "CrI3", "J1": 1.0, "distances": [3.4, 5.9, 6.8]}), "mismatched models"),
    (json.dumps({"material": "CrI3", "J1": "big"}), "J1 must be a finite number"),
    (json.dumps({"material": "CrI3", "J1": 1.0, "settings": {"kmesh": [12, "nan", 1]}}), "non-finite number"),
])
def test_bad_route_file_is_one_error_line(tmp_path, capsys, content, expect):
    _base_copy(tmp_path)
    (tmp_path / "CrI3_neel_mft.json").write_text(content)
    line = _error_line(capsys, tmp_path)
    assert "CrI3_neel_mft.json" in line and expect in line


def test_missing_reference_is_one_error_line(tmp_path, capsys):
    d = json.loads((EXCHANGE / "CrI3_routes.json").read_text())
    d["routes"] = [r for r in d["routes"] if r["name"] != "energy mapping"]
    (tmp_path / "CrI3_routes.json").write_text(json.dumps(d))
    line = _error_line(capsys, tmp_path)
    assert "CrI3_routes.json" in line and "no energy-mapping route" in line
    # a run directory without its energy mapping
    run = tmp_path / "run"
    (run / "steps").mkdir(parents=True)
    (run / "steps" / "mapping.json").write_text(json.dumps({"J_meV": []}))
    assert "no energy mapping" in _error_line(capsys, run)


def test_energy_file_without_fm_is_refused(tmp_path):
    from wannmag.magnetism.routes import energy_mapping_route

    d = json.loads((ROOT / "data" / "dft" / "CrI3_energies.json").read_text())
    d["configurations"].pop("FM")
    f = tmp_path / "CrI3_energies.json"
    f.write_text(json.dumps(d).replace("data/structures", str(ROOT / "data" / "structures")))
    with pytest.raises(Exception) as exc:
        energy_mapping_route(f)
    assert "FM" in str(exc.value) and str(f) in str(exc.value)


def test_build_routes_needs_the_energy_mapping():
    with pytest.raises(RoutesError, match="no energy-mapping route"):
        build_routes("CrI3", S, [Route("force theorem (FM reference)", J1=-1.0, reference="FM")])


def test_cluster_ed_channels_row_only_with_a_heisenberg_full_ladder():
    """The shipped M2X2 cluster-ED J1 is a route J only because its full spin ladder (S_tot = 0…3) was computed and
    its Landé steps agree within the tolerance (data/exchange/<m>_channels_full_ladder.json; the top spin step alone
    cannot detect a level crossing); a derived channel made of a run whose ladder is not Heisenberg (CrI3: t2g hops
    only, steps −84/−45/−29 meV) is marked not established, with the reason."""
    from wannmag.magnetism.routes import read_route_file

    for m in ("CrI3", "VPS3"):
        stored = json.loads((EXCHANGE / f"{m}_channels.json").read_text())
        full = json.loads((EXCHANGE / f"{m}_channels_full_ladder.json").read_text())
        runs = full["cluster_ed"]["runs"]
        (row,) = read_route_file(EXCHANGE / f"{m}_channels.json", m, S, kind="channels")
        assert runs["all"]["ladder_deviation"] <= stored["full_ladder"]["heisenberg_tol"] <= 0.1
        steps = list(runs["all"]["J_steps_meV"].values())
        assert max(steps) - min(steps) <= 0.1 * abs(full["J1_cluster_ed_full_ladder"])
        assert row.status == "computed" and row.J1 == pytest.approx(full["J1_cluster_ed_full_ladder"])
        assert row.J2 is None and "restricted Fock space" in row.method and "full spin ladder" in row.method
        for name, ch in stored["full_ladder"]["channels"].items():
            assert ch["established"] == (ch["reason"] is None)
        shipped = json.loads((EXCHANGE / f"{m}_routes.json").read_text())
        r = next(r for r in shipped["routes"] if r["source"].endswith(f"{m}_channels.json"))
        assert r["J1"] == pytest.approx(row.J1) and r["status"] == "computed"
    # CrI3's bond lies beyond the t/Δ range where the restricted Fock space was checked: the row says so
    c = json.loads((EXCHANGE / "CrI3_channels.json").read_text())
    assert "2.83" in c["perturbation_theory"]["status"] and "error not measured" in c["name"]
    assert "not known" in c["method"] and "not known" in c["full_ladder"]["restricted_space_error"]
    v = json.loads((EXCHANGE / "VPS3_channels.json").read_text())
    assert "not measured" not in v["name"] and "between 16 and 30 %" in v["method"]
    cri3 = c["full_ladder"]["channels"]
    assert not cri3["t2g–eg (needs both)"]["established"] and "t2g hops only" in cri3["t2g–eg (needs both)"]["reason"]


# ------------------------------------------------------------------------------------------ small-q spin stiffness
def test_compare_shows_the_spirals_stiffness_beside_every_route(capsys):
    """The shipped CrI3 stiffness file: the spirals' D and each route's D with its ratio; the JSON holds the same
    numbers as the stiffness file and round-trips through ExchangeRoutes."""
    st = json.loads((EXCHANGE / "CrI3_spiral_stiffness.json").read_text())
    rc, out, err = _compare(capsys, EXCHANGE)
    assert rc == 0, err
    block = out[out.index("spin stiffness along Γ–M"):]
    assert f"D = {st['D']:.1f}" in block and "Γ + 3 small-q points" in block
    em = st["D_from_routes"]["energy mapping"]["D"]
    assert f"{em:8.1f}  ×{em / st['D']:.2f}" in block
    # a route that summed all its J(R) shows its J1–J3-only D beside it
    ft = st["D_from_routes"]["force theorem (FM reference), all J(R) up to 30 A"]
    assert f"(J1–J3 only: {ft['D_J1_J3']:.1f})" in block
    rc, out, _ = _compare(capsys, EXCHANGE, json_out=True)
    by = {d["material"]: d for d in json.loads(out)}
    s = by["CrI3"]["stiffness"]
    assert s["status"] == "fitted" and s["D"] == st["D"] and s["routes"]["energy mapping"]["D"] == em
    again = ExchangeRoutes.from_dict(by["CrI3"])
    assert again.stiffness == s and again.as_dict() == by["CrI3"]


def test_stiffness_not_computed_is_said_with_its_reason(tmp_path, capsys):
    _base_copy(tmp_path)
    (tmp_path / "CrI3_spiral_stiffness.json").write_text(json.dumps(
        {"status": "not computed", "reason": "2 converged points", "main_pattern": "FM"}))
    rc, out, err = _compare(capsys, tmp_path)
    assert rc == 0, err
    assert "self-consistent small-q spirals: not computed (2 converged points)" in out
    assert "D =" not in out[out.index("spin stiffness"):]


@pytest.mark.parametrize("doc, expect", [
    ({"status": "fitted", "D": None}, "no finite D"),
    ({"status": "fitted", "D": "big"}, "D must be a finite number"),
    ({"status": "fitted", "D": 1.0, "D_from_routes": {"x": {"D": "big"}}}, "D of x must be a finite number"),
    ({"status": "fitted", "D": 1.0, "D_from_routes": {"x": {"D": "nan"}}}, "non-finite number"),
])
def test_bad_stiffness_file_is_one_error_line(tmp_path, capsys, doc, expect):
    _base_copy(tmp_path)
    (tmp_path / "CrI3_spiral_stiffness.json").write_text(json.dumps(doc))
    line = _error_line(capsys, tmp_path)
    assert "CrI3_spiral_stiffness.json" in line and expect in line
