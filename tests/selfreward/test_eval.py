"""selfreward-eval's scoring on hand-made predictions with scripted judges."""

import math

import pytest
from visionrl.core.data.records import VQARecord
from visionrl.selfreward.evaluate import (
    judge_says_correct,
    language_shortcut_rate,
    score_items,
    summarize,
    weighted_average,
)


def _rec(i, answer):
    return VQARecord(id=str(i), images=[], question=f"Q{i}", answer=answer)


RECORDS = [_rec(0, "red"), _rec(1, "blue"), _rec(2, "3"), _rec(3, "yes")]
PREDS = [
    "<description> a red circle </description> <think>t</think> \\boxed{red}",  # right, self-contained
    "<description> a shape </description> <think>t</think> \\boxed{blue}",  # right, description says nothing
    "<description> three dots </description> <think>t</think> \\boxed{three}",  # rules reject, judge accepts
    "<think>t</think> \\boxed{no}",  # wrong, no description
]


def reader_judge(prompts):
    """Answers a Caption-Reasoner prompt from its description: copies a colour or count word it sees."""
    out = []
    for p in prompts:
        desc = p.split("\n")[0]
        word = next((w for w in ("red", "blue", "three") if w in desc), "unknown")
        out.append(f"<think>x</think> \\boxed{{{'3' if word == 'three' else word}}}")
    return out


def grading_judge(prompts):
    """Accepts 'three' for 3, rejects everything else (the official 'incorrect' substring rule)."""
    return ["<judgment>Correct</judgment>" if "Candidate Answer: three" in p else "<judgment>Incorrect</judgment>"
            for p in prompts]


def test_rules_then_judge_then_lsr():
    items = score_items(RECORDS, PREDS, judge=grading_judge, lsr_judge=reader_judge)
    assert [it.rule_correct for it in items] == [True, True, False, False]
    assert [it.correct for it in items] == [True, True, True, False]
    assert items[0].judgment is None  # the judge is not asked when the rules accept
    assert [it.self_contained for it in items] == [True, False, True, False]
    m = summarize(items, "toy")
    # LSR: only item 1 is correct without a self-contained description -> 1/4
    assert m["eval/toy/lsr"] == 0.25
    assert m["eval/toy/accuracy"] == 0.75 and m["eval/toy/rule_accuracy"] == 0.5
    assert m["eval/toy/n"] == 4


def test_strict_description_blocks_the_leak():
    """Without tags, the official fallback hands the whole response (with its box) to the judge."""
    preds = ["<think>t</think> \\boxed{red}"]
    copy_box = lambda prompts: [p.split("\n")[0].replace("Text description: ", "") for p in prompts]  # noqa: E731
    strict = score_items([_rec(0, "red")], preds, judge=None, lsr_judge=copy_box, strict_description=True)
    leaky = score_items([_rec(0, "red")], preds, judge=None, lsr_judge=copy_box, strict_description=False)
    assert strict[0].self_contained is False and leaky[0].self_contained is True
    assert summarize(strict, "t")["eval/t/lsr"] == 1.0 and summarize(leaky, "t")["eval/t/lsr"] == 0.0


@pytest.mark.parametrize(("judgment", "ok"), [("<judgment>Correct</judgment>", True), ("incorrect", False),
                                              ("The answer is INCORRECT.", False), ("", True)])
def test_judge_rule(judgment, ok):
    assert judge_says_correct(judgment) is ok


def test_lsr_and_weighted_average_edge_cases():
    assert math.isnan(language_shortcut_rate([], []))
    assert weighted_average({"a": (1.0, 1), "b": (0.0, 3)}) == 0.25
    assert math.isnan(weighted_average({}))


def test_a_bad_judge_is_named_before_any_model_loads_and_leaves_no_folder(tmp_path, monkeypatch):
    """`--judge` (not `--model`) is named, before the evaluated model loads; config.yaml is not left behind."""
    import pytest
    from visionrl.core.errors import UserError
    from visionrl.selfreward.cli import eval_main

    def no_load(*args, **kwargs):
        raise AssertionError("a model was loaded before the judge was checked")

    monkeypatch.setattr("visionrl.core.evaluation.models.eval_model", no_load)
    out = tmp_path / "eval"
    for judge, message in (("./no-such-judge", "--judge ./no-such-judge: no such model folder"),
                           ("not a repo!", "--judge 'not a repo!' is neither a local model folder nor a hub id")):
        with pytest.raises(UserError, match=message):
            eval_main(["--judge", judge, "--output-dir", str(out)])
    assert not out.exists()
