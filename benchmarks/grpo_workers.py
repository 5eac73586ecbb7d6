"""The two sides of `grpo_vs_trl.py`: one GRPO training run each, timed per step and per phase.

Both sides get the same records (`make_records`), the same reward, the same sampling, loss and optimiser
settings (`COMMON` in grpo_vs_trl.py); each maps them onto its own config. Per step a callback records start
and end (Lightning `on_train_batch_start/end`, TRL `on_step_begin/end`); thin wrappers add up the wall time of
named phases. steps/s = timed steps / (wall time from the end of the last warm-up step to the end of the last
step), so whatever happens between steps counts too.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

# A paragraph of the tiny tokenizer's own vocabulary; the `-long` settings put it before every question.
LONG_CONTEXT = ("Describe the image. a red circle on the left, a blue square in the middle, a green triangle on "
                "the right. Is there a yellow shape above the circle? How many shapes are there? ") * 6


def answer_reward(completion: str, answer: str) -> float:
    """The toy reward of both sides: 1.0 when the answer word appears in the completion."""
    return 1.0 if answer.lower() in completion.lower() else 0.0


def make_records(workload: Any, n: int) -> list[dict[str, Any]]:
    """`n` shapes questions as plain dicts (question, images, answer) shaped by the workload: one 56×56 image
    (4 vision tokens), or `workload.images` images of 112×112 (16 vision tokens each: the scene and the next ones)."""
    from visionrl.core.data.shapes import ShapesWorld

    recs = ShapesWorld(seed=0).vqa(n)
    side = 56 if workload.images == 1 else 112
    out = []
    for i, r in enumerate(recs):
        images = [recs[(i + k) % n].images[0].convert("RGB").resize((side, side)) for k in range(workload.images)]
        question = f"{LONG_CONTEXT}{r.question}" if workload.long else r.question
        out.append({"question": question, "images": images, "answer": r.answer})
    return out


class Phases:
    """Accumulates wall time of wrapped callables per named phase (a few perf_counter calls per call)."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}
        self.active: set[str] = set()

    def wrap_fn(self, fn: Any, name: str, unless: str | None = None) -> Any:
        def timed(*a, **kw):
            if (unless is not None and unless in self.active) or name in self.active:
                return fn(*a, **kw)
            self.active.add(name)
            t0 = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                self.totals[name] = self.totals.get(name, 0.0) + time.perf_counter() - t0
                self.active.discard(name)

        return timed

    def wrap(self, obj: Any, attr: str, name: str, unless: str | None = None) -> None:
        setattr(obj, attr, self.wrap_fn(getattr(obj, attr), name, unless))


class StepClock:
    """Per-step start/end times, completion tokens and phase snapshots."""

    def __init__(self, phases: Phases) -> None:
        self.phases = phases
        self.starts: list[float] = []
        self.ends: list[float] = []
        self.cpu_ends: list[float] = []  # process CPU time: with one thread, a load-robust cross-check
        self.tokens: list[int] = []
        self.phase_at_end: list[dict[str, float]] = []
        self.threads: int | None = None

    def begin(self) -> None:
        if self.threads is None:
            import torch

            self.threads = torch.get_num_threads()
        self.starts.append(time.perf_counter())

    def end(self, tokens: int) -> None:
        self.ends.append(time.perf_counter())
        self.cpu_ends.append(time.process_time())
        self.tokens.append(int(tokens))
        self.phase_at_end.append(dict(self.phases.totals))

    def summary(self, warmup: int, per_step: int) -> dict[str, Any]:
        n = len(self.ends) - warmup
        assert n >= 2 and warmup >= 1, f"{len(self.ends)} steps recorded with warmup {warmup}"
        durations = [e - s for s, e in zip(self.starts, self.ends, strict=True)][warmup:]
        wall = self.ends[-1] - self.ends[warmup - 1]
        cpu = self.cpu_ends[-1] - self.cpu_ends[warmup - 1]
        tokens = sum(self.tokens[warmup:])
        q = statistics.quantiles(durations, n=4)
        first, last = self.phase_at_end[warmup - 1], self.phase_at_end[-1]
        return {"timed_steps": n, "warmup_steps": warmup, "threads": self.threads, "wall_s": wall,
                "steps_per_s": n / wall, "completions_per_s": n * per_step / wall, "completion_tokens": tokens,
                "cpu_s": cpu, "completions_per_cpu_s": n * per_step / cpu,
                "completion_tokens_per_s": tokens / wall, "mean_completion_len": tokens / (n * per_step),
                "step_s_median": statistics.median(durations), "step_s_q1": q[0], "step_s_q3": q[2],
                "step_s_all": durations,
                "phase_s_per_step": {k: (last.get(k, 0.0) - first.get(k, 0.0)) / n for k in last}}


