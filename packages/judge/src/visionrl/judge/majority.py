"""Closed-ended pairs by majority vote (arXiv 2512.05145, Fig. 1: "we generate multiple candidates and pair the
majority answer with a random alternative").

N answers are sampled (paper: 16 at T 0.6, top_k 50, top_p 0.9), normalised, and counted. The most frequent
normalised answer is preferred when it occurs at least `threshold` times (paper: "majority-vote threshold 5";
read as ≥ 5 of 16 [R]) and strictly more often than any other; it is paired with one of the *other* distinct
answers drawn uniformly by a seeded generator. Ties, a majority under the threshold and questions with a single
distinct answer are dropped and counted by reason [R]. The ground-truth ablation (`label_by_ground_truth`)
prefers a sample that matches the reference answer instead.
"""

from __future__ import annotations

import random
import re
import string
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

NUMBER_WORDS = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())}
_ARTICLES = {"a", "an", "the"}
# "B", "(B)", "B.", "B)", "Option B", "Answer: B", "B. a red circle" -> the letter
_OPTION = re.compile(r"^(?:the\s+)?(?:answer|option|choice)?\s*(?:is)?\s*[:\s]*\(?([a-e])\)?(?:[.):]\s.*|[.):]?)$",
                     re.IGNORECASE)
_PUNCT = str.maketrans({c: " " for c in string.punctuation if c not in ".-"})

Drop = Literal["empty", "one_answer", "tie", "below_threshold", "no_correct", "all_correct"]


def normalize_answer(text: str) -> str:
    """A canonical form of a short answer: lower case, no punctuation or articles, number words as digits, an
    option letter on its own ("(B)", "Option B", "B. red") as that letter.

    >>> [normalize_answer(t) for t in ["Red.", "  THE red ", "(B)", "Option c", "b. a red circle", "Two", "2.0"]]
    ['red', 'red', 'b', 'c', 'b', '2', '2']
    """
    text = text.strip()
    m = _OPTION.match(text)
    if m:
        return m.group(1).lower()
    words = text.lower().translate(_PUNCT).split()
    out = []
    for w in words:
        w = w.strip(".")
        if not w or w in _ARTICLES:
            continue
        w = NUMBER_WORDS.get(w, w)
        if re.fullmatch(r"-?\d+\.0+", w):  # "2.0" -> "2"
            w = w.split(".")[0]
        out.append(w)
    return " ".join(out)


@dataclass(frozen=True)
class Vote:
    """A question's vote: the preferred and rejected sample (indices into the samples), or why it was dropped."""

    chosen: int | None
    rejected: int | None
    counts: dict[str, int]
    dropped: Drop | None = None


def majority_vote(answers: Sequence[str], threshold: int, rng: random.Random) -> Vote:
    """Pair the majority answer with a random other answer (`answers` are the N raw sampled answers).

    Returns the index of the first sample holding the majority answer and of one sample of a uniformly drawn
    other distinct answer; empty answers (nothing extracted) take part in neither.

    >>> majority_vote(["red"] * 5 + ["blue"] * 3 + ["green"], 5, random.Random(0)).chosen
    0
    >>> [majority_vote(a, 5, random.Random(0)).dropped for a in (["red"] * 4 + ["blue"], ["red"] * 6,
    ...  ["red"] * 5 + ["blue"] * 5)]
    ['below_threshold', 'one_answer', 'tie']
    """
    norm = [normalize_answer(a) for a in answers]
    counts = Counter(n for n in norm if n)
    if not counts:
        return Vote(None, None, {}, "empty")
    ranked = counts.most_common()
    top, n_top = ranked[0]
    if len(ranked) == 1:
        return Vote(None, None, dict(counts), "one_answer")
    if ranked[1][1] == n_top:
        return Vote(None, None, dict(counts), "tie")
    if n_top < threshold:
        return Vote(None, None, dict(counts), "below_threshold")
    others = sorted(a for a in counts if a != top)  # sorted: the draw does not depend on sampling order
    alt = rng.choice(others)
    return Vote(norm.index(top), norm.index(alt), dict(counts))


def label_by_ground_truth(answers: Sequence[str], reference: str, rng: random.Random) -> Vote:
    """The ablation's labels: a sample matching the reference answer over a random wrong distinct answer.

    >>> v = label_by_ground_truth(["red", "blue", "Red", "green"], "red", random.Random(0))
    >>> v.chosen, v.rejected in (1, 3)
    (0, True)
    >>> label_by_ground_truth(["blue"] * 3, "red", random.Random(0)).dropped
    'no_correct'
    """
    norm = [normalize_answer(a) for a in answers]
    counts = Counter(n for n in norm if n)
    if not counts:
        return Vote(None, None, {}, "empty")
    gold = normalize_answer(reference)
    if gold not in counts:
        return Vote(None, None, dict(counts), "no_correct")
    wrong = sorted(a for a in counts if a != gold)
    if not wrong:
        return Vote(None, None, dict(counts), "all_correct")
    return Vote(norm.index(gold), norm.index(rng.choice(wrong)), dict(counts))
