"""Bad input to every CLI: one table over every numeric and enum flag of every CLI, derived from the configs
themselves (so a new flag gets its rows without anyone writing them). Each bad value must be refused while
parsing, before anything loads, with one line naming the flag; the console scripts exit 2 within 2 s and
create no output folder."""

from __future__ import annotations

import dataclasses
import importlib
import subprocess
import sys
import time
import types
import typing
from pathlib import Path

import pytest
from visionrl.core.checks import FINITE
from visionrl.core.cli import parse_config
from visionrl.core.errors import UserError

# (console script, config module, config class, presets)
CLIS = [
    ("selfreward-train", "visionrl.selfreward.config", "TrainConfig", "TRAIN_PRESETS"),
    ("selfreward-eval", "visionrl.selfreward.config", "EvalConfig", "EVAL_PRESETS"),
    ("robustness-train", "visionrl.robustness.config", "TrainConfig", "TRAIN_PRESETS"),
    ("robustness-eval", "visionrl.robustness.config", "EvalConfig", "EVAL_PRESETS"),
    ("critic-train", "visionrl.critic.config", "TrainConfig", "TRAIN_PRESETS"),
    ("critic-eval", "visionrl.critic.config", "EvalConfig", "EVAL_PRESETS"),
    ("rewardmodel-train", "visionrl.rewardmodel.config", "TrainConfig", "TRAIN_PRESETS"),
    ("rewardmodel-eval", "visionrl.rewardmodel.config", "EvalConfig", "EVAL_PRESETS"),
    ("judge-train", "visionrl.judge.config", "TrainConfig", "TRAIN_PRESETS"),
    ("judge-eval", "visionrl.judge.config", "EvalConfig", "EVAL_PRESETS"),
]
# Numeric fields whose whole finite range is valid (say why).
UNBOUNDED: set[str] = set()


def _config(cli: str) -> tuple[type, dict[str, typing.Any]]:
    _, module, cls, presets = next(c for c in CLIS if c[0] == cli)
    mod = importlib.import_module(module)
    return getattr(mod, cls), getattr(mod, presets)


def _leaves(obj: typing.Any, prefix: str = "--"):
    """(flag, field type hint, current value, Range) for every leaf field of a config tree."""
    from visionrl.core.checks import _flat

    hints = typing.get_type_hints(type(obj), include_extras=True)
    for f in dataclasses.fields(obj):
        value, hint = getattr(obj, f.name), hints[f.name]
        flag = f"{prefix}{f.name.replace('_', '-')}"
        if dataclasses.is_dataclass(value):
            yield from _leaves(value, "--" if _flat(hint) else f"{flag}.")
        else:
            yield flag, hint, value, getattr(obj, "RANGES", {}).get(f.name, FINITE)


def _base(hint: typing.Any) -> typing.Any:
    """int/float/Literal/... behind Optional, Annotated and tuple[...]."""
    origin = typing.get_origin(hint)
    if origin is typing.Annotated:
        return _base(typing.get_args(hint)[0])
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return _base(args[0]) if len(args) == 1 else hint
    if origin is tuple:
        return _base(typing.get_args(hint)[0])
    return hint


def _bad_values(hint: typing.Any, value: typing.Any, rng: typing.Any) -> list[str]:
    base = _base(hint)
    if typing.get_origin(base) is typing.Literal:
        return ["bogus"] if all(isinstance(a, str) for a in typing.get_args(base) if a is not None) else []
    if base not in (int, float):
        return []
    out = []
    if rng.lo is not None:
        out.append(str(int(rng.lo) - 1 if base is int else rng.lo - 0.5))
        if rng.lo_open:
            out.append(str(int(rng.lo) if base is int else float(rng.lo)))
    if rng.hi is not None:
        out.append(str(int(rng.hi) + 1 if base is int else rng.hi + 0.5))
    if base is float:
        out.append("nan")
    return out


def _rows():
    for cli, *_ in CLIS:
        cls, presets = _config(cli)
        for flag, hint, value, rng in _leaves(presets["demo"]):
            n = len(value) if isinstance(value, tuple) else 1
            for bad in _bad_values(hint, value, rng):
                yield pytest.param(cli, flag, [bad] * n, id=f"{cli} {flag} {bad}")


def test_every_numeric_flag_has_a_range() -> None:
    """A numeric flag left at the default (any finite number) is a flag nobody thought about."""
    unchecked = []
    for cli, *_ in CLIS:
        _, presets = _config(cli)
        for flag, hint, _, rng in _leaves(presets["demo"]):
            if _base(hint) in (int, float) and rng is FINITE and flag not in UNBOUNDED:
                unchecked.append(f"{cli} {flag}")
    assert not unchecked, f"numeric flags without a range: {unchecked}"


@pytest.mark.parametrize(("cli", "flag", "values"), list(_rows()))
def test_bad_value_is_refused_naming_the_flag(cli: str, flag: str, values: list[str]) -> None:
    cls, presets = _config(cli)
    with pytest.raises(UserError) as err:
        parse_config(cls, presets, args=[flag, *values], prog=cli, description="d")
    message = str(err.value)
    assert flag in message and "\n" not in message, message


ISSUE_FLAGS = [["--grpo.beta", "-1"], ["--grpo.clip-low", "1.5"], ["--grpo.clip-dual", "0.5"],
               ["--grpo.sampling.top-k", "-5"], ["--grpo.optim.betas", "1.5", "0.999"], ["--seed", "-1"],
               ["--dataset.shapes-train-size", "0"], ["--eval-max-new-tokens", "-1"], ["--grpo.ppo-epochs", "0"],
               ["--grpo.mini-batches", "0"], ["--grpo.optim.max-grad-norm", "-1"],
               ["--load.attn-implementation", "bogus"]]


@pytest.mark.slow
@pytest.mark.parametrize("args", ISSUE_FLAGS, ids=lambda a: " ".join(a))
def test_console_script_exits_2_fast_with_one_line_and_no_folder(args: list[str], tmp_path: Path) -> None:
    out = tmp_path / "run"
    script = str(Path(sys.executable).parent / "selfreward-train")
    start = time.perf_counter()
    res = subprocess.run([script, *args, "--output-dir", str(out)], capture_output=True, text=True, timeout=60)
    seconds = time.perf_counter() - start
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and args[0] in lines[0], res.stderr
    assert seconds < 2.0, f"took {seconds:.1f} s"
    assert not out.exists() and res.stdout == ""
