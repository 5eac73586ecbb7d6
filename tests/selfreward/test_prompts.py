"""Snapshot tests: the Vision-SR1 prompts are the official strings, character for character."""

from visionrl.core.chat import IMAGE
from visionrl.selfreward import prompts as P

SEE_THINK_OFFICIAL = (
    r"You are tasked with analyzing an image/video to generate a detailed description to help you answer the question. "
    r"First analyze the image/video and produce a self-contained description—detailed enough that can lead to the "
    r"correct answer. Wrap the entire description in <description> </description> tags.\n Next, engage in an internal "
    r"dialogue and include self-reflection or verification in your reasoning process. Provide your detailed, "
    r"step-by-step reasoning based on the image/video description information and image/video, and enclose this part "
    r"within <think> </think> tags.\n Finally, provide a single word or phrase answer to the question in \boxed{}.\n"
    r"The output format should be: <description> image/video description here </description> <think> reasoning "
    r"process here </think> \boxed{FINAL ANSWER here}."
)


def test_see_think_is_the_official_file_with_literal_backslash_n():
    assert P.SEE_THINK_INSTRUCTION == SEE_THINK_OFFICIAL
    assert "\\n" in P.SEE_THINK_INSTRUCTION and "\n" not in P.SEE_THINK_INSTRUCTION
    assert "description\u2014detailed" in P.SEE_THINK_INSTRUCTION  # the em-dash


def test_see_think_real_newlines_option():
    prompt = P.see_think_prompt("Q?", [object()], literal_backslash_n=False)
    text = prompt.content[-1]
    assert "\\n" not in text and text.count("\n") == 3


def test_message_layout_puts_image_between_question_and_instruction():
    prompt = P.see_think_prompt("  What color is the circle? <image>", ["img"])
    assert prompt.content == ["What color is the circle?", IMAGE, " " + SEE_THINK_OFFICIAL]
    assert prompt.images == ["img"] and prompt.system is None  # the chat template's default system prompt


def test_cot_prompt_exact():
    assert P.COT_INSTRUCTION == (
        "You FIRST think about the reasoning process as an internal monologue and then provide the final answer. "
        "The reasoning process MUST BE enclosed within <think> </think> tags. The final answer MUST BE put in \\boxed{}."
    )
    assert P.cot_prompt("Q", ["i"]).content == ["Q", IMAGE, " " + P.COT_INSTRUCTION]


def test_self_reward_prompt_exact_and_text_only():
    prompt = P.self_reward_prompt("a red circle", "What color?<image>")
    assert prompt.images == [] and IMAGE not in prompt.content
    assert prompt.content == [
        "Text description: a red circle\nQuestion: What color?\nYou are provided a text description of a problem "
        "and a question. Determine the answer to the question based on the text description. First provide an "
        "internal step-by-step reasoning within <think> </think> tags, then provide a single word or phrase answer "
        "in \\boxed{}."]


def test_judge_prompt_exact_code_order():
    assert P.judge_prompt("Q<image>", "ref", "cand") == (
        "You are provided a question, a gold answer, and a candidate answer. Your task is to judge the correctness "
        "of the candidate answer. Return your judgment enclosed with <judgment> </judgment>.\nQuestion:Q\n"
        "Reference Answer: ref\nCandidate Answer: cand")
