"""Reward plug-ins: a reward model (or a pairwise judge) as one more GRPO reward, chosen by flags.

Every GRPO config nests `RewardModelArgs` flat (`Annotated[RewardModelArgs, tyro.conf.OmitArgPrefixes]`,
field `reward`), so any GRPO CLI takes

    --reward-model PATH --reward-mode rm|hybrid|pairwise_sum [--reward-weight W]

and core's runner appends the plug-in's `NamedReward` (named after the mode) to the method's rewards. A mode is
the name of a Python entry point of group `visionrl.rewards` whose object is a factory
`factory(args, policy_vlm) -> NamedReward` (it may also have `check(args)`, run before any model loads), so
core never imports the package that provides a mode:

| mode           | provided by            | reward of one completion                                        |
|----------------|------------------------|-----------------------------------------------------------------|
| `rm`           | `visionrl-rewardmodel` | the reward model's raw score                                     |
| `hybrid`       | `visionrl-rewardmodel` | 1 if the answer matches the ground truth, else σ(score)          |
| `pairwise_sum` | core (this module)     | share of wins over the G(G−1) ordered pairs of its group, judged |

`pairwise_sum` is BaseReward's R1-Reward baseline (arXiv:2509.16127 §5.4, R(y_i) = Σ_{j≠i} S(y_i, y_j) over
the 56 ordered pairs of 8 rollouts): PATH is any model prompted with core's `PAIRWISE_JUDGE_PROMPT` through a
`GenerativeJudge`, its last `[[A]]`/`[[B]]` read by `parse_bracket_verdict`. Departures, numbered:

1. The sum is divided by the 2(G−1) comparisons a completion takes part in, so the reward is its share of
   wins in [0, 1] whatever G (the sum's scale grows with G); an unparsed verdict is a win for neither side.
2. The judge sees the row's images and question text, not the policy's full prompt (which carries the
   policy's output-format instruction).

Torch-free at import: configs import `RewardModelArgs` while parsing.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Annotated, Any, ClassVar, Literal

import tyro
from visionrl.core.checks import NON_NEGATIVE, POSITIVE, Checked, Range
from visionrl.core.errors import UserError
from visionrl.core.rewards.base import NamedReward, RewardContext

GROUP = "visionrl.rewards"
RewardMode = Literal["rm", "hybrid", "pairwise_sum"]
PROVIDERS = {"rm": "visionrl-rewardmodel", "hybrid": "visionrl-rewardmodel", "pairwise_sum": "visionrl-core"}
"""Which distribution registers each mode (for the error message when it is not installed)."""


@dataclass(frozen=True)
class RewardModelArgs(Checked):
    """A reward model (or pairwise judge) as an extra GRPO reward (off unless --reward-model is given)."""

    RANGES: ClassVar[dict[str, Range]] = {"reward_weight": NON_NEGATIVE, "reward_batch_size": POSITIVE,
                                          "reward_max_new_tokens": POSITIVE}

    reward_model: str | None = None
    """--reward-model PATH: a reward-model folder (`rm`, `hybrid`: with reward_head.json) or a judge model
    (`pairwise_sum`: a local folder or hub id); None = no plug-in reward."""
    reward_mode: RewardMode = "hybrid"
    """rm (raw score), hybrid (1 if the answer matches the ground truth, else σ(score)), or pairwise_sum
    (share of wins over all ordered pairs of a group, judged by the model at --reward-model)."""
    reward_weight: float = 1.0
    """Weight of the plug-in reward in the GRPO total (>= 0)."""
    reward_batch_size: int = 16
    """Sequences per reward-model forward (rm, hybrid) or prompts per judge generate call (pairwise_sum)."""
    reward_max_new_tokens: int = 256
    """Greedy verdict budget of the pairwise judge (pairwise_sum only)."""


FlatRewardModelArgs = Annotated[RewardModelArgs, tyro.conf.OmitArgPrefixes]
"""Nest as `reward: FlatRewardModelArgs = field(default_factory=RewardModelArgs)` in a GRPO TrainConfig: the
flags stay flat (`--reward-model`, not `--reward.reward-model`)."""
Factory = Callable[[RewardModelArgs, Any], NamedReward]


def find_plugin(mode: str) -> Factory:
    """The factory registered for `mode` under the `visionrl.rewards` entry points; `UserError` naming
    `--reward-mode` when no installed package provides it."""
    found = [ep for ep in metadata.entry_points(group=GROUP) if ep.name == mode]
    if not found:
        installed = sorted({ep.name for ep in metadata.entry_points(group=GROUP)})
        provider = PROVIDERS.get(mode, "a package registering it")
        raise UserError(f"--reward-mode {mode}: no installed package provides this reward (install {provider}; "
                        f"installed modes: {', '.join(installed) or 'none'})")
    return found[0].load()


def check_reward_args(args: RewardModelArgs | None) -> None:
    """Cheap checks before any model loads: the mode is installed, the path looks like a model, and the
    mode's own `check(args)` (e.g. a reward model needs reward_head.json)."""
    if args is None or args.reward_model is None:
        return
    from visionrl.core.evaluation.models import check_model_source

    factory = find_plugin(args.reward_mode)
    check_model_source(args.reward_model, "--reward-model")
    check = getattr(factory, "check", None)
    if check is not None:
        check(args)


