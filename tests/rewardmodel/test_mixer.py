"""The mixer: SOURCE=VALUE specs checked at parse time, caps that stop a stream, weights as repeats or subsets,
uniform validation samples."""

from __future__ import annotations

import random

import pytest
from visionrl.core.data.records import PairRecord
from visionrl.core.errors import UserError
from visionrl.rewardmodel.mixer import mix, parse_spec, spec_problems, uniform_sample, weigh


def rows(prefix: str, n: int) -> list[PairRecord]:
    return [PairRecord(f"{prefix}{i}", [], "q", "a", "b") for i in range(n)]


@pytest.mark.parametrize(("items", "integer", "want"), [
    (("mmpr=100",), True, []),
    (("mmpr=-1",), True, [("caps", "mmpr must be >= 0")]),
    (("mmpr=1.5",), True, [("caps", "mmpr must be a whole number")]),
    (("mmpr",), True, [("caps", "'mmpr' is not SOURCE=VALUE")]),
    (("=3",), True, [("caps", "'=3' is not SOURCE=VALUE")]),
    (("a=0.5", "b=-0.1", "c=nan"), False, [("caps", "b must be >= 0"), ("caps", "c must be >= 0")]),
])
def test_spec_problems(items, integer, want):
    assert list(spec_problems(items, "caps", integer=integer)) == want


def test_parse_spec():
    assert parse_spec(("a=3", " b =4"), integer=True) == {"a": 3, "b": 4}
    assert parse_spec(("a=0.25",), integer=False) == {"a": 0.25}


@pytest.mark.parametrize(("weight", "n"), [(0, 0), (0.25, 2), (1, 8), (1.5, 12), (3, 24)])
def test_weigh_keeps_weight_times_the_pairs(weight, n):
    out = weigh(rows("x", 8), weight, random.Random(0))
    assert len(out) == n and len({r.id for r in out}) == min(8, n)


def test_caps_stop_the_stream_and_weights_repeat():
    pulled = {"big": 0}

    def big():
        for r in rows("big", 1_000_000):
            pulled["big"] += 1
            yield r

    pairs, report = mix([("big", big()), ("small", rows("s", 5)), ("text", rows("t", 4))],
                        caps={"big": 10}, weights={"small": 2, "text": 0.5}, seed=0)
    assert pulled["big"] <= 11  # streamed: nothing read past the cap
    assert report.read == {"big": 10, "small": 5, "text": 4} and report.kept == {"big": 10, "small": 10, "text": 2}
    assert len(pairs) == 22 and pairs != sorted(pairs, key=lambda r: r.id)  # shuffled together
    again, _ = mix([("big", rows("big", 20)), ("small", rows("s", 5)), ("text", rows("t", 4))],
                   caps={"big": 10}, weights={"small": 2, "text": 0.5}, seed=0)
    assert [r.id for r in again] == [r.id for r in pairs]  # seeded


def test_a_cap_or_weight_for_an_unknown_source_names_the_flag():
    with pytest.raises(UserError, match=r"^--dataset.caps: mmpr is not a source of --data \(tulu3\)$"):
        mix([("tulu3", rows("t", 2))], caps={"mmpr": 3})
    with pytest.raises(UserError, match=r"^--dataset.weights: shp is not a source"):
        mix([("tulu3", rows("t", 2))], weights={"shp": 1})


def test_uniform_sample_takes_an_even_share_of_each_source():
    out = uniform_sample([("a", rows("a", 100)), ("b", rows("b", 3)), ("c", rows("c", 50))], 10, seed=1)
    ids = [r.id[0] for r in out]
    assert (ids.count("a"), ids.count("b"), ids.count("c")) == (4, 3, 3)  # b has only 3
    assert len({r.id for r in out}) == len(out)
