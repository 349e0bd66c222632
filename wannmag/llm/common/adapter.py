"""Model adapters (issue 23): the small interface through which the kernels reach into a transformer, so that they
apply to any PyTorch decoder with pre-LN blocks and Linear→activation→Linear MLPs, not only to
:class:`~wannmag.llm.common.model.TinyTransformer`.

``as_adapter(model)`` returns a :class:`ModelAdapter`.  Implementations: :class:`TinyAdapter`
(``TinyTransformer``; pass-through, bit-identical to calling the model) and :class:`GPT2Adapter`
(:class:`~wannmag.llm.common.gpt2.MiniGPT2`, an independently written GPT-2-style model with plain ``nn.Linear``
layers, HF-style names and tied embeddings).  Register another architecture with :func:`register_adapter`.

The interface:

* sizes: ``n_layers``, ``d_model``, ``n_heads``, ``d_head``, ``vocab_size``;
* structure: ``blocks`` (the ``nn.ModuleList``; wrappers such as ITT/MoHD replace entries), ``mlp(i)`` /
  ``set_mlp(i, m)``, ``mlp_in(i)`` / ``mlp_out(i)`` (the MLP's input and output Linear), ``attn_qkv(i)`` (q, k, v
  Linears, each head = ``d_head`` consecutive rows), ``attn_out(i)`` (output projection, head = columns),
  ``ln1(i)`` / ``ln2(i)``, ``final_norm``, ``embedding`` (token embedding ``nn.Embedding``);
* sub-layer calls for block wrappers: ``attn_call(block, h, *args)`` (attention of a block on a normed input, the
  block's extra forward arguments passed through) and ``mlp_call(mlp, h, *args)`` → output tensor;
  ``block_out(out)`` / ``block_rebuild(out, y)`` split a block's return value into its hidden state and the rest;
* :meth:`forward` (``input_ids`` | ``inputs_embeds``, ``position_ids``, ``attn_mask`` bool (T,T)/(B,T,T),
  ``attn_bias`` callable ``fn(layer, scores, allowed)``, ``return_attn``, ``return_mlp``, ``return_final``) →
  :class:`~wannmag.llm.common.model.ModelOutput` (``hidden`` = [final-normed hidden state] with ``return_final``);
* ``embed(ids)``, ``soft_embed(probs)`` (``probs @ E``);
* neuron masks (multiplying the MLP's hidden activations): ``set_neuron_mask(layer, mask)``,
  ``clear_neuron_masks()``;
* LoRA: :meth:`lora_layer` / :meth:`lora_layers` (roles ``q k v o fc_in fc_out``) return
  :class:`~wannmag.llm.common.lora.LoRALinear` layers, replacing a plain ``nn.Linear`` in place by a
  ``LoRALinear`` with the same weights (the model's function is unchanged).

MLP activations and neuron masks of a foreign model are taken with a forward pre-hook on ``mlp_out`` (its input is
the post-nonlinearity activation), the final hidden state with a forward hook on ``final_norm``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import contextmanager, nullcontext

import torch
from torch import nn

from .lora import LoRALinear
from .model import ModelOutput, TinyTransformer

ROLES = ("q", "k", "v", "o", "fc_in", "fc_out")

__all__ = ["ModelAdapter", "TinyAdapter", "GPT2Adapter", "as_adapter", "register_adapter", "to_lora_linear", "ROLES"]


def to_lora_linear(lin: nn.Linear) -> LoRALinear:
    """A ``LoRALinear`` with ``lin``'s weights, device and dtype (``lin`` itself if it already is one)."""
    if isinstance(lin, LoRALinear):
        return lin
    new = LoRALinear(lin.in_features, lin.out_features, bias=lin.bias is not None).to(lin.weight.device,
                                                                                       lin.weight.dtype)
    with torch.no_grad():
        new.weight.copy_(lin.weight)
        if lin.bias is not None:
            new.bias.copy_(lin.bias)
    new.weight.requires_grad_(lin.weight.requires_grad)
    if lin.bias is not None:
        new.bias.requires_grad_(lin.bias.requires_grad)
    return new


