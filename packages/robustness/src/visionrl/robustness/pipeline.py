"""What `robustness-train` does after parsing: data, judge, rewards, GRPO module, periodic suite, fit, export.

Held-out numbers (greedy suite over `eval_variants`) are stored in `metrics.json` as `before`, `after` and
`step_<n>` (every `eval_every` rollout steps n), and logged to TensorBoard as `eval/robustness/<key>` at the
optimizer step they describe (`before` at step 0), on the same axis as the `train/*` curves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from visionrl.core.data.records import MCQRecord
from visionrl.core.errors import UserError
from visionrl.core.hub import ModelCardInfo
from visionrl.robustness.train import TrainConfig

SHAPES_RL_SEED = 3  # RL prompts come from their own world, apart from SFT (1) and held-out (2) scenes
EVAL_PREFIX = "eval/robustness"


def load_prompts(cfg: TrainConfig) -> tuple[list[MCQRecord], list[MCQRecord]]:
    """Training and held-out MCQ records."""
    from visionrl.robustness.benchmarks import SHAPES, load_benchmarks, shapes_mcq

    ds = cfg.dataset
    if cfg.run.data == SHAPES:
        train = shapes_mcq(ds.shapes_train_size, seed=SHAPES_RL_SEED)
    else:
        train = [r for recs in load_benchmarks(cfg.run.data, split=ds.split).values() for r in recs]
    if ds.eval_data:
        held = [
            r for recs in load_benchmarks(ds.eval_data, ds.eval_size, split=ds.split).values() for r in recs
        ]
    elif cfg.run.data == SHAPES:
        held = shapes_mcq(ds.eval_size)
    else:
        if len(train) <= ds.eval_size:
            raise UserError(
                f"--data {cfg.run.data} has {len(train)} records, not more than --dataset.eval-size "
                f"{ds.eval_size}; pass --dataset.eval-data or a smaller --dataset.eval-size"
            )
        train, held = train[: len(train) - ds.eval_size], train[len(train) - ds.eval_size :]
    return (train[: ds.limit] if ds.limit else train), held[: ds.eval_size]


def make_judge(cfg: TrainConfig, vlm: Any) -> Any:
    """The consistency judge: rules, the policy itself (`self`), or another VLM."""
    from visionrl.core.config import RunArgs
    from visionrl.core.runner import load_policy
    from visionrl.robustness.judge import LLMJudge, RuleJudge

    if cfg.judge == "rule":
        return RuleJudge()
    judge_vlm = vlm if cfg.judge == "self" else load_policy(RunArgs(model=cfg.judge, max_steps=1), None)
    return LLMJudge(judge_vlm, name=cfg.judge, batch_size=cfg.eval_batch_size)


def evaluator(cfg: TrainConfig, judge: Any):
    """Greedy suite over `eval_variants` → per-record values (averaged across ranks by core)."""
    from visionrl.robustness.metrics import per_record_values
    from visionrl.robustness.rewards import reward_of
    from visionrl.robustness.suite import run_suite

    def evaluate(vlm: Any, records: Sequence[MCQRecord]) -> dict[str, list[float]]:
        results = run_suite(
            vlm,
            {"heldout": list(records)},
            cfg.eval_variants,
            [judge],
            seed=cfg.run.seed,
            batch_size=cfg.eval_batch_size,
            max_new_tokens=cfg.eval_max_new_tokens,
            progress=False,
        )
        out = per_record_values(results)
        base = [r for r in results if r.variant == "base"]
        out["reward"] = reward_of(base, cfg.format_weight, cfg.correct_weight, cfg.faithfulness)
        return out

    return evaluate


def _log(trainer: Any, metrics: dict[str, float], step: int) -> None:
    for logger in trainer.loggers:
        logger.log_metrics({f"{EVAL_PREFIX}/{k}": v for k, v in metrics.items()}, step=step)


def _progress(module: Any) -> tuple[int, int]:
    """(steps done, steps planned) of a GRPO (rollout steps) or SFT module."""
    if hasattr(module, "rollout_step"):
        return module.rollout_step, module.max_rollout_steps
    return module.step_idx, module.max_train_steps


def robustness_callback(every: int):
    """A Lightning callback that re-runs the held-out suite every `every` steps (and logs `before`)."""
    from lightning.pytorch.callbacks import Callback

    class RobustnessEval(Callback):
        def on_train_start(self, trainer: Any, pl_module: Any) -> None:
            if "before" in pl_module.eval_results:
                _log(trainer, pl_module.eval_results["before"], 0)

        def on_train_batch_end(self, trainer: Any, pl_module: Any, *args: Any, **kwargs: Any) -> None:
            step, total = _progress(pl_module)  # `step` already counts the step that just ended
            if every and step % every == 0 and step < total:
                metrics = pl_module.evaluate()
                pl_module.eval_results[f"step_{step}"] = metrics
                _log(trainer, metrics, trainer.global_step)

    return RobustnessEval()


def with_callbacks(module_cls: type, callbacks: Sequence[Any]) -> type:
    """`module_cls` that also brings `callbacks` to the Trainer (`configure_callbacks`), because core's
    `runner.fit_and_export` builds the Trainer itself, and logs the `after` suite."""

    class WithCallbacks(module_cls):
        def configure_callbacks(self) -> list[Any]:
            return list(callbacks)

        def on_train_end(self) -> None:
            super().on_train_end()  # the `after` evaluation; Lightning runs callbacks' on_train_end first
            if "after" in self.eval_results:
                _log(self.trainer, self.eval_results["after"], self.trainer.global_step)

    WithCallbacks.__name__ = WithCallbacks.__qualname__ = f"Robustness{module_cls.__name__}"
    return WithCallbacks


def sft_target(record: MCQRecord) -> str:
    """The warm-start answer: a think in the style of the perturbation templates, then the gold letter, so
    the tiny model can continue a pre-filled think (a 7B instruct model continues any prefix fluently)."""
    from visionrl.robustness.perturb import think_prefix

    return f"{think_prefix(record, record.answer, but=False)}</think><answer>{record.answer}</answer>"


def sft_module(
    cfg: TrainConfig, vlm: Any, train: Sequence[MCQRecord], held: Sequence[MCQRecord], eval_fn: Any
):
    """MCQ warm start on clean (base) prompts only: the model never sees an injected caption or think."""
    from visionrl.core.lit.sft import SFTExample, SFTModule
    from visionrl.robustness.perturb import perturb

    examples = [SFTExample(perturb(r, "base").prompt, sft_target(r)) for r in train]
    cls = with_callbacks(SFTModule, [robustness_callback(cfg.eval_every)])
    return cls(
        vlm,
        cfg.sft,
        examples,
        max_steps=cfg.run.max_steps,
        seed=cfg.run.seed,
        eval_fn=eval_fn,
        eval_records=held,
    )


def run_training(cfg: TrainConfig) -> dict[str, Any]:
    from visionrl.core.lit.grpo import GRPOModule
    from visionrl.core.runner import fit_and_export, load_policy, open_output_dir, start
    from visionrl.robustness.rewards import build_rewards, training_items

    start(cfg.run)
    vlm = load_policy(cfg.run, cfg.load)
    train, held = load_prompts(cfg)
    judge = make_judge(cfg, vlm)
    out = open_output_dir(cfg.run, cfg)
    eval_fn = evaluator(cfg, judge)
    card = ModelCardInfo(
        base_model=cfg.run.model,
        datasets=[cfg.run.data],
        paper="2602.12506",
        method=_method(cfg),
        hyperparameters=_hyperparameters(cfg),
    )
    if cfg.stage == "sft":
        module = sft_module(cfg, vlm, train, held, eval_fn)
        return fit_and_export(
            cfg.run, module, trainer_steps=cfg.run.max_steps, data_steps=cfg.run.max_steps, card=card
        )
    items = training_items(train, augment_prob=cfg.augment_prob if cfg.augment else 0.0, seed=cfg.run.seed)
    rewards = build_rewards(
        format_weight=cfg.format_weight,
        correct_weight=cfg.correct_weight,
        faithfulness=cfg.faithfulness,
        judge=judge,
    )
    cls = with_callbacks(GRPOModule, [robustness_callback(cfg.eval_every)])
    module = cls(
        vlm,
        cfg.grpo,
        rewards,
        items,
        lambda it: it.prompt,
        max_steps=cfg.run.max_steps,
        seed=cfg.run.seed,
        eval_fn=eval_fn,
        eval_records=held,
        samples_path=out / "samples.jsonl",
    )
    return fit_and_export(
        cfg.run,
        module,
        trainer_steps=cfg.run.max_steps * module.optimizer_steps_per_rollout,
        data_steps=cfg.run.max_steps,
        card=card,
    )


def _method(cfg: TrainConfig) -> str:
    if cfg.stage == "sft":
        return "MCQ warm-start SFT (think/answer format)"
    return (
        "GRPO"
        + (" + augmentation" if cfg.augment else "")
        + (" + faithfulness reward" if cfg.faithfulness else "")
    )


def _hyperparameters(cfg: TrainConfig) -> dict[str, Any]:
    return {
        "stage": cfg.stage,
        "format_weight": cfg.format_weight,
        "correct_weight": cfg.correct_weight,
        "faithfulness": cfg.faithfulness,
        "augment": cfg.augment,
        "augment_prob": cfg.augment_prob,
        "judge": cfg.judge,
        "num_generations": cfg.grpo.num_generations,
        "seed": cfg.run.seed,
        "max_steps": cfg.run.max_steps,
    }
