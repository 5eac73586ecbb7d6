"""Rollouts: G sampled completions per prompt, with group ids, masks and decoded texts.

Engines sit behind one signature `engine.run(vlm, inputs, sampling, repeats) -> completion_ids`
((B·repeats, C), each encoded prompt sampled `repeats` times). `hf` uses `model.generate` (KV cache,
vision tokens suppressed so a sampled image token can never break the next training forward) on
every row's copy of its prompt (the encoding repeated, not re-computed); `lean` (rollout/lean.py)
prefills each distinct prompt once and shares its cache across the group. Each distinct prompt is
encoded once per rollout (chat template and image processor, vlm/sharing.py); the rollout keeps that
encoding, so the update takes the exact model inputs of any subset of rows from it (`Rollout.inputs`,
`Rollout.prompt_groups`) without re-encoding.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from visionrl.core.console import advance
from visionrl.core.hparams import SamplingParams
from visionrl.core.rollout.lean import lean_generate
from visionrl.core.vlm.model import VLM, Prompt
from visionrl.core.vlm.sharing import EncodedPrompts, PromptGroups, encode_prompts


@dataclass(frozen=True)
class Engine:
    run: Callable[[VLM, dict[str, torch.Tensor], SamplingParams, int], torch.Tensor]
    shares_prompts: bool
    """`run` repeats each encoded prompt itself; otherwise it gets one encoded row per completion and
    repeats = 1."""


def _hf_run(vlm: VLM, inputs: dict[str, torch.Tensor], sampling: SamplingParams, repeats: int = 1) -> torch.Tensor:
    if repeats != 1:
        raise ValueError("the hf engine samples each encoded row once; pass one row per completion")
    return vlm.generate(inputs, max_new_tokens=sampling.max_new_tokens, do_sample=sampling.do_sample,
                        temperature=sampling.temperature, top_p=sampling.top_p, top_k=sampling.top_k)


ROLLOUT_ENGINES: dict[str, Engine] = {"hf": Engine(_hf_run, shares_prompts=False),
                                      "lean": Engine(lean_generate, shares_prompts=True)}


def _engine(name: str) -> Engine:
    if name not in ROLLOUT_ENGINES:
        raise ValueError(f"unknown rollout engine {name!r}; choose one of {sorted(ROLLOUT_ENGINES)}")
    return ROLLOUT_ENGINES[name]


@dataclass
class Rollout:
    """N = B·G completions. Tensors live on the policy's device."""

    prompts: list[Prompt]  # (N,) the prompt of each completion
    rows: list[Any]  # (N,) the dataset record behind each completion
    group_ids_N: torch.Tensor  # (N,) prompt-group index
    completion_ids_NC: torch.Tensor  # (N, C) right-padded with pad after the first EOS
    completion_mask_NC: torch.Tensor  # (N, C) 1 up to and including the first EOS
    texts: list[str]  # (N,) decoded completions, special tokens skipped
    clipped_N: torch.Tensor  # (N,) True when no EOS was produced within max_new_tokens
    seconds: float = 0.0  # wall time of generation
    encoded: EncodedPrompts | None = None
    """The distinct prompts, encoded once (at generation time, or on first use)."""
    prompt_index_N: list[int] | None = None
    """(N,) each row's prompt in `encoded`."""

    def __len__(self) -> int:
        return len(self.prompts)

    @property
    def lengths_N(self) -> torch.Tensor:
        return self.completion_mask_NC.sum(1)

    def encoded_prompts(self, vlm: VLM) -> tuple[EncodedPrompts, list[int]]:
        """The distinct prompts (by identity: a group repeats one `Prompt` object) encoded once, and each
        row's index among them; kept on the rollout."""
        if self.encoded is None or self.prompt_index_N is None:
            first: dict[int, int] = {}
            for p in self.prompts:
                first.setdefault(id(p), len(first))
            distinct = list({id(p): p for p in self.prompts}.values())
            self.encoded = encode_prompts(vlm, distinct, device=self.completion_ids_NC.device)
            self.prompt_index_N = [first[id(p)] for p in self.prompts]
        return self.encoded, self.prompt_index_N

    def prompt_groups(self, vlm: VLM, idx: Sequence[int]) -> PromptGroups:
        """Rows `idx` grouped by prompt: their distinct prompts' inputs (taken from the encoding) and each
        row's prompt among them."""
        encoded, index_N = self.encoded_prompts(vlm)
        source = list(dict.fromkeys(index_N[i] for i in idx))
        local = {k: j for j, k in enumerate(source)}
        row_prompt = torch.tensor([local[index_N[i]] for i in idx], device=self.completion_ids_NC.device)
        prompts = EncodedPrompts(encoded.take(vlm.adapter, source), tuple(encoded.images[k] for k in source))
        return PromptGroups(prompts, row_prompt, source)

    def completions(self, idx: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Completion ids and mask (B, C) of rows `idx`, trimmed to their longest completion."""
        ids_BC = self.completion_ids_NC[list(idx)]
        mask_BC = self.completion_mask_NC[list(idx)]
        width = max(int(mask_BC.sum(1).max()), 1)
        return ids_BC[:, :width], mask_BC[:, :width]

    def inputs(self, vlm: VLM, idx: Sequence[int]) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """Model inputs (one row per completion), completion ids and mask for rows `idx`, trimmed to their
        longest completion."""
        encoded, index_N = self.encoded_prompts(vlm)
        return (encoded.take(vlm.adapter, [index_N[i] for i in idx]), *self.completions(idx))


def generate_rollout(vlm: VLM, prompts: Sequence[Prompt], rows: Sequence[Any], *, num_generations: int,
                     sampling: SamplingParams, engine: str = "hf", batch_size: int = 64) -> Rollout:
    """Sample `num_generations` (G) completions for each prompt, about `batch_size` rows per call."""
    eng = _engine(engine)
    rep_prompts = [p for p in prompts for _ in range(num_generations)]
    rep_rows = [r for r in rows for _ in range(num_generations)]
    device = next(vlm.model.parameters()).device
    group_ids = torch.arange(len(prompts), device=device).repeat_interleave(num_generations)
    start = time.perf_counter()
    encoded = encode_prompts(vlm, prompts, device=device)  # each prompt through the processor once
    chunks = []
    if eng.shares_prompts:  # whole groups per call: each prompt prefilled once
        step = max(1, batch_size // num_generations)
        for lo in range(0, len(prompts), step):
            enc = encoded.take(vlm.adapter, range(lo, min(lo + step, len(prompts))))
            chunks.append(eng.run(vlm, enc, sampling, num_generations))
    else:
        for lo in range(0, len(rep_prompts), batch_size):
            rows_of = [r // num_generations for r in range(lo, min(lo + batch_size, len(rep_prompts)))]
            chunks.append(eng.run(vlm, encoded.take(vlm.adapter, rows_of), sampling, 1))
    width = max(c.shape[1] for c in chunks)
    pad = torch.nn.functional.pad
    # masks per chunk: a chunk narrower than `width` must not count its padding columns as tokens
    mask = torch.cat([pad(vlm.completion_mask(c), (0, width - c.shape[1]), value=0) for c in chunks])
    ids = torch.cat([pad(c, (0, width - c.shape[1]), value=vlm.pad_token_id) for c in chunks])
    ids = ids.masked_fill(mask == 0, vlm.pad_token_id)
    has_eos = ((ids == vlm.eos_token_id) & (mask == 1)).any(1)
    return Rollout(prompts=rep_prompts, rows=rep_rows, group_ids_N=group_ids, completion_ids_NC=ids,
                   completion_mask_NC=mask, texts=vlm.decode(ids, mask), clipped_N=~has_eos,
                   seconds=time.perf_counter() - start, encoded=encoded,
                   prompt_index_N=group_ids.tolist())


def generate_texts(vlm: VLM, prompts: Sequence[Prompt], sampling: SamplingParams, *, engine: str = "hf",
                   batch_size: int = 64) -> list[str]:
    """One completion per prompt, decoded (greedy when `sampling.do_sample` is False)."""
    eng = _engine(engine)
    device = next(vlm.model.parameters()).device
    texts: list[str] = []
    for lo in range(0, len(prompts), batch_size):
        ids = eng.run(vlm, vlm.encode(prompts[lo:lo + batch_size], device=device), sampling, 1)
        texts += vlm.decode(ids, vlm.completion_mask(ids))
        advance(len(ids))  # the open phase bar, if any (held-out evaluation)
    return texts


def concat_rollouts(parts: Sequence[Rollout], pad_token_id: int) -> Rollout:
    """Rows of several rollouts as one (e.g. pass-1 and pass-2 sequences trained together)."""
    width = max(p.completion_ids_NC.shape[1] for p in parts)
    pad = torch.nn.functional.pad
    return Rollout(
        prompts=[x for p in parts for x in p.prompts], rows=[x for p in parts for x in p.rows],
        group_ids_N=torch.cat([p.group_ids_N for p in parts]),
        completion_ids_NC=torch.cat([pad(p.completion_ids_NC, (0, width - p.completion_ids_NC.shape[1]),
                                         value=pad_token_id) for p in parts]),
        completion_mask_NC=torch.cat([pad(p.completion_mask_NC, (0, width - p.completion_mask_NC.shape[1]),
                                          value=0) for p in parts]),
        texts=[x for p in parts for x in p.texts], clipped_N=torch.cat([p.clipped_N for p in parts]),
        seconds=sum(p.seconds for p in parts))
