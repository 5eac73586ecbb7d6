"""A lean KV-cache decode loop: one prefill per distinct prompt, then one cached forward per token.

Why by hand rather than `model.generate`: `generate` prefills every repeated prompt of a GRPO group
again, vision tower included, and for small models spends much of each decode step in per-token
bookkeeping (input preparation, logits processors, stopping criteria) and in the VLM's own forward
(image inputs, position computation, a new attention mask every token). This loop prefills each prompt
once through the full VLM forward, copies its cache `G` times (`DynamicCache.batch_repeat_interleave`),
and then runs each token through the text model and LM head alone (`TextDecoder`), with the attention
mask built once by transformers and grown by one column per token, plus the sampling arithmetic.
Family differences (mRoPE positions for Qwen-VL, the cross-attention mask of Mllama) live in the
family adapters (`prefill_positions`, `decode_positions`, `decode_extras`). Greedy outputs equal
`generate`'s token for token, and every sampled-from logit equals the training forward's (tested on
every tiny family).

Sampling follows `generate`'s order: vision tokens suppressed, then temperature, top-k, top-p.
"""

from __future__ import annotations

from typing import Any

import torch
from visionrl.core.hparams import SamplingParams
from visionrl.core.vlm.adapters import SHARED_VISION_MODEL_TYPES, hf_model
from visionrl.core.vlm.model import VLM


def filter_logits(logits_BV: torch.Tensor, sampling: SamplingParams, suppress_ids: list[int]) -> torch.Tensor:
    """Logits after suppression, temperature, top-k and top-p (-inf outside the kept set)."""
    logits_BV = logits_BV.float()
    if suppress_ids:
        logits_BV[:, suppress_ids] = -float("inf")
    if not sampling.do_sample:
        return logits_BV
    if sampling.temperature != 1.0:
        logits_BV = logits_BV / sampling.temperature
    if sampling.top_k and sampling.top_k < logits_BV.shape[-1]:
        kth_B1 = torch.topk(logits_BV, sampling.top_k, dim=-1).values[:, -1:]
        logits_BV = logits_BV.masked_fill(logits_BV < kth_B1, -float("inf"))
    if sampling.top_p < 1.0:  # drop the low tail whose total mass is at most 1 - top_p (never the top token)
        sorted_BV, order_BV = torch.sort(logits_BV, dim=-1)
        tail_BV = sorted_BV.softmax(-1).cumsum(-1) <= 1 - sampling.top_p
        tail_BV[:, -1] = False
        logits_BV = logits_BV.masked_fill(tail_BV.scatter(1, order_BV, tail_BV), -float("inf"))
    return logits_BV


def next_tokens(logits_BV: torch.Tensor, sampling: SamplingParams, suppress_ids: list[int]) -> torch.Tensor:
    """(B,) sampled (or greedy) next tokens."""
    logits_BV = filter_logits(logits_BV, sampling, suppress_ids)
    if not sampling.do_sample:
        return logits_BV.argmax(-1)
    return torch.multinomial(logits_BV.softmax(-1), 1).squeeze(1)


def _repeat(x: Any, repeats: int) -> Any:
    return x.repeat_interleave(repeats, dim=0) if isinstance(x, torch.Tensor) and repeats > 1 else x


def _decode_inputs(vlm: VLM, state: dict[str, torch.Tensor], tok_B: torch.Tensor) -> dict[str, torch.Tensor]:
    """Inputs of one cached decode step of the full VLM forward for tokens `tok_B` (updates `state`)."""
    state["attention_mask"] = torch.cat([state["attention_mask"], torch.ones_like(tok_B)[:, None]], 1)
    pos_B1 = (state["attention_mask"].long().sum(1) - 1 + state["offset"])[:, None]
    step = {"input_ids": tok_B[:, None], "attention_mask": state["attention_mask"],
            "position_ids": vlm.adapter.decode_positions(pos_B1)}
    vlm.adapter.grow_decode_inputs(state, step)
    return step


