"""One command for every results table of ``wannmag/llm/README.md`` (issue 23, item 3).

    python -m wannmag.llm.table [--tiny] [--seeds N] [--seed S] [--only ID ...] [--out FILE.json] [--markdown]
                                [--plots DIR] [--compare README.md] [--threads 1]
    python -m wannmag.llm.table --render FILE.json          # Markdown from a saved JSON, nothing is run

Each table of the README (the 12 experiments, the Swift-Study summary and the three issue-23 controls) is one entry
of :data:`TABLES`: the experiment's ``run``/``run_control`` is called in this process (``torch`` threads as given,
seeds as the experiment defines them), its return value is turned into the table's rows, and everything goes into a
JSON file (every cell as its text and the numbers it shows); ``--markdown`` prints the tables in the README's format
(``| a | b |`` / ``|---|---|``), mean ± sample std over seeds where the README table has spreads.

``--seeds N`` sets the number of seeds (``S … S+N-1``) of every multi-seed table (the README's single-seed tables —
BEE-RAG, soft thinking, KAPE, Swift Study, RioRAG — always use seed ``S``); without it each experiment's own default
is used (the README's), and ``--tiny`` uses 2 so that every spread column has a spread.  ``--tiny`` runs every
experiment at its seconds-long smoke size (numbers not meaningful, same rows and columns).  ``--compare README.md``
lists every cell of the README tables that the run does not reproduce.  The full size is what the README shows; it
takes ~45 min of one idle core (see ``wannmag/llm/README.md``).

The experiments' own printout goes to stderr; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

MINUS = "\u2212"
DASH = "–"


# --- cells -------------------------------------------------------------------------------------------------------

def cell(text: str, values: Sequence[float] = ()) -> dict:
    """A table cell: its text and the numbers it shows (full precision)."""
    return {"text": text, "values": [float(v) for v in values]}


def num(x: float, fmt: str = ".3f") -> dict:
    return cell(format(x, fmt), [x])


def signed(x: float, fmt: str = ".3f") -> dict:
    """``+0.018`` / ``−0.047`` (typographic minus, as in the README)."""
    return cell(format(x, "+" + fmt).replace("-", MINUS), [x])


def mean_sd(xs: Sequence[float], fmt: str = ".3f") -> dict:
    """``mean ± sample std`` over seeds (just the value for one seed)."""
    xs = [float(x) for x in xs]
    if len(xs) == 1:
        return num(xs[0], fmt)
    m, s = statistics.mean(xs), statistics.stdev(xs)
    return cell(f"{m:{fmt}} ± {s:{fmt}}", [m, s])


def mean_only(xs: Sequence[float], fmt: str = ".3f") -> dict:
    return num(statistics.mean(xs), fmt)


def per_seed(xs: Sequence[float], fmt: str = ".3f") -> dict:
    return cell(" ".join(format(x, fmt) for x in xs), xs)


def kilo(x: float) -> dict:
    return cell(f"{x / 1e3:.1f}k", [x])


def text(s: str) -> dict:
    return cell(s)


def paired(diffs: Sequence[float]) -> dict:
    """A paired difference over seeds: ``+m ± s`` and ``(**within noise**)`` if |m| ≤ s, ``(all N seeds)`` if every
    seed's difference has the sign of the mean."""
    if len(diffs) == 1:
        return signed(diffs[0])
    m, s = statistics.mean(diffs), statistics.stdev(diffs)
    t = f"{format(m, '+.3f')} ± {s:.3f}".replace("-", MINUS)
    if abs(m) <= s:
        t += " (**within noise**)"
    elif all((d > 0) == (m > 0) and d != 0 for d in diffs):
        t += f" (all {len(diffs)} seeds)"
    return cell(t, [m, s])


def normalise_key(label: str) -> str:
    """Row labels that carry a run-dependent count (KAPE's ``26 random neurons off``) compare without it."""
    return re.sub(r"^\d+ (?=\D)", "", label.strip())


