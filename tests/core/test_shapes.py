"""The `shapes` world: determinism, defaults, and answers checked against the rendered pixels.

The checks below re-derive each scene from the image alone (foreground mask per third, nearest
palette colour, fill ratio of the bounding box: square 1.0, circle ≈0.78, triangle ≈0.52) and
re-answer every question from that, independently of the generator's own bookkeeping.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter

import numpy as np
import pytest
from visionrl.core.data import (
    TEMPLATES,
    MCQRecord,
    PairRecord,
    Scene,
    ShapesWorld,
    VQARecord,
    blind_baseline,
    caption,
    render,
    sample_scene,
)
from visionrl.core.data.shapes_scene import BACKGROUND, COLORS, KINDS

POSITIONS = ("on the left", "in the middle", "on the right")


def pixel_scene(img) -> list[dict]:
    """Shapes read back from pixels: kind, colour, column and centre (in pixels)."""
    a = np.asarray(img).astype(int)  # (H, W, 3)
    size = a.shape[0]
    fg = np.abs(a - np.array(BACKGROUND)).sum(-1) > 30  # (H, W)
    centres = (np.arange(size) + 0.5) / size
    palette = {name: np.array(rgb) for name, rgb in COLORS.items()}
    shapes = []
    for col in range(3):
        mask = fg & ((centres >= col / 3) & (centres < (col + 1) / 3))[None, :]
        if not mask.any():
            continue
        ys, xs = np.nonzero(mask)
        fill = mask.sum() / ((np.ptp(ys) + 1) * (np.ptp(xs) + 1))
        kind = "square" if fill > 0.9 else "circle" if fill > 0.65 else "triangle"
        pixel = np.median(a[mask], axis=0)
        color = min(palette, key=lambda c: np.abs(palette[c] - pixel).sum())
        shapes.append(
            {
                "kind": kind,
                "color": color,
                "col": col,
                "x": (xs.min() + xs.max()) / 2,
                "y": (ys.min() + ys.max()) / 2,
            }
        )
    return shapes


def dict_scene(scene: dict) -> list[dict]:
    """The same description from the record's `meta["scene"]`."""
    return [
        {"kind": s["kind"], "color": s["color"], "col": min(int(s["x"] * 3), 2), "x": s["x"], "y": s["y"]}
        for s in scene["shapes"]
    ]


def answer(question: str, shapes: list[dict]) -> str:
    """Answer a question from a list of shapes, without using the generator's code."""
    by_kind = {s["kind"]: s for s in shapes}
    yes = {True: "yes", False: "no"}
    if m := re.fullmatch(r"What color is the (\w+)\?", question):
        return by_kind[m[1]]["color"]
    if m := re.fullmatch(r"What color is the shape (on the left|in the middle|on the right)\?", question):
        (color,) = [s["color"] for s in shapes if POSITIONS[s["col"]] == m[1]]
        return color
    if m := re.fullmatch(r"What shape is the (\w+) one\?", question):
        (kind,) = [s["kind"] for s in shapes if s["color"] == m[1]]
        return kind
    if m := re.fullmatch(r"How many (\w+) shapes are there\?", question):
        return str(sum(s["color"] == m[1] for s in shapes))
    if m := re.fullmatch(r"Is the (\w+) left of the (\w+)\?", question):
        return yes[by_kind[m[1]]["x"] < by_kind[m[2]]["x"]]
    if m := re.fullmatch(r"Is the (\w+) above the (\w+)\?", question):
        return yes[by_kind[m[1]]["y"] < by_kind[m[2]]["y"]]
    if m := re.fullmatch(r"Is there a (\w+) (\w+)\?", question):
        return yes[any(s["color"] == m[1] and s["kind"] == m[2] for s in shapes)]
    raise AssertionError(f"unknown question {question!r}")


def describe(shapes: list[dict]) -> str:
    return ", ".join(
        f"a {s['color']} {s['kind']} {POSITIONS[s['col']]}" for s in sorted(shapes, key=lambda s: s["x"])
    )


def same(a, b) -> bool:
    """Records equal field by field, images by pixels."""
    if type(a) is not type(b):
        return False
    fa, fb = dict(vars(a)), dict(vars(b))
    ia, ib = fa.pop("images"), fb.pop("images")
    return (
        fa == fb
        and len(ia) == len(ib)
        and all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(ia, ib, strict=True))
    )


