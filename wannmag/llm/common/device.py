"""Device/dtype helpers for the kernels: random draws from a (CPU) ``torch.Generator`` that land on the device of
the data, so a seeded run gives the same numbers on every device.

A ``torch.Generator`` lives on one device; ``torch.rand(..., generator=g, device=other)`` is an error.  These helpers
draw on the generator's device (the data's device when no generator is given) and move the result.
"""

from __future__ import annotations

import torch

__all__ = ["rand_like_gen", "randn_gen", "multinomial_gen", "module_device", "upcast"]


def _draw_device(generator: torch.Generator | None, device: torch.device) -> torch.device:
    return torch.device(device) if generator is None else generator.device


def rand_like_gen(like: torch.Tensor, generator: torch.Generator | None = None,
                  shape: tuple | torch.Size | None = None) -> torch.Tensor:
    """U(0,1) of ``shape`` (default ``like.shape``) on ``like``'s device and dtype (floating ``like`` only)."""
    shape = like.shape if shape is None else shape
    dev = _draw_device(generator, like.device)
    return torch.rand(shape, generator=generator, device=dev, dtype=like.dtype).to(like.device)


def randn_gen(shape, generator: torch.Generator | None = None, *, device=None,
              dtype: torch.dtype | None = None) -> torch.Tensor:
    """N(0,1) of ``shape`` drawn on the generator's device, returned on ``device``/``dtype``."""
    device = torch.device("cpu") if device is None else torch.device(device)
    dev = _draw_device(generator, device)
    return torch.randn(shape, generator=generator, device=dev, dtype=dtype).to(device)


def multinomial_gen(probs: torch.Tensor, num_samples: int = 1,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """``torch.multinomial`` that accepts a generator on another device than ``probs`` (samples on the
    generator's device, returned on ``probs``' device)."""
    if generator is None or generator.device == probs.device:
        return torch.multinomial(probs, num_samples, generator=generator)
    return torch.multinomial(probs.to(generator.device), num_samples, generator=generator).to(probs.device)


def upcast(x: torch.Tensor) -> torch.Tensor:
    """``x`` in at least single precision for a softmax/log-softmax/quantile: half-precision (float16, bfloat16)
    goes to float32, float32 and float64 stay as they are (``x.float()`` would drop a float64 model to float32)."""
    return x.float() if x.is_floating_point() and torch.finfo(x.dtype).bits < 32 else x


def module_device(module: torch.nn.Module) -> tuple[torch.device, torch.dtype]:
    """(device, dtype) of a module's first floating parameter (CPU / default dtype for a parameter-free module)."""
    for p in module.parameters():
        if p.is_floating_point():
            return p.device, p.dtype
    return torch.device("cpu"), torch.get_default_dtype()
