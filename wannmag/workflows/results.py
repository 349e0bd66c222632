"""Typed results of the ``wannmag run`` steps that later steps read (:mod:`wannmag.workflows.run`).

A step returns one of these objects; the engine stores its :meth:`as_dict` in ``OUT/steps/<step>.json`` (the same
JSON as the step's former plain dict, key for key) and keeps the object for the later steps of the same run
(:meth:`wannmag.workflows.engine.Context.typed`); a step read from an earlier run is rebuilt once with
:meth:`from_dict`.  What a step produced in memory — the energy-mapping and Monte Carlo spin models, the Wannier
tight-binding model — is handed on as it is instead of being written and read back: each file is read at most
once per run, and only when its step was done by an earlier run.

Units as everywhere: energies eV (DFT, tight binding), exchange and anisotropy meV, temperatures K, lengths Å;
H = Σ_{i<j} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i, each bond once, |S| = S, J > 0 antiferromagnetic.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from ..errors import WannmagError
from ..magnetism import SpinModel
from ..magnetism.anisotropy.collinear import CollinearSOCFit
from ..magnetism.anisotropy.lswt import RPAResult
from ..magnetism.energy_mapping import ExchangeFit
from ..magnetism.montecarlo.holes import HoleSpec
from ..magnetism.montecarlo.tc import TcResult
from ..magnetism.routes import ExchangeRoutes
from ..magnetism.superexchange import SuperexchangeResult
from ..magnetism.vacancy import VacancyCell, VacancyFit
from ..magnetism.vacancy_holes import HoleDesign, HolePlacement, PlacementChoice, PlacementRun
from ..tightbinding import ZSAClassification, read_w90
from .dft import DFTRecord
from .relax import RelaxResult
from .wannier import WannierChannel

__all__ = ["StepResultError", "RelaxStep", "StructureStep", "DFTStep", "MappingStep", "WannierStep", "TBStep",
           "MFTStep", "SuperexchangeStep", "ExchangeCompareStep", "AnisotropyStep", "ModelStep", "LSWTStep", "MCStep",
           "ReportStep", "VacancyDFTStep", "VacancyFitStep", "DilutionSeries", "VacancyMCStep"]


class StepResultError(WannmagError):
    """A stored step result lacks what its typed form needs."""


def _need(d: dict, what: str, *keys):
    missing = [k for k in keys if k not in d]
    if missing:
        raise StepResultError(f"{what} step result without {', '.join(missing)}")


def _plain(d: dict) -> dict:
    """A stored step dict without the engine's own keys (_fingerprint, _seconds, _out)."""
    return {k: v for k, v in d.items() if not k.startswith("_")}


@dataclass
class RelaxStep:
    """The ``relax`` step: the :class:`~wannmag.workflows.relax.RelaxResult` (eV, eV/Å, Å, degrees) and the
    structure file it started from (later steps use ``result.relaxed_file``)."""

    result: RelaxResult
    unrelaxed_structure: str

    def as_dict(self) -> dict:
        return {**self.result.as_dict(), "unrelaxed_structure": self.unrelaxed_structure}

    @classmethod
    def from_dict(cls, d: dict) -> "RelaxStep":
        _need(d, "relax", "structure", "converged", "status", "fmax")
        return cls(result=RelaxResult.from_dict(_plain(d)), unrelaxed_structure=d.get("unrelaxed_structure"))


@dataclass
class StructureStep:
    """The ``structure`` step: formula, the structure report's table, shells, exchange paths and magnetic sites
    (:class:`~wannmag.structures.StructureReport` dicts; Å, degrees) and the lattice figure."""

    formula: str
    table: str
    shells: list
    paths: list
    magnetic_sites: list
    figure: str

    def as_dict(self) -> dict:
        return {"formula": self.formula, "table": self.table, "shells": self.shells, "paths": self.paths,
                "magnetic_sites": self.magnetic_sites, "figure": self.figure}

    @classmethod
    def from_dict(cls, d: dict) -> "StructureStep":
        _need(d, "structure", "formula", "table", "shells", "paths", "magnetic_sites", "figure")
        return cls(**{k: d[k] for k in ("formula", "table", "shells", "paths", "magnetic_sites", "figure")})


@dataclass
class DFTStep:
    """The ``dft`` step: one :class:`~wannmag.workflows.dft.DFTRecord` per configuration (eV), the engine ("gpaw"
    or "from-dir") and, for energies read from a directory, that directory."""

    records: list[DFTRecord]
    engine: str
    dir: str | None = None

    def record(self, config: str) -> DFTRecord | None:
        return next((r for r in self.records if r.config == config), None)

    def as_dict(self) -> dict:
        d = {"records": [r.as_dict() for r in self.records], "engine": self.engine}
        if self.dir is not None:
            d["dir"] = self.dir
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "DFTStep":
        _need(d, "dft", "records", "engine")
        return cls(records=[DFTRecord.from_dict(r) for r in d["records"]], engine=d["engine"], dir=d.get("dir"))


