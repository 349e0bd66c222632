"""Shared setting of the fine-tuning experiments (BeamLoRA, APEX): a tiny model pretrained on 2-step mod-10
arithmetic with ``+``/``-`` only, then fine-tuned on a shifted distribution: 1-step problems with ``*`` (the
operator never seen in pretraining).  Direct answers, loss on the answer token only.  (2-step problems mixing ``*``
were tried first: even full fine-tuning stayed below 45 % accuracy after 300 steps, too hard to compare methods.)"""

from __future__ import annotations

import torch

from wannmag.llm.common import ArithmeticTask, TinyConfig, TinyTransformer, TrainConfig, make_generator, train

PRE_OPS = ("+", "-")
FT_OPS = ("*",)
FT_STEPS = 1


def batch(task: ArithmeticTask, n: int, ops, g: torch.Generator, steps: int = 2) -> dict:
    """Problems with ``steps`` operations drawn from ``ops``."""
    return task.encode(task.sample(n, steps, g, ops=ops), "direct", answer_only=True)


def ft_batch(task: ArithmeticTask, n: int, g: torch.Generator) -> dict:
    """A batch of the shifted fine-tuning distribution."""
    return batch(task, n, FT_OPS, g, FT_STEPS)


def pretrained(seed: int, steps: int, d_mlp: int = 128) -> tuple[ArithmeticTask, TinyTransformer]:
    task = ArithmeticTask()
    cfg = TinyConfig(vocab_size=len(task.vocab), d_model=64, n_heads=4, n_layers=2, d_mlp=d_mlp, max_len=16)
    model = TinyTransformer(cfg, seed=seed)
    g = make_generator(seed + 1)
    train(model, lambda s: batch(task, 128, PRE_OPS, g), TrainConfig(steps=steps, lr=3e-3))
    return task, model


def eval_sets(task: ArithmeticTask, seed: int, n: int = 2048) -> tuple[dict, dict]:
    """(held-out pretraining distribution, held-out shifted distribution)."""
    return batch(task, n, PRE_OPS, make_generator(seed + 5)), ft_batch(task, n, make_generator(seed + 6))
