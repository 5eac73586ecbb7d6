"""Pieces every benchmark here shares: worker processes, load checks, versions and machine, timing, tables.

Each benchmark runs every side of a comparison in its own worker process (so one side's imports, caches and
thread pools never touch the other's), one after another and never at once, alternating the order between
`--repeats`, and keeps the per-side median. The orchestrator records the 1-minute load average before and
after each worker, the versions each worker ran with, and the machine, in the result JSON.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
TRL_VERSION = "1.16.0"
PACKAGES = ("torch", "transformers", "lightning", "trl", "accelerate", "datasets", "visionrl-core")


def set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "-"
    return out


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict[str, Any]:
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform()}


def load1() -> float:
    return os.getloadavg()[0]


def wait_for_quiet(max_load: float, tries: int, wait_s: int) -> list[float]:
    """Wait (up to `tries` × `wait_s`) while the 1-minute load is above `max_load`; the loads seen."""
    seen = []
    for i in range(tries + 1):
        seen.append(load1())
        if seen[-1] <= max_load or i == tries:
            break
        print(f"load {seen[-1]:.2f} > {max_load}: waiting {wait_s}s ({i + 1}/{tries})", file=sys.stderr, flush=True)
        time.sleep(wait_s)
    return seen


def add_common_args(p: argparse.ArgumentParser, default_out: Path) -> None:
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (and OMP_NUM_THREADS) everywhere")
    p.add_argument("--repeats", type=int, default=1, help="worker processes per side (the median is kept)")
    p.add_argument("--max-load", type=float, default=1.5, help="wait while the 1-min load average is above this")
    p.add_argument("--load-tries", type=int, default=3, help="how many times to wait for a quiet machine")
    p.add_argument("--load-wait", type=int, default=60, help="seconds per wait")
    p.add_argument("--out", default=str(default_out), help="result JSON")
    p.add_argument("--verbose", action="store_true", help="show the workers' own output")
    # worker-only
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)


def worker_env(threads: int) -> dict[str, str]:
    return dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
                TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
                TRANSFORMERS_OFFLINE="1", TRANSFORMERS_VERBOSITY="error", PYTHONWARNINGS="ignore")


def trl_importable() -> bool:
    try:
        import trl  # noqa: F401
    except ImportError:
        return False
    return True


def python_cmd(needs_trl: bool) -> list[str]:
    """The interpreter of a worker: this one, or `uv run --with trl==…` when TRL is needed and missing."""
    if needs_trl and not trl_importable():
        return [shutil.which("uv") or "uv", "run", "--project", str(ROOT), "--with", f"trl=={TRL_VERSION}", "python"]
    return [sys.executable]


def run_worker(script: Path, side: str, args: Sequence[str], a: argparse.Namespace, tmp: Path,
               needs_trl: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run one worker (`script --worker side ...`) to completion; its JSON result and a load record."""
    result = tmp / f"{side.replace(':', '_')}-{time.monotonic_ns()}.json"
    cmd = [*python_cmd(needs_trl), str(script), "--worker", side, "--result", str(result),
           "--threads", str(a.threads), *args]
    before, t0 = load1(), time.perf_counter()
    proc = subprocess.run(cmd, env=worker_env(a.threads), cwd=ROOT, text=True,
                          stdout=None if a.verbose else subprocess.DEVNULL,
                          stderr=None if a.verbose else subprocess.PIPE)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr or "")
        raise SystemExit(f"{side} worker failed with exit code {proc.returncode}")
    for line in (proc.stderr or "").splitlines():
        if line.startswith("["):
            print(line, file=sys.stderr, flush=True)
    data = json.loads(result.read_text())
    load = {"side": side, "load_1min_before": before, "load_1min_after": load1(),
            "process_s": time.perf_counter() - t0}
    return data, load


def alternate(sides: Sequence[str], rep: int) -> list[str]:
    """Side order of repeat `rep`: as given on even repeats, reversed on odd ones."""
    return list(sides) if rep % 2 == 0 else list(reversed(sides))


def median_run(runs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """The run with the median `key` (the upper median for an even count)."""
    ordered = sorted(runs, key=lambda r: r[key])
    return ordered[len(ordered) // 2]


def timed(fn: Callable[[], Any], repeats: int) -> list[float]:
    """Wall seconds of `repeats` calls of `fn`."""
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def quartiles(xs: Sequence[float]) -> tuple[float, float, float]:
    if len(xs) < 2:
        return xs[0], xs[0], xs[0]
    q = statistics.quantiles(xs, n=4)
    return q[0], statistics.median(xs), q[2]


def meta(command: str, a: argparse.Namespace, start_loads: list[float], loads: list[dict[str, Any]],
         worker_versions: dict[str, Any], settings: dict[str, Any], t_start: float) -> dict[str, Any]:
    return {"date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "command": " ".join([command, *sys.argv[1:]]).strip(),
            "machine": machine(), "threads": a.threads, "repeats": a.repeats, "versions": worker_versions,
            "settings": settings, "load_at_start": start_loads, "load": loads,
            "total_s": time.perf_counter() - t_start}


def write_json(path: str | Path, payload: dict[str, Any]) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=1))
    os.replace(tmp, out)
    return out


def md_table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def print_header(title: str, m: dict[str, Any]) -> None:
    v = next((x for x in m["versions"].values() if x), {})
    trl = ", ".join(sorted({x.get("trl", "-") for x in m["versions"].values() if x} - {"-"})) or "-"
    print(f"\n{title} — {m['date']} — {m['threads']} thread(s), {m['machine']['cores']} cores ({m['machine']['cpu']})")
    print(f"torch {v.get('torch')}, transformers {v.get('transformers')}, lightning {v.get('lightning')}, trl {trl}")
    print("load (1 min) at start: " + ", ".join(f"{x:.2f}" for x in m["load_at_start"]) + "; before each worker: "
          + ", ".join(f"{x['side']} {x['load_1min_before']:.2f}" for x in m["load"]))


def publish(title: str, m: dict[str, Any], path: str | Path, payload: dict[str, Any], subtitle: str,
            body: str) -> Path:
    """Write `{"meta": m, **payload}` to `path`, then print the header, `subtitle`, `body` and where it went."""
    out = write_json(path, {"meta": m, **payload})
    print_header(title, m)
    print(subtitle)
    print("\n" + body + f"\n\nwritten {out} in {m['total_s']:.0f}s")
    return out
