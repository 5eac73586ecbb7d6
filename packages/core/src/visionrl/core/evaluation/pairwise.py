"""The pairwise reward/judge benchmarks critic, judge and rewardmodel share: loaders into `PairRecord`s (the
registry that names each benchmark's loader, scorer and hub id: `pairwise_registry.py`; scorers:
`pairwise_scoring.py`).

Formats read (a local folder or file in the official layout, or a `datasets` id through `iter_rows`):

- VL-RewardBench (`MMInstruction/VL-RewardBench`, split test): `id, query, response[2], human_ranking[2],
  image | image_path, ...`; `human_ranking` [0, 1] means the first response is preferred. The category is
  cal.py's dataset read from the id prefix (RLAIF → rlaif-v, RLHF → rlhf-v, mathverse/mmmu →
  reasoning_tasks, wildvision → wildvision-battle, povid/hallucination → povid, else vlfeedback).
- Multimodal RewardBench (facebookresearch/multimodal_rewardbench, `data/all_data.json`, built by its
  download script; no hub dataset): `ID, Text, Image, Output1, Output2, Better, Category`, safety and
  reasoning split by ID prefix as `scripts/2_get_accuracy.py` does.
- MM-RLHF-RewardBench (`yifanzhang114/MM-RLHF-RewardBench`, `mm_reward_bench.jsonl` + image folders; pass a
  local copy of the repo, whose images are files): `id, prompt, image | video, chosen, rejected, ...`, several
  records per id (`group_id`), category from the first of mcq/long/short/safety/video in the path.

Every record's `meta["flip"]` says whether the chosen answer is shown second (see `presented`). Images are
validated and decoded as `load_records` does; a problem raises `DataError` naming the file and row.

Departures from the benchmark code, numbered:

1. The presentation coin (VL-RewardBench's `random.choice([0, 1])`, recorded as `meta["random_number"]`,
   1 = the dataset's two responses swapped; likewise for MM-RLHF) is drawn per item from the seed and the
   item's id (MM-RLHF: id and responses, as ids repeat), so an item is shown the same way whatever `limit`
   or order. Multimodal RewardBench is not swapped: its
   Output1/Output2 order comes randomised and is shown as is.
2. cal.py's `get_dataset_from_id` fails on POVID ids (a misspelt variable); they map to povid here.
3. A repeated id gets `#2`, `#3`, ... in `record.id` (the original stays in `meta["id"]`), so judgements can be
   keyed by record id; MM-RLHF's Acc+ groups by the original id.
4. MM-RLHF video items (folders of frames) are skipped unless `videos=True`, which keeps them without images
   and with the resolved folder in `meta["video"]`; `<image>` placeholders are removed from its prompts.
"""

from __future__ import annotations

import json
import logging
import random
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from visionrl.core.data.loaders import iter_rows, source_root
from visionrl.core.data.records import PairRecord
from visionrl.core.data.validate import DEFAULT_MAX_PIXELS, DataError, ImagePolicy, Where, build_record
from visionrl.core.evaluation.pairwise_scoring import VLRB_GROUP

_log = logging.getLogger(__name__)

VLRB_HUB_ID = "MMInstruction/VL-RewardBench"
MMRLHF_HUB_ID = "yifanzhang114/MM-RLHF-RewardBench"
MMRLHF_CATEGORIES = ("mcq", "long", "short", "safety", "video")
Adapter = Callable[[dict[str, Any], Where, ImagePolicy], dict[str, Any] | None]


# ---------------------------------------------------------------- shared row handling


def _text(row: dict[str, Any], key: str, where: Where) -> str:
    value = row.get(key)
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)  # numeric ids
    if not isinstance(value, str) or not value.strip():
        what = (
            "missing" if value is None else "empty" if isinstance(value, str) else f"a {type(value).__name__}"
        )
        raise where.error(f"field {key!r} is {what}; expected text")
    return value


def _json_list(row: dict[str, Any], key: str, where: Where) -> list[Any]:
    value = row.get(key)
    if isinstance(value, str):  # nested columns stored as JSON text
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise where.error(f"field {key!r} is text but not a JSON list") from None
    if hasattr(value, "tolist"):  # numpy arrays from pandas-written Parquet
        value = value.tolist()
    if not isinstance(value, list | tuple):
        raise where.error(f"field {key!r} must be a list, got {type(value).__name__}")
    return list(value)


def _coin(seed: int, *item: str) -> int:
    """A fair 0/1 per item, fixed by the seed and the item's texts (never by where the file lies)."""
    return random.Random("\t".join((str(seed), *item))).randint(0, 1)


