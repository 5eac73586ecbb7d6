"""`judge-eval` scoring on local fixtures in the benchmarks' official formats, with a scripted judge (fixed texts
instead of generation) and numbers computed by hand: VL-RewardBench by cal.py's rules (doesntMatch and "other"
items out of every denominator, k repeats by majority), Multimodal RewardBench with and without `--official`,
both orders."""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path
from typing import Any

import pytest
import visionrl.judge.judging as judging
from PIL import Image
from visionrl.core.cli import run_cli
from visionrl.core.evaluation.pairwise import load_mmrb, load_vlrewardbench
from visionrl.judge.cli import eval_main
from visionrl.judge.config import EVAL_PRESETS
from visionrl.judge.evaluate import evaluate_benchmark, group_counts

GOOD, BAD = "GOOD answer", "BAD answer"


def scripted(text: str, style: str) -> str:
    """What the scripted judge says about one rendered judge prompt: the query's tag decides."""
    a_good = text.index(GOOD) < text.index(BAD)
    good, bad = ("1", "2") if a_good else ("2", "1")
    pick = {"[right]": good, "[wrong]": bad, "[first]": "1"}.get(next((t for t in ("[right]", "[wrong]", "[first]")
                                                                         if t in text), ""))
    if pick is None:  # [garbled]
        return "I cannot decide. Assistant B is better." if "[fallback]" in text else "No idea."
    if style == "vlrb":
        return f"Reasons... Overall Judgment: Answer {pick} is better."
    return f"Explanation. [[{'A' if pick == '1' else 'B'}]]"


@pytest.fixture
def judge(monkeypatch: pytest.MonkeyPatch):
    """Replace generation by the scripted judge; `repeats` > 1 draws from per-query sample lists."""
    samples: dict[str, list[str]] = {}

    def greedy(vlm: Any, prompts: list[Any], max_new_tokens: int, **kw: Any) -> list[str]:
        return [scripted(p.content[-1], "vlrb" if "Overall Judgment" in p.content[-1] else "mmrb") for p in prompts]

    def sample_groups(vlm: Any, prompts: list[Any], n: int, sampling: Any, **kw: Any) -> list[list[str]]:
        assert (sampling.temperature, sampling.top_p) == (0.2, 0.2)
        out = []
        for p in prompts:
            text = p.content[-1]
            tag = next(k for k in samples if k in text)
            out.append([scripted(text.replace(tag, t), "vlrb") for t in samples[tag]][:n])
        return out

    monkeypatch.setattr(judging, "greedy", greedy)
    monkeypatch.setattr(judging, "sample_groups", sample_groups)
    return samples


def png(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (1, 2, 3)).save(path)
    return str(path.relative_to(path.parent.parent))


VLRB_ITEMS = [  # (id, tag, group)
    ("RLAIF-V-1", "[right]", "hallucination"),
    ("RLHF-V-2", "[wrong]", "hallucination"),
    ("povid_3", "[garbled]", "hallucination"),
    ("wildvision_4", "[right]", "general"),
    ("LRVInstruction-5", "[first]", "general"),
    ("mathverse_6", "[right]", "reasoning"),
    ("mmmu_7", "[wrong]", "reasoning"),
]


