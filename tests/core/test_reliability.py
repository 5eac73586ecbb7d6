"""What the core guarantees when things go wrong: atomic checkpoint and export writes, checkpoints read as data
only, and numerics (non-finite rewards/losses stop naming the step or are skipped on request; zero-variance
groups, empty completions and all-masked rows never make a NaN).

CLI-level counterparts live in tests/selfreward/: test_crash_resume.py (SIGKILL / SIGTERM of real processes)
and test_reliability.py (the bad-input matrix, the Hub token)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
import math
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from visionrl.core.data.shapes import ShapesWorld
from visionrl.core.hparams import GRPOConfig, OptimConfig, SamplingParams, SFTConfig
from visionrl.core.lit.common import NumericsError, check_finite
from visionrl.core.losses import AGGREGATIONS, make_norm, policy_loss
from visionrl.core.rewards.base import NamedReward, RewardContext
from visionrl.core.vlm import Prompt, load_vlm

FAMILY = "qwen2_5_vl"
RECORDS = ShapesWorld(seed=0).vqa(8)


class Opens:
    """Unpickling this opens (creates) `path`: a stand-in for any code a pickle can carry."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def plain_trainer(max_steps: int, **kwargs: Any) -> Any:
    import lightning as L

    kw = dict(
        max_steps=max_steps,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    return L.Trainer(**{**kw, **kwargs})


# ---- checkpoints ----------------------------------------------------------------------------------


def test_failed_checkpoint_write_leaves_the_previous_last_ckpt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk fills up halfway through writing `last.ckpt`: the step-2 file is untouched and still loads
    with `weights_only=True`; the half-written bytes went to a temp file, which is removed."""
    import lightning as L
    from visionrl.core.cli import build_trainer
    from visionrl.core.config import RunArgs

    class Tiny(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(64, 64)

        def training_step(self, batch, batch_idx):
            return self.layer(batch).pow(2).mean()

        def configure_optimizers(self):
            return torch.optim.AdamW(self.parameters(), lr=0.1)

        def train_dataloader(self):
            return torch.utils.data.DataLoader(torch.randn(32, 64), batch_size=8)

    run = RunArgs(output_dir=tmp_path / "run", max_steps=2, save_every_n_steps=1, accelerator="cpu")
    trainer = build_trainer(run, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(Tiny())
    last = run.output_dir / "checkpoints" / "last.ckpt"
    before = digest(last)
    (last.parent / "last.ckpt.tmp").write_bytes(b"left behind by a killed write")  # must not get in the way

    real_save, written = torch.save, {}

    def disk_full(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
        data = io.BytesIO()
        real_save(obj, data)
        f.write(data.getvalue()[: len(data.getvalue()) // 2])
        written[f.name] = len(data.getvalue()) // 2
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError, match="No space left"):
        trainer.save_checkpoint(last)
    monkeypatch.undo()

    assert list(written) == [f"{last}.tmp"] and written[f"{last}.tmp"] > 1000  # half a checkpoint was written
    assert digest(last) == before, "last.ckpt was modified by the failed write"
    assert torch.load(last, weights_only=True)["global_step"] == 2
    assert sorted(p.name for p in last.parent.iterdir()) == [
        "epoch=0-step=1.ckpt",
        "epoch=0-step=2.ckpt",
        "last.ckpt",
    ]


def test_checkpoints_are_read_as_data_only(tmp_path: Path) -> None:
    """Even when Lightning asks for `weights_only=False`, a checkpoint carrying code is refused unrun; our own
    checkpoints load (they hold tensors and plain data only)."""
    from visionrl.core.checkpoints import AtomicCheckpointIO, check_checkpoint
    from visionrl.core.errors import UserError

    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "payload": Opens(tmp_path / "pwned")}, evil)
    with pytest.raises(pickle.UnpicklingError):
        AtomicCheckpointIO().load_checkpoint(evil, weights_only=False)
    with pytest.raises(UserError, match=r"^--resume .*evil\.ckpt: refused"):
        check_checkpoint(evil)
    assert not (tmp_path / "pwned").exists()

    good = tmp_path / "good.ckpt"
    AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.ones(2)}, "visionrl": {"step": 3}}, good)
    check_checkpoint(good)
    assert AtomicCheckpointIO().load_checkpoint(good)["visionrl"] == {"step": 3}


def test_failed_export_keeps_the_previous_model(tmp_path: Path, tiny_build: Callable[[str], Any]) -> None:
    """An export that dies after the weights were written (here: in the processor) leaves `model/` exactly as
    the previous export wrote it, loadable, and no temp folder behind."""
    from transformers import AutoModelForImageTextToText
    from visionrl.core.hub import ModelCardInfo, export_model

    built = tiny_build(FAMILY)
    card = ModelCardInfo(base_model="demo", datasets=["shapes"], method="GRPO", paper="2508.19652")
    out = export_model(built.model, built.processor, tmp_path / "model", card)
    files = {p.name: digest(p) for p in out.iterdir()}

    class BrokenProcessor:
        def save_pretrained(self, folder: Path) -> None:
            (Path(folder) / "tokenizer.json").write_text('{"trunc')
            raise OSError(28, "No space left on device")

    changed = {k: v + 1.0 for k, v in built.model.state_dict().items()}
    with pytest.raises(OSError, match="No space left"):
        export_model(built.model, BrokenProcessor(), out, card, state_dict=changed)

    assert {p.name: digest(p) for p in out.iterdir()} == files
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
    reloaded = AutoModelForImageTextToText.from_pretrained(out)
    expected = built.model.state_dict()
    assert all(torch.equal(v, expected[k]) for k, v in reloaded.state_dict().items())


# ---- numerics -------------------------------------------------------------------------------------


def test_check_finite(caplog: pytest.LogCaptureFixture) -> None:
    assert check_finite(torch.tensor([0.0, -3.0]), "loss", 4, "stop")
    with pytest.raises(NumericsError, match=r"^reward 'acc' is not finite at step 4$"):
        check_finite(torch.tensor([0.0, math.inf]), "reward 'acc'", 4, "stop")
    with caplog.at_level(logging.WARNING):
        assert not check_finite(torch.tensor(math.nan), "loss", 7, "skip")
    assert "loss is not finite at step 7; skipped" in caplog.text


RANKS_SCRIPT = """
import math, sys, torch, torch.distributed as dist
from visionrl.core.lit.common import NumericsError, check_finite

dist.init_process_group("gloo", init_method=sys.argv[2], rank=int(sys.argv[1]), world_size=2)
bad = torch.tensor([math.nan if dist.get_rank() == 1 else 1.0])  # only rank 1 sees a NaN
print(check_finite(bad, "loss", 5, "skip"))
try:
    check_finite(bad, "loss", 5, "stop")
except NumericsError as exc:
    print(exc)
print(check_finite(torch.ones(2), "loss", 6, "stop"))
dist.destroy_process_group()
"""


def test_ranks_agree_on_non_finite_values(tmp_path: Path) -> None:
    """Two gloo ranks, a NaN on rank 1 only: both skip, both stop, so no rank waits alone in a collective."""
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{sock.getsockname()[1]}"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RANKS_SCRIPT, str(rank), address],
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for rank in (0, 1)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err[-2000:]
        assert out.splitlines() == ["False", "loss is not finite at step 5", "True"], out


def test_run_cli_reports_numerics_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from visionrl.core.cli import run_cli

    def main() -> None:
        raise NumericsError("loss is not finite at step 12")

    with pytest.raises(SystemExit) as exc:
        run_cli(main)
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert (
        err.count("\n") == 1
        and err.startswith("error: loss is not finite at step 12;")
        and "last.ckpt holds the last good state" in err
    )


@pytest.mark.parametrize("agg", sorted(AGGREGATIONS))
def test_policy_loss_is_finite_on_masked_rows_and_zero_advantages(agg: str) -> None:
    """Row 1 is all-masked (an empty pass-2 sequence), rows 2-3 are a zero-variance group (A = 0); the second
    micro-batch is masked entirely. Loss and gradient stay finite, and masked rows get no gradient."""
    torch.manual_seed(0)
    logps = torch.randn(4, 5, dtype=torch.float64).clamp(max=-0.1).requires_grad_()
    mask = torch.tensor([[1, 1, 1, 0, 0], [0, 0, 0, 0, 0], [1, 0, 0, 0, 0], [1, 1, 1, 1, 1]])
    adv = torch.tensor([0.7, -0.7, 0.0, 0.0], dtype=torch.float64)
    norm = make_norm(mask, 1, 5)
    out = policy_loss(
        logps,
        logps.detach() - 0.1,
        adv,
        mask,
        agg=agg,
        beta=0.1,
        ref_logps_BT=logps.detach() + 0.2,
        norm=norm,
    )
    out.loss.backward()
    assert torch.isfinite(out.loss) and torch.isfinite(logps.grad).all()
    assert torch.equal(logps.grad[1], torch.zeros(5)) and logps.grad[0].abs().sum() > 0

    empty = torch.zeros(2, 5, dtype=torch.long)
    lp = torch.randn(2, 5, dtype=torch.float64, requires_grad=True)
    out = policy_loss(
        lp, lp.detach(), torch.ones(2, dtype=torch.float64), empty, agg=agg, norm=make_norm(empty, 1, 5)
    )
    out.loss.backward()
    assert out.loss.item() == 0.0 and torch.equal(lp.grad, torch.zeros(2, 5))
    assert all(
        math.isfinite(float(v)) for v in (out.kl, out.clip_low_frac, out.clip_high_frac, out.ratio_mean)
    )


@pytest.fixture
def fresh_vlm(tiny_build: Callable[[str], Any]) -> Callable[[], Any]:
    path = tiny_build(FAMILY).path
    return lambda: load_vlm(path)


def grpo_module(vlm: Any, rewards: list[NamedReward], **overrides: Any) -> Any:
    from visionrl.core.lit.grpo import GRPOModule

    cfg = GRPOConfig(
        **{
            **dict(
                num_generations=4,
                prompts_per_step=2,
                sampling=SamplingParams(max_new_tokens=8),
                micro_batch_size=4,
                optim=OptimConfig(lr=1e-2, warmup_steps=0),
            ),
            **overrides,
        }
    )
    return GRPOModule(
        vlm, cfg, rewards, RECORDS, lambda r: Prompt.simple(r.question, r.images), max_steps=3, seed=0
    )


def fit(module: Any, steps: int) -> Any:
    from visionrl.core.lit.datamodules import StepDataModule

    trainer = plain_trainer(steps)
    trainer.fit(module, datamodule=StepDataModule(steps))
    return trainer


def parity(ctx: RewardContext) -> list[float]:
    return [float(len(c) % 2) for c in ctx.completions]


def test_grpo_empty_completions_zero_variance_and_masked_rows_stay_finite(
    fresh_vlm: Callable[[], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every step: prompt 0's four completions are empty (EOS first), so its group has zero reward variance;
    the method trains on one extra all-masked row. `nan_policy="stop"` would raise on any NaN; the weights
    still move (prompt 1's group has spread), and every weight and metric is finite."""
    from visionrl.core.lit.grpo import GRPOModule, weighted_sum_advantages
    from visionrl.core.rollout import concat_rollouts

    vlm = fresh_vlm()
    sample, seen = vlm.generate, []

    def empty_first_group(inputs: dict[str, torch.Tensor], **kwargs: Any) -> torch.Tensor:
        ids_BC = sample(inputs, **kwargs)  # one call: the 2 prompts × 4 generations, prompt 0 first
        seen.append(ids_BC.shape[0])
        ids_BC[:4] = vlm.pad_token_id
        ids_BC[:4, 0] = vlm.eos_token_id
        return ids_BC

    def with_masked_row(rollout: Any, rewards: Any, ctx: Any, cfg: Any) -> tuple[Any, torch.Tensor]:
        rollout, adv_N = weighted_sum_advantages(rollout, rewards, ctx, cfg)
        one = slice(0, 1)
        masked = dataclasses.replace(
            rollout,
            prompts=rollout.prompts[one],
            rows=rollout.rows[one],
            texts=[""],
            group_ids_N=rollout.group_ids_N[one],
            clipped_N=rollout.clipped_N[one],
            completion_ids_NC=rollout.completion_ids_NC[one],
            completion_mask_NC=torch.zeros_like(rollout.completion_mask_NC[one]),
        )
        assert rollout.texts[:4] == [""] * 4 and bool((adv_N[:4] == 0).all())
        seen.append("masked row")
        return concat_rollouts([rollout, masked], vlm.pad_token_id), torch.cat([adv_N, adv_N.new_ones(1)])

    monkeypatch.setattr(vlm, "generate", empty_first_group)
    module = GRPOModule(
        vlm,
        GRPOConfig(
            num_generations=4,
            prompts_per_step=2,
            sampling=SamplingParams(max_new_tokens=8),
            micro_batch_size=3,
            nan_policy="stop",
            optim=OptimConfig(lr=1e-2, warmup_steps=0),
        ),
        [NamedReward("parity", parity)],
        RECORDS,
        lambda r: Prompt.simple(r.question, r.images),
        max_steps=2,
        seed=0,
        advantage_fn=with_masked_row,
    )
    before = {n: p.detach().clone() for n, p in vlm.model.named_parameters()}
    fit(module, 2)

    assert seen == [8, "masked row"] * 2
    metrics = dict(module.last_metrics)
    assert metrics["train/frac_reward_zero_std"] >= 0.5  # prompt 0's group at least
    assert all(math.isfinite(v) for v in metrics.values()), metrics
    assert all(torch.isfinite(p).all() for p in vlm.model.parameters())
    assert any(not torch.equal(p.detach(), before[n]) for n, p in vlm.model.named_parameters())


def test_grpo_nan_loss_stops_or_is_skipped(
    fresh_vlm: Callable[[], Any], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A NaN loss on step 1: "stop" raises naming the step; "skip" drops that micro-batch's gradient, warns
    naming the step, and the run finishes with finite weights."""
    import visionrl.core.lit.grpo as grpo

    real, calls = grpo.policy_loss, []

    def nan_on_step_1(*args: Any, **kwargs: Any) -> Any:
        out = real(*args, **kwargs)
        calls.append(1)
        return out._replace(loss=out.loss * math.nan) if len(calls) == 3 else out  # 2 micro-batches per step

    monkeypatch.setattr(grpo, "policy_loss", nan_on_step_1)
    stop = grpo_module(fresh_vlm(), [NamedReward("parity", parity)], nan_policy="stop")
    with pytest.raises(NumericsError, match=r"^loss is not finite at step 1$"):
        fit(stop, 3)
    assert stop.step_idx == 1

    calls.clear()
    vlm = fresh_vlm()
    skip = grpo_module(vlm, [NamedReward("parity", parity)], nan_policy="skip")
    with caplog.at_level(logging.WARNING):
        trainer = fit(skip, 3)
    assert skip.step_idx == 3 and trainer.global_step == 3 and len(calls) == 6
    assert "loss is not finite at step 1; skipped" in caplog.text
    assert all(torch.isfinite(p).all() for p in vlm.model.parameters())


def test_grpo_nan_reward_skip_counts_as_zero(
    fresh_vlm: Callable[[], Any], caplog: pytest.LogCaptureFixture
) -> None:
    """With "skip", a NaN reward (the stop case is in test_lit_grpo.py) scores 0 and the run goes on."""

    def nan_for_first_row(ctx: RewardContext) -> list[float]:
        return [math.nan, *([1.0] * (len(ctx.completions) - 1))]

    vlm = fresh_vlm()
    module = grpo_module(
        vlm, [NamedReward("parity", parity), NamedReward("broken", nan_for_first_row)], nan_policy="skip"
    )
    with caplog.at_level(logging.WARNING):
        fit(module, 2)
    assert "reward 'broken' is not finite at step 0; skipped" in caplog.text
    assert float(module.last_metrics["train/rewards/broken/mean"]) == pytest.approx(7 / 8)
    assert all(torch.isfinite(p).all() for p in vlm.model.parameters())


def test_sft_nan_loss_stops_or_is_skipped(
    fresh_vlm: Callable[[], Any], caplog: pytest.LogCaptureFixture
) -> None:
    from visionrl.core.lit.sft import SFTExample, SFTModule

    examples = [SFTExample(Prompt.simple(r.question, r.images), r.answer) for r in RECORDS[:4]]

    def module(policy: str) -> Any:
        m = SFTModule(
            fresh_vlm(),
            SFTConfig(batch_size=2, micro_batch_size=1, nan_policy=policy, optim=OptimConfig(lr=1e-3)),
            examples,
            max_steps=3,
        )
        real, calls = m.loss_on, []

        def loss_on(batch: Any) -> Any:  # 2 micro-batches per step: the second one of step 1 overflows
            out = real(batch)
            calls.append(m.step_idx)
            return out._replace(loss=out.loss * math.inf) if len(calls) == 4 else out

        m.loss_on = loss_on
        return m

    stop = module("stop")
    with pytest.raises(NumericsError, match=r"^SFT loss is not finite at step 1$"):
        fit(stop, 3)
    skip = module("skip")
    with caplog.at_level(logging.WARNING):
        fit(skip, 3)
    assert skip.step_idx == 3 and "SFT loss is not finite at step 1; skipped" in caplog.text
    assert all(torch.isfinite(p).all() for p in skip.policy.parameters())


def test_drop_jsonl_rows_rewrites_atomically_and_drops_a_torn_last_line(tmp_path):
    from visionrl.core.lit.common import drop_jsonl_rows

    path = tmp_path / "samples.jsonl"
    path.write_text('{"step": 0}\n{"step": 1}\n{"step": 2}\n{"step": 3, "compl', encoding="utf-8")
    drop_jsonl_rows(path, lambda row: row["step"] >= 2)
    assert path.read_text(encoding="utf-8") == '{"step": 0}\n{"step": 1}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["samples.jsonl"]
    drop_jsonl_rows(tmp_path / "missing.jsonl", lambda row: True)  # nothing to do
    assert not (tmp_path / "missing.jsonl").exists()
