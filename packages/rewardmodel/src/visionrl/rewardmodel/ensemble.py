"""Reward-model ensembles (arXiv 2509.16127 §4.7, Table 7) and the modality router (§4.4).

Scores are combined raw (not z-normalised): "simply averaging the reward scores" [P]. The weighted variants
learn one weight per model on a validation set of pairs (the paper: 1,000 pairs sampled uniformly from the 7
training sets):

    mean:      w_k = 1 / K
    accuracy:  w_k = acc_k / Σ_j acc_j           (acc_k: model k's pair accuracy on the validation set)
    margin:    w_k = m_k / Σ_j m_j               (m_k: its mean chosen − rejected margin, the paper's
                                                  "confidence"; a negative mean margin counts as 0)

The router sends text-only pairs to a text reward model and pairs with images to the (ensembled) others, the
deployment the paper recommends after finding LLM backbones better on text (as in MiMo-VL).
"""

from __future__ import annotations

from collections.abc import Sequence

WEIGHTINGS = ("mean", "accuracy", "margin")


def _normalise(values: Sequence[float]) -> list[float]:
    total = sum(values)
    return [v / total for v in values] if total > 0 else [1.0 / len(values)] * len(values)


def ensemble_weights(kind: str, chosen: Sequence[Sequence[float]], rejected: Sequence[Sequence[float]]) -> list[float]:
    """One weight per model from its validation scores (`chosen[k][i]`, `rejected[k][i]` for pair i).

    >>> ensemble_weights("accuracy", [[1, 2, 0], [5, 5, 5]], [[0, 0, 1], [4, 6, 5]])
    [0.6666666666666666, 0.3333333333333333]
    >>> ensemble_weights("margin", [[1, 2, 0], [5, 5, 5]], [[0, 0, 1], [4, 6, 5]])
    [1.0, 0.0]
    """
    if kind not in WEIGHTINGS:
        raise ValueError(f"unknown ensemble {kind!r}; choose from {', '.join(WEIGHTINGS)}")
    k = len(chosen)
    if kind == "mean":
        return [1.0 / k] * k
    stats = []
    for c, r in zip(chosen, rejected, strict=True):
        assert len(c) == len(r) and c, "every model needs scores for the same non-empty validation pairs"
        pairs = list(zip(c, r))
        value = (sum(a > b for a, b in pairs) if kind == "accuracy" else sum(a - b for a, b in pairs)) / len(pairs)
        stats.append(max(0.0, value))
    return _normalise(stats)


def combine(scores: Sequence[Sequence[float]], weights: Sequence[float]) -> list[float]:
    """Σ_k w_k · scores[k][i] for every item i.

    >>> combine([[1.0, 2.0], [3.0, -2.0]], [0.5, 0.5])
    [2.0, 0.0]
    """
    assert len(scores) == len(weights), f"{len(scores)} models but {len(weights)} weights"
    return [sum(w * s[i] for w, s in zip(weights, scores)) for i in range(len(scores[0]))]


def route(has_images: Sequence[bool], image_scores: Sequence[float], text_scores: Sequence[float]) -> list[float]:
    """The modality router: the text model's score for text-only items, the image model's otherwise.

    >>> route([True, False], [0.1, 0.2], [9.0, 8.0])
    [0.1, 8.0]
    """
    return [i if img else t for img, i, t in zip(has_images, image_scores, text_scores, strict=True)]
