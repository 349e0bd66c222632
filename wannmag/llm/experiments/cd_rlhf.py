"""CD-RLHF: PPO vs PPO + curiosity on a toy token policy with a scripted reward — reward and diversity.

Policy: a 1-layer tiny transformer over 16 tokens, from random initialisation (≈ uniform), writing 8 tokens after
``<bos>``.  Scripted reward (terminal, on the whole sequence): the fraction of the 7 transitions (a, b) with
``(b − a) mod 16 ∈ {1, 2, 3}`` — many different sequences are optimal, so diversity is not forced down by the task.
PPO (value head, GAE γ = 1, λ = 0.95, per-token KL penalty β = 0.05 to the initial policy, 2 epochs per batch of 64)
with and without the curiosity reward (top-1 gate; η = 0.02, 0.05, 0.5 per token — the intrinsic reward is
normalised to unit RMS, so η·L is its scale against a terminal reward ≤ 1).  Evaluated on 512 sampled responses: mean reward,
distinct-1/2/3 and the fraction of distinct whole responses.
"""

from __future__ import annotations

import copy
import statistics
import time

import torch

from wannmag.llm.cd_rlhf import CuriosityModule, curiosity_shaping
from wannmag.llm.common import TinyConfig, TinyTransformer, generate, make_generator, seed_everything
from wannmag.llm.common.metrics import distinct_n
from wannmag.llm.common.ppo import ActorCritic, PPOConfig, ppo_train
from wannmag.llm.common.report import experiment_main, format_table, new_figure, save_figure

V_TOK, L = 16, 8
OFFSET = 3  # ids 0,1,2 are <pad> <bos> <eos>


def scripted_reward(tokens: torch.Tensor) -> torch.Tensor:
    t = tokens - OFFSET
    diff = (t[:, 1:] - t[:, :-1]) % V_TOK
    ok = (diff >= 1) & (diff <= 3) & (t[:, 1:] >= 0) & (t[:, :-1] >= 0)
    return ok.float().mean(1)


@torch.no_grad()
def evaluate(model, n: int, g) -> dict:
    gen = generate(model, torch.full((n, 1), 1), L, generator=g, eos_id=None)
    seqs = gen.tokens.tolist()
    return {"reward": float(scripted_reward(gen.tokens).mean()), "d1": distinct_n(seqs, 1), "d2": distinct_n(seqs, 2),
            "d3": distinct_n(seqs, 3), "unique": len({tuple(s) for s in seqs}) / n}


def run(seed: int = 0, tiny: bool = False, out: str | None = "out/llm/cd_rlhf.png", n_seeds: int | None = None) -> dict:
    """``n_seeds`` defaults to 1 with ``tiny``, else 3; ``out`` None: no plot."""
    seed_everything(seed)
    t0 = time.time()
    steps = 4 if tiny else 150
    seeds = [seed + i for i in range(n_seeds or (1 if tiny else 3))]
    res, curves = {}, {}
    for name, eta in (("PPO", 0.0), ("PPO + curiosity η=0.02", 0.02), ("PPO + curiosity η=0.05", 0.05),
                      ("PPO + curiosity η=0.5", 0.5)):
        for s in seeds:
            cfg = TinyConfig(vocab_size=V_TOK + OFFSET, d_model=32, n_heads=2, n_layers=1, d_mlp=64, max_len=L + 2)
            ac = ActorCritic(TinyTransformer(cfg, seed=s))
            ref = copy.deepcopy(ac.model)
            pc = PPOConfig(steps=steps, max_new=L, lr=2e-3, kl_coef=0.05, epochs=2)
            stats: list = []
            shaping = (curiosity_shaping(CuriosityModule(cfg.d_model, cfg.vocab_size, seed=s), eta=eta, k=1,
                                         stats=stats) if eta else None)
            prompt = torch.full((64, 1), 1)
            hist = ppo_train(ac, lambda _s: prompt, lambda ro: scripted_reward(ro.tokens), pc, make_generator(10 + s),
                             ref=ref, shaping_fn=shaping)
            ev = evaluate(ac.model, 128 if tiny else 512, make_generator(99 + s))
            for k, v in ev.items():
                res.setdefault(name, {}).setdefault(k, []).append(v)
            curves.setdefault(name, []).append([h["reward"] for h in hist])
    m = lambda x: f"{statistics.mean(x):.3f}" + (f" ± {statistics.stdev(x):.3f}" if len(x) > 1 else "")  # noqa: E731
    init = evaluate(TinyTransformer(TinyConfig(vocab_size=V_TOK + OFFSET, d_model=32, n_heads=2, n_layers=1, d_mlp=64,
                                               max_len=L + 2), seed=seed), 512, make_generator(99))
    print(f"CD-RLHF toy ({steps} PPO steps × 64 responses of {L} tokens; seeds {seeds}; 512 sampled responses; "
          f"initial policy: reward {init['reward']:.3f}, distinct-2 {init['d2']:.3f})")
    rows = [[k, m(v["reward"]), m(v["d1"]), m(v["d2"]), m(v["d3"]), m(v["unique"])] for k, v in res.items()]
    print(format_table(["policy", "reward", "distinct-1", "distinct-2", "distinct-3", "unique responses"], rows))
    fig, ax = new_figure(2)
    for name, cs in curves.items():
        ax[0, 0].plot(torch.tensor(cs).mean(0), label=name)
        ax[0, 1].scatter(res[name]["reward"], res[name]["d3"], label=name)
    ax[0, 0].set(xlabel="PPO step", ylabel="scripted reward (batch mean)")
    ax[0, 0].legend(fontsize=7)
    ax[0, 1].set(xlabel="reward", ylabel="distinct-3")
    ax[0, 1].legend(fontsize=7)
    save_figure(fig, out)
    print(f"plot: {out}  ({time.time() - t0:.1f} s)")
    return res


def main(argv=None) -> None:
    experiment_main("cd_rlhf", __doc__, run, argv)


if __name__ == "__main__":
    main()