class ModelAdapter:
    """Base class; subclasses fill in the structural accessors."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    # ---- sizes
    n_layers: int
    d_model: int
    n_heads: int
    vocab_size: int

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    # ---- structure (subclasses)
    @property
    def blocks(self) -> nn.ModuleList:
        raise NotImplementedError

    def attn(self, i: int) -> nn.Module:
        raise NotImplementedError

    def mlp(self, i: int) -> nn.Module:
        raise NotImplementedError

    def set_mlp(self, i: int, module: nn.Module) -> None:
        raise NotImplementedError

    def _linear_path(self, i: int, role: str) -> tuple[nn.Module, str]:
        """(parent module, attribute name) of the Linear with ``role`` in layer i."""
        raise NotImplementedError

    def ln1(self, i: int) -> nn.Module:
        raise NotImplementedError

    def ln2(self, i: int) -> nn.Module:
        raise NotImplementedError

    @property
    def final_norm(self) -> nn.Module:
        raise NotImplementedError

    @property
    def embedding(self) -> nn.Embedding:
        raise NotImplementedError

    # ---- block-level operations (static: block wrappers keep the adapter *class*, never the model)
    mlp_returns_acts = False  # does a block's MLP return (output, activations)?

    @staticmethod
    def block_ln1(block: nn.Module) -> nn.Module:
        raise NotImplementedError

    @staticmethod
    def block_ln2(block: nn.Module) -> nn.Module:
        raise NotImplementedError

    @staticmethod
    def attn_call(block: nn.Module, h: torch.Tensor, *args) -> tuple[torch.Tensor, tuple]:
        """(attention output, extras) of ``block``'s attention on the normed input h; ``args`` = the block's own
        extra forward arguments."""
        raise NotImplementedError

    @staticmethod
    def mlp_call(block: nn.Module, h: torch.Tensor, *args) -> tuple[torch.Tensor, tuple]:
        raise NotImplementedError

    @staticmethod
    def block_pack(x: torch.Tensor, extra_attn: tuple, extra_mlp: tuple):
        """A block's return value from its hidden state and the sub-layers' extras."""
        return x

    @staticmethod
    def block_drop(block: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
        return getattr(block, "drop", None) or (lambda z: z)

    # ---- linears
    def linear(self, i: int, role: str) -> nn.Linear:
        parent, name = self._linear_path(i, role)
        return getattr(parent, name)

    def mlp_in(self, i: int) -> nn.Linear:
        return self.linear(i, "fc_in")

    def mlp_out(self, i: int) -> nn.Linear:
        return self.linear(i, "fc_out")

    def attn_qkv(self, i: int) -> list[nn.Linear]:
        return [self.linear(i, r) for r in ("q", "k", "v")]

    def attn_out(self, i: int) -> nn.Linear:
        return self.linear(i, "o")

    def lora_layer(self, i: int, role: str) -> LoRALinear:
        """The role's Linear as a ``LoRALinear`` (wrapped in place if it was a plain ``nn.Linear``)."""
        parent, name = self._linear_path(i, role)
        lin = getattr(parent, name)
        if not isinstance(lin, LoRALinear):
            lin = to_lora_linear(lin)
            setattr(parent, name, lin)
        return lin

    def lora_layers(self, roles: Iterable[str] | None = None) -> list[tuple[str, LoRALinear]]:
        """``(f"{layer}.{role}", LoRALinear)`` for every targeted role of every layer (all roles if None)."""
        roles = ROLES if roles is None else tuple(roles)
        bad = [r for r in roles if r not in ROLES]
        if bad:
            raise ValueError(f"unknown LoRA target(s) {bad}; roles are {ROLES}")
        return [(f"{i}.{r}", self.lora_layer(i, r)) for i in range(self.n_layers) for r in roles]

    # ---- embeddings
    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.embedding(input_ids)

    def soft_embed(self, probs: torch.Tensor) -> torch.Tensor:
        w = self.embedding.weight
        return probs.to(w.dtype) @ w

    # ---- forward
    def forward(self, input_ids=None, *, inputs_embeds=None, position_ids=None, attn_mask=None, attn_bias=None,
                return_attn=False, return_mlp=False, return_final=False) -> ModelOutput:
        raise NotImplementedError

    __call__ = forward

    def logits(self, input_ids=None, **kw) -> torch.Tensor:
        return self.forward(input_ids, **kw).logits

    @contextmanager
    def capture_mlp(self):
        """Collect each layer's MLP hidden activation (input of ``mlp_out``) in a list while active."""
        acts: list = [None] * self.n_layers
        hs = []
        for i in range(self.n_layers):
            def pre(mod, args, i=i):
                acts[i] = args[0]
            hs.append(self.mlp_out(i).register_forward_pre_hook(pre))
        try:
            yield acts
        finally:
            for h in hs:
                h.remove()

    @contextmanager
    def capture_final(self):
        out: list = []
        h = self.final_norm.register_forward_hook(lambda m, a, o: out.append(o))
        try:
            yield out
        finally:
            h.remove()

    # ---- neuron masks
    def set_neuron_mask(self, layer: int, mask: torch.Tensor) -> None:
        raise NotImplementedError

    def clear_neuron_masks(self) -> None:
        raise NotImplementedError