def all_records(world: ShapesWorld, n: int = 40) -> list:
    return world.vqa(n) + world.mcq(n) + world.captions(n) + world.pairs(n)


def test_same_seed_gives_identical_records_and_pixels():
    a, b = all_records(ShapesWorld(7)), all_records(ShapesWorld(7))
    assert all(same(x, y) for x, y in zip(a, b, strict=True))


def test_different_seeds_differ():
    a, b = ShapesWorld(0).vqa(30), ShapesWorld(1).vqa(30)
    assert sum(same(x, y) for x, y in zip(a, b, strict=True)) < 3
    assert [r.id for r in a] == [r.id for r in b]  # ids are stable positions, not content


def test_record_i_does_not_depend_on_n():
    world = ShapesWorld(3)
    assert all(same(x, y) for x, y in zip(world.vqa(5), world.vqa(25)[:5], strict=True))


def test_ids_unique_and_meta_json_able():
    records = all_records(ShapesWorld(0))
    assert len({r.id for r in records}) == len(records)
    for r in records:
        assert json.loads(json.dumps(r.meta)) == r.meta
        assert r.meta["template"] in (*TEMPLATES, "caption")


def test_default_scenes_follow_the_design():
    for r in ShapesWorld(0).vqa(100):
        (img,) = r.images
        assert img.mode == "RGB" and img.size == (56, 56)
        assert img.getpixel((0, 0)) == (123, 117, 104)
        kinds = [s["kind"] for s in r.meta["scene"]["shapes"]]
        assert 2 <= len(kinds) <= 3 and len(set(kinds)) == len(kinds)
        cols = [s["col"] for s in dict_scene(r.meta["scene"])]
        assert len(set(cols)) == len(cols)
        assert sorted((s["kind"], s["color"], s["col"]) for s in pixel_scene(img)) == sorted(
            (s["kind"], s["color"], s["col"]) for s in dict_scene(r.meta["scene"])
        )


@pytest.mark.parametrize("template", list(TEMPLATES))
def test_answers_match_pixels_and_scene(template):
    records = ShapesWorld(11, templates=[template]).vqa(150)
    for r in records:
        assert r.meta["template"] == template
        assert answer(r.question, pixel_scene(r.images[0])) == r.answer, r.question
        assert answer(r.question, dict_scene(r.meta["scene"])) == r.answer, r.question


def test_templates_are_balanced():
    records = ShapesWorld(5).vqa(3000)
    for template in TEMPLATES:
        counts = Counter(r.answer for r in records if r.meta["template"] == template)
        share = counts.most_common(1)[0][1] / sum(counts.values())
        assert share < {"color": 0.32, "color_at": 0.32, "shape": 0.4, "count": 0.35}.get(template, 0.6), (template, counts)
    counts = Counter(r.answer for r in records if r.meta["template"] == "count")
    assert set(counts) == {"0", "1", "2", "3"}


def test_captions_match_pixels():
    for r in ShapesWorld(2).captions(60):
        assert r.question == "Describe the image."
        assert r.answer == caption(Scene.from_dict(r.meta["scene"]))
        assert r.answer == describe(pixel_scene(r.images[0]))


def test_mcq_has_exactly_one_correct_option():
    records = ShapesWorld(4).mcq(200)
    assert all(isinstance(r, MCQRecord) for r in records)
    for r in records:
        truth = answer(r.question, pixel_scene(r.images[0]))
        assert list(r.options) == list("ABCD"[: len(r.options)])
        assert len(set(r.options.values())) == len(r.options)
        assert [k for k, v in r.options.items() if v == truth] == [r.answer]
        expected = {"color": 4, "color_at": 4, "count": 4, "shape": 3}.get(r.meta["template"], 2)
        assert len(r.options) == expected
    assert Counter(r.answer for r in records)["D"] > 10  # the correct option is shuffled


def _triples(text: str) -> list[tuple[str, str, str]]:
    return [tuple(re.fullmatch(r"a (\w+) (\w+) (.+)", part).groups()) for part in text.split(", ")]


