"""Pairwise benchmarks: each loader on a local folder in the benchmark's official layout, and each scorer on
hand-computed outcomes (VL-RewardBench's unparsed exclusion, Multimodal RewardBench's ID-prefix categories
and official random fallback, MM-RLHF-RewardBench's Acc+ grouping), plus the position-bias metrics."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import datasets
import huggingface_hub
import pytest
from PIL import Image
from visionrl.core.data import DataError, PairRecord
from visionrl.core.errors import UserError
from visionrl.core.evaluation.pairwise import load_mmrb, load_mmrlhf, load_vlrewardbench
from visionrl.core.evaluation.pairwise_registry import PAIRWISE_BENCHMARKS, parse_benchmarks
from visionrl.core.evaluation.pairwise_scoring import (
    outcome_from_position,
    outcome_from_scores,
    position_bias,
    presented,
    score_mmrb,
    score_mmrlhf,
    score_vlrewardbench,
)


def png(color=(200, 10, 10)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buf, format="PNG")
    return buf.getvalue()


def write(folder: Path, rel: str, data: bytes | str) -> str:
    path = folder / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return rel


def jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


# ---------------------------------------------------------------- VL-RewardBench

# (id, human_ranking, expected dataset, expected group); the images live under images/<dataset>/ as in the repo.
VLRB_ITEMS = [
    ("RLAIF-V-14", [0, 1], "rlaif-v", "hallucination"),
    ("RLHF-V-Dataset_7", [1, 0], "rlhf-v", "hallucination"),
    ("hallucination_pair_3", [1, 0], "povid", "hallucination"),
    ("mathverse_3693", [0, 1], "reasoning_tasks", "reasoning"),
    ("wildvision-battle_5", [1, 0], "wildvision-battle", "general"),
    ("LRVInstruction-000000007746", [0, 1], "vlfeedback", "general"),
]


def vlrb_row(folder: Path, rid: str, ranking: list[int], dataset: str) -> dict:
    good, bad = f"{rid}: the right answer", f"{rid}: a hallucinated answer"
    return {
        "id": rid,
        "image_path": write(folder, f"images/{dataset}/{rid}.jpg", png()),
        "query": f"What is in image {rid}?",
        "response": [good, bad] if ranking == [0, 1] else [bad, good],
        "human_ranking": ranking,
        "models": ["m1", "m2"],
        "judge": "human",
        "rationale": None,
        "query_source": "COCO",
        "meta": {"note": "x"},
        "human_error_analysis": ["hallucination"],
    }


@pytest.fixture
def vlrb(tmp_path) -> Path:
    folder = tmp_path / "vlrb"
    write(folder, "data.jsonl", jsonl([vlrb_row(folder, rid, rk, ds) for rid, rk, ds, _ in VLRB_ITEMS]))
    return folder


def test_vlrb_loader_chosen_category_and_order_coin(vlrb):
    records = load_vlrewardbench(vlrb, seed=0)
    assert [r.id for r in records] == [i[0] for i in VLRB_ITEMS]
    assert all(
        r.chosen.endswith("the right answer") and r.rejected.endswith("hallucinated answer") for r in records
    )
    assert [(r.category, r.meta["group"]) for r in records] == [(i[2], i[3]) for i in VLRB_ITEMS]
    assert all(r.images[0].size == (8, 8) and r.prompt.startswith("What is in image") for r in records)
    for r, (_, ranking, *_) in zip(records, VLRB_ITEMS):
        # random_number 1 swaps the dataset's two responses (inference_hf.py); flip = chosen shown second.
        shown = [r.chosen, r.rejected] if ranking == [0, 1] else [r.rejected, r.chosen]
        shown = shown[::-1] if r.meta["random_number"] else shown
        assert presented(r) == tuple(shown)
        assert r.meta["flip"] == (shown[1] == r.chosen) and r.meta["human_ranking"] == ranking
    # The coin is per item: the same with a limit, different with another seed.
    assert [r.meta["flip"] for r in load_vlrewardbench(vlrb, seed=0, limit=2)] == [
        r.meta["flip"] for r in records[:2]
    ]
    assert [r.meta["flip"] for r in load_vlrewardbench(vlrb, seed=1)] != [r.meta["flip"] for r in records]
    assert {r.meta["flip"] for r in records} == {True, False}


def test_vlrb_from_a_hub_style_parquet_folder(tmp_path, monkeypatch):
    """The hub layout (data/test-*.parquet, image as an Image feature) goes through `datasets`."""
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    rows = {
        "id": ["RLAIF-V-1", "mmmu_pro_2"],
        "query": ["q1?", "q2?"],
        "response": [["good 1", "bad 1"], ["bad 2", "good 2"]],
        "human_ranking": [[0, 1], [1, 0]],
        "image": [Image.new("RGB", (8, 8)), Image.new("RGB", (6, 6))],
    }
    features = datasets.Features(
        id=datasets.Value("string"),
        query=datasets.Value("string"),
        response=datasets.List(datasets.Value("string")),
        human_ranking=datasets.List(datasets.Value("int64")),
        image=datasets.Image(),
    )
    (tmp_path / "hub" / "data").mkdir(parents=True)
    datasets.Dataset.from_dict(rows, features=features).to_parquet(
        tmp_path / "hub/data/test-00000-of-00001.parquet"
    )
    a, b = load_vlrewardbench(tmp_path / "hub")
    assert (a.chosen, b.chosen, b.category, b.images[0].size) == (
        "good 1",
        "good 2",
        "reasoning_tasks",
        (6, 6),
    )


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"human_ranking": [0, 0]}, "field 'human_ranking' must be [0, 1] or [1, 0], got [0, 0]"),
        ({"human_ranking": [1, 2]}, "field 'human_ranking' must be [0, 1] or [1, 0]"),
        ({"response": ["a", "b", "c"]}, "field 'response' must hold 2 responses, got 3"),
        ({"response": ["a", ""]}, "response 2 of field 'response' is empty"),
        ({"image_path": "images/nowhere.jpg"}, "image 'images/nowhere.jpg' not found"),
        ({"id": None}, "field 'id' is missing"),
        ({"query": ""}, "field 'query' is empty"),
    ],
)
def test_vlrb_bad_rows_name_file_and_row(vlrb, change, fragment):
    rows = [json.loads(line) for line in (vlrb / "data.jsonl").read_text().splitlines()]
    rows[1] |= change
    (vlrb / "data.jsonl").write_text(jsonl(rows))
    with pytest.raises(DataError) as e:
        load_vlrewardbench(vlrb)
    assert f"{vlrb / 'data.jsonl'} row 2: " in str(e.value) and fragment in str(e.value)


def test_vlrb_score_excludes_unparsed_and_averages_groups():
    """Hand-computed. general: agree, reject, unparsed → 1/2; hallucination: 3 agree, 1 reject → 3/4;
    reasoning: unparsed, agree → 1/1. Overall = Σagree/Σ(agree+reject) = (1+3+1)/(2+4+1) = 5/7;
    macro = (1/2 + 3/4 + 1)/3 = 3/4. A k-sample item with [chosen, None, rejected] has no strict majority
    ("other") and is left out too; [chosen, chosen, None] is agree."""
    layout = [
        ("vlfeedback", "chosen"), ("wildvision-battle", "rejected"), ("vlfeedback", None),
        ("povid", "chosen"), ("rlhf-v", "chosen"), ("rlaif-v", "chosen"), ("rlaif-v", "rejected"),
        ("reasoning_tasks", None), ("reasoning_tasks", "chosen"),
        ("vlfeedback", ["chosen", None, "rejected"]), ("povid", ["chosen", "chosen", None]),
    ]  # fmt: skip
    records = [PairRecord(f"r{i}", [], "q", "c", "r", category) for i, (category, _) in enumerate(layout)]
    m = score_vlrewardbench(records[:9], [o for _, o in layout[:9]])
    assert m["accuracy"] == pytest.approx(5 / 7) and m["macro_accuracy"] == pytest.approx(3 / 4)
    assert (m["accuracy/general"], m["accuracy/hallucination"], m["accuracy/reasoning"]) == (0.5, 0.75, 1.0)
    assert (m["items"], m["agree"], m["reject"], m["unparsed"], m["other"]) == (9, 5, 2, 2, 0)
    assert (m["items/general"], m["unparsed/general"], m["unparsed/reasoning"]) == (3, 1, 1)
    k = score_vlrewardbench(records, [o for _, o in layout])
    assert (k["other"], k["other/general"], k["agree/hallucination"]) == (1, 1, 4)
    assert k["accuracy"] == pytest.approx(6 / 8)


def test_vlrb_score_leaves_out_undefined_ratios():
    records = [PairRecord("a", [], "q", "c", "r", "povid"), PairRecord("b", [], "q", "c", "r", "vlfeedback")]
    m = score_vlrewardbench(records, ["chosen", None])
    assert m["accuracy"] == 1.0 and m["macro_accuracy"] == 1.0 and "accuracy/general" not in m
    assert m["items/reasoning"] == 0 and "accuracy/reasoning" not in m
    assert "accuracy" not in score_vlrewardbench(records, [None, None])
    with pytest.raises(ValueError, match="not a VL-RewardBench dataset"):
        score_vlrewardbench([PairRecord("x", [], "q", "c", "r", "nope")], ["chosen"])
    with pytest.raises(ValueError, match="2 records but 1 outcomes"):
        score_vlrewardbench(records, ["chosen"])


def test_vlrb_end_to_end_through_verdict_positions(vlrb):
    """A judge that always names the first-shown answer is right exactly where the chosen one came first."""
    records = load_vlrewardbench(vlrb)
    outcomes = [outcome_from_position(r, 1) for r in records]
    assert outcomes == ["rejected" if r.meta["flip"] else "chosen" for r in records]
    m = score_vlrewardbench(records, outcomes)
    assert m["accuracy"] == sum(not r.meta["flip"] for r in records) / len(records)


# ---------------------------------------------------------------- Multimodal RewardBench

# (ID, Category, Better, the judge's verdict) — the verdicts are used by the scoring tests below.
MMRB_ITEMS = [
    ("nocaps_1", "open_generation/correctness_task", "Output2", "B"),
    ("pairs_2", "safety", "Output1", None),
    ("toxicity_3", "safety", "Output2", "A"),
    ("mathvista_4", "reasoning", "Output1", "A"),
    ("EMMA-Coding_5", "reasoning", "Output2", None),
    ("MMBench_6", "vqa", "Output1", "B"),
]
# The categories the official scorer reports them under (safety and reasoning split by ID prefix).
MMRB_CATEGORIES = [
    "open_generation/correctness_task", "safety/bias", "safety/toxicity", "reasoning/math", "reasoning/coding", "vqa",
]  # fmt: skip


@pytest.fixture
def mmrb(tmp_path) -> Path:
    """A clone of the repository after its download script: data/all_data.json + data/images/..."""
    repo = tmp_path / "multimodal_rewardbench"
    rows = [
        {
            "ID": rid,
            "Text": f"Question {rid}",
            "Image": write(repo / "data", f"images/{rid.split('_')[0]}/{rid}.jpg", png()),
            "Output1": f"{rid} first",
            "Output2": f"{rid} second",
            "Better": better,
            "Category": category,
        }
        for rid, category, better, _ in MMRB_ITEMS
    ]
    write(repo, "data/all_data.json", json.dumps(rows, indent=2))
    return repo


def test_mmrb_loader_categories_and_chosen(mmrb):
    records = load_mmrb(mmrb)
    assert [r.category for r in records] == MMRB_CATEGORIES
    assert [r.chosen.split()[-1] for r in records] == [
        "second",
        "first",
        "second",
        "first",
        "second",
        "first",
    ]
    assert [presented(r) for r in records] == [(f"{i[0]} first", f"{i[0]} second") for i in MMRB_ITEMS]
    assert records[0].meta == {
        "benchmark": "mmrb", "id": "nocaps_1", "Category": "open_generation/correctness_task",
        "Better": "Output2", "flip": True,
    }  # fmt: skip
    assert [r.id for r in load_mmrb(mmrb / "data", limit=2)] == ["nocaps_1", "pairs_2"]
    assert len(load_mmrb(mmrb / "data" / "all_data.json")) == 6


def test_mmrb_score_unparsed_wrong_or_official_random():
    """Hand-computed from MMRB_ITEMS' verdicts. Right: nocaps_1 (B, chosen B) and mathvista_4 (A, chosen A);
    wrong: toxicity_3 and MMBench_6; unparsed: pairs_2 and EMMA-Coding_5. Default: 2/6.
    Official: random.Random(123) draws 0.052 then 0.087, both < 0.5, so both unparsed verdicts become A:
    right for pairs_2 (chosen Output1 = A), wrong for EMMA-Coding_5 (chosen B): 3/6."""
    records = [
        PairRecord(rid, [], "q", "c", "r", category, meta={"flip": better == "Output2"})
        for (rid, _, better, _), category in zip(MMRB_ITEMS, MMRB_CATEGORIES)
    ]
    outcomes = [outcome_from_position(r, i[3]) for r, i in zip(records, MMRB_ITEMS)]
    m = score_mmrb(records, outcomes)
    assert (m["accuracy"], m["items"], m["unparsed"]) == (pytest.approx(1 / 3), 6, 2)
    assert (m["accuracy/safety/bias"], m["unparsed/safety/bias"], m["accuracy/reasoning/math"]) == (0, 1, 1)
    official = score_mmrb(records, outcomes, official=True)
    assert (official["accuracy"], official["accuracy/safety/bias"], official["unparsed"]) == (0.5, 1, 2)
    assert official["accuracy/reasoning/coding"] == 0

    # The same numbers from the official procedure, written independently: Label A/B, seeded fallback.
    rng = random.Random(123)
    labels = ["B" if better == "Output2" else "A" for _, _, better, _ in MMRB_ITEMS]
    preds = [v if v is not None else ("A" if rng.random() < 0.5 else "B") for *_, v in MMRB_ITEMS]
    assert official["accuracy"] == sum(p == label for p, label in zip(preds, labels)) / 6


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"Better": "output2"}, "field 'Better' must be 'Output1' or 'Output2', got 'output2'"),
        ({"Better": None}, "field 'Better' must be 'Output1' or 'Output2', got None"),
        ({"Image": "images/gone.jpg"}, "image 'images/gone.jpg' not found"),
        ({"Category": None}, "field 'Category' is missing"),
    ],
)
def test_mmrb_bad_rows_name_file_and_row(mmrb, change, fragment):
    file = mmrb / "data" / "all_data.json"
    rows = json.loads(file.read_text())
    rows[1] |= change
    file.write_text(json.dumps(rows))
    with pytest.raises(DataError) as e:
        load_mmrb(mmrb)
    assert f"{file} row 2: " in str(e.value) and fragment in str(e.value)


# ---------------------------------------------------------------- MM-RLHF-RewardBench

# (id, image path, outcome); q1 and q2 have several records, as in the benchmark.
MMRLHF_ITEMS = [
    ("q1", "mcq/1.jpg", "chosen"),
    ("q1", "mcq/1.jpg", "chosen"),
    ("q2", "long/2.jpg", "chosen"),
    ("q2", "long/2.jpg", "rejected"),
    ("q2", "long/2.jpg", "chosen"),
    ("q3", "short/3.jpg", None),
    ("q4", "misc/4.jpg", "chosen"),
]


@pytest.fixture
def mmrlhf(tmp_path) -> Path:
    folder = tmp_path / "MM-RLHF-RewardBench"
    rows = [
        {"id": rid, "prompt": f"<image>\nQuestion {rid}?", "image": write(folder, path, png()),
         "chosen": f"good {k}", "rejected": f"bad {k}", "chosen_reason": "", "rejected_reason": ""}
        for k, (rid, path, _) in enumerate(MMRLHF_ITEMS)
    ]  # fmt: skip
    write(folder, "video/clip1/0001.jpg", png())
    rows.insert(
        2, {"id": "v1", "prompt": "What happens?", "video": "video/clip1", "chosen": "a", "rejected": "b"}
    )
    write(folder, "mm_reward_bench.jsonl", jsonl(rows))
    return folder


def test_mmrlhf_loader_groups_categories_and_videos(mmrlhf, caplog):
    records = load_mmrlhf(mmrlhf)
    assert [r.id for r in records] == ["q1", "q1#2", "q2", "q2#2", "q2#3", "q3", "q4"]
    assert [r.group_id for r in records] == [i[0] for i in MMRLHF_ITEMS]
    assert [r.category for r in records] == ["mcq", "mcq", "long", "long", "long", "short", "other"]
    assert records[0].prompt == "Question q1?" and records[0].images[0].size == (8, 8)
    assert "skipped 1 video items" in caplog.text
    with_video = load_mmrlhf(mmrlhf, videos=True)
    video = with_video[2]
    assert (video.id, video.category, video.images) == ("v1", "video", [])
    assert video.meta["video"] == str(mmrlhf / "video" / "clip1")
    assert [r.meta["flip"] for r in load_mmrlhf(mmrlhf, seed=0)] == [r.meta["flip"] for r in records]


def test_mmrlhf_score_acc_plus_groups_by_id():
    """Hand-computed. Acc = right records / records = (2 + 2 + 0 + 1)/7 = 5/7. Acc+ = ids with every record
    right / ids: q1 (2/2) and q4 (1/1) of q1..q4 → 2/4. Per category: mcq 1 and 1; long 2/3 and 0/1;
    short 0 and 0 (its one verdict is unparsed, counted wrong); other (misc/, no keyword) 1 and 1."""
    records = [
        PairRecord(f"{rid}-{k}", [], "q", "c", "r", path.split("/")[0].replace("misc", "other"), group_id=rid)
        for k, (rid, path, _) in enumerate(MMRLHF_ITEMS)
    ]
    m = score_mmrlhf(records, [o for *_, o in MMRLHF_ITEMS])
    assert (m["accuracy"], m["accuracy_plus"]) == (pytest.approx(5 / 7), 0.5)
    assert (m["items"], m["ids"], m["unparsed"]) == (7, 4, 1)
    per = {
        c: (m[f"accuracy/{c}"], m[f"accuracy_plus/{c}"], m[f"ids/{c}"])
        for c in ("mcq", "long", "short", "other")
    }
    assert per == {
        "mcq": (1, 1, 1),
        "long": (pytest.approx(2 / 3), 0, 1),
        "short": (0, 0, 1),
        "other": (1, 1, 1),
    }


def test_mmrlhf_reward_model_scores_become_outcomes(mmrlhf):
    """A reward model is right on strictly higher chosen scores; ties (as in the official `>`) are wrong."""
    records = load_mmrlhf(mmrlhf)
    scores = [(1.0, 0.0), (2.0, 1.0), (1.0, 0.0), (0.5, 0.5), (3.0, 1.0), (0.0, 1.0), (1.0, -1.0)]
    m = score_mmrlhf(records, [outcome_from_scores(c, r) for c, r in scores])
    assert (m["accuracy"], m["accuracy_plus"], m["unparsed"]) == (pytest.approx(5 / 7), 0.5, 0)


def test_mmrlhf_bad_rows(mmrlhf):
    file = mmrlhf / "mm_reward_bench.jsonl"
    rows = [json.loads(line) for line in file.read_text().splitlines()]
    rows[0]["image"] = "mcq/missing.jpg"
    file.write_text(jsonl(rows))
    with pytest.raises(DataError, match=r"mm_reward_bench\.jsonl row 1: image 'mcq/missing\.jpg' not found"):
        load_mmrlhf(mmrlhf)
    rows[0] = {"prompt": "p", "chosen": "a", "rejected": "b"}
    file.write_text(jsonl(rows))
    with pytest.raises(DataError, match=r"row 1: field 'id' is missing"):
        load_mmrlhf(mmrlhf)
    rows[0] = {"id": "v", "prompt": "p", "video": "video/none", "chosen": "a", "rejected": "b"}
    file.write_text(jsonl(rows))
    with pytest.raises(DataError, match=r"row 1: video folder 'video/none' not found"):
        load_mmrlhf(mmrlhf, videos=True)


# ---------------------------------------------------------------- registry and position bias


def test_registry_loads_and_scores_every_benchmark(vlrb, mmrb, mmrlhf):
    sources = {"vlrewardbench": vlrb, "mmrb": mmrb, "mmrlhf": mmrlhf}
    assert set(PAIRWISE_BENCHMARKS) == set(sources)
    for name, bench in PAIRWISE_BENCHMARKS.items():
        records = bench.load(sources[name], limit=3, seed=0)
        assert len(records) == 3 and all(isinstance(r, PairRecord) for r in records)
        assert bench.score(records, ["chosen"] * 3)["accuracy"] == 1.0
    assert PAIRWISE_BENCHMARKS["vlrewardbench"].hub_id == "MMInstruction/VL-RewardBench"
    assert load_vlrewardbench(vlrb, limit=0) == []


def test_parse_benchmarks():
    parsed = parse_benchmarks("vlrewardbench,mmrb=/data/mmrb, mmrlhf")
    assert [(b.name, s) for b, s in parsed] == [
        ("vlrewardbench", None),
        ("mmrb", "/data/mmrb"),
        ("mmrlhf", None),
    ]
    with pytest.raises(
        UserError, match="--benchmarks 'vlrb': unknown benchmark 'vlrb'; choose from vlrewardbench"
    ):
        parse_benchmarks("vlrb")
    with pytest.raises(UserError, match="mmrb has no hub dataset; pass mmrb=FOLDER"):
        parse_benchmarks("mmrb")
    with pytest.raises(DataError, match="no hub dataset"):
        load_mmrb()


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        # An unbiased perfect judge.
        (["chosen"] * 4, ["chosen"] * 4, {"accuracy": 1, "both_orders_accuracy": 1, "consistency": 1,
                                           "position1_rate": 0.5}),
        # Always names the first-shown answer: right half the time, never in both orders, never consistent.
        (["chosen"] * 4, ["rejected"] * 4, {"accuracy": 0.5, "both_orders_accuracy": 0, "consistency": 0,
                                             "position1_rate": 1}),
        # Always prefers the rejected answer: consistent but wrong.
        (["rejected"] * 2, ["rejected"] * 2, {"accuracy": 0, "both_orders_accuracy": 0, "consistency": 1,
                                               "position1_rate": 0.5}),
        # Unparsed verdicts are wrong, never consistent, and outside the position-1 denominator (3 parsed).
        (["chosen", None], ["rejected", "chosen"], {"accuracy": 0.5, "both_orders_accuracy": 0, "consistency": 0,
                                                    "position1_rate": 2 / 3, "unparsed": 1}),
    ],
)  # fmt: skip
def test_position_bias_table(first, second, expected):
    m = position_bias(first, second)
    assert {k: m[k] for k in expected} == pytest.approx(expected)
    assert m["items"] == len(first)


def test_position_bias_input_checks():
    assert position_bias([], []) == {"items": 0, "unparsed": 0}
    with pytest.raises(ValueError, match="1 outcomes in one order but 2"):
        position_bias(["chosen"], ["chosen", "chosen"])
    with pytest.raises(ValueError, match="outcomes must be"):
        position_bias(["A"], ["chosen"])  # type: ignore[list-item]
