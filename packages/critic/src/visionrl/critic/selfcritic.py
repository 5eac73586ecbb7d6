"""Test-time self-critic ("Best-of-N"): the model samples N answers and picks one by judging them in pairs.

The paper's procedure is given only as "Best-of-128 self-critic scaling" (reference §1.7); the pairing is
not published, so it is pluggable (`STRATEGIES`):

- `knockout`: shuffle, pair up, the winner advances (N − 1 judge calls; an odd one out gets a bye);
- `sequential_champion`: a random order, the champion meets each newcomer in turn (N − 1 calls);
- `round_robin`: every pair once (N(N − 1)/2 calls), most wins takes it (ties broken at random).

Every comparison is shown in a random order (a champion shown first to a judge that always says "1" would
otherwise always win). An unparsed verdict, or two orders that disagree (`both_orders`, twice the calls),
is settled by a fair coin. `self_critic_select` (one question) and `select_many` (many, batched: every
question's current round goes to the judge in one call) work with any judge function, model or scripted.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any

Pairs = list[tuple[int, int]]
Strategy = Callable[[int, random.Random], Generator[Pairs, list[int], int]]
JudgeFn = Callable[[Sequence[tuple[Any, str, str]]], Sequence[int | None]]
"""(context, first shown, second shown) triples -> 1 (first is better), 2 (second) or None (unparsed)."""


def knockout(n: int, rng: random.Random) -> Generator[Pairs, list[int], int]:
    alive = list(range(n))
    rng.shuffle(alive)
    while len(alive) > 1:
        bye = alive[-1:] if len(alive) % 2 else []
        winners = yield [(alive[i], alive[i + 1]) for i in range(0, len(alive) - 1, 2)]
        alive = list(winners) + bye
    return alive[0]


def sequential_champion(n: int, rng: random.Random) -> Generator[Pairs, list[int], int]:
    order = list(range(n))
    rng.shuffle(order)
    champion = order[0]
    for challenger in order[1:]:
        (champion,) = yield [(champion, challenger)]
    return champion


def round_robin(n: int, rng: random.Random) -> Generator[Pairs, list[int], int]:
    if n == 1:
        return 0
    winners = yield [(i, j) for i in range(n) for j in range(i + 1, n)]
    wins = Counter(winners)
    top = max(wins.values())
    return rng.choice(sorted(i for i in range(n) if wins[i] == top))


STRATEGIES: dict[str, Strategy] = {"knockout": knockout, "sequential_champion": sequential_champion,
                                   "round_robin": round_robin}


@dataclass(frozen=True)
class Selection:
    index: int
    """The chosen candidate."""
    calls: int
    """Judge calls spent on this question (both orders count twice)."""
    unparsed: int
    """Verdicts that named neither answer."""
    coin_flips: int
    """Comparisons settled by a coin (an unparsed verdict or orders that disagree)."""


@dataclass
class _Match:
    question: int
    pair: tuple[int, int]
    shown: tuple[int, int]


def _winner(m: _Match, verdicts: list[int | None], rng: random.Random) -> tuple[int, int, bool]:
    """(winner, unparsed verdicts, coin used) of one comparison from its verdict(s) in shown order(s)."""
    picks = []
    for k, v in enumerate(verdicts):
        order = m.shown if k == 0 else m.shown[::-1]
        picks.append(None if v not in (1, 2) else order[v - 1])
    unparsed = sum(p is None for p in picks)
    if unparsed or len(set(picks)) > 1:
        return rng.choice(m.pair), unparsed, True
    return picks[0], 0, False  # type: ignore[return-value]


def select_many(groups: Sequence[tuple[Any, Sequence[str]]], judge: JudgeFn, strategy: str = "knockout", *,
                both_orders: bool = False, rng: random.Random | None = None) -> list[Selection]:
    """Run `strategy` on each (context, candidates) group; all groups' pending comparisons are judged together."""
    assert strategy in STRATEGIES, f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}"
    rng = rng or random.Random(0)
    gens = [STRATEGIES[strategy](len(cands), rng) for _, cands in groups]
    chosen: list[int | None] = [None] * len(groups)
    calls, unparsed, coins = [0] * len(groups), [0] * len(groups), [0] * len(groups)
    pending: dict[int, Pairs] = {}

    def advance(q: int, sent: list[int] | None) -> None:
        try:
            pending[q] = next(gens[q]) if sent is None else gens[q].send(sent)
        except StopIteration as stop:
            chosen[q] = stop.value
            pending.pop(q, None)

    for q in range(len(groups)):
        advance(q, None)
    while pending:
        matches = [_Match(q, p, p[::-1] if rng.random() < 0.5 else p) for q, ps in pending.items() for p in ps]
        triples = []
        for m in matches:
            ctx, cands = groups[m.question]
            a, b = m.shown
            triples += [(ctx, cands[a], cands[b])] + ([(ctx, cands[b], cands[a])] if both_orders else [])
        verdicts = list(judge(triples))
        assert len(verdicts) == len(triples), f"the judge returned {len(verdicts)} verdicts for {len(triples)}"
        per = 2 if both_orders else 1
        winners: dict[int, list[int]] = {q: [] for q in pending}
        for k, m in enumerate(matches):
            w, bad, coin = _winner(m, verdicts[k * per:(k + 1) * per], rng)
            winners[m.question].append(w)
            calls[m.question] += per
            unparsed[m.question] += bad
            coins[m.question] += coin
        for q, ws in winners.items():
            advance(q, ws)
    return [Selection(int(c), calls[q], unparsed[q], coins[q]) for q, c in enumerate(chosen)]  # type: ignore[arg-type]


def self_critic_select(candidates: Sequence[str], judge: JudgeFn, strategy: str = "knockout", *,
                       context: Any = None, both_orders: bool = False,
                       rng: random.Random | None = None) -> Selection:
    """Best-of-N by pairwise judging: which of `candidates` the strategy's tournament leaves standing."""
    return select_many([(context, candidates)], judge, strategy, both_orders=both_orders, rng=rng)[0]


def majority_vote(keys: Sequence[str | None]) -> int | None:
    """Index of the first candidate holding the most common answer (None answers do not vote).

    >>> majority_vote(["b", None, "a", "a", "b"]), majority_vote([None, None]) is None
    (0, True)
    """
    counts = Counter(k for k in keys if k is not None)
    if not counts:
        return None
    top = max(counts.values())
    return next(i for i, k in enumerate(keys) if k is not None and counts[k] == top)


def oracle_pass_at_n(correct: Sequence[bool]) -> bool:
    """Pass@N: some candidate is right (what a perfect judge could reach)."""
    return any(correct)
