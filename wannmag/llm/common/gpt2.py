"""A second, independently written decoder: a small GPT-2-style causal LM (issue 23), used to check that the kernels
work through :mod:`wannmag.llm.common.adapter` and not only on :class:`~wannmag.llm.common.model.TinyTransformer`.

Differences from ``TinyTransformer`` on purpose: plain ``nn.Linear`` projections (no LoRA support built in — the
adapter wraps them), LLaMA/HF-style names (``h[i].attn.q_proj/k_proj/v_proj/o_proj``, ``h[i].mlp.up_proj/down_proj``,
``ln_1``/``ln_2``/``ln_f``), tied input/output embeddings (``wte``), the tanh-GELU, GPT-2's 0.02 initialisation,
``forward`` returns the logits tensor (not an output object) and takes a HF-style boolean ``attention_mask``
(B,T,T) (True = may attend).  The only research hook is ``attn.score_hook`` — ``fn(layer, scores, allowed) ->
bias | None`` on the scaled attention logits, ``None`` by default (as in hook-point codebases); ``attn.keep_probs``
stores the attention probabilities of the last call in ``attn.last_probs``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class GPT2Config:
    vocab_size: int
    n_embd: int = 64
    n_head: int = 4
    n_layer: int = 2
    n_inner: int = 256
    n_positions: int = 128


class GPT2Attention(nn.Module):
    def __init__(self, cfg: GPT2Config, layer_idx: int) -> None:
        super().__init__()
        self.layer_idx, self.n_head, self.head_dim = layer_idx, cfg.n_head, cfg.n_embd // cfg.n_head
        self.q_proj = nn.Linear(cfg.n_embd, cfg.n_embd)
        self.k_proj = nn.Linear(cfg.n_embd, cfg.n_embd)
        self.v_proj = nn.Linear(cfg.n_embd, cfg.n_embd)
        self.o_proj = nn.Linear(cfg.n_embd, cfg.n_embd)
        self.score_hook = None
        self.keep_probs = False
        self.last_probs: torch.Tensor | None = None

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        b, t, d = x.shape
        split = lambda z: z.view(b, t, self.n_head, self.head_dim).transpose(1, 2)  # noqa: E731
        q, k, v = split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x))
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(self.head_dim))
        allowed = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
        if attention_mask is not None:
            am = attention_mask.bool()
            allowed = allowed & (am[:, None] if am.dim() == 3 else am)
        allowed = torch.broadcast_to(allowed, att.shape)
        if self.score_hook is not None:
            bias = self.score_hook(self.layer_idx, att, allowed)
            if bias is not None:
                att = att + bias
        att = F.softmax(att.masked_fill(~allowed, float("-inf")), dim=-1)
        self.last_probs = att if self.keep_probs else None
        y = (att @ v).transpose(1, 2).contiguous().view(b, t, d)
        return self.o_proj(y)


class GPT2MLP(nn.Module):
    def __init__(self, cfg: GPT2Config) -> None:
        super().__init__()
        self.up_proj = nn.Linear(cfg.n_embd, cfg.n_inner)
        self.down_proj = nn.Linear(cfg.n_inner, cfg.n_embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.gelu(self.up_proj(x), approximate="tanh"))


class GPT2Block(nn.Module):
    def __init__(self, cfg: GPT2Config, layer_idx: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd)
        self.attn = GPT2Attention(cfg, layer_idx)
        self.ln_2 = nn.LayerNorm(cfg.n_embd)
        self.mlp = GPT2MLP(cfg)

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), attention_mask)
        return x + self.mlp(self.ln_2(x))


class MiniGPT2(nn.Module):
    def __init__(self, cfg: GPT2Config, seed: int | None = None) -> None:
        super().__init__()
        if seed is not None:
            torch.manual_seed(seed)
        self.config = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.wpe = nn.Embedding(cfg.n_positions, cfg.n_embd)
        self.h = nn.ModuleList([GPT2Block(cfg, i) for i in range(cfg.n_layer)])
        self.ln_f = nn.LayerNorm(cfg.n_embd)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
                if isinstance(m, nn.Linear) and m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, input_ids: torch.Tensor | None = None, inputs_embeds: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = self.wte(input_ids) if inputs_embeds is None else inputs_embeds
        if position_ids is None:
            position_ids = torch.arange(x.shape[1], device=x.device)
        x = x + self.wpe(position_ids)
        for blk in self.h:
            x = blk(x, attention_mask)
        return F.linear(self.ln_f(x), self.wte.weight)  # tied embeddings
