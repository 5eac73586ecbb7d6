"""The VLM wrapper on tiny random models of every family (visionrl.core.vlm): save/load round trips,
batch invariance of generation and log-probs, agreement of sampling and training log-probs, loading
errors, freezing and activation checkpointing. Offline and CPU only; models come from `tests/conftest.py`.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from visionrl.core.vlm import VLM, LoadOptions, ModelLoadError, Prompt, adapter_for, load_vlm
from visionrl.core.vlm.tiny import TINY_FAMILIES, train_tokenizer

QWEN_FAMILIES = [f for f in TINY_FAMILIES if f.startswith("qwen")]
# (width, height); Mllama and LLaVA resize to their tile size anyway, Qwen keeps the aspect ratio.
IMAGE_SIZES = [(56, 56), (112, 84), (70, 140)]
QUESTIONS = ["What color is the circle?", "How many shapes are there?", "Is the square left of the triangle?"]
TEXT_ONLY_QUESTION = "How many are there?"
# Completions of different lengths, so the completion block is right-padded.
TARGETS = ["red", "a blue square in the middle, a green triangle on the right", "\\boxed{3}", "yes"]
# Parameters that `freeze_vision` must freeze, per family.
VISION_PREFIXES = {
    "qwen2_5_vl": ("model.visual.",),
    "qwen2_vl": ("model.visual.",),
    "mllama": ("model.vision_model.", "model.multi_modal_projector."),
    "llava": ("model.vision_tower.", "model.multi_modal_projector."),
}


def noise_image(width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def mixed_prompts(family: str) -> list[Prompt]:
    """One prompt per image size, plus a text-only prompt where the family batches it with image prompts
    (Mllama's processor cannot mix rows with and without images)."""
    prompts = [
        Prompt.simple(q, [noise_image(w, h, seed=i)])
        for i, ((w, h), q) in enumerate(zip(IMAGE_SIZES, QUESTIONS, strict=True))
    ]
    if family != "mllama":
        prompts.append(Prompt.simple(TEXT_ONLY_QUESTION))
    return prompts


def valid(x_BC: torch.Tensor, mask_BC: torch.Tensor) -> torch.Tensor:
    return x_BC[mask_BC.bool()]


def max_abs_diff(a_BC: torch.Tensor, b_BC: torch.Tensor, mask_BC: torch.Tensor) -> float:
    return float((valid(a_BC, mask_BC) - valid(b_BC, mask_BC)).abs().max())


# ---- save / load round trip ---------------------------------------------------------------------


@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_save_load_round_trip(family, tiny_build):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    built = tiny_build(family)
    model = AutoModelForImageTextToText.from_pretrained(built.path)
    processor = AutoProcessor.from_pretrained(built.path)

    assert type(model) is type(built.model)
    before, after = built.model.state_dict(), model.state_dict()
    assert before.keys() == after.keys()
    changed = [k for k in before if before[k].dtype != after[k].dtype or not torch.equal(before[k], after[k])]
    assert not changed, f"tensors changed by save/load: {changed}"

    tok0, tok1 = built.processor.tokenizer, processor.tokenizer
    assert type(processor) is type(built.processor)
    assert processor.chat_template == built.processor.chat_template
    assert tok1.get_vocab() == tok0.get_vocab()
    assert (tok1.eos_token, tok1.pad_token, tok1.bos_token) == (
        tok0.eos_token,
        tok0.pad_token,
        tok0.bos_token,
    )
    prompt = mixed_prompts(family)[0]
    text = processor.apply_chat_template(prompt.messages(), add_generation_prompt=True, tokenize=False)
    assert text == built.processor.apply_chat_template(
        prompt.messages(), add_generation_prompt=True, tokenize=False
    )
    text += TARGETS[1] + tok0.eos_token
    assert tok1(text)["input_ids"] == tok0(text)["input_ids"]
    # The image processor's settings (resizing, pixel budget) survive too: identical encodings.
    images = [prompt.images] if family == "mllama" else prompt.images
    enc0 = built.processor(text=[text], images=images, return_tensors="pt")
    enc1 = processor(text=[text], images=images, return_tensors="pt")
    assert enc0.keys() == enc1.keys()
    assert all(torch.equal(enc0[k], enc1[k]) for k in enc0)


# ---- batched greedy generation == row by row -------------------------------------------------------


@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_batched_greedy_equals_row_by_row(family, vlm):
    prompts = mixed_prompts(family)
    batched_BC = vlm.generate(vlm.encode(prompts), max_new_tokens=12, do_sample=False)
    lengths_B = vlm.completion_mask(batched_BC).sum(1)
    for i, prompt in enumerate(prompts):
        single_C = vlm.generate(vlm.encode([prompt]), max_new_tokens=12, do_sample=False)[0]
        n = int(vlm.completion_mask(single_C[None]).sum())  # up to and including the first EOS
        assert batched_BC[i, :n].tolist() == single_C[:n].tolist(), f"row {i} differs"
        assert int(lengths_B[i]) == n


# ---- batched log-probs == unbatched == an independent reference ---------------------------------


def reference_logprobs(vlm: VLM, family: str, prompt: Prompt, target: str) -> torch.Tensor:
    """Log-probs of `target` + EOS from the processor's encoding of the whole text, one row, no padding,
    no adapter: what the model itself computes, normalised over the tokens sampling may draw."""
    processor = vlm.processor
    prompt_text = processor.apply_chat_template(prompt.messages(), add_generation_prompt=True, tokenize=False)
    kwargs = {}
    if prompt.images:
        kwargs["images"] = [prompt.images] if family == "mllama" else prompt.images
    prompt_ids = processor(text=[prompt_text], return_tensors="pt", **kwargs)["input_ids"][0]
    full = processor(text=[prompt_text + target + vlm.tokenizer.eos_token], return_tensors="pt", **kwargs)
    target_ids = vlm.tokenizer(target, add_special_tokens=False)["input_ids"] + [vlm.eos_token_id]
    # Token-exact: the full text encodes as prompt ids followed by the target ids.
    assert full["input_ids"][0].tolist() == prompt_ids.tolist() + target_ids
    p = len(prompt_ids)
    with torch.no_grad():
        logits_TV = vlm.model(**full, use_cache=False).logits[0, p - 1 : -1].double()  # (C, V)
    logits_TV[:, vlm.suppress_ids] = -torch.inf
    return logits_TV.log_softmax(-1).gather(-1, torch.tensor(target_ids)[:, None]).squeeze(-1).float()


@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_batched_logprobs_match_unbatched_and_reference(family, vlm):
    prompts = mixed_prompts(family)
    targets = TARGETS[: len(prompts)]
    enc = vlm.encode(prompts)
    ids_BC, mask_BC = vlm.encode_targets(targets)
    assert len(set(mask_BC.sum(1).tolist())) > 1, "completions must differ in length"
    with torch.no_grad():
        logps_BC = vlm.completion_logprobs(enc, ids_BC, mask_BC).logps_BC
        for i, (prompt, target) in enumerate(zip(prompts, targets, strict=True)):
            n = int(mask_BC[i].sum())
            single_C = vlm.completion_logprobs(
                vlm.encode([prompt]), ids_BC[i : i + 1, :n], mask_BC[i : i + 1, :n]
            ).logps_BC[0]
            assert torch.allclose(logps_BC[i, :n], single_C, atol=1e-5, rtol=0), f"row {i}"
            ref_C = reference_logprobs(vlm, family, prompt, target)
            assert torch.allclose(logps_BC[i, :n], ref_C, atol=1e-5, rtol=0), f"row {i} vs reference"


# ---- sampling log-probs == training log-probs (and the check catches wrong positions) -----------


def sample_with_logprobs(
    vlm: VLM, inputs: dict[str, torch.Tensor], *, max_new_tokens: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sampled completion ids (B, C) and the log-probs the sampler drew them with."""
    torch.manual_seed(seed)
    vlm.adapter.reset_state(vlm.model)
    out = vlm.model.generate(
        **inputs,
        do_sample=True,
        temperature=1.0,
        top_k=0,
        top_p=1.0,
        max_new_tokens=max_new_tokens,
        suppress_tokens=vlm.suppress_ids,
        eos_token_id=vlm.eos_token_id,
        pad_token_id=vlm.pad_token_id,
        output_scores=True,
        return_dict_in_generate=True,
    )
    vlm.adapter.reset_state(vlm.model)
    ids_BC = out.sequences[:, inputs["input_ids"].shape[1] :]
    scores_BCV = torch.stack(out.scores, dim=1).float()  # processed: suppressed tokens at -inf
    logps_BC = scores_BCV.log_softmax(-1).gather(-1, ids_BC[..., None]).squeeze(-1)
    return ids_BC, logps_BC


@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_sampling_logprobs_match_completion_logprobs(family, vlm):
    enc = vlm.encode(mixed_prompts(family))
    ids_BC, sampled_BC = sample_with_logprobs(vlm, enc, max_new_tokens=12, seed=0)
    mask_BC = vlm.completion_mask(ids_BC)
    with torch.no_grad():
        logps_BC = vlm.completion_logprobs(enc, ids_BC, mask_BC).logps_BC
    assert max_abs_diff(logps_BC, sampled_BC, mask_BC) < 1e-4


@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_sampling_logprobs_match_on_a_text_only_batch(family, vlm):
    """No image in the batch: Qwen takes its explicit text-only mRoPE positions, the others 1D positions."""
    enc = vlm.encode([Prompt.simple(TEXT_ONLY_QUESTION), Prompt.simple(QUESTIONS[2])])
    assert "pixel_values" not in enc and len(set(enc["attention_mask"].sum(1).tolist())) == 2
    ids_BC, sampled_BC = sample_with_logprobs(vlm, enc, max_new_tokens=12, seed=0)
    mask_BC = vlm.completion_mask(ids_BC)
    with torch.no_grad():
        logps_BC = vlm.completion_logprobs(enc, ids_BC, mask_BC).logps_BC
    assert max_abs_diff(logps_BC, sampled_BC, mask_BC) < 1e-4


@pytest.mark.parametrize("family", ["qwen2_5_vl"])
def test_sampling_check_catches_missing_mm_token_type_ids(family, vlm):
    """Without `mm_token_type_ids` Qwen2.5-VL silently falls back to 1D positions: the check above fails."""
    enc = vlm.encode(mixed_prompts(family))
    ids_BC, sampled_BC = sample_with_logprobs(vlm, enc, max_new_tokens=12, seed=0)
    mask_BC = vlm.completion_mask(ids_BC)
    without = {k: v for k, v in enc.items() if k != "mm_token_type_ids"}
    with torch.no_grad():
        logps_BC = vlm.completion_logprobs(without, ids_BC, mask_BC).logps_BC
    assert max_abs_diff(logps_BC, sampled_BC, mask_BC) > 1e-2


@pytest.mark.parametrize("family", ["qwen2_vl"])
def test_missing_mm_token_type_ids_is_an_error_for_qwen2_vl(family, vlm):
    """Qwen2-VL refuses image inputs without `mm_token_type_ids` instead of guessing positions."""
    enc = vlm.encode(mixed_prompts(family))
    ids_BC, mask_BC = vlm.encode_targets(TARGETS)
    without = {k: v for k, v in enc.items() if k != "mm_token_type_ids"}
    with torch.no_grad(), pytest.raises(ValueError, match="mm_token_type_ids"):
        vlm.completion_logprobs(without, ids_BC, mask_BC)


# ---- completion mask ----------------------------------------------------------------------------------

E = -1  # stands for the EOS id in the table
P = -2  # stands for the pad id


@pytest.mark.parametrize(
    ("ids", "expected"),
    [
        ([5, 6, E, P, P], [1, 1, 1, 0, 0]),  # EOS counts, what follows does not
        ([E, P, P, P, P], [1, 0, 0, 0, 0]),  # immediate EOS
        ([5, 6, 7, 8, 9], [1, 1, 1, 1, 1]),  # no EOS: clipped, all tokens count
        ([5, 6, 7, 8, E], [1, 1, 1, 1, 1]),  # EOS in the last column
        ([5, E, 6, E, 7], [1, 1, 0, 0, 0]),  # only the first EOS ends the completion
    ],
)
def test_completion_mask(ids, expected, tiny_vlm):
    vlm = tiny_vlm("qwen2_5_vl")
    subst = {E: vlm.eos_token_id, P: vlm.pad_token_id}
    ids_BC = torch.tensor([[subst.get(t, t) for t in ids]])
    assert vlm.completion_mask(ids_BC).tolist() == [expected]


def test_completion_mask_is_per_row(tiny_vlm):
    vlm = tiny_vlm("qwen2_5_vl")
    e = vlm.eos_token_id
    ids_BC = torch.tensor([[5, e, 6], [5, 6, 7], [e, e, e]])
    assert vlm.completion_mask(ids_BC).tolist() == [[1, 1, 0], [1, 1, 1], [1, 0, 0]]


# ---- loading errors -----------------------------------------------------------------------------------


def test_load_vlm_rejects_a_folder_that_is_not_a_model(tmp_path):
    (tmp_path / "notes.txt").write_text("not a model")
    with pytest.raises(ModelLoadError, match="cannot load model config") as err:
        load_vlm(tmp_path)
    assert str(tmp_path) in str(err.value)


def test_load_vlm_rejects_a_text_only_model(tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = train_tokenizer(
        [],
        ["<s>", "</s>", "<pad>"],
        eos="</s>",
        pad="<pad>",
        bos="<s>",
        chat_template="{% for m in messages %}{{ m['content'] }}{% endfor %}",
        vocab_size=300,
    )
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
    )
    LlamaForCausalLM(cfg).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    with pytest.raises(ModelLoadError, match="unsupported model family 'llama'") as err:
        load_vlm(tmp_path)
    assert str(tmp_path) in str(err.value)
    assert "qwen2_5_vl" in str(err.value)  # the message lists what is supported


def test_adapter_for_unknown_family_lists_supported():
    with pytest.raises(ValueError, match="unsupported model family 'bert'") as err:
        adapter_for("bert")
    for family in TINY_FAMILIES:
        assert family in str(err.value)


# ---- freezing and activation checkpointing -----------------------------------------------------------


@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_freeze_vision_and_gradient_checkpointing(family, tiny_build):
    path = tiny_build(family).path
    trained = load_vlm(path, LoadOptions(freeze_vision=True, gradient_checkpointing=True))
    params = dict(trained.model.named_parameters())
    vision = {n for n in params if n.startswith(VISION_PREFIXES[family])}
    assert vision, "the family's vision parameters were not found"
    assert {n for n, p in params.items() if not p.requires_grad} == vision
    assert trained.model.is_activation_checkpointing

    prompts = mixed_prompts(family)
    enc = trained.encode(prompts)
    ids_BC, mask_BC = trained.encode_targets(TARGETS[: len(prompts)])
    with torch.no_grad():
        expected_BC = load_vlm(path).completion_logprobs(enc, ids_BC, mask_BC).logps_BC
    trained.model.train()  # checkpointing is only active in training mode
    logps_BC = trained.completion_logprobs(enc, ids_BC, mask_BC).logps_BC
    assert max_abs_diff(logps_BC.detach(), expected_BC, mask_BC) < 1e-5

    loss = -(logps_BC * mask_BC).sum() / mask_BC.sum()
    loss.backward()
    assert all(params[n].grad is None for n in vision)
    decoder = {n: p for n, p in params.items() if n not in vision}
    no_grad = [n for n, p in decoder.items() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not no_grad, f"decoder parameters without a finite gradient: {no_grad}"
    assert sum(float(p.grad.abs().sum()) for p in decoder.values()) > 0


# ---- the vision tower sees the image ------------------------------------------------------------------


@pytest.mark.parametrize("family", QWEN_FAMILIES)
def test_vision_features_vary_across_images(family, vlm):
    enc = vlm.encode([Prompt.simple("Describe the image.", [noise_image(56, 56, seed=s)]) for s in (1, 2)])
    with torch.no_grad():
        hidden_BTD = vlm.model(**enc, output_hidden_states=True, use_cache=False).hidden_states[-1]
    at_image_BT = enc["input_ids"] == vlm.model.config.image_token_id
    assert at_image_BT.sum(1).tolist() == [4, 4]  # 56×56 -> 2×2 merged patches
    h0, h1 = hidden_BTD[0][at_image_BT[0]], hidden_BTD[1][at_image_BT[1]]  # (4, D) each
    assert (h0 - h1).abs().max() > 1e-3


@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_next_token_logits_depend_on_the_image(family, vlm):
    """Same text, two images: the prediction after the prompt must differ (the text sees the image)."""
    enc = vlm.encode([Prompt.simple("Describe the image.", [noise_image(56, 56, seed=s)]) for s in (1, 2)])
    with torch.no_grad():
        logits_BV = vlm.model(**enc, use_cache=False).logits[:, -1]
    assert (logits_BV[0] - logits_BV[1]).abs().max() > 1e-3
