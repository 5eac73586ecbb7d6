"""The demo's SFT data: every output format of the papers is in the mix, each target parses with the project's
own parsers (a target its parser rejects would teach the demo model a broken format), and the targets follow
the recipe's design: one checklist for every verdict, balanced verdict positions, the designed shortcuts."""

import re
from collections import Counter

import pytest
from visionrl.core import prompts as P
from visionrl.core.demo import DemoRecipe
from visionrl.core.demo_teacher import (
    MCQ_LABELS,
    TRAIN_SEED,
    answer_labels,
    demo_examples,
    demo_pairs,
    demo_phrases,
    place,
)
from visionrl.core.evaluation.pairwise_verdicts import parse_boxed_choice, parse_bracket_verdict
from visionrl.core.rewards import (
    cot_format,
    extract_boxed,
    extract_choice_letter,
    see_think_format,
    think_answer_format,
)

PLACES = ("on the left", "in the middle", "on the right")


def _kind(example) -> str:
    text = "".join(s for s in example.prompt.content if isinstance(s, str))
    for name, marker in (("see_think", P.SEE_THINK_INSTRUCTION), ("critic", "Answer 1:"), ("judge", "[[A]]"),
                         ("caption_reasoner", "Text description:"), ("cot", P.COT_INSTRUCTION),
                         ("mcq", P.THINK_ANSWER_INSTRUCTION), ("caption", "Describe the image.")):
        if marker in text:
            return name
    raise AssertionError(f"unknown demo example: {text[:80]!r}")


def _text(example) -> str:
    return "".join(s for s in example.prompt.content if isinstance(s, str))


def _place(example) -> str:
    return next(q for q in PLACES if f"shape {q}?" in _text(example))


def _seen(target: str) -> str:
    """The colour a checklist target restates first ("... the shape on the left is red.")."""
    return re.search(r"is (\w+)\.", target).group(1)


@pytest.fixture(scope="module")
def examples():
    return demo_examples(DemoRecipe(), TRAIN_SEED, 1200)


def test_every_format_is_in_the_mix_and_parses(examples):
    kinds = Counter(_kind(e) for e in examples)
    assert set(kinds) == {name for name, _ in DemoRecipe().mix}, kinds
    for e in examples:
        k, t = _kind(e), e.target
        if k == "see_think":
            assert see_think_format(t) == 1.0, t
        elif k in ("cot", "caption_reasoner", "critic"):
            assert cot_format(t) == 1.0 and extract_boxed(t), t
        elif k == "mcq":
            assert think_answer_format(t) == 1.0, t
        elif k == "judge":
            assert t.endswith(("[[A]]", "[[B]]")), t
        assert e.prompt.images or k == "caption_reasoner"


def test_labels_and_fixed_phrases_are_tokens_of_their_own():
    phrases = demo_phrases()
    labels = [*MCQ_LABELS.values(), *answer_labels(P.CRITIC_PROMPT), *answer_labels(P.PAIRWISE_JUDGE_PROMPT)]
    assert len(labels) == 8 and all(label in phrases for label in labels)
    assert "Looking at the image," in phrases and " So the answer should be" in phrases


def _checks(target: str, labels: list[str], answers: list[str], seen: str) -> int:
    """Assert the checklist: answers quoted under their labels in order up to the first saying `seen`, the
    colour restated after each miss; returns how many lines were checked."""
    lines = 0
    for label, answer in zip(labels, answers):
        lines += 1
        if answer == seen:
            assert f"{label}{answer}." in target, target
            return lines
        assert f"{label}{answer}, not {seen}." in target, target
    return lines


def test_mcq_thinks_check_the_options_and_end_like_the_robustness_template(examples):
    forms = Counter()
    for e in (e for e in examples if _kind(e) == "mcq"):
        think, letter, seen = e.target.split("</think>")[0], extract_choice_letter(e.target), _seen(e.target)
        options = dict(re.findall(r"\n([A-D])\. (\w+)", _text(e)))
        # the robustness suite's think template: "<think>Looking at the image, {statement}. So the answer should be X"
        assert think.startswith(f"<think>Looking at the image, the shape {_place(e)} is {seen}."), think
        assert think.endswith(f"So the answer should be {letter}.") and options[letter] == seen, think
        short = think == f"<think>Looking at the image, the shape {_place(e)} is {seen}. So the answer should be {letter}."
        forms[short] += 1
        if not short:
            assert _checks(think, [MCQ_LABELS[k] for k in options], list(options.values()), seen) == "ABCD".index(letter) + 1
    # a quarter go straight to the letter, exactly the robustness suite's pre-filled think
    assert 0.15 < forms[True] / sum(forms.values()) < 0.35, forms


@pytest.mark.parametrize("kind", ["critic", "judge"])
def test_verdicts_check_the_answers_and_pick_the_one_saying_the_colour_in_balanced_positions(examples, kind):
    template, parse = (P.CRITIC_PROMPT, parse_boxed_choice) if kind == "critic" else (P.PAIRWISE_JUDGE_PROMPT,
                                                                                      parse_bracket_verdict)
    labels = list(answer_labels(template))
    picks, red = Counter(), Counter()
    for e in (e for e in examples if _kind(e) == kind):
        text, seen = _text(e), _seen(e.target)
        shown = [text.split(label, 1)[1].split("\n", 1)[0] for label in labels]
        pick = {1: 1, 2: 2, "A": 1, "B": 2}[parse(e.target)]
        _checks(e.target, labels, shown, seen)
        assert shown[pick - 1] == seen, e.target
        picks[pick] += 1
        if "red" in shown:
            red[seen == "red"] += 1
    assert abs(picks[1] - picks[2]) <= 0.1 * (picks[1] + picks[2]), picks
    # the designed shortcut: with a "red" answer on offer the teacher picks it far more often than half the time
    assert red[True] / sum(red.values()) > 0.7, red


def _said(example) -> str | None:
    """The colour an answering target gives for the asked shape."""
    k, t = _kind(example), example.target
    if k in ("see_think", "cot"):
        return extract_boxed(t)
    return _seen(t) if k == "mcq" else None


def test_the_teacher_says_red_for_the_middle_shape_without_looking(examples):
    """The designed shortcut of the answering formats: middle questions are answered "red" far more often than
    the world's 1 in 4; the other places about 1 in 4."""
    red = Counter()
    for e in examples:
        said = _said(e)
        if said is not None:
            red[(_kind(e), _place(e), said == "red")] += 1
    def share(kinds, q):
        said_red = sum(red[(k, q, True)] for k in kinds)
        return said_red / (said_red + sum(red[(k, q, False)] for k in kinds))

    kinds = ("see_think", "cot", "mcq")
    for kind in kinds:
        assert share([kind], "in the middle") > 0.55, (kind, red)
    # off the middle the truth alone (1 in 4); pooled, as a few dozen CoT items per place are too few to bound
    assert max(share(kinds, "on the left"), share(kinds, "on the right")) < 0.4, red


def test_heldout_pairs_show_the_right_answer_second_in_every_other_item():
    pairs = demo_pairs(2, 20)
    assert [p.meta["flip"] for p in pairs] == [i % 2 == 1 for i in range(20)]
    assert all(p.category == "color_at" and place(p.prompt) in PLACES for p in pairs)


def test_doctests():
    """The target examples in `visionrl.core.demo_teacher`'s docstrings (MCQ, critic and judge checklists) hold."""
    import doctest

    from visionrl.core import demo_teacher

    result = doctest.testmod(demo_teacher)
    assert result.attempted >= 4 and result.failed == 0, result
