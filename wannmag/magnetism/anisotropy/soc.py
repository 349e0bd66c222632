"""Magnetocrystalline (spin–orbit) anisotropy energies from DFT: GPAW's non-self-consistent spin–orbit module and
users' VASP MAGMOM/SAXIS runs.

Directions
----------
A spin direction is (θ, φ) in degrees in the Cartesian frame of the calculation: θ from the z axis (the layer
normal for the wannmag prototypes and for any slab built with a1, a2 in the xy plane), φ from x towards y:
n = (sin θ cos φ, sin θ sin φ, cos θ).  All moments are collinear along ±n.

GPAW (force theorem)
--------------------
:func:`gpaw_mae` takes a converged *collinear* GPAW calculation (calculator or .gpw) and, for each direction,
diagonalises the Kohn–Sham Hamiltonian plus the PAW spin–orbit term with the spin quantisation axis along n
(``gpaw.spinorbit.soc_eigenstates(calc, theta=θ, phi=φ)``, angles in degrees, GPAW 26.7) and returns the sum of
occupied SOC eigenvalues ``BZWaveFunctions.calculate_band_energy()`` (eV).  By the magnetic force theorem the
differences of these band energies between directions are the magnetocrystalline anisotropy energy (MAE) at fixed
collinear density.  Requirements stated plainly: the unoccupied bands within a few eV of the gap enter the
second-order SOC energy, so the ground state must have *converged* empty bands (LCAO: always; plane waves:
``converge_bands`` / ``nbands`` of the DFT runner) and a k-mesh dense enough for energy differences of
≈ 0.1 meV.  A plane-wave run whose summary says only the occupied bands were converged gets a warning.

VASP
----
:func:`read_vasp_mae` reads, for each run (OUTCAR or vasprun.xml or a directory holding one), the total energy
(energy(sigma→0) from OUTCAR, e_0_energy of the last ionic step from vasprun.xml; eV) and the spin direction.
VASP writes moments in the frame of SAXIS = (s_x, s_y, s_z); with α = atan2(s_y, s_x), β = atan2(√(s_x² + s_y²),
s_z) the Cartesian moment is (VASP wiki, SAXIS)

    m_x = cos β cos α m'_x − sin α m'_y + sin β cos α m'_z
    m_y = cos β sin α m'_x + cos α m'_y + sin β sin α m'_z
    m_z = −sin β m'_x + cos β m'_z.

The direction is that of the run's total magnetisation (noncollinear OUTCAR "number of electron … magnetization
m_x m_y m_z", last occurrence) when it is larger than 0.1 μ_B, otherwise of the MAGMOM vector of the first
magnetic atom (INCAR next to the OUTCAR, or vasprun.xml parameters), both rotated by the formula above.  Runs
must be of the same cell and settings: the MAE is the difference of their total energies.

Output: :class:`MAEResult`, energies relative to the lowest direction in meV per cell and per magnetic ion; the
uniaxial fit E(θ) = E₀ + K₁ sin²θ + K₂ sin⁴θ (per ion; K₁ > 0 easy axis along z) when at least three θ values are
present.
"""

from __future__ import annotations

import json
import re
import warnings as _warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...errors import WannmagError

__all__ = ["SOCError", "MAEResult", "spin_direction", "direction_angles", "gpaw_mae", "read_vasp_mae",
           "read_vasp_run", "saxis_to_cartesian", "split_sia_exchange", "STANDARD_DIRECTIONS"]

#: z, x, y, −z and two tilted directions (θ, φ in degrees)
STANDARD_DIRECTIONS = [(0.0, 0.0), (90.0, 0.0), (90.0, 90.0), (180.0, 0.0), (45.0, 0.0), (135.0, 0.0)]


class SOCError(WannmagError):
    """Spin–orbit anisotropy input cannot be used (unreadable output, missing direction, too few runs, ...)."""


def spin_direction(theta: float, phi: float) -> np.ndarray:
    """Unit vector of (θ, φ) in degrees: (sin θ cos φ, sin θ sin φ, cos θ)."""
    t, p = np.radians(theta), np.radians(phi)
    return np.array([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)])


