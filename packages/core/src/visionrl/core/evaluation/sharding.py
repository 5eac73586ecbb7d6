"""Generation sharded over ranks, gathered in order on every rank and written as JSONL by rank 0.

A pipeline that generates outside a `fit` (judging, pair synthesis, a held-out pass between training
stages) runs the same code on every rank:

    start_ranks(run)                                  # once, before the first generation (no-op on 1 process)
    rows = shard_map(judge_rows, pairs, path=out / "judgments.jsonl")

`shard_map` hands rank r the items r, r + world, r + 2·world, ..., calls `fn` on that shard, gathers every
rank's rows, puts them back in item order, lets rank 0 write them (atomically) and returns all of them on every
rank. Without a process group (one process) it is `fn(items)` plus the file.

Under Lightning DDP the rank processes are launched by the first `Trainer.fit`; a pipeline that generates
before its first fit calls `start_ranks` first, which launches them (Lightning Fabric, the same launcher and
environment variables) and initialises the process group. Every later `Trainer.fit` in the process then finds
the ranks running (`LOCAL_RANK` set) and the group initialised, and reuses both, so several fits and
generations can follow each other in one process.

`fn` must not call collectives (ranks may hold shards of different sizes, or none).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from visionrl.core.evaluation.outputs import write_jsonl

if TYPE_CHECKING:
    from visionrl.core.config import RunArgs

T = TypeVar("T")
Row = Mapping[str, Any]


def rank_and_world() -> tuple[int, int]:
    """(global rank, world size) of the initialised process group, else (0, 1)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def start_ranks(run: RunArgs) -> tuple[int, int]:
    """Launch the rank processes of `run` and initialise the process group now, before any `fit`; returns
    (global rank, world size). One process (devices × nodes = 1): nothing to do, (0, 1).

    The children re-run the command from its start (as Lightning's own launcher does), so everything before
    this call must be deterministic and free of side effects, as it must be before a `fit`."""
    if run.devices * run.num_nodes == 1:
        return 0, 1
    rank, world = rank_and_world()
    if world > 1:
        return rank, world
    from lightning.fabric import Fabric

    fabric = Fabric(accelerator=run.accelerator, devices=run.devices, num_nodes=run.num_nodes, strategy="ddp")
    fabric.launch()  # launches ranks 1.. (unless a launcher such as torchrun or SLURM already did)
    return fabric.global_rank, fabric.world_size


def shard_map(fn: Callable[[list[T]], Sequence[Row]], items: Sequence[T], *,
              path: Path | None = None) -> list[dict[str, Any]]:
    """`fn(shard)` on this rank's shard of `items`, every rank's rows gathered back into item order.

    Args:
        fn: one JSON-able row per item of the shard it is given, in the same order.
        items: the whole work list (the same on every rank).
        path: when given, rank 0 writes the gathered rows there as JSONL (atomically) before any rank returns.

    Returns:
        All rows, in the order of `items`, on every rank.
    """
    rank, world = rank_and_world()
    mine = list(range(rank, len(items), world))
    rows = [dict(r) for r in fn([items[i] for i in mine])] if mine else []
    assert len(rows) == len(mine), f"fn returned {len(rows)} rows for {len(mine)} items"
    if world == 1:
        ordered = rows
    else:
        import torch.distributed as dist

        shards: list[Any] = [None] * world
        dist.all_gather_object(shards, list(zip(mine, rows)))
        placed: list[dict[str, Any] | None] = [None] * len(items)
        for shard in shards:
            for i, row in shard:
                placed[i] = row
        assert all(r is not None for r in placed), "a rank returned no row for one of its items"
        ordered = placed  # type: ignore[assignment]
    if path is not None:
        write_jsonl_rank_zero(path, ordered)
    return ordered


def write_jsonl_rank_zero(path: Path, rows: Sequence[Row]) -> None:
    """Rank 0 writes `rows` to `path` (atomically); every rank returns once the file is complete."""
    rank, world = rank_and_world()
    if rank == 0:
        write_jsonl(path, rows)
    if world > 1:
        import torch.distributed as dist

        dist.barrier()
