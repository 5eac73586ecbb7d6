"""Ensemble weights, raw-score combination and the modality router, by hand."""

from __future__ import annotations

import pytest
from visionrl.rewardmodel.ensemble import combine, ensemble_weights, route

# validation scores of 3 models on 4 pairs: model 0 right on 4/4 (margins 1,1,1,1), model 1 on 2/4
# (margins 2,2,-1,-1), model 2 on 0/4 (margins -1 each)
CHOSEN = [[1, 1, 1, 1], [2, 2, 0, 0], [0, 0, 0, 0]]
REJECTED = [[0, 0, 0, 0], [0, 0, 1, 1], [1, 1, 1, 1]]


@pytest.mark.parametrize(("kind", "want"), [
    ("mean", [1 / 3, 1 / 3, 1 / 3]),
    ("accuracy", [4 / 6, 2 / 6, 0.0]),  # accuracies 1, 0.5, 0 normalised
    ("margin", [1 / 1.5, 0.5 / 1.5, 0.0]),  # mean margins 1, 0.5, -1 -> clipped at 0
])
def test_weights(kind, want):
    assert ensemble_weights(kind, CHOSEN, REJECTED) == pytest.approx(want)


def test_weights_fall_back_to_uniform_when_every_model_is_useless():
    assert ensemble_weights("accuracy", [[0.0]], [[1.0]]) == [1.0]
    assert ensemble_weights("margin", [[0.0], [0.0]], [[1.0], [3.0]]) == [0.5, 0.5]
    with pytest.raises(ValueError, match="choose from mean, accuracy, margin"):
        ensemble_weights("vote", CHOSEN, REJECTED)


def test_combine_is_the_weighted_raw_sum():
    assert combine([[1.0, 4.0], [3.0, 0.0]], [0.25, 0.75]) == [2.5, 1.0]
    # a mean ensemble can be right where each member is wrong on some pair
    chosen = combine([[2.0, -1.0], [-1.0, 2.0]], [0.5, 0.5])
    rejected = combine([[0.0, 0.0], [0.0, 0.0]], [0.5, 0.5])
    assert [c > r for c, r in zip(chosen, rejected)] == [True, True]


def test_router_sends_text_only_items_to_the_text_model():
    assert route([True, False, False], [1.0, 2.0, 3.0], [-1.0, -2.0, -3.0]) == [1.0, -2.0, -3.0]
