"""What is LLaVA-Critic-R1-specific about a training run: critic rows, their prompt, the named rewards and
the held-out evaluation, as core's `Recipe`; core's runner and `GRPOModule` do everything else (no local
training loop).

Held-out evaluation (greedy, before and after training, and every `--eval-every` steps): each held-out pair
is judged in its recorded random order and, when its two answers are known, in the other order too.
`accuracy`, `format` and `reward` are the training reward's numbers in the recorded order; `both_orders_accuracy`
is right in both; `position1_rate` is the share of parsed verdicts naming the first shown answer (0.5 =
unbiased); `unparsed` the share of verdicts naming neither. `policy_accuracy` is the greedy accuracy on
held-out questions asked the authors' way (policy transfer, `--dataset.policy-eval`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from visionrl.core.data.records import VQARecord
from visionrl.core.recipe import SHAPES_RL_SEED, Method, Recipe, Splits, split_heldout
from visionrl.critic.config import TrainConfig

PAPER = "2509.00676"
BENCHMARK = "critic"
HEADLINE = ("accuracy", "both_orders_accuracy", "position1_rate", "policy_accuracy")


@dataclass
class Item:
    """A critic row and, for reorganized pairs, the same pair shown in the other order."""

    row: VQARecord
    mirror: VQARecord | None = None


@dataclass
class HeldOut(Item):
    """A held-out critic item with the policy-transfer question evaluated alongside (if any)."""

    policy: VQARecord | None = None


def recipe(cfg: TrainConfig) -> Recipe:
    name = "LLaVA-Critic-R1 GRPO" + (" (format-only reward)" if cfg.reward == "format-only" else "")
    return Recipe(cli="critic-train", method=name, paper=PAPER, data=lambda: load_splits(cfg),
                  build=lambda vlm, splits: build(cfg, vlm, splits),
                  hyperparameters={"reward": cfg.reward, "format_weight": cfg.format_weight, "gt_form": cfg.gt_form,
                                   "prefill": cfg.prefill})


def _columns(cfg: TrainConfig) -> Any:
    from visionrl.critic.data import Columns

    d = cfg.dataset
    return Columns(prompt=d.prompt_column, chosen=d.chosen_column, rejected=d.rejected_column,
                   images=d.images_column, question=d.question_column, answer=d.answer_column,
                   image=d.image_column)


def _items(pairs: Sequence[Any], seed: int, gt_form: str) -> list[Item]:
    from visionrl.critic.data import critic_row, pair_coin, reorganize_pairwise

    items = []
    for p in pairs:
        row = reorganize_pairwise(p, pair_coin(seed, p.id), gt_form=gt_form)  # type: ignore[arg-type]
        items.append(Item(row, critic_row(p, not row.meta["flip"], gt_form)))  # type: ignore[arg-type]
    return items


def read_items(cfg: TrainConfig, source: str) -> list[Item]:
    """Critic items of a pair source (with mirrors) or a critic-row source (without)."""
    from visionrl.critic.data import detect_layout, load_critic_rows, load_pairs

    d, cols = cfg.dataset, _columns(cfg)
    layout = detect_layout(source, d.split, cols) if d.layout == "auto" else d.layout
    if layout == "critic-rows":
        return [Item(r) for r in load_critic_rows(source, split=d.split, cols=cols, gt_form=cfg.gt_form)]
    return _items(load_pairs(source, split=d.split, cols=cols), cfg.run.seed, cfg.gt_form)


def load_splits(cfg: TrainConfig) -> Splits:
    """Training rows and held-out items (shapes: separate RL and held-out worlds)."""
    from visionrl.core.demo_teacher import HELDOUT_SEED, demo_pairs
    from visionrl.critic.data import drop_many_images
    from visionrl.critic.policy import load_policy_benchmark, parse_policy_data

    d = cfg.dataset
    policy_specs = parse_policy_data(d.policy_eval, "--dataset.policy-eval") if d.policy_eval else []
    splits = split_heldout(cfg.run.data, d, read=lambda src: read_items(cfg, src),
                           shapes_train=lambda n: _items(demo_pairs(SHAPES_RL_SEED, n), cfg.run.seed, cfg.gt_form),
                           shapes_heldout=lambda n: _items(demo_pairs(HELDOUT_SEED, n), cfg.run.seed, cfg.gt_form))
    train, dropped = drop_many_images([it.row for it in splits.train], d.max_images)
    if dropped:
        print(f"--dataset.max-images {d.max_images}: dropped {dropped} training rows with more images")
    policy: list[VQARecord] = []
    if policy_specs:
        name, source = policy_specs[0]
        policy = load_policy_benchmark(name, source, limit=len(splits.heldout))
    held = [HeldOut(it.row, it.mirror, policy[i] if i < len(policy) else None) for i, it in enumerate(splits.heldout)]
    return Splits(train, held)


def train_prompt(prefill: str = "") -> Any:
    """Record -> `Prompt`: the row's text split on `<image>` (EasyR1's layout), the chat template's default
    system prompt, and the prefill."""
    from visionrl.core.chat import Prompt
    from visionrl.critic.prompts import split_image_tokens

    def prompt_fn(row: VQARecord) -> Prompt:
        return Prompt(split_image_tokens(row.question, row.images), list(row.images), prefill=prefill)

    return prompt_fn


def build(cfg: TrainConfig, vlm: Any, splits: Splits) -> Method:
    from visionrl.critic.rewards import build_rewards

    prompt_fn = train_prompt(cfg.prefill)
    rewards = build_rewards(cfg.reward, format_weight=cfg.format_weight, prefill=cfg.prefill)
    return Method(train=splits.train, heldout=splits.heldout, evaluate=evaluator(cfg), benchmark=BENCHMARK,
                  prompt_fn=prompt_fn, rewards=rewards, heldout_prompt=lambda it: prompt_fn(it.row),
                  headline=HEADLINE)


def evaluator(cfg: TrainConfig):
    """Greedy held-out evaluation → per-item values of each metric (core averages them over ranks)."""
    from visionrl.core.rollout import SamplingParams, generate_texts
    from visionrl.critic.judging import parse_verdict
    from visionrl.critic.policy import is_correct, policy_prompts
    from visionrl.critic.rewards import critic_accuracy, rewards_of

    greedy = SamplingParams(do_sample=False, max_new_tokens=cfg.eval_max_new_tokens)
    gen = {"batch_size": cfg.eval_batch_size, "engine": cfg.grpo.engine}
    prompt_fn, prefill = train_prompt(cfg.prefill), cfg.prefill
    weight = 1.0 if cfg.reward == "format-only" else cfg.format_weight

    def evaluate(vlm: Any, items: Sequence[HeldOut]) -> dict[str, list[float]]:
        mirrored = [it for it in items if it.mirror is not None]
        rows = [it.row for it in items] + [it.mirror for it in mirrored]
        texts = generate_texts(vlm, [prompt_fn(r) for r in rows], greedy, **gen)  # type: ignore[arg-type]
        shown, other = texts[:len(items)], texts[len(items):]
        out = rewards_of(shown, [it.row.answer for it in items], weight, prefill)
        mirror_right = [critic_accuracy(prefill + t, it.mirror.answer) for t, it in zip(other, mirrored)]  # type: ignore[union-attr]
        shown_right = {id(it): a for it, a in zip(items, out["accuracy"])}
        out["both_orders_accuracy"] = [float(shown_right[id(it)] and m) for it, m in zip(mirrored, mirror_right)]
        positions = [parse_verdict(prefill + t) for t in texts]
        out["position1_rate"] = [float(p == 1) for p in positions if p is not None]
        out["unparsed"] = [float(p is None) for p in positions]
        asked = [it.policy for it in items if it.policy is not None]
        if asked:
            answers = generate_texts(vlm, policy_prompts(asked, prefill), greedy, **gen)
            out["policy_accuracy"] = [float(is_correct(prefill + t, q.answer, q.meta["answer_type"]))
                                      for t, q in zip(answers, asked)]
        return out

    return evaluate