# --- the tables ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Table:
    id: str
    title: str
    command: str                     # the experiment's own entry point
    headers: tuple[str, ...]         # exactly the README's
    rows: tuple[tuple[str, ...], ...]  # the README's row keys (first ``key_columns`` cells), in order
    build: Callable                  # build(seed, tiny, n_seeds, plot) -> list of rows (lists of cells)
    multi_seed: bool = False
    key_columns: int = 1
    default_seeds: int = 1         # the README's number of seeds (multi-seed tables)


def _exp(name: str):
    import importlib
    return importlib.import_module(f"wannmag.llm.experiments.{name}")


BEE_MODES = ("vanilla", "balanced (solve)", "balanced (closed form)", "balanced (learned)")
BEE_N = (4, 8, 16, 32)
BEE_CONTROL_N = (8, 32, 64, 128)


def _bee_rag(seed, tiny, n_seeds, plot):
    r = _exp("bee_rag").run(seed, tiny, plot, ns=BEE_N)
    rows = []
    for i, n in enumerate(r["n"]):
        rows.append([text(str(n))] + [num(r[m]["ent"][i]) for m in BEE_MODES]
                    + [num(r[m]["acc"][i]) for m in BEE_MODES])
    return rows


def _bee_rag_control(seed, tiny, n_seeds, plot):
    acc = _exp("bee_rag").run_control(seed, tiny, n_seeds=n_seeds, ns=BEE_CONTROL_N)
    return [[text(str(n))] + [mean_sd(acc[(m, n)]) for m in BEE_MODES[:3]] for n in BEE_CONTROL_N]


SOFT_LABELS = {"greedy": "greedy", "sample": "sample (T=1)", "soft": "vanilla soft", "dirichlet": "Dirichlet (α=1)",
               "gumbel": "Gumbel-softmax (τ=0.5)"}


def _soft_thinking(seed, tiny, n_seeds, plot):
    r = _exp("soft_thinking").run(seed, tiny, plot, k=8)
    return [[text(SOFT_LABELS[m]), num(p1), num(pk)] for m, (p1, pk) in r["pass"].items()]


def _kape(seed, tiny, n_seeds, plot):
    r = _exp("kape").run(seed, tiny, plot)
    return [[text(k), num(v["context"]), num(v["memory"]), signed(v["margin"]), num(v["closed-book acc"])]
            for k, v in r.items()]


def _swift_study(seed, tiny, n_seeds, plot):
    from wannmag.llm.common import spearman
    from wannmag.llm.experiments.swift_study import STRATEGIES
    r = _exp("swift_study").run(seed, tiny, plot)
    pred, actual = r["pred"], r["actual"]
    sets = sorted({e for _, e in pred})
    rows, agree = [], 0
    for e in sets:
        rho = spearman([pred[(s, e)] for s in STRATEGIES], [actual[(s, e)] for s in STRATEGIES])
        p = max(("cot", "direct"), key=lambda s: pred[(s, e)])
        a = max(("cot", "direct"), key=lambda s: actual[(s, e)])
        agree += p == a
        rows.append([text(e), num(rho), text(p), text(a)])
    rows.append([text(f"all {len(pred)} pairs"), num(r["spearman"]), text(f"{agree} of {len(sets)} agree"), text(DASH)])
    return rows


RIO_KEYS = ("recall", "contradictory", "length", "reward")


def _riorag(seed, tiny, n_seeds, plot):
    r = _exp("riorag").run(seed, tiny, plot)
    return [[text(k)] + [num(v[c]) for c in RIO_KEYS] for k, v in r.items()]


def _riorag_control(seed, tiny, n_seeds, plot):
    r = _exp("riorag").run_control(seed, tiny, n_seeds=n_seeds)
    return [[text(k)] + [mean_sd(v[c]) for c in RIO_KEYS + ("exact",)] for k, v in r.items()]


def _beamlora(seed, tiny, n_seeds, plot):
    r = _exp("beamlora").run(seed, tiny, plot, n_seeds=n_seeds, ranks=(2, 4))
    return [[text(f"{kind} r={rank}"), mean_sd(v["loss"]), mean_sd(v["acc"]), per_seed(v["acc"]),
             num(statistics.mean(v["pruned"]), ".1f")] for (kind, rank), v in r.items()]