class TinyAdapter(ModelAdapter):
    """:class:`TinyTransformer`: pass-through (the model already has every hook)."""

    _ROLE = {"q": ("attn", "q"), "k": ("attn", "k"), "v": ("attn", "v"), "o": ("attn", "o"),
             "fc_in": ("mlp", "fc_in"), "fc_out": ("mlp", "fc_out")}

    def __init__(self, model: TinyTransformer) -> None:
        super().__init__(model)
        cfg = model.cfg
        self.n_layers, self.d_model, self.n_heads, self.vocab_size = (cfg.n_layers, cfg.d_model, cfg.n_heads,
                                                                      cfg.vocab_size)

    @property
    def blocks(self):
        return self.model.blocks

    def _core(self, i):  # the TinyTransformer Block inside possible wrappers (ITT/MoHD)
        blk = self.model.blocks[i]
        while not hasattr(blk, "attn") and hasattr(blk, "block"):
            blk = blk.block
        return blk

    def attn(self, i):
        return self._core(i).attn

    def mlp(self, i):
        return self._core(i).mlp

    def set_mlp(self, i, module):
        self._core(i).mlp = module

    def _linear_path(self, i, role):
        sub, name = self._ROLE[role]
        return getattr(self._core(i), sub), name

    def ln1(self, i):
        return self._core(i).ln1

    def ln2(self, i):
        return self._core(i).ln2

    @property
    def final_norm(self):
        return self.model.ln_f

    @property
    def embedding(self):
        return self.model.tok_emb

    def embed(self, input_ids):
        return self.model.embed_tokens(input_ids)

    def soft_embed(self, probs):
        return self.model.soft_embed(probs)

    mlp_returns_acts = True

    @staticmethod
    def block_ln1(block):
        return block.ln1

    @staticmethod
    def block_ln2(block):
        return block.ln2

    @staticmethod
    def attn_call(block, h, allowed, attn_bias=None, mlp_hook=None):
        a, probs = block.attn(h, allowed, attn_bias)
        return a, (probs,)

    @staticmethod
    def mlp_call(block, h, allowed=None, attn_bias=None, mlp_hook=None):
        mo, acts = block.mlp(h, mlp_hook)
        return mo, (acts,)

    @staticmethod
    def block_pack(x, extra_attn, extra_mlp):
        return (x, *extra_attn, *extra_mlp)

    def forward(self, input_ids=None, *, inputs_embeds=None, position_ids=None, attn_mask=None, attn_bias=None,
                return_attn=False, return_mlp=False, return_final=False, **extra) -> ModelOutput:
        """``extra``: TinyTransformer-only keywords (``mlp_hook``, ``return_hidden``) passed through."""
        if return_final:
            extra["return_hidden"] = True
        out = self.model(input_ids, inputs_embeds=inputs_embeds, position_ids=position_ids, attn_mask=attn_mask,
                         attn_bias=attn_bias, return_attn=return_attn, return_mlp=return_mlp, **extra)
        if return_final:
            out.hidden = [self.model.ln_f(out.hidden[-1])]
        return out

    def set_neuron_mask(self, layer, mask):
        self.model.set_neuron_mask(layer, mask)

    def clear_neuron_masks(self):
        self.model.clear_neuron_masks()


