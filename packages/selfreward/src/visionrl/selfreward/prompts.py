"""Vision-SR1 prompts, verbatim (arXiv:2508.19652; official code zli12321/Vision-SR1).

The See-Think, CoT and Caption-Reasoner strings are shared with other methods and the demo model,
so their single home is `visionrl.core.prompts`; this module adds the evaluation judge prompt and the
Vision-SR1 message layout.
"""

from __future__ import annotations

from visionrl.core.chat import Prompt
from visionrl.core.prompts import (
    CAPTION_REASONER_PROMPT,
    COT_INSTRUCTION,
    SEE_THINK_INSTRUCTION,
    caption_reasoner_prompt,
    format_segments,
    see_think_instruction,
)

# Source: arXiv:2508.19652, zli12321/Vision-SR1 Evaluation/utils/gemini_eval.py (code field order;
# v2 Appendix B.2 lists the fields first). "\n" are real newlines here.
JUDGE_PROMPT = (
    "You are provided a question, a gold answer, and a candidate answer. Your task is to judge the correctness "
    "of the candidate answer. Return your judgment enclosed with <judgment> </judgment>.\n"
    "Question:{Question}\nReference Answer: {Reference}\nCandidate Answer: {Candidate}"
)

__all__ = ["CAPTION_REASONER_PROMPT", "COT_INSTRUCTION", "JUDGE_PROMPT", "SEE_THINK_INSTRUCTION",
           "caption_reasoner_prompt", "cot_prompt", "judge_prompt", "see_think_prompt", "self_reward_prompt"]


def see_think_prompt(question: str, images: list, *, literal_backslash_n: bool = True) -> Prompt:
    """Pass 1: [question, image(s), See-Think instruction] in one user turn, default system prompt."""
    return Prompt(format_segments(question, see_think_instruction(literal_backslash_n), len(images)), list(images))


def cot_prompt(question: str, images: list) -> Prompt:
    """The Vision-R1 baseline prompt (CoT format template)."""
    return Prompt(format_segments(question, COT_INSTRUCTION, len(images)), list(images))


def self_reward_prompt(description: str, question: str) -> Prompt:
    """Pass 2: text only, the description replaces the image (Eq. 3: â = f_θ(c, q))."""
    return Prompt([caption_reasoner_prompt(description, question)])


def judge_prompt(question: str, reference: str, candidate: str) -> str:
    """The evaluation judge prompt; `<image>` is stripped from the question as in the official code."""
    return JUDGE_PROMPT.format(Question=question.replace("<image>", ""), Reference=reference, Candidate=candidate)