def _apex(seed, tiny, n_seeds, plot):
    r = _exp("apex").run(seed, tiny, plot, n_seeds=n_seeds)
    return [[text(k), mean_sd(v["loss"]), mean_sd(v["acc"]), mean_sd(v["acc_pre"]), mean_sd(v["erank"], ".2f"),
             num(int(statistics.mean(v["budget"])), "d")] for k, v in r.items()]


def _itt(seed, tiny, n_seeds, plot):
    r = _exp("itt").run(seed, tiny, plot, n_seeds=n_seeds)
    base = statistics.mean(r["baseline (1 layer)"]["flops"])
    return [[text(k), mean_only(v["ppl"]), per_seed(v["ppl"]), kilo(statistics.mean(v["flops"])),
             num(statistics.mean(v["flops"]) / base, ".2f")] for k, v in r.items()]


def _mohd(seed, tiny, n_seeds, plot):
    r = _exp("mohd").run(seed, tiny, plot, n_seeds=n_seeds)
    return [[text(k), mean_only(v["ppl"]), per_seed(v["ppl"]), num(v["active"], ".2f"), kilo(v["flops"]),
             num(v["params"], "d")] for k, v in r.items()]


def _upit(seed, tiny, n_seeds, plot):
    r = _exp("upit").run(seed, tiny, plot, n_seeds=n_seeds)
    per = r["per_seed"]
    rows = []
    for name in (k for k in per[0] if not k.startswith("_")):
        ppl = [p[name]["ppl"] for p in per]
        usage = [p[name]["usage"] for p in per if p[name]["usage"] is not None]
        acc = [p[name]["router_acc"] for p in per if p[name]["router_acc"] is not None]
        rows.append([text(name), mean_only(ppl), per_seed(ppl), mean_only(usage, ".2f") if usage else text(DASH),
                     mean_only(acc, ".2f") if acc else text(DASH)])
    return rows


def _cd_rlhf(seed, tiny, n_seeds, plot):
    r = _exp("cd_rlhf").run(seed, tiny, plot, n_seeds=n_seeds)
    return [[text(k)] + [mean_sd(v[c]) for c in ("reward", "d1", "d2", "d3", "unique")] for k, v in r.items()]


def _ma_rlhf(seed, tiny, n_seeds, plot):
    r = _exp("ma_rlhf").run(seed, tiny, plot, n_seeds=n_seeds)
    steps = 4 if tiny else 120
    rows = []
    for k, v in r.items():
        hits = cell(" ".join(str(h) if h is not None else f">{steps}" for h in v["hit"]),
                    [h for h in v["hit"] if h is not None])
        rows.append([text(k), mean_only(v["last"]), hits, mean_only(v["eval"]), per_seed(v["eval"]),
                     mean_only(v["mlen"], ".2f")])
    return rows


MA_CONTROL = ("token-level PPO", "macro, fixed n=4", "macro, perplexity cuts")
MA_LAMS = (1.0, 0.95)


def _ma_rlhf_control(seed, tiny, n_seeds, plot):
    r = _exp("ma_rlhf").run_control(seed, tiny, n_seeds=n_seeds, lams=MA_LAMS, variants=MA_CONTROL)
    rows = []
    for lam in MA_LAMS:
        tok = r[("token-level PPO", lam)]
        for name in MA_CONTROL:
            v = r[(name, lam)]
            pc = text(DASH) if name == "token-level PPO" else paired([a - b for a, b in zip(v, tok)])
            rows.append([text(name), text(f"{lam:g}"), mean_sd(v), per_seed(v), pc])
    return rows


