"""The policy side: the harness's prompts byte for byte, boxed-answer grading by answer type, and the
benchmark loaders on local folders in the official layouts, scored against hand-computed numbers."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image
from visionrl.core.chat import IMAGE
from visionrl.core.data import DataError
from visionrl.core.errors import UserError
from visionrl.critic.policy import (
    answer_key,
    infer_answer_type,
    is_correct,
    load_policy_benchmark,
    parse_policy_data,
    policy_prompts,
    score_policy,
    shapes_questions,
)
from visionrl.critic.prompts import SYSTEM_PROMPT, policy_text

COT = ("You FIRST think about the reasoning process as an internal monologue and then provide the final answer. "
       "The reasoning process MUST BE enclosed within <think> </think> tags. The final answer MUST BE put in \\boxed{}.")


def test_harness_strings():
    # model_mmmu_llama32v.py: " Options:", "\nA. …", the letter suffix, then instruct_prompt glued on
    assert policy_text("Which city? <image 1>", "letter", {"A": "Paris", "B": "Rome"}) == (
        "Which city? <image 1> Options:\nA. Paris\nB. Rome\nAnswer with the option's letter from the given "
        "choices directly." + COT)
    assert policy_text("How tall?", "open") == "How tall?\nAnswer the question using a single word or phrase." + COT
    assert policy_text("Q", "mmstar") == "Q\nAnswer with the option's letter from the given choices." + COT
    assert policy_text("Q", "number") == "Q\nAnswer the question using a single word or number." + COT
    assert policy_text("Q", "yes_no") == "Q Answer with 'Yes' or 'No' directly." + COT


def test_policy_prompt_layout():
    (rec,) = shapes_questions(1)
    (p,) = policy_prompts([rec], prefill="<think>")
    assert p.system == SYSTEM_PROMPT and p.content[0] is IMAGE and p.prefill == "<think>"
    assert p.content[1] == policy_text(rec.question, "open")


@pytest.mark.parametrize(("text", "answer", "kind", "ok"), [
    (r"<think>x</think> \boxed{B}", "B", "letter", True),
    (r"\boxed{(b)}", "B", "letter", True),
    (r"\boxed{B. Rome}", "B", "letter", True),
    (r"\boxed{Rome}", "B", "letter", False),  # no letter, no credit (the reference: no text matching)
    (r"the answer is B", "B", "letter", False),  # no box
    (r"\boxed{Yes}", "yes", "yes_no", True),
    (r"\boxed{No, it is not}", "yes", "yes_no", False),
    (r"\boxed{12.0}", "12", "number", True),
    (r"\boxed{1,200}", "1200", "number", True),
    (r"\boxed{12.5}", "12", "number", False),
    (r"\boxed{Blue}", "Blue", "number", True),  # a ChartQA text answer falls back to mathruler
    (r"\boxed{red}", "red", "open", True),
    (r"\boxed{Red}", "red", "open", True),
    (r"\boxed{\frac{1}{2}}", "0.5", "open", True),
    (r"\boxed{blue}", "red", "open", False),
])
def test_is_correct_table(text, answer, kind, ok):
    assert is_correct(text, answer, kind) is ok


def test_answer_keys_and_types():
    assert answer_key(r"\boxed{ 3 }", "number") == "3" and answer_key("none", "letter") is None
    assert [infer_answer_type(a) for a in ("no", "1,000", "12.5", "Paris")] == ["yes_no", "number", "number", "open"]


def png(color=(10, 200, 10)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (30, 30), color).save(buf, format="PNG")
    return buf.getvalue()


def folder(tmp_path: Path, name: str, rows: list[dict]) -> Path:
    root = tmp_path / name
    (root / "images").mkdir(parents=True)
    (root / "images" / "a.png").write_bytes(png())
    (root / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


MMMU_ROWS = [
    {"id": "validation_Art_1", "question": "Which painter? <image 1>", "options": "['Monet', 'Manet', 'Degas']",
     "answer": "B", "question_type": "multiple-choice", "image_1": "images/a.png", "subfield": "Art"},
    {"id": "validation_Math_2", "question": "What is x? <image 1>", "options": "[]", "answer": "4",
     "question_type": "open", "image_1": "images/a.png", "subfield": "Math"},
    {"id": "validation_Art_3", "question": "Which era?", "options": "['Baroque', 'Modern']", "answer": "A",
     "question_type": "multiple-choice", "image_1": "images/a.png", "subfield": "Art"},
]


def test_mmmu_folder_and_score(tmp_path):
    recs = load_policy_benchmark("mmmu", str(folder(tmp_path, "mmmu", MMMU_ROWS)), limit=None)
    assert [r.meta["answer_type"] for r in recs] == ["letter", "open", "letter"]
    assert recs[0].meta["options"] == {"A": "Monet", "B": "Manet", "C": "Degas"}
    assert "Options:\nA. Monet\nB. Manet\nC. Degas\n" in policy_prompts(recs)[0].content[1]
    texts = [r"<think>t</think> \boxed{B}", r"<think>t</think> \boxed{5}", r"\boxed{A}"]
    m, right = score_policy(recs, texts)
    # right: B (yes), 5 vs 4 (no), A (yes) → 2/3; Art 2/2, Math 0/1 → macro 0.5; format 2/3
    assert right == [True, False, True]
    assert m["accuracy"] == pytest.approx(2 / 3) and m["macro_accuracy"] == pytest.approx(0.5)
    assert m["accuracy/category/Art"] == 1.0 and m["accuracy/answer_type/open"] == 0.0
    assert m["format"] == pytest.approx(2 / 3) and m["items"] == 3


def test_mmstar_and_chartqa_folders(tmp_path):
    mmstar = [{"index": 7, "question": "What is shown?\nOptions: A: cat, B: dog", "answer": "A", "image": "images/a.png",
               "category": "coarse perception"}]
    (rec,) = load_policy_benchmark("mmstar", str(folder(tmp_path, "mmstar", mmstar)), limit=None)
    assert rec.id == "7" and rec.meta["answer_type"] == "letter"
    assert policy_prompts([rec])[0].content[1].startswith("What is shown?\nOptions: A: cat, B: dog\nAnswer with "
                                                          "the option's letter from the given choices.You FIRST")
    chart = [{"type": "human_test", "question": "Peak value?", "answer": "42", "image": "images/a.png"},
             {"type": "augmented_test", "question": "Which colour?", "answer": "Blue", "image": "images/a.png"}]
    recs = load_policy_benchmark("chartqa", str(folder(tmp_path, "chartqa", chart)), limit=None)
    assert [r.meta["answer_type"] for r in recs] == ["number", "open"]
    m, _ = score_policy(recs, [r"\boxed{42.0}", r"\boxed{blue}"])
    assert m["accuracy"] == 1.0


@pytest.mark.parametrize(("row", "message"), [
    ({**MMMU_ROWS[0], "answer": "E"}, "not one of the option letters"),
    ({**MMMU_ROWS[0], "options": "['only one']"}, "at least two options"),
    ({k: v for k, v in MMMU_ROWS[0].items() if k != "question"}, "field 'question'"),
])
def test_bad_mmmu_rows_name_file_and_row(tmp_path, row, message):
    src = folder(tmp_path, "bad", [MMMU_ROWS[0], row])
    with pytest.raises(DataError, match=rf"data.jsonl row 2: .*{message}"):
        load_policy_benchmark("mmmu", str(src), limit=None)


def test_limit_and_shapes():
    assert len(load_policy_benchmark("shapes", None, limit=5)) == 5
    recs = shapes_questions(30)
    assert {r.meta["answer_type"] for r in recs} == {"open"}
    assert {r.meta["category"] for r in recs} == {"on the left", "in the middle", "on the right"}


def test_parse_policy_data():
    assert parse_policy_data("shapes, mmmu=data/mmmu, mmstar") == [("shapes", None), ("mmmu", "data/mmmu"),
                                                                    ("mmstar", None)]
    with pytest.raises(UserError, match="unknown benchmark 'mmlu'"):
        parse_policy_data("mmlu")
    with pytest.raises(UserError, match="vqa=FOLDER"):
        parse_policy_data("vqa")
