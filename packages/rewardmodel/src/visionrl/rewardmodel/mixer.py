"""The data mixer: several preference sources, each capped and weighted, into one shuffled training list.

A source is a stream of `PairRecord`s (`sources.open_source`); its cap stops the stream after N pairs (MMPR's
2M pairs are never read past the cap), its weight W then keeps W times what was read (W < 1 a seeded subset,
W > 1 repeats, as InternVL's `repeat_time`). Text-only pairs are ordinary pairs without images. Without caps
and weights the mix is every pair of every source, shuffled (the paper's "use all pairs" [R]).

Specs are `SOURCE=VALUE` strings (`--dataset.caps mmpr=100000 rlaif-v=5000`), checked at parse time.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from visionrl.core.data.records import PairRecord
from visionrl.core.errors import UserError


def spec_problems(items: Sequence[str], name: str, *, integer: bool) -> Iterator[tuple[str, str]]:
    """(field, message) for each malformed or negative `SOURCE=VALUE` entry (a `Checked.problems` helper).

    >>> list(spec_problems(("mmpr=-5",), "caps", integer=True))
    [('caps', 'mmpr must be >= 0')]
    """
    kind = "a whole number" if integer else "a number"
    for item in items:
        source, sep, value = item.partition("=")
        if not sep or not source.strip():
            yield name, f"{item!r} is not SOURCE=VALUE"
            continue
        try:
            number = int(value) if integer else float(value)
        except ValueError:
            yield name, f"{source.strip()} must be {kind}"
            continue
        if not number >= 0:  # also NaN
            yield name, f"{source.strip()} must be >= 0"


def parse_spec(items: Sequence[str], *, integer: bool) -> dict[str, float]:
    """`("a=1", "b=2")` → {"a": 1, "b": 2} (entries were checked by `spec_problems`)."""
    return {s.split("=", 1)[0].strip(): (int if integer else float)(s.split("=", 1)[1]) for s in items}


@dataclass
class MixReport:
    """How many pairs each source gave: read (after its cap) and kept (after its weight)."""

    read: dict[str, int]
    kept: dict[str, int]


def weigh(pairs: list[PairRecord], weight: float, rng: random.Random) -> list[PairRecord]:
    """`weight` × the pairs: whole repeats, then a seeded subset for the fraction.

    >>> rows = [PairRecord(str(i), [], "q", "a", "b") for i in range(4)]
    >>> [len(weigh(rows, w, random.Random(0))) for w in (0, 0.5, 1, 2.25)]
    [0, 2, 4, 9]
    """
    whole, frac = int(weight), weight - int(weight)
    return pairs * whole + rng.sample(pairs, round(frac * len(pairs)))


def mix(streams: Iterable[tuple[str, Iterable[PairRecord]]], *, caps: dict[str, float] | None = None,
        weights: dict[str, float] | None = None, seed: int = 0) -> tuple[list[PairRecord], MixReport]:
    """Read each stream up to its cap, weigh it, then shuffle everything together (seeded)."""
    caps, weights = caps or {}, weights or {}
    streams = list(streams)
    names = [n for n, _ in streams]
    unknown = sorted((set(caps) | set(weights)) - set(names))
    if unknown:
        flag = "--dataset.caps" if set(unknown) & set(caps) else "--dataset.weights"
        raise UserError(f"{flag}: {', '.join(unknown)} is not a source of --data ({', '.join(names)})")
    rng = random.Random(seed)
    out: list[PairRecord] = []
    report = MixReport({}, {})
    for name, stream in streams:
        cap = caps.get(name)
        pairs = list(itertools.islice(stream, int(cap)) if cap is not None else stream)
        kept = weigh(pairs, weights.get(name, 1.0), rng)
        report.read[name], report.kept[name] = len(pairs), len(kept)
        out += kept
    rng.shuffle(out)
    return out, report


def uniform_sample(streams: Iterable[tuple[str, Iterable[PairRecord]]], n: int, *, caps: dict[str, float] | None = None,
                   seed: int = 0) -> list[PairRecord]:
    """`n` pairs sampled uniformly from each source in turn (n / S per source; reservoir sampling over each
    source's capped stream), for the validation set of weighted ensembles."""
    caps = caps or {}
    streams = list(streams)
    share = [n // len(streams) + (i < n % len(streams)) for i in range(len(streams))]
    rng = random.Random(seed)
    out: list[PairRecord] = []
    for (name, stream), k in zip(streams, share):
        cap = caps.get(name)
        reservoir: list[PairRecord] = []
        for i, pair in enumerate(itertools.islice(stream, int(cap)) if cap is not None else stream):
            if i < k:
                reservoir.append(pair)
            elif (j := rng.randint(0, i)) < k:
                reservoir[j] = pair
        out += reservoir
    return out
