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
from ..magnetism.montecarlo.tc import TcResult
from ..magnetism.routes import ExchangeRoutes
from ..magnetism.superexchange import SuperexchangeResult
from ..tightbinding import ZSAClassification, read_w90
from .dft import DFTRecord
from .relax import RelaxResult
from .wannier import WannierChannel

__all__ = ["StepResultError", "RelaxStep", "StructureStep", "DFTStep", "MappingStep", "WannierStep", "TBStep",
           "MFTStep", "SuperexchangeStep", "ExchangeCompareStep", "AnisotropyStep", "ModelStep", "LSWTStep", "MCStep",
           "ReportStep"]


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
