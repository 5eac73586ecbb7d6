"""Decode throughput: visionrl's lean KV-cache loop against `model.generate`, and against its own floor.

    uv run python benchmarks/decode_vs_generate.py

Per model size one worker process times, alternating in every round, on the same encoded prompts:

- `generate`: transformers' `model.generate` (sampling T=1, top-k 0, top-p 1, vision tokens suppressed), on
  every row's own copy of its prompt, as `GRPOConfig(engine="hf")` runs it;
- `lean`: `rollout.lean.lean_generate`, same sampling, each distinct prompt prefilled once;
- `floor`: the forward passes `lean` must run and nothing else: the same prefill, then one `TextDecoder.step`
  per token fed the tokens `lean` drew, with no sampling and no stopping checks;
- `floor (VLM)`: the same tokens through the full VLM forward per token (what `generate` cannot avoid).

Layouts: `B distinct` (B different prompts, one completion each: the loops alone) and `B/4×4` (B/4 prompts ×
G = 4 completions, the GRPO rollout: `lean` prefills each prompt once). Every row runs exactly `--new-tokens`
tokens: end-of-sequence is set to a vision token, which sampling never draws (the same on every side).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_common as bc  # noqa: E402

DEFAULT_OUT = bc.RESULTS / "decode_vs_generate.json"
SIZES: dict[str, dict[str, int]] = {"h64-l2": {"hidden": 64, "layers": 2}, "h256-l4": {"hidden": 256, "layers": 4}}
METHODS = ("generate", "lean", "floor", "floor (VLM)")


def floor_runs(vlm: Any, enc: dict[str, Any], tokens_NC: Any, repeats: int) -> tuple[Any, Any]:
    """The two floors: `lean`'s prefill and decoder steps, and the same tokens through the full VLM forward."""
    import torch
    from visionrl.core.rollout import lean
    from visionrl.core.vlm.adapters import hf_model

    model, adapter = vlm.model, vlm.adapter

    def prefill() -> tuple[Any, dict[str, Any]]:
        adapter.reset_state(model)
        positions, offset_B = adapter.prefill_positions(hf_model(model), enc)
        out = model(**enc, **positions, use_cache=True, logits_to_keep=1)
        if repeats > 1:
            out.past_key_values.batch_repeat_interleave(repeats)
        state = {"attention_mask": lean._repeat(enc["attention_mask"], repeats), "offset": lean._repeat(offset_B, repeats)}
        if "cross_attention_mask" in enc:
            state["cross_attention_mask"] = lean._repeat(enc["cross_attention_mask"], repeats)
        return out.past_key_values, state

    @torch.no_grad()
    def text_floor() -> None:
        cache, state = prefill()
        decoder = lean.TextDecoder(vlm, model, state, cache)
        for t in range(tokens_NC.shape[1] - 1):
            decoder.step(tokens_NC[:, t], t)
        adapter.reset_state(model)

    @torch.no_grad()
    def vlm_floor() -> None:
        cache, state = prefill()
        for t in range(tokens_NC.shape[1] - 1):
            model(**lean._decode_inputs(vlm, state, tokens_NC[:, t]), past_key_values=cache, use_cache=True)
        adapter.reset_state(model)

    return text_floor, vlm_floor