def direction_angles(n) -> tuple[float, float]:
    """(θ, φ) in degrees of the vector n (φ in [0, 360))."""
    n = np.asarray(n, float)
    r = np.linalg.norm(n)
    if r < 1e-12:
        raise SOCError("zero vector has no direction")
    n = n / r
    theta = float(np.degrees(np.arccos(np.clip(n[2], -1, 1))))
    phi = float(np.degrees(np.arctan2(n[1], n[0])) % 360.0) if np.hypot(n[0], n[1]) > 1e-9 else 0.0
    return theta, phi


@dataclass
class MAEResult:
    """Energies of one collinear state for several spin directions.

    ``theta``/``phi`` (degrees), ``energy`` (meV per cell, absolute as returned by the engine), ``n_magnetic``
    (magnetic ions per cell).  ``relative`` = E − min(E) in meV per magnetic ion.
    """

    theta: np.ndarray
    phi: np.ndarray
    energy: np.ndarray
    n_magnetic: int
    method: str
    sources: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    angle_tol: float = 1.0

    @property
    def relative(self) -> np.ndarray:
        return (self.energy - self.energy.min()) / self.n_magnetic

    def energy_of(self, theta: float, phi: float = 0.0, tol: float = 0.02) -> float:
        """Energy (meV per cell) of the stored direction (θ, φ) (directions compared as vectors)."""
        n = spin_direction(theta, phi)
        d = [np.linalg.norm(spin_direction(t, p) - n) for t, p in zip(self.theta, self.phi)]
        k = int(np.argmin(d))
        if d[k] > tol:
            raise SOCError(f"direction θ={theta:g}°, φ={phi:g}° was not computed")
        return float(self.energy[k])

    @property
    def easy(self) -> tuple[float, float]:
        k = int(np.argmin(self.energy))
        return float(self.theta[k]), float(self.phi[k])

    def mae(self) -> float:
        """E(in plane, mean over the stored in-plane directions) − E(out of plane), meV per magnetic ion
        (> 0: easy axis out of plane).  Directions within ``angle_tol`` degrees (default 1°; VASP directions come
        from the computed magnetisation and carry its noise) of θ = 90° or θ = 0°/180° count."""
        inp = [e for t, e in zip(self.theta, self.energy) if abs(t - 90.0) < self.angle_tol]
        out = [e for t, e in zip(self.theta, self.energy) if abs(t) < self.angle_tol or abs(t - 180.0) < self.angle_tol]
        if not inp or not out:
            raise SOCError("the MAE needs at least one in-plane (θ = 90°) and one out-of-plane (θ = 0° or 180°) run")
        return float((np.mean(inp) - np.mean(out)) / self.n_magnetic)

    def uniaxial_fit(self) -> dict:
        """Least-squares E(θ) = E₀ + K₁ sin²θ + K₂ sin⁴θ (meV per ion; φ ignored)."""
        s2 = np.sin(np.radians(self.theta)) ** 2
        if len(np.unique(np.round(s2, 8))) < 3:
            raise SOCError("the uniaxial fit needs at least three distinct sin²θ")
        X = np.stack([np.ones_like(s2), s2, s2 ** 2], axis=1)
        coef, res, *_ = np.linalg.lstsq(X, self.energy / self.n_magnetic, rcond=None)
        fit = X @ coef
        return {"K1_meV": float(coef[1]), "K2_meV": float(coef[2]),
                "rms_meV": float(np.sqrt(np.mean((fit - self.energy / self.n_magnetic) ** 2)))}

    def as_dict(self) -> dict:
        d = {"method": self.method, "n_magnetic": self.n_magnetic,
             "convention": "theta from z (layer normal), phi from x, degrees; energies meV; relative = "
                           "(E - E_min)/n_magnetic; MAE = E_in - E_out per ion (> 0: out-of-plane easy axis)",
             "directions": [{"theta": float(t), "phi": float(p), "E_meV_per_cell": float(e), "rel_meV_per_ion": float(r)}
                            for t, p, e, r in zip(self.theta, self.phi, self.energy, self.relative)],
             "sources": [str(s) for s in self.sources], "warnings": list(self.warnings)}
        try:
            d["MAE_meV_per_ion"] = self.mae()
        except SOCError:
            pass
        return d

    @classmethod
    def from_dict(cls, d: dict, angle_tol: float = 1.0) -> "MAEResult":
        """Inverse of :meth:`as_dict` (the MAE and the relative energies follow from the directions' energies;
        ``angle_tol`` is not stored: give the one the result was made with if it was not the default)."""
        dirs = d["directions"]
        return cls(theta=np.array([x["theta"] for x in dirs], float), phi=np.array([x["phi"] for x in dirs], float),
                   energy=np.array([x["E_meV_per_cell"] for x in dirs], float), n_magnetic=d["n_magnetic"],
                   method=d["method"], sources=list(d.get("sources", [])), warnings=list(d.get("warnings", [])),
                   angle_tol=angle_tol)

    def table(self) -> str:
        lines = [f"spin-orbit anisotropy ({self.method}), {self.n_magnetic} magnetic ions per cell",
                 "  θ (deg)  φ (deg)   E − E_min (meV/ion)"]
        for t, p, r in zip(self.theta, self.phi, self.relative):
            lines.append(f"  {t:7.1f}  {p:7.1f}   {r:12.5f}")
        try:
            lines.append(f"  MAE = E_in − E_out = {self.mae():+.5f} meV/ion "
                         f"({'out-of-plane' if self.mae() > 0 else 'in-plane'} easy axis)")
        except SOCError:
            pass
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------------------------
# GPAW
# --------------------------------------------------------------------------------------------------------------

