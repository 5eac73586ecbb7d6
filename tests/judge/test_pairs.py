"""Pair synthesis with canned generations (the generator is replaced by fixed texts): majority and ground-truth
labels of closed prompts, open pairs from both injectors, the equal-size cut, ids and drop counts."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import visionrl.judge.pairs as pairs_mod
from visionrl.core.chat import IMAGE
from visionrl.judge.config import TRAIN_PRESETS
from visionrl.judge.pairs import (
    finish_rows,
    match_size,
    pair_lone_answers,
    pair_records,
    pair_stats,
    synthesize,
)
from visionrl.judge.sources import PromptItem

CFG = TRAIN_PRESETS["demo"]


def item(i: int, kind: str, answer: str | None = "red") -> PromptItem:
    q = "What color is the shape on the left?" if kind == "closed" else "Describe the image."
    return PromptItem(f"p{i}", q, answer, kind, ["img"])  # type: ignore[arg-type]


def boxed(*answers: str) -> list[str]:
    return [f"<think> the shape on the left is {a} </think> \\boxed{{{a}}}" for a in answers]


class Canned:
    """Stands in for generation: sampled groups and greedy texts, in call order; records the prompts."""

    def __init__(self, groups: list[list[str]] | None = None, greedy: list[str] | None = None):
        self.groups, self.greedy_texts, self.prompts = groups or [], greedy or [], []

    def sample(self, vlm: Any, prompts: list[Any], n: int, sampling: Any, **kw: Any) -> list[list[str]]:
        self.prompts += prompts
        out, self.groups = self.groups[:len(prompts)], self.groups[len(prompts):]
        assert all(len(g) == n for g in out)
        return out

    def greedy(self, vlm: Any, prompts: list[Any], max_new_tokens: int, **kw: Any) -> list[str]:
        self.prompts += prompts
        out, self.greedy_texts = self.greedy_texts[:len(prompts)], self.greedy_texts[len(prompts):]
        return out


@pytest.fixture
def canned(monkeypatch: pytest.MonkeyPatch):
    def install(**kw: Any) -> Canned:
        c = Canned(**kw)
        monkeypatch.setattr(pairs_mod, "sample_groups", c.sample)
        monkeypatch.setattr(pairs_mod, "greedy", c.greedy)
        return c

    return install


GROUPS = [
    boxed(*["red"] * 9, *["blue"] * 7),            # p0: majority red (right)
    boxed(*["red"] * 8, *["blue"] * 8),            # p1: tie
    boxed(*["blue"] * 10, *["green"] * 6),         # p2: majority blue, but the reference is red
    boxed(*["red"] * 16),                          # p3: one answer
]


def test_closed_pairs_by_majority(canned) -> None:
    c = canned(groups=[list(g) for g in GROUPS])
    rows = synthesize(None, [item(i, "closed") for i in range(4)], CFG, iteration=0)
    assert [r.get("dropped") for r in rows] == [None, "tie", None, "one_answer"]
    assert (rows[0]["chosen"], rows[0]["rejected"]) == ("red", "blue")
    assert (rows[2]["chosen"], rows[2]["rejected"]) == ("blue", "green")
    assert rows[0]["counts"] == {"red": 9, "blue": 7}
    # closed questions are asked with the CoT instruction, so the answer can be read from \boxed{}
    assert "\\boxed{}" in c.prompts[0].content[-1]


def test_closed_pairs_by_ground_truth_and_the_equal_size_cut(canned) -> None:
    cfg = dataclasses.replace(CFG, pair_labels="ground_truth", match_size=True, lone_answer="drop")
    canned(groups=[list(g) for g in GROUPS])
    rows = synthesize(None, [item(i, "closed") for i in range(4)], cfg, iteration=0)
    # p0 red over blue; p1 red over blue (ties do not matter to the reference); p2 no sample is right; p3 all right
    assert [r.get("dropped") for r in rows] == [None, None, "no_correct", "all_correct"]
    assert rows[1]["chosen"] == "red" and rows[1]["rejected"] == "blue"
    cut = match_size(rows, seed=0, iteration=0)
    # majority labels would give 2 pairs (p0, p2): both ground-truth pairs stay
    assert sum("dropped" not in r for r in cut) == 2
    cut = match_size([dict(r, majority_ok=r["prompt_id"] == "p0") for r in rows], seed=0, iteration=0)
    assert sum("dropped" not in r for r in cut) == 1 and sum(r.get("dropped") == "match_size" for r in cut) == 1
    assert all("chosen" not in r for r in cut if r.get("dropped") == "match_size")


def test_a_lone_answer_is_paired_with_another_answer_of_its_kind(canned) -> None:
    canned(groups=[list(g) for g in GROUPS])
    rows = synthesize(None, [item(i, "closed") for i in range(4)], CFG, iteration=0)  # the demo preset: pool
    assert rows[3]["dropped"] == "one_answer" and rows[3]["texts"] == {"red": "red"} and rows[3]["majority_ok"]
    paired = pair_lone_answers(rows, seed=0, iteration=0)
    assert paired[:3] == rows[:3]  # pairs and other drops as they were
    p3 = paired[3]
    assert "dropped" not in p3 and p3["alternative"] == "pool"
    assert p3["chosen"] == "red" and p3["rejected"] in ("blue", "green")  # what other questions were answered
    assert p3["prompt"] == "What color is the shape on the left?"
    draws = {pair_lone_answers(rows, seed=s, iteration=0)[3]["rejected"] for s in range(20)}
    assert draws == {"blue", "green"}  # uniform over the other answers, seeded
    assert pair_lone_answers(rows, seed=0, iteration=0) == paired
    assert pair_stats(paired)["pairs/closed/pooled"] == 1 and pair_stats(paired)["pairs/closed"] == 3
    # the reference's default keeps the drop and stores nothing for it
    canned(groups=[list(g) for g in GROUPS])
    dropped = synthesize(None, [item(i, "closed") for i in range(4)], dataclasses.replace(CFG, lone_answer="drop"),
                         iteration=0)
    assert dropped[3] == {"prompt_id": "p3", "kind": "closed", "counts": {"red": 16}, "majority_ok": False,
                          "dropped": "one_answer"}


def test_pooling_then_the_equal_size_cut(canned) -> None:
    """As `pairs_stage` runs them: ground truth's all-right p3 is pooled, and the majority target counts the
    pooled lone answer (p0, p2, p3), so all three ground-truth pairs (p0, p1, p3) stay."""
    cfg = dataclasses.replace(CFG, pair_labels="ground_truth", match_size=True)
    canned(groups=[list(g) for g in GROUPS])
    rows = pair_lone_answers(synthesize(None, [item(i, "closed") for i in range(4)], cfg, iteration=0), 0, 0)
    assert [r["majority_ok"] for r in rows] == [True, False, True, True]
    cut = match_size(rows, seed=0, iteration=0)
    assert [r.get("dropped") for r in cut] == [None, None, "no_correct", None] and cut[3]["alternative"] == "pool"
    # a cut pooled pair keeps no trace of its pair
    cut = match_size([dict(r, majority_ok=r["prompt_id"] == "p0") for r in rows], seed=0, iteration=0)
    assert all(not {"chosen", "alternative"} & set(r) for r in cut if r.get("dropped") == "match_size")


def test_a_lone_answer_under_the_threshold_is_no_majority(canned) -> None:
    """One boxed answer among 16 (the rest without `\\boxed{}`) is not a majority of 5: dropped, not pooled."""
    canned(groups=[boxed("red") + ["no box here"] * 15])
    rows = pair_lone_answers(synthesize(None, [item(0, "closed")], CFG, iteration=0), 0, 0)
    assert rows[0]["dropped"] == "below_threshold" and not rows[0]["majority_ok"] and "prompt" not in rows[0]


def test_lone_answers_under_ground_truth_labels_and_of_other_kinds() -> None:
    def lone(pid: str, text: str, dropped: str = "one_answer") -> dict[str, Any]:
        from visionrl.judge.majority import normalize_answer

        return {"prompt_id": pid, "kind": "closed", "counts": {normalize_answer(text): 16}, "majority_ok": True,
                "texts": {normalize_answer(text): text}, "dropped": dropped, "prompt": "Q?"}

    rows = [lone("a", "Two"), lone("b", "3"), lone("c", "yes"), lone("d", "Red", "all_correct"),
            lone("e", "blue")]
    out = {r["prompt_id"]: r for r in pair_lone_answers(rows, seed=0, iteration=0)}
    assert (out["a"]["chosen"], out["a"]["rejected"]) == ("Two", "3")  # numbers pair with numbers
    assert (out["b"]["chosen"], out["b"]["rejected"]) == ("3", "Two")
    assert out["c"]["dropped"] == "one_answer" and not out["c"]["majority_ok"]  # no other yes/no answer
    # a single wrong answer under ground-truth labels (no_correct, nothing to pool) with no alternative either
    alone = {"prompt_id": "f", "kind": "closed", "counts": {"maybe": 16}, "majority_ok": True, "dropped": "no_correct"}
    assert not pair_lone_answers([alone], seed=0, iteration=0)[0]["majority_ok"]
    assert (out["d"]["chosen"], out["d"]["rejected"]) == ("Red", "blue")  # ground truth's all_correct too
    assert (out["e"]["chosen"], out["e"]["rejected"]) == ("blue", "Red")


def test_whole_responses_can_be_the_pair(canned) -> None:
    cfg = dataclasses.replace(CFG, closed_answers="response", lone_answer="drop")
    texts = [*["Red."] * 9, *["It is blue."] * 7]
    c = canned(groups=[texts])
    rows = synthesize(None, [item(0, "closed")], cfg, iteration=0)
    assert (rows[0]["chosen"], rows[0]["rejected"]) == ("Red.", "It is blue.")
    assert c.prompts[0].content == [IMAGE, "What color is the shape on the left?"]  # asked as given


def test_open_pairs_by_program_injection(canned) -> None:
    canned(greedy=["red on the left, blue in the middle", "nothing to change here"])
    rows = synthesize(None, [item(0, "open", None), item(1, "open", None)], CFG, iteration=0)
    assert rows[0]["chosen"] == "red on the left, blue in the middle"
    assert rows[0]["rejected"] != rows[0]["chosen"] and rows[0]["errors"]
    assert rows[1]["dropped"] == "no_error_site"


def test_open_pairs_by_model_rewrite_are_validated(canned) -> None:
    cfg = dataclasses.replace(CFG, injector="model")
    c = canned(greedy=["red on the left", "red on the left", "red on the left"],
               groups=[["blue on the left"], ["Red on the left."], ["blue"] * 1])
    rows = synthesize(None, [item(i, "open", None) for i in range(3)], cfg, iteration=0)
    assert rows[0]["rejected"] == "blue on the left"
    assert [r.get("dropped") for r in rows] == [None, "no_content_change", "length_ratio"]
    rewrite_prompts = c.prompts[3:]
    assert all(p.images == [] and "Original: red on the left" in p.content[0] for p in rewrite_prompts)


def test_rows_get_ids_and_stats(canned) -> None:
    canned(groups=[list(g) for g in GROUPS], greedy=["red on the left, blue in the middle"])
    items = [item(i, "closed") for i in range(4)] + [item(9, "open", None)]
    rows = finish_rows(synthesize(None, items, CFG, iteration=2), iteration=2)
    assert [r.get("id") for r in rows] == ["it2-p0", None, "it2-p2", None, "it2-p9"]
    assert pair_stats(rows) == {"dropped/closed/one_answer": 1.0, "dropped/closed/tie": 1.0, "pairs": 3.0,
                                "pairs/closed": 2.0, "pairs/open": 1.0, "prompts/closed": 4.0, "prompts/open": 1.0}
    records = pair_records(rows, {it.id: it for it in items})
    assert [(r.id, r.category, r.images) for r in records] == [("it2-p0", "closed", ["img"]),
                                                              ("it2-p2", "closed", ["img"]), ("it2-p9", "open", ["img"])]
