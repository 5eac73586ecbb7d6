"""Core's train runner: everything a train CLI does after parsing, for every paper package.

    recipe = my_package.method.recipe(cfg)          # what is paper-specific (visionrl.core.recipe)
    train(recipe, cfg, run=cfg.run, algo=cfg.grpo, load=cfg.load)

`train` checks the machine and the output folder, reads the data (a bad row fails before the model loads),
loads the policy, builds the method and the module that `algo`'s type selects (`MODULES`), fits with
checkpointing, pre-emption and periodic held-out evaluation, exports `<output_dir>/model` with its card,
writes `metrics.json` and pushes when asked. The output-directory contract (config.yaml, tensorboard/,
checkpoints/, model/, samples.jsonl, metrics.json) is honoured here once.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from visionrl.core.cli import build_trainer, prepare_output_dir
from visionrl.core.config import RunArgs, validate_run_args
from visionrl.core.console import Console
from visionrl.core.errors import UserError
from visionrl.core.evaluation.models import check_model_source, load_model
from visionrl.core.evaluation.outputs import write_json
from visionrl.core.hub import ModelCardInfo
from visionrl.core.recipe import Method, Recipe


def train(recipe: Recipe, config: Any, *, run: RunArgs, algo: Any, load: Any = None,
          reward: Any = None) -> dict[str, Any]:
    """Run `recipe` with the algorithm config `algo` (GRPO, SFT, DPO or reward model); returns metrics.json.
    `reward` (a `rewards.plugins.RewardModelArgs`) adds a reward-model reward to a GRPO method."""
    console = Console(recipe.cli, quiet=run.quiet, verbose=run.verbose)
    identity = {"cli": recipe.cli, "method": recipe.method, "model": run.model}
    start(run, identity)
    check_reward_plugin(reward, algo)
    console.header(recipe.method, {"model": run.model, "data": run.data, "steps": run.max_steps,
                                   "on": _hardware_line(run)}, run.output_dir)
    splits = recipe.data()
    vlm = load_policy(run, load)
    method = recipe.build(vlm, splits)
    method = with_reward_plugin(method, reward, vlm)
    method, dropped = check_lengths(vlm, method, algo, run)
    out = open_output_dir(run, config)
    module = build_module(algo, vlm, method, run, out)
    module.identity = identity
    card = ModelCardInfo(base_model=run.model, datasets=[run.data], method=recipe.method, paper=recipe.paper,
                         hyperparameters={**recipe.hyperparameters, type(algo).__name__: _flat(algo),
                                          "seed": run.seed, "max_steps": run.max_steps})
    from visionrl.core.lit.callbacks import HeldOutCallback

    callbacks = [HeldOutCallback(method.benchmark, run.eval_every, console, tuple(method.headline)),
                 *method.callbacks]
    metrics = fit_and_export(run, module, card=card, callbacks=callbacks,
                             extra={"dropped_overlong": dropped} if any(dropped.values()) else None)
    console.summary(_summary_rows(run, metrics, method, dropped))
    return metrics


def _hardware_line(run: RunArgs) -> str:
    import torch

    gpu = run.accelerator == "gpu" or (run.accelerator == "auto" and torch.cuda.is_available())
    kind = "GPU" if gpu else "CPU"
    world = run.devices * run.num_nodes
    return f"{world} {kind} process{'es' if world > 1 else ''} ({run.strategy}, {run.precision})"


def _summary_rows(run: RunArgs, metrics: dict[str, Any], method: Method,
                  dropped: dict[str, int]) -> list[tuple[str, str]]:
    from visionrl.core.console import before_after

    rows = []
    if "before" in metrics or "after" in metrics:
        keys = list(method.headline) or None
        rows.append((f"held-out {method.benchmark}", before_after(metrics, keys)))
    if any(dropped.values()):
        rows.append(("dropped", ", ".join(f"{n} overlong {k} prompts" for k, n in dropped.items() if n)))
    out = run.output_dir
    rows += [("model", str(out / "model")), ("metrics", str(out / "metrics.json")),
             ("curves", f"tensorboard --logdir {out / 'tensorboard'}")]
    if run.push_to_hub:
        rows.append(("hub", f"https://huggingface.co/{run.push_to_hub}"))
    return rows


# ---- reward plug-ins (GRPO) -----------------------------------------------------------------------
def check_reward_plugin(reward: Any, algo: Any) -> None:
    """`--reward-model` adds a GRPO reward: refused for other algorithms; mode and path checked before loading."""
    if reward is None or reward.reward_model is None:
        return
    if type(algo).__name__ != "GRPOConfig":
        raise UserError(f"--reward-model {reward.reward_model}: a reward plug-in is a GRPO reward, but this run "
                        f"trains with {type(algo).__name__}; drop --reward-model")
    from visionrl.core.rewards.plugins import check_reward_args

    check_reward_args(reward)


def with_reward_plugin(method: Method, reward: Any, vlm: Any) -> Method:
    """`method` with the plug-in reward `reward` names appended to its rewards (unchanged without one)."""
    if reward is None or reward.reward_model is None:
        return method
    from visionrl.core.rewards.plugins import load_reward_plugin

    return dataclasses.replace(method, rewards=[*method.rewards, load_reward_plugin(reward, vlm)])


# ---- modules by algorithm config ------------------------------------------------------------------
def _grpo(vlm: Any, cfg: Any, m: Method, run: RunArgs, out: Path) -> Any:
    from visionrl.core.lit.grpo import GRPOModule

    assert m.prompt_fn is not None and m.rewards, "a GRPO method needs prompt_fn and rewards"
    return GRPOModule(vlm, cfg, m.rewards, m.train, m.prompt_fn, max_steps=run.max_steps, seed=run.seed,
                      advantage_fn=m.advantage_fn, eval_fn=m.evaluate, eval_records=m.heldout,
                      samples_path=out / "samples.jsonl")


def _sft(vlm: Any, cfg: Any, m: Method, run: RunArgs, out: Path) -> Any:
    from visionrl.core.lit.sft import SFTModule

    return SFTModule(vlm, cfg, m.train, max_steps=run.max_steps, seed=run.seed, eval_fn=m.evaluate,
                     eval_records=m.heldout)


def _pairs(module_cls: Callable[..., Any]) -> Callable[..., Any]:
    def build(vlm: Any, cfg: Any, m: Method, run: RunArgs, out: Path) -> Any:
        extra = {"prompt_fn": m.prompt_fn} if m.prompt_fn is not None else {}
        return module_cls(vlm, cfg, m.train, max_steps=run.max_steps, seed=run.seed, eval_fn=m.evaluate,
                          eval_records=m.heldout, **extra)

    return build


def _dpo(*args: Any) -> Any:
    from visionrl.core.lit.dpo import DPOModule

    return _pairs(DPOModule)(*args)


def _reward_model(*args: Any) -> Any:
    from visionrl.core.lit.reward_model import RewardModelModule

    return _pairs(RewardModelModule)(*args)


MODULES: dict[str, Callable[[Any, Any, Method, RunArgs, Path], Any]] = {
    "GRPOConfig": _grpo, "SFTConfig": _sft, "DPOConfig": _dpo, "RewardModelConfig": _reward_model}
"""Algorithm config class name -> the LightningModule that trains it (class names keep this torch-free)."""


def check_lengths(vlm: Any, method: Method, algo: Any, run: RunArgs) -> tuple[Method, dict[str, int]]:
    """Every training and held-out prompt within `--max-prompt-tokens` (or dropped and counted, with
    `--overlong-prompts drop`), checked once before training, not found by an out-of-memory forward."""
    from visionrl.core.data.lengths import check_prompt_lengths

    def check(rows: Sequence[Any], prompt_of: Any, what: str) -> tuple[list[Any], int]:
        if not rows or prompt_of is None:
            return list(rows), 0
        kept, dropped, _ = check_prompt_lengths(vlm, rows, prompt_of, limit=run.max_prompt_tokens,
                                                policy=run.overlong_prompts, what=what)
        if not kept:
            raise UserError(f"--max-prompt-tokens {run.max_prompt_tokens}: every {what} prompt is longer")
        return kept, dropped

    train, n_train = check(method.train, TRAIN_PROMPT[type(algo).__name__](method), "training")
    held, n_held = check(method.heldout, method.heldout_prompt, "held-out")
    return dataclasses.replace(method, train=train, heldout=held), {"train": n_train, "heldout": n_held}


def _pair_prompt(m: Method) -> Any:
    from visionrl.core.lit.reward_model import pair_prompt

    return m.prompt_fn or pair_prompt


TRAIN_PROMPT: dict[str, Callable[[Method], Any]] = {
    "GRPOConfig": lambda m: m.prompt_fn, "SFTConfig": lambda m: (lambda example: example.prompt),
    "DPOConfig": _pair_prompt, "RewardModelConfig": _pair_prompt}
"""Algorithm config class name -> the prompt of a training row (what `--max-prompt-tokens` bounds)."""


def build_module(algo: Any, vlm: Any, method: Method, run: RunArgs, out: Path) -> Any:
    name = type(algo).__name__
    assert name in MODULES, f"no module trains a {name}; known: {', '.join(MODULES)}"
    return MODULES[name](vlm, algo, method, run, out)


# ---- the steps ------------------------------------------------------------------------------------
def start(run: RunArgs, identity: dict[str, str] | None = None) -> None:
    """Everything that can be checked before data or model are read: the machine, the model flag, the output
    folder, the checkpoint to resume (and that this run wrote it), the Hub repo and token; then seeding."""
    import lightning as L
    import torch
    from visionrl.core.checkpoints import check_resume_identity, resolve_resume
    from visionrl.core.console import silence_third_party

    if not run.verbose:
        silence_third_party()
    validate_run_args(run)
    check_model_source(run.model)
    check_output_dir(run)
    if run.resume is not None and identity is not None:
        check_resume_identity(resolve_resume(run), identity)
    if run.push_to_hub:
        from visionrl.core.hub import check_push

        check_push(run.push_to_hub)
    torch.set_num_threads(run.threads or max(1, (os.cpu_count() or 1) // run.devices))
    L.seed_everything(run.seed, workers=True, verbose=False)


RUN_FILES = ("config.yaml", "tensorboard", "checkpoints", "model", "samples.jsonl", "metrics.json")
"""What a run writes into its output folder (the output-directory contract)."""


def check_output_dir(run: RunArgs) -> None:
    """`--output-dir` must be a writable folder; one that holds a run is refused unless `--resume` continues
    it or `--overwrite` starts over (then the run's own files are deleted, nothing else). Rank 0 only: the
    other ranks start once rank 0 has created the folder."""
    from visionrl.core.cli import is_global_rank_zero

    out = run.output_dir
    if not is_global_rank_zero():
        return
    if out.exists() and not out.is_dir():
        raise UserError(f"--output-dir {out}: is a file, not a folder")
    parent = next(p for p in (out, *out.parents) if p.exists())
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"--output-dir {out}: {parent} is not a writable folder")
    found = [name for name in RUN_FILES if (out / name).exists()]
    if not found or run.resume is not None:
        return
    if not run.overwrite:
        raise UserError(f"--output-dir {out} already holds a run ({', '.join(found)}); continue it with "
                        "--resume last, or pass --overwrite to start over")
    import shutil

    for name in found:
        path = out / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()


def load_policy(run: RunArgs, options: Any) -> Any:
    """The policy `--model` names (`demo` builds/caches the demo model); errors name the flag."""
    return load_model(run.model, options, trust_remote_code=run.trust_remote_code)


def open_output_dir(run: RunArgs, config: Any) -> Path:
    """Create the output dir and write config.yaml (rank 0) once model and data have loaded, so a
    user error never leaves a fresh output directory behind."""
    return prepare_output_dir(run, config)


def fit_and_export(run: RunArgs, module: Any, *, card: ModelCardInfo, callbacks: Sequence[Any] = (),
                   wrap_classes: set[type] | None = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Fit (resuming when asked), export `<output_dir>/model`, write `metrics.json`, push when asked."""
    from visionrl.core.checkpoints import resolve_resume
    from visionrl.core.cli import decoder_layer_classes
    from visionrl.core.hub import export_model, push_to_hub
    from visionrl.core.lit.datamodules import StepDataModule
    from visionrl.core.lit.progress import StepProgressBar

    bar = [StepProgressBar()] if not run.quiet else []
    trainer = build_trainer(run, max_steps=module.trainer_steps, find_unused_parameters=True,
                            callbacks=[*bar, *callbacks], enable_progress_bar=not run.quiet,
                            enable_model_summary=run.verbose,
                            fsdp_wrap_classes=wrap_classes or decoder_layer_classes(module.vlm.model))
    # weights_only=True also for strategies that bypass the checkpoint IO (validate_run_args checked the file).
    trainer.fit(module, datamodule=StepDataModule(module.total_steps), ckpt_path=resolve_resume(run),
                weights_only=True)
    # ModelCheckpoint only writes every `save_every_n_steps`; the final state must be resumable too.
    trainer.save_checkpoint(run.output_dir / "checkpoints" / "last.ckpt", weights_only=False)
    metrics = dict(module.eval_results)
    metrics["train"] = dict(module.last_metrics)  # the last step's
    metrics["steps"] = int(module.step_idx)
    metrics.update(extra or {})
    # Gathered on every rank (a collective under FSDP), written by rank 0 only.
    state = trainer.strategy.lightning_module_state_dict()
    if trainer.global_rank == 0:
        policy_state = {k.removeprefix("policy."): v for k, v in state.items() if k.startswith("policy.")}
        model = module.vlm.model
        if hasattr(model, "merge_and_unload"):  # LoRA (peft): export merged full weights
            model, policy_state = model.merge_and_unload(), None
        card = dataclasses.replace(card, metrics={k: metrics[k] for k in ("before", "after") if k in metrics})
        out = export_model(model, module.vlm.processor, run.output_dir / "model", card, state_dict=policy_state)
        module.export_extras(out, state)  # after the rename: files land in the final folder
        write_json(run.output_dir / "metrics.json", metrics)
        if run.push_to_hub:
            url = push_to_hub(out, run.push_to_hub, commit_message=f"{card.method} ({card.paper})")
            print(f"pushed to {url}")
    trainer.strategy.barrier()
    return metrics


def _flat(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: _flat(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    return obj
