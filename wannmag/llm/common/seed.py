"""Seeding and thread control: every experiment and test calls :func:`seed_everything` (one thread by default)."""

from __future__ import annotations

import random

import numpy as np
import torch


def set_threads(n: int = 1) -> None:
    """Limit torch's intra-op threads (the machine is shared; experiments run on one core)."""
    torch.set_num_threads(int(n))


def seed_everything(seed: int, threads: int | None = 1) -> torch.Generator:
    """Seed python, numpy and torch; set the thread count (``None`` leaves it); return a seeded CPU generator."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if threads is not None:
        set_threads(threads)
    return make_generator(seed)


def make_generator(seed: int) -> torch.Generator:
    """A fresh ``torch.Generator`` with the given seed (for task sampling and stochastic decoding)."""
    g = torch.Generator()
    g.manual_seed(int(seed))
    return g
