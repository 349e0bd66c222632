"""Fuzzed bad input for every sub-command that reads a file (issue 16, item 8): the generator of the cases and the
runner that classifies how ``wannmag.cli.main`` handles each of them.

Cases (seeded, deterministic): truncated, bit-flipped, line-deleted, line-duplicated and value-replaced (nan, inf,
-1, 0, 1e308, huge integers, words, ...) versions of the shipped inputs — Wannier90 files of data/dft/CrI3 and
data/dft/VPS3 (``_hr.dat``, ``.win``, ``_centres.xyz``), the structure files of data/structures (CIF, and POSCAR /
extxyz written by ASE), the energies JSON of data/dft (and the documented format), the spin models of data/mc and
data/runs, TB2J's exchange.out, Monte Carlo checkpoints — plus non-regular files (FIFO, directory, device), files that
name code (monty ``@module``), out-of-range command-line values and unusable output paths.  Every sub-command also
runs once on its unmodified input (the "baseline" cases): a baseline that does not succeed means the fuzz settings
no longer exercise the command, and counts as a failure.

Runner: the parent imports wannmag and the heavy libraries once, then forks one child per case (two at a time);
the child calls ``wannmag.cli.main(argv)`` with stdout/stderr in files, in its own process group, under memory,
file-size and core-dump limits, with GPAW imports blocked (no DFT may start: importing ``gpaw`` marks the case as
a failure).  A child still running after the timeout is killed (a hang).  Classes:

* ``ok``: exit 0 and no NaN/inf token in stdout or in the files the command wrote;
* ``clean-error``: exit 2 and stderr is exactly one line ``wannmag: error: ...`` (or argparse's usage lines plus
  one ``wannmag ...: error: ...`` line);
* failures: ``accepted-bad-input`` (exit 0 on an input that is nonsense by construction, e.g. ``--U nan`` or a
  spin model with a NaN exchange constant), ``traceback``, ``internal-error`` (main's one line for an unexpected
  exception: still a bug),
  ``out-of-memory``, ``hang``, ``signal-<NAME>`` (e.g. a segfault), ``nan-output`` (exit 0 with NaN/inf),
  ``stderr-not-one-line`` (exit 2 with more than the error line, e.g. warnings or progress bars before it),
  ``exit-<N>`` (any other exit status), ``launched-dft``, ``baseline-failed``.

Standalone: ``python tests/test_fuzz.py --summary`` prints a table per sub-command and every failure
(class, sub-command, trigger, first line of stderr).
"""

from __future__ import annotations

import contextlib
import copy
import gzip
import importlib
import importlib.abc
import io
import json
import math
import os
import random
import re
import shutil
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data"
SEED = 16
TIMEOUT = 20.0  # s per case
WORKERS = 2
MEMORY_LIMIT = 2 << 30  # bytes of address space a case may add to the parent's
FILE_LIMIT = 256 << 20  # largest file a case may write

OK, CLEAN = "ok", "clean-error"
PASSING = (OK, CLEAN)

# values that replace a number (or a JSON value) in a file
BAD_NUMBERS = ["nan", "NaN", "inf", "-inf", "-1", "0", "1e308", "-1e308", "1e-300", "99999999999999999999999",
               "abc", "1.5.3", "", "0x1F", "1e400"]
BAD_JSON_VALUES = [None, True, "two", "", [1, 2], [], {}, [[1]], -1, 0, 2.5, 1e308, -1e308, 10 ** 30,
                   float("nan"), float("inf"), float("-inf"), "nan", [None, 1, 2]]


@dataclass
class Case:
    """One run of ``wannmag`` on a broken input: ``argv`` is relative to the case directory's ``out`` folder."""

    cid: int
    command: str  # "structure", "exchange mft", ...
    trigger: str  # what is broken, e.g. "CrI3_up_hr.dat: line 40 col 6 -> nan"
    argv: list[str]
    directory: str = ""
    baseline: bool = False
    setup_error: str = ""  # the inputs of this case could not be made (counts as a failure, nothing is run)
    must_fail: bool = False  # the input is unusable by construction: exit 0 is a failure ("accepted-bad-input")

    @property
    def cwd(self) -> Path:
        return Path(self.directory) / "out"


@dataclass
class Outcome:
    case: Case
    cls: str
    detail: str = ""
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return self.cls not in PASSING


# ------------------------------------------------------------------------------------------------- text mutations
_NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?(?![\w.])")


def truncate(text: str, rng: random.Random) -> tuple[str, str]:
    cut = rng.randrange(0, max(1, len(text)))
    return text[:cut], f"truncated at byte {cut} of {len(text)}"


