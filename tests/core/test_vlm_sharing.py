"""Work shared by the completions of one prompt (visionrl.core.vlm.sharing) on every tiny family: taking rows
from one encoding equals encoding them; vision features computed once per prompt and the prompt's forward run
once per group give the per-row forward's log-probs and gradients (vision tower included); a pass of
micro-batches runs the tower once and still hands it every micro-batch's gradient.

Tolerances: log-probs within 1e-5 (they agree to ~1e-6). Gradients within 1e-5 of the largest gradient entry:
the shared paths sum a group's gradient before float32 islands that transformers keeps even in a float64 model
(RMSNorm, the Qwen vision rotary), so entries of size 50–250 differ by 1e-5–4e-5; a wrong position, mask or
feature row moves them by 1e-3 and more of that scale (`test_the_check_catches_a_misplaced_feature`)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from visionrl.core.vlm import VLM, LoadOptions, Prompt, load_vlm
from visionrl.core.vlm.sharing import (
    EncodedPrompts,
    PromptGroups,
    SharedFeatures,
    encode_prompts,
    image_features,
    prefix_sharing_applies,
    shares_vision,
)
from visionrl.core.vlm.tiny import TINY_FAMILIES

# Rows of three prompts, interleaved (a group need not be contiguous), completions of different lengths.
ROWS = [0, 1, 2, 0, 1, 2, 1, 0, 2]
TARGETS = ["red", "a blue square in the middle", "\\boxed{3}", "yes", "no", "a", "green triangle on the right",
           "two", "b"]
MODES = {"vision": dict(vision=True, prefix=False), "prefix": dict(vision=False, prefix=True),
         "vision+prefix": dict(vision=True, prefix=True)}


def noise_image(width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def prompts_for(family: str) -> list[Prompt]:
    """One image, two images of different sizes, and a text-only prompt (Mllama: a third image prompt,
    its processor cannot batch rows without images with the others)."""
    third = (Prompt.simple("Is the square left of the triangle?", [noise_image(70, 140, 2)]) if family == "mllama"
             else Prompt.simple("How many are there?"))
    return [Prompt.simple("What color is the circle?", [noise_image(56, 56, 0)]),
            Prompt.simple("How many shapes are there?", [noise_image(112, 84, 1), noise_image(56, 56, 3)]), third]


@pytest.fixture
def trained(family: str, tiny_vlm: Callable[[str], Any]) -> VLM:
    """A private copy of the family's sharpened tiny model in training mode (gradients are taken on it)."""
    shared = tiny_vlm(family)
    return VLM(copy.deepcopy(shared.model).train(), shared.processor, shared.adapter)


