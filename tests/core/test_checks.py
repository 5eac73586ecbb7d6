"""Range checks live with the config (`visionrl.core.checks`): messages, flag paths, and Literals tied to the
registries they select from."""

from __future__ import annotations

import math
import typing
from dataclasses import dataclass, field, replace

import pytest
from visionrl.core.checks import NON_NEGATIVE, POSITIVE, Checked, Range, check_config, config_problems
from visionrl.core.config import FlatRunArgs, RunArgs
from visionrl.core.errors import UserError
from visionrl.core.hparams import (
    AdvScale,
    DPOLoss,
    GRPOConfig,
    HeadActivation,
    HeadKind,
    KLKind,
    LossAgg,
    OptimConfig,
    SamplingParams,
)


@pytest.mark.parametrize(("rng", "value", "message"), [
    (POSITIVE, 0, "must be > 0"),
    (POSITIVE, -1.5, "must be > 0"),
    (NON_NEGATIVE, -1, "must be >= 0"),
    (Range(0, 1, hi_open=True), 1.0, "must be in [0, 1)"),
    (Range(0, 0.25), 0.3, "must be in [0, 0.25]"),
    (Range(2), 1, "must be >= 2"),
    (POSITIVE, math.nan, "must be a finite number > 0"),
    (Range(), math.inf, "must be a finite number"),
])
def test_range_problems(rng: Range, value: float, message: str) -> None:
    assert rng.problem(value) == message


@pytest.mark.parametrize(("rng", "value"), [(POSITIVE, 1e-12), (NON_NEGATIVE, 0), (Range(0, 1), 1.0), (Range(), -3.0)])
def test_range_accepts(rng: Range, value: float) -> None:
    assert rng.problem(value) is None


@dataclass(frozen=True)
class _Inner(Checked):
    RANGES: typing.ClassVar[dict[str, Range]] = {"k": POSITIVE}
    k: int = 1
    w: float = 0.5


@dataclass(frozen=True)
class _Outer(Checked):
    RANGES: typing.ClassVar[dict[str, Range]] = {"alpha": Range(0, 1)}
    run: FlatRunArgs
    alpha: float = 0.1
    lo: int = 1
    hi: int = 2
    inner: _Inner = field(default_factory=_Inner)

    def problems(self):
        if self.lo > self.hi:
            yield "lo", f"must not exceed --hi {self.hi}"


def test_flags_are_named_by_their_path_and_flat_args_stay_flat() -> None:
    base = _Outer(run=RunArgs(max_steps=1))
    check_config(base)
    cases = [(replace(base, alpha=1.5), "--alpha 1.5: must be in [0, 1]."),
             (replace(base, inner=_Inner(k=0)), "--inner.k 0: must be > 0."),
             (replace(base, inner=_Inner(w=math.nan)), "--inner.w nan: must be a finite number."),
             (replace(base, run=RunArgs(max_steps=0)), "--max-steps 0: must be > 0."),
             (replace(base, lo=3), "--lo 3: must not exceed --hi 2.")]
    for cfg, message in cases:
        with pytest.raises(UserError) as err:
            check_config(cfg)
        assert str(err.value) == message


def test_every_problem_is_listed_in_field_order() -> None:
    cfg = GRPOConfig(beta=-1, optim=OptimConfig(lr=0), sampling=SamplingParams(top_p=0))
    flags = [flag for flag, _, _ in config_problems(cfg)]
    assert flags == ["--sampling.top-p", "--optim.lr", "--beta"]


def test_a_negative_grad_norm_limit_is_refused() -> None:
    """`clip_grad_norm_` with a negative limit flips the gradient (gradient ascent), so it never gets there."""
    with pytest.raises(UserError, match="--max-grad-norm -1.0: must be >= 0"):
        check_config(OptimConfig(max_grad_norm=-1.0))
    check_config(OptimConfig(max_grad_norm=0.0))  # 0 = off


def test_mini_batches_cannot_exceed_the_rollout() -> None:
    with pytest.raises(UserError, match="--mini-batches 33: must be at most the 32 completions"):
        check_config(GRPOConfig(prompts_per_step=4, num_generations=8, mini_batches=33))


def test_literals_match_the_registries() -> None:
    """Each Literal spelled in the torch-free hparams is exactly the key set of the registry it selects from."""
    from visionrl.core.lit.reward_model import ACTIVATIONS, HEADS
    from visionrl.core.losses import AGGREGATIONS, DPO_LOSSES, KL_ESTIMATORS
    from visionrl.core.losses.advantages import ADV_SCALES

    pairs = [(LossAgg, AGGREGATIONS), (KLKind, KL_ESTIMATORS), (AdvScale, ADV_SCALES), (DPOLoss, DPO_LOSSES),
             (HeadKind, HEADS), (HeadActivation, ACTIVATIONS)]
    for lit, registry in pairs:
        assert set(typing.get_args(lit)) == set(registry), (lit, sorted(registry))