def _load(
    source: str | Path,
    adapt: Adapter,
    *,
    split: str,
    limit: int | None,
    image_root: str | Path | None,
    max_pixels: int,
    resize_large: bool,
) -> list[PairRecord]:
    """Adapt each row to the canonical pair layout (None skips it) and validate it with `build_record`."""
    rows: Iterator[tuple[Where, dict[str, Any]]] = iter_rows(source, split=split)
    root = Path(image_root) if image_root is not None else source_root(source)
    policy = ImagePolicy(root, max_pixels, resize_large)
    records: list[PairRecord] = []
    seen: Counter[str] = Counter()
    while limit is None or len(records) < limit:
        try:
            where, row = next(rows)
        except StopIteration:
            break
        canonical = adapt(row, where, policy)
        if canonical is None:
            continue
        record = build_record(canonical, "pair", {}, where, f"row-{where.row}", policy)
        assert isinstance(record, PairRecord)
        seen[record.id] += 1
        if seen[record.id] > 1:
            record.id = f"{record.id}#{seen[record.id]}"
        records.append(record)
    if not records and limit != 0:
        raise DataError(f"{source}: no records found")
    return records


# ---------------------------------------------------------------- VL-RewardBench


def vlrb_dataset(rid: str) -> str:
    """cal.py's source dataset of a VL-RewardBench id, from the text before its first '_' or '-'.

    >>> vlrb_dataset("RLAIF-V-14"), vlrb_dataset("mmmu_pro_test_Accounting_170"), vlrb_dataset("LRVInstruction-7")
    ('rlaif-v', 'reasoning_tasks', 'vlfeedback')
    """
    cuts = [i for i in (rid.find("_"), rid.find("-")) if i != -1]
    prefix = rid[: min(cuts)] if cuts else rid
    if prefix == "RLAIF":
        return "rlaif-v"
    if prefix == "RLHF":
        return "rlhf-v"
    if prefix in ("mathverse", "mmmu"):
        return "reasoning_tasks"
    if prefix == "wildvision":
        return "wildvision-battle"
    if prefix.lower() in ("povid", "hallucination"):
        return "povid"
    return "vlfeedback"


def _vlrb_adapter(seed: int) -> Adapter:
    def adapt(row: dict[str, Any], where: Where, policy: ImagePolicy) -> dict[str, Any]:
        rid = _text(row, "id", where)
        responses = _json_list(row, "response", where)
        if len(responses) != 2:
            raise where.error(f"field 'response' must hold 2 responses, got {len(responses)}")
        for k, text in enumerate(responses):
            if not isinstance(text, str) or not text.strip():
                raise where.error(f"response {k + 1} of field 'response' is empty or not text")
        ranking = _json_list(row, "human_ranking", where)
        if ranking not in ([0, 1], [1, 0]) or any(isinstance(x, bool) for x in ranking):
            raise where.error(f"field 'human_ranking' must be [0, 1] or [1, 0], got {ranking!r}")
        best = ranking.index(0)  # argmin: the preferred response
        swap = _coin(seed, rid)  # inference_hf.py's random_number: 1 shows response[1] first
        dataset = vlrb_dataset(rid)
        image = row.get("image") if row.get("image") is not None else row.get("image_path")
        meta: dict[str, Any] = {
            "benchmark": "vlrewardbench",
            "id": rid,
            "group": VLRB_GROUP[dataset],
            "human_ranking": [int(x) for x in ranking],
            "random_number": swap,
            "flip": (best != swap),  # the preferred response's shown position is 2
        }
        meta |= {k: row[k] for k in ("query_source", "ground_truth") if isinstance(row.get(k), str)}
        return {
            "id": rid,
            "prompt": _text(row, "query", where),
            "chosen": responses[best],
            "rejected": responses[1 - best],
            "category": dataset,
            "images": image,
            "meta": meta,
        }

    return adapt


def load_vlrewardbench(
    source: str | Path | None = None,
    *,
    limit: int | None = None,
    seed: int = 0,
    split: str = "test",
    image_root: str | Path | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    resize_large: bool = False,
) -> list[PairRecord]:
    """VL-RewardBench records: chosen = response[argmin(human_ranking)], a seeded order coin per item.

    Args:
        source: a folder or file in the benchmark's layout, or a dataset id (default: the hub dataset).
        limit: read only the first `limit` records.
        seed: seed of the per-item presentation coin (`meta["flip"]`, `meta["random_number"]`).
        image_root: where relative `image_path`s resolve (default: the folder holding the data).
    """
    return _load(
        VLRB_HUB_ID if source is None else source,
        _vlrb_adapter(seed),
        split=split,
        limit=limit,
        image_root=image_root,
        max_pixels=max_pixels,
        resize_large=resize_large,
    )


# ---------------------------------------------------------------- Multimodal RewardBench


def mmrb_category(category: str, rid: str) -> str:
    """The category `2_get_accuracy.py` reports an item under: safety and reasoning split by ID prefix.

    >>> mmrb_category("safety", "pairs_12"), mmrb_category("reasoning", "EMMA-Coding_3")
    ('safety/bias', 'reasoning/coding')
    """
    if category == "safety":
        return "safety/bias" if rid.lower().startswith("pairs") else "safety/toxicity"
    if category == "reasoning":
        return "reasoning/math" if rid.lower().startswith("math") else "reasoning/coding"
    return category


