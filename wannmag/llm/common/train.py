"""A minimal, reusable training loop: AdamW on a batch function, next-token cross-entropy on labelled positions."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .adapter import as_adapter
from .tasks import IGNORE

FORWARD_KEYS = ("input_ids", "inputs_embeds", "position_ids", "attn_mask", "attn_bias")


@dataclass
class TrainConfig:
    steps: int = 1000
    lr: float = 3e-3
    weight_decay: float = 0.0
    warmup: int = 50
    grad_clip: float = 1.0
    cosine: bool = True
    log_every: int = 0  # print the mean loss every this many steps (0: silent)


def lm_loss(logits: torch.Tensor, labels: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy over positions with ``labels != -100``.  ``reduction="none"`` → per-sequence mean (B,)."""
    v = logits.shape[-1]
    if reduction == "mean":
        return F.cross_entropy(logits.reshape(-1, v), labels.reshape(-1), ignore_index=IGNORE)
    ce = F.cross_entropy(logits.reshape(-1, v), labels.reshape(-1), ignore_index=IGNORE, reduction="none")
    ce = ce.view(labels.shape)
    n = (labels != IGNORE).sum(1).clamp(min=1)
    return ce.sum(1) / n


def forward_batch(model: nn.Module, batch: dict, **extra):
    """Call the model (through its :mod:`~wannmag.llm.common.adapter`) with the forward-relevant keys of a task
    batch; returns a ``ModelOutput``."""
    kw = {k: batch[k] for k in FORWARD_KEYS if k in batch}
    kw.update(extra)
    return as_adapter(model).forward(**kw)


def batch_loss(model: nn.Module, batch: dict | list[dict], **extra) -> torch.Tensor:
    """Mean next-token loss of a batch (or of a list of batches with different shapes, weighted by label count)."""
    if isinstance(batch, dict):
        return lm_loss(forward_batch(model, batch, **extra).logits, batch["labels"])
    tot, cnt = 0.0, 0
    for b in batch:
        n = int((b["labels"] != IGNORE).sum())
        tot = tot + lm_loss(forward_batch(model, b, **extra).logits, b["labels"]) * n
        cnt += n
    return tot / max(cnt, 1)


def train(model: nn.Module, batch_fn: Callable[[int], dict | list[dict]], cfg: TrainConfig,
          params: Iterable[nn.Parameter] | None = None,
          loss_fn: Callable[[nn.Module, dict | list[dict]], torch.Tensor] | None = None,
          callback: Callable[[int, nn.Module, float], None] | None = None) -> list[float]:
    """Train ``params`` (default: all trainable parameters) for ``cfg.steps`` steps; return the loss history.

    ``batch_fn(step)`` returns a batch dict (or a list of them); ``loss_fn(model, batch)`` defaults to
    :func:`batch_loss`; ``callback(step, model, loss)`` runs after every step (checkpoints, logging).
    """
    params = [p for p in (model.parameters() if params is None else params) if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.98))

    def lr_at(step: int) -> float:
        if step < cfg.warmup:
            return cfg.lr * (step + 1) / cfg.warmup
        if not cfg.cosine:
            return cfg.lr
        frac = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
        return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))

    loss_fn = loss_fn or batch_loss
    model.train()
    hist: list[float] = []
    for step in range(cfg.steps):
        for gr in opt.param_groups:
            gr["lr"] = lr_at(step)
        loss = loss_fn(model, batch_fn(step))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        hist.append(float(loss.detach()))
        if cfg.log_every and (step + 1) % cfg.log_every == 0:
            print(f"  step {step + 1:5d}  loss {sum(hist[-cfg.log_every:]) / cfg.log_every:.4f}", flush=True)
        if callback is not None:
            callback(step, model, hist[-1])
    model.eval()
    return hist


@torch.no_grad()
def answer_accuracy(model: nn.Module, batch: dict, **extra) -> float:
    """Fraction of labelled positions whose argmax prediction equals the label."""
    logits = forward_batch(model, batch, **extra).logits
    m = batch["labels"] != IGNORE
    return float((logits.argmax(-1)[m] == batch["labels"][m]).float().mean())
