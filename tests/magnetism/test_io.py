"""Exporters/importers of the SpinModel: TB2J, Vampire, mcsolver, magnopy — conventions and round trips."""

import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from wannmag.errors import WannmagError
from wannmag.magnetism import TB2J, SpinModel
from wannmag.magnetism.io import (MAGNOPY_DEFAULT, MCSOLVER, VAMPIRE_UCF, ExchangeFileError, ExchangeFileWarning,
                                  dmi_matrix, magnopy_convention, read_magnopy, read_mcsolver, read_tb2j,
                                  read_vampire, write_magnopy, write_mcsolver, write_tb2j, write_vampire)
from wannmag.magnetism.spinmodel import MEV_PER_K
from wannmag.structures import cri3_monolayer, find_magnetic_sites, neighbour_shells

DATA = Path(__file__).parent / "data"
FIXTURE = DATA / "cri3_tb2j_exchange_excerpt.out"
MEV_PER_JOULE = 1.0 / 1.602176634e-22


def cri3_model(anisotropic=True, single_ion=None, seed=1, Js=(-2.1, -0.35, 0.12)):
    """CrI3 model with 3 shells; optional random symmetric anisotropy and DMI on every bond (meV, internal)."""
    rng = np.random.default_rng(seed)
    sub = find_magnetic_sites(cri3_monolayer())
    model = SpinModel.from_sublattice(sub)
    for n, (sh, J) in enumerate(zip(neighbour_shells(sub, 3), Js), start=1):
        for b in sh.bonds:
            T = J * np.eye(3)
            if anisotropic:
                G = rng.normal(scale=0.05, size=(3, 3))
                T = T + 0.5 * (G + G.T) + dmi_matrix(rng.normal(scale=0.08, size=3))
            model.add_bond(b.i, b.j, b.R, T, shell=n)
    if single_ion is not None:
        model.single_ion = [np.array(single_ion, float) for _ in model.sites]
    return model


def random_states(model, P=(3, 3, 1), n=4, seed=7):
    big, _ = model.supercell(P)
    rng = np.random.default_rng(seed)
    states = []
    for _ in range(n):
        e = rng.normal(size=(big.n_sites, 3))
        e /= np.linalg.norm(e, axis=1)[:, None]
        states.append(e * big.spins[:, None])
    return big, states


def energies(model, P=(3, 3, 1), n=4, seed=7):
    big, states = random_states(model, P, n, seed)
    return np.array([big.energy(s) for s in states])


def assert_same_model(a, b, atol=1e-9, energy_offset=0.0):
    assert a.n_sites == b.n_sites
    assert np.allclose(a.spins, b.spins)
    assert np.allclose(a.cell, b.cell, atol=1e-8)
    assert len(a.bonds) == len(b.bonds)
    other = {(x.i, x.j, x.R): x for x in b.bonds}
    for x in a.bonds:
        y = other[(x.i, x.j, x.R)]
        assert np.allclose(x.J, y.J, atol=atol, rtol=1e-9), (x.i, x.j, x.R)
        assert a.bond_length(x) == pytest.approx(b.bond_length(y), abs=1e-8)
    Ea, Eb = energies(a), energies(b)
    assert np.allclose(Ea, Eb + energy_offset, rtol=1e-9, atol=1e-9)


# ------------------------------------------------------------------------------------------------------- TB2J
def test_tb2j_round_trip_tensors_and_energies(tmp_path):
    model = cri3_model()
    path = write_tb2j(model, tmp_path / "exchange.out")
    text = path.read_text()
    headers = [ln for ln in text.splitlines() if re.match(r"^\s+Cr\d\s+Cr\d\s+\(", ln)]
    assert len(headers) == 2 * len(model.bonds)  # both directions listed
    assert "[Testing!] DMI" in text and "M(z)" in text
    back = read_tb2j(path)
    assert_same_model(model, back, atol=1e-7)
    assert back.pbc == (True, True, False)


