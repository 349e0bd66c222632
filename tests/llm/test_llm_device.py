"""Device/dtype hygiene of every kernel (issue 23).

Two checks:

* ``test_no_factory_call_without_device`` runs each kernel's core functions on the CPU under a
  ``TorchFunctionMode`` that records every tensor factory call (``torch.zeros``, ``rand``, ``arange``, ``tensor``…)
  made from ``wannmag/llm`` code without ``device=`` (module ``__init__``s are exempt: modules are moved with
  ``.to``; so are the CPU data generators in ``common/tasks.py``).  Such a call makes a CPU tensor whatever the
  inputs' device, the bug this test guards against.
* ``test_kernels_on_device`` runs the core functions on ``meta`` (and on ``cuda`` when present) and checks every
  output is on that device; ``meta`` tensors refuse to mix with CPU tensors, so a CPU-only tensor in the
  computation raises.  Functions that read data on the host (``int(x)``, ``nonzero``) cannot run on ``meta``;
  they are covered by the factory audit and, on a CUDA machine, by the ``cuda`` run.
* ``test_kernels_keep_the_model_dtype`` runs every case (meta-able and host-reading) on a float64 copy of both
  architectures and checks every floating output is float64: a parameter, buffer or tensor made in the default
  float32, or a ``.float()`` cast, either raises (dtype mismatch in a matmul) or shows up as a float32 output.
"""

from __future__ import annotations

import os
import sys

import pytest

torch = pytest.importorskip("torch")
from torch.overrides import TorchFunctionMode  # noqa: E402

from llm_kernel_cases import ARCHS, DEVICE_CASES, HOST_CASES, tiny_model  # noqa: E402

FACTORIES = {torch.zeros, torch.ones, torch.randn, torch.rand, torch.randint, torch.randperm, torch.arange,
             torch.tensor, torch.empty, torch.full, torch.eye, torch.linspace}
LLM_DIR = os.path.join("wannmag", "llm") + os.sep
EXEMPT_FILES = (os.path.join("common", "tasks.py"), os.sep + "experiments" + os.sep)


class FactoryAudit(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.hits: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in FACTORIES and "device" not in kwargs:
            f = sys._getframe(1)
            fn = f.f_code.co_filename
            if LLM_DIR in fn and not any(e in fn for e in EXEMPT_FILES) and f.f_code.co_name != "__init__":
                self.hits.append(f"{fn.split(LLM_DIR)[-1]}:{f.f_lineno} {func.__name__}")
        return func(*args, **kwargs)


def test_audit_catches_a_cpu_only_factory(tmp_path):
    """The audit itself works: a factory call without device= inside wannmag/llm is reported."""
    from wannmag.llm.common import device as devmod
    with FactoryAudit() as audit:
        devmod.randn_gen((2,), None)            # passes device= → not reported
    assert audit.hits == []
    code = compile("import torch\ndef f():\n    return torch.zeros(3)\n", os.path.join("x", LLM_DIR, "fake.py"), "exec")
    ns: dict = {}
    exec(code, ns)
    with FactoryAudit() as audit:
        ns["f"]()
    assert len(audit.hits) == 1 and "zeros" in audit.hits[0]


@pytest.mark.parametrize("name", sorted(set(HOST_CASES) | set(DEVICE_CASES)))
def test_no_factory_call_without_device(name):
    model = tiny_model("tiny")
    with FactoryAudit() as audit:
        for case in (HOST_CASES.get(name), DEVICE_CASES.get(name)):
            if case is not None:
                case(model, torch.device("cpu"))
    assert audit.hits == [], f"{name}: tensors created without device=: {audit.hits}"


DEVICES = ["meta"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", sorted(DEVICE_CASES))
def test_kernels_on_device(name, device):
    dev = torch.device(device)
    model = tiny_model("tiny").to(dev)
    outs = DEVICE_CASES[name](model, dev)
    assert outs, "a case must return its outputs"
    for o in outs:
        assert o.device.type == dev.type, f"{name}: output on {o.device}, expected {dev}"
    if device == "cuda":  # the host-reading parts run on a real device too
        if name in HOST_CASES:
            HOST_CASES[name](model, dev)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("name", sorted(set(HOST_CASES) | set(DEVICE_CASES)))
def test_kernels_keep_the_model_dtype(name, arch):
    cpu = torch.device("cpu")
    outs = []
    for case in (DEVICE_CASES.get(name), HOST_CASES.get(name)):
        if case is not None:
            outs += case(tiny_model(arch).to(torch.float64), cpu)
    floats = [o for o in outs if o.is_floating_point()]
    assert floats, name
    assert [o.dtype for o in floats] == [torch.float64] * len(floats), name


def test_upcast_only_raises_half_precision():
    from wannmag.llm.common.device import upcast
    for dt, want in ((torch.bfloat16, torch.float32), (torch.float16, torch.float32), (torch.float32, torch.float32),
                     (torch.float64, torch.float64), (torch.int64, torch.int64)):
        x = torch.arange(3).to(dt)
        assert upcast(x).dtype == want and torch.equal(upcast(x).double(), x.double())
    y = torch.ones(2)
    assert upcast(y) is y                       # float32 is returned as is (the experiments' numbers unchanged)
