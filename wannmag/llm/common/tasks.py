"""Synthetic tasks shared by the kernels (nothing is downloaded; every sample comes from a seeded ``torch.Generator``).

Label convention everywhere: ``labels`` has the shape of ``input_ids`` and ``labels[b, t]`` is the target of the
prediction made *at* position t (the next token), ``-100`` = no loss.  Sequences in one batch have one length.

* :class:`ArithmeticTask` — chains ``x0 op1 a1 … op_s a_s =`` modulo 10, answered directly (``A r_s``) or with a
  chain of thought (``r_1 … r_{s-1} A r_s``).  Used by soft thinking and the swift study.
* :class:`KeyValueDocsTask` — n retrieved "documents" ``[key value filler…]`` encoded in parallel (each document
  sees only itself, positions restart in each), then a query ``Q key*`` whose answer is the matching value.  BEE-RAG.
* :class:`FactConflictTask` — memorised subject/relation → value facts, asked closed-book or after a context
  ``C s r a`` that may contradict memory.  KAPE.
* :class:`NuggetQATask` — a topic with K (slot, value) facts spread over noisy sources; a response is a list of
  ``slot value`` pairs.  RioRAG.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

IGNORE = -100


class Vocab:
    """Token strings ↔ ids; ``<pad>``, ``<bos>``, ``<eos>`` are always ids 0, 1, 2."""

    SPECIALS = ("<pad>", "<bos>", "<eos>")

    def __init__(self, tokens: Sequence[str]) -> None:
        toks = list(self.SPECIALS) + [t for t in tokens if t not in self.SPECIALS]
        if len(set(toks)) != len(toks):
            raise ValueError("duplicate tokens in vocabulary")
        self.itos = toks
        self.stoi = {t: i for i, t in enumerate(toks)}

    pad = property(lambda self: 0)
    bos = property(lambda self: 1)
    eos = property(lambda self: 2)

    def __len__(self) -> int:
        return len(self.itos)

    def __getitem__(self, tok: str) -> int:
        return self.stoi[tok]

    def ids(self, prefix: str, n: int) -> torch.Tensor:
        """Ids of the tokens ``prefix0 … prefix{n-1}``."""
        return torch.tensor([self.stoi[f"{prefix}{i}"] for i in range(n)])

    def encode(self, toks: Sequence[str]) -> list[int]:
        return [self.stoi[t] for t in toks]

    def decode(self, ids: Sequence[int] | torch.Tensor) -> list[str]:
        return [self.itos[int(i)] for i in ids]


def shift_labels(ids: torch.Tensor, start: int | torch.Tensor, end: int | None = None) -> torch.Tensor:
    """Labels predicting ``ids[t+1]`` at positions ``start-1 … end-2`` (targets are tokens start…end-1)."""
    b, t = ids.shape
    labels = torch.full_like(ids, IGNORE)
    end = t if end is None else end
    pos = torch.arange(t)
    start_t = torch.as_tensor(start).reshape(-1, 1) if torch.is_tensor(start) else torch.tensor([[start]])
    keep = (pos[None, :] >= start_t - 1) & (pos[None, :] <= end - 2)
    labels[:, :-1] = torch.where(keep[:, :-1].expand(b, -1), ids[:, 1:], labels[:, :-1])
    return labels


def segment_attention_mask(doc_ids: torch.Tensor) -> torch.Tensor:
    """(B,T,T) bool: tokens of a document (``doc_ids >= 0``) see only their own document; others see everything
    (the causal part is added by the model)."""
    same = doc_ids[:, :, None] == doc_ids[:, None, :]
    free = (doc_ids < 0)[:, :, None]
    return same | free


# ==================================================================================================== arithmetic
@dataclass
class ArithmeticBatch:
    x0: torch.Tensor        # (n,)
    ops: torch.Tensor       # (n,s) 0:+ 1:- 2:*
    operands: torch.Tensor  # (n,s)
    results: torch.Tensor   # (n,s) r_1..r_s

    @property
    def steps(self) -> int:
        return self.ops.shape[1]

    @property
    def answer(self) -> torch.Tensor:
        return self.results[:, -1]


class ArithmeticTask:
    """Multi-step modular arithmetic with and without a chain of thought."""

    OPS = ("+", "-", "*")

    def __init__(self, modulus: int = 10) -> None:
        self.m = modulus
        self.vocab = Vocab([f"{i}" for i in range(modulus)] + list(self.OPS) + ["=", "A"])
        self.digit_ids = torch.tensor([self.vocab[f"{i}"] for i in range(modulus)])
        self.op_ids = torch.tensor([self.vocab[o] for o in self.OPS])

    def apply(self, x: torch.Tensor, op: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return torch.where(op == 0, x + a, torch.where(op == 1, x - a, x * a)) % self.m

    def sample(self, n: int, steps: int, generator: torch.Generator | None = None,
               ops: Sequence[str] | None = None) -> ArithmeticBatch:
        """``ops`` restricts the operators (e.g. ``("+", "-")``; default all three, same random stream as before)."""
        x0 = torch.randint(0, self.m, (n,), generator=generator)
        if ops is None:
            ops = torch.randint(0, len(self.OPS), (n, steps), generator=generator)
        else:
            allowed = torch.tensor([self.OPS.index(o) for o in ops])
            ops = allowed[torch.randint(0, len(allowed), (n, steps), generator=generator)]
        operands = torch.randint(1, self.m, (n, steps), generator=generator)
        operands = torch.where(ops == 2, torch.randint(2, self.m, (n, steps), generator=generator), operands)
        res, x = [], x0
        for i in range(steps):
            x = self.apply(x, ops[:, i], operands[:, i])
            res.append(x)
        return ArithmeticBatch(x0, ops, operands, torch.stack(res, 1))

    def prompt_ids(self, pb: ArithmeticBatch) -> torch.Tensor:
        """``<bos> x0 op1 a1 … op_s a_s =``, shape (n, 2s+3)."""
        n, s = pb.ops.shape
        cols = [torch.full((n,), self.vocab.bos), self.digit_ids[pb.x0]]
        for i in range(s):
            cols += [self.op_ids[pb.ops[:, i]], self.digit_ids[pb.operands[:, i]]]
        cols.append(torch.full((n,), self.vocab["="]))
        return torch.stack(cols, 1)

    def encode(self, pb: ArithmeticBatch, fmt: str = "cot", answer_only: bool = False,
               answers: torch.Tensor | None = None) -> dict:
        """Full sequences with labels.  ``fmt``: ``"cot"`` (``r_1 … r_{s-1} A r_s <eos>``) or ``"direct"``
        (``A r_s <eos>``).  ``answer_only`` puts the loss on the final answer token only.  ``answers`` replaces
        r_s in the text (e.g. for noisy-label data)."""
        if fmt not in ("cot", "direct"):
            raise ValueError(f"unknown format {fmt!r}")
        prompt = self.prompt_ids(pb)
        n = prompt.shape[0]
        ans = pb.answer if answers is None else answers
        cols = []
        if fmt == "cot":
            cols += [self.digit_ids[pb.results[:, i]] for i in range(pb.steps - 1)]
        cols += [torch.full((n,), self.vocab["A"]), self.digit_ids[ans], torch.full((n,), self.vocab.eos)]
        ids = torch.cat([prompt, torch.stack(cols, 1)], 1)
        p = prompt.shape[1]
        ans_pos = ids.shape[1] - 2  # position of the answer token
        if answer_only:
            labels = torch.full_like(ids, IGNORE)
            labels[:, ans_pos - 1] = ids[:, ans_pos]
        else:
            labels = shift_labels(ids, p)
        return {"input_ids": ids, "labels": labels, "prompt_len": p, "answer_pos": ans_pos, "answer": ans}

    def decode_digit(self, tok: torch.Tensor) -> torch.Tensor:
        """Token ids → digit values (−1 for non-digits)."""
        lut = torch.full((len(self.vocab),), -1, dtype=torch.long)
        lut[self.digit_ids] = torch.arange(self.m)
        return lut[tok]


# ==================================================================================================== documents
class KeyValueDocsTask:
    """Key→value lookup among ``n_docs`` parallel-encoded documents + query ``Q key*``.

    A document is ``[value key filler…]`` (``value_first``, the default: the key token can read its value inside
    the document, so the query only has to match key tokens) or ``[key value filler…]``.
    """

    def __init__(self, n_keys: int = 64, n_values: int = 16, n_fillers: int = 16, doc_len: int = 4,
                 value_first: bool = True) -> None:
        if doc_len < 2:
            raise ValueError("doc_len must be >= 2 (key and value)")
        self.n_keys, self.n_values, self.n_fillers, self.doc_len = n_keys, n_values, n_fillers, doc_len
        self.value_first = value_first
        self.vocab = Vocab(["Q"] + [f"k{i}" for i in range(n_keys)] + [f"v{i}" for i in range(n_values)]
                           + [f"f{i}" for i in range(n_fillers)])
        self.key_ids, self.val_ids, self.fill_ids = (self.vocab.ids("k", n_keys), self.vocab.ids("v", n_values),
                                                     self.vocab.ids("f", n_fillers))

    def seq_len(self, n_docs: int) -> int:
        return n_docs * self.doc_len + 2

    def sample(self, batch: int, n_docs: int, generator: torch.Generator | None = None) -> dict:
        if n_docs > self.n_keys:
            raise ValueError("more documents than distinct keys")
        m = self.doc_len
        keys = torch.rand(batch, self.n_keys, generator=generator).argsort(1)[:, :n_docs]
        vals = torch.randint(0, self.n_values, (batch, n_docs), generator=generator)
        fill = torch.randint(0, self.n_fillers, (batch, n_docs, m - 2), generator=generator)
        target = torch.randint(0, n_docs, (batch,), generator=generator)
        kv = [self.key_ids[keys][..., None], self.val_ids[vals][..., None]]
        if self.value_first:
            kv = kv[::-1]
        docs = torch.cat(kv + [self.fill_ids[fill]], -1)
        ar = torch.arange(batch)
        qkey = self.key_ids[keys[ar, target]]
        ids = torch.cat([docs.reshape(batch, -1), torch.full((batch, 1), self.vocab["Q"]), qkey[:, None]], 1)
        t = ids.shape[1]
        doc_ids = torch.cat([torch.arange(n_docs).repeat_interleave(m), torch.tensor([-1, -1])])
        doc_ids = doc_ids.expand(batch, t).clone()
        pos = torch.cat([torch.arange(m).repeat(n_docs), torch.tensor([m, m + 1])])
        answer = vals[ar, target]
        labels = torch.full_like(ids, IGNORE)
        labels[:, -1] = self.val_ids[answer]
        return {"input_ids": ids, "labels": labels, "position_ids": pos, "doc_ids": doc_ids,
                "attn_mask": segment_attention_mask(doc_ids), "answer": answer, "answer_id": self.val_ids[answer],
                "target_doc": target, "n_docs": n_docs}


# ==================================================================================================== facts
class FactConflictTask:
    """Memorised facts ``(s, r) → a`` asked closed-book ``<bos> s r ?`` or open-book ``<bos> C s r a_ctx s r ?``."""

    def __init__(self, n_subjects: int = 48, n_relations: int = 2, n_values: int = 12, seed: int = 0) -> None:
        self.n_subjects, self.n_relations, self.n_values = n_subjects, n_relations, n_values
        self.vocab = Vocab(["C", "?"] + [f"s{i}" for i in range(n_subjects)] + [f"r{i}" for i in range(n_relations)]
                           + [f"a{i}" for i in range(n_values)])
        g = torch.Generator().manual_seed(seed)
        self.facts = torch.randint(0, n_values, (n_subjects, n_relations), generator=g)
        self.s_ids, self.r_ids, self.a_ids = (self.vocab.ids("s", n_subjects), self.vocab.ids("r", n_relations),
                                              self.vocab.ids("a", n_values))

    def queries(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return (torch.randint(0, self.n_subjects, (n,), generator=generator),
                torch.randint(0, self.n_relations, (n,), generator=generator))

    def all_queries(self) -> tuple[torch.Tensor, torch.Tensor]:
        s, r = torch.meshgrid(torch.arange(self.n_subjects), torch.arange(self.n_relations), indexing="ij")
        return s.reshape(-1), r.reshape(-1)

    def conflicting_values(self, s: torch.Tensor, r: torch.Tensor, generator: torch.Generator | None = None):
        """A context value different from the memorised one, uniformly among the others."""
        off = torch.randint(1, self.n_values, s.shape, generator=generator)
        return (self.facts[s, r] + off) % self.n_values

    def closed_book(self, s: torch.Tensor, r: torch.Tensor, target: torch.Tensor | None = None) -> dict:
        n = s.shape[0]
        ids = torch.stack([torch.full((n,), self.vocab.bos), self.s_ids[s], self.r_ids[r],
                           torch.full((n,), self.vocab["?"])], 1)
        return self._with_target(ids, self.facts[s, r] if target is None else target)

    def open_book(self, s: torch.Tensor, r: torch.Tensor, ctx: torch.Tensor, target: torch.Tensor | None = None):
        n = s.shape[0]
        ids = torch.stack([torch.full((n,), self.vocab.bos), torch.full((n,), self.vocab["C"]), self.s_ids[s],
                           self.r_ids[r], self.a_ids[ctx], self.s_ids[s], self.r_ids[r],
                           torch.full((n,), self.vocab["?"])], 1)
        return self._with_target(ids, ctx if target is None else target)

    def _with_target(self, ids: torch.Tensor, target: torch.Tensor) -> dict:
        labels = torch.full_like(ids, IGNORE)
        labels[:, -1] = self.a_ids[target]
        return {"input_ids": ids, "labels": labels, "target": target}

    def train_batch(self, batch: int, generator: torch.Generator | None = None, p_context: float = 0.5,
                    p_conflict: float = 0.1, p_follow: float = 1.0) -> tuple[dict, dict]:
        """(closed-book part, open-book part): a fraction ``p_context`` is open-book; of those a fraction
        ``p_conflict`` carries a counterfactual context (the rest repeat memory), whose value is the target with
        probability ``p_follow`` (else the memorised value is)."""
        n_open = int(round(batch * p_context))
        s, r = self.queries(batch, generator)
        closed = self.closed_book(s[n_open:], r[n_open:])
        so, ro = s[:n_open], r[:n_open]
        conflict = torch.rand(n_open, generator=generator) < p_conflict
        ctx = torch.where(conflict, self.conflicting_values(so, ro, generator), self.facts[so, ro])
        follow = torch.rand(n_open, generator=generator) < p_follow
        return closed, self.open_book(so, ro, ctx, torch.where(follow, ctx, self.facts[so, ro]))


# ==================================================================================================== nuggets
@dataclass
class NuggetEpisodes:
    prompt: torch.Tensor               # (B, P) token ids
    sources: list[list[list[int]]]     # per episode, per source: token ids (no 'D' marker)
    truth: list[dict[int, int]]        # per episode: slot → value (slot/value indices, not token ids)


class NuggetQATask:
    """A topic has ``n_facts`` (slot, value) facts; ``n_sources`` sources each state a few of them (a value is
    corrupted with probability ``p_error``), padded with filler pairs.  Prompt: ``<bos> D src … D src Q``;
    a response is ``slot value slot value … <eos>``."""

    def __init__(self, n_slots: int = 12, n_values: int = 8, n_facts: int = 4, n_sources: int = 3,
                 facts_per_source: int = 3, p_error: float = 0.15, n_fillers: int = 4) -> None:
        self.n_slots, self.n_values, self.n_facts = n_slots, n_values, n_facts
        self.n_sources, self.fps, self.p_error, self.n_fillers = n_sources, facts_per_source, p_error, n_fillers
        self.vocab = Vocab(["D", "Q"] + [f"s{i}" for i in range(n_slots)] + [f"v{i}" for i in range(n_values)]
                           + [f"w{i}" for i in range(n_fillers)])
        self.s_ids, self.v_ids, self.w_ids = (self.vocab.ids("s", n_slots), self.vocab.ids("v", n_values),
                                              self.vocab.ids("w", n_fillers))
        self._slot_of = {int(t): i for i, t in enumerate(self.s_ids)}
        self._value_of = {int(t): i for i, t in enumerate(self.v_ids)}

    def slot_index(self, tok: int) -> int | None:
        return self._slot_of.get(int(tok))

    def value_index(self, tok: int) -> int | None:
        return self._value_of.get(int(tok))

    @property
    def prompt_len(self) -> int:
        return 2 + self.n_sources * (1 + 2 * self.fps)

    def sample(self, batch: int, generator: torch.Generator | None = None) -> NuggetEpisodes:
        prompts, sources, truths = [], [], []
        for _ in range(batch):
            slots = torch.randperm(self.n_slots, generator=generator)[: self.n_facts].tolist()
            vals = torch.randint(0, self.n_values, (self.n_facts,), generator=generator).tolist()
            truth = dict(zip(slots, vals))
            toks = [self.vocab.bos]
            srcs = []
            for _s in range(self.n_sources):
                k = int(torch.randint(max(1, self.fps - 1), self.fps + 1, (1,), generator=generator))
                idx = torch.randperm(self.n_facts, generator=generator)[:k].tolist()
                src: list[int] = []
                for i in idx:
                    v = vals[i]
                    if float(torch.rand(1, generator=generator)) < self.p_error:
                        v = (v + int(torch.randint(1, self.n_values, (1,), generator=generator))) % self.n_values
                    src += [int(self.s_ids[slots[i]]), int(self.v_ids[v])]
                while len(src) < 2 * self.fps:
                    src.append(int(self.w_ids[int(torch.randint(0, self.n_fillers, (1,), generator=generator))]))
                srcs.append(src)
                toks += [self.vocab["D"]] + src
            toks.append(self.vocab["Q"])
            prompts.append(toks)
            sources.append(srcs)
            truths.append(truth)
        return NuggetEpisodes(torch.tensor(prompts), sources, truths)

    def encode_response(self, pairs: Sequence[tuple[int, int]], fillers: Sequence[int] = ()) -> list[int]:
        """``slot value …`` token ids for (slot, value) index pairs, then filler tokens, then ``<eos>``."""
        out: list[int] = []
        for s, v in pairs:
            out += [int(self.s_ids[s]), int(self.v_ids[v])]
        out += [int(self.w_ids[f]) for f in fillers]
        return out + [self.vocab.eos]


# ==================================================================================================== Markov LM
class MarkovLMTask:
    """Language modelling on a random sparse Markov source of order ``order`` (part 2: ITT, MoHD, UpIT).

    Each of ``n_domains`` domains has its own transition table: for every context (the last ``order`` tokens) the
    next token is one of ``branching`` random candidates with Dirichlet(``concentration``) probabilities.  A
    sequence is ``<bos> <dk> x_1 … x_L`` (domain tag ``<dk>``; the first ``order`` tokens uniform).  Labels cover the
    Markov-generated tokens, so the exact optimum of the loss is the mean true conditional entropy,
    ``batch["optimal_loss"]`` (nats/token) — perplexities can be compared with ``exp`` of it.
    """

    def __init__(self, n_tokens: int = 24, order: int = 2, branching: int = 3, concentration: float = 1.0,
                 n_domains: int = 1, seed: int = 0) -> None:
        self.n_tokens, self.order, self.branching, self.n_domains = n_tokens, order, branching, n_domains
        self.vocab = Vocab([f"t{i}" for i in range(n_tokens)] + [f"<d{k}>" for k in range(n_domains)])
        self.tok_ids = self.vocab.ids("t", n_tokens)
        self.dom_ids = torch.tensor([self.vocab[f"<d{k}>"] for k in range(n_domains)])
        g = torch.Generator().manual_seed(seed)
        n_ctx = n_tokens ** order
        probs = torch.zeros(n_domains, n_ctx, n_tokens)
        for k in range(n_domains):
            cand = torch.rand(n_ctx, n_tokens, generator=g).argsort(1)[:, :branching]
            w = torch._standard_gamma(torch.full((n_ctx, branching), float(concentration)), generator=g)
            probs[k].scatter_(1, cand, w / w.sum(1, keepdim=True))
        self.probs = probs
        self.entropy = -(probs * torch.log(probs.clamp_min(1e-30))).sum(-1)  # (domains, contexts)

    def context_index(self, toks: torch.Tensor) -> torch.Tensor:
        """Index of the context formed by the last ``order`` tokens (token values, not ids), toks (B, order)."""
        idx = torch.zeros(toks.shape[0], dtype=torch.long)
        for i in range(self.order):
            idx = idx * self.n_tokens + toks[:, i]
        return idx

    def sample(self, batch: int, length: int, generator: torch.Generator | None = None,
               domains: torch.Tensor | int | None = None) -> dict:
        if domains is None:
            domains = torch.randint(0, self.n_domains, (batch,), generator=generator)
        elif isinstance(domains, int):
            domains = torch.full((batch,), domains)
        toks = torch.randint(0, self.n_tokens, (batch, self.order), generator=generator)
        ents = []
        for _ in range(length - self.order):
            ctx = self.context_index(toks[:, -self.order:])
            nxt = torch.multinomial(self.probs[domains, ctx], 1, generator=generator)
            ents.append(self.entropy[domains, ctx])
            toks = torch.cat([toks, nxt], 1)
        ids = torch.cat([torch.full((batch, 1), self.vocab.bos), self.dom_ids[domains][:, None],
                         self.tok_ids[toks]], 1)
        labels = torch.full_like(ids, IGNORE)
        start = 2 + self.order  # first Markov-generated token
        labels[:, start - 1:-1] = ids[:, start:]
        return {"input_ids": ids, "labels": labels, "domains": domains,
                "optimal_loss": float(torch.stack(ents, 1).mean()) if ents else 0.0}
