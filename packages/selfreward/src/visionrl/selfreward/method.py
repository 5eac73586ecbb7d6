"""What is Vision-SR1-specific about a training run: data, prompts, rewards, advantages and the held-out
evaluation, as core's `Recipe` (`visionrl.core.recipe`); core's runner does everything else."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from visionrl.core.data.records import VQARecord
from visionrl.core.recipe import SHAPES, SHAPES_RL_SEED, Method, Recipe, Splits, split_heldout
from visionrl.selfreward.config import TrainConfig

PAPER = "2508.19652"
HEADLINE = ("accuracy", "format", "visual", "reward")


def recipe(cfg: TrainConfig) -> Recipe:
    stage = "Vision-SR1 cold-start SFT" if cfg.stage == "sft" else f"Vision-SR1 GRPO ({cfg.mode})"
    return Recipe(cli="selfreward-train", method=stage, paper=PAPER, data=lambda: load_splits(cfg),
                  build=lambda vlm, splits: build(cfg, vlm, splits),
                  hyperparameters={"stage": cfg.stage, "mode": cfg.mode, "format_weight": cfg.format_weight})


def load_splits(cfg: TrainConfig) -> Splits:
    """Training prompts and the held-out set (shapes: separate RL and held-out worlds)."""
    from visionrl.core.data.loaders import load_records
    from visionrl.core.demo_teacher import demo_world, heldout_records

    ds = cfg.dataset
    columns = {"question": ds.question_column, "answer": ds.answer_column, "images": ds.images_column}
    return split_heldout(cfg.run.data, ds, read=lambda src: load_records(src, "vqa", columns=columns, split=ds.split),
                         shapes_train=demo_world(SHAPES_RL_SEED).vqa, shapes_heldout=heldout_records)


def build(cfg: TrainConfig, vlm: Any, splits: Splits) -> Method:
    evaluate = evaluator(cfg)
    if cfg.stage == "sft":
        from visionrl.selfreward.modes import build_method

        shown = build_method(cfg.mode, literal_backslash_n=cfg.literal_backslash_n).prompt_fn
        return Method(train=sft_examples(cfg, splits.train), heldout=splits.heldout, evaluate=evaluate,
                      benchmark=_benchmark(cfg), heldout_prompt=shown, headline=HEADLINE)
    from visionrl.selfreward.modes import build_method

    m = build_method(cfg.mode, format_weight=cfg.format_weight, strict_description=cfg.strict_description,
                     literal_backslash_n=cfg.literal_backslash_n, lambdas=cfg.lambdas,
                     pad_token_id=vlm.pad_token_id, gen_batch_size=cfg.grpo.gen_batch_size, engine=cfg.grpo.engine)
    return Method(train=splits.train, heldout=splits.heldout, evaluate=evaluate, benchmark=_benchmark(cfg),
                  prompt_fn=m.prompt_fn, rewards=m.rewards, advantage_fn=m.advantage_fn,
                  heldout_prompt=m.prompt_fn, headline=HEADLINE)


def _benchmark(cfg: TrainConfig) -> str:
    return SHAPES if cfg.run.data == SHAPES and not cfg.dataset.eval_data else "heldout"


def evaluator(cfg: TrainConfig):
    """Greedy held-out evaluation: accuracy, format, visual (pass-2 from the greedy description) and the
    mode's reward."""
    from visionrl.core.rewards import cot_format, see_think_format
    from visionrl.core.rollout import SamplingParams, generate_texts
    from visionrl.selfreward.modes import build_method
    from visionrl.selfreward.prompts import self_reward_prompt
    from visionrl.selfreward.rewards import accuracy, extract_description

    method = build_method(cfg.mode, literal_backslash_n=cfg.literal_backslash_n)
    greedy = SamplingParams(do_sample=False, max_new_tokens=cfg.eval_max_new_tokens)
    w = cfg.format_weight
    see_think = cfg.mode != "vision-r1"
    gen = {"batch_size": cfg.grpo.gen_batch_size, "engine": cfg.grpo.engine}

    def evaluate(vlm: Any, records: Sequence[VQARecord]) -> dict[str, list[float]]:
        texts = generate_texts(vlm, [method.prompt_fn(r) for r in records], greedy, **gen)
        answers = [r.answer for r in records]
        acc = accuracy(texts, answers)
        fmt = [see_think_format(t) if see_think else cot_format(t) for t in texts]
        out = {"accuracy": acc, "format": fmt}
        visual = [0.0] * len(acc)
        if see_think:
            descs = [extract_description(t, cfg.strict_description) for t in texts]
            p2 = generate_texts(vlm, [self_reward_prompt(d, r.question) for d, r in zip(descs, records)], greedy, **gen)
            out["visual"] = [a if d else 0.0 for a, d in zip(accuracy(p2, answers), descs)]
            if cfg.mode != "no-self-reward":
                visual = out["visual"]
        out["reward"] = [(1 - w) * a + w * f + v for a, f, v in zip(acc, fmt, visual)]
        return out

    return evaluate


def sft_examples(cfg: TrainConfig, train: Sequence[VQARecord]) -> list[Any]:
    """Cold-start SFT: shapes → the three Vision-SR1 formats in turn; other data → (question, answer) as given."""
    from visionrl.core import prompts as P
    from visionrl.core.chat import Prompt
    from visionrl.core.data.shapes_scene import Scene
    from visionrl.core.demo_teacher import cot_target, describe, see_think_target
    from visionrl.core.lit.sft import SFTExample

    if cfg.run.data != SHAPES:  # cold-start data already carries its instruction; the image goes first
        return [SFTExample(Prompt.simple(r.question.replace("<image>", ""), r.images), r.answer) for r in train]
    examples = []
    for i, r in enumerate(train):
        if i % 3 == 0:
            examples.append(SFTExample(Prompt(P.format_segments(r.question, P.SEE_THINK_INSTRUCTION), r.images),
                                       see_think_target(r)))
        elif i % 3 == 1:
            examples.append(SFTExample(Prompt(P.format_segments(r.question, P.COT_INSTRUCTION), r.images),
                                       cot_target(r)))
        else:
            desc = describe(Scene.from_dict(r.meta["scene"]))
            examples.append(SFTExample(Prompt([P.caption_reasoner_prompt(desc, r.question)]), cot_target(r)))
    return examples