def test_tb2j_values_follow_tb2j_convention(tmp_path):
    model = cri3_model(anisotropic=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # isotropic model, no single-ion, no field: nothing to warn about
        path = write_tb2j(model, tmp_path / "exchange.out")
    text = path.read_text()
    assert "w_magmom" in text and "DMI" not in text
    # internal J1 = -2.1 meV (FM), S = 3/2  ->  TB2J J = -J S^2 / 2 = +2.3625 meV (positive = FM)
    first = next(ln for ln in text.splitlines() if ln.startswith("J_iso:"))
    assert float(first.split()[1]) == pytest.approx(2.3625)
    assert float(TB2J.from_internal(-2.1, 1.5, 1.5)) == pytest.approx(2.3625)
    assert_same_model(model, read_tb2j(path), atol=1e-8)


def test_tb2j_single_ion_and_field_are_warned(tmp_path):
    model = cri3_model(anisotropic=False, single_ion=np.diag([0, 0, -0.1]))
    model.b_field = np.array([0, 0, 1.0])
    with pytest.warns(ExchangeFileWarning) as rec:
        write_tb2j(model, tmp_path / "exchange.out")
    msgs = " | ".join(str(w.message) for w in rec)
    assert "single-ion" in msgs and "field" in msgs


def _raw_tb2j_entries(path):
    """Independent minimal parse of the fixture: (label_i, label_j, R, J_tensor_TB2J)."""
    lines = Path(path).read_text().splitlines()
    out = []
    for k, ln in enumerate(lines):
        m = re.match(r"^\s+(Cr\d)\s+(Cr\d)\s+\(\s*(-?\d+),\s*(-?\d+),\s*(-?\d+)\)\s+(\S+)", ln)
        if not m:
            continue
        D = [float(x) for x in re.search(r"\((.*)\)", lines[k + 2]).group(1).split()]
        Jani = np.array([[float(x) for x in lines[k + 4 + r].replace("[", " ").replace("]", " ").split()]
                         for r in range(3)])
        J = float(m.group(6)) * np.eye(3) + Jani + np.array([[0, D[2], -D[1]], [-D[2], 0, D[0]], [D[1], -D[0], 0]])
        out.append((m.group(1), m.group(2), tuple(int(m.group(q)) for q in (3, 4, 5)), J))
    return out


def test_real_cri3_tb2j_file_conventions_and_energy():
    with pytest.warns(ExchangeFileWarning, match="non-zero trace"):
        model = read_tb2j(FIXTURE)
    assert model.n_sites == 2 and np.allclose(model.spins, 1.5)  # S = round(3.3643)/2
    assert [s.label for s in model.sites] == ["Cr1", "Cr2"]
    assert model.pbc == (True, True, False)
    lengths = sorted(round(model.bond_length(b), 2) for b in model.bonds)
    assert lengths == [3.94] * 3 + [6.82] * 6 + [7.88] * 3
    raw = _raw_tb2j_entries(FIXTURE)
    assert len(raw) == 24
    # one bond by hand: Cr1-Cr2, R = (-1,0,0): J_int = -2/(S_i S_j) * (J_iso 1 + J_ani + J^A(D))
    J_tb2j = next(J for i, j, R, J in raw if (i, j, R) == ("Cr1", "Cr2", (-1, 0, 0)))
    b = next(b for b in model.bonds if (b.i, b.j, b.R) == (0, 1, (-1, 0, 0)))
    assert np.allclose(b.J, -2.0 / 2.25 * J_tb2j)
    assert b.J_iso < 0  # TB2J J > 0 (FM) -> internal J < 0 (FM)
    # DMI sign: TB2J lists Cr1 Cr1 (1,0,0) with D = (-0.0389, 0.0215, -0.0143); internal D = -2 D_TB2J / S^2
    b2 = next(b for b in model.bonds if (b.i, b.j, b.R) == (0, 0, (1, 0, 0)))
    assert np.allclose(b2.dmi, -2.0 / 2.25 * np.array([-0.0389, 0.0215, -0.0143]))
    # inversion centre at the 1NN midpoint: no DMI on 1NN bonds in the file either
    assert all(np.allclose(b.dmi, 0) for b in model.bonds if model.bond_length(b) < 4)
    # energies: brute-force TB2J sum E = -sum_{listed (i,j,R)} e_i.J.e_j equals the internal model energy
    big, states = random_states(model, P=(3, 3, 1), n=3)
    inv = np.linalg.inv(big.cell)
    fpos = np.array([s.position for s in big.sites]) @ inv
    parent = [s.label for s in big.sites]
    pos = {s.label: s.position for s in model.sites}

    def index_of(p):
        f = p @ inv
        d = np.mod(fpos - f + 0.5, 1.0) - 0.5
        d[:, 2] = (fpos - f)[:, 2]
        return int(np.argmin(np.linalg.norm(d, axis=1)))

    for spins in states:
        e = spins / np.linalg.norm(spins, axis=1)[:, None]
        E_tb2j = 0.0
        for a, site in enumerate(big.sites):
            for li, lj, R, J in raw:
                if li != parent[a]:
                    continue
                target = site.position + pos[lj] + np.array(R) @ model.cell - pos[li]
                E_tb2j -= e[a] @ J @ e[index_of(target)]
        assert big.energy(spins) == pytest.approx(E_tb2j, rel=1e-10)


def test_tb2j_trace_of_jani_can_be_dropped():
    with pytest.warns(ExchangeFileWarning, match="removed"):
        model = read_tb2j(FIXTURE, keep_jani_trace=False)
    b = next(b for b in model.bonds if (b.i, b.j, b.R) == (0, 1, (-1, 0, 0)))
    assert b.J_iso == pytest.approx(-2.0 / 2.25 * 1.7497)


@pytest.mark.filterwarnings("ignore:.*non-zero trace")
def test_tb2j_reverse_entries_are_checked(tmp_path):
    entry = "   Cr2   Cr1   (  0,   1,   0)  "
    text = FIXTURE.read_text().replace(entry + "1.7483", entry + "1.9483")
    text = text.replace("J_iso:  1.7483 \n[Testing!] DMI: (-0.0000  0.0000 -0.0000)",
                        "J_iso:  1.9483 \n[Testing!] DMI: (-0.0000  0.0000 -0.0000)")
    bad = tmp_path / "exchange.out"
    bad.write_text(text)
    with pytest.warns(ExchangeFileWarning, match=r"differ between the \(i,j,R\) and \(j,i,-R\)"):
        model = read_tb2j(bad)
    assert len(model.bonds) == 12  # still stored once each


def test_tb2j_spins_override(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExchangeFileWarning)
        a = read_tb2j(FIXTURE)
        b = read_tb2j(FIXTURE, spins={"Cr": 1.0})
    assert np.allclose(b.spins, 1.0)
    assert np.allclose(b.bonds[0].J, a.bonds[0].J * 2.25)  # J_int ∝ 1/(S_i S_j)


# ------------------------------------------------------------------------------------------------------- Vampire
def test_vampire_round_trip_with_uniaxial_anisotropy(tmp_path):
    model = cri3_model(single_ion=np.diag([0.0, 0.0, -0.1]))
    ucf, mat = write_vampire(model, tmp_path / "vampire.UCF")
    assert mat.name == "vampire.mat"
    lines = ucf.read_text().splitlines()
    header = next(ln for ln in lines if ln.endswith("tensorial"))
    assert int(header.split()[0]) == 2 * len(model.bonds)
    assert not any("#" in ln and ln.strip()[0].isdigit() for ln in lines)  # Vampire skips lines with '#'
    # k_u = -a_1 S^2 = +0.1 * 2.25 meV (easy axis z) in joules
    text = mat.read_text()
    ku = float(re.search(r"material\[1\]:uniaxial-anisotropy-constant=(\S+)", text).group(1))
    assert ku == pytest.approx(0.225 / MEV_PER_JOULE)
    assert "atomic-spin-moment=3.0000000000" in text
    back = read_vampire(ucf)
    assert np.allclose(back.single_ion[0], np.diag([0, 0, -0.1]))
    assert_same_model(model, back, atol=1e-9)


def test_vampire_pair_energy_convention(tmp_path):
    # one FM bond J_int = -1 meV between S = 3/2 spins: pair energy J S^2 = -2.25 meV.
    # Vampire: H = -sum_pairs J_V e_i.e_j (both directions listed)  ->  J_V = +2.25 meV in both lines.
    model = cri3_model(anisotropic=False, Js=(-1.0, 0.0, 0.0))
    model.bonds = model.bonds[:1]
    ucf, _ = write_vampire(model, tmp_path / "v.UCF")
    inter = [ln.split() for ln in ucf.read_text().splitlines() if re.match(r"^\d+ \d+ \d+ -?\d+ -?\d+ -?\d+ ", ln)]
    assert len(inter) == 2
    for row in inter:
        JV = np.array([float(x) for x in row[6:]]).reshape(3, 3)
        assert np.allclose(JV, 2.25 / MEV_PER_JOULE * np.eye(3))
    assert np.allclose(VAMPIRE_UCF.to_internal(JV, 1.5, 1.5), -1.0 * np.eye(3))


def test_vampire_non_uniaxial_and_offset_single_ion(tmp_path):
    model = cri3_model(anisotropic=False, single_ion=np.diag([0.02, -0.03, -0.1]))
    with pytest.warns(ExchangeFileWarning, match="not uniaxial"):
        write_vampire(model, tmp_path / "a.UCF")
    # uniaxial with an isotropic offset a0: energies agree up to the dropped constant a0 S^2 per site
    model = cri3_model(anisotropic=True, single_ion=np.diag([0.05, 0.05, -0.1]))
    ucf, _ = write_vampire(model, tmp_path / "b.UCF")
    back = read_vampire(ucf)
    assert np.allclose(back.single_ion[0], np.diag([0, 0, -0.15]))
    n_big = model.supercell((3, 3, 1))[0].n_sites
    assert_same_model(model, back, atol=1e-9, energy_offset=n_big * 0.05 * 2.25)


def test_vampire_wraps_sites_into_the_cell(tmp_path):
    ref = cri3_model()
    T = np.array([1, -1, 0])
    model = SpinModel(cell=ref.cell, sites=ref.sites, pbc=ref.pbc)
    model.sites[1].position = ref.sites[1].position + T @ ref.cell  # same crystal, site 1 outside the home cell
    for b in ref.bonds:
        R = np.array(b.R) - (T if b.j == 1 else 0) + (T if b.i == 1 else 0)
        model.add_bond(b.i, b.j, R, b.J)
    ucf, _ = write_vampire(model, tmp_path / "w.UCF")
    atoms = [ln.split() for ln in ucf.read_text().splitlines() if re.match(r"^[01] \S+ \S+ \S+ [01] 0 0$", ln)]
    frac = np.array([[float(x) for x in row[1:4]] for row in atoms])
    assert frac.shape == (2, 3) and np.all((frac >= 0) & (frac < 1))
    back = read_vampire(ucf)
    vecs = {(b.i, b.j) + tuple(np.round(model.bond_vector(b), 6)): b.J for b in model.bonds}
    for b in back.bonds:
        assert np.allclose(vecs[(b.i, b.j) + tuple(np.round(back.bond_vector(b), 6))], b.J)
    rng = np.random.default_rng(3)
    for _ in range(3):  # cell-periodic states do not depend on which cell a site is assigned to
        s = rng.normal(size=(2, 3))
        s *= 1.5 / np.linalg.norm(s, axis=1)[:, None]
        assert back.energy(s) == pytest.approx(model.energy(s), rel=1e-10)
        assert back.energy(s) == pytest.approx(ref.energy(s), rel=1e-10)


# ------------------------------------------------------------------------------------------------------- mcsolver
def test_mcsolver_round_trip_and_layout(tmp_path):
    model = cri3_model(single_ion=np.diag([0.01, 0.01, -0.1]))
    path = write_mcsolver(model, tmp_path / "mcInput", supercell=(16, 16, 1))
    lines = path.read_text().splitlines()
    assert lines[0] == "This is mcsolver's save file, version: 2.2"
    orb = next(ln for ln in lines if ln.startswith("orb 0:"))
    assert re.search(r"spin 1\.500000000 pos \[.*\] Dz (\S+) Dx (\S+) Dy (\S+)$", orb)
    assert float(orb.split("Dz")[1].split()[0]) == pytest.approx(-0.1 / MEV_PER_K)  # kelvin
    bond = next(ln for ln in lines if ln.startswith("bond 0:"))
    assert re.match(r"bond 0: Jz \S+ Jx \S+ Jy \S+ Jxy \S+ Jxz \S+ Jyz \S+ Jyx \S+ Jzx \S+ Jzy \S+ orb \d+ to orb \d+ "
                    r"over \[-?\d+ -?\d+ -?\d+\]$", bond)
    assert int(lines[lines.index("Bonds:") + 1]) == len(model.bonds)  # each bond once
    b0 = model.bonds[0]
    assert float(bond.split("Jxy")[1].split()[0]) == pytest.approx(b0.J[0, 1] / MEV_PER_K)
    back = read_mcsolver(path, elements={0: "Cr"})
    assert [s.element for s in back.sites] == ["Cr", "Cr"]
    assert np.allclose(back.single_ion[1], model.single_ion[1])
    assert_same_model(model, back, atol=1e-9)
    assert float(MCSOLVER.from_internal(-2.1, 1.5, 1.5)) == pytest.approx(-2.1 / MEV_PER_K)  # J < 0 FM, K


def test_mcsolver_reads_sample_layout(tmp_path):
    # the layout of mcsolver's samples/CrI3With2NNCoupling (values rounded), FM J < 0 in kelvin
    text = """This is mcsolver's save file, version: 2.2
Lattice:
1.000000000 0.000000000 0.000000000
-0.500000000 0.866025404 0.000000000
0.000000000 0.000000000 1.000000000
Supercell used in MC simulations:
32 32 1
Orbitals in cell:
2
Postions, initial spin states and onsite-anisotropy of every orbitals:
orb 0: type 0 spin 1.500000000 pos [0.666666667 0.333333333 0.000000000] Dz -3.1 Dx 0.000000000 Dy 0.000000000
orb 1: type 0 spin 1.500000000 pos [0.333333333 0.666666667 0.000000000] Dz -3.1 Dx 0.000000000 Dy 0.000000000
Bonds:
2
id, source, target, overLat, Jz, Jx, Jy of each bond:
bond 0: Jz -15.0 Jx -14.0 Jy -14.0 Jxy 0 Jxz 0 Jyz 0 Jyx 0 Jzx 0 Jzy 0 orb 0 to orb 1 over [0 0 0]
bond 1: Jz -5.5 Jx -5.9 Jy -5.9 Jxy 0.5 Jxz 0 Jyz 0 Jyx 0 Jzx 0 Jzy 0 orb 0 to orb 0 over [1 0 0]
Dipole long range correction:
alpha 0.0
Temperature scanning region:
Tmin 30.000000000 Tmax 50.000000000 nT 21
"""
    p = tmp_path / "sample"
    p.write_text(text)
    m = read_mcsolver(p)
    assert np.allclose(m.single_ion[0], np.diag([0, 0, -3.1]) * MEV_PER_K)
    b = next(b for b in m.bonds if b.i == 0 and b.j == 1)
    assert np.allclose(np.diag(b.J), np.array([-14.0, -14.0, -15.0]) * MEV_PER_K)
    b = next(b for b in m.bonds if b.i == 0 and b.j == 0)
    assert b.J[0, 1] == pytest.approx(0.5 * MEV_PER_K) and b.J[1, 0] == 0


def test_mcsolver_off_diagonal_single_ion_warns(tmp_path):
    A = np.array([[0.0, 0.02, 0], [0.02, 0, 0], [0, 0, -0.1]])
    with pytest.warns(ExchangeFileWarning, match="off-diagonal"):
        write_mcsolver(cri3_model(single_ion=A), tmp_path / "mc")


# ------------------------------------------------------------------------------------------------------- magnopy
@pytest.mark.parametrize("conv", [MAGNOPY_DEFAULT, magnopy_convention(False, True, -1.0, "K"),
                                  magnopy_convention(True, True, -0.5, "J"), magnopy_convention(True, False, 1, "eV")])
@pytest.mark.parametrize("onsite_factor", [1.0, -2.0])
def test_magnopy_round_trip(tmp_path, conv, onsite_factor):
    model = cri3_model(single_ion=[[0.01, 0.004, 0], [0.004, -0.02, 0.003], [0, 0.003, -0.1]])
    path = write_magnopy(model, tmp_path / "model.txt", convention=conv, onsite_factor=onsite_factor)
    text = path.read_text()
    n_listed = len(re.findall(r"^Matrix$", text, flags=re.M))
    assert n_listed == (2 if conv.double_counting else 1) * len(model.bonds)
    back = read_magnopy(path)
    assert [s.label for s in back.sites] == [s.label for s in model.sites]
    assert np.allclose(back.single_ion[0], model.single_ion[0])
    assert_same_model(model, back, atol=1e-9)


def test_magnopy_default_notation_lists_internal_values(tmp_path):
    model = cri3_model(anisotropic=False)
    text = write_magnopy(model, tmp_path / "m.txt").read_text()
    assert "Double-counting true" in text and "Spin-normalized false" in text and "Exchange-factor 0.5" in text
    block = text.split("Exchange meV")[1].split("Matrix")[1].split("\n")[1]
    assert float(block.split()[0]) == pytest.approx(-2.1)  # = internal J (meV, J > 0 AF)


def _magnopy_text(notation: str, exchange: str, onsite: str = "") -> str:
    return f"""==========
Cell Angstrom
7.0 0.0 0.0
-3.5 6.0621778265 0.0
0.0 0.0 20.0
==========
Atoms
name r1 r2 r3 s
Cr1 0.3333333333 0.6666666667 0.5 1.5
Cr2 0.6666666667 0.3333333333 0.5 1.5
==========
Notation
{notation}
==========
Exchange meV
----------
{exchange}
----------
==========
{onsite}"""


@pytest.mark.parametrize("notation,iso", [
    ("Double-counting true\nSpin-normalized true\nExchange-factor 1\nOn-site-factor 1", 1.0),
    ("Double counting = false\nSpin normalized = true\nExchange factor = 1\nOn-site factor = 1", 2.0),
    ("Double-counting false\nSpin-normalized false\nExchange-factor 1\nOn-site-factor 1", 8 / 9),
    ("Double-counting false\nSpin-normalized false\nExchange-factor -1\nOn-site-factor 1", -8 / 9),
])
def test_magnopy_documented_notation_examples_agree(tmp_path, notation, iso):
    # magnopy's documentation lists these notations as the same Hamiltonian (S = 1.5 at both ends of the bond)
    if "Double-counting true" in notation:
        exchange = f"Cr1 Cr2 0 0 0\nIsotropic {iso}\n----------\nCr2 Cr1 0 0 0\nIsotropic {iso}"
    else:
        exchange = f"Cr1 Cr2 0 0 0\nIsotropic {iso}"
    p = tmp_path / "m.txt"
    p.write_text(_magnopy_text(notation, exchange))
    m = read_magnopy(p)
    assert len(m.bonds) == 1
    assert m.bonds[0].J_iso == pytest.approx(8 / 9)  # internal: pair energy J S^2 = 2 (FM sign conventions aside)
    assert np.allclose(m.bonds[0].J, 8 / 9 * np.eye(3))


def test_magnopy_parts_are_assembled(tmp_path):
    exchange = "Cr1 Cr2 1 0 0\nMatrix\n1 -1 0\n2 3 0.3\n-0.43 0 -0.5\nIsotropic 1\nDMI 1 0 -0.4\n" \
               "Symmetric-anisotropy 1 0.27 -0.43 0.5 0.3"
    notation = "Double-counting false\nSpin-normalized false\nExchange-factor 1\nOn-site-factor 1"
    onsite = "On-site meV\n----------\nCr1\n0 0 -0.2 0 0 0\n----------\n=========="
    p = tmp_path / "m.txt"
    p.write_text(_magnopy_text(notation, exchange, onsite))
    m = read_magnopy(p)
    J = m.bonds[0].J
    assert np.trace(J) / 3 == pytest.approx(1.0)
    assert np.allclose(m.bonds[0].dmi, [1, 0, -0.4])
    assert np.allclose(m.bonds[0].anisotropic, [[1, -0.43, 0.5], [-0.43, 0.27, 0.3], [0.5, 0.3, -1.27]])
    assert np.allclose(m.single_ion[0], np.diag([0, 0, -0.2])) and np.allclose(m.single_ion[1], 0)


# ------------------------------------------------------------------------------------------------------- bad input
def _vampire_files(tmp_path):
    ucf, _ = write_vampire(cri3_model(), tmp_path / "v.UCF")
    return ucf


def _files(tmp_path):
    model = cri3_model()
    return {
        "tb2j": (read_tb2j, FIXTURE.read_text(), "exchange.out"),
        "vampire": (read_vampire, _vampire_files(tmp_path).read_text(), "x.UCF"),
        "mcsolver": (read_mcsolver, write_mcsolver(model, tmp_path / "mc").read_text(), "mcInput"),
        "magnopy": (read_magnopy, write_magnopy(model, tmp_path / "mg.txt").read_text(), "model.txt"),
    }


@pytest.mark.parametrize("fmt", ["tb2j", "vampire", "mcsolver", "magnopy"])
def test_bad_input_gives_one_line_error_naming_file(tmp_path, fmt):
    reader, text, name = _files(tmp_path)[fmt]
    bad = tmp_path / "bad"
    bad.mkdir()
    if fmt == "vampire":  # the reader also needs the .mat next to the .UCF
        (bad / "x.mat").write_text((tmp_path / "v.mat").read_text())
    target = bad / name

    def check(match):
        with pytest.raises(ExchangeFileError, match=match) as exc:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ExchangeFileWarning)
                reader(target)
        msg = str(exc.value)
        assert "\n" not in msg and name in msg
        assert isinstance(exc.value, WannmagError)
        return msg

    # missing file
    check("no such file")
    # empty file
    target.write_text("")
    check("empty")
    # truncated: keep the first 45 % of the lines
    lines = text.splitlines()
    target.write_text("\n".join(lines[: int(0.45 * len(lines))]) + "\n")
    if fmt == "tb2j":  # cut in the middle of a J_ani matrix
        cut = next(k for k, ln in enumerate(lines) if ln.startswith("[Testing!]J_ani")) + 2
        target.write_text("\n".join(lines[:cut]) + "\n")
    check(r"truncated|line \d+|no '")
    # wrong section / wrong file type: an mcsolver file for the others, a TB2J file for mcsolver
    other = _files(tmp_path)["tb2j" if fmt == "mcsolver" else "mcsolver"][1]
    target.write_text(other)
    check(r"not a|no '|line \d+")
    # non-numeric value: corrupt one number in a data line
    if fmt == "tb2j":
        corrupt = text.replace("J_iso:  1.7483", "J_iso:  1.7x83", 1)
    elif fmt == "vampire":
        corrupt = re.sub(r"(\n0 0 1 \S+ \S+ \S+ )(\S+)", r"\1abc", text, count=1)
    elif fmt == "mcsolver":
        corrupt = re.sub(r"(bond 0: Jz )(\S+)", r"\1nan?", text, count=1)
    else:
        corrupt = re.sub(r"(Matrix\n)(\S+)", r"\1one", text, count=1)
    assert corrupt != text
    target.write_text(corrupt)
    msg = check(r"line \d+: .*not a number")
    assert re.search(r"line \d+", msg)


