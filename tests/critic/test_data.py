"""Pairs → critic rows: the exact prompt, the seeded order with its flip, the label that follows it, dropped
rationales, and the loaders (pair folders, critic-row folders in the hub layout) with their bad rows."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import pytest
from PIL import Image
from visionrl.core.data import DataError, PairRecord
from visionrl.core.data.validate import Where
from visionrl.critic.data import (
    Columns,
    canonical_choice,
    critic_row,
    detect_layout,
    drop_many_images,
    load_critic_rows,
    load_critic_source,
    load_pairs,
    pair_coin,
    reorganize_all,
    reorganize_pairwise,
)

IMG = Image.new("RGB", (8, 8), (200, 10, 10))

# The whole training question for one pair, written out by hand: `<image>` (the image goes first), the
# critic prompt with its leading space, then the reasoning suffix glued on without a separator.
SNAPSHOT = (
    "<image> You are a highly capable multimodal AI assistant tasked with evaluating answers to visual "
    "questions. Please analyze the following image and question, then determine which of the two provided "
    "answers is better.\n\nQuestion: What color is the shape on the left?\n\nAnswer 1: red\n\nAnswer 2: blue\n\n"
    "Please evaluate both answers based on the following criteria:\n"
    "1. Accuracy: How well does the answer align with the visual information in the image?\n"
    "2. Completeness: Does the answer fully address all aspects of the question?\n"
    "3. Clarity: Is the answer easy to understand and well-articulated?\n"
    "4. Relevance: Does the answer directly relate to the question and the image?\n\n"
    "After your evaluation, please:\n"
    "1. Explain your reasoning for each criterion.\n"
    "2. Provide an overall judgment on which answer is better (Answer 1 or Answer 2). For example: Overall "
    "Judgment: Answer X is better.\n\n"
    "Your response should be structured and detailed, demonstrating your understanding of both the visual and "
    "textual elements of the task.You FIRST think about the reasoning process as an internal monologue and "
    "then provide the final answer. The reasoning process MUST BE enclosed within <think> </think> tags. The "
    "final answer MUST BE put in \\boxed{}."
)


def pair(i: int = 0, chosen: str = "red", rejected: str = "blue", **meta) -> PairRecord:
    return PairRecord(f"p{i}", [IMG], "What color is the shape on the left?", chosen, rejected, "color_at", meta=meta)


def test_prompt_snapshot_chosen_first():
    row = critic_row(pair(), flip=False)
    assert row.question == SNAPSHOT
    assert row.answer == "1" and row.meta["flip"] is False and row.images == [IMG]


def test_label_follows_the_flip_and_flips_are_balanced():
    rows = reorganize_all([pair(i, chosen=f"good {i}", rejected=f"bad {i}") for i in range(1000)], seed=0)
    flips = [r.meta["flip"] for r in rows]
    assert 450 <= sum(flips) <= 550  # 50 ± 5 % over 1,000
    for i, r in enumerate(rows):
        first = r.question.split("Answer 1: ", 1)[1].split("\n", 1)[0]
        second = r.question.split("Answer 2: ", 1)[1].split("\n", 1)[0]
        assert (first, second) == ((f"bad {i}", f"good {i}") if r.meta["flip"] else (f"good {i}", f"bad {i}"))
        assert r.answer == ("2" if r.meta["flip"] else "1")
    # the coin is the pair's: same seed and id, same order, whatever else is loaded; another seed differs
    assert reorganize_all([pair(7, "good 7", "bad 7")], seed=0)[0].meta["flip"] == flips[7]
    assert [r.meta["flip"] for r in reorganize_all([pair(i) for i in range(50)], seed=1)] != flips[:50]


def test_rng_decides_the_order():
    class Fixed(random.Random):
        def __init__(self, value: float):
            super().__init__(0)
            self.value = value

        def random(self) -> float:
            return self.value

    assert reorganize_pairwise(pair(), Fixed(0.7)).answer == "1"
    flipped = reorganize_pairwise(pair(), Fixed(0.2))
    assert flipped.answer == "2" and "Answer 1: blue" in flipped.question and flipped.meta["flip"] is True


def test_phrase_ground_truth():
    assert reorganize_pairwise(pair(), pair_coin(0, "p0"), gt_form="phrase").answer in ("Answer 1", "Answer 2")
    assert critic_row(pair(), True, "phrase").answer == "Answer 2"


def test_rationales_and_other_fields_are_dropped():
    p = pair(rationale="GPT-4V: Answer 1 is better because the square is red.", criteria="Judge helpfulness first")
    row = reorganize_pairwise(p, pair_coin(0, p.id))
    assert "GPT-4V" not in row.question and "helpfulness first" not in row.question
    assert set(row.meta) == {"flip", "pair_id", "category"}


def test_image_tokens_in_the_source_text_are_not_repeated():
    p = PairRecord("x", [IMG], "<image>\nWhat is it?", "a cat", "a dog")
    row = critic_row(p, False)
    assert row.question.count("<image>") == 1 and row.question.startswith("<image> You are")
    assert "Question: What is it?\n" in row.question


# ---- loaders -----------------------------------------------------------------------------------------
def png() -> bytes:
    buf = io.BytesIO()
    IMG.save(buf, format="PNG")
    return buf.getvalue()


def write_folder(folder: Path, rows: list[dict], image: str = "images/a.png") -> Path:
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / image).write_bytes(png())
    (folder / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def test_pair_folder_loads_and_reorganizes(tmp_path):
    rows = [{"id": f"q{i}", "prompt": "Which?", "chosen": f"yes {i}", "rejected": f"no {i}", "images": "images/a.png",
             "rationale": "long GPT text"} for i in range(4)]
    src = write_folder(tmp_path / "pairs", rows)
    assert detect_layout(str(src), "train", Columns()) == "pairs"
    pairs = load_pairs(str(src))
    assert [p.id for p in pairs] == ["q0", "q1", "q2", "q3"] and pairs[0].images[0].size == (8, 8)
    got = load_critic_source(str(src), layout="auto", split="train", cols=Columns(), seed=0, gt_form="digit")
    assert [r.meta["flip"] for r in got] == [pair_coin(0, f"q{i}").random() < 0.5 for i in range(4)]
    assert all("long GPT text" not in r.question for r in got)


@pytest.mark.parametrize(("row", "message"), [
    ({"prompt": "Which?", "rejected": "no", "images": "images/a.png"}, "field 'chosen'"),
    ({"prompt": "Which?", "chosen": "same", "rejected": " same ", "images": "images/a.png"},
     "'chosen' equals 'rejected'"),
])
def test_bad_pairs_name_file_and_row(tmp_path, row, message):
    good = {"prompt": "Which?", "chosen": "yes", "rejected": "no", "images": "images/a.png"}
    src = write_folder(tmp_path / "bad", [good, row])
    with pytest.raises(DataError, match=rf"data.jsonl row 2: .*{message}"):
        load_pairs(str(src))


def critic_rows(n: int = 3) -> list[dict]:
    # the hub layout of lmms-lab/LLaVA-Critic-GRPO-dataset: question (with <image>), answer, image
    answers = ["1", "Answer 2", "\\boxed{2}"]
    return [{"question": f"<image>\nWhich answer is better? Answer 1: a{i} Answer 2: b{i}", "answer": answers[i % 3],
             "image": "images/a.png"} for i in range(n)]


def test_critic_row_folder_in_the_hub_layout(tmp_path):
    src = write_folder(tmp_path / "rows", critic_rows())
    assert detect_layout(str(src), "train", Columns()) == "critic-rows"
    rows = load_critic_rows(str(src))
    assert [r.answer for r in rows] == ["1", "2", "2"] and [r.meta["flip"] for r in rows] == [False, True, True]
    assert rows[0].images[0].size == (8, 8)
    # EasyR1's math_format.jinja: `{{ content | trim }}` + " " + the reasoning suffix
    assert rows[0].question == ("<image>\nWhich answer is better? Answer 1: a0 Answer 2: b0 You FIRST think about "
                                "the reasoning process as an internal monologue and then provide the final answer. "
                                "The reasoning process MUST BE enclosed within <think> </think> tags. The final "
                                "answer MUST BE put in \\boxed{}.")
    assert [r.answer for r in load_critic_rows(str(src), gt_form="phrase")] == ["Answer 1", "Answer 2", "Answer 2"]


def test_critic_row_without_image_marker_gets_it_first(tmp_path):
    src = write_folder(tmp_path / "rows", [{"question": " Which is better? You FIRST think about the reasoning "
                                            "process as an internal monologue and then provide the final answer. The "
                                            "reasoning process MUST BE enclosed within <think> </think> tags. The "
                                            "final answer MUST BE put in \\boxed{}.", "answer": "1",
                                            "image": "images/a.png"}])
    question = load_critic_rows(str(src))[0].question  # already has the suffix: kept as is, image first
    assert question.startswith("<image> Which is better? You FIRST") and question.count("You FIRST") == 1


@pytest.mark.parametrize(("row", "message"), [
    ({"question": "<image>Which?", "answer": "Answer 3", "image": "images/a.png"}, "not a choice"),
    ({"question": "<image><image>Which?", "answer": "1", "image": "images/a.png"}, "2 <image> markers"),
    ({"answer": "1", "image": "images/a.png"}, "field 'question'"),
])
def test_bad_critic_rows_name_file_and_row(tmp_path, row, message):
    src = write_folder(tmp_path / "bad", [critic_rows(1)[0], row])
    with pytest.raises(DataError, match=rf"data.jsonl row 2: .*{message}"):
        load_critic_rows(str(src))


@pytest.mark.parametrize(("value", "expected"), [("1", "1"), (2, "2"), ("answer 2", "2"), ("\\boxed{1}", "1"),
                                                 (" Answer 1. ", "1")])
def test_canonical_choice(value, expected):
    assert canonical_choice(value, Where("f"), "digit") == expected


def test_known_hub_ids_are_critic_rows_without_reading():
    assert detect_layout("lmms-lab/LLaVA-Critic-GRPO-dataset", "train", Columns()) == "critic-rows"
    assert detect_layout("russwang/LLaVA-Critic-GRPO-shortprompt/", "train", Columns()) == "critic-rows"


def test_rows_with_too_many_images_are_dropped_and_counted():
    rows = [critic_row(PairRecord(str(i), [IMG] * k, "q", "a", "b"), False) for i, k in enumerate([1, 2, 1, 3])]
    kept, dropped = drop_many_images(rows, 1)
    assert [r.id for r in kept] == ["0:0", "2:0"] and dropped == 2
    assert drop_many_images(rows, None) == (rows, 0)