def _mmrb_adapt(row: dict[str, Any], where: Where, policy: ImagePolicy) -> dict[str, Any]:
    rid = _text(row, "ID", where)
    better = row.get("Better")
    if better not in ("Output1", "Output2"):
        raise where.error(f"field 'Better' must be 'Output1' or 'Output2', got {better!r}")
    category = _text(row, "Category", where)
    first, second = _text(row, "Output1", where), _text(row, "Output2", where)
    return {
        "id": rid,
        "prompt": _text(row, "Text", where),
        "chosen": first if better == "Output1" else second,
        "rejected": second if better == "Output1" else first,
        "category": mmrb_category(category, rid),
        "images": row.get("Image"),
        "meta": {
            "benchmark": "mmrb",
            "id": rid,
            "Category": category,
            "Better": better,
            "flip": better == "Output2",
        },
    }


def _mmrb_file(source: str | Path) -> str | Path:
    """A clone of the repository or its data folder → its `all_data.json`; anything else as given."""
    path = Path(source).expanduser()
    if path.is_dir():
        for name in ("all_data.json", "data/all_data.json"):
            if (path / name).is_file():
                return path / name
    return source


def load_mmrb(
    source: str | Path | None = None,
    *,
    limit: int | None = None,
    seed: int = 0,
    split: str = "train",
    image_root: str | Path | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    resize_large: bool = False,
) -> list[PairRecord]:
    """Multimodal RewardBench records from `all_data.json` (a file, its folder or the repository clone).

    `seed` is accepted for a uniform loader signature and unused: the benchmark's order is shown as is.
    Image paths resolve against the folder holding `all_data.json` (`images/...`).
    """
    del seed
    if source is None:
        raise DataError(
            "Multimodal RewardBench has no hub dataset; pass the folder its download script built"
        )
    return _load(
        _mmrb_file(source),
        _mmrb_adapt,
        split=split,
        limit=limit,
        image_root=image_root,
        max_pixels=max_pixels,
        resize_large=resize_large,
    )


# ---------------------------------------------------------------- MM-RLHF-RewardBench


def mmrlhf_category(path: str) -> str:
    """The first of mcq/long/short/safety/video that the image or video path contains, else `other`.

    >>> mmrlhf_category("mm_reward_bench/short/0001.jpg"), mmrlhf_category("misc/1.png")
    ('short', 'other')
    """
    return next((k for k in MMRLHF_CATEGORIES if k in path), "other")


def _mmrlhf_adapter(seed: int, videos: bool, skipped: Counter[str]) -> Adapter:
    def adapt(row: dict[str, Any], where: Where, policy: ImagePolicy) -> dict[str, Any] | None:
        rid = _text(row, "id", where)
        image, video = row.get("image"), row.get("video")
        path = image if isinstance(image, str) else video if isinstance(video, str) else ""
        chosen, rejected = _text(row, "chosen", where), _text(row, "rejected", where)
        meta: dict[str, Any] = {
            "benchmark": "mmrlhf",
            "id": rid,
            "flip": bool(_coin(seed, rid, chosen, rejected)),
        }
        if image is None and video is not None:
            if not videos:
                skipped["video"] += 1
                return None
            if not isinstance(video, str) or policy.root is None or not (policy.root / video).is_dir():
                raise where.error(f"video folder {video!r} not found in {policy.root}")
            meta["video"] = str(policy.root / video)
        if path:
            meta["path"] = path
        prompt = _text(row, "prompt", where).replace("<image>", "").strip()
        if not prompt:
            raise where.error("field 'prompt' holds nothing but an <image> placeholder")
        return {
            "id": rid,
            "prompt": prompt,
            "chosen": chosen,
            "rejected": rejected,
            "category": mmrlhf_category(path),
            "group_id": rid,
            "images": image,
            "meta": meta,
        }

    return adapt


def load_mmrlhf(
    source: str | Path | None = None,
    *,
    limit: int | None = None,
    seed: int = 0,
    split: str = "train",
    videos: bool = False,
    image_root: str | Path | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    resize_large: bool = False,
) -> list[PairRecord]:
    """MM-RLHF-RewardBench records (several per id, grouped by `group_id`) with a seeded order coin.

    Args:
        source: a local copy of the benchmark repository (jsonl + image folders), a file, or a dataset id.
        videos: keep the video items (no images; frames folder in `meta["video"]`) instead of skipping them.
    """
    skipped: Counter[str] = Counter()
    records = _load(
        MMRLHF_HUB_ID if source is None else source,
        _mmrlhf_adapter(seed, videos, skipped),
        split=split,
        limit=limit,
        image_root=image_root,
        max_pixels=max_pixels,
        resize_large=resize_large,
    )
    if skipped["video"]:
        _log.warning(
            "MM-RLHF-RewardBench: skipped %d video items (pass videos=True to keep them)", skipped["video"]
        )
    return records