TABLES: tuple[Table, ...] = (
    Table("bee_rag", "BEE-RAG", "python -m wannmag.llm.experiments.bee_rag",
          ("n docs", "H vanilla", "H balanced (solve)", "H closed form", "H learned", "acc vanilla", "acc solve",
           "acc closed form", "acc learned"), tuple((str(n),) for n in BEE_N), _bee_rag),
    Table("bee_rag_control", "BEE-RAG control (issue 23)", "python -m wannmag.llm.experiments.bee_rag --control",
          ("n docs", "acc vanilla", "acc balanced (solve)", "acc balanced (closed form)"),
          tuple((str(n),) for n in BEE_CONTROL_N), _bee_rag_control, multi_seed=True, default_seeds=5),
    Table("soft_thinking", "Randomized Soft Thinking", "python -m wannmag.llm.experiments.soft_thinking",
          ("decoding", "pass@1", "pass@8"), tuple((v,) for v in SOFT_LABELS.values()), _soft_thinking),
    Table("kape", "KAPE", "python -m wannmag.llm.experiments.kape",
          ("condition", "answers = context", "answers = memory", "log p(ctx) − log p(mem)", "closed-book acc"),
          (("baseline",), ("internal neurons off",), ("external neurons off",), ("26 random neurons off",)), _kape),
    Table("swift_study", "Swift Study", "python -m wannmag.llm.experiments.swift_study",
          ("eval set", "Spearman predicted vs actual", "cot vs direct: predicted better", "actually better"),
          (("2-step",), ("3-step",), ("4-step",), ("all 15 pairs",)), _swift_study),
    Table("riorag", "RioRAG", "python -m wannmag.llm.experiments.riorag",
          ("policy", "fact recall", "contradictory", "length [tokens]", "reward"),
          (("SFT (sloppy writer)",), ("GRPO, length decay off",), ("GRPO, length decay on",)), _riorag),
    Table("riorag_control", "RioRAG control (issue 23)", "python -m wannmag.llm.experiments.riorag --control",
          ("policy", "fact recall", "contradictory", "length", "nugget reward (decay on)", "exact answer"),
          (("SFT",), ("GRPO, nugget reward + decay",), ("GRPO, plain answer match",)), _riorag_control,
          multi_seed=True, default_seeds=5),
    Table("beamlora", "BeamLoRA", "python -m wannmag.llm.experiments.beamlora",
          ("method", "held-out loss", "accuracy", "accuracy per seed", "ranks re-initialised"),
          (("LoRA r=2",), ("BeamLoRA r=2",), ("LoRA r=4",), ("BeamLoRA r=4",)), _beamlora, multi_seed=True,
          default_seeds=5),
    Table("apex", "APEX", "python -m wannmag.llm.experiments.apex",
          ("method", "held-out loss", "accuracy (shifted)", "accuracy (pretrain dist.)", "mean eff. rank",
           "trainable entries"), (("full fine-tuning",), ("APEX",), ("random T/D",)), _apex,
          multi_seed=True, default_seeds=3),
    Table("itt", "ITT", "python -m wannmag.llm.experiments.itt",
          ("model", "held-out perplexity", "per seed", "FLOPs/token (eval)", "× baseline"),
          (("baseline (1 layer)",), ("loop (×3)",), ("ITT (ρ=0.5, 2 steps)",), ("ITT w/o residual",)), _itt,
          multi_seed=True, default_seeds=2),
    Table("mohd", "MoHD", "python -m wannmag.llm.experiments.mohd",
          ("model", "held-out perplexity", "per seed", "active fraction", "FLOPs/token", "parameters"),
          (("dense d=64",), ("MoHD d=64, 50% active",), ("MoHD 50%, no scaling/fusion",),
           ("dense d=32 (active size)",)),
          _mohd, multi_seed=True, default_seeds=2),
    Table("upit", "UpIT", "python -m wannmag.llm.experiments.upit",
          ("model", "held-out perplexity", "per seed", f"expert usage entropy (max {math.log(6):.2f})",
           "router seed-label acc."), (("dense (continued)",), ("plain upcycling",), ("UpIT",)), _upit,
          multi_seed=True, default_seeds=2),
    Table("cd_rlhf", "CD-RLHF", "python -m wannmag.llm.experiments.cd_rlhf",
          ("policy", "reward", "distinct-1", "distinct-2", "distinct-3", "unique responses"),
          (("PPO",), ("PPO + curiosity η=0.02",), ("PPO + curiosity η=0.05",), ("PPO + curiosity η=0.5",)), _cd_rlhf,
          multi_seed=True, default_seeds=3),
    Table("ma_rlhf", "MA-RLHF", "python -m wannmag.llm.experiments.ma_rlhf",
          ("advantage", "reward, last 20 steps", "step to 0.5 (per seed)", "reward after (512 samples)", "per seed",
           "mean macro length"),
          (("token-level PPO",), ("macro, fixed n=2",), ("macro, fixed n=4",), ("macro, random 2-5",),
           ("macro, perplexity cuts",)), _ma_rlhf, multi_seed=True, default_seeds=2),
    Table("ma_rlhf_control", "MA-RLHF control: matched GAE λ (issue 23)",
          "python -m wannmag.llm.experiments.ma_rlhf --control",
          ("advantage", "GAE λ", "reward after", "per seed", "paired vs token-level at the same λ"),
          tuple((name, f"{lam:g}") for lam in MA_LAMS for name in MA_CONTROL), _ma_rlhf_control, multi_seed=True,
          key_columns=2, default_seeds=5),
)
TABLE_IDS = tuple(t.id for t in TABLES)


