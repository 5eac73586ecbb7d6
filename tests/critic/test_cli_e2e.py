"""critic-train / critic-eval end to end on the embedded demo model (CPU): the output contract, the held-out
numbers before and after, and all three reports of critic-eval on the exported model."""

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

FAST = ["--max-steps", "2", "--dataset.eval-size", "8", "--grpo.prompts-per-step", "4", "--save-every-n-steps", "1"]
HELD_OUT = {"accuracy", "both_orders_accuracy", "position1_rate", "policy_accuracy", "format", "reward", "unparsed"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, demo_model_dir) -> Path:
    from visionrl.critic.cli import train_main

    out = tmp_path_factory.mktemp("critic") / "run"
    train_main([*FAST, "--eval-every", "1", "--output-dir", str(out)])
    return out


def test_output_directory_contract(trained):
    for name in ("config.yaml", "metrics.json", "samples.jsonl", "checkpoints/last.ckpt", "model/README.md",
                 "model/model.safetensors", "model/config.json"):
        assert (trained / name).exists(), name
    metrics = json.loads((trained / "metrics.json").read_text())
    for when in ("before", "after"):
        assert HELD_OUT <= set(metrics[when]), set(metrics[when])
        assert all(0.0 <= metrics[when][k] <= 1.0 for k in HELD_OUT)
    assert metrics["steps"] == 2 and HELD_OUT <= set(metrics["step_1"])  # --eval-every 1: in-loop evaluation
    sample = json.loads((trained / "samples.jsonl").read_text().splitlines()[0])
    assert set(sample["rewards"]) == {"accuracy", "format"} and sample["answer"] in ("1", "2")
    assert sample["prompt"].startswith("<image> You are a highly capable multimodal AI assistant")


def test_eval_gives_all_three_reports(trained, tmp_path):
    from visionrl.critic.cli import eval_main

    out = tmp_path / "eval"
    eval_main(["--model", str(trained / "model"), "--limit", "16", "--output-dir", str(out)])
    metrics = json.loads((out / "metrics.json").read_text())
    critic, policy, sc = metrics["critic"]["shapes"], metrics["policy"]["shapes"], metrics["self_critic"]["shapes"]
    assert critic["items"] == 16 and {"accuracy", "macro_accuracy", "unparsed"} <= set(critic)
    assert policy["items"] == 16 and {"accuracy", "format", "macro_accuracy"} <= set(policy)
    assert {"greedy_accuracy", "majority_accuracy", "self_critic_accuracy", "oracle_pass_at_n"} <= set(sc)
    assert sc["judge_calls"] == 16 * 3 and sc["strategy"] == "knockout"  # N = 4: 3 calls per question
    assert sc["self_critic_accuracy"] <= sc["oracle_pass_at_n"]
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert [sum(r["report"] == k for r in rows) for k in ("critic", "policy", "self-critic")] == [16, 16, 16]
    # the greedy baseline of the self-critic is the policy report's own answers
    assert sc["greedy_accuracy"] == policy["accuracy"]


def test_eval_both_orders_and_round_robin(trained, tmp_path):
    from visionrl.critic.cli import eval_main

    out = tmp_path / "eval2"
    eval_main(["--model", str(trained / "model"), "--limit", "4", "--both-orders", "--strategy", "round_robin",
               "--self-critic-n", "3", "--output-dir", str(out)])
    metrics = json.loads((out / "metrics.json").read_text())
    critic = metrics["critic"]["shapes"]
    assert {"consistency", "position1_rate", "both_orders_accuracy"} <= set(critic)
    assert metrics["self_critic"]["shapes"]["judge_calls"] == 4 * 3  # N(N-1)/2 = 3 per question