def _gpaw_warnings(path: Path | None) -> list[str]:
    if path is None:
        return []
    summary = path.parent / "summary.json"
    if not summary.exists():
        return []
    try:
        params = json.loads(summary.read_text()).get("parameters", {})
    except (json.JSONDecodeError, OSError):
        return []
    if params.get("mode") == "pw" and not params.get("converge_bands"):
        return [f"{path}: plane-wave ground state with only the occupied bands converged (converge_bands not "
                "set): the force-theorem MAE depends on the empty bands and is not reliable"]
    return []


def gpaw_mae(calc, directions=None, n_magnetic: int | None = None, scale: float = 1.0,
             n2: int | None = None) -> MAEResult:
    """MAE of a converged collinear GPAW calculation (calculator, or path to a .gpw) by the force theorem
    (module docstring).  ``directions``: list of (θ, φ) in degrees (default :data:`STANDARD_DIRECTIONS`);
    ``n_magnetic``: magnetic ions per cell (default: atoms with |moment| > 0.5 μ_B); ``scale`` scales the SOC;
    ``n2``: number of bands per spin entering the SOC Hamiltonian (default: all; for a wannmag run directory whose
    summary says ``converge_bands = N`` the default is N — unconverged top bands are not eigenstates and break
    time reversal, E(n) ≠ E(−n), measured 0.09 meV/Cr for CrI3).  When a direction and its opposite are both
    computed and differ by more than 1 µeV per ion a warning is added."""
    try:  # local: optional heavy dependency (GPAW, extra "dft")
        from gpaw import GPAW
        from gpaw.spinorbit import soc_eigenstates
    except ImportError:  # pragma: no cover - GPAW is an optional dependency
        raise SOCError("GPAW is not installed (pip install wannmag[dft])") from None
    path = None
    if isinstance(calc, (str, Path)):
        path = Path(calc)
        if path.is_dir():
            cands = sorted(path.glob("*.gpw"))
            if not cands:
                raise SOCError(f"{path}: no .gpw file in this directory")
            path = cands[0]
        if not path.exists():
            raise SOCError(f"{path}: no such file")
        try:
            calc = GPAW(str(path), txt=None)
        except Exception as exc:  # noqa: BLE001 - GPAW read errors become one line
            raise SOCError(f"{path}: cannot read the GPAW file ({type(exc).__name__})") from None
    if calc.get_number_of_spins() != 2:
        raise SOCError(f"{path or 'calculator'}: not a spin-polarised collinear calculation")
    if n_magnetic is None:
        try:
            m = np.asarray(calc.get_magnetic_moments(), float)
            n_magnetic = int(np.sum(np.abs(m) > 0.5))
        except Exception:  # noqa: BLE001
            n_magnetic = 0
        if n_magnetic == 0:
            raise SOCError(f"{path or 'calculator'}: no atom with a moment > 0.5 μB; give n_magnetic")
    directions = list(directions) if directions is not None else list(STANDARD_DIRECTIONS)
    notes = _gpaw_warnings(path)
    if n2 is None and path is not None:
        n2 = _converged_bands(path)
    E = []
    for theta, phi in directions:
        with _warnings.catch_warnings():
            _warnings.simplefilter("ignore")
            bz = soc_eigenstates(calc, theta=float(theta), phi=float(phi), scale=scale, n2=n2)
        E.append(1000.0 * float(bz.calculate_band_energy()))
    res = MAEResult(theta=np.array([d[0] for d in directions], float), phi=np.array([d[1] for d in directions], float),
                    energy=np.array(E), n_magnetic=int(n_magnetic),
                    method="GPAW force theorem (soc_eigenstates" + (f", {n2} bands/spin)" if n2 else ")"),
                    sources=[str(path)] if path else [], warnings=notes)
    vec = [spin_direction(t, p) for t, p in directions]
    for a in range(len(vec)):
        for b in range(a + 1, len(vec)):
            if np.allclose(vec[a], -vec[b], atol=1e-9) and abs(E[a] - E[b]) / n_magnetic > 1e-3:
                res.warnings.append(f"time reversal violated: E(θ={directions[a][0]:g}, φ={directions[a][1]:g}) − "
                                    f"E(opposite) = {(E[a] - E[b]) / n_magnetic:+.4f} meV/ion (unconverged bands in "
                                    "the SOC window? set n2 to the converged bands)")
    return res