def loss_and_grads(vlm: VLM, forward: Callable[[], torch.Tensor], weights_BC: torch.Tensor,
                   mask_BC: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Log-probs from `forward()` and the gradient of a fixed weighted sum of them."""
    vlm.model.zero_grad(set_to_none=True)
    logps_BC = forward()
    (logps_BC * weights_BC * mask_BC).sum().backward()
    grads = {n: p.grad.clone() for n, p in vlm.model.named_parameters() if p.grad is not None}
    return logps_BC.detach(), grads


def assert_same(a: tuple[torch.Tensor, dict[str, torch.Tensor]], b: tuple[torch.Tensor, dict[str, torch.Tensor]],
                mask_BC: torch.Tensor) -> None:
    (lp_a, g_a), (lp_b, g_b) = a, b
    assert float((lp_a - lp_b)[mask_BC.bool()].abs().max()) < 1e-5
    assert g_a.keys() == g_b.keys(), f"parameters with a gradient differ: {set(g_a) ^ set(g_b)}"
    scale = max(float(g.abs().max()) for g in g_a.values())
    worst = max(g_a, key=lambda k: float((g_a[k] - g_b[k]).abs().max()))
    assert float((g_a[worst] - g_b[worst]).abs().max()) < 1e-5 * scale, worst


def setup(vlm: VLM, family: str) -> tuple[EncodedPrompts, PromptGroups, torch.Tensor, torch.Tensor, torch.Tensor]:
    encoded = encode_prompts(vlm, prompts_for(family))
    groups = PromptGroups(encoded, torch.tensor(ROWS), [0, 1, 2])
    ids_BC, mask_BC = vlm.encode_targets(TARGETS)
    weights_BC = torch.randn(ids_BC.shape, generator=torch.Generator().manual_seed(0))
    return encoded, groups, ids_BC, mask_BC, weights_BC


def vision_names(vlm: VLM) -> list[str]:
    return [n for n, _ in vlm.model.named_parameters() if any(k in n for k in ("visual", "vision", "projector"))]


# ---- one encoding, any rows ----------------------------------------------------------------------------------


@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_taken_rows_equal_encoding_them(family, tiny_vlm):
    vlm = tiny_vlm(family)
    prompts = prompts_for(family)
    encoded = encode_prompts(vlm, prompts)
    for rows in ([0], [2], [1, 1, 0], [2, 0, 2, 1], ROWS):
        taken, expected = encoded.take(vlm.adapter, rows), vlm.encode([prompts[r] for r in rows])
        assert taken.keys() == expected.keys(), rows
        unequal = [k for k in expected if not torch.equal(taken[k], expected[k])]
        assert not unequal, f"rows {rows}: {unequal}"


# ---- shared vision features and shared prompt forward == the per-row forward ------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_shared_logprobs_and_gradients_equal_the_per_row_forward(family, mode, trained):
    vlm = trained
    assert shares_vision(vlm)
    encoded, groups, ids_BC, mask_BC, weights_BC = setup(vlm, family)
    per_row = loss_and_grads(vlm, lambda: vlm.completion_logprobs(groups.row_inputs(vlm.adapter), ids_BC,
                                                                  mask_BC).logps_BC, weights_BC, mask_BC)
    vision, prefix = MODES[mode]["vision"], MODES[mode]["prefix"]
    assert prefix_sharing_applies(vlm.model, groups)

    def shared() -> torch.Tensor:
        feats = image_features(vlm, encoded) if vision else None
        return vlm.grouped_logprobs(groups, ids_BC, mask_BC, features=feats, shared_prefix=prefix).logps_BC

    out = loss_and_grads(vlm, shared, weights_BC, mask_BC)
    assert_same(per_row, out, mask_BC)
    reached = [n for n in vision_names(vlm) if n in out[1] and float(out[1][n].abs().sum()) > 0]
    assert reached, "no gradient reached the vision tower"


@pytest.mark.parametrize("family", ["qwen2_5_vl", "llava"])
def test_the_check_catches_a_misplaced_feature(family, trained):
    """Swapping two prompts' vision features (same shapes) moves log-probs far beyond the tolerance."""
    vlm = trained
    encoded, groups, ids_BC, mask_BC, _ = setup(vlm, family)
    single = encode_prompts(vlm, [Prompt.simple("What color is the circle?", [noise_image(56, 56, s)])
                                  for s in (0, 5)])
    feats = image_features(vlm, single)
    rows = PromptGroups(single, torch.tensor([0, 1, 0, 1]), [0, 1])
    ids, mask = ids_BC[:4], mask_BC[:4]
    with torch.no_grad():
        right = vlm.grouped_logprobs(rows, ids, mask, features=feats).logps_BC
        wrong = vlm.grouped_logprobs(rows, ids, mask, features=feats[::-1]).logps_BC
    assert float((right - wrong)[mask.bool()].abs().max()) > 1e-3


@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_micro_batches_hand_the_tower_their_summed_gradient(family, trained):
    """Two micro-batches that split groups, one vision forward: the earlier micro-batch's gradient on the
    detached features reaches the tower through the last micro-batch's backward; equal to one whole batch."""
    vlm = trained
    encoded, groups, ids_BC, mask_BC, weights_BC = setup(vlm, family)
    whole = loss_and_grads(vlm, lambda: vlm.completion_logprobs(groups.row_inputs(vlm.adapter), ids_BC,
                                                                mask_BC).logps_BC, weights_BC, mask_BC)
    vlm.model.zero_grad(set_to_none=True)
    feats = SharedFeatures(vlm, encoded, vlm.model, [0, 1, 2])
    assert feats.trained
    logps = []
    for part, last in ((slice(0, 5), False), (slice(5, 9), True)):
        rows = torch.tensor(ROWS[part])
        source = list(dict.fromkeys(rows.tolist()))
        sub = PromptGroups(EncodedPrompts(encoded.take(vlm.adapter, source), tuple(encoded.images[s] for s in source)),
                           torch.tensor([source.index(r) for r in rows.tolist()]), source)
        pending = feats.pending_loss() if last else None
        lp = vlm.grouped_logprobs(sub, ids_BC[part], mask_BC[part], features=feats.get(source, live=last),
                                  shared_prefix=True).logps_BC
        loss = (lp * weights_BC[part] * mask_BC[part]).sum()
        (loss + pending if pending is not None else loss).backward()
        logps.append(lp.detach())
    grads = {n: p.grad.clone() for n, p in vlm.model.named_parameters() if p.grad is not None}
    assert_same(whole, (torch.cat(logps), grads), mask_BC)


# ---- the work is really shared --------------------------------------------------------------------------------


def count_calls(module: torch.nn.Module, sizes: list[int]) -> Any:
    """Record the leading size of every input `module` sees."""
    return module.register_forward_pre_hook(lambda mod, args, kwargs: sizes.append(
        (args[0] if args else next(iter(kwargs.values()))).shape[0]), with_kwargs=True)


@pytest.mark.parametrize("family", ["qwen2_5_vl", "mllama"])
def test_vision_tower_and_prompt_run_once_per_prompt(family, tiny_vlm):
    vlm = tiny_vlm(family)
    encoded, groups, ids_BC, mask_BC, _ = setup(vlm, family)
    tower = vlm.adapter.vision_modules(vlm.model)[0]
    embed = vlm.model.get_input_embeddings()
    tower_sizes: list[int] = []
    tokens: list[int] = []
    hooks = [count_calls(tower, tower_sizes), embed.register_forward_hook(
        lambda mod, args, out: tokens.append(args[0].numel()))]
    try:
        with torch.no_grad():
            vlm.completion_logprobs(groups.row_inputs(vlm.adapter), ids_BC, mask_BC)
            per_row = (list(tower_sizes), sum(tokens))
            tower_sizes.clear()
            tokens.clear()
            vlm.grouped_logprobs(groups, ids_BC, mask_BC, features=image_features(vlm, encoded), shared_prefix=True)
    finally:
        for h in hooks:
            h.remove()
    rows_input = sum(len(t) for t in groups.row_inputs(vlm.adapter)["input_ids"])
    prompt_tokens = encoded.inputs["input_ids"].numel()
    assert per_row[1] == rows_input + ids_BC.numel()  # every row runs prompt and completion
    assert sum(tokens) == prompt_tokens + ids_BC[:, :-1].numel()  # each prompt once, completions on its cache
    assert len(tower_sizes) == 1 and tower_sizes[0] < per_row[0][0]  # one tower call, on fewer images


def test_prefix_sharing_needs_a_shared_prompt_and_the_cache(tiny_build):
    vlm = load_vlm(tiny_build("qwen2_5_vl").path, LoadOptions(gradient_checkpointing=True))
    encoded = encode_prompts(vlm, prompts_for("qwen2_5_vl"))
    distinct = PromptGroups(encoded, torch.tensor([2, 0, 1]), [0, 1, 2])
    first_two = EncodedPrompts(encoded.take(vlm.adapter, [0, 1]), encoded.images[:2])
    repeated = PromptGroups(first_two, torch.tensor([0, 0, 1]), [0, 1])
    vlm.model.eval()
    assert prefix_sharing_applies(vlm.model, repeated) and not prefix_sharing_applies(vlm.model, distinct)
    vlm.model.train()  # activation checkpointing drops the KV cache in training: the full forward runs
    assert not prefix_sharing_applies(vlm.model, repeated)
    ids_BC, mask_BC = vlm.encode_targets(TARGETS[:3])
    expected = vlm.completion_logprobs(repeated.row_inputs(vlm.adapter), ids_BC, mask_BC).logps_BC
    got = vlm.grouped_logprobs(repeated, ids_BC, mask_BC, shared_prefix=True).logps_BC
    assert float((got - expected)[mask_BC.bool()].abs().max()) < 1e-5
