"""The examples in the judge package's docstrings run."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["majority", "inject", "verdicts", "sources", "prompts", "iterate", "pairs"]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    module = importlib.import_module(f"visionrl.judge.{name}")
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0, result
