"""Swift Study experiment: predict from 8 probe examples per strategy which fine-tuning data strategy lowers the
loss of direct answers to 2-, 3- and 4-step arithmetic most, then fine-tune on each strategy and compare.

Strategies: chain-of-thought solutions (``cot``), direct answers (``direct``), one-step problems (``single``),
direct answers with random labels (``noisy``), and an unrelated target (``copy``: answer = first operand).
A base model is pre-trained on one- and two-step direct problems; its checkpoints at 1/3, 2/3 and the end of
pre-training are used for the influence estimate.
"""

from __future__ import annotations

import copy
import time

import torch

from wannmag.llm.common import (ArithmeticTask, TinyConfig, TinyTransformer, TrainConfig, batch_loss, make_generator,
                                seed_everything, spearman, train)
from wannmag.llm.common.report import experiment_main, format_table, new_figure, save_figure
from wannmag.llm.swift_study import RandomProjector, checkpoint_influence

STRATEGIES = ("cot", "direct", "single", "noisy", "copy")


def strategy_data(task: ArithmeticTask, name: str, n: int, g: torch.Generator) -> dict:
    steps = int(torch.randint(2, 5, (1,), generator=g))
    if name == "cot":
        return task.encode(task.sample(n, steps, g), "cot")
    if name == "direct":
        return task.encode(task.sample(n, steps, g), "direct")
    if name == "single":
        return task.encode(task.sample(n, 1, g), "direct")
    if name == "noisy":
        pb = task.sample(n, steps, g)
        return task.encode(pb, "direct", answers=torch.randint(0, task.m, (n,), generator=g))
    if name == "copy":
        pb = task.sample(n, steps, g)
        return task.encode(pb, "direct", answers=pb.x0)
    raise ValueError(name)


def split(batch: dict) -> list[dict]:
    return [{"input_ids": batch["input_ids"][i:i + 1], "labels": batch["labels"][i:i + 1]}
            for i in range(batch["input_ids"].shape[0])]


def run(seed: int = 0, tiny: bool = False, out: str | None = "out/llm/swift_study.png") -> dict:
    g = seed_everything(seed)
    t0 = time.time()
    task = ArithmeticTask()
    cfg = TinyConfig(vocab_size=len(task.vocab), d_model=64, n_heads=4, n_layers=2, d_mlp=128, max_len=24)
    model = TinyTransformer(cfg, seed=seed)
    pre_steps = 30 if tiny else 300
    lr = 2e-3
    ckpts: list[tuple[dict, float]] = []

    def save(step, m, loss):
        if (step + 1) % (pre_steps // 3) == 0:
            ckpts.append((copy.deepcopy(m.state_dict()), lr))

    def pre_batch(step):
        s = 1 if step % 2 == 0 else 2
        return task.encode(task.sample(64, s, g), "direct")

    train(model, pre_batch, TrainConfig(steps=pre_steps, lr=lr, warmup=20, cosine=False), callback=save)
    eval_sets = (2, 3, 4)
    eg = make_generator(seed + 3)
    n_probe, n_small = (4, 8) if tiny else (8, 32)
    probes = {s: split(strategy_data(task, s, n_probe, eg)) for s in STRATEGIES}
    evals_small = {f"{k}-step": split(task.encode(task.sample(n_small, k, eg), "direct", answer_only=True))
                   for k in eval_sets}
    dim = sum(p.numel() for p in model.parameters())
    proj = RandomProjector(dim, k=256, seed=seed)
    pred = checkpoint_influence(model, ckpts, probes, evals_small, projector=proj)

    evals_big = {f"{k}-step": task.encode(task.sample(128 if tiny else 512, k, eg), "direct", answer_only=True)
                 for k in eval_sets}
    with torch.no_grad():
        before = {e: float(batch_loss(model, b)) for e, b in evals_big.items()}
    actual = {}
    ft_steps = 20 if tiny else 150
    for s in STRATEGIES:
        m = copy.deepcopy(model)
        fg = make_generator(seed + 100)
        train(m, lambda step: strategy_data(task, s, 32, fg), TrainConfig(steps=ft_steps, lr=1e-3, warmup=10,
                                                                          cosine=False))
        with torch.no_grad():
            for e, b in evals_big.items():
                actual[(s, e)] = before[e] - float(batch_loss(m, b))
    keys = list(pred)
    rho = spearman([pred[k] for k in keys], [actual[k] for k in keys])
    rows = [[s, e, pred[(s, e)], actual[(s, e)]] for (s, e) in keys]
    agree = []
    for e in evals_small:
        p_best = max(("cot", "direct"), key=lambda s: pred[(s, e)])
        a_best = max(("cot", "direct"), key=lambda s: actual[(s, e)])
        agree.append((e, p_best, a_best))
    rho_s = {e: spearman([pred[(s, e)] for s in STRATEGIES], [actual[(s, e)] for s in STRATEGIES])
             for e in evals_small}
    print(f"Swift study: {n_probe} probes per strategy, {n_small} eval examples per set, {len(ckpts)} checkpoints, "
          f"projection {dim}→256; fine-tuning {ft_steps} steps per strategy")
    print(format_table(["strategy", "eval set", "predicted influence", "actual loss decrease"], rows, ".4f"))
    print(f"Spearman rank correlation predicted vs actual over all {len(keys)} pairs: {rho:.3f}; per eval set: "
          + ", ".join(f"{e} {v:.2f}" for e, v in rho_s.items()))
    print("cot vs direct — predicted better / actually better: "
          + "; ".join(f"{e}: {p}/{a}" for e, p, a in agree))
    fig, ax = new_figure(1)
    for i, s in enumerate(STRATEGIES):
        ax[0, 0].scatter([pred[(s, e)] for e in evals_small], [actual[(s, e)] for e in evals_small], label=s,
                         color=f"C{i}")
    ax[0, 0].axhline(0, color="0.7", lw=0.8)
    ax[0, 0].axvline(0, color="0.7", lw=0.8)
    ax[0, 0].set(xlabel="predicted influence (probe gradients)", ylabel="actual eval-loss decrease after fine-tuning",
                 title=f"Spearman ρ = {rho:.2f}")
    ax[0, 0].legend(fontsize=7)
    save_figure(fig, out)
    print(f"plot: {out}  ({time.time() - t0:.1f} s)")
    return {"pred": pred, "actual": actual, "spearman": rho}


def main(argv=None) -> None:
    experiment_main("swift_study", __doc__, run, argv)


if __name__ == "__main__":
    main()
