"""The policy side: benchmark questions the authors' way, greedy answers, boxed answer → match.

Each question is a `VQARecord` whose `meta` says how it is asked and graded: `suffix` (a key of
`prompts.SUFFIXES`), `answer_type` (`letter` | `yes_no` | `number` | `open`), `options` (MMMU) and
`category`. The scoring scripts are not in the official repository (reference §1.6), so grading is the
reference's recommendation: the last `\\boxed{}`, then the option letter, yes/no, the number (equal up to
1e-6 relative), or mathruler's `grade_answer` for open answers.

Sources (`--policy-data`, comma-separated): `shapes` (the held-out world's colour questions, open), or
`NAME=SOURCE` with NAME one of `mmmu` (lmms-lab/MMMU validation: `question`, `options` as a list's text,
`answer`, `question_type`, `image_1`), `mmstar` (Lin-Chen/MMStar val: `question` with its options,
`answer` letter, `image`, `category`), `chartqa` (lmms-lab/ChartQA test: `question`, `answer`, `image`,
`type`) and `vqa` (core's VQA layout, answer type read from the answer), SOURCE a local folder or hub id.

Departures from the harness, numbered:

1. MMMU keeps the harness's single image (`image_1`) but does not skip images under 28 px (it resizes none).
2. MMStar's suffix is its harness's ("…from the given choices.", no "directly").
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from visionrl.core.data.records import VQARecord
from visionrl.core.data.validate import DataError, ImagePolicy, Where, load_images
from visionrl.core.errors import UserError
from visionrl.core.rewards import (
    extract_boxed,
    extract_choice_letter,
    extract_number,
    extract_yes_no,
    grade_answer,
)

ANSWER_TYPES = ("letter", "yes_no", "number", "open")


# ---- grading -----------------------------------------------------------------------------------------
def answer_key(text: str, answer_type: str) -> str | None:
    r"""The comparable answer a completion boxes (what majority voting counts); None when there is none.

    >>> answer_key(r"<think>x</think> \boxed{(b)}", "letter"), answer_key(r"\boxed{ 1,000 }", "number")
    ('B', '1000')
    >>> answer_key(r"\boxed{ Dark  Red }", "open"), answer_key("no box", "open") is None
    ('dark red', True)
    """
    boxed = extract_boxed(text)
    if boxed == "None":
        return None
    if answer_type == "letter":
        return extract_choice_letter(boxed)
    if answer_type == "yes_no":
        return extract_yes_no(boxed)
    if answer_type == "number":
        n = extract_number(boxed)
        return None if n is None else f"{n:.10g}"
    return " ".join(boxed.lower().split()) or None


def is_correct(text: str, answer: str, answer_type: str) -> bool:
    r"""Boxed answer → letter / yes-no / number / mathruler match against the ground truth.

    >>> is_correct(r"\boxed{B. cat}", "B", "letter"), is_correct(r"\boxed{Yes}", "yes", "yes_no")
    (True, True)
    >>> is_correct(r"\boxed{12.0}", "12", "number"), is_correct(r"\boxed{red}", "red", "open")
    (True, True)
    """
    if answer_type == "open":
        return grade_answer(extract_boxed(text), answer)
    got = answer_key(text, answer_type)
    if answer_type == "number":
        gt, pred = extract_number(answer), extract_number(extract_boxed(text))
        if gt is not None and pred is not None:
            return math.isclose(pred, gt, rel_tol=1e-6, abs_tol=1e-9)
        return grade_answer(extract_boxed(text), answer)
    want = answer.strip().upper() if answer_type == "letter" else answer.strip().lower()
    return got is not None and got == want


def infer_answer_type(answer: str) -> str:
    """`yes_no` for yes/no, `number` for a plain number, else `open`.

    >>> infer_answer_type("Yes"), infer_answer_type("-3.5"), infer_answer_type("red")
    ('yes_no', 'number', 'open')
    """
    a = answer.strip().lower()
    if a in ("yes", "no"):
        return "yes_no"
    return "number" if re.fullmatch(r"-?\d+(?:\.\d+)?", a.replace(",", "")) else "open"


# ---- sources -----------------------------------------------------------------------------------------
def _record(rid: str, images: list[Any], question: str, answer: str, *, suffix: str, answer_type: str,
            category: str = "", options: dict[str, str] | None = None) -> VQARecord:
    meta = {"suffix": suffix, "answer_type": answer_type, "category": category, "options": options}
    return VQARecord(rid, images, question, answer, meta=meta)


def _text(row: dict[str, Any], key: str, where: Where) -> str:
    value = row.get(key)
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise where.error(f"field {key!r} is missing or empty")
    return value


def _mmmu(row: dict[str, Any], where: Where, policy: ImagePolicy) -> VQARecord:
    images = load_images(row.get("image_1"), policy, where)
    question, answer = _text(row, "question", where), _text(row, "answer", where)
    category = str(row.get("subfield") or row.get("id", "")).strip()
    if row.get("question_type") == "multiple-choice":
        options = re.findall(r"'(.*?)'", str(row.get("options", "")))  # the harness's own parse
        if len(options) < 2:
            raise where.error("a multiple-choice question needs at least two options in field 'options'")
        letters = {chr(ord("A") + i): o for i, o in enumerate(options)}
        if answer.strip().upper() not in letters:
            raise where.error(f"answer {answer!r} is not one of the option letters {', '.join(letters)}")
        return _record(_text(row, "id", where), images, question, answer.strip().upper(), suffix="letter",
                       answer_type="letter", category=category, options=letters)
    return _record(_text(row, "id", where), images, question, answer, suffix="open", answer_type="open",
                   category=category)


def _mmstar(row: dict[str, Any], where: Where, policy: ImagePolicy) -> VQARecord:
    answer = _text(row, "answer", where).strip().upper()
    if not re.fullmatch(r"[A-Z]", answer):
        raise where.error(f"answer {answer!r} is not an option letter")
    return _record(str(row.get("index", f"mmstar-{where.row}")), load_images(row.get("image"), policy, where),
                   _text(row, "question", where), answer, suffix="mmstar", answer_type="letter",
                   category=str(row.get("category") or ""))


def _chartqa(row: dict[str, Any], where: Where, policy: ImagePolicy) -> VQARecord:
    answer = _text(row, "answer", where)
    return _record(f"chartqa-{where.row}", load_images(row.get("image"), policy, where),
                   _text(row, "question", where), answer, suffix="number", answer_type=infer_answer_type(answer),
                   category=str(row.get("type") or ""))


def _vqa(row: dict[str, Any], where: Where, policy: ImagePolicy) -> VQARecord:
    answer = _text(row, "answer", where)
    kind = infer_answer_type(answer)
    suffix = {"yes_no": "yes_no", "number": "number"}.get(kind, "open")
    return _record(str(row.get("id", f"vqa-{where.row}")), load_images(row.get("images"), policy, where),
                   _text(row, "question", where), answer, suffix=suffix, answer_type=kind,
                   category=str(row.get("category") or ""))


@dataclass(frozen=True)
class PolicyBenchmark:
    name: str
    hub_id: str | None
    split: str
    adapt: Callable[[dict[str, Any], Where, ImagePolicy], VQARecord]


POLICY_BENCHMARKS: dict[str, PolicyBenchmark] = {b.name: b for b in (
    PolicyBenchmark("mmmu", "lmms-lab/MMMU", "validation", _mmmu),
    PolicyBenchmark("mmstar", "Lin-Chen/MMStar", "val", _mmstar),
    PolicyBenchmark("chartqa", "lmms-lab/ChartQA", "test", _chartqa),
    PolicyBenchmark("vqa", None, "test", _vqa),
)}


def shapes_questions(n: int) -> list[VQARecord]:
    """The demo's held-out colour questions, asked as open questions."""
    from visionrl.core.demo_teacher import heldout_records

    return [_record(r.id, list(r.images), r.question, r.answer, suffix="open", answer_type="open",
                    category=str(r.question.split("shape ", 1)[-1].rstrip("?"))) for r in heldout_records(n)]


