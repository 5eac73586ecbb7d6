"""Work shared by the completions of one prompt: its encoding, its vision features and its forward.

A GRPO group holds G completions of one prompt. Three pieces of work depend on the prompt alone; here
each is done once per distinct prompt rather than once per completion:

1. Encoding (chat template + image processor). `EncodedPrompts` holds K distinct prompts encoded once;
   `take` gathers any rows of it (repeats allowed), cut to their own padding: tensor for tensor what
   `VLM.encode` returns for those prompts, without running the processor again.
2. Vision features. `image_features` runs the vision tower and projector on K prompts once;
   `FamilyAdapter.with_image_features` hands every row its prompt's features (transformers'
   `mm_encoder_outputs` for Qwen-VL and LLaVA, `cross_attention_states` for Mllama), so the forward
   skips the tower. `SharedFeatures` keeps them for a pass of micro-batches: when the tower is trained,
   the micro-batches see detached copies and the gradient they collect goes through the tower once.
3. The prompt's forward (`prefix_shared_logits`). The K prompts run once with a KV cache; the cache is
   gathered to the B rows, and a second forward runs only the completions against it. Under causal
   attention a prompt token never sees the completion, so this is the same computation as the full
   [prompt | completion] forward (equal within float rounding, tested on every tiny family); gradients
   reach the prompt tokens and the vision tower through the cached keys and values.

Positions follow the lean decode loop (rollout/lean.py): the adapter's prefill positions for the prompt
(mRoPE for Qwen-VL) and text positions `prompt tokens + offset + j` for completion token j.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import torch
from visionrl.core.vlm.adapters import SHARED_VISION_MODEL_TYPES, FamilyAdapter, hf_model

if TYPE_CHECKING:
    from visionrl.core.vlm.model import VLM

Features = list[torch.Tensor | None]
"""Per prompt: its images' features in the layout of the family's `image_features` (None: no image)."""


@dataclass(frozen=True)
class EncodedPrompts:
    """K distinct prompts as `VLM.encode` returns them (left-padded), and the number of images of each."""

    inputs: dict[str, torch.Tensor]
    images: tuple[int, ...]  # (K,)

    def __len__(self) -> int:
        return len(self.images)

    def take(self, adapter: FamilyAdapter, rows: Sequence[int]) -> dict[str, torch.Tensor]:
        """Inputs of prompts `rows` (repeats allowed), trimmed to their own padding and image slots."""
        rows = list(rows)
        assert rows, "no rows to take"
        device = self.inputs["input_ids"].device
        per_image = adapter.per_image_entries(self.inputs)
        first_image = [0]
        for n in self.images:
            first_image.append(first_image[-1] + n)
        out: dict[str, torch.Tensor] = {}
        for key, value in self.inputs.items():
            if key in per_image:
                starts = [0]
                for n in per_image[key]:
                    starts.append(starts[-1] + n)
                index = [e for r in rows for i in range(first_image[r], first_image[r + 1])
                         for e in range(starts[i], starts[i + 1])]
                if index:  # a subset without images has no pixel inputs at all, as the processor gives
                    out[key] = value.index_select(0, torch.tensor(index, device=device))
            else:
                out[key] = value.index_select(0, torch.tensor(rows, device=device))
        return adapter.trim(out, [self.images[r] for r in rows])


def encode_prompts(vlm: VLM, prompts: Sequence[Any], device: torch.device | str | None = None) -> EncodedPrompts:
    """Encode distinct prompts once (`VLM.encode`)."""
    return EncodedPrompts(vlm.encode(list(prompts), device=device), tuple(len(p.images) for p in prompts))


class PromptGroups(NamedTuple):
    """The rows of a micro-batch grouped by prompt."""

    prompts: EncodedPrompts  # the K' distinct prompts of the rows
    row_prompt_B: torch.Tensor  # (B,) each row's index among them
    source: list[int]  # (K',) each prompt's index in the rollout's distinct prompts

    def row_inputs(self, adapter: FamilyAdapter) -> dict[str, torch.Tensor]:
        """Per-row inputs (each row its prompt's encoding): the plain, unshared layout."""
        return self.prompts.take(adapter, self.row_prompt_B.tolist())


def shares_vision(vlm: VLM) -> bool:
    """Whether the family's vision features can be computed apart and handed to its forward."""
    return vlm.model_type in SHARED_VISION_MODEL_TYPES


def vision_trained(vlm: VLM, model: torch.nn.Module) -> bool:
    """Whether any parameter of the vision tower or projector (LoRA ones included) is trained."""
    return any(p.requires_grad for m in vlm.adapter.vision_modules(hf_model(model)) for p in m.parameters())


def image_features(vlm: VLM, prompts: EncodedPrompts, model: torch.nn.Module | None = None,
                   rows: Sequence[int] | None = None) -> Features:
    """Vision features of `prompts` (or of its `rows`), one vision-tower call for all of them."""
    rows = list(range(len(prompts))) if rows is None else list(rows)
    inputs = prompts.take(vlm.adapter, rows)
    return vlm.adapter.image_features(model if model is not None else vlm.model, inputs,
                                      [prompts.images[r] for r in rows])


class SharedFeatures:
    """Vision features of some of a rollout's distinct prompts, computed once for a pass of micro-batches.

    With a trained vision tower the micro-batches read detached copies (leaves) whose gradients add up
    across micro-batches; `pending_loss` turns the sum into one term whose backward runs the tower's
    backward once. The last micro-batch reads the live features and adds that term to its own loss, so a
    pass costs one vision forward and one vision backward whatever the number of micro-batches.
    """

    def __init__(self, vlm: VLM, prompts: EncodedPrompts, model: torch.nn.Module, rows: Sequence[int]):
        self.index = {r: i for i, r in enumerate(rows)}
        self.live = image_features(vlm, prompts, model, rows)
        self.trained = any(f is not None and f.requires_grad for f in self.live)
        self.leaves = [f.detach().requires_grad_() if f is not None and f.requires_grad else f for f in self.live]

    def get(self, source: Sequence[int], *, live: bool = False) -> Features:
        """Features of rollout prompts `source` (leaves, or the live tensors for the last micro-batch)."""
        feats = self.live if live else self.leaves
        return [feats[self.index[s]] for s in source]

    def pending_loss(self) -> torch.Tensor | None:
        """Σ live · ∂loss/∂leaf over what earlier micro-batches collected (None: nothing collected)."""
        terms = [(f * leaf.grad).sum() for f, leaf in zip(self.live, self.leaves, strict=True)
                 if f is not None and leaf is not None and leaf.grad is not None]
        for leaf in self.leaves:
            if leaf is not None:
                leaf.grad = None
        return torch.stack(terms).sum() if terms else None


def prefix_shared_logits(vlm: VLM, prompt_inputs: dict[str, Any], row_prompt_B: torch.Tensor,
                         completion_ids_BC: torch.Tensor, completion_mask_BC: torch.Tensor,
                         model: torch.nn.Module) -> torch.Tensor:
    """Logits (B, C, V) predicting each completion token: K prompts forward once, B completions on their cache."""
    adapter = vlm.adapter
    adapter.reset_state(model)
    try:
        positions, offset_K = adapter.prefill_positions(hf_model(model), prompt_inputs)
        out = model(**prompt_inputs, **positions, use_cache=True, logits_to_keep=1)
        first_B1V = out.logits[:, -1:][row_prompt_B]  # the last prompt token predicts completion token 0
        c = completion_ids_BC.shape[1]
        if c == 1:
            return first_B1V
        cache = out.past_key_values
        cache.batch_select_indices(row_prompt_B)  # differentiable gather: gradients sum back per prompt
        prompt_mask_BP = prompt_inputs["attention_mask"][row_prompt_B]
        mask_BT = torch.cat([prompt_mask_BP, completion_mask_BC[:, :-1].to(prompt_mask_BP.dtype)], 1)
        start_B = prompt_mask_BP.long().sum(1) + offset_K[row_prompt_B]  # position of completion token 0
        pos_BC = start_B[:, None] + torch.arange(c - 1, device=start_B.device)[None, :]  # (B, C-1)
        step: dict[str, Any] = {"input_ids": completion_ids_BC[:, :-1], "attention_mask": mask_BT,
                                "position_ids": adapter.decode_positions(pos_BC)}
        if "cross_attention_mask" in prompt_inputs:  # Mllama slices it by cache position: pass it whole
            cam = prompt_inputs["cross_attention_mask"][row_prompt_B]
            step["cross_attention_mask"] = torch.cat([cam, cam[:, -1:].expand(-1, c - 1, *cam.shape[2:])], 1)
        rest_BCV = model(**step, past_key_values=cache, use_cache=True).logits  # (B, C-1, V)
        return torch.cat([first_B1V, rest_BCV], 1)
    finally:
        adapter.reset_state(model)


def prefix_sharing_applies(model: torch.nn.Module, groups: PromptGroups) -> bool:
    """Some prompt has several rows, and the KV cache is usable (activation checkpointing drops it in training)."""
    base = hf_model(model)
    checkpointing = getattr(base, "is_activation_checkpointing", None)  # transformers < 5: the old name
    checkpointing = getattr(base, "is_gradient_checkpointing", False) if checkpointing is None else checkpointing
    shared = groups.row_prompt_B.unique().numel() < groups.row_prompt_B.numel()
    return shared and not (checkpointing and model.training)
