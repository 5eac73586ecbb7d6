"""`visionrl.core.evaluation.sharding` in one process (no process group): the shard is everything, rows come
back in item order and rank 0 writes them as JSONL. The 2-process case runs in tests/core/test_runner_stages.py
(one DDP test for the sharding helper and for several fits in sequence)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from visionrl.core.config import RunArgs
from visionrl.core.evaluation.sharding import rank_and_world, shard_map, start_ranks


def test_one_process_has_rank_0_of_1_and_start_ranks_does_nothing(tmp_path: Path) -> None:
    assert rank_and_world() == (0, 1)
    assert start_ranks(RunArgs(max_steps=1, output_dir=tmp_path)) == (0, 1)
    assert rank_and_world() == (0, 1)  # no process group was created


def test_shard_map_returns_rows_in_item_order_and_writes_jsonl(tmp_path: Path) -> None:
    calls: list[list[int]] = []

    def square(shard: list[int]) -> list[dict[str, int]]:
        calls.append(shard)
        return [{"x": x, "square": x * x} for x in shard]

    path = tmp_path / "sub" / "rows.jsonl"
    rows = shard_map(square, [3, 1, 2], path=path)
    assert rows == [{"x": 3, "square": 9}, {"x": 1, "square": 1}, {"x": 2, "square": 4}]
    assert calls == [[3, 1, 2]], "one process handles every item in one call"
    assert [json.loads(line) for line in path.read_text().splitlines()] == rows
    assert not list(path.parent.glob(".*.tmp")), "the atomic write left its temporary file"


def test_shard_map_without_items_calls_nothing_and_writes_an_empty_file(tmp_path: Path) -> None:
    def fail(shard: list[int]) -> list[dict[str, int]]:
        raise AssertionError("fn must not run on an empty shard")

    assert shard_map(fail, [], path=tmp_path / "empty.jsonl") == []
    assert (tmp_path / "empty.jsonl").read_text() == ""


def test_shard_map_refuses_a_wrong_number_of_rows() -> None:
    with pytest.raises(AssertionError, match="2 rows for 3 items"):
        shard_map(lambda shard: [{"x": 1}, {"x": 2}], [1, 2, 3])
