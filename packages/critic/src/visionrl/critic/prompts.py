"""LLaVA-Critic-R1 prompts, verbatim (arXiv:2509.00676; official code si0wang/LLaVA-Critic-R1 at 6fd42d1).

The critic prompt and the reasoning suffix are shared with the demo model, so their home is
`visionrl.core.prompts` (`CRITIC_PROMPT`, `COT_INSTRUCTION`); this module adds the evaluation harness's
system prompt, the MiMo `<think>` prefill, the policy benchmarks' answer-type suffixes and the message
layouts (image first, as every `eval_llama32v/model_*.py` builds it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from visionrl.core.chat import IMAGE, Prompt
from visionrl.core.prompts import COT_INSTRUCTION, CRITIC_PROMPT, critic_prompt

__all__ = ["COT_INSTRUCTION", "CRITIC_PROMPT", "IMAGE_TOKEN", "MIMO_PREFILL", "SUFFIXES", "SYSTEM_PROMPT",
           "critic_text", "eval_critic_prompt", "policy_prompt", "policy_text", "split_image_tokens"]

# Source: every eval_llama32v/model_*.py: {"role": "system", "content": "You are a helpful assistant."}.
SYSTEM_PROMPT = "You are a helpful assistant."

# Source: eval_llama32v/model_*.py `if args.is_mimo_thinking: text += "<think>"` (after the chat template).
MIMO_PREFILL = "<think>"

# EasyR1's dataset splits the question on this marker and puts an image at each split (`_build_messages`).
IMAGE_TOKEN = "<image>"

# Source: eval_llama32v/model_{mmmu,mmstar,chartqa,hallbench}_llama32v.py, appended to the question before
# the reasoning suffix (`qs = qs + instruct_prompt`).
SUFFIXES: dict[str, str] = {
    "letter": "\nAnswer with the option's letter from the given choices directly.",  # MMMU multiple-choice
    "mmstar": "\nAnswer with the option's letter from the given choices.",  # MMStar (options in the question)
    "open": "\nAnswer the question using a single word or phrase.",  # MMMU open
    "number": "\nAnswer the question using a single word or number.",  # ChartQA
    "yes_no": " Answer with 'Yes' or 'No' directly.",  # HallusionBench
}


def critic_text(question: str, answer1: str, answer2: str) -> str:
    """The critic prompt (leading space kept) + the reasoning suffix, no separator (`prompt()` + `instruct_prompt`).

    `<image>` markers in the question and answers are removed: the image is placed by the message layout.
    """
    def clean(text: str) -> str:
        return text.replace(IMAGE_TOKEN, "").strip()

    return critic_prompt(clean(question), clean(answer1), clean(answer2))


def split_image_tokens(text: str, images: Sequence[Any]) -> list[Any]:
    """EasyR1's message layout: `text` split on `<image>`, one image slot at each split, empty parts dropped."""
    parts = text.split(IMAGE_TOKEN)
    assert len(parts) - 1 == len(images), f"{len(parts) - 1} <image> markers for {len(images)} images"
    content: list[Any] = []
    for i, part in enumerate(parts):
        if i:
            content.append(IMAGE)
        if part:
            content.append(part)
    return content


def eval_critic_prompt(question: str, answer1: str, answer2: str, images: Sequence[Any], *,
                       prefill: str = "") -> Prompt:
    """The authors' critic harness (`model_vlreward_llama32v.py`): system prompt, image(s) first, then the text."""
    return Prompt([*([IMAGE] * len(images)), critic_text(question, answer1, answer2)], list(images),
                  system=SYSTEM_PROMPT, prefill=prefill)


def policy_text(question: str, suffix: str, options: dict[str, str] | None = None) -> str:
    """A policy benchmark's question as the harness builds it: options (MMMU: `" Options:"` then `"\\nA. …"`),
    the benchmark's suffix (a key of `SUFFIXES`), then the reasoning suffix with no separator.

    >>> policy_text("Which?", "letter", {"A": "cat", "B": "dog"}).split("You FIRST")[0]
    "Which? Options:\\nA. cat\\nB. dog\\nAnswer with the option's letter from the given choices directly."
    """
    text = question
    if options:
        text += " Options:" + "".join(f"\n{k}. {v}" for k, v in options.items())
    return text + SUFFIXES[suffix] + COT_INSTRUCTION


def policy_prompt(question: str, suffix: str, images: Sequence[Any], *,
                  options: dict[str, str] | None = None, prefill: str = "") -> Prompt:
    """The authors' policy harness: system prompt, image(s) first, question + suffixes, greedy elsewhere."""
    return Prompt([*([IMAGE] * len(images)), policy_text(question, suffix, options)], list(images),
                  system=SYSTEM_PROMPT, prefill=prefill)