@dataclass
class MappingStep:
    """The ``mapping`` step: the energy-mapping :class:`~wannmag.magnetism.energy_mapping.ExchangeFit` (J in meV),
    its table, E − E_FM per configuration (meV per magnetic ion), the site moments (μ_B), the ground state and the
    isotropic spin model saved at ``model_path`` (:meth:`spin_model`)."""

    fit: ExchangeFit
    table: str
    energies_meV: dict
    site_moments: dict
    ground_state: str
    model_path: str
    model: SpinModel | None = field(default=None, repr=False)  # in memory; else read from model_path once

    @property
    def J_meV(self) -> list:
        return [float(x) for x in self.fit.J]

    def spin_model(self) -> SpinModel:
        """A copy of the mapping's spin model (the caller may change it): the step's own object, or the file read
        once."""
        if self.model is None:
            self.model = SpinModel.load(self.model_path)
        return copy.deepcopy(self.model)

    def as_dict(self) -> dict:
        return {**self.fit.as_dict(), "table": self.table, "E_minus_EFM_meV_per_ion": self.energies_meV,
                "site_moments": self.site_moments, "ground_state": self.ground_state, "model": self.model_path}

    @classmethod
    def from_dict(cls, d: dict) -> "MappingStep":
        _need(d, "mapping", "table", "E_minus_EFM_meV_per_ion", "site_moments", "ground_state", "model")
        return cls(fit=ExchangeFit.from_dict(d), table=d["table"], energies_meV=d["E_minus_EFM_meV_per_ion"],
                   site_moments=d["site_moments"], ground_state=d["ground_state"], model_path=d["model"])


