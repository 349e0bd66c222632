import math

import pytest

torch = pytest.importorskip("torch")

from wannmag.llm.common import NuggetQATask  # noqa: E402
from wannmag.llm.riorag import (build_checklist, extract_nuggets, judge, length_decay, nugget_reward,  # noqa: E402
                                response_reward)


@pytest.fixture
def task():
    return NuggetQATask(n_slots=6, n_values=5, n_facts=3)


def toks(task, *pairs, fill=()):
    return task.encode_response(pairs, fill)


def test_extract_and_merge_with_majority_vote(task):
    src1 = toks(task, (0, 1), (2, 3))[:-1] + [int(task.w_ids[0])]
    src2 = toks(task, (0, 1), (2, 4))[:-1]
    src3 = toks(task, (0, 2), (5, 0))[:-1]
    assert extract_nuggets(task, src1) == [(0, 1), (2, 3)]
    check = build_checklist([extract_nuggets(task, s) for s in (src1, src2, src3)])
    assert check == {0: 1, 5: 0}  # slot 2 ties 1:1 and is dropped; slot 0 wins 2:1


def test_judge_and_reward_on_hand_made_examples(task):
    check = {0: 1, 2: 3, 5: 0, 4: 4}
    j = judge([(0, 1), (2, 2), (3, 3), (5, 0), (5, 1)], check)
    assert j.labels == {0: "consistent", 2: "contradictory", 5: "contradictory", 4: "missing"}
    assert (j.consistent, j.contradictory, j.missing) == (1, 2, 1)
    assert nugget_reward(j) == pytest.approx((1 - 2) / 4)
    assert nugget_reward(j, penalty=0.5) == pytest.approx(0.0)
    assert nugget_reward(judge([], {})) == 0.0


def test_length_decay_values():
    assert length_decay(8, 8, 4) == 1.0 and length_decay(3, 8, 4) == 1.0
    assert length_decay(12, 8, 4, k=1, m=2) == pytest.approx(math.exp(-1))
    assert length_decay(16, 8, 4, k=0.5, m=1) == pytest.approx(math.exp(-1))
    assert length_decay(10, 8, 4) > length_decay(11, 8, 4) > length_decay(14, 8, 4)


def test_response_reward_applies_decay_to_positive_rewards_only(task):
    srcs = [toks(task, (0, 1), (1, 2))[:-1], toks(task, (0, 1), (1, 2))[:-1]]
    good = toks(task, (0, 1), (1, 2))
    r, j, n = response_reward(task, srcs, good, l0=4, tau=2)
    assert (r, n, j.consistent) == (1.0, 4, 2)
    long = toks(task, (0, 1), (1, 2), fill=[0, 1, 2, 3])
    r_long, _, n_long = response_reward(task, srcs, long, l0=4, tau=2)
    assert n_long == 8 and r_long == pytest.approx(math.exp(-4))
    assert response_reward(task, srcs, long, decay=False, l0=4, tau=2)[0] == 1.0
    bad_long = toks(task, (0, 2), (1, 0), fill=[0, 0, 0, 0])
    assert response_reward(task, srcs, bad_long, l0=4, tau=2)[0] == -1.0  # a penalty is never softened
    # tokens after <eos> are ignored
    assert response_reward(task, srcs, good + toks(task, (0, 3)), l0=4, tau=2)[0] == 1.0