# ============================================================================================ visionrl side


def naive_logps(self: Any, model: Any, rows: Any, idx: list[int], features: Any, *, live: bool = False,
                with_entropy: bool = False) -> Any:
    """`GRPOModule._logps` as before issue 13: the micro-batch's prompts through the processor again, one
    full forward per completion."""
    enc = self.vlm.encode([rows.prompts[i] for i in idx], device=rows.completion_ids_NC.device)
    ids_BC, mask_BC = rows.completions(idx)
    lp = self.vlm.completion_logprobs(enc, ids_BC, mask_BC, temperature=self.cfg.sampling.temperature,
                                      with_entropy=with_entropy, model=model)
    return lp, ids_BC, mask_BC


def run_visionrl(model_dir: str, workload: Any, common: dict[str, Any], steps: int, warmup: int,
                 variant: dict[str, bool], engine: str) -> dict[str, Any]:
    import lightning as L
    import torch
    import visionrl.core.rollout.rollout as rollout_mod
    import visionrl.core.vlm.sharing as sharing
    from visionrl.core.chat import Prompt
    from visionrl.core.hparams import GRPOConfig, LoadOptions, OptimConfig, SamplingParams
    from visionrl.core.lit.datamodules import StepDataModule
    from visionrl.core.lit.grpo import GRPOModule
    from visionrl.core.rewards.base import NamedReward, RewardContext
    from visionrl.core.vlm.model import load_vlm

    per_step, total = workload.prompts * workload.group, warmup + steps
    torch.manual_seed(common["seed"])
    vlm = load_vlm(model_dir, LoadOptions(dtype="float32", attn_implementation="sdpa", gradient_checkpointing=False))
    records = make_records(workload, common["num_prompts"])

    def reward(ctx: RewardContext) -> list[float]:
        return [answer_reward(c, r["answer"]) for c, r in zip(ctx.completions, ctx.rows, strict=True)]

    cfg = GRPOConfig(
        engine=engine, num_generations=workload.group, prompts_per_step=workload.prompts,
        sampling=SamplingParams(max_new_tokens=common["max_new_tokens"], temperature=common["temperature"],
                                top_p=common["top_p"], top_k=common["top_k"]),
        optim=OptimConfig(lr=common["lr"], weight_decay=common["weight_decay"], max_grad_norm=common["max_grad_norm"],
                          schedule="constant", warmup_steps=0),
        beta=common["beta"], clip_low=common["epsilon"], clip_high=common["epsilon"], loss_agg=common["loss"],
        adv_scale=common["adv_scale"], ppo_epochs=common["num_iterations"], mini_batches=1,
        micro_batch_size=per_step,  # one forward/backward over the whole step, like TRL with GA=1
        gen_batch_size=per_step, log_samples_every=0,
        shared_vision=variant["shared_vision"], shared_prefix=variant["shared_prefix"])
    module = GRPOModule(vlm, cfg, [NamedReward("answer", reward)], records,
                        lambda r: Prompt.simple(r["question"], r["images"]), max_steps=total, seed=common["seed"])
    if variant["reencode"]:
        module._logps = naive_logps.__get__(module)

    phases = Phases()
    clock = StepClock(phases)
    counts = {"tokens": 0, "prompt_tokens": []}
    sample = module.sample

    def sample_and_count(step: int) -> Any:
        rollout, ctx = sample(step)
        counts["tokens"] = int(rollout.lengths_N.sum())
        enc, _ = rollout.encoded_prompts(vlm)
        counts["prompt_tokens"].append(float(enc.inputs["attention_mask"].sum(1).float().mean()))
        return rollout, ctx

    module.sample = sample_and_count
    phases.wrap(module, "sample", "rollout(total)")
    for name, eng in list(rollout_mod.ROLLOUT_ENGINES.items()):
        rollout_mod.ROLLOUT_ENGINES[name] = rollout_mod.Engine(phases.wrap_fn(eng.run, "generate"), eng.shares_prompts)
    phases.wrap(module, "score", "reward")
    phases.wrap(module, "update", "update(total)")
    phases.wrap(module, "log_metrics", "metrics+log")
    phases.wrap(vlm, "encode", "update:encode", unless="rollout(total)")
    phases.wrap(sharing, "image_features", "update:vision")
    phases.wrap(vlm, "grouped_logprobs", "update:forward")
    phases.wrap(vlm, "completion_logprobs", "update:forward")
    phases.wrap(module, "manual_backward", "update:backward")

    class Timer(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            clock.begin()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            clock.end(counts["tokens"])

    trainer = L.Trainer(accelerator="cpu", devices=1, max_steps=total, max_epochs=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        num_sanity_val_steps=0, callbacks=[Timer()])
    trainer.fit(module, datamodule=StepDataModule(total))
    out = clock.summary(warmup, per_step)
    out["params"] = sum(p.numel() for p in vlm.model.parameters())
    out["prompt_tokens"] = statistics.mean(counts["prompt_tokens"])
    return out


# ============================================================================================ TRL side


def run_trl(model_dir: str, workload: Any, common: dict[str, Any], steps: int, warmup: int,
            out_dir: str) -> dict[str, Any]:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForImageTextToText, AutoProcessor, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    per_step, total = workload.prompts * workload.group, warmup + steps
    torch.manual_seed(common["seed"])
    records = make_records(workload, common["num_prompts"])
    ds = Dataset.from_list([
        {"prompt": [{"role": "user", "content": [*([{"type": "image"}] * workload.images),
                                                 {"type": "text", "text": r["question"]}]}],
         "images": r["images"], "answer": r["answer"]} for r in records])

    def answer(completions, answer, **kwargs):
        return [answer_reward(c[0]["content"], a) for c, a in zip(completions, answer, strict=True)]

    args = GRPOConfig(
        output_dir=out_dir, max_steps=total, per_device_train_batch_size=per_step, gradient_accumulation_steps=1,
        num_generations=workload.group, max_completion_length=common["max_new_tokens"],
        temperature=common["temperature"], top_p=common["top_p"], top_k=common["top_k"],
        learning_rate=common["lr"], lr_scheduler_type="constant", warmup_steps=0,
        weight_decay=common["weight_decay"], optim="adamw_torch", max_grad_norm=common["max_grad_norm"],
        beta=common["beta"], epsilon=common["epsilon"], loss_type=common["loss"], scale_rewards=common["adv_scale"],
        num_iterations=common["num_iterations"], gradient_checkpointing=False, bf16=False, fp16=False,
        use_cpu=True, use_vllm=False, report_to="none", save_strategy="no", logging_strategy="no",
        log_completions=False, disable_tqdm=True, dataloader_num_workers=0, seed=common["seed"])
    model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="sdpa")
    processor = AutoProcessor.from_pretrained(model_dir)
    trainer = GRPOTrainer(model=model, reward_funcs=[answer], args=args, train_dataset=ds, processing_class=processor)

    phases = Phases()
    clock = StepClock(phases)
    phases.wrap(trainer, "_generate_and_score_completions", "rollout(total)")
    phases.wrap(trainer.model, "generate", "generate")
    phases.wrap(trainer, "_calculate_rewards", "reward")
    phases.wrap(trainer, "training_step", "update(total)")
    phases.wrap(trainer, "_get_per_token_logps_and_entropies", "update:forward", unless="rollout(total)")
    phases.wrap(trainer.accelerator, "backward", "update:backward")

    class Timer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            clock.begin()

        def on_step_end(self, args, state, control, **kwargs):
            clock.end(round(trainer._metrics["train"]["completions/mean_length"][-1] * per_step))

    trainer.add_callback(Timer())
    trainer.train()
    out = clock.summary(warmup, per_step)
    ph = out["phase_s_per_step"]  # TRL generates inside training_step (_prepare_inputs): the update alone
    if "update(total)" in ph and "rollout(total)" in ph:
        ph["update(total)"] -= ph["rollout(total)"]
    out["params"] = sum(p.numel() for p in model.parameters())
    msgs = [[{"role": "user", "content": [*([{"type": "image"}] * workload.images),
                                          {"type": "text", "text": r["question"]}]}] for r in records[:16]]
    texts = [processor.apply_chat_template(m, add_generation_prompt=True, tokenize=False) for m in msgs]
    enc = processor(text=texts, images=[r["images"] for r in records[:16]], return_tensors="pt", padding=True)
    out["prompt_tokens"] = float(enc["attention_mask"].sum(1).float().mean())
    return out