def _converged_bands(path: Path) -> int | None:
    summary = path.parent / "summary.json"
    if not summary.exists():
        return None
    try:
        cb = json.loads(summary.read_text()).get("parameters", {}).get("converge_bands")
    except (json.JSONDecodeError, OSError):
        return None
    return int(cb) if isinstance(cb, int) and not isinstance(cb, bool) else None


# --------------------------------------------------------------------------------------------------------------
# VASP
# --------------------------------------------------------------------------------------------------------------

def saxis_to_cartesian(m_axis, saxis=(0.0, 0.0, 1.0)) -> np.ndarray:
    """Moment given in the SAXIS frame → Cartesian (module docstring; VASP's convention)."""
    sx, sy, sz = (float(x) for x in saxis)
    if np.linalg.norm([sx, sy, sz]) < 1e-12:
        raise SOCError("SAXIS must be a non-zero vector")
    a = np.arctan2(sy, sx)
    b = np.arctan2(np.hypot(sx, sy), sz)
    mx, my, mz = (float(x) for x in m_axis)
    return np.array([np.cos(b) * np.cos(a) * mx - np.sin(a) * my + np.sin(b) * np.cos(a) * mz,
                     np.cos(b) * np.sin(a) * mx + np.cos(a) * my + np.sin(b) * np.sin(a) * mz,
                     -np.sin(b) * mx + np.cos(b) * mz])


_FLOAT = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[EeDd][-+]?\d+)?"


def _expand_magmom(text: str) -> list[float]:
    out = []
    for tok in text.split():
        if "*" in tok:
            n, v = tok.split("*", 1)
            out += [float(v)] * int(float(n))
        else:
            out.append(float(tok))
    return out


def _incar_tags(path: Path) -> dict:
    tags = {}
    for line in path.read_text(errors="replace").splitlines():
        line = re.split(r"[#!]", line, 1)[0]
        for part in line.split(";"):
            if "=" in part:
                k, v = part.split("=", 1)
                tags[k.strip().upper()] = v.strip()
    return tags


def _first_moment(magmom: list[float], noncollinear: bool) -> np.ndarray | None:
    if noncollinear:
        if len(magmom) % 3:
            return None
        vecs = np.array(magmom).reshape(-1, 3)
        big = [v for v in vecs if np.linalg.norm(v) > 0.5]
        return np.array(big[0]) if big else None
    big = [m for m in magmom if abs(m) > 0.5]
    return np.array([0.0, 0.0, big[0]]) if big else None


