"""`critic-train` / `critic-eval`: help, and bad input as one line naming the flag, file or row (exit 2)."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from visionrl.core.errors import UserError
from visionrl.critic.cli import eval_main, train_main


@pytest.mark.parametrize(("main", "words"), [
    (train_main, ["paper-7b", "mimo-7b", "llama-11b", "--format-weight", "--reward", "--gt-form",
                  "--dataset.layout", "--max-steps"]),
    (eval_main, ["--self-critic-n", "--strategy", "knockout", "--both-orders", "--policy-data", "--limit"]),
])
def test_help(main, words, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert all(w in out for w in words), [w for w in words if w not in out]


@pytest.mark.parametrize(("main", "args", "message"), [
    (eval_main, ["--self-critic-n", "1"], "--self-critic-n 1: must be >= 2"),
    (eval_main, ["--strategy", "bogus"], "knockout"),
    (eval_main, ["--reports", "critic", "bogus"], "--reports"),
    (train_main, ["--format-weight", "1.5"], "--format-weight 1.5: must be in [0, 1]"),
    (train_main, ["--gt-form", "letters"], "digit"),
    (train_main, ["--dataset.max-images", "0"], "--dataset.max-images"),
])
def test_bad_flags(main, args, message):
    with pytest.raises(UserError) as err:
        main(args)
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(("args", "message"), [
    (["--strategy", "bogus"], "--strategy"),
    (["--self-critic-n", "1"], "--self-critic-n"),
])
def test_console_script_exits_2_with_one_line(args, message, tmp_path):
    script = str(Path(sys.executable).parent / "critic-eval")
    res = subprocess.run([script, *args, "--output-dir", str(tmp_path / "x")], capture_output=True, text=True,
                         timeout=60)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and message in lines[0], res.stderr
    if "--strategy" in args:
        assert all(s in lines[0] for s in ("knockout", "sequential_champion", "round_robin")), lines[0]
    assert not (tmp_path / "x").exists()


def png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buf, format="PNG")
    return buf.getvalue()


def data_folder(root: Path, rows: list[dict], name: str = "data.jsonl") -> Path:
    (root / "images").mkdir(parents=True)
    (root / "images" / "a.png").write_bytes(png())
    (root / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


GOOD = {"prompt": "Which?", "chosen": "yes", "rejected": "no", "images": "images/a.png"}


@pytest.mark.parametrize(("bad", "message"), [
    ({"prompt": "Which?", "rejected": "no", "images": "images/a.png"}, "row 2: field 'chosen'"),
    ({**GOOD, "rejected": "yes"}, "row 2: 'chosen' equals 'rejected'"),
])
def test_train_refuses_bad_pairs_before_loading_a_model(tmp_path, bad, message):
    src = data_folder(tmp_path / "pairs", [GOOD, bad, GOOD])
    with pytest.raises(UserError, match=message):
        train_main(["--data", str(src), "--dataset.eval-size", "1", "--model", "nobody/never-loaded",
                    "--output-dir", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


def test_eval_refuses_bad_human_ranking(tmp_path):
    row = {"id": "RLAIF-V-1", "query": "q?", "response": ["a", "b"], "human_ranking": [1, 1],
           "image_path": "images/a.png"}
    src = data_folder(tmp_path / "vlrb", [row])
    with pytest.raises(UserError, match=r"row 1: field 'human_ranking' must be \[0, 1\] or \[1, 0\]"):
        eval_main(["--data", f"vlrewardbench={src}", "--reports", "critic", "--output-dir", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


def test_eval_refuses_a_model_without_processor(tmp_path, demo_model_dir):
    model = tmp_path / "no-processor"
    model.mkdir()
    for f in demo_model_dir.iterdir():
        if f.name in ("config.json", "generation_config.json", "model.safetensors"):
            shutil.copy(f, model / f.name)
    with pytest.raises(UserError, match=r"--model: .*no usable processor"):
        eval_main(["--model", str(model), "--limit", "2", "--output-dir", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()
