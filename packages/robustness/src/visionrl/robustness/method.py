"""What is specific to the robustness paper's training run: MCQ data, the consistency judge, the paper's
reward with optional augmentation and faithfulness multiplier, the MCQ warm start, and the held-out
robustness suite as the evaluation (core runs it before, every `--eval-every` steps and after training,
logged as `eval/robustness/<key>`). Returned as core's `Recipe`; core's runner does everything else."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from visionrl.core.data.records import MCQRecord
from visionrl.core.recipe import SHAPES_RL_SEED, Method, Recipe, Splits, split_heldout
from visionrl.robustness.config import TrainConfig

PAPER = "2602.12506"
BENCHMARK = "robustness"
HEADLINE = ("accuracy", "reward", "wrong_think/accuracy", "base/consistency")


def recipe(cfg: TrainConfig) -> Recipe:
    return Recipe(cli="robustness-train", method=_method_name(cfg), paper=PAPER, data=lambda: load_splits(cfg),
                  build=lambda vlm, splits: build(cfg, vlm, splits),
                  hyperparameters={"stage": cfg.stage, "format_weight": cfg.format_weight,
                                   "correct_weight": cfg.correct_weight, "faithfulness": cfg.faithfulness,
                                   "augment": cfg.augment, "augment_prob": cfg.augment_prob, "judge": cfg.judge})


def load_splits(cfg: TrainConfig) -> Splits:
    """Training and held-out MCQ records (`--data` and `--dataset.eval-data` take robustness-eval's syntax)."""
    from visionrl.core.evaluation.judges import check_judge_specs
    from visionrl.robustness.benchmarks import load_benchmarks, shapes_mcq

    check_judge_specs([cfg.judge], "--judge")  # a mistyped judge fails before any model loads

    def read(source: str) -> list[MCQRecord]:
        return [r for recs in load_benchmarks(source, split=cfg.dataset.split).values() for r in recs]

    return split_heldout(cfg.run.data, cfg.dataset, read=read,
                         shapes_train=lambda n: shapes_mcq(n, seed=SHAPES_RL_SEED), shapes_heldout=shapes_mcq)


def build(cfg: TrainConfig, vlm: Any, splits: Splits) -> Method:
    from visionrl.robustness.judge import make_judge
    from visionrl.robustness.rewards import build_rewards, training_items

    judge = make_judge(cfg.judge, flag="--judge", evaluated=vlm, batch_size=cfg.eval_batch_size)
    from visionrl.robustness.perturb import perturb

    common = {"heldout": splits.heldout, "evaluate": evaluator(cfg, judge), "benchmark": BENCHMARK,
              "heldout_prompt": lambda r: perturb(r, "base").prompt, "headline": HEADLINE}
    if cfg.stage == "sft":
        return Method(train=sft_examples(splits.train), **common)
    items = training_items(splits.train, augment_prob=cfg.augment_prob if cfg.augment else 0.0, seed=cfg.run.seed)
    rewards = build_rewards(format_weight=cfg.format_weight, correct_weight=cfg.correct_weight,
                            faithfulness=cfg.faithfulness, judge=judge)
    return Method(train=items, prompt_fn=lambda it: it.prompt, rewards=rewards, **common)


def evaluator(cfg: TrainConfig, judge: Any):
    """Greedy suite over `eval_variants` → per-record values (averaged across ranks by core)."""
    from visionrl.robustness.metrics import per_record_values
    from visionrl.robustness.rewards import reward_of
    from visionrl.robustness.suite import run_suite

    def evaluate(vlm: Any, records: Sequence[MCQRecord]) -> dict[str, list[float]]:
        results = run_suite(vlm, {"heldout": list(records)}, cfg.eval_variants, [judge], seed=cfg.run.seed,
                            batch_size=cfg.eval_batch_size, max_new_tokens=cfg.eval_max_new_tokens, progress=False)
        out = per_record_values(results)
        base = [r for r in results if r.variant == "base"]
        out["reward"] = reward_of(base, cfg.format_weight, cfg.correct_weight, cfg.faithfulness)
        return out

    return evaluate


def sft_target(record: MCQRecord) -> str:
    """The warm-start answer: a think in the style of the perturbation templates, then the gold letter, so
    the tiny model can continue a pre-filled think (a 7B instruct model continues any prefix fluently)."""
    from visionrl.robustness.perturb import think_prefix

    return f"{think_prefix(record, record.answer, but=False)}</think><answer>{record.answer}</answer>"


def sft_examples(train: Sequence[MCQRecord]) -> list[Any]:
    """MCQ warm start on clean (base) prompts only: the model never sees an injected caption or think."""
    from visionrl.core.lit.sft import SFTExample
    from visionrl.robustness.perturb import perturb

    return [SFTExample(perturb(r, "base").prompt, sft_target(r)) for r in train]


def _method_name(cfg: TrainConfig) -> str:
    if cfg.stage == "sft":
        return "MCQ warm-start SFT (think/answer format)"
    return "GRPO" + (" + augmentation" if cfg.augment else "") + (" + faithfulness reward" if cfg.faithfulness else "")