def _n_magnetic(magmom: list[float], noncollinear: bool) -> int:
    if noncollinear and len(magmom) % 3 == 0:
        return int(np.sum(np.linalg.norm(np.array(magmom).reshape(-1, 3), axis=1) > 0.5))
    return int(np.sum(np.abs(magmom) > 0.5))


def _read_outcar(path: Path) -> dict:
    text = path.read_text(errors="replace")
    energies = re.findall(r"energy\(sigma->0\)\s*=\s*(" + _FLOAT + ")", text)
    if not energies:
        energies = re.findall(r"free\s+energy\s+TOTEN\s*=\s*(" + _FLOAT + ")", text)
    if not energies:
        raise SOCError(f"{path}: no total energy (energy(sigma->0) or TOTEN) in this OUTCAR; did the run finish?")
    out = {"energy_eV": float(energies[-1])}
    m = re.findall(r"number of electron\s+" + _FLOAT + r"\s+magnetization\s+(" + _FLOAT + r")\s+(" + _FLOAT + r")\s+("
                   + _FLOAT + ")", text)
    if m:
        out["total_moment_axis"] = np.array([float(x) for x in m[-1]])
    s = re.findall(r"SAXIS\s*=\s*(" + _FLOAT + r")\s+(" + _FLOAT + r")\s+(" + _FLOAT + ")", text)
    if s:
        out["saxis"] = np.array([float(x) for x in s[-1]])
    nc = re.search(r"LNONCOLLINEAR\s*=\s*([TF])", text)
    so = re.search(r"LSORBIT\s*=\s*([TF])", text)
    out["noncollinear"] = bool((nc and nc.group(1) == "T") or (so and so.group(1) == "T"))
    incar = path.parent / "INCAR"
    if incar.exists():
        tags = _incar_tags(incar)
        if "SAXIS" in tags and "saxis" not in out:
            out["saxis"] = np.array([float(x) for x in tags["SAXIS"].split()[:3]])
        if "MAGMOM" in tags:
            out["magmom"] = _expand_magmom(tags["MAGMOM"])
        if tags.get("LSORBIT", "").upper().startswith((".T", "T")) or \
                tags.get("LNONCOLLINEAR", "").upper().startswith((".T", "T")):
            out["noncollinear"] = True
    return out


def _read_vasprun(path: Path) -> dict:
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise SOCError(f"{path}: not a complete vasprun.xml ({exc})") from None
    calcs = root.findall("calculation")
    energy = None
    for c in reversed(calcs):
        en = c.find("energy")
        if en is None:
            continue
        for name in ("e_0_energy", "e_wo_entrp", "e_fr_energy"):
            el = en.find(f"i[@name='{name}']")
            if el is not None and el.text and el.text.strip():
                energy = float(el.text)
                break
        if energy is not None:
            break
    if energy is None:
        raise SOCError(f"{path}: no energy of a finished ionic step in this vasprun.xml")
    out = {"energy_eV": energy}

    def find_v(name):
        for tag in ("incar", "parameters"):
            sec = root.find(tag)
            if sec is None:
                continue
            el = sec.find(f".//v[@name='{name}']")
            if el is not None and el.text:
                return el.text
            el = sec.find(f".//i[@name='{name}']")
            if el is not None and el.text:
                return el.text
        return None

    s = find_v("SAXIS")
    if s:
        out["saxis"] = np.array([float(x) for x in s.split()[:3]])
    mm = find_v("MAGMOM")
    if mm:
        out["magmom"] = _expand_magmom(mm)
    nc = (find_v("LNONCOLLINEAR") or "").strip().upper()
    so = (find_v("LSORBIT") or "").strip().upper()
    out["noncollinear"] = nc.startswith("T") or so.startswith("T")
    return out


