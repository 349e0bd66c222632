"""Attach LoRA adapters to a model by target: role names (``q k v o fc_in fc_out``) through the model's
:mod:`~wannmag.llm.common.adapter`, other names by the last name component of its
:class:`~wannmag.llm.common.lora.LoRALinear` modules.

Apart from :mod:`~wannmag.llm.common.lora` because it needs the adapter, which (with the model) builds on
``LoRALinear``: this module imports both, and neither imports it.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from .adapter import ROLES, as_adapter
from .lora import LoRALinear, lora_layers

__all__ = ["target_layers", "add_lora"]


def target_layers(model: nn.Module, targets: Iterable[str] | None) -> list[tuple[str, LoRALinear]]:
    """The ``LoRALinear`` layers for ``targets``: role names (``q k v o fc_in fc_out``) go through the model's
    :mod:`~wannmag.llm.common.adapter` (plain ``nn.Linear`` layers of a foreign model are wrapped in place); other
    names (or a model without adapter) select ``LoRALinear`` modules by their last name component."""
    if targets is not None and set(targets) <= set(ROLES):
        try:
            ad = as_adapter(model)
        except TypeError:
            ad = None
        if ad is not None:
            return ad.lora_layers([r for r in ROLES if r in set(targets)])
    return list(lora_layers(model, targets))


def add_lora(model: nn.Module, r: int, alpha: float | None = None, targets: Iterable[str] | None = ("q", "v"),
             name: str = "default", seed: int = 0, freeze_base: bool = True) -> list[nn.Parameter]:
    """Attach a rank-r adapter to the targeted layers (default: attention q and v); return the new parameters.

    With ``freeze_base`` every other parameter of ``model`` gets ``requires_grad=False``.
    """
    g = torch.Generator().manual_seed(seed)
    if freeze_base:
        for p in model.parameters():
            p.requires_grad_(False)
    params: list[nn.Parameter] = []
    for _, layer in target_layers(model, targets):
        ad = layer.add_lora(r, alpha, name=name, generator=g)
        params += [ad.A, ad.B]
    if not params:
        raise ValueError(f"no LoRALinear layer matches targets {targets}")
    return params
