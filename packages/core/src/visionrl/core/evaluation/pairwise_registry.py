"""The registry of pairwise benchmarks: each one's loader (`pairwise.py`), scorer (`pairwise_scoring.py`) and
default hub id, and the `--benchmarks`-style spec parser the critic, judge and rewardmodel CLIs share."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from visionrl.core.data.records import PairRecord
from visionrl.core.errors import UserError
from visionrl.core.evaluation.pairwise import (
    MMRLHF_HUB_ID,
    VLRB_HUB_ID,
    load_mmrb,
    load_mmrlhf,
    load_vlrewardbench,
)
from visionrl.core.evaluation.pairwise_scoring import Outcome, score_mmrb, score_mmrlhf, score_vlrewardbench


@dataclass(frozen=True)
class PairwiseBenchmark:
    """One pairwise benchmark: how to load its records and score per-item outcomes on them."""

    name: str
    title: str
    hub_id: str | None
    """Default source when none is given; None when the benchmark must be built locally."""
    load: Callable[..., list[PairRecord]]
    """`load(source=None, *, limit=None, seed=0, image_root=None, max_pixels=..., resize_large=False)`."""
    score: Callable[[Sequence[PairRecord], Sequence[Outcome]], dict[str, float]]
    """`score(records, outcomes) -> {metric: value}`, metric names for `eval/<name>/<metric>`."""


PAIRWISE_BENCHMARKS: dict[str, PairwiseBenchmark] = {
    b.name: b
    for b in (
        PairwiseBenchmark(
            "vlrewardbench", "VL-RewardBench", VLRB_HUB_ID, load_vlrewardbench, score_vlrewardbench
        ),
        PairwiseBenchmark("mmrb", "Multimodal RewardBench", None, load_mmrb, score_mmrb),
        PairwiseBenchmark("mmrlhf", "MM-RLHF-RewardBench", MMRLHF_HUB_ID, load_mmrlhf, score_mmrlhf),
    )
}


def parse_benchmarks(spec: str, *, flag: str = "--benchmarks") -> list[tuple[PairwiseBenchmark, str | None]]:
    """`"vlrewardbench,mmrb=path/to/data"` → [(benchmark, source or None for its hub id), ...].

    >>> [(b.name, s) for b, s in parse_benchmarks("vlrewardbench, mmrb=data/mmrb")]
    [('vlrewardbench', None), ('mmrb', 'data/mmrb')]
    """
    out: list[tuple[PairwiseBenchmark, str | None]] = []
    for entry in (e.strip() for e in spec.split(",")):
        name, _, source = entry.partition("=")
        bench = PAIRWISE_BENCHMARKS.get(name.strip())
        if bench is None:
            known = ", ".join(PAIRWISE_BENCHMARKS)
            raise UserError(f"{flag} {spec!r}: unknown benchmark {name.strip()!r}; choose from {known}")
        if not source.strip() and bench.hub_id is None:
            raise UserError(f"{flag}: {bench.name} has no hub dataset; pass {bench.name}=FOLDER")
        out.append((bench, source.strip() or None))
    return out
