"""Judges: the rule judge and the LLM judge's verdict parsing, caching and path through the core wrapper."""

import pytest
from visionrl.robustness import judge as J
from visionrl.robustness.judge import NONE, JudgeItem, LLMJudge, RuleJudge, parse_verdict
from visionrl.robustness.prompts import JUDGE_INSTRUCTION, judge_prompt

OPTS = {"A": "blue", "B": "yellow", "C": "green", "D": "red"}


@pytest.mark.parametrize(
    ("think", "choice"),
    [
        ("the shape on the left is blue, so the answer is A", "A"),
        (
            "Looking at the image, the shape on the left is green. So the answer should be C, but I think the answer is D",
            "D",
        ),
        ("Answer: (B)", "B"),
        ("I pick option C", "C"),
        ("the answer is clearly blue", NONE),  # no letter
        ("so the answer is E", NONE),  # not an option of this item
        ("", NONE),
    ],
)
def test_rule_judge(think, choice):
    assert RuleJudge()([JudgeItem("Q?", OPTS, think, "A")])[0].choice == choice


@pytest.mark.parametrize(
    ("text", "choice", "parsed"),
    [
        ('{"reasoning_choice": "B", "consistent": false}', "B", True),
        ('Here: {"reasoning_choice": "c", "consistent": true} done', "C", True),
        ('{"x": 1} then {"reasoning_choice": "NONE", "consistent": false}', NONE, True),
        ('{"reasoning_choice": "Z", "consistent": true}', NONE, True),  # not an option
        ("reasoning_choice: D (malformed JSON)", "D", True),
        ("I cannot tell.", NONE, False),
    ],
)
def test_parse_verdict(text, choice, parsed):
    v = parse_verdict(text, "ABCD")
    assert (v.choice, v.parsed, v.raw) == (choice, parsed, text)


def test_judge_prompt_layout():
    text = judge_prompt("What color? ", {"A": "red", "B": "blue"}, "red, so A", "A")
    assert text == (
        JUDGE_INSTRUCTION + "\n\nQuestion: What color?\nOptions:\nA. red\nB. blue\n"
        "<think>red, so A</think>\n<answer>A</answer>"
    )
    assert '{"reasoning_choice": "A|B|C|D|NONE", "consistent": true|false}' in JUDGE_INSTRUCTION


def test_llm_judge_parses_and_caches(monkeypatch):
    calls = []

    def scripted(vlm, prompts, sampling, batch_size, **kw):
        calls.append(len(prompts))
        assert sampling.do_sample is False
        return [
            '{"reasoning_choice": "B", "consistent": false}' if "so B" in p.content[0] else "no verdict"
            for p in prompts
        ]

    monkeypatch.setattr("visionrl.core.rollout.generate_texts", scripted)
    judge = LLMJudge(vlm=None, name="scripted")
    items = [
        JudgeItem("Q?", OPTS, "red, so B", "A"),
        JudgeItem("Q?", OPTS, "hmm", "A"),
        JudgeItem("Q?", OPTS, "red, so B", "A"),
    ]
    first = judge(items)
    assert [v.choice for v in first] == ["B", NONE, "B"] and [v.parsed for v in first] == [True, False, True]
    assert calls == [2]  # duplicates are judged once
    assert judge(items) == first and calls == [2]  # and never again


def test_llm_judge_through_a_real_tiny_model(tiny_vlm):
    vlm = tiny_vlm("qwen2_5_vl")
    verdicts = LLMJudge(vlm, max_new_tokens=8)([JudgeItem("Q?", OPTS, "so the answer is A", "A")])
    assert len(verdicts) == 1 and verdicts[0].choice in {*OPTS, NONE}
    assert isinstance(verdicts[0].raw, str)


def test_agreement_needs_two_judges():
    with pytest.raises(AssertionError):
        J.agreement([["A"]], ["A", NONE])
