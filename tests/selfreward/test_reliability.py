"""`selfreward-train` on bad input, and with a Hub token in the environment.

- The bad-input matrix: every mistake a user can make with data, model, flags or checkpoints ends with exit
  code 2 and one stderr line that names the flag, file or row; no traceback, nothing written to the output
  directory, and no pickled or remote code run on the way. Runs through the console-script entry
  (`main()` reading `sys.argv`) in-process; a few cases also as a real subprocess.
- A short run with `--push-to-hub` against a mocked Hub uses `HF_TOKEN`, yet the token appears in no file of
  the output directory, no upload and no log line.
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

RANK_VARS = ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")
# Tiny settings that get a real run through its steps in a few seconds.
QUICK = (
    "--dataset.eval-size 2 --grpo.prompts-per-step 2 --grpo.sampling.max-new-tokens 16 "
    "--eval-max-new-tokens 8 --threads 1 --accelerator cpu"
).split()


@pytest.fixture(autouse=True)
def _single_process(monkeypatch: pytest.MonkeyPatch) -> None:
    # The suite may itself run under a launcher; a CLI that thinks it is rank 1 prints nothing.
    for var in RANK_VARS:
        monkeypatch.delenv(var, raising=False)


# ---- building bad inputs ------------------------------------------------------------------------------


def png(size: tuple[int, int] = (8, 8)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 10, 10)).save(buf, format="PNG")
    return buf.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A valid 8×8 PNG whose header claims `width`×`height` (CRC fixed): huge to a reader, tiny on disk."""
    data = bytearray(png())
    data[16:24] = struct.pack(">II", width, height)  # IHDR data starts after signature, length and type
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


class Opens:
    """Unpickling this opens (creates) `path`: a stand-in for any code a pickle can smuggle in."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


GOOD = {"id": "a", "problem": "What colour is the square?", "answer": "red", "images": ["ok.png"]}
Build = Callable[[Path, Path], tuple[list[str], tuple[str, ...]]]
"""(tmp dir, demo model dir) -> (argv, fragments the error line must contain)."""


def dataset(tmp: Path, row: dict | bytes, files: dict[str, bytes] | None = None) -> Path:
    """`tmp/data/`: data.jsonl with a good row 1 and `row` as row 2, plus ok.png and `files`."""
    folder = tmp / "data"
    folder.mkdir()
    (folder / "ok.png").write_bytes(png())
    for name, content in (files or {}).items():
        (folder / name).write_bytes(content)
    second = row if isinstance(row, bytes) else json.dumps(row).encode()
    (folder / "data.jsonl").write_bytes(json.dumps(GOOD).encode() + b"\n" + second + b"\n")
    return folder


def bad_row(*needles: str, files: dict[str, bytes] | None = None, drop: str | None = None, **fields) -> Build:
    """Row 2 is GOOD with `fields` changed (and `drop` removed); the message must name file and row."""
    row = {k: v for k, v in ({**GOOD, "id": "b"} | fields).items() if k != drop}
    return lambda tmp, _: (["--data", str(dataset(tmp, row, files))], ("data.jsonl row 2", *needles))


def symlinked_outside(tmp: Path, _: Path) -> tuple[list[str], tuple[str, ...]]:
    (tmp / "secret.png").write_bytes(png())
    folder = dataset(tmp, {**GOOD, "id": "b", "images": ["link.png"]})
    (folder / "link.png").symlink_to(tmp / "secret.png")
    return ["--data", str(folder)], ("data.jsonl row 2", "'link.png' points outside the dataset folder")


def escaping_path(tmp: Path, _: Path) -> tuple[list[str], tuple[str, ...]]:
    (tmp / "secret.png").write_bytes(png())
    folder = dataset(tmp, {**GOOD, "id": "b", "images": ["../secret.png"]})
    return ["--data", str(folder)], ("data.jsonl row 2", "points outside the dataset folder")


def model_copy(tmp: Path, demo: Path, name: str) -> Path:
    """The demo model's config and processor files (no weights) in `tmp/name`."""
    folder = tmp / name
    folder.mkdir()
    for f in demo.iterdir():
        if f.suffix in (".json", ".jinja") and f.name != "demo_report.json":
            (folder / f.name).write_bytes(f.read_bytes())
    return folder


