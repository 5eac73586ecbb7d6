"""What every visionrl CLI shares: preset parsing, user-error handling, the run directory and the Trainer.

A train entry reads top to bottom in this order (Lightning re-runs it once per DDP rank, so every step
before `fit` must be deterministic and free of side effects on ranks other than 0):

    def main() -> None:
        cfg = parse_config(TrainConfig, PRESETS, prog="x-train", description=__doc__)  # + range checks
        validate_run_args(cfg.run)                   # machine checks; UserError naming the flag -> exit 2
        prepare_output_dir(cfg.run, cfg)             # rank 0: mkdir + config.yaml
        lightning.seed_everything(cfg.run.seed, workers=True)  # here, once, before the model is built
        module, data = ...                           # model init is now reproducible on every rank
        trainer = build_trainer(cfg.run)
        trainer.fit(module, datamodule=data, ckpt_path=resolve_resume(cfg.run))  # from .checkpoints

    def cli() -> None:                               # the console script
        run_cli(main)

Checkpoint writing, reading and pre-emption live in `visionrl.core.checkpoints`.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import os
import re
import signal
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from visionrl.core.errors import UserError

if TYPE_CHECKING:
    import lightning
    from visionrl.core.config import EvalArgs, RunArgs

T = TypeVar("T")

# Environment variables through which torchrun, SLURM, LSF and Lightning's own launcher give ranks.
_RANK_VARS = ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")
# Config fields never written to config.yaml. A plain substring test for "token" would also drop
# hyperparameters such as `max_new_tokens`, so match whole name segments at the end instead.
_SECRET_FIELD = re.compile(r"(^|_)(token|secret|password|api_key)$", re.IGNORECASE)


# ----------------------------------------------------------------------------------------------------
# Parsing


def parse_config(
    config_cls: type[T],
    presets: Mapping[str, T],
    *,
    default_preset: str = "demo",
    args: list[str] | None = None,
    prog: str,
    description: str,
) -> T:
    """Parse `--preset NAME` (default `default_preset`) and then every other flag over that preset's values.

    Raises `UserError` for an unknown preset or a value outside its range (`visionrl.core.checks`, run
    here so every CLI checks every flag before anything loads); tyro itself exits with code 2 on a flag it
    cannot parse.
    """
    assert default_preset in presets, f"default preset {default_preset!r} is not in the presets"
    argv = list(sys.argv[1:] if args is None else args)
    name, rest = _pop_preset(argv, default_preset, presets)
    if name not in presets:
        raise UserError(f"--preset {name!r} is unknown; available presets: {', '.join(presets)}.")

    text = (
        f"{description.strip()}\n\n"
        f"Presets (--preset NAME; every other flag overrides the preset's values): "
        f"{', '.join(p + (' (default)' if p == default_preset else '') for p in presets)}.\n\n"
        f"The defaults shown below are those of preset '{name}'."
    )
    from visionrl.core.checks import check_config

    cfg = _tyro_cli(config_cls, presets[name], rest, prog, text)
    check_config(cfg)
    return cfg


def _tyro_cli(config_cls: type[T], default: T, args: list[str], prog: str, description: str) -> T:
    """`tyro.cli`, with its boxed multi-line parse errors turned into one-line `UserError`s (help and
    everything else it prints go through unchanged)."""
    import contextlib
    import io

    import tyro

    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            return tyro.cli(config_cls, default=default, args=args, prog=prog, description=description)
    except SystemExit as exc:
        if exc.code in (0, None):
            sys.stderr.write(err.getvalue())
            raise
        raise UserError(_one_line(err.getvalue()) or f"cannot parse the arguments {' '.join(args)}") from None


def _one_line(boxed: str) -> str:
    """The message of tyro's error box, on one line. The box comes drawn (a title in the top border) or in
    ASCII (a title line, then rules); either way its rules cut it into sections and the message is the
    first section that is not the title."""
    sections: list[list[str]] = [[]]
    drawn = boxed.lstrip().startswith("╭")
    for raw in boxed.splitlines():
        if raw.lstrip().startswith(("╭", "╰")):
            continue
        line = raw.strip().strip("│").strip()
        if line and set(line) <= {"─", "-"}:
            sections.append([])
        elif line:
            sections[-1].append(line)
    sections = [sec for sec in sections if sec]
    if not drawn and len(sections) >= 3 and len(sections[0]) == 1:
        sections = sections[1:]  # the ASCII title
    return re.sub(r"\s+", " ", " ".join(sections[0])).strip() if sections else ""


def _pop_preset(argv: list[str], default: str, presets: Mapping[str, Any]) -> tuple[str, list[str]]:
    """Remove every `--preset NAME` / `--preset=NAME` from argv; the last one wins, as in argparse."""
    name, rest, i = default, [], 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--preset":
            if i + 1 >= len(argv) or argv[i + 1].startswith("-"):
                raise UserError(f"--preset needs a NAME; available presets: {', '.join(presets)}.")
            name, i = argv[i + 1], i + 2
            continue
        if arg.startswith("--preset="):
            name = arg.split("=", 1)[1]
        else:
            rest.append(arg)
        i += 1
    return name, rest


# ----------------------------------------------------------------------------------------------------
# Running an entry point


def command(config_cls: type[T], presets: Mapping[str, T], *, prog: str, description: str,
            target: str) -> tuple[Callable[[list[str] | None], Any], Callable[[], None]]:
    """A CLI verb: `(main, console_script)`. `main(args)` parses (torch-free, every range checked) and calls
    `target` ("package.module:function", imported only then) with the config, raising `UserError`; the
    console script runs `main` under `run_cli` (one line and exit code 2 for user errors)."""

    def main(args: list[str] | None = None) -> Any:
        import importlib

        cfg = parse_config(config_cls, presets, args=args, prog=prog, description=description)
        module, _, function = target.partition(":")
        return getattr(importlib.import_module(module), function)(cfg)

    def console_script() -> None:
        def run() -> None:
            main()  # its result went to the output folder; the exit code only says whether it ran

        run_cli(run)

    return main, console_script


def run_cli(main: Callable[[], int | None]) -> None:
    """Run `main`; user errors become `error: <message>` on stderr and exit code 2, Ctrl-C exit code 130.

    Internal errors propagate with their traceback. A preemption stop (see `PreemptionCallback`) exits 143;
    a non-finite reward or loss (`NumericsError`, under `nan_policy="stop"`) prints one line naming the step
    and exits 1.
    """
    try:
        code = main()
    except UserError as exc:  # DataError (a bad dataset row) is one too
        _exit_user_error(exc)
    except KeyboardInterrupt:
        sys.exit(130)
    except SystemExit as exc:
        if not _is_sigterm_exit(exc):
            raise
        _print_rank_zero("interrupted by SIGTERM; continue from the newest checkpoint with --resume last")
        sys.exit(128 + signal.SIGTERM)
    except Exception as exc:
        if isinstance(exc, _numerics_error_types()):
            # Not the user's fault, not a bug in the code either: say which step, keep the log readable.
            _print_rank_zero(f"error: {exc}; checkpoints/last.ckpt holds the last good state")
            sys.exit(1)
        raise  # a bug: keep the traceback
    if code:
        sys.exit(code)


def _numerics_error_types() -> tuple[type[Exception], ...]:
    # Only a training module can have raised it, so it is looked up without importing torch.
    module = sys.modules.get("visionrl.core.lit.common")
    return (module.NumericsError,) if module is not None else ()


def _is_sigterm_exit(exc: SystemExit) -> bool:
    # Only Lightning can have raised its SIGTERMException, so look it up without importing Lightning.
    module = sys.modules.get("lightning.pytorch.utilities.exceptions")
    return module is not None and isinstance(exc, module.SIGTERMException)


def _exit_user_error(exc: Exception) -> None:
    _print_rank_zero(f"error: {exc}")
    sys.exit(2)


def _print_rank_zero(message: str) -> None:
    # Every DDP rank runs the same entry; one copy of the message is enough.
    if is_global_rank_zero():
        print(message, file=sys.stderr, flush=True)


def is_global_rank_zero() -> bool:
    """False when any launcher variable names a rank other than 0 (the process need not know which)."""
    for var in _RANK_VARS:
        value = os.environ.get(var, "0").strip() or "0"
        if value.isdigit() and int(value) != 0:
            return False
    return True


# ----------------------------------------------------------------------------------------------------
# Output directory


def prepare_output_dir(run_or_path: RunArgs | EvalArgs | Path | str, config: Any) -> Path:
    """Create the output dir and write `config.yaml` (the resolved config) on global rank 0; return the dir.

    Fields named like secrets (`token`, `hf_token`, `api_key`, ...) are never written.
    """
    out = Path(getattr(run_or_path, "output_dir", run_or_path))
    if is_global_rank_zero():
        import yaml

        out.mkdir(parents=True, exist_ok=True)
        record = _yaml_safe(dataclasses.asdict(config) if dataclasses.is_dataclass(config) else config)
        (out / "config.yaml").write_text(yaml.safe_dump(record, sort_keys=False, allow_unicode=True))
    return out


def _yaml_safe(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _yaml_safe(v) for k, v in value.items() if not _SECRET_FIELD.search(str(k))}
    if isinstance(value, list | tuple | set | frozenset):
        return [_yaml_safe(v) for v in value]
    if isinstance(value, enum.Enum):
        return _yaml_safe(value.value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)  # Path, dtype, callables: a readable record, not a round-trippable one


# ----------------------------------------------------------------------------------------------------
# Trainer


def build_trainer(
    run: RunArgs,
    *,
    callbacks: Iterable[Any] = (),
    max_steps: int | None = None,
    extra_loggers: Iterable[Any] = (),
    enable_progress_bar: bool = True,
    fsdp_wrap_classes: set[type] | None = None,
    find_unused_parameters: bool = False,
    keep_checkpoints: int = 2,
    **trainer_kwargs: Any,
) -> lightning.Trainer:
    """A Lightning Trainer that honours the output-dir contract and `run`'s devices/strategy/precision.

    TensorBoard events go to `<output_dir>/tensorboard/`, checkpoints to `<output_dir>/checkpoints/`
    (the newest `keep_checkpoints` step checkpoints plus `last.ckpt`; -1 keeps all). Seeding is the entry's
    job (module docstring), because the model is built before the Trainer.

    Args:
        fsdp_wrap_classes: the model's repeated blocks (see `decoder_layer_classes`); with `--strategy fsdp`
            each becomes one FSDP unit and is activation-checkpointed.
        find_unused_parameters: DDP must be told when some trainable parameters get no gradient in a step.
        trainer_kwargs: passed to `lightning.Trainer`, overriding the values set here.
    """
    import lightning
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import TensorBoardLogger
    from visionrl.core.checkpoints import AtomicCheckpointIO, PreemptionCallback

    ckpt_dir = run.output_dir / "checkpoints"
    checkpoint = ModelCheckpoint(
        dirpath=ckpt_dir,
        every_n_train_steps=run.save_every_n_steps,
        save_last=True,
        # monitor="step"/mode="max" is Lightning's way to keep the newest k step checkpoints.
        monitor="step" if keep_checkpoints > 0 else None,
        mode="max",
        save_top_k=keep_checkpoints,
        # Overwrite instead of writing last-v1.ckpt, so "--resume last" always finds the newest state.
        enable_version_counter=False,
    )
    logger = TensorBoardLogger(save_dir=run.output_dir, name="tensorboard", version="")
    kwargs: dict[str, Any] = dict(
        default_root_dir=run.output_dir,
        accelerator=run.accelerator,
        devices=run.devices,
        num_nodes=run.num_nodes,
        strategy=_strategy(run, fsdp_wrap_classes, find_unused_parameters),
        precision=run.precision,
        max_steps=run.max_steps if max_steps is None else max_steps,
        max_epochs=-1,  # the step budget decides; small datasets are cycled
        log_every_n_steps=run.log_every_n_steps,
        logger=[logger, *extra_loggers],
        callbacks=[checkpoint, PreemptionCallback(ckpt_dir), *callbacks],
        plugins=[AtomicCheckpointIO(), *trainer_kwargs.pop("plugins", [])],
        enable_progress_bar=enable_progress_bar,
        deterministic=False,
    )
    kwargs.update(trainer_kwargs)
    return lightning.Trainer(**kwargs)


def _strategy(run: RunArgs, wrap_classes: set[type] | None, find_unused_parameters: bool) -> Any:
    from lightning.pytorch.strategies import DDPStrategy, FSDPStrategy

    if run.strategy == "fsdp":
        if wrap_classes:
            policy: Any = set(wrap_classes)
        else:
            from torch.distributed.fsdp.wrap import size_based_auto_wrap_policy

            # Without block classes, shard in ~100M-parameter units rather than one model-sized unit.
            policy = functools.partial(size_based_auto_wrap_policy, min_num_params=100_000_000)
        return FSDPStrategy(
            auto_wrap_policy=policy,
            activation_checkpointing_policy=set(wrap_classes) if wrap_classes else None,
            sharding_strategy="FULL_SHARD",
            # One portable file per checkpoint, loadable without the same world size; rank 0 gathers it.
            state_dict_type="full",
        )
    if run.strategy == "auto" and run.devices * run.num_nodes == 1:
        return "auto"  # a single process needs no process group
    # Lightning picks the backend: NCCL on GPUs, gloo on CPU.
    return DDPStrategy(find_unused_parameters=find_unused_parameters)


def decoder_layer_classes(model: Any) -> set[type]:
    """The classes a transformers model lists in `_no_split_modules` (its decoder/vision blocks)."""
    names = set(getattr(model, "_no_split_modules", None) or ())
    return {type(m) for m in model.modules() if type(m).__name__ in names}