class TextDecoder:
    """Cached decode steps through the text model and LM head alone (families whose text model is
    `model.model.language_model`, tested ones only): the first step's attention mask comes from
    transformers' own `create_causal_mask`, later steps append one attended column to it."""

    def __init__(self, vlm: VLM, model: torch.nn.Module, state: dict[str, torch.Tensor], cache: Any):
        from transformers.masking_utils import create_causal_mask

        hf = hf_model(model)
        self.text, self.head, self.cache, self.adapter = hf.model.language_model, hf.get_output_embeddings(), cache, vlm.adapter
        self.extras = vlm.adapter.decode_extras(model, state)
        mask_BT = torch.cat([state["attention_mask"], state["attention_mask"].new_ones(len(state["offset"]), 1)], 1)
        self.start_B = state["attention_mask"].long().sum(1) + state["offset"]  # position of completion token 0
        layer_types = set(getattr(self.text.config, "layer_types", None) or ["full_attention"])
        self.mask: Any = mask_BT
        self.prepared = layer_types == {"full_attention"}  # sliding-window layers need the model's own masks
        if self.prepared:
            embeds = torch.empty(mask_BT.shape[0], 1, self.text.config.hidden_size, dtype=hf.dtype, device=mask_BT.device)
            self.mask = create_causal_mask(config=self.text.config, inputs_embeds=embeds, attention_mask=mask_BT,
                                           past_key_values=cache, position_ids=None)

    @staticmethod
    def applies(vlm: VLM, model: torch.nn.Module) -> bool:
        hf = hf_model(model)
        return vlm.model_type in SHARED_VISION_MODEL_TYPES and hasattr(getattr(hf, "model", None), "language_model")

    def _grow(self) -> None:
        m = self.mask
        if m is None:  # no padding anywhere: nothing to mask now or later
            return
        if m.dim() == 4:  # (B, 1, 1, T): bool (True = attend) or additive float (0 = attend)
            col = torch.ones if m.dtype == torch.bool else torch.zeros
            self.mask = torch.cat([m, col(*m.shape[:-1], 1, dtype=m.dtype, device=m.device)], -1)
        else:
            self.mask = torch.cat([m, m.new_ones(m.shape[0], 1)], 1)

    def step(self, tok_B: torch.Tensor, t: int) -> torch.Tensor:
        """Next-token logits (B, V) after feeding completion token `t` (`tok_B`)."""
        if t > 0:
            self._grow()
        pos_B1 = (self.start_B + t)[:, None]
        hidden = self.text(input_ids=tok_B[:, None], attention_mask=self.mask, past_key_values=self.cache,
                           position_ids=self.adapter.decode_positions(pos_B1), use_cache=True,
                           **self.extras).last_hidden_state
        return self.head(hidden[:, -1])


@torch.no_grad()
def lean_generate(vlm: VLM, inputs: dict[str, torch.Tensor], sampling: SamplingParams,
                  repeats: int = 1) -> torch.Tensor:
    """Completion ids (B·repeats, C) for the B prompts in `inputs`, each sampled `repeats` times
    (rows in `repeat_interleave` order), right-padded with pad after the first EOS."""
    model = vlm.model
    was_training = model.training
    model.eval()
    vlm.adapter.reset_state(model)
    try:
        positions, offset_B = vlm.adapter.prefill_positions(hf_model(model), inputs)
        out = model(**inputs, **positions, use_cache=True, logits_to_keep=1)
        cache = out.past_key_values
        if repeats > 1:
            cache.batch_repeat_interleave(repeats)
        state = {"attention_mask": _repeat(inputs["attention_mask"], repeats), "offset": _repeat(offset_B, repeats)}
        if "cross_attention_mask" in inputs:
            state["cross_attention_mask"] = _repeat(inputs["cross_attention_mask"], repeats)
        logits_BV = _repeat(out.logits[:, -1], repeats)
        decoder = TextDecoder(vlm, model, state, cache) if TextDecoder.applies(vlm, model) else None
        n = logits_BV.shape[0]
        done_B = torch.zeros(n, dtype=torch.bool, device=logits_BV.device)
        columns = []
        for t in range(sampling.max_new_tokens):
            tok_B = next_tokens(logits_BV, sampling, vlm.suppress_ids)
            tok_B = tok_B.masked_fill(done_B, vlm.pad_token_id)
            columns.append(tok_B)
            done_B |= tok_B == vlm.eos_token_id
            if bool(done_B.all()) or t == sampling.max_new_tokens - 1:
                break
            if decoder is not None:
                logits_BV = decoder.step(tok_B, t)
            else:
                out = model(**_decode_inputs(vlm, state, tok_B), past_key_values=cache, use_cache=True)
                cache, logits_BV = out.past_key_values, out.logits[:, -1]
        return torch.stack(columns, 1)
    finally:
        vlm.adapter.reset_state(model)
        model.train(was_training)