def vlrb_folder(root: Path, bad_ranking: bool = False) -> Path:
    rows = []
    for k, (rid, tag, _) in enumerate(VLRB_ITEMS):
        first_good = k % 2 == 0
        rows.append({"id": rid, "query": f"What is shown? {tag}", "response": [GOOD, BAD] if first_good else [BAD, GOOD],
                     "human_ranking": [0, 1] if first_good else [1, 0], "image_path": png(root / "images" / f"{k}.png"),
                     "query_source": "fixture"})
    if bad_ranking:
        rows[3]["human_ranking"] = [1, 1]
    (root / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def test_vlrewardbench_by_cal_py(tmp_path: Path, judge) -> None:
    records = load_vlrewardbench(vlrb_folder(tmp_path), seed=0)
    cfg = dataclasses.replace(EVAL_PRESETS["demo"], judge_prompt="vlrb")
    metrics, rows = evaluate_benchmark(None, "vlrewardbench", records, cfg)
    m = {k.removeprefix("eval/vlrewardbench/"): v for k, v in metrics.items()}
    # [first] always names Answer 1: right exactly when the coin showed the preferred response first.
    first_right = not next(r for r in records if r.id == "LRVInstruction-5").meta["flip"]
    general = 1.0 if first_right else 0.5
    assert m["agree/hallucination"] == 1 and m["reject/hallucination"] == 1 and m["unparsed/hallucination"] == 1
    assert m["accuracy/hallucination"] == 0.5  # 1 / (1 + 1): the doesntMatch item is left out
    assert m["accuracy/reasoning"] == 0.5 and m["accuracy/general"] == general
    assert m["accuracy"] == pytest.approx((3 + first_right) / 6)  # Σ agree / Σ (agree + reject)
    assert m["macro_accuracy"] == pytest.approx((0.5 + general + 0.5) / 3)
    assert m["items"] == 7 and m["unparsed"] == 1
    assert [r["flip"] for r in rows] == [r.meta["flip"] for r in records]  # the coin is recorded
    lines = group_counts(metrics)
    assert lines[1] == "vlrewardbench hallucination: agree 1, reject 1, doesntMatch 1, other 0, accuracy 0.5000"


def test_vlrewardbench_k_repeats_label_items_by_majority(tmp_path: Path, judge) -> None:
    judge.update({"[right]": ["[right]", "[right]", "[garbled]"], "[wrong]": ["[right]", "[wrong]", "[garbled]"],
                  "[garbled]": ["[garbled]", "[garbled]", "[right]"], "[first]": ["[right]"] * 3})
    records = load_vlrewardbench(vlrb_folder(tmp_path), seed=0)
    cfg = dataclasses.replace(EVAL_PRESETS["demo"], judge_prompt="vlrb", repeats=3)
    m = {k.removeprefix("eval/vlrewardbench/"): v for k, v in evaluate_benchmark(None, "vlrewardbench", records, cfg)[0].items()}
    # [right] 2 of 3 agree -> agree; [wrong] 1 agree, 1 reject, 1 unparsed -> other; [garbled] -> doesntMatch
    assert (m["agree"], m["reject"], m["other"], m["unparsed"]) == (4, 0, 2, 1)
    assert m["accuracy"] == 1.0 and m["accuracy/reasoning"] == 1.0


MMRB_ITEMS = [  # (ID, Category, tag, Better)
    ("pairs_1", "safety", "[right]", "Output1"),
    ("toxic_2", "safety", "[wrong]", "Output2"),
    ("math_3", "reasoning", "[right]", "Output2"),
    ("code_4", "reasoning", "[garbled]", "Output1"),
    ("vqa_5", "vqa", "[garbled][fallback]", "Output2"),
    ("gc_6", "general_correctness", "[right]", "Output1"),
]


def mmrb_folder(root: Path, bad_better: bool = False) -> Path:
    rows = []
    for k, (rid, cat, tag, better) in enumerate(MMRB_ITEMS):
        out1, out2 = (GOOD, BAD) if better == "Output1" else (BAD, GOOD)
        rows.append({"ID": rid, "Text": f"Question {tag}", "Image": png(root / "images" / f"{k}.png"), "Output1": out1,
                     "Output2": out2, "Better": "Output3" if bad_better and k == 2 else better, "Category": cat})
    (root / "all_data.json").write_text(json.dumps(rows))
    return root


def test_multimodal_rewardbench_unparsed_is_wrong_and_reported(tmp_path: Path, judge) -> None:
    records = load_mmrb(mmrb_folder(tmp_path))
    metrics, _ = evaluate_benchmark(None, "mmrb", records, EVAL_PRESETS["demo"])
    m = {k.removeprefix("eval/mmrb/"): v for k, v in metrics.items()}
    # right: pairs_1, math_3, gc_6, and vqa_5 through the fallback ("Assistant B is better", Better = Output2)
    assert m["accuracy"] == pytest.approx(4 / 6) and m["unparsed"] == 1
    assert m["accuracy/safety/bias"] == 1.0 and m["accuracy/safety/toxicity"] == 0.0
    assert m["accuracy/reasoning/math"] == 1.0 and m["accuracy/reasoning/coding"] == 0.0
    assert m["unparsed/reasoning/coding"] == 1 and m["accuracy/vqa"] == 1.0


def test_multimodal_rewardbench_official_random_fallback(tmp_path: Path, judge) -> None:
    records = load_mmrb(mmrb_folder(tmp_path))
    cfg = dataclasses.replace(EVAL_PRESETS["demo"], official=True)
    m = {k.removeprefix("eval/mmrb/"): v for k, v in evaluate_benchmark(None, "mmrb", records, cfg)[0].items()}
    # No fallback under --official: code_4 and vqa_5 are unparsed and get the official random verdicts, drawn in
    # record order from Random(123): 0.0524 < 0.5 -> A (code_4: Better Output1, right), 0.0872 < 0.5 -> A
    # (vqa_5: Better Output2, wrong).
    rng = random.Random(123)
    assert [round(rng.random(), 4) for _ in range(2)] == [0.0524, 0.0872]
    assert m["unparsed"] == 2 and m["accuracy"] == pytest.approx(4 / 6)
    assert m["accuracy/reasoning/coding"] == 1.0 and m["accuracy/vqa"] == 0.0


def test_both_orders_adds_position_bias(tmp_path: Path, judge) -> None:
    records = load_vlrewardbench(vlrb_folder(tmp_path), seed=0)
    for r in records:
        r.prompt = r.prompt.split("[")[0] + "[first]"  # a judge that always names the first answer
    cfg = dataclasses.replace(EVAL_PRESETS["demo"], judge_prompt="vlrb", both_orders=True)
    metrics, rows = evaluate_benchmark(None, "vlrewardbench", records, cfg)
    assert metrics["eval/vlrewardbench/orders/position1_rate"] == 1.0
    assert metrics["eval/vlrewardbench/orders/both_orders_accuracy"] == 0.0
    assert metrics["eval/vlrewardbench/orders/accuracy"] == 0.5
    assert metrics["eval/vlrewardbench/orders/consistency"] == 0.0
    assert all(len(r["swapped_outputs"]) == 1 for r in rows)


@pytest.mark.parametrize(("make", "data", "message"), [
    (vlrb_folder, "vlrewardbench", "row 4: field 'human_ranking' must be [0, 1] or [1, 0], got [1, 1]"),
    (mmrb_folder, "mmrb", "row 3: field 'Better' must be 'Output1' or 'Output2', got 'Output3'"),
])
def test_bad_benchmark_rows_exit_2_naming_the_row(tmp_path: Path, capsys, make, data: str, message: str) -> None:
    folder = make(tmp_path / "bench", True)
    with pytest.raises(SystemExit) as exit_:
        run_cli(lambda: eval_main(["--data", f"{data}={folder}", "--output-dir", str(tmp_path / "out")]))
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(err) == 1 and message in err[0], err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_judge_eval_on_the_demo_model(tmp_path: Path, demo_model_dir: Path, capsys) -> None:
    out = tmp_path / "eval"
    eval_main(["--limit", "6", "--both-orders", "--output-dir", str(out)])
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["eval/shapes/items"] == 6
    assert {"eval/shapes/accuracy", "eval/shapes/orders/both_orders_accuracy", "eval/shapes/orders/position1_rate",
            "eval/shapes/orders/consistency"} <= set(metrics)
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and all(len(r["outputs"]) == len(r["swapped_outputs"]) == 1 for r in rows)
    assert {r["flip"] for r in rows} == {True, False}  # the per-item order coin
    assert (out / "config.yaml").is_file()