def pickled_weights(tmp: Path, demo: Path) -> tuple[list[str], tuple[str, ...]]:
    import torch

    folder = model_copy(tmp, demo, "bin-model")
    torch.save({"weight": Opens(tmp / "pwned")}, folder / "pytorch_model.bin")
    return ["--model", str(folder)], ("--model", "cannot load safetensors weights")


def remote_code(tmp: Path, demo: Path) -> tuple[list[str], tuple[str, ...]]:
    folder = model_copy(tmp, demo, "custom-model")
    config = json.loads((folder / "config.json").read_text())
    config |= {"model_type": "custom_vlm", "auto_map": {"AutoConfig": "custom.CustomConfig"}}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "custom.py").write_text(f"open({str(tmp / 'pwned')!r}, 'w')\n")
    return ["--model", str(folder)], ("--model", "pass --trust-remote-code only if you trust")


def unsupported_family(tmp: Path, _: Path) -> tuple[list[str], tuple[str, ...]]:
    folder = tmp / "llama"
    folder.mkdir()
    config = {"model_type": "llama", "vocab_size": 16, "hidden_size": 8, "num_attention_heads": 2}
    (folder / "config.json").write_text(json.dumps(config))
    return ["--model", str(folder)], ("--model", "unsupported model family 'llama'", "qwen2_5_vl")


def invalid_config(tmp: Path, _: Path) -> tuple[list[str], tuple[str, ...]]:
    folder = tmp / "broken"
    folder.mkdir()
    config = {"model_type": "llama", "vocab_size": 16, "hidden_size": 8, "num_attention_heads": 3}
    (folder / "config.json").write_text(json.dumps(config))
    return ["--model", str(folder)], ("--model", "invalid config.json", "not a multiple")


def not_a_model(tmp: Path, _: Path) -> tuple[list[str], tuple[str, ...]]:
    (tmp / "notes").mkdir()
    (tmp / "notes" / "README.txt").write_text("not a model")
    return ["--model", str(tmp / "notes")], ("--model", "notes")


def checkpoint(content: Callable[[Path], bytes], *needles: str) -> Build:
    """`--resume last` with `content` as `<output-dir>/checkpoints/last.ckpt`."""

    def build(tmp: Path, _: Path) -> tuple[list[str], tuple[str, ...]]:
        (tmp / "out" / "checkpoints").mkdir(parents=True)
        (tmp / "out" / "checkpoints" / "last.ckpt").write_bytes(content(tmp))
        return ["--resume", "last"], ("--resume", "last.ckpt", *needles)

    return build


def torch_bytes(obj_for: Callable[[Path], object]) -> Callable[[Path], bytes]:
    def content(tmp: Path) -> bytes:
        import torch

        buf = io.BytesIO()
        torch.save(obj_for(tmp), buf)
        return buf.getvalue()

    return content


def flags(*argv: str, needle: str | None = None) -> Build:
    return lambda tmp, _: (list(argv), (needle or argv[0],))


def output_dir_is_a_file(tmp: Path, _: Path) -> tuple[list[str], tuple[str, ...]]:
    (tmp / "taken").write_text("a file")
    return ["--output-dir", str(tmp / "taken")], ("--output-dir", "is a file, not a folder")


def run_folder_as_model(tmp: Path, demo: Path) -> tuple[list[str], tuple[str, ...]]:
    run = tmp / "earlier"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"x")
    (run / "config.yaml").write_text("run: {}\n")
    return ["--model", str(run / "checkpoints" / "last.ckpt")], (
        "--model", f"this is a visionrl run folder; use {run / 'model'}")


def other_clis_checkpoint(tmp: Path, _: Path) -> tuple[list[str], tuple[str, ...]]:
    import torch

    (tmp / "out" / "checkpoints").mkdir(parents=True)
    torch.save({"visionrl": {"step": 2, "run": {"cli": "robustness-train", "method": "GRPO", "model": "demo"}}},
               tmp / "out" / "checkpoints" / "last.ckpt")
    return ["--resume", "last"], ("--resume", "written by robustness-train", "not by this selfreward-train run")


def overlong_question(tmp: Path, _: Path) -> tuple[list[str], tuple[str, ...]]:
    return ["--data", str(dataset(tmp, {**GOOD, "id": "long", "problem": "colour " * 200_000})),
            "--dataset.eval-size", "1"], ("--max-prompt-tokens 8192", "held-out record 'long'", "-token prompt")


