"""Reward-model training throughput: visionrl's `RewardModelModule` against TRL's `RewardTrainer`.

    uv run --with trl==1.16.0 python benchmarks/rm_vs_trl.py

TRL has no VLM reward model, so the comparison runs on text-only pairs and one text backbone: the tiny
Qwen2.5-VL's decoder. visionrl trains `RewardModelModule` (core's public API: backbone + linear head on the
last response token, Bradley-Terry loss) on the tiny VLM with text-only pairs; TRL trains `RewardTrainer` on
`Qwen2ForSequenceClassification(num_labels=1)` built from the same text config, with the VLM decoder's weights
copied in. Both see the same token sequences (TRL gets each pair's prompt already rendered by the chat template,
so it appends response + EOS exactly as visionrl does), batch 8 pairs, one forward/backward per step, AdamW,
fp32, no padding-free, `center_rewards_coefficient` None/0 and 0.01.

Extra rows without a TRL counterpart: `visionrl-vlm` (the same module on pairs with their images) and
`visionrl-mlp` (a 2-layer MLP head). Result: `benchmarks/results/rm_vs_trl.json`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_common as bc  # noqa: E402
from grpo_workers import Phases, StepClock  # noqa: E402

DEFAULT_OUT = bc.RESULTS / "rm_vs_trl.json"
SIZES: dict[str, dict[str, int]] = {"h64-l2": {"hidden": 64, "layers": 2}, "h256-l4": {"hidden": 256, "layers": 4}}
SIDES = ("trl", "visionrl", "visionrl-vlm", "visionrl-mlp")
CENTERS = (0.0, 0.01)
COMMON = dict(num_pairs=512, batch_size=8, lr=1e-5, weight_decay=0.0, max_grad_norm=1.0, seed=0, max_length=128)


def pairs(with_images: bool) -> list[Any]:
    import dataclasses

    from visionrl.core.data.shapes import ShapesWorld

    out = ShapesWorld(seed=0).pairs(COMMON["num_pairs"])
    return out if with_images else [dataclasses.replace(p, images=[]) for p in out]


def run_visionrl(model_dir: str, side: str, center: float, steps: int, warmup: int) -> dict[str, Any]:
    import lightning as L
    import torch
    import visionrl.core.lit.reward_model as rm_mod
    from visionrl.core.hparams import LoadOptions, OptimConfig, RewardHeadConfig, RewardModelConfig
    from visionrl.core.lit.datamodules import StepDataModule
    from visionrl.core.lit.reward_model import RewardModelModule
    from visionrl.core.vlm import load_vlm

    torch.manual_seed(COMMON["seed"])
    vlm = load_vlm(model_dir, LoadOptions(dtype="float32", attn_implementation="sdpa"))
    head = RewardHeadConfig(kind="mlp", layers=2) if side == "visionrl-mlp" else RewardHeadConfig(kind="linear")
    cfg = RewardModelConfig(batch_size=COMMON["batch_size"], micro_batch_size=COMMON["batch_size"], head=head,
                            center_coef=center, optim=OptimConfig(lr=COMMON["lr"], weight_decay=COMMON["weight_decay"],
                                                                  max_grad_norm=COMMON["max_grad_norm"],
                                                                  schedule="constant"))
    total = warmup + steps
    module = RewardModelModule(vlm, cfg, pairs(side == "visionrl-vlm"), max_steps=total, seed=COMMON["seed"])
    phases = Phases()  # module-level names the step calls, wrapped in place (this worker process only)
    phases.wrap(rm_mod, "records_for_step", "rows")
    phases.wrap(rm_mod, "encode_distinct", "encode")
    phases.wrap(vlm, "encode_targets", "encode")
    phases.wrap(rm_mod, "score_encoded", "forward")
    phases.wrap(module, "manual_backward", "backward")
    clock = StepClock(phases)

    class Timer(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            clock.begin()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            clock.end(0)

    trainer = L.Trainer(accelerator="cpu", devices=1, max_steps=total, max_epochs=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        num_sanity_val_steps=0, callbacks=[Timer()])
    trainer.fit(module, datamodule=StepDataModule(total))
    return _summary(clock, warmup)


PHASES = ("rows", "encode", "forward", "backward")
"""Per-step phases: `rows` picks the step's pairs (visionrl: `records_for_step`; TRL: `get_batch_samples`, which
collates pre-tokenized rows), `encode` runs the chat template and processor on the prompts and tokenizes the
responses (visionrl only: TRL tokenizes the dataset once, before training), `forward` the scores and loss,
`backward` the backward pass; the rest of the step (clipping, AdamW, loop, logging) is `other`."""


def _summary(clock: StepClock, warmup: int) -> dict[str, Any]:
    s = clock.summary(warmup, COMMON["batch_size"])
    ph = {k: s["phase_s_per_step"].get(k, 0.0) for k in PHASES}
    ph["other"] = s["wall_s"] / s["timed_steps"] - sum(ph.values())
    return {"pairs_per_s": s["completions_per_s"], "pairs_per_cpu_s": s["completions_per_cpu_s"],
            "steps_per_s": s["steps_per_s"], "step_s_median": s["step_s_median"], "step_s_q1": s["step_s_q1"],
            "step_s_q3": s["step_s_q3"], "threads": s["threads"], "timed_steps": s["timed_steps"],
            "step_s_mean": s["wall_s"] / s["timed_steps"], "phase_s_per_step": ph}


def text_backbone(model_dir: str) -> Any:
    """Qwen2ForSequenceClassification with the tiny VLM's text config and decoder weights."""
    import torch
    from transformers import AutoModelForImageTextToText, Qwen2Config, Qwen2ForSequenceClassification

    vlm = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=torch.float32)
    t = vlm.config.get_text_config()
    cfg = Qwen2Config(vocab_size=t.vocab_size, hidden_size=t.hidden_size, intermediate_size=t.intermediate_size,
                      num_hidden_layers=t.num_hidden_layers, num_attention_heads=t.num_attention_heads,
                      num_key_value_heads=t.num_key_value_heads, max_position_embeddings=t.max_position_embeddings,
                      rms_norm_eps=t.rms_norm_eps, tie_word_embeddings=False, num_labels=1,
                      pad_token_id=t.pad_token_id, eos_token_id=t.eos_token_id, attn_implementation="sdpa")
    model = Qwen2ForSequenceClassification(cfg)
    decoder = {k.removeprefix("model.language_model."): v for k, v in vlm.state_dict().items()
               if k.startswith("model.language_model.")}
    missing = model.model.load_state_dict(decoder, strict=True)
    assert not missing.missing_keys and not missing.unexpected_keys
    return model


