"""Several fits in sequence in one process through core's runner (`runner.fit_and_export`), each into its own
output sub-folder, as an iterated recipe runs them (M(k+1) = SFT of M(k)): single process, and under DDP with 2
CPU processes (gloo), where generation between the fits goes through `evaluation.sharding`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest
import torch
from visionrl.core.config import RunArgs
from visionrl.core.data.shapes import ShapesWorld
from visionrl.core.hparams import OptimConfig, SFTConfig
from visionrl.core.hub import ModelCardInfo
from visionrl.core.vlm import Prompt, load_vlm

FAMILY = "qwen2_5_vl"


def examples(n: int, seed: int) -> list[Any]:
    from visionrl.core.lit.sft import SFTExample

    return [SFTExample(Prompt.simple(r.question, r.images), r.answer) for r in ShapesWorld(seed=seed).vqa(n)]


def state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def test_fits_in_sequence_each_continue_from_the_last_and_export_into_their_folder(tiny_build, tmp_path):
    from visionrl.core.lit.sft import SFTModule
    from visionrl.core.runner import fit_and_export

    vlm = load_vlm(tiny_build(FAMILY).path)
    cfg = SFTConfig(batch_size=4, micro_batch_size=4, optim=OptimConfig(lr=1e-2, schedule="constant"))
    card = ModelCardInfo(base_model="tiny", datasets=["shapes"], method="SFT", paper="0000.00000")
    states = [state(vlm.model)]
    for k in range(2):
        run = RunArgs(output_dir=tmp_path / f"iter_{k}", max_steps=3, accelerator="cpu", save_every_n_steps=100)
        module = SFTModule(vlm, cfg, examples(8, seed=k), max_steps=3)
        metrics = fit_and_export(run, module, card=card)
        states.append(state(vlm.model))
        assert metrics["steps"] == 3 and module.step_idx == 3
        out = tmp_path / f"iter_{k}"
        for name in ("model/config.json", "model/model.safetensors", "metrics.json", "checkpoints/last.ckpt"):
            assert (out / name).is_file(), f"iter_{k}/{name} missing"
        assert any((out / "tensorboard").iterdir())
        # The export is the state the fit ended in, which is where the next fit starts.
        assert max_diff(state(load_vlm(out / "model").model), states[-1]) == 0.0
    assert max_diff(states[0], states[1]) > 0 and max_diff(states[1], states[2]) > 0
    assert json.loads((tmp_path / "iter_1" / "metrics.json").read_text())["steps"] == 3


DDP_SCRIPT = textwrap.dedent('''
    """2 CPU processes: ranks started before any fit, a sharded generation, a fit, another sharded generation
    and a second fit, all in one process per rank. Args: model dir, output dir."""
    import hashlib
    import json
    import sys
    from pathlib import Path

    import torch

    torch.set_num_threads(1)

    from visionrl.core.config import RunArgs
    from visionrl.core.data.shapes import ShapesWorld
    from visionrl.core.evaluation.sharding import rank_and_world, shard_map, start_ranks
    from visionrl.core.hparams import OptimConfig, SamplingParams, SFTConfig
    from visionrl.core.hub import ModelCardInfo
    from visionrl.core.lit.sft import SFTExample, SFTModule
    from visionrl.core.rollout import generate_texts
    from visionrl.core.runner import fit_and_export
    from visionrl.core.vlm import Prompt, load_vlm

    model_dir, out = sys.argv[1], Path(sys.argv[2])
    run = RunArgs(output_dir=out, max_steps=2, devices=2, accelerator="cpu", strategy="ddp", save_every_n_steps=100)
    rank, world = start_ranks(run)
    vlm = load_vlm(model_dir)
    records = ShapesWorld(seed=0).vqa(5)


    def digest(model):
        h = hashlib.sha256()
        for name, p in sorted(model.named_parameters()):
            h.update(name.encode())
            h.update(p.detach().contiguous().numpy().tobytes())
        return h.hexdigest()


    def answer(shard):
        texts = generate_texts(vlm, [Prompt.simple(r.question, r.images) for r in shard],
                               SamplingParams(do_sample=False, max_new_tokens=4))
        return [{"id": r.id, "text": t, "rank": rank_and_world()[0]} for r, t in zip(shard, texts)]


    record = {"rank": rank, "world": world, "digests": [digest(vlm.model)], "gathered": []}
    cfg = SFTConfig(batch_size=2, micro_batch_size=2, optim=OptimConfig(lr=1e-2, schedule="constant"))
    card = ModelCardInfo(base_model="tiny", datasets=["shapes"], method="SFT", paper="0000.00000")
    for k in range(2):
        record["gathered"].append(shard_map(answer, records, path=out / f"iter_{k}" / "answers.jsonl"))
        data = [SFTExample(Prompt.simple(r.question, r.images), r.answer) for r in ShapesWorld(seed=k + 1).vqa(8)]
        module = SFTModule(vlm, cfg, data, max_steps=2)
        fit_and_export(RunArgs(**{**run.__dict__, "output_dir": out / f"iter_{k}"}), module, card=card)
        record["digests"].append(digest(vlm.model))
        record.setdefault("steps", []).append(module.step_idx)
    (out / f"rank{rank}.json").write_text(json.dumps(record))
''')


@pytest.mark.slow
def test_ddp_sharded_generation_and_fits_in_sequence(tiny_build, tmp_path):
    script = tmp_path / "ddp_stages.py"
    script.write_text(DDP_SCRIPT)
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run([sys.executable, str(script), str(tiny_build(FAMILY).path), str(out)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]

    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]
    assert [(r["rank"], r["world"]) for r in ranks] == [(0, 2), (1, 2)]
    assert ranks[0]["steps"] == ranks[1]["steps"] == [2, 2]
    d0, d1 = ranks[0]["digests"], ranks[1]["digests"]
    assert d0 == d1, "ranks hold different weights"
    assert len(set(d0)) == 3, "a fit did not change the weights (or the second did not start from the first)"
    ids = [r.id for r in ShapesWorld(seed=0).vqa(5)]
    for k in range(2):
        g0, g1 = ranks[0]["gathered"][k], ranks[1]["gathered"][k]
        assert g0 == g1, "ranks gathered different rows"
        assert [row["id"] for row in g0] == ids and [row["rank"] for row in g0] == [0, 1, 0, 1, 0]
        written = [json.loads(line) for line in (out / f"iter_{k}" / "answers.jsonl").read_text().splitlines()]
        assert written == g0
        assert (out / f"iter_{k}" / "model" / "model.safetensors").is_file()
