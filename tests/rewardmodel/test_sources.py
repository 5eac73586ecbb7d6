"""Training-source adapters on local folders in each dataset's released format, with hand-written rows and
the pairs they must give; bad rows name their file and row."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from visionrl.core.data.validate import DataError
from visionrl.core.errors import UserError
from visionrl.rewardmodel.images import ZipImage, load_image
from visionrl.rewardmodel.sources import MIXES, SOURCES, open_source, parse_sources

from .conftest import png

RED, BLUE = (255, 0, 0), (0, 0, 255)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_parse_sources_expands_the_paper_mixes_and_names_the_flag():
    assert [s.name for s, _ in parse_sources("basereward")] == list(MIXES["basereward"])
    assert len(MIXES["basereward"]) == 7 and len(MIXES["basereward-rejected"]) == 4
    assert sum(SOURCES[n].paper_pairs for n in MIXES["basereward"]) == 2_852_000  # "2.8M pairs"
    assert [(s.name, p) for s, p in parse_sources("tulu3=/x, shp")] == [("tulu3", "/x"), ("shp", None)]
    with pytest.raises(UserError, match=r"^--data 'rlaif,shp': unknown source 'rlaif'; choose from basereward"):
        parse_sources("rlaif,shp")


def test_rlaif_v_parquet_with_image_bytes(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"ds_name": "RLAIF-V", "image": {"bytes": png(RED), "path": "a.png"}, "question": "What is shown?",
             "chosen": "A red square.", "rejected": "A blue circle.", "origin_dataset": "COCO",
             "origin_split": "{}", "idx": "17", "image_path": "a.png"}]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "RLAIF-V-Dataset_000.parquet")
    (pair,) = list(open_source(SOURCES["rlaif-v"], str(tmp_path)))
    assert (pair.id, pair.prompt, pair.chosen, pair.rejected) == ("rlaif-v-17", "What is shown?", "A red square.",
                                                                 "A blue circle.")
    assert load_image(pair.images[0]).getpixel((0, 0)) == RED


def _mmpr(folder: Path, split_at: int | None) -> None:
    """MMPR's released layout: meta.json, annotations.zip, images.zip (or its parts _aa, _ab)."""
    notes = io.BytesIO()
    with zipfile.ZipFile(notes, "w") as z:
        z.writestr("MMPR-v1.2/annotations/ai2d.jsonl",
                   json.dumps({"image": "x/1.png", "question": "<image>\nWhich colour?", "chosen": "red",
                               "rejected": "blue"}) + "\n" +
                   json.dumps({"question": "2 + 2?", "chosen": "4", "rejected": "5"}) + "\n")
    (folder / "annotations.zip").write_bytes(notes.getvalue())
    images = io.BytesIO()
    with zipfile.ZipFile(images, "w") as z:
        z.writestr("MMPR-v1.2/images/ai2d/x/1.png", png(RED))
        z.writestr("MMPR-v1.2/images/ai2d/x/2.png", png(BLUE))
    data = images.getvalue()
    if split_at is None:
        (folder / "images.zip").write_bytes(data)
    else:
        (folder / "images.zip_aa").write_bytes(data[:split_at])
        (folder / "images.zip_ab").write_bytes(data[split_at:])
    meta = {"ai2d": {"root": "MMPR-v1.2/images/ai2d", "annotation": "MMPR-v1.2/annotations/ai2d.jsonl",
                     "data_augment": False, "repeat_time": 1, "length": 2}}
    (folder / "meta.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("split_at", [None, 40, 150])
def test_mmpr_reads_annotations_and_images_from_zip_parts(tmp_path, split_at):
    _mmpr(tmp_path, split_at)
    image_pair, text_pair = list(open_source(SOURCES["mmpr"], str(tmp_path)))
    assert (image_pair.prompt, image_pair.chosen, image_pair.rejected) == ("Which colour?", "red", "blue")
    assert isinstance(image_pair.images[0], ZipImage) and image_pair.images[0].member.endswith("ai2d/x/1.png")
    assert load_image(image_pair.images[0]).getpixel((3, 3)) == RED
    assert (text_pair.images, text_pair.prompt) == ([], "2 + 2?")


def test_mmpr_needs_a_local_copy_and_names_a_missing_image(tmp_path):
    with pytest.raises(UserError, match=r"^--data mmpr: ships as zip parts, not a datasets table"):
        list(open_source(SOURCES["mmpr"], None))
    _mmpr(tmp_path, None)
    meta = json.loads((tmp_path / "meta.json").read_text())
    meta["ai2d"]["root"] = "MMPR-v1.2/images/other"
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match=r"annotations.zip:MMPR-v1.2/annotations/ai2d.jsonl row 1: image 'x/1.png' "
                                        r"is not in images.zip"):
        list(open_source(SOURCES["mmpr"], str(tmp_path)))


def test_r1_reward_reads_both_responses_from_the_evaluator_prompt(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "cake.png").write_bytes(png(BLUE))
    prompt = ("You are a highly skilled and impartial evaluator ...\n###### [Question]:\nDescribe it.  \n\n"
              "###### [Response 1]:\nA short answer.  \n\n###### [Response 2]:\nThe artwork is a print.\nIt has two lines.  \n\n"
              "###### **Output Format (strictly follow):**  \n<think>...</think><answer>1/2</answer>")
    message = json.dumps([{"role": "user", "content": [{"type": "text", "text": prompt},
                                                       {"type": "image", "image": "img/cake.png"}]}])
    write_jsonl(tmp_path / "data.jsonl", [{"message": message, "question": "Describe it.",
                                           "answer": ["<answer>2</answer>"], "image": "img/cake.png"}])
    (pair,) = list(open_source(SOURCES["r1-reward"], str(tmp_path)))
    assert (pair.prompt, pair.chosen, pair.rejected) == ("Describe it.", "The artwork is a print.\nIt has two lines.",
                                                         "A short answer.")
    assert load_image(pair.images[0]).getpixel((0, 0)) == BLUE


