"""The evaluation home: model flags checked before loading, atomic result files, one judge protocol."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from visionrl.core.chat import IMAGE, Prompt
from visionrl.core.errors import UserError
from visionrl.core.evaluation.judges import GenerativeJudge, check_judge_specs, resolve_judge
from visionrl.core.evaluation.models import check_model_source
from visionrl.core.evaluation.outputs import write_json, write_jsonl, write_results
from visionrl.core.hparams import SamplingParams


def _run_folder(root: Path) -> Path:
    run = root / "run"
    (run / "model").mkdir(parents=True)
    (run / "model" / "config.json").write_text("{}")
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "last.ckpt").write_bytes(b"x")
    (run / "config.yaml").write_text("run: {}\n")
    return run


def test_a_run_folder_or_its_checkpoint_points_to_its_model(tmp_path: Path) -> None:
    run = _run_folder(tmp_path)
    for given in (run, run / "checkpoints" / "last.ckpt", run / "checkpoints"):
        with pytest.raises(UserError, match=f"this is a visionrl run folder; use {run / 'model'}"):
            check_model_source(str(given), "--model")
    check_model_source(str(run / "model"))  # the export itself is a model folder


@pytest.mark.parametrize(("name", "message"), [
    ("./nope", "--judge ./nope: no such model folder"),
    ("not a repo!", "neither a local model folder nor a hub id"),
    ("a/b/c", "neither a local model folder nor a hub id"),
])
def test_model_sources_name_their_flag(name: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        check_model_source(name, "--judge")


def test_a_folder_without_config_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no config.json"):
        check_model_source(str(tmp_path), "--reward-model")
    check_model_source("Qwen/Qwen2.5-VL-7B-Instruct")
    check_model_source("demo")


def test_judge_specs_are_checked_before_anything_loads() -> None:
    check_judge_specs(["rule", "self", "owner/judge"], "--judges")
    with pytest.raises(UserError, match="--judges ./missing"):
        check_judge_specs(["rule", "./missing"], "--judges")


def test_results_are_written_whole_and_with_their_config(tmp_path: Path) -> None:
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Cfg:
        limit: int = 3
        hf_token: str = "secret"

    out = tmp_path / "eval"
    paths = write_results(out, Cfg(), {"eval/x/accuracy": 0.5}, [{"id": "a", "ok": True}, {"id": "b", "ok": False}])
    assert json.loads(paths["metrics"].read_text()) == {"eval/x/accuracy": 0.5}
    assert [json.loads(line)["id"] for line in paths["predictions"].read_text().splitlines()] == ["a", "b"]
    config = (out / "config.yaml").read_text()
    assert "limit: 3" in config and "secret" not in config
    assert sorted(p.name for p in out.iterdir()) == ["config.yaml", "metrics.json", "predictions.jsonl"]


def test_a_failed_write_keeps_the_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    path = tmp_path / "metrics.json"
    write_json(path, {"a": 1})

    def broken(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError):
        write_jsonl(path, [{"b": 2}])
    assert json.loads(path.read_text()) == {"a": 1} and sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def _scripted(monkeypatch: pytest.MonkeyPatch, calls: list[int]) -> None:
    def generate_texts(vlm, prompts, sampling, *, batch_size, engine):
        calls.append(len(prompts))
        return [f"verdict for {p.content[-1]}" for p in prompts]

    monkeypatch.setattr("visionrl.core.rollout.generate_texts", generate_texts)


def test_generative_judge_renders_parses_and_caches_text_prompts(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    _scripted(monkeypatch, calls)
    judge = GenerativeJudge(None, name="scripted", render=lambda it: Prompt([it]), parse=lambda text, it: (it, text),
                            sampling=SamplingParams(do_sample=False))
    first = judge(["a", "b", "a"])
    assert first == [("a", "verdict for a"), ("b", "verdict for b"), ("a", "verdict for a")]
    assert calls == [2] and judge.calls == 2  # the duplicate is generated once
    assert judge(["b", "a"]) == [first[1], first[0]] and calls == [2]  # and never again


def test_generative_judge_does_not_cache_image_prompts(monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import Image

    calls: list[int] = []
    _scripted(monkeypatch, calls)
    image = Image.new("RGB", (8, 8))
    judge = GenerativeJudge(None, name="scripted", render=lambda it: Prompt([IMAGE, it], [image]),
                            parse=lambda text, it: text, sampling=SamplingParams(do_sample=False))
    judge(["same", "same"])
    judge(["same"])
    assert calls == [2, 1]


def test_resolve_judge_rule_self_and_errors() -> None:
    rule = object()
    made = []

    def make(vlm, name):
        made.append((vlm, name))
        return name

    assert resolve_judge("rule", flag="--judge", evaluated="policy", make=make, rule=rule) is rule
    assert resolve_judge("self", flag="--judge", evaluated="policy", make=make) == "self"
    assert made == [("policy", "self")]
    with pytest.raises(UserError, match="--judge rule: this evaluation has no rule judge"):
        resolve_judge("rule", flag="--judge", evaluated="policy", make=make)
    with pytest.raises(UserError, match="--judges ./nope: no such model folder"):
        resolve_judge("./nope", flag="--judges", evaluated=None, make=make)