@dataclass
class WannierStep:
    """The ``wannier`` step: the directory of the Wannier90 files, their source ("given" or "gpaw") and, when this
    run made them, one :class:`~wannmag.workflows.wannier.WannierChannel` per channel.  :meth:`collinear` is the
    spin-up/down tight-binding model of that directory, read once per run."""

    dir: str
    source: str
    channels: dict[str, WannierChannel] | None = None
    _collinear: Any = field(default=None, init=False, repr=False, compare=False)

    def collinear(self):
        """The :class:`~wannmag.tightbinding.CollinearTBModel` of :attr:`dir` (read once; shared: read-only)."""
        if self._collinear is None:
            self._collinear = read_w90(self.dir, kind="collinear")
        return self._collinear

    def as_dict(self) -> dict:
        d = {"dir": self.dir, "source": self.source}
        if self.channels is not None:
            d["channels"] = {k: v.as_dict() for k, v in self.channels.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "WannierStep":
        _need(d, "wannier", "dir", "source")
        ch = d.get("channels")
        return cls(dir=d["dir"], source=d["source"],
                   channels=None if ch is None else {k: WannierChannel.from_dict(v) for k, v in ch.items()})


@dataclass
class TBStep:
    """The ``tb`` step: the Zaanen–Sawatzky–Allen call (:class:`~wannmag.tightbinding.ZSAClassification`, eV), its
    text, the crystal-field levels of every metal (:meth:`CrystalFieldLevels.as_dict` dicts, eV) and the number of
    Wannier functions."""

    classification: ZSAClassification
    text: str
    crystal_field: list
    num_wann: int

    @property
    def regime(self) -> str:
        return self.classification.regime

    def as_dict(self) -> dict:
        cls = self.classification.as_dict()
        return {"classification": cls, "text": self.text, "regime": cls.get("regime"),
                "crystal_field": self.crystal_field, "num_wann": self.num_wann}

    @classmethod
    def from_dict(cls, d: dict) -> "TBStep":
        _need(d, "tb", "classification", "text", "crystal_field", "num_wann")
        return cls(classification=ZSAClassification.from_dict(d["classification"]), text=d["text"],
                   crystal_field=d["crystal_field"], num_wann=d["num_wann"])


@dataclass
class MFTStep:
    """The ``mft`` step (magnetic force theorem): the LKAG table, the shell summary of the force-theorem spin model
    (``J`` in meV per shell), the Fermi level (eV) and how it was found, and the model's file."""

    table: str
    shells: list
    efermi: float
    efermi_source: str
    model_path: str

    def as_dict(self) -> dict:
        return {"table": self.table, "shells": self.shells, "efermi": self.efermi, "efermi_source": self.efermi_source,
                "model": self.model_path}

    @classmethod
    def from_dict(cls, d: dict) -> "MFTStep":
        _need(d, "mft", "table", "shells", "efermi", "efermi_source", "model")
        return cls(table=d["table"], shells=d["shells"], efermi=d["efermi"], efermi_source=d["efermi_source"],
                   model_path=d["model"])


@dataclass
class SuperexchangeStep:
    """The ``superexchange`` step: the channel analysis of the 1NN bonds
    (:class:`~wannmag.magnetism.superexchange.SuperexchangeResult`; meV, J > 0 AF), its table, the shell's J1 (None
    where the t/Δ expansion is out of range: ``status`` says why, and ``terms_meV`` are then formal perturbative
    terms, stored as ``formal_terms_meV``, not ``channels_meV``), the model it used, the channel figure and every
    warning (the analysis's and those raised while it ran)."""

    result: SuperexchangeResult
    table: str
    J1_meV: float | None
    status: str
    terms_meV: dict | None
    model_source: str
    figure: str
    warnings: list = field(default_factory=list)

    def as_dict(self) -> dict:
        d = self.result.as_dict()
        d["warnings"] = list(self.warnings)
        d.update({"table": self.table, "J1_meV": self.J1_meV, "status": self.status,
                  "channels_meV" if self.J1_meV is not None else "formal_terms_meV": self.terms_meV,
                  "model_source": self.model_source, "figure": self.figure})
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "SuperexchangeStep":
        _need(d, "superexchange", "source", "shells", "bonds", "table", "J1_meV", "status", "model_source", "figure")
        terms = d["channels_meV"] if d["J1_meV"] is not None else d.get("formal_terms_meV")
        return cls(result=SuperexchangeResult.from_dict(_plain(d)), table=d["table"], J1_meV=d["J1_meV"],
                   status=d["status"], terms_meV=terms, model_source=d["model_source"], figure=d["figure"],
                   warnings=list(d.get("warnings", [])))


@dataclass
class ExchangeCompareStep:
    """The ``exchange_compare`` step: every exchange route of the run (:class:`~wannmag.magnetism.routes.
    ExchangeRoutes`, meV), its table and the file it was written to (``OUT/exchange_routes.json``)."""

    routes: ExchangeRoutes
    table: str
    file: str

    def as_dict(self) -> dict:
        return {**self.routes.as_dict(), "table": self.table, "file": self.file}

    @classmethod
    def from_dict(cls, d: dict) -> "ExchangeCompareStep":
        _need(d, "exchange_compare", "material", "routes", "table", "file")
        plain = {k: v for k, v in _plain(d).items() if k not in ("table", "file")}
        return cls(routes=ExchangeRoutes.from_dict(plain, where="exchange_compare step"), table=d["table"],
                   file=d["file"])


@dataclass
class AnisotropyStep:
    """The ``anisotropy`` step (ΔE = E_in − E_out in meV per ion, > 0: out of plane): the ground-state order, the
    anisotropy summary, the dipolar and spin–orbit ΔE, how the latter was made, and the collinear SOC fit — ``fit``
    (:class:`~wannmag.magnetism.anisotropy.collinear.CollinearSOCFit`) with ``soc_records`` and ``soc_fit_table``,
    or ``soc_fit_error`` saying why there is none.  ``soc_fit`` is the fit as stored; :attr:`fit` is None for a fit
    stored without its design (an anisotropy step of an earlier version: the model step fits it again)."""

    order: str
    summary: dict
    dipolar_meV: float
    soc_meV: float | None
    soc_method: str
    soc_records: dict | None = None
    soc_fit: dict | None = None
    soc_fit_table: str | None = None
    soc_fit_error: str | None = None
    fit: CollinearSOCFit | None = field(default=None, repr=False)

    def as_dict(self) -> dict:
        d = {"order": self.order, "summary": self.summary, "dipolar_meV": self.dipolar_meV, "soc_meV": self.soc_meV,
             "soc_method": self.soc_method}
        if self.soc_fit_error is not None:
            d.update({"soc_fit": None, "soc_fit_error": self.soc_fit_error})
        else:
            d.update({"soc_records": self.soc_records, "soc_fit": self.soc_fit, "soc_fit_table": self.soc_fit_table})
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "AnisotropyStep":
        _need(d, "anisotropy", "order", "summary", "dipolar_meV", "soc_meV", "soc_method")
        sf = d.get("soc_fit")
        fit = CollinearSOCFit.from_dict(sf) if isinstance(sf, dict) and "design" in sf else None
        return cls(order=d["order"], summary=d["summary"], dipolar_meV=d["dipolar_meV"], soc_meV=d["soc_meV"],
                   soc_method=d["soc_method"], soc_records=d.get("soc_records"), soc_fit=sf,
                   soc_fit_table=d.get("soc_fit_table"), soc_fit_error=d.get("soc_fit_error"), fit=fit)


@dataclass
class ModelStep:
    """The ``model`` step: the spin model of the Monte Carlo (energy-mapping J + anisotropy; meV) saved at
    ``model_path``, its total anisotropy ΔE (meV per ion), the isotropic J of its bonds and how it was built."""

    model_path: str
    anisotropy_meV_per_ion: float
    J_meV: list
    method: str
    model: SpinModel | None = field(default=None, repr=False)  # in memory; else read from model_path once

    def spin_model(self) -> SpinModel:
        """The Monte Carlo's spin model (the step's own object, or the file read once; shared: read-only)."""
        if self.model is None:
            self.model = SpinModel.load(self.model_path)
        return self.model

    def as_dict(self) -> dict:
        return {"model": self.model_path, "anisotropy_meV_per_ion": self.anisotropy_meV_per_ion, "J_meV": self.J_meV,
                "method": self.method}

    @classmethod
    def from_dict(cls, d: dict) -> "ModelStep":
        _need(d, "model", "model", "anisotropy_meV_per_ion", "J_meV", "method")
        return cls(model_path=d["model"], anisotropy_meV_per_ion=d["anisotropy_meV_per_ion"], J_meV=d["J_meV"],
                   method=d["method"])


@dataclass
class LSWTStep:
    """The ``lswt`` step: linear spin waves about the ground state ``order`` (spins along ``axis``): the magnon gap
    (meV), the RPA (Tyablikov) ordering temperature for classical and quantum spins (K;
    :class:`~wannmag.magnetism.anisotropy.lswt.RPAResult`) and the analytic estimates beside Monte Carlo
    (:func:`~wannmag.magnetism.tc_estimates.tc_estimates` dicts; None in a step stored before they were made).  Or
    ``skipped``: why no spin waves were computed (then nothing else)."""

    order: str | None = None
    axis: list | None = None
    gap_meV: float | None = None
    tc_rpa_K: float | None = None
    tc_rpa_quantum_K: float | None = None
    rpa: RPAResult | None = None
    estimates: dict | None = None
    skipped: str | None = None

    def as_dict(self) -> dict:
        if self.skipped is not None:
            return {"skipped": self.skipped}
        d = {"order": self.order, "axis": self.axis, "gap_meV": self.gap_meV, "tc_rpa_K": self.tc_rpa_K,
             "tc_rpa_quantum_K": self.tc_rpa_quantum_K, "rpa": self.rpa.as_dict()}
        if self.estimates is not None:
            d["estimates"] = self.estimates
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "LSWTStep":
        if "skipped" in d:
            return cls(skipped=d["skipped"])
        _need(d, "lswt", "order", "axis", "gap_meV", "tc_rpa_K", "tc_rpa_quantum_K", "rpa")
        return cls(order=d["order"], axis=d["axis"], gap_meV=d["gap_meV"], tc_rpa_K=d["tc_rpa_K"],
                   tc_rpa_quantum_K=d["tc_rpa_quantum_K"], rpa=RPAResult.from_dict(d["rpa"]),
                   estimates=d.get("estimates"))


@dataclass
class MCStep:
    """The ``mc`` step (K): the reported pass of the Tc search (``result``, a Monte Carlo
    :class:`~wannmag.magnetism.montecarlo.tc.TcResult`; Tc, its error, method, status, note and Binder cumulant
    are its own), the Mermin–Wagner flag and reason, the sizes, the temperature window of the reported pass, the
    first pass (``coarse``: its window, Tc, error, method), whether a second pass ran and why not, the algorithm and
    why, and the figure."""

    result: TcResult
    mermin_wagner: bool
    warning: str | None
    sizes: list
    t_window_K: list
    coarse: dict
    refined: bool
    refine_warning: str | None
    algorithm: str | None
    algorithm_reason: str | None
    figure: str

    @property
    def tc_K(self) -> float | None:
        return self.result.tc

    @property
    def tc_error_K(self) -> float | None:
        return self.result.tc_error

    @property
    def method(self) -> str:
        return self.result.method

    @property
    def status(self) -> str:
        return self.result.status

    @property
    def note(self) -> str:
        return self.result.note

    @property
    def binder(self) -> str:
        return self.result.binder

    def as_dict(self) -> dict:
        return {"tc_K": self.tc_K, "tc_error_K": self.tc_error_K, "method": self.method, "status": self.status,
                "note": self.note, "mermin_wagner": self.mermin_wagner, "warning": self.warning, "sizes": self.sizes,
                "t_window_K": self.t_window_K, "coarse": self.coarse, "refined": self.refined,
                "refine_warning": self.refine_warning, "result": self.result.as_dict(), "algorithm": self.algorithm,
                "algorithm_reason": self.algorithm_reason, "binder": self.binder, "figure": self.figure}

    @classmethod
    def from_dict(cls, d: dict) -> "MCStep":
        """Inverse of :meth:`as_dict`; a step stored before the algorithm, status and note were (no ``algorithm``,
        ``status``, ``note``, ``binder``) reads with None for the algorithm and the result's own defaults, and writes
        back the current layout."""
        _need(d, "mc", "result", "mermin_wagner", "sizes", "t_window_K", "coarse", "refined", "figure")
        return cls(result=TcResult.from_dict(d["result"]), mermin_wagner=bool(d["mermin_wagner"]),
                   warning=d.get("warning"), sizes=d["sizes"], t_window_K=d["t_window_K"], coarse=d["coarse"],
                   refined=d["refined"], refine_warning=d.get("refine_warning"), algorithm=d.get("algorithm"),
                   algorithm_reason=d.get("algorithm_reason"), figure=d["figure"])


@dataclass
class ReportStep:
    """The ``report`` step: the files it wrote (report.md and the self-contained report.html)."""

    report_md: str
    report_html: str

    def as_dict(self) -> dict:
        return {"report_md": self.report_md, "report_html": self.report_html}

    @classmethod
    def from_dict(cls, d: dict) -> "ReportStep":
        _need(d, "report", "report_md", "report_html")
        return cls(report_md=d["report_md"], report_html=d["report_html"])


# ------------------------------------------------------------------------------------------ the vacancy study
@dataclass
class VacancyDFTStep:
    """The ``vacancy_dft`` step of the vacancy study (:mod:`wannmag.workflows.vacancy`): the vacancy cell
    (:class:`~wannmag.magnetism.vacancy.VacancyCell`; rebuilt from a stored step without its bonds), the energy
    engine, the cell's extra charge (e) and one record per configuration SCF (dicts: name, pattern σ_i, energy eV per
    cell, moments μ_B, gaps eV, ...).  The neutral cell with its holes (``mode`` "holes") also has the SCF
    ``settings``, the hole placements asked for, holes per vacancy and their S, the start pattern (the perfect
    crystal's order, σ_i = ±1), one :class:`~wannmag.magnetism.vacancy_holes.PlacementRun` per placement, the
    :class:`~wannmag.magnetism.vacancy_holes.PlacementChoice`, the fitted
    :class:`~wannmag.magnetism.vacancy_holes.HolePlacement`, the
    :class:`~wannmag.magnetism.vacancy_holes.HoleDesign` of its fit configurations, the SCF directory and the
    warnings of an active fixed-moment constraint; the equal-spin cell (ionic or given charge) has none of these."""

    cell: VacancyCell
    engine: str
    charge: float
    records: list
    mode: str | None = None
    settings: dict | None = None
    placement_names: list | None = None
    holes_per_vacancy: int | None = None
    spin_hole: float | None = None
    start_pattern: list | None = None
    placements: list[PlacementRun] | None = None
    choice: PlacementChoice | None = None
    placement: HolePlacement | None = None
    design: HoleDesign | None = None
    workdir: str | None = None
    constraint_warnings: list | None = None

    def as_dict(self) -> dict:
        d = {"cell": self.cell.as_dict(), "engine": self.engine, "charge": self.charge}
        if self.mode is None:
            d["records"] = self.records
            return d
        d.update({"mode": self.mode, "settings": self.settings, "placement_names": self.placement_names,
                  "holes_per_vacancy": self.holes_per_vacancy, "spin_hole": self.spin_hole,
                  "start_pattern": self.start_pattern, "placements": [r.as_dict() for r in self.placements],
                  "choice": self.choice.as_dict(), "placement": self.placement.as_dict(),
                  "design": self.design.as_dict(), "workdir": self.workdir, "records": self.records,
                  "constraint_warnings": self.constraint_warnings})
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "VacancyDFTStep":
        _need(d, "vacancy_dft", "cell", "engine", "charge", "records")
        kw = {}
        if d.get("mode") is not None:
            _need(d, "vacancy_dft (neutral cell)", "settings", "placement_names", "holes_per_vacancy", "spin_hole",
                  "start_pattern", "placements", "choice", "placement", "design", "workdir", "constraint_warnings")
            kw = dict(mode=d["mode"], settings=d["settings"], placement_names=d["placement_names"],
                      holes_per_vacancy=d["holes_per_vacancy"], spin_hole=d["spin_hole"],
                      start_pattern=d["start_pattern"], placements=[PlacementRun.from_dict(r) for r in d["placements"]],
                      choice=PlacementChoice.from_dict(d["choice"]), placement=HolePlacement.from_dict(d["placement"]),
                      design=HoleDesign.from_dict(d["design"]), workdir=d["workdir"],
                      constraint_warnings=d["constraint_warnings"])
        return cls(cell=VacancyCell.from_dict(d["cell"]), engine=d["engine"], charge=d["charge"], records=d["records"],
                   **kw)


#: keys of a neutral-cell (holes) ``vacancy_fit`` written since its fit options exist; a fit stored before them
#: lacks them (None here, and left out of :meth:`VacancyFitStep.as_dict` again)
_LATER_HOLE_KEYS = ("absorbed", "status", "kind", "effective", "moved", "options", "beyond_heisenberg_meV")


@dataclass
class VacancyFitStep:
    """The ``vacancy_fit`` step of the vacancy study (J in meV, H = Σ_{i<j} S_i·J_ij·S_j, each bond once, |S_i| =
    S_i, J > 0 AF; E_0 in eV per cell; residuals in meV per cell): ``J_meV`` by bond class, the classes held fixed
    (``fixed_meV``), E_0, the residuals, rank, condition number, standard errors, the configurations, the perfect
    crystal's J1–J3 (mapping step), the fit's table and the vacancy cell
    (:class:`~wannmag.magnetism.vacancy.VacancyCell`; rebuilt from a stored step without its bonds).

    Equal-spin cell (``mode`` None; ionic or given charge): the :class:`~wannmag.magnetism.vacancy.VacancyFit` of
    J1_bulk, J1_vac, J2, J3 (:attr:`fit`; ``configurations`` are the names used, ``n_unknowns`` its unknowns).
    Neutral cell with its holes (``mode`` "holes"): the fit by hole class of
    :func:`~wannmag.magnetism.vacancy_holes.fit_cell` with ``J_meV`` the classes a diluted lattice needs (fitted,
    held at the perfect crystal's or ``assumed_meV``; None: absorbed into E_0), ``J_fitted_meV`` the fitted ones,
    the fitted :class:`~wannmag.magnetism.vacancy_holes.HolePlacement`, S per site (``spins``), bonds per class,
    the Monte Carlo hole placement, every configuration record annotated (used / excluded and why, residual),
    the excluded ones, the rms residual, the residual degrees of freedom, warnings and notes, and — in a fit stored
    since the fit options exist — the absorbed classes, status, kind (fixed-hole or effective), the configurations
    whose holes moved, the options and the beyond-Heisenberg energies of the excluded converged configurations
    (meV per cell)."""

    convention: str
    J_meV: dict
    fixed_meV: dict
    E0_eV_per_cell: float
    residuals_meV_per_cell: list
    rank: int
    condition_number: float
    stderr_meV: dict | None
    configurations: list
    perfect_J_meV: list
    table: str
    cell: VacancyCell
    n_unknowns: int | None = None
    mode: str | None = None
    placement: HolePlacement | None = None
    spins: list | None = None
    J_fitted_meV: dict | None = None
    assumed_meV: dict | None = None
    bonds_per_class: dict | None = None
    mc_placement: str | None = None
    excluded: list | None = None
    residual_rms_meV: float | None = None
    dof: int | None = None
    warnings: list | None = None
    notes: list | None = None
    absorbed: list | None = None
    status: str | None = None
    kind: str | None = None
    effective: bool | None = None
    moved: list | None = None
    options: dict | None = None
    beyond_heisenberg_meV: dict | None = None

    @classmethod
    def equal_spin(cls, fit: VacancyFit, perfect_J_meV: list, table: str, cell: VacancyCell) -> "VacancyFitStep":
        """The step result of the equal-spin cell's :class:`~wannmag.magnetism.vacancy.VacancyFit`."""
        return cls(convention=fit.as_dict()["convention"], J_meV=fit.J, fixed_meV=fit.fixed, E0_eV_per_cell=fit.E0_eV,
                   residuals_meV_per_cell=fit.residuals_meV, rank=fit.rank, condition_number=fit.condition_number,
                   stderr_meV=fit.stderr, configurations=fit.configurations, perfect_J_meV=perfect_J_meV, table=table,
                   cell=cell, n_unknowns=fit.n_unknowns)

    @property
    def fit(self) -> VacancyFit | None:
        """The equal-spin cell's :class:`~wannmag.magnetism.vacancy.VacancyFit` (None for the neutral cell)."""
        if self.mode is not None:
            return None
        return VacancyFit(J=self.J_meV, fixed=self.fixed_meV, E0_eV=self.E0_eV_per_cell,
                          residuals_meV=self.residuals_meV_per_cell, rank=self.rank, n_unknowns=self.n_unknowns,
                          condition_number=self.condition_number, stderr=self.stderr_meV,
                          configurations=self.configurations)

    def source(self, c: str) -> str:
        """Where the J of class ``c`` of the neutral cell's fit comes from (the source column of its tables):
        absorbed into E0, fitted (effective when configurations whose holes moved were used), held at the perfect
        crystal's, or assumed equal to the perfect crystal's J1 (a class the cell has no bond of)."""
        if c in (self.absorbed or []):
            return "absorbed into E0"
        if c in self.J_fitted_meV:
            return "fitted (effective)" if self.effective else "fitted"
        if c in self.fixed_meV:
            return "perfect crystal (held)"
        return "assumed = perfect J1"

    def as_dict(self) -> dict:
        if self.mode is None:
            return {"convention": self.convention, "J_meV": self.J_meV, "fixed_meV": self.fixed_meV,
                    "E0_eV_per_cell": self.E0_eV_per_cell, "residuals_meV_per_cell": self.residuals_meV_per_cell,
                    "rank": self.rank, "n_unknowns": self.n_unknowns, "condition_number": self.condition_number,
                    "stderr_meV": self.stderr_meV, "configurations": self.configurations,
                    "perfect_J_meV": self.perfect_J_meV, "table": self.table, "cell": self.cell.as_dict()}
        d = {"convention": self.convention, "placement": self.placement.as_dict(), "J_meV": self.J_meV,
             "fixed_meV": self.fixed_meV, "E0_eV_per_cell": self.E0_eV_per_cell,
             "residuals_meV_per_cell": self.residuals_meV_per_cell, "rank": self.rank,
             "condition_number": self.condition_number, "stderr_meV": self.stderr_meV,
             "configurations": self.configurations, "spins": self.spins}
        if self.absorbed is not None:
            d["absorbed"] = self.absorbed
        d.update({"J_fitted_meV": self.J_fitted_meV, "assumed_meV": self.assumed_meV,
                  "bonds_per_class": self.bonds_per_class, "perfect_J_meV": self.perfect_J_meV,
                  "mc_placement": self.mc_placement, "excluded": self.excluded,
                  "residual_rms_meV": self.residual_rms_meV, "dof": self.dof, "warnings": self.warnings,
                  "notes": self.notes, "cell": self.cell.as_dict(), "mode": self.mode})
        d.update({k: getattr(self, k) for k in _LATER_HOLE_KEYS[1:] if getattr(self, k) is not None})
        d["table"] = self.table
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "VacancyFitStep":
        _need(d, "vacancy_fit", "convention", "J_meV", "fixed_meV", "E0_eV_per_cell", "residuals_meV_per_cell", "rank",
              "condition_number", "stderr_meV", "configurations", "perfect_J_meV", "table", "cell")
        kw = {k: d[k] for k in ("convention", "J_meV", "fixed_meV", "E0_eV_per_cell", "residuals_meV_per_cell", "rank",
                                "condition_number", "stderr_meV", "configurations", "perfect_J_meV", "table")}
        kw["cell"] = VacancyCell.from_dict(d["cell"])
        if d.get("mode") is None:
            _need(d, "vacancy_fit (equal-spin cell)", "n_unknowns")
            return cls(**kw, n_unknowns=d["n_unknowns"])
        holes = ("spins", "J_fitted_meV", "assumed_meV", "bonds_per_class", "mc_placement", "excluded",
                 "residual_rms_meV", "dof", "warnings", "notes")
        _need(d, "vacancy_fit (neutral cell)", "placement", *holes)
        return cls(**kw, mode=d["mode"], placement=HolePlacement.from_dict(d["placement"]),
                   **{k: d[k] for k in holes}, **{k: d.get(k) for k in _LATER_HOLE_KEYS})


#: keys of one T(x) series of the vacancy study (:func:`wannmag.workflows.vacancy.diluted_study`), in stored order;
#: each may be missing from a series stored by an earlier version (None here, and left out of the dict again)
_SERIES_KEYS = ("statuses", "notes", "estimators", "binder", "chi_max_K", "t_windows_K", "coarse", "warnings",
                "mermin_wagner", "realisations")


@dataclass
class DilutionSeries:
    """One T(x) series of the vacancy study's Monte Carlo (temperatures K, one entry per vacancy fraction x):
    ``tn_K`` (None: no Binder crossing bracketed), its error, the method of every number, and — as stored since
    they exist — statuses, notes, estimators, the Binder cumulants, the labelled χ maxima of the largest lattice
    (dicts T, error, lattice, estimator, text, or None), the temperature windows of the reported passes, the first
    pass (``coarse``), the series' own warnings (the with-holes series; those of the dilution-only series are the
    step's), the Mermin–Wagner flag and the disorder realisations.  The series with the holes of the vacancies also
    has its :class:`~wannmag.magnetism.montecarlo.holes.HoleSpec` (meV, J > 0 AF) and the hole counts per x."""

    tn_K: list
    tn_error_K: list
    methods: list
    statuses: list | None = None
    notes: list | None = None
    estimators: list | None = None
    binder: list | None = None
    chi_max_K: list | None = None
    t_windows_K: list | None = None
    coarse: dict | None = None
    warnings: list | None = None
    mermin_wagner: bool | None = None
    realisations: Any = None
    hole_spec: HoleSpec | None = None
    hole_counts: list | None = None

    def as_dict(self) -> dict:
        d = {"tn_K": self.tn_K, "tn_error_K": self.tn_error_K, "methods": self.methods}
        d.update({k: getattr(self, k) for k in _SERIES_KEYS if getattr(self, k) is not None})
        if self.hole_spec is not None:
            d["hole_spec"] = self.hole_spec.as_dict()
        if self.hole_counts is not None:
            d["hole_counts"] = self.hole_counts
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "DilutionSeries":
        _need(d, "vacancy_mc series", "tn_K", "tn_error_K", "methods")
        hs = d.get("hole_spec")
        return cls(tn_K=d["tn_K"], tn_error_K=d["tn_error_K"], methods=d["methods"],
                   **{k: d.get(k) for k in _SERIES_KEYS}, hole_spec=None if hs is None else HoleSpec.from_dict(hs),
                   hole_counts=d.get("hole_counts"))


@dataclass
class VacancyMCStep:
    """The ``vacancy_mc`` step of the vacancy study (:func:`wannmag.workflows.vacancy.diluted_study` without its raw
    ``dilution`` results; temperatures K, exchange meV, H = Σ_{i<j} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i, each bond once,
    |S| = S, J > 0 AF): the vacancy fractions (x = 0 first), the dilution-only series (:attr:`series`, stored flat
    at the top level), the lattice sizes, the temperature window of the first pass, whether a second pass ran, the
    J1 next to a vacancy (None: dilution alone), the perfect lattice's Tc and error from the mc step (None: no mc
    step), every warning, the vacancy fit's J (``fit``: J_meV, fixed_meV, rank), the algorithm and — with holes —
    why, the notes about the holes, the series with the holes of the vacancies (:attr:`with_holes`), the study's
    JSON file and the T(x) figure.

    A key missing from a step stored by an earlier version (or a hand-made one) reads as None and is left out of
    :meth:`as_dict` again; ``J1_vac_meV`` and ``perfect_mc_K``, None by meaning, are always written."""

    fractions: list
    series: DilutionSeries
    sizes: list
    figure: str
    convention: str | None = None
    t_window_K: list | None = None
    refined: bool | None = None
    J1_vac_meV: float | None = None
    perfect_mc_K: list | None = None
    warnings: list | None = None
    fit: dict | None = None
    algorithm: str | None = None
    algorithm_reason: str | None = None
    hole_notes: list | None = None
    with_holes: DilutionSeries | None = None
    json: str | None = None

    def as_dict(self) -> dict:
        d = {} if self.convention is None else {"convention": self.convention}
        d["fractions"] = self.fractions
        d.update(self.series.as_dict())
        d["sizes"] = self.sizes
        d.update({k: getattr(self, k) for k in ("t_window_K", "refined") if getattr(self, k) is not None})
        d.update({"J1_vac_meV": self.J1_vac_meV, "perfect_mc_K": self.perfect_mc_K})
        d.update({k: getattr(self, k) for k in ("warnings", "fit", "algorithm") if getattr(self, k) is not None})
        if self.with_holes is not None:  # the step writes both with the holes' series (the reason may be None)
            d.update({"algorithm_reason": self.algorithm_reason, "hole_notes": self.hole_notes})
        elif self.hole_notes:
            d["hole_notes"] = self.hole_notes
        if self.with_holes is not None:
            d["with_holes"] = self.with_holes.as_dict()
        if self.json is not None:
            d["json"] = self.json
        d["figure"] = self.figure
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "VacancyMCStep":
        """Inverse of :meth:`as_dict`; also the study of :func:`~wannmag.workflows.vacancy.diluted_study` itself
        (its raw ``dilution`` results, top level and with holes, are not kept)."""
        _need(d, "vacancy_mc", "fractions", "tn_K", "tn_error_K", "methods", "realisations", "sizes", "figure")
        wh = d.get("with_holes")
        return cls(fractions=d["fractions"], series=DilutionSeries.from_dict({k: v for k, v in d.items()
                                                                              if k != "warnings"}),
                   sizes=d["sizes"], figure=d["figure"],
                   **{k: d.get(k) for k in ("convention", "t_window_K", "refined", "J1_vac_meV", "perfect_mc_K",
                                            "warnings", "fit", "algorithm", "algorithm_reason", "hole_notes", "json")},
                   with_holes=None if wh is None else DilutionSeries.from_dict(wh))
