"""Hand-computed checks of the PPO-clip policy loss and its aggregations (visionrl.core.losses.policy)."""

import math

import pytest
import torch
from visionrl.core.losses import (
    AGGREGATIONS,
    AggNorm,
    entropy_from_logits,
    make_norm,
    policy_loss,
    selective_log_softmax,
)


def assert_close(
    actual: torch.Tensor, expected: torch.Tensor, rtol: float = 1e-6, atol: float = 1e-6
) -> None:
    """Shape, dtype and value check (torch.testing.assert_close costs seconds on its first call)."""
    assert actual.shape == expected.shape, f"shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    assert actual.dtype == expected.dtype, f"dtype {actual.dtype} != {expected.dtype}"
    assert torch.allclose(actual, expected, rtol=rtol, atol=atol), f"{actual} != {expected}"


F64 = torch.float64

# The running example: 2 sequences × 3 tokens, old log-probs 0 so r = exp(lp), the last token of
# sequence 1 is padding (its ratio 9.0 must be ignored). ε_low = 0.2, ε_high = 0.3 -> clip range [0.8, 1.3].
#   seq 0, A = +1, r = [1.0, 1.5, 0.5]: L = max(−r, −clip(r)) = [−1, max(−1.5, −1.3), max(−0.5, −0.8)]
#                                       = [−1.0, −1.3 (high clip), −0.5]; sum −2.8, mean −2.8/3
#   seq 1, A = −1, r = [0.5, 1.5, pad]: L = max(r, clip(r)) = [max(0.5, 0.8), max(1.5, 1.3)]
#                                       = [0.8 (low clip), 1.5]; sum 2.3, mean 1.15
# Token total −0.5 over 5 valid tokens.
RATIOS = torch.tensor([[1.0, 1.5, 0.5], [0.5, 1.5, 9.0]], dtype=F64)
MASK = torch.tensor([[1, 1, 1], [1, 1, 0]])
ADV = torch.tensor([1.0, -1.0], dtype=F64)
OLD = torch.zeros(2, 3, dtype=F64)


def _lp() -> torch.Tensor:
    return RATIOS.log().requires_grad_()


HAND = {
    "grpo": (-2.8 / 3 + 2.3 / 2) / 2,  # mean of per-sequence means = 0.108333
    "bnpo": -0.5 / 5,  # token mean = −0.1
    "dr_grpo": -0.5 / (2 * 3),  # sum / (global_sequences · max_completion_len) = −0.083333
    "dapo": -0.5 / 5,  # sum / global_tokens = −0.1
}


@pytest.mark.parametrize("agg", sorted(AGGREGATIONS))
def test_running_example_each_aggregation(agg):
    """Loss values of the running example (module comment) with one micro-batch; clip fractions 1/5 each.

    ratio_mean over valid tokens = (1 + 1.5 + 0.5 + 0.5 + 1.5)/5 = 1.0.
    """
    out = policy_loss(_lp(), OLD, ADV, MASK, clip_low=0.2, clip_high=0.3, agg=agg, norm=make_norm(MASK, 1, 3))
    assert out.loss.item() == pytest.approx(HAND[agg], abs=1e-9)
    assert out.pg_loss.item() == pytest.approx(HAND[agg], abs=1e-9)
    assert out.clip_high_frac.item() == pytest.approx(1 / 5)  # seq 0, token 1
    assert out.clip_low_frac.item() == pytest.approx(1 / 5)  # seq 1, token 0
    assert out.clip_dual_frac.item() == 0.0
    assert out.ratio_mean.item() == pytest.approx(1.0)
    assert out.kl.item() == 0.0


