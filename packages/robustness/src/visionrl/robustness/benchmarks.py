"""Multiple-choice benchmarks → `MCQRecord`: the paper's eight benchmarks by column map, any folder or hub
id in the canonical MCQ layout, and the `shapes` world.

`--data` takes one or more comma-separated entries:

    shapes                    generated shapes MCQ (the demo's held-out world)
    cvbench                   a table entry: its hub id, split and column map
    cvbench=path/to/folder    a local folder in that benchmark's format (same column map)
    nyu-visionx/CV-Bench      a hub id listed in the table (same as `cvbench`)
    path/or/owner/name        anything else: the canonical layout (id, images, question, options, answer)

Column maps come from each benchmark's published loader where one exists (lmms-eval task code: CV-Bench,
V*Bench, MME-RealWorld-Lite, MMBench; VLMEvalKit's TSV layout for 3DSRBench; whatsup_vlms' JSON for
WhatsUp). Spatial-MM is distributed as a repository of JSON files without a hub dataset, so its entries use
the canonical layout ([R]). Rows are adapted, then validated by core (`build_record`), so every problem is a
`DataError` naming the file and row.
"""

from __future__ import annotations

import base64
import binascii
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from visionrl.core.data.loaders import iter_rows, load_records, source_root
from visionrl.core.data.records import MCQRecord
from visionrl.core.data.validate import DataError, ImagePolicy, Where, build_record

SHAPES = "shapes"


@dataclass(frozen=True)
class BenchmarkSpec:
    """How one benchmark's rows map onto an MCQ record."""

    name: str
    hub_id: str | None
    """Hub dataset id; None when the benchmark is only distributed as files (pass `name=folder`)."""
    config: str | None = None
    split: str = "test"
    question: str | None = "question"
    """Question column; None uses `fixed_question` (caption-choice benchmarks have no question)."""
    fixed_question: str = ""
    options: str | tuple[str, ...] = "options"
    """A column holding a list/dict/JSON of options, or a tuple of per-letter columns ("A", "B", ...)."""
    embedded_options: bool = False
    """Options are written inside the question as "(A) x (B) y" (one per line or inline)."""
    answer: str = "answer"
    answer_is_first: bool = False
    """The first option is the right one (WhatsUp); options are then shuffled per item, seeded by its id."""
    images: str = "image"
    base64_images: bool = False
    """Images are base64 strings (VLMEvalKit TSVs, MME-RealWorld-Lite)."""
    id: str | None = "id"
    """Id column (rows without one get `<name>-<row>`)."""
    hint: str | None = None
    """Column prepended to the question when non-empty (MMBench's hint)."""
    meta: tuple[str, ...] = ()
    """Columns copied into `record.meta` (categories for per-category breakdowns)."""


BENCHMARKS: dict[str, BenchmarkSpec] = {
    s.name: s
    for s in (
        # VLMEvalKit TSV (3dsrbench_v1_vlmevalkit.tsv): index, question, A-D, answer, category, image (base64).
        BenchmarkSpec(
            "3dsrbench",
            None,
            options=("A", "B", "C", "D"),
            images="image",
            base64_images=True,
            id="index",
            meta=("category",),
        ),
        # lmms-eval cv_bench: choices list, answer "(A)", image, idx, task/source/type.
        BenchmarkSpec(
            "cvbench", "nyu-visionx/CV-Bench", options="choices", id="idx", meta=("task", "source", "type")
        ),
        BenchmarkSpec("spatial-mm-obj", None, images="images"),
        BenchmarkSpec("spatial-mm-multihop", None, images="images"),
        # whatsup_vlms: {"image_path", "caption_options"}, the first caption is the right one.
        BenchmarkSpec(
            "whatsup",
            None,
            question=None,
            fixed_question="Which caption describes the image?",
            options="caption_options",
            answer_is_first=True,
            images="image_path",
        ),
        # lmms-eval vstar_bench: text holds the question and "(A) ..." options, label is the letter.
        BenchmarkSpec(
            "vstar",
            "lmms-lab/vstar-bench",
            question="text",
            embedded_options=True,
            answer="label",
            id="question_id",
            meta=("category",),
        ),
        # lmms-eval mme_realworld_lite: "multi-choice options" ["(A) x", ...], answer letter, bytes (base64).
        BenchmarkSpec(
            "mme-realworld-lite",
            "yifanzhang114/MME-RealWorld-lite-lmms-eval",
            split="train",
            options="multi-choice options",
            images="bytes",
            base64_images=True,
            id="index",
            meta=("category", "l2-category"),
        ),
        # lmms-eval mmbench (en dev): hint, question, A-D (missing options are null/"nan"), answer, image.
        BenchmarkSpec(
            "mmbench",
            "lmms-lab/MMBench",
            config="en",
            split="dev",
            options=("A", "B", "C", "D"),
            hint="hint",
            id="index",
            meta=("category", "l2-category"),
        ),
        # SAT (training data of the paper's RL runs): answers list, correct_answer text, image_bytes list.
        BenchmarkSpec(
            "sat",
            "array/SAT",
            split="train",
            options="answers",
            answer="correct_answer",
            images="image_bytes",
            meta=("question_type",),
        ),
    )
}
PAPER_BENCHMARKS: tuple[str, ...] = (
    "3dsrbench",
    "cvbench",
    "spatial-mm-obj",
    "spatial-mm-multihop",
    "whatsup",
    "vstar",
    "mme-realworld-lite",
    "mmbench",
)

_LETTER_PREFIX = re.compile(r"^\s*\(?([A-Z])[).:]\s*")
_EMBEDDED = re.compile(r"\(([A-Z])\)\s*([^\n]*?)\s*(?=\([A-Z]\)|\n|$)")