# --- running and rendering -----------------------------------------------------------------------------------------

def run_table(t: Table, seed: int = 0, tiny: bool = False, seeds: int | None = None, plots: str | None = None,
              log=sys.stderr) -> dict:
    """Run the experiment behind ``t`` and return the table as a JSON-able dict (``headers``, ``rows`` with ``key``,
    ``cells`` (texts) and ``values`` (numbers per cell), ``seeds``, ``seconds``)."""
    n_seeds = (seeds or (2 if tiny else t.default_seeds)) if t.multi_seed else None
    plot = os.path.join(plots, f"{t.id}.png") if plots else None
    t0 = time.time()
    with contextlib.redirect_stdout(log):
        rows = t.build(seed, tiny, n_seeds, plot)
    keys = [tuple(normalise_key(c["text"]) for c in r[:t.key_columns]) for r in rows]
    want = [tuple(normalise_key(k) for k in key) for key in t.rows]
    if keys != want or any(len(r) != len(t.headers) for r in rows):
        raise RuntimeError(f"table {t.id}: rows {keys} do not match the README's {want}")
    return {"id": t.id, "title": t.title, "command": t.command + (" --tiny" if tiny else ""),
            "headers": list(t.headers), "key_columns": t.key_columns,
            "seeds": [seed + i for i in range(n_seeds or 1)],
            "rows": [{"key": [c["text"] for c in r[:t.key_columns]], "cells": [c["text"] for c in r],
                      "values": [c["values"] for c in r]} for r in rows],
            "seconds": round(time.time() - t0, 2)}


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """The README's Markdown format: ``| a | b |``, ``|---|---|``, one line per row."""
    line = lambda cells: "| " + " | ".join(cells) + " |"  # noqa: E731
    return "\n".join([line(headers), "|" + "|".join("---" for _ in headers) + "|"] + [line(r) for r in rows])


def render(result: dict) -> str:
    """All tables of a result (``run_tables`` output or its JSON) as Markdown, each under a bold title line."""
    out = []
    for t in result["tables"]:
        out.append(f"**{t['title']}** — `{t['command']}`, seeds {t['seeds']}\n\n"
                   + markdown_table(t["headers"], [r["cells"] for r in t["rows"]]))
    return "\n\n".join(out) + "\n"


def run_tables(ids: Sequence[str] | None = None, seed: int = 0, tiny: bool = False, seeds: int | None = None,
               plots: str | None = None, log=sys.stderr) -> dict:
    """Run the tables ``ids`` (default: all, in README order)."""
    import torch
    chosen = [t for t in TABLES if ids is None or t.id in ids]
    t0 = time.time()
    tables = []
    for t in chosen:
        tables.append(run_table(t, seed, tiny, seeds, plots, log))
        print(f"[wannmag.llm.table] {t.id}: {tables[-1]['seconds']:.1f} s", file=log, flush=True)
    return {"tiny": tiny, "seed": seed, "seeds": seeds, "torch": torch.__version__,
            "threads": torch.get_num_threads(), "seconds": round(time.time() - t0, 2), "tables": tables}