CASES: dict[str, Build] = {
    # data
    "missing data path": lambda tmp, _: (["--data", str(tmp / "nope")], (str(tmp / "nope"), "no such file")),
    "unknown hub dataset offline": flags(
        "--data", "nobody-here/no-such-dataset-42", needle="nobody-here/no-such-dataset-42"
    ),
    "missing image file": bad_row("'nope.png' not found: there is no file", "/data/nope.png", images=["nope.png"]),
    "corrupt image": bad_row(
        "'bad.png' cannot be decoded",
        images=["bad.png"],
        files={"bad.png": b"\x89PNG\r\n\x1a\nnot really a png"},
    ),
    "truncated image": bad_row(
        "'cut.png' cannot be decoded", images=["cut.png"], files={"cut.png": png()[:-20]}
    ),
    "zero-size image": bad_row(
        "'empty.png' is an empty (0-byte) file", images=["empty.png"], files={"empty.png": b""}
    ),
    "image far above the pixel limit": bad_row(
        "12000x12000", "over the limit", images=["big.png"], files={"big.png": png_claiming(12_000, 12_000)}
    ),
    "decompression bomb": bad_row(
        "'bomb.png'",
        "decompression-bomb",
        images=["bomb.png"],
        files={"bomb.png": png_claiming(40_000, 40_000)},
    ),
    "image path escaping the root": escaping_path,
    "image symlink escaping the root": symlinked_outside,
    "absolute image path": bad_row("absolute", images=["/etc/hostname"]),
    "missing required field": bad_row("field 'answer' is missing", drop="answer"),
    "missing mapped column": bad_row("field 'question' (column 'problem') is missing", drop="problem"),
    "wrong field type": bad_row("field 'question' must be a string, got list", problem=["a", "b"]),
    "empty question": bad_row("field 'question' is empty", problem="   "),
    "empty answer": bad_row("field 'answer' is empty", answer=""),
    "non-UTF-8 text": lambda tmp, _: (
        ["--data", str(dataset(tmp, b'{"problem": "caf\xe9?", "answer": "x"}'))],
        ("data.jsonl row 2", "UTF-8"),
    ),
    "duplicate id": bad_row("duplicate id 'a'", "row 1", id="a"),
    # model
    "model path that does not exist": flags(
        "--model", "/nonexistent/model", needle="--model /nonexistent/model: no such model folder"
    ),
    "model path that is not a model": not_a_model,
    "unknown hub model offline": flags(
        "--model", "nobody-here/no-such-model-42", needle="nobody-here/no-such-model-42"
    ),
    "unsupported model family": unsupported_family,
    "invalid model config": invalid_config,
    "pickled weights only": pickled_weights,
    "remote code without --trust-remote-code": remote_code,
    # flags
    "zero max steps": flags("--max-steps", "0", needle="--max-steps 0: must be > 0"),
    "negative max steps": flags("--max-steps", "-3", needle="--max-steps -3: must be > 0"),
    "zero devices": flags("--devices", "0"),
    "zero save interval": flags("--save-every-n-steps", "0"),
    "zero threads": flags("--threads", "0"),
    "zero prompts per step": flags("--grpo.prompts-per-step", "0"),
    "negative eval size": flags("--dataset.eval-size", "-1"),
    "zero learning rate": flags("--grpo.optim.lr", "0"),
    "more devices than available": flags(
        "--devices", "4096", "--accelerator", "cpu", needle="--devices 4096 is more than the"
    ),
    "unknown preset": flags("--preset", "nope", needle="--preset 'nope' is unknown"),
    "negative grad-norm limit": flags("--grpo.optim.max-grad-norm", "-1", needle="--grpo.optim.max-grad-norm -1.0"),
    "zero PPO epochs": flags("--grpo.ppo-epochs", "0", needle="--grpo.ppo-epochs 0: must be > 0"),
    "zero mini-batches": flags("--grpo.mini-batches", "0", needle="--grpo.mini-batches 0: must be > 0"),
    "NaN lambdas": flags("--lambdas", "nan", "nan", needle="--lambdas nan nan"),
    "zero data limit": flags("--dataset.limit", "0", needle="--dataset.limit 0: must be > 0"),
    "negative data limit": flags("--dataset.limit", "-1", needle="--dataset.limit -1: must be > 0"),
    "push to an invalid repo id": flags("--push-to-hub", "not a repo!", needle="--push-to-hub 'not a repo!'"),
    "output dir that is a file": output_dir_is_a_file,
    "a run folder as the model": run_folder_as_model,
    "another CLI's checkpoint": other_clis_checkpoint,
    "overlong question": overlong_question,
    # checkpoints
    "resume without a checkpoint": flags("--resume", "last", needle="--resume last: there is no"),
    "resume from a file that is not a checkpoint": checkpoint(
        lambda tmp: b"hello", "not a readable checkpoint"
    ),
    "resume from a truncated checkpoint": checkpoint(
        lambda tmp: torch_bytes(lambda t: {"state_dict": {"w": __import__("torch").zeros(4096)}})(tmp)[:3000],
        "not a readable checkpoint",
    ),
    "resume from a checkpoint holding code": checkpoint(
        torch_bytes(lambda tmp: {"state_dict": {}, "payload": Opens(tmp / "pwned")}),
        "refused",
        "holds pickled code",
    ),
}
SUBPROCESS = {"unknown preset", "missing image file"}  # also run as a real process: the console script itself


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


