"""Open pairs: the programmatic injector on the demo model's descriptions and on free text, the rewrite
validation (content words changed, length ratio 0.8–1.25) and the model-rewrite prompt."""

from __future__ import annotations

import random

import pytest
from visionrl.judge.inject import (
    ERROR_TYPES,
    content_words,
    pick_error_types,
    program_inject,
    validate_rewrite,
)
from visionrl.judge.prompts import ERROR_INJECTION_PROMPT, rewrite_prompt

DEMO = "red on the left, blue in the middle"


@pytest.mark.parametrize("seed", range(40))
def test_demo_descriptions_get_a_colour_swapped_or_a_shape_moved(seed: int) -> None:
    inj = program_inject(DEMO, random.Random(seed))
    assert inj.errors and set(inj.errors) <= {"attribute", "spatial"}, inj
    assert validate_rewrite(DEMO, inj.text) is None
    before, after = DEMO.split(", "), inj.text.split(", ")
    assert len(before) == len(after) == 2
    changed = [(b, a) for b, a in zip(before, after) if b != a]
    assert 1 <= len(changed) <= len(inj.errors)
    for b, a in changed:
        colour_b, place_b = b.split(" ", 1)
        colour_a, place_a = a.split(" ", 1)
        assert colour_a in ("red", "green", "blue", "yellow")
        assert place_a in ("on the left", "in the middle", "on the right")
        assert colour_a != colour_b or place_a != place_b


def test_a_moved_shape_goes_to_a_free_place_when_there_is_one() -> None:
    moved = [program_inject(DEMO, random.Random(s), max_errors=1, types=("spatial",)).text for s in range(20)]
    assert set(moved) == {"red on the right, blue in the middle", "red on the left, blue on the right"}


@pytest.mark.parametrize(("text", "kind", "expected"), [
    ("There are 3 dogs.", "count", {"There are 2 dogs.", "There are 4 dogs."}),
    ("There are zero cars.", "count", {"There are one cars."}),
    ("Two cats sit on a mat.", "count", {"One cats sit on a mat.", "Three cats sit on a mat."}),
    ("The cup is above the table.", "spatial", {"The cup is below the table."}),
    ("A car on the left of a tree.", "spatial", {"A car on the right of a tree.", "A car in the middle of a tree."}),
    ("a red circle on the left", "object", {"a red square on the left", "a red triangle on the left"}),
    ("A man rides a horse.", "object", None),  # some other common object replaces one of the two
])
def test_one_error_of_each_type(text: str, kind: str, expected: set[str] | None) -> None:
    outs = {program_inject(text, random.Random(s), max_errors=1, types=(kind,)).text for s in range(30)}
    if expected is not None:
        assert outs == expected
    else:
        assert all(o != text and validate_rewrite(text, o) is None for o in outs)


def test_several_errors_go_to_distinct_places() -> None:
    text = "a red circle on the left, a blue square in the middle, a green triangle on the right"
    for seed in range(30):
        inj = program_inject(text, random.Random(seed), max_errors=3)
        assert 1 <= len(inj.errors) <= 3
        changed = sum(a != b for a, b in zip(text.split(), inj.text.split()))
        assert changed >= len(inj.errors) - inj.errors.count("spatial")  # a place phrase changes 1-2 words


def test_text_without_a_place_for_an_error_is_left_alone() -> None:
    inj = program_inject("Nothing to see here.", random.Random(0))
    assert inj.errors == () and inj.text == "Nothing to see here."


@pytest.mark.parametrize(("original", "rewrite", "problem"), [
    ("red on the left", "blue on the left", None),
    ("red on the left", "red on the left", "no_content_change"),
    ("red on the left", "Red on the left.", "no_content_change"),  # case and punctuation are no error
    ("red on the left", "red in the left", "no_content_change"),  # only stop words changed
    ("red on the left", "", "empty"),
    ("a red circle on the left and a blue square", "a green circle", "length_ratio"),  # 3 / 9 words
    ("one two three four five", "one two three four six seven eight", "length_ratio"),  # 7 / 5 = 1.4
    ("one two three four five", "one two three four six seven", None),  # 6 / 5 = 1.2
    ("one two three four five", "one two three six", None),  # 4 / 5 = 0.8, the bound is inclusive
])
def test_validate_rewrite(original: str, rewrite: str, problem: str | None) -> None:
    assert validate_rewrite(original, rewrite) == problem


def test_content_words_drop_stop_words() -> None:
    assert content_words("The red circle is on the LEFT.") == ["red", "circle", "left"]


def test_model_rewrite_prompt_names_k_and_the_types() -> None:
    prompt = rewrite_prompt("red on the left", 2, ("attribute", "spatial"))
    assert prompt.images == [] and len(prompt.content) == 1
    assert prompt.content[0] == ERROR_INJECTION_PROMPT.format(
        k=2, error_types="object attributes (colour, material, size) or spatial positions or relations",
        response="red on the left")
    k, types = pick_error_types(random.Random(3), 3)
    assert 1 <= k <= 3 and 1 <= len(types) <= k and set(types) <= set(ERROR_TYPES)
