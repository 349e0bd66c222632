"""MA-RLHF: reward vs PPO steps for token-level vs macro-level PPO with a terminal-only reward.

Policy: a 1-layer tiny transformer over 8 tokens from random initialisation, writing 16 tokens after ``<bos>``.
Scripted reward, given only at the last token: the fraction of positions whose token equals a fixed hidden target
sequence (credit for each position has to be inferred from the sum).  PPO (value head, γ = 1, λ = 0.95, KL
β = 0.02 to the initial policy, 2 epochs per batch of 64, the same seeds) with token-level GAE vs macro GAE over
fixed 2- and 4-grams, random lengths in [2, 5], and perplexity cuts (new macro at a token with perplexity > 6, at
most 6 tokens).  Reported: mean batch reward over the last 20 steps, the first step whose 10-step mean reaches
0.5, the mean macro length, and the reward of 512 samples after training.
"""

from __future__ import annotations

import copy
import statistics
import time

import torch

from wannmag.llm.common import TinyConfig, TinyTransformer, generate, make_generator, seed_everything
from wannmag.llm.common.ppo import ActorCritic, PPOConfig, ppo_train
from wannmag.llm.common.report import experiment_main, format_table, new_figure, save_figure
from wannmag.llm.ma_rlhf import macro_advantage_fn

V_TOK, L, OFFSET = 8, 16, 3
VARIANTS = {
    "token-level PPO": None,
    "macro, fixed n=2": dict(kind="fixed", n=2),
    "macro, fixed n=4": dict(kind="fixed", n=4),
    "macro, random 2-5": dict(kind="random", lo=2, hi=5),
    "macro, perplexity cuts": dict(kind="ppl", threshold=6.0, max_len=6),
}


def make_reward(seed: int):
    target = torch.randint(0, V_TOK, (L,), generator=make_generator(seed + 77)) + OFFSET
    return lambda tokens: (tokens == target).float().mean(1)


def train_variant(kw: dict | None, s: int, steps: int, lam: float = 0.95) -> tuple[list[float], float, float]:
    """One PPO run (seed s) with token GAE (``kw`` None) or macro GAE; GAE λ = ``lam`` for both.
    Returns (batch-reward curve, reward of 512 samples after training, mean macro length)."""
    reward = make_reward(s)
    cfg = TinyConfig(vocab_size=V_TOK + OFFSET, d_model=32, n_heads=2, n_layers=1, d_mlp=64, max_len=L + 2)
    ac = ActorCritic(TinyTransformer(cfg, seed=s))
    ref = copy.deepcopy(ac.model)
    pc = PPOConfig(steps=steps, max_new=L, lr=2e-3, kl_coef=0.02, epochs=2, lam=lam)
    mlen: list = []
    adv_fn = macro_advantage_fn(generator=make_generator(50 + s), stats=mlen, lam=lam, **kw) if kw else None
    prompt = torch.full((64, 1), 1)
    hist = ppo_train(ac, lambda _s: prompt, lambda ro: reward(ro.tokens), pc, make_generator(10 + s), ref=ref,
                     advantage_fn=adv_fn)
    curve = [h["reward"] for h in hist]
    with torch.no_grad():
        gen = generate(ac.model, torch.full((512, 1), 1), L, generator=make_generator(99 + s), eos_id=None)
    return curve, float(reward(gen.tokens).mean()), statistics.mean(mlen) if mlen else 1.0


