"""The issue-23 control entry points (``--control``) run end to end in --tiny mode and print their tables."""

import importlib

import pytest

torch = pytest.importorskip("torch")

CASES = [("ma_rlhf", "GAE λ"), ("riorag", "GRPO, plain answer match"), ("bee_rag", "acc balanced (solve)")]


@pytest.mark.parametrize("name,needle", CASES)
def test_tiny_control_runs(name, needle, capsys):
    mod = importlib.import_module(f"wannmag.llm.experiments.{name}")
    mod.main(["--tiny", "--control"])
    out = capsys.readouterr().out
    assert needle in out and "±" in out


def test_answer_match_reward_is_exact_match_only():
    from wannmag.llm.common import NuggetQATask, make_generator
    from wannmag.llm.experiments.riorag import answer_match_reward
    from wannmag.llm.riorag import build_checklist, extract_nuggets
    task = NuggetQATask()
    ep = task.sample(1, make_generator(0))
    check = build_checklist([extract_nuggets(task, s) for s in ep.sources[0]])
    full = task.encode_response(list(check.items()), [])
    assert answer_match_reward(task, ep.sources[0], full) == 1.0
    assert answer_match_reward(task, ep.sources[0], task.encode_response(list(check.items())[:-1], [])) == 0.0
