"""Printing tables, saving Agg plots and the common command line of the experiments."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence


def format_table(headers: Sequence[str], rows: Sequence[Sequence], floatfmt: str = ".3f") -> str:
    """A plain-text (Markdown-compatible) table."""
    def fmt(v) -> str:
        if isinstance(v, float):
            return format(v, floatfmt)
        return str(v)
    cells = [[fmt(v) for v in r] for r in rows]
    w = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = lambda vals: "| " + " | ".join(v.rjust(w[i]) for i, v in enumerate(vals)) + " |"  # noqa: E731
    sep = "|" + "|".join("-" * (x + 2) for x in w) + "|"
    return "\n".join([line(headers), sep] + [line(c) for c in cells])


def experiment_parser(name: str, description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"python -m wannmag.llm.experiments.{name}", description=description)
    p.add_argument("--out", default=os.path.join("out", "llm", f"{name}.png"), help="plot path (PNG)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tiny", action="store_true", help="a seconds-long smoke run (numbers are not meaningful)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the machine is shared)")
    return p


def experiment_main(name: str, description: str, run, argv=None):
    """The command line shared by the experiments: parse ``--out --seed --tiny --threads``, set torch's thread count
    and call ``run(seed, tiny, out)``."""
    import torch

    args = experiment_parser(name, description).parse_args(argv)
    torch.set_num_threads(args.threads)
    return run(args.seed, args.tiny, args.out)


def new_figure(ncols: int = 1, nrows: int = 1, size: tuple[float, float] = (5.0, 3.6)):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False)
    return fig, axes


def save_figure(fig, path: str | None) -> str | None:
    """Save ``fig`` as PNG at ``path`` and close it; ``path`` None (e.g. ``python -m wannmag.llm.table``) only
    closes it."""
    import matplotlib.pyplot as plt
    if not path:
        plt.close(fig)
        return None
    d = os.path.dirname(path)
    if d:
        os.makedirs(d, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
