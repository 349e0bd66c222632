"""A small engine for named, cached, resumable workflow steps.

Every step has a name, a function ``fn(ctx)`` and the names of the steps it depends on; the function returns a
JSON-able dict or a typed result (an object with ``as_dict``, e.g. :mod:`wannmag.workflows.results`), which the engine
stores as its ``as_dict`` and keeps for the later steps (:meth:`Context.typed`).
Its result is written atomically to ``<out>/steps/<name>.json`` together with a fingerprint of its parameters and of
its dependencies' results; a re-run skips every step whose stored fingerprint matches (so nothing finished is ever
recomputed, and a changed parameter recomputes exactly the steps downstream of it).  A failing step raises
:class:`StepError` naming the step; results of earlier steps stay on disk.  Steps may write further files (plots,
models) into ``ctx.step_dir(name)``; long steps checkpoint inside that directory themselves.

Fingerprints cover *content*, never where it lives: a step's parameters name a structure by
:func:`structure_fingerprint` (species, positions, cell, periodicity) and input files by :func:`files_fingerprint`
(their bytes), so the same structure given by another path, or a copied input directory, reuses every result.
Each stored result records the run directory it was written in (``_out``); loaded from a run directory that has
been moved, its paths inside the old directory are rewritten to the new one (:func:`_relocate`), so a moved run is
reused as it is.
"""

from __future__ import annotations

import hashlib
import json
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .._atomic import atomic_write_json, atomic_write_text, jsonable
from ..errors import WannmagError
from ..structures import find_magnetic_sites, read_structure

__all__ = ["Step", "StepError", "Context", "Engine", "structure_fingerprint", "files_fingerprint"]


class StepError(WannmagError):
    """A workflow step failed; earlier results are kept."""


@dataclass
class Step:
    name: str
    fn: Callable[["Context"], Any]  # returns a dict or a typed result with as_dict
    depends: tuple[str, ...] = ()
    params: dict = field(default_factory=dict)  # what the step's fingerprint covers besides its dependencies
    description: str = ""
    #: called with (ctx, result) after the step's result is known — computed now or read from an earlier run — for
    #: what later steps need besides the result (e.g. the relax step points ``ctx.params["structure"]`` at the
    #: relaxed file); it must not compute anything
    after: Callable[["Context", dict], None] | None = None


class Context:
    """What a step sees: the run directory, the workflow parameters and the results of earlier steps (``results``:
    the stored dicts; :meth:`typed`: the typed results), and the structure of ``params["structure"]`` resolved once
    (:attr:`sublattice`, :attr:`atoms`)."""

    def __init__(self, out: Path, params: dict, results: dict, log: Callable[[str], None]):
        self.out = out
        self.params = params
        self.results = results
        self.log = log
        self._resolved: tuple | None = None  # (structure path, MagneticSublattice)
        self._typed: dict[str, Any] = {}  # step name -> its typed result (computed in this run, or from_dict once)

    def typed(self, step: str, cls):
        """The result of ``step`` as a ``cls`` (a typed result class with ``from_dict``): the object the step
        returned in this run, else ``cls.from_dict`` of its stored dict, made once and kept."""
        obj = self._typed.get(step)
        if not isinstance(obj, cls):
            obj = cls.from_dict(self.results[step])
            self._typed[step] = obj
        return obj

    def keep(self, step: str, obj) -> None:
        """Remember ``obj`` as the typed result of ``step`` (the engine, after the step returned it); None forgets."""
        if obj is None:
            self._typed.pop(step, None)
        else:
            self._typed[step] = obj

    @property
    def sublattice(self):
        """The :class:`~wannmag.structures.MagneticSublattice` of ``params["structure"]``
        (:func:`~wannmag.structures.find_magnetic_sites` with its defaults), read and analysed once per path: the
        relax step's ``after`` hook points ``params["structure"]`` at the relaxed file, and the next use resolves
        that file.  Shared by every step: treat it as read-only (the structures functions copy what they change)."""
        path = self.params["structure"]
        if self._resolved is None or self._resolved[0] != path:
            self._resolved = (path, find_magnetic_sites(path))
        return self._resolved[1]

    @property
    def atoms(self):
        """The ``ase.Atoms`` of ``params["structure"]`` (the full structure of :attr:`sublattice`; read-only)."""
        return self.sublattice.atoms

    def step_dir(self, name: str) -> Path:
        d = self.out / name
        d.mkdir(parents=True, exist_ok=True)
        return d

    def __getitem__(self, step: str) -> dict:
        return self.results[step]