@pytest.mark.parametrize(
    ("agg", "expected"),
    [
        ("grpo", (-2.8 / 3 + 2.3 / 2) / 4),  # Σ per-sequence means / global_sequences = 4
        ("bnpo", -0.5 / 5 / 3),  # micro-batch token mean / num_micro_batches = 3
        ("dr_grpo", -0.5 / (4 * 5)),  # global_sequences = 4, max_completion_len = 5
        ("dapo", -0.5 / 10),  # global_tokens = 10
    ],
)
def test_aggregation_normalisers(agg, expected):
    """Each normaliser reads its own fields of AggNorm(num_micro=3, seqs=4, tokens=10, max_len=5).

    num_micro_batches = 3 is not seqs / 2, so a grpo that divides the micro-batch mean by the number of
    micro-batches ((…)/2/3) is told apart from one that divides the sum by the sequences ((…)/4).
    """
    norm = AggNorm(num_micro_batches=3, global_sequences=4, global_tokens=10.0, max_completion_len=5)
    out = policy_loss(_lp(), OLD, ADV, MASK, clip_low=0.2, clip_high=0.3, agg=agg, norm=norm)
    assert out.loss.item() == pytest.approx(expected, abs=1e-9)


def test_make_norm():
    """Full mask [[1,1,1],[1,1,0]] -> 2 sequences, 5 tokens; an all-padding mask counts 1 token (no 0/0)."""
    assert make_norm(MASK, 2, 3) == AggNorm(2, 2, 5.0, 3)
    assert make_norm(torch.zeros(2, 3), 1, 3).global_tokens == 1.0


def test_clip_high_only_vs_wider_range():
    """A = +1 on both tokens, r = [1.5, 0.5], bnpo.

    ε = 0.2/0.2: L = [max(−1.5, −1.2), max(−0.5, −0.8)] = [−1.2, −0.5], mean −0.85; only the high clip
    fires (A > 0 never triggers the low clip), high_frac = 1/2. dL/dlp = −A·r/2 for unclipped tokens,
    0 for clipped ones -> grad = [0, −0.25].
    ε_high = 0.6: 1.5 < 1.6 so nothing clips: L = [−1.5, −0.5], mean −1.0, grad = [−0.75, −0.25].
    """
    mask = torch.ones(1, 2)
    adv = torch.tensor([1.0], dtype=F64)
    norm = make_norm(mask, 1, 2)
    lp = torch.tensor([[1.5, 0.5]], dtype=F64).log().requires_grad_()
    out = policy_loss(
        lp, torch.zeros(1, 2, dtype=F64), adv, mask, clip_low=0.2, clip_high=0.2, agg="bnpo", norm=norm
    )
    out.loss.backward()
    assert out.loss.item() == pytest.approx(-0.85)
    assert (out.clip_high_frac.item(), out.clip_low_frac.item()) == (0.5, 0.0)
    assert_close(lp.grad, torch.tensor([[0.0, -0.25]], dtype=F64))

    lp.grad = None
    out = policy_loss(
        lp, torch.zeros(1, 2, dtype=F64), adv, mask, clip_low=0.2, clip_high=0.6, agg="bnpo", norm=norm
    )
    out.loss.backward()
    assert out.loss.item() == pytest.approx(-1.0)
    assert out.clip_high_frac.item() == 0.0
    assert_close(lp.grad, torch.tensor([[-0.75, -0.25]], dtype=F64))


def test_dual_clip():
    """One sequence, A = −2, r = [4.0, 2.0, 0.5], ε = 0.2/0.2, dual c = 3 (bound −A·c = 6), bnpo.

    t0: max(2·4, 2·1.2) = 8 -> min(8, 6) = 6   (dual clip binds, gradient 0)
    t1: max(2·2, 2·1.2) = 4 -> min(4, 6) = 4   (unclipped, dL/dlp = −A·r = 4, /3 -> 4/3)
    t2: max(2·0.5, 2·0.8) = 1.6                 (low clip, gradient 0)
    Loss = 11.6/3 ≈ 3.866667; without dual clip t0 stays 8 and the loss is 13.6/3 ≈ 4.533333.
    low_frac = dual_frac = 1/3, high_frac = 0.
    """
    mask = torch.ones(1, 3)
    old = torch.zeros(1, 3, dtype=F64)
    adv = torch.tensor([-2.0], dtype=F64)
    lp = torch.tensor([[4.0, 2.0, 0.5]], dtype=F64).log().requires_grad_()
    norm = make_norm(mask, 1, 3)
    out = policy_loss(lp, old, adv, mask, clip_low=0.2, clip_high=0.2, clip_dual=3.0, agg="bnpo", norm=norm)
    out.loss.backward()
    assert out.loss.item() == pytest.approx(11.6 / 3)
    assert out.clip_dual_frac.item() == pytest.approx(1 / 3)
    assert out.clip_low_frac.item() == pytest.approx(1 / 3)
    assert out.clip_high_frac.item() == 0.0
    assert_close(lp.grad, torch.tensor([[0.0, 4 / 3, 0.0]], dtype=F64))

    no_dual = policy_loss(lp, old, adv, mask, clip_low=0.2, clip_high=0.2, agg="bnpo", norm=norm)
    assert no_dual.loss.item() == pytest.approx(13.6 / 3)
    assert no_dual.clip_dual_frac.item() == 0.0


