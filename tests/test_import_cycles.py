"""No import cycle inside ``wannmag`` (issue 22), the optional ``wannmag.llm`` included; ``wannmag.llm`` and the
physics side do not import each other.

Every ``import`` of a wannmag module counts — module level and inside functions, where a cycle hides from
``python -X importtime``.  The cycles ``workflows.run`` ↔ ``summary`` ↔ ``vacancy`` (the measured reference values
now in ``workflows.reference_values``, ``_client``/``_map`` in ``workflows.parallel``),
``magnetism.montecarlo.dilution`` ↔ ``holes`` (``random_vacancies`` now in ``montecarlo.lattice``) and
``llm.common.lora`` ↔ ``model`` ↔ ``adapter`` (``add_lora``/``target_layers``, which resolve role names through the
adapter, now in ``llm.common.lora_targets``) are gone."""

import ast
from pathlib import Path

import pytest

import wannmag

CHECKED = ["wannmag", "wannmag.llm"]


def import_graph(root: Path) -> dict[str, set[str]]:
    """{module: modules of the same top-level package it imports} for the package directory ``root``."""
    mods = {}
    for p in root.rglob("*.py"):
        parts = list(p.relative_to(root.parent).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        mods[".".join(parts[:-1] if is_pkg else parts)] = (p, is_pkg)
    graph = {}
    for name, (p, is_pkg) in mods.items():
        deps = set()
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[:len(base) - node.level + 1] if node.level else []
                mod = ".".join(base + ([node.module] if node.module else []))
                targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in mods else mod for a in node.names]
            else:
                continue
            for t in targets:
                while t and t not in mods:
                    t = t.rpartition(".")[0]
                if t and t != name:
                    deps.add(t)
        graph[name] = deps
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], 0
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_a_function_level_import_cycle_is_found(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .b import g\n\ndef f():\n    return g()\n")
    (pkg / "b.py").write_text("def g():\n    from .a import f\n    return f\n")
    (pkg / "c.py").write_text("from . import a\n")
    assert cycles(import_graph(pkg)) == [["pkg.a", "pkg.b"]]


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


@pytest.mark.parametrize("prefix", CHECKED)
def test_no_import_cycle(prefix):
    graph = import_graph(Path(wannmag.__file__).parent)
    assert any(m.startswith(prefix) for m in graph)
    inside = [c for c in cycles(graph) if any(_under(m, prefix) for m in c)]
    assert inside == []


def test_llm_and_the_physics_side_do_not_import_each_other():
    graph = import_graph(Path(wannmag.__file__).parent)
    assert any(_under(m, "wannmag.llm") for m in graph)
    across = sorted((m, d) for m, deps in graph.items() for d in deps
                    if _under(m, "wannmag.llm") != _under(d, "wannmag.llm"))
    assert across == []
