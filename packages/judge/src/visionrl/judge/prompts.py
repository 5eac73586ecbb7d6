"""Prompts of the self-improving judge (arXiv 2512.05145). The paper publishes none of its prompts; each one
here is the reference's recommended default (shared/reference/self-improving-judges.md) and is listed as a
reconstruction in the README.

- `mmrb` (default): the Multimodal RewardBench pairwise judge prompt (core `PAIRWISE_JUDGE_PROMPT`), verdict
  `[[A]]`/`[[B]]`; same group of authors, and what MMRB scoring expects.
- `vlrb`: the VL-RewardBench prompt (`Answer 1`/`Answer 2`, "Overall Judgment: Answer X is better"); its text is
  the same string as core's `CRITIC_PROMPT` (LLaVA-Critic-R1 copied it), so core holds it once.
- `ERROR_INJECTION_PROMPT`: the reference's rewrite template for open-ended pairs (§1.3).

The image goes first in every judge prompt, as the demo model was trained; the benchmarks' own scripts send
the text first (README, departure 2).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from visionrl.core.chat import IMAGE, Prompt
from visionrl.core.data.shapes_scene import CAPTION_QUESTION
from visionrl.core.prompts import COT_INSTRUCTION, CRITIC_PROMPT, PAIRWISE_JUDGE_PROMPT, format_segments

JudgeStyle = Literal["mmrb", "vlrb"]
Order = Literal["chosen_first", "chosen_second"]
ORDERS: tuple[Order, Order] = ("chosen_first", "chosen_second")

# Source: facebookresearch/multimodal_rewardbench scripts/1_run_model_as_judge_gpt4o.py `judge_prompt`
# (held verbatim in core); the reference's default judge prompt for arXiv 2512.05145 [R].
MMRB_JUDGE_PROMPT = PAIRWISE_JUDGE_PROMPT
# Source: vl-rewardbench/VL_RewardBench prompt.py `prompt()` (leading space included); the same text as
# core's CRITIC_PROMPT, whose source is LLaVA-Critic-R1's copy of it.
VLRB_JUDGE_PROMPT = CRITIC_PROMPT

# Source: shared/reference/self-improving-judges.md §1.3, the recommended rewrite template [R] (the paper's
# style-mimicking detail-alteration prompts are in its appendix, which no available source quotes).
ERROR_INJECTION_PROMPT = (
    "You are given an image description/answer. Rewrite it so that it contains {k} factual errors about the "
    "image, changing only {error_types} (e.g., an object's colour, the number of objects, or where an object "
    "is located). Keep the wording, length, tone and formatting as close to the original as possible. Do not "
    "mention that anything was changed. Output only the rewritten text.\n\nOriginal: {response}"
)

ERROR_TYPE_PHRASES: dict[str, str] = {
    "attribute": "object attributes (colour, material, size)",
    "count": "object counts",
    "spatial": "spatial positions or relations",
    "object": "object identities",
}
"""The four error types of §1.3 as the rewrite prompt names them."""

OPEN_QUESTION = CAPTION_QUESTION
"""The default open-ended prompt ("Describe the image.")."""


def judge_text(style: JudgeStyle, question: str, first: str, second: str) -> str:
    """The judge prompt's text with `first` shown as A (Answer 1) and `second` as B (Answer 2).

    >>> judge_text("vlrb", "What color?", "red", "blue").startswith(" You are a highly capable")
    True
    """
    if style == "mmrb":
        return MMRB_JUDGE_PROMPT.format(question=question, answer_a=first, answer_b=second)
    # VL-RewardBench's inference script removes "<image>\n" from the rendered prompt.
    return VLRB_JUDGE_PROMPT.format(question=question, answer1=first, answer2=second).replace("<image>\n", "")


def judge_prompt(style: JudgeStyle, question: str, first: str, second: str, images: Sequence) -> Prompt:
    """A chat prompt: the images, then the judge text."""
    return Prompt([*[IMAGE] * len(images), judge_text(style, question, first, second)], list(images))


def answer_prompt(question: str, images: Sequence, *, cot: bool) -> Prompt:
    """How a prompt source's question is asked: with the CoT instruction (the demo model's format; the answer is
    read from `\\boxed{}`), or as given with the images first."""
    if cot:
        return Prompt(format_segments(question, COT_INSTRUCTION, len(images)), list(images))
    return Prompt.simple(question.replace("<image>", "").strip(), images)


def rewrite_prompt(response: str, k: int, error_types: Sequence[str]) -> Prompt:
    """The text-only error-injection request for one response (k errors of the named types)."""
    phrases = [ERROR_TYPE_PHRASES[t] for t in error_types]
    named = phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " or " + phrases[-1]
    return Prompt([ERROR_INJECTION_PROMPT.format(k=k, error_types=named, response=response)])
