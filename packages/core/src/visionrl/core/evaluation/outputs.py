"""Result files, written atomically: a reader (or a crash) sees the previous file or the complete new one.

`metrics.json` holds every reported number; `predictions.jsonl` one row per item; an eval CLI writes its
`config.yaml` together with them (`write_results`), so a run that fails on bad input leaves no folder behind.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any


def write_text_atomic(path: Path, text: str) -> None:
    """Write `<path>.tmp` beside `path`, then rename it over `path` (atomic on one file system)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: Path, payload: Mapping[str, Any]) -> None:
    write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def write_jsonl(path: Path, rows: Iterable[Mapping[str, Any]]) -> None:
    write_text_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def write_results(out: Path, config: Any, metrics: Mapping[str, Any],
                  predictions: Iterable[Mapping[str, Any]] | None = None) -> dict[str, Path]:
    """An eval CLI's outputs: config.yaml, metrics.json and predictions.jsonl (when given); returns the paths."""
    from visionrl.core.cli import prepare_output_dir

    prepare_output_dir(out, config)
    paths = {"metrics": out / "metrics.json"}
    write_json(paths["metrics"], metrics)
    if predictions is not None:
        paths["predictions"] = out / "predictions.jsonl"
        write_jsonl(paths["predictions"], predictions)
    return paths