def run_trl(model_dir: str, center: float, steps: int, warmup: int, out_dir: str) -> dict[str, Any]:
    import torch
    from datasets import Dataset
    from transformers import AutoProcessor, TrainerCallback
    from trl import RewardConfig, RewardTrainer
    from visionrl.core.chat import Prompt

    torch.manual_seed(COMMON["seed"])
    processor = AutoProcessor.from_pretrained(model_dir)
    tok = processor.tokenizer

    def render(p: Any) -> str:
        return processor.apply_chat_template(Prompt.simple(p.prompt).messages(), add_generation_prompt=True,
                                             tokenize=False)

    ds = Dataset.from_list([{"prompt": render(p), "chosen": p.chosen, "rejected": p.rejected} for p in pairs(False)])
    total = warmup + steps
    args = RewardConfig(output_dir=out_dir, max_steps=total, per_device_train_batch_size=COMMON["batch_size"],
                        gradient_accumulation_steps=1, learning_rate=COMMON["lr"], lr_scheduler_type="constant",
                        warmup_steps=0, weight_decay=COMMON["weight_decay"], optim="adamw_torch",
                        max_grad_norm=COMMON["max_grad_norm"], max_length=COMMON["max_length"],
                        center_rewards_coefficient=center or None, gradient_checkpointing=False, bf16=False,
                        fp16=False, use_cpu=True, report_to="none", save_strategy="no", logging_strategy="no",
                        disable_tqdm=True, dataloader_num_workers=0, seed=COMMON["seed"])
    trainer = RewardTrainer(model=text_backbone(model_dir), args=args, train_dataset=ds, processing_class=tok)
    phases = Phases()  # the dataset was tokenized in __init__ (before the timed steps); per step: collate, fwd, bwd
    phases.wrap(trainer, "get_batch_samples", "rows")
    phases.wrap(trainer, "compute_loss", "forward")
    phases.wrap(trainer.accelerator, "backward", "backward")
    clock = StepClock(phases)

    class Timer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            clock.begin()

        def on_step_end(self, args, state, control, **kwargs):
            clock.end(0)

    trainer.add_callback(Timer())
    trainer.train()
    return _summary(clock, warmup)