def test_pairs_reject_a_minimally_wrong_answer():
    records = ShapesWorld(6).pairs(300)
    assert all(isinstance(r, PairRecord) for r in records)
    categories = Counter(r.category for r in records)
    assert set(categories) == {*TEMPLATES, "caption"}
    for r in records:
        assert r.chosen != r.rejected
        shapes = pixel_scene(r.images[0])
        if r.category == "caption":
            assert r.chosen == describe(shapes)
            good, bad = _triples(r.chosen), _triples(r.rejected)
            only_good = [t for t in good if t not in bad]
            only_bad = [t for t in bad if t not in good]
            assert len(only_good) == len(only_bad) == 1, (r.chosen, r.rejected)
            assert sum(x != y for x, y in zip(only_good[0], only_bad[0], strict=True)) == 1
        else:
            assert r.chosen == answer(r.prompt, shapes)
            assert r.rejected != answer(r.prompt, shapes)


def test_blind_baseline_on_hand_made_records():
    def rec(template, ans):
        return VQARecord("x", [], "q", ans, meta={"template": template})

    records = [rec("color", "red"), rec("color", "red"), rec("color", "blue")]
    records += [rec("left_of", "yes"), rec("left_of", "no"), rec("left_of", "no"), rec("left_of", "no")]
    # best constants: "red" (2 of 3) and "no" (3 of 4)
    assert blind_baseline(records) == pytest.approx(5 / 7)
    with pytest.raises(ValueError):
        blind_baseline([])


def test_blind_baseline_of_default_world_is_well_below_one():
    # chance per template: 1/4, 1/3, ≈0.29, 1/2, 1/2, 1/2 → ≈0.40 on average
    assert 0.33 < blind_baseline(ShapesWorld(0).vqa(1000)) < 0.48


def test_template_weights_and_errors():
    records = ShapesWorld(
        0,
        template_weights={
            "count": 1.0,
            "color": 0.0,
            "color_at": 0.0,
            "shape": 0.0,
            "left_of": 0.0,
            "above": 0.0,
            "exists": 0.0,
        },
    ).vqa(20)
    assert {r.meta["template"] for r in records} == {"count"}
    with pytest.raises(ValueError):
        ShapesWorld(0, templates=["nope"])
    with pytest.raises(ValueError):
        ShapesWorld(0, num_shapes=(1, 3))  # left_of/above need two shapes
    with pytest.raises(ValueError):
        ShapesWorld(0, size=0.3)


def test_scene_parameters_and_dict_round_trip():
    world = ShapesWorld(1, image_size=112, templates=["count", "color"], num_shapes=(3, 3), size=0.1)
    for r in world.vqa(20):
        assert r.images[0].size == (112, 112)
        scene = Scene.from_dict(json.loads(json.dumps(r.meta["scene"])))
        assert len(scene.shapes) == 3 and scene.to_dict() == r.meta["scene"]
        assert np.array_equal(np.asarray(render(scene)), np.asarray(r.images[0]))
        assert answer(r.question, pixel_scene(r.images[0])) == r.answer
    scene = sample_scene(random.Random(0), num_shapes=(1, 1))
    assert len(scene.shapes) == 1 and scene.shapes[0].kind in KINDS



def test_shaded_thirds_mark_the_place_and_keep_the_answers():
    """`shade` darkens the left third's background and lightens the right one's; shapes, answers and the dict
    round trip are unchanged, and a plain world's dicts do not mention it."""
    from visionrl.core.data.shapes_scene import shaded

    assert "shade" not in ShapesWorld(0).vqa(1)[0].meta["scene"]
    s = 84
    for r in ShapesWorld(9, image_size=s, templates=["color_at"], shade=16).vqa(40):
        img = r.images[0]
        top = [img.getpixel((x, 0)) for x in (0, s // 2, s - 1)]  # shapes never reach the top row
        assert top == [shaded(BACKGROUND, -16), BACKGROUND, shaded(BACKGROUND, 16)]
        scene = Scene.from_dict(json.loads(json.dumps(r.meta["scene"])))
        assert scene.shade == 16 and scene.to_dict() == r.meta["scene"]
        assert np.array_equal(np.asarray(render(scene)), np.asarray(img))
        a = np.asarray(img).astype(int)
        plain = a.copy()
        for col, sign in ((0, -1), (2, 1)):  # undo the shade on background pixels, then read the scene back
            band = plain[:, col * s // 3:(col + 1) * s // 3]
            band[(band == shaded(BACKGROUND, sign * 16)).all(-1)] = BACKGROUND
        assert answer(r.question, pixel_scene(plain.astype("uint8"))) == r.answer
    with pytest.raises(ValueError):
        ShapesWorld(0, shade=100)