@pytest.mark.parametrize(("agg", "pg"), [("bnpo", HAND["bnpo"]), ("grpo", HAND["grpo"])])
def test_kl_term_is_aggregated_like_the_surrogate(agg, pg):
    """Running example with ref = 0 and β = 0.1, low_var_kl: x = ref − lp = −log r, so k3 = 1/r + log r − 1.

    r = 1 -> 0; r = 1.5 -> 2/3 + log 1.5 − 1 ≈ 0.072132; r = 0.5 -> 2 − log 2 − 1 ≈ 0.306853.
    seq 0 kl = [0, k(1.5), k(0.5)], seq 1 kl = [k(0.5), k(1.5)]; both sum to S = k(1.5) + k(0.5) ≈ 0.378985.
    Token mean (the `kl` statistic and the bnpo KL term) = 2S/5 ≈ 0.151594.
    grpo KL term = (S/3 + S/2)/2 ≈ 0.157911. Loss = pg + 0.1 · KL term.
    """

    def k(r: float) -> float:
        return 1 / r + math.log(r) - 1

    s = k(1.5) + k(0.5)
    kl_term = {"bnpo": 2 * s / 5, "grpo": (s / 3 + s / 2) / 2}[agg]
    out = policy_loss(
        _lp(),
        OLD,
        ADV,
        MASK,
        clip_low=0.2,
        clip_high=0.3,
        agg=agg,
        ref_logps_BT=torch.zeros(2, 3, dtype=F64),
        beta=0.1,
        kl_kind="low_var_kl",
        norm=make_norm(MASK, 1, 3),
    )
    assert out.kl.item() == pytest.approx(2 * s / 5, abs=1e-9)
    assert out.pg_loss.item() == pytest.approx(pg, abs=1e-9)
    assert out.loss.item() == pytest.approx(pg + 0.1 * kl_term, abs=1e-9)


def test_per_token_advantages():
    """adv_BT: one sequence, r = [1, 1], A = [+1, −1] per token, bnpo: L = [−1, +1], mean 0.

    dL/dlp = −A·r/2 = [−0.5, +0.5]. A constant-per-row adv_BT equals the broadcast adv_B.
    """
    mask = torch.ones(1, 2)
    lp = torch.zeros(1, 2, dtype=F64, requires_grad=True)
    out = policy_loss(
        lp,
        torch.zeros(1, 2, dtype=F64),
        torch.tensor([[1.0, -1.0]], dtype=F64),
        mask,
        agg="bnpo",
        norm=make_norm(mask, 1, 2),
    )
    out.loss.backward()
    assert out.loss.item() == 0.0
    assert_close(lp.grad, torch.tensor([[-0.5, 0.5]], dtype=F64))

    by_token = policy_loss(
        _lp(), OLD, ADV[:, None].expand(2, 3), MASK, agg="grpo", norm=make_norm(MASK, 1, 3)
    )
    by_seq = policy_loss(_lp(), OLD, ADV, MASK, agg="grpo", norm=make_norm(MASK, 1, 3))
    assert_close(by_token.loss, by_seq.loss)