def worker_main(a: argparse.Namespace) -> None:
    bc.set_threads(a.threads)
    res = {}
    for center in CENTERS if a.worker in ("trl", "visionrl") else (0.0,):
        if a.worker == "trl":
            with tempfile.TemporaryDirectory() as tmp:
                r = run_trl(a.model_dir, center, a.steps, a.warmup, tmp)
        else:
            r = run_visionrl(a.model_dir, a.worker, center, a.steps, a.warmup)
        res[f"center={center}"] = r
        print(f"[{a.worker} {a.size} center={center}] {r['pairs_per_s']:.1f} pairs/s", file=sys.stderr, flush=True)
    bc.write_json(a.result, {"versions": bc.versions(), "results": res})


def orchestrate(a: argparse.Namespace) -> None:
    from visionrl.core.vlm.tiny import TinySpec, build_tiny

    t_start = time.perf_counter()
    start_loads = bc.wait_for_quiet(a.max_load, a.load_tries, a.load_wait)
    sides, sizes = a.sides.split(","), a.sizes.split(",")
    runs: dict[str, dict[str, list[Any]]] = {s: {} for s in sizes}
    loads, worker_versions = [], {}
    script = Path(__file__).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(a.repeats):
            for size in sizes:
                model_dir = Path(tmp) / size
                if not model_dir.exists():
                    build_tiny("qwen2_5_vl", model_dir, spec=TinySpec(**SIZES[size]))
                for side in bc.alternate(sides, rep):
                    args = ["--model-dir", str(model_dir), "--size", size, "--steps", str(a.steps),
                            "--warmup", str(a.warmup)]
                    data, load = bc.run_worker(script, side, args, a, Path(tmp), needs_trl=side == "trl")
                    worker_versions[side] = data["versions"]
                    loads.append({**load, "size": size, "repeat": rep})
                    for setting, r in data["results"].items():
                        runs[size].setdefault(f"{side} {setting}", []).append(r)
    results = {size: {k: bc.median_run(v, "pairs_per_s") for k, v in by.items()} for size, by in runs.items()}
    rows = []
    for size, by in results.items():
        for key, r in by.items():
            side, setting = key.split(" ")
            trl = by.get(f"trl {setting}") if side == "visionrl" else None
            rows.append([size, side, setting, f"{r['pairs_per_s']:.1f}",
                         f"{r['step_s_median'] * 1e3:.0f} ({r['step_s_q1'] * 1e3:.0f}–{r['step_s_q3'] * 1e3:.0f})",
                         f"**{r['pairs_per_s'] / trl['pairs_per_s']:.2f}×**" if trl else "",
                         f"{r['pairs_per_cpu_s'] / trl['pairs_per_cpu_s']:.2f}×" if trl else ""])
    table = bc.md_table(["model", "side", "setting", "pairs/s", "median step (IQR) ms", "÷ TRL", "÷ TRL (CPU time)"],
                        rows)
    phase_rows = [[size, *key.split(" "), f"{r['step_s_mean'] * 1e3:.1f}",
                   *(f"{r['phase_s_per_step'][k] * 1e3:.1f}" for k in (*PHASES, "other"))]
                  for size, by in results.items() for key, r in by.items()]
    phases = bc.md_table(["model", "side", "setting", "step", *PHASES, "other"], phase_rows)
    settings = {**COMMON, "sizes": {s: SIZES[s] for s in sizes}, "sides": sides, "centers": CENTERS,
                "steps": a.steps, "warmup": a.warmup}
    m = bc.meta("uv run --with trl==1.16.0 python benchmarks/rm_vs_trl.py", a, start_loads, loads, worker_versions,
                settings, t_start)
    bc.publish("Reward model: visionrl vs TRL RewardTrainer", m, a.out,
               {"results": results, "runs": runs, "table_md": table, "phases_md": phases},
               f"{a.steps} timed steps after {a.warmup} warm-up steps, batch {COMMON['batch_size']} pairs",
               table + "\n\nMean time per step by phase (ms):\n\n" + phases)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    bc.add_common_args(p, DEFAULT_OUT)
    p.add_argument("--steps", type=int, default=30, help="timed optimizer steps per setting")
    p.add_argument("--warmup", type=int, default=3, help="steps run first and left out of the timing")
    p.add_argument("--sizes", default=",".join(SIZES), help=f"comma list of {list(SIZES)}")
    p.add_argument("--sides", default=",".join(SIDES), help=f"comma list of {list(SIDES)}")
    p.add_argument("--model-dir", help=argparse.SUPPRESS)
    p.add_argument("--size", default="h64-l2", help=argparse.SUPPRESS)
    a = p.parse_args()
    worker_main(a) if a.worker else orchestrate(a)


if __name__ == "__main__":
    main()