def _missing(value: Any) -> bool:
    return (
        value is None
        or (isinstance(value, float) and value != value)
        or (isinstance(value, str) and value.strip().lower() in ("", "nan", "none"))
    )


def _decode_image(value: Any, where: Where) -> Any:
    if isinstance(value, list | tuple):
        return [_decode_image(v, where) for v in value]
    if not isinstance(value, str):
        return value
    try:
        return {"bytes": base64.b64decode(value, validate=True), "path": None}
    except (binascii.Error, ValueError):
        raise where.error("field 'images' is not valid base64") from None


def _options(row: dict[str, Any], spec: BenchmarkSpec, where: Where) -> tuple[str, Any]:
    """(question text, options as a list or dict) from the row."""
    question = spec.fixed_question if spec.question is None else row.get(spec.question)
    if spec.embedded_options:
        if not isinstance(question, str):
            raise where.error(f"column {spec.question!r} is missing or not text")
        found = _EMBEDDED.findall(question)
        head = question.split("(A)", 1)[0].strip()
        return head, {letter: text for letter, text in found}
    if isinstance(spec.options, tuple):
        return question, {k: row[k] for k in spec.options if not _missing(row.get(k))}
    value = row.get(spec.options)
    if value is None:
        raise where.error(f"column {spec.options!r} (options) is missing")
    if isinstance(value, list | tuple) and value and all(isinstance(v, str) for v in value):
        prefixes = [_LETTER_PREFIX.match(v) for v in value]
        if all(m and m.group(1) == chr(ord("A") + i) for i, m in enumerate(prefixes)):
            value = [v[m.end() :] for v, m in zip(value, prefixes)]  # "(A) x" -> "x"
    return question, value


def adapt_row(row: dict[str, Any], spec: BenchmarkSpec, where: Where) -> dict[str, Any]:
    """One source row in the canonical MCQ layout (validated afterwards by core's `build_record`)."""
    question, options = _options(row, spec, where)
    answer = row.get(spec.answer)
    rid = None if spec.id is None or _missing(row.get(spec.id)) else str(row[spec.id])
    if spec.answer_is_first:
        if not isinstance(options, list | tuple) or len(options) < 2:
            raise where.error(f"column {spec.options!r} must list at least two options")
        order = list(range(len(options)))
        random.Random(f"{spec.name}:{rid or where.row}").shuffle(order)  # the right caption is not always A
        answer = chr(ord("A") + order.index(0))
        options = [options[i] for i in order]
    elif isinstance(answer, int) and not isinstance(answer, bool) and isinstance(options, list | tuple):
        answer = chr(ord("A") + answer)  # an option index
    if spec.hint and not _missing(row.get(spec.hint)) and isinstance(question, str):
        question = f"{row[spec.hint]}\n{question}"
    images = row.get(spec.images)
    if spec.base64_images and images is not None:
        images = _decode_image(images, where)
    meta = {"benchmark": spec.name}
    meta.update({k: row[k] for k in spec.meta if isinstance(row.get(k), str | int | float | bool)})
    out = {"question": question, "options": options, "answer": answer, "images": images, "meta": meta}
    return out | ({"id": rid} if rid is not None else {})


def load_spec(source: str, spec: BenchmarkSpec, limit: int | None = None) -> list[MCQRecord]:
    """Records of `spec` read from `source` (a folder, a file or a hub id), validated row by row."""
    rows = iter_rows(source, split=spec.split, config=spec.config)
    policy = ImagePolicy(source_root(source))
    records: list[MCQRecord] = []
    seen: set[str] = set()
    while limit is None or len(records) < limit:
        try:
            where, row = next(rows)
        except StopIteration:
            break
        record = build_record(
            adapt_row(row, spec, where), "mcq", {}, where, f"{spec.name}-{where.row}", policy
        )
        if record.id in seen:
            raise where.error(f"duplicate id {record.id!r}")
        seen.add(record.id)
        records.append(record)
    if not records:
        raise DataError(f"{source}: no records found")
    return records


def shapes_mcq(n: int, seed: int | None = None) -> list[MCQRecord]:
    """`n` shapes MCQ records from the demo's held-out world (or the world of `seed`)."""
    from visionrl.core.demo_teacher import HELDOUT_SEED, demo_world

    return demo_world(HELDOUT_SEED if seed is None else seed).mcq(n)


def load_benchmarks(
    data: str,
    limit: int | None = None,
    *,
    split: str = "test",
    columns: dict[str, str] | None = None,
    shapes_size: int = 200,
) -> dict[str, list[MCQRecord]]:
    """Benchmark name → records for every comma-separated `--data` entry (see the module docstring)."""
    by_hub = {s.hub_id: s for s in BENCHMARKS.values() if s.hub_id}
    out: dict[str, list[MCQRecord]] = {}
    for entry in (e.strip() for e in data.split(",")):
        if not entry:
            raise DataError(f"--data {data!r} has an empty entry")
        name, _, path = entry.partition("=")
        if entry == SHAPES:
            out[SHAPES] = shapes_mcq(limit or shapes_size)
        elif path:
            if name not in BENCHMARKS:
                raise DataError(
                    f"--data {entry!r}: unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}"
                )
            out[name] = load_spec(path, BENCHMARKS[name], limit)
        elif entry in BENCHMARKS or entry in by_hub:
            spec = BENCHMARKS.get(entry) or by_hub[entry]
            if spec.hub_id is None:
                raise DataError(
                    f"--data {entry}: {spec.name} has no hub dataset; pass --data {spec.name}=FOLDER"
                )
            out[spec.name] = load_spec(spec.hub_id, spec, limit)
        else:
            name = Path(entry).name or entry
            out[name] = load_records(entry, "mcq", columns=columns, split=split, limit=limit)
    return out
