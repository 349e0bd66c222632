"""``wannmag run``: from a structure file (or a directory of DFT outputs) to a report.

Steps (each cached and resumable, see :mod:`wannmag.workflows.engine`; results in ``OUT/steps/<step>.json``):

1. ``structure``     magnetic sublattice, shells, superexchange paths, lattice plot
2. ``dft``           total energies of FM, Néel, zigzag, stripy (embedded GPAW, or read from ``--from DIR``)
3. ``mapping``       energy mapping E0, J1–J3 (meV; H = Σ_{i<j} J S_i·S_j, each bond once, |S| = S, J > 0 AF)
4. ``wannier``       MLWF models (metal d + ligand p): spin up/down of the FM state and the spin-averaged model
5. ``tb``            crystal field, 10Dq, Δ, Zaanen–Sawatzky–Allen classification
6. ``mft``           magnetic force theorem (LKAG) J's
7. ``superexchange`` channel-by-channel 1NN exchange
   ``exchange_compare`` every exchange route of the run side by side (J1–J3, internal and TB2J conventions, times),
                     the J1 gap and which J the Monte Carlo uses and why → ``OUT/exchange_routes.json``
                     (:mod:`wannmag.magnetism.routes`; ``wannmag exchange compare OUT`` prints it)
8. ``anisotropy``    dipolar (2D Ewald) + spin–orbit MAE (GPAW force theorem) of every collinear order → single-ion A,
                     Kitaev K, Γ, Γ′ and XXZ λ_k (``fit_collinear_soc``)
9. ``model``         the SpinModel fed to Monte Carlo (energy-mapping J1–J3 + anisotropy), saved as JSON
10. ``lswt``         magnon gap and RPA (Tyablikov) ordering temperature
11. ``mc``           parallel-tempering Monte Carlo on ≥ 3 sizes: Tc/TN from Binder crossings and peaks; a first
                     pass on a wide window, a second on a ladder concentrated around the first estimate
12. ``report``       report.md and a self-contained report.html

With ``dask`` (an address or "local"), or on ``workers`` local processes, the independent pieces of a step run side by
side: the DFT configurations, the FM and NM branches of the wannier step (SCF + Wannierisation each), the spin–orbit
calculations of the anisotropy step (ground-state MAE and one record per order) and the Monte Carlo sizes; results
are identical to the serial run (same seeds, same inputs).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
from pymatgen.core import Composition

from .._atomic import atomic_write_json, atomic_write_text
from ..errors import WannmagError
from ..magnetism.anisotropy import anisotropy_summary, spin_waves_for_order
from ..magnetism.anisotropy.collinear import CollinearSOCFit, soc_directions
from ..magnetism.anisotropy.dipolar import layer_frame
from ..magnetism.energy_mapping import FitError, fit_exchange, records_from_configurations
from ..magnetism.mft import hamiltonian_from_tb, lkag_exchange, mft_spin_model
from ..magnetism.montecarlo import MCSettings, build_lattice, mermin_wagner_check
from ..magnetism.montecarlo import ground_state as gs_fn
from ..magnetism.montecarlo.cluster import ClusterSchemeError
from ..magnetism.montecarlo.plot import plot_curves
from ..magnetism.montecarlo.tc import (binder_kind, choose_algorithm, mean_field_window,
                                       ordering_temperature_refined)
from ..magnetism.routes import routes_from_run_steps
from ..magnetism.superexchange import plot_channels, superexchange
from ..magnetism.tc_estimates import tc_estimates
from ..structures import analyse_structure, honeycomb_configuration, rectangular_supercell
from ..structures.plot import plot_magnetic_lattice
from ..tightbinding import classify_zsa, crystal_fields, read_w90
from ..tightbinding.electronic import midgap_fermi_level, nominal_electron_count
from . import relax as _relax  # module, not function: tests replace relax_structure with a fake
from .engine import Engine, Step, files_fingerprint, structure_fingerprint
from .parallel import _client, _map
from .readers import read_output
from .reference_values import EXPERIMENT
from .report_html import markdown_to_html
from .results import (AnisotropyStep, DFTStep, ExchangeCompareStep, LSWTStep, MappingStep, MCStep, MFTStep,
                      ModelStep, RelaxStep, ReportStep, StructureStep, SuperexchangeStep, TBStep, WannierStep)
from .summary import mc_warnings, nearly_isotropic_caveat, tc_estimate_lines
from .vacancy import VACANCY_SETTINGS, report_lines, vacancy_steps
from .vacancy import check_placements as _check_placements
from .vacancy import is_neutral as _is_neutral
from .vacancy import neutral_fit_options as _neutral_fit_options
from .vacancy import neutral_settings as _neutral_settings
from .vacancy import vacancy_charge as _check_charge
from .wannier import wannier_models

# Local imports left: the GPAW-backed calculations (dft.run_dft, anisotropy.gpaw_mae, collinear.gpaw_soc_record)
# and collinear.fit_soc_records are looked up at call time, where the tests put their fakes (tests/workflows/
# fake_parallel.py); Dask is imported by workflows.parallel only when a client is asked for.

__all__ = ["build_workflow", "run_workflow", "PRESET_SETTINGS", "EXPERIMENT"]

CONFIGS = ("FM", "Neel", "zigzag", "stripy")

#: Monte Carlo and Wannier settings per preset (DFT settings: ``wannmag.workflows.dft.PRESETS``)
PRESET_SETTINGS = {
    "fast": {"mc_sizes": [6, 9, 12], "mc_sweeps": 6000, "mc_therm": 2000, "mc_replicas": 16, "kmesh_mft": [9, 9, 1]},
    "accurate": {"mc_sizes": [12, 18, 24], "mc_sweeps": 40000, "mc_therm": 10000, "mc_replicas": 24,
                 "kmesh_mft": [15, 15, 1]},
}


class WorkflowError(WannmagError):
    """The workflow cannot run with these inputs."""


# ------------------------------------------------------------------------------------------------------ helpers
def _formula(atoms) -> str:
    return Composition(atoms.get_chemical_formula()).reduced_formula


# ------------------------------------------------------------------------------------------------------ steps
def step_relax(ctx):
    """Relax the ionic positions (:func:`wannmag.workflows.relax.relax_structure`: GPAW DFT+U in ``relax_order``, the
    run's preset and U, forces below ``relax_fmax`` eV/Å) in ``OUT/relax``; the later steps use the relaxed file
    (:func:`_use_relaxed`).  A relaxation that did not converge stops the run (one line) — an unrelaxed or
    half-relaxed geometry is never passed on as relaxed."""
    p = ctx.params
    rp = p["relax"]
    res = _relax.relax_structure(p["structure"], order=rp["order"], preset=p["preset"], U=p["U"], fmax=rp["fmax"],
                                 max_steps=rp["max_steps"], workdir=ctx.step_dir("relax"), log=ctx.log)
    if not res.converged or not res.relaxed_file:
        raise WorkflowError(f"{p['structure']}: relaxation did not converge ({res.status}); re-run to continue "
                            "it, or --no-relax to use the structure as given")
    return RelaxStep(result=res, unrelaxed_structure=p["structure"])


def _use_relaxed(ctx, result: dict) -> None:
    """After the relax step (computed or cached): every later step reads the relaxed structure."""
    rel = ctx.typed("relax", RelaxStep).result
    if rel.converged and rel.relaxed_file:
        ctx.params["structure"] = rel.relaxed_file


def step_structure(ctx):
    rep = analyse_structure(ctx.sublattice)
    png = ctx.step_dir("structure") / "lattice.png"
    plot_magnetic_lattice(rep, png)
    d = rep.as_dict()
    return StructureStep(formula=_formula(rep.sublattice.atoms), table=rep.table(), shells=d["shells"],
                         paths=d["paths"], magnetic_sites=d["magnetic_sites"], figure=str(png))


def _formula_of_run(ctx) -> str:
    return ctx.typed("structure", StructureStep).formula


def _dft_one(args):
    structure, sub, name, preset, U, workdir = args  # sub: the run's MagneticSublattice of ``structure`` (ctx)
    from .dft import run_dft  # local: looked up per call, the GPAW engine (tests put a fake in dft.run_dft)

    # all four orders in the same rectangular 4-site cell: the same k-mesh, basis and real-space grid for every
    # configuration, so that cell-dependent errors (k sampling, LCAO egg-box) cancel in the energy differences
    conf = honeycomb_configuration(sub, name, supercell=rectangular_supercell(sub.atoms))
    return run_dft(structure, conf, preset=preset, U=U, workdir=workdir, name=f"{name}_rect", log=True,
                   progress=f"configuration {CONFIGS.index(name) + 1} of {len(CONFIGS)}")


def step_dft(ctx):
    p = ctx.params
    if p.get("from_dir"):
        return _read_energies(Path(p["from_dir"]), p["structure"], ctx.sublattice)
    workdir = str(ctx.step_dir("dft"))
    client = _client(p.get("dask"))
    try:
        recs = _map(client, _dft_one, [(p["structure"], ctx.sublattice, c, p["preset"], p["U"], workdir)
                                       for c in CONFIGS], workers=p.get("workers", 1))
    finally:
        if client is not None:
            client.close()
    return DFTStep(records=recs, engine="gpaw")


def _read_energies(d: Path, structure, sublattice):
    """Energies of FM/Neel/zigzag/stripy from ``d/<config>/`` (VASP vasprun.xml/OUTCAR or QE pw.x output);
    ``sublattice`` the MagneticSublattice of the ``structure`` file."""
    if not d.is_dir():
        raise WorkflowError(f"{d}: not a directory")
    recs = []
    for name in CONFIGS:
        sub = d / name
        if not sub.is_dir():
            continue
        rec = read_output(_energy_source(sub), config=name)
        # the cell of the calculation: primitive or the rectangular 4-site cell
        conf = honeycomb_configuration(sublattice, name)
        if rec.moments and len(rec.moments) != len(conf.atoms):
            conf = honeycomb_configuration(sublattice, name, supercell=rectangular_supercell(conf.atoms))
        if rec.moments and len(rec.moments) != len(conf.atoms):
            raise WorkflowError(f"{sub}: {len(rec.moments)} atoms fit neither the primitive nor the rectangular "
                                f"{name} cell of {Path(structure).name}")
        rec.supercell = conf.supercell.tolist()
        rec.n_sites = conf.n_sites
        recs.append(rec)
    if len(recs) < 2:
        raise WorkflowError(f"{d}: energies of at least two of {', '.join(CONFIGS)} needed (sub-directories "
                            "FM/, Neel/, zigzag/, stripy/ with vasprun.xml/OUTCAR or a pw.x output)")
    return DFTStep(records=recs, engine="from-dir", dir=str(d))


def _energy_source(sub: Path) -> Path:
    """What ``_read_energies`` reads of ``sub``: the directory itself if it holds vasprun.xml/OUTCAR (VASP), else
    its first file (a pw.x output)."""
    files = [f for f in sorted(sub.iterdir()) if f.is_file()]
    if any(f.name in ("vasprun.xml", "OUTCAR") for f in files):
        return sub
    if not files:
        raise WorkflowError(f"{sub}: no DFT output in this directory (vasprun.xml/OUTCAR or a pw.x output)")
    return files[0]


def _energy_inputs(d: Path, names=None) -> list[Path]:
    """The files the energies of ``d/<config>/`` are read from (for the content fingerprint of ``--from DIR``)."""
    out = []
    subs = [d / n for n in names] if names is not None else sorted(x for x in d.iterdir() if x.is_dir())
    for sub in subs:
        if not sub.is_dir() or not any(f.is_file() for f in sub.iterdir()):
            continue
        src = _energy_source(sub)
        out += [f for f in (src / "vasprun.xml", src / "OUTCAR") if f.is_file()] if src.is_dir() else [src]
    return out


def _wannier_inputs(d) -> list[Path]:
    """The Wannier90 files of ``d`` a tight-binding model is read from."""
    suffixes = ("_hr.dat", "_tb.dat", ".win", "_centres.xyz", "_wsvec.dat")
    return [f for f in sorted(Path(d).iterdir()) if f.is_file() and
            any(f.name.endswith(x) or f.name.endswith(x + ".gz") for x in suffixes)]


def step_mapping(ctx):
    sub = ctx.sublattice
    recs = ctx.typed("dft", DFTStep).records
    configs = [honeycomb_configuration(sub, r.config, supercell=r.supercell) for r in recs]
    for c, r in zip(configs, recs):
        if r.n_sites and r.n_sites != c.n_sites:
            raise WorkflowError(f"configuration {c.name}: {r.n_sites} magnetic sites in the DFT record, "
                                f"{c.n_sites} in the structure's {c.name} cell")
    records, distances = records_from_configurations(sub, configs, [r.energy for r in recs])
    S = float(sub.spins[0])
    n = min(3, len(records) - 1)
    try:
        fit = fit_exchange(records, n_shells=n, spin=S, distances=distances)
    except FitError:
        fit = fit_exchange(records, n_shells=max(1, n - 1), spin=S, distances=distances)
    model = fit.to_spin_model(sub)
    path = model.save(ctx.step_dir("mapping") / "model_energy_mapping.json")
    e_fm = {r.config: r.energy_per_ion for r in recs}
    rel = {k: (v - e_fm.get("FM", min(e_fm.values()))) * 1000 for k, v in e_fm.items()}
    moments = {r.config: r.site_moments for r in recs}
    return MappingStep(fit=fit, table=fit.table(), energies_meV=rel, site_moments=moments,
                       ground_state=min(rel, key=rel.get), model_path=str(path), model=model)


def step_wannier(ctx):
    p = ctx.params
    if p.get("wannier_dir"):
        return WannierStep(dir=str(p["wannier_dir"]), source="given")
    out = ctx.step_dir("wannier")
    # the FM and NM branches (SCF + Wannierisation each) side by side on the pool of the DFT step; a finished branch
    # is skipped on a re-run (wannier_models)
    client = _client(p.get("dask"))
    try:
        res = wannier_models(p["structure"], preset=p["preset"], U=p["U"], workdir=str(ctx.step_dir("dft_wannier")),
                             outdir=out, map_fn=lambda fn, items: _map(client, fn, items, workers=p.get("workers", 1)))
    finally:
        if client is not None:
            client.close()
    return WannierStep(dir=str(out), source="gpaw", channels=dict(res))


def _collinear(ctx):
    """The Wannier step's spin-up/down tight-binding model, read once per run (tb, mft, superexchange)."""
    return ctx.typed("wannier", WannierStep).collinear()


def step_tb(ctx):
    model = _collinear(ctx)
    avg = model.spin_averaged()
    cls = classify_zsa(model, U=ctx.params["U"])
    cf = [c.as_dict() for c in crystal_fields(avg)]
    return TBStep(classification=cls, text=cls.text(), crystal_field=cf, num_wann=model.num_wann)


def step_mft(ctx):
    model = _collinear(ctx)
    ham = hamiltonian_from_tb(model)
    try:
        nel = float(np.sum(nominal_electron_count(model)))  # (N↑, N↓) from nominal ionic charges
        kw, note = {"n_electrons": nel}, "E_F from the nominal electron count"
    except WannmagError as exc:
        # e.g. VPS3: P p orbitals in the Wannier subspace have no nominal count; use the occupation of the DFT run
        # (fermi_energy of the .win file, same energy scale as the Hamiltonian) with E_F in mid-gap
        ef, how = midgap_fermi_level(model)
        kw, note = {"efermi": ef}, f"E_F {how}; nominal count failed: {exc}"
    res = lkag_exchange(ham, kmesh=tuple(ctx.params["kmesh_mft"]), rcut=9.0, **kw)
    sm = mft_spin_model(ham, res)
    path = sm.save(ctx.step_dir("mft") / "model_mft.json")
    return MFTStep(table=res.table(), shells=sm.shell_summary(), efermi=res.efermi, efermi_source=note,
                   model_path=str(path))


def step_superexchange(ctx):
    d = Path(ctx.typed("wannier", WannierStep).dir)
    nm = sorted(d.glob("*_nm_hr.dat"))
    # the spin-averaged model: the non-spin-polarised Wannierisation if present, else (H↑ + H↓)/2
    model = read_w90(str(nm[0])[: -len("_hr.dat")], kind="single") if nm else _collinear(ctx).spin_averaged()
    comparisons = {1: {"energy mapping": ctx.typed("mapping", MappingStep).J_meV[0]}}
    mft_shells = ctx.typed("mft", MFTStep).shells
    if mft_shells:
        comparisons[1]["force theorem"] = mft_shells[0]["J"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = superexchange(model, shells=(1,), U=ctx.params["U"], comparisons=comparisons)
    png = ctx.step_dir("superexchange") / "channels.png"
    try:
        plot_channels({_formula_of_run(ctx): res.bonds[0]}, png)
    except Exception as exc:  # noqa: BLE001 - the numbers matter more than the figure
        warnings.warn(f"channel plot failed: {exc}")
    s1 = res.shell_summary()[0]
    # J1_meV is None where the t/Δ expansion is out of range (status says why); the channel values are then formal
    # perturbative terms, never an exchange estimate
    return SuperexchangeStep(result=res, table=res.table(), J1_meV=s1["J_meV"], status=s1["status"],
                             terms_meV=s1.get("channels_meV", s1.get("formal_terms_meV")),
                             model_source=str(nm[0]) if nm else "spin average of the collinear pair",
                             figure=str(png), warnings=res.warnings + [str(w.message) for w in caught])


def step_exchange_compare(ctx):
    """Every exchange route of this run side by side (:mod:`wannmag.magnetism.routes`; meV, H = Σ_{i<j} J S_i·S_j,
    each bond once, |S| = S, J > 0 AF) → ``OUT/exchange_routes.json`` (read by ``wannmag exchange compare OUT``)."""
    # the stored step dicts, not the typed results: each route carries its step's wall time (the engine's
    # _seconds), and `wannmag exchange compare OUT` builds the same comparison from the stored files
    comp = routes_from_run_steps(ctx.results, _formula_of_run(ctx))
    path = atomic_write_json(ctx.out / "exchange_routes.json", comp.as_dict())
    return ExchangeCompareStep(routes=comp, table=comp.table(), file=str(path))


def _soc_task(args):
    """One force-theorem SOC calculation of the anisotropy step (a process pool / Dask task): ("mae", gpw) →
    :func:`gpaw_mae` of the ground state (standard directions); ("soc", gpw, directions, elements) →
    :func:`gpaw_soc_record`.  Returns ("ok", result) or ("error", the WannmagError), so that the step treats a
    failure exactly as the serial code did."""
    # local: looked up per call, the GPAW force theorem (tests put fakes in anisotropy / anisotropy.collinear)
    from ..magnetism.anisotropy import gpaw_mae
    from ..magnetism.anisotropy.collinear import gpaw_soc_record

    kind, gpw, *rest = args
    try:
        if kind == "mae":
            return "ok", gpaw_mae(gpw)
        dirs, elements = rest
        return "ok", gpaw_soc_record(gpw, dirs, magnetic_elements=elements)
    except WannmagError as exc:
        return "error", exc


def step_anisotropy(ctx):
    mapping = ctx.typed("mapping", MappingStep)
    model, order = mapping.spin_model(), mapping.ground_state
    summ = anisotropy_summary(model, order=order)
    out = {"order": order, "summary": summ, "dipolar_meV": summ["dipolar"]["delta_meV"]}
    gpw = _ground_state_gpw(ctx, order)
    # every SOC calculation (ground-state MAE, one record per collinear order) is independent: run them side by side
    # on the pool of the DFT step (same results as one after the other)
    soc_tasks, soc_error = _soc_record_tasks(ctx, model)
    tasks = ([("mae", gpw)] if gpw is not None else []) + [t for _, t in soc_tasks]
    client = _client(ctx.params.get("dask")) if len(tasks) > 1 else None
    try:
        results = _map(client, _soc_task, tasks, workers=ctx.params.get("workers", 1))
    finally:
        if client is not None:
            client.close()
    if gpw is not None:
        status, mae = results.pop(0)
        if status == "error":
            raise mae
        e_out = mae.energy_of(0.0) / mae.n_magnetic
        e_in = 0.5 * (mae.energy_of(90.0, 0.0) + mae.energy_of(90.0, 90.0)) / mae.n_magnetic
        out["soc_meV"] = float(e_in - e_out)
        out["soc_method"] = mae.method
    else:
        out["soc_meV"] = None
        out["soc_method"] = "not available (no wave functions of the ground state, or DFT energies from a directory)"
    out.update(_soc_exchange_fit(ctx, model, soc_tasks, results, soc_error))
    return AnisotropyStep(**out)


def _soc_record_tasks(ctx, model):
    """([(order, task)], error or None): the force-theorem SOC tasks of every collinear order with a .gpw (same
    rectangular cell) along the directions of ``soc_directions``."""
    gpws = {r.config: r.gpw for r in ctx.typed("dft", DFTStep).records if r.gpw and Path(r.gpw).exists()}
    if len(gpws) < 2:
        return [], "force-theorem energies of at least two orders (.gpw) needed"
    elements = sorted({s.element for s in model.sites})
    try:
        dirs = soc_directions(ctx.sublattice)
    except WannmagError as exc:
        return [], str(exc)
    return [(o, ("soc", g, dirs, elements)) for o, g in gpws.items()], None


def _soc_exchange_fit(ctx, model, soc_tasks, results, error) -> dict:
    """Force-theorem SOC energies of every collinear order with a .gpw (same rectangular cell) along the directions
    of ``soc_directions`` (``results`` of ``soc_tasks``, in order) and the fit of the single-ion A, Kitaev K, Γ, Γ′
    (NN) and XXZ λ_k (longer shells) (``fit_collinear_soc``; H = Σ_{i<j} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i, |S| = S,
    J > 0 AF, meV).  Returns ``soc_records`` (raw energies), ``soc_fit`` (parameters, with the design) and ``fit``
    (the fit itself, handed to the model step), or ``soc_fit_error``."""
    from ..magnetism.anisotropy.collinear import fit_soc_records  # local: looked up per call (tests put a fake there)

    if error is not None:
        return {"soc_fit": None, "soc_fit_error": error}
    records = {}
    for (o, _), (status, rec) in zip(soc_tasks, results):
        if status == "error":  # the first failing order, as in the serial loop
            return {"soc_fit": None, "soc_fit_error": str(rec)}
        records[o] = rec
    try:
        fit = fit_soc_records(records, ctx.sublattice, template=model)
    except WannmagError as exc:
        return {"soc_fit": None, "soc_fit_error": str(exc)}
    return {"soc_records": records, "soc_fit": fit.as_dict(), "soc_fit_table": fit.table(),
            "fit": fit if isinstance(fit, CollinearSOCFit) else None}


def _ground_state_gpw(ctx, order):
    r = ctx.typed("dft", DFTStep).record(order)
    return r.gpw if r is not None and r.gpw and Path(r.gpw).exists() else None


def _soc_fit_of(ctx, an: AnisotropyStep, model):
    """The anisotropy step's collinear SOC fit: the step's own object, or :meth:`CollinearSOCFit.from_dict` of its
    stored ``soc_fit`` (no refit, no structure read); a result stored without the fit's design (an anisotropy step
    of an earlier version) is fitted again from its ``soc_records``, as the model step did before (same numbers)."""
    from ..magnetism.anisotropy.collinear import fit_soc_records  # local: looked up per call (tests put a fake)

    if an.fit is not None:
        return an.fit
    return fit_soc_records(an.soc_records, ctx.sublattice, template=model)


def step_model(ctx):
    """Energy-mapping J1–J3 (H = Σ_{i<j} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i, |S| = S, J > 0 AF, meV) + anisotropy.

    With force-theorem SOC energies of several collinear orders (the ``anisotropy`` step's ``soc_fit``) the SOC
    anisotropy enters as fitted tensors: uniaxial single-ion A, Kitaev K, Γ, Γ′ on the NN bonds and XXZ λ_k on the
    longer shells (traceless: the isotropic J's are unchanged).  Otherwise (one order only, or energies from a
    directory) the SOC ΔE of the ground state is an effective uniaxial single-ion term A = −(ΔE_SOC/S²) ĉĉ.

    The dipolar ΔE of the ground state (2D Ewald) is folded in as an effective uniaxial single-ion term too, but as
    the model's *labelled* dipolar part (``SpinModel.set_dipolar_single_ion``): ``single_ion`` is the total that
    Monte Carlo and spin waves use, ``single_ion_dipolar`` the dipolar share of it, so that ``wannmag anisotropy``
    and the exporters count it once.  ΔE = E_in − E_out in meV per ion (> 0: easy axis along the normal ĉ)."""
    mapping = ctx.typed("mapping", MappingStep)
    an = ctx.typed("anisotropy", AnisotropyStep)
    model, order = mapping.spin_model(), mapping.ground_state  # a copy: changed below
    dip = float(an.dipolar_meV)
    c = layer_frame(model.cell)[2]
    cc = np.outer(c, c)
    if an.soc_fit:
        # SOC as fitted tensors (SIA + per-bond Kitaev/XXZ): the anisotropy step's fit (its object, or rebuilt)
        fit = _soc_fit_of(ctx, an, model)
        model = fit.apply(model)
        soc = fit.mae(order)["total"] if order in fit.design.orders else float(an.soc_meV or 0.0)
        method = ("energy mapping J + SOC anisotropy fitted to force-theorem energies of the collinear orders "
                  "(single-ion A, NN Kitaev K/Gamma/Gamma', XXZ lambda_k) + dipolar as a labelled effective uniaxial "
                  "single-ion part (single_ion_dipolar)")
    else:
        soc = float(an.soc_meV or 0.0)
        for k, s in enumerate(model.sites):
            model.single_ion[k] = -soc / s.spin**2 * cc
        method = ("energy mapping J + effective uniaxial SOC single-ion term + dipolar as a labelled effective "
                  "uniaxial single-ion part (single_ion_dipolar)")
    model.set_dipolar_single_ion([-dip / s.spin**2 * cc for s in model.sites],
                                 {"source": "2D Ewald sum of point moments g S muB (anisotropy step) as an effective "
                                            "uniaxial single-ion term; exact for uniform rotations of this order",
                                  "order": order, "delta_meV_per_ion": dip})
    total = dip + soc
    model.meta.update({"method": method, "anisotropy_meV_per_ion": total, "dipolar_meV_per_ion": dip,
                       "soc_meV_per_ion": soc})
    path = model.save(ctx.step_dir("model") / "model.json")
    return ModelStep(model_path=str(path), anisotropy_meV_per_ion=total, J_meV=[b.J_iso for b in model.bonds],
                     method=method, model=model)


def step_lswt(ctx):
    model = ctx.typed("model", ModelStep).spin_model()
    order = ctx.typed("mapping", MappingStep).ground_state
    try:
        sw, axis = spin_waves_for_order(model, order=order)
    except WannmagError as exc:
        return LSWTStep(skipped=str(exc))
    tc = sw.tc_rpa()
    # analytic estimates beside Monte Carlo (Torelli–Olsen; quantum mapping ratio; RG ingredients), each stored
    # with its reason when it cannot be made (wannmag.magnetism.tc_estimates)
    try:
        est = tc_estimates(model, order=order, axis=axis)
    except WannmagError as exc:
        est = {"skipped": str(exc)}
    return LSWTStep(order=order, axis=np.asarray(axis).tolist(), gap_meV=float(sw.gap()),
                    tc_rpa_K=float(tc.tc_classical), tc_rpa_quantum_K=float(tc.tc_quantum), rpa=tc,
                    estimates={k: v for k, v in est.items() if k not in ("order", "axis", "rpa")})


def step_mc(ctx):
    """Parallel-tempering Monte Carlo of the model step's SpinModel on ``mc_sizes``: the two-pass Tc search of
    :func:`~wannmag.magnetism.montecarlo.tc.ordering_temperature_refined` (first pass on 0.1–1.1 × the mean-field
    scale, second on a ladder around the first estimate unless ``mc_refine`` is False), the sizes of a pass side by
    side on the run's process pool or Dask; K."""
    p = ctx.params
    ms = ctx.typed("model", ModelStep)
    model = ms.spin_model()
    # temperature window from the classical mean-field scale k_B T_MF = S² Σ_j |J_ij| / 3
    tmin, tmax = mean_field_window(model, 0.1, 1.1)
    settings = MCSettings(tmin=tmin, tmax=tmax, n_replicas=p["mc_replicas"], n_sweeps=p["mc_sweeps"],
                          n_therm=p["mc_therm"], seed=p["seed"], checkpoint_every=1000,
                          threads=int(p.get("mc_threads") or 1))
    out = ctx.step_dir("mc")
    sizes = [int(x) for x in p["mc_sizes"]]
    lat0 = build_lattice(model, sizes[0])
    gs0 = gs_fn(lat0, seed=settings.seed)
    # cluster moves by default where the scheme is valid, else Metropolis with the reason; an explicit
    # mc_algorithm = cluster that the scheme cannot treat is refused before any run.  The Binder cumulant of the
    # easy-axis component for a uniaxial model (tc.binder_kind), the vector one otherwise.
    try:
        algo, algo_why = choose_algorithm(lat0, gs0.pattern, [build_lattice(model, L) for L in sizes[1:]],
                                          p.get("mc_algorithm"))
    except ClusterSchemeError as exc:
        raise WannmagError(f"{ms.model_path}: {exc}") from None
    settings = replace(settings, algorithm=algo)
    binder = binder_kind(lat0, gs0)
    mw = mermin_wagner_check(model, lat0.dimension, False, gs0.spins, lat0.slen)
    client = _client(p.get("dask"))
    try:
        # checkpoints are keyed by the model and the settings: a re-run after an upstream change (new model) starts
        # fresh instead of refusing the old checkpoint, an interrupted run with the same inputs resumes; the second
        # pass (around a bracketed crossing, or beyond the window edge where an unbracketed one lies: the rule of
        # `mc`) resolves the Binder crossings and the C/χ peaks by several replicas instead of one or two
        two = ordering_temperature_refined(model, sizes, settings, refine=p.get("mc_refine", True), out_dir=out,
                                           map_fn=lambda fn, items: _map(client, fn, items,
                                                                         workers=p.get("workers", 1)),
                                           mw=mw, binder=binder)
    finally:
        if client is not None:
            client.close()
    tcr, curves, first = two.result, two.curves, two.first
    png = out / "mc_curves.png"
    try:
        plot_curves(curves, png, tc=tcr.tc, tc_error=tcr.tc_error,  # title states Tc / not bracketed
                    title=f"{_formula_of_run(ctx)}: Monte Carlo ({tcr.method})",
                    edge=tcr.side, binder=tcr.binder or "vector")
    except Exception as exc:  # noqa: BLE001 - a plot failure must not lose the numbers
        warnings.warn(f"MC plot failed: {exc}")
    return MCStep(result=tcr, mermin_wagner=bool(mw.get("flag")),
                  warning=mw.get("reason") if mw.get("flag") else None, sizes=sizes, t_window_K=two.t_window,
                  coarse={"t_window_K": [settings.tmin, settings.tmax], "tc_K": first.tc,
                          "tc_error_K": first.tc_error, "method": first.method},
                  refined=two.refined, refine_warning=two.warning, algorithm=algo, algorithm_reason=algo_why,
                  figure=str(png))


# ------------------------------------------------------------------------------------------------------ report
def _rel(path, out) -> str:
    """``path`` relative to the run directory ``out`` (a figure of a copied or moved run directory may live
    elsewhere: then the relative path climbs out of ``out``)."""
    return os.path.relpath(Path(path).resolve(), Path(out).resolve())


def _typed_if_done(ctx, step: str, cls):
    """The typed result of ``step`` if the run has one (:meth:`Context.typed`), else None."""
    return ctx.typed(step, cls) if step in ctx.results else None


def _summary_lines(ctx, formula: str) -> list[str]:
    """The report's first section: ground state, easy axis, ordering temperature with the estimates beside it
    (summary.tc_estimate_lines) and the experiment, where known."""
    mp, mc = ctx.typed("mapping", MappingStep), ctx.typed("mc", MCStep)
    dE = ctx.typed("model", ModelStep).anisotropy_meV_per_ion
    kind = "Curie" if mp.ground_state == "FM" else "Néel"
    out = ["## Summary", "", f"- Ground state: **{mp.ground_state}** (energy mapping, J1–J3 = "
           + ", ".join(f"{j:+.3f}" for j in mp.J_meV) + " meV)"]
    ec = _typed_if_done(ctx, "exchange_compare", ExchangeCompareStep)
    choice = ec.routes.mc if ec is not None else {}
    if choice:
        out.append(f"- Exchange of the Monte Carlo: **{choice['route']}** — {choice['reason']} (all routes: "
                   "section 'Exchange routes side by side')")
    if dE is not None:
        axis = "out of plane" if dE > 0 else ("in plane" if dE < 0 else "none (isotropic)")
        out.append(f"- Easy axis: **{axis}** (E_in − E_out = {dE:+.4f} meV per ion)")
    if mc.tc_K is not None and not mc.mermin_wagner:
        out.append(f"- {kind} temperature (classical Monte Carlo): **{mc.tc_K:.1f} ± "
                   f"{mc.tc_error_K or 0:.1f} K** ({mc.method}; sizes {mc.sizes}, "
                   f"preset {ctx.params.get('preset')})")
    elif mc.mermin_wagner:
        out.append(f"- {kind} temperature: **none** — no finite-temperature order of this 2D model (Mermin–Wagner)")
    else:
        out.append(f"- {kind} temperature: **not determined** — "
                   f"{mc.note or 'no Binder crossing inside the Monte Carlo window'}")
    # the summary helpers read the stored step dicts (they also summarise a run directory: wannmag.workflows.summary)
    for text in mc_warnings(ctx.results["mc"]):  # the analysis's own notes (pairs that disagree, ...) beside the number
        out.append(f"- **Warning:** {text}")
    iso = nearly_isotropic_caveat(ctx.results)
    if iso:
        out.append(f"- **Caveat:** {iso}")
    est = tc_estimate_lines(ctx.results)  # beside the classical number, never replacing it
    if est:
        out += ["- Estimates beside it (not replacing it):", *(f"    - {t}" for t in est)]
    if formula in EXPERIMENT:
        what, val, ref = EXPERIMENT[formula]
        out.append(f"- Experiment: {what} {val:.0f} K ({ref})")
    return out + [""]


def _cell(text) -> str:
    """Text for a Markdown table cell: '|' escaped (a status such as 'max |t_pd|/Δ' split the row into columns)."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _relax_lines(ctx) -> list[str]:
    """The report's geometry section when the run relaxed the structure: M–X distances and M–X–M angles before and
    after, forces, steps (:meth:`wannmag.workflows.relax.RelaxResult.table`); or a line saying the geometry is the
    structure file's, unrelaxed."""
    rel = _typed_if_done(ctx, "relax", RelaxStep)
    if rel is None:
        return ["## Geometry", "", "The structure file's geometry, not relaxed (`--relax` relaxes the ionic positions "
                "with DFT+U first; on by default in the accurate preset).", ""]
    return ["## Geometry (relaxed by this run)", "", f"Start: `{rel.unrelaxed_structure}`; every step "
            "below uses the relaxed structure.", "", "```", rel.result.table(), "```", ""]


def step_report(ctx):
    st = ctx.typed("structure", StructureStep)
    formula = st.formula
    mp, mft = ctx.typed("mapping", MappingStep), _typed_if_done(ctx, "mft", MFTStep)
    lines = [f"# wannmag report: {formula}", "",
             "Conventions: H = Σ_{i<j} J_ij S_i·S_j + Σ_i S_i·A_i·S_i, each bond once, |S| = S, J > 0 AF; meV, K, Å.", "",
             *_summary_lines(ctx, formula), *_relax_lines(ctx),
             "## Structure and exchange paths", "", "```", st.table, "```", "",
             f"![lattice]({_rel(st.figure, ctx.out)})", "",
             "## DFT energies (per magnetic ion, relative to FM)", "",
             "| configuration | E − E_FM (meV/ion) | site moments (μ_B) |", "|---|---|---|"]
    for k, v in mp.energies_meV.items():
        mom = mp.site_moments.get(k) or []
        lines.append(f"| {k} | {v:+.2f} | {', '.join(f'{m:+.2f}' for m in mom)} |")
    lines += ["", f"Ground state: **{mp.ground_state}**", "", "## Exchange constants: three routes", "",
              "| route | J1 | J2 | J3 |", "|---|---|---|---|",
              "| energy mapping | " + " | ".join(f"{j:+.3f}" for j in mp.J_meV) + " |"]
    if mft is not None and mft.shells:
        lines.append("| force theorem (LKAG) | " + " | ".join(f"{s['J']:+.3f}" for s in mft.shells[:3]) + " |")
    sx = _typed_if_done(ctx, "superexchange", SuperexchangeStep)
    if sx is not None and sx.J1_meV is not None:
        lines.append(f"| superexchange channels (1NN, Kanamori perturbation theory) | {sx.J1_meV:+.3f} | | |")
    elif sx is not None and sx.status:
        lines.append(f"| superexchange channels (1NN, Kanamori perturbation theory) | no J: {_cell(sx.status)} | | |")
    if ctx.params.get("preset") == "fast" and not ctx.params.get("from_dir"):
        lines += ["", "Note: the fast preset's energies are LCAO (dzp basis). On CrI3 this basis puts E(Néel) − E(FM) "
                  "23 % above plane waves (29.6 vs 24.0 meV/Cr; tzdp 26.9; the grid is converged — "
                  "data/dft/CrI3_basis_study.json in the wannmag repository), so the energy-mapping J and the "
                  "Monte Carlo Tc of this preset are upper estimates; `--preset accurate` (plane waves) for "
                  "quantitative values."]
    ec = _typed_if_done(ctx, "exchange_compare", ExchangeCompareStep)
    if ec is not None and ec.table:
        lines += ["", "## Exchange routes side by side", "", "```", ec.table, "```"]
    tb = _typed_if_done(ctx, "tb", TBStep)
    lines += ["", "## Tight-binding analysis", "", "```", str(None if tb is None else tb.text), "```", ""]
    if sx is not None and sx.table:
        lines += ["## Superexchange channels (1NN)", "", "```", sx.table, "```", ""]
        if sx.figure and Path(sx.figure).exists():
            lines += [f"![channels]({_rel(sx.figure, ctx.out)})", ""]
    an = ctx.typed("anisotropy", AnisotropyStep)
    lines += ["## Anisotropy (E_in − E_out, meV per ion; > 0: out of plane)", "",
              f"- dipolar (2D Ewald): {an.dipolar_meV:+.4f}",
              f"- spin–orbit (force theorem): {'n/a' if an.soc_meV is None else format(an.soc_meV, '+.4f')}",
              f"- total: {ctx.typed('model', ModelStep).anisotropy_meV_per_ion:+.4f}", ""]
    if an.soc_fit_table:
        head = ("SOC terms separated with the force-theorem energies of the collinear orders (single-ion A, Kitaev "
                "K, Γ, Γ′ of the NN bonds, XXZ λ_k; all in the spin model):")
        lines += [head, "", "```", an.soc_fit_table, "```", ""]
    else:
        lines += ["The total is used as an effective single-ion term"
                  + (f" ({an.soc_fit_error})" if an.soc_fit_error else "") + ".", ""]
    lw = _typed_if_done(ctx, "lswt", LSWTStep)
    if lw is not None and lw.skipped is None:
        rpa = lw.tc_rpa_K
        rpa_txt = ("zero (no gap: Mermin–Wagner)" if not np.isfinite(rpa) or rpa == 0 else
                   f"{rpa:.1f} K for classical spins ({lw.tc_rpa_quantum_K:.1f} K quantum)")
        lines += [f"Spin waves: gap {lw.gap_meV:.3f} meV, RPA (Tyablikov) ordering temperature {rpa_txt}.", ""]
    mc = ctx.typed("mc", MCStep)
    tc, err = mc.tc_K, mc.tc_error_K or 0.0
    tc_txt = (mc.note or "n/a") if tc is None else f"{tc:.1f} ± {err:.1f} K"
    lines += ["## Monte Carlo", "", f"Sizes {mc.sizes}, T window {mc.t_window_K[0]:.1f}–{mc.t_window_K[1]:.1f} K.",
              f"Ordering temperature: **{tc_txt}** ({mc.method})"]
    co = mc.coarse or {}
    if mc.refined and co.get("tc_K") is not None:
        lines.append(f"(first pass on {co['t_window_K'][0]:.1f}–{co['t_window_K'][1]:.1f} K: "
                     f"{co['tc_K']:.1f} ± {co.get('tc_error_K') or 0.0:.1f} K; the number above is from the second "
                     "pass, a ladder concentrated around it)")
    for w in mc_warnings(ctx.results["mc"]):  # window edge, Mermin–Wagner, size pairs that disagree (its own notes)
        lines.append(f"Warning: {w}")
    if formula in EXPERIMENT:
        what, val, ref = EXPERIMENT[formula]
        lines.append(f"Experiment: {what} {val:.0f} K ({ref}).")
    lines += ["", f"![Monte Carlo]({_rel(mc.figure, ctx.out)})", ""]
    if "vacancy_mc" in ctx.results:
        lines += report_lines(ctx)
    md = "\n".join(lines)
    atomic_write_text(ctx.out / "report.md", md)
    page = markdown_to_html(md, ctx.out)  # tables, headings, code blocks; figures embedded (one file)
    atomic_write_text(ctx.out / "report.html", page)
    return ReportStep(report_md=str(ctx.out / "report.md"), report_html=str(ctx.out / "report.html"))


# ------------------------------------------------------------------------------------------------------ API
def _resolve_inputs(structure, from_dir) -> tuple[str, str | None]:
    """The structure file (given, else the first *.cif / POSCAR* / *.vasp of ``from_dir``) as an absolute path, and
    the directory of the Wannier90 files inside ``from_dir`` (the first ``*_up_hr.dat`` found), if any."""
    wannier_dir = None
    if from_dir is not None:
        d = Path(from_dir)
        if not d.is_dir():
            raise WorkflowError(f"{d}: no such directory")
        if structure is None:
            cands = sorted(d.glob("*.cif")) + sorted(d.glob("POSCAR*")) + sorted(d.glob("*.vasp"))
            if not cands:
                raise WorkflowError(f"{d}: no structure file (*.cif, POSCAR) to start from")
            structure = cands[0]
        w = [x for x in d.rglob("*_up_hr.dat")]
        wannier_dir = str(w[0].parent) if w else None
    if structure is None:
        raise WorkflowError("give a structure file or --from DIR")
    return str(Path(structure).resolve()), wannier_dir


def _core_steps(params: dict, base: dict, from_key, wannier_key, relax: dict | None) -> list[Step]:
    """The steps of every run, relax (``relax``: its fmax/order, None = no relax step) to mc, keyed by ``base`` (the
    structure's content fingerprint), the fingerprints of the ``--from`` energies and Wannier files and the
    parameters they use."""
    preset, U = params["preset"], params["U"]
    dftp = {**base, "preset": preset, "U": float(U), "from_dir": from_key, "cells": "all rectangular"}
    steps = [
        Step("structure", step_structure, ("relax",) if relax else (), params=base,
             description="magnetic sublattice and exchange paths"),
        Step("dft", step_dft, ("structure",), params=dftp, description="DFT energies of FM, Néel, zigzag, stripy"),
        Step("mapping", step_mapping, ("dft",), params={}, description="energy mapping J1–J3"),
        Step("wannier", step_wannier, ("structure",), params={**base, "preset": preset, "U": float(U),
                                                             "from_dir": wannier_key is not None,
                                                             "wannier_dir": wannier_key},
             description="Wannier functions (metal d + ligand p)"),
        Step("tb", step_tb, ("wannier",), params={"U": float(U)}, description="crystal field and classification"),
        Step("mft", step_mft, ("wannier",), params={"kmesh_mft": params["kmesh_mft"]},
             description="magnetic force theorem"),
        Step("superexchange", step_superexchange, ("wannier", "mapping", "mft"), params={"U": float(U)},
             description="superexchange channels"),
        Step("anisotropy", step_anisotropy, ("mapping", "dft"), params={"soc_fit": "collinear orders v1"},
             description="dipolar + spin–orbit"),
        Step("exchange_compare", step_exchange_compare, ("structure", "dft", "mapping", "mft", "superexchange"),
             params={"routes": "v1"}, description="every exchange route side by side"),
        Step("model", step_model, ("mapping", "anisotropy"), params={}, description="spin model for Monte Carlo"),
        Step("lswt", step_lswt, ("model",), params={}, description="spin waves and RPA Tc"),
        Step("mc", step_mc, ("model",), params={**{k: params.get(k, True) for k in ("mc_sizes", "mc_sweeps", "mc_therm",
                                                                                 "mc_replicas", "seed", "mc_refine")},
                                                # the algorithm is part of the step's key ("auto": cluster moves
                                                # where valid, and the easy-axis Binder cumulant for uniaxial models —
                                                # results of the former Metropolis/vector default rerun); threads do
                                                # not change the result
                                                "mc_algorithm": params.get("mc_algorithm") or "auto"},
             description="parallel-tempering Monte Carlo"),
    ]
    if relax:  # first: every later step depends on it through "structure"
        steps.insert(0, Step("relax", step_relax, params={**base, "preset": preset, "U": float(U),
                                                         "fmax": relax["fmax"], "order": relax["order"]},
                             description=f"relax the ionic positions (DFT+U, {relax['order']}, forces < "
                                         f"{relax['fmax']:g} eV/Å)", after=_use_relaxed))
    return steps


def _vacancy_steps(params: dict, base: dict, from_dir) -> list[Step]:
    """The vacancy study's steps (:func:`~wannmag.workflows.vacancy.vacancy_steps`) with their DFT inputs keyed by
    content, like the other steps: the structure's fingerprint ``base``, the files of ``from_dir``/vacancy."""
    steps = []
    for st in vacancy_steps(params):
        # the vacancy study's DFT inputs by content, like the other steps
        if "structure" in st.params:
            st.params = {**st.params, "structure": base["structure"]}
        if st.params.get("from_dir"):
            vac = Path(from_dir) / "vacancy"
            st.params = {**st.params, "from_dir": files_fingerprint(_energy_inputs(vac), root=vac)
                         if vac.is_dir() else "no vacancy directory"}
        steps.append(st)
    return steps


def build_workflow(structure=None, out="wannmag_run", preset: str = "fast", U: float = 3.0, from_dir=None,
                   dask=None, seed: int = 0, log=print, settings: dict | None = None, workers: int = 1,
                   vacancies=None, vacancy_supercell=(2, 2, 1), vacancy_site: int = 0, vacancy_fit: str = "J1",
                   vacancy_configs: int | None = None, vacancy_engine=None, vacancy_charge="neutral",
                   vacancy_placements=None, vacancy_dft_settings: dict | None = None,
                   vacancy_keep_moved: bool = False, vacancy_absorb_constant: bool = False, vacancy_min_dof: int = 1,
                   relax: bool | None = None, relax_fmax: float = 0.02, relax_order: str = "FM",
                   relax_steps: int = 200) -> Engine:
    """The workflow of the module docstring as an :class:`Engine` (call ``.run()``); ``settings`` overrides entries
    of :data:`PRESET_SETTINGS` (Monte Carlo sizes/sweeps, force-theorem k-mesh); ``workers`` local processes run
    the DFT configurations, Wannier branches, spin–orbit calculations and Monte Carlo sizes side by side when no
    Dask cluster is given.

    ``vacancies`` (fractions x, 0 < x < 1) adds the vacancy study of :mod:`wannmag.workflows.vacancy` (steps
    vacancy_dft, vacancy_fit, vacancy_mc before the report): one site removed from ``vacancy_supercell``, the
    nearest-neighbour J next to the vacancy fitted separately from the bulk-like J1 (``vacancy_fit`` "J1": J2, J3
    held at the perfect lattice's values; "J123": fitted too) from ``vacancy_configs`` configurations (default
    unknowns + 1; ``vacancy_charge``: "neutral", "ionic" — the removed ion's electrons given back, every remaining
    ion keeps its nominal charge — or a number, the cell charge in e), then diluted-lattice Monte Carlo T(x).  J in meV, H = Σ_{i<j} S_i·J_ij·S_j, each bond once,
    |S| = S, J > 0 AF.  ``vacancy_engine(structure, configuration, preset, U, workdir) -> dict`` replaces GPAW
    (tests).

    In the neutral charge mode (the default) the vacancy's holes stay in the cell and the study is the one of
    :mod:`wannmag.workflows.vacancy` for the neutral cell: the SCFs of the hole ``vacancy_placements`` (default
    "near", "far"; also "near_far", and "none": no hole placed, a reference energy), then the D-optimal
    configurations of the lowest usable placement, each SCF one task of --workers / Dask, cached per configuration;
    the fit by bond class (V2-V2_bulk, next_to_vacancy, V2-V3, V3-V3; J2, J3 held at the mapping's unless
    ``vacancy_fit`` "J123"); the with-holes Monte Carlo series beside the dilution-only one.  ``vacancy_dft_settings``
    overrides :data:`~wannmag.workflows.vacancy.NEUTRAL_DFT` (smearing 0.1 eV, damped mixer, fixmagmom True,
    density_tol 1e-4, maxiter 200); there ``vacancy_engine`` is called as ``engine(structure, configuration, preset,
    U, workdir, smearing=, mixer=, maxiter=, density_tol=, fixmagmom=) -> DFTRecord dict`` and raises a
    WannmagError for an SCF that did not converge.  The neutral fit's options (:data:`~wannmag.workflows.vacancy.
    NEUTRAL_FIT`; changing one re-runs the fit and what follows it, never an SCF): ``vacancy_keep_moved`` uses
    converged configurations whose holes left the placed sites (spin signs kept) — *effective* couplings, said so in
    the fit's status and the report; ``vacancy_absorb_constant`` puts a class with the same Σ S_i S_j σ_i σ_j in
    every configuration used into E0 (its J not determined, named) instead of refusing; ``vacancy_min_dof`` residual
    degrees of freedom the fit needs after exclusions (default 1).

    ``relax`` (default: on for the accurate preset, off for fast and for energies read with ``from_dir``) adds the
    ``relax`` step first: ionic positions relaxed with GPAW DFT+U in ``relax_order`` (forces < ``relax_fmax`` eV/Å,
    at most ``relax_steps`` optimizer steps; :mod:`wannmag.workflows.relax`), and every later step, the DFT energies
    included, uses the relaxed structure; the report gives the M–X distances and M–X–M angles before and after."""
    if preset not in PRESET_SETTINGS:
        raise WorkflowError(f"unknown preset {preset!r} (fast, accurate)")
    if vacancies is not None:
        vacancies = [float(x) for x in np.atleast_1d(vacancies)]
        bad = [x for x in vacancies if not 0.0 < x < 1.0]
        if not vacancies or bad:
            raise WorkflowError(f"vacancy fractions must lie in (0, 1), got {vacancies}")
        if vacancy_fit not in ("J1", "J123"):
            raise WorkflowError(f"unknown vacancy fit {vacancy_fit!r} (J1, J123)")
        sc = np.atleast_1d(np.asarray(vacancy_supercell, int)).tolist()
        if len(sc) == 2:
            sc = sc + [1]
        if len(sc) != 3 or min(sc) < 1:
            raise WorkflowError(f"vacancy supercell must be 2 or 3 positive integers, got {vacancy_supercell}")
        settings = {**VACANCY_SETTINGS[preset], **(settings or {})}
    structure, wannier_dir = _resolve_inputs(structure, from_dir)
    if relax is None:
        relax = preset == "accurate" and from_dir is None
    if relax and from_dir is not None:
        raise WorkflowError(f"{from_dir}: --relax needs DFT of this package; energies read from a directory belong to "
                            "their own geometry (use --no-relax)")
    if relax and not (0.0 < float(relax_fmax) <= 1.0):
        raise WorkflowError(f"relax force tolerance must lie in (0, 1] eV/Å, got {relax_fmax}")
    params = {"structure": structure, "preset": preset, "U": float(U), "from_dir": None if from_dir is None else
              str(Path(from_dir).resolve()), "wannier_dir": wannier_dir, "dask": dask, "seed": seed, "workers": workers,
              **PRESET_SETTINGS[preset], **(settings or {})}
    if relax:
        params["relax"] = {"fmax": float(relax_fmax), "order": str(relax_order), "max_steps": int(relax_steps)}
    if vacancies is not None:
        _check_charge(structure, vacancy_charge)  # a bad --vacancy-charge fails now, not after the DFT steps
        params["vacancy"] = {"fractions": vacancies, "supercell": sc, "site": int(vacancy_site), "fit": vacancy_fit,
                             "n_configs": vacancy_configs, "charge": vacancy_charge}
        fit_opts = {"keep_moved": vacancy_keep_moved, "absorb_constant": vacancy_absorb_constant,
                    "min_dof": vacancy_min_dof}
        if _is_neutral(vacancy_charge):  # the placements, SCF settings and fit options of the neutral cell, checked now
            params["vacancy"]["neutral"] = {"placements": _check_placements(vacancy_placements),
                                            **_neutral_settings(vacancy_dft_settings)}
            params["vacancy"]["neutral_fit"] = _neutral_fit_options(fit_opts)
        elif vacancy_placements is not None or vacancy_dft_settings or fit_opts != _neutral_fit_options():
            raise WorkflowError(f"vacancy placements and the neutral cell's DFT settings and fit options apply to the "
                                f"neutral cell only, not to vacancy charge {vacancy_charge!r}")
        params["vacancy_engine"] = vacancy_engine
    # fingerprints of content, not of paths: the same structure under another name, a copied --from directory
    # or a moved run directory reuse every finished step (engine module docstring)
    base = {"structure": structure_fingerprint(structure)}
    from_key = None
    if from_dir is not None:
        from_key = files_fingerprint(_energy_inputs(Path(from_dir), CONFIGS), root=Path(from_dir))
    wannier_key = None if wannier_dir is None else files_fingerprint(_wannier_inputs(wannier_dir),
                                                                     root=Path(wannier_dir))
    steps = _core_steps(params, base, from_key, wannier_key, params["relax"] if relax else None)
    report_deps = ("structure", "mapping", "tb", "mft", "superexchange", "exchange_compare", "anisotropy", "model",
                   "lswt", "mc")
    if vacancies is not None:
        steps += _vacancy_steps(params, base, from_dir)
        report_deps += ("vacancy_dft", "vacancy_fit", "vacancy_mc")
    steps.append(Step("report", step_report, report_deps, params={}, description="report.md / report.html"))
    return Engine(out, steps, params=params, log=log)


def run_workflow(*args, **kw) -> dict:
    """Build and run the workflow; returns the results of every step."""
    return build_workflow(*args, **kw).run()
