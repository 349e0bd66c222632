#!/usr/bin/env python
"""Re-measure the numbers of issue 22's "Why" paragraph on one or two source trees (static, AST only: nothing of
the measured tree is imported or run).

    python scripts/audit_issue22.py                      # this tree
    python scripts/audit_issue22.py --before /tmp/wt22   # a before/after table (e.g. a `git worktree` of the commit
                                                         # where the issue was filed, 98e7064)
    python scripts/audit_issue22.py --before /tmp/wt22 -v   # also list what each count counts

What is counted (``wannmag`` = the package without ``wannmag/llm``, which stands apart, unless said otherwise):

* structure-path reads in run.py/vacancy.py: call sites of a structure-analysis function (find_magnetic_sites,
  analyse_structure, read_structure, honeycomb_configuration, soc_directions, fit_soc_records, make_vacancy_cell,
  vacancy_configuration, vacancy_charge, hole_placements_of, the modules' ``_sublattice``) with an argument that is
  the structure *path*: a ``...["structure"]`` subscript, or a name bound to one — a parameter named ``structure``
  of an entry point (no caller in these two modules), of a helper one of whose callers passes a path at that
  position (also through ``_map(client, f, [(..., path, ...)])`` and ``a, b = args``), or a local assigned from a
  path.  Context.sublattice (engine.py: one read per path) is not counted.
* step-dict reads in run.py: step lookups ``ctx["step"]`` / ``ctx.results["step"]`` / ``ctx.get("step")``, and key
  reads ``[key]`` / ``.get(key)`` applied to a lookup directly (``ctx["step"][key]``) or to a local bound to one.
* ``SpinModel.load`` calls in run.py and in workflows/.
* classes defining ``as_dict`` / ``from_dict`` (methods in the class body), and those with ``as_dict`` only.
* Tc-search loops: functions calling a window rule (refine_window / extend_window / next_window) other than those
  window rules themselves — each one is an implementation of a further pass; mean-field windows: functions
  computing Σ|J_iso| (``sum(abs(b.J_iso) ...)``).
* import cycles: strongly connected components of the import graph of all of wannmag (llm included; module- and
  function-level imports), with tests/test_import_cycles.py's graph and Tarjan code.
* imports inside functions (``import``/``from`` nodes nested in a def): wannmag, wannmag with llm, wannmag without
  the CLI (commands/, cli.py: local on purpose, a bad input fails before the heavy imports), run.py.
* line counts (``wc -l``) and functions longer than 120 lines (def line to last line).
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
READERS = {"find_magnetic_sites", "analyse_structure", "read_structure", "honeycomb_configuration", "soc_directions",
           "fit_soc_records", "make_vacancy_cell", "vacancy_configuration", "vacancy_charge", "hole_placements_of",
           "_sublattice"}
WINDOW_RULES = {"refine_window", "extend_window", "next_window"}
LONG = 120


def _cycle_tools():
    spec = importlib.util.spec_from_file_location("_cycles", HERE / "tests" / "test_import_cycles.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.import_graph, mod.cycles


def _py(root: Path, llm: bool = False):
    for p in sorted((root / "wannmag").rglob("*.py")):
        if llm or "llm" not in p.relative_to(root / "wannmag").parts[:1]:
            yield p


def _name(call: ast.Call):
    f = call.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None


def _defs(tree):
    return [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def _rel(root, p):
    return str(p.relative_to(root))


# ------------------------------------------------------------------------------------------- structure-path reads
def _is_struct_sub(e) -> bool:
    return (isinstance(e, ast.Subscript) and isinstance(e.slice, ast.Constant) and e.slice.value == "structure")


def structure_path_reads(root: Path) -> list[str]:
    """Call sites in workflows/run.py and vacancy.py of READERS with the structure path as an argument."""
    files = [root / "wannmag/workflows/run.py", root / "wannmag/workflows/vacancy.py"]
    funcs = {}  # name -> (file, FunctionDef)
    for p in files:
        for fn in _defs(ast.parse(p.read_text())):
            funcs.setdefault(fn.name, (p, fn))
    params = {n: [a.arg for a in fn.args.args] for n, (_, fn) in funcs.items()}
    called = set()
    for _, fn in funcs.values():
        for c in ast.walk(fn):
            if isinstance(c, ast.Call):
                called.add(_name(c))
                if _name(c) == "_map" and len(c.args) >= 2 and isinstance(c.args[1], ast.Name):
                    called.add(c.args[1].id)
    # path parameters: (function, position); entry points' parameters named structure are paths
    path_pos = {(n, i) for n, ps in params.items() if n not in called for i, a in enumerate(ps) if a == "structure"}
    # _map tasks: (function, index in the args tuple)
    task_pos: set[tuple[str, int]] = set()

    def path_names(fn) -> set[str]:
        names = {a for i, a in enumerate(params[fn.name]) if (fn.name, i) in path_pos}
        for _ in range(3):
            for node in ast.walk(fn):
                if isinstance(node, ast.Assign) and len(node.targets) == 1:
                    t, v = node.targets[0], node.value
                    if isinstance(t, ast.Name) and is_path(v, names):
                        names.add(t.id)
                    if isinstance(t, ast.Tuple) and isinstance(v, ast.Name) and v.id in params[fn.name]:
                        for i, el in enumerate(t.elts):
                            if isinstance(el, ast.Name) and (fn.name, i) in task_pos:
                                names.add(el.id)
        return names

    def is_path(e, names) -> bool:
        if _is_struct_sub(e) or (isinstance(e, ast.Name) and e.id in names):
            return True
        if isinstance(e, ast.Call) and _name(e) in ("str", "Path") and e.args:
            return is_path(e.args[0], names)
        return False

    for _ in range(6):  # propagate through helpers until nothing changes
        before = (len(path_pos), len(task_pos))
        for _, fn in funcs.values():
            names = path_names(fn)
            for c in ast.walk(fn):
                if not isinstance(c, ast.Call):
                    continue
                n = _name(c)
                if n in params:
                    for i, a in enumerate(c.args):
                        if is_path(a, names):
                            path_pos.add((n, i))
                    for kw in c.keywords:
                        if kw.arg in params[n] and is_path(kw.value, names):
                            path_pos.add((n, params[n].index(kw.arg)))
                if n == "_map" and len(c.args) >= 3 and isinstance(c.args[1], ast.Name):
                    elt = c.args[2].elt if isinstance(c.args[2], (ast.ListComp, ast.GeneratorExp)) else None
                    if isinstance(elt, ast.Tuple):
                        for i, a in enumerate(elt.elts):
                            if is_path(a, names):
                                task_pos.add((c.args[1].id, i))
        if (len(path_pos), len(task_pos)) == before:
            break
    out = []
    for name, (p, fn) in funcs.items():
        names = path_names(fn)
        for c in ast.walk(fn):
            if isinstance(c, ast.Call) and _name(c) in READERS and any(
                    is_path(a, names) for a in [*c.args, *(k.value for k in c.keywords)]):
                out.append(f"{p.name}:{c.lineno} {fn.name} -> {_name(c)}")
    return sorted(set(out))


# ------------------------------------------------------------------------------------------- step-dict reads
def _is_lookup(e) -> bool:
    if isinstance(e, ast.Subscript) and isinstance(e.slice, ast.Constant) and isinstance(e.slice.value, str):
        v = e.value
        return (isinstance(v, ast.Name) and v.id == "ctx") or (
            isinstance(v, ast.Attribute) and v.attr == "results" and isinstance(v.value, ast.Name) and v.value.id == "ctx")
    return (isinstance(e, ast.Call) and isinstance(e.func, ast.Attribute) and e.func.attr == "get"
            and isinstance(e.func.value, ast.Name) and e.func.value.id == "ctx")


def step_dict_reads(path: Path) -> tuple[int, int, int]:
    """(step lookups, direct ctx[step][key] reads, key reads incl. through a local bound to a lookup)."""
    tree = ast.parse(path.read_text())
    lookups = sum(1 for n in ast.walk(tree) if _is_lookup(n))
    direct = key = 0
    for fn in _defs(tree):
        bound = {t.id for a in ast.walk(fn) if isinstance(a, ast.Assign) and _is_lookup(a.value)
                 for t in a.targets if isinstance(t, ast.Name)}
        for n in ast.walk(fn):
            base = n.value if isinstance(n, ast.Subscript) else (
                n.func.value if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "get"
                else None)
            if base is None:
                continue
            if _is_lookup(base):
                direct += 1
                key += 1
            elif isinstance(base, ast.Name) and base.id in bound:
                key += 1
    return lookups, direct, key


def spinmodel_loads(paths) -> int:
    return sum(1 for p in paths for n in ast.walk(ast.parse(p.read_text())) if isinstance(n, ast.Call)
               and isinstance(n.func, ast.Attribute) and n.func.attr == "load" and isinstance(n.func.value, ast.Name)
               and n.func.value.id == "SpinModel")


# ------------------------------------------------------------------------------------------- classes, physics
def dict_classes(root: Path, llm: bool = False) -> tuple[int, int, list[str]]:
    n_as = n_from = 0
    missing = []
    for p in _py(root, llm):
        for c in ast.walk(ast.parse(p.read_text())):
            if isinstance(c, ast.ClassDef):
                meths = {b.name for b in c.body if isinstance(b, (ast.FunctionDef, ast.AsyncFunctionDef))}
                if "as_dict" in meths:
                    n_as += 1
                    n_from += "from_dict" in meths
                    if "from_dict" not in meths:
                        missing.append(f"{_rel(root, p)}:{c.name}")
    return n_as, n_from, missing


def search_loops(root: Path) -> list[str]:
    out = []
    for p in _py(root):
        for fn in _defs(ast.parse(p.read_text())):
            if fn.name in WINDOW_RULES:
                continue
            if any(isinstance(c, ast.Call) and _name(c) in WINDOW_RULES for c in ast.walk(fn)):
                out.append(f"{_rel(root, p)}:{fn.name}")
    return sorted(set(out))


def mean_field_sites(root: Path) -> list[str]:
    out = []
    for p in _py(root):
        for fn in _defs(ast.parse(p.read_text())):
            for c in ast.walk(fn):
                if isinstance(c, ast.Call) and _name(c) == "sum" and c.args and any(
                        isinstance(a, ast.Call) and _name(a) == "abs" and "J_iso" in ast.unparse(a)
                        for a in ast.walk(c.args[0])):
                    out.append(f"{_rel(root, p)}:{fn.name}")
    return sorted(set(out))


def class_homes(root: Path, names) -> dict[str, list[str]]:
    out = {n: [] for n in names}
    for p in _py(root):
        for c in ast.walk(ast.parse(p.read_text())):
            if isinstance(c, ast.ClassDef) and c.name in out:
                out[c.name].append(_rel(root, p))
    return out


def experiment_homes(root: Path) -> list[str]:
    return [_rel(root, p) for p in _py(root) for n in ast.parse(p.read_text()).body
            if isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "EXPERIMENT" for t in n.targets)]


def workflow_plotters(root: Path) -> list[str]:
    """Functions in workflows/ that draw (call savefig, subplots or a save_figure helper)."""
    out = []
    for p in sorted((root / "wannmag/workflows").glob("*.py")):
        for fn in _defs(ast.parse(p.read_text())):
            if any(isinstance(c, ast.Call) and _name(c) in ("savefig", "subplots", "save_figure") for c in ast.walk(fn)):
                out.append(f"{p.name}:{fn.name}")
    return sorted(set(out))


def savefig_sites(root: Path) -> int:
    return sum(1 for p in _py(root) for c in ast.walk(ast.parse(p.read_text()))
               if isinstance(c, ast.Call) and _name(c) == "savefig")


def public_api(root: Path) -> str:
    text = (root / "wannmag/__init__.py").read_text()
    names = ["SpinModel", "read_structure", "read_w90", "build_workflow", "run_workflow"]
    found = sum(('"' + n + '"') in text for n in names)
    return f"{found} of {len(names)}"


# ------------------------------------------------------------------------------------------- imports, sizes
def import_cycles(root: Path) -> list[list[str]]:
    import_graph, cycles = _cycle_tools()
    return cycles(import_graph(root / "wannmag"))


def local_import_nodes(paths) -> int:
    seen = set()
    for p in paths:
        for fn in _defs(ast.parse(p.read_text())):
            for x in ast.walk(fn):
                if isinstance(x, (ast.Import, ast.ImportFrom)):
                    seen.add((p, x.lineno, x.col_offset))
    return len(seen)


def lines(p: Path) -> int:
    return len(p.read_text().splitlines()) if p.exists() else 0


def package_lines(root: Path, rel: str) -> str:
    f, d = root / f"{rel}.py", root / rel
    if f.exists():
        return f"{lines(f)} (one file)"
    if d.is_dir():
        mods = sorted(d.glob("*.py"), key=lines, reverse=True)
        return f"{sum(map(lines, mods))} in {len(mods)} files, largest {mods[0].name} {lines(mods[0])}"
    return "-"


def biggest(root: Path, n: int = 6) -> list[str]:
    ps = sorted(_py(root), key=lines, reverse=True)[:n]
    return [f"{_rel(root, p)} {lines(p)}" for p in ps]


def long_functions(root: Path, llm: bool = False) -> list[str]:
    out = []
    for p in _py(root, llm):
        for fn in _defs(ast.parse(p.read_text())):
            n = fn.end_lineno - fn.lineno + 1
            if n > LONG:
                out.append(f"{_rel(root, p)}:{fn.name} {n}")
    return sorted(out)


def function_length(root: Path, name: str) -> str:
    hits = [f"{fn.end_lineno - fn.lineno + 1}" for p in _py(root) for fn in _defs(ast.parse(p.read_text()))
            if fn.name == name]
    return "/".join(hits) or "-"


# ------------------------------------------------------------------------------------------- table
def measure(root: Path) -> dict:
    run = root / "wannmag/workflows/run.py"
    wf = sorted((root / "wannmag/workflows").glob("*.py"))
    n_as, n_from, missing = dict_classes(root)
    n_as_l, n_from_l, _ = dict_classes(root, llm=True)
    lk, direct, key = step_dict_reads(run)
    vac = root / "wannmag/workflows/vacancy.py"
    vlk, vdirect, vkey = step_dict_reads(vac)
    cyc = import_cycles(root)
    reads = structure_path_reads(root)
    loops = search_loops(root)
    mf = mean_field_sites(root)
    homes = class_homes(root, ["NearVacancyJ", "TcResult", "RPAResult"])
    return {
        "structure-path reads, run.py": [r for r in reads if r.startswith("run.py")],
        "structure-path reads, vacancy.py": [r for r in reads if r.startswith("vacancy.py")],
        "run.py: ctx step lookups": lk,
        "run.py: ctx[step][key] direct reads": direct,
        "run.py: step-dict key reads (incl. via locals)": key,
        "vacancy.py: ctx[step][key] direct reads": vdirect,
        "vacancy.py: step-dict key reads (incl. via locals)": vkey,
        "SpinModel.load in run.py": spinmodel_loads([run]),
        "SpinModel.load in workflows/": spinmodel_loads(wf),
        "fit_soc_records calls in run.py": sum(1 for c in ast.walk(ast.parse(run.read_text()))
                                               if isinstance(c, ast.Call) and _name(c) == "fit_soc_records"),
        "classes with as_dict": n_as,
        "... of them with from_dict": (n_from, missing),
        "classes with as_dict / from_dict incl. llm": f"{n_as_l} / {n_from_l}",
        "Tc further-pass loops (callers of window rules)": loops,
        "... of them outside magnetism/montecarlo": [x for x in loops if "magnetism/montecarlo" not in x],
        "mean-field window computations": mf,
        "NearVacancyJ defined in": homes["NearVacancyJ"],
        "TcResult / RPAResult classes": f"{len(homes['TcResult'])} / {len(homes['RPAResult'])}",
        "EXPERIMENT defined in": experiment_homes(root),
        "drawing functions in workflows/": workflow_plotters(root),
        "savefig call sites": savefig_sites(root),
        "public API in wannmag/__init__": public_api(root),
        "import cycles (all of wannmag, llm incl.)": [" <-> ".join(c) for c in cyc],
        "function-level imports, wannmag": local_import_nodes(_py(root)),
        "function-level imports, wannmag + llm": local_import_nodes(_py(root, llm=True)),
        "function-level imports, wannmag w/o commands, cli": local_import_nodes(
            p for p in _py(root) if "commands" not in p.parts and p.name != "cli.py"),
        "function-level imports, run.py": local_import_nodes([run]),
        "magnetism/io lines": package_lines(root, "wannmag/magnetism/io"),
        "tightbinding/w90 lines": package_lines(root, "wannmag/tightbinding/w90"),
        "read_magnopy lines": function_length(root, "read_magnopy"),
        "run.py / vacancy.py lines": f"{lines(run)} / {lines(vac)}",
        "biggest files": biggest(root),
        f"functions > {LONG} lines, wannmag": long_functions(root),
        f"functions > {LONG} lines, wannmag + llm": len(long_functions(root, llm=True)),
    }


def _cell(v, verbose: bool) -> str:
    if isinstance(v, tuple):  # (count, listing)
        return _cell(v[0], False) + (("\n      " + "\n      ".join(v[1])) if verbose and v[1] else "")
    if isinstance(v, list):
        return str(len(v)) + (("\n      " + "\n      ".join(v)) if verbose and v else "")
    return str(v)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", type=Path, help="source tree of the 'before' column")
    ap.add_argument("--after", type=Path, default=HERE, help="source tree of the 'after' column (default: this one)")
    ap.add_argument("-v", "--verbose", action="store_true", help="list what each count counts")
    a = ap.parse_args(argv)
    cols = ([("before", measure(a.before))] if a.before else []) + [("after" if a.before else "now", measure(a.after))]
    w = max(map(len, cols[0][1]))
    print(f"{'':{w}s}  " + "  ".join(f"{c:>12s}" for c, _ in cols))
    for k in cols[0][1]:
        cells = [_cell(m[k], False) for _, m in cols]
        print(f"{k:{w}s}  " + "  ".join(f"{c:>12s}" if len(c) <= 12 else c for c in cells))
    if a.verbose:
        for c, m in cols:
            print(f"\n== {c}: {a.before if c == 'before' else a.after}")
            for k, v in m.items():
                if isinstance(v, (list, tuple)):
                    print(f"{k}: {_cell(v, True)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
