"""Prompt lengths, checked once at load time: an overlong prompt is refused naming its record (or dropped and
counted where a paper does that, EasyR1's `filter_overlong_prompts`), instead of a forward pass that tries
to allocate hundreds of GB mid-run.

Lengths are exact: the processor's token count of the rendered chat prompt, image tokens included (what the
model will see), computed in batches without running the model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal, NamedTuple, TypeVar

from visionrl.core.errors import UserError

T = TypeVar("T")
OverlongPolicy = Literal["error", "drop"]


def prompt_token_counts(vlm: Any, prompts: Sequence[Any], batch_size: int = 64) -> list[int]:
    """Tokens of each prompt as the model sees it (chat template, prefill and image tokens included)."""
    counts: list[int] = []
    for lo in range(0, len(prompts), batch_size):
        enc = vlm.encode(list(prompts[lo:lo + batch_size]))
        counts += enc["attention_mask"].sum(1).tolist()
    return counts


class LengthCheck(NamedTuple):
    """What `check_prompt_lengths` kept, how many it dropped, and the longest prompt seen (tokens)."""

    kept: list[Any]
    dropped: int
    longest: int


def check_prompt_lengths(vlm: Any, rows: Sequence[T], prompt_of: Callable[[T], Any], *, limit: int,
                         policy: OverlongPolicy = "error", what: str = "training data",
                         flag: str = "--max-prompt-tokens", batch_size: int = 64, reserve: int = 0) -> LengthCheck:
    """Rows whose prompt fits in `limit` tokens. `policy="error"` raises `UserError` naming the first overlong
    row (its `id` where it has one) and the flag; `"drop"` drops them and reports how many. `reserve` tokens are
    added to every count: text that joins the prompt later (e.g. generated answers a judge prompt will quote)."""
    counts = [n + reserve for n in prompt_token_counts(vlm, [prompt_of(r) for r in rows], batch_size)]
    over = [i for i, n in enumerate(counts) if n > limit]
    longest = max(counts, default=0)
    if over and policy == "error":
        i = over[0]
        name = getattr(rows[i], "id", None) or f"row {i + 1}"
        more = f" (and {len(over) - 1} more)" if len(over) > 1 else ""
        raise UserError(f"{flag} {limit}: {what} record {name!r} has a {counts[i]}-token prompt{more}; raise "
                        f"{flag}, shorten the prompt, or pass --overlong-prompts drop to skip such records")
    assert policy in ("error", "drop"), f"unknown overlong policy {policy!r}"
    skip = set(over)
    return LengthCheck([r for i, r in enumerate(rows) if i not in skip], len(over), longest)
