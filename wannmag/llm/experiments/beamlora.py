"""BeamLoRA vs LoRA at equal rank on a shifted fine-tuning task, over several seeds.

A 2-layer model is pretrained on 2-step mod-10 arithmetic with ``+``/``-``; adapters on q k v o fc_in fc_out are
then fine-tuned (same steps, learning rate, initialisation stream per seed) on 1-step problems with ``*``, with a
short budget (160 steps, lr 3e-3) so that rank-4 LoRA is not yet saturated.  BeamLoRA prunes/expands every
``interval`` = 10 steps until 80 % of training (top-p threshold 0.95 → 1).
Reported: held-out answer loss and accuracy on the shifted task, mean ± std over seeds, and the number of ranks
re-initialised.
"""

from __future__ import annotations

import copy
import statistics
import time

import torch

from wannmag.llm.beamlora import BeamLoRAScheduler, add_beamlora
from wannmag.llm.common import add_lora, answer_accuracy, batch_loss, make_generator, seed_everything
from wannmag.llm.common.report import experiment_main, format_table, new_figure, save_figure
from wannmag.llm.experiments._shift import eval_sets, ft_batch, pretrained

TARGETS = ("q", "k", "v", "o", "fc_in", "fc_out")


def finetune(base, task, kind: str, r: int, seed: int, steps: int, lr: float = 3e-3, interval: int = 10):
    model = copy.deepcopy(base)
    add = add_beamlora if kind == "BeamLoRA" else add_lora
    params = add(model, r, targets=TARGETS, seed=seed)
    opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.98))
    sched = BeamLoRAScheduler(model, opt, interval, int(0.8 * steps)) if kind == "BeamLoRA" else None
    g = make_generator(1000 + seed)
    curve = []
    model.train()
    for s in range(steps):
        loss = batch_loss(model, ft_batch(task, 128, g))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if sched is not None:
            sched.step(s)
        curve.append(float(loss.detach()))
    model.eval()
    return model, curve, (sum(sched.n_pruned) if sched else 0)


def run(seed: int = 0, tiny: bool = False, out: str | None = "out/llm/beamlora.png", n_seeds: int | None = None,
        ranks: tuple[int, ...] | None = None) -> dict:
    """``n_seeds`` defaults to 1 with ``tiny``, else 5; ``ranks`` to (2,) with ``tiny``, else (2, 4)."""
    seed_everything(seed)
    t0 = time.time()
    task, base = pretrained(seed, 40 if tiny else 1000)
    ev_pre, ev = eval_sets(task, seed, 256 if tiny else 2048)
    base_acc = answer_accuracy(base, ev)
    seeds = [seed + i for i in range(n_seeds or (1 if tiny else 5))]
    ranks = tuple(ranks) if ranks else ((2,) if tiny else (2, 4))
    steps = 20 if tiny else 160
    res, curves = {}, {}
    for r in ranks:
        for kind in ("LoRA", "BeamLoRA"):
            losses, accs, npr = [], [], []
            for s in seeds:
                model, curve, n = finetune(base, task, kind, r, s, steps)
                with torch.no_grad():
                    losses.append(float(batch_loss(model, ev)))
                accs.append(answer_accuracy(model, ev))
                npr.append(n)
                curves.setdefault((kind, r), []).append(curve)
            res[(kind, r)] = {"loss": losses, "acc": accs, "pruned": npr}
    sd = lambda x: statistics.stdev(x) if len(x) > 1 else 0.0  # noqa: E731
    print(f"BeamLoRA vs LoRA (pretrained on {{+,-}}: shifted-task accuracy {base_acc:.3f} before fine-tuning; "
          f"{steps} steps, lr 3e-3, targets {' '.join(TARGETS)}; seeds {seeds}; {len(ev['answer'])} held-out)")
    rows = []
    for (kind, r), v in res.items():
        rows.append([f"{kind} r={r}", f"{statistics.mean(v['loss']):.3f} ± {sd(v['loss']):.3f}",
                     f"{statistics.mean(v['acc']):.3f} ± {sd(v['acc']):.3f}",
                     " ".join(f"{a:.3f}" for a in v["acc"]), f"{statistics.mean(v['pruned']):.1f}"])
    print(format_table(["method", "held-out loss", "accuracy", "accuracy per seed", "ranks re-initialised"], rows))
    fig, ax = new_figure(1)
    for (kind, r), cs in curves.items():
        mean = torch.tensor(cs).mean(0)
        k = max(1, len(mean) // 40)
        sm = mean.unfold(0, k, k).mean(1) if len(mean) >= k else mean
        ax[0, 0].plot([(i + 0.5) * k for i in range(len(sm))], sm, label=f"{kind} r={r}",
                      ls="-" if kind == "BeamLoRA" else "--")
    ax[0, 0].set(xlabel="fine-tuning step", ylabel="training loss (mean over seeds)")
    ax[0, 0].legend(fontsize=7)
    save_figure(fig, out)
    print(f"plot: {out}  ({time.time() - t0:.1f} s)")
    return res


def main(argv=None) -> None:
    experiment_main("beamlora", __doc__, run, argv)


if __name__ == "__main__":
    main()
