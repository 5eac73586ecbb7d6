"""RewardModelModule (visionrl.core.lit.reward_model) on a tiny Qwen2.5-VL, CPU: the head registry, the score
reads exactly the last non-pad token of [prompt | response], training on shapes pairs lowers the
Bradley-Terry loss, and the step counter round-trips through a checkpoint."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from visionrl.core.data.shapes import ShapesWorld
from visionrl.core.hparams import OptimConfig, RewardHeadConfig, RewardModelConfig
from visionrl.core.vlm import Prompt, load_vlm

FAMILY = "qwen2_5_vl"
PAIRS = ShapesWorld(seed=0).pairs(8)


@pytest.fixture(autouse=True)
def one_thread() -> Any:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_module(tiny_build: Callable[[str], Any], max_steps: int = 4, **overrides: Any) -> Any:
    from visionrl.core.lit.reward_model import RewardModelModule

    torch.manual_seed(0)  # the head's initialisation
    base = dict(batch_size=8, micro_batch_size=4, optim=OptimConfig(lr=1e-2, schedule="constant"))
    cfg = RewardModelConfig(**{**base, **overrides})
    return RewardModelModule(load_vlm(tiny_build(FAMILY).path), cfg, PAIRS, max_steps=max_steps, seed=0,
                             eval_records=PAIRS[:4])


# ---- head registry ------------------------------------------------------------------------------
def test_heads_build_with_the_right_shapes():
    from visionrl.core.lit.reward_model import build_head

    linear = build_head(32, RewardHeadConfig(kind="linear"))
    assert isinstance(linear, torch.nn.Linear) and tuple(linear.weight.shape) == (1, 32)

    mlp = build_head(32, RewardHeadConfig(kind="mlp", layers=3, hidden=16, activation="silu"))
    shapes = [tuple(m.weight.shape) for m in mlp if isinstance(m, torch.nn.Linear)]
    assert shapes == [(16, 32), (16, 16), (1, 16)]
    assert sum(isinstance(m, torch.nn.SiLU) for m in mlp) == 2
    assert mlp(torch.randn(5, 32)).shape == (5, 1)

    default_width = build_head(32, RewardHeadConfig(kind="mlp"))  # layers=2, hidden=None -> d_model
    assert [tuple(m.weight.shape) for m in default_width if isinstance(m, torch.nn.Linear)] == [(32, 32), (1, 32)]
    assert isinstance(default_width[1], torch.nn.GELU)


@pytest.mark.parametrize(("head", "message"), [
    (RewardHeadConfig(kind="conv"), "unknown reward head 'conv'; choose from linear, mlp"),
    (RewardHeadConfig(kind="mlp", activation="swish"), "choose from gelu, none, relu, silu, tanh"),
    (RewardHeadConfig(kind="mlp", layers=0), "layers >= 1"),
])
def test_bad_head_config_raises_naming_the_choices(head, message):
    from visionrl.core.lit.reward_model import build_head

    with pytest.raises(ValueError, match=message):
        build_head(32, head)


# ---- the score reads the last non-pad token ---------------------------------------------------------
def test_score_reads_the_last_non_pad_token(tiny_build):
    module = make_module(tiny_build).eval()
    vlm, pair = module.vlm, PAIRS[1]
    short = Prompt.simple(pair.prompt, pair.images)
    long = Prompt.simple(pair.prompt + " Think about every shape in the picture before you answer.", pair.images)
    ids_BC, mask_BC = vlm.encode_targets([pair.chosen])
    with torch.no_grad():
        alone = module.score_inputs(vlm.encode([short]), ids_BC, mask_BC)

        # right padding after the response (mask 0) is ignored
        pad = torch.full((1, 3), vlm.pad_token_id)
        padded = module.score_inputs(vlm.encode([short]), torch.cat([ids_BC, pad], 1),
                                     torch.cat([mask_BC, torch.zeros_like(pad)], 1))
        # left padding, from sharing a batch with a longer prompt, is ignored
        enc = vlm.encode([short, long])
        assert int(enc["attention_mask"][0].sum()) < enc["attention_mask"].shape[1], "no left padding to test"
        batched = module.score_inputs(enc, ids_BC.repeat(2, 1), mask_BC.repeat(2, 1))[:1]
        # but the last response token is what the head reads
        changed = ids_BC.clone()
        changed[0, int(mask_BC.sum()) - 1] = vlm.tokenizer.convert_tokens_to_ids("x")
        other = module.score_inputs(vlm.encode([short]), changed, mask_BC)

    torch.testing.assert_close(padded, alone, atol=1e-5, rtol=0)
    torch.testing.assert_close(batched, alone, atol=1e-4, rtol=0)
    assert (other - alone).abs().item() > 1e-3


def test_score_is_batched_inference(tiny_build):
    module = make_module(tiny_build).eval()
    prompts = [Prompt.simple(p.prompt, p.images) for p in PAIRS[:3]]
    responses = [p.chosen for p in PAIRS[:3]]
    scores = module.score(prompts, responses, batch_size=2)
    assert scores.shape == (3,) and not scores.requires_grad
    one = torch.cat([module.score(prompts[i:i + 1], responses[i:i + 1]) for i in range(3)])
    torch.testing.assert_close(scores, one, atol=1e-4, rtol=0)


# ---- training --------------------------------------------------------------------------------------
def test_steps_lower_the_loss_and_the_step_survives_a_checkpoint(tiny_build):
    import lightning as L
    from visionrl.core.lit.datamodules import StepDataModule

    module = make_module(tiny_build, max_steps=4)
    with torch.no_grad():
        before = module.loss_on(PAIRS)
    trainer = L.Trainer(max_steps=4, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, datamodule=StepDataModule(4))
    with torch.no_grad():
        after = module.loss_on(PAIRS)

    assert module.step_idx == 4
    assert float(after.loss) < 0.8 * float(before.loss) and float(after.accuracy) >= float(before.accuracy), (
        f"loss {float(before.loss):.3f} -> {float(after.loss):.3f}, "
        f"accuracy {float(before.accuracy):.2f} -> {float(after.accuracy):.2f}")
    assert {"train/loss", "train/accuracy", "train/margin", "train/lr", "train/grad_norm"} <= set(module.last_metrics)
    assert set(module.eval_results) == {"before", "after"}
    assert set(module.eval_results["after"]) == {"accuracy", "margin"}
    assert any(k.startswith("head.") for k in module.state_dict())

    ckpt: dict[str, Any] = {}
    module.on_save_checkpoint(ckpt)
    fresh = make_module(tiny_build)
    fresh.on_load_checkpoint(ckpt)
    # `after` belongs to the end of a fit: a resumed fit evaluates its own
    assert fresh.step_idx == 4 and fresh.eval_results == {"before": module.eval_results["before"]}


# ---- fp32 head, length normalisation, modalities -------------------------------------------------
def test_head_stays_fp32_when_the_module_is_cast_to_bf16(tiny_build):
    module = make_module(tiny_build)
    module.to(torch.bfloat16)  # what a bf16-true precision plugin does before the optimiser exists
    assert all(p.dtype == torch.float32 for p in module.head.parameters())
    assert next(module.policy.parameters()).dtype == torch.bfloat16
    with torch.no_grad():
        scores = module.rewards([Prompt.simple(PAIRS[0].prompt, PAIRS[0].images)], [PAIRS[0].chosen])
    assert scores.dtype == torch.float32 and torch.isfinite(scores).all()


def test_length_norm_divides_the_score_by_log_of_length_plus_one(tiny_build):
    import math

    raw, normed = make_module(tiny_build).eval(), make_module(tiny_build, length_norm=True).eval()
    normed.load_state_dict(raw.state_dict())
    prompts = [Prompt.simple(p.prompt, p.images) for p in PAIRS[:3]]
    responses = [p.chosen for p in PAIRS[:3]]
    lengths = [len(raw.vlm.tokenizer(t, add_special_tokens=False)["input_ids"]) + 1 for t in responses]  # + EOS
    with torch.no_grad():
        r, n = raw.score(prompts, responses), normed.score(prompts, responses)
    want = torch.tensor([x / math.log(k + 1.0) for x, k in zip(r.tolist(), lengths)])
    torch.testing.assert_close(n, want, atol=1e-6, rtol=0)


@pytest.mark.parametrize("family", ["qwen2_5_vl", "mllama"])
def test_mixed_text_and_image_batches_score_like_single_rows(family, tiny_vlm):
    from visionrl.core.lit.reward_model import build_head, score_texts

    vlm = tiny_vlm(family)
    torch.manual_seed(0)
    head = build_head(vlm.model.config.get_text_config().hidden_size, RewardHeadConfig(kind="mlp", activation="silu"))
    rows = [(Prompt.simple(PAIRS[0].prompt, PAIRS[0].images), PAIRS[0].chosen),
            (Prompt.simple("What is 2 + 3?"), "5"),
            (Prompt.simple(PAIRS[1].prompt, PAIRS[1].images), PAIRS[1].rejected),
            (Prompt.simple("Repeat the word circle."), "circle")]
    prompts, responses = [p for p, _ in rows], [r for _, r in rows]
    with torch.no_grad():
        batched = score_texts(vlm, head, prompts, responses)
        single = torch.cat([score_texts(vlm, head, [p], [r]) for p, r in rows])
        text_only = score_texts(vlm, head, prompts[1::2], responses[1::2])
    torch.testing.assert_close(batched, single, atol=1e-4, rtol=0)
    torch.testing.assert_close(text_only, single[1::2], atol=1e-4, rtol=0)
    loss = score_texts(vlm, head, prompts, responses).sum()
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters())
    head.zero_grad()
    vlm.model.zero_grad()


@pytest.mark.parametrize("family", ["qwen2_5_vl", "mllama"])
def test_a_repeated_prompt_is_encoded_once_and_scores_like_its_copies(family, tiny_vlm):
    from visionrl.core.lit.reward_model import build_head, encode_distinct, score_texts

    vlm = tiny_vlm(family)
    torch.manual_seed(0)
    head = build_head(vlm.model.config.get_text_config().hidden_size, RewardHeadConfig())
    image, text = Prompt.simple(PAIRS[0].prompt, PAIRS[0].images), Prompt.simple("What is 2 + 3?")
    prompts = [image, text, image, text]  # a batch's prompts, then the same objects again (chosen | rejected)
    copies = [Prompt.simple(PAIRS[0].prompt, PAIRS[0].images), Prompt.simple("What is 2 + 3?")] * 2
    responses = [PAIRS[0].chosen, "5", PAIRS[0].rejected, "6"]
    if family != "mllama":  # Mllama cannot encode a mixed batch: score_texts encodes each modality on its own
        shared, naive = encode_distinct(vlm, prompts), vlm.encode(prompts)
        assert shared.keys() == naive.keys() and all(torch.equal(shared[k], naive[k]) for k in naive)
    with torch.no_grad():
        torch.testing.assert_close(score_texts(vlm, head, prompts, responses),
                                   score_texts(vlm, head, copies, responses), atol=0, rtol=0)


def test_held_out_accuracy_is_split_by_modality(tiny_build):
    from visionrl.core.data.records import PairRecord
    from visionrl.core.lit.reward_model import RewardModelModule

    text = [PairRecord(f"t{i}", [], f"What is {i} + 1?", str(i + 1), str(i + 2)) for i in range(3)]
    module = RewardModelModule(load_vlm(tiny_build(FAMILY).path), RewardModelConfig(), PAIRS, max_steps=1,
                               eval_records=PAIRS[:2] + text)
    with torch.no_grad():
        out = module.pair_metrics(module.vlm, PAIRS[:2] + text)
    assert set(out) == {"accuracy", "margin", "text_accuracy", "text_margin"}
    assert len(out["accuracy"]) == 2 and len(out["text_accuracy"]) == 3
    # a shard with only image pairs still reports both names (empty lists), so ranks agree on the names
    with torch.no_grad():
        shard = module.pair_metrics(module.vlm, PAIRS[:1])
    assert set(shard) == set(out) and shard["text_accuracy"] == []


# ---- export and load_reward_model ---------------------------------------------------------------
def test_exported_head_loads_back_with_equal_scores(tiny_build, tmp_path):
    import json

    from visionrl.core.config import RunArgs
    from visionrl.core.hub import ModelCardInfo
    from visionrl.core.lit.reward_scorer import HEAD_CONFIG, HEAD_WEIGHTS, load_reward_model
    from visionrl.core.runner import fit_and_export

    head = RewardHeadConfig(kind="mlp", layers=2, activation="silu")
    module = make_module(tiny_build, max_steps=2, head=head, length_norm=True)
    run = RunArgs(output_dir=tmp_path / "run", max_steps=2, accelerator="cpu", save_every_n_steps=2)
    fit_and_export(run, module, card=ModelCardInfo("tiny", ["shapes"], "Bradley-Terry reward model", "2509.16127"))
    model_dir = tmp_path / "run" / "model"
    assert (model_dir / HEAD_WEIGHTS).is_file() and not list(model_dir.glob(".*tmp*"))
    spec = json.loads((model_dir / HEAD_CONFIG).read_text())
    d_model = module.vlm.model.config.get_text_config().hidden_size
    assert {k: spec[k] for k in ("kind", "layers", "hidden", "activation", "pooling", "length_norm")} == {
        "kind": "mlp", "layers": 2, "hidden": d_model, "activation": "silu", "pooling": "last_token",
        "length_norm": True}
    assert spec["d_model"] == d_model

    scorer = load_reward_model(model_dir)
    prompts = [Prompt.simple(p.prompt, p.images) for p in PAIRS[:4]] + [Prompt.simple("What is 2 + 3?")]
    responses = [p.chosen for p in PAIRS[:4]] + ["5"]
    module.eval()
    with torch.no_grad():
        want = module.score(prompts, responses)
    got = scorer.score(prompts, responses, batch_size=2)
    torch.testing.assert_close(got, want.cpu(), atol=1e-5, rtol=0)
    assert all(p.dtype == torch.float32 for p in scorer.head.parameters())


def test_a_folder_without_a_head_is_not_a_reward_model(tiny_build):
    from visionrl.core.errors import UserError
    from visionrl.core.lit.reward_scorer import load_reward_model

    with pytest.raises(UserError, match=r"--reward-model .*not a reward model \(no reward_head.json\)"):
        load_reward_model(tiny_build(FAMILY).path)
