"""Checkpoints: atomic writes, safe reads, `--resume` resolution and the SIGTERM save.

Measured against Lightning 2.6:

1. Atomic writes. Lightning's `TorchCheckpointIO` writes through an fsspec transaction
   (`lightning/fabric/utilities/cloud_io.py::_atomic_save`); for local paths fsspec stages the bytes in
   `tempfile.mkstemp()`, i.e. in $TMPDIR, and commits with `shutil.move`
   (`fsspec/implementations/local.py::LocalFileOpener`). When $TMPDIR and the output dir are on different
   file systems (node-local /tmp vs. a shared cluster disk) that move is a copy into the final path, so a
   kill mid-copy leaves a truncated `last.ckpt`; it also holds a second full copy in RAM. `AtomicCheckpointIO`
   writes `<path>.tmp` next to the target, fsyncs, then `os.replace`s, which is atomic on one file system.
2. SIGTERM. Lightning already installs a SIGTERM handler (`trainer/connectors/signal_connector.py`) that
   sets `trainer.received_sigterm` and forwards the signal to its child processes; the loops then raise
   `SIGTERMException` (a `SystemExit`). Outside SLURM's SIGUSR1 requeue path nothing is saved unless
   `ModelCheckpoint(save_on_exception=True)`, which would also overwrite `last.ckpt` after any crash
   (a NaN, an OOM) and can deadlock when only one rank failed. `PreemptionCallback` therefore reuses
   Lightning's flag, agrees on it across ranks at the end of a batch, saves `last.ckpt`, and stops every
   rank together; `visionrl.core.cli.run_cli` turns that exit into code 143 so schedulers see an interrupted job.
3. Safe loading. `AtomicCheckpointIO` always reads with `torch.load(weights_only=True)`, which refuses pickled
   code; Lightning's FSDP full-checkpoint reader bypasses the checkpoint IO with its own unrestricted
   unpickler, so `check_checkpoint` (run while validating `--resume`) first proves the file loads that way.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from visionrl.core.errors import UserError

if TYPE_CHECKING:
    from visionrl.core.config import RunArgs


def resolve_resume(run: RunArgs) -> str | None:
    """The checkpoint path for `Trainer.fit(ckpt_path=...)`: `--resume last` means `checkpoints/last.ckpt`."""
    if run.resume == "last":
        return str(run.output_dir / "checkpoints" / "last.ckpt")
    return run.resume


def check_checkpoint(path: str | os.PathLike, flag: str = "--resume") -> dict[str, Any]:
    """Raise `UserError` unless `path` reads with `torch.load(weights_only=True)` (module docstring, point 3);
    return the checkpoint's `visionrl` record (step, held-out results, which run wrote it), {} if none.

    Memory-mapped, so only the pickled structure is read, not the tensor data. A directory (an FSDP sharded
    checkpoint) is left to Lightning, which reads its metadata with `weights_only=True` as well.
    """
    import pickle
    import zipfile

    import torch

    path = Path(path)
    if path.is_dir():
        return {}
    unreadable = UserError(
        f"{flag} {path}: not a readable checkpoint (truncated, or not written by torch.save)."
    )
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; a cut-off one lacks its directory
        raise unreadable
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL (\S+)", str(exc))
        what = f" ({found.group(1)})" if found else ""
        raise UserError(
            f"{flag} {path}: refused, the checkpoint holds pickled code or objects{what}; only tensors and "
            "plain data are loaded."
        ) from None
    except (RuntimeError, OSError, EOFError, ValueError):
        raise unreadable from None
    record = checkpoint.get("visionrl") if isinstance(checkpoint, dict) else None
    return record if isinstance(record, dict) else {}


def check_resume_identity(path: str | os.PathLike, expected: dict[str, str], flag: str = "--resume") -> None:
    """Refuse a checkpoint that another CLI, method or base model wrote (it would train nothing of this run
    and export the other run's model). Checkpoints without the record (older ones) pass."""
    saved = check_checkpoint(path, flag).get("run", {})
    for key in ("cli", "method", "model"):
        if key in saved and key in expected and saved[key] != expected[key]:
            raise UserError(f"{flag} {path}: written by {saved.get('cli', '?')} ({saved.get('method', '?')} on "
                            f"{saved.get('model', '?')}), not by this {expected.get('cli', '?')} run "
                            f"({expected.get('method', '?')} on {expected.get('model', '?')}).")


# Lightning plug-ins, defined on first use so that importing this module never imports Lightning.


@functools.cache
def _lightning_classes() -> dict[str, type]:
    import torch
    from lightning.fabric.utilities.cloud_io import _is_local_file_protocol
    from lightning.pytorch.callbacks import Callback
    from lightning.pytorch.plugins.io import TorchCheckpointIO
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    class AtomicCheckpointIO(TorchCheckpointIO):
        """Write `<path>.tmp` beside the target, fsync, then `os.replace`; read tensors and plain data only
        (module docstring, points 1 and 3)."""

        def load_checkpoint(
            self,
            path: Any,
            map_location: Any = lambda storage, loc: storage,
            weights_only: bool | None = None,
        ) -> Any:
            # Whatever the caller asks: a checkpoint is data, never code (our own always load this way).
            return super().load_checkpoint(path, map_location=map_location, weights_only=True)

        def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
            if storage_options is not None or not _is_local_file_protocol(path):
                return super().save_checkpoint(checkpoint, path, storage_options)
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            try:
                with open(tmp, "wb") as f:
                    torch.save(checkpoint, f)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)

    class PreemptionCallback(Callback):
        """On SIGTERM, save `<dirpath>/last.ckpt` at the end of the current batch and stop every rank. Whenever
        any checkpoint is written, the loggers are flushed first, so the curves on disk always cover the
        checkpointed steps (a SIGKILL after a checkpoint loses no point of a curve; modules log each step's
        metrics inside the step, see `lit.common.log_step`)."""

        def __init__(self, dirpath: str | os.PathLike) -> None:
            self.dirpath = Path(dirpath)

        def on_save_checkpoint(self, trainer: Any, pl_module: Any, checkpoint: dict[str, Any]) -> None:
            for logger in trainer.loggers:
                logger.save()

        def on_train_batch_end(self, trainer: Any, *args: Any, **kwargs: Any) -> None:
            # Lightning's handler sets the flag per process; a rank that saw the signal must not enter the
            # collective save alone, so all ranks agree first (any rank signalled -> all stop).
            if not trainer.strategy.reduce_boolean_decision(trainer.received_sigterm, all=False):
                return
            trainer.save_checkpoint(self.dirpath / "last.ckpt")
            # Lightning's own exit path: on_exception hooks, teardown, SystemExit (run_cli maps it to 143).
            raise SIGTERMException

    classes = {"AtomicCheckpointIO": AtomicCheckpointIO, "PreemptionCallback": PreemptionCallback}
    for cls in classes.values():  # make them picklable by reference through __getattr__ below
        cls.__module__, cls.__qualname__ = __name__, cls.__name__
    return classes


def __getattr__(name: str) -> Any:
    # `from visionrl.core.checkpoints import PreemptionCallback` works; Lightning is imported at that moment.
    if name in ("AtomicCheckpointIO", "PreemptionCallback"):
        return _lightning_classes()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