def bitflip(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    b = bytearray(data)
    flips = []
    for _ in range(rng.choice([1, 1, 2, 3, 8])):
        k = rng.randrange(len(b))
        bit = rng.randrange(8)
        b[k] ^= 1 << bit
        flips.append(k)
    return bytes(b), f"bit flip(s) at byte {', '.join(map(str, flips[:3]))}"


def delete_lines(text: str, rng: random.Random, lines: range | None = None) -> tuple[str, str]:
    rows = text.splitlines(keepends=True)
    lines = lines or range(len(rows))
    k = rng.choice(lines)
    n = rng.choice([1, 1, 1, 2, 5])
    del rows[k:k + n]
    return "".join(rows), f"line(s) {k + 1}-{k + n} deleted"


def duplicate_line(text: str, rng: random.Random, lines: range | None = None) -> tuple[str, str]:
    rows = text.splitlines(keepends=True)
    lines = lines or range(len(rows))
    k = rng.choice(lines)
    rows.insert(k, rows[k])
    return "".join(rows), f"line {k + 1} duplicated"


def replace_number(text: str, rng: random.Random, value: str | None = None, lines: range | None = None,
                   column: int | None = None) -> tuple[str, str]:
    """Replace one number (on a random line of ``lines``, optionally the ``column``-th number there) by ``value``."""
    rows = text.splitlines(keepends=True)
    lines = [k for k in (lines or range(len(rows))) if k < len(rows) and _NUMBER.search(rows[k])]
    if not lines:
        return text, "no number to replace"
    k = rng.choice(lines)
    matches = list(_NUMBER.finditer(rows[k]))
    m = matches[column] if column is not None and column < len(matches) else rng.choice(matches)
    value = rng.choice(BAD_NUMBERS) if value is None else value
    rows[k] = rows[k][:m.start()] + value + rows[k][m.end():]
    return "".join(rows), f"line {k + 1}: {m.group()} -> {value!r}"


def replace_pattern(text: str, pattern: str, value: str) -> tuple[str, str]:
    """Replace the first match of the regex ``pattern`` (its group 1 if any) by ``value``."""
    m = re.search(pattern, text, flags=re.M | re.I)
    if not m:
        return text, f"{pattern!r} not found"
    a, b = (m.start(1), m.end(1)) if m.groups() else (m.start(), m.end())
    return text[:a] + value + text[b:], f"{m.group(1) if m.groups() else m.group()!r} -> {value!r}"


def random_text_mutation(text: str, rng: random.Random, lines: range | None = None) -> tuple[str | bytes, str]:
    op = rng.choice(["truncate", "bitflip", "delete", "duplicate", "number", "number", "number"])
    if op == "truncate":
        return truncate(text, rng)
    if op == "bitflip":
        return bitflip(text.encode(), rng)
    if op == "delete":
        return delete_lines(text, rng, lines)
    if op == "duplicate":
        return duplicate_line(text, rng, lines)
    return replace_number(text, rng, lines=lines)


# ------------------------------------------------------------------------------------------------- JSON mutations
def _paths(obj, prefix=()):
    yield prefix, obj
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


def _set(obj, path, value):
    for k in path[:-1]:
        obj = obj[k]
    obj[path[-1]] = value


def _fmt_path(path) -> str:
    return "/".join(str(p) for p in path) or "<root>"


def mutate_json(data, rng: random.Random, keys: list[tuple] | None = None) -> tuple[object, str]:
    """A structurally broken copy of ``data``: one value replaced by a bad one, a key deleted, a list shortened or
    lengthened, a scalar wrapped in a list.  ``keys``: candidate paths (default: every node)."""
    data = copy.deepcopy(data)
    nodes = [(p, v) for p, v in _paths(data) if p]
    if keys:
        nodes = [(p, v) for p, v in nodes if any(p[:len(k)] == k for k in keys)] or nodes
    leaves = [(p, v) for p, v in nodes if not isinstance(v, (dict, list))]
    path, value = rng.choice(leaves if leaves and rng.random() < 0.6 else nodes)
    op = rng.choice(["bad", "bad", "bad", "delete", "wrap", "shorten", "extend"])
    parent = data
    for k in path[:-1]:
        parent = parent[k]
    if op == "delete" and isinstance(parent, dict):
        del parent[path[-1]]
        return data, f"{_fmt_path(path)} deleted"
    if op == "shorten" and isinstance(value, list) and value:
        value.pop()
        return data, f"{_fmt_path(path)}: last element removed"
    if op == "extend" and isinstance(value, list):
        value.append(copy.deepcopy(value[-1]) if value else 1)
        return data, f"{_fmt_path(path)}: element appended"
    if op == "wrap" and not isinstance(value, (dict, list)):
        _set(data, path, [value])
        return data, f"{_fmt_path(path)}: {value!r} -> [{value!r}]"
    bad = rng.choice(BAD_JSON_VALUES)
    _set(data, path, bad)
    return data, f"{_fmt_path(path)}: -> {json.dumps(bad)}"


def dump_json(data) -> str:
    return json.dumps(data, indent=1)  # NaN/Infinity written as Python's json does (and reads)


# ---------------------------------------------------------------------------------------------------- the cases
class CaseBuilder:
    """Writes the inputs of every case below ``root`` and collects the cases."""

    def __init__(self, root: Path, seed: int = SEED):
        self.root = Path(root)
        self.rng = random.Random(seed)
        self.cases: list[Case] = []
        self.base = self.root / "base"
        self.base.mkdir(parents=True, exist_ok=True)

    # -- helpers
    def new_dir(self) -> Path:
        d = self.root / f"c{len(self.cases):04d}"
        (d / "out").mkdir(parents=True, exist_ok=True)
        return d

    def add(self, command: str, trigger: str, argv: list[str], directory: Path, baseline: bool = False,
            must_fail: bool = False) -> None:
        self.cases.append(Case(len(self.cases), command, trigger, [str(a) for a in argv], str(directory), baseline,
                               must_fail=must_fail))

    @staticmethod
    def write(path: Path, content) -> Path:
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8", errors="surrogateescape")
        return path

    # -- base inputs
    def prepare(self) -> None:
        import ase.io

        b = self.base
        for mat in ("CrI3", "VPS3"):
            d = b / mat
            d.mkdir(exist_ok=True)
            for spin in ("up", "dn"):
                with gzip.open(DATA / "dft" / mat / f"{mat}_{spin}_hr.dat.gz", "rb") as fh:
                    (d / f"{mat}_{spin}_hr.dat").write_bytes(fh.read())
                for suf in (".win", "_centres.xyz"):
                    shutil.copy(DATA / "dft" / mat / f"{mat}_{spin}{suf}", d)
            shutil.copy(DATA / "structures" / f"{mat}_monolayer.cif", b / f"{mat}.cif")
            atoms = ase.io.read(b / f"{mat}.cif")
            ase.io.write(b / f"{mat}_POSCAR", atoms, format="vasp", direct=True)
            ase.io.write(b / f"{mat}.extxyz", atoms, format="extxyz")
            shutil.copy(DATA / "dft" / f"{mat}_energies.json", b / f"{mat}_energies.json")
        shutil.copy(DATA / "mc" / "VPS3_fast_spin_model.json", b / "VPS3_model.json")
        shutil.copy(DATA / "runs" / "CrI3_accurate" / "spin_model.json", b / "CrI3_model.json")
        shutil.copy(REPO / "tests" / "magnetism" / "data" / "cri3_tb2j_exchange_excerpt.out", b / "tb2j_excerpt.out")
        shutil.copy(DATA / "dft" / "CrI3" / "TB2J_exchange.out", b / "tb2j_full.out")
        # the documented energies format (J1, J2, J3 = -2, -0.3, 0.1 meV, S = 3/2, honeycomb counts)
        counts = {"FM": ([3, 6, 3], 2), "Neel": ([-3, 6, -3], 2), "zigzag": ([2, -4, -6], 4),
                  "stripy": ([-2, -4, 6], 4)}
        J = (-2.0, -0.3, 0.1)
        confs = [{"name": k, "energy": -5.0 * n + 2.25 * sum(a * j for a, j in zip(c, J)) / 1000, "unit": "eV",
                  "n_sites": n, "counts": c} for k, (c, n) in counts.items()]
        (b / "documented_energies.json").write_text(json.dumps({"spin": 1.5, "distances": [4.04, 7.0, 8.08],
                                                               "configurations": confs}, indent=1))

    # -- commands (small settings so that a successful case is fast)
    @staticmethod
    def mft_argv(d) -> list[str]:
        return ["exchange", "mft", d, "--kmesh", "2", "2", "1", "--poles", "16", "--rcut", "5"]

    @staticmethod
    def mc_argv(model, out="mc") -> list[str]:
        return ["mc", model, "--sizes", "4", "6", "--tmin", "20", "--tmax", "200", "--replicas", "3", "--sweeps",
                "40", "--therm", "10", "--quiet", "--out", out, "--checkpoint-every", "20"]

    def wannier_argv(self, command: str, d: Path) -> list[str]:
        if command == "tb":
            return ["tb", d, "--mdrs", "off"]
        if command == "exchange mft":
            return self.mft_argv(d)
        return ["superexchange", d]

    def structure_argv(self, command: str, f: Path) -> list[str]:
        return {"structure": ["structure", f, "--shells", "2"],
                "anisotropy": ["anisotropy", f],
                # dft: an unknown configuration makes it stop after reading the structure, before any DFT
                "dft": ["dft", f, "--config", "bogus", "--out", "dft"],
                "run": ["run", f, "--until", "structure", "--out", "run"]}[command]

    def model_argv(self, command: str, f: Path) -> list[str]:
        if command == "anisotropy":
            return ["anisotropy", f]
        if command == "mc":
            return self.mc_argv(f)
        fmt = self.rng.choice(["tb2j", "vampire", "mcsolver", "magnopy", "wannmag"])
        return ["export", f, f"exported.{fmt}", "--to", fmt]

    # -- families
    def baselines(self) -> None:
        b = self.base
        runs = [("structure", self.structure_argv("structure", b / "CrI3.cif")),
                ("structure", self.structure_argv("structure", b / "VPS3_POSCAR")),
                ("structure", self.structure_argv("structure", b / "CrI3.extxyz")),
                ("anisotropy", self.structure_argv("anisotropy", b / "CrI3.cif")),
                ("run", self.structure_argv("run", b / "CrI3.cif")),
                ("tb", self.wannier_argv("tb", b / "CrI3")),
                ("exchange mft", self.wannier_argv("exchange mft", b / "CrI3")),
                ("exchange mft", self.wannier_argv("exchange mft", b / "VPS3")),
                ("superexchange", self.wannier_argv("superexchange", b / "CrI3")),
                ("exchange map-energies", ["exchange", "map-energies", b / "documented_energies.json"]),
                ("exchange map-energies", ["exchange", "map-energies", b / "CrI3_energies.json"]),
                ("anisotropy", ["anisotropy", b / "VPS3_model.json"]),
                ("anisotropy", ["anisotropy", b / "CrI3_model.json"]),
                ("mc", self.mc_argv(b / "VPS3_model.json")),
                ("export", ["export", b / "CrI3_model.json", "x.out", "--to", "tb2j"]),
                ("export", ["export", b / "tb2j_excerpt.out", "x.json", "--from", "tb2j", "--to", "wannmag"])]
        for command, argv in runs:
            self.add(command, "baseline (unmodified input)", argv, self.new_dir(), baseline=True)

    def structures(self, n: int) -> None:
        bases = ["CrI3.cif", "VPS3.cif", "CrI3_POSCAR", "VPS3_POSCAR", "CrI3.extxyz"]
        commands = ["structure"] * 12 + ["anisotropy"] * 3 + ["dft"] * 3 + ["run"]
        cif_targets = [r"_cell_length_a\s+(\S+)", r"_cell_length_b\s+(\S+)", r"_cell_length_c\s+(\S+)",
                       r"_cell_angle_alpha\s+(\S+)", r"_cell_angle_gamma\s+(\S+)",
                       r"^\s*Cr\s+Cr0\s+\d+\s+(\S+)", r"^\s*I\s+I1\s+\d+\s+\S+\s+(\S+)", r"^\s*(Cr)\s+Cr0",
                       r"^\s*(V)\s+V0", r"_symmetry_equiv_pos_as_xyz\s+1\s+'(x, y, z)'",
                       r"_atom_site_occupancy\s+(\S+)"]
        cif_values = ["nan", "0.001", "inf", "1e308", "-7", "0", "abc", "180", "1e6", "Xx", "X", "1e-300"]
        for _ in range(n):
            name = self.rng.choice(bases)
            command = self.rng.choice(commands)
            text = (self.base / name).read_text()
            d = self.new_dir()
            if name.endswith(".cif") and self.rng.random() < 0.45:
                targets = [t for t in cif_targets if re.search(t, text, flags=re.M | re.I)]
                pattern, value = self.rng.choice(targets), self.rng.choice(cif_values)
                new, how = replace_pattern(text, pattern, value)
            elif "POSCAR" in name and self.rng.random() < 0.4:
                new, how = replace_number(text, self.rng, lines=range(1, 8))  # scale, cell, counts
            else:
                new, how = random_text_mutation(text, self.rng)
            f = self.write(d / name, new)
            self.add(command, f"{name}: {how}", self.structure_argv(command, f), d)

    def special_files(self) -> None:
        """Non-regular files, files naming code, odd contents."""
        from pymatgen.core import Structure

        zen = Structure.from_file(str(self.base / "CrI3.cif")).as_dict()
        zen["sites"][0]["properties"]["magmom"] = {"@module": "this", "@callable": "s"}
        deep = {"@module": "pymatgen.core.structure", "@class": "Structure",
                "lattice": {"@module": "os", "@class": "system", "matrix": [[7, 0, 0], [0, 7, 0], [0, 0, 20]]}}
        for command, name, content, how in [
                ("structure", "zen.json", dump_json(zen), "site property {'@module': 'this', '@callable': 's'}"),
                ("structure", "zen.yaml", dump_json(zen), "the same as YAML"),
                ("anisotropy", "zen.json", dump_json(zen), "site property {'@module': 'this', '@callable': 's'}"),
                ("dft", "zen.json", dump_json(zen), "site property {'@module': 'this', '@callable': 's'}"),
                ("structure", "lattice.json", dump_json(deep), "lattice names os.system"),
                ("structure", "deep.json", "[" * 100000 + "]" * 100000, "JSON nested 100000 deep"),
                ("structure", "binary.cif", bytes(range(256)) * 40, "binary garbage"),
                ("structure", "blank.cif", "\n   \n", "only whitespace"),
                ("structure", "utf16.cif", (self.base / "CrI3.cif").read_text().encode("utf-16"), "UTF-16 text"),
                ("structure", "huge_cell.cif", replace_pattern((self.base / "CrI3.cif").read_text(),
                                                               r"_cell_length_c\s+(\S+)", "5000")[0], "c = 5000 Å"),
                ("structure", "dup.extxyz", _duplicate_atom((self.base / "CrI3.extxyz").read_text()),
                 "an atom given twice")]:
            d = self.new_dir()
            f = self.write(d / name, content)
            self.add(command, f"{name}: {how}", self.structure_argv(command, f), d, must_fail=name != "utf16.cif")
        # a FIFO, a directory, a device, a missing file, a name with a newline, for each file-reading command
        for kind in ("fifo", "dir", "device", "missing", "newline"):
            for command, argv_of in [
                    ("structure", lambda f: self.structure_argv("structure", f)),
                    ("exchange map-energies", lambda f: ["exchange", "map-energies", f]),
                    ("mc", lambda f: self.mc_argv(f)),
                    ("anisotropy", lambda f: ["anisotropy", f]),
                    ("export", lambda f: ["export", f, "x.out", "--to", "tb2j"]),
                    ("export", lambda f: ["export", f, "x.json", "--from", "tb2j", "--to", "wannmag"]),
                    ("tb", lambda f: ["tb", f])]:
                d = self.new_dir()
                if kind == "fifo":
                    f = d / "input.json"
                    os.mkfifo(f)
                elif kind == "dir":
                    f = d / "input.json"
                    f.mkdir()
                elif kind == "device":
                    f = Path("/dev/zero")
                elif kind == "missing":
                    f = d / "missing.json"
                else:
                    f = d / "new\nline.json"
                    shutil.copy(self.base / "CrI3_model.json", f)
                    if command == "structure":
                        f = self.write(d / "new\nline.cif", (self.base / "CrI3.cif").read_text()[:300])
                self.add(command, f"input is {kind}", argv_of(f), d, must_fail=kind != "newline")
        # Wannier90: a FIFO as the hr.dat
        d = self.new_dir()
        w = self._wannier_copy(d, "CrI3")
        (w / "CrI3_up_hr.dat").unlink()
        os.mkfifo(w / "CrI3_up_hr.dat")
        self.add("exchange mft", "CrI3_up_hr.dat is a FIFO", self.mft_argv(w), d, must_fail=True)

    def _wannier_copy(self, d: Path, mat: str) -> Path:
        w = d / mat
        w.mkdir()
        for f in (self.base / mat).iterdir():
            os.symlink(f, w / f.name)
        return w

    def wannier(self, n: int) -> None:
        commands = ["tb"] * 4 + ["exchange mft"] * 4 + ["superexchange"] * 3
        for _ in range(n):
            mat = "CrI3" if self.rng.random() < 0.8 else "VPS3"
            spin = self.rng.choice(["up", "dn"])
            kind = self.rng.choice(["hr"] * 5 + ["win"] * 3 + ["centres"] * 2)
            command = self.rng.choice(commands)
            d = self.new_dir()
            w = self._wannier_copy(d, mat)
            name = {"hr": f"{mat}_{spin}_hr.dat", "win": f"{mat}_{spin}.win",
                    "centres": f"{mat}_{spin}_centres.xyz"}[kind]
            text = (self.base / mat / name).read_text()
            new, how = self._mutate_wannier(kind, text)
            (w / name).unlink()
            self.write(w / name, new)
            self.add(command, f"{name}: {how}", self.wannier_argv(command, w), d)
        # the shipped gzipped file itself, bit-flipped
        for _ in range(4):
            d = self.new_dir()
            w = self._wannier_copy(d, "CrI3")
            (w / "CrI3_up_hr.dat").unlink()
            raw, how = bitflip((DATA / "dft" / "CrI3" / "CrI3_up_hr.dat.gz").read_bytes(), self.rng)
            self.write(w / "CrI3_up_hr.dat.gz", raw)
            self.add("tb", f"CrI3_up_hr.dat.gz: {how}", self.wannier_argv("tb", w), d)

    def _mutate_wannier(self, kind: str, text: str) -> tuple[str | bytes, str]:
        rng = self.rng
        rows = text.splitlines()
        if kind == "hr":
            num_wann, nrpts = int(rows[1]), int(rows[2])
            n_deg = math.ceil(nrpts / 15)
            header, body = range(1, 3 + n_deg), range(3 + n_deg, len(rows))
            op = rng.choice(["header", "header", "index", "value", "value", "other"])
            if op == "header":
                return replace_number(text, rng, lines=header)
            if op == "index":
                return replace_number(text, rng, lines=body, column=rng.randrange(5),
                                      value=rng.choice(["0", "-1", "999", "1.5", "nan", "99999999999", "x"]))
            if op == "value":
                return replace_number(text, rng, lines=body, column=rng.choice([5, 6]))
            return random_text_mutation(text, rng, lines=body)
        if kind == "win":
            targets = [(r"fermi_energy\s*=\s*(\S+)", ["nan", "inf", "-inf", "abc", "1e308", ""]),
                       (r"num_wann\s*=\s*(\S+)", ["0", "-1", "1000", "nan", "27"]),
                       (r"^\s*(Cr|V):d", ["Cr:s", "Xx:d", "Cr:dxy", "s # n = 3, l = 2", "Cr:l=9", ""]),
                       (r"^\s*(I|S):p", ["I:s", "I:q", "Zz:p"]),
                       (r"^(begin projections)", ["begin projection", ""]),
                       (r"^(end unit_cell_cart)", [""]),
                       (r"^\s*ang\s*\n\s*(\S+)", ["nan", "0", "1e308", "inf"]),
                       (r"atoms_frac\s*\n\s*\w+\s+(\S+)", ["nan", "1e10", "-inf", "abc"]),
                       (r"^\s*(Cr|V)\s+0\.", ["Xx", "I", "H"])]
            if rng.random() < 0.6:
                pattern, values = rng.choice(targets)
                return replace_pattern(text, pattern, rng.choice(values))
            return random_text_mutation(text, rng)
        # centres
        if rng.random() < 0.5:
            return replace_number(text, rng, lines=range(2, len(rows)))
        return random_text_mutation(text, rng)

    def route_files(self, n: int) -> None:
        """`exchange compare DIR` on a copy of data/exchange with one route file damaged."""
        src = DATA / "exchange"
        files = sorted(f.name for f in src.glob("*.json"))
        for k in range(n):
            d = self.new_dir()
            ex = d / "exchange"
            ex.mkdir()
            for f in files:
                shutil.copy(src / f, ex / f)
            name = self.rng.choice(files)
            text = (ex / name).read_text()
            if self.rng.random() < 0.75:
                new, how = mutate_json(json.loads(text), self.rng)
                new = dump_json(new)
            else:
                new, how = random_text_mutation(text, self.rng)
            self.write(ex / name, new)
            argv = ["exchange", "compare", ex] + (["--json"] if k % 3 == 1 else [])
            self.add("exchange compare", f"{name}: {how}", argv, d)
        d = self.new_dir()
        self.add("exchange compare", "missing directory", ["exchange", "compare", d / "nope"], d, must_fail=True)
        d = self.new_dir()
        (d / "empty").mkdir()
        self.add("exchange compare", "empty directory", ["exchange", "compare", d / "empty"], d, must_fail=True)

    def energies(self, n: int) -> None:
        bases = ["documented_energies.json", "CrI3_energies.json", "VPS3_energies.json"]
        for k in range(n):
            name = self.rng.choice(bases)
            text = (self.base / name).read_text()
            d = self.new_dir()
            if self.rng.random() < 0.75:
                data = json.loads(text)
                keys = [("configurations",), ("spin",), ("distances",)]
                new, how = mutate_json(data, self.rng, keys if self.rng.random() < 0.8 else None)
                new = dump_json(new)
            else:
                new, how = random_text_mutation(text, self.rng)
            f = self.write(d / name, new)
            argv = ["exchange", "map-energies", f]
            if k % 10 == 3:
                argv += ["--plot", "plots/j.png"]
            elif k % 10 == 6:
                argv += ["--json"]
            self.add("exchange map-energies", f"{name}: {how}", argv, d)
        # the specific wrong types of the issue
        conf = json.loads((self.base / "documented_energies.json").read_text())
        for key, value in [("energy", None), ("energy", [1, 2]), ("energy", True), ("n_sites", "two"),
                           ("n_sites", 2.5), ("counts", 3), ("counts", [[3, 6, 3]]), ("counts", [3]),
                           ("energy", 1e308), ("energy", float("nan")), ("energy", float("inf")), ("n_sites", 0),
                           ("n_sites", -2)]:
            data = copy.deepcopy(conf)
            data["configurations"][1][key] = value
            d = self.new_dir()
            f = self.write(d / "e.json", dump_json(data))
            self.add("exchange map-energies", f"configuration 1: {key} = {json.dumps(value)}",
                     ["exchange", "map-energies", f], d, must_fail=True)
        for key, value in [("spin", "1.5"), ("spin", -1.5), ("spin", float("nan")), ("distances", [None, 1, 2]),
                           ("configurations", {}), ("configurations", [])]:
            data = copy.deepcopy(conf)
            data[key] = value
            d = self.new_dir()
            f = self.write(d / "e.json", dump_json(data))
            self.add("exchange map-energies", f"{key} = {json.dumps(value)}", ["exchange", "map-energies", f], d,
                     must_fail=key != "spin" or value != "1.5")

    def spin_models(self, n: int) -> None:
        bases = ["VPS3_model.json", "CrI3_model.json"]
        commands = ["anisotropy"] * 5 + ["export"] * 4 + ["mc"]
        for _ in range(n):
            name = self.rng.choice(bases)
            command = self.rng.choice(commands)
            if command == "mc" and name.startswith("CrI3"):
                command = "anisotropy"  # a successful Monte Carlo run of the 12-bond CrI3 model takes ~5 s
            text = (self.base / name).read_text()
            d = self.new_dir()
            if self.rng.random() < 0.8:
                keys = [("sites",), ("bonds",), ("cell",), ("pbc",), ("single_ion",), ("field_T",), ("format",)]
                new, how = mutate_json(json.loads(text), self.rng, keys)
                new = dump_json(new)
            else:
                new, how = random_text_mutation(text, self.rng)
            f = self.write(d / name, new)
            self.add(command, f"{name}: {how}", self.model_argv(command, f), d)
        # the specific ones of the issue
        model = json.loads((self.base / "VPS3_model.json").read_text())
        specific = [(("sites", 0, "position"), [0, 0]), (("bonds", 0, "R"), [1, 0]), (("cell",), [[1, 0], [0, 1]]),
                    (("sites", 0, "spin"), 0), (("sites", 0, "spin"), -1.5), (("sites", 0, "spin"), float("nan")),
                    (("bonds", 0, "J", 0, 0), float("nan")), (("bonds", 0, "J", 0, 0), 1e308),
                    (("field_T",), [float("nan"), 0, 0]), (("sites", 0, "g"), float("inf")),
                    (("bonds", 0, "j"), 7), (("bonds", 0, "i"), -1)]
        for k, (path, value) in enumerate(specific):
            for command in ("anisotropy", "export", "mc") if k % 2 == 0 else ("anisotropy", "export"):
                data = copy.deepcopy(model)
                _set(data, path, value)
                d = self.new_dir()
                f = self.write(d / "model.json", dump_json(data))
                self.add(command, f"{_fmt_path(path)} = {json.dumps(value)}", self.model_argv(command, f), d,
                         must_fail=True)

    def tb2j(self, n: int) -> None:
        for _ in range(n):
            name = "tb2j_excerpt.out" if self.rng.random() < 0.75 else "tb2j_full.out"
            text = (self.base / name).read_text()
            d = self.new_dir()
            new, how = random_text_mutation(text, self.rng)
            f = self.write(d / name, new)
            to = self.rng.choice(["wannmag", "wannmag", "vampire", "mcsolver"])
            self.add("export", f"{name}: {how}", ["export", f, f"x.{to}", "--from", "tb2j", "--to", to], d)

    def checkpoints(self, run) -> None:
        """Monte Carlo checkpoints: a run is made once (in a child), then its checkpoint is damaged and the same
        command resumes from it."""
        import numpy as np

        d0 = self.base / "mc_run"
        d0.mkdir(exist_ok=True)
        argv = self.mc_argv(self.base / "VPS3_model.json", out=str(d0 / "mc"))
        probe = Case(-1, "mc", "checkpoint source", [str(a) for a in argv], str(d0))
        (d0 / "out").mkdir(exist_ok=True)
        outcome = run([probe])[0]
        cks = sorted((d0 / "mc").glob("checkpoint_*.npz"))
        if outcome.cls != OK or not cks:
            self.add("mc", "checkpoint cases: the run that makes the checkpoint failed", argv, self.new_dir(),
                     baseline=True)
            self.cases[-1].setup_error = f"{outcome.cls}: {outcome.detail}" if outcome.cls != OK else "no checkpoint"
            return
        src = cks[0]
        with np.load(src, allow_pickle=False) as z:
            state = {k: z[k].copy() for k in z.files}

        def hand_made(change):
            s = {k: v.copy() for k, v in state.items()}
            how = change(s)
            buf = io.BytesIO()
            np.savez(buf, **s)
            return buf.getvalue(), how

        variants = []
        raw = src.read_bytes()
        for _ in range(2):
            variants.append(bitflip(raw, self.rng))
        variants.append((raw[:len(raw) // 2], "truncated to half"))
        variants.append((b"", "empty"))
        variants.append(hand_made(lambda s: (s.pop("spins"), "no 'spins' key")[1]))
        variants.append(hand_made(lambda s: (s.__setitem__("spins", s["spins"][:, :-1]), "spins shape")[1]))
        variants.append(hand_made(lambda s: (s["spins"].__setitem__((0, 0, 0), np.nan), "a NaN spin")[1]))
        variants.append(hand_made(lambda s: (s.__setitem__("sweep", np.array(10 ** 9)), "sweep = 1e9")[1]))
        variants.append(hand_made(lambda s: (s.__setitem__("signature", np.array(1.0)), "signature a number")[1]))
        for content, how in variants:
            d = self.new_dir()
            shutil.copytree(d0 / "mc", d / "out" / "mc")
            for extra in (d / "out" / "mc").glob("mc_*"):
                extra.unlink()  # results of the source run: the resumed run must recompute them
            (d / "out" / "mc" / src.name).write_bytes(content)
            self.add("mc", f"{src.name}: {how}", self.mc_argv(self.base / "VPS3_model.json"), d,
                     must_fail="bit flip" not in how)

    def cli_values(self) -> None:
        b = self.base
        w, model = b / "CrI3", b / "VPS3_model.json"
        mft = self.mft_argv(w)
        mc = self.mc_argv(model)
        cases = []
        for k in (["0", "0", "0"], ["-1", "3", "1"], ["3", "3", "0"], ["100000", "100000", "1"]):
            cases.append(("exchange mft", f"--kmesh {' '.join(k)}", mft[:4] + k + mft[7:]))
        for opt, vals in [("--poles", ["0", "-5", "100000000"]), ("--rcut", ["nan", "-1", "0", "inf", "1e308"]),
                          ("--efermi", ["nan", "inf", "1e308"]), ("--nelect", ["nan", "-1", "0", "1e308", "1000"])]:
            for v in vals:
                cases.append(("exchange mft", f"{opt} {v}", mft + [opt, v]))
        for opt, vals in [("--nelect", ["nan", "-1", "1e308", "inf"]), ("--efermi", ["nan", "inf"]),
                          ("--U", ["nan", "-1", "inf"]), ("--shells", ["0", "-1", "1000000000"]),
                          ("--centre-tol", ["nan", "0", "-1", "inf", "1e308"])]:
            for v in vals:
                cases.append(("tb", f"{opt} {v}", ["tb", w, "--mdrs", "off", opt, v]))
        for opt, vals in [("--bond", ["0", "-1", "1000"]), ("--U", ["nan", "-3", "inf", "0"]),
                          ("--JH", ["nan", "-1", "100"]), ("--delta", ["nan", "inf", "0"]),
                          ("--kmesh", ["0 0 0", "-1 1 1", "100000 100000 1"]), ("--Up", ["nan"]),
                          ("--tendq", ["nan", "-1e308"]), ("--compare", ["x=nan", "x", "=1"])]:
            for v in vals:
                extra = ["--green"] if opt == "--kmesh" else []
                cases.append(("superexchange", f"{opt} {v}", ["superexchange", w, opt, *v.split()] + extra))
        for opt, vals in [("--sizes", ["0", "1", "-4", "100000"]), ("--replicas", ["0", "1", "100000000"]),
                          ("--sweeps", ["0", "-1", "1000000000000"]), ("--therm", ["-1"]),
                          ("--tmin", ["1e-300", "0", "nan", "-5", "inf"]), ("--tmax", ["1e300", "nan", "inf"]),
                          ("--seed", ["-1", "99999999999999999999999"]), ("--dilution", ["nan", "1", "0", "-0.1"]),
                          ("--realisations", ["0", "-1"]), ("--overrelax", ["-1", "1000000000"]),
                          ("--checkpoint-every", ["-1"])]:
            for v in vals:
                argv = list(mc)
                if opt in argv:
                    i = argv.index(opt)
                    argv[i + 1] = v
                    if opt == "--sizes":
                        del argv[i + 2]
                else:
                    argv += [opt, v]
                cases.append(("mc", f"{opt} {v}", argv))
        cases.append(("mc", "--tmin above --tmax", mc[:5] + ["300"] + mc[6:7] + ["20"] + mc[8:]))
        for opt, vals in [("--algorithm", ["bogus", ""]), ("--threads", ["0", "-1", "100000"])]:
            for v in vals:
                cases.append(("mc", f"{opt} {v!r}", mc + [opt, v]))
        for opt, vals in [("--pattern", ["1", "1,1,1", "2,-1", "a,b", "nan,1", ""]), ("--order", ["bogus", ""]),
                          ("--g", ["nan", "-2", "0", "inf"]), ("--npoints", ["0", "-1", "100000000"]),
                          ("--path", ["XYZQ", ""])]:
            for v in vals:
                extra = ["--plot", "bands.png"] if opt in ("--npoints", "--path") else []
                cases.append(("anisotropy", f"{opt} {v!r}", ["anisotropy", model, opt, v] + extra))
        cases.append(("anisotropy", "--structure is a spin model", ["anisotropy", model, "--structure", model]))
        for opt, vals in [("--shells", ["0", "-1", "1000000000"]), ("--spin", ["Cr=nan", "Cr=-1.5", "Cr=0", "Xx=1",
                                                                               "Fe=2", "Cr=inf", "Cr=1e308", "Cr"]),
                          ("--oxidation", ["Cr=99", "Cr=nan", "Cr=-99999999999999999999"]),
                          ("--magnetic", ["Xx", "I", "Fe"]), ("--tol", ["nan", "-1", "100", "inf"])]:
            for v in vals:
                cases.append(("structure", f"{opt} {v}", ["structure", b / "CrI3.cif", opt, v]))
        for opt, vals in [("--U", ["nan", "-1", "Cr=inf", "Xx=3"]), ("--kpts", ["0 0 0", "-1 2 2"]),
                          ("--kdensity", ["nan", "-1", "0"]), ("--ecut", ["nan", "-450", "1e308"]),
                          ("--config", ["bogus", "1,1,1,1,1"])]:
            for v in vals:
                argv = ["dft", b / "CrI3.cif", "--out", "dft", opt, *v.split()]
                if opt != "--config":
                    argv += ["--config", "bogus"]  # safety net: never a real DFT run
                cases.append(("dft", f"{opt} {v}", argv))
        for opt, vals in [("--mc-sizes", ["0", "-4", "100000"]), ("--mc-sweeps", ["0", "-1"]),
                          ("--mc-replicas", ["0", "100000000"]), ("--vacancies", ["nan", "2", "0", "-0.1"]),
                          ("--vacancy-supercell", ["0 0", "-1 2", "100000 100000"]), ("--vacancy-site", ["-1", "999"]),
                          ("--vacancy-charge", ["bogus", "nan", "1e308"]), ("--workers", ["0", "-1", "100000"]),
                          ("--U", ["nan", "-1", "inf"]), ("--seed", ["-1"]), ("--until", ["bogus"]),
                          ("--redo", ["bogus"]), ("--vacancy-configs", ["0", "-1"]),
                          ("--vacancy-realisations", ["0"])]:
            for v in vals:
                cases.append(("run", f"{opt} {v}", ["run", b / "CrI3.cif", "--out", "run", "--until", "structure",
                                                    opt, *v.split()]))
        cases.append(("run", "no structure, no --from", ["run", "--out", "run"]))
        cases.append(("run", "--from a Wannier-only directory", ["run", "--from", w, "--out", "run", "--until",
                                                                 "structure"]))
        for opt, vals in [("--shells", ["0", "-1", "1000000000"]), ("--spin", ["nan", "-1", "0", "inf"]),
                          ("--max-condition", ["nan", "-1", "0"])]:
            for v in vals:
                cases.append(("exchange map-energies", f"{opt} {v}",
                              ["exchange", "map-energies", b / "documented_energies.json", opt, v]))
        # values that may be legitimate (the rest is nonsense by construction and must be refused)
        allowed = {("exchange mft", "--nelect 0"), ("exchange mft", "--rcut 1e308"), ("tb", "--centre-tol 1e308"),
                   ("superexchange", "--U 0"), ("superexchange", "--delta 0"), ("mc", "--seed 99999999999999999999999"),
                   ("mc", "--dilution 0"), ("anisotropy", "--pattern ''"), ("anisotropy", "--order ''"),
                   ("anisotropy", "--path ''")}
        for command, trigger, argv in cases:
            self.add(command, trigger, argv, self.new_dir(), must_fail=(command, trigger) not in allowed)

    def output_paths(self) -> None:
        b = self.base
        model, energies = b / "VPS3_model.json", b / "documented_energies.json"
        for command, trigger, argv, prep in [  # must fail: those writing into /proc or onto an existing file
                ("export", "OUT is a directory", ["export", model, "adir", "--to", "tb2j"], "adir/"),
                ("export", "OUT inside /proc", ["export", model, "/proc/wannmag_fuzz.out", "--to", "tb2j"], None),
                ("export", "OUT in a missing folder", ["export", model, "nodir/x.out", "--to", "mcsolver"], None),
                ("export", "vampire OUT is a directory", ["export", model, "adir", "--to", "vampire"], "adir.UCF/"),
                ("mc", "--out is an existing file", self.mc_argv(model, out="afile"), "afile"),
                ("exchange map-energies", "--plot in a missing folder",
                 ["exchange", "map-energies", energies, "--plot", "nodir/x.png"], None),
                ("exchange map-energies", "--plot is a directory",
                 ["exchange", "map-energies", energies, "--plot", "adir"], "adir/"),
                ("exchange map-energies", "--plot inside /proc",
                 ["exchange", "map-energies", energies, "--plot", "/proc/x.png"], None),
                ("structure", "--plot inside /proc", ["structure", b / "CrI3.cif", "--plot", "/proc/x.png"], None),
                ("structure", "--plot is a directory", ["structure", b / "CrI3.cif", "--plot", "adir"], "adir/"),
                ("exchange mft", "--save-model is a directory", self.mft_argv(b / "CrI3") + ["--save-model", "adir"],
                 "adir/"),
                ("anisotropy", "--plot inside /proc", ["anisotropy", model, "--plot", "/proc/x.png"], None),
                ("tb", "--plot is an existing file", ["tb", b / "CrI3", "--mdrs", "off", "--plot", "afile"], "afile"),
                ("run", "--out is an existing file", ["run", b / "CrI3.cif", "--until", "structure", "--out", "afile"],
                 "afile"),
                ("dft", "--out is an existing file", ["dft", b / "CrI3.cif", "--out", "afile", "--config", "bogus"],
                 "afile")]:
            d = self.new_dir()
            if prep:
                p = d / "out" / prep.rstrip("/")
                p.mkdir() if prep.endswith("/") else p.write_text("not a directory\n")
            self.add(command, trigger, argv, d, must_fail="/proc" in trigger or "existing file" in trigger)


def _duplicate_atom(extxyz: str) -> str:
    rows = extxyz.splitlines(keepends=True)
    rows[0] = f"{int(rows[0]) + 1}\n"
    rows.append(rows[2])
    return "".join(rows)


def build_cases(root, run=None, seed: int = SEED, scale: float = 1.0) -> list[Case]:
    """Write every case's inputs below ``root`` and return the cases (deterministic for a given ``seed``).
    ``run(cases) -> outcomes`` is needed for the checkpoint cases (they damage the checkpoint of a real run)."""
    b = CaseBuilder(Path(root), seed)
    b.prepare()
    b.baselines()
    b.structures(int(100 * scale))
    b.special_files()
    b.wannier(int(85 * scale))
    b.energies(int(60 * scale))
    b.spin_models(int(80 * scale))
    b.tb2j(int(40 * scale))
    b.route_files(int(30 * scale))
    if run is not None:
        b.checkpoints(run)
    b.cli_values()
    b.output_paths()
    return b.cases


# --------------------------------------------------------------------------------------------------- the runner
_NAN = re.compile(r"(?<![A-Za-z0-9_])[-+]?(?:nan|inf|infinity)(?![A-Za-z0-9_])", re.I)
_ARGPARSE_ERROR = re.compile(r"^wannmag( [\w-]+)*: error: ")
_BINARY_SUFFIXES = {".png", ".npz", ".pdf", ".svg", ".gz", ".npy"}


def warm_up() -> None:
    """Import what the sub-commands use, once, in the parent (the children inherit it)."""
    modules = ["numpy", "scipy.linalg", "scipy.optimize", "ase.io", "ase.neighborlist", "spglib", "pymatgen.core",
               "pymatgen.io.cif", "pymatgen.io.ase", "pymatgen.analysis.bond_valence", "matplotlib",
               "wannier90io", "wannierberri", "tqdm", "wannmag.cli", "wannmag.structures", "wannmag.tightbinding",
               "wannmag.magnetism", "wannmag.magnetism.mft", "wannmag.magnetism.montecarlo",
               "wannmag.magnetism.spinmodel", "wannmag.magnetism.energy_mapping", "wannmag.magnetism.anisotropy"]
    os.environ.setdefault("MPLBACKEND", "Agg")
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        for m in modules:
            try:
                importlib.import_module(m)
            except Exception:  # noqa: BLE001 - a missing optional module is imported (and fails) in the child
                pass
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot  # noqa: F401
        except Exception:  # noqa: BLE001
            pass
        try:  # pymatgen loads all its file-format modules (VASP, ...) on the first format look-up: ~1 s
            from pymatgen.io.registry import get_structure_format

            get_structure_format(filename="POSCAR")
        except Exception:  # noqa: BLE001
            pass
        from wannmag.commands import COMMANDS

        for name in COMMANDS:
            importlib.import_module(f"wannmag.commands.{name}")


class _BlockDFT(importlib.abc.MetaPathFinder):
    """Refuses to import GPAW (no fuzz case may start a DFT calculation) and leaves a marker file if one tried."""

    def __init__(self, marker: Path):
        self.marker = marker

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "gpaw":
            self.marker.write_text(name)
            raise ImportError("GPAW is blocked in the fuzz test")
        return None


def _vm_size() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 1 << 30


def _child(case: Case, vm: int) -> None:
    """Runs in the forked child: never returns."""
    rc = 97
    try:
        os.setpgid(0, 0)
        try:
            import faulthandler

            faulthandler.disable()
        except Exception:  # noqa: BLE001
            pass
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGALRM):
            signal.signal(sig, signal.SIG_DFL)
        signal.alarm(0)
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_AS, (vm + MEMORY_LIMIT, vm + MEMORY_LIMIT))
        resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT, FILE_LIMIT))
        d = Path(case.directory)
        os.chdir(case.cwd)
        fd = os.open(os.devnull, os.O_RDONLY)
        os.dup2(fd, 0)
        for n, name in ((1, "stdout.txt"), (2, "stderr.txt")):
            fd = os.open(d / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(fd, n)
            os.close(fd)
        sys.stdin = open(0, "r", closefd=False)
        sys.stdout = open(1, "w", encoding="utf-8", errors="backslashreplace", closefd=False)
        sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False)
        sys.__stdout__, sys.__stderr__ = sys.stdout, sys.stderr
        os.environ.pop("WANNMAG_TRACEBACK", None)
        os.environ["MPLBACKEND"] = "Agg"
        # the finder only sees imports of modules not yet loaded: inside the full test session another test may have
        # imported GPAW already (wannmag imports it only inside functions), so drop it from this child's module table
        for mod in [m for m in sys.modules if m.split(".")[0] == "gpaw"]:
            del sys.modules[mod]
        sys.meta_path.insert(0, _BlockDFT(d / "DFT_LAUNCHED"))
        from wannmag.cli import main

        try:
            rc = main(case.argv)
        except SystemExit as exc:  # argparse
            rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:  # noqa: BLE001 - an exception that escaped main: its traceback is the evidence
            import traceback

            traceback.print_exc()
            rc = 99
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:  # noqa: BLE001
            pass
    except BaseException:  # noqa: BLE001
        rc = 98
    finally:
        os._exit(rc if isinstance(rc, int) and 0 <= rc < 256 else 96)