def run(seed: int = 0, tiny: bool = False, out: str | None = "out/llm/ma_rlhf.png", n_seeds: int | None = None) -> dict:
    """``n_seeds`` defaults to 1 with ``tiny``, else 2; ``out`` None: no plot."""
    seed_everything(seed)
    t0 = time.time()
    steps = 4 if tiny else 120
    seeds = [seed + i for i in range(n_seeds or (1 if tiny else 2))]
    res, curves = {}, {}
    for name, kw in VARIANTS.items():
        for s in seeds:
            curve, ev, ml = train_variant(kw, s, steps)
            sm = [statistics.mean(curve[max(0, i - 9): i + 1]) for i in range(len(curve))]
            hit = next((i + 1 for i, x in enumerate(sm) if x >= 0.5), None)
            d = res.setdefault(name, {"last": [], "hit": [], "eval": [], "mlen": []})
            d["last"].append(statistics.mean(curve[-20:]))
            d["hit"].append(hit)
            d["eval"].append(ev)
            d["mlen"].append(ml)
            curves.setdefault(name, []).append(curve)
    print(f"MA-RLHF toy ({steps} PPO steps × 64 responses of {L} tokens, terminal reward = fraction of positions "
          f"matching a hidden target; seeds {seeds}; chance reward {1 / V_TOK:.3f})")
    fmt = lambda h: " ".join(str(x) if x is not None else f">{steps}" for x in h)  # noqa: E731
    rows = [[k, f"{statistics.mean(v['last']):.3f}", fmt(v["hit"]), f"{statistics.mean(v['eval']):.3f}",
             " ".join(f"{x:.3f}" for x in v["eval"]), f"{statistics.mean(v['mlen']):.2f}"] for k, v in res.items()]
    print(format_table(["advantage", "reward, last 20 steps", "step to 0.5 (per seed)", "reward after (512 samples)",
                        "per seed", "mean macro length"], rows))
    fig, ax = new_figure(1)
    for name, cs in curves.items():
        ax[0, 0].plot(torch.tensor(cs).mean(0), label=name)
    ax[0, 0].set(xlabel="PPO step", ylabel="terminal reward (batch mean, mean over seeds)")
    ax[0, 0].legend(fontsize=7)
    save_figure(fig, out)
    print(f"plot: {out}  ({time.time() - t0:.1f} s)")
    return res


CONTROL_VARIANTS = ("token-level PPO", "macro, fixed n=4", "macro, perplexity cuts")


def run_control(seed: int = 0, tiny: bool = False, n_seeds: int | None = None, lams=None,
                variants=CONTROL_VARIANTS) -> dict:
    """Issue-23 control: token-level vs macro GAE at *matched* λ, ``n_seeds`` seeds; prints mean ± sample std of
    the 512-sample reward after training.  ``python -m wannmag.llm.experiments.ma_rlhf --control``.
    Defaults: ``n_seeds`` 2 with ``tiny``, else 5; ``lams`` (1,) with ``tiny``, else (1, 0.95)."""
    seed_everything(seed)
    t0 = time.time()
    steps = 2 if tiny else 120
    seeds = [seed + i for i in range(n_seeds or (2 if tiny else 5))]
    lams = tuple(lams) if lams else ((1.0,) if tiny else (1.0, 0.95))
    res = {}
    for lam in lams:
        for name in variants:
            res[(name, lam)] = []
            for s in seeds:
                res[(name, lam)].append(train_variant(VARIANTS[name], s, steps, lam)[1])
                print(f"  {name}, λ={lam:g}, seed {s}: {res[(name, lam)][-1]:.3f}", flush=True)
    print(f"MA-RLHF control: token vs macro GAE at matched λ ({steps} PPO steps, seeds {seeds}); reward of 512 "
          "samples after training, mean ± sample std over seeds")
    rows = [[name, f"{lam:g}", f"{statistics.mean(v):.3f} ± {statistics.stdev(v):.3f}",
             " ".join(f"{x:.3f}" for x in v)] for (name, lam), v in res.items()]
    print(format_table(["advantage", "GAE λ", "reward after", "per seed"], rows))
    print(f"({time.time() - t0:.1f} s)")
    return res


def main(argv=None) -> None:
    if argv is None:
        import sys
        argv = sys.argv[1:]
    if "--control" in argv:
        argv = [a for a in argv if a != "--control"]
        experiment_main("ma_rlhf", __doc__, lambda seed, tiny, out: run_control(seed, tiny), argv)
        return
    experiment_main("ma_rlhf", __doc__, run, argv)


if __name__ == "__main__":
    main()
