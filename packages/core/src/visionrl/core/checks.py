"""Range checks that live with the config: each frozen dataclass declares its own, core walks them once.

A config dataclass lists the allowed range of its numeric fields in a class-level `RANGES` dict and, for
rules that tie several fields together, a `problems()` method yielding `(field, message)`. `check_config`
walks a parsed config tree, prefixes each field with its flag path (`--grpo.optim.max-grad-norm`; a field
nested with `tyro.conf.OmitArgPrefixes` keeps its flat name, `--max-steps`) and raises `UserError` for the
first problem. `parse_config` runs it right after parsing, so a bad value exits 2 before anything loads.

Every float field is also required to be finite (NaN and ±inf pass no range and make no sense as a
hyper-parameter), also inside tuples, unless its range says otherwise.

Torch-free, like every config module: `--help` and argument parsing stay fast.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from visionrl.core.errors import UserError


@dataclass(frozen=True)
class Range:
    """An interval of allowed values: `lo`/`hi` (None = unbounded), each end open or closed.

    >>> Range(0, 1, lo_open=True).problem(0.0)
    'must be in (0, 1]'
    >>> Range(0).problem(3) is None
    True
    """

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    allow_inf: bool = False

    def problem(self, value: float) -> str | None:
        """Why `value` is outside the range, or None."""
        if isinstance(value, float) and (math.isnan(value) or (math.isinf(value) and not self.allow_inf)):
            return f"must be a finite number{self._suffix()}"
        below = self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo)
        above = self.hi is not None and (value >= self.hi if self.hi_open else value > self.hi)
        return f"must be {self.describe()}" if below or above else None

    def describe(self) -> str:
        if self.hi is None:
            if self.lo is None:
                return "a number"
            return f"{'>' if self.lo_open else '>='} {_num(self.lo)}"
        if self.lo is None:
            return f"{'<' if self.hi_open else '<='} {_num(self.hi)}"
        return f"in {'(' if self.lo_open else '['}{_num(self.lo)}, {_num(self.hi)}{')' if self.hi_open else ']'}"

    def _suffix(self) -> str:
        return "" if self.lo is None and self.hi is None else f" {self.describe()}"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


POSITIVE = Range(0, lo_open=True)
NON_NEGATIVE = Range(0)
UNIT = Range(0, 1)
"""[0, 1]: weights and ratios."""
PROBABILITY_OPEN = Range(0, 1, lo_open=True)
"""(0, 1]: nucleus mass."""
HALF_OPEN_UNIT = Range(0, 1, hi_open=True)
"""[0, 1): PPO clip ε_low, Adam β, dropout."""
FINITE = Range()


class Checked:
    """Mixin for config dataclasses: `RANGES` maps field names to their `Range`; override `problems()`
    for rules across fields. None (an optional field left unset) is always allowed."""

    RANGES: typing.ClassVar[dict[str, Range]] = {}

    def problems(self) -> Iterator[tuple[str, str]]:
        """(field name, what is wrong) for rules that a per-field range cannot say."""
        return iter(())


def check_config(cfg: Any) -> None:
    """Raise `UserError` naming the flag of the first out-of-range value in the config tree `cfg`."""
    for flag, value, message in config_problems(cfg):
        shown = " ".join(_show(v) for v in value) if isinstance(value, tuple) else _show(value)
        raise UserError(f"{flag} {shown}: {message}.")


def config_problems(cfg: Any, prefix: str = "--") -> Iterator[tuple[str, Any, str]]:
    """(flag, value, message) for every problem in the config tree, in field order."""
    assert dataclasses.is_dataclass(cfg), f"{type(cfg).__name__} is not a config dataclass"
    hints = typing.get_type_hints(type(cfg), include_extras=True)
    ranges = getattr(cfg, "RANGES", {})
    assert set(ranges) <= {f.name for f in dataclasses.fields(cfg)}, (
        f"{type(cfg).__name__}.RANGES names fields it does not have: {set(ranges) - {f.name for f in dataclasses.fields(cfg)}}"
    )
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        flag = f"{prefix}{f.name.replace('_', '-')}"
        if dataclasses.is_dataclass(value):
            yield from config_problems(value, "--" if _flat(hints.get(f.name)) else f"{flag}.")
            continue
        rng = ranges.get(f.name, FINITE)
        for item in value if isinstance(value, tuple) else (value,):
            if isinstance(item, bool) or not isinstance(item, int | float):
                continue
            problem = rng.problem(item)
            if problem:
                yield flag, value, problem
                break
    if isinstance(cfg, Checked):
        for name, message in cfg.problems():
            yield f"{prefix}{name.replace('_', '-')}", getattr(cfg, name), message


def _flat(hint: Any) -> bool:
    """True when the field is nested with `tyro.conf.OmitArgPrefixes` (its flags keep their bare names)."""
    import tyro

    return typing.get_origin(hint) is typing.Annotated and any(
        m is tyro.conf.OmitArgPrefixes for m in getattr(hint, "__metadata__", ())
    )


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)
