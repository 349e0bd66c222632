"""ITT: baseline vs loop vs ITT vs ITT without residual thinking connections — perplexity at equal training steps and
forward FLOPs per token.

Task: language modelling on a random order-3 Markov source (8 tokens, 3 successors per context, 512 contexts;
``common.tasks.MarkovLMTask``), sequences of 24 tokens; the exact optimum perplexity is printed.  Model: one
transformer layer (d = 64) — depth is the bottleneck.  Loop: the layer applied 3 times to every token.  ITT: 2
extra thinking steps on the top ρ = 50 % of tokens, residual thinking connections with step encodings φ_t; and
the same with overwriting instead of accumulating.  Same steps, batch, learning rate, seed per variant.
"""

from __future__ import annotations

import math
import statistics
import time

import torch

from wannmag.llm.common import TinyConfig, TinyTransformer, TrainConfig, batch_loss, make_generator, seed_everything, train
from wannmag.llm.common.report import experiment_main, format_table, new_figure, save_figure
from wannmag.llm.common.tasks import MarkovLMTask
from wannmag.llm.itt import flops_per_token, make_itt, selected_fractions

VARIANTS = {
    "baseline (1 layer)": None,
    "loop (×3)": dict(mode="loop", n_think=2),
    "ITT (ρ=0.5, 2 steps)": dict(rho=0.5, n_think=2),
    "ITT w/o residual": dict(rho=0.5, n_think=2, residual=False),
}
SEQ = 24


def run(seed: int = 0, tiny: bool = False, out: str | None = "out/llm/itt.png", n_seeds: int | None = None) -> dict:
    """``n_seeds`` defaults to 1 with ``tiny``, else 2; ``out`` None: no plot."""
    seed_everything(seed)
    t0 = time.time()
    task = MarkovLMTask(n_tokens=8, order=3, branching=3, seed=seed)
    ev = task.sample(128 if tiny else 1024, SEQ, make_generator(seed + 7))
    steps = 15 if tiny else 800
    seeds = [seed + i for i in range(n_seeds or (1 if tiny else 2))]
    res, curves = {}, {}
    for name, kw in VARIANTS.items():
        ppl, flops = [], []
        for s in seeds:
            cfg = TinyConfig(vocab_size=len(task.vocab), d_model=64, n_heads=4, n_layers=1, d_mlp=128, max_len=32)
            model = TinyTransformer(cfg, seed=s)
            if kw:
                make_itt(model, **kw)
            g = make_generator(100 + s)
            curve = train(model, lambda _s: task.sample(32, SEQ, g), TrainConfig(steps=steps, lr=3e-3))
            with torch.no_grad():
                loss = float(batch_loss(model, ev))
            ppl.append(math.exp(loss))
            flops.append(flops_per_token(cfg, SEQ + 2, model.blocks, selected_fractions(model)))
            curves.setdefault(name, []).append(curve)
        res[name] = {"ppl": ppl, "flops": flops}
    base_flops = statistics.mean(res["baseline (1 layer)"]["flops"])
    print(f"ITT on an order-3 Markov source ({steps} steps × 32 sequences of {SEQ} tokens; seeds {seeds}; "
          f"{len(ev['input_ids'])} held-out sequences; optimum perplexity {math.exp(ev['optimal_loss']):.3f})")
    rows = [[k, f"{statistics.mean(v['ppl']):.3f}", " ".join(f"{p:.3f}" for p in v["ppl"]),
             f"{statistics.mean(v['flops']) / 1e3:.1f}k", f"{statistics.mean(v['flops']) / base_flops:.2f}"]
            for k, v in res.items()]
    print(format_table(["model", "held-out perplexity", "per seed", "FLOPs/token (eval)", "× baseline"], rows))
    fig, ax = new_figure(2)
    for name, cs in curves.items():
        mean = torch.tensor(cs).mean(0)
        k = max(1, len(mean) // 40)
        sm = mean.unfold(0, k, k).mean(1).exp()
        ax[0, 0].plot([(i + 0.5) * k for i in range(len(sm))], sm, label=name)
    ax[0, 0].axhline(math.exp(ev["optimal_loss"]), color="0.6", ls="--", label="optimum")
    ax[0, 0].set(xlabel="training step", ylabel="training perplexity", yscale="log")
    ax[0, 0].legend(fontsize=7)
    for name, v in res.items():
        ax[0, 1].scatter([statistics.mean(v["flops"]) / 1e3], [statistics.mean(v["ppl"])], label=name)
    ax[0, 1].set(xlabel="forward kFLOPs per token", ylabel="held-out perplexity")
    save_figure(fig, out)
    print(f"plot: {out}  ({time.time() - t0:.1f} s)")
    return res


def main(argv=None) -> None:
    experiment_main("itt", __doc__, run, argv)


if __name__ == "__main__":
    main()
