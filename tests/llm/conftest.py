import pytest

try:
    import torch
except ImportError:  # the llm extra is optional: every test module skips itself via importorskip
    torch = None


@pytest.fixture(autouse=True)
def _one_thread():
    if torch is not None:
        torch.set_num_threads(1)
        torch.manual_seed(0)
    yield