# --- the README's tables -------------------------------------------------------------------------------------------

def parse_markdown_tables(md: str) -> list[dict]:
    """Every Markdown table in ``md`` as ``{"headers": [...], "rows": [[cell, ...], ...]}`` (escaped ``\\|`` kept
    inside cells)."""
    tables, block = [], []
    split = lambda line: [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]  # noqa: E731
    for line in md.splitlines() + [""]:
        if line.lstrip().startswith("|"):
            block.append(line)
            continue
        if len(block) >= 2 and re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", block[1].strip()):
            tables.append({"headers": split(block[0]), "rows": [split(b) for b in block[2:]]})
        block = []
    return tables


def readme_table(t: Table, readme_text: str) -> dict | None:
    """The README table with exactly ``t``'s headers (None if there is none)."""
    hits = [x for x in parse_markdown_tables(readme_text) if tuple(x["headers"]) == t.headers]
    return hits[0] if len(hits) == 1 else None


def compare(result: dict, readme_text: str) -> list[str]:
    """Every README cell that ``result`` does not reproduce (as lines of text; empty = identical)."""
    diffs = []
    spec = {t.id: t for t in TABLES}
    for tab in result["tables"]:
        ref = readme_table(spec[tab["id"]], readme_text)
        if ref is None:
            diffs.append(f"{tab['id']}: no README table with headers {tab['headers']}")
            continue
        k = tab["key_columns"]
        mine = {tuple(normalise_key(c) for c in r["cells"][:k]): r["cells"] for r in tab["rows"]}
        for row in ref["rows"]:
            key = tuple(normalise_key(c) for c in row[:k])
            got = mine.get(key)
            if got is None:
                diffs.append(f"{tab['id']} {key}: row not produced")
                continue
            for h, a, b in zip(tab["headers"], row, got):
                if a != b:
                    diffs.append(f"{tab['id']} {' / '.join(key)} | {h}: README {a!r}, run {b!r}")
    return diffs


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m wannmag.llm.table", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tiny", action="store_true", help="seconds-long smoke size (numbers not meaningful)")
    p.add_argument("--seeds", type=int, default=None, help="seeds of every multi-seed table (default: as the README)")
    p.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    p.add_argument("--only", nargs="+", choices=TABLE_IDS, metavar="ID",
                   help=f"only these tables: {' '.join(TABLE_IDS)}")
    p.add_argument("--out", default=None, help="JSON file (default out/llm/table.json, out/llm/table_tiny.json)")
    p.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    p.add_argument("--plots", default=None, help="directory for the experiments' plots (default: none)")
    p.add_argument("--compare", default=None, metavar="README", help="list the README cells the run does not reproduce")
    p.add_argument("--render", default=None, metavar="JSON", help="print the Markdown of a saved run; runs nothing")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    if a.render:
        with open(a.render, encoding="utf-8") as f:
            print(render(json.load(f)), end="")
        return 0
    if a.seeds is not None and a.seeds < 1:
        p.error("--seeds must be >= 1")
    import torch
    torch.set_num_threads(a.threads)
    result = run_tables(a.only, a.seed, a.tiny, a.seeds, a.plots)
    result["command"] = "python -m wannmag.llm.table " + " ".join(argv if argv is not None else sys.argv[1:])
    out = a.out or os.path.join("out", "llm", "table_tiny.json" if a.tiny else "table.json")
    if os.path.dirname(out):
        os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1, ensure_ascii=False)
    print(f"[wannmag.llm.table] {len(result['tables'])} tables in {result['seconds']:.1f} s -> {out}", file=sys.stderr)
    if a.markdown:
        print(render(result), end="")
    if a.compare:
        with open(a.compare, encoding="utf-8") as f:
            diffs = compare(result, f.read())
        print(f"[wannmag.llm.table] {len(diffs)} README cells not reproduced" + (":" if diffs else ""))
        for d in diffs:
            print("  " + d)
    return 0


if __name__ == "__main__":
    sys.exit(main())
