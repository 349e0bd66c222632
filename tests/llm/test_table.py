"""``python -m wannmag.llm.table`` (issue 23 item 3): one command regenerates every results table of
``wannmag/llm/README.md``.  Checked here at the ``--tiny`` size: every README table (headers and row labels) is one of
the command's tables, every row is produced, every number is finite and shown as the JSON holds it, the Markdown
parses back into the README's columns, and two runs with the same seeds give identical numbers.  The run of all 15
tables (twice, as a subprocess) is ``slow``; the default run checks a cheap subset (twice, in process)."""

import json
import math
import pathlib
import re
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

from wannmag.llm import table as T  # noqa: E402

README = pathlib.Path(T.__file__).with_name("README.md")
SUBSET = ("soft_thinking", "kape", "cd_rlhf", "ma_rlhf_control")
NUM = re.compile(r"(?<![>\w.])([+\-−]?)(\d+(?:\.\d+)?)(k?)")


def readme_text() -> str:
    return README.read_text(encoding="utf-8")


def shown_numbers(text: str) -> list[tuple[float, int]]:
    """Numbers in a cell's text (parenthesised remarks dropped) as (value, decimals)."""
    out = []
    for sign, digits, k in NUM.findall(re.sub(r"\(.*?\)", "", text)):
        dec = len(digits.split(".")[1]) if "." in digits else 0
        v = float(digits) * (-1 if sign in "-−" and sign else 1)
        out.append((v * 1e3 if k else v, dec))
    return out


def check_result(res: dict, tiny_ids) -> None:
    """Everything a result must satisfy against the README."""
    md = readme_text()
    spec = {t.id: t for t in T.TABLES}
    assert [t["id"] for t in res["tables"]] == list(tiny_ids)
    for tab in res["tables"]:
        t = spec[tab["id"]]
        ref = T.readme_table(t, md)
        assert ref is not None, tab["id"]
        # same columns and the same row labels as the README table
        assert tab["headers"] == ref["headers"]
        k = tab["key_columns"]
        assert [[T.normalise_key(c) for c in r["key"]] for r in tab["rows"]] == \
            [[T.normalise_key(c) for c in r[:k]] for r in ref["rows"]]
        for r in tab["rows"]:
            assert len(r["cells"]) == len(r["values"]) == len(tab["headers"])
            assert r["cells"][:k] == r["key"]
            numeric = 0
            for text, vals in zip(r["cells"], r["values"]):
                assert text.strip(), (tab["id"], r["key"])
                if not vals:
                    continue
                numeric += 1
                assert all(math.isfinite(v) for v in vals), (tab["id"], r["key"], text)
                shown = shown_numbers(text)
                assert len(shown) == len(vals), (text, vals)
                for (v, dec), x in zip(shown, vals):   # the text shows the JSON's number, rounded
                    scale = 1e3 if text.endswith("k") else 1.0
                    assert abs(v - x) <= 0.5001 * 10 ** -dec * scale + 1e-9, (tab["id"], text, x)
            assert numeric >= 1
    # the Markdown parses back into the README's columns, row for row
    parsed = T.parse_markdown_tables(T.render(res))
    assert len(parsed) == len(res["tables"])
    for p, tab in zip(parsed, res["tables"]):
        assert p["headers"] == T.readme_table(spec[tab["id"]], md)["headers"]
        assert p["rows"] == [r["cells"] for r in tab["rows"]]


def values_of(res: dict) -> list:
    return [(t["id"], [(r["cells"], r["values"]) for r in t["rows"]]) for t in res["tables"]]


def test_every_readme_results_table_is_one_of_the_commands_tables():
    md = readme_text()
    found = []
    for t in T.TABLES:
        ref = T.readme_table(t, md)
        assert ref is not None, f"README has no table with the headers of {t.id}"
        assert [tuple(T.normalise_key(c) for c in r[:t.key_columns]) for r in ref["rows"]] == \
            [tuple(T.normalise_key(c) for c in k) for k in t.rows], t.id
        found.append(tuple(ref["headers"]))
    # and the README's other tables are the API/kernel lists, not results
    others = [x["headers"] for x in T.parse_markdown_tables(md) if tuple(x["headers"]) not in found]
    assert sorted(o[0] for o in others) == ["kernel", "module"]
    assert len(T.TABLES) == 15 and len(set(T.TABLE_IDS)) == 15


def test_cells_and_compare_are_exact():
    assert T.mean_sd([1.0, 2.0, 3.0])["text"] == "2.000 ± 1.000"
    assert T.mean_sd([0.25])["text"] == "0.250"
    assert T.signed(-0.047)["text"] == "−0.047" and T.signed(0.018)["text"] == "+0.018"
    assert T.paired([0.2, 0.3, 0.25])["text"] == "+0.250 ± 0.050 (all 3 seeds)"
    assert T.paired([0.01, -0.03])["text"] == "−0.010 ± 0.028 (**within noise**)"
    assert T.kilo(70500.0)["text"] == "70.5k"
    # a result holding exactly the README's cells reproduces it; one changed cell is one difference
    md = readme_text()
    tables = []
    for t in T.TABLES:
        ref = T.readme_table(t, md)
        tables.append({"id": t.id, "headers": ref["headers"], "key_columns": t.key_columns,
                       "rows": [{"cells": list(r)} for r in ref["rows"]]})
    assert T.compare({"tables": tables}, md) == []
    tables[0]["rows"][1]["cells"][2] = "9.999"
    assert T.compare({"tables": tables}, md) == ["bee_rag 8 | H balanced (solve): README '2.170', run '9.999'"]


def test_tiny_subset_twice_is_complete_finite_and_deterministic(tmp_path, capsys):
    outs = []
    for i in range(2):
        out = tmp_path / f"t{i}.json"
        assert T.main(["--tiny", "--only", *SUBSET, "--out", str(out), "--markdown"]) == 0
        printed = capsys.readouterr().out
        res = json.loads(out.read_text(encoding="utf-8"))
        assert res["tiny"] and res["seed"] == 0
        assert printed == T.render(res)
        check_result(res, SUBSET)
        outs.append(res)
    assert values_of(outs[0]) == values_of(outs[1])
    # multi-seed tables have 2 seeds at the tiny size, so every spread column has a spread
    assert {t["id"]: t["seeds"] for t in outs[0]["tables"]} == {
        "soft_thinking": [0], "kape": [0], "cd_rlhf": [0, 1], "ma_rlhf_control": [0, 1]}
    assert all("±" in r["cells"][1] for r in outs[0]["tables"][2]["rows"])
    # --render prints the same Markdown from the JSON without running anything
    assert T.main(["--render", str(tmp_path / "t0.json")]) == 0
    assert capsys.readouterr().out == T.render(outs[0])


@pytest.mark.slow
def test_tiny_all_tables_twice_by_the_command(tmp_path):
    """The one command, as a user runs it, at the tiny size, twice (~70 s of one idle core)."""
    res = []
    for i in range(2):
        out = tmp_path / f"all{i}.json"
        p = subprocess.run([sys.executable, "-m", "wannmag.llm.table", "--tiny", "--out", str(out), "--markdown",
                            "--compare", str(README)], capture_output=True, text=True, timeout=900)
        assert p.returncode == 0, p.stderr[-2000:]
        r = json.loads(out.read_text(encoding="utf-8"))
        assert p.stdout.startswith(T.render(r))
        assert "README cells not reproduced" in p.stdout
        check_result(r, T.TABLE_IDS)
        res.append(r)
    assert values_of(res[0]) == values_of(res[1])
