"""APEX vs full fine-tuning vs random selection at an equal trainable budget.

The model pretrained on 2-step ``+``/``-`` arithmetic is fine-tuned on 1-step ``*`` problems (see ``_shift``) for
the same number of steps and learning rate with: full fine-tuning (every parameter); APEX (3 stages: score FFN
channels / heads by activation magnitude, T = top 25 %, D = bottom 25 % per layer, train the expansions + the T
units, fuse); the same with T and D drawn at random (identical trainable budget).  Reported over seeds: held-out
loss and accuracy on the shifted task, accuracy on the pretraining distribution (forgetting), mean effective rank
of the projection weights (q k v o fc_in fc_out) and the trainable entries.
"""

from __future__ import annotations

import copy
import statistics
import time

import torch

from wannmag.llm.apex import apex_finetune, mean_effective_rank
from wannmag.llm.common import TrainConfig, answer_accuracy, batch_loss, make_generator, seed_everything, train
from wannmag.llm.common.report import experiment_main, format_table, new_figure, save_figure
from wannmag.llm.experiments._shift import eval_sets, ft_batch, pretrained

LR = 2e-3


def run(seed: int = 0, tiny: bool = False, out: str | None = "out/llm/apex.png", n_seeds: int | None = None) -> dict:
    """``n_seeds`` (seeds ``seed … seed+n_seeds-1``) defaults to 1 with ``tiny``, else 3; ``out`` None: no plot."""
    seed_everything(seed)
    t0 = time.time()
    task, base = pretrained(seed, 40 if tiny else 1000)
    ev_pre, ev = eval_sets(task, seed, 256 if tiny else 2048)
    steps = 12 if tiny else 150
    seeds = [seed + i for i in range(n_seeds or (1 if tiny else 3))]
    er_base = mean_effective_rank(base)
    n_all = sum(p.numel() for p in base.parameters())
    res: dict[str, dict[str, list]] = {}
    curves: dict[str, list] = {}
    for name in ("full fine-tuning", "APEX", "random T/D"):
        for s in seeds:
            model = copy.deepcopy(base)
            g = make_generator(2000 + s)
            fn = lambda step, g=g: ft_batch(task, 128, g)  # noqa: E731
            if name == "full fine-tuning":
                curve = train(model, fn, TrainConfig(steps=steps, lr=LR, warmup=0, cosine=False, grad_clip=1.0))
                budget = n_all
            else:
                r = apex_finetune(model, fn, steps, stages=3, frac=0.25, lr=LR, random=name != "APEX", seed=s)
                curve, budget = r["loss"], max(r["budget"])
            with torch.no_grad():
                loss = float(batch_loss(model, ev))
            d = res.setdefault(name, {k: [] for k in ("loss", "acc", "acc_pre", "erank", "budget")})
            d["loss"].append(loss)
            d["acc"].append(answer_accuracy(model, ev))
            d["acc_pre"].append(answer_accuracy(model, ev_pre))
            d["erank"].append(mean_effective_rank(model))
            d["budget"].append(budget)
            curves.setdefault(name, []).append(curve)
    ms = lambda x, f=".3f": (f"{statistics.mean(x):{f}} ± {statistics.stdev(x):{f}}" if len(x) > 1  # noqa: E731
                             else f"{x[0]:{f}}")
    print(f"APEX ({steps} fine-tuning steps, lr {LR}, 3 stages, 25 % of channels/heads per set; seeds {seeds}; "
          f"pretrained model: shifted acc {answer_accuracy(base, ev):.3f}, effective rank {er_base:.2f})")
    rows = [[k, ms(v["loss"]), ms(v["acc"]), ms(v["acc_pre"]), ms(v["erank"], ".2f"), int(statistics.mean(v["budget"]))]
            for k, v in res.items()]
    print(format_table(["method", "held-out loss", "accuracy (shifted)", "accuracy (pretrain dist.)",
                        "mean eff. rank", "trainable entries"], rows))
    fig, ax = new_figure(1)
    for name, cs in curves.items():
        mean = torch.tensor(cs).mean(0)
        k = max(1, len(mean) // 30)
        sm = mean.unfold(0, k, k).mean(1)
        ax[0, 0].plot([(i + 0.5) * k for i in range(len(sm))], sm, label=name)
    ax[0, 0].set(xlabel="fine-tuning step", ylabel="training loss (mean over seeds)", yscale="log")
    ax[0, 0].legend(fontsize=7)
    save_figure(fig, out)
    print(f"plot: {out}  ({time.time() - t0:.1f} s)")
    return res


def main(argv=None) -> None:
    experiment_main("apex", __doc__, run, argv)


if __name__ == "__main__":
    main()
