"""MoHD: dense vs MoHD at 50 % active hidden dimensions vs a dense model of the same active size.

Task: the order-3 Markov source of the ITT experiment (``MarkovLMTask``, 8 tokens, 512 contexts), sequences of 24
tokens.  Models (2 layers, 4 heads): dense d = 64 (d_mlp 128); MoHD on the same d = 64 model with 8 groups of 8
dimensions, 2 shared + top-2 of 6 routed groups per token and sub-layer (50 % active), Switch load balancing
(weight 0.01); the same without activation scaling and group fusion; dense d = 32 (d_mlp 64) = the active size.
Same steps, batch, learning rate and seeds.  Reported: held-out perplexity, measured active fraction, forward FLOPs
per token and parameters.
"""

from __future__ import annotations

import math
import statistics
import time

import torch

from wannmag.llm.common import TinyConfig, TinyTransformer, TrainConfig, batch_loss, make_generator, seed_everything, train
from wannmag.llm.common.moe import moe_aux_loss
from wannmag.llm.common.report import experiment_main, format_table, new_figure, save_figure
from wannmag.llm.common.tasks import MarkovLMTask
from wannmag.llm.mohd import active_fraction, make_mohd, mohd_flops_per_token

SEQ = 24
MOHD = dict(n_groups=8, n_shared=2, k=2)
VARIANTS = {
    "dense d=64": (64, None),
    "MoHD d=64, 50% active": (64, dict(MOHD)),
    "MoHD 50%, no scaling/fusion": (64, dict(MOHD, scaling=False, fusion=False)),
    "dense d=32 (active size)": (32, None),
}


def run(seed: int = 0, tiny: bool = False, out: str | None = "out/llm/mohd.png", n_seeds: int | None = None) -> dict:
    """``n_seeds`` defaults to 1 with ``tiny``, else 2; ``out`` None: no plot."""
    seed_everything(seed)
    t0 = time.time()
    task = MarkovLMTask(n_tokens=8, order=3, branching=3, seed=seed)
    ev = task.sample(128 if tiny else 1024, SEQ, make_generator(seed + 7))
    steps = 15 if tiny else 600
    seeds = [seed + i for i in range(n_seeds or (1 if tiny else 2))]
    res, curves = {}, {}
    for name, (d, kw) in VARIANTS.items():
        ppl, act = [], []
        for s in seeds:
            cfg = TinyConfig(vocab_size=len(task.vocab), d_model=d, n_heads=4, n_layers=2, d_mlp=2 * d, max_len=32)
            model = TinyTransformer(cfg, seed=s)
            if kw:
                make_mohd(model, **kw)
            g = make_generator(100 + s)
            loss_fn = lambda m, b: batch_loss(m, b) + 0.01 * moe_aux_loss(m)  # noqa: E731
            curve = train(model, lambda _s: task.sample(32, SEQ, g), TrainConfig(steps=steps, lr=3e-3), loss_fn=loss_fn)
            with torch.no_grad():
                ppl.append(math.exp(float(batch_loss(model, ev))))
            act.append(active_fraction(model))
            curves.setdefault(name, []).append(curve)
        routed = MOHD["n_groups"] - MOHD["n_shared"] if kw else 0
        res[name] = {"ppl": ppl, "active": statistics.mean(act),
                     "flops": mohd_flops_per_token(cfg, SEQ + 2, statistics.mean(act), n_routed=2 * routed),
                     "params": sum(p.numel() for p in model.parameters())}
    print(f"MoHD on an order-3 Markov source ({steps} steps × 32 sequences of {SEQ} tokens; seeds {seeds}; "
          f"optimum perplexity {math.exp(ev['optimal_loss']):.3f})")
    rows = [[k, f"{statistics.mean(v['ppl']):.3f}", " ".join(f"{p:.3f}" for p in v["ppl"]), f"{v['active']:.2f}",
             f"{v['flops'] / 1e3:.1f}k", v["params"]] for k, v in res.items()]
    print(format_table(["model", "held-out perplexity", "per seed", "active fraction", "FLOPs/token", "parameters"],
                       rows))
    fig, ax = new_figure(1)
    for name, cs in curves.items():
        mean = torch.tensor(cs).mean(0)
        k = max(1, len(mean) // 40)
        sm = mean.unfold(0, k, k).mean(1).exp()
        ax[0, 0].plot([(i + 0.5) * k for i in range(len(sm))], sm, label=name)
    ax[0, 0].axhline(math.exp(ev["optimal_loss"]), color="0.6", ls="--", label="optimum")
    ax[0, 0].set(xlabel="training step", ylabel="training perplexity (incl. aux)", yscale="log")
    ax[0, 0].legend(fontsize=7)
    save_figure(fig, out)
    print(f"plot: {out}  ({time.time() - t0:.1f} s)")
    return res


def main(argv=None) -> None:
    experiment_main("mohd", __doc__, run, argv)


if __name__ == "__main__":
    main()