def test_chat_pairs_tulu3_olmo2_with_history_and_ultrafeedback_gap(tmp_path, monkeypatch):
    from dataclasses import replace

    def turn(role: str, text: str) -> dict:
        return {"role": role, "content": text}

    tulu = {"id": "t1", "prompt": "Write a haiku.", "chosen": [turn("user", "Write a haiku."), turn("assistant", "Leaves")],
            "rejected": [turn("user", "Write a haiku."), turn("assistant", "No.")]}
    olmo = {"chosen": [turn("user", "Hi"), turn("assistant", "Hello!"), turn("user", "Name a colour."),
                       turn("assistant", "Red.")],
            "rejected": [turn("user", "Hi"), turn("assistant", "Hello!"), turn("user", "Name a colour."),
                         turn("assistant", "Seven.")]}
    pairs = list(open_source(SOURCES["tulu3"], str(write_jsonl(tmp_path / "t" / "data.jsonl", [tulu, olmo]))))
    assert [(p.prompt, p.chosen, p.rejected, p.images) for p in pairs] == [
        ("Write a haiku.", "Leaves", "No.", []),
        ("User: Hi\nAssistant: Hello!\nUser: Name a colour.", "Red.", "Seven.", [])]

    rows = [{"prompt": f"q{i}", "chosen": [turn("user", f"q{i}"), turn("assistant", "good")],
             "rejected": [turn("user", f"q{i}"), turn("assistant", "bad")], "score_chosen": 9.0,
             "score_rejected": float(s)} for i, s in enumerate([8, 1, 5, 2])]
    monkeypatch.setitem(SOURCES, "ultra-hard", replace(SOURCES["ultra-hard"], top_gap=2, split="train"))
    hard = list(open_source(SOURCES["ultra-hard"], str(write_jsonl(tmp_path / "u" / "data.jsonl", rows))))
    assert [(p.prompt, p.meta["gap"]) for p in hard] == [("q1", 8.0), ("q3", 7.0)]  # largest gaps, file order


def test_shp_label_one_prefers_a(tmp_path):
    rows = [{"post_id": "p", "domain": "askscience", "history": "Why is the sky blue?", "human_ref_A": "Rayleigh.",
             "human_ref_B": "Magic.", "labels": 1},
            {"post_id": "q", "domain": "askscience", "history": "Why?", "human_ref_A": "No idea.",
             "human_ref_B": "Because.", "labels": 0}]
    a, b = list(open_source(SOURCES["shp"], str(write_jsonl(tmp_path / "data.jsonl", rows))))
    assert (a.chosen, a.rejected, b.chosen, b.rejected) == ("Rayleigh.", "Magic.", "Because.", "No idea.")


@pytest.mark.parametrize(("name", "row", "message"), [
    ("rlaif-v", {"question": "q", "chosen": "", "rejected": "b"}, r"data.jsonl row 2: field 'chosen' is empty"),
    ("rlaif-v", {"question": "q", "chosen": "a", "rejected": "b", "image": "missing.png"},
     r"data.jsonl row 2: image 'missing.png' not found in"),
    ("tulu3", {"chosen": [{"role": "user", "content": "x"}], "rejected": "b"},
     r"data.jsonl row 2: field 'chosen' must end with the assistant's answer"),
    ("r1-reward", {"message": "[]", "question": "q", "answer": ["1"]},
     r"data.jsonl row 2: field 'message' must be a non-empty list of messages"),
    ("shp", {"history": "h", "human_ref_A": "a", "human_ref_B": "b", "labels": 2},
     r"data.jsonl row 2: field 'labels' must be 0 or 1, got 2"),
])
def test_a_bad_row_names_its_file_and_row(tmp_path, name, row, message):
    good = {"question": "q", "chosen": "a", "rejected": "b", "history": "h", "human_ref_A": "a",
            "human_ref_B": "b", "labels": 1, "prompt": "p"}
    if name == "r1-reward":
        good = {"message": json.dumps([{"role": "user", "content": "[Response 1]:\nx\n\n## [Response 2]:\ny\n\n## end"}]),
                "question": "q", "answer": ["<answer>1</answer>"]}
    path = write_jsonl(tmp_path / "data.jsonl", [good, row])
    with pytest.raises(DataError, match=message):
        list(open_source(SOURCES[name], str(path)))


def test_a_text_answer_that_looks_like_json_stays_text(tmp_path):
    rows = [{"prompt": "Give a list.", "chosen": "[1, 2, 3]", "rejected": "[]"},
            {"prompt": "p", "chosen": json.dumps([{"role": "user", "content": "p"}, {"role": "assistant", "content": "a"}]),
             "rejected": json.dumps([{"role": "user", "content": "p"}, {"role": "assistant", "content": "b"}])}]
    a, b = list(open_source(SOURCES["others"], str(write_jsonl(tmp_path / "data.jsonl", rows))))
    assert (a.chosen, a.rejected) == ("[1, 2, 3]", "[]") and (b.chosen, b.rejected) == ("a", "b")