def run_size(model_dir: str, batches: list[int], new_tokens: int, rounds: int) -> dict[str, Any]:
    import torch
    from visionrl.core.data.shapes import ShapesWorld
    from visionrl.core.hparams import LoadOptions, SamplingParams
    from visionrl.core.rollout.lean import lean_generate
    from visionrl.core.vlm import Prompt, load_vlm

    vlm = load_vlm(model_dir, LoadOptions(dtype="float32", attn_implementation="sdpa"))
    vlm.model.eval()
    vlm.eos_token_id = vlm.suppress_ids[0]  # never sampled: every row decodes all `new_tokens` tokens
    sampling = SamplingParams(max_new_tokens=new_tokens, temperature=1.0, top_p=1.0, top_k=0)
    records = ShapesWorld(seed=0).vqa(max(batches))
    out: dict[str, Any] = {}
    for b in batches:
        for layout, g in ((f"{b} distinct", 1), (f"{b // 4}×4", 4)):
            prompts = [Prompt.simple(r.question, r.images) for r in records[: b // g]]
            enc = vlm.encode(prompts)
            rows = vlm.encode([p for p in prompts for _ in range(g)])
            torch.manual_seed(0)
            tokens_NC = lean_generate(vlm, enc, sampling, repeats=g)
            assert tokens_NC.shape == (b, new_tokens)
            text_floor, vlm_floor = floor_runs(vlm, enc, tokens_NC, g)
            fns = {"generate": lambda rows=rows: vlm.generate(rows, max_new_tokens=new_tokens, do_sample=True,
                                                              temperature=1.0, top_p=1.0, top_k=0),
                   "lean": lambda enc=enc, g=g: lean_generate(vlm, enc, sampling, repeats=g),
                   "floor": text_floor, "floor (VLM)": vlm_floor}
            wall: dict[str, list[float]] = {k: [] for k in fns}
            cpu: dict[str, list[float]] = {k: [] for k in fns}
            for f in fns.values():  # warm-up
                f()
            for r in range(rounds):
                for name in bc.alternate(list(fns), r):
                    t0, c0 = time.perf_counter(), time.process_time()
                    fns[name]()
                    wall[name].append(time.perf_counter() - t0)
                    cpu[name].append(time.process_time() - c0)
            res = {k: {"wall_s": statistics.median(wall[k]), "cpu_s": statistics.median(cpu[k]),
                       "wall_all": wall[k], "tokens_per_s": b * new_tokens / statistics.median(wall[k])} for k in fns}
            res["prompt_tokens"] = float(enc["attention_mask"].sum(1).float().mean())
            out[layout] = res
            print(f"[{layout}] " + ", ".join(f"{k} {v['tokens_per_s']:.0f} tok/s" for k, v in res.items()
                                             if isinstance(v, dict)), file=sys.stderr, flush=True)
    return out


def worker_main(a: argparse.Namespace) -> None:
    bc.set_threads(a.threads)
    res = run_size(a.model_dir, [int(x) for x in a.batches.split(",")], a.new_tokens, a.rounds)
    bc.write_json(a.result, {"versions": bc.versions(), "results": res})


def fmt(results: dict[str, Any]) -> str:
    rows = []
    for size, layouts in results.items():
        for layout, r in layouts.items():
            gen, lean, fl, flv = (r[m] for m in METHODS)
            rows.append([size, layout, *(f"{r[m]['tokens_per_s']:.0f}" for m in METHODS),
                         f"**{gen['wall_s'] / lean['wall_s']:.2f}×**", f"**{lean['wall_s'] / fl['wall_s']:.2f}×**",
                         f"{gen['wall_s'] / flv['wall_s']:.2f}×",
                         f"{gen['cpu_s'] / lean['cpu_s']:.2f}× / {lean['cpu_s'] / fl['cpu_s']:.2f}×"])
    head = ["model", "rows", *(f"{m} tok/s" for m in METHODS), "lean speed-up (generate ÷ lean)",
            "lean ÷ floor", "generate ÷ floor (VLM)", "CPU time: speed-up / ÷ floor"]
    return bc.md_table(head, rows)


def orchestrate(a: argparse.Namespace) -> None:
    from visionrl.core.vlm.tiny import TinySpec, build_tiny

    t_start = time.perf_counter()
    start_loads = bc.wait_for_quiet(a.max_load, a.load_tries, a.load_wait)
    results: dict[str, Any] = {}
    loads, worker_versions = [], {}
    script = Path(__file__).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(a.repeats):
            for size in a.sizes.split(","):
                model_dir = Path(tmp) / size
                if not model_dir.exists():
                    build_tiny("qwen2_5_vl", model_dir, spec=TinySpec(**SIZES[size]))
                args = ["--model-dir", str(model_dir), "--batches", a.batches, "--new-tokens", str(a.new_tokens),
                        "--rounds", str(a.rounds)]
                data, load = bc.run_worker(script, size, args, a, Path(tmp))
                worker_versions[size] = data["versions"]
                loads.append({**load, "repeat": rep})
                results.setdefault(size, []).append(data["results"])
    merged = {size: {layout: {m: bc.median_run([run[layout][m] for run in runs], "wall_s") for m in METHODS}
                     | {"prompt_tokens": runs[0][layout]["prompt_tokens"]} for layout in runs[0]}
              for size, runs in results.items()}
    settings = {"sizes": {s: SIZES[s] for s in a.sizes.split(",")}, "batches": a.batches, "new_tokens": a.new_tokens,
                "rounds": a.rounds, "sampling": "T=1.0, top_k=0, top_p=1.0", "attn": "sdpa", "dtype": "float32"}
    m = bc.meta("uv run python benchmarks/decode_vs_generate.py", a, start_loads, loads, worker_versions, settings,
                t_start)
    table = fmt(merged)
    bc.publish("Decode: lean vs generate vs forward floor", m, a.out,
               {"results": merged, "runs": results, "table_md": table},
               f"{a.new_tokens} new tokens per row, median of {a.rounds} alternating rounds, {a.repeats} worker(s) per size",
               table)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    bc.add_common_args(p, DEFAULT_OUT)
    p.add_argument("--sizes", default=",".join(SIZES), help=f"comma list of {list(SIZES)}")
    p.add_argument("--batches", default="8,16", help="rows per call (multiples of 4)")
    p.add_argument("--new-tokens", type=int, default=64, help="tokens decoded per row")
    p.add_argument("--rounds", type=int, default=7, help="timed calls of each method (alternating order)")
    p.add_argument("--model-dir", help=argparse.SUPPRESS)
    a = p.parse_args()
    if any(int(b) % 4 for b in a.batches.split(",")):
        p.error("--batches must be multiples of 4")
    worker_main(a) if a.worker else orchestrate(a)


if __name__ == "__main__":
    main()
