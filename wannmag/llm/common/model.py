"""A tiny decoder-only transformer shared by every ``wannmag.llm`` kernel.

Pre-LayerNorm blocks (attention + GELU/ReLU MLP), learned absolute position embeddings (optional), untied LM head.
Every projection is a :class:`~wannmag.llm.common.lora.LoRALinear` (named ``q``, ``k``, ``v``, ``o``, ``fc_in``,
``fc_out``, ``lm_head``) so LoRA variants attach by name.

Hooks for the kernels (all optional arguments of :meth:`TinyTransformer.forward`):

* ``inputs_embeds`` (B,T,d) instead of ``input_ids`` — soft tokens: ``model.soft_embed(probs)`` is ``probs @ E``.
* ``position_ids`` (B,T) or (T,) — e.g. positions restarting inside each retrieved document.
* ``attn_mask`` bool (T,T)/(B,T,T)/(B,H,T,T), True = may attend (combined with the causal mask).
* ``attn_bias`` — additive bias on the attention logits ``q·k/√d_h``: a tensor broadcastable to (B,H,T,T), or a
  callable ``fn(layer, scores, allowed) -> bias`` that sees the layer's raw scaled scores (B,H,T,T) and the boolean
  ``allowed`` mask (BEE-RAG's intrinsic importance needs the raw scores), returning a tensor or ``None``.
* ``mlp_hook`` — callable ``fn(layer, acts) -> acts`` on the post-nonlinearity MLP activations (B,T,d_mlp).
  Persistent per-neuron multipliers: :meth:`set_neuron_mask` / :meth:`clear_neuron_masks` (KAPE deactivation).
* ``return_attn`` / ``return_mlp`` / ``return_hidden`` — attention probabilities per layer (B,H,T,T), MLP
  activations per layer (B,T,d_mlp), residual stream after the embedding and after each block (B,T,d).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from .lora import LoRALinear

AttnBias = torch.Tensor | Callable[[int, torch.Tensor, torch.Tensor], torch.Tensor | None] | None
MlpHook = Callable[[int, torch.Tensor], torch.Tensor] | None


@dataclass
class TinyConfig:
    vocab_size: int
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2
    d_mlp: int = 256
    max_len: int = 128
    pos_emb: bool = True
    activation: str = "gelu"  # "gelu" or "relu"
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads:
            raise ValueError("d_model must be divisible by n_heads")
        if self.activation not in ("gelu", "relu"):
            raise ValueError(f"unknown activation {self.activation!r}")


@dataclass
class ModelOutput:
    logits: torch.Tensor
    attn: list[torch.Tensor] = field(default_factory=list)
    mlp: list[torch.Tensor] = field(default_factory=list)
    hidden: list[torch.Tensor] = field(default_factory=list)


class Attention(nn.Module):
    def __init__(self, cfg: TinyConfig, layer: int) -> None:
        super().__init__()
        self.layer = layer
        self.n_heads = cfg.n_heads
        self.d_head = cfg.d_model // cfg.n_heads
        self.q = LoRALinear(cfg.d_model, cfg.d_model)
        self.k = LoRALinear(cfg.d_model, cfg.d_model)
        self.v = LoRALinear(cfg.d_model, cfg.d_model)
        self.o = LoRALinear(cfg.d_model, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor, attn_bias: AttnBias) -> tuple[torch.Tensor, torch.Tensor]:
        b, t, d = x.shape
        h, dh = self.n_heads, self.d_head
        q = self.q(x).view(b, t, h, dh).transpose(1, 2)
        k = self.k(x).view(b, t, h, dh).transpose(1, 2)
        v = self.v(x).view(b, t, h, dh).transpose(1, 2)
        scores = q @ k.transpose(-1, -2) / math.sqrt(dh)  # (B,H,T,T)
        if attn_bias is not None:
            bias = attn_bias(self.layer, scores, allowed) if callable(attn_bias) else attn_bias
            if bias is not None:
                scores = scores + bias
        scores = scores.masked_fill(~allowed, float("-inf"))
        probs = torch.softmax(scores, dim=-1)
        y = self.drop(probs) @ v
        y = y.transpose(1, 2).reshape(b, t, d)
        return self.o(y), probs


class MLP(nn.Module):
    def __init__(self, cfg: TinyConfig, layer: int) -> None:
        super().__init__()
        self.layer = layer
        self.fc_in = LoRALinear(cfg.d_model, cfg.d_mlp)
        self.fc_out = LoRALinear(cfg.d_mlp, cfg.d_model)
        self.act = nn.GELU() if cfg.activation == "gelu" else nn.ReLU()
        self.register_buffer("neuron_mask", torch.ones(cfg.d_mlp))

    def forward(self, x: torch.Tensor, hook: MlpHook) -> tuple[torch.Tensor, torch.Tensor]:
        a = self.act(self.fc_in(x))
        if hook is not None:
            a = hook(self.layer, a)
        a = a * self.neuron_mask
        return self.fc_out(a), a


class Block(nn.Module):
    def __init__(self, cfg: TinyConfig, layer: int) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.attn = Attention(cfg, layer)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.mlp = MLP(cfg, layer)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x, allowed, attn_bias=None, mlp_hook=None):
        a, probs = self.attn(self.ln1(x), allowed, attn_bias)
        x = x + self.drop(a)
        m, acts = self.mlp(self.ln2(x), mlp_hook)
        x = x + self.drop(m)
        return x, probs, acts


class TinyTransformer(nn.Module):
    """Decoder-only transformer; see the module docstring for the hooks."""

    def __init__(self, cfg: TinyConfig, seed: int | None = None) -> None:
        super().__init__()
        if seed is not None:
            torch.manual_seed(seed)
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos_emb = nn.Embedding(cfg.max_len, cfg.d_model) if cfg.pos_emb else None
        self.blocks = nn.ModuleList([Block(cfg, i) for i in range(cfg.n_layers)])
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.lm_head = LoRALinear(cfg.d_model, cfg.vocab_size, bias=False)
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):  # 1/√fan_in: attention logits are O(1) at init, so matching is learnt fast
            nn.init.normal_(m.weight, std=1.0 / math.sqrt(m.in_features))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=1.0)

    # ----------------------------------------------------------------------------------------------- embeddings
    def embed_tokens(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.tok_emb(input_ids)

    def soft_embed(self, probs: torch.Tensor) -> torch.Tensor:
        """Soft token: the probability-weighted mixture ``Σ_v p_v E_v`` of token embeddings, probs (...,V)."""
        return probs.to(self.tok_emb.weight.dtype) @ self.tok_emb.weight

    # ----------------------------------------------------------------------------------------------- masks
    def set_neuron_mask(self, layer: int, mask: torch.Tensor) -> None:
        """Multiply the MLP activations of ``layer`` by ``mask`` (d_mlp,) in every later forward (0 = deactivate)."""
        buf = self.blocks[layer].mlp.neuron_mask
        buf.copy_(mask.to(buf))

    def clear_neuron_masks(self) -> None:
        for blk in self.blocks:
            blk.mlp.neuron_mask.fill_(1.0)

    # ----------------------------------------------------------------------------------------------- forward
    def forward(self, input_ids: torch.Tensor | None = None, *, inputs_embeds: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None, attn_mask: torch.Tensor | None = None,
                attn_bias: AttnBias = None, mlp_hook: MlpHook = None, return_attn: bool = False,
                return_mlp: bool = False, return_hidden: bool = False) -> ModelOutput:
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("give exactly one of input_ids and inputs_embeds")
        x = self.embed_tokens(input_ids) if inputs_embeds is None else inputs_embeds
        b, t, _ = x.shape
        if self.pos_emb is not None:
            if position_ids is None:
                position_ids = torch.arange(t, device=x.device)
            if position_ids.device.type != "meta" and int(position_ids.max()) >= self.cfg.max_len:
                raise ValueError(f"position {int(position_ids.max())} >= max_len {self.cfg.max_len}")
            x = x + self.pos_emb(position_ids)
        allowed = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
        if attn_mask is not None:
            am = attn_mask.bool()
            if am.dim() == 3:
                am = am[:, None]
            allowed = allowed & am
        allowed = torch.broadcast_to(allowed, (b, self.cfg.n_heads, t, t))
        out = ModelOutput(logits=x.new_empty(0))
        if return_hidden:
            out.hidden.append(x)
        for blk in self.blocks:
            x, probs, acts = blk(x, allowed, attn_bias, mlp_hook)
            if return_attn:
                out.attn.append(probs)
            if return_mlp:
                out.mlp.append(acts)
            if return_hidden:
                out.hidden.append(x)
        out.logits = self.lm_head(self.ln_f(x))
        return out

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def config_dict(self) -> dict:
        return asdict(self.cfg)
