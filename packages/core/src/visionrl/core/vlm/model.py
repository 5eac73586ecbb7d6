"""Load any supported HF VLM and use it the one way the project needs: prompts in, tokens and log-probs out.

Sequence layout everywhere: a left-padded prompt block (P columns) followed by a right-padded
completion block (C columns), so every completion starts at column P and `logits_to_keep = C + 1`
selects exactly the logits that predict completion tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
from visionrl.core.chat import Prompt
from visionrl.core.hparams import LoadOptions
from visionrl.core.vlm.adapters import FamilyAdapter, adapter_for
from visionrl.core.vlm.sharing import Features, PromptGroups, prefix_shared_logits, prefix_sharing_applies


class ModelLoadError(ValueError):
    """A user-facing error: the model path/id cannot be loaded as a supported VLM."""


class LogProbs(NamedTuple):
    logps_BC: torch.Tensor  # (B, C) log-prob of each completion token
    entropy_BC: torch.Tensor | None  # (B, C) entropy of the next-token distribution


class VLM:
    """A HF VLM + its processor + the family adapter."""

    def __init__(self, model: torch.nn.Module, processor: Any, adapter: FamilyAdapter):
        self.model = model
        self.processor = processor
        self.adapter = adapter
        self.tokenizer = processor.tokenizer
        self.tokenizer.padding_side = "left"
        self.eos_token_id: int = self.tokenizer.eos_token_id
        self.pad_token_id: int = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.eos_token_id
        self.suppress_ids: list[int] = adapter.vision_token_ids(processor)

    # ---- prompts -> model inputs -------------------------------------------------------------
    def render(self, prompt: Prompt) -> str:
        text = self.processor.apply_chat_template(prompt.messages(), add_generation_prompt=True, tokenize=False)
        return text + prompt.prefill

    def encode(self, prompts: Sequence[Prompt], device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
        """Left-padded model inputs for a batch of prompts (images of mixed sizes allowed)."""
        texts = [self.render(p) for p in prompts]
        images = [[im.convert("RGB") for im in p.images] for p in prompts]
        kwargs: dict[str, Any] = {}
        if any(images):
            kwargs["images"] = images if self.adapter.nested_images else [im for row in images for im in row]
        enc = self.processor(text=texts, return_tensors="pt", padding=True, **kwargs)
        enc = {k: v for k, v in enc.items() if isinstance(v, torch.Tensor)}
        if device is not None:
            enc = {k: v.to(device) for k, v in enc.items()}
        if "pixel_values" in enc and enc["pixel_values"].is_floating_point():
            enc["pixel_values"] = enc["pixel_values"].to(self.model.dtype)
        return enc

    # ---- generation ----------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, inputs: dict[str, torch.Tensor], *, max_new_tokens: int, do_sample: bool,
                 temperature: float = 1.0, top_p: float = 1.0, top_k: int = 0,
                 generator_seed: int | None = None) -> torch.Tensor:
        """Completion ids (B, C), right-padded with pad after the first EOS."""
        self.adapter.reset_state(self.model)
        kw: dict[str, Any] = dict(max_new_tokens=max_new_tokens, do_sample=do_sample,
                                  eos_token_id=self.eos_token_id, pad_token_id=self.pad_token_id,
                                  suppress_tokens=self.suppress_ids or None)
        kw.update(temperature=temperature, top_p=top_p, top_k=top_k) if do_sample else kw.update(
            temperature=None, top_p=None, top_k=None)
        was_training = self.model.training
        self.model.eval()
        out = self.model.generate(**inputs, **kw)
        self.model.train(was_training)
        self.adapter.reset_state(self.model)
        return out[:, inputs["input_ids"].shape[1]:]

    def completion_mask(self, completion_ids_BC: torch.Tensor) -> torch.Tensor:
        """1 up to and including the first EOS (or everywhere when there is none)."""
        is_eos = completion_ids_BC == self.eos_token_id  # (B, C)
        after_eos = (is_eos.long().cumsum(1) - is_eos.long()) > 0  # tokens strictly after the first EOS
        return (~after_eos).long()

    def decode(self, completion_ids_BC: torch.Tensor, mask_BC: torch.Tensor) -> list[str]:
        return [self.tokenizer.decode(ids[m.bool()].tolist(), skip_special_tokens=True)
                for ids, m in zip(completion_ids_BC, mask_BC)]

    # ---- log-probs -----------------------------------------------------------------------------
    def completion_logits(self, inputs: dict[str, torch.Tensor], completion_ids_BC: torch.Tensor,
                          completion_mask_BC: torch.Tensor, *, model: torch.nn.Module | None = None) -> torch.Tensor:
        """Logits (B, C, V) that predict each completion token, in fp32, vision tokens masked out
        (the sampling distribution never puts mass on them, so the scored policy must not either)."""
        model = model if model is not None else self.model
        full = self.adapter.extend(inputs, completion_ids_BC, completion_mask_BC)
        full.update(self.adapter.positions(full))
        self.adapter.reset_state(model)
        c = completion_ids_BC.shape[1]
        logits_BCV = model(**full, use_cache=False, logits_to_keep=c + 1).logits[:, :-1]  # (B, C, V)
        self.adapter.reset_state(model)
        return self._scored(logits_BCV)

    def _scored(self, logits_BCV: torch.Tensor) -> torch.Tensor:
        logits_BCV = logits_BCV.to(torch.promote_types(logits_BCV.dtype, torch.float32))  # fp32, or fp64 if so
        if self.suppress_ids:  # finite fill keeps entropy NaN-free
            logits_BCV[..., self.suppress_ids] = torch.finfo(logits_BCV.dtype).min
        return logits_BCV

    def grouped_logits(self, groups: PromptGroups, completion_ids_BC: torch.Tensor,
                       completion_mask_BC: torch.Tensor, *, model: torch.nn.Module | None = None,
                       features: Features | None = None, shared_prefix: bool = False) -> torch.Tensor:
        """`completion_logits` of rows grouped by prompt (vlm/sharing.py). `features` (one entry per prompt of
        `groups`) replace the vision tower; `shared_prefix` runs each prompt once and its completions on its
        KV cache, where some prompt has several rows and the cache is usable (else the full forward)."""
        model = model if model is not None else self.model
        if shared_prefix and prefix_sharing_applies(model, groups):
            prompt_inputs: dict[str, Any] = groups.prompts.inputs
            if features is not None:
                prompt_inputs = self.adapter.with_image_features(prompt_inputs, features)
            return self._scored(prefix_shared_logits(self, prompt_inputs, groups.row_prompt_B, completion_ids_BC,
                                                     completion_mask_BC, model))
        inputs: dict[str, Any] = groups.row_inputs(self.adapter)
        if features is not None:
            inputs = self.adapter.with_image_features(inputs, [features[k] for k in groups.row_prompt_B.tolist()])
        return self.completion_logits(inputs, completion_ids_BC, completion_mask_BC, model=model)

    def completion_logprobs(self, inputs: dict[str, torch.Tensor], completion_ids_BC: torch.Tensor,
                            completion_mask_BC: torch.Tensor, *, temperature: float = 1.0,
                            with_entropy: bool = False, model: torch.nn.Module | None = None) -> LogProbs:
        """Per-token log-probs of completions given their prompts, in one full forward
        (of `model` when given, e.g. a frozen reference copy; else of the policy)."""
        logits_BCV = self.completion_logits(inputs, completion_ids_BC, completion_mask_BC, model=model)
        return _logprobs(logits_BCV, completion_ids_BC, temperature, with_entropy)

    def grouped_logprobs(self, groups: PromptGroups, completion_ids_BC: torch.Tensor,
                         completion_mask_BC: torch.Tensor, *, temperature: float = 1.0, with_entropy: bool = False,
                         model: torch.nn.Module | None = None, features: Features | None = None,
                         shared_prefix: bool = False) -> LogProbs:
        """`completion_logprobs` of rows grouped by prompt, sharing per-prompt work (`grouped_logits`)."""
        logits_BCV = self.grouped_logits(groups, completion_ids_BC, completion_mask_BC, model=model,
                                         features=features, shared_prefix=shared_prefix)
        return _logprobs(logits_BCV, completion_ids_BC, temperature, with_entropy)

    def encode_targets(self, targets: Sequence[str], device: torch.device | str | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor]:
        """Target texts + EOS as right-padded completion ids (B, C) and mask."""
        rows = [self.tokenizer(t, add_special_tokens=False)["input_ids"] + [self.eos_token_id] for t in targets]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r)
            mask[i, : len(r)] = 1
        return ids.to(device) if device else ids, mask.to(device) if device else mask

    # ---- persistence ----------------------------------------------------------------------------
    def save_pretrained(self, out_dir: str | Path) -> None:
        model = self.model
        if hasattr(model, "merge_and_unload"):  # LoRA: export merged full weights
            model = model.merge_and_unload()
        model.save_pretrained(out_dir, safe_serialization=True)
        self.processor.save_pretrained(out_dir)

    @property
    def model_type(self) -> str:
        base = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        return base.config.model_type


def _logprobs(logits_BCV: torch.Tensor, ids_BC: torch.Tensor, temperature: float, with_entropy: bool) -> LogProbs:
    from visionrl.core.losses.policy import entropy_from_logits, selective_log_softmax

    if temperature != 1.0:
        logits_BCV = logits_BCV / temperature
    logps_BC = selective_log_softmax(logits_BCV, ids_BC)
    entropy_BC = entropy_from_logits(logits_BCV.detach()) if with_entropy else None
    return LogProbs(logps_BC, entropy_BC)


def load_vlm(name_or_path: str | Path, options: LoadOptions | None = None) -> VLM:
    """Load a supported VLM (hub id or local dir) through the Auto classes.

    Raises:
        ModelLoadError: the path is not a model, the family is unsupported, or there is no processor.
    """
    from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor

    opts = options or LoadOptions()
    src = str(name_or_path)
    try:
        config = AutoConfig.from_pretrained(src, trust_remote_code=opts.trust_remote_code)
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"cannot load model config from {src!r}: {str(err).splitlines()[0]}") from err
    try:
        adapter = adapter_for(config.model_type)
    except ValueError as err:
        raise ModelLoadError(f"{src}: {err}") from err
    try:
        processor = AutoProcessor.from_pretrained(src, trust_remote_code=opts.trust_remote_code)
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"{src} has no usable processor: {str(err).splitlines()[0]}") from err
    if not hasattr(processor, "tokenizer") or not hasattr(processor, "image_processor"):
        raise ModelLoadError(f"{src}: the processor is not a vision-language processor ({type(processor).__name__})")
    kw: dict[str, Any] = dict(dtype=getattr(torch, opts.dtype), trust_remote_code=opts.trust_remote_code,
                              use_safetensors=True)
    if opts.attn_implementation:
        kw["attn_implementation"] = opts.attn_implementation
    model = AutoModelForImageTextToText.from_pretrained(src, **kw)
    vlm = VLM(model, processor, adapter)
    configure_training(vlm, opts)
    return vlm


def configure_training(vlm: VLM, opts: LoadOptions) -> None:
    """Freezing, activation checkpointing and LoRA, applied in place."""
    if opts.freeze_vision:
        for mod in vlm.adapter.vision_modules(vlm.model):
            mod.requires_grad_(False)
    if opts.gradient_checkpointing:
        # transformers 5.x renamed gradient_checkpointing_* to activation_checkpointing_* (old names warn)
        kwargs = {"use_reentrant": False}
        if hasattr(vlm.model, "activation_checkpointing_enable"):
            vlm.model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        else:
            vlm.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
        vlm.model.config.use_cache = False
    if opts.lora_r > 0:
        try:
            from peft import LoraConfig, get_peft_model
        except ImportError as err:
            raise ModelLoadError("LoRA needs peft: pip install 'visionrl-core[lora]'") from err
        cfg = LoraConfig(r=opts.lora_r, lora_alpha=opts.lora_alpha, lora_dropout=opts.lora_dropout,
                         target_modules=list(opts.lora_target_modules))
        vlm.model = get_peft_model(vlm.model, cfg)