def _nan_in_outputs(case: Case) -> str:
    d = Path(case.directory)
    texts = [("stdout", (d / "stdout.txt").read_text(errors="replace"))]
    for p in sorted(case.cwd.rglob("*")):
        if p.is_file() and not p.is_symlink() and p.suffix.lower() not in _BINARY_SUFFIXES and p.stat().st_size < 5e6:
            try:
                texts.append((p.name, p.read_text(errors="replace")))
            except OSError:
                continue
    for name, text in texts:
        m = _NAN.search(text)
        if m:
            line = text[text.rfind("\n", 0, m.start()) + 1:text.find("\n", m.end()) % (len(text) + 1)]
            return f"{name}: {line.strip()[:120]}"
    return ""


def classify(case: Case, status: int | None, seconds: float) -> Outcome:
    """``status``: os.waitstatus_to_exitcode of the child (negative: killed by that signal), None: timed out."""
    d = Path(case.directory)
    err = (d / "stderr.txt").read_text(errors="replace") if (d / "stderr.txt").exists() else ""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    first_err = next((ln for ln in lines if "error" in ln.lower()), lines[-1] if lines else "")
    if (d / "DFT_LAUNCHED").exists():
        return Outcome(case, "launched-dft", (d / "DFT_LAUNCHED").read_text(), seconds)
    if status is None:
        return Outcome(case, "hang", f"no exit after {TIMEOUT:g} s", seconds)
    if status < 0:
        try:
            name = signal.Signals(-status).name
        except ValueError:
            name = str(-status)
        return Outcome(case, f"signal-{name}", first_err[:160], seconds)
    if "Traceback (most recent call last)" in err:
        last = lines[-1] if lines else ""
        return Outcome(case, "traceback", last[:160], seconds)
    if status == 0:
        nan = _nan_in_outputs(case)
        if nan:
            return Outcome(case, "nan-output", nan, seconds)
        if case.must_fail:
            out = (d / "stdout.txt").read_text(errors="replace").strip().splitlines()
            return Outcome(case, "accepted-bad-input", f"exit 0: {out[-1][:120] if out else ''}", seconds)
        return Outcome(case, OK, "", seconds)
    if status == 2:
        if len(lines) == 1 and lines[0].startswith("wannmag: error:"):
            if "internal error" in lines[0]:
                return Outcome(case, "internal-error", lines[0][:200], seconds)
            if "out of memory" in lines[0]:
                return Outcome(case, "out-of-memory", lines[0][:200], seconds)
            return Outcome(case, CLEAN, lines[0][:200], seconds)
        if lines and lines[0].startswith("usage:") and _ARGPARSE_ERROR.match(lines[-1]):
            return Outcome(case, CLEAN, lines[-1][:200], seconds)
        return Outcome(case, "stderr-not-one-line", f"{len(lines)} lines: " + " | ".join(
            ln.strip()[:80] for ln in lines[:3]), seconds)
    return Outcome(case, f"exit-{status}", first_err[:160], seconds)


