"""Self-critic selection with scripted judges: survivor accuracy against the analytic value, call counts,
coins for unparsed or disagreeing verdicts, and the majority-vote and oracle baselines."""

from __future__ import annotations

import math
import random

import pytest
from visionrl.critic.selfcritic import majority_vote, oracle_pass_at_n, select_many, self_critic_select


def scripted_judge(p: float, rng: random.Random):
    """Right with probability p when exactly one shown answer is right ("ok"); a fair coin otherwise."""
    calls = []

    def judge(triples):
        calls.append(len(triples))
        out = []
        for _, first, second in triples:
            if (first == "ok") == (second == "ok"):
                out.append(rng.choice((1, 2)))
            else:
                better = 1 if first == "ok" else 2
                out.append(better if rng.random() < p else 3 - better)
        return out

    judge.calls = calls
    return judge


def knockout_one_right(p: float, n: int) -> float:
    """One right candidate among n = 2^k: it must win all k rounds, each against a wrong one."""
    return p ** math.log2(n)


def knockout_two_of_four(p: float) -> float:
    """Two right among four: paired together (1/3) the winner meets a wrong one in the final (p); otherwise
    each semi is right-vs-wrong, and the final is right-vs-right (p²) or right-vs-wrong (2p(1-p)·p)."""
    return p / 3 + 2 / 3 * (p * p + 2 * p * (1 - p) * p)


def champion_one_right(p: float, n: int) -> float:
    """Sequential champion, one right among n in a random order: at position 0 or 1 it plays n - 1 matches,
    at position k >= 1 it plays n - k."""
    return (p ** (n - 1) + sum(p ** (n - k) for k in range(1, n))) / n


@pytest.mark.parametrize(("strategy", "cands", "expected"), [
    ("knockout", ["ok", "x"], knockout_one_right(0.8, 2)),
    ("knockout", ["ok", "x", "x", "x"], knockout_one_right(0.8, 4)),
    ("knockout", ["ok", "ok", "x", "x"], knockout_two_of_four(0.8)),
    ("sequential_champion", ["x", "x", "ok", "x"], champion_one_right(0.8, 4)),
])
def test_survivor_accuracy_matches_the_analytic_value(strategy, cands, expected):
    trials = 4000
    rng = random.Random(123)
    picks = select_many([(None, cands)] * trials, scripted_judge(0.8, rng), strategy, rng=rng)
    got = sum(cands[s.index] == "ok" for s in picks) / trials
    sigma = math.sqrt(expected * (1 - expected) / trials)
    assert abs(got - expected) <= 3 * sigma, (got, expected, sigma)


@pytest.mark.parametrize("n", [2, 3, 4, 5, 8])
def test_call_counts(n):
    rng = random.Random(0)
    cands = [f"c{i}" for i in range(n)]
    judge = scripted_judge(1.0, rng)
    assert self_critic_select(cands, judge, "round_robin", rng=rng).calls == n * (n - 1) // 2
    assert sum(judge.calls) == n * (n - 1) // 2 and judge.calls == [n * (n - 1) // 2]  # one batch
    for strategy in ("knockout", "sequential_champion"):
        assert self_critic_select(cands, scripted_judge(1.0, rng), strategy, rng=rng).calls == n - 1
    assert self_critic_select(cands, scripted_judge(1.0, rng), "knockout", both_orders=True, rng=rng).calls == 2 * (n - 1)


def test_a_perfect_judge_always_finds_the_right_answer():
    rng = random.Random(1)
    for strategy in ("knockout", "sequential_champion", "round_robin"):
        for _ in range(50):
            cands = ["x"] * 7 + ["ok"]
            rng.shuffle(cands)
            assert cands[self_critic_select(cands, scripted_judge(1.0, rng), strategy, rng=rng).index] == "ok"


def test_position_biased_judge_does_not_crown_the_champion():
    """A judge that always says "1": the shown order is random, so the first sample does not always win."""
    always_first = lambda triples: [1] * len(triples)  # noqa: E731
    picks = select_many([(None, ["a", "b", "c", "d"])] * 400, always_first, "sequential_champion",
                        rng=random.Random(0))
    shares = [sum(s.index == i for s in picks) / 400 for i in range(4)]
    assert max(shares) < 0.6, shares


def test_unparsed_and_disagreeing_verdicts_are_coins():
    none = lambda triples: [None] * len(triples)  # noqa: E731
    s = self_critic_select(["a", "b", "c", "d"], none, "knockout", rng=random.Random(0))
    assert (s.calls, s.unparsed, s.coin_flips) == (3, 3, 3)
    # both orders, a judge that always names the first shown answer: the two orders disagree every time
    first = lambda triples: [1] * len(triples)  # noqa: E731
    s = self_critic_select(["a", "b"], first, "knockout", both_orders=True, rng=random.Random(0))
    assert (s.calls, s.unparsed, s.coin_flips) == (2, 0, 1)


def test_batches_every_question_together():
    judge = scripted_judge(1.0, random.Random(0))
    select_many([(q, ["ok", "x", "x", "x"]) for q in range(5)], judge, "knockout", rng=random.Random(0))
    assert judge.calls == [10, 5]  # round 1: 2 matches × 5 questions, the final: 1 × 5


def test_context_reaches_the_judge():
    seen = []

    def judge(triples):
        seen.extend(ctx for ctx, _, _ in triples)
        return [1] * len(triples)

    select_many([("q1", ["a", "b"]), ("q2", ["c", "d"])], judge, "knockout", rng=random.Random(0))
    assert sorted(seen) == ["q1", "q2"]


def test_majority_and_oracle():
    assert majority_vote(["red", "blue", "blue", None]) == 1
    assert majority_vote(["red", "blue"]) == 0  # a tie goes to the first seen
    assert majority_vote([None, None]) is None
    assert oracle_pass_at_n([False, True]) and not oracle_pass_at_n([False, False])


def test_unknown_strategy_is_an_assertion():
    with pytest.raises(AssertionError, match="knockout"):
        select_many([(None, ["a", "b"])], lambda t: [1] * len(t), "bogus")