@pytest.mark.parametrize("agg", sorted(AGGREGATIONS))
def test_zero_advantage_rows_get_zero_gradient(agg):
    """With β = 0, a row with A = 0 has L = 0·r and contributes exactly zero gradient."""
    g = torch.Generator().manual_seed(0)
    lp = (0.3 * torch.randn(3, 4, generator=g, dtype=F64)).requires_grad_()
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1], [1, 0, 0, 0]])
    adv = torch.tensor([0.0, 1.3, -0.7], dtype=F64)
    out = policy_loss(
        lp, torch.zeros(3, 4, dtype=F64), adv, mask, clip_dual=3.0, agg=agg, norm=make_norm(mask, 1, 4)
    )
    out.loss.backward()
    assert torch.equal(lp.grad[0], torch.zeros(4, dtype=F64))
    assert lp.grad[1].abs().sum() > 0


LENGTHS = [6, 2, 5, 1, 4, 3, 6, 1]  # tokens of the 8 sequences of the accumulation batch (6 columns)


def _accumulation_batch(n: int):
    """n ≤ 8 sequences × 6 tokens with lengths LENGTHS[:n]; off-policy, so some tokens clip."""
    g = torch.Generator().manual_seed(1234)
    old = -1.0 + 0.1 * torch.randn(n, 6, generator=g, dtype=F64)
    lp = (old + 0.3 * torch.randn(n, 6, generator=g, dtype=F64)).requires_grad_()
    ref = old + 0.2 * torch.randn(n, 6, generator=g, dtype=F64)
    adv = torch.randn(n, generator=g, dtype=F64)
    mask = (torch.arange(6)[None, :] < torch.tensor(LENGTHS[:n])[:, None]).long()
    return lp, old, ref, adv, mask


def _full_and_accumulated(agg: str, split: list[int], beta: float = 0.04):
    """Loss and grad of one pass over the sum(split) sequences vs Σ over micro-batches of sizes `split`
    (each backpropagated on its own), as `GRPOModule.update` accumulates one mini-batch."""
    n = sum(split)
    lp, old, ref, adv, mask = _accumulation_batch(n)
    kw = dict(clip_low=0.2, clip_high=0.28, clip_dual=3.0, agg=agg, beta=beta, kl_kind="low_var_kl")
    full = policy_loss(lp, old, adv, mask, ref_logps_BT=ref, norm=make_norm(mask, 1, 6), **kw)
    full.loss.backward()
    grad_full, lp.grad = lp.grad.clone(), None
    norm = make_norm(mask, len(split), 6)  # counts of the whole accumulated batch
    total = 0.0
    for rows in torch.split(torch.arange(n), split):
        micro = policy_loss(
            lp[rows], old[rows], adv[rows], mask[rows], ref_logps_BT=ref[rows], norm=norm, **kw
        )
        micro.loss.backward()
        total += micro.loss.item()
    return full.loss.item(), total, grad_full, lp.grad


# Even and uneven splits of one mini-batch: n = 6 with micro-batch 4 is [4, 2]; a mini-batch of 3 (8 rows
# in 3 mini-batches) with micro-batch 2 is [2, 1]; micro-batch 3 on 4 rows is [3, 1].
SPLITS = [[2, 2], [3, 1], [1, 3], [4, 2], [2, 1], [1, 1, 1, 1], [3, 3, 2]]


@pytest.mark.parametrize("beta", [0.0, 0.04])
@pytest.mark.parametrize("split", SPLITS, ids=str)
@pytest.mark.parametrize("agg", ["grpo", "dr_grpo", "dapo"])
def test_gradient_accumulation_invariance(agg, split, beta):
    """Micro-batches accumulated == the whole mini-batch at once, in loss and gradient (1e-12, float64),
    for any split, with and without the KL term.

    grpo divides each sequence mean by the mini-batch's sequence count, dr_grpo and dapo divide token
    sums by counts of the whole mini-batch, so no normaliser depends on the micro-batch.
    """
    full, accumulated, grad_full, grad_acc = _full_and_accumulated(agg, split, beta)
    assert accumulated == pytest.approx(full, abs=1e-12)
    assert_close(grad_acc, grad_full, rtol=0, atol=1e-12)
    assert grad_full.abs().max() > 1e-2  # the comparison is not between two zeros


