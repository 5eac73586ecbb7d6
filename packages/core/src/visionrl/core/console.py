"""What a run prints: one header line, one progress bar per phase, a closing summary; third-party chatter off.

Every CLI goes through `Console` (rank 0 only under DDP). `--quiet` keeps errors and the closing summary;
`--verbose` lets the libraries talk again (Lightning's banners and model summary, transformers' loading bars,
the warnings silenced below).

Silenced by default, each because it is not the user's business or reads wrong for these runs:
- Lightning's "GPU available / TPU available" banners and its litlogger advert (INFO logs);
- its model summary (enable_model_summary=False: HF models load in eval mode, so it shows "Modules in train
  mode: 0" and "Total FLOPs: 0" although everything trains);
- warnings about checkpointing under manual optimisation (ours saves after the optimiser step on purpose), an
  existing checkpoint folder (a resumed run), a "not resumable" dataloader (ours has no state to resume:
  modules count their own steps), `weights_only` (our checkpoint IO always loads with weights_only=True),
  `_pytree` deprecations inside Lightning, and transformers/huggingface_hub progress bars.
"""

from __future__ import annotations

import logging
import sys
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from visionrl.core.cli import is_global_rank_zero

_QUIET_WARNINGS = (
    r".*isinstance\(treespec, LeafSpec\)",
    r"Using ModelCheckpoint with manual optimization",
    r"Checkpoint directory .* exists and is not empty",
    r"You're resuming from a checkpoint that ended before the epoch ended",
    r".*`weights_only` was not set",
    r"The '(train|val)_dataloader' does not have many workers",
    r"The number of training batches \(\d+\) is smaller than the logging interval",
)
_ACTIVE_BAR: ContextVar[Any] = ContextVar("visionrl_active_bar", default=None)
_QUIET_LOGGERS = ("lightning.pytorch", "lightning.fabric", "lightning_fabric", "pytorch_lightning")


def silence_third_party(lightning: bool = False) -> None:
    """Turn the libraries' console output down to what is the user's business (see the module docstring).

    Importing Lightning sets its own loggers back to INFO, so a run that trains passes `lightning=True` (it
    is imported first) or calls this after importing it."""
    if lightning:
        import lightning.pytorch  # noqa: F401
    for pattern in _QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    if "transformers" in sys.modules or "torch" in sys.modules:
        import transformers

        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
    from huggingface_hub.utils import disable_progress_bars

    disable_progress_bars()


class Console:
    """Prints for one CLI run; rank 0 only. `quiet`: only the closing summary (and errors)."""

    def __init__(self, prog: str, *, quiet: bool = False, verbose: bool = False):
        self.prog, self.quiet, self.verbose = prog, quiet, verbose
        self.start = time.perf_counter()
        self.enabled = is_global_rank_zero()

    def quiet_libraries(self, lightning: bool = False) -> None:
        if not self.verbose:
            silence_third_party(lightning)

    def line(self, text: str) -> None:
        if self.enabled and not self.quiet:
            print(text, flush=True)

    def header(self, what: str, details: Mapping[str, Any], out: Path | None = None) -> None:
        """`prog: what · key value · ... → out`, one line."""
        parts = [f"{self.prog}: {what}", *(f"{k} {v}" for k, v in details.items() if v not in (None, ""))]
        self.line(" · ".join(parts) + (f" → {out}" if out else ""))

    @contextmanager
    def bar(self, name: str, total: int | None = None, unit: str = "it") -> Iterator[Any]:
        """A tqdm bar for one phase (a no-op object when quiet or on other ranks). While it is open,
        `advance(n)` anywhere below (e.g. in `generate_texts`, per batch of prompts) moves it."""
        if not self.enabled or self.quiet:
            yield _NoBar()
            return
        from tqdm.auto import tqdm

        with tqdm(total=total, desc=name, unit=unit, dynamic_ncols=True, leave=False, file=sys.stdout) as bar:
            token = _ACTIVE_BAR.set(bar)
            try:
                yield bar
            finally:
                _ACTIVE_BAR.reset(token)

    def summary(self, lines: list[tuple[str, str]], *, title: str = "done") -> None:
        """The closing block (printed even when quiet): a title with the wall time, then aligned rows."""
        if not self.enabled:
            return
        width = max((len(k) for k, _ in lines), default=0)
        print(f"{title} in {format_seconds(time.perf_counter() - self.start)}", flush=True)
        for key, value in lines:
            print(f"  {key:<{width}}  {value}", flush=True)


def advance(n: int) -> None:
    """Move the phase bar that is open, if any (a no-op otherwise, e.g. inside the training loop)."""
    bar = _ACTIVE_BAR.get()
    if bar is not None:
        bar.update(n)


class _NoBar:
    def update(self, n: int = 1) -> None:
        return None

    def set_postfix_str(self, s: str, refresh: bool = True) -> None:
        return None


def format_seconds(seconds: float) -> str:
    """
    >>> format_seconds(7.2), format_seconds(482)
    ('7.2 s', '8 min 02 s')
    """
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes} min {secs:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def before_after(results: Mapping[str, Mapping[str, float]], keys: list[str] | None = None) -> str:
    """`accuracy 0.520 → 0.575 · format 1.000 → 1.000` from metrics.json's before/after.

    >>> before_after({"before": {"accuracy": 0.5}, "after": {"accuracy": 0.625}})
    'accuracy 0.500 → 0.625'
    """
    before, after = results.get("before", {}), results.get("after", {})
    names = keys or sorted(set(before) | set(after))
    return " · ".join(f"{k} {_num(before.get(k))} → {_num(after.get(k))}" for k in names if k in before or k in after)


def one_metric_line(values: Mapping[str, float], keys: list[str] | None = None) -> str:
    """`accuracy 0.520 · format 1.000`."""
    names = keys or sorted(values)
    return " · ".join(f"{k} {_num(values[k])}" for k in names if k in values)


def _num(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.3f}" if isinstance(value, float) else str(value)