@pytest.mark.parametrize(
    "name", [*CASES, *(pytest.param(f"{n} [subprocess]", marks=pytest.mark.slow) for n in sorted(SUBPROCESS))]
)
def test_bad_input_exits_2_with_one_line(
    name: str,
    tmp_path: Path,
    demo_model_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    as_process = name.endswith(" [subprocess]")
    argv, needles = CASES[name.removesuffix(" [subprocess]")](tmp_path, demo_model_dir)
    out = tmp_path / "out"
    argv = ["--output-dir", str(out), *argv]  # a case may name its own output dir (the last flag wins)
    before = listing(out)
    if as_process:
        exe = Path(sys.executable).parent / "selfreward-train"
        env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
        proc = subprocess.run(
            [str(exe), *argv], capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path
        )
        code, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
    else:
        from visionrl.selfreward.cli import train as main

        monkeypatch.setattr(sys, "argv", ["selfreward-train", *argv])
        monkeypatch.chdir(tmp_path)
        with pytest.raises(SystemExit) as exc:
            main()
        code, (stdout, stderr) = exc.value.code, capfd.readouterr()

    assert code == 2, f"exit code {code}; stderr:\n{stderr[-3000:]}"
    assert "Traceback" not in stdout + stderr, stderr[-3000:]
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), (
        f"expected one error line, got:\n{stderr[-3000:]}"
    )
    missing = [n for n in needles if n not in lines[0]]
    assert not missing, f"{missing} not in {lines[0]!r}"
    assert listing(out) == before, "the failed run wrote into its output directory"
    assert not (tmp_path / "pwned").exists(), "pickled or remote code ran"


# ---- the Hub token ------------------------------------------------------------------------------------


def test_hub_token_never_reaches_a_file_or_log(
    tmp_path: Path,
    fake_hub: Any,
    demo_model_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A 1-step run pushes through a mocked Hub with HF_TOKEN set: the requests carry the token (so it was
    in play), and no file under the output directory, no uploaded byte and no log line holds it."""
    import logging

    from visionrl.selfreward.cli import train as main

    token = "hf_SENTINELtoken8c1f0e5d2a"
    monkeypatch.setenv("HF_TOKEN", token)
    fake_hub.repo_id = "me/sr1"
    out = tmp_path / "run"
    monkeypatch.setattr(
        sys,
        "argv",
        ["selfreward-train", *QUICK, "--max-steps", "1", "--output-dir", str(out), "--push-to-hub", "me/sr1"],
    )
    with caplog.at_level(logging.DEBUG):
        main()

    requests = fake_hub.requests
    writes = [r for r in requests if r.url.path == "/api/repos/create" or "/commit/" in r.url.path]
    assert len(writes) == 2 and b"model.safetensors" in writes[1].content
    assert all(r.headers.get("authorization") == f"Bearer {token}" for r in writes), "HF_TOKEN was not used"
    assert not [r.url.path for r in requests if token.encode() in r.content], "the token was uploaded"
    files = [p for p in out.rglob("*") if p.is_file()]
    assert {"config.yaml", "last.ckpt", "model.safetensors", "README.md", "metrics.json"} <= {
        p.name for p in files
    }
    leaks = [str(p) for p in files if token.encode() in p.read_bytes()]
    assert not leaks, f"the token is written in {leaks}"
    logs = capfd.readouterr()
    assert token not in logs.out + logs.err + caplog.text
