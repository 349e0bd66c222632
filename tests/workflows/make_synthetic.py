"""Write the tiny synthetic DFT / Wannier90 outputs used by the reader tests (tests/workflows/data/).

The files imitate the layout of VASP 6 (vasprun.xml, OUTCAR), Quantum ESPRESSO 7 (pw.x output) and Wannier90 3
(hr.dat, .win) closely enough for ASE's parsers; the numbers are invented (CrI3 monolayer geometry of
wannmag.structures.cri3_monolayer, FM / Néel moments ±3 μB on Cr).  Run ``python tests/workflows/make_synthetic.py``
to regenerate them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from wannmag.structures import cri3_monolayer

DATA = Path(__file__).resolve().parent / "data"
E_FM = -29.341665          # eV per cell (2 Cr)
E_NEEL = -29.274840
EF = -3.2
MOM = {"Cr": 3.05, "I": -0.09}


def _eigs(spin, nk=2, nb=8):
    base = np.linspace(-6.0, 1.0, nb) + (0.0 if spin == 0 else 0.4)
    base[base > EF - 0.5] += 1.2  # gap around E_F
    return np.array([base + 0.05 * k for k in range(nk)])


def vasprun(atoms, energy, path):
    cell = atoms.cell.array
    frac = atoms.get_scaled_positions()
    syms = atoms.get_chemical_symbols()
    types = list(dict.fromkeys(syms))
    L = ['<?xml version="1.0" encoding="ISO-8859-1"?>', "<modeling>", " <generator>",
         '  <i name="program" type="string">vasp </i>', '  <i name="version" type="string">6.4.2  </i>',
         " </generator>", " <incar>", '  <i type="int" name="ISPIN">     2</i>', " </incar>",
         " <kpoints>", '  <varray name="kpointlist" >', "   <v>  0.0 0.0 0.0 </v>", "   <v>  0.5 0.0 0.0 </v>",
         "  </varray>", '  <varray name="weights" >', "   <v>  0.25 </v>", "   <v>  0.75 </v>", "  </varray>",
         " </kpoints>", " <parameters>", '  <separator name="electronic" >',
         '   <separator name="electronic spin" >', '    <i type="int" name="ISPIN">     2</i>', "   </separator>",
         "  </separator>", " </parameters>", " <atominfo>", f"  <atoms>      {len(atoms)} </atoms>",
         f"  <types>       {len(types)} </types>", '  <array name="atoms" >', '   <dimension dim="1">ion</dimension>',
         '   <field type="string">element</field>', '   <field type="int">atomtype</field>', "   <set>"]
    for s in syms:
        L.append(f"    <rc><c>{s:2s}</c><c>   {types.index(s) + 1}</c></rc>")
    L += ["   </set>", "  </array>", " </atominfo>"]

    def structure(name):
        out = [f' <structure name="{name}" >', "  <crystal>", '   <varray name="basis" >']
        out += [f"    <v> {v[0]:16.8f} {v[1]:16.8f} {v[2]:16.8f} </v>" for v in cell]
        out += ["   </varray>", "  </crystal>", '  <varray name="positions" >']
        out += [f"   <v> {f[0]:14.8f} {f[1]:14.8f} {f[2]:14.8f} </v>" for f in frac]
        out += ["  </varray>", " </structure>"]
        return out

    L += structure("initialpos")
    L += [" <calculation>", "  <scstep>", "   <energy>", f'    <i name="e_fr_energy"> {energy - 0.001:16.8f} </i>',
          f'    <i name="e_wo_entrp"> {energy + 0.001:16.8f} </i>', f'    <i name="e_0_energy"> {energy:16.8f} </i>',
          "   </energy>", "  </scstep>"]
    L += ["  " + x for x in structure("")]
    L += ['  <varray name="forces" >'] + ["   <v> 0.0 0.0 0.0 </v>"] * len(atoms) + ["  </varray>",
          "  <energy>", f'   <i name="e_fr_energy"> {energy - 0.001:16.8f} </i>',
          f'   <i name="e_wo_entrp"> {energy + 0.001:16.8f} </i>', f'   <i name="e_0_energy"> {energy:16.8f} </i>',
          "  </energy>", "  <eigenvalues>", "   <array>", '    <dimension dim="1">band</dimension>',
          '    <dimension dim="2">kpoint</dimension>', '    <dimension dim="3">spin</dimension>',
          '    <field>eigene</field>', '    <field>occ</field>', "    <set>"]
    for s in range(2):
        L.append(f'     <set comment="spin {s + 1}">')
        for k, e_n in enumerate(_eigs(s)):
            L.append(f'      <set comment="kpoint {k + 1}">')
            L += [f"       <r> {e:10.4f} {1.0 if e < EF else 0.0:8.4f} </r>" for e in e_n]
            L.append("      </set>")
        L.append("     </set>")
    L += ["    </set>", "   </array>", "  </eigenvalues>", "  <dos>", f'   <i name="efermi"> {EF:12.8f} </i>',
          "  </dos>", " </calculation>"]
    L += structure("finalpos")
    L.append("</modeling>")
    path.write_text("\n".join(L) + "\n")


def outcar(atoms, energy, moments, path):
    syms = atoms.get_chemical_symbols()
    types = list(dict.fromkeys(syms))
    counts = [syms.count(t) for t in types]
    cell = atoms.cell.array
    rec = np.linalg.inv(cell).T
    L = [" vasp.6.4.2 05Jan24 (build Jan 05 2024) complex", ""]
    for t in types:
        L.append(f" POTCAR:    PAW_PBE {t} 06Sep2000")
    for t in types:
        L.append(f" POTCAR:    PAW_PBE {t} 06Sep2000")
    L += ["", "   k-points           NKPTS =      2   k-points in BZ     NKDIM =      2   number of bands    NBANDS=      8",
          "   number of dos      NEDOS =    301   number of ions     NIONS =      8",
          "   ions per type =        " + "  ".join(f"{c:3d}" for c in counts),
          "   ISPIN  =      2    spin polarized calculation?", "",
          " k-points in reciprocal lattice and weights: Gamma",
          "   0.00000000  0.00000000  0.00000000       0.250",
          "   0.50000000  0.00000000  0.00000000       0.750", "",
          "----------------------------------------- Iteration    1(   1)  ---------------------------------------",
          "", "      direct lattice vectors                 reciprocal lattice vectors"]
    for v, r in zip(cell, rec):
        L.append(f"    {v[0]:12.9f} {v[1]:12.9f} {v[2]:12.9f}    {r[0]:12.9f} {r[1]:12.9f} {r[2]:12.9f}")
    L += ["", " POSITION                                       TOTAL-FORCE (eV/Angst)",
          " -----------------------------------------------------------------------------------"]
    for p in atoms.positions:
        L.append(f"     {p[0]:10.5f} {p[1]:10.5f} {p[2]:10.5f}         0.000000      0.000000      0.000000")
    L += [" -----------------------------------------------------------------------------------", "",
          " magnetization (x)", "", "# of ion       s       p       d       tot",
          "------------------------------------------"]
    for i, m in enumerate(moments):
        L.append(f"    {i + 1:<4d}    0.000   0.000 {m:8.3f} {m:8.3f}")
    L += ["--------------------------------------------------", f"tot         0.000   0.000   0.000 {sum(moments):8.3f}",
          "", f" E-fermi : {EF:8.4f}     XC(G=0):  -1.0024     alpha+bet : -0.5589", ""]
    kp = [(0.0, 0.0, 0.0), (0.5, 0.0, 0.0)]
    for s in range(2):
        L += ["", f" spin component {s + 1}", ""]
        for k, e_n in enumerate(_eigs(s)):
            L += [f" k-point   {k + 1} :       {kp[k][0]:.4f}    {kp[k][1]:.4f}    {kp[k][2]:.4f}",
                  "  band No.  band energies     occupation"]
            L += [f"      {n + 1}      {e:8.4f}      {1.0 if e < EF else 0.0:.5f}" for n, e in enumerate(e_n)]
            L.append("")
    L += ["", "  FREE ENERGIE OF THE ION-ELECTRON SYSTEM (eV)", "  ---------------------------------------------------",
          f"  free  energy   TOTEN  =     {energy - 0.001:14.8f} eV", "",
          f"  energy  without entropy=     {energy + 0.001:14.8f}  energy(sigma->0) =     {energy:14.8f}", "", "",
          " General timing and accounting informations for this job:",
          " ========================================================", "", "                  Total CPU time used (sec):      123.456", ""]
    path.write_text("\n".join(L) + "\n")


def qe_out(atoms, energy_ev, moments, path):
    ry = 13.605693122994
    bohr = 0.529177210903
    alat = np.linalg.norm(atoms.cell.array[0]) / bohr
    syms = atoms.get_chemical_symbols()
    L = ["", "     Program PWSCF v.7.2 starts on  1Jan2025 at 12: 0: 0 ", "",
         "     bravais-lattice index     =            0",
         f"     lattice parameter (alat)  =      {alat:10.4f}  a.u.",
         f"     number of atoms/cell      = {len(atoms):12d}",
         f"     number of atomic types    = {len(set(syms)):12d}", "",
         f"     celldm(1)=  {alat:10.6f}  celldm(2)=   0.000000  celldm(3)=   0.000000", "",
         "     crystal axes: (cart. coord. in units of alat)"]
    for i, v in enumerate(atoms.cell.array):
        w = v / bohr / alat
        L.append(f"               a({i + 1}) = ( {w[0]:10.6f} {w[1]:10.6f} {w[2]:10.6f} )  ")
    L += ["", "   Cartesian axes", "", "     site n.     atom                  positions (alat units)"]
    for i, (s, p) in enumerate(zip(syms, atoms.positions)):
        w = p / bohr / alat
        L.append(f"         {i + 1}           {s}  tau(   {i + 1}) = (   {w[0]:10.7f}   {w[1]:10.7f}   {w[2]:10.7f}  )")
    L += ["", "     number of k points=     2  Fermi-Dirac smearing, width (Ry)=  0.0050",
          "                       cart. coord. in units 2pi/alat",
          "        k(    1) = (   0.0000000   0.0000000   0.0000000), wk =   0.5000000",
          "        k(    2) = (   0.5000000   0.2886751   0.0000000), wk =   1.5000000", "",
          "     total cpu time spent up to now is        1.0 secs", "",
          "     End of self-consistent calculation", ""]
    for s, label in ((0, " ------ SPIN UP ------------"), (1, " ------ SPIN DOWN ----------")):
        L += [label, "", ""]
        for k, e_n in enumerate(_eigs(s)):
            L += [f"          k = 0.{5 * k}000 0.0000 0.0000 (  4321 PWs)   bands (ev):", "",
                  "  " + "".join(f"{e:9.4f}" for e in e_n), ""]
    L += ["     convergence has been achieved in  25 iterations", "",
          "     Magnetic moment per site  (integrated on atomic sphere of radius R)"]
    for i, m in enumerate(moments):
        L.append(f"     atom   {i + 1} (R=0.183)  charge= 10.6034  magn= {m:8.4f}")
    L += ["", f"     the Fermi energy is    {EF:8.4f} ev", "",
          f"!    total energy              =    {energy_ev / ry:16.8f} Ry",
          f"     estimated scf accuracy    <       0.00000010 Ry", "",
          f"     total magnetization       =     {sum(moments):6.2f} Bohr mag/cell", "",
          "     PWSCF        :      1m 2.00s CPU      1m 3.00s WALL", "", "",
          "   This run was terminated on:  12: 1: 3   1Jan2025            ", "",
          "=------------------------------------------------------------------------------=",
          "   JOB DONE.", "=------------------------------------------------------------------------------="]
    path.write_text("\n".join(L) + "\n")


def energy_outputs(d, J_true, repo=None):
    """VASP outputs (vasprun.xml + OUTCAR) of the four standard CrI3 configurations in ``d``/<config>/, with the
    energies of a known J1–J3 model (meV, internal convention, S = 3/2; E0 = −14.6 eV per Cr) and the CIF beside
    them — the input of ``wannmag run --from d``."""
    import shutil

    from wannmag.magnetism import SpinModel
    from wannmag.magnetism.energy_mapping import model_energies
    from wannmag.structures import find_magnetic_sites, neighbour_shells, standard_configurations

    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    repo = Path(repo) if repo is not None else Path(__file__).resolve().parents[2]
    shutil.copy(repo / "data" / "structures" / "CrI3_monolayer.cif", d / "CrI3_monolayer.cif")
    sub = find_magnetic_sites(cri3_monolayer())
    model = SpinModel.from_sublattice(sub)
    for J, sh in zip(J_true, neighbour_shells(sub, 3)):
        for b in sh.bonds:
            model.add_bond(b.i, b.j, b.R, J)
    configs = standard_configurations(sub)
    energies = model_energies(model, configs) / 1000 - 14.6 * np.array([c.n_sites for c in configs])
    for c, e in zip(configs, energies):
        (d / c.name).mkdir()
        vasprun(c.atoms, e, d / c.name / "vasprun.xml")
        outcar(c.atoms, e, c.atoms.get_initial_magnetic_moments() * 0.99, d / c.name / "OUTCAR")
    return d


def hr_dat(path, nw, seed=0):
    rng = np.random.default_rng(seed)
    Rs = [(0, 0, 0), (1, 0, 0), (-1, 0, 0)]
    L = ["written by make_synthetic.py (wannmag tests)", f"{nw:12d}", f"{len(Rs):12d}", "    1    1    1"]
    H0 = rng.normal(size=(nw, nw)) * 0.1
    H0 = H0 + H0.T + np.diag(np.linspace(-2, 2, nw))
    T = rng.normal(size=(nw, nw)) * 0.05
    mats = {Rs[0]: H0, Rs[1]: T, Rs[2]: T.T}
    for R in Rs:
        for n in range(nw):
            for m in range(nw):
                L.append(f"{R[0]:5d}{R[1]:5d}{R[2]:5d}{m + 1:5d}{n + 1:5d}{mats[R][m, n]:12.6f}{0.0:12.6f}")
    path.write_text("\n".join(L) + "\n")


def win(path, atoms, nw):
    L = ["begin projections", "Cr:d", "end projections", f"num_wann = {nw}", f"num_bands = {nw}",
         "begin unit_cell_cart", "ang"]
    L += [f"  {v[0]:14.8f} {v[1]:14.8f} {v[2]:14.8f}" for v in atoms.cell.array]
    L += ["end unit_cell_cart", "begin atoms_frac"]
    L += [f"  {s} {f[0]:12.8f} {f[1]:12.8f} {f[2]:12.8f}"
          for s, f in zip(atoms.get_chemical_symbols(), atoms.get_scaled_positions())]
    L += ["end atoms_frac", "mp_grid = 2 2 1"]
    path.write_text("\n".join(L) + "\n")


def main():
    atoms = cri3_monolayer()
    fm = [MOM[s] for s in atoms.get_chemical_symbols()]
    neel = [MOM["Cr"], -MOM["Cr"]] + [0.0] * 6
    (DATA / "vasp_fm").mkdir(parents=True, exist_ok=True)
    vasprun(atoms, E_FM, DATA / "vasp_fm" / "vasprun.xml")
    outcar(atoms, E_FM, fm, DATA / "vasp_fm" / "OUTCAR")
    qe_out(atoms, E_NEEL, neel, DATA / "qe_neel.out")
    w = DATA / "w90"
    w.mkdir(exist_ok=True)
    for ch, s in (("up", 1), ("dn", 2), ("nm", 3)):
        hr_dat(w / f"CrI3_{ch}_hr.dat", 10, seed=s)
        win(w / f"CrI3_{ch}.win", atoms, 10)


if __name__ == "__main__":
    main()
