"""The lean KV-cache decode engine (visionrl.core.rollout.lean) against `generate` and the training
forward, on every tiny family: same greedy tokens, same per-step logits (mRoPE / cross-attention
positions right in cached decoding, cache shared across a group), same logit filtering."""

from __future__ import annotations

import pytest
import torch
from transformers.generation.logits_process import (
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)
from visionrl.core.rollout import SamplingParams, generate_rollout, generate_texts
from visionrl.core.rollout import lean as lean_mod
from visionrl.core.rollout.lean import filter_logits, lean_generate
from visionrl.core.vlm.tiny import TINY_FAMILIES

from .test_rollout import prompts_for, with_logit_bias

MAX_NEW = 10


@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_greedy_equals_generate_token_for_token(family, vlm):
    prompts = prompts_for(family)
    greedy = SamplingParams(do_sample=False, max_new_tokens=MAX_NEW)
    enc = vlm.encode(prompts)
    hf_BC = vlm.generate(enc, max_new_tokens=MAX_NEW, do_sample=False)
    lean_BC = lean_generate(vlm, enc, greedy)
    assert lean_BC.shape == hf_BC.shape
    assert torch.equal(lean_BC, hf_BC)
    assert generate_texts(vlm, prompts, greedy, engine="lean") == generate_texts(vlm, prompts, greedy)


@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_decode_logits_equal_the_training_forward(family, vlm, monkeypatch):
    """Every logit vector the loop samples from equals the full (uncached) forward's logits at that
    position, for each of the `repeats` rows sharing one prefilled cache."""
    check_decode_logits(vlm, family, monkeypatch)


@pytest.mark.parametrize("family", ["qwen2_5_vl", "mllama"])
def test_decode_logits_equal_the_training_forward_with_eager_attention(family, vlm, monkeypatch):
    """Eager attention takes an additive float mask (sdpa a boolean one); the grown mask must be right for both."""
    import copy

    from visionrl.core.vlm import VLM

    model = copy.deepcopy(vlm.model)
    model.set_attn_implementation("eager")
    assert model.config.get_text_config()._attn_implementation == "eager"
    check_decode_logits(VLM(model, vlm.processor, vlm.adapter), family, monkeypatch)


def check_decode_logits(vlm, family, monkeypatch):
    seen: list[torch.Tensor] = []
    real = lean_mod.next_tokens

    def spy(logits_BV, sampling, suppress_ids):
        seen.append(logits_BV.detach().float().clone())
        return real(logits_BV, sampling, suppress_ids)

    monkeypatch.setattr(lean_mod, "next_tokens", spy)
    prompts = prompts_for(family)
    enc = vlm.encode(prompts)
    torch.manual_seed(0)
    ids_NC = lean_generate(vlm, enc, SamplingParams(max_new_tokens=MAX_NEW), repeats=2)
    assert ids_NC.shape[0] == 2 * len(prompts)
    assert not torch.equal(ids_NC[0::2], ids_NC[1::2]), "rows sharing a prompt should be sampled apart"

    rep = vlm.encode([p for p in prompts for _ in range(2)])
    with torch.no_grad():
        full_NCV = vlm.completion_logits(rep, ids_NC, vlm.completion_mask(ids_NC))
    mask_NC = vlm.completion_mask(ids_NC).bool()
    keep = [i for i in range(vlm.model.config.get_text_config().vocab_size) if i not in vlm.suppress_ids]
    for t, step_NV in enumerate(seen):
        rows = mask_NC[:, t]
        assert torch.allclose(step_NV[rows][:, keep], full_NCV[rows, t][:, keep], atol=1e-4, rtol=0), t


def test_filtering_matches_the_hf_warpers():
    torch.manual_seed(0)
    logits_BV = torch.randn(6, 50) * 3
    for temperature, top_k, top_p in [(1.0, 0, 0.9), (0.7, 5, 1.0), (1.3, 8, 0.5), (1.0, 0, 1.0)]:
        ref = TemperatureLogitsWarper(temperature)(None, logits_BV.clone())
        if top_k:
            ref = TopKLogitsWarper(top_k)(None, ref)
        if top_p < 1.0:
            ref = TopPLogitsWarper(top_p)(None, ref)
        ours = filter_logits(logits_BV.clone(), SamplingParams(temperature=temperature, top_k=top_k, top_p=top_p), [])
        assert torch.equal(torch.isinf(ours), torch.isinf(ref)), (temperature, top_k, top_p)
        finite = ~torch.isinf(ref)
        assert torch.allclose(ours[finite], ref[finite])
    suppressed = filter_logits(logits_BV.clone(), SamplingParams(), [3, 7])
    assert torch.isinf(suppressed[:, [3, 7]]).all() and not torch.isinf(suppressed[:, :3]).any()


@pytest.mark.parametrize("family", ["qwen2_5_vl", "mllama"])
def test_lean_rollout_groups_share_a_prompt_and_never_sample_vision_tokens(family, vlm):
    prompts = prompts_for(family)
    greedy = generate_rollout(vlm, prompts, prompts, num_generations=3, engine="lean", batch_size=4,
                              sampling=SamplingParams(do_sample=False, max_new_tokens=MAX_NEW))
    hf = generate_rollout(vlm, prompts, prompts, num_generations=3,
                          sampling=SamplingParams(do_sample=False, max_new_tokens=MAX_NEW))
    assert greedy.group_ids_N.tolist() == hf.group_ids_N.tolist()
    assert torch.equal(greedy.completion_ids_NC, hf.completion_ids_NC)
    assert greedy.texts == hf.texts

    biased = with_logit_bias(vlm, dict.fromkeys(vlm.suppress_ids, 30.0))
    torch.manual_seed(0)
    ro = generate_rollout(biased, prompts, prompts, num_generations=3, engine="lean",
                          sampling=SamplingParams(max_new_tokens=MAX_NEW))
    assert not torch.isin(ro.completion_ids_NC, torch.tensor(biased.suppress_ids)).any()
    with torch.no_grad():
        logps = biased.completion_logprobs(*ro.inputs(biased, range(len(ro)))).logps_BC
    assert torch.isfinite(logps[ro.completion_mask_NC.bool()]).all()


@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_decode_steps_run_the_text_model_alone(family, vlm, monkeypatch):
    """Every tiny family decodes through `TextDecoder` (not the full VLM forward), and the VLM's forward runs
    once, for the prefill."""
    assert lean_mod.TextDecoder.applies(vlm, vlm.model)
    calls = []
    hook = vlm.model.register_forward_pre_hook(lambda mod, args: calls.append(1))
    try:
        lean_generate(vlm, vlm.encode(prompts_for(family)), SamplingParams(max_new_tokens=MAX_NEW))
    finally:
        hook.remove()
    assert len(calls) == 1