class GPT2Adapter(ModelAdapter):
    """:class:`~wannmag.llm.common.gpt2.MiniGPT2` (plain Linears, HF-style names, tied embeddings)."""

    _ROLE = {"q": ("attn", "q_proj"), "k": ("attn", "k_proj"), "v": ("attn", "v_proj"), "o": ("attn", "o_proj"),
             "fc_in": ("mlp", "up_proj"), "fc_out": ("mlp", "down_proj")}

    def __init__(self, model) -> None:
        super().__init__(model)
        cfg = model.config
        self.n_layers, self.d_model, self.n_heads, self.vocab_size = (cfg.n_layer, cfg.n_embd, cfg.n_head,
                                                                      cfg.vocab_size)

    @property
    def blocks(self):
        return self.model.h

    def _core(self, i):
        blk = self.model.h[i]
        while not hasattr(blk, "attn") and hasattr(blk, "block"):
            blk = blk.block
        return blk

    def attn(self, i):
        return self._core(i).attn

    def mlp(self, i):
        return self._core(i).mlp

    def set_mlp(self, i, module):
        self._core(i).mlp = module

    def _linear_path(self, i, role):
        sub, name = self._ROLE[role]
        return getattr(self._core(i), sub), name

    def ln1(self, i):
        return self._core(i).ln_1

    def ln2(self, i):
        return self._core(i).ln_2

    @property
    def final_norm(self):
        return self.model.ln_f

    @property
    def embedding(self):
        return self.model.wte

    @staticmethod
    def block_ln1(block):
        return block.ln_1

    @staticmethod
    def block_ln2(block):
        return block.ln_2

    @staticmethod
    def attn_call(block, h, attention_mask=None):
        return block.attn(h, attention_mask), ()

    @staticmethod
    def mlp_call(block, h, attention_mask=None):
        return block.mlp(h), ()

    def forward(self, input_ids=None, *, inputs_embeds=None, position_ids=None, attn_mask=None, attn_bias=None,
                return_attn=False, return_mlp=False, return_final=False) -> ModelOutput:
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("give exactly one of input_ids and inputs_embeds")
        attns = [self.attn(i) for i in range(self.n_layers)]
        if attn_bias is not None and not callable(attn_bias):
            tensor_bias = attn_bias
            attn_bias = lambda layer, scores, allowed: tensor_bias  # noqa: E731
        for a in attns:
            a.score_hook, a.keep_probs = attn_bias, return_attn
        am = attn_mask
        try:
            with (self.capture_mlp() if return_mlp else nullcontext([])) as acts, \
                    (self.capture_final() if return_final else nullcontext([])) as fin:
                logits = self.model(input_ids, inputs_embeds=inputs_embeds, position_ids=position_ids,
                                    attention_mask=am)
        finally:
            for a in attns:
                a.score_hook, a.keep_probs = None, False
        out = ModelOutput(logits=logits)
        if return_attn:
            out.attn = [a.last_probs for a in attns]
        if return_mlp:
            out.mlp = list(acts)
        if return_final:
            out.hidden = [fin[-1]]
        for a in attns:
            a.last_probs = None
        return out

    def set_neuron_mask(self, layer, mask):
        lin = self.mlp_out(layer)
        if not getattr(lin, "_wm_mask_hooked", False):
            lin.register_forward_pre_hook(_neuron_mask_pre_hook)
            lin._wm_mask_hooked = True
        lin._wm_neuron_mask = mask.to(lin.weight.device, lin.weight.dtype)

    def clear_neuron_masks(self):
        for i in range(self.n_layers):
            self.mlp_out(i)._wm_neuron_mask = None


def _neuron_mask_pre_hook(mod, args):
    m = getattr(mod, "_wm_neuron_mask", None)
    return args if m is None else (args[0] * m,) + tuple(args[1:])


_REGISTRY: list[tuple[Callable[[nn.Module], bool], Callable[[nn.Module], ModelAdapter]]] = []


def register_adapter(predicate: Callable[[nn.Module], bool], factory: Callable[[nn.Module], ModelAdapter]) -> None:
    """Make :func:`as_adapter` recognise another architecture (checked before the built-in ones)."""
    _REGISTRY.insert(0, (predicate, factory))


def as_adapter(model) -> ModelAdapter:
    """The adapter of ``model`` (an adapter is returned as is).  Adapters hold no state of their own (neuron masks
    live on the model), so a fresh one per call is fine and ``copy.deepcopy(model)`` needs no care."""
    if isinstance(model, ModelAdapter):
        return model
    from .gpt2 import MiniGPT2
    for pred, fac in _REGISTRY:
        if pred(model):
            ad = fac(model)
            break
    else:
        if isinstance(model, TinyTransformer):
            ad = TinyAdapter(model)
        elif isinstance(model, MiniGPT2):
            ad = GPT2Adapter(model)
        else:
            raise TypeError(f"no model adapter for {type(model).__name__}; see wannmag.llm.common.adapter."
                            "register_adapter")
    return ad
