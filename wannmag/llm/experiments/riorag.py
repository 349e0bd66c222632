"""RioRAG experiment: a tiny policy writes ``slot value …`` answers from three noisy synthetic sources.

The policy is first fine-tuned on a sloppy writer (each checklist fact kept with probability 0.4, a wrong value
with probability 0.2, 0–3 filler tokens), then optimised with GRPO on the nugget reward, once without and once
with the length decay (l0 = 8 tokens = all four facts, τ = 4, k = 1, m = 2).  Reported on held-out episodes:
fact recall (consistent items / checklist items), contradictions, response length and reward.
"""

from __future__ import annotations

import copy
import time

import torch

from wannmag.llm.common import (NuggetQATask, TinyConfig, TinyTransformer, TrainConfig, clipped_policy_loss, generate,
                                group_advantages, make_generator, seed_everything, sequence_logprobs, train)
from wannmag.llm.common.report import experiment_main, format_table, new_figure, save_figure
from wannmag.llm.common.tasks import IGNORE
from wannmag.llm.riorag import build_checklist, extract_nuggets, response_reward

MAX_NEW = 20
DECAY = dict(l0=8, tau=4.0, k=1.0, m=2.0, penalty=0.5)


def sloppy_batch(task: NuggetQATask, n: int, g: torch.Generator) -> dict:
    ep = task.sample(n, g)
    seqs = []
    for i in range(n):
        check = build_checklist([extract_nuggets(task, s) for s in ep.sources[i]])
        pairs = []
        for s, v in check.items():
            if float(torch.rand(1, generator=g)) < 0.4:
                if float(torch.rand(1, generator=g)) < 0.2:
                    v = (v + int(torch.randint(1, task.n_values, (1,), generator=g))) % task.n_values
                pairs.append((s, v))
        order = torch.randperm(len(pairs), generator=g).tolist()
        fill = torch.randint(0, task.n_fillers, (int(torch.randint(0, 4, (1,), generator=g)),), generator=g).tolist()
        resp = task.encode_response([pairs[j] for j in order], fill)
        seqs.append(resp + [task.vocab.pad] * (MAX_NEW + 1 - len(resp)))
    resp = torch.tensor(seqs)
    ids = torch.cat([ep.prompt, resp], 1)
    labels = torch.full_like(ids, IGNORE)
    p = ep.prompt.shape[1]
    labels[:, p - 1:-1] = torch.where(resp == task.vocab.pad, IGNORE, resp)
    return {"input_ids": ids, "labels": labels}


@torch.no_grad()
def evaluate(model, task, episodes, g, decay: bool) -> dict:
    gen = generate(model, episodes.prompt, MAX_NEW, generator=g, eos_id=task.vocab.eos)
    rec, con, lens, rews = [], [], [], []
    for i in range(len(episodes.sources)):
        r, j, n = response_reward(task, episodes.sources[i], gen.tokens[i].tolist(), decay=decay, **DECAY)
        rec.append(j.consistent / max(j.n_items, 1))
        con.append(j.contradictory / max(j.n_items, 1))
        lens.append(n)
        rews.append(r)
    mean = lambda x: sum(x) / len(x)  # noqa: E731
    return {"recall": mean(rec), "contradictory": mean(con), "length": mean(lens), "reward": mean(rews)}


def answer_match_reward(task: NuggetQATask, sources, response) -> float:
    """Control reward (issue 23): plain answer match — 1 if the response states exactly the checklist's facts (the
    reference answer, order free, fillers ignored), else 0.  No partial credit, no length term."""
    from wannmag.llm.riorag import response_length
    checklist = build_checklist([extract_nuggets(task, s) for s in sources])
    toks = list(response)[:response_length(task, response)]
    return float(set(extract_nuggets(task, toks)) == set(checklist.items()))


