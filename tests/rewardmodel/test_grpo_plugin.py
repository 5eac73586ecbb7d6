"""A trained demo reward model as a GRPO reward in another package's CLI: `selfreward-train --reward-model PATH
--reward-mode hybrid` runs core GRPO steps with the plug-in reward logged next to the method's own, and a
non-GRPO stage refuses the flag."""

from __future__ import annotations

import json

import pytest
from visionrl.core.errors import UserError

SMALL = ["--max-steps", "2", "--grpo.prompts-per-step", "2", "--grpo.num-generations", "2",
         "--dataset.eval-size", "4", "--dataset.shapes-train-size", "16", "--grpo.log-samples-every", "1"]


def test_selfreward_grpo_steps_with_the_hybrid_reward(demo_rm, tmp_path):
    from visionrl.selfreward.cli import train_main

    out = tmp_path / "sr1"
    train_main([*SMALL, "--output-dir", str(out), "--reward-model", str(demo_rm), "--reward-mode", "hybrid",
                "--reward-weight", "0.5"])
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 2
    hybrid = metrics["train"]["train/rewards/hybrid/mean"]
    assert 0.0 < hybrid <= 1.0  # σ(score) or 1, never 0
    rows = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]
    assert rows and all(0.0 < r["rewards"]["hybrid"] <= 1.0 for r in rows)
    assert {"accuracy", "format", "visual", "hybrid"} <= set(rows[0]["rewards"])
    right = [r for r in rows if r["rewards"]["accuracy"] == 1.0]
    assert all(r["rewards"]["hybrid"] == 1.0 for r in right)  # a right answer earns exactly 1


def test_a_sft_stage_refuses_the_plugin(demo_rm, tmp_path):
    from visionrl.selfreward.cli import train_main

    with pytest.raises(UserError, match=r"^--reward-model .*: a reward plug-in is a GRPO reward, but this run "
                                        r"trains with SFTConfig; drop --reward-model$"):
        train_main(["--preset", "sft-demo", "--max-steps", "1", "--output-dir", str(tmp_path / "sft"),
                    "--reward-model", str(demo_rm)])
