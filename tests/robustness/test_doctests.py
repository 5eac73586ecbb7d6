"""The examples in the package's docstrings run and hold."""

import doctest
import importlib

import pytest

MODULES = ["judge", "metrics", "perturb", "rewards", "suite"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"visionrl.robustness.{name}")
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
