"""The reward interface: a reward is `fn(ctx) -> list[float]`, one value per completion."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class RewardContext:
    """What a reward sees for one rollout batch of N = B·G completions.

    Attributes:
        prompts: the user-facing question text of each completion's prompt (length N).
        completions: decoded completions (length N, special tokens skipped).
        rows: the dataset record behind each completion (length N; repeated G times per prompt).
        group_ids: prompt-group index of each completion (length N).
        policy: handle to the current policy (a `visionrl.core.vlm.VLM`) for rewards that must
            generate, e.g. Vision-SR1's second pass. None in pure unit tests.
        sampling: the sampling settings of the rollout (temperature, top_p, ...), so a reward that
            generates can reuse them.
        extras: a scratch dict where a reward may leave by-products (texts, token ids, timings)
            for the training loop to log or optimise.
    """

    prompts: Sequence[str]
    completions: Sequence[str]
    rows: Sequence[Any]
    group_ids: Sequence[int]
    policy: Any | None = None
    sampling: Any | None = None
    extras: dict[str, Any] = field(default_factory=dict)


RewardFn = Callable[[RewardContext], list[float]]


@dataclass(frozen=True)
class NamedReward:
    """A reward function with the name it is logged under and its weight in the total."""

    name: str
    fn: RewardFn
    weight: float = 1.0
