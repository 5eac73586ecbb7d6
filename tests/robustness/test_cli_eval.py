"""robustness-eval end to end on the embedded demo model (CPU): files written, numbers that can be recomputed
from what was saved, a checkpoint exported by selfreward-train, and user errors."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from visionrl.robustness.perturb import VARIANTS

pytestmark = pytest.mark.slow
LIMIT = 6


@pytest.fixture(scope="module")
def bare_eval(tmp_path_factory, demo_model_dir) -> Path:
    """`robustness-eval --limit 6 --output-dir <tmp>`: every default (demo model, shapes, all variants)."""
    from visionrl.robustness.cli import eval_main as _main

    out = tmp_path_factory.mktemp("rob-eval") / "run"
    _main(["--limit", str(LIMIT), "--output-dir", str(out)])
    return out


def _predictions(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]


def test_every_file_is_written(bare_eval):
    for name in (
        "config.yaml",
        "metrics.json",
        "predictions.jsonl",
        "report.md",
        "accuracy_by_variant.png",
        "p_correct_entropy.png",
        "quadrants.png",
        "auroc.png",
    ):
        assert (bare_eval / name).exists(), name
    for png in bare_eval.glob("*.png"):
        assert 5_000 < png.stat().st_size < 150_000, png  # a real figure, and small
    assert len(list((bare_eval / "images").glob("*.png"))) == LIMIT
    metrics = json.loads((bare_eval / "metrics.json").read_text())
    for v in VARIANTS:
        for m in ("accuracy", "format", "p_correct", "entropy", "entropy_norm", "consistency", "n"):
            assert f"eval/shapes/{v}/{m}" in metrics, (v, m)
    assert (
        "eval/shapes/wrong_think/auroc_p_base" in metrics
        and "eval/shapes/wrong_think/accuracy_drop" in metrics
    )
    report = (bare_eval / "report.md").read_text()
    assert all(f"| {v} |" in report for v in VARIANTS) and "![quadrants.png](quadrants.png)" in report
    base, wrong = metrics["eval/shapes/base/accuracy"], metrics["eval/shapes/wrong_think/accuracy"]
    assert f"- shapes: base accuracy {base:.3f} · Wrong-Think accuracy {wrong:.3f} (drop {base - wrong:+.3f})" in report


def test_prediction_rows_are_complete_and_coherent(bare_eval):
    rows = _predictions(bare_eval)
    assert len(rows) == LIMIT * len(VARIANTS)
    assert {(r["id"], r["variant"]) for r in rows} == {
        (f"shapes-mcq-{i}", v) for i in range(LIMIT) for v in VARIANTS
    }
    for r in rows:
        probs = r["letter_probs"]
        assert math.isclose(sum(probs.values()), 1.0, abs_tol=1e-5)
        assert math.isclose(r["p_correct"], probs[r["answer"]], abs_tol=1e-7)
        assert math.isclose(
            r["entropy"], -sum(p * math.log(p) for p in probs.values() if p > 0), abs_tol=1e-4
        )
        assert r["correct"] == (r["parsed"] == r["answer"])
        assert r["consistent"] == (
            r["reasoning_choice"] not in ("NONE", None) and r["reasoning_choice"] == r["parsed"]
        )
        assert r["scoring_prompt"].endswith("<answer>") and r["prefix"] in r["scoring_prompt"]
        assert (bare_eval / r["images"][0]).exists()
        if r["variant"].startswith("wrong"):
            assert r["asserted_letter"] == r["wrong_letter"] != r["answer"]
        if r["variant"] == "stop_think":
            assert r["prefix"] == "<think>Okay let's see. This should be the final answer.</think>"
    assert sum("E" in r["letter_probs"] for r in rows) == 2 * LIMIT  # the two abstain variants


def test_letter_probabilities_recomputed_from_saved_files(bare_eval, demo_model_dir):
    """Saved model + saved prompt text + saved image -> a plain HF forward -> the same letter probabilities."""
    import torch
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(demo_model_dir).eval()
    proc = AutoProcessor.from_pretrained(demo_model_dir)
    tok = proc.tokenizer
    rows = [r for r in _predictions(bare_eval) if r["variant"] in ("base", "wrong_think_but", "abstain")][:6]
    for r in rows:
        image = Image.open(bare_eval / r["images"][0]).convert("RGB")
        enc = proc(text=[r["scoring_prompt"]], images=[image], return_tensors="pt")
        with torch.no_grad():
            logits = model(**enc).logits[0, -1].double()
        mass = {}
        for letter in r["letter_probs"]:  # both spellings, "A" and " A", as single tokens
            ids = {
                tok(f, add_special_tokens=False)["input_ids"][0]
                for f in (letter, " " + letter)
                if len(tok(f, add_special_tokens=False)["input_ids"]) == 1
            }
            mass[letter] = sum(math.exp(float(logits[i])) for i in ids)
        total = sum(mass.values())
        for letter, p in r["letter_probs"].items():
            assert mass[letter] / total == pytest.approx(p, abs=2e-4), (r["id"], r["variant"], letter)


@pytest.fixture(scope="module")
def selfreward_export(tmp_path_factory, demo_model_dir) -> Path:
    """A checkpoint exported by a 1-step selfreward-train run."""
    from visionrl.selfreward.cli import train_main as _main

    out = tmp_path_factory.mktemp("sr1") / "run"
    _main(
        [
            "--max-steps",
            "1",
            "--dataset.eval-size",
            "2",
            "--grpo.prompts-per-step",
            "2",
            "--grpo.sampling.max-new-tokens",
            "16",
            "--eval-max-new-tokens",
            "16",
            "--output-dir",
            str(out),
        ]
    )
    return out / "model"


def test_eval_of_a_selfreward_checkpoint_with_two_judges(selfreward_export, tmp_path):
    from visionrl.robustness.cli import eval_main as _main

    out = tmp_path / "eval"
    _main(
        [
            "--model",
            str(selfreward_export),
            "--limit",
            "3",
            "--variants",
            "base",
            "wrong_think",
            "--judges",
            "rule",
            "self",
            "--judge-max-new-tokens",
            "16",
            "--output-dir",
            str(out),
        ]
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert {
        "eval/shapes/base/accuracy",
        "eval/shapes/wrong_think/auroc_p_base",
        "eval/shapes/judges/strict_agreement",
        "eval/shapes/judges/fleiss_kappa",
    } <= set(metrics)
    rows = _predictions(out)
    assert len(rows) == 6 and all(set(r["judges"]) == {"rule", "self"} for r in rows)


def _cli(args, cwd, timeout=300):
    exe = Path(sys.executable).parent / "robustness-eval"
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=timeout, cwd=cwd)


def _run_in_process(args, capsys):
    from visionrl.core.cli import run_cli
    from visionrl.robustness.cli import eval_main as _main

    with pytest.raises(SystemExit) as exc:
        run_cli(lambda: _main(args))
    return exc.value.code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--limit", "0"], "--limit"),
        (["--variants", "bogus"], "--variants"),
        (["--data", "/nonexistent/data"], "/nonexistent/data"),
        (["--data", "nope=/tmp"], "unknown benchmark"),
        (["--model", "/nonexistent/model"], "--model"),
        (["--preset", "nope"], "--preset"),
    ],
)
def test_user_errors_exit_2_with_one_line(tmp_path, capsys, args, needle):
    code, err = _run_in_process([*args, "--output-dir", str(tmp_path / "o")], capsys)
    errors = [line for line in err.splitlines() if line.startswith("error")]
    assert code == 2 and len(errors) == 1 and needle in errors[0], err
    assert not (tmp_path / "o").exists()  # nothing written on a user error


def test_malformed_rows_exit_2_naming_the_row(tmp_path):
    folder = tmp_path / "cv"
    folder.mkdir()
    (folder / "data.jsonl").write_text(
        '{"idx": 1, "question": "Q?", "choices": ["a", "b"], "answer": "(C)"}\n'
    )
    res = _cli(["--data", f"cvbench={folder}", "--output-dir", str(tmp_path / "o")], tmp_path)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    errors = [line for line in res.stderr.splitlines() if line.startswith("error")]
    assert len(errors) == 1 and "data.jsonl row 1" in errors[0] and "'(C)'" in errors[0], res.stderr


def test_judges_are_named_and_checked_before_any_model_loads(tmp_path, monkeypatch):
    from visionrl.core.errors import UserError
    from visionrl.robustness.cli import eval_main, train_main

    def no_load(*args, **kwargs):
        raise AssertionError("a model was loaded before the judges were checked")

    monkeypatch.setattr("visionrl.core.evaluation.models.eval_model", no_load)
    monkeypatch.setattr("visionrl.core.runner.load_policy", no_load)
    with pytest.raises(UserError, match="--judges ./nope: no such model folder"):
        eval_main(["--judges", "rule", "./nope", "--output-dir", str(tmp_path / "e")])
    with pytest.raises(UserError, match="--judge ./nope: no such model folder"):
        train_main(["--judge", "./nope", "--output-dir", str(tmp_path / "t")])
    assert not (tmp_path / "e").exists() and not (tmp_path / "t").exists()


def test_the_demo_model_shows_the_papers_effect(tmp_path, demo_model_dir):
    """Bare robustness-eval's headline on the demo model: base accuracy >= 0.5 and a Wrong-Think drop >= 0.15,
    and the drop is the model following the injected think, not a broken format: a pre-filled correct think
    keeps the answers right and a wrong one is followed."""
    from visionrl.robustness.cli import eval_main as _main

    out = tmp_path / "run"
    _main(["--limit", "100", "--variants", "base", "correct_think", "wrong_think", "--no-plots",
           "--output-dir", str(out), "--quiet"])
    m = json.loads((out / "metrics.json").read_text())
    base, right, wrong = (m[f"eval/shapes/{v}/accuracy"] for v in ("base", "correct_think", "wrong_think"))
    assert base >= 0.5 and base - wrong >= 0.15, m
    assert right >= base - 0.05 and m["eval/shapes/correct_think/format"] > 0.9, m
    assert m["eval/shapes/wrong_think/follows_injected"] > 0.5, m