def read_vasp_run(path) -> dict:
    """Energy (eV per cell), spin direction (θ, φ, Cartesian unit vector) and number of magnetic ions of one VASP
    run: an OUTCAR, a vasprun.xml, or a directory holding one (vasprun.xml preferred)."""
    p = Path(path)
    if p.is_dir():
        for name in ("vasprun.xml", "OUTCAR"):
            if (p / name).exists():
                p = p / name
                break
        else:
            raise SOCError(f"{path}: no vasprun.xml or OUTCAR in this directory")
    if not p.exists():
        raise SOCError(f"{p}: no such file")
    info = _read_vasprun(p) if p.suffix == ".xml" else _read_outcar(p)
    saxis = info.get("saxis", np.array([0.0, 0.0, 1.0]))
    noncol = info.get("noncollinear", False)
    m_axis = info.get("total_moment_axis")
    if m_axis is None or np.linalg.norm(m_axis) < 0.1:
        m_axis = _first_moment(info["magmom"], noncol) if "magmom" in info else None
    if m_axis is None:
        raise SOCError(f"{p}: cannot tell the spin direction (no total magnetisation and no MAGMOM; keep the INCAR "
                       "next to the OUTCAR)")
    n = saxis_to_cartesian(m_axis, saxis)
    n /= np.linalg.norm(n)
    theta, phi = direction_angles(n)
    n_mag = _n_magnetic(info["magmom"], noncol) if "magmom" in info else None
    return {"path": str(p), "energy_eV": info["energy_eV"], "direction": n, "theta": theta, "phi": phi,
            "saxis": saxis.tolist(), "n_magnetic": n_mag}


def read_vasp_mae(paths, n_magnetic: int | None = None) -> MAEResult:
    """MAE from a set of VASP runs of one collinear state with different spin directions (module docstring)."""
    runs = [read_vasp_run(p) for p in paths]
    if len(runs) < 2:
        raise SOCError("an anisotropy needs at least two VASP runs (two spin directions)")
    if n_magnetic is None:
        ns = {r["n_magnetic"] for r in runs if r["n_magnetic"]}
        if len(ns) != 1:
            raise SOCError("cannot tell the number of magnetic ions from MAGMOM; give n_magnetic")
        n_magnetic = ns.pop()
    return MAEResult(theta=np.array([r["theta"] for r in runs]), phi=np.array([r["phi"] for r in runs]),
                     energy=1000.0 * np.array([r["energy_eV"] for r in runs]), n_magnetic=int(n_magnetic),
                     method="VASP total energies (MAGMOM/SAXIS runs)", sources=[r["path"] for r in runs])


def split_sia_exchange(mae_fm: float, mae_neel: float, spin: float = 1.5) -> dict:
    """Separate single-ion from exchange anisotropy with two collinear states of a honeycomb layer.

    Inputs: the spin–orbit anisotropies ΔE = E_in − E_out (meV per magnetic ion) of the FM and of the Néel state,
    each with all moments rotated together (e.g. two :func:`gpaw_mae` runs).  In the classical model
    (internal convention) a collinear state σ_i n has per ion

        E(n) = S² n·A·n + ½ Σ_{j} σ_i σ_j S² n·J_ij·n,

    so with ΔE_SIA = S²(A_⊥ − A_zz) and the exchange part ΔE_X of the bonds whose σ_iσ_j flips between FM and
    Néel (first and third neighbours; for NN only ΔE_X = −(3/2) S² λ₁ with λ = J_zz − J_⊥):

        ΔE_FM = ΔE_SIA + ΔE_X,   ΔE_Néel = ΔE_SIA − ΔE_X   ⇒   ΔE_SIA = (ΔE_FM + ΔE_Néel)/2,
                                                              ΔE_X = (ΔE_FM − ΔE_Néel)/2.

    Approximations, stated: the 2NN exchange anisotropy (same sign in both states) is counted in ΔE_SIA; the two
    force-theorem runs are on different collinear densities (the model assumes the same tensors for both); the
    classical dipolar term is absent from DFT and must be added separately (:mod:`.dipolar`).
    Returns ΔE_SIA, ΔE_X (meV/ion), A_zz − A_⊥ (meV) and the NN-only λ₁ (meV) for spin ``spin``.
    """
    sia = 0.5 * (mae_fm + mae_neel)
    x = 0.5 * (mae_fm - mae_neel)
    return {"delta_SIA_meV": float(sia), "delta_exchange_meV": float(x),
            "A_zz_minus_A_perp_meV": float(-sia / spin ** 2), "lambda_nn_meV": float(-x / (1.5 * spin ** 2)),
            "method": "FM and Neel force-theorem MAE: SIA = (FM + Neel)/2, exchange (1NN+3NN) = (FM - Neel)/2"}