def test_ddp_two_processes(tmp_path, demo_model_dir):
    import os
    import subprocess
    import sys

    out = tmp_path / "ddp"
    exe = Path(sys.executable).parent / "critic-train"
    res = subprocess.run([str(exe), *FAST, "--devices", "2", "--strategy", "ddp", "--accelerator", "cpu",
                          "--output-dir", str(out)], capture_output=True, text=True, timeout=900,
                         env={**os.environ, "PYTHONUNBUFFERED": "1"}, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 2 and HELD_OUT <= set(metrics["after"])


def test_overlong_prompts_are_dropped_and_counted(tmp_path, demo_model_dir):
    """A pair folder whose every fourth question carries a long preamble: those critic prompts exceed 60 tokens
    on the demo model (the others are 52), and `--overlong-prompts drop` drops exactly them (EasyR1's
    filter_overlong_prompts), in training and held-out data (the last `--dataset.eval-size` rows) alike, and in
    critic-eval; without it the first one is refused, naming it."""
    from visionrl.core.demo_teacher import demo_pairs
    from visionrl.core.errors import UserError
    from visionrl.critic.cli import eval_main, train_main

    src = tmp_path / "pairs"
    (src / "images").mkdir(parents=True)
    rows = []
    for i, p in enumerate(demo_pairs(5, 40)):
        p.images[0].save(src / "images" / f"{i}.png")
        long = "Take a careful look at every part of the picture before you decide. " if i % 4 == 0 else ""
        rows.append({"id": f"p{i}", "prompt": long + p.prompt, "chosen": p.chosen, "rejected": p.rejected,
                     "images": f"images/{i}.png"})
    (src / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    small = ["--data", str(src), "--max-steps", "1", "--dataset.eval-size", "8", "--grpo.prompts-per-step", "2",
             "--max-prompt-tokens", "60"]
    with pytest.raises(UserError, match="--max-prompt-tokens 60: training record .*-token prompt"):
        train_main([*small, "--output-dir", str(tmp_path / "refused")])
    train_main([*small, "--overlong-prompts", "drop", "--output-dir", str(tmp_path / "run")])
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["dropped_overlong"] == {"train": 8, "heldout": 2}  # rows 0, 4, …, 28 and 32, 36

    eval_main(["--data", f"pairs={src}", "--max-prompt-tokens", "60", "--overlong-prompts", "drop", "--limit", "8",
               "--reports", "critic", "--output-dir", str(tmp_path / "eval")])
    m = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert m["critic"]["pairs"]["dropped_overlong"] == 2 and m["critic"]["pairs"]["items"] == 6  # rows 0 and 4


def test_self_critic_prompts_are_checked_at_their_longest(tmp_path, demo_model_dir):
    """A self-critic judge prompt quotes two sampled answers: it is checked before sampling with both at
    `--policy-max-new-tokens` (shapes on the demo model: 44 tokens + 2 × 10), refused naming the flag, or dropped
    from the self-critic report and counted; a report with no question left is refused rather than reading 0."""
    from visionrl.core.errors import UserError
    from visionrl.critic.cli import eval_main

    args = ["--reports", "self-critic", "--limit", "4", "--self-critic-n", "2", "--policy-max-new-tokens", "10"]
    with pytest.raises(UserError, match="--max-prompt-tokens 63: shapes self-critic judge .* has a 64-token prompt"):
        eval_main([*args, "--max-prompt-tokens", "63", "--output-dir", str(tmp_path / "refused")])
    with pytest.raises(UserError, match="every shapes self-critic judge .* record is over it"):
        eval_main([*args, "--max-prompt-tokens", "63", "--overlong-prompts", "drop",
                   "--output-dir", str(tmp_path / "empty")])
    assert not (tmp_path / "refused").exists() and not (tmp_path / "empty").exists()
    eval_main([*args, "--max-prompt-tokens", "64", "--output-dir", str(tmp_path / "fits")])
    m = json.loads((tmp_path / "fits" / "metrics.json").read_text())["self_critic"]["shapes"]
    assert m["questions"] == 4 and "dropped_overlong" not in m

    # one longer question: dropped from the self-critic only, and counted
    import dataclasses

    from visionrl.core.evaluation.models import eval_model
    from visionrl.critic.config import EVAL_PRESETS
    from visionrl.critic.evaluate import check_lengths
    from visionrl.critic.policy import load_policy_benchmark

    cfg = dataclasses.replace(EVAL_PRESETS["demo"], reports=("self-critic",), policy_max_new_tokens=10,
                              eval=dataclasses.replace(EVAL_PRESETS["demo"].eval, max_prompt_tokens=64,
                                                       overlong_prompts="drop"))
    records = load_policy_benchmark("shapes", None, 4, cfg.shapes_size)
    records[0] = dataclasses.replace(records[0], question="Look closely. " + records[0].question)
    records[2] = dataclasses.replace(records[2], id=records[1].id)  # a repeated id does not confuse the drop
    dropped, rows_at = check_lengths(cfg, eval_model(str(demo_model_dir)), {}, {"shapes": records})
    assert dropped["self_critic"] == {"shapes": 1} and rows_at == [1, 2, 3]
    # a question the policy prompt check drops (61 tokens; the others 53) is counted here when no policy report
    # shows it; the others' self-critic prompts fit (44 + 2 × 8 = 60)
    tight = dataclasses.replace(cfg, policy_max_new_tokens=8,
                                eval=dataclasses.replace(cfg.eval, max_prompt_tokens=60))
    policy = {"shapes": list(records)}
    dropped, rows_at = check_lengths(tight, eval_model(str(demo_model_dir)), {}, policy)
    assert dropped["policy"] == {"shapes": 1} and dropped["self_critic"] == {"shapes": 1}
    assert rows_at == [0, 1, 2] and policy["shapes"] == records[1:]
    with pytest.raises(UserError, match="every shapes policy benchmark record is over it"):
        check_lengths(dataclasses.replace(tight, eval=dataclasses.replace(cfg.eval, max_prompt_tokens=40)),
                      eval_model(str(demo_model_dir)), {}, {"shapes": list(records)})