def run_cases(cases: list[Case], workers: int = WORKERS, timeout: float = TIMEOUT, progress=None) -> list[Outcome]:
    """Run every case in a forked child (``workers`` at a time, ``timeout`` s each) and classify it."""
    warm_up()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    vm = _vm_size()
    pending = list(cases)
    running: dict[int, tuple[Case, float]] = {}
    out: dict[int, Outcome] = {}
    for case in [c for c in pending if c.setup_error]:
        out[id(case)] = Outcome(case, "baseline-failed", case.setup_error)
        pending.remove(case)
    while pending or running:
        while pending and len(running) < workers:
            case = pending.pop(0)
            pid = os.fork()
            if pid == 0:
                _child(case, vm)
            running[pid] = (case, time.monotonic())
        time.sleep(0.003)
        for pid, (case, t0) in list(running.items()):
            done, status = os.waitpid(pid, os.WNOHANG)
            elapsed = time.monotonic() - t0
            if done:
                code = os.waitstatus_to_exitcode(status)
            elif elapsed > timeout:
                code = None
            else:
                continue
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)  # the child and anything it started
            if not done:
                os.waitpid(pid, 0)
            del running[pid]
            res = classify(case, code, elapsed)
            if case.baseline and res.cls != OK:
                res = Outcome(case, "baseline-failed", f"{res.cls}: {res.detail}", res.seconds)
            out[id(case)] = res
            if progress:
                progress(res)
    return [out[id(c)] for c in cases]


