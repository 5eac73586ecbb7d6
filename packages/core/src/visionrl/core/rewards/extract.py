"""Answer extraction: pull the final answer out of a completion.

All functions are pure and linear in the length of the text, so a megabyte of adversarial
output (unclosed boxes, thousands of repeated tags, long whitespace runs) costs milliseconds.
Departures from the reference implementations, numbered:

1. `extract_boxed` has mathruler 0.1.0's semantics (last `\\boxed{` by `rfind`, brace-matched,
   stripped, the string "None" when absent or unclosed) but skips brace-free stretches in C.
2. `normalize_tag_spaces` returns exactly what Vision-SR1's
   `re.sub(r"\\s*(<|>|/)\\s*", r"\\1", text)` returns, but that regex backtracks quadratically
   on long whitespace runs (10k spaces take 3.5 s, 1 MB would take hours); ours is linear.
3. Letter, yes/no and number extraction have no reference implementation; their rules are
   documented on each function and pinned by tables in `tests/core/test_rewards_extract.py`.
   They all read `answer_span`, so a letter or number in the reasoning is never the answer.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache

BOX_OPEN = "\\boxed{"
NO_BOX = "None"  # what mathruler's `extract_boxed_content` returns when there is no closed box
DEFAULT_LETTERS = "ABCDEFGHIJ"

_SCAN_CHUNK = 4096  # characters per `str.count` in `_boxed_content`; any size works, this is fast

# A whitespace run is deleted when it touches `<`, `>` or `/` on either side, which is what the
# Vision-SR1 regex does. Each match starts at a run's first character: right after a tag
# character, or where no whitespace precedes and the run ends at a tag character. The possessive
# `\s*+` never backtracks, so the scan is linear; leading with `\s` lets the engine skip ahead.
_TAG_SPACE = re.compile(r"\s(?:(?<=[<>/]\s)\s*+|(?<!\s\s)\s*+(?=[<>/]))")

# `\byes\b` with IGNORECASE, spelled so the pattern starts with a character class: the engine
# then skips ahead in C instead of trying every position (0.01 s instead of 0.06 s per MB).
_YES = re.compile(r"[yY](?<!\w[yY])[eE][sS](?!\w)")
_NO = re.compile(r"[nN](?<!\w[nN])[oO](?!\w)")

# Numbers are read right to left, on the reversed span: the wanted number is the one that ends
# last, and a reversed search finds it after looking at a couple of positions, whatever precedes
# it (a forward scan would tokenise the whole megabyte). The pattern is written reversed: `carf`
# is `frac`, the denominator comes first, a sign comes last and its lookahead checks the
# character before it. Fractions first, so their digits are not read as separate numbers; then
# "1,000.5"-style thousands, decimals, ".5" and integers. A minus sign counts only when it is not
# a binary minus ("5-3" reads 3, "x = -3" reads -3).
_R_UNSIGNED = r"(?:(?:\d+\.)?+(?:\d{3},)++\d{1,3}(?!\d)|\d+\.\d+|\d+\.(?!\d)|\d+)"
_R_SIGN = r"(?:[-\u2212](?![\w)\]}]))?"
_R_NUMBER = re.compile(
    rf"(?:\}}(?P<den>{_R_UNSIGNED}-?)\{{|(?P<den1>\d))(?:\}}(?P<num>{_R_UNSIGNED}-?)\{{|(?P<num1>\d))"
    rf"carf[dt]?\\(?P<fsign>{_R_SIGN})"
    rf"|(?P<plain>{_R_UNSIGNED}{_R_SIGN})"
)
_LAST_DIGIT = re.compile(r"(?s:.*)\d")


def _boxed_content(text: str) -> str | None:
    """Scan for the last `\\boxed{` and its matching brace; None if absent or unclosed."""
    start = text.rfind(BOX_OPEN)
    if start == -1:
        return None
    body = start + len(BOX_OPEN)
    pos, depth, end = body, 0, len(text)
    while pos < end:
        stop = min(pos + _SCAN_CHUNK, end)
        closes = text.count("}", pos, stop)
        if closes <= depth:
            # Depth cannot fall below zero inside this chunk, so counting is enough.
            depth += text.count("{", pos, stop) - closes
        else:
            for i, ch in enumerate(text[pos:stop], pos):
                if ch == "{":
                    depth += 1
                elif ch == "}":
                    depth -= 1
                    if depth < 0:
                        return text[body:i].strip()
        pos = stop
    return None


def extract_boxed(text: str) -> str:
    r"""Content of the last `\boxed{...}`, brace-matched and stripped; "None" if absent or unclosed.

    >>> extract_boxed(r"so \boxed{1} or rather \boxed{\frac{1}{2}} .")
    '\\frac{1}{2}'
    >>> extract_boxed(r"\boxed{unclosed")
    'None'
    """
    content = _boxed_content(text)
    return NO_BOX if content is None else content


def extract_tag(text: str, tag: str) -> str | None:
    """Stripped content of the first `<tag>...</tag>`; None if the pair is absent.

    Same result as `re.search(rf"<{tag}>(.*?)</{tag}>", text, re.DOTALL)`, found with two `find`s.

    >>> extract_tag("<think> hmm </think><answer> B </answer>", "answer")
    'B'
    >>> extract_tag("<answer>B", "answer") is None
    True
    """
    opener, closer = f"<{tag}>", f"</{tag}>"
    i = text.find(opener)
    if i == -1:
        return None
    j = text.find(closer, i + len(opener))
    if j == -1:
        return None
    return text[i + len(opener) : j].strip()


def extract_answer_tag(text: str) -> str | None:
    """Content of the first `<answer>...</answer>`, or None.

    >>> extract_answer_tag("<think>x</think><answer>42</answer>")
    '42'
    """
    return extract_tag(text, "answer")


def extract_think(text: str) -> str | None:
    """Content of the first `<think>...</think>`, or None.

    >>> extract_think("<think> count the dots </think> \\\\boxed{3}")
    'count the dots'
    """
    return extract_tag(text, "think")


def extract_description(text: str) -> str | None:
    """Content of the first `<description>...</description>` (Vision-SR1 pass 1), or None.

    >>> extract_description("<description>a red cube</description><think>...</think>")
    'a red cube'
    """
    return extract_tag(text, "description")


def normalize_tag_spaces(text: str) -> str:
    """Delete whitespace around `<`, `>` and `/`, as Vision-SR1 does before its format check.

    Equal to `re.sub(r"\\s*(<|>|/)\\s*", r"\\1", text)` on every input, in linear time.

    >>> normalize_tag_spaces("< think > a / b </ think >  x")
    '<think>a/b</think>x'
    """
    return _TAG_SPACE.sub("", text)


def answer_span(text: str) -> str:
    """The part of a completion that holds its final answer, stripped.

    The first of: the `<answer>` content; the last `\\boxed{}` content; the text after an
    unclosed `<answer>` (generation often stops on the string "</answer>", which is then cut);
    the text after the last `</think>`; the whole text.

    >>> answer_span("<think>maybe A</think> The answer is B.")
    'The answer is B.'
    >>> answer_span("<think>maybe A</think><answer>C</answer>"), answer_span("<think>A</think><answer>C")
    ('C', 'C')
    """
    tagged = extract_answer_tag(text)
    if tagged is not None:
        return tagged
    boxed = _boxed_content(text)
    if boxed is not None:
        return boxed
    for marker in ("<answer>", "</think>"):
        cut = text.rfind(marker)
        if cut != -1:
            return text[cut + len(marker) :].strip()
    return text.strip()


@lru_cache(maxsize=32)
def _letter_patterns(letters: str) -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    cls = "[" + re.escape(letters) + "]"
    bare = re.compile(rf"[(\[]?+({cls})[)\]]?+[.:)]?+", re.IGNORECASE)
    labelled = re.compile(rf"[(\[]?+({cls})[.:)\]]\s", re.IGNORECASE)
    phrase = re.compile(
        rf"(?ai:answer|option|choice)\s*+(?:(?ai:is)\s*+)?+[:=]?+\s*+(?:(?ai:option|choice)\s*+)?+"
        rf"([(\[]?+)({cls})(?![A-Za-z0-9])"
    )
    return bare, labelled, phrase


def extract_choice_letter(text: str, letters: str = DEFAULT_LETTERS) -> str | None:
    r"""The option letter a completion commits to, upper-cased; None if absent or ambiguous.

    Rule, applied to `answer_span(text)` (the `<answer>` content, else the last box, else the text
    after `<answer>` or `</think>`, else everything), first hit wins:

    1. the span is just a letter, optionally bracketed or followed by `.`, `:` or `)`:
       "B", "(b)", "[B]", "B.";
    2. the span starts with a labelled letter followed by text: "B. cat", "B) cat", "(B) cat",
       unless another parenthesised letter "(X)" for a different X follows ("(A) and (B)");
    3. phrases "answer is B", "Answer: (c)", "the correct option is D", "choice B" (a bare letter
       must be upper case here, so "the answer is a cat" is not A); all such phrases must agree;
    4. exactly one distinct parenthesised letter "(C)" in the span.

    Bare capital letters in running text ("A dog is ...") are never read as options.

    >>> [extract_choice_letter(s) for s in ["B", "(B)", "B. cat", "The answer is B", r"\boxed{B}"]]
    ['B', 'B', 'B', 'B', 'B']
    >>> extract_choice_letter("<answer>A or B</answer>") is None
    True
    """
    letters = letters.upper()
    bare, labelled, phrase = _letter_patterns(letters + letters.lower())
    span = answer_span(text)
    m = bare.fullmatch(span)
    if m:
        return m.group(1).upper()
    m = labelled.match(span)
    if m:
        letter = m.group(1).upper()
        rest = span[m.end() :]
        return None if any(f"({x})" in rest for x in letters if x != letter) else letter
    # The phrase regex has no literal prefix, so it costs ~0.1 s per MB; skip it when no keyword
    # is present (its words are ASCII-only case-insensitive, so `lower()` finds every hit).
    lowered = span.lower()
    has_phrase = any(word in lowered for word in ("answer", "option", "choice"))
    hits = phrase.finditer(span) if has_phrase else ()
    said = {p.group(2).upper() for p in hits if p.group(2).isupper() or p.group(1)}
    if said:
        return said.pop() if len(said) == 1 else None
    found = [x for x in letters if f"({x})" in span]
    return found[0] if len(found) == 1 else None


def extract_yes_no(text: str) -> str | None:
    """The answer "yes" or "no" (lower case) if exactly one of the two words is in the answer span.

    Case-insensitive and word-bounded ("nothing" is not "no"); None if both or neither appear.

    >>> [extract_yes_no(s) for s in ["Yes.", "<answer>NO</answer>", "yes and no", "nothing"]]
    ['yes', 'no', None, None]
    """
    span = answer_span(text)
    yes, no = _YES.search(span) is not None, _NO.search(span) is not None
    return "yes" if yes and not no else "no" if no and not yes else None


def extract_number(text: str) -> float | None:
    r"""The number that ends last in the answer span, as a float; None if none or not finite.

    Reads integers, decimals (".5"), negatives, thousands separators ("1,000") and
    `\frac{a}{b}` / `\dfrac` / `\tfrac` / `\frac12`. A zero denominator gives None.
    Scientific notation is read as its parts ("1e5" gives 5.0); a chain such as "1.2.3" is read
    from the right (2.3).

    >>> [extract_number(s) for s in ["about 1,000 cats", "x = -3.5", r"\boxed{\frac{1}{4}}", "none"]]
    [1000.0, -3.5, 0.25, None]
    """
    span = answer_span(text)
    digit = _LAST_DIGIT.match(span)  # C-speed backtrack from the end to the last digit
    if digit is None:
        return None
    end = digit.end() + int(span.startswith("}", digit.end()))  # include a closing frac brace
    m = _R_NUMBER.search(span[::-1], len(span) - end)
    if m is None:
        return None

    def read(group: str) -> float:
        return float(m.group(group)[::-1].replace(",", "").replace("\u2212", "-"))

    if m.group("plain") is not None:
        value = read("plain")
    else:
        den = read("den" if m.group("den") is not None else "den1")
        if den == 0:
            return None
        value = read("num" if m.group("num") is not None else "num1") / den
        value = -value if m.group("fsign") else value
    return value if math.isfinite(value) else None
