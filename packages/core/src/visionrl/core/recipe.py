"""The recipe contract: what a paper package tells core's runner, and nothing more.

A paper package's `method.py` returns a `Recipe`: names for the model card and checkpoints, how to read its
data (called before the model loads, so a bad row fails in seconds, not after a 7B load) and how to build
its `Method` once the policy has loaded (prompts, named rewards, an optional advantage function, held-out
evaluation, extra callbacks). `visionrl.core.runner.train` does the rest: policy, held-out split, module,
trainer steps, periodic evaluation, export, card, metrics, push.

Torch-free: imported while parsing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from visionrl.core.errors import UserError

if TYPE_CHECKING:
    from visionrl.core.config import DataArgs
    from visionrl.core.vlm.model import VLM

SHAPES = "shapes"
SHAPES_RL_SEED = 3
"""The shapes world RL prompts come from, apart from the demo model's SFT (1) and held-out (2) worlds."""


@dataclass
class Splits:
    """Training records and the fixed held-out set evaluated before and after training."""

    train: list[Any]
    heldout: list[Any]


@dataclass
class Method:
    """What is paper-specific about one training run (built once the policy has loaded).

    Which fields a run reads depends on its algorithm config (`runner.MODULES`): GRPO needs `prompt_fn` and
    `rewards`; SFT trains on `train` = `SFTExample`s; DPO and reward models on `train` = `PairRecord`s.
    """

    train: Sequence[Any]
    """The rows the module trains on: records (GRPO), `SFTExample`s (SFT), `PairRecord`s (DPO, reward model)."""
    heldout: Sequence[Any] = ()
    """Records handed to `evaluate` (before, every `--eval-every` steps, after)."""
    evaluate: Callable[[Any, Sequence[Any]], dict[str, list[float]]] | None = None
    """(vlm, records) -> per-record values of each metric; core shards it over ranks and averages."""
    benchmark: str = "heldout"
    """Name of the held-out set in TensorBoard tags: `eval/<benchmark>/<metric>`."""
    prompt_fn: Callable[[Any], Any] | None = None
    """Record -> `Prompt` (GRPO; DPO and reward models default to the pair's images + prompt)."""
    rewards: Sequence[Any] = ()
    """`NamedReward`s (GRPO): logged under `train/rewards/<name>/mean`, summed with their weights."""
    advantage_fn: Callable[..., Any] | None = None
    """GRPO: (rollout, rewards, ctx, cfg) -> (rows, advantages); None = z-score of the weighted sum."""
    callbacks: Sequence[Any] = ()
    """Extra Lightning callbacks (core already adds checkpointing, pre-emption and periodic evaluation)."""
    heldout_prompt: Callable[[Any], Any] | None = None
    """The prompt `evaluate` shows for a held-out record (checked against `--max-prompt-tokens`; None: not
    checked)."""
    headline: Sequence[str] = ()
    """Held-out metrics the console shows before → after (empty: all)."""


@dataclass
class Recipe:
    """A paper package's training run, as core's runner needs it."""

    cli: str
    """The console script (recorded in checkpoints; `--resume` refuses another CLI's checkpoint)."""
    method: str
    """What the model card and checkpoints call the method, e.g. "Vision-SR1 GRPO (sum)"."""
    paper: str
    """arXiv id, e.g. "2508.19652"."""
    data: Callable[[], Splits]
    """Reads training and held-out records; called before the model loads."""
    build: Callable[[VLM, Splits], Method]
    """Builds the method around the loaded policy."""
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    """Method settings shown on the model card (the algorithm's own are added by the runner)."""


def split_heldout(data: str, args: DataArgs, *, read: Callable[[str], list[Any]],
                  shapes_train: Callable[[int], list[Any]], shapes_heldout: Callable[[int], list[Any]]) -> Splits:
    """Training and held-out records: `--dataset.eval-data` when given, else a separate held-out shapes world
    (`--data shapes`) or the last `eval_size` records of `--data`; then `--dataset.limit` (shapes too)."""
    train = shapes_train(args.shapes_train_size) if data == SHAPES else read(data)
    if args.eval_data:
        held = read(args.eval_data)[: args.eval_size]
    elif data == SHAPES:
        held = shapes_heldout(args.eval_size)
    else:
        if len(train) <= args.eval_size:
            raise UserError(f"--data {data} has {len(train)} records, not more than --dataset.eval-size "
                            f"{args.eval_size}; pass --dataset.eval-data or a smaller --dataset.eval-size")
        train, held = train[: len(train) - args.eval_size], train[len(train) - args.eval_size:]
    return Splits(train[: args.limit] if args.limit else train, held)