def summary(outcomes: list[Outcome]) -> str:
    """A table of classes per sub-command, then every failure (class, sub-command, trigger, stderr)."""
    commands = sorted({o.case.command for o in outcomes})
    classes = [OK, CLEAN] + sorted({o.cls for o in outcomes} - {OK, CLEAN})
    width = max(len(c) for c in commands + ["sub-command"])
    lines = [f"{'sub-command':<{width}} " + " ".join(f"{c:>{max(len(c), 5)}}" for c in classes)
             + f" {'total':>6} {'seconds':>8}"]
    for cmd in commands + [None]:
        row = [o for o in outcomes if cmd is None or o.case.command == cmd]
        lines.append(f"{cmd or 'all':<{width}} " + " ".join(f"{sum(o.cls == c for o in row):>{max(len(c), 5)}}"
                                                          for c in classes)
                     + f" {len(row):>6} {sum(o.seconds for o in row):8.1f}")
    failures = [o for o in outcomes if o.failed]
    if failures:
        lines.append("")
        lines.append(f"{len(failures)} failure(s): class | sub-command | trigger | stderr (case directory)")
        for o in sorted(failures, key=lambda o: (o.cls, o.case.command, o.case.cid)):
            trig = o.case.trigger.replace("\n", "\\n")
            lines.append(f"  {o.cls} | {o.case.command} | {trig[:90]} | {o.detail[:150]} "
                         f"(c{o.case.cid:04d})")
    return "\n".join(lines)
