"""GRPO throughput: visionrl's `GRPOModule` against TRL's `GRPOTrainer`, same tiny model, same settings.

    uv run --with trl==1.16.0 python benchmarks/grpo_vs_trl.py                # every row, 1 thread
    uv run python benchmarks/grpo_vs_trl.py --sizes h64-l2 --settings 2x4    # TRL worker via `uv run --with`

TRL is not a dependency of the project: `--with trl==1.16.0` adds it for this run only (from PyPI; nothing is
fetched from the Hugging Face Hub).

Sides (`--sides`), each trained in its own worker process for `warmup + steps` optimizer steps per setting:

- `trl`: TRL 1.16.0 `GRPOTrainer` (`model.generate`, one full forward per completion).
- `visionrl`: `GRPOModule` as shipped (lean engine, `shared_vision`, `shared_prefix`, the rollout's encoding
  reused by the update).
- `naive`: `GRPOModule` with every sharing off and the update re-encoding its prompts per micro-batch, as before
  issue 13 (same engine); `reuse`, `vision`, `prefix` switch the speed-ups on one at a time.

Settings: `PxG` prompts per step × completions per prompt; `-img3` gives each prompt three images, `-long` a
question about 5× longer. Results go to `benchmarks/results/grpo_vs_trl.json`; the table and a per-phase
breakdown are printed. `--profile` runs cProfile over one visionrl setting instead.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_common as bc  # noqa: E402

DEFAULT_OUT = bc.RESULTS / "grpo_vs_trl.json"
SIZES: dict[str, dict[str, int]] = {"h64-l2": {"hidden": 64, "layers": 2}, "h256-l4": {"hidden": 256, "layers": 4}}


@dataclass(frozen=True)
class Workload:
    prompts: int  # per step
    group: int  # G, completions per prompt
    images: int = 1  # images per prompt
    long: bool = False  # a long question (~5× the base prompt's tokens)


SETTINGS: dict[str, Workload] = {"2x4": Workload(2, 4), "16x4": Workload(16, 4), "8x4": Workload(8, 4),
                                 "8x4-img3": Workload(8, 4, images=3), "8x4-long": Workload(8, 4, long=True),
                                 "2x4-img3": Workload(2, 4, images=3), "2x4-long": Workload(2, 4, long=True)}
VARIANTS: dict[str, dict[str, bool]] = {
    "visionrl": dict(shared_vision=True, shared_prefix=True, reencode=False),
    "naive": dict(shared_vision=False, shared_prefix=False, reencode=True),
    "reuse": dict(shared_vision=False, shared_prefix=False, reencode=False),
    "vision": dict(shared_vision=True, shared_prefix=False, reencode=False),
    "prefix": dict(shared_vision=False, shared_prefix=True, reencode=False),
}
COMMON = dict(num_prompts=256, max_new_tokens=32, temperature=1.0, top_p=1.0, top_k=0, lr=1e-5, weight_decay=0.0,
              max_grad_norm=1.0, beta=0.0, epsilon=0.2, loss="dapo", adv_scale="group", num_iterations=1, seed=0)


# ============================================================================================ workers


def worker_main(a: argparse.Namespace) -> None:
    from grpo_workers import run_trl, run_visionrl

    bc.set_threads(a.threads)
    results = {}
    for setting in a.settings.split(","):
        w = SETTINGS[setting]
        if a.worker == "trl":
            with tempfile.TemporaryDirectory() as tmp:
                res = run_trl(a.model_dir, w, COMMON, a.steps, a.warmup, tmp)
        else:
            res = run_visionrl(a.model_dir, w, COMMON, a.steps, a.warmup, VARIANTS[a.worker], a.engine)
        results[setting] = res
        print(f"[{a.worker} {a.size} {setting}] {res['steps_per_s']:.2f} steps/s  {res['completions_per_s']:.1f} "
              f"completions/s  threads={res['threads']}", file=sys.stderr, flush=True)
    bc.write_json(a.result, {"versions": bc.versions(), "results": results})


def profile_main(a: argparse.Namespace) -> None:
    import cProfile
    import pstats

    from grpo_workers import run_visionrl
    from visionrl.core.vlm.tiny import TinySpec, build_tiny

    bc.set_threads(a.threads)
    with tempfile.TemporaryDirectory() as tmp:
        build_tiny("qwen2_5_vl", tmp, spec=TinySpec(**SIZES[a.size]))
        prof = cProfile.Profile()
        prof.enable()
        res = run_visionrl(tmp, SETTINGS[a.settings.split(",")[0]], COMMON, a.steps, a.warmup,
                           VARIANTS[a.variant], a.engine)
        prof.disable()
    print(f"{res['steps_per_s']:.2f} steps/s; phases per step: "
          + ", ".join(f"{k}={v * 1e3:.1f}ms" for k, v in res["phase_s_per_step"].items()))
    pstats.Stats(prof).sort_stats(a.sort).print_stats(a.top)


# ============================================================================================ orchestrator


def fmt_table(res: dict[str, Any], sides: list[str]) -> str:
    rows = []
    for size, by_setting in res.items():
        for setting, by_side in by_setting.items():
            w = SETTINGS[setting]
            for side in sides:
                r = by_side.get(side)
                if r is None:
                    continue
                vs_trl, vs_naive = by_side.get(f"{side}/trl"), by_side.get(f"{side}/naive")
                cpu_trl = by_side.get(f"{side}/trl cpu")
                reps = by_side.get(f"{side}/trl by repeat") or []
                rows.append([size, setting, f"{w.prompts}×{w.group}={w.prompts * w.group}", side,
                             f"{r['steps_per_s']:.2f}", f"{r['completions_per_s']:.1f}",
                             f"{r['completion_tokens_per_s']:.0f}",
                             f"{r['step_s_median'] * 1e3:.0f} ({r['step_s_q1'] * 1e3:.0f}–{r['step_s_q3'] * 1e3:.0f})",
                             f"{r['mean_completion_len']:.1f}", f"{r['prompt_tokens']:.0f}",
                             f"**{vs_trl:.2f}×**" if vs_trl else "", f"{vs_naive:.2f}×" if vs_naive else "",
                             f"{cpu_trl:.2f}×" if cpu_trl else "", " ".join(f"{x:.2f}" for x in reps)])
    head = ["model", "setting", "completions/step", "side", "steps/s", "completions/s", "completion tok/s",
            "median step (IQR) ms", "mean len", "prompt tokens", "÷ TRL", "÷ naive", "÷ TRL (CPU time)",
            "÷ TRL by repeat"]
    return bc.md_table(head, rows)


PHASES = ["rollout(total)", "generate", "reward", "update(total)", "update:encode", "update:vision",
          "update:forward", "update:backward", "metrics+log"]


def fmt_phases(res: dict[str, Any], sides: list[str]) -> str:
    rows = []
    for size, by_setting in res.items():
        for setting, by_side in by_setting.items():
            for side in sides:
                r = by_side.get(side)
                if r is None:
                    continue
                ph = r["phase_s_per_step"]
                rows.append([size, setting, side, f"{r['wall_s'] / r['timed_steps'] * 1e3:.1f}",
                             *[f"{ph[n] * 1e3:.1f}" if n in ph else "–" for n in PHASES]])
    return bc.md_table(["model", "setting", "side", "step", *PHASES], rows)


def summarize(by_side: dict[str, Any], sides: list[str]) -> None:
    """Per side the run with the median steps/s; per compared pair the median over repeats of the ratio
    within a repeat (the two sides ran close together), in wall-clock and CPU time."""
    for side in sides:
        if by_side.get(f"{side}_runs"):
            by_side[side] = bc.median_run(by_side[f"{side}_runs"], "steps_per_s")
    for side in sides:
        for base in ("trl", "naive"):
            if side in (base, "trl") or side not in by_side or base not in by_side:
                continue
            pairs = list(zip(by_side[f"{side}_runs"], by_side[f"{base}_runs"], strict=True))
            by_side[f"{side}/{base}"] = statistics.median(x["completions_per_s"] / y["completions_per_s"]
                                                          for x, y in pairs)
            by_side[f"{side}/{base} cpu"] = statistics.median(x["completions_per_cpu_s"] / y["completions_per_cpu_s"]
                                                              for x, y in pairs)
            by_side[f"{side}/{base} by repeat"] = [x["completions_per_s"] / y["completions_per_s"] for x, y in pairs]


def orchestrate(a: argparse.Namespace) -> None:
    from visionrl.core.vlm.tiny import TinySpec, build_tiny

    t_start = time.perf_counter()
    sizes, settings, sides = a.sizes.split(","), a.settings.split(","), a.sides.split(",")
    results: dict[str, Any] = {s: {st: {} for st in settings} for s in sizes}
    loads: list[dict[str, Any]] = []
    worker_versions: dict[str, Any] = {}
    start_loads = bc.wait_for_quiet(a.max_load, a.load_tries, a.load_wait)
    script = Path(__file__).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        dirs = {}
        for size in sizes:
            dirs[size] = str(Path(tmp) / size)
            build_tiny("qwen2_5_vl", dirs[size], spec=TinySpec(**SIZES[size]))
        # One worker per side and size runs every setting; with --per-setting, one per side, size and setting,
        # so the sides of one comparison run back to back (steadier ratios on a shared machine, more start-ups).
        groups = [[st] for st in settings] if a.per_setting else [settings]
        for rep in range(a.repeats):
            for size in sizes:
                for group in groups:
                    for side in bc.alternate(sides, rep):
                        args = ["--model-dir", dirs[size], "--size", size, "--settings", ",".join(group), "--steps",
                                str(a.steps), "--warmup", str(a.warmup), "--engine", a.engine]
                        data, load = bc.run_worker(script, side, args, a, Path(tmp), needs_trl=side == "trl")
                        worker_versions[side] = data["versions"]
                        loads.append({**load, "size": size, "settings": group, "repeat": rep})
                        for setting, r in data["results"].items():
                            results[size][setting].setdefault(f"{side}_runs", []).append(r)
    for size in sizes:
        for by_side in results[size].values():
            summarize(by_side, sides)
    settings_meta = {**COMMON, "sizes": {s: SIZES[s] for s in sizes}, "sides": sides, "engine": a.engine,
                     "workloads": {s: asdict(SETTINGS[s]) for s in settings}, "steps": a.steps, "warmup": a.warmup,
                     "variants": {s: VARIANTS[s] for s in sides if s in VARIANTS}}
    m = bc.meta("uv run --with trl==1.16.0 python benchmarks/grpo_vs_trl.py", a, start_loads, loads,
                worker_versions, settings_meta, t_start)
    table, phases = fmt_table(results, sides), fmt_phases(results, sides)
    bc.publish("GRPO visionrl vs TRL", m, a.out, {"results": results, "table_md": table, "phases_md": phases},
               f"{a.steps} timed steps after {a.warmup} warm-up steps, {a.repeats} repeat(s), visionrl engine {a.engine}",
               table + "\n\nMean time per step by phase (ms):\n\n" + phases)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    bc.add_common_args(p, DEFAULT_OUT)
    p.add_argument("--steps", type=int, default=12, help="timed optimizer steps per setting")
    p.add_argument("--warmup", type=int, default=3, help="steps run first and left out of the timing")
    p.add_argument("--engine", choices=("hf", "lean"), default="lean", help="visionrl's rollout engine")
    p.add_argument("--sizes", default=",".join(SIZES), help=f"comma list of {list(SIZES)}")
    p.add_argument("--settings", default="2x4,16x4,8x4-img3,8x4-long", help=f"comma list of {list(SETTINGS)}")
    p.add_argument("--sides", default="trl,visionrl,naive", help=f"comma list of trl and {list(VARIANTS)}")
    p.add_argument("--per-setting", action="store_true", help="one worker per side and setting (see orchestrate)")
    p.add_argument("--profile", action="store_true", help="cProfile one visionrl size and setting")
    p.add_argument("--variant", default="visionrl", choices=list(VARIANTS), help="visionrl variant for --profile")
    p.add_argument("--sort", default="cumulative", help="pstats sort key for --profile")
    p.add_argument("--top", type=int, default=40, help="rows printed by --profile")
    p.add_argument("--model-dir", help=argparse.SUPPRESS)
    p.add_argument("--size", default="h64-l2", help=argparse.SUPPRESS)
    a = p.parse_args()
    unknown = [s for s in a.sides.split(",") if s != "trl" and s not in VARIANTS]
    if unknown or any(s not in SETTINGS for s in a.settings.split(",")):
        p.error(f"unknown side or setting: {unknown or a.settings}")
    if a.worker:
        worker_main(a)
    elif a.profile:
        profile_main(a)
    else:
        orchestrate(a)


if __name__ == "__main__":
    main()
