"""Hand-computed checks of the masked SFT cross entropy (visionrl.core.losses.sft)."""

import math

import torch
from visionrl.core.losses import masked_ce_loss


def assert_close(
    actual: torch.Tensor, expected: torch.Tensor, rtol: float = 1e-6, atol: float = 1e-6
) -> None:
    """Shape, dtype and value check (torch.testing.assert_close costs seconds on its first call)."""
    assert actual.shape == expected.shape, f"shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    assert actual.dtype == expected.dtype, f"dtype {actual.dtype} != {expected.dtype}"
    assert torch.allclose(actual, expected, rtol=rtol, atol=atol), f"{actual} != {expected}"


LN2 = math.log(2)


def _batch():
    """2 sequences × 2 aligned positions over a 3-token vocabulary; the last position is padding.

    seq 0, t0: logits [0, ln 2, 0]  -> p = [1/4, 1/2, 1/4], label 1 -> CE = ln 2, argmax 1 correct
    seq 0, t1: logits [ln 2, 0, 0]  -> p = [1/2, 1/4, 1/4], label 2 -> CE = ln 4, argmax 0 wrong
    seq 1, t0: logits [0, 0, ln 2]  -> p = [1/4, 1/4, 1/2], label 2 -> CE = ln 2, argmax 2 correct
    seq 1, t1: padding, logits [5, 5, 5], label −100 (ignored)
    """
    logits = torch.tensor(
        [
            [[0.0, LN2, 0.0], [LN2, 0.0, 0.0]],
            [[0.0, 0.0, LN2], [5.0, 5.0, 5.0]],
        ],
        requires_grad=True,
    )
    labels = torch.tensor([[1, 2], [2, -100]])
    mask = torch.tensor([[1, 1], [1, 0]])
    return logits, labels, mask


def test_masked_ce_by_hand():
    """Loss = (ln 2 + ln 4 + ln 2)/3 = 4·ln 2/3 ≈ 0.924196; 3 tokens; accuracy 2/3."""
    logits, labels, mask = _batch()
    out = masked_ce_loss(logits, labels, mask)
    assert_close(out.loss, torch.tensor(4 * LN2 / 3))
    assert out.num_tokens.item() == 3
    assert_close(out.accuracy, torch.tensor(2 / 3))


def test_padding_gets_no_gradient():
    """dCE/dlogits = (p − onehot)/N on valid positions; the padded position gets exactly 0.

    seq 0, t0: (p − e₁)/3 = ([1/4, 1/2, 1/4] − [0, 1, 0])/3 = [1/12, −1/6, 1/12].
    """
    logits, labels, mask = _batch()
    masked_ce_loss(logits, labels, mask).loss.backward()
    assert torch.equal(logits.grad[1, 1], torch.zeros(3))
    assert_close(logits.grad[0, 0], torch.tensor([1 / 12, -1 / 6, 1 / 12]))


def test_empty_mask_is_zero_not_nan():
    logits, labels, _ = _batch()
    out = masked_ce_loss(logits, labels, torch.zeros(2, 2))
    assert out.loss.item() == 0.0 and out.num_tokens.item() == 0
