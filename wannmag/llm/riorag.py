"""RioRAG reward (Wang et al., "Reinforced informativeness optimization for long-form retrieval-augmented
generation", arXiv 2505.20825): nugget-centric, checklist-based reward with a length decay, optimised with GRPO.

What is implemented
-------------------
1. **Nugget extraction per source** (:func:`extract_nuggets`): the (slot, value) claims a source states.
2. **Merged checklist** (:func:`build_checklist`): claims of all sources merged per slot by majority vote
   (cross-source check); a slot whose vote ties is left out (unverifiable).
3. **Judgement per item** (:func:`judge`): the response's claims are compared with every checklist item —
   *consistent* (states the slot with the checklist value only), *contradictory* (states the slot with another
   value), *missing* (does not state it).
4. **Reward** (:func:`nugget_reward`): ``r = (n_consistent − λ n_contradictory)/n_items``; with the
   **length decay** ``r · exp(−k((l − l0)/τ)^m)`` for a positive r when the response length l exceeds l0
   (:func:`length_decay`; a non-positive r is left as is so that length never softens a penalty).
5. **GRPO** uses :func:`wannmag.llm.common.rl.group_advantages` and ``clipped_policy_loss``.

Simplifications: the paper uses an LLM to extract nuggets, merge the checklist and judge; here sources and responses
are token sequences whose claims are ``slot value`` token pairs, so all three stages are exact parsers.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from .common.tasks import NuggetQATask

__all__ = ["extract_nuggets", "build_checklist", "judge", "Judgement", "length_decay", "nugget_reward",
           "response_reward", "response_length"]


def extract_nuggets(task: NuggetQATask, tokens: Sequence[int]) -> list[tuple[int, int]]:
    """(slot, value) index pairs for every slot token directly followed by a value token."""
    out = []
    toks = [int(t) for t in tokens]
    for a, b in zip(toks[:-1], toks[1:]):
        s, v = task.slot_index(a), task.value_index(b)
        if s is not None and v is not None:
            out.append((s, v))
    return out


def build_checklist(per_source: Sequence[Sequence[tuple[int, int]]]) -> dict[int, int]:
    """Majority value per slot over the sources (each source votes once per slot); ties are dropped."""
    votes: dict[int, Counter] = {}
    for nuggets in per_source:
        for s, v in dict(nuggets).items():  # one vote per source and slot (its last claim)
            votes.setdefault(s, Counter())[v] += 1
    out = {}
    for s, c in votes.items():
        (v1, n1), *rest = c.most_common()
        if not rest or rest[0][1] < n1:
            out[s] = v1
    return out


@dataclass
class Judgement:
    consistent: int
    contradictory: int
    missing: int
    labels: dict[int, str]

    @property
    def n_items(self) -> int:
        return self.consistent + self.contradictory + self.missing


def judge(response_nuggets: Sequence[tuple[int, int]], checklist: dict[int, int]) -> Judgement:
    """Label every checklist item consistent / contradictory / missing for the response's claims."""
    stated: dict[int, set[int]] = {}
    for s, v in response_nuggets:
        stated.setdefault(s, set()).add(v)
    labels = {}
    for s, v in checklist.items():
        if s not in stated:
            labels[s] = "missing"
        elif stated[s] == {v}:
            labels[s] = "consistent"
        else:
            labels[s] = "contradictory"
    cnt = Counter(labels.values())
    return Judgement(cnt["consistent"], cnt["contradictory"], cnt["missing"], labels)


def length_decay(length: float, l0: float, tau: float, k: float = 1.0, m: float = 2.0) -> float:
    """``exp(−k((l − l0)/τ)^m)`` for l > l0, else 1."""
    if length <= l0:
        return 1.0
    return math.exp(-k * ((length - l0) / tau) ** m)


def nugget_reward(j: Judgement, penalty: float = 1.0) -> float:
    """``(n_consistent − penalty·n_contradictory)/n_items`` (0 for an empty checklist)."""
    if j.n_items == 0:
        return 0.0
    return (j.consistent - penalty * j.contradictory) / j.n_items


def response_length(task: NuggetQATask, tokens: Sequence[int]) -> int:
    """Number of tokens before the first ``<eos>`` (all tokens if none)."""
    toks = [int(t) for t in tokens]
    return toks.index(task.vocab.eos) if task.vocab.eos in toks else len(toks)


def response_reward(task: NuggetQATask, sources: Sequence[Sequence[int]], response: Sequence[int], *,
                    decay: bool = True, l0: float = 8, tau: float = 4, k: float = 1.0, m: float = 2.0,
                    penalty: float = 1.0) -> tuple[float, Judgement, int]:
    """Full reward of one response: (reward, judgement, length)."""
    checklist = build_checklist([extract_nuggets(task, s) for s in sources])
    n_len = response_length(task, response)
    j = judge(extract_nuggets(task, list(response)[:n_len]), checklist)
    r = nugget_reward(j, penalty)
    if decay and r > 0:
        r *= length_decay(n_len, l0, tau, k, m)
    return r, j, n_len
