"""Per-family differences between VLMs, each in one small adapter.

The rest of the project treats a VLM as: processor(text, images) -> model inputs; extend those
inputs with completion tokens; one full forward. What differs per family:

- Qwen2-VL / Qwen2.5-VL / Qwen3-VL: mRoPE positions are only computed when `mm_token_type_ids`
  reaches the forward (without it the model silently falls back to 1D positions, and log-probs of
  the same tokens differ from generation by nats). `model.model.rope_deltas` is state left behind
  by `generate`; it is reset before every generate and every training forward.
- Mllama: the cross-attention mask is per token; completion tokens repeat the last prompt row,
  as `generate` does.
- LLaVA / LLaVA-OneVision: nothing beyond positions.

For text decoders whose forward otherwise numbers positions 0..T-1 regardless of left padding,
explicit `position_ids = cumsum(attention_mask) - 1` are passed, which is what `generate` uses.

Work shared by the completions of one prompt (vlm/sharing.py) needs three more facts per family: which
inputs are laid out per image rather than per row (`per_image_entries`), how to run the vision tower
alone (`image_features`), and how to hand its output back to the forward (`with_image_features`:
transformers' `mm_encoder_outputs` for Qwen-VL and LLaVA, `cross_attention_states` for Mllama).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

# model_type of the HF config -> adapter name
_MODEL_TYPES = {
    "qwen2_vl": "qwen",
    "qwen2_5_vl": "qwen",
    "qwen3_vl": "qwen",
    "mllama": "mllama",
    "llava": "llava",
    "llava_onevision": "llava",
    "llava_next": "llava",
}
SUPPORTED_MODEL_TYPES = tuple(_MODEL_TYPES)


# Families whose vision features can be computed apart and handed to the forward (tested on the tiny
# models); the others (Qwen3-VL's deepstack features, LLaVA-OneVision's packing) keep the plain forward.
SHARED_VISION_MODEL_TYPES = ("qwen2_vl", "qwen2_5_vl", "mllama", "llava")
# Inputs with one column per token (left padding is trimmed from them when rows are regrouped).
TOKEN_KEYS = ("input_ids", "attention_mask", "mm_token_type_ids", "token_type_ids", "cross_attention_mask")


def _text_positions(attention_mask_BT: torch.Tensor) -> torch.Tensor:
    pos_BT = attention_mask_BT.long().cumsum(-1) - 1  # (B, T)
    return pos_BT.clamp(min=0)


def hf_model(model: Any) -> Any:
    """The transformers model under a peft wrapper (or the model itself)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def trim_left_padding(inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the leading columns that are padding in every row (a row subset of a wider batch)."""
    valid_T = inputs["attention_mask"].bool().any(0)
    first = int(valid_T.nonzero()[0]) if bool(valid_T.any()) else 0
    if first == 0:
        return inputs
    return {k: v[:, first:] if k in TOKEN_KEYS else v for k, v in inputs.items()}


@dataclass(frozen=True)
class FamilyAdapter:
    """Base adapter: plain concatenation, explicit 1D positions."""

    name: str = "llava"
    image_token: str = "<image>"
    nested_images: bool = False  # processor wants one list of images per row

    def vision_token_ids(self, processor: Any) -> list[int]:
        """Special tokens that must never be sampled (a sampled image token breaks the next forward)."""
        tok = processor.tokenizer
        out = []
        for name in ("image_token", "video_token", "boi_token", "eoi_token"):
            t = getattr(processor, name, None) or getattr(tok, name, None)
            if isinstance(t, str):
                out.append(tok.convert_tokens_to_ids(t))
        for t in (self.image_token, "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>",
                  "<|video_pad|>", "<|image|>", "<image>", "<video>"):
            tid = tok.convert_tokens_to_ids(t)
            if isinstance(tid, int) and tid != tok.unk_token_id and tid is not None:
                out.append(tid)
        return sorted(set(i for i in out if i is not None and i >= 0))

    def extend(self, inputs: dict[str, torch.Tensor], completion_ids_BC: torch.Tensor,
               completion_mask_BC: torch.Tensor) -> dict[str, torch.Tensor]:
        """Inputs of the full sequence [left-padded prompt | right-padded completion]."""
        out = dict(inputs)
        out["input_ids"] = torch.cat([inputs["input_ids"], completion_ids_BC], dim=1)  # (B, P+C)
        out["attention_mask"] = torch.cat([inputs["attention_mask"], completion_mask_BC.to(inputs["attention_mask"].dtype)], 1)
        return out

    def positions(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"position_ids": _text_positions(inputs["attention_mask"])}

    def reset_state(self, model: Any) -> None:
        return None

    # ---- cached decoding (rollout/lean.py) ----------------------------------------------------------
    def prefill_positions(self, model: Any, inputs: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Position kwargs of the prefill forward and (B,) each row's offset: a later text token's position
        is (attention-mask count - 1 + offset)."""
        return self.positions(inputs), torch.zeros(inputs["attention_mask"].shape[0], dtype=torch.long,
                                                   device=inputs["attention_mask"].device)

    def decode_positions(self, pos_B1: torch.Tensor) -> torch.Tensor:
        """`position_ids` of one decode step from (B, 1) text positions."""
        return pos_B1

    def grow_decode_inputs(self, state: dict[str, torch.Tensor], step: dict[str, torch.Tensor]) -> None:
        """Extend per-token inputs other than the attention mask by one decode step (in `state`, for `step`)."""
        return None

    def decode_extras(self, model: Any, inputs: dict[str, torch.Tensor]) -> dict[str, Any]:
        """Keyword arguments, the same at every decode step, of the text model called on its own (rollout/lean.py)
        for rows `inputs` (already repeated per completion)."""
        return {}

    def vision_modules(self, model: Any) -> list[torch.nn.Module]:
        base = getattr(model, "model", model)
        mods = [getattr(base, n) for n in ("vision_tower", "visual", "vision_model", "multi_modal_projector")
                if isinstance(getattr(base, n, None), torch.nn.Module)]
        return mods

    # ---- work shared by the completions of one prompt (vlm/sharing.py) ---------------------------------
    def per_image_entries(self, inputs: dict[str, torch.Tensor]) -> dict[str, list[int]]:
        """Inputs whose leading dimension runs over images, not rows: for each, the entries of every image."""
        if "pixel_values" not in inputs:
            return {}
        n = inputs["pixel_values"].shape[0]
        return {k: [1] * n for k in ("pixel_values", "image_sizes") if k in inputs}

    def trim(self, inputs: dict[str, torch.Tensor], images_per_row: list[int]) -> dict[str, torch.Tensor]:
        """Inputs of a row subset cut to the subset's own padding."""
        return trim_left_padding(inputs)

    def image_features(self, model: Any, inputs: dict[str, torch.Tensor],
                       images_per_row: list[int]) -> list[torch.Tensor | None]:
        """Vision tower + projector output of each row's images, (tokens, D) per row (None: no image)."""
        if "pixel_values" not in inputs:
            return [None] * len(images_per_row)
        kw = {k: inputs[k] for k in ("image_grid_thw", "image_sizes") if k in inputs}
        per_image = hf_model(model).get_image_features(pixel_values=inputs["pixel_values"], return_dict=True,
                                                       **kw).pooler_output
        out: list[torch.Tensor | None] = []
        start = 0
        for n in images_per_row:
            out.append(torch.cat(list(per_image[start:start + n]), 0) if n else None)
            start += n
        return out

    def with_image_features(self, inputs: dict[str, torch.Tensor],
                            features: list[torch.Tensor | None]) -> dict[str, Any]:
        """`inputs` whose images are given as precomputed features (one entry per row), not pixels."""
        from transformers.modeling_outputs import BaseModelOutputWithPooling

        out: dict[str, Any] = {k: v for k, v in inputs.items() if k not in ("pixel_values", "image_sizes")}
        rows = tuple(f for f in features if f is not None)
        if rows:
            out["mm_encoder_outputs"] = {"image": BaseModelOutputWithPooling(pooler_output=rows)}
        return out


@dataclass(frozen=True)
class QwenAdapter(FamilyAdapter):
    name: str = "qwen"
    image_token: str = "<|image_pad|>"

    def extend(self, inputs, completion_ids_BC, completion_mask_BC):
        out = super().extend(inputs, completion_ids_BC, completion_mask_BC)
        if "mm_token_type_ids" in inputs:  # completion tokens are text: type 0
            mm = inputs["mm_token_type_ids"]
            out["mm_token_type_ids"] = torch.cat([mm, torch.zeros_like(completion_ids_BC, dtype=mm.dtype)], 1)
        return out

    def positions(self, inputs):
        if "image_grid_thw" in inputs or "video_grid_thw" in inputs:
            return {}  # the model computes 3D mRoPE positions from mm_token_type_ids
        pos_BT = _text_positions(inputs["attention_mask"])
        return {"position_ids": pos_BT.unsqueeze(0).expand(3, -1, -1)}  # (3, B, T): text-only mRoPE

    def reset_state(self, model):
        base = getattr(model, "model", None)
        if base is not None and hasattr(base, "rope_deltas"):
            base.rope_deltas = None

    def prefill_positions(self, model, inputs):
        if "mm_token_type_ids" not in inputs or "image_grid_thw" not in inputs:
            return super().prefill_positions(model, inputs)
        pos_3BT, deltas_B1 = model.model.get_rope_index(
            inputs["input_ids"], inputs["mm_token_type_ids"], image_grid_thw=inputs.get("image_grid_thw"),
            video_grid_thw=inputs.get("video_grid_thw"), attention_mask=inputs["attention_mask"])
        return {"position_ids": pos_3BT}, deltas_B1.view(-1).to(inputs["attention_mask"].device)

    def decode_positions(self, pos_B1):
        return pos_B1.unsqueeze(0).expand(3, -1, -1)  # text tokens: the same position on all three axes

    def per_image_entries(self, inputs):
        if "image_grid_thw" not in inputs:
            return {}
        patches = inputs["image_grid_thw"].prod(-1).tolist()  # flattened patch rows of each image
        return {"pixel_values": patches, "image_grid_thw": [1] * len(patches)}


@dataclass(frozen=True)
class MllamaAdapter(FamilyAdapter):
    name: str = "mllama"
    image_token: str = "<|image|>"
    nested_images: bool = True

    def extend(self, inputs, completion_ids_BC, completion_mask_BC):
        out = super().extend(inputs, completion_ids_BC, completion_mask_BC)
        cam = inputs.get("cross_attention_mask")
        if cam is not None:  # (B, P, n_img, n_tiles): completion tokens see what the last prompt token sees
            last = cam[:, -1:].expand(-1, completion_ids_BC.shape[1], *cam.shape[2:])
            out["cross_attention_mask"] = torch.cat([cam, last], dim=1)
        return out

    def grow_decode_inputs(self, state, step):
        cam = state.get("cross_attention_mask")  # indexed by cache position inside the model: keep it whole
        if cam is not None:
            state["cross_attention_mask"] = step["cross_attention_mask"] = torch.cat([cam, cam[:, -1:]], 1)

    def decode_extras(self, model, inputs):
        """Every completion token sees what the prompt's last token sees: its cross-attention mask, prepared
        once as `MllamaModel.forward` prepares it."""
        from transformers.models.mllama.modeling_mllama import _prepare_cross_attention_mask

        cam = inputs.get("cross_attention_mask")
        if cam is None:
            return {}
        base = hf_model(model).model
        mask, rows = _prepare_cross_attention_mask(cam[:, -1:], num_vision_tokens=base.vision_model.num_patches,
                                                   dtype=base.dtype)
        return {"cross_attention_mask": mask, "full_text_row_masked_out_mask": rows}

    def per_image_entries(self, inputs):
        return {}  # batch-first: (B, n_images, tiles, ...)

    def trim(self, inputs, images_per_row):
        out = trim_left_padding(inputs)
        n = max(images_per_row, default=0)  # image slots beyond the subset's most are padding
        cut = {"pixel_values": 1, "aspect_ratio_ids": 1, "aspect_ratio_mask": 1, "cross_attention_mask": 2}
        for key, dim in cut.items():
            if key in out and out[key].shape[dim] > n:
                out[key] = out[key].narrow(dim, 0, n)
        return out

    def image_features(self, model, inputs, images_per_row):
        """Mllama's `cross_attention_states` of each row, (n_images · tiles, patches, D)."""
        if "pixel_values" not in inputs:
            return [None] * len(images_per_row)
        base = hf_model(model).model
        vis = base.vision_model(pixel_values=inputs["pixel_values"], aspect_ratio_ids=inputs["aspect_ratio_ids"],
                                aspect_ratio_mask=inputs["aspect_ratio_mask"]).last_hidden_state
        states = base.multi_modal_projector(vis)  # (B, n_images, tiles, patches, D)
        return list(states.reshape(states.shape[0], -1, *states.shape[-2:]).unbind(0))

    def with_image_features(self, inputs, features):
        out: dict[str, Any] = {k: v for k, v in inputs.items()
                               if k not in ("pixel_values", "aspect_ratio_ids", "aspect_ratio_mask")}
        if any(f is not None for f in features):
            assert all(f is not None for f in features), "Mllama batches rows with images only"
            n_slots = inputs["cross_attention_mask"].shape[2] * inputs["cross_attention_mask"].shape[3]
            out["cross_attention_states"] = torch.cat([f[:n_slots] for f in features], 0)  # type: ignore[index]
        return out


_ADAPTERS = {"qwen": QwenAdapter(), "mllama": MllamaAdapter(), "llava": FamilyAdapter()}


def adapter_for(model_type: str) -> FamilyAdapter:
    """The adapter for an HF `config.model_type`; ValueError names the supported types."""
    if model_type not in _MODEL_TYPES:
        raise ValueError(f"unsupported model family {model_type!r}; supported: {', '.join(SUPPORTED_MODEL_TYPES)}")
    return _ADAPTERS[_MODEL_TYPES[model_type]]