def structure_fingerprint(structure, decimals: int = 4) -> str:
    """Hash of a structure's content (a path, ``ase.Atoms`` or anything ``read_structure`` reads): chemical
    symbols in order, Cartesian positions (wrapped into the cell along periodic directions) and cell rounded to
    10^-``decimals`` Å (1e-4 Å: far below any physical difference, above the noise of text formats), periodicity.
    The file name, its folder and its format do not enter, so a copy of a CIF under another name is the same
    structure; moving one atom by 1e-3 Å is not.  (A coordinate that lies within ~1e-9 Å of a rounding boundary
    could in principle round differently in two text formats; that only costs a recomputation.)"""
    atoms = read_structure(structure)

    def rounded(a):
        return (np.round(np.asarray(a, float), decimals) + 0.0).tolist()  # + 0.0: no -0.0

    # positions wrapped into the cell along the periodic directions (an atom at fractional 1.0 is the one at 0.0)
    frac = atoms.cell.scaled_positions(atoms.positions) if atoms.cell.rank == 3 else None
    if frac is not None:
        for k, periodic in enumerate(atoms.pbc):
            if periodic:
                f = np.mod(frac[:, k], 1.0)
                f[f > 1.0 - 1e-8] = 0.0
                frac[:, k] = f
        positions = frac @ atoms.cell.array
    else:
        positions = atoms.positions
    blob = json.dumps({"symbols": atoms.get_chemical_symbols(), "positions": rounded(positions),
                       "cell": rounded(atoms.cell.array), "pbc": [bool(x) for x in atoms.pbc]}, sort_keys=True)
    return "structure:" + hashlib.sha256(blob.encode()).hexdigest()[:20]


def files_fingerprint(files, root=None) -> dict:
    """{name: sha256 of the bytes} of ``files`` (names relative to ``root`` if given): what a step read from an
    input directory, independent of where that directory is."""
    out = {}
    for f in sorted(Path(x) for x in files):
        h = hashlib.sha256()
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        name = str(f.relative_to(root)) if root is not None else f.name
        out[name] = h.hexdigest()[:20]
    return out


def _relocate(obj, old: str, new: str):
    """``obj`` with every string path inside the directory ``old`` rewritten to the same place under ``new``."""
    if isinstance(obj, dict):
        return {k: _relocate(v, old, new) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_relocate(v, old, new) for v in obj]
    if isinstance(obj, str) and (obj == old or obj.startswith(old + "/")):
        return new + obj[len(old):]
    return obj


