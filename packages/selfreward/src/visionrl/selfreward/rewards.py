"""Vision-SR1 rewards (official `see_think_selfReward.py`, `cot_val.py`, no-self-reward ablation).

Per pass-1 response:
    format   = 1 if the See-Think layout fullmatches after tag-space normalisation (`normalize_tags`)
    accuracy = grade_answer(extract_boxed(response), gt)               (mathruler semantics)
    visual   = grade_answer(extract_boxed(pass-2 answer), gt)          (self-visual reward, Eq. 3)
    overall  = (1 - w)·accuracy + w·format + visual,  w = 0.1          (the `sum` mode)

Departure (strict mode, the default): the description is read from the same normalised text as the
format, so a response with format 1 always hands pass 2 its description (the official extractor
reads the raw text and, for spaced tags such as `< / description >`, hands over the whole response).

The second pass is itself a reward: it asks the *current* policy, text only, to answer the question
from the pass-1 description (same sampling settings, one sample per response), batched, once per
step; the other rewards read its result from the shared context.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from visionrl.core.rewards import (
    cot_format,
    extract_boxed,
    extract_tag,
    grade_answer,
    pass2_format,
    see_think_format,
)
from visionrl.core.rewards.base import RewardContext
from visionrl.core.rewards.format import normalize_tags
from visionrl.core.rollout import Rollout, SamplingParams, generate_rollout
from visionrl.selfreward.prompts import self_reward_prompt


def extract_description(text: str, strict: bool = True) -> str:
    """The pass-1 visual description.

    Strict (default): the first `<description>…</description>` of `normalize_tags(text)`, the text
    the format reward checks, so spaced or newline-split tags (`< / description >`) are read wherever
    the format reward accepts them; the description comes from that text too (no spaces around
    `<`, `>`, `/`). Without tags it is empty and earns no visual reward.
    Official (`strict=False`): the raw text is searched, and without tags the WHOLE response becomes
    the description, boxed answer included, so the second pass can copy the answer (a leak).

    >>> extract_description("< description > a red circle < / description > <think>x</think> \\\\boxed{red}")
    'a red circle'
    >>> extract_description("\\\\boxed{red}", strict=False)
    '\\\\boxed{red}'
    >>> extract_description("\\\\boxed{red}")
    ''
    """
    if strict:
        return extract_tag(normalize_tags(text), "description") or ""
    found = extract_tag(text, "description")  # = re.search(r"<description>([\s\S]*?)</description>")
    return text.strip() if found is None else found


def accuracy(texts: Sequence[str], answers: Sequence[str]) -> list[float]:
    """1.0 when the last `\\boxed{}` grades equal to the ground truth."""
    return [float(grade_answer(extract_boxed(t), str(a))) for t, a in zip(texts, answers)]


def _answers(ctx: RewardContext) -> list[str]:
    return [str(getattr(r, "answer", "")) for r in ctx.rows]


def accuracy_reward(ctx: RewardContext) -> list[float]:
    return accuracy(ctx.completions, _answers(ctx))


def see_think_format_reward(ctx: RewardContext) -> list[float]:
    return [see_think_format(t) for t in ctx.completions]


def cot_format_reward(ctx: RewardContext) -> list[float]:
    return [cot_format(t) for t in ctx.completions]


class SecondPass:
    """Runs pass 2 once per rollout step and caches it in `ctx.extras["pass2"]`."""

    def __init__(self, strict_description: bool = True, batch_size: int = 64, engine: str = "hf"):
        self.strict, self.batch_size, self.engine = strict_description, batch_size, engine

    def __call__(self, ctx: RewardContext) -> Rollout:
        if "pass2" in ctx.extras:
            return ctx.extras["pass2"]
        assert ctx.policy is not None, "the self-visual reward needs the policy in the reward context"
        descriptions = [extract_description(t, self.strict) for t in ctx.completions]
        prompts = [self_reward_prompt(d, q) for d, q in zip(descriptions, ctx.prompts)]
        sampling = ctx.sampling or SamplingParams()
        start = time.perf_counter()
        rollout = generate_rollout(ctx.policy, prompts, list(ctx.rows), num_generations=1, sampling=sampling,
                                   engine=self.engine, batch_size=self.batch_size)
        rollout.group_ids_N = rollout.group_ids_N.new_tensor(list(ctx.group_ids))  # pass-1 groups
        seconds = time.perf_counter() - start
        ctx.extras["pass2"] = rollout
        ctx.extras["descriptions"] = descriptions
        tokens = float(rollout.lengths_N.sum())
        ctx.extras.setdefault("metrics", {}).update({
            "perf/pass2_s": seconds, "perf/pass2_tokens_per_s": tokens / max(seconds, 1e-9),
            "train/pass2/mean_length": tokens / max(1, len(rollout)),
            "train/description_missing": sum(not d for d in descriptions) / max(1, len(descriptions)),
        })
        return rollout


def visual_reward_fn(second_pass: SecondPass):
    """Self-visual reward: the pass-2 answer (from the description alone) is correct."""

    def visual(ctx: RewardContext) -> list[float]:
        rollout = second_pass(ctx)
        scores = accuracy(rollout.texts, _answers(ctx))
        if second_pass.strict:  # no description, no visual reward
            scores = [s if d else 0.0 for s, d in zip(scores, ctx.extras["descriptions"])]
        return scores

    return visual


def description_format_fn(second_pass: SecondPass):
    """Format of the pass-2 answer (`<think>…</think> \\boxed{}`); logged, never rewarded."""

    def description_format(ctx: RewardContext) -> list[float]:
        return [pass2_format(t) for t in second_pass(ctx).texts]

    return description_format
