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
"""

from __future__ import annotations

import math
import re
from collections import deque
from functools import lru_cache

BOX_OPEN = "\\boxed{"
NO_BOX = "None"  # what mathruler's `extract_boxed_content` returns when there is no closed box
DEFAULT_LETTERS = "ABCDEFGHIJ"

_BRACE = re.compile(r"[{}]")
_SCAN_CHUNK = 4096

# A whitespace run is deleted when it touches `<`, `>` or `/` on either side, which is what the
# Vision-SR1 regex does. The possessive `\s++` and the `(?<!\s)` anchor (a run is only tried from
# its first character) keep the scan linear.
_TAG_SPACE = re.compile(r"(?<=[<>/])\s++|(?<!\s)\s++(?=[<>/])")

_YES_NO = re.compile(r"\b(yes|no)\b", re.IGNORECASE)

# Numbers: `\frac{a}{b}` / `\frac12` first (so their digits are not read as separate numbers), then
# "1,000" style thousands, plain integers/decimals and ".5". A minus sign counts only when it is
# not a binary minus ("5-3" reads 3, "x = -3" reads -3).
_SIGN = r"(?:(?<![\w)\]}])[-\u2212])?"
_UNSIGNED = r"(?:\d{1,3}(?:,\d{3})++(?!\d)(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
_NUMBER = re.compile(
    rf"(?P<fsign>{_SIGN})\\[dt]?frac"
    rf"(?:\{{\s*+(?P<num>-?{_UNSIGNED})\s*+\}}|(?P<num1>\d))"
    rf"(?:\{{\s*+(?P<den>-?{_UNSIGNED})\s*+\}}|(?P<den1>\d))"
    rf"|(?<![\d.])(?P<plain>{_SIGN}{_UNSIGNED})"
)


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
            # Depth cannot fall below zero inside this chunk, so count instead of scanning.
            depth += text.count("{", pos, stop) - closes
            pos = stop
            continue
        for m in _BRACE.finditer(text, pos, stop):
            if text[m.start()] == "{":
                depth += 1
            else:
                depth -= 1
                if depth < 0:
                    return text[body : m.start()].strip()
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

    The first of: the `<answer>` content; the last `\\boxed{}` content; the text after the last
    `</think>`; the whole text.

    >>> answer_span("<think>maybe A</think> The answer is B.")
    'The answer is B.'
    >>> answer_span("<think>maybe A</think><answer>C</answer>")
    'C'
    """
    tagged = extract_answer_tag(text)
    if tagged is not None:
        return tagged
    boxed = _boxed_content(text)
    if boxed is not None:
        return boxed
    cut = text.rfind("</think>")
    if cut != -1:
        return text[cut + len("</think>") :].strip()
    return text.strip()


@lru_cache(maxsize=32)
def _letter_patterns(letters: str) -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    cls = "[" + re.escape(letters) + "]"
    bare = re.compile(rf"[(\[]?+({cls})[)\]]?+[.:)]?+", re.IGNORECASE)
    labelled = re.compile(rf"[(\[]?+({cls})[.:)\]]\s", re.IGNORECASE)
    phrase = re.compile(
        rf"(?i:answer|option|choice)\s*+(?:(?i:is)\s*+)?+[:=]?+\s*+(?:(?i:option|choice)\s*+)?+"
        rf"[(\[]?+({cls})(?![A-Za-z0-9])"
    )
    paren = re.compile(rf"\(({cls})\)")
    return bare, labelled, phrase, paren


def extract_choice_letter(text: str, letters: str = DEFAULT_LETTERS) -> str | None:
    r"""The option letter a completion commits to, upper-cased; None if absent or ambiguous.

    Rule, applied to `answer_span(text)` (the `<answer>` content, else the last box, else the text
    after `</think>`, else everything), first hit wins:

    1. the span is just a letter, optionally bracketed or followed by `.`, `:` or `)`:
       "B", "(b)", "[B]", "B.";
    2. the span starts with a labelled letter followed by text: "B. cat", "B) cat", "(B) cat",
       unless another parenthesised letter "(X)" for a different X follows ("(A) and (B)");
    3. phrases "answer is B", "Answer: (C)", "the correct option is D", "choice B" (the letter must
       be upper case here, so "the answer is a cat" is not A); all such phrases must agree;
    4. exactly one distinct parenthesised letter "(C)" in the span.

    Bare capital letters in running text ("A dog is ...") are never read as options.

    >>> [extract_choice_letter(s) for s in ["B", "(B)", "B. cat", "The answer is B", r"\boxed{B}"]]
    ['B', 'B', 'B', 'B', 'B']
    >>> extract_choice_letter("<answer>A or B</answer>") is None
    True
    """
    bare, labelled, phrase, paren = _letter_patterns(letters.upper() + letters.lower())
    span = answer_span(text)
    m = bare.fullmatch(span)
    if m:
        return m.group(1).upper()
    m = labelled.match(span)
    if m:
        letter = m.group(1).upper()
        others = {p.group(1) for p in paren.finditer(span, m.end()) if p.group(1).isupper()} - {letter}
        return None if others else letter
    said = {p.group(1) for p in phrase.finditer(span) if p.group(1).isupper()}
    if said:
        return said.pop() if len(said) == 1 else None
    found = {p.group(1) for p in paren.finditer(span) if p.group(1).isupper()}
    return found.pop() if len(found) == 1 else None


def extract_yes_no(text: str) -> str | None:
    """"yes" or "no" (lower case) if exactly one of the two words appears in the answer span.

    Case-insensitive and word-bounded ("nothing" is not "no"); None if both or neither appear.

    >>> [extract_yes_no(s) for s in ["Yes.", "<answer>NO</answer>", "yes and no", "nothing"]]
    ['yes', 'no', None, None]
    """
    words = {m.group(1).lower() for m in _YES_NO.finditer(answer_span(text))}
    return words.pop() if len(words) == 1 else None


def extract_number(text: str) -> float | None:
    r"""The last number in the answer span as a float; None if there is none or it is not finite.

    Reads integers, decimals (".5"), negatives, thousands separators ("1,000") and
    `\frac{a}{b}` / `\dfrac` / `\tfrac` / `\frac12`. A zero denominator gives None.
    Scientific notation is read as its parts ("1e5" gives 5.0).

    >>> [extract_number(s) for s in ["about 1,000 cats", "x = -3.5", r"\boxed{\frac{1}{4}}", "none"]]
    [1000.0, -3.5, 0.25, None]
    """
    tail = deque(_NUMBER.finditer(answer_span(text)), maxlen=1)  # keeps only the last match
    if not tail:
        return None
    last = tail[0]
    if last.group("plain") is not None:
        value = float(last.group("plain").replace(",", "").replace("\u2212", "-"))
    else:
        num = float((last.group("num") or last.group("num1")).replace(",", ""))
        den = float((last.group("den") or last.group("den1")).replace(",", ""))
        if den == 0:
            return None
        value = num / den * (-1.0 if last.group("fsign") else 1.0)
    return value if math.isfinite(value) else None
