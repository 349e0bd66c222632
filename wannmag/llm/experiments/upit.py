"""UpIT vs plain upcycling at low data.

Task: a 4-domain order-2 Markov source (``MarkovLMTask``: 8 tokens, 3 successors per context, a domain tag after
``<bos>``).  A dense 2-layer model (d = 64) is pretrained briefly on fresh samples (the "base"), then instruction-
tuned on a small fixed set (N = 1024 sequences of 24 tokens, ~5 epochs in all) for S1 = 160 steps, saving 4 intermediate checkpoints.  From the
final checkpoint's attention/embeddings, three continuations get S2 = 160 more steps on the same set (lr 1e-3):

* dense: the dense model continues;
* plain upcycling: a top-2 MoE with 6 copies of the final checkpoint's MLP and a random router;
* UpIT: the 4 checkpoint MLPs as experts, expanded to 6 by merging the most dissimilar pair (λ ~ U(0,1), DARE
  p = 0.3), routers pre-optimised on 64 seed sequences (labelled by their lowest-loss expert), top-2 MoE.

Both MoEs use the Switch load-balancing loss (weight 0.01).  Reported: held-out perplexity on fresh samples (and
the optimum), the routers' seed-label accuracy and the expert usage entropy on held-out tokens.
"""

from __future__ import annotations

import copy
import math
import statistics
import time

import torch

from wannmag.llm.common import TinyConfig, TinyTransformer, TrainConfig, batch_loss, make_generator, seed_everything, train
from wannmag.llm.common.metrics import entropy
from wannmag.llm.common.moe import moe_aux_loss
from wannmag.llm.common.report import experiment_parser, format_table, new_figure, save_figure
from wannmag.llm.common.tasks import MarkovLMTask
from wannmag.llm.upit import build_moe, genetic_expand, mlp_states, moe_layers, pre_optimise_routers

SEQ = 24
N_EXPERTS = 6


def usage_entropy(model, batch) -> float:
    """Mean over layers of the entropy (nats) of the top-k expert usage distribution on ``batch``."""
    with torch.no_grad():
        model(batch["input_ids"])
    vals = []
    for l in moe_layers(model):
        cnt = torch.bincount(l.last_topk.reshape(-1), minlength=l.n_experts).float()
        vals.append(float(entropy(cnt / cnt.sum())))
    return sum(vals) / len(vals)


