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
from visionrl.core.errors import UserError
from visionrl.core.evaluation.models import check_model_source, load_model
from visionrl.core.evaluation.outputs import write_json
from visionrl.core.hub import ModelCardInfo
from visionrl.core.recipe import Method, Recipe


def train(recipe: Recipe, config: Any, *, run: RunArgs, algo: Any, load: Any = None,
          reward: Any = None) -> dict[str, Any]:
    """Run `recipe` with the algorithm config `algo` (GRPO, SFT, DPO or reward model); returns metrics.json.
    `reward` (a `rewards.plugins.RewardModelArgs`) adds a reward-model reward to a GRPO method."""
    start(run)
    check_reward_plugin(reward, algo)
    splits = recipe.data()
    vlm = load_policy(run, load)
    method = recipe.build(vlm, splits)
    method = with_reward_plugin(method, reward, vlm)
    out = open_output_dir(run, config)
    module = build_module(algo, vlm, method, run, out)
    card = ModelCardInfo(base_model=run.model, datasets=[run.data], method=recipe.method, paper=recipe.paper,
                         hyperparameters={**recipe.hyperparameters, type(algo).__name__: _flat(algo),
                                          "seed": run.seed, "max_steps": run.max_steps})
    from visionrl.core.lit.callbacks import PeriodicEval

    callbacks = [PeriodicEval(method.benchmark, run.eval_every), *method.callbacks]
    return fit_and_export(run, module, card=card, callbacks=callbacks)


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


def build_module(algo: Any, vlm: Any, method: Method, run: RunArgs, out: Path) -> Any:
    name = type(algo).__name__
    assert name in MODULES, f"no module trains a {name}; known: {', '.join(MODULES)}"
    return MODULES[name](vlm, algo, method, run, out)


# ---- the steps ------------------------------------------------------------------------------------
def start(run: RunArgs) -> None:
    """Machine checks and seeding, before any data or model is read."""
    import lightning as L
    import torch

    validate_run_args(run)
    check_model_source(run.model)
    torch.set_num_threads(run.threads or max(1, (os.cpu_count() or 1) // run.devices))
    L.seed_everything(run.seed, workers=True, verbose=False)


def load_policy(run: RunArgs, options: Any) -> Any:
    """The policy `--model` names (`demo` builds/caches the demo model); errors name the flag."""
    return load_model(run.model, options, trust_remote_code=run.trust_remote_code)


def open_output_dir(run: RunArgs, config: Any) -> Path:
    """Create the output dir and write config.yaml (rank 0) once model and data have loaded, so a
    user error never leaves a fresh output directory behind."""
    return prepare_output_dir(run, config)


def fit_and_export(run: RunArgs, module: Any, *, card: ModelCardInfo, callbacks: Sequence[Any] = (),
                   wrap_classes: set[type] | None = None) -> dict[str, Any]:
    """Fit (resuming when asked), export `<output_dir>/model`, write `metrics.json`, push when asked."""
    from visionrl.core.checkpoints import resolve_resume
    from visionrl.core.cli import decoder_layer_classes
    from visionrl.core.hub import export_model, push_to_hub
    from visionrl.core.lit.datamodules import StepDataModule

    trainer = build_trainer(run, max_steps=module.trainer_steps, find_unused_parameters=True,
                            callbacks=callbacks,
                            fsdp_wrap_classes=wrap_classes or decoder_layer_classes(module.vlm.model))
    # weights_only=True also for strategies that bypass the checkpoint IO (validate_run_args checked the file).
    trainer.fit(module, datamodule=StepDataModule(module.total_steps), ckpt_path=resolve_resume(run),
                weights_only=True)
    # ModelCheckpoint only writes every `save_every_n_steps`; the final state must be resumable too.
    trainer.save_checkpoint(run.output_dir / "checkpoints" / "last.ckpt", weights_only=False)
    metrics = dict(module.eval_results)
    metrics["train"] = {k: float(v) for k, v in trainer.logged_metrics.items()}
    metrics["steps"] = int(trainer.global_step)
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