@pytest.mark.parametrize("split", [[4, 2], [2, 1], [3, 1], [1, 1, 1]], ids=str)
def test_grpo_weighs_every_sequence_one_over_n(split):
    """The grpo weight of sequence i, Σ over micro-batches of its aggregated per-sequence mean when only
    row i is 1, is 1/n whatever the split ([4, 2]: not 1/8 and 1/4; [2, 1]: not 1/4 and 1/2)."""
    n = sum(split)
    mask = torch.ones(n, 3)
    norm = make_norm(mask, len(split), 3)
    for i in range(n):
        x = torch.zeros(n, 3, dtype=F64)
        x[i] = 1.0
        weight = sum(AGGREGATIONS["grpo"](x[rows], mask[rows], norm) for rows in torch.split(torch.arange(n), split))
        assert float(weight) == pytest.approx(1 / n, abs=1e-15)


def test_bnpo_is_not_accumulation_invariant():
    """bnpo (EasyR1 as Vision-SR1 forked it) with 8 and 6 tokens per micro-batch.

    Full batch: (s1 + s2)/14. Accumulated: (s1/8 + s2/6)/2, a different weighting of tokens, so the two
    differ unless every micro-batch has the same token count. This is that EasyR1's behaviour, kept on
    purpose (current EasyR1 is "dapo").
    """
    full, accumulated, grad_full, grad_acc = _full_and_accumulated("bnpo", [2, 2])
    assert abs(accumulated - full) > 1e-4
    assert not torch.allclose(grad_acc, grad_full, atol=1e-6)


def test_policy_loss_argument_checks():
    norm = make_norm(MASK, 1, 3)
    with pytest.raises(AssertionError, match="ref_logps_BT"):
        policy_loss(_lp(), OLD, ADV, MASK, beta=0.1, norm=norm)
    with pytest.raises(AssertionError, match="clip_dual"):
        policy_loss(_lp(), OLD, ADV, MASK, clip_dual=0.5, norm=norm)
    with pytest.raises(AssertionError, match="unknown loss aggregation"):
        policy_loss(_lp(), OLD, ADV, MASK, agg="seq_mean", norm=norm)  # type: ignore[arg-type]


def test_selective_log_softmax_by_hand():
    """t0 logits [0, 0, ln 2] -> p = [1/4, 1/4, 1/2], id 2 -> ln(1/2).
    t1 logits [ln 3, 0, 0] -> p = [3/5, 1/5, 1/5], id 1 -> ln(1/5).
    """
    logits = torch.tensor([[[0.0, 0.0, math.log(2)], [math.log(3), 0.0, 0.0]]])
    logps = selective_log_softmax(logits, torch.tensor([[2, 1]]))
    assert_close(logps, torch.tensor([[math.log(1 / 2), math.log(1 / 5)]]))


def test_selective_log_softmax_matches_full_log_softmax():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 5, 11, generator=g)
    ids = torch.randint(0, 11, (3, 5), generator=g)
    expected = torch.log_softmax(logits, -1).gather(-1, ids[..., None]).squeeze(-1)
    assert_close(selective_log_softmax(logits, ids), expected)
    assert selective_log_softmax(logits.bfloat16(), ids).dtype == torch.float32


def test_entropy_by_hand_and_chunked():
    """Uniform over 3 -> ln 3 ≈ 1.098612; p = [1/4, 1/4, 1/2] -> 2·(1/4)·ln 4 + (1/2)·ln 2 = 1.5·ln 2.
    A −inf logit contributes 0·log 0 = 0: [0, 0, −inf] -> ln 2 (finite, not NaN).
    """
    logits = torch.tensor([[[0.0, 0.0, 0.0], [0.0, 0.0, math.log(2)], [0.0, 0.0, -math.inf]]])
    h = entropy_from_logits(logits)
    assert_close(h, torch.tensor([[math.log(3), 1.5 * math.log(2), math.log(2)]]))

    g = torch.Generator().manual_seed(0)
    rand = torch.randn(2, 7, 13, generator=g)
    probs = rand.softmax(-1)
    expected = -(probs * probs.log()).sum(-1)
    assert_close(entropy_from_logits(rand, chunk_size=3), expected)
    assert_close(entropy_from_logits(rand, chunk_size=3), entropy_from_logits(rand))
