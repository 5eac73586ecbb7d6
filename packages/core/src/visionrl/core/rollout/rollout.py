"""Rollouts: G sampled completions per prompt, with group ids, masks and decoded texts.

Engines sit behind one signature `engine(vlm, inputs, sampling) -> completion_ids_BC`; `hf` uses
`model.generate` (KV cache, suppressing vision tokens so a sampled image token can never break the
next training forward). The rollout keeps each row's `Prompt`, so any subset of rows can be
re-encoded into exact model inputs for log-prob recomputation (`Rollout.inputs`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from visionrl.core.hparams import SamplingParams
from visionrl.core.vlm.model import VLM, Prompt

Engine = Callable[[VLM, dict[str, torch.Tensor], SamplingParams], torch.Tensor]


def hf_engine(vlm: VLM, inputs: dict[str, torch.Tensor], sampling: SamplingParams) -> torch.Tensor:
    return vlm.generate(inputs, max_new_tokens=sampling.max_new_tokens, do_sample=sampling.do_sample,
                        temperature=sampling.temperature, top_p=sampling.top_p, top_k=sampling.top_k)


ROLLOUT_ENGINES: dict[str, Engine] = {"hf": hf_engine}


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

    def __len__(self) -> int:
        return len(self.prompts)

    @property
    def lengths_N(self) -> torch.Tensor:
        return self.completion_mask_NC.sum(1)

    def inputs(self, vlm: VLM, idx: Sequence[int]) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """Model inputs, completion ids and mask for rows `idx`, trimmed to their longest completion."""
        device = self.completion_ids_NC.device
        enc = vlm.encode([self.prompts[i] for i in idx], device=device)
        ids_BC = self.completion_ids_NC[list(idx)]
        mask_BC = self.completion_mask_NC[list(idx)]
        width = max(int(mask_BC.sum(1).max()), 1)
        return enc, ids_BC[:, :width], mask_BC[:, :width]


def generate_rollout(vlm: VLM, prompts: Sequence[Prompt], rows: Sequence[Any], *, num_generations: int,
                     sampling: SamplingParams, engine: str = "hf", batch_size: int = 64) -> Rollout:
    """Sample `num_generations` (G) completions for each prompt, `batch_size` rows per generate call."""
    if engine not in ROLLOUT_ENGINES:
        raise ValueError(f"unknown rollout engine {engine!r}; choose one of {sorted(ROLLOUT_ENGINES)}")
    run = ROLLOUT_ENGINES[engine]
    rep_prompts = [p for p in prompts for _ in range(num_generations)]
    rep_rows = [r for r in rows for _ in range(num_generations)]
    device = next(vlm.model.parameters()).device
    group_ids = torch.arange(len(prompts), device=device).repeat_interleave(num_generations)
    start = time.perf_counter()
    chunks = []
    for lo in range(0, len(rep_prompts), batch_size):
        enc = vlm.encode(rep_prompts[lo:lo + batch_size], device=device)
        chunks.append(run(vlm, enc, sampling))
    width = max(c.shape[1] for c in chunks)
    pad = torch.nn.functional.pad
    # masks per chunk: a chunk narrower than `width` must not count its padding columns as tokens
    mask = torch.cat([pad(vlm.completion_mask(c), (0, width - c.shape[1]), value=0) for c in chunks])
    ids = torch.cat([pad(c, (0, width - c.shape[1]), value=vlm.pad_token_id) for c in chunks])
    ids = ids.masked_fill(mask == 0, vlm.pad_token_id)
    has_eos = ((ids == vlm.eos_token_id) & (mask == 1)).any(1)
    return Rollout(prompts=rep_prompts, rows=rep_rows, group_ids_N=group_ids, completion_ids_NC=ids,
                   completion_mask_NC=mask, texts=vlm.decode(ids, mask), clipped_N=~has_eos,
                   seconds=time.perf_counter() - start)


def generate_texts(vlm: VLM, prompts: Sequence[Prompt], sampling: SamplingParams, *, engine: str = "hf",
                   batch_size: int = 64) -> list[str]:
    """One completion per prompt, decoded (greedy when `sampling.do_sample` is False)."""
    if engine not in ROLLOUT_ENGINES:
        raise ValueError(f"unknown rollout engine {engine!r}; choose one of {sorted(ROLLOUT_ENGINES)}")
    run = ROLLOUT_ENGINES[engine]
    device = next(vlm.model.parameters()).device
    texts: list[str] = []
    for lo in range(0, len(prompts), batch_size):
        ids = run(vlm, vlm.encode(prompts[lo:lo + batch_size], device=device), sampling)
        texts += vlm.decode(ids, vlm.completion_mask(ids))
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
