"""rewardmodel-eval's scoring on local folders in the three official benchmark formats plus the two text sets,
with a scorer whose scores are fixed per response, so every number is computed by hand; ensembles and the
router over such scores; and the CLI end to end on a trained demo reward model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from visionrl.core.data.validate import DataError
from visionrl.core.errors import UserError
from visionrl.rewardmodel.config import EVAL_PRESETS, EvalConfig
from visionrl.rewardmodel.evaluate import Benchmark, combine_all, load_benchmarks, metrics_of, score_pairs

from .conftest import png


class FixedScorer:
    """Scores a response by a table (default 0); counts what it was asked."""

    def __init__(self, table: dict[str, float]):
        self.table, self.asked = table, 0

    def score(self, prompts, responses, batch_size=16):
        self.asked += len(responses)
        return torch.tensor([self.table.get(r, 0.0) for r in responses])


def cfg(data: str, tmp_path: Path, **kw) -> EvalConfig:
    from dataclasses import replace

    base = EVAL_PRESETS["demo"]
    return replace(base, eval=replace(base.eval, data=data, output_dir=tmp_path / "out"), **kw)


def write(folder: Path, rel: str, data: bytes | str) -> str:
    path = folder / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return rel


def vlrb_folder(folder: Path) -> Path:
    # ids choose the group: RLAIF -> hallucination, mathverse -> reasoning, wildvision -> general
    items = [("RLAIF-V-1", [0, 1]), ("RLAIF-V-2", [1, 0]), ("mathverse_3", [0, 1]), ("wildvision-battle_4", [1, 0])]
    rows = [{"id": rid, "query": f"q {rid}", "image_path": write(folder, f"images/{rid}.png", png((9, 9, 9))),
             "response": [f"{rid} first", f"{rid} second"], "human_ranking": rank} for rid, rank in items]
    write(folder, "data.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    return folder


def mmrb_folder(folder: Path) -> Path:
    rows = [{"ID": "pairs_1", "Text": "q1", "Image": write(folder / "data", "images/1.png", png()), "Output1": "m1 good",
             "Output2": "m1 bad", "Better": "Output1", "Category": "safety"},
            {"ID": "math_2", "Text": "q2", "Image": write(folder / "data", "images/2.png", png()), "Output1": "m2 bad",
             "Output2": "m2 good", "Better": "Output2", "Category": "reasoning"},
            {"ID": "code_3", "Text": "q3", "Image": write(folder / "data", "images/3.png", png()), "Output1": "m3 good",
             "Output2": "m3 bad", "Better": "Output1", "Category": "reasoning"}]
    write(folder, "data/all_data.json", json.dumps(rows))
    return folder


def mmrlhf_folder(folder: Path, missing: bool = False) -> Path:
    rows = [{"id": "a", "prompt": "<image>\nqa", "image": write(folder, "mm_reward_bench/mcq/a.png", png()),
             "chosen": "a good 1", "rejected": "a bad 1", "chosen_reason": "", "rejected_reason": ""},
            {"id": "a", "prompt": "qa", "image": "mm_reward_bench/mcq/a.png", "chosen": "a good 2",
             "rejected": "a bad 2"},
            {"id": "b", "prompt": "qb", "image": write(folder, "mm_reward_bench/short/b.png", png()),
             "chosen": "b good", "rejected": "b bad"}]
    if missing:
        rows.append({"id": "c", "prompt": "qc", "image": "mm_reward_bench/long/c.png", "chosen": "x", "rejected": "y"})
    write(folder, "mm_reward_bench.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    return folder


def test_three_official_formats_scored_by_hand(tmp_path):
    spec = (f"vlrewardbench={vlrb_folder(tmp_path / 'vlrb')},mmrb={mmrb_folder(tmp_path / 'mmrb')},"
            f"mmrlhf={mmrlhf_folder(tmp_path / 'mmrlhf')}")
    benches = {b.name: b for b in load_benchmarks(cfg(spec, tmp_path))}
    scorer = FixedScorer({
        # VLRB: chosen = response[argmin(ranking)]; right on RLAIF-V-1 and mathverse_3, wrong on the other two
        "RLAIF-V-1 first": 1, "RLAIF-V-2 second": -1, "mathverse_3 first": 2, "wildvision-battle_4 second": -3,
        # MMRB: right on pairs_1 and math_2, wrong on code_3
        "m1 good": 1, "m2 good": 1, "m3 bad": 1,
        # MM-RLHF: id a right then wrong (Acc+ fails), id b right
        "a good 1": 1, "a bad 2": 1, "b good": 1})
    vlrb = metrics_of(benches["vlrewardbench"], score_pairs(scorer, benches["vlrewardbench"].records, 2))
    assert (vlrb["accuracy"], vlrb["accuracy/hallucination"], vlrb["accuracy/reasoning"], vlrb["accuracy/general"]) == (
        0.5, 0.5, 1.0, 0.0)
    assert vlrb["macro_accuracy"] == pytest.approx(0.5) and vlrb["items/hallucination"] == 2
    mmrb = metrics_of(benches["mmrb"], score_pairs(scorer, benches["mmrb"].records, 2))
    assert mmrb["accuracy"] == pytest.approx(2 / 3)
    assert (mmrb["accuracy/safety/bias"], mmrb["accuracy/reasoning/math"], mmrb["accuracy/reasoning/coding"]) == (1, 1, 0)
    mmrlhf = metrics_of(benches["mmrlhf"], score_pairs(scorer, benches["mmrlhf"].records, 2))
    assert (mmrlhf["accuracy"], mmrlhf["accuracy_plus"], mmrlhf["ids"]) == (pytest.approx(2 / 3), 0.5, 2)
    assert (mmrlhf["accuracy_plus/mcq"], mmrlhf["accuracy_plus/short"]) == (0.0, 1.0)


def test_an_mmrlhf_row_whose_image_is_missing_names_the_row(tmp_path):
    with pytest.raises(DataError, match=r"mm_reward_bench.jsonl row 4: image 'mm_reward_bench/long/c.png' not found"):
        load_benchmarks(cfg(f"mmrlhf={mmrlhf_folder(tmp_path / 'm', missing=True)}", tmp_path))


def test_text_sets_rewardbench_and_rmbench(tmp_path):
    rb = tmp_path / "rb.jsonl"
    rb.write_text("".join(json.dumps(r) + "\n" for r in [
        {"id": 1, "prompt": "p1", "chosen": "good", "rejected": "bad", "subset": "alpacaeval-easy"},
        {"id": 2, "prompt": "p2", "chosen": "good!", "rejected": "bad!", "subset": "refusals-dangerous"}]))
    rm = tmp_path / "rm.jsonl"
    rm.write_text(json.dumps({"id": "x", "prompt": "p", "domain": "chat", "chosen": ["c0", "c1", "c2"],
                              "rejected": ["r0", "r1", "r2"]}) + "\n")
    benches = {b.name: b for b in load_benchmarks(cfg("shapes", tmp_path, rewardbench=str(rb), rmbench=str(rm)))}
    scorer = FixedScorer({"good": 1, "bad!": 1, "c0": 1, "c1": 2, "c2": 3, "r0": 1.5, "r1": 1.5, "r2": 1.5})
    rb_m = metrics_of(benches["rewardbench"], score_pairs(scorer, benches["rewardbench"].records, 4))
    assert (rb_m["accuracy"], rb_m["accuracy/alpacaeval-easy"], rb_m["accuracy/refusals-dangerous"]) == (0.5, 1.0, 0.0)
    asked = scorer.asked
    rm_m = metrics_of(benches["rmbench"], score_pairs(scorer, benches["rmbench"].records, 4))
    assert scorer.asked - asked == 6  # 9 pairs, 6 distinct responses, each scored once
    # chosen c_i beats every rejected iff i >= 1: hard (i<j) 1/3, normal 2/3, easy (i>j) 3/3
    assert (rm_m["hard"], rm_m["normal"], rm_m["easy"]) == (pytest.approx(1 / 3), pytest.approx(2 / 3), 1.0)
    assert rm_m["accuracy"] == pytest.approx(2 / 3) and rm_m["accuracy/chat"] == pytest.approx(2 / 3)


def test_ensembles_and_router_combine_scores_by_hand(tmp_path):
    from visionrl.core.data.records import PairRecord
    from visionrl.rewardmodel.evaluate import score_shapes

    records = [PairRecord("i", ["img"], "q", "a", "b"), PairRecord("t", [], "q", "c", "d")]
    bench = Benchmark("shapes", records, score_shapes)
    scores = {"m1": {"shapes": ([1.0, 0.0], [0.0, 1.0]), "_validation": ([1.0, 1.0], [0.0, 0.0])},
              "m2": {"shapes": ([0.0, 0.0], [3.0, 1.0]), "_validation": ([0.0, 1.0], [1.0, 0.0])},
              "--text-model": {"shapes": ([5.0], [4.0])}}
    c = cfg("shapes", tmp_path, text_model="txt")
    metrics, rows = combine_all(c, [bench], [("--model", "m1"), ("--models", "m2")], scores)
    assert metrics["models"]["m1"]["shapes"]["accuracy"] == 1.0 and metrics["models"]["m2"]["shapes"]["accuracy"] == 0.0
    # mean: image (1+0)/2=0.5 vs (0+3)/2=1.5 wrong; text 0 vs 1 wrong
    assert metrics["ensembles"]["mean"]["shapes"]["accuracy"] == 0.0
    # accuracy weights: m1 2/2, m2 1/2 -> 2/3, 1/3: image 2/3 vs 1 -> wrong
    assert metrics["ensembles"]["weights"]["accuracy"] == pytest.approx({"m1": 2 / 3, "m2": 1 / 3})
    # margin weights: m1 mean margin 1, m2 0 -> 1, 0: image right, text wrong (0 vs 1)
    assert metrics["ensembles"]["weights"]["margin"] == {"m1": 1.0, "m2": 0.0}
    assert metrics["ensembles"]["margin"]["shapes"]["accuracy"] == 1.0
    # router: the text pair goes to the text model (5 > 4), the image pair to the mean ensemble (wrong)
    assert metrics["router"]["shapes"]["text_accuracy"] == 1.0 and metrics["router"]["shapes"]["accuracy"] == 0.0
    assert {r["model"] for r in rows} == {"m1", "m2", "ensemble:mean", "ensemble:accuracy", "ensemble:margin", "router"}


def test_eval_cli_end_to_end_with_two_models_and_a_router(demo_rm, tmp_path):
    from safetensors.torch import load_file, save_file
    from visionrl.rewardmodel.cli import eval_main

    other = tmp_path / "other"
    shutil.copytree(demo_rm, other)
    head = load_file(str(other / "reward_head.safetensors"))
    last = max(int(k.split(".")[0]) for k in head)  # the output layer: negating it negates every score
    save_file({k: -v if k.startswith(f"{last}.") else v for k, v in head.items()}, str(other / "reward_head.safetensors"))
    out = tmp_path / "eval"
    eval_main(["--model", str(demo_rm), "--models", str(other), "--text-model", str(demo_rm), "--limit", "12",
               "--validation-size", "8", "--output-dir", str(out)])
    metrics = json.loads((out / "metrics.json").read_text())
    a = metrics["models"][str(demo_rm)]["shapes"]
    b = metrics["models"][str(other)]["shapes"]
    assert {"accuracy", "text_accuracy", "ece"} <= set(a)
    assert a["accuracy"] + b["accuracy"] == pytest.approx(1.0)  # negated head: exactly the other pairs right
    assert set(metrics["ensembles"]) == {"mean", "accuracy", "margin", "weights"}
    assert metrics["router"]["shapes"]["text_accuracy"] == a["text_accuracy"]
    assert len((out / "predictions.jsonl").read_text().splitlines()) == 12 * 6  # 2 models, 3 ensembles, router


def test_eval_refuses_a_folder_that_is_not_a_reward_model(tiny_build, tmp_path):
    from visionrl.rewardmodel.cli import eval_main

    with pytest.raises(UserError, match=r"^--model .*: not a reward model \(no reward_head.json\)"):
        eval_main(["--model", str(tiny_build("qwen2_5_vl").path)])
    fake = tmp_path / "fake"  # passes the cheap checks: a head spec and weights file
    fake.mkdir()
    (fake / "reward_head.safetensors").write_bytes(b"")
    (fake / "reward_head.json").write_text(json.dumps({"kind": "linear", "layers": 1, "hidden": None, "d_model": 8,
                                                       "activation": "none", "pooling": "last_token"}))
    with pytest.raises(UserError, match=r"^--models .*missing: no such reward-model folder"):
        eval_main(["--model", str(fake), "--models", str(tmp_path / "missing")])
