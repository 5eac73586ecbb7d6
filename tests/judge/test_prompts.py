"""The prompts, verbatim: VL-RewardBench's judge prompt (prompt.py), Multimodal RewardBench's judge prompt
(scripts/1_run_model_as_judge_gpt4o.py) and the reference's error-injection template, as the judge renders them."""

from __future__ import annotations

from visionrl.core.chat import IMAGE
from visionrl.judge.prompts import ERROR_INJECTION_PROMPT, answer_prompt, judge_prompt, judge_text

# vl-rewardbench/VL_RewardBench prompt.py, rendered for query "Q?" and answers "one" / "two" (random_number 0).
VLRB = (" You are a highly capable multimodal AI assistant tasked with evaluating answers to visual questions. Please "
        "analyze the following image and question, then determine which of the two provided answers is better.\n\n"
        "Question: Q?\n\nAnswer 1: one\n\nAnswer 2: two\n\nPlease evaluate both answers based on the following "
        "criteria:\n1. Accuracy: How well does the answer align with the visual information in the image?\n"
        "2. Completeness: Does the answer fully address all aspects of the question?\n3. Clarity: Is the answer easy "
        "to understand and well-articulated?\n4. Relevance: Does the answer directly relate to the question and the "
        "image?\n\nAfter your evaluation, please:\n1. Explain your reasoning for each criterion.\n2. Provide an "
        "overall judgment on which answer is better (Answer 1 or Answer 2). For example: Overall Judgment: Answer X "
        "is better.\n\nYour response should be structured and detailed, demonstrating your understanding of both "
        "the visual and textual elements of the task.")
# facebookresearch/multimodal_rewardbench scripts/1_run_model_as_judge_gpt4o.py `judge_prompt`, same inputs.
MMRB = ("Please act as an impartial judge and evaluate the quality of the responses provided by two AI assistants to "
        "the user question displayed below. You should choose the assistant that follows the user's instructions and "
        "answers the user's question better. Your evaluation should consider factors such as the helpfulness, "
        "relevance, accuracy, depth, creativity, and level of detail of their responses. Begin your evaluation by "
        "comparing the two responses and provide a short explanation. Avoid any position biases and ensure that the "
        "order in which the responses were presented does not influence your decision. Do not allow the length of the "
        "responses to influence your evaluation. Do not favor certain names of the assistants. Be as objective as "
        "possible. After providing your explanation, output your final verdict by strictly following this format: "
        "\"[[A]]\" if assistant A is better, \"[[B]]\" if assistant B is better.\n\n[User Question]\nQ?\n\n"
        "[The Start of Assistant A's Answer]\none\n[The End of Assistant A's Answer]\n\n[The Start of Assistant B's "
        "Answer]\ntwo\n[The End of Assistant B's Answer]")


def test_judge_prompts_are_the_benchmarks_own() -> None:
    assert judge_text("vlrb", "Q?", "one", "two") == VLRB
    assert judge_text("mmrb", "Q?", "one", "two") == MMRB


def test_vlrb_drops_the_image_placeholder_as_its_script_does() -> None:
    assert judge_text("vlrb", "<image>\nQ?", "one", "two") == VLRB


def test_the_image_goes_first() -> None:
    prompt = judge_prompt("mmrb", "Q?", "one", "two", ["im1", "im2"])
    assert prompt.content == [IMAGE, IMAGE, MMRB] and prompt.images == ["im1", "im2"]


def test_error_injection_template_is_the_reference_one() -> None:
    assert ERROR_INJECTION_PROMPT == (
        "You are given an image description/answer. Rewrite it so that it contains {k} factual errors about the "
        "image, changing only {error_types} (e.g., an object's colour, the number of objects, or where an object is "
        "located). Keep the wording, length, tone and formatting as close to the original as possible. Do not mention "
        "that anything was changed. Output only the rewritten text.\n\nOriginal: {response}")


def test_closed_questions_ask_for_a_boxed_answer_in_the_demo_format() -> None:
    prompt = answer_prompt("<image>What color is the shape on the left?", ["im"], cot=True)
    assert prompt.content[:2] == ["What color is the shape on the left?", IMAGE]
    assert prompt.content[2].startswith(" You FIRST think") and "\\boxed{}" in prompt.content[2]
    assert answer_prompt("Describe the image.", ["im"], cot=False).content == [IMAGE, "Describe the image."]