def grpo(model, task, steps: int, decay: bool, g: torch.Generator, n_prompts: int = 8, group: int = 8,
         lr: float = 1e-3, plain_match: bool = False) -> list[tuple[float, float]]:
    """GRPO on the nugget reward (``plain_match=True``: on :func:`answer_match_reward` instead)."""
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    curve = []
    for _ in range(steps):
        ep = task.sample(n_prompts, g)
        prompt = ep.prompt.repeat_interleave(group, 0)
        gen = generate(model, prompt, MAX_NEW, generator=g, eos_id=task.vocab.eos)
        rewards, recs, lens = [], [], []
        for i in range(prompt.shape[0]):
            r, j, n = response_reward(task, ep.sources[i // group], gen.tokens[i].tolist(), decay=decay, **DECAY)
            if plain_match:
                r = answer_match_reward(task, ep.sources[i // group], gen.tokens[i].tolist())
            rewards.append(r)
            recs.append(j.consistent / max(j.n_items, 1))
            lens.append(n)
        adv = group_advantages(torch.tensor(rewards).view(n_prompts, group)).view(-1)
        model.train()
        logp = sequence_logprobs(model, prompt, gen.tokens)
        loss = clipped_policy_loss(logp, gen.logprobs, adv, gen.mask)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        model.eval()
        curve.append((sum(recs) / len(recs), sum(lens) / len(lens)))
    return curve


def run(seed: int = 0, tiny: bool = False, out: str | None = "out/llm/riorag.png") -> dict:
    g = seed_everything(seed)
    t0 = time.time()
    task = NuggetQATask()
    cfg = TinyConfig(vocab_size=len(task.vocab), d_model=64, n_heads=4, n_layers=2, d_mlp=128,
                     max_len=task.prompt_len + MAX_NEW + 2)
    model = TinyTransformer(cfg, seed=seed)
    sft_steps = 30 if tiny else 1200
    train(model, lambda s: sloppy_batch(task, 64, g), TrainConfig(steps=sft_steps, lr=3e-3, warmup=20))
    held = task.sample(64 if tiny else 256, make_generator(seed + 9))
    res = {"SFT (sloppy writer)": evaluate(model, task, held, make_generator(seed + 10), decay=True)}
    rl_steps = 5 if tiny else 150
    curves = {}
    for decay in (False, True):
        pol = copy.deepcopy(model)
        name = f"GRPO, length decay {'on' if decay else 'off'}"
        curves[name] = grpo(pol, task, rl_steps, decay, make_generator(seed + 20))
        res[name] = evaluate(pol, task, held, make_generator(seed + 10), decay=True)
    print(f"RioRAG nugget reward + GRPO ({sft_steps} SFT steps, {rl_steps} GRPO steps of 8 prompts × 8 samples; "
          f"{len(held.sources)} held-out episodes; reward column with the decay l0={DECAY['l0']}, τ={DECAY['tau']}, "
          f"contradiction penalty λ={DECAY['penalty']})")
    rows = [[k, v["recall"], v["contradictory"], v["length"], v["reward"]] for k, v in res.items()]
    print(format_table(["policy", "fact recall", "contradictory", "length [tokens]", "reward"], rows))
    fig, ax = new_figure(2)
    for name, c in curves.items():
        ax[0, 0].plot([x[0] for x in c], label=name)
        ax[0, 1].plot([x[1] for x in c], label=name)
    ax[0, 0].set(xlabel="GRPO step", ylabel="fact recall (training batch)")
    ax[0, 1].axhline(DECAY["l0"], color="0.6", ls="--", label="l0")
    ax[0, 1].set(xlabel="GRPO step", ylabel="response length [tokens]")
    ax[0, 1].legend(fontsize=7)
    save_figure(fig, out)
    print(f"plot: {out}  ({time.time() - t0:.1f} s)")
    return res


def run_control(seed: int = 0, tiny: bool = False, n_seeds: int | None = None) -> dict:
    """Issue-23 control: GRPO on the nugget reward (with decay) vs on a plain answer-match reward, ``n_seeds``
    seeds (default 2 with ``tiny``, else 5; each its own SFT policy); held-out metrics as mean ± sample std.
    ``python -m wannmag.llm.experiments.riorag --control``."""
    import statistics
    seed_everything(seed)
    t0 = time.time()
    task = NuggetQATask()
    sft_steps, rl_steps, n_held = (10, 2, 16) if tiny else (1200, 150, 256)
    seeds = [seed + i for i in range(n_seeds or (2 if tiny else 5))]
    res: dict = {}
    for s in seeds:
        g = make_generator(s)
        cfg = TinyConfig(vocab_size=len(task.vocab), d_model=64, n_heads=4, n_layers=2, d_mlp=128,
                         max_len=task.prompt_len + MAX_NEW + 2)
        model = TinyTransformer(cfg, seed=s)
        train(model, lambda _s: sloppy_batch(task, 64, g), TrainConfig(steps=sft_steps, lr=3e-3, warmup=20))
        held = task.sample(n_held, make_generator(s + 9))
        runs = {"SFT": model}
        for name, pm in (("GRPO, nugget reward + decay", False), ("GRPO, plain answer match", True)):
            pol = copy.deepcopy(model)
            grpo(pol, task, rl_steps, True, make_generator(s + 20), plain_match=pm)
            runs[name] = pol
        for name, m in runs.items():
            ev = evaluate(m, task, held, make_generator(s + 10), decay=True)
            ev["exact"] = _exact_rate(m, task, held, make_generator(s + 10))
            for k, v in ev.items():
                res.setdefault(name, {}).setdefault(k, []).append(v)
            print(f"  seed {s}, {name}: " + " ".join(f"{k} {v:.3f}" for k, v in ev.items()), flush=True)
    print(f"RioRAG control ({sft_steps} SFT + {rl_steps} GRPO steps, seeds {seeds}, {n_held} held-out episodes; "
          "mean ± sample std over seeds)")
    keys = ["recall", "contradictory", "length", "reward", "exact"]
    f = lambda v: f"{statistics.mean(v):.3f} ± {statistics.stdev(v):.3f}"  # noqa: E731
    rows = [[name] + [f(d[k]) for k in keys] for name, d in res.items()]
    print(format_table(["policy", "fact recall", "contradictory", "length", "nugget reward", "exact answer"], rows))
    print(f"({time.time() - t0:.1f} s)")
    return res


@torch.no_grad()
def _exact_rate(model, task, episodes, g) -> float:
    gen = generate(model, episodes.prompt, MAX_NEW, generator=g, eos_id=task.vocab.eos)
    hits = [answer_match_reward(task, episodes.sources[i], gen.tokens[i].tolist())
            for i in range(len(episodes.sources))]
    return sum(hits) / len(hits)


def main(argv=None) -> None:
    if argv is None:
        import sys
        argv = sys.argv[1:]
    if "--control" in argv:
        argv = [a for a in argv if a != "--control"]
        experiment_main("riorag", __doc__, lambda seed, tiny, out: run_control(seed, tiny), argv)
        return
    experiment_main("riorag", __doc__, run, argv)


if __name__ == "__main__":
    main()
