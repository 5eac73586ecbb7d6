"""What `selfreward-train` does after parsing: data, method, module, fit, export."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from visionrl.core.data.records import VQARecord
from visionrl.core.errors import UserError
from visionrl.core.hub import ModelCardInfo
from visionrl.selfreward.train import TrainConfig

SHAPES_RL_SEED = 3  # RL prompts come from their own world, apart from SFT (1) and held-out (2) scenes


def load_prompts(cfg: TrainConfig) -> tuple[list[VQARecord], list[VQARecord]]:
    """Training and held-out records."""
    from visionrl.core.data.loaders import load_records
    from visionrl.core.demo import demo_world, heldout_records

    ds = cfg.dataset
    if cfg.run.data == "shapes":
        return demo_world(SHAPES_RL_SEED).vqa(ds.shapes_train_size), heldout_records(ds.eval_size)
    columns = {"question": ds.question_column, "answer": ds.answer_column, "images": ds.images_column}
    records = load_records(cfg.run.data, "vqa", columns=columns, split=ds.split)
    if ds.eval_data:
        held = load_records(ds.eval_data, "vqa", columns=columns, split=ds.split)[: ds.eval_size]
    else:
        if len(records) <= ds.eval_size:
            raise UserError(f"--data {cfg.run.data} has {len(records)} records, not more than --dataset.eval-size "
                            f"{ds.eval_size}; pass --dataset.eval-data or a smaller --dataset.eval-size")
        records, held = records[: len(records) - ds.eval_size], records[len(records) - ds.eval_size:]
    return records[: ds.limit] if ds.limit else records, held


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

    def evaluate(vlm: Any, records: Sequence[VQARecord]) -> dict[str, list[float]]:
        texts = generate_texts(vlm, [method.prompt_fn(r) for r in records], greedy, batch_size=cfg.grpo.gen_batch_size,
                              engine=cfg.grpo.engine)
        answers = [r.answer for r in records]
        acc = accuracy(texts, answers)
        fmt = [see_think_format(t) if see_think else cot_format(t) for t in texts]
        out = {"accuracy": acc, "format": fmt}
        if see_think:
            descs = [extract_description(t, cfg.strict_description) for t in texts]
            p2 = generate_texts(vlm, [self_reward_prompt(d, r.question) for d, r in zip(descs, records)], greedy,
                                batch_size=cfg.grpo.gen_batch_size, engine=cfg.grpo.engine)
            vis = [a if d else 0.0 for a, d in zip(accuracy(p2, answers), descs)]
            out["visual"] = vis
        visual = out.get("visual", [0.0] * len(acc)) if cfg.mode not in ("no-self-reward", "vision-r1") else [0.0] * len(acc)
        out["reward"] = [(1 - w) * a + w * f + v for a, f, v in zip(acc, fmt, visual)]
        return out

    return evaluate


def run_training(cfg: TrainConfig) -> dict[str, Any]:
    from visionrl.core.runner import fit_and_export, load_policy, open_output_dir, start

    start(cfg.run)
    train, held = load_prompts(cfg)  # before the model: a bad row fails in seconds, not after a 7B load
    vlm = load_policy(cfg.run, cfg.load)
    out = open_output_dir(cfg.run, cfg)
    card = ModelCardInfo(base_model=cfg.run.model, datasets=[cfg.run.data], paper="2508.19652",
                         method="Vision-SR1 cold-start SFT" if cfg.stage == "sft" else f"Vision-SR1 GRPO ({cfg.mode})",
                         hyperparameters={"stage": cfg.stage, "mode": cfg.mode, "format_weight": cfg.format_weight,
                                          "grpo": _flat(cfg.grpo), "seed": cfg.run.seed, "max_steps": cfg.run.max_steps})
    if cfg.stage == "sft":
        module = _sft_module(cfg, vlm, train, held)
        return fit_and_export(cfg.run, module, trainer_steps=cfg.run.max_steps, data_steps=cfg.run.max_steps, card=card)
    from visionrl.core.lit.grpo import GRPOModule
    from visionrl.selfreward.modes import build_method

    method = build_method(cfg.mode, format_weight=cfg.format_weight, strict_description=cfg.strict_description,
                          literal_backslash_n=cfg.literal_backslash_n, lambdas=cfg.lambdas,
                          pad_token_id=vlm.pad_token_id, gen_batch_size=cfg.grpo.gen_batch_size,
                          engine=cfg.grpo.engine)
    module = GRPOModule(vlm, cfg.grpo, method.rewards, train, method.prompt_fn, max_steps=cfg.run.max_steps,
                        seed=cfg.run.seed, advantage_fn=method.advantage_fn, eval_fn=evaluator(cfg),
                        eval_records=held, samples_path=out / "samples.jsonl")
    return fit_and_export(cfg.run, module, trainer_steps=cfg.run.max_steps * module.optimizer_steps_per_rollout,
                          data_steps=cfg.run.max_steps, card=card)


def _sft_module(cfg: TrainConfig, vlm: Any, train: list[VQARecord], held: list[VQARecord]):
    """Cold-start SFT: shapes → the three Vision-SR1 formats; other data → (question, answer) as given."""
    from visionrl.core import prompts as P
    from visionrl.core.chat import Prompt
    from visionrl.core.data.shapes import Scene
    from visionrl.core.demo import cot_target, describe, see_think_target
    from visionrl.core.lit.sft import SFTExample, SFTModule

    examples = []
    for i, r in enumerate(train):
        if cfg.run.data == "shapes":
            kind = i % 3
            if kind == 0:
                examples.append(SFTExample(Prompt(P.format_segments(r.question, P.SEE_THINK_INSTRUCTION), r.images),
                                           see_think_target(r)))
            elif kind == 1:
                examples.append(SFTExample(Prompt(P.format_segments(r.question, P.COT_INSTRUCTION), r.images),
                                           cot_target(r)))
            else:
                desc = describe(Scene.from_dict(r.meta["scene"]))
                examples.append(SFTExample(Prompt([P.caption_reasoner_prompt(desc, r.question)]), cot_target(r)))
        else:  # cold-start data already carries its instruction; the image goes first
            examples.append(SFTExample(Prompt.simple(r.question.replace("<image>", ""), r.images), r.answer))
    return SFTModule(vlm, cfg.sft, examples, max_steps=cfg.run.max_steps, seed=cfg.run.seed,
                     eval_fn=evaluator(cfg), eval_records=held)


def _flat(obj: Any) -> dict[str, Any]:
    import dataclasses

    return {k: (_flat(v) if dataclasses.is_dataclass(v) else v) for k, v in dataclasses.asdict(obj).items()}
