"""The critic and self-critic reports with scripted judges on local benchmark folders in the official layouts
(VL-RewardBench, MM-RLHF-RewardBench), checked against hand-computed numbers; verdict parsing."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image
from visionrl.core.data import PairRecord, VQARecord
from visionrl.core.errors import UserError
from visionrl.core.evaluation.pairwise import load_mmrlhf, load_vlrewardbench
from visionrl.core.evaluation.pairwise_scoring import score_mmrlhf, score_vlrewardbench
from visionrl.critic.evaluate import parse_critic_data
from visionrl.critic.judging import Verdict, parse_verdict
from visionrl.critic.reports import category_scores, critic_report, self_critic_report


@pytest.mark.parametrize(("text", "position"), [
    (r"<think>x</think> \boxed{1}", 1),
    (r"\boxed{Answer 2}", 2),
    (r"\boxed{1} ... \boxed{2}", 2),  # the last box
    ("Overall Judgment: Answer 2 is better.", 2),  # no box: the harness's judgment sentence
    (r"Overall Judgment: Answer 2 is better. \boxed{1}", 1),  # the box first
    (r"\boxed{3} Overall Judgment: Answer 1 is better.", 1),  # an unreadable box falls through
    ("Answer 1 is better.", None),
    ("", None),
])
def test_parse_verdict(text, position):
    assert parse_verdict(text) == position


def png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buf, format="PNG")
    return buf.getvalue()


def write(folder: Path, rel: str, data: bytes | str) -> str:
    path = folder / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return rel


VLRB = [("RLAIF-V-14", [0, 1]), ("RLHF-V-Dataset_7", [1, 0]), ("hallucination_pair_3", [1, 0]),
        ("mathverse_3693", [0, 1]), ("wildvision-battle_5", [1, 0]), ("LRVInstruction-000000007746", [0, 1])]


@pytest.fixture
def vlrb(tmp_path) -> Path:
    folder = tmp_path / "vlrb"
    rows = []
    for rid, ranking in VLRB:
        good, bad = f"{rid}: the right answer", f"{rid}: a hallucinated answer"
        rows.append({"id": rid, "query": f"What is in image {rid}?", "image_path": write(folder, f"images/{rid}.jpg", png()),
                     "response": [good, bad] if ranking == [0, 1] else [bad, good], "human_ranking": ranking})
    write(folder, "data.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    return folder


class ContentJudge:
    """Names the answer holding `good` — except where the question holds `unparsed` words (no verdict) or
    `wrong` words (the other answer); `always_first` names position 1 whatever is shown."""

    def __init__(self, good: str, unparsed: tuple[str, ...] = (), wrong: tuple[str, ...] = (), always_first=False):
        self.good, self.unparsed, self.wrong, self.always_first = good, unparsed, wrong, always_first
        self.calls = 0

    def __call__(self, comparisons):
        self.calls += len(comparisons)
        out = []
        for c in comparisons:
            if self.always_first:
                pos = 1
            elif any(w in c.question for w in self.unparsed):
                pos = None
            else:
                pos = 1 if self.good in c.first else 2
                pos = 3 - pos if any(w in c.question for w in self.wrong) else pos
            out.append(Verdict(pos, f"verdict {pos}"))
        return out


def test_vlrewardbench_report_hand_computed(vlrb):
    """Right on 4 items, no verdict on mathverse, wrong on wildvision. cal.py: accuracy over parsed = 4/5;
    hallucination 3/3, reasoning none, general 1/2 → macro (1 + 0.5)/2 = 0.75. Both orders with a content
    judge: 2n = 12 verdicts, 8 right; right in both orders 4/6; the same answer in both orders 5/6 (the
    unparsed item is not consistent); parsed verdicts name the first shown answer once per order pair: 5/10."""
    records = load_vlrewardbench(vlrb, seed=0)
    judge = ContentJudge("right answer", unparsed=("mathverse",), wrong=("wildvision",))
    m, rows = critic_report(judge, "vlrewardbench", records, score=score_vlrewardbench, both_orders=True)
    assert m["accuracy"] == pytest.approx(0.8) and m["macro_accuracy"] == pytest.approx(0.75)
    assert m["accuracy/hallucination"] == 1.0 and m["accuracy/general"] == 0.5 and "accuracy/reasoning" not in m
    assert m["unparsed"] == 1.0 and m["accuracy/vlfeedback"] == 1.0  # per dataset, from the category scores
    assert m["both_orders/accuracy"] == pytest.approx(8 / 12) and m["both_orders_accuracy"] == pytest.approx(4 / 6)
    assert m["consistency"] == pytest.approx(5 / 6) and m["position1_rate"] == pytest.approx(0.5)
    assert judge.calls == 12 and len(rows) == 6
    assert all(r["flip"] == rec.meta["flip"] for r, rec in zip(rows, records))
    assert {r["outcome"] for r in rows} == {"chosen", "rejected", None}


def test_a_position_biased_judge_shows_up(vlrb):
    records = load_vlrewardbench(vlrb, seed=0)
    m, _ = critic_report(ContentJudge("", always_first=True), "vlrewardbench", records, both_orders=True)
    assert m["position1_rate"] == 1.0 and m["consistency"] == 0.0 and m["both_orders_accuracy"] == 0.0
    assert m["both_orders/accuracy"] == 0.5
    # one order only: no position metrics, accuracy = how often the chosen answer happened to be shown first
    m1, _ = critic_report(ContentJudge("", always_first=True), "vlrewardbench", records)
    assert "position1_rate" not in m1
    assert m1["accuracy"] == sum(not r.meta["flip"] for r in records) / len(records)


def test_mmrlhf_report_acc_plus(tmp_path):
    """q1 has two records (mcq), q2 one (long); wrong on q1's second → Acc 2/3, Acc+ = q2 only = 1/2."""
    folder = tmp_path / "MM-RLHF-RewardBench"
    items = [("q1", "mcq/1.jpg", "good a"), ("q1", "mcq/1.jpg", "good b"), ("q2", "long/2.jpg", "good c")]
    rows = [{"id": rid, "prompt": f"<image>\nQuestion {rid} {k}?", "image": write(folder, path, png()),
             "chosen": good, "rejected": "bad"} for k, (rid, path, good) in enumerate(items)]
    write(folder, "mm_reward_bench.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    records = load_mmrlhf(folder, seed=0)
    m, _ = critic_report(ContentJudge("good", wrong=("q1 1",)), "mmrlhf", records, score=score_mmrlhf)
    assert m["accuracy"] == pytest.approx(2 / 3) and m["accuracy_plus"] == 0.5
    assert m["accuracy/mcq"] == 0.5 and m["accuracy_plus/long"] == 1.0 and m["macro_accuracy"] == 0.75


def test_category_scores_count_weighted_and_macro():
    recs = [PairRecord(str(i), [], "q", "a", "b", c) for i, c in enumerate(["x", "x", "x", "y"])]
    m = category_scores(recs, ["chosen", "chosen", "rejected", "rejected"])
    assert m["accuracy"] == 0.5 and m["accuracy/x"] == pytest.approx(2 / 3) and m["accuracy/y"] == 0.0
    assert m["macro_accuracy"] == pytest.approx(1 / 3) and m["items/x"] == 3.0


def test_self_critic_report_side_by_side():
    """Q1: greedy wrong, samples [blue, red, red, blue] with gt red → majority red? 2-2 tie → first seen blue
    (wrong); a perfect judge picks red (right); oracle right. Q2: greedy right, samples all wrong → only
    greedy is right. Sample accuracy: (2/4 + 0)/2 = 0.25."""
    recs = [VQARecord("q1", [], "color?", "red", meta={"answer_type": "open"}),
            VQARecord("q2", [], "color?", "green", meta={"answer_type": "open"})]
    box = lambda a: f"<think>t</think> \\boxed{{{a}}}"  # noqa: E731
    cands = [[box("blue"), box("red"), box("red"), box("blue")], [box("blue")] * 4]
    greedy = [box("blue"), box("green")]

    def perfect(triples):
        return [1 if f"{{{rec.answer}}}" in a else 2 for rec, a, _ in triples]

    m, rows = self_critic_report(recs, cands, greedy, perfect, strategy="knockout", seed=0)
    assert (m["greedy_accuracy"], m["majority_accuracy"], m["self_critic_accuracy"], m["oracle_pass_at_n"]) == (
        0.5, 0.0, 0.5, 0.5)
    assert m["sample_accuracy"] == 0.25 and m["judge_calls"] == 6 and m["judge_calls_per_question"] == 3
    assert m["n"] == 4 and rows[0]["self_critic"] and rows[0]["correct"] == [False, True, True, False]


def test_parse_critic_data():
    assert parse_critic_data("shapes, vlrewardbench=data/vlrb, mmrlhf") == [
        ("shapes", None), ("vlrewardbench", "data/vlrb"), ("mmrlhf", None)]
    for spec, message in [("bogus", "unknown critic benchmark 'bogus'"), ("pairs", "pairs needs a source"),
                          ("mmrb", "mmrb=FOLDER")]:
        with pytest.raises(UserError, match=message):
            parse_critic_data(spec)
