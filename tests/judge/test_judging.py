"""The both-orders filter and its `single` ablation on hand-made judgements, retention per category, and the
held-out metrics of both-order judgements (core `position_bias`)."""

from __future__ import annotations

import pytest
from visionrl.core.data.records import PairRecord
from visionrl.judge.judging import both_orders_metrics, filter_traces, order_prompt, shown
from visionrl.judge.prompts import judge_text


def judged(pair: str, category: str, first: list[str | None], second: list[str | None]) -> dict:
    """A judgements row: verdicts per sample in each order (chosen first: A is right; chosen second: B)."""
    def samples(verdicts, right):
        return [{"text": f"{pair}:{i}:{v}", "verdict": v, "correct": v == right} for i, v in enumerate(verdicts)]

    return {"pair": pair, "category": category, "chosen_first": samples(first, "A"),
            "chosen_second": samples(second, "B")}


ROWS = [
    judged("p1", "closed", ["A"], ["B"]),         # right in both orders
    judged("p2", "closed", ["A"], ["A"]),         # position-1 bias: right only when chosen is first
    judged("p3", "open", ["B"], ["B"]),           # right only when chosen is second
    judged("p4", "open", [None], ["B"]),          # unparsed counts as wrong
    judged("p5", "closed", ["B", "A"], ["A", "B"]),  # K = 2: one right sample per order is enough
]


def test_both_orders_keeps_a_pair_only_when_right_in_both() -> None:
    kept, stats = filter_traces(ROWS, "both")
    assert [(t["pair"], t["order"]) for t in kept] == [
        ("p1", "chosen_first"), ("p1", "chosen_second"), ("p5", "chosen_first"), ("p5", "chosen_second")]
    assert [t["text"] for t in kept if t["pair"] == "p5"] == ["p5:1:A", "p5:1:B"]  # the first right sample
    assert stats["pairs"] == 5 and stats["kept"] == 4
    assert stats["retention"] == pytest.approx(4 / 10)
    assert stats["retention/closed"] == pytest.approx(4 / 6) and stats["retention/open"] == 0.0
    assert stats["unparsed"] == 1 and stats["judgements"] == 12
    assert stats["label_agreement"] == pytest.approx(7 / 12)  # right samples: p1 2, p2 1, p3 1, p4 1, p5 2
    assert stats["verdict_a"] == 5


def test_single_keeps_every_right_trace() -> None:
    kept, stats = filter_traces(ROWS, "single")
    assert [(t["pair"], t["order"]) for t in kept] == [
        ("p1", "chosen_first"), ("p1", "chosen_second"), ("p2", "chosen_first"), ("p3", "chosen_second"),
        ("p4", "chosen_second"), ("p5", "chosen_first"), ("p5", "chosen_second")]
    assert stats["retention"] == pytest.approx(7 / 10)
    assert stats["retention/open"] == pytest.approx(2 / 4)


def test_held_out_metrics_average_both_orders() -> None:
    rows = [{"id": "a", "chosen_first": {"verdict": "A"}, "chosen_second": {"verdict": "B"}},   # right, right
            {"id": "b", "chosen_first": {"verdict": "A"}, "chosen_second": {"verdict": "A"}},   # right, wrong
            {"id": "c", "chosen_first": {"verdict": None}, "chosen_second": {"verdict": "A"}},  # none, wrong
            {"id": "d", "chosen_first": {"verdict": "B"}, "chosen_second": {"verdict": "A"}}]   # wrong, wrong
    m = both_orders_metrics(rows)
    assert m["accuracy"] == pytest.approx(3 / 8)
    assert m["both_orders_accuracy"] == pytest.approx(1 / 4)
    assert m["consistency"] == pytest.approx(2 / 4)  # a (chosen both times) and d (rejected both times)
    assert m["position1_rate"] == pytest.approx(5 / 7)  # A verdicts (a 1, b 2, c 1, d 1) among the 7 parsed
    assert m["unparsed"] == 1


def test_a_pair_is_shown_in_each_order_with_its_image() -> None:
    pair = PairRecord("p", ["img"], "What color?", "red", "blue", "closed")
    assert shown(pair, "chosen_first") == ("red", "blue") and shown(pair, "chosen_second") == ("blue", "red")
    prompt = order_prompt(pair, "chosen_second", "mmrb")
    assert prompt.images == ["img"] and prompt.content[1] == judge_text("mmrb", "What color?", "blue", "red")