def one_seed(seed: int, n_data: int, tiny: bool) -> dict:
    task = MarkovLMTask(n_tokens=8, order=2, branching=3, n_domains=4, seed=seed)
    g = make_generator(seed + 1)
    cfg = TinyConfig(vocab_size=len(task.vocab), d_model=64, n_heads=4, n_layers=2, d_mlp=128, max_len=32)
    base = TinyTransformer(cfg, seed=seed)
    train(base, lambda s: task.sample(32, SEQ, g), TrainConfig(steps=10 if tiny else 150, lr=3e-3))
    data = task.sample(n_data, SEQ, make_generator(seed + 2))
    batches = [{k: data[k][i:i + 32] for k in ("input_ids", "labels")} for i in range(0, n_data, 32)]
    ev = task.sample(256 if tiny else 1024, SEQ, make_generator(seed + 3))
    s1, s2 = (8, 8) if tiny else (160, 160)
    ckpts = []
    dense = copy.deepcopy(base)
    base_mlp = mlp_states(base)
    sft = TrainConfig(steps=s1, lr=1e-3, warmup=10, cosine=False)
    train(dense, lambda s: batches[s % len(batches)], sft,
          callback=lambda s, m, l: ckpts.append(mlp_states(m)) if (s + 1) % (s1 // 4) == 0 else None)
    out = {}
    ft = TrainConfig(steps=s2, lr=1e-3, warmup=10)
    loss_fn = lambda m, b: batch_loss(m, b) + 0.01 * moe_aux_loss(m)  # noqa: E731
    # dense continuation
    d2 = copy.deepcopy(dense)
    c = train(d2, lambda s: batches[s % len(batches)], ft)
    out["dense (continued)"] = {"model": d2, "curve": c}
    # plain upcycling
    up = build_moe(dense, [mlp_states(dense)] * N_EXPERTS, k=2, router_seed=seed)
    c = train(up, lambda s: batches[s % len(batches)], ft, loss_fn=loss_fn)
    out["plain upcycling"] = {"model": up, "curve": c}
    # UpIT
    experts = genetic_expand(ckpts[-4:], base_mlp, N_EXPERTS, p_drop=0.3, generator=make_generator(seed + 4))
    upit = build_moe(dense, experts, k=2, router_seed=seed)
    seed_b = [{k: data[k][:64] for k in ("input_ids", "labels")}]
    pre = pre_optimise_routers(upit, seed_b, steps=10 if tiny else 60, lr=1e-2)
    c = train(upit, lambda s: batches[s % len(batches)], ft, loss_fn=loss_fn)
    out["UpIT"] = {"model": upit, "curve": c, "router_acc": pre["accuracy"],
                   "labels": torch.bincount(pre["labels"][0], minlength=N_EXPERTS).tolist()}
    res = {}
    for k, v in out.items():
        with torch.no_grad():
            ppl = math.exp(float(batch_loss(v["model"], ev)))
        res[k] = {"ppl": ppl, "curve": v["curve"], "usage": usage_entropy(v["model"], ev) if "dense" not in k else None,
                  "router_acc": v.get("router_acc"), "labels": v.get("labels")}
    res["_opt"] = math.exp(ev["optimal_loss"])
    with torch.no_grad():
        res["_sft_ppl"] = math.exp(float(batch_loss(dense, ev)))
        res["_base_ppl"] = math.exp(float(batch_loss(base, ev)))
    return res


def run(seed: int = 0, tiny: bool = False, out: str | None = "out/llm/upit.png", n_data: int = 1024,
        n_seeds: int | None = None) -> dict:
    """``n_seeds`` defaults to 1 with ``tiny``, else 2; ``out`` None: no plot."""
    seed_everything(seed)
    t0 = time.time()
    seeds = [seed + i for i in range(n_seeds or (1 if tiny else 2))]
    per = [one_seed(s, n_data, tiny) for s in seeds]
    names = [k for k in per[0] if not k.startswith("_")]
    print(f"UpIT vs plain upcycling ({n_data} training sequences of {SEQ} tokens, 4 domains; seeds {seeds}; "
          f"{N_EXPERTS} experts, top-2; perplexity: optimum {statistics.mean(p['_opt'] for p in per):.3f}, base "
          f"{statistics.mean(p['_base_ppl'] for p in per):.3f}, after the dense SFT phase "
          f"{statistics.mean(p['_sft_ppl'] for p in per):.3f})")
    rows = []
    for n in names:
        ppls = [p[n]["ppl"] for p in per]
        usage = [p[n]["usage"] for p in per if p[n]["usage"] is not None]
        acc = [p[n]["router_acc"] for p in per if p[n]["router_acc"] is not None]
        rows.append([n, f"{statistics.mean(ppls):.3f}", " ".join(f"{x:.3f}" for x in ppls),
                     f"{statistics.mean(usage):.2f}" if usage else "–", f"{statistics.mean(acc):.2f}" if acc else "–"])
    print(format_table(["model", "held-out perplexity", "per seed", f"expert usage entropy (max {math.log(N_EXPERTS):.2f})",
                        "router seed-label acc."], rows))
    for p, s in zip(per, seeds):
        print(f"  seed {s}: UpIT seed sequences per lowest-loss expert {p['UpIT']['labels']}")
    fig, ax = new_figure(1)
    for n in names:
        cs = torch.tensor([p[n]["curve"] for p in per]).mean(0)
        k = max(1, len(cs) // 40)
        sm = cs.unfold(0, k, k).mean(1).exp()
        ax[0, 0].plot([(i + 0.5) * k for i in range(len(sm))], sm, label=n)
    ax[0, 0].set(xlabel="step after the dense SFT phase", ylabel="training perplexity (incl. aux)", yscale="log")
    ax[0, 0].legend(fontsize=7)
    save_figure(fig, out)
    print(f"plot: {out}  ({time.time() - t0:.1f} s)")
    return {"per_seed": per}


def main(argv=None) -> None:
    p = experiment_parser("upit", __doc__)
    p.add_argument("--n-data", type=int, default=1024, help="training sequences (low-data regime)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    run(args.seed, args.tiny, args.out, args.n_data)


if __name__ == "__main__":
    main()