def _fingerprint(step: Step, deps: dict[str, dict]) -> str:
    """Hash of the step's own parameters and its dependencies' fingerprints."""
    blob = json.dumps({"step": step.name, "params": jsonable(step.params),
                       "deps": {d: deps[d].get("_fingerprint") for d in step.depends}}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class Engine:
    """Runs steps in order, skipping those already done (see module docstring)."""

    def __init__(self, out, steps: list[Step], params: dict | None = None, log: Callable[[str], None] = print):
        self.out = Path(out)
        if self.out.exists() and not self.out.is_dir():
            raise WannmagError(f"{self.out}: exists and is not a directory; give a run directory for --out")
        self.steps = steps
        self.params = dict(params or {})
        self.log = log
        names = [s.name for s in steps]
        if len(set(names)) != len(names):
            raise WannmagError(f"duplicate step names in {names}")
        for s in steps:
            for d in s.depends:
                if d not in names[: names.index(s.name)]:
                    raise WannmagError(f"step {s.name} depends on {d}, which does not run before it")

    def result_path(self, name: str) -> Path:
        return self.out / "steps" / f"{name}.json"

    def load(self, name: str) -> dict | None:
        p = self.result_path(name)
        if not p.exists():
            return None
        try:
            res = json.loads(p.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None  # a damaged result is recomputed
        if not isinstance(res, dict):
            return None
        here = str(self.out.resolve())
        old = res.get("_out")
        if isinstance(old, str) and old != here:  # the run directory was moved or copied: follow it
            res = _relocate(res, old, here)
            res["_out"] = here
        return res

    def needed(self, until: str) -> set[str]:
        """``until`` and every step it depends on, directly or through other steps."""
        by_name = {s.name: s for s in self.steps}
        if until not in by_name:
            raise WannmagError(f"unknown step {until!r}; the steps are {', '.join(by_name)}")
        need, todo = set(), [until]
        while todo:
            n = todo.pop()
            if n not in need:
                need.add(n)
                todo.extend(by_name[n].depends)
        return need

    def run(self, until: str | None = None, force: tuple[str, ...] = ()) -> dict[str, dict]:
        """Run (or skip, when done) the steps in order; with ``until`` only that step and the steps it depends on
        (so ``until="mc"`` does not compute the Wannier functions); ``force`` recomputes the named steps and those
        after them."""
        self.out.mkdir(parents=True, exist_ok=True)
        results: dict[str, dict] = {}
        ctx = Context(self.out, self.params, results, self.log)
        need = None if until is None else self.needed(until)
        forcing = False
        for step in self.steps:
            forcing = forcing or step.name in force
            if need is not None and step.name not in need:
                continue
            fp = _fingerprint(step, results)
            old = self.load(step.name)
            if old is not None and old.get("_fingerprint") == fp and not forcing:
                self.log(f"[wannmag run] {step.name}: done earlier, skipped")
                results[step.name] = old
            else:
                self.log(f"[wannmag run] {step.name}: {step.description or 'running'}")
                t0 = time.perf_counter()
                try:
                    res = step.fn(ctx)
                except WannmagError as exc:
                    self._record_failure(step, exc)
                    raise StepError(f"step '{step.name}' failed: {exc}") from exc
                except Exception as exc:  # noqa: BLE001 - a bug in a step still must not lose earlier results
                    self._record_failure(step, exc)
                    raise StepError(f"step '{step.name}' failed with {type(exc).__name__}: {exc} "
                                    f"(details in {self.out / 'steps' / (step.name + '.error.txt')})") from exc
                typed = None
                if res is not None and not isinstance(res, dict) and hasattr(res, "as_dict"):
                    typed, res = res, res.as_dict()
                res = dict(jsonable(res or {}))
                res["_fingerprint"] = fp
                res["_seconds"] = round(time.perf_counter() - t0, 2)
                res["_out"] = str(self.out.resolve())
                atomic_write_json(self.result_path(step.name), res)
                err = self.out / "steps" / f"{step.name}.error.txt"
                if err.exists():
                    err.unlink()
                results[step.name] = res
                ctx.keep(step.name, typed)
                self.log(f"[wannmag run] {step.name}: finished in {res['_seconds']:.1f} s")
            if step.after is not None:
                step.after(ctx, results[step.name])
            if until is not None and step.name == until:
                break
        return results

    def _record_failure(self, step: Step, exc: BaseException) -> None:
        atomic_write_text(self.out / "steps" / f"{step.name}.error.txt",
                          "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))

    def status(self) -> list[dict[str, Any]]:
        rows = []
        for s in self.steps:
            r = self.load(s.name)
            rows.append({"step": s.name, "done": r is not None, "seconds": None if r is None else r.get("_seconds")})
        return rows