def load_reward_plugin(args: RewardModelArgs, policy_vlm: Any) -> NamedReward:
    """The plug-in reward `args` describe, named after its mode and weighted by `--reward-weight`."""
    assert args.reward_model is not None, "load_reward_plugin needs --reward-model"
    check_reward_args(args)
    reward = find_plugin(args.reward_mode)(args, policy_vlm)
    return NamedReward(args.reward_mode, reward.fn, args.reward_weight)


# ---- pairwise_sum (core's own mode) -----------------------------------------------------------------
def ordered_pairs(group_ids: Sequence[int]) -> list[tuple[int, int]]:
    """Every ordered pair (i, j), i ≠ j, of completions in the same group: G(G−1) per group.

    >>> ordered_pairs([0, 0, 1, 1, 1])[:3], len(ordered_pairs([0, 0, 1, 1, 1]))
    ([(0, 1), (1, 0), (2, 3)], 8)
    """
    members: dict[int, list[int]] = {}
    for i, g in enumerate(group_ids):
        members.setdefault(g, []).append(i)
    return [p for idx in members.values() for p in itertools.permutations(idx, 2)]


def win_shares(n: int, pairs: Sequence[tuple[int, int]], verdicts: Sequence[str | None]) -> list[float]:
    """Each completion's share of wins: pair (i, j) shows i as A and j as B; "A" is a win for i, "B" for j.

    >>> win_shares(3, [(0, 1), (1, 0), (0, 2), (2, 0), (1, 2), (2, 1)], ["A", "B", "A", None, "B", "A"])
    [0.75, 0.0, 0.5]
    """
    wins, games = [0.0] * n, [0] * n
    for (i, j), v in zip(pairs, verdicts, strict=True):
        games[i] += 1
        games[j] += 1
        if v == "A":
            wins[i] += 1
        elif v == "B":
            wins[j] += 1
    return [w / g if g else 0.0 for w, g in zip(wins, games)]


def _pairwise_sum(args: RewardModelArgs, policy_vlm: Any) -> NamedReward:
    from visionrl.core.chat import IMAGE, Prompt
    from visionrl.core.evaluation.judges import GenerativeJudge
    from visionrl.core.evaluation.models import eval_model
    from visionrl.core.evaluation.pairwise_verdicts import parse_bracket_verdict
    from visionrl.core.hparams import SamplingParams
    from visionrl.core.prompts import judge_prompt

    assert args.reward_model is not None
    vlm = eval_model(args.reward_model, flag="--reward-model")

    def render(item: tuple[Any, str, str, str]) -> Prompt:
        row, question, a, b = item
        images = list(getattr(row, "images", []) or [])
        return Prompt([*([IMAGE] * len(images)), judge_prompt(question, a, b)], images)

    judge = GenerativeJudge(vlm, name=args.reward_model, render=render,
                            parse=lambda text, item: parse_bracket_verdict(text),
                            sampling=SamplingParams(do_sample=False, max_new_tokens=args.reward_max_new_tokens),
                            batch_size=args.reward_batch_size)

    def pairwise_sum(ctx: RewardContext) -> list[float]:
        if ctx.policy is not None:  # the Trainer moves the policy after the plug-in loads: follow it
            vlm.model.to(next(ctx.policy.model.parameters()).device)
        pairs = ordered_pairs(ctx.group_ids)
        items = [(ctx.rows[i], ctx.prompts[i], ctx.completions[i], ctx.completions[j]) for i, j in pairs]
        return win_shares(len(ctx.completions), pairs, judge(items))

    return NamedReward("pairwise_sum", pairwise_sum)


def pairwise_sum_plugin(args: RewardModelArgs, policy_vlm: Any) -> NamedReward:
    """Entry point `pairwise_sum` of group `visionrl.rewards` (registered by visionrl-core)."""
    return _pairwise_sum(args, policy_vlm)