def test_vampire_missing_material_file(tmp_path):
    ucf = _vampire_files(tmp_path)
    (tmp_path / "v.mat").unlink()
    with pytest.raises(ExchangeFileError, match=r"v\.mat: no such file"):
        read_vampire(ucf)


def test_periodicity_survives_the_round_trip(tmp_path):
    model = cri3_model(anisotropic=False)
    model.pbc = (True, True, True)  # e.g. a bulk stacking: not a slab, even with a large c
    assert read_tb2j(write_tb2j(model, tmp_path / "e.out")).pbc == (True, True, True)
    assert read_vampire(write_vampire(model, tmp_path / "v.UCF")[0]).pbc == (True, True, True)
    assert read_magnopy(write_magnopy(model, tmp_path / "m.txt")).pbc == (True, True, True)
    # mcsolver has no place for it: guessed from the 18 Å gap between the Cr planes of the monolayer cell
    assert read_mcsolver(write_mcsolver(model, tmp_path / "mc")).pbc == (True, True, False)


def test_magnopy_rydberg_units(tmp_path):
    notation = "Double-counting false\nSpin-normalized false\nExchange-factor 1\nOn-site-factor 1"
    p = tmp_path / "m.txt"
    p.write_text(_magnopy_text(notation, "Cr1 Cr2 0 0 0\nIsotropic 1e-4").replace("Exchange meV", "Exchange Ry"))
    assert read_magnopy(p).bonds[0].J_iso == pytest.approx(1e-4 * 13605.693122994)
