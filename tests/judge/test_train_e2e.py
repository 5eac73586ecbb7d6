"""`judge-train` end to end on the demo model, shrunk to seconds: every iteration's files, metrics.json and
TensorBoard, the final model; a re-run after an interruption in any stage redoes that stage only (and produces
what the uninterrupted run produced); an interrupted SFT continues from its checkpoint; a finished run re-run
does nothing; `--iterations` can grow; `--overwrite` starts over."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest

STAGE_FILES = {"eval": ["eval.json", "heldout.jsonl"], "pairs": ["pairs.jsonl"], "judgments": ["judgments.jsonl"],
               "kept": ["kept.jsonl", "retention.json"], "model": ["model", "metrics.json", "checkpoints", "tensorboard"]}
ORDER = ["eval", "pairs", "judgments", "kept", "model"]


def digest(path: Path) -> str:
    """Content hash of a file, or of a model folder's weights and config (a tokenizer saved after it padded a
    batch records that padding, which is no difference of the model)."""
    h = hashlib.sha256()
    files = [path] if path.is_file() else [path / "model.safetensors", path / "config.json"]
    for p in files:
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def stage_outputs(out: Path) -> dict[str, str]:
    """Every stage file of every iteration with its content hash (of the SFT's files only the exported model and
    its step count: a resumed fit logs no metrics for the steps it did not run)."""
    found = {}
    for d in sorted(out.glob("iter_*")):
        for stage in ORDER:
            for name in STAGE_FILES[stage][:1 if stage == "model" else 2]:
                if (d / name).exists():
                    found[f"{d.name}/{name}"] = digest(d / name)
        if (d / "metrics.json").exists():
            found[f"{d.name}/steps"] = str(json.loads((d / "metrics.json").read_text())["steps"])
    return found


def mtimes(out: Path) -> dict[str, int]:
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in out.glob("iter_*/*") if p.is_file()}


@pytest.fixture
def finished(judge_run: tuple[Path, dict]) -> tuple[Path, dict]:
    return judge_run


@pytest.mark.slow
def test_every_iteration_writes_its_files(finished) -> None:
    out, metrics = finished
    for k in range(2):
        d = out / f"iter_{k}"
        for name in ("config_hash", "eval.json", "pairs.jsonl", "judgments.jsonl", "kept.jsonl", "retention.json",
                     "metrics.json", "model/config.json", "model/model.safetensors", "model/README.md"):
            assert (d / name).exists(), f"iter_{k}/{name} missing"
    assert sorted(p.name for p in (out / "iter_2").iterdir()) == ["config_hash", "eval.json", "heldout.jsonl"]
    assert (out / "model").resolve() == (out / "iter_1" / "model").resolve()
    rows = metrics["iterations"]
    assert [r["iteration"] for r in rows] == [0, 1, 2]
    for r in rows[:2]:
        assert {"retention", "kept", "accuracy", "both_orders_accuracy", "position1_rate", "sft_steps"} <= set(r)
        assert 0 <= r["retention"] <= 1 and r["kept"] == pytest.approx(r["retention"] * 2 * r["pairs"])
    assert {"accuracy", "both_orders_accuracy", "position1_rate"} <= set(rows[2]) and "retention" not in rows[2]
    assert metrics["before"]["accuracy"] == rows[0]["accuracy"] and metrics["after"]["accuracy"] == rows[2]["accuracy"]
    pairs = [json.loads(line) for line in (out / "iter_0" / "pairs.jsonl").read_text().splitlines()]
    judged = [json.loads(line) for line in (out / "iter_0" / "judgments.jsonl").read_text().splitlines()]
    assert len(pairs) == 24 and len(judged) == sum("dropped" not in p for p in pairs)
    # the demo preset pairs questions whose samples all agree with another answer (--lone-answer pool)
    pooled = [p for p in pairs if p.get("alternative") == "pool"]
    assert pooled and all(p["chosen"] != p["rejected"] and len(p["counts"]) == 1 for p in pooled)
    assert all(len(j["chosen_first"]) == len(j["chosen_second"]) == 2 for j in judged)  # --judge-samples 2


@pytest.mark.slow
def test_tensorboard_has_one_point_per_iteration(finished) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out, metrics = finished
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"eval/judge/accuracy", "eval/judge/both_orders_accuracy", "eval/judge/position1_rate",
            "eval/judge/retention", "eval/judge/kept"} <= tags
    accuracy = events.Scalars("eval/judge/accuracy")
    assert [e.step for e in accuracy] == [0, 1, 2]
    assert [e.value for e in accuracy] == pytest.approx([r["accuracy"] for r in metrics["iterations"]])


@pytest.mark.slow
@pytest.mark.parametrize(("k", "stage"), [(0, "model"), (1, "eval"), (1, "pairs"), (1, "judgments"), (1, "kept"),
                                          (1, "model")])
def test_an_interrupted_stage_is_redone_and_nothing_else(finished, tmp_path: Path, tiny_train, k: int, stage: str) -> None:
    out, _ = finished
    run = tmp_path / "run"
    shutil.copytree(out, run, symlinks=True)
    want = stage_outputs(out)
    # What a kill during iteration k's `stage` leaves: that stage's outputs and everything after are missing
    # (an interrupted SFT leaves its checkpoints, which the re-run continues from).
    for j in range(k, 3):
        for s in ORDER[ORDER.index(stage) if j == k else 0:]:
            for name in STAGE_FILES[s]:
                if s == "model" and name == "checkpoints" and j == k:
                    continue
                target = run / f"iter_{j}" / name
                shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
    kept_before = mtimes(run)
    tiny_train(run)
    after = mtimes(run)
    assert {p: t for p, t in after.items() if p in kept_before} == kept_before, "a finished stage was redone"
    assert stage_outputs(run) == want, "the redone stages differ from the uninterrupted run's"


@pytest.mark.slow
def test_an_interrupted_sft_continues_from_its_checkpoint(finished, tmp_path: Path, tiny_train) -> None:
    out, _ = finished
    run = tmp_path / "run"
    shutil.copytree(out, run, symlinks=True)
    d = run / "iter_0"
    steps = json.loads((d / "metrics.json").read_text())["steps"]
    assert steps == 4, "the tiny run should train 4 steps (a checkpoint every 2)"
    mid = next((d / "checkpoints").glob("*step=2*.ckpt"))
    shutil.copy(mid, d / "checkpoints" / "last.ckpt")  # killed after step 2
    for name in ("model", "metrics.json"):
        shutil.rmtree(d / name) if (d / name).is_dir() else (d / name).unlink()
    for later in ("iter_1", "iter_2"):
        shutil.rmtree(run / later)
    tiny_train(run)
    assert json.loads((d / "metrics.json").read_text())["steps"] == 4
    assert stage_outputs(run) == stage_outputs(out)


@pytest.mark.slow
def test_a_finished_run_rerun_does_nothing_and_iterations_can_grow(finished, tmp_path: Path, tiny_train) -> None:
    out, metrics = finished
    run = tmp_path / "run"
    shutil.copytree(out, run, symlinks=True)
    before = mtimes(run)
    assert tiny_train(run)["iterations"] == metrics["iterations"]
    assert mtimes(run) == before
    grown = tiny_train(run, "--iterations", "3")
    assert [r["iteration"] for r in grown["iterations"]] == [0, 1, 2, 3]
    assert {p: t for p, t in mtimes(run).items() if p in before and not p.startswith("iter_2/")} == \
        {p: t for p, t in before.items() if not p.startswith("iter_2/")}
    assert (run / "model").resolve() == (run / "iter_2" / "model").resolve()


@pytest.mark.slow
def test_overwrite_starts_over(finished, tmp_path: Path, tiny_train) -> None:
    out, _ = finished
    run = tmp_path / "run"
    shutil.copytree(out, run, symlinks=True)
    (run / "notes.txt").write_text("mine")
    stale = run / "iter_1" / "eval.json"
    old = stale.stat().st_mtime_ns
    tiny_train(run, "--overwrite", "--iterations", "1")
    assert stale.stat().st_mtime_ns != old if stale.exists() else True
    assert not (run / "iter_2").exists() and (run / "notes.txt").read_text() == "mine"
    assert (run / "iter_1" / "eval.json").exists()


@pytest.mark.slow
def test_killed_mid_stage_and_rerun(finished, tmp_path: Path, tiny_train) -> None:
    """SIGKILL the console script once iteration 0's SFT has started, re-run: the files the killed run had finished
    are left alone and the result equals the uninterrupted run's."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out, metrics = finished
    run = tmp_path / "run"
    script = str(Path(sys.executable).parent / "judge-train")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([script, *tiny_train.args, "--output-dir", str(run)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while not (run / "iter_0" / "checkpoints").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    done = mtimes(run)
    assert "iter_0/kept.jsonl" in done
    assert tiny_train(run)["iterations"] == metrics["iterations"]
    assert {p: t for p, t in mtimes(run).items() if p in done} == done
    assert stage_outputs(run) == stage_outputs(out)


@pytest.mark.slow
def test_push_to_hub_uploads_the_final_judge(finished, tmp_path: Path, tiny_train, fake_hub, monkeypatch) -> None:
    out, _ = finished
    run = tmp_path / "run"
    shutil.copytree(out, run, symlinks=True)
    monkeypatch.setenv("HF_TOKEN", "hf_judge_test_token")
    before = mtimes(run)
    tiny_train(run, "--push-to-hub", "me/tiny")
    assert mtimes(run) == before  # a finished run: nothing retrained, only the upload
    (commit,) = fake_hub.find("/commit/main")
    uploaded = {json.loads(line)["value"].get("path") for line in commit.content.decode().splitlines()}
    assert {"README.md", "config.json", "model.safetensors"} <= uploaded
    assert len(fake_hub.find("/api/repos/create")) == 1


@pytest.mark.slow
def test_the_console_says_what_ran_and_nothing_else(tmp_path: Path, tiny_train, demo_model_dir: Path,
                                                    library_noise) -> None:
    import os
    import subprocess
    import sys

    out = tmp_path / "run"
    script = str(Path(sys.executable).parent / "judge-train")
    args = [a for a in tiny_train.args if a != "--quiet"]
    res = subprocess.run([script, *args, "--output-dir", str(out)], capture_output=True, text=True,
                         timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    text = res.stdout + res.stderr
    assert res.returncode == 0, text[-3000:]
    assert not [n for n in library_noise if n in text], text[-3000:]
    assert text.startswith("judge-train: self-improving judge, 2 iterations · model demo")
    tail = text[text.rindex("done in "):]
    assert "iteration 0" in tail and re.search(r"held-out     accuracy \d\.\d{3} → \d\.\d{3}", tail), tail
    assert str(out / "metrics.json") in tail
