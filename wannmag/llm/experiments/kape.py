"""KAPE experiment: a tiny model memorises facts and also learns to read a context; under conflicting context,
deactivating the internal-knowledge neurons shifts answers toward the context and deactivating the external-knowledge
neurons shifts them toward memory (random neurons of the same count are the control)."""

from __future__ import annotations

import time

import torch

from wannmag.llm.common import (FactConflictTask, TinyConfig, TinyTransformer, TrainConfig, make_generator,
                                seed_everything, train)
from wannmag.llm.common.report import experiment_main, format_table, new_figure, save_figure
from wannmag.llm.kape import activation_probability, collect_activations, deactivated, kape_scores, select_neurons


@torch.no_grad()
def answer_rates(model, task, conflict: dict, memory: torch.Tensor, ctx: torch.Tensor, closed: dict) -> dict:
    logits = model(conflict["input_ids"]).logits[:, -1]
    pred = logits.argmax(-1)
    mem_ids, ctx_ids = task.a_ids[memory], task.a_ids[ctx]
    lp = torch.log_softmax(logits, -1)
    ar = torch.arange(len(pred))
    margin = float((lp[ar, ctx_ids] - lp[ar, mem_ids]).mean())
    cb = model(closed["input_ids"]).logits[:, -1].argmax(-1)
    return {"context": float((pred == ctx_ids).float().mean()), "memory": float((pred == mem_ids).float().mean()),
            "margin": margin, "closed-book acc": float((cb == task.a_ids[closed["target"]]).float().mean())}


def run(seed: int = 0, tiny: bool = False, out: str | None = "out/llm/kape.png", frac: float = 0.1) -> dict:
    g = seed_everything(seed)
    t0 = time.time()
    task = FactConflictTask(n_subjects=48, n_relations=2, n_values=12, seed=seed)
    cfg = TinyConfig(vocab_size=len(task.vocab), d_model=64, n_heads=4, n_layers=2, d_mlp=128, max_len=16)
    model = TinyTransformer(cfg, seed=seed)
    steps = 60 if tiny else 1500
    hist = train(model, lambda s: list(task.train_batch(64, g, p_context=0.5, p_conflict=0.3, p_follow=0.5)),
                 TrainConfig(steps=steps, lr=3e-3, warmup=50))

    eg = make_generator(seed + 5)
    s, r = task.all_queries()
    s, r = s.repeat(4), r.repeat(4)
    memory = task.facts[s, r]
    ctx = task.conflicting_values(s, r, eg)
    conflict = task.open_book(s, r, ctx)
    closed = task.closed_book(*task.all_queries())
    # KAPE statistics: internal runs = closed-book questions, external runs = questions after a (random) context
    s2, r2 = task.queries(512, eg)
    ext_ctx = torch.randint(0, task.n_values, s2.shape, generator=eg)
    acts_int = collect_activations(model, [task.closed_book(s2, r2)])
    acts_ext = collect_activations(model, [task.open_book(s2, r2, ext_ctx)])
    p_int, p_ext = activation_probability(acts_int), activation_probability(acts_ext)
    m_int, m_ext = select_neurons(p_int, p_ext, frac=frac, min_prob=0.1)
    n_sel = int(m_int.sum())
    rand = torch.zeros(p_int.numel(), dtype=torch.bool)
    rand[torch.randperm(p_int.numel(), generator=eg)[:n_sel]] = True
    rand = rand.view_as(p_int)

    res = {"baseline": answer_rates(model, task, conflict, memory, ctx, closed)}
    for name, mask in (("internal neurons off", m_int), ("external neurons off", m_ext),
                       (f"{n_sel} random neurons off", rand)):
        with deactivated(model, mask):
            res[name] = answer_rates(model, task, conflict, memory, ctx, closed)
    score = kape_scores(p_int, p_ext)
    print(f"KAPE on a tiny model ({steps} steps, final loss {sum(hist[-50:]) / len(hist[-50:]):.3f}): "
          f"{len(memory)} conflicting-context questions; {int(m_int.sum())} internal / {int(m_ext.sum())} external "
          f"neurons selected of {p_int.numel()} (mean KAPE of selected {float(score[m_int | m_ext].mean()):.3f} vs "
          f"all {float(score.mean()):.3f} nats)")
    rows = [[k, v["context"], v["memory"], v["margin"], v["closed-book acc"]] for k, v in res.items()]
    print(format_table(["condition", "answers = context", "answers = memory", "log p(ctx) − log p(mem)",
                        "closed-book accuracy"], rows))
    fig, ax = new_figure(2)
    names = list(res)
    x = range(len(names))
    ax[0, 0].bar([i - 0.2 for i in x], [res[n]["context"] for n in names], 0.4, label="context answer")
    ax[0, 0].bar([i + 0.2 for i in x], [res[n]["memory"] for n in names], 0.4, label="memory answer")
    ax[0, 0].set_xticks(list(x), names, rotation=15, fontsize=7)
    ax[0, 0].set(ylabel="fraction of conflicting questions", ylim=(0, 1))
    ax[0, 0].legend(fontsize=7)
    ax[0, 1].scatter(p_int.reshape(-1), p_ext.reshape(-1), s=6, c="0.6", label="all neurons")
    ax[0, 1].scatter(p_int[m_int], p_ext[m_int], s=12, c="C0", label="internal-specific")
    ax[0, 1].scatter(p_int[m_ext], p_ext[m_ext], s=12, c="C1", label="external-specific")
    ax[0, 1].set(xlabel="P(active | no context)", ylabel="P(active | context)")
    ax[0, 1].legend(fontsize=7)
    save_figure(fig, out)
    print(f"plot: {out}  ({time.time() - t0:.1f} s)")
    return res


def main(argv=None) -> None:
    experiment_main("kape", __doc__, run, argv)


if __name__ == "__main__":
    main()
