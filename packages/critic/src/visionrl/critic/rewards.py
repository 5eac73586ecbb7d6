"""LLaVA-Critic-R1 reward (EasyR1 `examples/reward_function/math.py`, unchanged in both official repos).

Per completion, after deleting whitespace around `<`, `>` and `/` (`normalize_tag_spaces`):
    format   = 1 if `<think>.*</think>.*\\boxed{.*}.*` fullmatches (greedy, DOTALL; trailing text allowed)
    accuracy = grade_answer(extract_boxed(text), gt)        (mathruler 0.1.0: the last box, brace-matched)
    overall  = (1 - w)·accuracy + w·format,  w = 0.1         (the paper's r_pref + r_format)

Both are named core rewards (`accuracy`, `format`), logged as `train/rewards/<name>/mean` and summed with
their weights by core's GRPO module. `format-only` is the paper's format-only RFT ablation (Table 5):
accuracy is still logged, with weight 0.

With an assistant prefill (MiMo's `<think>`), the prefill is part of what the model "said", so both
rewards read prefill + completion (the completion alone never starts with `<think>`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from visionrl.core.rewards import extract_boxed, grade_answer, math_format, normalize_tag_spaces
from visionrl.core.rewards.base import NamedReward, RewardContext


def critic_accuracy(text: str, gt: str) -> float:
    r"""1.0 when the last `\boxed{}` of the tag-normalised text grades equal to the ground truth.

    >>> critic_accuracy(r"<think>2 is wrong</think> \boxed{1}", "1"), critic_accuracy(r"\boxed{Answer 1}", "1")
    (1.0, 0.0)
    """
    return float(grade_answer(extract_boxed(normalize_tag_spaces(text)), str(gt)))


def critic_reward(text: str, gt: str, format_weight: float = 0.1) -> float:
    r"""EasyR1's `overall`: (1 - w)·accuracy + w·format.

    >>> critic_reward(r"<think> 1 misses the cup </think> so \boxed{2}.", "2")
    1.0
    >>> round(critic_reward(r"\boxed{2}", "2"), 2), round(critic_reward(r"<think>x</think>\boxed{1}", "2"), 2)
    (0.9, 0.1)
    """
    return (1 - format_weight) * critic_accuracy(text, gt) + format_weight * math_format(text)


def _answers(ctx: RewardContext) -> list[str]:
    return [str(getattr(r, "answer", "")) for r in ctx.rows]


def accuracy_reward(prefill: str = "") -> Callable[[RewardContext], list[float]]:
    def accuracy(ctx: RewardContext) -> list[float]:
        return [critic_accuracy(prefill + t, a) for t, a in zip(ctx.completions, _answers(ctx))]

    return accuracy


def format_reward(prefill: str = "") -> Callable[[RewardContext], list[float]]:
    def fmt(ctx: RewardContext) -> list[float]:
        return [math_format(prefill + t) for t in ctx.completions]

    return fmt


def _critic(format_weight: float, prefill: str) -> list[NamedReward]:
    return [NamedReward("accuracy", accuracy_reward(prefill), 1 - format_weight),
            NamedReward("format", format_reward(prefill), format_weight)]


def _format_only(format_weight: float, prefill: str) -> list[NamedReward]:
    del format_weight  # the ablation rewards the template alone
    return [NamedReward("accuracy", accuracy_reward(prefill), 0.0), NamedReward("format", format_reward(prefill), 1.0)]


REWARDS: dict[str, Callable[[float, str], list[NamedReward]]] = {"critic": _critic, "format-only": _format_only}
"""`--reward` name -> the named rewards it trains with (the names `config.REWARD_NAMES` lists)."""


def build_rewards(name: str, *, format_weight: float = 0.1, prefill: str = "") -> list[NamedReward]:
    """The named, weighted rewards of `--reward NAME`."""
    assert name in REWARDS, f"unknown reward {name!r}; choose one of {', '.join(REWARDS)}"
    return REWARDS[name](format_weight, prefill)


def rewards_of(texts: Sequence[str], answers: Sequence[str], format_weight: float = 0.1,
               prefill: str = "") -> dict[str, list[float]]:
    """Per-text accuracy, format and overall reward (the held-out evaluation's numbers)."""
    acc = [critic_accuracy(prefill + t, a) for t, a in zip(texts, answers)]
    fmt = [math_format(prefill + t) for t in texts]
    return {"accuracy": acc, "format": fmt, "reward": [(1 - format_weight) * a + format_weight * f
                                                      for a, f in zip(acc, fmt)]}
