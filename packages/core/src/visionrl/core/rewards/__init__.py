"""Rewards: the reward interface, answer extraction, answer grading, format rewards and reward plug-ins."""

from visionrl.core.rewards.base import NamedReward, RewardContext, RewardFn
from visionrl.core.rewards.extract import (
    answer_span,
    extract_answer_tag,
    extract_boxed,
    extract_choice_letter,
    extract_description,
    extract_number,
    extract_tag,
    extract_think,
    extract_yes_no,
    normalize_tag_spaces,
)
from visionrl.core.rewards.format import (
    cot_format,
    math_format,
    pass2_format,
    see_think_format,
    think_answer_format,
)
from visionrl.core.rewards.grade import grade_answer, grade_mcq
from visionrl.core.rewards.plugins import RewardModelArgs, load_reward_plugin

__all__ = [
    "NamedReward",
    "RewardContext",
    "RewardFn",
    "RewardModelArgs",
    "answer_span",
    "cot_format",
    "extract_answer_tag",
    "extract_boxed",
    "extract_choice_letter",
    "extract_description",
    "extract_number",
    "extract_tag",
    "extract_think",
    "extract_yes_no",
    "grade_answer",
    "grade_mcq",
    "load_reward_plugin",
    "math_format",
    "normalize_tag_spaces",
    "pass2_format",
    "see_think_format",
    "think_answer_format",
]
