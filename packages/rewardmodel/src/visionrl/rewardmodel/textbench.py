"""Optional text-only reward benchmarks in their released formats, plus the scores every benchmark reports.

- RewardBench (`allenai/reward-bench`, split `filtered`): `id, prompt, chosen, rejected, subset`; accuracy over
  all items and per subset. Departure: the official leaderboard also averages subsets into four sections
  with per-subset example weights; only the micro average and the subsets are reported here.
- RM-Bench (`THU-KEG/RM-Bench` JSON): `id, prompt, chosen[3], rejected[3], domain`, three style levels per
  side (concise, detailed, detailed with Markdown). Every chosen i is compared with every rejected j: `hard`
  is the mean over i < j (the chosen answer plainer than the rejected one), `normal` over i = j, `easy` over
  i > j, `accuracy` the mean of the three, also per domain.
- For every benchmark: `length_corr`, Pearson's r between a response's score and its length in characters
  (a length-biased reward model scores long answers high), and `ece`, the expected calibration error of
  σ(r_c − r_r) read as P(first answer better), over both orders of each pair, in 10 equal-width bins.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from visionrl.core.data.records import PairRecord
from visionrl.core.data.validate import DataError, Where

REWARDBENCH_HUB_ID = "allenai/reward-bench"


def _text(row: dict[str, Any], key: str, where: Where) -> str:
    value = row.get(key)
    if not isinstance(value, str) or not value.strip():
        raise where.error(f"field {key!r} is {'missing' if value is None else 'empty or not text'}")
    return value


def load_rewardbench(source: str | None, *, limit: int | None = None) -> list[PairRecord]:
    """RewardBench items (local copy or the hub dataset) as text-only pairs, the subset as category."""
    from visionrl.core.data.loaders import iter_rows

    out = []
    for where, row in iter_rows(source or REWARDBENCH_HUB_ID, split="filtered"):
        if limit is not None and len(out) >= limit:
            break
        out.append(PairRecord(str(row.get("id", where.row)), [], _text(row, "prompt", where),
                              _text(row, "chosen", where), _text(row, "rejected", where), str(row.get("subset", ""))))
    if not out:
        raise DataError(f"{source}: no records found")
    return out


def load_rmbench(source: str, *, limit: int | None = None) -> list[PairRecord]:
    """RM-Bench items as 9 pairs each (chosen i vs rejected j, `meta["levels"] = (i, j)`, `group_id` = item id)."""
    from visionrl.core.data.loaders import iter_rows

    out: list[PairRecord] = []
    items = 0
    for where, row in iter_rows(source, split="train"):
        if limit is not None and items >= limit:
            break
        chosen, rejected = row.get("chosen"), row.get("rejected")
        if not (isinstance(chosen, list) and isinstance(rejected, list) and len(chosen) == len(rejected) == 3):
            raise where.error("fields 'chosen' and 'rejected' must each hold 3 responses (the style levels)")
        for k, text in enumerate([*chosen, *rejected]):
            if not isinstance(text, str) or not text.strip():
                raise where.error(f"response {k % 3 + 1} of field {'chosen' if k < 3 else 'rejected'!r} is empty")
        rid, prompt, domain = str(row.get("id", where.row)), _text(row, "prompt", where), str(row.get("domain", ""))
        out += [PairRecord(f"{rid}/{i}{j}", [], prompt, chosen[i], rejected[j], domain, group_id=rid,
                           meta={"levels": (i, j)}) for i in range(3) for j in range(3)]
        items += 1
    if not out:
        raise DataError(f"{source}: no records found")
    return out


def score_rmbench(records: Sequence[PairRecord], correct: Sequence[bool]) -> dict[str, float]:
    """`hard`/`normal`/`easy` (mean over i < j, i = j, i > j of chosen level i vs rejected level j),
    `accuracy` = their mean, each also per domain as `<metric>/<domain>`.

    >>> rs = [PairRecord(f"x/{i}{j}", [], "p", "c", "r", "chat", "x", {"levels": (i, j)}) for i in range(3) for j in range(3)]
    >>> m = score_rmbench(rs, [True, False, False, True, True, False, True, True, True])
    >>> m["hard"], m["normal"], m["easy"], round(m["accuracy"], 4)
    (0.0, 1.0, 1.0, 0.6667)
    """
    cells: dict[tuple[str, str], list[bool]] = defaultdict(list)
    for r, ok in zip(records, correct, strict=True):
        i, j = r.meta["levels"]
        level = "hard" if i < j else "normal" if i == j else "easy"
        for domain in ("", r.category):
            cells[(domain, level)].append(bool(ok))
    out: dict[str, float] = {}
    for domain in sorted({d for d, _ in cells}):
        suffix = f"/{domain}" if domain else ""
        levels = {lv: sum(v) / len(v) for (d, lv), v in cells.items() if d == domain}
        out.update({f"{lv}{suffix}": x for lv, x in levels.items()})
        out[f"accuracy{suffix}"] = sum(levels.values()) / len(levels)
    return out


def score_by_category(records: Sequence[PairRecord], correct: Sequence[bool]) -> dict[str, float]:
    """`accuracy` over all pairs, `accuracy/<category>` and `items/<category>` (RewardBench subsets)."""
    groups: dict[str, list[bool]] = defaultdict(list)
    for r, ok in zip(records, correct, strict=True):
        groups[r.category].append(bool(ok))
    out = {"accuracy": sum(map(bool, correct)) / len(correct), "items": float(len(correct))}
    for category, values in sorted(groups.items()):
        out[f"accuracy/{category}"], out[f"items/{category}"] = sum(values) / len(values), float(len(values))
    return out


def length_correlation(scores: Sequence[float], texts: Sequence[str]) -> float | None:
    """Pearson's r of scores and response lengths (characters); None when either side is constant.

    >>> length_correlation([1.0, 2.0, 3.0], ["a", "bb", "ccc"])
    1.0
    """
    lengths = [float(len(t)) for t in texts]
    if len(set(lengths)) < 2 or len(set(scores)) < 2:
        return None
    return statistics.correlation(list(scores), lengths)


def calibration_error(chosen: Sequence[float], rejected: Sequence[float], bins: int = 10) -> float:
    """ECE of p = σ(r_1 − r_2) as P(first shown is better), each pair shown in both orders.

    >>> round(calibration_error([0.0], [0.0]), 3)  # p = 0.5 both ways, right half the time
    0.0
    >>> round(calibration_error([10.0], [-10.0]), 3)  # confident and right
    0.0
    """
    points: list[tuple[float, float]] = []
    for c, r in zip(chosen, rejected, strict=True):
        p = 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, c - r))))
        points += [(p, 1.0), (1.0 - p, 0.0)]
    total, ece = len(points), 0.0
    for b in range(bins):
        inside = [(p, y) for p, y in points if b / bins <= p < (b + 1) / bins or (b == bins - 1 and p == 1.0)]
        if inside:
            ece += len(inside) / total * abs(sum(p for p, _ in inside) / len(inside) - sum(y for _, y in inside) / len(inside))
    return ece
