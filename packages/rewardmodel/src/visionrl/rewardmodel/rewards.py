"""BaseReward as an RL reward (arXiv 2509.16127 §5.4), registered as the `visionrl.rewards` plug-ins `rm` and
`hybrid`, so any GRPO CLI takes `--reward-model PATH --reward-mode rm|hybrid` (core's `rewards.plugins`):

    rm:      R(y) = r(x, y), the reward model's raw score
    hybrid:  R(y) = 1 if y's answer matches the ground truth, else σ(r(x, y))   (the paper's best, "BaseReward + Rule")

The answer of a row with options (MCQ) is the option letter the completion commits to (`grade_mcq`); otherwise
the last `\\boxed{}` graded against the row's `answer` (`grade_answer`, mathruler semantics). A row without a
ground truth always gets σ(score). The reward model sees a plain chat: the row's images and question (with
its options, one per line) as the user turn and the whole completion as the answer. Each GRPO process
(DDP rank) loads its own copy of the reward model and moves it to the device its policy is on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from visionrl.core.rewards.base import NamedReward, RewardContext
from visionrl.core.rewards.plugins import RewardModelArgs


def ground_truth_match(completion: str, row: Any) -> bool | None:
    """Whether `completion` answers `row` right: None when the row has no ground truth.

    >>> from visionrl.core.data.records import MCQRecord, VQARecord
    >>> ground_truth_match("<think>..</think> \\\\boxed{red}", VQARecord("1", [], "q", "red"))
    True
    >>> ground_truth_match("<answer>B</answer>", MCQRecord("2", [], "q", {"A": "x", "B": "y"}, "A"))
    False
    >>> ground_truth_match("anything", object()) is None
    True
    """
    from visionrl.core.rewards import extract_boxed, grade_answer, grade_mcq

    answer = getattr(row, "answer", None)
    if answer is None or not str(answer).strip():
        return None
    if getattr(row, "options", None):
        return grade_mcq(completion, str(answer))
    return grade_answer(extract_boxed(completion), str(answer))


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def hybrid_values(matches: Sequence[bool | None], scores: Sequence[float]) -> list[float]:
    """1 where the answer matches the ground truth, σ(score) elsewhere.

    >>> hybrid_values([True, False, None], [-3.0, 0.0, 2.0])
    [1.0, 0.5, 0.8807970779778823]
    """
    return [1.0 if m else sigmoid(s) for m, s in zip(matches, scores, strict=True)]


def rm_question(row: Any, question: str) -> str:
    """The user turn the reward model reads: the question, and an MCQ row's options one per line."""
    options = getattr(row, "options", None) or {}
    return "\n".join([question.strip(), *(f"{k}. {v}" for k, v in options.items())])


class RMScores:
    """Scores of a rollout's completions by the reward model at `args.reward_model`, on the policy's device."""

    def __init__(self, args: RewardModelArgs, policy_vlm: Any):
        from visionrl.core.lit.reward_scorer import load_reward_model

        assert args.reward_model is not None
        self.scorer = load_reward_model(args.reward_model, flag="--reward-model")
        self.batch_size = args.reward_batch_size

    def __call__(self, ctx: RewardContext) -> list[float]:
        from visionrl.core.chat import Prompt
        from visionrl.rewardmodel.images import load_image

        if ctx.policy is not None:  # the Trainer moves the policy after the plug-in loads: follow it
            device = next(ctx.policy.model.parameters()).device
            if device != self.scorer.device:
                self.scorer.to(device)
        prompts = [Prompt.simple(rm_question(row, q), [load_image(im) for im in getattr(row, "images", []) or []])
                   for row, q in zip(ctx.rows, ctx.prompts)]
        return self.scorer.score(prompts, list(ctx.completions), batch_size=self.batch_size).tolist()


def check(args: RewardModelArgs) -> None:
    """Before any model loads: --reward-model must be a reward-model folder (with reward_head.json)."""
    from visionrl.core.lit.reward_scorer import read_head_spec

    assert args.reward_model is not None
    read_head_spec(args.reward_model, "--reward-model")


def rm_plugin(args: RewardModelArgs, policy_vlm: Any) -> NamedReward:
    """Entry point `rm`: the raw score."""
    return NamedReward("rm", RMScores(args, policy_vlm), args.reward_weight)


def hybrid_plugin(args: RewardModelArgs, policy_vlm: Any) -> NamedReward:
    """Entry point `hybrid`: 1 for a right answer, else σ(score)."""
    scores = RMScores(args, policy_vlm)

    def hybrid(ctx: RewardContext) -> list[float]:
        return hybrid_values([ground_truth_match(c, r) for c, r in zip(ctx.completions, ctx.rows)], scores(ctx))

    return NamedReward("hybrid", hybrid, args.reward_weight)


rm_plugin.check = check  # type: ignore[attr-defined]
hybrid_plugin.check = check  # type: ignore[attr-defined]
