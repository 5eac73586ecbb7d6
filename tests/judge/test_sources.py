"""Prompt sources: the open/closed classifier, LLaVA-OneVision-style folders and JSON files (a row without its
image file fails naming the row), the shapes pool and the per-iteration slices."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from visionrl.core.data.validate import DataError
from visionrl.judge.sources import CLASSIFIERS, classify_rules, iteration_slice, llava_prompts, shapes_prompts


@pytest.mark.parametrize(("question", "answer", "kind"), [
    ("How many dogs are there?", "3", "closed"),
    ("What is the price?", "12.50", "closed"),
    ("What percentage is shown?", "45%", "closed"),
    ("Which one is red?\nA. the cup\nB. the plate\nAnswer with the option's letter.", None, "closed"),
    ("Which one is red? (A) cup (B) plate", "B", "closed"),
    ("Pick the right option.", "(C)", "closed"),
    ("What color is the car?", "dark red", "closed"),
    ("What is the man holding?", "a red umbrella", "closed"),
    ("What is the man holding?", "He is holding a red umbrella over his head", "open"),
    ("Describe the image.", None, "open"),
    ("Explain why the sky looks orange.", None, "open"),
    ("What is in the picture?", "A dog on a sofa near a lamp", "open"),
    ("What is in the picture?", None, "open"),
])
def test_rules_classifier(question: str, answer: str | None, kind: str) -> None:
    assert classify_rules(question, answer, max_words=3) == kind


def test_max_words_moves_the_boundary() -> None:
    assert classify_rules("What?", "a red umbrella today", max_words=3) == "open"
    assert classify_rules("What?", "a red umbrella today", max_words=4) == "closed"
    assert CLASSIFIERS["closed"]("Describe it.", None, 3) == "closed" and CLASSIFIERS["open"]("How many?", "2", 3) == "open"


def write_llava(folder: Path, rows: list[dict], as_json: bool = False) -> None:
    (folder / "images").mkdir(parents=True, exist_ok=True)
    for name in ("a.png", "b.png"):
        Image.new("RGB", (32, 32), (200, 10, 10)).save(folder / "images" / name)
    if as_json:
        (folder / "llava.json").write_text(json.dumps(rows))
    else:
        (folder / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def conv(q: str, a: str) -> list[dict]:
    return [{"from": "human", "value": q}, {"from": "gpt", "value": a}, {"from": "human", "value": "More?"},
            {"from": "gpt", "value": "No."}]


ROWS = [
    {"id": "vqa-1", "image": "images/a.png", "conversations": conv("<image>\nHow many cups?", "2"),
     "data_source": "vqav2"},
    {"id": "cap-1", "image": "images/b.png",
     "conversations": conv("<image>\nDescribe the image in detail.", "A red square fills the whole picture.")},
]


@pytest.mark.parametrize("as_json", [False, True])
def test_llava_rows_become_prompt_items(tmp_path: Path, as_json: bool) -> None:
    write_llava(tmp_path, ROWS, as_json)
    source = str(tmp_path / "llava.json") if as_json else str(tmp_path)
    items = llava_prompts(source, split="train", config=None, limit=None, classifier="rules", max_words=3)
    assert [(i.id, i.question, i.answer, i.kind) for i in items] == [
        ("vqa-1", "How many cups?", "2", "closed"),
        ("cap-1", "Describe the image in detail.", "A red square fills the whole picture.", "open")]
    images = items[0].images()
    assert len(images) == 1 and images[0].size == (32, 32) and images[0].getpixel((0, 0)) == (200, 10, 10)
    assert items[0].meta["source"] == "vqav2"
    assert len(llava_prompts(source, split="train", config=None, limit=1, classifier="rules", max_words=3)) == 1


def test_a_row_without_its_image_file_names_the_row(tmp_path: Path) -> None:
    rows = [ROWS[0], {**ROWS[1], "image": "images/missing.png"}]
    write_llava(tmp_path, rows)
    with pytest.raises(DataError, match=r"data.jsonl row 2: image 'images/missing.png' not found"):
        llava_prompts(str(tmp_path), split="train", config=None, limit=None, classifier="rules", max_words=3)


@pytest.mark.parametrize(("row", "message"), [
    ({"id": "x", "image": "images/a.png"}, "field 'conversations' must be a non-empty list"),
    ({"id": "x", "image": "images/a.png", "conversations": [{"from": "gpt", "value": "hi"}]}, "no human turn"),
    ({"id": "x", "conversations": conv("Q?", "A")}, "no image"),
])
def test_malformed_rows_name_the_row(tmp_path: Path, row: dict, message: str) -> None:
    write_llava(tmp_path, [ROWS[0], row])
    with pytest.raises(DataError, match=f"row 2: {message}"):
        llava_prompts(str(tmp_path), split="train", config=None, limit=None, classifier="rules", max_words=3)


def test_shapes_pool_interleaves_open_prompts() -> None:
    items = shapes_prompts(40, 0.25, seed=3)
    kinds = [i.kind for i in items]
    assert kinds.count("open") == 10 and kinds[:4] == ["closed", "closed", "closed", "open"]
    assert all(i.question == "Describe the image." for i in items if i.kind == "open")
    assert all(i.answer in ("red", "green", "blue", "yellow") for i in items if i.kind == "closed")
    assert len({i.id for i in items}) == 40 and len(items[0].images()) == 1


def test_iterations_take_fresh_slices_and_wrap() -> None:
    pool = shapes_prompts(10, 0.0, seed=3)
    ids = [[i.id for i in iteration_slice(pool, k, 4)] for k in range(3)]
    assert ids[0] == [p.id for p in pool[:4]] and ids[1] == [p.id for p in pool[4:8]]
    assert ids[2] == [p.id for p in pool[8:]] + [p.id for p in pool[:2]]
    assert len(iteration_slice(pool, 0, 50)) == 10
