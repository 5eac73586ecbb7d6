"""Closed pairs: the answer normaliser and the majority vote (ties, threshold, one distinct answer), and the
ground-truth labels of the ablation, as tables."""

from __future__ import annotations

import random

import pytest
from visionrl.judge.majority import label_by_ground_truth, majority_vote, normalize_answer


@pytest.mark.parametrize(("raw", "norm"), [
    ("Red", "red"), ("red.", "red"), ("  RED  ", "red"), ("The red circle", "red circle"), ("a circle", "circle"),
    ("Two", "2"), ("two!", "2"), ("2", "2"), ("2.0", "2"), ("twenty", "20"), ("-3", "-3"),
    ("B", "b"), ("(B)", "b"), ("B.", "b"), ("B)", "b"), ("Option C", "c"), ("Answer: D", "d"),
    ("the answer is (a)", "a"), ("C. a blue square", "c"), ("dark-red", "dark-red"), ("yes", "yes"),
    ("Yes.", "yes"), ("", ""), ("!!!", ""), ("blue", "blue"), ("bed", "bed"), ("A dog", "dog"),
])
def test_normalize_answer(raw: str, norm: str) -> None:
    assert normalize_answer(raw) == norm


def vote(answers: list[str], threshold: int = 5, seed: int = 0):
    return majority_vote(answers, threshold, random.Random(seed))


@pytest.mark.parametrize(("answers", "threshold", "chosen", "rejected_in", "dropped"), [
    # 5 of 16 reaches the threshold; the alternative is one of the other distinct answers
    (["red"] * 5 + ["blue"] * 4 + ["green"] * 4 + ["yellow"] * 3, 5, 0, {5, 9, 13}, None),
    # majority 4 < threshold 5
    (["red"] * 4 + ["blue"] * 3 + ["green"] * 3 + ["yellow"] * 3 + [""] * 3, 5, None, None, "below_threshold"),
    # tie at the top, even above the threshold
    (["red"] * 6 + ["blue"] * 6 + ["green"] * 4, 5, None, None, "tie"),
    # one distinct answer (after normalisation: "Red." == "red")
    (["red"] * 10 + ["Red."] * 6, 5, None, None, "one_answer"),
    # nothing extracted at all
    ([""] * 16, 5, None, None, "empty"),
    # normalisation merges spellings into the majority: "Two" + "2" = 6 against "3" x 5
    (["Two"] * 3 + ["2"] * 3 + ["3"] * 5 + [""] * 5, 5, 0, {6}, None),
    # the threshold counts raw samples, empty answers take no part: 5 red of 16 with 11 empty
    (["red"] * 5 + ["blue"] + [""] * 10, 5, 0, {5}, None),
    # threshold 1: any strict majority
    (["red", "red", "blue"], 1, 0, {2}, None),
])
def test_majority_vote(answers, threshold, chosen, rejected_in, dropped) -> None:
    v = vote(answers, threshold)
    assert v.dropped == dropped
    assert v.chosen == chosen
    if rejected_in is None:
        assert v.rejected is None
    else:
        assert v.rejected in rejected_in
        assert normalize_answer(answers[v.rejected]) != normalize_answer(answers[v.chosen])


def test_the_alternative_is_drawn_uniformly_among_the_other_distinct_answers() -> None:
    answers = ["red"] * 8 + ["blue"] * 6 + ["green"] + ["yellow"]  # blue is 6x as frequent, not 6x as likely
    drawn = [normalize_answer(answers[vote(answers, seed=s).rejected]) for s in range(600)]
    shares = {a: drawn.count(a) / len(drawn) for a in ("blue", "green", "yellow")}
    assert all(0.25 < s < 0.42 for s in shares.values()), shares


def test_the_draw_depends_on_the_seed_not_on_the_sampling_order() -> None:
    answers = ["red"] * 6 + ["blue", "green", "yellow"]
    picks = {normalize_answer(answers[vote(answers, seed=s).rejected]) for s in range(30)}
    assert picks == {"blue", "green", "yellow"}
    shuffled = answers[::-1]
    assert normalize_answer(answers[vote(answers, seed=7).rejected]) == \
        normalize_answer(shuffled[vote(shuffled, seed=7).rejected])


@pytest.mark.parametrize(("answers", "reference", "chosen", "dropped"), [
    (["blue", "red", "red", "green"], "red", 1, None),       # the first sample matching the reference
    (["blue"] * 4, "red", None, "no_correct"),
    (["Red", "red."], "red", None, "all_correct"),
    ([""] * 4, "red", None, "empty"),
    (["(B)", "A", "b"], "B", 0, None),                         # option letters normalised on both sides
])
def test_ground_truth_labels(answers, reference, chosen, dropped) -> None:
    v = label_by_ground_truth(answers, reference, random.Random(0))
    assert (v.chosen, v.dropped) == (chosen, dropped)
    if chosen is not None:
        assert normalize_answer(answers[v.rejected]) != normalize_answer(reference)


def test_majority_and_ground_truth_disagree_when_the_majority_is_wrong() -> None:
    answers = ["red"] * 9 + ["blue"] * 5 + ["green"] * 2  # the model's shortcut says red; the truth is blue
    assert answers[vote(answers).chosen] == "red"
    assert answers[label_by_ground_truth(answers, "blue", random.Random(0)).chosen] == "blue"
