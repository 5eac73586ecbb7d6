"""The demo's pairs: deterministic, the requested sizes and share of text pairs, separate worlds, and every
pair's chosen and rejected answers differ."""

from __future__ import annotations

from visionrl.rewardmodel.demo_data import HELDOUT_WORLD, TRAIN_WORLD, demo_pairs, image_pairs, text_pairs


def test_sizes_shares_and_determinism():
    rows = demo_pairs(70, 0.3, TRAIN_WORLD)
    assert len(rows) == 100 and sum(not r.images for r in rows) == 30
    assert [r.id for r in rows] == [r.id for r in demo_pairs(70, 0.3, TRAIN_WORLD)]
    assert all(r.chosen != r.rejected and r.prompt for r in rows)


def test_categories_and_worlds():
    images = image_pairs(200, HELDOUT_WORLD)
    kinds = {r.category for r in images}
    assert kinds == {"shapes/color_at", "shapes/description"}
    described = sum(r.category == "shapes/description" for r in images)
    assert 30 <= described <= 70  # a quarter
    assert all(r.images[0].size == (84, 84) for r in images[:5])
    train = image_pairs(200, TRAIN_WORLD)
    assert not {r.images[0].tobytes() for r in train} & {r.images[0].tobytes() for r in images}
    texts = text_pairs(9, 0)
    assert [r.category for r in texts[:4]] == ["text/copy", "text/case", "text/parity", "text/fact"]
    assert all(not r.images for r in texts)
