"""Multiple-choice scoring throughput: robustness letter scoring (one forward) against generating the answer.

    uv run python benchmarks/letter_scoring.py

On the same items (`ShapesWorld(seed=0).mcq`, the robustness package's `base` prompt variant), alternating in
every round:

- `letter`: `visionrl.core.evaluation.letters.stats_for`: one teacher-forced forward up to `<answer>` gives the
  restricted letter distribution, P(correct) and entropy of every item;
- `generate (hf)` / `generate (lean)`: greedy generation of up to `--max-new-tokens` tokens (the robustness
  eval preset's 48) with `generate_texts`, then the option letter parsed from the text
  (`extract_choice_letter`), on each rollout engine.

The model is the embedded demo model (`--model demo`, built and cached on first use), which answers in the
`<think>…</think><answer>…</answer>` format, so generation stops at its own end-of-sequence as in a real
evaluation. Items/s, the letter ÷ generation speed-up and each method's accuracy are reported.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_common as bc  # noqa: E402

DEFAULT_OUT = bc.RESULTS / "letter_scoring.json"
METHODS = ("letter", "generate (hf)", "generate (lean)")


def run(model: str, items_n: int, batch_size: int, max_new_tokens: int, rounds: int) -> dict[str, Any]:
    import dataclasses

    from visionrl.core.data.shapes import ShapesWorld
    from visionrl.core.evaluation.letters import letter_token_ids, scoring_prefill, stats_for
    from visionrl.core.evaluation.models import load_model
    from visionrl.core.rewards import extract_choice_letter
    from visionrl.core.rollout import SamplingParams, generate_texts
    from visionrl.robustness.perturb import perturb_all

    vlm = load_model(model)
    vlm.model.eval()
    items = perturb_all(ShapesWorld(seed=0).mcq(items_n), ["base"])
    letters = [sorted(it.options) for it in items]
    ids = letter_token_ids(vlm.tokenizer, sorted({x for row in letters for x in row}))
    scoring = [dataclasses.replace(it.prompt, prefill=scoring_prefill(it.prefix, "")) for it in items]
    greedy = SamplingParams(do_sample=False, max_new_tokens=max_new_tokens)
    batches = [range(lo, min(len(items), lo + batch_size)) for lo in range(0, len(items), batch_size)]
    outputs: dict[str, list[Any]] = {}
    lengths: dict[str, list[int]] = {}  # generated tokens per item (text re-tokenized, EOS not counted)

    def letter() -> None:
        outputs["letter"] = [s for idx in batches for s in stats_for(
            vlm, [scoring[i] for i in idx], [letters[i] for i in idx], [items[i].answer for i in idx], ids)]

    def generated(engine: str) -> Any:
        def fn() -> None:
            texts = generate_texts(vlm, [it.prompt for it in items], greedy, engine=engine, batch_size=batch_size)
            outputs[f"generate ({engine})"] = [extract_choice_letter(it.prefix + t, "".join(sorted(it.options)))
                                               for it, t in zip(items, texts, strict=True)]
            lengths[f"generate ({engine})"] = [len(vlm.tokenizer(t, add_special_tokens=False)["input_ids"])
                                               for t in texts]
        return fn

    fns = {"letter": letter, "generate (hf)": generated("hf"), "generate (lean)": generated("lean")}
    wall: dict[str, list[float]] = {k: [] for k in fns}
    cpu: dict[str, list[float]] = {k: [] for k in fns}
    for f in fns.values():
        f()  # warm-up
    for r in range(rounds):
        for name in bc.alternate(list(fns), r):
            t0, c0 = time.perf_counter(), time.process_time()
            fns[name]()
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    acc = {"letter": statistics.mean(float(max(s["letter_probs"], key=s["letter_probs"].get) == it.answer)
                                     for s, it in zip(outputs["letter"], items, strict=True))}
    for name in fns:
        if name != "letter":
            acc[name] = statistics.mean(float(p == it.answer) for p, it in zip(outputs[name], items, strict=True))
    return {name: {"wall_s": statistics.median(wall[name]), "cpu_s": statistics.median(cpu[name]), "wall_all": wall[name],
                   "items_per_s": len(items) / statistics.median(wall[name]), "accuracy": acc[name],
                   "mean_generated_tokens": statistics.mean(lengths[name]) if name in lengths else 0.0,
                   "max_generated_tokens": max(lengths[name]) if name in lengths else 0} for name in fns}


def worker_main(a: argparse.Namespace) -> None:
    bc.set_threads(a.threads)
    res = run(a.model, a.items, a.batch_size, a.max_new_tokens, a.rounds)
    print("[letter] " + ", ".join(f"{k} {v['items_per_s']:.1f} items/s" for k, v in res.items()), file=sys.stderr)
    from visionrl.core.demo import resolve_model

    bc.write_json(a.result, {"versions": bc.versions(), "results": res, "model_path": resolve_model(a.model)})


def orchestrate(a: argparse.Namespace) -> None:
    import tempfile

    t_start = time.perf_counter()
    start_loads = bc.wait_for_quiet(a.max_load, a.load_tries, a.load_wait)
    runs, loads, worker_versions, paths = [], [], {}, set()
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(a.repeats):
            args = ["--model", a.model, "--items", str(a.items), "--batch-size", str(a.batch_size),
                    "--max-new-tokens", str(a.max_new_tokens), "--rounds", str(a.rounds)]
            data, load = bc.run_worker(Path(__file__).resolve(), "letter", args, a, Path(tmp))
            runs.append(data["results"])
            loads.append({**load, "repeat": rep})
            worker_versions["letter"] = data["versions"]
            paths.add(data["model_path"])
    res = {m: bc.median_run([r[m] for r in runs], "wall_s") for m in METHODS}
    rows = [[m, f"{r['items_per_s']:.1f}", f"{r['wall_s']:.2f}", f"{r['accuracy']:.3f}",
             f"{r['mean_generated_tokens']:.1f} (max {r['max_generated_tokens']})" if m != "letter" else "–",
             f"**{res[m]['wall_s'] / res['letter']['wall_s']:.1f}×**" if m != "letter" else "",
             f"{res[m]['cpu_s'] / res['letter']['cpu_s']:.1f}×" if m != "letter" else ""] for m, r in res.items()]
    table = bc.md_table(["method", "items/s", f"s per {a.items} items", "accuracy", "generated tokens", "letter speed-up",
                         "letter speed-up (CPU time)"], rows)
    settings = {"model": a.model, "model_path": sorted(paths), "items": a.items, "variant": "base", "batch_size": a.batch_size,
                "max_new_tokens": a.max_new_tokens, "rounds": a.rounds}
    m = bc.meta("uv run python benchmarks/letter_scoring.py", a, start_loads, loads, worker_versions, settings, t_start)
    bc.publish("Letter scoring vs generation scoring", m, a.out, {"results": res, "runs": runs, "table_md": table},
               f"{a.items} items, batch {a.batch_size}, generation up to {a.max_new_tokens} tokens, median of {a.rounds} rounds",
               table)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    bc.add_common_args(p, DEFAULT_OUT)
    p.add_argument("--model", default="demo", help="model dir, hub id or `demo`")
    p.add_argument("--items", type=int, default=128, help="multiple-choice items")
    p.add_argument("--batch-size", type=int, default=32, help="prompts per forward / generate call")
    p.add_argument("--max-new-tokens", type=int, default=48, help="generation budget (robustness eval preset: 48)")
    p.add_argument("--rounds", type=int, default=3, help="timed passes of each method (alternating order)")
    a = p.parse_args()
    worker_main(a) if a.worker else orchestrate(a)


if __name__ == "__main__":
    main()