def parse_policy_data(spec: str, flag: str = "--policy-data") -> list[tuple[str, str | None]]:
    """`"shapes,mmmu=data/mmmu"` → [("shapes", None), ("mmmu", "data/mmmu")]; a bare name uses its hub id."""
    out = []
    for entry in (e.strip() for e in spec.split(",") if e.strip()):
        name, _, source = (s.strip() for s in entry.partition("="))
        if name != "shapes" and name not in POLICY_BENCHMARKS:
            raise UserError(f"{flag} {spec!r}: unknown benchmark {name!r}; choose from shapes, "
                            f"{', '.join(POLICY_BENCHMARKS)}")
        if name != "shapes" and not source and POLICY_BENCHMARKS[name].hub_id is None:
            raise UserError(f"{flag}: {name} has no hub dataset; pass {name}=FOLDER")
        out.append((name, source or None))
    if not out:
        raise UserError(f"{flag} is empty; pass shapes or NAME=SOURCE")
    return out


def load_policy_benchmark(name: str, source: str | None, limit: int | None, shapes_size: int = 200) -> list[VQARecord]:
    """Records of one policy benchmark (first `limit`); a bad row is a `DataError` naming file and row."""
    from visionrl.core.data.loaders import iter_rows, source_root

    if name == "shapes":
        return shapes_questions(limit or shapes_size)
    bench = POLICY_BENCHMARKS[name]
    src = source or bench.hub_id
    assert src is not None
    policy = ImagePolicy(source_root(src))
    out: list[VQARecord] = []
    for where, row in iter_rows(src, split=bench.split):
        if limit is not None and len(out) >= limit:
            break
        out.append(bench.adapt(row, where, policy))
    if not out:
        raise DataError(f"{src}: no {name} questions found")
    return out


# ---- the report --------------------------------------------------------------------------------------
def policy_prompts(records: Sequence[VQARecord], prefill: str = "") -> list[Any]:
    from visionrl.critic.prompts import policy_prompt

    return [policy_prompt(r.question, r.meta["suffix"], list(r.images), options=r.meta.get("options"),
                          prefill=prefill) for r in records]


def score_policy(records: Sequence[VQARecord], texts: Sequence[str]) -> tuple[dict[str, float], list[bool]]:
    """Accuracy overall (count-weighted), per answer type, per category and their macro mean; format rate."""
    from visionrl.core.rewards import math_format

    right = [is_correct(t, r.answer, r.meta["answer_type"]) for r, t in zip(records, texts)]
    out: dict[str, float] = {"items": float(len(records)),
                             "accuracy": sum(right) / max(1, len(right)),
                             "format": sum(math_format(t) for t in texts) / max(1, len(texts))}
    for key in ("answer_type", "category"):
        groups: dict[str, list[bool]] = {}
        for r, ok in zip(records, right):
            groups.setdefault(str(r.meta.get(key) or "all"), []).append(ok)
        for g, oks in sorted(groups.items()):
            out[f"accuracy/{key}/{g}"] = sum(oks) / len(oks)
        if key == "category":
            out["macro_accuracy"] = sum(sum(o) / len(o) for o in groups.values()) / len(groups) if groups else 0.0
    return out, right
